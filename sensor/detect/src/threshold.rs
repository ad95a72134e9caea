//! threshold / detection_filter / suppress, per worker.

use std::collections::HashMap;
use std::net::IpAddr;

use khien_rules::config::ThresholdEntry;
use khien_rules::{FlowbitsCmd, Threshold, ThresholdType, Track, Vars};

use crate::compile::{AddrM, HostTrack, Sig};

/// Host bits kept before expired ones are swept.
const HOSTS_MAX: usize = 65_536;
use crate::{Action, Engine, PacketInfo};

/// A `rate_filter` of threshold.config: past `count` matches in `seconds`, the rule's
/// action becomes `new_action` for `timeout` seconds.
#[derive(Clone, Debug)]
pub(crate) struct RateFilter {
    track: Track,
    count: u32,
    seconds: u32,
    new_action: Action,
    timeout: u32,
}

/// Suricata's `new_action` values; in IDS mode `drop`/`sdrop`/`reject` only change the
/// reported action, `log` is an alert.
fn new_action(s: &str) -> Option<Action> {
    Some(match s {
        "alert" | "log" => Action::Alert,
        "drop" | "sdrop" => Action::Drop,
        "reject" => Action::Reject,
        "pass" => Action::Pass,
        _ => return None,
    })
}

fn track(s: &str) -> Option<Track> {
    Some(match s {
        "by_src" => Track::BySrc,
        "by_dst" => Track::ByDst,
        "by_rule" => Track::ByRule,
        "by_both" => Track::ByBoth,
        _ => return None,
    })
}

/// threshold.config: suppressions and threshold overrides by (gid, sid).
#[derive(Debug, Default)]
pub(crate) struct Suppressions {
    /// (gid, sid) → suppress entries.
    suppress: HashMap<(u32, u32), Vec<SuppressBy>>,
    overrides: HashMap<(u32, u32), Threshold>,
    rate: HashMap<(u32, u32), RateFilter>,
}

/// One suppress entry: `None` suppresses every alert, else (track, addresses).
type SuppressBy = Option<(String, AddrM)>;

/// A suppress entry's `ip`: an address, network, list or `$VARIABLE` as in a rule header.
fn parse_addrs(s: &str, vars: &Vars) -> Result<AddrM, String> {
    let r = khien_rules::parse_rule(&format!("alert ip {s} any -> any any (sid:1;)"))
        .map_err(|d| d.message)?;
    vars.resolve_address(&r.src)
        .map(|a| crate::compile::addr(&a))
        .map_err(|(_, m)| m)
}

impl Suppressions {
    pub(crate) fn new(entries: &[ThresholdEntry], vars: &Vars) -> Self {
        let mut s = Suppressions::default();
        for e in entries {
            match e {
                ThresholdEntry::Suppress {
                    gid,
                    sid,
                    track,
                    ip,
                } => {
                    let v = match (track, ip.as_deref()) {
                        (Some(t), Some(ip)) => match parse_addrs(ip, vars) {
                            Ok(m) => Some((t.clone(), m)),
                            Err(m) => {
                                tracing::warn!(
                                    gid,
                                    sid,
                                    ip,
                                    "suppress with an invalid ip not applied: {m}"
                                );
                                continue;
                            }
                        },
                        _ => None,
                    };
                    s.suppress.entry((*gid, *sid)).or_default().push(v);
                }
                ThresholdEntry::Threshold {
                    gid,
                    sid,
                    kind,
                    track,
                    count,
                    seconds,
                } => {
                    s.overrides.insert(
                        (*gid, *sid),
                        Threshold {
                            kind: *kind,
                            track: *track,
                            count: *count,
                            seconds: *seconds,
                        },
                    );
                }
                ThresholdEntry::RateFilter {
                    gid,
                    sid,
                    track: t,
                    count,
                    seconds,
                    new_action: a,
                    timeout,
                } => match (track(t), new_action(a)) {
                    (Some(track), Some(new_action)) => {
                        s.rate.insert(
                            (*gid, *sid),
                            RateFilter {
                                track,
                                count: *count,
                                seconds: *seconds,
                                new_action,
                                timeout: *timeout,
                            },
                        );
                    }
                    _ => tracing::warn!(
                        gid,
                        sid,
                        track = t.as_str(),
                        new_action = a.as_str(),
                        "rate_filter with an unknown track or new_action not applied"
                    ),
                },
            }
        }
        s
    }

