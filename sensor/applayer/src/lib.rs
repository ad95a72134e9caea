//! Khiên application layer: protocol detection and parsers over in-order bytes.
//!
//! A pure library: it does no I/O and knows nothing of packets, flows, TCP reassembly or
//! output files. The sensor (`khien-sensor`) feeds it reassembled stream bytes (or whole UDP
//! datagrams) per direction and turns the [`AppEvent`]s it gets back into EVE records.
//!
//! Invariants:
//! - no parser panics on hostile bytes: no unchecked indexing or slicing of input;
//! - every loop and every buffered length is bounded by [`AppConfig`];
//! - parsers are incremental: any split of a TCP stream yields the same events.

mod dns;
mod file;
mod ftp;
mod http;
mod http2;
mod krb5;
mod nfs;
mod pgsql;
mod probe;
mod smb;
mod smtp;
mod ssh;
mod tls;
mod util;

/// Helpers of the parsers' unit tests.
#[cfg(test)]
mod testing {
    use crate::{AppEvent, FileRecord};

    /// The files among a parser's events.
    pub fn files(ev: &[AppEvent]) -> Vec<&FileRecord> {
        ev.iter()
            .filter_map(|e| match e {
                AppEvent::File(f) => Some(f),
                _ => None,
            })
            .collect()
    }

    /// The names of the anomalies among a parser's events.
    pub fn anomalies(ev: &[AppEvent]) -> Vec<&'static str> {
        ev.iter()
            .filter_map(|e| match e {
                AppEvent::Anomaly { event, .. } => Some(*event),
                _ => None,
            })
            .collect()
    }
}

pub use dns::{DnsQuery, DnsRData, DnsRecord, DnsTx};
pub use file::{FileRecord, FileState};
pub use ftp::FtpTx;
pub use http::{HttpTx, HttpVersion};
pub use http2::HeaderEntry as Http2Header;
pub use krb5::Krb5Tx;
pub use probe::probe;
pub use smtp::{SmtpAttachment, SmtpTx};
pub use ssh::{SshEndpoint, SshTx};
pub use tls::{TlsCert, TlsTx};
pub use util::json_str;

use serde_json::Value;

/// Application protocols, with Suricata's `app_proto` names via [`AppProto::as_str`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AppProto {
    Http,
    /// HTTP/2 over cleartext TCP (prior knowledge or h2c upgrade).
    Http2,
    Dns,
    Tls,
    Ssh,
    Smtp,
    Ftp,
    FtpData,
    /// PostgreSQL (only its SSLRequest, for the switch to TLS).
    Pgsql,
    /// SMB1 and SMB2/3 over the NetBIOS session service.
    Smb,
    /// NFS (v2, v3, v4) over ONC RPC, TCP or UDP.
    Nfs,
    /// Kerberos 5 on port 88, TCP or UDP (message framing only, no EVE record yet).
    Krb5,
    /// Detection ran and found nothing (Suricata's `"failed"`).
    Failed,
}

impl AppProto {
    /// Suricata's `app_proto` name.
    pub fn as_str(self) -> &'static str {
        match self {
            AppProto::Http => "http",
            AppProto::Http2 => "http2",
            AppProto::Dns => "dns",
            AppProto::Tls => "tls",
            AppProto::Ssh => "ssh",
            AppProto::Smtp => "smtp",
            AppProto::Ftp => "ftp",
            AppProto::FtpData => "ftp-data",
            AppProto::Pgsql => "pgsql",
            AppProto::Smb => "smb",
            AppProto::Nfs => "nfs",
            AppProto::Krb5 => "krb5",
            AppProto::Failed => "failed",
        }
    }
}

/// Direction of a chunk of bytes relative to the flow's client and server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    ToServer,
    ToClient,
}

impl Direction {
    /// The index of this direction in per-direction arrays (to server 0, to client 1).
    pub(crate) fn idx(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }
}

/// Transport the bytes came over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

/// Result of [`probe`].
#[derive(Debug, PartialEq, Eq)]
pub enum Probe {
    Match(AppProto),
    /// Not enough bytes to decide; call again with more.
    NeedMore,
    NoMatch,
}

