//! `khien ship`: tails an EVE file (genuine Suricata's or ours) and ships it to a collector.
//!
//! Reads whole lines from the remembered offset, sends them in batches (zstd- or
//! gzip-compressed) with `X-Khien-Stream`/`X-Khien-Offset` so the collector can drop resent
//! lines, and advances the offset (kept in a state file) only after the collector's
//! acknowledgement. Two batches are in flight by default; the later one asks the collector
//! to append it only after the earlier (`X-Khien-Ordered`), so offsets stay in order. 429/503/5xx and connection errors are retried with backoff (honouring
//! `Retry-After`); a rotated file (new inode at the path) is read to its end before the new
//! one is followed; a truncated file starts a new stream.

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{io_err, write_atomic, Error, Result};

/// Body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Shipper settings.
#[derive(Debug, Clone)]
pub struct ShipConfig {
    pub eve: PathBuf,
    /// Collector base URL, e.g. `https://127.0.0.1:8443`.
    pub to: String,
    pub token: String,
    /// CA certificate (PEM) to trust, e.g. the collector's `DIR/tls/ca.pem`.
    pub ca: Option<PathBuf>,
    /// Exit once every line present at the end of the file is acknowledged.
    pub once: bool,
    /// Where the offset is remembered (default: `<eve>.khien-ship.json`).
    pub state: PathBuf,
    /// Uncompressed bytes per request.
    pub batch_bytes: usize,
    pub compression: Compression,
    /// Poll interval when at the end of the file.
    pub poll: Duration,
    /// Set by the writer of the file when it has written its last line: the shipper then
    /// ships to the end and exits, like `once` (the sensor's shipping output uses this).
    pub finish: Option<Arc<AtomicBool>>,
    /// Batches sent before the oldest is acknowledged (1: one at a time).
    pub in_flight: usize,
    /// Appended to the stream id. A writer that recreates its file per run (the sensor) passes
    /// a run id, so a new run is never mistaken for a resend of an earlier one with the same
    /// first line.
    pub stream_tag: String,
}

impl ShipConfig {
    /// Defaults for shipping `eve` to `to` with `token`.
    pub fn new(eve: PathBuf, to: String, token: String) -> ShipConfig {
        let mut state = eve.clone().into_os_string();
        state.push(".khien-ship.json");
        ShipConfig {
            eve,
            to,
            token,
            ca: None,
            once: false,
            state: PathBuf::from(state),
            batch_bytes: 4 << 20,
            compression: Compression::Zstd,
            poll: Duration::from_millis(200),
            finish: None,
            in_flight: 2,
            stream_tag: String::new(),
        }
    }
}

/// What a shipper run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShipSummary {
    pub requests: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub retries: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct State {
    dev: u64,
    ino: u64,
    offset: u64,
    stream: String,
}

#[derive(Debug, Deserialize)]
struct Reply {
    accepted: u64,
    duplicates: u64,
    rejected: u64,
    #[serde(default)]
    errors: Vec<ReplyError>,
}

#[derive(Debug, Deserialize)]
struct ReplyError {
    line: u64,
    reason: String,
}

/// The stream id of the file open as `file`: host, path, device, inode, and a hash of its
/// first line — the same after the state file is lost (so a re-ship is recognised as
/// duplicates), different for a new file that reuses the inode. `None` until the file holds
/// a complete first line.
fn stream_id(
    path: &Path,
    file: &mut std::fs::File,
    dev: u64,
    ino: u64,
    tag: &str,
) -> Result<Option<String>> {
    let mut head = Vec::with_capacity(4096);
    file.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
    file.take(crate::eve::MAX_LINE as u64 + 1)
        .read_to_end(&mut head)
        .map_err(io_err(path))?;
    let Some(end) = memchr::memchr(b'\n', &head) else {
        return Ok(None);
    };
    let first = xxhash_rust::xxh3::xxh3_64(head.get(..end).unwrap_or_default());
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let mut id = format!(
        "{}:{}:{dev}:{ino}:{first:016x}",
        host.trim(),
        path.display()
    );
    if !tag.is_empty() {
        id.push(':');
        id.push_str(tag);
    }
    Ok(Some(id))
}

/// A request on its way: its place in the stream and the task sending it.
struct InFlight {
    offset: u64,
    len: u64,
    req: Arc<Request>,
    task: tokio::task::JoinHandle<Result<(Outcome, Attempts)>>,
}

/// One batch as sent: everything a (re)send needs.
struct Request {
    client: reqwest::Client,
    url: String,
    token: String,
    stream: String,
    offset: u64,
    body: bytes::Bytes,
    encoding: Option<&'static str>,
}

enum Outcome {
    Acked(Reply),
    /// An ordered request the collector would not append before the earlier ones of its
    /// stream (409): send it again once they are acknowledged.
    OutOfOrder,
}

