//! The collector end to end: `khien collector serve` with its managed ClickHouse (18.16 here)
//! on loopback, `khien ship`, and authentication.

mod collector_common;

use std::io::Write;
use std::time::Duration;

use collector_common::*;

/// Genuine Suricata EVE plus synthetic lines of every type plus malformed lines: the good
/// lines are stored once each, the bad ones are reported with their line numbers, and
/// shipping the same file again (offset forgotten) stores nothing twice.
#[test]
fn ship_genuine_and_synthetic_eve_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let c = Collector::start(&dir, "127.0.0.1:0");
    let token = sensor_add(&dir, "hanoi", "edge-1");

    let genuine = std::fs::read_to_string(genuine_sample()).unwrap();
    let n_genuine = genuine.lines().count() as u64;
    let eve = tmp.path().join("eve.json");
    let n_synth = 20_000u64;
    khien_collector::synth::write_file(&eve, n_synth).unwrap();
    {
        let mut f = std::fs::OpenOptions::new().append(true).open(&eve).unwrap();
        f.write_all(genuine.as_bytes()).unwrap();
        f.write_all(b"{\"event_type\":\"alert\"}\nnot json at all\n")
            .unwrap();
    }
    let total = n_synth + n_genuine;

    let out = ship_once(&eve, &c.url(), &token, &c.ca());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ship failed: {stderr}");
    assert!(stderr.contains(&format!("{total} accepted")), "{stderr}");
    assert!(stderr.contains("2 rejected"), "{stderr}");
    assert!(
        stderr.contains("missing field `timestamp`"),
        "line-level reason: {stderr}"
    );

    let sql = "SELECT count() FROM events WHERE tenant = 'hanoi'";
    assert_eq!(wait_for(&dir, sql, total, Duration::from_secs(60)), total);
    // Every family table got its share; alerts also feed the per-minute rollup.
    let alerts = query_u64(&dir, "SELECT count() FROM alert_events");
    assert_eq!(
        alerts,
        n_synth / 20 + genuine.matches("\"event_type\":\"alert\"").count() as u64
    );
    assert_eq!(
        query_u64(&dir, "SELECT sum(alerts) FROM alerts_per_minute"),
        alerts
    );
    assert_eq!(
        query_u64(
            &dir,
            "SELECT count() FROM dns_events WHERE rrname LIKE '%.example.gov.vn'"
        ),
        n_synth / 5
    );
    assert_eq!(
        query_u64(&dir, "SELECT uniqExact(event_id) FROM events"),
        total
    );
    // Every block reached ClickHouse in its table's sort order (tenant, ts, event_id), so
    // none was sorted on insert; only the rollup's aggregates (one block per INSERT into
    // alert_events) may be unsorted.
    let counter = |name: &str| {
        query_u64(
            &dir,
            &format!("SELECT sum(value) FROM system.events WHERE event = '{name}'"),
        )
    };
    let blocks = counter("MergeTreeDataWriterBlocks");
    let sorted = counter("MergeTreeDataWriterBlocksAlreadySorted");
    let alert_inserts = query_u64(
        &dir,
        "SELECT count() FROM system.parts WHERE table = 'alert_events' AND level = 0",
    );
    assert!(
        blocks > alert_inserts && blocks - sorted <= alert_inserts,
        "{blocks} blocks written, {sorted} already sorted, {alert_inserts} alert INSERTs"
    );
    let sid = query(
        &dir,
        "SELECT signature_id, src_ip FROM alert_events WHERE signature_id = 2100015 ORDER BY ts, ts_usec LIMIT 1",
    );
    assert_eq!(sid.trim(), "2100015\t10.10.15.16");

    // Forget the offset and ship again: the stream id (host, path, inode, first line) is the
    // same, so every line is acknowledged as a duplicate and nothing is stored twice.
    let mut state = eve.clone().into_os_string();
    state.push(".khien-ship.json");
    std::fs::remove_file(&state).unwrap();
    let out = ship_once(&eve, &c.url(), &token, &c.ca());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("0 accepted"), "{stderr}");
    assert!(
        stderr.contains(&format!("{} duplicates", total + 2)),
        "{stderr}"
    );
    assert_eq!(wait_for(&dir, sql, total, Duration::from_secs(10)), total);

    // The read-only query refuses writes.
    let w = khien()
        .args(["collector", "query", "--data"])
        .arg(&dir)
        .arg("INSERT INTO other_events (event_id) VALUES (1)")
        .output()
        .unwrap();
    assert!(!w.status.success());
}

