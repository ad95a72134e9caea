//! Evaluation: the prefilter of a signature group, header and flow checks, and the
//! payload programs (content chains with Suricata's relative backtracking, pcre, byte_*,
//! isdataat, bsize).

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use khien_rules::{
    ByteExtract, ByteJump, ByteMath, ByteTest, Cmp, Content, Endian, NumBase, NumOrVar, Pcre,
    TcpFlags, Transform, VarScope,
};

use crate::compile::{
    AddrIndex, BufProg, FlowAct, FlowCond, Op, PktCheck, PortIndex, Searcher, Sig,
};
use crate::hs;
use crate::{Dir, FlowVars, PacketInfo, Prefilter, TxBuffers};

/// Suricata's inspection-recursion limit: bounds backtracking on hostile input.
const MAX_STEPS: u32 = 3000;

/// Bytes of a fast pattern an `aho-corasick` DFA prefilter looks for.
const MAX_DFA_PATTERN_LEN: usize = 8;

/// With `Prefilter::Auto`, buffers of groups that are not hot get Hyperscan from this many
/// fast patterns on.
const HS_MIN_PATTERNS: usize = 64;

/// The signatures of one group and the multi-pattern prefilter over their fast patterns.
pub(crate) struct Group {
    /// Signatures without a usable fast pattern or narrow address set: always evaluated.
    always: Vec<u32>,
    /// Signatures without a fast pattern, by the narrower of their source and destination
    /// address set (IP reputation rules): candidates only for packets from (to) it.
    by_src: AddrIndex,
    by_dst: AddrIndex,
    /// Then by a narrow destination (else source) port set, in groups whose packets
    /// always have ports (TCP, UDP).
    by_dp: PortIndex,
    by_sp: PortIndex,
    bufs: Vec<GroupBuf>,
}

/// What the prefilter of a packet group indexes by.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IndexBy {
    /// Addresses (packet groups: the header addresses are the packet's own).
    pub addrs: bool,
    /// Ports (groups of TCP or UDP packets only).
    pub ports: bool,
    /// Groups that scan every packet or stream chunk (the large prefilters, where the
    /// matcher's speed counts).
    pub hot: bool,
    /// The matcher the ruleset asked for.
    pub prefilter: Prefilter,
}

/// The header fields the prefilter of a packet group looks up.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PktKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sp: u16,
    pub dp: u16,
}

struct GroupBuf {
    name: &'static str,
    transforms: Vec<Transform>,
    matcher: Matcher,
    /// Pattern id → signatures whose fast pattern it is.
    sigs: Vec<Vec<u32>>,
}

/// The multi-pattern matcher of one buffer of a group.
enum Matcher {
    /// `aho-corasick` (case-insensitive): a contiguous NFA over whole patterns, or a DFA
    /// over their first [`MAX_DFA_PATTERN_LEN`] bytes.
    Ac(AhoCorasick),
    /// Hyperscan literal database over whole patterns, each with its own case
    /// sensitivity.
    Hs(hs::Database),
}

/// Which matcher a group's buffers get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    AcNfa,
    AcDfa,
    Hs,
}

/// The prefilter's reused per-worker state (in `DetectState`).
#[derive(Debug, Default)]
pub(crate) struct PrefilterState {
    pub(crate) seen: Seen,
    /// Hyperscan scratch, fitted to every database of the engine `hs.engine`.
    pub(crate) hs: hs::Scratch,
}