/// Requests made and retried for one batch.
#[derive(Default)]
struct Attempts {
    requests: u64,
    retries: u64,
}

fn spawn_send(
    req: &Arc<Request>,
    ordered: bool,
) -> tokio::task::JoinHandle<Result<(Outcome, Attempts)>> {
    let req = req.clone();
    tokio::spawn(async move { send(&req, ordered).await })
}

/// Ships until the end of the file (`once`) or forever (following rotation). Up to
/// `cfg.in_flight` batches are on their way at once; every one but the oldest asks the
/// collector to append it only after the batches before it (`X-Khien-Ordered`), and the
/// offset advances strictly in order, as acknowledgements of the oldest batch arrive.
pub async fn run(cfg: &ShipConfig) -> Result<ShipSummary> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .connect_timeout(Duration::from_secs(10));
    if let Some(ca) = &cfg.ca {
        let pem = std::fs::read(ca).map_err(io_err(ca))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| Error::Ship(format!("{}: {e}", ca.display())))?;
        builder = builder.add_root_certificate(cert);
    }
    let client = builder.build().map_err(|e| Error::Ship(e.to_string()))?;
    let url = format!("{}/v1/events", cfg.to.trim_end_matches('/'));
    let mut summary = ShipSummary::default();
    let mut inflight: VecDeque<InFlight> = VecDeque::new();
    let result = ship(cfg, &client, &url, &mut summary, &mut inflight).await;
    for f in inflight {
        f.task.abort();
    }
    result.map(|()| summary)
}

async fn ship(
    cfg: &ShipConfig,
    client: &reqwest::Client,
    url: &str,
    summary: &mut ShipSummary,
    inflight: &mut VecDeque<InFlight>,
) -> Result<()> {
    let depth = cfg.in_flight.max(1);
    let mut state: Option<State> = std::fs::read(&cfg.state)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    'files: loop {
        // Open the file at the path (waiting for it to appear unless `once`).
        let mut file = loop {
            match std::fs::File::open(&cfg.eve) {
                Ok(f) => break f,
                Err(e) if cfg.once => {
                    return Err(Error::Io {
                        path: cfg.eve.clone(),
                        source: e,
                    })
                }
                Err(_) => tokio::time::sleep(cfg.poll).await,
            }
        };
        let meta = file.metadata().map_err(io_err(&cfg.eve))?;
        let mut st = match state.take() {
            Some(s) if s.dev == meta.dev() && s.ino == meta.ino() && meta.len() >= s.offset => s,
            _ => State {
                dev: meta.dev(),
                ino: meta.ino(),
                offset: 0,
                stream: String::new(),
            },
        };
        // `st.offset` is what the collector acknowledged; `read_at` what has been sent.
        let mut read_at = st.offset;
        let mut buf: Vec<u8> = Vec::with_capacity(cfg.batch_bytes);
        let mut want = cfg.batch_bytes;
        // The `once` flag as read before the last read that found no complete line.
        let mut at_end: Option<bool> = None;
        loop {
            if inflight.len() < depth && at_end.is_none() {
                // Read the flag before the file: a line written before it was set is then seen.
                let once = cfg.once
                    || cfg
                        .finish
                        .as_ref()
                        .is_some_and(|f| f.load(Ordering::Acquire));
                file.seek(SeekFrom::Start(read_at))
                    .map_err(io_err(&cfg.eve))?;
                buf.clear();
                (&mut file)
                    .take(want as u64)
                    .read_to_end(&mut buf)
                    .map_err(io_err(&cfg.eve))?;
                let complete = match memchr::memrchr(b'\n', &buf) {
                    Some(i) => i + 1,
                    None if buf.len() >= want && want < 2 * crate::eve::MAX_LINE => {
                        want *= 2; // one line longer than a batch
                        continue;
                    }
                    // A final line without newline: a writer is mid-line, or the file ends so.
                    None if once && !buf.is_empty() && buf.len() < want => buf.len(),
                    None => 0,
                };
                want = cfg.batch_bytes;
                if complete == 0 {
                    at_end = Some(once);
                    continue;
                }
                if st.stream.is_empty() {
                    // `None`: only a final line without newline (`once`), shipped without a
                    // stream.
                    if let Some(id) =
                        stream_id(&cfg.eve, &mut file, st.dev, st.ino, &cfg.stream_tag)?
                    {
                        st.stream = id;
                    }
                }
                let chunk = buf.get(..complete).unwrap_or_default();
                let (body, encoding) = compress(cfg.compression, chunk)?;
                let req = Arc::new(Request {
                    client: client.clone(),
                    url: url.to_owned(),
                    token: cfg.token.clone(),
                    stream: st.stream.clone(),
                    offset: read_at,
                    body,
                    encoding,
                });
                // Only a batch with an earlier one still on its way needs ordering (and only
                // within a stream).
                let ordered = !inflight.is_empty() && !req.stream.is_empty();
                inflight.push_back(InFlight {
                    offset: read_at,
                    len: complete as u64,
                    task: spawn_send(&req, ordered),
                    req,
                });
                read_at += complete as u64;
                continue;
            }
            if let Some(front) = inflight.pop_front() {
                let (outcome, attempts) = front
                    .task
                    .await
                    .map_err(|e| Error::Ship(format!("sending task failed: {e}")))??;
                summary.requests += attempts.requests;
                summary.retries += attempts.retries;
                match outcome {
                    Outcome::Acked(reply) => {
                        summary.accepted += reply.accepted;
                        summary.duplicates += reply.duplicates;
                        summary.rejected += reply.rejected;
                        for e in &reply.errors {
                            tracing::warn!(offset = front.offset, line = e.line, reason = %e.reason,
                                "collector rejected a line");
                        }
                        st.offset = front.offset + front.len;
                        let json = serde_json::to_vec(&st).unwrap_or_default();
                        write_atomic(&cfg.state, &json)?;
                    }
                    Outcome::OutOfOrder => {
                        // Everything before it is acknowledged now: send it again, unordered.
                        inflight.push_front(InFlight {
                            task: spawn_send(&front.req, false),
                            ..front
                        });
                    }
                }
                // More may have been written meanwhile.
                at_end = None;
                continue;
            }
            // Nothing on its way and no complete line to send.
            if at_end == Some(true) {
                break 'files;
            }
            at_end = None;
            // At the end: has the file been rotated or truncated?
            match std::fs::metadata(&cfg.eve) {
                Ok(m) if m.dev() != st.dev || m.ino() != st.ino => {
                    tracing::info!(path = %cfg.eve.display(), "EVE file rotated; following the new one");
                    continue 'files;
                }
                Ok(m) if m.len() < st.offset => {
                    tracing::info!(path = %cfg.eve.display(), "EVE file truncated; starting over");
                    continue 'files;
                }
                _ => {}
            }
            tokio::time::sleep(cfg.poll).await;
        }
    }
    Ok(())
}

