//! Genuine Suricata EVE parses: `data/suricata-7.0.10-sample.eve.json` holds the shortest
//! lines of each event type that Suricata 7.0.10 wrote for
//! `suricata -r sv-corpus-merged.pcap -k none` with ET Open 2024-04-18's scan, policy, info
//! and dns rules (40 lines, 26 event types).

use khien_collector::eve::{parse, Family};

#[test]
fn every_genuine_line_parses() {
    let text = include_str!("data/suricata-7.0.10-sample.eve.json");
    let mut families = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let e = parse(line.as_bytes()).unwrap_or_else(|err| panic!("line {}: {err}", i + 1));
        assert!(e.ts > 1_000_000_000, "line {}", i + 1);
        families.insert(e.family());
        match e.family() {
            Family::Alert => assert!(e.alert.as_ref().is_some_and(|a| a.signature_id > 0)),
            Family::Dns => assert!(e.dns.is_some()),
            Family::Http => assert!(e.http.is_some()),
            Family::Flow => assert!(e.flow.as_ref().is_some_and(|f| !f.state.is_empty())),
            _ => {}
        }
    }
    assert_eq!(
        families.len(),
        Family::ALL.len(),
        "every family is represented"
    );
}
