//! HPACK (RFC 7541) header block decoding: prefixed integers, string literals (plain or
//! Huffman-coded), the static table and a bounded dynamic table with size updates.
//!
//! One [`Hpack`] decodes one direction of a connection. Every length read from the input is
//! checked against what is left; the dynamic table and the decoded header list are capped,
//! so a hostile block costs bounded memory. Errors are returned, never panicked on.

use std::collections::VecDeque;
use std::sync::OnceLock;

use super::huffman::HUFFMAN;

/// Most bytes one HPACK integer may encode (7 continuation bytes: more than 2^32).
const MAX_INT_BYTES: usize = 6;
/// An entry's overhead in the table size (RFC 7541 §4.1).
const ENTRY_OVERHEAD: usize = 32;

/// Why a header block could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HpackError {
    /// The block ended inside a representation.
    Truncated,
    /// An integer used more continuation bytes than any sane value needs.
    IntegerOverflow,
    /// Index 0, or past the static and dynamic tables.
    BadIndex,
    /// Huffman: EOS decoded, padding longer than 7 bits or not all ones.
    BadHuffman,
    /// A dynamic table size update above the allowed maximum.
    BadTableSize,
}

impl HpackError {
    /// Suricata's HTTP/2 app-layer event name for this error.
    pub fn event(self) -> &'static str {
        match self {
            HpackError::IntegerOverflow => "header_integer_overflow",
            _ => "invalid_header",
        }
    }
}

/// One entry of a decoded header list, as Suricata logs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderEntry {
    Field {
        name: Vec<u8>,
        value: Vec<u8>,
    },
    /// A dynamic table size update at the start of the block.
    TableSizeUpdate(u64),
}

/// RFC 7541 Appendix A.
const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// A prefixed integer (RFC 7541 §5.1) with a `prefix`-bit prefix, from the front of `b`.
pub(crate) fn read_int(b: &mut &[u8], prefix: u8) -> Result<u64, HpackError> {
    let (&first, rest) = b.split_first().ok_or(HpackError::Truncated)?;
    let max = (1u64 << prefix) - 1;
    let mut v = u64::from(first) & max;
    *b = rest;
    if v < max {
        return Ok(v);
    }
    let mut shift = 0u32;
    for _ in 0..MAX_INT_BYTES {
        let (&c, rest) = b.split_first().ok_or(HpackError::Truncated)?;
        *b = rest;
        v += u64::from(c & 0x7f) << shift;
        if c & 0x80 == 0 {
            return Ok(v);
        }
        shift += 7;
    }
    Err(HpackError::IntegerOverflow)
}

/// Canonical decoding tables built from [`HUFFMAN`]: per code length, the first code, how
/// many codes have that length, and where their symbols start in `symbols`.
struct HuffDecode {
    first: [u32; 31],
    count: [u32; 31],
    offset: [u32; 31],
    symbols: Vec<u16>,
}

fn huff_decode_table() -> &'static HuffDecode {
    static T: OnceLock<HuffDecode> = OnceLock::new();
    T.get_or_init(|| {
        let mut symbols: Vec<u16> = (0..HUFFMAN.len() as u16).collect();
        symbols.sort_by_key(|&s| (HUFFMAN[usize::from(s)].1, HUFFMAN[usize::from(s)].0));
        let mut t = HuffDecode {
            first: [u32::MAX; 31],
            count: [0; 31],
            offset: [0; 31],
            symbols: Vec::new(),
        };
        for (i, &s) in symbols.iter().enumerate() {
            let (code, len) = HUFFMAN[usize::from(s)];
            let l = usize::from(len);
            if t.count[l] == 0 {
                t.first[l] = code;
                t.offset[l] = i as u32;
            }
            t.count[l] += 1;
        }
        t.symbols = symbols;
        t
    })
}

