//! The typed syntax tree of one Suricata rule.
//!
//! The tree is *normalised*: the legacy content-modifier form (`content:"x"; http_uri;`), the
//! legacy pcre flags (`/U`, `/H`, …) and the sticky-buffer form (`http.uri; content:"x";`) all
//! give the same tree, in which every payload-matching option carries the [`BufferRef`] it
//! inspects. Printing a tree (see `print.rs`) always uses the sticky form, so
//! `parse(print(parse(text))) == parse(text)`.
//!
//! Spans are byte ranges into the rule's text. They do not take part in equality, so that two
//! trees of the same rule written differently compare equal.

/// A byte range in the text a rule was parsed from.
#[derive(Clone, Copy, Debug, Default, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl PartialEq for Span {
    /// Spans are positions, not structure: every span equals every other.
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl std::hash::Hash for Span {
    /// Consistent with `PartialEq`: spans do not take part in hashing.
    fn hash<H: std::hash::Hasher>(&self, _state: &mut H) {}
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }
    /// The span shifted right by `by` bytes.
    pub fn offset(self, by: usize) -> Self {
        Span::new(self.start as usize + by, self.end as usize + by)
    }
}

/// One parsed rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub action: Action,
    pub protocol: Protocol,
    pub src: AddrSpec,
    pub src_ports: PortSpec,
    pub direction: Direction,
    pub dst: AddrSpec,
    pub dst_ports: PortSpec,
    /// The options in rule order (normalised: see the module docs).
    pub options: Vec<RuleOption>,
    /// `sid` (required).
    pub sid: u32,
    /// `gid`, 1 when absent.
    pub gid: u32,
    /// `rev`, 0 when absent.
    pub rev: u32,
    /// Span of the whole rule in its text.
    pub span: Span,
}

impl Rule {
    /// The rule's `msg`, if it has one.
    pub fn msg(&self) -> Option<&str> {
        self.options.iter().find_map(|o| match &o.kind {
            OptionKind::Msg(m) => Some(m.as_str()),
            _ => None,
        })
    }
    /// The rule's `classtype`, if it has one.
    pub fn classtype(&self) -> Option<&str> {
        self.options.iter().find_map(|o| match &o.kind {
            OptionKind::Classtype(c) => Some(c.as_str()),
            _ => None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Alert,
    Pass,
    Drop,
    Reject,
    RejectSrc,
    RejectDst,
    RejectBoth,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Alert => "alert",
            Action::Pass => "pass",
            Action::Drop => "drop",
            Action::Reject => "reject",
            Action::RejectSrc => "rejectsrc",
            Action::RejectDst => "rejectdst",
            Action::RejectBoth => "rejectboth",
        }
    }
    /// Looks an action up by name, ASCII case-insensitively as Suricata does.
    pub fn from_name(s: &str) -> Option<Self> {
        [
            Action::Alert,
            Action::Pass,
            Action::Drop,
            Action::Reject,
            Action::RejectSrc,
            Action::RejectDst,
            Action::RejectBoth,
        ]
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }
}

/// The rule's protocol: a packet protocol (`ip`, `tcp`, `udp`, `icmp`, …) or an application
/// protocol (`http`, `dns`, `tls`, …). Stored by its canonical name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Protocol(pub &'static str);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `->`
    To,
    /// `<>`
    Both,
}

/// An address specification: `any`, an address, a CIDR, a range, a variable, a list, or a
/// negation of any of those.
#[derive(Clone, Debug, PartialEq)]
pub enum AddrSpec {
    Any,
    /// An IPv4/IPv6 address with an optional prefix length (`10.0.0.0/8`, `::1`).
    Cidr(std::net::IpAddr, u8),
    /// `1.2.3.4-1.2.3.10` (an inclusive range).
    Range(std::net::IpAddr, std::net::IpAddr),
    /// `$HOME_NET`
    Var(String),
    List(Vec<AddrSpec>),
    Not(Box<AddrSpec>),
}

/// A port specification: `any`, a port, a range, a variable, a list, or a negation.
#[derive(Clone, Debug, PartialEq)]
pub enum PortSpec {
    Any,
    Port(u16),
    /// `a:b`, `:b` (from 0) or `a:` (to 65535), inclusive.
    Range(Option<u16>, Option<u16>),
    Var(String),
    List(Vec<PortSpec>),
    Not(Box<PortSpec>),
}

