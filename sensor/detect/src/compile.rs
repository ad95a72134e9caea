//! Ruleset → signatures: header matchers, per-buffer programs, flow conditions and
//! actions, fast-pattern choice and the per-group prefilters.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use khien_rules::config::{Classtype, ThresholdEntry};
use khien_rules::{
    AddrSpec, BufferRef, ByteExtract, ByteJump, ByteMath, ByteTest, Cmp, Content, EventRef,
    FastPattern, Flow, FlowbitsCmd, Isdataat, NumOrVar, OptionKind, PortSpec, Rule, TcpFlags,
    Threshold, Transform, VarScope, Vars,
};

use crate::inspect::{Group, IndexBy, PcreOp};
use crate::threshold::Suppressions;
use crate::{Action, Dir, Engine, SigMeta};

/// What the compiler needs besides the rules.
#[derive(Clone, Debug, Default)]
pub struct CompileOptions {
    /// Variables for `$HOME_NET` etc. (`None`: Suricata's defaults).
    pub vars: Option<Vars>,
    /// classification.config (categories and default priorities).
    pub classification: BTreeMap<String, Classtype>,
    /// threshold.config entries.
    pub thresholds: Vec<ThresholdEntry>,
    /// The multi-pattern matcher of the prefilters.
    pub prefilter: crate::Prefilter,
    /// Suricata's `action-order`: which actions' signatures are evaluated first (empty:
    /// pass, drop, reject, alert). Actions not listed follow in that default order.
    pub action_order: Vec<Action>,
}

/// A rule the engine did not load, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    pub gid: u32,
    pub sid: u32,
    /// The keyword (or `keyword:value`/buffer) that is not implemented.
    pub keyword: String,
    pub file: String,
    pub line: u32,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: sid {}:{} not loaded: `{}` is not implemented by the detection engine",
            self.file, self.line, self.gid, self.sid, self.keyword
        )
    }
}

/// The outcome of a compilation.
#[derive(Clone, Debug, Default)]
pub struct CompileReport {
    /// Signatures loaded into the engine.
    pub loaded: usize,
    /// Rules left out, one entry each (the first unsupported keyword).
    pub unsupported: Vec<Unsupported>,
    /// Rules whose pcre/address could not be compiled (message per rule).
    pub errors: Vec<(u32, String)>,
}

impl CompileReport {
    /// Unsupported keywords with the number of rules each kept out, most frequent first.
    pub fn keyword_counts(&self) -> Vec<(String, usize)> {
        let mut m: HashMap<&str, usize> = HashMap::new();
        for u in &self.unsupported {
            *m.entry(u.keyword.as_str()).or_default() += 1;
        }
        let mut v: Vec<_> = m.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }
}

/// A resolved address matcher: the set of addresses it accepts, as sorted, disjoint,
/// non-adjacent inclusive ranges per family, so that a rule with hundreds of addresses
/// (the IP reputation lists) costs one binary search per packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AddrM {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl AddrM {
    fn any() -> AddrM {
        AddrM {
            v4: vec![(0, u32::MAX)],
            v6: vec![(0, u128::MAX)],
        }
    }

    fn empty() -> AddrM {
        AddrM {
            v4: Vec::new(),
            v6: Vec::new(),
        }
    }

    /// How many addresses the set holds, when it is narrow enough to index signatures
    /// by: at most 2^28 IPv4 addresses (a sixteenth of the space) and 2^64 IPv6 ones.
    /// Host lists, the IP reputation lists (hundreds of networks up to /12) and
    /// `$HOME_NET` are; `any` and `$EXTERNAL_NET` (`!$HOME_NET`) are not. An indexed
    /// signature is a candidate only for packets with an address in its set, instead of
    /// for every packet.
    pub(crate) fn narrow_size(&self) -> Option<u128> {
        let n4: u64 = self.v4.iter().map(|&(l, h)| u64::from(h - l) + 1).sum();
        let n6: u128 = self
            .v6
            .iter()
            .map(|&(l, h)| (h - l).saturating_add(1))
            .fold(0, u128::saturating_add);
        (n4 <= 1 << 28 && n6 <= 1 << 64).then(|| u128::from(n4) + n6)
    }

    pub(crate) fn matches(&self, a: IpAddr) -> bool {
        match a {
            IpAddr::V4(a) => in_ranges(&self.v4, u32::from(a)),
            IpAddr::V6(a) => in_ranges(&self.v6, u128::from(a)),
        }
    }

    fn net(n: IpAddr, len: u8) -> AddrM {
        let mut m = AddrM::empty();
        match n {
            IpAddr::V4(n) => {
                let len = u32::from(len.min(32));
                let host = u32::MAX.checked_shr(len).unwrap_or(0);
                let lo = u32::from(n) & !host;
                m.v4.push((lo, lo | host));
            }
            IpAddr::V6(n) => {
                let len = u32::from(len.min(128));
                let host = u128::MAX.checked_shr(len).unwrap_or(0);
                let lo = u128::from(n) & !host;
                m.v6.push((lo, lo | host));
            }
        }
        m
    }

    fn range(lo: IpAddr, hi: IpAddr) -> AddrM {
        let mut m = AddrM::empty();
        match (lo, hi) {
            (IpAddr::V4(l), IpAddr::V4(h)) if l <= h => m.v4.push((l.into(), h.into())),
            (IpAddr::V6(l), IpAddr::V6(h)) if l <= h => m.v6.push((l.into(), h.into())),
            _ => {}
        }
        m
    }

    fn minus(&self, o: &AddrM) -> AddrM {
        AddrM {
            v4: subtract(&self.v4, &o.v4),
            v6: subtract(&self.v6, &o.v6),
        }
    }
}

/// Signatures indexed by an address set of theirs: the address space cut into segments at
/// every set boundary, each segment with the signatures whose set holds it.
#[derive(Debug, Default)]
pub(crate) struct AddrIndex {
    v4: Segments<u32>,
    v6: Segments<u128>,
}

#[derive(Debug)]
struct Segments<T> {
    /// Segment starts, ascending; segment i runs to starts[i + 1] - 1.
    starts: Vec<T>,
    /// Signatures of segment i: `sigs[offs[i]..offs[i + 1]]`.
    offs: Vec<u32>,
    sigs: Vec<u32>,
}

impl<T> Default for Segments<T> {
    fn default() -> Self {
        Segments {
            starts: Vec::new(),
            offs: vec![0],
            sigs: Vec::new(),
        }
    }
}

impl<T: Ord + Copy + Bound> Segments<T> {
    fn build(entries: &[(T, T, u32)]) -> Segments<T> {
        let mut starts: Vec<T> = Vec::with_capacity(entries.len() * 2);
        for &(lo, hi, _) in entries {
            starts.push(lo);
            if hi != T::MAX {
                starts.push(hi.succ());
            }
        }
        starts.sort_unstable();
        starts.dedup();
        let mut per: Vec<Vec<u32>> = vec![Vec::new(); starts.len()];
        for &(lo, hi, sig) in entries {
            let mut i = starts.partition_point(|&x| x < lo);
            while let Some(&st) = starts.get(i) {
                if st > hi {
                    break;
                }
                per[i].push(sig);
                i += 1;
            }
        }
        let mut offs = Vec::with_capacity(per.len() + 1);
        let mut sigs = Vec::new();
        offs.push(0);
        for l in per {
            sigs.extend(l);
            offs.push(sigs.len() as u32);
        }
        Segments { starts, offs, sigs }
    }

    fn get(&self, a: T) -> &[u32] {
        let i = self.starts.partition_point(|&x| x <= a);
        if i == 0 {
            return &[];
        }
        let (Some(&lo), Some(&hi)) = (self.offs.get(i - 1), self.offs.get(i)) else {
            return &[];
        };
        self.sigs.get(lo as usize..hi as usize).unwrap_or(&[])
    }
}

impl AddrIndex {
    /// Indexes each signature under its address set.
    pub(crate) fn build<'a>(sets: impl IntoIterator<Item = (u32, &'a AddrM)>) -> AddrIndex {
        let (mut e4, mut e6) = (Vec::new(), Vec::new());
        for (sig, m) in sets {
            e4.extend(m.v4.iter().map(|&(l, h)| (l, h, sig)));
            e6.extend(m.v6.iter().map(|&(l, h)| (l, h, sig)));
        }
        AddrIndex {
            v4: Segments::build(&e4),
            v6: Segments::build(&e6),
        }
    }

    /// Signatures whose set holds `a`, ascending.
    pub(crate) fn get(&self, a: IpAddr) -> &[u32] {
        match a {
            IpAddr::V4(a) => self.v4.get(u32::from(a)),
            IpAddr::V6(a) => self.v6.get(u128::from(a)),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.v4.sigs.is_empty() && self.v6.sigs.is_empty()
    }
}

