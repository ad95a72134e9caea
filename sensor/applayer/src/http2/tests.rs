use super::*;
use crate::testing::{anomalies, files};
use sha2::{Digest, Sha256};

use Direction::{ToClient, ToServer};

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// HPACK literal without indexing, new name (plain strings shorter than 127 bytes).
fn lit(name: &str, value: &str) -> Vec<u8> {
    let mut v = vec![0x00, name.len() as u8];
    v.extend_from_slice(name.as_bytes());
    v.push(value.len() as u8);
    v.extend_from_slice(value.as_bytes());
    v
}

fn request(stream: u32, method_idx: u8, path: &str, end_stream: bool) -> Vec<u8> {
    // :method (static), :scheme http (6), :path literal (name index 4), :authority.
    let mut b = vec![0x80 | method_idx, 0x86, 0x04, path.len() as u8];
    b.extend_from_slice(path.as_bytes());
    b.extend(lit(":authority", "example.com"));
    b.extend(lit("user-agent", "khien-test"));
    let flags = FLAG_END_HEADERS | if end_stream { FLAG_END_STREAM } else { 0 };
    frame(FRAME_HEADERS, flags, stream, &b)
}

fn response(stream: u32, extra: &[(&str, &str)]) -> Vec<u8> {
    // :status 200 (static index 8).
    let mut b = vec![0x88];
    for (n, v) in extra {
        b.extend(lit(n, v));
    }
    frame(FRAME_HEADERS, FLAG_END_HEADERS, stream, &b)
}

fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in pairs {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(FRAME_SETTINGS, 0, 0, &p)
}

fn sha256(b: &[u8]) -> String {
    crate::util::hex(&Sha256::digest(b))
}

/// Runs a conversation (direction, bytes) split into pieces of `step` bytes (0: whole).
fn run(conv: &[(Direction, Vec<u8>)], step: usize) -> Vec<AppEvent> {
    let mut p = Http2Parser::new(&AppConfig::default());
    let mut out = Vec::new();
    for (d, bytes) in conv {
        if step == 0 {
            p.parse(*d, bytes, 0, &mut out);
        } else {
            for c in bytes.chunks(step) {
                p.parse(*d, c, 0, &mut out);
            }
        }
    }
    p.close(0, &mut out);
    out
}

fn get_conversation() -> Vec<(Direction, Vec<u8>)> {
    let mut c = PREFACE.to_vec();
    c.extend(settings(&[(SETTINGS_HEADER_TABLE_SIZE, 4096)]));
    c.extend(request(1, 2, "/a.txt", true));
    let mut s = settings(&[(SETTINGS_MAX_FRAME_SIZE, 16384)]);
    s.extend(response(1, &[("content-length", "11")]));
    s.extend(frame(FRAME_DATA, 0, 1, b"hello "));
    s.extend(frame(FRAME_DATA, FLAG_END_STREAM, 1, b"world"));
    vec![(ToServer, c), (ToClient, s)]
}

#[test]
fn probe_preface_only_to_server() {
    assert_eq!(probe(ToServer, PREFACE), Probe::Match(AppProto::Http2));
    assert_eq!(probe(ToServer, &PREFACE[..10]), Probe::NeedMore);
    assert_eq!(probe(ToServer, b"PRI * HTTP/1.1\r\n"), Probe::NoMatch);
    assert_eq!(probe(ToClient, PREFACE), Probe::NoMatch);
    assert_eq!(
        crate::probe(crate::Transport::Tcp, ToServer, 40000, 8080, PREFACE),
        Probe::Match(AppProto::Http2)
    );
}

