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
//! The rows arrive encoded (ingest parsed, enriched and encoded each event once: see
//! `parsed.rs`); the writer fills in the ids only it can compute (the event id needs the
//! batch number) in each row's prefix and forwards the bytes as `INSERT … FORMAT RowBinary`
//! through the `clickhouse` crate. When ingest's rows are not in memory (after a restart), the record's
//! stored body is parsed again by the same code, giving the same rows and ids. Each indicator
//! match is an `intel_alerts` row whose id derives from its event's id, covered by the same
//! batch check as the event rows.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use clickhouse::{Client, Row};
use tokio::sync::watch;

use crate::enrich::Enrichment;
use crate::eve::Family;
use crate::parsed::{self, Frozen, Origin, Parsed, INTEL};
use crate::rows;
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
            batch_rows: 500_000,
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
    /// Spool records whose rows were not in memory (over `PENDING_BYTES`, or after a
    /// restart) and were parsed again from the stored body.
    pub reparsed: std::sync::atomic::AtomicU64,
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

/// Largest decoded body when parsing a stored record again (ingest's limit is lower).
const REPARSE_LIMIT: usize = 1 << 31;

/// One spool record of a group, with its rows (ids filled in) and their event ids.
struct Entry {
    rec: Record,
    rows: Frozen,
    ids: Vec<u64>,
}

impl Entry {
    /// The rows of `rec`: ingest's, or parsed again from the stored body.
    fn load(
        rec: Record,
        spool: &Spool,
        cfg: &WriterConfig,
        stats: &WriterStats,
        scratch: &mut Vec<u8>,
    ) -> Result<Entry> {
        let rows = match spool.take_parsed(rec.batch) {
            Some(rows) => rows,
            None => {
                stats
                    .reparsed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                parsed::decode_body(rec.encoding, rec.body(), REPARSE_LIMIT, scratch)
                    .map_err(|e| Error::Spool(format!("batch {}: {e}", rec.batch)))?;
                let origin = Origin {
                    tenant: &rec.tenant,
                    sensor: &rec.sensor,
                    received: rec.received,
                };
                let mut rows = Parsed::default();
                parsed::parse_lines(
                    scratch,
                    rec.base,
                    rec.cutoff,
                    origin,
                    &cfg.enrich,
                    0,
                    &mut rows,
                );
                if rows.events.len() != rec.events as usize {
                    tracing::warn!(
                        batch = rec.batch,
                        stored = rec.events,
                        parsed = rows.events.len(),
                        "a spool record parses to another number of events than at ingest"
                    );
                }
                rows
            }
        };
        let base = id_base(&rec.sensor, &rec.stream, rec.batch);
        let ids: Vec<u64> = if rec.stream.is_empty() {
            (0..rows.events.len() as u64)
                .map(|i| base.wrapping_add(i))
                .collect()
        } else {
            rows.events
                .iter()
                .map(|e| base.wrapping_add(e.offset))
                .collect()
        };
        let rows = rows.freeze(&ids, rec.batch);
        Ok(Entry { rec, rows, ids })
    }
}

