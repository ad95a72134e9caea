//! EVE JSON output in Suricata 7's formats: common fields, timestamps, addresses.
//!
//! Records are assembled in a reused line buffer and written with one `write_all`; the hot
//! path allocates nothing for flow and anomaly records.

use std::io::{self, Write};

use crate::decode::Addrs;

/// Formats `micros` since the Unix epoch like Suricata: "2016-01-01T10:00:00.123456+0000"
/// (UTC).
pub fn write_ts(out: &mut Vec<u8>, micros: i64) {
    let secs = micros.div_euclid(1_000_000);
    let us = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{us:06}+0000",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Writes an address like Suricata: dotted IPv4, fully expanded lowercase IPv6
/// ("2001:04f8:0004:0007:02e0:81ff:fe52:ffff").
pub fn write_ip(out: &mut Vec<u8>, v6: bool, a: &[u8; 16]) {
    if v6 {
        for i in 0..8 {
            if i > 0 {
                out.push(b':');
            }
            let _ = write!(out, "{:02x}{:02x}", a[2 * i], a[2 * i + 1]);
        }
    } else {
        let _ = write!(out, "{}.{}.{}.{}", a[0], a[1], a[2], a[3]);
    }
}

/// Suricata's protocol names for EVE `proto`.
pub fn proto_name(p: u8) -> ProtoName {
    ProtoName(p)
}

pub struct ProtoName(u8);

impl std::fmt::Display for ProtoName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self.0 {
            1 => "ICMP",
            2 => "IGMP",
            4 => "IPv4",
            6 => "TCP",
            17 => "UDP",
            41 => "IPv6",
            47 => "GRE",
            50 => "ESP",
            51 => "AH",
            58 => "IPv6-ICMP",
            89 => "OSPF",
            103 => "PIM",
            112 => "VRRP",
            132 => "SCTP",
            n => return write!(f, "{n}"),
        };
        f.write_str(s)
    }
}

/// The addresses and ports of a record, already oriented (src → dest).
#[derive(Clone, Copy, Debug)]
pub struct Tuple {
    pub addrs: Addrs,
    pub sp: u16,
    pub dp: u16,
    pub proto: u8,
    /// Whether the record carries ports (TCP, UDP, SCTP with a decoded header).
    pub ports: bool,
    /// VLAN ids, outermost first; 0 when absent (written as Suricata's `vlan` array).
    pub vlan: [u16; 2],
}

impl Tuple {
    pub fn has_ports(&self) -> bool {
        self.ports
    }
    pub fn reversed(&self) -> Tuple {
        Tuple {
            addrs: Addrs {
                v6: self.addrs.v6,
                src: self.addrs.dst,
                dst: self.addrs.src,
            },
            sp: self.dp,
            dp: self.sp,
            proto: self.proto,
            ports: self.ports,
            vlan: self.vlan,
        }
    }
}

/// Where a record's packet came from (Suricata's `pkt_src`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PktSrc {
    Wire,
    FlowTimeout,
}

/// Buffered EVE writer.
pub struct EveWriter {
    out: Box<dyn Write + Send>,
    pub line: Vec<u8>,
    pub records: u64,
}