fn in_ranges<T: Ord + Copy>(r: &[(T, T)], a: T) -> bool {
    // The first range whose end is >= a is the only one that can hold it.
    let i = r.partition_point(|&(_, hi)| hi < a);
    r.get(i).is_some_and(|&(lo, _)| lo <= a)
}

/// Sorts ranges and merges overlapping or adjacent ones.
fn normalise<T: Ord + Copy + Bound>(mut r: Vec<(T, T)>) -> Vec<(T, T)> {
    r.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(r.len());
    for (lo, hi) in r {
        match out.last_mut() {
            Some(last) if last.1 == T::MAX || lo <= last.1.succ() => {
                if hi > last.1 {
                    last.1 = hi;
                }
            }
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// `a` minus `b`, both normalised.
fn subtract<T: Ord + Copy + Bound>(a: &[(T, T)], b: &[(T, T)]) -> Vec<(T, T)> {
    let mut out = Vec::new();
    for &(lo, hi) in a {
        let mut cur = Some(lo);
        for &(blo, bhi) in b {
            let Some(c) = cur else { break };
            if bhi < c || blo > hi {
                continue;
            }
            if blo > c {
                out.push((c, blo.pred()));
            }
            cur = if bhi >= hi { None } else { Some(bhi.succ()) };
        }
        if let Some(c) = cur {
            out.push((c, hi));
        }
    }
    out
}

/// Integer bounds of an address family (for range arithmetic).
trait Bound: Sized {
    const MAX: Self;
    /// Next value (saturating).
    fn succ(self) -> Self;
    /// Previous value (saturating).
    fn pred(self) -> Self;
}

impl Bound for u32 {
    const MAX: u32 = u32::MAX;
    fn succ(self) -> u32 {
        self.saturating_add(1)
    }
    fn pred(self) -> u32 {
        self.saturating_sub(1)
    }
}

impl Bound for u16 {
    const MAX: u16 = u16::MAX;
    fn succ(self) -> u16 {
        self.saturating_add(1)
    }
    fn pred(self) -> u16 {
        self.saturating_sub(1)
    }
}

impl Bound for u128 {
    const MAX: u128 = u128::MAX;
    fn succ(self) -> u128 {
        self.saturating_add(1)
    }
    fn pred(self) -> u128 {
        self.saturating_sub(1)
    }
}

pub(crate) fn addr(a: &AddrSpec) -> AddrM {
    match a {
        AddrSpec::Any | AddrSpec::Var(_) => AddrM::any(),
        AddrSpec::Cidr(n, l) => AddrM::net(*n, *l),
        AddrSpec::Range(l, h) => AddrM::range(*l, *h),
        AddrSpec::Not(x) => AddrM::any().minus(&addr(x)),
        AddrSpec::List(l) => {
            let (mut pos, mut neg, mut any_pos) = (AddrM::empty(), AddrM::empty(), false);
            for x in l {
                let (into, m) = match x {
                    AddrSpec::Not(y) => (&mut neg, addr(y)),
                    other => {
                        any_pos = true;
                        (&mut pos, addr(other))
                    }
                };
                into.v4.extend_from_slice(&m.v4);
                into.v6.extend_from_slice(&m.v6);
            }
            // No positive element: everything but the negatives.
            let pos = if any_pos {
                AddrM {
                    v4: normalise(pos.v4),
                    v6: normalise(pos.v6),
                }
            } else {
                AddrM::any()
            };
            let neg = AddrM {
                v4: normalise(neg.v4),
                v6: normalise(neg.v6),
            };
            pos.minus(&neg)
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum PortM {
    Any,
    Range(u16, u16),
    List(Vec<PortM>, Vec<PortM>),
}

impl PortM {
    pub(crate) fn matches(&self, p: u16) -> bool {
        match self {
            PortM::Any => true,
            PortM::Range(l, h) => *l <= p && p <= *h,
            PortM::List(pos, neg) => {
                (pos.is_empty() || pos.iter().any(|m| m.matches(p)))
                    && !neg.iter().any(|m| m.matches(p))
            }
        }
    }
}

impl PortM {
    /// The ports accepted, as sorted disjoint ranges.
    pub(crate) fn ranges(&self) -> Vec<(u16, u16)> {
        match self {
            PortM::Any => vec![(0, u16::MAX)],
            PortM::Range(l, h) if l <= h => vec![(*l, *h)],
            PortM::Range(..) => Vec::new(),
            PortM::List(pos, neg) => {
                let pos = if pos.is_empty() {
                    vec![(0, u16::MAX)]
                } else {
                    normalise(pos.iter().flat_map(PortM::ranges).collect())
                };
                let neg = normalise(neg.iter().flat_map(PortM::ranges).collect());
                subtract(&pos, &neg)
            }
        }
    }

    /// Whether the set is small enough to index signatures by (at most 1,024 ports).
    pub(crate) fn is_narrow(&self) -> bool {
        let n: u32 = self
            .ranges()
            .iter()
            .map(|&(l, h)| u32::from(h - l) + 1)
            .sum();
        n <= 1024
    }
}

/// Signatures indexed by a port set of theirs.
#[derive(Debug, Default)]
pub(crate) struct PortIndex(Segments<u16>);

impl PortIndex {
    pub(crate) fn build<'a>(sets: impl IntoIterator<Item = (u32, &'a PortM)>) -> PortIndex {
        let mut e = Vec::new();
        for (sig, m) in sets {
            e.extend(m.ranges().into_iter().map(|(l, h)| (l, h, sig)));
        }
        PortIndex(Segments::build(&e))
    }

    /// Signatures whose set holds `port`, ascending.
    pub(crate) fn get(&self, port: u16) -> &[u32] {
        self.0.get(port)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.sigs.is_empty()
    }
}

fn port(p: &PortSpec) -> PortM {
    match p {
        PortSpec::Any | PortSpec::Var(_) => PortM::Any,
        PortSpec::Port(n) => PortM::Range(*n, *n),
        PortSpec::Range(l, h) => PortM::Range(l.unwrap_or(0), h.unwrap_or(u16::MAX)),
        PortSpec::Not(x) => PortM::List(Vec::new(), vec![port(x)]),
        PortSpec::List(l) => {
            let (mut pos, mut neg) = (Vec::new(), Vec::new());
            for x in l {
                match x {
                    PortSpec::Not(y) => neg.push(port(y)),
                    other => pos.push(port(other)),
                }
            }
            PortM::List(pos, neg)
        }
    }
}

/// One payload keyword of a buffer program.
#[derive(Debug)]
pub(crate) enum Op {
    /// A content and its searcher, built once.
    Content(Content, Searcher),
    Pcre(PcreOp),
    ByteTest(ByteTest),
    ByteJump(ByteJump),
    ByteExtract(ByteExtract),
    ByteMath(ByteMath),
    Isdataat(Isdataat),
    Bsize(Cmp),
}

/// How a content's pattern is looked for in a buffer: each occurrence of its
/// rarest-looking byte (in either case when `nocase`), at offset `at` in the pattern, is
/// a candidate start, checked whole. Built once per content.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Searcher {
    pub at: usize,
    pub lo: u8,
    pub up: u8,
    pub nocase: bool,
}

impl Searcher {
    pub(crate) fn new(pattern: &[u8], nocase: bool) -> Searcher {
        let at = (0..pattern.len())
            .min_by_key(|&i| commonness(pattern[i]))
            .unwrap_or(0);
        let b = pattern.get(at).copied().unwrap_or(0);
        let (lo, up) = if nocase {
            (b.to_ascii_lowercase(), b.to_ascii_uppercase())
        } else {
            (b, b)
        };
        Searcher { at, lo, up, nocase }
    }
}

/// A rough rank of how common a byte is in traffic (higher: more common), to pick the
/// byte a content search jumps to: NUL, space and 0xff, then frequent letters,
/// digits and CR/LF, other letters, other bytes, and punctuation last.
fn commonness(b: u8) -> u8 {
    const LETTERS: &[u8] = b"etaoinsrhldcumfpgwybvkxjqz";
    match b.to_ascii_lowercase() {
        0 | b' ' | 0xff => 255,
        l @ b'a'..=b'z' => {
            let i = LETTERS.iter().position(|&x| x == l).unwrap_or(0) as u8;
            200 - 4 * i
        }
        b'0'..=b'9' | b'\r' | b'\n' => 150,
        0x21..=0x7e => 40,
        _ => 90,
    }
}

impl Op {
    /// A content op with its searcher.
    pub(crate) fn content(c: Content) -> Op {
        let s = Searcher::new(&c.pattern, c.nocase);
        Op::Content(c, s)
    }

    pub(crate) fn is_relative(&self) -> bool {
        match self {
            Op::Content(c, _) => c.is_relative(),
            Op::Pcre(p) => p.relative,
            Op::ByteTest(b) => b.relative,
            Op::ByteJump(b) => b.relative,
            Op::ByteExtract(b) => b.relative,
            Op::ByteMath(b) => b.relative,
            Op::Isdataat(i) => i.relative,
            Op::Bsize(_) => false,
        }
    }
}

/// The keywords of a rule that inspect one buffer (name + transforms), in rule order.
#[derive(Debug)]
pub(crate) struct BufProg {
    pub name: &'static str,
    pub transforms: Vec<Transform>,
    pub ops: Vec<Op>,
}

#[derive(Debug)]
pub(crate) enum PktCheck {
    Dsize(Cmp),
    Int(&'static str, Cmp),
    Flags(TcpFlags),
    IpProto {
        negated: bool,
        op: u8,
        proto: u8,
    },
    /// `decode-event` / `stream-event` (the latter named `stream.…`).
    DecodeEvent(EventRef),
    SameIp,
    /// `ipopts:` (an IPv4 option by Suricata's name, or `any`).
    IpOpt(String),
    /// `stream_size:<server|client|both|either>,<op>,<n>`: which side(s) (0 server,
    /// 1 client, 2 both, 3 either) and the comparison of its sequence-space size.
    StreamSize(u8, Cmp),
    AppProto {
        negated: bool,
        proto: String,
    },
}

#[derive(Debug)]
pub(crate) enum FlowCond {
    IsSet(Vec<u32>),
    IsNotSet(Vec<u32>),
    IntCmp(u32, &'static str, Option<u64>),
}

/// Which host(s) a hostbit/xbit lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HostTrack {
    Src,
    Dst,
    /// `hostbits:…,both`: a check accepts either host, a change applies to both.
    Both,
    /// xbits `track ip_pair`: the (unordered) address pair.
    Pair,
}

/// A hostbit/xbit condition or change (`cmd` is never `NoAlert`); `expire` in seconds.
#[derive(Clone, Debug)]
pub(crate) struct HostBit {
    pub cmd: FlowbitsCmd,
    pub bit: u32,
    pub track: HostTrack,
    pub expire: u32,
}

/// `hostbits:<cmd>,<name>[,<src|dst|both>][,expire <secs>]` (Suricata's default expiry
/// is 30 s, the default host `src`); `None` for `hostbits:noalert`.
fn hostbits(v: &str, names: &mut Names) -> Result<Option<HostBit>, String> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    let cmd = match parts.first().copied() {
        Some("set") => FlowbitsCmd::Set,
        Some("unset") => FlowbitsCmd::Unset,
        Some("toggle") => FlowbitsCmd::Toggle,
        Some("isset") => FlowbitsCmd::IsSet,
        Some("isnotset") => FlowbitsCmd::IsNotSet,
        Some("noalert") if parts.len() == 1 => return Ok(None),
        _ => return Err(format!("hostbits: `{v}`: unknown command")),
    };
    let name = match parts.get(1) {
        Some(n) if !n.is_empty() && !n.contains(char::is_whitespace) => n.to_string(),
        _ => return Err(format!("hostbits: `{v}`: a name is required")),
    };
    let mut track = HostTrack::Src;
    let mut expire = 30;
    for p in parts.iter().skip(2) {
        match *p {
            "src" => track = HostTrack::Src,
            "dst" => track = HostTrack::Dst,
            "both" => track = HostTrack::Both,
            x => match x.split_once(char::is_whitespace) {
                Some(("expire", n)) => {
                    expire = n
                        .trim()
                        .parse()
                        .map_err(|_| format!("hostbits: `{v}`: bad expire"))?
                }
                _ => return Err(format!("hostbits: `{v}`: unknown argument `{x}`")),
            },
        }
    }
    if parts.len() > 4 {
        return Err(format!("hostbits: `{v}`: too many arguments"));
    }
    Ok(Some(HostBit {
        cmd,
        bit: names.bit(&name),
        track,
        expire,
    }))
}

#[derive(Debug)]
pub(crate) enum FlowAct {
    Set(u32),
    Unset(u32),
    Toggle(u32),
    IntSet(u32, u64),
    IntAdd(u32, u64),
    IntSub(u32, u64),
}

/// Where a packet signature's payload keywords look on TCP (Suricata's
/// SIG_FLAG_REQUIRE_PACKET / SIG_FLAG_REQUIRE_STREAM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamMode {
    /// The packet only (`tcp-pkt`, `flow:no_stream`, `dsize`, no payload keywords, not TCP).
    Packet,
    /// The reassembled stream only (`tcp-stream`, `flow:only_stream`).
    Stream,
    /// The stream, and packets whose data did not go into a stream.
    Either,
    /// The stream, then the packet when the stream did not match, whether or not its
    /// data went into the stream: a TCP rule with an absolute `pkt_data` content (`depth`,
    /// `offset` or `startswith`) or `stream_size` (Suricata sets both REQUIRE_STREAM and
    /// REQUIRE_PACKET).
    Both,
}

#[derive(Debug)]
pub(crate) enum SigKind {
    Packet,
    Tx { dirs: Vec<Dir> },
}

#[derive(Debug)]
pub(crate) struct Sig {
    pub meta: Arc<SigMeta>,
    pub kind: SigKind,
    pub bidirectional: bool,
    pub src: AddrM,
    pub dst: AddrM,
    pub sp: PortM,
    pub dp: PortM,
    /// Required IP protocol (`None`: any) and IP version (4/6/0).
    pub ip_proto: Option<u8>,
    /// An `icmp` rule: ICMPv4 or ICMPv6 (`ip_proto` is then `None`).
    pub icmp: bool,
    pub ip_version: u8,
    /// Application protocol the flow must have.
    pub app_proto: Option<&'static str>,
    pub flow: Option<Flow>,
    pub stream: StreamMode,
    pub pkt_checks: Vec<PktCheck>,
    pub bufs: Vec<BufProg>,
    pub conds: Vec<FlowCond>,
    pub acts: Vec<FlowAct>,
    /// hostbits/xbits checks (evaluated after the rest matched) and changes.
    pub host_conds: Vec<HostBit>,
    pub host_acts: Vec<HostBit>,
    pub noalert: bool,
    pub threshold: Option<Threshold>,
    pub detection_filter: Option<Threshold>,
    pub app_events: Vec<EventRef>,
    pub urilen: Option<Cmp>,
    /// `filesize`: a file signature, inspected on each file of the flow when it closes.
    pub filesize: Option<Cmp>,
    /// byte_extract/byte_math variable names (index = slot).
    pub var_names: Vec<String>,
    /// Fast pattern: buffer program index and the (case-folded) bytes.
    pub fast: Option<(usize, Vec<u8>)>,
    /// (action, flowbits role, hostbits/xbits role, priority, load order).
    order: (u8, u8, u8, u32, usize),
    /// A transaction signature's packet part (its `pkt_data` keywords) while compiling;
    /// [`compile`] moves it behind the rules, setting `part_of`.
    part: Option<Box<Sig>>,
    /// This packet part belongs to the transaction signature with this index: a match
    /// only marks the flow direction (`FlowVars`), which that signature requires.
    pub part_of: Option<u32>,
    /// A transaction signature with a packet part.
    pub has_part: bool,
}

impl Sig {
    /// No condition beyond addresses, ports and protocol (Suricata's IP-only and
    /// protocol-detection-only signature types, whose drop/pass apply to the flow).
    pub(crate) fn is_ip_only(&self) -> bool {
        matches!(self.kind, SigKind::Packet)
            && self.bufs.is_empty()
            && self.pkt_checks.is_empty()
            && self.conds.is_empty()
            && self.host_conds.is_empty()
            && self.host_acts.is_empty()
            && self.app_events.is_empty()
            && self.flow.is_none()
            && self.urilen.is_none()
    }
}

/// 0 tcp, 1 udp, 2 icmp(v6), 3 other.
pub(crate) fn proto_class(p: u8) -> usize {
    match p {
        6 => 0,
        17 => 1,
        1 | 58 => 2,
        _ => 3,
    }
}

/// Application protocols whose transactions the sensor parses.
const TX_PROTOS: &[&str] = &["http", "dns", "tls", "ssh", "smtp", "ftp"];

/// Buffers the engine can bind, with the directions they exist in.
fn buffer_dirs(name: &str) -> Option<&'static [Dir]> {
    use Dir::*;
    const TS: &[Dir] = &[ToServer];
    const TC: &[Dir] = &[ToClient];
    const BOTH: &[Dir] = &[ToServer, ToClient];
    Some(match name {
        "http.uri" | "http.uri.raw" | "http.method" | "http.user_agent" | "http.host"
        | "http.host.raw" | "http.request_body" | "http.request_line" | "http.accept"
        | "http.accept_lang" | "http.accept_enc" | "http.referer" | "http.cookie"
        | "http.protocol" => {
            if name == "http.cookie" || name == "http.protocol" {
                BOTH
            } else {
                TS
            }
        }
        "http.stat_code" | "http.stat_msg" | "http.response_line" | "http.location"
        | "http.server" => TC,
        "http.header" | "http.header.raw" | "http.header_names" | "http.content_type"
        | "http.content_len" | "http.connection" | "http.start" | "file.data" => BOTH,
        "http.request_header" => TS,
        "http.response_header" => TC,
        "dns.query" => TS,
        "tls.sni" | "ja3.hash" | "ja3.string" | "ja4.hash" => TS,
        // Suricata 7: to server, the client's certificates (mutual authentication).
        "tls.cert_subject"
        | "tls.cert_issuer"
        | "tls.cert_serial"
        | "tls.cert_fingerprint"
        | "tls.certs" => BOTH,
        "ja3s.hash" | "ja3s.string" => TC,
        "ssh.proto" | "ssh.software" => BOTH,
        _ => return None,
    })
}

fn app_proto_of_buffer(name: &str) -> Option<&'static str> {
    let p = name.split('.').next()?;
    Some(match p {
        "http" => "http",
        "dns" => "dns",
        "tls" | "ja3" | "ja3s" | "ja4" => "tls",
        "ssh" => "ssh",
        _ => return None,
    })
}

