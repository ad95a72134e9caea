//! TCP header view (RFC 9293) with options.

use super::{be16, be32};
use crate::event::{DecodeEvent, Events};

pub const TCP_HEADER_LEN: usize = 20;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;
pub const URG: u8 = 0x20;
pub const ECE: u8 = 0x40;
pub const CWR: u8 = 0x80;

/// TCP segment: sport(2) dport(2) seq(4) ack(4) off/flags(2) window(2) checksum(2) urg(2)
/// options payload.
#[derive(Debug)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    pub fn new_checked(buffer: T) -> Result<Self, DecodeEvent> {
        let b = buffer.as_ref();
        if b.len() < TCP_HEADER_LEN {
            return Err(DecodeEvent::TcpPktTooSmall);
        }
        let hlen = usize::from(b[12] >> 4) * 4;
        if hlen < TCP_HEADER_LEN {
            return Err(DecodeEvent::TcpInvalidOptlen);
        }
        if b.len() < hlen {
            return Err(DecodeEvent::TcpHlenTooSmall);
        }
        Ok(TcpPacket { buffer })
    }
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    pub fn src_port(&self) -> u16 {
        be16(self.b(), 0)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.b(), 2)
    }
    pub fn seq(&self) -> u32 {
        be32(self.b(), 4)
    }
    pub fn ack(&self) -> u32 {
        be32(self.b(), 8)
    }
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[12] >> 4) * 4
    }
    pub fn flags(&self) -> u8 {
        self.b()[13]
    }
    pub fn window(&self) -> u16 {
        be16(self.b(), 14)
    }
    pub fn checksum(&self) -> u16 {
        be16(self.b(), 16)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> TcpPacket<&'a T> {
    pub fn options(&self) -> &'a [u8] {
        let buf: &'a T = self.buffer;
        let b: &'a [u8] = buf.as_ref();
        &b[TCP_HEADER_LEN..self.header_len()]
    }
    pub fn payload(&self) -> &'a [u8] {
        let buf: &'a T = self.buffer;
        let b: &'a [u8] = buf.as_ref();
        &b[self.header_len()..]
    }
}

/// Options the stream engine uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOpts {
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamp: Option<(u32, u32)>,
    /// TCP Fast Open option (kind 34, RFC 7413): a SYN carrying it may carry data.
    pub tfo: bool,
    /// An authentication option: TCP MD5 signature (kind 19, RFC 2385) or TCP-AO (kind
    /// 29, RFC 5925). A monitor cannot check it, so it cannot tell whether the receiver
    /// accepts a RST carrying one.
    pub auth: bool,
}

