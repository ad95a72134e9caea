//! Shared driver of the app-layer fuzz targets (`app_<proto>.rs` include it with `#[path]`).
//!
//! Input layout: byte 0 picks tight or default limits (and, for DNS, the transport); then
//! a sequence of control bytes, each followed by a chunk: bit 7 is the direction, bits 0-5
//! the chunk length minus one; bit 6 with a zero length reports a gap instead.

use khien_applayer::{AppConfig, AppEvent, AppProto, Direction, Transport};

fn config(tight: bool) -> AppConfig {
    if !tight {
        return AppConfig::default();
    }
    AppConfig {
        max_buffer: 512,
        http_max_headers: 4,
        http_max_line: 64,
        http_request_body_depth: 16,
        http_response_body_depth: 16,
        decompress_limit: 1024,
        decompress_max_ratio: 4,
        max_tx_in_flight: 3,
        file_data_limit: 8,
        dns_max_records: 2,
        dns_max_pointers: 2,
        tls_max_certs: 1,
        line_max: 32,
        smtp_max_rcpt: 2,
        smtp_max_parts: 2,
        ..AppConfig::default()
    }
}

fn drain(out: &mut Vec<AppEvent>) {
    for e in out.drain(..) {
        match e {
            AppEvent::Tx(t) => {
                let _ = (t.eve(), t.eve_extra(), t.tx_id(), t.direction());
            }
            AppEvent::File(f) => {
                let _ = (f.eve(), f.eve_extra());
            }
            _ => {}
        }
    }
}

/// Runs one fuzz input through a fresh parser for `proto`.
pub fn fuzz_parser(proto: AppProto, data: &[u8]) {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let cfg = config(mode & 1 == 1);
    let transport = if mode & 2 == 0 {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    let Some(mut p) = khien_applayer::new_parser_for(proto, transport, &cfg) else {
        return;
    };
    let mut out = Vec::new();
    while let Some((&ctl, tail)) = rest.split_first() {
        let dir = if ctl & 0x80 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let len = usize::from(ctl & 0x3f);
        if ctl & 0x40 != 0 && len == 0 {
            p.gap(dir, u64::from(ctl), &mut out);
            rest = tail;
            continue;
        }
        let (chunk, r) = tail.split_at((len + 1).min(tail.len()));
        p.parse(dir, chunk, 0, &mut out);
        drain(&mut out);
        rest = r;
    }
    p.close(0, &mut out);
    drain(&mut out);
}
