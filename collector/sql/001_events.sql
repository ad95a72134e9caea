-- Migration 1: one table per event family, the `events` view over all of them.
-- Every statement runs unchanged on ClickHouse 18.16 and current ClickHouse.
CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, applied DateTime) ENGINE = MergeTree() ORDER BY version;
CREATE TABLE IF NOT EXISTS alert_events (
    event_id UInt64,
    batch UInt64,
    ts DateTime,
    ts_usec UInt32,
    received DateTime,
    tenant String,
    sensor String,
    event_type String,
    flow_id UInt64,
    src_ip String,
    src_port UInt16,
    dest_ip String,
    dest_port UInt16,
    proto String,
    app_proto String,
    in_iface String,
    action String,
    gid UInt32,
    signature_id UInt32,
    rev UInt32,
    signature String,
    category String,
    severity UInt8,
    raw String
) ENGINE = MergeTree()
PARTITION BY (tenant, toYYYYMMDD(ts))
ORDER BY (tenant, ts, event_id);
CREATE TABLE IF NOT EXISTS flow_events (
    event_id UInt64,
    batch UInt64,
    ts DateTime,
    ts_usec UInt32,
    received DateTime,
    tenant String,
    sensor String,
    event_type String,
    flow_id UInt64,
    src_ip String,
    src_port UInt16,
    dest_ip String,
    dest_port UInt16,
    proto String,
    app_proto String,
    in_iface String,
    pkts_toserver UInt64,
    pkts_toclient UInt64,
    bytes_toserver UInt64,
    bytes_toclient UInt64,
    flow_start DateTime,
    flow_end DateTime,
    age UInt32,
    state String,
    reason String,
    alerted UInt8,
    raw String
) ENGINE = MergeTree()
PARTITION BY (tenant, toYYYYMMDD(ts))
ORDER BY (tenant, ts, event_id);
CREATE TABLE IF NOT EXISTS http_events (
    event_id UInt64,
    batch UInt64,
    ts DateTime,
    ts_usec UInt32,
    received DateTime,
    tenant String,
    sensor String,
    event_type String,
    flow_id UInt64,
    src_ip String,
    src_port UInt16,
    dest_ip String,
    dest_port UInt16,
    proto String,
    app_proto String,
    in_iface String,
    hostname String,
    url String,
    http_method String,
    http_user_agent String,
    http_content_type String,
    protocol String,
    status UInt16,
    length UInt64,
    raw String
) ENGINE = MergeTree()
PARTITION BY (tenant, toYYYYMMDD(ts))
ORDER BY (tenant, ts, event_id);
CREATE TABLE IF NOT EXISTS dns_events (
    event_id UInt64,
    batch UInt64,
    ts DateTime,
    ts_usec UInt32,
    received DateTime,
    tenant String,
    sensor String,
    event_type String,
    flow_id UInt64,
    src_ip String,
    src_port UInt16,
    dest_ip String,
    dest_port UInt16,
    proto String,
    app_proto String,
    in_iface String,
    dns_type String,
    dns_id UInt16,
    rrname String,
    rrtype String,
    rcode String,
    raw String
) ENGINE = MergeTree()
PARTITION BY (tenant, toYYYYMMDD(ts))
ORDER BY (tenant, ts, event_id);
CREATE TABLE IF NOT EXISTS tls_events (
    event_id UInt64,
    batch UInt64,
    ts DateTime,
    ts_usec UInt32,
    received DateTime,
    tenant String,
    sensor String,
    event_type String,
    flow_id UInt64,
    src_ip String,
    src_port UInt16,
    dest_ip String,
    dest_port UInt16,
    proto String,
    app_proto String,
    in_iface String,
    sni String,
    tls_version String,
    subject String,
    issuerdn String,
    fingerprint String,
    ja3_hash String,
    ja3s_hash String,
    raw String
) ENGINE = MergeTree()
PARTITION BY (tenant, toYYYYMMDD(ts))
ORDER BY (tenant, ts, event_id);
CREATE TABLE IF NOT EXISTS fileinfo_events (
    event_id UInt64,
    batch UInt64,
    ts DateTime,
    ts_usec UInt32,
    received DateTime,
    tenant String,
    sensor String,
    event_type String,
    flow_id UInt64,
    src_ip String,
    src_port UInt16,
    dest_ip String,
    dest_port UInt16,
    proto String,
    app_proto String,
    in_iface String,
    filename String,
    md5 String,
    sha1 String,
    sha256 String,
    size UInt64,
    file_state String,
    stored UInt8,
    raw String
) ENGINE = MergeTree()
PARTITION BY (tenant, toYYYYMMDD(ts))
ORDER BY (tenant, ts, event_id);
CREATE TABLE IF NOT EXISTS anomaly_events (
    event_id UInt64,
    batch UInt64,
    ts DateTime,
    ts_usec UInt32,
    received DateTime,
    tenant String,
    sensor String,
    event_type String,
    flow_id UInt64,
    src_ip String,
    src_port UInt16,
    dest_ip String,
    dest_port UInt16,
    proto String,
    app_proto String,
    in_iface String,
    anomaly_type String,
    anomaly_event String,
    layer String,
    raw String
) ENGINE = MergeTree()
PARTITION BY (tenant, toYYYYMMDD(ts))
ORDER BY (tenant, ts, event_id);
CREATE TABLE IF NOT EXISTS other_events (
    event_id UInt64,
    batch UInt64,
    ts DateTime,
    ts_usec UInt32,
    received DateTime,
    tenant String,
    sensor String,
    event_type String,
    flow_id UInt64,
    src_ip String,
    src_port UInt16,
    dest_ip String,
    dest_port UInt16,
    proto String,
    app_proto String,
    in_iface String,
    raw String
) ENGINE = MergeTree()
PARTITION BY (tenant, toYYYYMMDD(ts))
ORDER BY (tenant, ts, event_id);
CREATE VIEW IF NOT EXISTS events AS
SELECT event_id, batch, ts, ts_usec, received, tenant, sensor, event_type, flow_id, src_ip, src_port, dest_ip, dest_port, proto, app_proto, in_iface, raw FROM alert_events
UNION ALL
SELECT event_id, batch, ts, ts_usec, received, tenant, sensor, event_type, flow_id, src_ip, src_port, dest_ip, dest_port, proto, app_proto, in_iface, raw FROM flow_events
UNION ALL
SELECT event_id, batch, ts, ts_usec, received, tenant, sensor, event_type, flow_id, src_ip, src_port, dest_ip, dest_port, proto, app_proto, in_iface, raw FROM http_events
UNION ALL
SELECT event_id, batch, ts, ts_usec, received, tenant, sensor, event_type, flow_id, src_ip, src_port, dest_ip, dest_port, proto, app_proto, in_iface, raw FROM dns_events
UNION ALL
SELECT event_id, batch, ts, ts_usec, received, tenant, sensor, event_type, flow_id, src_ip, src_port, dest_ip, dest_port, proto, app_proto, in_iface, raw FROM tls_events
UNION ALL
SELECT event_id, batch, ts, ts_usec, received, tenant, sensor, event_type, flow_id, src_ip, src_port, dest_ip, dest_port, proto, app_proto, in_iface, raw FROM fileinfo_events
UNION ALL
SELECT event_id, batch, ts, ts_usec, received, tenant, sensor, event_type, flow_id, src_ip, src_port, dest_ip, dest_port, proto, app_proto, in_iface, raw FROM anomaly_events
UNION ALL
SELECT event_id, batch, ts, ts_usec, received, tenant, sensor, event_type, flow_id, src_ip, src_port, dest_ip, dest_port, proto, app_proto, in_iface, raw FROM other_events;
