//! Data-driven conformance: runs every suricata-verify test that Suricata 7.0.10 passes
//! (OK in SURICATA-7.0.10.tsv) with `khien sensor`, honouring the test's rules, `args` and
//! `pcap`, and evaluates its `checks` on Khiên's eve.json. Prints each failure with its
//! reason and two tallies: tests whose checks concern alerts, and all tests (every check).
//! Parity is incomplete: the test asserts only floors that were measured (see
//! BENCHMARKS.md), so a regression fails it but missing features do not.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

fn data() -> PathBuf {
    match std::env::var_os("KHIEN_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data")),
    }
}

/// Suricata's version the verdicts are for.
const VERSION: (u64, u64, u64) = (7, 0, 10);

fn parse_version(v: &Yaml) -> Option<(u64, u64, u64)> {
    let s = match v {
        Yaml::Number(n) => n.to_string(),
        Yaml::String(s) => s.clone(),
        _ => return None,
    };
    let mut it = s.trim().split('.').map(|x| x.parse::<u64>().unwrap_or(0));
    Some((it.next()?, it.next().unwrap_or(0), it.next().unwrap_or(0)))
}

/// A field of an EVE record by dotted path (`alert.signature_id`, `__len` suffix gives
/// the length of an array/object/string; a numeric step or `name[N]` indexes an array).
fn field<'a>(rec: &'a Json, path: &str) -> Option<std::borrow::Cow<'a, Json>> {
    let mut cur = rec;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        if *p == "__len" && i + 1 == parts.len() {
            let n = match cur {
                Json::Array(a) => a.len(),
                Json::Object(o) => o.len(),
                Json::String(s) => s.len(),
                _ => return None,
            };
            return Some(std::borrow::Cow::Owned(Json::from(n)));
        }
        // `name[N]`: element N of the array `name` (suricata-verify's syntax).
        let (key, index) = match p.strip_suffix(']').and_then(|q| q.rsplit_once('[')) {
            Some((k, i)) => (k, Some(i.parse::<usize>().ok()?)),
            None => (*p, None),
        };
        cur = match cur {
            Json::Object(o) => o.get(key)?,
            Json::Array(a) => a.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
        if let Some(i) = index {
            cur = cur.as_array()?.get(i)?;
        }
    }
    Some(std::borrow::Cow::Borrowed(cur))
}

fn yaml_to_json(y: &Yaml) -> Json {
    serde_json::to_value(y).unwrap_or(Json::Null)
}

fn equal(got: &Json, want: &Json) -> bool {
    match (got, want) {
        (Json::Number(a), Json::Number(b)) => a.as_f64() == b.as_f64(),
        (Json::String(a), Json::Number(b)) => a == &b.to_string(),
        (Json::Number(a), Json::String(b)) => &a.to_string() == b,
        (Json::Object(a), Json::Object(b)) => {
            b.iter().all(|(k, v)| a.get(k).is_some_and(|x| equal(x, v)))
        }
        (Json::Array(a), Json::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equal(x, y))
        }
        _ => got == want,
    }
}

fn num(j: &Json) -> Option<f64> {
    match j {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Outcome of one check: Ok, skipped (needs another version), or failed with a reason.
enum Outcome {
    Pass,
    Skip,
    Fail(String),
}

fn eval_filter(f: &Yaml, eve: &[Json]) -> Outcome {
    if let Some(v) = f.get("min-version").and_then(parse_version) {
        if v > VERSION {
            return Outcome::Skip;
        }
    }
    if let Some(v) = f.get("lt-version").and_then(parse_version) {
        if VERSION >= v {
            return Outcome::Skip;
        }
    }
    if let Some(v) = f.get("version").and_then(parse_version) {
        if v.0 != VERSION.0 {
            return Outcome::Skip;
        }
    }
    let empty = serde_yaml::Mapping::new();
    let m = f.get("match").and_then(Yaml::as_mapping).unwrap_or(&empty);
    let conds: Vec<(String, Json)> = m
        .iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_string(), yaml_to_json(v))))
        .collect();
    let cmp = |key: &str| -> Vec<(String, f64)> {
        f.get(key)
            .and_then(Yaml::as_mapping)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_string(), num(&yaml_to_json(v))?)))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let lts = cmp("lt");
    let gts = cmp("gt");
    let hits = eve
        .iter()
        .filter(|r| {
            conds.iter().all(|(k, want)| match (k.as_str(), want) {
                (_, Json::Null) => field(r, k).is_none(),
                _ => field(r, k).is_some_and(|g| equal(&g, want)),
            }) && lts
                .iter()
                .all(|(k, v)| field(r, k).and_then(|g| num(&g)).is_some_and(|g| g < *v))
                && gts
                    .iter()
                    .all(|(k, v)| field(r, k).and_then(|g| num(&g)).is_some_and(|g| g > *v))
        })
        .count();
    let what = conds
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    match f.get("count").and_then(Yaml::as_u64) {
        Some(c) if c as usize == hits => Outcome::Pass,
        Some(c) => Outcome::Fail(format!("{what}: want {c} records, got {hits}")),
        None if hits > 0 => Outcome::Pass,
        None => Outcome::Fail(format!("{what}: want at least one record, got none")),
    }
}

