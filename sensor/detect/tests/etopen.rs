//! Loads ET Open 2024 into the engine and reports how many rules load and which keywords
//! keep the others out (the progress number of the detection issue).

use std::path::PathBuf;

use khien_detect::{CompileOptions, Engine};

fn data() -> PathBuf {
    match std::env::var_os("KHIEN_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")),
    }
}

#[test]
fn et_open_2024_compiles() {
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
    let parsed = rs.counts().loaded;
    let t = std::time::Instant::now();
    let (engine, rep) = Engine::compile(
        &rs,
        &CompileOptions {
            classification,
            ..Default::default()
        },
    );
    println!(
        "ET Open 2024: {parsed} rules parsed, {} loaded into the engine, {} unsupported, {} errors ({:.2}s compile)",
        engine.len(),
        rep.unsupported.len(),
        rep.errors.len(),
        t.elapsed().as_secs_f64()
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