/// Parses TCP options, raising `tcp.opt_invalid_len` / `tcp.opt_duplicate`. Bounded by the
/// option area (at most 40 bytes); never panics.
pub fn parse_options(opts: &[u8], ev: &mut Events) -> TcpOpts {
    let mut o = TcpOpts::default();
    let mut seen: u64 = 0;
    let mut i = 0;
    while i < opts.len() {
        let kind = opts[i];
        match kind {
            0 => break,
            1 => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let Some(&len) = opts.get(i + 1) else {
            ev.push(DecodeEvent::TcpOptInvalidLen);
            break;
        };
        let len = usize::from(len);
        if len < 2 || i + len > opts.len() {
            ev.push(DecodeEvent::TcpOptInvalidLen);
            break;
        }
        let data = &opts[i + 2..i + len];
        // RFC 6994 experimental options: ExID 0xF989 is TCP Fast Open's pre-RFC 7413 form
        // (a cookie request, or an 8-byte cookie), which Suricata takes as TFO too.
        if matches!(kind, 253 | 254) && (len == 4 || len == 12) && be16(data, 0) == 0xf989 {
            o.tfo = true;
        }
        let want = match kind {
            2 => Some(4),
            3 => Some(3),
            4 => Some(2),
            8 => Some(10),
            // TFO: a cookie request (length 2) or a cookie, even length 4..=18 (Suricata's
            // TCP_OPT_TFO bounds).
            34 if len == 2 || (4..=18).contains(&len) && len % 2 == 0 => Some(len),
            34 => Some(0),
            19 => Some(18),
            29 if len >= 4 => Some(len),
            29 => Some(0),
            _ => None,
        };
        if let Some(w) = want {
            if len != w {
                ev.push(DecodeEvent::TcpOptInvalidLen);
            } else {
                let bit = 1u64 << kind;
                if seen & bit != 0 {
                    ev.push(DecodeEvent::TcpOptDuplicate);
                }
                seen |= bit;
                match kind {
                    2 => o.mss = Some(be16(data, 0)),
                    3 => o.wscale = data.first().map(|&s| s.min(14)),
                    4 => o.sack_permitted = true,
                    8 => o.timestamp = Some((be32(data, 0), be32(data, 4))),
                    34 => o.tfo = true,
                    19 | 29 => o.auth = true,
                    _ => {}
                }
            }
        }
        i += len;
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syn_with_options() {
        let seg = [
            0x04, 0xd2, // sport 1234
            0x00, 0x50, // dport 80
            0, 0, 0, 1, // seq 1
            0, 0, 0, 0,    // ack 0
            0x80, // data offset 8 (32 bytes)
            0x02, // SYN
            0xff, 0xff, // window
            0, 0, // checksum
            0, 0, // urgent
            2, 4, 0x05, 0xb4, // MSS 1460
            1,    // NOP
            3, 3, 7, // window scale 7
            4, 2, // SACK permitted
            1, 1,    // NOP NOP
            b'x', // payload
        ];
        let p = TcpPacket::new_checked(&seg[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.seq()), (1234, 80, 1));
        assert_eq!(p.flags(), SYN);
        assert_eq!(p.payload(), b"x");
        let mut ev = Events::default();
        let o = parse_options(p.options(), &mut ev);
        assert!(ev.is_empty());
        assert_eq!(o.mss, Some(1460));
        assert_eq!(o.wscale, Some(7));
        assert!(o.sack_permitted);
    }

    #[test]
    fn malformed() {
        let mut seg = [0u8; 20];
        seg[12] = 0x40; // data offset 4 → 16 bytes
        assert_eq!(
            TcpPacket::new_checked(&seg[..]).unwrap_err(),
            DecodeEvent::TcpInvalidOptlen
        );
        seg[12] = 0x60; // 24 bytes but only 20 present
        assert_eq!(
            TcpPacket::new_checked(&seg[..]).unwrap_err(),
            DecodeEvent::TcpHlenTooSmall
        );
        assert_eq!(
            TcpPacket::new_checked(&seg[..19]).unwrap_err(),
            DecodeEvent::TcpPktTooSmall
        );
        let mut ev = Events::default();
        parse_options(&[2, 3, 0, 0], &mut ev); // MSS with length 3
        assert!(ev.contains(DecodeEvent::TcpOptInvalidLen));
        ev.clear();
        parse_options(&[2, 4, 0, 1, 2, 4, 0, 1], &mut ev); // MSS twice
        assert!(ev.contains(DecodeEvent::TcpOptDuplicate));
        ev.clear();
        parse_options(&[8, 40, 0, 0], &mut ev); // runs past the end
        assert!(ev.contains(DecodeEvent::TcpOptInvalidLen));
        ev.clear();
        parse_options(&[3], &mut ev); // kind without length
        assert!(ev.contains(DecodeEvent::TcpOptInvalidLen));
        ev.clear();
        // TCP Fast Open: a cookie request, a 8-byte cookie, an odd length, a duplicate.
        assert!(parse_options(&[34, 2], &mut ev).tfo);
        assert!(parse_options(&[34, 10, 1, 2, 3, 4, 5, 6, 7, 8], &mut ev).tfo);
        assert!(ev.is_empty());
        assert!(!parse_options(&[34, 5, 1, 2, 3], &mut ev).tfo);
        assert!(ev.contains(DecodeEvent::TcpOptInvalidLen));
        ev.clear();
        parse_options(&[34, 2, 34, 2], &mut ev);
        assert!(ev.contains(DecodeEvent::TcpOptDuplicate));
        ev.clear();
        // The experimental form (kind 254, ExID 0xF989); another ExID is not TFO.
        let exp = [
            254, 12, 0xf9, 0x89, 0x26, 0x1f, 0xb0, 0x60, 0xce, 0xca, 0xb6, 0x90,
        ];
        assert!(parse_options(&exp, &mut ev).tfo);
        assert!(parse_options(&[253, 4, 0xf9, 0x89], &mut ev).tfo);
        assert!(!parse_options(&[254, 4, 0x12, 0x34], &mut ev).tfo);
        assert!(!parse_options(&[254, 3, 0xf9], &mut ev).tfo);
        assert!(ev.is_empty());
        // Authentication options: MD5 signature (18 bytes), TCP-AO (at least 4).
        let mut md5 = [0u8; 18];
        md5[..2].copy_from_slice(&[19, 18]);
        assert!(parse_options(&md5, &mut ev).auth);
        assert!(parse_options(&[29, 4, 1, 2], &mut ev).auth);
        assert!(!parse_options(&[2, 4, 5, 0xb4], &mut ev).auth);
        assert!(ev.is_empty());
        assert!(!parse_options(&[19, 4, 0, 0], &mut ev).auth);
        assert!(ev.contains(DecodeEvent::TcpOptInvalidLen));
    }
}
