//! Diagnostics: what is wrong with a rule, where, under a stable code.

use std::fmt;

use crate::ast::Span;

/// Stable diagnostic codes. The code of a given mistake never changes between releases, so
/// tools and tests can match on it; the message may be reworded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// The rule text ends before its header is complete, or has no option block.
    Incomplete,
    /// Unknown rule action.
    BadAction,
    /// Unknown protocol.
    BadProtocol,
    /// Malformed address or address list.
    BadAddress,
    /// Malformed port, port range or port list.
    BadPort,
    /// Direction other than `->` or `<>`.
    BadDirection,
    /// An option not terminated by `;`.
    UnterminatedOption,
    /// A quoted value that is not properly quoted or escaped.
    BadString,
    /// A keyword Suricata 7 does not know.
    UnknownKeyword,
    /// A keyword that needs a value got none, or one that takes none got one.
    BadValue,
    /// A content modifier (`nocase`, `depth`, `http_uri`, …) with no content before it.
    ModifierWithoutContent,
    /// A relative keyword with nothing to be relative to.
    RelativeWithoutMatch,
    /// Modifiers that cannot be combined (`depth` with `distance`, …).
    ConflictingModifiers,
    /// A keyword that may appear once appears twice (`sid`, `msg`, …).
    DuplicateKeyword,
    /// Malformed hex in a content (`|4x|`, odd digit count).
    BadHex,
    /// Malformed `pcre`.
    BadPcre,
    /// A sticky buffer with no match after it.
    EmptyBuffer,
    /// A legacy modifier used while a sticky buffer is active, or a buffer-bound keyword that
    /// conflicts with the active buffer.
    BufferConflict,
    /// The rule has no `sid`.
    MissingSid,
    /// Another rule of the same ruleset has the same `gid:sid`.
    DuplicateSid,
    /// A `classtype` not in classification.config.
    UnknownClasstype,
    /// A `$VARIABLE` not defined in the vars.
    UnknownVariable,
    /// A `reference` system not in reference.config.
    UnknownReference,
    /// A byte_extract/byte_math variable used but never defined.
    UnknownByteVar,
    /// A line of a configuration file (classification, reference, threshold, vars) is malformed.
    BadConfig,
}

impl Code {
    /// The stable code, e.g. `E301`.
    pub fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            Incomplete => "E100",
            BadAction => "E101",
            BadProtocol => "E102",
            BadAddress => "E103",
            BadPort => "E104",
            BadDirection => "E105",
            UnterminatedOption => "E201",
            BadString => "E202",
            BadValue => "E203",
            UnknownKeyword => "E301",
            ModifierWithoutContent => "E302",
            RelativeWithoutMatch => "E303",
            ConflictingModifiers => "E304",
            DuplicateKeyword => "E305",
            BadHex => "E306",
            BadPcre => "E307",
            EmptyBuffer => "E308",
            BufferConflict => "E309",
            MissingSid => "E401",
            DuplicateSid => "E402",
            UnknownClasstype => "E403",
            UnknownVariable => "E404",
            UnknownReference => "E405",
            UnknownByteVar => "E406",
            BadConfig => "E501",
        }
    }

    /// Short name of the code, e.g. `unknown-keyword`.
    pub fn name(self) -> &'static str {
        use Code::*;
        match self {
            Incomplete => "incomplete-rule",
            BadAction => "bad-action",
            BadProtocol => "bad-protocol",
            BadAddress => "bad-address",
            BadPort => "bad-port",
            BadDirection => "bad-direction",
            UnterminatedOption => "unterminated-option",
            BadString => "bad-string",
            BadValue => "bad-value",
            UnknownKeyword => "unknown-keyword",
            ModifierWithoutContent => "modifier-without-content",
            RelativeWithoutMatch => "relative-without-match",
            ConflictingModifiers => "conflicting-modifiers",
            DuplicateKeyword => "duplicate-keyword",
            BadHex => "bad-hex",
            BadPcre => "bad-pcre",
            EmptyBuffer => "empty-buffer",
            BufferConflict => "buffer-conflict",
            MissingSid => "missing-sid",
            DuplicateSid => "duplicate-sid",
            UnknownClasstype => "unknown-classtype",
            UnknownVariable => "unknown-variable",
            UnknownReference => "unknown-reference",
            UnknownByteVar => "unknown-byte-variable",
            BadConfig => "bad-config",
        }
    }

    /// Looks a code up by its stable string (`E301`) or name (`unknown-keyword`).
    pub fn parse(s: &str) -> Option<Code> {
        use Code::*;
        [
            Incomplete,
            BadAction,
            BadProtocol,
            BadAddress,
            BadPort,
            BadDirection,
            UnterminatedOption,
            BadString,
            BadValue,
            UnknownKeyword,
            ModifierWithoutContent,
            RelativeWithoutMatch,
            ConflictingModifiers,
            DuplicateKeyword,
            BadHex,
            BadPcre,
            EmptyBuffer,
            BufferConflict,
            MissingSid,
            DuplicateSid,
            UnknownClasstype,
            UnknownVariable,
            UnknownReference,
            UnknownByteVar,
            BadConfig,
        ]
        .into_iter()
        .find(|c| c.as_str() == s || c.name() == s)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in a rule: a code, a message, and where in the rule's text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    /// Byte range in the rule's text.
    pub span: Span,
}

impl Diagnostic {
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: message.into(),
            span,
        }
    }
}
