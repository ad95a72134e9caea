//! Packet decoding: link layer → IP → transport, into a [`Decoded`] summary that borrows
//! the packet. No allocation per packet; fragments go to [`crate::defrag`] and a completed
//! datagram is decoded from the defragmenter's buffer by [`Decoder::decode_reassembled`].

use crate::defrag::{Defrag, DefragConfig, FragKey};
use crate::event::{DecodeEvent, Events};
use crate::wire::ethernet::{self, EtherType, EthernetFrame, VlanTag};
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::tcp::{self, TcpOpts, TcpPacket};
use crate::wire::udp::UdpPacket;
use crate::wire::{checksum_add, checksum_fold, icmp, pseudo_v4, pseudo_v6};

/// Link types (pcap DLT values) the decoder understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    Ethernet,
    /// DLT_RAW / LINKTYPE_RAW: IPv4 or IPv6 by the version nibble.
    Raw,
    /// BSD loopback: a 4-byte address family (DLT_NULL host order, DLT_LOOP network order).
    Null,
    LinuxSll,
    LinuxSll2,
    Ipv4,
    Ipv6,
    /// DLT_PPP: PPP, optionally with HDLC address/control bytes `ff 03`.
    Ppp,
}

impl LinkType {
    /// Maps a pcap DLT/LINKTYPE number.
    pub fn from_dlt(dlt: i32) -> Option<Self> {
        Some(match dlt {
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::Raw,
            0 | 108 => LinkType::Null,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            9 => LinkType::Ppp,
            _ => return None,
        })
    }

    /// The link type as Suricata reports it in EVE `packet_info.linktype` (libpcap's DLT:
    /// a raw-IP capture is DLT_RAW, 12).
    pub fn dlt(self) -> u16 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::Raw => 12,
            LinkType::Null => 0,
            LinkType::LinuxSll => 113,
            LinkType::LinuxSll2 => 276,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::Ppp => 9,
        }
    }
}

/// A symmetric hash of a packet's outer IP address pair (0 for non-IP), used to shard
/// packets over workers: both directions of a flow, all fragments of a datagram and ICMP
/// errors about a flow land on the same worker. Decodes only what it needs; never panics.
pub fn shard_hash(link: LinkType, pkt: &[u8]) -> u64 {
    let mut b = pkt;
    let mut et = match link {
        LinkType::Ethernet => match EthernetFrame::new_checked(pkt) {
            Some(e) => {
                b = e.payload();
                e.ethertype()
            }
            None => return 0,
        },
        LinkType::LinuxSll => match ethernet::sll(pkt) {
            Some((et, p)) => {
                b = p;
                et
            }
            None => return 0,
        },
        LinkType::LinuxSll2 => match ethernet::sll2(pkt) {
            Some((et, p)) => {
                b = p;
                et
            }
            None => return 0,
        },
        LinkType::Null => {
            b = pkt.get(4..).unwrap_or(&[]);
            EtherType::Unknown(0)
        }
        LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => EtherType::Unknown(0),
        LinkType::Ppp => match ppp_header(pkt) {
            Some((0x0021, p)) => {
                b = p;
                EtherType::Ipv4
            }
            Some((0x0057, p)) => {
                b = p;
                EtherType::Ipv6
            }
            _ => return 0,
        },
    };
    for _ in 0..MAX_VLAN_LAYERS {
        if et != EtherType::Vlan {
            break;
        }
        match VlanTag::new_checked(b) {
            Some(t) => {
                et = t.ethertype();
                b = t.payload();
            }
            None => return 0,
        }
    }
    let (src, dst): (&[u8], &[u8]) = match (et, b.first().map(|v| v >> 4)) {
        (EtherType::Ipv4, _) | (EtherType::Unknown(0), Some(4)) if b.len() >= 20 => {
            (&b[12..16], &b[16..20])
        }
        (EtherType::Ipv6, _) | (EtherType::Unknown(0), Some(6)) if b.len() >= 40 => {
            (&b[8..24], &b[24..40])
        }
        _ => return 0,
    };
    let (lo, hi) = if src <= dst { (src, dst) } else { (dst, src) };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in lo.iter().chain(hi) {
        h = (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ (h >> 29)
}

/// Source and destination addresses. IPv4 addresses are stored in the first 4 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Addrs {
    pub v6: bool,
    pub src: [u8; 16],
    pub dst: [u8; 16],
}

impl Addrs {
    pub fn v4(src: [u8; 4], dst: [u8; 4]) -> Self {
        let mut a = Addrs {
            v6: false,
            src: [0; 16],
            dst: [0; 16],
        };
        a.src[..4].copy_from_slice(&src);
        a.dst[..4].copy_from_slice(&dst);
        a
    }
    pub fn v6(src: [u8; 16], dst: [u8; 16]) -> Self {
        Addrs { v6: true, src, dst }
    }
}

/// Transport-layer details of a decoded packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    /// Not decoded to a transport (non-IP, IP fragment, or an invalid transport header).
    None,
    Tcp(TcpInfo),
    Udp,
    Icmp {
        ty: u8,
        code: u8,
    },
    /// Another IP protocol (SCTP ports are filled in; others have port 0).
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpInfo {
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub win: u16,
    pub opts: TcpOpts,
}

/// The summary of one decoded packet. Borrows the packet (or the reassembly buffer).
#[derive(Clone, Debug)]
pub struct Decoded<'a> {
    /// Outer and inner VLAN ids (0 when absent).
    pub vlan: [u16; 2],
    pub addrs: Option<Addrs>,
    /// IP protocol number (0 when there is no IP layer).
    pub proto: u8,
    pub sp: u16,
    pub dp: u16,
    pub l4: L4,
    /// Transport payload (TCP/UDP data).
    pub payload: &'a [u8],
    /// Suricata's decoder events raised by this packet.
    pub events: Events,
    /// False when checksum validation is on and an IP/TCP/UDP/ICMP checksum is wrong.
    pub csum_ok: bool,
    /// The packet is an IP fragment (its transport is decoded only after reassembly).
    pub fragment: bool,
    /// For an ICMPv4 destination-unreachable: the embedded packet's tuple, which selects
    /// the flow of the original packet.
    pub icmp_embedded: Option<icmp::Embedded4>,
    /// The (innermost) IP header: IPv4 with its options, or IPv6's fixed 40 bytes and its
    /// extension headers (the detection engine's `ipv4.hdr`/`ipv6.hdr`, ttl, tos, id,
    /// ipopts).
    pub ip_hdr: &'a [u8],
    /// The transport header (`tcp.hdr` with options, `udp.hdr`, ICMP's first 8 bytes).
    pub l4_hdr: &'a [u8],
    /// The whole packet as Suricata logs it (EVE alert `packet`): the captured frame, or
    /// for a defragmented datagram its rebuilt packet (link header, then the datagram).
    pub frame: &'a [u8],
    /// Its link type (EVE `packet_info.linktype`, [`LinkType::dlt`]).
    pub linktype: u16,
}

impl Decoded<'_> {
    fn empty() -> Self {
        Decoded {
            vlan: [0; 2],
            addrs: None,
            proto: 0,
            sp: 0,
            dp: 0,
            l4: L4::None,
            payload: &[],
            events: Events::default(),
            csum_ok: true,
            fragment: false,
            icmp_embedded: None,
            ip_hdr: &[],
            l4_hdr: &[],
            frame: &[],
            linktype: 0,
        }
    }
}

/// Decoder counters.
#[derive(Clone, Debug, Default)]
pub struct DecodeStats {
    pub pkts: u64,
    pub bytes: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmpv4: u64,
    pub icmpv6: u64,
    pub vlan: u64,
    pub tunnels: u64,
    pub other_link: u64,
    pub invalid: u64,
    pub invalid_checksum: u64,
    /// Per event counts, indexed by `DecodeEvent as usize`.
    pub events: Vec<u64>,
}

/// Checksum validation mode (Suricata's `-k`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumMode {
    None,
    All,
}

