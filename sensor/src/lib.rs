//! Khiên sensor: capture, decode, flows, TCP reassembly, app-layer parsing (through
//! `khien-applayer`) and Suricata-compatible EVE output.
//!
//! Pipeline per packet: [`capture`] reads a frame → [`decode::Decoder`] builds a
//! [`decode::Decoded`] view (zero-copy, no allocation) → [`engine::Engine`] finds the flow
//! ([`flow::FlowTable`]), tracks the TCP session and reassembles ([`stream`]), feeds the
//! app-layer parser ([`app`]) and writes EVE ([`eve`]).

pub mod app;
pub mod capture;
pub mod config;
pub mod decode;
pub mod defrag;
pub mod detect;
pub mod engine;
pub mod eve;
pub mod event;
pub mod flow;
pub mod metrics;
pub mod sensor;
pub mod stats;
pub mod stream;
pub mod wire;
pub mod yara;

pub use config::{ConfigError, SensorConfig};
pub use sensor::{RunSummary, Sensor};

/// Errors of a sensor run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SensorError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{path}: {source}")]
    Pcap { path: String, source: pcap::Error },
    #[error("{path}: unsupported link type {dlt}")]
    LinkType { path: String, dlt: i32 },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The reference data directory: `$KHIEN_DATA`, else `../shared/data` beside the repo.
pub fn data_dir() -> String {
    std::env::var("KHIEN_DATA")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data").to_string())
}
