//! Every SQL statement of the collector runs unchanged on ClickHouse 18.16 (Debian's server,
//! started here on loopback) and on current ClickHouse (PyPI `chdb-core`, in-process).

use std::time::Duration;

use khien_collector::managed::{client_for, Managed};
use khien_collector::schema::dialect_statements;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn dialect_on_clickhouse_server() {
    let dir = tempfile::tempdir().unwrap();
    let m = Managed::prepare(dir.path()).unwrap();
    m.start().unwrap();
    let result = rt().block_on(async {
        m.wait_healthy(Duration::from_secs(60)).await.unwrap();
        let client = client_for(&m.url());
        let version: String = client.query("SELECT version()").fetch_one().await.unwrap();
        let mut failures = Vec::new();
        // Twice: migrations must be idempotent.
        for _ in 0..2 {
            for st in dialect_statements() {
                // `execute` guards `ADD COLUMN` (18.16 has no `IF NOT EXISTS` for it).
                if let Err(e) = khien_collector::schema::execute(&client, &st).await {
                    failures.push(format!("{st}\n  -> {e}"));
                }
            }
        }
        // Versioned migrations: running them again applies nothing.
        let again = khien_collector::schema::migrate(&client).await.unwrap();
        let first = khien_collector::schema::migrate(&client).await.unwrap();
        (version, failures, again, first)
    });
    assert!(m.stop());
    let (version, failures, again, first) = result;
    assert!(
        failures.is_empty(),
        "ClickHouse {version}:\n{}",
        failures.join("\n")
    );
    // The statements created every table but left schema_migrations empty, so the first
    // migrate() records every version, and the second records none.
    assert_eq!(again.len(), khien_collector::schema::MIGRATIONS.len());
    assert!(first.is_empty());
}

#[test]
fn dialect_on_chdb_current() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("statements.sql");
    std::fs::write(&file, dialect_statements().join("\n;\n")).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/chdb_dialect.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(&file)
        .output()
        .expect("python3 must be installed (scripts/deps.sh installs chdb-core)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "chdb dialect check failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}
