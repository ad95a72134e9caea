//! The sensor's shipping output: `khien sensor -r PCAP --ship-to URL` writes eve.json and ships
//! it to a collector while it runs. The collector is down when the sensor starts (an outage)
//! and comes up on the same address later: every record still arrives, exactly once.

mod collector_common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use collector_common::*;

fn pcap() -> PathBuf {
    let data = std::env::var_os("KHIEN_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data")));
    let p = data.join("pcaps/zeek-corpus-merged.pcap");
    assert!(
        p.exists(),
        "reference pcap missing: {} (set KHIEN_DATA)",
        p.display()
    );
    p
}

#[test]
fn sensor_ships_its_eve_through_a_collector_outage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let out = tmp.path().join("out");

    // Start once to create the store and learn the address, then stop: the outage.
    let mut c = Collector::start(&dir, "127.0.0.1:0");
    let addr = c.addr.clone();
    let url = c.url();
    let ca = c.ca();
    let token = sensor_add(&dir, "danang", "edge-7");
    c.stop();
    drop(c);

    let sensor = khien()
        .args(["sensor", "-k", "none", "-r"])
        .arg(pcap())
        .arg("-l")
        .arg(&out)
        .args(["--ship-to", &url, "--ship-token", &token, "--ship-ca"])
        .arg(&ca)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The sensor processes the pcap while nobody listens; then the collector comes back.
    std::thread::sleep(Duration::from_secs(8));
    let _c = Collector::start(&dir, &addr);
    let done = sensor.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "sensor failed: {stderr}");

    let eve = std::fs::read_to_string(out.join("eve.json")).unwrap();
    let lines = eve.lines().filter(|l| !l.trim().is_empty()).count() as u64;
    assert!(lines > 1_000, "only {lines} EVE records from the pcap");
    assert!(
        stderr.contains(&format!(
            "shipped: {lines} accepted, 0 duplicates, 0 rejected"
        )),
        "{stderr}"
    );
    let sql = "SELECT count() FROM events WHERE tenant = 'danang' AND sensor = 'edge-7'";
    assert_eq!(wait_for(&dir, sql, lines, Duration::from_secs(120)), lines);
    let flows = eve
        .lines()
        .filter(|l| l.contains("\"event_type\":\"flow\""))
        .count() as u64;
    assert_eq!(
        query_u64(
            &dir,
            "SELECT count() FROM flow_events WHERE tenant = 'danang'"
        ),
        flows
    );
}
