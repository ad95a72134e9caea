//! The rule header: `action protocol src src_ports direction dst dst_ports`.

use std::net::{IpAddr, Ipv4Addr};

use nom::{
    branch::alt,
    bytes::complete::{tag_no_case, take_while1},
    character::complete::{char, digit1},
    combinator::{map, map_res, opt, recognize},
    multi::separated_list1,
    sequence::{delimited, pair, preceded},
    IResult,
};

use crate::ast::{Action, AddrSpec, Direction, PortSpec, Protocol, Span};
use crate::diag::{Code, Diagnostic};

/// Protocols Suricata 7 accepts in a rule header (canonical spelling).
const PROTOCOLS: &[&str] = &[
    "ip",
    "ipv4",
    "ip4",
    "ipv6",
    "ip6",
    "tcp",
    "udp",
    "icmp",
    "icmpv4",
    "icmpv6",
    "sctp",
    "pkthdr",
    "tcp-pkt",
    "tcp-stream",
    "http",
    "http1",
    "http2",
    "ftp",
    "ftp-data",
    "smtp",
    "tls",
    "ssh",
    "imap",
    "smb",
    "dcerpc",
    "dns",
    "modbus",
    "enip",
    "dnp3",
    "nfs",
    "ntp",
    "tftp",
    "ike",
    "ikev2",
    "krb5",
    "dhcp",
    "snmp",
    "sip",
    "rfb",
    "mqtt",
    "pgsql",
    "telnet",
    "quic",
    "rdp",
    "bittorrent-dht",
];

/// Looks a header protocol name up (ASCII case-insensitively, as Suricata does).
pub fn protocol(name: &str) -> Option<Protocol> {
    PROTOCOLS
        .iter()
        .find(|p| p.eq_ignore_ascii_case(name))
        .map(|p| Protocol(p))
}

pub(crate) struct Header {
    pub action: Action,
    pub protocol: Protocol,
    pub src: AddrSpec,
    pub src_ports: PortSpec,
    pub direction: Direction,
    pub dst: AddrSpec,
    pub dst_ports: PortSpec,
    /// Offset of the first byte after the header (at the `(` or end of text).
    pub end: usize,
}

/// Splits the header into whitespace-separated tokens, respecting `[...]` nesting, and stops
/// at the `(` that opens the options.
fn tokens(text: &str) -> (Vec<(usize, &str)>, usize) {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(7);
    let mut i = 0;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] == b'(' || out.len() == 7 {
            return (out, i);
        }
        let start = i;
        let mut depth = 0i32;
        while i < b.len() {
            match b[i] {
                b'[' => depth += 1,
                b']' => depth -= 1,
                b'(' if depth <= 0 => break,
                c if c.is_ascii_whitespace() && depth <= 0 => break,
                _ => {}
            }
            i += 1;
        }
        out.push((start, &text[start..i]));
    }
}

