//! Suricata's side files: classification.config, reference.config and threshold.config.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::ast::{Span, ThresholdType, Track};
use crate::header;

/// A malformed line of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ConfigError {
    pub line: usize,
    pub message: String,
}

fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

/// One classtype: `config classification: shortname,description,priority`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classtype {
    pub description: String,
    pub priority: u32,
}

/// Parses classification.config into shortname → classtype.
pub fn classification(text: &str) -> Result<BTreeMap<String, Classtype>, ConfigError> {
    let mut out = BTreeMap::new();
    for (line, l) in lines(text) {
        let bad = |m: &str| ConfigError {
            line,
            message: m.to_string(),
        };
        let rest = l
            .strip_prefix("config classification:")
            .ok_or_else(|| bad("expected `config classification: name,description,priority`"))?;
        let mut parts = rest.splitn(3, ',').map(str::trim);
        let (Some(name), Some(desc), Some(prio)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(
                "expected `config classification: name,description,priority`",
            ));
        };
        let priority = prio
            .parse()
            .map_err(|_| bad(&format!("priority `{prio}` is not a number")))?;
        if name.is_empty() {
            return Err(bad("empty classtype name"));
        }
        out.insert(
            name.to_string(),
            Classtype {
                description: desc.to_string(),
                priority,
            },
        );
    }
    Ok(out)
}

/// Parses reference.config into system → URL prefix.
pub fn reference(text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for (line, l) in lines(text) {
        let rest = l.strip_prefix("config reference:").ok_or(ConfigError {
            line,
            message: "expected `config reference: system url`".into(),
        })?;
        let mut parts = rest.split_whitespace();
        let (Some(sys), Some(url)) = (parts.next(), parts.next()) else {
            return Err(ConfigError {
                line,
                message: "expected `config reference: system url`".into(),
            });
        };
        out.insert(sys.to_ascii_lowercase(), url.to_string());
    }
    Ok(out)
}

/// One entry of threshold.config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ThresholdEntry {
    /// `threshold`/`event_filter gen_id G, sig_id S, type T, track K, count C, seconds N`
    Threshold {
        gid: u32,
        sid: u32,
        kind: ThresholdType,
        track: Track,
        count: u32,
        seconds: u32,
    },
    /// `suppress gen_id G, sig_id S[, track by_src|by_dst|by_either, ip ADDR]`
    Suppress {
        gid: u32,
        sid: u32,
        track: Option<String>,
        ip: Option<String>,
    },
    /// `rate_filter gen_id G, sig_id S, track K, count C, seconds N, new_action A, timeout T`
    RateFilter {
        gid: u32,
        sid: u32,
        track: String,
        count: u32,
        seconds: u32,
        new_action: String,
        timeout: u32,
    },
}

