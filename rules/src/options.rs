//! The option block: splitting `keyword[:value];` items the way Suricata does, then a state
//! machine over them that types each keyword, applies content modifiers, binds payload
//! keywords to their buffer and enforces the semantics Suricata enforces.

use crate::ast::*;
use crate::diag::{Code, Diagnostic};
use crate::keywords;
use crate::values::{self, PatternError};

/// One `name[:value]` item, with spans relative to the rule text.
#[derive(Debug)]
pub(crate) struct RawOption<'a> {
    /// The keyword, ASCII-lowercased (Suricata's keywords are case-insensitive).
    pub name: std::borrow::Cow<'a, str>,
    pub value: Option<&'a str>,
    pub span: Span,
}

/// Splits the option block. `text` is the whole rule; options start at `start`.
///
/// Like Suricata: leading whitespace and `(` are skipped, trailing whitespace and `)` are
/// stripped, and every option must end with a `;` not preceded by `\`.
pub(crate) fn split(text: &str, start: usize) -> Result<Vec<RawOption<'_>>, Diagnostic> {
    let b = text.as_bytes();
    let mut i = start;
    while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'(') {
        i += 1;
    }
    let mut end = b.len();
    while end > i && (b[end - 1].is_ascii_whitespace() || b[end - 1] == b')') {
        end -= 1;
    }
    let mut out = Vec::with_capacity(16);
    while i < end {
        while i < end && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= end {
            break;
        }
        let opt_start = i;
        // The keyword runs to ':' or ';'.
        let name_end = memchr::memchr2(b':', b';', &b[i..end]).map_or(end, |p| i + p);
        if name_end == end {
            return Err(Diagnostic::new(
                Code::UnterminatedOption,
                Span::new(opt_start, end),
                format!(
                    "option `{}` has no terminating `;`",
                    text[opt_start..end].trim()
                ),
            ));
        }
        let raw_name = text[opt_start..name_end].trim();
        let name = if raw_name.bytes().any(|c| c.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(raw_name.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(raw_name)
        };
        if b[name_end] == b';' {
            out.push(RawOption {
                name,
                value: None,
                span: Span::new(opt_start, name_end + 1),
            });
            i = name_end + 1;
            continue;
        }
        // A value: up to the next ';' not preceded by '\'.
        let vstart = name_end + 1;
        let mut j = vstart;
        let semi = loop {
            match memchr::memchr(b';', &b[j..end]) {
                None => break None,
                Some(p) => {
                    let at = j + p;
                    if at > vstart && b[at - 1] == b'\\' {
                        j = at + 1;
                        continue;
                    }
                    break Some(at);
                }
            }
        };
        let Some(semi) = semi else {
            return Err(Diagnostic::new(
                Code::UnterminatedOption,
                Span::new(opt_start, end),
                format!("option `{name}` has no terminating `;`"),
            ));
        };
        out.push(RawOption {
            name,
            value: Some(text[vstart..semi].trim()),
            span: Span::new(opt_start, semi + 1),
        });
        i = semi + 1;
    }
    Ok(out)
}

/// What the option state machine produces besides the options.
pub(crate) struct Parsed {
    pub options: Vec<RuleOption>,
    pub sid: Option<u32>,
    pub gid: u32,
    pub rev: u32,
}

struct State {
    out: Vec<RuleOption>,
    protocol: Protocol,
    /// The active sticky buffer (None: payload, no sticky buffer set).
    sticky: Option<BufferRef>,
    /// Span of the keyword that set the active sticky buffer.
    sticky_span: Span,
    /// Whether the active sticky buffer has a match yet.
    sticky_used: bool,
    /// Index in `out` of the most recent content.
    last_content: Option<usize>,
    /// App protocol implied by the buffers used so far.
    buffer_proto: Option<&'static str>,
    byte_vars: Vec<String>,
    sid: Option<u32>,
    gid: u32,
    rev: Option<u32>,
    has_msg: bool,
    has_fast_pattern: bool,
    has_threshold: bool,
    has_detection_filter: bool,
    has_dsize: bool,
    has_base64_decode: bool,
    /// First packet-only keyword (dsize, ttl, flags, tcp.hdr, …), which Suricata refuses to
    /// combine with app-layer (state) inspection or with stream-only matching.
    packet_kw: Option<Span>,
    /// First app-layer (state) inspection: an app-layer sticky buffer, legacy modifier, …
    state_kw: Option<Span>,
    only_stream: bool,
}

fn err(code: Code, span: Span, msg: impl Into<String>) -> Diagnostic {
    Diagnostic::new(code, span, msg)
}

impl State {
    /// The buffer the next payload keyword binds to.
    fn current_buffer(&self) -> BufferRef {
        self.sticky.clone().unwrap_or(BufferRef::PAYLOAD)
    }

    fn push(&mut self, kind: OptionKind, span: Span) {
        if kind.buffer().is_some() {
            self.sticky_used = true;
        }
        if matches!(kind, OptionKind::Content(..)) {
            self.last_content = Some(self.out.len());
        }
        self.out.push(RuleOption { kind, span });
    }

    /// Records that the rule inspects a buffer of application protocol `proto`, checking it
    /// against the header and the other buffers.
    fn use_proto(
        &mut self,
        proto: Option<&'static str>,
        span: Span,
        what: &str,
    ) -> Result<(), Diagnostic> {
        let Some(p) = proto else { return Ok(()) };
        fn family(x: &str) -> &str {
            match x {
                "http1" | "http2" => "http",
                x => x,
            }
        }
        let header = self.protocol.0;
        let header_is_app = !matches!(
            header,
            "ip" | "ipv4"
                | "ip4"
                | "ipv6"
                | "ip6"
                | "tcp"
                | "udp"
                | "icmp"
                | "icmpv4"
                | "icmpv6"
                | "sctp"
                | "pkthdr"
                | "tcp-pkt"
                | "tcp-stream"
        );
        if header_is_app && family(header) != family(p) {
            return Err(err(
                Code::BufferConflict,
                span,
                format!("`{what}` inspects {p}, but the rule's protocol is {header}"),
            ));
        }
        if let Some(prev) = self.buffer_proto {
            if family(prev) != family(p) {
                return Err(err(
                    Code::BufferConflict,
                    span,
                    format!("`{what}` inspects {p}, but the rule already inspects {prev}"),
                ));
            }
        }
        self.buffer_proto = Some(p);
        Ok(())
    }

    fn set_sticky(
        &mut self,
        sticky: &'static keywords::Sticky,
        span: Span,
        name: &str,
    ) -> Result<(), Diagnostic> {
        if self.sticky.is_some() && !self.sticky_used {
            return Err(err(
                Code::EmptyBuffer,
                self.sticky_span,
                "previous sticky buffer has no matches".to_string(),
            ));
        }
        self.use_proto(sticky.proto, span, name)?;
        match sticky.name {
            "tcp.hdr" | "udp.hdr" | "ipv4.hdr" | "ipv6.hdr" | "icmpv4.hdr" | "icmpv6.hdr" => {
                self.packet_kw.get_or_insert(span);
            }
            "pkt_data" | "ip.src" | "ip.dst" | "frame" => {}
            "base64_data" => {
                if !self.has_base64_decode {
                    return Err(err(
                        Code::ModifierWithoutContent,
                        span,
                        "`base64_data` needs a preceding `base64_decode`",
                    ));
                }
            }
            _ => {
                self.state_kw.get_or_insert(span);
            }
        }
        if sticky.name == "pkt_data" {
            self.sticky = None;
            self.sticky_used = false;
        } else {
            self.sticky = Some(BufferRef {
                name: sticky.name,
                transforms: Vec::new(),
            });
            self.sticky_span = span;
            self.sticky_used = false;
        }
        Ok(())
    }

    /// The most recent content, for a modifier named `m`.
    fn last_content(
        &mut self,
        m: &str,
        span: Span,
    ) -> Result<(&mut BufferRef, &mut Content), Diagnostic> {
        let idx = self.last_content.ok_or_else(|| {
            err(
                Code::ModifierWithoutContent,
                span,
                format!("`{m}` needs a preceding `content`"),
            )
        })?;
        match &mut self.out[idx].kind {
            OptionKind::Content(b, c) => Ok((b, c)),
            _ => Err(err(
                Code::ModifierWithoutContent,
                span,
                format!("`{m}` needs a preceding `content`"),
            )),
        }
    }