#[test]
fn response_body_is_a_closed_file_with_http_section() {
    let ev = run(&get_conversation(), 0);
    let f = files(&ev);
    assert_eq!(f.len(), 1, "{ev:?}");
    let f = f[0];
    assert_eq!(f.proto, AppProto::Http2);
    assert_eq!(f.direction, ToClient);
    assert_eq!(f.state, FileState::Closed);
    assert_eq!(f.size, 11);
    assert_eq!(f.sha256, sha256(b"hello world"));
    let (info, section) = f.eve();
    assert!(info.get("filename").is_none(), "{info}");
    let (k, http) = section.unwrap();
    assert_eq!(k, "http");
    assert_eq!(http["version"], "2");
    assert_eq!(http["http_method"], "GET");
    assert_eq!(http["url"], "/a.txt");
    assert_eq!(http["status"], 200);
    assert_eq!(http["http_user_agent"], "khien-test");
    assert_eq!(http["http2"]["stream_id"], 1);
    assert_eq!(
        http["request_headers"][3],
        json!({"name": ":authority", "value": "example.com"})
    );
    assert_eq!(
        http["response_headers"][1],
        json!({"name": "content-length", "value": "11"})
    );
    assert!(anomalies(&ev).is_empty(), "{ev:?}");
}

#[test]
fn any_split_gives_the_same_files() {
    let whole = run(&get_conversation(), 0);
    let want: Vec<_> = files(&whole).iter().map(|f| f.sha256.clone()).collect();
    for step in 1..40 {
        let ev = run(&get_conversation(), step);
        let got: Vec<_> = files(&ev).iter().map(|f| f.sha256.clone()).collect();
        assert_eq!(got, want, "step {step}");
    }
}

#[test]
fn upload_padding_priority_continuation_and_gzip() {
    let mut c = PREFACE.to_vec();
    // HEADERS with PADDED and PRIORITY, split over a CONTINUATION.
    let req = request(3, 3, "/up", false);
    let block = &req[9..];
    let (a, b) = block.split_at(4);
    let mut p = vec![2u8]; // pad length
    p.extend_from_slice(&[0, 0, 0, 0, 146]); // dependency, weight byte
    p.extend_from_slice(a);
    p.extend_from_slice(&[0, 0]);
    c.extend(frame(FRAME_HEADERS, FLAG_PADDED | FLAG_PRIORITY, 3, &p));
    c.extend(frame(FRAME_CONTINUATION, FLAG_END_HEADERS, 3, b));
    // DATA with padding: pad length 3, "abc", 3 pad bytes.
    c.extend(frame(
        FRAME_DATA,
        FLAG_PADDED | FLAG_END_STREAM,
        3,
        &[3, b'a', b'b', b'c', 0, 0, 0],
    ));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"compressed body").unwrap();
    let gz = gz.finish().unwrap();
    let mut s = response(3, &[("content-encoding", "gzip")]);
    s.extend(frame(FRAME_DATA, FLAG_END_STREAM, 3, &gz));
    for step in [0, 1, 7] {
        let ev = run(&[(ToServer, c.clone()), (ToClient, s.clone())], step);
        let f = files(&ev);
        assert_eq!(f.len(), 2, "{ev:?}");
        assert_eq!(f[0].direction, ToServer);
        assert_eq!(f[0].sha256, sha256(b"abc"));
        let http = f[0].eve().1.unwrap().1;
        assert_eq!(http["http2"]["request"]["priority"], 146);
        assert_eq!(http["http_method"], "POST");
        assert!(http.get("response_headers").is_none());
        assert_eq!(f[1].sha256, sha256(b"compressed body"), "step {step}");
        assert!(anomalies(&ev).is_empty(), "{ev:?}");
    }
}

