//! Kerberos 5 (RFC 4120) on port 88: protocol detection like Suricata's krb5 probing
//! parsers and a message framer that turns each request and reply into a transaction.
//! Over TCP each message follows a 4-byte record mark (RFC 4120 §7.2.2), over UDP a
//! datagram is one message. Only the outer ASN.1 `APPLICATION` tag is read (the message
//! type); the transaction exists so that, as in Suricata, a complete Kerberos message
//! makes the flow's raw stream ready for inspection. No EVE `krb5` record is written yet.

use crate::{AppConfig, AppEvent, AppProto, Direction, Parser, Probe, Transaction, Transport};

/// Kerberos' port (TCP and UDP).
pub const KRB5_PORT: u16 = 88;

/// Largest TCP record accepted by detection (Suricata's probe refuses larger ones).
const PROBE_MAX_RECORD: u32 = 16_384;

/// One Kerberos message.
#[derive(Clone, Debug)]
pub struct Krb5Tx {
    pub tx_id: u64,
    /// The ASN.1 `APPLICATION` tag number: 10 AS-REQ, 11 AS-REP, 12 TGS-REQ, 13 TGS-REP,
    /// 14 AP-REQ, 15 AP-REP, 30 KRB-ERROR (others are carried as read).
    pub msg_type: u8,
    pub direction: Direction,
}

impl Krb5Tx {
    /// Suricata's name of the message type (`KRB_AS_REQ`, …), `None` for other tags.
    pub fn msg_type_name(&self) -> Option<&'static str> {
        Some(match self.msg_type {
            10 => "KRB_AS_REQ",
            11 => "KRB_AS_REP",
            12 => "KRB_TGS_REQ",
            13 => "KRB_TGS_REP",
            14 => "KRB_AP_REQ",
            15 => "KRB_AP_REP",
            30 => "KRB_ERROR",
            _ => return None,
        })
    }
}

/// A DER element header: (class bits, constructed, tag number, header length, content
/// length). `None` when incomplete or not DER (long tags and indefinite lengths are
/// refused; lengths over 4 bytes too).
fn der_header(b: &[u8]) -> Option<(u8, bool, u8, usize, usize)> {
    let first = *b.first()?;
    let tag = first & 0x1f;
    if tag == 0x1f {
        return None;
    }
    let l0 = *b.get(1)?;
    let (hlen, len) = if l0 & 0x80 == 0 {
        (2, usize::from(l0))
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = b.get(2..2 + n)?;
        let len = bytes.iter().fold(0usize, |a, &x| (a << 8) | usize::from(x));
        (2 + n, len)
    };
    Some((first >> 6, first & 0x20 != 0, tag, hlen, len))
}

/// Suricata's krb5 probe on one message: an `APPLICATION` element (tag ≤ 30) holding a
/// SEQUENCE whose first field is the protocol version 5.
fn probe_message(b: &[u8]) -> Probe {
    if b.len() <= 10 {
        return Probe::NoMatch;
    }
    let Some((class, _, tag, hlen, _)) = der_header(b) else {
        return Probe::NoMatch;
    };
    if class != 1 || tag > 30 {
        return Probe::NoMatch;
    }
    let rest = b.get(hlen..).unwrap_or_default();
    if rest.first() != Some(&0x30) {
        return Probe::NoMatch;
    }
    let Some((_, _, _, shlen, _)) = der_header(rest) else {
        return Probe::NoMatch;
    };
    // The first field: [0] or [1] INTEGER 5 (a0/a1 03 02 01 05).
    match rest.get(shlen + 2..shlen + 5) {
        Some([2, 1, 5]) => Probe::Match(AppProto::Krb5),
        _ => Probe::NoMatch,
    }
}

/// Detection for a flow on port 88 (`t` tells the TCP record mark from a UDP datagram).
pub fn probe(t: Transport, data: &[u8]) -> Probe {
    match t {
        Transport::Udp => probe_message(data),
        Transport::Tcp => {
            if data.len() <= 14 {
                return Probe::NeedMore;
            }
            let mark = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            if mark > PROBE_MAX_RECORD {
                return Probe::NoMatch;
            }
            probe_message(&data[4..])
        }
    }
}