    fn check_var(&self, v: &NumOrVar<impl Sized>, span: Span, kw: &str) -> Result<(), Diagnostic> {
        if let NumOrVar::Var(name) = v {
            if !self.byte_vars.iter().any(|x| x == name) {
                return Err(err(
                    Code::UnknownByteVar,
                    span,
                    format!(
                        "`{kw}` uses `{name}`, which no earlier byte_extract or byte_math defines"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether the buffer `b` already has a content or pcre (for relative pcre).
    fn buffer_has_match(&self, b: &BufferRef) -> bool {
        self.out.iter().any(
            |o| matches!(&o.kind, OptionKind::Content(x, _) | OptionKind::Pcre(x, _) if x == b),
        )
    }
}

/// Types every option and applies Suricata's rules to them.
pub(crate) fn parse(raw: &[RawOption<'_>], protocol: Protocol) -> Result<Parsed, Diagnostic> {
    let mut st = State {
        out: Vec::with_capacity(raw.len()),
        protocol,
        sticky: None,
        sticky_span: Span::default(),
        sticky_used: false,
        last_content: None,
        buffer_proto: None,
        byte_vars: Vec::new(),
        sid: None,
        gid: 1,
        rev: None,
        has_msg: false,
        has_fast_pattern: false,
        has_threshold: false,
        has_detection_filter: false,
        has_dsize: false,
        has_base64_decode: false,
        packet_kw: None,
        state_kw: None,
        only_stream: false,
    };
    for o in raw {
        option(&mut st, o)?;
    }
    if st.sticky.is_some() && !st.sticky_used {
        return Err(err(
            Code::EmptyBuffer,
            st.sticky_span,
            format!(
                "sticky buffer `{}` has no match after it",
                st.sticky.as_ref().map_or("", |b| b.name)
            ),
        ));
    }
    validate_bsize(&st.out)?;
    let packet = st.packet_kw.or(if protocol.0 == "tcp-pkt" {
        Some(Span::new(0, 0))
    } else {
        None
    });
    if let (Some(p), Some(_)) = (packet, st.state_kw) {
        return Err(err(
            Code::BufferConflict,
            p,
            "packet keywords (dsize, flags, ttl, tcp.hdr, … or protocol tcp-pkt) cannot be combined with app-layer inspection (http.*, file.data, dns.query, …)",
        ));
    }
    if let (Some(p), true) = (st.packet_kw, st.only_stream || protocol.0 == "tcp-stream") {
        return Err(err(
            Code::BufferConflict,
            p,
            "packet keywords cannot be combined with protocol tcp-stream or flow:only_stream",
        ));
    }
    Ok(Parsed {
        options: st.out,
        sid: st.sid,
        gid: st.gid,
        rev: st.rev.unwrap_or(0),
    })
}

fn need_value<'a>(o: &RawOption<'a>) -> Result<&'a str, Diagnostic> {
    match o.value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(err(
            Code::BadValue,
            o.span,
            format!("`{}` needs a value", o.name),
        )),
    }
}

fn no_value(o: &RawOption<'_>) -> Result<(), Diagnostic> {
    match o.value {
        None => Ok(()),
        Some(_) => Err(err(
            Code::BadValue,
            o.span,
            format!("`{}` takes no value", o.name),
        )),
    }
}

fn bad(o: &RawOption<'_>, m: impl std::fmt::Display) -> Diagnostic {
    err(Code::BadValue, o.span, format!("`{}`: {m}", o.name))
}

fn option(st: &mut State, o: &RawOption<'_>) -> Result<(), Diagnostic> {
    let name: &str = &o.name;
    let span = o.span;
    match name {
        "msg" => {
            if st.has_msg {
                return Err(err(Code::DuplicateKeyword, span, "duplicate `msg`"));
            }
            st.has_msg = true;
            let v = need_value(o)?;
            let m =
                values::quoted(v).map_err(|m| err(Code::BadString, span, format!("`msg`: {m}")))?;
            st.push(OptionKind::Msg(m), span);
        }
        "sid" => {
            if st.sid.is_some() {
                return Err(err(Code::DuplicateKeyword, span, "duplicate `sid`"));
            }
            let v: u32 = values::uint(need_value(o)?).map_err(|m| bad(o, m))?;
            if v == 0 {
                return Err(bad(o, "sid 0 is invalid"));
            }
            st.sid = Some(v);
            st.push(OptionKind::Sid(v), span);
        }
        "rev" => {
            if st.rev.is_some() {
                return Err(err(Code::DuplicateKeyword, span, "duplicate `rev`"));
            }
            let v: u32 = values::uint(need_value(o)?).map_err(|m| bad(o, m))?;
            st.rev = Some(v);
            st.push(OptionKind::Rev(v), span);
        }
        "gid" => {
            let v: u32 = values::uint(need_value(o)?).map_err(|m| bad(o, m))?;
            st.gid = v;
            st.push(OptionKind::Gid(v), span);
        }
        "classtype" => {
            let v = need_value(o)?;
            if !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(bad(o, format!("`{v}` is not a classtype name")));
            }
            st.push(OptionKind::Classtype(v.to_string()), span);
        }
        "priority" => {
            let v: u32 = values::uint(need_value(o)?).map_err(|m| bad(o, m))?;
            st.push(OptionKind::Priority(v), span);
        }
        "reference" => {
            let v = need_value(o)?;
            let (sys, id) = v
                .split_once(',')
                .ok_or_else(|| bad(o, "expected `<system>,<id>`"))?;
            let (sys, id) = (sys.trim(), id.trim());
            if sys.is_empty() || id.is_empty() {
                return Err(bad(o, "expected `<system>,<id>`"));
            }
            st.push(
                OptionKind::Reference(Reference {
                    system: sys.to_string(),
                    id: id.to_string(),
                }),
                span,
            );
        }
        "metadata" => {
            let v = need_value(o)?;
            let mut items = Vec::new();
            for item in v.split(',') {
                let item = item.trim();
                if item.is_empty() {
                    continue;
                }
                let (k, val) = item.split_once(char::is_whitespace).unwrap_or((item, ""));
                items.push((k.to_string(), val.trim().to_string()));
            }
            if items.is_empty() {
                return Err(bad(o, "empty metadata"));
            }
            st.push(OptionKind::Metadata(items), span);
        }
        "target" => {
            let t = match need_value(o)? {
                "src_ip" => "src_ip",
                "dest_ip" => "dest_ip",
                v => return Err(bad(o, format!("`{v}`: expected src_ip or dest_ip"))),
            };
            st.push(OptionKind::Target(t), span);
        }
        "noalert" => {
            no_value(o)?;
            st.push(OptionKind::Noalert, span);
        }
        "tag" => {
            let t = tag(need_value(o)?).map_err(|m| bad(o, m))?;
            st.push(OptionKind::Tag(t), span);
        }

        // ---- content and its modifiers ----
        "content" | "uricontent" => {
            let v = need_value(o)?;
            let (negated, pattern) = values::content_pattern(v).map_err(|e| match e {
                PatternError::Quote(m) => err(Code::BadString, span, format!("`{name}`: {m}")),
                PatternError::Hex(m) => err(Code::BadHex, span, format!("`{name}`: {m}")),
            })?;
            let c = Content {
                pattern,
                negated,
                ..Content::default()
            };
            let mut buf = st.current_buffer();
            if name == "uricontent" {
                if st.sticky.is_some() {
                    return Err(err(
                        Code::BufferConflict,
                        span,
                        "`uricontent` seen with a sticky buffer still set; reset it with `pkt_data`",
                    ));
                }
                st.use_proto(Some("http"), span, name)?;
                st.state_kw.get_or_insert(span);
                buf = BufferRef {
                    name: "http.uri",
                    transforms: Vec::new(),
                };
            }
            check_transform_compat(&buf, &c, span)?;
            st.push(OptionKind::Content(buf, c), span);
        }
        "nocase" => {
            no_value(o)?;
            let (buf, c) = st.last_content(name, span)?;
            if c.nocase {
                return Err(err(
                    Code::ConflictingModifiers,
                    span,
                    "`nocase` given twice for the same content",
                ));
            }
            c.nocase = true;
            let _ = buf;
        }
        "rawbytes" => {
            no_value(o)?;
            let (buf, c) = st.last_content(name, span)?;
            if !buf.is_payload() {
                return Err(err(
                    Code::BufferConflict,
                    span,
                    format!(
                        "`rawbytes` cannot be combined with the `{}` buffer",
                        buf.name
                    ),
                ));
            }
            if c.rawbytes {
                return Err(err(
                    Code::ConflictingModifiers,
                    span,
                    "`rawbytes` given twice for the same content",
                ));
            }
            c.rawbytes = true;
        }
        "depth" | "offset" => {
            let v =
                values::num_or_var(need_value(o)?, values::uint::<u32>).map_err(|m| bad(o, m))?;
            st.check_var(&v, span, name)?;
            let (_, c) = st.last_content(name, span)?;
            if c.fast_pattern == Some(FastPattern::Only) {
                return Err(err(
                    Code::ConflictingModifiers,
                    span,
                    format!("`{name}` cannot follow `fast_pattern:only` on the same content"),
                ));
            }
            if c.is_relative() {
                return Err(err(
                    Code::ConflictingModifiers,
                    span,
                    format!("`{name}` (absolute) cannot be combined with distance/within (relative) on the same content"),
                ));
            }
            if name == "depth" {
                if c.depth.is_some() || c.startswith {
                    return Err(err(
                        Code::ConflictingModifiers,
                        span,
                        "`depth` given twice for the same content (startswith sets a depth)",
                    ));
                }
                if let NumOrVar::Num(n) = v {
                    if n > 65535 {
                        return Err(bad(o, format!("{n} is out of range (max 65535)")));
                    }
                    if (n as usize) < c.pattern.len() {
                        return Err(err(
                            Code::ConflictingModifiers,
                            span,
                            format!("depth {n} is smaller than the content's length {}; it can never match", c.pattern.len()),
                        ));
                    }
                }
                c.depth = Some(v);
            } else {
                if c.startswith {
                    return Err(err(
                        Code::ConflictingModifiers,
                        span,
                        "`offset` cannot be combined with `startswith`",
                    ));
                }
                if c.offset.is_some() {
                    return Err(err(
                        Code::ConflictingModifiers,
                        span,
                        "`offset` given twice for the same content",
                    ));
                }
                if let NumOrVar::Num(n) = v {
                    if n > 65535 {
                        return Err(bad(o, format!("{n} is out of range (max 65535)")));
                    }
                }
                c.offset = Some(v);
            }
        }
        "distance" | "within" => {
            let v =
                values::num_or_var(need_value(o)?, values::int::<i32>).map_err(|m| bad(o, m))?;
            st.check_var(&v, span, name)?;
            let (_, c) = st.last_content(name, span)?;
            if c.fast_pattern == Some(FastPattern::Only) {
                return Err(err(
                    Code::ConflictingModifiers,
                    span,
                    format!("`{name}` cannot follow `fast_pattern:only` on the same content"),
                ));
            }
            if c.depth.is_some() || c.offset.is_some() || c.startswith {
                return Err(err(
                    Code::ConflictingModifiers,
                    span,
                    format!("`{name}` (relative) cannot be combined with depth/offset/startswith (absolute) on the same content"),
                ));
            }
            if name == "within" {
                if c.within.is_some() {
                    return Err(err(
                        Code::ConflictingModifiers,
                        span,
                        "`within` given twice for the same content",
                    ));
                }
                if let NumOrVar::Num(n) = v {
                    if n < c.pattern.len() as i32 {
                        return Err(err(
                            Code::ConflictingModifiers,
                            span,
                            format!("within {n} is smaller than the content's length {}; it can never match", c.pattern.len()),
                        ));
                    }
                }
                c.within = Some(v);
            } else {
                if c.distance.is_some() {
                    return Err(err(
                        Code::ConflictingModifiers,
                        span,
                        "`distance` given twice for the same content",
                    ));
                }
                c.distance = Some(v);
            }
        }
        "startswith" => {
            no_value(o)?;
            let (_, c) = st.last_content(name, span)?;
            if c.is_relative() {
                return Err(err(
                    Code::ConflictingModifiers,
                    span,
                    "`startswith` cannot be combined with distance/within",
                ));
            }
            if c.depth.is_some() || c.offset.is_some() {
                return Err(err(
                    Code::ConflictingModifiers,
                    span,
                    "`startswith` cannot be combined with depth/offset",
                ));
            }
            if c.startswith {
                return Err(err(
                    Code::ConflictingModifiers,
                    span,
                    "`startswith` given twice for the same content",
                ));
            }
            c.startswith = true;
        }
        "endswith" => {
            no_value(o)?;
            let (_, c) = st.last_content(name, span)?;
            c.endswith = true;
        }
        "fast_pattern" => {
            let fp = match o.value {
                None => FastPattern::Yes,
                Some("only") => FastPattern::Only,
                Some(v) => {
                    let (a, b) = v.split_once(',').ok_or_else(|| {
                        bad(o, format!("`{v}`: expected `only` or `<offset>,<length>`"))
                    })?;
                    let offset: u16 = values::uint(a).map_err(|m| bad(o, m))?;
                    let length: u16 = values::uint(b).map_err(|m| bad(o, m))?;
                    FastPattern::Chop { offset, length }
                }
            };
            let had = st.has_fast_pattern;
            let (_, c) = st.last_content(name, span)?;
            if c.fast_pattern.is_some() {
                return Err(err(
                    Code::ConflictingModifiers,
                    span,
                    "`fast_pattern` given twice for the same content",
                ));
            }
            if had {
                return Err(err(
                    Code::ConflictingModifiers,
                    span,
                    "`fast_pattern` can be used on only one content in a rule",
                ));
            }
            match fp {
                FastPattern::Only
                    if c.negated || c.is_relative() || c.depth.is_some() || c.offset.is_some() =>
                {
                    return Err(err(
                        Code::ConflictingModifiers,
                        span,
                        "`fast_pattern:only` cannot be used with a negated content or with distance, within, offset or depth",
                    ));
                }
                FastPattern::Chop { offset, length }
                    if offset as usize + length as usize > c.pattern.len() =>
                {
                    return Err(err(
                        Code::ConflictingModifiers,
                        span,
                        format!(
                            "fast_pattern {offset},{length} exceeds the content's length {}",
                            c.pattern.len()
                        ),
                    ));
                }
                _ => {}
            }
            c.fast_pattern = Some(fp);
            st.has_fast_pattern = true;
        }
        "replace" => {
            let v = need_value(o)?;
            let (neg, bytes) = values::content_pattern(v).map_err(|e| match e {
                PatternError::Quote(m) => err(Code::BadString, span, format!("`replace`: {m}")),
                PatternError::Hex(m) => err(Code::BadHex, span, format!("`replace`: {m}")),
            })?;
            if neg {
                return Err(bad(o, "cannot be negated"));
            }
            // Suricata accepts `replace` without a content in IDS mode; keep it standalone then.
            match st.last_content {
                Some(_) => {
                    let (_, c) = st.last_content(name, span)?;
                    c.replace = Some(bytes);
                }
                None => st.push(OptionKind::Generic("replace", Some(v.to_string())), span),
            }
        }

        // ---- pcre ----
        "pcre" => {
            let (buffer_flag, p) = pcre(need_value(o)?)
                .map_err(|m| err(Code::BadPcre, span, format!("`pcre`: {m}")))?;
            let buf = match buffer_flag {
                Some(bname) => {
                    let sticky = keywords::sticky_by_name(bname)
                        .expect("pcre flag buffers are sticky buffers");
                    if let Some(cur) = &st.sticky {
                        if cur.name != bname {
                            return Err(err(
                                Code::BufferConflict,
                                span,
                                format!("pcre buffer flag selects `{bname}` while sticky buffer `{}` is set; reset it with `pkt_data`", cur.name),
                            ));
                        }
                    }
                    st.use_proto(sticky.proto, span, "pcre")?;
                    st.state_kw.get_or_insert(span);
                    match &st.sticky {
                        Some(cur) => cur.clone(),
                        None => BufferRef {
                            name: bname,
                            transforms: Vec::new(),
                        },
                    }
                }
                None => st.current_buffer(),
            };
            if p.relative && st.sticky.is_none() && !st.buffer_has_match(&buf) {
                return Err(err(
                    Code::RelativeWithoutMatch,
                    span,
                    "pcre with /R (relative) needs a preceding content or pcre in the same buffer",
                ));
            }
            st.push(OptionKind::Pcre(buf, p), span);
        }

        // ---- other payload keywords ----
        "byte_test" => {
            let t = byte_test(need_value(o)?).map_err(|m| bad(o, m))?;
            st.check_var(&t.nbytes, span, name)?;
            st.check_var(&t.value, span, name)?;
            st.check_var(&t.offset, span, name)?;
            let b = st.current_buffer();
            st.push(OptionKind::ByteTest(b, t), span);
        }
        "byte_jump" => {
            let t = byte_jump(need_value(o)?).map_err(|m| bad(o, m))?;
            st.check_var(&t.nbytes, span, name)?;
            st.check_var(&t.offset, span, name)?;
            let b = st.current_buffer();
            st.push(OptionKind::ByteJump(b, t), span);
        }
        "byte_extract" => {
            let t = byte_extract(need_value(o)?).map_err(|m| bad(o, m))?;
            st.byte_vars.push(t.name.clone());
            let b = st.current_buffer();
            st.push(OptionKind::ByteExtract(b, t), span);
        }
        "byte_math" => {
            let t = byte_math(need_value(o)?).map_err(|m| bad(o, m))?;
            st.check_var(&t.nbytes, span, name)?;
            st.check_var(&t.rvalue, span, name)?;
            st.byte_vars.push(t.result.clone());
            let b = st.current_buffer();
            st.push(OptionKind::ByteMath(b, t), span);
        }
        "isdataat" => {
            let t = isdataat(need_value(o)?).map_err(|m| bad(o, m))?;
            if let NumOrVar::Num(n) = t.position {
                if n > 65535 {
                    return Err(bad(o, format!("{n} is out of range (max 65535)")));
                }
            }
            st.check_var(&t.position, span, name)?;
            let b = st.current_buffer();
            st.push(OptionKind::Isdataat(b, t), span);
        }
        "bsize" => {
            let c = values::cmp(need_value(o)?, u64::MAX).map_err(|m| bad(o, m))?;
            if st.sticky.is_none() {
                return Err(err(
                    Code::BufferConflict,
                    span,
                    "`bsize` needs a sticky buffer before it",
                ));
            }
            let b = st.current_buffer();
            st.push(OptionKind::Bsize(b, c), span);
        }
        "base64_decode" => {
            let t = base64_decode(o.value).map_err(|m| bad(o, m))?;
            st.has_base64_decode = true;
            let b = st.current_buffer();
            st.push(OptionKind::Base64Decode(b, t), span);
        }

        // ---- flow and state ----
        "flow" => {
            let f = flow(need_value(o)?).map_err(|m| bad(o, m))?;
            st.only_stream |= f.only_stream;
            st.push(OptionKind::Flow(f), span);
        }
        "flowbits" => {
            let f = flowbits(need_value(o)?).map_err(|m| bad(o, m))?;
            st.push(OptionKind::Flowbits(f), span);
        }
        "xbits" => {
            let f = xbits(need_value(o)?).map_err(|m| bad(o, m))?;
            st.push(OptionKind::Xbits(f), span);
        }
        "flowint" => {
            let f = flowint(need_value(o)?).map_err(|m| bad(o, m))?;
            st.push(OptionKind::Flowint(f), span);
        }
        // Suricata only notices a second threshold/detection_filter when no sticky buffer is
        // active (it looks for the previous one in the active list); rules relying on that
        // load there, so they load here.
        "threshold" | "detection_filter" => {
            let is_df = name == "detection_filter";
            let (same, other) = if is_df {
                (st.has_detection_filter, st.has_threshold)
            } else {
                (st.has_threshold, st.has_detection_filter)
            };
            if same && st.sticky.is_none() {
                return Err(err(
                    Code::DuplicateKeyword,
                    span,
                    format!("only one `{name}` per rule"),
                ));
            }
            if other && st.sticky.is_none() {
                return Err(err(
                    Code::ConflictingModifiers,
                    span,
                    "`threshold` and `detection_filter` cannot be in the same rule",
                ));
            }
            let t = threshold(need_value(o)?, is_df).map_err(|m| bad(o, m))?;
            if is_df {
                st.has_detection_filter = true;
                st.push(OptionKind::DetectionFilter(t), span);
            } else {
                st.has_threshold = true;
                st.push(OptionKind::Threshold(t), span);
            }
        }
        "dsize" => {
            if st.has_dsize {
                return Err(err(
                    Code::DuplicateKeyword,
                    span,
                    "only one `dsize` per rule",
                ));
            }
            st.has_dsize = true;
            let c = values::cmp(need_value(o)?, 65535).map_err(|m| bad(o, m))?;
            st.packet_kw.get_or_insert(span);
            st.push(OptionKind::Dsize(c), span);
        }
        "urilen" => {
            let v = need_value(o)?;
            let (c, kind) = match v.split_once(',') {
                Some((c, k)) => match k.trim() {
                    "norm" => (c, Some("norm")),
                    "raw" => (c, Some("raw")),
                    k => return Err(bad(o, format!("`{k}`: expected norm or raw"))),
                },
                None => (v, None),
            };
            let c = values::cmp(c, 65535).map_err(|m| bad(o, m))?;
            st.use_proto(Some("http"), span, name)?;
            st.state_kw.get_or_insert(span);
            st.push(OptionKind::Urilen(c, kind), span);
        }
        "flags" | "tcp.flags" => {
            let f = tcp_flags(need_value(o)?).map_err(|m| bad(o, m))?;
            st.packet_kw.get_or_insert(span);
            st.push(OptionKind::TcpFlags(f), span);
        }
        "ip_proto" => {
            let v = need_value(o)?;
            let p = v.trim_start_matches(['!', '<', '>']).trim();
            if p.is_empty()
                || !(p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u8>().is_ok()
                    || IP_PROTO_NAMES.contains(&p.to_ascii_lowercase().as_str()))
            {
                return Err(bad(o, format!("unknown protocol `{p}`")));
            }
            if !matches!(st.protocol.0, "ip" | "ipv4" | "ip4" | "ipv6" | "ip6") {
                return Err(err(
                    Code::BufferConflict,
                    span,
                    format!(
                        "`ip_proto` can only be used in rules for protocol ip, not {}",
                        st.protocol.0
                    ),
                ));
            }
            st.packet_kw.get_or_insert(span);
            st.push(OptionKind::IpProto(v.to_string()), span);
        }
        "app-layer-protocol" => {
            let v = need_value(o)?;
            let (negated, p) = match v.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, v),
            };
            if !(p == "failed" || crate::header::protocol(p).is_some()) {
                return Err(bad(o, format!("unknown protocol `{p}`")));
            }
            st.push(
                OptionKind::AppLayerProtocol {
                    negated,
                    proto: p.to_string(),
                },
                span,
            );
        }
        "app-layer-event" => {
            let e = event_ref(need_value(o)?);
            if !e.name.contains('.') && !APP_LAYER_PACKET_EVENTS.contains(&e.name.as_str()) {
                return Err(bad(o, format!("`{}` is not an app-layer event (expected `proto.event` or one of the applayer_* events)", e.name)));
            }
            st.push(OptionKind::AppLayerEvent(e), span);
        }
        "decode-event" => {
            let e = event_ref(need_value(o)?);
            if !crate::events::is_decoder_event(&e.name) {
                return Err(bad(o, format!("unknown decoder event `{}`", e.name)));
            }
            st.push(OptionKind::DecodeEvent(e), span);
        }
        "stream-event" => {
            let e = event_ref(need_value(o)?);
            if !crate::events::is_stream_event(&e.name) {
                return Err(bad(o, format!("unknown stream event `{}`", e.name)));
            }
            st.push(OptionKind::StreamEvent(e), span);
        }
        "engine-event" => {
            let e = event_ref(need_value(o)?);
            st.push(OptionKind::EngineEvent(e), span);
        }

        _ => return other(st, o),
    }
    Ok(())
}

/// Sticky buffers, legacy modifiers, transforms, integer keywords and generic keywords.
fn other(st: &mut State, o: &RawOption<'_>) -> Result<(), Diagnostic> {
    let (name, span) = (&*o.name, o.span);
    if let Some(sticky) = keywords::sticky(name) {
        no_value(o)?;
        return st.set_sticky(sticky, span, name);
    }
    if let Some(&(_, bname)) = keywords::LEGACY_MODIFIERS.iter().find(|(m, _)| *m == name) {
        no_value(o)?;
        let ctx_err = || {
            err(
                Code::ModifierWithoutContent,
                span,
                format!("`{name}` needs a preceding `content` in the packet payload"),
            )
        };
        if st.sticky.is_some() {
            return Err(err(
                Code::BufferConflict,
                span,
                format!("`{name}` seen with a sticky buffer still set; reset it with `pkt_data` before using the modifier"),
            ));
        }
        let sticky =
            keywords::sticky_by_name(bname).expect("legacy modifiers select sticky buffers");
        st.use_proto(sticky.proto, span, name)?;
        st.state_kw.get_or_insert(span);
        // Like Suricata, the modifier moves the last content still in the payload list,
        // which need not be the last content of the rule.
        let idx = st
            .out
            .iter()
            .rposition(|o| matches!(&o.kind, OptionKind::Content(b, _) if b.is_payload()))
            .ok_or_else(ctx_err)?;
        let OptionKind::Content(buf, c) = &mut st.out[idx].kind else {
            return Err(ctx_err());
        };
        if c.rawbytes {
            return Err(err(
                Code::ConflictingModifiers,
                span,
                format!("`{name}` cannot be combined with `rawbytes`"),
            ));
        }
        *buf = BufferRef {
            name: bname,
            transforms: Vec::new(),
        };
        return Ok(());
    }
    if let Some(t) = keywords::find(keywords::TRANSFORMS, name)
        .map(Transform::Simple)
        .map(Ok)
        .or_else(|| match name {
            "pcrexform" => Some(
                need_value(o)
                    .and_then(|v| values::quoted(v).map_err(|m| bad(o, m)))
                    .map(Transform::Pcrexform),
            ),
            "xor" => Some(need_value(o).and_then(|v| {
                let key = values::quoted(v).map_err(|m| bad(o, m))?;
                if key.is_empty()
                    || key.len() % 2 != 0
                    || !key.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return Err(bad(o, "key must be an even number of hex digits"));
                }
                Ok(Transform::Xor(
                    (0..key.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&key[i..i + 2], 16).unwrap_or(0))
                        .collect(),
                ))
            })),
            _ => None,
        })
    {
        let t = t?;
        if !matches!(t, Transform::Pcrexform(_) | Transform::Xor(_)) {
            no_value(o)?;
        }
        let Some(buf) = st.sticky.as_mut() else {
            return Err(err(
                Code::BufferConflict,
                span,
                format!("transform `{name}` must follow a sticky buffer"),
            ));
        };
        buf.transforms.push(t);
        return Ok(());
    }
    if let Some(&(canon, _)) = keywords::INT_KEYWORDS
        .iter()
        .find(|(k, aliases)| *k == name || aliases.contains(&name))
    {
        let max = match canon {
            "ttl" | "tos" | "itype" | "icode" => 255,
            "tcp.ack" | "tcp.seq" => u32::MAX as u64,
            _ => 65535,
        };
        let c = values::cmp(need_value(o)?, max).map_err(|m| bad(o, m))?;
        // Suricata 7 does not count icmp_seq as a packet-only keyword.
        if canon != "icmp_seq" {
            st.packet_kw.get_or_insert(span);
        }
        st.push(OptionKind::IntCmp(canon, c), span);
        return Ok(());
    }
    if let Some(k) = keywords::find(keywords::FLAGS, name) {
        no_value(o)?;
        match k {
            "sameip" => {
                st.packet_kw.get_or_insert(span);
            }
            "ftpbounce" => st.use_proto(Some("ftp"), span, k)?,
            _ => {}
        }
        st.push(OptionKind::Generic(k, None), span);
        return Ok(());
    }
    if let Some(k) = keywords::find(keywords::PAYLOAD_GENERIC, name) {
        let v = need_value(o)?;
        let b = st.current_buffer();
        st.push(OptionKind::PayloadGeneric(b, k, Some(v.to_string())), span);
        return Ok(());
    }
    let generic = keywords::find(keywords::GENERIC, name).or_else(|| {
        keywords::GENERIC_ALIASES
            .iter()
            .find(|(a, _)| *a == name)
            .map(|(_, c)| *c)
    });
    if let Some(k) = generic {
        let v = o.value.map(str::to_string);
        validate_generic(k, v.as_deref()).map_err(|m| bad(o, m))?;
        if matches!(k, "ipopts" | "fragbits") {
            st.packet_kw.get_or_insert(span);
        }
        st.push(OptionKind::Generic(k, v), span);
        return Ok(());
    }
    Err(err(
        Code::UnknownKeyword,
        span,
        format!("unknown keyword `{name}`"),
    ))
}

