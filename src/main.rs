//! `khien`: one binary whose subcommands dispatch to the workspace's crates.
//!
//! This file is glue only: argument parsing and logging set-up. Each subcommand lives in
//! `src/cmd/<name>.rs` and calls into its library crate.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

#[derive(Debug, Parser)]
#[command(
    name = "khien",
    version,
    about = "Khiên: security monitoring and cyber range"
)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `khien_sensor=debug`.
    #[arg(long, global = true, env = "KHIEN_LOG", default_value = "info")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Suricata rule tools: check rule files like `suricata -T`.
    #[command(subcommand)]
    Rules(cmd::rules::RulesCommand),
    /// Read pcap/pcapng files or a live interface and write Suricata-compatible EVE JSON.
    Sensor(Box<cmd::sensor::SensorArgs>),
    /// The collector: HTTPS EVE ingest, durable spool, ClickHouse store.
    #[command(subcommand)]
    Collector(cmd::collector::CollectorCommand),
    /// Tail an EVE file and ship it to a collector.
    Ship(cmd::ship::ShipArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log))
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Rules(c) => cmd::rules::run(c),
        Command::Sensor(a) => cmd::sensor::run(*a),
        Command::Collector(c) => cmd::collector::run(c),
        Command::Ship(a) => cmd::ship::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
