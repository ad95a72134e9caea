-- Migration 3: enrichment and correlation.
-- Asset columns on every event table (see collector/src/assets.rs). ClickHouse 18.16 has no
-- `ADD COLUMN IF NOT EXISTS`, so each ALTER adds one column and the migration runner
-- (schema::execute) skips it when system.columns already lists that column: idempotent.
ALTER TABLE alert_events ADD COLUMN asset_agency String;
ALTER TABLE alert_events ADD COLUMN asset_system String;
ALTER TABLE alert_events ADD COLUMN asset_level UInt8;
ALTER TABLE alert_events ADD COLUMN asset_side String;
ALTER TABLE flow_events ADD COLUMN asset_agency String;
ALTER TABLE flow_events ADD COLUMN asset_system String;
ALTER TABLE flow_events ADD COLUMN asset_level UInt8;
ALTER TABLE flow_events ADD COLUMN asset_side String;
ALTER TABLE http_events ADD COLUMN asset_agency String;
ALTER TABLE http_events ADD COLUMN asset_system String;
ALTER TABLE http_events ADD COLUMN asset_level UInt8;
ALTER TABLE http_events ADD COLUMN asset_side String;
ALTER TABLE dns_events ADD COLUMN asset_agency String;
ALTER TABLE dns_events ADD COLUMN asset_system String;
ALTER TABLE dns_events ADD COLUMN asset_level UInt8;
ALTER TABLE dns_events ADD COLUMN asset_side String;
ALTER TABLE tls_events ADD COLUMN asset_agency String;
ALTER TABLE tls_events ADD COLUMN asset_system String;
ALTER TABLE tls_events ADD COLUMN asset_level UInt8;
ALTER TABLE tls_events ADD COLUMN asset_side String;
ALTER TABLE fileinfo_events ADD COLUMN asset_agency String;
ALTER TABLE fileinfo_events ADD COLUMN asset_system String;
ALTER TABLE fileinfo_events ADD COLUMN asset_level UInt8;
ALTER TABLE fileinfo_events ADD COLUMN asset_side String;
ALTER TABLE anomaly_events ADD COLUMN asset_agency String;
ALTER TABLE anomaly_events ADD COLUMN asset_system String;
ALTER TABLE anomaly_events ADD COLUMN asset_level UInt8;
ALTER TABLE anomaly_events ADD COLUMN asset_side String;
ALTER TABLE other_events ADD COLUMN asset_agency String;
ALTER TABLE other_events ADD COLUMN asset_system String;
ALTER TABLE other_events ADD COLUMN asset_level UInt8;
ALTER TABLE other_events ADD COLUMN asset_side String;
-- One row per (event, indicator, field) match; event_id is derived from the matching event's
-- id (source_event_id), the indicator and the field, so re-inserts are recognised.
CREATE TABLE IF NOT EXISTS intel_alerts (
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
    asset_agency String,
    asset_system String,
    asset_level UInt8,
    asset_side String,
    source_event_id UInt64,
    indicator String,
    indicator_kind String,
    source String,
    field String,
    value String,
    severity UInt8
) ENGINE = MergeTree()
PARTITION BY (tenant, toYYYYMMDD(ts))
ORDER BY (tenant, ts, event_id);
-- Correlation results, one per (rule, key, window): `id` is a hash of tenant, rule, key and
-- window start, inserted only when absent (ReplacingMergeTree collapses any racing copy).
CREATE TABLE IF NOT EXISTS incidents (
    id UInt64,
    tenant String,
    rule String,
    rule_type String,
    key_field String,
    key String,
    window_start DateTime,
    window_end DateTime,
    first_seen DateTime,
    last_seen DateTime,
    attack Array(String),
    severity UInt8,
    events UInt64,
    event_ids Array(String),
    created DateTime
) ENGINE = ReplacingMergeTree()
PARTITION BY (tenant, toYYYYMMDD(window_start))
ORDER BY (tenant, id);
