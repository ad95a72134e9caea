//! Integration tests of `khien sensor` on the shared pcaps and on loopback.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data_dir() -> PathBuf {
    std::env::var_os("KHIEN_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
}

fn pcap(name: &str) -> PathBuf {
    let p = data_dir().join("pcaps").join(name);
    assert!(
        p.exists(),
        "reference pcap missing: {} (set KHIEN_DATA)",
        p.display()
    );
    p
}

fn outdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("khien-sensor-test-{}-{name}", std::process::id()));
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

fn sensor_ok(args: &[&str]) -> Output {
    let mut a = vec!["sensor"];
    a.extend_from_slice(args);
    let out = khien(&a);
    assert!(
        out.status.success(),
        "khien {a:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// (event_type, line) of every EVE record; fails on a line that is not a JSON object.
fn eve(dir: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dir.join("eve.json")).unwrap();
    text.lines()
        .map(|l| {
            assert!(
                l.starts_with('{') && l.ends_with('}'),
                "not a JSON object: {l}"
            );
            let t = l
                .split("\"event_type\":\"")
                .nth(1)
                .and_then(|r| r.split('"').next());
            (t.expect("event_type").to_string(), l.to_string())
        })
        .collect()
}

fn count(ev: &[(String, String)], t: &str) -> usize {
    ev.iter().filter(|(x, _)| x == t).count()
}

/// Flow counts of Suricata 7.0.10 on the shared pcaps, measured once with
/// `suricata -r PCAP -l DIR -k none --runmode single -c scripts/parity/suricata.yaml -S /dev/null`
/// and `grep -c '"event_type":"flow"' DIR/eve.json` (2026-11-22). The issue's bar: within 2%.
const SURICATA_FLOWS: [(&str, usize); 3] = [
    ("sv-corpus-merged.pcap", 2837),
    ("ndpi-corpus-merged.pcap", 9443),
    ("zeek-corpus-merged.pcap", 2093),
];

#[test]
fn flow_counts_within_two_percent_of_suricata() {
    let mut failures = Vec::new();
    for (name, want) in SURICATA_FLOWS {
        let dir = outdir(name);
        let out = sensor_ok(&[
            "-r",
            pcap(name).to_str().unwrap(),
            "-l",
            dir.to_str().unwrap(),
            "-k",
            "none",
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("time elapsed ") && l.ends_with('s')),
            "no time elapsed line: {stdout}"
        );
        let ev = eve(&dir);
        let got = count(&ev, "flow");
        let diff = (got as f64 - want as f64).abs() / want as f64;
        println!(
            "{name}: khien {got} flows, suricata {want}, diff {:.2}%",
            diff * 100.0
        );
        if diff > 0.02 {
            failures.push(format!(
                "{name}: {got} flows vs Suricata's {want} ({:.2}%)",
                diff * 100.0
            ));
        }
        // End of a pcap run: every remaining flow is flushed with reason "shutdown".
        assert!(ev
            .iter()
            .any(|(t, l)| t == "flow" && l.contains("\"reason\":\"shutdown\"")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn app_layer_records_on_zeek_pcap() {
    let dir = outdir("zeek-app");
    sensor_ok(&[
        "-r",
        pcap("zeek-corpus-merged.pcap").to_str().unwrap(),
        "-l",
        dir.to_str().unwrap(),
    ]);
    let ev = eve(&dir);
    // Suricata writes 369 dns, 77 tls and 50 ssh records on this pcap (same command as above).
    for (t, suricata) in [("dns", 369usize), ("tls", 77), ("ssh", 50)] {
        let got = count(&ev, t);
        assert!(
            got * 100 >= suricata * 90,
            "{t}: {got} records, Suricata {suricata}"
        );
    }
    let http = ev
        .iter()
        .find(|(t, _)| t == "http")
        .expect("an http record");
    for field in [
        "\"flow_id\":",
        "\"pcap_cnt\":",
        "\"src_ip\":",
        "\"dest_port\":",
        "\"proto\":\"TCP\"",
        "\"tx_id\":",
        "\"http\":{",
    ] {
        assert!(http.1.contains(field), "{field} missing in {}", http.1);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Writes a minimal pcapng file: section header, one Ethernet interface, `pkts` as
/// enhanced packet blocks.
fn write_pcapng(path: &Path, pkts: &[Vec<u8>]) {
    fn block(out: &mut Vec<u8>, ty: u32, body: &[u8]) {
        let pad = (4 - body.len() % 4) % 4;
        let len = (12 + body.len() + pad) as u32;
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(body);
        out.extend(std::iter::repeat_n(0u8, pad));
        out.extend_from_slice(&len.to_le_bytes());
    }
    let mut f = Vec::new();
    // SHB: byte-order magic, version 1.0, section length unknown (-1).
    let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut f, 0x0a0d_0d0a, &shb);
    // IDB: link type 1 (Ethernet), reserved, snaplen 65535.
    let mut idb = vec![1, 0, 0, 0];
    idb.extend_from_slice(&65535u32.to_le_bytes());
    block(&mut f, 1, &idb);
    for (i, p) in pkts.iter().enumerate() {
        // EPB: interface 0, timestamp (µs, high then low), captured and original length.
        let ts: u64 = 1_700_000_000_000_000 + i as u64 * 1000;
        let mut epb = 0u32.to_le_bytes().to_vec();
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(p.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(p.len() as u32).to_le_bytes());
        epb.extend_from_slice(p);
        block(&mut f, 6, &epb);
    }
    std::fs::write(path, f).unwrap();
}

/// Ethernet/IPv4/UDP 10.1.1.1:5353 → 10.1.1.2:9 with `payload` (checksums zero).
fn udp_frame(payload: &[u8], ip_len_delta: i32) -> Vec<u8> {
    let mut p = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = (20 + 8 + payload.len()) as i32 + ip_len_delta;
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0, 1, 0, 0, 64, 17, 0, 0, 10, 1, 1, 1, 10, 1, 1, 2]);
    p.extend_from_slice(&[0x14, 0xe9, 0, 9]);
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

#[test]
fn pcapng_input_and_decoder_anomalies() {
    let dir = outdir("pcapng");
    let file = dir.join("in.pcapng");
    // Two good datagrams one way, one back, and one with an IP length past the frame.
    let mut back = udp_frame(b"pong", 0);
    back[26..30].copy_from_slice(&[10, 1, 1, 2]);
    back[30..34].copy_from_slice(&[10, 1, 1, 1]);
    back[34..38].copy_from_slice(&[0, 9, 0x14, 0xe9]);
    write_pcapng(
        &file,
        &[
            udp_frame(b"ping", 0),
            udp_frame(b"ping", 0),
            back,
            udp_frame(b"x", 40),
        ],
    );
    sensor_ok(&["-r", file.to_str().unwrap(), "-l", dir.to_str().unwrap()]);
    let ev = eve(&dir);
    let flows: Vec<_> = ev.iter().filter(|(t, _)| t == "flow").collect();
    assert_eq!(flows.len(), 1, "{flows:?}");
    let f = &flows[0].1;
    assert!(
        f.contains(
            "\"src_ip\":\"10.1.1.1\",\"src_port\":5353,\"dest_ip\":\"10.1.1.2\",\"dest_port\":9"
        ),
        "{f}"
    );
    assert!(f.contains("\"pkts_toserver\":2,\"pkts_toclient\":1"), "{f}");
    assert!(
        f.contains("\"state\":\"established\",\"reason\":\"shutdown\""),
        "{f}"
    );
    assert!(
        f.contains("\"start\":\"2023-11-14T22:13:20.000000+0000\""),
        "{f}"
    );
    let anomaly = ev
        .iter()
        .find(|(t, _)| t == "anomaly")
        .expect("anomaly record");
    assert!(
        anomaly.1.contains("\"event\":\"decoder.ipv4.trunc_pkt\""),
        "{}",
        anomaly.1
    );
    assert!(anomaly.1.contains("\"pcap_cnt\":4"), "{}", anomaly.1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Stream events: an injected-looking RST (it carries an MD5 signature option and its
/// sender goes on) raises `stream.suspected_rst_inject` on the sender's next packet, written
/// as a `"type":"stream"` anomaly only with `eve.anomaly-stream` (Suricata's default is off).
#[test]
fn stream_event_anomalies() {
    let pcap = data_dir().join("suricata-verify/tests/security-4710-01/input.pcap");
    let out = outdir("stream-events");
    let o = out.to_str().unwrap();
    let p = pcap.to_str().unwrap();
    sensor_ok(&["-r", p, "-l", o, "-k", "none"]);
    let ev = eve(&out);
    assert_eq!(count(&ev, "anomaly"), 0);
    assert_eq!(count(&ev, "http"), 1, "the request after the RST is parsed");
    sensor_ok(&[
        "-r",
        p,
        "-l",
        o,
        "-k",
        "none",
        "--set",
        "eve.anomaly-stream=true",
    ]);
    let ev = eve(&out);
    let anomalies: Vec<&String> = ev
        .iter()
        .filter(|(t, _)| t == "anomaly")
        .map(|(_, l)| l)
        .collect();
    assert_eq!(anomalies.len(), 1, "{anomalies:?}");
    let a = anomalies[0];
    assert!(
        a.contains("\"anomaly\":{\"type\":\"stream\",\"event\":\"stream.suspected_rst_inject\"}"),
        "{a}"
    );
    assert!(a.contains("\"pcap_cnt\":5"), "{a}");
    std::fs::remove_dir_all(&out).unwrap();
}

/// The signature ids of the alerts `khien sensor -S <rules>` writes on `pcap`, sorted.
fn alert_sids(name: &str, pcap: &Path, rules: &str) -> Vec<String> {
    let out = outdir(name);
    let file = out.join("test.rules");
    std::fs::write(&file, rules).unwrap();
    sensor_ok(&[
        "-r",
        pcap.to_str().unwrap(),
        "-l",
        out.to_str().unwrap(),
        "-k",
        "none",
        "-S",
        file.to_str().unwrap(),
    ]);
    let mut sids: Vec<String> = eve(&out)
        .iter()
        .filter(|(t, _)| t == "alert")
        .filter_map(|(_, l)| {
            let rest = l.split("\"signature_id\":").nth(1)?;
            Some(rest.split(',').next()?.to_string())
        })
        .collect();
    sids.sort();
    std::fs::remove_dir_all(&out).unwrap();
    sids
}

/// Once a TLS session's application data flows, its payload is not inspected (Suricata's
/// default `encryption-handling`): no alert on the records' `17 03 03` headers, in packets
/// or in the raw stream, while `tls.sni` still matches. Suricata 7.0.10 on this pcap
/// alerts sid 2 twice and nothing else.
#[test]
fn encrypted_tls_payload_is_not_inspected() {
    let pcap = data_dir().join("suricata-verify/tests/tls/tls-bypass-missing-event/tor_bl.pcap");
    let sids = alert_sids(
        "tls-encrypted",
        &pcap,
        "alert tcp any any -> any any (msg:\"record\"; content:\"|17 03 03|\"; sid:1;)\n\
         alert tls any any -> any any (msg:\"sni\"; tls.sni; content:\".\"; sid:2;)\n\
         alert tcp any any -> any any (msg:\"pkt\"; content:\"|17 03 03|\"; startswith; sid:3;)\n",
    );
    assert_eq!(sids, ["2", "2"]);
}

/// SSH payload is not inspected after both sides' NEWKEYS (Suricata 7 stops inspecting
/// the flow there): `|aa|` in the encrypted packets no longer alerts. Suricata 7.0.10 on
/// the ndpi pcap with these rules: sid 1 and 2 twice each, sid 4 once, sid 5 twice (khien
/// before this: 3 and 6 for sids 4 and 5).
#[test]
fn encrypted_ssh_payload_is_not_inspected() {
    let sids = alert_sids(
        "ssh-encrypted",
        &pcap("ndpi-corpus-merged.pcap"),
        "alert tcp any any -> any 22 (msg:\"c\"; content:\"|00 00 00|\"; sid:1;)\n\
         alert tcp any 22 -> any any (msg:\"s\"; content:\"|00 00 00|\"; sid:2;)\n\
         alert tcp any any -> any 22 (msg:\"c2\"; content:\"|aa|\"; sid:4;)\n\
         alert tcp any 22 -> any any (msg:\"s2\"; content:\"|aa|\"; sid:5;)\n",
    );
    assert_eq!(sids, ["1", "1", "2", "2", "4", "5", "5"]);
}

#[test]
fn errors_name_the_file() {
    let dir = outdir("errors");
    let bogus = dir.join("not-a-pcap.pcap");
    std::fs::write(&bogus, b"hello").unwrap();
    let out = khien(&[
        "sensor",
        "-r",
        bogus.to_str().unwrap(),
        "-l",
        dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not-a-pcap.pcap"));
    let cfg = dir.join("khien.yaml");
    std::fs::write(&cfg, "stream:\n  midstream: true\n  depthh: 1\n").unwrap();
    let out = khien(&[
        "sensor",
        "-r",
        bogus.to_str().unwrap(),
        "-c",
        cfg.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("khien.yaml:3:") && err.contains("depthh"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn live_capture_on_loopback() {
    use std::net::UdpSocket;
    let dir = outdir("live");
    let child = Command::new(env!("CARGO_BIN_EXE_khien"))
        .args([
            "sensor",
            "-i",
            "lo",
            "-f",
            "udp port 45454",
            "--duration",
            "4",
            "-l",
            dir.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // Traffic to ourselves on loopback only.
    let rx = UdpSocket::bind("127.0.0.1:45454").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..5 {
        tx.send_to(b"khien loopback test", "127.0.0.1:45454")
            .unwrap();
    }
    let mut buf = [0u8; 64];
    let _ = rx.recv(&mut buf);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = eve(&dir);
    let flow = ev
        .iter()
        .find(|(t, l)| t == "flow" && l.contains("\"dest_port\":45454"));
    let flow = flow.unwrap_or_else(|| panic!("no loopback flow in {ev:?}"));
    assert!(flow.1.contains("\"pkts_toserver\":5"), "{}", flow.1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn workers_shard_flows_without_changing_them() {
    let p = pcap("zeek-corpus-merged.pcap");
    let mut flows = Vec::new();
    for w in ["1", "2"] {
        let dir = outdir(&format!("workers{w}"));
        sensor_ok(&[
            "-r",
            p.to_str().unwrap(),
            "-l",
            dir.to_str().unwrap(),
            "--workers",
            w,
        ]);
        let ev = eve(&dir);
        let mut f: Vec<String> = ev
            .iter()
            .filter(|(t, _)| t == "flow")
            .map(|(_, l)| {
                // The tuple and counters, without flow_id and the logging timestamp.
                let start = l.find("\"src_ip\"").unwrap();
                let end = l.find("\"reason\"").unwrap();
                l[start..end].to_string()
            })
            .collect();
        f.sort();
        flows.push(f);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let same = flows[1]
        .iter()
        .filter(|x| flows[0].binary_search(x).is_ok())
        .count();
    // Sharding by address pair keeps every flow on one worker; only timeout timing may
    // differ (a worker's clock advances with the capture's once per second).
    assert!(
        same * 100 >= flows[0].len() * 99,
        "{same} of {} flows identical",
        flows[0].len()
    );
}
