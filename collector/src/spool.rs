//! The durable on-disk spool between ingest and ClickHouse.
//!
//! Each request with accepted lines becomes one CRC-checked record in segment files
//! `DIR/spool/seg-NNNNNNNNNNNNNNNNNNNN.log`, `fsync`ed before the request is acknowledged.
//! A record holds the request body as it was sent (usually zstd: several times smaller than
//! the rows) with what is needed to parse it again exactly as ingest did (stream, base
//! offset, duplicate cutoff, encoding). Ingest's parsed rows ([`Parsed`]) are handed to the
//! writer in memory, within a budget; the body on disk is what survives a crash. Each record
//! carries a monotonically increasing batch number. A writer reads records up to the durable
//! position and drains them into ClickHouse; segments whose batches are all stored are
//! deleted.
//!
//! Exactly-once from a shipper: a request may name a *stream* (e.g. one EVE file) and the
//! byte offset of its first line. The spool remembers, per (sensor, stream), the offset just
//! past the last line it made durable, and drops lines below it as duplicates — so a batch
//! resent after a lost acknowledgement is acknowledged again without being stored twice.
//! That map survives restarts: it is rebuilt from the records, and saved in
//! `DIR/spool/state.json` before any segment is deleted.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::parsed::{Encoding, Parsed};
use crate::{io_err, write_atomic, Error, Result};

/// Record magic; `KSP1` (line records, before parse-once) is refused with a clear error.
const MAGIC: &[u8; 4] = b"KSP2";
const HEADER: usize = 12;
/// A segment is closed and a new one started past this size.
pub const SEGMENT_BYTES: u64 = 64 << 20;
/// Largest record accepted on read (guards against a corrupt length).
const MAX_RECORD: usize = 1 << 30;

/// A position in the spool: segment number and byte length within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub seg: u64,
    pub len: u64,
}

/// Memory kept for parsed rows waiting for the writer; past it the writer re-parses.
pub const PENDING_BYTES: usize = 512 << 20;

/// What to append: one request, its body as sent and its parsed events.
#[derive(Debug)]
pub struct Batch<'a> {
    pub tenant: &'a str,
    pub sensor: &'a str,
    /// The stream the lines come from; empty when the client names none.
    pub stream: &'a str,
    /// Offset just past the request's last line in its stream.
    pub stream_end: u64,
    /// Stream offset of the body's first byte.
    pub base: u64,
    pub received: u32,
    pub encoding: Encoding,
    /// The request body as sent.
    pub body: &'a [u8],
}

/// Outcome of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Batch number of the new record, if any line was new.
    pub batch: Option<u64>,
    /// Lines stored.
    pub stored: usize,
    /// Lines dropped because the stream offset showed they were stored already.
    pub duplicates: usize,
}

/// One record read back from the spool. The body is a range of `payload`.
#[derive(Debug)]
pub struct Record {
    pub batch: u64,
    pub received: u32,
    pub tenant: String,
    pub sensor: String,
    pub stream: String,
    pub stream_end: u64,
    pub base: u64,
    /// Lines below this stream offset were duplicates when the record was appended.
    pub cutoff: u64,
    pub encoding: Encoding,
    /// Events kept from the body.
    pub events: u32,
    body: Range<usize>,
    payload: Vec<u8>,
}

