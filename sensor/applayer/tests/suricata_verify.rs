//! The parsers on real captures from `../shared/data/suricata-verify`, compared with what
//! Suricata 7.0.10 logs for the same pcaps (values copied from `suricata -r X.pcap -k none`
//! runs with the default configuration; ja3 with `app-layer.protocols.tls.ja3-fingerprints=yes`).
//!
//! A small pcap reader and in-order TCP reassembler live here, test-only: the crate itself
//! does no I/O and knows nothing of packets.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use khien_applayer::{
    new_parser_for, probe, AppConfig, AppEvent, AppProto, Direction, Parser, Probe, Transaction,
    Transport,
};
use serde_json::{json, Value};

fn data_dir() -> PathBuf {
    match std::env::var_os("KHIEN_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")),
    }
}

fn read_pcap(rel: &str) -> Vec<(i64, u32, Vec<u8>)> {
    let path = data_dir().join("suricata-verify/tests").join(rel);
    let b = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let magic = u32::from_le_bytes(b[..4].try_into().unwrap());
    let le = matches!(magic, 0xa1b2_c3d4 | 0xa1b2_3c4d);
    let nanos = matches!(magic, 0xa1b2_3c4d | 0x4d3c_b2a1);
    let rd = |o: usize| {
        let v: [u8; 4] = b[o..o + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        }
    };
    let link = rd(20);
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= b.len() {
        let (sec, frac, caplen) = (rd(off), rd(off + 4), rd(off + 8) as usize);
        let frac = if nanos { frac / 1000 } else { frac };
        let start = off + 16;
        let Some(pkt) = b.get(start..start + caplen) else {
            break;
        };
        out.push((
            i64::from(sec) * 1_000_000 + i64::from(frac),
            link,
            pkt.to_vec(),
        ));
        off = start + caplen;
    }
    out
}

/// A TCP or UDP packet: (proto, src, sport, dst, dport, seq, flags, payload).
struct L4 {
    udp: bool,
    src: Vec<u8>,
    sport: u16,
    dst: Vec<u8>,
    dport: u16,
    seq: u32,
    syn: bool,
    payload: Vec<u8>,
}

fn decode(link: u32, p: &[u8]) -> Option<L4> {
    let be16 = |b: &[u8], o: usize| Some(u16::from_be_bytes(b.get(o..o + 2)?.try_into().ok()?));
    let ip_version = |b: &[u8], o: usize| {
        if b.get(o)? >> 4 == 6 {
            Some(0x86dd)
        } else {
            Some(0x0800)
        }
    };
    let (mut et, mut off) = match link {
        // BSD loopback: a 4-byte address family.
        0 => (ip_version(p, 4)?, 4),
        1 => (be16(p, 12)?, 14),
        113 => (be16(p, 14)?, 16),
        101 | 228 => (ip_version(p, 0)?, 0),
        _ => return None,
    };
    while et == 0x8100 {
        et = be16(p, off + 2)?;
        off += 4;
    }
    let (proto, src, dst, l4) = match et {
        0x0800 => {
            let ihl = usize::from(p.get(off)? & 0x0f) * 4;
            let total = usize::from(be16(p, off + 2)?);
            let l4 = p.get(off + ihl..(off + total).min(p.len()))?;
            (
                *p.get(off + 9)?,
                p.get(off + 12..off + 16)?.to_vec(),
                p.get(off + 16..off + 20)?.to_vec(),
                l4,
            )
        }
        0x86dd => (
            *p.get(off + 6)?,
            p.get(off + 8..off + 24)?.to_vec(),
            p.get(off + 24..off + 40)?.to_vec(),
            p.get(off + 40..)?,
        ),
        _ => return None,
    };
    match proto {
        6 => {
            let doff = usize::from(l4.get(12)? >> 4) * 4;
            Some(L4 {
                udp: false,
                src,
                sport: be16(l4, 0)?,
                dst,
                dport: be16(l4, 2)?,
                seq: u32::from_be_bytes(l4.get(4..8)?.try_into().ok()?),
                syn: l4.get(13)? & 0x02 != 0,
                payload: l4.get(doff..)?.to_vec(),
            })
        }
        17 => Some(L4 {
            udp: true,
            src,
            sport: be16(l4, 0)?,
            dst,
            dport: be16(l4, 2)?,
            seq: 0,
            syn: false,
            payload: l4.get(8..)?.to_vec(),
        }),
        _ => None,
    }
}

/// One direction of a TCP stream: delivers bytes in sequence order exactly once.
#[derive(Default)]
struct Reasm {
    next: Option<u32>,
    ooo: BTreeMap<u32, Vec<u8>>,
}

