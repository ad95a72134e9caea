//! Versioned, idempotent migrations and every SQL statement the collector sends.
//!
//! The SQL lives in `collector/sql/NNN_name.sql` so that the dialect test can run the very
//! same text on ClickHouse 18.16 (server) and on current ClickHouse (chdb-core). Each
//! statement is idempotent (`IF NOT EXISTS`), so a crash half-way through a migration is
//! repaired by running it again; `schema_migrations` records what has been applied.

use clickhouse::Client;

use crate::eve::Family;
use crate::Result;

/// One schema version.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "events",
        sql: include_str!("../sql/001_events.sql"),
    },
    Migration {
        version: 2,
        name: "rollups",
        sql: include_str!("../sql/002_rollups.sql"),
    },
    Migration {
        version: 3,
        name: "enrichment",
        sql: include_str!("../sql/003_enrichment.sql"),
    },
    Migration {
        version: 4,
        name: "events_assets",
        sql: include_str!("../sql/004_events_assets.sql"),
    },
];

impl Migration {
    /// The statements of this migration: `--` comment lines dropped, split on `;`.
    pub fn statements(&self) -> Vec<String> {
        split_statements(self.sql)
    }
}

/// Splits SQL text into statements (the files contain no `;` inside literals).
pub fn split_statements(sql: &str) -> Vec<String> {
    let text: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct Version {
    version: u32,
}

#[derive(Debug, clickhouse::Row, serde::Serialize)]
struct Applied<'a> {
    version: u32,
    name: &'a str,
    applied: u32,
}

/// Applies the migrations that `schema_migrations` does not list yet; returns their versions.
pub async fn migrate(client: &Client) -> Result<Vec<u32>> {
    let first = MIGRATIONS[0].statements();
    client.query_raw(&first[0]).execute().await?;
    let done: Vec<Version> = client
        .query_raw("SELECT version FROM schema_migrations")
        .fetch_all()
        .await?;
    let mut applied = Vec::new();
    for m in MIGRATIONS {
        if done.iter().any(|v| v.version == m.version) {
            continue;
        }
        for st in m.statements() {
            execute(client, &st).await?;
        }
        let mut ins = client.insert::<Applied<'_>>("schema_migrations").await?;
        ins.write(&Applied {
            version: m.version,
            name: m.name,
            applied: now_secs(),
        })
        .await?;
        ins.end().await?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
        applied.push(m.version);
    }
    Ok(applied)
}

/// The table and column of an `ALTER TABLE t ADD COLUMN c …` statement.
pub fn add_column_target(statement: &str) -> Option<(&str, &str)> {
    let w: Vec<&str> = statement.split_whitespace().take(6).collect();
    match w.as_slice() {
        [a, t, table, add, c, column]
            if a.eq_ignore_ascii_case("ALTER")
                && t.eq_ignore_ascii_case("TABLE")
                && add.eq_ignore_ascii_case("ADD")
                && c.eq_ignore_ascii_case("COLUMN") =>
        {
            Some((table, column))
        }
        _ => None,
    }
}

/// Whether `table` has `column` (the guard of `ADD COLUMN`, which 18.16 cannot say
/// `IF NOT EXISTS`).
pub fn column_exists_sql(table: &str, column: &str) -> String {
    format!(
        "SELECT count() FROM system.columns WHERE database = currentDatabase() \
         AND table = '{table}' AND name = '{column}'"
    )
}

/// Runs one migration statement idempotently: an `ADD COLUMN` whose column exists is skipped.
pub async fn execute(client: &Client, statement: &str) -> Result<()> {
    if let Some((table, column)) = add_column_target(statement) {
        let n: u64 = client
            .query_raw(&column_exists_sql(table, column))
            .fetch_one()
            .await?;
        if n > 0 {
            return Ok(());
        }
    }
    client.query_raw(statement).execute().await?;
    Ok(())
}

pub(crate) fn now_secs() -> u32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    u32::try_from(now).unwrap_or(u32::MAX)
}

/// The table of indicator matches.
pub const INTEL_TABLE: &str = "intel_alerts";

/// Rows of `table` per batch in `lo..=hi` (recovery check of the writer).
pub fn batch_counts_sql(table: &str, lo: u64, hi: u64) -> String {
    format!("SELECT batch, count() AS n FROM {table} WHERE batch >= {lo} AND batch <= {hi} GROUP BY batch")
}

/// Event ids already stored for one batch (repair of a partially stored batch).
pub fn batch_ids_sql(table: &str, batch: u64) -> String {
    format!("SELECT event_id FROM {table} WHERE batch = {batch}")
}

/// Active partitions of the event tables, with their partition value, for retention.
pub const PARTITIONS_SQL: &str = "SELECT table, partition_id, any(partition) AS partition \
     FROM system.parts WHERE database = currentDatabase() AND active \
     AND (match(table, '_events$') OR table IN ('alerts_per_minute', 'intel_alerts', 'incidents')) \
     GROUP BY table, partition_id ORDER BY table, partition_id";

/// Drops one partition (retention).
pub fn drop_partition_sql(table: &str, partition_id: &str) -> String {
    format!("ALTER TABLE {table} DROP PARTITION ID '{partition_id}'")
}

/// Every statement the collector can send, with sample values, for the dialect tests: the
/// migrations, then the runtime queries.
pub fn dialect_statements() -> Vec<String> {
    let mut out: Vec<String> = MIGRATIONS.iter().flat_map(Migration::statements).collect();
    for f in Family::ALL {
        out.push(batch_counts_sql(f.table(), 1, 10));
        out.push(batch_ids_sql(f.table(), 1));
    }
    out.push(batch_counts_sql(INTEL_TABLE, 1, 10));
    out.push(batch_ids_sql(INTEL_TABLE, 1));
    out.push(column_exists_sql("alert_events", "asset_level"));
    out.extend(crate::correlate::dialect_samples());
    out.push("SELECT version FROM schema_migrations".into());
    out.push(PARTITIONS_SQL.into());
    out.push(drop_partition_sql(
        "other_events",
        "0123456789abcdef0123456789abcdef",
    ));
    out.push("SELECT count() FROM events WHERE tenant = 'hanoi'".into());
    out.push(
        "SELECT asset_agency, asset_level, count() FROM events \
         WHERE asset_level >= 4 GROUP BY asset_agency, asset_level"
            .into(),
    );
    out.push(
        "SELECT tenant, minute, signature_id, sum(alerts) FROM alerts_per_minute \
         GROUP BY tenant, minute, signature_id"
            .into(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split() {
        let all = dialect_statements();
        assert!(all.len() > 20);
        assert!(all.iter().all(|s| !s.contains(';') && !s.starts_with("--")));
        assert_eq!(
            add_column_target("ALTER TABLE dns_events ADD COLUMN asset_level UInt8"),
            Some(("dns_events", "asset_level"))
        );
        assert_eq!(add_column_target("CREATE TABLE x (a UInt8)"), None);
        let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert!(
            versions.windows(2).all(|w| w[0] < w[1]),
            "versions must increase"
        );
    }
}
