//! `khien sensor`: read pcap/pcapng files or a live interface and write EVE JSON, with
//! Suricata's familiar options (`-r`, `-i`, `-l`, `-k`, `-c`, `--set`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use khien_sensor::capture::{self, LiveConfig};
use khien_sensor::eve::EveWriter;
use khien_sensor::metrics::{parse_addr, MetricsServer};
use khien_sensor::stats::StatsHub;
use khien_sensor::{Sensor, SensorConfig};

#[derive(Debug, Args)]
pub struct SensorArgs {
    /// pcap or pcapng file to read (repeatable; read in order as one run).
    #[arg(short = 'r', value_name = "FILE")]
    read: Vec<PathBuf>,
    /// Live interface to capture from (loopback or an interface in a netns you own).
    #[arg(short = 'i', value_name = "IFACE", conflicts_with = "read")]
    iface: Option<String>,
    /// BPF filter for live capture.
    #[arg(short = 'f', value_name = "BPF", requires = "iface")]
    bpf: Option<String>,
    /// Stop a live capture after this many seconds.
    #[arg(long, value_name = "SECS", requires = "iface")]
    duration: Option<u64>,
    /// Stop a live capture after this many packets.
    #[arg(long, value_name = "N", requires = "iface")]
    max_packets: Option<u64>,
    /// Configuration file (khien.yaml); every setting has a default.
    #[arg(short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Output directory for eve.json.
    #[arg(short = 'l', value_name = "DIR", default_value = ".")]
    outdir: PathBuf,
    /// Checksum validation: none or all (like Suricata's -k).
    #[arg(short = 'k', value_name = "none|all")]
    checksum: Option<String>,
    /// Override one setting, e.g. --set stream.midstream=true (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Worker threads (overrides `workers` in the config).
    #[arg(long)]
    workers: Option<usize>,
    /// Also write EVE records to stdout.
    #[arg(long)]
    stdout: bool,
    /// Rules file to load (repeatable), like Suricata's -S.
    #[arg(short = 'S', value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// threshold.config for the rules (also `--set threshold-file=FILE`).
    #[arg(long, value_name = "FILE")]
    threshold_file: Option<PathBuf>,
    /// Suricata-style YAML whose `vars: {address-groups, port-groups}` (e.g. a
    /// suricata.yaml) override Suricata's default rule variables.
    #[arg(long, value_name = "FILE")]
    vars: Option<PathBuf>,
    /// classification.config (default: beside the first rules file, else
    /// /etc/suricata/classification.config).
    #[arg(long, value_name = "FILE")]
    classification: Option<PathBuf>,
    /// Multi-pattern matcher of the rule prefilters: auto, aho-corasick or hyperscan
    /// (BENCHMARKS.md, Detection, compares them).
    #[arg(
        long,
        value_name = "NAME",
        env = "KHIEN_PREFILTER",
        default_value = "auto"
    )]
    prefilter: khien_detect::Prefilter,
    /// Directory of YARA rules (.yar) to scan extracted files with (also
    /// `files.yara-rules` in the config).
    #[arg(long, value_name = "DIR")]
    yara_rules: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9110; a bare port
    /// listens on loopback). Also `metrics.listen` in the config.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Keep serving /metrics this many seconds after the run ends (final counters).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    metrics_linger: u64,
    /// Ship the EVE records to a collector (base URL, e.g. https://10.0.0.5:8443) while
    /// writing them; the run ends once all are acknowledged.
    #[arg(long, value_name = "URL", requires = "ship_token")]
    ship_to: Option<String>,
    /// The sensor's collector token (`khien collector sensor add`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "KHIEN_SHIP_TOKEN",
        hide_env_values = true
    )]
    ship_token: Option<String>,
    /// CA certificate to trust for --ship-to (the collector's DIR/tls/ca.pem).
    #[arg(long, value_name = "PEM", requires = "ship_to")]
    ship_ca: Option<PathBuf>,
}

