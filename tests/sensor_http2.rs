//! `khien sensor` on the shared sv pcap's HTTP/2 sessions (prior knowledge and h2c
//! upgrades): flows labelled http2 and the files their streams carry, against what
//! Suricata 7.0.10 logs for the same pcap.

mod sensor_common;

use std::collections::HashMap;

use sensor_common::{of_proto, run};

#[test]
fn sv_http2_flows_and_files_match_suricata() {
    let ev = run("sv-corpus-merged.pcap", None);
    // Suricata 7.0.10 labels 18 flows http2 on this pcap (7 of them after an h2c upgrade,
    // app_proto_orig http) and logs 109 HTTP/2 files.
    let flows = of_proto(&ev, "flow", "http2").len();
    assert!((17..=19).contains(&flows), "{flows} http2 flows");
    let files = of_proto(&ev, "fileinfo", "http2");
    assert!((100..=112).contains(&files.len()), "{} files", files.len());
    let mut by_hash: HashMap<(u64, String), usize> = HashMap::new();
    for e in &files {
        let f = &e["fileinfo"];
        // Suricata names no HTTP/2 file, and logs no hashes for a truncated one.
        assert!(f.get("filename").is_none(), "{e}");
        assert_eq!(f["state"] == "TRUNCATED", f.get("sha256").is_none(), "{e}");
        assert_eq!(e["http"]["version"], "2", "{e}");
        let key = (
            f["size"].as_u64().unwrap(),
            f["sha256"].as_str().unwrap_or_default().to_string(),
        );
        *by_hash.entry(key).or_default() += 1;
    }
    // Files as Suricata logs them: gzip-decoded responses, a 250 KB stream whose DATA
    // spans many frames and segments, a gRPC request, and the body answering a request
    // whose ":path" came Huffman-coded with the dynamic table in use.
    for (size, sha) in [
        (
            639,
            "5f07910c7f108136d72eaf427d13a653abbd8f5d2ce9cf9d01d9a29d665eb7f7",
        ),
        (
            1150,
            "8bb1d0fa43a17436d59dd546f6f74c76dc44735def7522c22d8031166db8911d",
        ),
        (
            252_879,
            "c4e85e6df5eea72a55264e51bdadddd541f6483897ea9e40335f03a669fd6256",
        ),
        (
            85_592,
            "3a5d4df57341710887239061244728774353c0e83c49232fd01ee6812137d245",
        ),
        (
            12,
            "c4de621f0bd7b07549f7bac740014363f307af7886f49ace058c11b43e9ba720",
        ),
        (
            468,
            "831d9a3bbbf81f288a0e3ff7997f9e6819b3df28dcdea4c979af8a52bce0851c",
        ),
    ] {
        assert!(
            by_hash.contains_key(&(size, sha.to_string())),
            "{size}-byte file {sha} missing"
        );
    }
    // The request headers Suricata logs beside the dns.google answer (HPACK decoded).
    let dns = files
        .iter()
        .find(|e| e["fileinfo"]["size"] == 468)
        .expect("dns.google file");
    let req = dns["http"]["request_headers"].as_array().unwrap();
    assert!(
        req.contains(&serde_json::json!({"name": ":authority", "value": "dns.google"})),
        "{dns}"
    );
    assert_eq!(dns["http"]["http_user_agent"], "Chrome");
    assert_eq!(dns["http"]["status"], 200);
}
