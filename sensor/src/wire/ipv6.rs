//! IPv6 header view (RFC 8200) and extension-header walk.

use super::{be16, be32};
use crate::event::{DecodeEvent, Events};

/// IPv6 packet: version/tc/flow(4) payload_len(2) next_header(1) hop_limit(1) src(16)
/// dst(16) then extension headers and payload.
#[derive(Debug)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

pub const IPV6_HEADER_LEN: usize = 40;

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub fn new_checked(buffer: T) -> Result<Self, DecodeEvent> {
        let b = buffer.as_ref();
        if b.len() < IPV6_HEADER_LEN {
            return Err(DecodeEvent::Ipv6PktTooSmall);
        }
        if b[0] >> 4 != 6 {
            return Err(DecodeEvent::Ipv6WrongIpVersion);
        }
        if b.len() < IPV6_HEADER_LEN + usize::from(be16(b, 4)) {
            return Err(DecodeEvent::Ipv6TruncPkt);
        }
        Ok(Ipv6Packet { buffer })
    }
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    pub fn payload_len(&self) -> usize {
        usize::from(be16(self.b(), 4))
    }
    pub fn next_header(&self) -> u8 {
        self.b()[6]
    }
    pub fn hop_limit(&self) -> u8 {
        self.b()[7]
    }
    pub fn src(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.b()[8..24]);
        a
    }
    pub fn dst(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.b()[24..40]);
        a
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv6Packet<&'a T> {
    /// Everything after the fixed header, up to the payload length.
    pub fn payload(&self) -> &'a [u8] {
        let buf: &'a T = self.buffer;
        let b: &'a [u8] = buf.as_ref();
        &b[IPV6_HEADER_LEN..IPV6_HEADER_LEN + self.payload_len()]
    }
    /// The datagram up to the payload length (link padding excluded).
    pub fn datagram(&self) -> &'a [u8] {
        let buf: &'a T = self.buffer;
        let b: &'a [u8] = buf.as_ref();
        &b[..IPV6_HEADER_LEN + self.payload_len()]
    }
}

/// A fragment header found by [`walk_ext`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragHdr {
    /// Offset of the fragment header from the start of the IPv6 payload.
    pub hdr_off: usize,
    /// Next header carried by the fragment header.
    pub next: u8,
    /// Fragment offset in bytes.
    pub offset: usize,
    pub more: bool,
    pub id: u32,
}

/// The result of walking the extension headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtWalk {
    /// Upper-layer protocol (or the last header we could not walk past).
    pub proto: u8,
    /// Offset of the upper-layer data from the start of the IPv6 payload.
    pub l4_off: usize,
    pub frag: Option<FragHdr>,
    /// False when the walk stopped on a truncated header.
    pub ok: bool,
}

const HOPOPTS: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const ESP: u8 = 50;
const AH: u8 = 51;
const NONE: u8 = 59;
const DSTOPTS: u8 = 60;
const MOBILITY: u8 = 135;
const HIP: u8 = 139;
const SHIM6: u8 = 140;

