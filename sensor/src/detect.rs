//! Glue to the detection engine (`khien-detect`): describes packets and app-layer
//! transactions to it, keeps its per-flow variables, and writes its alerts as EVE `alert`
//! records.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use khien_applayer::{HttpTx, Transaction};
use khien_detect::{self as kd, Dir, TxBuffers};

use crate::decode::{Addrs, Decoded, L4};
use crate::eve::{EveWriter, PktSrc, Tuple};
use crate::event::{Events, StreamEvent, EVENTS_CAP};

/// Detection state of one worker.
pub struct Detect {
    pub engine: Arc<kd::Engine>,
    state: kd::DetectState,
    /// Flowbits/flowints by flow id (removed at flow end).
    vars: HashMap<u64, kd::FlowVars>,
    pub alerts: Vec<kd::Alert>,
    pub alert_count: u64,
    /// Alert records of the current packet (rendered), written by [`Detect::flush`].
    queued: Vec<Queued>,
    /// Suricata's `packet-alert-max`: alerts kept per packet.
    pub max_per_packet: usize,
    /// Alerts dropped by that cap (Suricata's `detect.alert_queue_overflow`).
    pub overflow: u64,
    /// Transactions whose request was inspected on its own ([`Detect::request`]), by
    /// flow id: their completion inspects only the response side.
    requested: HashMap<u64, Vec<u64>>,
    /// Request-time alerts waiting for the flow's next to-server packet, by flow id.
    deferred: HashMap<u64, Deferred>,
    /// IPS mode (Suricata's `--simulate-ips`): drop/reject verdicts are carried out.
    pub ips: bool,
    /// Alert records carry the packet's `verdict` (config `eve.alert-verdict`).
    pub verdict_field: bool,
    /// Flows dropped by a flow-level drop/reject match (IPS mode): their later packets
    /// are dropped before stream, app layer and detection.
    dropped_flows: HashSet<u64>,
    /// The current packet's drop: Suricata's drop reason and the flow id.
    verdict: Option<(&'static str, Option<u64>)>,
}

/// Request-time alerts of one flow and what their records need.
struct Deferred {
    fwd: Tuple,
    app_proto: String,
    alerts: Vec<kd::Alert>,
    /// The app-layer sections of their transactions.
    sections: Sections,
}

/// Rendered app-layer sections of transactions (`,"http":{…}`) by tx id.
pub type Sections = Vec<(u64, Vec<u8>)>;

/// What an alert record carries besides the alert ([`Detect::write`]).
#[derive(Clone, Copy)]
pub struct AlertCtx<'a> {
    pub ts: i64,
    pub flow_id: Option<u64>,
    pub pcap_cnt: Option<u64>,
    /// The packet's (or, for transactions, the client → server) tuple.
    pub tuple: Option<&'a Tuple>,
    /// `tuple` is the client → server tuple: reversed for to-client alerts.
    pub tx_tuple: bool,
    pub app_proto: Option<&'a str>,
    pub src: PktSrc,
    /// The inspected payload (packet or stream chunk) for `payload`.
    pub payload: &'a [u8],
    /// The packet and its link type (`packet`, `packet_info`), none for pseudo packets.
    pub packet: Option<(&'a [u8], u16)>,
    /// The flow's counters (`flow` section).
    pub flow: Option<AlertFlow>,
    /// Rendered app-layer sections (`,"http":{…}`) of transactions by tx id.
    pub sections: &'a [(u64, Vec<u8>)],
    /// Stream gaps in `payload`: (offset, bytes lost), rendered as Suricata does
    /// (`[N bytes missing]` between the bytes around them).
    pub payload_gaps: &'a [(usize, u64)],
}

impl<'a> AlertCtx<'a> {
    /// An alert on a transaction or one of its files: the flow (id, counters) and its
    /// client → server tuple, no packet or payload.
    pub fn transaction(
        ts: i64,
        (flow_id, flow): (u64, AlertFlow),
        pcap_cnt: Option<u64>,
        tuple: &'a Tuple,
        app_proto: &'a str,
        src: PktSrc,
        sections: &'a [(u64, Vec<u8>)],
    ) -> AlertCtx<'a> {
        AlertCtx {
            ts,
            flow_id: Some(flow_id),
            pcap_cnt,
            tuple: Some(tuple),
            tx_tuple: true,
            app_proto: Some(app_proto),
            src,
            payload: &[],
            packet: None,
            flow: Some(flow),
            sections,
            payload_gaps: &[],
        }
    }
}

/// The `flow` section of an alert: the flow's counters so far and its client → server
/// tuple.
#[derive(Clone, Copy)]
pub struct AlertFlow {
    pub pkts: [u64; 2],
    pub bytes: [u64; 2],
    pub start: i64,
    pub fwd: Tuple,
}

/// Renders a transaction's app-layer section as alert records carry it (`,"http":{…}`);
/// empty for protocols whose alert section Suricata writes differently (DNS) or not.
pub fn tx_section(tx: &Transaction) -> Vec<u8> {
    let mut out = Vec::new();
    if matches!(tx, Transaction::Dns(_)) {
        return out;
    }
    for (_, key, value) in tx.eve() {
        let _ = write!(out, ",\"{key}\":{value}");
    }
    for (key, value) in tx.eve_extra() {
        let _ = write!(out, ",\"{key}\":{value}");
    }
    out
}

