//! Canonical printing: a [`Rule`] back to rule text that parses to the same tree.
//!
//! The canonical form uses sticky buffers (never legacy modifiers or pcre buffer flags),
//! canonical keyword names, and a fixed order of content modifiers.

use std::fmt::{self, Write};

use crate::ast::*;
use crate::values::{escape_quoted, print_cmp, print_pattern};

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(256);
        write_rule(self, &mut s);
        f.write_str(&s)
    }
}

impl fmt::Display for AddrSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrSpec::Any => f.write_str("any"),
            AddrSpec::Cidr(a, p) if (a.is_ipv4() && *p == 32) || (a.is_ipv6() && *p == 128) => {
                write!(f, "{a}")
            }
            AddrSpec::Cidr(a, p) => write!(f, "{a}/{p}"),
            AddrSpec::Range(a, b) => write!(f, "{a}-{b}"),
            AddrSpec::Var(v) => write!(f, "${v}"),
            AddrSpec::List(l) => write_list(f, l),
            AddrSpec::Not(a) => write!(f, "!{a}"),
        }
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::Any => f.write_str("any"),
            PortSpec::Port(p) => write!(f, "{p}"),
            PortSpec::Range(a, b) => {
                if let Some(a) = a {
                    write!(f, "{a}")?;
                }
                f.write_char(':')?;
                if let Some(b) = b {
                    write!(f, "{b}")?;
                }
                Ok(())
            }
            PortSpec::Var(v) => write!(f, "${v}"),
            PortSpec::List(l) => write_list(f, l),
            PortSpec::Not(p) => write!(f, "!{p}"),
        }
    }
}

/// `[a,b,c]`, as address and port lists print.
fn write_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    f.write_char('[')?;
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        write!(f, "{x}")?;
    }
    f.write_char(']')
}

fn nv<T: fmt::Display>(v: &NumOrVar<T>, out: &mut String) {
    let _ = match v {
        NumOrVar::Num(n) => write!(out, "{n}"),
        NumOrVar::Var(s) => write!(out, "{s}"),
    };
}

fn endian(e: Option<Endian>, out: &mut String) {
    match e {
        Some(Endian::Big) => out.push_str(",big"),
        Some(Endian::Little) => out.push_str(",little"),
        Some(Endian::Dce) => out.push_str(",dce"),
        None => {}
    }
}

fn base(b: NumBase, out: &mut String) {
    match b {
        NumBase::Binary => {}
        NumBase::Dec => out.push_str(",string,dec"),
        NumBase::Hex => out.push_str(",string,hex"),
        NumBase::Oct => out.push_str(",string,oct"),
    }
}

fn write_rule(r: &Rule, s: &mut String) {
    let _ = write!(
        s,
        "{} {} {} {} {} {} {} (",
        r.action.as_str(),
        r.protocol.0,
        r.src,
        r.src_ports,
        match r.direction {
            Direction::To => "->",
            Direction::Both => "<>",
        },
        r.dst,
        r.dst_ports
    );
    let mut current = BufferRef::PAYLOAD;
    let mut first = true;
    for o in &r.options {
        if let Some(b) = o.kind.buffer() {
            if *b != current {
                if !first {
                    s.push(' ');
                }
                first = false;
                s.push_str(b.name);
                s.push(';');
                for t in &b.transforms {
                    s.push(' ');
                    match t {
                        Transform::Simple(n) => s.push_str(n),
                        Transform::Pcrexform(p) => {
                            s.push_str("pcrexform:\"");
                            escape_quoted(p, s);
                            s.push('"');
                        }
                        Transform::Xor(k) => {
                            s.push_str("xor:\"");
                            for b in k {
                                let _ = write!(s, "{b:02x}");
                            }
                            s.push('"');
                        }
                    }
                    s.push(';');
                }
                current = b.clone();
            }
        }
        if !first {
            s.push(' ');
        }
        first = false;
        write_option(&o.kind, s);
        s.push(';');
    }
    s.push(')');
}

