//! Synthetic EVE lines in Suricata 7's exact layout, for tests and benchmarks that must not
//! depend on Suricata being installed. Deterministic: line `i` is always the same.
//!
//! Mix per 20 lines: 6 flow, 4 dns, 3 http, 2 tls, 1 alert, 1 fileinfo, 1 anomaly, 1 stats,
//! 1 ssh — roughly what Suricata writes for enterprise traffic.

use std::fmt::Write;

/// Base time of generated events: 2026-11-22T00:00:00Z.
pub const BASE_TS: u64 = 1_795_305_600;

fn ts(out: &mut String, i: u64) {
    let t = BASE_TS + i / 10_000;
    let usec = (i % 10_000) * 100;
    let days = t / 86_400;
    let secs = t % 86_400;
    let (y, m, d) = civil(days as i64);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{usec:06}+0000",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
}

/// Appends the UTC date of Unix time `t` as `YYYYMMDD`.
pub fn date(out: &mut String, t: u64) {
    let (y, m, d) = civil((t / 86_400) as i64);
    let _ = write!(out, "{y:04}{m:02}{d:02}");
}

fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Appends line `i` (without newline) to `out`.
pub fn line(out: &mut String, i: u64) {
    let flow_id = 1_000_000_000_000 + i * 7919;
    let host = i % 250 + 1;
    let sport = 1024 + i % 60_000;
    out.push_str("{\"timestamp\":\"");
    ts(out, i);
    out.push('"');
    let common = |out: &mut String, kind: &str, proto: &str, dst: &str, dport: u64| {
        let _ = write!(
            out,
            ",\"flow_id\":{flow_id},\"in_iface\":\"eth0\",\"event_type\":\"{kind}\",\
             \"src_ip\":\"10.10.{}.{host}\",\"src_port\":{sport},\"dest_ip\":\"{dst}\",\
             \"dest_port\":{dport},\"proto\":\"{proto}\"",
            i % 200,
        );
    };
    match i % 20 {
        0..=5 => {
            common(out, "flow", "TCP", "203.0.113.10", 443);
            out.push_str(",\"app_proto\":\"tls\",\"flow\":{\"pkts_toserver\":12,\"pkts_toclient\":10,\"bytes_toserver\":1534,\"bytes_toclient\":6120,\"start\":\"");
            ts(out, i.saturating_sub(20_000));
            out.push_str("\",\"end\":\"");
            ts(out, i);
            out.push_str("\",\"age\":2,\"state\":\"closed\",\"reason\":\"timeout\",\"alerted\":false},\"tcp\":{\"tcp_flags\":\"1b\",\"tcp_flags_ts\":\"1b\",\"tcp_flags_tc\":\"1b\",\"syn\":true,\"fin\":true,\"psh\":true,\"ack\":true,\"state\":\"closed\"}}");
        }
        6..=9 => {
            common(out, "dns", "UDP", "10.0.0.53", 53);
            let _ = write!(
                out,
                ",\"pkt_src\":\"wire/pcap\",\"dns\":{{\"type\":\"query\",\"id\":{},\"rrname\":\"host{}.example.gov.vn\",\"rrtype\":\"A\",\"tx_id\":0,\"opcode\":0}}}}",
                i % 65_536,
                i % 1000
            );
        }
        10..=12 => {
            common(out, "http", "TCP", "198.51.100.20", 80);
            let _ = write!(
                out,
                ",\"pkt_src\":\"wire/pcap\",\"tx_id\":0,\"http\":{{\"hostname\":\"portal.example.gov.vn\",\"url\":\"/news/{}.html\",\"http_user_agent\":\"Mozilla/5.0 (Windows NT 10.0; Win64; x64)\",\"http_content_type\":\"text/html\",\"http_method\":\"GET\",\"protocol\":\"HTTP/1.1\",\"status\":200,\"length\":{}}}}}",
                i % 5000,
                i % 90_000
            );
        }
        13 | 14 => {
            common(out, "tls", "TCP", "203.0.113.10", 443);
            out.push_str(",\"pkt_src\":\"wire/pcap\",\"tls\":{\"subject\":\"CN=mail.example.gov.vn\",\"issuerdn\":\"C=US, O=Let's Encrypt, CN=R3\",\"serial\":\"04:1A:9C\",\"fingerprint\":\"8a:2f:11:de:90:77:4c:aa:13:5b:0e:cf:77:02:91:e4:13:ab:cd:ef\",\"sni\":\"mail.example.gov.vn\",\"version\":\"TLS 1.2\",\"notbefore\":\"2026-09-01T00:00:00\",\"notafter\":\"2026-11-30T00:00:00\",\"ja3\":{\"hash\":\"e7d705a3286e19ea42f587b344ee6865\",\"string\":\"771,4866-4867-4865,0-23-65281-10-11-35-16-5-13-18-51-45-43-27-21,29-23-24,0\"},\"ja3s\":{\"hash\":\"f4febc55ea12b31ae17cfb7e614afda8\",\"string\":\"771,4866,43-51\"}}}");
        }
        15 => {
            common(out, "alert", "TCP", "198.51.100.20", 80);
            let sid = 2_100_000 + i % 50;
            let _ = write!(
                out,
                ",\"pkt_src\":\"wire/pcap\",\"tx_id\":0,\"alert\":{{\"action\":\"allowed\",\"gid\":1,\"signature_id\":{sid},\"rev\":3,\"signature\":\"ET POLICY Synthetic test signature {sid}\",\"category\":\"Potential Corporate Privacy Violation\",\"severity\":2}},\"app_proto\":\"http\",\"direction\":\"to_server\",\"flow\":{{\"pkts_toserver\":4,\"pkts_toclient\":3,\"bytes_toserver\":420,\"bytes_toclient\":1200,\"start\":\""
            );
            ts(out, i);
            out.push_str("\",\"src_ip\":\"10.10.1.1\",\"dest_ip\":\"198.51.100.20\",\"src_port\":40000,\"dest_port\":80}}");
        }
        16 => {
            common(out, "fileinfo", "TCP", "198.51.100.20", 80);
            let _ = write!(
                out,
                ",\"pkt_src\":\"wire/pcap\",\"app_proto\":\"http\",\"fileinfo\":{{\"filename\":\"/files/report{}.pdf\",\"gaps\":false,\"state\":\"CLOSED\",\"md5\":\"{:032x}\",\"sha1\":\"{:040x}\",\"sha256\":\"{:064x}\",\"stored\":false,\"size\":{},\"tx_id\":0}}}}",
                i % 100,
                i,
                i,
                i,
                i % 1_000_000
            );
        }
        17 => {
            common(out, "anomaly", "TCP", "198.51.100.20", 80);
            out.push_str(",\"pkt_src\":\"wire/pcap\",\"app_proto\":\"http\",\"anomaly\":{\"app_proto\":\"http\",\"type\":\"applayer\",\"event\":\"UNABLE_TO_MATCH_RESPONSE_TO_REQUEST\",\"layer\":\"proto_parser\"}}");
        }
        18 => {
            out.push_str(",\"event_type\":\"stats\",\"stats\":{\"uptime\":120,\"capture\":{\"kernel_packets\":123456,\"kernel_drops\":0},\"decoder\":{\"pkts\":123456,\"bytes\":98765432}}}");
        }
        _ => {
            common(out, "ssh", "TCP", "203.0.113.22", 22);
            out.push_str(",\"pkt_src\":\"wire/pcap\",\"app_proto\":\"ssh\",\"ssh\":{\"client\":{\"proto_version\":\"2.0\",\"software_version\":\"OpenSSH_9.2p1\"},\"server\":{\"proto_version\":\"2.0\",\"software_version\":\"OpenSSH_8.9\"}}}");
        }
    }
}

/// Writes lines `0..n` to `path`, one per line.
pub fn write_file(path: &std::path::Path, n: u64) -> std::io::Result<u64> {
    use std::io::Write as _;
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut s = String::with_capacity(1024);
    let mut bytes = 0;
    for i in 0..n {
        s.clear();
        line(&mut s, i);
        s.push('\n');
        f.write_all(s.as_bytes())?;
        bytes += s.len() as u64;
    }
    f.flush()?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eve::{parse, Family};

    #[test]
    fn every_synthetic_line_parses() {
        let mut seen = std::collections::HashSet::new();
        let mut s = String::new();
        for i in 0..40 {
            s.clear();
            line(&mut s, i);
            let e = parse(s.as_bytes()).unwrap_or_else(|e| panic!("line {i}: {e}: {s}"));
            seen.insert(e.family());
            let v: serde_json::Value = serde_json::from_str(&s).unwrap();
            assert!(v.is_object());
        }
        assert_eq!(seen.len(), Family::ALL.len());
        s.clear();
        ts(&mut s, 0);
        assert_eq!(s, "2026-11-22T00:00:00.000000+0000");
    }
}
