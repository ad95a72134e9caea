//! Row types of the ClickHouse tables, borrowed from parsed EVE records.
//!
//! Field order and names match `sql/001_events.sql`; the writer inserts them as RowBinary
//! through the `clickhouse` crate (validation off, as 18.16 lacks what validation needs).

use clickhouse::Row;
use serde::Serialize;

use crate::assets::{raise_severity, Asset};
use crate::eve::Eve;
use crate::indicators::Indicator;

/// What the collector adds to every record: identity, batch and provenance.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    pub event_id: u64,
    pub batch: u64,
    pub received: u32,
    pub tenant: &'a str,
    pub sensor: &'a str,
    /// The inventory system of the event's asset side (see `assets.rs`), if any.
    pub asset: Option<&'a Asset>,
    /// `dest`, `src` or empty.
    pub side: &'static str,
}

impl<'a> Meta<'a> {
    fn asset_agency(&self) -> &'a str {
        self.asset.map_or("", |a| &a.agency)
    }

    fn asset_system(&self) -> &'a str {
        self.asset.map_or("", |a| &a.system)
    }

    fn asset_level(&self) -> u8 {
        self.asset.map_or(0, |a| a.level)
    }
}

macro_rules! family_row {
    ($(#[$doc:meta])* $name:ident { $($field:ident : $ty:ty = |$e:ident $(, $m:ident)?| $val:expr),* $(,)? }) => {
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
            pub asset_agency: &'a str,
            pub asset_system: &'a str,
            pub asset_level: u8,
            pub asset_side: &'a str,
            $(pub $field: $ty,)*
            pub raw: &'a str,
        }

        impl<'a> $name<'a> {
            /// Builds the row of `e`, whose original line is `raw`.
            #[allow(unused_variables, reason = "the `other` family has no own fields")]
            pub fn new(m: &Meta<'a>, e: &'a Eve<'a>, raw: &'a str) -> Self {
                $(let $field: $ty = { let $e = e; $(let $m = m;)? $val };)*
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
                    asset_agency: m.asset_agency(),
                    asset_system: m.asset_system(),
                    asset_level: m.asset_level(),
                    asset_side: m.side,
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
        // Raised by the security level of the system hit (assets.rs); `raw` keeps the original.
        severity: u8 = |e, m| raise_severity(e.alert.as_ref().map_or(0, |a| a.severity), m.asset_level()),
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

/// Severity of an intel alert before the asset rule (medium).
pub const INTEL_SEVERITY: u8 = 2;

/// Row of `intel_alerts`: one indicator match of one event.
#[derive(Debug, Row, Serialize)]
pub struct IntelRow<'a> {
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
    pub asset_agency: &'a str,
    pub asset_system: &'a str,
    pub asset_level: u8,
    pub asset_side: &'a str,
    pub source_event_id: u64,
    pub indicator: &'a str,
    pub indicator_kind: &'a str,
    pub source: &'a str,
    pub field: &'a str,
    pub value: &'a str,
    pub severity: u8,
}

impl<'a> IntelRow<'a> {
    /// The row of a match of `ind` on `field` (= `value`) of event `e` (`m` is its meta).
    pub fn new(
        m: &Meta<'a>,
        e: &'a Eve<'a>,
        ind: &'a Indicator,
        field: &'a str,
        value: &'a str,
    ) -> Self {
        IntelRow {
            event_id: intel_id(m.event_id, ind, field),
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
            asset_agency: m.asset_agency(),
            asset_system: m.asset_system(),
            asset_level: m.asset_level(),
            asset_side: m.side,
            source_event_id: m.event_id,
            indicator: &ind.value,
            indicator_kind: ind.kind.as_str(),
            source: &ind.source,
            field,
            value,
            severity: raise_severity(INTEL_SEVERITY, m.asset_level()),
        }
    }
}

/// Id of an intel alert: from the matching event's id, the indicator and the field, so the
/// same match always gets the same id (re-inserts after a crash are recognised).
pub fn intel_id(source_event_id: u64, ind: &Indicator, field: &str) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(b"intel\0");
    h.update(&source_event_id.to_le_bytes());
    h.update(ind.kind.as_str().as_bytes());
    h.update(&[0]);
    h.update(ind.value.as_bytes());
    h.update(&[0]);
    h.update(field.as_bytes());
    h.digest()
}