/// Which side of a transaction an inspection covers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Whole,
    /// The request is complete, the response is not.
    Request,
    /// The response side of a transaction whose request was inspected already.
    Response,
}

/// One rendered alert record waiting for the end of its packet.
pub struct Queued {
    num: u32,
    tx_id: Option<u64>,
    line: Vec<u8>,
}

/// Suricata's default `packet-alert-max`.
pub const PACKET_ALERT_MAX: usize = 15;

fn ip(v6: bool, a: &[u8; 16]) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(*a))
    } else {
        IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
    }
}

#[allow(clippy::too_many_arguments)] // reason: one per header field group; a struct would only rename them
fn packet_info<'a>(
    addrs: &Addrs,
    sp: u16,
    dp: u16,
    proto: u8,
    l4: L4,
    payload: &'a [u8],
    (ip_hdr, l4_hdr): (&'a [u8], &'a [u8]),
    events: &'a [&'a str],
    flow: Option<kd::FlowInfo>,
    ts: i64,
) -> kd::PacketInfo<'a> {
    let mut p = kd::PacketInfo::ip(ip(addrs.v6, &addrs.src), ip(addrs.v6, &addrs.dst), proto);
    p.sp = sp;
    p.dp = dp;
    match l4 {
        L4::Tcp(t) => {
            p.tcp = Some(kd::TcpInfo {
                flags: t.flags,
                seq: t.seq,
                ack: t.ack,
                window: t.win,
                mss: t.opts.mss,
            })
        }
        L4::Icmp { ty, code } => {
            let echo = l4_hdr
                .get(4..8)
                .filter(|_| matches!(ty, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18 | 128 | 129));
            p.icmp = Some(kd::IcmpInfo {
                ty,
                code,
                id: echo.map(|b| u16::from_be_bytes([b[0], b[1]])),
                seq: echo.map(|b| u16::from_be_bytes([b[2], b[3]])),
            });
        }
        _ => {}
    }
    p.payload = payload;
    p.ip_hdr = ip_hdr;
    p.l4_hdr = l4_hdr;
    if addrs.v6 {
        // version(4) traffic class(8) flow label(20) | length(16) next(8) hop limit(8)
        if let (Some(a), Some(b)) = (ip_hdr.first(), ip_hdr.get(1)) {
            p.tos = Some((a << 4) | (b >> 4));
        }
        p.ttl = ip_hdr.get(7).copied();
    } else {
        // version/ihl(8) tos(8) length(16) | id(16) flags/fragment offset(16) | ttl(8) …
        p.tos = ip_hdr.get(1).copied();
        p.ip_id = ip_hdr.get(4..6).map(|b| u16::from_be_bytes([b[0], b[1]]));
        p.frag_offset = ip_hdr
            .get(6..8)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) & 0x1fff);
        p.ttl = ip_hdr.get(8).copied();
    }
    p.events = events;
    p.flow = flow;
    p.ts_us = ts;
    p
}

impl Detect {
    pub fn new(engine: Arc<kd::Engine>) -> Self {
        Detect {
            engine,
            state: kd::DetectState::default(),
            vars: HashMap::new(),
            alerts: Vec::new(),
            alert_count: 0,
            queued: Vec::new(),
            max_per_packet: PACKET_ALERT_MAX,
            overflow: 0,
            requested: HashMap::new(),
            deferred: HashMap::new(),
            ips: false,
            verdict_field: false,
            dropped_flows: HashSet::new(),
            verdict: None,
        }
    }

    /// In IPS mode, whether flow `flow_id` was dropped; the current packet is then
    /// dropped too (reason "flow drop") and must not be processed further.
    pub fn flow_dropped(&mut self, flow_id: u64) -> bool {
        if self.ips && self.dropped_flows.contains(&flow_id) {
            self.verdict = Some(("flow drop", Some(flow_id)));
            return true;
        }
        false
    }

    /// Whether flow `flow_id` was dropped (IPS mode).
    pub fn is_flow_dropped(&self, flow_id: u64) -> bool {
        self.ips && self.dropped_flows.contains(&flow_id)
    }

