//! A sensor: decoder + engine + stats for one thread of packets.

use std::time::{Duration, Instant};

use crate::config::SensorConfig;
use crate::decode::{ChecksumMode, Decoder, LinkType};
use crate::defrag::DefragConfig;
use crate::engine::Engine;
use crate::eve::EveWriter;

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
        }
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
        self.engine.packet(&d, pkt.len(), ts, self.pcap_cnt);
        if let Some(inner) = self.decoder.decode_inner(pkt, ts) {
            self.engine.packet(&inner, pkt.len(), ts, self.pcap_cnt);
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
        if self.pcap_cnt.is_multiple_of(4096) {
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

    /// The counters as an EVE `stats` section (Suricata's layout where it has one).
    pub fn stats_json(&self) -> String {
        let d = &self.decoder.stats;
        let f = &self.engine.flows.stats;
        let s = &self.engine.stream_stats;
        let g = self.decoder.defrag_stats();
        let e = &self.engine.stats;
        let mut events = serde_json::Map::new();
        for ev in crate::event::DecodeEvent::ALL {
            let n = d.events.get(*ev as usize).copied().unwrap_or(0);
            if n > 0 {
                events.insert(
                    ev.name().trim_start_matches("decoder.").to_string(),
                    n.into(),
                );
            }
        }
        let uptime = (self.engine.now - self.start_ts).max(0) / 1_000_000;
        serde_json::json!({
            "uptime": uptime,
            "decoder": {
                "pkts": d.pkts, "bytes": d.bytes, "invalid": d.invalid, "ipv4": d.ipv4,
                "ipv6": d.ipv6, "ethernet": d.pkts, "tcp": d.tcp, "udp": d.udp,
                "icmpv4": d.icmpv4, "icmpv6": d.icmpv6, "vlan": d.vlan,
                "invalid_checksum": d.invalid_checksum, "event": events,
            },
            "flow": {
                "memcap": f.memcap_hits, "tcp": f.tcp, "udp": f.udp, "icmpv4_6": f.icmp,
                "other": f.other, "total": f.created, "active": f.active,
                "tcp_reuse": f.tcp_reuse, "emerg_mode_entered": f.emergency_entered,
                "mgr": { "flows_timeout": f.timeouts, "flows_evicted_forced": f.forced },
                "memuse": f.memuse,
            },
            "tcp": {
                "sessions": s.sessions, "midstream_pickups": s.midstream_pickups,
                "ssn_memcap_drop": 0, "segment_memcap_drop": s.memcap_drops,
                "reassembly_gap": s.gaps, "overlap": s.overlaps, "pkt_retransmission": s.retransmissions,
                "out_of_order": s.out_of_order, "depth_reached": s.depth_reached,
                "reassembly_memuse": s.memuse,
            },
            "defrag": {
                "ipv4_ipv6_fragments": g.fragments, "reassembled": g.reassembled,
                "timeouts": g.timeouts, "overlaps": g.overlaps, "too_large": g.too_large,
                "memcap_drops": g.memcap_drops, "tracker_drops": g.tracker_drops, "memuse": g.memuse,
            },
            "app_layer": {
                "tx": e.app_tx, "files": e.app_files, "anomalies": e.app_anomalies,
            },
            "anomalies": e.anomalies,
        })
        .to_string()
    }

    fn write_stats(&mut self, ts: i64) {
        let body = self.stats_json();
        self.engine.write_stats(ts, &body);
    }
}
