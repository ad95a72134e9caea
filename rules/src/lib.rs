//! The Suricata 7 rule language: parser, typed AST with spans, rulesets, canonical printer.
//!
//! ```
//! let rule = khien_rules::parse_rule(
//!     r#"alert http any any -> any any (msg:"x"; content:"/admin"; http_uri; sid:1;)"#,
//! ).unwrap();
//! assert_eq!(rule.sid, 1);
//! // The legacy modifier form prints as a sticky buffer and parses back to the same tree.
//! let text = rule.to_string();
//! assert!(text.contains(r#"http.uri; content:"/admin";"#));
//! assert_eq!(khien_rules::parse_rule(&text).unwrap(), rule);
//! ```
//!
//! Invariants: this crate does no I/O (callers read files and pass text); parsing never
//! panics on any input; one bad rule yields one [`Diagnostic`] and never stops a
//! [`Ruleset`] from loading the others.

pub mod ast;
pub mod config;
pub mod diag;
mod events;
pub mod file;
mod header;
mod keywords;
mod options;
mod print;
pub mod ruleset;
mod values;
pub mod vars;

pub use ast::*;
pub use diag::{Code, Diagnostic};
pub use events::{is_decoder_event, is_stream_event};
pub use ruleset::{Counts, LoadOptions, LoadedRule, Report, Ruleset, Severity};
pub use vars::Vars;

/// Parses one rule (a single logical line, without the trailing newline).
///
/// Variables are not resolved here (see [`Ruleset`]); everything else Suricata checks when it
/// loads a rule is.
pub fn parse_rule(text: &str) -> Result<Rule, Diagnostic> {
    let h = header::parse_header(text)?;
    let raw = options::split(text, h.end)?;
    let parsed = options::parse(&raw, h.protocol)?;
    let span = Span::new(0, text.len());
    let sid = parsed.sid.ok_or_else(|| {
        Diagnostic::new(
            Code::MissingSid,
            Span::new(0, text.len().min(5)),
            "rule has no `sid`",
        )
    })?;
    Ok(Rule {
        action: h.action,
        protocol: h.protocol,
        src: h.src,
        src_ports: h.src_ports,
        direction: h.direction,
        dst: h.dst,
        dst_ports: h.dst_ports,
        options: parsed.options,
        sid,
        gid: parsed.gid,
        rev: parsed.rev,
        span,
    })
}
