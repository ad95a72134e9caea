-- Migration 4: the `events` view also carries the asset columns of migration 3, so hunting
-- across every event type can filter by agency, system and security level. A view cannot be
-- altered on 18.16: it is dropped and created again (both idempotent; the runner records the
-- migration only after both ran).
DROP TABLE IF EXISTS events;
CREATE VIEW IF NOT EXISTS events AS
SELECT event_id, batch, ts, ts_usec, received, tenant, sensor, event_type, flow_id, src_ip, src_port, dest_ip, dest_port, proto, app_proto, in_iface, asset_agency, asset_system, asset_level, asset_side, raw FROM alert_events
UNION ALL
SELECT event_id, batch, ts, ts_usec, received, tenant, sensor, event_type, flow_id, src_ip, src_port, dest_ip, dest_port, proto, app_proto, in_iface, asset_agency, asset_system, asset_level, asset_side, raw FROM flow_events
UNION ALL
SELECT event_id, batch, ts, ts_usec, received, tenant, sensor, event_type, flow_id, src_ip, src_port, dest_ip, dest_port, proto, app_proto, in_iface, asset_agency, asset_system, asset_level, asset_side, raw FROM http_events
UNION ALL
SELECT event_id, batch, ts, ts_usec, received, tenant, sensor, event_type, flow_id, src_ip, src_port, dest_ip, dest_port, proto, app_proto, in_iface, asset_agency, asset_system, asset_level, asset_side, raw FROM dns_events
UNION ALL
SELECT event_id, batch, ts, ts_usec, received, tenant, sensor, event_type, flow_id, src_ip, src_port, dest_ip, dest_port, proto, app_proto, in_iface, asset_agency, asset_system, asset_level, asset_side, raw FROM tls_events
UNION ALL
SELECT event_id, batch, ts, ts_usec, received, tenant, sensor, event_type, flow_id, src_ip, src_port, dest_ip, dest_port, proto, app_proto, in_iface, asset_agency, asset_system, asset_level, asset_side, raw FROM fileinfo_events
UNION ALL
SELECT event_id, batch, ts, ts_usec, received, tenant, sensor, event_type, flow_id, src_ip, src_port, dest_ip, dest_port, proto, app_proto, in_iface, asset_agency, asset_system, asset_level, asset_side, raw FROM anomaly_events
UNION ALL
SELECT event_id, batch, ts, ts_usec, received, tenant, sensor, event_type, flow_id, src_ip, src_port, dest_ip, dest_port, proto, app_proto, in_iface, asset_agency, asset_system, asset_level, asset_side, raw FROM other_events;