/// Stateful decoder: owns the IP defragmenter and its output buffer.
pub struct Decoder {
    pub checksum: ChecksumMode,
    defrag: Defrag,
    /// Reassembled datagram waiting for `decode_reassembled` (valid when `pending`).
    pending: bool,
    pending_vlan: [u16; 2],
    /// Start address of the frame being decoded, and its link type.
    frame: (usize, u16),
    /// Link header (bytes before the outer IP header) of the fragment that completed the
    /// pending datagram: the rebuilt packet starts with it. (Suricata takes the first
    /// fragment's; a capture's link headers rarely differ between fragments.)
    pending_link: Vec<u8>,
    /// Its length, found while decoding that fragment.
    pending_link_off: Option<usize>,
    /// The rebuilt packet of the last reassembled datagram (`pending_link` + datagram with
    /// its IPv4 header checksum recomputed).
    rebuilt: Vec<u8>,
    /// Tunnel nesting of the packet being decoded.
    depth: u8,
    /// Address, length and kind of a VXLAN/Geneve/Teredo inner packet inside the last one.
    inner: Option<(usize, usize, Inner)>,
    /// VLAN layers of the packet being decoded so far (Suricata's `vlan_idx`).
    vlan_layers: usize,
    pub stats: DecodeStats,
}

/// What a UDP tunnel carries: decoded by [`Decoder::decode_inner`] as a packet of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Inner {
    /// VXLAN, Geneve: an Ethernet frame.
    Ethernet,
    /// Teredo: an IPv6 packet, in the outer packet's VLANs.
    Ipv6([u16; 2]),
    /// Geneve carrying IP directly (protocol 0x0800 or 0x86dd), in the outer VLANs.
    Ip([u16; 2]),
}

/// Most VLAN tags decoded (Suricata's limit); the first two are part of the flow key.
const MAX_VLAN_LAYERS: usize = 3;

/// Most tunnel layers decoded inside one packet.
const MAX_TUNNEL_DEPTH: u8 = 3;

impl Decoder {
    pub fn new(checksum: ChecksumMode, defrag: DefragConfig) -> Self {
        Decoder {
            checksum,
            defrag: Defrag::new(defrag),
            pending: false,
            pending_vlan: [0; 2],
            frame: (0, 0),
            pending_link: Vec::new(),
            pending_link_off: None,
            rebuilt: Vec::new(),
            depth: 0,
            inner: None,
            vlan_layers: 0,
            stats: DecodeStats {
                events: vec![0; DecodeEvent::ALL.len()],
                ..Default::default()
            },
        }
    }

    pub fn defrag_stats(&self) -> &crate::defrag::DefragStats {
        &self.defrag.stats
    }

