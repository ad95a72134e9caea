//! Integration tests of the sensor's operations features: YARA scanning and storing of
//! extracted files, the stats record merged across workers, and the Prometheus
//! `/metrics` endpoint (on a pcap run and on a live loopback capture).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

fn data_dir() -> PathBuf {
    std::env::var_os("KHIEN_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
}

/// A suricata-verify test's pcap; fails when the reference data is missing.
fn sv_pcap(test: &str) -> PathBuf {
    let dir = data_dir().join("suricata-verify/tests").join(test);
    // The test's one pcap (most are `input.pcap`).
    let p = std::fs::read_dir(&dir)
        .ok()
        .and_then(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "pcap"))
        })
        .unwrap_or_else(|| dir.join("input.pcap"));
    assert!(
        p.exists(),
        "reference pcap missing: {} (set KHIEN_DATA)",
        p.display()
    );
    p
}

fn shared_pcap(name: &str) -> PathBuf {
    let p = data_dir().join("pcaps").join(name);
    assert!(
        p.exists(),
        "reference pcap missing: {} (set KHIEN_DATA)",
        p.display()
    );
    p
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("khien-ops-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn khien(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_khien"))
        .args(args)
        .output()
        .expect("run khien")
}

fn records(dir: &Path, event_type: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("eve.json")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("EVE line is JSON"))
        .filter(|v| v["event_type"] == event_type)
        .collect()
}

fn write_rules(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    // Text of the 2,381-byte HTTP response body (a web page; Suricata's md5 for it is
    // 090fe607a5be1228362614ccaa088577) in bug-2576-04's pcap.
    std::fs::write(
        dir.join("webpages.yar"),
        "rule status_ok_page : web test {\n  strings:\n    $a = \"<!--STATUS OK-->\"\n    $b = \"baidu.min.css\"\n  condition:\n    $a and $b\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("other.yar"),
        "rule never_in_traffic {\n  strings:\n    $a = \"khien-yara-no-such-string\"\n  condition:\n    $a\n}\n",
    )
    .unwrap();
}