impl Group {
    /// Builds the prefilter of the signatures `list`. With `by.addrs` (packet groups,
    /// where header addresses are the packet's own), signatures without a fast pattern
    /// are indexed by a narrow address or port set as `by` allows. The matcher: with
    /// `Prefilter::AhoCorasick`, DFAs over pattern prefixes for hot groups (about twice
    /// as fast per byte as the default contiguous NFA, about ten times its size), the NFA
    /// for the others; with `Prefilter::Hyperscan` Hyperscan for all; `Auto` Hyperscan
    /// for the hot groups and for buffers of the others with at least
    /// [`HS_MIN_PATTERNS`] patterns, the NFA for the rest. When Hyperscan cannot be used
    /// (CPU, compile error) the group falls back to `aho-corasick`.
    pub(crate) fn build(sigs: &[Sig], list: Vec<u32>, by: IndexBy) -> Group {
        let mut always = Vec::new();
        let (mut by_src, mut by_dst) = (Vec::new(), Vec::new());
        let (mut by_sp, mut by_dp) = (Vec::new(), Vec::new());
        let kind = match (by.prefilter, by.hot) {
            (Prefilter::AhoCorasick, true) => Kind::AcDfa,
            (Prefilter::AhoCorasick, false) | (Prefilter::Auto, false) => Kind::AcNfa,
            (Prefilter::Hyperscan, _) | (Prefilter::Auto, true) => Kind::Hs,
        };
        // Pattern → id. Every prefilter is case-insensitive (fast patterns are
        // case-folded): a superset of the rules. Hyperscan could honour each content's
        // case, but a database mixing caseless and case-sensitive literals took 87 MB and
        // 0.6 s to compile for ET Open's 613 UDP patterns, against 6 MB and 0.06 s all
        // caseless (2026-11-23).
        type Pending = (
            &'static str,
            Vec<Transform>,
            Vec<Vec<u8>>,
            Vec<Vec<u32>>,
            HashMap<Vec<u8>, usize>,
        );
        let mut pending: Vec<Pending> = Vec::new();
        for i in list {
            let Some(s) = sigs.get(i as usize) else {
                continue;
            };
            let Some((bi, pat)) = &s.fast else {
                let uni = !s.bidirectional;
                let (src, dst) = if uni && by.addrs {
                    (s.src.narrow_size(), s.dst.narrow_size())
                } else {
                    (None, None)
                };
                // The narrower address set when it holds at most a /16; else a narrow
                // port set; else an address set up to a /4 (`$HOME_NET`, large
                // reputation lists), which traffic hits more often than a port list.
                let addr = match (src, dst) {
                    (Some(a), Some(b)) => Some((a <= b, a.min(b))),
                    (Some(a), None) => Some((true, a)),
                    (None, Some(b)) => Some((false, b)),
                    (None, None) => None,
                };
                let port = uni && by.ports;
                match addr {
                    Some((true, n)) if n <= 1 << 16 => by_src.push((i, &s.src)),
                    Some((false, n)) if n <= 1 << 16 => by_dst.push((i, &s.dst)),
                    _ if port && s.dp.is_narrow() => by_dp.push((i, &s.dp)),
                    _ if port && s.sp.is_narrow() => by_sp.push((i, &s.sp)),
                    Some((true, _)) => by_src.push((i, &s.src)),
                    Some((false, _)) => by_dst.push((i, &s.dst)),
                    None => always.push(i),
                }
                continue;
            };
            let Some(b) = s.bufs.get(*bi) else {
                always.push(i);
                continue;
            };
            let slot = match pending
                .iter()
                .position(|p| p.0 == b.name && p.1 == b.transforms)
            {
                Some(x) => x,
                None => {
                    pending.push((
                        b.name,
                        b.transforms.clone(),
                        Vec::new(),
                        Vec::new(),
                        HashMap::new(),
                    ));
                    pending.len() - 1
                }
            };
            let p = &mut pending[slot];
            // A DFA prefilter looks for the pattern's first bytes only: a superset of the
            // rules, and a much smaller automaton (it must stay in cache to be fast).
            let key = match kind {
                Kind::AcDfa => pat.get(..MAX_DFA_PATTERN_LEN).unwrap_or(pat),
                Kind::Hs | Kind::AcNfa => pat,
            };
            match p.4.get(key) {
                Some(&pid) => p.3[pid].push(i),
                None => {
                    p.4.insert(key.to_vec(), p.2.len());
                    p.2.push(key.to_vec());
                    p.3.push(vec![i]);
                }
            }
        }
        let bufs = pending
            .into_iter()
            .filter_map(|(name, transforms, pats, sigs, _)| {
                // Auto: small sets of the other groups stay with the NFA, which costs
                // nothing to build and little to run.
                let kind = match kind {
                    Kind::AcNfa
                        if by.prefilter == Prefilter::Auto && pats.len() >= HS_MIN_PATTERNS =>
                    {
                        Kind::Hs
                    }
                    k => k,
                };
                let matcher = match kind {
                    Kind::Hs => match hs::Database::literals(&pats, true) {
                        Ok(db) => Matcher::Hs(db),
                        Err(e) => {
                            tracing::warn!(
                                buffer = name,
                                error = %e,
                                "prefilter falls back to aho-corasick"
                            );
                            Matcher::Ac(build_ac(&pats, by.hot)?)
                        }
                    },
                    Kind::AcDfa => Matcher::Ac(build_ac(&pats, true)?),
                    Kind::AcNfa => Matcher::Ac(build_ac(&pats, false)?),
                };
                Some(GroupBuf {
                    name,
                    transforms,
                    matcher,
                    sigs,
                })
            })
            .collect();
        Group {
            always,
            by_src: AddrIndex::build(by_src),
            by_dst: AddrIndex::build(by_dst),
            by_dp: PortIndex::build(by_dp),
            by_sp: PortIndex::build(by_sp),
            bufs,
        }
    }

    /// The Hyperscan databases of the group (a worker's scratch must fit them all).
    pub(crate) fn hs_databases(&self) -> impl Iterator<Item = &hs::Database> {
        self.bufs.iter().filter_map(|b| match &b.matcher {
            Matcher::Hs(db) => Some(db),
            Matcher::Ac(_) => None,
        })
    }

    /// Bytes of heap the group's matchers use.
    pub(crate) fn matcher_bytes(&self) -> usize {
        self.bufs
            .iter()
            .map(|b| match &b.matcher {
                Matcher::Hs(db) => db.size(),
                Matcher::Ac(ac) => ac.memory_usage(),
            })
            .sum()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.always.is_empty()
            && self.bufs.is_empty()
            && self.by_src.is_empty()
            && self.by_dst.is_empty()
            && self.by_dp.is_empty()
            && self.by_sp.is_empty()
    }

    /// Candidate signatures (unsorted, may repeat): those without fast pattern (for
    /// `key`, the packet's addresses and ports, when given; all otherwise) and those
    /// whose fast pattern occurs in its buffer. `get` gives a buffer's raw contents.
    pub(crate) fn candidates<'b>(
        &self,
        key: Option<PktKey>,
        get: impl Fn(&str) -> Vec<Cow<'b, [u8]>>,
        out: &mut Vec<u32>,
        st: &mut PrefilterState,
    ) {
        out.clear();
        out.extend_from_slice(&self.always);
        if let Some(k) = key {
            out.extend_from_slice(self.by_src.get(k.src));
            out.extend_from_slice(self.by_dst.get(k.dst));
            out.extend_from_slice(self.by_dp.get(k.dp));
            out.extend_from_slice(self.by_sp.get(k.sp));
        }
        for gb in &self.bufs {
            let raws = get(gb.name);
            if raws.is_empty() {
                continue;
            }
            let seen = &mut st.seen;
            seen.reset(gb.sigs.len());
            for raw in &raws {
                let t = crate::transform::apply(raw, &gb.transforms);
                match &gb.matcher {
                    Matcher::Ac(ac) => {
                        for m in ac.find_overlapping_iter(t.as_ref()) {
                            let pid = m.pattern().as_usize();
                            if seen.first(pid) {
                                if let Some(l) = gb.sigs.get(pid) {
                                    out.extend_from_slice(l);
                                }
                            }
                        }
                    }
                    Matcher::Hs(db) => {
                        let r = db.scan(t.as_ref(), &mut st.hs, |pid| {
                            let pid = pid as usize;
                            if seen.first(pid) {
                                if let Some(l) = gb.sigs.get(pid) {
                                    out.extend_from_slice(l);
                                }
                            }
                        });
                        if let Err(e) = r {
                            // Cannot happen with a fitted scratch; stay correct (every
                            // signature of the buffer is a candidate) and say so once.
                            scan_failed(&e);
                            out.extend(gb.sigs.iter().flatten());
                        }
                    }
                }
            }
        }
    }
}

