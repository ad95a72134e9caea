//! The collector as a service: what `khien collector serve|stop|query` do, so that the CLI
//! stays glue.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::correlate::{self, Outcome, Rules};
use crate::enrich::{EnrichPaths, Enrichment};
use crate::managed::{self, Managed};
use crate::server::{self, AppState, ServerConfig};
use crate::spool::Spool;
use crate::writer::{self, WriterConfig, WriterStats};
use crate::{io_err, tls, write_atomic, Error, Result};

/// Options of `khien collector serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// External ClickHouse (HTTP URL); `None` runs the managed server under `data_dir`.
    pub clickhouse: Option<String>,
    pub batch_rows: usize,
    pub flush: Duration,
    pub spool_max_bytes: u64,
    pub max_inflight: usize,
    /// Asset inventory and indicator files.
    pub enrich: EnrichPaths,
    /// Correlation rules (`DIR/correlation.yaml` by default; a missing file means none).
    pub correlation: PathBuf,
    /// How often the correlation rules are evaluated.
    pub correlate_every: Duration,
    /// How far back each evaluation looks (seconds).
    pub lookback: u32,
}

impl ServeOptions {
    /// Defaults for `data_dir` and `listen`.
    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> ServeOptions {
        ServeOptions {
            listen,
            clickhouse: None,
            batch_rows: 500_000,
            flush: Duration::from_millis(1000),
            spool_max_bytes: 8 << 30,
            max_inflight: 8,
            enrich: EnrichPaths::for_dir(&data_dir),
            correlation: data_dir.join("correlation.yaml"),
            correlate_every: Duration::from_secs(30),
            lookback: DEFAULT_LOOKBACK,
            data_dir,
        }
    }
}

/// Default look-back of a correlation run: one day.
pub const DEFAULT_LOOKBACK: u32 = 86_400;

/// Loads the correlation rules of `path`; a missing file means no rules.
pub fn load_rules(path: &Path) -> Result<Rules> {
    if path.exists() {
        Ok(Rules::load(path)?)
    } else {
        Ok(Rules::default())
    }
}