    /// Writes the EVE `drop` record of the packet just processed if it was dropped (IPS
    /// mode), like Suricata's drop log with `flows: all`; returns whether one was written
    /// (and the write error, if any).
    pub fn write_drop(
        &mut self,
        eve: &mut EveWriter,
        d: &Decoded<'_>,
        ts: i64,
        pcap_cnt: u64,
    ) -> std::io::Result<bool> {
        let Some((reason, flow_id)) = self.verdict.take() else {
            return Ok(false);
        };
        let tuple = packet_tuple(d);
        eve.begin(ts, flow_id, Some(pcap_cnt), "drop", tuple.as_ref(), None);
        let l = &mut eve.line;
        let h = d.ip_hdr;
        let be16 = |b: &[u8], i: usize| b.get(i..i + 2).map(|x| u16::from_be_bytes([x[0], x[1]]));
        let v6 = d.addrs.is_some_and(|a| a.v6);
        let len = if v6 {
            be16(h, 4).map(|n| n + 40)
        } else {
            be16(h, 2)
        };
        let _ = write!(l, ",\"drop\":{{\"len\":{}", len.unwrap_or(0));
        if v6 {
            if let (Some(a), Some(b)) = (h.first(), h.get(1)) {
                let _ = write!(l, ",\"tos\":{}", (a << 4) | (b >> 4));
            }
            if let Some(t) = h.get(7) {
                let _ = write!(l, ",\"ttl\":{t}");
            }
        } else {
            if let Some(t) = h.get(1) {
                let _ = write!(l, ",\"tos\":{t}");
            }
            if let Some(t) = h.get(8) {
                let _ = write!(l, ",\"ttl\":{t}");
            }
            if let Some(id) = be16(h, 4) {
                let _ = write!(l, ",\"ipid\":{id}");
            }
        }
        match d.l4 {
            L4::Tcp(t) => {
                let f = |m: u8| t.flags & m != 0;
                use crate::wire::tcp::{ACK, FIN, PSH, RST, SYN, URG};
                let _ = write!(
                    l,
                    ",\"tcpseq\":{},\"tcpack\":{},\"tcpwin\":{},\"syn\":{},\"ack\":{},\"psh\":{},\"rst\":{},\"urg\":{},\"fin\":{},\"tcpres\":{},\"tcpurgp\":{}",
                    t.seq,
                    t.ack,
                    t.win,
                    f(SYN),
                    f(ACK),
                    f(PSH),
                    f(RST),
                    f(URG),
                    f(FIN),
                    d.l4_hdr.get(12).map_or(0, |b| b & 0x0f),
                    be16(d.l4_hdr, 18).unwrap_or(0)
                );
            }
            L4::Udp => {
                let _ = write!(l, ",\"udplen\":{}", be16(d.l4_hdr, 4).unwrap_or(0));
            }
            _ => {}
        }
        let _ = write!(l, ",\"reason\":\"{reason}\"}}");
        eve.finish().map(|_| true)
    }

    /// Sets the current packet's queued alerts aside (a flow ending in the middle of a
    /// packet writes its own pseudo packets' alerts first).
    pub fn take_queued(&mut self) -> Vec<Queued> {
        std::mem::take(&mut self.queued)
    }

    /// Puts back what [`Detect::take_queued`] set aside.
    pub fn restore_queued(&mut self, q: Vec<Queued>) {
        self.queued = q;
    }

    /// Writes the alerts queued for the current packet (or flow-end pseudo packet): like
    /// Suricata, sorted by signature order (`SigMeta::num`; the same signature's
    /// transactions newest first), at most `max_per_packet` of them; the rest count as
    /// overflow. Returns (records written, write errors).
    pub fn flush(&mut self, eve: &mut EveWriter) -> (usize, usize) {
        let passed = self.state.take_passed();
        if self.queued.is_empty() {
            return (0, 0);
        }
        self.queued
            .sort_by(|a, b| a.num.cmp(&b.num).then(b.tx_id.cmp(&a.tx_id)));
        let keep = self.queued.len().min(self.max_per_packet);
        self.overflow += (self.queued.len() - keep) as u64;
        let mut errors = 0;
        // Suricata's verdict of the packet: drop (IPS), pass (a pass signature matched
        // it; with the default action-order it is inspected first, so only alerts of an
        // `action-order` listing alert before pass see it), else alert.
        let verdict = if self.ips && self.verdict.is_some() {
            "drop"
        } else if passed {
            "pass"
        } else {
            "alert"
        };
        for q in self.queued.drain(..).take(keep) {
            eve.line = q.line;
            if self.verdict_field {
                let _ = write!(eve.line, ",\"verdict\":{{\"action\":\"{verdict}\"}}");
            }
            if eve.finish().is_err() {
                errors += 1;
            }
        }
        self.alert_count += keep as u64;
        (keep, errors)
    }

    /// Runs the packet signatures; alerts land in `self.alerts`.
    #[allow(clippy::too_many_arguments)] // reason: the packet and its flow context, one each
    pub fn packet(
        &mut self,
        d: &Decoded<'_>,
        sev: &Events<StreamEvent>,
        flow_id: Option<u64>,
        flow: Option<kd::FlowInfo>,
        ts: i64,
        stream_added: bool,
        stream_sizes: Option<[u32; 2]>,
    ) {
        let Some(addrs) = d.addrs else {
            return;
        };
        // Decoder then stream event names, in a fixed array (no allocation).
        let mut names = [""; 2 * EVENTS_CAP];
        let mut n = 0;
        let all = d
            .events
            .iter()
            .map(|e| e.name())
            .chain(sev.iter().map(|e| e.name()));
        for (slot, name) in names.iter_mut().zip(all) {
            *slot = name;
            n += 1;
        }
        let mut p = packet_info(
            &addrs,
            d.sp,
            d.dp,
            d.proto,
            d.l4,
            d.payload,
            (d.ip_hdr, d.l4_hdr),
            &names[..n],
            flow,
            ts,
        );
        p.stream_added = stream_added;
        p.stream_sizes = stream_sizes;
        let mut scratch = kd::FlowVars::default();
        let vars = match flow_id {
            Some(id) => self.vars.entry(id).or_default(),
            None => &mut scratch,
        };
        self.engine
            .inspect_packet(&p, vars, &mut self.state, &mut self.alerts);
    }

