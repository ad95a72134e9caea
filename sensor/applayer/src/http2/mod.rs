//! HTTP/2 (RFC 9113) over cleartext TCP: the client connection preface (prior knowledge,
//! or after an HTTP/1.1 `Upgrade: h2c` answered `101`), frames, per-stream state, HPACK
//! header blocks ([`hpack`]) and files: each stream's DATA in each direction is one file,
//! logged as a `fileinfo` record with app_proto `http2` and the `http` object Suricata 7
//! writes beside it (version "2", request_headers, response_headers, ...).
//!
//! Bounded: non-DATA frame payloads are buffered up to `AppConfig::max_buffer` (longer
//! ones are skipped), DATA is streamed into the file without buffering, a header block
//! (HEADERS + CONTINUATION) is buffered up to `max_buffer`, the decoded header list per
//! block to [`MAX_HEADER_LIST`] bytes, the HPACK table to [`MAX_TABLE_SIZE`], the live
//! streams to [`MAX_STREAMS`] per flow and anomaly events to [`MAX_ANOMALIES`] per flow.

mod hpack;
mod huffman;

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{json, Map, Value};

pub use hpack::HeaderEntry;
use hpack::Hpack;

use crate::file::{FileState, FileTracker};
use crate::util::json_str;
use crate::{AppConfig, AppEvent, AppProto, Direction, Parser, Probe};

/// The client connection preface (RFC 9113 §3.4).
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Most streams tracked at once per flow; one more ends the oldest (files TRUNCATED).
pub const MAX_STREAMS: usize = 512;
/// Most bytes of decoded header fields kept per header block (name + value + 32 each).
pub const MAX_HEADER_LIST: usize = 64 * 1024;
/// Our bound on each direction's HPACK dynamic table, whatever SETTINGS allow.
pub const MAX_TABLE_SIZE: usize = 64 * 1024;
/// Most anomaly events one flow raises.
pub const MAX_ANOMALIES: usize = 64;
/// The initial SETTINGS_MAX_FRAME_SIZE.
const DEFAULT_MAX_FRAME: u32 = 16_384;

const FRAME_DATA: u8 = 0;
const FRAME_HEADERS: u8 = 1;
const FRAME_PRIORITY: u8 = 2;
const FRAME_RST_STREAM: u8 = 3;
const FRAME_SETTINGS: u8 = 4;
const FRAME_PUSH_PROMISE: u8 = 5;
const FRAME_PING: u8 = 6;
const FRAME_GOAWAY: u8 = 7;
const FRAME_WINDOW_UPDATE: u8 = 8;
const FRAME_CONTINUATION: u8 = 9;

const FLAG_END_STREAM: u8 = 0x1;
const FLAG_ACK: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;

const SETTINGS_HEADER_TABLE_SIZE: u16 = 1;
const SETTINGS_MAX_FRAME_SIZE: u16 = 5;

/// Detection: the client preface, to the server, on any port.
pub(crate) fn probe(dir: Direction, data: &[u8]) -> Probe {
    if dir != Direction::ToServer {
        return Probe::NoMatch;
    }
    let n = data.len().min(PREFACE.len());
    if data.get(..n) != PREFACE.get(..n) {
        Probe::NoMatch
    } else if n == PREFACE.len() {
        Probe::Match(AppProto::Http2)
    } else {
        Probe::NeedMore
    }
}

/// A 9-byte frame header (RFC 9113 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FrameHeader {
    len: u32,
    kind: u8,
    flags: u8,
    stream: u32,
}

