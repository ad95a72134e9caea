//! Per-flow application-layer state: protocol detection (port hint + content probing
//! through `khien_applayer::probe`) and the parser the sensor feeds in-order bytes to.

use std::collections::VecDeque;

use khien_applayer::{
    self as al, AppConfig, AppEvent, AppProto, Direction, FileState, FtpDataSpec, Parser, Probe,
    Transport,
};

use crate::flow::FlowKey;

/// Most bytes buffered per direction while detection needs more data.
pub const PROBE_LIMIT: usize = 4096;

/// Most data connections expected at once per worker (the oldest is dropped first).
const MAX_EXPECTED: usize = 256;
/// An expected data connection that has not appeared after this long (µs) is dropped.
const EXPECT_TIMEOUT: i64 = 3_600_000_000;

/// Data connections announced by control channels (FTP RETR/STOR), like Suricata's
/// app-layer expectations: a new TCP flow between the same two hosts (and VLANs) to the
/// announced port is parsed as the announced protocol. One table per worker: the flow
/// shard hash depends on the addresses only, so both connections meet in one worker.
#[derive(Default)]
pub struct Expectations {
    entries: VecDeque<Expected>,
}

struct Expected {
    addrs: ([u8; 16], [u8; 16]),
    vlan: [u16; 2],
    spec: FtpDataSpec,
    /// The control flow's id (EVE `parent_id`).
    parent: u64,
    ts: i64,
}

/// The unordered address pair of a flow.
fn addr_pair(k: &FlowKey) -> ([u8; 16], [u8; 16]) {
    (k.lo.min(k.hi), k.lo.max(k.hi))
}

impl Expectations {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The control flow `key` (id `parent`) announced `spec`.
    pub fn add(&mut self, key: &FlowKey, parent: u64, spec: FtpDataSpec, ts: i64) {
        let addrs = addr_pair(key);
        // A newer announcement for the same port replaces the old one.
        self.entries
            .retain(|e| !(e.addrs == addrs && e.vlan == key.vlan && e.spec.port == spec.port));
        while self.entries.len() >= MAX_EXPECTED {
            self.entries.pop_front();
        }
        self.entries.push_back(Expected {
            addrs,
            vlan: key.vlan,
            spec,
            parent,
            ts,
        });
    }

    /// The announcement a new TCP flow `key` to `server_port` fulfils, if any (used once).
    pub fn take(&mut self, key: &FlowKey, server_port: u16, ts: i64) -> Option<(FtpDataSpec, u64)> {
        self.entries.retain(|e| ts - e.ts <= EXPECT_TIMEOUT);
        let addrs = addr_pair(key);
        let i = self
            .entries
            .iter()
            .position(|e| e.addrs == addrs && e.vlan == key.vlan && e.spec.port == server_port)?;
        self.entries.remove(i).map(|e| (e.spec, e.parent))
    }
}

/// Detection and parsing state of one flow.
#[derive(Default)]
pub struct AppState {
    /// The detected protocol (or `Failed`).
    pub proto: Option<AppProto>,
    parser: Option<Box<dyn Parser>>,
    probe_buf: [Vec<u8>; 2],
    /// Detection gave up in this direction.
    nomatch: [bool; 2],
    /// Bytes seen in each direction.
    pub seen: [u64; 2],
    /// Stream offsets, per direction, where the clear part of a flow the parser says is
    /// encrypted ends: before the delivery that showed it (TLS) or after it (SSH).
    pub encrypted_at: Option<[u64; 2]>,
    /// A reassembly gap stopped parsing (Suricata's parsers for these protocols do not
    /// accept gaps: the flow's app layer stops at the first one; HTTP does accept them).
    pub gapped: bool,
    /// The protocol before an upgrade (STARTTLS, CONNECT): Suricata's `app_proto_orig`.
    pub orig: Option<AppProto>,
    /// The direction whose data came first.
    first: Option<usize>,
    /// The control flow that announced this one (FTP data): EVE `parent_id`.
    pub parent: Option<u64>,
    /// The stream of this direction stopped at an unacknowledged hole at flow end.
    cut: [bool; 2],
    /// The TCP session was picked up midstream: detection may reverse the flow.
    pub midstream: bool,
    /// Detection found a server's protocol in the to-server data of a midstream session
    /// (an HTTP response first): like Suricata (app-layer.c `reverse_flow`), the flow is
    /// reversed; the data went to the parser as to-client data. The engine swaps the
    /// flow's sides and clears this.
    pub reversed: bool,
}