/// Value checks for the generic keywords Suricata validates at load time.
fn validate_generic(k: &str, v: Option<&str>) -> Result<(), String> {
    let optional = matches!(
        k,
        "filestore"
            | "alert"
            | "tls_store"
            | "tls.fingerprint"
            | "tls.subject"
            | "tls.issuerdn"
            | "tls_cert_notbefore"
            | "tls_cert_notafter"
    );
    let v = match v {
        Some(v) if !v.is_empty() => v,
        _ if optional => return Ok(()),
        _ => return Err("needs a value".to_string()),
    };
    match k {
        "fragbits" => {
            let f = v.trim().trim_start_matches(['+', '*', '!']);
            if f.is_empty()
                || !f.bytes().all(|b| {
                    matches!(
                        b,
                        b'M' | b'D' | b'R' | b'm' | b'd' | b'r' | b'+' | b'*' | b'!'
                    )
                })
            {
                return Err(format!(
                    "`{v}`: expected fragment bits M, D, R with optional +, * or !"
                ));
            }
        }
        "stream_size" => {
            let parts: Vec<&str> = v.split(',').map(str::trim).collect();
            let ok = parts.len() == 3
                && matches!(parts[0], "server" | "client" | "both" | "either")
                && matches!(parts[1], "<" | ">" | "=" | "!=" | "<=" | ">=")
                && values::uint::<u32>(parts[2]).is_ok();
            if !ok {
                return Err(format!(
                    "`{v}`: expected `<server|client|both|either>,<op>,<number>`"
                ));
            }
        }
        "ipopts" => {
            const IPOPTS: &[&str] = &[
                "rr", "eol", "nop", "ts", "sec", "esec", "lsrr", "lsrre", "ssrr", "satid", "any",
            ];
            if !IPOPTS.contains(&v.trim()) {
                return Err(format!("`{v}` is not an IP option name"));
            }
        }
        "ssl_version" => {
            let negated = v.split(',').filter(|p| p.trim().starts_with('!')).count();
            if negated != 0 && negated != v.split(',').count() {
                return Err(format!("`{v}` mixes negated and plain versions"));
            }
            for p in v.split(',') {
                let p = p.trim().trim_start_matches('!');
                if !matches!(
                    p,
                    "sslv2" | "sslv3" | "tls1.0" | "tls1.1" | "tls1.2" | "tls1.3"
                ) {
                    return Err(format!("`{p}` is not an SSL/TLS version"));
                }
            }
        }
        "ssl_state" => {
            for p in v.split([',', '|']) {
                let p = p.trim().trim_start_matches('!');
                if !matches!(
                    p,
                    "client_hello" | "server_hello" | "client_keyx" | "server_keyx" | "unknown"
                ) {
                    return Err(format!("`{p}` is not an SSL state"));
                }
            }
        }
        "tls.version" => {
            let p = v.trim();
            let ok = matches!(p, "1.0" | "1.1" | "1.2" | "1.3" | "sslv2" | "sslv3")
                || values::uint_dec_or_hex(p).is_ok();
            if !ok {
                return Err(format!("`{p}` is not a TLS version"));
            }
        }
        "asn1" => {
            for p in v.split(',') {
                let p = p.trim();
                let (k, n) = p.split_once(char::is_whitespace).unwrap_or((p, ""));
                match k {
                    "bitstring_overflow" | "double_overflow" | "relative_offset"
                        if n.is_empty() || k == "relative_offset" => {}
                    "oversize_length" | "absolute_offset" | "relative_offset" => {
                        values::int::<i64>(n)?;
                    }
                    _ => return Err(format!("`{p}` is not an asn1 option")),
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Checks a content against the transforms of its buffer, as Suricata does.
fn check_transform_compat(buf: &BufferRef, c: &Content, span: Span) -> Result<(), Diagnostic> {
    for t in &buf.transforms {
        let bad = match t {
            Transform::Simple("to_lowercase") => c.pattern.iter().any(u8::is_ascii_uppercase),
            Transform::Simple("to_uppercase") => c.pattern.iter().any(u8::is_ascii_lowercase),
            Transform::Simple("strip_whitespace") => c.pattern.iter().any(u8::is_ascii_whitespace),
            Transform::Simple("compress_whitespace") => c
                .pattern
                .windows(2)
                .any(|w| w[0].is_ascii_whitespace() && w[1].is_ascii_whitespace()),
            _ => false,
        };
        if bad {
            return Err(err(
                Code::ConflictingModifiers,
                span,
                format!(
                    "content is incompatible with the `{}` transform; it can never match",
                    t.name()
                ),
            ));
        }
    }
    Ok(())
}

/// A content longer than the buffer's `bsize` can never match: Suricata rejects the rule.
fn validate_bsize(out: &[RuleOption]) -> Result<(), Diagnostic> {
    for o in out {
        let OptionKind::Bsize(buf, cmp) = &o.kind else {
            continue;
        };
        let max = match *cmp {
            Cmp::Eq(n) | Cmp::Le(n) => n,
            Cmp::Lt(n) => n.saturating_sub(1),
            Cmp::Range(_, b) => b.saturating_sub(1),
            _ => continue,
        };
        for c in out.iter().filter_map(|x| match &x.kind {
            OptionKind::Content(b, c) if b == buf && !c.negated => Some(c),
            _ => None,
        }) {
            if c.pattern.len() as u64 > max {
                return Err(err(
                    Code::ConflictingModifiers,
                    o.span,
                    format!(
                        "content of length {} can never fit a buffer whose bsize is at most {max}",
                        c.pattern.len()
                    ),
                ));
            }
        }
    }
    Ok(())
}

const APP_LAYER_PACKET_EVENTS: &[&str] = &[
    "applayer_detect_protocol_only_one_direction",
    "applayer_mismatch_protocol_both_directions",
    "applayer_no_tls_after_starttls",
    "applayer_proto_detection_skipped",
    "applayer_unexpected_protocol",
    "applayer_wrong_direction_first_data",
];

/// Protocol names `ip_proto` accepts (from /etc/protocols on Debian).
const IP_PROTO_NAMES: &[&str] = &[
    "ip",
    "hopopt",
    "icmp",
    "igmp",
    "ggp",
    "ipencap",
    "st",
    "tcp",
    "egp",
    "igp",
    "pup",
    "udp",
    "hmp",
    "xns-idp",
    "rdp",
    "iso-tp4",
    "dccp",
    "xtp",
    "ddp",
    "idpr-cmtp",
    "ipv6",
    "ipv6-route",
    "ipv6-frag",
    "idrp",
    "rsvp",
    "gre",
    "esp",
    "ah",
    "skip",
    "ipv6-icmp",
    "ipv6-nonxt",
    "ipv6-opts",
    "rspf",
    "vmtp",
    "eigrp",
    "ospf",
    "ax.25",
    "ipip",
    "etherip",
    "encap",
    "pim",
    "ipcomp",
    "vrrp",
    "l2tp",
    "isis",
    "sctp",
    "fc",
    "mobility-header",
    "udplite",
    "mpls-in-ip",
    "manet",
    "hip",
    "shim6",
    "wesp",
    "rohc",
    "ethernet",
];

fn event_ref(v: &str) -> EventRef {
    let v = v.trim();
    match v.strip_prefix('!') {
        Some(n) => EventRef {
            negated: true,
            name: n.trim().to_string(),
        },
        None => EventRef {
            negated: false,
            name: v.to_string(),
        },
    }
}

fn tag(v: &str) -> Result<Tag, String> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    let kind = match parts[0] {
        "session" => "session",
        "host" => "host",
        p => return Err(format!("`{p}`: expected session or host")),
    };
    let mut t = Tag {
        kind,
        count: None,
        metric: None,
        direction: None,
    };
    if parts.len() >= 3 {
        t.count = Some(values::uint(parts[1])?);
        t.metric = Some(match parts[2] {
            "packets" => "packets",
            "bytes" => "bytes",
            "seconds" => "seconds",
            p => return Err(format!("`{p}`: expected packets, bytes or seconds")),
        });
    } else if parts.len() == 2 {
        return Err(
            "expected `<session|host>,<count>,<packets|bytes|seconds>[,<src|dst>]`".to_string(),
        );
    }
    if parts.len() >= 4 {
        t.direction = Some(match parts[3] {
            "src" => "src",
            "dst" => "dst",
            p => return Err(format!("`{p}`: expected src or dst")),
        });
    }
    if parts.len() > 4 {
        return Err("too many fields".to_string());
    }
    Ok(t)
}

/// Parses `"/regex/flags"`; returns the legacy buffer flag's buffer separately.
fn pcre(v: &str) -> Result<(Option<&'static str>, Pcre), String> {
    let mut v = v.trim();
    let negated = if let Some(r) = v.strip_prefix('!') {
        v = r.trim_start();
        true
    } else {
        false
    };
    // Suricata strips an opening and a closing quote independently.
    let v = v.strip_prefix('"').unwrap_or(v);
    let v = v.strip_suffix('"').unwrap_or(v);
    let (v, captures) = pcre_captures(v)?;
    let body = v
        .strip_prefix('/')
        .ok_or_else(|| format!("`{v}`: expected `/regex/flags`"))?;
    let close = body
        .rfind('/')
        .ok_or_else(|| format!("`{v}`: expected `/regex/flags`"))?;
    let (pattern, flags) = (&body[..close], &body[close + 1..]);
    let mut buffer = None;
    let mut kept = String::new();
    let mut relative = false;
    for f in flags.chars() {
        if f == 'R' {
            relative = true;
        } else if let Some(&(_, b)) = keywords::PCRE_BUFFER_FLAGS.iter().find(|(c, _)| *c == f) {
            if buffer.is_some() {
                return Err("only one buffer flag (U, H, P, …) is allowed".to_string());
            }
            buffer = Some(b);
        } else if keywords::PCRE_FLAGS.contains(f) {
            if !kept.contains(f) {
                kept.push(f);
            }
        } else {
            return Err(format!("unknown flag `{f}`"));
        }
    }
    let mut flags: Vec<char> = kept.chars().collect();
    flags.sort_by_key(|c| keywords::PCRE_FLAGS.find(*c));
    if pattern.is_empty() {
        return Err("empty regular expression".to_string());
    }
    // Unescape `\;` and `\"`, which only protect the rule syntax.
    let pattern = unescape_rule_chars(pattern);
    Ok((
        buffer,
        Pcre {
            negated,
            pattern,
            flags: flags.into_iter().collect(),
            relative,
            captures,
        },
    ))
}

/// Splits a pcre value into `/regex/flags` and its capture list (`, flow:a, pkt:b`). The
/// list starts at the first `flow:`/`pkt:` that follows separators (`,`, ` `) which
/// follow `/regex/flags`, so a `flow:` inside the regex stays part of it.
fn pcre_captures(v: &str) -> Result<(&str, Vec<PcreCapture>), String> {
    let starts = v
        .match_indices("flow:")
        .chain(v.match_indices("pkt:"))
        .map(|(i, _)| i);
    let Some((head, list)) = starts
        .filter_map(|i| {
            let head = v[..i].trim_end_matches([',', ' ']);
            let seps = head.len() < i;
            let (regex, flags) = head.rsplit_once('/')?;
            let ok =
                seps && regex.starts_with('/') && flags.chars().all(|c| c.is_ascii_alphabetic());
            ok.then(|| (i, head, &v[i..]))
        })
        .min_by_key(|&(i, _, _)| i)
        .map(|(_, head, list)| (head, list))
    else {
        return Ok((v, Vec::new()));
    };
    Ok((head, capture_list(list)?))
}

/// `flow:name, pkt:name, …` (separated by commas and/or spaces).
fn capture_list(s: &str) -> Result<Vec<PcreCapture>, String> {
    use nom::{
        branch::alt,
        bytes::complete::{tag, take_while1},
        combinator::{all_consuming, map, value},
        multi::separated_list1,
        sequence::pair,
    };
    let sep = |c: char| c == ',' || c == ' ';
    let scope = alt((
        value(VarScope::Flow, tag("flow:")),
        value(VarScope::Pkt, tag("pkt:")),
    ));
    let entry = map(pair(scope, take_while1(|c| !sep(c))), |(scope, name)| {
        PcreCapture {
            scope,
            name: String::from(name),
        }
    });
    let mut list = all_consuming(separated_list1(take_while1(sep), entry));
    let r: nom::IResult<&str, Vec<PcreCapture>> = list(s.trim_end_matches(sep));
    r.map(|(_, l)| l)
        .map_err(|_| format!("`{s}`: expected a capture list `flow:<name>` or `pkt:<name>`, …"))
}

/// Removes the backslash from `\;` and `\"` (escapes of the rule syntax, not the regex).
fn unescape_rule_chars(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek() {
                Some(';') | Some('"') => {
                    out.push(chars.next().unwrap_or(';'));
                    continue;
                }
                Some('\\') => {
                    out.push('\\');
                    out.push('\\');
                    chars.next();
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

fn endian_or_base(
    f: &str,
    endian: &mut Option<Endian>,
    base: &mut NumBase,
    string: &mut bool,
) -> bool {
    match f {
        "big" => *endian = Some(Endian::Big),
        "little" => *endian = Some(Endian::Little),
        "dce" => *endian = Some(Endian::Dce),
        "string" => *string = true,
        "hex" => *base = NumBase::Hex,
        "dec" => *base = NumBase::Dec,
        "oct" => *base = NumBase::Oct,
        _ => return false,
    }
    true
}

fn finish_base(string: bool, base: NumBase) -> Result<NumBase, String> {
    match (string, base) {
        (true, NumBase::Binary) => Ok(NumBase::Dec),
        (true, b) => Ok(b),
        (false, NumBase::Binary) => Ok(NumBase::Binary),
        (false, _) => Err("hex/dec/oct need `string`".to_string()),
    }
}

fn bitmask(f: &str) -> Result<Option<u64>, String> {
    match f.strip_prefix("bitmask") {
        Some(m) => {
            let m = m.trim();
            values::uint_dec_or_hex(m).map(Some).map_err(|_| {
                format!("malformed bitmask value `{m}` (expected a number like 0xfc or 252)")
            })
        }
        None => Ok(None),
    }
}

fn check_nbytes(n: &NumOrVar<u32>, base: NumBase) -> Result<(), String> {
    if let NumOrVar::Num(n) = *n {
        if base == NumBase::Binary && n > 8 {
            return Err(format!("cannot convert {n} bytes without `string` (max 8)"));
        }
    }
    Ok(())
}

fn byte_test(v: &str) -> Result<ByteTest, String> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    if parts.len() < 4 {
        return Err("expected `<bytes>,[!]<op>,<value>,<offset>[,flags]`".to_string());
    }
    let nbytes = values::num_or_var(parts[0], values::uint::<u32>)?;
    let (negated, op) = match parts[1].strip_prefix('!') {
        Some(r) => (true, r.trim()),
        None => (false, parts[1]),
    };
    let op = match op {
        "<" => "<",
        ">" => ">",
        "=" | "" if negated || op == "=" => "=",
        "<=" => "<=",
        ">=" => ">=",
        "&" => "&",
        "^" => "^",
        o => return Err(format!("invalid operator `{o}`")),
    };
    let value = values::num_or_var(parts[2], values::uint_dec_or_hex)?;
    let offset = values::num_or_var(parts[3], values::int::<i32>)?;
    let mut t = ByteTest {
        nbytes,
        negated,
        op,
        value,
        offset,
        relative: false,
        endian: None,
        base: NumBase::Binary,
        bitmask: None,
    };
    let mut string = false;
    for f in &parts[4..] {
        if *f == "relative" {
            t.relative = true;
        } else if endian_or_base(f, &mut t.endian, &mut t.base, &mut string) {
        } else if let Some(m) = bitmask(f)? {
            t.bitmask = Some(m);
        } else {
            return Err(format!("unknown option `{f}`"));
        }
    }
    t.base = finish_base(string, t.base)?;
    check_nbytes(&t.nbytes, t.base)?;
    Ok(t)
}

fn byte_jump(v: &str) -> Result<ByteJump, String> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    if parts.len() < 2 {
        return Err("expected `<bytes>,<offset>[,flags]`".to_string());
    }
    let mut t = ByteJump {
        nbytes: values::num_or_var(parts[0], values::uint::<u32>)?,
        offset: values::num_or_var(parts[1], values::int::<i32>)?,
        relative: false,
        multiplier: None,
        endian: None,
        base: NumBase::Binary,
        align: false,
        from_beginning: false,
        from_end: false,
        post_offset: None,
        bitmask: None,
    };
    let mut string = false;
    for f in &parts[2..] {
        let (k, n) = f
            .split_once(char::is_whitespace)
            .map_or((*f, ""), |(k, n)| (k, n.trim()));
        match k {
            "relative" => t.relative = true,
            "align" => t.align = true,
            "from_beginning" => t.from_beginning = true,
            "from_end" => t.from_end = true,
            "multiplier" => t.multiplier = Some(values::uint(n)?),
            "post_offset" => t.post_offset = Some(values::int(n)?),
            "bitmask" => t.bitmask = bitmask(f)?,
            _ if endian_or_base(f, &mut t.endian, &mut t.base, &mut string) => {}
            _ => return Err(format!("unknown option `{f}`")),
        }
    }
    if t.from_beginning && t.from_end {
        return Err("`from_beginning` and `from_end` cannot be used together".to_string());
    }
    t.base = finish_base(string, t.base)?;
    check_nbytes(&t.nbytes, t.base)?;
    Ok(t)
}

fn byte_extract(v: &str) -> Result<ByteExtract, String> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    if parts.len() < 3 {
        return Err("expected `<bytes>,<offset>,<name>[,flags]`".to_string());
    }
    let name = parts[2];
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return Err(format!("`{name}` is not a variable name"));
    }
    let mut t = ByteExtract {
        nbytes: values::uint(parts[0])?,
        offset: values::int(parts[1])?,
        name: name.to_string(),
        relative: false,
        multiplier: None,
        endian: None,
        base: NumBase::Binary,
        align: None,
        bitmask: None,
    };
    let mut string = false;
    for f in &parts[3..] {
        let (k, n) = f
            .split_once(char::is_whitespace)
            .map_or((*f, ""), |(k, n)| (k, n.trim()));
        match k {
            "relative" => t.relative = true,
            "multiplier" => t.multiplier = Some(values::uint(n)?),
            "align" => t.align = Some(values::uint(n)?),
            "bitmask" => t.bitmask = bitmask(f)?,
            _ if endian_or_base(f, &mut t.endian, &mut t.base, &mut string) => {}
            _ => return Err(format!("unknown option `{f}`")),
        }
    }
    t.base = finish_base(string, t.base)?;
    check_nbytes(&NumOrVar::Num(t.nbytes), t.base)?;
    Ok(t)
}

fn byte_math(v: &str) -> Result<ByteMath, String> {
    let mut nbytes = None;
    let mut offset = None;
    let mut oper = None;
    let mut rvalue = None;
    let mut result = None;
    let mut relative = false;
    let mut endian = None;
    let mut base = NumBase::Binary;
    let mut bitmask_v = None;
    let mut string = false;
    for f in v.split(',').map(str::trim) {
        let (k, n) = f
            .split_once(char::is_whitespace)
            .map_or((f, ""), |(k, n)| (k, n.trim()));
        match k {
            "bytes" => nbytes = Some(values::num_or_var(n, values::uint::<u32>)?),
            "offset" => offset = Some(values::int::<i32>(n)?),
            "oper" => {
                oper = Some(match n {
                    "+" => "+",
                    "-" => "-",
                    "*" => "*",
                    "/" => "/",
                    "<<" => "<<",
                    ">>" => ">>",
                    o => return Err(format!("invalid operator `{o}`")),
                })
            }
            "rvalue" => rvalue = Some(values::num_or_var(n, values::uint_dec_or_hex)?),
            "result" => result = Some(n.to_string()),
            "relative" => relative = true,
            "endian" => {
                if !endian_or_base(n, &mut endian, &mut base, &mut string) || endian.is_none() {
                    return Err(format!("`{n}`: expected big, little or dce"));
                }
            }
            "string" => {
                string = true;
                if !matches!(n, "hex" | "dec" | "oct") {
                    return Err(format!("`{n}`: expected hex, dec or oct"));
                }
                endian_or_base(n, &mut endian, &mut base, &mut string);
            }
            "dce" => endian = Some(Endian::Dce),
            "bitmask" => bitmask_v = bitmask(f)?,
            _ => return Err(format!("unknown option `{f}`")),
        }
    }
    let (Some(nbytes), Some(offset), Some(oper), Some(rvalue), Some(result)) =
        (nbytes, offset, oper, rvalue, result)
    else {
        return Err("needs bytes, offset, oper, rvalue and result".to_string());
    };
    let base = finish_base(string, base)?;
    check_nbytes(&nbytes, base)?;
    Ok(ByteMath {
        nbytes,
        offset,
        oper,
        rvalue,
        result,
        relative,
        endian,
        base,
        bitmask: bitmask_v,
    })
}

fn isdataat(v: &str) -> Result<Isdataat, String> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    let (negated, pos) = match parts[0].strip_prefix('!') {
        Some(p) => (true, p.trim()),
        None => (false, parts[0]),
    };
    if pos.is_empty() {
        return Err("needs a position".to_string());
    }
    let mut t = Isdataat {
        negated,
        position: values::num_or_var(pos, values::uint::<u32>)?,
        relative: false,
        rawbytes: false,
    };
    for f in &parts[1..] {
        match *f {
            "relative" => t.relative = true,
            "rawbytes" => t.rawbytes = true,
            f => return Err(format!("unknown option `{f}`")),
        }
    }
    Ok(t)
}

fn base64_decode(v: Option<&str>) -> Result<Base64Decode, String> {
    let mut t = Base64Decode::default();
    let Some(v) = v else { return Ok(t) };
    for f in v.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let (k, n) = f
            .split_once(char::is_whitespace)
            .map_or((f, ""), |(k, n)| (k, n.trim()));
        match k {
            "bytes" => {
                let b: u32 = values::uint(n)?;
                if b == 0 {
                    return Err("bytes must be at least 1".to_string());
                }
                t.bytes = Some(b);
            }
            "offset" => t.offset = Some(values::uint(n)?),
            "relative" => t.relative = true,
            _ => return Err(format!("unknown option `{f}`")),
        }
    }
    Ok(t)
}

fn flow(v: &str) -> Result<Flow, String> {
    let mut f = Flow::default();
    for p in v.split(',').map(str::trim) {
        let dup = |set: bool| {
            if set {
                Err(format!("`{p}` given twice"))
            } else {
                Ok(())
            }
        };
        match p {
            "to_server" | "from_client" | "to_client" | "from_server" => {
                let ts = matches!(p, "to_server" | "from_client");
                match f.to_server {
                    Some(x) if x == ts => return Err(format!("`{p}` given twice")),
                    Some(_) => return Err("to_server and to_client cannot be combined".to_string()),
                    None => f.to_server = Some(ts),
                }
            }
            "established" | "not_established" | "stateless" => {
                dup(match p {
                    "established" => f.established,
                    "not_established" => f.not_established,
                    _ => f.stateless,
                })?;
                if f.established || f.not_established || f.stateless {
                    return Err(
                        "established, not_established and stateless exclude each other".to_string(),
                    );
                }
                match p {
                    "established" => f.established = true,
                    "not_established" => f.not_established = true,
                    _ => f.stateless = true,
                }
            }
            "only_stream" | "no_stream" => {
                dup(if p == "only_stream" {
                    f.only_stream
                } else {
                    f.no_stream
                })?;
                if f.only_stream || f.no_stream {
                    return Err("only_stream and no_stream exclude each other".to_string());
                }
                if p == "only_stream" {
                    f.only_stream = true
                } else {
                    f.no_stream = true
                }
            }
            "only_frag" | "no_frag" => {
                dup(if p == "only_frag" {
                    f.only_frag
                } else {
                    f.no_frag
                })?;
                if f.only_frag || f.no_frag {
                    return Err("only_frag and no_frag exclude each other".to_string());
                }
                if p == "only_frag" {
                    f.only_frag = true
                } else {
                    f.no_frag = true
                }
            }
            p => return Err(format!("invalid flow option `{p}`")),
        }
    }
    Ok(f)
}

fn bits_cmd(c: &str) -> Result<FlowbitsCmd, String> {
    Ok(match c {
        "set" => FlowbitsCmd::Set,
        "unset" => FlowbitsCmd::Unset,
        "toggle" => FlowbitsCmd::Toggle,
        "isset" => FlowbitsCmd::IsSet,
        "isnotset" => FlowbitsCmd::IsNotSet,
        "noalert" => FlowbitsCmd::NoAlert,
        c => return Err(format!("action `{c}` is not supported")),
    })
}

fn flowbits(v: &str) -> Result<Flowbits, String> {
    let (c, names) = match v.split_once(',') {
        Some((c, n)) => (c.trim(), Some(n.trim())),
        None => (v.trim(), None),
    };
    let cmd = bits_cmd(c)?;
    let names: Vec<String> = match (cmd, names) {
        (FlowbitsCmd::NoAlert, None) => Vec::new(),
        (FlowbitsCmd::NoAlert, Some(_)) => return Err("`noalert` takes no name".to_string()),
        (_, None) | (_, Some("")) => return Err(format!("`{c}` needs a flowbit name")),
        (_, Some(n)) => n.split('|').map(|s| s.trim().to_string()).collect(),
    };
    if names
        .iter()
        .any(|n| n.is_empty() || n.contains(char::is_whitespace))
    {
        return Err("bad flowbit name".to_string());
    }
    Ok(Flowbits { cmd, names })
}

fn xbits(v: &str) -> Result<Xbits, String> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    let usage =
        || format!("`{v}`: expected `<cmd>,<name>,track <ip_src|ip_dst|ip_pair>[,expire <secs>]`");
    if parts.len() < 3 {
        return Err(usage());
    }
    let cmd = bits_cmd(parts[0])?;
    let track = match parts[2]
        .split_once(char::is_whitespace)
        .map(|(k, t)| (k, t.trim()))
    {
        Some(("track", "ip_src")) => "ip_src",
        Some(("track", "ip_dst")) => "ip_dst",
        Some(("track", "ip_pair")) => "ip_pair",
        _ => return Err(usage()),
    };
    let mut expire = None;
    if let Some(e) = parts.get(3) {
        match e.split_once(char::is_whitespace) {
            Some(("expire", n)) => expire = Some(values::uint(n)?),
            _ => return Err(usage()),
        }
    }
    if parts.len() > 4 {
        return Err(usage());
    }
    Ok(Xbits {
        cmd,
        name: parts[1].to_string(),
        track,
        expire,
    })
}

