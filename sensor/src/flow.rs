//! The flow table: bidirectional keys, symmetric hashing, per-protocol timeouts and a
//! memory cap with emergency eviction.

use std::hash::{Hash, Hasher};

use crate::app::AppState;
use crate::decode::Addrs;
use crate::stream::TcpSession;

/// A flow key normalised so both directions map to the same key: (lo, lo_port) is the
/// smaller endpoint. VLAN ids are part of the key (Suricata's `vlan.use-for-tracking`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub lo: [u8; 16],
    pub hi: [u8; 16],
    pub lo_port: u16,
    pub hi_port: u16,
    pub proto: u8,
    pub v6: bool,
    pub vlan: [u16; 2],
}

impl FlowKey {
    /// Builds the key of a packet; the bool is true when the packet's source is `lo`.
    pub fn new(a: &Addrs, sp: u16, dp: u16, proto: u8, vlan: [u16; 2]) -> (Self, bool) {
        let src_lo = (a.src, sp) <= (a.dst, dp);
        let (lo, lo_port, hi, hi_port) = if src_lo {
            (a.src, sp, a.dst, dp)
        } else {
            (a.dst, dp, a.src, sp)
        };
        (
            FlowKey {
                lo,
                hi,
                lo_port,
                hi_port,
                proto,
                v6: a.v6,
                vlan,
            },
            src_lo,
        )
    }

    /// A symmetric 64-bit hash (the same for both directions by construction), used to
    /// pick worker shards and to build flow ids.
    pub fn hash64(&self) -> u64 {
        let mut h = FxHasher::default();
        self.hash(&mut h);
        h.finish()
    }
}

/// FxHash (rustc's hasher): fast and good enough for keys an attacker cannot steer into
/// one bucket, since every lookup is bounded by the memcap.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let v = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.hash = (self.hash.rotate_left(5) ^ v).wrapping_mul(FX_SEED);
        }
        for &b in chunks.remainder() {
            self.hash = (self.hash.rotate_left(5) ^ u64::from(b)).wrapping_mul(FX_SEED);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.hash = (self.hash.rotate_left(5) ^ u64::from(i)).wrapping_mul(FX_SEED);
    }
    fn write_u16(&mut self, i: u16) {
        self.hash = (self.hash.rotate_left(5) ^ u64::from(i)).wrapping_mul(FX_SEED);
    }
    fn write_u64(&mut self, i: u64) {
        self.hash = (self.hash.rotate_left(5) ^ i).wrapping_mul(FX_SEED);
    }
    fn finish(&self) -> u64 {
        // Final avalanche so low bits (shard selection) depend on every input bit.
        let mut z = self.hash;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Suricata's flow states (EVE `flow.state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowState {
    New,
    Established,
    Closed,
}

impl FlowState {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowState::New => "new",
            FlowState::Established => "established",
            FlowState::Closed => "closed",
        }
    }
}

/// Why a flow ended (EVE `flow.reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    Timeout,
    Forced,
    Shutdown,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Timeout => "timeout",
            EndReason::Forced => "forced",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// One flow. Index 0 of the per-direction arrays is "to server" (the direction of the
/// first packet), 1 is "to client".
pub struct Flow {
    pub key: FlowKey,
    /// The first packet's VLAN ids, for records (the key's are zero when
    /// `vlan.use-for-tracking` is off).
    pub vlan: [u16; 2],
    /// The client (first packet's source) is `key.lo`.
    pub client_is_lo: bool,
    pub id: u64,
    pub start: i64,
    pub last: i64,
    pub pkts: [u64; 2],
    pub bytes: [u64; 2],
    pub state: FlowState,
    /// ICMP type/code of the first packet and of the first reply.
    pub icmp: Option<(u8, u8)>,
    pub icmp_reply: Option<(u8, u8)>,
    pub tcp_flags: [u8; 2],
    pub tcp: Option<Box<TcpSession>>,
    pub app: AppState,
    pub alerted: bool,
}

impl Flow {
    /// Direction of a packet whose source is `lo` (`src_lo`): 0 to server, 1 to client.
    pub fn dir(&self, src_lo: bool) -> usize {
        usize::from(src_lo != self.client_is_lo)
    }
    /// Client address/port and server address/port.
    pub fn endpoints(&self) -> ([u8; 16], u16, [u8; 16], u16) {
        let k = &self.key;
        if self.client_is_lo {
            (k.lo, k.lo_port, k.hi, k.hi_port)
        } else {
            (k.hi, k.hi_port, k.lo, k.lo_port)
        }
    }
}

