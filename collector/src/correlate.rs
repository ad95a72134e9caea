//! Correlation: rules in YAML turn alerts, intel alerts and flows into `incidents` rows.
//!
//! File `DIR/correlation.yaml` (or `--correlation FILE`):
//!
//! ```yaml
//! rules:
//!   - id: scan-exploit-callback
//!     type: sequence            # threshold | distinct | sequence
//!     key: dest_ip              # src_ip | dest_ip: what the events must share (the victim)
//!     window: 10m               # 30s, 10m, 2h, 1d or seconds
//!     severity: 1               # 1 (high) – 3 (low); default 2
//!     attack: [T1046, T1190, T1071.001]
//!     steps:                    # sequence: 2–8 steps, in this order
//!       - { sids: [2001219] }   # ET SCAN Potential SSH Scan
//!       - { categories: ["Attempted Administrator Privilege Gain"] }
//!       - { sids: [2404300], key: src_ip }   # the victim calls its C2: key in src_ip
//!   - id: brute-force
//!     type: threshold           # ≥ count events matching `match`, by key, in a window
//!     key: src_ip
//!     window: 5m
//!     count: 20
//!     attack: [T1110]
//!     match: { sids: [2001219, 2002910] }
//!   - id: port-scan
//!     type: distinct            # one key to ≥ count distinct `distinct` values in a window
//!     key: src_ip
//!     distinct: dest_port       # dest_port | dest_ip
//!     window: 1m
//!     count: 100
//!     attack: [T1046]
//!     match: { from: flow }
//! ```
//!
//! A matcher (`match`, each step) has `from: alert` (default; `sids` and/or `categories`,
//! either matching, none = every alert), `from: intel` (`kinds` of indicator, none = all) or
//! `from: flow` (every flow record).
//!
//! **Where it runs.** All three types are evaluated over ClickHouse, by the collector on a
//! timer (`serve --correlate-every`) and by `khien collector correlate`, never in the ingest
//! stream: the store already holds every event exactly once, windows then cover late and
//! re-shipped events, nothing per-event is added to the 2 µs ingest budget, and a restart
//! loses no state (there is none outside ClickHouse). Threshold and distinct count are one
//! `GROUP BY tenant, key, window` SQL query each. A sequence is one SQL query fetching the
//! rows that match any step (time, key, step bits, id), checked in Rust per key.
//!
//! **Windows and deduplication.** Windows are tumbling, aligned to multiples of `window`
//! seconds since the epoch, so (rule, key, window) names an incident in every evaluation:
//! its id is a hash of tenant, rule id, key and window start. A threshold or distinct-count
//! window is the bucket of its events; a sequence belongs to the window of its first step
//! and must complete within `window` seconds of that step (it may end in the next bucket).
//! Each evaluation inserts the ids `incidents` does not hold yet, and again those whose
//! window has gained events since (a threshold crossed at 20 that reaches 50: the same
//! incident, with the new count, links and last time), under an exclusive lock file per
//! data directory. The table is a ReplacingMergeTree on `(tenant, id)` that keeps the latest
//! row of an id, and readers use `FINAL`: re-running the evaluation, restarting the
//! collector or evaluating overlapping ranges never duplicates an incident.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use clickhouse::{Client, Row};
use serde::Deserialize;

use crate::files::{self, FileError};

/// Longest window accepted (7 days).
pub const MAX_WINDOW: u32 = 7 * 86_400;
/// Linked event ids kept per incident (`events` has the full count).
pub const MAX_LINKED: usize = 100;

/// The validated rules of one file.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub rules: Vec<Rule>,
}

/// One correlation rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    pub key: KeyField,
    pub window: u32,
    pub severity: u8,
    pub attack: Vec<String>,
    pub kind: RuleKind,
}

/// The three rule types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    Threshold {
        count: u64,
        matcher: Matcher,
    },
    Distinct {
        count: u64,
        field: DistinctField,
        matcher: Matcher,
    },
    Sequence {
        steps: Vec<Matcher>,
    },
}

impl RuleKind {
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::Threshold { .. } => "threshold",
            RuleKind::Distinct { .. } => "distinct",
            RuleKind::Sequence { .. } => "sequence",
        }
    }
}

/// What events must share to be correlated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyField {
    SrcIp,
    DestIp,
}

impl KeyField {
    pub fn column(self) -> &'static str {
        match self {
            KeyField::SrcIp => "src_ip",
            KeyField::DestIp => "dest_ip",
        }
    }
}

/// What a distinct-count rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistinctField {
    DestPort,
    DestIp,
}