    /// Decodes one captured packet. `ts` (µs) drives fragment timeouts.
    pub fn decode<'a>(&mut self, link: LinkType, pkt: &'a [u8], ts: i64) -> Decoded<'a> {
        self.stats.pkts += 1;
        self.stats.bytes += pkt.len() as u64;
        self.decode_frame(link, pkt, ts)
    }

    /// Decodes the inner packet of a defragmented tunnel packet (raw IP) like a captured
    /// one, except that it is not counted again as a packet read (`pkts`, `bytes`).
    pub fn decode_rebuilt<'a>(&mut self, pkt: &'a [u8], ts: i64) -> Decoded<'a> {
        self.decode_frame(LinkType::Raw, pkt, ts)
    }

    /// PPP (link type 9, GRE-carried PPP).
    fn ppp<'a>(&mut self, b: &'a [u8], d: &mut Decoded<'a>, ts: i64) {
        match ppp_header(b) {
            Some((0x0021, rest)) => self.ipv4(rest, d, ts),
            Some((0x0057, rest)) => self.ipv6(rest, d, ts),
            Some(_) => d.events.push(DecodeEvent::PppUnsupProto),
            None => d.events.push(DecodeEvent::PppPktTooSmall),
        }
    }

    /// A fragment was added: when it completed a datagram, remembers its link header
    /// (the bytes of the captured frame before `ip`, its outer IP header; none inside a
    /// tunnel) for the rebuilt packet.
    fn complete(&mut self, done: bool, ip: &[u8]) {
        self.pending = done;
        if !done {
            return;
        }
        let off = (ip.as_ptr() as usize).wrapping_sub(self.frame.0);
        self.pending_link_off = (self.depth == 0).then_some(off);
    }

    fn decode_frame<'a>(&mut self, link: LinkType, pkt: &'a [u8], ts: i64) -> Decoded<'a> {
        self.pending = false;
        self.depth = 0;
        self.inner = None;
        self.vlan_layers = 0;
        self.frame = (pkt.as_ptr() as usize, link.dlt());
        let mut d = Decoded::empty();
        d.frame = pkt;
        d.linktype = link.dlt();
        match link {
            LinkType::Ethernet => match EthernetFrame::new_checked(pkt) {
                Some(eth) => {
                    let (et, payload) = (eth.ethertype(), eth.payload());
                    self.ether(et, payload, &mut d, ts, 0);
                }
                None => d.events.push(DecodeEvent::EthernetPktTooSmall),
            },
            LinkType::LinuxSll => match ethernet::sll(pkt) {
                Some((et, payload)) => self.ether(et, payload, &mut d, ts, 0),
                None => d.events.push(DecodeEvent::SllPktTooSmall),
            },
            LinkType::LinuxSll2 => match ethernet::sll2(pkt) {
                Some((et, payload)) => self.ether(et, payload, &mut d, ts, 0),
                None => d.events.push(DecodeEvent::SllPktTooSmall),
            },
            LinkType::Null => {
                if pkt.len() < 4 {
                    d.events.push(DecodeEvent::LtnullPktTooSmall);
                } else {
                    match ethernet::null_family(pkt) {
                        Some((4, p)) => self.ipv4(p, &mut d, ts),
                        Some((_, p)) => self.ipv6(p, &mut d, ts),
                        None => d.events.push(DecodeEvent::LtnullUnsupportedType),
                    }
                }
            }
            LinkType::Raw => match pkt.first().map(|b| b >> 4) {
                Some(4) => self.ipv4(pkt, &mut d, ts),
                Some(6) => self.ipv6(pkt, &mut d, ts),
                _ => d.events.push(DecodeEvent::IprawInvalidIpVersion),
            },
            LinkType::Ipv4 => self.ipv4(pkt, &mut d, ts),
            LinkType::Ipv6 => self.ipv6(pkt, &mut d, ts),
            LinkType::Ppp => self.ppp(pkt, &mut d, ts),
        }
        if self.pending {
            self.pending_vlan = d.vlan;
            self.pending_link.clear();
            if let Some(l) = self.pending_link_off.take().and_then(|o| pkt.get(..o)) {
                self.pending_link.extend_from_slice(l);
            }
        }
        self.count(&d);
        d
    }

    /// True when the last `decode` completed an IP datagram from fragments.
    pub fn has_reassembled(&self) -> bool {
        self.pending
    }

    /// When the datagram completed by the last `decode` carries a tunnel (IP-in-IP, GRE:
    /// big GRE packets are often fragmented on the outside), copies it into `buf` (IPv4
    /// header checksum recomputed over the defragmented header) and consumes the
    /// completion: decoded again with `decode(LinkType::Raw, buf)`, its inner packet is
    /// tracked like a whole tunnelled packet's. False, and nothing consumed, otherwise
    /// ([`Decoder::decode_reassembled`] then decodes its transport layer).
    pub fn take_reassembled_tunnel(&mut self, buf: &mut Vec<u8>) -> bool {
        let out = self.defrag.output();
        let proto = match out.first().map(|b| b >> 4) {
            Some(4) => Ipv4Packet::new_checked(out).ok().map(|ip| ip.protocol()),
            Some(6) => Ipv6Packet::new_checked(out).ok().map(|ip| ip.next_header()),
            _ => None,
        };
        if !matches!(proto, Some(4 | 41 | 47)) {
            return false;
        }
        buf.clear();
        buf.extend_from_slice(out);
        ipv4_fix_checksum(buf);
        self.pending = false;
        true
    }

    /// Decodes the datagram completed by the last `decode` call (call once, after
    /// `has_reassembled`). Its transport layer is decoded like any packet's.
    pub fn decode_reassembled(&mut self) -> Decoded<'_> {
        self.pending = false;
        self.rebuilt.clear();
        self.rebuilt.extend_from_slice(&self.pending_link);
        let link_len = self.rebuilt.len();
        self.rebuilt.extend_from_slice(self.defrag.output());
        if let Some(h) = self.rebuilt.get_mut(link_len..) {
            ipv4_fix_checksum(h);
        }
        let mut d = Decoded::empty();
        d.vlan = self.pending_vlan;
        d.frame = &self.rebuilt;
        d.linktype = self.frame.1;
        let checksum = self.checksum;
        let buf = self.defrag.output();
        let mut ev = Events::default();
        match buf.first().map(|b| b >> 4) {
            Some(4) => {
                if let Ok(ip) = Ipv4Packet::new_checked(buf) {
                    d.ip_hdr = buf.get(..ip.header_len()).unwrap_or(&[]);
                    let addrs = Addrs::v4(ip.src(), ip.dst());
                    d.addrs = Some(addrs);
                    d.proto = ip.protocol();
                    let (proto, payload) = (ip.protocol(), ip.payload());
                    transport(&mut d, checksum, proto, payload, 255, &mut ev);
                }
            }
            Some(6) => {
                if let Ok(ip) = Ipv6Packet::new_checked(buf) {
                    d.ip_hdr = buf.get(..ipv6::IPV6_HEADER_LEN).unwrap_or(&[]);
                    d.addrs = Some(Addrs::v6(ip.src(), ip.dst()));
                    d.proto = ip.next_header();
                    let (proto, payload, hl) = (ip.next_header(), ip.payload(), ip.hop_limit());
                    transport(&mut d, checksum, proto, payload, hl, &mut ev);
                }
            }
            _ => {}
        }
        d.events = ev;
        for e in d.events.iter() {
            if let Some(c) = self.stats.events.get_mut(e as usize) {
                *c += 1;
            }
        }
        d
    }

    /// Expires fragment trackers older than the timeout at `now` (µs).
    pub fn expire(&mut self, now: i64) {
        self.defrag.expire(now);
    }

    fn count(&mut self, d: &Decoded) {
        for e in d.events.iter() {
            if let Some(c) = self.stats.events.get_mut(e as usize) {
                *c += 1;
            }
        }
        if !d.events.is_empty() && d.l4 == L4::None && !d.fragment {
            self.stats.invalid += 1;
        }
        if !d.csum_ok {
            self.stats.invalid_checksum += 1;
        }
        match d.l4 {
            L4::Tcp(_) => self.stats.tcp += 1,
            L4::Udp => self.stats.udp += 1,
            L4::Icmp { .. } if d.proto == 1 => self.stats.icmpv4 += 1,
            L4::Icmp { .. } => self.stats.icmpv6 += 1,
            _ => {}
        }
    }

    fn ether<'a>(
        &mut self,
        mut et: EtherType,
        mut payload: &'a [u8],
        d: &mut Decoded<'a>,
        ts: i64,
        first_layer: usize,
    ) {
        let mut layers = first_layer;
        loop {
            self.vlan_layers = layers;
            match et {
                EtherType::Ipv4 => return self.ipv4(payload, d, ts),
                EtherType::Ipv6 => return self.ipv6(payload, d, ts),
                EtherType::Vlan => {
                    self.stats.vlan += 1;
                    let Some(tag) = VlanTag::new_checked(payload) else {
                        d.events.push(DecodeEvent::VlanHeaderTooSmall);
                        return;
                    };
                    if layers >= MAX_VLAN_LAYERS {
                        d.events.push(DecodeEvent::VlanTooManyLayers);
                        return;
                    }
                    if let Some(v) = d.vlan.get_mut(layers) {
                        *v = tag.vid();
                    }
                    layers += 1;
                    et = tag.ethertype();
                    payload = tag.payload();
                }
                EtherType::PppoeSession => return self.pppoe(payload, d, ts),
                EtherType::Arp | EtherType::Unknown(_) => {
                    self.stats.other_link += 1;
                    return;
                }
            }
        }
    }

    /// Decodes IP-in-IP (4, 41) and GRE (47) tunnels: the inner packet replaces the outer
    /// one in `d` (Suricata tracks the inner flow). Returns false when `proto` is not a
    /// tunnel or the nesting is too deep.
    fn tunnel<'a>(&mut self, proto: u8, b: &'a [u8], d: &mut Decoded<'a>, ts: i64) -> bool {
        if !matches!(proto, 4 | 41 | 47) || self.depth >= MAX_TUNNEL_DEPTH {
            return false;
        }
        self.depth += 1;
        self.stats.tunnels += 1;
        d.addrs = None;
        d.proto = 0;
        match proto {
            4 => self.ipv4(b, d, ts),
            41 => self.ipv6(b, d, ts),
            _ => self.gre(b, d, ts),
        }
        self.depth -= 1;
        true
    }

    /// GRE (RFC 2784/2890) version 0 and the PPTP version 1 (RFC 2637).
    fn gre<'a>(&mut self, b: &'a [u8], d: &mut Decoded<'a>, ts: i64) {
        if b.len() < 4 {
            return;
        }
        let flags = u16::from_be_bytes([b[0], b[1]]);
        let proto = u16::from_be_bytes([b[2], b[3]]);
        let version = flags & 0x7;
        let mut off = 4;
        if flags & 0x8000 != 0 {
            off += 4; // checksum + reserved
        }
        if flags & 0x2000 != 0 {
            off += 4; // key (PPTP: payload length + call id)
        }
        if flags & 0x1000 != 0 {
            off += 4; // sequence number
        }
        if version == 1 && flags & 0x0080 != 0 {
            off += 4; // PPTP acknowledgment number
        }
        let Some(inner) = b.get(off..) else { return };
        match (version, proto) {
            (0, 0x0800) => self.ipv4(inner, d, ts),
            (0, 0x86dd) => self.ipv6(inner, d, ts),
            (0, 0x6558) => {
                if let Some(eth) = EthernetFrame::new_checked(inner) {
                    let (et, p) = (eth.ethertype(), eth.payload());
                    self.ether(et, p, d, ts, 0);
                }
            }
            // ERSPAN type II (sequence number flag set). Like Suricata 7's defaults, type I
            // (no sequence number: `decoder.erspan.typeI.enabled` is off) and type III
            // (0x22eb, which Suricata 7 does not know) are not decoded.
            (0, 0x88be) if flags & 0x1000 != 0 => self.erspan2(inner, d, ts),
            (1, 0x880b) => self.ppp(inner, d, ts),
            _ => {}
        }
    }

    /// ERSPAN type II header (8 bytes): ver(4) vlan(12) cos(3) en(2) t(1) session(10)
    /// reserved(12) index(20), then the mirrored Ethernet frame. A non-zero VLAN is added
    /// to the packet's VLANs (before the inner frame's own tags), as Suricata does.
    fn erspan2<'a>(&mut self, b: &'a [u8], d: &mut Decoded<'a>, ts: i64) {
        let (Some(&[v0, v1]), Some(frame)) = (b.get(..2), b.get(ERSPAN2_HEADER_LEN..)) else {
            return d.events.push(DecodeEvent::ErspanHeaderTooSmall);
        };
        if v0 >> 4 != 1 {
            return d.events.push(DecodeEvent::ErspanUnsupportedVersion);
        }
        let vlan = u16::from_be_bytes([v0 & 0x0f, v1]);
        let mut layers = self.vlan_layers;
        if vlan > 0 {
            if layers >= MAX_VLAN_LAYERS {
                return d.events.push(DecodeEvent::ErspanTooManyVlanLayers);
            }
            if let Some(v) = d.vlan.get_mut(layers) {
                *v = vlan;
            }
            layers += 1;
        }
        match EthernetFrame::new_checked(frame) {
            Some(eth) => {
                let (et, p) = (eth.ethertype(), eth.payload());
                self.ether(et, p, d, ts, layers);
            }
            None => d.events.push(DecodeEvent::EthernetPktTooSmall),
        }
    }

    /// PPPoE session (RFC 2516): ver/type(1) code(1) session(2) length(2), then PPP.
    fn pppoe<'a>(&mut self, b: &'a [u8], d: &mut Decoded<'a>, ts: i64) {
        if b.len() < 6 {
            d.events.push(DecodeEvent::PppoePktTooSmall);
            return;
        }
        if b[1] != 0 {
            d.events.push(DecodeEvent::PppoeWrongCode);
            return;
        }
        // PPP protocol field, possibly compressed to one byte (RFC 1661 §6.5: odd first
        // byte).
        let (proto, rest) = match &b[6..] {
            [p, rest @ ..] if p & 1 == 1 => (u16::from(*p), rest),
            [p0, p1, rest @ ..] => (u16::from_be_bytes([*p0, *p1]), rest),
            _ => {
                d.events.push(DecodeEvent::PppPktTooSmall);
                return;
            }
        };
        match proto {
            0x0021 => self.ipv4(rest, d, ts),
            0x0057 => self.ipv6(rest, d, ts),
            // LCP, PAP, CHAP, IPCP and other protocols carry no IP payload.
            _ => d.events.push(DecodeEvent::PppUnsupProto),
        }
    }

    fn ipv4<'a>(&mut self, b: &'a [u8], d: &mut Decoded<'a>, ts: i64) {
        let ip = match Ipv4Packet::new_checked(b) {
            Ok(ip) => ip,
            Err(e) => return d.events.push(e),
        };
        self.stats.ipv4 += 1;
        d.ip_hdr = b.get(..ip.header_len()).unwrap_or(&[]);
        d.addrs = Some(Addrs::v4(ip.src(), ip.dst()));
        d.proto = ip.protocol();
        ipv4::check_options(ip.options(), &mut d.events);
        if self.checksum == ChecksumMode::All && !ip.verify_checksum() {
            d.csum_ok = false;
        }
        if ip.is_fragment() {
            d.fragment = true;
            let key = FragKey {
                addrs: Addrs::v4(ip.src(), ip.dst()),
                id: u32::from(ip.ident()),
                proto: ip.protocol(),
                vlan: d.vlan,
            };
            let hdr = &b[..ip.header_len()];
            let r = self.defrag.insert_v4(
                key,
                hdr,
                ip.frag_offset(),
                ip.more_frags(),
                ip.payload(),
                ts,
            );
            if r.overlap {
                d.events.push(DecodeEvent::Ipv4FragOverlap);
            }
            if r.too_large {
                d.events.push(DecodeEvent::Ipv4FragPktTooLarge);
            }
            self.complete(r.complete, b);
            return;
        }
        if ip.protocol() == 58 {
            d.events.push(DecodeEvent::Ipv4Icmpv6);
        }
        let (proto, payload) = (ip.protocol(), ip.payload());
        if self.tunnel(proto, payload, d, ts) {
            return;
        }
        let mut ev = std::mem::take(&mut d.events);
        transport(d, self.checksum, proto, payload, ip.ttl(), &mut ev);
        d.events = ev;
        self.udp_tunnel(d);
    }

    fn ipv6<'a>(&mut self, b: &'a [u8], d: &mut Decoded<'a>, ts: i64) {
        let ip = match Ipv6Packet::new_checked(b) {
            Ok(ip) => ip,
            Err(e) => return d.events.push(e),
        };
        self.stats.ipv6 += 1;
        d.ip_hdr = b.get(..ipv6::IPV6_HEADER_LEN).unwrap_or(&[]);
        d.addrs = Some(Addrs::v6(ip.src(), ip.dst()));
        let payload = &b[ipv6::IPV6_HEADER_LEN..ipv6::IPV6_HEADER_LEN + ip.payload_len()];
        let w = ipv6::walk_ext(ip.next_header(), payload, &mut d.events);
        d.proto = w.proto;
        // `ipv6.hdr` is the fixed header and the extension headers (Suricata's
        // IPV6_HEADER_LEN + exthdrs length).
        d.ip_hdr = b
            .get(..ipv6::IPV6_HEADER_LEN + w.l4_off)
            .unwrap_or(d.ip_hdr);
        if let Some(f) = w.frag {
            d.fragment = true;
            let data = payload.get(f.hdr_off + 8..).unwrap_or(&[]);
            let key = FragKey {
                addrs: Addrs::v6(ip.src(), ip.dst()),
                id: f.id,
                proto: f.next,
                vlan: d.vlan,
            };
            let r = self.defrag.insert_v6(
                key,
                &b[..ipv6::IPV6_HEADER_LEN],
                f.next,
                f.offset,
                f.more,
                data,
                ts,
            );
            if r.overlap {
                d.events.push(DecodeEvent::Ipv6FragOverlap);
            }
            if r.too_large {
                d.events.push(DecodeEvent::Ipv6FragPktTooLarge);
            }
            self.complete(r.complete, b);
            return;
        }
        if !w.ok {
            return;
        }
        let l4 = payload.get(w.l4_off..).unwrap_or(&[]);
        if self.tunnel(w.proto, l4, d, ts) {
            return;
        }
        let mut ev = std::mem::take(&mut d.events);
        match w.proto {
            1 => ev.push(DecodeEvent::Ipv6Icmpv4),
            6 | 17 | 58 | 132 | 50 | 51 | 59 | 4 | 41 | 47 => {}
            _ => ev.push(DecodeEvent::Ipv6UnknownNextHeader),
        }
        transport(d, self.checksum, w.proto, l4, ip.hop_limit(), &mut ev);
        d.events = ev;
        self.udp_tunnel(d);
    }

    /// VXLAN (UDP 4789, RFC 7348) and Geneve (UDP 6081, RFC 8926) carry Ethernet frames,
    /// Teredo (RFC 4380, usually UDP 3544) IPv6 packets. Like Suricata, the outer
    /// datagram keeps its UDP flow and the inner packet is decoded as a packet of its own:
    /// its position is remembered for [`Decoder::decode_inner`].
    fn udp_tunnel(&mut self, d: &Decoded<'_>) {
        if d.l4 != L4::Udp || self.depth > 0 {
            return;
        }
        let p = d.payload;
        // Teredo on any port: Suricata 7 checks ports only when `decoder.teredo.ports` is
        // configured (the parity configuration does not), and relays use any port.
        if let Some(ip) = teredo_ipv6(p) {
            self.inner = Some((ip.as_ptr() as usize, ip.len(), Inner::Ipv6(d.vlan)));
            return;
        }
        let (inner, kind) = match d.dp {
            // flags(1, I bit 0x08) reserved(3) VNI(3) reserved(1); Suricata 7 decodes
            // only headers whose last reserved byte is zero.
            4789 if p.len() >= 8 + 14 && p[0] & 0x08 != 0 && p[7] == 0 => {
                (&p[8..], Inner::Ethernet)
            }
            // ver/optlen(1) flags(1) protocol(2) VNI(3) reserved(1) options(optlen*4);
            // the protocol is an Ethernet frame (0x6558) or, as Suricata also decodes,
            // an IPv4/IPv6 packet.
            6081 if p.len() >= 8 && p[0] >> 6 == 0 => {
                let kind = match u16::from_be_bytes([p[2], p[3]]) {
                    0x6558 => Inner::Ethernet,
                    0x0800 | 0x86dd => Inner::Ip(d.vlan),
                    _ => return,
                };
                match p.get(8 + usize::from(p[0] & 0x3f) * 4..) {
                    Some(i) if i.len() >= 14 => (i, kind),
                    _ => return,
                }
            }
            _ => return,
        };
        self.inner = Some((inner.as_ptr() as usize, inner.len(), kind));
    }

    /// If the last `decode` found a VXLAN/Geneve/Teredo payload, decodes the inner packet.
    /// `pkt` must be the packet given to that `decode` call.
    pub fn decode_inner<'a>(&mut self, pkt: &'a [u8], ts: i64) -> Option<Decoded<'a>> {
        let (addr, len, kind) = self.inner.take()?;
        let start = addr.checked_sub(pkt.as_ptr() as usize)?;
        let inner = pkt.get(start..start.checked_add(len)?)?;
        let mut d = Decoded::empty();
        d.frame = inner;
        d.linktype = match kind {
            Inner::Ethernet => LinkType::Ethernet.dlt(),
            Inner::Ipv6(_) | Inner::Ip(_) => LinkType::Raw.dlt(),
        };
        self.vlan_layers = 0;
        match kind {
            Inner::Ethernet => {
                let eth = EthernetFrame::new_checked(inner)?;
                self.depth = 1;
                let (et, payload) = (eth.ethertype(), eth.payload());
                self.ether(et, payload, &mut d, ts, 0);
            }
            Inner::Ipv6(vlan) => {
                self.depth = 1;
                d.vlan = vlan;
                self.ipv6(inner, &mut d, ts);
            }
            Inner::Ip(vlan) => {
                self.depth = 1;
                d.vlan = vlan;
                match inner.first().map(|b| b >> 4) {
                    Some(4) => self.ipv4(inner, &mut d, ts),
                    Some(6) => self.ipv6(inner, &mut d, ts),
                    _ => d.events.push(DecodeEvent::IprawInvalidIpVersion),
                }
            }
        }
        self.stats.tunnels += 1;
        self.depth = 0;
        self.count(&d);
        Some(d)
    }
}

