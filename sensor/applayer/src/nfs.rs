//! NFS over ONC RPC (RFC 5531): TCP with record marking (fragments joined, any split),
//! UDP one message per datagram. NFSv3 (RFC 1813) READ replies and WRITE calls become
//! files as in Suricata 7: the file of a handle in one direction collects the chunks at
//! their offsets (`smb::files::Files`, shared with SMB), named after the handle's LOOKUP,
//! CREATE or READDIRPLUS entry; it ends CLOSED at a READ reply with EOF, a FILE_SYNC
//! WRITE or a COMMIT, TRUNCATED (no hashes) at flow end. NFSv2 READ replies (the file
//! ends when offset + length reaches the size in the attributes) and NFSv4 COMPOUNDs
//! (PUTFH, READ, WRITE, COMMIT, CLOSE; the walk stops at an operation it does not know)
//! too. A READ reply or WRITE call larger than its first `PEEK` bytes streams straight
//! into the file; other records are buffered whole up to `max_buffer`, else skipped.

use std::collections::{HashMap, VecDeque};

use md5::{Digest, Md5};

use crate::smb::files::{Fid, Files};
use crate::{AppConfig, AppEvent, AppProto, Direction, Parser, Probe, Transport};

/// The NFS port, where Suricata probes for NFS (TCP and UDP).
pub(crate) const NFS_PORT: u16 = 2049;
const NFS_PROGRAM: u32 = 100_003;
const RPC_VERSION: u32 = 2;
/// RFC 5531: credentials and verifiers hold at most 400 bytes.
const MAX_AUTH: usize = 400;
/// NFSv4 handles hold at most 128 bytes (v3: 64, v2: 32).
const MAX_FH: usize = 128;
const MAX_NAME: usize = 4096;
/// Largest READ/WRITE data taken (Linux allows 1 MiB; a few multiples of it).
const MAX_DATA: u32 = 16 << 20;
/// Bytes of an unfinished record looked at to see whether it is a READ reply or WRITE
/// call whose data can stream into the file.
const PEEK: usize = 512;
/// Past this many bytes an unfinished record is no longer looked at for file data.
const PEEK_LIMIT: usize = 4096;
const MAX_V4_OPS: usize = 64;
const MAX_DIR_ENTRIES: usize = 4096;
const MAX_ANOMALIES: usize = 64;

// Procedures (v2 READ shares v3's number).
const PROC_LOOKUP3: u32 = 3;
const PROC_READ: u32 = 6;
const PROC_WRITE3: u32 = 7;
const PROC_CREATE3: u32 = 8;
const PROC_READDIRPLUS3: u32 = 17;
const PROC_COMMIT3: u32 = 21;
const PROC_COMPOUND4: u32 = 1;

// NFSv4 operations.
const OP4_ACCESS: u32 = 3;
const OP4_CLOSE: u32 = 4;
const OP4_COMMIT: u32 = 5;
const OP4_GETATTR: u32 = 9;
const OP4_GETFH: u32 = 10;
const OP4_LOOKUP: u32 = 15;
const OP4_LOOKUPP: u32 = 16;
const OP4_PUTFH: u32 = 22;
const OP4_PUTPUBFH: u32 = 23;
const OP4_PUTROOTFH: u32 = 24;
const OP4_READ: u32 = 25;
const OP4_RESTOREFH: u32 = 31;
const OP4_SAVEFH: u32 = 32;
const OP4_WRITE: u32 = 38;
const OP4_SEQUENCE: u32 = 53;

/// Why XDR decoding stopped.
#[derive(Debug, PartialEq, Eq)]
enum Xerr {
    /// The bytes end before the item.
    Short,
    /// A value no valid message has.
    Bad,
}

type R<T> = Result<T, Xerr>;

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

/// An XDR (RFC 4506) reader over a byte slice.
#[derive(Clone, Copy)]
struct Xdr<'a> {
    b: &'a [u8],
}

impl<'a> Xdr<'a> {
    fn fixed(&mut self, n: usize) -> R<&'a [u8]> {
        let d = self.b.get(..n).ok_or(Xerr::Short)?;
        self.b = self.b.get(n..).unwrap_or_default();
        Ok(d)
    }

    fn u32(&mut self) -> R<u32> {
        let d = self.fixed(4)?;
        Ok(u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
    }

    fn u64(&mut self) -> R<u64> {
        Ok((u64::from(self.u32()?) << 32) | u64::from(self.u32()?))
    }

    fn bool(&mut self) -> R<bool> {
        match self.u32()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Xerr::Bad),
        }
    }

    fn skip(&mut self, n: usize) -> R<()> {
        self.fixed(n).map(|_| ())
    }

    /// A variable-length opaque of at most `max` bytes, with its padding.
    fn opaque(&mut self, max: usize) -> R<&'a [u8]> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(Xerr::Bad);
        }
        let d = self.fixed(n)?;
        self.skip(pad4(n))?;
        Ok(d)
    }

    /// File data whose bytes may not all be here yet: the declared length and the bytes
    /// present (the padding is skipped when the whole data is here).
    fn data(&mut self) -> R<(u32, &'a [u8])> {
        let n = self.u32()?;
        if n > MAX_DATA {
            return Err(Xerr::Bad);
        }
        let take = (n as usize).min(self.b.len());
        let d = self.fixed(take)?;
        if take == n as usize {
            // Missing padding at the very end of a record is tolerated.
            let p = pad4(take).min(self.b.len());
            self.skip(p)?;
        }
        Ok((n, d))
    }

    /// NFSv3 post_op_attr: a bool, then 84 bytes of fattr3.
    fn post_op_attr(&mut self) -> R<()> {
        if self.bool()? {
            self.skip(84)?;
        }
        Ok(())
    }

    /// NFSv4 bitmap4.
    fn bitmap(&mut self) -> R<()> {
        let n = self.u32()? as usize;
        if n > 64 {
            return Err(Xerr::Bad);
        }
        self.skip(n * 4)
    }
}

/// An RPC message's header.
enum Rpc<'a> {
    Call {
        xid: u32,
        prog: u32,
        vers: u32,
        procedure: u32,
        args: Xdr<'a>,
    },
    Reply {
        xid: u32,
        /// MSG_ACCEPTED with SUCCESS: the results follow.
        ok: bool,
        res: Xdr<'a>,
    },
}