impl FrameHeader {
    fn parse(b: &[u8; 9]) -> Self {
        FrameHeader {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }
}

/// RFC 9113 §7 error code names as Suricata logs them.
fn error_name(code: u32) -> String {
    let s = match code {
        0 => "NoError",
        1 => "ProtocolError",
        2 => "InternalError",
        3 => "FlowControlError",
        4 => "SettingsTimeout",
        5 => "StreamClosed",
        6 => "FrameSizeError",
        7 => "RefusedStream",
        8 => "Cancel",
        9 => "CompressionError",
        10 => "ConnectError",
        11 => "EnhanceYourCalm",
        12 => "InadequateSecurity",
        13 => "Http11Required",
        _ => return format!("Unknown({code})"),
    };
    s.to_string()
}

/// One gzip/deflate content-coding layer, fed as DATA arrives, bounded.
enum Inflate {
    Gzip(flate2::write::GzDecoder<Vec<u8>>),
    Zlib(flate2::write::ZlibDecoder<Vec<u8>>),
    Raw(flate2::write::DeflateDecoder<Vec<u8>>),
}

struct Decoder {
    /// `None` until the first byte shows the format.
    inner: Option<Inflate>,
    fed: u64,
    produced: u64,
    limit: u64,
    ratio: u64,
    stopped: bool,
}

impl Decoder {
    /// For a content-encoding value naming gzip or deflate (else `None`: identity, br...).
    fn new(encoding: &[u8], cfg: &AppConfig) -> Option<Decoder> {
        // Suricata 7 decodes a value that is exactly "gzip" or "deflate" (not "DeFlate",
        // not a list); "br" is not decoded here.
        let known = encoding == b"gzip" || encoding == b"deflate";
        known.then(|| Decoder {
            inner: None,
            fed: 0,
            produced: 0,
            limit: cfg.decompress_limit as u64,
            ratio: cfg.decompress_max_ratio as u64,
            stopped: false,
        })
    }

    /// Decoded bytes of `b`, and an event name when decoding stopped.
    fn feed(&mut self, b: &[u8]) -> (Vec<u8>, Option<&'static str>) {
        if self.stopped || b.is_empty() {
            return (Vec::new(), None);
        }
        let inner = self.inner.get_or_insert_with(|| match b {
            [0x1f, 0x8b, ..] | [0x1f] => Inflate::Gzip(flate2::write::GzDecoder::new(Vec::new())),
            [f, s, ..] if f & 0x0f == 8 && (u16::from(*f) << 8 | u16::from(*s)) % 31 == 0 => {
                Inflate::Zlib(flate2::write::ZlibDecoder::new(Vec::new()))
            }
            _ => Inflate::Raw(flate2::write::DeflateDecoder::new(Vec::new())),
        });
        let mut out = Vec::new();
        for step in b.chunks(512) {
            self.fed += step.len() as u64;
            let (res, buf) = match inner {
                Inflate::Gzip(d) => (d.write_all(step).and_then(|()| d.flush()), d.get_mut()),
                Inflate::Zlib(d) => (d.write_all(step).and_then(|()| d.flush()), d.get_mut()),
                Inflate::Raw(d) => (d.write_all(step).and_then(|()| d.flush()), d.get_mut()),
            };
            self.produced += buf.len() as u64;
            out.append(buf);
            if res.is_err() {
                self.stopped = true;
                return (out, Some("failed_decompression"));
            }
            if self.produced > self.limit
                || self.produced > self.fed.saturating_mul(self.ratio).max(64 * 1024)
            {
                self.stopped = true;
                let over = self.produced.saturating_sub(self.limit) as usize;
                out.truncate(out.len().saturating_sub(over));
                return (out, Some("failed_decompression"));
            }
        }
        (out, None)
    }
}

/// A file being received on one side of a stream.
struct OpenFile {
    tracker: FileTracker,
    decoder: Option<Decoder>,
}

/// One stream: its headers each way, files, and end flags.
#[derive(Default)]
struct Stream {
    tx_id: u64,
    /// Decoded header lists: [request, response] (trailers appended).
    headers: [Vec<HeaderEntry>; 2],
    /// HEADERS PRIORITY weight byte, as Suricata's `request.priority`.
    priority: [Option<u8>; 2],
    /// RST_STREAM error code sent in each direction.
    error: [Option<u32>; 2],
    ended: [bool; 2],
    files: [Option<OpenFile>; 2],
    /// Decoded DATA kept for inspection (request, response), up to the HTTP body depths.
    body: [Vec<u8>; 2],
    body_len: [u64; 2],
}

impl Stream {
    fn header(&self, d: usize, name: &[u8]) -> Option<&[u8]> {
        self.headers[d].iter().find_map(|h| match h {
            HeaderEntry::Field { name: n, value } if n.eq_ignore_ascii_case(name) => {
                Some(value.as_slice())
            }
            _ => None,
        })
    }