/// Decodes a Huffman-coded string, producing at most `max` bytes.
pub(crate) fn huffman_decode(b: &[u8], max: usize) -> Result<Vec<u8>, HpackError> {
    let t = huff_decode_table();
    let mut out = Vec::with_capacity(b.len().saturating_mul(8) / 5 + 1);
    let mut code: u32 = 0;
    let mut len: usize = 0;
    for &byte in b {
        for bit in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> bit) & 1);
            len += 1;
            if len > 30 {
                return Err(HpackError::BadHuffman);
            }
            let (first, count) = (t.first[len], t.count[len]);
            if count > 0 && code >= first && code - first < count {
                let idx = (t.offset[len] + (code - first)) as usize;
                let sym = t.symbols.get(idx).copied().ok_or(HpackError::BadHuffman)?;
                if sym == 256 {
                    return Err(HpackError::BadHuffman);
                }
                if out.len() < max {
                    out.push(sym as u8);
                }
                code = 0;
                len = 0;
            }
        }
    }
    // Padding: fewer than 8 bits, all ones (a prefix of EOS).
    if len > 7 || code != (1u32 << len) - 1 {
        return Err(HpackError::BadHuffman);
    }
    Ok(out)
}

/// A string literal (RFC 7541 §5.2), at most `max` bytes kept.
fn read_string(b: &mut &[u8], max: usize) -> Result<Vec<u8>, HpackError> {
    let huff = b.first().is_some_and(|c| c & 0x80 != 0);
    let len = read_int(b, 7)?;
    let len = usize::try_from(len).map_err(|_| HpackError::Truncated)?;
    if len > b.len() {
        return Err(HpackError::Truncated);
    }
    let (s, rest) = b.split_at(len);
    *b = rest;
    if huff {
        huffman_decode(s, max)
    } else {
        Ok(s[..s.len().min(max)].to_vec())
    }
}

/// The HPACK decoder of one direction.
#[derive(Debug)]
pub struct Hpack {
    /// Newest first.
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    /// Current size (RFC 7541 §4.1).
    size: usize,
    /// The table's current maximum size (changed by size updates).
    max_size: usize,
    /// The most a size update may ask for (the receiver's SETTINGS_HEADER_TABLE_SIZE,
    /// capped by `hard_cap`).
    allowed: usize,
    /// Our own bound on the table, whatever the peers negotiate.
    hard_cap: usize,
}

/// What one header block decoded to.
#[derive(Debug, Default)]
pub struct Block {
    pub headers: Vec<HeaderEntry>,
    /// Fields dropped because the list was over its size cap.
    pub dropped: usize,
}

impl Hpack {
    /// A decoder whose table never exceeds `hard_cap` bytes (RFC size accounting).
    pub fn new(hard_cap: usize) -> Self {
        let initial = 4096.min(hard_cap);
        Hpack {
            table: VecDeque::new(),
            size: 0,
            max_size: initial,
            allowed: initial,
            hard_cap,
        }
    }

    /// The receiver announced SETTINGS_HEADER_TABLE_SIZE = `v`.
    pub fn set_allowed(&mut self, v: u64) {
        self.allowed = usize::try_from(v).unwrap_or(usize::MAX).min(self.hard_cap);
    }

