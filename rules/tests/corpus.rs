//! Data-driven conformance of the rule parser against Suricata 7.0.10 on real rulesets.
//!
//! The reference numbers below were measured with Suricata 7.0.10 (Debian bookworm-backports)
//! on this repository's machine: `suricata -v -T -S ALL.rules`, where ALL.rules is every file
//! of the set concatenated (a newline between files) with commented-out rules uncommented,
//! and modbus/dnp3/enip detection enabled. Suricata prints `N rules successfully loaded, M
//! rules failed`. See SURICATA-7.0.10-VERDICTS.md in the data directory for the failures.

use std::path::PathBuf;

use khien_rules::{parse_rule, Code, LoadOptions, Ruleset};

fn data_dir() -> PathBuf {
    let d: PathBuf = std::env::var_os("KHIEN_DATA")
        .map(Into::into)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data").into());
    assert!(
        d.join("etopen").is_dir(),
        "reference data not found at {} (set KHIEN_DATA)",
        d.display()
    );
    d
}

fn load(set: &str, include_disabled: bool) -> Ruleset {
    let dir = data_dir().join("etopen").join(set);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    files.sort();
    let mut rs = Ruleset::new(LoadOptions {
        include_disabled,
        ..LoadOptions::default()
    });
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        rs.add_file(&f.file_name().unwrap().to_string_lossy(), &text);
    }
    rs
}