/// Walks extension headers of `payload` (the bytes after the fixed header) starting from
/// `next`, raising Suricata's `decoder.ipv6.*` events. Bounded by the payload length and a
/// maximum of 32 headers; never panics.
pub fn walk_ext(mut next: u8, payload: &[u8], ev: &mut Events) -> ExtWalk {
    let mut off = 0usize;
    let mut frag = None;
    let mut seen: u16 = 0;
    let mut dup = |bit: u16, e: DecodeEvent, ev: &mut Events| {
        if seen & bit != 0 {
            ev.push(e);
        }
        seen |= bit;
    };
    for _ in 0..32 {
        let rest = payload.get(off..).unwrap_or(&[]);
        match next {
            HOPOPTS | DSTOPTS | ROUTING | MOBILITY | HIP | SHIM6 | FRAGMENT | AH => {}
            NONE => {
                if !rest.is_empty() {
                    ev.push(DecodeEvent::Ipv6DataAfterNoneHeader);
                }
                return ExtWalk {
                    proto: next,
                    l4_off: off,
                    frag,
                    ok: true,
                };
            }
            _ => {
                return ExtWalk {
                    proto: next,
                    l4_off: off,
                    frag,
                    ok: true,
                }
            }
        }
        if rest.len() < 8 {
            ev.push(DecodeEvent::Ipv6TruncExthdr);
            return ExtWalk {
                proto: next,
                l4_off: off,
                frag,
                ok: false,
            };
        }
        let hlen = match next {
            FRAGMENT => 8,
            AH => (usize::from(rest[1]) + 2) * 4,
            _ => (usize::from(rest[1]) + 1) * 8,
        };
        if hlen > rest.len() {
            ev.push(DecodeEvent::Ipv6TruncExthdr);
            return ExtWalk {
                proto: next,
                l4_off: off,
                frag,
                ok: false,
            };
        }
        let hdr = &rest[..hlen];
        match next {
            HOPOPTS => {
                dup(1, DecodeEvent::Ipv6ExthdrDuplHh, ev);
                check_opts(&hdr[2..], true, ev);
            }
            DSTOPTS => {
                dup(2, DecodeEvent::Ipv6ExthdrDuplDh, ev);
                check_opts(&hdr[2..], false, ev);
            }
            ROUTING => {
                dup(4, DecodeEvent::Ipv6ExthdrDuplRh, ev);
                if hdr[2] == 0 {
                    ev.push(DecodeEvent::Ipv6RhType0);
                }
            }
            FRAGMENT => {
                dup(8, DecodeEvent::Ipv6ExthdrDuplFh, ev);
                let fo = be16(hdr, 2);
                let offset = usize::from(fo >> 3) * 8;
                let more = fo & 1 != 0;
                if hdr[1] != 0 || fo & 0x6 != 0 {
                    ev.push(DecodeEvent::Ipv6FhNonZeroReservedField);
                }
                if offset == 0 && !more {
                    ev.push(DecodeEvent::Ipv6ExthdrUselessFh);
                } else if frag.is_none() {
                    let data_len = rest.len() - 8;
                    if more && data_len % 8 != 0 {
                        ev.push(DecodeEvent::Ipv6FragInvalidLength);
                    }
                    frag = Some(FragHdr {
                        hdr_off: off,
                        next: hdr[0],
                        offset,
                        more,
                        id: be32(hdr, 4),
                    });
                }
            }
            AH => {
                dup(16, DecodeEvent::Ipv6ExthdrDuplAh, ev);
                if be16(hdr, 2) != 0 {
                    ev.push(DecodeEvent::Ipv6ExthdrAhResNotNull);
                }
            }
            _ => {}
        }
        next = hdr[0];
        off += hlen;
        if let Some(f) = frag {
            if f.offset != 0 {
                // Non-first fragment: the rest is fragment data, not headers.
                return ExtWalk {
                    proto: next,
                    l4_off: off,
                    frag,
                    ok: true,
                };
            }
        }
        if next == ESP {
            dup(32, DecodeEvent::Ipv6ExthdrDuplEh, ev);
        }
    }
    ev.push(DecodeEvent::Ipv6TruncExthdr);
    ExtWalk {
        proto: next,
        l4_off: off,
        frag,
        ok: false,
    }
}

