//! TLS: record layer, ClientHello, ServerHello, Certificate; JA3, JA3S, JA4.

use serde_json::{json, Map, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::util::StreamBuf;
use crate::{AppConfig, AppEvent, AppProto, Direction, Parser, Transaction};

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
    /// The certificate's DER bytes (detection's `tls.certs` buffer).
    pub der: Vec<u8>,
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
    /// The client's certificates (mutual authentication), leaf first.
    pub client_certs: Vec<TlsCert>,
    pub session_resumed: bool,
}

/// "TLS 1.2" etc., as Suricata writes versions.
pub fn version_str(v: u16) -> String {
    match v {
        0x0002 => "SSLv2".into(),
        0x0300 => "SSLv3".into(),
        0x0301 => "TLSv1".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        0x7f00..=0x7f0f => "TLS 1.3 draft-<16".into(),
        0x7f10..=0x7f1c => format!("TLS 1.3 draft-{}", v & 0xff),
        // Facebook's TLS 1.3 drafts.
        0xfb14..=0xfb17 | 0xfb1a => format!("TLS 1.3 draft-{}-fb", v & 0xff),
        0 => "UNDETERMINED".into(),
        _ => format!("0x{v:04x}"),
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
    crate::util::hex(&md5::Md5::digest(s.as_bytes()))
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

// ---------------------------------------------------------------------------------------
// Handshake messages: pure functions over one complete message body.

/// A bounds-checked big-endian reader.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&v, rest) = self.b.split_first()?;
        self.b = rest;
        Some(v)
    }

    fn u16(&mut self) -> Option<u16> {
        let v = self.b.get(..2)?;
        let v = u16::from_be_bytes([v[0], v[1]]);
        self.b = &self.b[2..];
        Some(v)
    }

    fn u24(&mut self) -> Option<usize> {
        let v = self.b.get(..3)?;
        let v = usize::from(v[0]) << 16 | usize::from(v[1]) << 8 | usize::from(v[2]);
        self.b = &self.b[3..];
        Some(v)
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let v = self.b.get(..n)?;
        self.b = &self.b[n..];
        Some(v)
    }

    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u8()?);
        self.bytes(n)
    }

    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u16()?);
        self.bytes(n)
    }

    fn u16_list(b: &[u8]) -> Vec<u16> {
        b.chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect()
    }
}

/// GREASE values (RFC 8701): 0x0a0a, 0x1a1a, ... 0xfafa.
pub(crate) fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// The fields of a ClientHello that logging and fingerprints need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ClientHello {
    pub(crate) version: u16,
    pub(crate) session_id: Vec<u8>,
    pub(crate) ciphers: Vec<u16>,
    pub(crate) extensions: Vec<u16>,
    pub(crate) groups: Vec<u16>,
    pub(crate) point_formats: Vec<u8>,
    pub(crate) sni: Option<Vec<u8>>,
    pub(crate) sni_count: usize,
    pub(crate) versions: Vec<u16>,
    pub(crate) alpn: Vec<Vec<u8>>,
    pub(crate) sig_algs: Vec<u16>,
}

/// Parse a ClientHello body (after the 4-byte handshake header).
pub(crate) fn parse_client_hello(b: &[u8]) -> Option<ClientHello> {
    let mut r = Reader { b };
    let mut ch = ClientHello {
        version: r.u16()?,
        ..ClientHello::default()
    };
    r.bytes(32)?; // random
    ch.session_id = r.vec8()?.to_vec();
    ch.ciphers = Reader::u16_list(r.vec16()?);
    r.vec8()?; // compression methods
    if r.b.is_empty() {
        return Some(ch); // no extensions
    }
    let mut ext = Reader { b: r.vec16()? };
    while !ext.b.is_empty() {
        let typ = ext.u16()?;
        let data = ext.vec16()?;
        ch.extensions.push(typ);
        let mut d = Reader { b: data };
        match typ {
            0 => {
                ch.sni_count += 1;
                let mut list = Reader { b: d.vec16()? };
                while !list.b.is_empty() {
                    let kind = list.u8()?;
                    let name = list.vec16()?;
                    if kind == 0 && ch.sni.is_none() {
                        ch.sni = Some(name.to_vec());
                    }
                }
            }
            10 => ch.groups = Reader::u16_list(d.vec16()?),
            11 => ch.point_formats = d.vec8()?.to_vec(),
            13 => ch.sig_algs = Reader::u16_list(d.vec16()?),
            16 => {
                let mut list = Reader { b: d.vec16()? };
                while !list.b.is_empty() {
                    ch.alpn.push(list.vec8()?.to_vec());
                }
            }
            43 => ch.versions = Reader::u16_list(d.vec8()?),
            _ => {}
        }
    }
    Some(ch)
}

/// The fields of a ServerHello that logging and fingerprints need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ServerHello {
    pub(crate) version: u16,
    pub(crate) session_id: Vec<u8>,
    pub(crate) cipher: u16,
    pub(crate) extensions: Vec<u16>,
    /// supported_versions (TLS 1.3).
    pub(crate) selected_version: Option<u16>,
}

/// The version Suricata reports for TLS 1.3 drafts 1-15 ("TLS 1.3 draft-<16").
const PRE_DRAFT16: u16 = 0x7f00;
/// The session_ticket extension (RFC 5077).
const EXT_SESSION_TICKET: u16 = 0x0023;

pub(crate) fn parse_server_hello(b: &[u8]) -> Option<ServerHello> {
    let mut r = Reader { b };
    let mut sh = ServerHello {
        version: r.u16()?,
        ..ServerHello::default()
    };
    r.bytes(32)?;
    // TLS 1.3 drafts before 22 dropped the session id and compression fields; drafts 1-15
    // wrote 0x0304 in the version field itself (Suricata: "TLS 1.3 draft-<16").
    let early_draft = sh.version == 0x0304 || (0x7f00..0x7f16).contains(&sh.version);
    if !early_draft {
        sh.session_id = r.vec8()?.to_vec();
    }
    sh.cipher = r.u16()?;
    if !early_draft {
        r.u8()?; // compression
    }
    if r.b.is_empty() {
        return Some(sh);
    }
    let mut ext = Reader { b: r.vec16()? };
    while !ext.b.is_empty() {
        let typ = ext.u16()?;
        let data = ext.vec16()?;
        sh.extensions.push(typ);
        if typ == 43 {
            sh.selected_version = Reader { b: data }.u16();
        }
    }
    Some(sh)
}

