//! Fault test: `kill -9` the collector in the middle of a 1,000,000-event stream, restart it;
//! afterwards the store holds exactly 1,000,000 events — none lost, none duplicated.

mod collector_common;

use std::time::{Duration, Instant};

use collector_common::*;

const EVENTS: u64 = 1_000_000;

#[test]
fn kill9_during_stream_then_restart_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let _guard = StopOnDrop(dir.clone());
    let mut c = Collector::start(&dir, "127.0.0.1:0");
    let addr = c.addr.clone();
    let token = sensor_add(&dir, "hanoi", "edge-1");
    let eve = tmp.path().join("eve.json");
    let bytes = khien_collector::synth::write_file(&eve, EVENTS).unwrap();
    let state = tmp.path().join("ship-state.json");

    let mut ship = ship_cmd(&eve, &c.url(), &token, &c.ca())
        .arg("--state")
        .arg(&state)
        .args(["--batch-bytes", "1048576"])
        .spawn()
        .unwrap();
    // Kill the collector once about a third of the stream is acknowledged.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let offset = std::fs::read(&state)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["offset"].as_u64())
            .unwrap_or(0);
        if offset > bytes / 3 {
            break;
        }
        assert!(Instant::now() < deadline, "shipping made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    c.kill9();
    eprintln!("killed the collector with SIGKILL");
    std::thread::sleep(Duration::from_secs(2));
    let c = Collector::start(&dir, &addr);

    let status = ship.wait().unwrap();
    assert!(status.success(), "ship --once failed");
    let sql = "SELECT count() FROM events WHERE tenant = 'hanoi'";
    assert_eq!(
        wait_for(&dir, sql, EVENTS, Duration::from_secs(300)),
        EVENTS
    );
    assert_eq!(
        query_u64(&dir, "SELECT uniqExact(event_id) FROM events"),
        EVENTS
    );
    assert_eq!(
        query_u64(&dir, "SELECT count() FROM alert_events"),
        EVENTS / 20
    );
    drop(c);
}
