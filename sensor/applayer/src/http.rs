//! HTTP/1.x: request and response lines, headers, bodies (Content-Length, chunked,
//! close-delimited), gzip/deflate decoding, pipelining, files.

use std::collections::VecDeque;
use std::io::Write;

use serde_json::{json, Map, Value};

use crate::file::{FileRecord, FileState, FileTracker};
use crate::util::{find, json_str, trim};
use crate::{AppConfig, AppEvent, AppProto, Direction, Parser, Transaction};

/// HTTP version of a message line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/0.9 simple request: no version, no headers.
    V09,
    V10,
    V11,
    /// Anything else after "HTTP/".
    Other,
}

/// Bytes of each raw header block kept ([`HttpTx::request_headers_raw`]).
pub const RAW_HEADERS_MAX: usize = 64 * 1024;

/// One HTTP request/response pair.
#[derive(Clone, Debug, Default)]
pub struct HttpTx {
    pub tx_id: u64,
    pub method: Vec<u8>,
    /// The request target exactly as sent.
    pub uri_raw: Vec<u8>,
    /// The path and query, percent-decoded where safe and with dot segments removed.
    pub uri_normalized: Vec<u8>,
    /// Request protocol ("HTTP/1.1"); empty for HTTP/0.9.
    pub protocol: Vec<u8>,
    /// Lower-cased host from an absolute URI or the Host header, without port.
    pub host: Option<Vec<u8>>,
    /// Port given explicitly in the URI authority or Host header.
    pub port: Option<u16>,
    pub user_agent: Option<Vec<u8>>,
    pub referer: Option<Vec<u8>>,
    pub cookie: Option<Vec<u8>>,
    /// Request headers in order (name as sent, value trimmed).
    pub request_headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Request body after transfer and content decoding, up to the inspection depth.
    pub request_body: Vec<u8>,
    pub request_body_len: u64,
    pub status: Option<u16>,
    pub status_msg: Vec<u8>,
    pub response_protocol: Vec<u8>,
    /// Response Content-Type without parameters.
    pub content_type: Option<Vec<u8>>,
    pub location: Option<Vec<u8>>,
    pub response_headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The request and response header blocks exactly as received (lines with their
    /// line ends, the closing blank line included; first `RAW_HEADERS_MAX` bytes):
    /// Suricata's `http.header.raw`. Empty for HTTP/2.
    pub request_headers_raw: Vec<u8>,
    pub response_headers_raw: Vec<u8>,
    pub response_body: Vec<u8>,
    /// Response body length after transfer decoding, before content decoding (Suricata's
    /// `length`).
    pub response_len: u64,
}

impl HttpTx {
    /// The first request header named `name` (case-insensitive).
    pub fn request_header(&self, name: &str) -> Option<&[u8]> {
        header(&self.request_headers, name)
    }

    /// The first response header named `name` (case-insensitive).
    pub fn response_header(&self, name: &str) -> Option<&[u8]> {
        header(&self.response_headers, name)
    }

    /// EVE `http` value, Suricata 7 format (with its default `extended: yes`).
    pub fn eve(&self) -> Value {
        let mut m = Map::new();
        if let Some(h) = &self.host {
            m.insert("hostname".into(), json_str(h).into());
        }
        if let Some(p) = self.port {
            m.insert("http_port".into(), json!(p));
        }
        // A request line that ends after the method has no URI: libhtp leaves it unset
        // and Suricata writes no "url".
        if !self.uri_raw.is_empty() {
            m.insert("url".into(), json_str(&self.uri_raw).into());
        }
        if let Some(ua) = &self.user_agent {
            m.insert("http_user_agent".into(), json_str(ua).into());
        }
        if let Some(xff) = self.request_header("x-forwarded-for") {
            m.insert("xff".into(), json_str(xff).into());
        }
        if let Some(ct) = &self.content_type {
            m.insert("http_content_type".into(), json_str(ct).into());
        }
        if let Some(cr) = self.response_header("content-range") {
            let mut o = Map::new();
            o.insert("raw".into(), json_str(cr).into());
            let (start, end, size) = content_range_fields(cr);
            for (k, v) in [("start", start), ("end", end), ("size", size)] {
                if let Some(v) = v {
                    o.insert(k.into(), json!(v));
                }
            }
            m.insert("content_range".into(), Value::Object(o));
        }
        if let Some(r) = &self.referer {
            m.insert("http_refer".into(), json_str(r).into());
        }
        if !self.method.is_empty() {
            m.insert("http_method".into(), json_str(&self.method).into());
        }
        if !self.protocol.is_empty() {
            m.insert("protocol".into(), json_str(&self.protocol).into());
        }
        if let Some(s) = self.status {
            m.insert("status".into(), json!(s));
        }
        if let Some(l) = &self.location {
            m.insert("redirect".into(), json_str(l).into());
        }
        m.insert("length".into(), json!(self.response_len));
        Value::Object(m)
    }
}

fn header<'a>(h: &'a [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    h.iter()
        .find(|(n, _)| name_is(n, name))
        .map(|(_, v)| v.as_slice())
}

/// Whether a header name is `want` the way libhtp looks names up: case and NUL bytes
/// ignored ("Content\0-Encoding"), and surrounding whitespace (VT and FF included).
fn name_is(n: &[u8], want: &str) -> bool {
    let start = n.iter().position(|&c| !is_space(c)).unwrap_or(n.len());
    let end = n
        .iter()
        .rposition(|&c| !is_space(c))
        .map_or(start, |i| i + 1);
    let mut got = n[start..end].iter().filter(|&&c| c != 0);
    let mut want = want.bytes();
    loop {
        match (got.next(), want.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(&b) => {}
            _ => return false,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Pure helpers over one line / one header value.

/// A parsed request line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RequestLine<'a> {
    pub(crate) method: &'a [u8],
    pub(crate) uri: &'a [u8],
    /// Empty for HTTP/0.9.
    pub(crate) protocol: &'a [u8],
}

/// libhtp's whitespace (`htp_is_space`): SP, HT, LF, VT, FF, CR.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Index of the first byte at or after `from` that is not whitespace.
fn skip_space(line: &[u8], from: usize) -> usize {
    line.iter()
        .skip(from)
        .position(|&c| !is_space(c))
        .map_or(line.len(), |i| from + i)
}

/// Split a request line as libhtp does: leading whitespace is skipped, the method ends at
/// the first whitespace, the URI at the next SP (or, if there is none, at any other
/// whitespace), and the protocol is the rest of the line, spaces included
/// ("GET /a b HTTP/1.1" is URI "/a", protocol "b HTTP/1.1"). `None` if blank.
pub(crate) fn parse_request_line(line: &[u8]) -> Option<RequestLine<'_>> {
    let m_start = skip_space(line, 0);
    if m_start == line.len() {
        return None;
    }
    let m_end = line
        .iter()
        .skip(m_start)
        .position(|&c| is_space(c))
        .map_or(line.len(), |i| m_start + i);
    let u_start = skip_space(line, m_end);
    let rest = line.get(u_start..).unwrap_or_default();
    let mut u_len = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
    if u_len == rest.len() {
        // No SP after the URI: other whitespace delimits it, as browsers accept.
        u_len = rest.iter().position(|&c| is_space(c)).unwrap_or(rest.len());
    }
    let p_start = skip_space(line, u_start + u_len);
    Some(RequestLine {
        method: line.get(m_start..m_end).unwrap_or_default(),
        uri: rest.get(..u_len).unwrap_or_default(),
        protocol: line.get(p_start..).unwrap_or_default(),
    })
}

/// Whether a line after a request line without protocol is a header ("Name:" or
/// "Name :"), in which case libhtp parses headers instead of ending an HTTP/0.9 request.
fn looks_like_header(line: &[u8]) -> bool {
    let mut after_spaces = false;
    for &c in line {
        match c {
            b':' => return true,
            b' ' | b'\t' => after_spaces = true,
            _ if is_space(c) || after_spaces => return false,
            _ => {}
        }
    }
    false
}

/// The methods libhtp knows (`htp_convert_method_to_number`): after a complete request,
/// a line in the same data that starts with anything else is more body, not a request.
const KNOWN_METHODS: &[&[u8]] = &[
    b"GET",
    b"PUT",
    b"POST",
    b"DELETE",
    b"CONNECT",
    b"OPTIONS",
    b"TRACE",
    b"PATCH",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"VERSION-CONTROL",
    b"CHECKOUT",
    b"UNCHECKOUT",
    b"CHECKIN",
    b"UPDATE",
    b"LABEL",
    b"REPORT",
    b"MKWORKSPACE",
    b"MKACTIVITY",
    b"BASELINE-CONTROL",
    b"MERGE",
    b"INVALID",
    b"HEAD",
];

/// Whether the first word of `line` is a method libhtp knows.
fn starts_with_known_method(line: &[u8]) -> bool {
    parse_request_line(line).is_some_and(|rl| KNOWN_METHODS.contains(&rl.method))
}

/// libhtp's test for a status line: after leading whitespace and NULs, "HTTP" in any case.
/// Anything else is response body (what browsers do).
fn looks_like_status_line(line: &[u8]) -> bool {
    let start = line
        .iter()
        .position(|&c| !is_space(c) && c != 0)
        .unwrap_or(line.len());
    line.get(start..start + 4)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"HTTP"))
}

/// A parsed status line: protocol, status code (if 3 digits), message. `None` when the
/// line is not a status line (see [`looks_like_status_line`]).
pub(crate) fn parse_status_line(line: &[u8]) -> Option<(&[u8], Option<u16>, &[u8])> {
    if !looks_like_status_line(line) {
        return None;
    }
    let start = line
        .iter()
        .position(|&c| !is_space(c) && c != 0)
        .unwrap_or(line.len());
    let line = trim(line.get(start..).unwrap_or_default());
    let is_ws = |c: &u8| *c == b' ' || *c == b'\t';
    let p_end = line.iter().position(is_ws).unwrap_or(line.len());
    let rest = trim(&line[p_end..]);
    let c_end = rest.iter().position(is_ws).unwrap_or(rest.len());
    let code = &rest[..c_end];
    // Like Suricata's EVE (strtoul of libhtp's status token): the leading digits are the
    // status ("2xx" is 2), a token without any is 0, no token at all is no status.
    let digits = code.iter().take_while(|c| c.is_ascii_digit()).count();
    let status = if code.is_empty() {
        None
    } else {
        Some(
            std::str::from_utf8(&code[..digits.min(5)])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
        )
    };
    Some((&line[..p_end], status, trim(&rest[c_end..])))
}

/// Host and explicit port from a Host header or URI authority ("Example.com:8080",
/// "[::1]:80", "user@host"). The host is lower-cased.
pub(crate) fn parse_authority(a: &[u8]) -> (Vec<u8>, Option<u16>) {
    let a = trim(a);
    let a = match a.iter().rposition(|&c| c == b'@') {
        Some(i) => &a[i + 1..],
        None => a,
    };
    let (host, port) = if a.first() == Some(&b'[') {
        match a.iter().position(|&c| c == b']') {
            Some(e) => (&a[..=e], a[e + 1..].strip_prefix(b":")),
            None => (a, None),
        }
    } else {
        match a.iter().rposition(|&c| c == b':') {
            Some(i) => (&a[..i], Some(&a[i + 1..])),
            None => (a, None),
        }
    };
    let port = port
        .and_then(|p| std::str::from_utf8(p).ok())
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|&p| p > 0);
    (host.to_ascii_lowercase(), port)
}

/// For an absolute URI ("http://host:port/path?q"): the authority and the rest.
fn split_absolute(uri: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = find(uri, b"://")?;
    let scheme = &uri[..i];
    if scheme.is_empty()
        || !scheme
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c))
    {
        return None;
    }
    let rest = &uri[i + 3..];
    let a_end = rest
        .iter()
        .position(|&c| c == b'/' || c == b'?' || c == b'#')
        .unwrap_or(rest.len());
    Some((&rest[..a_end], &rest[a_end..]))
}

fn unhex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if c == b'%' {
            if let (Some(h), Some(l)) = (
                s.get(i + 1).and_then(|&c| unhex(c)),
                s.get(i + 2).and_then(|&c| unhex(c)),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// RFC 3986 section 5.2.4 on an already decoded path.
fn remove_dot_segments(path: &[u8]) -> Vec<u8> {
    let mut segs: Vec<&[u8]> = Vec::new();
    let absolute = path.first() == Some(&b'/');
    let parts: Vec<&[u8]> = path.split(|&c| c == b'/').collect();
    let last = parts.len().saturating_sub(1);
    let mut trailing = false;
    for (i, p) in parts.iter().enumerate() {
        match *p {
            b"." => trailing = i == last,
            b".." => {
                if segs.len() > usize::from(absolute) {
                    segs.pop();
                }
                trailing = i == last;
            }
            _ => {
                segs.push(p);
                trailing = false;
            }
        }
    }
    let mut out = segs.join(&b'/');
    if trailing {
        out.push(b'/');
    }
    if absolute && out.first() != Some(&b'/') {
        out.insert(0, b'/');
    }
    out
}

/// Suricata-style normalised URI for detection: path (with absolute-URI authority removed)
/// percent-decoded and without dot segments, then the query as sent.
pub(crate) fn normalize_uri(raw: &[u8]) -> Vec<u8> {
    let rest = split_absolute(raw).map_or(raw, |(_, r)| r);
    let (path, query) = match rest.iter().position(|&c| c == b'?') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, &rest[rest.len()..]),
    };
    let mut out = remove_dot_segments(&percent_decode(path));
    out.extend_from_slice(query);
    out
}

/// The path of a URI for file names (no query, decoded, dot segments removed).
fn uri_path(raw: &[u8]) -> Vec<u8> {
    let n = normalize_uri(raw);
    let q = n.iter().position(|&c| c == b'?').unwrap_or(n.len());
    n[..q].to_vec()
}

/// The name of a transaction's body file: its URI path. None when the request has no
/// path (an empty URI, CONNECT's authority): like Suricata, which names HTTP files by
/// libhtp's parsed path, such a body is no file unless Content-Disposition names one.
fn file_path(tx: &HttpTx) -> Option<Vec<u8>> {
    if tx.method.eq_ignore_ascii_case(b"CONNECT") {
        return None;
    }
    Some(uri_path(&tx.uri_raw)).filter(|p| !p.is_empty())
}

/// `filename=` (or `filename*=`) of a Content-Disposition value.
pub(crate) fn disposition_filename(v: &[u8]) -> Option<Vec<u8>> {
    for part in v.split(|&c| c == b';') {
        let part = trim(part);
        let Some(eq) = part.iter().position(|&c| c == b'=') else {
            continue;
        };
        let key = trim(&part[..eq]);
        let val = trim(&part[eq + 1..]);
        if key.eq_ignore_ascii_case(b"filename") {
            let val = val.strip_prefix(b"\"").unwrap_or(val);
            let val = val.strip_suffix(b"\"").unwrap_or(val);
            return Some(val.to_vec());
        }
        if key.eq_ignore_ascii_case(b"filename*") {
            // RFC 5987: charset'lang'value
            let v = val.splitn(3, |&c| c == b'\'').nth(2).unwrap_or(val);
            return Some(percent_decode(v));
        }
    }
    None
}

/// A parameter (`boundary=...`) of a header value such as Content-Type.
fn header_param<'a>(v: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    v.split(|&c| c == b';').skip(1).find_map(|p| {
        let p = trim(p);
        let eq = p.iter().position(|&c| c == b'=')?;
        if !trim(&p[..eq]).eq_ignore_ascii_case(name) {
            return None;
        }
        let val = trim(&p[eq + 1..]);
        let val = val.strip_prefix(b"\"").unwrap_or(val);
        Some(val.strip_suffix(b"\"").unwrap_or(val))
    })
}

/// Whether a Transfer-Encoding value means chunked: libhtp looks for "chunked" anywhere in
/// it, case-insensitively and ignoring NUL bytes ("chunked;", "xchunked", ": chunked" all
/// count, as the evader test suite checks).
fn is_chunked(v: &[u8]) -> bool {
    let mut window = [0u8; 7];
    let mut n = 0usize;
    for &c in v.iter().filter(|&&c| c != 0) {
        window.rotate_left(1);
        window[6] = c.to_ascii_lowercase();
        n += 1;
        if n >= 7 && &window == b"chunked" {
            return true;
        }
    }
    false
}

fn parse_content_length(v: &[u8]) -> Option<u64> {
    let v = trim(v);
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // libhtp reads it into a signed 64-bit integer: anything larger is invalid.
    std::str::from_utf8(v)
        .ok()?
        .parse::<u64>()
        .ok()
        .filter(|&n| i64::try_from(n).is_ok())
}

/// A chunk-size line, read like libhtp: leading whitespace (CR, LF, SP, HT, VT, FF)
/// skipped, then hex digits; whatever follows them is an extension and ignored ("5x",
/// "5;ext", "5\0"). `None` without a digit or past 16 digits.
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let start = line
        .iter()
        .position(|&c| !matches!(c, b'\r' | b'\n' | b' ' | b'\t' | 0x0b | 0x0c))
        .unwrap_or(line.len());
    let line = line.get(start..).unwrap_or_default();
    let end = line
        .iter()
        .position(|c| !c.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let hex = &line[..end];
    if hex.is_empty() {
        return None;
    }
    // Leading zeros are fine; like libhtp, a size over i32::MAX is invalid.
    let mut n: u64 = 0;
    for &c in hex {
        n = n.checked_mul(16)?.checked_add(u64::from(unhex(c)?))?;
        if n > i32::MAX as u64 {
            return None;
        }
    }
    Some(n)
}