fn failed_sids(rs: &Ruleset, code: Option<Code>) -> Vec<u32> {
    let mut v: Vec<u32> = rs
        .reports()
        .iter()
        .filter(|r| r.severity == khien_rules::Severity::Error)
        .filter(|r| code.is_none_or(|c| r.code == c))
        .filter_map(|r| r.sid)
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn et_open_2024_enabled_all_load() {
    let rs = load("et-open-2024-04-18", false);
    let c = rs.counts();
    println!(
        "et-open-2024-04-18 enabled: {} loaded, {} failed",
        c.loaded, c.failed
    );
    assert_eq!(
        (c.loaded, c.failed),
        (24_827, 0),
        "{:#?}",
        &rs.reports()[..rs.reports().len().min(10)]
    );
}

#[test]
fn et_open_2024_with_disabled_matches_suricata() {
    // Suricata 7.0.10: 34849 rules successfully loaded, 1 rules failed (sid 2046878:
    // "Malformed bitmask value" in `byte_test … bitmask fc`).
    let rs = load("et-open-2024-04-18", true);
    let c = rs.counts();
    println!(
        "et-open-2024-04-18 enabled+disabled: {} loaded, {} failed",
        c.loaded, c.failed
    );
    assert_eq!(failed_sids(&rs, None), [2046878], "{:#?}", rs.reports());
    assert_eq!((c.loaded, c.failed), (34_849, 1));
}

#[test]
fn et_open_2019_matches_suricata() {
    // Enabled rules: Suricata loads all but sid 2025232 (`file_data; file_data;` → "previous
    // sticky buffer has no matches").
    let rs = load("et-open-2019-04-05", false);
    let c = rs.counts();
    println!(
        "et-open-2019-04-05 enabled: {} loaded, {} failed",
        c.loaded, c.failed
    );
    assert_eq!(failed_sids(&rs, None), [2025232]);
    assert_eq!(rs.reports()[0].code, Code::EmptyBuffer);
    assert_eq!((c.loaded, c.failed), (19_469, 1));
    // With the commented-out rules: Suricata 7.0.10 loads 27021 and fails 1 (the same sid).
    // (SURICATA-7.0.10-VERDICTS.md reports a second failure, sid 2404573: its file lacks a
    // final newline, so concatenating files glued the next file's `#` comment after its `)`;
    // `concatenated_comment_after_paren_is_rejected_like_suricata` covers that case.)
    let rs = load("et-open-2019-04-05", true);
    let c = rs.counts();
    println!(
        "et-open-2019-04-05 enabled+disabled: {} loaded, {} failed",
        c.loaded, c.failed
    );
    assert_eq!(failed_sids(&rs, None), [2025232]);
    assert_eq!((c.loaded, c.failed), (27_021, 1));
}

#[test]
fn suricata_builtin_rules_all_load() {
    for include_disabled in [false, true] {
        let rs = load("suricata-7.0.10-builtin", include_disabled);
        let c = rs.counts();
        println!(
            "suricata-7.0.10-builtin (disabled included: {include_disabled}): {} loaded, {} failed",
            c.loaded, c.failed
        );
        assert_eq!(c.failed, 0, "{:#?}", rs.reports());
        assert!(c.loaded >= 380);
    }
}

#[test]
fn concatenated_comment_after_paren_is_rejected_like_suricata() {
    // What Suricata saw for sid 2404573: a rule followed on the same line by `#…`.
    let r = r#"alert ip any any -> any any (msg:"x"; sid:2404573; rev:1;)# Emerging Threats"#;
    assert_eq!(parse_rule(r).unwrap_err().code, Code::UnterminatedOption);
}

/// AST → text → AST is the identity on every rule of every set.
#[test]
fn canonical_print_roundtrips_every_rule() {
    let mut n = 0;
    for set in [
        "et-open-2024-04-18",
        "et-open-2019-04-05",
        "suricata-7.0.10-builtin",
    ] {
        let rs = load(set, true);
        for lr in rs.rules() {
            let printed = lr.rule.to_string();
            let again = parse_rule(&printed).unwrap_or_else(|d| {
                panic!(
                    "{}:{}: canonical form does not parse: {d}\n{printed}",
                    lr.file, lr.line
                )
            });
            assert_eq!(again, lr.rule, "{}:{}: {printed}", lr.file, lr.line);
            // And printing is stable.
            assert_eq!(again.to_string(), printed);
            n += 1;
        }
    }
    println!("{n} rules round-tripped");
    assert!(n > 60_000);
}

/// Rules Suricata 7.0.10 rejects are rejected with the expected code.
#[test]
fn invalid_corpus() {
    let text = include_str!("data/invalid.tsv");
    let mut n = 0;
    let mut wrong = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (code, rule) = line.split_once('\t').expect("code TAB rule");
        let want =
            Code::parse(code).unwrap_or_else(|| panic!("line {}: unknown code {code}", i + 1));
        let mut rs = Ruleset::new(LoadOptions::default());
        rs.add_file("invalid.tsv", rule);
        let got = rs
            .reports()
            .iter()
            .find(|r| r.severity == khien_rules::Severity::Error)
            .map(|r| (r.code, r.message.clone()));
        match got {
            Some((c, _)) if c == want => {}
            other => wrong.push(format!(
                "line {}: want {want}, got {other:?}: {rule}",
                i + 1
            )),
        }
        if rs.counts().loaded != 0 {
            wrong.push(format!("line {}: loaded: {rule}", i + 1));
        }
        n += 1;
    }
    println!("{n} invalid rules, {} with the wrong code", wrong.len());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(n >= 60);
}

/// Rules Suricata 7.0.10 loads (edge cases of its grammar) load here too.
#[test]
fn valid_corpus() {
    let mut rs = Ruleset::new(LoadOptions::default());
    rs.add_file("valid.rules", include_str!("data/valid.rules"));
    let c = rs.counts();
    println!("{} valid rules loaded, {} failed", c.loaded, c.failed);
    // Every rule has sid 1: the first loads, the others are reported as duplicates only.
    let errors: Vec<_> = rs
        .reports()
        .iter()
        .filter(|r| r.code != Code::DuplicateSid)
        .map(|r| r.to_string())
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let lines = include_str!("data/valid.rules")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count();
    assert_eq!(c.loaded + c.duplicates, lines);
    assert!(lines >= 75);
}