    fn evict_to(&mut self, max: usize) {
        while self.size > max {
            match self.table.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + ENTRY_OVERHEAD,
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let cost = name.len() + value.len() + ENTRY_OVERHEAD;
        if cost > self.max_size {
            // RFC 7541 §4.4: an entry larger than the table empties it.
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - cost);
        self.size += cost;
        self.table.push_front((name, value));
    }

    fn get(&self, index: u64) -> Result<(Vec<u8>, Vec<u8>), HpackError> {
        let i = usize::try_from(index).map_err(|_| HpackError::BadIndex)?;
        if i == 0 {
            return Err(HpackError::BadIndex);
        }
        if let Some((n, v)) = STATIC_TABLE.get(i - 1) {
            return Ok((n.as_bytes().to_vec(), v.as_bytes().to_vec()));
        }
        self.table
            .get(i - 1 - STATIC_TABLE.len())
            .cloned()
            .ok_or(HpackError::BadIndex)
    }

    /// Decodes one complete header block. Fields past `max_list` bytes (name + value + 32
    /// each) are decoded (the table must stay in step) but not kept. On an error the
    /// fields decoded so far are returned with it.
    pub fn decode(&mut self, mut b: &[u8], max_list: usize) -> (Block, Option<HpackError>) {
        let mut block = Block::default();
        let mut list = 0usize;
        let max_str = max_list.max(1);
        while let Some(&c) = b.first() {
            let r = if c & 0x80 != 0 {
                read_int(&mut b, 7).and_then(|i| self.get(i))
            } else if c & 0xe0 == 0x20 {
                match read_int(&mut b, 5) {
                    Ok(v) if usize::try_from(v).is_ok_and(|v| v <= self.allowed) => {
                        self.max_size = v as usize;
                        self.evict_to(self.max_size);
                        block.headers.push(HeaderEntry::TableSizeUpdate(v));
                        continue;
                    }
                    Ok(_) => Err(HpackError::BadTableSize),
                    Err(e) => Err(e),
                }
            } else {
                let (prefix, index) = if c & 0xc0 == 0x40 {
                    (6, true)
                } else {
                    (4, false)
                };
                read_int(&mut b, prefix).and_then(|i| {
                    let name = if i == 0 {
                        read_string(&mut b, max_str)?
                    } else {
                        self.get(i)?.0
                    };
                    let value = read_string(&mut b, max_str)?;
                    if index {
                        self.insert(name.clone(), value.clone());
                    }
                    Ok((name, value))
                })
            };
            match r {
                Ok((name, value)) => {
                    list = list.saturating_add(name.len() + value.len() + ENTRY_OVERHEAD);
                    if list > max_list {
                        block.dropped += 1;
                    } else {
                        block.headers.push(HeaderEntry::Field { name, value });
                    }
                }
                Err(e) => return (block, Some(e)),
            }
        }
        (block, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: &str, v: &str) -> HeaderEntry {
        HeaderEntry::Field {
            name: n.as_bytes().to_vec(),
            value: v.as_bytes().to_vec(),
        }
    }

    fn unhex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(|c| c.is_ascii_hexdigit()).collect();
        s.chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    #[test]
    fn integers_rfc_c1() {
        // C.1.1: 10 with a 5-bit prefix; C.1.2: 1337; C.1.3: 42 at an octet boundary.
        assert_eq!(read_int(&mut &[0x0a][..], 5), Ok(10));
        assert_eq!(read_int(&mut &[0x1f, 0x9a, 0x0a][..], 5), Ok(1337));
        assert_eq!(read_int(&mut &[0x2a][..], 8), Ok(42));
        assert_eq!(
            read_int(&mut &[0x1f, 0x9a][..], 5),
            Err(HpackError::Truncated)
        );
        let long = [0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(
            read_int(&mut &long[..], 5),
            Err(HpackError::IntegerOverflow)
        );
    }

    #[test]
    fn requests_with_huffman_rfc_c4() {
        let mut h = Hpack::new(65536);
        let (b, e) = h.decode(&unhex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"), 65536);
        assert_eq!(e, None);
        assert_eq!(
            b.headers,
            vec![
                field(":method", "GET"),
                field(":scheme", "http"),
                field(":path", "/"),
                field(":authority", "www.example.com"),
            ]
        );
        let (b, e) = h.decode(&unhex("8286 84be 5886 a8eb 1064 9cbf"), 65536);
        assert_eq!(e, None);
        assert_eq!(b.headers[3], field(":authority", "www.example.com"));
        assert_eq!(b.headers[4], field("cache-control", "no-cache"));
        let (b, e) = h.decode(
            &unhex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"),
            65536,
        );
        assert_eq!(e, None);
        assert_eq!(b.headers[2], field(":path", "/index.html"));
        assert_eq!(b.headers[4], field("custom-key", "custom-value"));
        assert_eq!(h.size, 164);
    }

    #[test]
    fn responses_with_eviction_rfc_c6() {
        let mut h = Hpack::new(256);
        h.set_allowed(256);
        // The table starts at 4096 capped to 256; C.5/C.6 use a 256-byte table.
        let first = unhex(
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0
             82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        );
        let (b, e) = h.decode(&first, 65536);
        assert_eq!(e, None);
        assert_eq!(b.headers[0], field(":status", "302"));
        assert_eq!(b.headers[3], field("location", "https://www.example.com"));
        assert_eq!(h.size, 222);
        let (b, e) = h.decode(&unhex("4883 640e ffc1 c0bf"), 65536);
        assert_eq!(e, None);
        assert_eq!(b.headers[0], field(":status", "307"));
        // ":status: 302" was evicted to make room.
        assert_eq!(h.table.len(), 4);
        assert_eq!(h.size, 222);
    }

    #[test]
    fn size_update_is_logged_and_bounded() {
        let mut h = Hpack::new(4096);
        // 0x3f 0xe1 0x1f: size update to 4096.
        let (b, e) = h.decode(&[0x3f, 0xe1, 0x1f, 0x82], 65536);
        assert_eq!(e, None);
        assert_eq!(b.headers[0], HeaderEntry::TableSizeUpdate(4096));
        assert_eq!(b.headers[1], field(":method", "GET"));
        // 8192 is above what was allowed.
        let (_, e) = h.decode(&[0x3f, 0xe1, 0x3f], 65536);
        assert_eq!(e, Some(HpackError::BadTableSize));
    }

    #[test]
    fn malformed_blocks_are_errors() {
        let mut h = Hpack::new(4096);
        // Index 0, index past both tables.
        assert_eq!(h.decode(&[0x80], 100).1, Some(HpackError::BadIndex));
        assert_eq!(h.decode(&[0xbe], 100).1, Some(HpackError::BadIndex));
        // Literal whose value length runs past the block.
        assert_eq!(
            h.decode(&[0x40, 0x01, b'a', 0x05, b'x'], 100).1,
            Some(HpackError::Truncated)
        );
        // Huffman: padding of 8 one bits, padding with a zero bit, EOS inside.
        assert_eq!(huffman_decode(&[0xff], 10), Err(HpackError::BadHuffman));
        assert_eq!(huffman_decode(&[0x00], 10), Err(HpackError::BadHuffman));
        assert_eq!(
            huffman_decode(&[0xff, 0xff, 0xff, 0xfc], 10),
            Err(HpackError::BadHuffman)
        );
        assert_eq!(huffman_decode(&[0x1f], 10), Ok(b"a".to_vec()));
    }

    #[test]
    fn header_list_cap_keeps_table_in_step() {
        let mut h = Hpack::new(4096);
        // Two literals with incremental indexing, "aaaa: bbbb" each; cap fits one.
        let lit = [
            0x40, 0x04, b'a', b'a', b'a', b'a', 0x04, b'b', b'b', b'b', b'b',
        ];
        let mut block = lit.to_vec();
        block.extend_from_slice(&lit);
        let (b, e) = h.decode(&block, 50);
        assert_eq!(e, None);
        assert_eq!(b.headers.len(), 1);
        assert_eq!(b.dropped, 1);
        assert_eq!(h.table.len(), 2);
        // The dropped field's table entry is still there for the next block.
        let (b, _) = h.decode(&[0xbe], 1000);
        assert_eq!(b.headers, vec![field("aaaa", "bbbb")]);
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let mut h = Hpack::new(4096);
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            let n = (x % 64) as usize;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                v.push((x >> 16) as u8);
            }
            let _ = h.decode(&v, 4096);
            let _ = huffman_decode(&v, 64);
            assert!(h.size <= 4096);
        }
    }
}