/// Where a response's first line ends, as libhtp's RES_LINE sees it: at LF, or at a CR
/// that a byte other than LF follows ("HTTP/1.1 200\rTransfer-Encoding: chunked" is a
/// status line and a header). A CR at the end of the data waits for the next byte.
fn response_line_end(data: &[u8]) -> Option<usize> {
    for (i, &c) in data.iter().enumerate() {
        match c {
            b'\n' => return Some(i),
            b'\r' => match data.get(i + 1) {
                Some(b'\n') => return Some(i + 1),
                Some(_) => return Some(i),
                None => return None,
            },
            _ => {}
        }
    }
    None
}

/// libhtp's folding characters: a header line starting with one continues the previous
/// line (NUL counts, as in libhtp).
fn is_folding(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | 0)
}

/// A line with its trailing CR and LF bytes removed (libhtp's `htp_chomp`).
fn chomp(mut line: &[u8]) -> &[u8] {
    while let Some(l) = line
        .strip_suffix(b"\n")
        .or_else(|| line.strip_suffix(b"\r"))
    {
        line = l;
    }
    line
}

/// One response header line as libhtp splits it: name up to the first colon with
/// spaces/tabs before the colon dropped; value with spaces/tabs trimmed. Without a colon
/// the whole line is the value of an empty name.
fn split_response_header(line: &[u8]) -> (Vec<u8>, Vec<u8>, bool) {
    let lws = |c: &u8| *c == b' ' || *c == b'\t';
    let (name, value, colon) = match line.iter().position(|&c| c == b':') {
        Some(i) => (&line[..i], &line[i + 1..], true),
        None => (&line[..0], line, false),
    };
    let name_end = name.iter().rposition(|c| !lws(c)).map_or(0, |i| i + 1);
    let v_start = value.iter().position(|c| !lws(c)).unwrap_or(value.len());
    let v_end = value
        .iter()
        .rposition(|c| !lws(c))
        .map_or(v_start, |i| i + 1);
    (
        name[..name_end].to_vec(),
        value[v_start..v_end.max(v_start)].to_vec(),
        colon,
    )
}

// ---------------------------------------------------------------------------------------
// Content decoding (gzip / deflate), bounded.

/// Compressed bytes fed to the decoder per step, so one step's output stays small.
const DECODE_STEP: usize = 512;

/// Content-coding layers decoded at most, like Suricata's default
/// `response-body-decompress-layer-limit: 2`.
const MAX_LAYERS: usize = 2;

enum Inflate {
    Gzip(flate2::write::GzDecoder<Vec<u8>>),
    Zlib(flate2::write::ZlibDecoder<Vec<u8>>),
    Raw(flate2::write::DeflateDecoder<Vec<u8>>),
}

impl Inflate {
    /// The decoder for a layer starting with `b`: gzip magic, a zlib header (CM = 8 and a
    /// check value that divides by 31), else raw deflate. Like libhtp, which retries the
    /// other formats when the declared one fails, the bytes decide, not the header.
    ///
    /// A gzip member whose header is all in `b` is read as raw deflate after the header,
    /// which is skipped leniently (reserved flag bits and the header CRC are not checked):
    /// where zlib refuses such a header, libhtp restarts past it (its
    /// `htp_gzip_decompressor_probe`) and decodes the deflate data. The second value is
    /// the number of header bytes to skip.
    fn detect(b: &[u8]) -> (Inflate, usize) {
        if let Some(skip) = gzip_header_len(b) {
            return (
                Inflate::Raw(flate2::write::DeflateDecoder::new(Vec::new())),
                skip,
            );
        }
        let inflate = match b {
            [0x1f, 0x8b, ..] | [0x1f] => Inflate::Gzip(flate2::write::GzDecoder::new(Vec::new())),
            [f, rest @ ..]
                if f & 0x0f == 8
                    && rest
                        .first()
                        .is_none_or(|&s| (u16::from(*f) << 8 | u16::from(s)) % 31 == 0) =>
            {
                Inflate::Zlib(flate2::write::ZlibDecoder::new(Vec::new()))
            }
            _ => Inflate::Raw(flate2::write::DeflateDecoder::new(Vec::new())),
        };
        (inflate, 0)
    }

    /// Decode `b`: what came out, and whether the stream was invalid. Bytes after the end
    /// of the compressed stream (a gzip trailer, junk) are ignored, as zlib does once it
    /// has returned Z_STREAM_END.
    fn write(&mut self, b: &[u8]) -> (Vec<u8>, bool) {
        // flush() hands over everything decoded so far.
        let (res, buf) = match self {
            Inflate::Gzip(d) => (d.write_all(b).and_then(|()| d.flush()), d.get_mut()),
            Inflate::Zlib(d) => (d.write_all(b).and_then(|()| d.flush()), d.get_mut()),
            Inflate::Raw(d) => (d.write_all(b).and_then(|()| d.flush()), d.get_mut()),
        };
        let failed = res.is_err_and(|e| e.kind() != std::io::ErrorKind::WriteZero);
        (std::mem::take(buf), failed)
    }
}

/// The length of a gzip member header at the start of `b` (magic 1f 8b, method 8), with
/// its optional extra field, name, comment and header CRC; `None` when `b` is no gzip
/// header or does not hold all of it.
fn gzip_header_len(b: &[u8]) -> Option<usize> {
    let [0x1f, 0x8b, 8, flags, ..] = *b else {
        return None;
    };
    let mut pos = 10usize;
    if flags & 0x04 != 0 {
        let xlen = u16::from_le_bytes([*b.get(10)?, *b.get(11)?]);
        pos = pos.checked_add(2 + usize::from(xlen))?;
    }
    for bit in [0x08, 0x10] {
        if flags & bit != 0 {
            let nul = b.get(pos..)?.iter().position(|&c| c == 0)?;
            pos += nul + 1;
        }
    }
    if flags & 0x02 != 0 {
        pos += 2;
    }
    (pos <= b.len()).then_some(pos)
}

/// A streaming, bounded content decoder: one or two layers (repeated Content-Encoding
/// headers or a list such as "gzip, gzip"), each fed the previous layer's output.
struct Decoder {
    /// One entry per layer; `None` until the layer's first byte shows its format.
    layers: Vec<Option<Inflate>>,
    /// Per layer: it has produced output. A layer that fails before producing any passes
    /// its input through from then on (libhtp: "all our inflate attempts have failed,
    /// simply pass the raw data on in case it's not compressed at all").
    produced_any: Vec<bool>,
    /// The first layer that failed without output: it and the layers after it are skipped.
    passthrough: Option<usize>,
    stopped: bool,
    fed: u64,
    produced: u64,
    limit: u64,
    ratio: u64,
}

impl Decoder {
    /// A decoder for a Content-Encoding value (repeated headers joined with ','), or
    /// `None` when it names no coding we decode (identity, br, unknown).
    fn new(encoding: &[u8], cfg: &AppConfig) -> Option<Decoder> {
        // libhtp: tokens split at ',' and ' '; a token naming gzip or deflate anywhere
        // in it (case and NUL bytes ignored: "gz\0ip", "x-gzip;", "\xa0deflate") is a
        // layer; others ("identity", "br", junk) are not.
        let known = |t: &[u8]| {
            let t: Vec<u8> = t
                .iter()
                .filter(|&&c| c != 0)
                .map(u8::to_ascii_lowercase)
                .collect();
            find(&t, b"gzip").is_some() || find(&t, b"deflate").is_some()
        };
        let n = encoding
            .split(|&c| c == b',' || c == b' ')
            .filter(|t| known(t))
            .count()
            .min(MAX_LAYERS);
        if n == 0 {
            return None;
        }
        Some(Decoder {
            layers: (0..n).map(|_| None).collect(),
            produced_any: vec![false; n],
            passthrough: None,
            stopped: false,
            fed: 0,
            produced: 0,
            limit: cfg.decompress_limit as u64,
            ratio: cfg.decompress_max_ratio as u64,
        })
    }

    /// A decoder that has given up: it produces nothing more.
    fn stopped() -> Decoder {
        Decoder {
            layers: Vec::new(),
            produced_any: Vec::new(),
            passthrough: None,
            stopped: true,
            fed: 0,
            produced: 0,
            limit: 0,
            ratio: 0,
        }
    }

    /// Decode `data`: the bytes produced, and Suricata's event name if decoding stopped
    /// (failed or hit a limit; what was decoded before is still returned).
    fn feed(&mut self, data: &[u8]) -> (Vec<u8>, Option<&'static str>) {
        let mut out = Vec::new();
        let mut event = None;
        for step in data.chunks(DECODE_STEP) {
            if self.stopped {
                break;
            }
            self.fed += step.len() as u64;
            let mut buf = step.to_vec();
            let active = self.passthrough.unwrap_or(self.layers.len());
            for (i, layer) in self.layers.iter_mut().enumerate().take(active) {
                if buf.is_empty() {
                    break;
                }
                let input = match layer {
                    Some(_) => buf.as_slice(),
                    None => {
                        let (inflate, skip) = Inflate::detect(&buf);
                        *layer = Some(inflate);
                        buf.get(skip..).unwrap_or_default()
                    }
                };
                let Some(inner) = layer.as_mut() else { break };
                let (mut next, failed) = inner.write(input);
                if failed && !self.produced_any[i] && next.is_empty() {
                    // Not compressed after all: this layer's input goes through as it is.
                    self.passthrough = Some(i);
                    *layer = None;
                    event = Some("GZIP_DECOMPRESSION_FAILED");
                    break;
                }
                self.produced_any[i] |= !next.is_empty();
                if failed {
                    self.stopped = true;
                    out.append(&mut next);
                    return (out, Some("GZIP_DECOMPRESSION_FAILED"));
                }
                buf = next;
            }
            self.produced += buf.len() as u64;
            out.append(&mut buf);
            if self.produced > self.limit
                || self.produced > self.fed.saturating_mul(self.ratio).max(64 * 1024)
            {
                self.stopped = true;
                let keep = out
                    .len()
                    .saturating_sub((self.produced.saturating_sub(self.limit)) as usize);
                out.truncate(keep);
                return (out, Some("COMPRESSION_BOMB"));
            }
        }
        (out, event)
    }
}

// ---------------------------------------------------------------------------------------
// The per-flow state machine.

/// What a direction is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// A request or status line (blank lines before it are skipped).
    Line,
    /// After a request line without protocol: a header line next means headers follow
    /// (libhtp's "missing protocol"), anything else ends an HTTP/0.9 request.
    V09Peek,
    Headers,
    /// Body bytes: `remaining` of a Content-Length body or of a chunk.
    Body(u64),
    /// Body until the end of the stream (responses without length).
    BodyUntilClose,
    /// A response whose first line was not a status line: libhtp's RES_LINE keeps reading
    /// lines as body (blank lines skipped) until one ends exactly at the end of a chunk of
    /// data, which completes the response, or a line starting with "HTTP" starts one.
    LinesAsBody,
    ChunkSize,
    /// The CRLF after a chunk's data.
    ChunkEnd,
    Trailers,
    /// CONNECT / Upgrade: the rest is not HTTP.
    Tunnel,
    /// Lost sync (a gap, an invalid chunk size): ignore the rest of the direction.
    Broken,
}

/// A transaction being built.
struct Pending {
    tx: HttpTx,
    req_done: bool,
    resp_done: bool,
    /// An `AppEvent::Request` was sent for it.
    announced: bool,
    /// The request had no HTTP version (0.9): the response has no status line.
    v09: bool,
    files: Vec<FileRecord>,
}

/// Per-direction parsing state.
struct Side {
    state: State,
    line: Vec<u8>,
    line_overflow: bool,
    /// Header lines seen for the current message (kept or not).
    header_count: usize,
    /// Blank lines skipped before a message line.
    blank_lines: usize,
    /// Request lines whose method is not an HTTP token (binary junk), over the flow.
    invalid_lines: usize,
    /// A message ended inside the current chunk of data: until the chunk ends, lines that
    /// do not start a new message (an unknown method, no "HTTP") belong to the previous
    /// message's body, as libhtp's REQ_FINALIZE / RES_FINALIZE states decide.
    finalize: bool,
    chunked: bool,
    decoder: Option<Decoder>,
    file: Option<FileTracker>,
    /// The transaction this direction is working on.
    cur: Option<u64>,
    /// What follows the line being handled in the current chunk of data: its length and
    /// first byte (libhtp decides about a response line that is not HTTP from them).
    after_line: (usize, Option<u8>),
    /// Multipart/form-data request: the boundary, the body kept to split it at the end, and
    /// whether the body went past the request body limit (the rest is not kept).
    multipart: Option<(Vec<u8>, Vec<u8>, bool)>,
    /// A 206 response's `Content-Range` (first byte, whole size) and the body bytes kept
    /// for the flow's range container.
    range: Option<(u64, u64, Vec<u8>)>,
    /// The line end (CR and LF bytes) of the line being handled, as sent.
    eol: Vec<u8>,
    /// A response is complete but its file and transaction wait: until the chunk of data
    /// ends, lines that do not start a new response are more of its body (libhtp's
    /// RES_FINALIZE, "Unexpected response body").
    deferred: bool,
    /// Response header block: the last line ended in LF CR (libhtp's `lfcrending`).
    lf_cr: bool,
    /// Response header block: a header line kept until the next line shows whether it
    /// is folded (libhtp's `out_header`).
    folded: Option<Vec<u8>>,
}

impl Side {
    fn new() -> Self {
        Side {
            state: State::Line,
            line: Vec::new(),
            line_overflow: false,
            header_count: 0,
            blank_lines: 0,
            invalid_lines: 0,
            finalize: false,
            chunked: false,
            decoder: None,
            file: None,
            cur: None,
            after_line: (0, None),
            multipart: None,
            range: None,
            eol: Vec::new(),
            deferred: false,
            lf_cr: false,
            folded: None,
        }
    }
}

/// HTTP/1.x parser for one flow.
pub(crate) struct HttpParser {
    cfg: AppConfig,
    sides: [Side; 2],
    txs: VecDeque<Pending>,
    next_tx: u64,
    /// The flow is closing: responses complete at once.
    closing: bool,
    /// Files fetched in byte ranges (206 responses), by host and path: Suricata's
    /// byterange container, kept per flow here.
    ranges: Vec<RangeFile>,
}

/// A file fetched in byte ranges: its whole size, the parts seen, and which bytes they
/// cover.
struct RangeFile {
    key: Vec<u8>,
    name: Vec<u8>,
    size: u64,
    parts: Vec<(u64, Vec<u8>)>,
    /// Sorted, disjoint, merged `[start, end)` spans seen.
    have: Vec<(u64, u64)>,
}

/// Largest file a range container assembles.
const RANGE_MAX: u64 = 1 << 20;
/// Range containers kept per flow (the oldest is dropped).
const RANGE_FILES: usize = 4;

/// The parts of a Content-Range value for EVE, as Suricata 7 logs them: `bytes
/// FIRST-LAST/SIZE`, `bytes FIRST-LAST/*` (no size) or `bytes */SIZE` (size only); nothing
/// for any other form.
fn content_range_fields(v: &[u8]) -> (Option<u64>, Option<u64>, Option<u64>) {
    let none = (None, None, None);
    let v = trim(v);
    let Some(rest) = v
        .get(..5)
        .filter(|p| p.eq_ignore_ascii_case(b"bytes"))
        .map(|_| trim(&v[5..]))
    else {
        return none;
    };
    let num = |b: &[u8]| -> Option<u64> {
        let b = trim(b);
        (!b.is_empty() && b.iter().all(u8::is_ascii_digit))
            .then(|| std::str::from_utf8(b).ok()?.parse().ok())
            .flatten()
    };
    let Some(slash) = rest.iter().position(|&c| c == b'/') else {
        return none;
    };
    let (range, size) = (trim(&rest[..slash]), trim(&rest[slash + 1..]));
    let size = match size {
        b"*" => None,
        s => match num(s) {
            Some(n) => Some(n),
            None => return none,
        },
    };
    if range == b"*" {
        return if size.is_some() {
            (None, None, size)
        } else {
            none
        };
    }
    let Some(dash) = range.iter().position(|&c| c == b'-') else {
        return none;
    };
    match (num(&range[..dash]), num(&range[dash + 1..])) {
        (Some(a), Some(b)) => (Some(a), Some(b), size),
        _ => none,
    }
}

/// `bytes FIRST-LAST/SIZE` of a Content-Range value: (first, size), size known, for a
/// range that is part of a file.
fn parse_content_range(v: &[u8]) -> Option<(u64, u64)> {
    let (Some(first), Some(last), Some(size)) = content_range_fields(v) else {
        return None;
    };
    // A range that is the whole file has nothing to reassemble.
    (first <= last && last < size && !(first == 0 && last + 1 == size)).then_some((first, size))
}