fn flowint(v: &str) -> Result<Flowint, String> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    let usage = || format!("`{v}`: expected `<name>,<op>[,<value>]`");
    // Names and variable values are a letter followed by at least one more character.
    let is_name = |s: &str, extra: &[u8]| {
        s.len() >= 2
            && s.as_bytes()[0].is_ascii_alphabetic()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || extra.contains(&b))
    };
    if parts.len() < 2 || !is_name(parts[0], b"./") {
        return Err(usage());
    }
    let op = match parts[1] {
        "=" => "=",
        "+" => "+",
        "-" => "-",
        "==" => "==",
        "!=" => "!=",
        "<" => "<",
        "<=" => "<=",
        ">" => ">",
        ">=" => ">=",
        "isset" => "isset",
        "notset" => "notset",
        "isnotset" => "isnotset",
        _ => return Err(usage()),
    };
    let needs_value = !matches!(op, "isset" | "notset" | "isnotset");
    let value = match (needs_value, parts.get(2).filter(|v| !v.is_empty())) {
        (true, Some(v)) if is_name(v, b"") => Some(NumOrVar::Var(v.to_string())),
        (true, Some(v)) if v.len() <= 10 => Some(NumOrVar::Num(values::uint::<u64>(v)?)),
        (false, None) => None,
        _ => return Err(usage()),
    };
    if parts.len() > 3 {
        return Err(usage());
    }
    Ok(Flowint {
        name: parts[0].to_string(),
        op,
        value,
    })
}