    /// The `http` object Suricata 7 writes beside an HTTP/2 fileinfo record.
    fn eve(&self, id: u32) -> Value {
        let list = |hs: &[HeaderEntry]| -> Value {
            hs.iter()
                .map(|h| match h {
                    HeaderEntry::Field { name, value } => {
                        json!({"name": json_str(name), "value": json_str(value)})
                    }
                    HeaderEntry::TableSizeUpdate(n) => json!({ "table_size_update": n }),
                })
                .collect()
        };
        let mut m = Map::new();
        m.insert("version".into(), "2".into());
        m.insert("request_headers".into(), list(&self.headers[0]));
        if !self.headers[1].is_empty() {
            m.insert("response_headers".into(), list(&self.headers[1]));
        }
        if let Some(v) = self.header(0, b":method") {
            m.insert("http_method".into(), json_str(v).into());
        }
        if let Some(v) = self.header(0, b"user-agent") {
            m.insert("http_user_agent".into(), json_str(v).into());
        }
        if let Some(v) = self.header(0, b":path") {
            m.insert("url".into(), json_str(v).into());
        }
        if let Some(s) = self
            .header(1, b":status")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<u16>().ok())
        {
            m.insert("status".into(), json!(s));
        }
        let mut h2 = Map::new();
        h2.insert("stream_id".into(), json!(id));
        for (d, key) in [(0, "request"), (1, "response")] {
            let mut side = Map::new();
            if let Some(p) = self.priority[d] {
                side.insert("priority".into(), json!(p));
            }
            if let Some(e) = self.error[d] {
                side.insert("error_code".into(), error_name(e).into());
            }
            h2.insert(key.into(), Value::Object(side));
        }
        m.insert("http2".into(), Value::Object(h2));
        Value::Object(m)
    }
}

/// A header block being collected (HEADERS or PUSH_PROMISE, then CONTINUATION frames).
struct PendingBlock {
    stream: u32,
    /// PUSH_PROMISE: the promised stream, whose request headers these are.
    promised: Option<u32>,
    end_stream: bool,
    block: Vec<u8>,
    /// Over `max_buffer`: the rest is dropped, nothing decoded.
    overflow: bool,
}

/// Where the current frame's payload goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sink {
    /// Collected in `Side::payload`, handled when complete.
    Buffer,
    /// DATA: streamed into the stream's file.
    Data,
    /// Too long to buffer: dropped.
    Skip,
}

/// The frame reader of one direction.
struct Side {
    /// Bytes of the client preface still to come (to server only).
    preface_left: usize,
    hdr: [u8; 9],
    hdr_len: usize,
    /// The frame whose payload is being read.
    frame: Option<(FrameHeader, Sink)>,
    /// Payload bytes of the current frame read so far.
    pos: u32,
    payload: Vec<u8>,
    /// DATA with PADDED: the pad length once its byte was read.
    pad: Option<u8>,
    hpack: Hpack,
    /// The peer's SETTINGS_MAX_FRAME_SIZE: frames in this direction longer than it are
    /// `long_frame_data`.
    max_frame: u32,
    pending: Option<PendingBlock>,
    dead: bool,
}

impl Side {
    fn new(preface: bool) -> Self {
        Side {
            preface_left: if preface { PREFACE.len() } else { 0 },
            hdr: [0; 9],
            hdr_len: 0,
            frame: None,
            pos: 0,
            payload: Vec::new(),
            pad: None,
            hpack: Hpack::new(MAX_TABLE_SIZE),
            max_frame: DEFAULT_MAX_FRAME,
            pending: None,
            dead: false,
        }
    }
}