impl RangeFile {
    /// Adds `bytes` at `at`; the whole file once every byte of it is there.
    fn add(&mut self, at: u64, mut bytes: Vec<u8>) -> Option<Vec<u8>> {
        let end = at.saturating_add(bytes.len() as u64).min(self.size);
        if at >= end {
            return None;
        }
        bytes.truncate(usize::try_from(end - at).ok()?);
        if self.have.iter().any(|&(s, e)| s <= at && end <= e) {
            return None; // nothing new
        }
        // Overlapping parts may repeat bytes: past twice the file, start over (bounded).
        let kept: u64 = self.parts.iter().map(|(_, b)| b.len() as u64).sum();
        if kept + (end - at) > 2 * self.size {
            self.parts.clear();
            self.have.clear();
        }
        self.parts.push((at, bytes));
        self.have.push((at, end));
        self.have.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.have.len());
        for &(s, e) in &self.have {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.have = merged;
        if self.have != [(0, self.size)] {
            return None;
        }
        let mut data = vec![0; usize::try_from(self.size).ok()?];
        for (at, b) in &self.parts {
            let a = usize::try_from(*at).ok()?;
            data.get_mut(a..a + b.len())?.copy_from_slice(b);
        }
        Some(data)
    }
}

/// Most blank lines skipped between messages.
const MAX_BLANK_LINES: usize = 64;
/// Invalid request lines tolerated per flow before the client side is given up (a binary
/// stream misdetected as HTTP must not become thousands of transactions).
const MAX_INVALID_LINES: usize = 4;

/// RFC 9110 token characters (a method is a token).
fn is_token(b: &[u8]) -> bool {
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(c))
}

fn anomaly(event: &'static str) -> AppEvent {
    AppEvent::Anomaly {
        proto: AppProto::Http,
        event,
    }
}

impl HttpParser {
    pub(crate) fn new(cfg: &AppConfig) -> Self {
        HttpParser {
            cfg: cfg.clone(),
            sides: [Side::new(), Side::new()],
            txs: VecDeque::new(),
            next_tx: 0,
            closing: false,
            ranges: Vec::new(),
        }
    }

    fn pending(&mut self, id: Option<u64>) -> Option<&mut Pending> {
        let id = id?;
        self.txs.iter_mut().find(|p| p.tx.tx_id == id)
    }

    /// Sends the request of `id` as an `AppEvent::Request` (once, and only while its
    /// response is not done): its headers and body are complete.
    fn announce_request(&mut self, id: Option<u64>, out: &mut Vec<AppEvent>) {
        if let Some(p) = self.pending(id).filter(|p| !p.announced && !p.resp_done) {
            p.announced = true;
            out.push(AppEvent::Request(Transaction::Http(p.tx.clone())));
        }
    }

    fn new_tx(&mut self, out: &mut Vec<AppEvent>) -> u64 {
        if self.txs.len() >= self.cfg.max_tx_in_flight {
            // Too many unanswered requests: log the oldest as it is.
            if let Some(p) = self.txs.pop_front() {
                emit(p, out);
            }
        }
        let id = self.next_tx;
        self.next_tx += 1;
        self.txs.push_back(Pending {
            tx: HttpTx {
                tx_id: id,
                ..HttpTx::default()
            },
            req_done: false,
            resp_done: false,
            announced: false,
            v09: false,
            files: Vec::new(),
        });
        id
    }

    /// Log finished transactions in order.
    fn flush_done(&mut self, out: &mut Vec<AppEvent>) {
        while self.txs.front().is_some_and(|p| p.req_done && p.resp_done) {
            if let Some(p) = self.txs.pop_front() {
                emit(p, out);
            }
        }
    }

