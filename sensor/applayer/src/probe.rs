//! Protocol detection from the first bytes of one direction (Suricata's probing parsers:
//! ports are hints, content decides).

use crate::{AppProto, Direction, Probe, Transport};

/// HTTP/1.x request methods recognised at the start of a client stream.
const HTTP_METHODS: &[&[u8]] = &[
    b"GET",
    b"POST",
    b"HEAD",
    b"PUT",
    b"DELETE",
    b"OPTIONS",
    b"CONNECT",
    b"TRACE",
    b"PATCH",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"SEARCH",
    b"REPORT",
    b"CHECKOUT",
    b"MERGE",
    b"NOTIFY",
    b"SUBSCRIBE",
    b"UNSUBSCRIBE",
    b"M-SEARCH",
    b"MKACTIVITY",
    b"VERSION-CONTROL",
    b"BASELINE-CONTROL",
    b"POLL",
    b"BMOVE",
    b"BDELETE",
];

/// FTP client commands that start a control session.
const FTP_COMMANDS: &[&[u8]] = &[
    b"USER ", b"PASS ", b"AUTH ", b"FEAT", b"SYST", b"PORT ", b"PASV", b"EPSV", b"EPRT ", b"TYPE ",
    b"RETR ", b"STOR ", b"LIST", b"NLST", b"CWD ", b"PWD", b"QUIT", b"OPTS ",
];

/// FTP commands that Suricata's pattern-based detection recognises on any port.
const FTP_ANY_PORT_COMMANDS: &[&[u8]] = &[b"USER ", b"PASS ", b"PORT ", b"AUTH TLS", b"AUTH SSL"];

const SMTP_PORTS: &[u16] = &[25, 465, 587, 2525];
const FTP_PORTS: &[u16] = &[21];
const DNS_PORTS: &[u16] = &[53];

/// `Match` if `data` starts with `pat`, `NeedMore` if `data` is a strict prefix of `pat`.
fn prefix(data: &[u8], pat: &[u8], case_insensitive: bool) -> Probe {
    let n = data.len().min(pat.len());
    let (d, p) = (&data[..n], &pat[..n]);
    let same = if case_insensitive {
        d.eq_ignore_ascii_case(p)
    } else {
        d == p
    };
    if !same {
        Probe::NoMatch
    } else if data.len() >= pat.len() {
        Probe::Match(AppProto::Failed)
    } else {
        Probe::NeedMore
    }
}

/// Combine prefix checks against several patterns: any match wins, then any need-more.
fn any_prefix(data: &[u8], pats: &[&[u8]], ci: bool, proto: AppProto) -> Probe {
    let mut need = false;
    for p in pats {
        match prefix(data, p, ci) {
            Probe::Match(_) => return Probe::Match(proto),
            Probe::NeedMore => need = true,
            Probe::NoMatch => {}
        }
    }
    if need {
        Probe::NeedMore
    } else {
        Probe::NoMatch
    }
}

fn probe_http(dir: Direction, data: &[u8]) -> Probe {
    match dir {
        Direction::ToServer => {
            // A method followed by a space (or tab, as lenient servers accept).
            let mut need = false;
            for m in HTTP_METHODS {
                match prefix(data, m, false) {
                    Probe::Match(_) => match data.get(m.len()) {
                        Some(b' ') | Some(b'\t') => return Probe::Match(AppProto::Http),
                        Some(_) => {}
                        None => need = true,
                    },
                    Probe::NeedMore => need = true,
                    Probe::NoMatch => {}
                }
            }
            if need {
                Probe::NeedMore
            } else {
                Probe::NoMatch
            }
        }
        Direction::ToClient => any_prefix(data, &[b"HTTP/"], true, AppProto::Http),
    }
}

