//! Packet sources: pcap/pcapng files and live interfaces, through libpcap.

use std::io::Write;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::decode::LinkType;
use crate::eve::EveWriter;
use crate::sensor::{RunSummary, Sensor};
use crate::stats::{Counters, StatsHub};
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
    /// Stop once this turns true (set by the binary on SIGINT/SIGTERM): the run then ends
    /// like a `duration` run, flows flushed and EVE complete.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// Captures from a live interface until the duration or packet count is reached, or `stop`.
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
    let mut next_poll = started;
    let kernel = |cap: &mut pcap::Capture<pcap::Active>, sensor: &mut Sensor| {
        if let Ok(s) = cap.stats() {
            sensor.capture = [
                u64::from(s.received),
                u64::from(s.dropped),
                u64::from(s.if_dropped),
            ];
        }
    };
    loop {
        if cfg.duration.is_some_and(|d| started.elapsed() >= d)
            || cfg.max_packets.is_some_and(|m| sum.packets >= m)
            || cfg
                .stop
                .as_ref()
                .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
        {
            break;
        }
        let now = Instant::now();
        if now >= next_poll {
            // Kernel counters and published stats about every 200 ms, busy or idle.
            next_poll = now + Duration::from_millis(200);
            kernel(&mut cap, sensor);
            sensor.idle();
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
    kernel(&mut cap, sensor);
    sum.kernel_drops = sensor.capture[1] + sensor.capture[2];
    sensor.finish();
    sum.elapsed = started.elapsed();
    sum.flows = sensor.engine.flows.stats.created;
    sum.eve_records = sensor.engine.eve_records();
    Ok(sum)
}

/// An EVE sink shared by worker threads: each worker buffers records locally and appends
/// whole chunks under the lock, so lines never interleave.
pub struct SharedEve {
    inner: Arc<Mutex<Box<dyn Write + Send>>>,
    buf: Vec<u8>,
}

impl SharedEve {
    const CHUNK: usize = 256 * 1024;

    pub fn new(inner: Arc<Mutex<Box<dyn Write + Send>>>) -> Self {
        SharedEve {
            inner,
            buf: Vec::with_capacity(Self::CHUNK),
        }
    }

    fn drain(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut w = self
            .inner
            .lock()
            .map_err(|_| std::io::Error::other("EVE writer lock poisoned"))?;
        w.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
}

impl Write for SharedEve {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= Self::CHUNK {
            self.drain()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.drain()?;
        let mut w = self
            .inner
            .lock()
            .map_err(|_| std::io::Error::other("EVE writer lock poisoned"))?;
        w.flush()
    }
}

/// Packets for one worker, stored back to back in one reused buffer.
struct Batch {
    link: LinkType,
    data: Vec<u8>,
    /// (timestamp µs, packet number, start, length)
    index: Vec<(i64, u64, usize, usize)>,
}

enum Msg {
    Batch(Batch),
    /// The capture's clock, so idle workers time out their flows.
    Tick(i64),
}

const BATCH_PKTS: usize = 256;

/// Reads pcap/pcapng files and processes them on `workers` threads, each owning the flows
/// whose IP address pair hashes to it ([`crate::decode::shard_hash`]). Batches are
/// recycled, so steady state allocates nothing per packet.
pub fn run_files_parallel(
    cfg: &crate::SensorConfig,
    files: &[&Path],
    workers: usize,
    out: Box<dyn Write + Send>,
    hub: &Arc<StatsHub>,
) -> Result<RunSummary, SensorError> {
    let workers = workers.max(1);
    let shared = Arc::new(Mutex::new(out));
    // The merged stats records are written here, not by the workers.
    let mut stats_eve = EveWriter::new(Box::new(SharedEve::new(Arc::clone(&shared))));
    let stats_interval = (cfg.stats.interval > 0 && cfg.eve_enabled("stats"))
        .then(|| Duration::from_secs(cfg.stats.interval));
    let mut next_stats = stats_interval.map(|i| Instant::now() + i);
    let mut last_ts = 0i64;
    let (pool_tx, pool_rx) = mpsc::channel::<Batch>();
    let mut txs = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (tx, rx) = mpsc::sync_channel::<Msg>(8);
        txs.push(tx);
        let pool_tx = pool_tx.clone();
        let cfg = cfg.clone();
        let eve = SharedEve::new(Arc::clone(&shared));
        let slot = hub.register();
        handles.push(std::thread::spawn(move || {
            let mut sensor =
                Sensor::new(&cfg, EveWriter::new(Box::new(eve))).with_stats(slot, false);
            for msg in rx {
                match msg {
                    Msg::Batch(mut b) => {
                        for &(ts, cnt, start, len) in &b.index {
                            if let Some(p) = b.data.get(start..start + len) {
                                sensor.packet_numbered(b.link, p, ts, cnt);
                            }
                        }
                        b.data.clear();
                        b.index.clear();
                        let _ = pool_tx.send(b);
                    }
                    Msg::Tick(ts) => sensor.tick(ts),
                }
            }
            sensor.finish();
            (
                sensor.engine.flows.stats.created,
                sensor.engine.eve_records(),
            )
        }));
    }
    drop(pool_tx);
    let mut sum = RunSummary::default();
    let started = Instant::now();
    let new_batch = |pool: &mpsc::Receiver<Batch>, link| match pool.try_recv() {
        Ok(mut b) => {
            b.link = link;
            b
        }
        Err(_) => Batch {
            link,
            data: Vec::with_capacity(BATCH_PKTS * 1600),
            index: Vec::with_capacity(BATCH_PKTS),
        },
    };
    let send_err = || SensorError::Io {
        path: "worker".into(),
        source: std::io::Error::other("a worker thread stopped"),
    };
    let mut result = Ok(());
    'files: for path in files {
        let shown = path.display().to_string();
        let mut cap = match pcap::Capture::from_file(path) {
            Ok(c) => c,
            Err(source) => {
                result = Err(SensorError::Pcap {
                    path: shown,
                    source,
                });
                break;
            }
        };
        let dlt = cap.get_datalink().0;
        let Some(link) = LinkType::from_dlt(dlt) else {
            result = Err(SensorError::LinkType { path: shown, dlt });
            break;
        };
        let mut batches: Vec<Batch> = (0..workers).map(|_| new_batch(&pool_rx, link)).collect();
        let mut next_tick = i64::MIN;
        loop {
            match cap.next_packet() {
                Ok(p) => {
                    sum.packets += 1;
                    sum.bytes += p.data.len() as u64;
                    let ts = ts_micros(p.header);
                    last_ts = last_ts.max(ts);
                    if sum.packets.is_multiple_of(4096) {
                        if let (Some(i), Some(due)) = (stats_interval, next_stats) {
                            let now = Instant::now();
                            if now >= due {
                                next_stats = Some(now + i);
                                write_stats_record(&mut stats_eve, last_ts, &hub.snapshot());
                            }
                        }
                    }
                    let w = (crate::decode::shard_hash(link, p.data) % workers as u64) as usize;
                    let b = &mut batches[w];
                    b.index.push((ts, sum.packets, b.data.len(), p.data.len()));
                    b.data.extend_from_slice(p.data);
                    if b.index.len() >= BATCH_PKTS {
                        let full = std::mem::replace(b, new_batch(&pool_rx, link));
                        if txs[w].send(Msg::Batch(full)).is_err() {
                            result = Err(send_err());
                            break 'files;
                        }
                    }
                    if ts >= next_tick {
                        next_tick = ts + 1_000_000;
                        for (i, tx) in txs.iter().enumerate() {
                            let b = std::mem::replace(&mut batches[i], new_batch(&pool_rx, link));
                            if tx.send(Msg::Batch(b)).is_err() || tx.send(Msg::Tick(ts)).is_err() {
                                result = Err(send_err());
                                break 'files;
                            }
                        }
                    }
                }
                Err(pcap::Error::NoMorePackets) => break,
                Err(source) => {
                    result = Err(SensorError::Pcap {
                        path: shown,
                        source,
                    });
                    break 'files;
                }
            }
        }
        for (i, b) in batches.into_iter().enumerate() {
            if !b.index.is_empty() && txs[i].send(Msg::Batch(b)).is_err() {
                result = Err(send_err());
                break 'files;
            }
        }
    }
    drop(txs);
    for h in handles {
        match h.join() {
            Ok((flows, records)) => {
                sum.flows += flows;
                sum.eve_records += records;
            }
            Err(_) => result = Err(send_err()),
        }
    }
    result?;
    // Every worker published its final counters before it ended.
    if cfg.eve_enabled("stats") {
        write_stats_record(&mut stats_eve, last_ts, &hub.snapshot());
    }
    sum.eve_records += stats_eve.records;
    stats_eve.flush().map_err(|source| SensorError::Io {
        path: "eve".into(),
        source,
    })?;
    sum.elapsed = started.elapsed();
    Ok(sum)
}

/// Writes one EVE `stats` record with the counters `c`.
fn write_stats_record(eve: &mut EveWriter, ts: i64, c: &Counters) {
    eve.begin(ts, None, None, "stats", None, None);
    let _ = write!(eve.line, ",\"stats\":{}", c.eve_json());
    // A failed write shows up when the file is flushed at the end.
    let _ = eve.finish();
}
