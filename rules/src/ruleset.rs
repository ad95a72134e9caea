//! Rulesets: many rule files loaded together, with variables, classtypes, references and
//! duplicate-sid handling as Suricata does it. One bad rule never stops the others.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use crate::ast::{AddrSpec, OptionKind, PortSpec, Rule};
use crate::config::Classtype;
use crate::diag::{Code, Diagnostic};
use crate::file::{self, RuleText};
use crate::vars::Vars;

/// How a ruleset is loaded.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Load commented-out rules as if they were enabled (what `suricata -T` does to a file
    /// whose rules were uncommented).
    pub include_disabled: bool,
    /// Variables for `$NAME` in headers.
    pub vars: Vars,
    /// classification.config, when given: unknown classtypes are reported as warnings.
    pub classification: Option<BTreeMap<String, Classtype>>,
    /// reference.config, when given: unknown reference systems are reported as warnings.
    pub references: Option<BTreeMap<String, String>>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            include_disabled: false,
            vars: Vars::suricata_defaults(),
            classification: None,
            references: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// A diagnostic placed in its file.
#[derive(Clone, Debug)]
pub struct Report {
    pub file: Arc<str>,
    pub line: u32,
    pub column: u32,
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    pub sid: Option<u32>,
    /// The rule is commented out in its file.
    pub disabled: bool,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}[{}]: {}",
            self.file,
            self.line,
            self.column,
            match self.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            },
            self.code,
            self.message
        )?;
        if let Some(sid) = self.sid {
            write!(f, " (sid {sid})")?;
        }
        if self.disabled {
            f.write_str(" (commented-out rule)")?;
        }
        Ok(())
    }
}

/// A rule that loaded, with where it came from.
#[derive(Clone, Debug)]
pub struct LoadedRule {
    pub rule: Rule,
    pub file: Arc<str>,
    pub line: u32,
}

/// Counts of one load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Rules loaded (enabled, valid, not replaced by a duplicate).
    pub loaded: usize,
    /// Rules that failed: invalid, or a duplicate `gid:sid`.
    pub failed: usize,
    /// Of `failed`, the duplicates.
    pub duplicates: usize,
    /// Commented-out rules seen (not loaded unless `include_disabled`).
    pub disabled: usize,
    /// Commented-out rules that would not parse.
    pub disabled_invalid: usize,
}

#[derive(Debug, Default)]
pub struct Ruleset {
    opts: LoadOptions,
    slots: Vec<Option<LoadedRule>>,
    by_sid: HashMap<(u32, u32), usize>,
    reports: Vec<Report>,
    counts: Counts,
}

impl Ruleset {
    pub fn new(opts: LoadOptions) -> Self {
        Ruleset {
            opts,
            ..Default::default()
        }
    }

    fn opts(&self) -> &LoadOptions {
        &self.opts
    }

    /// Loads every rule of one file. `name` is used in reports.
    pub fn add_file(&mut self, name: &str, text: &str) {
        let name: Arc<str> = Arc::from(name);
        for rt in file::rules(text) {
            self.add_rule_text(&name, &rt);
        }
    }

    fn report(
        &mut self,
        file: &Arc<str>,
        rt: &RuleText<'_>,
        d: &Diagnostic,
        sev: Severity,
        sid: Option<u32>,
    ) {
        let (line, column) = rt.position(d.span.start as usize);
        self.reports.push(Report {
            file: file.clone(),
            line,
            column,
            severity: sev,
            code: d.code,
            message: d.message.clone(),
            sid,
            disabled: !rt.enabled,
        });
    }

    fn add_rule_text(&mut self, file: &Arc<str>, rt: &RuleText<'_>) {
        let load = rt.enabled || self.opts().include_disabled;
        if !rt.enabled {
            self.counts.disabled += 1;
        }
        let parsed = crate::parse_rule(&rt.text).and_then(|r| self.check_context(r));
        let (rule, warnings) = match parsed {
            Ok(x) => x,
            Err(d) => {
                let sid = sid_hint(&rt.text);
                if load {
                    self.counts.failed += 1;
                    self.report(file, rt, &d, Severity::Error, sid);
                } else {
                    self.counts.disabled_invalid += 1;
                    self.report(file, rt, &d, Severity::Warning, sid);
                }
                return;
            }
        };
        for w in &warnings {
            if load {
                self.report(file, rt, w, Severity::Warning, Some(rule.sid));
            }
        }
        if !load {
            return;
        }
        let key = (rule.gid, rule.sid);
        let loaded = LoadedRule {
            rule,
            file: file.clone(),
            line: rt.line,
        };
        match self.by_sid.get(&key).copied() {
            None => {
                self.by_sid.insert(key, self.slots.len());
                self.slots.push(Some(loaded));
                self.counts.loaded += 1;
            }
            Some(idx) => {
                self.counts.failed += 1;
                self.counts.duplicates += 1;
                let old = self.slots[idx].as_ref().expect("indexed slots are filled");
                let (old_file, old_line, old_rev) = (old.file.clone(), old.line, old.rule.rev);
                let new_rev = loaded.rule.rev;
                let span = loaded.rule.span;
                let d = if new_rev > old_rev {
                    // Suricata keeps the higher revision.
                    self.slots[idx] = None;
                    self.by_sid.insert(key, self.slots.len());
                    self.slots.push(Some(loaded));
                    Diagnostic::new(
                        Code::DuplicateSid,
                        span,
                        format!("duplicate sid {}:{}; this rev {new_rev} replaces rev {old_rev} at {old_file}:{old_line}", key.0, key.1),
                    )
                } else {
                    Diagnostic::new(
                        Code::DuplicateSid,
                        span,
                        format!("duplicate sid {}:{}, already loaded from {old_file}:{old_line} (rev {old_rev}); this rule is ignored", key.0, key.1),
                    )
                };
                self.report(file, rt, &d, Severity::Error, Some(key.1));
            }
        }
    }

