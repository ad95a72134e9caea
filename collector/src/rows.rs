//! Row types of the ClickHouse tables, borrowed from parsed EVE records.
//!
//! Field order and names match `sql/001_events.sql`; the writer inserts them as RowBinary
//! through the `clickhouse` crate (validation off, as 18.16 lacks what validation needs).

use clickhouse::Row;
use serde::Serialize;

use crate::eve::Eve;

/// What the collector adds to every record: identity, batch and provenance.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    pub event_id: u64,
    pub batch: u64,
    pub received: u32,
    pub tenant: &'a str,
    pub sensor: &'a str,
}

macro_rules! family_row {
    ($(#[$doc:meta])* $name:ident { $($field:ident : $ty:ty = |$e:ident| $val:expr),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Row, Serialize)]
        pub struct $name<'a> {
            pub event_id: u64,
            pub batch: u64,
            pub ts: u32,
            pub ts_usec: u32,
            pub received: u32,
            pub tenant: &'a str,
            pub sensor: &'a str,
            pub event_type: &'a str,
            pub flow_id: u64,
            pub src_ip: &'a str,
            pub src_port: u16,
            pub dest_ip: &'a str,
            pub dest_port: u16,
            pub proto: &'a str,
            pub app_proto: &'a str,
            pub in_iface: &'a str,
            $(pub $field: $ty,)*
            pub raw: &'a str,
        }

        impl<'a> $name<'a> {
            /// Builds the row of `e`, whose original line is `raw`.
            #[allow(unused_variables, reason = "the `other` family has no own fields")]
            pub fn new(m: &Meta<'a>, e: &'a Eve<'a>, raw: &'a str) -> Self {
                $(let $field: $ty = { let $e = e; $val };)*
                $name {
                    event_id: m.event_id,
                    batch: m.batch,
                    ts: e.ts,
                    ts_usec: e.ts_usec,
                    received: m.received,
                    tenant: m.tenant,
                    sensor: m.sensor,
                    event_type: e.event_type(),
                    flow_id: e.flow_id,
                    src_ip: &e.src_ip,
                    src_port: e.src_port,
                    dest_ip: &e.dest_ip,
                    dest_port: e.dest_port,
                    proto: &e.proto,
                    app_proto: &e.app_proto,
                    in_iface: &e.in_iface,
                    $($field,)*
                    raw,
                }
            }
        }
    };
}

fn ts_of(s: &str) -> u32 {
    crate::eve::parse_timestamp(s).map(|t| t.0).unwrap_or(0)
}

family_row!(
    /// Row of `alert_events`.
    AlertRow {
        action: &'a str = |e| e.alert.as_ref().map_or("", |a| &a.action),
        gid: u32 = |e| e.alert.as_ref().map_or(0, |a| a.gid),
        signature_id: u32 = |e| e.alert.as_ref().map_or(0, |a| a.signature_id),
        rev: u32 = |e| e.alert.as_ref().map_or(0, |a| a.rev),
        signature: &'a str = |e| e.alert.as_ref().map_or("", |a| &a.signature),
        category: &'a str = |e| e.alert.as_ref().map_or("", |a| &a.category),
        severity: u8 = |e| e.alert.as_ref().map_or(0, |a| a.severity),
    }
);

family_row!(
    /// Row of `flow_events`.
    FlowRow {
        pkts_toserver: u64 = |e| e.flow.as_ref().map_or(0, |f| f.pkts_toserver),
        pkts_toclient: u64 = |e| e.flow.as_ref().map_or(0, |f| f.pkts_toclient),
        bytes_toserver: u64 = |e| e.flow.as_ref().map_or(0, |f| f.bytes_toserver),
        bytes_toclient: u64 = |e| e.flow.as_ref().map_or(0, |f| f.bytes_toclient),
        flow_start: u32 = |e| e.flow.as_ref().map_or(0, |f| ts_of(&f.start)),
        flow_end: u32 = |e| e.flow.as_ref().map_or(0, |f| ts_of(&f.end)),
        age: u32 = |e| e.flow.as_ref().map_or(0, |f| f.age),
        state: &'a str = |e| e.flow.as_ref().map_or("", |f| &f.state),
        reason: &'a str = |e| e.flow.as_ref().map_or("", |f| &f.reason),
        alerted: u8 = |e| e.flow.as_ref().map_or(0, |f| u8::from(f.alerted)),
    }
);

