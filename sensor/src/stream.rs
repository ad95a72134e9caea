//! TCP session tracking and per-direction stream reassembly.
//!
//! The session follows the handshake and teardown with Suricata's state names. Each
//! direction keeps the next expected sequence number; in-order bytes are handed to the
//! caller straight from the packet (no copy), out-of-order segments are copied into a
//! bounded per-direction map and released in order when the hole fills, or as a gap when
//! the receiver acknowledges past the hole or the flow ends. Overlapping segments with
//! different bytes follow Suricata's default overlap policy ("bsd"): a segment's bytes
//! replace those of earlier segments that start after it, and never those of a segment
//! starting before or at its own start (bytes already handed to the app layer stay). A reassembly depth bounds the bytes delivered per direction, a memcap bounds the
//! out-of-order bytes held across all sessions.
//!
//! Like Suricata in IDS mode, in-order bytes reach the app layer only once the other side
//! acknowledges them (`StreamConfig::ack_delivery`): they wait in a per-direction buffer
//! until a packet of the opposite direction ACKs them, a RST releases its sender's own
//! bytes, and at flow end the to-server bytes are released before the app layer logs and
//! the to-client bytes nobody acknowledged are dropped (Suricata logs the transactions on
//! its to-server flow-end pseudo packet, before it hands the to-client rest to the parser).
//! The wait buffers count against the same memcap; past it, bytes go through unacknowledged.

use std::collections::BTreeMap;

use crate::decode::TcpInfo;
use crate::event::{Events, StreamEvent};
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
    /// Keep each direction's in-order bytes for raw stream inspection (set when the
    /// detection engine has stream signatures).
    pub raw: bool,
    /// Hand in-order bytes to the app layer only once the other side acknowledges them
    /// (Suricata's IDS mode); off, they go through as they arrive.
    pub ack_delivery: bool,
    /// Pick up a session on a SYN/ACK seen first (`stream.async-oneside`): only one side
    /// is expected, so its bytes go through unacknowledged.
    pub async_oneside: bool,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            midstream: false,
            depth: 1 << 20,
            memcap: 256 << 20,
            max_segments: 1024,
            raw: false,
            ack_delivery: true,
            async_oneside: false,
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
    /// Overlapping bytes that differed and were replaced by the overlap policy.
    pub overlaps_diff: u64,
    pub out_of_order: u64,
    pub gaps: u64,
    pub depth_reached: u64,
    pub memcap_drops: u64,
    pub ssn_reuse: u64,
    /// Packets ignored because their data ends past the receiver's window
    /// (Suricata's `stream.est_packet_out_of_window`).
    pub out_of_window: u64,
    /// Packets ignored because they acknowledge data the peer may not have sent yet
    /// (past its window) or far behind what was acknowledged (`stream.est_invalid_ack`).
    pub invalid_ack: u64,
    /// Out-of-order bytes currently held.
    pub memuse: usize,
}

/// What the stream hands to its consumer.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    Data(&'a [u8]),
    /// This many bytes were lost.
    Gap(u64),
    /// Flow end: the direction stops at a hole the receiver never acknowledged past, so
    /// what follows is not delivered (Suricata waits for the hole to fill).
    Cut,
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
    /// This session's reassembly depth when its protocol sets one (else the config's).
    depth: Option<u64>,
    depth_reached: bool,
    max_regions: u32,
    /// Raw stream for detection (`StreamConfig::raw`): bytes delivered and not yet
    /// inspected, after `raw_keep` bytes of already-inspected tail kept so that a pattern
    /// split across two chunks is found.
    raw: Vec<u8>,
    raw_keep: usize,
    /// Stream offset of `raw[0]` (bytes dropped from `raw` so far; gaps not counted).
    raw_base: u64,
    /// Gaps in `raw`: (index of the first byte after the gap, bytes lost), in order; for
    /// the `[N bytes missing]` text of alert payloads.
    raw_gaps: Vec<(usize, u64)>,
    /// An app-layer transaction completed since the last chunk: the next acknowledged
    /// bytes make a chunk (Suricata's per-direction TRIGGER_RAW flag).
    raw_trigger: bool,
    /// The bytes of a TCP Fast Open SYN: inspected as a chunk on the SYN itself.
    raw_now: bool,
    /// Relative sequence number the other side acknowledged.
    acked: Option<u32>,
    /// In-order bytes waiting for the other side's acknowledgement before they go to the
    /// app layer (`StreamConfig::ack_delivery`), starting at relative offset `wait_rel`.
    wait: Vec<u8>,
    wait_rel: u32,
    /// Extents (relative start, end) of the segments whose bytes are in `wait`, for the
    /// overlap policy (a later segment may still change waiting bytes).
    wait_segs: Vec<(u32, u32)>,
    /// Window tracking (`TcpSession::win_track`): the receive window the other side last
    /// advertised for this direction's data (scaled), the highest sequence number it
    /// acknowledged (Suricata's `last_ack`), the right edge of the window: the highest
    /// sequence number this side may send (`next_win`, only moves forward), and the
    /// scale of the windows this side advertises (RFC 7323, when both SYNs carry it).
    window: u32,
    last_ack: u32,
    next_win: u32,
    wscale: u8,
}

/// Segments remembered per direction for the overlap policy; past it, later segments
/// only fill holes (the first copy wins).
const MAX_WAIT_SEGS: usize = 1024;

/// One TCP session.
#[derive(Debug)]
pub struct TcpSession {
    pub state: TcpState,
    dirs: [Dir; 2],
    first_fin: usize,
    /// The last segment's payload was accepted into the stream (delivered in order or
    /// queued out of order), so stream inspection covers it (Suricata's PKT_STREAM_ADD).
    pub last_added: bool,
    /// The client's SYN carried the TCP Fast Open option: its data is part of the stream.
    tfo: bool,
    /// The side that refused the SYN with a RST, and the state before it (SYN_SENT). Like
    /// Suricata (StreamTcpPacketStateClosed), that side's later packets are still
    /// processed in that state (the RST may never have reached its peer, and a SYN/ACK
    /// may follow it); the other side's are ignored. Suricata does the same after a RST
    /// in later states, but what its app layer then sees (sv/zeek flows where it parses
    /// neither the data after such a RST nor the unacknowledged rest) is not modelled
    /// here, so those sessions stay closed.
    reset: Option<(usize, TcpState)>,
    /// Server ISNs + 1 of SYN/ACKs resent with another ISN in SYN_RECV.
    synacks: Vec<u32>,
    /// The session saw its handshake (not picked up midstream), so each side's data must
    /// fit the receive window the other side advertised and its ACKs must be plausible,
    /// as Suricata checks from ESTABLISHED on: a packet that fails either check is
    /// ignored (neither its ACK nor its data counts).
    win_track: bool,
    /// The client SYN's window-scale option (RFC 7323: in force only if the SYN/ACK has
    /// one too).
    syn_wscale: Option<u8>,
    /// The server answered the SYN with a SYN (four-way handshake).
    four_whs: bool,
    /// Picked up by `StreamConfig::async_oneside`: bytes are not held for ACKs.
    one_sided: bool,
    /// The client SYN's timestamp value, when it carried the option: in SYN_SENT a
    /// server packet's timestamp echo must match it (or be 0 when the SYN had none).
    syn_ts: Option<u32>,
    /// Stream events the last segment raised (Suricata's `stream-event`s).
    pub events: Events<StreamEvent>,
}

/// RFC 7323's largest window shift.
const MAX_WSCALE: u8 = 14;

/// SYN/ACKs with other ISNs remembered in SYN_RECV (Suricata's max-synack-queued).
const MAX_SYNACK_QUEUED: usize = 5;