/// A resent batch (same stream, same offsets) is acknowledged as duplicates and not stored.
#[test]
fn resent_batches_are_not_stored_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let c = Collector::start(&dir, "127.0.0.1:0");
    let token = sensor_add(&dir, "danang", "edge-1");
    let client = https_client(&c);
    let mut body = String::new();
    for i in 0..100 {
        khien_collector::synth::line(&mut body, i);
        body.push('\n');
    }
    let rt = rt();
    for _ in 0..3 {
        let (status, reply) = rt.block_on(post(
            &client,
            &c,
            Some(&token),
            &body,
            &[("x-khien-stream", "s1"), ("x-khien-offset", "0")],
        ));
        assert_eq!(status, 200, "{reply}");
    }
    let (_, reply) = rt.block_on(post(
        &client,
        &c,
        Some(&token),
        &body,
        &[("x-khien-stream", "s1"), ("x-khien-offset", "0")],
    ));
    assert!(
        reply.contains("\"accepted\":0") && reply.contains("\"duplicates\":100"),
        "{reply}"
    );
    let sql = "SELECT count() FROM events WHERE tenant = 'danang'";
    assert_eq!(wait_for(&dir, sql, 100, Duration::from_secs(30)), 100);
}

/// `X-Khien-Ordered` (the shipper's second batch in flight): a batch waits until the stream
/// has reached its first byte, then is stored; one whose predecessor never comes is refused
/// with 409 after the wait (20 s) and stored when resent after it. Every line exactly once.
#[test]
fn ordered_batches_wait_for_their_turn() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let c = Collector::start(&dir, "127.0.0.1:0");
    let token = sensor_add(&dir, "hanoi", "edge-9");
    let client = https_client(&c);
    // Four consecutive pieces of one stream: a, b, d, then e.
    let piece = |from: u64| {
        let mut body = String::new();
        for i in from..from + 50 {
            khien_collector::synth::line(&mut body, i);
            body.push('\n');
        }
        body
    };
    let (a, b, d, e) = (piece(0), piece(50), piece(100), piece(150));
    let at = |n: usize| n.to_string();
    let (off_b, off_d) = (at(a.len()), at(a.len() + b.len()));
    let off_e = at(a.len() + b.len() + d.len());
    let rt = rt();
    let send = |body: &str, offset: &str| {
        let h = [
            ("x-khien-stream", "s9"),
            ("x-khien-offset", offset),
            ("x-khien-ordered", "1"),
        ];
        let h = h.map(|(k, v)| (k, v.to_owned()));
        let (client, c, token) = (&client, &c, &token);
        let body = body.to_owned();
        async move {
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post(client, c, Some(token), &body, &h).await
        }
    };
    // b is sent first and waits for a, sent a second later.
    let start = std::time::Instant::now();
    let ((status_b, reply_b), (status_a, reply_a)) = rt.block_on(async {
        tokio::join!(send(&b, &off_b), async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            send(&a, "0").await
        })
    });
    assert_eq!((status_a, status_b), (200, 200), "{reply_a} {reply_b}");
    assert!(reply_b.contains("\"accepted\":50"), "{reply_b}");
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "b did not wait for a"
    );
    // e's predecessor d is missing: refused with 409 after the wait.
    let start = std::time::Instant::now();
    let (status_e, reply_e) = rt.block_on(send(&e, &off_e));
    assert_eq!(status_e, 409, "{reply_e}");
    assert!(
        start.elapsed() >= Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    // d, then e again: both stored.
    let (status_d, reply_d) = rt.block_on(send(&d, &off_d));
    assert_eq!(status_d, 200, "{reply_d}");
    let (status_e, reply_e) = rt.block_on(send(&e, &off_e));
    assert_eq!(status_e, 200, "{reply_e}");
    assert!(reply_e.contains("\"accepted\":50"), "{reply_e}");
    let sql = "SELECT count() FROM events WHERE tenant = 'hanoi'";
    assert_eq!(wait_for(&dir, sql, 200, Duration::from_secs(30)), 200);
    let sql = "SELECT uniqExact(raw) FROM events WHERE tenant = 'hanoi'";
    assert_eq!(query(&dir, sql).trim(), "200", "every line once");
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn https_client(c: &Collector) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(c.ca()).unwrap()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap()
}