impl Reasm {
    fn push(&mut self, seq: u32, syn: bool, data: &[u8]) -> Vec<u8> {
        // A SYN (re)starts the sequence space; otherwise the first segment with data does
        // (bare RSTs and ACKs may carry any sequence number).
        if syn {
            self.next = Some(seq.wrapping_add(1));
            self.ooo.clear();
        }
        if data.is_empty() {
            return Vec::new();
        }
        let next = *self.next.get_or_insert(seq);
        let mut out = Vec::new();
        let mut next = next;
        let mut seg = Some((seq, data.to_vec()));
        loop {
            if let Some((s, d)) = seg.take() {
                let ahead = s.wrapping_sub(next) as i32;
                if ahead > 0 {
                    self.ooo.entry(s).or_insert(d);
                } else {
                    let skip = (-ahead) as usize;
                    if skip < d.len() {
                        out.extend_from_slice(&d[skip..]);
                        next = next.wrapping_add((d.len() - skip) as u32);
                    }
                }
            }
            let ready = self
                .ooo
                .keys()
                .copied()
                .find(|&s| (s.wrapping_sub(next) as i32) <= 0);
            match ready {
                Some(s) => seg = self.ooo.remove(&s).map(|d| (s, d)),
                None => break,
            }
        }
        self.next = Some(next);
        out
    }
}

/// (src ip, src port, dst ip, dst port, udp) of a flow's first packet.
type FlowKey = (Vec<u8>, u16, Vec<u8>, u16, bool);

struct Flow {
    client: (Vec<u8>, u16),
    udp: bool,
    proto: Option<AppProto>,
    parser: Option<Box<dyn Parser>>,
    reasm: [Reasm; 2],
    /// Bytes seen before detection, per direction.
    early: [Vec<u8>; 2],
}

/// Run detection and the parsers over a pcap; every event, in order.
fn run_pcap(rel: &str) -> Vec<AppEvent> {
    let cfg = AppConfig::default();
    let mut flows: HashMap<FlowKey, Flow> = HashMap::new();
    let mut order = Vec::new();
    let mut events = Vec::new();
    for (ts, link, pkt) in read_pcap(rel) {
        let Some(p) = decode(link, &pkt) else {
            continue;
        };
        let fwd = (p.src.clone(), p.sport, p.dst.clone(), p.dport, p.udp);
        let rev = (p.dst.clone(), p.dport, p.src.clone(), p.sport, p.udp);
        let key = if flows.contains_key(&rev) { rev } else { fwd };
        let flow = flows.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            Flow {
                client: (p.src.clone(), p.sport),
                udp: p.udp,
                proto: None,
                parser: None,
                reasm: [Reasm::default(), Reasm::default()],
                early: [Vec::new(), Vec::new()],
            }
        });
        let dir = if (p.src.clone(), p.sport) == flow.client {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let d = if dir == Direction::ToServer { 0 } else { 1 };
        let bytes = if p.udp {
            p.payload.clone()
        } else {
            flow.reasm[d].push(p.seq, p.syn, &p.payload)
        };
        if bytes.is_empty() {
            continue;
        }
        let transport = if flow.udp {
            Transport::Udp
        } else {
            Transport::Tcp
        };
        if flow.proto.is_none() {
            flow.early[d].extend_from_slice(&bytes);
            match probe(transport, dir, p.sport, p.dport, &flow.early[d]) {
                Probe::Match(proto) => {
                    flow.proto = Some(proto);
                    flow.parser = new_parser_for(proto, transport, &cfg);
                    let early = std::mem::take(&mut flow.early);
                    if let Some(parser) = flow.parser.as_mut() {
                        // Replay what each direction sent before detection, this one last.
                        let other = 1 - d;
                        let odir = if other == 0 {
                            Direction::ToServer
                        } else {
                            Direction::ToClient
                        };
                        if !early[other].is_empty() {
                            parser.parse(odir, &early[other], ts, &mut events);
                        }
                        parser.parse(dir, &early[d], ts, &mut events);
                    }
                }
                Probe::NeedMore => {}
                Probe::NoMatch => flow.proto = Some(AppProto::Failed),
            }
            continue;
        }
        if let Some(parser) = flow.parser.as_mut() {
            parser.parse(dir, &bytes, ts, &mut events);
        }
    }
    for key in order {
        if let Some(parser) = flows.get_mut(&key).and_then(|f| f.parser.as_mut()) {
            parser.close(0, &mut events);
        }
    }
    events
}

