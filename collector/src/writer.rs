//! Drains the spool into ClickHouse, like Vector's sink: batching by size or time, a retry
//! policy that retries transient failures forever and never retries data errors (those rows
//! are set aside under `DIR/rejected/` with their reason), and a health check (`SELECT 1`).
//!
//! No duplicates after a crash or a failed request whose outcome is unknown ("uncertain"):
//! every row carries its spool batch number and a deterministic event id. Each INSERT holds
//! the rows of one table and one partition, so ClickHouse stores it atomically. When
//! uncertain, the writer first asks each table which of the group's batches it already holds
//! (`batch_counts_sql`); a batch present in full is skipped, a batch present in part gets only
//! its missing event ids. It stays uncertain until a group is found entirely absent, because
//! earlier groups may have been cut differently.
//!
//! Enrichment happens here too: each row gets the asset columns of its event (assets.rs),
//! and each indicator match becomes an `intel_alerts` row whose id derives from the event id
//! (indicators.rs), covered by the same batch check as the event rows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clickhouse::{Client, Row};
use tokio::sync::watch;

use crate::enrich::Enrichment;
use crate::eve::{self, Eve, Family};
use crate::rows::*;
use crate::spool::{Record, Spool};
use crate::{io_err, write_atomic, Error, Result};

/// Writer settings.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Rows per group (one INSERT per table and partition).
    pub batch_rows: usize,
    /// Longest time a received event waits before its group is written.
    pub flush: Duration,
    /// Where the last stored batch number is kept (`DIR/spool/cursor`).
    pub cursor: PathBuf,
    /// Where rows that ClickHouse refused as data errors go, with their reason.
    pub rejected: PathBuf,
    /// Timeout of one ClickHouse request.
    pub request_timeout: Duration,
    /// Asset inventory and indicators applied to every event.
    pub enrich: Arc<Enrichment>,
}

impl WriterConfig {
    /// Defaults for the data directory `dir`.
    pub fn for_dir(dir: &Path) -> WriterConfig {
        WriterConfig {
            batch_rows: 100_000,
            flush: Duration::from_millis(1000),
            cursor: dir.join("spool/cursor"),
            rejected: dir.join("rejected"),
            request_timeout: Duration::from_secs(120),
            enrich: Arc::new(Enrichment::default()),
        }
    }
}

/// Counters of the writer, readable while it runs.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub rows: std::sync::atomic::AtomicU64,
    pub intel_rows: std::sync::atomic::AtomicU64,
    pub inserts: std::sync::atomic::AtomicU64,
    pub retries: std::sync::atomic::AtomicU64,
    pub rejected_rows: std::sync::atomic::AtomicU64,
    pub stored_batch: std::sync::atomic::AtomicU64,
}

/// How a failed ClickHouse request is handled.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// Retry forever (network, server overload, server down, timeouts…).
    Transient(String),
    /// The rows themselves were refused: set them aside.
    Data(String),
}

/// ClickHouse error codes that mean "these rows are bad", never "try again later".
const DATA_ERROR_CODES: &[u32] = &[6, 26, 27, 32, 33, 38, 41, 53, 69, 70, 72, 117, 131, 321];

fn classify(e: &clickhouse::error::Error) -> Failure {
    use clickhouse::error::Error as E;
    let msg = e.to_string();
    match e {
        E::BadResponse(text) => {
            let code = text
                .split("Code: ")
                .nth(1)
                .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|s| s.parse::<u32>().ok());
            match code {
                Some(c) if DATA_ERROR_CODES.contains(&c) => Failure::Data(msg),
                _ => Failure::Transient(msg),
            }
        }
        E::Custom(_) | E::InvalidUtf8Encoding(_) | E::SequenceMustHaveLength => Failure::Data(msg),
        _ => Failure::Transient(msg),
    }
}

