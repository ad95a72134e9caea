//! Files carried in transactions (HTTP bodies, SMTP attachments): size, hashes, magic type,
//! and, bounded, the bytes themselves for YARA.

use md5::Md5;
use serde_json::{json, Map, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::util::hex;
use crate::util::json_str;
use crate::{AppProto, Direction};

/// Bytes looked at to detect a file's type.
const MAGIC_PREFIX: usize = 512;

/// Suricata's fileinfo `state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileState {
    /// Still open when logged (not normally emitted).
    Open,
    /// The whole file was seen.
    Closed,
    /// The file ended early: a gap, a limit, or the flow ended mid-file.
    Truncated,
}

impl FileState {
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Open => "OPEN",
            FileState::Closed => "CLOSED",
            FileState::Truncated => "TRUNCATED",
        }
    }
}

/// A file seen in a transaction.
#[derive(Clone, Debug)]
pub struct FileRecord {
    pub proto: AppProto,
    /// The transaction the file belongs to (fileinfo `tx_id`).
    pub tx_id: u64,
    /// The direction the file travelled in (an HTTP upload goes to the server).
    pub direction: Direction,
    /// Raw file name (URI path, Content-Disposition or MIME name).
    pub filename: Vec<u8>,
    pub size: u64,
    /// Lower-case hex digests.
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
    /// Detected type, in libmagic's words where we know them ("PE32 executable ...").
    pub magic: Option<&'static str>,
    pub state: FileState,
    /// Whether bytes were missing (a reassembly gap).
    pub gaps: bool,
    /// Truncated at flow end in a direction whose stream stopped at a hole nobody
    /// acknowledged (the parser never saw that direction end): Suricata then logs no
    /// hash at all; other truncations keep the SHA-256. Set by the sensor.
    pub flow_end: bool,
    /// The first `AppConfig::file_data_limit` bytes of the file.
    pub data: Vec<u8>,
    /// Whether `data` holds the whole file.
    pub data_complete: bool,
    /// The protocol section Suricata writes beside `fileinfo` ("http" or "email"...).
    pub section: Option<(&'static str, Value)>,
    /// Further sections beside `fileinfo`: SMTP files carry `"email"` after `"smtp"`.
    pub extra_sections: Vec<(&'static str, Value)>,
}

impl FileRecord {
    /// The `fileinfo` section value, Suricata 7 format, plus the protocol section that
    /// Suricata puts beside it (e.g. "http": {...}) as `(key, value)` when there is one.
    pub fn eve(&self) -> (Value, Option<(&'static str, Value)>) {
        let mut m = Map::new();
        // Suricata 7 opens HTTP/2 files without a name.
        // Nor NFS files whose handle never had a name (NFSv2, NFSv4, unseen LOOKUP).
        if !(matches!(self.proto, AppProto::Http2 | AppProto::Nfs) && self.filename.is_empty()) {
            m.insert("filename".into(), json_str(&self.filename).into());
        }
        if let Some(magic) = self.magic {
            m.insert("magic".into(), magic.into());
        }
        m.insert("gaps".into(), self.gaps.into());
        m.insert("state".into(), self.state.as_str().into());
        // Suricata 7 logs no hashes for an SMB file that did not end with its CLOSE.
        // Nor for an HTTP/2 file that did not end with a DATA frame's END_STREAM, nor for
        // an NFS file that did not end with EOF, a FILE_SYNC write, COMMIT or CLOSE.
        // Otherwise a TRUNCATED file has its SHA-256 only (Suricata finalizes MD5 and SHA-1
        // on a normal close, the SHA-256 "nonetheless"), and none for `flow_end`.
        let truncated = self.state == FileState::Truncated;
        if !(matches!(self.proto, AppProto::Smb | AppProto::Http2 | AppProto::Nfs) && truncated) {
            if !truncated {
                m.insert("md5".into(), self.md5.clone().into());
                m.insert("sha1".into(), self.sha1.clone().into());
            }
            if !(truncated && self.flow_end) {
                m.insert("sha256".into(), self.sha256.clone().into());
            }
        }
        m.insert("stored".into(), false.into());
        m.insert("size".into(), json!(self.size));
        m.insert("tx_id".into(), json!(self.tx_id));
        (Value::Object(m), self.section.clone())
    }

    /// Sections Suricata writes beside `fileinfo` after the one [`FileRecord::eve`] returns
    /// (SMTP: `"email"`). Empty for HTTP.
    pub fn eve_extra(&self) -> Vec<(&'static str, Value)> {
        self.extra_sections.clone()
    }
}

/// A file being received: hashes and counts as bytes arrive.
pub(crate) struct FileTracker {
    filename: Vec<u8>,
    size: u64,
    md5: Md5,
    sha1: Sha1,
    sha256: Sha256,
    head: Vec<u8>,
    data: Vec<u8>,
    data_limit: usize,
    gaps: bool,
    truncated: bool,
    /// Most bytes tracked; more makes the file TRUNCATED (0: no limit).
    limit: u64,
}

impl std::fmt::Debug for FileTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileTracker")
            .field("filename", &json_str(&self.filename))
            .field("size", &self.size)
            .finish()
    }
}

impl FileTracker {
    pub(crate) fn new(filename: Vec<u8>, data_limit: usize) -> Self {
        FileTracker {
            filename,
            size: 0,
            md5: Md5::new(),
            sha1: Sha1::new(),
            sha256: Sha256::new(),
            head: Vec::new(),
            data: Vec::new(),
            data_limit,
            gaps: false,
            truncated: false,
            limit: 0,
        }
    }