pub fn run(a: SensorArgs) -> Result<ExitCode> {
    if a.read.is_empty() && a.iface.is_none() {
        bail!("nothing to read: give -r FILE or -i IFACE");
    }
    let mut sets = a.sets.clone();
    if let Some(k) = &a.checksum {
        sets.push(format!("checksum={k}"));
    }
    if let Some(w) = a.workers {
        sets.push(format!("workers={w}"));
    }
    let mut threshold_file = a.threshold_file.clone();
    sets.retain(|s| match s.strip_prefix("threshold-file=") {
        Some(f) => {
            threshold_file = Some(PathBuf::from(f));
            false
        }
        None => true,
    });
    let mut cfg = SensorConfig::load(a.config.as_deref(), &sets)?;
    if !a.rules.is_empty() {
        cfg.detect = Some(std::sync::Arc::new(load_rules(
            &a.rules,
            threshold_file.as_deref(),
            a.classification.as_deref(),
            a.vars.as_deref(),
            a.prefilter,
            &cfg.action_order,
        )?));
    }
    if a.yara_rules.is_some() {
        cfg.files.yara_rules.clone_from(&a.yara_rules);
    }
    if let Some(dir) = cfg.files.yara_rules.clone() {
        let rules = khien_sensor::yara::YaraRules::compile_dir(&dir)
            .with_context(|| format!("loading YARA rules from {}", dir.display()))?;
        eprintln!("yara: {} rules from {}", rules.len(), dir.display());
        cfg.yara = Some(rules);
    }
    if let Some(dir) = &cfg.files.store_dir {
        khien_sensor::yara::FileStore::new(dir)?;
    }
    if a.metrics.is_some() {
        cfg.metrics.listen.clone_from(&a.metrics);
    }
    let hub = Arc::new(StatsHub::new());
    let metrics = match &cfg.metrics.listen {
        Some(addr) => {
            let srv = MetricsServer::start(parse_addr(addr)?, Arc::clone(&hub))?;
            eprintln!("metrics: listening on http://{}/metrics", srv.local_addr());
            Some(srv)
        }
        None => None,
    };
    std::fs::create_dir_all(&a.outdir)
        .with_context(|| format!("creating {}", a.outdir.display()))?;
    let eve_path = a.outdir.join(&cfg.eve.filename);
    let file =
        File::create(&eve_path).with_context(|| format!("creating {}", eve_path.display()))?;
    let out: Box<dyn Write + Send> = if a.stdout {
        Box::new(Tee {
            a: BufWriter::with_capacity(256 << 10, file),
            b: std::io::stdout(),
        })
    } else {
        Box::new(BufWriter::with_capacity(256 << 10, file))
    };
    let shipper = match (&a.ship_to, &a.ship_token) {
        (Some(to), Some(token)) => Some(super::ship::SensorShipper::start(
            eve_path.clone(),
            to.clone(),
            token.clone(),
            a.ship_ca.clone(),
        )?),
        _ => None,
    };
    let summary = match &a.iface {
        Some(iface) => {
            let live = LiveConfig {
                iface: iface.clone(),
                bpf: a.bpf.clone(),
                snaplen: 65_535,
                promisc: true,
                duration: a.duration.map(Duration::from_secs),
                max_packets: a.max_packets,
                stop: Some(stop_on_signal()?),
            };
            let mut sensor =
                Sensor::new(&cfg, EveWriter::new(out)).with_stats(hub.register(), true);
            capture::run_live(&mut sensor, &live)?
        }
        None => {
            let files: Vec<&std::path::Path> = a.read.iter().map(PathBuf::as_path).collect();
            if cfg.workers > 1 {
                capture::run_files_parallel(&cfg, &files, cfg.workers, out, &hub)?
            } else {
                let mut sensor =
                    Sensor::new(&cfg, EveWriter::new(out)).with_stats(hub.register(), true);
                capture::run_files(&mut sensor, &files)?
            }
        }
    };
    eprintln!(
        "read {} packets, {} bytes; {} flows; {} EVE records to {}; kernel drops {}",
        summary.packets,
        summary.bytes,
        summary.flows,
        summary.eve_records,
        eve_path.display(),
        summary.kernel_drops
    );
    println!("time elapsed {:.3}s", summary.elapsed.as_secs_f64());
    if let Some(shipper) = shipper {
        let s = shipper.finish()?;
        eprintln!(
            "shipped: {} accepted, {} duplicates, {} rejected, {} requests, {} retries",
            s.accepted, s.duplicates, s.rejected, s.requests, s.retries
        );
    }
    if let Some(srv) = metrics {
        if a.metrics_linger > 0 {
            // Flush so that a scraper waiting for the line above sees it now.
            std::io::stdout().flush()?;
            std::thread::sleep(Duration::from_secs(a.metrics_linger));
        }
        srv.shutdown();
    }
    Ok(ExitCode::SUCCESS)
}