fn read_cursor(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// One parsed line of a group.
struct Item<'a> {
    meta: Meta<'a>,
    /// Parsed addresses (only when enrichment is loaded).
    addrs: crate::prefix::Addrs,
    eve: Eve<'a>,
    raw: &'a str,
}

/// Event id: stable across resends and restarts, from (sensor, stream, offset), or for
/// stream-less requests from (sensor, batch, line index).
pub fn event_id(sensor: &str, stream: &str, offset: u64, batch: u64, index: usize) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(sensor.as_bytes());
    h.update(&[0]);
    if stream.is_empty() {
        h.update(b"\x01batch");
        h.update(&batch.to_le_bytes());
        h.update(&(index as u64).to_le_bytes());
    } else {
        h.update(stream.as_bytes());
        h.update(&[0]);
        h.update(&offset.to_le_bytes());
    }
    h.digest()
}

/// Runs the writer until `shutdown` turns true and the spool is drained (or, on shutdown,
/// until the current group is written).
pub async fn run(
    spool: Arc<Spool>,
    client: Client,
    cfg: WriterConfig,
    stats: Arc<WriterStats>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    std::fs::create_dir_all(&cfg.rejected).map_err(io_err(&cfg.rejected))?;
    let mut stored = read_cursor(&cfg.cursor);
    stats.stored_batch.store(stored, Relaxed);
    let mut reader = spool.reader()?;
    let mut durable = spool.durable();
    let mut uncertain = true;
    let mut group: Vec<Record> = Vec::new();
    loop {
        // Fill a group: up to `batch_rows` rows or `flush` after its first record.
        let mut rows = 0;
        let mut first: Option<Instant> = None;
        loop {
            let pos = *durable.borrow_and_update();
            let rec = reader.next(pos)?;
            match rec {
                Some(rec) if rec.batch <= stored => continue,
                Some(rec) => {
                    rows += rec.lines.len();
                    first.get_or_insert_with(Instant::now);
                    group.push(rec);
                    if rows >= cfg.batch_rows {
                        break;
                    }
                }
                None => {
                    if *shutdown.borrow() && group.is_empty() {
                        return Ok(());
                    }
                    let wait = match first {
                        Some(t) => cfg.flush.saturating_sub(t.elapsed()),
                        None => Duration::from_secs(3600),
                    };
                    if wait.is_zero() || *shutdown.borrow() {
                        break;
                    }
                    tokio::select! {
                        _ = durable.changed() => {}
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        if group.is_empty() {
            continue;
        }
        // Store it, retrying transient failures forever.
        let mut backoff = Duration::from_millis(100);
        loop {
            match store_group(&client, &group, uncertain, &cfg, &stats).await {
                Ok(found_any) => {
                    uncertain = found_any;
                    break;
                }
                Err(reason) => {
                    uncertain = true;
                    stats.retries.fetch_add(1, Relaxed);
                    tracing::warn!(%reason, retry_in = ?backoff, "ClickHouse write failed; will retry");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        stored = group.last().map_or(stored, |r| r.batch);
        write_atomic(&cfg.cursor, stored.to_string().as_bytes())?;
        stats.stored_batch.store(stored, Relaxed);
        let spool2 = spool.clone();
        tokio::task::spawn_blocking(move || spool2.release(stored))
            .await
            .map_err(|e| Error::Spool(e.to_string()))??;
        group.clear();
    }
}

/// One INSERT of `items` as rows of type `$row` into `$table`; a `Failure` on error.
macro_rules! insert_rows {
    ($client:expr, $table:expr, $items:expr, $row:ident, $cfg:expr) => {{
        let work = async {
            let mut ins = $client.insert::<$row<'_>>($table).await?;
            for it in $items.iter() {
                ins.write(&$row::new(&it.meta, &it.eve, it.raw)).await?;
            }
            ins.end().await
        };
        match tokio::time::timeout($cfg.request_timeout, work).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(classify(&e)),
            Err(_) => Err(Failure::Transient(format!("{}: insert timed out", $table))),
        }
    }};
}

/// Writes one group to every table. Returns whether any of it was found already stored
/// (only looked up when `uncertain`). `Err` is a transient failure.
async fn store_group(
    client: &Client,
    group: &[Record],
    uncertain: bool,
    cfg: &WriterConfig,
    stats: &WriterStats,
) -> std::result::Result<bool, String> {
    let mut by_family: Vec<Vec<Item<'_>>> = (0..Family::ALL.len()).map(|_| Vec::new()).collect();
    let mut bad: Vec<(String, &[u8])> = Vec::new();
    for rec in group {
        for (i, (offset, range)) in rec.lines.iter().enumerate() {
            let line = rec.line(range);
            let parsed = std::str::from_utf8(line)
                .map_err(|e| eve::LineError::Json(e.to_string()))
                .and_then(|raw| eve::parse_str(raw).map(|eve| (raw, eve)));
            match parsed {
                Ok((raw, eve)) => {
                    let addrs = if cfg.enrich.is_empty() {
                        crate::prefix::Addrs::default()
                    } else {
                        crate::prefix::Addrs::parse(&eve.src_ip, &eve.dest_ip)
                    };
                    let located = cfg.enrich.assets.locate_addrs(&addrs);
                    let meta = Meta {
                        event_id: event_id(&rec.sensor, &rec.stream, *offset, rec.batch, i),
                        batch: rec.batch,
                        received: rec.received,
                        tenant: &rec.tenant,
                        sensor: &rec.sensor,
                        asset: located.map(|(_, a)| a),
                        side: located.map_or("", |(side, _)| side.as_str()),
                    };
                    by_family[eve.family().index()].push(Item {
                        meta,
                        addrs,
                        eve,
                        raw,
                    });
                }
                Err(e) => bad.push((format!("batch {}: {e}", rec.batch), line)),
            }
        }
    }
    if !bad.is_empty() {
        set_aside(cfg, "parse", &bad).map_err(|e| e.to_string())?;
    }
    // Indicator matches of every event, stored after the events.
    let mut intel: Vec<IntelItem<'_>> = Vec::new();
    let indicators = &cfg.enrich.indicators;
    if !indicators.is_empty() {
        let mut hits = Vec::new();
        for it in by_family.iter().flatten() {
            hits.clear();
            indicators.match_event_at(&it.eve, &it.addrs, &mut hits);
            for h in &hits {
                let ind = indicators.get(h.indicator);
                intel.push(IntelItem {
                    item: it,
                    id: intel_id(it.meta.event_id, ind, h.field),
                    ind,
                    field: h.field,
                    value: h.value,
                });
            }
        }
    }
    let lo = group.first().map_or(0, |r| r.batch);
    let hi = group.last().map_or(0, |r| r.batch);
    let mut found_any = false;
    for family in Family::ALL {
        let items = &by_family[family.index()];
        if items.is_empty() {
            continue;
        }
        let table = family.table();
        let mut skip: HashSet<u64> = HashSet::new();
        if uncertain {
            let ids: Vec<(u64, u64)> = items
                .iter()
                .map(|it| (it.meta.batch, it.meta.event_id))
                .collect();
            let present = present_ids(client, table, &ids, lo, hi, cfg).await?;
            found_any |= !present.is_empty();
            skip = present;
        }
        // One INSERT per partition (tenant, day): each is stored atomically.
        let mut parts: BTreeMap<(&str, u32), Vec<&Item<'_>>> = BTreeMap::new();
        for it in items.iter().filter(|it| !skip.contains(&it.meta.event_id)) {
            parts
                .entry((it.meta.tenant, it.eve.ts / 86_400))
                .or_default()
                .push(it);
        }
        for part in parts.values() {
            let result = match family {
                Family::Alert => insert_rows!(client, table, part, AlertRow, cfg),
                Family::Flow => insert_rows!(client, table, part, FlowRow, cfg),
                Family::Http => insert_rows!(client, table, part, HttpRow, cfg),
                Family::Dns => insert_rows!(client, table, part, DnsRow, cfg),
                Family::Tls => insert_rows!(client, table, part, TlsRow, cfg),
                Family::Fileinfo => insert_rows!(client, table, part, FileinfoRow, cfg),
                Family::Anomaly => insert_rows!(client, table, part, AnomalyRow, cfg),
                Family::Other => insert_rows!(client, table, part, OtherRow, cfg),
            };
            let raws = part.iter().map(|it| it.raw.as_bytes());
            settle(result, table, raws, &stats.rows, cfg, stats)?;
        }
    }
    if !intel.is_empty() {
        found_any |= store_intel(client, &intel, uncertain, lo, hi, cfg, stats).await?;
    }
    Ok(found_any)
}

/// One indicator match of one event of a group.
struct IntelItem<'a> {
    item: &'a Item<'a>,
    id: u64,
    ind: &'a crate::indicators::Indicator,
    field: &'static str,
    value: &'a str,
}

/// Writes the intel alerts of a group like the event rows: skipped when already stored (if
/// `uncertain`), one INSERT per partition, data errors set aside. `Err` is transient.
async fn store_intel(
    client: &Client,
    intel: &[IntelItem<'_>],
    uncertain: bool,
    lo: u64,
    hi: u64,
    cfg: &WriterConfig,
    stats: &WriterStats,
) -> std::result::Result<bool, String> {
    let table = crate::schema::INTEL_TABLE;
    let mut skip: HashSet<u64> = HashSet::new();
    if uncertain {
        let ids: Vec<(u64, u64)> = intel.iter().map(|x| (x.item.meta.batch, x.id)).collect();
        skip = present_ids(client, table, &ids, lo, hi, cfg).await?;
    }
    let found_any = !skip.is_empty();
    let mut parts: BTreeMap<(&str, u32), Vec<&IntelItem<'_>>> = BTreeMap::new();
    for x in intel.iter().filter(|x| !skip.contains(&x.id)) {
        parts
            .entry((x.item.meta.tenant, x.item.eve.ts / 86_400))
            .or_default()
            .push(x);
    }
    for part in parts.values() {
        let work = async {
            let mut ins = client.insert::<IntelRow<'_>>(table).await?;
            for x in part {
                let it = x.item;
                ins.write(&IntelRow::new(&it.meta, &it.eve, x.ind, x.field, x.value))
                    .await?;
            }
            ins.end().await
        };
        let result = match tokio::time::timeout(cfg.request_timeout, work).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(classify(&e)),
            Err(_) => Err(Failure::Transient(format!("{table}: insert timed out"))),
        };
        let raws = part.iter().map(|x| x.item.raw.as_bytes());
        settle(result, table, raws, &stats.intel_rows, cfg, stats)?;
    }
    Ok(found_any)
}

/// Accounts for one INSERT of the rows whose lines are `raws`: counted in `stored` on
/// success; on a data error set aside with the reason (never retried); a transient failure
/// is returned for the caller to retry the group.
fn settle<'r>(
    result: std::result::Result<(), Failure>,
    table: &str,
    raws: impl ExactSizeIterator<Item = &'r [u8]>,
    stored: &std::sync::atomic::AtomicU64,
    cfg: &WriterConfig,
    stats: &WriterStats,
) -> std::result::Result<(), String> {
    use std::sync::atomic::Ordering::Relaxed;
    let n = raws.len() as u64;
    match result {
        Ok(()) => {
            stored.fetch_add(n, Relaxed);
            stats.inserts.fetch_add(1, Relaxed);
            Ok(())
        }
        Err(Failure::Transient(reason)) => Err(reason),
        Err(Failure::Data(reason)) => {
            tracing::error!(table, %reason, rows = n, "rows refused by ClickHouse; set aside");
            let lines: Vec<(String, &[u8])> = raws.map(|raw| (reason.clone(), raw)).collect();
            set_aside(cfg, table, &lines).map_err(|e| e.to_string())?;
            stats.rejected_rows.fetch_add(n, Relaxed);
            Ok(())
        }
    }
}

/// Which of `ids` (batch, row id) `table` already holds (batches `lo..=hi`).
async fn present_ids(
    client: &Client,
    table: &str,
    ids: &[(u64, u64)],
    lo: u64,
    hi: u64,
    cfg: &WriterConfig,
) -> std::result::Result<HashSet<u64>, String> {
    #[derive(Row, serde::Deserialize)]
    struct BatchCount {
        batch: u64,
        n: u64,
    }
    #[derive(Row, serde::Deserialize)]
    struct Id {
        event_id: u64,
    }
    let sql = crate::schema::batch_counts_sql(table, lo, hi);
    let counts: Vec<BatchCount> =
        tokio::time::timeout(cfg.request_timeout, client.query_raw(&sql).fetch_all())
            .await
            .map_err(|_| format!("{table}: recovery query timed out"))?
            .map_err(|e| e.to_string())?;
    let mut expected: HashMap<u64, u64> = HashMap::new();
    for (batch, _) in ids {
        *expected.entry(*batch).or_default() += 1;
    }
    let mut present = HashSet::new();
    for c in counts {
        if c.n == 0 {
            continue;
        }
        if expected.get(&c.batch) == Some(&c.n) {
            present.extend(
                ids.iter()
                    .filter(|(batch, _)| *batch == c.batch)
                    .map(|(_, id)| *id),
            );
        } else {
            let sql = crate::schema::batch_ids_sql(table, c.batch);
            let ids: Vec<Id> =
                tokio::time::timeout(cfg.request_timeout, client.query_raw(&sql).fetch_all())
                    .await
                    .map_err(|_| format!("{table}: recovery query timed out"))?
                    .map_err(|e| e.to_string())?;
            present.extend(ids.into_iter().map(|i| i.event_id));
        }
        tracing::info!(
            table,
            batch = c.batch,
            rows = c.n,
            "batch found already stored; not inserting it again"
        );
    }
    Ok(present)
}

fn set_aside(cfg: &WriterConfig, what: &str, lines: &[(String, &[u8])]) -> Result<()> {
    use std::io::Write;
    let path = cfg
        .rejected
        .join(format!("{what}-{}.ndjson", crate::schema::now_secs()));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io_err(&path))?;
    for (reason, line) in lines {
        let reason = serde_json::json!({ "reason": reason }).to_string();
        f.write_all(reason.as_bytes()).map_err(io_err(&path))?;
        f.write_all(b"\t").map_err(io_err(&path))?;
        f.write_all(line).map_err(io_err(&path))?;
        f.write_all(b"\n").map_err(io_err(&path))?;
    }
    f.sync_all().map_err(io_err(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        use clickhouse::error::Error as E;
        let data = E::BadResponse("Code: 27, e.displayText() = DB::Exception: Cannot parse".into());
        assert!(matches!(classify(&data), Failure::Data(_)));
        let parts = E::BadResponse("Code: 252. DB::Exception: Too many parts".into());
        assert!(matches!(classify(&parts), Failure::Transient(_)));
        assert!(matches!(classify(&E::TimedOut), Failure::Transient(_)));
        assert!(matches!(
            classify(&E::BadResponse("garbage".into())),
            Failure::Transient(_)
        ));
    }

    #[test]
    fn event_ids() {
        let a = event_id("s", "f", 10, 1, 0);
        assert_eq!(
            a,
            event_id("s", "f", 10, 99, 5),
            "stream ids ignore batch and index"
        );
        assert_ne!(a, event_id("s", "f", 11, 1, 0));
        assert_ne!(a, event_id("t", "f", 10, 1, 0));
        assert_ne!(event_id("s", "", 0, 1, 0), event_id("s", "", 0, 1, 1));
    }
}