async fn post(
    client: &reqwest::Client,
    c: &Collector,
    token: Option<&str>,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut req = client
        .post(format!("{}/v1/events", c.url()))
        .body(body.to_owned());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// No token, a wrong token, a revoked token: refused, nothing written. A token of tenant A
/// with a `tenant` field of B in the body: stored under A, nothing under B.
#[test]
fn authentication() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let c = Collector::start(&dir, "127.0.0.1:0");
    let a = sensor_add(&dir, "tenant-a", "a-1");
    let revoked = sensor_add(&dir, "tenant-r", "r-1");
    let out = khien()
        .args(["collector", "sensor", "revoke", "--data"])
        .arg(&dir)
        .args(["--name", "r-1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let client = https_client(&c);
    let rt = rt();
    let mut line = String::new();
    khien_collector::synth::line(&mut line, 15);
    let body = format!("{line}\n");

    // The registry stores only hashes.
    let reg = std::fs::read_to_string(dir.join("sensors.json")).unwrap();
    assert!(!reg.contains(&a) && !reg.contains(&revoked));

    for (token, what) in [
        (None, "no token"),
        (
            Some("khs_0000000000000000000000000000000000000000000000000000000000000000"),
            "wrong token",
        ),
        (Some(revoked.as_str()), "revoked token"),
        (Some(""), "empty token"),
    ] {
        let (status, reply) = rt.block_on(post(&client, &c, token, &body, &[]));
        assert_eq!(status, 401, "{what}: {reply}");
    }
    // Not over plain HTTP either: the port speaks TLS only.
    let plain = rt.block_on(
        reqwest::Client::new()
            .post(format!("http://{}/v1/events", c.addr))
            .bearer_auth(&a)
            .body(body.clone())
            .send(),
    );
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    // Tenant A writes an event that claims tenant B.
    let spoof = line.replacen(
        "{\"timestamp\"",
        "{\"tenant\":\"tenant-b\",\"timestamp\"",
        1,
    );
    let (status, reply) = rt.block_on(post(&client, &c, Some(&a), &format!("{spoof}\n"), &[]));
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("\"accepted\":1"), "{reply}");

    let sql = "SELECT count() FROM events WHERE tenant = 'tenant-a'";
    assert_eq!(wait_for(&dir, sql, 1, Duration::from_secs(30)), 1);
    assert_eq!(
        query_u64(&dir, "SELECT count() FROM events"),
        1,
        "nothing else was written"
    );
    assert_eq!(
        query_u64(&dir, "SELECT count() FROM events WHERE tenant = 'tenant-b'"),
        0
    );
    assert_eq!(
        query_u64(&dir, "SELECT count() FROM events WHERE tenant = 'tenant-r'"),
        0
    );
}

/// Compression, malformed lines with line numbers, size limits.
#[test]
fn bodies_encodings_and_malformed_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let c = Collector::start(&dir, "127.0.0.1:0");
    let token = sensor_add(&dir, "hue", "edge-1");
    let client = https_client(&c);
    let rt = rt();
    let mut body = String::new();
    for i in 0..10 {
        khien_collector::synth::line(&mut body, i);
        body.push('\n');
        if i == 4 {
            body.push_str("{\"timestamp\":\"2026-11-22T00:00:00+0000\",\"event_type\":\n");
        }
    }
    // gzip
    let mut gz = flate2_gzip(body.as_bytes());
    let resp = rt.block_on(
        client
            .post(format!("{}/v1/events", c.url()))
            .bearer_auth(&token)
            .header("content-encoding", "gzip")
            .body(std::mem::take(&mut gz))
            .send(),
    );
    let resp = resp.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let reply: serde_json::Value =
        serde_json::from_str(&rt.block_on(resp.text()).unwrap()).unwrap();
    assert_eq!(reply["accepted"], 10);
    assert_eq!(reply["rejected"], 1);
    assert_eq!(reply["errors"][0]["line"], 6);
    assert!(reply["errors"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("invalid JSON"));
    // Garbage claimed to be zstd.
    let resp = rt
        .block_on(
            client
                .post(format!("{}/v1/events", c.url()))
                .bearer_auth(&token)
                .header("content-encoding", "zstd")
                .body(b"not zstd".to_vec())
                .send(),
        )
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    // Unknown encoding.
    let resp = rt
        .block_on(
            client
                .post(format!("{}/v1/events", c.url()))
                .bearer_auth(&token)
                .header("content-encoding", "br")
                .body(body.clone())
                .send(),
        )
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    // Over the compressed-body limit (32 MiB). The server refuses it from its Content-Length
    // without reading the body, then closes the connection; a client still writing the body
    // can see that reset before it reads the 413, so a connection error may come first.
    let big = vec![b'\n'; 33 << 20];
    let status = (0..5)
        .find_map(|_| {
            let sent = client
                .post(format!("{}/v1/events", c.url()))
                .bearer_auth(&token)
                .body(big.clone())
                .send();
            rt.block_on(sent).ok().map(|r| r.status().as_u16())
        })
        .expect("no answer to an oversized body in 5 tries");
    assert_eq!(status, 413);

    let sql = "SELECT count() FROM events WHERE tenant = 'hue'";
    assert_eq!(wait_for(&dir, sql, 10, Duration::from_secs(30)), 10);
}

fn flate2_gzip(b: &[u8]) -> Vec<u8> {
    // gzip by the system's `gzip` would add a dependency on the tool; build it by hand with
    // a stored (uncompressed) deflate stream instead: header, stored blocks, CRC32, size.
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let chunks: Vec<&[u8]> = b.chunks(65_535).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(b).to_le_bytes());
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out
}

