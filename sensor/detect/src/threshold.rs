//! threshold / detection_filter / suppress, per worker.

use std::collections::HashMap;
use std::net::IpAddr;

use khien_rules::config::ThresholdEntry;
use khien_rules::{Threshold, ThresholdType, Track};

use crate::compile::Sig;
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

/// One suppress entry: `None` suppresses every alert, else (track, network, prefix).
type SuppressBy = Option<(String, IpAddr, u8)>;

fn parse_net(s: &str) -> Option<(IpAddr, u8)> {
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, l.parse().ok()?),
        None => {
            let a: IpAddr = s.parse().ok()?;
            return Some((a, if a.is_ipv4() { 32 } else { 128 }));
        }
    };
    Some((a.parse().ok()?, l))
}

fn in_net(a: IpAddr, n: IpAddr, len: u8) -> bool {
    match (a, n) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let len = u32::from(len.min(32));
            let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & m == u32::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let len = u32::from(len.min(128));
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    }
}

impl Suppressions {
    pub(crate) fn new(entries: &[ThresholdEntry]) -> Self {
        let mut s = Suppressions::default();
        for e in entries {
            match e {
                ThresholdEntry::Suppress {
                    gid,
                    sid,
                    track,
                    ip,
                } => {
                    let v = match (track, ip.as_deref().and_then(parse_net)) {
                        (Some(t), Some((a, l))) => Some((t.clone(), a, l)),
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
            Some((t, a, l)) => match t.as_str() {
                "by_src" => in_net(p.src, *a, *l),
                "by_dst" => in_net(p.dst, *a, *l),
                _ => in_net(p.src, *a, *l) || in_net(p.dst, *a, *l),
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