fn eve_of(events: &[AppEvent], event_type: &str) -> Vec<Value> {
    events
        .iter()
        .filter_map(|e| match e {
            AppEvent::Tx(t) => Some(t),
            _ => None,
        })
        .flat_map(Transaction::eve)
        .filter(|(et, _, _)| *et == event_type)
        .map(|(_, _, v)| v)
        .collect()
}

fn files(events: &[AppEvent]) -> Vec<Value> {
    events
        .iter()
        .filter_map(|e| match e {
            AppEvent::File(f) => Some(f.eve().0),
            _ => None,
        })
        .collect()
}

#[test]
fn http_all_headers() {
    let ev = run_pcap("http-all-headers/input.pcap");
    assert_eq!(
        eve_of(&ev, "http"),
        vec![
            json!({"hostname":"www.ethereal.com","url":"/download.html","http_user_agent":"Mozilla/5.0 (Windows; U; Windows NT 5.1; en-US; rv:1.6) Gecko/20040113","http_content_type":"text/html","http_refer":"http://www.ethereal.com/development.html","http_method":"GET","protocol":"HTTP/1.1","status":200,"length":18070})
        ]
    );
    let f = files(&ev);
    assert_eq!(f.len(), 1);
    assert_eq!(
        (
            f[0]["filename"].clone(),
            f[0]["size"].clone(),
            f[0]["state"].clone()
        ),
        (json!("/download.html"), json!(18070), json!("CLOSED"))
    );
}

#[test]
fn http_post_file_uploads_and_ports() {
    let ev = run_pcap("http-post-file/input.pcap");
    let http = eve_of(&ev, "http");
    let urls: Vec<_> = http
        .iter()
        .map(|h| {
            (
                h["url"].clone(),
                h["status"].clone(),
                h["length"].clone(),
                h["http_port"].clone(),
            )
        })
        .collect();
    assert_eq!(
        urls[..3],
        [
            (
                json!("/api/v4/users/login"),
                json!(200),
                json!(715),
                json!(8065)
            ),
            (
                json!("/api/v4/uploads"),
                json!(201),
                json!(245),
                json!(8065)
            ),
            (
                json!("/api/v4/uploads/is8j4b6s7i839eo38axwmx5pnr"),
                json!(200),
                json!(264),
                json!(8065)
            ),
        ]
    );
    let sizes: Vec<_> = files(&ev)
        .iter()
        .take(6)
        .map(|f| (f["tx_id"].clone(), f["size"].clone()))
        .collect();
    // Suricata: request bodies 39, 170, 68 and response bodies 715, 245, 264 (tx 0, 1, 2).
    assert_eq!(
        sizes,
        [
            (json!(0), json!(39)),
            (json!(0), json!(715)),
            (json!(1), json!(170)),
            (json!(1), json!(245)),
            (json!(2), json!(68)),
            (json!(2), json!(264))
        ]
    );
}

#[test]
fn smtp_with_attachment() {
    let ev = run_pcap("bug-3616-smtp/input.pcap");
    let smtp: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            AppEvent::Tx(t @ Transaction::Smtp(_)) => Some((t.eve()[0].2.clone(), t.eve_extra())),
            _ => None,
        })
        .collect();
    assert_eq!(smtp.len(), 2);
    assert_eq!(
        smtp[0].0,
        json!({"helo":"GP","mail_from":"<gurpartap@patriots.in>","rcpt_to":["<raj_deol2002in@yahoo.co.in>"]})
    );
    assert_eq!(
        smtp[0].1,
        vec![(
            "email",
            json!({"status":"PARSE_DONE","from":"\"Gurpartap Singh\" <gurpartap@patriots.in>","to":["<raj_deol2002in@yahoo.co.in>"],"attachment":["NEWS.txt"]})
        )]
    );
    assert_eq!(smtp[1].0, json!({"helo":"GP"}));
    let f = files(&ev);
    assert_eq!(f.len(), 1);
    assert_eq!(
        (
            f[0]["filename"].clone(),
            f[0]["size"].clone(),
            f[0]["state"].clone()
        ),
        (json!("NEWS.txt"), json!(10809), json!("CLOSED"))
    );
    // The DNS lookup before the mail: query and answer with CNAME, A and NS authorities.
    let dns = eve_of(&ev, "dns");
    assert_eq!(
        dns[0],
        json!({"version":2,"type":"query","id":31062,"rrname":"mail.patriots.in","rrtype":"A","tx_id":0,"opcode":0})
    );
    assert_eq!(
        dns[1],
        json!({"version":2,"type":"answer","id":31062,"flags":"8180","qr":true,"rd":true,"ra":true,"opcode":0,"rrname":"mail.patriots.in","rrtype":"A","rcode":"NOERROR","answers":[{"rrname":"mail.patriots.in","rrtype":"CNAME","ttl":10827,"rdata":"patriots.in"},{"rrname":"patriots.in","rrtype":"A","ttl":10828,"rdata":"74.53.140.153"}],"grouped":{"A":["74.53.140.153"],"CNAME":["patriots.in"]},"authorities":[{"rrname":"patriots.in","rrtype":"NS","ttl":82828,"rdata":"ns2.patriots.in"},{"rrname":"patriots.in","rrtype":"NS","ttl":82828,"rdata":"ns1.patriots.in"}]})
    );
}

