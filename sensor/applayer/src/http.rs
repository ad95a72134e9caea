//! HTTP/1.x: request and response lines, headers, bodies (Content-Length, chunked,
//! close-delimited), gzip/deflate decoding, pipelining, files.

use serde_json::{json, Map, Value};

use crate::util::json_str;

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
        m.insert("url".into(), json_str(&self.uri_raw).into());
        if let Some(ua) = &self.user_agent {
            m.insert("http_user_agent".into(), json_str(ua).into());
        }
        if let Some(xff) = self.request_header("x-forwarded-for") {
            m.insert("xff".into(), json_str(xff).into());
        }
        if let Some(ct) = &self.content_type {
            m.insert("http_content_type".into(), json_str(ct).into());
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
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v.as_slice())
}
