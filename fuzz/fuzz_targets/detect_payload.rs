//! Fuzzes the detection engine: a rule built from the input's first line (kept when it
//! parses and compiles) evaluated on the rest as packet payload, header buffers and a
//! raw-stream chunk, plus a fixed set of backtracking-heavy rules. Must never panic or
//! loop unboundedly.
#![no_main]

use khien_detect::{CompileOptions, DetectState, Engine, FlowInfo, FlowVars, PacketInfo};
use libfuzzer_sys::fuzz_target;

const FIXED: &str = r#"alert tcp any any -> any any (content:"a"; content:"b"; distance:0; within:3; content:!"c"; within:1; sid:1;)
alert tcp any any -> any any (byte_extract:2,0,n,relative; byte_jump:1,0,relative; content:"x"; distance:0; within:n; sid:2;)
alert tcp any any -> any any (pcre:"/(a+)+b/"; content:"a"; isdataat:!2,relative; sid:3;)
alert tcp any any -> any any (byte_test:10,>,5,0,string,dec; byte_math:bytes 1,offset 0,oper <<,rvalue 70,result r; sid:4;)
alert tcp any any -> any any (content:"a"; depth:4; content:"b"; within:3; byte_test:0,<,9,0,relative,string,dec; stream_size:either,>,2; sid:5;)
"#;

fuzz_target!(|data: &[u8]| {
    let (first, payload) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    let mut rs = khien_rules::Ruleset::new(Default::default());
    rs.add_file("fixed.rules", FIXED);
    if let Ok(line) = std::str::from_utf8(first) {
        rs.add_file("fuzz.rules", line);
    }
    let (engine, _) = Engine::compile(&rs, &CompileOptions::default());
    let mut p = PacketInfo::tcp(
        "10.0.0.1".parse().unwrap(),
        1,
        "10.0.0.2".parse().unwrap(),
        2,
        0x18,
    );
    p.payload = payload;
    p.flow = Some(FlowInfo {
        to_server: true,
        established: true,
        app_proto: None,
        encrypted: false,
    });
    // The payload also stands for the IP and TCP headers (ipopts, *.hdr buffers).
    p.ip_hdr = payload;
    p.l4_hdr = payload;
    // The payload's first bytes also give the TCP side sizes and the chunk's stream
    // offset (absolute depths count from the stream's start).
    let n = |i: usize| u32::from(payload.get(i).copied().unwrap_or(0));
    p.stream_sizes = Some([n(0), n(1)]);
    p.stream_added = n(2) & 1 == 1;
    let mut out = Vec::new();
    let mut state = DetectState::default();
    engine.inspect_packet(&p, &mut FlowVars::default(), &mut state, &mut out);
    // As a raw-stream chunk whose first half was inspected before, made ready by the
    // same packet.
    p.stream_offset = u64::from(n(3));
    engine.inspect_stream(
        &p,
        payload.len() / 2,
        true,
        &mut FlowVars::default(),
        &mut state,
        &mut out,
    );
});
