//! SMB over the NetBIOS session service (TCP 139/445): protocol detection, and the
//! files SMB1 and SMB2/3 carry (READ and WRITE data placed at their file offsets).
//!
//! Framing: each SMB message rides in one NBSS record, a 4-byte header (type, then a
//! 24-bit big-endian length; RFC 1002 gives the high 7 bits to flags, direct-hosted SMB
//! on 445 uses all 24) followed by the message, which starts with `\xFFSMB` (SMB1),
//! `\xFESMB` (SMB2/3) or `\xFDSMB` (an SMB3 transform header: encrypted, parsed no
//! further).
//!
//! Parsing keeps, per direction, the NBSS record being read (whole when it fits
//! `AppConfig::max_buffer`; otherwise its first [`HEAD_PREFIX`] bytes, enough for the
//! headers of a READ response or WRITE request, whose data then streams into the file
//! without being buffered). Requests wait for their responses in a table keyed by
//! message id (bounded, oldest dropped first): a CREATE's file name meets the response's
//! file id, a READ's file id and offset meet the response's data. CLOSE ends a file.
//! Gaps are accepted like Suricata's SMB parser does: a gap inside a record's data
//! leaves a hole in the file, anywhere else the parser looks for the next record start.

pub(crate) mod files;
mod smb1;
mod smb2;

use std::collections::{HashMap, VecDeque};

use files::{Fid, FidInfo, Files};

use crate::{AppConfig, AppEvent, AppProto, Direction, Parser, Probe};

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

/// Bytes of a record bigger than the buffer that are read before its data streams.
const HEAD_PREFIX: usize = 4096;

fn u16le(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

fn u32le(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64le(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

/// UTF-16LE to UTF-8 bytes (unpaired surrogates become U+FFFD), up to a NUL.
fn utf16(b: &[u8]) -> Vec<u8> {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units).into_bytes()
}

/// Where the rest of a record that did not fit the buffer goes.
#[derive(Clone, Copy, Debug)]
struct Sink {
    fid: Fid,
    dir: usize,
    /// File offset of the next byte.
    off: u64,
}

#[derive(Debug)]
enum Phase {
    /// At a record start (or inside its header, in `buf`).
    Head,
    /// The rest of a record: `pre` bytes skipped, `data` bytes to `sink`, `post` skipped.
    Tail {
        pre: u64,
        data: u64,
        sink: Option<Sink>,
        post: u64,
    },
    /// After a gap: looking for the next record start.
    Resync,
}

/// A request waiting for its response.
#[derive(Clone, Debug)]
enum Pending {
    Create { name: Vec<u8>, tree: u32 },
    Read { fid: Fid, offset: u64, tree: u32 },
    TreeConnect { share: Vec<u8> },
}

/// The name a new file of `fid` travelling in `dir` gets: its CREATE's, else what
/// Suricata writes for an unknown one ("<unknown>" for reads, nothing for writes).
fn name_for<'a>(fids: &'a HashMap<Fid, FidInfo>, fid: &Fid, dir: usize) -> &'a [u8] {
    match fids.get(fid) {
        Some(i) => &i.name,
        None if dir == 1 => b"<unknown>",
        None => b"",
    }
}

/// Per-flow SMB state shared by the SMB1 and SMB2 readers.
pub(crate) struct State {
    pending: HashMap<u64, Pending>,
    pending_order: VecDeque<u64>,
    max_pending: usize,
    fids: HashMap<Fid, FidInfo>,
    fid_order: VecDeque<Fid>,
    /// Tree id to (share, is a named-pipe share).
    trees: HashMap<u32, (Vec<u8>, bool)>,
    files: Files,
}

impl State {
    fn new(cfg: &AppConfig) -> Self {
        State {
            pending: HashMap::new(),
            pending_order: VecDeque::new(),
            max_pending: cfg.smb_max_pending.max(1),
            fids: HashMap::new(),
            fid_order: VecDeque::new(),
            trees: HashMap::new(),
            files: Files::new(cfg.smb_max_files, cfg.smb_max_ooo, cfg.file_data_limit),
        }
    }

    fn expect(&mut self, key: u64, p: Pending) {
        self.pending.insert(key, p);
        self.pending_order.push_back(key);
        while self.pending_order.len() > self.max_pending {
            if let Some(k) = self.pending_order.pop_front() {
                self.pending.remove(&k);
            }
        }
    }

