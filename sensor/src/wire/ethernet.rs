//! Link layers: Ethernet II, 802.1Q/802.1ad VLAN tags, Linux cooked capture (SLL, SLL2) and
//! BSD null/loopback.

use super::be16;

/// EtherType values the decoder dispatches on (an open enum).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EtherType {
    Ipv4,
    Ipv6,
    Arp,
    /// 802.1Q (0x8100), 802.1ad (0x88a8) and the legacy QinQ 0x9100.
    Vlan,
    PppoeSession,
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x86dd => EtherType::Ipv6,
            0x0806 => EtherType::Arp,
            0x8100 | 0x88a8 | 0x9100 => EtherType::Vlan,
            0x8864 => EtherType::PppoeSession,
            other => EtherType::Unknown(other),
        }
    }
}

/// Ethernet II frame: dst(6) src(6) ethertype(2) payload.
#[derive(Debug)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

pub const ETHERNET_HEADER_LEN: usize = 14;

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Validates that the 14-byte header is present.
    pub fn new_checked(buffer: T) -> Option<Self> {
        (buffer.as_ref().len() >= ETHERNET_HEADER_LEN).then_some(EthernetFrame { buffer })
    }
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(be16(self.buffer.as_ref(), 12))
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> EthernetFrame<&'a T> {
    pub fn payload(&self) -> &'a [u8] {
        let buf: &'a T = self.buffer;
        let b: &'a [u8] = buf.as_ref();
        b.get(ETHERNET_HEADER_LEN..).unwrap_or(&[])
    }
}

/// 802.1Q tag after the TPID: TCI(2) ethertype(2).
#[derive(Debug)]
pub struct VlanTag<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanTag<T> {
    pub fn new_checked(buffer: T) -> Option<Self> {
        (buffer.as_ref().len() >= 4).then_some(VlanTag { buffer })
    }
    /// The 12-bit VLAN identifier.
    pub fn vid(&self) -> u16 {
        be16(self.buffer.as_ref(), 0) & 0x0fff
    }
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(be16(self.buffer.as_ref(), 2))
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> VlanTag<&'a T> {
    pub fn payload(&self) -> &'a [u8] {
        let buf: &'a T = self.buffer;
        let b: &'a [u8] = buf.as_ref();
        b.get(4..).unwrap_or(&[])
    }
}

/// Linux cooked capture v1 (DLT 113): pkttype(2) hatype(2) halen(2) addr(8) protocol(2).
pub const SLL_HEADER_LEN: usize = 16;
/// Linux cooked capture v2 (DLT 276): protocol(2) reserved(2) ifindex(4) hatype(2)
/// pkttype(1) halen(1) addr(8).
pub const SLL2_HEADER_LEN: usize = 20;

/// Returns (protocol, payload) of an SLL header, or None when too short.
pub fn sll(b: &[u8]) -> Option<(EtherType, &[u8])> {
    let payload = b.get(SLL_HEADER_LEN..)?;
    Some((EtherType::from(be16(b, 14)), payload))
}

/// Returns (protocol, payload) of an SLL2 header, or None when too short.
pub fn sll2(b: &[u8]) -> Option<(EtherType, &[u8])> {
    let payload = b.get(SLL2_HEADER_LEN..)?;
    Some((EtherType::from(be16(b, 0)), payload))
}

/// BSD null/loopback (DLT 0 host order, DLT 108 network order): a 4-byte address family.
/// Returns the IP version implied by the family, or None when unknown or too short.
pub fn null_family(b: &[u8]) -> Option<(u8, &[u8])> {
    let fam = b.get(0..4)?;
    let payload = b.get(4..)?;
    let le = u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]]);
    let be = u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]]);
    // AF_INET is 2 everywhere; AF_INET6 is 24 (BSD), 28 (FreeBSD), 30 (Darwin), 10 (Linux).
    let v = |f: u32| match f {
        2 => Some(4),
        10 | 24 | 28 | 30 => Some(6),
        _ => None,
    };
    v(le).or_else(|| v(be)).map(|ver| (ver, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ethernet_and_vlan() {
        let frame = [
            0, 1, 2, 3, 4, 5, // dst mac
            6, 7, 8, 9, 10, 11, // src mac
            0x81, 0x00, // TPID 802.1Q
            0x20, 0x64, // TCI: pcp 1, vid 100
            0x08, 0x00, // inner ethertype IPv4
            0x45, // payload starts
        ];
        let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
        assert_eq!(eth.ethertype(), EtherType::Vlan);
        let tag = VlanTag::new_checked(eth.payload()).unwrap();
        assert_eq!(tag.vid(), 100);
        assert_eq!(tag.ethertype(), EtherType::Ipv4);
        assert_eq!(tag.payload(), &[0x45]);
    }

    #[test]
    fn truncated_link_headers() {
        assert!(EthernetFrame::new_checked(&[0u8; 13][..]).is_none());
        assert!(VlanTag::new_checked(&[0u8; 3][..]).is_none());
        assert!(sll(&[0u8; 15]).is_none());
        assert!(sll2(&[0u8; 19]).is_none());
        assert!(null_family(&[2, 0, 0]).is_none());
    }

    #[test]
    fn sll_and_null() {
        let mut h = [0u8; 17];
        h[14] = 0x86; // protocol 0x86dd: IPv6
        h[15] = 0xdd;
        h[16] = 0x60;
        assert_eq!(sll(&h), Some((EtherType::Ipv6, &[0x60][..])));
        assert_eq!(null_family(&[2, 0, 0, 0, 0x45]), Some((4, &[0x45][..])));
        assert_eq!(null_family(&[0, 0, 0, 30]), Some((6, &[][..])));
        assert_eq!(null_family(&[9, 0, 0, 0]), None);
    }
}
