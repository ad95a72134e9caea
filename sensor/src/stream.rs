//! TCP session tracking and per-direction stream reassembly.
//!
//! The session follows the handshake and teardown with Suricata's state names. Each
//! direction keeps the next expected sequence number; in-order bytes are handed to the
//! caller straight from the packet (no copy), out-of-order segments are copied into a
//! bounded per-direction map and released in order when the hole fills, or as a gap when
//! the receiver acknowledges past the hole or the flow ends. Overlaps keep the data seen
//! first. A reassembly depth bounds the bytes delivered per direction, a memcap bounds the
//! out-of-order bytes held across all sessions.

use std::collections::BTreeMap;

use crate::decode::TcpInfo;
use crate::wire::tcp::{ACK, FIN, RST, SYN};

/// Suricata's TCP session states (EVE `tcp.state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TcpState {
    None,
    SynSent,
    SynRecv,
    Established,
    FinWait1,
    FinWait2,
    TimeWait,
    LastAck,
    CloseWait,
    Closing,
    Closed,
}

impl TcpState {
    pub fn as_str(self) -> &'static str {
        match self {
            TcpState::None => "none",
            TcpState::SynSent => "syn_sent",
            TcpState::SynRecv => "syn_recv",
            TcpState::Established => "established",
            TcpState::FinWait1 => "fin_wait1",
            TcpState::FinWait2 => "fin_wait2",
            TcpState::TimeWait => "time_wait",
            TcpState::LastAck => "last_ack",
            TcpState::CloseWait => "close_wait",
            TcpState::Closing => "closing",
            TcpState::Closed => "closed",
        }
    }
    /// The flow state this session state maps to (Suricata's `flow.state`).
    pub fn is_established(self) -> bool {
        matches!(
            self,
            TcpState::Established | TcpState::FinWait1 | TcpState::FinWait2 | TcpState::CloseWait
        )
    }
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            TcpState::TimeWait | TcpState::LastAck | TcpState::Closing | TcpState::Closed
        )
    }
}

/// Stream engine settings (Suricata's `stream:` section names).
#[derive(Clone, Debug)]
pub struct StreamConfig {
    /// Pick up sessions without a handshake (`stream.midstream`).
    pub midstream: bool,
    /// Bytes per direction handed to the app layer (`stream.reassembly.depth`).
    pub depth: u64,
    /// Out-of-order bytes held across all sessions (`stream.reassembly.memcap`).
    pub memcap: usize,
    /// Out-of-order segments held per direction.
    pub max_segments: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            midstream: false,
            depth: 1 << 20,
            memcap: 256 << 20,
            max_segments: 1024,
        }
    }
}

/// Stream counters.
#[derive(Clone, Debug, Default)]
pub struct StreamStats {
    pub sessions: u64,
    pub midstream_pickups: u64,
    pub retransmissions: u64,
    pub overlaps: u64,
    pub out_of_order: u64,
    pub gaps: u64,
    pub depth_reached: u64,
    pub memcap_drops: u64,
    pub ssn_reuse: u64,
    /// Out-of-order bytes currently held.
    pub memuse: usize,
}

/// What the stream hands to its consumer.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    Data(&'a [u8]),
    /// This many bytes were lost.
    Gap(u64),
}

#[derive(Debug, Default)]
struct Dir {
    /// Sequence number of relative offset 0 (ISN + 1).
    base: u32,
    base_set: bool,
    /// Relative offset of the next byte to deliver.
    next: u32,
    delivered: u64,
    ooo: BTreeMap<u32, Vec<u8>>,
    ooo_bytes: usize,
    /// Absolute sequence number of the FIN.
    fin_seq: Option<u32>,
    depth_reached: bool,
    max_regions: u32,
}

/// One TCP session.
#[derive(Debug)]
pub struct TcpSession {
    pub state: TcpState,
    dirs: [Dir; 2],
    first_fin: usize,
}

