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

mod files;
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
    Create {
        name: Vec<u8>,
        tree: u32,
    },
    Read {
        fid: Fid,
        offset: u64,
        tree: u32,
    },
    TreeConnect {
        share: Vec<u8>,
    },
    /// A CLOSE of the file a related compound CREATE opens.
    CloseRelated,
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
    /// The file id of the last CREATE response (related compound operations use it).
    last_create: Option<Fid>,
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
            last_create: None,
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
        self.last_create = Some(fid);
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
        let name = self
            .fids
            .get(&fid)
            .map(|i| i.name.clone())
            .unwrap_or_else(|| b"<unknown>".to_vec());
        if let Some(b) = rec.get(start..have_end) {
            self.files.write(fid, dir, &name, off, b, out);
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
                            let name = self
                                .st
                                .fids
                                .get(&s.fid)
                                .map(|i| i.name.clone())
                                .unwrap_or_else(|| b"<unknown>".to_vec());
                            let b = input.get(..n).unwrap_or_default();
                            self.st.files.write(s.fid, s.dir, &name, s.off, b, out);
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
                        NBSS_MESSAGE => {}
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
                            // Not a record start: look for one from the next byte on.
                            rd.buf.drain(..1);
                            rd.phase = Phase::Resync;
                            continue;
                        }
                    }
                    if len < rd.buf.len() - 4 {
                        // Shorter than the bytes already taken for it (after a resync).
                        out.push(AppEvent::Anomaly {
                            proto: AppProto::Smb,
                            event: "SMB_MALFORMED_DATA",
                        });
                        rd.buf.drain(..1);
                        rd.phase = Phase::Resync;
                        continue;
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
