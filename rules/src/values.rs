//! Parsers for option values: quoted strings, content patterns, numbers, comparisons.
//! Each returns a plain message on error; the caller attaches code and span.

use nom::{
    branch::alt,
    bytes::complete::tag,
    character::complete::{digit1, multispace0},
    combinator::{all_consuming, map, map_res, opt},
    sequence::{delimited, preceded, separated_pair, tuple},
    IResult,
};

use crate::ast::{Cmp, NumOrVar};

/// A `"double quoted"` value with `\"`, `\;`, `\\` and `\:` escapes, as `msg` takes it.
pub fn quoted(v: &str) -> Result<String, String> {
    let v = v.trim();
    let inner = v
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .filter(|_| v.len() >= 2)
        .ok_or_else(|| "value must be double quoted".to_string())?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e) => out.push(e),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Escapes a string for printing inside double quotes (`msg`, `pcre`, …).
pub fn escape_quoted(s: &str, out: &mut String) {
    for c in s.chars() {
        if matches!(c, '"' | ';' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Error kinds of [`content_pattern`], so callers can pick a diagnostic code.
#[derive(Debug)]
pub enum PatternError {
    Quote(String),
    Hex(String),
}

/// A content pattern: `[!]"text|41 42|text"` → (negated, bytes).
pub fn content_pattern(v: &str) -> Result<(bool, Vec<u8>), PatternError> {
    let mut v = v.trim();
    let negated = if let Some(r) = v.strip_prefix('!') {
        v = r.trim_start();
        true
    } else {
        false
    };
    if !(v.len() >= 2 && v.starts_with('"') && v.ends_with('"')) {
        return Err(PatternError::Quote(
            "value must be double quoted".to_string(),
        ));
    }
    let inner = &v.as_bytes()[1..v.len() - 1];
    if inner.is_empty() {
        return Err(PatternError::Quote("empty content".to_string()));
    }
    let bytes = pattern_bytes(inner)?;
    Ok((negated, bytes))
}

/// Decodes the inside of a content string: escapes and `|hex|` sections.
pub fn pattern_bytes(inner: &[u8]) -> Result<Vec<u8>, PatternError> {
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    let mut in_hex = false;
    let mut hex_start = 0;
    let mut nibble: Option<u8> = None;
    while i < inner.len() {
        let c = inner[i];
        if in_hex {
            match c {
                b'|' => {
                    if nibble.is_some() {
                        return Err(PatternError::Hex(format!(
                            "incomplete hex byte in `|{}|`",
                            String::from_utf8_lossy(&inner[hex_start..i])
                        )));
                    }
                    in_hex = false;
                }
                b' ' | b'\t' => {}
                _ => {
                    let d = (c as char).to_digit(16).ok_or_else(|| {
                        PatternError::Hex(format!(
                            "invalid hex character `{}` in content",
                            c as char
                        ))
                    })? as u8;
                    match nibble.take() {
                        None => nibble = Some(d),
                        Some(h) => out.push(h << 4 | d),
                    }
                }
            }
        } else {
            match c {
                b'|' => {
                    in_hex = true;
                    hex_start = i + 1;
                }
                b'\\' => {
                    let e = inner.get(i + 1).copied();
                    match e {
                        Some(e @ (b'\\' | b';' | b'"' | b':')) => {
                            out.push(e);
                            i += 1;
                        }
                        _ => {
                            return Err(PatternError::Quote(
                                "`\\` must be escaped as `\\\\` (only \\\\, \\;, \\\" and \\: are escapes)"
                                    .to_string(),
                            ))
                        }
                    }
                }
                b'"' => {
                    return Err(PatternError::Quote(
                        "unescaped `\"` inside content".to_string(),
                    ))
                }
                _ => out.push(c),
            }
        }
        i += 1;
    }
    if in_hex {
        return Err(PatternError::Hex(
            "hex section `|…` is not closed".to_string(),
        ));
    }
    Ok(out)
}

/// Prints bytes as a content string body: printable ASCII as is, the rest in `|hex|`.
pub fn print_pattern(bytes: &[u8], out: &mut String) {
    let mut in_hex = false;
    for &b in bytes {
        let printable =
            (0x20..0x7f).contains(&b) && !matches!(b, b'"' | b';' | b'\\' | b'|' | b':');
        if printable {
            if in_hex {
                out.push('|');
                in_hex = false;
            }
            out.push(b as char);
        } else {
            if in_hex {
                out.push(' ');
            } else {
                out.push('|');
                in_hex = true;
            }
            out.push_str(&format!("{b:02X}"));
        }
    }
    if in_hex {
        out.push('|');
    }
}

/// An unsigned decimal number (no sign, no spaces inside).
pub fn uint<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{v}` is not an unsigned number"));
    }
    v.parse::<T>().map_err(|_| format!("`{v}` is out of range"))
}

/// A signed decimal number.
pub fn int<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    let v = v.trim();
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{v}` is not a number"));
    }
    v.parse::<T>().map_err(|_| format!("`{v}` is out of range"))
}

/// A decimal or `0x` hexadecimal number.
pub fn uint_dec_or_hex(v: &str) -> Result<u64, String> {
    let v = v.trim();
    if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).map_err(|_| format!("`{v}` is not a hex number"))
    } else {
        uint(v)
    }
}

