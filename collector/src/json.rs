//! A validating, allocation-free JSON scanner for the ingest hot path.
//!
//! Ingest parses every EVE line once (validating it, and picking out the fields its row needs)
//! within a budget of about a microsecond per event, so a generic deserializer that builds
//! every field through a visitor is too slow. [`Scanner`] walks one JSON text (RFC 8259) left to
//! right: the caller pulls the values it wants (`string`, `u64`, `bool`, `object`) and
//! [`Scanner::skip`] validates and steps over the rest. Strings borrow from the input unless
//! they contain escapes. The input is a `&str`, so UTF-8 is already checked; the scanner checks
//! everything else (structure, escapes, surrogates, control characters, number syntax) and
//! bounds nesting at [`MAX_DEPTH`]. Errors carry the byte column where they were found.

use std::borrow::Cow;

/// Deepest nesting of arrays and objects accepted (serde_json's default limit).
pub const MAX_DEPTH: u32 = 128;

/// Bytes that end a plain run inside a string: the quote, the backslash, control characters.
#[cfg(not(target_arch = "x86_64"))]
static STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// The bytes of `b[base..base + 64]` that end a plain run inside a string, as bits (bit n
/// for byte `base + n`); bytes past the end of `b` are not flagged.
#[inline]
fn stop_mask(b: &[u8], base: usize) -> u64 {
    match b
        .get(base..base + 64)
        .and_then(|c| <&[u8; 64]>::try_from(c).ok())
    {
        Some(block) => stop_mask64(block),
        None => {
            let mut block = [b' '; 64];
            let rest = b.get(base..).unwrap_or_default();
            if let Some(head) = block.get_mut(..rest.len()) {
                head.copy_from_slice(rest);
            }
            stop_mask64(&block)
        }
    }
}

/// [`stop_mask`] of one whole block: four 16-byte SSE2 compares (SSE2 is part of every
/// x86_64 CPU).
#[cfg(target_arch = "x86_64")]
#[allow(
    unsafe_code,
    reason = "SSE2 intrinsics: unaligned 16-byte loads from the 64-byte block, and compares \
              that std only marks safe inside #[target_feature] functions, which cannot be \
              inlined into the scanner"
)]
fn stop_mask64(block: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let mut mask = 0u64;
    for (k, part) in block.chunks_exact(16).enumerate() {
        // SAFETY: SSE2 is in the x86_64 baseline; `part` has exactly the 16 bytes loaded.
        let bits = unsafe {
            let v = _mm_loadu_si128(part.as_ptr().cast());
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let slash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            // Unsigned `v <= 0x1F`: the minimum with 0x1F is `v` itself.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v);
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, slash), control))
        };
        mask |= u64::from(bits as u16) << (16 * k);
    }
    mask
}

/// [`stop_mask`] of one whole block, byte by byte (targets without SSE2).
#[cfg(not(target_arch = "x86_64"))]
fn stop_mask64(block: &[u8; 64]) -> u64 {
    block
        .iter()
        .enumerate()
        .fold(0, |m, (n, &c)| m | (u64::from(STOP[usize::from(c)]) << n))
}

/// A JSON syntax or type error at a byte column (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    pub column: usize,
    pub what: &'static str,
    /// The field whose value was at fault, when the caller names it.
    pub field: Option<&'static str>,
}

impl JsonError {
    /// Names the field whose value was at fault (kept if already named).
    pub fn in_field(mut self, field: &'static str) -> JsonError {
        self.field.get_or_insert(field);
        self
    }
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(field) = self.field {
            write!(f, "field `{field}`: ")?;
        }
        write!(f, "{} at column {}", self.what, self.column)
    }
}

pub type Result<T> = std::result::Result<T, JsonError>;

/// A cursor over one JSON text.
pub struct Scanner<'a> {
    b: &'a [u8],
    s: &'a str,
    i: usize,
    depth: u32,
    /// The 64-byte block (index) whose string stops are in `stops`; `usize::MAX` for none.
    block: usize,
    /// Bit n: byte `64 * block + n` is a quote, a backslash or a control character.
    stops: u64,
}