/// One option of a rule with the span of its text (`keyword:value;`).
#[derive(Clone, Debug, PartialEq)]
pub struct RuleOption {
    pub kind: OptionKind,
    pub span: Span,
}

/// The inspection buffer a payload keyword matches against, with the transforms applied to
/// it. `pkt_data` (the packet or stream payload) is [`BufferRef::PAYLOAD`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BufferRef {
    /// Canonical sticky-buffer name, e.g. `http.uri`, `file.data`, `pkt_data`.
    pub name: &'static str,
    pub transforms: Vec<Transform>,
}

impl BufferRef {
    pub const PAYLOAD: BufferRef = BufferRef {
        name: "pkt_data",
        transforms: Vec::new(),
    };
    pub fn is_payload(&self) -> bool {
        self.name == "pkt_data" && self.transforms.is_empty()
    }
}

/// A transform applied to a sticky buffer before matching.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Transform {
    /// A transform without argument: `to_lowercase`, `dotprefix`, `url_decode`, …
    Simple(&'static str),
    /// `pcrexform:"<regex>"`
    Pcrexform(String),
    /// `xor:"<hex key>"`
    Xor(Vec<u8>),
}

impl Transform {
    pub fn name(&self) -> &'static str {
        match self {
            Transform::Simple(n) => n,
            Transform::Pcrexform(_) => "pcrexform",
            Transform::Xor(_) => "xor",
        }
    }
}

/// A number or the name of a variable set by `byte_extract`/`byte_math`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NumOrVar<T> {
    Num(T),
    Var(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FastPattern {
    /// `fast_pattern`
    Yes,
    /// `fast_pattern:only` (deprecated in Suricata 7, accepted)
    Only,
    /// `fast_pattern:<offset>,<length>`
    Chop { offset: u16, length: u16 },
}

/// `content` with all of its modifiers.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Content {
    pub pattern: Vec<u8>,
    pub negated: bool,
    pub nocase: bool,
    pub rawbytes: bool,
    pub depth: Option<NumOrVar<u32>>,
    pub offset: Option<NumOrVar<u32>>,
    pub distance: Option<NumOrVar<i32>>,
    pub within: Option<NumOrVar<i32>>,
    pub startswith: bool,
    pub endswith: bool,
    pub fast_pattern: Option<FastPattern>,
    pub replace: Option<Vec<u8>>,
}

impl Content {
    /// Whether the match is relative to the previous one (`distance`/`within`).
    pub fn is_relative(&self) -> bool {
        self.distance.is_some() || self.within.is_some()
    }
}

/// `pcre:"/regex/flags"`. Legacy buffer flags (`U`, `H`, `P`, …) are normalised into the
/// option's [`BufferRef`]; `flags` keeps only the matching flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pcre {
    pub negated: bool,
    pub pattern: String,
    /// Matching flags in canonical order (`i s m x A E G O B`); `R` is `relative`.
    pub flags: String,
    /// `R`: relative to the previous match.
    pub relative: bool,
    /// Capture groups stored into variables, listed after the flags
    /// (`"/(a+)(b+)/i, flow:x, pkt:y"`): the n-th entry takes group n.
    pub captures: Vec<PcreCapture>,
}

/// One entry of a pcre's capture list: the variable a capture group is stored into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcreCapture {
    pub scope: VarScope,
    pub name: String,
}

/// Where a captured variable lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VarScope {
    /// `pkt:` — the packet (EVE `metadata.pktvars` of its alerts).
    Pkt,
    /// `flow:` — the flow (EVE `metadata.flowvars`).
    Flow,
}

impl VarScope {
    /// The prefix as written in rules (`pkt`, `flow`).
    pub fn as_str(self) -> &'static str {
        match self {
            VarScope::Pkt => "pkt",
            VarScope::Flow => "flow",
        }
    }
}