    /// Runs the stream signatures on a raw-stream chunk of one direction (`tuple`, in
    /// that direction). `d` is the packet of that direction that made the chunk ready
    /// (its header fields are tested; it went through [`Detect::packet`] just before),
    /// `None` for the flow-end pseudo packet. `stream_offset`: the chunk's offset in the
    /// stream.
    #[allow(clippy::too_many_arguments)] // reason: the chunk and its context, one each
    pub fn stream(
        &mut self,
        d: Option<&Decoded<'_>>,
        tuple: &Tuple,
        flow_id: u64,
        flow: kd::FlowInfo,
        chunk: &[u8],
        new_from: usize,
        stream_offset: u64,
        ts: i64,
    ) {
        let (l4, hdrs) = match d {
            Some(d) => (d.l4, (d.ip_hdr, d.l4_hdr)),
            None => (L4::Other, (&[][..], &[][..])),
        };
        let mut p = packet_info(
            &tuple.addrs,
            tuple.sp,
            tuple.dp,
            tuple.proto,
            l4,
            chunk,
            hdrs,
            &[],
            Some(flow),
            ts,
        );
        p.stream_offset = stream_offset;
        let vars = self.vars.entry(flow_id).or_default();
        self.engine.inspect_stream(
            &p,
            new_from,
            d.is_some(),
            vars,
            &mut self.state,
            &mut self.alerts,
        );
    }

    /// Runs the transaction signatures on a completed transaction of the flow whose client
    /// → server tuple is `fwd` (only its response side if [`Detect::request`] saw its
    /// request).
    pub fn tx(&mut self, fwd: &Tuple, flow_id: u64, flow: kd::FlowInfo, tx: &Transaction, ts: i64) {
        let id = tx.tx_id();
        let mut phase = Phase::Whole;
        if let Some(ids) = self.requested.get_mut(&flow_id) {
            if let Some(i) = ids.iter().position(|&t| t == id) {
                ids.swap_remove(i);
                phase = Phase::Response;
            }
        }
        self.tx_phase(fwd, flow_id, flow, tx, ts, phase);
    }

    /// Runs the to-server side of the transaction signatures on a transaction whose
    /// request is complete (Suricata inspects requests as they are parsed). Its alerts
    /// wait for the flow's next to-server packet ([`Detect::take_deferred`]): Suricata
    /// parses a direction's data, and inspects its transactions, on a packet of that
    /// direction.
    pub fn request(
        &mut self,
        fwd: &Tuple,
        flow_id: u64,
        flow: kd::FlowInfo,
        tx: &Transaction,
        ts: i64,
    ) {
        if !self.engine.wants_tx(TxView(tx, Phase::Request).proto()) {
            return;
        }
        self.requested.entry(flow_id).or_default().push(tx.tx_id());
        let before = self.alerts.len();
        self.tx_phase(fwd, flow_id, flow, tx, ts, Phase::Request);
        if self.alerts.len() > before {
            let d = self.deferred.entry(flow_id).or_insert_with(|| Deferred {
                fwd: *fwd,
                app_proto: flow.app_proto.unwrap_or("unknown").to_string(),
                alerts: Vec::new(),
                sections: Vec::new(),
            });
            d.alerts.extend(self.alerts.drain(before..));
            if !d.sections.iter().any(|(t, _)| *t == tx.tx_id()) {
                d.sections.push((tx.tx_id(), tx_section(tx)));
            }
        }
    }

    /// Moves the flow's waiting request-time alerts into `self.alerts` and returns the
    /// flow's client → server tuple, app protocol and the transactions' sections for
    /// [`Detect::write`].
    pub fn take_deferred(&mut self, flow_id: u64) -> Option<(Tuple, String, Sections)> {
        let d = self.deferred.remove(&flow_id)?;
        self.alerts.extend(d.alerts);
        Some((d.fwd, d.app_proto, d.sections))
    }

    #[allow(clippy::too_many_arguments)] // reason: the transaction and its context, one each
    fn tx_phase(
        &mut self,
        fwd: &Tuple,
        flow_id: u64,
        flow: kd::FlowInfo,
        tx: &Transaction,
        ts: i64,
        phase: Phase,
    ) {
        let view = TxView(tx, phase);
        if !self.engine.wants_tx(view.proto()) {
            return;
        }
        // Suricata 7's `alert http` rules cover HTTP/1 and HTTP/2 alike: an HTTP/2 stream
        // is inspected as an HTTP transaction of an http flow.
        let flow = if matches!(tx, Transaction::Http2(_)) {
            kd::FlowInfo {
                app_proto: Some("http"),
                ..flow
            }
        } else {
            flow
        };
        let p = packet_info(
            &fwd.addrs,
            fwd.sp,
            fwd.dp,
            fwd.proto,
            L4::Other,
            &[],
            (&[], &[]),
            &[],
            Some(kd::FlowInfo {
                to_server: true,
                ..flow
            }),
            ts,
        );
        let vars = self.vars.entry(flow_id).or_default();
        self.engine
            .inspect_tx(&p, &view, vars, &mut self.state, &mut self.alerts);
    }

    /// Runs the file signatures (`filesize`) on a closed file of the flow whose client →
    /// server tuple is `fwd`.
    pub fn file(
        &mut self,
        fwd: &Tuple,
        flow_id: u64,
        flow: kd::FlowInfo,
        file: &khien_applayer::FileRecord,
        ts: i64,
    ) {
        if !self.engine.wants_tx("file") {
            return;
        }
        let p = packet_info(
            &fwd.addrs,
            fwd.sp,
            fwd.dp,
            fwd.proto,
            L4::Other,
            &[],
            (&[], &[]),
            &[],
            Some(kd::FlowInfo {
                to_server: true,
                ..flow
            }),
            ts,
        );
        let view = FileView(file);
        let vars = self.vars.entry(flow_id).or_default();
        self.engine
            .inspect_tx(&p, &view, vars, &mut self.state, &mut self.alerts);
    }

