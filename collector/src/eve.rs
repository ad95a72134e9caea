//! Parsing one line of Suricata 7 EVE JSON into the fields the store keeps.
//!
//! The input is hostile (anything a sensor or an attacker on its path sends): the parser
//! bounds the line length, never panics, and names the field at fault in its error. Strings
//! borrow from the line whenever they contain no JSON escapes.

use std::borrow::Cow;

use serde::Deserialize;

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
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Eve<'a> {
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub event_type: Option<Cow<'a, str>>,
    pub flow_id: u64,
    #[serde(borrow)]
    pub in_iface: Cow<'a, str>,
    #[serde(borrow)]
    pub src_ip: Cow<'a, str>,
    pub src_port: u16,
    #[serde(borrow)]
    pub dest_ip: Cow<'a, str>,
    pub dest_port: u16,
    #[serde(borrow)]
    pub proto: Cow<'a, str>,
    #[serde(borrow)]
    pub app_proto: Cow<'a, str>,
    #[serde(borrow)]
    pub alert: Option<Alert<'a>>,
    #[serde(borrow)]
    pub flow: Option<Flow<'a>>,
    #[serde(borrow)]
    pub http: Option<Http<'a>>,
    #[serde(borrow)]
    pub dns: Option<Dns<'a>>,
    #[serde(borrow)]
    pub tls: Option<Tls<'a>>,
    #[serde(borrow)]
    pub fileinfo: Option<Fileinfo<'a>>,
    #[serde(borrow)]
    pub anomaly: Option<Anomaly<'a>>,
    /// Seconds since the Unix epoch (UTC), filled in by [`parse`].
    #[serde(skip)]
    pub ts: u32,
    /// Microseconds within the second.
    #[serde(skip)]
    pub ts_usec: u32,
}

/// `alert` object of an alert record.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Alert<'a> {
    #[serde(borrow)]
    pub action: Cow<'a, str>,
    pub gid: u32,
    pub signature_id: u32,
    pub rev: u32,
    #[serde(borrow)]
    pub signature: Cow<'a, str>,
    #[serde(borrow)]
    pub category: Cow<'a, str>,
    pub severity: u8,
}

/// `flow` object of a flow record.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Flow<'a> {
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    #[serde(borrow)]
    pub start: Cow<'a, str>,
    #[serde(borrow)]
    pub end: Cow<'a, str>,
    pub age: u32,
    #[serde(borrow)]
    pub state: Cow<'a, str>,
    #[serde(borrow)]
    pub reason: Cow<'a, str>,
    pub alerted: bool,
}

/// `http` object of an http record.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Http<'a> {
    #[serde(borrow)]
    pub hostname: Cow<'a, str>,
    #[serde(borrow)]
    pub url: Cow<'a, str>,
    #[serde(borrow)]
    pub http_method: Cow<'a, str>,
    #[serde(borrow)]
    pub http_user_agent: Cow<'a, str>,
    #[serde(borrow)]
    pub http_content_type: Cow<'a, str>,
    #[serde(borrow)]
    pub protocol: Cow<'a, str>,
    pub status: u16,
    pub length: u64,
}

/// `dns` object of a dns record (EVE dns version 2, Suricata 7's default).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Dns<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: Cow<'a, str>,
    pub id: u16,
    #[serde(borrow)]
    pub rrname: Cow<'a, str>,
    #[serde(borrow)]
    pub rrtype: Cow<'a, str>,
    #[serde(borrow)]
    pub rcode: Cow<'a, str>,
}

/// `tls` object of a tls record.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Tls<'a> {
    #[serde(borrow)]
    pub sni: Cow<'a, str>,
    #[serde(borrow)]
    pub version: Cow<'a, str>,
    #[serde(borrow)]
    pub subject: Cow<'a, str>,
    #[serde(borrow)]
    pub issuerdn: Cow<'a, str>,
    #[serde(borrow)]
    pub fingerprint: Cow<'a, str>,
    #[serde(borrow)]
    pub ja3: Option<JaHash<'a>>,
    #[serde(borrow)]
    pub ja3s: Option<JaHash<'a>>,
}

/// `tls.ja3` / `tls.ja3s`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct JaHash<'a> {
    #[serde(borrow)]
    pub hash: Cow<'a, str>,
}

/// `fileinfo` object of a fileinfo record.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Fileinfo<'a> {
    #[serde(borrow)]
    pub filename: Cow<'a, str>,
    #[serde(borrow)]
    pub md5: Cow<'a, str>,
    #[serde(borrow)]
    pub sha1: Cow<'a, str>,
    #[serde(borrow)]
    pub sha256: Cow<'a, str>,
    pub size: u64,
    #[serde(borrow)]
    pub state: Cow<'a, str>,
    pub stored: bool,
}

/// `anomaly` object of an anomaly record.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Anomaly<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub event: Cow<'a, str>,
    #[serde(borrow)]
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

/// Parses one EVE line (without its newline). Requires a JSON object with a `timestamp` in
/// Suricata's format and an `event_type`.
pub fn parse(line: &[u8]) -> Result<Eve<'_>, LineError> {
    if line.len() > MAX_LINE {
        return Err(LineError::TooLong(line.len()));
    }
    let line = trim_ascii(line);
    if line.is_empty() {
        return Err(LineError::Empty);
    }
    let text = std::str::from_utf8(line)
        .map_err(|e| LineError::Json(format!("invalid UTF-8 at byte {}", e.valid_up_to())))?;
    parse_str(text)
}

/// [`parse`] for a line already known to be UTF-8 (no second validation).
pub fn parse_str(line: &str) -> Result<Eve<'_>, LineError> {
    if line.len() > MAX_LINE {
        return Err(LineError::TooLong(line.len()));
    }
    let line = line.trim();
    if line.is_empty() {
        return Err(LineError::Empty);
    }
    let mut eve: Eve<'_> =
        serde_json::from_str(line).map_err(|e| LineError::Json(e.to_string()))?;
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
    Ok(eve)
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
pub fn parse_timestamp(s: &str) -> Result<(u32, u32), String> {
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
        // Deep nesting is refused by serde_json's recursion limit, not by a stack overflow.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(deep.as_bytes()).is_err());
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