/// The per-flow HTTP/2 parser.
pub(crate) struct Http2Parser {
    cfg: AppConfig,
    sides: [Side; 2],
    streams: BTreeMap<u32, Stream>,
    next_tx: u64,
    anomalies: usize,
    /// Streams that ended with `long_frame_data` already raised.
    long_frame_raised: Vec<u32>,
}

fn dir_of(d: usize) -> Direction {
    if d == 0 {
        Direction::ToServer
    } else {
        Direction::ToClient
    }
}

impl Http2Parser {
    pub(crate) fn new(cfg: &AppConfig) -> Self {
        Http2Parser {
            cfg: cfg.clone(),
            sides: [Side::new(true), Side::new(false)],
            streams: BTreeMap::new(),
            next_tx: 0,
            anomalies: 0,
            long_frame_raised: Vec::new(),
        }
    }

    fn anomaly(&mut self, event: &'static str, out: &mut Vec<AppEvent>) {
        if self.anomalies < MAX_ANOMALIES {
            self.anomalies += 1;
            out.push(AppEvent::Anomaly {
                proto: AppProto::Http2,
                event,
            });
        }
    }

    /// The stream `id`, created if new; the oldest goes when the table is full.
    fn stream(&mut self, id: u32, out: &mut Vec<AppEvent>) -> &mut Stream {
        if !self.streams.contains_key(&id) {
            if self.streams.len() >= MAX_STREAMS {
                if let Some((old_id, old)) = self.streams.pop_first() {
                    self.finish_stream(old_id, old, out);
                }
                self.anomaly("too_many_streams", out);
            }
            let tx_id = self.next_tx;
            self.next_tx += 1;
            self.streams.insert(
                id,
                Stream {
                    tx_id,
                    ..Stream::default()
                },
            );
        }
        self.streams.entry(id).or_default()
    }

    /// Logs the open files of a stream that is going away (TRUNCATED), then its
    /// transaction.
    fn finish_stream(&mut self, id: u32, mut s: Stream, out: &mut Vec<AppEvent>) {
        for d in 0..2 {
            if let Some(f) = s.files[d].take() {
                emit_file(id, &s, d, f, FileState::Truncated, out);
            }
        }
        emit_tx(&s, out);
    }

    /// Removes a stream once both directions ended and its files were logged, handing its
    /// transaction to detection.
    fn retire(&mut self, id: u32, out: &mut Vec<AppEvent>) {
        if self
            .streams
            .get(&id)
            .is_some_and(|s| s.ended[0] && s.ended[1] && s.files.iter().all(Option::is_none))
        {
            if let Some(s) = self.streams.remove(&id) {
                emit_tx(&s, out);
            }
        }
    }