    fn suppressed(&self, gid: u32, sid: u32, p: &PacketInfo<'_>) -> bool {
        let Some(list) = self
            .suppress
            .get(&(gid, sid))
            .or_else(|| self.suppress.get(&(gid, 0)))
        else {
            return false;
        };
        list.iter().any(|e| match e {
            None => true,
            Some((t, m)) => match t.as_str() {
                "by_src" => m.matches(p.src),
                "by_dst" => m.matches(p.dst),
                _ => m.matches(p.src) || m.matches(p.dst),
            },
        })
    }
}

/// What follows a signature match once thresholds are applied.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Verdict {
    pub action: Action,
    /// `action` is a rate_filter's `new_action`.
    pub rate_filtered: bool,
    /// A threshold.config `suppress` matched: no alert, the action still applies.
    pub suppressed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    One(IpAddr),
    Pair(IpAddr, IpAddr),
    Rule,
    Flow(IpAddr, IpAddr, u16, u16, u8),
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    start: i64,
    count: u32,
    /// rate_filter: when the new action took effect.
    since: Option<i64>,
}

/// Mutable detection state of one worker: threshold and rate_filter counters, and the
/// prefilter's reused buffers.
#[derive(Debug, Default)]
pub struct DetectState {
    entries: HashMap<(u32, u8, Key), Entry>,
    pub(crate) cands: Vec<u32>,
    pub(crate) pf: crate::inspect::PrefilterState,
    /// `StreamMode::Both` signatures that matched the last TCP packet inspected, whose
    /// stream chunk (if the packet makes one ready) is then not inspected by them again:
    /// Suricata inspects such a signature's packet only when its stream did not match.
    pub(crate) both_pkt: Vec<u32>,
    /// Values the signature being evaluated captured (pcre into flowvars/pktvars).
    pub(crate) caps: Vec<crate::inspect::Captured>,
    /// hostbits/xbits: (bit, host or address pair) → expiry (µs). Per worker: hosts are
    /// not shared between workers (Suricata's host table is global).
    hosts: HashMap<(u32, HostKey), i64>,
    /// A `pass` signature matched since the last [`DetectState::take_passed`] (the
    /// packet's verdict is pass).
    pub(crate) passed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum HostKey {
    Host(IpAddr),
    Pair(IpAddr, IpAddr),
}

/// Host keys a hostbit refers to on `p`.
fn host_keys(t: HostTrack, p: &PacketInfo<'_>) -> ([HostKey; 2], usize) {
    match t {
        HostTrack::Src => ([HostKey::Host(p.src); 2], 1),
        HostTrack::Dst => ([HostKey::Host(p.dst); 2], 1),
        HostTrack::Both => ([HostKey::Host(p.src), HostKey::Host(p.dst)], 2),
        HostTrack::Pair => {
            let k = HostKey::Pair(p.src.min(p.dst), p.src.max(p.dst));
            ([k; 2], 1)
        }
    }
}

fn key(track: Track, p: &PacketInfo<'_>) -> Key {
    match track {
        Track::BySrc => Key::One(p.src),
        Track::ByDst => Key::One(p.dst),
        Track::ByRule => Key::Rule,
        Track::ByBoth => {
            let (a, b) = if p.src <= p.dst {
                (p.src, p.dst)
            } else {
                (p.dst, p.src)
            };
            Key::Pair(a, b)
        }
        Track::ByFlow => {
            if (p.src, p.sp) <= (p.dst, p.dp) {
                Key::Flow(p.src, p.dst, p.sp, p.dp, p.proto)
            } else {
                Key::Flow(p.dst, p.src, p.dp, p.sp, p.proto)
            }
        }
    }
}

impl DetectState {
    /// Whether a `pass` signature matched since the last call (Suricata's pass verdict of
    /// the packet being processed); clears it.
    pub fn take_passed(&mut self) -> bool {
        std::mem::take(&mut self.passed)
    }

    fn host_isset(&self, bit: u32, k: HostKey, now: i64) -> bool {
        self.hosts.get(&(bit, k)).is_some_and(|&exp| now < exp)
    }