fn write_option(k: &OptionKind, s: &mut String) {
    match k {
        OptionKind::Msg(m) => {
            s.push_str("msg:\"");
            escape_quoted(m, s);
            s.push('"');
        }
        OptionKind::Sid(n) => {
            let _ = write!(s, "sid:{n}");
        }
        OptionKind::Rev(n) => {
            let _ = write!(s, "rev:{n}");
        }
        OptionKind::Gid(n) => {
            let _ = write!(s, "gid:{n}");
        }
        OptionKind::Classtype(c) => {
            let _ = write!(s, "classtype:{c}");
        }
        OptionKind::Priority(p) => {
            let _ = write!(s, "priority:{p}");
        }
        OptionKind::Reference(r) => {
            let _ = write!(s, "reference:{},{}", r.system, r.id);
        }
        OptionKind::Metadata(items) => {
            s.push_str("metadata:");
            for (i, (k, v)) in items.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                s.push_str(k);
                if !v.is_empty() {
                    s.push(' ');
                    s.push_str(v);
                }
            }
        }
        OptionKind::Target(t) => {
            let _ = write!(s, "target:{t}");
        }
        OptionKind::Noalert => s.push_str("noalert"),
        OptionKind::Tag(t) => {
            let _ = write!(s, "tag:{}", t.kind);
            if let (Some(c), Some(m)) = (t.count, t.metric) {
                let _ = write!(s, ",{c},{m}");
            }
            if let Some(d) = t.direction {
                let _ = write!(s, ",{d}");
            }
        }
        OptionKind::Content(_, c) => write_content(c, s),
        OptionKind::Pcre(_, p) => {
            s.push_str("pcre:");
            if p.negated {
                s.push('!');
            }
            s.push_str("\"/");
            for ch in p.pattern.chars() {
                if ch == ';' || ch == '"' {
                    s.push('\\');
                }
                s.push(ch);
            }
            s.push('/');
            s.push_str(&p.flags);
            if p.relative {
                s.push('R');
            }
            for c in &p.captures {
                let _ = write!(s, ", {}:{}", c.scope.as_str(), c.name);
            }
            s.push('"');
        }
        OptionKind::ByteTest(_, t) => {
            s.push_str("byte_test:");
            nv(&t.nbytes, s);
            s.push(',');
            if t.negated {
                s.push('!');
            }
            s.push_str(t.op);
            s.push(',');
            nv(&t.value, s);
            s.push(',');
            nv(&t.offset, s);
            if t.relative {
                s.push_str(",relative");
            }
            endian(t.endian, s);
            base(t.base, s);
            if let Some(m) = t.bitmask {
                let _ = write!(s, ",bitmask 0x{m:x}");
            }
        }
        OptionKind::ByteJump(_, t) => {
            s.push_str("byte_jump:");
            nv(&t.nbytes, s);
            s.push(',');
            nv(&t.offset, s);
            if t.relative {
                s.push_str(",relative");
            }
            if let Some(m) = t.multiplier {
                let _ = write!(s, ",multiplier {m}");
            }
            endian(t.endian, s);
            base(t.base, s);
            if t.align {
                s.push_str(",align");
            }
            if t.from_beginning {
                s.push_str(",from_beginning");
            }
            if t.from_end {
                s.push_str(",from_end");
            }
            if let Some(p) = t.post_offset {
                let _ = write!(s, ",post_offset {p}");
            }
            if let Some(m) = t.bitmask {
                let _ = write!(s, ",bitmask 0x{m:x}");
            }
        }
        OptionKind::ByteExtract(_, t) => {
            let _ = write!(s, "byte_extract:{},{},{}", t.nbytes, t.offset, t.name);
            if t.relative {
                s.push_str(",relative");
            }
            if let Some(m) = t.multiplier {
                let _ = write!(s, ",multiplier {m}");
            }
            endian(t.endian, s);
            base(t.base, s);
            if let Some(a) = t.align {
                let _ = write!(s, ",align {a}");
            }
            if let Some(m) = t.bitmask {
                let _ = write!(s, ",bitmask 0x{m:x}");
            }
        }
        OptionKind::ByteMath(_, t) => {
            s.push_str("byte_math:bytes ");
            nv(&t.nbytes, s);
            let _ = write!(s, ", offset {}, oper {}, rvalue ", t.offset, t.oper);
            nv(&t.rvalue, s);
            let _ = write!(s, ", result {}", t.result);
            if t.relative {
                s.push_str(", relative");
            }
            match t.endian {
                Some(Endian::Big) => s.push_str(", endian big"),
                Some(Endian::Little) => s.push_str(", endian little"),
                Some(Endian::Dce) => s.push_str(", dce"),
                None => {}
            }
            match t.base {
                NumBase::Binary => {}
                NumBase::Dec => s.push_str(", string dec"),
                NumBase::Hex => s.push_str(", string hex"),
                NumBase::Oct => s.push_str(", string oct"),
            }
            if let Some(m) = t.bitmask {
                let _ = write!(s, ", bitmask 0x{m:x}");
            }
        }
        OptionKind::Isdataat(_, t) => {
            s.push_str("isdataat:");
            if t.negated {
                s.push('!');
            }
            nv(&t.position, s);
            if t.relative {
                s.push_str(",relative");
            }
            if t.rawbytes {
                s.push_str(",rawbytes");
            }
        }
        OptionKind::Bsize(_, c) => {
            s.push_str("bsize:");
            print_cmp(c, s);
        }
        OptionKind::Base64Decode(_, t) => {
            s.push_str("base64_decode");
            let mut parts = Vec::new();
            if let Some(b) = t.bytes {
                parts.push(format!("bytes {b}"));
            }
            if let Some(o) = t.offset {
                parts.push(format!("offset {o}"));
            }
            if t.relative {
                parts.push("relative".to_string());
            }
            if !parts.is_empty() {
                s.push(':');
                s.push_str(&parts.join(","));
            }
        }
        OptionKind::PayloadGeneric(_, k, v) | OptionKind::Generic(k, v) => {
            s.push_str(k);
            if let Some(v) = v {
                s.push(':');
                s.push_str(v);
            }
        }
        OptionKind::Flow(f) => {
            let mut parts: Vec<&str> = Vec::new();
            match f.to_server {
                Some(true) => parts.push("to_server"),
                Some(false) => parts.push("to_client"),
                None => {}
            }
            for (set, name) in [
                (f.established, "established"),
                (f.not_established, "not_established"),
                (f.stateless, "stateless"),
                (f.only_stream, "only_stream"),
                (f.no_stream, "no_stream"),
                (f.only_frag, "only_frag"),
                (f.no_frag, "no_frag"),
            ] {
                if set {
                    parts.push(name);
                }
            }
            let _ = write!(s, "flow:{}", parts.join(","));
        }
        OptionKind::Flowbits(f) => {
            let _ = write!(s, "flowbits:{}", bits_cmd(f.cmd));
            if !f.names.is_empty() {
                let _ = write!(s, ",{}", f.names.join("|"));
            }
        }
        OptionKind::Xbits(x) => {
            let _ = write!(s, "xbits:{},{},track {}", bits_cmd(x.cmd), x.name, x.track);
            if let Some(e) = x.expire {
                let _ = write!(s, ",expire {e}");
            }
        }
        OptionKind::Flowint(f) => {
            let _ = write!(s, "flowint:{},{}", f.name, f.op);
            if let Some(v) = &f.value {
                s.push(',');
                nv(v, s);
            }
        }
        OptionKind::Threshold(t) | OptionKind::DetectionFilter(t) => {
            let kind = match t.kind {
                ThresholdType::Limit => Some("limit"),
                ThresholdType::Threshold => Some("threshold"),
                ThresholdType::Both => Some("both"),
                ThresholdType::DetectionFilter => None,
            };
            match kind {
                Some(k) => {
                    let _ = write!(s, "threshold:type {k}, ");
                }
                None => s.push_str("detection_filter:"),
            }
            let _ = write!(
                s,
                "track {}, count {}, seconds {}",
                t.track.as_str(),
                t.count,
                t.seconds
            );
        }
        OptionKind::Dsize(c) => {
            s.push_str("dsize:");
            print_cmp(c, s);
        }
        OptionKind::Urilen(c, kind) => {
            s.push_str("urilen:");
            print_cmp(c, s);
            if let Some(k) = kind {
                let _ = write!(s, ",{k}");
            }
        }
        OptionKind::IntCmp(k, c) => {
            let _ = write!(s, "{k}:");
            print_cmp(c, s);
        }
        OptionKind::TcpFlags(t) => {
            s.push_str("flags:");
            if let Some(m) = t.modifier {
                s.push(m);
            }
            s.push_str(&t.flags);
            if let Some(i) = &t.ignore {
                let _ = write!(s, ",{i}");
            }
        }
        OptionKind::IpProto(p) => {
            let _ = write!(s, "ip_proto:{p}");
        }
        OptionKind::AppLayerProtocol { negated, proto } => {
            let _ = write!(
                s,
                "app-layer-protocol:{}{proto}",
                if *negated { "!" } else { "" }
            );
        }
        OptionKind::AppLayerEvent(e) => event("app-layer-event", e, s),
        OptionKind::DecodeEvent(e) => event("decode-event", e, s),
        OptionKind::StreamEvent(e) => event("stream-event", e, s),
        OptionKind::EngineEvent(e) => event("engine-event", e, s),
    }
}