    /// Checks that need the ruleset's configuration: variables, classtypes, references.
    /// Returns the rule with warnings, or the error that rejects it.
    fn check_context(&self, rule: Rule) -> Result<(Rule, Vec<Diagnostic>), Diagnostic> {
        let opts = self.opts();
        for (a, which) in [(&rule.src, "source"), (&rule.dst, "destination")] {
            if has_addr_var(a) {
                opts.vars.check_address(a).map_err(|(c, m)| {
                    Diagnostic::new(c, rule.span, format!("{which} address: {m}"))
                })?;
            }
        }
        for (p, which) in [
            (&rule.src_ports, "source"),
            (&rule.dst_ports, "destination"),
        ] {
            if has_port_var(p) {
                opts.vars.check_ports(p).map_err(|(c, m)| {
                    Diagnostic::new(c, rule.span, format!("{which} port: {m}"))
                })?;
            }
        }
        let mut warnings = Vec::new();
        for o in &rule.options {
            match &o.kind {
                OptionKind::Classtype(c) => {
                    if let Some(cls) = &opts.classification {
                        if !cls.contains_key(c) {
                            warnings.push(Diagnostic::new(
                                Code::UnknownClasstype,
                                o.span,
                                format!("classtype `{c}` is not in classification.config; the default priority is used"),
                            ));
                        }
                    }
                }
                OptionKind::Reference(r) => {
                    if let Some(refs) = &opts.references {
                        if !refs.contains_key(&r.system.to_ascii_lowercase()) {
                            warnings.push(Diagnostic::new(
                                Code::UnknownReference,
                                o.span,
                                format!(
                                    "reference system `{}` is not in reference.config",
                                    r.system
                                ),
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok((rule, warnings))
    }

    /// The loaded rules, in load order.
    pub fn rules(&self) -> impl Iterator<Item = &LoadedRule> {
        self.slots.iter().flatten()
    }

    /// Every diagnostic, in load order.
    pub fn reports(&self) -> &[Report] {
        &self.reports
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }
}

fn has_addr_var(a: &AddrSpec) -> bool {
    match a {
        AddrSpec::Var(_) => true,
        AddrSpec::List(l) => l.iter().any(has_addr_var),
        AddrSpec::Not(x) => has_addr_var(x),
        _ => false,
    }
}

fn has_port_var(p: &PortSpec) -> bool {
    match p {
        PortSpec::Var(_) => true,
        PortSpec::List(l) => l.iter().any(has_port_var),
        PortSpec::Not(x) => has_port_var(x),
        _ => false,
    }
}

/// The sid of a rule that failed to parse, if its text has a readable `sid:N;`.
fn sid_hint(text: &str) -> Option<u32> {
    let mut rest = text;
    while let Some(i) = rest.find("sid:") {
        let before = rest[..i].chars().next_back();
        let after = &rest[i + 4..];
        if matches!(before, None | Some(' ') | Some(';') | Some('(')) {
            let digits: String = after
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(n) = digits.parse() {
                return Some(n);
            }
        }
        rest = after;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_keep_the_higher_rev() {
        let mut rs = Ruleset::new(LoadOptions::default());
        rs.add_file(
            "a.rules",
            "alert tcp any any -> any any (msg:\"a\"; sid:1; rev:2;)\n\
             alert tcp any any -> any any (msg:\"b\"; sid:1; rev:1;)\n\
             alert tcp any any -> any any (msg:\"c\"; sid:1; rev:3;)\n\
             alert tcp any any -> any any (msg:\"d\"; sid:1; gid:2;)\n",
        );
        let c = rs.counts();
        assert_eq!((c.loaded, c.failed, c.duplicates), (2, 2, 2));
        let msgs: Vec<_> = rs
            .rules()
            .map(|r| r.rule.msg().unwrap().to_string())
            .collect();
        assert_eq!(msgs, ["c", "d"]);
        assert!(rs.reports().iter().all(|r| r.code == Code::DuplicateSid));
        assert_eq!(rs.reports()[0].line, 2);
    }

    #[test]
    fn one_bad_rule_does_not_stop_the_rest() {
        let mut rs = Ruleset::new(LoadOptions::default());
        rs.add_file(
            "b.rules",
            "alert tcp any any -> any any (msg:\"ok\"; sid:1;)\n\
             alert tcp any any -> any any (msg:\"bad\"; bogus; sid:2;)\n\
             # alert tcp any any -> any any (msg:\"bad too\"; bogus; sid:3;)\n\
             alert tcp $NOPE any -> any any (msg:\"var\"; sid:4;)\n\
             alert tcp any any -> any any (msg:\"ok\"; sid:5;)\n",
        );
        let c = rs.counts();
        assert_eq!(
            (c.loaded, c.failed, c.disabled, c.disabled_invalid),
            (2, 2, 1, 1)
        );
        let r = &rs.reports()[0];
        assert_eq!(
            (r.line, r.column, r.code, r.sid),
            (2, 42, Code::UnknownKeyword, Some(2))
        );
        assert_eq!(
            r.to_string(),
            "b.rules:2:42: error[E301]: unknown keyword `bogus` (sid 2)"
        );
        assert_eq!(rs.reports()[2].code, Code::UnknownVariable);
    }
}