pub(crate) fn parse_header(text: &str) -> Result<Header, Diagnostic> {
    let (toks, end) = tokens(text);
    let span_of = |(s, t): (usize, &str)| Span::new(s, s + t.len());
    let names = [
        "action",
        "protocol",
        "source address",
        "source port",
        "direction",
        "destination address",
        "destination port",
    ];
    for (i, &(s, t)) in toks.iter().enumerate() {
        let depth = t.bytes().fold(0i32, |d, b| match b {
            b'[' => d + 1,
            b']' => d - 1,
            _ => d,
        });
        if depth != 0 {
            let code = if matches!(i, 3 | 6) {
                Code::BadPort
            } else {
                Code::BadAddress
            };
            return Err(Diagnostic::new(
                code,
                Span::new(s, s + t.len().min(40)),
                format!(
                    "unbalanced `[`/`]` in {}",
                    names.get(i).unwrap_or(&"header")
                ),
            ));
        }
    }
    if toks.len() < 7 {
        let at = toks.last().map_or(Span::new(0, 0), |&t| span_of(t));
        return Err(Diagnostic::new(
            Code::Incomplete,
            at,
            format!(
                "rule header ends after {} field(s); expected {} next (header is `action protocol src_addr src_port -> dst_addr dst_port`)",
                toks.len(),
                names[toks.len()]
            ),
        ));
    }
    let action = Action::from_name(toks[0].1).ok_or_else(|| {
        Diagnostic::new(
            Code::BadAction,
            span_of(toks[0]),
            format!(
                "unknown action `{}`; expected alert, pass, drop, reject, rejectsrc, rejectdst or rejectboth",
                toks[0].1
            ),
        )
    })?;
    let protocol = protocol(toks[1].1).ok_or_else(|| {
        Diagnostic::new(
            Code::BadProtocol,
            span_of(toks[1]),
            format!("unknown protocol `{}`", toks[1].1),
        )
    })?;
    let src = address(toks[2].1, span_of(toks[2]))?;
    let src_ports = ports(toks[3].1, span_of(toks[3]))?;
    let direction = match toks[4].1 {
        "->" => Direction::To,
        "<>" => Direction::Both,
        d => {
            return Err(Diagnostic::new(
                Code::BadDirection,
                span_of(toks[4]),
                format!("unknown direction `{d}`; expected `->` or `<>`"),
            ))
        }
    };
    let dst = address(toks[5].1, span_of(toks[5]))?;
    let dst_ports = ports(toks[6].1, span_of(toks[6]))?;
    Ok(Header {
        action,
        protocol,
        src,
        src_ports,
        direction,
        dst,
        dst_ports,
        end,
    })
}

// ---------------------------------------------------------------------------------------------
// Addresses