    /// Track at most `limit` bytes (0: no limit); the file is TRUNCATED past it.
    pub(crate) fn with_limit(mut self, limit: u64) -> Self {
        self.limit = limit;
        self
    }

    pub(crate) fn write(&mut self, b: &[u8]) {
        let b = if self.limit > 0 && self.size.saturating_add(b.len() as u64) > self.limit {
            self.truncated = true;
            let room = usize::try_from(self.limit.saturating_sub(self.size)).unwrap_or(usize::MAX);
            &b[..room.min(b.len())]
        } else {
            b
        };
        self.size = self.size.saturating_add(b.len() as u64);
        self.md5.update(b);
        self.sha1.update(b);
        self.sha256.update(b);
        let want = MAGIC_PREFIX.saturating_sub(self.head.len()).min(b.len());
        self.head.extend_from_slice(&b[..want]);
        let want = self.data_limit.saturating_sub(self.data.len()).min(b.len());
        self.data.extend_from_slice(&b[..want]);
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn set_gap(&mut self) {
        self.gaps = true;
    }

    /// The rest of the file will not be seen (a decoding limit): it ends TRUNCATED.
    pub(crate) fn set_truncated(&mut self) {
        self.truncated = true;
    }

    pub(crate) fn finish(
        self,
        proto: AppProto,
        tx_id: u64,
        direction: Direction,
        state: FileState,
        section: Option<(&'static str, Value)>,
    ) -> FileRecord {
        let state = if (self.gaps || self.truncated) && state == FileState::Closed {
            FileState::Truncated
        } else {
            state
        };
        FileRecord {
            proto,
            tx_id,
            direction,
            filename: self.filename,
            size: self.size,
            md5: hex(&self.md5.finalize()),
            sha1: hex(&self.sha1.finalize()),
            sha256: hex(&self.sha256.finalize()),
            magic: magic(&self.head),
            state,
            gaps: self.gaps,
            flow_end: false,
            data_complete: self.data.len() as u64 == self.size,
            data: self.data,
            section,
            extra_sections: Vec::new(),
        }
    }
}

/// The file type of content starting with `b`, in libmagic's words (its first clause).
pub(crate) fn magic(b: &[u8]) -> Option<&'static str> {
    if b.is_empty() {
        return None;
    }
    const SIGS: &[(&[u8], &str)] = &[
        (b"%PDF-", "PDF document"),
        (b"\x7fELF\x01", "ELF 32-bit executable"),
        (b"\x7fELF\x02", "ELF 64-bit executable"),
        (b"PK\x03\x04", "Zip archive data"),
        (b"PK\x05\x06", "Zip archive data (empty)"),
        (b"\x1f\x8b", "gzip compressed data"),
        (b"BZh", "bzip2 compressed data"),
        (b"\xfd7zXZ\x00", "XZ compressed data"),
        (b"7z\xbc\xaf\x27\x1c", "7-zip archive data"),
        (b"Rar!\x1a\x07", "RAR archive data"),
        (b"GIF87a", "GIF image data, version 87a"),
        (b"GIF89a", "GIF image data, version 89a"),
        (b"\x89PNG\r\n\x1a\n", "PNG image data"),
        (b"\xff\xd8\xff", "JPEG image data"),
        (b"BM", "PC bitmap"),
        (b"\x00\x00\x01\x00", "MS Windows icon resource"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            "Composite Document File V2 Document",
        ),
        (b"{\\rtf", "Rich Text Format data"),
        (b"\xca\xfe\xba\xbe", "compiled Java class data"),
        (b"CWS", "Macromedia Flash data (compressed)"),
        (b"FWS", "Macromedia Flash data"),
        (b"\x00asm", "WebAssembly (wasm) binary module"),
        (b"OggS", "Ogg data"),
        (b"ID3", "Audio file with ID3 version 2"),
        (b"#!", "script text executable"),
    ];
    if b.starts_with(b"MZ") {
        return Some(pe_kind(b));
    }
    if let Some((_, name)) = SIGS.iter().find(|(sig, _)| b.starts_with(sig)) {
        return Some(name);
    }
    let text = b
        .iter()
        .all(|&c| c.is_ascii_graphic() || c.is_ascii_whitespace());
    let lead = crate::util::trim(b);
    let starts_ci = |p: &[u8]| lead.len() >= p.len() && lead[..p.len()].eq_ignore_ascii_case(p);
    if starts_ci(b"<!doctype html") || starts_ci(b"<html") || starts_ci(b"<head") {
        return Some(if text {
            "HTML document, ASCII text"
        } else {
            "HTML document"
        });
    }
    if starts_ci(b"<?xml") {
        return Some(if text {
            "XML 1.0 document, ASCII text"
        } else {
            "XML 1.0 document"
        });
    }
    if text {
        if (lead.starts_with(b"{") || lead.starts_with(b"[")) && looks_json(lead) {
            return Some("JSON data");
        }
        return Some("ASCII text");
    }
    if std::str::from_utf8(b).is_ok() {
        return Some("Unicode text, UTF-8 text");
    }
    Some("data")
}

fn looks_json(b: &[u8]) -> bool {
    matches!(
        b.get(1..).and_then(|r| crate::util::trim(r).first()),
        Some(b'"' | b'}' | b']' | b'{' | b'[' | b'0'..=b'9')
    )
}

/// "PE32 executable", "PE32+ executable" or plain DOS, read from the PE header.
fn pe_kind(b: &[u8]) -> &'static str {
    let pe = b
        .get(0x3c..0x40)
        .map(|o| u32::from_le_bytes([o[0], o[1], o[2], o[3]]) as usize)
        .and_then(|off| Some((off, b.get(off..off.checked_add(4)?)?)));
    match pe {
        Some((off, b"PE\0\0")) => {
            // Optional header magic follows the 20-byte COFF header.
            let magic = off.checked_add(24).and_then(|m| b.get(m..m + 2));
            let dll = off
                .checked_add(22)
                .and_then(|c| b.get(c..c + 2))
                .is_some_and(|c| u16::from_le_bytes([c[0], c[1]]) & 0x2000 != 0);
            match (magic, dll) {
                (Some([0x0b, 0x02]), false) => "PE32+ executable, for MS Windows",
                (Some([0x0b, 0x02]), true) => "PE32+ executable (DLL), for MS Windows",
                (_, true) => "PE32 executable (DLL), for MS Windows",
                _ => "PE32 executable, for MS Windows",
            }
        }
        // No PE header (or it lies beyond the bytes kept): a plain DOS executable.
        _ => "MS-DOS executable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_of_abc() {
        let mut t = FileTracker::new(b"/a.txt".to_vec(), 2);
        t.write(b"a");
        t.write(b"bc");
        let r = t.finish(
            AppProto::Http,
            3,
            Direction::ToClient,
            FileState::Closed,
            None,
        );
        assert_eq!(r.size, 3);
        assert_eq!(r.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(r.sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            r.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(r.data, b"ab");
        assert!(!r.data_complete);
        assert_eq!(r.magic, Some("ASCII text"));
        let (v, s) = r.eve();
        assert!(s.is_none());
        assert_eq!(v["filename"], "/a.txt");
        assert_eq!(v["state"], "CLOSED");
        assert_eq!(v["size"], 3);
        assert_eq!(v["tx_id"], 3);
        assert_eq!(v["gaps"], false);
    }

    #[test]
    fn gap_truncates() {
        let mut t = FileTracker::new(Vec::new(), 0);
        t.write(b"x");
        t.set_gap();
        let r = t.finish(
            AppProto::Http,
            0,
            Direction::ToClient,
            FileState::Closed,
            None,
        );
        assert_eq!(r.state, FileState::Truncated);
        assert!(r.gaps);
        // Suricata: a TRUNCATED file has its SHA-256 only, none when the flow ended with
        // the file's direction stuck at a hole (`flow_end`); a CLOSED one has all three.
        let (v, _) = r.eve();
        assert!(v.get("sha256").is_some(), "{v}");
        assert!(v.get("md5").is_none() && v.get("sha1").is_none(), "{v}");
        let mut r = r;
        r.flow_end = true;
        let (v, _) = r.eve();
        assert!(v.get("sha256").is_none() && v.get("md5").is_none(), "{v}");
        r.state = FileState::Closed;
        let (v, _) = r.eve();
        assert!(v.get("sha256").is_some() && v.get("md5").is_some(), "{v}");
    }

    #[test]
    fn magic_table() {
        assert_eq!(magic(b"%PDF-1.4\n"), Some("PDF document"));
        assert_eq!(
            magic(b"<!DOCTYPE html><html></html>"),
            Some("HTML document, ASCII text")
        );
        assert_eq!(magic(b"\x89PNG\r\n\x1a\n\0\0"), Some("PNG image data"));
        assert_eq!(magic(b"{\"a\": 1}"), Some("JSON data"));
        assert_eq!(magic(b"\x00\x01\x02\xff"), Some("data"));
        assert_eq!(magic(b""), None);
        // A minimal PE: e_lfanew = 0x40, "PE\0\0", machine, ..., characteristics, magic 0x10b.
        let mut pe = vec![0u8; 0x60];
        pe[0] = b'M';
        pe[1] = b'Z';
        pe[0x3c] = 0x40;
        pe[0x40..0x44].copy_from_slice(b"PE\0\0");
        pe[0x58] = 0x0b;
        pe[0x59] = 0x01;
        assert_eq!(magic(&pe), Some("PE32 executable, for MS Windows"));
        pe[0x59] = 0x02;
        assert_eq!(magic(&pe), Some("PE32+ executable, for MS Windows"));
        // e_lfanew pointing past the end: no panic.
        pe[0x3c] = 0xff;
        pe[0x3f] = 0xff;
        assert_eq!(magic(&pe), Some("MS-DOS executable"));
    }
}
