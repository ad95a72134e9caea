//! The events of one ingest request, parsed and encoded once.
//!
//! Ingest decodes a request body, validates each line with [`eve::parse`], enriches it and
//! encodes its ClickHouse row (`rows.rs`) into its table's buffer: a [`Parsed`]. The spool stores the
//! request body as it was sent (compressed: a few times smaller than the rows) and keeps the
//! `Parsed` in memory for the writer, which fills in the ids ([`Parsed::freeze`]) and
//! forwards the row bytes to ClickHouse without parsing anything again. Only when the rows are not in memory (after a restart, or when
//! the writer is so far behind that the spool's memory budget is spent) does the writer rebuild
//! them from the stored body with this same deterministic code: same lines kept, same order,
//! so the same event ids.

use std::io::Read;

use crate::enrich::Enrichment;
use crate::eve::{self, Family};
use crate::rows::{self, Meta};

/// How a request body is encoded (`Content-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

impl Encoding {
    /// From a `Content-Encoding` header value (`None`: not supported).
    pub fn from_header(v: &str) -> Option<Encoding> {
        match v.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Some(Encoding::Identity),
            "gzip" | "x-gzip" => Some(Encoding::Gzip),
            "zstd" => Some(Encoding::Zstd),
            _ => None,
        }
    }

    /// The code stored in spool records.
    pub fn code(self) -> u8 {
        match self {
            Encoding::Identity => 0,
            Encoding::Gzip => 1,
            Encoding::Zstd => 2,
        }
    }

    /// From a stored code.
    pub fn from_code(c: u8) -> Option<Encoding> {
        match c {
            0 => Some(Encoding::Identity),
            1 => Some(Encoding::Gzip),
            2 => Some(Encoding::Zstd),
            _ => None,
        }
    }
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("decompressed body over the limit of {0} bytes")]
    TooLarge(usize),
    #[error("cannot decompress the body: {0}")]
    Corrupt(String),
}

/// Decodes `body` into `out` (cleared first), refusing more than `limit` bytes.
pub fn decode_body(
    encoding: Encoding,
    body: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    out.clear();
    out.reserve(body.len().saturating_mul(8).min(limit));
    let res = match encoding {
        Encoding::Identity => {
            if body.len() > limit {
                return Err(DecodeError::TooLarge(limit));
            }
            out.extend_from_slice(body);
            Ok(0)
        }
        Encoding::Gzip => flate2::read::MultiGzDecoder::new(body)
            .take((limit as u64).saturating_add(1))
            .read_to_end(out),
        Encoding::Zstd => zstd_into(body, limit, out).map(|()| 0),
    };
    res.map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge(limit));
    }
    Ok(())
}

/// Decompresses the zstd frames of `body` into `out`'s spare capacity (no zero-filling of
/// the buffer first, which `Read::read_to_end` does), stopping once past `limit` bytes.
fn zstd_into(body: &[u8], limit: usize, out: &mut Vec<u8>) -> std::io::Result<()> {
    use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};
    let mut d = Decoder::new()?;
    let mut input = InBuffer::around(body);
    while out.len() <= limit {
        if out.capacity() - out.len() < 1 << 16 {
            out.reserve(out.capacity().clamp(1 << 16, 64 << 20));
        }
        let (read, len) = (input.pos(), out.len());
        let hint = d.run(&mut input, &mut OutBuffer::around_pos(out, len))?;
        if hint == 0 && input.pos() == body.len() {
            return Ok(()); // the last frame is complete
        }
        if input.pos() == read && out.len() == len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "truncated zstd frame",
            ));
        }
    }
    Ok(())
}

/// Where a parsed row goes: a family's table, or `intel_alerts` ([`INTEL`]).
pub const TARGETS: usize = Family::ALL.len() + 1;

/// The target index of `intel_alerts` (after the families' [`Family::index`]).
pub const INTEL: usize = Family::ALL.len();

/// Bytes reserved before each row of `target` for the columns only the writer knows:
/// `event_id` and `batch`, and for intel rows `source_event_id` ([`Parsed::freeze`]).
pub const fn prefix_len(target: usize) -> usize {
    if target == INTEL {
        24
    } else {
        16
    }
}

/// One accepted event: where its record (id prefix and row) is in its family's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// Byte offset of its line in its stream.
    pub offset: u64,
    pub family: Family,
    /// Its `ts` (Unix seconds), the first column of its row.
    pub ts: u32,
    start: u32,
    end: u32,
    /// Length of the original line, the row's tail.
    raw_len: u32,
}

