//! The per-worker engine: flow lookup, TCP stream tracking, app-layer parsing and EVE
//! output for decoded packets. One engine owns one shard of the flows.

use std::io::Write;

use khien_applayer::{AppConfig, AppEvent, Direction, Transport};

use crate::app::AppState;
use crate::config::SensorConfig;
use crate::decode::{Addrs, Decoded, L4};
use crate::detect::{AlertCtx, AlertFlow};
use crate::eve::{write_ts, EveWriter, PktSrc, Tuple};
use crate::event::{Events, StreamEvent};
use crate::flow::{
    flow_id, EndReason, Flow, FlowConfig, FlowKey, FlowState, FlowTable, Timeouts, TCP_COST,
};
use crate::stream::{Chunk, StreamConfig, StreamStats, TcpSession};
use crate::wire::tcp::{ACK, CWR, ECE, FIN, PSH, RST, SYN, URG};

/// Which EVE types to write.
#[derive(Clone, Copy, Debug, Default)]
pub struct EveTypes {
    pub flow: bool,
    pub anomaly: bool,
    /// Anomaly records for stream events (`eve.anomaly-stream`).
    pub anomaly_stream: bool,
    pub http: bool,
    pub dns: bool,
    pub tls: bool,
    pub ssh: bool,
    pub smtp: bool,
    pub ftp: bool,
    pub fileinfo: bool,
    pub stats: bool,
}

impl EveTypes {
    pub fn from_config(c: &SensorConfig) -> Self {
        EveTypes {
            flow: c.eve_enabled("flow"),
            anomaly: c.eve_enabled("anomaly"),
            anomaly_stream: c.eve_enabled("anomaly") && c.eve.anomaly_stream,
            http: c.eve_enabled("http"),
            dns: c.eve_enabled("dns"),
            tls: c.eve_enabled("tls"),
            ssh: c.eve_enabled("ssh"),
            smtp: c.eve_enabled("smtp"),
            ftp: c.eve_enabled("ftp"),
            fileinfo: c.eve_enabled("fileinfo"),
            stats: c.eve_enabled("stats"),
        }
    }
    fn app(&self, event_type: &str) -> bool {
        match event_type {
            "http" => self.http,
            "dns" => self.dns,
            "tls" => self.tls,
            "ssh" => self.ssh,
            "smtp" => self.smtp,
            "ftp" | "ftp_data" => self.ftp,
            _ => false,
        }
    }
}

/// Engine counters beyond the flow/stream/decoder ones.
#[derive(Clone, Debug, Default)]
pub struct EngineStats {
    pub flow_pkts: u64,
    pub anomalies: u64,
    pub app_tx: u64,
    pub app_files: u64,
    pub app_anomalies: u64,
    pub eve_errors: u64,
    pub alerts: u64,
    /// Alerts dropped by `packet-alert-max`.
    pub alert_overflow: u64,
    /// Per application protocol (`crate::stats::APP_PROTOS` order): flows (counted when
    /// they end), transactions, parser anomalies.
    pub app_flows: [u64; crate::stats::APP_PROTOS.len()],
    pub app_tx_by: [u64; crate::stats::APP_PROTOS.len()],
    pub app_errors: [u64; crate::stats::APP_PROTOS.len()],
}

pub struct Engine {
    pub flows: FlowTable,
    pub stream_cfg: StreamConfig,
    pub stream_stats: StreamStats,
    app_cfg: AppConfig,
    types: EveTypes,
    eve: EveWriter,
    app_out: Vec<AppEvent>,
    scratch: Vec<usize>,
    /// Latest packet time seen (µs).
    pub now: i64,
    next_expire: i64,
    next_emergency_scan: i64,
    pub stats: EngineStats,
    /// Rule matching, when a ruleset is loaded (`-S`).
    pub detect: Option<crate::detect::Detect>,
    /// YARA scanning and storing of closed files, when configured.
    pub files: Option<crate::yara::FileInspector>,
    /// Data connections announced by control channels (FTP).
    expect: crate::app::Expectations,
    /// VLAN ids are part of the flow key (`vlan.use-for-tracking`).
    vlan_tracking: bool,
}

fn timeouts(base: Timeouts, o: &Option<crate::config::ProtoTimeouts>) -> Timeouts {
    match o {
        Some(o) => Timeouts {
            new: o.new.unwrap_or(base.new),
            established: o.established.unwrap_or(base.established),
            closed: o.closed.unwrap_or(base.closed),
            ..base
        },
        None => base,
    }
}

/// The request type of an ICMP request/reply pair (the type itself for other messages).
fn icmp_kind(proto: u8, ty: u8) -> u16 {
    let t = match (proto, ty) {
        (1, 0) => 8,
        (1, 14) => 13,
        (1, 16) => 15,
        (1, 18) => 17,
        (1, 9) => 10,
        (58, 129) => 128,
        (58, 134) => 133,
        (58, 136) => 135,
        (58, 140) => 139,
        (58, 145) => 144,
        (58, 147) => 146,
        (_, t) => t,
    };
    u16::from(t)
}