impl DistinctField {
    pub fn column(self) -> &'static str {
        match self {
            DistinctField::DestPort => "dest_port",
            DistinctField::DestIp => "dest_ip",
        }
    }
}

/// Which table a matcher reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    #[default]
    Alert,
    Intel,
    Flow,
}

impl Source {
    pub fn table(self) -> &'static str {
        match self {
            Source::Alert => "alert_events",
            Source::Intel => crate::schema::INTEL_TABLE,
            Source::Flow => "flow_events",
        }
    }
}

/// A kind of event: the rows of one table that satisfy a condition.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    #[serde(default)]
    pub from: Source,
    #[serde(default)]
    pub sids: Vec<u32>,
    #[serde(default)]
    pub categories: Vec<SqlText>,
    #[serde(default)]
    pub kinds: Vec<IntelKind>,
    /// Sequence steps only: the column that holds the rule's key in this step's events
    /// (default: the rule's `key`), e.g. the victim is `dest_ip` of the exploit alert and
    /// `src_ip` of its callback alert.
    #[serde(default)]
    pub key: Option<KeyField>,
}

/// Indicator kinds as stored in `intel_alerts.indicator_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntelKind {
    Ip,
    Domain,
    Url,
    Md5,
    Sha1,
    Sha256,
}

impl IntelKind {
    fn as_str(self) -> &'static str {
        match self {
            IntelKind::Ip => "ip",
            IntelKind::Domain => "domain",
            IntelKind::Url => "url",
            IntelKind::Md5 => "md5",
            IntelKind::Sha1 => "sha1",
            IntelKind::Sha256 => "sha256",
        }
    }
}

/// A string safe to quote in SQL (no control characters; quotes are escaped when used).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlText(pub String);

impl<'de> Deserialize<'de> for SqlText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        files::de_checked(d, "a string", |s| {
            if s.is_empty() || s.len() > 512 || s.chars().any(char::is_control) {
                Err(format!(
                    "`{s}` must be 1–512 characters without control characters"
                ))
            } else {
                Ok(SqlText(s.to_owned()))
            }
        })
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl Matcher {
    /// The SQL condition on the matcher's table (`1` for every row).
    pub fn condition(&self) -> String {
        let mut parts = Vec::new();
        if !self.sids.is_empty() {
            let list: Vec<String> = self.sids.iter().map(u32::to_string).collect();
            parts.push(format!("signature_id IN ({})", list.join(", ")));
        }
        if !self.categories.is_empty() {
            let list: Vec<String> = self.categories.iter().map(|c| quote(&c.0)).collect();
            parts.push(format!("category IN ({})", list.join(", ")));
        }
        if !self.kinds.is_empty() {
            let list: Vec<String> = self.kinds.iter().map(|k| quote(k.as_str())).collect();
            parts.push(format!("indicator_kind IN ({})", list.join(", ")));
        }
        if parts.is_empty() {
            "1".into()
        } else {
            format!("({})", parts.join(" OR "))
        }
    }

    fn validate(&self, in_sequence: bool) -> Result<(), String> {
        if self.key.is_some() && !in_sequence {
            return Err("`key` applies to sequence steps only".into());
        }
        match self.from {
            Source::Alert if !self.kinds.is_empty() => Err("`kinds` needs `from: intel`".into()),
            Source::Intel if !self.sids.is_empty() || !self.categories.is_empty() => {
                Err("`sids`/`categories` need `from: alert`".into())
            }
            Source::Flow
                if !self.sids.is_empty()
                    || !self.categories.is_empty()
                    || !self.kinds.is_empty() =>
            {
                Err("`from: flow` takes no `sids`, `categories` or `kinds`".into())
            }
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    rules: Vec<RuleDoc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TypeDoc {
    Threshold,
    Distinct,
    Sequence,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    id: RuleId,
    #[serde(rename = "type")]
    kind: TypeDoc,
    #[serde(default)]
    #[allow(dead_code, reason = "documentation for operators; accepted, not used")]
    description: Option<String>,
    key: KeyField,
    window: Window,
    #[serde(default)]
    severity: Option<Severity>,
    attack: Vec<Technique>,
    #[serde(default)]
    count: Option<Count>,
    #[serde(default, rename = "match")]
    matcher: Option<Matcher>,
    #[serde(default)]
    distinct: Option<DistinctField>,
    #[serde(default)]
    steps: Option<Vec<Matcher>>,
}

#[derive(Debug)]
struct RuleId(String);

impl<'de> Deserialize<'de> for RuleId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        files::de_checked(d, "a rule id", |s| {
            let ok = !s.is_empty()
                && s.len() <= 128
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
            if ok {
                Ok(RuleId(s.to_owned()))
            } else {
                Err(format!(
                    "rule id `{s}` must be 1–128 characters of letters, digits, `-`, `_`, `.`"
                ))
            }
        })
    }
}

#[derive(Debug)]
struct Window(u32);

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        files::de_checked(d, "a window (30s, 10m, 2h, 1d or seconds)", |s| {
            parse_duration(s).map(Window)
        })
    }
}

