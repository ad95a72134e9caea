//! Small helpers shared by the parsers: bounded per-direction buffers, JSON strings from
//! bytes the way Suricata writes them, hex.

use std::fmt::Write;

/// A string for EVE from raw bytes, as Suricata's JSON builder does: valid UTF-8 is kept,
/// otherwise ASCII bytes are kept and every other byte is written as `\xNN`.
pub fn json_str(b: &[u8]) -> String {
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

/// Splits a stream into lines, bounded: a line longer than the limit comes out in pieces.
#[derive(Debug, Default)]
pub(crate) struct Lines {
    buf: Vec<u8>,
}

impl Lines {
    /// The next line of `data` (advancing it) without its CR LF, and whether it was a whole
    /// line (`false`: `max` bytes without a line end, more of the same line follows).
    /// `None` when `data` is used up without completing a line (it is kept for later).
    pub(crate) fn next_line(&mut self, data: &mut &[u8], max: usize) -> Option<(Vec<u8>, bool)> {
        let max = max.max(1);
        let nl = data.iter().position(|&c| c == b'\n');
        let take = nl.map_or(data.len(), |i| i + 1);
        let room = max.saturating_sub(self.buf.len());
        if take > room {
            self.buf.extend_from_slice(&data[..room]);
            *data = &data[room..];
            return Some((std::mem::take(&mut self.buf), false));
        }
        self.buf.extend_from_slice(&data[..take]);
        *data = &data[take..];
        nl?;
        let mut line = std::mem::take(&mut self.buf);
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Some((line, true))
    }

    pub(crate) fn clear(&mut self) {
        self.buf.clear();
    }

    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf
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
    fn lines_bounded_and_split_anywhere() {
        let mut l = Lines::default();
        let mut d: &[u8] = b"ab\r\ncd";
        assert_eq!(l.next_line(&mut d, 10), Some((b"ab".to_vec(), true)));
        assert_eq!(l.next_line(&mut d, 10), None);
        assert_eq!(l.pending(), b"cd");
        let mut d: &[u8] = b"ef\n";
        assert_eq!(l.next_line(&mut d, 10), Some((b"cdef".to_vec(), true)));
        let mut d: &[u8] = b"0123456789abc\n";
        assert_eq!(l.next_line(&mut d, 4), Some((b"0123".to_vec(), false)));
        assert_eq!(d.len(), 10);
        l.clear();
        assert!(l.pending().is_empty());
    }

    #[test]
    fn trim_and_find() {
        assert_eq!(trim(b" \tx y \r\n"), b"x y");
        assert_eq!(find(b"hello world", b"o w"), Some(4));
        assert_eq!(find(b"abc", b"abcd"), None);
    }
}
