//! RowBinary encoding of the ClickHouse rows, straight from parsed EVE records.
//!
//! Ingest encodes each accepted event once (see `parsed.rs`) behind a blank prefix for the
//! columns only the writer knows (`event_id`, `batch`, and for intel alerts
//! `source_event_id`), which the writer fills in before it forwards the bytes in an
//! `INSERT INTO t (columns) FORMAT RowBinary`. Each family's column list sits next to its
//! encoder: the two must list the same columns in the same order, which
//! `tests::columns_match_the_schema` checks against `sql/*.sql`. `raw` is always the last
//! column of an event row, so the writer can recover the original line from a row's tail.
//!
//! RowBinary: integers little-endian, `DateTime` as `UInt32` seconds, `String` as a LEB128
//! length and the bytes.

use crate::assets::{raise_severity, Asset};
use crate::eve::{Eve, Family};
use crate::indicators::Indicator;

/// What the collector adds to every record at ingest: provenance and the asset it concerns.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    pub received: u32,
    pub tenant: &'a str,
    pub sensor: &'a str,
    /// The inventory system of the event's asset side (see `assets.rs`), if any.
    pub asset: Option<&'a Asset>,
    /// `dest`, `src` or empty.
    pub side: &'static str,
}

impl Meta<'_> {
    fn asset_level(&self) -> u8 {
        self.asset.map_or(0, |a| a.level)
    }
}

/// Appends RowBinary values to a buffer.
pub struct W<'b>(pub &'b mut Vec<u8>);

impl W<'_> {
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn str(&mut self, s: &str) {
        let mut n = s.len() as u64;
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.0.push(b);
                break;
            }
            self.0.push(b | 0x80);
        }
        self.0.extend_from_slice(s.as_bytes());
    }
}

/// Columns every event row starts with (the writer writes `event_id` and `batch`).
macro_rules! common_columns {
    () => {
        "event_id, batch, ts, ts_usec, received, tenant, sensor, event_type, flow_id, src_ip, \
         src_port, dest_ip, dest_port, proto, app_proto, in_iface, asset_agency, asset_system, \
         asset_level, asset_side"
    };
}

/// The column list of `family`'s table, in the order [`encode_event`] writes them.
pub fn columns(family: Family) -> &'static str {
    match family {
        Family::Alert => concat!(
            common_columns!(),
            ", action, gid, signature_id, rev, signature, category, severity, raw"
        ),
        Family::Flow => concat!(
            common_columns!(),
            ", pkts_toserver, pkts_toclient, bytes_toserver, bytes_toclient, flow_start, \
             flow_end, age, state, reason, alerted, raw"
        ),
        Family::Http => concat!(
            common_columns!(),
            ", hostname, url, http_method, http_user_agent, http_content_type, protocol, \
             status, length, raw"
        ),
        Family::Dns => concat!(
            common_columns!(),
            ", dns_type, dns_id, rrname, rrtype, rcode, raw"
        ),
        Family::Tls => concat!(
            common_columns!(),
            ", sni, tls_version, subject, issuerdn, fingerprint, ja3_hash, ja3s_hash, raw"
        ),
        Family::Fileinfo => concat!(
            common_columns!(),
            ", filename, md5, sha1, sha256, size, file_state, stored, raw"
        ),
        Family::Anomaly => concat!(
            common_columns!(),
            ", anomaly_type, anomaly_event, layer, raw"
        ),
        Family::Other => concat!(common_columns!(), ", raw"),
    }
}

/// The columns after `event_id` and `batch` shared by event and intel rows.
fn common(w: &mut W<'_>, m: &Meta<'_>, e: &Eve<'_>) {
    w.u32(e.ts);
    w.u32(e.ts_usec);
    w.u32(m.received);
    w.str(m.tenant);
    w.str(m.sensor);
    w.str(e.event_type());
    w.u64(e.flow_id);
    w.str(&e.src_ip);
    w.u16(e.src_port);
    w.str(&e.dest_ip);
    w.u16(e.dest_port);
    w.str(&e.proto);
    w.str(&e.app_proto);
    w.str(&e.in_iface);
    w.str(m.asset.map_or("", |a| &a.agency));
    w.str(m.asset.map_or("", |a| &a.system));
    w.u8(m.asset_level());
    w.str(m.side);
}

fn ts_of(s: &str) -> u32 {
    crate::eve::parse_timestamp(s).map(|t| t.0).unwrap_or(0)
}