fn rpc(b: &[u8]) -> R<Rpc<'_>> {
    let mut x = Xdr { b };
    let xid = x.u32()?;
    match x.u32()? {
        0 => {
            if x.u32()? != RPC_VERSION {
                return Err(Xerr::Bad);
            }
            let prog = x.u32()?;
            let vers = x.u32()?;
            let procedure = x.u32()?;
            for _ in 0..2 {
                x.u32()?;
                x.opaque(MAX_AUTH)?;
            }
            Ok(Rpc::Call {
                xid,
                prog,
                vers,
                procedure,
                args: x,
            })
        }
        1 => match x.u32()? {
            0 => {
                x.u32()?;
                x.opaque(MAX_AUTH)?;
                let ok = x.u32()? == 0;
                Ok(Rpc::Reply { xid, ok, res: x })
            }
            1 => Ok(Rpc::Reply {
                xid,
                ok: false,
                res: x,
            }),
            _ => Err(Xerr::Bad),
        },
        _ => Err(Xerr::Bad),
    }
}

/// A call waiting for its reply.
#[derive(Clone, Debug, Default)]
struct Req {
    vers: u32,
    procedure: u32,
    /// READ: the handle and offset read (NFSv4: of the COMPOUND's READ).
    fh: Vec<u8>,
    offset: u64,
    /// LOOKUP/CREATE: the name looked up; READ: the handle's name when asked.
    name: Vec<u8>,
}

/// A change decoded from one message, applied once the message is taken.
enum Act<'a> {
    Req(u32, Req),
    Forget(u32),
    Name(Vec<u8>, Vec<u8>),
    Data {
        fh: Vec<u8>,
        /// NFS version of the call.
        vers: u32,
        dir: usize,
        offset: u64,
        len: u32,
        data: &'a [u8],
        last: bool,
        name: Vec<u8>,
    },
    /// COMMIT or CLOSE: the handle's file to the server ends.
    Close(Vec<u8>),
}

/// The file data of a record still arriving after its first bytes.
#[derive(Debug)]
struct Stream {
    fid: Fid,
    dir: usize,
    name: Vec<u8>,
    next: u64,
    left: u32,
    last: bool,
}

#[derive(Debug, Default)]
enum Mode {
    /// Buffering the record in `Side::head`.
    #[default]
    Head,
    /// Streaming the record's file data.
    Data(Stream),
    /// Dropping the rest of the record.
    Skip,
}

/// Record-marking state of one TCP direction.
#[derive(Debug, Default)]
struct Side {
    mark: [u8; 4],
    mark_len: usize,
    /// A fragment header was read: `frag_left` bytes of it follow.
    in_frag: bool,
    frag_left: u32,
    last_frag: bool,
    head: Vec<u8>,
    mode: Mode,
    /// A gap broke the framing: look for the next record header.
    lost: bool,
}

/// NFS parser of one flow.
pub(crate) struct NfsParser {
    udp: bool,
    sides: [Side; 2],
    reqs: HashMap<u32, Req>,
    req_order: VecDeque<u32>,
    names: HashMap<Vec<u8>, Vec<u8>>,
    name_order: VecDeque<Vec<u8>>,
    max_pending: usize,
    max_buffer: usize,
    files: Files,
    anomalies: usize,
}

fn fid(fh: &[u8]) -> Fid {
    Md5::digest(fh).into()
}

fn fh_ok(fh: &[u8]) -> bool {
    !fh.is_empty()
}

impl NfsParser {
    pub(crate) fn new(cfg: &AppConfig, t: Transport) -> Self {
        NfsParser {
            udp: t == Transport::Udp,
            sides: Default::default(),
            reqs: HashMap::new(),
            req_order: VecDeque::new(),
            names: HashMap::new(),
            name_order: VecDeque::new(),
            max_pending: cfg.smb_max_pending.max(1),
            max_buffer: cfg.max_buffer.max(PEEK),
            files: Files::new(cfg.smb_max_files, cfg.smb_max_ooo, cfg.file_data_limit)
                .with_proto(AppProto::Nfs),
            anomalies: 0,
        }
    }

    fn anomaly(&mut self, event: &'static str, out: &mut Vec<AppEvent>) {
        if self.anomalies < MAX_ANOMALIES {
            self.anomalies += 1;
            out.push(AppEvent::Anomaly {
                proto: AppProto::Nfs,
                event,
            });
        }
    }

    fn name_of(&self, fh: &[u8]) -> Vec<u8> {
        self.names.get(fh).cloned().unwrap_or_default()
    }

