//! Crafted payloads for every implemented keyword, including Suricata's tricky relative
//! and negated cases.

use std::borrow::Cow;
use std::net::IpAddr;

use khien_detect::{
    Alert, CompileOptions, DetectState, Dir, Engine, FlowInfo, FlowVars, PacketInfo, TxBuffers,
};

fn engine(rules: &str) -> Engine {
    let mut rs = khien_rules::Ruleset::new(Default::default());
    rs.add_file("t.rules", rules);
    assert_eq!(rs.counts().failed, 0, "{:?}", rs.reports());
    let (e, rep) = Engine::compile(&rs, &CompileOptions::default());
    assert!(rep.unsupported.is_empty(), "{:?}", rep.unsupported);
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    e
}

/// `rs` compiled with a threshold.config text.
fn with_thresholds(rs: &khien_rules::Ruleset, config: &str) -> Engine {
    let cfg = khien_rules::config::threshold(config).unwrap();
    let opts = CompileOptions {
        thresholds: cfg.into_iter().map(|(_, e)| e).collect(),
        ..Default::default()
    };
    Engine::compile(rs, &opts).0
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pkt(payload: &[u8]) -> PacketInfo<'_> {
    let mut p = PacketInfo::tcp(ip("10.0.0.1"), 40000, ip("192.0.2.1"), 80, 0x18);
    p.payload = payload;
    p.flow = Some(FlowInfo {
        to_server: true,
        established: true,
        app_proto: None,
        encrypted: false,
    });
    p
}

fn sids(e: &Engine, p: &PacketInfo<'_>) -> Vec<u32> {
    let mut out: Vec<Alert> = Vec::new();
    e.inspect_packet(
        p,
        &mut FlowVars::default(),
        &mut DetectState::default(),
        &mut out,
    );
    out.iter().map(|a| a.sig.sid).collect()
}

/// One rule per line `R(sid, opts)`, matching a payload or not.
fn check(opts: &str, payload: &[u8], want: bool) {
    let e = engine(&format!("alert tcp any any -> any any ({opts} sid:1;)"));
    let got = sids(&e, &pkt(payload)) == [1];
    assert_eq!(
        got,
        want,
        "{opts} on {:?}",
        String::from_utf8_lossy(payload)
    );
}

