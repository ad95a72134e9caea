//! Parsing one line of Suricata 7 EVE JSON into the fields the store keeps.
//!
//! The input is hostile (anything a sensor or an attacker on its path sends): the parser
//! bounds the line length, never panics, and names the field at fault in its error. Strings
//! borrow from the line whenever they contain no JSON escapes.

use std::borrow::Cow;

use crate::json::{JsonError, Scanner};

/// Longest EVE line accepted (Suricata's own lines with big payload dumps stay well below).
pub const MAX_LINE: usize = 1 << 20;

/// Why one EVE line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    #[error("line is {0} bytes, over the limit of {MAX_LINE}")]
    TooLong(usize),
    #[error("empty line")]
    Empty,
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("missing field `{0}`")]
    Missing(&'static str),
    #[error("field `timestamp`: {0}")]
    Timestamp(String),
}

/// The event families that have a table of their own; everything else goes to `other_events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Alert,
    Flow,
    Http,
    Dns,
    Tls,
    Fileinfo,
    Anomaly,
    Other,
}

impl Family {
    /// Every family, in table order.
    pub const ALL: [Family; 8] = [
        Family::Alert,
        Family::Flow,
        Family::Http,
        Family::Dns,
        Family::Tls,
        Family::Fileinfo,
        Family::Anomaly,
        Family::Other,
    ];

    /// The family of an EVE `event_type`.
    pub fn of(event_type: &str) -> Family {
        match event_type {
            "alert" => Family::Alert,
            "flow" | "netflow" => Family::Flow,
            "http" => Family::Http,
            "dns" => Family::Dns,
            "tls" => Family::Tls,
            "fileinfo" => Family::Fileinfo,
            "anomaly" => Family::Anomaly,
            _ => Family::Other,
        }
    }

    /// The ClickHouse table that stores this family.
    pub fn table(self) -> &'static str {
        match self {
            Family::Alert => "alert_events",
            Family::Flow => "flow_events",
            Family::Http => "http_events",
            Family::Dns => "dns_events",
            Family::Tls => "tls_events",
            Family::Fileinfo => "fileinfo_events",
            Family::Anomaly => "anomaly_events",
            Family::Other => "other_events",
        }
    }

    /// Index into [`Family::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One parsed EVE record: the common fields plus the family's own fields.
#[derive(Debug, Default)]
pub struct Eve<'a> {
    timestamp: Option<Cow<'a, str>>,
    pub event_type: Option<Cow<'a, str>>,
    pub flow_id: u64,
    pub in_iface: Cow<'a, str>,
    pub src_ip: Cow<'a, str>,
    pub src_port: u16,
    pub dest_ip: Cow<'a, str>,
    pub dest_port: u16,
    pub proto: Cow<'a, str>,
    pub app_proto: Cow<'a, str>,
    pub alert: Option<Alert<'a>>,
    pub flow: Option<Flow<'a>>,
    pub http: Option<Http<'a>>,
    pub dns: Option<Dns<'a>>,
    pub tls: Option<Tls<'a>>,
    pub fileinfo: Option<Fileinfo<'a>>,
    pub anomaly: Option<Anomaly<'a>>,
    /// Seconds since the Unix epoch (UTC), filled in by [`parse`].
    pub ts: u32,
    /// Microseconds within the second.
    pub ts_usec: u32,
}

/// `alert` object of an alert record.
#[derive(Debug, Default)]
pub struct Alert<'a> {
    pub action: Cow<'a, str>,
    pub gid: u32,
    pub signature_id: u32,
    pub rev: u32,
    pub signature: Cow<'a, str>,
    pub category: Cow<'a, str>,
    pub severity: u8,
}

/// `flow` object of a flow record.
#[derive(Debug, Default)]
pub struct Flow<'a> {
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub start: Cow<'a, str>,
    pub end: Cow<'a, str>,
    pub age: u32,
    pub state: Cow<'a, str>,
    pub reason: Cow<'a, str>,
    pub alerted: bool,
}