/// A comparison `op value` as used by dsize, bsize, urilen, ttl, …
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Cmp {
    Eq(u64),
    Ne(u64),
    Lt(u64),
    Gt(u64),
    Le(u64),
    Ge(u64),
    /// `min<>max` (exclusive, as Suricata)
    Range(u64, u64),
    /// `!min-max` or `!min<>max`
    NotRange(u64, u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endian {
    Big,
    Little,
    /// DCE/RPC data representation
    Dce,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NumBase {
    /// Raw binary bytes
    Binary,
    /// `string,dec`
    Dec,
    /// `string,hex`
    Hex,
    /// `string,oct`
    Oct,
}

/// `byte_test:<bytes>,[!]<op>,<value>,<offset>[,flags]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByteTest {
    pub nbytes: NumOrVar<u32>,
    pub negated: bool,
    /// `<`, `>`, `=`, `<=`, `>=`, `&`, `^`
    pub op: &'static str,
    pub value: NumOrVar<u64>,
    pub offset: NumOrVar<i32>,
    pub relative: bool,
    pub endian: Option<Endian>,
    pub base: NumBase,
    pub bitmask: Option<u64>,
}

/// `byte_jump:<bytes>,<offset>[,flags]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByteJump {
    pub nbytes: NumOrVar<u32>,
    pub offset: NumOrVar<i32>,
    pub relative: bool,
    pub multiplier: Option<u32>,
    pub endian: Option<Endian>,
    pub base: NumBase,
    pub align: bool,
    pub from_beginning: bool,
    pub from_end: bool,
    pub post_offset: Option<i32>,
    pub bitmask: Option<u64>,
}

/// `byte_extract:<bytes>,<offset>,<name>[,flags]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByteExtract {
    pub nbytes: u32,
    pub offset: i32,
    pub name: String,
    pub relative: bool,
    pub multiplier: Option<u32>,
    pub endian: Option<Endian>,
    pub base: NumBase,
    pub align: Option<u32>,
    pub bitmask: Option<u64>,
}

/// `byte_math:bytes <n>, offset <o>, oper <op>, rvalue <v>, result <name>[, …]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByteMath {
    pub nbytes: NumOrVar<u32>,
    pub offset: i32,
    /// `+ - * / << >>`
    pub oper: &'static str,
    pub rvalue: NumOrVar<u64>,
    pub result: String,
    pub relative: bool,
    pub endian: Option<Endian>,
    pub base: NumBase,
    pub bitmask: Option<u64>,
}

/// `isdataat:[!]<n>[,relative][,rawbytes]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Isdataat {
    pub negated: bool,
    pub position: NumOrVar<u32>,
    pub relative: bool,
    pub rawbytes: bool,
}

/// `flow:` options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    /// `to_server`/`from_client` → Some(true); `to_client`/`from_server` → Some(false).
    pub to_server: Option<bool>,
    pub established: bool,
    pub not_established: bool,
    pub stateless: bool,
    pub only_stream: bool,
    pub no_stream: bool,
    pub only_frag: bool,
    pub no_frag: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowbitsCmd {
    Set,
    Unset,
    Toggle,
    IsSet,
    IsNotSet,
    NoAlert,
}

/// `flowbits:<cmd>[,<name>[|<name>…]]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flowbits {
    pub cmd: FlowbitsCmd,
    /// Several names only for `isset`/`isnotset` (joined by `|`, meaning "any of" / "all of").
    pub names: Vec<String>,
}

/// `xbits:<cmd>,<name>,track <ip_src|ip_dst|ip_pair>[,expire <secs>]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Xbits {
    pub cmd: FlowbitsCmd,
    pub name: String,
    pub track: &'static str,
    pub expire: Option<u32>,
}

/// `flowint:<name>,<op>[,<value>]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flowint {
    pub name: String,
    /// `=`, `+`, `-`, `==`, `!=`, `<`, `<=`, `>`, `>=`, `isset`, `notset`, `isnotset`
    pub op: &'static str,
    pub value: Option<NumOrVar<u64>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ThresholdType {
    Limit,
    Threshold,
    Both,
    /// Only in `detection_filter` (no type field).
    DetectionFilter,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Track {
    BySrc,
    ByDst,
    ByRule,
    ByBoth,
    /// Suricata 8's `by_flow`; the Suricata 7.0 parser rejects it, so parsed rules never have it.
    ByFlow,
}

impl Track {
    pub fn as_str(self) -> &'static str {
        match self {
            Track::BySrc => "by_src",
            Track::ByDst => "by_dst",
            Track::ByRule => "by_rule",
            Track::ByBoth => "by_both",
            Track::ByFlow => "by_flow",
        }
    }
}