/// A case-insensitive `aho-corasick` prefilter over `pats` (pattern id = index); a DFA
/// looks for the first [`MAX_DFA_PATTERN_LEN`] bytes of each.
fn build_ac(pats: &[Vec<u8>], dfa: bool) -> Option<AhoCorasick> {
    let cut = if dfa { MAX_DFA_PATTERN_LEN } else { usize::MAX };
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .kind(dfa.then_some(AhoCorasickKind::DFA))
        .match_kind(MatchKind::Standard)
        .build(pats.iter().map(|p| p.get(..cut).unwrap_or(p)))
        .ok()
}

/// Logs the first failed Hyperscan scan of the process (each is handled by making every
/// signature of the buffer a candidate).
fn scan_failed(e: &hs::HsError) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(
        || tracing::error!(error = %e, "prefilter scan failed; all its signatures are candidates"),
    );
}

/// Which patterns of one prefilter were seen in the current buffer: a stamp per pattern,
/// so that a new buffer costs no clearing (kept per worker in `DetectState`).
#[derive(Debug, Default)]
pub(crate) struct Seen {
    stamps: Vec<u32>,
    now: u32,
}

impl Seen {
    /// Starts a buffer of a prefilter with `n` patterns.
    fn reset(&mut self, n: usize) {
        if self.stamps.len() < n {
            self.stamps.resize(n, 0);
        }
        self.now = self.now.wrapping_add(1);
        if self.now == 0 {
            self.stamps.fill(0);
            self.now = 1;
        }
    }

    /// Whether pattern `pid` is seen for the first time in this buffer (and marks it).
    fn first(&mut self, pid: usize) -> bool {
        match self.stamps.get_mut(pid) {
            Some(s) if *s != self.now => {
                *s = self.now;
                true
            }
            _ => false,
        }
    }
}

/// A compiled `pcre`.
#[derive(Debug)]
pub(crate) struct PcreOp {
    re: pcre2::bytes::Regex,
    pub negated: bool,
    pub relative: bool,
    /// Groups stored into variables: (scope, variable id, group number). From the
    /// capture list (`, flow:a, pkt:b`: groups 1, 2, …) and from named groups
    /// `(?P<flow_a>…)` / `(?P<pkt_b>…)`.
    caps: Vec<(VarScope, u32, usize)>,
}

/// A value a pcre captured for a variable, kept until its signature has matched.
#[derive(Clone, Debug)]
pub(crate) struct Captured {
    pub scope: VarScope,
    pub id: u32,
    pub value: Vec<u8>,
}

impl PcreOp {
    /// Compiles `p`; `var` gives the id of a variable by scope and name.
    pub(crate) fn new(
        p: &Pcre,
        var: &mut dyn FnMut(VarScope, &str) -> u32,
    ) -> Result<PcreOp, String> {
        let mut b = pcre2::bytes::RegexBuilder::new();
        b.jit_if_available(true);
        let mut pat = p.pattern.clone();
        for f in p.flags.chars() {
            match f {
                'i' => {
                    b.caseless(true);
                }
                's' => {
                    b.dotall(true);
                }
                'm' => {
                    b.multi_line(true);
                }
                'x' => {
                    b.extended(true);
                }
                'A' => pat = format!("\\A(?:{pat})"),
                'G' => pat = format!("(?U){pat}"),
                _ => {}
            }
        }
        let re = b
            .build(&pat)
            .map_err(|e| format!("pcre /{}/: {e}", p.pattern))?;
        let mut caps = Vec::new();
        for (group, name) in re.capture_names().iter().enumerate() {
            let Some(name) = name else { continue };
            let (scope, n) = if let Some(n) = name.strip_prefix("flow_") {
                (VarScope::Flow, n)
            } else if let Some(n) = name.strip_prefix("pkt_") {
                (VarScope::Pkt, n)
            } else {
                continue;
            };
            caps.push((scope, var(scope, n), group));
        }
        for (i, c) in p.captures.iter().enumerate() {
            if i + 1 >= re.captures_len() {
                return Err(format!(
                    "pcre /{}/: capture {}:{} has no group {}",
                    p.pattern,
                    c.scope.as_str(),
                    c.name,
                    i + 1
                ));
            }
            caps.push((c.scope, var(c.scope, &c.name), i + 1));
        }
        Ok(PcreOp {
            re,
            negated: p.negated,
            relative: p.relative,
            caps,
        })
    }
}

pub(crate) fn cmp(c: &Cmp, v: u64) -> bool {
    match *c {
        Cmp::Eq(x) => v == x,
        Cmp::Ne(x) => v != x,
        Cmp::Lt(x) => v < x,
        Cmp::Gt(x) => v > x,
        Cmp::Le(x) => v <= x,
        Cmp::Ge(x) => v >= x,
        Cmp::Range(a, b) => a < v && v < b,
        Cmp::NotRange(a, b) => !(a < v && v < b),
    }
}

