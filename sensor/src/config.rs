//! Sensor configuration: a documented YAML file (`khien.yaml`), every field defaulted, so
//! no file is needed for a pcap run. Validated once at start-up with line-precise errors.
//! `--set key=value` overrides one dotted key.
//!
//! ```yaml
//! checksum: none            # none | all (Suricata's -k)
//! workers: 1                # worker threads owning flow shards
//! flow:
//!   memcap: 128mb           # flow state; emergency eviction past it
//!   timeouts:               # seconds, per protocol: new / established / closed
//!     tcp: { new: 30, established: 300, closed: 10 }
//! stream:
//!   midstream: false        # pick up TCP sessions without a handshake
//!   async-oneside: false    # pick up one-sided sessions starting with a SYN/ACK
//!   inline: false           # IPS-style: app layer gets bytes unacknowledged (else on ACK)
//!   reassembly: { depth: 1mb, memcap: 256mb }
//! defrag: { memcap: 32mb, timeout: 60, max-trackers: 65535 }
//! eve:
//!   filename: eve.json
//!   types: [flow, anomaly, http, dns, tls, ssh, smtp, ftp, fileinfo, stats]
//!   anomaly-stream: false   # anomaly records for TCP stream events too (decoder ones always)
//! stats: { interval: 8 }    # seconds between EVE stats records; 0 disables
//! packet-alert-max: 15      # alerts kept per packet (highest signature order first)
//! ips: false                # IPS verdicts (Suricata --simulate-ips): drop rules drop packets/flows
//! metrics:
//!   listen: 127.0.0.1:9110  # Prometheus /metrics (off unless set; --metrics ADDR)
//! files:
//!   yara-rules: /etc/khien/yara   # directory of .yar files, compiled at start-up
//!   yara-max-bytes: 4mb     # bytes of each file kept and scanned (its first bytes)
//!   yara-timeout: 5         # seconds one scan may take
//!   store-dir: /var/lib/khien/files   # optional: files stored once by sha256
//! http: { request-body-limit: 100kb, response-body-limit: 100kb }   # body kept for inspection
//! vlan: { use-for-tracking: true }   # VLAN ids in the flow key
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {msg}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        msg: String,
    },
    #[error("{path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
    #[error("--set {arg}: {msg}")]
    Set { arg: String, msg: String },
}

/// A byte size: an integer or a string with a unit ("32mb", "1gb", "512kb").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => parse_size(&s).map(ByteSize).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "invalid size {s:?} (e.g. 1048576, 512kb, 32mb, 1gb)"
                ))
            }),
        }
    }
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mul) = if let Some(n) = s.strip_suffix("gb") {
        (n, 1u64 << 30)
    } else if let Some(n) = s.strip_suffix("mb") {
        (n, 1 << 20)
    } else if let Some(n) = s.strip_suffix("kb") {
        (n, 1 << 10)
    } else {
        (s.as_str(), 1)
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mul)
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct SensorConfig {
    /// Checksum validation: "none" or "all".
    pub checksum: String,
    /// Worker threads (flow shards by symmetric hash).
    pub workers: usize,
    pub flow: FlowSection,
    pub stream: StreamSection,
    pub defrag: DefragSection,
    pub eve: EveSection,
    pub stats: StatsSection,
    pub metrics: MetricsSection,
    pub files: FilesSection,
    pub http: HttpSection,
    pub vlan: VlanSection,
    /// Alerts kept per packet (Suricata's `packet-alert-max`, default 15): the rest,
    /// lowest in signature order, are dropped and counted.
    pub packet_alert_max: usize,
    /// IPS mode (Suricata's `--simulate-ips`): drop/reject verdicts drop the packet (and
    /// the flow, for flow-level matches), alerts say `blocked`, `drop` records are written.
    pub ips: bool,
    /// Suricata's `action-order`: signatures of these actions are evaluated first, in this
    /// order (`pass`, `drop`, `reject`, `alert`; empty: pass, drop, reject, alert).
    pub action_order: Vec<String>,
    /// Compiled YARA rules (from `files.yara-rules`), shared read-only by every worker;
    /// not a YAML setting.
    #[serde(skip)]
    pub yara: Option<crate::yara::YaraRules>,
    /// The compiled ruleset (`-S`), shared read-only by every worker; not a YAML setting.
    #[serde(skip)]
    pub detect: Option<std::sync::Arc<khien_detect::Engine>>,
}