/// Is `a` after `b` in sequence space?
fn seq_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl TcpSession {
    /// Starts a session from the first packet of a flow (direction 0), or returns None when
    /// the packet cannot start one (no SYN and midstream off).
    pub fn start(t: &TcpInfo, cfg: &StreamConfig, stats: &mut StreamStats) -> Option<Self> {
        let mut s = TcpSession {
            state: TcpState::None,
            dirs: Default::default(),
            first_fin: 0,
        };
        if t.flags & (SYN | ACK | RST) == SYN {
            s.state = TcpState::SynSent;
            s.dirs[0].set_base(t.seq.wrapping_add(1));
        } else if cfg.midstream && t.flags & RST == 0 {
            stats.midstream_pickups += 1;
            s.state = TcpState::Established;
            let syn = u32::from(t.flags & SYN != 0);
            s.dirs[0].set_base(t.seq.wrapping_add(syn));
        } else {
            return None;
        }
        stats.sessions += 1;
        Some(s)
    }

    /// A SYN with a new ISN on a finished session starts a new one (Suricata's session
    /// reuse); the same ISN is a replay or retransmission of the old handshake.
    pub fn is_reuse(&self, t: &TcpInfo) -> bool {
        t.flags & (SYN | ACK | RST) == SYN
            && self.state.is_closed()
            && t.seq.wrapping_add(1) != self.dirs[0].base
    }

    /// Bytes held out of order in both directions.
    pub fn ooo_bytes(&self) -> usize {
        self.dirs[0].ooo_bytes + self.dirs[1].ooo_bytes
    }

    pub fn max_regions(&self, dir: usize) -> u32 {
        self.dirs.get(dir).map_or(1, |d| d.max_regions.max(1))
    }

    /// Processes one segment in direction `dir` (0 to server, 1 to client), updating the
    /// state and handing in-order data and gaps to `sink(dir, chunk)`.
    pub fn packet(
        &mut self,
        dir: usize,
        t: &TcpInfo,
        payload: &[u8],
        cfg: &StreamConfig,
        stats: &mut StreamStats,
        sink: &mut dyn FnMut(usize, Chunk<'_>),
    ) {
        let dir = dir & 1;
        let other = dir ^ 1;
        if t.flags & RST != 0 {
            if self.state != TcpState::SynSent || dir == 1 {
                self.state = TcpState::Closed;
            }
            return;
        }
        match self.state {
            TcpState::None | TcpState::Closed => return,
            TcpState::SynSent => {
                if dir == 1 && t.flags & (SYN | ACK) == SYN | ACK {
                    self.state = TcpState::SynRecv;
                    self.dirs[1].set_base(t.seq.wrapping_add(1));
                } else if dir == 0 && t.flags & (SYN | ACK) == SYN && !self.dirs[0].delivered_any()
                {
                    // SYN retransmission, possibly with a new ISN.
                    self.dirs[0].set_base(t.seq.wrapping_add(1));
                }
                return;
            }
            TcpState::SynRecv => {
                if dir == 0 && t.flags & (SYN | ACK) == ACK {
                    self.state = TcpState::Established;
                } else {
                    return;
                }
            }
            _ => {}
        }
        if !self.dirs[dir].base_set {
            // Midstream: the other side's first packet sets its base.
            let syn = u32::from(t.flags & SYN != 0);
            self.dirs[dir].set_base(t.seq.wrapping_add(syn));
        }
        if t.flags & ACK != 0 {
            self.ack_gap(other, t.ack, cfg, stats, sink);
        }
        if !payload.is_empty() {
            self.data(dir, t.seq, payload, cfg, stats, sink);
        }
        if t.flags & FIN != 0 {
            let d = &mut self.dirs[dir];
            if d.fin_seq.is_none() {
                d.fin_seq = Some(t.seq.wrapping_add(payload.len() as u32));
            }
        }
        self.transition(dir, t);
    }

    fn transition(&mut self, dir: usize, t: &TcpInfo) {
        let fin = t.flags & FIN != 0;
        let acks_fin = |s: &Self, of: usize| {
            t.flags & ACK != 0
                && s.dirs[of]
                    .fin_seq
                    .is_some_and(|f| !seq_gt(f.wrapping_add(1), t.ack))
        };
        // Directions are relative to the side that closed first (`first_fin`).
        let first = self.first_fin;
        self.state = match self.state {
            TcpState::Established if fin => {
                self.first_fin = dir;
                if dir == 0 {
                    TcpState::FinWait1
                } else {
                    TcpState::CloseWait
                }
            }
            TcpState::FinWait1 if dir != first && fin => {
                if acks_fin(self, first) {
                    TcpState::TimeWait
                } else {
                    TcpState::Closing
                }
            }
            TcpState::FinWait1 if dir != first && acks_fin(self, first) => TcpState::FinWait2,
            TcpState::FinWait2 if dir != first && fin => TcpState::TimeWait,
            TcpState::TimeWait if dir == first && acks_fin(self, dir ^ 1) => TcpState::Closed,
            TcpState::CloseWait if dir != first && fin => TcpState::LastAck,
            TcpState::LastAck if dir == first && acks_fin(self, dir ^ 1) => TcpState::Closed,
            TcpState::Closing if acks_fin(self, dir ^ 1) => TcpState::TimeWait,
            s => s,
        };
    }

    fn data(
        &mut self,
        dir: usize,
        seq: u32,
        payload: &[u8],
        cfg: &StreamConfig,
        stats: &mut StreamStats,
        sink: &mut dyn FnMut(usize, Chunk<'_>),
    ) {
        let d = &mut self.dirs[dir];
        if d.depth_reached {
            return;
        }
        let rel = seq.wrapping_sub(d.base);
        let end = rel.wrapping_add(payload.len() as u32);
        if !seq_gt(end, d.next) {
            stats.retransmissions += 1;
            return;
        }
        if seq_gt(rel, d.next) {
            // Out of order: keep a copy until the hole fills (first copy wins).
            stats.out_of_order += 1;
            if d.ooo.len() >= cfg.max_segments || stats.memuse + payload.len() > cfg.memcap {
                stats.memcap_drops += 1;
                return;
            }
            if let Some(old) = d.ooo.get(&rel) {
                if old.len() >= payload.len() {
                    stats.overlaps += 1;
                    return;
                }
                stats.overlaps += 1;
                let n = old.len();
                d.ooo_bytes -= n;
                stats.memuse -= n;
            }
            d.ooo.insert(rel, payload.to_vec());
            d.ooo_bytes += payload.len();
            stats.memuse += payload.len();
            d.max_regions = d.max_regions.max(1 + d.ooo.len() as u32);
            return;
        }
        // Overlaps the delivered data: skip what was already delivered.
        let skip = d.next.wrapping_sub(rel) as usize;
        if skip > 0 {
            stats.overlaps += 1;
        }
        let fresh = payload.get(skip..).unwrap_or(&[]);
        Self::deliver(d, dir, fresh, cfg, stats, sink);
        Self::drain(d, dir, cfg, stats, sink);
    }

    fn deliver(
        d: &mut Dir,
        dir: usize,
        data: &[u8],
        cfg: &StreamConfig,
        stats: &mut StreamStats,
        sink: &mut dyn FnMut(usize, Chunk<'_>),
    ) {
        let room = cfg.depth.saturating_sub(d.delivered);
        let n = (data.len() as u64).min(room) as usize;
        if n > 0 {
            sink(dir, Chunk::Data(&data[..n]));
        }
        d.next = d.next.wrapping_add(data.len() as u32);
        d.delivered += n as u64;
        if d.delivered >= cfg.depth && !d.depth_reached {
            d.depth_reached = true;
            stats.depth_reached += 1;
            stats.memuse -= d.ooo_bytes;
            d.ooo_bytes = 0;
            d.ooo.clear();
        }
    }

    /// Releases queued segments that are now in order.
    fn drain(
        d: &mut Dir,
        dir: usize,
        cfg: &StreamConfig,
        stats: &mut StreamStats,
        sink: &mut dyn FnMut(usize, Chunk<'_>),
    ) {
        while let Some((&rel, _)) = d.ooo.first_key_value() {
            if seq_gt(rel, d.next) {
                break;
            }
            let Some(seg) = d.ooo.remove(&rel) else { break };
            d.ooo_bytes -= seg.len();
            stats.memuse -= seg.len();
            let end = rel.wrapping_add(seg.len() as u32);
            if !seq_gt(end, d.next) {
                stats.overlaps += 1;
                continue;
            }
            let skip = d.next.wrapping_sub(rel) as usize;
            Self::deliver(d, dir, seg.get(skip..).unwrap_or(&[]), cfg, stats, sink);
        }
    }

    /// The receiver acknowledged data past a hole that has segments queued behind it: the
    /// missing bytes were lost by the capture. Report a gap and release the queue.
    fn ack_gap(
        &mut self,
        dir: usize,
        ack: u32,
        cfg: &StreamConfig,
        stats: &mut StreamStats,
        sink: &mut dyn FnMut(usize, Chunk<'_>),
    ) {
        let d = &mut self.dirs[dir];
        if !d.base_set || d.ooo.is_empty() {
            return;
        }
        let ack_rel = ack.wrapping_sub(d.base);
        let Some((&first, _)) = d.ooo.first_key_value() else {
            return;
        };
        if seq_gt(first, d.next) && !seq_gt(first, ack_rel) {
            let len = first.wrapping_sub(d.next);
            stats.gaps += 1;
            sink(dir, Chunk::Gap(u64::from(len)));
            d.next = first;
            Self::drain(d, dir, cfg, stats, sink);
        }
    }

    /// End of the flow: release everything queued, with gaps for the holes, and free the
    /// out-of-order memory.
    pub fn flush(
        &mut self,
        cfg: &StreamConfig,
        stats: &mut StreamStats,
        sink: &mut dyn FnMut(usize, Chunk<'_>),
    ) {
        for dir in 0..2 {
            let d = &mut self.dirs[dir];
            while let Some((&first, _)) = d.ooo.first_key_value() {
                if seq_gt(first, d.next) {
                    stats.gaps += 1;
                    sink(dir, Chunk::Gap(u64::from(first.wrapping_sub(d.next))));
                    d.next = first;
                }
                Self::drain(d, dir, cfg, stats, sink);
            }
        }
    }

    /// Frees out-of-order memory without delivering it.
    pub fn release(&mut self, stats: &mut StreamStats) {
        for d in &mut self.dirs {
            stats.memuse -= d.ooo_bytes;
            d.ooo_bytes = 0;
            d.ooo.clear();
        }
    }
}

impl Dir {
    fn set_base(&mut self, base: u32) {
        self.base = base;
        self.base_set = true;
        self.next = 0;
    }
    fn delivered_any(&self) -> bool {
        self.delivered > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tcp::{TcpOpts, PSH};

    fn seg(seq: u32, ack: u32, flags: u8) -> TcpInfo {
        TcpInfo {
            seq,
            ack,
            flags,
            win: 1024,
            opts: TcpOpts::default(),
        }
    }

    struct Run {
        s: TcpSession,
        cfg: StreamConfig,
        st: StreamStats,
        got: [Vec<u8>; 2],
        gaps: Vec<(usize, u64)>,
    }

    impl Run {
        fn new(cfg: StreamConfig) -> Self {
            let mut st = StreamStats::default();
            // Handshake: client ISN 1000, server ISN 5000.
            let mut s = TcpSession::start(&seg(1000, 0, SYN), &cfg, &mut st).unwrap();
            let mut r = Run {
                s: TcpSession {
                    state: TcpState::None,
                    dirs: Default::default(),
                    first_fin: 0,
                },
                cfg,
                st,
                got: Default::default(),
                gaps: vec![],
            };
            std::mem::swap(&mut r.s, &mut s);
            r.pkt(1, 5000, 1001, SYN | ACK, b"");
            r.pkt(0, 1001, 5001, ACK, b"");
            assert_eq!(r.s.state, TcpState::Established);
            r
        }
        fn pkt(&mut self, dir: usize, seq: u32, ack: u32, flags: u8, data: &[u8]) {
            let (got, gaps) = (&mut self.got, &mut self.gaps);
            self.s.packet(
                dir,
                &seg(seq, ack, flags),
                data,
                &self.cfg,
                &mut self.st,
                &mut |d, c| match c {
                    Chunk::Data(b) => got[d].extend_from_slice(b),
                    Chunk::Gap(n) => gaps.push((d, n)),
                },
            );
        }
    }

    #[test]
    fn in_order_out_of_order_retransmission_and_overlap() {
        let mut r = Run::new(StreamConfig::default());
        r.pkt(0, 1001, 5001, PSH | ACK, b"GET ");
        r.pkt(0, 1008, 5001, PSH | ACK, b"HTTP"); // out of order (bytes 7..11)
        assert_eq!(r.got[0], b"GET ");
        r.pkt(0, 1001, 5001, PSH | ACK, b"GET "); // retransmission
        r.pkt(0, 1003, 5001, PSH | ACK, b"T /x "); // overlaps 2 delivered bytes, fills hole
        assert_eq!(r.got[0], b"GET /x HTTP");
        assert_eq!(r.st.retransmissions, 1);
        assert!(r.st.overlaps >= 1);
        assert_eq!(r.st.memuse, 0);
    }

    #[test]
    fn gap_on_ack_past_hole_and_on_flush() {
        let mut r = Run::new(StreamConfig::default());
        r.pkt(1, 5001, 1001, ACK, b"abc");
        r.pkt(1, 5010, 1001, ACK, b"xyz"); // bytes 3..9 lost
                                           // Client acknowledges everything: the server's hole was a capture loss.
        r.pkt(0, 1001, 5013, ACK, b"");
        assert_eq!(r.gaps, vec![(1, 6)]);
        assert_eq!(r.got[1], b"abcxyz");
        r.pkt(0, 1005, 5013, ACK, b"late"); // client hole of 4 bytes, never filled
        let (got, gaps) = (&mut r.got, &mut r.gaps);
        r.s.flush(&r.cfg, &mut r.st, &mut |d, c| match c {
            Chunk::Data(b) => got[d].extend_from_slice(b),
            Chunk::Gap(n) => gaps.push((d, n)),
        });
        assert_eq!(r.gaps[1], (0, 4));
        assert_eq!(r.got[0], b"late");
        assert_eq!(r.st.memuse, 0);
    }

    #[test]
    fn depth_limits_delivery() {
        let mut r = Run::new(StreamConfig {
            depth: 5,
            ..Default::default()
        });
        r.pkt(0, 1001, 5001, ACK, b"0123");
        r.pkt(0, 1005, 5001, ACK, b"4567");
        r.pkt(0, 1009, 5001, ACK, b"89");
        assert_eq!(r.got[0], b"01234");
        assert_eq!(r.st.depth_reached, 1);
    }

    #[test]
    fn teardown_states() {
        let mut r = Run::new(StreamConfig::default());
        r.pkt(0, 1001, 5001, FIN | ACK, b"");
        assert_eq!(r.s.state, TcpState::FinWait1);
        r.pkt(1, 5001, 1002, ACK, b"");
        assert_eq!(r.s.state, TcpState::FinWait2);
        r.pkt(1, 5001, 1002, FIN | ACK, b"");
        assert_eq!(r.s.state, TcpState::TimeWait);
        r.pkt(0, 1002, 5002, ACK, b"");
        assert_eq!(r.s.state, TcpState::Closed);
        assert!(r.s.is_reuse(&seg(7, 0, SYN)));
        assert!(
            !r.s.is_reuse(&seg(1000, 0, SYN)),
            "same ISN is not a new session"
        );
        // Server closes first.
        let mut r = Run::new(StreamConfig::default());
        r.pkt(1, 5001, 1001, FIN | ACK, b"bye");
        assert_eq!(r.s.state, TcpState::CloseWait);
        r.pkt(0, 1001, 5005, FIN | ACK, b"");
        assert_eq!(r.s.state, TcpState::LastAck);
        r.pkt(1, 5005, 1002, ACK, b"");
        assert_eq!(r.s.state, TcpState::Closed);
        assert_eq!(r.got[1], b"bye");
        // Reset.
        let mut r = Run::new(StreamConfig::default());
        r.pkt(1, 5001, 0, RST, b"");
        assert_eq!(r.s.state, TcpState::Closed);
    }

    #[test]
    fn no_session_without_syn_unless_midstream() {
        let mut st = StreamStats::default();
        let cfg = StreamConfig::default();
        assert!(TcpSession::start(&seg(1, 1, ACK), &cfg, &mut st).is_none());
        let mid = StreamConfig {
            midstream: true,
            ..Default::default()
        };
        let s = TcpSession::start(&seg(1, 1, ACK), &mid, &mut st).unwrap();
        assert_eq!(s.state, TcpState::Established);
        assert_eq!(st.midstream_pickups, 1);
    }

    #[test]
    fn sequence_wraparound() {
        let mut st = StreamStats::default();
        let cfg = StreamConfig::default();
        let mut s = TcpSession::start(&seg(u32::MAX - 2, 0, SYN), &cfg, &mut st).unwrap();
        let mut got = Vec::new();
        let mut sink = |_: usize, c: Chunk<'_>| {
            if let Chunk::Data(b) = c {
                got.extend_from_slice(b)
            }
        };
        s.packet(
            1,
            &seg(9, u32::MAX - 1, SYN | ACK),
            b"",
            &cfg,
            &mut st,
            &mut sink,
        );
        s.packet(
            0,
            &seg(u32::MAX - 1, 10, ACK),
            b"abcd",
            &cfg,
            &mut st,
            &mut sink,
        );
        s.packet(0, &seg(2, 10, ACK), b"ef", &cfg, &mut st, &mut sink);
        assert_eq!(got, b"abcdef");
    }
}