fn var_name(i: &str) -> IResult<&str, &str> {
    preceded(
        char('$'),
        take_while1(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
    )(i)
}

fn ip_text(i: &str) -> IResult<&str, &str> {
    take_while1(|c: char| c.is_ascii_hexdigit() || c == '.' || c == ':')(i)
}

fn ip(i: &str) -> IResult<&str, IpAddr> {
    map_res(ip_text, |s: &str| s.parse::<IpAddr>())(i)
}

/// `/len` or `/netmask` (IPv4 dotted netmask).
fn prefix(i: &str) -> IResult<&str, &str> {
    preceded(
        char('/'),
        take_while1(|c: char| c.is_ascii_digit() || c == '.'),
    )(i)
}

enum AddrAtom {
    Cidr(IpAddr, Option<String>),
    Range(IpAddr, IpAddr),
}

fn addr_atom(i: &str) -> IResult<&str, AddrAtom> {
    alt((
        map(pair(ip, preceded(char('-'), ip)), |(a, b)| {
            AddrAtom::Range(a, b)
        }),
        map(pair(ip, opt(prefix)), |(a, p)| {
            AddrAtom::Cidr(a, p.map(str::to_string))
        }),
    ))(i)
}

/// `[item, item, …]`: a bracketed, comma-separated list (spaces allowed around commas); the
/// first item error wins.
fn bracketed<'a, T>(
    item: fn(&'a str) -> IResult<&'a str, Result<T, String>>,
) -> impl FnMut(&'a str) -> IResult<&'a str, Result<Vec<T>, String>> {
    map(
        delimited(
            char('['),
            separated_list1(
                delimited(
                    nom::character::complete::multispace0,
                    char(','),
                    nom::character::complete::multispace0,
                ),
                item,
            ),
            char(']'),
        ),
        |items| items.into_iter().collect(),
    )
}

fn addr_spec(i: &str) -> IResult<&str, Result<AddrSpec, String>> {
    alt((
        map(preceded(char('!'), addr_spec), |r| {
            r.and_then(|a| match a {
                AddrSpec::Any => Err("`!any` matches no address".to_string()),
                a => Ok(AddrSpec::Not(Box::new(a))),
            })
        }),
        map(bracketed(addr_spec), |r| r.map(AddrSpec::List)),
        map(tag_no_case("any"), |_| Ok(AddrSpec::Any)),
        map(var_name, |v| Ok(AddrSpec::Var(v.to_string()))),
        map(addr_atom, |a| match a {
            AddrAtom::Range(a, b) => {
                if a.is_ipv4() != b.is_ipv4() {
                    Err(format!("range `{a}-{b}` mixes IPv4 and IPv6"))
                } else if a > b {
                    Err(format!("range `{a}-{b}` runs backwards"))
                } else {
                    Ok(AddrSpec::Range(a, b))
                }
            }
            AddrAtom::Cidr(a, None) => Ok(AddrSpec::Cidr(a, if a.is_ipv4() { 32 } else { 128 })),
            AddrAtom::Cidr(a, Some(p)) => prefix_len(a, &p).map(|l| AddrSpec::Cidr(a, l)),
        }),
    ))(i)
}

fn prefix_len(a: IpAddr, p: &str) -> Result<u8, String> {
    let max = if a.is_ipv4() { 32 } else { 128 };
    if let Ok(n) = p.parse::<u8>() {
        if n <= max {
            return Ok(n);
        }
        return Err(format!("prefix length /{n} is larger than {max}"));
    }
    if let (true, Ok(mask)) = (a.is_ipv4(), p.parse::<Ipv4Addr>()) {
        let m = u32::from(mask);
        if m.leading_ones() + m.trailing_zeros() == 32 {
            return Ok(m.leading_ones() as u8);
        }
        return Err(format!("netmask {mask} is not contiguous"));
    }
    Err(format!("bad prefix `/{p}`"))
}

/// Suricata also takes a top-level list without brackets (`1.1.1.1,2.2.2.2`).
fn bracket_top_level(text: &str) -> std::borrow::Cow<'_, str> {
    let mut depth = 0i32;
    for b in text.bytes() {
        match b {
            b'[' => depth += 1,
            b']' => depth -= 1,
            b',' if depth == 0 => return format!("[{text}]").into(),
            _ => {}
        }
    }
    text.into()
}

pub(crate) fn address(text: &str, span: Span) -> Result<AddrSpec, Diagnostic> {
    let err = |m: String| Diagnostic::new(Code::BadAddress, span, m);
    let text = &*bracket_top_level(text);
    match addr_spec(text) {
        Ok(("", Ok(a))) => Ok(a),
        Ok(("", Err(m))) => Err(err(format!("address `{text}`: {m}"))),
        Ok((rest, _)) => Err(err(format!(
            "address `{text}`: unexpected `{rest}`; expected an IP, CIDR, range, `any`, `$VAR` or `[list]`"
        ))),
        Err(_) => Err(err(format!(
            "address `{text}` is not an IP, CIDR, range, `any`, `$VAR` or `[list]`"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Ports

fn port_num(i: &str) -> IResult<&str, Result<u16, String>> {
    map(recognize(digit1), |d: &str| {
        d.parse::<u16>()
            .map_err(|_| format!("port {d} is larger than 65535"))
    })(i)
}

fn port_spec(i: &str) -> IResult<&str, Result<PortSpec, String>> {
    alt((
        map(preceded(char('!'), port_spec), |r| {
            r.and_then(|p| match p {
                PortSpec::Any => Err("`!any` matches no port".to_string()),
                p => Ok(PortSpec::Not(Box::new(p))),
            })
        }),
        map(bracketed(port_spec), |r| r.map(PortSpec::List)),
        map(tag_no_case("any"), |_| Ok(PortSpec::Any)),
        map(var_name, |v| Ok(PortSpec::Var(v.to_string()))),
        map(preceded(char(':'), port_num), |b| {
            b.map(|b| PortSpec::Range(None, Some(b)))
        }),
        map(
            pair(port_num, opt(preceded(char(':'), opt(port_num)))),
            |(a, r)| {
                let a = a?;
                match r {
                    None => Ok(PortSpec::Port(a)),
                    Some(None) => Ok(PortSpec::Range(Some(a), None)),
                    Some(Some(b)) => {
                        let b = b?;
                        if a > b {
                            Err(format!("port range {a}:{b} runs backwards"))
                        } else {
                            Ok(PortSpec::Range(Some(a), Some(b)))
                        }
                    }
                }
            },
        ),
    ))(i)
}

pub(crate) fn ports(text: &str, span: Span) -> Result<PortSpec, Diagnostic> {
    let err = |m: String| Diagnostic::new(Code::BadPort, span, m);
    let text = &*bracket_top_level(text);
    match port_spec(text) {
        Ok(("", Ok(p))) => Ok(p),
        Ok(("", Err(m))) => Err(err(format!("port `{text}`: {m}"))),
        Ok((rest, _)) => Err(err(format!(
            "port `{text}`: unexpected `{rest}`; expected a port, `a:b` range, `any`, `$VAR` or `[list]`"
        ))),
        Err(_) => Err(err(format!(
            "port `{text}` is not a port, `a:b` range, `any`, `$VAR` or `[list]`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Result<AddrSpec, Code> {
        address(s, Span::default()).map_err(|d| d.code)
    }
    fn p(s: &str) -> Result<PortSpec, Code> {
        ports(s, Span::default()).map_err(|d| d.code)
    }

    #[test]
    fn addresses() {
        assert_eq!(a("any"), Ok(AddrSpec::Any));
        assert_eq!(a("$HOME_NET"), Ok(AddrSpec::Var("HOME_NET".into())));
        assert_eq!(
            a("10.0.0.0/8"),
            Ok(AddrSpec::Cidr("10.0.0.0".parse().unwrap(), 8))
        );
        assert_eq!(
            a("10.0.0.0/255.255.0.0"),
            Ok(AddrSpec::Cidr("10.0.0.0".parse().unwrap(), 16))
        );
        assert_eq!(
            a("2001:db8::/32"),
            Ok(AddrSpec::Cidr("2001:db8::".parse().unwrap(), 32))
        );
        assert!(matches!(
            a("![1.1.1.1, $X ,[2.2.2.2,!3.3.3.3]]"),
            Ok(AddrSpec::Not(_))
        ));
        assert!(matches!(a("1.1.1.1-1.1.1.9"), Ok(AddrSpec::Range(..))));
        assert_eq!(a("1.1.1.9-1.1.1.1"), Err(Code::BadAddress));
        assert_eq!(a("!any"), Err(Code::BadAddress));
        assert_eq!(a("10.0.0.0/33"), Err(Code::BadAddress));
        assert_eq!(a("300.1.1.1"), Err(Code::BadAddress));
        assert_eq!(a("[1.1.1.1"), Err(Code::BadAddress));
        assert_eq!(a("HOME_NET"), Err(Code::BadAddress));
        assert_eq!(a(""), Err(Code::BadAddress));
    }

    #[test]
    fn port_specs() {
        assert_eq!(p("80"), Ok(PortSpec::Port(80)));
        assert_eq!(p("1024:"), Ok(PortSpec::Range(Some(1024), None)));
        assert_eq!(p(":1024"), Ok(PortSpec::Range(None, Some(1024))));
        assert_eq!(p("1:2"), Ok(PortSpec::Range(Some(1), Some(2))));
        assert!(matches!(
            p("![80,443,$HTTP_PORTS,1000:2000]"),
            Ok(PortSpec::Not(_))
        ));
        assert_eq!(p("65536"), Err(Code::BadPort));
        assert_eq!(p("2:1"), Err(Code::BadPort));
        assert_eq!(p("!any"), Err(Code::BadPort));
        assert_eq!(p("http"), Err(Code::BadPort));
    }

    #[test]
    fn header_fields() {
        let h = parse_header("alert tcp $HOME_NET any -> [1.1.1.1,2.2.2.2] 80 (sid:1;)").unwrap();
        assert_eq!(h.action, Action::Alert);
        assert_eq!(h.protocol, Protocol("tcp"));
        assert_eq!(h.direction, Direction::To);
        assert_eq!(h.dst_ports, PortSpec::Port(80));
        assert_eq!(
            &"alert tcp $HOME_NET any -> [1.1.1.1,2.2.2.2] 80 (sid:1;)"[h.end..],
            "(sid:1;)"
        );
        let e = |s: &str| parse_header(s).err().map(|d| d.code);
        assert_eq!(
            e("alertx tcp any any -> any any (sid:1;)"),
            Some(Code::BadAction)
        );
        assert_eq!(
            e("alert tcpx any any -> any any (sid:1;)"),
            Some(Code::BadProtocol)
        );
        assert_eq!(
            e("alert tcp any any <- any any (sid:1;)"),
            Some(Code::BadDirection)
        );
        assert_eq!(e("alert tcp any any ->"), Some(Code::Incomplete));
    }
}