impl Event {
    /// Byte range of its record (prefix and row) in its family's buffer.
    pub fn record(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    /// Byte range of its original line in its family's buffer.
    pub fn raw_range(&self) -> std::ops::Range<usize> {
        (self.end - self.raw_len) as usize..self.end as usize
    }
}

/// One indicator match of an accepted event.
#[derive(Debug, Clone, Copy)]
pub struct Match {
    /// Index of its event in [`Parsed::events`].
    pub event: u32,
    /// [`rows::intel_key`] of the match.
    pub key: u64,
    /// The `ts` of its event.
    pub ts: u32,
    start: u32,
    end: u32,
}

impl Match {
    /// Byte range of its record (prefix and row) in the intel buffer.
    pub fn record(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// The encoded rows of one request's accepted events (and their indicator matches), one
/// buffer per target table. Each row is preceded by [`prefix_len`] bytes that
/// [`Parsed::freeze`] fills in, so that the writer can send a run of consecutive records as
/// they lie in memory, without copying them into an INSERT body.
#[derive(Debug, Default)]
pub struct Parsed {
    bufs: [Vec<u8>; TARGETS],
    pub events: Vec<Event>,
    pub intel: Vec<Match>,
}

/// The rows of a [`Parsed`] with their ids filled in, shareable with the HTTP client.
#[derive(Debug, Default)]
pub struct Frozen {
    /// Per target, the records (prefix and row) back to back.
    pub data: [bytes::Bytes; TARGETS],
    pub events: Vec<Event>,
    pub intel: Vec<Match>,
}

impl Frozen {
    /// The original line of event `e`.
    pub fn raw(&self, e: &Event) -> &[u8] {
        self.data[e.family.index()]
            .get(e.raw_range())
            .unwrap_or_default()
    }
}

/// Row bytes per KiB of request text, per target, of the last large request: how much
/// each target's buffer reserves up front (a buffer that grows past it is copied).
static SHARE: [std::sync::atomic::AtomicU32; TARGETS] =
    [const { std::sync::atomic::AtomicU32::new(0) }; TARGETS];

/// What parsing a body found besides the events.
#[derive(Debug, Default)]
pub struct Report {
    /// Malformed lines (not kept).
    pub rejected: usize,
    /// Lines below the stream's cutoff (stored already).
    pub duplicates: usize,
    /// (line number, reason) of the first rejected lines.
    pub errors: Vec<(usize, String)>,
}

/// Provenance of a request's events.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub tenant: &'a str,
    pub sensor: &'a str,
    pub received: u32,
}

impl Parsed {
    /// Row of event `e` (without its id prefix).
    pub fn row(&self, e: &Event) -> &[u8] {
        let t = e.family.index();
        self.bufs[t]
            .get(e.start as usize + prefix_len(t)..e.end as usize)
            .unwrap_or_default()
    }

    /// The original line of event `e`.
    pub fn raw(&self, e: &Event) -> &[u8] {
        self.bufs[e.family.index()]
            .get(e.raw_range())
            .unwrap_or_default()
    }

    /// Empties it, keeping its memory.
    pub fn clear(&mut self) {
        self.bufs.iter_mut().for_each(Vec::clear);
        self.events.clear();
        self.intel.clear();
    }

    /// Memory held.
    pub fn bytes(&self) -> usize {
        self.bufs.iter().map(Vec::capacity).sum::<usize>()
            + self.events.capacity() * std::mem::size_of::<Event>()
            + self.intel.capacity() * std::mem::size_of::<Match>()
    }

    /// Drops the events whose offset is below `cutoff` (they are a prefix: offsets grow
    /// with the line) and their matches; returns how many were dropped.
    pub fn keep_from(&mut self, cutoff: u64) -> usize {
        let n = self.events.partition_point(|e| e.offset < cutoff);
        if n > 0 {
            self.events.drain(..n);
            let n32 = n as u32;
            self.intel.retain(|m| m.event >= n32);
            for m in &mut self.intel {
                m.event -= n32;
            }
        }
        n
    }

