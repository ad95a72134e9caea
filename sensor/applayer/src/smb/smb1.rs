//! SMB1 messages (MS-CIFS 2.2): the commands that carry files, with AndX chains.

use super::{u16le, u32le, utf16, Fid, Pending, Phase, State};
use crate::AppEvent;

const HEADER: usize = 32;
const FLAG_REPLY: u8 = 0x80;
const FLAGS2_UNICODE: u16 = 0x8000;

const CLOSE: u8 = 0x04;
const READ_ANDX: u8 = 0x2e;
const WRITE_ANDX: u8 = 0x2f;
const TREE_CONNECT_ANDX: u8 = 0x75;
const NT_CREATE_ANDX: u8 = 0xa2;
/// Commands whose parameter block starts with an AndX header (chainable).
const ANDX: &[u8] = &[
    0x24,
    0x2d,
    READ_ANDX,
    WRITE_ANDX,
    0x73,
    0x74,
    TREE_CONNECT_ANDX,
    NT_CREATE_ANDX,
];
const NO_ANDX: u8 = 0xff;

/// Most commands read from one AndX chain.
const MAX_CHAIN: usize = 16;

/// An SMB1 FID as a file id (a flow speaks one dialect, so it never meets SMB2 ids).
fn fid(v: u16) -> Fid {
    let mut f = [0u8; 16];
    f[..2].copy_from_slice(&v.to_le_bytes());
    f[15] = 1;
    f
}

/// The header fields that tie a response to its request.
struct Hdr {
    tid: u16,
    pid: u16,
    uid: u16,
    mid: u16,
    unicode: bool,
}

fn key(h: &Hdr, cmd: u8) -> u64 {
    (1 << 63)
        | (u64::from(cmd) << 48)
        | (u64::from(h.uid) << 32)
        | (u64::from(h.pid) << 16)
        | u64::from(h.mid)
}

/// One NBSS record starting with an SMB1 header; see [`super::smb2::record`].
pub(super) fn record(
    st: &mut State,
    dir: usize,
    rec: &[u8],
    full: usize,
    out: &mut Vec<AppEvent>,
) -> Option<Phase> {
    if rec.len() < HEADER + 1 {
        return None;
    }
    let mut cmd = *rec.get(4)?;
    let status = u32le(rec, 5)?;
    let reply = rec.get(9)? & FLAG_REPLY != 0;
    let h = Hdr {
        unicode: u16le(rec, 10)? & FLAGS2_UNICODE != 0,
        tid: u16le(rec, 24)?,
        pid: u16le(rec, 26)?,
        uid: u16le(rec, 28)?,
        mid: u16le(rec, 30)?,
    };
    let mut at = HEADER;
    let mut tail = None;
    for _ in 0..MAX_CHAIN {
        let wc = usize::from(*rec.get(at)?);
        let words = rec.get(at + 1..at + 1 + 2 * wc)?;
        let bytes_at = at + 1 + 2 * wc + 2;
        let t = if reply {
            response(st, dir, rec, full, &h, cmd, status, words, bytes_at, out)
        } else {
            request(st, dir, rec, full, &h, cmd, words, bytes_at, out)
        };
        if tail.is_none() {
            tail = t;
        }
        if !ANDX.contains(&cmd) || wc < 2 {
            break;
        }
        let next = *words.first()?;
        let next_at = usize::from(u16le(words, 2)?);
        if next == NO_ANDX || next_at <= at {
            break;
        }
        cmd = next;
        at = next_at;
    }
    tail
}

/// A string in the byte block at absolute offset `at`: UTF-16LE (aligned to 2 from the
/// header start) when the message says so, else bytes up to a NUL. At most `max` bytes.
fn string(rec: &[u8], at: usize, unicode: bool, max: usize) -> Vec<u8> {
    if unicode {
        let at = at + (at & 1);
        let b = rec.get(at..).unwrap_or_default();
        utf16(b.get(..max.min(b.len())).unwrap_or_default())
    } else {
        let b = rec.get(at..).unwrap_or_default();
        let b = b.get(..max.min(b.len())).unwrap_or_default();
        b.split(|&c| c == 0).next().unwrap_or_default().to_vec()
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "the record and the command's place in it"
)]
fn request(
    st: &mut State,
    dir: usize,
    rec: &[u8],
    full: usize,
    h: &Hdr,
    cmd: u8,
    words: &[u8],
    bytes_at: usize,
    out: &mut Vec<AppEvent>,
) -> Option<Phase> {
    match cmd {
        TREE_CONNECT_ANDX => {
            let pw = usize::from(u16le(words, 6)?);
            let share = string(rec, bytes_at + pw, h.unicode, 1024);
            st.expect(key(h, cmd), Pending::TreeConnect { share });
        }
        NT_CREATE_ANDX => {
            let nl = usize::from(u16le(words, 5)?);
            let name = string(rec, bytes_at, h.unicode, nl);
            let tree = u32::from(h.tid);
            st.expect(key(h, cmd), Pending::Create { name, tree });
        }
        READ_ANDX => {
            let f = fid(u16le(words, 4)?);
            let lo = u64::from(u32le(words, 6)?);
            let hi = if words.len() >= 24 {
                u64::from(u32le(words, 20)?)
            } else {
                0
            };
            let tree = u32::from(h.tid);
            st.expect(
                key(h, cmd),
                Pending::Read {
                    fid: f,
                    offset: hi << 32 | lo,
                    tree,
                },
            );
        }
        WRITE_ANDX => {
            let f = fid(u16le(words, 4)?);
            let lo = u64::from(u32le(words, 6)?);
            let len_hi = u64::from(u16le(words, 18)?);
            let len = u64::from(u16le(words, 20)?) | len_hi << 16;
            let data_off = usize::from(u16le(words, 22)?);
            let hi = if words.len() >= 28 {
                u64::from(u32le(words, 24)?)
            } else {
                0
            };
            if st.is_file(&f, u32::from(h.tid)) {
                return st.data(rec, full, data_off, len, f, dir, hi << 32 | lo, out);
            }
        }
        CLOSE => {
            st.files.close(fid(u16le(words, 0)?), out);
        }
        _ => {}
    }
    None
}

#[allow(
    clippy::too_many_arguments,
    reason = "the record and the command's place in it"
)]
fn response(
    st: &mut State,
    dir: usize,
    rec: &[u8],
    full: usize,
    h: &Hdr,
    cmd: u8,
    status: u32,
    words: &[u8],
    bytes_at: usize,
    out: &mut Vec<AppEvent>,
) -> Option<Phase> {
    let pending = st.answer(key(h, cmd))?;
    if status != 0 {
        return None;
    }
    match (cmd, pending) {
        (TREE_CONNECT_ANDX, Pending::TreeConnect { share }) => {
            // The service string follows the parameter words: "IPC" for a named-pipe share.
            let service = rec.get(bytes_at..).unwrap_or_default();
            st.tree(u32::from(h.tid), share, service.starts_with(b"IPC"));
        }
        (NT_CREATE_ANDX, Pending::Create { name, tree }) => {
            st.opened(fid(u16le(words, 5)?), name, tree);
        }
        (READ_ANDX, Pending::Read { fid, offset, tree }) => {
            if !st.is_file(&fid, tree) {
                return None;
            }
            let len_lo = u64::from(u16le(words, 10)?);
            let data_off = usize::from(u16le(words, 12)?);
            let len_hi = u64::from(u16le(words, 14).unwrap_or(0));
            let len = len_lo | len_hi << 16;
            return st.data(rec, full, data_off, len, fid, dir, offset, out);
        }
        _ => {}
    }
    None
}
