//! Fuzzes the sensor's whole packet path: link/IP/transport decoding, defragmentation,
//! flows, TCP reassembly and app-layer dispatch, with EVE written to a sink.
//!
//! Input: byte 0 picks the link type; the rest is a sequence of packets, each a
//! big-endian u16 length followed by that many bytes (a short tail is one last packet).
//! Several packets per input let fragments and TCP segments combine.
#![no_main]

use khien_sensor::decode::LinkType;
use khien_sensor::eve::EveWriter;
use khien_sensor::{Sensor, SensorConfig};
use libfuzzer_sys::fuzz_target;

const LINKS: [LinkType; 8] = [
    LinkType::Ethernet,
    LinkType::Raw,
    LinkType::Null,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::Ppp,
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else { return };
    let link = LINKS[usize::from(sel) % LINKS.len()];
    let mut cfg = SensorConfig::default();
    cfg.stream.midstream = sel & 0x80 != 0;
    let mut sensor = Sensor::new(&cfg, EveWriter::new(Box::new(std::io::sink())));
    let mut ts = 1_700_000_000_000_000i64;
    while !rest.is_empty() {
        let (pkt, tail) = match rest {
            [a, b, tail @ ..] => {
                let n = usize::from(u16::from_be_bytes([*a, *b])).min(tail.len());
                tail.split_at(n)
            }
            other => (other, &[][..]),
        };
        sensor.packet(link, pkt, ts);
        ts += 1_000;
        rest = tail;
    }
    sensor.finish();
});