fn proto_of_rule(name: &str) -> (Option<u8>, u8, Option<&'static str>) {
    match name {
        "tcp" | "tcp-pkt" | "tcp-stream" => (Some(6), 0, None),
        "udp" => (Some(17), 0, None),
        "icmp" => (None, 0, None),
        "icmpv4" => (Some(1), 4, None),
        "icmpv6" => (Some(58), 6, None),
        "sctp" => (Some(132), 0, None),
        "ipv4" | "ip4" => (None, 4, None),
        "ipv6" | "ip6" => (None, 6, None),
        "http" | "http1" => (None, 0, Some("http")),
        "dns" => (None, 0, Some("dns")),
        "tls" => (Some(6), 0, Some("tls")),
        "ssh" => (Some(6), 0, Some("ssh")),
        "smtp" => (Some(6), 0, Some("smtp")),
        "ftp" => (Some(6), 0, Some("ftp")),
        // Payload rules on SMB flows (the sensor parses SMB; no smb.* buffers yet).
        "smb" => (Some(6), 0, Some("smb")),
        _ => (None, 0, None),
    }
}

/// Why one rule cannot be compiled.
enum Reject {
    Unsupported(String),
    Error(String),
}

struct Names {
    bits: HashMap<String, u32>,
    bit_names: Vec<String>,
    ints: HashMap<String, u32>,
    /// flowvar and pktvar names (pcre captures), index = id.
    flow_vars: Vec<String>,
    pkt_vars: Vec<String>,
}