/// Flow timeouts in seconds per state (Suricata's `flow-timeouts` built-in defaults).
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub new: i64,
    pub established: i64,
    pub closed: i64,
    pub emergency_new: i64,
    pub emergency_established: i64,
    pub emergency_closed: i64,
}

#[derive(Clone, Debug)]
pub struct FlowConfig {
    /// Bytes of flow state (flow records, TCP sessions, app-layer state estimate).
    pub memcap: usize,
    pub default: Timeouts,
    pub tcp: Timeouts,
    pub udp: Timeouts,
    pub icmp: Timeouts,
    /// Percentage of the memcap to get back under before leaving emergency mode.
    pub emergency_recovery: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        let t = |new, established, closed| Timeouts {
            new,
            established,
            closed,
            emergency_new: 10,
            emergency_established: 100,
            emergency_closed: 0,
        };
        FlowConfig {
            memcap: 128 << 20,
            default: t(30, 300, 0),
            tcp: Timeouts {
                emergency_new: 5,
                emergency_closed: 10,
                ..t(30, 300, 10)
            },
            udp: t(30, 300, 0),
            icmp: t(30, 300, 0),
            emergency_recovery: 30,
        }
    }
}

/// Flow counters.
#[derive(Clone, Debug, Default)]
pub struct FlowStats {
    pub created: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmp: u64,
    pub other: u64,
    pub timeouts: u64,
    pub forced: u64,
    pub tcp_reuse: u64,
    pub memcap_hits: u64,
    pub emergency_entered: u64,
    pub active: u64,
    pub memuse: usize,
}

/// Bytes the allocator adds to each heap block (glibc: an 8-byte header, 16-byte rounding).
const MALLOC_OVERHEAD: usize = 16;
/// Extra cost of a TCP session: its boxed `TcpSession` (its out-of-order segments are
/// accounted by the stream memcap).
pub const TCP_COST: usize = std::mem::size_of::<TcpSession>() + MALLOC_OVERHEAD;
/// One slab slot (a flow lives in place in the slab).
const SLOT: usize = std::mem::size_of::<Option<Flow>>();

/// The flow index: open addressing with linear probing over a fixed power-of-two array,
/// at most 3/4 full, with backward-shift deletion (no tombstones, so it never needs a
/// rehash and never grows). A bucket is `(hash >> 32) << 32 | (slab index + 1)`, 0 when
/// empty; the high half is both the home bucket and a tag that skips most key compares.
///
/// It replaced a `HashMap<FlowKey, u32>` that, under a flood, filled with tombstones and
/// then doubled itself (a 2× allocation next to the old table, measured with heaptrack:
/// +25.7 MB on a 64 MiB memcap) although it had been created with the right capacity.
struct FlowIndex {
    buckets: Vec<u64>,
    mask: usize,
}

impl FlowIndex {
    /// Buckets for `n` entries at most 3/4 full.
    fn buckets_for(n: usize) -> usize {
        (n.saturating_mul(4) / 3 + 1).next_power_of_two().max(8)
    }

    fn with_capacity(n: usize) -> Self {
        let len = Self::buckets_for(n);
        FlowIndex {
            buckets: vec![0; len],
            mask: len - 1,
        }
    }

    fn home(&self, tag: u64) -> usize {
        (tag as usize) & self.mask
    }

    fn find(&self, h: u64, mut is: impl FnMut(usize) -> bool) -> Option<(usize, usize)> {
        let tag = h >> 32;
        let mut i = self.home(tag);
        for _ in 0..self.buckets.len() {
            let b = *self.buckets.get(i)?;
            if b == 0 {
                return None;
            }
            let idx = (b & 0xffff_ffff) as usize - 1;
            if b >> 32 == tag && is(idx) {
                return Some((i, idx));
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    fn insert(&mut self, h: u64, idx: usize) {
        let tag = h >> 32;
        let mut i = self.home(tag);
        for _ in 0..self.buckets.len() {
            match self.buckets.get_mut(i) {
                Some(b) if *b == 0 => {
                    *b = (tag << 32) | (idx as u64 + 1);
                    return;
                }
                _ => i = (i + 1) & self.mask,
            }
        }
    }

    /// Removes the entry at bucket `i`, shifting later entries of its run back.
    fn remove_at(&mut self, mut i: usize) {
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let b = self.buckets.get(j).copied().unwrap_or(0);
            if b == 0 || j == i {
                break;
            }
            // The entry at j may fill the hole at i unless its home lies in (i, j].
            let home = self.home(b >> 32);
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(i) & self.mask) {
                if let Some(x) = self.buckets.get_mut(i) {
                    *x = b;
                }
                i = j;
            }
        }
        if let Some(x) = self.buckets.get_mut(i) {
            *x = 0;
        }
    }

    fn bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<u64>()
    }
}