impl Default for SensorConfig {
    fn default() -> Self {
        SensorConfig {
            checksum: "none".into(),
            workers: 1,
            flow: FlowSection::default(),
            stream: StreamSection::default(),
            defrag: DefragSection::default(),
            eve: EveSection::default(),
            stats: StatsSection::default(),
            metrics: MetricsSection::default(),
            files: FilesSection::default(),
            http: HttpSection::default(),
            vlan: VlanSection::default(),
            packet_alert_max: crate::detect::PACKET_ALERT_MAX,
            ips: false,
            action_order: Vec::new(),
            yara: None,
            detect: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct FlowSection {
    pub memcap: ByteSize,
    pub timeouts: TimeoutsSection,
}

impl Default for FlowSection {
    fn default() -> Self {
        FlowSection {
            memcap: ByteSize(128 << 20),
            timeouts: TimeoutsSection::default(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsSection {
    pub default: Option<ProtoTimeouts>,
    pub tcp: Option<ProtoTimeouts>,
    pub udp: Option<ProtoTimeouts>,
    pub icmp: Option<ProtoTimeouts>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtoTimeouts {
    pub new: Option<i64>,
    pub established: Option<i64>,
    pub closed: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct StreamSection {
    pub midstream: bool,
    /// Suricata's `stream.async-oneside`: a session whose handshake shows only the
    /// server's side (a SYN/ACK first) is picked up, and its bytes reach the app layer
    /// without the acknowledgements of the side that is never seen.
    pub async_oneside: bool,
    /// Suricata's `stream.inline` (on in IPS mode): the app layer gets in-order bytes as
    /// they arrive instead of once the other side acknowledges them (IDS mode).
    pub inline: bool,
    pub reassembly: ReassemblySection,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ReassemblySection {
    pub depth: ByteSize,
    pub memcap: ByteSize,
}

impl Default for ReassemblySection {
    fn default() -> Self {
        ReassemblySection {
            depth: ByteSize(1 << 20),
            memcap: ByteSize(256 << 20),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct DefragSection {
    pub memcap: ByteSize,
    pub timeout: i64,
    pub max_trackers: usize,
}

impl Default for DefragSection {
    fn default() -> Self {
        DefragSection {
            memcap: ByteSize(32 << 20),
            timeout: 60,
            max_trackers: 65_535,
        }
    }
}

/// EVE event types the sensor can write.
pub const EVE_TYPES: &[&str] = &[
    "flow", "anomaly", "http", "dns", "tls", "ssh", "smtp", "ftp", "fileinfo", "stats",
];

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct EveSection {
    pub filename: String,
    pub types: Vec<String>,
    /// Alert records carry Suricata's `verdict` object (its `alert: {verdict: yes}`).
    pub alert_verdict: bool,
    /// `anomaly` records for TCP stream events too (`"type":"stream"`; Suricata's
    /// anomaly `types: stream: yes`, off by default as there).
    pub anomaly_stream: bool,
}

impl Default for EveSection {
    fn default() -> Self {
        EveSection {
            filename: "eve.json".into(),
            types: EVE_TYPES.iter().map(|s| s.to_string()).collect(),
            alert_verdict: false,
            anomaly_stream: false,
        }
    }
}

/// Suricata's `vlan:` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct VlanSection {
    /// VLAN ids are part of the flow key (`vlan.use-for-tracking`, default on); off, the
    /// two directions of a flow may carry different tags (records show the first
    /// packet's).
    pub use_for_tracking: bool,
}

impl Default for VlanSection {
    fn default() -> Self {
        VlanSection {
            use_for_tracking: true,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct StatsSection {
    /// Seconds of packet time between EVE `stats` records (0: only at the end).
    pub interval: u64,
}

impl Default for StatsSection {
    fn default() -> Self {
        StatsSection { interval: 8 }
    }
}

/// HTTP body bytes kept per transaction for inspection (`http.request_body`,
/// `file.data`): Suricata's libhtp `request-body-limit` / `response-body-limit`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct HttpSection {
    pub request_body_limit: ByteSize,
    pub response_body_limit: ByteSize,
}

impl Default for HttpSection {
    fn default() -> Self {
        let d = khien_applayer::AppConfig::default();
        HttpSection {
            request_body_limit: ByteSize(d.http_request_body_depth as u64),
            response_body_limit: ByteSize(d.http_response_body_depth as u64),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct MetricsSection {
    /// Address of the Prometheus `/metrics` endpoint (e.g. `127.0.0.1:9110`); a bare port
    /// listens on loopback. None: no endpoint.
    pub listen: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct FilesSection {
    /// Directory of `.yar`/`.yara` files scanned against every extracted file.
    pub yara_rules: Option<PathBuf>,
    /// Bytes of each file kept for YARA and the store (the file's first bytes). HTTP
    /// files are tracked up to 100 KiB only, like Suricata's libhtp body limit.
    pub yara_max_bytes: ByteSize,
    /// Seconds one YARA scan may take before it is abandoned (reported in EVE).
    pub yara_timeout: u64,
    /// Store each complete file once by SHA-256 under this directory (`ab/abcdef…`).
    pub store_dir: Option<PathBuf>,
}

impl Default for FilesSection {
    fn default() -> Self {
        FilesSection {
            yara_rules: None,
            yara_max_bytes: ByteSize(4 << 20),
            yara_timeout: 5,
            store_dir: None,
        }
    }
}

impl FilesSection {
    /// File bytes the app layer must keep: none unless something scans or stores them.
    pub fn keep_bytes(&self) -> usize {
        if self.yara_rules.is_some() || self.store_dir.is_some() {
            usize::try_from(self.yara_max_bytes.0).unwrap_or(usize::MAX)
        } else {
            0
        }
    }
}

impl SensorConfig {
    /// Loads `path` (or defaults when None), applies `--set` overrides and validates.
    pub fn load(path: Option<&Path>, sets: &[String]) -> Result<Self, ConfigError> {
        let shown = path.map_or_else(|| PathBuf::from("<defaults>"), Path::to_path_buf);
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.into(),
                source,
            })?,
            None => String::new(),
        };
        let perr = |e: serde_yaml::Error| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            ConfigError::Parse {
                path: shown.clone(),
                line,
                column,
                msg: e.to_string(),
            }
        };
        let cfg: SensorConfig = if sets.is_empty() {
            if text.trim().is_empty() {
                SensorConfig::default()
            } else {
                serde_yaml::from_str(&text).map_err(perr)?
            }
        } else {
            let mut v: serde_yaml::Value = if text.trim().is_empty() {
                serde_yaml::Value::Mapping(Default::default())
            } else {
                serde_yaml::from_str(&text).map_err(perr)?
            };
            for s in sets {
                apply_set(&mut v, s)?;
            }
            serde_yaml::from_value(v).map_err(|e| ConfigError::Set {
                arg: sets.join(" "),
                msg: e.to_string(),
            })?
        };
        cfg.validate(&shown)?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |msg: String| {
            Err(ConfigError::Invalid {
                path: path.into(),
                msg,
            })
        };
        if !matches!(self.checksum.as_str(), "none" | "all") {
            return bad(format!("checksum: {:?} is not none or all", self.checksum));
        }
        if self.workers == 0 || self.workers > 256 {
            return bad(format!("workers: {} is not in 1..=256", self.workers));
        }
        for t in &self.eve.types {
            if !EVE_TYPES.contains(&t.as_str()) {
                return bad(format!(
                    "eve.types: unknown type {t:?} (known: {})",
                    EVE_TYPES.join(", ")
                ));
            }
        }
        if self.flow.memcap.0 < 1 << 20 {
            return bad("flow.memcap: must be at least 1mb".into());
        }
        if self.files.yara_max_bytes.0 > 1 << 30 {
            return bad("files.yara-max-bytes: must be at most 1gb".into());
        }
        if self.files.yara_timeout == 0 {
            return bad("files.yara-timeout: must be at least 1 second".into());
        }
        for (i, a) in self.action_order.iter().enumerate() {
            if !matches!(a.as_str(), "pass" | "drop" | "reject" | "alert") {
                return bad(format!(
                    "action-order: `{a}` is not pass, drop, reject or alert"
                ));
            }
            if self.action_order[..i].contains(a) {
                return bad(format!("action-order: `{a}` listed twice"));
            }
        }
        Ok(())
    }

    pub fn eve_enabled(&self, t: &str) -> bool {
        self.eve.types.iter().any(|x| x == t)
    }
}

/// Applies one `key.sub=value` override to a YAML tree.
fn apply_set(root: &mut serde_yaml::Value, arg: &str) -> Result<(), ConfigError> {
    let err = |msg: &str| ConfigError::Set {
        arg: arg.into(),
        msg: msg.into(),
    };
    let (key, val) = arg
        .split_once('=')
        .ok_or_else(|| err("expected key=value"))?;
    let val: serde_yaml::Value = serde_yaml::from_str(val).map_err(|e| err(&e.to_string()))?;
    let mut cur = root;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() {
            return Err(err("empty key component"));
        }
        let map = match cur {
            serde_yaml::Value::Mapping(m) => m,
            other => {
                *other = serde_yaml::Value::Mapping(Default::default());
                match other {
                    serde_yaml::Value::Mapping(m) => m,
                    _ => return Err(err("not a mapping")),
                }
            }
        };
        let k = serde_yaml::Value::String((*p).to_string());
        if i + 1 == parts.len() {
            map.insert(k, val);
            return Ok(());
        }
        cur = map
            .entry(k)
            .or_insert(serde_yaml::Value::Mapping(Default::default()));
    }
    Err(err("empty key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_sets() {
        let c = SensorConfig::load(None, &[]).unwrap();
        assert_eq!(c.flow.memcap, ByteSize(128 << 20));
        assert!(c.vlan.use_for_tracking && !c.stream.async_oneside && !c.eve.anomaly_stream);
        let c = SensorConfig::load(
            None,
            &[
                "vlan.use-for-tracking=false".into(),
                "stream.async-oneside=true".into(),
                "eve.anomaly-stream=true".into(),
            ],
        )
        .unwrap();
        assert!(!c.vlan.use_for_tracking && c.stream.async_oneside && c.eve.anomaly_stream);
        let c = SensorConfig::load(
            None,
            &["stream.midstream=true".into(), "flow.memcap=64mb".into()],
        )
        .unwrap();
        assert!(c.stream.midstream);
        assert_eq!(c.flow.memcap, ByteSize(64 << 20));
        let e = SensorConfig::load(None, &["flow.memcap=lots".into()]).unwrap_err();
        assert!(e.to_string().contains("invalid size"), "{e}");
        assert!(SensorConfig::load(None, &["checksum=some".into()]).is_err());
        let c =
            SensorConfig::load(None, &["action-order=[alert, pass, drop, reject]".into()]).unwrap();
        assert_eq!(c.action_order, ["alert", "pass", "drop", "reject"]);
        let e = SensorConfig::load(None, &["action-order=[alert, allow]".into()]).unwrap_err();
        assert!(e.to_string().contains("allow"), "{e}");
        assert!(SensorConfig::load(None, &["action-order=[pass, pass]".into()]).is_err());
        let c = SensorConfig::load(None, &["http.response-body-limit=1mb".into()]).unwrap();
        assert_eq!(c.http.response_body_limit, ByteSize(1 << 20));
    }

    #[test]
    fn file_errors_name_line_and_column() {
        let dir = std::env::temp_dir().join(format!("khien-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("khien.yaml");
        std::fs::write(&p, "workers: 1\nflow:\n  memcapp: 1mb\n").unwrap();
        let e = SensorConfig::load(Some(&p), &[]).unwrap_err().to_string();
        assert!(e.contains("khien.yaml:3:"), "{e}");
        assert!(e.contains("memcapp"), "{e}");
        std::fs::write(&p, "eve:\n  types: [flow, alert]\n").unwrap();
        let e = SensorConfig::load(Some(&p), &[]).unwrap_err().to_string();
        assert!(e.contains("alert"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