    fn parse_dir(&mut self, dir: Direction, mut data: &[u8], out: &mut Vec<AppEvent>) {
        let d = dir.idx();
        while !data.is_empty() {
            match self.sides[d].state {
                State::Tunnel | State::Broken => return,
                State::Body(remaining) => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(data.len());
                    let (chunk, rest) = data.split_at(n);
                    data = rest;
                    self.body_data(dir, chunk, out);
                    let left = remaining - n as u64;
                    self.sides[d].state = State::Body(left);
                    if left == 0 {
                        if self.sides[d].chunked {
                            self.sides[d].state = State::ChunkEnd;
                        } else {
                            self.message_done(dir, out);
                        }
                    }
                }
                State::BodyUntilClose => {
                    self.body_data(dir, data, out);
                    return;
                }
                State::Line
                    if dir == Direction::ToClient
                        && !self.sides[d].deferred
                        && self.next_response_is_v09() =>
                {
                    // The answer to an HTTP/0.9 request is all body, without a status line.
                    let id = self.txs.iter().find(|p| !p.resp_done).map(|p| p.tx.tx_id);
                    let file = id.and_then(|id| self.response_file(id));
                    let s = &mut self.sides[d];
                    s.cur = id;
                    s.chunked = false;
                    s.decoder = None;
                    s.file = file;
                    s.state = State::BodyUntilClose;
                }
                State::Headers | State::Trailers if dir == Direction::ToClient => {
                    let n = self.response_header_block(data, out);
                    data = data.get(n..).unwrap_or_default();
                }
                _ => {
                    // Line-oriented states.
                    let max = self.cfg.http_max_line;
                    let side = &mut self.sides[d];
                    let nl = if dir == Direction::ToClient
                        && matches!(side.state, State::Line | State::LinesAsBody)
                    {
                        response_line_end(data)
                    } else {
                        data.iter().position(|&c| c == b'\n')
                    };
                    let take = nl.map_or(data.len(), |i| i + 1);
                    let room = max.saturating_sub(side.line.len()).min(take);
                    side.line.extend_from_slice(&data[..room]);
                    if room < take {
                        side.line_overflow = true;
                    }
                    data = &data[take..];
                    if nl.is_none() {
                        return;
                    }
                    side.after_line = (data.len(), data.first().copied());
                    if side.deferred {
                        let starts = match dir {
                            Direction::ToServer => starts_with_known_method(&side.line),
                            Direction::ToClient => looks_like_status_line(&side.line),
                        };
                        if side.state == State::Line && !starts {
                            // libhtp's REQ_FINALIZE / RES_FINALIZE: more body of the
                            // message just ended ("Unexpected request/response body").
                            let line = std::mem::take(&mut side.line);
                            side.line_overflow = false;
                            self.body_data(dir, &line, out);
                            if line.capacity() <= 4096 {
                                self.sides[d].line = line;
                                self.sides[d].line.clear();
                            }
                            continue;
                        }
                        self.finish_deferred(dir, out);
                    }
                    let side = &mut self.sides[d];
                    let mut line = std::mem::take(&mut side.line);
                    let overflow = std::mem::replace(&mut side.line_overflow, false);
                    if overflow {
                        out.push(anomaly(match dir {
                            Direction::ToServer => "REQUEST_FIELD_TOO_LONG",
                            Direction::ToClient => "RESPONSE_FIELD_TOO_LONG",
                        }));
                    }
                    if self.sides[d].state == State::LinesAsBody {
                        self.line_as_body(&line, true, out);
                    } else {
                        let end = line
                            .iter()
                            .rposition(|&c| c != b'\n' && c != b'\r')
                            .map_or(0, |i| i + 1);
                        let eol = &mut self.sides[d].eol;
                        eol.clear();
                        eol.extend_from_slice(&line[end..]);
                        line.truncate(end);
                        self.on_line(dir, &line, out);
                    }
                    // Give the line buffer's capacity back unless it grew large.
                    if line.capacity() <= 4096 {
                        line.clear();
                        self.sides[d].line = line;
                    }
                }
            }
        }
    }

    fn next_response_is_v09(&self) -> bool {
        self.txs
            .iter()
            .find(|p| !p.resp_done)
            .is_some_and(|p| p.v09)
    }

    fn on_line(&mut self, dir: Direction, line: &[u8], out: &mut Vec<AppEvent>) {
        let d = dir.idx();
        match self.sides[d].state {
            State::Line => {
                if trim(line).is_empty() {
                    self.sides[d].blank_lines += 1;
                    if self.sides[d].blank_lines > MAX_BLANK_LINES {
                        self.sides[d].state = State::Broken;
                    }
                    return;
                }
                self.sides[d].blank_lines = 0;
                if self.sides[d].finalize {
                    let starts_message = match dir {
                        Direction::ToServer => starts_with_known_method(line),
                        Direction::ToClient => looks_like_status_line(line),
                    };
                    if !starts_message {
                        // More body of the message that just ended (libhtp: "Unexpected
                        // request/response body"), not a new transaction.
                        return;
                    }
                    self.sides[d].finalize = false;
                }
                match dir {
                    Direction::ToServer => self.request_line(line, out),
                    Direction::ToClient => self.status_line(line, out),
                }
            }
            State::V09Peek => {
                if looks_like_header(line) {
                    let cur = self.sides[d].cur;
                    if let Some(p) = self.pending(cur) {
                        p.v09 = false;
                    }
                    self.sides[d].state = State::Headers;
                    self.raw_header(dir, line, true);
                    self.header_line(dir, line, out);
                } else {
                    // An HTTP/0.9 request: complete; this line is what follows it.
                    self.message_done(dir, out);
                    self.on_line(dir, line, out);
                }
            }
            State::Headers => {
                self.raw_header(dir, line, true);
                if line.is_empty() {
                    self.headers_done(dir, out);
                } else {
                    self.header_line(dir, line, out);
                }
            }
            State::ChunkSize => match parse_chunk_size(line) {
                Some(0) => self.sides[d].state = State::Trailers,
                Some(n) => self.sides[d].state = State::Body(n),
                None if trim(line).is_empty() => {}
                None if dir == Direction::ToClient => {
                    // libhtp: a response whose chunk length is invalid is not chunked
                    // after all; it is plain body until the stream closes, this line
                    // included (evader's "chunked" headers over a Content-Length body).
                    out.push(anomaly("INVALID_RESPONSE_CHUNK_LEN"));
                    self.sides[d].chunked = false;
                    self.sides[d].state = State::BodyUntilClose;
                    self.body_data(dir, line, out);
                }
                None => {
                    out.push(anomaly("INVALID_REQUEST_CHUNK_LEN"));
                    self.message_done(dir, out);
                    self.sides[d].state = State::Broken;
                }
            },
            State::ChunkEnd => {
                self.sides[d].state = State::ChunkSize;
                if !trim(line).is_empty() {
                    // Data longer than announced: treat this line as the next size line.
                    self.on_line(dir, line, out);
                }
            }
            State::Trailers if line.is_empty() => self.message_done(dir, out),
            _ => {}
        }
    }

    fn request_line(&mut self, line: &[u8], out: &mut Vec<AppEvent>) {
        let Some(rl) = parse_request_line(line) else {
            return;
        };
        if !is_token(rl.method) {
            out.push(anomaly("REQUEST_LINE_INVALID"));
            self.sides[0].invalid_lines += 1;
            if self.sides[0].invalid_lines > MAX_INVALID_LINES {
                self.sides[0].state = State::Broken;
                return;
            }
        }
        let id = self.new_tx(out);
        let s = &mut self.sides[0];
        s.cur = Some(id);
        s.header_count = 0;
        s.chunked = false;
        s.decoder = None;
        s.file = None;
        s.multipart = None;
        // Only a request whose method is a token can be HTTP/0.9: a junk line without
        // protocol is an invalid request, and its response is still parsed with its status
        // line (libhtp since Suricata issue 6643).
        let v09 = rl.protocol.is_empty() && is_token(rl.method);
        s.state = if v09 { State::V09Peek } else { State::Headers };
        let uri = rl.uri.to_vec();
        let (method, protocol) = (rl.method.to_vec(), rl.protocol.to_vec());
        if rl.protocol.is_empty() {
            out.push(anomaly("REQUEST_LINE_MISSING_PROTOCOL"));
        }
        if let Some(p) = self.pending(Some(id)) {
            p.tx.uri_normalized = normalize_uri(&uri);
            let authority = match split_absolute(&uri) {
                Some((auth, _)) => Some(auth),
                // CONNECT's authority form: "host:port". libhtp reads any CONNECT target
                // as an authority (Suricata 7 logs hostname "/" for "CONNECT / HTTP/1.1").
                None if method.eq_ignore_ascii_case(b"CONNECT") && !uri.is_empty() => {
                    Some(&uri[..])
                }
                None => None,
            };
            if let Some(auth) = authority {
                let (h, port) = parse_authority(auth);
                p.tx.host = Some(h);
                p.tx.port = port;
            }
            p.tx.uri_raw = uri;
            p.tx.method = method;
            p.tx.protocol = protocol;
            p.v09 = v09;
        }
    }

    fn status_line(&mut self, line: &[u8], out: &mut Vec<AppEvent>) {
        // The response belongs to the oldest transaction without one.
        let target = self
            .txs
            .iter()
            .find(|p| !p.resp_done)
            .map(|p| (p.tx.tx_id, p.v09));
        let id = match target {
            Some((id, _)) => id,
            None => {
                out.push(anomaly("UNABLE_TO_MATCH_RESPONSE_TO_REQUEST"));
                let id = self.new_tx(out);
                if let Some(p) = self.pending(Some(id)) {
                    p.req_done = true;
                    // What Suricata (libhtp) logs as the URL of a response without request.
                    p.tx.uri_raw = b"/libhtp::request_uri_not_seen".to_vec();
                    p.tx.uri_normalized = p.tx.uri_raw.clone();
                }
                id
            }
        };
        let s = &mut self.sides[1];
        s.cur = Some(id);
        s.header_count = 0;
        s.lf_cr = false;
        s.folded = None;
        s.chunked = false;
        s.decoder = None;
        s.file = None;
        let parsed = parse_status_line(line);
        let v09 = target.is_some_and(|(_, v)| v);
        match parsed {
            Some((proto, status, msg)) if !v09 => {
                s.state = State::Headers;
                if !status.is_some_and(|s: u16| (100..=599).contains(&s)) {
                    out.push(anomaly("RESPONSE_INVALID_STATUS"));
                }
                let (proto, msg) = (proto.to_vec(), msg.to_vec());
                if let Some(p) = self.pending(Some(id)) {
                    p.tx.response_protocol = proto;
                    p.tx.status = status;
                    p.tx.status_msg = msg;
                }
            }
            _ => {
                // No status line: this line and the next ones are body (libhtp).
                if !v09 {
                    out.push(anomaly("RESPONSE_INVALID_PROTOCOL"));
                }
                s.state = State::LinesAsBody;
                self.sides[1].file = self.response_file(id);
                let mut raw = line.to_vec();
                raw.extend_from_slice(&self.sides[1].eol);
                // Not a status line again: the line that led here may look like one (an
                // HTTP/0.9 answer has none), and must not come back here.
                self.line_as_body(&raw, false, out);
            }
        }
    }

    /// The file of a response body without headers, named by its request's path.
    fn response_file(&self, id: u64) -> Option<FileTracker> {
        let path = self
            .txs
            .iter()
            .find(|p| p.tx.tx_id == id)
            .and_then(|p| file_path(&p.tx))?;
        Some(
            FileTracker::new(path, self.cfg.file_data_limit)
                .with_limit(self.cfg.http_response_file_limit),
        )
    }

    /// One raw line (with its line end) of a response read as body (libhtp's RES_LINE for
    /// a line that does not start with "HTTP"): blank lines are skipped, a line followed in
    /// the same chunk by one starting with 'H' (or of at most 2 bytes) is skipped as junk
    /// before a status line, a line starting with "HTTP" is the status line, any other
    /// line is body, and one that ends the chunk of data completes the response. With
    /// `status` false a line that looks like a status line is body too.
    fn line_as_body(&mut self, raw: &[u8], status: bool, out: &mut Vec<AppEvent>) {
        let tc = Direction::ToClient.idx();
        let mut line = raw;
        while let Some(l) = line
            .strip_suffix(b"\n")
            .or_else(|| line.strip_suffix(b"\r"))
        {
            line = l;
        }
        if line.is_empty() {
            return;
        }
        if status && looks_like_status_line(line) {
            self.sides[tc].state = State::Line;
            self.sides[tc].finalize = false;
            self.status_line(line, out);
            return;
        }
        let (rest, next) = self.sides[tc].after_line;
        if rest >= 2 && (next == Some(b'H') || line.len() <= 2) {
            return;
        }
        self.body_data(Direction::ToClient, raw, out);
        if rest == 0 {
            self.message_done(Direction::ToClient, out);
        }
    }

    /// Appends one header-block line as received to the transaction's raw headers
    /// (`with_eol`: `line` lacks its line end, which is the side's `eol`).
    fn raw_header(&mut self, dir: Direction, line: &[u8], with_eol: bool) {
        let d = dir.idx();
        if self.sides[d].state != State::Headers {
            return;
        }
        let cur = self.sides[d].cur;
        let eol = if with_eol {
            std::mem::take(&mut self.sides[d].eol)
        } else {
            Vec::new()
        };
        if let Some(p) = self.pending(cur) {
            let raw = match dir {
                Direction::ToServer => &mut p.tx.request_headers_raw,
                Direction::ToClient => &mut p.tx.response_headers_raw,
            };
            for part in [line, &eol] {
                let room = RAW_HEADERS_MAX.saturating_sub(raw.len());
                raw.extend_from_slice(part.get(..room).unwrap_or(part));
            }
        }
        if with_eol {
            self.sides[d].eol = eol;
        }
    }

    fn header_line(&mut self, dir: Direction, line: &[u8], out: &mut Vec<AppEvent>) {
        let d = dir.idx();
        let max = self.cfg.http_max_headers;
        let max_line = self.cfg.http_max_line;
        let cur = self.sides[d].cur;
        self.sides[d].header_count += 1;
        let count = self.sides[d].header_count;
        let Some(p) = self.pending(cur) else { return };
        let headers = match dir {
            Direction::ToServer => &mut p.tx.request_headers,
            Direction::ToClient => &mut p.tx.response_headers,
        };
        // Folded continuation line.
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if let Some((n, v)) = headers.last_mut() {
                if n.is_empty() {
                    // The previous line had no colon (kept whole as the value of an
                    // empty name, like libhtp): the two lines are one header line.
                    if v.len() + line.len() < max_line {
                        v.extend_from_slice(line);
                        if let Some(i) = v.iter().position(|&c| c == b':') {
                            let (name, value) =
                                (trim(&v[..i]).to_vec(), trim(&v[i + 1..]).to_vec());
                            *n = name;
                            *v = value;
                        }
                    }
                } else if v.len() + line.len() < max_line {
                    v.push(b' ');
                    v.extend_from_slice(trim(line));
                }
            }
            return;
        }
        if count > max {
            if count == max + 1 {
                out.push(anomaly(match dir {
                    Direction::ToServer => "REQUEST_TOO_MANY_HEADERS",
                    Direction::ToClient => "RESPONSE_TOO_MANY_HEADERS",
                }));
            }
            return;
        }
        match line.iter().position(|&c| c == b':') {
            Some(i) => headers.push((trim(&line[..i]).to_vec(), trim(&line[i + 1..]).to_vec())),
            None => {
                headers.push((Vec::new(), line.to_vec()));
                out.push(anomaly(match dir {
                    Direction::ToServer => "REQUEST_FIELD_MISSING_COLON",
                    Direction::ToClient => "RESPONSE_FIELD_MISSING_COLON",
                }));
            }
        }
    }

    /// Response header (or trailer) lines, split and folded the way libhtp's RES_HEADERS
    /// does: a line ends at LF (an LF CR pair is one line end), at CR LF, or at a CR that
    /// is followed by another byte than CR or LF; CR CR LF is no empty line; a line of one
    /// space or tab before LF ends the block when a byte other than LF follows. Returns the
    /// bytes consumed: all of `data`, or up to the end of the block.
    fn response_header_block(&mut self, data: &[u8], out: &mut Vec<AppEvent>) -> usize {
        let tc = Direction::ToClient.idx();
        let max_line = self.cfg.http_max_line;
        let mut i = 0;
        loop {
            let side = &mut self.sides[tc];
            let mut complete = false;
            let push = |side: &mut Side, c: u8| {
                if side.line.len() < max_line {
                    side.line.push(c);
                } else {
                    side.line_overflow = true;
                }
            };
            while let Some(&c) = data.get(i) {
                i += 1;
                push(side, c);
                if c != b'\n' && c != b'\r' {
                    side.lf_cr = false;
                    continue;
                }
                let mut end_cr = false;
                if c == b'\r' {
                    match data.get(i) {
                        // libhtp waits for the next byte, then reads on from it.
                        None => return i,
                        Some(b'\n') => {
                            push(side, b'\n');
                            i += 1;
                            // LF CR CR LF CR LF: the last four bytes are one line end.
                            if side.lf_cr && data.get(i) == Some(&b'\r') {
                                i += 1;
                                if data.get(i) == Some(&b'\n') {
                                    i += 1;
                                }
                            }
                        }
                        Some(b'\r') => continue,
                        Some(_) => {}
                    }
                    side.lf_cr = false;
                    end_cr = true;
                } else {
                    side.lf_cr = false;
                    if data.get(i) == Some(&b'\r') {
                        push(side, b'\r');
                        i += 1;
                        side.lf_cr = true;
                    }
                }
                if end_cr && side.line.len() < 2 {
                    continue;
                }
                complete = true;
                break;
            }
            if !complete {
                return i;
            }
            let line = std::mem::take(&mut side.line);
            if std::mem::replace(&mut side.line_overflow, false) {
                out.push(anomaly("RESPONSE_FIELD_TOO_LONG"));
            }
            self.raw_header(Direction::ToClient, &line, false);
            let next = data.get(i).copied();
            let terminator = matches!(line.as_slice(), b"\r" | b"\n" | b"\r\n")
                || (matches!(line.as_slice(), [b' ' | b'\t', b'\n'])
                    && next.is_some_and(|b| b != b'\n'));
            if terminator {
                if let Some(h) = self.sides[tc].folded.take() {
                    self.response_header(&h, out);
                }
                self.sides[tc].lf_cr = false;
                if self.sides[tc].state == State::Headers {
                    self.headers_done(Direction::ToClient, out);
                } else {
                    self.message_done(Direction::ToClient, out);
                }
                return i;
            }
            let line = chomp(&line);
            let http11 = self
                .pending(self.sides[tc].cur)
                .is_some_and(|p| p.tx.response_protocol.eq_ignore_ascii_case(b"HTTP/1.1"));
            match line.first() {
                Some(&c) if is_folding(c) => match self.sides[tc].folded.take() {
                    None => self.sides[tc].folded = Some(line.to_vec()),
                    Some(prev) => {
                        if http11 && line.contains(&b':') && prev.contains(&b':') {
                            // libhtp: a "folded" line with a colon after a header with one
                            // is a new header in HTTP/1.1.
                            self.response_header(&prev, out);
                            self.sides[tc].folded = Some(line[1..].to_vec());
                        } else {
                            let mut prev = prev;
                            if prev.len() + line.len() <= max_line {
                                prev.extend_from_slice(line);
                            }
                            self.sides[tc].folded = Some(prev);
                        }
                    }
                },
                _ => {
                    if let Some(h) = self.sides[tc].folded.take() {
                        self.response_header(&h, out);
                    }
                    if next.is_some_and(is_folding) {
                        self.sides[tc].folded = Some(line.to_vec());
                    } else {
                        self.response_header(line, out);
                    }
                }
            }
        }
    }

    /// Store one complete response header line (trailer lines are not kept). A repeated
    /// name is joined to the first one with ", ", except Content-Length whose first value
    /// stays, as libhtp does.
    fn response_header(&mut self, line: &[u8], out: &mut Vec<AppEvent>) {
        let tc = Direction::ToClient.idx();
        if line.is_empty() || self.sides[tc].state != State::Headers {
            return;
        }
        let max = self.cfg.http_max_headers;
        let max_line = self.cfg.http_max_line;
        self.sides[tc].header_count += 1;
        let count = self.sides[tc].header_count;
        if count > max {
            if count == max + 1 {
                out.push(anomaly("RESPONSE_TOO_MANY_HEADERS"));
            }
            return;
        }
        let (name, value, colon) = split_response_header(line);
        if !colon {
            out.push(anomaly("RESPONSE_FIELD_MISSING_COLON"));
        }
        let Some(p) = self.pending(self.sides[tc].cur) else {
            return;
        };
        let headers = &mut p.tx.response_headers;
        let existing = headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name));
        match existing {
            Some((n, v)) if name_is(n, "content-length") => {
                if parse_content_length(v) != parse_content_length(&value) {
                    out.push(anomaly("DUPLICATE_CONTENT_LENGTH_FIELD_IN_RESPONSE"));
                }
            }
            Some((_, v)) => {
                if v.len() + value.len() + 2 <= max_line {
                    v.extend_from_slice(b", ");
                    v.extend_from_slice(&value);
                }
            }
            None => headers.push((name, value)),
        }
    }

    fn headers_done(&mut self, dir: Direction, out: &mut Vec<AppEvent>) {
        let d = dir.idx();
        let cur = self.sides[d].cur;
        let cfg = self.cfg.clone();
        let Some(p) = self.pending(cur) else {
            self.sides[d].state = State::Broken;
            return;
        };
        let tx = &mut p.tx;
        let (hdrs, is_req) = match dir {
            Direction::ToServer => (&tx.request_headers, true),
            Direction::ToClient => (&tx.response_headers, false),
        };
        let get = |n: &str| header(hdrs, n).map(<[u8]>::to_vec);
        let te = get("transfer-encoding");
        let cl_count = hdrs
            .iter()
            .filter(|(n, _)| name_is(n, "content-length"))
            .count();
        let cl = get("content-length");
        // libhtp joins repeated headers with ", "; every Content-Encoding counts.
        let ce = hdrs
            .iter()
            .filter(|(n, _)| name_is(n, "content-encoding"))
            .map(|(_, v)| v.as_slice())
            .collect::<Vec<_>>()
            .join(&b',');
        let ce = (!ce.is_empty()).then_some(ce);
        let disposition = get("content-disposition");
        let mut events = Vec::new();
        if is_req {
            if tx.host.is_none() {
                match get("host") {
                    Some(h) => {
                        let (h, port) = parse_authority(&h);
                        tx.host = Some(h);
                        tx.port = port;
                    }
                    None if tx.protocol.eq_ignore_ascii_case(b"HTTP/1.1") => {
                        events.push("MISSING_HOST_HEADER")
                    }
                    None => {}
                }
            }
            tx.user_agent = get("user-agent");
            tx.referer = get("referer");
            tx.cookie = get("cookie");
        } else {
            tx.content_type = get("content-type").map(|v| {
                let end = v.iter().position(|&c| c == b';').unwrap_or(v.len());
                trim(&v[..end]).to_vec()
            });
            tx.location = get("location");
        }
        let status = tx.status.unwrap_or(0);
        let method = tx.method.clone();
        let connect_ok = method.eq_ignore_ascii_case(b"CONNECT") && (200..300).contains(&status);
        let content_type = header(&tx.request_headers, "content-type").map(<[u8]>::to_vec);
        let path = file_path(tx);
        let resp_filename = disposition.as_deref().and_then(disposition_filename);
        let range = (!is_req && status == 206)
            .then(|| get("content-range"))
            .flatten()
            .and_then(|v| parse_content_range(&v))
            .filter(|&(_, size)| size <= RANGE_MAX);
        let byteranges = tx
            .content_type
            .as_deref()
            .is_some_and(|ct| ct.eq_ignore_ascii_case(b"multipart/byteranges"));
        let side = &mut self.sides[d];
        side.chunked = false;
        side.decoder = ce.as_deref().and_then(|e| Decoder::new(e, &cfg));
        if cl_count > 1 {
            events.push(if is_req {
                "DUPLICATE_CONTENT_LENGTH_FIELD_IN_REQUEST"
            } else {
                "DUPLICATE_CONTENT_LENGTH_FIELD_IN_RESPONSE"
            });
        }
        // Which messages have no body at all. libhtp reads a body after a 1xx, 204 or 304
        // status when Content-Length or Transfer-Encoding announces one ("Unexpected
        // Response body", as browsers do); a HEAD response never has one.
        let framed = te.is_some() || cl.is_some();
        let no_body = !is_req
            && (method.eq_ignore_ascii_case(b"HEAD")
                || (!framed && ((100..200).contains(&status) || status == 204 || status == 304)));
        let next = if !is_req && ((status == 101 && !framed) || connect_ok) {
            State::Tunnel
        } else if !is_req && (100..200).contains(&status) && !framed {
            // 100 Continue: the real response follows.
            State::Line
        } else if no_body {
            State::Line
        } else if te.as_deref().is_some_and(is_chunked) {
            side.chunked = true;
            State::ChunkSize
        } else if let Some(cl) = cl {
            match parse_content_length(&cl) {
                Some(0) => State::Line,
                Some(n) => State::Body(n),
                None => {
                    events.push(if is_req {
                        "INVALID_CONTENT_LENGTH_FIELD_IN_REQUEST"
                    } else {
                        "INVALID_CONTENT_LENGTH_FIELD_IN_RESPONSE"
                    });
                    if is_req {
                        // libhtp fails on it: the rest of the requests are not parsed.
                        State::Broken
                    } else {
                        State::BodyUntilClose
                    }
                }
            }
        } else if is_req {
            State::Line
        } else if byteranges {
            // Self-delimiting byte ranges without a length: libhtp does not support them
            // and stops parsing the responses (the transaction has no body and no file).
            events.push("RESPONSE_MULTIPART_BYTERANGES");
            State::Broken
        } else {
            State::BodyUntilClose
        };
        // Files: every response body; request bodies of POST/PUT; multipart parts.
        let multipart_boundary = content_type
            .as_deref()
            .filter(|ct| {
                trim(ct).len() >= 19 && trim(ct)[..19].eq_ignore_ascii_case(b"multipart/form-data")
            })
            .and_then(|ct| header_param(ct, b"boundary"))
            .map(<[u8]>::to_vec);
        side.multipart = None;
        if next == State::Broken {
            // Parsing stops here: no body, no file.
        } else if is_req {
            if let Some(b) = multipart_boundary {
                side.multipart = Some((b, Vec::new(), false));
            } else if method.eq_ignore_ascii_case(b"POST") || method.eq_ignore_ascii_case(b"PUT") {
                side.file = path.map(|path| {
                    FileTracker::new(path, cfg.file_data_limit).with_limit(cfg.http_file_limit)
                });
            }
        } else {
            side.file = resp_filename.or(path).map(|name| {
                FileTracker::new(name, cfg.file_data_limit).with_limit(cfg.http_response_file_limit)
            });
        }
        side.range = range
            .filter(|_| !is_req && side.file.is_some() && next != State::Broken)
            .map(|(first, size)| (first, size, Vec::new()));
        side.state = next;
        out.extend(events.into_iter().map(anomaly));
        match next {
            State::Line if is_req || !(100..200).contains(&status) => self.message_done(dir, out),
            State::Tunnel => {
                self.message_done(dir, out);
                self.sides[0].state = State::Tunnel;
                self.sides[1].state = State::Tunnel;
                out.push(AppEvent::Upgrade {
                    from: AppProto::Http,
                    to: None,
                });
            }
            _ => {}
        }
    }

    /// Transfer-decoded body bytes of the current message in `dir`.
    fn body_data(&mut self, dir: Direction, data: &[u8], out: &mut Vec<AppEvent>) {
        if data.is_empty() {
            return;
        }
        let d = dir.idx();
        let cur = self.sides[d].cur;
        let depth = match dir {
            Direction::ToServer => self.cfg.http_request_body_depth,
            Direction::ToClient => self.cfg.http_response_body_depth,
        };
        // Suricata's request-body-limit bounds the body its multipart parser sees.
        let mp_limit = match self.cfg.http_file_limit {
            0 => self.cfg.max_buffer,
            n => self
                .cfg
                .max_buffer
                .min(usize::try_from(n).unwrap_or(usize::MAX)),
        };
        let side = &mut self.sides[d];
        let decoded = match side.decoder.as_mut() {
            None => std::borrow::Cow::Borrowed(data),
            Some(dec) => {
                let (v, ev) = dec.feed(data);
                out.extend(ev.map(anomaly));
                if dec.stopped {
                    // Decoding stopped: the rest of this body is not inspected or hashed.
                    side.decoder = Some(Decoder::stopped());
                    if let Some(f) = side.file.as_mut() {
                        f.set_truncated();
                    }
                }
                std::borrow::Cow::Owned(v)
            }
        };
        if let Some(f) = side.file.as_mut() {
            f.write(&decoded);
        }
        if let Some((first, size, buf)) = side.range.as_mut() {
            let room = usize::try_from(size.saturating_sub(*first))
                .unwrap_or(usize::MAX)
                .saturating_sub(buf.len())
                .min(decoded.len());
            buf.extend_from_slice(&decoded[..room]);
        }
        if let Some((_, buf, cut)) = side.multipart.as_mut() {
            let room = mp_limit.saturating_sub(buf.len()).min(decoded.len());
            buf.extend_from_slice(&decoded[..room]);
            *cut |= room < decoded.len();
        }
        let Some(p) = self.pending(cur) else { return };
        let (body, len) = match dir {
            Direction::ToServer => (&mut p.tx.request_body, &mut p.tx.request_body_len),
            Direction::ToClient => (&mut p.tx.response_body, &mut p.tx.response_len),
        };
        *len += data.len() as u64;
        let room = depth.saturating_sub(body.len()).min(decoded.len());
        body.extend_from_slice(&decoded[..room]);
    }

    /// The message in `dir` is complete. A message that ends inside a chunk of data
    /// waits (see [`Side::deferred`]) unless the stream is closing.
    fn message_done(&mut self, dir: Direction, out: &mut Vec<AppEvent>) {
        let d = dir.idx();
        let side = &mut self.sides[d];
        if !self.closing
            && side.cur.is_some()
            && !matches!(side.state, State::Tunnel | State::Broken)
        {
            side.state = State::Line;
            side.finalize = true;
            side.deferred = true;
            // Detection sees the request now, as Suricata inspects a request once its
            // headers (and body) are parsed, before libhtp's REQ_FINALIZE ends it.
            if dir == Direction::ToServer {
                let cur = side.cur;
                self.announce_request(cur, out);
            }
            return;
        }
        self.complete(dir, out);
    }

    /// Adds a 206 response's body (`first`, whole `size`, bytes) of transaction `cur` to
    /// the container of its host and path; the file's name and bytes once complete.
    fn add_range(
        &mut self,
        cur: Option<u64>,
        (first, size, bytes): (u64, u64, Vec<u8>),
    ) -> Option<(Vec<u8>, Vec<u8>)> {
        let p = self.pending(cur)?;
        let name = file_path(&p.tx)?;
        let mut key = p.tx.host.clone().unwrap_or_default();
        key.push(0);
        key.extend_from_slice(&p.tx.uri_raw);
        let fresh = |key, name| RangeFile {
            key,
            name,
            size,
            parts: Vec::new(),
            have: Vec::new(),
        };
        let at = match self.ranges.iter().position(|r| r.key == key) {
            Some(i) if self.ranges[i].size == size => i,
            Some(i) => {
                // Another size for the same URL: another file.
                self.ranges[i] = fresh(key, name);
                i
            }
            None => {
                if self.ranges.len() >= RANGE_FILES {
                    self.ranges.remove(0);
                }
                self.ranges.push(fresh(key, name));
                self.ranges.len() - 1
            }
        };
        let data = self.ranges[at].add(first, bytes)?;
        let r = self.ranges.remove(at);
        Some((r.name, data))
    }

    /// Complete the message in `dir` whose end was deferred, if any.
    fn finish_deferred(&mut self, dir: Direction, out: &mut Vec<AppEvent>) {
        if std::mem::replace(&mut self.sides[dir.idx()].deferred, false) {
            self.complete(dir, out);
        }
    }

    /// Log the message in `dir`: its files, and the transaction once both sides are done.
    fn complete(&mut self, dir: Direction, out: &mut Vec<AppEvent>) {
        let d = dir.idx();
        let cur = self.sides[d].cur.take();
        let file = self.sides[d].file.take();
        let multipart = self.sides[d].multipart.take();
        let range = self.sides[d].range.take();
        // The stream ended inside the body (Content-Length or chunks not all seen): a
        // multipart file that no delimiter ended was cut short.
        let unfinished = self.closing
            && matches!(
                self.sides[d].state,
                State::Body(_) | State::ChunkSize | State::ChunkEnd
            );
        self.sides[d].decoder = None;
        if self.sides[d].state != State::Tunnel && self.sides[d].state != State::Broken {
            self.sides[d].state = State::Line;
            self.sides[d].finalize = true;
        }
        let data_limit = self.cfg.file_data_limit;
        let file_limit = match dir {
            Direction::ToServer => self.cfg.http_file_limit,
            Direction::ToClient => self.cfg.http_response_file_limit,
        };
        let max_parts = self.cfg.smtp_max_parts;
        if dir == Direction::ToServer {
            self.announce_request(cur, out);
        }
        let whole = range.and_then(|r| self.add_range(cur, r));
        let Some(p) = self.pending(cur) else { return };
        let tx_id = p.tx.tx_id;
        if let Some(f) = file.filter(|f| f.size() > 0) {
            p.files
                .push(f.finish(AppProto::Http, tx_id, dir, FileState::Closed, None));
        }
        if let Some((name, data)) = whole {
            // The ranges make the whole file: logged as a file of its own (Suricata's
            // byterange container), after the part this response carried.
            let mut f = FileTracker::new(name, data_limit).with_limit(file_limit);
            f.write(&data);
            p.files
                .push(f.finish(AppProto::Http, tx_id, dir, FileState::Closed, None));
        }
        if let Some((boundary, body, cut)) = multipart {
            for (name, content, ended) in multipart_files(&body, &boundary, max_parts) {
                let mut f = FileTracker::new(name, data_limit).with_limit(file_limit);
                f.write(content);
                // A part the body limit cut off (sv 1.8.31.101: Suricata's zip is the
                // limit minus the bytes before the part's content, TRUNCATED).
                let state = if (cut || unfinished) && !ended {
                    FileState::Truncated
                } else {
                    FileState::Closed
                };
                p.files
                    .push(f.finish(AppProto::Http, tx_id, dir, state, None));
            }
        }
        match dir {
            Direction::ToServer => p.req_done = true,
            Direction::ToClient => p.resp_done = true,
        }
        self.flush_done(out);
    }
}

