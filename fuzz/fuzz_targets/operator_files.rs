//! Fuzz target: the collector's operator files from an untrusted source (a threat feed, a
//! STIX bundle downloaded from a partner, a hand-edited YAML file). The first byte picks the
//! parser; none may panic, and loaded indicators must match an EVE record without panicking.
#![no_main]

use std::path::Path;

use khien_collector::assets::Assets;
use khien_collector::correlate::Rules;
use khien_collector::indicators::Indicators;
use libfuzzer_sys::fuzz_target;

const EVE: &str = r#"{"timestamp":"2026-11-22T10:00:00.000000+0000","event_type":"http","src_ip":"10.0.0.1","dest_ip":"198.51.100.7","http":{"hostname":"a.b.example","url":"/x?y=1"},"dns":{"rrname":"c.example."},"tls":{"sni":"d.example"},"fileinfo":{"md5":"44d88612fea8a8f36de82e1278abb02f"}}"#;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let path = Path::new("fuzz");
    match which % 4 {
        0 => drop(Assets::parse(path, text)),
        1 => drop(Rules::parse(path, text)),
        n => {
            let mut ind = Indicators::default();
            let _ = if n == 2 {
                ind.add_stix(path, text)
            } else {
                ind.add_list(path, text)
            };
            let eve = khien_collector::eve::parse_str(EVE).expect("fixed EVE line parses");
            let mut hits = Vec::new();
            ind.match_event(&eve, &mut hits);
            for h in hits {
                let _ = ind.get(h.indicator);
            }
        }
    }
});