impl Names {
    fn var(&mut self, scope: VarScope, n: &str) -> u32 {
        let v = match scope {
            VarScope::Flow => &mut self.flow_vars,
            VarScope::Pkt => &mut self.pkt_vars,
        };
        match v.iter().position(|x| x == n) {
            Some(i) => i as u32,
            None => {
                v.push(n.to_string());
                v.len() as u32 - 1
            }
        }
    }
    fn bit(&mut self, n: &str) -> u32 {
        if let Some(&i) = self.bits.get(n) {
            return i;
        }
        let i = self.bit_names.len() as u32;
        self.bits.insert(n.to_string(), i);
        self.bit_names.push(n.to_string());
        i
    }
    fn int(&mut self, n: &str) -> u32 {
        let k = self.ints.len() as u32;
        *self.ints.entry(n.to_string()).or_insert(k)
    }
}

pub(crate) fn compile(rs: &khien_rules::Ruleset, opts: &CompileOptions) -> (Engine, CompileReport) {
    let defaults;
    let vars = match &opts.vars {
        Some(v) => v,
        None => {
            defaults = Vars::suricata_defaults();
            &defaults
        }
    };
    let mut report = CompileReport::default();
    let mut names = Names {
        bits: HashMap::new(),
        bit_names: Vec::new(),
        ints: HashMap::new(),
        flow_vars: Vec::new(),
        pkt_vars: Vec::new(),
    };
    let mut sigs = Vec::new();
    for (n, lr) in rs.rules().enumerate() {
        match compile_rule(&lr.rule, n, vars, opts, &mut names) {
            Ok(s) => sigs.push(s),
            Err(Reject::Unsupported(k)) => report.unsupported.push(Unsupported {
                gid: lr.rule.gid,
                sid: lr.rule.sid,
                keyword: k,
                file: lr.file.to_string(),
                line: lr.line,
            }),
            Err(Reject::Error(m)) => report.errors.push((lr.rule.sid, m)),
        }
    }
    sigs.sort_by_key(|s| s.order);
    for (i, s) in sigs.iter_mut().enumerate() {
        // Not shared yet, so this does not clone.
        Arc::make_mut(&mut s.meta).num = i as u32;
    }
    report.loaded = sigs.len();
    let mut parts = Vec::new();
    for (i, s) in sigs.iter_mut().enumerate() {
        if let Some(mut p) = s.part.take() {
            p.part_of = Some(i as u32);
            p.meta = Arc::clone(&s.meta);
            parts.push(*p);
        }
    }
    sigs.extend(parts);
    tracing::debug!(
        loaded = report.loaded,
        unsupported = report.unsupported.len(),
        errors = report.errors.len(),
        "ruleset compiled"
    );
    let mut packet_lists: [Vec<u32>; 4] = Default::default();
    let mut tx_lists: BTreeMap<&'static str, Vec<u32>> = BTreeMap::new();
    for (i, s) in sigs.iter().enumerate() {
        let i = i as u32;
        match &s.kind {
            SigKind::Packet => match s.ip_proto {
                Some(p) => packet_lists[proto_class(p)].push(i),
                None => {
                    let classes: &[usize] = if s.icmp { &[2] } else { &[0, 1, 2, 3] };
                    for &c in classes {
                        packet_lists[c].push(i);
                    }
                }
            },
            SigKind::Tx { .. } if s.filesize.is_some() => {
                tx_lists.entry(FILE_GROUP).or_default().push(i);
            }
            SigKind::Tx { .. } => {
                if let Some(p) = s.app_proto {
                    tx_lists.entry(p).or_default().push(i);
                }
            }
        }
    }
    let stream_list: Vec<u32> = packet_lists[0]
        .iter()
        .copied()
        .filter(|&i| sigs[i as usize].stream != StreamMode::Packet)
        .collect();
    let by = |ports: bool, hot: bool| IndexBy {
        addrs: true,
        ports,
        hot,
        prefilter: opts.prefilter,
    };
    let stream_group = Group::build(&sigs, stream_list, by(true, true));
    // A TCP packet whose payload went into the stream is inspected only by `Packet` and
    // `Both` signatures, any other TCP packet by all but the `Stream` ones: one prefilter
    // each.
    let tcp_added_list: Vec<u32> = packet_lists[0]
        .iter()
        .copied()
        .filter(|&i| {
            matches!(
                sigs[i as usize].stream,
                StreamMode::Packet | StreamMode::Both
            )
        })
        .collect();
    let tcp_added_group = Group::build(&sigs, tcp_added_list, by(true, true));
    packet_lists[0].retain(|&i| sigs[i as usize].stream != StreamMode::Stream);
    // TCP and UDP packets are most of the traffic: their prefilters get the faster
    // matcher, and their packets always have ports.
    let mut class = 0;
    let packet_groups = packet_lists.map(|l| {
        class += 1;
        Group::build(&sigs, l, by(class <= 2, class <= 2))
    });
    let tx_groups = tx_lists
        .into_iter()
        .map(|(k, l)| {
            let by = IndexBy {
                addrs: false,
                ports: false,
                hot: false,
                prefilter: opts.prefilter,
            };
            (k, Group::build(&sigs, l, by))
        })
        .collect();
    let engine = Engine {
        id: crate::next_engine_id(),
        loaded: report.loaded,
        sigs,
        flowbit_names: names.bit_names,
        flowvar_names: names.flow_vars,
        pktvar_names: names.pkt_vars,
        flowint_names: {
            let mut v = vec![String::new(); names.ints.len()];
            for (n, &i) in &names.ints {
                if let Some(slot) = v.get_mut(i as usize) {
                    slot.clone_from(n);
                }
            }
            v
        },
        packet_groups,
        tcp_added_group,
        stream_group,
        tx_groups,
        suppress: Suppressions::new(&opts.thresholds, vars),
    };
    (engine, report)
}

