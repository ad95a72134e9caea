//! A sensor: decoder + engine + stats for one thread of packets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::SensorConfig;
use crate::decode::{ChecksumMode, Decoder, LinkType};
use crate::defrag::DefragConfig;
use crate::engine::Engine;
use crate::eve::EveWriter;
use crate::stats::Slot;

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    pub packets: u64,
    pub bytes: u64,
    /// Packet processing time (capture opened to last flow flushed).
    pub elapsed: Duration,
    pub flows: u64,
    pub eve_records: u64,
    pub kernel_drops: u64,
}

pub struct Sensor {
    pub decoder: Decoder,
    pub engine: Engine,
    pcap_cnt: u64,
    /// Wall-clock interval between EVE stats records (None: only at the end).
    stats_interval: Option<Duration>,
    next_stats: Instant,
    start_ts: i64,
    /// Packet time of the last fragment-tracker expiry.
    last_defrag_expire: i64,
    /// Where the counters are published (None: nowhere but this sensor's EVE).
    slot: Option<Arc<Slot>>,
    /// Whether this sensor writes EVE `stats` records (false for the workers of a
    /// multi-worker run, whose merged record the reader thread writes).
    writes_stats: bool,
    vals: Vec<u64>,
    started: Instant,
    /// Kernel counters of a live capture: packets received, dropped, dropped by the
    /// interface (`pcap_stats`).
    pub capture: [u64; 3],
    /// A defragmented tunnel packet, decoded again from here.
    tunnel_buf: Vec<u8>,
}

impl Sensor {
    pub fn new(cfg: &SensorConfig, eve: EveWriter) -> Self {
        let checksum = if cfg.checksum == "all" {
            ChecksumMode::All
        } else {
            ChecksumMode::None
        };
        let defrag = DefragConfig {
            memcap: cfg.defrag.memcap.0 as usize,
            timeout_secs: cfg.defrag.timeout,
            max_trackers: cfg.defrag.max_trackers,
            ..DefragConfig::default()
        };
        Sensor {
            decoder: Decoder::new(checksum, defrag),
            engine: Engine::new(cfg, eve),
            pcap_cnt: 0,
            stats_interval: (cfg.stats.interval > 0)
                .then(|| Duration::from_secs(cfg.stats.interval)),
            next_stats: Instant::now(),
            start_ts: 0,
            last_defrag_expire: 0,
            slot: None,
            writes_stats: true,
            vals: Vec::new(),
            started: Instant::now(),
            capture: [0; 3],
            tunnel_buf: Vec::new(),
        }
    }

    /// Publishes counters to `slot` (every 1024 packets, on ticks and at the end);
    /// `writes_stats` says whether this sensor also writes the EVE `stats` records.
    pub fn with_stats(mut self, slot: Arc<Slot>, writes_stats: bool) -> Self {
        self.slot = Some(slot);
        self.writes_stats = writes_stats;
        self
    }

    /// Processes one captured packet with timestamp `ts` (µs since the epoch).
    pub fn packet(&mut self, link: LinkType, pkt: &[u8], ts: i64) {
        self.packet_numbered(link, pkt, ts, self.pcap_cnt + 1);
    }

    /// Like [`Sensor::packet`] with the packet's number in the capture (workers see a
    /// share of the packets but report the capture's numbering as `pcap_cnt`).
    pub fn packet_numbered(&mut self, link: LinkType, pkt: &[u8], ts: i64, cnt: u64) {
        self.pcap_cnt = cnt;
        if self.start_ts == 0 {
            self.start_ts = ts;
            self.last_defrag_expire = ts;
            if let Some(i) = self.stats_interval {
                self.next_stats = Instant::now() + i;
            }
        }
        let d = self.decoder.decode(link, pkt, ts);
        let d_vlan = d.vlan;
        self.engine.packet(&d, pkt.len(), ts, self.pcap_cnt);
        if let Some(inner) = self.decoder.decode_inner(pkt, ts) {
            self.engine.packet(&inner, pkt.len(), ts, self.pcap_cnt);
        }
        if self.decoder.has_reassembled()
            && self.decoder.take_reassembled_tunnel(&mut self.tunnel_buf)
        {
            // A fragmented tunnel packet: its inner packet, as if it had come whole.
            let buf = std::mem::take(&mut self.tunnel_buf);
            let mut r = self.decoder.decode_rebuilt(&buf, ts);
            if r.vlan == [0, 0] {
                r.vlan = d_vlan;
            }
            self.engine.packet(&r, buf.len(), ts, self.pcap_cnt);
            self.tunnel_buf = buf;
        }
        if self.decoder.has_reassembled() {
            let r = self.decoder.decode_reassembled();
            let len = r.payload.len();
            self.engine.packet(&r, len, ts, self.pcap_cnt);
        }
        if ts - self.last_defrag_expire > 1_000_000 {
            self.last_defrag_expire = ts;
            self.decoder.expire(ts);
        }
        if self.pcap_cnt.is_multiple_of(1024) {
            self.publish();
        }
        if self.pcap_cnt.is_multiple_of(4096) && self.writes_stats {
            if let Some(i) = self.stats_interval {
                let now = Instant::now();
                if now >= self.next_stats {
                    self.next_stats = now + i;
                    self.write_stats(ts);
                }
            }
        }
    }

    /// Advances packet time without a packet (workers get the capture's clock so idle
    /// shards still time their flows out).
    pub fn tick(&mut self, ts: i64) {
        self.engine.tick(ts);
        self.publish();
    }