/// Event id: stable across resends and restarts. A hash of (sensor, stream) plus the line's
/// stream offset, or for stream-less requests a hash of (sensor, spool batch) plus the line's
/// index among the batch's kept events. Ids thus follow arrival order within a stream, so
/// the writer, which sends rows in `(ts, event_id)` order, reads a stream's rows of one
/// second in memory order (with a plain hash per event it read them at random); and the
/// events of one stream (or batch) never share an id.
///
/// This is that hash: an entry's ids are `id_base(..) + offset` (or `+ index`).
fn id_base(sensor: &str, stream: &str, batch: u64) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(sensor.as_bytes());
    h.update(&[0]);
    if stream.is_empty() {
        h.update(b"\x01batch");
        h.update(&batch.to_le_bytes());
    } else {
        h.update(stream.as_bytes());
        h.update(&[0]);
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
    let mut group: Vec<Entry> = Vec::new();
    let mut scratch = Vec::new();
    loop {
        // Fill a group: up to `batch_rows` rows or `flush` after its first record.
        let mut rows = 0;
        let mut first: Option<Instant> = None;
        loop {
            let pos = *durable.borrow_and_update();
            let rec = reader.next(pos)?;
            match rec {
                Some(rec) if rec.batch <= stored => {
                    spool.take_parsed(rec.batch);
                    continue;
                }
                Some(rec) => {
                    let entry = Entry::load(rec, &spool, &cfg, &stats, &mut scratch)?;
                    rows += entry.ids.len();
                    first.get_or_insert_with(Instant::now);
                    group.push(entry);
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
        stored = group.last().map_or(stored, |e| e.rec.batch);
        write_atomic(&cfg.cursor, stored.to_string().as_bytes())?;
        stats.stored_batch.store(stored, Relaxed);
        let spool2 = spool.clone();
        tokio::task::spawn_blocking(move || spool2.release(stored))
            .await
            .map_err(|e| Error::Spool(e.to_string()))??;
        group.clear();
    }
}

fn table_of(target: usize) -> &'static str {
    Family::ALL
        .get(target)
        .map_or(crate::schema::INTEL_TABLE, |f| f.table())
}

/// One INSERT: its table (a family index or [`INTEL`]) and its rows in the table's sort
/// order. The body is made from them while it is sent.
struct Insert {
    target: usize,
    rows: Vec<BodyRow>,
}

/// A row of an INSERT body: `at` is (entry, event or match index) in the group, `record`
/// the byte range of its record (ids and row) in the entry's buffer of the table.
#[derive(Clone)]
struct BodyRow {
    at: (usize, usize),
    record: std::ops::Range<usize>,
}

/// Seconds per partition day.
const DAY: u32 = 86_400;

/// Size of the pieces an INSERT body is sent in.
const BODY_CHUNK: usize = 4 << 20;

/// A part of a group: (table, tenant, day) and its rows as (entry, event or match index).
type Part<'g> = ((usize, &'g str, u32), Vec<(usize, usize)>);

/// The group's rows split by (table, tenant, day), in key order, so that the partitions of
/// one table are consecutive. Per row this is an array lookup: an entry has one tenant, and
/// a slot per table remembers its part for the current day.
fn partition(group: &[Entry]) -> Vec<Part<'_>> {
    fn find<'g>(parts: &mut Vec<Part<'g>>, key: (usize, &'g str, u32)) -> usize {
        parts
            .iter()
            .position(|(k, _)| *k == key)
            .unwrap_or_else(|| {
                parts.push((key, Vec::new()));
                parts.len() - 1
            })
    }
    let mut parts: Vec<Part<'_>> = Vec::new();
    for (g, en) in group.iter().enumerate() {
        let tenant = en.rec.tenant.as_str();
        // Slot per table: (day, part index) of the last row of this entry in that table.
        let mut slots = [(u32::MAX, 0usize); INTEL + 1];
        let rows = en.rows.events.iter().map(|e| (e.family.index(), e.ts));
        let matches = en.rows.intel.iter().map(|m| (INTEL, m.ts));
        let per_table = rows.enumerate().chain(matches.enumerate());
        for (i, (target, ts)) in per_table {
            let day = ts / DAY;
            let slot = &mut slots[target];
            if slot.0 != day {
                *slot = (day, find(&mut parts, (target, tenant, day)));
            }
            parts[slot.1].1.push((g, i));
        }
    }
    parts.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    parts
}

