//! Longest-prefix match over IPv4 and IPv6 networks: one hash map per prefix length present,
//! probed from the longest length down, so a lookup costs at most one hash probe per distinct
//! length (a few for a real inventory) and allocates nothing.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

/// The hasher of the enrichment tables (FxHash-style multiply-rotate with a final avalanche).
/// Their keys come from operator files, not from traffic, so SipHash's resistance to
/// chosen-key flooding buys nothing here, and it costs several times more per probe.
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    #[inline]
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            self.add(u64::from_le_bytes(b));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 56));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A hash map with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// An event's two addresses, parsed once for both the inventory and the indicators.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Addrs {
    pub src: Option<IpAddr>,
    pub dest: Option<IpAddr>,
}

impl Addrs {
    /// Parses EVE's `src_ip` and `dest_ip` (either may be empty or invalid: `None`).
    pub fn parse(src: &str, dest: &str) -> Addrs {
        Addrs {
            src: parse_ip(src),
            dest: parse_ip(dest),
        }
    }
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    if s.is_empty() {
        None
    } else {
        s.parse().ok()
    }
}

/// A network: an address with its host bits cleared, and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Net {
    pub addr: IpAddr,
    pub len: u8,
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl std::str::FromStr for Net {
    type Err = String;

    /// `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128). Host bits must be
    /// clear (`10.0.0.1/8` is refused: it is usually a typo).
    fn from_str(s: &str) -> Result<Net, String> {
        let s = s.trim();
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => (
                a,
                Some(
                    l.parse::<u8>()
                        .map_err(|_| format!("`{s}`: prefix length `{l}` is not a number"))?,
                ),
            ),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("`{s}`: `{a}` is not an IPv4 or IPv6 address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = len.unwrap_or(max);
        if len > max {
            return Err(format!("`{s}`: prefix length {len} is over {max}"));
        }
        let net = Net {
            addr: mask(addr, len),
            len,
        };
        if net.addr != addr {
            return Err(format!("`{s}`: host bits are set (the network is {})", net));
        }
        Ok(net)
    }
}

fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4(mask4(u32::from(a), len).into()),
        IpAddr::V6(a) => IpAddr::V6(mask6(u128::from(a), len).into()),
    }
}

fn mask4(a: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        a & (u32::MAX << (32 - u32::from(len)))
    }
}

fn mask6(a: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        a & (u128::MAX << (128 - u32::from(len)))
    }
}

/// Networks mapped to values; the longest matching prefix wins.
#[derive(Debug, Clone)]
pub struct PrefixMap<T> {
    /// (prefix length, masked address → value index), longest length first.
    v4: Vec<(u8, FastMap<u32, usize>)>,
    v6: Vec<(u8, FastMap<u128, usize>)>,
    values: Vec<T>,
}

impl<T> Default for PrefixMap<T> {
    fn default() -> Self {
        PrefixMap {
            v4: Vec::new(),
            v6: Vec::new(),
            values: Vec::new(),
        }
    }
}

impl<T> PrefixMap<T> {
    /// Adds `net → value`. If `net` is already present, keeps the first value and returns a
    /// reference to it as the error.
    pub fn insert(&mut self, net: Net, value: T) -> Result<(), &T> {
        let idx = self.values.len();
        let existing = match net.addr {
            IpAddr::V4(a) => insert_len(&mut self.v4, net.len, u32::from(a), idx),
            IpAddr::V6(a) => insert_len(&mut self.v6, net.len, u128::from(a), idx),
        };
        match existing {
            Some(i) => Err(&self.values[i]),
            None => {
                self.values.push(value);
                Ok(())
            }
        }
    }

    /// The value of the longest prefix containing `ip`.
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<&T> {
        let idx = match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4
                    .iter()
                    .find_map(|(len, m)| m.get(&mask4(a, *len)).copied())
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6
                    .iter()
                    .find_map(|(len, m)| m.get(&mask6(a, *len)).copied())
            }
        }?;
        self.values.get(idx)
    }

    /// [`lookup`](Self::lookup) of an address as EVE writes it; `None` if it does not parse.
    pub fn lookup_str(&self, ip: &str) -> Option<&T> {
        if self.values.is_empty() || ip.is_empty() {
            return None;
        }
        self.lookup(ip.parse().ok()?)
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

fn insert_len<K: std::hash::Hash + Eq>(
    tables: &mut Vec<(u8, FastMap<K, usize>)>,
    len: u8,
    key: K,
    idx: usize,
) -> Option<usize> {
    let pos = match tables.iter().position(|(l, _)| *l <= len) {
        Some(p) if tables[p].0 == len => p,
        Some(p) => {
            tables.insert(p, (len, FastMap::default()));
            p
        }
        None => {
            tables.push((len, FastMap::default()));
            tables.len() - 1
        }
    };
    match tables[pos].1.entry(key) {
        std::collections::hash_map::Entry::Occupied(e) => Some(*e.get()),
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(idx);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Net {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let mut m = PrefixMap::default();
        m.insert(net("10.0.0.0/8"), "wide").unwrap();
        m.insert(net("10.20.0.0/16"), "narrow").unwrap();
        m.insert(net("10.20.30.40"), "host").unwrap();
        m.insert(net("2001:db8::/32"), "v6").unwrap();
        m.insert(net("2001:db8:1::/48"), "v6-narrow").unwrap();
        m.insert(net("0.0.0.0/0"), "default").unwrap();
        assert_eq!(m.lookup_str("10.1.2.3"), Some(&"wide"));
        assert_eq!(m.lookup_str("10.20.2.3"), Some(&"narrow"));
        assert_eq!(m.lookup_str("10.20.30.40"), Some(&"host"));
        assert_eq!(m.lookup_str("192.0.2.1"), Some(&"default"));
        assert_eq!(
            m.lookup_str("2001:0db8:0001:0000:0000:0000:0000:0001"),
            Some(&"v6-narrow"),
            "fully expanded, as Suricata writes IPv6"
        );
        assert_eq!(m.lookup_str("2001:db8:2::1"), Some(&"v6"));
        assert_eq!(m.lookup_str("2001:db9::1"), None);
        assert_eq!(m.lookup_str("not an ip"), None);
        assert_eq!(m.lookup_str(""), None);
        assert_eq!(m.insert(net("10.0.0.0/8"), "again"), Err(&"wide"));
    }

    #[test]
    fn bad_networks() {
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "10.0.0/8",
            "::/129",
            "x",
            "",
            "1.2.3.4/",
            "1.2.3.4/-1",
        ] {
            assert!(bad.parse::<Net>().is_err(), "{bad}");
        }
        assert_eq!(net("::/0").len, 0);
        assert_eq!(net("1.2.3.4").len, 32);
    }
}
