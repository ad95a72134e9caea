//! Helpers of the sensor integration tests that run `khien sensor` on the shared pcaps.

#![allow(dead_code, reason = "each test binary uses a subset of the helpers")]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The shared reference data: `KHIEN_DATA`, else `../shared/data` beside the repository.
pub fn data_dir() -> PathBuf {
    std::env::var_os("KHIEN_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
}

/// A shared pcap; a missing one fails the test.
pub fn pcap(name: &str) -> PathBuf {
    let p = data_dir().join("pcaps").join(name);
    assert!(
        p.exists(),
        "reference pcap missing: {} (set KHIEN_DATA)",
        p.display()
    );
    p
}

/// The EVE records of `khien sensor -r PCAP`, with the rules of `rules` if given.
pub fn run(name: &str, rules: Option<&Path>) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_khien"));
    cmd.args(["sensor", "-r"]).arg(pcap(name));
    if let Some(rules) = rules {
        cmd.arg("-S").arg(rules);
    }
    let out = cmd.arg("-l").arg(dir.path()).output().expect("run khien");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(dir.path().join("eve.json"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("EVE line is JSON"))
        .collect()
}

/// The records of `event_type` on flows whose app_proto is `proto`.
pub fn of_proto(ev: &[serde_json::Value], event_type: &str, proto: &str) -> Vec<serde_json::Value> {
    ev.iter()
        .filter(|e| e["event_type"] == event_type && e["app_proto"] == proto)
        .cloned()
        .collect()
}