/// PPP's protocol field and what follows it: optional HDLC address/control `ff 03`, then
/// the protocol, compressed to one byte when odd (RFC 1661 §6.5).
fn ppp_header(b: &[u8]) -> Option<(u16, &[u8])> {
    let b = match b {
        [0xff, 0x03, rest @ ..] => rest,
        other => other,
    };
    match b {
        [a, rest @ ..] if a & 1 == 1 => Some((u16::from(*a), rest)),
        [a, b2, rest @ ..] => Some((u16::from_be_bytes([*a, *b2]), rest)),
        _ => None,
    }
}

/// Recomputes the header checksum of an IPv4 packet (after defragmentation rewrote its
/// length and fragment fields); anything else is left alone.
fn ipv4_fix_checksum(buf: &mut [u8]) {
    if buf.first().map(|b| b >> 4) != Some(4) {
        return;
    }
    let hl = buf.first().map_or(0, |b| usize::from(b & 0x0f) * 4);
    if let Some(h) = buf.get_mut(..hl).filter(|h| h.len() >= 20) {
        h[10] = 0;
        h[11] = 0;
        let c = checksum_fold(checksum_add(0, h));
        h[10..12].copy_from_slice(&c.to_be_bytes());
    }
}

/// ERSPAN type II header length.
const ERSPAN2_HEADER_LEN: usize = 8;

