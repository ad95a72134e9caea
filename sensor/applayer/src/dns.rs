//! DNS over UDP (one message per datagram) and TCP (2-byte length prefix), RFC 1035.
//!
//! Like Suricata, every message is its own transaction: a query message produces `query`
//! records (one per question) and a response message an `answer` record (EVE dns v2).

use std::fmt::Write;

use serde_json::{json, Map, Value};

use crate::util::{hex, json_str, StreamBuf};
use crate::{AppConfig, AppEvent, AppProto, Direction, Parser, Transaction, Transport};

/// Longest name we build (RFC 1035 says 255 octets; hostile names are cut at this length).
const MAX_NAME: usize = 1025;
/// Most labels in one name.
const MAX_LABELS: usize = 255;

/// A DNS question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsQuery {
    pub name: Vec<u8>,
    pub rrtype: u16,
    pub rrclass: u16,
}

/// Decoded resource-record data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsRData {
    /// A or AAAA: 4 or 16 address bytes.
    Addr(Vec<u8>),
    /// CNAME, NS, PTR, MX (exchange), DNAME: a domain name.
    Name(Vec<u8>),
    /// TXT: the first character-string (as Suricata 7 logs).
    Txt(Vec<u8>),
    Soa {
        mname: Vec<u8>,
        rname: Vec<u8>,
        serial: u32,
        refresh: u32,
        retry: u32,
        expire: u32,
        minimum: u32,
    },
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Vec<u8>,
    },
    Sshfp {
        algo: u8,
        fp_type: u8,
        fingerprint: Vec<u8>,
    },
    /// Anything else, raw.
    Raw(Vec<u8>),
}

/// A resource record of the answer or authority section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsRecord {
    pub name: Vec<u8>,
    pub rrtype: u16,
    pub rrclass: u16,
    pub ttl: u32,
    pub data: DnsRData,
}

/// One DNS message (query or response).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsTx {
    pub tx_id: u64,
    pub id: u16,
    pub flags: u16,
    pub is_response: bool,
    pub queries: Vec<DnsQuery>,
    pub answers: Vec<DnsRecord>,
    pub authorities: Vec<DnsRecord>,
}

impl DnsTx {
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }

    pub fn rcode(&self) -> u8 {
        (self.flags & 0xf) as u8
    }

    /// EVE `dns` values: one per question for a query, one for a response.
    pub fn eve(&self) -> Vec<Value> {
        if !self.is_response {
            return self
                .queries
                .iter()
                .map(|q| {
                    let mut m = Map::new();
                    m.insert("version".into(), json!(2));
                    m.insert("type".into(), "query".into());
                    m.insert("id".into(), json!(self.id));
                    m.insert("rrname".into(), json_str(&q.name).into());
                    m.insert("rrtype".into(), rrtype_str(q.rrtype).into());
                    m.insert("tx_id".into(), json!(self.tx_id));
                    if self.flags & 0x0040 != 0 {
                        m.insert("z".into(), true.into());
                    }
                    m.insert("opcode".into(), json!(self.opcode()));
                    Value::Object(m)
                })
                .collect();
        }
        let mut m = Map::new();
        m.insert("version".into(), json!(2));
        m.insert("type".into(), "answer".into());
        m.insert("id".into(), json!(self.id));
        m.insert("flags".into(), format!("{:x}", self.flags).into());
        let bits = [
            (0x8000, "qr"),
            (0x0400, "aa"),
            (0x0200, "tc"),
            (0x0100, "rd"),
            (0x0080, "ra"),
            (0x0040, "z"),
        ];
        for (bit, name) in bits {
            if self.flags & bit != 0 {
                m.insert(name.into(), true.into());
            }
        }
        m.insert("opcode".into(), json!(self.opcode()));
        if let Some(q) = self.queries.first() {
            m.insert("rrname".into(), json_str(&q.name).into());
            m.insert("rrtype".into(), rrtype_str(q.rrtype).into());
        }
        m.insert("rcode".into(), rcode_str(self.rcode()).into());
        if !self.answers.is_empty() {
            m.insert(
                "answers".into(),
                self.answers.iter().map(record_eve).collect(),
            );
            let mut grouped = Map::new();
            for a in &self.answers {
                let (_, v) = rdata_eve(&a.data);
                let e = grouped
                    .entry(rrtype_str(a.rrtype))
                    .or_insert_with(|| json!([]));
                if let Value::Array(list) = e {
                    list.push(v);
                }
            }
            m.insert("grouped".into(), Value::Object(grouped));
        }
        if !self.authorities.is_empty() {
            m.insert(
                "authorities".into(),
                self.authorities.iter().map(record_eve).collect(),
            );
        }
        vec![Value::Object(m)]
    }
}