fn crc32(b: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &x in b {
        crc ^= u32::from(x);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Retention drops one tenant's old daily partitions (every event table and the rollup) and
/// keeps the rest.
#[test]
fn retention_drops_old_partitions_per_tenant() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let c = Collector::start(&dir, "127.0.0.1:0");
    let old = sensor_add(&dir, "old", "o-1");
    let keep = sensor_add(&dir, "keep", "k-1");
    let mut recent = String::new();
    let mut past = String::new();
    for i in 0..400 {
        let mut l = String::new();
        khien_collector::synth::line(&mut l, i);
        recent.push_str(&l);
        recent.push('\n');
        // The same events, 2020-01-05 and 2020-01-06.
        let day = if i % 2 == 0 {
            "2020-01-05"
        } else {
            "2020-01-06"
        };
        past.push_str(&l.replace("2026-11-22", day));
        past.push('\n');
    }
    for (name, text, token) in [
        ("recent", &recent, &keep),
        ("past", &past, &old),
        ("recent-old", &recent, &old),
    ] {
        let f = tmp.path().join(name);
        std::fs::write(&f, text).unwrap();
        let out = ship_once(&f, &c.url(), token, &c.ca());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        wait_for(
            &dir,
            "SELECT count() FROM events",
            1200,
            Duration::from_secs(30)
        ),
        1200
    );
    let out = khien()
        .args(["collector", "retention", "--data"])
        .arg(&dir)
        .args(["--tenant-days", "old=30"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("dropped\talert_events\told\t20200106"),
        "{stdout}"
    );
    assert!(
        stdout.contains("dropped\tdns_events\told\t20200105"),
        "{stdout}"
    );
    assert_eq!(
        query_u64(&dir, "SELECT count() FROM events WHERE tenant = 'old'"),
        400
    );
    assert_eq!(
        query_u64(&dir, "SELECT count() FROM events WHERE tenant = 'keep'"),
        400
    );
    assert_eq!(
        query_u64(&dir, "SELECT count() FROM events WHERE toYear(ts) = 2020"),
        0
    );
    assert_eq!(
        query_u64(
            &dir,
            "SELECT sum(alerts) FROM alerts_per_minute WHERE tenant = 'old'"
        ),
        query_u64(
            &dir,
            "SELECT count() FROM alert_events WHERE tenant = 'old'"
        )
    );
}
