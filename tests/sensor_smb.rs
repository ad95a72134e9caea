//! `khien sensor` on the shared pcaps' SMB sessions: flows labelled smb and the files SMB1
//! and SMB2/3 carry, against what Suricata 7.0.10 logs for the same pcaps.

mod sensor_common;

use std::collections::HashMap;

use sensor_common::{data_dir, of_proto, run};

/// (filename, size, sha256) of each SMB file, with its count.
fn files(ev: &[serde_json::Value]) -> HashMap<(String, u64, String), usize> {
    let mut m = HashMap::new();
    for e in of_proto(ev, "fileinfo", "smb") {
        let f = &e["fileinfo"];
        let k = (
            f["filename"].as_str().unwrap_or_default().to_string(),
            f["size"].as_u64().unwrap(),
            f["sha256"].as_str().unwrap_or_default().to_string(),
        );
        *m.entry(k).or_default() += 1;
    }
    m
}

#[test]
fn zeek_smb2_files_match_suricata() {
    let ev = run("zeek-corpus-merged.pcap", None);
    // Suricata 7.0.10 labels 34 flows smb on this pcap and logs 131 SMB files (122 SMB
    // 3.11, 1 SMB 2.02 ones CLOSED with hashes, 8 TRUNCATED without).
    let flows = of_proto(&ev, "flow", "smb").len();
    assert!((33..=35).contains(&flows), "{flows} smb flows");
    let f = files(&ev);
    let n: usize = f.values().sum();
    assert!((127..=135).contains(&n), "{n} smb files");
    // Files as Suricata logs them: a 1.5 MB write past the default 1 MB stream depth
    // (SMB streams are followed whole), executables read out of order.
    for (name, size, sha) in [
        (
            "WP_SMBPlugin.pdf",
            1_508_939,
            "bfd6c1e37163061efa56555df55911dcab8a5bbb332c47e4ebac3ac11e6f6c5c",
        ),
        (
            "11regedit.exe",
            369_664,
            "f5cb9796e4517d2e2d3468a5de1da12bc57d0a582cab46f8a70b69b0ffde928d",
        ),
        (
            "11regedit.enc",
            493_848,
            "b53f0d3f45fb43f9ac1170c7b99629e75ddd3d41d516797560e10ce61f68839c",
        ),
        (
            "100-small-files\\100.txt",
            4,
            "eea8254c7500ba3de996aa8ad6af399183f04e17d4a8102fde539dbc93a90012",
        ),
    ] {
        assert!(
            f.contains_key(&(name.to_string(), size, sha.to_string())),
            "{name} missing"
        );
    }
    // Truncated SMB files carry no hashes, as in Suricata's EVE.
    for e in of_proto(&ev, "fileinfo", "smb") {
        let fi = &e["fileinfo"];
        assert_eq!(
            fi["state"] == "TRUNCATED",
            fi.get("sha256").is_none(),
            "{e}"
        );
    }
}

#[test]
fn sv_smb1_files_match_suricata() {
    let ev = run("sv-corpus-merged.pcap", None);
    let f = files(&ev);
    let n: usize = f.values().sum();
    // Suricata 7.0.10 logs 216 SMB files on this pcap (50 of them SMB1).
    assert!((210..=227).contains(&n), "{n} smb files");
    let mame = (
        "\\MAME.EXE".to_string(),
        4096,
        "1dc15d9d3532d957656f7a16e9c3ad0c91c13b44ac2ab83f4d8fdc02648a2146".to_string(),
    );
    assert!(f.contains_key(&mame), "SMB1 READ_ANDX file missing");
}

#[test]
fn alert_smb_rule_fires_once_the_flow_is_smb() {
    // ET Open's `alert smb` ETERNALBLUE probe-response rule: it can only match on a flow
    // whose app_proto is smb. Suricata 7.0.10 with ET Open fires it twice on this pcap, on
    // the responses of 10.4.30.5 and 10.7.9.6.
    let src = data_dir().join("etopen/et-open-2024-04-18/emerging-exploit.rules");
    let text = std::fs::read_to_string(&src).expect("ET Open rules missing (set KHIEN_DATA)");
    let rule = text
        .lines()
        .find(|l| l.starts_with("alert smb ") && l.contains("sid:2025650;"))
        .expect("rule 2025650");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("smb.rules");
    std::fs::write(&rules, format!("{rule}\n")).unwrap();
    let mut servers: Vec<String> = run("sv-corpus-merged.pcap", Some(&rules))
        .into_iter()
        .filter(|e| e["event_type"] == "alert" && e["alert"]["signature_id"] == 2025650)
        .map(|e| {
            assert_eq!(e["app_proto"], "smb", "{e}");
            format!("{}:{}", e["src_ip"].as_str().unwrap(), e["src_port"])
        })
        .collect();
    servers.sort();
    assert_eq!(servers, ["10.4.30.5:445", "10.7.9.6:445"]);
}
