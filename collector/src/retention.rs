//! Retention: drop daily partitions older than a per-tenant policy (18.16 has no TTL).
//!
//! Every event table and the rollup is partitioned by `(tenant, toYYYYMMDD(day))`, so
//! dropping one tenant's old day is one `ALTER TABLE … DROP PARTITION ID`, instant and exact.

use std::collections::HashMap;

use clickhouse::{Client, Row};

use crate::schema::{drop_partition_sql, PARTITIONS_SQL};
use crate::Result;

/// How long each tenant's events are kept, in days.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Days kept for tenants without their own entry; `None` keeps them forever.
    pub default_days: Option<u32>,
    pub tenant_days: HashMap<String, u32>,
}

/// One dropped partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub table: String,
    pub tenant: String,
    pub day: u32,
}

#[derive(Debug, Row, serde::Deserialize)]
struct Part {
    table: String,
    partition_id: String,
    partition: String,
}

/// Parses a partition value as ClickHouse prints it: `('tenant',20261122)`.
pub fn parse_partition(p: &str) -> Option<(String, u32)> {
    let inner = p.trim().strip_prefix('(')?.strip_suffix(')')?;
    let (tenant, day) = inner.rsplit_once(',')?;
    let tenant = tenant.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    let tenant = tenant.replace("\\'", "'").replace("\\\\", "\\");
    Some((tenant, day.trim().parse().ok()?))
}

/// `YYYYMMDD` of the UTC day `days_ago` days before `now` (Unix seconds).
pub fn cutoff_day(now: u64, days_ago: u32) -> u32 {
    let t = now.saturating_sub(u64::from(days_ago) * 86_400);
    let mut s = String::new();
    crate::synth::date(&mut s, t);
    s.parse().unwrap_or(0)
}

/// Drops every partition older than its tenant's policy; returns what was dropped.
pub async fn apply(client: &Client, policy: &Policy, now: u64) -> Result<Vec<Dropped>> {
    let parts: Vec<Part> = client.query_raw(PARTITIONS_SQL).fetch_all().await?;
    let mut dropped = Vec::new();
    for p in parts {
        let Some((tenant, day)) = parse_partition(&p.partition) else {
            tracing::warn!(table = %p.table, partition = %p.partition, "unexpected partition value; kept");
            continue;
        };
        let Some(days) = policy
            .tenant_days
            .get(&tenant)
            .copied()
            .or(policy.default_days)
        else {
            continue;
        };
        if day < cutoff_day(now, days) {
            client
                .query_raw(&drop_partition_sql(&p.table, &p.partition_id))
                .execute()
                .await?;
            tracing::info!(table = %p.table, %tenant, day, "dropped partition (retention)");
            dropped.push(Dropped {
                table: p.table,
                tenant,
                day,
            });
        }
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions() {
        assert_eq!(
            parse_partition("('hanoi',20261122)"),
            Some(("hanoi".into(), 20_261_122))
        );
        assert_eq!(
            parse_partition("('a,b',20200101)"),
            Some(("a,b".into(), 20_200_101))
        );
        assert_eq!(parse_partition("20200101"), None);
        assert_eq!(parse_partition("('x',)"), None);
        assert_eq!(cutoff_day(crate::synth::BASE_TS, 0), 20_261_122);
        assert_eq!(cutoff_day(crate::synth::BASE_TS, 22), 20_261_031);
    }
}
