//! SSH: the identification banners of both sides (RFC 4253 section 4.2), then the
//! unencrypted binary packets' framing (section 6) until each side's SSH_MSG_NEWKEYS,
//! after which the flow is encrypted.

use serde_json::{json, Value};

use crate::util::{json_str, StreamBuf};
use crate::{AppConfig, AppEvent, AppProto, Direction, Parser, Transaction};

/// Longest banner line RFC 4253 allows (including CR LF).
const MAX_BANNER: usize = 255;
/// Lines a server may send before its banner that we skip.
const MAX_PRE_BANNER_LINES: usize = 32;

/// One side's identification string: `SSH-<proto_version>-<software_version> <comments>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SshEndpoint {
    pub proto_version: Vec<u8>,
    pub software_version: Vec<u8>,
}

/// The SSH transaction: both banners (either may be missing when the flow ended early).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SshTx {
    pub tx_id: u64,
    pub client: Option<SshEndpoint>,
    pub server: Option<SshEndpoint>,
}

impl SshTx {
    /// EVE `ssh` value, Suricata 7 format.
    pub fn eve(&self) -> Value {
        let side = |e: &SshEndpoint| {
            json!({
                "proto_version": json_str(&e.proto_version),
                "software_version": json_str(&e.software_version),
            })
        };
        let mut m = serde_json::Map::new();
        if let Some(c) = &self.client {
            m.insert("client".into(), side(c));
        }
        if let Some(s) = &self.server {
            m.insert("server".into(), side(s));
        }
        Value::Object(m)
    }
}

/// Parse a banner line without its line ending. `None` if it is not `SSH-x-y`.
pub(crate) fn parse_banner(line: &[u8]) -> Option<SshEndpoint> {
    let rest = line.strip_prefix(b"SSH-")?;
    let dash = rest.iter().position(|&c| c == b'-')?;
    let proto = &rest[..dash];
    let sw = &rest[dash + 1..];
    let sw_end = sw
        .iter()
        .position(|&c| c == b' ' || c == b'\r' || c == b'\n')
        .unwrap_or(sw.len());
    if proto.is_empty() {
        return None;
    }
    Some(SshEndpoint {
        proto_version: proto.to_vec(),
        software_version: sw[..sw_end].to_vec(),
    })
}

/// SSH_MSG_NEWKEYS: the sender's next packets are encrypted.
const MSG_NEWKEYS: u8 = 21;
/// Largest binary packet framed (RFC 4253 6.1 asks for 35,000 bytes at least).
const MAX_PACKET: usize = 256 * 1024;

#[derive(Debug, Default)]
struct Side {
    buf: StreamBuf,
    /// The banner phase is over (banner read, or given up).
    done: bool,
    lines: usize,
    /// Binary packets are framed (an SSH 2 banner was read) until NEWKEYS or an error.
    framing: bool,
    /// Packet length, padding length and message code of the packet being read.
    hdr: Vec<u8>,
    /// Bytes of the current packet still to skip.
    skip: usize,
    newkeys: bool,
}

impl Side {
    /// Frames unencrypted binary packets in `data` until this side's NEWKEYS.
    fn frame(&mut self, mut data: &[u8]) {
        while self.framing && !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                continue;
            }
            let n = (6 - self.hdr.len()).min(data.len());
            self.hdr.extend_from_slice(&data[..n]);
            data = &data[n..];
            let [a, b, c, d, _pad, msg] = self.hdr[..] else {
                continue;
            };
            self.hdr.clear();
            let len = u32::from_be_bytes([a, b, c, d]) as usize;
            if !(2..=MAX_PACKET).contains(&len) {
                // Not SSH framing: stop looking.
                self.framing = false;
            } else if msg == MSG_NEWKEYS {
                self.newkeys = true;
                self.framing = false;
            } else {
                // The length counts the padding length byte, payload and padding.
                self.skip = len - 2;
            }
        }
    }
}

pub(crate) struct SshParser {
    tx: SshTx,
    sides: [Side; 2],
    logged: bool,
    line_max: usize,
}

impl SshParser {
    pub(crate) fn new(cfg: &AppConfig) -> Self {
        SshParser {
            tx: SshTx::default(),
            sides: [Side::default(), Side::default()],
            logged: false,
            line_max: cfg.line_max.max(MAX_BANNER),
        }
    }