/// Raw-stream inspection: bytes of already-inspected data kept before the next chunk (a
/// pattern up to this long split across chunks is still found).
pub const RAW_OVERLAP: usize = 1024;
/// Acknowledged bytes that make a chunk ready (Suricata's reassembly chunk size).
pub const RAW_CHUNK: usize = 2560;
/// Uninspected bytes held per direction; past it a chunk is inspected unacknowledged.
pub const RAW_MAX: usize = 64 * 1024;

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
            last_added: false,
            tfo: false,
            reset: None,
            synacks: Vec::new(),
            win_track: false,
            syn_wscale: None,
            four_whs: false,
            one_sided: false,
            syn_ts: None,
            events: Events::default(),
        };
        if t.flags & (SYN | ACK | RST) == SYN {
            s.state = TcpState::SynSent;
            s.dirs[0].set_base(t.seq.wrapping_add(1));
            // The SYN's window (never scaled) bounds the server's first flight.
            s.win_track = true;
            s.syn_wscale = t.opts.wscale;
            s.syn_ts = t.opts.timestamp.map(|(val, _)| val);
            s.dirs[1].window = u32::from(t.win);
        } else if (cfg.midstream && t.flags & RST == 0)
            || (cfg.async_oneside && t.flags & (SYN | ACK | RST | FIN) == SYN | ACK)
        {
            // An asynchronous one-sided session: the other side's ACKs never come.
            s.one_sided = !cfg.midstream;
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

    /// A session [`TcpSession::start`]ed midstream on a packet of the server (a SYN/ACK,
    /// whose flow Suricata reverses): the side set up belongs to direction 1.
    pub fn reverse(&mut self) {
        self.dirs.swap(0, 1);
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
        self.last_added = false;
        self.events.clear();
        let one_sided;
        let cfg = if self.one_sided && cfg.ack_delivery {
            one_sided = StreamConfig {
                ack_delivery: false,
                ..*cfg
            };
            &one_sided
        } else {
            cfg
        };
        // The state this packet is handled in: the RST sender's packets after its RST go
        // on in the state before it.
        let state = match self.reset {
            Some((from, before))
                if self.state == TcpState::Closed && from == dir && t.flags & RST == 0 =>
            {
                before
            }
            _ => self.state,
        };
        if state == TcpState::SynSent && dir == 1 && !self.syn_ts_echo_ok(t) {
            // A server reply echoing a timestamp the client never sent (Suricata ignores
            // it: a RST or FIN of an evasion attempt).
            self.events.push(StreamEvent::PktInvalidTimestamp);
            return;
        }
        if t.flags & RST != 0 {
            if self.state != TcpState::SynSent || dir == 1 {
                // A RST refusing the SYN, or one with an authentication option (MD5/AO)
                // the receiver may reject: its sender may go on (see `reset`).
                if self.state == TcpState::SynSent
                    || (t.opts.auth && self.state != TcpState::Closed)
                {
                    self.reset = Some((dir, self.state));
                }
                self.state = TcpState::Closed;
                // Suricata moves the sender's acknowledged edge to its last byte and
                // hands the sender's direction to the app layer (the other direction
                // waits for the end of the flow).
                Self::release_wait(&mut self.dirs[dir], dir, None, stats, sink);
            }
            return;
        }
        if self.state == TcpState::Closed {
            match self.reset {
                // The RST's sender goes on in the state before it: if the packet is
                // accepted there, the RST looks injected (the sender ignores it) and the
                // session resumes in that state (or the one the packet moved it to).
                Some((from, before)) if from == dir => {
                    self.state = before;
                    if self.packet_in_state(dir, t, payload, cfg, stats, sink) {
                        self.reset = None;
                        self.events.push(StreamEvent::SuspectedRstInject);
                    } else {
                        self.state = TcpState::Closed;
                    }
                }
                _ => {}
            }
            return;
        }
        self.packet_in_state(dir, t, payload, cfg, stats, sink);
    }

    /// Suricata's SYN_SENT timestamp check of a server packet: when the client's SYN
    /// carried a timestamp, a non-zero echo must be it; when it did not, the echo must be 0.
    fn syn_ts_echo_ok(&self, t: &TcpInfo) -> bool {
        let Some((_, echo)) = t.opts.timestamp else {
            return true;
        };
        match self.syn_ts {
            Some(val) => val == 0 || echo == 0 || echo == val,
            None => echo == 0,
        }
    }

    /// Handles a packet in the current state; false when the packet is rejected as
    /// invalid (a window or ACK check, a SYN/ACK acknowledging something else).
    fn packet_in_state(
        &mut self,
        dir: usize,
        t: &TcpInfo,
        payload: &[u8],
        cfg: &StreamConfig,
        stats: &mut StreamStats,
        sink: &mut dyn FnMut(usize, Chunk<'_>),
    ) -> bool {
        let other = dir ^ 1;
        if self.win_track && self.state >= TcpState::Established {
            if let Err(e) = self.window_ok(dir, t, payload.len(), stats) {
                if let Some(e) = e {
                    self.events.push(e);
                }
                return false;
            }
        }
        match self.state {
            TcpState::None | TcpState::Closed => return true,
            TcpState::SynSent => {
                if dir == 1 && t.flags & (SYN | ACK) == SYN | ACK {
                    if !self.syn_ack(t, stats) {
                        self.events.push(StreamEvent::SynackWithWrongAck);
                        return false;
                    }
                } else if dir == 1 && t.flags & (SYN | ACK) == SYN && !self.four_whs {
                    // The server answers the SYN with a SYN of its own: a four-way (split)
                    // handshake, which the client completes with a SYN/ACK (Suricata's
                    // 4WHS). The windows are not tracked for such sessions.
                    self.four_whs = true;
                    self.win_track = false;
                    self.dirs[1].set_base(t.seq.wrapping_add(1));
                } else if dir == 0 && t.flags & (SYN | ACK) == SYN | ACK && self.four_whs {
                    if t.ack != self.dirs[1].base {
                        self.events.push(StreamEvent::FourWhsSynackWithWrongAck);
                        return false;
                    }
                    if t.seq.wrapping_add(1) != self.dirs[0].base {
                        self.events.push(StreamEvent::FourWhsSynackWithWrongSyn);
                        return false;
                    }
                    self.state = TcpState::SynRecv;
                } else if dir == 0
                    && t.flags & (SYN | ACK) == SYN
                    && t.seq.wrapping_add(1) == self.dirs[0].base
                {
                    // A SYN resent (a SYN with another ISN is ignored: Suricata keeps the
                    // first SYN's, SYN_RESEND_DIFF_SEQ, so a SYN/ACK for it is ignored too).
                    // Its timestamp replaces the first SYN's: the server echoes the SYN it
                    // answers (ndpi: a SYN sent three times, the SYN/ACK echoing the last).
                    self.syn_ts = t.opts.timestamp.map(|(val, _)| val);
                    if t.opts.tfo {
                        // TCP Fast Open: the SYN's data is the stream's first bytes.
                        self.tfo = true;
                        if !payload.is_empty() {
                            self.data(0, t.seq.wrapping_add(1), payload, cfg, stats, sink);
                            self.dirs[0].raw_now = true;
                        }
                    }
                }
                return true;
            }
            TcpState::SynRecv => {
                let client_next = self.dirs[0].base.wrapping_add(self.dirs[0].next);
                let server_next = self.dirs[1].base.wrapping_add(self.dirs[1].next);
                if dir == 1 && t.flags & (SYN | ACK) == SYN | ACK {
                    // A SYN/ACK resent with another ISN: kept (up to Suricata's default
                    // stream.max-synack-queued, 5) in case the client's ACK is for it.
                    let isn1 = t.seq.wrapping_add(1);
                    if t.ack == client_next
                        && isn1 != self.dirs[1].base
                        && self.synacks.len() < MAX_SYNACK_QUEUED
                        && !self.synacks.contains(&isn1)
                    {
                        self.synacks.push(isn1);
                    }
                    return true;
                }
                let queued = dir == 0
                    && self.dirs[1].next == 0
                    && t.ack != server_next
                    && self.synacks.contains(&t.ack);
                if queued {
                    // The client acknowledges a queued SYN/ACK: the server's ISN is its.
                    self.dirs[1].set_base(t.ack);
                    self.server_isn_acked(t.ack);
                }
                if dir == 0
                    && t.flags & (SYN | ACK) == ACK
                    && (t.ack == server_next || queued)
                    && !seq_gt(client_next, t.seq)
                {
                    self.synacks = Vec::new();
                    // The handshake's last ACK (or a later client segment when it was
                    // lost): it must acknowledge the SYN/ACK. Suricata rejects one with the
                    // right sequence number and another ACK as an evasion attempt
                    // (3WHS_RIGHT_SEQ_WRONG_ACK_EVASION) and stays in SYN_RECV.
                    self.state = TcpState::Established;
                } else if dir == 1
                    && t.flags & (SYN | ACK) == ACK
                    && t.seq == self.dirs[1].base.wrapping_add(self.dirs[1].next)
                    && t.ack == client_next
                {
                    // The server's first packet fits exactly after its SYN/ACK: the
                    // handshake's last ACK was missed or comes later (Suricata accepts it
                    // and its data in IDS mode).
                    self.state = TcpState::Established;
                } else {
                    return true;
                }
            }
            _ => {}
        }
        if !self.dirs[dir].base_set {
            // Midstream: the other side's first packet sets its base.
            let syn = u32::from(t.flags & SYN != 0);
            self.dirs[dir].set_base(t.seq.wrapping_add(syn));
        }
        if self.win_track {
            self.window_update(dir, t);
        }
        if t.flags & ACK != 0 {
            self.ack_gap(other, t.ack, cfg, stats, sink);
            let o = &mut self.dirs[other];
            if o.base_set {
                let rel = t.ack.wrapping_sub(o.base);
                if o.acked.is_none_or(|a| seq_gt(rel, a)) {
                    o.acked = Some(rel);
                    Self::release_wait(o, other, Some(rel), stats, sink);
                }
            }
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
        true
    }

    /// A SYN/ACK in SYN_SENT. Like Suricata it must acknowledge the SYN (ISN + 1), or, on a
    /// TCP Fast Open session, the SYN and its data; a TFO SYN/ACK acknowledging the SYN only
    /// drops the SYN's data (the client sends it again). Anything else is ignored (false).
    fn syn_ack(&mut self, t: &TcpInfo, stats: &mut StreamStats) -> bool {
        let c = &mut self.dirs[0];
        let isn1 = c.base;
        let next = c.base.wrapping_add(c.next);
        if self.tfo || t.opts.tfo {
            if t.ack == isn1 && next != isn1 {
                stats.memuse -= c.ooo_bytes + c.wait.len();
                let (base, depth) = (c.base, c.depth);
                *c = Dir::default();
                c.set_base(base);
                c.depth = depth;
            } else if t.ack != next {
                return false;
            }
            self.tfo = true;
        } else if t.ack != isn1 {
            return false;
        }
        self.state = TcpState::SynRecv;
        self.dirs[1].set_base(t.seq.wrapping_add(1));
        // Window scaling is in force when both SYNs carry the option.
        if let (Some(c), Some(sv)) = (self.syn_wscale, t.opts.wscale) {
            self.dirs[0].wscale = c.min(MAX_WSCALE);
            self.dirs[1].wscale = sv.min(MAX_WSCALE);
        }
        self.dirs[0].window = u32::from(t.win);
        self.dirs[0].last_ack = t.ack;
        self.dirs[0].next_win = t.ack.wrapping_add(self.dirs[0].window);
        self.server_isn_acked(t.seq.wrapping_add(1));
        true
    }

    /// The server's ISN + 1 is `isn1` (its SYN/ACK, or a queued one the client's ACK
    /// picked): the client's SYN window bounds what the server may send first.
    fn server_isn_acked(&mut self, isn1: u32) {
        let d = &mut self.dirs[1];
        d.last_ack = isn1;
        d.next_win = isn1.wrapping_add(d.window);
    }

    /// Suricata's window checks (StreamTcpValidateAck and the in-window test of its
    /// ESTABLISHED handlers) for a packet of direction `dir` once the session is
    /// established: an error when the packet must be ignored, with the stream event
    /// Suricata raises for it in the current state (if any).
    fn window_ok(
        &self,
        dir: usize,
        t: &TcpInfo,
        payload_len: usize,
        stats: &mut StreamStats,
    ) -> Result<(), Option<StreamEvent>> {
        let (d, o) = (&self.dirs[dir], &self.dirs[dir ^ 1]);
        if t.flags & ACK != 0 && o.base_set {
            let ack = t.ack;
            let valid = if seq_gt(ack, o.last_ack) {
                // Acknowledging what the peer may not have sent yet (past its window).
                !seq_gt(ack, o.next_win)
            } else {
                // Far behind what was acknowledged already: more than a window back.
                o.window == 0 || !seq_gt(o.last_ack.wrapping_sub(o.window), ack)
            };
            if !valid {
                stats.invalid_ack += 1;
                return Err(match self.state {
                    TcpState::Established => Some(StreamEvent::EstInvalidAck),
                    TcpState::FinWait1 => Some(StreamEvent::Fin1InvalidAck),
                    TcpState::FinWait2 => Some(StreamEvent::Fin2InvalidAck),
                    TcpState::CloseWait => Some(StreamEvent::CloseWaitInvalidAck),
                    TcpState::LastAck => Some(StreamEvent::LastAckInvalidAck),
                    TcpState::TimeWait => Some(StreamEvent::TimeWaitInvalidAck),
                    TcpState::Closing => Some(StreamEvent::ClosingInvalidAck),
                    _ => None,
                });
            }
        }
        if payload_len > 0 {
            let next_seq = d.base.wrapping_add(d.next);
            // A one-byte probe of a closed window is allowed past it.
            let zero_window_probe = payload_len == 1 && t.seq == next_seq && d.window == 0;
            let end = t.seq.wrapping_add(payload_len as u32);
            if !zero_window_probe && seq_gt(end, d.next_win) {
                stats.out_of_window += 1;
                return Err((self.state == TcpState::Established)
                    .then_some(StreamEvent::EstPacketOutOfWindow));
            }
        }
        Ok(())
    }

    /// An accepted packet of direction `dir`: its window and ACK move the other
    /// direction's right edge.
    fn window_update(&mut self, dir: usize, t: &TcpInfo) {
        let scale = self.dirs[dir].wscale;
        let o = &mut self.dirs[dir ^ 1];
        o.window = u32::from(t.win) << scale;
        if t.flags & ACK != 0 && seq_gt(t.ack, o.last_ack) {
            o.last_ack = t.ack;
        }
        let edge = o.last_ack.wrapping_add(o.window);
        if seq_gt(edge, o.next_win) {
            o.next_win = edge;
        }
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
            // Suricata names the states from the server's side: the client's FIN makes
            // CLOSE_WAIT, the server's FIN_WAIT1.
            TcpState::Established if fin => {
                self.first_fin = dir;
                if dir == 0 {
                    TcpState::CloseWait
                } else {
                    TcpState::FinWait1
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
            Self::overlap_wait(d, rel, payload, stats);
            return;
        }
        if seq_gt(rel, d.next) {
            // Out of order: keep a copy until the hole fills (overlaps between queued
            // segments resolve in `drain`: the one starting first wins).
            stats.out_of_order += 1;
            if d.ooo.len() >= cfg.max_segments || stats.memuse + payload.len() > cfg.memcap {
                stats.memcap_drops += 1;
                return;
            }
            if let Some(old) = d.ooo.get_mut(&rel) {
                // Same start: the bytes seen first win, a longer copy adds its tail
                // (Suricata's "bsd" overlap policy).
                stats.overlaps += 1;
                let Some(tail) = payload.get(old.len()..).filter(|t| !t.is_empty()) else {
                    return;
                };
                old.extend_from_slice(tail);
                self.last_added = true;
                d.ooo_bytes += tail.len();
                stats.memuse += tail.len();
                return;
            }
            d.ooo.insert(rel, payload.to_vec());
            self.last_added = true;
            d.ooo_bytes += payload.len();
            stats.memuse += payload.len();
            d.max_regions = d.max_regions.max(1 + d.ooo.len() as u32);
            return;
        }
        // Overlaps the delivered data: skip what was already delivered (bytes still
        // waiting for their acknowledgement follow the overlap policy).
        let skip = d.next.wrapping_sub(rel) as usize;
        if skip > 0 {
            stats.overlaps += 1;
            Self::overlap_wait(d, rel, payload, stats);
        }
        let fresh = payload.get(skip..).unwrap_or(&[]);
        self.last_added = !fresh.is_empty();
        Self::deliver(d, dir, fresh, cfg, stats, sink);
        Self::note_segment(d, rel, end);
        Self::drain(d, dir, cfg, stats, sink);
    }

    /// Suricata's default overlap policy ("bsd", host-os-policy default) for a segment
    /// `[rel, rel + payload.len())` overlapping bytes that wait for their acknowledgement
    /// (not yet seen by the app layer): a waiting byte takes the new segment's value
    /// only if every earlier segment holding it started after the new one (a segment
    /// starting before or at an old one's start replaces it; one starting inside it does
    /// not). Delivered bytes never change.
    fn overlap_wait(d: &mut Dir, rel: u32, payload: &[u8], stats: &mut StreamStats) {
        if d.wait.is_empty() {
            return;
        }
        let end = rel.wrapping_add(payload.len() as u32);
        let w_end = d.wait_rel.wrapping_add(d.wait.len() as u32);
        let lo = if seq_gt(d.wait_rel, rel) {
            d.wait_rel
        } else {
            rel
        };
        let hi = if seq_gt(end, w_end) { w_end } else { end };
        // Old segments starting at or before `rel` keep their bytes: they cover a prefix.
        let mut from = lo;
        for &(s, e) in &d.wait_segs {
            if !seq_gt(s, rel) && seq_gt(e, from) {
                from = e;
            }
        }
        if !seq_gt(hi, from) {
            return;
        }
        let (n_from, n_to) = (
            from.wrapping_sub(rel) as usize,
            hi.wrapping_sub(rel) as usize,
        );
        let (w_from, w_to) = (
            from.wrapping_sub(d.wait_rel) as usize,
            hi.wrapping_sub(d.wait_rel) as usize,
        );
        if let (Some(new), Some(old)) = (payload.get(n_from..n_to), d.wait.get_mut(w_from..w_to)) {
            if new != old {
                stats.overlaps_diff += 1;
                old.copy_from_slice(new);
            }
        }
        Self::note_segment(d, rel, end);
    }

    /// Remembers a segment's extent while some of the direction's bytes wait.
    fn note_segment(d: &mut Dir, rel: u32, end: u32) {
        if !d.wait.is_empty() && d.wait_segs.len() < MAX_WAIT_SEGS {
            d.wait_segs.push((rel, end));
        }
    }

    fn deliver(
        d: &mut Dir,
        dir: usize,
        data: &[u8],
        cfg: &StreamConfig,
        stats: &mut StreamStats,
        sink: &mut dyn FnMut(usize, Chunk<'_>),
    ) {
        let depth = d.depth.unwrap_or(cfg.depth);
        let room = depth.saturating_sub(d.delivered);
        let n = (data.len() as u64).min(room) as usize;
        if n > 0 {
            let bytes = &data[..n];
            if !cfg.ack_delivery {
                sink(dir, Chunk::Data(bytes));
            } else if d.wait.is_empty()
                && d.acked
                    .is_some_and(|a| !seq_gt(d.next.wrapping_add(n as u32), a))
            {
                // Already acknowledged (a retransmitted hole filled late).
                sink(dir, Chunk::Data(bytes));
            } else if stats.memuse + n > cfg.memcap {
                // No room to wait: release what waits, then these bytes, unacknowledged.
                stats.memcap_drops += 1;
                Self::release_wait(d, dir, None, stats, sink);
                sink(dir, Chunk::Data(bytes));
            } else {
                if d.wait.is_empty() {
                    d.wait_rel = d.next;
                }
                d.wait.extend_from_slice(bytes);
                stats.memuse += n;
            }
            if cfg.raw {
                d.raw.extend_from_slice(bytes);
            }
        }
        d.next = d.next.wrapping_add(data.len() as u32);
        d.delivered += n as u64;
        if d.delivered >= depth && !d.depth_reached {
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
            if skip > 0 {
                Self::overlap_wait(d, rel, &seg, stats);
            }
            Self::deliver(d, dir, seg.get(skip..).unwrap_or(&[]), cfg, stats, sink);
            Self::note_segment(d, rel, end);
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
        // Each hole the acknowledgement covers (data queued behind it) is a gap.
        while let Some((&first, _)) = d.ooo.first_key_value() {
            if !seq_gt(first, d.next) || seq_gt(first, ack_rel) {
                return;
            }
            let len = first.wrapping_sub(d.next);
            stats.gaps += 1;
            // Everything before the hole is acknowledged too.
            Self::release_wait(d, dir, None, stats, sink);
            d.raw_gap(u64::from(len));
            sink(dir, Chunk::Gap(u64::from(len)));
            d.next = first;
            Self::drain(d, dir, cfg, stats, sink);
        }
    }

    /// End of the flow, the way Suricata's flow-end pseudo packets settle it: each
    /// direction gets everything (waiting bytes, then queued segments with gaps for the
    /// holes), the to-server direction first. `log_first` says that the app layer logs its
    /// transactions as soon as one side ends (Suricata's TLS parser finishes its state on
    /// the first end-of-stream: the to-server flow-end pseudo packet, or the packet that
    /// closed the session): then the to-client bytes nobody acknowledged come too late to
    /// count and are dropped. Frees the held memory.
    pub fn flush(
        &mut self,
        cfg: &StreamConfig,
        stats: &mut StreamStats,
        log_first: bool,
        sink: &mut dyn FnMut(usize, Chunk<'_>),
    ) {
        let whole_to_client = !cfg.ack_delivery || !log_first;
        for dir in 0..2 {
            let d = &mut self.dirs[dir];
            if dir == 1 && !whole_to_client {
                let acked = d.acked;
                if let Some(a) = acked {
                    Self::release_wait(d, dir, Some(a), stats, sink);
                }
                stats.memuse -= d.wait.len();
                d.wait.clear();
                d.wait_segs.clear();
                break;
            }
            Self::release_wait(d, dir, None, stats, sink);
            while let Some((&first, _)) = d.ooo.first_key_value() {
                if seq_gt(first, d.next) {
                    if !d.acked.is_some_and(|a| seq_gt(a, d.next)) {
                        // A hole the receiver never acknowledged past: Suricata waits
                        // for it to fill, so what lies beyond never reaches the app layer.
                        stats.memuse -= d.ooo_bytes;
                        d.ooo_bytes = 0;
                        d.ooo.clear();
                        Self::release_wait(d, dir, None, stats, sink);
                        sink(dir, Chunk::Cut);
                        break;
                    }
                    stats.gaps += 1;
                    let len = u64::from(first.wrapping_sub(d.next));
                    d.raw_gap(len);
                    Self::release_wait(d, dir, None, stats, sink);
                    sink(dir, Chunk::Gap(len));
                    d.next = first;
                }
                Self::drain(d, dir, cfg, stats, sink);
            }
            Self::release_wait(d, dir, None, stats, sink);
        }
    }

    /// Hands the waiting bytes of `d` up to relative offset `upto` (all with None) to the
    /// app layer.
    fn release_wait(
        d: &mut Dir,
        dir: usize,
        upto: Option<u32>,
        stats: &mut StreamStats,
        sink: &mut dyn FnMut(usize, Chunk<'_>),
    ) {
        if d.wait.is_empty() {
            return;
        }
        let n = match upto {
            None => d.wait.len(),
            Some(a) if seq_gt(a, d.wait_rel) => {
                (a.wrapping_sub(d.wait_rel) as usize).min(d.wait.len())
            }
            Some(_) => 0,
        };
        if n == 0 {
            return;
        }
        sink(dir, Chunk::Data(&d.wait[..n]));
        d.wait.drain(..n);
        d.wait_rel = d.wait_rel.wrapping_add(n as u32);
        stats.memuse -= n;
        if d.wait.is_empty() {
            d.wait_segs.clear();
            if d.wait.capacity() > 64 * 1024 {
                d.wait = Vec::new();
            }
            if d.wait_segs.capacity() > MAX_WAIT_SEGS / 4 {
                d.wait_segs = Vec::new();
            }
        } else {
            let rel = d.wait_rel;
            d.wait_segs.retain(|&(_, e)| seq_gt(e, rel));
        }
    }

    /// The raw-stream chunk of direction `dir` ready for inspection, if any: the kept
    /// overlap plus the new bytes, of which the returned offset is the first new one. A
    /// chunk is ready once `RAW_CHUNK` acknowledged bytes wait, on a TCP Fast Open SYN
    /// carrying data (its bytes, on the SYN itself), on `trigger` (an app-layer
    /// transaction completed, or the session closes) with acknowledged bytes, always at
    /// `eof` (flow end), and when more than `RAW_MAX` bytes wait. Call
    /// [`TcpSession::raw_done`] after inspecting it.
    pub fn raw_chunk(&self, dir: usize, trigger: bool, eof: bool) -> Option<(&[u8], usize)> {
        let d = self.dirs.get(dir)?;
        let trigger = trigger || d.raw_trigger;
        let waiting = d.raw.len().checked_sub(d.raw_keep)?;
        if waiting == 0 {
            return None;
        }
        // Bytes at the end of `raw` not yet acknowledged.
        let unacked = match d.acked {
            Some(a) if !seq_gt(d.next, a) => 0,
            Some(a) => d.next.wrapping_sub(a) as usize,
            None => waiting,
        };
        let acked = waiting.saturating_sub(unacked);
        let ready = eof
            || d.raw_now
            || waiting > RAW_MAX
            || acked >= RAW_CHUNK
            || (acked > 0 && (trigger || self.state.is_closed()));
        if !ready {
            return None;
        }
        let end = if eof || d.raw_now || waiting > RAW_MAX {
            d.raw.len()
        } else {
            d.raw_keep + acked
        };
        Some((d.raw.get(..end)?, d.raw_keep))
    }

    /// Sets this session's reassembly depth in both directions (the app-layer protocol's
    /// `stream-depth`, as Suricata applies it once the protocol is known).
    pub fn set_depth(&mut self, depth: u64) {
        for d in &mut self.dirs {
            d.depth = Some(depth);
        }
    }

    /// An app-layer transaction completed: each direction's next acknowledged bytes make
    /// a chunk, on whichever packet of that direction comes next (the flag lasts until
    /// that chunk is inspected).
    pub fn raw_trigger(&mut self) {
        for d in &mut self.dirs {
            d.raw_trigger = true;
        }
    }

    /// Each side's size in sequence space (next in-order sequence number minus the
    /// initial one, so the SYN counts), client then server: `stream_size`.
    pub fn seq_sizes(&self) -> [u32; 2] {
        self.dirs.each_ref().map(|d| {
            if d.base_set {
                d.next.wrapping_add(1)
            } else {
                0
            }
        })
    }

    /// Stream offset of the chunk [`TcpSession::raw_chunk`] gives for direction `dir`
    /// (for depths counted from the stream's start; lost bytes of gaps are not counted).
    pub fn raw_offset(&self, dir: usize) -> u64 {
        self.dirs.get(dir).map_or(0, |d| d.raw_base)
    }

    /// The gaps inside the first `len` bytes of the chunk [`TcpSession::raw_chunk`] gives
    /// for direction `dir`: (offset in the chunk, bytes lost).
    pub fn raw_gaps(&self, dir: usize, len: usize) -> &[(usize, u64)] {
        let Some(d) = self.dirs.get(dir) else {
            return &[];
        };
        let n = d.raw_gaps.partition_point(|&(pos, _)| pos < len);
        &d.raw_gaps[..n]
    }

    /// Marks the chunk given by [`TcpSession::raw_chunk`] (`len` bytes long) inspected,
    /// keeping its last `RAW_OVERLAP` bytes.
    pub fn raw_done(&mut self, dir: usize, len: usize) {
        let Some(d) = self.dirs.get_mut(dir) else {
            return;
        };
        let len = len.min(d.raw.len());
        let keep = len.min(RAW_OVERLAP);
        d.raw.drain(..len - keep);
        d.raw_base += (len - keep) as u64;
        d.shift_raw_gaps(len - keep);
        d.raw_keep = keep;
        d.raw_trigger = false;
        d.raw_now = false;
        // A burst grew the buffer: give the memory back (flows idle with the overlap only).
        if d.raw.capacity() > 16 * 1024 {
            d.raw.shrink_to(4 * 1024);
        }
    }

    /// Frees out-of-order and waiting memory without delivering it.
    pub fn release(&mut self, stats: &mut StreamStats) {
        for d in &mut self.dirs {
            stats.memuse -= d.ooo_bytes + d.wait.len();
            d.ooo_bytes = 0;
            d.ooo.clear();
            d.wait = Vec::new();
            d.wait_segs = Vec::new();
        }
    }
}

impl Dir {
    fn set_base(&mut self, base: u32) {
        self.base = base;
        self.base_set = true;
        self.next = 0;
    }
    /// A gap of `len` bytes: the inspected overlap before it must not join data after it
    /// in a match; its position is remembered for alert payloads.
    fn raw_gap(&mut self, len: u64) {
        let n = self.raw_keep.min(self.raw.len());
        self.raw.drain(..n);
        self.raw_base += n as u64;
        self.raw_keep = 0;
        self.shift_raw_gaps(n);
        let at = self.raw.len();
        match self.raw_gaps.last_mut() {
            Some((pos, lost)) if *pos == at => *lost += len,
            _ => self.raw_gaps.push((at, len)),
        }
    }
    /// `n` bytes were dropped from the front of `raw`: gaps before them are forgotten.
    fn shift_raw_gaps(&mut self, n: usize) {
        if n == 0 || self.raw_gaps.is_empty() {
            return;
        }
        self.raw_gaps.retain_mut(|(pos, _)| {
            let keep = *pos >= n;
            *pos = pos.wrapping_sub(n);
            keep
        });
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
            win: 65535,
            opts: TcpOpts::default(),
        }
    }

    struct Run {
        s: TcpSession,
        cfg: StreamConfig,
        st: StreamStats,
        got: [Vec<u8>; 2],
        gaps: Vec<(usize, u64)>,
        /// The window each direction's packets advertise (`pkt`).
        win: [u16; 2],
    }

    impl Run {
        /// A session started by the client's SYN (ISN 1000), as the engine does it: the
        /// SYN goes through `packet` too (its data counts with TCP Fast Open).
        fn syn(cfg: StreamConfig, syn: &TcpInfo, data: &[u8]) -> Self {
            let mut st = StreamStats::default();
            let s = TcpSession::start(syn, &cfg, &mut st).unwrap();
            let mut r = Run::of(s, cfg, st);
            r.seg(0, syn, data);
            r
        }

        /// A run of session `s`, nothing delivered yet.
        fn of(s: TcpSession, cfg: StreamConfig, st: StreamStats) -> Self {
            Run {
                s,
                cfg,
                st,
                got: Default::default(),
                gaps: vec![],
                win: [65535; 2],
            }
        }
        fn new(cfg: StreamConfig) -> Self {
            // Handshake: client ISN 1000, server ISN 5000.
            let mut r = Run::syn(cfg, &seg(1000, 0, SYN), b"");
            r.pkt(1, 5000, 1001, SYN | ACK, b"");
            r.pkt(0, 1001, 5001, ACK, b"");
            assert_eq!(r.s.state, TcpState::Established);
            r
        }
        fn pkt(&mut self, dir: usize, seq: u32, ack: u32, flags: u8, data: &[u8]) {
            let t = TcpInfo {
                win: self.win[dir & 1],
                ..seg(seq, ack, flags)
            };
            self.seg(dir, &t, data);
        }
        fn seg(&mut self, dir: usize, t: &TcpInfo, data: &[u8]) {
            let (got, gaps) = (&mut self.got, &mut self.gaps);
            self.s
                .packet(dir, t, data, &self.cfg, &mut self.st, &mut |d, c| match c {
                    Chunk::Data(b) => got[d].extend_from_slice(b),
                    Chunk::Gap(n) => gaps.push((d, n)),
                    Chunk::Cut => gaps.push((d, u64::MAX)),
                });
        }
    }

    #[test]
    fn raw_stream_chunks_on_ack_trigger_and_eof_with_overlap() {
        let mut r = Run::new(StreamConfig {
            raw: true,
            ..StreamConfig::default()
        });
        r.pkt(0, 1001, 5001, PSH | ACK, b"GET /a");
        assert!(r.s.last_added);
        // Not acknowledged yet: nothing ready, even on a trigger; always at eof.
        assert_eq!(r.s.raw_chunk(0, true, false), None);
        assert_eq!(r.s.raw_chunk(0, false, true), Some((&b"GET /a"[..], 0)));
        // A retransmission is not added.
        r.pkt(0, 1001, 5001, PSH | ACK, b"GET /a");
        assert!(!r.s.last_added);
        // The server acknowledges 4 of the 6 bytes: below the chunk size, ready on a
        // trigger only, and only up to the acknowledgement.
        r.pkt(1, 5001, 1005, ACK, b"");
        assert_eq!(r.s.raw_chunk(0, false, false), None);
        assert_eq!(r.s.raw_chunk(0, true, false), Some((&b"GET "[..], 0)));
        r.s.raw_done(0, 4);
        // The inspected bytes stay as overlap before the new ones.
        r.pkt(1, 5001, 1007, ACK, b"");
        assert_eq!(r.s.raw_chunk(0, true, false), Some((&b"GET /a"[..], 4)));
        r.s.raw_done(0, 6);
        assert_eq!(r.s.raw_chunk(0, true, false), None);
        // RAW_CHUNK acknowledged bytes are ready without a trigger.
        let big = vec![b'x'; RAW_CHUNK];
        r.pkt(0, 1007, 5001, ACK, &big);
        r.pkt(1, 5001, 1007 + RAW_CHUNK as u32, ACK, b"");
        let (c, new_from) = r.s.raw_chunk(0, false, false).unwrap();
        assert_eq!((c.len(), new_from), (6 + RAW_CHUNK, 6));
        assert_eq!(r.s.raw_offset(0), 0);
        let n = c.len();
        r.s.raw_done(0, n);
        assert_eq!(r.s.dirs[0].raw.len(), RAW_OVERLAP);
        // The next chunk starts at the kept overlap's stream offset.
        assert_eq!(r.s.raw_offset(0), (6 + RAW_CHUNK - RAW_OVERLAP) as u64);
        // A transaction's trigger lasts until the direction's next chunk: bytes
        // acknowledged later are ready without a trigger on their packet.
        r.s.raw_trigger();
        let at = 1007 + RAW_CHUNK as u32;
        r.pkt(0, at, 5001, PSH | ACK, b"tail");
        assert_eq!(r.s.raw_chunk(0, false, false), None);
        r.pkt(1, 5001, at + 4, ACK, b"");
        let (c, new_from) = r.s.raw_chunk(0, false, false).unwrap();
        assert_eq!((&c[new_from..], new_from), (&b"tail"[..], RAW_OVERLAP));
        r.s.raw_done(0, c.len());
        r.pkt(0, at + 4, 5001, PSH | ACK, b"more");
        r.pkt(1, 5001, at + 8, ACK, b"");
        assert_eq!(r.s.raw_chunk(0, false, false), None);
    }

    fn immediate() -> StreamConfig {
        StreamConfig {
            ack_delivery: false,
            ..StreamConfig::default()
        }
    }

    impl Run {
        fn flush(&mut self, log_first: bool) {
            let (got, gaps) = (&mut self.got, &mut self.gaps);
            self.s
                .flush(&self.cfg, &mut self.st, log_first, &mut |d, c| match c {
                    Chunk::Data(b) => got[d].extend_from_slice(b),
                    Chunk::Gap(n) => gaps.push((d, n)),
                    Chunk::Cut => gaps.push((d, u64::MAX)),
                });
            self.s.release(&mut self.st);
        }
    }

    #[test]
    fn app_bytes_wait_for_the_acknowledgement() {
        let mut r = Run::new(StreamConfig::default());
        r.pkt(0, 1001, 5001, PSH | ACK, b"GET / HTTP/1.0\r\n\r\n");
        assert!(r.got[0].is_empty(), "not acknowledged yet");
        assert_eq!(r.st.memuse, 18);
        // The server acknowledges 4 bytes, then answers acknowledging everything.
        r.pkt(1, 5001, 1005, ACK, b"");
        assert_eq!(r.got[0], b"GET ");
        r.pkt(1, 5001, 1019, PSH | ACK, b"HTTP/1.0 200 OK\r\n");
        assert_eq!(r.got[0], b"GET / HTTP/1.0\r\n\r\n");
        assert!(r.got[1].is_empty());
        r.pkt(1, 5018, 1019, PSH | ACK, b"\r\nbody");
        // The client acknowledges the status line only; the flow then times out.
        r.pkt(0, 1019, 5018, ACK, b"");
        assert_eq!(r.got[1], b"HTTP/1.0 200 OK\r\n");
        r.flush(false);
        assert_eq!(
            r.got[1], b"HTTP/1.0 200 OK\r\n\r\nbody",
            "flow end gives the rest"
        );
        assert_eq!(r.st.memuse, 0);
    }

    #[test]
    fn flow_end_gives_the_to_server_rest_and_a_reset_its_sender_bytes() {
        // Unacknowledged to-server bytes go to the app layer at flow end.
        let mut r = Run::new(StreamConfig::default());
        r.pkt(0, 1001, 5001, PSH | ACK, b"hello");
        r.pkt(1, 5001, 1001, PSH | ACK, b"banner");
        r.pkt(0, 1006, 5003, ACK, b"");
        r.flush(true);
        // Logged at the to-server end: the unacknowledged to-client rest is dropped.
        assert_eq!((&r.got[0][..], &r.got[1][..]), (&b"hello"[..], &b"ba"[..]));
        // A reset releases its sender's bytes; the to-client rest comes at flow end unless
        // the app layer logged first.
        let mut r = Run::new(StreamConfig::default());
        r.pkt(1, 5001, 1001, PSH | ACK, b"220 ready");
        r.pkt(0, 1001, 5001, PSH | ACK, b"QUIT");
        r.pkt(0, 1005, 5001, RST | ACK, b"");
        assert_eq!(r.s.state, TcpState::Closed);
        assert_eq!(r.got[0], b"QUIT");
        assert!(r.got[1].is_empty());
        r.flush(false);
        assert_eq!(r.got[1], b"220 ready");
        assert_eq!(r.st.memuse, 0);
    }

    #[test]
    fn waiting_bytes_past_the_memcap_go_through() {
        let mut r = Run::new(StreamConfig {
            memcap: 8,
            ..StreamConfig::default()
        });
        r.pkt(0, 1001, 5001, ACK, b"abcd");
        assert!(r.got[0].is_empty());
        r.pkt(0, 1005, 5001, ACK, b"efghijkl");
        assert_eq!(r.got[0], b"abcdefghijkl");
        assert_eq!(r.st.memuse, 0);
    }

    #[test]
    fn in_order_out_of_order_retransmission_and_overlap() {
        let mut r = Run::new(immediate());
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
        // A client hole of 4 bytes, never filled, but acknowledged past by the server
        // after the segment behind it arrived: a gap at flow end.
        r.pkt(0, 1005, 5013, ACK, b"late");
        r.pkt(1, 5013, 1009, ACK, b"");
        // A server hole nobody acknowledged: the direction stops there (Suricata waits
        // for it to fill), what lies behind it is dropped.
        r.pkt(1, 5020, 1009, ACK, b"never");
        r.flush(false);
        assert_eq!(r.gaps, vec![(1, 6), (0, 4), (1, u64::MAX)]);
        assert_eq!(r.got[0], b"late");
        assert_eq!(r.got[1], b"abcxyz");
        assert_eq!(r.st.memuse, 0);
    }

    #[test]
    fn raw_stream_remembers_its_gaps() {
        let cfg = StreamConfig {
            raw: true,
            ..StreamConfig::default()
        };
        // A leading gap (the first 4 bytes lost), then one inside the data.
        let mut r = Run::new(cfg);
        r.pkt(0, 1005, 5001, ACK, b"GOOD");
        r.pkt(0, 1009, 5001, ACK, b"DATA");
        r.pkt(0, 1017, 5001, ACK, b"MORE");
        r.pkt(1, 5001, 1021, ACK, b"");
        let (chunk, _) = r.s.raw_chunk(0, false, true).unwrap();
        assert_eq!(chunk, b"GOODDATAMORE");
        assert_eq!(r.s.raw_gaps(0, chunk.len()), &[(0, 4), (8, 4)]);
        assert_eq!(r.s.raw_gaps(0, 8), &[(0, 4)], "only those inside the chunk");
        // Inspected: the bytes stay as the overlap for the next chunk, with their gaps.
        r.s.raw_done(0, 12);
        r.pkt(0, 1021, 5001, ACK, b"TAIL");
        r.pkt(1, 5001, 1025, ACK, b"");
        let (chunk, _) = r.s.raw_chunk(0, false, true).unwrap();
        assert_eq!(chunk, b"GOODDATAMORETAIL");
        assert_eq!(r.s.raw_gaps(0, chunk.len()), &[(0, 4), (8, 4)]);
        r.s.raw_done(0, 16);
        // A new gap drops the overlap (no match across it), and the old gaps with it.
        r.pkt(0, 1030, 5001, ACK, b"X");
        r.pkt(1, 5001, 1031, ACK, b"");
        let (chunk, _) = r.s.raw_chunk(0, false, true).unwrap();
        assert_eq!(chunk, b"X");
        assert_eq!(r.s.raw_gaps(0, chunk.len()), &[(0, 5)]);
    }

    #[test]
    fn depth_limits_delivery() {
        let mut r = Run::new(StreamConfig {
            depth: 5,
            ..immediate()
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
        // Client closes first (Suricata names it from the server's side: CLOSE_WAIT).
        r.pkt(0, 1001, 5001, FIN | ACK, b"");
        assert_eq!(r.s.state, TcpState::CloseWait);
        r.pkt(1, 5001, 1002, ACK, b"");
        assert_eq!(r.s.state, TcpState::CloseWait);
        r.pkt(1, 5001, 1002, FIN | ACK, b"");
        assert_eq!(r.s.state, TcpState::LastAck);
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
        assert_eq!(r.s.state, TcpState::FinWait1);
        r.pkt(0, 1001, 5005, ACK, b"");
        assert_eq!(r.s.state, TcpState::FinWait2);
        r.pkt(0, 1001, 5005, FIN | ACK, b"");
        assert_eq!(r.s.state, TcpState::TimeWait);
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
        let cfg = immediate();
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

    #[test]
    fn handshake_checks_isn_and_acks() {
        // A SYN flood on one tuple: SYNs with other ISNs do not replace the first one, so
        // a SYN/ACK for a later SYN is ignored (sv 100.73.5.8:45511: Suricata stays in
        // SYN_SENT).
        let mut r = Run::syn(StreamConfig::default(), &seg(1000, 0, SYN), b"");
        r.pkt(0, 777, 0, SYN, b"");
        r.pkt(1, 5000, 778, SYN | ACK, b"");
        assert_eq!(r.s.state, TcpState::SynSent);
        r.pkt(1, 5000, 1001, SYN | ACK, b"");
        assert_eq!(r.s.state, TcpState::SynRecv);
        // The client's ACK must acknowledge the SYN/ACK (a wrong one is an evasion
        // attempt for Suricata) and not be behind the client's next sequence number.
        r.pkt(0, 1001, 4000, ACK, b"GET /");
        r.pkt(0, 1000, 5001, ACK, b"");
        assert_eq!(r.s.state, TcpState::SynRecv);
        r.pkt(0, 1001, 5001, ACK, b"GET /");
        assert_eq!(r.s.state, TcpState::Established);
        r.pkt(1, 5001, 1006, ACK, b"");
        assert_eq!(r.got[0], b"GET /");
        // SYN/ACKs with two ISNs (sv 192.168.0.45:51615): the client's ACK picks one.
        let mut r = Run::syn(StreamConfig::default(), &seg(1000, 0, SYN), b"");
        r.pkt(1, 5000, 1001, SYN | ACK, b"");
        r.pkt(1, 90000, 1001, SYN | ACK, b"");
        r.pkt(1, 70000, 999, SYN | ACK, b"");
        r.pkt(0, 1001, 70001, ACK, b"");
        assert_eq!(r.s.state, TcpState::SynRecv, "not a SYN/ACK for this SYN");
        r.pkt(0, 1001, 90001, ACK, b"x");
        assert_eq!(r.s.state, TcpState::Established);
        r.pkt(1, 90001, 1002, ACK, b"y");
        r.pkt(0, 1002, 90002, ACK, b"");
        assert_eq!((&r.got[0][..], &r.got[1][..]), (&b"x"[..], &b"y"[..]));
        // A lost handshake ACK: the client's first data segment completes it.
        let mut r = Run::syn(StreamConfig::default(), &seg(1000, 0, SYN), b"");
        r.pkt(1, 5000, 1001, SYN | ACK, b"");
        r.pkt(0, 1001, 5001, PSH | ACK, b"hi");
        assert_eq!(r.s.state, TcpState::Established);
    }

    #[test]
    fn server_data_before_the_handshake_ack() {
        // The server speaks first (SMTP banner) before the client's last handshake ACK
        // is seen: its segment fits exactly after the SYN/ACK, so the session is
        // established and the banner is stream data, not a gap.
        let mut r = Run::syn(StreamConfig::default(), &seg(1000, 0, SYN), b"");
        r.pkt(1, 5000, 1001, SYN | ACK, b"");
        assert_eq!(r.s.state, TcpState::SynRecv);
        r.pkt(1, 5001, 1001, PSH | ACK, b"220 mx ready\r\n");
        assert_eq!(r.s.state, TcpState::Established);
        r.pkt(0, 1001, 5015, ACK, b"");
        r.pkt(0, 1001, 5015, PSH | ACK, b"EHLO x\r\n");
        r.pkt(1, 5015, 1010, ACK, b"");
        assert_eq!(r.got[1], b"220 mx ready\r\n");
        assert_eq!(r.got[0], b"EHLO x\r\n");
        assert!(r.gaps.is_empty());
        // Adversarial: a server segment with the wrong ACK, one past the SYN/ACK's next
        // sequence number, and a second SYN/ACK do not establish the session.
        for (sq, ak, fl) in [
            (5001, 1002, ACK),
            (5001, 999, ACK),
            (5002, 1001, ACK),
            (5000, 1001, SYN | ACK),
        ] {
            let mut r = Run::syn(StreamConfig::default(), &seg(1000, 0, SYN), b"");
            r.pkt(1, 5000, 1001, SYN | ACK, b"");
            r.pkt(1, sq, ak, fl, b"evil");
            assert_eq!(r.s.state, TcpState::SynRecv, "{sq} {ak} {fl}");
            r.flush(false);
            assert!(r.got[1].is_empty());
        }
    }

    fn tfo_syn() -> TcpInfo {
        TcpInfo {
            opts: TcpOpts {
                tfo: true,
                ..TcpOpts::default()
            },
            ..seg(1000, 0, SYN)
        }
    }

    #[test]
    fn async_one_sided_session_from_a_syn_ack() {
        let cfg = StreamConfig {
            async_oneside: true,
            ..StreamConfig::default()
        };
        let mut st = StreamStats::default();
        let synack = seg(5000, 1001, SYN | ACK);
        assert!(TcpSession::start(&synack, &StreamConfig::default(), &mut st).is_none());
        assert!(TcpSession::start(&seg(5001, 1001, ACK), &cfg, &mut st).is_none());
        let mut s = TcpSession::start(&synack, &cfg, &mut st).unwrap();
        s.reverse();
        let mut r = Run::of(s, cfg, st);
        // The server's bytes go through without the client's acknowledgement.
        r.pkt(1, 5001, 1001, PSH | ACK, b"HTTP/1.1 200 OK\r\n");
        assert_eq!(r.got[1], b"HTTP/1.1 200 OK\r\n");
    }

    #[test]
    fn four_way_split_handshake() {
        // SYN, the server's own SYN, the client's SYN/ACK, the server's ACK.
        let mut r = Run::syn(StreamConfig::default(), &seg(1000, 0, SYN), b"");
        r.pkt(1, 2000, 1001, ACK, b"");
        r.pkt(1, 3000, 0, SYN, b"");
        assert_eq!(r.s.state, TcpState::SynSent);
        r.pkt(0, 1000, 3002, SYN | ACK, b"");
        assert!(r.s.events.contains(StreamEvent::FourWhsSynackWithWrongAck));
        r.pkt(0, 999, 3001, SYN | ACK, b"");
        assert!(r.s.events.contains(StreamEvent::FourWhsSynackWithWrongSyn));
        r.pkt(0, 1000, 3001, SYN | ACK, b"");
        assert_eq!(r.s.state, TcpState::SynRecv);
        r.pkt(1, 3001, 1001, ACK, b"");
        assert_eq!(r.s.state, TcpState::Established);
        r.pkt(0, 1001, 3001, ACK, b"EVIL");
        r.pkt(1, 3001, 1005, ACK, b"");
        assert_eq!(r.got[0], b"EVIL");
    }

    #[test]
    fn tcp_fast_open_syn_data_is_a_raw_chunk_on_the_syn() {
        let cfg = StreamConfig {
            raw: true,
            ..StreamConfig::default()
        };
        let mut r = Run::syn(cfg, &tfo_syn(), b"GET /");
        let (chunk, new_from) = r.s.raw_chunk(0, false, false).unwrap();
        assert_eq!((chunk, new_from), (&b"GET /"[..], 0));
        r.s.raw_done(0, chunk.len());
        // Later bytes wait for their acknowledgement as usual.
        r.pkt(1, 5000, 1006, SYN | ACK, b"");
        r.pkt(0, 1006, 5001, ACK, b" HTTP/1.1\r\n");
        assert!(r.s.raw_chunk(0, false, false).is_none());
    }

    #[test]
    fn tcp_fast_open_syn_data() {
        // The SYN carries the TFO option and the request; the SYN/ACK acknowledges it.
        let mut r = Run::syn(StreamConfig::default(), &tfo_syn(), b"GET / HTTP/1.1\r\n");
        r.pkt(1, 5000, 1017, SYN | ACK, b"");
        assert_eq!(r.got[0], b"", "waits for the acknowledgement");
        r.pkt(0, 1017, 5001, ACK, b"\r\n");
        assert_eq!(r.s.state, TcpState::Established);
        r.pkt(1, 5001, 1019, PSH | ACK, b"HTTP/1.1 200 OK\r\n");
        assert_eq!(r.got[0], b"GET / HTTP/1.1\r\n\r\n");
        // A retransmitted TFO SYN does not add its data twice.
        let mut r = Run::syn(StreamConfig::default(), &tfo_syn(), b"abc");
        r.seg(0, &tfo_syn(), b"abc");
        r.pkt(1, 5000, 1004, SYN | ACK, b"");
        r.pkt(0, 1004, 5001, ACK, b"def");
        r.pkt(1, 5001, 1007, ACK, b"");
        assert_eq!(r.got[0], b"abcdef");
        assert_eq!(r.st.retransmissions, 1);
        // The server accepts the SYN but not its data (acknowledges ISN + 1): the data is
        // dropped and the client's retransmission of it is the stream's start.
        let mut r = Run::syn(StreamConfig::default(), &tfo_syn(), b"lost");
        r.pkt(1, 5000, 1001, SYN | ACK, b"");
        assert_eq!(r.s.state, TcpState::SynRecv);
        assert_eq!(r.st.memuse, 0);
        r.pkt(0, 1001, 5001, ACK, b"sent");
        r.pkt(1, 5001, 1005, ACK, b"");
        assert_eq!(r.got[0], b"sent");
        // A SYN/ACK acknowledging something else is ignored.
        let mut r = Run::syn(StreamConfig::default(), &tfo_syn(), b"abc");
        r.pkt(1, 5000, 1002, SYN | ACK, b"");
        assert_eq!(r.s.state, TcpState::SynSent);
        r.flush(false);
        assert_eq!(r.st.memuse, 0);
    }

    #[test]
    fn syn_data_without_fast_open_is_not_stream_data() {
        // Without the TFO option the SYN's data is ignored, and a SYN/ACK acknowledging it
        // does not acknowledge the SYN (Suricata: SYNACK_WITH_WRONG_ACK), so the session
        // never gets established.
        let mut r = Run::syn(StreamConfig::default(), &seg(1000, 0, SYN), b"GET /");
        r.pkt(1, 5000, 1006, SYN | ACK, b"");
        assert_eq!(r.s.state, TcpState::SynSent);
        r.pkt(0, 1006, 5001, ACK, b" HTTP/1.0\r\n\r\n");
        r.pkt(1, 5001, 1021, ACK, b"");
        r.flush(false);
        assert!(r.got[0].is_empty());
        // A SYN/ACK for the SYN alone is fine.
        let mut r = Run::syn(StreamConfig::default(), &seg(1000, 0, SYN), b"GET /");
        r.pkt(1, 5000, 1001, SYN | ACK, b"");
        assert_eq!(r.s.state, TcpState::SynRecv);
    }

    #[test]
    fn the_reset_sender_goes_on() {
        // The server refuses the SYN, then answers it after all (RST/ACK, FIN/ACK, the
        // client's RST, SYN/ACK): the server's packets are processed in the state before
        // the RST, so the handshake completes and the request is stream data.
        let mut r = Run::syn(StreamConfig::default(), &seg(1000, 0, SYN), b"");
        r.pkt(1, 0, 1001, RST | ACK, b"");
        assert_eq!(r.s.state, TcpState::Closed);
        assert!(r.s.events.is_empty());
        r.pkt(0, 1000, 0, SYN, b"");
        assert_eq!(r.s.state, TcpState::Closed, "the refused side is ignored");
        // The refusing side goes on: its RST looks injected, the session resumes.
        r.pkt(1, 0, 1001, FIN | ACK, b"");
        assert_eq!(r.s.state, TcpState::SynSent);
        assert!(r.s.events.contains(StreamEvent::SuspectedRstInject));
        r.pkt(1, 5000, 1001, SYN | ACK, b"");
        assert!(r.s.events.is_empty());
        assert_eq!(r.s.state, TcpState::SynRecv);
        r.pkt(0, 1001, 5001, ACK, b"GET / HTTP/1.0\r\n\r\n");
        r.pkt(1, 5001, 1019, ACK, b"");
        assert_eq!(r.s.state, TcpState::Established);
        assert_eq!(r.got[0], b"GET / HTTP/1.0\r\n\r\n");
        // A RST after the SYN/ACK or in an established session ends it for both sides.
        let mut r = Run::syn(StreamConfig::default(), &seg(1000, 0, SYN), b"");
        r.pkt(1, 5000, 1001, SYN | ACK, b"");
        r.pkt(0, 1001, 5001, RST, b"");
        r.pkt(0, 1001, 5001, ACK, b"GET /");
        assert_eq!(r.s.state, TcpState::Closed);
        let mut r = Run::new(StreamConfig::default());
        r.pkt(0, 1001, 5001, RST | ACK, b"");
        r.pkt(1, 5001, 1001, PSH | ACK, b"late");
        r.pkt(0, 1001, 5001, PSH | ACK, b"more");
        assert_eq!(r.s.state, TcpState::Closed);
        r.flush(false);
        assert!(r.got[0].is_empty() && r.got[1].is_empty());
        // So does a normal close.
        let mut r = Run::new(StreamConfig::default());
        r.pkt(0, 1001, 5001, FIN | ACK, b"");
        r.pkt(1, 5001, 1002, FIN | ACK, b"");
        r.pkt(0, 1002, 5002, ACK, b"");
        assert_eq!(r.s.state, TcpState::Closed);
        r.pkt(0, 1002, 5002, RST, b"");
        r.pkt(0, 1002, 5002, PSH | ACK, b"x");
        assert_eq!(r.s.state, TcpState::Closed);
    }

    #[test]
    fn syn_sent_server_timestamp_echo_must_match_the_syn() {
        // The SYN has no timestamp: a server RST and FIN echoing one are ignored (an
        // evasion: the session is not closed), each raising pkt_invalid_timestamp.
        let ts = |mut t: TcpInfo, val: u32, echo: u32| {
            t.opts.timestamp = Some((val, echo));
            t
        };
        let mut r = Run::syn(StreamConfig::default(), &seg(1000, 0, SYN), b"");
        r.seg(1, &ts(seg(0, 1001, RST | ACK), 100, 100), b"");
        assert_eq!(r.s.state, TcpState::SynSent);
        assert!(r.s.events.contains(StreamEvent::PktInvalidTimestamp));
        r.seg(1, &ts(seg(0, 1001, FIN | ACK), 100, 100), b"");
        assert!(r.s.events.contains(StreamEvent::PktInvalidTimestamp));
        r.seg(1, &ts(seg(5000, 1001, SYN | ACK), 100, 0), b"");
        assert!(r.s.events.is_empty(), "an echo of 0 is fine");
        assert_eq!(r.s.state, TcpState::SynRecv);
        // The SYN has timestamp 7: the echo must be 7 (or 0).
        let mut r = Run::syn(StreamConfig::default(), &ts(seg(1000, 0, SYN), 7, 0), b"");
        r.seg(1, &ts(seg(5000, 1001, SYN | ACK), 50, 8), b"");
        assert!(r.s.events.contains(StreamEvent::PktInvalidTimestamp));
        assert_eq!(r.s.state, TcpState::SynSent);
        r.seg(1, &ts(seg(5000, 1001, SYN | ACK), 50, 7), b"");
        assert_eq!(r.s.state, TcpState::SynRecv);
        // A resent SYN's timestamp is the one the SYN/ACK echoes.
        let mut r = Run::syn(StreamConfig::default(), &ts(seg(1000, 0, SYN), 7, 0), b"");
        r.seg(0, &ts(seg(1000, 0, SYN), 9, 0), b"");
        r.seg(1, &ts(seg(5000, 1001, SYN | ACK), 50, 9), b"");
        assert!(r.s.events.is_empty());
        assert_eq!(r.s.state, TcpState::SynRecv);
    }

    #[test]
    fn a_reset_with_an_auth_option_followed_by_its_sender_is_suspected_injected() {
        let auth = |mut t: TcpInfo| {
            t.opts.auth = true;
            t
        };
        // The client's RST carries an MD5 signature, then the client sends its request
        // anyway: suspected_rst_inject on that packet, the session goes on.
        let mut r = Run::new(StreamConfig::default());
        r.seg(0, &auth(seg(1001, 5001, RST | ACK)), b"");
        assert_eq!(r.s.state, TcpState::Closed);
        r.pkt(1, 5001, 1001, ACK, b"");
        assert_eq!(r.s.state, TcpState::Closed, "the receiver is ignored");
        r.pkt(0, 1001, 5001, PSH | ACK, b"GET /");
        assert!(r.s.events.contains(StreamEvent::SuspectedRstInject));
        assert_eq!(r.s.state, TcpState::Established);
        r.pkt(1, 5001, 1006, ACK, b"");
        assert!(r.s.events.is_empty());
        assert_eq!(r.got[0], b"GET /");
        // Without the option the RST is final and nothing is raised.
        let mut r = Run::new(StreamConfig::default());
        r.pkt(0, 1001, 5001, RST | ACK, b"");
        r.pkt(0, 1001, 5001, PSH | ACK, b"GET /");
        assert!(r.s.events.is_empty());
        assert_eq!(r.s.state, TcpState::Closed);
    }

    #[test]
    fn handshake_and_window_violations_raise_stream_events() {
        let mut r = Run::syn(StreamConfig::default(), &seg(1000, 0, SYN), b"");
        r.pkt(1, 5000, 1234, SYN | ACK, b"");
        assert!(r.s.events.contains(StreamEvent::SynackWithWrongAck));
        assert_eq!(r.s.state, TcpState::SynSent);
        r.pkt(1, 5000, 1001, SYN | ACK, b"");
        r.pkt(0, 1001, 5001, ACK, b"");
        assert!(r.s.events.is_empty());
        // Acknowledging far past what the server could have sent.
        r.pkt(0, 1001, 5001 + 200_000, ACK, b"");
        assert!(r.s.events.contains(StreamEvent::EstInvalidAck));
        // Data past the server's advertised window.
        r.pkt(0, 1001 + 70_000, 5001, ACK, b"x");
        assert!(r.s.events.contains(StreamEvent::EstPacketOutOfWindow));
        r.pkt(0, 1001, 5001, FIN | ACK, b"");
        r.pkt(1, 5001, 1001 + 200_000, ACK, b"");
        assert!(r.s.events.contains(StreamEvent::CloseWaitInvalidAck));
    }

    /// The client's segments `(relative offset, bytes)` in arrival order, then the
    /// server acknowledges everything: the bytes the app layer gets.
    fn overlapped(cfg: StreamConfig, segs: &[(u32, &[u8])]) -> Vec<u8> {
        let mut r = Run::new(cfg);
        let mut end = 0;
        for &(rel, b) in segs {
            r.pkt(0, 1001 + rel, 5001, ACK, b);
            end = end.max(rel + b.len() as u32);
        }
        r.pkt(1, 5001, 1001 + end, ACK, b"");
        r.flush(false);
        assert_eq!(r.st.memuse, 0);
        std::mem::take(&mut r.got[0])
    }

    #[test]
    fn overlap_policy_bsd_each_shape() {
        let d = StreamConfig::default;
        // Old segment "BBBBBBBB" at 4..12 after "aaaa" at 0..4; each new segment arrives
        // while those bytes still wait for their acknowledgement.
        let base: [(u32, &[u8]); 2] = [(0, b"aaaa"), (4, b"BBBBBBBB")];
        let with = |new: (u32, &'static [u8])| {
            let mut v = base.to_vec();
            v.push(new);
            overlapped(d(), &v)
        };
        // Same start, shorter: the old bytes stay.
        assert_eq!(with((4, b"xxxx")), b"aaaaBBBBBBBB");
        // Same start, longer: the old bytes stay, the new tail is added.
        assert_eq!(with((4, b"xxxxxxxxxx")), b"aaaaBBBBBBBBxx");
        // Starts before the old segment, ends inside it: the new bytes replace the old
        // segment's (not those of "aaaa", which starts before the new one).
        assert_eq!(with((2, b"xxxxxx")), b"aaaaxxxxBBBB");
        // Starts before and covers it entirely, and beyond.
        assert_eq!(with((3, b"xxxxxxxxxxxx")), b"aaaaxxxxxxxxxxx");
        // Starts inside the old segment, ends inside it: the old bytes stay.
        assert_eq!(with((6, b"xxxx")), b"aaaaBBBBBBBB");
        // Starts inside, ends after: the old bytes stay, the new tail is added.
        assert_eq!(with((10, b"xxxx")), b"aaaaBBBBBBBBxx");
        // A retransmission of both with other bytes: "aaaa" starts with it and stays,
        // the segment starting after it is replaced.
        assert_eq!(with((0, b"xxxxxxxxxxxx")), b"aaaaxxxxxxxx");
        // The same shapes between out-of-order segments (a hole at 0..2 filled last).
        let ooo = |new: (u32, &'static [u8])| {
            overlapped(d(), &[(4, b"BBBBBBBB"), new, (0, b"aa"), (2, b"aa")])
        };
        assert_eq!(ooo((4, b"xxxx")), b"aaaaBBBBBBBB");
        assert_eq!(ooo((4, b"xxxxxxxxxx")), b"aaaaBBBBBBBBxx");
        // ("aa" at 2..4 starts before the new segment: its byte at 3 wins.)
        assert_eq!(ooo((3, b"xxxxxx")), b"aaaaxxxxxBBB");
        assert_eq!(ooo((6, b"xxxx")), b"aaaaBBBBBBBB");
        assert_eq!(ooo((10, b"xxxx")), b"aaaaBBBBBBBBxx");
        // Bytes already handed to the app layer never change (acknowledged first, or
        // immediate delivery).
        let mut r = Run::new(d());
        r.pkt(0, 1001, 5001, ACK, b"aaaa");
        r.pkt(0, 1005, 5001, ACK, b"BBBB");
        r.pkt(1, 5001, 1005, ACK, b"");
        r.pkt(0, 1001, 5001, ACK, b"xxxxxxxx");
        r.pkt(1, 5001, 1009, ACK, b"");
        assert_eq!(
            r.got[0], b"aaaaxxxx",
            "only the unacknowledged half changed"
        );
        assert_eq!(
            overlapped(immediate(), &[(0, b"aaaa"), (4, b"BBBB"), (2, b"xxxxxx")]),
            b"aaaaBBBB"
        );
    }

    #[test]
    fn overlap_policy_adversarial() {
        // Thousands of one-byte segments each overlapped by a two-byte one starting one
        // before it: bounded bookkeeping, every byte delivered once, memory returned.
        let mut r = Run::new(StreamConfig::default());
        for i in 0..5000u32 {
            r.pkt(0, 1001 + i, 5001, ACK, b"a");
            if i > 0 {
                r.pkt(0, 1000 + i, 5001, ACK, b"xy");
            }
        }
        assert!(r.s.dirs[0].wait_segs.len() <= MAX_WAIT_SEGS);
        r.pkt(1, 5001, 1001 + 5000, ACK, b"");
        assert_eq!(r.got[0].len(), 5000);
        assert_eq!(r.st.memuse, 0);
        assert!(r.s.dirs[0].wait_segs.is_empty());
        // Overlaps across the sequence number wrap.
        let mut st = StreamStats::default();
        let cfg = StreamConfig::default();
        let mut s = TcpSession::start(&seg(u32::MAX - 4, 0, SYN), &cfg, &mut st).unwrap();
        let mut got = Vec::new();
        let mut sink = |_: usize, c: Chunk<'_>| {
            if let Chunk::Data(b) = c {
                got.extend_from_slice(b)
            }
        };
        s.packet(
            1,
            &seg(9, u32::MAX - 3, SYN | ACK),
            b"",
            &cfg,
            &mut st,
            &mut sink,
        );
        s.packet(
            0,
            &seg(u32::MAX - 3, 10, ACK),
            b"aaaa",
            &cfg,
            &mut st,
            &mut sink,
        );
        s.packet(0, &seg(1, 10, ACK), b"BBBB", &cfg, &mut st, &mut sink);
        s.packet(
            0,
            &seg(u32::MAX - 1, 10, ACK),
            b"xxxxxx",
            &cfg,
            &mut st,
            &mut sink,
        );
        s.packet(1, &seg(10, 5, ACK), b"", &cfg, &mut st, &mut sink);
        assert_eq!(got, b"aaaaxxxxB");
    }

    /// A handshake with the given windows and window-scale options: client ISN 1000,
    /// server ISN 5000.
    fn windowed(syn: (u16, Option<u8>), synack: (u16, Option<u8>)) -> Run {
        let mut t = seg(1000, 0, SYN);
        (t.win, t.opts.wscale) = syn;
        let mut r = Run::syn(immediate(), &t, b"");
        let mut t = seg(5000, 1001, SYN | ACK);
        (t.win, t.opts.wscale) = synack;
        r.seg(1, &t, b"");
        r
    }

    fn with_win(seq: u32, ack: u32, flags: u8, win: u16) -> TcpInfo {
        TcpInfo {
            win,
            ..seg(seq, ack, flags)
        }
    }

    #[test]
    fn data_past_the_receivers_window_is_ignored() {
        // The client's SYN offers a 100-byte window and never scales.
        let mut r = windowed((100, None), (1000, None));
        r.win = [100, 1000];
        r.pkt(0, 1001, 5001, ACK, b"");
        assert_eq!(r.s.state, TcpState::Established);
        r.pkt(0, 1001, 5001, PSH | ACK, b"GET");
        r.pkt(1, 5001, 1004, ACK, &[b'a'; 60]);
        // Ends at 5001 + 100: the edge itself is in the window.
        r.pkt(1, 5061, 1004, ACK, &[b'b'; 40]);
        // One byte past the edge: the whole segment is dropped.
        r.pkt(1, 5101, 1004, ACK, b"c");
        assert_eq!(r.got[1].len(), 100);
        assert_eq!(r.st.out_of_window, 1);
        // The client acknowledges 50 bytes: the edge moves to 5051 + 100; a later
        // smaller window never moves it back.
        r.pkt(0, 1004, 5051, ACK, b"");
        r.seg(0, &with_win(1004, 5061, ACK, 10), b"");
        r.pkt(1, 5101, 1004, ACK, &[b'c'; 50]);
        r.pkt(1, 5151, 1004, ACK, b"d");
        assert_eq!(r.got[1].len(), 150);
        assert_eq!(r.st.out_of_window, 2);
    }

    #[test]
    fn acks_past_the_peers_window_make_the_packet_ignored() {
        let mut r = windowed((100, None), (1000, None));
        r.win = [100, 1000];
        r.pkt(0, 1001, 5001, ACK, b"");
        r.pkt(0, 1001, 5001, PSH | ACK, b"GET /1");
        r.pkt(1, 5001, 1007, ACK, &[b'a'; 100]);
        // Out of window, not seen.
        r.pkt(1, 5101, 1007, ACK, &[b'b'; 100]);
        // The client acknowledges all 200 bytes: past the server's edge (5101), so the
        // packet (with its request) is ignored, and so is every later one like it.
        r.pkt(0, 1007, 5201, PSH | ACK, b"GET /2");
        r.pkt(0, 1013, 5201, PSH | ACK, b"GET /3");
        assert_eq!(r.got[0], b"GET /1");
        assert_eq!(r.st.invalid_ack, 2);
        // An ACK at the edge is fine.
        r.pkt(0, 1007, 5101, PSH | ACK, b"GET /2");
        assert_eq!(r.got[0], b"GET /1GET /2");
        // An ACK more than a window behind the last one is not.
        r.seg(0, &with_win(1013, 4000, ACK, 100), b"x");
        assert_eq!(r.got[0], b"GET /1GET /2");
        assert_eq!(r.st.invalid_ack, 3);
    }

    #[test]
    fn window_scale_applies_only_when_both_syns_carry_it() {
        // Both sides scale: the client's 100 << 4 = 1600 bytes after the handshake.
        let mut r = windowed((100, Some(4)), (100, Some(2)));
        r.win = [100, 100];
        r.pkt(0, 1001, 5001, ACK, b"");
        r.pkt(1, 5001, 1001, ACK, &[b'a'; 1600]);
        r.pkt(1, 6601, 1001, ACK, b"b");
        assert_eq!((r.got[1].len(), r.st.out_of_window), (1600, 1));
        // The server's window of 100 << 2 bounds the client.
        r.pkt(0, 1001, 5001, ACK, &[b'c'; 400]);
        r.pkt(0, 1401, 5001, ACK, b"d");
        assert_eq!((r.got[0].len(), r.st.out_of_window), (400, 2));
        // Only the client offers scaling: no side scales.
        let mut r = windowed((100, Some(4)), (100, None));
        r.win = [100, 100];
        r.pkt(0, 1001, 5001, ACK, b"");
        r.pkt(1, 5001, 1001, ACK, &[b'a'; 101]);
        assert_eq!((r.got[1].len(), r.st.out_of_window), (0, 1));
        // A shift above RFC 7323's 14 counts as 14 (no overflow).
        let mut r = windowed((65535, Some(255)), (65535, Some(255)));
        r.seg(0, &with_win(1001, 5001, ACK, 65535), b"");
        r.pkt(1, 5001, 1001, ACK, &[b'a'; 3000]);
        assert_eq!((r.got[1].len(), r.st.out_of_window), (3000, 0));
    }

    #[test]
    fn zero_window_probe_and_the_syn_window_before_the_handshake_ack() {
        let mut r = windowed((4, None), (1000, None));
        r.win = [0, 1000];
        // The server's first segment completes the handshake (its ACK was missed): the
        // SYN's window bounds it.
        r.pkt(1, 5001, 1001, ACK, b"abcd");
        assert_eq!(r.s.state, TcpState::Established);
        r.pkt(0, 1001, 5005, ACK, b"");
        // The window is closed: a one-byte probe passes, more does not.
        r.pkt(1, 5005, 1001, ACK, b"e");
        r.pkt(1, 5005, 1001, ACK, b"ef");
        assert_eq!(r.got[1], b"abcde");
        assert_eq!(r.st.out_of_window, 1);
    }

    #[test]
    fn midstream_sessions_have_no_window_checks() {
        let cfg = StreamConfig {
            midstream: true,
            ..immediate()
        };
        let mut st = StreamStats::default();
        let t = with_win(1000, 5000, ACK, 1);
        let mut s = TcpSession::start(&t, &cfg, &mut st).unwrap();
        let mut got = Vec::new();
        for (dir, t, data) in [
            (0, t, &b"request"[..]),
            (1, with_win(5000, 1007, ACK, 1), &[b'r'; 5000][..]),
            (0, with_win(1007, 99_999, ACK, 1), &b"next"[..]),
        ] {
            s.packet(dir, &t, data, &cfg, &mut st, &mut |_, c| {
                if let Chunk::Data(b) = c {
                    got.extend_from_slice(b)
                }
            });
        }
        assert_eq!(got.len(), 7 + 5000 + 4);
        assert_eq!((st.out_of_window, st.invalid_ack), (0, 0));
    }

    #[test]
    fn window_edges_across_sequence_wraparound() {
        // Client ISN just below 2^32: the edge wraps.
        let mut t = seg(u32::MAX - 10, 0, SYN);
        t.win = 50;
        let mut r = Run::syn(immediate(), &t, b"");
        r.win = [50, 30];
        let mut sa = seg(7, u32::MAX - 9, SYN | ACK);
        sa.win = 30;
        r.seg(1, &sa, b"");
        r.pkt(0, u32::MAX - 9, 8, ACK, b"");
        assert_eq!(r.s.state, TcpState::Established);
        // 30 bytes fit from ISN + 1 = 2^32 - 10: the edge is 20, after the wrap.
        r.pkt(0, u32::MAX - 9, 8, ACK, &[b'a'; 30]);
        r.pkt(0, 20, 8, ACK, b"b");
        assert_eq!((r.got[0].len(), r.st.out_of_window), (30, 1));
        r.pkt(1, 8, 20, ACK, &[b'c'; 50]);
        assert_eq!(r.got[1].len(), 50);
    }
}