    /// The flow's action for its EVE flow record (`flow.action`): `drop` for a flow
    /// dropped in IPS mode, `pass` for one a pass signature matched.
    pub fn flow_action(&self, flow_id: u64) -> Option<&'static str> {
        if self.dropped_flows.contains(&flow_id) {
            Some("drop")
        } else if self.vars.get(&flow_id).is_some_and(|v| v.pass) {
            Some("pass")
        } else {
            None
        }
    }

    /// Forgets a flow's variables.
    pub fn flow_end(&mut self, flow_id: u64) {
        self.vars.remove(&flow_id);
        self.dropped_flows.remove(&flow_id);
        self.requested.remove(&flow_id);
        self.deferred.remove(&flow_id);
    }

    /// The flow's variables as Suricata's EVE shows them: `,"metadata":{"flowbits":[…],
    /// "flowints":{…},"flowvars":[{name:value},…],"pktvars":[…]}` and
    /// `,"traffic":{"id":[…],"label":[…]}` (flowbits named `traffic/id/X` and
    /// `traffic/label/X`), appended to `out`; nothing when none is set. `pktvars`: an
    /// alert's packet variables (ids into [`kd::Engine::pktvar_names`]).
    pub fn write_vars(&self, flow_id: Option<u64>, pktvars: &[(u32, Vec<u8>)], out: &mut Vec<u8>) {
        let v = flow_id.and_then(|id| self.vars.get(&id));
        let e = &self.engine;
        let (bit_names, int_names) = (e.flowbit_names(), e.flowint_names());
        let mut bits = Vec::new();
        let (mut ids, mut labels) = (Vec::new(), Vec::new());
        let mut ints = serde_json::Map::new();
        let named = |names: &[String], vals: &[(u32, Vec<u8>)]| -> Vec<serde_json::Value> {
            vals.iter()
                .filter_map(|(i, val)| {
                    let n = names.get(*i as usize)?;
                    let mut o = serde_json::Map::new();
                    o.insert(n.clone(), khien_applayer::json_str(val).into());
                    Some(serde_json::Value::Object(o))
                })
                .collect()
        };
        let mut flowvars = Vec::new();
        if let Some(v) = v {
            for name in v.bits().iter().filter_map(|&b| bit_names.get(b as usize)) {
                if let Some(id) = name.strip_prefix("traffic/id/") {
                    ids.push(serde_json::Value::from(id));
                } else if let Some(l) = name.strip_prefix("traffic/label/") {
                    labels.push(serde_json::Value::from(l));
                } else {
                    bits.push(serde_json::Value::from(name.as_str()));
                }
            }
            for (i, val) in v.ints() {
                if let Some(n) = int_names.get(*i as usize) {
                    ints.insert(n.clone(), (*val).into());
                }
            }
            flowvars = named(e.flowvar_names(), v.strs());
        }
        write_section(
            out,
            "metadata",
            [
                ("flowbits", serde_json::Value::Array(bits)),
                ("flowints", serde_json::Value::Object(ints)),
                ("flowvars", serde_json::Value::Array(flowvars)),
                (
                    "pktvars",
                    serde_json::Value::Array(named(e.pktvar_names(), pktvars)),
                ),
            ],
        );
        write_section(
            out,
            "traffic",
            [
                ("id", serde_json::Value::Array(ids)),
                ("label", serde_json::Value::Array(labels)),
            ],
        );
    }

    /// Renders and clears `self.alerts` into the current packet's queue ([`Detect::flush`]
    /// writes it). Returns the number of alerts queued. In IPS mode a drop/reject alert
    /// (logged or not) drops the current packet, and for a flow-level match its flow.
    pub fn write(&mut self, eve: &mut EveWriter, c: &AlertCtx<'_>) -> usize {
        let AlertCtx {
            ts,
            flow_id,
            pcap_cnt,
            tuple,
            tx_tuple,
            app_proto,
            src,
            payload,
            ..
        } = *c;
        let mut vars = Vec::new();
        if !self.alerts.is_empty() {
            self.write_vars(flow_id, &[], &mut vars);
        }
        let mut own_vars = Vec::new();
        let mut n = 0;
        let mut alerts = std::mem::take(&mut self.alerts);
        for a in alerts.drain(..) {
            let blocking = matches!(a.action, kd::Action::Drop | kd::Action::Reject);
            if blocking && self.ips {
                if self.verdict.is_none() {
                    let reason = if a.rate_filtered {
                        "threshold detection_filter"
                    } else {
                        "rules"
                    };
                    self.verdict = Some((reason, flow_id));
                }
                if let (true, Some(id)) = (a.flow_action, flow_id) {
                    self.dropped_flows.insert(id);
                }
            }
            if a.silent {
                continue;
            }
            n += 1;
            // Suricata: a reject is always reported blocked, a drop only in IPS mode.
            let action = if a.action == kd::Action::Reject || (blocking && self.ips) {
                "blocked"
            } else {
                "allowed"
            };
            let t = tuple.map(|t| {
                if tx_tuple && !a.to_server {
                    t.reversed()
                } else {
                    *t
                }
            });
            eve.begin(ts, flow_id, pcap_cnt, "alert", t.as_ref(), Some(src));
            let l = &mut eve.line;
            if let Some(id) = a.tx_id {
                let _ = write!(l, ",\"tx_id\":{id}");
            }
            let s = &a.sig;
            let _ = write!(
                l,
                ",\"alert\":{{\"action\":\"{action}\",\"gid\":{},\"signature_id\":{},\"rev\":{},\"signature\":{},\"category\":{},\"severity\":{}",
                s.gid,
                s.sid,
                s.rev,
                serde_json::Value::from(s.msg.as_str()),
                serde_json::Value::from(s.category.as_deref().unwrap_or("")),
                s.priority
            );
            if !s.metadata.is_empty() {
                let m: serde_json::Map<String, serde_json::Value> = s
                    .metadata_map()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.into()))
                    .collect();
                let _ = write!(l, ",\"metadata\":{}", serde_json::Value::Object(m));
            }
            l.push(b'}');
            // The transaction's app-layer section (Suricata logs it for transaction
            // alerts).
            if let Some(sec) = a
                .tx_id
                .and_then(|id| c.sections.iter().find(|(t, _)| *t == id))
            {
                l.extend_from_slice(&sec.1);
            }
            if let Some(ap) = app_proto {
                let _ = write!(l, ",\"app_proto\":\"{ap}\"");
            }
            let dir = if a.to_server {
                "to_server"
            } else {
                "to_client"
            };
            let _ = write!(l, ",\"direction\":\"{dir}\"");
            if let Some(f) = &c.flow {
                let _ = write!(
                    l,
                    ",\"flow\":{{\"pkts_toserver\":{},\"pkts_toclient\":{},\"bytes_toserver\":{},\"bytes_toclient\":{},\"start\":\"",
                    f.pkts[0], f.pkts[1], f.bytes[0], f.bytes[1]
                );
                crate::eve::write_ts(l, f.start);
                l.extend_from_slice(b"\",\"src_ip\":\"");
                crate::eve::write_ip(l, f.fwd.addrs.v6, &f.fwd.addrs.src);
                l.extend_from_slice(b"\",\"dest_ip\":\"");
                crate::eve::write_ip(l, f.fwd.addrs.v6, &f.fwd.addrs.dst);
                l.push(b'"');
                if f.fwd.has_ports() {
                    let _ = write!(l, ",\"src_port\":{},\"dest_port\":{}", f.fwd.sp, f.fwd.dp);
                }
                l.push(b'}');
            }
            if a.pktvars.is_empty() {
                l.extend_from_slice(&vars);
            } else {
                own_vars.clear();
                self.write_vars(flow_id, &a.pktvars, &mut own_vars);
                l.extend_from_slice(&own_vars);
            }
            if a.tx_id.is_none() {
                // Like Suricata's `payload`/`payload-printable` (4 KiB payload buffer).
                let with_gaps;
                let payload = if c.payload_gaps.is_empty() {
                    payload
                } else {
                    with_gaps = render_gaps(payload, c.payload_gaps);
                    &with_gaps[..]
                };
                let p = payload.get(..PAYLOAD_MAX).unwrap_or(payload);
                l.extend_from_slice(b",\"payload\":\"");
                base64(p, l);
                let printable: String = p
                    .iter()
                    .map(|&c| {
                        if c.is_ascii_graphic() || c == b' ' || c == b'\n' || c == b'\r' {
                            char::from(c)
                        } else {
                            '.'
                        }
                    })
                    .collect();
                let _ = write!(
                    l,
                    "\",\"payload_printable\":{},\"stream\":{}",
                    serde_json::Value::from(printable),
                    u8::from(a.stream)
                );
            }
            if let Some((frame, linktype)) = c.packet.filter(|(f, _)| !f.is_empty()) {
                l.extend_from_slice(b",\"packet\":\"");
                base64(frame, l);
                let _ = write!(l, "\",\"packet_info\":{{\"linktype\":{linktype}}}");
            }
            self.queued.push(Queued {
                num: s.num,
                tx_id: a.tx_id,
                line: std::mem::take(&mut eve.line),
            });
        }
        self.alerts = alerts;
        n
    }
}