fn concerns_alerts(check: &Yaml) -> bool {
    check
        .get("filter")
        .and_then(|f| f.get("match"))
        .and_then(|m| m.get("event_type"))
        .and_then(Yaml::as_str)
        == Some("alert")
}

fn find_pcap(dir: &Path, y: &Yaml) -> Option<PathBuf> {
    if let Some(p) = y.get("pcap").and_then(Yaml::as_str) {
        return Some(dir.join(p));
    }
    let input = dir.join("input.pcap");
    if input.exists() {
        return Some(input);
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    v.sort();
    v.into_iter().next()
}

fn rule_files(dir: &Path) -> Vec<PathBuf> {
    let t = dir.join("test.rules");
    if t.exists() {
        return vec![t];
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "rules"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Runs one test; returns per-check outcomes (with whether each concerns alerts), or an
/// error that fails every check.
fn run_test(name: &str, dir: &Path, out: &Path) -> Result<Vec<(bool, Outcome)>, String> {
    let text = std::fs::read_to_string(dir.join("test.yaml")).map_err(|e| e.to_string())?;
    let y: Yaml = serde_yaml::from_str(&text).map_err(|e| format!("test.yaml: {e}"))?;
    let pcap = find_pcap(dir, &y).ok_or("no pcap")?;
    // KHIEN_BIN: a copy of the binary to test (the shared target directory's one may be
    // rebuilt from another worktree while the tests run).
    let bin = std::env::var_os("KHIEN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_khien")));
    let mut cmd = Command::new(bin);
    cmd.arg("sensor").arg("-r").arg(&pcap).arg("-l").arg(out);
    for r in rule_files(dir) {
        cmd.arg("-S").arg(r);
    }
    cmd.arg("--classification")
        .arg(data().join("suricata-verify/etc/classification.config"));
    let test_dir = dir.display().to_string();
    let mut args: Vec<String> = Vec::new();
    if let Some(a) = y.get("args").and_then(Yaml::as_sequence) {
        for x in a {
            if let Some(s) = x.as_str() {
                args.extend(
                    s.replace("${TEST_DIR}", &test_dir)
                        .split_whitespace()
                        .map(str::to_string),
                );
            }
        }
    }
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-k" => {
                if let Some(v) = args.get(i + 1) {
                    cmd.arg("-k").arg(v);
                }
                i += 2;
            }
            "--set" => {
                if let Some(v) = args.get(i + 1) {
                    let key = v.split('=').next().unwrap_or("");
                    if key == "threshold-file" {
                        cmd.arg("--threshold-file").arg(&v[key.len() + 1..]);
                    } else if matches!(
                        key,
                        "stream.midstream"
                            | "stream.async-oneside"
                            | "vlan.use-for-tracking"
                            | "packet-alert-max"
                    ) {
                        cmd.arg("--set").arg(v);
                    } else if let Some(limit) = key
                        .strip_prefix("app-layer.protocols.http.libhtp.default-config.")
                        .filter(|l| matches!(*l, "request-body-limit" | "response-body-limit"))
                    {
                        cmd.arg("--set")
                            .arg(format!("http.{limit}={}", &v[key.len() + 1..]));
                    }
                }
                i += 2;
            }
            // IPS mode makes Suricata's stream inline (app-layer data goes through as it
            // arrives instead of on the acknowledgement) and carries out drop verdicts.
            "--simulate-ips" => {
                cmd.arg("--set").arg("stream.inline=true");
                cmd.arg("--set").arg("ips=true");
                i += 1;
            }
            _ => i += 1,
        }
    }
    // Settings of the test's own suricata.yaml that change detection.
    let conf = std::fs::read_to_string(dir.join("suricata.yaml")).unwrap_or_default();
    if conf.lines().any(|l| l.trim() == "verdict: yes") {
        cmd.arg("--set").arg("eve.alert-verdict=true");
    }
    if conf.lines().any(|l| l.trim_end() == "vars:") {
        cmd.arg("--vars").arg(dir.join("suricata.yaml"));
    }
    // `action-order:` followed by `  - alert` lines.
    let mut order: Option<Vec<&str>> = None;
    for line in conf.lines() {
        match (&mut order, line.trim().strip_prefix("- ")) {
            (Some(o), Some(a)) => o.push(a.trim()),
            (Some(_), None) if !line.trim().is_empty() && !line.trim().starts_with('#') => break,
            _ => {}
        }
        if line.trim_end() == "action-order:" {
            order = Some(Vec::new());
        }
    }
    if let Some(o) = order.filter(|o| !o.is_empty()) {
        cmd.arg("--set")
            .arg(format!("action-order=[{}]", o.join(",")));
    }
    for line in conf.lines() {
        if let Some(v) = line.strip_prefix("packet-alert-max:") {
            cmd.arg("--set")
                .arg(format!("packet-alert-max={}", v.trim()));
        }
    }
    let o = cmd.output().map_err(|e| format!("running khien: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "khien sensor failed: {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    let eve_text = std::fs::read_to_string(out.join("eve.json")).map_err(|e| e.to_string())?;
    let eve: Vec<Json> = eve_text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let checks = y
        .get("checks")
        .and_then(Yaml::as_sequence)
        .ok_or_else(|| format!("{name}: no checks"))?;
    Ok(checks
        .iter()
        .map(|c| {
            let alerts = concerns_alerts(c);
            let o = match c.get("filter") {
                Some(f) => eval_filter(f, &eve),
                None => Outcome::Fail(format!(
                    "check kind {} is not evaluated by this harness",
                    c.as_mapping()
                        .and_then(|m| m.keys().next())
                        .and_then(Yaml::as_str)
                        .unwrap_or("?")
                )),
            };
            (alerts, o)
        })
        .collect())
}

#[test]
fn suricata_verify_ok_tests() {
    let root = data().join("suricata-verify");
    let tsv = std::fs::read_to_string(root.join("SURICATA-7.0.10.tsv"))
        .unwrap_or_else(|e| panic!("{}: {e} (set KHIEN_DATA)", root.display()));
    let tmp = tempfile::tempdir().unwrap();
    let (mut a_pass, mut a_fail, mut all_pass, mut all_fail) = (0, 0, 0, 0);
    let (mut checks_pass, mut checks_fail) = (0, 0);
    for line in tsv.lines() {
        let mut it = line.split('\t');
        let (Some(name), Some("OK")) = (it.next(), it.next()) else {
            continue;
        };
        let dir = root.join("tests").join(name);
        let out = tmp.path().join(name.replace('/', "__"));
        std::fs::create_dir_all(&out).unwrap();
        let (alerts, failures) = match run_test(name, &dir, &out) {
            Ok(res) => {
                let alerts = res.iter().any(|(a, _)| *a);
                let mut failures = Vec::new();
                for (_, o) in &res {
                    match o {
                        Outcome::Pass => checks_pass += 1,
                        Outcome::Skip => {}
                        Outcome::Fail(r) => {
                            checks_fail += 1;
                            failures.push(r.clone());
                        }
                    }
                }
                (alerts, failures)
            }
            Err(e) => {
                checks_fail += 1;
                // Whether it concerns alerts: look at the yaml text.
                let y = std::fs::read_to_string(dir.join("test.yaml")).unwrap_or_default();
                (y.contains("event_type: alert"), vec![e])
            }
        };
        let ok = failures.is_empty();
        if ok {
            all_pass += 1;
        } else {
            all_fail += 1;
            println!("FAIL {name}: {}", failures.join("; "));
        }
        if alerts {
            if ok {
                a_pass += 1;
            } else {
                a_fail += 1;
            }
        }
    }
    println!("checks: {checks_pass} passed, {checks_fail} failed");
    println!("alert tests: {a_pass} passed, {a_fail} failed");
    println!("all tests: {all_pass} passed, {all_fail} failed");
    // Floors measured on 2026-11-23 (BENCHMARKS.md); raise them as parity grows.
    assert!(a_pass >= FLOOR_ALERT_TESTS, "alert tests passing: {a_pass}");
    assert!(all_pass >= FLOOR_ALL_TESTS, "tests passing: {all_pass}");
}

const FLOOR_ALERT_TESTS: usize = 128;
const FLOOR_ALL_TESTS: usize = 129;

/// `tls.certs` inspects each certificate's DER (here the self-signed "CN=SELKS" of
/// suricata-verify's tls-cert-issuer pcap): the commonName OID followed by the DER string
/// header and the name matches, the printable subject text does not, nor does absent data.
#[test]
fn tls_certs_buffer_holds_the_der_certificates() {
    let pcap = data().join("suricata-verify/tests/tls/tls-cert-issuer/tls.pcap");
    assert!(pcap.exists(), "{} missing (set KHIEN_DATA)", pcap.display());
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("certs.rules");
    std::fs::write(
        &rules,
        "alert tls any any -> any any (tls.certs; content:\"|06 03 55 04 03|\"; content:\"SELKS\"; distance:2; within:5; sid:1;)\n\
         alert tls any any -> any any (tls.certs; content:\"CN=SELKS\"; sid:2;)\n\
         alert tls any any -> any any (tls.certs; content:\"not in any certificate\"; sid:3;)\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_khien"))
        .arg("sensor")
        .arg("-r")
        .arg(&pcap)
        .arg("-S")
        .arg(&rules)
        .arg("-l")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("tls.certs"), "rule refused: {stderr}");
    let eve = std::fs::read_to_string(out.join("eve.json")).unwrap();
    let sids: Vec<u64> = eve
        .lines()
        .filter_map(|l| serde_json::from_str::<Json>(l).ok())
        .filter(|e| e["event_type"] == "alert")
        .filter_map(|e| e["alert"]["signature_id"].as_u64())
        .collect();
    assert!(sids.contains(&1), "no tls.certs alert: {sids:?}");
    assert!(!sids.contains(&2) && !sids.contains(&3), "{sids:?}");
}