    /// Fills in every record's prefix — event `i` gets id `ids[i]`, every row the spool
    /// `batch`, and a match the id [`rows::intel_id`] of its event's id and its key, then
    /// that event's id — and hands the buffers over, without copying them.
    pub fn freeze(mut self, ids: &[u64], batch: u64) -> Frozen {
        let mut put = |t: usize, at: u32, words: &[u64]| {
            let at = at as usize;
            for (k, w) in words.iter().enumerate() {
                if let Some(slot) = self.bufs[t].get_mut(at + 8 * k..at + 8 * k + 8) {
                    slot.copy_from_slice(&w.to_le_bytes());
                }
            }
        };
        for (e, &id) in self.events.iter().zip(ids) {
            put(e.family.index(), e.start, &[id, batch]);
        }
        for m in &self.intel {
            let source = ids.get(m.event as usize).copied().unwrap_or(0);
            let id = rows::intel_id(source, m.key);
            put(INTEL, m.start, &[id, batch, source]);
        }
        Frozen {
            data: self.bufs.map(bytes::Bytes::from),
            events: self.events,
            intel: self.intel,
        }
    }
}

/// Parses the lines of a decoded body whose first byte is at stream offset `base`: lines at
/// offsets below `cutoff` are duplicates; malformed lines are reported (line number and
/// reason, at most `max_errors` listed); every other line is enriched and encoded into `out`.
pub fn parse_lines(
    text: &[u8],
    base: u64,
    cutoff: u64,
    origin: Origin<'_>,
    enrich: &Enrichment,
    max_errors: usize,
    out: &mut Parsed,
) -> Report {
    use std::sync::atomic::Ordering::Relaxed;
    let mut report = Report::default();
    for (buf, share) in out.bufs.iter_mut().zip(&SHARE) {
        let share = share.load(Relaxed) as usize;
        if share > 0 {
            buf.reserve(text.len() / 1024 * (share + share / 8) + 4096);
        }
    }
    out.events.reserve(text.len() / 400);
    let mut pos = 0usize;
    let mut number = 0usize;
    while pos < text.len() {
        number += 1;
        let rest = text.get(pos..).unwrap_or_default();
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (rest.get(..i).unwrap_or_default(), pos + i + 1),
            None => (rest, text.len()),
        };
        let offset = base + pos as u64;
        pos = next;
        if offset < cutoff {
            report.duplicates += 1;
            continue;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let mut e = eve::Eve::default();
        let raw = match eve::parse_line_into(line, &mut e) {
            Ok(raw) => raw,
            Err(err) => {
                report.rejected += 1;
                if report.errors.len() < max_errors {
                    report.errors.push((number, err.to_string()));
                }
                continue;
            }
        };
        let addrs = if enrich.is_empty() {
            crate::prefix::Addrs::default()
        } else {
            crate::prefix::Addrs::parse(&e.src_ip, &e.dest_ip)
        };
        let located = enrich.assets.locate_addrs(&addrs);
        let meta = Meta {
            received: origin.received,
            tenant: origin.tenant,
            sensor: origin.sensor,
            asset: located.map(|(_, a)| a),
            side: located.map_or("", |(side, _)| side.as_str()),
        };
        let family = e.family();
        let buf = &mut out.bufs[family.index()];
        let start = buf.len();
        buf.extend_from_slice(&[0; prefix_len(0)]);
        rows::encode_event(buf, &meta, &e, raw);
        let index = out.events.len() as u32;
        out.events.push(Event {
            offset,
            family,
            ts: e.ts,
            start: start as u32,
            end: buf.len() as u32,
            raw_len: raw.len() as u32,
        });
        if !enrich.indicators.is_empty() {
            let mut hits = Vec::new();
            enrich.indicators.match_event_at(&e, &addrs, &mut hits);
            for h in &hits {
                let ind = enrich.indicators.get(h.indicator);
                let buf = &mut out.bufs[INTEL];
                let start = buf.len();
                buf.extend_from_slice(&[0; prefix_len(INTEL)]);
                rows::encode_intel(buf, &meta, &e, ind, h.field, h.value);
                out.intel.push(Match {
                    event: index,
                    key: rows::intel_key(ind, h.field),
                    ts: e.ts,
                    start: start as u32,
                    end: buf.len() as u32,
                });
            }
        }
    }
    if text.len() >= 64 << 10 {
        for (buf, share) in out.bufs.iter().zip(&SHARE) {
            share.store((buf.len() / (text.len() / 1024)) as u32, Relaxed);
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_limits_and_encodings() {
        let text = b"{\"a\":1}\n".repeat(1000);
        let zst = zstd::encode_all(&text[..], 1).unwrap();
        let mut out = Vec::new();
        for limit in [text.len(), 1 << 31, usize::MAX] {
            decode_body(Encoding::Zstd, &zst, limit, &mut out).unwrap();
            assert_eq!(out, text, "limit {limit}");
        }
        assert_eq!(
            decode_body(Encoding::Zstd, &zst, text.len() - 1, &mut out),
            Err(DecodeError::TooLarge(text.len() - 1))
        );
        assert!(matches!(
            decode_body(Encoding::Gzip, b"not gzip", 100, &mut out),
            Err(DecodeError::Corrupt(_))
        ));
        // Truncated, corrupt, two frames, a bomb.
        let cut = &zst[..zst.len() - 5];
        assert!(matches!(
            decode_body(Encoding::Zstd, cut, 1 << 20, &mut out),
            Err(DecodeError::Corrupt(_))
        ));
        assert!(matches!(
            decode_body(
                Encoding::Zstd,
                b"\x28\xb5\x2f\xfdjunkjunk",
                1 << 20,
                &mut out
            ),
            Err(DecodeError::Corrupt(_))
        ));
        let two = [zst.clone(), zst.clone()].concat();
        decode_body(Encoding::Zstd, &two, 1 << 20, &mut out).unwrap();
        assert_eq!(out, [text.clone(), text.clone()].concat());
        let bomb = zstd::encode_all(&vec![b'a'; 200 << 20][..], 3).unwrap();
        assert_eq!(
            decode_body(Encoding::Zstd, &bomb, 1 << 20, &mut out),
            Err(DecodeError::TooLarge(1 << 20))
        );
        assert!(out.capacity() < 100 << 20, "stopped early");
        assert_eq!(Encoding::from_header(" ZSTD "), Some(Encoding::Zstd));
        assert_eq!(Encoding::from_header("br"), None);
        for e in [Encoding::Identity, Encoding::Gzip, Encoding::Zstd] {
            assert_eq!(Encoding::from_code(e.code()), Some(e));
        }
    }

    #[test]
    fn lines_are_kept_rejected_or_duplicates() {
        let body = b"{\"timestamp\":\"2024-01-02T03:04:05+0000\",\"event_type\":\"dns\"}\n\nnot json\n  {\"timestamp\":\"2024-01-02T03:04:05+0000\",\"event_type\":\"alert\"}  \n";
        let origin = Origin {
            tenant: "t",
            sensor: "s",
            received: 1,
        };
        let enrich = Enrichment::default();
        let mut p = Parsed::default();
        let r = parse_lines(body, 100, 0, origin, &enrich, 10, &mut p);
        assert_eq!((r.rejected, r.duplicates), (1, 0));
        assert_eq!(r.errors[0].0, 3, "line number of the bad line");
        assert_eq!(p.events.len(), 2);
        assert_eq!(p.events[1].offset, 100 + 70);
        assert_eq!(p.events[1].family, Family::Alert);
        assert!(p.raw(&p.events[1]).starts_with(b"{\"timestamp\""));
        assert!(p.raw(&p.events[1]).ends_with(b"}"), "trimmed");
        // The same body with a cutoff past the first line.
        let mut q = Parsed::default();
        let r = parse_lines(body, 100, 101, origin, &enrich, 10, &mut q);
        assert_eq!((r.rejected, r.duplicates, q.events.len()), (1, 1, 1));
        assert_eq!(q.row(&q.events[0]), p.row(&p.events[1]));
        assert_eq!(p.keep_from(101), 1);
        assert_eq!(p.events.len(), 1);
    }

    #[test]
    fn freeze_fills_the_prefixes_in_place() {
        use crate::indicators::Kind;
        let line = |i: u32, t: &str| {
            format!("{{\"timestamp\":\"2024-01-02T03:04:05+0000\",\"event_type\":\"{t}\",\"src_ip\":\"10.0.0.{i}\",\"dest_ip\":\"192.0.2.9\"}}\n")
        };
        let body = [line(1, "dns"), line(2, "flow"), line(3, "dns")].concat();
        let origin = Origin {
            tenant: "t",
            sensor: "s",
            received: 1,
        };
        let mut enrich = Enrichment::default();
        enrich
            .indicators
            .add(Kind::Ip, "192.0.2.9", "feed:1".into())
            .unwrap();
        let mut p = Parsed::default();
        parse_lines(body.as_bytes(), 0, 0, origin, &enrich, 10, &mut p);
        assert_eq!((p.events.len(), p.intel.len()), (3, 3));
        let (dns0, dns1) = (p.events[0].record(), p.events[2].record());
        assert_eq!(dns0.end, dns1.start, "the two dns rows are back to back");
        let rows: Vec<Vec<u8>> = p.events.iter().map(|e| p.row(e).to_vec()).collect();
        let f = p.freeze(&[7, 8, 9], 42);
        for (i, e) in f.events.iter().enumerate() {
            let rec = &f.data[e.family.index()][e.record()];
            assert_eq!(rec[..8], (7 + i as u64).to_le_bytes());
            assert_eq!(rec[8..16], 42u64.to_le_bytes());
            assert_eq!(rec[16..], rows[i][..], "row untouched");
            assert_eq!(
                f.raw(e),
                line(i as u32 + 1, ["dns", "flow", "dns"][i])
                    .trim()
                    .as_bytes()
            );
        }
        for m in &f.intel {
            let rec = &f.data[INTEL][m.record()];
            let source = 7 + u64::from(m.event);
            assert_eq!(rec[..8], rows::intel_id(source, m.key).to_le_bytes());
            assert_eq!(rec[8..16], 42u64.to_le_bytes());
            assert_eq!(rec[16..24], source.to_le_bytes());
        }
    }
}