/// Appends the row of `e` (original line `raw`) for its family's table, without the leading
/// `event_id` and `batch`, to `out`.
pub fn encode_event(out: &mut Vec<u8>, m: &Meta<'_>, e: &Eve<'_>, raw: &str) {
    let w = &mut W(out);
    common(w, m, e);
    match e.family() {
        Family::Alert => {
            let a = e.alert.as_ref();
            w.str(a.map_or("", |a| &a.action));
            w.u32(a.map_or(0, |a| a.gid));
            w.u32(a.map_or(0, |a| a.signature_id));
            w.u32(a.map_or(0, |a| a.rev));
            w.str(a.map_or("", |a| &a.signature));
            w.str(a.map_or("", |a| &a.category));
            // Raised by the security level of the system hit (assets.rs); `raw` keeps the original.
            w.u8(raise_severity(a.map_or(0, |a| a.severity), m.asset_level()));
        }
        Family::Flow => {
            let f = e.flow.as_ref();
            w.u64(f.map_or(0, |f| f.pkts_toserver));
            w.u64(f.map_or(0, |f| f.pkts_toclient));
            w.u64(f.map_or(0, |f| f.bytes_toserver));
            w.u64(f.map_or(0, |f| f.bytes_toclient));
            w.u32(f.map_or(0, |f| ts_of(&f.start)));
            w.u32(f.map_or(0, |f| ts_of(&f.end)));
            w.u32(f.map_or(0, |f| f.age));
            w.str(f.map_or("", |f| &f.state));
            w.str(f.map_or("", |f| &f.reason));
            w.u8(f.map_or(0, |f| u8::from(f.alerted)));
        }
        Family::Http => {
            let h = e.http.as_ref();
            w.str(h.map_or("", |h| &h.hostname));
            w.str(h.map_or("", |h| &h.url));
            w.str(h.map_or("", |h| &h.http_method));
            w.str(h.map_or("", |h| &h.http_user_agent));
            w.str(h.map_or("", |h| &h.http_content_type));
            w.str(h.map_or("", |h| &h.protocol));
            w.u16(h.map_or(0, |h| h.status));
            w.u64(h.map_or(0, |h| h.length));
        }
        Family::Dns => {
            let d = e.dns.as_ref();
            w.str(d.map_or("", |d| &d.kind));
            w.u16(d.map_or(0, |d| d.id));
            w.str(d.map_or("", |d| &d.rrname));
            w.str(d.map_or("", |d| &d.rrtype));
            w.str(d.map_or("", |d| &d.rcode));
        }
        Family::Tls => {
            let t = e.tls.as_ref();
            w.str(t.map_or("", |t| &t.sni));
            w.str(t.map_or("", |t| &t.version));
            w.str(t.map_or("", |t| &t.subject));
            w.str(t.map_or("", |t| &t.issuerdn));
            w.str(t.map_or("", |t| &t.fingerprint));
            w.str(t.and_then(|t| t.ja3.as_ref()).map_or("", |j| &j.hash));
            w.str(t.and_then(|t| t.ja3s.as_ref()).map_or("", |j| &j.hash));
        }
        Family::Fileinfo => {
            let f = e.fileinfo.as_ref();
            w.str(f.map_or("", |f| &f.filename));
            w.str(f.map_or("", |f| &f.md5));
            w.str(f.map_or("", |f| &f.sha1));
            w.str(f.map_or("", |f| &f.sha256));
            w.u64(f.map_or(0, |f| f.size));
            w.str(f.map_or("", |f| &f.state));
            w.u8(f.map_or(0, |f| u8::from(f.stored)));
        }
        Family::Anomaly => {
            let a = e.anomaly.as_ref();
            w.str(a.map_or("", |a| &a.kind));
            w.str(a.map_or("", |a| &a.event));
            w.str(a.map_or("", |a| &a.layer));
        }
        Family::Other => {}
    }
    w.str(raw);
}

/// Severity of an intel alert before the asset rule (medium).
pub const INTEL_SEVERITY: u8 = 2;

/// The column list of `intel_alerts`, in the order the writer and [`encode_intel`] write them.
pub const INTEL_COLUMNS: &str =
    "event_id, batch, source_event_id, ts, ts_usec, received, tenant, sensor, event_type, \
     flow_id, src_ip, src_port, dest_ip, dest_port, proto, app_proto, in_iface, asset_agency, \
     asset_system, asset_level, asset_side, indicator, indicator_kind, source, field, value, \
     severity";

/// Appends the `intel_alerts` row of a match of `ind` on `field` (= `value`) of event `e`,
/// without the leading `event_id`, `batch` and `source_event_id`, to `out`.
pub fn encode_intel(
    out: &mut Vec<u8>,
    m: &Meta<'_>,
    e: &Eve<'_>,
    ind: &Indicator,
    field: &str,
    value: &str,
) {
    let w = &mut W(out);
    common(w, m, e);
    w.str(&ind.value);
    w.str(ind.kind.as_str());
    w.str(&ind.source);
    w.str(field);
    w.str(value);
    w.u8(raise_severity(INTEL_SEVERITY, m.asset_level()));
}