/// Addresses, ports, protocol and flow direction/state.
pub(crate) fn header_matches(sig: &Sig, p: &PacketInfo<'_>) -> bool {
    if let Some(ip) = sig.ip_proto {
        if ip != p.proto {
            return false;
        }
    } else if sig.icmp && p.proto != 1 && p.proto != 58 {
        return false;
    }
    match sig.ip_version {
        4 if !p.src.is_ipv4() => return false,
        6 if !p.src.is_ipv6() => return false,
        _ => {}
    }
    if matches!(p.proto, 6 | 17 | 132) && (!sig.sp.matches(p.sp) || !sig.dp.matches(p.dp)) {
        return false;
    }
    if !sig.src.matches(p.src) || !sig.dst.matches(p.dst) {
        return false;
    }
    if let Some(f) = &sig.flow {
        let Some(pf) = p.flow else {
            return f.to_server.is_none() && !f.established;
        };
        if let Some(ts) = f.to_server {
            if ts != pf.to_server {
                return false;
            }
        }
        if f.established && !pf.established {
            return false;
        }
        if f.not_established && pf.established {
            return false;
        }
    }
    if let Some(ap) = sig.app_proto {
        match p.flow.and_then(|f| f.app_proto) {
            Some(x) if x == ap || (ap == "http" && x == "http1") => {}
            _ => return false,
        }
    }
    true
}

fn flags_match(f: &TcpFlags, flags: u8) -> bool {
    let bits = |s: &str| -> u8 {
        s.chars()
            .map(|c| match c.to_ascii_uppercase() {
                'F' => 0x01,
                'S' => 0x02,
                'R' => 0x04,
                'P' => 0x08,
                'A' => 0x10,
                'U' => 0x20,
                'E' | '2' => 0x40,
                'C' | '1' => 0x80,
                _ => 0,
            })
            .fold(0, |a, b| a | b)
    };
    let ignore = f.ignore.as_deref().map(bits).unwrap_or(0);
    let got = flags & !ignore;
    let want = bits(&f.flags);
    if f.flags == "0" {
        return got == 0;
    }
    match f.modifier {
        Some('+') => got & want == want,
        Some('*') => got & want != 0,
        Some('!') => got & want == 0,
        _ => got == want,
    }
}

fn event_name(n: &str) -> &str {
    n.strip_prefix("decoder.").unwrap_or(n)
}

fn pkt_checks(sig: &Sig, p: &PacketInfo<'_>, tx: bool) -> bool {
    for c in &sig.pkt_checks {
        let ok = match c {
            PktCheck::Dsize(c) => !tx && cmp(c, p.payload.len() as u64),
            PktCheck::Int(k, c) => {
                let v: Option<u64> = match *k {
                    "ttl" => p.ttl.map(u64::from),
                    "tos" => p.tos.map(u64::from),
                    "id" => p.ip_id.map(u64::from),
                    "fragoffset" => p.frag_offset.map(u64::from),
                    "itype" => p.icmp.map(|i| u64::from(i.ty)),
                    "icode" => p.icmp.map(|i| u64::from(i.code)),
                    "icmp_id" => p.icmp.and_then(|i| i.id).map(u64::from),
                    "icmp_seq" => p.icmp.and_then(|i| i.seq).map(u64::from),
                    "tcp.ack" => p.tcp.map(|t| u64::from(t.ack)),
                    "tcp.seq" => p.tcp.map(|t| u64::from(t.seq)),
                    "tcp.window" => p.tcp.map(|t| u64::from(t.window)),
                    "tcp.mss" => p.tcp.and_then(|t| t.mss).map(u64::from),
                    _ => None,
                };
                v.is_some_and(|v| cmp(c, v))
            }
            PktCheck::Flags(f) => p.tcp.is_some_and(|t| flags_match(f, t.flags)),
            PktCheck::StreamSize(side, c) => p.stream_sizes.is_some_and(|[cl, sv]| {
                let (cl, sv) = (cmp(c, u64::from(cl)), cmp(c, u64::from(sv)));
                match side {
                    0 => sv,
                    1 => cl,
                    2 => cl && sv,
                    _ => cl || sv,
                }
            }),
            PktCheck::IpProto { negated, op, proto } => {
                let r = match op {
                    b'<' => p.proto < *proto,
                    b'>' => p.proto > *proto,
                    _ => p.proto == *proto,
                };
                r != *negated
            }
            PktCheck::DecodeEvent(e) => {
                let want = event_name(&e.name);
                let has = p.events.iter().any(|x| event_name(x) == want);
                has != e.negated
            }
            PktCheck::SameIp => p.src == p.dst,
            PktCheck::IpOpt(name) => p.src.is_ipv4() && has_ipopt(p.ip_hdr, name),
            PktCheck::AppProto { negated, proto } => {
                let ap = p.flow.and_then(|f| f.app_proto);
                let r = match proto.as_str() {
                    "unknown" => ap.is_none(),
                    "failed" => ap == Some("failed"),
                    x => ap == Some(x) || (x == "http" && ap == Some("http1")),
                };
                r != *negated
            }
        };
        if !ok {
            return false;
        }
    }
    true
}

fn conds(sig: &Sig, vars: &FlowVars) -> bool {
    sig.conds.iter().all(|c| match c {
        FlowCond::IsSet(ids) => ids.iter().any(|&b| vars.isset(b)),
        FlowCond::IsNotSet(ids) => ids.iter().all(|&b| !vars.isset(b)),
        FlowCond::IntCmp(id, op, v) => {
            let cur = vars.int(*id);
            match (*op, cur, v) {
                ("isset", c, _) => c.is_some(),
                ("notset" | "isnotset", c, _) => c.is_none(),
                ("==", Some(c), Some(v)) => c == *v,
                ("!=", Some(c), Some(v)) => c != *v,
                ("<", Some(c), Some(v)) => c < *v,
                ("<=", Some(c), Some(v)) => c <= *v,
                (">", Some(c), Some(v)) => c > *v,
                (">=", Some(c), Some(v)) => c >= *v,
                _ => false,
            }
        }
    })
}