#[test]
fn unfinished_and_reset_streams_are_truncated() {
    let mut c = PREFACE.to_vec();
    c.extend(request(1, 2, "/x", true));
    c.extend(request(3, 2, "/y", true));
    let mut s = response(1, &[]);
    s.extend(frame(FRAME_DATA, 0, 1, b"part"));
    s.extend(response(3, &[]));
    s.extend(frame(FRAME_DATA, 0, 3, b"cut"));
    s.extend(frame(FRAME_RST_STREAM, 0, 3, &8u32.to_be_bytes()));
    // A frame cut short by the end of the flow.
    s.extend(&frame(FRAME_DATA, 0, 1, b"more bytes")[..12]);
    let ev = run(&[(ToServer, c), (ToClient, s)], 0);
    let f = files(&ev);
    assert_eq!(f.len(), 2, "{ev:?}");
    assert_eq!(f[0].state, FileState::Truncated);
    assert_eq!(f[0].sha256, sha256(b"cut"));
    let http = f[0].eve().1.unwrap().1;
    assert_eq!(http["http2"]["response"]["error_code"], "Cancel");
    assert_eq!(f[1].state, FileState::Truncated);
    assert_eq!(f[1].sha256, sha256(b"partmor"));
}

#[test]
fn malformed_frames_raise_anomalies_not_panics() {
    let mut c = PREFACE.to_vec();
    // HPACK index out of range, a bad Huffman string, an integer overflow.
    c.extend(frame(FRAME_HEADERS, FLAG_END_HEADERS, 1, &[0xff, 0x7f]));
    c.extend(frame(
        FRAME_HEADERS,
        FLAG_END_HEADERS,
        3,
        &[0x00, 0x81, 0xff, 0x01, b'x'],
    ));
    c.extend(frame(
        FRAME_HEADERS,
        FLAG_END_HEADERS,
        5,
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    ));
    // Pad length longer than the frame; SETTINGS of a bad length; CONTINUATION alone.
    c.extend(frame(
        FRAME_HEADERS,
        FLAG_PADDED | FLAG_END_HEADERS,
        7,
        &[9, 0x82],
    ));
    c.extend(frame(FRAME_SETTINGS, 0, 0, &[0, 1, 0]));
    c.extend(frame(FRAME_CONTINUATION, FLAG_END_HEADERS, 9, &[0x82]));
    // A frame far longer than we buffer, declared and (partly) sent.
    let mut big = frame(FRAME_PING, 0, 0, &[]);
    big[..3].copy_from_slice(&[0xff, 0xff, 0xff]);
    big.extend(vec![0u8; 300_000]);
    c.extend(big);
    let ev = run(&[(ToServer, c)], 0);
    let a = anomalies(&ev);
    assert!(a.contains(&"invalid_header"), "{a:?}");
    assert!(a.contains(&"header_integer_overflow"), "{a:?}");
    assert!(a.contains(&"invalid_frame_length"), "{a:?}");
    assert!(a.contains(&"invalid_frame_header"), "{a:?}");
    assert!(a.contains(&"long_frame_data"), "{a:?}");
    assert!(a.contains(&"reassembly_limit_reached"), "{a:?}");
}

#[test]
fn authority_checks() {
    let mut b = vec![0x82, 0x86, 0x84];
    b.extend(lit(":authority", "user@a.example"));
    b.extend(lit("host", "b.example"));
    let mut c = PREFACE.to_vec();
    c.extend(frame(
        FRAME_HEADERS,
        FLAG_END_HEADERS | FLAG_END_STREAM,
        1,
        &b,
    ));
    let a = run(&[(ToServer, c)], 0);
    assert_eq!(
        anomalies(&a),
        vec!["userinfo_in_uri", "authority_host_mismatch"]
    );
}

#[test]
fn stream_table_is_bounded() {
    let mut p = Http2Parser::new(&AppConfig::default());
    let mut out = Vec::new();
    p.parse(ToServer, PREFACE, 0, &mut out);
    for i in 0..(MAX_STREAMS as u32 + 100) {
        let id = 2 * i + 1;
        p.parse(ToServer, &request(id, 3, "/p", false), 0, &mut out);
        p.parse(ToServer, &frame(FRAME_DATA, 0, id, b"x"), 0, &mut out);
        assert!(p.streams.len() <= MAX_STREAMS);
    }
    assert_eq!(files(&out).len(), 100);
    assert!(anomalies(&out).contains(&"too_many_streams"));
    out.clear();
    p.close(0, &mut out);
    assert_eq!(files(&out).len(), MAX_STREAMS);
}