/// `http` object of an http record.
#[derive(Debug, Default)]
pub struct Http<'a> {
    pub hostname: Cow<'a, str>,
    pub url: Cow<'a, str>,
    pub http_method: Cow<'a, str>,
    pub http_user_agent: Cow<'a, str>,
    pub http_content_type: Cow<'a, str>,
    pub protocol: Cow<'a, str>,
    pub status: u16,
    pub length: u64,
}

/// `dns` object of a dns record (EVE dns version 2, Suricata 7's default).
#[derive(Debug, Default)]
pub struct Dns<'a> {
    pub kind: Cow<'a, str>,
    pub id: u16,
    pub rrname: Cow<'a, str>,
    pub rrtype: Cow<'a, str>,
    pub rcode: Cow<'a, str>,
}

/// `tls` object of a tls record.
#[derive(Debug, Default)]
pub struct Tls<'a> {
    pub sni: Cow<'a, str>,
    pub version: Cow<'a, str>,
    pub subject: Cow<'a, str>,
    pub issuerdn: Cow<'a, str>,
    pub fingerprint: Cow<'a, str>,
    pub ja3: Option<JaHash<'a>>,
    pub ja3s: Option<JaHash<'a>>,
}

/// `tls.ja3` / `tls.ja3s`.
#[derive(Debug, Default)]
pub struct JaHash<'a> {
    pub hash: Cow<'a, str>,
}

/// `fileinfo` object of a fileinfo record.
#[derive(Debug, Default)]
pub struct Fileinfo<'a> {
    pub filename: Cow<'a, str>,
    pub md5: Cow<'a, str>,
    pub sha1: Cow<'a, str>,
    pub sha256: Cow<'a, str>,
    pub size: u64,
    pub state: Cow<'a, str>,
    pub stored: bool,
}

/// `anomaly` object of an anomaly record.
#[derive(Debug, Default)]
pub struct Anomaly<'a> {
    pub kind: Cow<'a, str>,
    pub event: Cow<'a, str>,
    pub layer: Cow<'a, str>,
}

impl Eve<'_> {
    /// The record's `event_type` (present after a successful [`parse`]).
    pub fn event_type(&self) -> &str {
        self.event_type.as_deref().unwrap_or("")
    }

    /// The table family of this record.
    pub fn family(&self) -> Family {
        Family::of(self.event_type())
    }
}

/// A string field; `null` reads as empty.
fn text<'a>(sc: &mut Scanner<'a>, key: &'static str) -> Result<Cow<'a, str>, JsonError> {
    if sc.null()? {
        return Ok(Cow::Borrowed(""));
    }
    sc.string().map_err(|e| named(e, key))
}

/// An unsigned integer field that must fit `T`; `null` reads as 0.
fn int<T: TryFrom<u64> + Default>(sc: &mut Scanner<'_>, key: &'static str) -> Result<T, JsonError> {
    if sc.null()? {
        return Ok(T::default());
    }
    let v = sc.u64().map_err(|e| named(e, key))?;
    T::try_from(v).map_err(|_| named(sc.err("integer out of range"), key))
}

fn boolean(sc: &mut Scanner<'_>, key: &'static str) -> Result<bool, JsonError> {
    if sc.null()? {
        return Ok(false);
    }
    sc.bool().map_err(|e| named(e, key))
}

/// An object field read by `f`; `null` reads as absent.
fn nested<'a, T: Default>(
    sc: &mut Scanner<'a>,
    mut f: impl FnMut(&mut T, &mut Scanner<'a>, &str) -> Result<(), JsonError>,
) -> Result<Option<T>, JsonError> {
    if sc.null()? {
        return Ok(None);
    }
    let mut v = T::default();
    sc.object(|sc, key| f(&mut v, sc, key))?;
    Ok(Some(v))
}

fn named(e: JsonError, key: &'static str) -> JsonError {
    e.in_field(key)
}

