//! IPv4 and IPv6 fragment reassembly with a timeout, a tracker limit and a memory cap.
//!
//! Overlaps are resolved "first wins" (data already received is kept), which is what BSD
//! stacks (Suricata's default `bsd` policy) do for the common overlap cases; every overlap
//! raises `frag_overlap`.

use std::collections::HashMap;

use crate::decode::Addrs;

/// Limits of the defragmenter (Suricata's `defrag:` section defaults).
#[derive(Clone, Debug)]
pub struct DefragConfig {
    /// Bytes of fragment data held across all trackers.
    pub memcap: usize,
    /// Seconds a datagram may take to complete.
    pub timeout_secs: i64,
    /// Datagrams being reassembled at once.
    pub max_trackers: usize,
    /// Fragments per datagram.
    pub max_frags: usize,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            memcap: 32 << 20,
            timeout_secs: 60,
            max_trackers: 65_535,
            max_frags: 1024,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub addrs: Addrs,
    pub id: u32,
    pub proto: u8,
    pub vlan: [u16; 2],
}

#[derive(Clone, Debug, Default)]
pub struct DefragStats {
    pub fragments: u64,
    pub reassembled: u64,
    pub timeouts: u64,
    pub overlaps: u64,
    pub too_large: u64,
    pub memcap_drops: u64,
    pub tracker_drops: u64,
    /// Bytes currently held.
    pub memuse: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InsertResult {
    /// The datagram is complete and available from [`Defrag::output`].
    pub complete: bool,
    pub overlap: bool,
    pub too_large: bool,
}

struct Tracker {
    /// The first fragment's IP header (IPv4 with options, or the IPv6 fixed header).
    hdr: Vec<u8>,
    /// IPv6: upper-layer protocol from the fragment header.
    next: u8,
    total: Option<usize>,
    /// (offset, data) in arrival order.
    frags: Vec<(usize, Vec<u8>)>,
    bytes: usize,
    first_ts: i64,
}

pub struct Defrag {
    cfg: DefragConfig,
    trackers: HashMap<FragKey, Tracker>,
    out: Vec<u8>,
    pub stats: DefragStats,
}

impl Defrag {
    pub fn new(cfg: DefragConfig) -> Self {
        Defrag {
            cfg,
            trackers: HashMap::new(),
            out: Vec::new(),
            stats: DefragStats::default(),
        }
    }

    /// The last completed datagram (a full IPv4 or IPv6 packet).
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Adds an IPv4 fragment; `hdr` is its IP header (with options).
    pub fn insert_v4(
        &mut self,
        key: FragKey,
        hdr: &[u8],
        off: usize,
        more: bool,
        data: &[u8],
        ts: i64,
    ) -> InsertResult {
        if off + data.len() + hdr.len() > 65_535 {
            self.stats.too_large += 1;
            return InsertResult {
                too_large: true,
                ..Default::default()
            };
        }
        self.insert(key, hdr, 0, off, more, data, ts)
    }

