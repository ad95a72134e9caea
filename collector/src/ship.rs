//! `khien ship`: tails an EVE file (genuine Suricata's or ours) and ships it to a collector.
//!
//! Reads whole lines from the remembered offset, sends them in batches (zstd- or
//! gzip-compressed) with `X-Khien-Stream`/`X-Khien-Offset` so the collector can drop resent
//! lines, and advances the offset (kept in a state file) only after the collector's
//! acknowledgement. 429/503/5xx and connection errors are retried with backoff (honouring
//! `Retry-After`); a rotated file (new inode at the path) is read to its end before the new
//! one is followed; a truncated file starts a new stream.

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

/// Ships until the end of the file (`once`) or forever (following rotation).
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
        let mut buf: Vec<u8> = Vec::with_capacity(cfg.batch_bytes);
        let mut want = cfg.batch_bytes;
        loop {
            // Read the flag before the file: a line written before it was set is then seen.
            let once = cfg.once
                || cfg
                    .finish
                    .as_ref()
                    .is_some_and(|f| f.load(Ordering::Acquire));
            file.seek(SeekFrom::Start(st.offset))
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
                if once {
                    break 'files;
                }
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
                continue;
            }
            if st.stream.is_empty() {
                // `None`: only a final line without newline (`once`), shipped without a stream.
                if let Some(id) = stream_id(&cfg.eve, &mut file, st.dev, st.ino, &cfg.stream_tag)? {
                    st.stream = id;
                }
            }
            let chunk = buf.get(..complete).unwrap_or_default();
            let reply = send(&client, &url, cfg, &st, chunk, &mut summary).await?;
            summary.accepted += reply.accepted;
            summary.duplicates += reply.duplicates;
            summary.rejected += reply.rejected;
            for e in &reply.errors {
                tracing::warn!(offset = st.offset, line = e.line, reason = %e.reason,
                    "collector rejected a line");
            }
            st.offset += complete as u64;
            let json = serde_json::to_vec(&st).unwrap_or_default();
            write_atomic(&cfg.state, &json)?;
        }
    }
    Ok(summary)
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    cfg: &ShipConfig,
    st: &State,
    chunk: &[u8],
    summary: &mut ShipSummary,
) -> Result<Reply> {
    let (body, encoding) = match cfg.compression {
        Compression::None => (chunk.to_vec(), None),
        Compression::Zstd => (
            zstd::bulk::compress(chunk, 1).map_err(|e| Error::Ship(e.to_string()))?,
            Some("zstd"),
        ),
        Compression::Gzip => {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(chunk)
                .map_err(|e| Error::Ship(e.to_string()))?;
            (
                enc.finish().map_err(|e| Error::Ship(e.to_string()))?,
                Some("gzip"),
            )
        }
    };
    let mut backoff = Duration::from_millis(200);
    let started = Instant::now();
    loop {
        summary.requests += 1;
        let mut req = client
            .post(url)
            .bearer_auth(&cfg.token)
            .header("content-type", "application/x-ndjson")
            .header("x-khien-stream", &st.stream)
            .header("x-khien-offset", st.offset.to_string())
            .body(body.clone());
        if let Some(enc) = encoding {
            req = req.header("content-encoding", enc);
        }
        let wait = match req.send().await {
            Ok(resp) if resp.status().is_success() => {
                return resp
                    .json::<Reply>()
                    .await
                    .map_err(|e| Error::Ship(format!("bad reply from the collector: {e}")));
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
        summary.retries += 1;
        if started.elapsed() > Duration::from_secs(10) && summary.retries.is_multiple_of(20) {
            tracing::warn!(waited = ?started.elapsed(), "collector still unavailable; retrying");
        }
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}