    fn emit(&mut self, out: &mut Vec<AppEvent>) {
        if !self.logged && (self.tx.client.is_some() || self.tx.server.is_some()) {
            self.logged = true;
            out.push(AppEvent::Tx(Transaction::Ssh(self.tx.clone())));
        }
    }
}

impl Parser for SshParser {
    fn proto(&self) -> AppProto {
        AppProto::Ssh
    }

    fn parse(&mut self, dir: Direction, data: &[u8], _ts: i64, out: &mut Vec<AppEvent>) {
        let anomaly = |event| AppEvent::Anomaly {
            proto: AppProto::Ssh,
            event,
        };
        let side = &mut self.sides[dir.idx()];
        if side.done {
            side.frame(data);
            return;
        }
        let mut data = data;
        while !data.is_empty() && !side.done {
            let nl = data.iter().position(|&c| c == b'\n');
            let take = nl.map_or(data.len(), |i| i + 1);
            if !side.buf.push(&data[..take], self.line_max) {
                out.push(anomaly("long_banner"));
                side.done = true;
                break;
            }
            data = &data[take..];
            if nl.is_none() {
                break;
            }
            let line = side.buf.take();
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.starts_with(b"SSH-") {
                side.done = true;
                if line.len() > MAX_BANNER {
                    out.push(anomaly("long_banner"));
                }
                match parse_banner(line) {
                    Some(e) => {
                        side.framing = matches!(e.proto_version.as_slice(), b"2.0" | b"1.99");
                        match dir {
                            Direction::ToServer => self.tx.client = Some(e),
                            Direction::ToClient => self.tx.server = Some(e),
                        }
                    }
                    None => out.push(anomaly("invalid_banner")),
                }
            } else {
                // Servers may send other lines first (RFC 4253 4.2); clients may not.
                side.lines += 1;
                if dir == Direction::ToServer || side.lines > MAX_PRE_BANNER_LINES {
                    out.push(anomaly("invalid_banner"));
                    side.done = true;
                }
            }
        }
        // The bytes after the banner line are binary packets.
        side.frame(data);
        if self.sides.iter().all(|s| s.done) {
            self.emit(out);
        }
    }

    fn gap(&mut self, dir: Direction, _len: u64, _out: &mut Vec<AppEvent>) {
        let side = &mut self.sides[dir.idx()];
        side.buf.clear();
        side.done = true;
        side.framing = false;
    }

    fn close(&mut self, _ts: i64, out: &mut Vec<AppEvent>) {
        self.emit(out);
    }