fn direction(dir: usize) -> Direction {
    if dir == 0 {
        Direction::ToServer
    } else {
        Direction::ToClient
    }
}

impl AppState {
    /// Feeds in-order bytes (TCP) or one datagram (UDP) in `dir` (0 to server).
    #[allow(
        clippy::too_many_arguments,
        reason = "the flow context the probe needs"
    )]
    pub fn data(
        &mut self,
        t: Transport,
        dir: usize,
        client_port: u16,
        server_port: u16,
        data: &[u8],
        ts: i64,
        cfg: &AppConfig,
        out: &mut Vec<AppEvent>,
    ) {
        let dir = dir & 1;
        self.seen[dir] += data.len() as u64;
        if self.first.is_none() && !data.is_empty() {
            self.first = Some(dir);
        }
        if self.gapped {
            return;
        }
        if let Some(p) = self.parser.as_mut() {
            let before = out.len();
            p.parse(direction(dir), data, ts, out);
            if self.encrypted_at.is_none() {
                if let Some(clear) = p.encrypted() {
                    let mut at = self.seen;
                    if clear == al::ClearUntil::Before {
                        at[dir] -= data.len() as u64;
                    }
                    self.encrypted_at = Some(at);
                }
            }
            self.upgrade(t, before, ts, cfg, out);
            return;
        }
        if self.proto.is_some() {
            return;
        }
        if self.nomatch[dir] {
            // Detection failed in this direction, but the other may still find the
            // protocol; like Suricata, the parser then gets this direction's data too.
            if t == Transport::Tcp {
                let room = PROBE_LIMIT.saturating_sub(self.probe_buf[dir].len());
                self.probe_buf[dir].extend_from_slice(&data[..data.len().min(room)]);
            }
            return;
        }
        let (sp, dp) = if dir == 0 {
            (client_port, server_port)
        } else {
            (server_port, client_port)
        };
        let buffered = !self.probe_buf[dir].is_empty();
        let probe = if buffered {
            let room = PROBE_LIMIT.saturating_sub(self.probe_buf[dir].len());
            let take = data.len().min(room);
            self.probe_buf[dir].extend_from_slice(&data[..take]);
            al::probe(t, direction(dir), sp, dp, &self.probe_buf[dir])
        } else {
            al::probe(t, direction(dir), sp, dp, data)
        };
        match probe {
            Probe::Match(proto) => {
                self.proto = Some(proto);
                self.parser = al::new_parser_for(proto, t, cfg);
                let bufs = std::mem::take(&mut self.probe_buf);
                let before = out.len();
                if let Some(p) = self.parser.as_mut() {
                    if t == Transport::Tcp {
                        let mine = if buffered { bufs[dir].as_slice() } else { data };
                        // The data held for the other direction (undecided, or where
                        // detection failed) goes in too, in the order it was seen.
                        let o = dir ^ 1;
                        if self.first == Some(o) && !bufs[o].is_empty() {
                            p.parse(direction(o), &bufs[o], ts, out);
                            p.parse(direction(dir), mine, ts, out);
                        } else {
                            p.parse(direction(dir), mine, ts, out);
                            if !bufs[o].is_empty() {
                                p.parse(direction(o), &bufs[o], ts, out);
                            }
                        }
                    } else {
                        p.parse(direction(dir), data, ts, out);
                    }
                }
                self.upgrade(t, before, ts, cfg, out);
            }
            Probe::NeedMore if t == Transport::Tcp => {
                if !buffered {
                    self.probe_buf[dir].extend_from_slice(&data[..data.len().min(PROBE_LIMIT)]);
                }
                if self.probe_buf[dir].len() >= PROBE_LIMIT {
                    self.give_up(dir);
                }
            }
            Probe::NeedMore => {}
            Probe::NoMatch => {
                if self.try_reverse(
                    t,
                    dir,
                    (client_port, server_port),
                    buffered,
                    data,
                    ts,
                    cfg,
                    out,
                ) {
                    return;
                }
                if t == Transport::Tcp && !buffered {
                    self.probe_buf[dir].extend_from_slice(&data[..data.len().min(PROBE_LIMIT)]);
                }
                self.give_up(dir);
            }
        }
    }

    /// The first to-server data of a midstream session matched no protocol: if it is what
    /// a server sends first (an HTTP response), the flow is reversed (`reversed`) and the
    /// data is fed again as to-client data. True when it was.
    #[allow(
        clippy::too_many_arguments,
        reason = "the arguments of `data`, passed on"
    )]
    fn try_reverse(
        &mut self,
        t: Transport,
        dir: usize,
        (client_port, server_port): (u16, u16),
        buffered: bool,
        data: &[u8],
        ts: i64,
        cfg: &AppConfig,
        out: &mut Vec<AppEvent>,
    ) -> bool {
        if dir != 0 || t != Transport::Tcp || !self.midstream || self.reversed || self.seen[1] > 0 {
            return false;
        }
        let full = if buffered {
            std::mem::take(&mut self.probe_buf[0])
        } else {
            data.to_vec()
        };
        // The sender is the server: its port is the source port.
        let server_first = al::probe(t, Direction::ToClient, client_port, server_port, &full);
        if !matches!(server_first, Probe::Match(_)) {
            if buffered {
                self.probe_buf[0] = full;
            }
            return false;
        }
        self.reversed = true;
        self.seen = [0; 2];
        self.first = None;
        self.nomatch = [false; 2];
        self.data(t, 1, server_port, client_port, &full, ts, cfg, out);
        true
    }

    /// This flow is the data connection `spec` announced by control flow `parent`: it is
    /// parsed as FTP data from now on (bytes held for detection are dropped).
    pub fn expected(&mut self, spec: &FtpDataSpec, parent: u64, cfg: &AppConfig) {
        self.proto = Some(AppProto::FtpData);
        self.parser = Some(al::new_ftp_data_parser(spec, cfg));
        self.parent = Some(parent);
        self.probe_buf = Default::default();
        self.nomatch = [false; 2];
    }

    /// Follows an `AppEvent::Upgrade` among the events from `before` on, as Suricata
    /// does: SMTP STARTTLS and FTP AUTH TLS switch the flow to the TLS parser, an HTTP
    /// CONNECT tunnel or 101 response makes the flow's next bytes go through detection
    /// again. The flow's `app_proto` becomes the new protocol (or `failed`), and the old
    /// one is kept as `app_proto_orig`.
    fn upgrade(
        &mut self,
        t: Transport,
        before: usize,
        ts: i64,
        cfg: &AppConfig,
        out: &mut Vec<AppEvent>,
    ) {
        let upgrade = out
            .get(before..)
            .unwrap_or_default()
            .iter()
            .find_map(|e| match e {
                AppEvent::Upgrade { from, to } => Some((*from, *to)),
                _ => None,
            });
        let Some((from, to)) = upgrade else {
            return;
        };
        // The old parser logs what it still holds (e.g. the SMTP transaction).
        if let Some(mut old) = self.parser.take() {
            old.close(ts, out);
        }
        if self.orig.is_none() {
            self.orig = Some(from);
        }
        self.probe_buf = Default::default();
        self.nomatch = [false; 2];
        match to {
            Some(proto) => {
                self.proto = Some(proto);
                self.parser = al::new_parser_for(proto, t, cfg);
            }
            None => {
                self.proto = None;
                self.parser = None;
            }
        }
    }

    fn give_up(&mut self, dir: usize) {
        self.nomatch[dir] = true;
        if self.nomatch[dir ^ 1] {
            // Both directions failed: Suricata reports "failed".
            self.proto = Some(AppProto::Failed);
            self.probe_buf = Default::default();
        }
    }

    /// A reassembly gap of `len` bytes in `dir`.
    pub fn gap(&mut self, dir: usize, len: u64, out: &mut Vec<AppEvent>) {
        if self.gapped {
            return;
        }
        match self.parser.as_mut() {
            Some(p) => {
                p.gap(direction(dir), len, out);
                if matches!(p.proto(), AppProto::Http | AppProto::Smb | AppProto::Nfs) {
                    // libhtp and Suricata's SMB and NFS parsers accept gaps (registered with
                    // APP_LAYER_PARSER_OPT_ACCEPT_GAPS): the parser resyncs where it can.
                    return;
                }
            }
            None if self.proto.is_none() => self.give_up(dir & 1),
            None => {}
        }
        self.gapped = true;
    }

    /// Flow end: direction `dir` stops at a hole nobody acknowledged; its data after the
    /// hole is not delivered.
    pub fn cut(&mut self, dir: usize) {
        if let Some(c) = self.cut.get_mut(dir) {
            *c = true;
        }
    }

    /// End of flow: flush the parser; settle detection.
    pub fn close(&mut self, ts: i64, out: &mut Vec<AppEvent>) {
        if let Some(p) = self.parser.as_mut() {
            let from = out.len();
            p.close(ts, out);
            // An HTTP file still open in a direction cut by a hole: Suricata's parser never
            // saw that direction end, the file is truncated when the flow is freed, and
            // logged without hashes.
            if p.proto() == AppProto::Http {
                for e in out.get_mut(from..).unwrap_or_default() {
                    if let AppEvent::File(f) = e {
                        let d = usize::from(f.direction == Direction::ToClient);
                        if f.state == FileState::Truncated && self.cut[d] {
                            f.flow_end = true;
                        }
                    }
                }
            }
        }
        self.parser = None;
        if self.proto.is_none()
            && (self.nomatch[0] || self.nomatch[1] || self.seen[0] + self.seen[1] > 0)
        {
            self.proto = Some(AppProto::Failed);
        }
        self.probe_buf = Default::default();
    }

    /// The reassembly depth this flow's protocol asks for, if it differs from the
    /// configured one: SMB streams are followed whole (Suricata's default SMB
    /// `stream-depth: 0`), so files past the first megabyte are not lost.
    pub fn stream_depth(&self) -> Option<u64> {
        (self.proto == Some(AppProto::Smb)).then_some(u64::MAX)
    }

    /// The flow's data is encrypted from here on: its payload is no longer inspected.
    pub fn encrypted(&self) -> bool {
        self.encrypted_at.is_some()
    }

    /// EVE flow `app_proto`, when detection ran.
    pub fn eve_name(&self) -> Option<&'static str> {
        self.proto.map(AppProto::as_str)
    }

    /// EVE flow `app_proto_orig`: the protocol before an upgrade, if there was one.
    pub fn eve_orig_name(&self) -> Option<&'static str> {
        self.orig.map(AppProto::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midstream_response_first_reverses_the_flow() {
        let cfg = AppConfig::default();
        let resp = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi";
        // Picked up midstream: the response's sender is the server.
        let mut a = AppState {
            midstream: true,
            ..AppState::default()
        };
        let mut out = Vec::new();
        a.data(Transport::Tcp, 0, 8080, 51297, resp, 0, &cfg, &mut out);
        assert!(a.reversed);
        assert_eq!(a.proto, Some(AppProto::Http));
        assert_eq!(a.seen, [0, resp.len() as u64]);
        let tx = out.iter().find_map(|e| match e {
            AppEvent::Tx(al::Transaction::Http(t)) => Some(t),
            _ => None,
        });
        assert_eq!(
            tx.and_then(|t| t.status),
            Some(200),
            "parsed as the response"
        );
        // Not midstream (or a request): no reversal, detection fails in that direction.
        let mut a = AppState::default();
        a.data(
            Transport::Tcp,
            0,
            8080,
            51297,
            resp,
            0,
            &cfg,
            &mut Vec::new(),
        );
        assert!(!a.reversed && a.proto.is_none());
        let mut a = AppState {
            midstream: true,
            ..AppState::default()
        };
        a.data(
            Transport::Tcp,
            0,
            40000,
            80,
            b"GET / HTTP/1.0\r\n\r\n",
            0,
            &cfg,
            &mut Vec::new(),
        );
        assert!(!a.reversed);
        assert_eq!(a.proto, Some(AppProto::Http));
    }

    #[test]
    fn detects_http_split_over_segments_and_parses() {
        let cfg = AppConfig::default();
        let mut a = AppState::default();
        let mut out = Vec::new();
        a.data(Transport::Tcp, 0, 40000, 80, b"GE", 0, &cfg, &mut out);
        a.data(
            Transport::Tcp,
            0,
            40000,
            80,
            b"T / HTTP/1.1\r\nHost: x\r\n\r\n",
            0,
            &cfg,
            &mut out,
        );
        assert_eq!(a.proto, Some(AppProto::Http));
        a.data(
            Transport::Tcp,
            1,
            40000,
            80,
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            1,
            &cfg,
            &mut out,
        );
        a.close(2, &mut out);
        assert!(
            out.iter().any(|e| matches!(e, AppEvent::Tx(_))),
            "no transaction"
        );
    }

    #[test]
    fn smtp_starttls_switches_the_flow_to_tls() {
        let cfg = AppConfig::default();
        let mut a = AppState::default();
        let mut out = Vec::new();
        let feed = |a: &mut AppState, dir: usize, b: &[u8], out: &mut Vec<AppEvent>| {
            a.data(Transport::Tcp, dir, 40000, 25, b, 0, &cfg, out);
        };
        feed(&mut a, 1, b"220 mx.example ESMTP\r\n", &mut out);
        feed(&mut a, 0, b"EHLO client.example\r\n", &mut out);
        feed(&mut a, 1, b"250-mx.example\r\n250 STARTTLS\r\n", &mut out);
        feed(&mut a, 0, b"STARTTLS\r\n", &mut out);
        feed(&mut a, 1, b"220 2.0.0 Ready to start TLS\r\n", &mut out);
        assert_eq!(a.proto, Some(AppProto::Tls));
        assert_eq!(a.eve_orig_name(), Some("smtp"));
        // A minimal TLS 1.2 ClientHello: record (handshake, 3.1, len 51), ClientHello
        // (len 47): version 3.3, 32-byte random, no session id, one suite (0x002f), null
        // compression, an empty session_ticket extension (a resumable session: Suricata
        // logs it without the server's certificate).
        let mut hello = vec![
            0x16, 0x03, 0x01, 0x00, 0x33, 0x01, 0x00, 0x00, 0x2f, 0x03, 0x03,
        ];
        hello.extend_from_slice(&[7; 32]);
        hello.extend_from_slice(&[0x00, 0x00, 0x02, 0x00, 0x2f, 0x01, 0x00]);
        hello.extend_from_slice(&[0x00, 0x04, 0x00, 0x23, 0x00, 0x00]);
        feed(&mut a, 0, &hello, &mut out);
        a.close(1, &mut out);
        let kinds: Vec<_> = out
            .iter()
            .filter_map(|e| match e {
                AppEvent::Tx(t) => Some(t.proto()),
                _ => None,
            })
            .collect();
        assert!(kinds.contains(&AppProto::Smtp), "{kinds:?}");
        assert!(kinds.contains(&AppProto::Tls), "{kinds:?}");
        assert_eq!(a.eve_name(), Some("tls"));
    }

    #[test]
    fn http_connect_probes_again_and_gaps_do_not_stop_http() {
        let cfg = AppConfig::default();
        let mut a = AppState::default();
        let mut out = Vec::new();
        a.data(
            Transport::Tcp,
            0,
            40000,
            8080,
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            0,
            &cfg,
            &mut out,
        );
        a.data(
            Transport::Tcp,
            1,
            40000,
            8080,
            b"HTTP/1.1 200 Connection established\r\n\r\n",
            0,
            &cfg,
            &mut out,
        );
        assert_eq!(a.proto, None);
        assert_eq!(a.eve_orig_name(), Some("http"));
        a.data(
            Transport::Tcp,
            0,
            40000,
            8080,
            b"\x01\x02",
            0,
            &cfg,
            &mut out,
        );
        a.close(1, &mut out);
        // Nothing recognisable after the tunnel opened: failed, like Suricata.
        assert_eq!(a.eve_name(), Some("failed"));

        let mut a = AppState::default();
        let mut out = Vec::new();
        a.data(
            Transport::Tcp,
            0,
            40000,
            80,
            b"GET /a HTTP/1.1\r\n\r\n",
            0,
            &cfg,
            &mut out,
        );
        a.gap(1, 100, &mut out);
        a.data(
            Transport::Tcp,
            0,
            40000,
            80,
            b"GET /b HTTP/1.1\r\n\r\n",
            0,
            &cfg,
            &mut out,
        );
        a.close(1, &mut out);
        let n = out.iter().filter(|e| matches!(e, AppEvent::Tx(_))).count();
        assert_eq!(n, 2);
    }

    #[test]
    fn request_that_fails_detection_is_parsed_once_the_response_is_http() {
        // A fuzzed method the probe does not know; the server's answer is HTTP. Suricata
        // logs one transaction: method "OPTIONSHTTP/1.1", host www.google.com, status 400.
        let cfg = AppConfig::default();
        let mut a = AppState::default();
        let mut out = Vec::new();
        let req = b"OPTIONSHTTP/1.1\r\nHost: www.google.com\r\n\r\n";
        a.data(Transport::Tcp, 0, 46564, 80, req, 0, &cfg, &mut out);
        assert_eq!(a.proto, None);
        let resp = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        a.data(Transport::Tcp, 1, 46564, 80, resp, 1, &cfg, &mut out);
        a.close(2, &mut out);
        assert_eq!(a.eve_name(), Some("http"));
        let txs: Vec<_> = out
            .iter()
            .filter_map(|e| match e {
                AppEvent::Tx(khien_applayer::Transaction::Http(t)) => Some(t),
                _ => None,
            })
            .collect();
        assert_eq!(txs.len(), 1);
        assert_eq!(txs[0].method, b"OPTIONSHTTP/1.1");
        assert_eq!(txs[0].host.as_deref(), Some(&b"www.google.com"[..]));
        assert_eq!(txs[0].status, Some(400));
    }

    #[test]
    fn garbage_fails_detection() {
        let cfg = AppConfig::default();
        let mut a = AppState::default();
        let mut out = Vec::new();
        a.data(
            Transport::Udp,
            0,
            40000,
            9999,
            &[0xde, 0xad, 0xbe, 0xef],
            0,
            &cfg,
            &mut out,
        );
        a.close(1, &mut out);
        assert_eq!(a.eve_name(), Some("failed"));
        assert!(out.is_empty());
    }

    /// A flow key between two addresses (ports as given, client first).
    fn key(a: u8, ap: u16, b: u8, bp: u16) -> FlowKey {
        let mut lo = [0; 16];
        let mut hi = [0; 16];
        lo[15] = a;
        hi[15] = b;
        FlowKey {
            lo,
            hi,
            lo_port: ap,
            hi_port: bp,
            proto: 6,
            v6: false,
            vlan: [0, 0],
        }
    }

    #[test]
    fn expected_data_connection_is_parsed_as_ftp_data() {
        let cfg = AppConfig::default();
        let spec = FtpDataSpec {
            port: 50000,
            filename: b"notepad.exe".to_vec(),
            command: b"RETR".to_vec(),
            upload: false,
            passive: true,
        };
        let mut x = Expectations::default();
        x.add(&key(1, 40000, 2, 21), 7, spec.clone(), 0);
        // Another host pair, or another port: not this announcement.
        assert!(x.take(&key(1, 40001, 3, 50000), 50000, 1).is_none());
        assert!(x.take(&key(1, 40001, 2, 50001), 50001, 1).is_none());
        // The data connection, addresses in either order.
        let (got, parent) = x.take(&key(2, 50000, 1, 40001), 50000, 1).unwrap();
        assert_eq!((got.clone(), parent), (spec.clone(), 7));
        assert!(x.is_empty(), "used once");
        let mut a = AppState::default();
        a.expected(&got, parent, &cfg);
        let mut out = Vec::new();
        a.data(
            Transport::Tcp,
            1,
            40001,
            50000,
            b"MZ\x90\x00",
            0,
            &cfg,
            &mut out,
        );
        a.close(1, &mut out);
        assert_eq!(a.eve_name(), Some("ftp-data"));
        assert_eq!(a.parent, Some(7));
        let files: Vec<_> = out
            .iter()
            .filter_map(|e| match e {
                AppEvent::File(f) => Some(f),
                _ => None,
            })
            .collect();
        assert_eq!(files.len(), 1);
        assert_eq!(
            (files[0].size, files[0].direction),
            (4, Direction::ToClient)
        );
        // Stale announcements expire; the table is bounded.
        x.add(&key(1, 40000, 2, 21), 7, spec.clone(), 0);
        assert!(x
            .take(&key(1, 1, 2, 50000), 50000, EXPECT_TIMEOUT + 1)
            .is_none());
        for p in 0..(MAX_EXPECTED as u16 + 10) {
            x.add(
                &key(1, 40000, 2, 21),
                7,
                FtpDataSpec {
                    port: p,
                    ..spec.clone()
                },
                0,
            );
        }
        assert_eq!(x.entries.len(), MAX_EXPECTED);
    }

    #[test]
    fn nfs_on_port_2049_keeps_parsing_after_a_gap() {
        let cfg = AppConfig::default();
        let mut a = AppState::default();
        let mut out = Vec::new();
        // An RPC NULL call to NFSv3 (xid 1, AUTH_NONE), record-marked.
        let mut call = vec![0x80, 0, 0, 40, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2];
        call.extend_from_slice(&100_003u32.to_be_bytes());
        call.extend_from_slice(&[0, 0, 0, 3, 0, 0, 0, 0]);
        call.extend_from_slice(&[0; 16]);
        a.data(Transport::Tcp, 0, 900, 2049, &call, 0, &cfg, &mut out);
        assert_eq!(a.proto, Some(AppProto::Nfs));
        // Like Suricata's, the NFS parser accepts gaps: the flow is not given up.
        a.gap(0, 100, &mut out);
        assert!(!a.gapped);
        a.gap(1, 100, &mut out);
        assert!(!a.gapped);
    }
}