/// Writes one group to every table: one INSERT per table and partition (tenant, day).
/// Returns whether any of it was found already stored (only looked up when `uncertain`).
/// `Err` is a transient failure.
async fn store_group(
    client: &Client,
    group: &[Entry],
    uncertain: bool,
    cfg: &WriterConfig,
    stats: &WriterStats,
) -> std::result::Result<bool, String> {
    let parts = partition(group);
    // Row id, and for intel rows the id of the event matched.
    // Row id: an intel row's derives from the id of the event matched.
    let id_of = |target: usize, (g, i): (usize, usize)| -> u64 {
        let en = &group[g];
        if target == INTEL {
            let m = &en.rows.intel[i];
            rows::intel_id(en.ids[m.event as usize], m.key)
        } else {
            en.ids[i]
        }
    };
    let lo = group.first().map_or(0, |e| e.rec.batch);
    let hi = group.last().map_or(0, |e| e.rec.batch);
    let mut found_any = false;
    let mut skip: HashSet<u64> = HashSet::new();
    let mut skip_target = usize::MAX;
    let mut inserts: Vec<Insert> = Vec::new();
    for ((target, _, _), part) in &parts {
        let target = *target;
        let table = table_of(target);
        if uncertain && skip_target != target {
            // Once per table, over all its partitions of the group.
            let ids: Vec<(u64, u64)> = parts
                .iter()
                .filter(|((t, _, _), _)| *t == target)
                .flat_map(|(_, rows)| rows.iter())
                .map(|&r| (group[r.0].rec.batch, id_of(target, r)))
                .collect();
            skip = present_ids(client, table, &ids, lo, hi, cfg).await?;
            found_any |= !skip.is_empty();
            skip_target = target;
        }
        let mut kept = Vec::with_capacity(part.len());
        // (ts, event id, index in `kept`): the table's sort order within the part.
        let mut order: Vec<(u32, u64, u32)> = Vec::with_capacity(part.len());
        for &at in part {
            let id = id_of(target, at);
            if !skip.is_empty() && skip.contains(&id) {
                continue;
            }
            let rows = &group[at.0].rows;
            let (record, ts) = if target == INTEL {
                let m = &rows.intel[at.1];
                (m.record(), m.ts)
            } else {
                let e = &rows.events[at.1];
                (e.record(), e.ts)
            };
            order.push((ts, id, kept.len() as u32));
            kept.push(BodyRow { at, record });
        }
        if kept.is_empty() {
            continue;
        }
        // Rows in the table's sort order (tenant, ts, event_id): ClickHouse then writes the
        // part as it comes instead of sorting and permuting every column of the block.
        order.sort_unstable();
        let rows = order
            .iter()
            .map(|&(_, _, k)| kept[k as usize].clone())
            .collect();
        inserts.push(Insert { target, rows });
    }
    // Every INSERT of the group at once: ClickHouse writes each part on its own thread.
    let sends = inserts
        .iter()
        .map(|ins| send(client, group, ins, cfg.request_timeout));
    let results = futures_util::future::join_all(sends).await;
    // Account in order; any transient failure makes the caller retry the whole group
    // (uncertain: what was stored is found and skipped).
    let mut transient = None;
    for (Insert { target, rows }, result) in inserts.iter().zip(results) {
        let table = table_of(*target);
        let raws = rows.iter().map(|r| {
            let (g, i) = r.at;
            let rows = &group[g].rows;
            let e = if *target == INTEL {
                &rows.events[rows.intel[i].event as usize]
            } else {
                &rows.events[i]
            };
            rows.raw(e)
        });
        let counter = if *target == INTEL {
            &stats.intel_rows
        } else {
            &stats.rows
        };
        if let Err(reason) = settle(result, table, raws, counter, cfg, stats) {
            transient.get_or_insert(reason);
        }
    }
    if let Some(reason) = transient {
        return Err(reason);
    }
    Ok(found_any)
}

/// Shortest run of consecutive records sent as it lies in its entry's buffer; shorter runs
/// are copied into a body piece (a piece per record would cost more than the copy).
const ZERO_COPY_MIN: usize = 64 << 10;

