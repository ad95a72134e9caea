//! Packet inspection throughput with ET Open 2024 on crafted payloads.
//! `cargo bench -p khien-detect` (needs ../shared/data or KHIEN_DATA).

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use khien_detect::{CompileOptions, DetectState, Engine, FlowInfo, FlowVars, PacketInfo};

fn data() -> PathBuf {
    match std::env::var_os("KHIEN_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")),
    }
}

fn et_open() -> Engine {
    let dir = data().join("etopen/et-open-2024-04-18");
    let mut rs = khien_rules::Ruleset::new(Default::default());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("ET Open directory (set KHIEN_DATA)")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("rules file");
        rs.add_file(&f.display().to_string(), &text);
    }
    Engine::compile(&rs, &CompileOptions::default()).0
}

fn bench(c: &mut Criterion) {
    let engine = et_open();
    let http = b"GET /index.php?id=1&x=select HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)\r\nAccept: */*\r\nCookie: a=b\r\n\r\n".to_vec();
    let mut noise = Vec::with_capacity(1400);
    let mut x: u32 = 12345;
    for _ in 0..1400 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        noise.push((x >> 16) as u8);
    }
    let mut g = c.benchmark_group("inspect_packet_et_open");
    for (name, payload) in [("http_request", &http), ("random_1400", &noise)] {
        g.throughput(Throughput::Bytes(payload.len() as u64));
        g.bench_function(name, |b| {
            let mut p = PacketInfo::tcp(
                "10.0.0.1".parse().expect("ip"),
                40000,
                "192.0.2.1".parse().expect("ip"),
                80,
                0x18,
            );
            p.payload = payload;
            p.flow = Some(FlowInfo {
                to_server: true,
                established: true,
                app_proto: Some("http"),
                encrypted: false,
            });
            let mut st = DetectState::default();
            let mut out = Vec::new();
            b.iter(|| {
                out.clear();
                engine.inspect_packet(&p, &mut FlowVars::default(), &mut st, &mut out);
                out.len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
