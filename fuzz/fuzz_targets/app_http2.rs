//! Fuzz the HTTP/2 parser (preface, frames, CONTINUATION, HPACK with Huffman and the
//! dynamic table, DATA files with gzip/deflate): arbitrary bytes, split arbitrarily
//! between directions, with gaps (input layout in app_common.rs).
#![no_main]

#[path = "app_common.rs"]
mod app_common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    app_common::fuzz_parser(khien_applayer::AppProto::Http2, data)
});