impl<'a> Eve<'a> {
    fn field(&mut self, sc: &mut Scanner<'a>, key: &str) -> Result<(), JsonError> {
        match key {
            "timestamp" => self.timestamp = Some(text(sc, "timestamp")?),
            "event_type" => self.event_type = Some(text(sc, "event_type")?),
            "flow_id" => self.flow_id = int(sc, "flow_id")?,
            "in_iface" => self.in_iface = text(sc, "in_iface")?,
            "src_ip" => self.src_ip = text(sc, "src_ip")?,
            "src_port" => self.src_port = int(sc, "src_port")?,
            "dest_ip" => self.dest_ip = text(sc, "dest_ip")?,
            "dest_port" => self.dest_port = int(sc, "dest_port")?,
            "proto" => self.proto = text(sc, "proto")?,
            "app_proto" => self.app_proto = text(sc, "app_proto")?,
            "alert" => self.alert = nested(sc, Alert::field).map_err(|e| e.in_field("alert"))?,
            "flow" => self.flow = nested(sc, Flow::field).map_err(|e| e.in_field("flow"))?,
            "http" => self.http = nested(sc, Http::field).map_err(|e| e.in_field("http"))?,
            "dns" => self.dns = nested(sc, Dns::field).map_err(|e| e.in_field("dns"))?,
            "tls" => self.tls = nested(sc, Tls::field).map_err(|e| e.in_field("tls"))?,
            "fileinfo" => {
                self.fileinfo = nested(sc, Fileinfo::field).map_err(|e| e.in_field("fileinfo"))?
            }
            "anomaly" => {
                self.anomaly = nested(sc, Anomaly::field).map_err(|e| e.in_field("anomaly"))?
            }
            _ => sc.skip()?,
        }
        Ok(())
    }
}

impl<'a> Alert<'a> {
    fn field(&mut self, sc: &mut Scanner<'a>, key: &str) -> Result<(), JsonError> {
        match key {
            "action" => self.action = text(sc, "alert.action")?,
            "gid" => self.gid = int(sc, "alert.gid")?,
            "signature_id" => self.signature_id = int(sc, "alert.signature_id")?,
            "rev" => self.rev = int(sc, "alert.rev")?,
            "signature" => self.signature = text(sc, "alert.signature")?,
            "category" => self.category = text(sc, "alert.category")?,
            "severity" => self.severity = int(sc, "alert.severity")?,
            _ => sc.skip()?,
        }
        Ok(())
    }
}

impl<'a> Flow<'a> {
    fn field(&mut self, sc: &mut Scanner<'a>, key: &str) -> Result<(), JsonError> {
        match key {
            "pkts_toserver" => self.pkts_toserver = int(sc, "flow.pkts_toserver")?,
            "pkts_toclient" => self.pkts_toclient = int(sc, "flow.pkts_toclient")?,
            "bytes_toserver" => self.bytes_toserver = int(sc, "flow.bytes_toserver")?,
            "bytes_toclient" => self.bytes_toclient = int(sc, "flow.bytes_toclient")?,
            "start" => self.start = text(sc, "flow.start")?,
            "end" => self.end = text(sc, "flow.end")?,
            "age" => self.age = int(sc, "flow.age")?,
            "state" => self.state = text(sc, "flow.state")?,
            "reason" => self.reason = text(sc, "flow.reason")?,
            "alerted" => self.alerted = boolean(sc, "flow.alerted")?,
            _ => sc.skip()?,
        }
        Ok(())
    }
}