    /// Decodes one message (`complete`: all of it; else its first bytes, to start
    /// streaming file data). The changes are returned, not applied; the last `Data`
    /// may be partial only when `complete` is false.
    fn decode<'a>(&self, dir: usize, b: &'a [u8], complete: bool) -> R<Vec<Act<'a>>> {
        let mut acts = Vec::new();
        match rpc(b)? {
            Rpc::Call {
                xid,
                prog,
                vers,
                procedure,
                args,
            } => {
                if dir != 0 || prog != NFS_PROGRAM {
                    return Ok(acts);
                }
                let mut req = Req {
                    vers,
                    procedure,
                    ..Req::default()
                };
                self.call(&mut req, args, complete, &mut acts)?;
                acts.push(Act::Req(xid, req));
            }
            Rpc::Reply { xid, ok, res } => {
                if dir != 1 {
                    return Ok(acts);
                }
                let Some(req) = self.reqs.get(&xid) else {
                    return Ok(acts);
                };
                acts.push(Act::Forget(xid));
                if ok {
                    reply(req, res, complete, &mut acts)?;
                }
            }
        }
        Ok(acts)
    }

    fn call<'a>(
        &self,
        req: &mut Req,
        mut x: Xdr<'a>,
        complete: bool,
        acts: &mut Vec<Act<'a>>,
    ) -> R<()> {
        match (req.vers, req.procedure) {
            (2, PROC_READ) => {
                req.fh = x.fixed(32)?.to_vec();
                req.offset = u64::from(x.u32()?);
                req.name = self.name_of(&req.fh);
            }
            (3, PROC_LOOKUP3 | PROC_CREATE3) => {
                x.opaque(MAX_FH)?;
                req.name = x.opaque(MAX_NAME)?.to_vec();
            }
            (3, PROC_READ) => {
                req.fh = x.opaque(MAX_FH)?.to_vec();
                req.offset = x.u64()?;
                req.name = self.name_of(&req.fh);
            }
            (3, PROC_WRITE3) => {
                let fh = x.opaque(MAX_FH)?.to_vec();
                let offset = x.u64()?;
                x.u32()?;
                let stable = x.u32()?;
                let (len, data) = x.data()?;
                if complete && data.len() < len as usize {
                    return Err(Xerr::Short);
                }
                if len > 0 && fh_ok(&fh) {
                    let name = self.name_of(&fh);
                    acts.push(Act::Data {
                        fh,
                        vers: 3,
                        dir: 0,
                        offset,
                        len,
                        data,
                        last: stable == 2,
                        name,
                    });
                }
            }
            (3, PROC_COMMIT3) => {
                acts.push(Act::Close(x.opaque(MAX_FH)?.to_vec()));
            }
            (4, PROC_COMPOUND4) => self.compound_call(req, x, complete, acts)?,
            _ => {}
        }
        Ok(())
    }

    fn compound_call<'a>(
        &self,
        req: &mut Req,
        mut x: Xdr<'a>,
        complete: bool,
        acts: &mut Vec<Act<'a>>,
    ) -> R<()> {
        x.opaque(MAX_NAME)?;
        x.u32()?;
        let n = x.u32()? as usize;
        let mut cur: Vec<u8> = Vec::new();
        let mut saved: Vec<u8> = Vec::new();
        for _ in 0..n.min(MAX_V4_OPS) {
            match x.u32()? {
                OP4_SEQUENCE => x.skip(32)?,
                OP4_PUTFH => cur = x.opaque(MAX_FH)?.to_vec(),
                OP4_PUTROOTFH | OP4_PUTPUBFH | OP4_LOOKUPP => cur.clear(),
                OP4_GETFH => {}
                OP4_SAVEFH => saved.clone_from(&cur),
                OP4_RESTOREFH => cur.clone_from(&saved),
                OP4_LOOKUP => {
                    x.opaque(MAX_NAME)?;
                    cur.clear();
                }
                OP4_GETATTR => x.bitmap()?,
                OP4_ACCESS => {
                    x.u32()?;
                }
                OP4_READ => {
                    x.skip(16)?;
                    req.offset = x.u64()?;
                    x.u32()?;
                    req.fh.clone_from(&cur);
                    req.name = self.name_of(&cur);
                }
                OP4_WRITE => {
                    x.skip(16)?;
                    let offset = x.u64()?;
                    let stable = x.u32()?;
                    let (len, data) = x.data()?;
                    let partial = data.len() < len as usize;
                    if complete && partial {
                        return Err(Xerr::Short);
                    }
                    if len > 0 && fh_ok(&cur) {
                        acts.push(Act::Data {
                            fh: cur.clone(),
                            vers: 4,
                            dir: 0,
                            offset,
                            len,
                            data,
                            last: stable == 2,
                            name: self.name_of(&cur),
                        });
                    }
                    if partial {
                        return Ok(());
                    }
                }
                OP4_COMMIT => {
                    x.skip(12)?;
                    acts.push(Act::Close(cur.clone()));
                }
                OP4_CLOSE => {
                    x.skip(20)?;
                    acts.push(Act::Close(cur.clone()));
                }
                _ => break,
            }
        }
        Ok(())
    }

    fn remember_req(&mut self, xid: u32, req: Req) {
        if self.reqs.insert(xid, req).is_none() {
            self.req_order.push_back(xid);
        }
        while self.reqs.len() > self.max_pending {
            match self.req_order.pop_front() {
                Some(old) => {
                    self.reqs.remove(&old);
                }
                None => break,
            }
        }
    }

    fn remember_name(&mut self, fh: Vec<u8>, name: Vec<u8>) {
        if !fh_ok(&fh) {
            return;
        }
        if self.names.insert(fh.clone(), name).is_none() {
            self.name_order.push_back(fh);
        }
        while self.names.len() > self.max_pending {
            match self.name_order.pop_front() {
                Some(old) => {
                    self.names.remove(&old);
                }
                None => break,
            }
        }
    }

    /// Applies decoded changes; returns the stream the last `Data` continues in, if its
    /// bytes are not all here.
    fn apply(&mut self, acts: Vec<Act<'_>>, out: &mut Vec<AppEvent>) -> Option<Stream> {
        let mut stream = None;
        for a in acts {
            match a {
                Act::Req(xid, req) => self.remember_req(xid, req),
                Act::Forget(xid) => {
                    self.reqs.remove(&xid);
                    self.req_order.retain(|x| *x != xid);
                }
                Act::Name(fh, name) => self.remember_name(fh, name),
                Act::Data {
                    fh,
                    vers,
                    dir,
                    offset,
                    len,
                    data,
                    last,
                    name,
                } => {
                    let id = fid(&fh);
                    self.files.write(id, dir, &name, offset, data, out);
                    self.files
                        .set_section(id, dir, || ("nfs", nfs_section(vers, dir, &name)));
                    let left = len.saturating_sub(data.len() as u32);
                    if left == 0 {
                        if last {
                            self.files.close_dir(id, dir, out);
                        }
                    } else {
                        stream = Some(Stream {
                            fid: id,
                            dir,
                            name,
                            next: offset.saturating_add(data.len() as u64),
                            left,
                            last,
                        });
                    }
                }
                Act::Close(fh) => {
                    if fh_ok(&fh) {
                        self.files.close_dir(fid(&fh), 0, out);
                    }
                }
            }
        }
        stream
    }

    /// One whole message.
    fn message(&mut self, dir: usize, b: &[u8], out: &mut Vec<AppEvent>) {
        match self.decode(dir, b, true) {
            Ok(acts) => {
                self.apply(acts, out);
            }
            Err(_) => self.anomaly("malformed_data", out),
        }
    }

    /// Bytes of the current record in `dir`; `ends`: they finish it.
    fn record_bytes(&mut self, dir: usize, mut b: &[u8], ends: bool, out: &mut Vec<AppEvent>) {
        while !b.is_empty() {
            match std::mem::take(&mut self.sides[dir].mode) {
                Mode::Skip => {
                    self.sides[dir].mode = Mode::Skip;
                    return;
                }
                Mode::Data(mut s) => {
                    let n = (s.left as usize).min(b.len());
                    let (now, rest) = b.split_at(n);
                    self.files.write(s.fid, s.dir, &s.name, s.next, now, out);
                    s.next = s.next.saturating_add(n as u64);
                    s.left -= n as u32;
                    b = rest;
                    if s.left == 0 {
                        if s.last {
                            self.files.close_dir(s.fid, s.dir, out);
                        }
                        self.sides[dir].mode = Mode::Skip;
                    } else {
                        self.sides[dir].mode = Mode::Data(s);
                    }
                }
                Mode::Head => {
                    let side = &mut self.sides[dir];
                    let before = side.head.len();
                    let room = self.max_buffer.saturating_sub(before);
                    let n = room.min(b.len());
                    side.head.extend_from_slice(&b[..n]);
                    b = &b[n..];
                    let full = side.head.len() >= self.max_buffer;
                    // File data starts within the first few hundred bytes of a record:
                    // one that is still undecided past `PEEK_LIMIT` is buffered whole.
                    if (ends && b.is_empty())
                        || side.head.len() < PEEK
                        || (before >= PEEK_LIMIT && !full)
                    {
                        side.mode = Mode::Head;
                        // Past the buffer and not ending here: too large to decode.
                        if full && !(ends && b.is_empty()) {
                            side.mode = Mode::Skip;
                            side.head.clear();
                        }
                        continue;
                    }
                    // An unfinished record: file data that can stream?
                    let head = std::mem::take(&mut side.head);
                    let stream = match self.decode(dir, &head, false) {
                        Ok(acts) if streams(&acts) => Some(self.apply(acts, out)),
                        _ => None,
                    };
                    let side = &mut self.sides[dir];
                    match stream {
                        Some(Some(s)) => side.mode = Mode::Data(s),
                        Some(None) => side.mode = Mode::Skip,
                        None if full => side.mode = Mode::Skip,
                        None => {
                            side.head = head;
                            side.mode = Mode::Head;
                        }
                    }
                }
            }
        }
    }

    /// The current record in `dir` ended.
    fn record_end(&mut self, dir: usize, out: &mut Vec<AppEvent>) {
        let side = &mut self.sides[dir];
        let mode = std::mem::take(&mut side.mode);
        let head = std::mem::take(&mut side.head);
        match mode {
            Mode::Head => self.message(dir, &head, out),
            Mode::Data(s) => {
                // The record ended inside its file data.
                self.files.gap(s.fid, s.dir);
                self.anomaly("malformed_data", out);
            }
            Mode::Skip => {}
        }
    }

    /// Whether `b` starts with a record header of a message this side may send.
    fn record_start(&self, dir: usize, b: &[u8]) -> bool {
        let mut x = Xdr { b };
        let (Ok(mark), Ok(xid), Ok(kind), Ok(a), Ok(p)) =
            (x.u32(), x.u32(), x.u32(), x.u32(), x.u32())
        else {
            return false;
        };
        let len = mark & 0x7fff_ffff;
        if !(20..=MAX_DATA + 4096).contains(&len) {
            return false;
        }
        match (dir, kind) {
            (0, 0) => a == RPC_VERSION && p == NFS_PROGRAM,
            (1, 1) => a <= 1 && self.reqs.contains_key(&xid),
            _ => false,
        }
    }

    fn tcp(&mut self, dir: usize, mut b: &[u8], out: &mut Vec<AppEvent>) {
        while !b.is_empty() {
            if self.sides[dir].lost {
                let found = (0..b.len().saturating_sub(19))
                    .find(|&i| b.get(i..).is_some_and(|t| self.record_start(dir, t)));
                match found {
                    Some(i) => {
                        b = b.get(i..).unwrap_or_default();
                        self.sides[dir] = Side::default();
                    }
                    None => return,
                }
            }
            let side = &mut self.sides[dir];
            if !side.in_frag {
                let n = (4 - side.mark_len).min(b.len());
                side.mark[side.mark_len..side.mark_len + n].copy_from_slice(&b[..n]);
                side.mark_len += n;
                b = &b[n..];
                if side.mark_len < 4 {
                    return;
                }
                let m = u32::from_be_bytes(side.mark);
                side.mark_len = 0;
                side.in_frag = true;
                side.last_frag = m & 0x8000_0000 != 0;
                side.frag_left = m & 0x7fff_ffff;
                if side.frag_left == 0 {
                    side.in_frag = false;
                    if side.last_frag {
                        self.record_end(dir, out);
                    }
                }
                continue;
            }
            let n = (side.frag_left as usize).min(b.len());
            let (now, rest) = b.split_at(n);
            b = rest;
            side.frag_left -= n as u32;
            let ends = side.frag_left == 0 && side.last_frag;
            if side.frag_left == 0 {
                side.in_frag = false;
            }
            self.record_bytes(dir, now, ends, out);
            if ends {
                self.record_end(dir, out);
            }
        }
    }
}

