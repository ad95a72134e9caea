//! The detection engine: a [`khien_rules::Ruleset`] compiled into signatures that are
//! evaluated on packets and application-layer transactions.
//!
//! The crate has no capture, flow or parser code. The sensor describes each packet with a
//! [`PacketInfo`], each transaction through the [`TxBuffers`] trait, keeps one [`FlowVars`]
//! per flow (flowbits, flowints, pass) and one [`DetectState`] per worker (thresholds), and
//! turns the returned [`Alert`]s into EVE `alert` records. The compiled [`Engine`] is
//! immutable, so workers share it behind an `Arc` and a reload swaps the `Arc`.
//!
//! ```
//! use khien_detect::{Engine, CompileOptions, PacketInfo, FlowVars, DetectState};
//! let mut rs = khien_rules::Ruleset::new(Default::default());
//! rs.add_file("t.rules", r#"alert udp any any -> any 53 (msg:"x"; content:"evil"; nocase; sid:7;)"#);
//! let (engine, report) = Engine::compile(&rs, &CompileOptions::default());
//! assert_eq!(report.loaded, 1);
//! let mut p = PacketInfo::udp("10.0.0.1".parse().unwrap(), 1234, "10.0.0.2".parse().unwrap(), 53);
//! p.payload = b"..EVIL..";
//! let mut alerts = Vec::new();
//! engine.inspect_packet(&p, &mut FlowVars::default(), &mut DetectState::default(), &mut alerts);
//! assert_eq!(alerts[0].sig.sid, 7);
//! ```

mod compile;
mod hs;
mod inspect;
mod threshold;
mod transform;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use compile::{CompileOptions, CompileReport, Unsupported};
pub use threshold::DetectState;

use compile::{Sig, SigKind};

/// Direction of traffic relative to the flow's client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    ToServer,
    ToClient,
}

/// TCP header fields a rule can test.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpInfo {
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub mss: Option<u16>,
}

/// ICMP header fields a rule can test.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IcmpInfo {
    pub ty: u8,
    pub code: u8,
    /// Identifier and sequence of echo-like messages.
    pub id: Option<u16>,
    pub seq: Option<u16>,
}

/// What the flow of a packet says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowInfo {
    /// The packet travels from the flow's client to its server.
    pub to_server: bool,
    /// TCP handshake completed, or packets seen both ways for other protocols.
    pub established: bool,
    /// Detected application protocol (`http`, `dns`, `tls`, …), Suricata's names.
    pub app_proto: Option<&'static str>,
    /// The flow's data is encrypted from here on (TLS application data seen): as with
    /// Suricata's default `encryption-handling`, its payload (`pkt_data`, the raw
    /// stream) is no longer inspected; header-only and app-layer (`tls.*`) signatures
    /// still are.
    pub encrypted: bool,
}

impl FlowInfo {
    /// A transaction (or file) of an established flow of `app_proto`, client to server.
    pub fn transaction(app_proto: &'static str) -> FlowInfo {
        FlowInfo {
            to_server: true,
            established: true,
            app_proto: Some(app_proto),
            encrypted: false,
        }
    }
}