/// Evaluates the rules once and stores the new incidents, holding `DIR/correlate.lock` so
/// that the collector's timer and `khien collector correlate` never evaluate at once.
pub async fn correlate_once(
    dir: &Path,
    client: &clickhouse::Client,
    rules: &Rules,
    lookback: u32,
) -> Result<Outcome> {
    let path = dir.join("correlate.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    let p2 = path.clone();
    let lock = tokio::task::spawn_blocking(move || f.lock().map(|()| f).map_err(io_err(p2)))
        .await
        .map_err(|e| Error::Managed(e.to_string()))??;
    let result = correlate::evaluate(client, rules, crate::schema::now_secs(), lookback).await;
    drop(lock);
    result
}

/// `khien collector correlate`: one evaluation against the store of `dir`.
pub async fn correlate_dir(dir: &Path, rules: &Rules, lookback: u32) -> Result<Outcome> {
    let client = managed::client_for(&clickhouse_url(dir)?);
    correlate_once(dir, &client, rules, lookback).await
}

fn pid_path(dir: &Path) -> PathBuf {
    dir.join("collector.pid")
}

/// The ClickHouse URL of a data directory: the external one `serve` was given, else the
/// managed server's.
pub fn clickhouse_url(dir: &Path) -> Result<String> {
    if let Ok(url) = std::fs::read_to_string(dir.join("clickhouse.url")) {
        return Ok(url.trim().to_owned());
    }
    Ok(Managed::prepare(dir)?.url())
}

/// Runs the collector until SIGTERM or SIGINT.
pub async fn serve(opts: ServeOptions) -> Result<()> {
    let dir = &opts.data_dir;
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    if let Some(pid) = managed::read_pid(&pid_path(dir)).filter(|&p| managed::alive(p)) {
        if pid != std::process::id() as i32 {
            return Err(Error::Managed(format!(
                "a collector (pid {pid}) already serves {}",
                dir.display()
            )));
        }
    }
    write_atomic(&pid_path(dir), std::process::id().to_string().as_bytes())?;

    // Operator files first: a mistake in them stops the start with file:line and field.
    let enrich = Arc::new(Enrichment::load(&opts.enrich)?);
    let rules = load_rules(&opts.correlation)?;
    tls::ensure_certs(dir)?;
    let tls = tls::server_config(dir)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let url = match &opts.clickhouse {
        Some(url) => {
            write_atomic(&dir.join("clickhouse.url"), url.as_bytes())?;
            url.clone()
        }
        None => {
            let _ = std::fs::remove_file(dir.join("clickhouse.url"));
            let m = Managed::prepare(dir)?;
            m.start()?;
            m.wait_healthy(Duration::from_secs(60)).await?;
            let url = m.url();
            tokio::spawn(restart_on_crash(m, stop_rx.clone()));
            url
        }
    };
    let client = managed::client_for(&url);
    // An external server may be down at start: keep trying, ingest does not wait for it.
    let mut delay = Duration::from_millis(200);
    loop {
        match crate::schema::migrate(&client).await {
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(error = %e, "cannot apply migrations yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }

    let spool_dir = dir.join("spool");
    let spool = {
        let d = spool_dir.clone();
        let max = opts.spool_max_bytes;
        Arc::new(
            tokio::task::spawn_blocking(move || Spool::open(&d, max))
                .await
                .map_err(|e| Error::Spool(e.to_string()))??,
        )
    };
    let wstats = Arc::new(WriterStats::default());
    let mut wcfg = WriterConfig::for_dir(dir);
    wcfg.batch_rows = opts.batch_rows;
    wcfg.flush = opts.flush;
    wcfg.enrich = enrich.clone();
    if !rules.rules.is_empty() {
        tracing::info!(rules = rules.rules.len(), every = ?opts.correlate_every, "correlation rules loaded");
        tokio::spawn(correlate_loop(
            dir.clone(),
            client.clone(),
            rules,
            opts.correlate_every,
            opts.lookback,
            stop_rx.clone(),
        ));
    }
    let writer = tokio::spawn(writer::run(
        spool.clone(),
        client,
        wcfg,
        wstats.clone(),
        stop_rx.clone(),
    ));

    let mut scfg = ServerConfig::for_dir(dir);
    scfg.max_inflight = opts.max_inflight;
    let state = AppState::new(scfg, spool.clone(), wstats, enrich);
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(io_err(dir))?;
    let addr = listener.local_addr().map_err(io_err(dir))?;
    write_atomic(&dir.join("collector.addr"), addr.to_string().as_bytes())?;
    let server = tokio::spawn(server::serve_tls(
        listener,
        tls,
        server::router(state),
        stop_rx,
    ));
    tracing::info!(%addr, clickhouse = %url, data = %dir.display(), "collector listening on https://{addr}");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(io_err("SIGTERM"))?;
    let mut writer = writer;
    let writer_result = tokio::select! {
        _ = term.recv() => None,
        _ = tokio::signal::ctrl_c() => None,
        r = &mut writer => Some(r),
    };
    tracing::info!("collector stopping");
    let _ = stop_tx.send(true);
    let _ = server.await;
    let result = match writer_result {
        Some(r) => r.map_err(|e| Error::Spool(e.to_string())).and_then(|r| r),
        None => match tokio::time::timeout(Duration::from_secs(30), writer).await {
            Ok(r) => r.map_err(|e| Error::Spool(e.to_string())).and_then(|r| r),
            Err(_) => {
                tracing::warn!("writer did not finish within 30 s; the spool keeps the rest");
                Ok(())
            }
        },
    };
    let _ = std::fs::remove_file(pid_path(dir));
    result
}

/// Restarts the managed ClickHouse when it exits without being stopped (`db stop` removes
/// its pid file first, so a pid file naming a dead process is a crash). Meanwhile the
/// writer keeps retrying and ingest keeps spooling: nothing acknowledged is lost. A server
/// that keeps dying is restarted with a growing pause (up to a minute).
async fn restart_on_crash(m: Managed, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pause = Duration::from_secs(1);
    let mut not_before = tokio::time::Instant::now();
    loop {
        if !next_tick(&mut tick, &mut stop).await {
            return;
        }
        let Some(dead) = m.crashed() else { continue };
        if tokio::time::Instant::now() < not_before {
            continue;
        }
        tracing::warn!(
            pid = dead,
            "managed ClickHouse exited without being stopped; restarting it"
        );
        match m.start() {
            Ok(pid) => match m.wait_healthy(Duration::from_secs(60)).await {
                Ok(()) => tracing::info!(pid, "managed ClickHouse restarted"),
                Err(e) => tracing::warn!(pid, error = %e, "restarted ClickHouse is not healthy"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot restart the managed ClickHouse"),
        }
        not_before = tokio::time::Instant::now() + pause;
        pause = (pause * 2).min(Duration::from_secs(60));
    }
}

/// Waits for the next tick of a periodic task; false once the collector is stopping.
async fn next_tick(tick: &mut tokio::time::Interval, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tick.tick() => {}
        _ = stop.changed() => return false,
    }
    !*stop.borrow()
}

/// Evaluates the correlation rules every `every` until shutdown (first run at start-up).
async fn correlate_loop(
    dir: PathBuf,
    client: clickhouse::Client,
    rules: Rules,
    every: Duration,
    lookback: u32,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if !next_tick(&mut tick, &mut stop).await {
            return;
        }
        match correlate_once(&dir, &client, &rules, lookback).await {
            Ok(o) if !o.new.is_empty() || !o.updated.is_empty() => {
                tracing::info!(
                    new = o.new.len(),
                    updated = o.updated.len(),
                    "correlation: incidents stored"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "correlation run failed; will retry"),
        }
    }
}

/// Stops the collector serving `dir` (SIGTERM, waits) and the managed ClickHouse.
/// Returns (collector was running, ClickHouse was running).
pub fn stop(dir: &Path) -> Result<(bool, bool)> {
    let collector = managed::read_pid(&pid_path(dir))
        .is_some_and(|pid| managed::terminate(pid, Duration::from_secs(90)));
    let _ = std::fs::remove_file(pid_path(dir));
    let ch = dir.join("clickhouse").exists() && Managed::prepare(dir)?.stop();
    Ok((collector, ch))
}

/// Runs a read-only query and returns its result as TSV.
pub async fn query(dir: &Path, sql: &str) -> Result<String> {
    let url = clickhouse_url(dir)?;
    let resp = reqwest::Client::new()
        .post(format!("{url}/?readonly=1"))
        .body(sql.to_owned())
        .send()
        .await
        .map_err(|e| Error::Managed(format!("{url}: {e}")))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| Error::Managed(e.to_string()))?;
    if !status.is_success() {
        return Err(Error::Managed(format!(
            "query failed ({status}): {}",
            text.trim()
        )));
    }
    Ok(text)
}