/// Teredo origin indication: 0x0000, port(2), address(4), obfuscated.
const TEREDO_ORIGIN_LEN: usize = 8;

/// The IPv6 packet carried by a Teredo UDP payload, if it is one. Teredo has no magic
/// number, so like Suricata this accepts only: an optional origin indication (`00 00`;
/// an authentication indicator `00 01` is qualification traffic, not tunnelled data, and
/// any other `00 xx` is not Teredo), then an IPv6 header with a non-zero hop limit, not a
/// hop-by-hop header with under 8 bytes, whose payload length fills the datagram exactly.
fn teredo_ipv6(p: &[u8]) -> Option<&[u8]> {
    let ip = match p {
        [0, 0, ..] => p.get(TEREDO_ORIGIN_LEN..)?,
        [0, ..] => return None,
        _ => p,
    };
    let h = ip.get(..ipv6::IPV6_HEADER_LEN)?;
    let plen = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let (next, hop) = (h[6], h[7]);
    if h[0] >> 4 != 6 || hop == 0 || (next == 0 && plen < 8) {
        return None;
    }
    (ip.len() == ipv6::IPV6_HEADER_LEN + plen).then_some(ip)
}

/// Decodes the transport header in `b` (an IP payload) into `d`.
fn transport<'a>(
    d: &mut Decoded<'a>,
    ck: ChecksumMode,
    proto: u8,
    b: &'a [u8],
    hop: u8,
    ev: &mut Events,
) {
    let Some(addrs) = d.addrs else { return };
    let pseudo = |len: usize| {
        if addrs.v6 {
            pseudo_v6(addrs.src, addrs.dst, proto, len)
        } else {
            let (mut s, mut t) = ([0u8; 4], [0u8; 4]);
            s.copy_from_slice(&addrs.src[..4]);
            t.copy_from_slice(&addrs.dst[..4]);
            pseudo_v4(s, t, proto, len)
        }
    };
    let verify = ck == ChecksumMode::All && !cfg!(feature = "fuzzing");
    match proto {
        6 => match TcpPacket::new_checked(b) {
            Ok(t) => {
                let opts = tcp::parse_options(t.options(), ev);
                d.sp = t.src_port();
                d.dp = t.dst_port();
                d.l4 = L4::Tcp(TcpInfo {
                    seq: t.seq(),
                    ack: t.ack(),
                    flags: t.flags(),
                    win: t.window(),
                    opts,
                });
                d.payload = t.payload();
                d.l4_hdr = b.get(..t.header_len()).unwrap_or(&[]);
                if verify && checksum_fold(checksum_add(pseudo(b.len()), b)) != 0 {
                    d.csum_ok = false;
                }
            }
            Err(e) => ev.push(e),
        },
        17 => match UdpPacket::new_checked(b) {
            Ok(u) => {
                d.sp = u.src_port();
                d.dp = u.dst_port();
                d.l4 = L4::Udp;
                d.payload = u.payload();
                d.l4_hdr = b.get(..8).unwrap_or(&[]);
                let dg = u.datagram();
                if verify
                    && (u.checksum() != 0 || addrs.v6)
                    && checksum_fold(checksum_add(pseudo(dg.len()), dg)) != 0
                {
                    d.csum_ok = false;
                }
            }
            Err(e) => ev.push(e),
        },
        1 => match icmp::check_v4(b, ev) {
            Ok((ty, code, emb)) => {
                d.l4 = L4::Icmp { ty, code };
                d.icmp_embedded = emb;
                d.l4_hdr = b.get(..8).unwrap_or(b);
                d.payload = b.get(8..).unwrap_or(&[]);
                if verify && checksum_fold(checksum_add(0, b)) != 0 {
                    d.csum_ok = false;
                }
            }
            Err(e) => ev.push(e),
        },
        58 => match icmp::check_v6(b, hop, ev) {
            Ok((ty, code)) => {
                d.l4 = L4::Icmp { ty, code };
                d.l4_hdr = b.get(..8).unwrap_or(b);
                d.payload = b.get(8..).unwrap_or(&[]);
                if verify && checksum_fold(checksum_add(pseudo(b.len()), b)) != 0 {
                    d.csum_ok = false;
                }
            }
            Err(e) => ev.push(e),
        },
        // SCTP common header: sport(2) dport(2) vtag(4) checksum(4).
        132 if b.len() >= 12 => {
            d.sp = u16::from_be_bytes([b[0], b[1]]);
            d.dp = u16::from_be_bytes([b[2], b[3]]);
            d.l4 = L4::Other;
        }
        // ESP gets a flow (Suricata tracks it); other protocols are decoded to IP only.
        50 => d.l4 = L4::Other,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tcp::{ACK, PSH};

    /// Ethernet + IPv4 + TCP "GET" built field by field, checksums filled in.
    pub(crate) fn eth_ipv4_tcp(payload: &[u8]) -> Vec<u8> {
        let mut p = vec![
            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, // dst, src MAC
            0x08, 0x00, // IPv4
        ];
        let total = 20 + 20 + payload.len();
        p.extend_from_slice(&[0x45, 0]); // version/ihl, tos
        p.extend_from_slice(&(total as u16).to_be_bytes()); // total length
        p.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]); // id, DF, ttl, TCP, csum
        p.extend_from_slice(&[192, 168, 1, 1, 192, 168, 1, 2]); // src, dst
        let c = checksum_fold(checksum_add(0, &p[14..34]));
        p[24..26].copy_from_slice(&c.to_be_bytes());
        let tcp_start = p.len();
        p.extend_from_slice(&[0xc0, 0x00, 0x00, 0x50]); // sport 49152, dport 80
        p.extend_from_slice(&[0, 0, 0, 100, 0, 0, 0, 200]); // seq 100, ack 200
        p.extend_from_slice(&[0x50, PSH | ACK, 0x10, 0, 0, 0, 0, 0]); // off 5, flags, win
        p.extend_from_slice(payload);
        let s = pseudo_v4([192, 168, 1, 1], [192, 168, 1, 2], 6, 20 + payload.len());
        let c = checksum_fold(checksum_add(s, &p[tcp_start..]));
        p[tcp_start + 16..tcp_start + 18].copy_from_slice(&c.to_be_bytes());
        p
    }

    fn decoder() -> Decoder {
        Decoder::new(ChecksumMode::All, DefragConfig::default())
    }

    #[test]
    fn ethernet_ipv4_tcp() {
        let p = eth_ipv4_tcp(b"GET");
        let mut dec = decoder();
        let d = dec.decode(LinkType::Ethernet, &p, 0);
        assert!(d.events.is_empty(), "{:?}", d.events);
        assert!(d.csum_ok);
        assert_eq!((d.sp, d.dp, d.proto), (49152, 80, 6));
        assert_eq!(d.payload, b"GET");
        match d.l4 {
            L4::Tcp(t) => assert_eq!((t.seq, t.ack, t.flags), (100, 200, PSH | ACK)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_checksum_detected_only_with_k_all() {
        let mut p = eth_ipv4_tcp(b"GET");
        let last = p.len() - 1;
        p[last] ^= 0xff; // corrupt payload
        assert!(!decoder().decode(LinkType::Ethernet, &p, 0).csum_ok);
        let mut none = Decoder::new(ChecksumMode::None, DefragConfig::default());
        assert!(none.decode(LinkType::Ethernet, &p, 0).csum_ok);
    }

    #[test]
    fn every_truncation_is_safe_and_flagged() {
        // Cutting the frame at every length never panics; short cuts raise events.
        let p = eth_ipv4_tcp(b"GET");
        let mut dec = decoder();
        for n in 0..p.len() {
            let d = dec.decode(LinkType::Ethernet, &p[..n], 0);
            if n < 14 + 20 + 20 {
                assert!(!d.events.is_empty(), "no event at {n}");
                assert_eq!(d.l4, L4::None);
            }
        }
        assert_eq!(
            dec.decode(LinkType::Ethernet, &p[..10], 0)
                .events
                .iter()
                .next(),
            Some(DecodeEvent::EthernetPktTooSmall)
        );
        assert_eq!(
            dec.decode(LinkType::Ethernet, &p[..30], 0)
                .events
                .iter()
                .next(),
            Some(DecodeEvent::Ipv4PktTooSmall)
        );
        assert_eq!(
            dec.decode(LinkType::Ethernet, &p[..40], 0)
                .events
                .iter()
                .next(),
            Some(DecodeEvent::Ipv4TruncPkt)
        );
    }

    #[test]
    fn qinq_and_sll_and_raw() {
        let p = eth_ipv4_tcp(b"");
        // Insert two VLAN tags (802.1ad 100, 802.1Q 200) after the MACs.
        let mut q = p[..12].to_vec();
        q.extend_from_slice(&[0x88, 0xa8, 0x00, 100, 0x81, 0x00, 0x00, 200]);
        q.extend_from_slice(&p[12..]);
        let mut dec = decoder();
        let d = dec.decode(LinkType::Ethernet, &q, 0);
        assert_eq!(d.vlan, [100, 200]);
        assert_eq!(d.dp, 80);
        // Four tags: too many layers.
        let mut q3 = p[..12].to_vec();
        q3.extend_from_slice(&[
            0x88, 0xa8, 0, 1, 0x81, 0, 0, 2, 0x81, 0, 0, 3, 0x81, 0, 0, 4,
        ]);
        q3.extend_from_slice(&p[12..]);
        assert!(dec
            .decode(LinkType::Ethernet, &q3, 0)
            .events
            .contains(DecodeEvent::VlanTooManyLayers));
        // Linux cooked: 14 bytes of SLL fields then protocol 0x0800.
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&p[12..]);
        assert_eq!(dec.decode(LinkType::LinuxSll, &sll, 0).dp, 80);
        // Raw IP.
        assert_eq!(dec.decode(LinkType::Raw, &p[14..], 0).dp, 80);
        assert!(dec
            .decode(LinkType::Raw, &[0x10], 0)
            .events
            .contains(DecodeEvent::IprawInvalidIpVersion));
        // Null/loopback, AF_INET in host (little-endian) order.
        let mut null = vec![2, 0, 0, 0];
        null.extend_from_slice(&p[14..]);
        assert_eq!(dec.decode(LinkType::Null, &null, 0).dp, 80);
    }

    #[test]
    fn shard_hash_is_symmetric() {
        let p = eth_ipv4_tcp(b"x");
        let mut r = p.clone();
        r[26..30].copy_from_slice(&p[30..34]); // swap addresses
        r[30..34].copy_from_slice(&p[26..30]);
        assert_eq!(
            shard_hash(LinkType::Ethernet, &p),
            shard_hash(LinkType::Ethernet, &r)
        );
        assert_ne!(shard_hash(LinkType::Ethernet, &p), 0);
        assert_eq!(
            shard_hash(LinkType::Raw, &p[14..]),
            shard_hash(LinkType::Ethernet, &p)
        );
        for n in 0..p.len() {
            shard_hash(LinkType::Ethernet, &p[..n]);
        }
    }

    #[test]
    fn fragmented_gre_packet_is_decoded_as_its_inner_packet() {
        // A GRE packet (as above) whose outer IPv4 datagram is cut in two fragments at 16
        // bytes of payload (zeek pcap: SharePoint responses in GRE, fragmented outside).
        let inner = eth_ipv4_tcp(b"response bytes");
        let mut payload = vec![0, 0, 0x08, 0x00];
        payload.extend_from_slice(&inner[14..]);
        let frag = |off: usize, more: bool, part: &[u8]| {
            let mut h = vec![
                0x45, 0, 0, 0, 0, 9, 0, 0, 64, 47, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
            ];
            h[2..4].copy_from_slice(&((20 + part.len()) as u16).to_be_bytes());
            let fo = (off / 8) as u16 | if more { 0x2000 } else { 0 };
            h[6..8].copy_from_slice(&fo.to_be_bytes());
            h.extend_from_slice(part);
            h
        };
        let (a, b) = payload.split_at(16);
        let mut dec = Decoder::new(ChecksumMode::None, DefragConfig::default());
        let first = frag(0, true, a);
        let d = dec.decode(LinkType::Raw, &first, 0);
        assert!(d.fragment);
        let last = frag(16, false, b);
        dec.decode(LinkType::Raw, &last, 0);
        assert!(dec.has_reassembled());
        let mut buf = Vec::new();
        assert!(dec.take_reassembled_tunnel(&mut buf));
        assert!(!dec.has_reassembled(), "consumed");
        // The rebuilt outer header is valid: its checksum sums to zero.
        assert_eq!(checksum_fold(checksum_add(0, &buf[..20])), 0);
        let mut dec2 = Decoder::new(ChecksumMode::All, DefragConfig::default());
        let d = dec2.decode(LinkType::Raw, &buf, 0);
        assert_eq!((d.proto, d.dp, d.payload), (6, 80, &b"response bytes"[..]));
        // Decoded again by the decoder that saw the fragments: not a packet read.
        let d = dec.decode_rebuilt(&buf, 0);
        assert_eq!((d.proto, d.dp), (6, 80));
        assert_eq!(dec.stats.pkts, 2, "the two fragments only");
        // A reassembled datagram that is not a tunnel is left to decode_reassembled.
        let udp = {
            let mut u = vec![0x30, 0x39, 0x00, 0x35, 0, 12, 0, 0];
            u.extend_from_slice(b"dnsq");
            u
        };
        let mut f1 = frag(0, true, &udp[..8]);
        f1[9] = 17;
        let mut f2 = frag(8, false, &udp[8..]);
        f2[9] = 17;
        dec.decode(LinkType::Raw, &f1, 0);
        dec.decode(LinkType::Raw, &f2, 0);
        assert!(dec.has_reassembled());
        assert!(!dec.take_reassembled_tunnel(&mut buf));
        assert!(dec.has_reassembled());
    }

    #[test]
    fn gre_and_vxlan_tunnels() {
        let inner = eth_ipv4_tcp(b"x");
        // Outer IPv4 (proto 47 GRE) around GRE v0 (flags 0, protocol 0x0800) + inner IP.
        let mut g = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 47, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
        ];
        let total = (20 + 4 + inner.len() - 14) as u16;
        g[2..4].copy_from_slice(&total.to_be_bytes());
        g.extend_from_slice(&[0, 0, 0x08, 0x00]);
        g.extend_from_slice(&inner[14..]);
        let mut dec = Decoder::new(ChecksumMode::None, DefragConfig::default());
        let d = dec.decode(LinkType::Raw, &g, 0);
        assert_eq!((d.proto, d.dp, d.payload), (6, 80, &b"x"[..]));
        assert_eq!(d.addrs.map(|a| a.src[0]), Some(192), "inner addresses win");
        // Outer IPv4/UDP to 4789 + VXLAN header (I flag, VNI 1) + inner Ethernet frame.
        let mut v = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 3, 3, 3, 3, 4, 4, 4, 4,
        ];
        let udp_len = (8 + 8 + inner.len()) as u16;
        v[2..4].copy_from_slice(&(20 + udp_len).to_be_bytes());
        v.extend_from_slice(&[0x30, 0x39, 0x12, 0xb5]); // sport 12345, dport 4789
        v.extend_from_slice(&udp_len.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0x08, 0, 0, 0, 0, 0, 1, 0]);
        v.extend_from_slice(&inner);
        let outer = dec.decode(LinkType::Raw, &v, 0);
        assert_eq!(
            (outer.l4, outer.dp),
            (L4::Udp, 4789),
            "the outer datagram keeps its flow"
        );
        let d = dec.decode_inner(&v, 0).expect("inner frame");
        assert_eq!((d.proto, d.dp, d.payload), (6, 80, &b"x"[..]));
        assert!(dec.decode_inner(&v, 0).is_none(), "taken once");
        // A non-zero last reserved byte: not VXLAN for Suricata 7, only the UDP datagram.
        v[20 + 8 + 7] = 1;
        dec.decode(LinkType::Raw, &v, 0);
        assert!(dec.decode_inner(&v, 0).is_none(), "reserved byte set");
    }

    #[test]
    fn ipv4_fragments_reassemble() {
        // UDP datagram 10.0.0.1:1000 → 10.0.0.2:53 with 16 bytes of data, split 16 + 8.
        let mut udp = vec![0x03, 0xe8, 0x00, 0x35, 0x00, 24, 0, 0]; // ports, len 24, no csum
        udp.extend_from_slice(b"0123456789abcdef");
        let frag = |off: u16, mf: bool, data: &[u8]| {
            let mut p = vec![0x45, 0];
            p.extend_from_slice(&((20 + data.len()) as u16).to_be_bytes());
            let fo = (off / 8) | if mf { 0x2000 } else { 0 };
            p.extend_from_slice(&[0, 7]); // id 7
            p.extend_from_slice(&fo.to_be_bytes());
            p.extend_from_slice(&[64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
            p.extend_from_slice(data);
            p
        };
        let mut dec = Decoder::new(ChecksumMode::None, DefragConfig::default());
        let f2 = frag(16, false, &udp[16..]);
        let d = dec.decode(LinkType::Raw, &f2, 0);
        assert!(d.fragment);
        assert!(!dec.has_reassembled());
        let f1 = frag(0, true, &udp[..16]);
        dec.decode(LinkType::Raw, &f1, 1);
        assert!(dec.has_reassembled());
        let r = dec.decode_reassembled();
        assert_eq!((r.sp, r.dp, r.l4), (1000, 53, L4::Udp));
        assert_eq!(r.payload, b"0123456789abcdef");
        // An overlapping fragment of a new datagram raises frag_overlap.
        let g1 = frag(0, true, &udp[..16]);
        dec.decode(LinkType::Raw, &g1, 2);
        let g1b = frag(8, true, &udp[8..16]);
        let d = dec.decode(LinkType::Raw, &g1b, 3);
        assert!(d.events.contains(DecodeEvent::Ipv4FragOverlap));
    }

    #[test]
    fn geneve_carrying_ip_is_decoded_as_an_inner_packet() {
        let inner = eth_ipv4_tcp(b"GET")[14..].to_vec();
        for (proto, opts) in [(0x0800u16, 0u8), (0x0800, 2), (0x6558, 0)] {
            let mut geneve = vec![opts, 0];
            geneve.extend_from_slice(&proto.to_be_bytes());
            geneve.extend_from_slice(&[0, 0, 1, 0]); // VNI 1
            geneve.extend(std::iter::repeat_n(0u8, usize::from(opts) * 4));
            if proto == 0x6558 {
                geneve.extend_from_slice(&eth_ipv4_tcp(b"GET")[..14]);
            }
            geneve.extend_from_slice(&inner);
            let udp_len = 8 + geneve.len();
            let mut p = eth_ipv4_tcp(b"")[..14].to_vec();
            p.extend_from_slice(&[0x45, 0]);
            p.extend_from_slice(&((20 + udp_len) as u16).to_be_bytes());
            p.extend_from_slice(&[0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
            p.extend_from_slice(&[0xeb, 0x74, 0x17, 0xc1]); // 60276 -> 6081
            p.extend_from_slice(&(udp_len as u16).to_be_bytes());
            p.extend_from_slice(&[0, 0]);
            p.extend_from_slice(&geneve);
            let mut dec = Decoder::new(ChecksumMode::None, DefragConfig::default());
            let d = dec.decode(LinkType::Ethernet, &p, 0);
            assert_eq!((d.proto, d.dp), (17, 6081));
            let i = dec.decode_inner(&p, 0).expect("inner packet");
            assert_eq!(
                (i.proto, i.dp, i.payload),
                (6, 80, &b"GET"[..]),
                "{proto:x}"
            );
        }
    }

    #[test]
    fn ppp_link_type_and_rebuilt_frame() {
        let ip = eth_ipv4_tcp(b"GET")[14..].to_vec();
        for hdr in [&[0x21][..], &[0x00, 0x21], &[0xff, 0x03, 0x00, 0x21]] {
            let mut p = hdr.to_vec();
            p.extend_from_slice(&ip);
            let mut dec = decoder();
            let d = dec.decode(LinkType::Ppp, &p, 0);
            assert!(d.events.is_empty(), "{hdr:?}: {:?}", d.events);
            assert_eq!((d.dp, d.payload, d.linktype), (80, &b"GET"[..], 9));
            assert_eq!(d.frame, &p[..]);
            assert_ne!(shard_hash(LinkType::Ppp, &p), 0);
        }
        let mut dec = decoder();
        let d = dec.decode(LinkType::Ppp, &[0xff, 0x03], 0);
        assert!(d.events.contains(DecodeEvent::PppPktTooSmall));
        let d = dec.decode(LinkType::Ppp, &[0xc0, 0x21, 1, 2, 3], 0); // LCP
        assert!(d.events.contains(DecodeEvent::PppUnsupProto));
        assert_eq!(shard_hash(LinkType::Ppp, &[0xc0, 0x21, 1]), 0);
        // Two fragments of a UDP datagram behind a compressed PPP header: the rebuilt
        // packet is that header and the whole datagram, length, fragment field and header
        // checksum rewritten (Suricata's reassembled packet).
        let mut udp = vec![0x03, 0xe8, 0x00, 0x35, 0x00, 24, 0, 0];
        udp.extend_from_slice(b"0123456789abcdef");
        let frag = |off: u16, mf: bool, data: &[u8]| {
            let mut p = vec![0x21, 0x45, 0];
            p.extend_from_slice(&((20 + data.len()) as u16).to_be_bytes());
            let fo = (off / 8) | if mf { 0x2000 } else { 0 };
            p.extend_from_slice(&[0, 7]);
            p.extend_from_slice(&fo.to_be_bytes());
            p.extend_from_slice(&[64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
            p.extend_from_slice(data);
            p
        };
        let mut dec = Decoder::new(ChecksumMode::None, DefragConfig::default());
        dec.decode(LinkType::Ppp, &frag(0, true, &udp[..16]), 0);
        dec.decode(LinkType::Ppp, &frag(16, false, &udp[16..]), 1);
        assert!(dec.has_reassembled());
        let r = dec.decode_reassembled();
        assert_eq!((r.dp, r.linktype), (53, 9));
        assert_eq!(r.frame.len(), 1 + 20 + 24);
        assert_eq!(r.frame[0], 0x21);
        assert_eq!(&r.frame[3..5], &44u16.to_be_bytes());
        assert_eq!(&r.frame[7..9], &[0, 0]);
        assert_eq!(checksum_fold(checksum_add(0, &r.frame[1..21])), 0);
        assert_eq!(&r.frame[21..], &udp[..]);
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// sv-corpus-merged.pcap packet 7228: Ethernet, IPv4 (proto 47), GRE with the sequence
    /// flag (0x1000, protocol 0x88be), ERSPAN type II (version 1, VLAN 6), then an
    /// Ethernet frame with IPv4/TCP "GET /shell?cd+/tmp..." to port 80.
    const ERSPAN2_PKT: &str = "0000000000000cd0f88c677d0800450001568db40000fe2fd2c97a508f2e\
        83cb62f3100088be000000001006000600000014002052ff03036c310e2a01230800450001246c744000\
        3606bf73b7ab6481011308d5ea220050aa1a4a03043ce84780190447d95b00000101080a00ffdac93d27\
        ee73474554202f7368656c6c3f63642b2f746d703b726d2b2d72662b2a3b776765742b20687474703a2f\
        2f32332e39342e372e3137352f2e7334792f61726d3b73682b2f746d702f61726d20485454502f312e31\
        0d0a557365722d4167656e743a2048656c6c6f2c20776f726c640d0a486f73743a203132372e302e302e\
        313a38300d0a4163636570743a20746578742f68746d6c2c6170706c69636174696f6e2f7868746d6c2b\
        786d6c2c6170706c69636174696f6e2f786d6c3b713d302e392c696d6167652f776562702c2a2f2a3b71\
        3d302e380d0a436f6e6e656374696f6e3a206b6565702d616c6976650d0a0d0a";

    /// Offset of the ERSPAN header in `ERSPAN2_PKT` (Ethernet 14 + IPv4 20 + GRE 8).
    const ERSPAN_OFF: usize = 42;

    #[test]
    fn erspan_type2_is_decoded_as_its_inner_frame_with_its_vlan() {
        let pkt = unhex(ERSPAN2_PKT);
        let mut dec = decoder();
        let d = dec.decode(LinkType::Ethernet, &pkt, 0);
        assert!(d.events.is_empty(), "{:?}", d.events);
        assert_eq!(d.vlan, [6, 0]);
        let a = d.addrs.expect("inner addresses");
        assert_eq!(&a.src[..4], &[183, 171, 100, 129]);
        assert_eq!(&a.dst[..4], &[1, 19, 8, 213]);
        assert_eq!((d.proto, d.sp, d.dp), (6, 59938, 80));
        assert!(d.payload.starts_with(b"GET /shell?cd+/tmp"));
        assert_eq!(dec.stats.tunnels, 1);
    }

    #[test]
    fn erspan_malformed_headers_raise_suricata_events() {
        let pkt = unhex(ERSPAN2_PKT);
        // Truncated inside the ERSPAN header (outer IPv4 length fixed up so that the cut is
        // the datagram's end, not an IPv4 truncation).
        for cut in ERSPAN_OFF..ERSPAN_OFF + ERSPAN2_HEADER_LEN {
            let mut p = pkt[..cut].to_vec();
            p[16..18].copy_from_slice(&((cut - 14) as u16).to_be_bytes());
            let d = decoder().decode(LinkType::Ethernet, &p, 0);
            assert!(
                d.events.contains(DecodeEvent::ErspanHeaderTooSmall),
                "cut {cut}: {:?}",
                d.events
            );
            assert!(d.addrs.is_none());
        }
        // Header complete, inner Ethernet frame too short.
        let cut = ERSPAN_OFF + ERSPAN2_HEADER_LEN + 10;
        let mut p = pkt[..cut].to_vec();
        p[16..18].copy_from_slice(&((cut - 14) as u16).to_be_bytes());
        let d = decoder().decode(LinkType::Ethernet, &p, 0);
        assert!(d.events.contains(DecodeEvent::EthernetPktTooSmall));
        // Versions other than 1 (type II) are not decoded.
        for v in [0u8, 2, 15] {
            let mut p = pkt.clone();
            p[ERSPAN_OFF] = (v << 4) | (p[ERSPAN_OFF] & 0x0f);
            let d = decoder().decode(LinkType::Ethernet, &p, 0);
            assert!(d.events.contains(DecodeEvent::ErspanUnsupportedVersion));
            assert!(d.addrs.is_none());
        }
        // An ERSPAN VLAN on top of three VLAN tags already: too many layers.
        let mut p = pkt[..12].to_vec();
        for vid in [1u8, 2, 3] {
            p.extend_from_slice(&[0x81, 0x00, 0x00, vid]);
        }
        p.extend_from_slice(&pkt[12..]);
        let d = decoder().decode(LinkType::Ethernet, &p, 0);
        assert!(d.events.contains(DecodeEvent::ErspanTooManyVlanLayers));
        // Without the sequence flag it is type I, which Suricata 7 leaves undecoded by
        // default; 0x22eb (type III) is not decoded either.
        for (flags, proto) in [([0x00, 0x00], [0x88, 0xbe]), ([0x10, 0x00], [0x22, 0xeb])] {
            let mut p = pkt.clone();
            p[34..36].copy_from_slice(&flags);
            p[36..38].copy_from_slice(&proto);
            let d = decoder().decode(LinkType::Ethernet, &p, 0);
            assert!(d.addrs.is_none() && d.events.is_empty());
        }
    }

    /// sv-corpus-merged.pcap packet 12866: IPv4/UDP 192.168.2.16:3797 -> 83.170.1.38:32900
    /// (a Teredo relay, not port 3544) carrying an IPv6 TCP SYN from the Teredo address
    /// 2001:0:4137:9e50:8000:f12a:b9c8:2815 port 1286 to 2001:4860:0:2001::68 port 80.
    const TEREDO_PKT: &str = "001d5adccff10016cf419c2008004500005c87de000080119b2ac0a80210\
        53aa01260ed580840048f20160000000001806802001000041379e508000f12ab9c82815200148600000\
        20010000000000000068050600507c7b6b46000000006002400090a20000020404c4";

    /// sv-corpus-merged.pcap packet 12838: a Teredo router solicitation to the server's
    /// port 3544 behind an authentication indicator (qualification, not tunnelled data).
    const TEREDO_AUTH_PKT: &str = "001d5adccff10016cf419c2008004500006987c3000080111081c0a8\
        021041379e500ed50dd80055597900010000cd5669400b22df88006000000000183afffe800000000000\
        008000fffffffffffdff0200000000000000000000000000028500a91d0000000001020000000000008000\
        f12ab9c82815";

    #[test]
    fn teredo_inner_ipv6_is_a_packet_of_its_own() {
        let pkt = unhex(TEREDO_PKT);
        let mut dec = decoder();
        let outer = dec.decode(LinkType::Ethernet, &pkt, 0);
        assert_eq!((outer.l4, outer.sp, outer.dp), (L4::Udp, 3797, 32900));
        let inner = dec.decode_inner(&pkt, 0).expect("teredo inner packet");
        let a = inner.addrs.expect("inner addresses");
        assert!(a.v6);
        assert_eq!(&a.src[..4], &[0x20, 0x01, 0, 0]);
        assert_eq!((inner.proto, inner.sp, inner.dp), (6, 1286, 80));
        assert!(matches!(inner.l4, L4::Tcp(t) if t.flags & 0x02 != 0));
        assert!(inner.events.is_empty() && inner.csum_ok);
        assert!(dec.decode_inner(&pkt, 0).is_none(), "taken once");

        // The authentication indicator is not tunnelled data (Suricata does the same).
        let auth = unhex(TEREDO_AUTH_PKT);
        let d = dec.decode(LinkType::Ethernet, &auth, 0);
        assert_eq!(d.dp, 3544);
        assert!(dec.decode_inner(&auth, 0).is_none());
    }

    #[test]
    fn teredo_validation() {
        let pkt = unhex(TEREDO_PKT);
        let ip = &pkt[42..];
        assert_eq!(teredo_ipv6(ip), Some(ip));
        // With an origin indication (00 00, port, address) before the IPv6 header.
        let mut o = vec![0, 0, 0xf1, 0x2a, 0xb9, 0xc8, 0x28, 0x15];
        o.extend_from_slice(ip);
        assert_eq!(teredo_ipv6(&o), Some(ip));
        // Origin indication with too little after it, unknown indicator types.
        assert_eq!(teredo_ipv6(&o[..8 + 39]), None);
        for t in [1u8, 2, 0xff] {
            let mut x = o.clone();
            x[1] = t;
            assert_eq!(teredo_ipv6(&x), None);
        }
        // Every truncation, and one byte too many: the length must fill the datagram.
        for cut in 0..ip.len() {
            assert_eq!(teredo_ipv6(&ip[..cut]), None, "cut {cut}");
        }
        let mut long = ip.to_vec();
        long.push(0);
        assert_eq!(teredo_ipv6(&long), None);
        // Wrong version, hop limit 0, hop-by-hop with under 8 bytes.
        let mut v = ip.to_vec();
        v[0] = 0x45;
        assert_eq!(teredo_ipv6(&v), None);
        let mut h = ip.to_vec();
        h[7] = 0;
        assert_eq!(teredo_ipv6(&h), None);
        let mut hbh = ip[..44].to_vec();
        hbh[4..6].copy_from_slice(&4u16.to_be_bytes());
        hbh[6] = 0;
        assert_eq!(teredo_ipv6(&hbh), None);
        hbh[6] = 59;
        assert_eq!(teredo_ipv6(&hbh), Some(&hbh[..]));
        // Oversized payload length field.
        let mut big = ip.to_vec();
        big[4..6].copy_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(teredo_ipv6(&big), None);
    }
}
