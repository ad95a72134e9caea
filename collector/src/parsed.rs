//! The events of one ingest request, parsed and encoded once.
//!
//! Ingest decodes a request body, validates each line with [`eve::parse`], enriches it and
//! encodes its ClickHouse row (`rows.rs`) into one buffer: a [`Parsed`]. The spool stores the
//! request body as it was sent (compressed: a few times smaller than the rows) and keeps the
//! `Parsed` in memory for the writer, which forwards the row bytes to ClickHouse without
//! parsing anything again. Only when the rows are not in memory (after a restart, or when
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

/// One accepted event: where its row is in [`Parsed::buf`].
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

/// The encoded rows of one request's accepted events (and their indicator matches).
#[derive(Debug, Default)]
pub struct Parsed {
    buf: Vec<u8>,
    pub events: Vec<Event>,
    pub intel: Vec<Match>,
}

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
    /// Row of event `e` (without `event_id` and `batch`).
    pub fn row(&self, e: &Event) -> &[u8] {
        self.buf
            .get(e.start as usize..e.end as usize)
            .unwrap_or_default()
    }

    /// The original line of event `e`.
    pub fn raw(&self, e: &Event) -> &[u8] {
        self.buf
            .get((e.end - e.raw_len) as usize..e.end as usize)
            .unwrap_or_default()
    }

    /// Row of match `m` (without `event_id`, `batch` and `source_event_id`).
    pub fn intel_row(&self, m: &Match) -> &[u8] {
        self.buf
            .get(m.start as usize..m.end as usize)
            .unwrap_or_default()
    }

    /// Empties it, keeping its memory.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.events.clear();
        self.intel.clear();
    }

    /// Memory held.
    pub fn bytes(&self) -> usize {
        self.buf.capacity()
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
    let mut report = Report::default();
    out.buf.reserve(text.len() + text.len() / 3);
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
        let start = out.buf.len();
        rows::encode_event(&mut out.buf, &meta, &e, raw);
        let index = out.events.len() as u32;
        out.events.push(Event {
            offset,
            family: e.family(),
            ts: e.ts,
            start: start as u32,
            end: out.buf.len() as u32,
            raw_len: raw.len() as u32,
        });
        if !enrich.indicators.is_empty() {
            let mut hits = Vec::new();
            enrich.indicators.match_event_at(&e, &addrs, &mut hits);
            for h in &hits {
                let ind = enrich.indicators.get(h.indicator);
                let start = out.buf.len();
                rows::encode_intel(&mut out.buf, &meta, &e, ind, h.field, h.value);
                out.intel.push(Match {
                    event: index,
                    key: rows::intel_key(ind, h.field),
                    ts: e.ts,
                    start: start as u32,
                    end: out.buf.len() as u32,
                });
            }
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
}
