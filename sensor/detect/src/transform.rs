//! Sticky-buffer transforms (`to_lowercase`, `dotprefix`, `url_decode`, `to_sha256`, …).

use std::borrow::Cow;

use khien_rules::Transform;
use sha2::Digest;

/// Whether the engine implements a transform.
pub(crate) fn supported(t: &Transform) -> bool {
    match t {
        Transform::Simple(n) => matches!(
            *n,
            "to_lowercase"
                | "to_uppercase"
                | "strip_whitespace"
                | "compress_whitespace"
                | "dotprefix"
                | "url_decode"
                | "to_md5"
                | "to_sha1"
                | "to_sha256"
                | "header_lowercase"
        ),
        Transform::Xor(k) => !k.is_empty(),
        Transform::Pcrexform(_) => false,
    }
}

/// Applies the transforms in order. Borrowed when there are none.
pub(crate) fn apply<'a>(buf: &'a [u8], ts: &[Transform]) -> Cow<'a, [u8]> {
    let mut cur: Cow<'a, [u8]> = Cow::Borrowed(buf);
    for t in ts {
        cur = Cow::Owned(one(&cur, t));
    }
    cur
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

fn one(b: &[u8], t: &Transform) -> Vec<u8> {
    match t {
        Transform::Xor(k) => b.iter().zip(k.iter().cycle()).map(|(x, y)| x ^ y).collect(),
        Transform::Pcrexform(_) => b.to_vec(),
        Transform::Simple(n) => match *n {
            "to_lowercase" => b.to_ascii_lowercase(),
            "to_uppercase" => b.to_ascii_uppercase(),
            "strip_whitespace" => b.iter().copied().filter(|&c| !is_ws(c)).collect(),
            "compress_whitespace" => {
                let mut out = Vec::with_capacity(b.len());
                let mut in_ws = false;
                for &c in b {
                    if is_ws(c) {
                        if !in_ws {
                            out.push(b' ');
                        }
                        in_ws = true;
                    } else {
                        out.push(c);
                        in_ws = false;
                    }
                }
                out
            }
            "dotprefix" => {
                let mut out = Vec::with_capacity(b.len() + 1);
                out.push(b'.');
                out.extend_from_slice(b);
                out
            }
            "url_decode" => url_decode(b),
            "to_md5" => md5::Md5::digest(b).to_vec(),
            "to_sha1" => sha1::Sha1::digest(b).to_vec(),
            "to_sha256" => sha2::Sha256::digest(b).to_vec(),
            "header_lowercase" => header_lowercase(b),
            _ => b.to_vec(),
        },
    }
}

fn hexval(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

fn url_decode(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = b.get(i + 1).copied().and_then(hexval);
                let l = b.get(i + 2).copied().and_then(hexval);
                if let (Some(h), Some(l)) = (h, l) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Lower-cases the header names of `Name: value\r\n` lines, keeping values.
fn header_lowercase(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut in_name = true;
    for &c in b {
        if c == b'\n' {
            in_name = true;
            out.push(c);
        } else if in_name && c == b':' {
            in_name = false;
            out.push(c);
        } else if in_name {
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms() {
        let s = |n| Transform::Simple(n);
        assert_eq!(&*apply(b"A  b\tC", &[s("compress_whitespace")]), b"A b C");
        assert_eq!(&*apply(b"A  b\tC", &[s("strip_whitespace")]), b"AbC");
        assert_eq!(&*apply(b"a%41+%zz", &[s("url_decode")]), b"aA %zz");
        assert_eq!(&*apply(b"x.com", &[s("dotprefix")]), b".x.com");
        assert_eq!(
            &*apply(b"Host: A\r\nX-Y: B", &[s("header_lowercase")]),
            b"host: A\r\nx-y: B"
        );
        assert_eq!(apply(b"abc", &[s("to_sha256")]).len(), 32);
        assert_eq!(
            &*apply(b"\x01\x02\x03", &[Transform::Xor(vec![1, 2])]),
            b"\x00\x00\x02"
        );
        assert_eq!(
            &*apply(b"abc", &[s("to_uppercase"), s("to_lowercase")]),
            b"abc"
        );
    }
}
