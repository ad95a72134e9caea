//! Fuzz the SMB parser (NBSS framing, SMB1 and SMB2/3 file commands): arbitrary bytes,
//! split arbitrarily between directions, with gaps (input layout in app_common.rs).
#![no_main]

#[path = "app_common.rs"]
mod app_common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    app_common::fuzz_parser(khien_applayer::AppProto::Smb, data)
});