    /// END_STREAM in direction `d` of stream `id`: its file there is complete.
    fn end_stream(&mut self, id: u32, d: usize, out: &mut Vec<AppEvent>) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.ended[d] = true;
            if let Some(f) = s.files[d].take() {
                emit_file(id, s, d, f, FileState::Closed, out);
            }
        }
        self.retire(id, out);
    }

    /// DATA payload bytes of stream `id` in direction `d`.
    fn data(&mut self, id: u32, d: usize, b: &[u8], out: &mut Vec<AppEvent>) {
        if b.is_empty() || id == 0 {
            return;
        }
        let cfg_limit = self.cfg.file_data_limit;
        let s = self.stream(id, out);
        if s.ended[d] {
            return;
        }
        let opening = s.files[d]
            .is_none()
            .then(|| s.header(d, b"content-encoding").map(<[u8]>::to_vec));
        if let Some(encoding) = opening {
            let decoder = encoding.and_then(|e| Decoder::new(&e, &self.cfg));
            let s = self.streams.entry(id).or_default();
            s.files[d] = Some(OpenFile {
                tracker: FileTracker::new(Vec::new(), cfg_limit),
                decoder,
            });
        }
        let depth = if d == 0 {
            self.cfg.http_request_body_depth
        } else {
            self.cfg.http_response_body_depth
        };
        let s = self.streams.entry(id).or_default();
        let mut event = None;
        s.body_len[d] = s.body_len[d].saturating_add(b.len() as u64);
        if let Some(f) = s.files[d].as_mut() {
            let decoded;
            let bytes = match f.decoder.as_mut() {
                Some(dec) => {
                    let (bytes, ev) = dec.feed(b);
                    if ev.is_some() {
                        f.tracker.set_truncated();
                    }
                    event = ev;
                    decoded = bytes;
                    decoded.as_slice()
                }
                None => b,
            };
            f.tracker.write(bytes);
            let room = depth.saturating_sub(s.body[d].len()).min(bytes.len());
            s.body[d].extend_from_slice(&bytes[..room]);
        }
        if let Some(ev) = event {
            self.anomaly(ev, out);
        }
    }

    /// A complete header block for stream `id` in direction `d`.
    fn header_block(&mut self, p: PendingBlock, d: usize, out: &mut Vec<AppEvent>) {
        let (block, err) = self.sides[d].hpack.decode(&p.block, MAX_HEADER_LIST);
        if let Some(e) = err {
            self.anomaly(e.event(), out);
        }
        if block.dropped > 0 {
            self.anomaly("too_many_headers", out);
        }
        let (target, td) = match p.promised {
            // A pushed response's request headers travel to the client.
            Some(promised) => (promised, 0),
            None => (p.stream, d),
        };
        if target == 0 {
            self.anomaly("invalid_frame_header", out);
            return;
        }
        let s = self.stream(target, out);
        s.headers[td].extend(block.headers);
        if td == 0 && p.promised.is_none() {
            let authority = s.header(0, b":authority").map(<[u8]>::to_vec);
            let host = s.header(0, b"host").map(<[u8]>::to_vec);
            if let Some(a) = authority {
                let userinfo = a.contains(&b'@');
                let mismatch = host.is_some_and(|h| !h.eq_ignore_ascii_case(&a));
                if userinfo {
                    self.anomaly("userinfo_in_uri", out);
                }
                if mismatch {
                    self.anomaly("authority_host_mismatch", out);
                }
            }
        }
        if p.end_stream {
            // Trailers end the stream, but Suricata 7 closes a file only on a DATA frame's
            // END_STREAM: one still open here ends TRUNCATED.
            if let Some(f) = self
                .streams
                .get_mut(&p.stream)
                .and_then(|s| s.files[d].take())
            {
                if let Some(s) = self.streams.get(&p.stream) {
                    emit_file(p.stream, s, d, f, FileState::Truncated, out);
                }
            }
            self.end_stream(p.stream, d, out);
        }
    }

    /// A complete non-DATA frame (or the end of a DATA frame) in direction `d`.
    fn frame(&mut self, h: FrameHeader, d: usize, out: &mut Vec<AppEvent>) {
        let payload = std::mem::take(&mut self.sides[d].payload);
        if self.sides[d].pending.is_some() && h.kind != FRAME_CONTINUATION {
            // A header block must be followed by its CONTINUATION frames only.
            self.sides[d].pending = None;
            self.anomaly("invalid_frame_header", out);
        }
        match h.kind {
            FRAME_DATA => {
                if h.stream == 0 {
                    self.anomaly("data_stream_zero", out);
                } else if h.flags & FLAG_END_STREAM != 0 {
                    self.end_stream(h.stream, d, out);
                }
            }
            FRAME_HEADERS | FRAME_PUSH_PROMISE => {
                let mut b = payload.as_slice();
                let mut pad = 0usize;
                if h.flags & FLAG_PADDED != 0 {
                    match b.split_first() {
                        Some((&p, rest)) => {
                            pad = usize::from(p);
                            b = rest;
                        }
                        None => return self.anomaly("invalid_frame_length", out),
                    }
                }
                let mut promised = None;
                if h.kind == FRAME_PUSH_PROMISE {
                    let Some((id, rest)) = b.split_first_chunk::<4>() else {
                        return self.anomaly("invalid_frame_length", out);
                    };
                    promised = Some(u32::from_be_bytes(*id) & 0x7fff_ffff);
                    b = rest;
                } else if h.flags & FLAG_PRIORITY != 0 {
                    let Some((prio, rest)) = b.split_first_chunk::<5>() else {
                        return self.anomaly("invalid_frame_length", out);
                    };
                    if h.stream != 0 {
                        let weight = prio[4];
                        self.stream(h.stream, out).priority[d] = Some(weight);
                    }
                    b = rest;
                }
                let Some(block) = b.len().checked_sub(pad).and_then(|n| b.get(..n)) else {
                    return self.anomaly("invalid_frame_length", out);
                };
                let p = PendingBlock {
                    stream: h.stream,
                    promised,
                    end_stream: h.kind == FRAME_HEADERS && h.flags & FLAG_END_STREAM != 0,
                    block: block.to_vec(),
                    overflow: false,
                };
                if h.flags & FLAG_END_HEADERS != 0 {
                    self.header_block(p, d, out);
                } else {
                    self.sides[d].pending = Some(p);
                }
            }
            FRAME_CONTINUATION => {
                let max = self.cfg.max_buffer;
                let Some(mut p) = self.sides[d].pending.take() else {
                    return self.anomaly("invalid_frame_header", out);
                };
                if p.stream != h.stream {
                    return self.anomaly("invalid_frame_header", out);
                }
                if p.block.len() + payload.len() > max {
                    p.overflow = true;
                    p.block.clear();
                }
                if !p.overflow {
                    p.block.extend_from_slice(&payload);
                }
                if h.flags & FLAG_END_HEADERS == 0 {
                    self.sides[d].pending = Some(p);
                } else if p.overflow {
                    self.anomaly("reassembly_limit_reached", out);
                    if p.end_stream {
                        self.end_stream(p.stream, d, out);
                    }
                } else {
                    self.header_block(p, d, out);
                }
            }
            FRAME_SETTINGS => {
                if h.flags & FLAG_ACK != 0 {
                    return;
                }
                if !payload.len().is_multiple_of(6) || h.stream != 0 {
                    return self.anomaly("invalid_frame_length", out);
                }
                for s in payload.chunks_exact(6) {
                    let id = u16::from_be_bytes([s[0], s[1]]);
                    let v = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
                    // A setting constrains what the peer sends: the other direction.
                    match id {
                        SETTINGS_HEADER_TABLE_SIZE => self.sides[d ^ 1].hpack.set_allowed(v.into()),
                        SETTINGS_MAX_FRAME_SIZE => {
                            self.sides[d ^ 1].max_frame = v.clamp(DEFAULT_MAX_FRAME, 0xff_ffff)
                        }
                        _ => {}
                    }
                }
            }
            FRAME_RST_STREAM => {
                let Some(code) = payload.first_chunk::<4>() else {
                    return self.anomaly("invalid_frame_length", out);
                };
                if h.stream == 0 {
                    return;
                }
                let code = u32::from_be_bytes(*code);
                if let Some(mut s) = self.streams.remove(&h.stream) {
                    s.error[d] = Some(code);
                    self.finish_stream(h.stream, s, out);
                }
            }
            FRAME_PRIORITY | FRAME_PING | FRAME_GOAWAY | FRAME_WINDOW_UPDATE => {
                let need = match h.kind {
                    FRAME_PRIORITY => 5,
                    FRAME_PING => 8,
                    FRAME_GOAWAY => 8,
                    _ => 4,
                };
                if payload.len() < need {
                    self.anomaly("invalid_frame_length", out);
                }
            }
            // Unknown frame types are ignored (RFC 9113 §4.1).
            _ => {}
        }
    }

    /// Where a frame's payload goes.
    fn frame_sink(&self, h: FrameHeader, d: usize) -> Sink {
        if h.kind == FRAME_DATA && h.len > self.sides[d].max_frame {
            // Like Suricata 7, a DATA frame longer than the peer allows is not file data.
            Sink::Skip
        } else if h.kind == FRAME_DATA {
            Sink::Data
        } else if h.len as usize <= self.cfg.max_buffer {
            Sink::Buffer
        } else {
            Sink::Skip
        }
    }

    /// A frame header was read in direction `d`.
    fn start_frame(&mut self, h: FrameHeader, d: usize, out: &mut Vec<AppEvent>) {
        if h.len > self.sides[d].max_frame && !self.long_frame_raised.contains(&h.stream) {
            if self.long_frame_raised.len() < MAX_STREAMS {
                self.long_frame_raised.push(h.stream);
            }
            self.anomaly("long_frame_data", out);
        }
        let sink = self.frame_sink(h, d);
        if sink == Sink::Skip && h.kind != FRAME_DATA {
            self.anomaly("reassembly_limit_reached", out);
        }
        let side = &mut self.sides[d];
        side.frame = Some((h, sink));
        side.pos = 0;
        side.pad = None;
        side.payload.clear();
        if h.len == 0 {
            side.frame = None;
            self.frame(h, d, out);
        }
    }

    /// DATA payload bytes `b` at the current position of direction `d`'s frame.
    fn data_bytes(&mut self, h: FrameHeader, d: usize, mut b: &[u8], out: &mut Vec<AppEvent>) {
        let side = &mut self.sides[d];
        let mut pos = side.pos;
        if h.flags & FLAG_PADDED != 0 && side.pad.is_none() {
            let Some((&p, rest)) = b.split_first() else {
                return;
            };
            side.pad = Some(p);
            b = rest;
            pos += 1;
        }
        let header = u32::from(h.flags & FLAG_PADDED != 0);
        let pad = u32::from(side.pad.unwrap_or(0));
        let data_end = h.len.saturating_sub(pad).max(header);
        // The part of `b` (payload offsets pos..pos+len) before data_end.
        let take = data_end.saturating_sub(pos).min(b.len() as u32) as usize;
        if let Some(chunk) = b.get(..take) {
            self.data(h.stream, d, chunk, out);
        }
    }
}