/// The flow table. Flows live in a slab; the index maps keys to slab slots. Both are
/// allocated once for the most flows the memcap allows and never grow.
///
/// Memory accounting is exact for what the table itself allocates: the slab, the index
/// and the free list, divided evenly over the flows it can hold (`flow_cost`), so a full
/// table has accounted exactly what it allocated. A TCP session adds its box
/// ([`TCP_COST`]). Not counted here: app-layer parser state (bounded by `AppConfig`) and
/// out-of-order TCP segments (the stream memcap).
pub struct FlowTable {
    pub cfg: FlowConfig,
    index: FlowIndex,
    slab: Vec<Option<Flow>>,
    free: Vec<u32>,
    /// Per slot, a time (µs) before which its flow cannot expire: its last packet when it
    /// was last checked plus the shortest timeout its protocol has in any state or mode.
    /// `next_expired` skips those slots without touching the (large) flow, so the
    /// once-per-second expiry scan reads 8 bytes per slot for most flows.
    not_before: Vec<i64>,
    /// Most flows the table holds.
    max_flows: usize,
    /// Bytes accounted per flow.
    flow_cost: usize,
    /// Rotating cursor for forced eviction.
    cursor: usize,
    pub emergency: bool,
    pub stats: FlowStats,
}

impl FlowTable {
    /// Bytes the table allocates to hold `n` flows.
    fn table_bytes(n: usize) -> usize {
        n * (SLOT + std::mem::size_of::<u32>() + std::mem::size_of::<i64>())
            + FlowIndex::buckets_for(n) * std::mem::size_of::<u64>()
            + 3 * MALLOC_OVERHEAD
    }

    pub fn new(cfg: FlowConfig) -> Self {
        // The most flows whose table fits in the memcap, leaving room for one TCP session
        // per flow would be too pessimistic: sessions are accounted as they are made.
        let mut n = (cfg.memcap / (SLOT + 4 + 8 + 11)).max(1);
        while n > 1 && Self::table_bytes(n) + n > cfg.memcap {
            n -= (n / 256).max(1);
        }
        let flow_cost = Self::table_bytes(n).div_ceil(n);
        FlowTable {
            cfg,
            index: FlowIndex::with_capacity(n),
            slab: Vec::with_capacity(n),
            free: Vec::with_capacity(n),
            not_before: Vec::with_capacity(n),
            max_flows: n,
            flow_cost,
            cursor: 0,
            emergency: false,
            stats: FlowStats::default(),
        }
    }

    /// Bytes accounted for each flow (its share of the slab, index and free list).
    pub fn flow_cost(&self) -> usize {
        self.flow_cost
    }

    /// Most flows the table can hold.
    pub fn max_flows(&self) -> usize {
        self.max_flows
    }

    /// Bytes the table allocated (slab, index and free list at full capacity).
    pub fn allocated_bytes(&self) -> usize {
        self.slab.capacity() * SLOT
            + self.index.bytes()
            + self.free.capacity() * 4
            + self.not_before.capacity() * 8
    }