/// The packet's tuple as EVE records show it.
pub fn packet_tuple(d: &Decoded<'_>) -> Option<Tuple> {
    d.addrs.map(|a| Tuple {
        addrs: a,
        sp: d.sp,
        dp: d.dp,
        proto: d.proto,
        ports: matches!(d.l4, L4::Tcp(_) | L4::Udp) || (d.l4 == L4::Other && d.proto == 132),
        vlan: d.vlan,
    })
}

/// A stream payload with its gaps written in, as Suricata's alert `payload` shows them:
/// `[N bytes missing]` at each gap's offset.
fn render_gaps(payload: &[u8], gaps: &[(usize, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 24 * gaps.len());
    let mut from = 0;
    for &(at, n) in gaps {
        let at = at.clamp(from, payload.len());
        out.extend_from_slice(&payload[from..at]);
        let _ = write!(out, "[{n} bytes missing]");
        from = at;
    }
    out.extend_from_slice(&payload[from..]);
    out
}

/// Bytes of payload an alert record carries (Suricata's `payload-buffer-size: 4kb`).
const PAYLOAD_MAX: usize = 4096;

/// Standard base64 with padding, appended to `out`.
fn base64(b: &[u8], out: &mut Vec<u8>) {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(c.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(c.get(2).copied().unwrap_or(0));
        let idx = |s: u32| A[((n >> s) & 63) as usize];
        out.push(idx(18));
        out.push(idx(12));
        out.push(if c.len() > 1 { idx(6) } else { b'=' });
        out.push(if c.len() > 2 { idx(0) } else { b'=' });
    }
}

/// A transaction seen through the detection engine's buffer names.
struct TxView<'a>(&'a Transaction, Phase);

