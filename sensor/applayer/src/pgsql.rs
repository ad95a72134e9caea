//! PostgreSQL, only as far as the EVE types khien writes need it: a client's SSLRequest
//! answered `S` by the server switches the flow to TLS (Suricata 7 writes such flows as
//! `app_proto` "tls" with `app_proto_orig` "pgsql", and logs their TLS handshake). The
//! protocol's own messages are not logged (no `pgsql` EVE type).

use crate::{AppEvent, AppProto, Direction, Parser, Probe};

/// The server port Suricata 7's pgsql probing parser listens on.
pub(crate) const PGSQL_PORT: u16 = 5432;
/// SSLRequest: length 8, request code 80877103 (RFC-less; PostgreSQL protocol docs 55.2.10).
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/// GSSENCRequest code 80877104, protocol 3.0 StartupMessage version 196608.
const GSSENC_CODE: [u8; 4] = [0x04, 0xd2, 0x16, 0x30];
const PROTO_3_0: [u8; 4] = [0, 3, 0, 0];
/// Longest StartupMessage accepted by the probe (PostgreSQL's own limit is 10,000).
const MAX_STARTUP: u32 = 10_000;

/// Client side of a PostgreSQL session: an SSLRequest, a GSSENCRequest or a protocol 3.0
/// StartupMessage (length, then version/code). Only looked for on the pgsql port.
pub(crate) fn probe(data: &[u8]) -> Probe {
    let Some(head) = data.get(..8) else {
        // Lengths start with two zero bytes for every message the probe accepts.
        return if data.iter().take(2).all(|&b| b == 0) {
            Probe::NeedMore
        } else {
            Probe::NoMatch
        };
    };
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let code = [head[4], head[5], head[6], head[7]];
    let ok = head == SSL_REQUEST
        || (len == 8 && code == GSSENC_CODE)
        || (code == PROTO_3_0 && (9..=MAX_STARTUP).contains(&len));
    if ok {
        Probe::Match(AppProto::Pgsql)
    } else {
        Probe::NoMatch
    }
}

/// Per-flow state: has the client asked for TLS, and is the parser done.
pub(crate) struct PgsqlParser {
    /// Bytes of a to-server SSLRequest matched so far (the request may arrive split).
    ssl_req: usize,
    /// The client's first message was an SSLRequest; the server's next byte answers it.
    asked: bool,
    /// Past the SSL negotiation: nothing more to follow.
    done: bool,
}

impl PgsqlParser {
    pub(crate) fn new() -> Self {
        PgsqlParser {
            ssl_req: 0,
            asked: false,
            done: false,
        }
    }
}

impl Parser for PgsqlParser {
    fn proto(&self) -> AppProto {
        AppProto::Pgsql
    }

    fn parse(&mut self, dir: Direction, data: &[u8], _ts: i64, out: &mut Vec<AppEvent>) {
        if self.done || data.is_empty() {
            return;
        }
        match dir {
            Direction::ToServer if !self.asked => {
                for &b in data {
                    if SSL_REQUEST.get(self.ssl_req) == Some(&b) {
                        self.ssl_req += 1;
                        if self.ssl_req == SSL_REQUEST.len() {
                            self.asked = true;
                            return;
                        }
                    } else {
                        // Not an SSLRequest (a plain StartupMessage): nothing to follow.
                        self.done = true;
                        return;
                    }
                }
            }
            Direction::ToServer => {}
            Direction::ToClient => {
                if self.asked && data.first() == Some(&b'S') {
                    out.push(AppEvent::Upgrade {
                        from: AppProto::Pgsql,
                        to: Some(AppProto::Tls),
                    });
                }
                // 'N' (or anything else) keeps the session in clear text.
                self.done = true;
            }
        }
    }

    fn gap(&mut self, _dir: Direction, _len: u64, _out: &mut Vec<AppEvent>) {
        self.done = true;
    }

    fn close(&mut self, _ts: i64, _out: &mut Vec<AppEvent>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrades(ev: &[AppEvent]) -> usize {
        ev.iter()
            .filter(|e| {
                matches!(
                    e,
                    AppEvent::Upgrade {
                        from: AppProto::Pgsql,
                        to: Some(AppProto::Tls)
                    }
                )
            })
            .count()
    }

    #[test]
    fn probe_accepts_ssl_request_and_startup_only() {
        assert_eq!(probe(&SSL_REQUEST), Probe::Match(AppProto::Pgsql));
        assert_eq!(probe(&SSL_REQUEST[..3]), Probe::NeedMore);
        // StartupMessage: length 41, protocol 3.0, "user\0postgres\0...".
        let mut startup = vec![0, 0, 0, 41, 0, 3, 0, 0];
        startup.extend_from_slice(b"user\0postgres\0database\0db\0\0");
        assert_eq!(probe(&startup), Probe::Match(AppProto::Pgsql));
        assert_eq!(probe(b"GET / HTTP/1.1"), Probe::NoMatch);
        // Oversized and undersized lengths.
        assert_eq!(probe(&[0, 1, 0, 0, 0, 3, 0, 0]), Probe::NoMatch);
        assert_eq!(probe(&[0, 0, 0, 4, 0, 3, 0, 0]), Probe::NoMatch);
        assert_eq!(probe(&[]), Probe::NeedMore);
    }

    #[test]
    fn ssl_request_answered_s_upgrades_to_tls_any_split() {
        for cut in 0..=SSL_REQUEST.len() {
            let mut p = PgsqlParser::new();
            let mut out = Vec::new();
            p.parse(Direction::ToServer, &SSL_REQUEST[..cut], 0, &mut out);
            p.parse(Direction::ToServer, &SSL_REQUEST[cut..], 0, &mut out);
            p.parse(Direction::ToClient, b"S", 0, &mut out);
            assert_eq!(upgrades(&out), 1, "cut {cut}");
        }
    }

    #[test]
    fn refused_or_plain_sessions_stay_and_malformed_input_is_harmless() {
        let mut p = PgsqlParser::new();
        let mut out = Vec::new();
        p.parse(Direction::ToServer, &SSL_REQUEST, 0, &mut out);
        p.parse(Direction::ToClient, b"N", 0, &mut out);
        p.parse(Direction::ToClient, b"S", 0, &mut out);
        assert_eq!(upgrades(&out), 0);
        // A StartupMessage first: an 'S' later (an ErrorResponse field) is no answer.
        let mut p = PgsqlParser::new();
        p.parse(
            Direction::ToServer,
            &[0, 0, 0, 9, 0, 3, 0, 0, 0],
            0,
            &mut out,
        );
        p.parse(Direction::ToClient, b"S", 0, &mut out);
        assert_eq!(upgrades(&out), 0);
        // Truncated request, gap, oversized junk: no event, no panic.
        let mut p = PgsqlParser::new();
        p.parse(Direction::ToServer, &SSL_REQUEST[..5], 0, &mut out);
        p.gap(Direction::ToServer, 3, &mut out);
        p.parse(Direction::ToClient, b"S", 0, &mut out);
        p.parse(Direction::ToServer, &vec![0xff; 1 << 16], 0, &mut out);
        p.close(0, &mut out);
        assert!(out.is_empty());
    }
}