/// The `nfs` section Suricata logs beside an NFS file's `fileinfo` (the fields that do
/// not depend on its transaction bookkeeping).
fn nfs_section(vers: u32, dir: usize, name: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "version": vers,
        "procedure": if dir == 0 { "WRITE" } else { "READ" },
        "filename": crate::util::json_str(name),
        "file_tx": true,
    })
}

/// Whether decoded changes end with file data that is not all here yet.
fn streams(acts: &[Act<'_>]) -> bool {
    matches!(
        acts.iter().rev().find(|a| matches!(a, Act::Data { .. })),
        Some(Act::Data { len, data, .. }) if data.len() < *len as usize
    )
}

/// Decodes a reply to `req`.
fn reply<'a>(req: &Req, mut x: Xdr<'a>, complete: bool, acts: &mut Vec<Act<'a>>) -> R<()> {
    match (req.vers, req.procedure) {
        (2, PROC_READ) => {
            if x.u32()? != 0 {
                return Ok(());
            }
            let attr = x.fixed(68)?;
            let size = attr
                .get(20..24)
                .map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]));
            let (len, data) = x.data()?;
            read_data(req, len, data, false, Some(size), complete, acts)?;
        }
        (3, PROC_LOOKUP3 | PROC_CREATE3) => {
            // LOOKUP3resok starts with the handle, CREATE3resok with a post_op_fh3.
            let ok = x.u32()? == 0;
            if ok && (req.procedure == PROC_LOOKUP3 || x.bool()?) {
                acts.push(Act::Name(x.opaque(MAX_FH)?.to_vec(), req.name.clone()));
            }
        }
        (3, PROC_READDIRPLUS3) => {
            if x.u32()? != 0 {
                return Ok(());
            }
            x.post_op_attr()?;
            x.skip(8)?;
            for _ in 0..MAX_DIR_ENTRIES {
                // A reply cut short still names the entries before the cut.
                let Ok(true) = x.bool() else { break };
                let entry = (|| -> R<Option<(Vec<u8>, Vec<u8>)>> {
                    x.u64()?;
                    let name = x.opaque(MAX_NAME)?.to_vec();
                    x.u64()?;
                    x.post_op_attr()?;
                    if x.bool()? {
                        return Ok(Some((x.opaque(MAX_FH)?.to_vec(), name)));
                    }
                    Ok(None)
                })();
                match entry {
                    Ok(Some((fh, name))) => acts.push(Act::Name(fh, name)),
                    Ok(None) => {}
                    Err(_) => break,
                }
            }
        }
        (3, PROC_READ) => {
            let status = x.u32()?;
            x.post_op_attr()?;
            if status != 0 {
                return Ok(());
            }
            let count = x.u32()?;
            let eof = x.bool()?;
            let (len, data) = x.data()?;
            if len > count {
                return Err(Xerr::Bad);
            }
            read_data(req, len, data, eof, None, complete, acts)?;
        }
        (4, PROC_COMPOUND4) => {
            // The COMPOUND's status is its first failed operation's: walk to it.
            x.u32()?;
            x.opaque(MAX_NAME)?;
            let n = x.u32()? as usize;
            for _ in 0..n.min(MAX_V4_OPS) {
                let op = x.u32()?;
                if x.u32()? != 0 {
                    break;
                }
                match op {
                    OP4_SEQUENCE => x.skip(36)?,
                    OP4_PUTFH | OP4_PUTROOTFH | OP4_PUTPUBFH | OP4_SAVEFH | OP4_RESTOREFH
                    | OP4_LOOKUP | OP4_LOOKUPP => {}
                    OP4_GETFH => {
                        x.opaque(MAX_FH)?;
                    }
                    OP4_ACCESS => x.skip(8)?,
                    OP4_GETATTR => {
                        x.bitmap()?;
                        x.opaque(MAX_DATA as usize)?;
                    }
                    OP4_WRITE => x.skip(16)?,
                    OP4_COMMIT => x.skip(8)?,
                    OP4_CLOSE => x.skip(16)?,
                    OP4_READ => {
                        let eof = x.bool()?;
                        let (len, data) = x.data()?;
                        return read_data(req, len, data, eof, None, complete, acts);
                    }
                    _ => break,
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// READ reply data for `req`: `v2_size` is NFSv2's file size from the attributes (the
/// file ends when the data reaches it, as in Suricata).
fn read_data<'a>(
    req: &Req,
    len: u32,
    data: &'a [u8],
    eof: bool,
    v2_size: Option<u32>,
    complete: bool,
    acts: &mut Vec<Act<'a>>,
) -> R<()> {
    if complete && data.len() < len as usize {
        return Err(Xerr::Short);
    }
    if !fh_ok(&req.fh) {
        return Ok(());
    }
    let last =
        eof || v2_size.is_some_and(|s| u64::from(s) == req.offset.saturating_add(u64::from(len)));
    acts.push(Act::Data {
        fh: req.fh.clone(),
        vers: req.vers,
        dir: 1,
        offset: req.offset,
        len,
        data,
        last,
        name: req.name.clone(),
    });
    Ok(())
}

impl Parser for NfsParser {
    fn proto(&self) -> AppProto {
        AppProto::Nfs
    }

    fn parse(&mut self, dir: Direction, data: &[u8], _ts: i64, out: &mut Vec<AppEvent>) {
        let d = dir.idx();
        if self.udp {
            self.message(d, data, out);
        } else {
            self.tcp(d, data, out);
        }
    }

    fn gap(&mut self, dir: Direction, len: u64, _out: &mut Vec<AppEvent>) {
        if self.udp {
            return;
        }
        let d = dir.idx();
        let side = &mut self.sides[d];
        if side.lost {
            return;
        }
        if side.in_frag && len < u64::from(side.frag_left) {
            // The hole is inside the current fragment: the framing holds.
            side.frag_left -= len as u32;
            match &mut side.mode {
                Mode::Data(s) if len < u64::from(s.left) => {
                    s.left -= len as u32;
                    s.next = s.next.saturating_add(len);
                    self.files.gap(s.fid, s.dir);
                    return;
                }
                Mode::Data(s) => self.files.gap(s.fid, s.dir),
                _ => {}
            }
            side.head.clear();
            side.mode = Mode::Skip;
            return;
        }
        if let Mode::Data(s) = &side.mode {
            self.files.gap(s.fid, s.dir);
        }
        *side = Side {
            lost: true,
            ..Side::default()
        };
    }

    fn close(&mut self, _ts: i64, out: &mut Vec<AppEvent>) {
        self.files.close_all(out);
    }
}

fn udp_min(dir: Direction) -> usize {
    match dir {
        Direction::ToServer => 48,
        Direction::ToClient => 32,
    }
}

/// Detection on the NFS port: an RPC call to the NFS program (versions 2 to 4) to the
/// server, an accepted or denied RPC reply to the client; TCP records carry their
/// record-marking header first.
pub(crate) fn probe(t: Transport, dir: Direction, data: &[u8]) -> Probe {
    let msg = match t {
        // Over UDP a bare NULL call (40 bytes) or its 24-byte reply is no proof of NFS:
        // Suricata 7 labels such flows "failed" (its probe wants 48 and 32 bytes).
        Transport::Udp if data.len() < udp_min(dir) => return Probe::NoMatch,
        Transport::Udp => data,
        Transport::Tcp => {
            let Some(m) = data.get(..4) else {
                return Probe::NeedMore;
            };
            let len = u32::from_be_bytes([m[0], m[1], m[2], m[3]]) & 0x7fff_ffff;
            if len < 20 {
                return Probe::NoMatch;
            }
            &data[4..]
        }
    };
    let mut x = Xdr { b: msg };
    let fields = match dir {
        Direction::ToServer => 5,
        Direction::ToClient => 3,
    };
    let mut v = [0u32; 5];
    for f in v.iter_mut().take(fields) {
        match x.u32() {
            Ok(n) => *f = n,
            Err(_) if t == Transport::Tcp => return Probe::NeedMore,
            Err(_) => return Probe::NoMatch,
        }
    }
    let ok = match dir {
        Direction::ToServer => {
            v[1] == 0 && v[2] == RPC_VERSION && v[3] == NFS_PROGRAM && (2..=4).contains(&v[4])
        }
        Direction::ToClient => v[1] == 1 && v[2] <= 1,
    };
    if ok {
        Probe::Match(AppProto::Nfs)
    } else {
        Probe::NoMatch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::FileState;
    use crate::testing::{anomalies, files};
    use Direction::{ToClient, ToServer};

    fn w32(v: &mut Vec<u8>, x: u32) {
        v.extend_from_slice(&x.to_be_bytes());
    }

    fn w64(v: &mut Vec<u8>, x: u64) {
        v.extend_from_slice(&x.to_be_bytes());
    }

    /// An XDR opaque: length, bytes, padding.
    fn wop(v: &mut Vec<u8>, b: &[u8]) {
        w32(v, b.len() as u32);
        v.extend_from_slice(b);
        v.resize(v.len() + pad4(b.len()), 0);
    }

    /// An RPC call to NFS with AUTH_UNIX credentials (RFC 5531 §8.2).
    fn call(xid: u32, vers: u32, procedure: u32, args: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [xid, 0, 2, NFS_PROGRAM, vers, procedure, 1] {
            w32(&mut v, x);
        }
        let mut cred = Vec::new();
        w32(&mut cred, 0x5e1d_0b94);
        wop(&mut cred, b"client");
        for x in [0, 0, 0] {
            w32(&mut cred, x);
        }
        wop(&mut v, &cred);
        w32(&mut v, 0);
        wop(&mut v, b"");
        v.extend_from_slice(args);
        v
    }

    /// An accepted, successful RPC reply.
    fn reply(xid: u32, res: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [xid, 1, 0, 0, 0, 0] {
            w32(&mut v, x);
        }
        v.extend_from_slice(res);
        v
    }

    /// TCP record marking, in fragments of at most `frag` bytes.
    fn rm(msg: &[u8], frag: usize) -> Vec<u8> {
        let mut v = Vec::new();
        let chunks: Vec<&[u8]> = msg.chunks(frag).collect();
        for (i, c) in chunks.iter().enumerate() {
            let last = if i + 1 == chunks.len() {
                0x8000_0000
            } else {
                0
            };
            w32(&mut v, last | c.len() as u32);
            v.extend_from_slice(c);
        }
        v
    }

    const FH: &[u8] = b"\x01\x00\x07\x00handle-of-report.txt";

    fn lookup3(xid: u32) -> (Vec<u8>, Vec<u8>) {
        let mut a = Vec::new();
        wop(&mut a, b"dir-handle");
        wop(&mut a, b"report.txt");
        let mut r = Vec::new();
        w32(&mut r, 0);
        wop(&mut r, FH);
        w32(&mut r, 0);
        w32(&mut r, 0);
        (call(xid, 3, PROC_LOOKUP3, &a), reply(xid, &r))
    }

    fn read3(xid: u32, offset: u64, data: &[u8], eof: bool) -> (Vec<u8>, Vec<u8>) {
        let mut a = Vec::new();
        wop(&mut a, FH);
        w64(&mut a, offset);
        w32(&mut a, data.len() as u32);
        let mut r = Vec::new();
        w32(&mut r, 0);
        w32(&mut r, 1);
        r.extend_from_slice(&[0; 84]);
        w32(&mut r, data.len() as u32);
        w32(&mut r, u32::from(eof));
        wop(&mut r, data);
        (call(xid, 3, PROC_READ, &a), reply(xid, &r))
    }

    fn write3(xid: u32, offset: u64, data: &[u8], stable: u32) -> Vec<u8> {
        let mut a = Vec::new();
        wop(&mut a, FH);
        w64(&mut a, offset);
        w32(&mut a, data.len() as u32);
        w32(&mut a, stable);
        wop(&mut a, data);
        call(xid, 3, PROC_WRITE3, &a)
    }

    fn tcp() -> NfsParser {
        NfsParser::new(&AppConfig::default(), Transport::Tcp)
    }

    /// Feeds (direction, bytes) in `split`-byte segments, then closes the flow.
    fn run(p: &mut NfsParser, msgs: &[(Direction, Vec<u8>)], split: usize) -> Vec<AppEvent> {
        let mut out = Vec::new();
        for (d, m) in msgs {
            for c in m.chunks(split.max(1)) {
                p.parse(*d, c, 0, &mut out);
            }
        }
        p.close(0, &mut out);
        out
    }

    fn sha256_hex(b: &[u8]) -> String {
        crate::util::hex(&sha2::Sha256::digest(b))
    }

    #[test]
    fn v3_read_named_by_lookup_any_split_and_fragmenting() {
        let body = b"hello, nfs world";
        let (lc, lr) = lookup3(1);
        let (c1, r1) = read3(2, 0, &body[..5], false);
        let (c2, r2) = read3(3, 5, &body[5..10], false);
        let (c3, r3) = read3(4, 10, &body[10..], true);
        for frag in [7, 64, 4096] {
            for split in [1, 3, 50, 10_000] {
                let msgs = [
                    (ToServer, rm(&lc, frag)),
                    (ToClient, rm(&lr, frag)),
                    (ToServer, rm(&c1, frag)),
                    (ToServer, rm(&c2, frag)),
                    (ToServer, rm(&c3, frag)),
                    // Replies out of order: chunks are placed by offset. (The EOF one
                    // closes the file when it comes, as Suricata's file tracker does.)
                    (ToClient, rm(&r2, frag)),
                    (ToClient, rm(&r1, frag)),
                    (ToClient, rm(&r3, frag)),
                ];
                let out = run(&mut tcp(), &msgs, split);
                let f = files(&out);
                assert_eq!(f.len(), 1, "frag {frag} split {split}");
                assert_eq!(f[0].filename, b"report.txt");
                assert_eq!(f[0].direction, ToClient);
                let (_, section) = f[0].eve();
                assert_eq!(
                    section,
                    Some((
                        "nfs",
                        serde_json::json!({"version": 3, "procedure": "READ",
                            "filename": "report.txt", "file_tx": true})
                    ))
                );
                assert_eq!((f[0].size, f[0].state), (16, FileState::Closed));
                assert_eq!(f[0].sha256, sha256_hex(body));
                assert!(anomalies(&out).is_empty());
            }
        }
    }

    #[test]
    fn v3_writes_end_with_file_sync_commit_or_truncated() {
        let (lc, lr) = lookup3(1);
        let name = [(ToServer, rm(&lc, 4096)), (ToClient, rm(&lr, 4096))];
        // FILE_SYNC: one chunk, CLOSED at once.
        let mut msgs = name.to_vec();
        msgs.push((ToServer, rm(&write3(2, 0, b"abc", 2), 4096)));
        let out = run(&mut tcp(), &msgs, 1000);
        let f = files(&out);
        assert_eq!((f.len(), f[0].state, f[0].size), (1, FileState::Closed, 3));
        assert_eq!(f[0].direction, ToServer);
        assert_eq!(f[0].filename, b"report.txt");
        // UNSTABLE writes, then COMMIT.
        let mut commit = Vec::new();
        wop(&mut commit, FH);
        w64(&mut commit, 0);
        w32(&mut commit, 0);
        let mut msgs = name.to_vec();
        msgs.push((ToServer, rm(&write3(2, 0, b"abc", 0), 4096)));
        msgs.push((ToServer, rm(&write3(3, 3, b"def", 0), 4096)));
        msgs.push((ToServer, rm(&call(4, 3, PROC_COMMIT3, &commit), 4096)));
        let out = run(&mut tcp(), &msgs, 1000);
        let f = files(&out);
        assert_eq!((f.len(), f[0].state, f[0].size), (1, FileState::Closed, 6));
        assert_eq!(f[0].sha256, sha256_hex(b"abcdef"));
        // UNSTABLE and no COMMIT: TRUNCATED at flow end, logged without hashes.
        let mut msgs = name.to_vec();
        msgs.push((ToServer, rm(&write3(2, 0, b"abc", 0), 4096)));
        let out = run(&mut tcp(), &msgs, 1000);
        let f = files(&out);
        assert_eq!((f.len(), f[0].state), (1, FileState::Truncated));
        assert!(f[0].eve().0.get("sha256").is_none());
    }

    #[test]
    fn large_reads_and_writes_stream_past_the_buffer() {
        let cfg = AppConfig {
            max_buffer: 1024,
            ..AppConfig::default()
        };
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (c, r) = read3(7, 0, &big, true);
        let w = write3(8, 0, &big, 2);
        for split in [1460, 65_536] {
            let mut p = NfsParser::new(&cfg, Transport::Tcp);
            let msgs = [
                (ToServer, rm(&c, 1 << 20)),
                (ToClient, rm(&r, 32_768)),
                (ToServer, rm(&w, 1 << 20)),
            ];
            let out = run(&mut p, &msgs, split);
            let f = files(&out);
            assert_eq!(f.len(), 2, "split {split}");
            for f in f {
                assert_eq!((f.size, f.state), (200_000, FileState::Closed));
                assert_eq!(f.sha256, sha256_hex(&big));
            }
            assert!(p.sides.iter().all(|s| s.head.capacity() <= 2048));
        }
    }

    #[test]
    fn v2_read_over_udp_ends_at_the_file_size() {
        let mut p = NfsParser::new(&AppConfig::default(), Transport::Udp);
        let fh = [9u8; 32];
        let mut out = Vec::new();
        for (xid, off, data) in [(1u32, 0u32, &b"0123456789"[..]), (2, 10, b"a")] {
            let mut a = fh.to_vec();
            for x in [off, 8192, 0] {
                w32(&mut a, x);
            }
            p.parse(ToServer, &call(xid, 2, PROC_READ, &a), 0, &mut out);
            let mut r = Vec::new();
            w32(&mut r, 0);
            let mut attr = [0u8; 68];
            attr[20..24].copy_from_slice(&11u32.to_be_bytes());
            r.extend_from_slice(&attr);
            wop(&mut r, data);
            p.parse(ToClient, &reply(xid, &r), 0, &mut out);
        }
        let f = files(&out);
        assert_eq!((f.len(), f[0].size, f[0].state), (1, 11, FileState::Closed));
        // No name: Suricata logs NFSv2 files without one.
        assert!(f[0].eve().0.get("filename").is_none());
    }

    #[test]
    fn v4_compound_write_and_read() {
        let mut seq = Vec::new();
        w32(&mut seq, OP4_SEQUENCE);
        seq.extend_from_slice(&[0; 32]);
        let mut a = Vec::new();
        wop(&mut a, b"");
        w32(&mut a, 1);
        w32(&mut a, 4);
        a.extend_from_slice(&seq);
        w32(&mut a, OP4_PUTFH);
        wop(&mut a, FH);
        w32(&mut a, OP4_WRITE);
        a.extend_from_slice(&[0; 16]);
        w64(&mut a, 0);
        w32(&mut a, 2);
        wop(&mut a, b"hello");
        w32(&mut a, OP4_GETATTR);
        w32(&mut a, 1);
        w32(&mut a, 0x18);
        let out = run(&mut tcp(), &[(ToServer, rm(&call(1, 4, 1, &a), 4096))], 9);
        let f = files(&out);
        assert_eq!((f.len(), f[0].size, f[0].state), (1, 5, FileState::Closed));
        // READ: SEQUENCE, PUTFH, READ; the reply's READ carries eof and the data.
        let mut a = Vec::new();
        wop(&mut a, b"");
        w32(&mut a, 1);
        w32(&mut a, 3);
        a.extend_from_slice(&seq);
        w32(&mut a, OP4_PUTFH);
        wop(&mut a, FH);
        w32(&mut a, OP4_READ);
        a.extend_from_slice(&[0; 16]);
        w64(&mut a, 0);
        w32(&mut a, 4096);
        let mut r = Vec::new();
        w32(&mut r, 0);
        wop(&mut r, b"");
        w32(&mut r, 3);
        w32(&mut r, OP4_SEQUENCE);
        w32(&mut r, 0);
        r.extend_from_slice(&[0; 36]);
        w32(&mut r, OP4_PUTFH);
        w32(&mut r, 0);
        w32(&mut r, OP4_READ);
        w32(&mut r, 0);
        w32(&mut r, 1);
        wop(&mut r, b"world!");
        let msgs = [
            (ToServer, rm(&call(2, 4, 1, &a), 4096)),
            (ToClient, rm(&reply(2, &r), 4096)),
        ];
        let out = run(&mut tcp(), &msgs, 5);
        let f = files(&out);
        assert_eq!((f.len(), f[0].size, f[0].state), (1, 6, FileState::Closed));
        assert_eq!(f[0].direction, ToClient);
    }

    #[test]
    fn gap_inside_data_keeps_framing_and_a_lost_frame_resyncs() {
        let (c, r) = read3(5, 0, &[7u8; 3000], true);
        let (c2, r2) = read3(6, 0, b"after", true);
        let mut p = tcp();
        let mut out = Vec::new();
        p.parse(ToServer, &rm(&c, 1 << 20), 0, &mut out);
        p.parse(ToServer, &rm(&c2, 1 << 20), 0, &mut out);
        let rr = rm(&r, 1 << 20);
        p.parse(ToClient, &rr[..1000], 0, &mut out);
        p.gap(ToClient, 500, &mut out);
        p.parse(ToClient, &rr[1500..], 0, &mut out);
        // A gap past the record: the framing is lost until a reply to a known call.
        p.gap(ToClient, 10_000, &mut out);
        let mut junk = vec![0xAB; 37];
        junk.extend_from_slice(&rm(&r2, 1 << 20));
        p.parse(ToClient, &junk, 0, &mut out);
        p.close(0, &mut out);
        let f = files(&out);
        assert_eq!(f.len(), 2);
        assert!(f[0].gaps);
        assert_eq!((f[1].size, f[1].state), (5, FileState::Closed));
    }

    #[test]
    fn malformed_truncated_and_oversized_input() {
        let cfg = AppConfig {
            max_buffer: 4096,
            ..AppConfig::default()
        };
        let (c, r) = read3(1, 0, b"data", true);
        // Truncated messages, bad lengths, a huge record marker, garbage: no panic, no
        // file, and the buffer stays bounded.
        let mut bad_len = r.clone();
        let at = bad_len.len() - 12;
        bad_len[at..at + 4].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        let cases: Vec<Vec<u8>> = vec![
            rm(&r[..r.len() - 6], 4096),
            rm(&bad_len, 4096),
            vec![0x7f, 0xff, 0xff, 0xff, 1, 2, 3],
            (0..20_000u32).map(|i| (i * 7) as u8).collect(),
            rm(&[0u8; 3], 4096),
        ];
        for (i, case) in cases.iter().enumerate() {
            let mut p = NfsParser::new(&cfg, Transport::Tcp);
            let mut out = Vec::new();
            p.parse(ToServer, &rm(&c, 4096), 0, &mut out);
            for chunk in case.chunks(777) {
                p.parse(ToClient, chunk, 0, &mut out);
            }
            assert!(p.sides[1].head.len() <= 4096, "case {i}");
            p.close(0, &mut out);
            assert!(
                files(&out).iter().all(|f| f.state != FileState::Closed),
                "case {i}"
            );
        }
        // Every prefix of every message over UDP.
        let mut p = NfsParser::new(&cfg, Transport::Udp);
        let mut out = Vec::new();
        for m in [&c, &r, &write3(2, 0, b"xyz", 2)] {
            for n in 0..m.len() {
                p.parse(ToServer, &m[..n], 0, &mut out);
                p.parse(ToClient, &m[..n], 0, &mut out);
            }
        }
        assert!(anomalies(&out).len() <= MAX_ANOMALIES);
        assert!(anomalies(&out).iter().all(|a| *a == "malformed_data"));
        // An oversized table of calls stays bounded.
        let cfg = AppConfig {
            smb_max_pending: 16,
            ..AppConfig::default()
        };
        let mut p = NfsParser::new(&cfg, Transport::Udp);
        for xid in 0..1000 {
            p.parse(ToServer, &read3(xid, 0, b"", false).0, 0, &mut out);
        }
        assert!(p.reqs.len() <= 16 && p.req_order.len() <= 16);
    }

    #[test]
    fn probes_rpc_calls_and_replies() {
        let (c, r) = read3(1, 0, b"data", true);
        let tcp_c = rm(&c, 4096);
        assert_eq!(
            probe(Transport::Tcp, ToServer, &tcp_c),
            Probe::Match(AppProto::Nfs)
        );
        assert_eq!(
            probe(Transport::Tcp, ToServer, &tcp_c[..10]),
            Probe::NeedMore
        );
        assert_eq!(
            probe(Transport::Tcp, ToClient, &rm(&r, 4096)),
            Probe::Match(AppProto::Nfs)
        );
        assert_eq!(
            probe(Transport::Udp, ToServer, &c),
            Probe::Match(AppProto::Nfs)
        );
        // A NULL call over UDP (40 bytes) is not enough; another program is not NFS.
        assert_eq!(
            probe(Transport::Udp, ToServer, &call(1, 3, 0, b"")[..40]),
            Probe::NoMatch
        );
        let mut mount = c.clone();
        mount[12..16].copy_from_slice(&100_005u32.to_be_bytes());
        assert_eq!(probe(Transport::Udp, ToServer, &mount), Probe::NoMatch);
        assert_eq!(
            crate::probe(Transport::Udp, ToServer, 900, NFS_PORT, &c),
            Probe::Match(AppProto::Nfs)
        );
        assert_eq!(
            crate::probe(Transport::Udp, ToServer, 900, 2050, &c),
            Probe::NoMatch
        );
    }
}