fn compress(c: Compression, chunk: &[u8]) -> Result<(bytes::Bytes, Option<&'static str>)> {
    Ok(match c {
        Compression::None => (bytes::Bytes::copy_from_slice(chunk), None),
        Compression::Zstd => (
            zstd::bulk::compress(chunk, 1)
                .map_err(|e| Error::Ship(e.to_string()))?
                .into(),
            Some("zstd"),
        ),
        Compression::Gzip => {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(chunk)
                .map_err(|e| Error::Ship(e.to_string()))?;
            (
                enc.finish().map_err(|e| Error::Ship(e.to_string()))?.into(),
                Some("gzip"),
            )
        }
    })
}

/// Sends one batch until the collector answers it: retries 429/503/5xx and connection
/// errors with backoff (honouring `Retry-After`); other refusals are errors.
async fn send(req: &Request, ordered: bool) -> Result<(Outcome, Attempts)> {
    let mut attempts = Attempts::default();
    let mut backoff = Duration::from_millis(200);
    let started = Instant::now();
    loop {
        attempts.requests += 1;
        let mut r = req
            .client
            .post(&req.url)
            .bearer_auth(&req.token)
            .header("content-type", "application/x-ndjson")
            .header("x-khien-stream", &req.stream)
            .header("x-khien-offset", req.offset.to_string())
            .body(req.body.clone());
        if let Some(enc) = req.encoding {
            r = r.header("content-encoding", enc);
        }
        if ordered {
            r = r.header("x-khien-ordered", "1");
        }
        let wait = match r.send().await {
            Ok(resp) if resp.status().is_success() => {
                let reply = resp
                    .json::<Reply>()
                    .await
                    .map_err(|e| Error::Ship(format!("bad reply from the collector: {e}")))?;
                return Ok((Outcome::Acked(reply), attempts));
            }
            Ok(resp) if ordered && resp.status() == reqwest::StatusCode::CONFLICT => {
                return Ok((Outcome::OutOfOrder, attempts));
            }
            Ok(resp) => {
                let status = resp.status();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(Duration::from_secs);
                let text = resp.text().await.unwrap_or_default();
                if status.as_u16() == 429 || status.is_server_error() {
                    tracing::debug!(%status, %text, "collector busy; retrying");
                    retry_after.unwrap_or(backoff)
                } else {
                    return Err(Error::Ship(format!(
                        "collector refused the batch: {status} {text}"
                    )));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot reach the collector; retrying");
                backoff
            }
        };
        attempts.retries += 1;
        if started.elapsed() > Duration::from_secs(10) && attempts.retries.is_multiple_of(20) {
            tracing::warn!(waited = ?started.elapsed(), "collector still unavailable; retrying");
        }
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}