#[test]
fn content_modifiers() {
    check(r#"content:"abc";"#, b"xxabcxx", true);
    check(r#"content:"ABC";"#, b"xxabcxx", false);
    check(r#"content:"ABC"; nocase;"#, b"xxabcxx", true);
    check(r#"content:"abc"; depth:4;"#, b"xxabcxx", false);
    check(r#"content:"abc"; depth:5;"#, b"xxabcxx", true);
    check(r#"content:"abc"; offset:3;"#, b"xxabcxx", false);
    check(r#"content:"abc"; offset:2; depth:3;"#, b"xxabcxx", true);
    check(r#"content:"abc"; startswith;"#, b"abcxx", true);
    check(r#"content:"abc"; startswith;"#, b"xabc", false);
    check(r#"content:"abc"; endswith;"#, b"xxabc", true);
    check(r#"content:"abc"; endswith;"#, b"abcx", false);
    check(r#"content:"|61 62|c";"#, b"abc", true);
    check(r#"content:!"abc";"#, b"xyz", true);
    check(r#"content:!"abc";"#, b"xabc", false);
}

#[test]
fn relative_and_backtracking() {
    // The first "a" is followed by "c" too far away; the second one is close enough:
    // Suricata backtracks to the next "a".
    check(r#"content:"a"; content:"c"; within:2;"#, b"a...abc", true);
    check(r#"content:"a"; content:"c"; within:1;"#, b"a...abc", false);
    // within counts from the end of the previous match plus distance, as Suricata.
    check(
        r#"content:"a"; content:"c"; distance:1; within:2;"#,
        b"abxc",
        true,
    );
    check(
        r#"content:"a"; content:"c"; distance:1; within:2;"#,
        b"abxxc",
        false,
    );
    check(
        r#"content:"a"; content:"c"; distance:1; within:2;"#,
        b"abc",
        true,
    );
    // distance:0 means "after the previous match".
    check(r#"content:"b"; content:"a"; distance:0;"#, b"ab", false);
    check(r#"content:"b"; content:"a"; distance:0;"#, b"aba", true);
    // Negative distance looks back.
    check(
        r#"content:"c"; content:"ab"; distance:-3; within:2;"#,
        b"abc",
        true,
    );
    // A negated relative content: there must be an "a" not followed by "b".
    check(r#"content:"a"; content:!"b"; within:1;"#, b"abab", false);
    check(r#"content:"a"; content:!"b"; within:1;"#, b"abac", true);
    // Three-level chain with backtracking at the first level.
    check(
        r#"content:"x"; content:"y"; within:1; content:"z"; within:1;"#,
        b"xy.xyz",
        true,
    );
    check(r#"content:"a"; isdataat:1,relative;"#, b"xa", false);
    check(r#"content:"a"; isdataat:1,relative;"#, b"ab", true);
    check(r#"content:"a"; isdataat:!2,relative;"#, b"ab", true);
    check(r#"isdataat:3;"#, b"abc", false);
    check(r#"isdataat:2;"#, b"abc", true);
}

#[test]
fn pcre_and_sizes() {
    check(r#"pcre:"/^GET\s+\/a/";"#, b"GET /abc", true);
    check(r#"pcre:"/^get/i";"#, b"GET /abc", true);
    check(r#"pcre:"/^get/";"#, b"GET /abc", false);
    check(r#"content:"GET"; pcre:"/^\s+\//R";"#, b"GET /x", true);
    check(r#"content:"GET"; pcre:"/^\s+\//R";"#, b"GET x/", false);
    check(r#"pcre:!"/evil/";"#, b"good", true);
    check(r#"dsize:5;"#, b"12345", true);
    check(r#"dsize:>5;"#, b"12345", false);
    check(r#"dsize:3<>6;"#, b"12345", true);
}

#[test]
fn byte_keywords() {
    check(r#"byte_test:2,=,258,0;"#, b"\x01\x02", true);
    check(r#"byte_test:2,=,513,0,little;"#, b"\x01\x02", true);
    check(r#"byte_test:2,>,600,0;"#, b"\x01\x02", false);
    check(r#"byte_test:2,!>,600,0;"#, b"\x01\x02", true);
    check(r#"byte_test:3,=,123,1,string,dec;"#, b"x123", true);
    // 0 bytes with `string`: the whole number at the offset (ET's http.content_len rules).
    check(r#"byte_test:0,<,200,0,string,dec;"#, b"70", true);
    check(r#"byte_test:0,<,200,0,string,dec;"#, b"700\r\n", false);
    check(r#"byte_test:0,=,70,1,string,dec;"#, b" 70\xff\xfe", true);
    check(r#"byte_test:0,<,200,0,string,dec;"#, b"x70", false);
    check(r#"byte_test:0,<,200,0;"#, b"\x01", false);
    check(r#"byte_test:2,=,255,0,string,hex;"#, b"ff", true);
    check(r#"byte_test:1,&,0x80,0;"#, b"\x81", true);
    check(
        r#"content:"L"; byte_test:1,=,3,0,relative;"#,
        b"L\x03",
        true,
    );
    // byte_jump over a length-prefixed field, then a relative content.
    check(
        r#"byte_jump:1,0; content:"X"; within:1;"#,
        b"\x03abcX",
        true,
    );
    check(
        r#"byte_jump:1,0; content:"X"; within:1;"#,
        b"\x02abcX",
        false,
    );
    check(
        r#"byte_jump:1,0,post_offset 1; content:"X"; within:1;"#,
        b"\x02abcX",
        true,
    );
    check(r#"byte_jump:1,0; isdataat:!1,relative;"#, b"\x03abc", true);
    check(r#"byte_jump:1,0;"#, b"\x09abc", false);
    check(
        r#"byte_extract:1,0,len; content:"Z"; distance:0; within:len;"#,
        b"\x03abZ",
        true,
    );
    check(
        r#"byte_extract:1,0,len; content:"Z"; distance:0; within:len;"#,
        b"\x01abZ",
        false,
    );
    check(
        r#"byte_extract:1,0,v; byte_test:1,=,v,1;"#,
        b"\x07\x07",
        true,
    );
    check(
        r#"byte_math:bytes 1,offset 0,oper +,rvalue 2,result r; byte_test:1,=,r,1;"#,
        b"\x05\x07",
        true,
    );
}

#[test]
fn header_keywords() {
    let mut p = pkt(b"x");
    p.ttl = Some(64);
    p.ip_id = Some(7);
    let e = engine(
        "alert tcp any any -> any 80 (ttl:64; sid:1;)\n\
         alert tcp any any -> any 81 (sid:2;)\n\
         alert tcp 10.0.0.0/8 any -> !192.0.2.0/24 any (sid:3;)\n\
         alert tcp [10.0.0.0/8,!10.0.0.1] any -> any any (sid:4;)\n\
         alert tcp any any -> any any (flags:PA; sid:5;)\n\
         alert tcp any any -> any any (flags:S; sid:6;)\n\
         alert tcp any any -> any any (flags:+A; sid:7;)\n\
         alert tcp any any -> any any (id:7; sid:8;)\n\
         alert tcp any any -> any any (flow:to_client; sid:9;)\n\
         alert tcp any any -> any any (flow:established,to_server; sid:10;)\n\
         alert tcp any 80 <> any any (sid:11;)\n\
         alert udp any any -> any any (sid:12;)\n\
         alert ip any any -> any any (ip_proto:6; sid:13;)\n",
    );
    assert_eq!(sids(&e, &p), [1, 5, 7, 8, 10, 11, 13]);
}

#[test]
fn flowbits_across_packets_and_pass() {
    let e = engine(
        "alert tcp any any -> any any (content:\"login\"; flowbits:set,in; flowbits:noalert; sid:1;)\n\
         alert tcp any any -> any any (content:\"secret\"; flowbits:isset,in; sid:2;)\n\
         alert tcp any any -> any any (content:\"secret\"; flowbits:isnotset,in; sid:3;)\n\
         alert tcp any any -> any any (flowint:cnt,+,1; flowint:cnt,>,2; sid:4;)\n",
    );
    let mut vars = FlowVars::default();
    let mut st = DetectState::default();
    let mut out = Vec::new();
    e.inspect_packet(&pkt(b"secret"), &mut vars, &mut st, &mut out);
    e.inspect_packet(&pkt(b"login"), &mut vars, &mut st, &mut out);
    e.inspect_packet(&pkt(b"secret"), &mut vars, &mut st, &mut out);
    let got: Vec<u32> = out.iter().map(|a| a.sig.sid).collect();
    assert_eq!(got, [3, 2]);

    let e = engine(
        "alert tcp any any -> any any (content:\"x\"; sid:1;)\n\
         pass tcp any any -> any any (content:\"ok\"; sid:2;)\n",
    );
    let mut vars = FlowVars::default();
    let mut out = Vec::new();
    e.inspect_packet(&pkt(b"x ok"), &mut vars, &mut st, &mut out);
    e.inspect_packet(&pkt(b"x"), &mut vars, &mut st, &mut out);
    assert!(out.is_empty(), "pass suppresses the packet and the flow");
    assert!(vars.pass);
    assert!(st.take_passed(), "the packet's verdict is pass");
    assert!(!st.take_passed(), "cleared");
}

#[test]
fn action_order_alert_before_pass() {
    // Suricata's `action-order: [alert, pass, drop, reject]`: the alert is evaluated
    // before the pass signature, so both happen and the packet's verdict is pass.
    let mut rs = khien_rules::Ruleset::new(Default::default());
    rs.add_file(
        "t.rules",
        "pass tcp any any -> any any (content:\"ok\"; sid:2;)\n\
         alert tcp any any -> any any (content:\"x\"; sid:1;)\n",
    );
    let opts = CompileOptions {
        action_order: vec![khien_detect::Action::Alert, khien_detect::Action::Pass],
        ..Default::default()
    };
    let e = Engine::compile(&rs, &opts).0;
    let (mut vars, mut st, mut out) = (FlowVars::default(), DetectState::default(), Vec::new());
    e.inspect_packet(&pkt(b"x ok"), &mut vars, &mut st, &mut out);
    let got: Vec<u32> = out.iter().map(|a| a.sig.sid).collect();
    assert_eq!(got, [1]);
    assert!(vars.pass && st.take_passed());
    // Default order: pass first, no alert.
    let e = Engine::compile(&rs, &CompileOptions::default()).0;
    let (mut vars, mut out) = (FlowVars::default(), Vec::new());
    e.inspect_packet(&pkt(b"x ok"), &mut vars, &mut st, &mut out);
    assert!(out.is_empty() && vars.pass);
}

#[test]
fn thresholds_and_detection_filter() {
    let e = engine(
        "alert tcp any any -> any any (content:\"a\"; threshold:type limit,track by_src,count 2,seconds 60; sid:1;)\n\
         alert tcp any any -> any any (content:\"a\"; threshold:type threshold,track by_src,count 3,seconds 60; sid:2;)\n\
         alert tcp any any -> any any (content:\"a\"; threshold:type both,track by_src,count 2,seconds 60; sid:3;)\n\
         alert tcp any any -> any any (content:\"a\"; detection_filter:track by_src,count 4,seconds 60; sid:4;)\n",
    );
    let mut st = DetectState::default();
    let mut per = Vec::new();
    for i in 0..6 {
        let mut p = pkt(b"a");
        p.ts_us = i * 1000;
        let mut out = Vec::new();
        e.inspect_packet(&p, &mut FlowVars::default(), &mut st, &mut out);
        per.push(out.iter().map(|a| a.sig.sid).collect::<Vec<_>>());
    }
    assert_eq!(
        per,
        vec![vec![1], vec![1, 3], vec![2], vec![], vec![4], vec![2, 4]]
    );
}

#[test]
fn suppress_from_threshold_config() {
    let mut rs = khien_rules::Ruleset::new(Default::default());
    rs.add_file(
        "t.rules",
        "alert tcp any any -> any any (content:\"a\"; sid:1;)\nalert tcp any any -> any any (content:\"a\"; sid:2;)\n",
    );
    let e = with_thresholds(
        &rs,
        "suppress gen_id 1, sig_id 1\nsuppress gen_id 1, sig_id 2, track by_src, ip 10.9.0.0/16\n",
    );
    assert_eq!(sids(&e, &pkt(b"a")), [2]);
}

struct Http {
    uri: &'static [u8],
    ua: &'static [u8],
    body: &'static [u8],
    stat: &'static [u8],
    queries: Vec<&'static [u8]>,
}

impl TxBuffers for Http {
    fn proto(&self) -> &'static str {
        if self.queries.is_empty() {
            "http"
        } else {
            "dns"
        }
    }
    fn tx_id(&self) -> u64 {
        0
    }
    fn get(&self, name: &str, dir: Dir) -> Vec<Cow<'_, [u8]>> {
        let v: &[u8] = match (name, dir) {
            ("http.uri", Dir::ToServer) => self.uri,
            ("http.user_agent", Dir::ToServer) => self.ua,
            ("file.data", Dir::ToClient) => self.body,
            ("http.stat_code", Dir::ToClient) => self.stat,
            ("dns.query", Dir::ToServer) => {
                return self.queries.iter().map(|q| Cow::Borrowed(*q)).collect()
            }
            _ => return Vec::new(),
        };
        vec![Cow::Borrowed(v)]
    }
}

#[test]
fn app_layer_buffers() {
    let e = engine(
        "alert http any any -> any any (http.uri; content:\"/admin\"; startswith; sid:1;)\n\
         alert http any any -> any any (http.user_agent; content:\"curl\"; nocase; sid:2;)\n\
         alert http any any -> any any (flow:to_client; file.data; content:\"MZ\"; startswith; http.stat_code; content:\"200\"; sid:3;)\n\
         alert http any any -> any any (http.uri; to_uppercase; content:\"/ADMIN\"; sid:4;)\n\
         alert http any any -> any any (urilen:>100; sid:5;)\n\
         alert dns any any -> any any (dns.query; dotprefix; content:\".evil.com\"; endswith; sid:6;)\n\
         alert http any any -> any any (http.uri; content:\"/x\"; sid:7;)\n\
         alert http any any -> any any (http.user_agent; bsize:6; sid:8;)\n\
         alert http any any -> any any (http.user_agent; bsize:>6; sid:9;)\n",
    );
    let mut p = PacketInfo::tcp(ip("10.0.0.1"), 40000, ip("192.0.2.1"), 80, 0x18);
    p.flow = Some(FlowInfo {
        to_server: true,
        established: true,
        app_proto: Some("http"),
        encrypted: false,
    });
    let tx = Http {
        uri: b"/admin/x",
        ua: b"CURL/8",
        body: b"MZ\x90",
        stat: b"200",
        queries: vec![],
    };
    let mut out = Vec::new();
    e.inspect_tx(
        &p,
        &tx,
        &mut FlowVars::default(),
        &mut DetectState::default(),
        &mut out,
    );
    let got: Vec<(u32, bool)> = out.iter().map(|a| (a.sig.sid, a.to_server)).collect();
    assert_eq!(
        got,
        [
            (1, true),
            (2, true),
            (3, false),
            (4, true),
            (7, true),
            (8, true)
        ]
    );
    let dns = Http {
        uri: b"",
        ua: b"",
        body: b"",
        stat: b"",
        queries: vec![b"ok.org", b"a.evil.com"],
    };
    p.flow = Some(FlowInfo {
        to_server: true,
        established: true,
        app_proto: Some("dns"),
        encrypted: false,
    });
    let mut out = Vec::new();
    e.inspect_tx(
        &p,
        &dns,
        &mut FlowVars::default(),
        &mut DetectState::default(),
        &mut out,
    );
    assert_eq!(out.iter().map(|a| a.sig.sid).collect::<Vec<_>>(), [6]);
}

#[test]
fn unsupported_keywords_are_reported() {
    let mut rs = khien_rules::Ruleset::new(Default::default());
    rs.add_file(
        "u.rules",
        "alert tcp any any -> any any (content:\"a\"; sid:1;)\n\
         alert tcp any any -> any any (content:\"a\"; tag:session,10,packets; sid:2;)\n\
         alert smb any any -> any any (smb.share; content:\"a\"; sid:3;)\n\
         alert dcerpc any any -> any any (content:\"a\"; sid:4;)\n",
    );
    let (e, rep) = Engine::compile(&rs, &CompileOptions::default());
    assert_eq!(e.len(), 1);
    let u: Vec<(u32, &str)> = rep
        .unsupported
        .iter()
        .map(|u| (u.sid, u.keyword.as_str()))
        .collect();
    assert_eq!(
        u,
        [(2, "tag"), (3, "buffer smb.share"), (4, "protocol dcerpc")]
    );
    assert!(rep.unsupported[0]
        .to_string()
        .contains("u.rules:2: sid 1:2"));
}

#[test]
fn hostile_payloads_are_bounded() {
    // Pathological backtracking is capped.
    let e = engine(
        r#"alert tcp any any -> any any (content:"a"; content:"a"; distance:0; content:"a"; distance:0; content:"b"; distance:0; sid:1;)"#,
    );
    let big = vec![b'a'; 100_000];
    assert!(sids(&e, &pkt(&big)).is_empty());
    assert!(sids(&e, &pkt(b"")).is_empty());
}

#[test]
fn stream_inspection_modes_and_split_patterns() {
    let e = engine(
        "alert tcp any any -> any any (content:\"d2d3\"; sid:1;)\n\
         alert tcp-pkt any any -> any any (content:\"d2\"; sid:2;)\n\
         alert tcp-stream any any -> any any (content:\"d2\"; sid:3;)\n\
         alert tcp any any -> any any (content:\"d2\"; dsize:2; sid:4;)\n\
         alert tcp any any -> any any (content:\"GET\"; depth:3; sid:5;)\n",
    );
    assert!(e.wants_stream());
    // A packet whose data went into the stream: only packet-only signatures.
    let mut p = pkt(b"d2");
    p.stream_added = true;
    assert_eq!(sids(&e, &p), [2, 4]);
    // ... and those with an absolute content (depth/offset), which Suricata inspects in
    // the stream and then, if the stream did not match, in the packet too.
    let mut p = pkt(b"GET d2");
    p.stream_added = true;
    assert_eq!(sids(&e, &p), [2, 5]);
    // Not added (no stream, or a retransmission): every signature but tcp-stream ones.
    assert_eq!(sids(&e, &pkt(b"d2d3")), [1, 2]);
    // The stream chunk holding both segments: the split pattern matches.
    let stream_at = |chunk: &'static [u8], at: u64, new_from: usize| {
        let mut out = Vec::new();
        let mut p = pkt(chunk);
        p.stream_offset = at;
        e.inspect_stream(
            &p,
            new_from,
            false,
            &mut FlowVars::default(),
            &mut DetectState::default(),
            &mut out,
        );
        assert!(out.iter().all(|a| a.stream));
        out.iter().map(|a| a.sig.sid).collect::<Vec<_>>()
    };
    let stream = |chunk: &'static [u8], new_from: usize| stream_at(chunk, 0, new_from);
    assert_eq!(stream(b"GET d2d3", 0), [1, 3, 5]);
    // `depth` counts from the stream's start: a later chunk cannot match it ...
    assert_eq!(stream_at(b"GET d2d3", 3, 0), [1, 3]);
    assert_eq!(stream_at(b"GET d2d3", 100, 0), [1, 3]);
    assert_eq!(stream_at(b"ET d2d3", 1, 0), [1, 3]);
    assert_eq!(stream(b"xGET", 0), Vec::<u32>::new());
    // Matches lying entirely in the already-inspected overlap are not repeated.
    assert_eq!(stream(b"GET d2d3 more", 8), Vec::<u32>::new());
    assert_eq!(stream(b"GET d2d3 d2", 8), [3]);
    assert_eq!(stream(b"GET d2d3 d", 8), Vec::<u32>::new());
    assert_eq!(stream(b"xxxxxx d", 6), Vec::<u32>::new());
    assert_eq!(stream(b"xxxxxd2d3", 6), [1, 3]);
}

#[test]
fn rate_filter_changes_the_action() {
    let mut rs = khien_rules::Ruleset::new(Default::default());
    rs.add_file(
        "t.rules",
        "alert tcp any any -> any any (content:\"a\"; sid:1;)\n",
    );
    let e = with_thresholds(
        &rs,
        "rate_filter gen_id 1, sig_id 1, track by_rule, count 2, seconds 60, new_action pass, timeout 10\n",
    );
    let mut st = DetectState::default();
    let mut vars = FlowVars::default();
    let mut out = Vec::new();
    for i in 0..4 {
        let mut p = pkt(b"a");
        p.ts_us = i * 1000;
        e.inspect_packet(&p, &mut vars, &mut st, &mut out);
    }
    // Two alerts, then the third match exceeds the rate: pass, which passes the flow.
    assert_eq!(out.len(), 2);
    assert!(vars.pass);
}

#[test]
fn header_buffers_and_ipopts() {
    let e = engine(
        "alert ip any any -> any any (ipv4.hdr; content:\"|40 06|\"; offset:8; depth:2; sid:1;)\n\
         alert tcp any any -> any any (tcp.hdr; content:\"|00 50|\"; offset:2; depth:2; sid:2;)\n\
         alert ip any any -> any any (ipv6.hdr; content:\"|40|\"; sid:3;)\n\
         alert ip any any -> any any (ipopts:rr; sid:4;)\n\
         alert ip any any -> any any (ipopts:lsrr; sid:5;)\n",
    );
    // version/ihl tos len | id flags/frag | ttl 64 proto 6 csum | src | dst | RR option
    let ip_hdr: &[u8] = &[
        0x46, 0, 0, 44, 0, 1, 0, 0, 0x40, 6, 0, 0, 10, 0, 0, 1, 192, 0, 2, 1, 7, 3, 4, 0,
    ];
    let tcp_hdr: &[u8] = &[
        0x9c, 0x40, 0, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 4, 0, 0, 0, 0, 0,
    ];
    let mut p = pkt(b"x");
    p.ip_hdr = ip_hdr;
    p.l4_hdr = tcp_hdr;
    assert_eq!(sids(&e, &p), [1, 2, 4]);
    // A malformed option length ends the walk (the LSRR behind it is not seen).
    let bad: &[u8] = &[
        0x46, 0, 0, 44, 0, 1, 0, 0, 0x40, 6, 0, 0, 10, 0, 0, 1, 192, 0, 2, 1, 1, 9, 0, 131,
    ];
    p.ip_hdr = bad;
    assert_eq!(sids(&e, &p), [1, 2]);
}

#[test]
fn flowbits_writers_run_before_readers() {
    let e = engine(
        "alert tcp any any -> any any (flowbits:isset,a; sid:1;)\n\
         alert tcp any any -> any any (flowbits:unset,b; sid:2;)\n\
         alert tcp any any -> any any (flowbits:isnotset,b; flowbits:set,a; sid:3;)\n\
         alert tcp any any -> any any (flowbits:isset,b; sid:4;)\n\
         alert tcp any any -> any any (flowbits:set,b; sid:5;)\n",
    );
    // Writers (2, 5: b set last), then read-and-write (3: b is set, no match), then
    // readers (1 no, 4 yes).
    assert_eq!(sids(&e, &pkt(b"x")), [2, 5, 4]);
}

#[test]
fn app_protocol_payload_rules_need_the_flow_protocol() {
    let e = engine("alert smb any any -> any any (content:\"|ff|SMB\"; offset:4; depth:4; sid:1;)");
    let pay = b"\x00\x00\x00\x2f\xffSMBr";
    assert!(sids(&e, &pkt(pay)).is_empty());
    let mut p = pkt(pay);
    p.flow = Some(FlowInfo {
        to_server: true,
        established: true,
        app_proto: Some("smb"),
        encrypted: false,
    });
    assert_eq!(sids(&e, &p), [1]);
}

#[test]
fn stream_size_compares_each_side() {
    let e = engine(
        "alert tcp any any -> any any (stream_size:client,<,5; dsize:>1; sid:1;)\n\
         alert tcp any any -> any any (stream_size:server,>=,100; sid:2;)\n\
         alert tcp any any -> any any (stream_size:both,>,3; sid:3;)\n\
         alert tcp any any -> any any (stream_size:either,=,1; sid:4;)\n",
    );
    let mut p = pkt(b"MZ..");
    // No TCP session known: never matches.
    assert!(sids(&e, &p).is_empty());
    p.stream_sizes = Some([1, 200]);
    assert_eq!(sids(&e, &p), [1, 2, 4]);
    p.stream_sizes = Some([5, 4]);
    assert_eq!(sids(&e, &p), [3]);
}

#[test]
fn hostbits_and_xbits_live_on_hosts_across_flows() {
    let e = engine(
        "alert tcp any any -> any any (content:\"set\"; hostbits:set,seen,src,expire 10; sid:1;)\n\
         alert tcp any any -> any any (content:\"chk\"; hostbits:isset,seen,src; sid:2;)\n\
         alert tcp any any -> any any (content:\"chk\"; hostbits:isnotset,seen,dst; sid:3;)\n\
         alert tcp any any -> any any (content:\"tog\"; hostbits:toggle,seen; sid:4;)\n\
         alert tcp any any -> any any (content:\"pair\"; xbits:set,pr,track ip_pair; sid:5;)\n\
         alert tcp any any -> any any (content:\"chk\"; xbits:isset,pr,track ip_pair; sid:6;)\n",
    );
    let mut st = DetectState::default();
    let mut run = |payload: &[u8], rev: bool, ts: i64| {
        let mut p = pkt(payload);
        if rev {
            p = p.reversed();
        }
        p.ts_us = ts;
        let mut out = Vec::new();
        // A fresh FlowVars each time: host bits do not live in the flow.
        e.inspect_packet(&p, &mut FlowVars::default(), &mut st, &mut out);
        out.iter().map(|a| a.sig.sid).collect::<Vec<_>>()
    };
    assert_eq!(run(b"chk", false, 0), [3]);
    assert_eq!(run(b"set", false, 1), [1]);
    assert_eq!(run(b"chk", false, 2), [2, 3]);
    // The other host (the server as source) has no bit; the client is now the dst.
    assert_eq!(run(b"chk", true, 3), Vec::<u32>::new());
    // Expired after 10 s.
    assert_eq!(run(b"chk", false, 11_000_001), [3]);
    assert_eq!(run(b"tog", false, 11_000_002), [4]);
    assert_eq!(run(b"chk", false, 11_000_003), [2, 3]);
    assert_eq!(run(b"tog", false, 11_000_004), [4]);
    assert_eq!(run(b"chk", false, 11_000_005), [3]);
    // An address pair works in both directions.
    assert_eq!(run(b"pair", false, 11_000_006), [5]);
    assert_eq!(run(b"chk", true, 11_000_007), [3, 6]);
}

#[test]
fn malformed_hostbits_are_rejected_with_the_sid() {
    for bad in [
        "hostbits:frob,x;",
        "hostbits:set;",
        "hostbits:set,x,sideways;",
        "hostbits:set,x,src,expire soon;",
        "hostbits:set,x,src,expire 5,dst,extra;",
    ] {
        let mut rs = khien_rules::Ruleset::new(Default::default());
        rs.add_file(
            "t.rules",
            &format!("alert tcp any any -> any any ({bad} sid:7;)"),
        );
        let (e, rep) = Engine::compile(&rs, &CompileOptions::default());
        assert!(e.is_empty(), "{bad} loaded");
        assert!(
            rep.errors
                .iter()
                .any(|(sid, m)| *sid == 7 && m.contains("hostbits")),
            "{bad}: {:?}",
            rep.errors
        );
    }
}

#[test]
fn suppress_keeps_a_drop_and_rate_filter_marks_its_action() {
    let mut rs = khien_rules::Ruleset::new(Default::default());
    rs.add_file(
        "t.rules",
        "drop tcp any any -> any any (content:\"a\"; sid:1;)\n\
         alert tcp any any -> any any (content:\"a\"; sid:2;)\n\
         alert tcp any any -> any any (sid:3;)\n",
    );
    let e = with_thresholds(
        &rs,
        "suppress gen_id 1, sig_id 1, track by_src, ip 10.0.0.0/8\n\
         suppress gen_id 1, sig_id 3\n\
         rate_filter gen_id 1, sig_id 2, track by_src, count 1, seconds 60, new_action drop, timeout 10\n",
    );
    let mut st = DetectState::default();
    let mut out = Vec::new();
    for i in 0..2 {
        let mut p = pkt(b"a");
        p.ts_us = i;
        e.inspect_packet(&p, &mut FlowVars::default(), &mut st, &mut out);
    }
    let v: Vec<_> = out
        .iter()
        .map(|a| {
            (
                a.sig.sid,
                a.action,
                a.silent,
                a.rate_filtered,
                a.flow_action,
            )
        })
        .collect();
    use khien_detect::Action::{Alert as A, Drop as D};
    // sid 1 suppressed but still dropping; sid 3 (an alert) suppressed outright; sid 2
    // alerts once, then its rate_filter turns it into a drop; no packet condition in
    // sid 3 would make it flow-level, sid 1 and 2 are packet-level.
    assert_eq!(
        v,
        [
            (1, D, true, false, false),
            (2, A, false, false, false),
            (1, D, true, false, false),
            (2, D, false, true, false),
        ]
    );
}

#[test]
fn pcre_captures_into_flowvars_and_pktvars() {
    let e = engine(
        "alert tcp any any -> any any (content:\"UA \"; pcre:\"/^UA (\\w+)\\/([\\d.]+)/, flow:name, pkt:version\"; content:\"end\"; sid:1;)\n\
         alert tcp any any -> any any (pcre:\"/id=(?P<flow_id>\\d+)/\"; sid:2;)\n\
         alert tcp any any -> any any (pcre:\"/(?P<flow_never>x+)/\"; content:\"nothere\"; sid:3;)\n",
    );
    let mut vars = FlowVars::default();
    let mut st = DetectState::default();
    let mut out = Vec::new();
    // sid 1 fails after its pcre (no "end"): nothing is stored.
    e.inspect_packet(&pkt(b"UA curl/8.1 xx"), &mut vars, &mut st, &mut out);
    assert!(out.is_empty());
    assert!(vars.strs().is_empty());
    e.inspect_packet(&pkt(b"UA curl/8.1 id=42 end"), &mut vars, &mut st, &mut out);
    assert_eq!(out.iter().map(|a| a.sig.sid).collect::<Vec<_>>(), [1, 2]);
    let flow: Vec<(&str, &[u8])> = vars
        .strs()
        .iter()
        .map(|(i, v)| (e.flowvar_names()[*i as usize].as_str(), v.as_slice()))
        .collect();
    assert_eq!(flow, [("name", &b"curl"[..]), ("id", &b"42"[..])]);
    let pkt_vars: Vec<(&str, &[u8])> = out[0]
        .pktvars
        .iter()
        .map(|(i, v)| (e.pktvar_names()[*i as usize].as_str(), v.as_slice()))
        .collect();
    assert_eq!(pkt_vars, [("version", &b"8.1"[..])]);
    assert!(out[1].pktvars.is_empty());
    // A later match replaces the value in place.
    e.inspect_packet(&pkt(b"id=7"), &mut vars, &mut st, &mut out);
    assert_eq!(vars.strs().len(), 2);
    assert_eq!(vars.strs()[1].1, b"7");
    // More list entries than groups is a compile error.
    let mut rs = khien_rules::Ruleset::new(Default::default());
    rs.add_file(
        "c.rules",
        "alert tcp any any -> any any (pcre:\"/(a)/, flow:x, flow:y\"; sid:1;)\n",
    );
    let (e, rep) = Engine::compile(&rs, &CompileOptions::default());
    assert!(e.is_empty());
    assert_eq!(rep.errors.len(), 1);
}

#[test]
fn pkt_data_mixed_with_app_buffers_needs_both_parts() {
    let e = engine(
        "alert http any any -> any any (flow:to_server; content:\"magic\"; http.uri; content:\"/x\"; sid:1;)\n\
         alert ip any any -> any any (content:\"IE=Edge\"; file_data; content:\"IE=Edge\"; sid:2;)\n",
    );
    assert_eq!(e.len(), 2, "the packet parts are not counted as rules");
    let tx = Http {
        uri: b"/x",
        ua: b"",
        body: b"<meta content=IE=Edge>",
        stat: b"200",
        queries: vec![],
    };
    let mut p = PacketInfo::tcp(ip("10.0.0.1"), 40000, ip("192.0.2.1"), 80, 0x18);
    p.flow = Some(FlowInfo {
        to_server: true,
        established: true,
        app_proto: Some("http"),
        encrypted: false,
    });
    let mut vars = FlowVars::default();
    let mut st = DetectState::default();
    let mut out = Vec::new();
    let sids = |out: &mut Vec<Alert>| out.drain(..).map(|a| a.sig.sid).collect::<Vec<_>>();
    e.inspect_tx(&p, &tx, &mut vars, &mut st, &mut out);
    assert!(sids(&mut out).is_empty(), "no packet part seen yet");
    // The request's packet: the part matches, nothing is reported for it.
    e.inspect_packet(&pkt(b"GET /x magic"), &mut vars, &mut st, &mut out);
    assert!(sids(&mut out).is_empty());
    e.inspect_tx(&p, &tx, &mut vars, &mut st, &mut out);
    assert_eq!(sids(&mut out), [1]);
    e.inspect_tx(&p, &tx, &mut vars, &mut st, &mut out);
    assert!(
        sids(&mut out).is_empty(),
        "one packet match serves one transaction"
    );
    // The response's packet carries the body: sid 2 on the to-client side.
    let mut resp = PacketInfo::tcp(ip("192.0.2.1"), 80, ip("10.0.0.1"), 40000, 0x18);
    resp.payload = b"HTTP/1.1 200 OK\r\n\r\n<meta content=IE=Edge>";
    resp.flow = Some(FlowInfo {
        to_server: false,
        established: true,
        app_proto: Some("http"),
        encrypted: false,
    });
    e.inspect_packet(&resp, &mut vars, &mut st, &mut out);
    assert!(sids(&mut out).is_empty());
    e.inspect_tx(&p, &tx, &mut vars, &mut st, &mut out);
    let got: Vec<(u32, bool)> = out.iter().map(|a| (a.sig.sid, a.to_server)).collect();
    assert_eq!(got, [(2, false)]);
}

struct File(u64, Dir);

impl TxBuffers for File {
    fn proto(&self) -> &'static str {
        "file"
    }
    fn tx_id(&self) -> u64 {
        3
    }
    fn get(&self, _name: &str, _dir: Dir) -> Vec<Cow<'_, [u8]>> {
        Vec::new()
    }
    fn has_dir(&self, dir: Dir) -> bool {
        dir == self.1
    }
    fn file_size(&self) -> Option<u64> {
        Some(self.0)
    }
}

#[test]
fn filesize_on_closed_files() {
    let e = engine(
        "alert tcp any any -> any any (filesize:<70; sid:1;)\n\
         alert tcp any any -> any any (filesize:>50; sid:2;)\n\
         alert tcp any any -> any any (filesize:100<>200; sid:3;)\n\
         alert tcp any any -> any any (flow:to_client; filesize:68; sid:4;)\n",
    );
    let mut p = PacketInfo::tcp(ip("10.0.0.1"), 40000, ip("192.0.2.1"), 445, 0x18);
    p.flow = Some(FlowInfo {
        to_server: true,
        established: true,
        app_proto: Some("smb"),
        encrypted: false,
    });
    let run = |f: File| {
        let mut out = Vec::new();
        e.inspect_tx(
            &p,
            &f,
            &mut FlowVars::default(),
            &mut DetectState::default(),
            &mut out,
        );
        out.iter()
            .map(|a| (a.sig.sid, a.tx_id, a.to_server))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        run(File(68, Dir::ToServer)),
        [(1, Some(3), true), (2, Some(3), true)]
    );
    assert_eq!(
        run(File(150, Dir::ToServer)),
        [(2, Some(3), true), (3, Some(3), true)]
    );
    assert_eq!(
        run(File(68, Dir::ToClient)),
        [
            (1, Some(3), false),
            (2, Some(3), false),
            (4, Some(3), false)
        ]
    );
    let mut rs = khien_rules::Ruleset::new(Default::default());
    rs.add_file(
        "f.rules",
        "alert http any any -> any any (http.uri; content:\"x\"; filesize:>1; sid:1;)\n",
    );
    let (e, rep) = Engine::compile(&rs, &CompileOptions::default());
    assert!(e.is_empty());
    assert_eq!(rep.unsupported[0].keyword, "filesize with buffers");
}

/// Once a flow is encrypted, its payload is not inspected (Suricata's default TLS
/// `encryption-handling`): content and negated-content rules stay silent in packets and
/// in the raw stream; header-only and `dsize` rules still match.
#[test]
fn encrypted_flows_skip_payload_inspection() {
    let e = engine(
        "alert tcp any any -> any any (content:\"abc\"; sid:1;)\n\
         alert tcp any any -> any any (content:!\"zzz\"; sid:2;)\n\
         alert tcp any any -> any any (flags:PA; sid:3;)\n\
         alert tcp any any -> any any (dsize:>3; sid:4;)\n\
         alert tcp any any -> any any (content:\"abc\"; depth:3; sid:5;)\n",
    );
    let mut p = pkt(b"abcabc");
    let mut all = sids(&e, &p);
    all.sort_unstable();
    assert_eq!(all, [1, 2, 3, 4, 5]);
    if let Some(f) = p.flow.as_mut() {
        f.encrypted = true;
    }
    let mut left = sids(&e, &p);
    left.sort_unstable();
    assert_eq!(left, [3, 4]);
    let stream = |p: &PacketInfo<'_>| {
        let mut out: Vec<Alert> = Vec::new();
        e.inspect_stream(
            p,
            0,
            false,
            &mut FlowVars::default(),
            &mut DetectState::default(),
            &mut out,
        );
        out.len()
    };
    assert_eq!(stream(&p), 0);
    if let Some(f) = p.flow.as_mut() {
        f.encrypted = false;
    }
    assert!(stream(&p) > 0, "the raw stream is inspected otherwise");
}
