//! Per-flow application-layer state: protocol detection (port hint + content probing
//! through `khien_applayer::probe`) and the parser the sensor feeds in-order bytes to.

use khien_applayer::{
    self as al, AppConfig, AppEvent, AppProto, Direction, Parser, Probe, Transport,
};

/// Most bytes buffered per direction while detection needs more data.
pub const PROBE_LIMIT: usize = 4096;

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
    /// A reassembly gap stopped parsing (Suricata's parsers for these protocols do not
    /// accept gaps: the flow's app layer stops at the first one).
    pub gapped: bool,
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
        if self.gapped {
            return;
        }
        if let Some(p) = self.parser.as_mut() {
            p.parse(direction(dir), data, ts, out);
            return;
        }
        if self.proto.is_some() || self.nomatch[dir] {
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
                if let Some(p) = self.parser.as_mut() {
                    if t == Transport::Tcp {
                        let first = if buffered { bufs[dir].as_slice() } else { data };
                        p.parse(direction(dir), first, ts, out);
                        let o = dir ^ 1;
                        if !bufs[o].is_empty() {
                            p.parse(direction(o), &bufs[o], ts, out);
                        }
                    } else {
                        p.parse(direction(dir), data, ts, out);
                    }
                }
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
            Probe::NoMatch => self.give_up(dir),
        }
    }

    fn give_up(&mut self, dir: usize) {
        self.nomatch[dir] = true;
        self.probe_buf[dir] = Vec::new();
        if self.nomatch[dir ^ 1] || self.seen[dir ^ 1] == 0 {
            // Both directions failed, or the other never spoke (yet): Suricata reports
            // "failed" once detection has given up on the data it had.
            if self.nomatch[dir ^ 1] {
                self.proto = Some(AppProto::Failed);
            }
        }
    }

    /// A reassembly gap of `len` bytes in `dir`.
    pub fn gap(&mut self, dir: usize, len: u64, out: &mut Vec<AppEvent>) {
        if self.gapped {
            return;
        }
        match self.parser.as_mut() {
            Some(p) => p.gap(direction(dir), len, out),
            None if self.proto.is_none() => self.give_up(dir & 1),
            None => {}
        }
        self.gapped = true;
    }

    /// End of flow: flush the parser; settle detection.
    pub fn close(&mut self, ts: i64, out: &mut Vec<AppEvent>) {
        if let Some(p) = self.parser.as_mut() {
            p.close(ts, out);
        }
        self.parser = None;
        if self.proto.is_none()
            && (self.nomatch[0] || self.nomatch[1] || self.seen[0] + self.seen[1] > 0)
        {
            self.proto = Some(AppProto::Failed);
        }
        self.probe_buf = Default::default();
    }

    /// EVE flow `app_proto`, when detection ran.
    pub fn eve_name(&self) -> Option<&'static str> {
        self.proto.map(AppProto::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
