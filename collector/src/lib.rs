//! Khiên collector: authenticated EVE ingest over HTTPS, a durable on-disk spool, and a
//! writer that drains the spool into ClickHouse (managed locally or external).
//!
//! The contract with sensors is Suricata 7 EVE JSON, one record per line; this crate shares no
//! Rust types with the sensor. Data flow:
//!
//! ```text
//! POST /v1/events ─► server (auth, decompress) ─► parsed (parse, enrich, encode rows once)
//!   ─► spool (body as sent, fsync, ack; rows kept in memory) ─► writer ─► ClickHouse tables
//! ```
//!
//! See ARCHITECTURE.md (collector section) for the invariants and the deduplication design.

pub mod assets;
pub mod correlate;
pub mod enrich;
pub mod eve;
pub mod files;
pub mod indicators;
pub mod json;
pub mod managed;
pub mod parsed;
pub mod prefix;
pub mod retention;
pub mod rows;
pub mod schema;
pub mod sensors;
pub mod server;
pub mod service;
pub mod ship;
pub mod spool;
pub mod synth;
pub mod tls;
pub mod writer;

use std::path::PathBuf;

/// Errors of the collector library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory operation failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A ClickHouse request failed.
    #[error("clickhouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    /// A state file could not be parsed.
    #[error("{path}: {reason}")]
    BadFile { path: PathBuf, reason: String },
    /// The managed ClickHouse server could not be started or did not become healthy.
    #[error("managed ClickHouse: {0}")]
    Managed(String),
    /// Certificate generation or loading failed.
    #[error("tls: {0}")]
    Tls(String),
    /// A sensor registry operation was refused (e.g. duplicate name).
    #[error("sensors: {0}")]
    Sensors(String),
    /// The spool is corrupt beyond its torn tail.
    #[error("spool: {0}")]
    Spool(String),
    /// Shipping to the collector failed permanently.
    #[error("ship: {0}")]
    Ship(String),
    /// An operator file (assets, indicators, correlation rules) is invalid.
    #[error("{0}")]
    File(#[from] files::FileError),
}

/// Result alias of the collector library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename, fsync of the directory.
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    if let Some(dir) = path.parent() {
        let d = std::fs::File::open(dir).map_err(io_err(dir))?;
        d.sync_all().map_err(io_err(dir))?;
    }
    Ok(())
}