/// A number or a byte_extract/byte_math variable name.
pub fn num_or_var<T: std::str::FromStr>(
    v: &str,
    num: impl Fn(&str) -> Result<T, String>,
) -> Result<NumOrVar<T>, String> {
    let v = v.trim();
    if v.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        if v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        {
            Ok(NumOrVar::Var(v.to_string()))
        } else {
            Err(format!("`{v}` is not a number or variable name"))
        }
    } else {
        num(v).map(NumOrVar::Num)
    }
}

fn num(i: &str) -> IResult<&str, u64> {
    map_res(digit1, |d: &str| d.parse::<u64>())(i)
}

fn ws<'a, O>(
    f: impl FnMut(&'a str) -> IResult<&'a str, O>,
) -> impl FnMut(&'a str) -> IResult<&'a str, O> {
    delimited(multispace0, f, multispace0)
}

fn cmp_expr(i: &str) -> IResult<&str, Cmp> {
    alt((
        map(
            preceded(
                ws(tag("!")),
                separated_pair(ws(num), alt((tag("<>"), tag("-"))), ws(num)),
            ),
            |(a, b)| Cmp::NotRange(a, b),
        ),
        map(
            separated_pair(ws(num), alt((tag("<>"), tag("-"))), ws(num)),
            |(a, b)| Cmp::Range(a, b),
        ),
        map(preceded(ws(tag("<=")), ws(num)), Cmp::Le),
        map(preceded(ws(tag(">=")), ws(num)), Cmp::Ge),
        map(preceded(ws(tag("!=")), ws(num)), Cmp::Ne),
        map(preceded(ws(tag("<")), ws(num)), Cmp::Lt),
        map(preceded(ws(tag(">")), ws(num)), Cmp::Gt),
        map(preceded(ws(tag("!")), ws(num)), Cmp::Ne),
        map(
            preceded(tuple((multispace0, opt(tag("=")))), ws(num)),
            Cmp::Eq,
        ),
    ))(i)
}

/// A comparison as dsize/bsize/ttl/… take it: `N`, `<N`, `>=N`, `!N`, `N<>M`, `N-M`, `!N-M`.
/// `max` bounds every number.
pub fn cmp(v: &str, max: u64) -> Result<Cmp, String> {
    let c = all_consuming(cmp_expr)(v).map(|(_, c)| c).map_err(|_| {
        format!(
            "`{}` is not a comparison like `N`, `<N`, `>N`, `N<>M`",
            v.trim()
        )
    })?;
    let (lo, hi) = match c {
        Cmp::Range(a, b) | Cmp::NotRange(a, b) => (a, b),
        Cmp::Eq(a) | Cmp::Ne(a) | Cmp::Lt(a) | Cmp::Gt(a) | Cmp::Le(a) | Cmp::Ge(a) => (a, a),
    };
    if hi > max || lo > max {
        return Err(format!("`{}` is out of range (max {max})", v.trim()));
    }
    if let Cmp::Range(a, b) | Cmp::NotRange(a, b) = c {
        if a >= b {
            return Err(format!(
                "range `{}` is empty (min must be below max)",
                v.trim()
            ));
        }
    }
    Ok(c)
}

pub fn print_cmp(c: &Cmp, out: &mut String) {
    use std::fmt::Write;
    let _ = match c {
        Cmp::Eq(n) => write!(out, "{n}"),
        Cmp::Ne(n) => write!(out, "!{n}"),
        Cmp::Lt(n) => write!(out, "<{n}"),
        Cmp::Gt(n) => write!(out, ">{n}"),
        Cmp::Le(n) => write!(out, "<={n}"),
        Cmp::Ge(n) => write!(out, ">={n}"),
        Cmp::Range(a, b) => write!(out, "{a}<>{b}"),
        Cmp::NotRange(a, b) => write!(out, "!{a}<>{b}"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert_eq!(
            content_pattern(r#""GET |20 2F|a\;b\"c\\d\:""#).unwrap(),
            (false, b"GET  /a;b\"c\\d:".to_vec())
        );
        assert_eq!(content_pattern(r#"!"|00|""#).unwrap(), (true, vec![0]));
        assert!(matches!(
            content_pattern(r#""|4|""#),
            Err(PatternError::Hex(_))
        ));
        assert!(matches!(
            content_pattern(r#""|4G|""#),
            Err(PatternError::Hex(_))
        ));
        assert!(matches!(
            content_pattern(r#""|41""#),
            Err(PatternError::Hex(_))
        ));
        assert!(matches!(
            content_pattern(r#""a\b""#),
            Err(PatternError::Quote(_))
        ));
        assert!(matches!(
            content_pattern(r#""a"b""#),
            Err(PatternError::Quote(_))
        ));
        assert!(matches!(
            content_pattern(r#""""#),
            Err(PatternError::Quote(_))
        ));
        assert!(matches!(
            content_pattern("abc"),
            Err(PatternError::Quote(_))
        ));
        assert!(matches!(content_pattern("\""), Err(PatternError::Quote(_))));
    }

    #[test]
    fn pattern_print_roundtrip() {
        let all: Vec<u8> = (0..=255).collect();
        let mut s = String::new();
        print_pattern(&all, &mut s);
        assert_eq!(pattern_bytes(s.as_bytes()).unwrap(), all);
    }

    #[test]
    fn comparisons() {
        assert_eq!(cmp("10", 100), Ok(Cmp::Eq(10)));
        assert_eq!(cmp(" >10", 100), Ok(Cmp::Gt(10)));
        assert_eq!(cmp("<=10", 100), Ok(Cmp::Le(10)));
        assert_eq!(cmp("1<>10", 100), Ok(Cmp::Range(1, 10)));
        assert_eq!(cmp("1-10", 100), Ok(Cmp::Range(1, 10)));
        assert_eq!(cmp("!5", 100), Ok(Cmp::Ne(5)));
        assert!(cmp("10<>5", 100).is_err());
        assert!(cmp(">", 100).is_err());
        assert!(cmp("abc", 100).is_err());
        assert!(cmp("300", 255).is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(uint::<u32>("42"), Ok(42));
        assert!(uint::<u32>("-1").is_err());
        assert!(uint::<u32>("4294967296").is_err());
        assert_eq!(int::<i32>("-1"), Ok(-1));
        assert_eq!(uint_dec_or_hex("0xfc"), Ok(0xfc));
        assert_eq!(
            num_or_var("foo", uint::<u32>),
            Ok(NumOrVar::Var("foo".into()))
        );
    }
}
