//! `khien sensor` on the shared pcaps' NFS flows: flows labelled nfs and the files NFSv2,
//! v3 and v4 READs and WRITEs carry, against what Suricata 7.0.10 logs for the same pcaps.

mod sensor_common;

use sensor_common::{of_proto, run};

/// (filename, state, size, sha256) of each NFS file, sorted.
fn files(ev: &[serde_json::Value]) -> Vec<(String, String, u64, String)> {
    let mut v: Vec<_> = of_proto(ev, "fileinfo", "nfs")
        .iter()
        .map(|e| {
            let f = &e["fileinfo"];
            (
                f["filename"].as_str().unwrap_or_default().to_string(),
                f["state"].as_str().unwrap_or_default().to_string(),
                f["size"].as_u64().unwrap(),
                f["sha256"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

const BLN: &str = "cb39bdb9ce305c91be125134205144c2d5fbf458291711f90f4d2276c69821d8";

fn f(name: &str, state: &str, size: u64, sha: &str) -> (String, String, u64, String) {
    (name.into(), state.into(), size, sha.into())
}

#[test]
fn sv_nfs_v2_v3_v4_files_match_suricata() {
    let ev = run("sv-corpus-merged.pcap", None);
    // Suricata 7.0.10: two UDP flows (NFSv2, NFSv3) and one TCP NFSv4.1 flow are nfs;
    // NULL pings alone on UDP port 2049 are not.
    assert_eq!(of_proto(&ev, "flow", "nfs").len(), 3);
    assert_eq!(
        files(&ev),
        vec![
            // NFSv4 WRITE, FILE_SYNC.
            f(
                "",
                "CLOSED",
                5,
                "f2ca1bb6c7e907d06dafe4687e579fce76b37e4e93b7605022da52e6ccc26fd2"
            ),
            // NFSv2 READ (no name in v2), ended at the size in the attributes.
            f("", "CLOSED", 11, BLN),
            // NFSv3 READ named by LOOKUP, read twice; an UNSTABLE WRITE never committed.
            f("bln", "CLOSED", 11, BLN),
            f("bln", "CLOSED", 11, BLN),
            f("h", "TRUNCATED", 6, ""),
        ]
    );
}

#[test]
fn zeek_nfs_v3_write_matches_suricata() {
    let ev = run("zeek-corpus-merged.pcap", None);
    assert_eq!(of_proto(&ev, "flow", "nfs").len(), 6);
    assert_eq!(
        files(&ev),
        vec![f(
            "hello_world",
            "CLOSED",
            13,
            "03ba204e50d126e4674c005e04d82e84c21366780af1f43bd54a37816b6ab340"
        )]
    );
}