/// `30s`, `10m`, `2h`, `1d` or plain seconds; 1 s to 7 days.
pub fn parse_duration(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("window `{s}`: unit must be s, m, h or d")),
    };
    let n: u32 = num
        .parse()
        .map_err(|_| format!("window `{s}` is not a number with a unit"))?;
    match n.checked_mul(mult) {
        Some(v @ 1..=MAX_WINDOW) => Ok(v),
        _ => Err(format!("window `{s}` must be between 1s and 7d")),
    }
}

#[derive(Debug)]
struct Severity(u8);

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        files::de_checked(d, "a severity 1–3", |s| match s.parse::<u8>() {
            Ok(v @ 1..=3) => Ok(Severity(v)),
            _ => Err(format!("severity `{s}` is not 1, 2 or 3")),
        })
    }
}

#[derive(Debug)]
struct Count(u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        files::de_checked(d, "a count ≥ 1", |s| match s.parse::<u64>() {
            Ok(v @ 1..=1_000_000_000) => Ok(Count(v)),
            _ => Err(format!("count `{s}` must be 1 to 1000000000")),
        })
    }
}

#[derive(Debug)]
struct Technique(String);

impl<'de> Deserialize<'de> for Technique {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        files::de_checked(d, "an ATT&CK technique id", |s| {
            if is_technique(s) {
                Ok(Technique(s.to_owned()))
            } else {
                Err(format!(
                    "`{s}` is not an ATT&CK technique id (T1234 or T1234.001)"
                ))
            }
        })
    }
}

/// `T` + 4 digits, optionally `.` + 3 digits (a sub-technique).
pub fn is_technique(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: &[u8]| r.iter().all(u8::is_ascii_digit);
    match b {
        [b'T', rest @ ..] if rest.len() == 4 => digits(rest),
        [b'T', rest @ ..] if rest.len() == 8 => {
            digits(&rest[..4]) && rest[4] == b'.' && digits(&rest[5..])
        }
        _ => false,
    }
}

impl Rules {
    /// Loads and validates a rule file; a missing file is an error (callers decide whether
    /// the file is optional).
    pub fn load(path: &Path) -> Result<Rules, FileError> {
        Rules::parse(path, &files::read(path)?)
    }

    /// Parses rule text; `path` names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Rules, FileError> {
        let doc: FileDoc = serde_yaml::from_str(text).map_err(|e| files::yaml_error(path, &e))?;
        let mut rules = Vec::new();
        let mut seen = HashSet::new();
        for (i, r) in doc.rules.into_iter().enumerate() {
            let id = r.id.0.clone();
            // Cross-field checks happen after deserialization, so serde_yaml cannot place
            // them; the rule's `id:` line (ids are unique) places them instead.
            let at = |message: String| FileError::At {
                path: path.to_owned(),
                line: id_line(text, &id).unwrap_or(1),
                column: 1,
                message: format!("rules[{i}] (`{id}`): {message}"),
            };
            if !seen.insert(id.clone()) {
                return Err(at(format!("duplicate rule id `{id}`")));
            }
            rules.push(validate(r).map_err(at)?);
        }
        Ok(Rules { rules })
    }
}

/// Line (1-based) of `id: <id>` in the text.
fn id_line(text: &str, id: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start().trim_start_matches("- ").trim_start();
            l.strip_prefix("id:")
                .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\'') == id)
                .unwrap_or(false)
        })
        .map(|i| i + 1)
}