#[test]
fn garbage_never_panics() {
    let mut x: u32 = 7;
    for round in 0..300u32 {
        let mut p = Http2Parser::new(&AppConfig::default());
        let mut out = Vec::new();
        if round.is_multiple_of(2) {
            p.parse(ToServer, PREFACE, 0, &mut out);
        }
        for _ in 0..20 {
            let n = (x % 40) as usize;
            let mut v = Vec::new();
            for _ in 0..n {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                v.push((x >> 16) as u8);
            }
            // Mostly small frame lengths, so frames complete.
            if let Some(b) = v.first_mut() {
                *b = 0;
            }
            let d = if x.is_multiple_of(3) {
                ToClient
            } else {
                ToServer
            };
            p.parse(d, &v, 0, &mut out);
        }
        p.gap(ToServer, 10, &mut out);
        p.close(0, &mut out);
        assert!(anomalies(&out).len() <= MAX_ANOMALIES);
    }
}

#[test]
fn trailers_truncate_long_data_skipped_and_exact_encoding() {
    let mut c = PREFACE.to_vec();
    c.extend(request(1, 3, "/rpc", false));
    c.extend(frame(FRAME_DATA, FLAG_END_STREAM, 1, b"req"));
    c.extend(request(3, 2, "/big", true));
    c.extend(request(5, 2, "/raw", true));
    let mut s = response(1, &[]);
    s.extend(frame(FRAME_DATA, 0, 1, b"answer"));
    // gRPC-style trailers end the stream: the file was not closed by DATA.
    s.extend(frame(
        FRAME_HEADERS,
        FLAG_END_HEADERS | FLAG_END_STREAM,
        1,
        &lit("grpc-status", "0"),
    ));
    s.extend(response(3, &[]));
    s.extend(frame(FRAME_DATA, 0, 3, b"small"));
    s.extend(frame(FRAME_DATA, FLAG_END_STREAM, 3, &vec![b'x'; 20_000]));
    // "DeFlate" is not exactly "deflate": the bytes are the file as they are.
    s.extend(response(5, &[("content-encoding", "DeFlate")]));
    s.extend(frame(FRAME_DATA, FLAG_END_STREAM, 5, b"not compressed"));
    let ev = run(&[(ToServer, c), (ToClient, s)], 0);
    let f = files(&ev);
    assert_eq!(f.len(), 4, "{ev:?}");
    assert_eq!((f[0].direction, f[0].state), (ToServer, FileState::Closed));
    assert_eq!(f[1].state, FileState::Truncated);
    assert_eq!(f[1].size, 6);
    assert!(f[1].eve().0.get("sha256").is_none());
    assert_eq!((f[2].size, f[2].state), (5, FileState::Closed));
    assert_eq!(f[3].sha256, sha256(b"not compressed"));
    assert_eq!(anomalies(&ev), vec!["long_frame_data"]);
}

#[test]
fn finished_stream_is_an_http_transaction_for_detection() {
    let ev = run(&get_conversation(), 0);
    let txs: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            AppEvent::Tx(crate::Transaction::Http2(t)) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(txs.len(), 1, "{ev:?}");
    let t = txs[0];
    assert_eq!(t.method, b"GET");
    assert_eq!(t.uri_raw, b"/a.txt");
    assert_eq!(t.host.as_deref(), Some(&b"example.com"[..]));
    assert_eq!(t.user_agent.as_deref(), Some(&b"khien-test"[..]));
    assert_eq!(t.status, Some(200));
    assert_eq!(t.response_body, b"hello world");
    // Pseudo-headers are not headers for http.header.
    assert!(t.request_headers.iter().all(|(n, _)| !n.starts_with(b":")));
    // No EVE record of its own.
    assert!(crate::Transaction::Http2(t.clone()).eve().is_empty());
}
