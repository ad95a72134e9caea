//! IPv4 header view (RFC 791) with options and header checksum.

use super::{be16, checksum_add, checksum_fold};
use crate::event::{DecodeEvent, Events};

/// IPv4 packet: version/ihl(1) tos(1) total_len(2) id(2) flags/frag(2) ttl(1) proto(1)
/// checksum(2) src(4) dst(4) options(ihl*4-20) payload.
#[derive(Debug)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

pub const IPV4_HEADER_LEN: usize = 20;

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Validates version, header length, total length against the buffer, in Suricata's
    /// order so the same malformed packet raises the same event.
    pub fn new_checked(buffer: T) -> Result<Self, DecodeEvent> {
        let b = buffer.as_ref();
        if b.len() < IPV4_HEADER_LEN {
            return Err(DecodeEvent::Ipv4PktTooSmall);
        }
        if b[0] >> 4 != 4 {
            return Err(DecodeEvent::Ipv4WrongIpVersion);
        }
        let hlen = usize::from(b[0] & 0x0f) * 4;
        if hlen < IPV4_HEADER_LEN {
            return Err(DecodeEvent::Ipv4HlenTooSmall);
        }
        let total = usize::from(be16(b, 2));
        if total < hlen {
            return Err(DecodeEvent::Ipv4IplenSmallerThanHlen);
        }
        if b.len() < total {
            return Err(DecodeEvent::Ipv4TruncPkt);
        }
        Ok(Ipv4Packet { buffer })
    }
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[0] & 0x0f) * 4
    }
    pub fn total_len(&self) -> usize {
        usize::from(be16(self.b(), 2))
    }
    pub fn ident(&self) -> u16 {
        be16(self.b(), 4)
    }
    pub fn more_frags(&self) -> bool {
        self.b()[6] & 0x20 != 0
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> usize {
        usize::from(be16(self.b(), 6) & 0x1fff) * 8
    }
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }
    pub fn ttl(&self) -> u8 {
        self.b()[8]
    }
    pub fn protocol(&self) -> u8 {
        self.b()[9]
    }
    pub fn src(&self) -> [u8; 4] {
        [self.b()[12], self.b()[13], self.b()[14], self.b()[15]]
    }
    pub fn dst(&self) -> [u8; 4] {
        [self.b()[16], self.b()[17], self.b()[18], self.b()[19]]
    }
    pub fn verify_checksum(&self) -> bool {
        if cfg!(feature = "fuzzing") {
            return true;
        }
        checksum_fold(checksum_add(0, &self.b()[..self.header_len()])) == 0
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv4Packet<&'a T> {
    pub fn options(&self) -> &'a [u8] {
        let buf: &'a T = self.buffer;
        let b: &'a [u8] = buf.as_ref();
        &b[IPV4_HEADER_LEN..self.header_len()]
    }
    /// The payload up to the total length (trailing link padding excluded).
    pub fn payload(&self) -> &'a [u8] {
        let buf: &'a T = self.buffer;
        let b: &'a [u8] = buf.as_ref();
        &b[self.header_len()..self.total_len()]
    }
    /// The whole datagram up to the total length.
    pub fn datagram(&self) -> &'a [u8] {
        let buf: &'a T = self.buffer;
        let b: &'a [u8] = buf.as_ref();
        &b[..self.total_len()]
    }
}