/// The stream as an HTTP transaction for detection (http.method, http.uri, http.host,
/// http.header, file.data...), as Suricata 7 exposes HTTP/2 streams to `alert http` rules.
fn emit_tx(s: &Stream, out: &mut Vec<AppEvent>) {
    if s.headers.iter().all(Vec::is_empty) {
        return;
    }
    let fields = |d: usize| -> Vec<(Vec<u8>, Vec<u8>)> {
        s.headers[d]
            .iter()
            .filter_map(|h| match h {
                HeaderEntry::Field { name, value } if !name.starts_with(b":") => {
                    Some((name.clone(), value.clone()))
                }
                _ => None,
            })
            .collect()
    };
    let get = |d: usize, n: &[u8]| s.header(d, n).map(<[u8]>::to_vec);
    let uri_raw = get(0, b":path").unwrap_or_default();
    let (host, port) = match get(0, b":authority").or_else(|| get(0, b"host")) {
        Some(a) => {
            let (h, p) = crate::http::parse_authority(&a);
            (Some(h.to_ascii_lowercase()), p)
        }
        None => (None, None),
    };
    let tx = crate::HttpTx {
        tx_id: s.tx_id,
        method: get(0, b":method").unwrap_or_default(),
        uri_normalized: crate::http::normalize_uri(&uri_raw),
        uri_raw,
        protocol: b"HTTP/2".to_vec(),
        host,
        port,
        user_agent: get(0, b"user-agent"),
        referer: get(0, b"referer"),
        cookie: get(0, b"cookie"),
        request_headers: fields(0),
        request_body: s.body[0].clone(),
        request_body_len: s.body_len[0],
        status: get(1, b":status").and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok()),
        response_protocol: if s.headers[1].is_empty() {
            Vec::new()
        } else {
            b"HTTP/2".to_vec()
        },
        content_type: get(1, b"content-type").map(|v| {
            let end = v.iter().position(|&c| c == b';').unwrap_or(v.len());
            crate::util::trim(&v[..end]).to_vec()
        }),
        location: get(1, b"location"),
        response_headers: fields(1),
        response_body: s.body[1].clone(),
        response_len: s.body_len[1],
        ..crate::HttpTx::default()
    };
    out.push(AppEvent::Tx(crate::Transaction::Http2(tx)));
}