fn num<T: Copy>(v: &NumOrVar<T>, what: &str) -> Result<T, Reject> {
    match v {
        NumOrVar::Num(n) => Ok(*n),
        NumOrVar::Var(_) => Err(Reject::Unsupported(format!("{what} with a variable"))),
    }
}

fn compile_rule(
    rule: &Rule,
    order: usize,
    vars: &Vars,
    opts: &CompileOptions,
    names: &mut Names,
) -> Result<Sig, Reject> {
    let proto = rule.protocol.0;
    let (ip_proto, ip_version, mut app_proto) = proto_of_rule(proto);
    let known = matches!(
        proto,
        "ip" | "pkthdr"
            | "tcp"
            | "tcp-pkt"
            | "tcp-stream"
            | "udp"
            | "icmp"
            | "icmpv4"
            | "icmpv6"
            | "sctp"
            | "ipv4"
            | "ip4"
            | "ipv6"
            | "ip6"
    ) || app_proto.is_some();
    if !known {
        return Err(Reject::Unsupported(format!("protocol {proto}")));
    }
    let resolve_a = |a: &AddrSpec| {
        vars.resolve_address(a)
            .map(|r| addr(&r))
            .map_err(|(_, m)| Reject::Error(m))
    };
    let resolve_p = |p: &PortSpec| {
        vars.resolve_ports(p)
            .map(|r| port(&r))
            .map_err(|(_, m)| Reject::Error(m))
    };
    let mut msg = String::new();
    let mut class = None;
    let mut priority = None;
    let mut metadata = Vec::new();
    let mut target = None;
    let mut noalert = false;
    let mut flow = None;
    let mut pkt_checks = Vec::new();
    let mut bufs: Vec<BufProg> = Vec::new();
    let mut conds = Vec::new();
    let mut acts = Vec::new();
    let mut threshold = None;
    let mut detection_filter = None;
    let mut app_events = Vec::new();
    let mut urilen = None;
    let mut filesize = None;
    let mut var_names: Vec<String> = Vec::new();
    // Suricata orders flowbits writers (set/unset/toggle) first, then rules that read and
    // write, then readers, then rules without flowbits.
    let (mut fb_read, mut fb_write) = (false, false);
    let (mut host_conds, mut host_acts) = (Vec::new(), Vec::new());
    let push_op = |bufs: &mut Vec<BufProg>, b: &BufferRef, op: Op| -> Result<(), Reject> {
        if !crate::inspect::is_packet_buffer(b.name) && buffer_dirs(b.name).is_none() {
            return Err(Reject::Unsupported(format!("buffer {}", b.name)));
        }
        for t in &b.transforms {
            if !crate::transform::supported(t) {
                return Err(Reject::Unsupported(format!("transform {}", t.name())));
            }
        }
        match bufs
            .iter_mut()
            .find(|p| p.name == b.name && p.transforms == b.transforms)
        {
            Some(p) => p.ops.push(op),
            None => bufs.push(BufProg {
                name: b.name,
                transforms: b.transforms.clone(),
                ops: vec![op],
            }),
        }
        Ok(())
    };
    for o in &rule.options {
        match &o.kind {
            OptionKind::Msg(m) => msg = m.clone(),
            OptionKind::Sid(_) | OptionKind::Rev(_) | OptionKind::Gid(_) => {}
            OptionKind::Reference(_) => {}
            OptionKind::Classtype(c) => class = Some(c.clone()),
            OptionKind::Priority(p) => priority = Some(*p),
            OptionKind::Metadata(m) => metadata.extend(m.iter().cloned()),
            OptionKind::Target(t) => target = Some(*t),
            OptionKind::Noalert => noalert = true,
            OptionKind::Content(b, c) => {
                if c.replace.is_some() {
                    return Err(Reject::Unsupported("replace".into()));
                }
                let vs = [&c.depth, &c.offset]
                    .into_iter()
                    .flatten()
                    .filter_map(|v| match v {
                        NumOrVar::Var(n) => Some(n),
                        NumOrVar::Num(_) => None,
                    })
                    .chain([&c.distance, &c.within].into_iter().flatten().filter_map(
                        |v| match v {
                            NumOrVar::Var(n) => Some(n),
                            NumOrVar::Num(_) => None,
                        },
                    ));
                for v in vs {
                    if !var_names.contains(v) {
                        return Err(Reject::Error(format!("unknown variable {v}")));
                    }
                }
                push_op(&mut bufs, b, Op::content(c.clone()))?;
            }
            OptionKind::Pcre(b, p) => {
                let op =
                    PcreOp::new(p, &mut |scope, n| names.var(scope, n)).map_err(Reject::Error)?;
                push_op(&mut bufs, b, Op::Pcre(op))?;
            }
            OptionKind::ByteTest(b, t) => {
                num(&t.nbytes, "byte_test bytes")?;
                num(&t.offset, "byte_test offset")?;
                if let NumOrVar::Var(v) = &t.value {
                    if !var_names.contains(v) {
                        return Err(Reject::Error(format!("unknown variable {v}")));
                    }
                }
                if t.endian == Some(khien_rules::Endian::Dce) {
                    return Err(Reject::Unsupported("byte_test dce".into()));
                }
                push_op(&mut bufs, b, Op::ByteTest(t.clone()))?;
            }
            OptionKind::ByteJump(b, j) => {
                num(&j.offset, "byte_jump offset")?;
                if let NumOrVar::Var(v) = &j.nbytes {
                    if !var_names.contains(v) {
                        return Err(Reject::Error(format!("unknown variable {v}")));
                    }
                }
                if j.endian == Some(khien_rules::Endian::Dce) {
                    return Err(Reject::Unsupported("byte_jump dce".into()));
                }
                push_op(&mut bufs, b, Op::ByteJump(j.clone()))?;
            }
            OptionKind::ByteExtract(b, e) => {
                if e.endian == Some(khien_rules::Endian::Dce) {
                    return Err(Reject::Unsupported("byte_extract dce".into()));
                }
                var_names.push(e.name.clone());
                push_op(&mut bufs, b, Op::ByteExtract(e.clone()))?;
            }
            OptionKind::ByteMath(b, m) => {
                if m.endian == Some(khien_rules::Endian::Dce) {
                    return Err(Reject::Unsupported("byte_math dce".into()));
                }
                num(&m.nbytes, "byte_math bytes")?;
                if let NumOrVar::Var(v) = &m.rvalue {
                    if !var_names.contains(v) {
                        return Err(Reject::Error(format!("unknown variable {v}")));
                    }
                }
                var_names.push(m.result.clone());
                push_op(&mut bufs, b, Op::ByteMath(m.clone()))?;
            }
            OptionKind::Isdataat(b, i) => {
                num(&i.position, "isdataat")?;
                push_op(&mut bufs, b, Op::Isdataat(i.clone()))?;
            }
            OptionKind::Bsize(b, c) => push_op(&mut bufs, b, Op::Bsize(c.clone()))?,
            OptionKind::Flow(f) => {
                if f.only_frag || f.no_frag {
                    return Err(Reject::Unsupported("flow:only_frag/no_frag".into()));
                }
                flow = Some(f.clone());
            }
            OptionKind::Flowbits(fb) => {
                let ids: Vec<u32> = fb.names.iter().map(|n| names.bit(n)).collect();
                match fb.cmd {
                    FlowbitsCmd::Set => {
                        acts.extend(ids.iter().map(|&i| FlowAct::Set(i)));
                        fb_write = true;
                    }
                    FlowbitsCmd::Unset => {
                        acts.extend(ids.iter().map(|&i| FlowAct::Unset(i)));
                        fb_write = true;
                    }
                    FlowbitsCmd::Toggle => {
                        acts.extend(ids.iter().map(|&i| FlowAct::Toggle(i)));
                        fb_write = true;
                    }
                    FlowbitsCmd::IsSet => {
                        conds.push(FlowCond::IsSet(ids));
                        fb_read = true;
                    }
                    FlowbitsCmd::IsNotSet => {
                        conds.push(FlowCond::IsNotSet(ids));
                        fb_read = true;
                    }
                    FlowbitsCmd::NoAlert => noalert = true,
                }
            }
            OptionKind::Flowint(fi) => {
                let id = names.int(&fi.name);
                let v = match &fi.value {
                    None => None,
                    Some(NumOrVar::Num(n)) => Some(*n),
                    Some(NumOrVar::Var(_)) => {
                        return Err(Reject::Unsupported("flowint with a variable".into()))
                    }
                };
                match (fi.op, v) {
                    ("=", Some(v)) => acts.push(FlowAct::IntSet(id, v)),
                    ("+", Some(v)) => acts.push(FlowAct::IntAdd(id, v)),
                    ("-", Some(v)) => acts.push(FlowAct::IntSub(id, v)),
                    (op, v) => conds.push(FlowCond::IntCmp(id, op, v)),
                }
            }
            OptionKind::Threshold(t) => threshold = Some(t.clone()),
            OptionKind::DetectionFilter(t) => detection_filter = Some(t.clone()),
            OptionKind::Dsize(c) => pkt_checks.push(PktCheck::Dsize(c.clone())),
            OptionKind::Urilen(c, kind) => {
                if kind.is_some_and(|k| k != "norm") {
                    return Err(Reject::Unsupported("urilen raw".into()));
                }
                urilen = Some(c.clone());
            }
            OptionKind::IntCmp(k, c) => match *k {
                "ttl" | "tos" | "id" | "itype" | "icode" | "icmp_id" | "icmp_seq" | "tcp.ack"
                | "tcp.seq" | "tcp.window" | "tcp.mss" | "fragoffset" => {
                    pkt_checks.push(PktCheck::Int(k, c.clone()))
                }
                other => return Err(Reject::Unsupported(other.to_string())),
            },
            OptionKind::TcpFlags(f) => pkt_checks.push(PktCheck::Flags(f.clone())),
            OptionKind::IpProto(s) => pkt_checks.push(ip_proto_check(s)?),
            OptionKind::AppLayerProtocol { negated, proto } => {
                pkt_checks.push(PktCheck::AppProto {
                    negated: *negated,
                    proto: proto.clone(),
                })
            }
            OptionKind::AppLayerEvent(e) => {
                if e.negated {
                    return Err(Reject::Unsupported("app-layer-event negated".into()));
                }
                if app_proto.is_none() {
                    app_proto = e
                        .name
                        .split('.')
                        .next()
                        .and_then(|p| TX_PROTOS.iter().copied().find(|x| *x == p));
                }
                app_events.push(e.clone());
            }
            OptionKind::DecodeEvent(e) => pkt_checks.push(PktCheck::DecodeEvent(e.clone())),
            // Packets carry stream events by their full name (`stream.…`).
            OptionKind::StreamEvent(e) => {
                let name = e.name.strip_prefix("stream.").unwrap_or(&e.name);
                pkt_checks.push(PktCheck::DecodeEvent(EventRef {
                    negated: e.negated,
                    name: format!("stream.{name}"),
                }))
            }
            OptionKind::Generic("sameip", _) => pkt_checks.push(PktCheck::SameIp),
            OptionKind::Generic("ipopts", Some(v)) => {
                let v = v.trim().to_ascii_lowercase();
                if v != "any" && crate::inspect::ipopt_known(&v).is_none() {
                    return Err(Reject::Error(format!("ipopts: unknown option {v}")));
                }
                pkt_checks.push(PktCheck::IpOpt(v))
            }
            OptionKind::Generic(
                k @ ("tls.subject" | "tls.issuerdn" | "tls.fingerprint"),
                Some(v),
            ) => {
                // Legacy form: a case-sensitive substring of the certificate field (the
                // fingerprint: case-insensitive, Suricata lower-cases it).
                let (negated, v) = match v.trim().strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, v.trim()),
                };
                let v = v
                    .strip_prefix('"')
                    .and_then(|x| x.strip_suffix('"'))
                    .unwrap_or(v);
                let name = match *k {
                    "tls.subject" => "tls.cert_subject",
                    "tls.issuerdn" => "tls.cert_issuer",
                    _ => "tls.cert_fingerprint",
                };
                let c = Content {
                    pattern: v.as_bytes().to_vec(),
                    negated,
                    nocase: name == "tls.cert_fingerprint",
                    rawbytes: false,
                    depth: None,
                    offset: None,
                    distance: None,
                    within: None,
                    startswith: false,
                    endswith: false,
                    fast_pattern: None,
                    replace: None,
                };
                let b = BufferRef {
                    name,
                    transforms: Vec::new(),
                };
                push_op(&mut bufs, &b, Op::content(c))?;
            }
            OptionKind::Generic("requires", _) => {}
            OptionKind::Generic("prefilter", _) => {}
            OptionKind::Generic("hostbits", v) => {
                match hostbits(v.as_deref().unwrap_or(""), names).map_err(Reject::Error)? {
                    None => noalert = true,
                    Some(hb) if matches!(hb.cmd, FlowbitsCmd::IsSet | FlowbitsCmd::IsNotSet) => {
                        host_conds.push(hb)
                    }
                    Some(hb) => host_acts.push(hb),
                }
            }
            OptionKind::Generic("stream_size", Some(v)) => {
                let parts: Vec<&str> = v.split(',').map(str::trim).collect();
                let side = match parts.first() {
                    Some(&"server") => 0,
                    Some(&"client") => 1,
                    Some(&"both") => 2,
                    Some(&"either") => 3,
                    _ => return Err(Reject::Error(format!("stream_size: {v}"))),
                };
                let n: u64 = parts
                    .get(2)
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| Reject::Error(format!("stream_size: {v}")))?;
                let c = match parts.get(1) {
                    Some(&"<") => Cmp::Lt(n),
                    Some(&">") => Cmp::Gt(n),
                    Some(&"=") => Cmp::Eq(n),
                    Some(&"!=") => Cmp::Ne(n),
                    Some(&"<=") => Cmp::Le(n),
                    Some(&">=") => Cmp::Ge(n),
                    _ => return Err(Reject::Error(format!("stream_size: {v}"))),
                };
                pkt_checks.push(PktCheck::StreamSize(side, c));
            }
            OptionKind::Generic("filesize", Some(v)) => {
                filesize =
                    Some(filesize_cmp(v).ok_or_else(|| Reject::Error(format!("filesize: `{v}`")))?)
            }
            OptionKind::Generic(k, _) => return Err(Reject::Unsupported(k.to_string())),
            OptionKind::PayloadGeneric(_, k, _) => return Err(Reject::Unsupported(k.to_string())),
            OptionKind::Xbits(x) => {
                let track = match x.track {
                    "ip_dst" => HostTrack::Dst,
                    "ip_pair" => HostTrack::Pair,
                    _ => HostTrack::Src,
                };
                let hb = HostBit {
                    cmd: x.cmd,
                    bit: names.bit(&x.name),
                    track,
                    expire: x.expire.unwrap_or(30),
                };
                match x.cmd {
                    FlowbitsCmd::IsSet | FlowbitsCmd::IsNotSet => host_conds.push(hb),
                    FlowbitsCmd::NoAlert => noalert = true,
                    _ => host_acts.push(hb),
                }
            }
            OptionKind::Tag(_) => return Err(Reject::Unsupported("tag".into())),
            OptionKind::Base64Decode(..) => {
                return Err(Reject::Unsupported("base64_decode".into()))
            }
            OptionKind::EngineEvent(_) => return Err(Reject::Unsupported("engine-event".into())),
            _ => return Err(Reject::Unsupported("unknown option".into())),
        }
    }
    // Transaction or packet signature.
    let app_bufs: Vec<&BufProg> = bufs
        .iter()
        .filter(|b| !crate::inspect::is_packet_buffer(b.name))
        .collect();
    let tx = !app_bufs.is_empty() || !app_events.is_empty() || urilen.is_some();
    let kind = if filesize.is_some() {
        if tx || !bufs.is_empty() {
            return Err(Reject::Unsupported("filesize with buffers".into()));
        }
        let dirs = match flow.as_ref().and_then(|f| f.to_server) {
            Some(true) => vec![Dir::ToServer],
            Some(false) => vec![Dir::ToClient],
            None => vec![Dir::ToServer, Dir::ToClient],
        };
        SigKind::Tx { dirs }
    } else if tx {
        if app_proto.is_none() {
            app_proto = app_bufs.iter().find_map(|b| app_proto_of_buffer(b.name));
        }
        if app_proto.is_none() && app_bufs.iter().any(|b| b.name == "file.data") {
            app_proto = Some("http");
        }
        if urilen.is_some() {
            app_proto = app_proto.or(Some("http"));
        }
        let Some(ap) = app_proto else {
            return Err(Reject::Unsupported(
                "app-layer buffers without a protocol".into(),
            ));
        };
        if !TX_PROTOS.contains(&ap) {
            return Err(Reject::Unsupported(format!("protocol {ap}")));
        }
        if bufs
            .iter()
            .any(|b| crate::inspect::is_packet_buffer(b.name) && b.name != "pkt_data")
        {
            return Err(Reject::Unsupported(
                "header buffers mixed with app-layer buffers".into(),
            ));
        }
        // Directions: fixed by the buffers, else by `flow:`, else both.
        let mut dirs: Vec<Dir> = vec![Dir::ToServer, Dir::ToClient];
        for b in &app_bufs {
            let d = buffer_dirs(b.name).unwrap_or(&[]);
            dirs.retain(|x| d.contains(x));
        }
        if let Some(ts) = flow.as_ref().and_then(|f| f.to_server) {
            let want = if ts { Dir::ToServer } else { Dir::ToClient };
            if dirs.contains(&want)
                || app_bufs.is_empty()
                || bufs.iter().any(|b| b.name == "file.data")
            {
                dirs = vec![want];
            }
        }
        if dirs.is_empty() {
            // Request and response buffers together: the response side of the tx.
            dirs = vec![Dir::ToClient];
        }
        SigKind::Tx { dirs }
    } else {
        SigKind::Packet
    };
    let classtype = class.as_ref().and_then(|c| opts.classification.get(c));
    let priority = priority.or(classtype.map(|c| c.priority)).unwrap_or(3);
    let action = match rule.action {
        khien_rules::Action::Alert => Action::Alert,
        khien_rules::Action::Pass => Action::Pass,
        khien_rules::Action::Drop => Action::Drop,
        _ => Action::Reject,
    };
    let default_rank = match action {
        Action::Pass => 0,
        Action::Drop => 1,
        Action::Reject => 2,
        Action::Alert => 3,
    };
    let action_rank = match opts.action_order.iter().position(|&a| a == action) {
        Some(i) => i as u8,
        None => opts.action_order.len() as u8 + default_rank,
    };
    // A transaction signature's `pkt_data` keywords are its packet part, inspected on the
    // flow's packets and stream (`Sig::part`).
    let part_bufs: Vec<BufProg> = if matches!(kind, SigKind::Tx { .. }) {
        let (part, app) = std::mem::take(&mut bufs)
            .into_iter()
            .partition(|b| b.name == "pkt_data");
        bufs = app;
        part
    } else {
        Vec::new()
    };
    let fast = choose_fast(&bufs);
    let payload = bufs
        .iter()
        .any(|b| b.name == "pkt_data" && !b.ops.is_empty());
    let tcp = ip_proto.is_none_or(|p| p == 6) && !matches!(proto, "icmp" | "pkthdr");
    let stream = if !payload
        || !tcp
        || !matches!(kind, SigKind::Packet)
        || proto == "tcp-pkt"
        || flow.as_ref().is_some_and(|f| f.no_stream)
        || pkt_checks.iter().any(|c| matches!(c, PktCheck::Dsize(_)))
    {
        StreamMode::Packet
    } else if proto == "tcp-stream" || flow.as_ref().is_some_and(|f| f.only_stream) {
        StreamMode::Stream
    } else if pkt_checks
        .iter()
        .any(|c| matches!(c, PktCheck::StreamSize(..)))
        || bufs.iter().filter(|b| b.name == "pkt_data").any(|b| {
            b.ops.iter().any(|o| {
                matches!(o, Op::Content(c, _) if c.depth.is_some() || c.offset.is_some() || c.startswith)
            })
        })
    {
        StreamMode::Both
    } else {
        StreamMode::Either
    };
    let meta = SigMeta {
        sid: rule.sid,
        gid: rule.gid,
        rev: rule.rev,
        msg,
        category: classtype.map(|c| c.description.clone()),
        priority,
        action,
        metadata,
        text: rule.to_string(),
        target,
        num: 0,
    };
    // Suricata orders hostbits/xbits writers before readers too, after flowbits.
    let host_role = match (!host_acts.is_empty(), !host_conds.is_empty()) {
        (true, false) => 0,
        (true, true) => 1,
        (false, true) => 2,
        (false, false) => 3,
    };
    let (src, dst) = (resolve_a(&rule.src)?, resolve_a(&rule.dst)?);
    let (sp, dp) = (resolve_p(&rule.src_ports)?, resolve_p(&rule.dst_ports)?);
    let bidirectional = rule.direction == khien_rules::Direction::Both;
    let order = (
        action_rank,
        match (fb_write, fb_read) {
            (true, false) => 0,
            (true, true) => 1,
            (false, true) => 2,
            (false, false) => 3,
        },
        host_role,
        priority,
        order,
    );
    let meta = Arc::new(meta);
    let part = (!part_bufs.is_empty()).then(|| {
        // Suricata inspects it on the raw stream (a TCP signature's packets too, here, so
        // that it is seen before the transaction it belongs to is complete).
        let stream = if !tcp || proto == "tcp-pkt" || flow.as_ref().is_some_and(|f| f.no_stream) {
            StreamMode::Packet
        } else if proto == "tcp-stream" || flow.as_ref().is_some_and(|f| f.only_stream) {
            StreamMode::Stream
        } else {
            StreamMode::Both
        };
        Box::new(Sig {
            meta: Arc::clone(&meta),
            kind: SigKind::Packet,
            bidirectional,
            src: src.clone(),
            dst: dst.clone(),
            sp: sp.clone(),
            dp: dp.clone(),
            ip_proto,
            icmp: proto == "icmp",
            ip_version,
            // The flow's protocol is often not known yet when its first data is seen;
            // the transaction part checks it.
            app_proto: None,
            flow: flow.clone(),
            stream,
            pkt_checks: Vec::new(),
            fast: choose_fast(&part_bufs),
            bufs: part_bufs,
            conds: Vec::new(),
            acts: Vec::new(),
            host_conds: Vec::new(),
            host_acts: Vec::new(),
            noalert: true,
            threshold: None,
            detection_filter: None,
            app_events: Vec::new(),
            urilen: None,
            filesize: None,
            var_names: var_names.clone(),
            order,
            part: None,
            part_of: None,
            has_part: false,
        })
    });
    Ok(Sig {
        meta,
        kind,
        bidirectional,
        src,
        dst,
        sp,
        dp,
        ip_proto,
        icmp: proto == "icmp",
        ip_version,
        app_proto,
        flow,
        stream,
        pkt_checks,
        bufs,
        conds,
        acts,
        host_conds,
        host_acts,
        noalert,
        threshold,
        detection_filter,
        app_events,
        urilen,
        filesize,
        var_names,
        fast,
        order,
        has_part: part.is_some(),
        part,
        part_of: None,
    })
}

