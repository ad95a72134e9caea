//! TLS: record layer, ClientHello, ServerHello, Certificate; JA3, JA3S, JA4.

use serde_json::{json, Map, Value};

/// A certificate from the server's chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsCert {
    /// "C=US, O=..., CN=..." as Suricata writes X.509 names.
    pub subject: String,
    pub issuer: String,
    /// "00:AB:..": raw serial bytes, upper-case hex, colon-separated.
    pub serial: String,
    /// SHA-1 of the DER, lower-case hex, colon-separated.
    pub fingerprint: String,
    /// Validity as seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
}

/// A TLS session's handshake.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsTx {
    pub tx_id: u64,
    /// Negotiated version (ServerHello, supported_versions for TLS 1.3), or the client's.
    pub version: u16,
    pub sni: Option<Vec<u8>>,
    pub ja3: Option<String>,
    pub ja3s: Option<String>,
    pub ja4: Option<String>,
    /// Leaf certificate first.
    pub certs: Vec<TlsCert>,
    pub session_resumed: bool,
}

/// "TLS 1.2" etc., as Suricata writes versions.
pub fn version_str(v: u16) -> String {
    match v {
        0x0002 => "SSLv2".into(),
        0x0300 => "SSLv3".into(),
        0x0301 => "TLS 1.0".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        0 => "UNDETERMINED".into(),
        v => format!("0x{v:04x}"),
    }
}

/// "2016-01-01T10:00:00" from seconds since the epoch (UTC).
pub(crate) fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn md5_hex(s: &str) -> String {
    use md5::{Digest, Md5};
    crate::util::hex(&Md5::digest(s.as_bytes()))
}

impl TlsTx {
    /// EVE `tls` value, Suricata 7 format (extended).
    pub fn eve(&self) -> Value {
        let mut m = Map::new();
        if let Some(c) = self.certs.first() {
            m.insert("subject".into(), c.subject.clone().into());
            m.insert("issuerdn".into(), c.issuer.clone().into());
            m.insert("serial".into(), c.serial.clone().into());
            m.insert("fingerprint".into(), c.fingerprint.clone().into());
        }
        if self.session_resumed {
            m.insert("session_resumed".into(), true.into());
        }
        if let Some(sni) = &self.sni {
            m.insert("sni".into(), crate::util::json_str(sni).into());
        }
        m.insert("version".into(), version_str(self.version).into());
        if let Some(c) = self.certs.first() {
            m.insert("notbefore".into(), format_time(c.not_before).into());
            m.insert("notafter".into(), format_time(c.not_after).into());
        }
        if let Some(j) = &self.ja3 {
            m.insert("ja3".into(), json!({"hash": md5_hex(j), "string": j}));
        }
        if let Some(j) = &self.ja3s {
            m.insert("ja3s".into(), json!({"hash": md5_hex(j), "string": j}));
        }
        if let Some(j) = &self.ja4 {
            m.insert("ja4".into(), j.clone().into());
        }
        Value::Object(m)
    }
}