#[test]
fn tls_certificates_and_ja3() {
    let ev = run_pcap("tls/tls-cert-issuer/tls.pcap");
    let tls = eve_of(&ev, "tls");
    assert!(!tls.is_empty());
    // Four full handshakes and one resumed session (Suricata logs it too).
    let resumed = json!({"session_resumed":true,"version":"TLS 1.2","ja3":{"hash":"17f35db704ac47c259abb89f8387bbae","string":"771,49195-49199-158-49162-49161-49171-49172-49159-49169-51-50-57-156-47-53-10-5-4,65281-10-11-35-13172-16-5-18-13-21,23-24-25,0"},"ja3s":{"hash":"fbe78c619e7ea20046131294ad087f05","string":"771,49199,65281"}});
    assert_eq!(tls.len(), 5);
    let want = json!({"subject":"C=FR, ST=IDF, L=Paris, O=Stamus, CN=SELKS","issuerdn":"C=FR, ST=IDF, L=Paris, O=Stamus, CN=SELKS","serial":"00:97:E6:47:09:8E:EA:C9:B4","fingerprint":"3a:0b:3b:23:15:2c:44:5c:27:ac:6a:0c:41:d6:fa:74:af:b4:09:5b","version":"TLS 1.2","notbefore":"2015-02-12T18:07:27","notafter":"2025-02-09T18:07:27","ja3":{"hash":"308b0bd904abbef5e0034a1ff7a78920","string":"771,49195-49199-158-49162-49161-49171-49172-49159-49169-51-50-57-156-47-53-10-5-4,65281-10-11-35-13172-16-30032-5-18-13,23-24-25,0"},"ja3s":{"hash":"ccc514751b175866924439bdbb5bba34","string":"771,49199,65281-11-35"}});
    let mut n_full = 0;
    for mut t in tls {
        t.as_object_mut().unwrap().remove("ja4");
        if t.get("session_resumed").is_some() {
            assert_eq!(t, resumed);
        } else {
            assert_eq!(t, want);
            n_full += 1;
        }
    }
    assert_eq!(n_full, 4);
    let ev = run_pcap("tls-alpn-log-detect-02/input.pcap");
    let t = &eve_of(&ev, "tls")[0];
    assert_eq!(t["sni"], "p130-contacts.icloud.com");
    assert_eq!(
        t["subject"],
        "C=US, ST=California, O=Apple Inc., CN=p127-contacts.icloud.com"
    );
    assert_eq!(
        t["issuerdn"],
        "CN=Apple IST CA 2 - G1, OU=Certification Authority, O=Apple Inc., C=US"
    );
    assert_eq!(
        t["serial"],
        "4A:96:B3:D3:5F:90:E4:49:E4:D7:ED:85:D4:9E:09:43"
    );
    assert_eq!(t["ja3"]["hash"], "773906b0efdefa24a7f2b8eb6985bf37");
    assert_eq!(t["ja3s"]["string"], "771,49196,65281-0-11-5-16-23");
    assert_eq!(
        (t["notbefore"].clone(), t["notafter"].clone()),
        (json!("2023-10-23T11:42:34"), json!("2024-11-21T11:42:33"))
    );
}

#[test]
fn ssh_banners() {
    let ev = run_pcap("ssh-newkeys/input.pcap");
    assert_eq!(
        eve_of(&ev, "ssh"),
        vec![
            json!({"client":{"proto_version":"2.0","software_version":"libssh-0.7.2"},"server":{"proto_version":"2.0","software_version":"OpenSSH_7.4"}})
        ]
    );
}

#[test]
fn dns_nxdomain_soa() {
    let ev = run_pcap("dns-eve-v2-udp-nxdomain-soa/dns-udp-nxdomain-soa.pcap");
    let dns = eve_of(&ev, "dns");
    assert_eq!(dns.len(), 2);
    assert_eq!(dns[1]["rcode"], "NXDOMAIN");
    assert_eq!(
        dns[1]["authorities"][0]["soa"]["mname"],
        "ns-110.awsdns-13.com"
    );
}