fn threshold(v: &str, detection_filter: bool) -> Result<Threshold, String> {
    let mut kind = if detection_filter {
        Some(ThresholdType::DetectionFilter)
    } else {
        None
    };
    let (mut track, mut count, mut seconds) = (None, None, None);
    for p in v.split(',').map(str::trim) {
        let (k, n) = p
            .split_once(char::is_whitespace)
            .map(|(k, n)| (k, n.trim()))
            .ok_or_else(|| format!("`{p}`: expected `<key> <value>`"))?;
        match k {
            "type" if !detection_filter => {
                kind = Some(match n {
                    "limit" => ThresholdType::Limit,
                    "threshold" => ThresholdType::Threshold,
                    "both" => ThresholdType::Both,
                    n => return Err(format!("`{n}`: expected limit, threshold or both")),
                })
            }
            "track" => {
                track = Some(match n {
                    "by_src" => Track::BySrc,
                    "by_dst" => Track::ByDst,
                    "by_rule" => Track::ByRule,
                    "by_both" => Track::ByBoth,
                    n => {
                        return Err(format!(
                            "`{n}`: expected by_src, by_dst, by_rule or by_both"
                        ))
                    }
                })
            }
            "count" => count = Some(values::uint::<u32>(n)?),
            "seconds" => seconds = Some(values::uint::<u32>(n)?),
            k => return Err(format!("unknown field `{k}`")),
        }
    }
    match (kind, track, count, seconds) {
        (Some(kind), Some(track), Some(count), Some(seconds)) => Ok(Threshold {
            kind,
            track,
            count,
            seconds,
        }),
        _ if detection_filter => Err("needs track, count and seconds".to_string()),
        _ => Err("needs type, track, count and seconds".to_string()),
    }
}

