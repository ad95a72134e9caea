//! Fault tests: ClickHouse is stopped for 60 s in the middle of a 1,000,000-event stream; the
//! collector keeps acknowledging into its spool and catches up afterwards. The store then
//! holds exactly 1,000,000 events — none lost, none duplicated. And the managed ClickHouse
//! killed with SIGKILL mid-stream is restarted by the collector, again with nothing lost.

mod collector_common;

use std::process::Command;
use std::time::{Duration, Instant};

use collector_common::*;

const EVENTS: u64 = 1_000_000;

#[test]
fn clickhouse_down_60s_during_stream_exactly_once() {
    let mut s = Streaming::start(EVENTS, 5);
    let dir = s.dir.clone();
    let out = khien()
        .args(["collector", "db", "stop", "--data"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("stopped"));
    let down = Instant::now();
    eprintln!("stopped ClickHouse");
    // Ingest goes on while the store is down.
    let status = s.ship.wait().unwrap();
    assert!(status.success(), "ship --once failed");
    eprintln!(
        "stream acknowledged {:?} after ClickHouse went down",
        down.elapsed()
    );
    std::thread::sleep(Duration::from_secs(60).saturating_sub(down.elapsed()));
    let out = khien()
        .args(["collector", "db", "start", "--data"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("restarted ClickHouse after {:?}", down.elapsed());

    let sql = "SELECT count() FROM events WHERE tenant = 'hue'";
    assert_eq!(
        wait_for(&dir, sql, EVENTS, Duration::from_secs(300)),
        EVENTS
    );
    assert_eq!(
        query_u64(&dir, "SELECT uniqExact(event_id) FROM events"),
        EVENTS
    );
    drop(s);
}

/// A collector (tenant `hue`) and a `khien ship --once` of `n` synthetic events to it, in
/// 1 MiB requests, returned once a `1/part` of the file is acknowledged.
struct Streaming {
    /// Kept running until the test ends; dropped first.
    _collector: Collector,
    ship: std::process::Child,
    dir: std::path::PathBuf,
    _guard: StopOnDrop,
    _tmp: tempfile::TempDir,
}

impl Streaming {
    fn start(n: u64, part: u64) -> Streaming {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let guard = StopOnDrop(dir.clone());
        let c = Collector::start(&dir, "127.0.0.1:0");
        let token = sensor_add(&dir, "hue", "edge-1");
        let eve = tmp.path().join("eve.json");
        let bytes = khien_collector::synth::write_file(&eve, n).unwrap();
        let state = tmp.path().join("ship-state.json");
        let ship = ship_cmd(&eve, &c.url(), &token, &c.ca())
            .arg("--state")
            .arg(&state)
            .args(["--batch-bytes", "1048576"])
            .spawn()
            .unwrap();
        wait_shipped_past(&state, bytes / part);
        Streaming {
            _collector: c,
            ship,
            dir,
            _guard: guard,
            _tmp: tmp,
        }
    }
}

/// Waits until `khien ship` has recorded an acknowledged offset past `offset` in `state`.
fn wait_shipped_past(state: &std::path::Path, offset: u64) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let acked = std::fs::read(state)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["offset"].as_u64())
            .unwrap_or(0);
        if acked > offset {
            return;
        }
        assert!(Instant::now() < deadline, "shipping made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn killed_clickhouse_is_restarted_exactly_once() {
    const N: u64 = 300_000;
    let mut s = Streaming::start(N, 3);
    let dir = s.dir.clone();
    let pid_file = dir.join("clickhouse/server.pid");
    let pid = || -> i32 {
        std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let first = pid();
    let killed = Command::new("kill")
        .args(["-KILL", &first.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    eprintln!("killed ClickHouse (pid {first})");
    assert!(s.ship.wait().unwrap().success(), "ship --once failed");

    let sql = "SELECT count() FROM events WHERE tenant = 'hue'";
    assert_eq!(wait_for(&dir, sql, N, Duration::from_secs(300)), N);
    assert_eq!(query_u64(&dir, "SELECT uniqExact(event_id) FROM events"), N);
    let second = pid();
    assert_ne!(second, first, "the collector started a new server");
    assert!(std::path::Path::new(&format!("/proc/{second}")).exists());
    drop(s);
}