fn validate(r: RuleDoc) -> Result<Rule, String> {
    if r.attack.is_empty() {
        return Err("`attack` needs at least one ATT&CK technique id".into());
    }
    let only = |allowed: &[&str]| -> Result<(), String> {
        let present = [
            ("count", r.count.is_some()),
            ("match", r.matcher.is_some()),
            ("distinct", r.distinct.is_some()),
            ("steps", r.steps.is_some()),
        ];
        for (name, is) in present {
            if is && !allowed.contains(&name) {
                return Err(
                    format!("`{name}` does not apply to a {:?} rule", r.kind).to_lowercase()
                );
            }
        }
        Ok(())
    };
    let need = |what: &str| format!("a {:?} rule needs `{what}`", r.kind).to_lowercase();
    let kind = match r.kind {
        TypeDoc::Threshold => {
            only(&["count", "match"])?;
            let matcher = r.matcher.clone().ok_or_else(|| need("match"))?;
            matcher.validate(false).map_err(|e| format!("match: {e}"))?;
            RuleKind::Threshold {
                count: r.count.as_ref().ok_or_else(|| need("count"))?.0,
                matcher,
            }
        }
        TypeDoc::Distinct => {
            only(&["count", "match", "distinct"])?;
            let matcher = r.matcher.clone().ok_or_else(|| need("match"))?;
            matcher.validate(false).map_err(|e| format!("match: {e}"))?;
            RuleKind::Distinct {
                count: r.count.as_ref().ok_or_else(|| need("count"))?.0,
                field: r.distinct.ok_or_else(|| need("distinct"))?,
                matcher,
            }
        }
        TypeDoc::Sequence => {
            only(&["steps"])?;
            let steps = r.steps.clone().ok_or_else(|| need("steps"))?;
            if !(2..=8).contains(&steps.len()) {
                return Err(format!(
                    "`steps`: {} steps; a sequence has 2 to 8",
                    steps.len()
                ));
            }
            for (i, s) in steps.iter().enumerate() {
                s.validate(true).map_err(|e| format!("steps[{i}]: {e}"))?;
            }
            RuleKind::Sequence { steps }
        }
    };
    Ok(Rule {
        id: r.id.0,
        key: r.key,
        window: r.window.0,
        severity: r.severity.map_or(2, |s| s.0),
        attack: r.attack.into_iter().map(|t| t.0).collect(),
        kind,
    })
}

/// A row of `incidents`.
#[derive(Debug, Clone, PartialEq, Eq, Row, serde::Serialize)]
pub struct Incident {
    pub id: u64,
    pub tenant: String,
    pub rule: String,
    pub rule_type: String,
    pub key_field: String,
    pub key: String,
    pub window_start: u32,
    pub window_end: u32,
    pub first_seen: u32,
    pub last_seen: u32,
    pub attack: Vec<String>,
    pub severity: u8,
    pub events: u64,
    pub event_ids: Vec<String>,
    pub created: u32,
}

/// The id of the incident of (tenant, rule, key, window start).
pub fn incident_id(tenant: &str, rule: &str, key: &str, window_start: u32) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for part in [tenant, rule, key] {
        h.update(part.as_bytes());
        h.update(&[0]);
    }
    h.update(&window_start.to_le_bytes());
    h.digest()
}

/// First second of the window of `rule` that holds `t`.
fn align(t: u32, window: u32) -> u32 {
    t - t % window.max(1)
}

/// Threshold and distinct-count rules: one grouped query.
pub fn grouped_sql(rule: &Rule, since: u32) -> Option<String> {
    let w = rule.window;
    let key = rule.key.column();
    let (measure, count, m) = match &rule.kind {
        RuleKind::Threshold { count, matcher } => ("count()".to_owned(), count, matcher),
        RuleKind::Distinct {
            count,
            field,
            matcher,
        } => (format!("uniqExact({})", field.column()), count, matcher),
        RuleKind::Sequence { .. } => return None,
    };
    Some(format!(
        "SELECT tenant, {key} AS k, toUInt32(intDiv(toUInt32(ts), {w}) * {w}) AS w, \
         toUInt64({measure}) AS n, toUInt64(count()) AS events, toUInt32(min(ts)) AS first, \
         toUInt32(max(ts)) AS last, groupArray({MAX_LINKED})(toString(event_id)) AS ids \
         FROM {table} WHERE ts >= toDateTime({since}) AND {key} != '' AND {cond} \
         GROUP BY tenant, k, w HAVING n >= {count}",
        table = m.from.table(),
        cond = m.condition(),
    ))
}

