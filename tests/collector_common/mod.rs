//! Helpers of the collector integration tests: run `khien collector serve` on loopback with a
//! managed ClickHouse in a temp dir, add sensors, ship, query.

#![allow(dead_code, reason = "each test binary uses a subset of the helpers")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn khien() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_khien"));
    c.env("KHIEN_LOG", "info");
    c
}

/// A running `khien collector serve`.
pub struct Collector {
    pub dir: PathBuf,
    pub child: Child,
    pub addr: String,
}

impl Collector {
    /// Starts a collector on `listen` (e.g. `127.0.0.1:0`) and waits for its `listening` line.
    pub fn start(dir: &Path, listen: &str) -> Collector {
        let mut child = khien()
            .args(["collector", "serve", "--data"])
            .arg(dir)
            .args(["--listen", listen, "--flush-ms", "300"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run khien collector serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[collector] {line}");
                if line.contains("listening") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(120)).is_err() {
            let _ = child.kill();
            panic!("collector did not log `listening` within 120 s");
        }
        let addr = std::fs::read_to_string(dir.join("collector.addr")).unwrap();
        Collector {
            dir: dir.to_owned(),
            child,
            addr,
        }
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("tls/ca.pem")
    }

    /// `kill -9` the collector process.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// `khien collector stop`.
    pub fn stop(&mut self) {
        let out = khien()
            .args(["collector", "stop", "--data"])
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = self.child.wait();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = khien()
            .args(["collector", "stop", "--data"])
            .arg(&self.dir)
            .output();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stops whatever runs in `dir` when dropped (collector and managed ClickHouse).
pub struct StopOnDrop(pub PathBuf);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = khien()
            .args(["collector", "stop", "--data"])
            .arg(&self.0)
            .output();
    }
}

/// `khien collector sensor add`; returns the token (the last line).
pub fn sensor_add(dir: &Path, tenant: &str, name: &str) -> String {
    let out = khien()
        .args(["collector", "sensor", "add", "--data"])
        .arg(dir)
        .args(["--tenant", tenant, "--name", name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout.lines().last().unwrap().trim().to_owned()
}

/// `khien collector query`; returns the TSV output.
pub fn query(dir: &Path, sql: &str) -> String {
    try_query(dir, sql).unwrap_or_else(|e| panic!("{e}"))
}

/// `khien collector query`: the TSV output, or the command's error.
pub fn try_query(dir: &Path, sql: &str) -> Result<String, String> {
    let out = khien()
        .args(["collector", "query", "--data"])
        .arg(dir)
        .arg(sql)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(format!(
            "query {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8(out.stdout).unwrap())
}

/// A single number from a query.
pub fn query_u64(dir: &Path, sql: &str) -> u64 {
    query(dir, sql)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Polls `sql` until it returns `want` (then checks it stays so for a second). A failing
/// query (ClickHouse down or restarting) is retried until `timeout`.
pub fn wait_for(dir: &Path, sql: &str, want: u64, timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    loop {
        let got = match try_query(dir, sql) {
            Ok(out) => out.trim().parse().unwrap_or_else(|e| panic!("{sql}: {e}")),
            Err(e) if Instant::now() <= deadline => {
                eprintln!("{e}; retrying");
                std::thread::sleep(Duration::from_millis(300));
                continue;
            }
            Err(e) => panic!("{e}"),
        };
        if got == want {
            std::thread::sleep(Duration::from_millis(1500));
            return query_u64(dir, sql);
        }
        if Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `khien ship --once` and its output.
pub fn ship_once(eve: &Path, url: &str, token: &str, ca: &Path) -> Output {
    ship_cmd(eve, url, token, ca).output().unwrap()
}

pub fn ship_cmd(eve: &Path, url: &str, token: &str, ca: &Path) -> Command {
    let mut c = khien();
    c.args(["ship", "--once", "--eve"])
        .arg(eve)
        .args(["--to", url, "--token", token, "--ca"])
        .arg(ca);
    c
}

/// The genuine Suricata 7.0.10 sample committed with the collector crate.
pub fn genuine_sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("collector/tests/data/suricata-7.0.10-sample.eve.json")
}