/// Files of a multipart/form-data body: (filename, content, whether a delimiter ended it)
/// of each part with a filename.
fn multipart_files<'a>(
    body: &'a [u8],
    boundary: &[u8],
    max_parts: usize,
) -> Vec<(Vec<u8>, &'a [u8], bool)> {
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(boundary);
    let mut files = Vec::new();
    let mut rest = body;
    let Some(first) = find(rest, &delim) else {
        return files;
    };
    rest = &rest[first + delim.len()..];
    for _ in 0..max_parts {
        if rest.starts_with(b"--") {
            break;
        }
        let Some(hend) = find(rest, b"\r\n\r\n") else {
            break;
        };
        let head = &rest[..hend];
        let content_start = hend + 4;
        let (content, next) = match find(&rest[content_start..], &delim) {
            Some(i) => {
                let c = &rest[content_start..content_start + i];
                (
                    c.strip_suffix(b"\r\n").unwrap_or(c),
                    Some(content_start + i + delim.len()),
                )
            }
            None => (&rest[content_start..], None),
        };
        let filename = head.split(|&c| c == b'\n').find_map(|l| {
            let l = trim(l);
            let colon = l.iter().position(|&c| c == b':')?;
            if !trim(&l[..colon]).eq_ignore_ascii_case(b"content-disposition") {
                return None;
            }
            disposition_filename(&l[colon + 1..])
        });
        if let Some(f) = filename {
            files.push((f, content, next.is_some()));
        }
        match next {
            Some(n) => rest = &rest[n..],
            None => break,
        }
    }
    files
}

fn emit(p: Pending, out: &mut Vec<AppEvent>) {
    let section = p.tx.eve();
    for mut f in p.files {
        f.section = Some(("http", section.clone()));
        out.push(AppEvent::File(f));
    }
    out.push(AppEvent::Tx(Transaction::Http(p.tx)));
}

impl Parser for HttpParser {
    fn proto(&self) -> AppProto {
        AppProto::Http
    }

    fn parse(&mut self, dir: Direction, data: &[u8], _ts: i64, out: &mut Vec<AppEvent>) {
        self.parse_dir(dir, data, out);
        // The chunk ended: a message completed here is final unless a line is pending.
        let side = &mut self.sides[dir.idx()];
        if side.line.is_empty() {
            self.finish_deferred(dir, out);
            self.sides[dir.idx()].finalize = false;
        }
    }

    fn gap(&mut self, dir: Direction, len: u64, out: &mut Vec<AppEvent>) {
        let d = dir.idx();
        self.finish_deferred(dir, out);
        let side = &mut self.sides[d];
        if let Some(f) = side.file.as_mut() {
            f.set_gap();
        }
        // A content-decoder cannot continue after lost bytes.
        side.decoder = None;
        match side.state {
            State::Body(rem) if !side.chunked || len < rem => {
                let left = rem.saturating_sub(len);
                side.state = State::Body(left);
                if let Some(p) = self.pending(self.sides[d].cur) {
                    match dir {
                        Direction::ToServer => p.tx.request_body_len += len.min(rem),
                        Direction::ToClient => p.tx.response_len += len.min(rem),
                    }
                }
                if left == 0 {
                    if self.sides[d].chunked {
                        self.sides[d].state = State::ChunkEnd;
                    } else {
                        self.message_done(dir, out);
                    }
                }
            }
            State::BodyUntilClose | State::Tunnel | State::Broken => {}
            _ => {
                // Lost inside framing: finish what we have and stop this direction.
                if self.sides[d].cur.is_some() {
                    self.message_done(dir, out);
                }
                self.sides[d].state = State::Broken;
            }
        }
        self.finish_deferred(dir, out);
        // Data after a gap starts a new chunk.
        self.sides[d].finalize = false;
    }