/// Sequence rules: every row matching any step, with a bit per step it matches.
pub fn sequence_sql(rule: &Rule, since: u32) -> Option<String> {
    let RuleKind::Sequence { steps } = &rule.kind else {
        return None;
    };
    // Steps that read the same table with the same key column share one SELECT, with one
    // bit per step in `steps`.
    let mut by_source: BTreeMap<(Source, &str), Vec<(usize, &Matcher)>> = BTreeMap::new();
    for (i, s) in steps.iter().enumerate() {
        let key = s.key.unwrap_or(rule.key).column();
        by_source.entry((s.from, key)).or_default().push((i, s));
    }
    let mut parts = Vec::new();
    for ((src, key), ms) in by_source {
        let mut bits = String::new();
        let mut any = Vec::new();
        for (i, m) in &ms {
            if !bits.is_empty() {
                bits.push_str(" + ");
            }
            let _ = write!(bits, "if({}, {}, 0)", m.condition(), 1u32 << i);
            any.push(m.condition());
        }
        parts.push(format!(
            "SELECT tenant, {key} AS k, toUInt32(ts) AS t, ts_usec AS u, \
             toString(event_id) AS id, toUInt32({bits}) AS steps FROM {table} \
             WHERE ts >= toDateTime({since}) AND {key} != '' AND ({any})",
            table = src.table(),
            any = any.join(" OR "),
        ));
    }
    Some(parts.join(" UNION ALL "))
}

/// The stored state of the incidents among `ids` that exist.
pub fn existing_sql(ids: &[u64]) -> String {
    let list: Vec<String> = ids.iter().map(u64::to_string).collect();
    format!(
        "SELECT id, events, toUInt32(last_seen) AS last_seen, toUInt32(created) AS created \
         FROM incidents FINAL WHERE id IN ({})",
        if list.is_empty() {
            "0".into()
        } else {
            list.join(", ")
        }
    )
}

/// Every incident, for `khien collector incidents` (TSV through the query path).
pub const LIST_SQL: &str = "SELECT id, tenant, rule, rule_type, key_field, key, window_start, \
     window_end, first_seen, last_seen, attack, severity, events, event_ids \
     FROM incidents FINAL ORDER BY window_start, rule, tenant, key";

#[derive(Debug, Row, Deserialize)]
struct GroupRow {
    tenant: String,
    k: String,
    w: u32,
    #[allow(
        dead_code,
        reason = "selected for HAVING; the incident stores `events`"
    )]
    n: u64,
    events: u64,
    first: u32,
    last: u32,
    ids: Vec<String>,
}

/// One row of a sequence query.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct SeqRow {
    pub tenant: String,
    pub k: String,
    pub t: u32,
    pub u: u32,
    pub id: String,
    pub steps: u32,
}

#[derive(Debug, Row, Deserialize)]
struct StoredRow {
    id: u64,
    events: u64,
    last_seen: u32,
    created: u32,
}

/// What one evaluation stored.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Incidents found for the first time.
    pub new: Vec<Incident>,
    /// Stored incidents whose window has gained events since: stored again under the same id
    /// with the new count, links and last time (and the first `created`); the table keeps
    /// the latest row of an id.
    pub updated: Vec<Incident>,
}

/// Finds sequence matches in rows of one rule (any order, any keys): per (tenant, key) and
/// per window of a first step, the earliest first step whose later steps all follow in
/// order within `window` seconds of it. Returns (tenant, key, window start, chain rows).
pub fn find_sequences(
    rows: &mut [SeqRow],
    nsteps: usize,
    window: u32,
) -> Vec<(String, String, u32, Vec<SeqRow>)> {
    rows.sort_by(|a, b| {
        (&a.tenant, &a.k, a.t, a.u, &a.id).cmp(&(&b.tenant, &b.k, b.t, b.u, &b.id))
    });
    let mut out = Vec::new();
    for key_rows in rows.chunk_by(|a, b| a.tenant == b.tenant && a.k == b.k) {
        let mut done_window: Option<u32> = None;
        for (start, first) in key_rows.iter().enumerate() {
            if first.steps & 1 == 0 {
                continue;
            }
            let w = align(first.t, window);
            if done_window == Some(w) {
                continue;
            }
            let deadline = u64::from(first.t) + u64::from(window);
            let mut chain = vec![first.clone()];
            let mut pos = start;
            for step in 1..nsteps {
                let next = key_rows
                    .iter()
                    .enumerate()
                    .skip(pos + 1)
                    .take_while(|(_, r)| u64::from(r.t) <= deadline)
                    .find(|(_, r)| {
                        r.steps & (1 << step) != 0 && chain.iter().all(|c| c.id != r.id)
                    });
                match next {
                    Some((i, r)) => {
                        chain.push(r.clone());
                        pos = i;
                    }
                    None => break,
                }
            }
            if chain.len() == nsteps {
                done_window = Some(w);
                out.push((first.tenant.clone(), first.k.clone(), w, chain));
            }
        }
    }
    out
}

