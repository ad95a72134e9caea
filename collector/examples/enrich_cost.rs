//! Cost of ingest enrichment per event: asset lookup (`Assets::locate`) plus indicator
//! matching (`Indicators::match_event`) over pre-parsed synthetic EVE (every type, Suricata's
//! layout), with an inventory of 600 networks (IPv4 /16 and /24, IPv6 /48) and a feed of
//! 31,000 indicators (IPs, domains, hashes, URLs).
//!
//! `cargo run --release -p khien-collector --example enrich_cost [EVENTS]`

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use khien_collector::assets::Assets;
use khien_collector::indicators::Indicators;
use khien_collector::prefix::Addrs;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(500_000);

    let mut inv = String::from("systems:\n");
    for a in 0..100 {
        let _ = writeln!(
            inv,
            "  - {{agency: A{a}, system: S{a}, level: {}, networks: [172.{a}.0.0/16]}}",
            a % 5 + 1
        );
    }
    for a in 0..250 {
        let _ = writeln!(
            inv,
            "  - {{agency: B{a}, system: T{a}, level: {}, networks: [10.10.{a}.0/24, \"2001:db8:{a:x}::/48\"]}}",
            a % 5 + 1
        );
    }
    let assets = Assets::parse(Path::new("inventory.yaml"), &inv).expect("inventory");

    let mut feed = String::new();
    for i in 0..10_000u32 {
        let _ = writeln!(
            feed,
            "198.{}.{}.{}",
            18 + i / 65_536 % 2,
            i / 256 % 256,
            i % 256
        );
        let _ = writeln!(feed, "host{i}.bad{}.example", i % 97);
        let _ = writeln!(feed, "{:064x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15);
    }
    for i in 0..1_000 {
        let _ = writeln!(feed, "http://dl{i}.bad.example/p/{i}.bin");
    }
    let mut ind = Indicators::default();
    ind.add_list(Path::new("feed.txt"), &feed).expect("feed");

    let mut lines = Vec::with_capacity(n as usize);
    for i in 0..n {
        let mut s = String::new();
        khien_collector::synth::line(&mut s, i);
        lines.push(s);
    }
    let events: Vec<_> = lines
        .iter()
        .map(|l| khien_collector::eve::parse_str(l).expect("synthetic line parses"))
        .collect();

    let mut hits = Vec::new();
    let (mut located, mut matched) = (0u64, 0u64);
    let cpu0 = thread_cpu_ns();
    let start = Instant::now();
    for e in &events {
        // As the writer does: both addresses parsed once, for the inventory and the feed.
        let addrs = Addrs::parse(&e.src_ip, &e.dest_ip);
        if let Some((side, a)) = assets.locate_addrs(&addrs) {
            located += 1;
            black_box((side, a.level));
        }
        hits.clear();
        ind.match_event_at(e, &addrs, &mut hits);
        matched += hits.len() as u64;
        black_box(&hits);
    }
    let el = start.elapsed();
    let cpu = thread_cpu_ns().saturating_sub(cpu0);
    println!(
        "{n} events, {} networks, {} indicators: {:.0} ns/event CPU ({:.0} wall; {located} located, {matched} indicator hits)",
        assets.len(),
        ind.len(),
        cpu as f64 / n as f64,
        el.as_nanos() as f64 / n as f64
    );
}

/// CPU time of this thread (ns on CPU, from /proc/thread-self/schedstat), so that the figure
/// does not count time the shared machine gave to other processes.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
