//! Zero-copy views of wire formats, in the smoltcp style.
//!
//! Each view wraps a buffer `T: AsRef<[u8]>`. `new_checked` validates every length the
//! accessors rely on, so after it succeeds no accessor can panic; `payload()` borrows. A
//! failed check names the Suricata decoder event it corresponds to.

pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

/// Reads a big-endian u16 at `at`; callers guarantee `at + 2 <= b.len()` by a prior check.
#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(s) => u16::from_be_bytes([s[0], s[1]]),
        None => 0,
    }
}

/// Reads a big-endian u32 at `at` (0 if out of range, which checked views rule out).
#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

/// Internet checksum (RFC 1071) accumulation over `data`, starting from `sum`.
pub fn checksum_add(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

/// Folds a checksum accumulator to 16 bits and complements it.
pub fn checksum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Pseudo-header sum for TCP/UDP over IPv4.
pub fn pseudo_v4(src: [u8; 4], dst: [u8; 4], proto: u8, len: usize) -> u32 {
    let mut s = checksum_add(0, &src);
    s = checksum_add(s, &dst);
    s + u32::from(proto) + (len as u32 & 0xffff) + ((len as u32) >> 16)
}

/// Pseudo-header sum for TCP/UDP/ICMPv6 over IPv6.
pub fn pseudo_v6(src: [u8; 16], dst: [u8; 16], proto: u8, len: usize) -> u32 {
    let mut s = checksum_add(0, &src);
    s = checksum_add(s, &dst);
    s + u32::from(proto) + (len as u32 & 0xffff) + ((len as u32) >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_rfc1071_example() {
        // RFC 1071 §3 example words 0001 f203 f4f5 f6f7 sum to ddf2; complement 220d.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum_fold(checksum_add(0, &data)), 0x220d);
        // Odd length pads with a zero byte.
        assert_eq!(checksum_fold(checksum_add(0, &[0xff])), !0xff00);
    }

    #[test]
    fn be_readers_never_panic() {
        assert_eq!(be16(&[1], 0), 0);
        assert_eq!(be32(&[1, 2, 3], 0), 0);
        assert_eq!(be16(&[1, 2], 0), 0x0102);
    }
}