/// One packet as the engine sees it. Header fields the sensor does not know stay `None`.
#[derive(Clone, Debug)]
pub struct PacketInfo<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sp: u16,
    pub dp: u16,
    /// IP protocol number (6 tcp, 17 udp, 1 icmp, 58 icmpv6, …).
    pub proto: u8,
    pub ttl: Option<u8>,
    pub tos: Option<u8>,
    pub ip_id: Option<u16>,
    pub frag_offset: Option<u16>,
    pub tcp: Option<TcpInfo>,
    pub icmp: Option<IcmpInfo>,
    /// The packet's L4 payload (`pkt_data`).
    pub payload: &'a [u8],
    /// The IP header (IPv4 with options, or IPv6's fixed header): `ipv4.hdr`/`ipv6.hdr`,
    /// `ipopts`. Empty when unknown.
    pub ip_hdr: &'a [u8],
    /// The transport header: `tcp.hdr`, `udp.hdr`, `icmpv4.hdr`/`icmpv6.hdr`.
    pub l4_hdr: &'a [u8],
    pub flow: Option<FlowInfo>,
    /// TCP: the packet's payload went into the flow's reassembled stream, so signatures
    /// that may inspect the stream see it there and not in the packet.
    pub stream_added: bool,
    /// For a raw-stream chunk (`Engine::inspect_stream`): the stream offset of
    /// `payload[0]` (0 for packets). An absolute content's `depth` counts from the
    /// stream's start, as in Suricata: a chunk starting at or past it cannot match.
    pub stream_offset: u64,
    /// TCP session: each side's size in sequence space so far (next sequence number
    /// minus the initial one, SYN included), client then server (`stream_size`).
    pub stream_sizes: Option<[u32; 2]>,
    /// Decoder/stream events raised on this packet, Suricata's names without the prefix
    /// (`ipv4.trunc_pkt`, `stream.pkt_invalid_timestamp`, …).
    pub events: &'a [&'a str],
    /// Packet time in microseconds since the epoch.
    pub ts_us: i64,
}

impl<'a> PacketInfo<'a> {
    fn base(src: IpAddr, sp: u16, dst: IpAddr, dp: u16, proto: u8) -> Self {
        PacketInfo {
            src,
            dst,
            sp,
            dp,
            proto,
            ttl: None,
            tos: None,
            ip_id: None,
            frag_offset: None,
            tcp: None,
            icmp: None,
            payload: &[],
            ip_hdr: &[],
            l4_hdr: &[],
            flow: None,
            stream_added: false,
            stream_offset: 0,
            stream_sizes: None,
            events: &[],
            ts_us: 0,
        }
    }
    /// A UDP packet with empty payload (fill in the rest).
    pub fn udp(src: IpAddr, sp: u16, dst: IpAddr, dp: u16) -> Self {
        Self::base(src, sp, dst, dp, 17)
    }
    /// A TCP packet with the given flags and empty payload (fill in the rest).
    pub fn tcp(src: IpAddr, sp: u16, dst: IpAddr, dp: u16, flags: u8) -> Self {
        let mut p = Self::base(src, sp, dst, dp, 6);
        p.tcp = Some(TcpInfo {
            flags,
            ..TcpInfo::default()
        });
        p
    }
    /// Any other IP protocol.
    pub fn ip(src: IpAddr, dst: IpAddr, proto: u8) -> Self {
        Self::base(src, 0, dst, 0, proto)
    }
    /// What the prefilter of a packet group looks up.
    fn key(&self) -> inspect::PktKey {
        inspect::PktKey {
            src: self.src,
            dst: self.dst,
            sp: self.sp,
            dp: self.dp,
        }
    }

    /// The same packet seen from the other side (addresses and ports swapped, flow
    /// direction flipped).
    pub fn reversed(&self) -> Self {
        let mut p = self.clone();
        std::mem::swap(&mut p.src, &mut p.dst);
        std::mem::swap(&mut p.sp, &mut p.dp);
        if let Some(f) = p.flow.as_mut() {
            f.to_server = !f.to_server;
        }
        p
    }
}

/// The inspection buffers of one application-layer transaction, implemented by the sensor
/// over its parsers' transaction types.
pub trait TxBuffers {
    /// Suricata's name of the transaction's protocol (`http`, `dns`, `tls`, `ssh`, `smtp`,
    /// `ftp`).
    fn proto(&self) -> &'static str;
    /// The transaction id (EVE `tx_id`).
    fn tx_id(&self) -> u64;
    /// The contents of sticky buffer `name` (canonical name, e.g. `http.uri`) in direction
    /// `dir`. Multi-buffers (`dns.query` of several questions, …) give several; an absent
    /// buffer gives none.
    fn get(&self, name: &str, dir: Dir) -> Vec<Cow<'_, [u8]>>;
    /// App-layer events raised on this transaction (`http.request_field_too_long`, …).
    fn events(&self) -> Vec<String> {
        Vec::new()
    }
    /// Whether the transaction has seen data in `dir` (a response exists, …).
    fn has_dir(&self, dir: Dir) -> bool {
        let _ = dir;
        true
    }
    /// A closed file's size: the view is a file (`proto()` is `"file"`), inspected by the
    /// `filesize` signatures.
    fn file_size(&self) -> Option<u64> {
        None
    }
}