/// flowbits/flowint side effects of a matching signature.
pub(crate) fn apply_actions(sig: &Sig, vars: &mut FlowVars) {
    for a in &sig.acts {
        match *a {
            FlowAct::Set(b) => vars.set(b),
            FlowAct::Unset(b) => vars.unset(b),
            FlowAct::Toggle(b) => {
                if vars.isset(b) {
                    vars.unset(b)
                } else {
                    vars.set(b)
                }
            }
            FlowAct::IntSet(i, v) => vars.set_int(i, v),
            FlowAct::IntAdd(i, v) => {
                let c = vars.int(i).unwrap_or(0);
                vars.set_int(i, c.wrapping_add(v))
            }
            FlowAct::IntSub(i, v) => {
                let c = vars.int(i).unwrap_or(0);
                vars.set_int(i, c.wrapping_sub(v))
            }
        }
    }
}

/// Whether `name` is a buffer of the packet itself (not of a transaction).
pub(crate) fn is_packet_buffer(name: &str) -> bool {
    matches!(
        name,
        "pkt_data" | "ipv4.hdr" | "ipv6.hdr" | "tcp.hdr" | "udp.hdr" | "icmpv4.hdr" | "icmpv6.hdr"
    )
}

/// A packet buffer's bytes; `None` when the packet has no such layer.
pub(crate) fn packet_buffer<'a>(p: &PacketInfo<'a>, name: &str) -> Option<&'a [u8]> {
    let v6 = p.src.is_ipv6();
    let some = |b: &'a [u8]| (!b.is_empty()).then_some(b);
    match name {
        "pkt_data" => (!p.flow.is_some_and(|f| f.encrypted)).then_some(p.payload),
        "ipv4.hdr" if !v6 => some(p.ip_hdr),
        "ipv6.hdr" if v6 => some(p.ip_hdr),
        "tcp.hdr" if p.proto == 6 => some(p.l4_hdr),
        "udp.hdr" if p.proto == 17 => some(p.l4_hdr),
        "icmpv4.hdr" if p.proto == 1 => some(p.l4_hdr),
        "icmpv6.hdr" if p.proto == 58 => some(p.l4_hdr),
        _ => None,
    }
}

/// IPv4 option type of one of Suricata's `ipopts` names.
pub(crate) fn ipopt_known(name: &str) -> Option<u8> {
    Some(match name {
        "eol" => 0,
        "nop" => 1,
        "rr" => 7,
        "ts" => 68,
        "sec" => 130,
        "lsrr" => 131,
        "esec" => 133,
        "satid" => 136,
        "ssrr" => 137,
        _ => return None,
    })
}

/// Whether the IPv4 header carries option `name` (`any`: any option). Walks the options;
/// every step advances, and a malformed length ends the walk.
fn has_ipopt(ip_hdr: &[u8], name: &str) -> bool {
    let Some(opts) = ip_hdr.get(20..) else {
        return false;
    };
    if name == "any" {
        return !opts.is_empty();
    }
    let Some(want) = ipopt_known(name) else {
        return false;
    };
    let mut i = 0;
    while let Some(&t) = opts.get(i) {
        if t == want {
            return true;
        }
        match t {
            0 => return false,
            1 => i += 1,
            _ => {
                let len = usize::from(opts.get(i + 1).copied().unwrap_or(0));
                if len < 2 {
                    return false;
                }
                i += len;
            }
        }
    }
    false
}

/// Non-header checks and the payload program of a packet signature.
pub(crate) fn packet_matches(
    sig: &Sig,
    p: &PacketInfo<'_>,
    vars: &FlowVars,
    caps: &mut Vec<Captured>,
) -> bool {
    if !pkt_checks(sig, p, false) || !conds(sig, vars) {
        return false;
    }
    caps.clear();
    let mut regs = vec![0u64; sig.var_names.len()];
    sig.bufs.iter().all(|b| {
        let Some(raw) = packet_buffer(p, b.name) else {
            return false;
        };
        let t = crate::transform::apply(raw, &b.transforms);
        let start = if b.name == "pkt_data" {
            p.stream_offset
        } else {
            0
        };
        run_prog_at(sig, b, &t, start, &mut regs, caps)
    })
}

/// Whether a stream signature that matched `chunk` is reported for this chunk: it does
/// not match the already-inspected part alone (the match needs new bytes), or it matches
/// the new bytes alone (a new occurrence). A second occurrence that straddles the boundary
/// while the first lies in the old part is not reported (documented limitation).
/// `start` is the chunk's stream offset.
pub(crate) fn needs_new_bytes(sig: &Sig, chunk: &[u8], start: u64, new_from: usize) -> bool {
    let Some(old) = chunk.get(..new_from).filter(|o| !o.is_empty()) else {
        return true;
    };
    let on = |part: &[u8], at: u64| {
        let mut regs = vec![0u64; sig.var_names.len()];
        sig.bufs.iter().all(|b| {
            b.name != "pkt_data" || {
                let t = crate::transform::apply(part, &b.transforms);
                run_prog_at(sig, b, &t, at, &mut regs, &mut Vec::new())
            }
        })
    };
    !on(old, start)
        || on(
            chunk.get(new_from..).unwrap_or(&[]),
            start + new_from as u64,
        )
}

/// A transaction signature on one direction of a transaction.
pub(crate) fn tx_matches(
    sig: &Sig,
    p: &PacketInfo<'_>,
    tx: &dyn TxBuffers,
    dir: Dir,
    vars: &FlowVars,
    caps: &mut Vec<Captured>,
) -> bool {
    if !pkt_checks(sig, p, true) || !conds(sig, vars) {
        return false;
    }
    caps.clear();
    if !sig.app_events.is_empty() {
        let evs = tx.events();
        for e in &sig.app_events {
            if !evs.iter().any(|x| x.eq_ignore_ascii_case(&e.name)) {
                return false;
            }
        }
    }
    if let Some(c) = &sig.filesize {
        if !tx.file_size().is_some_and(|n| cmp(c, n)) {
            return false;
        }
    }
    if let Some(c) = &sig.urilen {
        let u = tx.get("http.uri", Dir::ToServer);
        if !u.iter().any(|b| cmp(c, b.len() as u64)) {
            return false;
        }
    }
    let mut regs = vec![0u64; sig.var_names.len()];
    sig.bufs.iter().all(|b| {
        let raws = tx.get(b.name, dir);
        raws.iter().any(|raw| {
            let t = crate::transform::apply(raw, &b.transforms);
            run_prog_at(sig, b, &t, 0, &mut regs, caps)
        })
    })
}