impl Engine {
    pub fn new(cfg: &SensorConfig, eve: EveWriter) -> Self {
        let d = FlowConfig::default();
        let t = &cfg.flow.timeouts;
        let flow_cfg = FlowConfig {
            memcap: cfg.flow.memcap.0 as usize / cfg.workers.max(1),
            default: timeouts(d.default, &t.default),
            tcp: timeouts(d.tcp, &t.tcp),
            udp: timeouts(d.udp, &t.udp),
            icmp: timeouts(d.icmp, &t.icmp),
            ..d
        };
        let stream_cfg = StreamConfig {
            midstream: cfg.stream.midstream,
            async_oneside: cfg.stream.async_oneside,
            ack_delivery: !cfg.stream.inline,
            depth: cfg.stream.reassembly.depth.0,
            memcap: cfg.stream.reassembly.memcap.0 as usize / cfg.workers.max(1),
            raw: cfg.detect.as_ref().is_some_and(|e| e.wants_stream()),
            ..StreamConfig::default()
        };
        Engine {
            flows: FlowTable::new(flow_cfg),
            stream_cfg,
            stream_stats: StreamStats::default(),
            app_cfg: AppConfig {
                file_data_limit: cfg.files.keep_bytes(),
                http_request_body_depth: usize::try_from(cfg.http.request_body_limit.0)
                    .unwrap_or(usize::MAX),
                http_response_body_depth: usize::try_from(cfg.http.response_body_limit.0)
                    .unwrap_or(usize::MAX),
                http_file_limit: cfg.http.request_body_limit.0,
                http_response_file_limit: cfg.http.response_body_limit.0,
                ..AppConfig::default()
            },
            types: EveTypes::from_config(cfg),
            eve,
            app_out: Vec::new(),
            scratch: Vec::new(),
            now: 0,
            next_expire: 0,
            next_emergency_scan: 0,
            stats: EngineStats::default(),
            detect: cfg.detect.clone().map(|e| {
                let mut d = crate::detect::Detect::new(e);
                d.max_per_packet = cfg.packet_alert_max;
                d.ips = cfg.ips;
                d.verdict_field = cfg.eve.alert_verdict;
                d
            }),
            files: crate::yara::FileInspector::from_config(cfg),
            expect: crate::app::Expectations::default(),
            vlan_tracking: cfg.vlan.use_for_tracking,
        }
    }

    /// Handles one decoded packet. `wire_len` is the captured length (Suricata counts
    /// flow bytes with it), `pcap_cnt` the packet number.
    pub fn packet(&mut self, d: &Decoded<'_>, wire_len: usize, ts: i64, pcap_cnt: u64) {
        self.packet_inner(d, wire_len, ts, pcap_cnt);
        self.flush_alerts();
        if let Some(dt) = self.detect.as_mut() {
            if dt.write_drop(&mut self.eve, d, ts, pcap_cnt).is_err() {
                self.stats.eve_errors += 1;
            }
        }
    }

    /// Writes the alerts queued for the packet just processed (or a flow-end pseudo
    /// packet), capped at `packet-alert-max` (see [`crate::detect::Detect::flush`]).
    fn flush_alerts(&mut self) {
        if let Some(dt) = self.detect.as_mut() {
            let (n, errors) = dt.flush(&mut self.eve);
            self.stats.alerts += n as u64;
            self.stats.alert_overflow = dt.overflow;
            self.stats.eve_errors += errors as u64;
        }
    }

