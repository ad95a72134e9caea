//! Fuzz target: a request body from a hostile sender. `parsed::parse_lines` (line split,
//! `eve::parse`, row encoding) must never panic; every kept event's row must end with its
//! line as sent (trimmed), every line is kept, rejected or a duplicate, and a re-parse with
//! a cutoff keeps exactly the events at or past it.
#![no_main]

use khien_collector::enrich::Enrichment;
use khien_collector::parsed::{parse_lines, Origin, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let origin = Origin {
        tenant: "t",
        sensor: "s",
        received: 0,
    };
    let enrich = Enrichment::default();
    let mut p = Parsed::default();
    let report = parse_lines(data, 1000, 0, origin, &enrich, 5, &mut p);
    assert_eq!(report.duplicates, 0);
    assert!(report.errors.len() <= 5 && report.errors.len() <= report.rejected);
    for e in &p.events {
        let at = (e.offset - 1000) as usize;
        let line = &data[at..];
        let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
        assert_eq!(p.raw(e), line.trim_ascii());
        assert!(p.row(e).ends_with(p.raw(e)));
    }
    if let Some(mid) = p.events.get(p.events.len() / 2).map(|e| e.offset) {
        let mut q = Parsed::default();
        parse_lines(data, 1000, mid, origin, &enrich, 5, &mut q);
        let kept = p.events.iter().filter(|e| e.offset >= mid).count();
        assert_eq!(q.events.len(), kept);
    }
});