/// Evaluates every rule over events since `now - lookback` (aligned down to each rule's
/// window) and stores the incidents not stored yet and those that gained events.
pub async fn evaluate(
    client: &Client,
    rules: &Rules,
    now: u32,
    lookback: u32,
) -> crate::Result<Outcome> {
    let mut found: Vec<Incident> = Vec::new();
    for rule in &rules.rules {
        let since = align(now.saturating_sub(lookback), rule.window);
        let base = |tenant: String, key: String, w: u32| Incident {
            id: incident_id(&tenant, &rule.id, &key, w),
            tenant,
            rule: rule.id.clone(),
            rule_type: rule.kind.name().into(),
            key_field: rule.key.column().into(),
            key,
            window_start: w,
            window_end: w.saturating_add(rule.window),
            first_seen: 0,
            last_seen: 0,
            attack: rule.attack.clone(),
            severity: rule.severity,
            events: 0,
            event_ids: Vec::new(),
            created: now,
        };
        if let Some(sql) = grouped_sql(rule, since) {
            let groups: Vec<GroupRow> = client.query_raw(&sql).fetch_all().await?;
            for g in groups {
                let mut inc = base(g.tenant, g.k, g.w);
                inc.first_seen = g.first;
                inc.last_seen = g.last;
                inc.events = g.events;
                inc.event_ids = g.ids;
                found.push(inc);
            }
        }
        if let (Some(sql), RuleKind::Sequence { steps }) = (sequence_sql(rule, since), &rule.kind) {
            let mut rows: Vec<SeqRow> = client.query_raw(&sql).fetch_all().await?;
            for (tenant, key, w, chain) in find_sequences(&mut rows, steps.len(), rule.window) {
                let mut inc = base(tenant, key, w);
                inc.first_seen = chain.first().map_or(0, |r| r.t);
                inc.last_seen = chain.last().map_or(0, |r| r.t);
                inc.events = chain.len() as u64;
                inc.event_ids = chain.into_iter().map(|r| r.id).collect();
                found.push(inc);
            }
        }
    }
    let mut outcome = Outcome::default();
    if found.is_empty() {
        return Ok(outcome);
    }
    let mut stored: HashMap<u64, StoredRow> = HashMap::new();
    for ids in found.chunks(1000) {
        let ids: Vec<u64> = ids.iter().map(|i| i.id).collect();
        let rows: Vec<StoredRow> = client.query_raw(&existing_sql(&ids)).fetch_all().await?;
        stored.extend(rows.into_iter().map(|r| (r.id, r)));
    }
    let mut seen: HashSet<u64> = HashSet::new();
    for mut i in found {
        if !seen.insert(i.id) {
            continue;
        }
        match stored.get(&i.id) {
            None => outcome.new.push(i),
            Some(s) if i.events > s.events || i.last_seen > s.last_seen => {
                i.created = s.created;
                outcome.updated.push(i);
            }
            Some(_) => {}
        }
    }
    // One INSERT per partition (tenant, day of the window start): each is atomic.
    let mut parts: BTreeMap<(&str, u32), Vec<&Incident>> = BTreeMap::new();
    for i in outcome.new.iter().chain(&outcome.updated) {
        parts
            .entry((&i.tenant, i.window_start / 86_400))
            .or_default()
            .push(i);
    }
    for part in parts.values() {
        let mut ins = client.insert::<Incident>("incidents").await?;
        for i in part {
            ins.write(*i).await?;
        }
        ins.end().await?;
    }
    for i in &outcome.new {
        tracing::info!(rule = %i.rule, tenant = %i.tenant, key = %i.key, window_start = i.window_start, events = i.events, "new incident");
    }
    for i in &outcome.updated {
        tracing::info!(rule = %i.rule, tenant = %i.tenant, key = %i.key, window_start = i.window_start, events = i.events, "incident updated");
    }
    Ok(outcome)
}