/// Limits that bound memory and work against hostile input. Every field has a default.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// Bytes a stream parser may buffer per direction while waiting for a complete unit
    /// (an HTTP header block, a TLS handshake message, a DNS-over-TCP message, a line).
    pub max_buffer: usize,
    /// HTTP: most header fields kept per message; further ones are counted, not kept.
    pub http_max_headers: usize,
    /// HTTP: longest request/status line or header line.
    pub http_max_line: usize,
    /// HTTP request body bytes kept on the transaction for inspection.
    pub http_request_body_depth: usize,
    /// HTTP response body bytes kept on the transaction for inspection.
    pub http_response_body_depth: usize,
    /// Most bytes produced by gzip/deflate decompression of one body.
    pub decompress_limit: usize,
    /// Most decompressed bytes per compressed byte before decompression gives up.
    pub decompress_max_ratio: usize,
    /// Transactions waiting for their other half (HTTP responses, FTP replies).
    pub max_tx_in_flight: usize,
    /// File bytes kept in [`FileRecord::data`] (for YARA); 0 keeps none.
    pub file_data_limit: usize,
    /// HTTP request files (uploads) are tracked (sized, hashed) up to this many bytes and
    /// then TRUNCATED, as Suricata does at libhtp's request body limit (100 KiB by
    /// default); 0 tracks whole files.
    pub http_file_limit: u64,
    /// The same for response files (downloads): libhtp's response body limit.
    pub http_response_file_limit: u64,
    /// DNS: most resource records parsed per section, and most queries.
    pub dns_max_records: usize,
    /// DNS: most compression pointers followed while reading one name.
    pub dns_max_pointers: usize,
    /// TLS: most certificates kept from a chain.
    pub tls_max_certs: usize,
    /// SMTP/FTP: longest command or reply line, SMTP: most recipients kept.
    pub line_max: usize,
    pub smtp_max_rcpt: usize,
    /// SMTP: most MIME parts tracked per message (and nesting depth of multipart).
    pub smtp_max_parts: usize,
    /// SMB and NFS: most files open (being transferred) at once per flow; opening one more
    /// ends the oldest, truncated.
    pub smb_max_files: usize,
    /// SMB and NFS: most requests waiting for their responses, file ids, trees and (NFS)
    /// file handle names remembered.
    pub smb_max_pending: usize,
    /// SMB and NFS: most out-of-order file bytes held per flow (reads answered out of order);
    /// past it, files with holes end truncated.
    pub smb_max_ooo: usize,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            max_buffer: 256 * 1024,
            http_max_headers: 512,
            http_max_line: 18_000,
            http_request_body_depth: 100 * 1024,
            http_response_body_depth: 100 * 1024,
            decompress_limit: 4 * 1024 * 1024,
            decompress_max_ratio: 2048,
            max_tx_in_flight: 512,
            file_data_limit: 0,
            http_file_limit: 100 * 1024,
            http_response_file_limit: 100 * 1024,
            dns_max_records: 256,
            dns_max_pointers: 32,
            tls_max_certs: 16,
            line_max: 8192,
            smtp_max_rcpt: 256,
            smtp_max_parts: 64,
            smb_max_files: 64,
            smb_max_pending: 4096,
            smb_max_ooo: 16 * 1024 * 1024,
        }
    }
}

/// A new parser for `proto`, or `None` when the protocol has no parser here (e.g. `Failed`).
pub fn new_parser(proto: AppProto, cfg: &AppConfig) -> Option<Box<dyn Parser>> {
    let p: Box<dyn Parser> = match proto {
        AppProto::Dns => Box::new(dns::DnsParser::new(cfg)),
        AppProto::Ssh => Box::new(ssh::SshParser::new(cfg)),
        AppProto::Http => Box::new(http::HttpParser::new(cfg)),
        AppProto::Http2 => Box::new(http2::Http2Parser::new(cfg)),
        AppProto::Tls => Box::new(tls::TlsParser::new(cfg)),
        AppProto::Smtp => Box::new(smtp::SmtpParser::new(cfg)),
        AppProto::Ftp => Box::new(ftp::FtpParser::new(cfg)),
        AppProto::Pgsql => Box::new(pgsql::PgsqlParser::new()),
        AppProto::Smb => Box::new(smb::SmbParser::new(cfg)),
        AppProto::Nfs => Box::new(nfs::NfsParser::new(cfg, Transport::Tcp)),
        AppProto::Krb5 => Box::new(krb5::Krb5Parser::new(cfg, Transport::Tcp)),
        AppProto::FtpData | AppProto::Failed => return None,
    };
    Some(p)
}