/// Hop-by-hop / destination options TLV walk.
fn check_opts(opts: &[u8], hop: bool, ev: &mut Events) {
    let mut i = 0;
    let mut only_padding = true;
    while i < opts.len() {
        let ty = opts[i];
        if ty == 0 {
            i += 1;
            continue;
        }
        let Some(&len) = opts.get(i + 1) else {
            ev.push(DecodeEvent::Ipv6ExthdrInvalidOptlen);
            return;
        };
        let len = usize::from(len);
        if i + 2 + len > opts.len() {
            ev.push(DecodeEvent::Ipv6ExthdrInvalidOptlen);
            return;
        }
        match ty {
            1 => {
                if len == 0 {
                    ev.push(DecodeEvent::Ipv6ZeroLenPadn);
                }
            }
            // Router alert, jumbo payload, CALIPSO, RPL, quick-start, tunnel limit, home
            // address (destination options only).
            5 | 0xc2 | 0x07 | 0x63 | 0x26 | 0x04 | 0xc9 => only_padding = false,
            _ => {
                only_padding = false;
                ev.push(if hop {
                    DecodeEvent::Ipv6HopoptsUnknownOpt
                } else {
                    DecodeEvent::Ipv6DstoptsUnknownOpt
                });
            }
        }
        i += 2 + len;
    }
    if only_padding {
        ev.push(if hop {
            DecodeEvent::Ipv6HopoptsOnlyPadding
        } else {
            DecodeEvent::Ipv6DstoptsOnlyPadding
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(payload_len: u16, next: u8) -> Vec<u8> {
        let mut v = vec![
            0x60, 0, 0, 0, // version 6, tc 0, flow 0
        ];
        v.extend_from_slice(&payload_len.to_be_bytes()); // payload length
        v.push(next); // next header
        v.push(64); // hop limit
        v.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]); // src
        v.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]); // dst
        v
    }

    #[test]
    fn fixed_header() {
        let mut b = hdr(8, 17);
        b.extend_from_slice(&[0; 8]);
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.next_header(), 17);
        assert_eq!(p.payload().len(), 8);
        assert_eq!(p.src()[15], 1);
        assert_eq!(
            Ipv6Packet::new_checked(&b[..39]).unwrap_err(),
            DecodeEvent::Ipv6PktTooSmall
        );
        assert_eq!(
            Ipv6Packet::new_checked(&b[..47]).unwrap_err(),
            DecodeEvent::Ipv6TruncPkt
        );
        b[0] = 0x40;
        assert_eq!(
            Ipv6Packet::new_checked(&b[..]).unwrap_err(),
            DecodeEvent::Ipv6WrongIpVersion
        );
    }

    #[test]
    fn ext_headers() {
        let mut ev = Events::default();
        // Hop-by-hop: next=UDP(17), hdrlen 0 (8 bytes), PadN len 4 → only padding.
        let hh = [17, 0, 1, 4, 0, 0, 0, 0];
        let w = walk_ext(0, &hh, &mut ev);
        assert_eq!(
            w,
            ExtWalk {
                proto: 17,
                l4_off: 8,
                frag: None,
                ok: true
            }
        );
        assert!(ev.contains(DecodeEvent::Ipv6HopoptsOnlyPadding));
        ev.clear();
        // Routing header type 0: next=TCP, len 0, type 0, segments left 0, reserved.
        let rh = [6, 0, 0, 0, 0, 0, 0, 0];
        walk_ext(43, &rh, &mut ev);
        assert!(ev.contains(DecodeEvent::Ipv6RhType0));
        ev.clear();
        // Fragment header: next=UDP, reserved 0, offset 0 with M, id 7; 5 data bytes → bad
        // length for a non-final fragment.
        let fh = [17, 0, 0x00, 0x01, 0, 0, 0, 7, 1, 2, 3, 4, 5];
        let w = walk_ext(44, &fh, &mut ev);
        assert_eq!(
            w.frag,
            Some(FragHdr {
                hdr_off: 0,
                next: 17,
                offset: 0,
                more: true,
                id: 7
            })
        );
        assert!(ev.contains(DecodeEvent::Ipv6FragInvalidLength));
        ev.clear();
        // Truncated: a hop-by-hop header claiming 16 bytes with 8 present.
        let w = walk_ext(0, &[17, 1, 0, 0, 0, 0, 0, 0], &mut ev);
        assert!(!w.ok);
        assert!(ev.contains(DecodeEvent::Ipv6TruncExthdr));
        ev.clear();
        // A chain of 40 destination-options headers stops at the bound without panic.
        let chain: Vec<u8> = (0..40).flat_map(|_| [60u8, 0, 1, 4, 0, 0, 0, 0]).collect();
        let w = walk_ext(60, &chain, &mut ev);
        assert!(!w.ok);
        assert!(ev.contains(DecodeEvent::Ipv6ExthdrDuplDh));
        ev.clear();
        // Zero-length PadN and an unknown destination option 0x3e.
        walk_ext(60, &[17, 0, 1, 0, 0x3e, 1, 0, 0], &mut ev);
        assert!(ev.contains(DecodeEvent::Ipv6ZeroLenPadn));
        assert!(ev.contains(DecodeEvent::Ipv6DstoptsUnknownOpt));
    }
}
