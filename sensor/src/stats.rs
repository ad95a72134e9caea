//! Sensor counters merged across workers: one EVE `stats` record for the whole sensor and
//! the Prometheus text exposition served by [`crate::metrics`].
//!
//! Every counter is declared once in the table below with its EVE path (Suricata's name
//! where Suricata has one, e.g. `decoder.pkts`, `capture.kernel_drops`, `flow.memcap`) and
//! its Prometheus name and labels. A worker fills a plain `[u64]` snapshot from its own
//! structs ([`crate::Sensor::publish`]) and stores it into its [`Slot`] of atomics (relaxed
//! stores, no lock, a few hundred nanoseconds every 1024 packets); readers (the stats
//! writer and the `/metrics` handler) sum the slots of every worker.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::event::DecodeEvent;

/// Counter or gauge (Prometheus `# TYPE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One counter: where it goes in EVE and in Prometheus.
#[derive(Clone, Copy, Debug)]
pub struct Def {
    /// Dotted path in the EVE `stats` object.
    pub eve: &'static str,
    /// Prometheus metric name (one family may have several label sets).
    pub prom: &'static str,
    /// Prometheus labels, e.g. `memcap="flow"` (empty: none).
    pub labels: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

macro_rules! counters {
    ($($id:ident: $eve:literal, $prom:literal, $labels:literal, $kind:ident, $help:literal;)*) => {
        /// Index of each fixed counter in a snapshot.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(usize)]
        pub enum C { $($id,)* }

        /// The fixed counters, in [`C`] order; decoder events follow them.
        pub const FIXED: &[Def] = &[$(Def {
            eve: $eve, prom: $prom, labels: $labels, kind: Kind::$kind, help: $help,
        },)*];
    };
}

counters! {
    KernelPackets: "capture.kernel_packets", "khien_capture_kernel_packets_total", "", Counter,
        "Packets the kernel delivered to the capture (live capture).";
    KernelDrops: "capture.kernel_drops", "khien_capture_kernel_drops_total", "", Counter,
        "Packets the kernel dropped because the capture buffer was full (live capture).";
    KernelIfDrops: "capture.kernel_ifdrops", "khien_capture_kernel_ifdrops_total", "", Counter,
        "Packets the interface dropped (live capture).";
    Pkts: "decoder.pkts", "khien_decoder_packets_total", "", Counter, "Packets decoded.";
    Bytes: "decoder.bytes", "khien_decoder_bytes_total", "", Counter, "Bytes of the packets decoded.";
    Invalid: "decoder.invalid", "khien_decoder_invalid_total", "", Counter,
        "Packets with a decoder error.";
    Ipv4: "decoder.ipv4", "khien_decoder_protocol_packets_total", "protocol=\"ipv4\"", Counter,
        "Packets by protocol layer.";
    Ipv6: "decoder.ipv6", "khien_decoder_protocol_packets_total", "protocol=\"ipv6\"", Counter, "";
    Ethernet: "decoder.ethernet", "khien_decoder_protocol_packets_total", "protocol=\"ethernet\"", Counter, "";
    Tcp: "decoder.tcp", "khien_decoder_protocol_packets_total", "protocol=\"tcp\"", Counter, "";
    Udp: "decoder.udp", "khien_decoder_protocol_packets_total", "protocol=\"udp\"", Counter, "";
    Icmpv4: "decoder.icmpv4", "khien_decoder_protocol_packets_total", "protocol=\"icmpv4\"", Counter, "";
    Icmpv6: "decoder.icmpv6", "khien_decoder_protocol_packets_total", "protocol=\"icmpv6\"", Counter, "";
    Vlan: "decoder.vlan", "khien_decoder_protocol_packets_total", "protocol=\"vlan\"", Counter, "";
    InvalidChecksum: "decoder.invalid_checksum", "khien_decoder_invalid_checksum_total", "", Counter,
        "Packets with a bad checksum (with -k all).";
    FlowMemcap: "flow.memcap", "khien_memcap_hits_total", "memcap=\"flow\"", Counter,
        "Times a memcap stopped an allocation (flow: a new flow needed eviction).";
    StreamMemcap: "tcp.segment_memcap_drop", "khien_memcap_hits_total", "memcap=\"stream\"", Counter, "";
    DefragMemcap: "defrag.memcap_drops", "khien_memcap_hits_total", "memcap=\"defrag\"", Counter, "";
    DefragTrackerDrops: "defrag.tracker_drops", "khien_memcap_hits_total", "memcap=\"defrag_trackers\"", Counter, "";
    FlowTcp: "flow.tcp", "khien_flows_created_total", "proto=\"tcp\"", Counter, "Flows created.";
    FlowUdp: "flow.udp", "khien_flows_created_total", "proto=\"udp\"", Counter, "";
    FlowIcmp: "flow.icmpv4_6", "khien_flows_created_total", "proto=\"icmp\"", Counter, "";
    FlowOther: "flow.other", "khien_flows_created_total", "proto=\"other\"", Counter, "";
    FlowTotal: "flow.total", "khien_flows_total", "", Counter, "Flows created, all protocols.";
    FlowActive: "flow.active", "khien_flows_active", "", Gauge, "Flows in the flow tables.";
    FlowTcpReuse: "flow.tcp_reuse", "khien_flows_tcp_reuse_total", "", Counter,
        "TCP flows ended by a new session on the same tuple.";
    FlowEmergency: "flow.emerg_mode_entered", "khien_flow_emergency_mode_entered_total", "", Counter,
        "Times the flow table entered emergency mode.";
    FlowTimeouts: "flow.mgr.flows_timeout", "khien_flows_timed_out_total", "", Counter,
        "Flows ended by their idle timeout.";
    FlowEvicted: "flow.mgr.flows_evicted_forced", "khien_flows_evicted_total", "", Counter,
        "Flows evicted early to stay within the flow memcap.";
    FlowMemuse: "flow.memuse", "khien_memuse_bytes", "memcap=\"flow\"", Gauge,
        "Bytes accounted against each memcap.";
    StreamMemuse: "tcp.reassembly_memuse", "khien_memuse_bytes", "memcap=\"stream\"", Gauge, "";
    DefragMemuse: "defrag.memuse", "khien_memuse_bytes", "memcap=\"defrag\"", Gauge, "";
    TcpSessions: "tcp.sessions", "khien_tcp_sessions_total", "", Counter, "TCP sessions tracked.";
    TcpMidstream: "tcp.midstream_pickups", "khien_tcp_midstream_pickups_total", "", Counter,
        "TCP sessions picked up without a handshake.";
    TcpSsnMemcap: "tcp.ssn_memcap_drop", "khien_tcp_ssn_memcap_drop_total", "", Counter,
        "TCP sessions refused by a memcap.";
    TcpGaps: "tcp.reassembly_gap", "khien_tcp_reassembly_gaps_total", "", Counter,
        "Reassembly gaps (bytes never seen).";
    TcpOverlaps: "tcp.overlap", "khien_tcp_overlaps_total", "", Counter, "Overlapping segments.";
    TcpRetrans: "tcp.pkt_retransmission", "khien_tcp_retransmissions_total", "", Counter,
        "Retransmitted segments.";
    TcpOoo: "tcp.out_of_order", "khien_tcp_out_of_order_total", "", Counter, "Out-of-order segments.";
    TcpDepth: "tcp.depth_reached", "khien_tcp_depth_reached_total", "", Counter,
        "Streams that reached the reassembly depth.";
    TcpOverlapDiff: "tcp.overlap_diff_data", "khien_tcp_overlap_diff_data_total", "", Counter,
        "Overlapping segments whose data differed from what was held.";
    TcpOutOfWindow: "tcp.pkt_out_of_window", "khien_tcp_ignored_packets_total", "reason=\"out_of_window\"", Counter,
        "TCP packets the stream engine ignored: data past the receiver's window, or an invalid acknowledgement (any state).";
    TcpInvalidAck: "tcp.pkt_invalid_ack", "khien_tcp_ignored_packets_total", "reason=\"invalid_ack\"", Counter, "";
    DefragFragments: "defrag.ipv4_ipv6_fragments", "khien_defrag_fragments_total", "", Counter,
        "IP fragments seen.";
    DefragReassembled: "defrag.reassembled", "khien_defrag_reassembled_total", "", Counter,
        "Datagrams reassembled from fragments.";
    DefragTimeouts: "defrag.timeouts", "khien_defrag_timeouts_total", "", Counter,
        "Fragment trackers that timed out.";
    DefragOverlaps: "defrag.overlaps", "khien_defrag_overlaps_total", "", Counter, "Overlapping fragments.";
    DefragTooLarge: "defrag.too_large", "khien_defrag_too_large_total", "", Counter,
        "Reassembled datagrams over 65535 bytes.";
    AppFlowHttp: "app_layer.flow.http", "khien_app_layer_flows_total", "app_proto=\"http\"", Counter,
        "Flows by detected application protocol (counted when the flow ends).";
    AppFlowDns: "app_layer.flow.dns", "khien_app_layer_flows_total", "app_proto=\"dns\"", Counter, "";
    AppFlowTls: "app_layer.flow.tls", "khien_app_layer_flows_total", "app_proto=\"tls\"", Counter, "";
    AppFlowSsh: "app_layer.flow.ssh", "khien_app_layer_flows_total", "app_proto=\"ssh\"", Counter, "";
    AppFlowSmtp: "app_layer.flow.smtp", "khien_app_layer_flows_total", "app_proto=\"smtp\"", Counter, "";
    AppFlowFtp: "app_layer.flow.ftp", "khien_app_layer_flows_total", "app_proto=\"ftp\"", Counter, "";
    AppFlowFtpData: "app_layer.flow.ftp-data", "khien_app_layer_flows_total", "app_proto=\"ftp-data\"", Counter, "";
    AppFlowHttp2: "app_layer.flow.http2", "khien_app_layer_flows_total", "app_proto=\"http2\"", Counter, "";
    AppFlowSmb: "app_layer.flow.smb", "khien_app_layer_flows_total", "app_proto=\"smb\"", Counter, "";
    AppFlowNfs: "app_layer.flow.nfs", "khien_app_layer_flows_total", "app_proto=\"nfs\"", Counter, "";
    AppFlowFailed: "app_layer.flow.failed", "khien_app_layer_flows_total", "app_proto=\"failed\"", Counter, "";
    AppTxHttp: "app_layer.tx.http", "khien_app_layer_tx_total", "app_proto=\"http\"", Counter,
        "Application-layer transactions by protocol.";
    AppTxDns: "app_layer.tx.dns", "khien_app_layer_tx_total", "app_proto=\"dns\"", Counter, "";
    AppTxTls: "app_layer.tx.tls", "khien_app_layer_tx_total", "app_proto=\"tls\"", Counter, "";
    AppTxSsh: "app_layer.tx.ssh", "khien_app_layer_tx_total", "app_proto=\"ssh\"", Counter, "";
    AppTxSmtp: "app_layer.tx.smtp", "khien_app_layer_tx_total", "app_proto=\"smtp\"", Counter, "";
    AppTxFtp: "app_layer.tx.ftp", "khien_app_layer_tx_total", "app_proto=\"ftp\"", Counter, "";
    AppTxFtpData: "app_layer.tx.ftp-data", "khien_app_layer_tx_total", "app_proto=\"ftp-data\"", Counter, "";
    AppTxHttp2: "app_layer.tx.http2", "khien_app_layer_tx_total", "app_proto=\"http2\"", Counter, "";
    AppTxSmb: "app_layer.tx.smb", "khien_app_layer_tx_total", "app_proto=\"smb\"", Counter, "";
    AppTxNfs: "app_layer.tx.nfs", "khien_app_layer_tx_total", "app_proto=\"nfs\"", Counter, "";
    AppTxFailed: "app_layer.tx.failed", "khien_app_layer_tx_total", "app_proto=\"failed\"", Counter, "";
    AppErrHttp: "app_layer.error.http.parser", "khien_app_layer_parser_errors_total", "app_proto=\"http\"", Counter,
        "Parser errors and anomalies by application protocol.";
    AppErrDns: "app_layer.error.dns.parser", "khien_app_layer_parser_errors_total", "app_proto=\"dns\"", Counter, "";
    AppErrTls: "app_layer.error.tls.parser", "khien_app_layer_parser_errors_total", "app_proto=\"tls\"", Counter, "";
    AppErrSsh: "app_layer.error.ssh.parser", "khien_app_layer_parser_errors_total", "app_proto=\"ssh\"", Counter, "";
    AppErrSmtp: "app_layer.error.smtp.parser", "khien_app_layer_parser_errors_total", "app_proto=\"smtp\"", Counter, "";
    AppErrFtp: "app_layer.error.ftp.parser", "khien_app_layer_parser_errors_total", "app_proto=\"ftp\"", Counter, "";
    AppErrFtpData: "app_layer.error.ftp-data.parser", "khien_app_layer_parser_errors_total", "app_proto=\"ftp-data\"", Counter, "";
    AppErrHttp2: "app_layer.error.http2.parser", "khien_app_layer_parser_errors_total", "app_proto=\"http2\"", Counter, "";
    AppErrSmb: "app_layer.error.smb.parser", "khien_app_layer_parser_errors_total", "app_proto=\"smb\"", Counter, "";
    AppErrNfs: "app_layer.error.nfs.parser", "khien_app_layer_parser_errors_total", "app_proto=\"nfs\"", Counter, "";
    AppErrFailed: "app_layer.error.failed.parser", "khien_app_layer_parser_errors_total", "app_proto=\"failed\"", Counter, "";
    AppFiles: "app_layer.files", "khien_files_total", "", Counter, "Files extracted (HTTP/1 and HTTP/2 bodies, SMTP attachments, FTP data, SMB, NFS).";
    Anomalies: "anomalies", "khien_decoder_anomalies_total", "", Counter, "Decoder anomaly events.";
    Alerts: "detect.alert", "khien_alerts_total", "", Counter, "Alerts raised.";
    AlertOverflow: "detect.alert_queue_overflow", "khien_alert_queue_overflow_total", "", Counter,
        "Alerts dropped by packet-alert-max.";
    YaraScanned: "yara.scanned", "khien_yara_scanned_files_total", "", Counter, "Files scanned with YARA.";
    YaraMatched: "yara.matched", "khien_yara_matched_files_total", "", Counter,
        "Files with at least one YARA match.";
    YaraMatches: "yara.matches", "khien_yara_rule_matches_total", "", Counter, "YARA rule matches.";
    YaraErrors: "yara.errors", "khien_yara_scan_errors_total", "", Counter,
        "YARA scans that stopped early (timeout).";
    StoreStored: "file_store.stored", "khien_file_store_files_total", "result=\"stored\"", Counter,
        "Files offered to the file store by result.";
    StoreDups: "file_store.duplicates", "khien_file_store_files_total", "result=\"duplicate\"", Counter, "";
    StoreSkipped: "file_store.skipped", "khien_file_store_files_total", "result=\"skipped\"", Counter, "";
    StoreErrors: "file_store.fs_errors", "khien_file_store_files_total", "result=\"error\"", Counter, "";
    EveRecords: "eve.records", "khien_eve_records_total", "", Counter, "EVE records written.";
    EveErrors: "eve.write_errors", "khien_eve_write_errors_total", "", Counter, "EVE write errors.";
}

/// Application protocols with their own counters, in the order of the `App*` rows above.
pub const APP_PROTOS: [&str; 11] = [
    "http", "dns", "tls", "ssh", "smtp", "ftp", "ftp-data", "http2", "smb", "nfs", "failed",
];

/// The index of an application protocol's counters (None for one without).
pub fn app_index(name: &str) -> Option<usize> {
    APP_PROTOS.iter().position(|p| *p == name)
}

/// Number of values in a snapshot: the fixed counters, then one per decoder event.
pub fn len() -> usize {
    FIXED.len() + DecodeEvent::ALL.len()
}

/// A worker's published counters.
pub struct Slot {
    vals: Box<[AtomicU64]>,
}

impl Slot {
    fn new() -> Self {
        Slot {
            vals: (0..len()).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Publishes a snapshot (relaxed stores: readers see each value whole, maybe one
    /// publish behind its neighbours).
    pub fn publish(&self, vals: &[u64]) {
        for (a, &v) in self.vals.iter().zip(vals) {
            a.store(v, Ordering::Relaxed);
        }
    }
}

/// The slots of every worker of a sensor.
pub struct StatsHub {
    /// Locked only to register a worker and by readers, never on the packet path.
    slots: Mutex<Vec<Arc<Slot>>>,
    started: Instant,
}

impl Default for StatsHub {
    fn default() -> Self {
        StatsHub {
            slots: Mutex::new(Vec::new()),
            started: Instant::now(),
        }
    }
}

impl StatsHub {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new worker's slot.
    pub fn register(&self) -> Arc<Slot> {
        let s = Arc::new(Slot::new());
        if let Ok(mut v) = self.slots.lock() {
            v.push(Arc::clone(&s));
        }
        s
    }

    /// The sum of every worker's last published counters.
    pub fn snapshot(&self) -> Counters {
        let mut out = vec![0u64; len()];
        if let Ok(v) = self.slots.lock() {
            for s in v.iter() {
                for (o, a) in out.iter_mut().zip(s.vals.iter()) {
                    *o = o.saturating_add(a.load(Ordering::Relaxed));
                }
            }
        }
        Counters {
            vals: out,
            uptime: self.started.elapsed().as_secs(),
        }
    }
}

/// A set of counter values (one worker's or the sum over workers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counters {
    pub vals: Vec<u64>,
    /// Seconds since the sensor started.
    pub uptime: u64,
}

impl Counters {
    pub fn get(&self, c: C) -> u64 {
        self.vals.get(c as usize).copied().unwrap_or(0)
    }

    /// The EVE `stats` object (Suricata's layout where it has one). Decoder events appear
    /// under `decoder.event` when non-zero, as Suricata omits most zero event counters.
    pub fn eve_json(&self) -> String {
        let mut root = serde_json::Map::new();
        root.insert("uptime".into(), self.uptime.into());
        for (d, &v) in FIXED.iter().zip(&self.vals) {
            insert_path(&mut root, d.eve, v);
        }
        let mut events = serde_json::Map::new();
        for (ev, &v) in DecodeEvent::ALL
            .iter()
            .zip(self.vals.get(FIXED.len()..).unwrap_or(&[]))
        {
            if v > 0 {
                events.insert(ev.name().trim_start_matches("decoder.").into(), v.into());
            }
        }
        if let Some(serde_json::Value::Object(d)) = root.get_mut("decoder") {
            d.insert("event".into(), events.into());
        }
        serde_json::Value::Object(root).to_string()
    }

    /// Prometheus text exposition format (version 0.0.4).
    pub fn prometheus(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let _ = writeln!(
            out,
            "# HELP khien_uptime_seconds Seconds since the sensor started.\n# TYPE khien_uptime_seconds gauge\nkhien_uptime_seconds {}",
            self.uptime
        );
        let mut last_family = "";
        for (d, &v) in FIXED.iter().zip(&self.vals) {
            if d.prom != last_family {
                last_family = d.prom;
                if !d.help.is_empty() {
                    let _ = writeln!(out, "# HELP {} {}", d.prom, d.help);
                }
                let kind = match d.kind {
                    Kind::Counter => "counter",
                    Kind::Gauge => "gauge",
                };
                let _ = writeln!(out, "# TYPE {} {kind}", d.prom);
            }
            if d.labels.is_empty() {
                let _ = writeln!(out, "{} {v}", d.prom);
            } else {
                let _ = writeln!(out, "{}{{{}}} {v}", d.prom, d.labels);
            }
        }
        out.push_str(
            "# HELP khien_decoder_events_total Decoder events by Suricata's event name.\n# TYPE khien_decoder_events_total counter\n",
        );
        for (ev, &v) in DecodeEvent::ALL
            .iter()
            .zip(self.vals.get(FIXED.len()..).unwrap_or(&[]))
        {
            let _ = writeln!(
                out,
                "khien_decoder_events_total{{event=\"{}\"}} {v}",
                ev.name()
            );
        }
        out
    }
}

/// Sets `root[a][b]…[z] = v` for the dotted `path`.
fn insert_path(root: &mut serde_json::Map<String, serde_json::Value>, path: &str, v: u64) {
    let mut cur = root;
    let mut parts = path.split('.').peekable();
    while let Some(p) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(p.into(), v.into());
            return;
        }
        let next = cur
            .entry(p)
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if !next.is_object() {
            *next = serde_json::Value::Object(Default::default());
        }
        let serde_json::Value::Object(m) = next else {
            return;
        };
        cur = m;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        // Each EVE path once, and each Prometheus sample (name + labels) once.
        let mut eve: Vec<_> = FIXED.iter().map(|d| d.eve).collect();
        eve.sort_unstable();
        eve.dedup();
        assert_eq!(eve.len(), FIXED.len());
        let mut prom: Vec<_> = FIXED.iter().map(|d| (d.prom, d.labels)).collect();
        prom.sort_unstable();
        prom.dedup();
        assert_eq!(prom.len(), FIXED.len());
        // Rows of one family are adjacent (one # TYPE line per family) and share a kind.
        for w in FIXED.windows(2) {
            if w[0].prom == w[1].prom {
                assert_eq!(w[0].kind, w[1].kind, "{}", w[0].prom);
            }
        }
        for (i, d) in FIXED.iter().enumerate() {
            if FIXED[..i].iter().any(|e| e.prom == d.prom) {
                assert_eq!(FIXED[i - 1].prom, d.prom, "{} split", d.prom);
            }
        }
        assert_eq!(FIXED[C::AppFlowHttp as usize].eve, "app_layer.flow.http");
        for (i, p) in APP_PROTOS.iter().enumerate() {
            assert_eq!(
                FIXED[C::AppFlowHttp as usize + i].eve,
                format!("app_layer.flow.{p}")
            );
            assert_eq!(
                FIXED[C::AppTxHttp as usize + i].eve,
                format!("app_layer.tx.{p}")
            );
            assert_eq!(
                FIXED[C::AppErrHttp as usize + i].eve,
                format!("app_layer.error.{p}.parser")
            );
        }
    }