fn event(k: &str, e: &EventRef, s: &mut String) {
    let _ = write!(s, "{k}:{}{}", if e.negated { "!" } else { "" }, e.name);
}

fn bits_cmd(c: FlowbitsCmd) -> &'static str {
    match c {
        FlowbitsCmd::Set => "set",
        FlowbitsCmd::Unset => "unset",
        FlowbitsCmd::Toggle => "toggle",
        FlowbitsCmd::IsSet => "isset",
        FlowbitsCmd::IsNotSet => "isnotset",
        FlowbitsCmd::NoAlert => "noalert",
    }
}

fn write_content(c: &Content, s: &mut String) {
    s.push_str("content:");
    if c.negated {
        s.push('!');
    }
    s.push('"');
    print_pattern(&c.pattern, s);
    s.push('"');
    if c.nocase {
        s.push_str("; nocase");
    }
    if c.rawbytes {
        s.push_str("; rawbytes");
    }
    if c.startswith {
        s.push_str("; startswith");
    }
    for (name, v) in [("depth", &c.depth), ("offset", &c.offset)] {
        if let Some(v) = v {
            let _ = write!(s, "; {name}:");
            nv(v, s);
        }
    }
    for (name, v) in [("distance", &c.distance), ("within", &c.within)] {
        if let Some(v) = v {
            let _ = write!(s, "; {name}:");
            nv(v, s);
        }
    }
    if c.endswith {
        s.push_str("; endswith");
    }
    match c.fast_pattern {
        Some(FastPattern::Yes) => s.push_str("; fast_pattern"),
        Some(FastPattern::Only) => s.push_str("; fast_pattern:only"),
        Some(FastPattern::Chop { offset, length }) => {
            let _ = write!(s, "; fast_pattern:{offset},{length}");
        }
        None => {}
    }
    if let Some(r) = &c.replace {
        s.push_str("; replace:\"");
        print_pattern(r, s);
        s.push('"');
    }
}