    /// Whether the signature's hostbits/xbits checks hold on `p`.
    pub(crate) fn host_conds(&self, sig: &Sig, p: &PacketInfo<'_>) -> bool {
        sig.host_conds.iter().all(|c| {
            let (keys, n) = host_keys(c.track, p);
            let any = keys[..n]
                .iter()
                .any(|&k| self.host_isset(c.bit, k, p.ts_us));
            match c.cmd {
                FlowbitsCmd::IsNotSet => !any,
                _ => any,
            }
        })
    }

    /// Applies the signature's hostbits/xbits changes for a match on `p`.
    pub(crate) fn host_acts(&mut self, sig: &Sig, p: &PacketInfo<'_>) {
        let now = p.ts_us;
        for a in &sig.host_acts {
            let (keys, n) = host_keys(a.track, p);
            let exp = now.saturating_add(i64::from(a.expire) * 1_000_000);
            for &k in &keys[..n] {
                let set = match a.cmd {
                    FlowbitsCmd::Set => true,
                    FlowbitsCmd::Toggle => !self.host_isset(a.bit, k, now),
                    _ => false,
                };
                if set {
                    self.hosts.insert((a.bit, k), exp);
                } else {
                    self.hosts.remove(&(a.bit, k));
                }
            }
        }
        if self.hosts.len() > HOSTS_MAX {
            self.hosts.retain(|_, &mut exp| now < exp);
        }
    }

    /// The verdict on a match of `sig` on `p` after suppression, threshold,
    /// detection_filter and rate_filter; `None` when neither an alert nor the rule's
    /// action follows. A suppressed match keeps its action, unlogged (Suricata).
    pub(crate) fn allow(
        &mut self,
        e: &Engine,
        sig: &Sig,
        idx: u32,
        p: &PacketInfo<'_>,
    ) -> Option<Verdict> {
        let (gid, sid) = (sig.meta.gid, sig.meta.sid);
        if e.suppress.suppressed(gid, sid, p) {
            return Some(Verdict {
                action: sig.meta.action,
                rate_filtered: false,
                suppressed: true,
            });
        }
        if let Some(df) = &sig.detection_filter {
            if !self.count(idx, 0, df, p) {
                return None;
            }
        }
        let t = e
            .suppress
            .overrides
            .get(&(gid, sid))
            .or(sig.threshold.as_ref());
        if let Some(t) = t {
            if !self.count(idx, 1, t, p) {
                return None;
            }
        }
        let rated = e
            .suppress
            .rate
            .get(&(gid, sid))
            .and_then(|r| self.rate(idx, r, p));
        Some(Verdict {
            action: rated.unwrap_or(sig.meta.action),
            rate_filtered: rated.is_some(),
            suppressed: false,
        })
    }

    /// Counts a match against a rate_filter; the new action while it is in effect.
    fn rate(&mut self, idx: u32, r: &RateFilter, p: &PacketInfo<'_>) -> Option<Action> {
        let now = p.ts_us;
        let e = self
            .entries
            .entry((idx, 2, key(r.track, p)))
            .or_insert(Entry {
                start: now,
                count: 0,
                since: None,
            });
        let window = i64::from(r.seconds) * 1_000_000;
        if now - e.start >= window {
            e.start = now;
            e.count = 0;
        }
        e.count = e.count.saturating_add(1);
        if e.count > r.count {
            e.since = Some(now);
        }
        e.since
            .filter(|s| now - s < i64::from(r.timeout) * 1_000_000)
            .map(|_| r.new_action)
    }

    fn count(&mut self, idx: u32, slot: u8, t: &Threshold, p: &PacketInfo<'_>) -> bool {
        let key = key(t.track, p);
        let window = i64::from(t.seconds) * 1_000_000;
        let now = p.ts_us;
        let e = self.entries.entry((idx, slot, key)).or_insert(Entry {
            start: now,
            count: 0,
            since: None,
        });
        if now - e.start > window {
            e.start = now;
            e.count = 0;
        }
        e.count = e.count.saturating_add(1);
        match t.kind {
            ThresholdType::Limit => e.count <= t.count,
            ThresholdType::Threshold => {
                if e.count >= t.count {
                    e.count = 0;
                    e.start = now;
                    true
                } else {
                    false
                }
            }
            ThresholdType::Both => e.count == t.count,
            ThresholdType::DetectionFilter => e.count > t.count,
        }
    }
}