/// Per-flow detection variables: flowbits, flowints and the pass flag. The sensor keeps one
/// per flow (created lazily) and hands it to every inspection of that flow.
#[derive(Clone, Debug, Default)]
pub struct FlowVars {
    bits: Vec<u32>,
    ints: Vec<(u32, u64)>,
    strs: Vec<(u32, Vec<u8>)>,
    /// Transaction signatures whose packet part matched: index × 2 + (1 to server, 0 to
    /// client).
    parts: Vec<u32>,
    /// A `pass` rule matched: nothing more of the flow is inspected.
    pub pass: bool,
}

impl FlowVars {
    fn isset(&self, b: u32) -> bool {
        self.bits.contains(&b)
    }
    fn set(&mut self, b: u32) {
        if !self.isset(b) {
            self.bits.push(b);
        }
    }
    fn unset(&mut self, b: u32) {
        self.bits.retain(|&x| x != b);
    }
    fn int(&self, i: u32) -> Option<u64> {
        self.ints.iter().find(|(k, _)| *k == i).map(|(_, v)| *v)
    }
    fn set_int(&mut self, i: u32, v: u64) {
        match self.ints.iter_mut().find(|(k, _)| *k == i) {
            Some(e) => e.1 = v,
            None => self.ints.push((i, v)),
        }
    }
    /// The flowbits set, in the order they were set (ids into
    /// [`Engine::flowbit_names`]).
    pub fn bits(&self) -> &[u32] {
        &self.bits
    }
    /// The flowints, in the order they were first set (ids into
    /// [`Engine::flowint_names`]).
    pub fn ints(&self) -> &[(u32, u64)] {
        &self.ints
    }
    fn part_key(sig: u32, to_server: bool) -> u32 {
        sig.saturating_mul(2) | u32::from(to_server)
    }
    fn has_part(&self, sig: u32, to_server: bool) -> bool {
        self.parts.contains(&Self::part_key(sig, to_server))
    }
    fn set_part(&mut self, sig: u32, to_server: bool) {
        if !self.has_part(sig, to_server) {
            self.parts.push(Self::part_key(sig, to_server));
        }
    }
    fn clear_part(&mut self, sig: u32, to_server: bool) {
        let k = Self::part_key(sig, to_server);
        self.parts.retain(|&x| x != k);
    }
    fn set_str(&mut self, i: u32, v: Vec<u8>) {
        match self.strs.iter_mut().find(|(k, _)| *k == i) {
            Some(e) => e.1 = v,
            None => self.strs.push((i, v)),
        }
    }
    /// The flowvars (pcre captures), in the order they were first set (ids into
    /// [`Engine::flowvar_names`]).
    pub fn strs(&self) -> &[(u32, Vec<u8>)] {
        &self.strs
    }
    /// Whether nothing is stored (the sensor may drop an empty one).
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
            && self.ints.is_empty()
            && self.strs.is_empty()
            && self.parts.is_empty()
            && !self.pass
    }
}

/// The rule action as EVE reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Alert,
    Pass,
    Drop,
    Reject,
}

/// What an alert says about its signature (shared, immutable).
#[derive(Clone, Debug)]
pub struct SigMeta {
    pub sid: u32,
    pub gid: u32,
    pub rev: u32,
    pub msg: String,
    /// Description of the classtype from classification.config (EVE `category`).
    pub category: Option<String>,
    /// Priority (EVE `severity`): `priority:` or the classtype's, else 3.
    pub priority: u32,
    pub action: Action,
    /// `metadata` pairs, in rule order.
    pub metadata: Vec<(String, String)>,
    /// The rule text as loaded.
    pub text: String,
    /// `target:src_ip|dest_ip`
    pub target: Option<&'static str>,
    /// Suricata's internal signature id: the position in the engine's signature order
    /// (action, flowbits role, priority, load order). Alerts of one packet beyond
    /// `packet-alert-max` are dropped lowest-`num`-last.
    pub num: u32,
}