/// Per-direction TCP framing state.
#[derive(Debug, Default)]
struct Side {
    /// Record mark bytes read so far (up to 4).
    mark: Vec<u8>,
    /// Bytes of the current record still to come.
    need: usize,
    /// The current record's first bytes (its ASN.1 header), up to `HEAD_MAX`.
    head: Vec<u8>,
    /// A gap broke the framing: nothing more is parsed in this direction.
    broken: bool,
}

/// Record bytes kept to read the message type.
const HEAD_MAX: usize = 16;

/// The Kerberos parser of one flow.
pub struct Krb5Parser {
    transport: Transport,
    sides: [Side; 2],
    next_tx: u64,
    max_record: usize,
}

impl Krb5Parser {
    pub fn new(cfg: &AppConfig, transport: Transport) -> Self {
        Krb5Parser {
            transport,
            sides: Default::default(),
            next_tx: 0,
            max_record: cfg.max_buffer.max(PROBE_MAX_RECORD as usize),
        }
    }

    fn message(&mut self, dir: Direction, head: &[u8], out: &mut Vec<AppEvent>) {
        let Some((1, _, tag, _, _)) = der_header(head) else {
            return;
        };
        let tx = Krb5Tx {
            tx_id: self.next_tx,
            msg_type: tag,
            direction: dir,
        };
        self.next_tx += 1;
        out.push(AppEvent::Tx(Transaction::Krb5(tx)));
    }
}

impl Parser for Krb5Parser {
    fn proto(&self) -> AppProto {
        AppProto::Krb5
    }

    fn parse(&mut self, dir: Direction, mut data: &[u8], _ts: i64, out: &mut Vec<AppEvent>) {
        if self.transport == Transport::Udp {
            self.message(dir, data, out);
            return;
        }
        let d = dir.idx();
        while !data.is_empty() && !self.sides[d].broken {
            let s = &mut self.sides[d];
            if s.need == 0 {
                let take = (4 - s.mark.len()).min(data.len());
                s.mark.extend_from_slice(&data[..take]);
                data = &data[take..];
                if s.mark.len() < 4 {
                    return;
                }
                let m = u32::from_be_bytes([s.mark[0], s.mark[1], s.mark[2], s.mark[3]]);
                s.mark.clear();
                // The high bit is reserved (RFC 4120 §7.2.2); a huge record is no framing.
                let len = (m & 0x7fff_ffff) as usize;
                if m & 0x8000_0000 != 0 || len > self.max_record {
                    s.broken = true;
                    return;
                }
                if len == 0 {
                    continue;
                }
                s.need = len;
                s.head.clear();
            }
            let take = s.need.min(data.len());
            let room = HEAD_MAX.saturating_sub(s.head.len()).min(take);
            s.head.extend_from_slice(&data[..room]);
            s.need -= take;
            data = &data[take..];
            if s.need == 0 {
                let head = std::mem::take(&mut s.head);
                self.message(dir, &head, out);
                self.sides[d].head = head;
            }
        }
    }

    fn gap(&mut self, dir: Direction, _len: u64, _out: &mut Vec<AppEvent>) {
        self.sides[dir.idx()].broken = true;
    }

