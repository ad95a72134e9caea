//! Parses the enabled rules of a ruleset directory N times and reports wall and CPU time per
//! pass (CPU time, from /proc, is what one core spends, and holds up on a busy machine).
//!
//! `cargo run --release -p khien-rules --example parse_et -- DIR [N]`

fn cpu_seconds() -> f64 {
    // utime and stime of /proc/thread-self/stat, in clock ticks (100/s).
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map_or("", |(_, r)| r);
    // The fields after the command name start at field 3 (state): utime and stime are fields
    // 14 and 15, so indexes 11 and 12 here.
    let f: Vec<&str> = after_comm.split_whitespace().collect();
    match (
        f.get(11).and_then(|x| x.parse::<u64>().ok()),
        f.get(12).and_then(|x| x.parse::<u64>().ok()),
    ) {
        (Some(u), Some(s)) => (u + s) as f64 / 100.0,
        _ => f64::NAN,
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: parse_et DIR [N]");
    let n: usize = args.next().map_or(10, |s| s.parse().expect("N"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("read dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    files.sort();
    let texts: Vec<String> = files
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).expect("read")).into_owned())
        .collect();
    let rules: Vec<String> = texts
        .iter()
        .flat_map(|t| khien_rules::file::rules(t))
        .filter(|r| r.enabled)
        .map(|r| r.text.into_owned())
        .collect();
    let bytes: usize = rules.iter().map(|r| r.len() + 1).sum();
    let (w0, c0) = (std::time::Instant::now(), cpu_seconds());
    let mut ok = 0;
    for _ in 0..n {
        for r in &rules {
            ok += khien_rules::parse_rule(r).is_ok() as usize;
        }
    }
    let (wall, cpu) = (w0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    println!(
        "{} enabled rules ({:.1} MB), {} parsed per pass; per pass: {:.1} ms wall, {:.1} ms CPU ({} passes)",
        rules.len(),
        bytes as f64 / 1e6,
        ok / n,
        wall * 1000.0 / n as f64,
        cpu * 1000.0 / n as f64,
        n
    );
}
