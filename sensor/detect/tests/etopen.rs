//! Loads ET Open 2024 into the engine and reports how many rules load and which keywords
//! keep the others out (the progress number of the detection issue).

use std::path::PathBuf;

use std::net::IpAddr;

use std::borrow::Cow;

use khien_detect::{
    Alert, CompileOptions, DetectState, Dir, Engine, FlowInfo, FlowVars, PacketInfo, Prefilter,
    TxBuffers,
};

fn data() -> PathBuf {
    match std::env::var_os("KHIEN_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")),
    }
}

fn et_open() -> (khien_rules::Ruleset, CompileOptions) {
    let dir = data().join("etopen/et-open-2024-04-18");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (set KHIEN_DATA)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    files.sort();
    let mut rs = khien_rules::Ruleset::new(Default::default());
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        rs.add_file(&f.file_name().unwrap().to_string_lossy(), &text);
    }
    let classification = khien_rules::config::classification(
        &std::fs::read_to_string(dir.join("classification.config")).unwrap(),
    )
    .unwrap();
    let opts = CompileOptions {
        classification,
        ..Default::default()
    };
    (rs, opts)
}

#[test]
fn et_open_2024_compiles() {
    let (rs, opts) = et_open();
    let parsed = rs.counts().loaded;
    let t = std::time::Instant::now();
    let (engine, rep) = Engine::compile(&rs, &opts);
    println!(
        "ET Open 2024: {parsed} rules parsed, {} loaded into the engine, {} unsupported, {} errors ({:.2}s compile, prefilters {:.1} MB)",
        engine.len(),
        rep.unsupported.len(),
        rep.errors.len(),
        t.elapsed().as_secs_f64(),
        engine.prefilter_bytes() as f64 / 1e6
    );
    for (k, n) in rep.keyword_counts() {
        println!("  unsupported {n:6}  {k}");
    }
    for (sid, m) in rep.errors.iter().take(20) {
        println!("  error sid {sid}: {m}");
    }
    assert_eq!(
        engine.len() + rep.unsupported.len() + rep.errors.len(),
        parsed
    );
    // Floor measured on 2026-11-22 (see BENCHMARKS.md); raise it as support grows.
    assert!(engine.len() >= 23_000, "only {} rules loaded", engine.len());
}

/// Payloads made of ET Open's own content strings (each rule's contents in rule order,
/// so most fast patterns occur and many rules match in full), as TCP to port 80 and UDP
/// to port 53, in both directions.
fn payloads(rs: &khien_rules::Ruleset) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for r in rs.rules() {
        for o in &r.rule.options {
            if let khien_rules::OptionKind::Content(_, c) = &o.kind {
                cur.extend_from_slice(&c.pattern);
                cur.push(b' ');
            }
        }
        if cur.len() > 1400 {
            out.push(std::mem::take(&mut cur));
        }
    }
    out.push(cur);
    out
}

/// A transaction of `proto` whose every buffer holds the same bytes.
struct SameBytes<'a> {
    proto: &'static str,
    bytes: &'a [u8],
}

impl TxBuffers for SameBytes<'_> {
    fn proto(&self) -> &'static str {
        self.proto
    }
    fn tx_id(&self) -> u64 {
        0
    }
    fn get(&self, _name: &str, _dir: Dir) -> Vec<Cow<'_, [u8]>> {
        vec![Cow::Borrowed(self.bytes)]
    }
}

fn alerts(e: &Engine, pays: &[Vec<u8>]) -> Vec<(usize, u32, bool)> {
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    let mut st = DetectState::default();
    let mut got = Vec::new();
    for (i, pay) in pays.iter().enumerate() {
        for to_server in [true, false] {
            let mut tcp = PacketInfo::tcp(ip("10.0.0.1"), 40000, ip("192.0.2.1"), 80, 0x18);
            let mut udp = PacketInfo::udp(ip("10.0.0.1"), 40000, ip("192.0.2.1"), 53);
            for p in [&mut tcp, &mut udp] {
                p.payload = pay;
                p.flow = Some(FlowInfo {
                    to_server,
                    established: true,
                    app_proto: None,
                    encrypted: false,
                });
                let p = if to_server { p.clone() } else { p.reversed() };
                let mut out: Vec<Alert> = Vec::new();
                e.inspect_packet(&p, &mut FlowVars::default(), &mut st, &mut out);
                e.inspect_stream(&p, 0, false, &mut FlowVars::default(), &mut st, &mut out);
                got.extend(out.iter().map(|a| (i, a.sig.sid, a.stream)));
            }
        }
        let mut p = PacketInfo::tcp(ip("10.0.0.1"), 40000, ip("192.0.2.1"), 80, 0x18);
        for proto in ["http", "tls", "dns", "smtp", "ssh", "ftp"] {
            p.flow = Some(FlowInfo {
                to_server: true,
                established: true,
                app_proto: Some(proto),
                encrypted: false,
            });
            let tx = SameBytes { proto, bytes: pay };
            let mut out: Vec<Alert> = Vec::new();
            e.inspect_tx(&p, &tx, &mut FlowVars::default(), &mut st, &mut out);
            got.extend(out.iter().map(|a| (i, a.sig.sid, a.stream)));
        }
    }
    got
}

/// Hyperscan (whole patterns, case as in the rule) and `aho-corasick` (case-folded,
/// DFAs over 8-byte prefixes) prefilter different candidate sets; the alerts must be
/// the same.
#[test]
fn prefilters_agree_on_et_open() {
    let (rs, opts) = et_open();
    let pays = payloads(&rs);
    let mut results = Vec::new();
    for pf in [
        Prefilter::AhoCorasick,
        Prefilter::Auto,
        Prefilter::Hyperscan,
    ] {
        let t = std::time::Instant::now();
        let (e, _) = Engine::compile(
            &rs,
            &CompileOptions {
                prefilter: pf,
                ..opts.clone()
            },
        );
        let compile = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let a = alerts(&e, &pays);
        println!(
            "{pf:?}: compile {compile:.2}s, prefilters {:.1} MB, {} payloads inspected in {:.2}s, {} alerts",
            e.prefilter_bytes() as f64 / 1e6,
            pays.len(),
            t.elapsed().as_secs_f64(),
            a.len()
        );
        results.push(a);
    }
    // 2026-11-23: 3,276 packet, stream and transaction alerts.
    assert!(
        results[0].len() > 1000,
        "too few alerts to compare: {}",
        results[0].len()
    );
    assert_eq!(results[0], results[1], "aho-corasick vs auto");
    assert_eq!(results[0], results[2], "aho-corasick vs hyperscan");
}