impl SigMeta {
    /// EVE `metadata`: key → values, as Suricata groups them.
    pub fn metadata_map(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut m: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (k, v) in &self.metadata {
            m.entry(k.as_str()).or_default().push(v.as_str());
        }
        m
    }
}

/// One alert: the signature and where it matched.
#[derive(Clone, Debug)]
pub struct Alert {
    pub sig: Arc<SigMeta>,
    /// Transaction id when raised on a transaction.
    pub tx_id: Option<u64>,
    /// The alert's direction: true when the rule matched the packet/transaction as
    /// seen from the flow's client to its server.
    pub to_server: bool,
    /// The rule matched with the packet's addresses swapped (`<>` rules and to_client
    /// transaction rules): EVE src/dest are then the packet's reversed.
    pub swapped: bool,
    /// The match was on reassembled stream data (EVE `stream: 1`), not a packet.
    pub stream: bool,
    /// The action after threshold.config's `rate_filter` (else the rule's).
    pub action: Action,
    /// `action` comes from a `rate_filter` (Suricata's drop reason "threshold
    /// detection_filter" instead of "rules").
    pub rate_filtered: bool,
    /// Not to be logged (threshold.config `suppress` or `noalert`) but its action still
    /// applies: only drop/reject alerts are reported so.
    pub silent: bool,
    /// A drop/pass of this match applies to the whole flow, as in Suricata: transaction
    /// and stream matches and rules without packet conditions (IP-only, protocol-only);
    /// a packet rule's drop drops only its packet.
    pub flow_action: bool,
    /// pktvars the signature's pcres captured: (id into [`Engine::pktvar_names`], value).
    pub pktvars: Vec<(u32, Vec<u8>)>,
}

/// The multi-pattern matcher of the prefilters (measured in BENCHMARKS.md, Detection).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Prefilter {
    /// Hyperscan for the groups that scan every packet and stream chunk (TCP, UDP,
    /// stream) and for the larger buffers of the others (64 fast patterns or more),
    /// `aho-corasick` NFAs for the small ones.
    #[default]
    Auto,
    /// `aho-corasick` only: DFAs over 8-byte pattern prefixes for the groups that scan
    /// every packet, contiguous NFAs for the others.
    AhoCorasick,
    /// Hyperscan for every group.
    Hyperscan,
}

impl std::str::FromStr for Prefilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Prefilter::Auto),
            "aho-corasick" => Ok(Prefilter::AhoCorasick),
            "hyperscan" => Ok(Prefilter::Hyperscan),
            _ => Err(format!(
                "unknown prefilter {s:?} (auto, aho-corasick, hyperscan)"
            )),
        }
    }
}

/// A distinct id per compiled engine (a worker's Hyperscan scratch remembers which
/// engine's databases it fits).
fn next_engine_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A compiled ruleset. Immutable; share it behind an `Arc`.
pub struct Engine {
    id: u64,
    /// The signatures (rules first, then the packet parts of transaction signatures).
    sigs: Vec<Sig>,
    /// Number of rules loaded (the first `loaded` of `sigs`).
    loaded: usize,
    flowbit_names: Vec<String>,
    flowint_names: Vec<String>,
    flowvar_names: Vec<String>,
    pktvar_names: Vec<String>,
    /// Packet signatures by IP protocol class (see `compile::proto_class`), each group
    /// with its prefilter.
    packet_groups: [inspect::Group; 4],
    /// The TCP packet signatures that inspect packets whose payload went into the stream
    /// (`StreamMode::Packet`); `packet_groups[0]` holds those for other TCP packets.
    tcp_added_group: inspect::Group,
    /// TCP packet signatures that inspect the reassembled stream.
    stream_group: inspect::Group,
    /// Transaction signatures by app protocol.
    tx_groups: BTreeMap<&'static str, inspect::Group>,
    /// suppress entries of threshold.config and its threshold overrides.
    pub(crate) suppress: threshold::Suppressions,
}