    fn answer(&mut self, key: u64) -> Option<Pending> {
        self.pending.remove(&key)
    }

    fn opened(&mut self, fid: Fid, name: Vec<u8>, tree: u32) {
        let pipe = self.trees.get(&tree).is_some_and(|t| t.1);
        if self.fids.insert(fid, FidInfo { name, pipe }).is_none() {
            self.fid_order.push_back(fid);
            while self.fid_order.len() > self.max_pending {
                if let Some(k) = self.fid_order.pop_front() {
                    self.fids.remove(&k);
                }
            }
        }
    }

    fn tree(&mut self, tree: u32, share: Vec<u8>, pipe: bool) {
        if self.trees.len() >= self.max_pending && !self.trees.contains_key(&tree) {
            self.trees.clear();
        }
        self.trees.insert(tree, (share, pipe));
    }

    /// Whether SMB1 data of `fid` on `tree` is a file: not on a named-pipe share.
    fn is_file(&self, fid: &Fid, tree: u32) -> bool {
        match self.fids.get(fid) {
            Some(i) => !i.pipe,
            None => !self.trees.get(&tree).is_some_and(|t| t.1),
        }
    }

    /// Whether SMB2 data of `fid` in direction `dir` on `tree` (`None` in an async
    /// response, which names no tree) is file data, as Suricata 7 decides: a file
    /// already open takes it; else not on a named-pipe share; on a share not seen
    /// connected, unless the data looks like DCERPC (the tree is then taken for a pipe).
    fn is_file2(&mut self, fid: &Fid, dir: usize, tree: Option<u32>, data: &[u8]) -> bool {
        if self.files.is_open(fid, dir) {
            return true;
        }
        let t = tree.unwrap_or(0);
        match self.trees.get(&t) {
            Some(t) => !t.1,
            None if dcerpc_probe(data) => {
                self.tree(t, Vec::new(), true);
                false
            }
            None => true,
        }
    }

    /// File data: `len` bytes at `start` of record `rec` (whose full length is
    /// `full`), file offset `off`. Writes what `rec` holds; returns where the rest goes.
    #[allow(
        clippy::too_many_arguments,
        reason = "the record, the data's place in it and in the file"
    )]
    fn data(
        &mut self,
        rec: &[u8],
        full: usize,
        start: usize,
        len: u64,
        fid: Fid,
        dir: usize,
        off: u64,
        out: &mut Vec<AppEvent>,
    ) -> Option<Phase> {
        let end = (start as u64).saturating_add(len).min(full as u64);
        let have_end = usize::try_from(end).unwrap_or(usize::MAX).min(rec.len());
        if let Some(b) = rec.get(start..have_end) {
            let name = name_for(&self.fids, &fid, dir);
            self.files.write(fid, dir, name, off, b, out);
        }
        if rec.len() >= full || end <= rec.len() as u64 {
            return None;
        }
        let from = (start as u64).max(rec.len() as u64);
        Some(Phase::Tail {
            pre: (start as u64).saturating_sub(rec.len() as u64),
            data: end - from,
            sink: Some(Sink {
                fid,
                dir,
                off: off.saturating_add(from - start as u64),
            }),
            post: full as u64 - end,
        })
    }
}

struct Reader {
    buf: Vec<u8>,
    phase: Phase,
}

/// The SMB parser of one flow.
pub(crate) struct SmbParser {
    rd: [Reader; 2],
    st: State,
    max_buffer: usize,
}

impl SmbParser {
    pub(crate) fn new(cfg: &AppConfig) -> Self {
        let r = || Reader {
            buf: Vec::new(),
            phase: Phase::Head,
        };
        SmbParser {
            rd: [r(), r()],
            st: State::new(cfg),
            max_buffer: cfg.max_buffer.max(HEAD_PREFIX),
        }
    }

    /// One record (or its first bytes, `rec`) of `full` bytes in `dir`.
    fn record(&mut self, dir: usize, rec: &[u8], full: usize, out: &mut Vec<AppEvent>) -> Phase {
        let tail = match rec.get(..4) {
            Some(b"\xfeSMB") => smb2::record(&mut self.st, dir, rec, full, out),
            Some(b"\xffSMB") => smb1::record(&mut self.st, dir, rec, full, out),
            // Encrypted (transform header) or compressed SMB3: nothing to read.
            Some(b"\xfdSMB") | Some(b"\xfcSMB") => None,
            _ => {
                out.push(AppEvent::Anomaly {
                    proto: AppProto::Smb,
                    event: "SMB_MALFORMED_DATA",
                });
                None
            }
        };
        tail.unwrap_or(Phase::Tail {
            pre: (full - rec.len()) as u64,
            data: 0,
            sink: None,
            post: 0,
        })
    }
}