    #[test]
    fn slots_sum_and_render() {
        let hub = StatsHub::new();
        let a = hub.register();
        let b = hub.register();
        let mut v = vec![0u64; len()];
        v[C::Pkts as usize] = 10;
        v[C::FlowActive as usize] = 3;
        v[FIXED.len() + crate::event::DecodeEvent::Ipv4TruncPkt as usize] = 2;
        a.publish(&v);
        v[C::Pkts as usize] = 5;
        b.publish(&v);
        let c = hub.snapshot();
        assert_eq!(c.get(C::Pkts), 15);
        assert_eq!(c.get(C::FlowActive), 6);
        let j: serde_json::Value = serde_json::from_str(&c.eve_json()).unwrap();
        assert_eq!(j["decoder"]["pkts"], 15);
        assert_eq!(j["decoder"]["event"]["ipv4.trunc_pkt"], 4);
        assert_eq!(j["flow"]["mgr"]["flows_timeout"], 0);
        assert_eq!(j["app_layer"]["error"]["http"]["parser"], 0);
        let p = c.prometheus();
        assert!(p.contains("\nkhien_decoder_packets_total 15\n"), "{p}");
        assert!(p.contains("\nkhien_flows_active 6\n"), "{p}");
        assert!(
            p.contains("khien_memcap_hits_total{memcap=\"flow\"} 0\n"),
            "{p}"
        );
        assert!(
            p.contains("khien_decoder_events_total{event=\"decoder.ipv4.trunc_pkt\"} 4\n"),
            "{p}"
        );
        assert_eq!(p.matches("# TYPE khien_memcap_hits_total").count(), 1);
    }
}