fn probe_tls(data: &[u8]) -> Probe {
    match data {
        // TLS record: handshake (22) or alert (21) or change-cipher-spec (20), version 3.x.
        [t, 3, v, ..] if (20..=23).contains(t) && *v <= 4 => Probe::Match(AppProto::Tls),
        [t, 3] | [t] if (20..=23).contains(t) => Probe::NeedMore,
        // SSLv2 ClientHello: 2-byte length with the high bit set, type 1, version 2 or 3.
        [h, _, 1, 0 | 3, 0..=4, ..] if h & 0x80 != 0 => Probe::Match(AppProto::Tls),
        [h, ..] if h & 0x80 != 0 && data.len() < 5 => Probe::NeedMore,
        _ => Probe::NoMatch,
    }
}

/// A plausible DNS header: at most a few questions, sane counts, opcode 0..=6.
fn dns_header_ok(dir: Direction, m: &[u8]) -> Option<bool> {
    let h = m.get(..12)?;
    let flags = u16::from_be_bytes([h[2], h[3]]);
    let qr = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0xf;
    let qd = u16::from_be_bytes([h[4], h[5]]);
    let an = u16::from_be_bytes([h[6], h[7]]);
    let ns = u16::from_be_bytes([h[8], h[9]]);
    let ar = u16::from_be_bytes([h[10], h[11]]);
    let z_ok = opcode <= 6;
    let counts_ok = qd <= 16 && an <= 512 && ns <= 512 && ar <= 512;
    let dir_ok = match dir {
        Direction::ToServer => (!qr && qd >= 1) || opcode == 5,
        Direction::ToClient => qr,
    };
    Some(z_ok && counts_ok && dir_ok)
}

fn probe_dns(t: Transport, dir: Direction, data: &[u8]) -> Probe {
    let msg = match t {
        Transport::Udp => data,
        Transport::Tcp => {
            let Some(l) = data.get(..2) else {
                return Probe::NeedMore;
            };
            let len = usize::from(u16::from_be_bytes([l[0], l[1]]));
            if len < 12 {
                return Probe::NoMatch;
            }
            &data[2..]
        }
    };
    match dns_header_ok(dir, msg) {
        None if t == Transport::Tcp => Probe::NeedMore,
        None => Probe::NoMatch,
        Some(true) => Probe::Match(AppProto::Dns),
        Some(false) => Probe::NoMatch,
    }
}

fn probe_ssh(data: &[u8]) -> Probe {
    match prefix(data, b"SSH-", false) {
        Probe::Match(_) => Probe::Match(AppProto::Ssh),
        p => p,
    }
}

/// Client side of SMTP: a greeting command.
fn probe_smtp_client(data: &[u8]) -> Probe {
    any_prefix(data, &[b"EHLO", b"HELO"], true, AppProto::Smtp)
}