/// Parses threshold.config; each entry with its line number.
pub fn threshold(text: &str) -> Result<Vec<(usize, ThresholdEntry)>, ConfigError> {
    let mut out = Vec::new();
    for (line, l) in lines(text) {
        let bad = |m: String| ConfigError { line, message: m };
        let (kind, rest) = l.split_once(char::is_whitespace).ok_or_else(|| {
            bad("expected `threshold|event_filter|suppress|rate_filter <fields>`".into())
        })?;
        let mut f: BTreeMap<&str, &str> = BTreeMap::new();
        for p in rest.split(',').map(str::trim) {
            let (k, v) = p
                .split_once(char::is_whitespace)
                .ok_or_else(|| bad(format!("`{p}`: expected `<field> <value>`")))?;
            if f.insert(k, v.trim()).is_some() {
                return Err(bad(format!("field `{k}` given twice")));
            }
        }
        let num = |k: &str| -> Result<u32, ConfigError> {
            let v = f
                .get(k)
                .ok_or_else(|| bad(format!("missing field `{k}`")))?;
            v.parse()
                .map_err(|_| bad(format!("`{k}`: `{v}` is not a number")))
        };
        let track = |v: &str| -> Result<Track, ConfigError> {
            Ok(match v {
                "by_src" => Track::BySrc,
                "by_dst" => Track::ByDst,
                "by_rule" => Track::ByRule,
                "by_both" => Track::ByBoth,
                v => {
                    return Err(bad(format!(
                        "track `{v}` is not by_src, by_dst, by_rule or by_both"
                    )))
                }
            })
        };
        let entry = match kind {
            "threshold" | "event_filter" => {
                let t = f
                    .get("type")
                    .ok_or_else(|| bad("missing field `type`".into()))?;
                ThresholdEntry::Threshold {
                    gid: num("gen_id")?,
                    sid: num("sig_id")?,
                    kind: match *t {
                        "limit" => ThresholdType::Limit,
                        "threshold" => ThresholdType::Threshold,
                        "both" => ThresholdType::Both,
                        t => {
                            return Err(bad(format!("type `{t}` is not limit, threshold or both")))
                        }
                    },
                    track: track(
                        f.get("track")
                            .ok_or_else(|| bad("missing field `track`".into()))?,
                    )?,
                    count: num("count")?,
                    seconds: num("seconds")?,
                }
            }
            "suppress" => {
                let tr = f.get("track").map(|s| s.to_string());
                if let Some(t) = &tr {
                    if !matches!(t.as_str(), "by_src" | "by_dst" | "by_either") {
                        return Err(bad(format!(
                            "track `{t}` is not by_src, by_dst or by_either"
                        )));
                    }
                }
                let ip = f.get("ip").map(|s| s.to_string());
                if let Some(ip) = &ip {
                    if !ip.starts_with('$') && ip.parse::<IpAddr>().is_err() {
                        header::address(ip, Span::default()).map_err(|d| bad(d.message))?;
                    }
                }
                if tr.is_some() != ip.is_some() {
                    return Err(bad(
                        "suppress needs both `track` and `ip`, or neither".into()
                    ));
                }
                ThresholdEntry::Suppress {
                    gid: num("gen_id")?,
                    sid: num("sig_id")?,
                    track: tr,
                    ip,
                }
            }
            "rate_filter" => ThresholdEntry::RateFilter {
                gid: num("gen_id")?,
                sid: num("sig_id")?,
                track: f
                    .get("track")
                    .ok_or_else(|| bad("missing field `track`".into()))?
                    .to_string(),
                count: num("count")?,
                seconds: num("seconds")?,
                new_action: f
                    .get("new_action")
                    .ok_or_else(|| bad("missing field `new_action`".into()))?
                    .to_string(),
                timeout: num("timeout")?,
            },
            k => {
                return Err(bad(format!(
                    "`{k}`: expected threshold, event_filter, suppress or rate_filter"
                )))
            }
        };
        out.push((line, entry));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_and_reference() {
        let c = classification(
            "# c\nconfig classification: trojan-activity,A Network Trojan was detected,1\n",
        )
        .unwrap();
        assert_eq!(c["trojan-activity"].priority, 1);
        assert_eq!(
            classification("config classification: x,y\n")
                .unwrap_err()
                .line,
            1
        );
        let r = reference(
            "config reference: url http://\nconfig reference: cve http://cve.mitre.org/\n",
        )
        .unwrap();
        assert!(r.contains_key("cve"));
        assert!(reference("config reference: url\n").is_err());
    }

    #[test]
    fn thresholds() {
        let t = threshold(
            "threshold gen_id 1, sig_id 10, type limit, track by_src, count 1, seconds 60\n\
             suppress gen_id 1, sig_id 11\n\
             suppress gen_id 1, sig_id 12, track by_src, ip 10.0.0.0/8\n\
             rate_filter gen_id 1, sig_id 13, track by_rule, count 10, seconds 1, new_action drop, timeout 10\n",
        )
        .unwrap();
        assert_eq!(t.len(), 4);
        let e = threshold(
            "\n\nthreshold gen_id 1, sig_id 10, type bogus, track by_src, count 1, seconds 60\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        assert!(threshold("suppress gen_id 1, sig_id x\n").is_err());
        assert!(threshold("suppress gen_id 1, sig_id 1, track by_src\n").is_err());
    }
}