/// The transaction group of file signatures: [`crate::TxBuffers::proto`] of a closed file.
pub(crate) const FILE_GROUP: &str = "file";

/// `filesize` values: `N`, `<N`, `>N`, `<=N`, `>=N`, `N<>M`, `N-M` (exclusive), `!N`.
fn filesize_cmp(v: &str) -> Option<Cmp> {
    let v = v.trim();
    let n = |x: &str| x.trim().parse::<u64>().ok();
    Some(if let Some(r) = v.strip_prefix("<=") {
        Cmp::Le(n(r)?)
    } else if let Some(r) = v.strip_prefix(">=") {
        Cmp::Ge(n(r)?)
    } else if let Some(r) = v.strip_prefix('<') {
        Cmp::Lt(n(r)?)
    } else if let Some(r) = v.strip_prefix('>') {
        Cmp::Gt(n(r)?)
    } else if let Some(r) = v.strip_prefix('!') {
        Cmp::Ne(n(r)?)
    } else if let Some((a, b)) = v.split_once("<>").or_else(|| v.split_once('-')) {
        let (a, b) = (n(a)?, n(b)?);
        if a >= b {
            return None;
        }
        Cmp::Range(a, b)
    } else {
        Cmp::Eq(n(v)?)
    })
}

fn ip_proto_check(s: &str) -> Result<PktCheck, Reject> {
    let (negated, op, rest) = match s.as_bytes().first() {
        Some(b'!') => (true, b'=', &s[1..]),
        Some(b'<') => (false, b'<', &s[1..]),
        Some(b'>') => (false, b'>', &s[1..]),
        _ => (false, b'=', s),
    };
    let proto = match rest.trim() {
        "tcp" => 6,
        "udp" => 17,
        "icmp" => 1,
        "ipv6-icmp" | "icmpv6" => 58,
        "igmp" => 2,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "sctp" => 132,
        n => n
            .parse()
            .map_err(|_| Reject::Unsupported(format!("ip_proto:{s}")))?,
    };
    Ok(PktCheck::IpProto { negated, op, proto })
}