impl Record {
    /// The request body as sent.
    pub fn body(&self) -> &[u8] {
        self.payload.get(self.body.clone()).unwrap_or_default()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    next_batch: u64,
    streams: HashMap<String, u64>,
}

#[derive(Debug)]
struct Appender {
    file: File,
    pos: Pos,
    next_batch: u64,
    /// Closed and active segments: number → (bytes, last batch in it).
    segments: BTreeMap<u64, (u64, u64)>,
    total_bytes: u64,
    /// The record being written, reused between appends.
    buf: Vec<u8>,
}

/// Parsed rows of appended batches the writer has not taken yet.
#[derive(Debug, Default)]
struct Pending {
    rows: HashMap<u64, Parsed>,
    bytes: usize,
}

/// The spool. Appends are serialised by a mutex and are blocking (call them from
/// `spawn_blocking`).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    inner: Mutex<Appender>,
    /// Per (sensor, stream): the offset just past the last line stored. Its own lock, so a
    /// reader never waits for an append's fsync (lock order: appender, then streams).
    streams: Mutex<HashMap<String, u64>>,
    /// Bumped whenever a stream's offset advances.
    advanced: watch::Sender<u64>,
    pending: Mutex<Pending>,
    durable: watch::Sender<Pos>,
    max_bytes: u64,
}

fn seg_path(dir: &Path, seg: u64) -> PathBuf {
    dir.join(format!("seg-{seg:020}.log"))
}

