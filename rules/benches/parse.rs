//! Parsing speed on the 24,827 enabled rules of ET Open 2024.
//!
//! Run: `cargo bench -p khien-rules --bench parse` (reads `$KHIEN_DATA`, default
//! `../shared/data` beside the repository).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn data_dir() -> std::path::PathBuf {
    std::env::var_os("KHIEN_DATA")
        .map(Into::into)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data").into())
}

fn bench(c: &mut Criterion) {
    let dir = data_dir().join("etopen/et-open-2024-04-18");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    files.sort();
    let texts: Vec<String> = files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let enabled: Vec<String> = texts
        .iter()
        .flat_map(|t| khien_rules::file::rules(t))
        .filter(|r| r.enabled)
        .map(|r| r.text.into_owned())
        .collect();
    let bytes: usize = enabled.iter().map(|r| r.len() + 1).sum();
    assert_eq!(
        enabled.len(),
        24_827,
        "ET Open 2024 has 24,827 enabled rules"
    );
    let mut g = c.benchmark_group("et-open-2024");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("parse_rule x24827 (enabled rules)", |b| {
        b.iter(|| {
            let mut ok = 0;
            for r in &enabled {
                ok += khien_rules::parse_rule(r).is_ok() as usize;
            }
            assert_eq!(ok, enabled.len());
        })
    });
    g.bench_function("Ruleset::add_file (all files, enabled)", |b| {
        b.iter(|| {
            let mut rs = khien_rules::Ruleset::new(khien_rules::LoadOptions::default());
            for (p, t) in files.iter().zip(&texts) {
                rs.add_file(&p.display().to_string(), t);
            }
            assert_eq!(rs.counts().loaded, 24_827);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