impl<'a> Http<'a> {
    fn field(&mut self, sc: &mut Scanner<'a>, key: &str) -> Result<(), JsonError> {
        match key {
            "hostname" => self.hostname = text(sc, "http.hostname")?,
            "url" => self.url = text(sc, "http.url")?,
            "http_method" => self.http_method = text(sc, "http.http_method")?,
            "http_user_agent" => self.http_user_agent = text(sc, "http.http_user_agent")?,
            "http_content_type" => self.http_content_type = text(sc, "http.http_content_type")?,
            "protocol" => self.protocol = text(sc, "http.protocol")?,
            "status" => self.status = int(sc, "http.status")?,
            "length" => self.length = int(sc, "http.length")?,
            _ => sc.skip()?,
        }
        Ok(())
    }
}

impl<'a> Dns<'a> {
    fn field(&mut self, sc: &mut Scanner<'a>, key: &str) -> Result<(), JsonError> {
        match key {
            "type" => self.kind = text(sc, "dns.type")?,
            "id" => self.id = int(sc, "dns.id")?,
            "rrname" => self.rrname = text(sc, "dns.rrname")?,
            "rrtype" => self.rrtype = text(sc, "dns.rrtype")?,
            "rcode" => self.rcode = text(sc, "dns.rcode")?,
            _ => sc.skip()?,
        }
        Ok(())
    }
}

impl<'a> Tls<'a> {
    fn field(&mut self, sc: &mut Scanner<'a>, key: &str) -> Result<(), JsonError> {
        match key {
            "sni" => self.sni = text(sc, "tls.sni")?,
            "version" => self.version = text(sc, "tls.version")?,
            "subject" => self.subject = text(sc, "tls.subject")?,
            "issuerdn" => self.issuerdn = text(sc, "tls.issuerdn")?,
            "fingerprint" => self.fingerprint = text(sc, "tls.fingerprint")?,
            "ja3" => self.ja3 = nested(sc, JaHash::field).map_err(|e| e.in_field("tls.ja3"))?,
            "ja3s" => self.ja3s = nested(sc, JaHash::field).map_err(|e| e.in_field("tls.ja3s"))?,
            _ => sc.skip()?,
        }
        Ok(())
    }
}

impl<'a> JaHash<'a> {
    fn field(&mut self, sc: &mut Scanner<'a>, key: &str) -> Result<(), JsonError> {
        match key {
            "hash" => self.hash = text(sc, "tls.ja3.hash")?,
            _ => sc.skip()?,
        }
        Ok(())
    }
}

impl<'a> Fileinfo<'a> {
    fn field(&mut self, sc: &mut Scanner<'a>, key: &str) -> Result<(), JsonError> {
        match key {
            "filename" => self.filename = text(sc, "fileinfo.filename")?,
            "md5" => self.md5 = text(sc, "fileinfo.md5")?,
            "sha1" => self.sha1 = text(sc, "fileinfo.sha1")?,
            "sha256" => self.sha256 = text(sc, "fileinfo.sha256")?,
            "size" => self.size = int(sc, "fileinfo.size")?,
            "state" => self.state = text(sc, "fileinfo.state")?,
            "stored" => self.stored = boolean(sc, "fileinfo.stored")?,
            _ => sc.skip()?,
        }
        Ok(())
    }
}

impl<'a> Anomaly<'a> {
    fn field(&mut self, sc: &mut Scanner<'a>, key: &str) -> Result<(), JsonError> {
        match key {
            "type" => self.kind = text(sc, "anomaly.type")?,
            "event" => self.event = text(sc, "anomaly.event")?,
            "layer" => self.layer = text(sc, "anomaly.layer")?,
            _ => sc.skip()?,
        }
        Ok(())
    }
}

/// Parses one EVE line (without its newline). Requires a JSON object with a `timestamp` in
/// Suricata's format and an `event_type`.
pub fn parse(line: &[u8]) -> Result<Eve<'_>, LineError> {
    let mut eve = Eve::default();
    parse_line_into(line, &mut eve).map(|_| eve)
}