    /// Called by a live capture while no packets arrive: publishes the counters and
    /// writes a stats record when one is due.
    pub fn idle(&mut self) {
        self.publish();
        if let (Some(i), true) = (self.stats_interval, self.writes_stats) {
            let now = Instant::now();
            if now >= self.next_stats {
                self.next_stats = now + i;
                let ts = self.engine.now;
                self.write_stats(ts);
                self.engine.flush();
            }
        }
    }

    /// Ends the run: flushes every flow (reason "shutdown") and writes final stats.
    pub fn finish(&mut self) {
        self.engine.shutdown();
        let ts = self.engine.now;
        self.write_stats(ts);
        self.engine.flush();
    }

    pub fn packets(&self) -> u64 {
        self.pcap_cnt
    }

    /// Fills `out` with this sensor's counters in [`crate::stats`] order.
    pub fn counters(&self, out: &mut Vec<u64>) {
        use crate::stats::C;
        out.clear();
        out.resize(crate::stats::len(), 0);
        let d = &self.decoder.stats;
        let f = &self.engine.flows.stats;
        let s = &self.engine.stream_stats;
        let g = self.decoder.defrag_stats();
        let e = &self.engine.stats;
        let fs = self
            .engine
            .files
            .as_ref()
            .map(|x| x.stats.clone())
            .unwrap_or_default();
        let mut set = |c: C, v: u64| out[c as usize] = v;
        set(C::KernelPackets, self.capture[0]);
        set(C::KernelDrops, self.capture[1]);
        set(C::KernelIfDrops, self.capture[2]);
        set(C::Pkts, d.pkts);
        set(C::Bytes, d.bytes);
        set(C::Invalid, d.invalid);
        set(C::Ipv4, d.ipv4);
        set(C::Ipv6, d.ipv6);
        set(C::Ethernet, d.pkts);
        set(C::Tcp, d.tcp);
        set(C::Udp, d.udp);
        set(C::Icmpv4, d.icmpv4);
        set(C::Icmpv6, d.icmpv6);
        set(C::Vlan, d.vlan);
        set(C::InvalidChecksum, d.invalid_checksum);
        set(C::FlowMemcap, f.memcap_hits);
        set(C::StreamMemcap, s.memcap_drops);
        set(C::DefragMemcap, g.memcap_drops);
        set(C::DefragTrackerDrops, g.tracker_drops);
        set(C::FlowTcp, f.tcp);
        set(C::FlowUdp, f.udp);
        set(C::FlowIcmp, f.icmp);
        set(C::FlowOther, f.other);
        set(C::FlowTotal, f.created);
        set(C::FlowActive, f.active);
        set(C::FlowTcpReuse, f.tcp_reuse);
        set(C::FlowEmergency, f.emergency_entered);
        set(C::FlowTimeouts, f.timeouts);
        set(C::FlowEvicted, f.forced);
        set(C::FlowMemuse, f.memuse as u64);
        set(C::StreamMemuse, s.memuse as u64);
        set(C::DefragMemuse, g.memuse as u64);
        set(C::TcpSessions, s.sessions);
        set(C::TcpMidstream, s.midstream_pickups);
        set(C::TcpSsnMemcap, 0);
        set(C::TcpGaps, s.gaps);
        set(C::TcpOverlaps, s.overlaps);
        set(C::TcpRetrans, s.retransmissions);
        set(C::TcpOoo, s.out_of_order);
        set(C::TcpDepth, s.depth_reached);
        set(C::TcpOverlapDiff, s.overlaps_diff);
        set(C::TcpOutOfWindow, s.out_of_window);
        set(C::TcpInvalidAck, s.invalid_ack);
        set(C::DefragFragments, g.fragments);
        set(C::DefragReassembled, g.reassembled);
        set(C::DefragTimeouts, g.timeouts);
        set(C::DefragOverlaps, g.overlaps);
        set(C::DefragTooLarge, g.too_large);
        set(C::AppFiles, e.app_files);
        set(C::Anomalies, e.anomalies);
        set(C::Alerts, e.alerts);
        set(C::AlertOverflow, e.alert_overflow);
        set(C::YaraScanned, fs.scanned);
        set(C::YaraMatched, fs.matched);
        set(C::YaraMatches, fs.rule_matches);
        set(C::YaraErrors, fs.scan_errors);
        set(C::StoreStored, fs.stored);
        set(C::StoreDups, fs.store_dups);
        set(C::StoreSkipped, fs.store_skipped);
        set(C::StoreErrors, fs.store_errors);
        set(C::EveRecords, self.engine.eve_records());
        set(C::EveErrors, e.eve_errors);
        for i in 0..crate::stats::APP_PROTOS.len() {
            out[C::AppFlowHttp as usize + i] = e.app_flows[i];
            out[C::AppTxHttp as usize + i] = e.app_tx_by[i];
            out[C::AppErrHttp as usize + i] = e.app_errors[i];
        }
        let base = crate::stats::FIXED.len();
        for (o, &v) in out.iter_mut().skip(base).zip(&d.events) {
            *o = v;
        }
    }

    /// This sensor's counters.
    pub fn snapshot(&self) -> crate::stats::Counters {
        let mut vals = Vec::new();
        self.counters(&mut vals);
        crate::stats::Counters {
            vals,
            uptime: self.started.elapsed().as_secs(),
        }
    }

    /// Publishes the counters to this sensor's stats slot (for `/metrics` and the merged
    /// stats record of a multi-worker run).
    pub fn publish(&mut self) {
        if let Some(slot) = &self.slot {
            let mut v = std::mem::take(&mut self.vals);
            self.counters(&mut v);
            slot.publish(&v);
            self.vals = v;
        }
    }

    fn write_stats(&mut self, ts: i64) {
        self.publish();
        if self.writes_stats {
            let body = self.snapshot().eve_json();
            self.engine.write_stats(ts, &body);
        }
    }
}
