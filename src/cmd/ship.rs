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
    /// Batches on their way before the oldest is acknowledged (1: one at a time).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    in_flight: u16,
}

pub fn run(a: ShipArgs) -> Result<ExitCode> {
    let mut cfg = ShipConfig::new(a.eve, a.to, a.token);
    cfg.ca = a.ca;
    cfg.once = a.once;
    if let Some(s) = a.state {
        cfg.state = s;
    }
    cfg.batch_bytes = a.batch_bytes.max(4096);
    cfg.in_flight = usize::from(a.in_flight);
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

/// The sensor's shipping output: a thread that ships the sensor's EVE file to a collector
/// while the sensor writes it. The EVE file is the on-disk queue (the shipper remembers its
/// offset), so a collector outage only delays shipping; [`SensorShipper::finish`] waits until
/// every line is acknowledged.
pub struct SensorShipper {
    finish: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Result<ship::ShipSummary>>,
}

impl SensorShipper {
    /// Starts shipping `eve` (just created by this run) to `to`.
    pub fn start(
        eve: PathBuf,
        to: String,
        token: String,
        ca: Option<PathBuf>,
    ) -> Result<SensorShipper> {
        let mut cfg = ShipConfig::new(eve, to, token);
        cfg.ca = ca;
        // A new run writes a new file: its offsets start at 0 and it is a new stream.
        match std::fs::remove_file(&cfg.state) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", cfg.state.display()))
            }
            _ => {}
        }
        let run_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        cfg.stream_tag = format!("run-{run_id}-{}", std::process::id());
        let finish = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        cfg.finish = Some(finish.clone());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("tokio runtime")?;
        let thread = std::thread::Builder::new()
            .name("eve-ship".into())
            .spawn(move || rt.block_on(ship::run(&cfg)).context("shipping EVE"))
            .context("starting the shipping thread")?;
        Ok(SensorShipper { finish, thread })
    }

    /// Call once the EVE file is complete and flushed: ships the rest, then returns what was
    /// shipped.
    pub fn finish(self) -> Result<ship::ShipSummary> {
        self.finish
            .store(true, std::sync::atomic::Ordering::Release);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the shipping thread panicked"))?
    }
}