impl Engine {
    /// Compiles a ruleset. Rules using something the engine does not implement are left
    /// out and listed in the report with their sid and keyword.
    pub fn compile(rs: &khien_rules::Ruleset, opts: &CompileOptions) -> (Engine, CompileReport) {
        compile::compile(rs, opts)
    }

    /// Number of signatures loaded.
    pub fn len(&self) -> usize {
        self.loaded
    }

    pub fn is_empty(&self) -> bool {
        self.loaded == 0
    }

    /// Whether any signature inspects the reassembled TCP stream (the sensor keeps raw
    /// stream data only then).
    pub fn wants_stream(&self) -> bool {
        !self.stream_group.is_empty()
    }

    /// Whether any signature inspects application-layer transactions of `proto`.
    pub fn wants_tx(&self, proto: &str) -> bool {
        self.tx_groups.contains_key(proto)
    }

    /// Bytes of heap held by the prefilters' matchers.
    pub fn prefilter_bytes(&self) -> usize {
        self.groups().map(inspect::Group::matcher_bytes).sum()
    }

    fn groups(&self) -> impl Iterator<Item = &inspect::Group> {
        self.packet_groups
            .iter()
            .chain([&self.tcp_added_group, &self.stream_group])
            .chain(self.tx_groups.values())
    }

    /// Fits the worker's Hyperscan scratch to this engine's databases (once per engine).
    fn prepare(&self, state: &mut DetectState) {
        let hs = &mut state.pf.hs;
        if hs.engine == self.id {
            return;
        }
        for db in self.groups().flat_map(inspect::Group::hs_databases) {
            if let Err(e) = hs.fit(db) {
                // The scans then fail and make every signature of the buffer a
                // candidate: slow, but no alert is lost.
                tracing::error!(error = %e, "hyperscan scratch allocation failed");
            }
        }
        hs.engine = self.id;
    }

    /// Names of the flowbits the ruleset uses (index = internal id).
    pub fn flowbit_names(&self) -> &[String] {
        &self.flowbit_names
    }

    /// Names of the flowints the ruleset uses (index = internal id).
    pub fn flowint_names(&self) -> &[String] {
        &self.flowint_names
    }

    /// Names of the flowvars pcre captures store (index = internal id).
    pub fn flowvar_names(&self) -> &[String] {
        &self.flowvar_names
    }

    /// Names of the pktvars pcre captures store (index = internal id).
    pub fn pktvar_names(&self) -> &[String] {
        &self.pktvar_names
    }

    /// Runs the packet signatures on one packet; appends alerts in priority order.
    pub fn inspect_packet(
        &self,
        p: &PacketInfo<'_>,
        vars: &mut FlowVars,
        state: &mut DetectState,
        out: &mut Vec<Alert>,
    ) {
        state.both_pkt.clear();
        if vars.pass {
            return;
        }
        let class = compile::proto_class(p.proto);
        let group = if class == 0 && p.stream_added {
            &self.tcp_added_group
        } else {
            &self.packet_groups[class]
        };
        if group.is_empty() {
            return;
        }
        self.prepare(state);
        let mut cands = std::mem::take(&mut state.cands);
        group.candidates(
            Some(p.key()),
            |name| {
                inspect::packet_buffer(p, name)
                    .map(|b| vec![Cow::Borrowed(b)])
                    .unwrap_or_default()
            },
            &mut cands,
            &mut state.pf,
        );
        cands.sort_unstable();
        self.run(&cands, p, None, Pass::Packet, vars, state, out);
        state.cands = cands;
    }