    /// Both sides sent NEWKEYS (Suricata 7 stops inspecting the flow there).
    fn encrypted(&self) -> Option<crate::ClearUntil> {
        self.sides
            .iter()
            .all(|s| s.newkeys)
            .then_some(crate::ClearUntil::After)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(p: &mut SshParser, dir: Direction, d: &[u8]) -> Vec<AppEvent> {
        let mut out = Vec::new();
        p.parse(dir, d, 0, &mut out);
        out
    }

    #[test]
    fn both_banners_like_suricata() {
        let mut p = SshParser::new(&AppConfig::default());
        // Client banner then the start of its binary KEXINIT packet, split mid-line.
        assert!(feed(&mut p, Direction::ToServer, b"SSH-2.0-libssh").is_empty());
        assert!(feed(&mut p, Direction::ToServer, b"-0.7.2\r\n\x00\x00\x01\x14").is_empty());
        let out = feed(
            &mut p,
            Direction::ToClient,
            b"SSH-2.0-OpenSSH_7.4 Debian\r\n",
        );
        let [AppEvent::Tx(tx)] = out.as_slice() else {
            panic!("{out:?}")
        };
        // As Suricata 7 logs suricata-verify ssh-newkeys.
        assert_eq!(
            tx.eve(),
            vec![(
                "ssh",
                "ssh",
                json!({"client":{"proto_version":"2.0","software_version":"libssh-0.7.2"},
                       "server":{"proto_version":"2.0","software_version":"OpenSSH_7.4"}})
            )]
        );
        let mut out = Vec::new();
        p.close(0, &mut out);
        assert!(out.is_empty(), "logged once");
    }

    /// Binary packet framing (RFC 4253 6): KEXINIT, then NEWKEYS from each side, split
    /// anywhere; the flow is encrypted once both sides sent NEWKEYS.
    #[test]
    fn encrypted_after_both_newkeys_any_split() {
        let pkt = |msg: u8, payload: usize| {
            let pad = 4usize;
            let len = 1 + 1 + payload + pad;
            let mut v = (len as u32).to_be_bytes().to_vec();
            v.push(pad as u8);
            v.push(msg);
            v.extend(std::iter::repeat_n(0xAA, payload + pad));
            v
        };
        let mut client = b"SSH-2.0-OpenSSH_9.0\r\n".to_vec();
        client.extend(pkt(20, 300)); // KEXINIT
        client.extend(pkt(30, 40)); // KEX_ECDH_INIT
        client.extend(pkt(21, 0)); // NEWKEYS
        client.extend([0x5Au8; 64]); // encrypted from here
        let mut server = b"SSH-2.0-OpenSSH_8.4\r\n".to_vec();
        server.extend(pkt(20, 280));
        server.extend(pkt(31, 500));
        server.extend(pkt(21, 0));
        for split in [1, 5, 6, 7, 33, 200, 100_000] {
            let mut p = SshParser::new(&AppConfig::default());
            for c in client.chunks(split) {
                feed(&mut p, Direction::ToServer, c);
            }
            assert!(
                p.encrypted().is_none(),
                "server has not sent NEWKEYS: {split}"
            );
            // All but NEWKEYS's message code and padding.
            let (head, tail) = server.split_at(server.len() - 5);
            for c in head.chunks(split) {
                feed(&mut p, Direction::ToClient, c);
            }
            assert!(p.encrypted().is_none(), "NEWKEYS incomplete: {split}");
            feed(&mut p, Direction::ToClient, tail);
            assert_eq!(
                p.encrypted(),
                Some(crate::ClearUntil::After),
                "split {split}"
            );
        }
        // SSH 1, or a length that is not SSH framing: never encrypted.
        let mut p = SshParser::new(&AppConfig::default());
        let mut c1 = b"SSH-1.5-old\r\n".to_vec();
        c1.extend(pkt(21, 0));
        feed(&mut p, Direction::ToServer, &c1);
        let mut s2 = b"SSH-2.0-x\r\n".to_vec();
        s2.extend([0xff, 0xff, 0xff, 0xff, 4, 21]);
        s2.extend(pkt(21, 0));
        feed(&mut p, Direction::ToClient, &s2);
        assert!(p.encrypted().is_none());
    }

    #[test]
    fn server_pre_banner_lines_and_close_flush() {
        let mut p = SshParser::new(&AppConfig::default());
        feed(
            &mut p,
            Direction::ToClient,
            b"hello there\r\nSSH-1.99-srv\n",
        );
        let mut out = Vec::new();
        p.close(0, &mut out);
        let [AppEvent::Tx(Transaction::Ssh(tx))] = out.as_slice() else {
            panic!()
        };
        assert_eq!(tx.server.as_ref().unwrap().proto_version, b"1.99");
        assert!(tx.client.is_none());
    }

    #[test]
    fn malformed_and_oversized() {
        let mut p = SshParser::new(&AppConfig::default());
        let out = feed(&mut p, Direction::ToServer, b"SSH-nodash\r\n");
        assert!(matches!(
            out.as_slice(),
            [AppEvent::Anomaly {
                event: "invalid_banner",
                ..
            }]
        ));
        let mut p = SshParser::new(&AppConfig::default());
        let long = vec![b'A'; 100_000];
        let out = feed(&mut p, Direction::ToServer, &long);
        assert!(matches!(
            out.as_slice(),
            [AppEvent::Anomaly {
                event: "long_banner",
                ..
            }]
        ));
        assert_eq!(
            parse_banner(b"SSH-2.0-"),
            Some(SshEndpoint {
                proto_version: b"2.0".to_vec(),
                software_version: vec![]
            })
        );
        assert_eq!(parse_banner(b"SSH--x"), None);
    }
}