/// A closed file for the file signatures.
struct FileView<'a>(&'a khien_applayer::FileRecord);

impl TxBuffers for FileView<'_> {
    fn proto(&self) -> &'static str {
        "file"
    }
    fn tx_id(&self) -> u64 {
        self.0.tx_id
    }
    fn get(&self, _name: &str, _dir: Dir) -> Vec<Cow<'_, [u8]>> {
        Vec::new()
    }
    fn has_dir(&self, dir: Dir) -> bool {
        (dir == Dir::ToServer) == (self.0.direction == khien_applayer::Direction::ToServer)
    }
    fn file_size(&self) -> Option<u64> {
        Some(self.0.size)
    }
}

fn one(b: &[u8]) -> Vec<Cow<'_, [u8]>> {
    vec![Cow::Borrowed(b)]
}

fn opt(b: Option<&[u8]>) -> Vec<Cow<'_, [u8]>> {
    b.map(one).unwrap_or_default()
}

fn owned(v: Vec<u8>) -> Vec<Cow<'static, [u8]>> {
    vec![Cow::Owned(v)]
}

fn header_of<'a>(h: &'a [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v.as_slice())
}

/// `Name: value\r\n` lines; `skip` omits a header (Suricata leaves cookies out of
/// `http.header`).
fn headers_buf(h: &[(Vec<u8>, Vec<u8>)], skip: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in h {
        if skip.is_some_and(|s| k.eq_ignore_ascii_case(s.as_bytes())) {
            continue;
        }
        out.extend_from_slice(k);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn http_get<'a>(t: &'a HttpTx, name: &str, dir: Dir) -> Vec<Cow<'a, [u8]>> {
    let ts = dir == Dir::ToServer;
    let hdrs = if ts {
        &t.request_headers
    } else {
        &t.response_headers
    };
    match name {
        "http.uri" if ts => one(&t.uri_normalized),
        "http.uri.raw" if ts => one(&t.uri_raw),
        "http.method" if ts => one(&t.method),
        "http.protocol" => one(if ts {
            &t.protocol
        } else {
            &t.response_protocol
        }),
        "http.user_agent" if ts => opt(t.user_agent.as_deref()),
        "http.host" if ts => opt(t.host.as_deref()),
        "http.host.raw" if ts => opt(header_of(hdrs, "host")),
        "http.cookie" => opt(header_of(hdrs, if ts { "cookie" } else { "set-cookie" })),
        "http.referer" if ts => opt(header_of(hdrs, "referer")),
        "http.accept" if ts => opt(header_of(hdrs, "accept")),
        "http.accept_lang" if ts => opt(header_of(hdrs, "accept-language")),
        "http.accept_enc" if ts => opt(header_of(hdrs, "accept-encoding")),
        "http.content_type" => opt(header_of(hdrs, "content-type")),
        "http.content_len" => opt(header_of(hdrs, "content-length")),
        "http.connection" => opt(header_of(hdrs, "connection")),
        "http.location" if !ts => opt(header_of(hdrs, "location")),
        "http.server" if !ts => opt(header_of(hdrs, "server")),
        "http.stat_code" if !ts => t
            .status
            .map(|s| owned(s.to_string().into_bytes()))
            .unwrap_or_default(),
        "http.stat_msg" if !ts && t.status.is_some() => one(&t.status_msg),
        "http.request_body" if ts => one(&t.request_body),
        "file.data" => {
            let b = if ts {
                &t.request_body
            } else {
                &t.response_body
            };
            if b.is_empty() {
                Vec::new()
            } else {
                one(b)
            }
        }
        "http.request_header" | "http.response_header" if ts == (name == "http.request_header") => {
            hdrs.iter()
                .map(|(k, v)| {
                    let mut b = Vec::with_capacity(k.len() + 2 + v.len());
                    b.extend_from_slice(k);
                    b.extend_from_slice(b": ");
                    b.extend_from_slice(v);
                    Cow::Owned(b)
                })
                .collect()
        }
        "http.header" if !hdrs.is_empty() => owned(headers_buf(
            hdrs,
            Some(if ts { "cookie" } else { "set-cookie" }),
        )),
        "http.header.raw" => {
            let raw = if ts {
                &t.request_headers_raw
            } else {
                &t.response_headers_raw
            };
            if !raw.is_empty() {
                one(raw)
            } else if !hdrs.is_empty() {
                // HTTP/2: no header block on the wire; rebuilt from the fields.
                let mut b = headers_buf(hdrs, None);
                b.extend_from_slice(b"\r\n");
                owned(b)
            } else {
                Vec::new()
            }
        }
        "http.header_names" if !hdrs.is_empty() => {
            let mut b = b"\r\n".to_vec();
            for (k, _) in hdrs {
                b.extend_from_slice(k);
                b.extend_from_slice(b"\r\n");
            }
            b.extend_from_slice(b"\r\n");
            owned(b)
        }
        "http.request_line" if ts => {
            let mut b = t.method.clone();
            b.push(b' ');
            b.extend_from_slice(&t.uri_raw);
            if !t.protocol.is_empty() {
                b.push(b' ');
                b.extend_from_slice(&t.protocol);
            }
            owned(b)
        }
        "http.response_line" if !ts => match t.status {
            Some(s) => {
                let mut b = t.response_protocol.clone();
                b.extend_from_slice(format!(" {s:03} ").as_bytes());
                b.extend_from_slice(&t.status_msg);
                owned(b)
            }
            None => Vec::new(),
        },
        "http.start" => {
            let mut b = match http_get(
                t,
                if ts {
                    "http.request_line"
                } else {
                    "http.response_line"
                },
                dir,
            )
            .pop()
            {
                Some(l) => l.into_owned(),
                None => return Vec::new(),
            };
            b.extend_from_slice(b"\r\n");
            b.extend_from_slice(&headers_buf(hdrs, None));
            b.extend_from_slice(b"\r\n");
            owned(b)
        }
        _ => Vec::new(),
    }
}