    /// Runs the stream signatures on a chunk of one direction's reassembled TCP stream:
    /// `p` is the packet that made the chunk ready (or a pseudo packet at flow end) with
    /// `payload` set to the chunk and `stream_offset` to its offset in the stream, whose
    /// first `new_from` bytes were inspected before (kept so that patterns split across
    /// chunks are found; matches lying entirely in them are not reported again). Offsets
    /// count from the chunk's start, absolute depths from the stream's (Suricata).
    /// `after_packet`: `p` was just given to [`Engine::inspect_packet`] (the signatures
    /// that inspect both and matched the packet are not run on its chunk).
    pub fn inspect_stream(
        &self,
        p: &PacketInfo<'_>,
        new_from: usize,
        after_packet: bool,
        vars: &mut FlowVars,
        state: &mut DetectState,
        out: &mut Vec<Alert>,
    ) {
        if vars.pass || self.stream_group.is_empty() || p.flow.is_some_and(|f| f.encrypted) {
            return;
        }
        self.prepare(state);
        let mut cands = std::mem::take(&mut state.cands);
        self.stream_group.candidates(
            Some(p.key()),
            |name| match name {
                "pkt_data" => vec![Cow::Borrowed(p.payload)],
                _ => Vec::new(),
            },
            &mut cands,
            &mut state.pf,
        );
        cands.sort_unstable();
        if after_packet && !state.both_pkt.is_empty() {
            let done = std::mem::take(&mut state.both_pkt);
            cands.retain(|i| !done.contains(i));
        }
        state.both_pkt.clear();
        self.run(&cands, p, None, Pass::Stream(new_from), vars, state, out);
        state.cands = cands;
    }

    /// Runs the transaction signatures of the transaction's protocol. `p` describes the
    /// flow from client to server (addresses, ports, flow info) with an empty payload;
    /// to_client rules are evaluated on it reversed.
    pub fn inspect_tx(
        &self,
        p: &PacketInfo<'_>,
        tx: &dyn TxBuffers,
        vars: &mut FlowVars,
        state: &mut DetectState,
        out: &mut Vec<Alert>,
    ) {
        if vars.pass {
            return;
        }
        let Some(group) = self.tx_groups.get(tx.proto()) else {
            return;
        };
        self.prepare(state);
        let mut cands = std::mem::take(&mut state.cands);
        group.candidates(
            None,
            |name| {
                let mut v = tx.get(name, Dir::ToServer);
                v.extend(tx.get(name, Dir::ToClient));
                v
            },
            &mut cands,
            &mut state.pf,
        );
        cands.sort_unstable();
        self.run(&cands, p, Some(tx), Pass::Packet, vars, state, out);
        state.cands = cands;
    }

    #[allow(clippy::too_many_arguments)] // reason: the inspection context, one each
    fn run(
        &self,
        cands: &[u32],
        p: &PacketInfo<'_>,
        tx: Option<&dyn TxBuffers>,
        pass: Pass,
        vars: &mut FlowVars,
        state: &mut DetectState,
        out: &mut Vec<Alert>,
    ) {
        let mut rev: Option<PacketInfo<'_>> = None;
        let mut last = u32::MAX;
        for &i in cands {
            if i == last {
                continue;
            }
            last = i;
            let Some(sig) = self.sigs.get(i as usize) else {
                continue;
            };
            match pass {
                Pass::Packet if tx.is_none() && p.proto == 6 => {
                    let skip = match sig.stream {
                        compile::StreamMode::Packet | compile::StreamMode::Both => false,
                        compile::StreamMode::Stream => true,
                        compile::StreamMode::Either => p.stream_added,
                    };
                    if skip {
                        continue;
                    }
                }
                _ => {}
            }
            let Some((dir_to_server, swapped)) =
                self.matches(i, sig, p, &mut rev, tx, vars, &mut state.caps)
            else {
                continue;
            };
            if let Some(of) = sig.part_of {
                vars.set_part(of, dir_to_server);
                continue;
            }
            if sig.has_part {
                // One packet-part match serves one transaction.
                vars.clear_part(i, dir_to_server);
            }
            if !sig.host_conds.is_empty() && !state.host_conds(sig, p) {
                continue;
            }
            if matches!(pass, Pass::Packet)
                && p.proto == 6
                && tx.is_none()
                && sig.stream == compile::StreamMode::Both
            {
                state.both_pkt.push(i);
            }
            if let Pass::Stream(new_from) = pass {
                // Only the kept overlap matched: reported with the earlier chunk.
                if !inspect::needs_new_bytes(sig, p.payload, p.stream_offset, new_from) {
                    continue;
                }
            }
            // Side effects of a match: flowbits/flowints, then thresholds, then output.
            inspect::apply_actions(sig, vars);
            let mut pktvars = Vec::new();
            for c in state.caps.drain(..) {
                match c.scope {
                    khien_rules::VarScope::Flow => vars.set_str(c.id, c.value),
                    khien_rules::VarScope::Pkt => pktvars.push((c.id, c.value)),
                }
            }
            if !sig.host_acts.is_empty() {
                state.host_acts(sig, p);
            }
            let blocking = matches!(sig.meta.action, Action::Drop | Action::Reject);
            if sig.noalert && !blocking {
                continue;
            }
            let pk = if swapped {
                rev.as_ref().unwrap_or(p)
            } else {
                p
            };
            let Some(v) = state.allow(self, sig, i, pk) else {
                continue;
            };
            if v.action == Action::Pass {
                vars.pass = p.flow.is_some();
                state.passed = true;
                return;
            }
            let silent = v.suppressed || sig.noalert;
            if silent && !matches!(v.action, Action::Drop | Action::Reject) {
                continue;
            }
            let stream = matches!(pass, Pass::Stream(_));
            out.push(Alert {
                sig: sig.meta.clone(),
                tx_id: tx.map(|t| t.tx_id()),
                to_server: dir_to_server,
                swapped,
                stream,
                action: v.action,
                rate_filtered: v.rate_filtered,
                silent,
                flow_action: tx.is_some() || stream || sig.is_ip_only(),
                pktvars,
            });
        }
    }