/// `threshold:` / `detection_filter:`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Threshold {
    pub kind: ThresholdType,
    pub track: Track,
    pub count: u32,
    pub seconds: u32,
}

/// `reference:<system>,<id>`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub system: String,
    pub id: String,
}

/// `tcp.flags` / `flags:[modifier]<flags>[,<ignored>]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpFlags {
    /// `+`, `*`, `!` or none
    pub modifier: Option<char>,
    /// Flags in canonical order, `0` meaning "no flags".
    pub flags: String,
    pub ignore: Option<String>,
}

/// `app-layer-event`, `decode-event`, `stream-event`, `engine-event`: `[proto.]name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRef {
    pub negated: bool,
    pub name: String,
}

/// `tag:<session|host>[,<count>,<packets|bytes|seconds>[,<src|dst>]]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub kind: &'static str,
    pub count: Option<u32>,
    pub metric: Option<&'static str>,
    pub direction: Option<&'static str>,
}

/// `base64_decode[:bytes <n>][,offset <n>][,relative]`
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Base64Decode {
    pub bytes: Option<u32>,
    pub offset: Option<u32>,
    pub relative: bool,
}

/// What one option says. Payload keywords (`Content`, `Pcre`, `Byte*`, `Isdataat`, `Bsize`,
/// `Base64Decode`, `PayloadGeneric`) carry the buffer they inspect.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum OptionKind {
    // --- meta ---
    Msg(String),
    Sid(u32),
    Rev(u32),
    Gid(u32),
    Classtype(String),
    Priority(u32),
    Reference(Reference),
    /// `metadata:key value, key value` (a value may be empty)
    Metadata(Vec<(String, String)>),
    /// `target:src_ip|dest_ip`
    Target(&'static str),
    Noalert,
    Tag(Tag),

    // --- payload matching (buffer-bound) ---
    Content(BufferRef, Content),
    Pcre(BufferRef, Pcre),
    ByteTest(BufferRef, ByteTest),
    ByteJump(BufferRef, ByteJump),
    ByteExtract(BufferRef, ByteExtract),
    ByteMath(BufferRef, ByteMath),
    Isdataat(BufferRef, Isdataat),
    Bsize(BufferRef, Cmp),
    Base64Decode(BufferRef, Base64Decode),
    /// A buffer-bound keyword kept with its raw value (dataset, datarep, lua, entropy, …).
    PayloadGeneric(BufferRef, &'static str, Option<String>),

    // --- packet / flow ---
    Flow(Flow),
    Flowbits(Flowbits),
    Xbits(Xbits),
    Flowint(Flowint),
    Threshold(Threshold),
    DetectionFilter(Threshold),
    Dsize(Cmp),
    Urilen(Cmp, Option<&'static str>),
    /// Integer comparisons on header fields: `ttl`, `tos`, `id`, `itype`, `icode`,
    /// `icmp_id`, `icmp_seq`, `tcp.ack`, `tcp.seq`, `tcp.window`, `tcp.mss`, `fragoffset`,
    /// `stream_size` (as raw), … Keyed by canonical keyword name.
    IntCmp(&'static str, Cmp),
    TcpFlags(TcpFlags),
    /// `ip_proto:[!<>]<number or name>`
    IpProto(String),
    /// `app-layer-protocol:[!]<proto>`
    AppLayerProtocol {
        negated: bool,
        proto: String,
    },
    AppLayerEvent(EventRef),
    DecodeEvent(EventRef),
    StreamEvent(EventRef),
    EngineEvent(EventRef),
    /// A keyword without typed representation, kept with its raw value. Known to Suricata 7;
    /// the detection engine reports the ones it does not implement.
    Generic(&'static str, Option<String>),
}

impl OptionKind {
    /// The buffer a payload keyword inspects.
    pub fn buffer(&self) -> Option<&BufferRef> {
        match self {
            OptionKind::Content(b, _)
            | OptionKind::Pcre(b, _)
            | OptionKind::ByteTest(b, _)
            | OptionKind::ByteJump(b, _)
            | OptionKind::ByteExtract(b, _)
            | OptionKind::ByteMath(b, _)
            | OptionKind::Isdataat(b, _)
            | OptionKind::Bsize(b, _)
            | OptionKind::Base64Decode(b, _)
            | OptionKind::PayloadGeneric(b, _, _) => Some(b),
            _ => None,
        }
    }
}