fn join<T: ToString>(v: impl Iterator<Item = T>) -> String {
    v.map(|x| x.to_string()).collect::<Vec<_>>().join("-")
}

/// JA3 string: version,ciphers,extensions,groups,point formats (GREASE removed).
pub(crate) fn ja3(ch: &ClientHello) -> String {
    let ng = |v: &&u16| !is_grease(**v);
    format!(
        "{},{},{},{},{}",
        ch.version,
        join(ch.ciphers.iter().filter(ng)),
        join(ch.extensions.iter().filter(ng)),
        join(ch.groups.iter().filter(ng)),
        join(ch.point_formats.iter()),
    )
}

/// JA3S string: version,cipher,extensions.
pub(crate) fn ja3s(sh: &ServerHello) -> String {
    format!(
        "{},{},{}",
        sh.version,
        sh.cipher,
        join(sh.extensions.iter().filter(|v| !is_grease(**v)))
    )
}

fn sha256_12(s: &str) -> String {
    let h = crate::util::hex(&Sha256::digest(s.as_bytes()));
    h[..12].to_owned()
}

/// JA4 (FoxIO) of a ClientHello seen over TCP.
pub(crate) fn ja4(ch: &ClientHello) -> String {
    let version = ch
        .versions
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .max()
        .unwrap_or(ch.version);
    let ver = match version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        _ => "00",
    };
    let sni = if ch.sni.is_some() { 'd' } else { 'i' };
    let ciphers: Vec<u16> = ch
        .ciphers
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .collect();
    let exts: Vec<u16> = ch
        .extensions
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .collect();
    let alpn = match ch.alpn.first().map(Vec::as_slice) {
        Some([a, .., b]) if a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric() => {
            format!("{}{}", *a as char, *b as char)
        }
        Some([a]) if a.is_ascii_alphanumeric() => format!("{0}{0}", *a as char),
        Some(v @ [_, ..]) => {
            let h = crate::util::hex(v);
            format!("{}{}", &h[..1], &h[h.len() - 1..])
        }
        _ => "00".to_owned(),
    };
    let hex4 = |v: &[u16]| {
        v.iter()
            .map(|x| format!("{x:04x}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut sorted_c = ciphers.clone();
    sorted_c.sort_unstable();
    let mut sorted_e: Vec<u16> = exts
        .iter()
        .copied()
        .filter(|&e| e != 0 && e != 16)
        .collect();
    sorted_e.sort_unstable();
    let b = if sorted_c.is_empty() {
        "000000000000".to_owned()
    } else {
        sha256_12(&hex4(&sorted_c))
    };
    let c = if sorted_e.is_empty() {
        "000000000000".to_owned()
    } else if ch.sig_algs.is_empty() {
        sha256_12(&hex4(&sorted_e))
    } else {
        sha256_12(&format!("{}_{}", hex4(&sorted_e), hex4(&ch.sig_algs)))
    };
    format!(
        "t{ver}{sni}{:02}{:02}{alpn}_{b}_{c}",
        ciphers.len().min(99),
        exts.len().min(99)
    )
}

/// Colon-separated hex, upper or lower case.
fn colon_hex(b: &[u8], upper: bool) -> String {
    b.iter()
        .map(|x| {
            if upper {
                format!("{x:02X}")
            } else {
                format!("{x:02x}")
            }
        })
        .collect::<Vec<_>>()
        .join(":")
}

/// Decode one DER certificate. `None` if it is not valid X.509.
pub(crate) fn parse_cert(der: &[u8]) -> Option<TlsCert> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let tbs = &cert.tbs_certificate;
    Some(TlsCert {
        subject: tbs.subject.to_string(),
        issuer: tbs.issuer.to_string(),
        serial: colon_hex(tbs.raw_serial(), true),
        fingerprint: colon_hex(&Sha1::digest(der), false),
        not_before: tbs.validity.not_before.timestamp(),
        not_after: tbs.validity.not_after.timestamp(),
        der: der.to_vec(),
    })
}

// ---------------------------------------------------------------------------------------
// Record layer and session state.

const REC_CCS: u8 = 20;
const REC_HANDSHAKE: u8 = 22;
const REC_APPDATA: u8 = 23;
const REC_HEARTBEAT: u8 = 24;
/// Largest record body allowed (2^14 plus expansion, RFC 5246 6.2.3).
const MAX_RECORD: usize = 16_384 + 2048;

#[derive(Default)]
struct DirState {
    /// Header bytes of the record being read.
    hdr: Vec<u8>,
    /// Body of a handshake record being read.
    body: Vec<u8>,
    need: usize,
    /// Bytes of a record we do not look into.
    skip: usize,
    rec_type: u8,
    /// Handshake messages spanning records.
    hs: StreamBuf,
    records: u64,
    encrypted: bool,
    broken: bool,
}

pub(crate) struct TlsParser {
    dirs: [DirState; 2],
    tx: TlsTx,
    client_hello: Option<ClientHello>,
    server_version: Option<u16>,
    /// Version of the first record the server sent: Suricata's server version until a
    /// ServerHello says otherwise (an alert-only answer is logged with it).
    record_version: Option<u16>,
    logged: bool,
    /// An application data record was seen (after the ServerHello: TLS 1.3 0-RTT data
    /// before it does not count): the session is encrypted from here on.
    app_data: bool,
    /// The server sent a CertificateRequest: the session is logged once the client's
    /// Certificate (or its ChangeCipherSpec) follows, so its certificates are part of it.
    cert_requested: bool,
    /// A record that cannot be framed (bad type, version or length): Suricata's parser
    /// returns an error, the flow's app layer is disabled and the session is never logged.
    failed: bool,
    max_buffer: usize,
    max_certs: usize,
}

fn anomaly(event: &'static str) -> AppEvent {
    AppEvent::Anomaly {
        proto: AppProto::Tls,
        event,
    }
}

impl TlsParser {
    pub(crate) fn new(cfg: &AppConfig) -> Self {
        TlsParser {
            dirs: [DirState::default(), DirState::default()],
            tx: TlsTx::default(),
            client_hello: None,
            server_version: None,
            record_version: None,
            logged: false,
            app_data: false,
            cert_requested: false,
            failed: false,
            max_buffer: cfg.max_buffer,
            max_certs: cfg.tls_max_certs,
        }
    }

    fn emit(&mut self, out: &mut Vec<AppEvent>) {
        if self.logged
            || self.failed
            || (self.client_hello.is_none() && self.server_version.is_none())
            || !self.loggable_without_cert()
        {
            return;
        }
        self.logged = true;
        self.tx.version = self.server_version.or(self.record_version).unwrap_or(0);
        out.push(AppEvent::Tx(Transaction::Tls(self.tx.clone())));
    }

    /// Suricata logs a session whose server sent no certificate only when it may be a
    /// resumption — the ClientHello offered a session ticket (extension 35), or the
    /// ServerHello echoed the client's session id — or when the server chose TLS 1.3
    /// (its certificate is encrypted). A ClientHello answered by nothing, by an alert or
    /// by a ServerHello alone is otherwise never logged.
    fn loggable_without_cert(&self) -> bool {
        !self.tx.certs.is_empty()
            || self.tx.session_resumed
            || self
                .client_hello
                .as_ref()
                .is_some_and(|c| c.extensions.contains(&EXT_SESSION_TICKET))
            || self
                .server_version
                .is_some_and(|v| v == 0x0304 || (0x7f00..=0x7fff).contains(&v))
    }

    fn handshake_msg(&mut self, dir: Direction, typ: u8, body: &[u8], out: &mut Vec<AppEvent>) {
        match (dir, typ) {
            (Direction::ToServer, 1) => match parse_client_hello(body) {
                Some(ch) => {
                    if ch.sni_count > 1 {
                        out.push(anomaly("MULTIPLE_SNI_EXTENSIONS"));
                    }
                    // A second ClientHello (after a HelloRetryRequest, or repeated)
                    // does not change what Suricata logs: the first one's SNI and JA3.
                    if self.client_hello.is_none() {
                        self.tx.sni = ch.sni.clone();
                        self.tx.ja3 = Some(ja3(&ch));
                        self.tx.ja4 = Some(ja4(&ch));
                        self.client_hello = Some(ch);
                    }
                }
                None => out.push(anomaly("INVALID_HANDSHAKE_MESSAGE")),
            },
            (Direction::ToClient, 2) => match parse_server_hello(body) {
                Some(sh) => {
                    let version = match (sh.selected_version, sh.version) {
                        (Some(v), _) => v,
                        // 0x0304 in the hello itself: an early draft (Suricata's
                        // TLS_VERSION_13_PRE_DRAFT16, named "TLS 1.3 draft-<16").
                        (None, 0x0304) => PRE_DRAFT16,
                        (None, v) => v,
                    };
                    self.server_version = Some(version);
                    self.tx.ja3s = Some(ja3s(&sh));
                    if let Some(ch) = &self.client_hello {
                        self.tx.session_resumed =
                            !sh.session_id.is_empty() && sh.session_id == ch.session_id;
                    }
                    if version == 0x0304 || (0x7f00..=0x7fff).contains(&version) {
                        // TLS 1.3: the rest of the server's handshake is encrypted.
                        self.dirs[1].encrypted = true;
                    }
                }
                None => out.push(anomaly("INVALID_HANDSHAKE_MESSAGE")),
            },
            // ServerHelloDone: the server's side of a TLS <= 1.2 handshake is complete and
            // nothing later changes the record; Suricata logs the session here (a record
            // that cannot be framed afterwards no longer stops it).
            (Direction::ToClient, 14) if self.client_hello.is_some() && !self.cert_requested => {
                self.emit(out)
            }
            (Direction::ToClient, 13) => self.cert_requested = true,
            (Direction::ToServer, 11) => {
                let mut r = Reader { b: body };
                let Some(list) = r.u24().and_then(|n| r.bytes(n)) else {
                    out.push(anomaly("CERTIFICATE_INVALID_LENGTH"));
                    return;
                };
                let mut r = Reader { b: list };
                while !r.b.is_empty() && self.tx.client_certs.len() < self.max_certs {
                    let Some(der) = r.u24().and_then(|n| r.bytes(n)) else {
                        out.push(anomaly("CERTIFICATE_INVALID_LENGTH"));
                        break;
                    };
                    match parse_cert(der) {
                        Some(c) => self.tx.client_certs.push(c),
                        None => {
                            out.push(anomaly("INVALID_CERTIFICATE"));
                            break;
                        }
                    }
                }
                if self.cert_requested {
                    self.emit(out);
                }
            }
            (Direction::ToClient, 11) => {
                self.tx.session_resumed = false;
                let mut r = Reader { b: body };
                let Some(list) = r.u24().and_then(|n| r.bytes(n)) else {
                    out.push(anomaly("CERTIFICATE_INVALID_LENGTH"));
                    return;
                };
                let mut r = Reader { b: list };
                while !r.b.is_empty() && self.tx.certs.len() < self.max_certs {
                    let Some(der) = r.u24().and_then(|n| r.bytes(n)) else {
                        out.push(anomaly("CERTIFICATE_INVALID_LENGTH"));
                        return;
                    };
                    match parse_cert(der) {
                        // Suricata hands the first certificate's subject and issuer to C
                        // as NUL-terminated strings: one holding a NUL byte is an error
                        // that stops the TLS parser, and the session is never logged.
                        Some(c) if self.tx.certs.is_empty() && c.subject.contains('\0') => {
                            out.push(anomaly("CERTIFICATE_INVALID_SUBJECT"));
                            self.failed = true;
                            return;
                        }
                        Some(c) if self.tx.certs.is_empty() && c.issuer.contains('\0') => {
                            out.push(anomaly("CERTIFICATE_INVALID_ISSUER"));
                            self.failed = true;
                            return;
                        }
                        Some(c) => self.tx.certs.push(c),
                        None => {
                            out.push(anomaly("INVALID_CERTIFICATE"));
                            return;
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn record(&mut self, dir: Direction, typ: u8, body: &[u8], out: &mut Vec<AppEvent>) {
        let d = dir.idx();
        match typ {
            REC_HANDSHAKE if !self.dirs[d].encrypted => {
                if !self.dirs[d].hs.push(body, self.max_buffer) {
                    out.push(anomaly("HANDSHAKE_INVALID_LENGTH"));
                    self.dirs[d].broken = true;
                    return;
                }
                let buf = self.dirs[d].hs.take();
                let mut rest: &[u8] = &buf;
                while let [typ, a, b, c, tail @ ..] = rest {
                    let len = usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c);
                    let Some(msg) = tail.get(..len) else { break };
                    self.handshake_msg(dir, *typ, msg, out);
                    rest = &tail[len..];
                }
                self.dirs[d].hs.push(rest, self.max_buffer);
            }
            REC_CCS => {
                self.dirs[d].encrypted = true;
                if self.dirs.iter().all(|x| x.encrypted) {
                    self.emit(out);
                }
            }
            REC_APPDATA if self.server_version.is_some() => {
                self.app_data = true;
                self.emit(out);
            }
            // A heartbeat in the clear (Suricata 7 does not report encrypted ones).
            REC_HEARTBEAT if !self.dirs[d].encrypted => out.push(anomaly("HEARTBEAT_MESSAGE")),
            _ => {}
        }
    }

    /// An SSLv2 record (2-byte header with the high bit set): note its version.
    fn sslv2_record(&mut self, dir: Direction, body: &[u8]) {
        match (dir, body) {
            // CLIENT-HELLO: msg type 1, version.
            (Direction::ToServer, [1, hi, lo, ..]) if self.client_hello.is_none() => {
                self.client_hello = Some(ClientHello {
                    version: u16::from_be_bytes([*hi, *lo]),
                    ..ClientHello::default()
                });
            }
            // SERVER-HELLO: msg type 4, session-id-hit, cert type, version.
            (Direction::ToClient, [4, _, _, hi, lo, ..]) => {
                self.server_version = Some(u16::from_be_bytes([*hi, *lo]));
            }
            _ => {}
        }
    }
}

impl Parser for TlsParser {
    fn proto(&self) -> AppProto {
        AppProto::Tls
    }

    fn parse(&mut self, dir: Direction, mut data: &[u8], _ts: i64, out: &mut Vec<AppEvent>) {
        let d = dir.idx();
        // Records are framed until the session is logged and encrypted.
        let done = |p: &Self| p.logged && p.app_data;
        while !data.is_empty() && !self.dirs[d].broken && !done(self) {
            let st = &mut self.dirs[d];
            if st.skip > 0 {
                let n = st.skip.min(data.len());
                st.skip -= n;
                data = &data[n..];
                continue;
            }
            if st.need > 0 {
                let n = st.need.min(data.len());
                st.body.extend_from_slice(&data[..n]);
                st.need -= n;
                data = &data[n..];
                if st.need == 0 {
                    let body = std::mem::take(&mut st.body);
                    let typ = st.rec_type;
                    if typ == 0x80 {
                        self.sslv2_record(dir, &body);
                    } else {
                        self.record(dir, typ, &body, out);
                    }
                }
                continue;
            }
            // A record header: 5 bytes (TLS) or 2 (SSLv2, first record only).
            let sslv2 = st.records == 0
                && st
                    .hdr
                    .first()
                    .or(data.first())
                    .is_some_and(|b| b & 0x80 != 0);
            let want = if sslv2 { 2 } else { 5 };
            let n = (want - st.hdr.len()).min(data.len());
            st.hdr.extend_from_slice(&data[..n]);
            data = &data[n..];
            if st.hdr.len() < want {
                break;
            }
            let hdr = std::mem::take(&mut st.hdr);
            st.records += 1;
            let valid = sslv2 || ((REC_CCS..=REC_HEARTBEAT).contains(&hdr[0]) && hdr[1] == 3);
            if dir == Direction::ToClient && self.record_version.is_none() && valid {
                self.record_version = Some(if sslv2 {
                    0x0002
                } else {
                    u16::from_be_bytes([hdr[1], hdr[2]])
                });
            }
            if sslv2 {
                let len = usize::from(hdr[0] & 0x7f) << 8 | usize::from(hdr[1]);
                st.rec_type = 0x80;
                st.need = len;
                if len == 0 {
                    out.push(anomaly("INVALID_SSLV2_HEADER"));
                    st.broken = true;
                    self.failed = true;
                }
                continue;
            }
            let (typ, major, len) = (
                hdr[0],
                hdr[1],
                usize::from(u16::from_be_bytes([hdr[3], hdr[4]])),
            );
            if !(REC_CCS..=REC_HEARTBEAT).contains(&typ) {
                out.push(anomaly("INVALID_RECORD_TYPE"));
                st.broken = true;
                self.failed = true;
            } else if major != 3 {
                out.push(anomaly("INVALID_RECORD_VERSION"));
                st.broken = true;
                self.failed = true;
            } else if len > MAX_RECORD {
                out.push(anomaly("INVALID_TLS_HEADER"));
                st.broken = true;
                self.failed = true;
            } else if typ == REC_HANDSHAKE && !st.encrypted {
                st.rec_type = typ;
                st.need = len;
                st.body.reserve(len);
                if len == 0 {
                    self.record(dir, typ, &[], out);
                }
            } else {
                // Other records are acted on by type; their bodies are skipped.
                st.skip = len;
                self.record(dir, typ, &[], out);
            }
        }
        if self.dirs[d].broken {
            self.dirs[d].body = Vec::new();
            self.dirs[d].hs.clear();
        }
    }

    fn gap(&mut self, dir: Direction, _len: u64, _out: &mut Vec<AppEvent>) {
        // Records cannot be re-framed after lost bytes.
        let st = &mut self.dirs[dir.idx()];
        st.broken = true;
        st.body = Vec::new();
        st.hs.clear();
    }

    fn close(&mut self, _ts: i64, out: &mut Vec<AppEvent>) {
        self.emit(out);
    }

    fn encrypted(&self) -> Option<crate::ClearUntil> {
        self.app_data.then_some(crate::ClearUntil::Before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // The first session of suricata-verify tls/tls-cert-issuer/tls.pcap (client port 49365).
    // CLIENT_HELLO: record header 16 0301 00af; handshake 01 0000ab; version 0303; random
    // (32); session id len 00; cipher suites len 0024 (18 suites c02b c02f 009e ...);
    // compression 01 00; extensions len 005e: ff01 (reneg), 000a (groups 0017 0018 0019),
    // 000b (point formats 00), 0023 (ticket), 3374 (NPN), 0010 (ALPN spdy/3.1 http/1.1),
    // 7550 (channel id), 0005 (status request), 0012 (SCT), 000d (sig algs).
    // SERVER_FLIGHT: ServerHello (0303, cipher c02f, ext ff01 000b 0023), Certificate (one
    // self-signed cert "CN=SELKS"), ServerKeyExchange, ServerHelloDone.
    const CLIENT_HELLO: &str = concat!(
        "16030100af010000ab0303942d1fef575d770207c29dbe2401ccf05dcde1d2a5869c4a3eee38db551ad9bc000024c02b",
        "c02f009ec00ac009c013c014c007c011003300320039009c002f0035000a000500040100005eff01000100000a000800",
        "06001700180019000b00020100002300003374000000100014001208737064792f332e3108687474702f312e31755000",
        "0000050005010000000000120000000d0012001004010501020104030503020304020202",
    );
    const SERVER_FLIGHT: &str = concat!(
        "160303003d02000039030354f9fc1577e433d32da82e9d38897d5a2628bfb09851dad9bd03f8afa209a4f000c02f0000",
        "11ff01000100000b0004030001020023000016030303790b00037500037200036f3082036b30820253a0030201020209",
        "0097e647098eeac9b4300d06092a864886f70d0101050500304c310b3009060355040613024652310c300a0603550408",
        "0c03494446310e300c06035504070c055061726973310f300d060355040a0c065374616d7573310e300c06035504030c",
        "0553454c4b53301e170d3135303231323138303732375a170d3235303230393138303732375a304c310b300906035504",
        "0613024652310c300a06035504080c03494446310e300c06035504070c055061726973310f300d060355040a0c065374",
        "616d7573310e300c06035504030c0553454c4b5330820122300d06092a864886f70d01010105000382010f003082010a",
        "0282010100a682bee856936d61f74fc94777cde53c7c8d0dba1534f5ae1e85a8d6da336d5ffd6253fa45f05d84742787",
        "7132643c96fff394bfbf0250a58477588e35cdf0f3246994e77b93d8357adab2f94e0f24be0109e3f2f64beee593992c",
        "770cb4edf555dfdab2ea578abdf230f392cbe3976752c2bc21392e5dc9173bf7d633ed613f085b41344a4fb690aa8e97",
        "895b7512833619800d7b7f7aae32d15fdd6b47ea5a4150041785c4c79d754587a974b326f965011df086014ebe30a576",
        "d4e845768f5e737cfe77a57e62f4043c340e4bf5eff69a9128bf02d46e02ffe5652d90707a72fda704549202e2880798",
        "275936f9983ed947eb137edafa122a1c8536460c030203010001a350304e301d0603551d0e041604146acee6879acf38",
        "97fd81a8e279958f1adeab2222301f0603551d230418301680146acee6879acf3897fd81a8e279958f1adeab2222300c",
        "0603551d13040530030101ff300d06092a864886f70d01010505000382010100568deb00d5f0323b21de5b0f20fba93e",
        "eae856215479f7bab353d1f6f659e1ca00fac523dfa698ac483023d6c346a956d10b8e4d47741e858764bdf44cb57444",
        "a0a8e16ca3c303c28099c1ce8960bda4b6f145b998d5b201d24570dc12c8175ff2ee0003c0bf0be29feb9be33c43aba9",
        "590b44a8ff92f2b238e6232bd42604899637954ec1f1bc8e6e05eff12eb7ef6a2c0fbfb0d3d2f9eee2f3130333fa52f6",
        "bcb2e594f91fdc1ed5aaacef0bc5bfecf91456693975458dd1fda46f1da260e9609460b8cc1487f1384a0cf3096ca301",
        "ce03fe0e174672b581f3d11b502498d480e6709e1d84380ffc4efc953b7690728b530b3da5b92dcd6dc4a94bd6c3a845",
        "160303014d0c0001490300174104c7762bf06c2cb7834f948d61d559364bdd45e4461d30461eff3159e6f19c0b297bfc",
        "31ff7bd08be3d80a148e6f706a455db1eb49145f2e675aefa4a657ed9e1d04010100122c126ea0965828057bea326ec8",
        "9113aea4f15ce88c94349a9813438c5252d18e0249d757e875dd38c881098ef499ace1f4ce123db2776146a53effa6d7",
        "90c571a0d71c9c0058ef389066d7546683af1a3af543b8fc51c2e2658ff8e3218897eab149acb2eacee1f9badf6b4f0a",
        "d4851817fe203f08b258e73cd43095d94a4224bb963c01152e472a03743399e6f18a1febb050cb0bb299a1145cbd8fb7",
        "0d00ca2385a1d00d6e33168c65bb368fb3fbb22797887d78e144e9f49c31258f980245fa7b19d38666f63f178157d61f",
        "23cfa636628dce4707cd4fd4041c5b1e7567393d15b1ef367788f6d6262ea3f4b8c64e5b0b8f6231074ee600b23e8283",
        "51c716030300040e000000",
    );
    /// ChangeCipherSpec record: type 20, version 3.3, length 1, value 1.
    const CCS: &[u8] = &[0x14, 0x03, 0x03, 0x00, 0x01, 0x01];

    fn txs(ev: &[AppEvent]) -> Vec<&TlsTx> {
        ev.iter()
            .filter_map(|e| match e {
                AppEvent::Tx(Transaction::Tls(t)) => Some(t),
                _ => None,
            })
            .collect()
    }

    /// Two ClientHellos in a row (sv pcap, localhost:8443: the second carries a cookie):
    /// Suricata 7.0.10 logs the first one's JA3.
    #[test]
    fn a_second_client_hello_does_not_replace_the_first() {
        let mut p = TlsParser::new(&AppConfig::default());
        let mut out = Vec::new();
        p.parse(Direction::ToServer, &bare_hello(0x2f, true), 0, &mut out);
        p.parse(Direction::ToServer, &bare_hello(0x35, true), 0, &mut out);
        p.close(1, &mut out);
        let t = txs(&out);
        assert_eq!(t[0].ja3.as_deref(), Some("771,47,35,,"));
    }

    /// Record (handshake, 3.1), ClientHello: version 3.3, 32-byte random, no session id,
    /// one suite, null compression, and only an empty session_ticket extension if
    /// `ticket`.
    fn bare_hello(suite: u8, ticket: bool) -> Vec<u8> {
        let ext: &[u8] = if ticket {
            &[0x00, 0x04, 0x00, 0x23, 0x00, 0x00]
        } else {
            &[]
        };
        let n = 0x29 + ext.len() as u8;
        let mut h = vec![
            0x16,
            0x03,
            0x01,
            0x00,
            n + 4,
            0x01,
            0x00,
            0x00,
            n,
            0x03,
            0x03,
        ];
        h.extend_from_slice(&[7; 32]);
        h.extend_from_slice(&[0x00, 0x00, 0x02, 0x00, suite, 0x01, 0x00]);
        h.extend_from_slice(ext);
        h
    }

    /// Suricata 7.0.10 (checked on cut-out sv flows: app-layer-protocol-prefilter,
    /// tls-extra-alert, modbus.pcap's 15057 → 443) does not log a session without the
    /// server's certificate unless the ClientHello offered a session ticket, the server
    /// echoed the session id, or the server chose TLS 1.3.
    #[test]
    fn certless_sessions_are_logged_only_when_resumable() {
        let run = |ticket: bool, answer: &[u8]| {
            let mut p = TlsParser::new(&AppConfig::default());
            let mut out = Vec::new();
            p.parse(Direction::ToServer, &bare_hello(0x2f, ticket), 0, &mut out);
            p.parse(Direction::ToClient, answer, 0, &mut out);
            p.close(1, &mut out);
            txs(&out).len()
        };
        let alert = [0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28];
        assert_eq!(run(false, &[]), 0, "ClientHello alone");
        assert_eq!(run(false, &alert), 0, "answered by a fatal alert");
        assert_eq!(run(true, &[]), 1, "a session ticket was offered");
        assert_eq!(run(true, &alert), 1);
    }

    #[test]
    fn handshake_matches_suricata_eve_any_split() {
        let ch = unhex(CLIENT_HELLO);
        let sf = unhex(SERVER_FLIGHT);
        // Suricata 7.0.10 with ja3-fingerprints enabled, on this pcap.
        let want: Value = serde_json::from_str(r#"{"subject":"C=FR, ST=IDF, L=Paris, O=Stamus, CN=SELKS","issuerdn":"C=FR, ST=IDF, L=Paris, O=Stamus, CN=SELKS","serial":"00:97:E6:47:09:8E:EA:C9:B4","fingerprint":"3a:0b:3b:23:15:2c:44:5c:27:ac:6a:0c:41:d6:fa:74:af:b4:09:5b","version":"TLS 1.2","notbefore":"2015-02-12T18:07:27","notafter":"2025-02-09T18:07:27","ja3":{"hash":"308b0bd904abbef5e0034a1ff7a78920","string":"771,49195-49199-158-49162-49161-49171-49172-49159-49169-51-50-57-156-47-53-10-5-4,65281-10-11-35-13172-16-30032-5-18-13,23-24-25,0"},"ja3s":{"hash":"ccc514751b175866924439bdbb5bba34","string":"771,49199,65281-11-35"}}"#).unwrap();
        for split in (0..sf.len()).step_by(7) {
            let mut p = TlsParser::new(&AppConfig::default());
            let mut out = Vec::new();
            let (a, b) = ch.split_at(split.min(ch.len()));
            p.parse(Direction::ToServer, a, 0, &mut out);
            p.parse(Direction::ToServer, b, 0, &mut out);
            let (a, b) = sf.split_at(split);
            p.parse(Direction::ToClient, a, 0, &mut out);
            assert!(out.is_empty(), "not logged before ServerHelloDone: {split}");
            p.parse(Direction::ToClient, b, 0, &mut out);
            // Logged once the server's flight ends with ServerHelloDone (Suricata 7.0.10
            // logs on the packet that delivers it), the ChangeCipherSpecs add nothing.
            p.parse(Direction::ToServer, CCS, 0, &mut out);
            p.parse(Direction::ToClient, CCS, 0, &mut out);
            let t = txs(&out);
            assert_eq!(t.len(), 1, "split {split}");
            let mut got = t[0].eve();
            got.as_object_mut().unwrap().remove("ja4");
            assert_eq!(got, want, "split {split}");
            p.close(0, &mut out);
            assert_eq!(txs(&out).len(), 1, "logged once");
        }
    }

    #[test]
    fn encrypted_once_application_data_follows_the_handshake() {
        let mut p = TlsParser::new(&AppConfig::default());
        let mut out = Vec::new();
        // Application data before any ServerHello (TLS 1.3 0-RTT) does not count.
        p.parse(Direction::ToServer, &unhex(CLIENT_HELLO), 0, &mut out);
        p.parse(
            Direction::ToServer,
            &[23, 3, 3, 0, 2, 0xaa, 0xbb],
            0,
            &mut out,
        );
        assert!(p.encrypted().is_none());
        p.parse(Direction::ToClient, &unhex(SERVER_FLIGHT), 0, &mut out);
        p.parse(Direction::ToServer, CCS, 0, &mut out);
        p.parse(Direction::ToClient, CCS, 0, &mut out);
        assert_eq!(txs(&out).len(), 1);
        assert!(p.encrypted().is_none(), "handshake only so far");
        // The encrypted Finished, then a heartbeat (encrypted: no anomaly), then data.
        out.clear();
        p.parse(Direction::ToClient, &[22, 3, 3, 0, 3, 1, 2, 3], 0, &mut out);
        p.parse(Direction::ToClient, &[24, 3, 3, 0, 1, 9], 0, &mut out);
        assert!(p.encrypted().is_none());
        p.parse(Direction::ToClient, &[23, 3, 3, 0, 4, 1, 2], 0, &mut out);
        assert_eq!(p.encrypted(), Some(crate::ClearUntil::Before));
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn ja4_of_the_reference_chrome_hello() {
        // FoxIO's published example: t13d1516h2_8daaf6152771_e5627efa2ab1.
        let ch = ClientHello {
            version: 0x0303,
            ciphers: vec![
                0x2a2a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
                0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
            ],
            extensions: vec![
                0x0a0a, 0x0000, 0x0017, 0xff01, 0x000a, 0x000b, 0x0023, 0x0010, 0x0005, 0x000d,
                0x0012, 0x0033, 0x002d, 0x002b, 0x001b, 0x4469, 0x0015,
            ],
            sni: Some(b"example.com".to_vec()),
            versions: vec![0x3a3a, 0x0304, 0x0303],
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            sig_algs: vec![
                0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
            ],
            ..ClientHello::default()
        };
        assert_eq!(ja4(&ch), "t13d1516h2_8daaf6152771_e5627efa2ab1");
        assert!(is_grease(0xfafa) && is_grease(0x0a0a) && !is_grease(0x0a1a));
        assert!(
            ja3(&ch).starts_with("771,4865-4866-4867-"),
            "GREASE dropped"
        );
    }

    #[test]
    fn sni_and_tls13_version() {
        // A minimal ClientHello with SNI "a.example" and supported_versions {1.3, 1.2}.
        let mut ext = Vec::new();
        ext.extend_from_slice(&[0x00, 0x00, 0x00, 0x0e, 0x00, 0x0c, 0x00, 0x00, 0x09]);
        ext.extend_from_slice(b"a.example");
        ext.extend_from_slice(&[0x00, 0x2b, 0x00, 0x05, 0x04, 0x03, 0x04, 0x03, 0x03]);
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[0u8; 32]); // random
        body.extend_from_slice(&[0x00, 0x00, 0x02, 0x13, 0x01, 0x01, 0x00]); // sid, 1 suite, null
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let ch = parse_client_hello(&body).unwrap();
        assert_eq!(ch.sni.as_deref(), Some(&b"a.example"[..]));
        assert_eq!(
            ja4(&ch),
            format!("t13d010200_{}_{}", sha256_12("1301"), sha256_12("002b"))
        );
        // ServerHello selecting TLS 1.3 via supported_versions.
        let mut sh = vec![0x03, 0x03];
        sh.extend_from_slice(&[0u8; 32]);
        sh.extend_from_slice(&[
            0x00, 0x13, 0x01, 0x00, 0x00, 0x06, 0x00, 0x2b, 0x00, 0x02, 0x03, 0x04,
        ]);
        let rec = |hs_type: u8, b: &[u8]| {
            let mut r = vec![0x16, 0x03, 0x03];
            r.extend_from_slice(&((b.len() + 4) as u16).to_be_bytes());
            r.push(hs_type);
            r.extend_from_slice(&(b.len() as u32).to_be_bytes()[1..]);
            r.extend_from_slice(b);
            r
        };
        let mut p = TlsParser::new(&AppConfig::default());
        let mut out = Vec::new();
        p.parse(Direction::ToServer, &rec(1, &body), 0, &mut out);
        p.parse(Direction::ToClient, &rec(2, &sh), 0, &mut out);
        // Encrypted handshake (application data records) ends what can be seen.
        p.parse(
            Direction::ToClient,
            &[0x17, 0x03, 0x03, 0x00, 0x02, 0xaa, 0xbb],
            0,
            &mut out,
        );
        let t = txs(&out);
        assert_eq!(t[0].eve()["version"], "TLS 1.3");
        assert_eq!(t[0].eve()["sni"], "a.example");
        assert_eq!(t[0].eve()["ja3s"]["string"], "771,4865,43");
    }

    #[test]
    fn server_answering_with_an_alert_is_logged_with_the_record_version() {
        // ClientHello, then the server's fatal protocol_version alert in a TLS 1.0 record
        // (type 21, version 3.1, length 2, level 2, description 70): Suricata 7 logs the
        // session with version "TLSv1" from the record header.
        let mut p = TlsParser::new(&AppConfig::default());
        let mut out = Vec::new();
        p.parse(Direction::ToServer, &unhex(CLIENT_HELLO), 0, &mut out);
        p.parse(
            Direction::ToClient,
            &[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46],
            0,
            &mut out,
        );
        p.close(0, &mut out);
        let t = txs(&out);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].eve()["version"], "TLSv1");
    }

    #[test]
    fn a_nul_in_the_first_certificate_names_stops_the_session_like_suricata() {
        // The reference flight with "SELKS" in the issuer (before the validity, 301e) or
        // in the subject (before the key, 3082) turned into "SEL\0S".
        let flight = SERVER_FLIGHT.to_string();
        for (from, event) in [
            ("53454c4b53301e", "CERTIFICATE_INVALID_ISSUER"),
            ("53454c4b533082", "CERTIFICATE_INVALID_SUBJECT"),
        ] {
            assert_eq!(flight.matches(from).count(), 1);
            let bad = flight.replace(from, &from.replacen("4b53", "0053", 1));
            let mut p = TlsParser::new(&AppConfig::default());
            let mut out = Vec::new();
            p.parse(Direction::ToServer, &unhex(CLIENT_HELLO), 0, &mut out);
            p.parse(Direction::ToClient, &unhex(&bad), 0, &mut out);
            p.parse(Direction::ToServer, CCS, 0, &mut out);
            p.close(0, &mut out);
            assert!(txs(&out).is_empty(), "{event}");
            assert!(out
                .iter()
                .any(|e| matches!(e, AppEvent::Anomaly { event: ev, .. } if *ev == event)));
        }
    }

    #[test]
    fn a_record_that_cannot_be_framed_means_no_record_like_suricata() {
        // Suricata's TLS parser returns an error on it, the flow's app layer is disabled
        // and the session is not logged, even with a ClientHello seen.
        let cfg = AppConfig::default();
        let mut p = TlsParser::new(&cfg);
        let mut out = Vec::new();
        p.parse(Direction::ToServer, &unhex(CLIENT_HELLO), 0, &mut out);
        p.parse(
            Direction::ToClient,
            b"HTTP/1.1 400 Bad Request\r\n",
            0,
            &mut out,
        );
        p.close(0, &mut out);
        assert!(txs(&out).is_empty());
        // Without the error the same ClientHello is logged at the end.
        let mut p = TlsParser::new(&cfg);
        let mut out = Vec::new();
        p.parse(Direction::ToServer, &unhex(CLIENT_HELLO), 0, &mut out);
        p.close(0, &mut out);
        assert_eq!(txs(&out).len(), 1);
    }

    #[test]
    fn malformed_records_and_messages() {
        let cfg = AppConfig::default();
        let ch = unhex(CLIENT_HELLO);
        // Every truncation of the ClientHello body fails cleanly.
        for n in 0..ch.len() - 9 {
            let _ = parse_client_hello(&ch[9..9 + n]);
        }
        // A record type that does not exist.
        let mut p = TlsParser::new(&cfg);
        let mut out = Vec::new();
        p.parse(
            Direction::ToServer,
            &[0x30, 0x03, 0x01, 0x00, 0x01, 0x00],
            0,
            &mut out,
        );
        assert!(matches!(
            out.as_slice(),
            [AppEvent::Anomaly {
                event: "INVALID_RECORD_TYPE",
                ..
            }]
        ));
        // An oversized record length.
        let mut p = TlsParser::new(&cfg);
        let mut out = Vec::new();
        p.parse(
            Direction::ToServer,
            &[0x16, 0x03, 0x01, 0xff, 0xff],
            0,
            &mut out,
        );
        assert!(matches!(
            out.as_slice(),
            [AppEvent::Anomaly {
                event: "INVALID_TLS_HEADER",
                ..
            }]
        ));
        // A handshake message claiming 16 MB, fed in records: bounded by max_buffer.
        let mut p = TlsParser::new(&AppConfig {
            max_buffer: 4096,
            ..cfg.clone()
        });
        let mut out = Vec::new();
        let mut first = vec![0x16, 0x03, 0x03, 0x04, 0x00, 0x0b, 0xff, 0xff, 0xff];
        first.resize(5 + 1024, 0);
        p.parse(Direction::ToClient, &first, 0, &mut out);
        let mut more = vec![0x16, 0x03, 0x03, 0x04, 0x00];
        more.resize(5 + 1024, 0);
        for _ in 0..8 {
            p.parse(Direction::ToClient, &more, 0, &mut out);
        }
        assert!(out.iter().any(|e| matches!(
            e,
            AppEvent::Anomaly {
                event: "HANDSHAKE_INVALID_LENGTH",
                ..
            }
        )));
        // A certificate that is not DER.
        let mut p = TlsParser::new(&cfg);
        let mut out = Vec::new();
        let cert_msg = [
            0x16, 0x03, 0x03, 0x00, 0x0d, 0x0b, 0x00, 0x00, 0x09, 0x00, 0x00, 0x06, 0x00, 0x00,
            0x03, 1, 2, 3,
        ];
        p.parse(Direction::ToClient, &cert_msg, 0, &mut out);
        assert!(out.iter().any(|e| matches!(
            e,
            AppEvent::Anomaly {
                event: "INVALID_CERTIFICATE",
                ..
            }
        )));
        // SSLv2 ClientHello: version noted, no panic.
        let mut p = TlsParser::new(&cfg);
        let mut out = Vec::new();
        p.parse(
            Direction::ToServer,
            &[0x80, 0x04, 0x01, 0x03, 0x01, 0x00],
            0,
            &mut out,
        );
        assert_eq!(p.client_hello.as_ref().map(|c| c.version), Some(0x0301));
        assert_eq!(format_time(0), "1970-01-01T00:00:00");
        assert_eq!(format_time(1_423_764_447), "2015-02-12T18:07:27");
        assert_eq!(version_str(0x0301), "TLSv1");
        // Suricata 7's names: drafts before 16 folded, Facebook drafts, unknown in hex.
        assert_eq!(version_str(0x7f0e), "TLS 1.3 draft-<16");
        assert_eq!(version_str(0x7f1c), "TLS 1.3 draft-28");
        assert_eq!(version_str(0xfb1a), "TLS 1.3 draft-26-fb");
        assert_eq!(version_str(0x7e01), "0x7e01");
        assert_eq!(version_str(0), "UNDETERMINED");
        // A TLS 1.3 draft-19 ServerHello: version 7f13, random, cipher 1301, no extensions.
        let mut sh = vec![0x7f, 0x13];
        sh.extend_from_slice(&[0u8; 32]);
        sh.extend_from_slice(&[0x13, 0x01, 0x00, 0x00]);
        let sh = parse_server_hello(&sh).unwrap();
        assert_eq!(version_str(sh.version), "TLS 1.3 draft-19");
        assert_eq!(sh.cipher, 0x1301);
        // An early draft ServerHello with 0x0304 in its version field and no session id
        // or compression: parsed, and the session is "TLS 1.3 draft-<16" as in Suricata.
        let mut rec = vec![
            0x16, 0x03, 0x01, 0x00, 0x28, 0x02, 0x00, 0x00, 0x24, 0x03, 0x04,
        ];
        rec.extend_from_slice(&[0u8; 32]);
        rec.extend_from_slice(&[0x13, 0x01]);
        let mut p = TlsParser::new(&cfg);
        let mut out = Vec::new();
        p.parse(Direction::ToServer, &unhex(CLIENT_HELLO), 0, &mut out);
        p.parse(Direction::ToClient, &rec, 0, &mut out);
        p.close(0, &mut out);
        let t = txs(&out);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].eve()["version"], "TLS 1.3 draft-<16");
    }
}
