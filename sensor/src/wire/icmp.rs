//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) type/code checks and embedded headers.

use super::be16;
use crate::event::{DecodeEvent, Events};

/// The tuple of the packet embedded in an ICMPv4 error, used to map the error to the flow
/// of the original packet (as Suricata does for destination-unreachable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Embedded4 {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
}

/// Validates an ICMPv4 message: returns (type, code) and the embedded tuple for
/// destination-unreachable messages carrying a full IPv4 + L4 port header.
pub fn check_v4(b: &[u8], ev: &mut Events) -> Result<(u8, u8, Option<Embedded4>), DecodeEvent> {
    if b.len() < 8 {
        return Err(DecodeEvent::Icmpv4PktTooSmall);
    }
    let (ty, code) = (b[0], b[1]);
    let max_code = match ty {
        0 | 4 | 8 | 13 | 14 | 15 | 16 | 17 | 18 => Some(0),
        3 => Some(15),
        5 => Some(3),
        9 => Some(16),
        10 => Some(0),
        11 => Some(1),
        12 => Some(2),
        _ => None,
    };
    match max_code {
        None => ev.push(DecodeEvent::Icmpv4UnknownType),
        Some(m) if code > m => ev.push(DecodeEvent::Icmpv4UnknownCode),
        _ => {}
    }
    let mut emb = None;
    if matches!(ty, 3 | 4 | 5 | 11 | 12) {
        let inner = &b[8..];
        if inner.len() < 20 {
            ev.push(DecodeEvent::Icmpv4Ipv4TruncPkt);
        } else if inner[0] >> 4 != 4 {
            ev.push(DecodeEvent::Icmpv4Ipv4UnknownVer);
        } else if ty == 3 {
            let hl = usize::from(inner[0] & 0x0f) * 4;
            let proto = inner[9];
            if hl >= 20 && matches!(proto, 6 | 17) && inner.len() >= hl + 4 {
                emb = Some(Embedded4 {
                    src: [inner[12], inner[13], inner[14], inner[15]],
                    dst: [inner[16], inner[17], inner[18], inner[19]],
                    proto,
                    sport: be16(inner, hl),
                    dport: be16(inner, hl + 2),
                });
            }
        }
    }
    Ok((ty, code, emb))
}

/// Validates an ICMPv6 message: returns (type, code).
pub fn check_v6(b: &[u8], hop_limit: u8, ev: &mut Events) -> Result<(u8, u8), DecodeEvent> {
    if b.len() < 4 {
        return Err(DecodeEvent::Icmpv6PktTooSmall);
    }
    let (ty, code) = (b[0], b[1]);
    let max_code = match ty {
        1 => Some(7),
        2 => Some(0),
        3 => Some(1),
        4 => Some(3),
        128 | 129 => Some(0),
        130..=132 | 143 => {
            if hop_limit != 1 {
                ev.push(DecodeEvent::Icmpv6MldMessageWithInvalidHl);
            }
            Some(0)
        }
        133..=137 => Some(0),
        138 => Some(255),
        139 | 140 => Some(2),
        141 | 142 | 144..=161 => Some(255),
        100 | 101 | 200 | 201 => {
            ev.push(DecodeEvent::Icmpv6ExperimentationType);
            Some(255)
        }
        0 | 127 | 255 => {
            ev.push(DecodeEvent::Icmpv6UnknownType);
            Some(255)
        }
        _ => {
            ev.push(DecodeEvent::Icmpv6UnassignedType);
            Some(255)
        }
    };
    if let Some(m) = max_code {
        if code > m {
            ev.push(DecodeEvent::Icmpv6UnknownCode);
        }
    }
    if (1..=4).contains(&ty) {
        let inner = &b[8.min(b.len())..];
        if inner.len() < 40 {
            ev.push(DecodeEvent::Icmpv6Ipv6TruncPkt);
        } else if inner[0] >> 4 != 6 {
            ev.push(DecodeEvent::Icmpv6Ipv6UnknownVersion);
        }
    }
    Ok((ty, code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmpv4() {
        let mut ev = Events::default();
        // Echo request: type 8, code 0, checksum, id 1, seq 1.
        assert_eq!(
            check_v4(&[8, 0, 0, 0, 0, 1, 0, 1], &mut ev).unwrap(),
            (8, 0, None)
        );
        assert!(ev.is_empty());
        assert_eq!(
            check_v4(&[8, 0, 0], &mut ev).unwrap_err(),
            DecodeEvent::Icmpv4PktTooSmall
        );
        check_v4(&[42, 0, 0, 0, 0, 0, 0, 0], &mut ev).unwrap();
        assert!(ev.contains(DecodeEvent::Icmpv4UnknownType));
        ev.clear();
        check_v4(&[0, 9, 0, 0, 0, 0, 0, 0], &mut ev).unwrap();
        assert!(ev.contains(DecodeEvent::Icmpv4UnknownCode));
        ev.clear();
        // Port unreachable with a truncated embedded header.
        check_v4(&[3, 3, 0, 0, 0, 0, 0, 0, 0x45, 0], &mut ev).unwrap();
        assert!(ev.contains(DecodeEvent::Icmpv4Ipv4TruncPkt));
        ev.clear();
        // Port unreachable carrying IPv4/UDP 10.0.0.1:1000 → 10.0.0.2:53.
        let mut m = vec![3, 3, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[
            0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        m.extend_from_slice(&[0x03, 0xe8, 0x00, 0x35, 0, 8, 0, 0]);
        let (_, _, e) = check_v4(&m, &mut ev).unwrap();
        assert_eq!(
            e,
            Some(Embedded4 {
                src: [10, 0, 0, 1],
                dst: [10, 0, 0, 2],
                proto: 17,
                sport: 1000,
                dport: 53
            })
        );
        assert!(ev.is_empty());
    }

    #[test]
    fn icmpv6() {
        let mut ev = Events::default();
        assert_eq!(check_v6(&[128, 0, 0, 0], 64, &mut ev).unwrap(), (128, 0));
        assert!(ev.is_empty());
        assert_eq!(
            check_v6(&[128], 64, &mut ev).unwrap_err(),
            DecodeEvent::Icmpv6PktTooSmall
        );
        check_v6(&[130, 0, 0, 0], 64, &mut ev).unwrap(); // MLD query with hop limit 64
        assert!(ev.contains(DecodeEvent::Icmpv6MldMessageWithInvalidHl));
        ev.clear();
        check_v6(&[1, 0, 0, 0, 0, 0, 0, 0], 64, &mut ev).unwrap(); // unreachable, no inner
        assert!(ev.contains(DecodeEvent::Icmpv6Ipv6TruncPkt));
        ev.clear();
        check_v6(&[50, 0, 0, 0], 64, &mut ev).unwrap();
        assert!(ev.contains(DecodeEvent::Icmpv6UnassignedType));
    }
}