impl TxBuffers for TxView<'_> {
    fn proto(&self) -> &'static str {
        match self.0 {
            Transaction::Http2(_) => "http",
            t => t.proto().as_str(),
        }
    }

    fn tx_id(&self) -> u64 {
        self.0.tx_id()
    }

    fn has_dir(&self, dir: Dir) -> bool {
        match (self.1, dir) {
            (Phase::Request, Dir::ToClient) | (Phase::Response, Dir::ToServer) => return false,
            _ => {}
        }
        match self.0 {
            Transaction::Dns(d) => d.is_response == (dir == Dir::ToClient),
            Transaction::Http(h) | Transaction::Http2(h) => {
                dir == Dir::ToServer || h.status.is_some()
            }
            _ => true,
        }
    }

    fn get(&self, name: &str, dir: Dir) -> Vec<Cow<'_, [u8]>> {
        let ts = dir == Dir::ToServer;
        match self.0 {
            Transaction::Http(t) | Transaction::Http2(t) => http_get(t, name, dir),
            Transaction::Dns(d) => match name {
                "dns.query" if ts && !d.is_response => d
                    .queries
                    .iter()
                    .map(|q| Cow::Borrowed(q.name.as_slice()))
                    .collect(),
                _ => Vec::new(),
            },
            Transaction::Tls(t) => {
                // To server: the client's certificates (mutual authentication).
                let certs = if ts { &t.client_certs } else { &t.certs };
                let cert = certs.first();
                match name {
                    "tls.sni" if ts => opt(t.sni.as_deref()),
                    "ja3.string" if ts => opt(t.ja3.as_deref().map(str::as_bytes)),
                    "ja3.hash" if ts => t
                        .ja3
                        .as_deref()
                        .map(|j| owned(kd::md5_hex(j.as_bytes()).into_bytes()))
                        .unwrap_or_default(),
                    "ja4.hash" if ts => opt(t.ja4.as_deref().map(str::as_bytes)),
                    "ja3s.string" if !ts => opt(t.ja3s.as_deref().map(str::as_bytes)),
                    "ja3s.hash" if !ts => t
                        .ja3s
                        .as_deref()
                        .map(|j| owned(kd::md5_hex(j.as_bytes()).into_bytes()))
                        .unwrap_or_default(),
                    "tls.cert_subject" => opt(cert.map(|c| c.subject.as_bytes())),
                    "tls.cert_issuer" => opt(cert.map(|c| c.issuer.as_bytes())),
                    "tls.cert_serial" => opt(cert.map(|c| c.serial.as_bytes())),
                    "tls.cert_fingerprint" => opt(cert.map(|c| c.fingerprint.as_bytes())),
                    "tls.certs" => certs
                        .iter()
                        .map(|c| Cow::Borrowed(c.der.as_slice()))
                        .collect(),
                    _ => Vec::new(),
                }
            }
            Transaction::Ssh(s) => {
                let ep = if ts {
                    s.client.as_ref()
                } else {
                    s.server.as_ref()
                };
                match name {
                    "ssh.proto" => opt(ep.map(|e| e.proto_version.as_slice())),
                    "ssh.software" => opt(ep.map(|e| e.software_version.as_slice())),
                    _ => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }
}

/// Appends `,"name":{…}` with the fields that are not empty (an empty array or object), or
/// nothing when all are.
fn write_section<const N: usize>(
    out: &mut Vec<u8>,
    name: &str,
    fields: [(&str, serde_json::Value); N],
) {
    let obj: serde_json::Map<String, serde_json::Value> = fields
        .into_iter()
        .filter(|(_, v)| match v {
            serde_json::Value::Array(a) => !a.is_empty(),
            serde_json::Value::Object(o) => !o.is_empty(),
            _ => true,
        })
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    if !obj.is_empty() {
        let _ = write!(out, ",\"{name}\":{}", serde_json::Value::Object(obj));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn payload_gaps_are_written_in() {
        assert_eq!(
            super::render_gaps(b"VERYDATA", &[(4, 4)]),
            b"VERY[4 bytes missing]DATA"
        );
        assert_eq!(
            super::render_gaps(b"GOODDATA", &[(0, 4), (8, 2)]),
            b"[4 bytes missing]GOODDATA[2 bytes missing]"
        );
    }
}