    pub fn len(&self) -> usize {
        self.slab.len() - self.free.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn lookup(&self, key: &FlowKey) -> Option<usize> {
        let slab = &self.slab;
        self.index
            .find(key.hash64(), |i| {
                slab.get(i)
                    .and_then(Option::as_ref)
                    .is_some_and(|f| f.key == *key)
            })
            .map(|(_, i)| i)
    }

    pub fn get(&self, idx: usize) -> Option<&Flow> {
        self.slab.get(idx).and_then(Option::as_ref)
    }
    pub fn get_mut(&mut self, idx: usize) -> Option<&mut Flow> {
        self.slab.get_mut(idx).and_then(Option::as_mut)
    }

    /// Is there room for one more flow needing `extra` bytes? If not, the caller must
    /// evict (see [`FlowTable::pick_victims`]).
    pub fn over_memcap(&self, extra: usize) -> bool {
        self.stats.memuse + extra > self.cfg.memcap || self.len() >= self.max_flows
    }

    /// Inserts a new flow and returns its index. The caller makes room first
    /// ([`FlowTable::over_memcap`]); a full table replaces the flow at the eviction
    /// cursor rather than grow (never reached through the engine, which evicts first).
    pub fn insert(&mut self, flow: Flow) -> usize {
        if self.free.is_empty() && self.slab.len() >= self.max_flows {
            let mut v = Vec::with_capacity(1);
            self.pick_victims(1, &mut v);
            if let Some(&i) = v.first() {
                self.remove(i);
            }
        }
        self.stats.created += 1;
        self.stats.active += 1;
        match flow.key.proto {
            6 => self.stats.tcp += 1,
            17 => self.stats.udp += 1,
            1 | 58 => self.stats.icmp += 1,
            _ => self.stats.other += 1,
        }
        self.stats.memuse += self.flow_cost;
        let h = flow.key.hash64();
        let idx = match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.slab.get_mut(i as usize) {
                    *slot = Some(flow);
                }
                i as usize
            }
            None => {
                self.slab.push(Some(flow));
                self.slab.len() - 1
            }
        };
        self.index.insert(h, idx);
        // A free slot was marked never to expire; its new flow is checked at the next scan.
        if let Some(x) = self.not_before.get_mut(idx) {
            *x = i64::MIN;
        }
        idx
    }

    /// Removes a flow and returns it.
    pub fn remove(&mut self, idx: usize) -> Option<Flow> {
        let f = self.slab.get_mut(idx)?.take()?;
        if let Some((b, _)) = self.index.find(f.key.hash64(), |i| i == idx) {
            self.index.remove_at(b);
        }
        self.free.push(idx as u32);
        self.stats.active -= 1;
        self.stats.memuse -= self.flow_cost;
        if f.tcp.is_some() {
            self.stats.memuse -= TCP_COST;
        }
        Some(f)
    }

    /// Accounts a TCP session added to a flow.
    pub fn add_session_cost(&mut self) {
        self.stats.memuse += TCP_COST;
    }

    /// The timeouts of the flow's protocol.
    fn timeouts_of(&self, f: &Flow) -> &Timeouts {
        match f.key.proto {
            6 => &self.cfg.tcp,
            17 => &self.cfg.udp,
            1 | 58 => &self.cfg.icmp,
            _ => &self.cfg.default,
        }
    }

    fn timeout_of(&self, f: &Flow) -> i64 {
        let t = self.timeouts_of(f);
        match (f.state, self.emergency) {
            (FlowState::New, false) => t.new,
            (FlowState::Established, false) => t.established,
            (FlowState::Closed, false) => t.closed,
            (FlowState::New, true) => t.emergency_new,
            (FlowState::Established, true) => t.emergency_established,
            (FlowState::Closed, true) => t.emergency_closed,
        }
    }

    /// Is the flow at `idx` idle past its timeout at `now` (µs)?
    fn is_expired(&self, f: &Flow, now: i64) -> bool {
        now - f.last > self.timeout_of(f) * 1_000_000
    }

    /// The shortest timeout (s) of the flow's protocol in any state, normal or emergency.
    fn min_timeout_of(&self, f: &Flow) -> i64 {
        let t = self.timeouts_of(f);
        [
            t.new,
            t.established,
            t.closed,
            t.emergency_new,
            t.emergency_established,
            t.emergency_closed,
        ]
        .into_iter()
        .min()
        .unwrap_or(0)
        .max(0)
    }

    /// The first flow at index `from` or later that is idle past its timeout at `now`.
    /// A flow found alive gets a new `not_before` bound (its last packet only moves
    /// forward and no state has a shorter timeout, so the bound stays valid); a free slot
    /// gets `i64::MAX` until `insert` resets it.
    pub fn next_expired(&mut self, from: usize, now: i64) -> Option<usize> {
        let len = self.slab.len();
        if self.not_before.len() < len {
            self.not_before.resize(len, i64::MIN);
        }
        for i in from..len {
            if self.not_before.get(i).is_some_and(|&nb| nb >= now) {
                continue;
            }
            let Some(f) = self.slab.get(i).and_then(Option::as_ref) else {
                // Free: skipped until `insert` reuses the slot.
                if let Some(x) = self.not_before.get_mut(i) {
                    *x = i64::MAX;
                }
                continue;
            };
            if self.is_expired(f, now) {
                return Some(i);
            }
            let nb = f
                .last
                .saturating_add(self.min_timeout_of(f).saturating_mul(1_000_000));
            if let Some(x) = self.not_before.get_mut(i) {
                *x = nb;
            }
        }
        None
    }

    /// The first flow at index `from` or later.
    pub fn next_flow(&self, from: usize) -> Option<usize> {
        let rest = self.slab.get(from..)?;
        rest.iter().position(Option::is_some).map(|p| from + p)
    }

    /// Emergency eviction: up to `n` flows from a rotating cursor (Suricata's "forced"
    /// reclaim), appended to `out`.
    pub fn pick_victims(&mut self, n: usize, out: &mut Vec<usize>) {
        let len = self.slab.len();
        let mut scanned = 0;
        while out.len() < n && scanned < len {
            self.cursor = (self.cursor + 1) % len;
            if self.slab.get(self.cursor).is_some_and(Option::is_some)
                && !out.contains(&self.cursor)
            {
                out.push(self.cursor);
            }
            scanned += 1;
        }
    }

    /// Updates emergency mode from the memory use.
    pub fn update_emergency(&mut self) {
        if !self.emergency && self.stats.memuse * 100 >= self.cfg.memcap * 95 {
            self.emergency = true;
            self.stats.emergency_entered += 1;
        } else if self.emergency
            && self.stats.memuse * 100 < self.cfg.memcap * (100 - self.cfg.emergency_recovery)
        {
            self.emergency = false;
        }
    }
}