/// A flag set by the first SIGINT or SIGTERM, so a live capture ends cleanly: flows are
/// flushed, `eve.json` is complete and a `--ship-to` output ships the rest before exiting.
/// A second signal exits at once (status 130).
fn stop_on_signal() -> Result<Arc<std::sync::atomic::AtomicBool>> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let flag = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("signal runtime")?;
    // Registered here, before capture starts, so no signal is missed.
    let (mut term, mut int) = rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        Ok::<_, std::io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })?;
    let set = flag.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                eprintln!("stopping: finishing flows and EVE (signal again to exit now)");
                set.store(true, Ordering::Relaxed);
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                std::process::exit(130);
            })
        })
        .context("signal thread")?;
    Ok(flag)
}

/// Writes to a file and stdout.
struct Tee<A: Write, B: Write> {
    a: A,
    b: B,
}

impl<A: Write, B: Write> Write for Tee<A, B> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.a.write_all(buf)?;
        self.b.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.a.flush()?;
        self.b.flush()
    }
}

/// Loads and compiles rules files; reports every rule not loaded (parse errors and
/// keywords the engine does not implement) on stderr with its sid.
fn load_rules(
    files: &[PathBuf],
    threshold: Option<&std::path::Path>,
    classification: Option<&std::path::Path>,
    vars: Option<&std::path::Path>,
    prefilter: khien_detect::Prefilter,
    action_order: &[String],
) -> Result<khien_detect::Engine> {
    let mut rs = khien_rules::Ruleset::new(khien_rules::LoadOptions::default());
    for f in files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        rs.add_file(&f.display().to_string(), &text);
    }
    for r in rs.reports() {
        if r.severity == khien_rules::Severity::Error {
            eprintln!("{r}");
        }
    }
    let class_path = classification.map(PathBuf::from).or_else(|| {
        let beside = files.first()?.parent()?.join("classification.config");
        let etc = PathBuf::from("/etc/suricata/classification.config");
        [beside, etc].into_iter().find(|p| p.exists())
    });
    let mut opts = khien_detect::CompileOptions {
        prefilter,
        // Names checked by SensorConfig's validation.
        action_order: action_order
            .iter()
            .filter_map(|a| match a.as_str() {
                "pass" => Some(khien_detect::Action::Pass),
                "drop" => Some(khien_detect::Action::Drop),
                "reject" => Some(khien_detect::Action::Reject),
                "alert" => Some(khien_detect::Action::Alert),
                _ => None,
            })
            .collect(),
        ..Default::default()
    };
    if let Some(p) = vars {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        let given =
            khien_rules::Vars::from_yaml(&text).with_context(|| format!("{}", p.display()))?;
        let mut v = khien_rules::Vars::suricata_defaults();
        v.address.extend(given.address);
        v.port.extend(given.port);
        opts.vars = Some(v);
    }
    if let Some(p) = class_path {
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        opts.classification = khien_rules::config::classification(&text)
            .with_context(|| format!("{}", p.display()))?;
    }
    if let Some(p) = threshold {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        opts.thresholds = khien_rules::config::threshold(&text)
            .with_context(|| format!("{}", p.display()))?
            .into_iter()
            .map(|(_, e)| e)
            .collect();
    }
    let (engine, report) = khien_detect::Engine::compile(&rs, &opts);
    for u in &report.unsupported {
        eprintln!("{u}");
    }
    for (sid, m) in &report.errors {
        eprintln!("sid {sid} not loaded: {m}");
    }
    let c = rs.counts();
    eprintln!(
        "rules: {} loaded into the detection engine, {} not supported, {} failed to compile, {} invalid",
        engine.len(),
        report.unsupported.len(),
        report.errors.len(),
        c.failed
    );
    Ok(engine)
}