/// Validates IPv4 options like Suricata's decoder: lengths, padding, duplicates, unknown
/// types. Pushes events; never panics on any input.
pub fn check_options(opts: &[u8], ev: &mut Events) {
    let mut seen: u32 = 0; // bit per known option, for duplicate detection
    let mut i = 0;
    while i < opts.len() {
        let ty = opts[i];
        match ty {
            0 => {
                // End of option list: only padding may follow.
                if opts[i + 1..].iter().any(|&b| b != 0) {
                    ev.push(DecodeEvent::Ipv4OptEolRequired);
                }
                return;
            }
            1 => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let Some(&len) = opts.get(i + 1) else {
            // A multi-byte option cut short: the list needed an end-of-list instead.
            ev.push(DecodeEvent::Ipv4OptEolRequired);
            return;
        };
        let len = usize::from(len);
        if len < 2 || i + len > opts.len() {
            ev.push(DecodeEvent::Ipv4OptInvalidLen);
            return;
        }
        let bit = match ty {
            0x07 => 0, // record route
            0x44 => 1, // timestamp
            0x82 => 2, // security
            0x83 => 3, // loose source route
            0x89 => 4, // strict source route
            0x88 => 5, // stream id
            0x85 => 6, // extended security
            0x86 => 7, // commercial security
            0x94 => 8, // router alert
            0x95 => 9, // QS
            _ => {
                ev.push(DecodeEvent::Ipv4OptUnknown);
                32
            }
        };
        if bit < 32 {
            if seen & (1 << bit) != 0 {
                ev.push(DecodeEvent::Ipv4OptDuplicate);
            }
            seen |= 1 << bit;
            let malformed = match ty {
                // Route options: length 3 + 4n, pointer >= 4.
                0x07 | 0x83 | 0x89 => len < 3 || (len - 3) % 4 != 0 || opts[i + 2] < 4,
                // Timestamp: at least 4 bytes, pointer >= 5.
                0x44 => len < 4 || opts[i + 2] < 5,
                0x88 => len != 4,
                0x94 => len != 4,
                _ => false,
            };
            if malformed {
                ev.push(DecodeEvent::Ipv4OptMalformed);
            }
        }
        i += len;
    }
    // The list ran to the end of the header without an end-of-list option (Suricata
    // raises opt_pad_required for that).
    if !opts.is_empty() {
        ev.push(DecodeEvent::Ipv4OptPadRequired);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A minimal IPv4/UDP header with correct checksum.
    const HDR: [u8; 20] = [
        0x45, // version 4, ihl 5
        0x00, // tos
        0x00, 0x1c, // total length 28
        0x12, 0x34, // id
        0x20, 0x01, // flags MF, offset 1 (8 bytes)
        0x40, // ttl 64
        0x11, // protocol UDP
        0x00, 0x00, // checksum (filled by test)
        10, 0, 0, 1, // src
        10, 0, 0, 2, // dst
    ];

    fn with_checksum() -> Vec<u8> {
        let mut h = HDR.to_vec();
        let c = checksum_fold(checksum_add(0, &h));
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h.extend_from_slice(&[0u8; 8]);
        h
    }

    #[test]
    fn parses_fields() {
        let b = with_checksum();
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.protocol(), 17);
        assert_eq!(p.src(), [10, 0, 0, 1]);
        assert!(p.more_frags());
        assert_eq!(p.frag_offset(), 8);
        assert!(p.is_fragment());
        assert_eq!(p.payload().len(), 8);
        assert!(p.verify_checksum());
    }

    #[test]
    fn malformed_headers_raise_suricata_events() {
        let b = with_checksum();
        assert_eq!(
            Ipv4Packet::new_checked(&b[..19]).unwrap_err(),
            DecodeEvent::Ipv4PktTooSmall
        );
        let mut v = b.clone();
        v[0] = 0x65; // version 6
        assert_eq!(
            Ipv4Packet::new_checked(&v[..]).unwrap_err(),
            DecodeEvent::Ipv4WrongIpVersion
        );
        let mut v = b.clone();
        v[0] = 0x44; // ihl 4 → 16 bytes
        assert_eq!(
            Ipv4Packet::new_checked(&v[..]).unwrap_err(),
            DecodeEvent::Ipv4HlenTooSmall
        );
        let mut v = b.clone();
        v[3] = 10; // total length 10 < 20
        assert_eq!(
            Ipv4Packet::new_checked(&v[..]).unwrap_err(),
            DecodeEvent::Ipv4IplenSmallerThanHlen
        );
        assert_eq!(
            Ipv4Packet::new_checked(&b[..27]).unwrap_err(),
            DecodeEvent::Ipv4TruncPkt
        );
        let mut v = b.clone();
        v[15] ^= 1; // corrupt source address
        assert!(!Ipv4Packet::new_checked(&v[..]).unwrap().verify_checksum());
    }

    #[test]
    fn options() {
        let mut ev = Events::default();
        // NOP, router alert (0x94, len 4, value 0), end of list → valid.
        check_options(&[1, 0x94, 4, 0, 0, 0, 0, 0], &mut ev);
        assert!(ev.is_empty(), "{ev:?}");
        // Router alert filling the options without an end-of-list.
        check_options(&[0x94, 4, 0, 0], &mut ev);
        assert!(ev.contains(DecodeEvent::Ipv4OptPadRequired));
        ev.clear();
        // Option length 1 is invalid.
        check_options(&[0x07, 1, 0, 0], &mut ev);
        assert!(ev.contains(DecodeEvent::Ipv4OptInvalidLen));
        ev.clear();
        // Length running past the options area.
        check_options(&[0x44, 40, 5, 0], &mut ev);
        assert!(ev.contains(DecodeEvent::Ipv4OptInvalidLen));
        ev.clear();
        // Unknown option type 0x99 followed by NOPs.
        check_options(&[0x99, 2, 1, 1], &mut ev);
        assert!(ev.contains(DecodeEvent::Ipv4OptUnknown));
        ev.clear();
        // Two router alerts.
        check_options(&[0x94, 4, 0, 0, 0x94, 4, 0, 0], &mut ev);
        assert!(ev.contains(DecodeEvent::Ipv4OptDuplicate));
        ev.clear();
        // Data after end-of-list.
        check_options(&[0, 7, 0, 0], &mut ev);
        assert!(ev.contains(DecodeEvent::Ipv4OptEolRequired));
        ev.clear();
        // A lone option type byte with no length.
        check_options(&[0x07], &mut ev);
        assert!(ev.contains(DecodeEvent::Ipv4OptEolRequired));
    }
}
