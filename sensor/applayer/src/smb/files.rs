//! SMB (and NFS) files: data placed at file offsets (reads and writes may come out of order),
//! hashed in offset order, the out-of-order part held within a per-flow budget.

use std::collections::HashMap;

use crate::file::{FileState, FileTracker};
use crate::{AppEvent, AppProto, Direction};

/// A file id: an SMB2 FileId (16 bytes) or an SMB1 FID (2 bytes, then zeros and a 1).
pub(crate) type Fid = [u8; 16];

/// What is known of a file id from its CREATE: name and whether it is a named pipe.
#[derive(Clone, Debug)]
pub(crate) struct FidInfo {
    pub name: Vec<u8>,
    pub pipe: bool,
}

/// A file being transferred in one direction.
struct OpenFile {
    t: FileTracker,
    tx_id: u64,
    /// The next offset to hash.
    next: u64,
    /// Chunks not at `next`, by offset.
    ooo: HashMap<u64, Vec<u8>>,
    ooo_bytes: usize,
    /// Bytes were dropped (budget): the file cannot be complete.
    lost: bool,
    /// The protocol section logged beside `fileinfo` (NFS).
    section: Option<(&'static str, serde_json::Value)>,
}

/// The open files of one flow.
pub(crate) struct Files {
    open: HashMap<(Fid, usize), OpenFile>,
    /// Order of opening, for eviction when the table is full.
    order: Vec<(Fid, usize)>,
    max_files: usize,
    ooo_budget: usize,
    ooo_total: usize,
    data_limit: usize,
    tx: u64,
    /// The protocol the files are logged under (SMB, or NFS which shares this tracker).
    proto: AppProto,
}

fn direction(d: usize) -> Direction {
    if d == 0 {
        Direction::ToServer
    } else {
        Direction::ToClient
    }
}

impl Files {
    pub(crate) fn new(max_files: usize, ooo_budget: usize, data_limit: usize) -> Self {
        Files {
            open: HashMap::new(),
            order: Vec::new(),
            max_files: max_files.max(1),
            ooo_budget,
            ooo_total: 0,
            data_limit,
            tx: 0,
            proto: AppProto::Smb,
        }
    }

    /// The same tracker for another protocol's files (NFS).
    pub(crate) fn with_proto(mut self, proto: AppProto) -> Self {
        self.proto = proto;
        self
    }

    /// `data` of file `fid` (named `name`) at `offset`, travelling in direction `dir`.
    /// The first write opens the file, even an empty one (an empty READ response opens
    /// an empty file in Suricata too).
    pub(crate) fn write(
        &mut self,
        fid: Fid,
        dir: usize,
        name: &[u8],
        offset: u64,
        data: &[u8],
        out: &mut Vec<AppEvent>,
    ) {
        let key = (fid, dir);
        if !self.open.contains_key(&key) {
            if self.open.len() >= self.max_files {
                // The oldest open file ends here, truncated.
                if let Some(old) = self.order.first().copied() {
                    self.finish(old, FileState::Truncated, out);
                }
            }
            self.tx += 1;
            self.open.insert(
                key,
                OpenFile {
                    t: FileTracker::new(name.to_vec(), self.data_limit),
                    tx_id: self.tx,
                    next: 0,
                    ooo: HashMap::new(),
                    ooo_bytes: 0,
                    lost: false,
                    section: None,
                },
            );
            self.order.push(key);
        }
        let Some(f) = self.open.get_mut(&key) else {
            return;
        };
        if offset == f.next {
            f.t.write(data);
            f.next = offset.saturating_add(data.len() as u64);
            // Chunks stored at exactly the new end follow, in offset order.
            while let Some(b) = f.ooo.remove(&f.next) {
                f.ooo_bytes -= b.len();
                self.ooo_total -= b.len();
                f.t.write(&b);
                f.next = f.next.saturating_add(b.len() as u64);
            }
            return;
        }
        // Out of order. Like Suricata's file tracker, a chunk is stored under its offset
        // (more data at the same offset is appended to it) and written only when the file
        // reaches exactly that offset: a re-read of bytes already written, or a chunk
        // overlapping them, is never written.
        if self.ooo_total.saturating_add(data.len()) > self.ooo_budget {
            f.lost = true;
            return;
        }
        f.ooo.entry(offset).or_default().extend_from_slice(data);
        f.ooo_bytes += data.len();
        self.ooo_total += data.len();
    }

