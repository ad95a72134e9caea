//! `khien collector …`: run the collector, manage its sensors and its ClickHouse, query it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use khien_collector::enrich::{EnrichPaths, Enrichment};
use khien_collector::managed::Managed;
use khien_collector::sensors::Registry;
use khien_collector::service::{self, ServeOptions};

#[derive(Debug, Subcommand)]
pub enum CollectorCommand {
    /// Run the collector: HTTPS ingest, spool, writer, and (unless --clickhouse) a managed
    /// ClickHouse under DIR. Logs a line containing `listening` when ready.
    Serve(ServeArgs),
    /// Stop what `serve` started for DIR (the collector, then its managed ClickHouse).
    Stop(DataArg),
    /// Manage sensors and their tokens.
    #[command(subcommand)]
    Sensor(SensorCommand),
    /// Run a read-only SQL query on the store; prints TSV.
    Query(QueryArgs),
    /// Start, stop or migrate the managed ClickHouse alone.
    #[command(subcommand)]
    Db(DbCommand),
    /// Drop daily partitions older than the retention policy (run it daily, e.g. from a
    /// systemd timer); prints what was dropped.
    Retention(RetentionArgs),
    /// Evaluate the correlation rules once over the store, add the new incidents and update
    /// those whose window gained events (the running collector does this on a timer too);
    /// prints them as TSV: new|updated, id, tenant, rule, key, window start, ATT&CK
    /// techniques, events, linked event ids.
    Correlate(CorrelateArgs),
    /// List the incidents as TSV: id, tenant, rule, type, key field, key, window start and
    /// end, first and last seen, ATT&CK techniques, severity, events, linked event ids.
    Incidents(DataArg),
    /// Validate the asset inventory, indicator files and correlation rules; prints what they
    /// hold and every STIX indicator that cannot be used. Exits 1 on an invalid file.
    Check(FilesArgs),
    /// Write N synthetic EVE lines of every type (Suricata 7 layout) to a file, for
    /// benchmarks and demos.
    Synth {
        /// Number of events.
        #[arg(long)]
        events: u64,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct DataArg {
    /// Data directory (spool, TLS, sensors, managed ClickHouse).
    #[arg(long)]
    data: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    data: DataArg,
    /// Address to listen on for HTTPS ingest.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// External ClickHouse HTTP URL instead of the managed server.
    #[arg(long)]
    clickhouse: Option<String>,
    /// Rows per ClickHouse insert group (a group takes what is waiting, up to this).
    #[arg(long, default_value_t = 500_000)]
    batch_rows: usize,
    /// Longest wait (ms) before a partial group is written.
    #[arg(long, default_value_t = 1000)]
    flush_ms: u64,
    /// Spool size (bytes) past which ingest answers 503.
    #[arg(long, default_value_t = 8 << 30)]
    spool_max_bytes: u64,
    /// Requests processed at once; more get 429.
    #[arg(long, default_value_t = 8)]
    max_inflight: usize,
    #[command(flatten)]
    files: FilesOpts,
    /// Seconds between two evaluations of the correlation rules.
    #[arg(long, default_value_t = 30)]
    correlate_every: u64,
    /// How far back (seconds) each evaluation of the correlation rules looks.
    #[arg(long, default_value_t = service::DEFAULT_LOOKBACK)]
    lookback_secs: u32,
}

/// Where the operator files are (defaults under the data directory).
#[derive(Debug, Args)]
pub struct FilesOpts {
    /// Asset inventory (YAML) [default: DIR/assets.yaml; missing = none].
    #[arg(long)]
    assets: Option<PathBuf>,
    /// Directory of indicator lists (*.txt) and STIX 2.1 bundles (*.json)
    /// [default: DIR/indicators; missing = none].
    #[arg(long)]
    indicators: Option<PathBuf>,
    /// Correlation rules (YAML) [default: DIR/correlation.yaml; missing = none].
    #[arg(long)]
    correlation: Option<PathBuf>,
}

impl FilesOpts {
    fn resolve(&self, dir: &std::path::Path) -> (EnrichPaths, PathBuf) {
        let mut e = EnrichPaths::for_dir(dir);
        if let Some(a) = &self.assets {
            e.assets = a.clone();
        }
        if let Some(i) = &self.indicators {
            e.indicators = i.clone();
        }
        let c = self
            .correlation
            .clone()
            .unwrap_or_else(|| dir.join("correlation.yaml"));
        (e, c)
    }
}

#[derive(Debug, Args)]
pub struct FilesArgs {
    #[command(flatten)]
    data: DataArg,
    #[command(flatten)]
    files: FilesOpts,
}

#[derive(Debug, Args)]
pub struct CorrelateArgs {
    #[command(flatten)]
    data: DataArg,
    /// Correlation rules [default: DIR/correlation.yaml].
    #[arg(long)]
    correlation: Option<PathBuf>,
    /// How far back (seconds) to look.
    #[arg(long, default_value_t = service::DEFAULT_LOOKBACK)]
    lookback_secs: u32,
}

#[derive(Debug, Subcommand)]
pub enum SensorCommand {
    /// Register a sensor; prints its token (shown once) as the last line.
    Add {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
    },
    /// Revoke a sensor's token.
    Revoke {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        name: String,
    },
    /// List sensors (name, tenant, revoked).
    List(DataArg),
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    data: DataArg,
    /// The SQL (read-only).
    sql: String,
}

#[derive(Debug, Args)]
pub struct RetentionArgs {
    #[command(flatten)]
    data: DataArg,
    /// Days kept for every tenant without its own --tenant-days.
    #[arg(long)]
    default_days: Option<u32>,
    /// Per-tenant days, as TENANT=DAYS (repeatable).
    #[arg(long, value_parser = parse_tenant_days)]
    tenant_days: Vec<(String, u32)>,
}

fn parse_tenant_days(s: &str) -> Result<(String, u32), String> {
    let (t, d) = s.split_once('=').ok_or("expected TENANT=DAYS")?;
    Ok((
        t.to_owned(),
        d.parse().map_err(|e| format!("days `{d}`: {e}"))?,
    ))
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Start the managed ClickHouse and apply migrations.
    Start(DataArg),
    /// Stop the managed ClickHouse.
    Stop(DataArg),
}

/// Keeps freed multi-megabyte buffers (request bodies, parsed rows, INSERT bodies) in the
/// heap instead of returning them to the kernel: with glibc's defaults each such buffer is a
/// fresh `mmap` whose pages are faulted in and zeroed again, which cost the collector ~15% of
/// its CPU per event (BENCHMARKS.md, collector). The trim threshold only covers the main
/// heap: a thread's arena deletes a whole 64 MiB heap as soon as it is empty unless the top
/// pad is that large, and the writer frees on another thread what ingest's threads allocated,
/// so heaps emptied and were re-created (and re-faulted) every few batches.
/// Two arenas, not glibc's eight per core: rows are allocated by whichever ingest thread
/// parsed them and freed by the writer, so with one arena per thread each arena grows to its
/// own peak and the sum, all of it first-touched (zeroed) memory, exceeds the real working
/// set (4M-event runs: peak RSS 678–713 → 531–561 MiB).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(
    unsafe_code,
    reason = "one FFI call to glibc's mallopt, which has no safe binding in std"
)]
fn keep_freed_memory() {
    extern "C" {
        fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
    }
    const M_TRIM_THRESHOLD: std::ffi::c_int = -1;
    const M_TOP_PAD: std::ffi::c_int = -2;
    const M_MMAP_THRESHOLD: std::ffi::c_int = -3;
    const M_ARENA_MAX: std::ffi::c_int = -8;
    // SAFETY: mallopt only changes allocator parameters; called before any other thread
    // exists. Failure (0) leaves glibc's defaults, which are merely slower.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 1 << 30);
        mallopt(M_TRIM_THRESHOLD, std::ffi::c_int::MAX);
        mallopt(M_TOP_PAD, 64 << 20);
        mallopt(M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")
}

pub fn run(cmd: CollectorCommand) -> Result<ExitCode> {
    match cmd {
        CollectorCommand::Serve(a) => {
            keep_freed_memory();
            let mut opts = ServeOptions::new(a.data.data, a.listen);
            opts.clickhouse = a.clickhouse;
            opts.batch_rows = a.batch_rows;
            opts.flush = Duration::from_millis(a.flush_ms);
            opts.spool_max_bytes = a.spool_max_bytes;
            opts.max_inflight = a.max_inflight;
            let (enrich, correlation) = a.files.resolve(&opts.data_dir);
            opts.enrich = enrich;
            opts.correlation = correlation;
            opts.correlate_every = Duration::from_secs(a.correlate_every.max(1));
            opts.lookback = a.lookback_secs;
            runtime()?
                .block_on(service::serve(opts))
                .context("collector")?;
        }
        CollectorCommand::Stop(d) => {
            let (c, ch) = service::stop(&d.data)?;
            println!("collector: {}", if c { "stopped" } else { "not running" });
            println!("clickhouse: {}", if ch { "stopped" } else { "not running" });
        }
        CollectorCommand::Sensor(SensorCommand::Add { data, tenant, name }) => {
            let token = Registry::add(&data.data, &tenant, &name)?;
            println!("sensor `{name}` of tenant `{tenant}` added; its token (shown once):");
            println!("{token}");
        }
        CollectorCommand::Sensor(SensorCommand::Revoke { data, name }) => {
            Registry::revoke(&data.data, &name)?;
            println!("sensor `{name}` revoked");
        }
        CollectorCommand::Sensor(SensorCommand::List(d)) => {
            for s in Registry::load(&d.data)?.sensors {
                println!(
                    "{}\t{}\t{}",
                    s.name,
                    s.tenant,
                    if s.revoked { "revoked" } else { "active" }
                );
            }
        }
        CollectorCommand::Query(q) => {
            let out = runtime()?.block_on(service::query(&q.data.data, &q.sql))?;
            print!("{out}");
        }
        CollectorCommand::Db(DbCommand::Start(d)) => {
            let m = Managed::prepare(&d.data)?;
            let pid = m.start()?;
            runtime()?.block_on(async {
                m.wait_healthy(Duration::from_secs(60)).await?;
                let client = khien_collector::managed::client_for(&m.url());
                khien_collector::schema::migrate(&client).await
            })?;
            println!("clickhouse: running (pid {pid}) at {}", m.url());
        }
        CollectorCommand::Retention(a) => {
            let policy = khien_collector::retention::Policy {
                default_days: a.default_days,
                tenant_days: a.tenant_days.into_iter().collect(),
            };
            let url = service::clickhouse_url(&a.data.data)?;
            let client = khien_collector::managed::client_for(&url);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            let dropped =
                runtime()?.block_on(khien_collector::retention::apply(&client, &policy, now))?;
            for d in &dropped {
                println!("dropped\t{}\t{}\t{}", d.table, d.tenant, d.day);
            }
            println!("{} partitions dropped", dropped.len());
        }
        CollectorCommand::Correlate(a) => {
            let path = a
                .correlation
                .unwrap_or_else(|| a.data.data.join("correlation.yaml"));
            let rules = khien_collector::correlate::Rules::load(&path)?;
            let outcome = runtime()?.block_on(service::correlate_dir(
                &a.data.data,
                &rules,
                a.lookback_secs,
            ))?;
            let new = outcome.new.iter().map(|i| ("new", i));
            for (status, i) in new.chain(outcome.updated.iter().map(|i| ("updated", i))) {
                println!(
                    "{status}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    i.id,
                    i.tenant,
                    i.rule,
                    i.key,
                    i.window_start,
                    i.attack.join(","),
                    i.events,
                    i.event_ids.join(",")
                );
            }
            eprintln!(
                "{} rules evaluated, {} new incidents, {} updated",
                rules.rules.len(),
                outcome.new.len(),
                outcome.updated.len()
            );
        }
        CollectorCommand::Incidents(d) => {
            let out = runtime()?.block_on(service::query(
                &d.data,
                khien_collector::correlate::LIST_SQL,
            ))?;
            print!("{out}");
        }
        CollectorCommand::Check(a) => {
            let (enrich, correlation) = a.files.resolve(&a.data.data);
            let e = Enrichment::load(&enrich)?;
            let rules = service::load_rules(&correlation)?;
            println!(
                "assets: {} networks ({})",
                e.assets.len(),
                enrich.assets.display()
            );
            println!(
                "indicators: {} loaded, {} unsupported ({})",
                e.indicators.len(),
                e.indicators.unsupported().len(),
                enrich.indicators.display()
            );
            for u in e.indicators.unsupported() {
                println!("unsupported\t{}\t{}", u.id, u.reason);
            }
            println!(
                "correlation: {} rules ({})",
                rules.rules.len(),
                correlation.display()
            );
        }
        CollectorCommand::Synth { events, out } => {
            let bytes = khien_collector::synth::write_file(&out, events)
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "{events} events, {bytes} bytes written to {}",
                out.display()
            );
        }
        CollectorCommand::Db(DbCommand::Stop(d)) => {
            let stopped = Managed::prepare(&d.data)?.stop();
            println!(
                "clickhouse: {}",
                if stopped { "stopped" } else { "not running" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