/// The key and value a record's data is logged under ("rdata", "soa", "srv", "sshfp").
fn rdata_eve(d: &DnsRData) -> (&'static str, Value) {
    match d {
        DnsRData::Addr(a) => ("rdata", addr_str(a).into()),
        DnsRData::Name(n) | DnsRData::Txt(n) | DnsRData::Raw(n) => ("rdata", json_str(n).into()),
        DnsRData::Soa {
            mname,
            rname,
            serial,
            refresh,
            retry,
            expire,
            minimum,
        } => (
            "soa",
            json!({
                "mname": json_str(mname),
                "rname": json_str(rname),
                "serial": serial,
                "refresh": refresh,
                "retry": retry,
                "expire": expire,
                "minimum": minimum,
            }),
        ),
        DnsRData::Srv {
            priority,
            weight,
            port,
            target,
        } => (
            "srv",
            json!({"priority": priority, "weight": weight, "port": port, "name": json_str(target)}),
        ),
        DnsRData::Sshfp {
            algo,
            fp_type,
            fingerprint,
        } => {
            let fp = fingerprint
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":");
            (
                "sshfp",
                json!({"fingerprint": fp, "algo": algo, "type": fp_type}),
            )
        }
    }
}

fn record_eve(r: &DnsRecord) -> Value {
    let mut m = Map::new();
    m.insert("rrname".into(), json_str(&r.name).into());
    m.insert("rrtype".into(), rrtype_str(r.rrtype).into());
    m.insert("ttl".into(), json!(r.ttl));
    let (k, v) = rdata_eve(&r.data);
    m.insert(k.into(), v);
    Value::Object(m)
}

/// IPv4 dotted quad; IPv6 as eight 4-digit groups (Suricata does not compress).
fn addr_str(a: &[u8]) -> String {
    match a {
        [a, b, c, d] => format!("{a}.{b}.{c}.{d}"),
        _ if a.len() == 16 => {
            let mut s = String::with_capacity(39);
            for (i, pair) in a.chunks(2).enumerate() {
                if i > 0 {
                    s.push(':');
                }
                let _ = write!(s, "{}", hex(pair));
            }
            s
        }
        _ => json_str(a),
    }
}

/// Suricata's name for a record type, or its number.
pub fn rrtype_str(t: u16) -> String {
    let s = match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAPPTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        55 => "HIP",
        59 => "CDS",
        60 => "CDNSKEY",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        32768 => "TA",
        32769 => "DLV",
        _ => return t.to_string(),
    };
    s.to_owned()
}

fn rcode_str(r: u8) -> String {
    let s = match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => return r.to_string(),
    };
    s.to_owned()
}

/// Why a message could not be parsed. `Malformed` maps to Suricata's `malformed_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DnsError {
    Malformed,
    NameTooLong,
    InfiniteLoop,
    TooManyLabels,
}

impl DnsError {
    fn event(self) -> &'static str {
        match self {
            DnsError::Malformed => "malformed_data",
            DnsError::NameTooLong => "name_too_long",
            DnsError::InfiniteLoop => "infinite_loop",
            DnsError::TooManyLabels => "too_many_labels",
        }
    }
}

