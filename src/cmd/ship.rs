//! `khien ship`: tail an EVE file and ship it to a collector.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use khien_collector::ship::{self, Compression, ShipConfig};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Codec {
    None,
    Gzip,
    Zstd,
}

#[derive(Debug, Args)]
pub struct ShipArgs {
    /// The EVE file to tail (follows rotation; the offset is remembered).
    #[arg(long)]
    eve: PathBuf,
    /// Collector base URL, e.g. https://127.0.0.1:8443
    #[arg(long)]
    to: String,
    /// The sensor's bearer token (`khien collector sensor add`).
    #[arg(long, env = "KHIEN_TOKEN")]
    token: String,
    /// CA certificate to trust (the collector's DIR/tls/ca.pem).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Exit 0 once every line of the file has been acknowledged.
    #[arg(long)]
    once: bool,
    /// State file holding the offset (default: <EVE>.khien-ship.json).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Uncompressed bytes per request.
    #[arg(long, default_value_t = 4 << 20)]
    batch_bytes: usize,
    /// Body compression.
    #[arg(long, value_enum, default_value = "zstd")]
    compression: Codec,
}

pub fn run(a: ShipArgs) -> Result<ExitCode> {
    let mut cfg = ShipConfig::new(a.eve, a.to, a.token);
    cfg.ca = a.ca;
    cfg.once = a.once;
    if let Some(s) = a.state {
        cfg.state = s;
    }
    cfg.batch_bytes = a.batch_bytes.max(4096);
    cfg.compression = match a.compression {
        Codec::None => Compression::None,
        Codec::Gzip => Compression::Gzip,
        Codec::Zstd => Compression::Zstd,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let s = rt.block_on(ship::run(&cfg)).context("ship")?;
    eprintln!(
        "shipped: {} accepted, {} duplicates, {} rejected, {} requests, {} retries",
        s.accepted, s.duplicates, s.rejected, s.requests, s.retries
    );
    Ok(ExitCode::SUCCESS)
}