impl EveWriter {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        EveWriter {
            out,
            line: Vec::with_capacity(4096),
            records: 0,
        }
    }

    /// Starts a record: `{"timestamp":..,"flow_id":..,"pcap_cnt":..,"event_type":..,` then
    /// the tuple and `pkt_src`. The caller appends sections and calls [`EveWriter::finish`].
    pub fn begin(
        &mut self,
        ts: i64,
        flow_id: Option<u64>,
        pcap_cnt: Option<u64>,
        event_type: &str,
        tuple: Option<&Tuple>,
        pkt_src: Option<PktSrc>,
    ) {
        let l = &mut self.line;
        l.clear();
        l.extend_from_slice(b"{\"timestamp\":\"");
        write_ts(l, ts);
        l.push(b'"');
        if let Some(id) = flow_id {
            let _ = write!(l, ",\"flow_id\":{id}");
        }
        if let Some(c) = pcap_cnt {
            let _ = write!(l, ",\"pcap_cnt\":{c}");
        }
        let _ = write!(l, ",\"event_type\":\"{event_type}\"");
        if let Some(t) = tuple {
            match t.vlan {
                [0, _] => {}
                [a, 0] => {
                    let _ = write!(l, ",\"vlan\":[{a}]");
                }
                [a, b] => {
                    let _ = write!(l, ",\"vlan\":[{a},{b}]");
                }
            }
            l.extend_from_slice(b",\"src_ip\":\"");
            write_ip(l, t.addrs.v6, &t.addrs.src);
            l.push(b'"');
            if t.has_ports() {
                let _ = write!(l, ",\"src_port\":{}", t.sp);
            }
            l.extend_from_slice(b",\"dest_ip\":\"");
            write_ip(l, t.addrs.v6, &t.addrs.dst);
            l.push(b'"');
            if t.has_ports() {
                let _ = write!(l, ",\"dest_port\":{}", t.dp);
            }
            let _ = write!(l, ",\"proto\":\"{}\"", proto_name(t.proto));
        }
        match pkt_src {
            Some(PktSrc::Wire) => l.extend_from_slice(b",\"pkt_src\":\"wire/pcap\""),
            Some(PktSrc::FlowTimeout) => {
                l.extend_from_slice(b",\"pkt_src\":\"stream (flow timeout)\"")
            }
            None => {}
        }
    }

    /// Appends `,"key":<json value>`.
    pub fn value(&mut self, key: &str, v: &serde_json::Value) {
        let _ = write!(self.line, ",\"{key}\":");
        let _ = serde_json::to_writer(&mut self.line, v);
    }

    /// Closes the record and writes it as one line.
    pub fn finish(&mut self) -> io::Result<()> {
        self.line.extend_from_slice(b"}\n");
        self.records += 1;
        self.out.write_all(&self.line)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_like_suricata() {
        let mut v = Vec::new();
        write_ts(&mut v, 1_451_642_400_123_456); // 2016-01-01T10:00:00.123456Z
        assert_eq!(v, b"2016-01-01T10:00:00.123456+0000");
        v.clear();
        write_ts(&mut v, 951_782_400_000_001); // leap day 2000-02-29
        assert_eq!(v, b"2000-02-29T00:00:00.000001+0000");
        v.clear();
        write_ts(&mut v, 0);
        assert_eq!(v, b"1970-01-01T00:00:00.000000+0000");
    }

    #[test]
    fn addresses_like_suricata() {
        let mut v = Vec::new();
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[10, 0, 0, 201]);
        write_ip(&mut v, false, &a);
        assert_eq!(v, b"10.0.0.201");
        v.clear();
        let a6 = [
            0x20, 0x01, 0x04, 0xf8, 0, 4, 0, 7, 2, 0xe0, 0x81, 0xff, 0xfe, 0x52, 0xff, 0xff,
        ];
        write_ip(&mut v, true, &a6);
        assert_eq!(v, b"2001:04f8:0004:0007:02e0:81ff:fe52:ffff");
        assert_eq!(proto_name(58).to_string(), "IPv6-ICMP");
        assert_eq!(proto_name(253).to_string(), "253");
    }

    #[test]
    fn vlan_ids_like_suricata() {
        let line = |vlan: [u16; 2]| {
            let mut w = EveWriter::new(Box::new(std::io::sink()));
            let t = Tuple {
                addrs: Addrs {
                    v6: false,
                    src: [0; 16],
                    dst: [0; 16],
                },
                sp: 1,
                dp: 2,
                proto: 6,
                ports: true,
                vlan,
            };
            w.begin(0, Some(7), None, "flow", Some(&t), None);
            String::from_utf8(w.line.clone()).unwrap()
        };
        assert!(line([0, 0]).contains(r#""event_type":"flow","src_ip":"#));
        assert!(line([6, 0]).contains(r#""event_type":"flow","vlan":[6],"src_ip":"#));
        assert!(line([6, 120]).contains(r#""vlan":[6,120],"src_ip""#));
        assert_eq!(line([6, 120]).matches("vlan").count(), 1);
    }
}