/// Like [`new_parser`], telling the parser which transport carries the flow. DNS needs it
/// to tell length-prefixed TCP from UDP datagrams for sure ([`new_parser`] infers it from
/// the first bytes), NFS to know whether RPC record marking frames the messages; other
/// protocols ignore it.
pub fn new_parser_for(proto: AppProto, t: Transport, cfg: &AppConfig) -> Option<Box<dyn Parser>> {
    match proto {
        AppProto::Dns => Some(Box::new(dns::DnsParser::with_transport(cfg, t))),
        AppProto::Nfs => Some(Box::new(nfs::NfsParser::new(cfg, t))),
        AppProto::Krb5 => Some(Box::new(krb5::Krb5Parser::new(cfg, t))),
        _ => new_parser(proto, cfg),
    }
}

/// An incremental application-layer parser for one flow.
pub trait Parser: Send {
    fn proto(&self) -> AppProto;
    /// In-order stream bytes (TCP, any split) or one whole datagram (UDP), in `dir`.
    /// `ts` is the packet timestamp in microseconds since the Unix epoch.
    fn parse(&mut self, dir: Direction, data: &[u8], ts: i64, out: &mut Vec<AppEvent>);
    /// `len` bytes are missing in `dir` (a reassembly gap): resync or give up gracefully.
    fn gap(&mut self, dir: Direction, len: u64, out: &mut Vec<AppEvent>);
    /// End of flow: flush incomplete transactions and files (Suricata logs them too).
    fn close(&mut self, ts: i64, out: &mut Vec<AppEvent>);
    /// The rest of the flow is encrypted (TLS once application data flows, SSH after both
    /// sides' NEWKEYS): the sensor stops inspecting its payload, as Suricata 7 does by
    /// default. Says where the clear part ends relative to the data just parsed.
    fn encrypted(&self) -> Option<ClearUntil> {
        None
    }
}

/// Where the clear part of a flow that turned encrypted ends, relative to the data whose
/// parsing showed it (as Suricata 7 inspects them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClearUntil {
    /// Before that data: TLS's first application data record is ciphertext.
    Before,
    /// After it: the packet with SSH's last NEWKEYS is still inspected.
    After,
}

/// What a parser emits. The sensor wraps each in an EVE record with the common fields.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub enum AppEvent {
    /// A completed (or flushed) transaction.
    Tx(Transaction),
    /// The request side of a transaction is complete and its response is not (HTTP/1):
    /// a snapshot for request-time detection, as Suricata inspects to-server signatures
    /// when the request is parsed. The whole transaction still follows as `Tx`.
    Request(Transaction),
    /// A file seen in a transaction (HTTP body either direction, SMTP attachment).
    File(FileRecord),
    /// An app-layer anomaly with Suricata's app-layer event name.
    Anomaly {
        proto: AppProto,
        event: &'static str,
    },
    /// The flow changes protocol: SMTP STARTTLS or FTP AUTH TLS accepted (`to` is TLS),
    /// an HTTP CONNECT tunnel or 101 Switching Protocols (`to` is `None`: probe again).
    /// This parser ignores the rest of the flow; stream bytes after the current call
    /// belong to the new protocol, and the sensor should hand them to a new parser.
    Upgrade {
        from: AppProto,
        to: Option<AppProto>,
    },
    /// The control channel announced a data connection (FTP RETR/STOR after PORT, EPRT,
    /// PASV or EPSV): the sensor expects a TCP flow between the same two hosts to
    /// `port` and parses it with [`new_ftp_data_parser`].
    Expect(FtpDataSpec),
}

/// An expected FTP data connection and the file it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FtpDataSpec {
    /// The data connection's destination port (the PORT/EPRT port in active mode, the
    /// PASV/EPSV port in passive mode).
    pub port: u16,
    /// The command's argument: the file name Suricata logs.
    pub filename: Vec<u8>,
    /// "RETR" or "STOR".
    pub command: Vec<u8>,
    /// STOR: the file goes from the FTP client to the FTP server.
    pub upload: bool,
    /// Passive mode: the FTP client opens the data connection (else the server does).
    pub passive: bool,
}