#[test]
fn yara_matches_go_into_fileinfo() {
    let dir = tmpdir("yara");
    let rules = dir.join("rules");
    write_rules(&rules);
    let store = dir.join("store");
    let out = khien(&[
        "sensor",
        "-r",
        sv_pcap("bug-2576-04").to_str().unwrap(),
        "-l",
        dir.to_str().unwrap(),
        "-k",
        "none",
        "--yara-rules",
        rules.to_str().unwrap(),
        "--set",
        &format!("files.store-dir={}", store.display()),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("yara: 2 rules"), "{stderr}");
    let files = records(&dir, "fileinfo");
    assert_eq!(files.len(), 1, "{files:?}");
    let f = &files[0]["fileinfo"];
    assert_eq!(f["size"], 2381, "{f}");
    assert_eq!(f["md5"], "090fe607a5be1228362614ccaa088577", "{f}");
    let y = &f["yara"];
    assert_eq!(
        y["matches"],
        serde_json::json!([{"rule": "status_ok_page", "namespace": "webpages", "tags": ["web", "test"]}]),
        "{f}"
    );
    assert_eq!(y["scanned_bytes"], 2381, "{f}");
    // The complete file is stored once under its SHA-256.
    assert_eq!(f["stored"], true, "{f}");
    let sha = f["sha256"].as_str().unwrap();
    let stored = std::fs::read(store.join(&sha[..2]).join(sha)).unwrap();
    assert_eq!(stored.len(), 2381);
    assert!(String::from_utf8_lossy(&stored).contains("<!--STATUS OK-->"));
    let stats = records(&dir, "stats");
    let s = &stats.last().expect("a stats record")["stats"];
    assert_eq!(s["yara"]["scanned"], 1, "{s}");
    assert_eq!(s["yara"]["matched"], 1, "{s}");
    assert_eq!(s["yara"]["matches"], 1, "{s}");
    assert_eq!(s["file_store"]["stored"], 1, "{s}");

    // Without rules the record has no yara section and nothing is stored.
    let plain = dir.join("plain");
    let out = khien(&[
        "sensor",
        "-r",
        sv_pcap("bug-2576-04").to_str().unwrap(),
        "-l",
        plain.to_str().unwrap(),
        "-k",
        "none",
    ]);
    assert!(out.status.success());
    let files = records(&plain, "fileinfo");
    assert_eq!(files.len(), 1);
    assert!(files[0]["fileinfo"].get("yara").is_none(), "{}", files[0]);
    assert_eq!(files[0]["fileinfo"]["stored"], false);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn yara_scans_smtp_attachments() {
    let dir = tmpdir("yara-smtp");
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    // A line of NEWS.txt, the text attachment in bug-3616-smtp's pcap.
    std::fs::write(
        rules.join("mail.yar"),
        "rule news_attachment : mail {\n  strings:\n    $a = \"Support for latest Mingw compiler system builds\"\n  condition:\n    $a\n}\nrule not_there { strings: $a = \"khien-yara-no-such-string\" condition: $a }\n",
    )
    .unwrap();
    let out = khien(&[
        "sensor",
        "-r",
        sv_pcap("bug-3616-smtp").to_str().unwrap(),
        "-l",
        dir.to_str().unwrap(),
        "-k",
        "none",
        "--yara-rules",
        rules.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = records(&dir, "fileinfo");
    let news = files
        .iter()
        .find(|f| f["fileinfo"]["filename"] == "NEWS.txt")
        .unwrap_or_else(|| panic!("no NEWS.txt fileinfo in {files:?}"));
    let f = &news["fileinfo"];
    // The whole attachment was scanned (Suricata reports 10,807 bytes).
    let size = f["size"].as_u64().unwrap();
    assert!(size > 10_000, "{f}");
    assert_eq!(f["yara"]["scanned_bytes"].as_u64(), Some(size), "{f}");
    let names: Vec<&str> = f["yara"]["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["rule"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["news_attachment"], "{f}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_yara_rule_fails_startup_naming_file_and_line() {
    let dir = tmpdir("yara-bad");
    let rules = dir.join("rules");
    write_rules(&rules);
    std::fs::write(
        rules.join("broken.yar"),
        "rule fine { condition: true }\n\nrule broken {\n  condition: $undefined\n}\n",
    )
    .unwrap();
    let out = khien(&[
        "sensor",
        "-r",
        sv_pcap("bug-2576-04").to_str().unwrap(),
        "-l",
        dir.to_str().unwrap(),
        "--yara-rules",
        rules.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let want = format!("{}:4:", rules.join("broken.yar").display());
    assert!(stderr.contains(&want), "{stderr}");
    assert!(stderr.contains("$undefined"), "{stderr}");
    // Start-up stopped before any packet was read.
    assert!(!dir.join("eve.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `GET /metrics` from `addr`, as (sample name with labels → value).
fn scrape(addr: &str) -> HashMap<String, u64> {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: khien\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

/// Reads the child's stderr until the metrics line and returns `host:port`.
fn metrics_addr(child: &mut Child) -> (String, BufReader<std::process::ChildStderr>) {
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "no metrics line");
        if let Some(rest) = line.trim().strip_prefix("metrics: listening on http://") {
            return (rest.trim_end_matches("/metrics").to_string(), err);
        }
    }
}

fn eve_u64(v: &serde_json::Value, path: &str) -> u64 {
    let mut cur = v;
    for p in path.split('.') {
        cur = &cur[p];
    }
    cur.as_u64()
        .unwrap_or_else(|| panic!("{path} missing in {v}"))
}

#[test]
fn metrics_equal_the_final_merged_stats_record() {
    let dir = tmpdir("metrics");
    let mut child = Command::new(env!("CARGO_BIN_EXE_khien"))
        .args([
            "sensor",
            "-r",
            shared_pcap("zeek-corpus-merged.pcap").to_str().unwrap(),
            "-l",
            dir.to_str().unwrap(),
            "--workers",
            "2",
            "--metrics",
            "127.0.0.1:0",
            "--metrics-linger",
            "60",
            // Only the final stats record, however long a loaded machine takes.
            "--set",
            "stats.interval=0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, mut err) = metrics_addr(&mut child);
    // Scrapes during the run succeed (the endpoint is up before the first packet).
    let early = scrape(&addr);
    assert!(early.contains_key("khien_decoder_packets_total"));
    // Wait for the end of the run: the `time elapsed` line.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("time elapsed") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "no time elapsed line"
        );
    }
    let mut summary = String::new();
    err.read_line(&mut summary).unwrap();
    let m = scrape(&addr);
    let _ = child.kill();
    let _ = child.wait();

    let stats = records(&dir, "stats");
    // Two workers, one merged record.
    assert_eq!(stats.len(), 1, "{stats:?}");
    let s = &stats[0]["stats"];
    // "read N packets, ..." from the reader thread: the merged record counts them all.
    let read: u64 = summary
        .strip_prefix("read ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("summary line: {summary}"));
    assert_eq!(eve_u64(s, "decoder.pkts"), read);
    for (eve, prom) in [
        ("decoder.pkts", "khien_decoder_packets_total"),
        ("decoder.bytes", "khien_decoder_bytes_total"),
        (
            "decoder.tcp",
            "khien_decoder_protocol_packets_total{protocol=\"tcp\"}",
        ),
        ("flow.total", "khien_flows_total"),
        ("flow.active", "khien_flows_active"),
        ("flow.memcap", "khien_memcap_hits_total{memcap=\"flow\"}"),
        ("flow.mgr.flows_timeout", "khien_flows_timed_out_total"),
        ("flow.mgr.flows_evicted_forced", "khien_flows_evicted_total"),
        ("tcp.sessions", "khien_tcp_sessions_total"),
        ("tcp.reassembly_gap", "khien_tcp_reassembly_gaps_total"),
        ("tcp.overlap_diff_data", "khien_tcp_overlap_diff_data_total"),
        (
            "tcp.pkt_out_of_window",
            "khien_tcp_ignored_packets_total{reason=\"out_of_window\"}",
        ),
        (
            "tcp.pkt_invalid_ack",
            "khien_tcp_ignored_packets_total{reason=\"invalid_ack\"}",
        ),
        (
            "app_layer.flow.http",
            "khien_app_layer_flows_total{app_proto=\"http\"}",
        ),
        (
            "app_layer.flow.smb",
            "khien_app_layer_flows_total{app_proto=\"smb\"}",
        ),
        (
            "app_layer.tx.dns",
            "khien_app_layer_tx_total{app_proto=\"dns\"}",
        ),
        (
            "app_layer.tx.tls",
            "khien_app_layer_tx_total{app_proto=\"tls\"}",
        ),
        (
            "app_layer.error.http.parser",
            "khien_app_layer_parser_errors_total{app_proto=\"http\"}",
        ),
        ("app_layer.files", "khien_files_total"),
        ("anomalies", "khien_decoder_anomalies_total"),
        ("detect.alert", "khien_alerts_total"),
        ("capture.kernel_drops", "khien_capture_kernel_drops_total"),
    ] {
        assert_eq!(
            m.get(prom).copied(),
            Some(eve_u64(s, eve)),
            "{eve} vs {prom}"
        );
    }
    // Real traffic was counted, and every flow ended at shutdown.
    assert!(eve_u64(s, "flow.total") > 1000, "{s}");
    assert!(eve_u64(s, "app_layer.tx.dns") > 100, "{s}");
    // The zeek pcap's SMB sessions have counters of their own.
    assert!(eve_u64(s, "app_layer.flow.smb") > 0, "{s}");
    // And packets the stream engine ignored (173 and 16 on this pcap).
    assert!(eve_u64(s, "tcp.pkt_out_of_window") > 0, "{s}");
    assert!(eve_u64(s, "tcp.pkt_invalid_ack") > 0, "{s}");
    assert_eq!(eve_u64(s, "flow.active"), 0, "{s}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `khien sensor -i lo` for UDP `port` only, with `/metrics` and `extra` arguments, once
/// its metrics endpoint is up: (child, metrics address, rest of stderr).
fn live_on_lo(
    dir: &std::path::Path,
    port: u16,
    extra: &[&str],
) -> (Child, String, BufReader<std::process::ChildStderr>) {
    let filter = format!("udp port {port}");
    let mut args = vec![
        "sensor",
        "-i",
        "lo",
        "-f",
        &filter,
        "-l",
        dir.to_str().unwrap(),
    ];
    args.extend(["--metrics", "127.0.0.1:0"]);
    args.extend(extra);
    let mut child = Command::new(env!("CARGO_BIN_EXE_khien"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, err) = metrics_addr(&mut child);
    // Give the capture time to start before sending.
    std::thread::sleep(Duration::from_millis(1500));
    (child, addr, err)
}

/// Sends `n` UDP datagrams to ourselves on loopback (only) at `port`.
fn send_udp_on_lo(port: u16, n: u8) {
    let rx = UdpSocket::bind(("127.0.0.1", port)).unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..n {
        tx.send_to(&[b'k', i], ("127.0.0.1", port)).unwrap();
    }
    let mut buf = [0u8; 16];
    let _ = rx.recv(&mut buf);
}

#[test]
fn live_capture_counts_kernel_packets_on_loopback() {
    let dir = tmpdir("live-metrics");
    let port = 45_000 + (std::process::id() % 1000) as u16;
    let (mut child, addr, _err) = live_on_lo(&dir, port, &["--duration", "5"]);
    send_udp_on_lo(port, 10);
    // Counters are published about every 200 ms.
    std::thread::sleep(Duration::from_millis(1000));
    let m = scrape(&addr);
    assert_eq!(m["khien_decoder_packets_total"], 10, "{m:?}");
    assert!(m["khien_capture_kernel_packets_total"] >= 10, "{m:?}");
    assert_eq!(m["khien_capture_kernel_drops_total"], 0, "{m:?}");
    assert_eq!(m["khien_flows_active"], 1, "{m:?}");
    let status = child.wait().unwrap();
    assert!(status.success());
    let stats = records(&dir, "stats");
    let s = &stats.last().expect("a stats record")["stats"];
    assert!(eve_u64(s, "capture.kernel_packets") >= 10, "{s}");
    assert_eq!(eve_u64(s, "capture.kernel_drops"), 0, "{s}");
    assert_eq!(eve_u64(s, "decoder.pkts"), 10, "{s}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sigint_ends_live_capture_with_flows_flushed() {
    let dir = tmpdir("live-sigint");
    let port = 46_000 + (std::process::id() % 1000) as u16;
    let (mut child, _addr, mut err) = live_on_lo(&dir, port, &[]);
    send_udp_on_lo(port, 5);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "no duration: still capturing"
    );
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{status:?}: {rest}");
    assert!(rest.contains("stopping"), "{rest}");
    // The open flow was flushed into eve.json at the end, with its five packets.
    let flows = records(&dir, "flow");
    let f = flows
        .iter()
        .find(|f| f["dest_port"] == port)
        .unwrap_or_else(|| panic!("no flow record for port {port}: {flows:?}"));
    assert_eq!(eve_u64(f, "flow.pkts_toserver"), 5, "{f}");
    std::fs::remove_dir_all(&dir).unwrap();
}
