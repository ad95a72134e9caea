//! Enrichment and correlation end to end: Suricata 7 alert, flow, dns, http and fileinfo
//! records built here in Suricata's own layout (genuine ET Open sids, messages and
//! classtypes), shipped with `khien ship --once` to `khien collector serve` with its managed
//! ClickHouse (18.16 here), then `khien collector correlate|incidents|check`.

mod collector_common;

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use collector_common::*;

/// Suricata's timestamp of Unix time `t` + `usec`: `2026-11-22T10:00:00.123456+0000`.
fn ts(t: u64, usec: u32) -> String {
    let days = (t / 86_400) as i64;
    let secs = t % 86_400;
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{usec:06}+0000",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An ET Open signature as Suricata 7.0.10 writes it in an alert.
struct Sig {
    sid: u32,
    rev: u32,
    msg: &'static str,
    category: &'static str,
    severity: u8,
}

const SSH_SCAN: Sig = Sig {
    sid: 2_001_219,
    rev: 20,
    msg: "ET SCAN Potential SSH Scan",
    category: "Attempted Information Leak",
    severity: 2,
};
const LOG4J: Sig = Sig {
    sid: 2_034_647,
    rev: 2,
    msg: "ET EXPLOIT Apache log4j RCE Attempt (http ldap) (CVE-2021-44228)",
    category: "Attempted Administrator Privilege Gain",
    severity: 1,
};
const FEODO_CNC: Sig = Sig {
    sid: 2_404_300,
    rev: 7051,
    msg: "ET CNC Feodo Tracker Reported CnC Server group 1",
    category: "A Network Trojan was detected",
    severity: 1,
};
const POLICY: Sig = Sig {
    sid: 2_013_028,
    rev: 7,
    msg: "ET POLICY curl User-Agent Outbound",
    category: "Attempted Information Leak",
    severity: 3,
};

/// One EVE alert line, to_server, in Suricata 7's field order.
fn alert(t: u64, src: &str, sport: u16, dst: &str, dport: u16, sig: &Sig) -> String {
    let flow_id = 1_000_000_007u64.wrapping_mul(u64::from(sport) + t % 100_000);
    let start = ts(t.saturating_sub(1), 402_117);
    format!(
        "{{\"timestamp\":\"{}\",\"flow_id\":{flow_id},\"in_iface\":\"ens18\",\"event_type\":\"alert\",\
         \"src_ip\":\"{src}\",\"src_port\":{sport},\"dest_ip\":\"{dst}\",\"dest_port\":{dport},\
         \"proto\":\"TCP\",\"pkt_src\":\"wire/pcap\",\"alert\":{{\"action\":\"allowed\",\"gid\":1,\
         \"signature_id\":{},\"rev\":{},\"signature\":\"{}\",\"category\":\"{}\",\"severity\":{},\
         \"metadata\":{{\"created_at\":[\"2021_12_10\"],\"updated_at\":[\"2023_10_23\"]}}}},\
         \"direction\":\"to_server\",\"flow\":{{\"pkts_toserver\":4,\"pkts_toclient\":3,\
         \"bytes_toserver\":623,\"bytes_toclient\":412,\"start\":\"{start}\",\"src_ip\":\"{src}\",\
         \"dest_ip\":\"{dst}\",\"src_port\":{sport},\"dest_port\":{dport}}}}}",
        ts(t, 183_777),
        sig.sid,
        sig.rev,
        sig.msg,
        sig.category,
        sig.severity
    )
}

/// One EVE flow line.
fn flow(t: u64, src: &str, sport: u16, dst: &str, dport: u16) -> String {
    format!(
        "{{\"timestamp\":\"{}\",\"flow_id\":{},\"in_iface\":\"ens18\",\"event_type\":\"flow\",\
         \"src_ip\":\"{src}\",\"src_port\":{sport},\"dest_ip\":\"{dst}\",\"dest_port\":{dport},\
         \"proto\":\"TCP\",\"flow\":{{\"pkts_toserver\":1,\"pkts_toclient\":1,\"bytes_toserver\":74,\
         \"bytes_toclient\":60,\"start\":\"{}\",\"end\":\"{}\",\"age\":0,\"state\":\"closed\",\
         \"reason\":\"timeout\",\"alerted\":false}},\"tcp\":{{\"tcp_flags\":\"16\",\"syn\":true,\
         \"rst\":true,\"state\":\"closed\"}}}}",
        ts(t + 60, 5),
        7_000_000 + u64::from(dport),
        ts(t, 120_000),
        ts(t, 120_300)
    )
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = String::new();
    for l in lines {
        let _ = writeln!(text, "{l}");
    }
    std::fs::write(path, text).unwrap();
}

fn ship(c: &Collector, token: &str, eve: &Path) {
    let out = ship_once(eve, &c.url(), token, &c.ca());
    assert!(
        out.status.success(),
        "ship: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `khien collector correlate`; returns (stdout, stderr).
fn correlate(dir: &Path) -> (String, String) {
    let out = khien()
        .args(["collector", "correlate", "--data"])
        .arg(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "correlate: {stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

const RULES: &str = "\
rules:
  # The victim is scanned, exploited, then calls out to its C2: keyed by the victim, which
  # is dest_ip of the first two alerts and src_ip of the callback.
  - id: scan-exploit-callback
    type: sequence
    key: dest_ip
    window: 10m
    severity: 1
    attack: [T1046, T1190, T1071.001]
    steps:
      - { sids: [2001219] }
      - { categories: [\"Attempted Administrator Privilege Gain\"] }
      - { sids: [2404300], key: src_ip }
  - id: ssh-scan-burst
    type: threshold
    key: src_ip
    window: 10m
    count: 5
    attack: [T1110]
    match: { sids: [2001219] }
  - id: port-sweep
    type: distinct
    key: src_ip
    distinct: dest_port
    window: 10m
    count: 10
    attack: [T1046]
    match: { from: flow }
";

/// Scan → exploit → callback of one victim gives exactly one incident with its three alerts
/// and ATT&CK tags; two of three steps, steps out of order, a sequence longer than the
/// window, a threshold one alert short and a sweep one port short give none. Re-running the
/// correlator and restarting the collector add nothing; completing the threshold and the
/// sweep then gives their incidents.
#[test]
fn scan_exploit_callback_is_one_incident() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("correlation.yaml"), RULES).unwrap();
    let mut c = Collector::start(&dir, "127.0.0.1:0");
    let token = sensor_add(&dir, "hanoi", "edge-1");

    // All within the last two hours, the first event 60 s into a 10-minute window.
    let base = {
        let t = now() - 7200;
        t - t % 600 + 60
    };
    let attacker = "203.0.113.50";
    let c2 = "198.51.100.23";
    let mut lines = vec![
        // Victim A: the full chain, in order, within 2 minutes.
        alert(base, attacker, 51_000, "10.20.1.10", 22, &SSH_SCAN),
        alert(base + 60, attacker, 51_002, "10.20.1.10", 8080, &LOG4J),
        alert(base + 120, "10.20.1.10", 40_000, c2, 443, &FEODO_CNC),
        // Victim B: scan and exploit, no callback.
        alert(base + 5, attacker, 51_100, "10.20.1.11", 22, &SSH_SCAN),
        alert(base + 65, attacker, 51_102, "10.20.1.11", 8080, &LOG4J),
        // Victim C: all three steps, in the wrong order.
        alert(base + 10, "10.20.1.12", 40_100, c2, 443, &FEODO_CNC),
        alert(base + 20, attacker, 51_200, "10.20.1.12", 8080, &LOG4J),
        alert(base + 30, attacker, 51_202, "10.20.1.12", 22, &SSH_SCAN),
        // Victim D: in order, but the callback comes 10 min 1 s after the scan.
        alert(base + 15, attacker, 51_300, "10.20.1.13", 22, &SSH_SCAN),
        alert(base + 75, attacker, 51_302, "10.20.1.13", 8080, &LOG4J),
        alert(base + 15 + 601, "10.20.1.13", 40_300, c2, 443, &FEODO_CNC),
        // Unrelated alert on victim A's address: not a step.
        alert(
            base + 90,
            "10.20.1.10",
            40_400,
            "93.184.216.34",
            80,
            &POLICY,
        ),
    ];
    // Another scanner: 4 scan alerts (the threshold is 5) and flows to 9 ports (the sweep
    // needs 10). The attacker's own 4 scans above are also one short.
    let scanner = "203.0.113.77";
    for i in 0..4u16 {
        lines.push(alert(
            base + 200 + u64::from(i),
            scanner,
            52_000 + i,
            "10.20.2.1",
            22,
            &SSH_SCAN,
        ));
    }
    for port in [21u16, 22, 23, 25, 53, 80, 110, 143, 443] {
        lines.push(flow(base + 300, scanner, 53_000, "10.20.2.1", port));
    }
    let n_alerts = 12 + 4;
    let eve = tmp.path().join("eve.json");
    write_lines(&eve, &lines);
    ship(&c, &token, &eve);
    let alerts_sql = "SELECT count() FROM alert_events WHERE tenant = 'hanoi'";
    assert_eq!(
        wait_for(&dir, alerts_sql, n_alerts, Duration::from_secs(60)),
        n_alerts
    );
    assert_eq!(
        wait_for(
            &dir,
            "SELECT count() FROM flow_events",
            9,
            Duration::from_secs(30)
        ),
        9
    );

    let (out, err) = correlate(&dir);
    assert!(err.contains("3 rules evaluated"), "{err}");
    let _ = out; // The collector's own timer may have stored the incident first.
    let incidents = query(
        &dir,
        "SELECT rule, rule_type, key_field, key, attack, severity, events FROM incidents FINAL",
    );
    assert_eq!(
        incidents.trim(),
        "scan-exploit-callback\tsequence\tdest_ip\t10.20.1.10\t['T1046','T1190','T1071.001']\t1\t3",
        "exactly one incident"
    );
    // It links the three alerts of victim A, in order.
    let linked = query(
        &dir,
        "SELECT signature_id FROM alert_events WHERE has((SELECT any(event_ids) FROM incidents), toString(event_id)) ORDER BY ts",
    );
    assert_eq!(
        linked.split_whitespace().collect::<Vec<_>>(),
        ["2001219", "2034647", "2404300"]
    );
    let times = query(
        &dir,
        "SELECT toUInt32(window_start), toUInt32(first_seen), toUInt32(last_seen) FROM incidents",
    );
    assert_eq!(
        times.split_whitespace().collect::<Vec<_>>(),
        [
            (base - 60).to_string(),
            base.to_string(),
            (base + 120).to_string()
        ]
    );

    // Re-evaluation adds nothing.
    let (out, err) = correlate(&dir);
    assert!(err.contains("0 new incidents"), "{err}");
    assert!(out.is_empty(), "{out}");
    // Nor does a restart (the collector evaluates at start-up) followed by another run.
    c.stop();
    let c = Collector::start(&dir, "127.0.0.1:0");
    std::thread::sleep(Duration::from_secs(2));
    let (_, err) = correlate(&dir);
    assert!(err.contains("0 new incidents"), "{err}");
    assert_eq!(query_u64(&dir, "SELECT count() FROM incidents"), 1);

    // The fifth scan and the tenth port complete the threshold and the sweep.
    let more = vec![
        alert(base + 210, scanner, 52_010, "10.20.2.1", 22, &SSH_SCAN),
        flow(base + 310, scanner, 53_000, "10.20.2.1", 3389),
    ];
    let eve2 = tmp.path().join("eve2.json");
    write_lines(&eve2, &more);
    ship(&c, &token, &eve2);
    assert_eq!(
        wait_for(&dir, alerts_sql, n_alerts + 1, Duration::from_secs(60)),
        n_alerts + 1
    );
    assert_eq!(
        wait_for(
            &dir,
            "SELECT count() FROM flow_events",
            10,
            Duration::from_secs(30)
        ),
        10
    );
    correlate(&dir);
    let incidents = query(
        &dir,
        "SELECT rule, key, attack, events, length(event_ids) FROM incidents FINAL ORDER BY rule",
    );
    assert_eq!(
        incidents.trim(),
        "port-sweep\t203.0.113.77\t['T1046']\t10\t10\n\
         scan-exploit-callback\t10.20.1.10\t['T1046','T1190','T1071.001']\t3\t3\n\
         ssh-scan-burst\t203.0.113.77\t['T1110']\t5\t5"
    );
    let listing = khien()
        .args(["collector", "incidents", "--data"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(listing.status.success());
    assert_eq!(String::from_utf8_lossy(&listing.stdout).lines().count(), 3);
    assert_eq!(query_u64(&dir, "SELECT count() FROM incidents"), 3);

    // A sixth scan in the same window updates the burst: same incident, six events, the
    // new last time, its first creation time kept.
    let created = query(
        &dir,
        "SELECT toUInt32(created) FROM incidents FINAL WHERE rule = 'ssh-scan-burst'",
    );
    let eve3 = tmp.path().join("eve3.json");
    write_lines(
        &eve3,
        &[alert(
            base + 220,
            scanner,
            52_011,
            "10.20.2.1",
            22,
            &SSH_SCAN,
        )],
    );
    ship(&c, &token, &eve3);
    assert_eq!(
        wait_for(&dir, alerts_sql, n_alerts + 2, Duration::from_secs(60)),
        n_alerts + 2
    );
    let (out, err) = correlate(&dir);
    // The collector's own timer may have made the update first.
    assert!(
        err.contains("0 new incidents, 1 updated") || err.contains("0 new incidents, 0 updated"),
        "{err}"
    );
    assert!(out.is_empty() || out.starts_with("updated\t"), "{out}");
    let burst = query(
        &dir,
        "SELECT events, length(event_ids), toUInt32(last_seen), toUInt32(created) FROM incidents FINAL WHERE rule = 'ssh-scan-burst'",
    );
    assert_eq!(
        burst.split_whitespace().collect::<Vec<_>>(),
        ["6", "6", &(base + 220).to_string(), created.trim()]
    );
    assert_eq!(query_u64(&dir, "SELECT count() FROM incidents FINAL"), 3);
    let (_, err) = correlate(&dir);
    assert!(err.contains("0 new incidents, 0 updated"), "{err}");
}

const ASSETS: &str = "\
systems:
  - agency: Sở Thông tin và Truyền thông Hà Nội
    system: Cổng dịch vụ công
    level: 4
    networks: [10.20.0.0/16]
  - agency: Sở Thông tin và Truyền thông Hà Nội
    system: Văn phòng điện tử
    level: 2
    networks: [10.30.0.0/16, \"2001:db8:30::/48\"]
";

/// An alert on a level-4 system gets the asset columns and severity 1; the source side is
/// used when only the source is in the inventory; other events are enriched too.
#[test]
fn assets_enrich_events_and_raise_severity() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("assets.yaml"), ASSETS).unwrap();
    let c = Collector::start(&dir, "127.0.0.1:0");
    let token = sensor_add(&dir, "hanoi", "edge-1");
    let t = now() - 600;
    let lines = vec![
        alert(t, "203.0.113.9", 50_000, "10.20.1.10", 8080, &POLICY),
        alert(t + 1, "10.30.2.2", 50_001, "93.184.216.34", 80, &POLICY),
        alert(t + 2, "203.0.113.9", 50_002, "192.0.2.10", 80, &POLICY),
        flow(
            t,
            "2001:0db8:0030:0000:0000:0000:0000:0002",
            50_003,
            "2001:0db8:ffff:0000:0000:0000:0000:0001",
            443,
        ),
    ];
    let eve = tmp.path().join("eve.json");
    write_lines(&eve, &lines);
    ship(&c, &token, &eve);
    assert_eq!(
        wait_for(
            &dir,
            "SELECT count() FROM events",
            4,
            Duration::from_secs(60)
        ),
        4
    );
    let rows = query(
        &dir,
        "SELECT dest_ip, asset_side, asset_agency, asset_system, asset_level, severity, \
         position(raw, '\"severity\":3') > 0 FROM alert_events ORDER BY ts",
    );
    assert_eq!(
        rows.trim(),
        "10.20.1.10\tdest\tSở Thông tin và Truyền thông Hà Nội\tCổng dịch vụ công\t4\t1\t1\n\
         93.184.216.34\tsrc\tSở Thông tin và Truyền thông Hà Nội\tVăn phòng điện tử\t2\t3\t1\n\
         192.0.2.10\t\t\t\t0\t3\t1"
    );
    assert_eq!(
        query(
            &dir,
            "SELECT asset_side, asset_system, asset_level FROM flow_events"
        )
        .trim(),
        "src\tVăn phòng điện tử\t2"
    );
    // The `events` view carries the asset columns too (migration 4), for every event type.
    assert_eq!(
        query(
            &dir,
            "SELECT event_type, asset_level FROM events WHERE asset_level > 0 \
             ORDER BY event_type, asset_level"
        )
        .trim(),
        "alert\t2\nalert\t4\nflow\t2"
    );
}

/// A plain list and a STIX 2.1 bundle: an IP, a domain (via a subdomain), a URL and a
/// SHA-256 each give one intel alert with its source and matched field (the `http` object
/// that Suricata repeats in the fileinfo record does not match twice); near misses give none; re-shipping the same file adds nothing; unsupported STIX patterns are reported.
#[test]
fn indicators_from_list_and_stix_make_intel_alerts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(dir.join("indicators")).unwrap();
    std::fs::write(
        dir.join("indicators/feed.txt"),
        "# VNCERT daily feed\n198.51.100.23\nevil.example\n",
    )
    .unwrap();
    let sha = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
    let bundle = format!(
        r#"{{"type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d","objects":[
  {{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2026-11-01T00:00:00.000Z","modified":"2026-11-01T00:00:00.000Z","pattern_type":"stix","pattern":"[url:value = 'http://dl.bad.example/payload.bin']","valid_from":"2026-11-01T00:00:00Z"}},
  {{"type":"indicator","spec_version":"2.1","id":"indicator--d81f86b9-975b-4c0b-875e-810c5ad45a4f","created":"2026-11-01T00:00:00.000Z","modified":"2026-11-01T00:00:00.000Z","pattern_type":"stix","pattern":"[file:hashes.'SHA-256' = '{sha}']","valid_from":"2026-11-01T00:00:00Z"}},
  {{"type":"indicator","spec_version":"2.1","id":"indicator--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061","created":"2026-11-01T00:00:00.000Z","modified":"2026-11-01T00:00:00.000Z","pattern_type":"stix","pattern":"[network-traffic:dst_port = 4444 AND ipv4-addr:value = '192.0.2.99']","valid_from":"2026-11-01T00:00:00Z"}}
]}}"#
    );
    std::fs::write(dir.join("indicators/vncert.json"), bundle).unwrap();

    let check = khien()
        .args(["collector", "check", "--data"])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        stdout.contains("indicators: 4 loaded, 1 unsupported"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("unsupported\tvncert.json#indicator--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061\t"),
        "{stdout}"
    );

    let c = Collector::start(&dir, "127.0.0.1:0");
    let token = sensor_add(&dir, "danang", "edge-1");
    let t = now() - 600;
    let near_sha = format!("{}e", &sha[..63]);
    let lines = vec![
        // A flow record is written when the flow ends: its timestamp is `t`.
        flow(t - 60, "10.20.1.10", 40_000, "198.51.100.23", 443),
        format!("{{\"timestamp\":\"{}\",\"flow_id\":11,\"in_iface\":\"ens18\",\"event_type\":\"dns\",\"src_ip\":\"10.20.1.10\",\"src_port\":53124,\"dest_ip\":\"10.20.0.53\",\"dest_port\":53,\"proto\":\"UDP\",\"dns\":{{\"version\":2,\"type\":\"query\",\"id\":4242,\"rrname\":\"cdn.evil.example\",\"rrtype\":\"A\",\"tx_id\":0,\"opcode\":0}}}}", ts(t + 1, 0)),
        format!("{{\"timestamp\":\"{}\",\"flow_id\":12,\"in_iface\":\"ens18\",\"event_type\":\"http\",\"src_ip\":\"10.20.1.10\",\"src_port\":40100,\"dest_ip\":\"192.0.2.80\",\"dest_port\":80,\"proto\":\"TCP\",\"tx_id\":0,\"http\":{{\"hostname\":\"dl.bad.example\",\"url\":\"/payload.bin\",\"http_user_agent\":\"curl/8.4.0\",\"http_method\":\"GET\",\"protocol\":\"HTTP/1.1\",\"status\":200,\"length\":5120}}}}", ts(t + 2, 0)),
        format!("{{\"timestamp\":\"{}\",\"flow_id\":12,\"in_iface\":\"ens18\",\"event_type\":\"fileinfo\",\"src_ip\":\"192.0.2.80\",\"src_port\":80,\"dest_ip\":\"10.20.1.10\",\"dest_port\":40100,\"proto\":\"TCP\",\"http\":{{\"hostname\":\"dl.bad.example\",\"url\":\"/payload.bin\"}},\"app_proto\":\"http\",\"fileinfo\":{{\"filename\":\"/payload.bin\",\"sid\":[],\"gaps\":false,\"state\":\"CLOSED\",\"md5\":\"d41d8cd98f00b204e9800998ecf8427e\",\"sha1\":\"da39a3ee5e6b4b0d3255bfef95601890afd80709\",\"sha256\":\"{sha}\",\"stored\":false,\"size\":5120,\"tx_id\":0}}}}", ts(t + 3, 0)),
        // Near misses.
        flow(t + 4, "10.20.1.10", 40_001, "198.51.100.24", 443),
        format!("{{\"timestamp\":\"{}\",\"flow_id\":13,\"event_type\":\"dns\",\"src_ip\":\"10.20.1.10\",\"src_port\":53125,\"dest_ip\":\"10.20.0.53\",\"dest_port\":53,\"proto\":\"UDP\",\"dns\":{{\"version\":2,\"type\":\"query\",\"id\":4243,\"rrname\":\"notevil.example\",\"rrtype\":\"A\"}}}}", ts(t + 5, 0)),
        format!("{{\"timestamp\":\"{}\",\"flow_id\":14,\"event_type\":\"http\",\"src_ip\":\"10.20.1.10\",\"src_port\":40101,\"dest_ip\":\"192.0.2.80\",\"dest_port\":80,\"proto\":\"TCP\",\"http\":{{\"hostname\":\"dl.bad.example\",\"url\":\"/payload.bin.txt\"}}}}", ts(t + 6, 0)),
        format!("{{\"timestamp\":\"{}\",\"flow_id\":15,\"event_type\":\"fileinfo\",\"src_ip\":\"192.0.2.80\",\"src_port\":80,\"dest_ip\":\"10.20.1.10\",\"dest_port\":40101,\"proto\":\"TCP\",\"fileinfo\":{{\"filename\":\"/x\",\"sha256\":\"{near_sha}\",\"size\":1}}}}", ts(t + 7, 0)),
    ];
    let eve = tmp.path().join("eve.json");
    write_lines(&eve, &lines);
    ship(&c, &token, &eve);
    assert_eq!(
        wait_for(
            &dir,
            "SELECT count() FROM events",
            8,
            Duration::from_secs(60)
        ),
        8
    );
    let intel_sql = "SELECT count() FROM intel_alerts WHERE tenant = 'danang'";
    assert_eq!(wait_for(&dir, intel_sql, 4, Duration::from_secs(30)), 4);
    let rows = query(
        &dir,
        "SELECT indicator_kind, indicator, field, value, source, event_type FROM intel_alerts ORDER BY ts",
    );
    let rows: Vec<&str> = rows.lines().collect();
    assert_eq!(
        rows,
        [
            "ip\t198.51.100.23/32\tdest_ip\t198.51.100.23\tfeed.txt:2\tflow",
            "domain\tevil.example\tdns.rrname\tcdn.evil.example\tfeed.txt:3\tdns",
            "url\thttp://dl.bad.example/payload.bin\thttp.url\t/payload.bin\tvncert.json#indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f\thttp",
            &format!("sha256\t{sha}\tfileinfo.sha256\t{sha}\tvncert.json#indicator--d81f86b9-975b-4c0b-875e-810c5ad45a4f\tfileinfo"),
        ]
    );
    // Each intel alert names its event, which is stored once in `events`.
    assert_eq!(
        query_u64(&dir, "SELECT count() FROM events WHERE event_id IN (SELECT source_event_id FROM intel_alerts)"),
        4
    );
    // Forget the shipper's offset and ship again: duplicates, no new intel alerts.
    let mut state = eve.clone().into_os_string();
    state.push(".khien-ship.json");
    std::fs::remove_file(&state).unwrap();
    ship(&c, &token, &eve);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(query_u64(&dir, intel_sql), 4);
    assert_eq!(
        query_u64(&dir, "SELECT uniqExact(event_id) FROM intel_alerts"),
        4
    );
}
