//! The flow table: bidirectional keys, symmetric hashing, per-protocol timeouts and a
//! memory cap with emergency eviction.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

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

/// Cost accounted per flow: its slab slot, its hash-map entry (load factor and
/// power-of-two buckets: counted twice) and allocator overhead, with half again for what a
/// flow keeps beside it (measured: a quarter was not enough). Both tables are sized for the
/// memcap up front, so they never grow (and never hold an old and a new table at once).
/// Checked against peak RSS by scripts/bench-flood.sh.
pub const FLOW_COST: usize = std::mem::size_of::<Option<Flow>>() * 3 / 2
    + 2 * (std::mem::size_of::<(FlowKey, u32)>() + 1)
    + 32;
/// Extra cost of a TCP session.
pub const TCP_COST: usize = std::mem::size_of::<TcpSession>();

/// The flow table. Flows live in a slab; the map holds indices.
pub struct FlowTable {
    pub cfg: FlowConfig,
    map: HashMap<FlowKey, u32, BuildHasherDefault<FxHasher>>,
    slab: Vec<Option<Flow>>,
    free: Vec<u32>,
    /// Rotating cursor for forced eviction.
    cursor: usize,
    pub emergency: bool,
    pub stats: FlowStats,
}

impl FlowTable {
    pub fn new(cfg: FlowConfig) -> Self {
        // Untouched capacity costs address space, not resident memory.
        let max_flows = cfg.memcap / FLOW_COST + 1;
        FlowTable {
            cfg,
            map: HashMap::with_capacity_and_hasher(max_flows, BuildHasherDefault::default()),
            slab: Vec::with_capacity(max_flows),
            free: Vec::new(),
            cursor: 0,
            emergency: false,
            stats: FlowStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn lookup(&self, key: &FlowKey) -> Option<usize> {
        self.map.get(key).map(|&i| i as usize)
    }

    pub fn get(&self, idx: usize) -> Option<&Flow> {
        self.slab.get(idx).and_then(Option::as_ref)
    }
    pub fn get_mut(&mut self, idx: usize) -> Option<&mut Flow> {
        self.slab.get_mut(idx).and_then(Option::as_mut)
    }

    /// Is there room for one more flow? If not, the caller must evict (see
    /// [`FlowTable::pick_victims`]).
    pub fn over_memcap(&self, extra: usize) -> bool {
        self.stats.memuse + extra > self.cfg.memcap
    }

    /// Inserts a new flow and returns its index.
    pub fn insert(&mut self, flow: Flow) -> usize {
        self.stats.created += 1;
        self.stats.active += 1;
        match flow.key.proto {
            6 => self.stats.tcp += 1,
            17 => self.stats.udp += 1,
            1 | 58 => self.stats.icmp += 1,
            _ => self.stats.other += 1,
        }
        self.stats.memuse += FLOW_COST;
        let key = flow.key;
        let idx = match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = Some(flow);
                i as usize
            }
            None => {
                self.slab.push(Some(flow));
                self.slab.len() - 1
            }
        };
        self.map.insert(key, idx as u32);
        idx
    }

    /// Removes a flow and returns it.
    pub fn remove(&mut self, idx: usize) -> Option<Flow> {
        let f = self.slab.get_mut(idx)?.take()?;
        self.map.remove(&f.key);
        self.free.push(idx as u32);
        self.stats.active -= 1;
        self.stats.memuse -= FLOW_COST;
        if f.tcp.is_some() {
            self.stats.memuse -= TCP_COST;
        }
        Some(f)
    }

    /// Accounts a TCP session added to a flow.
    pub fn add_session_cost(&mut self) {
        self.stats.memuse += TCP_COST;
    }

    fn timeout_of(&self, f: &Flow) -> i64 {
        let t = match f.key.proto {
            6 => &self.cfg.tcp,
            17 => &self.cfg.udp,
            1 | 58 => &self.cfg.icmp,
            _ => &self.cfg.default,
        };
        match (f.state, self.emergency) {
            (FlowState::New, false) => t.new,
            (FlowState::Established, false) => t.established,
            (FlowState::Closed, false) => t.closed,
            (FlowState::New, true) => t.emergency_new,
            (FlowState::Established, true) => t.emergency_established,
            (FlowState::Closed, true) => t.emergency_closed,
        }
    }

    /// Indices of flows idle past their timeout at `now` (µs), appended to `out`.
    pub fn expired(&self, now: i64, out: &mut Vec<usize>) {
        for (i, f) in self.slab.iter().enumerate() {
            if let Some(f) = f {
                if now - f.last > self.timeout_of(f) * 1_000_000 {
                    out.push(i);
                }
            }
        }
    }

    /// Emergency eviction: up to `n` flows from a rotating cursor (Suricata's "forced"
    /// reclaim), appended to `out`.
    pub fn pick_victims(&mut self, n: usize, out: &mut Vec<usize>) {
        let len = self.slab.len();
        let mut scanned = 0;
        while out.len() < n && scanned < len {
            self.cursor = (self.cursor + 1) % len;
            if self.slab[self.cursor].is_some() && !out.contains(&self.cursor) {
                out.push(self.cursor);
            }
            scanned += 1;
        }
    }

    /// Indices of every flow (for shutdown).
    pub fn all(&self, out: &mut Vec<usize>) {
        out.extend(
            self.slab
                .iter()
                .enumerate()
                .filter(|(_, f)| f.is_some())
                .map(|(i, _)| i),
        );
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
        let mut out = vec![];
        t.expired(11_000_000, &mut out);
        assert_eq!(out, vec![j]); // closed TCP: 10 s
        out.clear();
        t.expired(31_000_000, &mut out);
        assert_eq!(out, vec![i, j]); // new UDP: 30 s
        assert_eq!(t.lookup(&udp), Some(i));
        let f = t.remove(i).unwrap();
        assert_eq!(f.key, udp);
        assert_eq!(t.lookup(&udp), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn emergency_mode_and_victims() {
        let cfg = FlowConfig {
            memcap: FLOW_COST * 4,
            ..Default::default()
        };
        let mut t = FlowTable::new(cfg);
        for p in 0..4 {
            let (k, _) = FlowKey::new(&addrs(1, 2), p, 2, 17, [0; 2]);
            t.insert(flow(k, 0, FlowState::New));
        }
        assert!(t.over_memcap(FLOW_COST));
        t.update_emergency();
        assert!(t.emergency);
        let mut v = vec![];
        t.pick_victims(2, &mut v);
        assert_eq!(v.len(), 2);
        for i in v {
            t.remove(i);
        }
        t.update_emergency();
        assert!(!t.emergency);
    }
}