    fn close(&mut self, _ts: i64, _out: &mut Vec<AppEvent>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An AS-REQ-like message: APPLICATION 10 { SEQUENCE { [1] INTEGER 5, [2] INTEGER 10 } }
    /// padded to `pad` more bytes inside the sequence.
    fn msg(tag: u8, pad: usize) -> Vec<u8> {
        let mut inner = vec![0xa1, 0x03, 0x02, 0x01, 0x05, 0xa2, 0x03, 0x02, 0x01, tag];
        inner.extend(std::iter::repeat_n(0u8, pad));
        let mut seq = vec![0x30, 0x82];
        seq.extend_from_slice(&(inner.len() as u16).to_be_bytes());
        seq.extend(inner);
        let mut m = vec![0x60 | tag, 0x82];
        m.extend_from_slice(&(seq.len() as u16).to_be_bytes());
        m.extend(seq);
        m
    }

    fn tcp(m: &[u8]) -> Vec<u8> {
        let mut r = (m.len() as u32).to_be_bytes().to_vec();
        r.extend_from_slice(m);
        r
    }

    fn types(ev: &[AppEvent]) -> Vec<(u8, Direction)> {
        ev.iter()
            .filter_map(|e| match e {
                AppEvent::Tx(Transaction::Krb5(t)) => Some((t.msg_type, t.direction)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn probes_like_suricata() {
        let m = msg(10, 20);
        assert_eq!(probe(Transport::Udp, &m), Probe::Match(AppProto::Krb5));
        assert_eq!(
            probe(Transport::Tcp, &tcp(&m)),
            Probe::Match(AppProto::Krb5)
        );
        assert_eq!(probe(Transport::Tcp, &tcp(&m)[..10]), Probe::NeedMore);
        // Version 4, a universal tag, a huge record mark, junk: not Kerberos.
        let mut v4 = m.clone();
        v4[12] = 4;
        assert_eq!(probe(Transport::Udp, &v4), Probe::NoMatch);
        let mut univ = m.clone();
        univ[0] = 0x30;
        assert_eq!(probe(Transport::Udp, &univ), Probe::NoMatch);
        let mut big = tcp(&m);
        big[1] = 0x40;
        assert_eq!(probe(Transport::Tcp, &big), Probe::NoMatch);
        assert_eq!(
            probe(Transport::Udp, b"GET / HTTP/1.1\r\n\r\n"),
            Probe::NoMatch
        );
        assert_eq!(probe(Transport::Udp, &[0x6a, 0x84, 0xff]), Probe::NoMatch);
    }

    #[test]
    fn tcp_records_split_anywhere_give_one_tx_each() {
        let mut stream = tcp(&msg(12, 1500));
        stream.extend(tcp(&msg(10, 3)));
        for split in [1, 3, 4, 5, 7, 700, stream.len()] {
            let mut p = Krb5Parser::new(&AppConfig::default(), Transport::Tcp);
            let mut out = Vec::new();
            for c in stream.chunks(split) {
                p.parse(Direction::ToServer, c, 0, &mut out);
            }
            p.parse(Direction::ToClient, &tcp(&msg(13, 40)), 0, &mut out);
            assert_eq!(
                types(&out),
                [
                    (12, Direction::ToServer),
                    (10, Direction::ToServer),
                    (13, Direction::ToClient)
                ],
                "split {split}"
            );
        }
    }

    #[test]
    fn hostile_framing_is_bounded() {
        let mut p = Krb5Parser::new(&AppConfig::default(), Transport::Tcp);
        let mut out = Vec::new();
        // Reserved bit, then nothing more is parsed in that direction.
        p.parse(
            Direction::ToServer,
            &[0x80, 0, 0, 5, 1, 2, 3, 4, 5],
            0,
            &mut out,
        );
        p.parse(Direction::ToServer, &tcp(&msg(10, 0)), 0, &mut out);
        // An oversized record mark.
        p.parse(
            Direction::ToClient,
            &[0x7f, 0xff, 0xff, 0xff, 0x6b],
            0,
            &mut out,
        );
        // Truncated and junk messages over UDP give no transaction.
        let mut u = Krb5Parser::new(&AppConfig::default(), Transport::Udp);
        u.parse(Direction::ToServer, &[], 0, &mut out);
        u.parse(Direction::ToServer, &[0x6a], 0, &mut out);
        u.parse(Direction::ToServer, &[0x30, 0x00], 0, &mut out);
        assert!(types(&out).is_empty());
        // Zero-length records are skipped; a gap stops the direction.
        let mut z = Krb5Parser::new(&AppConfig::default(), Transport::Tcp);
        let mut s = vec![0, 0, 0, 0];
        s.extend(tcp(&msg(14, 2)));
        z.parse(Direction::ToServer, &s, 0, &mut out);
        z.gap(Direction::ToServer, 10, &mut out);
        z.parse(Direction::ToServer, &tcp(&msg(14, 2)), 0, &mut out);
        assert_eq!(types(&out), [(14, Direction::ToServer)]);
    }
}