fn tcp_flags(v: &str) -> Result<TcpFlags, String> {
    let (flags, ignore) = match v.split_once(',') {
        Some((f, i)) => (f.trim(), Some(i.trim())),
        None => (v.trim(), None),
    };
    let mut modifier = None;
    let mut set = String::new();
    for c in flags.chars() {
        match c {
            '+' | '*' | '!' | '-' => {
                if modifier.replace(c).is_some() {
                    return Err(format!("`{flags}`: more than one modifier"));
                }
            }
            'F' | 'S' | 'R' | 'P' | 'A' | 'U' | 'C' | 'E' | '0' | '1' | '2' => set.push(c),
            'f' | 's' | 'r' | 'p' | 'a' | 'u' | 'c' | 'e' => set.push(c.to_ascii_uppercase()),
            c if c.is_whitespace() => {}
            c => return Err(format!("`{c}` is not a TCP flag (F S R P A U C E 0 1 2)")),
        }
    }
    if set.is_empty() {
        return Err("no flags given".to_string());
    }
    if let Some(i) = ignore {
        if i.is_empty() || !i.chars().all(|c| "FSRPAUCE012fsrpauce".contains(c)) {
            return Err(format!("`{i}` is not a set of TCP flags"));
        }
    }
    Ok(TcpFlags {
        modifier,
        flags: set,
        ignore: ignore.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcre_capture_list_follows_the_flags() {
        let (buf, p) = pcre(r#""/^(.*)\/(\d+\.\d+)/VG, flow:key,flow:value""#).unwrap();
        assert_eq!(buf, Some("http.user_agent"));
        assert_eq!(p.pattern, r"^(.*)\/(\d+\.\d+)");
        assert_eq!(p.flags, "G");
        let caps: Vec<_> = p
            .captures
            .iter()
            .map(|c| (c.scope, c.name.as_str()))
            .collect();
        assert_eq!(caps, [(VarScope::Flow, "key"), (VarScope::Flow, "value")]);
        // Names may hold slashes; spaces and commas separate.
        let (_, p) = pcre(r#""/(a)(b)/i , pkt:x  flow:ua/ubuntu/repo""#).unwrap();
        assert_eq!(p.pattern, "(a)(b)");
        assert_eq!(p.flags, "i");
        let caps: Vec<_> = p
            .captures
            .iter()
            .map(|c| (c.scope, c.name.as_str()))
            .collect();
        assert_eq!(
            caps,
            [(VarScope::Pkt, "x"), (VarScope::Flow, "ua/ubuntu/repo")]
        );
    }

    #[test]
    fn flow_colon_inside_the_regex_is_not_a_capture() {
        let (_, p) = pcre(r#""/overflow: (x)/""#).unwrap();
        assert_eq!(p.pattern, "overflow: (x)");
        assert!(p.captures.is_empty());
        let (_, p) = pcre(r#""/a, flow:b/i""#).unwrap();
        assert_eq!(p.pattern, "a, flow:b");
        assert!(p.captures.is_empty());
        assert!(pcre(r#""/(a)/, flow:x, alert:y""#).is_err());
        assert!(pcre(r#""/(a)/, flow:""#).is_err());
    }
}