fn stream_key(sensor: &str, stream: &str) -> String {
    format!("{sensor}\u{0}{stream}")
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let n = u16::try_from(b.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(b.get(..usize::from(n)).unwrap_or_default());
}

/// Encodes one record into `p` (cleared first).
fn encode(p: &mut Vec<u8>, batch: u64, b: &Batch<'_>, cutoff: u64, events: usize) {
    p.clear();
    p.reserve(b.body.len() + 1024 + HEADER);
    p.extend_from_slice(&[0; HEADER]);
    p.extend_from_slice(&batch.to_le_bytes());
    p.extend_from_slice(&b.received.to_le_bytes());
    put_str(p, b.tenant);
    put_str(p, b.sensor);
    put_str(p, b.stream);
    p.extend_from_slice(&b.stream_end.to_le_bytes());
    p.extend_from_slice(&b.base.to_le_bytes());
    p.extend_from_slice(&cutoff.to_le_bytes());
    p.push(b.encoding.code());
    p.extend_from_slice(&u32::try_from(events).unwrap_or(u32::MAX).to_le_bytes());
    p.extend_from_slice(
        &u32::try_from(b.body.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    p.extend_from_slice(b.body);
    let len = u32::try_from(p.len() - HEADER).unwrap_or(u32::MAX);
    let crc = crc32fast::hash(&p[HEADER..]);
    p[0..4].copy_from_slice(MAGIC);
    p[4..8].copy_from_slice(&len.to_le_bytes());
    p[8..12].copy_from_slice(&crc.to_le_bytes());
}

/// A bounds-checked little-endian reader over a record payload.
struct Cur<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cur<'_> {
    fn take(&mut self, n: usize) -> Option<Range<usize>> {
        let end = self.at.checked_add(n)?;
        if end > self.b.len() {
            return None;
        }
        let r = self.at..end;
        self.at = end;
        Some(r)
    }
    fn u64(&mut self) -> Option<u64> {
        let r = self.take(8)?;
        Some(u64::from_le_bytes(self.b.get(r)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        let r = self.take(4)?;
        Some(u32::from_le_bytes(self.b.get(r)?.try_into().ok()?))
    }
    fn u8(&mut self) -> Option<u8> {
        let r = self.take(1)?;
        self.b.get(r.start).copied()
    }
    fn u16(&mut self) -> Option<u16> {
        let r = self.take(2)?;
        Some(u16::from_le_bytes(self.b.get(r)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = usize::from(self.u16()?);
        let r = self.take(n)?;
        String::from_utf8(self.b.get(r)?.to_vec()).ok()
    }
}

fn decode(payload: Vec<u8>) -> Option<Record> {
    let mut c = Cur { b: &payload, at: 0 };
    let batch = c.u64()?;
    let received = c.u32()?;
    let tenant = c.string()?;
    let sensor = c.string()?;
    let stream = c.string()?;
    let stream_end = c.u64()?;
    let base = c.u64()?;
    let cutoff = c.u64()?;
    let encoding = Encoding::from_code(c.u8()?)?;
    let events = c.u32()?;
    let len = c.u32()?;
    let body = c.take(usize::try_from(len).ok()?)?;
    if c.at != payload.len() {
        return None;
    }
    Some(Record {
        batch,
        received,
        tenant,
        sensor,
        stream,
        stream_end,
        base,
        cutoff,
        encoding,
        events,
        body,
        payload,
    })
}

/// Reads the record at the reader's position; `Ok(None)` at a clean end of data, `Err` with
/// a reason for a torn or corrupt record.
fn read_record(r: &mut impl Read) -> std::result::Result<Option<(Record, u64)>, String> {
    let mut h = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        match r.read(&mut h[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err("truncated record header".into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    if &h[0..4] == b"KSP1" {
        return Err(
            "a record of the old line format (KSP1): drain this spool with the \
             collector version that wrote it"
                .into(),
        );
    }
    if &h[0..4] != MAGIC {
        return Err("bad record magic".into());
    }
    let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
    let crc = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if len > MAX_RECORD {
        return Err(format!("record length {len} is over the limit"));
    }
    let mut payload = Vec::with_capacity(len);
    r.take(len as u64)
        .read_to_end(&mut payload)
        .map_err(|e| e.to_string())?;
    if payload.len() != len {
        return Err("truncated record".into());
    }
    if crc32fast::hash(&payload) != crc {
        return Err("record checksum mismatch".into());
    }
    let rec = decode(payload).ok_or("malformed record payload")?;
    Ok(Some((rec, (HEADER + len) as u64)))
}

fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut segs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name
            .strip_prefix("seg-")
            .and_then(|s| s.strip_suffix(".log"))
        {
            if let Ok(n) = n.parse() {
                segs.push(n);
            }
        }
    }
    segs.sort_unstable();
    Ok(segs)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, recovering after a crash: a torn record at the
    /// end of the last segment is cut off (it was never acknowledged). `max_bytes` bounds the
    /// spool's size; past it [`Spool::is_full`] turns true.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let state_path = dir.join("state.json");
        let mut state: State = match std::fs::read(&state_path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::BadFile {
                path: state_path.clone(),
                reason: e.to_string(),
            })?,
            Err(_) => State::default(),
        };
        state.next_batch = state.next_batch.max(1);
        let segs = list_segments(dir)?;
        let mut segments = BTreeMap::new();
        let mut total_bytes = 0;
        for (i, &seg) in segs.iter().enumerate() {
            let path = seg_path(dir, seg);
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io_err(&path))?;
            let mut r = std::io::BufReader::with_capacity(1 << 20, &mut f);
            let mut good = 0u64;
            let mut last_batch = 0;
            loop {
                match read_record(&mut r) {
                    Ok(Some((rec, n))) => {
                        good += n;
                        last_batch = rec.batch;
                        state.next_batch = state.next_batch.max(rec.batch + 1);
                        if !rec.stream.is_empty() {
                            let e = state
                                .streams
                                .entry(stream_key(&rec.sensor, &rec.stream))
                                .or_default();
                            *e = (*e).max(rec.stream_end);
                        }
                    }
                    Ok(None) => break,
                    Err(reason) if i + 1 == segs.len() => {
                        tracing::warn!(path = %path.display(), offset = good, %reason,
                            "cutting off a torn record at the spool's end (never acknowledged)");
                        drop(r);
                        f.set_len(good).map_err(io_err(&path))?;
                        f.sync_all().map_err(io_err(&path))?;
                        break;
                    }
                    Err(reason) => {
                        return Err(Error::Spool(format!(
                            "{} is corrupt at byte {good}: {reason}",
                            path.display()
                        )))
                    }
                }
            }
            segments.insert(seg, (good, last_batch));
            total_bytes += good;
        }
        // Appends always go to a fresh segment after a restart.
        let seg = segs.last().map_or(1, |s| s + 1);
        let path = seg_path(dir, seg);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        sync_dir(dir)?;
        segments.insert(seg, (0, 0));
        let pos = Pos { seg, len: 0 };
        let (durable, _) = watch::channel(pos);
        Ok(Spool {
            dir: dir.to_owned(),
            advanced: watch::channel(0).0,
            streams: Mutex::new(state.streams),
            inner: Mutex::new(Appender {
                file,
                pos,
                next_batch: state.next_batch,
                segments,
                total_bytes,
                buf: Vec::new(),
            }),
            pending: Mutex::new(Pending::default()),
            durable,
            max_bytes,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Appender> {
        // A panic while holding the lock cannot leave the appender half-updated in a way
        // that matters: the file is the truth and is re-read on restart.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the spool holds more than its size limit (ingest answers 503 then).
    pub fn is_full(&self) -> bool {
        self.lock().total_bytes > self.max_bytes
    }

    /// Bytes held in segments.
    pub fn bytes(&self) -> u64 {
        self.lock().total_bytes
    }

    /// The durable end of the spool, updated after every fsync.
    pub fn durable(&self) -> watch::Receiver<Pos> {
        self.durable.subscribe()
    }

    /// The next offset expected from (sensor, stream), if known.
    pub fn stream_next(&self, sensor: &str, stream: &str) -> Option<u64> {
        self.streams().get(&stream_key(sensor, stream)).copied()
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Moves a stream's offset to `end` (if past it) without a record: for a request none of
    /// whose lines were stored (all rejected). A later restart may forget it; such a request
    /// is then simply seen again.
    pub fn advance(&self, sensor: &str, stream: &str, end: u64) {
        let mut m = self.streams();
        let e = m.entry(stream_key(sensor, stream)).or_default();
        if end > *e {
            *e = end;
            drop(m);
            self.advanced.send_modify(|n| *n += 1);
        }
    }

    /// Waits up to `timeout` until the stream's offset is at least `offset` (every line
    /// before it stored); false on timeout.
    pub async fn wait_stream(
        &self,
        sensor: &str,
        stream: &str,
        offset: u64,
        timeout: Duration,
    ) -> bool {
        let mut rx = self.advanced.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.stream_next(sensor, stream).unwrap_or(0) >= offset {
                return true;
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return false;
            }
        }
    }

    /// Appends the request `b` with the events of `parsed` that are new (offset at or past
    /// the stream's durable end), fsyncs, and returns what was stored. The parsed rows are
    /// kept in memory for [`Spool::take_parsed`] (within [`PENDING_BYTES`]). Blocking.
    pub fn append(&self, b: &Batch<'_>, mut parsed: Parsed) -> Result<Appended> {
        let mut a = self.lock();
        let key = (!b.stream.is_empty()).then(|| stream_key(b.sensor, b.stream));
        let cutoff = key
            .as_ref()
            .and_then(|k| self.streams().get(k).copied())
            .unwrap_or(0);
        let dups = parsed.keep_from(cutoff);
        if parsed.events.is_empty() {
            return Ok(Appended {
                batch: None,
                stored: 0,
                duplicates: dups,
            });
        }
        let stored = parsed.events.len();
        let batch = a.next_batch;
        let mut rec = std::mem::take(&mut a.buf);
        encode(&mut rec, batch, b, cutoff, stored);
        let rec_len = rec.len() as u64;
        let path = seg_path(&self.dir, a.pos.seg);
        let written = a.file.write_all(&rec).and_then(|()| a.file.sync_data());
        if rec.capacity() <= 64 << 20 {
            a.buf = rec;
        }
        if let Err(e) = written {
            // Cut whatever part of the record reached the file, so the segment stays valid.
            let len = a.pos.len;
            let _ = a.file.set_len(len);
            return Err(Error::Io { path, source: e });
        }
        a.next_batch += 1;
        a.pos.len += rec_len;
        a.total_bytes += rec_len;
        let pos = a.pos;
        if let Some(s) = a.segments.get_mut(&pos.seg) {
            *s = (pos.len, batch);
        }
        if let Some(k) = key {
            let mut m = self.streams();
            let e = m.entry(k).or_default();
            *e = (*e).max(b.stream_end);
        }
        if pos.len >= SEGMENT_BYTES {
            let seg = pos.seg + 1;
            let path = seg_path(&self.dir, seg);
            a.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io_err(&path))?;
            sync_dir(&self.dir)?;
            a.pos = Pos { seg, len: 0 };
            a.segments.insert(seg, (0, 0));
        }
        {
            // Lock order: appender, then pending (take_parsed takes only the latter, so the
            // writer never waits for an fsync).
            let mut p = self.pending();
            let size = parsed.bytes();
            if p.bytes + size <= PENDING_BYTES {
                p.bytes += size;
                p.rows.insert(batch, parsed);
            }
        }
        // Published after the rows are pending, so the writer never misses them.
        self.durable.send_replace(a.pos.max(pos));
        if !b.stream.is_empty() {
            self.advanced.send_modify(|n| *n += 1);
        }
        Ok(Appended {
            batch: Some(batch),
            stored,
            duplicates: dups,
        })
    }

    /// The parsed rows of `batch` if ingest left them in memory (taken: a second call gets
    /// `None`). Without them the writer re-parses the record's body.
    pub fn take_parsed(&self, batch: u64) -> Option<Parsed> {
        let mut p = self.pending();
        let rows = p.rows.remove(&batch)?;
        p.bytes -= rows.bytes();
        Some(rows)
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Deletes the closed segments whose batches are all `<= stored` (stored in ClickHouse),
    /// after saving the stream offsets and batch counter they carried.
    pub fn release(&self, stored: u64) -> Result<()> {
        let mut a = self.lock();
        let active = a.pos.seg;
        let done: Vec<u64> = a
            .segments
            .iter()
            .filter(|(&seg, &(_, last))| seg < active && last <= stored)
            .map(|(&seg, _)| seg)
            .collect();
        if done.is_empty() {
            return Ok(());
        }
        let state = State {
            next_batch: a.next_batch,
            streams: self.streams().clone(),
        };
        let json = serde_json::to_vec(&state).unwrap_or_default();
        write_atomic(&self.dir.join("state.json"), &json)?;
        for seg in done {
            let path = seg_path(&self.dir, seg);
            std::fs::remove_file(&path).map_err(io_err(&path))?;
            if let Some((bytes, _)) = a.segments.remove(&seg) {
                a.total_bytes -= bytes;
            }
        }
        Ok(())
    }

    /// A reader starting at the oldest segment.
    pub fn reader(&self) -> Result<Reader> {
        let first = self.lock().segments.keys().next().copied().unwrap_or(1);
        Ok(Reader {
            dir: self.dir.clone(),
            seg: first,
            off: 0,
            file: None,
        })
    }
}

/// Reads records in order, never past the durable position.
#[derive(Debug)]
pub struct Reader {
    dir: PathBuf,
    seg: u64,
    off: u64,
    file: Option<std::io::BufReader<File>>,
}

impl Reader {
    /// The next durable record, or `None` when the reader has caught up with `durable`.
    pub fn next(&mut self, durable: Pos) -> Result<Option<Record>> {
        loop {
            let here = Pos {
                seg: self.seg,
                len: self.off,
            };
            if here >= durable {
                return Ok(None);
            }
            if self.seg < durable.seg {
                // Is this segment finished? (Closed segments never grow again.)
                let path = seg_path(&self.dir, self.seg);
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                if self.off >= size {
                    self.seg += 1;
                    self.off = 0;
                    self.file = None;
                    continue;
                }
            }
            if self.file.is_none() {
                let path = seg_path(&self.dir, self.seg);
                let mut f = File::open(&path).map_err(io_err(&path))?;
                f.seek(SeekFrom::Start(self.off)).map_err(io_err(&path))?;
                self.file = Some(std::io::BufReader::with_capacity(1 << 20, f));
            }
            let Some(f) = self.file.as_mut() else {
                continue;
            };
            match read_record(f) {
                Ok(Some((rec, n))) => {
                    self.off += n;
                    return Ok(Some(rec));
                }
                Ok(None) => {
                    self.file = None;
                    if self.seg >= durable.seg {
                        return Ok(None);
                    }
                    self.seg += 1;
                    self.off = 0;
                }
                Err(reason) => {
                    return Err(Error::Spool(format!(
                        "{} at byte {}: {reason}",
                        seg_path(&self.dir, self.seg).display(),
                        self.off
                    )))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parsed::{parse_lines, Origin};

    fn line(n: u32) -> String {
        format!(
            r#"{{"timestamp":"2024-01-02T03:04:05.000000+0000","event_type":"dns","flow_id":{n},"dns":{{"rrname":"n{n}.vn"}}}}"#
        )
    }

    /// The body holding lines `from..to` (one event each) of a stream whose line `i` starts
    /// at `offset(i)`, and its parse with no cutoff.
    fn body(from: u32, to: u32) -> (u64, Vec<u8>, u64) {
        let offset = |i: u32| (0..i).map(|k| line(k).len() as u64 + 1).sum::<u64>();
        let mut b = Vec::new();
        for i in from..to {
            b.extend_from_slice(line(i).as_bytes());
            b.push(b'\n');
        }
        (offset(from), b, offset(to))
    }

    fn parse(base: u64, body: &[u8]) -> Parsed {
        let mut p = Parsed::default();
        let origin = Origin {
            tenant: "hanoi",
            sensor: "edge-1",
            received: 7,
        };
        let enrich = crate::enrich::Enrichment::default();
        parse_lines(body, base, 0, origin, &enrich, 10, &mut p);
        p
    }

    fn append(spool: &Spool, stream: &str, from: u32, to: u32) -> Appended {
        let (base, b, end) = body(from, to);
        let batch = Batch {
            tenant: "hanoi",
            sensor: "edge-1",
            stream,
            stream_end: end,
            base,
            received: 7,
            encoding: Encoding::Identity,
            body: &b,
        };
        spool.append(&batch, parse(base, &b)).unwrap()
    }

    #[tokio::test]
    async fn ordered_waits_for_the_earlier_batch() {
        let dir = tempfile::tempdir().unwrap();
        let spool = std::sync::Arc::new(Spool::open(dir.path(), 1 << 30).unwrap());
        let (_, _, end1) = body(0, 2);
        let short = Duration::from_millis(50);
        // Nothing of the stream stored yet: a batch starting past 0 must wait, and times out.
        assert!(!spool.wait_stream("edge-1", "f1", end1, short).await);
        assert!(spool.wait_stream("edge-1", "f1", 0, short).await);
        // The waiter is woken by the earlier batch's append.
        let s2 = spool.clone();
        let waiter = tokio::spawn(async move {
            s2.wait_stream("edge-1", "f1", end1, Duration::from_secs(10))
                .await
        });
        tokio::task::yield_now().await;
        let s3 = spool.clone();
        tokio::task::spawn_blocking(move || append(&s3, "f1", 0, 2))
            .await
            .unwrap();
        assert!(waiter.await.unwrap());
        // Another sensor's stream of the same name is its own stream.
        assert!(!spool.wait_stream("edge-2", "f1", end1, short).await);
        // A batch of rejected lines only moves the offset (in memory), and wakes waiters too.
        let (_, _, end3) = body(0, 3);
        spool.advance("edge-1", "f1", end3);
        assert_eq!(spool.stream_next("edge-1", "f1"), Some(end3));
        spool.advance("edge-1", "f1", end1);
        assert_eq!(
            spool.stream_next("edge-1", "f1"),
            Some(end3),
            "never moves back"
        );
        assert!(spool.wait_stream("edge-1", "f1", end3, short).await);
    }

    #[test]
    fn append_read_dedup_recover() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        let a = append(&spool, "f1", 0, 2);
        let want = |batch, stored, duplicates| Appended {
            batch,
            stored,
            duplicates,
        };
        assert_eq!(a, want(Some(1), 2, 0));
        // Resent with one more line: the first two are duplicates.
        assert_eq!(append(&spool, "f1", 0, 3), want(Some(2), 1, 2));
        assert_eq!(append(&spool, "f1", 1, 2), want(None, 0, 1));
        // No stream: never deduplicated.
        assert_eq!(append(&spool, "", 0, 1).batch, Some(3));

        let durable = *spool.durable().borrow();
        let mut r = spool.reader().unwrap();
        let recs: Vec<Record> = std::iter::from_fn(|| r.next(durable).unwrap()).collect();
        assert_eq!(recs.len(), 3);
        let rec = &recs[1];
        assert_eq!(
            (rec.events, rec.cutoff, rec.tenant.as_str()),
            (1, body(0, 2).2, "hanoi")
        );
        // The rows in memory are those a re-parse of the stored body gives.
        let kept = spool.take_parsed(2).unwrap();
        assert!(spool.take_parsed(2).is_none(), "taken once");
        let mut again = Parsed::default();
        let origin = Origin {
            tenant: &rec.tenant,
            sensor: &rec.sensor,
            received: rec.received,
        };
        let enrich = crate::enrich::Enrichment::default();
        let report = parse_lines(
            rec.body(),
            rec.base,
            rec.cutoff,
            origin,
            &enrich,
            10,
            &mut again,
        );
        assert_eq!(report.duplicates, 2);
        assert_eq!(again.events.len(), 1);
        assert_eq!(again.events[0].offset, kept.events[0].offset);
        assert_eq!(again.row(&again.events[0]), kept.row(&kept.events[0]));
        assert_eq!(kept.raw(&kept.events[0]), line(2).as_bytes());
        drop(spool);

        // Simulate a torn write at the end of the last segment.
        let seg = seg_path(dir.path(), 1);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(b"KSP2\x10\x00\x00\x00garbage").unwrap();
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        assert_eq!(spool.stream_next("edge-1", "f1"), Some(body(0, 3).2));
        assert!(
            spool.take_parsed(1).is_none(),
            "rows in memory do not survive a restart"
        );
        assert_eq!(append(&spool, "f1", 2, 4), want(Some(4), 1, 1));
        // Release everything stored so far: segment 1 goes, state.json keeps the offsets.
        spool.release(3).unwrap();
        assert!(!seg.exists());
        drop(spool);
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        assert_eq!(spool.stream_next("edge-1", "f1"), Some(body(0, 4).2));
        let durable = *spool.durable().borrow();
        let mut r = spool.reader().unwrap();
        let rec = r.next(durable).unwrap().unwrap();
        assert_eq!(rec.batch, 4);
        assert!(r.next(durable).unwrap().is_none());
        assert_eq!(
            append(&spool, "", 0, 1).batch,
            Some(5),
            "batch numbers survive segment deletion"
        );
    }

    #[test]
    fn corrupt_records_are_errors_not_panics() {
        for bytes in [
            &b""[..],
            b"KSP",
            b"XXXX\x00\x00\x00\x00\x00\x00\x00\x00",
            b"KSP2\xff\xff\xff\xff\x00\x00\x00\x00",
            b"KSP2\x04\x00\x00\x00\x00\x00\x00\x00abcd",
            b"KSP1\x04\x00\x00\x00\x00\x00\x00\x00abcd",
        ] {
            let r = read_record(&mut &bytes[..]);
            assert!(matches!(r, Ok(None) | Err(_)));
        }
        // A valid CRC over a payload whose inner lengths lie.
        let payload = [1u8; 40];
        let mut rec = b"KSP2".to_vec();
        rec.extend_from_slice(&40u32.to_le_bytes());
        rec.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        rec.extend_from_slice(&payload);
        assert!(read_record(&mut &rec[..]).is_err());
    }
}