/// Builds a flow id like Suricata's: positive, 51 bits, from the key hash and start time.
pub fn flow_id(key: &FlowKey, start: i64) -> u64 {
    let h = key.hash64();
    ((h << 20) ^ (start as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 13) & 0x0007_ffff_ffff_ffff
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(a: u8, b: u8) -> Addrs {
        Addrs::v4([10, 0, 0, a], [10, 0, 0, b])
    }

    #[test]
    fn key_is_symmetric() {
        let (k1, lo1) = FlowKey::new(&addrs(1, 2), 1000, 80, 6, [0; 2]);
        let (k2, lo2) = FlowKey::new(&addrs(2, 1), 80, 1000, 6, [0; 2]);
        assert_eq!(k1, k2);
        assert_eq!(k1.hash64(), k2.hash64());
        assert_ne!(lo1, lo2);
        // VLAN and protocol separate flows.
        let (k3, _) = FlowKey::new(&addrs(1, 2), 1000, 80, 6, [5, 0]);
        assert_ne!(k1, k3);
        let (k4, _) = FlowKey::new(&addrs(1, 2), 1000, 80, 17, [0; 2]);
        assert_ne!(k1.hash64(), k4.hash64());
        assert!(flow_id(&k1, 1) < 1 << 51);
    }

    fn flow(key: FlowKey, last: i64, state: FlowState) -> Flow {
        Flow {
            key,
            vlan: key.vlan,
            client_is_lo: true,
            id: 1,
            start: last,
            last,
            pkts: [1, 0],
            bytes: [60, 0],
            state,
            icmp: None,
            icmp_reply: None,
            tcp_flags: [0; 2],
            tcp: None,
            app: AppState::default(),
            alerted: false,
        }
    }

    #[test]
    fn timeouts_by_state_and_protocol() {
        let mut t = FlowTable::new(FlowConfig::default());
        let (udp, _) = FlowKey::new(&addrs(1, 2), 1, 2, 17, [0; 2]);
        let (tcp, _) = FlowKey::new(&addrs(1, 2), 1, 2, 6, [0; 2]);
        let i = t.insert(flow(udp, 0, FlowState::New));
        let j = t.insert(flow(tcp, 0, FlowState::Closed));
        let all = |t: &mut FlowTable, now| {
            let mut v = vec![];
            let mut at = 0;
            while let Some(x) = t.next_expired(at, now) {
                v.push(x);
                at = x + 1;
            }
            v
        };
        assert_eq!(all(&mut t, 1_000_000), Vec::<usize>::new());
        assert_eq!(all(&mut t, 11_000_000), vec![j]); // closed TCP: 10 s
        assert_eq!(all(&mut t, 31_000_000), vec![i, j]); // new UDP: 30 s
        assert_eq!(t.next_flow(0), Some(i));
        assert_eq!(t.next_flow(i + 1), Some(j));
        assert_eq!(t.next_flow(j + 1), None);
        assert_eq!(t.lookup(&udp), Some(i));
        let f = t.remove(i).unwrap();
        assert_eq!(f.key, udp);
        assert_eq!(t.lookup(&udp), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn expiry_scan_bounds_never_delay_a_timeout() {
        // A flow checked while established (300 s) that then closes (10 s) or moves on
        // still expires exactly on its timeout; a reused slot too.
        let mut t = FlowTable::new(FlowConfig::default());
        let (tcp, _) = FlowKey::new(&addrs(1, 2), 1, 2, 6, [0; 2]);
        let i = t.insert(flow(tcp, 0, FlowState::Established));
        for s in 1..=20 {
            assert_eq!(t.next_expired(0, s * 1_000_000), None);
        }
        if let Some(f) = t.get_mut(i) {
            f.last = 15_000_000;
            f.state = FlowState::Closed;
        }
        assert_eq!(t.next_expired(0, 25_000_000), None);
        assert_eq!(t.next_expired(0, 25_000_001), Some(i));
        t.remove(i);
        let (udp, _) = FlowKey::new(&addrs(3, 4), 1, 2, 17, [0; 2]);
        let k = t.insert(flow(udp, 26_000_000, FlowState::New));
        assert_eq!(k, i, "slot reused");
        assert_eq!(t.next_expired(0, 56_000_000), None);
        assert_eq!(t.next_expired(0, 56_000_001), Some(k));
        // Emergency timeouts are shorter: the bounds account for them.
        t.emergency = true;
        let (u2, _) = FlowKey::new(&addrs(5, 6), 1, 2, 17, [0; 2]);
        t.remove(k);
        let m = t.insert(flow(u2, 60_000_000, FlowState::New));
        let e = t.cfg.udp.emergency_new;
        assert_eq!(t.next_expired(0, 60_000_000 + e * 1_000_000), None);
        assert_eq!(t.next_expired(0, 60_000_001 + e * 1_000_000), Some(m));
    }

    #[test]
    fn emergency_mode_and_victims() {
        // (Small enough to fill, large enough that whole flows reach 95% of it.)
        let mut t = FlowTable::new(FlowConfig {
            memcap: 16384,
            ..Default::default()
        });
        let cost = t.flow_cost();
        let mut n = 0u16;
        while !t.over_memcap(cost) {
            let (k, _) = FlowKey::new(&addrs(1, 2), n, 2, 17, [0; 2]);
            t.insert(flow(k, 0, FlowState::New));
            n += 1;
        }
        assert_eq!(usize::from(n), t.max_flows());
        assert!(t.stats.memuse <= 16384 && t.allocated_bytes() <= 16384);
        t.update_emergency();
        assert!(t.emergency);
        let mut v = vec![];
        t.pick_victims(usize::from(n) / 2 + 1, &mut v);
        assert_eq!(v.len(), usize::from(n) / 2 + 1);
        for i in v {
            t.remove(i);
        }
        t.update_emergency();
        assert!(!t.emergency);
    }

    #[test]
    fn accounting_matches_allocation() {
        for memcap in [1 << 20, 64 << 20] {
            let t = FlowTable::new(FlowConfig {
                memcap,
                ..Default::default()
            });
            let full = t.flow_cost() * t.max_flows();
            // A full table has accounted what it allocated, and that fits the memcap.
            assert!(
                full >= t.allocated_bytes(),
                "{full} {}",
                t.allocated_bytes()
            );
            assert!(full <= memcap, "{full} > {memcap}");
            assert!(
                full > memcap / 100 * 97,
                "{full} wastes the memcap {memcap}"
            );
        }
    }

    #[test]
    fn index_agrees_with_a_map_under_churn() {
        // Random inserts and removals (xorshift), checked against std's HashMap; a small
        // table so probe runs wrap around and backward shifts cross the end.
        let mut t = FlowTable::new(FlowConfig {
            memcap: 16 * 1024,
            ..Default::default()
        });
        let mut model = std::collections::HashMap::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let port = (x % 97) as u16;
            let (k, _) = FlowKey::new(&addrs(1, 2), port, 2, 17, [0; 2]);
            match (t.lookup(&k), model.get(&port)) {
                (Some(i), Some(&j)) => {
                    assert_eq!(i, j);
                    if x & 1 == 0 {
                        assert_eq!(t.remove(i).unwrap().key, k);
                        model.remove(&port);
                    }
                }
                (None, None) => {
                    if t.len() < t.max_flows() {
                        model.insert(port, t.insert(flow(k, 0, FlowState::New)));
                    }
                }
                other => panic!("index and model disagree for port {port}: {other:?}"),
            }
            assert_eq!(t.len(), model.len());
        }
        for (port, &i) in &model {
            let (k, _) = FlowKey::new(&addrs(1, 2), *port, 2, 17, [0; 2]);
            assert_eq!(t.lookup(&k), Some(i));
        }
    }
}
