//! Fuzz target: one EVE line from a hostile sender. `eve::parse` must never panic, and a
//! parsed record must yield its table row without panicking either.
#![no_main]

use khien_collector::eve::{parse, Family};
use khien_collector::rows::{AlertRow, FlowRow, Meta, OtherRow};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = parse(data) {
        let raw = std::str::from_utf8(data).unwrap_or("");
        let m = Meta {
            event_id: 1,
            batch: 1,
            received: 0,
            tenant: "t",
            sensor: "s",
            asset: None,
            side: "",
        };
        match e.family() {
            Family::Alert => drop(AlertRow::new(&m, &e, raw)),
            Family::Flow => drop(FlowRow::new(&m, &e, raw)),
            _ => drop(OtherRow::new(&m, &e, raw)),
        }
    }
});