/// [`parse`] into `eve` (a fresh `Eve::default()`), also returning the line as text without
/// surrounding whitespace: the ingest loop parses in place rather than moving the ~1 KiB
/// record out of the call.
#[inline]
pub fn parse_line_into<'a>(line: &'a [u8], eve: &mut Eve<'a>) -> Result<&'a str, LineError> {
    if line.len() > MAX_LINE {
        return Err(LineError::TooLong(line.len()));
    }
    let line = trim_ascii(line);
    if line.is_empty() {
        return Err(LineError::Empty);
    }
    let text = ascii_str(line).map_or_else(
        || {
            std::str::from_utf8(line)
                .map_err(|e| LineError::Json(format!("invalid UTF-8 at byte {}", e.valid_up_to())))
        },
        Ok,
    )?;
    parse_into(text, eve)?;
    Ok(text)
}

/// [`parse`] for a line already known to be UTF-8 (no second validation).
#[inline]
pub fn parse_str(line: &str) -> Result<Eve<'_>, LineError> {
    if line.len() > MAX_LINE {
        return Err(LineError::TooLong(line.len()));
    }
    let line = line.trim();
    if line.is_empty() {
        return Err(LineError::Empty);
    }
    let mut eve = Eve::default();
    parse_into(line, &mut eve).map(|()| eve)
}

/// Parses a trimmed, non-empty line of at most [`MAX_LINE`] bytes into `eve`.
#[inline]
fn parse_into<'a>(line: &'a str, eve: &mut Eve<'a>) -> Result<(), LineError> {
    let mut sc = Scanner::new(line);
    sc.object(|sc, key| eve.field(sc, key))
        .and_then(|()| sc.end())
        .map_err(|e| LineError::Json(e.to_string()))?;
    if eve.event_type.as_deref().is_none_or(str::is_empty) {
        return Err(LineError::Missing("event_type"));
    }
    let ts = eve
        .timestamp
        .as_deref()
        .ok_or(LineError::Missing("timestamp"))?;
    let (secs, usec) = parse_timestamp(ts).map_err(LineError::Timestamp)?;
    eve.ts = secs;
    eve.ts_usec = usec;
    Ok(())
}

/// The line as text if it is all ASCII, as EVE lines nearly always are (Suricata escapes
/// everything else): `is_ascii` is a vectorised check, cheaper than full UTF-8 validation.
#[allow(
    unsafe_code,
    reason = "from_utf8_unchecked after is_ascii: the checked conversion would validate the \
              line a second time"
)]
fn ascii_str(b: &[u8]) -> Option<&str> {
    // SAFETY: every ASCII byte sequence is valid UTF-8.
    b.is_ascii()
        .then(|| unsafe { std::str::from_utf8_unchecked(b) })
}