impl FtpDataSpec {
    /// The direction of the file on the data connection: the opener of a passive data
    /// connection is the FTP client, of an active one the FTP server.
    pub fn file_direction(&self) -> Direction {
        if self.upload == self.passive {
            Direction::ToServer
        } else {
            Direction::ToClient
        }
    }
}

/// The parser of an expected FTP data connection: the bytes in the file's direction are
/// the file (app_proto "ftp-data", like Suricata's).
pub fn new_ftp_data_parser(spec: &FtpDataSpec, cfg: &AppConfig) -> Box<dyn Parser> {
    Box::new(ftp::FtpDataParser::new(spec, cfg))
}

/// A typed transaction, readable by the detection engine and serialisable to EVE.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub enum Transaction {
    Http(HttpTx),
    /// One HTTP/2 stream, in HTTP terms for detection (no EVE record of its own: Suricata's
    /// configuration logs HTTP/2 streams through their fileinfo records only).
    Http2(HttpTx),
    Dns(DnsTx),
    Tls(TlsTx),
    Ssh(SshTx),
    Smtp(SmtpTx),
    Ftp(FtpTx),
    /// One Kerberos message (no EVE record of its own yet).
    Krb5(Krb5Tx),
}

impl Transaction {
    /// The protocol of this transaction.
    pub fn proto(&self) -> AppProto {
        match self {
            Transaction::Http(_) => AppProto::Http,
            Transaction::Http2(_) => AppProto::Http2,
            Transaction::Dns(_) => AppProto::Dns,
            Transaction::Tls(_) => AppProto::Tls,
            Transaction::Ssh(_) => AppProto::Ssh,
            Transaction::Smtp(_) => AppProto::Smtp,
            Transaction::Ftp(_) => AppProto::Ftp,
            Transaction::Krb5(_) => AppProto::Krb5,
        }
    }

    /// The per-flow transaction number (Suricata's top-level EVE `tx_id`).
    pub fn tx_id(&self) -> u64 {
        match self {
            Transaction::Http(t) | Transaction::Http2(t) => t.tx_id,
            Transaction::Dns(t) => t.tx_id,
            Transaction::Tls(t) => t.tx_id,
            Transaction::Ssh(t) => t.tx_id,
            Transaction::Smtp(t) => t.tx_id,
            Transaction::Ftp(t) => t.tx_id,
            Transaction::Krb5(t) => t.tx_id,
        }
    }

    /// The direction of the packet that completed the transaction (Suricata logs the EVE
    /// record with that packet's addresses: a DNS answer goes server → client).
    pub fn direction(&self) -> Direction {
        match self {
            Transaction::Dns(t) if t.is_response => Direction::ToClient,
            Transaction::Dns(_) => Direction::ToServer,
            _ => Direction::ToServer,
        }
    }

    /// EVE records this transaction produces: (event_type, key, value). Usually one, e.g.
    /// ("http", "http", {"hostname":...,"url":...}); key is the JSON key of the protocol
    /// section inside the EVE record. A DNS query message yields one record per question
    /// (Suricata 7 dns v2 format). Values use Suricata 7's field names and formats.
    pub fn eve(&self) -> Vec<(&'static str, &'static str, Value)> {
        match self {
            Transaction::Http(t) => vec![("http", "http", t.eve())],
            Transaction::Http2(_) => Vec::new(),
            Transaction::Dns(t) => t.eve().into_iter().map(|v| ("dns", "dns", v)).collect(),
            Transaction::Tls(t) => vec![("tls", "tls", t.eve())],
            Transaction::Ssh(t) => vec![("ssh", "ssh", t.eve())],
            Transaction::Smtp(t) => vec![("smtp", "smtp", t.eve())],
            Transaction::Ftp(t) => vec![("ftp", "ftp", t.eve())],
            Transaction::Krb5(_) => Vec::new(),
        }
    }

    /// Further sections Suricata writes into the same EVE record beside the main one:
    /// SMTP records carry `"email": {...}` next to `"smtp"`. Empty for other protocols.
    pub fn eve_extra(&self) -> Vec<(&'static str, Value)> {
        match self {
            Transaction::Smtp(t) => vec![("email", t.eve_email())],
            _ => Vec::new(),
        }
    }
}