fn be16(m: &[u8], at: usize) -> Result<u16, DnsError> {
    let b = m
        .get(at..at.checked_add(2).ok_or(DnsError::Malformed)?)
        .ok_or(DnsError::Malformed)?;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(m: &[u8], at: usize) -> Result<u32, DnsError> {
    let b = m
        .get(at..at.checked_add(4).ok_or(DnsError::Malformed)?)
        .ok_or(DnsError::Malformed)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Read a (possibly compressed) name starting at `at` in message `m`. Returns the name with
/// labels joined by '.', and the offset just after the name's encoding at `at`.
/// At most `max_ptrs` compression pointers are followed (loops end there).
pub(crate) fn read_name(
    m: &[u8],
    at: usize,
    max_ptrs: usize,
) -> Result<(Vec<u8>, usize), DnsError> {
    let mut name = Vec::new();
    let mut pos = at;
    let mut end = None;
    let mut ptrs = 0usize;
    let mut labels = 0usize;
    loop {
        let len = *m.get(pos).ok_or(DnsError::Malformed)?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    let after = pos + 1;
                    return Ok((name, end.unwrap_or(after)));
                }
                labels += 1;
                if labels > MAX_LABELS {
                    return Err(DnsError::TooManyLabels);
                }
                let start = pos + 1;
                let label = m
                    .get(start..start + usize::from(len))
                    .ok_or(DnsError::Malformed)?;
                if name.len() + label.len() + 1 > MAX_NAME {
                    return Err(DnsError::NameTooLong);
                }
                if !name.is_empty() {
                    name.push(b'.');
                }
                name.extend_from_slice(label);
                pos = start + usize::from(len);
            }
            0xc0 => {
                let lo = *m.get(pos + 1).ok_or(DnsError::Malformed)?;
                let target = usize::from(u16::from_be_bytes([len & 0x3f, lo]));
                if end.is_none() {
                    end = Some(pos + 2);
                }
                ptrs += 1;
                if ptrs > max_ptrs {
                    return Err(DnsError::InfiniteLoop);
                }
                pos = target;
            }
            // 0x40 and 0x80 label types (EDNS0 extended labels) are obsolete.
            _ => return Err(DnsError::Malformed),
        }
    }
}

fn parse_rdata(
    m: &[u8],
    rrtype: u16,
    start: usize,
    rd: &[u8],
    cfg: &Limits,
) -> Result<DnsRData, DnsError> {
    let name_at = |off: usize| read_name(m, start + off, cfg.max_ptrs).map(|(n, _)| n);
    Ok(match rrtype {
        1 if rd.len() == 4 => DnsRData::Addr(rd.to_vec()),
        28 if rd.len() == 16 => DnsRData::Addr(rd.to_vec()),
        2 | 5 | 12 | 39 => DnsRData::Name(name_at(0)?),
        15 => {
            if rd.len() < 3 {
                return Err(DnsError::Malformed);
            }
            DnsRData::Name(name_at(2)?)
        }
        16 => {
            let l = usize::from(*rd.first().ok_or(DnsError::Malformed)?);
            DnsRData::Txt(rd.get(1..1 + l).ok_or(DnsError::Malformed)?.to_vec())
        }
        6 => {
            let (mname, p) = read_name(m, start, cfg.max_ptrs)?;
            let (rname, p) = read_name(m, p, cfg.max_ptrs)?;
            DnsRData::Soa {
                mname,
                rname,
                serial: be32(m, p)?,
                refresh: be32(m, p + 4)?,
                retry: be32(m, p + 8)?,
                expire: be32(m, p + 12)?,
                minimum: be32(m, p + 16)?,
            }
        }
        33 => DnsRData::Srv {
            priority: be16(rd, 0)?,
            weight: be16(rd, 2)?,
            port: be16(rd, 4)?,
            target: name_at(6)?,
        },
        44 => match rd {
            [algo, fp_type, fp @ ..] => DnsRData::Sshfp {
                algo: *algo,
                fp_type: *fp_type,
                fingerprint: fp.to_vec(),
            },
            _ => return Err(DnsError::Malformed),
        },
        _ => DnsRData::Raw(rd.to_vec()),
    })
}

/// Limits applied while parsing one message.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_records: usize,
    pub(crate) max_ptrs: usize,
}

