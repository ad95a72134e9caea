//! `khien rules …`: rule tools.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use khien_rules::{config, LoadOptions, Ruleset, Severity, Vars};

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Check rule files like `suricata -T`: print every diagnostic and
    /// `N rules loaded, M failed`; exit 1 if any rule failed.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Rule files, or directories (every `*.rules` in them, sorted).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Suricata-style YAML with `vars: {address-groups, port-groups}` (default: Suricata's
    /// default variables).
    #[arg(long)]
    vars: Option<PathBuf>,
    /// classification.config; unknown classtypes become warnings.
    #[arg(long)]
    classification: Option<PathBuf>,
    /// reference.config; unknown reference systems become warnings.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// threshold.config to validate alongside the rules.
    #[arg(long)]
    threshold: Option<PathBuf>,
    /// Load commented-out rules too, as if they were enabled.
    #[arg(long)]
    include_disabled: bool,
    /// Also print warnings about commented-out rules that would not load.
    #[arg(short, long)]
    verbose: bool,
    /// Print each loaded rule in canonical form instead of diagnostics only.
    #[arg(long)]
    print: bool,
}

fn read(p: &Path) -> Result<String> {
    std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
}

fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading directory {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "rules"))
                .collect();
            v.sort();
            out.extend(v);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

pub fn run(cmd: RulesCommand) -> Result<ExitCode> {
    match cmd {
        RulesCommand::Check(a) => check(a),
    }
}

fn check(a: CheckArgs) -> Result<ExitCode> {
    let mut opts = LoadOptions {
        include_disabled: a.include_disabled,
        ..LoadOptions::default()
    };
    if let Some(p) = &a.vars {
        opts.vars = Vars::from_yaml(&read(p)?).with_context(|| format!("{}", p.display()))?;
    }
    if let Some(p) = &a.classification {
        opts.classification =
            Some(config::classification(&read(p)?).with_context(|| format!("{}", p.display()))?);
    }
    if let Some(p) = &a.reference {
        opts.references =
            Some(config::reference(&read(p)?).with_context(|| format!("{}", p.display()))?);
    }
    let mut threshold_errors = 0;
    if let Some(p) = &a.threshold {
        if let Err(e) = config::threshold(&read(p)?) {
            println!("{}:{}: error[E501]: {}", p.display(), e.line, e.message);
            threshold_errors += 1;
        }
    }
    let files = expand(&a.files)?;
    let started = std::time::Instant::now();
    let mut rs = Ruleset::new(opts);
    for f in &files {
        rs.add_file(&f.display().to_string(), &read(f)?);
    }
    let elapsed = started.elapsed();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    use std::io::Write;
    for r in rs.reports() {
        if r.disabled && r.severity == Severity::Warning && !a.verbose {
            continue;
        }
        writeln!(out, "{r}")?;
    }
    if a.print {
        for r in rs.rules() {
            writeln!(out, "{}", r.rule)?;
        }
    }
    let c = rs.counts();
    writeln!(
        out,
        "{} file(s) in {:.3}s: {} duplicate sid(s); {} commented-out rule(s) not loaded ({} of them invalid)",
        files.len(),
        elapsed.as_secs_f64(),
        c.duplicates,
        if a.include_disabled { 0 } else { c.disabled },
        if a.include_disabled { 0 } else { c.disabled_invalid },
    )?;
    writeln!(out, "{} rules loaded, {} failed", c.loaded, c.failed)?;
    out.flush()?;
    Ok(if c.failed > 0 || threshold_errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
