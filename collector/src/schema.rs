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
            client.query_raw(&st).execute().await?;
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

pub(crate) fn now_secs() -> u32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    u32::try_from(now).unwrap_or(u32::MAX)
}

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
     AND (match(table, '_events$') OR table = 'alerts_per_minute') \
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
    out.push("SELECT version FROM schema_migrations".into());
    out.push(PARTITIONS_SQL.into());
    out.push(drop_partition_sql(
        "other_events",
        "0123456789abcdef0123456789abcdef",
    ));
    out.push("SELECT count() FROM events WHERE tenant = 'hanoi'".into());
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
        let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert!(
            versions.windows(2).all(|w| w[0] < w[1]),
            "versions must increase"
        );
    }
}
