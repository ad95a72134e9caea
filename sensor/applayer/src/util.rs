//! Small helpers shared by the parsers: bounded per-direction buffers, JSON strings from
//! bytes the way Suricata writes them, hex.

use std::fmt::Write;

/// A string for EVE from raw bytes, as Suricata's JSON builder does: valid UTF-8 is kept,
/// otherwise ASCII bytes are kept and every other byte is written as `\xNN`.
pub(crate) fn json_str(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => {
            let mut s = String::with_capacity(b.len() + 8);
            for &c in b {
                if c.is_ascii() {
                    s.push(c as char);
                } else {
                    let _ = write!(s, "\\x{c:02x}");
                }
            }
            s
        }
    }
}

/// Lower-case hex of `b`.
pub(crate) fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for c in b {
        let _ = write!(s, "{c:02x}");
    }
    s
}

/// Bytes of a stream direction not yet consumed by a parser, bounded by a limit.
#[derive(Debug, Default)]
pub(crate) struct StreamBuf {
    buf: Vec<u8>,
}

impl StreamBuf {
    /// Bytes waiting, including `data` appended when there were already bytes waiting.
    /// Returns `false` (and keeps nothing) when the total would exceed `limit`.
    pub(crate) fn push(&mut self, data: &[u8], limit: usize) -> bool {
        if self.buf.len().saturating_add(data.len()) > limit {
            self.buf.clear();
            return false;
        }
        self.buf.extend_from_slice(data);
        true
    }

    pub(crate) fn clear(&mut self) {
        self.buf.clear();
    }

    pub(crate) fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// Find `needle` in `hay`.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Trim ASCII spaces and tabs at both ends.
pub(crate) fn trim(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if *first == b' ' || *first == b'\t' {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if *last == b' ' || *last == b'\t' || *last == b'\r' || *last == b'\n' {
            b = rest;
        } else {
            break;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_str_like_suricata() {
        assert_eq!(json_str(b"abc"), "abc");
        assert_eq!(json_str("héllo".as_bytes()), "héllo");
        assert_eq!(json_str(b"a\xffb"), "a\\xffb");
    }

    #[test]
    fn trim_and_find() {
        assert_eq!(trim(b" \tx y \r\n"), b"x y");
        assert_eq!(find(b"hello world", b"o w"), Some(4));
        assert_eq!(find(b"abc", b"abcd"), None);
    }
}
