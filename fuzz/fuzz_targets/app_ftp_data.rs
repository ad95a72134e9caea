//! Fuzz the FTP data-connection parser: byte 0 picks the announcement (upload, passive,
//! tight limits), then the app_common.rs chunk layout (direction, length, gaps). Every
//! file it reports must have exactly the bytes of its direction that were fed.
#![no_main]

use khien_applayer::{AppConfig, AppEvent, Direction, FtpDataSpec};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let spec = FtpDataSpec {
        port: 20,
        filename: b"fuzz.bin".to_vec(),
        command: if mode & 1 == 1 { b"STOR" } else { b"RETR" }.to_vec(),
        upload: mode & 1 == 1,
        passive: mode & 2 == 2,
    };
    let cfg = AppConfig {
        file_data_limit: if mode & 4 == 4 { 8 } else { 0 },
        ..AppConfig::default()
    };
    let mut p = khien_applayer::new_ftp_data_parser(&spec, &cfg);
    let mut out = Vec::new();
    let mut fed = 0u64;
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
        if dir == spec.file_direction() {
            fed += chunk.len() as u64;
        }
        p.parse(dir, chunk, 0, &mut out);
        rest = r;
    }
    p.close(0, &mut out);
    let sizes: Vec<u64> = out
        .iter()
        .filter_map(|e| match e {
            AppEvent::File(f) => Some(f.size),
            _ => None,
        })
        .collect();
    match fed {
        0 => assert!(sizes.is_empty()),
        n => assert_eq!(sizes, [n]),
    }
});