/// Sends one INSERT. Its RowBinary body is the records in order: where the order follows
/// an entry's buffer (rows that arrived in `(ts, event_id)` order, the common case) a whole
/// run of records goes out as a slice of that buffer, without a copy; other records are
/// copied into pieces of `BODY_CHUNK` bytes, so a group's bodies never all sit in memory at
/// once.
async fn send(
    client: &Client,
    group: &[Entry],
    ins: &Insert,
    timeout: Duration,
) -> std::result::Result<(), Failure> {
    let table = table_of(ins.target);
    let columns = Family::ALL
        .get(ins.target)
        .map_or(rows::INTEL_COLUMNS, |f| rows::columns(*f));
    let work = async {
        let mut insert = client
            .insert_formatted_with(format!("INSERT INTO {table} ({columns}) FORMAT RowBinary"));
        let mut buf = BytesMut::new();
        for (g, run) in runs(&ins.rows) {
            let data = &group[g].rows.data[ins.target];
            if run.len() >= ZERO_COPY_MIN {
                if !buf.is_empty() {
                    insert.send(buf.split().freeze()).await?;
                }
                insert.send(data.slice(run)).await?;
                continue;
            }
            if buf.len() + run.len() > buf.capacity() {
                if !buf.is_empty() {
                    insert.send(buf.split().freeze()).await?;
                }
                buf.reserve(BODY_CHUNK.max(run.len()));
            }
            buf.extend_from_slice(data.get(run).unwrap_or_default());
        }
        if !buf.is_empty() {
            insert.send(buf.split().freeze()).await?;
        }
        insert.end().await
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(classify(&e)),
        Err(_) => Err(Failure::Transient(format!("{table}: insert timed out"))),
    }
}

/// The rows as runs of records that follow each other in one entry's buffer:
/// (entry, byte range).
fn runs(rows: &[BodyRow]) -> impl Iterator<Item = (usize, std::ops::Range<usize>)> + '_ {
    let mut rows = rows.iter().peekable();
    std::iter::from_fn(move || {
        let first = rows.next()?;
        let (g, mut run) = (first.at.0, first.record.clone());
        while let Some(next) = rows.next_if(|r| r.at.0 == g && r.record.start == run.end) {
            run.end = next.record.end;
        }
        Some((g, run))
    })
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
    fn rows_start_with_their_timestamp() {
        let body = b"{\"timestamp\":\"2024-01-02T03:04:05.250000+0700\",\"event_type\":\"flow\"}\n";
        let origin = parsed::Origin {
            tenant: "t",
            sensor: "s",
            received: 1,
        };
        let mut p = Parsed::default();
        parsed::parse_lines(body, 0, 0, origin, &Default::default(), 0, &mut p);
        let e = &p.events[0];
        assert_eq!(e.ts, 1_704_139_445, "2024-01-01T20:04:05Z");
        let row = p.row(e);
        assert_eq!(row.first_chunk::<4>(), Some(&e.ts.to_le_bytes()));
    }

    #[test]
    fn runs_follow_the_buffers() {
        let row = |g, i, a, b| BodyRow {
            at: (g, i),
            record: a..b,
        };
        // Entry 0's first three records back to back, then entry 1, then entry 0 again
        // after a gap (a skipped record), then a record out of order.
        let rows = [
            row(0, 0, 0, 10),
            row(0, 1, 10, 25),
            row(0, 2, 25, 30),
            row(1, 0, 30, 40),
            row(0, 4, 40, 50),
            row(0, 5, 50, 60),
            row(0, 3, 30, 40),
        ];
        let got: Vec<_> = runs(&rows).collect();
        assert_eq!(got, [(0, 0..30), (1, 30..40), (0, 40..60), (0, 30..40)]);
        assert_eq!(runs(&[]).count(), 0);
    }

    #[test]
    fn event_ids() {
        // A stream's ids are one hash plus each line's offset; other streams, sensors and
        // stream-less batches start elsewhere.
        let b = id_base("s", "f", 1);
        assert_eq!(b, id_base("s", "f", 99), "stream ids ignore the batch");
        assert_ne!(b, id_base("t", "f", 1));
        assert_ne!(b, id_base("s", "g", 1));
        assert_ne!(b, id_base("s", "", 1));
        assert_ne!(id_base("s", "", 1), id_base("s", "", 2));
    }
}
