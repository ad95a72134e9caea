//! Decoder and TCP stream anomaly events, named exactly as Suricata 7's `decode-event` and
//! `stream-event` keywords (`decoder-events.rules`, `stream-events.rules`), e.g.
//! `decoder.ipv4.pkt_too_small`, `stream.pkt_invalid_timestamp`.

macro_rules! decode_events {
    ($($variant:ident => $name:literal,)*) => {
        /// One decoder anomaly. `name()` is Suricata's EVE `anomaly.event` string.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum DecodeEvent { $($variant,)* }

        impl DecodeEvent {
            /// Every event, for counters indexed by `self as usize`.
            pub const ALL: &'static [DecodeEvent] = &[$(DecodeEvent::$variant,)*];

            /// Suricata's name, e.g. "decoder.ipv4.pkt_too_small".
            pub fn name(self) -> &'static str {
                match self { $(DecodeEvent::$variant => $name,)* }
            }
        }
    };
}

decode_events! {
    EthernetPktTooSmall => "decoder.ethernet.pkt_too_small",
    SllPktTooSmall => "decoder.sll.pkt_too_small",
    LtnullPktTooSmall => "decoder.ltnull.pkt_too_small",
    LtnullUnsupportedType => "decoder.ltnull.unsupported_type",
    VlanHeaderTooSmall => "decoder.vlan.header_too_small",
    VlanUnknownType => "decoder.vlan.unknown_type",
    VlanTooManyLayers => "decoder.vlan.too_many_layers",
    PppoePktTooSmall => "decoder.pppoe.pkt_too_small",
    PppoeWrongCode => "decoder.pppoe.wrong_code",
    PppPktTooSmall => "decoder.ppp.pkt_too_small",
    PppUnsupProto => "decoder.ppp.unsup_proto",
    ErspanHeaderTooSmall => "decoder.erspan.header_too_small",
    ErspanUnsupportedVersion => "decoder.erspan.unsupported_version",
    ErspanTooManyVlanLayers => "decoder.erspan.too_many_vlan_layers",
    IprawInvalidIpVersion => "decoder.ipraw.invalid_ip_version",
    Ipv4PktTooSmall => "decoder.ipv4.pkt_too_small",
    Ipv4HlenTooSmall => "decoder.ipv4.hlen_too_small",
    Ipv4IplenSmallerThanHlen => "decoder.ipv4.iplen_smaller_than_hlen",
    Ipv4TruncPkt => "decoder.ipv4.trunc_pkt",
    Ipv4OptInvalid => "decoder.ipv4.opt_invalid",
    Ipv4OptInvalidLen => "decoder.ipv4.opt_invalid_len",
    Ipv4OptMalformed => "decoder.ipv4.opt_malformed",
    Ipv4OptPadRequired => "decoder.ipv4.opt_pad_required",
    Ipv4OptEolRequired => "decoder.ipv4.opt_eol_required",
    Ipv4OptDuplicate => "decoder.ipv4.opt_duplicate",
    Ipv4OptUnknown => "decoder.ipv4.opt_unknown",
    Ipv4WrongIpVersion => "decoder.ipv4.wrong_ip_version",
    Ipv4Icmpv6 => "decoder.ipv4.icmpv6",
    Ipv4FragPktTooLarge => "decoder.ipv4.frag_pkt_too_large",
    Ipv4FragOverlap => "decoder.ipv4.frag_overlap",
    Ipv6PktTooSmall => "decoder.ipv6.pkt_too_small",
    Ipv6TruncPkt => "decoder.ipv6.trunc_pkt",
    Ipv6TruncExthdr => "decoder.ipv6.trunc_exthdr",
    Ipv6ExthdrDuplFh => "decoder.ipv6.exthdr_dupl_fh",
    Ipv6ExthdrUselessFh => "decoder.ipv6.exthdr_useless_fh",
    Ipv6ExthdrDuplRh => "decoder.ipv6.exthdr_dupl_rh",
    Ipv6ExthdrDuplHh => "decoder.ipv6.exthdr_dupl_hh",
    Ipv6ExthdrDuplDh => "decoder.ipv6.exthdr_dupl_dh",
    Ipv6ExthdrDuplAh => "decoder.ipv6.exthdr_dupl_ah",
    Ipv6ExthdrDuplEh => "decoder.ipv6.exthdr_dupl_eh",
    Ipv6ExthdrInvalidOptlen => "decoder.ipv6.exthdr_invalid_optlen",
    Ipv6WrongIpVersion => "decoder.ipv6.wrong_ip_version",
    Ipv6ExthdrAhResNotNull => "decoder.ipv6.exthdr_ah_res_not_null",
    Ipv6HopoptsUnknownOpt => "decoder.ipv6.hopopts_unknown_opt",
    Ipv6HopoptsOnlyPadding => "decoder.ipv6.hopopts_only_padding",
    Ipv6DstoptsUnknownOpt => "decoder.ipv6.dstopts_unknown_opt",
    Ipv6DstoptsOnlyPadding => "decoder.ipv6.dstopts_only_padding",
    Ipv6RhType0 => "decoder.ipv6.rh_type_0",
    Ipv6ZeroLenPadn => "decoder.ipv6.zero_len_padn",
    Ipv6FhNonZeroReservedField => "decoder.ipv6.fh_non_zero_reserved_field",
    Ipv6DataAfterNoneHeader => "decoder.ipv6.data_after_none_header",
    Ipv6UnknownNextHeader => "decoder.ipv6.unknown_next_header",
    Ipv6Icmpv4 => "decoder.ipv6.icmpv4",
    Ipv6FragPktTooLarge => "decoder.ipv6.frag_pkt_too_large",
    Ipv6FragOverlap => "decoder.ipv6.frag_overlap",
    Ipv6FragInvalidLength => "decoder.ipv6.frag_invalid_length",
    Icmpv4PktTooSmall => "decoder.icmpv4.pkt_too_small",
    Icmpv4UnknownType => "decoder.icmpv4.unknown_type",
    Icmpv4UnknownCode => "decoder.icmpv4.unknown_code",
    Icmpv4Ipv4TruncPkt => "decoder.icmpv4.ipv4_trunc_pkt",
    Icmpv4Ipv4UnknownVer => "decoder.icmpv4.ipv4_unknown_ver",
    Icmpv6PktTooSmall => "decoder.icmpv6.pkt_too_small",
    Icmpv6UnknownType => "decoder.icmpv6.unknown_type",
    Icmpv6UnknownCode => "decoder.icmpv6.unknown_code",
    Icmpv6Ipv6TruncPkt => "decoder.icmpv6.ipv6_trunc_pkt",
    Icmpv6Ipv6UnknownVersion => "decoder.icmpv6.ipv6_unknown_version",
    Icmpv6MldMessageWithInvalidHl => "decoder.icmpv6.mld_message_with_invalid_hl",
    Icmpv6UnassignedType => "decoder.icmpv6.unassigned_type",
    Icmpv6ExperimentationType => "decoder.icmpv6.experimentation_type",
    TcpPktTooSmall => "decoder.tcp.pkt_too_small",
    TcpHlenTooSmall => "decoder.tcp.hlen_too_small",
    TcpInvalidOptlen => "decoder.tcp.invalid_optlen",
    TcpOptInvalidLen => "decoder.tcp.opt_invalid_len",
    TcpOptDuplicate => "decoder.tcp.opt_duplicate",
    UdpPktTooSmall => "decoder.udp.pkt_too_small",
    UdpHlenTooSmall => "decoder.udp.hlen_too_small",
    UdpLenInvalid => "decoder.udp.len_invalid",
}