/// Suricata's choice: an explicit `fast_pattern`, else among the non-negated contents of
/// the highest-priority buffer (app-layer buffers before the packet payload) the longest,
/// ties broken by the most distinct bytes, then by rule order.
fn choose_fast(bufs: &[BufProg]) -> Option<(usize, Vec<u8>)> {
    let mut best: Option<(usize, &Content, (u8, usize, usize))> = None;
    for (bi, b) in bufs.iter().enumerate() {
        for op in &b.ops {
            let Op::Content(c, _) = op else { continue };
            if c.fast_pattern.is_some() {
                if c.negated {
                    return None;
                }
                let pat = match c.fast_pattern {
                    Some(FastPattern::Chop { offset, length }) => {
                        let s = usize::from(offset).min(c.pattern.len());
                        let e = (s + usize::from(length)).min(c.pattern.len());
                        c.pattern[s..e].to_vec()
                    }
                    _ => c.pattern.clone(),
                };
                return (!pat.is_empty()).then(|| (bi, pat.to_ascii_lowercase()));
            }
            if c.negated || c.pattern.is_empty() {
                continue;
            }
            let mut seen = [false; 256];
            let mut distinct = 0;
            for &x in &c.pattern {
                if !seen[usize::from(x)] {
                    seen[usize::from(x)] = true;
                    distinct += 1;
                }
            }
            let key = (
                u8::from(b.name != "pkt_data" || !b.transforms.is_empty()),
                c.pattern.len(),
                distinct,
            );
            if best.as_ref().is_none_or(|(_, _, k)| key > *k) {
                best = Some((bi, c, key));
            }
        }
    }
    best.map(|(bi, c, _)| (bi, c.pattern.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> AddrSpec {
        let r = khien_rules::parse_rule(&format!("alert ip {s} any -> any any (sid:1;)"))
            .expect("rule parses");
        r.src
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn address_sets_follow_lists_and_negations() {
        let m = addr(&parse(
            "[10.0.0.0/8,!10.1.0.0/16,192.168.1.5,2001:db8::/32]",
        ));
        assert!(m.matches(ip("10.0.0.1")));
        assert!(m.matches(ip("10.255.255.255")));
        assert!(!m.matches(ip("10.1.2.3")));
        assert!(m.matches(ip("10.2.0.0")));
        assert!(m.matches(ip("192.168.1.5")));
        assert!(!m.matches(ip("192.168.1.4")));
        assert!(!m.matches(ip("192.168.1.6")));
        assert!(m.matches(ip("2001:db8::1")));
        assert!(!m.matches(ip("2001:db9::1")));
        assert!(m.narrow_size().is_none());
        let neg = addr(&parse("!192.168.0.0/16"));
        assert!(neg.matches(ip("8.8.8.8")));
        assert!(neg.matches(ip("::1")));
        assert!(!neg.matches(ip("192.168.3.3")));
        assert!(neg.matches(ip("192.169.0.0")));
        assert!(neg.matches(ip("192.167.255.255")));
        let any = addr(&parse("any"));
        assert!(any.matches(ip("0.0.0.0")) && any.matches(ip("255.255.255.255")));
        assert!(any.matches(ip("ffff::")));
        let edge = addr(&parse("[0.0.0.0/32,255.255.255.255,1.2.3.4-1.2.3.9]"));
        assert!(edge.matches(ip("0.0.0.0")) && edge.matches(ip("255.255.255.255")));
        assert!(edge.matches(ip("1.2.3.9")) && !edge.matches(ip("1.2.3.10")));
        assert_eq!(edge.narrow_size(), Some(8));
        // An IP reputation list (Spamhaus DROP: networks up to /12) is narrow; `any`
        // and the complement of a /16 are not.
        let drop = addr(&parse(
            "[27.146.0.0/16,36.0.8.0/21,101.134.0.0/15,100.64.0.0/12]",
        ));
        assert_eq!(
            drop.narrow_size(),
            Some((1 << 16) + (1 << 11) + (1 << 17) + (1 << 20))
        );
        assert!(any.narrow_size().is_none() && neg.narrow_size().is_none());
    }

    /// Rules without a fast pattern are candidates only for packets their narrowest
    /// index admits: a /16 or smaller address set, else a port list, else `$HOME_NET`
    /// or a large reputation list.
    #[test]
    fn rules_without_fast_pattern_are_indexed_by_their_narrowest_set() {
        let mut rs = khien_rules::Ruleset::new(Default::default());
        rs.add_file(
            "t.rules",
            "alert tcp $EXTERNAL_NET any -> $HOME_NET 22 (flags:S; sid:1;)\n\
             alert ip [27.146.0.0/16,101.134.0.0/15] any -> $HOME_NET any (sid:2;)\n\
             alert tcp 198.51.100.7 any -> $HOME_NET 22 (sid:3;)\n\
             alert ip $HOME_NET any -> $EXTERNAL_NET any (ip_proto:41; sid:4;)\n\
             alert tcp any any -> any any (flags:S; sid:5;)\n",
        );
        let (e, rep) = crate::Engine::compile(&rs, &CompileOptions::default());
        assert!(rep.unsupported.is_empty() && rep.errors.is_empty());
        let sid = |i: &u32| e.sigs[*i as usize].meta.sid;
        let cands = |src: &str, sp: u16, dst: &str, dp: u16| {
            let mut out = Vec::new();
            let key = crate::inspect::PktKey {
                src: ip(src),
                dst: ip(dst),
                sp,
                dp,
            };
            let mut st = crate::inspect::PrefilterState::default();
            e.packet_groups[0].candidates(Some(key), |_| Vec::new(), &mut out, &mut st);
            let mut sids: Vec<u32> = out.iter().map(sid).collect();
            sids.sort_unstable();
            sids.dedup();
            sids
        };
        // Ordinary traffic inside $HOME_NET: the rule on any address and the
        // `$HOME_NET` source rule.
        assert_eq!(cands("10.0.0.1", 40000, "10.0.0.2", 443), vec![4, 5]);
        // Port 22 brings the SSH scan rule in, from any address.
        assert_eq!(cands("10.0.0.1", 40000, "10.0.0.2", 22), vec![1, 4, 5]);
        assert_eq!(cands("198.51.100.7", 40000, "10.0.0.2", 22), vec![1, 3, 5]);
        assert_eq!(cands("101.135.1.1", 40000, "10.0.0.2", 80), vec![2, 5]);
    }

    #[test]
    fn port_sets_and_index() {
        let r = khien_rules::parse_rule(
            "alert tcp any [1:1024,!80,8080] -> any ![0:442,444:65535] (sid:1;)",
        )
        .expect("rule parses");
        let (sp, dp) = (port(&r.src_ports), port(&r.dst_ports));
        assert_eq!(sp.ranges(), vec![(1, 79), (81, 1024), (8080, 8080)]);
        assert_eq!(dp.ranges(), vec![(443, 443)]);
        assert!(sp.is_narrow() && dp.is_narrow());
        assert!(!PortM::Any.is_narrow());
        let idx = PortIndex::build([(3, &sp), (4, &dp)]);
        assert_eq!(idx.get(443), &[3, 4]);
        assert_eq!(idx.get(80), &[] as &[u32]);
        assert_eq!(idx.get(8080), &[3]);
        assert_eq!(idx.get(0), &[] as &[u32]);
        assert_eq!(idx.get(65535), &[] as &[u32]);
        for p in [0u16, 1, 79, 80, 81, 1024, 1025, 8080, 65535] {
            assert_eq!(
                sp.matches(p),
                sp.ranges().iter().any(|&(l, h)| l <= p && p <= h)
            );
        }
    }

    #[test]
    fn address_index_finds_every_signature_holding_an_address() {
        let a = addr(&parse("[1.1.1.1,2.2.2.0/24]"));
        let b = addr(&parse("[2.2.2.2,3.3.3.3,::5]"));
        let c = addr(&parse("[1.1.1.0/30]"));
        let idx = AddrIndex::build([(0, &a), (1, &b), (2, &c)]);
        assert_eq!(idx.get(ip("1.1.1.1")), &[0, 2]);
        assert_eq!(idx.get(ip("1.1.1.0")), &[2]);
        assert_eq!(idx.get(ip("1.1.1.4")), &[] as &[u32]);
        assert_eq!(idx.get(ip("2.2.2.2")), &[0, 1]);
        assert_eq!(idx.get(ip("2.2.2.255")), &[0]);
        assert_eq!(idx.get(ip("3.3.3.3")), &[1]);
        assert_eq!(idx.get(ip("0.0.0.0")), &[] as &[u32]);
        assert_eq!(idx.get(ip("255.255.255.255")), &[] as &[u32]);
        assert_eq!(idx.get(ip("::5")), &[1]);
        assert_eq!(idx.get(ip("::6")), &[] as &[u32]);
    }
}
