//! Fuzz the Kerberos 5 framer (record marks over TCP, datagrams over UDP): arbitrary
//! bytes, split arbitrarily between directions, with gaps (input layout in app_common.rs;
//! mode bit 1 picks UDP).
#![no_main]

#[path = "app_common.rs"]
mod app_common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    app_common::fuzz_parser(khien_applayer::AppProto::Krb5, data)
});
