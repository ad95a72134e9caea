-- Migration 2: alerts per minute by tenant and signature, kept by a materialized view.
CREATE TABLE IF NOT EXISTS alerts_per_minute (
    tenant String,
    minute DateTime,
    signature_id UInt32,
    alerts UInt64
) ENGINE = SummingMergeTree()
PARTITION BY (tenant, toYYYYMMDD(minute))
ORDER BY (tenant, minute, signature_id);
CREATE MATERIALIZED VIEW IF NOT EXISTS alerts_per_minute_mv TO alerts_per_minute AS
SELECT tenant, toStartOfMinute(ts) AS minute, signature_id, count() AS alerts
FROM alert_events
GROUP BY tenant, minute, signature_id;