/// Sample statements of every query shape, for the dialect tests.
pub fn dialect_samples() -> Vec<String> {
    let text = "rules:
  - {id: t, type: threshold, key: src_ip, window: 5m, count: 3, attack: [T1110],
     match: {sids: [1, 2], categories: [\"it's\"]}}
  - {id: d, type: distinct, key: src_ip, window: 1m, count: 20, distinct: dest_port,
     attack: [T1046], match: {from: flow}}
  - {id: i, type: threshold, key: dest_ip, window: 1h, count: 1, attack: [T1071],
     match: {from: intel, kinds: [domain]}}
  - {id: s, type: sequence, key: src_ip, window: 10m, attack: [T1046, T1190],
     steps: [{sids: [1]}, {categories: [x], key: dest_ip}, {from: intel}]}
";
    let rules = Rules::parse(Path::new("dialect.yaml"), text).unwrap_or_default();
    let mut out = Vec::new();
    for r in &rules.rules {
        out.extend(grouped_sql(r, 1_700_000_000));
        out.extend(sequence_sql(r, 1_700_000_000));
    }
    out.push(existing_sql(&[1, 2]));
    out.push(LIST_SQL.into());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
rules:
  - id: scan-exploit-callback
    type: sequence
    key: src_ip
    window: 10m
    severity: 1
    attack: [T1046, T1190, T1071.001]
    steps:
      - { sids: [2001219] }
      - { categories: [\"Attempted Administrator Privilege Gain\"] }
      - { from: intel, kinds: [domain, ip], key: dest_ip }
  - id: brute-force
    type: threshold
    key: src_ip
    window: 5m
    count: 20
    attack: [T1110]
    match: { sids: [2001219, 2002910] }
  - id: port-scan
    type: distinct
    key: src_ip
    distinct: dest_port
    window: 1m
    count: 100
    attack: [T1046]
    match: { from: flow }
";

    #[test]
    fn parses_all_types() {
        let r = Rules::parse(Path::new("c.yaml"), GOOD).unwrap();
        assert_eq!(r.rules.len(), 3);
        assert_eq!(r.rules[0].window, 600);
        assert_eq!(r.rules[0].attack, ["T1046", "T1190", "T1071.001"]);
        assert!(matches!(&r.rules[0].kind, RuleKind::Sequence { steps } if steps.len() == 3));
        assert_eq!(r.rules[1].severity, 2);
        assert!(matches!(
            r.rules[2].kind,
            RuleKind::Distinct {
                count: 100,
                field: DistinctField::DestPort,
                ..
            }
        ));
        let sql = grouped_sql(&r.rules[1], 1000).unwrap();
        assert!(
            sql.contains("signature_id IN (2001219, 2002910)") && sql.contains("HAVING n >= 20"),
            "{sql}"
        );
        let sql = sequence_sql(&r.rules[0], 1000).unwrap();
        assert!(sql.contains("if((signature_id IN (2001219)), 1, 0) + if((category IN ('Attempted Administrator Privilege Gain')), 2, 0)"), "{sql}");
        assert!(
            sql.contains("dest_ip AS k")
                && sql.contains("if((indicator_kind IN ('domain', 'ip')), 4, 0)"),
            "{sql}"
        );
        assert_eq!(dialect_samples().len(), 6);
    }

    fn err(text: &str) -> String {
        Rules::parse(Path::new("/etc/khien/correlation.yaml"), text)
            .unwrap_err()
            .to_string()
    }

    const HEAD: &str = "rules:\n  - id: r1\n    type: threshold\n    key: src_ip\n";

    #[test]
    fn malformed_rules_name_file_line_and_field() {
        let cases: &[(&str, usize, &str)] = &[
            ("window: 5m\n    count: 3\n    attack: [T10465]\n    match: {}\n", 7, "T10465"),
            ("window: 5m\n    count: 3\n    attack: [T1046.1]\n    match: {}\n", 7, "ATT&CK"),
            ("window: 5x\n    count: 3\n    attack: [T1046]\n    match: {}\n", 5, "unit"),
            ("window: 8d\n    count: 3\n    attack: [T1046]\n    match: {}\n", 5, "7d"),
            ("window: 5m\n    count: 0\n    attack: [T1046]\n    match: {}\n", 6, "count"),
            ("window: 5m\n    count: 3\n    attack: [T1046]\n    match: {sidz: [1]}\n", 8, "sidz"),
            ("window: 5m\n    count: 3\n    attack: [T1046]\n    match: {from: dns}\n", 8, "dns"),
            ("window: 5m\n    count: 3\n    attack: [T1046]\n    match: {sids: [x]}\n", 8, "sids"),
            ("window: 5m\n    attack: [T1046]\n    match: {}\n", 2, "needs `count`"),
            ("window: 5m\n    count: 3\n    attack: []\n    match: {}\n", 2, "attack"),
            ("window: 5m\n    count: 3\n    attack: [T1046]\n    match: {from: intel, sids: [1]}\n", 2, "from: alert"),
            ("window: 5m\n    count: 3\n    attack: [T1046]\n    steps: [{}, {}]\n    match: {}\n", 2, "`steps` does not apply"),
            ("window: 5m\n    count: 3\n    attack: [T1046]\n    match: {key: dest_ip}\n", 2, "sequence steps only"),
            ("window: 5m\n    count: 3\n    attack: [T1046]\n    match: {key: host}\n", 8, "host"),
            ("window: 5m\n    count: 3\n    severity: 4\n    attack: [T1046]\n    match: {}\n", 7, "severity"),
            ("window: 5m\n    count: 3\n    attack: [T1046]\n    match: {}\n  - id: r1\n    type: threshold\n    key: src_ip\n    window: 5m\n    count: 3\n    attack: [T1046]\n    match: {}\n", 2, "duplicate"),
        ];
        for (tail, line, word) in cases {
            let e = err(&format!("{HEAD}    {tail}"));
            assert!(
                e.starts_with(&format!("/etc/khien/correlation.yaml:{line}:")),
                "{tail:?}: {e}"
            );
            assert!(e.contains(word), "{tail:?}: {e}");
        }
        let e = err("rules:\n  - id: s\n    type: sequence\n    key: src_ip\n    window: 5m\n    attack: [T1046]\n    steps: [{sids: [1]}]\n");
        assert!(
            e.starts_with("/etc/khien/correlation.yaml:2:") && e.contains("2 to 8"),
            "{e}"
        );
        let e = err("rules:\n  - id: bad id\n");
        assert!(
            e.starts_with("/etc/khien/correlation.yaml:2:") && e.contains("rule id"),
            "{e}"
        );
        let e = err("rules:\n  - id: x\n    type: seqence\n");
        assert!(
            e.starts_with("/etc/khien/correlation.yaml:3:") && e.contains("seqence"),
            "{e}"
        );
        let e = err("rules: {\n");
        assert!(e.starts_with("/etc/khien/correlation.yaml:"), "{e}");
    }

    #[test]
    fn techniques_and_durations() {
        for ok in ["T1046", "T1071.001", "T0000"] {
            assert!(is_technique(ok), "{ok}");
        }
        for bad in [
            "T104",
            "T10466",
            "T1071.01",
            "t1046",
            "T1071.0011",
            "T1071-001",
            "",
            "T",
        ] {
            assert!(!is_technique(bad), "{bad}");
        }
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("2h"), Ok(7200));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("99999999999d").is_err());
        assert!(parse_duration("m").is_err());
    }

    fn row(k: &str, t: u32, id: &str, steps: u32) -> SeqRow {
        SeqRow {
            tenant: "hn".into(),
            k: k.into(),
            t,
            u: 0,
            id: id.into(),
            steps,
        }
    }

    #[test]
    fn sequences() {
        let w = 600;
        let base = 1_800_000_000 - 1_800_000_000 % w;
        let mut rows = vec![
            // a: scan, exploit, callback in order: one match.
            row("a", base + 10, "a1", 1),
            row("a", base + 20, "a2", 2),
            row("a", base + 30, "a3", 4),
            // a again in the same window: still one incident for that window.
            row("a", base + 40, "a4", 1),
            row("a", base + 50, "a5", 2),
            row("a", base + 60, "a6", 4),
            // b: only two of three steps.
            row("b", base + 10, "b1", 1),
            row("b", base + 20, "b2", 2),
            // c: out of order.
            row("c", base + 10, "c3", 4),
            row("c", base + 20, "c2", 2),
            row("c", base + 30, "c1", 1),
            // d: complete but the last step is past the window.
            row("d", base + 10, "d1", 1),
            row("d", base + 20, "d2", 2),
            row("d", base + 10 + w + 1, "d3", 4),
            // e: starts at the end of a window, completes in the next bucket, in time.
            row("e", base + w - 5, "e1", 1),
            row("e", base + w + 5, "e2", 2),
            row("e", base + w + 50, "e3", 4),
        ];
        rows.reverse();
        let found = find_sequences(&mut rows, 3, w);
        let got: Vec<(String, u32, Vec<String>)> = found
            .into_iter()
            .map(|(_, k, ws, chain)| (k, ws, chain.into_iter().map(|r| r.id).collect()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "a".into(),
                    base,
                    vec!["a1".into(), "a2".into(), "a3".into()]
                ),
                (
                    "e".into(),
                    base,
                    vec!["e1".into(), "e2".into(), "e3".into()]
                ),
            ]
        );
        assert_ne!(
            incident_id("hn", "r", "a", base),
            incident_id("hn", "r", "a", base + w)
        );
        assert_ne!(
            incident_id("hn", "r", "a", base),
            incident_id("dn", "r", "a", base)
        );
    }
}