    /// The section logged beside the `fileinfo` of file `fid` in `dir`, if it has none yet.
    pub(crate) fn set_section(
        &mut self,
        fid: Fid,
        dir: usize,
        section: impl FnOnce() -> (&'static str, serde_json::Value),
    ) {
        if let Some(f) = self.open.get_mut(&(fid, dir)) {
            if f.section.is_none() {
                f.section = Some(section());
            }
        }
    }

    /// Whether a file `fid` is open in direction `dir`.
    pub(crate) fn is_open(&self, fid: &Fid, dir: usize) -> bool {
        self.open.contains_key(&(*fid, dir))
    }

    /// Bytes of file `fid` in `dir` are missing (a stream gap inside its data).
    pub(crate) fn gap(&mut self, fid: Fid, dir: usize) {
        if let Some(f) = self.open.get_mut(&(fid, dir)) {
            f.t.set_gap();
        }
    }

    /// CLOSE of `fid`: its files in both directions end.
    pub(crate) fn close(&mut self, fid: Fid, out: &mut Vec<AppEvent>) {
        for d in 0..2 {
            if self.open.contains_key(&(fid, d)) {
                self.finish((fid, d), FileState::Closed, out);
            }
        }
    }

    /// The file `fid` in direction `dir` ends (a READ past its end).
    pub(crate) fn close_dir(&mut self, fid: Fid, dir: usize, out: &mut Vec<AppEvent>) {
        if self.open.contains_key(&(fid, dir)) {
            self.finish((fid, dir), FileState::Closed, out);
        }
    }

    /// End of flow: every open file ends truncated.
    pub(crate) fn close_all(&mut self, out: &mut Vec<AppEvent>) {
        for k in std::mem::take(&mut self.order) {
            self.finish(k, FileState::Truncated, out);
        }
    }

    fn finish(&mut self, key: (Fid, usize), state: FileState, out: &mut Vec<AppEvent>) {
        self.order.retain(|k| *k != key);
        let Some(mut f) = self.open.remove(&key) else {
            return;
        };
        self.ooo_total -= f.ooo_bytes;
        if f.lost {
            // Data was dropped (out-of-order budget): the file is incomplete. Chunks still
            // held at CLOSE are dropped silently, as Suricata does.
            f.t.set_truncated();
        }
        let rec =
            f.t.finish(self.proto, f.tx_id, direction(key.1), state, f.section);
        out.push(AppEvent::File(rec));
    }

    #[cfg(test)]
    pub(crate) fn open_count(&self) -> usize {
        self.open.len()
    }

    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.ooo_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::files;

    #[test]
    fn out_of_order_and_repeated_chunks_hash_in_offset_order() {
        let mut fs = Files::new(4, 1 << 20, 0);
        let mut out = Vec::new();
        let fid = [1; 16];
        fs.write(fid, 1, b"f", 6, b"ghi", &mut out);
        fs.write(fid, 1, b"f", 3, b"def", &mut out);
        assert_eq!(fs.held(), 6);
        fs.write(fid, 1, b"f", 0, b"abc", &mut out);
        assert_eq!(fs.held(), 0);
        // A re-read of the start and an overlapping chunk are never written.
        fs.write(fid, 1, b"f", 0, b"abcdefghi", &mut out);
        fs.write(fid, 1, b"f", 8, b"iXYZ", &mut out);
        fs.close(fid, &mut out);
        assert_eq!(fs.held(), 0);
        let f = files(&out);
        assert_eq!((f.len(), f[0].size, f[0].state), (1, 9, FileState::Closed));
        // sha256("abcdefghi")
        assert_eq!(
            f[0].sha256,
            "19cc02f26df43cc571bc9ed7b0c4d29224a3ec229529221725ef76d021c8326f"
        );
        // An empty read opens an empty file.
        fs.write([2; 16], 1, b"e", 0, b"", &mut out);
        fs.close([2; 16], &mut out);
        assert_eq!(files(&out)[1].size, 0);
    }

    #[test]
    fn budget_and_table_are_bounded() {
        let mut fs = Files::new(2, 4, 0);
        let mut out = Vec::new();
        fs.write([1; 16], 0, b"a", 10, b"xyz", &mut out);
        // Past the out-of-order budget: dropped, and the file ends truncated.
        fs.write([1; 16], 0, b"a", 20, b"toolong", &mut out);
        assert_eq!(fs.held(), 3);
        fs.write([2; 16], 0, b"b", 0, b"x", &mut out);
        // A third file evicts the oldest, which ends truncated.
        fs.write([3; 16], 1, b"c", 0, b"y", &mut out);
        assert_eq!(fs.held(), 0);
        fs.close_all(&mut out);
        let f = files(&out);
        assert_eq!(f.len(), 3);
        assert!(f.iter().all(|f| f.state == FileState::Truncated));
    }
}