    fn packet_inner(&mut self, d: &Decoded<'_>, wire_len: usize, ts: i64, pcap_cnt: u64) {
        if ts > self.now {
            self.now = ts;
        }
        if self.now >= self.next_expire {
            self.expire(self.now);
            self.next_expire = self.now + 1_000_000;
        }
        let Some(addrs) = d.addrs.filter(|_| d.l4 != L4::None) else {
            self.anomalies(d, None, ts, pcap_cnt);
            self.detect_packet(d, None, false, ts, pcap_cnt, false, &Events::default());
            return;
        };
        let (sp, dp) = match d.l4 {
            L4::Tcp(_) | L4::Udp => (d.sp, d.dp),
            L4::Other if d.proto == 132 => (d.sp, d.dp),
            // ICMP messages of one kind (a request and its reply) share a flow; different
            // kinds between the same hosts are different flows, as in Suricata.
            L4::Icmp { ty, .. } => {
                let k = icmp_kind(d.proto, ty);
                (k, k)
            }
            _ => (0, 0),
        };
        let vlan = if self.vlan_tracking { d.vlan } else { [0; 2] };
        let (mut key, mut src_lo) = FlowKey::new(&addrs, sp, dp, d.proto, vlan);
        // An ICMPv4 destination-unreachable belongs to the flow of the packet it quotes.
        if let Some(e) = d.icmp_embedded {
            let ea = Addrs::v4(e.src, e.dst);
            let (k, lo) = FlowKey::new(&ea, e.sport, e.dport, e.proto, vlan);
            if self.flows.lookup(&k).is_some() {
                key = k;
                // The error travels against the quoted packet's direction.
                src_lo = !lo;
            }
        }
        let mut idx = self.flows.lookup(&key);
        if let (Some(i), L4::Tcp(t)) = (idx, d.l4) {
            let reuse = self
                .flows
                .get(i)
                .and_then(|f| f.tcp.as_ref())
                .is_some_and(|s| s.is_reuse(&t));
            if reuse {
                self.stream_stats.ssn_reuse += 1;
                self.flows.stats.tcp_reuse += 1;
                self.finish_flow(i, EndReason::Timeout, ts);
                idx = None;
            }
        }
        let idx = match idx {
            Some(i) => i,
            None => {
                self.make_room(ts);
                // Suricata picks a session up midstream on a SYN/ACK by reversing the
                // flow: the SYN/ACK's receiver is the client.
                let synack =
                    matches!(d.l4, L4::Tcp(t) if t.flags & (SYN | ACK | RST | FIN) == SYN | ACK);
                let pickup = self.stream_cfg.midstream || self.stream_cfg.async_oneside;
                let f = Flow {
                    key,
                    vlan: d.vlan,
                    client_is_lo: src_lo != (synack && pickup),
                    id: flow_id(&key, ts),
                    start: ts,
                    last: ts,
                    pkts: [0; 2],
                    bytes: [0; 2],
                    state: FlowState::New,
                    icmp: None,
                    icmp_reply: None,
                    tcp_flags: [0; 2],
                    tcp: None,
                    app: AppState::default(),
                    alerted: false,
                };
                self.flows.insert(f)
            }
        };
        self.stats.flow_pkts += 1;
        let mut new_session = false;
        // A session picked up midstream: its first packet's data belongs to the stream.
        let mut midstream_start = false;
        {
            let Some(f) = self.flows.get_mut(idx) else {
                return;
            };
            let dir = f.dir(src_lo);
            f.pkts[dir] += 1;
            f.bytes[dir] += wire_len as u64;
            if ts > f.last {
                f.last = ts;
            }
            match d.l4 {
                L4::Tcp(t) => {
                    let syn = t.flags & SYN != 0 && t.flags & ACK == 0 && dir == 0;
                    let first = f.pkts[0] + f.pkts[1] == 1;
                    let midstream = first
                        && (self.stream_cfg.midstream
                            || (self.stream_cfg.async_oneside
                                && t.flags & (SYN | ACK | RST | FIN) == SYN | ACK));
                    if f.tcp.is_none() && (syn || midstream) {
                        if let Some(mut s) =
                            TcpSession::start(&t, &self.stream_cfg, &mut self.stream_stats)
                        {
                            if dir == 1 {
                                // A SYN/ACK pickup: its sender is the server.
                                s.reverse();
                            }
                            f.tcp = Some(Box::new(s));
                            new_session = true;
                            // A TCP Fast Open SYN's data is the stream's start too.
                            midstream_start = !syn || (t.opts.tfo && !d.payload.is_empty());
                            f.app.midstream = !syn;
                        }
                    }
                    if f.tcp.is_some() {
                        f.tcp_flags[dir] |= t.flags;
                    }
                }
                L4::Icmp { ty, code } => {
                    if f.icmp.is_none() {
                        f.icmp = Some((ty, code));
                    } else if dir == 1 && f.icmp_reply.is_none() {
                        f.icmp_reply = Some((ty, code));
                    }
                }
                _ => {}
            }
            if f.tcp.is_none() && f.key.proto != 6 && f.pkts[0] > 0 && f.pkts[1] > 0 {
                f.state = FlowState::Established;
            }
        }
        if new_session {
            self.flows.stats.memuse += TCP_COST;
        }
        self.anomalies(d, Some(idx), ts, pcap_cnt);
        if !d.csum_ok {
            return;
        }
        // IPS mode: a dropped flow's packets go no further (Suricata's "flow drop").
        if let (Some(dt), Some(f)) = (self.detect.as_mut(), self.flows.get(idx)) {
            if dt.flow_dropped(f.id) {
                return;
            }
        }
        let Some(f) = self.flows.get_mut(idx) else {
            return;
        };
        let dir = f.dir(src_lo);
        let (_, cport, _, sport) = f.endpoints();
        let app_cfg = &self.app_cfg;
        let out = &mut self.app_out;
        let mut stream_added = false;
        let mut reversed = false;
        // Stream events of this packet (Suricata's StreamTcpSetEvent).
        let mut sev: Events<StreamEvent> = Events::default();
        if let L4::Tcp(t) = d.l4 {
            // An acknowledgement number without the ACK flag.
            if t.flags & ACK == 0 && t.ack != 0 {
                sev.push(StreamEvent::PktBrokenAck);
            }
        }
        if matches!(d.l4, L4::Tcp(_)) && f.app.proto.is_none() && !self.expect.is_empty() {
            if let Some((spec, parent)) = self.expect.take(&f.key, sport, ts) {
                f.app.expected(&spec, parent, app_cfg);
            }
        }
        match d.l4 {
            L4::Tcp(t) if !new_session || midstream_start => {
                let Flow {
                    tcp, app, state, ..
                } = f;
                if let Some(s) = tcp.as_mut() {
                    let mut gap = false;
                    let mut sink = |dir: usize, c: Chunk<'_>| match c {
                        Chunk::Data(b) => {
                            app.data(Transport::Tcp, dir, cport, sport, b, ts, app_cfg, out)
                        }
                        Chunk::Gap(n) => {
                            gap = true;
                            app.gap(dir, n, out)
                        }
                        Chunk::Cut => app.cut(dir),
                    };
                    s.packet(
                        dir,
                        &t,
                        d.payload,
                        &self.stream_cfg,
                        &mut self.stream_stats,
                        &mut sink,
                    );
                    stream_added = s.last_added;
                    for e in s.events.iter() {
                        sev.push(e);
                    }
                    if gap {
                        sev.push(StreamEvent::ReassemblySeqGap);
                    }
                    if app.reversed {
                        s.reverse();
                        reversed = true;
                    }
                    if let Some(depth) = app.stream_depth() {
                        s.set_depth(depth);
                    }
                    if s.state.is_closed() {
                        *state = FlowState::Closed;
                    } else if s.state.is_established() {
                        *state = FlowState::Established;
                    }
                }
            }
            L4::Udp if !d.payload.is_empty() => {
                f.app.data(
                    Transport::Udp,
                    dir,
                    cport,
                    sport,
                    d.payload,
                    ts,
                    app_cfg,
                    out,
                );
            }
            _ => {}
        }
        if reversed {
            // App-layer detection reversed the flow (a midstream session whose first data
            // came from the server): its sides swap (Suricata's FlowSwap).
            f.app.reversed = false;
            f.client_is_lo = !f.client_is_lo;
            f.pkts.swap(0, 1);
            f.bytes.swap(0, 1);
            f.tcp_flags.swap(0, 1);
        }
        // An app-layer transaction makes the raw stream ready (Suricata's TRIGGER_RAW).
        let had_tx = self.app_out.iter().any(|e| matches!(e, AppEvent::Tx(_)));
        if had_tx {
            if let Some(s) = self.flows.get_mut(idx).and_then(|f| f.tcp.as_mut()) {
                s.raw_trigger();
            }
        }
        if !self.app_out.is_empty() {
            self.write_app(idx, Some(pcap_cnt), PktSrc::Wire, ts);
        }
        if !sev.is_empty() {
            self.stream_anomalies(d, idx, &sev, ts, pcap_cnt);
        }
        self.detect_packet(d, Some(idx), src_lo, ts, pcap_cnt, stream_added, &sev);
        self.detect_stream(Some(d), idx, src_lo, ts, Some(pcap_cnt), had_tx);
    }

    /// Raw stream inspection: when the direction of `src_lo` in flow `idx` has a chunk
    /// ready (see `TcpSession::raw_chunk`), runs the stream signatures on it and writes
    /// their alerts. `d` is the packet that made it ready; `None` at flow end, where the
    /// whole rest of the stream is inspected.
    fn detect_stream(
        &mut self,
        d: Option<&Decoded<'_>>,
        idx: usize,
        src_lo: bool,
        ts: i64,
        pcap_cnt: Option<u64>,
        trigger: bool,
    ) {
        let Some(dt) = self.detect.as_mut() else {
            return;
        };
        let Some(f) = self.flows.get(idx) else {
            return;
        };
        let dir = f.dir(src_lo);
        let Some((chunk, new_from)) = f
            .tcp
            .as_ref()
            .and_then(|s| s.raw_chunk(dir, trigger, d.is_none()))
        else {
            return;
        };
        let len = chunk.len();
        let at = f.tcp.as_ref().map_or(0, |s| s.raw_offset(dir));
        let gaps = f.tcp.as_ref().map_or(&[][..], |s| s.raw_gaps(dir, len));
        let fwd = Self::flow_tuple(f);
        let tuple = if dir == 0 { fwd } else { fwd.reversed() };
        let info = khien_detect::FlowInfo {
            to_server: dir == 0,
            established: f.state != FlowState::New,
            app_proto: f.app.eve_name(),
            encrypted: false,
        };
        // Of an encrypted flow, only the bytes from before it turned encrypted (raw data
        // queued until then is still inspected, as Suricata 7.0.7 does).
        let clear = match f.app.encrypted_at {
            Some(e) => usize::try_from(e[dir].saturating_sub(at)).map_or(len, |n| n.min(len)),
            None => len,
        };
        let chunk = &chunk[..clear];
        if clear > new_from {
            dt.stream(d, &tuple, f.id, info, chunk, new_from, at, ts);
        }
        if !dt.alerts.is_empty() {
            let src = if d.is_some() {
                PktSrc::Wire
            } else {
                PktSrc::FlowTimeout
            };
            dt.write(
                &mut self.eve,
                &AlertCtx {
                    ts,
                    flow_id: Some(f.id),
                    pcap_cnt,
                    tuple: Some(&tuple),
                    tx_tuple: false,
                    app_proto: info.app_proto,
                    src,
                    payload: chunk,
                    packet: d.map(|d| (d.frame, d.linktype)),
                    flow: Some(Self::alert_flow(f)),
                    sections: &[],
                    payload_gaps: gaps,
                },
            );
            if let Some(f) = self.flows.get_mut(idx) {
                f.alerted = true;
            }
        }
        if let Some(s) = self.flows.get_mut(idx).and_then(|f| f.tcp.as_mut()) {
            s.raw_done(dir, len);
        }
    }

    /// Runs the packet rules on `d` (flow `idx`, if any) and writes its alerts.
    /// `stream_added`: the TCP payload went into the reassembled stream; `sev`: the
    /// stream events it raised.
    #[allow(clippy::too_many_arguments)] // reason: the packet and what the flow stage found, one each
    fn detect_packet(
        &mut self,
        d: &Decoded<'_>,
        idx: Option<usize>,
        src_lo: bool,
        ts: i64,
        pcap_cnt: u64,
        stream_added: bool,
        sev: &Events<StreamEvent>,
    ) {
        let Some(dt) = self.detect.as_mut() else {
            return;
        };
        let f = idx.and_then(|i| self.flows.get(i));
        let mut deferred_alerted = false;
        // Request-time transaction alerts of the flow land on its next to-server packet.
        if let Some(f) = f.filter(|f| f.dir(src_lo) == 0) {
            if let Some((fwd, app, sections)) = dt.take_deferred(f.id) {
                let n = dt.write(
                    &mut self.eve,
                    &AlertCtx {
                        ts,
                        flow_id: Some(f.id),
                        pcap_cnt: Some(pcap_cnt),
                        tuple: Some(&fwd),
                        tx_tuple: true,
                        app_proto: Some(&app),
                        src: PktSrc::Wire,
                        payload: &[],
                        packet: Some((d.frame, d.linktype)),
                        flow: Some(Self::alert_flow(f)),
                        sections: &sections,
                        payload_gaps: &[],
                    },
                );
                deferred_alerted = n > 0;
            }
        }
        let info = f.map(|f| khien_detect::FlowInfo {
            to_server: f.dir(src_lo) == 0,
            established: f.state != FlowState::New,
            app_proto: f.app.eve_name(),
            encrypted: f.app.encrypted(),
        });
        let sizes = f.and_then(|f| f.tcp.as_ref()).map(|s| s.seq_sizes());
        dt.packet(d, sev, f.map(|f| f.id), info, ts, stream_added, sizes);
        if dt.alerts.is_empty() {
            if deferred_alerted {
                if let Some(f) = idx.and_then(|i| self.flows.get_mut(i)) {
                    f.alerted = true;
                }
            }
            return;
        }
        let tuple = crate::detect::packet_tuple(d);
        let app = info.and_then(|i| i.app_proto);
        dt.write(
            &mut self.eve,
            &AlertCtx {
                ts,
                flow_id: f.map(|f| f.id),
                pcap_cnt: Some(pcap_cnt),
                tuple: tuple.as_ref(),
                tx_tuple: false,
                app_proto: app,
                src: PktSrc::Wire,
                payload: d.payload,
                packet: Some((d.frame, d.linktype)),
                flow: f.map(Self::alert_flow),
                sections: &[],
                payload_gaps: &[],
            },
        );
        if let Some(f) = idx.and_then(|i| self.flows.get_mut(i)) {
            f.alerted = true;
        }
    }

    /// Evicts flows when the memcap would be exceeded by one more.
    fn make_room(&mut self, ts: i64) {
        let extra = self.flows.flow_cost() + TCP_COST;
        if !self.flows.over_memcap(extra) {
            if self.flows.emergency {
                self.flows.update_emergency();
            }
            return;
        }
        self.flows.stats.memcap_hits += 1;
        self.flows.update_emergency();
        let mut v = std::mem::take(&mut self.scratch);
        v.clear();
        // A full scan with the (shorter) emergency timeouts at most once per second of
        // packet time; in between, evict directly so a flood costs O(1) per new flow.
        if ts >= self.next_emergency_scan {
            self.next_emergency_scan = ts + 1_000_000;
            self.expire(ts);
        }
        if self.flows.over_memcap(extra) {
            v.clear();
            self.flows.pick_victims(64, &mut v);
            for &i in &v {
                self.flows.stats.forced += 1;
                self.finish_flow(i, EndReason::Forced, ts);
            }
        }
        self.scratch = v;
        self.flows.update_emergency();
    }

    /// Times out idle flows at `now`.
    pub fn expire(&mut self, now: i64) {
        // Walks the slab in place (no list of expired flows: a whole table can expire).
        let mut at = 0;
        while let Some(i) = self.flows.next_expired(at, now) {
            self.flows.stats.timeouts += 1;
            self.finish_flow(i, EndReason::Timeout, now);
            at = i + 1;
        }
    }

    /// Advances the engine clock to `ts` and times out idle flows.
    pub fn tick(&mut self, ts: i64) {
        if ts > self.now {
            self.now = ts;
        }
        if self.now >= self.next_expire {
            self.expire(self.now);
            self.next_expire = self.now + 1_000_000;
        }
    }

    /// Flushes buffered EVE output.
    pub fn flush(&mut self) {
        if self.eve.flush().is_err() {
            self.stats.eve_errors += 1;
        }
    }

    /// Ends every flow (end of a pcap run).
    pub fn shutdown(&mut self) {
        let now = self.now;
        let mut at = 0;
        while let Some(i) = self.flows.next_flow(at) {
            self.finish_flow(i, EndReason::Shutdown, now);
            at = i + 1;
        }
        if self.eve.flush().is_err() {
            self.stats.eve_errors += 1;
        }
    }

    fn finish_flow(&mut self, idx: usize, reason: EndReason, ts: i64) {
        let Some(f) = self.flows.get_mut(idx) else {
            return;
        };
        if self
            .detect
            .as_ref()
            .is_some_and(|dt| dt.is_flow_dropped(f.id))
        {
            // IPS: a dropped flow's end is dropped too (no app-layer flush, no inspection).
            if let Some(s) = f.tcp.as_mut() {
                s.release(&mut self.stream_stats);
            }
            self.end_flow(idx, reason, ts);
            return;
        }
        let (_, cport, _, sport) = f.endpoints();
        let app_cfg = &self.app_cfg;
        let out = &mut self.app_out;
        let Flow { tcp, app, .. } = f;
        if let Some(s) = tcp.as_mut() {
            // Suricata's TLS state finishes on the first end-of-stream, so it is logged
            // before the to-client flow-end bytes arrive.
            let log_first = app.proto == Some(khien_applayer::AppProto::Tls);
            let mut sink = |dir: usize, c: Chunk<'_>| match c {
                Chunk::Data(b) => app.data(Transport::Tcp, dir, cport, sport, b, ts, app_cfg, out),
                Chunk::Gap(n) => app.gap(dir, n, out),
                Chunk::Cut => app.cut(dir),
            };
            s.flush(
                &self.stream_cfg,
                &mut self.stream_stats,
                log_first,
                &mut sink,
            );
            s.release(&mut self.stream_stats);
        }
        app.close(ts, out);
        // Alerts queued by the packet being processed belong to it, not to this flow end.
        let pending = self.detect.as_mut().map(|dt| dt.take_queued());
        if !self.app_out.is_empty() {
            self.write_app(idx, None, PktSrc::FlowTimeout, ts);
        }
        if let (Some(dt), Some(f)) = (self.detect.as_mut(), self.flows.get(idx)) {
            if let Some((fwd, app, sections)) = dt.take_deferred(f.id) {
                let n = dt.write(
                    &mut self.eve,
                    &AlertCtx {
                        ts,
                        flow_id: Some(f.id),
                        pcap_cnt: None,
                        tuple: Some(&fwd),
                        tx_tuple: true,
                        app_proto: Some(&app),
                        src: PktSrc::FlowTimeout,
                        payload: &[],
                        packet: None,
                        flow: Some(Self::alert_flow(f)),
                        sections: &sections,
                        payload_gaps: &[],
                    },
                );
                if n > 0 {
                    if let Some(f) = self.flows.get_mut(idx) {
                        f.alerted = true;
                    }
                }
            }
        }
        self.flush_alerts();
        // The rest of each direction's raw stream (Suricata's flow-timeout pseudo packets).
        if let Some(client_lo) = self.flows.get(idx).map(|f| f.client_is_lo) {
            self.detect_stream(None, idx, client_lo, ts, None, true);
            self.flush_alerts();
            self.detect_stream(None, idx, !client_lo, ts, None, true);
            self.flush_alerts();
        }
        if let (Some(dt), Some(q)) = (self.detect.as_mut(), pending) {
            dt.restore_queued(q);
        }
        self.end_flow(idx, reason, ts);
    }

    /// Removes a finished flow and writes its record.
    fn end_flow(&mut self, idx: usize, reason: EndReason, ts: i64) {
        if let Some(f) = self.flows.remove(idx) {
            if let Some(i) = f.app.eve_name().and_then(crate::stats::app_index) {
                self.stats.app_flows[i] += 1;
            }
            let mut vars = Vec::new();
            let mut action = None;
            if let Some(dt) = self.detect.as_mut() {
                if self.types.flow {
                    dt.write_vars(Some(f.id), &[], &mut vars);
                    action = dt.flow_action(f.id);
                }
                dt.flow_end(f.id);
            }
            if self.types.flow {
                self.write_flow(&f, reason, ts, action, &vars);
            }
        }
    }

    /// The `flow` section of an alert on flow `f`.
    fn alert_flow(f: &Flow) -> AlertFlow {
        AlertFlow {
            pkts: f.pkts,
            bytes: f.bytes,
            start: f.start,
            fwd: Self::flow_tuple(f),
        }
    }

    fn flow_tuple(f: &Flow) -> Tuple {
        let (c, cp, s, sp) = f.endpoints();
        Tuple {
            addrs: Addrs {
                v6: f.key.v6,
                src: c,
                dst: s,
            },
            sp: cp,
            dp: sp,
            proto: f.key.proto,
            ports: matches!(f.key.proto, 6 | 17 | 132),
            vlan: f.vlan,
        }
    }

    /// `vars`: the flow's rendered detection variables ([`crate::detect::Detect::write_vars`]).
    /// `action`: the flow's drop/pass action (`flow.action`).
    fn write_flow(
        &mut self,
        f: &Flow,
        reason: EndReason,
        ts: i64,
        action: Option<&str>,
        vars: &[u8],
    ) {
        let t = Self::flow_tuple(f);
        let e = &mut self.eve;
        e.begin(ts, Some(f.id), None, "flow", Some(&t), None);
        let l = &mut e.line;
        if let Some((ty, code)) = f.icmp {
            let _ = write!(l, ",\"icmp_type\":{ty},\"icmp_code\":{code}");
            if let Some((rt, rc)) = f.icmp_reply {
                let _ = write!(
                    l,
                    ",\"response_icmp_type\":{rt},\"response_icmp_code\":{rc}"
                );
            }
        }
        if let Some(name) = f.app.eve_name() {
            let _ = write!(l, ",\"app_proto\":\"{name}\"");
        }
        let _ = write!(
            l,
            ",\"flow\":{{\"pkts_toserver\":{},\"pkts_toclient\":{},\"bytes_toserver\":{},\"bytes_toclient\":{},\"start\":\"",
            f.pkts[0], f.pkts[1], f.bytes[0], f.bytes[1]
        );
        write_ts(l, f.start);
        l.extend_from_slice(b"\",\"end\":\"");
        write_ts(l, f.last);
        let age = (f.last.div_euclid(1_000_000) - f.start.div_euclid(1_000_000)).max(0);
        let _ = write!(
            l,
            "\",\"age\":{age},\"state\":\"{}\",\"reason\":\"{}\",\"alerted\":{}",
            f.state.as_str(),
            reason.as_str(),
            f.alerted
        );
        if let Some(a) = action {
            let _ = write!(l, ",\"action\":\"{a}\"");
        }
        l.push(b'}');
        if f.key.proto == 6 {
            let all = f.tcp_flags[0] | f.tcp_flags[1];
            let _ = write!(
                l,
                ",\"tcp\":{{\"tcp_flags\":\"{all:02x}\",\"tcp_flags_ts\":\"{:02x}\",\"tcp_flags_tc\":\"{:02x}\"",
                f.tcp_flags[0], f.tcp_flags[1]
            );
            for (bit, name) in [
                (SYN, "syn"),
                (FIN, "fin"),
                (RST, "rst"),
                (PSH, "psh"),
                (ACK, "ack"),
                (URG, "urg"),
                (ECE, "ecn"),
                (CWR, "cwr"),
            ] {
                if all & bit != 0 {
                    let _ = write!(l, ",\"{name}\":true");
                }
            }
            if let Some(s) = &f.tcp {
                let _ = write!(
                    l,
                    ",\"state\":\"{}\",\"ts_max_regions\":{},\"tc_max_regions\":{}",
                    s.state.as_str(),
                    s.max_regions(0),
                    s.max_regions(1)
                );
            }
            l.push(b'}');
        }
        l.extend_from_slice(vars);
        if e.finish().is_err() {
            self.stats.eve_errors += 1;
        }
    }

    /// Writes decoder anomalies of a packet.
    fn anomalies(&mut self, d: &Decoded<'_>, flow: Option<usize>, ts: i64, pcap_cnt: u64) {
        if d.events.is_empty() {
            return;
        }
        self.stats.anomalies += d.events.iter().count() as u64;
        if !self.types.anomaly {
            return;
        }
        let id = flow.and_then(|i| self.flows.get(i)).map(|f| f.id);
        let tuple = d.addrs.map(|a| Tuple {
            addrs: a,
            sp: d.sp,
            dp: d.dp,
            proto: d.proto,
            ports: matches!(d.l4, L4::Tcp(_) | L4::Udp) || (d.l4 == L4::Other && d.proto == 132),
            vlan: d.vlan,
        });
        for ev in d.events.iter() {
            let e = &mut self.eve;
            e.begin(
                ts,
                id,
                Some(pcap_cnt),
                "anomaly",
                tuple.as_ref(),
                Some(PktSrc::Wire),
            );
            let _ = write!(
                e.line,
                ",\"anomaly\":{{\"type\":\"decode\",\"event\":\"{}\"}}",
                ev.name()
            );
            if e.finish().is_err() {
                self.stats.eve_errors += 1;
            }
        }
    }

    /// Writes the stream events of a packet of flow `idx` as anomaly records
    /// (`eve.anomaly-stream`).
    fn stream_anomalies(
        &mut self,
        d: &Decoded<'_>,
        idx: usize,
        sev: &Events<StreamEvent>,
        ts: i64,
        pcap_cnt: u64,
    ) {
        if !self.types.anomaly_stream {
            return;
        }
        let (Some(addrs), Some(f)) = (d.addrs, self.flows.get(idx)) else {
            return;
        };
        let tuple = Tuple {
            addrs,
            sp: d.sp,
            dp: d.dp,
            proto: d.proto,
            ports: true,
            vlan: d.vlan,
        };
        for ev in sev.iter() {
            let e = &mut self.eve;
            e.begin(
                ts,
                Some(f.id),
                Some(pcap_cnt),
                "anomaly",
                Some(&tuple),
                Some(PktSrc::Wire),
            );
            let _ = write!(
                e.line,
                ",\"anomaly\":{{\"type\":\"stream\",\"event\":\"{}\"}}",
                ev.name()
            );
            if e.finish().is_err() {
                self.stats.eve_errors += 1;
            }
        }
    }

    /// Writes the app-layer events in `self.app_out` for flow `idx`.
    fn write_app(&mut self, idx: usize, pcap_cnt: Option<u64>, src: PktSrc, ts: i64) {
        let mut out = std::mem::take(&mut self.app_out);
        let mut alerted = false;
        if let Some(f) = self.flows.get(idx) {
            let fwd = Self::flow_tuple(f);
            let rev = fwd.reversed();
            let tuple = |d: Direction| if d == Direction::ToServer { fwd } else { rev };
            let app_name = f.app.eve_name().unwrap_or("unknown");
            for ev in out.drain(..) {
                let e = &mut self.eve;
                match ev {
                    AppEvent::Tx(tx) => {
                        self.stats.app_tx += 1;
                        if let Some(i) = crate::stats::app_index(app_name) {
                            self.stats.app_tx_by[i] += 1;
                        }
                        if let Some(dt) = self.detect.as_mut() {
                            let info = khien_detect::FlowInfo::transaction(app_name);
                            dt.tx(&fwd, f.id, info, &tx, ts);
                            let sections = if dt.alerts.is_empty() {
                                Vec::new()
                            } else {
                                vec![(tx.tx_id(), crate::detect::tx_section(&tx))]
                            };
                            let ctx = AlertCtx::transaction(
                                ts,
                                (f.id, Self::alert_flow(f)),
                                pcap_cnt,
                                &fwd,
                                app_name,
                                src,
                                &sections,
                            );
                            let n = dt.write(e, &ctx);
                            alerted |= n > 0;
                        }
                        let t = tuple(tx.direction());
                        let extra = tx.eve_extra();
                        for (event_type, key, value) in tx.eve() {
                            if !self.types.app(event_type) {
                                continue;
                            }
                            e.begin(ts, Some(f.id), pcap_cnt, event_type, Some(&t), Some(src));
                            if event_type != "dns" {
                                let _ = write!(e.line, ",\"tx_id\":{}", tx.tx_id());
                            }
                            e.value(key, &value);
                            for (k, v) in &extra {
                                e.value(k, v);
                            }
                            if e.finish().is_err() {
                                self.stats.eve_errors += 1;
                            }
                        }
                    }
                    AppEvent::File(file) => {
                        self.stats.app_files += 1;
                        let (mut info, section) = file.eve();
                        if let Some(dt) = self.detect.as_mut() {
                            let fi = khien_detect::FlowInfo::transaction(app_name);
                            dt.file(&fwd, f.id, fi, &file, ts);
                            let sections: Vec<(u64, Vec<u8>)> = match &section {
                                Some((k, v)) if !dt.alerts.is_empty() => {
                                    vec![(file.tx_id, format!(",\"{k}\":{v}").into_bytes())]
                                }
                                _ => Vec::new(),
                            };
                            let ctx = AlertCtx::transaction(
                                ts,
                                (f.id, Self::alert_flow(f)),
                                pcap_cnt,
                                &fwd,
                                app_name,
                                src,
                                &sections,
                            );
                            let n = dt.write(e, &ctx);
                            alerted |= n > 0;
                        }
                        if let Some(fi) = self.files.as_mut() {
                            fi.inspect(&file, &mut info);
                        }
                        if !self.types.fileinfo {
                            continue;
                        }
                        let t = tuple(file.direction);
                        e.begin(ts, Some(f.id), pcap_cnt, "fileinfo", Some(&t), Some(src));
                        if let Some(p) = f.app.parent {
                            let _ = write!(e.line, ",\"parent_id\":{p}");
                        }
                        if let Some((k, v)) = &section {
                            e.value(k, v);
                        }
                        let _ = write!(e.line, ",\"app_proto\":\"{app_name}\"");
                        e.value("fileinfo", &info);
                        if e.finish().is_err() {
                            self.stats.eve_errors += 1;
                        }
                    }
                    AppEvent::Anomaly { proto, event } => {
                        self.stats.app_anomalies += 1;
                        if let Some(i) = crate::stats::app_index(proto.as_str()) {
                            self.stats.app_errors[i] += 1;
                        }
                        if !self.types.anomaly {
                            continue;
                        }
                        e.begin(ts, Some(f.id), pcap_cnt, "anomaly", Some(&fwd), Some(src));
                        let _ = write!(
                            e.line,
                            ",\"anomaly\":{{\"app_proto\":\"{}\",\"type\":\"applayer\",\"event\":\"{event}\",\"layer\":\"proto_parser\"}}",
                            proto.as_str()
                        );
                        if e.finish().is_err() {
                            self.stats.eve_errors += 1;
                        }
                    }
                    AppEvent::Expect(spec) => self.expect.add(&f.key, f.id, spec, ts),
                    AppEvent::Request(tx) => {
                        if let Some(dt) = self.detect.as_mut() {
                            let info = khien_detect::FlowInfo::transaction(app_name);
                            dt.request(&fwd, f.id, info, &tx, ts);
                        }
                    }
                    _ => {}
                }
            }
        }
        out.clear();
        self.app_out = out;
        if alerted {
            if let Some(f) = self.flows.get_mut(idx) {
                f.alerted = true;
            }
        }
    }

    /// Writes one EVE `stats` record with the given counters section (JSON object text).
    pub fn write_stats(&mut self, ts: i64, body: &str) {
        if !self.types.stats {
            return;
        }
        let e = &mut self.eve;
        e.begin(ts, None, None, "stats", None, None);
        let _ = write!(e.line, ",\"stats\":{body}");
        if e.finish().is_err() {
            self.stats.eve_errors += 1;
        }
    }

    pub fn eve_records(&self) -> u64 {
        self.eve.records
    }
}