/// Parse one whole DNS message. Records beyond `max_records` per section are skipped.
pub(crate) fn parse_message(m: &[u8], lim: &Limits, tx_id: u64) -> Result<DnsTx, DnsError> {
    let id = be16(m, 0)?;
    let flags = be16(m, 2)?;
    let qd = usize::from(be16(m, 4)?);
    let an = usize::from(be16(m, 6)?);
    let ns = usize::from(be16(m, 8)?);
    let mut pos = 12;
    let mut queries = Vec::new();
    for _ in 0..qd {
        let (name, p) = read_name(m, pos, lim.max_ptrs)?;
        let rrtype = be16(m, p)?;
        let rrclass = be16(m, p + 2)?;
        pos = p + 4;
        if queries.len() < lim.max_records {
            queries.push(DnsQuery {
                name,
                rrtype,
                rrclass,
            });
        }
    }
    let mut sections = [Vec::new(), Vec::new()];
    for (count, sect) in [an, ns].into_iter().zip(sections.iter_mut()) {
        for _ in 0..count {
            let (name, p) = read_name(m, pos, lim.max_ptrs)?;
            let rrtype = be16(m, p)?;
            let rrclass = be16(m, p + 2)?;
            let ttl = be32(m, p + 4)?;
            let rdlen = usize::from(be16(m, p + 8)?);
            let start = p + 10;
            let rd = m.get(start..start + rdlen).ok_or(DnsError::Malformed)?;
            pos = start + rdlen;
            if sect.len() < lim.max_records {
                let data = parse_rdata(m, rrtype, start, rd, lim)?;
                sect.push(DnsRecord {
                    name,
                    rrtype,
                    rrclass,
                    ttl,
                    data,
                });
            }
        }
    }
    let [answers, authorities] = sections;
    Ok(DnsTx {
        tx_id,
        id,
        flags,
        is_response: flags & 0x8000 != 0,
        queries,
        answers,
        authorities,
    })
}

/// Framing of the flow's messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// Decided from the first bytes seen (see [`DnsParser::new`]).
    Unknown,
    Datagram,
    Stream,
}

/// DNS parser for one flow.
pub(crate) struct DnsParser {
    framing: Framing,
    lim: Limits,
    max_buffer: usize,
    next_tx: u64,
    bufs: [StreamBuf; 2],
    /// A direction gave up after a gap or overflow (TCP only).
    broken: [bool; 2],
}

impl DnsParser {
    /// A parser that infers its framing from the first bytes: a 2-byte length prefix that
    /// matches the data (TCP) or else a whole message (UDP).
    pub(crate) fn new(cfg: &AppConfig) -> Self {
        DnsParser {
            framing: Framing::Unknown,
            lim: Limits {
                max_records: cfg.dns_max_records,
                max_ptrs: cfg.dns_max_pointers,
            },
            max_buffer: cfg.max_buffer.max(65_537),
            next_tx: 0,
            bufs: [StreamBuf::default(), StreamBuf::default()],
            broken: [false; 2],
        }
    }

    pub(crate) fn with_transport(cfg: &AppConfig, t: Transport) -> Self {
        let mut p = Self::new(cfg);
        p.framing = match t {
            Transport::Tcp => Framing::Stream,
            Transport::Udp => Framing::Datagram,
        };
        p
    }

    fn message(&mut self, dir: Direction, m: &[u8], out: &mut Vec<AppEvent>) {
        let anomaly = |event| AppEvent::Anomaly {
            proto: AppProto::Dns,
            event,
        };
        match parse_message(m, &self.lim, self.next_tx) {
            Ok(tx) => {
                self.next_tx += 1;
                match (dir, tx.is_response) {
                    (Direction::ToServer, true) => out.push(anomaly("not_request")),
                    (Direction::ToClient, false) => out.push(anomaly("not_response")),
                    _ => {}
                }
                if tx.flags & 0x0040 != 0 {
                    out.push(anomaly("z_flag_set"));
                }
                if tx.opcode() > 6 {
                    out.push(anomaly("invalid_opcode"));
                }
                out.push(AppEvent::Tx(Transaction::Dns(tx)));
            }
            Err(e) => out.push(anomaly(e.event())),
        }
    }

    fn parse_stream(&mut self, dir: Direction, data: &[u8], out: &mut Vec<AppEvent>) {
        let d = dir.idx();
        if self.broken[d] {
            return;
        }
        if !self.bufs[d].push(data, self.max_buffer) {
            self.broken[d] = true;
            out.push(AppEvent::Anomaly {
                proto: AppProto::Dns,
                event: "malformed_data",
            });
            return;
        }
        let buf = self.bufs[d].take();
        let mut rest: &[u8] = &buf;
        while let [hi, lo, tail @ ..] = rest {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            let Some(msg) = tail.get(..len) else { break };
            self.message(dir, msg, out);
            rest = &tail[len..];
        }
        // `rest` is at most one partial message (< 65537 bytes), within `max_buffer`.
        self.bufs[d].push(rest, self.max_buffer);
    }
}

