//! UDP header view (RFC 768).

use super::be16;
use crate::event::DecodeEvent;

pub const UDP_HEADER_LEN: usize = 8;

/// UDP datagram: sport(2) dport(2) length(2) checksum(2) payload.
#[derive(Debug)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Checks the header and that the length field fits the buffer; the payload is cut to
    /// the length field (Suricata's order of events).
    pub fn new_checked(buffer: T) -> Result<Self, DecodeEvent> {
        let b = buffer.as_ref();
        if b.len() < UDP_HEADER_LEN {
            return Err(DecodeEvent::UdpHlenTooSmall);
        }
        let len = usize::from(be16(b, 4));
        if b.len() < len {
            return Err(DecodeEvent::UdpPktTooSmall);
        }
        if len < UDP_HEADER_LEN {
            return Err(DecodeEvent::UdpLenInvalid);
        }
        Ok(UdpPacket { buffer })
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
    pub fn len(&self) -> usize {
        usize::from(be16(self.b(), 4))
    }
    pub fn is_empty(&self) -> bool {
        self.len() <= UDP_HEADER_LEN
    }
    pub fn checksum(&self) -> u16 {
        be16(self.b(), 6)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> UdpPacket<&'a T> {
    /// Bytes covered by the length field.
    pub fn datagram(&self) -> &'a [u8] {
        let buf: &'a T = self.buffer;
        let b: &'a [u8] = buf.as_ref();
        &b[..self.len()]
    }
    pub fn payload(&self) -> &'a [u8] {
        let buf: &'a T = self.buffer;
        let b: &'a [u8] = buf.as_ref();
        &b[UDP_HEADER_LEN..self.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_malformed() {
        let d = [
            0x00, 0x35, // sport 53
            0xc0, 0x00, // dport 49152
            0x00, 0x0a, // length 10
            0x00, 0x00, // checksum none
            0xab, 0xcd, // payload
            0xee, // trailing byte beyond the length field
        ];
        let u = UdpPacket::new_checked(&d[..]).unwrap();
        assert_eq!((u.src_port(), u.dst_port(), u.len()), (53, 49152, 10));
        assert_eq!(u.payload(), &[0xab, 0xcd]);
        assert_eq!(
            UdpPacket::new_checked(&d[..7]).unwrap_err(),
            DecodeEvent::UdpHlenTooSmall
        );
        assert_eq!(
            UdpPacket::new_checked(&d[..9]).unwrap_err(),
            DecodeEvent::UdpPktTooSmall
        );
        let mut bad = d;
        bad[5] = 4; // length 4 < header
        assert_eq!(
            UdpPacket::new_checked(&bad[..]).unwrap_err(),
            DecodeEvent::UdpLenInvalid
        );
    }
}