/// What identifies one indicator match within its event: the indicator and the field.
pub fn intel_key(ind: &Indicator, field: &str) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(ind.kind.as_str().as_bytes());
    h.update(&[0]);
    h.update(ind.value.as_bytes());
    h.update(&[0]);
    h.update(field.as_bytes());
    h.digest()
}

/// Id of an intel alert: from the matching event's id and the match's [`intel_key`], so the
/// same match always gets the same id (re-inserts after a crash are recognised).
pub fn intel_id(source_event_id: u64, key: u64) -> u64 {
    let mut b = [0u8; 22];
    b[..6].copy_from_slice(b"intel\0");
    b[6..14].copy_from_slice(&source_event_id.to_le_bytes());
    b[14..].copy_from_slice(&key.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// (table → [(column, type)]) from the migrations.
    fn schema() -> HashMap<String, Vec<(String, String)>> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/sql");
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for p in paths {
            let text = std::fs::read_to_string(&p).unwrap();
            let mut table: Option<String> = None;
            for line in text.lines().map(str::trim) {
                if let Some(rest) = line.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
                    let name = rest.split([' ', '(']).next().unwrap().to_owned();
                    out.entry(name.clone()).or_default();
                    table = Some(name);
                } else if line.starts_with(')') {
                    table = None;
                } else if let Some(rest) = line.strip_prefix("ALTER TABLE ") {
                    let mut it = rest.split_whitespace();
                    let t = it.next().unwrap().to_owned();
                    let words: Vec<&str> = it.collect();
                    if words.first() == Some(&"ADD") && words.get(1) == Some(&"COLUMN") {
                        let ty = words[3].trim_end_matches(';').to_owned();
                        out.entry(t).or_default().push((words[2].to_owned(), ty));
                    }
                } else if let Some(t) = &table {
                    let mut it = line.split_whitespace();
                    if let (Some(c), Some(ty)) = (it.next(), it.next()) {
                        let ty = ty.trim_end_matches(',').to_owned();
                        out.get_mut(t).unwrap().push((c.to_owned(), ty));
                    }
                }
            }
        }
        out
    }

    /// Decodes one RowBinary row of `cols` (types from `types`) into text values; panics
    /// unless exactly the whole row is consumed.
    fn decode(row: &[u8], cols: &str, types: &[(String, String)]) -> HashMap<String, String> {
        let mut at = 0;
        let mut take = |n: usize| {
            let s = &row[at..at + n];
            at += n;
            s
        };
        let mut out = HashMap::new();
        for c in cols.split(',').map(str::trim) {
            let ty = &types
                .iter()
                .find(|(n, _)| n == c)
                .unwrap_or_else(|| panic!("column {c} is not in the table"))
                .1;
            let v = match ty.as_str() {
                "UInt8" => take(1)[0].to_string(),
                "UInt16" => u16::from_le_bytes(take(2).try_into().unwrap()).to_string(),
                "UInt32" | "DateTime" => {
                    u32::from_le_bytes(take(4).try_into().unwrap()).to_string()
                }
                "UInt64" => u64::from_le_bytes(take(8).try_into().unwrap()).to_string(),
                "String" => {
                    let (mut n, mut shift) = (0usize, 0);
                    loop {
                        let b = take(1)[0];
                        n |= usize::from(b & 0x7f) << shift;
                        shift += 7;
                        if b & 0x80 == 0 {
                            break;
                        }
                    }
                    String::from_utf8(take(n).to_vec()).unwrap()
                }
                other => panic!("type {other} of {c} not handled"),
            };
            out.insert(c.to_owned(), v);
        }
        assert_eq!(at, row.len(), "row longer than its columns");
        out
    }

    #[test]
    fn columns_match_the_schema() {
        let schema = schema();
        let lines = [
            r#"{"timestamp":"2024-01-02T03:04:05.000006+0000","event_type":"alert","src_ip":"10.0.0.1","src_port":1,"dest_ip":"10.0.0.2","dest_port":80,"proto":"TCP","alert":{"action":"allowed","gid":1,"signature_id":2001,"rev":3,"signature":"sig","category":"cat","severity":3}}"#,
            r#"{"timestamp":"2024-01-02T03:04:05.000006+0000","event_type":"flow","flow_id":7,"flow":{"pkts_toserver":11,"pkts_toclient":12,"bytes_toserver":13,"bytes_toclient":14,"start":"2024-01-02T03:04:00.000000+0000","end":"2024-01-02T03:04:05.000000+0000","age":5,"state":"closed","reason":"timeout","alerted":true}}"#,
            r#"{"timestamp":"2024-01-02T03:04:05.000006+0000","event_type":"http","http":{"hostname":"h.vn","url":"/u","http_method":"GET","http_user_agent":"ua","http_content_type":"text/html","protocol":"HTTP/1.1","status":200,"length":42}}"#,
            r#"{"timestamp":"2024-01-02T03:04:05.000006+0000","event_type":"dns","dns":{"type":"query","id":9,"rrname":"a.vn","rrtype":"A","rcode":"NOERROR"}}"#,
            r#"{"timestamp":"2024-01-02T03:04:05.000006+0000","event_type":"tls","tls":{"sni":"s.vn","version":"TLS 1.2","subject":"CN=s","issuerdn":"CN=i","fingerprint":"ff","ja3":{"hash":"j3"},"ja3s":{"hash":"j3s"}}}"#,
            r#"{"timestamp":"2024-01-02T03:04:05.000006+0000","event_type":"fileinfo","fileinfo":{"filename":"f.exe","md5":"m","sha1":"s1","sha256":"s2","size":99,"state":"CLOSED","stored":false}}"#,
            r#"{"timestamp":"2024-01-02T03:04:05.000006+0000","event_type":"anomaly","anomaly":{"type":"decode","event":"ev","layer":"l"}}"#,
            r#"{"timestamp":"2024-01-02T03:04:05.000006+0000","event_type":"stats"}"#,
        ];
        let asset = Asset {
            agency: "Bộ X".into(),
            system: "Cổng".into(),
            level: 4,
        };
        let m = Meta {
            received: 5,
            tenant: "t",
            sensor: "s",
            asset: Some(&asset),
            side: "dest",
        };
        let mut seen = Vec::new();
        for line in lines {
            let e = crate::eve::parse_str(line).unwrap();
            let family = e.family();
            seen.push(family);
            let table = family.table();
            let types = &schema[table];
            let cols = columns(family);
            let listed: Vec<&str> = cols.split(',').map(str::trim).collect();
            assert_eq!(listed.len(), types.len(), "{table}: every column, once");
            assert_eq!(*listed.last().unwrap(), "raw");
            let mut row = vec![0; 16];
            row[..8].copy_from_slice(&77u64.to_le_bytes());
            encode_event(&mut row, &m, &e, line);
            let v = decode(&row, cols, types);
            assert_eq!(v["event_id"], "77");
            assert_eq!(v["raw"], line);
            assert_eq!(v["ts"], "1704164645");
            assert_eq!(v["ts_usec"], "6");
            assert_eq!(v["asset_system"], "Cổng");
            assert_eq!(v["asset_level"], "4");
            assert_eq!(v["asset_side"], "dest");
            let expect: &[(&str, &str)] = match family {
                Family::Alert => &[
                    ("signature_id", "2001"),
                    ("severity", "1"),
                    ("category", "cat"),
                ],
                Family::Flow => &[
                    ("bytes_toclient", "14"),
                    ("age", "5"),
                    ("alerted", "1"),
                    ("flow_start", "1704164640"),
                ],
                Family::Http => &[
                    ("status", "200"),
                    ("length", "42"),
                    ("http_content_type", "text/html"),
                ],
                Family::Dns => &[("dns_id", "9"), ("rrname", "a.vn"), ("rcode", "NOERROR")],
                Family::Tls => &[("ja3s_hash", "j3s"), ("issuerdn", "CN=i")],
                Family::Fileinfo => &[("size", "99"), ("file_state", "CLOSED"), ("sha256", "s2")],
                Family::Anomaly => &[("anomaly_event", "ev"), ("layer", "l")],
                Family::Other => &[("event_type", "stats")],
            };
            for (c, want) in expect {
                assert_eq!(v[*c], *want, "{table}.{c}");
            }
        }
        assert_eq!(seen, Family::ALL);

        // intel_alerts
        let types = &schema[crate::schema::INTEL_TABLE];
        let listed = INTEL_COLUMNS.split(',').count();
        assert_eq!(listed, types.len(), "intel_alerts: every column, once");
        let e = crate::eve::parse_str(lines[3]).unwrap();
        let ind = Indicator {
            kind: crate::indicators::Kind::Domain,
            value: "a.vn".into(),
            source: "feed.txt:1".into(),
        };
        let mut row = vec![0; 24];
        encode_intel(&mut row, &m, &e, &ind, "dns.rrname", "a.vn");
        let v = decode(&row, INTEL_COLUMNS, types);
        assert_eq!(v["field"], "dns.rrname");
        assert_eq!(v["source"], "feed.txt:1");
        assert_eq!(v["severity"], "1");
    }

    #[test]
    fn varint_lengths() {
        for n in [0usize, 1, 127, 128, 300, 16_383, 16_384, 1 << 20] {
            let s = "x".repeat(n);
            let mut out = Vec::new();
            W(&mut out).str(&s);
            let cols = [("s".to_owned(), "String".to_owned())];
            assert_eq!(decode(&out, "s", &cols)["s"].len(), n);
        }
    }
}