/// Runs one buffer program on `buf`, a raw-stream chunk that starts at `stream_start` in
/// its stream (else 0). The values its pcres capture on the matching path are appended
/// to `caps`.
pub(crate) fn run_prog_at(
    sig: &Sig,
    b: &BufProg,
    buf: &[u8],
    stream_start: u64,
    regs: &mut [u64],
    caps: &mut Vec<Captured>,
) -> bool {
    let mut ctx = Ctx {
        sig,
        regs,
        caps,
        steps: 0,
        stream_start: i64::try_from(stream_start).unwrap_or(i64::MAX),
    };
    ctx.run(&b.ops, 0, buf, 0)
}

/// Where and how a byte_* keyword reads its number.
#[derive(Clone, Copy)]
struct Read {
    relative: bool,
    offset: i64,
    n: usize,
    endian: Option<Endian>,
    base: NumBase,
}

struct Ctx<'s, 'r> {
    sig: &'s Sig,
    regs: &'r mut [u64],
    caps: &'r mut Vec<Captured>,
    steps: u32,
    /// Stream offset of the buffer's first byte (raw-stream chunks; else 0).
    stream_start: i64,
}

fn find(hay: &[u8], pat: &[u8], sr: &Searcher) -> Option<usize> {
    if pat.is_empty() || pat.len() > hay.len() {
        return None;
    }
    // Jump to each occurrence of the chosen byte, then compare the whole pattern.
    let Searcher { at, lo, up, nocase } = *sr;
    let last = hay.len() - pat.len();
    let mut i = 0;
    while i <= last {
        let window = hay.get(i + at..=last + at)?;
        let rel = if lo == up {
            memchr::memchr(lo, window)
        } else {
            memchr::memchr2(lo, up, window)
        }?;
        let start = i + rel;
        let w = hay.get(start..start + pat.len())?;
        if (nocase && w.eq_ignore_ascii_case(pat)) || w == pat {
            return Some(start);
        }
        i = start + 1;
    }
    None
}

fn read_num(bytes: &[u8], endian: Option<Endian>, base: NumBase) -> Option<u64> {
    match base {
        NumBase::Binary => {
            if bytes.len() > 8 {
                return None;
            }
            let it: Box<dyn Iterator<Item = &u8>> = if endian == Some(Endian::Little) {
                Box::new(bytes.iter().rev())
            } else {
                Box::new(bytes.iter())
            };
            Some(it.fold(0u64, |a, &b| (a << 8) | u64::from(b)))
        }
        NumBase::Dec | NumBase::Hex | NumBase::Oct => {
            let radix = match base {
                NumBase::Hex => 16,
                NumBase::Oct => 8,
                _ => 10,
            };
            let s = std::str::from_utf8(bytes).ok()?;
            let s = s.trim_start();
            let s = if radix == 16 {
                s.strip_prefix("0x")
                    .or_else(|| s.strip_prefix("0X"))
                    .unwrap_or(s)
            } else {
                s
            };
            let digits: &str = {
                let n = s.chars().take_while(|c| c.is_digit(radix)).count();
                s.get(..n)?
            };
            if digits.is_empty() {
                return None;
            }
            u64::from_str_radix(digits, radix).ok()
        }
    }
}

fn apply_mask(v: u64, mask: Option<u64>) -> u64 {
    match mask {
        Some(m) if m != 0 => (v & m) >> m.trailing_zeros(),
        _ => v,
    }
}

impl Ctx<'_, '_> {
    fn var(&self, name: &str) -> Option<u64> {
        let i = self.sig.var_names.iter().rposition(|n| n == name)?;
        self.regs.get(i).copied()
    }
    fn set_var(&mut self, name: &str, v: u64) {
        if let Some(i) = self.sig.var_names.iter().position(|n| n == name) {
            if let Some(r) = self.regs.get_mut(i) {
                *r = v;
            }
        }
    }
    fn nov<T: Copy + TryFrom<u64>>(&self, v: &NumOrVar<T>) -> Option<T> {
        match v {
            NumOrVar::Num(n) => Some(*n),
            NumOrVar::Var(name) => T::try_from(self.var(name)?).ok(),
        }
    }