/// Whether `b` starts like a DCERPC connection-oriented PDU (version 5.0 or 5.1, a
/// known packet type, a sane fragment length).
fn dcerpc_probe(b: &[u8]) -> bool {
    match b.get(..10) {
        Some(h) => {
            let frag = if h[4] & 0x10 != 0 {
                u16::from_le_bytes([h[8], h[9]])
            } else {
                u16::from_be_bytes([h[8], h[9]])
            };
            h[0] == 5 && h[1] <= 1 && h[2] <= 20 && frag >= 16
        }
        None => false,
    }
}

/// The first record start in `b`: an NBSS session message header followed by an SMB
/// protocol id.
fn find_sync(b: &[u8]) -> Option<usize> {
    b.windows(8)
        .position(|w| w[0] == NBSS_MESSAGE && MAGICS.iter().any(|m| w[4..8] == m[..]))
}

impl Parser for SmbParser {
    fn proto(&self) -> AppProto {
        AppProto::Smb
    }

    fn parse(&mut self, dir: Direction, data: &[u8], _ts: i64, out: &mut Vec<AppEvent>) {
        let d = dir.idx();
        let mut input = data;
        // Each pass consumes input or completes a record: bounded by the input length.
        loop {
            let rd = &mut self.rd[d];
            match &mut rd.phase {
                Phase::Tail {
                    pre,
                    data,
                    sink,
                    post,
                } => {
                    let n = (*pre).min(input.len() as u64);
                    input = input.get(n as usize..).unwrap_or_default();
                    *pre -= n;
                    let n = (*data).min(input.len() as u64) as usize;
                    if n > 0 {
                        if let Some(s) = sink.as_mut() {
                            let name = name_for(&self.st.fids, &s.fid, s.dir);
                            let b = input.get(..n).unwrap_or_default();
                            self.st.files.write(s.fid, s.dir, name, s.off, b, out);
                            s.off = s.off.saturating_add(n as u64);
                        }
                        input = input.get(n..).unwrap_or_default();
                        *data -= n as u64;
                    }
                    let n = (*post).min(input.len() as u64);
                    input = input.get(n as usize..).unwrap_or_default();
                    *post -= n;
                    if *pre == 0 && *data == 0 && *post == 0 {
                        rd.phase = Phase::Head;
                    } else {
                        return;
                    }
                }
                Phase::Resync => {
                    // Held bytes (at most 7) from the last chunk, then this one.
                    let held = rd.buf.len();
                    let mut joined = std::mem::take(&mut rd.buf);
                    joined.extend_from_slice(input.get(..input.len().min(7)).unwrap_or_default());
                    match find_sync(&joined).filter(|&p| p < held) {
                        Some(p) => {
                            // The record starts in the held bytes: they begin its header.
                            joined.truncate(held);
                            joined.drain(..p);
                            rd.buf = joined;
                            rd.phase = Phase::Head;
                        }
                        None => match find_sync(input) {
                            Some(q) => {
                                input = input.get(q..).unwrap_or_default();
                                rd.phase = Phase::Head;
                            }
                            None => {
                                joined.truncate(held);
                                joined.extend_from_slice(input);
                                let cut = joined.len().saturating_sub(7);
                                joined.drain(..cut);
                                rd.buf = joined;
                                return;
                            }
                        },
                    }
                }
                Phase::Head => {
                    if input.is_empty() {
                        return;
                    }
                    // The NBSS header.
                    if rd.buf.len() < 4 {
                        let n = (4 - rd.buf.len()).min(input.len());
                        rd.buf.extend_from_slice(&input[..n]);
                        input = &input[n..];
                        if rd.buf.len() < 4 {
                            return;
                        }
                    }
                    let h = [rd.buf[0], rd.buf[1], rd.buf[2], rd.buf[3]];
                    let len =
                        (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
                    match h[0] {
                        NBSS_MESSAGE if len >= rd.buf.len() - 4 => {}
                        NBSS_REQUEST | NBSS_POSITIVE | NBSS_NEGATIVE | NBSS_RETARGET
                        | NBSS_KEEPALIVE => {
                            rd.buf.clear();
                            rd.phase = Phase::Tail {
                                pre: (len & 0x1_ffff) as u64,
                                data: 0,
                                sink: None,
                                post: 0,
                            };
                            continue;
                        }
                        _ => {
                            out.push(AppEvent::Anomaly {
                                proto: AppProto::Smb,
                                event: "SMB_MALFORMED_DATA",
                            });
                            // Not a record start, or a message shorter than the bytes
                            // already taken for it (after a resync): look for one from the
                            // next byte on.
                            rd.buf.drain(..1);
                            rd.phase = Phase::Resync;
                            continue;
                        }
                    }
                    let want = if len <= self.max_buffer {
                        len
                    } else {
                        HEAD_PREFIX
                    };
                    let have = rd.buf.len() - 4;
                    if have < want {
                        let n = (want - have).min(input.len());
                        rd.buf.extend_from_slice(&input[..n]);
                        input = &input[n..];
                        if rd.buf.len() - 4 < want {
                            return;
                        }
                    }
                    let held = std::mem::take(&mut rd.buf);
                    let phase = self.record(d, held.get(4..).unwrap_or_default(), len, out);
                    let rd = &mut self.rd[d];
                    rd.buf = held;
                    rd.buf.clear();
                    rd.phase = phase;
                }
            }
        }
    }

    fn gap(&mut self, dir: Direction, len: u64, _out: &mut Vec<AppEvent>) {
        let d = dir.idx();
        let rd = &mut self.rd[d];
        if let Phase::Tail {
            pre,
            data,
            sink,
            post,
        } = &mut rd.phase
        {
            if len <= *pre + *data + *post {
                let mut left = len;
                let n = left.min(*pre);
                *pre -= n;
                left -= n;
                let n = left.min(*data);
                if n > 0 {
                    if let Some(s) = sink.as_mut() {
                        self.st.files.gap(s.fid, s.dir);
                        s.off = s.off.saturating_add(n);
                    }
                    *data -= n;
                    left -= n;
                }
                *post -= left.min(*post);
                if *pre == 0 && *data == 0 && *post == 0 {
                    rd.phase = Phase::Head;
                }
                return;
            }
            if let Some(s) = sink {
                self.st.files.gap(s.fid, s.dir);
            }
        }
        rd.buf.clear();
        rd.phase = Phase::Resync;
    }

    fn close(&mut self, _ts: i64, out: &mut Vec<AppEvent>) {
        self.st.files.close_all(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileRecord, FileState};
    use sha2::{Digest, Sha256};

    const CLIENT: Direction = Direction::ToServer;
    const SERVER: Direction = Direction::ToClient;

    fn utf16le(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
    }

    fn nbss(msg: &[u8]) -> Vec<u8> {
        let n = msg.len() as u32;
        let mut v = vec![0, (n >> 16) as u8, (n >> 8) as u8, n as u8];
        v.extend_from_slice(msg);
        v
    }

    /// An SMB2 header followed by `body`; `next` is the NextCommand offset.
    fn smb2(cmd: u16, status: u32, flags: u32, id: u64, tree: u32, body: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\xfeSMB");
        h[4] = 64;
        h[8..12].copy_from_slice(&status.to_le_bytes());
        h[12..14].copy_from_slice(&cmd.to_le_bytes());
        h[16..20].copy_from_slice(&flags.to_le_bytes());
        h[24..32].copy_from_slice(&id.to_le_bytes());
        if flags & 2 == 0 {
            h[36..40].copy_from_slice(&tree.to_le_bytes());
        }
        h.extend_from_slice(body);
        h
    }

    fn fid(n: u8) -> [u8; 16] {
        [n, 0, 0, 0, 7, 0, 0, 0, n, 0, 0, 0, 7, 0, 0, 0]
    }

    fn tree_connect(id: u64, tree: u32, path: &str, share_type: u8) -> (Vec<u8>, Vec<u8>) {
        let p = utf16le(path);
        let mut b = vec![9, 0, 0, 0];
        b.extend_from_slice(&72u16.to_le_bytes());
        b.extend_from_slice(&(p.len() as u16).to_le_bytes());
        b.extend_from_slice(&p);
        let req = smb2(3, 0, 0, id, 0, &b);
        let resp = smb2(3, 0, 1, id, tree, &[16, 0, share_type, 0, 0, 0, 0, 0]);
        (req, resp)
    }

    fn create(id: u64, tree: u32, name: &str, f: [u8; 16]) -> (Vec<u8>, Vec<u8>) {
        let n = utf16le(name);
        let mut b = vec![0u8; 56];
        b[0] = 57;
        b[44..46].copy_from_slice(&120u16.to_le_bytes());
        b[46..48].copy_from_slice(&(n.len() as u16).to_le_bytes());
        b.extend_from_slice(&n);
        let req = smb2(5, 0, 0, id, tree, &b);
        let mut r = vec![0u8; 88];
        r[0] = 89;
        r[64..80].copy_from_slice(&f);
        (req, smb2(5, 0, 1, id, tree, &r))
    }

    fn read_req(id: u64, tree: u32, f: [u8; 16], offset: u64, len: u32) -> Vec<u8> {
        let mut b = vec![0u8; 48];
        b[0] = 49;
        b[4..8].copy_from_slice(&len.to_le_bytes());
        b[8..16].copy_from_slice(&offset.to_le_bytes());
        b[16..32].copy_from_slice(&f);
        smb2(8, 0, 0, id, tree, &b)
    }

    fn read_resp(id: u64, tree: u32, flags: u32, data: &[u8]) -> Vec<u8> {
        let mut b = vec![17, 0, 80, 0];
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(data);
        smb2(8, 0, 1 | flags, id, tree, &b)
    }

    fn write_req(id: u64, tree: u32, f: [u8; 16], offset: u64, data: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 48];
        b[0] = 49;
        b[2..4].copy_from_slice(&112u16.to_le_bytes());
        b[4..8].copy_from_slice(&(data.len() as u32).to_le_bytes());
        b[8..16].copy_from_slice(&offset.to_le_bytes());
        b[16..32].copy_from_slice(&f);
        b.extend_from_slice(data);
        smb2(9, 0, 0, id, tree, &b)
    }

    fn close_req(id: u64, tree: u32, f: [u8; 16]) -> Vec<u8> {
        let mut b = vec![24, 0, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&f);
        smb2(6, 0, 0, id, tree, &b)
    }

    fn sha256(b: &[u8]) -> String {
        crate::util::hex(&Sha256::digest(b))
    }

    fn files(out: &[AppEvent]) -> Vec<&FileRecord> {
        out.iter()
            .filter_map(|e| match e {
                AppEvent::File(f) => Some(f),
                _ => None,
            })
            .collect()
    }

    /// Feeds `(direction, record bytes)` to a new parser, each chunk split every `split`
    /// bytes, and closes it.
    fn run(cfg: &AppConfig, msgs: &[(Direction, Vec<u8>)], split: usize) -> Vec<AppEvent> {
        let mut p = SmbParser::new(cfg);
        let mut out = Vec::new();
        for (d, m) in msgs {
            for c in m.chunks(split.max(1)) {
                p.parse(*d, c, 0, &mut out);
            }
        }
        p.close(0, &mut out);
        out
    }

    /// A session on a disk share: a file read out of order (with an interim async
    /// response), a file written, and a named pipe (no file).
    fn session() -> Vec<(Direction, Vec<u8>)> {
        let (tc, tcr) = tree_connect(1, 5, "\\\\srv\\share", 1);
        let (ipc, ipcr) = tree_connect(2, 6, "\\\\srv\\IPC$", 2);
        let (c1, c1r) = create(3, 5, "dir\\a.txt", fid(1));
        let (c2, c2r) = create(4, 5, "b.bin", fid(2));
        let (c3, c3r) = create(5, 6, "lsarpc", fid(3));
        let pending = smb2(8, 0x103, 3, 7, 0, &[9, 0, 0, 0, 0, 0, 0, 0, 0]);
        vec![
            (CLIENT, nbss(&tc)),
            (SERVER, nbss(&tcr)),
            (CLIENT, nbss(&ipc)),
            (SERVER, nbss(&ipcr)),
            (CLIENT, nbss(&c1)),
            (SERVER, nbss(&c1r)),
            (CLIENT, nbss(&c2)),
            (SERVER, nbss(&c2r)),
            (CLIENT, nbss(&c3)),
            (SERVER, nbss(&c3r)),
            // Two reads; the second is answered first, the first after an interim response.
            (CLIENT, nbss(&read_req(6, 5, fid(1), 5, 5))),
            (CLIENT, nbss(&read_req(7, 5, fid(1), 0, 5))),
            (SERVER, nbss(&read_resp(6, 5, 0, b"world"))),
            (SERVER, nbss(&pending)),
            (SERVER, nbss(&read_resp(7, 0, 2, b"hello"))),
            (CLIENT, nbss(&write_req(8, 5, fid(2), 0, b"xyz"))),
            (
                CLIENT,
                nbss(&write_req(9, 6, fid(3), 0, b"\x05\x00\x0b\x03")),
            ),
            (CLIENT, nbss(&close_req(10, 5, fid(1)))),
            (CLIENT, nbss(&close_req(11, 5, fid(2)))),
        ]
    }

    #[test]
    fn smb2_reads_and_writes_become_files_any_split() {
        let cfg = AppConfig::default();
        for split in [1, 3, 7, 64, 100_000] {
            let out = run(&cfg, &session(), split);
            let f = files(&out);
            assert_eq!(f.len(), 2, "split {split}: {f:?}");
            assert_eq!(f[0].filename, b"dir\\a.txt");
            assert_eq!(f[0].direction, Direction::ToClient);
            assert_eq!((f[0].size, f[0].state), (10, FileState::Closed));
            assert_eq!(f[0].sha256, sha256(b"helloworld"));
            assert_eq!(f[0].proto, AppProto::Smb);
            assert_eq!(f[1].filename, b"b.bin");
            assert_eq!(f[1].direction, Direction::ToServer);
            assert_eq!((f[1].size, f[1].state), (3, FileState::Closed));
        }
        // All records in one chunk (several NBSS records per segment).
        let all: Vec<u8> = session()
            .into_iter()
            .filter(|(d, _)| *d == CLIENT)
            .flat_map(|(_, m)| m)
            .collect();
        let mut p = SmbParser::new(&cfg);
        let mut out = Vec::new();
        p.parse(CLIENT, &all, 0, &mut out);
        assert_eq!(
            p.st.pending.len(),
            7,
            "2 tree connects, 3 creates, 2 reads wait"
        );
    }

    #[test]
    fn compound_create_read_close_and_truncation_at_flow_end() {
        let cfg = AppConfig::default();
        let (mut c, mut cr) = create(1, 5, "c.txt", fid(9));
        let mut rd = read_req(2, 5, [0xff; 16], 0, 4);
        rd[16..20].copy_from_slice(&4u32.to_le_bytes()); // related
        let mut rr = read_resp(2, 5, 4, b"abcd");
        // Chain them: each message padded to 8 bytes, NextCommand set.
        let chain = |parts: Vec<&mut Vec<u8>>| {
            let mut v = Vec::new();
            let n = parts.len();
            for (i, p) in parts.into_iter().enumerate() {
                while p.len() % 8 != 0 {
                    p.push(0);
                }
                if i + 1 < n {
                    let l = p.len() as u32;
                    p[20..24].copy_from_slice(&l.to_le_bytes());
                }
                v.extend_from_slice(p);
            }
            v
        };
        let req = chain(vec![&mut c, &mut rd]);
        let resp = chain(vec![&mut cr, &mut rr]);
        // The next read of the same (related, all-ones) id hits the end of the file.
        let more = read_req(3, 5, [0xff; 16], 4, 4);
        let eof = smb2(8, 0xc000_0011, 1, 3, 5, &[9, 0, 0, 0, 0, 0, 0, 0, 0]);
        let msgs = [
            (CLIENT, nbss(&req)),
            (SERVER, nbss(&resp)),
            (CLIENT, nbss(&more)),
            (SERVER, nbss(&eof)),
        ];
        let out = run(&cfg, &msgs, 5);
        let f = files(&out);
        assert_eq!(f.len(), 1, "{f:?}");
        // Related operations name the file all-ones: Suricata's "<unknown>".
        assert_eq!(
            (f[0].filename.as_slice(), f[0].size),
            (&b"<unknown>"[..], 4)
        );
        assert_eq!(f[0].state, FileState::Closed);
        // Without the CLOSE the file ends truncated at flow end, and logs no hashes.
        let (c, cr) = create(1, 5, "d.txt", fid(4));
        let out = run(
            &cfg,
            &[
                (CLIENT, nbss(&c)),
                (SERVER, nbss(&cr)),
                (CLIENT, nbss(&write_req(2, 5, fid(4), 0, b"data"))),
            ],
            1000,
        );
        let f = files(&out);
        assert_eq!((f.len(), f[0].state), (1, FileState::Truncated));
        let (v, _) = f[0].eve();
        assert!(v.get("sha256").is_none() && v.get("md5").is_none(), "{v}");
    }

    #[test]
    fn large_records_stream_and_gaps_leave_holes() {
        let cfg = AppConfig {
            max_buffer: 4096,
            ..AppConfig::default()
        };
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let (c, cr) = create(1, 5, "big.iso", fid(1));
        let msgs = vec![
            (CLIENT, nbss(&c)),
            (SERVER, nbss(&cr)),
            (CLIENT, nbss(&write_req(2, 5, fid(1), 0, &data))),
            (CLIENT, nbss(&write_req(3, 5, fid(1), 100_000, b"tail"))),
            (CLIENT, nbss(&close_req(4, 5, fid(1)))),
        ];
        for split in [1000, 1460, 65536] {
            let out = run(&cfg, &msgs, split);
            let f = files(&out);
            assert_eq!(f.len(), 1);
            let mut whole = data.clone();
            whole.extend_from_slice(b"tail");
            assert_eq!((f[0].size, f[0].state), (100_004, FileState::Closed));
            assert_eq!(f[0].sha256, sha256(&whole));
        }
        // A gap inside the write's data: the file has a hole (gaps, truncated), and the
        // records after it still parse.
        let mut p = SmbParser::new(&cfg);
        let mut out = Vec::new();
        for (d, m) in &msgs[..2] {
            p.parse(*d, m, 0, &mut out);
        }
        let w = &msgs[2].1;
        p.parse(CLIENT, &w[..5000], 0, &mut out);
        p.gap(CLIENT, 10_000, &mut out);
        p.parse(CLIENT, &w[15_000..], 0, &mut out);
        p.parse(CLIENT, &msgs[4].1, 0, &mut out);
        let f = files(&out);
        assert_eq!(f.len(), 1);
        assert!(f[0].gaps);
        assert_eq!(f[0].state, FileState::Truncated);
        // A gap across a record boundary: the parser finds the next record start.
        let (c, cr) = create(5, 5, "e.txt", fid(5));
        let mut p = SmbParser::new(&cfg);
        let mut out = Vec::new();
        p.parse(CLIENT, &c[..10], 0, &mut out);
        p.gap(CLIENT, 50, &mut out);
        p.parse(CLIENT, b"garbage\x00\x00", 0, &mut out);
        p.parse(CLIENT, &nbss(&c), 0, &mut out);
        p.parse(SERVER, &nbss(&cr), 0, &mut out);
        p.parse(
            CLIENT,
            &nbss(&write_req(6, 5, fid(5), 0, b"ok")),
            0,
            &mut out,
        );
        p.parse(CLIENT, &nbss(&close_req(7, 5, fid(5))), 0, &mut out);
        let f = files(&out);
        assert_eq!((f.len(), f[0].filename.as_slice()), (1, &b"e.txt"[..]));
    }

    #[test]
    fn smb1_create_write_read_close() {
        // NT_CREATE_ANDX request (unicode name), its response with FID 0x4001, WRITE_ANDX,
        // READ_ANDX and its response, CLOSE.
        fn smb1(cmd: u8, reply: bool, mid: u16, words: &[u8], bytes: &[u8]) -> Vec<u8> {
            let mut h = vec![0u8; 32];
            h[..4].copy_from_slice(b"\xffSMB");
            h[4] = cmd;
            h[9] = if reply { 0x98 } else { 0x18 };
            h[10..12].copy_from_slice(&0xc807u16.to_le_bytes());
            h[24..26].copy_from_slice(&2048u16.to_le_bytes());
            h[30..32].copy_from_slice(&mid.to_le_bytes());
            h.push((words.len() / 2) as u8);
            h.extend_from_slice(words);
            h.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
            h.extend_from_slice(bytes);
            h
        }
        let name = utf16le("\\x.exe");
        let mut w = vec![0u8; 48];
        w[0] = 0xff;
        w[5..7].copy_from_slice(&(name.len() as u16).to_le_bytes());
        // Bytes start at 32 + 1 + 48 + 2 = 83 (odd): one pad byte before the name.
        let mut b = vec![0];
        b.extend_from_slice(&name);
        b.extend_from_slice(&[0, 0]);
        let create = smb1(0xa2, false, 1, &w, &b);
        let mut rw = vec![0u8; 68];
        rw[0] = 0xff;
        rw[5..7].copy_from_slice(&0x4001u16.to_le_bytes());
        let create_r = smb1(0xa2, true, 1, &rw, &[]);
        let payload = b"MZ\x90\x00payload";
        let mut ww = vec![0u8; 28];
        ww[0] = 0xff;
        ww[4..6].copy_from_slice(&0x4001u16.to_le_bytes());
        ww[20..22].copy_from_slice(&(payload.len() as u16).to_le_bytes());
        // Data right after the byte count: 32 + 1 + 28 + 2 = 63.
        ww[22..24].copy_from_slice(&63u16.to_le_bytes());
        let write = smb1(0x2f, false, 2, &ww, payload);
        let mut cw = vec![0u8; 6];
        cw[..2].copy_from_slice(&0x4001u16.to_le_bytes());
        let close = smb1(0x04, false, 3, &cw, &[]);
        let out = run(
            &AppConfig::default(),
            &[
                (CLIENT, nbss(&create)),
                (SERVER, nbss(&create_r)),
                (CLIENT, nbss(&write)),
                (CLIENT, nbss(&close)),
            ],
            9,
        );
        let f = files(&out);
        assert_eq!(f.len(), 1, "{out:?}");
        assert_eq!(f[0].filename, b"\\x.exe");
        assert_eq!((f[0].size, f[0].state), (11, FileState::Closed));
        assert_eq!(f[0].direction, Direction::ToServer);
        assert_eq!(f[0].sha256, sha256(payload));
    }

    #[test]
    fn hostile_input_is_bounded_and_never_panics() {
        let cfg = AppConfig {
            smb_max_pending: 16,
            smb_max_files: 4,
            ..AppConfig::default()
        };
        // Many unanswered requests: the table keeps the newest 16.
        let mut p = SmbParser::new(&cfg);
        let mut out = Vec::new();
        for i in 0..1000 {
            p.parse(CLIENT, &nbss(&read_req(i, 5, fid(1), 0, 10)), 0, &mut out);
        }
        assert!(p.st.pending.len() <= 16);
        // Many files written and never closed: at most 4 open at once.
        for i in 0..50u8 {
            p.parse(
                CLIENT,
                &nbss(&write_req(5000, 5, fid(i), 0, b"x")),
                0,
                &mut out,
            );
        }
        assert!(p.st.files.open_count() <= 4);
        // Malformed records: truncated headers, lengths past the message, a compound
        // pointing nowhere, an oversized NBSS length, a non-SMB record, random bytes.
        let mut bad = Vec::new();
        bad.push(nbss(b"\xfeSMB"));
        bad.push(nbss(&smb2(5, 0, 0, 1, 5, &[57, 0])));
        let mut c = create(1, 5, "x", fid(1)).0;
        c[64 + 44..64 + 46].copy_from_slice(&0xfff0u16.to_le_bytes());
        bad.push(nbss(&c));
        let mut r = read_resp(1, 5, 0, b"abc");
        r[20..24].copy_from_slice(&8u32.to_le_bytes());
        bad.push(nbss(&r));
        let mut w = write_req(1, 5, fid(1), u64::MAX - 1, b"abc");
        w[64 + 2..64 + 4].copy_from_slice(&0xffffu16.to_le_bytes());
        bad.push(nbss(&w));
        bad.push(vec![0, 0xff, 0xff, 0xff, 0xfe, b'S', b'M', b'B']);
        bad.push(nbss(b"not smb at all"));
        bad.push(vec![0x42; 300]);
        bad.push(nbss(&[0xff, b'S', b'M', b'B', 0x2e, 0, 0, 0, 0, 0x80]));
        let mut seed = 7u32;
        for _ in 0..50 {
            let v: Vec<u8> = (0..200)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            bad.push(v);
        }
        for b in &bad {
            for split in [1, 5, 1000] {
                let mut p = SmbParser::new(&cfg);
                let mut out = Vec::new();
                for c in b.chunks(split) {
                    p.parse(CLIENT, c, 0, &mut out);
                    p.parse(SERVER, c, 0, &mut out);
                }
                p.gap(CLIENT, 3, &mut out);
                p.parse(CLIENT, b, 0, &mut out);
                p.close(0, &mut out);
            }
        }
        let out = run(&cfg, &[(CLIENT, nbss(b"not smb at all"))], 100);
        assert!(out.iter().any(|e| matches!(
            e,
            AppEvent::Anomaly {
                proto: AppProto::Smb,
                ..
            }
        )));
    }

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