family_row!(
    /// Row of `http_events`.
    HttpRow {
        hostname: &'a str = |e| e.http.as_ref().map_or("", |h| &h.hostname),
        url: &'a str = |e| e.http.as_ref().map_or("", |h| &h.url),
        http_method: &'a str = |e| e.http.as_ref().map_or("", |h| &h.http_method),
        http_user_agent: &'a str = |e| e.http.as_ref().map_or("", |h| &h.http_user_agent),
        http_content_type: &'a str = |e| e.http.as_ref().map_or("", |h| &h.http_content_type),
        protocol: &'a str = |e| e.http.as_ref().map_or("", |h| &h.protocol),
        status: u16 = |e| e.http.as_ref().map_or(0, |h| h.status),
        length: u64 = |e| e.http.as_ref().map_or(0, |h| h.length),
    }
);

family_row!(
    /// Row of `dns_events`.
    DnsRow {
        dns_type: &'a str = |e| e.dns.as_ref().map_or("", |d| &d.kind),
        dns_id: u16 = |e| e.dns.as_ref().map_or(0, |d| d.id),
        rrname: &'a str = |e| e.dns.as_ref().map_or("", |d| &d.rrname),
        rrtype: &'a str = |e| e.dns.as_ref().map_or("", |d| &d.rrtype),
        rcode: &'a str = |e| e.dns.as_ref().map_or("", |d| &d.rcode),
    }
);

family_row!(
    /// Row of `tls_events`.
    TlsRow {
        sni: &'a str = |e| e.tls.as_ref().map_or("", |t| &t.sni),
        tls_version: &'a str = |e| e.tls.as_ref().map_or("", |t| &t.version),
        subject: &'a str = |e| e.tls.as_ref().map_or("", |t| &t.subject),
        issuerdn: &'a str = |e| e.tls.as_ref().map_or("", |t| &t.issuerdn),
        fingerprint: &'a str = |e| e.tls.as_ref().map_or("", |t| &t.fingerprint),
        ja3_hash: &'a str = |e| e.tls.as_ref().and_then(|t| t.ja3.as_ref()).map_or("", |j| &j.hash),
        ja3s_hash: &'a str = |e| e.tls.as_ref().and_then(|t| t.ja3s.as_ref()).map_or("", |j| &j.hash),
    }
);

family_row!(
    /// Row of `fileinfo_events`.
    FileinfoRow {
        filename: &'a str = |e| e.fileinfo.as_ref().map_or("", |f| &f.filename),
        md5: &'a str = |e| e.fileinfo.as_ref().map_or("", |f| &f.md5),
        sha1: &'a str = |e| e.fileinfo.as_ref().map_or("", |f| &f.sha1),
        sha256: &'a str = |e| e.fileinfo.as_ref().map_or("", |f| &f.sha256),
        size: u64 = |e| e.fileinfo.as_ref().map_or(0, |f| f.size),
        file_state: &'a str = |e| e.fileinfo.as_ref().map_or("", |f| &f.state),
        stored: u8 = |e| e.fileinfo.as_ref().map_or(0, |f| u8::from(f.stored)),
    }
);

family_row!(
    /// Row of `anomaly_events`.
    AnomalyRow {
        anomaly_type: &'a str = |e| e.anomaly.as_ref().map_or("", |a| &a.kind),
        anomaly_event: &'a str = |e| e.anomaly.as_ref().map_or("", |a| &a.event),
        layer: &'a str = |e| e.anomaly.as_ref().map_or("", |a| &a.layer),
    }
);

family_row!(
    /// Row of `other_events` (every event type without a table of its own).
    OtherRow {}
);