    fn close(&mut self, _ts: i64, out: &mut Vec<AppEvent>) {
        self.closing = true;
        for dir in [Direction::ToServer, Direction::ToClient] {
            let d = dir.idx();
            if self.sides[d].deferred {
                // What was buffered after the message is more of its body unless it
                // starts a new one (libhtp's REQ_FINALIZE / RES_FINALIZE at stream end).
                let line = std::mem::take(&mut self.sides[d].line);
                let starts = match dir {
                    Direction::ToServer => starts_with_known_method(&line),
                    Direction::ToClient => looks_like_status_line(&line),
                };
                if !line.is_empty() && !starts {
                    self.body_data(dir, &line, out);
                } else {
                    self.sides[d].line = line;
                }
                self.finish_deferred(dir, out);
            }
        }
        // A chunk-size line cut by the end of the stream (no LF) is body and the response
        // ends with the stream, as Suricata 7.0.10 logs evader's "finalchunk=0\r" answers
        // (the last chunk's "0\r" counted in a CLOSED file).
        let tc = Direction::ToClient.idx();
        if self.sides[tc].state == State::ChunkSize && !self.sides[tc].line.is_empty() {
            let line = std::mem::take(&mut self.sides[tc].line);
            if parse_chunk_size(&line).is_none() {
                out.push(anomaly("INVALID_RESPONSE_CHUNK_LEN"));
            }
            self.sides[tc].chunked = false;
            self.sides[tc].state = State::BodyUntilClose;
            self.body_data(Direction::ToClient, &line, out);
        }
        if self.sides[tc].state == State::Line
            && !self.sides[tc].line.is_empty()
            && self.txs.iter().any(|p| !p.resp_done)
        {
            // libhtp's RES_LINE takes the end of the stream as the end of a first line: one
            // that does not start with "HTTP" is the body of the answer (evader's
            // "http09": a bare 68-byte body, then FIN).
            let raw = std::mem::take(&mut self.sides[tc].line);
            self.sides[tc].after_line = (0, None);
            let line = chomp(&raw).to_vec();
            self.sides[tc].eol.clear();
            self.sides[tc].eol.extend_from_slice(&raw[line.len()..]);
            self.status_line(&line, out);
        }
        if self.sides[tc].state == State::LinesAsBody && !self.sides[tc].line.is_empty() {
            let line = std::mem::take(&mut self.sides[tc].line);
            self.body_data(Direction::ToClient, &line, out);
        }
        for dir in [Direction::ToServer, Direction::ToClient] {
            let d = dir.idx();
            let until_close = matches!(
                self.sides[d].state,
                State::BodyUntilClose | State::LinesAsBody
            );
            let cur = self.sides[d].cur;
            if cur.is_none() {
                continue;
            }
            // A body that ends with the stream is complete; anything else is truncated.
            if !until_close {
                if let Some(f) = self.sides[d].file.take() {
                    let rec = f.finish(
                        AppProto::Http,
                        cur.unwrap_or(0),
                        dir,
                        FileState::Truncated,
                        None,
                    );
                    if rec.size > 0 {
                        if let Some(p) = self.pending(cur) {
                            p.files.push(rec);
                        }
                    }
                }
            }
            self.message_done(dir, out);
        }
        while let Some(p) = self.txs.pop_front() {
            emit(p, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{anomalies, files};

    /// The request of suricata-verify http-all-headers (the classic ethereal http.cap).
    const REQ: &[u8] = b"GET /download.html HTTP/1.1\r\n\
Host: www.ethereal.com\r\n\
User-Agent: Mozilla/5.0 (Windows; U; Windows NT 5.1; en-US; rv:1.6) Gecko/20040113\r\n\
Accept: text/xml,application/xml,application/xhtml+xml,text/html;q=0.9,text/plain;q=0.8,image/png,image/jpeg,image/gif;q=0.2,*/*;q=0.1\r\n\
Accept-Language: en-us,en;q=0.5\r\n\
Accept-Encoding: gzip,deflate\r\n\
Accept-Charset: ISO-8859-1,utf-8;q=0.7,*;q=0.7\r\n\
Keep-Alive: 300\r\n\
Connection: keep-alive\r\n\
Referer: http://www.ethereal.com/development.html\r\n\r\n";

    /// libhtp reads a response whose first line is not "HTTP…" line by line as body
    /// (blank lines skipped) until a line ends a chunk of data; the next response goes to
    /// the next request. Lengths as Suricata 7.0.10 logs them for VLC's RTSP (ndpi pcap:
    /// tx 0 gets the first two answers, tx 1 the rest until the flow ends).
    #[test]
    fn response_lines_without_http_are_body_until_a_chunk_ends() {
        let a1: &[u8] = b"RTSP/1.0 200 OK\r\nCSeq: 2\r\n\r\n";
        let a2: &[u8] = b"RTSP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n";
        let a3: &[u8] = b"RTSP/1.0 200 OK\r\nCSeq: 4\r\n\r\n";
        let ev = run(
            &AppConfig::default(),
            &[
                (
                    Direction::ToServer,
                    b"OPTIONS rtsp://h/ RTSP/1.0\r\nCSeq: 2\r\n\r\n",
                ),
                (Direction::ToClient, a1),
                (
                    Direction::ToServer,
                    b"DESCRIBE rtsp://h/ RTSP/1.0\r\nCSeq: 3\r\n\r\n",
                ),
                (Direction::ToClient, a2),
                (Direction::ToClient, b"v=0\r\n"),
                (
                    Direction::ToServer,
                    b"SETUP rtsp://h/t RTSP/1.0\r\nCSeq: 4\r\n\r\n",
                ),
                (Direction::ToClient, a3),
            ],
        );
        assert!(anomalies(&ev).contains(&"RESPONSE_INVALID_PROTOCOL"));
        let t = txs(&ev);
        assert_eq!(t.len(), 3);
        // Each answer without its blank line, then the SDP line that ended its chunk.
        let tx0 = (a1.len() - 2 + a2.len() - 2 + 5) as u64;
        assert_eq!(t[0].response_len, tx0);
        assert_eq!(t[0].status, None);
        assert_eq!(t[1].response_len, (a3.len() - 2) as u64);
        assert_eq!(t[2].response_len, 0);
        let f = files(&ev);
        assert_eq!(f.len(), 2);
        assert_eq!(
            (f[0].tx_id, f[0].size, f[0].filename.as_slice()),
            (0, tx0, &b"/"[..])
        );
        assert_eq!((f[1].tx_id, f[1].state), (1, FileState::Closed));

        // A junk line followed in the same chunk by a status line is skipped.
        let ev = run(
            &AppConfig::default(),
            &[
                (Direction::ToServer, b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"),
                (
                    Direction::ToClient,
                    b"junk\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                ),
            ],
        );
        let t = txs(&ev);
        assert_eq!((t[0].status, t[0].response_len), (Some(200), 2));
        assert_eq!(files(&ev)[0].size, 2);

        // A first line without line end, then the end of the stream: body.
        let ev = run(
            &AppConfig::default(),
            &[
                (Direction::ToServer, b"GET /e.txt HTTP/1.1\r\n\r\n"),
                (Direction::ToClient, EICAR),
            ],
        );
        let f = files(&ev);
        assert_eq!((f[0].size, f[0].state), (68, FileState::Closed));

        // A first line that is body keeps its line end as sent.
        let ev = run(
            &AppConfig::default(),
            &[
                (Direction::ToServer, b"GET /z.html HTTP/1.1\r\n\r\n"),
                (Direction::ToClient, b"<html>\n  Zeek\n</html>\n"),
            ],
        );
        assert_eq!(files(&ev)[0].size, 22);

        // The answer to an HTTP/0.9 request is a file named by the request's path.
        let ev = run(
            &AppConfig::default(),
            &[
                (Direction::ToServer, b"GET /a/b.txt\r\n"),
                (Direction::ToClient, b"raw bytes"),
            ],
        );
        let f = files(&ev);
        assert_eq!((f[0].filename.as_slice(), f[0].size), (&b"/a/b.txt"[..], 9));
    }

    /// Its response headers; the 18070-byte body is generated.
    const RESP_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
Date: Thu, 13 May 2004 10:17:12 GMT\r\n\
Server: Apache\r\n\
Last-Modified: Tue, 20 Apr 2004 13:17:00 GMT\r\n\
ETag: \"9a01a-4696-7e354b00\"\r\n\
Accept-Ranges: bytes\r\n\
Content-Length: 18070\r\n\
Keep-Alive: timeout=15, max=100\r\n\
Connection: Keep-Alive\r\n\
Content-Type: text/html; charset=ISO-8859-1\r\n\r\n";

    fn body(n: usize) -> Vec<u8> {
        let mut b = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n".to_vec();
        b.resize(n, b'x');
        b
    }

    fn run(cfg: &AppConfig, chunks: &[(Direction, &[u8])]) -> Vec<AppEvent> {
        let mut p = HttpParser::new(cfg);
        let mut out = Vec::new();
        for (d, c) in chunks {
            p.parse(*d, c, 0, &mut out);
        }
        p.close(0, &mut out);
        out
    }

    fn txs(ev: &[AppEvent]) -> Vec<&HttpTx> {
        ev.iter()
            .filter_map(|e| match e {
                AppEvent::Tx(Transaction::Http(t)) => Some(t),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn get_with_content_length_matches_suricata_eve() {
        let mut resp = RESP_HEAD.to_vec();
        resp.extend_from_slice(&body(18070));
        let ev = run(
            &AppConfig::default(),
            &[(Direction::ToServer, REQ), (Direction::ToClient, &resp)],
        );
        let t = txs(&ev);
        assert_eq!(t.len(), 1);
        // Suricata 7.0.10 on http-all-headers/input.pcap, event_type http.
        let want: Value = serde_json::from_str(r#"{"hostname":"www.ethereal.com","url":"/download.html","http_user_agent":"Mozilla/5.0 (Windows; U; Windows NT 5.1; en-US; rv:1.6) Gecko/20040113","http_content_type":"text/html","http_refer":"http://www.ethereal.com/development.html","http_method":"GET","protocol":"HTTP/1.1","status":200,"length":18070}"#).unwrap();
        assert_eq!(t[0].eve(), want);
        assert_eq!(t[0].request_headers.len(), 9);
        assert_eq!(
            t[0].request_header("accept-encoding"),
            Some(&b"gzip,deflate"[..])
        );
        assert_eq!(t[0].response_body.len(), 18070);
        let f = files(&ev);
        assert_eq!(f.len(), 1);
        let (fi, section) = f[0].eve();
        assert_eq!(fi["filename"], "/download.html");
        assert_eq!(fi["size"], 18070);
        assert_eq!(fi["state"], "CLOSED");
        assert_eq!(fi["magic"], "XML 1.0 document, ASCII text");
        assert_eq!(section, Some(("http", want)));
        assert_eq!(f[0].direction, Direction::ToClient);
        assert!(anomalies(&ev).is_empty());
    }

    #[test]
    fn every_split_gives_the_same_result() {
        // Two pipelined requests, the second a POST with a body; two responses, the first
        // chunked.
        let req = b"GET /a?x=1 HTTP/1.1\r\nHost: h:8080\r\n\r\n\
POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
        let resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n\
HTTP/1.1 201 Created\r\nContent-Length: 2\r\nLocation: /up/1\r\n\r\nok";
        let base = run(
            &AppConfig::default(),
            &[(Direction::ToServer, req), (Direction::ToClient, resp)],
        );
        let bt = txs(&base);
        assert_eq!(bt.len(), 2);
        assert_eq!(bt[0].eve()["hostname"], "h");
        assert_eq!(bt[0].eve()["http_port"], 8080);
        assert_eq!(bt[0].response_body, b"abcde");
        assert_eq!(bt[0].response_len, 5);
        assert_eq!(bt[1].request_body, b"hello");
        assert_eq!(bt[1].status, Some(201));
        assert_eq!(bt[1].eve()["redirect"], "/up/1");
        let bf = files(&base);
        // Response a (5 bytes), request body "hello", response "ok".
        assert_eq!(bf.len(), 3);
        for split in 0..req.len().max(resp.len()) {
            let (r1, r2) = req.split_at(split.min(req.len()));
            let (s1, s2) = resp.split_at(split.min(resp.len()));
            let ev = run(
                &AppConfig::default(),
                &[
                    (Direction::ToServer, r1),
                    (Direction::ToServer, r2),
                    (Direction::ToClient, s1),
                    (Direction::ToClient, s2),
                ],
            );
            let t = txs(&ev);
            assert_eq!(t.len(), 2, "split {split}");
            for (a, b) in t.iter().zip(&bt) {
                assert_eq!(a.eve(), b.eve(), "split {split}");
                assert_eq!(a.response_body, b.response_body, "split {split}");
            }
            let f: Vec<_> = files(&ev)
                .iter()
                .map(|f| (f.sha256.clone(), f.size))
                .collect();
            let g: Vec<_> = bf.iter().map(|f| (f.sha256.clone(), f.size)).collect();
            assert_eq!(f, g, "split {split}");
        }
    }

    #[test]
    fn gzip_chunked_response_is_decoded() {
        let plain = b"%PDF-1.4 hello hello hello hello hello".repeat(100);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&plain).unwrap();
        let gz = enc.finish().unwrap();
        let mut resp =
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\
Content-Disposition: attachment; filename=\"doc.pdf\"\r\n\r\n"
                .to_vec();
        for c in gz.chunks(100) {
            resp.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            resp.extend_from_slice(c);
            resp.extend_from_slice(b"\r\n");
        }
        resp.extend_from_slice(b"0\r\n\r\n");
        let ev = run(
            &AppConfig::default(),
            &[
                (Direction::ToServer, b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"),
                (Direction::ToClient, &resp),
            ],
        );
        let t = txs(&ev);
        assert_eq!(t[0].response_body, plain);
        assert_eq!(
            t[0].response_len,
            gz.len() as u64,
            "length counts transfer-decoded bytes"
        );
        let f = files(&ev);
        assert_eq!(f[0].filename, b"doc.pdf");
        assert_eq!(f[0].size, plain.len() as u64);
        assert_eq!(f[0].magic, Some("PDF document"));
        assert_eq!(f[0].sha256, {
            use sha2::Digest;
            crate::util::hex(&sha2::Sha256::digest(&plain))
        });
    }

    #[test]
    fn deflate_raw_and_zlib_and_bomb() {
        for raw in [true, false] {
            let plain = b"deflated body ".repeat(50);
            let z = if raw {
                let mut e =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
                e.write_all(&plain).unwrap();
                e.finish().unwrap()
            } else {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
                e.write_all(&plain).unwrap();
                e.finish().unwrap()
            };
            let mut resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: {}\r\n\r\n",
                z.len()
            )
            .into_bytes();
            resp.extend_from_slice(&z);
            let ev = run(
                &AppConfig::default(),
                &[
                    (Direction::ToServer, b"GET / HTTP/1.1\r\n\r\n"),
                    (Direction::ToClient, &resp),
                ],
            );
            assert_eq!(txs(&ev)[0].response_body, plain, "raw deflate: {raw}");
        }
        // 64 MiB of zeros gzip to ~64 KiB: stopped at the limit, flagged.
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            e.write_all(&zeros).unwrap();
        }
        let gz = e.finish().unwrap();
        let mut resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            gz.len()
        )
        .into_bytes();
        resp.extend_from_slice(&gz);
        let cfg = AppConfig {
            decompress_limit: 1 << 20,
            ..AppConfig::default()
        };
        let ev = run(
            &cfg,
            &[
                (Direction::ToServer, b"GET / HTTP/1.1\r\n\r\n"),
                (Direction::ToClient, &resp),
            ],
        );
        assert!(anomalies(&ev).contains(&"COMPRESSION_BOMB"));
        assert!(files(&ev)[0].size <= 1 << 20);
        // Corrupt gzip: failure event, no panic.
        let resp = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n\r\n\x1f\x8bXXXXXXXX";
        let ev = run(
            &cfg,
            &[
                (Direction::ToServer, b"GET / HTTP/1.1\r\n\r\n"),
                (Direction::ToClient, resp),
            ],
        );
        assert!(anomalies(&ev).contains(&"GZIP_DECOMPRESSION_FAILED"));
        // Not compressed at all: passed through as it is (libhtp); the second layer too.
        let resp = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n\r\nXXXXXXXXXX";
        let ev = run(
            &cfg,
            &[
                (Direction::ToServer, b"GET / HTTP/1.1\r\n\r\n"),
                (Direction::ToClient, resp),
            ],
        );
        let f = files(&ev);
        assert_eq!((f[0].size, f[0].state), (10, FileState::Closed));
    }

    /// evader's header mangling that libhtp sees through (each decoded by Suricata 7.0.10
    /// in the sv pcap): NUL bytes and case in names and values, VT after the name, a name
    /// folded onto the next line, junk tokens around the coding.
    #[test]
    fn mangled_content_encoding_headers_are_decoded_like_libhtp() {
        let body = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(b"eicar-like body").unwrap();
            e.finish().unwrap()
        };
        for h in [
            &b"Content-Encoding:gz\0ip"[..],
            b"Content\0-encoding:gzip",
            b"Content-Encoding\x0b:gzip",
            b"Content-Encoding\r\n :gzip",
            b"Content-Encoding:\xa0gzip",
            b"Content-Encoding:gzip;",
            b"Content-Encoding:x gzip",
            b"Content-Encoding:\r gzip",
        ] {
            let mut resp = b"HTTP/1.1 200 ok\r\n".to_vec();
            resp.extend_from_slice(h);
            resp.extend_from_slice(
                format!("\r\nContent-length: {}\r\n\r\n", body.len()).as_bytes(),
            );
            resp.extend_from_slice(&body);
            let ev = run(
                &AppConfig::default(),
                &[
                    (Direction::ToServer, b"GET / HTTP/1.1\r\n\r\n"),
                    (Direction::ToClient, &resp),
                ],
            );
            assert_eq!(files(&ev)[0].size, 15, "{}", String::from_utf8_lossy(h));
        }
    }

    #[test]
    fn connect_tunnel_upgrades() {
        let ev = run(
            &AppConfig::default(),
            &[
                (
                    Direction::ToServer,
                    b"CONNECT abc:443 HTTP/1.1\r\nHost: abc:443\r\n\r\n",
                ),
                (
                    Direction::ToClient,
                    b"HTTP/1.1 200 Connection established\r\n\r\n",
                ),
                (Direction::ToServer, b"\x16\x03\x01\x00\x05hello"),
            ],
        );
        let t = txs(&ev);
        assert_eq!(t.len(), 1);
        // Suricata logs hostname "abc" and url "abc:443" for this CONNECT.
        assert_eq!(t[0].eve()["hostname"], "abc");
        assert_eq!(t[0].eve()["url"], "abc:443");
        assert!(ev.iter().any(|e| matches!(
            e,
            AppEvent::Upgrade {
                from: AppProto::Http,
                to: None
            }
        )));
    }

    #[test]
    fn multipart_upload_and_continue_and_head() {
        let body =
            b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"evil.exe\"\r\n\
Content-Type: application/octet-stream\r\n\r\nMZ\x90\x00payload\r\n--XyZ\r\n\
Content-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--XyZ--\r\n";
        let mut req = format!("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        req.extend_from_slice(body);
        req.extend_from_slice(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n");
        let resp = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n\
HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n";
        let ev = run(
            &AppConfig::default(),
            &[(Direction::ToServer, &req), (Direction::ToClient, resp)],
        );
        let t = txs(&ev);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].status, Some(200));
        assert_eq!(t[1].method, b"HEAD");
        assert_eq!(t[1].response_len, 0);
        let f = files(&ev);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].filename, b"evil.exe");
        assert_eq!(f[0].size, 11);
        assert_eq!(f[0].magic, Some("MS-DOS executable"));
        assert_eq!(f[0].direction, Direction::ToServer);
    }

    #[test]
    fn byte_ranges_of_a_file_make_the_whole_file() {
        assert_eq!(
            content_range_fields(b"bytes 500-1000/146515"),
            (Some(500), Some(1000), Some(146515))
        );
        assert_eq!(
            content_range_fields(b"bytes 0-4/*"),
            (Some(0), Some(4), None)
        );
        assert_eq!(content_range_fields(b"bytes */33"), (None, None, Some(33)));
        for bad in [
            &b"bytes */*"[..],
            b"items 0-4/33",
            b"bytes 0-x/33",
            b"bytes 0-4",
            b"",
        ] {
            assert_eq!(content_range_fields(bad), (None, None, None), "{bad:?}");
        }
        assert_eq!(parse_content_range(b"bytes 9-25/34"), Some((9, 34)));
        assert_eq!(parse_content_range(b"Bytes 0-4/33"), Some((0, 33)));
        assert_eq!(
            parse_content_range(b"bytes 0-67/68"),
            None,
            "the whole file"
        );
        assert_eq!(parse_content_range(b"bytes 5-4/33"), None);
        assert_eq!(parse_content_range(b"bytes 0-4/*"), None);
        assert_eq!(parse_content_range(b"items 0-4/33"), None);
        // Two ranges of one file in one flow, the second first: each response's own file,
        // then the whole file once both are in.
        let part = |range: &str, body: &str| {
            format!("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {range}\r\nContent-Length: {}\r\n\r\n{body}", body.len())
        };
        let resp = [part("5-9/10", "56789"), part("0-4/10", "01234")].concat();
        let ev = run(
            &AppConfig::default(),
            &[
                (Direction::ToServer, b"GET /f HTTP/1.1\r\nHost: x\r\nRange: bytes=5-9\r\n\r\nGET /f HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4\r\n\r\n"),
                (Direction::ToClient, resp.as_bytes()),
            ],
        );
        let f = files(&ev);
        let sizes: Vec<u64> = f.iter().map(|f| f.size).collect();
        assert_eq!(sizes, [5, 5, 10]);
        // The same part again and again keeps at most twice the file.
        let mut r = RangeFile {
            key: Vec::new(),
            name: Vec::new(),
            size: 10,
            parts: Vec::new(),
            have: Vec::new(),
        };
        for _ in 0..100 {
            assert!(r.add(2, b"23456".to_vec()).is_none());
            assert!(r.add(1, b"1234".to_vec()).is_none());
        }
        assert!(r.parts.iter().map(|(_, b)| b.len()).sum::<usize>() <= 20);
        assert_eq!(f[2].filename, b"/f");
        assert_eq!(f[2].state, FileState::Closed);
        assert_eq!(f[2].tx_id, 1, "logged with the response that completed it");
        let mut whole = FileTracker::new(Vec::new(), 0);
        whole.write(b"0123456789");
        let want = whole.finish(
            AppProto::Http,
            1,
            Direction::ToClient,
            FileState::Closed,
            None,
        );
        assert_eq!(f[2].sha256, want.sha256);
    }

    #[test]
    fn byteranges_without_length_stop_the_responses() {
        // zeek's Windows Update 206: multipart/byteranges, no Content-Length, no chunking.
        // libhtp does not read such a body: no file, length 0, nothing parsed after it.
        let resp = b"HTTP/1.1 206 Partial Content\r\nContent-Type: multipart/byteranges; boundary=b\r\n\r\n--b\r\nContent-Range: bytes 0-3/10\r\n\r\nabcd\r\n--b--\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let ev = run(
            &AppConfig::default(),
            &[
                (
                    Direction::ToServer,
                    b"GET /u HTTP/1.1\r\nHost: x\r\n\r\nGET /v HTTP/1.1\r\nHost: x\r\n\r\n",
                ),
                (Direction::ToClient, resp),
            ],
        );
        assert!(files(&ev).is_empty());
        assert_eq!(anomalies(&ev), ["RESPONSE_MULTIPART_BYTERANGES"]);
        let t = txs(&ev);
        assert_eq!(t[0].status, Some(206));
        assert_eq!(t[0].response_len, 0);
        assert!(
            t.iter().all(|t| t.status != Some(200)),
            "no response parsed after it"
        );
    }

    #[test]
    fn content_length_past_i64_is_invalid_and_stops_the_requests() {
        // libhtp reads Content-Length as a signed 64-bit number: 2^64-1 is invalid, the
        // request has no body (no file) and what follows is not parsed as requests.
        let req = b"POST / HTTP/1.1\r\nHost: target\r\nContent-Length: 18446744073709551615\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: target\r\n\r\n";
        let ev = run(&AppConfig::default(), &[(Direction::ToServer, req)]);
        assert!(files(&ev).is_empty());
        assert_eq!(anomalies(&ev), ["INVALID_CONTENT_LENGTH_FIELD_IN_REQUEST"]);
        let t = txs(&ev);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].method, b"POST");
        assert_eq!(
            parse_content_length(b"9223372036854775807"),
            Some(i64::MAX as u64)
        );
        assert_eq!(parse_content_length(b"9223372036854775808"), None);
    }