impl<'a> Scanner<'a> {
    pub fn new(s: &'a str) -> Scanner<'a> {
        Scanner {
            b: s.as_bytes(),
            s,
            i: 0,
            depth: 0,
            block: usize::MAX,
            stops: 0,
        }
    }

    /// An error at the current position.
    #[cold]
    pub fn err(&self, what: &'static str) -> JsonError {
        JsonError {
            column: self.i + 1,
            what,
            field: None,
        }
    }

    #[inline]
    fn ws(&mut self) {
        // Compact JSON (Suricata's) has none: one comparison decides.
        if self.b.get(self.i).is_some_and(|&c| c > b' ') {
            return;
        }
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The next non-whitespace byte, not consumed.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    #[inline]
    fn expect(&mut self, c: u8, what: &'static str) -> Result<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<()> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err("invalid literal"))
        }
    }

    /// Checks that only whitespace follows.
    pub fn end(&mut self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.err("trailing characters")),
        }
    }

    /// Consumes `null` if it is next; tells whether it was.
    pub fn null(&mut self) -> Result<bool> {
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Reads an object, calling `field(self, key)` for each member; the callback must consume
    /// the member's value (`skip` it if not wanted). Keys are compared unescaped.
    pub fn object(
        &mut self,
        mut field: impl FnMut(&mut Scanner<'a>, &str) -> Result<()>,
    ) -> Result<()> {
        self.expect(b'{', "expected an object")?;
        self.enter()?;
        if self.peek() == Some(b'}') {
            self.i += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a key"));
            }
            let key = self.string()?;
            self.expect(b':', "expected `:`")?;
            field(self, &key)?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected `,` or `}`")),
            }
        }
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        Ok(())
    }

    /// Reads a string; borrowed unless it has escapes.
    #[inline(always)]
    pub fn string(&mut self) -> Result<Cow<'a, str>> {
        // Compact JSON has the quote right here: one comparison instead of `peek`.
        if self.b.get(self.i) == Some(&b'"') {
            self.i += 1;
        } else {
            self.expect(b'"', "expected a string")?;
        }
        let start = self.i;
        self.run()?;
        if self.b.get(self.i) == Some(&b'"') {
            let s = self.between_quotes(start);
            self.i += 1;
            return Ok(Cow::Borrowed(s));
        }
        self.escaped(start)
    }

    /// The input from `start` (just after an opening quote) to the cursor (at the closing
    /// quote, in bounds): both ends are next to an ASCII byte, so both are char boundaries.
    #[inline(always)]
    #[allow(
        unsafe_code,
        reason = "str::get re-checks both char boundaries of every string; the scanner's \
                  invariant (both ends next to a quote) already guarantees them"
    )]
    fn between_quotes(&self, start: usize) -> &'a str {
        debug_assert!(start <= self.i && self.b.get(self.i) == Some(&b'"'));
        debug_assert!(start > 0 && self.b.get(start - 1) == Some(&b'"'));
        // SAFETY: `start - 1` and `self.i` hold ASCII quotes inside the input (checked by the
        // caller, asserted above in debug builds), so `start..self.i` is in bounds and both
        // ends are char boundaries of the UTF-8 input.
        unsafe { self.s.get_unchecked(start..self.i) }
    }

    /// The rest of a string from `start` that has an escape at the cursor: unescaped into
    /// an owned string.
    #[cold]
    #[inline(never)]
    fn escaped(&mut self, start: usize) -> Result<Cow<'a, str>> {
        let mut out = String::with_capacity(self.i - start + 16);
        out.push_str(self.s.get(start..self.i).unwrap_or_default());
        loop {
            let run = self.i;
            self.run()?;
            out.push_str(self.s.get(run..self.i).unwrap_or_default());
            match self.b.get(self.i) {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = match self.b.get(self.i) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.i += 1;
                            let hi = self.hex4()?;
                            let pair = (0xD800..0xDC00).contains(&hi)
                                && self.b.get(self.i..self.i + 2) == Some(b"\\u");
                            let lo = if pair {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    Some(lo)
                                } else {
                                    self.i = save; // not a pair: the next escape stands alone
                                    None
                                }
                            } else {
                                None
                            };
                            let cp = match lo {
                                Some(lo) => 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00),
                                None => hi,
                            };
                            // A lone surrogate (which some producers write for bad bytes)
                            // becomes U+FFFD rather than losing the event.
                            out.push(char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER));
                            continue;
                        }
                        _ => return Err(self.err("invalid escape")),
                    };
                    self.i += 1;
                    out.push(c);
                }
                _ => return Err(self.err("unterminated string")),
            }
        }
    }

    /// Advances over plain string bytes to the next `"` or `\\`, refusing control
    /// characters on the way; errors at the end of input. The input is classified 64 bytes
    /// at a time into a bit mask of the bytes that stop a string (`stop_mask`, SIMD), kept
    /// for the block the cursor is in: most strings of a line end in a block already
    /// classified, found with one shift and one count of trailing zeros.
    #[inline]
    fn run(&mut self) -> Result<()> {
        loop {
            let block = self.i / 64;
            if block != self.block {
                if self.i >= self.b.len() {
                    self.i = self.b.len();
                    return Err(self.err("unterminated string"));
                }
                self.stops = stop_mask(self.b, block * 64);
                self.block = block;
            }
            let ahead = self.stops >> (self.i % 64);
            if ahead != 0 {
                self.i += ahead.trailing_zeros() as usize;
                // The flagged byte is exactly a quote, a backslash or a control character.
                return match self.b.get(self.i) {
                    Some(&c) if c < 0x20 => Err(self.err("control character in string")),
                    Some(_) => Ok(()),
                    None => Err(self.err("unterminated string")),
                };
            }
            self.i = (block + 1) * 64;
        }
    }

    fn hex4(&mut self) -> Result<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = match self.b.get(self.i) {
                Some(c @ b'0'..=b'9') => c - b'0',
                Some(c @ b'a'..=b'f') => c - b'a' + 10,
                Some(c @ b'A'..=b'F') => c - b'A' + 10,
                _ => return Err(self.err("invalid \\u escape")),
            };
            v = v * 16 + u32::from(d);
            self.i += 1;
        }
        Ok(v)
    }

    /// Reads a non-negative integer (no fraction or exponent).
    pub fn u64(&mut self) -> Result<u64> {
        self.ws();
        let start = self.i;
        let text = self.b.get(start..).unwrap_or_default();
        let mut v = 0u64;
        let mut digits = 0;
        for &c in text {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            // Cannot overflow within 19 digits; longer numbers are checked below.
            v = v.wrapping_mul(10).wrapping_add(u64::from(d));
            digits += 1;
        }
        self.i = start + digits;
        if digits == 0 {
            return Err(self.err("expected an unsigned integer"));
        }
        if digits > 1 && text.first() == Some(&b'0') {
            return Err(self.err("leading zero in number"));
        }
        if digits > 19 {
            v = self.wide(text.get(..digits).unwrap_or_default())?;
        }
        if let Some(b'.' | b'e' | b'E') = self.b.get(self.i) {
            return Err(self.err("expected an integer, found a fraction"));
        }
        Ok(v)
    }

    /// The value of a run of more than 19 digits, if it fits a u64.
    #[cold]
    fn wide(&self, digits: &[u8]) -> Result<u64> {
        digits
            .iter()
            .try_fold(0u64, |v, &c| {
                v.checked_mul(10)?.checked_add(u64::from(c - b'0'))
            })
            .ok_or_else(|| self.err("integer out of range"))
    }

    /// Reads `true` or `false`.
    pub fn bool(&mut self) -> Result<bool> {
        match self.peek() {
            Some(b't') => self.literal(b"true").map(|()| true),
            Some(b'f') => self.literal(b"false").map(|()| false),
            _ => Err(self.err("expected a boolean")),
        }
    }

    /// Validates and steps over any value.
    pub fn skip(&mut self) -> Result<()> {
        match self.peek() {
            Some(b'"') => self.skip_string(),
            Some(b'{') => self.object(|s, _| s.skip()),
            Some(b'[') => {
                self.i += 1;
                self.enter()?;
                if self.peek() == Some(b']') {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                loop {
                    self.skip()?;
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            self.depth -= 1;
                            return Ok(());
                        }
                        _ => return Err(self.err("expected `,` or `]`")),
                    }
                }
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.skip_number(),
            Some(_) => Err(self.err("expected a value")),
            None => Err(self.err("unexpected end of input")),
        }
    }

    /// Steps over a string, validating its escapes without building it.
    fn skip_string(&mut self) -> Result<()> {
        self.i += 1; // the opening quote
        loop {
            self.run()?;
            match self.b.get(self.i) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.b.get(self.i) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            self.i += 1;
                            self.hex4()?;
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                // `run` stops only at a quote or a backslash, or fails.
                _ => return Err(self.err("unterminated string")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.b.get(self.i) {
            self.i += 1;
        }
        self.i - start
    }

    fn skip_number(&mut self) -> Result<()> {
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let start = self.i;
        match self.digits() {
            0 => return Err(self.err("invalid number")),
            n if n > 1 && self.b.get(start) == Some(&b'0') => {
                return Err(self.err("leading zero in number"))
            }
            _ => {}
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(s: &str) -> bool {
        let mut sc = Scanner::new(s);
        sc.skip().and_then(|()| sc.end()).is_ok()
    }

    #[test]
    fn agrees_with_serde_json_on_validity() {
        let cases = [
            r#"{}"#,
            r#"[]"#,
            r#"{"a":[1,2.5,-3e10,0,-0.0e+1,true,false,null,"x\"y\\\/\b\f\n\r\t\u00e9\ud83d\ude00"]}"#,
            r#" { "a" : { "b" : [ ] } } "#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":-}"#,
            r#"{"a":1e}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00"}"#,
            r#"{"a":"\ud800\u0041"}"#,
            r#"{"a":"\u12G4"}"#,
            "{\"a\":\"tab\tin\"}",
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            r#"[1,]"#,
            r#"[1 2]"#,
            r#"{"a":tru}"#,
            r#"{"a":nul}"#,
            r#"{"a":1} x"#,
            r#""#,
            r#"{"a":"unterminated}"#,
            r#"{"a":"esc\"aped \\"}"#,
            r#"{"a":"\\\\\""}"#,
        ];
        for c in cases {
            let theirs = serde_json::from_str::<serde::de::IgnoredAny>(c).is_ok();
            assert_eq!(valid(c), theirs, "{c:?}");
        }
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let mut sc = Scanner::new(r#""plain""#);
        assert!(matches!(sc.string().unwrap(), Cow::Borrowed("plain")));
        let mut sc = Scanner::new(r#""a\u00e9\ud83d\ude00\n""#);
        assert_eq!(sc.string().unwrap(), "aé😀\n");
        let mut sc = Scanner::new(r#""\ud800x\udc00\ud800\u0041""#);
        assert_eq!(sc.string().unwrap(), "\u{fffd}x\u{fffd}\u{fffd}A");
    }

    #[test]
    fn stop_bytes_found_at_every_position() {
        // The block-at-a-time search must stop exactly at the first `"`, `\\` or control
        // byte wherever it sits (either side of the 64-byte block edges, in the last partial
        // block), with any bytes (UTF-8 too) before and after it.
        for lead in [0, 1, 31, 63] {
            let pad = " ".repeat(lead);
            for len in 0..140 {
                for filler in ["a", "é", "~"] {
                    let plain: String = filler.repeat(len);
                    let s = format!("{pad}\"{plain}\" x");
                    let mut sc = Scanner::new(&s);
                    assert_eq!(sc.string().unwrap(), plain);
                    let s = format!("{pad}\"{plain}\\n{plain}\"");
                    assert_eq!(
                        Scanner::new(&s).string().unwrap(),
                        format!("{plain}\n{plain}")
                    );
                    let s = format!("{pad}\"{plain}\u{1}{plain}\"");
                    let e = Scanner::new(&s).string().unwrap_err();
                    assert_eq!(e.what, "control character in string");
                    assert_eq!(e.column, lead + 2 + plain.len());
                    let s = format!("{pad}\"{plain}");
                    let e = Scanner::new(&s).string().unwrap_err();
                    assert_eq!(e.what, "unterminated string");
                }
            }
        }
    }

    #[test]
    fn many_strings_across_blocks() {
        // One scanner over strings of every length: the stop mask it keeps for a block must
        // serve the next strings in that block and be replaced at the next one.
        let words: Vec<String> = (0..200).map(|n| "x".repeat(n % 70)).collect();
        let text = serde_json::to_string(&words).unwrap();
        let mut sc = Scanner::new(&text);
        let mut got = Vec::new();
        assert_eq!(sc.peek(), Some(b'['));
        sc.i += 1;
        loop {
            got.push(sc.string().unwrap().into_owned());
            match sc.peek() {
                Some(b',') => sc.i += 1,
                _ => break,
            }
        }
        assert_eq!(got, words);
        assert!(Scanner::new(&text).skip().is_ok());
    }

    #[test]
    fn integers() {
        assert_eq!(Scanner::new("18446744073709551615").u64(), Ok(u64::MAX));
        assert!(Scanner::new("18446744073709551616").u64().is_err());
        assert!(Scanner::new("1.5").u64().is_err());
        assert!(Scanner::new("-1").u64().is_err());
        assert!(Scanner::new("007").u64().is_err());
        assert_eq!(
            Scanner::new("9999999999999999999").u64(),
            Ok(9_999_999_999_999_999_999)
        );
        assert_eq!(Scanner::new("0").u64(), Ok(0));
        assert!(Scanner::new("99999999999999999999").u64().is_err());
        assert!(Scanner::new("").u64().is_err());
        let mut sc = Scanner::new("1234,");
        assert_eq!(sc.u64(), Ok(1234));
        assert_eq!(sc.peek(), Some(b','));
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = Scanner::new(&deep).skip().unwrap_err();
        assert_eq!(e.what, "nesting too deep");
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(valid(&ok));
    }
}
