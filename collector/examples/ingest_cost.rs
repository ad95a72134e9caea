//! CPU cost per event of ingest's parse-once step (`parsed::parse_lines`: JSON validation,
//! field extraction, RowBinary encoding) over synthetic EVE (every type, Suricata's layout),
//! without enrichment. One thread; reports the thread's CPU time per event
//! (`/proc/thread-self/schedstat`), the best of five passes over a reused output buffer
//! (no page faults after the first).
//!
//! `cargo run --release -p khien-collector --example ingest_cost [EVENTS]`

use std::hint::black_box;

use khien_collector::enrich::Enrichment;
use khien_collector::parsed::{parse_lines, Origin, Parsed};

fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let mut text = String::new();
    for i in 0..n {
        khien_collector::synth::line(&mut text, i);
        text.push('\n');
    }
    let origin = Origin {
        tenant: "bench",
        sensor: "b1",
        received: 1,
    };
    let enrich = Enrichment::default();
    let mut best = u64::MAX;
    let mut out = Parsed::default();
    for _ in 0..5 {
        out.clear();
        let t0 = cpu_ns();
        let report = parse_lines(text.as_bytes(), 0, 0, origin, &enrich, 10, &mut out);
        best = best.min(cpu_ns() - t0);
        assert_eq!(report.rejected, 0);
    }
    black_box(&out);
    assert_eq!(out.events.len() as u64, n);
    println!(
        "{n} events, {:.0} bytes/event: {:.0} ns/event (parse + encode, best of 5)",
        text.len() as f64 / n as f64,
        best as f64 / n as f64
    );
}