    #[test]
    fn multipart_upload_cut_by_the_end_of_the_stream() {
        // The client announced more than it sent (zeek's putty.exe upload): the part
        // no delimiter ended is TRUNCATED, not CLOSED; a part that ended stays CLOSED.
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"; filename=\"a.txt\"\r\n\r\nfirst\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"putty.exe\"\r\n\r\nMZ and so on";
        let mut req = format!("POST /up HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n\r\n", body.len() + 1000).into_bytes();
        req.extend_from_slice(body);
        let ev = run(
            &AppConfig::default(),
            &[
                (Direction::ToServer, &req),
                (
                    Direction::ToClient,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                ),
            ],
        );
        let f = files(&ev);
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].size, f[0].state), (5, FileState::Closed));
        assert_eq!((f[1].size, f[1].state), (12, FileState::Truncated));
    }

    #[test]
    fn multipart_upload_past_the_body_limit() {
        // The request body limit (100 KiB) cuts the body the multipart parser sees: the
        // part it cuts is TRUNCATED at the limit minus the bytes before its content.
        let head =
            b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"big.zip\"\r\n\r\n";
        let mut body = head.to_vec();
        body.resize(head.len() + 150_000, b'z');
        body.extend_from_slice(b"\r\n--XyZ--\r\n");
        let mut req = format!("POST /up HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        req.extend_from_slice(&body);
        let ev = run(
            &AppConfig::default(),
            &[
                (Direction::ToServer, &req),
                (
                    Direction::ToClient,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                ),
            ],
        );
        let f = files(&ev);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].size, 102_400 - head.len() as u64);
        assert_eq!(f[0].state, FileState::Truncated);
    }

    #[test]
    fn unmatched_response_and_http09_and_close_delimited() {
        let ev = run(
            &AppConfig::default(),
            &[(
                Direction::ToClient,
                b"HTTP/1.0 200 OK\r\n\r\nbody until close",
            )],
        );
        assert!(anomalies(&ev).contains(&"UNABLE_TO_MATCH_RESPONSE_TO_REQUEST"));
        let t = txs(&ev);
        assert_eq!(t[0].response_len, 16);
        assert_eq!(files(&ev)[0].state, FileState::Closed);
        let ev = run(
            &AppConfig::default(),
            &[
                (Direction::ToServer, b"GET /\r\n"),
                (Direction::ToClient, b"<html>raw</html>"),
            ],
        );
        let t = txs(&ev);
        assert_eq!(t[0].uri_raw, b"/");
        assert!(t[0].protocol.is_empty());
        assert_eq!(t[0].response_body, b"<html>raw</html>");
    }

    #[test]
    fn hostile_headers_are_bounded() {
        // 100k header lines: at most http_max_headers kept, one anomaly.
        let mut req = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..100_000 {
            req.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        let cfg = AppConfig::default();
        let ev = run(&cfg, &[(Direction::ToServer, &req)]);
        assert_eq!(txs(&ev)[0].request_headers.len(), cfg.http_max_headers);
        assert_eq!(
            anomalies(&ev)
                .iter()
                .filter(|e| **e == "REQUEST_TOO_MANY_HEADERS")
                .count(),
            1
        );
        // A 10 MB header line: truncated to http_max_line, anomaly, parsing continues.
        let mut req = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        req.resize(10_000_000, b'a');
        req.extend_from_slice(b"\r\nHost: ok\r\n\r\n");
        let mut p = HttpParser::new(&cfg);
        let mut out = Vec::new();
        for c in req.chunks(65536) {
            p.parse(Direction::ToServer, c, 0, &mut out);
            assert!(p.sides[0].line.len() <= cfg.http_max_line);
        }
        p.close(0, &mut out);
        assert!(anomalies(&out).contains(&"REQUEST_FIELD_TOO_LONG"));
        assert_eq!(txs(&out)[0].host.as_deref(), Some(&b"ok"[..]));
        // Invalid chunk size: anomaly, direction stops, no panic.
        let ev = run(
            &cfg,
            &[
                (Direction::ToServer, b"GET / HTTP/1.1\r\n\r\n"),
                (
                    Direction::ToClient,
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                ),
            ],
        );
        assert!(anomalies(&ev).contains(&"INVALID_RESPONSE_CHUNK_LEN"));
        // Chunk size overflowing u64.
        assert_eq!(parse_chunk_size(b"ffffffffffffffffff"), None);
        assert_eq!(parse_chunk_size(b"1A;name=v"), Some(26));
        // libhtp's leniency (evader's chunked variants, all decoded by Suricata 7.0.10).
        assert_eq!(parse_chunk_size(b"44x"), Some(0x44));
        assert_eq!(parse_chunk_size(b"44,"), Some(0x44));
        assert_eq!(parse_chunk_size(b"44\0"), Some(0x44));
        assert_eq!(parse_chunk_size(b"\x0b44"), Some(0x44));
        assert_eq!(parse_chunk_size(b"\r44"), Some(0x44));
        assert_eq!(parse_chunk_size(b"x44"), None);
        for te in [
            &b"chunked;"[..],
            b"xchunked",
            b"chunked-x",
            b": chunked",
            b"CHUN\0KED",
        ] {
            assert!(is_chunked(te), "{te:?}");
        }
        assert!(!is_chunked(b"identity"));
        assert!(!is_chunked(b"chunke"));
        // Truncated everywhere: every prefix of a valid exchange parses without panic.
        let full = b"POST /p HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        for n in 0..full.len() {
            run(&cfg, &[(Direction::ToServer, &full[..n])]);
        }
    }

    #[test]
    fn binary_junk_is_not_a_flood_of_requests() {
        let mut junk = Vec::new();
        for i in 0..10_000u32 {
            junk.extend_from_slice(&[0, 0, (i % 251) as u8, b'T', 0xff, b' ', b'x', b'\r', b'\n']);
        }
        let ev = run(
            &AppConfig::default(),
            &[
                (Direction::ToServer, b"GET / HTTP/1.1\r\n\r\n"),
                (Direction::ToServer, &junk),
            ],
        );
        assert!(txs(&ev).len() <= 1 + MAX_INVALID_LINES);
    }

    #[test]
    fn big_chunked_body_streams_in_bounded_memory() {
        // Whole-file tracking (no limit): 64 MiB hashed, memory stays bounded.
        let cfg = AppConfig {
            http_file_limit: 0,
            http_response_file_limit: 0,
            ..AppConfig::default()
        };
        let mut p = HttpParser::new(&cfg);
        let mut out = Vec::new();
        p.parse(
            Direction::ToServer,
            b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n",
            0,
            &mut out,
        );
        p.parse(
            Direction::ToClient,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            0,
            &mut out,
        );
        let chunk = vec![b'z'; 1 << 16];
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(&chunk);
        framed.extend_from_slice(b"\r\n");
        // 64 MiB in 64 KiB chunks.
        for _ in 0..1024 {
            p.parse(Direction::ToClient, &framed, 0, &mut out);
            let pend = p.txs.front().unwrap();
            assert!(pend.tx.response_body.len() <= cfg.http_response_body_depth);
            assert!(p.sides[1].line.capacity() <= 4096);
        }
        p.parse(Direction::ToClient, b"0\r\n\r\n", 0, &mut out);
        let f = files(&out);
        assert_eq!(f[0].size, 64 << 20);
        assert_eq!(txs(&out)[0].response_len, 64 << 20);
    }

    #[test]
    fn file_truncated_at_limit_like_suricata() {
        let mut resp = b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n".to_vec();
        resp.resize(resp.len() + 300_000, b'a');
        let ev = run(
            &AppConfig::default(),
            &[
                (Direction::ToServer, b"GET /big.bin HTTP/1.1\r\n\r\n"),
                (Direction::ToClient, &resp),
            ],
        );
        let f = files(&ev);
        assert_eq!((f[0].size, f[0].state), (102_400, FileState::Truncated));
        assert_eq!(txs(&ev)[0].response_len, 300_000);
        // The response limit is the response body limit (Suricata's
        // response-body-limit); the request limit does not apply to downloads.
        let cfg = AppConfig {
            http_file_limit: 1000,
            http_response_file_limit: 200 * 1024,
            ..AppConfig::default()
        };
        let ev = run(
            &cfg,
            &[
                (Direction::ToServer, b"GET /big.bin HTTP/1.1\r\n\r\n"),
                (Direction::ToClient, &resp),
            ],
        );
        let f = files(&ev);
        assert_eq!((f[0].size, f[0].state), (200 * 1024, FileState::Truncated));
    }

    #[test]
    fn gaps() {
        let cfg = AppConfig::default();
        let mut p = HttpParser::new(&cfg);
        let mut out = Vec::new();
        p.parse(
            Direction::ToServer,
            b"GET /g HTTP/1.1\r\n\r\nGET /h HTTP/1.1\r\n\r\n",
            0,
            &mut out,
        );
        p.parse(
            Direction::ToClient,
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
            0,
            &mut out,
        );
        p.gap(Direction::ToClient, 5, &mut out);
        p.parse(Direction::ToClient, b"ij", 0, &mut out);
        p.parse(
            Direction::ToClient,
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            0,
            &mut out,
        );
        let t = txs(&out);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].response_len, 10);
        assert_eq!(t[1].status, Some(404));
        let f = files(&out);
        assert_eq!(f[0].state, FileState::Truncated);
        assert!(f[0].gaps);
        // A gap inside headers: that message is finished, the direction stops.
        let mut p = HttpParser::new(&cfg);
        let mut out = Vec::new();
        p.parse(Direction::ToServer, b"GET /x HTTP/1.1\r\nHo", 0, &mut out);
        p.gap(Direction::ToServer, 100, &mut out);
        p.parse(Direction::ToServer, b"garbage\r\n\r\n", 0, &mut out);
        p.close(0, &mut out);
        assert_eq!(txs(&out).len(), 1);
    }

    #[test]
    fn uri_and_header_helpers() {
        assert_eq!(normalize_uri(b"/a/./b/../c%2Fd?q=%41"), b"/a/c/d?q=%41");
        assert_eq!(normalize_uri(b"http://Host:81/x/../y"), b"/y");
        assert_eq!(normalize_uri(b"/../../etc/passwd"), b"/etc/passwd");
        assert_eq!(
            parse_authority(b"Example.COM:8080"),
            (b"example.com".to_vec(), Some(8080))
        );
        assert_eq!(
            parse_authority(b"[::1]:8065"),
            (b"[::1]".to_vec(), Some(8065))
        );
        assert_eq!(parse_authority(b"host:abc"), (b"host".to_vec(), None));
        assert_eq!(
            disposition_filename(b"attachment; filename=\"a b.exe\""),
            Some(b"a b.exe".to_vec())
        );
        assert_eq!(
            disposition_filename(b"attachment; filename*=UTF-8''%e2%82%ac.txt"),
            Some("€.txt".as_bytes().to_vec())
        );
        // libhtp: the URI ends at the first SP, the protocol is the rest (Suricata 7.0.10
        // logs "GET /uri afterspace HTTP/1.1" as url "/uri", protocol "afterspace HTTP/1.1").
        let rl = parse_request_line(b"GET /a b HTTP/1.1").unwrap();
        assert_eq!((rl.uri, rl.protocol), (&b"/a"[..], &b"b HTTP/1.1"[..]));
        let rl = parse_request_line(b" OPTIONS rtsp://10.2.2.2:8554/ RTSP/1.0").unwrap();
        assert_eq!(
            (rl.method, rl.uri, rl.protocol),
            (
                &b"OPTIONS"[..],
                &b"rtsp://10.2.2.2:8554/"[..],
                &b"RTSP/1.0"[..]
            )
        );
        // No SP: a tab delimits the URI.
        let rl = parse_request_line(b"GET\t/t\tHTTP/1.0").unwrap();
        assert_eq!((rl.uri, rl.protocol), (&b"/t"[..], &b"HTTP/1.0"[..]));
        assert!(parse_request_line(b" \t ").is_none());
        assert!(looks_like_header(b"Host: x"));
        assert!(looks_like_header(b"Host : x"));
        assert!(!looks_like_header(b"GET / HTTP/1.1"));
        assert!(!looks_like_header(b"a b: c"));
        assert!(starts_with_known_method(b"  GET /"));
        assert!(!starts_with_known_method(b"DESCRIBE rtsp://x/ RTSP/1.0"));
        assert!(looks_like_status_line(b"\0 http/1.0 200"));
        assert!(!looks_like_status_line(b"RTSP/1.0 200 OK"));
        assert_eq!(parse_status_line(b"RTSP/1.0 200 OK"), None);
        // libhtp keeps the leading digits: evader's "2x0" is logged as status 2.
        assert_eq!(
            parse_status_line(b"HTTP/1.1 2x0 Bad"),
            Some((&b"HTTP/1.1"[..], Some(2), &b"Bad"[..]))
        );
        assert_eq!(
            parse_status_line(b"HTTP/1.1 OK"),
            Some((&b"HTTP/1.1"[..], Some(0), &b""[..]))
        );
        // sv 127.0.0.1:57228: a control byte instead of the space after the protocol;
        // Suricata logs status 0.
        assert_eq!(
            parse_status_line(b"HTTP/1.1\x10101 Switching Protocols"),
            Some((&b"HTTP/1.1\x10101"[..], Some(0), &b"Protocols"[..]))
        );
        assert_eq!(
            parse_status_line(b"HTTP/1.1 "),
            Some((&b"HTTP/1.1"[..], None, &b""[..]))
        );
    }

    /// The body file of one GET answered by `resp` (sent in one chunk, then in two at
    /// every split point: the result must not depend on where segments end, except where
    /// libhtp itself waits for a byte after CR).
    fn response_file(resp: &[u8]) -> Option<(u64, Vec<u8>)> {
        let ev = run(
            &AppConfig::default(),
            &[
                (Direction::ToServer, b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"),
                (Direction::ToClient, resp),
            ],
        );
        files(&ev).first().map(|f| (f.size, f.filename.clone()))
    }

    const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

    /// Each (response head, body) gives the 68-byte `eicar.txt` file.
    fn each_gives_eicar(cases: &[(String, &[u8])]) {
        for (head, body) in cases {
            let mut resp = head.as_bytes().to_vec();
            resp.extend_from_slice(body);
            assert_eq!(
                response_file(&resp),
                Some((68, b"eicar.txt".to_vec())),
                "{head:?}"
            );
        }
    }

    fn chunked_eicar() -> Vec<u8> {
        let mut b = Vec::new();
        for c in EICAR.chunks(5) {
            b.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            b.extend_from_slice(c);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(b"0\r\n\r\n");
        b
    }

    #[test]
    fn response_header_line_ends_like_libhtp() {
        let chunked = chunked_eicar();
        let disp = "Content-disposition: attachment; filename=\"eicar.txt\"";
        // (head, body): each answer must give the 68-byte eicar.txt.
        let cases: Vec<(String, &[u8])> = vec![
            // A lone CR ends a header line.
            (
                format!("HTTP/1.1 200 ok\r\n{disp}\rTransfer-Encoding: chunked\r\n\r\n"),
                &chunked,
            ),
            // ... and the status line.
            (
                format!("HTTP/1.1 200\rTransfer-Encoding:chunked\r\n{disp}\r\n\r\n"),
                &chunked,
            ),
            (
                format!("HTTP/1.1foobar\rTransfer-Encoding:chunked\r\n{disp}\r\n\r\n"),
                &chunked,
            ),
            // CR-only lines throughout, the block ended by CR LF LF.
            (
                format!("HTTP/1.1 200 ok\r{disp}\rTransfer-Encoding: chunked\rX: y\r\n\n"),
                &chunked,
            ),
            // CR CR LF is no empty line.
            (
                format!("HTTP/1.1 200 ok\r\n{disp}\r\n\r\r\nTransfer-Encoding: chunked\r\n\r\n"),
                &chunked,
            ),
            (
                format!("HTTP/1.1 200 ok\r\n{disp}\r\n\r\r\r\nContent-length: 68\r\n\r\n"),
                EICAR,
            ),
            // LF CR, then CR LF CR LF: one line end and the end of the block.
            (
                format!("HTTP/1.1 200 ok\r\n{disp}\r\nContent-length: 68\n\r\r\n\r\n"),
                EICAR,
            ),
            // A line of one space or tab before LF ends the block when data follows.
            (
                format!("HTTP/1.1 200 ok\r\n{disp}\r\nContent-length: 68\n \n"),
                EICAR,
            ),
            (
                format!("HTTP/1.1 200 ok\r\n{disp}\r\nTransfer-Encoding: chunked\n\t\n"),
                &chunked,
            ),
        ];
        each_gives_eicar(&cases);
    }

    #[test]
    fn response_header_folding_and_repeats_like_libhtp() {
        let chunked = chunked_eicar();
        let disp = "Content-disposition: attachment; filename=\"eicar.txt\"";
        let cases: Vec<(String, &[u8])> = vec![
            // HTTP/1.1: an indented line with a colon after a header with one is a header.
            (format!("HTTP/1.1 200 ok\r\n{disp}\r\nConnection: close\r\n Transfer-Encoding: chunked\r\n\r\n"), &chunked),
            (format!("HTTP/1.1 200 ok\r\nConnection: close\r\n\tTransfer-Encoding: chunked\r\n{disp}\r\n\r\n"), &chunked),
            // A NUL folds like a space: "Transfer-Encoding:\0chunked".
            (format!("HTTP/1.1 200 ok\r\n{disp}\r\nTransfer-Encoding:\n\0chunked\r\n\r\n"), &chunked),
            // A folded value without a colon continues the header.
            (format!("HTTP/1.1 200 ok\r\n{disp}\r\nContent-length: \r\n 68\r\nContent-length: 136\r\n\r\n"), EICAR),
            // Repeated headers are joined: "lalala, chunked" is chunked.
            (format!("HTTP/1.1 200 ok\r\n{disp}\r\nTransfer-Encoding: lalala\r\nTransfer-Encoding: chunked\r\nContent-length: 68\r\n\r\n"), &chunked),
            // The first Content-Length counts.
            (format!("HTTP/1.1 200 ok\r\n{disp}\r\nContent-length: 68\r\nContent-length: 10\r\n\r\n"), EICAR),
            // 1xx, 204 and 304 with a length have a body after all.
            (format!("HTTP/1.1 204 ok\r\n{disp}\r\nContent-length: 68\r\n\r\n"), EICAR),
            (format!("HTTP/1.1 101 ok\r\n{disp}\r\nContent-length: 68\r\n\r\n"), EICAR),
            (format!("HTTP/1.1 100 ok\r\n{disp}\r\nContent-length: 68\r\n\r\n"), EICAR),
            (format!("HTTP/1.1 304 ok\r\n{disp}\r\nTransfer-Encoding: chunked\r\n\r\n"), &chunked),
        ];
        each_gives_eicar(&cases);
        // Without a length a 204 has no body, but what follows it in the same chunk of
        // data (here up to the end of the stream) is more of it, as libhtp's RES_FINALIZE
        // reads it; a 101 is a tunnel.
        assert_eq!(
            response_file(b"HTTP/1.1 204 ok\r\n\r\nabc"),
            Some((3, b"/x".to_vec()))
        );
        assert_eq!(response_file(b"HTTP/1.1 101 ok\r\n\r\nabc"), None);
        // The joined value is what detection sees.
        let ev = run(
            &AppConfig::default(),
            &[
                (Direction::ToServer, b"GET / HTTP/1.1\r\n\r\n"),
                (
                    Direction::ToClient,
                    b"HTTP/1.1 200 ok\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 0\r\n\r\n",
                ),
            ],
        );
        assert_eq!(txs(&ev)[0].response_header("x-a"), Some(&b"1, 2"[..]));
    }

    #[test]
    fn response_headers_split_anywhere_and_hostile() {
        let chunked = chunked_eicar();
        let mut resp = b"HTTP/1.1 200 ok\r\nContent-disposition: attachment; filename=\"e\"\rConnection: close\r\n Transfer-Encoding: chunked\r\nX: \0y\r\n\n".to_vec();
        resp.extend_from_slice(&chunked);
        for cut in 1..resp.len() {
            let ev = run(
                &AppConfig::default(),
                &[
                    (Direction::ToServer, b"GET /x HTTP/1.1\r\n\r\n"),
                    (Direction::ToClient, &resp[..cut]),
                    (Direction::ToClient, &resp[cut..]),
                ],
            );
            let f = files(&ev);
            // libhtp reads on after a CR that ends a chunk of data: a split right after
            // the lone CR joins the two lines, so the name runs on; any other split
            // gives the same file.
            if resp[cut - 1] == b'\r' && resp.get(cut) != Some(&b'\n') {
                continue;
            }
            assert_eq!(
                (f[0].size, f[0].filename.as_slice()),
                (68, &b"e"[..]),
                "cut {cut}"
            );
        }
        // Hostile blocks: only CRs, only LF CR pairs, a huge folded header, truncation.
        let cfg = AppConfig::default();
        let mut huge = b"HTTP/1.1 200 ok\r\nX: a\r\n".to_vec();
        for _ in 0..100_000 {
            huge.extend_from_slice(b" b\r\n");
        }
        for resp in [
            vec![b'\r'; 100_000],
            b"\n\r".repeat(50_000),
            huge,
            b"HTTP/1.1 200 ok\r\nA\0:\r\n\0\r\r\r".to_vec(),
        ] {
            let mut p = HttpParser::new(&cfg);
            let mut out = Vec::new();
            p.parse(Direction::ToServer, b"GET / HTTP/1.1\r\n\r\n", 0, &mut out);
            p.parse(Direction::ToClient, b"HTTP/1.1 200 ok\r\n", 0, &mut out);
            p.parse(Direction::ToClient, &resp, 0, &mut out);
            assert!(p.sides[1].line.len() <= cfg.http_max_line);
            assert!(p.sides[1]
                .folded
                .as_ref()
                .is_none_or(|f| f.len() <= cfg.http_max_line));
            p.close(0, &mut out);
        }
    }

    #[test]
    fn bytes_after_a_response_in_its_chunk_are_more_of_its_body() {
        let head = b"HTTP/1.1 200 ok\r\nContent-Length: 3\r\n\r\n";
        let with = |tail: &[u8]| {
            let mut r = head.to_vec();
            r.extend_from_slice(b"abc");
            r.extend_from_slice(tail);
            r
        };
        // Junk up to the end of the stream, a blank line, lines in the same chunk.
        assert_eq!(response_file(&with(b"XXXX")).map(|f| f.0), Some(7));
        assert_eq!(response_file(&with(b"\r\n")).map(|f| f.0), Some(5));
        assert_eq!(
            response_file(&with(b"junk\r\nmore\n")).map(|f| f.0),
            Some(14)
        );
        // A status line starts the next response; data in a later chunk is not body.
        let ev = run(
            &AppConfig::default(),
            &[
                (
                    Direction::ToServer,
                    b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n",
                ),
                (
                    Direction::ToClient,
                    &[
                        &with(b"\r\n")[..],
                        b"HTTP/1.1 200 ok\r\nContent-Length: 2\r\n\r\nok",
                    ]
                    .concat(),
                ),
                (Direction::ToClient, b"later"),
            ],
        );
        let f = files(&ev);
        assert_eq!(
            f.iter().map(|f| (f.tx_id, f.size)).collect::<Vec<_>>(),
            [(0, 5), (1, 2)]
        );
        assert_eq!(txs(&ev).len(), 2);
        // Split anywhere, the same two files.
        let resp = [
            &with(b"\r\n")[..],
            b"HTTP/1.1 200 ok\r\nContent-Length: 2\r\n\r\nok",
        ]
        .concat();
        for cut in 1..resp.len() {
            let ev = run(
                &AppConfig::default(),
                &[
                    (
                        Direction::ToServer,
                        b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n",
                    ),
                    (Direction::ToClient, &resp[..cut]),
                    (Direction::ToClient, &resp[cut..]),
                ],
            );
            let sizes: Vec<u64> = files(&ev).iter().map(|f| f.size).collect();
            // A cut right after the body ends that response with the chunk.
            let want: &[u64] = if cut == head.len() + 3 {
                &[3, 2]
            } else {
                &[5, 2]
            };
            assert_eq!(sizes, want, "cut {cut}");
        }
    }

    #[test]
    fn bytes_after_a_request_in_its_chunk_are_more_of_its_body() {
        // A form POST whose browser adds CR LF after the 22 announced bytes: libhtp's
        // REQ_FINALIZE makes it request body (Suricata's file is 24 bytes); a known method
        // starts the next request.
        let req = b"POST /index.html HTTP/1.1\r\nContent-Length: 22\r\n\r\n\
login=foo&password=bar\r\nGET /next HTTP/1.1\r\n\r\n";
        let ev = run(
            &AppConfig::default(),
            &[
                (Direction::ToServer, req),
                (
                    Direction::ToClient,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                ),
            ],
        );
        let f = files(&ev);
        assert_eq!(
            (f[0].filename.as_slice(), f[0].size, f[0].direction),
            (&b"/index.html"[..], 24, Direction::ToServer)
        );
        let t = txs(&ev);
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].uri_raw, b"/next");
    }

    #[test]
    fn gzip_headers_zlib_refuses_are_skipped_like_libhtp() {
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(EICAR).unwrap();
            e.finish().unwrap()
        };
        let mut variants = Vec::new();
        // Reserved flag bits set.
        for bit in [0x20u8, 0x40, 0x80] {
            let mut g = gz.clone();
            g[3] |= bit;
            variants.push(g);
        }
        // FHCRC with a wrong header CRC.
        let mut g = gz.clone();
        g[3] |= 0x02;
        g.splice(10..10, [0u8, 0]);
        variants.push(g);
        // FEXTRA, FNAME and FCOMMENT.
        let mut g = gz.clone();
        g[3] |= 0x04 | 0x08 | 0x10;
        g.splice(10..10, *b"\x02\x00ABname\0comment\0");
        variants.push(g);
        for g in &variants {
            let mut resp = format!(
                "HTTP/1.1 200 ok\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                g.len()
            )
            .into_bytes();
            resp.extend_from_slice(g);
            assert_eq!(
                response_file(&resp).map(|f| f.0),
                Some(68),
                "{:x?}",
                &g[..12]
            );
        }
        assert_eq!(gzip_header_len(&gz), Some(10));
        assert_eq!(gzip_header_len(&gz[..9]), None);
        assert_eq!(
            gzip_header_len(b"\x1f\x8b\x08\x04\0\0\0\0\0\0\xff\xff"),
            None
        );
        assert_eq!(gzip_header_len(b"\x1f\x8b\x08\x08\0\0\0\0\0\0abc"), None);
    }

    #[test]
    fn two_content_encoding_layers_are_decoded() {
        fn gzip(b: &[u8]) -> Vec<u8> {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(b).unwrap();
            e.finish().unwrap()
        }
        fn deflate(b: &[u8]) -> Vec<u8> {
            let mut e =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(b).unwrap();
            e.finish().unwrap()
        }
        let eicar = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
        // evader's "ce:gzip;ce:gzip" (two headers) and "ce:deflate,gzip" (a list whose
        // order does not match the data: each layer's format is taken from its bytes).
        for (headers, body) in [
            (
                &b"Content-Encoding: gzip\r\nContent-Encoding: gzip\r\n"[..],
                gzip(&gzip(eicar)),
            ),
            (
                &b"Content-Encoding: deflate,gzip\r\n"[..],
                gzip(&deflate(eicar)),
            ),
            (
                &b"Content-Encoding: identity\r\nContent-Encoding: gzip\r\n"[..],
                gzip(eicar),
            ),
        ] {
            let mut resp = b"HTTP/1.1 200 OK\r\n".to_vec();
            resp.extend_from_slice(headers);
            resp.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            resp.extend_from_slice(&body);
            let ev = run(
                &AppConfig::default(),
                &[
                    (Direction::ToServer, b"GET /eicar.txt HTTP/1.1\r\n\r\n"),
                    (Direction::ToClient, &resp),
                ],
            );
            let f = files(&ev);
            assert_eq!(
                f[0].size,
                eicar.len() as u64,
                "{}",
                String::from_utf8_lossy(headers)
            );
            assert_eq!(f[0].state, FileState::Closed);
        }
    }

    #[test]
    fn invalid_response_chunk_length_falls_back_to_body_until_close() {
        // evader "chunked,http10,do_clen": chunked announced, a plain 68-byte body sent,
        // then the connection closes. Suricata 7.0.10 extracts the 68-byte file.
        let eicar = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
        let mut resp =
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 68\r\n\r\n".to_vec();
        resp.extend_from_slice(eicar);
        let ev = run(
            &AppConfig::default(),
            &[
                (Direction::ToServer, b"GET /eicar.txt HTTP/1.1\r\n\r\n"),
                (Direction::ToClient, &resp),
            ],
        );
        assert!(anomalies(&ev).contains(&"INVALID_RESPONSE_CHUNK_LEN"));
        let f = files(&ev);
        assert_eq!((f[0].size, f[0].state), (68, FileState::Closed));

        // evader "finalchunk=0\r" / "finalchunk=0": the last chunk-size line has no LF when
        // the stream ends; Suricata counts it as body of a CLOSED file (70 and 69 bytes).
        for (tail, size) in [(&b"0\r"[..], 70), (b"0", 69)] {
            let mut resp = b"HTTP/1.1 200 ok\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            resp.extend_from_slice(&chunked_eicar()[..chunked_eicar().len() - 5]);
            resp.extend_from_slice(tail);
            let ev = run(
                &AppConfig::default(),
                &[
                    (Direction::ToServer, b"GET /eicar.txt HTTP/1.1\r\n\r\n"),
                    (Direction::ToClient, &resp),
                ],
            );
            let f = files(&ev);
            assert_eq!((f[0].size, f[0].state), (size, FileState::Closed));
        }
    }

    #[test]
    fn missing_protocol_with_headers_is_not_http09() {
        // suricata-verify style "OPTIONS HTTP/1.1" then headers: libhtp parses the headers,
        // and the response is a normal status line (Suricata 7.0.10 logs status 400).
        let ev = run(
            &AppConfig::default(),
            &[
                (
                    Direction::ToServer,
                    b"OPTIONS HTTP/1.1\r\nHost: www.google.com\r\n\r\n",
                ),
                (
                    Direction::ToClient,
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\nno",
                ),
            ],
        );
        let t = txs(&ev);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].method, b"OPTIONS");
        assert_eq!(t[0].uri_raw, b"HTTP/1.1");
        assert_eq!(t[0].host.as_deref(), Some(&b"www.google.com"[..]));
        assert_eq!(t[0].status, Some(400));
        // Only a method: no URI, no "url" in EVE (Suricata 7.0.10: method "GET/HTTP/1.1").
        let ev = run(
            &AppConfig::default(),
            &[(
                Direction::ToServer,
                b"GET/HTTP/1.1\r\nHost: www.google.com\r\n\r\n",
            )],
        );
        let e = txs(&ev)[0].eve();
        assert_eq!(e["http_method"], "GET/HTTP/1.1");
        assert!(e.get("url").is_none());
        // CONNECT with an origin-form target: the target is the hostname, like libhtp.
        let ev = run(
            &AppConfig::default(),
            &[(
                Direction::ToServer,
                b"CONNECT / HTTP/1.1\r\nHost: www.google.com\r\n\r\n",
            )],
        );
        assert_eq!(txs(&ev)[0].eve()["hostname"], "/");
        // A real HTTP/0.9 request: no headers, the response is all body.
        let ev = run(
            &AppConfig::default(),
            &[
                (Direction::ToServer, b"GET /old\r\n"),
                (Direction::ToClient, b"<html>hi</html>"),
            ],
        );
        let t = txs(&ev);
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].status, t[0].response_len), (None, 15));
    }

    #[test]
    fn status_line_while_an_evicted_response_is_read_as_lines_does_not_recurse() {
        // Found by the app_http fuzz target (stack overflow): the response of a transaction
        // evicted by later requests is being read line by line, and a line that looks like
        // a status line arrives while the oldest transaction left is an HTTP/0.9 request,
        // whose answer has no status line. The line is body, not a new status line.
        let cfg = AppConfig {
            max_tx_in_flight: 1,
            ..AppConfig::default()
        };
        let ev = run(
            &cfg,
            &[
                (Direction::ToServer, b"GET /a HTTP/1.1\r\n\r\n"),
                (Direction::ToClient, b"junk\r\nmore\r\nstill"),
                (Direction::ToServer, b"GET /b\r\n"),
                (Direction::ToClient, b" body\r\nHTTP/1.1 200 OK\r\nnext\r\n"),
            ],
        );
        assert!(!txs(&ev).is_empty());
    }

    #[test]
    fn junk_request_without_protocol_is_not_http09() {
        // suricata-verify http-not09-file: binary junk as the request line (no protocol);
        // the answer is a normal response whose body is the file (Suricata 7.0.10 logs
        // fileinfo size 166 there and matches http.response_line "HTTP/1.1 400").
        let body = [b'x'; 20];
        let mut resp = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 20\r\n\r\n".to_vec();
        resp.extend_from_slice(&body);
        let ev = run(
            &AppConfig::default(),
            &[
                (Direction::ToServer, b"\x85\x00\x00%lG\x81 \xd9bl\xb8\r\n"),
                (Direction::ToClient, &resp),
            ],
        );
        let t = txs(&ev);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].status, Some(400));
        assert_eq!(t[0].response_len, 20);
        assert_eq!(files(&ev).len(), 1);
        let a = anomalies(&ev);
        assert!(a.contains(&"REQUEST_LINE_INVALID"), "{a:?}");
        assert!(a.contains(&"REQUEST_LINE_MISSING_PROTOCOL"), "{a:?}");
    }

    #[test]
    fn data_after_a_request_in_the_same_chunk_is_body_unless_a_known_method() {
        // One chunk: a request, then junk lines (not a method libhtp knows), then a
        // pipelined GET. The junk is body of the first request, not transactions.
        let chunk = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n\
PST -0\rContent-Type: x\r\n--\r\n\x00\x00junk\r\n\
GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
        let ev = run(&AppConfig::default(), &[(Direction::ToServer, chunk)]);
        let urls: Vec<_> = txs(&ev).iter().map(|t| t.uri_raw.clone()).collect();
        assert_eq!(urls, vec![b"/a".to_vec(), b"/b".to_vec()]);
        // RTSP-like requests each in their own chunk are each a transaction, whatever the
        // method (Suricata 7 logs DESCRIBE, SETUP, PLAY as http records).
        let ev = run(
            &AppConfig::default(),
            &[
                (
                    Direction::ToServer,
                    b"OPTIONS rtsp://10.2.2.2:8554/ RTSP/1.0\r\nCSeq: 2\r\n\r\n",
                ),
                (
                    Direction::ToServer,
                    b"DESCRIBE rtsp://10.2.2.2:8554/ RTSP/1.0\r\nCSeq: 3\r\n\r\n",
                ),
            ],
        );
        let t = txs(&ev);
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].method, b"DESCRIBE");
        assert_eq!(t[1].protocol, b"RTSP/1.0");
        // Responses: a trailing non-status line in the same chunk is body, not a response
        // without request.
        let ev = run(
            &AppConfig::default(),
            &[
                (Direction::ToServer, b"GET / HTTP/1.1\r\n\r\n"),
                (
                    Direction::ToClient,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\ntrailing junk\r\n",
                ),
            ],
        );
        assert_eq!(txs(&ev).len(), 1);
        assert!(!anomalies(&ev).contains(&"UNABLE_TO_MATCH_RESPONSE_TO_REQUEST"));
    }

    #[test]
    fn raw_header_blocks_keep_spacing_and_line_ends() {
        let req: &[u8] = b"GET / HTTP/1.1\r\nHost:   a.example\nX-Odd :v\r\n\r\n";
        let resp: &[u8] =
            b"HTTP/1.1 200 OK\r\nServer:      x\r\n  folded\r\nContent-Length: 2\r\n\r\nhi";
        let ev = run(
            &AppConfig::default(),
            &[(Direction::ToServer, req), (Direction::ToClient, resp)],
        );
        let t = txs(&ev);
        assert_eq!(t.len(), 1);
        assert_eq!(
            t[0].request_headers_raw,
            b"Host:   a.example\nX-Odd :v\r\n\r\n".to_vec()
        );
        assert_eq!(
            t[0].response_headers_raw,
            b"Server:      x\r\n  folded\r\nContent-Length: 2\r\n\r\n".to_vec()
        );
        // Split anywhere, the same bytes; a huge block is capped.
        let mut chunks: Vec<(Direction, &[u8])> =
            req.chunks(3).map(|c| (Direction::ToServer, c)).collect();
        chunks.extend(resp.chunks(2).map(|c| (Direction::ToClient, c)));
        let ev2 = run(&AppConfig::default(), &chunks);
        let t2 = txs(&ev2);
        assert_eq!(t2[0].request_headers_raw, t[0].request_headers_raw);
        assert_eq!(t2[0].response_headers_raw, t[0].response_headers_raw);
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..5000 {
            big.extend_from_slice(format!("X-{i}: {}\r\n", "v".repeat(20)).as_bytes());
        }
        big.extend_from_slice(b"\r\n");
        let ev3 = run(&AppConfig::default(), &[(Direction::ToServer, &big)]);
        let t3 = txs(&ev3);
        assert!(t3[0].request_headers_raw.len() <= RAW_HEADERS_MAX);
    }
}