    /// Adds an IPv6 fragment; `hdr` is the 40-byte fixed header, `next` the protocol the
    /// fragment header carries.
    #[allow(
        clippy::too_many_arguments,
        reason = "mirrors the fields of the fragment header"
    )]
    pub fn insert_v6(
        &mut self,
        key: FragKey,
        hdr: &[u8],
        next: u8,
        off: usize,
        more: bool,
        data: &[u8],
        ts: i64,
    ) -> InsertResult {
        if off + data.len() > 65_535 {
            self.stats.too_large += 1;
            return InsertResult {
                too_large: true,
                ..Default::default()
            };
        }
        self.insert(key, hdr, next, off, more, data, ts)
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "internal helper shared by v4 and v6"
    )]
    fn insert(
        &mut self,
        key: FragKey,
        hdr: &[u8],
        next: u8,
        off: usize,
        more: bool,
        data: &[u8],
        ts: i64,
    ) -> InsertResult {
        self.stats.fragments += 1;
        let mut res = InsertResult::default();
        if self.stats.memuse + data.len() > self.cfg.memcap {
            self.expire(ts);
            if self.stats.memuse + data.len() > self.cfg.memcap {
                self.stats.memcap_drops += 1;
                return res;
            }
        }
        if !self.trackers.contains_key(&key) && self.trackers.len() >= self.cfg.max_trackers {
            self.expire(ts);
            if self.trackers.len() >= self.cfg.max_trackers {
                self.stats.tracker_drops += 1;
                return res;
            }
        }
        let t = self.trackers.entry(key).or_insert_with(|| Tracker {
            hdr: Vec::new(),
            next,
            total: None,
            frags: Vec::new(),
            bytes: 0,
            first_ts: ts,
        });
        if t.frags.len() >= self.cfg.max_frags {
            self.stats.tracker_drops += 1;
            return res;
        }
        let end = off + data.len();
        if t.frags.iter().any(|(o, d)| off < o + d.len() && *o < end) {
            res.overlap = true;
            self.stats.overlaps += 1;
        }
        if off == 0 && t.hdr.is_empty() {
            t.hdr.extend_from_slice(hdr);
            t.next = next;
        }
        if !more && t.total.is_none() {
            t.total = Some(end);
        }
        t.frags.push((off, data.to_vec()));
        t.bytes += data.len();
        self.stats.memuse += data.len();
        if t.hdr.is_empty() {
            return res;
        }
        let Some(total) = t.total else { return res };
        // Complete when [0, total) is covered.
        let mut spans: Vec<(usize, usize)> =
            t.frags.iter().map(|(o, d)| (*o, o + d.len())).collect();
        spans.sort_unstable();
        let mut covered = 0;
        for (s, e) in spans {
            if s > covered {
                return res;
            }
            covered = covered.max(e);
        }
        if covered < total {
            return res;
        }
        let Some(t) = self.trackers.remove(&key) else {
            return res;
        };
        self.stats.memuse -= t.bytes;
        self.stats.reassembled += 1;
        self.out.clear();
        self.out.extend_from_slice(&t.hdr);
        let h = t.hdr.len();
        self.out.resize(h + total, 0);
        // Reverse arrival order: earlier fragments overwrite later ones (first wins).
        for (o, d) in t.frags.iter().rev() {
            let e = (o + d.len()).min(total);
            if *o < e {
                self.out[h + o..h + e].copy_from_slice(&d[..e - o]);
            }
        }
        if key.addrs.v6 {
            self.out[4..6].copy_from_slice(&(total as u16).to_be_bytes());
            self.out[6] = t.next;
        } else {
            self.out[2..4].copy_from_slice(&((h + total) as u16).to_be_bytes());
            self.out[6] = 0;
            self.out[7] = 0;
        }
        res.complete = true;
        res
    }

    /// Drops trackers older than the timeout.
    pub fn expire(&mut self, now: i64) {
        let limit = self.cfg.timeout_secs * 1_000_000;
        let mut freed = 0;
        let mut n = 0;
        self.trackers.retain(|_, t| {
            let keep = now - t.first_ts <= limit;
            if !keep {
                freed += t.bytes;
                n += 1;
            }
            keep
        });
        self.stats.memuse -= freed;
        self.stats.timeouts += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u32) -> FragKey {
        FragKey {
            addrs: Addrs::v4([1, 1, 1, 1], [2, 2, 2, 2]),
            id,
            proto: 17,
            vlan: [0; 2],
        }
    }
    const HDR: [u8; 20] = [
        0x45, 0, 0, 0, 0, 1, 0x20, 0, 64, 17, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
    ];

    #[test]
    fn out_of_order_and_first_wins() {
        let mut d = Defrag::new(DefragConfig::default());
        assert!(!d.insert_v4(key(1), &HDR, 8, false, b"BBBBBBBB", 0).complete);
        // Bytes 4..12 overlap the first fragment (8..16) with different data.
        let r = d.insert_v4(key(1), &HDR, 4, true, b"XXXXXXXX", 0);
        assert!(r.overlap && !r.complete);
        let r = d.insert_v4(key(1), &HDR, 0, true, b"AAAAAAAA", 0);
        assert!(r.complete && r.overlap);
        let out = d.output();
        assert_eq!(&out[20..], b"AAAAXXXXBBBBBBBB");
        assert_eq!(u16::from_be_bytes([out[2], out[3]]), 36);
        assert_eq!(d.stats.memuse, 0);
    }

    #[test]
    fn timeout_memcap_and_too_large() {
        let cfg = DefragConfig {
            memcap: 16,
            timeout_secs: 1,
            ..Default::default()
        };
        let mut d = Defrag::new(cfg);
        d.insert_v4(key(1), &HDR, 0, true, &[0; 8], 0);
        d.insert_v4(key(2), &HDR, 0, true, &[0; 8], 0);
        // Memcap reached: a third tracker's data is dropped and counted.
        d.insert_v4(key(3), &HDR, 0, true, &[0; 8], 0);
        assert_eq!(d.stats.memcap_drops, 1);
        // After the timeout the old trackers are freed.
        d.expire(2_000_001);
        assert_eq!((d.stats.memuse, d.stats.timeouts), (0, 2));
        assert!(
            d.insert_v4(key(4), &HDR, 65_528, false, &[0; 8], 0)
                .too_large
        );
    }
}