/// Detect the protocol from the first bytes seen in one direction (port numbers are hints,
/// like Suricata's probing parsers; content decides). Pure and cheap.
pub fn probe(t: Transport, dir: Direction, src_port: u16, dst_port: u16, data: &[u8]) -> Probe {
    if data.is_empty() {
        return Probe::NeedMore;
    }
    let server_port = match dir {
        Direction::ToServer => dst_port,
        Direction::ToClient => src_port,
    };
    let on = |ports: &[u16]| ports.contains(&server_port);
    if t == Transport::Udp {
        // DNS over UDP is only looked for on its ports (as Suricata's detection-ports).
        if on(DNS_PORTS) {
            return probe_dns(t, dir, data);
        }
        if on(&[crate::nfs::NFS_PORT]) {
            return crate::nfs::probe(t, dir, data);
        }
        if on(&[crate::krb5::KRB5_PORT]) {
            return crate::krb5::probe(t, data);
        }
        return Probe::NoMatch;
    }
    let mut need = false;
    let checks: [fn(Direction, &[u8]) -> Probe; 5] = [
        crate::http2::probe,
        probe_http,
        |_, d| probe_tls(d),
        |_, d| probe_ssh(d),
        |_, d| crate::smb::probe(d),
    ];
    for check in checks {
        match check(dir, data) {
            Probe::Match(p) => return Probe::Match(p),
            Probe::NeedMore => need = true,
            Probe::NoMatch => {}
        }
    }
    if on(&[crate::nfs::NFS_PORT]) {
        match crate::nfs::probe(t, dir, data) {
            Probe::Match(p) => return Probe::Match(p),
            Probe::NeedMore => need = true,
            Probe::NoMatch => {}
        }
    }
    if on(DNS_PORTS) {
        match probe_dns(t, dir, data) {
            Probe::Match(p) => return Probe::Match(p),
            Probe::NeedMore => need = true,
            Probe::NoMatch => {}
        }
    }
    if on(&[crate::krb5::KRB5_PORT]) {
        match crate::krb5::probe(t, data) {
            Probe::Match(p) => return Probe::Match(p),
            Probe::NeedMore => need = true,
            Probe::NoMatch => {}
        }
    }
    match dir {
        Direction::ToServer => {
            if on(&[crate::pgsql::PGSQL_PORT]) {
                match crate::pgsql::probe(data) {
                    Probe::Match(p) => return Probe::Match(p),
                    Probe::NeedMore => need = true,
                    Probe::NoMatch => {}
                }
            }
            match probe_smtp_client(data) {
                Probe::Match(p) => return Probe::Match(p),
                Probe::NeedMore => need = true,
                Probe::NoMatch => {}
            }
            // Like Suricata's FTP patterns, a few commands mark FTP on any port (POP3 and
            // IRC clients saying "USER " are detected as FTP by Suricata 7 too).
            let cmds = if on(FTP_PORTS) {
                FTP_COMMANDS
            } else {
                FTP_ANY_PORT_COMMANDS
            };
            {
                match any_prefix(data, cmds, true, AppProto::Ftp) {
                    Probe::Match(p) => return Probe::Match(p),
                    Probe::NeedMore => need = true,
                    Probe::NoMatch => {}
                }
            }
        }
        Direction::ToClient => {
            // "220" greetings are shared by FTP and SMTP: the port decides.
            if on(FTP_PORTS) || on(SMTP_PORTS) {
                let proto = if on(FTP_PORTS) {
                    AppProto::Ftp
                } else {
                    AppProto::Smtp
                };
                match any_prefix(data, &[b"220"], false, proto) {
                    Probe::Match(p) => return Probe::Match(p),
                    Probe::NeedMore => need = true,
                    Probe::NoMatch => {}
                }
            }
        }
    }
    if need {
        Probe::NeedMore
    } else {
        Probe::NoMatch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::*;
    use Transport::*;

    #[test]
    fn http_both_directions() {
        assert_eq!(
            probe(Tcp, ToServer, 40000, 8080, b"GET / HTTP/1.1\r\n"),
            Probe::Match(AppProto::Http)
        );
        assert_eq!(probe(Tcp, ToServer, 40000, 80, b"GE"), Probe::NeedMore);
        assert_eq!(probe(Tcp, ToServer, 40000, 80, b"GETX / "), Probe::NoMatch);
        assert_eq!(
            probe(Tcp, ToClient, 80, 40000, b"HTTP/1.1 200 OK\r\n"),
            Probe::Match(AppProto::Http)
        );
    }

    #[test]
    fn tls_record_and_sslv2() {
        // Handshake record, version 3.1, length 0x00c8.
        assert_eq!(
            probe(Tcp, ToServer, 1, 443, &[0x16, 0x03, 0x01, 0x00, 0xc8]),
            Probe::Match(AppProto::Tls)
        );
        assert_eq!(probe(Tcp, ToServer, 1, 443, &[0x16]), Probe::NeedMore);
        // SSLv2 ClientHello: len 0x8031, msg type 1, version 3.1.
        assert_eq!(
            probe(Tcp, ToServer, 1, 443, &[0x80, 0x31, 0x01, 0x03, 0x01]),
            Probe::Match(AppProto::Tls)
        );
        assert_eq!(
            probe(Tcp, ToServer, 1, 443, &[0x17, 0x07, 0x00]),
            Probe::NoMatch
        );
    }

    #[test]
    fn dns_udp_and_tcp() {
        // id 0x1234, flags 0x0100 (RD), 1 question, 0 answers/authority/additional.
        let q = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            probe(Udp, ToServer, 5000, 53, &q),
            Probe::Match(AppProto::Dns)
        );
        assert_eq!(probe(Udp, ToServer, 5000, 9999, &q), Probe::NoMatch);
        assert_eq!(probe(Udp, ToServer, 5000, 53, &q[..5]), Probe::NoMatch);
        let mut t = vec![0, 12];
        t.extend_from_slice(&q);
        assert_eq!(
            probe(Tcp, ToServer, 5000, 53, &t),
            Probe::Match(AppProto::Dns)
        );
        assert_eq!(probe(Tcp, ToServer, 5000, 53, &t[..6]), Probe::NeedMore);
        // A response sent to the server is not DNS.
        let r = [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        assert_eq!(probe(Udp, ToServer, 5000, 53, &r), Probe::NoMatch);
        assert_eq!(
            probe(Udp, ToClient, 53, 5000, &r),
            Probe::Match(AppProto::Dns)
        );
    }

    #[test]
    fn ssh_smtp_ftp() {
        assert_eq!(
            probe(Tcp, ToServer, 1, 22, b"SSH-2.0-OpenSSH_7.4\r\n"),
            Probe::Match(AppProto::Ssh)
        );
        assert_eq!(
            probe(Tcp, ToClient, 2222, 1, b"SSH-2.0-x\r\n"),
            Probe::Match(AppProto::Ssh)
        );
        assert_eq!(
            probe(Tcp, ToServer, 1, 25, b"EHLO mail.example\r\n"),
            Probe::Match(AppProto::Smtp)
        );
        assert_eq!(
            probe(Tcp, ToClient, 25, 1, b"220 mx ESMTP\r\n"),
            Probe::Match(AppProto::Smtp)
        );
        assert_eq!(
            probe(Tcp, ToClient, 21, 1, b"220 FTP ready\r\n"),
            Probe::Match(AppProto::Ftp)
        );
        assert_eq!(
            probe(Tcp, ToServer, 1, 21, b"USER anonymous\r\n"),
            Probe::Match(AppProto::Ftp)
        );
        assert_eq!(
            probe(Tcp, ToClient, 8000, 1, b"220 hello\r\n"),
            Probe::NoMatch
        );
        // "USER " marks FTP on any port, as in Suricata 7 (POP3 on 110 included).
        assert_eq!(
            probe(Tcp, ToServer, 1, 110, b"USER bob\r\n"),
            Probe::Match(AppProto::Ftp)
        );
        assert_eq!(probe(Tcp, ToServer, 1, 110, b"LIST\r\n"), Probe::NoMatch);
        assert_eq!(
            probe(Tcp, ToServer, 1, 1234, b"\x00\x01garbage"),
            Probe::NoMatch
        );
        assert_eq!(probe(Tcp, ToServer, 1, 1234, b""), Probe::NeedMore);
    }

    #[test]
    fn smb_both_directions_any_port() {
        let neg = b"\x00\x00\x00\x66\xfeSMB\x40\x00\x00\x00";
        assert_eq!(
            probe(Tcp, ToServer, 40000, 445, neg),
            Probe::Match(AppProto::Smb)
        );
        assert_eq!(
            probe(Tcp, ToClient, 4455, 40000, b"\x00\x00\x00\x55\xffSMBr"),
            Probe::Match(AppProto::Smb)
        );
        assert_eq!(probe(Tcp, ToServer, 40000, 445, &neg[..5]), Probe::NeedMore);
        assert_eq!(probe(Udp, ToServer, 40000, 445, neg), Probe::NoMatch);
    }

    #[test]
    fn pgsql_ssl_request_on_its_port_only() {
        let req = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
        assert_eq!(
            probe(Tcp, ToServer, 40000, 5432, &req),
            Probe::Match(AppProto::Pgsql)
        );
        assert_eq!(
            probe(Tcp, ToServer, 40000, 5432, &req[..4]),
            Probe::NeedMore
        );
        assert_eq!(probe(Tcp, ToServer, 40000, 6000, &req), Probe::NoMatch);
    }
}
