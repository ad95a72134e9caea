//! SMB over the NetBIOS session service (TCP 139/445): protocol detection, and the
//! files SMB1 and SMB2/3 carry (READ and WRITE data placed at their file offsets).
//!
//! Framing: each SMB message rides in one NBSS record, a 4-byte header (type, then a
//! 24-bit big-endian length; RFC 1002 gives the high 7 bits to flags, direct-hosted SMB
//! on 445 uses all 24) followed by the message, which starts with `\xFFSMB` (SMB1),
//! `\xFESMB` (SMB2/3) or `\xFDSMB` (an SMB3 transform header: encrypted, parsed no
//! further).

use crate::{AppProto, Probe};

/// NBSS record types (RFC 1002, 4.3.1).
pub(crate) const NBSS_MESSAGE: u8 = 0x00;
const NBSS_REQUEST: u8 = 0x81;
const NBSS_POSITIVE: u8 = 0x82;
const NBSS_NEGATIVE: u8 = 0x83;
const NBSS_RETARGET: u8 = 0x84;
const NBSS_KEEPALIVE: u8 = 0x85;

/// The longest NBSS control record (session request, response...) the probe skips to
/// find an SMB message behind it.
const PROBE_SKIP_MAX: usize = 256;

/// The three SMB protocol ids a session message may start with.
const MAGICS: [&[u8; 4]; 3] = [b"\xffSMB", b"\xfeSMB", b"\xfdSMB"];

/// Whether the bytes at `b` (a message body start, maybe short) could be an SMB
/// header: `Some(true)` yes, `Some(false)` no, `None` too short to tell.
fn smb_magic(b: &[u8]) -> Option<bool> {
    let n = b.len().min(4);
    let head = b.get(..n)?;
    let any = MAGICS.iter().any(|m| m.get(..n) == Some(head));
    match (any, n) {
        (false, _) => Some(false),
        (true, 4) => Some(true),
        (true, _) => None,
    }
}

/// Detection: an NBSS session message carrying an SMB header, possibly behind one
/// short NBSS control record (a session request or its response on port 139, a
/// keep-alive). Either direction, any port.
pub(crate) fn probe(data: &[u8]) -> Probe {
    let Some(&t) = data.first() else {
        return Probe::NeedMore;
    };
    match t {
        NBSS_MESSAGE => match smb_magic(data.get(4..).unwrap_or_default()) {
            Some(true) => Probe::Match(AppProto::Smb),
            Some(false) => Probe::NoMatch,
            None => Probe::NeedMore,
        },
        NBSS_REQUEST | NBSS_POSITIVE | NBSS_NEGATIVE | NBSS_RETARGET | NBSS_KEEPALIVE => {
            let Some(h) = data.get(..4) else {
                return Probe::NeedMore;
            };
            if h[1] & 0xfe != 0 {
                return Probe::NoMatch;
            }
            let len = (usize::from(h[1] & 1) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
            if len > PROBE_SKIP_MAX {
                return Probe::NoMatch;
            }
            let next = data.get(4 + len..).unwrap_or_default();
            match next.first() {
                None => Probe::NeedMore,
                Some(&NBSS_MESSAGE) => match smb_magic(next.get(4..).unwrap_or_default()) {
                    Some(true) => Probe::Match(AppProto::Smb),
                    Some(false) => Probe::NoMatch,
                    None => Probe::NeedMore,
                },
                // A keep-alive or a second control record: look no further.
                Some(_) => Probe::NoMatch,
            }
        }
        _ => Probe::NoMatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_smb1_smb2_transform_and_session_request() {
        let smb2 = b"\x00\x00\x00\x44\xfeSMB\x40\x00";
        assert_eq!(probe(smb2), Probe::Match(AppProto::Smb));
        assert_eq!(
            probe(b"\x00\x00\x00\x55\xffSMBr"),
            Probe::Match(AppProto::Smb)
        );
        assert_eq!(
            probe(b"\x00\x00\x01\x00\xfdSMB"),
            Probe::Match(AppProto::Smb)
        );
        for n in 1..8 {
            assert_eq!(probe(&smb2[..n]), Probe::NeedMore, "{n}");
        }
        assert_eq!(probe(b"\x00\x00\x00\x44\xfeSMX"), Probe::NoMatch);
        assert_eq!(probe(b"\x00\x00\x00\x44GET "), Probe::NoMatch);
        assert_eq!(probe(b"\x17\x03\x03\x00"), Probe::NoMatch);
        // A session request (68 bytes of names) before the negotiate request (port 139).
        let mut s = vec![0x81, 0x00, 0x00, 0x44];
        s.extend_from_slice(&[0x20; 0x44]);
        assert_eq!(probe(&s), Probe::NeedMore);
        s.extend_from_slice(b"\x00\x00\x00\x55\xffSMBr");
        assert_eq!(probe(&s), Probe::Match(AppProto::Smb));
        // The positive response, then the negotiate response.
        assert_eq!(
            probe(b"\x82\x00\x00\x00\x00\x00\x00\x55\xffSMBr"),
            Probe::Match(AppProto::Smb)
        );
        assert_eq!(probe(b"\x82\x00\x00\x00\x85\x00\x00\x00"), Probe::NoMatch);
        // A control record too long to be NBSS, or flag bits set.
        assert_eq!(probe(b"\x81\x00\x10\x00"), Probe::NoMatch);
        assert_eq!(probe(b"\x81\x02\x00\x00"), Probe::NoMatch);
        assert_eq!(probe(b""), Probe::NeedMore);
    }
}
