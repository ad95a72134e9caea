//! Fuzz protocol detection: arbitrary first bytes, transport, direction and ports.
#![no_main]

use khien_applayer::{probe, Direction, Transport};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let t = if mode & 1 == 0 {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    let dir = if mode & 2 == 0 {
        Direction::ToServer
    } else {
        Direction::ToClient
    };
    // Well-known server ports picked by the mode byte, so port hints are exercised.
    let ports = [21u16, 22, 25, 53, 80, 443, 587, 8080];
    let port = ports[usize::from(mode >> 2) % ports.len()];
    let _ = probe(t, dir, 40000, port, rest);
    let _ = probe(t, dir, port, 40000, rest);
});