impl Parser for DnsParser {
    fn proto(&self) -> AppProto {
        AppProto::Dns
    }

    fn parse(&mut self, dir: Direction, data: &[u8], _ts: i64, out: &mut Vec<AppEvent>) {
        if self.framing == Framing::Unknown {
            let prefixed = matches!(data, [hi, lo, ..]
                if usize::from(u16::from_be_bytes([*hi, *lo])) + 2 == data.len());
            let whole = parse_message(data, &self.lim, 0).is_ok();
            self.framing = if prefixed || !whole {
                Framing::Stream
            } else {
                Framing::Datagram
            };
        }
        match self.framing {
            Framing::Stream => self.parse_stream(dir, data, out),
            _ => self.message(dir, data, out),
        }
    }

    fn gap(&mut self, dir: Direction, _len: u64, _out: &mut Vec<AppEvent>) {
        // A stream cannot be re-framed after lost bytes: stop parsing that direction.
        if self.framing != Framing::Datagram {
            self.bufs[dir.idx()].clear();
            self.broken[dir.idx()] = true;
        }
    }

    fn close(&mut self, _ts: i64, _out: &mut Vec<AppEvent>) {
        // A partial TCP message is not a transaction; nothing to flush.
        self.bufs = [StreamBuf::default(), StreamBuf::default()];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Query for www.suricata-ids.org A, id 0x8d32, RD (from suricata-verify
    /// cond-log-dns-dig).
    const QUERY: &[u8] = &[
        0x8d, 0x32, // id 36146
        0x01, 0x20, // flags: RD, AD
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // qd=1 an=0 ns=0 ar=0
        3, b'w', b'w', b'w', 12, b's', b'u', b'r', b'i', b'c', b'a', b't', b'a', b'-', b'i', b'd',
        b's', 3, b'o', b'r', b'g', 0, // www.suricata-ids.org
        0x00, 0x01, 0x00, 0x01, // type A, class IN
    ];

    /// The answer: CNAME then two A records, names compressed.
    const ANSWER: &[u8] = &[
        0x8d, 0x32, // id
        0x81, 0xa0, // flags: QR RD RA AD
        0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, // qd=1 an=3
        3, b'w', b'w', b'w', 12, b's', b'u', b'r', b'i', b'c', b'a', b't', b'a', b'-', b'i', b'd',
        b's', 3, b'o', b'r', b'g', 0, // offset 12: www.suricata-ids.org
        0x00, 0x01, 0x00, 0x01, // A IN
        0xc0, 0x0c, // -> offset 12
        0x00, 0x05, 0x00, 0x01, // CNAME IN
        0x00, 0x00, 0x0d, 0xd8, // ttl 3544
        0x00, 0x02, 0xc0, 0x10, // rdlength 2: -> offset 16 "suricata-ids.org"
        0xc0, 0x10, 0x00, 0x01, 0x00, 0x01, // suricata-ids.org A IN
        0x00, 0x00, 0x00, 0xf4, 0x00, 0x04, 192, 0, 78, 24, // ttl 244, 192.0.78.24
        0xc0, 0x10, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0xf4, 0x00, 0x04, 192, 0, 78, 25,
    ];

    fn run(p: &mut DnsParser, dir: Direction, data: &[u8]) -> Vec<AppEvent> {
        let mut out = Vec::new();
        p.parse(dir, data, 0, &mut out);
        out
    }

    fn txs(ev: &[AppEvent]) -> Vec<&DnsTx> {
        ev.iter()
            .filter_map(|e| match e {
                AppEvent::Tx(Transaction::Dns(t)) => Some(t),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn udp_query_and_answer_eve_like_suricata() {
        let mut p = DnsParser::new(&AppConfig::default());
        let q = run(&mut p, Direction::ToServer, QUERY);
        let t = txs(&q);
        assert_eq!(t.len(), 1);
        assert_eq!(
            t[0].eve(),
            vec![
                json!({"version":2,"type":"query","id":36146,"rrname":"www.suricata-ids.org",
                "rrtype":"A","tx_id":0,"opcode":0})
            ]
        );
        let a = run(&mut p, Direction::ToClient, ANSWER);
        let t = txs(&a);
        assert_eq!(a.len(), 1, "no anomalies");
        // Exactly what Suricata 7.0.10 logs for this packet (cond-log-dns-dig, pcap_cnt 2).
        let want: Value = serde_json::from_str(
            r#"{"version":2,"type":"answer","id":36146,"flags":"81a0","qr":true,"rd":true,"ra":true,"opcode":0,"rrname":"www.suricata-ids.org","rrtype":"A","rcode":"NOERROR","answers":[{"rrname":"www.suricata-ids.org","rrtype":"CNAME","ttl":3544,"rdata":"suricata-ids.org"},{"rrname":"suricata-ids.org","rrtype":"A","ttl":244,"rdata":"192.0.78.24"},{"rrname":"suricata-ids.org","rrtype":"A","ttl":244,"rdata":"192.0.78.25"}],"grouped":{"CNAME":["suricata-ids.org"],"A":["192.0.78.24","192.0.78.25"]}}"#,
        )
        .unwrap();
        assert_eq!(t[0].eve(), vec![want]);
        assert_eq!(t[0].tx_id, 1);
    }

    #[test]
    fn nxdomain_with_soa_authority() {
        // dne.oisf.net A -> NXDOMAIN, SOA in authority (suricata-verify
        // dns-eve-v2-udp-nxdomain-soa).
        let mut m = vec![
            0x82, 0x95, 0x81, 0x83, // id 33429, flags QR RD RA rcode 3
            0, 1, 0, 0, 0, 1, 0, 0, // qd=1 an=0 ns=1
            3, b'd', b'n', b'e', 4, b'o', b'i', b's', b'f', 3, b'n', b'e', b't', 0, 0, 1, 0, 1,
            0xc0, 0x10, // -> "oisf.net"
            0, 6, 0, 1, 0, 0, 0x03, 0x83, // SOA IN ttl 899
        ];
        let mut rdata = Vec::new();
        for l in ["ns-110", "awsdns-13", "com"] {
            rdata.push(l.len() as u8);
            rdata.extend_from_slice(l.as_bytes());
        }
        rdata.push(0);
        for l in ["awsdns-hostmaster", "amazon", "com"] {
            rdata.push(l.len() as u8);
            rdata.extend_from_slice(l.as_bytes());
        }
        rdata.push(0);
        for v in [1u32, 7200, 900, 1_209_600, 86_400] {
            rdata.extend_from_slice(&v.to_be_bytes());
        }
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(&rdata);
        let tx = parse_message(
            &m,
            &Limits {
                max_records: 10,
                max_ptrs: 8,
            },
            1,
        )
        .unwrap();
        let want: Value = serde_json::from_str(
            r#"{"version":2,"type":"answer","id":33429,"flags":"8183","qr":true,"rd":true,"ra":true,"opcode":0,"rrname":"dne.oisf.net","rrtype":"A","rcode":"NXDOMAIN","authorities":[{"rrname":"oisf.net","rrtype":"SOA","ttl":899,"soa":{"mname":"ns-110.awsdns-13.com","rname":"awsdns-hostmaster.amazon.com","serial":1,"refresh":7200,"retry":900,"expire":1209600,"minimum":86400}}]}"#,
        )
        .unwrap();
        assert_eq!(tx.eve(), vec![want]);
    }

    #[test]
    fn tcp_length_prefixed_any_split() {
        let mut stream = Vec::new();
        for m in [QUERY, QUERY] {
            stream.extend_from_slice(&(m.len() as u16).to_be_bytes());
            stream.extend_from_slice(m);
        }
        for split in 0..stream.len() {
            let mut p = DnsParser::with_transport(&AppConfig::default(), Transport::Tcp);
            let mut ev = run(&mut p, Direction::ToServer, &stream[..split]);
            ev.extend(run(&mut p, Direction::ToServer, &stream[split..]));
            let t = txs(&ev);
            assert_eq!(t.len(), 2, "split at {split}");
            assert_eq!(t[1].tx_id, 1);
            assert_eq!(t[0].queries[0].name, b"www.suricata-ids.org");
        }
        // Framing inferred from a first chunk whose prefix matches its length.
        let mut p = DnsParser::new(&AppConfig::default());
        assert_eq!(txs(&run(&mut p, Direction::ToServer, &stream)).len(), 2);
    }

    #[test]
    fn truncated_and_malformed() {
        let lim = Limits {
            max_records: 10,
            max_ptrs: 8,
        };
        for n in 0..ANSWER.len() {
            assert!(parse_message(&ANSWER[..n], &lim, 0).is_err(), "prefix {n}");
        }
        // A pointer to itself: a loop, bounded.
        let mut m = QUERY[..12].to_vec();
        m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
        assert_eq!(parse_message(&m, &lim, 0), Err(DnsError::InfiniteLoop));
        // A forward pointer is allowed (Suricata accepts it too).
        let mut m = QUERY[..12].to_vec();
        m.extend_from_slice(&[0xc0, 0x12, 0, 1, 0, 1, 1, b'a', 0]);
        assert_eq!(parse_message(&m, &lim, 0).unwrap().queries[0].name, b"a");
        // An extended label type (0x40) is malformed.
        let mut m = QUERY[..12].to_vec();
        m.extend_from_slice(&[0x41, 0, 0, 1, 0, 1]);
        assert_eq!(parse_message(&m, &lim, 0), Err(DnsError::Malformed));
        // A name longer than MAX_NAME by chaining 63-byte labels.
        let mut m = QUERY[..12].to_vec();
        for _ in 0..20 {
            m.push(63);
            m.extend_from_slice(&[b'x'; 63]);
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(parse_message(&m, &lim, 0), Err(DnsError::NameTooLong));
        // The UDP parser turns errors into anomalies, no transaction.
        let mut p = DnsParser::with_transport(&AppConfig::default(), Transport::Udp);
        let ev = run(&mut p, Direction::ToServer, &QUERY[..20]);
        assert!(matches!(
            ev.as_slice(),
            [AppEvent::Anomaly {
                event: "malformed_data",
                ..
            }]
        ));
    }

    #[test]
    fn record_counts_are_bounded() {
        // qd = 65535 claimed but only one present: fails cleanly, no huge allocation.
        let mut m = QUERY.to_vec();
        m[4] = 0xff;
        m[5] = 0xff;
        let lim = Limits {
            max_records: 2,
            max_ptrs: 8,
        };
        assert!(parse_message(&m, &lim, 0).is_err());
        // 5 real questions, only 2 kept.
        let mut m = QUERY[..12].to_vec();
        m[5] = 5;
        for _ in 0..5 {
            m.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1]);
        }
        assert_eq!(parse_message(&m, &lim, 0).unwrap().queries.len(), 2);
    }

    #[test]
    fn aaaa_txt_mx_srv_formats() {
        assert_eq!(
            rdata_eve(&DnsRData::Addr(vec![
                0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1
            ]))
            .1,
            "2001:0db8:0000:0000:0000:0000:0000:0001"
        );
        let m = [0u8; 12];
        let lim = Limits {
            max_records: 1,
            max_ptrs: 4,
        };
        // TXT: length 5 "hello".
        let rd = [5, b'h', b'e', b'l', b'l', b'o'];
        assert_eq!(
            parse_rdata(&m, 16, 0, &rd, &lim),
            Ok(DnsRData::Txt(b"hello".to_vec()))
        );
        // MX: preference 10, exchange "mx" (absolute offsets into a message).
        let msg = [0, 10, 2, b'm', b'x', 0];
        assert_eq!(
            parse_rdata(&msg, 15, 0, &msg, &lim),
            Ok(DnsRData::Name(b"mx".to_vec()))
        );
        // SRV: prio 1 weight 2 port 5060 target "s".
        let msg = [0, 1, 0, 2, 0x13, 0xc4, 1, b's', 0];
        let v = rdata_eve(&parse_rdata(&msg, 33, 0, &msg, &lim).unwrap());
        assert_eq!(
            v,
            (
                "srv",
                json!({"priority":1,"weight":2,"port":5060,"name":"s"})
            )
        );
        assert_eq!(rrtype_str(65280), "65280");
        assert_eq!(rcode_str(11), "11");
    }
}