    fn run(&mut self, ops: &[Op], i: usize, buf: &[u8], prev: usize) -> bool {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return false;
        }
        let Some(op) = ops.get(i) else {
            return true;
        };
        let next_relative = ops.get(i + 1).is_some_and(Op::is_relative);
        match op {
            Op::Content(c, sr) => self.content(ops, i, c, sr, buf, prev, next_relative),
            Op::Pcre(p) if !p.caps.is_empty() && !p.negated => {
                self.pcre_capture(ops, i, p, buf, prev)
            }
            Op::Pcre(p) => {
                let base = if p.relative { prev.min(buf.len()) } else { 0 };
                let hay = buf.get(base..).unwrap_or(&[]);
                let mut at = 0;
                loop {
                    let m = match p.re.find_at(hay, at) {
                        Ok(m) => m,
                        Err(_) => return false,
                    };
                    match m {
                        None => return p.negated && self.run(ops, i + 1, buf, prev),
                        Some(_) if p.negated => return false,
                        Some(m) => {
                            if self.run(ops, i + 1, buf, base + m.end()) {
                                return true;
                            }
                            if !next_relative || m.start() + 1 > hay.len() {
                                return false;
                            }
                            at = m.start() + 1;
                            self.steps += 1;
                            if self.steps > MAX_STEPS {
                                return false;
                            }
                        }
                    }
                }
            }
            Op::ByteTest(t) => {
                let ok = self.byte_test(t, buf, prev);
                ok && self.run(ops, i + 1, buf, prev)
            }
            Op::ByteJump(j) => match self.byte_jump(j, buf, prev) {
                Some(np) => self.run(ops, i + 1, buf, np),
                None => false,
            },
            Op::ByteExtract(e) => match self.byte_extract(e, buf, prev) {
                Some(np) => self.run(ops, i + 1, buf, np),
                None => false,
            },
            Op::ByteMath(m) => self.byte_math(m, buf, prev) && self.run(ops, i + 1, buf, prev),
            Op::Isdataat(d) => {
                let Some(n) = self.nov(&d.position) else {
                    return false;
                };
                let n = n as usize;
                let has = if d.relative {
                    prev.saturating_add(n) <= buf.len()
                } else {
                    n < buf.len()
                };
                has != d.negated && self.run(ops, i + 1, buf, prev)
            }
            Op::Bsize(c) => cmp(c, buf.len() as u64) && self.run(ops, i + 1, buf, prev),
        }
    }

    /// A pcre that stores groups into variables: as the `Op::Pcre` case, recording the
    /// groups of the match the rest of the program succeeded after.
    fn pcre_capture(&mut self, ops: &[Op], i: usize, p: &PcreOp, buf: &[u8], prev: usize) -> bool {
        let next_relative = ops.get(i + 1).is_some_and(Op::is_relative);
        let base = if p.relative { prev.min(buf.len()) } else { 0 };
        let hay = buf.get(base..).unwrap_or(&[]);
        let mut locs = p.re.capture_locations();
        let mut at = 0;
        loop {
            let Ok(Some(m)) = p.re.captures_read_at(&mut locs, hay, at) else {
                return false;
            };
            if self.run(ops, i + 1, buf, base + m.end()) {
                for &(scope, id, group) in &p.caps {
                    if let Some(v) = locs.get(group).and_then(|(s, e)| hay.get(s..e)) {
                        self.caps.push(Captured {
                            scope,
                            id,
                            value: v.to_vec(),
                        });
                    }
                }
                return true;
            }
            if !next_relative || m.start() + 1 > hay.len() {
                return false;
            }
            at = m.start() + 1;
            self.steps += 1;
            if self.steps > MAX_STEPS {
                return false;
            }
        }
    }

    #[allow(clippy::too_many_arguments)] // reason: the op, its searcher and the position
    fn content(
        &mut self,
        ops: &[Op],
        i: usize,
        c: &Content,
        sr: &Searcher,
        buf: &[u8],
        prev: usize,
        next_relative: bool,
    ) -> bool {
        let len = buf.len() as i64;
        let plen = c.pattern.len() as i64;
        // In a raw-stream chunk that does not start the stream, an absolute end (depth,
        // or within right after the buffer's start) counts from the stream's start.
        let from_stream = |e: i64| -> Option<i64> {
            let st = self.stream_start;
            if st == 0 || e >= st.saturating_add(len) {
                Some(e)
            } else if e <= st {
                None
            } else {
                Some(e - st)
            }
        };
        let (start, end) = if c.is_relative() {
            let dist = c.distance.as_ref().and_then(|d| self.nov(d)).unwrap_or(0) as i64;
            let s = (prev as i64 + dist).max(0);
            let e = match c.within.as_ref().and_then(|w| self.nov(w)) {
                Some(w) if prev == 0 => match from_stream(dist + w as i64) {
                    Some(e) => e,
                    None => return false,
                },
                Some(w) => prev as i64 + dist + w as i64,
                None => len,
            };
            (s, e.min(len))
        } else {
            let off = c.offset.as_ref().and_then(|o| self.nov(o)).unwrap_or(0) as i64;
            let e = c
                .depth
                .as_ref()
                .and_then(|d| self.nov(d))
                .map(|d| off + d as i64);
            let e = if c.startswith { Some(off + plen) } else { e };
            let e = match e {
                Some(e) => match from_stream(e) {
                    Some(e) => e,
                    None => return false,
                },
                None => len,
            };
            (off, e.min(len))
        };
        let mut from = start;
        loop {
            if from < 0 || end - from < plen {
                return c.negated && self.run(ops, i + 1, buf, prev);
            }
            let (f, e) = (from as usize, end as usize);
            let pos = if c.endswith {
                if e as i64 != len {
                    None
                } else {
                    let p = e - c.pattern.len();
                    let w = buf.get(p..e).unwrap_or(&[]);
                    let eq = if c.nocase {
                        w.eq_ignore_ascii_case(&c.pattern)
                    } else {
                        w == c.pattern.as_slice()
                    };
                    (eq && p >= f).then_some(p)
                }
            } else {
                buf.get(f..e)
                    .and_then(|h| find(h, &c.pattern, sr))
                    .map(|p| p + f)
            };
            let Some(pos) = pos else {
                return c.negated && self.run(ops, i + 1, buf, prev);
            };
            if c.negated {
                return false;
            }
            if self.run(ops, i + 1, buf, pos + c.pattern.len()) {
                return true;
            }
            if !next_relative || c.endswith {
                return false;
            }
            self.steps += 1;
            if self.steps > MAX_STEPS {
                return false;
            }
            from = pos as i64 + 1;
        }
    }

    fn read_at(&self, buf: &[u8], prev: usize, r: Read) -> Option<(u64, usize)> {
        let Read {
            relative,
            offset,
            n,
            endian,
            base,
        } = r;
        let start = if relative { prev as i64 } else { 0 } + offset;
        if start < 0 {
            return None;
        }
        let s = start as usize;
        // A string number of 0 bytes is the one that starts there (Suricata parses it
        // with strtoull on the buffer), at most 23 characters.
        let n = if n == 0 && !matches!(base, NumBase::Binary) {
            let rest = buf.get(s..)?;
            rest.iter().take(23).take_while(|b| b.is_ascii()).count()
        } else {
            n
        };
        if n == 0 {
            return None;
        }
        let bytes = buf.get(s..s.checked_add(n)?)?;
        Some((read_num(bytes, endian, base)?, s + n))
    }

    fn byte_test(&self, t: &ByteTest, buf: &[u8], prev: usize) -> bool {
        let (Some(n), Some(off), Some(val)) =
            (self.nov(&t.nbytes), self.nov(&t.offset), self.nov(&t.value))
        else {
            return false;
        };
        let Some((v, _)) = self.read_at(
            buf,
            prev,
            Read {
                relative: t.relative,
                offset: i64::from(off),
                n: n as usize,
                endian: t.endian,
                base: t.base,
            },
        ) else {
            return false;
        };
        let v = apply_mask(v, t.bitmask);
        let r = match t.op {
            "<" => v < val,
            ">" => v > val,
            "=" => v == val,
            "<=" => v <= val,
            ">=" => v >= val,
            "&" => v & val != 0,
            "^" => v ^ val != 0,
            _ => false,
        };
        r != t.negated
    }

    fn byte_jump(&self, j: &ByteJump, buf: &[u8], prev: usize) -> Option<usize> {
        let n = self.nov(&j.nbytes)? as usize;
        let off = self.nov(&j.offset)?;
        // Zero bytes (Suricata accepts it): a jump of 0 from the offset, for post_offset.
        let read = if n == 0 {
            let at = if j.relative { prev as i64 } else { 0 } + i64::from(off);
            (0..=buf.len() as i64)
                .contains(&at)
                .then_some((0, at as usize))
        } else {
            self.read_at(
                buf,
                prev,
                Read {
                    relative: j.relative,
                    offset: i64::from(off),
                    n,
                    endian: j.endian,
                    base: j.base,
                },
            )
        };
        let (v, after) = read?;
        let mut v = apply_mask(v, j.bitmask) as i64;
        v = v.checked_mul(i64::from(j.multiplier.unwrap_or(1)))?;
        if j.align {
            v = (v + 3) & !3;
        }
        let base = if j.from_beginning {
            0
        } else if j.from_end {
            buf.len() as i64
        } else {
            after as i64
        };
        let np = base
            .checked_add(v)?
            .checked_add(i64::from(j.post_offset.unwrap_or(0)))?;
        (0..=buf.len() as i64).contains(&np).then_some(np as usize)
    }

    fn byte_extract(&mut self, e: &ByteExtract, buf: &[u8], prev: usize) -> Option<usize> {
        let (v, after) = self.read_at(
            buf,
            prev,
            Read {
                relative: e.relative,
                offset: i64::from(e.offset),
                n: e.nbytes as usize,
                endian: e.endian,
                base: e.base,
            },
        )?;
        let mut v = apply_mask(v, e.bitmask);
        v = v.checked_mul(u64::from(e.multiplier.unwrap_or(1)))?;
        if let Some(a) = e.align.filter(|a| *a > 1) {
            let a = u64::from(a);
            v = v.div_ceil(a) * a;
        }
        self.set_var(&e.name, v);
        Some(after)
    }

    fn byte_math(&mut self, m: &ByteMath, buf: &[u8], prev: usize) -> bool {
        let Some(n) = self.nov(&m.nbytes) else {
            return false;
        };
        let Some(r) = self.nov(&m.rvalue) else {
            return false;
        };
        let Some((v, _)) = self.read_at(
            buf,
            prev,
            Read {
                relative: m.relative,
                offset: i64::from(m.offset),
                n: n as usize,
                endian: m.endian,
                base: m.base,
            },
        ) else {
            return false;
        };
        let res = match m.oper {
            "+" => v.checked_add(r),
            "-" => v.checked_sub(r),
            "*" => v.checked_mul(r),
            "/" => v.checked_div(r),
            "<<" => u32::try_from(r).ok().and_then(|s| v.checked_shl(s)),
            ">>" => u32::try_from(r).ok().and_then(|s| v.checked_shr(s)),
            _ => None,
        };
        let Some(res) = res else {
            return false;
        };
        let res = match m.bitmask {
            Some(mask) if mask != 0 => (res & mask) >> mask.trailing_zeros(),
            _ => res,
        };
        self.set_var(&m.result, res);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `find` with a prebuilt searcher agrees with a naive search, case-sensitive and not,
    /// wherever the searcher's jump byte lies in the pattern.
    #[test]
    fn find_agrees_with_a_naive_search() {
        let naive = |hay: &[u8], pat: &[u8], nocase: bool| {
            hay.windows(pat.len()).position(|w| {
                if nocase {
                    w.eq_ignore_ascii_case(pat)
                } else {
                    w == pat
                }
            })
        };
        let hays: [&[u8]; 5] = [
            b"GET /index.PHP?x=1 HTTP/1.1\r\nUser-Agent: Mozilla\r\n",
            b"\x00\x00\x01\x00user-AGENT:\x00",
            b"",
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaab",
            b"x-y-z-X-Y-Z",
        ];
        let pats: [&[u8]; 9] = [
            b"user-agent:",
            b"PHP?",
            b"\x00\x01",
            b"ab",
            b"aab",
            b"Z",
            b"-z-x",
            b"http/1.1\r\n",
            b"zz",
        ];
        for hay in hays {
            for pat in pats {
                for nocase in [false, true] {
                    let sr = Searcher::new(pat, nocase);
                    assert_eq!(
                        find(hay, pat, &sr),
                        naive(hay, pat, nocase),
                        "{pat:?} in {hay:?}, nocase {nocase}"
                    );
                }
            }
        }
    }
}
