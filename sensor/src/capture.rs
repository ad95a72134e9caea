//! Packet sources: pcap/pcapng files and live interfaces, through libpcap.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::decode::LinkType;
use crate::sensor::{RunSummary, Sensor};
use crate::SensorError;

fn ts_micros(h: &pcap::PacketHeader) -> i64 {
    h.ts.tv_sec * 1_000_000 + h.ts.tv_usec
}

/// Reads pcap or pcapng files in order through one sensor, then flushes it.
pub fn run_files(sensor: &mut Sensor, files: &[&Path]) -> Result<RunSummary, SensorError> {
    let mut sum = RunSummary::default();
    let started = Instant::now();
    for path in files {
        let shown = path.display().to_string();
        let mut cap = pcap::Capture::from_file(path).map_err(|source| SensorError::Pcap {
            path: shown.clone(),
            source,
        })?;
        let dlt = cap.get_datalink().0;
        let link = LinkType::from_dlt(dlt).ok_or(SensorError::LinkType {
            path: shown.clone(),
            dlt,
        })?;
        loop {
            match cap.next_packet() {
                Ok(p) => {
                    sum.packets += 1;
                    sum.bytes += p.data.len() as u64;
                    sensor.packet(link, p.data, ts_micros(p.header));
                }
                Err(pcap::Error::NoMorePackets) => break,
                Err(source) => {
                    return Err(SensorError::Pcap {
                        path: shown,
                        source,
                    })
                }
            }
        }
    }
    sensor.finish();
    sum.elapsed = started.elapsed();
    sum.flows = sensor.engine.flows.stats.created;
    sum.eve_records = sensor.engine.eve_records();
    Ok(sum)
}

/// Live capture settings.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    pub iface: String,
    pub bpf: Option<String>,
    pub snaplen: i32,
    pub promisc: bool,
    /// Stop after this long (None: until `max_packets` or forever).
    pub duration: Option<Duration>,
    pub max_packets: Option<u64>,
}

/// Captures from a live interface until the duration or packet count is reached.
pub fn run_live(sensor: &mut Sensor, cfg: &LiveConfig) -> Result<RunSummary, SensorError> {
    let shown = cfg.iface.clone();
    let perr = |source| SensorError::Pcap {
        path: shown.clone(),
        source,
    };
    let mut cap = pcap::Capture::from_device(cfg.iface.as_str())
        .map_err(perr)?
        .promisc(cfg.promisc)
        .snaplen(cfg.snaplen)
        .immediate_mode(true)
        .open()
        .map_err(perr)?
        .setnonblock()
        .map_err(perr)?;
    if let Some(f) = &cfg.bpf {
        cap.filter(f, true).map_err(perr)?;
    }
    let dlt = cap.get_datalink().0;
    let link = LinkType::from_dlt(dlt).ok_or(SensorError::LinkType {
        path: shown.clone(),
        dlt,
    })?;
    let started = Instant::now();
    let mut sum = RunSummary::default();
    loop {
        if cfg.duration.is_some_and(|d| started.elapsed() >= d)
            || cfg.max_packets.is_some_and(|m| sum.packets >= m)
        {
            break;
        }
        match cap.next_packet() {
            Ok(p) => {
                sum.packets += 1;
                sum.bytes += p.data.len() as u64;
                sensor.packet(link, p.data, ts_micros(p.header));
            }
            // Non-blocking: nothing waiting. Poll again shortly (so duration limits hold).
            Err(pcap::Error::TimeoutExpired) => std::thread::sleep(Duration::from_millis(2)),
            Err(source) => {
                return Err(SensorError::Pcap {
                    path: shown,
                    source,
                })
            }
        }
    }
    if let Ok(s) = cap.stats() {
        sum.kernel_drops = u64::from(s.dropped) + u64::from(s.if_dropped);
    }
    sensor.finish();
    sum.elapsed = started.elapsed();
    sum.flows = sensor.engine.flows.stats.created;
    sum.eve_records = sensor.engine.eve_records();
    Ok(sum)
}
