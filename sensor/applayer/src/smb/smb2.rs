//! SMB2/3 messages (MS-SMB2 2.2): the commands that carry files.

use super::{u16le, u32le, u64le, utf16, Fid, Pending, Phase, State};
use crate::AppEvent;

const HEADER: usize = 64;
const FLAG_RESPONSE: u32 = 0x1;
const FLAG_ASYNC: u32 = 0x2;

const TREE_CONNECT: u16 = 0x03;
const CREATE: u16 = 0x05;
const CLOSE: u16 = 0x06;
const READ: u16 = 0x08;
const WRITE: u16 = 0x09;

const STATUS_SUCCESS: u32 = 0;
const STATUS_PENDING: u32 = 0x0000_0103;
const STATUS_BUFFER_OVERFLOW: u32 = 0x8000_0005;
const STATUS_END_OF_FILE: u32 = 0xc000_0011;

/// Most messages read from one compound record.
const MAX_COMPOUND: usize = 64;

/// Pending-table key of an SMB2 message id (SMB1 keys have the top bit set).
fn key(msg_id: u64) -> u64 {
    msg_id & !(1 << 63)
}

fn fid_at(b: &[u8], at: usize) -> Option<Fid> {
    let s = b.get(at..at.checked_add(16)?)?;
    let mut f = [0u8; 16];
    f.copy_from_slice(s);
    Some(f)
}

/// One NBSS record starting with an SMB2 header (`rec`: the first bytes of a record of
/// `full` bytes in direction `dir`). Returns where the record's remaining bytes go when
/// `rec` is not all of it and a READ or WRITE's data continues past it.
pub(super) fn record(
    st: &mut State,
    dir: usize,
    rec: &[u8],
    full: usize,
    out: &mut Vec<AppEvent>,
) -> Option<Phase> {
    let mut off = 0usize;
    let mut tail = None;
    for _ in 0..MAX_COMPOUND {
        let Some(msg) = rec.get(off..) else {
            break;
        };
        if msg.get(..4) != Some(b"\xfeSMB") || msg.len() < HEADER {
            break;
        }
        let next = u32le(msg, 20).unwrap_or(0) as usize;
        let t = message(st, dir, rec, off, full, out);
        if tail.is_none() {
            tail = t;
        }
        if next < HEADER || !next.is_multiple_of(8) {
            break;
        }
        off = match off.checked_add(next) {
            Some(o) => o,
            None => break,
        };
    }
    tail
}

/// One SMB2 message at `off` in `rec`.
fn message(
    st: &mut State,
    dir: usize,
    rec: &[u8],
    off: usize,
    full: usize,
    out: &mut Vec<AppEvent>,
) -> Option<Phase> {
    let msg = rec.get(off..)?;
    let status = u32le(msg, 8)?;
    let cmd = u16le(msg, 12)?;
    let flags = u32le(msg, 16)?;
    let next = u32le(msg, 20)? as usize;
    let msg_id = u64le(msg, 24)?;
    let tree = if flags & FLAG_ASYNC == 0 {
        u32le(msg, 36)?
    } else {
        0
    };
    // The message ends at the next one of a compound (bodies read beyond it are not its).
    let msg = if next >= HEADER {
        msg.get(..next).unwrap_or(msg)
    } else {
        msg
    };
    let body = msg.get(HEADER..).unwrap_or_default();
    let response = flags & FLAG_RESPONSE != 0;
    if !response {
        match cmd {
            TREE_CONNECT => {
                let po = usize::from(u16le(body, 4)?);
                let pl = usize::from(u16le(body, 6)?);
                let share = utf16(msg.get(po..po.checked_add(pl)?).unwrap_or_default());
                st.expect(key(msg_id), Pending::TreeConnect { share });
            }
            CREATE => {
                let no = usize::from(u16le(body, 44)?);
                let nl = usize::from(u16le(body, 46)?);
                let name = utf16(msg.get(no..no.checked_add(nl)?).unwrap_or_default());
                st.expect(key(msg_id), Pending::Create { name, tree });
            }
            READ => {
                let offset = u64le(body, 8)?;
                let fid = fid_at(body, 16)?;
                st.expect(key(msg_id), Pending::Read { fid, offset, tree });
            }
            WRITE => {
                let data_off = usize::from(u16le(body, 2)?);
                let len = u32le(body, 4)?;
                let offset = u64le(body, 8)?;
                // A related compound operation names the file all-ones, and the file
                // goes by that id (as in Suricata: its CLOSE, related too, ends it).
                let fid = fid_at(body, 16)?;
                let start = off.checked_add(data_off)?;
                if st.is_file2(&fid, dir, Some(tree), rec.get(start..).unwrap_or_default()) {
                    return st.data(rec, full, start, u64::from(len), fid, dir, offset, out);
                }
            }
            CLOSE => {
                st.files.close(fid_at(body, 8)?, out);
            }
            _ => {}
        }
        return None;
    }
    if status == STATUS_PENDING && flags & FLAG_ASYNC != 0 {
        // An interim response: the final one comes later with the same message id.
        return None;
    }
    if status == STATUS_PENDING {
        return None;
    }
    let pending = st.answer(key(msg_id))?;
    let ok = status == STATUS_SUCCESS;
    match (cmd, pending) {
        (TREE_CONNECT, Pending::TreeConnect { share }) if ok => {
            let share_type = *body.get(2)?;
            st.tree(tree, share, share_type == 0x02);
        }
        (CREATE, Pending::Create { name, tree }) if ok => {
            let fid = fid_at(body, 64)?;
            st.opened(fid, name, tree);
        }
        (READ, Pending::Read { fid, .. }) if status == STATUS_END_OF_FILE => {
            // Reading past the end ends the file being read, as in Suricata.
            st.files.close_dir(fid, dir, out);
        }
        (READ, Pending::Read { fid, offset, .. }) if ok || status == STATUS_BUFFER_OVERFLOW => {
            let data_off = usize::from(*body.get(2)?);
            let len = u32le(body, 4)?;
            let start = off.checked_add(data_off)?;
            // The share is the one the response names (an async response names none).
            let tree = (flags & FLAG_ASYNC == 0).then_some(tree);
            if !st.is_file2(&fid, dir, tree, rec.get(start..).unwrap_or_default()) {
                return None;
            }
            return st.data(rec, full, start, u64::from(len), fid, dir, offset, out);
        }
        _ => {}
    }
    None
}