macro_rules! stream_events {
    ($($variant:ident => $name:literal,)*) => {
        /// One TCP stream event, raised by the session tracker on the packet that caused
        /// it. `name()` is Suricata's EVE `anomaly.event` string (`stream-event` keyword
        /// with the `stream.` prefix).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum StreamEvent { $($variant,)* }

        impl StreamEvent {
            pub const ALL: &'static [StreamEvent] = &[$(StreamEvent::$variant,)*];

            /// Suricata's name, e.g. "stream.pkt_invalid_timestamp".
            pub fn name(self) -> &'static str {
                match self { $(StreamEvent::$variant => $name,)* }
            }
        }
    };
}

stream_events! {
    SynackWithWrongAck => "stream.3whs_synack_with_wrong_ack",
    FourWhsSynackWithWrongAck => "stream.4whs_synack_with_wrong_ack",
    FourWhsSynackWithWrongSyn => "stream.4whs_synack_with_wrong_syn",
    EstInvalidAck => "stream.est_invalid_ack",
    EstPacketOutOfWindow => "stream.est_packet_out_of_window",
    Fin1InvalidAck => "stream.fin1_invalid_ack",
    Fin2InvalidAck => "stream.fin2_invalid_ack",
    CloseWaitInvalidAck => "stream.closewait_invalid_ack",
    LastAckInvalidAck => "stream.lastack_invalid_ack",
    TimeWaitInvalidAck => "stream.timewait_invalid_ack",
    ClosingInvalidAck => "stream.closing_invalid_ack",
    PktInvalidTimestamp => "stream.pkt_invalid_timestamp",
    PktBrokenAck => "stream.pkt_broken_ack",
    ReassemblySeqGap => "stream.reassembly_seq_gap",
    SuspectedRstInject => "stream.suspected_rst_inject",
}