/// Builds and pushes the fileinfo record of stream `id`'s file in direction `d`.
fn emit_file(
    id: u32,
    s: &Stream,
    d: usize,
    f: OpenFile,
    state: FileState,
    out: &mut Vec<AppEvent>,
) {
    let rec = f.tracker.finish(
        AppProto::Http2,
        s.tx_id,
        dir_of(d),
        state,
        Some(("http", s.eve(id))),
    );
    out.push(AppEvent::File(rec));
}

impl Parser for Http2Parser {
    fn proto(&self) -> AppProto {
        AppProto::Http2
    }

    fn parse(&mut self, dir: Direction, mut data: &[u8], _ts: i64, out: &mut Vec<AppEvent>) {
        let d = dir.idx();
        // Each pass consumes at least one byte, or returns.
        while !data.is_empty() {
            let side = &mut self.sides[d];
            if side.dead {
                return;
            }
            if side.preface_left > 0 {
                let at = PREFACE.len() - side.preface_left;
                let n = side.preface_left.min(data.len());
                let (head, rest) = data.split_at(n);
                if PREFACE.get(at..at + n) != Some(head) {
                    // Not the preface (after an h2c upgrade the client may start with it,
                    // or not): read frames from here.
                    side.preface_left = 0;
                    self.anomaly("invalid_client_magic", out);
                    continue;
                }
                side.preface_left -= n;
                data = rest;
                continue;
            }
            match side.frame {
                None => {
                    let n = (9 - side.hdr_len).min(data.len());
                    let (head, rest) = data.split_at(n);
                    side.hdr[side.hdr_len..side.hdr_len + n].copy_from_slice(head);
                    side.hdr_len += n;
                    data = rest;
                    if side.hdr_len == 9 {
                        side.hdr_len = 0;
                        let h = FrameHeader::parse(&side.hdr);
                        self.start_frame(h, d, out);
                    }
                }
                Some((h, sink)) => {
                    let left = (h.len - side.pos) as usize;
                    let n = left.min(data.len());
                    let (chunk, rest) = data.split_at(n);
                    data = rest;
                    match sink {
                        Sink::Buffer => side.payload.extend_from_slice(chunk),
                        Sink::Skip => {}
                        Sink::Data => self.data_bytes(h, d, chunk, out),
                    }
                    let side = &mut self.sides[d];
                    side.pos += n as u32;
                    if side.pos == h.len {
                        side.frame = None;
                        if sink == Sink::Skip {
                            // Still ends the stream if it said so (HEADERS too long).
                            if h.flags & FLAG_END_STREAM != 0
                                && matches!(h.kind, FRAME_HEADERS | FRAME_DATA)
                            {
                                self.end_stream(h.stream, d, out);
                            }
                        } else {
                            self.frame(h, d, out);
                        }
                    }
                }
            }
        }
    }

    fn gap(&mut self, dir: Direction, _len: u64, _out: &mut Vec<AppEvent>) {
        let d = dir.idx();
        // Frame boundaries are lost: this direction stops; its open files have a gap.
        self.sides[d].dead = true;
        for s in self.streams.values_mut() {
            if let Some(f) = s.files[d].as_mut() {
                f.tracker.set_gap();
            }
        }
    }

    fn close(&mut self, _ts: i64, out: &mut Vec<AppEvent>) {
        let streams = std::mem::take(&mut self.streams);
        for (id, s) in streams {
            self.finish_stream(id, s, out);
        }
    }
}

#[cfg(test)]
mod tests;