fn trim_ascii(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// Parses Suricata's `2024-01-02T03:04:05.123456+0000` (also `Z`, `+07:00`, no fraction) into
/// (Unix seconds UTC, microseconds). Rejects times outside ClickHouse's `DateTime` range.
#[inline]
pub fn parse_timestamp(s: &str) -> Result<(u32, u32), String> {
    match <&[u8; 31]>::try_from(s.as_bytes())
        .ok()
        .and_then(suricata_utc)
    {
        Some(t) => Ok(t),
        None => parse_timestamp_general(s),
    }
}

/// [`parse_timestamp`] for every layout but Suricata's own UTC one.
#[cold]
#[inline(never)]
fn parse_timestamp_general(s: &str) -> Result<(u32, u32), String> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Result<i64, String> {
        let digits = b
            .get(from..from + len)
            .ok_or_else(|| format!("`{s}` is too short"))?;
        let mut v = 0i64;
        for &d in digits {
            if !d.is_ascii_digit() {
                return Err(format!("`{s}`: expected a digit at byte {from}"));
            }
            v = v * 10 + i64::from(d - b'0');
        }
        Ok(v)
    };
    let sep = |at: usize, want: &[u8]| -> Result<(), String> {
        match b.get(at) {
            Some(c) if want.contains(c) => Ok(()),
            _ => Err(format!("`{s}`: unexpected character at byte {at}")),
        }
    };
    let year = num(0, 4)?;
    sep(4, b"-")?;
    let month = num(5, 2)?;
    sep(7, b"-")?;
    let day = num(8, 2)?;
    sep(10, b"T ")?;
    let hour = num(11, 2)?;
    sep(13, b":")?;
    let min = num(14, 2)?;
    sep(16, b":")?;
    let sec = num(17, 2)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return Err(format!("`{s}`: date or time out of range"));
    }
    let mut i = 19;
    let mut usec = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let mut digits = 0;
        while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
            if digits < 6 {
                usec = usec * 10 + u32::from(d - b'0');
            }
            digits += 1;
            i += 1;
            if digits > 9 {
                return Err(format!("`{s}`: too many fraction digits"));
            }
        }
        for _ in digits..6 {
            usec *= 10;
        }
    }
    let offset_secs = match b.get(i) {
        None => 0,
        Some(b'Z') if i + 1 == b.len() => 0,
        Some(&c) if c == b'+' || c == b'-' => {
            let h = num(i + 1, 2)?;
            let m = match b.get(i + 3) {
                Some(b':') if b.len() == i + 6 => num(i + 4, 2)?,
                _ if b.len() == i + 5 => num(i + 3, 2)?,
                _ => return Err(format!("`{s}`: bad UTC offset")),
            };
            let o = h * 3600 + m * 60;
            if c == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return Err(format!("`{s}`: unexpected text after the time")),
    };
    let days = days_from_civil(year, month, day);
    let unix = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    u32::try_from(unix)
        .map(|t| (t, usec))
        .map_err(|_| format!("`{s}` is outside 1970..2106"))
}