/// Events a set holds (more are counted in `overflow`).
pub const EVENTS_CAP: usize = 8;

/// A small fixed-capacity set of events raised by one packet (no allocation): decoder
/// events by default, or [`StreamEvent`]s. Events past the capacity are dropped but
/// still counted by the caller through `overflow`.
#[derive(Clone, Debug)]
pub struct Events<E = DecodeEvent> {
    buf: [Option<E>; EVENTS_CAP],
    len: usize,
    pub overflow: u32,
}

impl<E: Copy> Default for Events<E> {
    fn default() -> Self {
        Events {
            buf: [None; EVENTS_CAP],
            len: 0,
            overflow: 0,
        }
    }
}

impl<E: Copy + PartialEq> Events<E> {
    pub fn push(&mut self, e: E) {
        match self.buf.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(e);
                self.len += 1;
            }
            None => self.overflow += 1,
        }
    }
    pub fn clear(&mut self) {
        self.len = 0;
        self.overflow = 0;
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn contains(&self, e: E) -> bool {
        self.iter().any(|x| x == e)
    }
    pub fn iter(&self) -> impl Iterator<Item = E> + '_ {
        self.buf[..self.len].iter().flatten().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_suricata_rules_file() {
        // Every name must be a decode-event keyword of Suricata 7.0.10's builtin rules.
        let path = format!(
            "{}/etopen/suricata-7.0.10-builtin/decoder-events.rules",
            crate::data_dir()
        );
        let rules = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        for e in DecodeEvent::ALL {
            let kw = format!("decode-event:{};", e.name().trim_start_matches("decoder."));
            assert!(rules.contains(&kw), "{kw} not in {path}");
        }
    }

    #[test]
    fn stream_names_match_suricata_rules_file() {
        let path = format!(
            "{}/etopen/suricata-7.0.10-builtin/stream-events.rules",
            crate::data_dir()
        );
        let rules = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        for e in StreamEvent::ALL {
            let kw = format!("stream-event:{};", e.name().trim_start_matches("stream."));
            assert!(rules.contains(&kw), "{kw} not in {path}");
        }
    }

    #[test]
    fn events_capacity_overflows_without_panic() {
        let mut ev: Events = Events::default();
        for _ in 0..20 {
            ev.push(DecodeEvent::TcpPktTooSmall);
        }
        assert_eq!(ev.iter().count(), EVENTS_CAP);
        assert_eq!(ev.overflow, 12);
        ev.clear();
        assert!(ev.is_empty());
    }
}