    /// Evaluates one signature; returns (to_server, swapped) on a match.
    #[allow(clippy::too_many_arguments)] // reason: the inspection context, one each
    fn matches<'p>(
        &self,
        i: u32,
        sig: &Sig,
        p: &PacketInfo<'p>,
        rev: &mut Option<PacketInfo<'p>>,
        tx: Option<&dyn TxBuffers>,
        vars: &FlowVars,
        caps: &mut Vec<inspect::Captured>,
    ) -> Option<(bool, bool)> {
        match (&sig.kind, tx) {
            (SigKind::Packet, None) => {
                let pkt_to_server = p.flow.is_none_or(|f| f.to_server);
                if inspect::header_matches(sig, p) && inspect::packet_matches(sig, p, vars, caps) {
                    return Some((pkt_to_server, false));
                }
                if sig.bidirectional {
                    let r = rev.get_or_insert_with(|| p.reversed());
                    if inspect::header_matches(sig, r)
                        && inspect::packet_matches(sig, p, vars, caps)
                    {
                        return Some((pkt_to_server, true));
                    }
                }
                None
            }
            (SigKind::Tx { dirs }, Some(tx)) => {
                for &d in dirs {
                    if !tx.has_dir(d) || (sig.has_part && !vars.has_part(i, d == Dir::ToServer)) {
                        continue;
                    }
                    let (pk, swapped) = if d == Dir::ToServer {
                        (p, false)
                    } else {
                        (&*rev.get_or_insert_with(|| p.reversed()), true)
                    };
                    let hdr = inspect::header_matches(sig, pk)
                        || (sig.bidirectional && {
                            let r = pk.reversed();
                            inspect::header_matches(sig, &r)
                        });
                    if hdr && inspect::tx_matches(sig, pk, tx, d, vars, caps) {
                        return Some((d == Dir::ToServer, swapped));
                    }
                }
                None
            }
            _ => None,
        }
    }
}

/// Which inspection `Engine::run` does.
#[derive(Clone, Copy, Debug)]
enum Pass {
    /// A packet or a transaction.
    Packet,
    /// A raw-stream chunk whose bytes from the given offset are new.
    Stream(usize),
}

/// Lower-case hex MD5 of `b` (the `ja3.hash` of a `ja3.string`, for buffer providers).
pub fn md5_hex(b: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("signatures", &self.loaded)
            .field("tx_protocols", &self.tx_groups.keys().collect::<Vec<_>>())
            .finish()
    }
}