/// The common case of [`parse_timestamp`], Suricata's own `2024-01-02T03:04:05.123456+0000`,
/// at fixed positions; `None` sends anything else (or anything out of range) to the general
/// parser, which also words the error.
fn suricata_utc(b: &[u8; 31]) -> Option<(u32, u32)> {
    // The 31 bytes as four overlapping little-endian words (bytes 0, 8, 16 and 23 on): each
    // must equal the template at the separator positions and hold ASCII digits elsewhere.
    const TEMPLATE: &[u8; 31] = b"0000-00-00T00:00:00.000000+0000";
    // Bytes that must be exactly the template's: separators and the "+0000" offset.
    const FIXED: &[u8; 31] =
        b"\0\0\0\0\xff\0\0\xff\0\0\xff\0\0\xff\0\0\xff\0\0\xff\0\0\0\0\0\0\xff\xff\xff\xff\xff";
    let word = |a: &[u8; 31], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&a[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let mut bad = 0u64;
    for at in [0, 8, 16, 23] {
        let (w, t, fixed) = (word(b, at), word(TEMPLATE, at), word(FIXED, at));
        bad |= (w ^ t) & fixed;
        // Fixed bytes read as '0' for the digit test: a byte is an ASCII digit iff neither
        // adding 0x46 nor subtracting 0x30 sets its top bit.
        let d = (w & !fixed) | (0x3030_3030_3030_3030 & fixed);
        bad |= (d.wrapping_add(0x4646_4646_4646_4646) | d.wrapping_sub(0x3030_3030_3030_3030))
            & 0x8080_8080_8080_8080;
    }
    if bad != 0 {
        return None;
    }
    let d = |i: usize| u32::from(b[i] - b'0');
    let two = |i: usize| d(i) * 10 + d(i + 1);
    let year = two(0) * 100 + two(2);
    let (month, day, hour, min, sec) = (two(5), two(8), two(11), two(14), two(17));
    let usec = (two(20) * 100 + two(22)) * 100 + two(24);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year.into(), month.into(), day.into());
    let unix = days * 86_400 + i64::from(hour * 3600 + min * 60 + sec);
    u32::try_from(unix).ok().map(|t| (t, usec))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    // An alert line in Suricata 7's layout (fields as `suricata -r` writes them).
    const ALERT: &str = r#"{"timestamp":"2017-06-15T07:29:58.011233+0000","flow_id":1617402939931224,"pcap_cnt":4,"event_type":"alert","src_ip":"10.16.1.11","src_port":49218,"dest_ip":"93.184.216.34","dest_port":80,"proto":"TCP","pkt_src":"wire/pcap","alert":{"action":"allowed","gid":1,"signature_id":2013028,"rev":7,"signature":"ET POLICY curl User-Agent Outbound","category":"Attempted Information Leak","severity":2},"http":{"hostname":"example.com","url":"/","http_user_agent":"curl/7.54.0","http_method":"GET","protocol":"HTTP/1.1","length":0},"app_proto":"http","direction":"to_server","flow":{"pkts_toserver":4,"pkts_toclient":1,"bytes_toserver":349,"bytes_toclient":74,"start":"2017-06-15T07:29:57.996370+0000","src_ip":"10.16.1.11","dest_ip":"93.184.216.34","src_port":49218,"dest_port":80}}"#;

    #[test]
    fn alert_line() {
        let e = parse(ALERT.as_bytes()).unwrap();
        assert_eq!(e.family(), Family::Alert);
        assert_eq!(e.ts, 1_497_511_798);
        assert_eq!(e.ts_usec, 11_233);
        assert_eq!(e.flow_id, 1_617_402_939_931_224);
        assert_eq!(e.src_ip, "10.16.1.11");
        assert_eq!(e.dest_port, 80);
        let a = e.alert.as_ref().unwrap();
        assert_eq!(a.signature_id, 2_013_028);
        assert_eq!(a.severity, 2);
        assert!(matches!(a.signature, Cow::Borrowed(_)));
        assert_eq!(e.http.as_ref().unwrap().hostname, "example.com");
    }

    #[test]
    fn families() {
        for (t, f) in [
            ("flow", Family::Flow),
            ("netflow", Family::Flow),
            ("dns", Family::Dns),
            ("stats", Family::Other),
            ("ssh", Family::Other),
        ] {
            assert_eq!(Family::of(t), f);
        }
        for (i, f) in Family::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
        }
    }

    #[test]
    fn suricata_form_agrees_with_the_general_parser() {
        for (y, mo, d, h, mi, sec, us) in [
            (1970, 1, 1, 0, 0, 0, 0),
            (2000, 2, 29, 23, 59, 60, 999_999),
            (2024, 12, 31, 12, 34, 56, 123_456),
            (2106, 2, 7, 6, 28, 15, 1),
        ] {
            let fast = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{sec:02}.{us:06}+0000");
            let general = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{sec:02}.{us:06}+00:00");
            assert_eq!(parse_timestamp(&fast), parse_timestamp(&general), "{fast}");
            let bytes: &[u8; 31] = fast.as_bytes().try_into().unwrap();
            assert_eq!(
                suricata_utc(bytes).map(Ok),
                Some(parse_timestamp(&general)),
                "{fast}"
            );
        }
        // The fast path refuses a wrong byte at every position, including the digits' ASCII
        // neighbours `/` and `:`, and a digit where a separator belongs.
        let good = *b"2024-12-31T12:34:56.123456+0000";
        for i in 0..good.len() {
            for c in [b'x', b'/', b':', b'0', b'9'] {
                let mut b = good;
                b[i] = c;
                let digit_for_digit = good[i].is_ascii_digit() && c.is_ascii_digit();
                if b != good && !(digit_for_digit && i < 26) {
                    assert_eq!(suricata_utc(&b), None, "{}", String::from_utf8_lossy(&b));
                }
            }
        }
        for bad in [
            "2024-13-01T00:00:00.000000+0000",
            "2024-01-00T00:00:00.000000+0000",
            "2024-01-01T24:00:00.000000+0000",
            "2024-01-01T00:00:00.00000a+0000",
            "2024-01-01 00:00:00.000000+0000x",
            "2106-02-07T06:28:16.000000+0000",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            parse_timestamp("1970-01-01T00:00:00.000000+0000"),
            Ok((0, 0))
        );
        assert_eq!(parse_timestamp("1970-01-01T07:00:00+0700"), Ok((0, 0)));
        assert_eq!(
            parse_timestamp("1970-01-01T07:00:00.5+07:00"),
            Ok((0, 500_000))
        );
        assert_eq!(
            parse_timestamp("2000-03-01T00:00:00Z"),
            Ok((951_868_800, 0))
        );
        assert_eq!(
            parse_timestamp("2024-02-29T12:00:00.123456789+0000"),
            Ok((1_709_208_000, 123_456))
        );
        for bad in [
            "",
            "2024",
            "2024-13-01T00:00:00+0000",
            "2024-01-01T00:00:00+00",
            "2024-01-01T00:00:00 junk",
            "1969-12-31T23:59:59+0000",
            "2200-01-01T00:00:00+0000",
            "２０２４-01-01T00:00:00+0000",
            "2024-01-01T00:00:00.1234567890123+0000",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn malformed_lines() {
        assert_eq!(parse(b"").unwrap_err(), LineError::Empty);
        assert_eq!(parse(b"   \r").unwrap_err(), LineError::Empty);
        assert!(matches!(
            parse(b"{\"event_type\":").unwrap_err(),
            LineError::Json(_)
        ));
        assert!(matches!(parse(b"[1,2]").unwrap_err(), LineError::Json(_)));
        assert!(matches!(
            parse(b"\xff\xfe").unwrap_err(),
            LineError::Json(_)
        ));
        assert_eq!(
            parse(br#"{"timestamp":"2024-01-01T00:00:00+0000"}"#).unwrap_err(),
            LineError::Missing("event_type")
        );
        assert_eq!(
            parse(br#"{"event_type":"dns"}"#).unwrap_err(),
            LineError::Missing("timestamp")
        );
        assert!(matches!(
            parse(br#"{"event_type":"dns","timestamp":"yesterday"}"#).unwrap_err(),
            LineError::Timestamp(_)
        ));
        assert!(matches!(
            parse(
                br#"{"event_type":"flow","timestamp":"2024-01-01T00:00:00+0000","src_port":70000}"#
            )
            .unwrap_err(),
            LineError::Json(_)
        ));
        let long = vec![b' '; MAX_LINE + 1];
        assert_eq!(parse(&long).unwrap_err(), LineError::TooLong(MAX_LINE + 1));
        // Truncations of a genuine line never panic and never succeed.
        for cut in 0..ALERT.len() - 1 {
            assert!(parse(&ALERT.as_bytes()[..cut]).is_err());
        }
        // Deep nesting is refused by the scanner's depth limit, not by a stack overflow.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(
            br#"{"timestamp":"2024-01-01T00:00:00+0000","event_type":"alert","alert":{"severity":300}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("`alert.severity`"), "{e}");
        let e =
            parse(br#"{"timestamp":"2024-01-01T00:00:00+0000","event_type":"alert","alert":5}"#)
                .unwrap_err();
        assert!(e.to_string().contains("`alert`"), "{e}");
        let e =
            parse(br#"{"timestamp":"2024-01-01T00:00:00+0000","event_type":"x","flow_id":"1"}"#)
                .unwrap_err();
        assert!(e.to_string().contains("`flow_id`"), "{e}");
    }

    #[test]
    fn escapes_are_owned() {
        let e = parse(
            br#"{"timestamp":"2024-01-01T00:00:00+0000","event_type":"dns","dns":{"type":"query","rrname":"a\u00e9.vn","rrtype":"A","id":7}}"#,
        )
        .unwrap();
        let d = e.dns.unwrap();
        assert_eq!(d.rrname, "aé.vn");
        assert_eq!(d.kind, "query");
        assert_eq!(d.id, 7);
    }
}
