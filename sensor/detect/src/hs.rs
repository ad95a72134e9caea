//! A minimal binding to Hyperscan's literal matcher (libhs 5.4, Debian's
//! `libhyperscan-dev`), the multi-pattern prefilter of the large signature groups.
//!
//! Only what the prefilter needs: compile a set of literals into a block-mode database
//! with `hs_compile_lit_multi`, allocate scratch,
//! scan a buffer and receive each matching pattern id once (`HS_FLAG_SINGLEMATCH`). A
//! [`Database`] is immutable and shared by all workers; a [`Scratch`] is owned by one
//! worker (`DetectState`) and grown to fit every database of the engine it scans with.

#![allow(
    unsafe_code,
    reason = "FFI to libhs: no safe binding exists without bindgen/libclang; every unsafe block states its invariant"
)]

use std::ffi::{c_char, c_int, c_uint, c_ulonglong, c_void, CStr};
use std::ptr::{self, NonNull};

/// `hs_database_t` (opaque).
#[repr(C)]
struct RawDatabase {
    _opaque: [u8; 0],
}

/// `hs_scratch_t` (opaque).
#[repr(C)]
struct RawScratch {
    _opaque: [u8; 0],
}

/// `hs_compile_error_t`.
#[repr(C)]
struct RawCompileError {
    message: *mut c_char,
    expression: c_int,
}

type MatchHandler = unsafe extern "C" fn(
    id: c_uint,
    from: c_ulonglong,
    to: c_ulonglong,
    flags: c_uint,
    context: *mut c_void,
) -> c_int;

const HS_SUCCESS: c_int = 0;
const HS_FLAG_CASELESS: c_uint = 1;
const HS_FLAG_SINGLEMATCH: c_uint = 8;
const HS_MODE_BLOCK: c_uint = 1;

#[link(name = "hs")]
extern "C" {
    fn hs_compile_lit_multi(
        expressions: *const *const c_char,
        flags: *const c_uint,
        ids: *const c_uint,
        lens: *const usize,
        elements: c_uint,
        mode: c_uint,
        platform: *const c_void,
        db: *mut *mut RawDatabase,
        error: *mut *mut RawCompileError,
    ) -> c_int;
    fn hs_free_compile_error(error: *mut RawCompileError) -> c_int;
    fn hs_free_database(db: *mut RawDatabase) -> c_int;
    fn hs_database_size(db: *const RawDatabase, size: *mut usize) -> c_int;
    fn hs_alloc_scratch(db: *const RawDatabase, scratch: *mut *mut RawScratch) -> c_int;
    fn hs_free_scratch(scratch: *mut RawScratch) -> c_int;
    fn hs_scan(
        db: *const RawDatabase,
        data: *const c_char,
        length: c_uint,
        flags: c_uint,
        scratch: *mut RawScratch,
        on_event: Option<MatchHandler>,
        context: *mut c_void,
    ) -> c_int;
    fn hs_valid_platform() -> c_int;
}

/// A Hyperscan failure, with libhs's message or error code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HsError {
    /// The CPU lacks what libhs needs (SSSE3).
    Platform,
    /// `hs_compile_lit_multi` rejected pattern `pattern` (if known).
    Compile {
        pattern: Option<usize>,
        message: String,
    },
    /// Another call failed with libhs's error code.
    Call { what: &'static str, code: i32 },
}

impl std::fmt::Display for HsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HsError::Platform => write!(f, "hyperscan does not run on this CPU (it needs SSSE3)"),
            HsError::Compile {
                pattern: Some(i),
                message,
            } => write!(f, "hyperscan: pattern {i}: {message}"),
            HsError::Compile {
                pattern: None,
                message,
            } => write!(f, "hyperscan: {message}"),
            HsError::Call { what, code } => write!(f, "hyperscan: {what} failed with error {code}"),
        }
    }
}

impl std::error::Error for HsError {}

/// Whether Hyperscan runs on this CPU.
pub(crate) fn platform_ok() -> bool {
    // SAFETY: no arguments; only inspects the CPU.
    unsafe { hs_valid_platform() == HS_SUCCESS }
}

/// A compiled block-mode literal database (immutable; scanned concurrently with one
/// [`Scratch`] per thread).
pub(crate) struct Database {
    raw: NonNull<RawDatabase>,
    /// Longest literal, for scanning inputs longer than `u32::MAX` in overlapping windows.
    max_len: usize,
}

// SAFETY: a database is never written after compilation; libhs documents concurrent scans
// of one database from several threads, each with its own scratch.
unsafe impl Send for Database {}
// SAFETY: as above — every method takes `&self` and libhs only reads the database.
unsafe impl Sync for Database {}

impl Drop for Database {
    fn drop(&mut self) {
        // SAFETY: `raw` came from hs_compile_lit_multi and is freed exactly once, here.
        unsafe {
            hs_free_database(self.raw.as_ptr());
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("hs::Database")
            .field("bytes", &self.size())
            .finish()
    }
}

impl Database {
    /// Compiles `pats` into one database; pattern `i` reports id `i`. Patterns must be
    /// non-empty. (libhs can mix caseless and case-sensitive literals, but such a database
    /// took 15 times the memory and 10 times the time to compile for ET Open's UDP fast
    /// patterns, so a database is one or the other.)
    pub(crate) fn literals(pats: &[Vec<u8>], caseless: bool) -> Result<Database, HsError> {
        if !platform_ok() {
            return Err(HsError::Platform);
        }
        let n = c_uint::try_from(pats.len()).map_err(|_| HsError::Compile {
            pattern: None,
            message: format!("{} patterns are too many", pats.len()),
        })?;
        if let Some(i) = pats.iter().position(|p| p.is_empty()) {
            return Err(HsError::Compile {
                pattern: Some(i),
                message: "empty literal".into(),
            });
        }
        let exprs: Vec<*const c_char> = pats.iter().map(|p| p.as_ptr().cast()).collect();
        let lens: Vec<usize> = pats.iter().map(Vec::len).collect();
        let flag = HS_FLAG_SINGLEMATCH | if caseless { HS_FLAG_CASELESS } else { 0 };
        let flags: Vec<c_uint> = vec![flag; pats.len()];
        let ids: Vec<c_uint> = (0..n).collect();
        let mut db: *mut RawDatabase = ptr::null_mut();
        let mut err: *mut RawCompileError = ptr::null_mut();
        // SAFETY: the four arrays have `n` elements each and outlive the call; each
        // expression pointer is valid for its length (literal mode does not need NUL
        // termination); `platform` NULL means this host; `db`/`err` are out-pointers.
        let rc = unsafe {
            hs_compile_lit_multi(
                exprs.as_ptr(),
                flags.as_ptr(),
                ids.as_ptr(),
                lens.as_ptr(),
                n,
                HS_MODE_BLOCK,
                ptr::null(),
                &mut db,
                &mut err,
            )
        };
        if rc != HS_SUCCESS {
            let e = match NonNull::new(err) {
                Some(e) => {
                    // SAFETY: libhs returned a valid error structure; its message is a
                    // NUL-terminated string owned by it until hs_free_compile_error.
                    let (message, expression) = unsafe {
                        let r = e.as_ref();
                        let m = if r.message.is_null() {
                            String::new()
                        } else {
                            CStr::from_ptr(r.message).to_string_lossy().into_owned()
                        };
                        (m, r.expression)
                    };
                    // SAFETY: freed once, after its fields were copied.
                    unsafe {
                        hs_free_compile_error(e.as_ptr());
                    }
                    HsError::Compile {
                        pattern: usize::try_from(expression).ok(),
                        message,
                    }
                }
                None => HsError::Call {
                    what: "hs_compile_lit_multi",
                    code: rc,
                },
            };
            return Err(e);
        }
        let raw = NonNull::new(db).ok_or(HsError::Call {
            what: "hs_compile_lit_multi (no database)",
            code: rc,
        })?;
        Ok(Database {
            raw,
            max_len: lens.iter().copied().max().unwrap_or(1),
        })
    }

    /// Size of the compiled database in bytes.
    pub(crate) fn size(&self) -> usize {
        let mut n = 0usize;
        // SAFETY: valid database; `n` is an out-pointer.
        let rc = unsafe { hs_database_size(self.raw.as_ptr(), &mut n) };
        if rc == HS_SUCCESS {
            n
        } else {
            0
        }
    }

    /// Calls `f` with the id of every pattern that occurs in `data` (each once per window
    /// of up to 2 GiB; inputs are never that large in practice). `scratch` must have been
    /// prepared for this database with [`Scratch::fit`].
    pub(crate) fn scan<F: FnMut(u32)>(
        &self,
        data: &[u8],
        scratch: &mut Scratch,
        mut f: F,
    ) -> Result<(), HsError> {
        const WINDOW: usize = 1 << 31;
        let s = scratch.raw.ok_or(HsError::Call {
            what: "hs_scan (no scratch)",
            code: -1,
        })?;
        let mut start = 0;
        loop {
            let end = data.len().min(start + WINDOW);
            let part = data.get(start..end).unwrap_or_default();
            let len = c_uint::try_from(part.len()).unwrap_or(c_uint::MAX);
            // SAFETY: `part` is valid for `len` bytes; the scratch was allocated (and is
            // only used) by this thread through `&mut`; the context points to `f`, which
            // outlives the call, and `on_match::<F>` casts it back to that type.
            let rc = unsafe {
                hs_scan(
                    self.raw.as_ptr(),
                    part.as_ptr().cast(),
                    len,
                    0,
                    s.as_ptr(),
                    Some(on_match::<F>),
                    (&mut f as *mut F).cast(),
                )
            };
            if rc != HS_SUCCESS {
                return Err(HsError::Call {
                    what: "hs_scan",
                    code: rc,
                });
            }
            if end >= data.len() {
                return Ok(());
            }
            // Overlap by the longest literal less one, so no match straddling is lost.
            start = end - (self.max_len - 1).min(end - start - 1);
        }
    }
}

/// The match callback: forwards the pattern id to the closure behind `context`.
unsafe extern "C" fn on_match<F: FnMut(u32)>(
    id: c_uint,
    _from: c_ulonglong,
    _to: c_ulonglong,
    _flags: c_uint,
    context: *mut c_void,
) -> c_int {
    // SAFETY: `context` is the `&mut F` that `Database::scan` passed to hs_scan, alive and
    // not otherwise borrowed for the duration of the scan that calls us.
    let f = unsafe { &mut *context.cast::<F>() };
    f(id);
    0
}

/// Per-thread scratch space, grown to fit every database it is prepared for.
#[derive(Default)]
pub(crate) struct Scratch {
    raw: Option<NonNull<RawScratch>>,
    /// The engine whose databases it fits (`Engine::id`), 0 for none.
    pub(crate) engine: u64,
}

// SAFETY: a scratch may move between threads; it is only used through `&mut` (one scan at
// a time), which is what libhs requires.
unsafe impl Send for Scratch {}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("hs::Scratch")
            .field("allocated", &self.raw.is_some())
            .field("engine", &self.engine)
            .finish()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(s) = self.raw.take() {
            // SAFETY: allocated by hs_alloc_scratch, freed once.
            unsafe {
                hs_free_scratch(s.as_ptr());
            }
        }
    }
}

impl Scratch {
    /// Grows the scratch (allocating it the first time) so that `db` can be scanned.
    pub(crate) fn fit(&mut self, db: &Database) -> Result<(), HsError> {
        let mut p = self.raw.map_or(ptr::null_mut(), NonNull::as_ptr);
        // SAFETY: `p` is null or a scratch from hs_alloc_scratch owned by `self`; libhs
        // either keeps it or frees it and returns a new one through the out-pointer.
        let rc = unsafe { hs_alloc_scratch(db.raw.as_ptr(), &mut p) };
        if rc != HS_SUCCESS {
            // On failure libhs leaves the old scratch in place (or none).
            self.raw = NonNull::new(p);
            return Err(HsError::Call {
                what: "hs_alloc_scratch",
                code: rc,
            });
        }
        self.raw = NonNull::new(p);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(db: &Database, s: &mut Scratch, data: &[u8]) -> Vec<u32> {
        let mut v = Vec::new();
        db.scan(data, s, |i| v.push(i)).expect("scan");
        v.sort_unstable();
        v
    }

    fn pats(p: &[&[u8]]) -> Vec<Vec<u8>> {
        p.iter().map(|x| x.to_vec()).collect()
    }

    #[test]
    fn literals_with_case_and_nul_bytes() {
        let p = pats(&[b"evil", b"Exact", b"a\0b", b"vil"]);
        let ci = Database::literals(&p, true).expect("compiles");
        let cs = Database::literals(&p, false).expect("compiles");
        assert!(ci.size() > 0);
        let mut s = Scratch::default();
        s.fit(&ci).expect("scratch");
        s.fit(&cs).expect("scratch");
        assert_eq!(ids(&ci, &mut s, b"..EVIL..exact..a\0b"), vec![0, 1, 2, 3]);
        assert_eq!(ids(&cs, &mut s, b"..EVIL..exact..a\0b"), vec![2]);
        assert_eq!(ids(&cs, &mut s, b"Exact evil"), vec![0, 1, 3]);
        // Each id once per scan, however often it occurs.
        assert_eq!(ids(&ci, &mut s, b"evil evil evil"), vec![0, 3]);
        assert_eq!(ids(&ci, &mut s, b""), Vec::<u32>::new());
        // A literal cut by the end of the input is not a match.
        assert_eq!(ids(&ci, &mut s, b"Exac"), Vec::<u32>::new());
    }

    #[test]
    fn scratch_grows_for_a_second_database() {
        let a = Database::literals(&pats(&[b"abc"]), false).expect("a");
        let many: Vec<Vec<u8>> = (0..2000)
            .map(|i| format!("pattern-{i}-x").into_bytes())
            .collect();
        let b = Database::literals(&many, true).expect("b");
        let mut s = Scratch::default();
        assert!(a.scan(b"abc", &mut s, |_| {}).is_err(), "no scratch yet");
        s.fit(&a).expect("fit a");
        s.fit(&b).expect("fit b");
        assert_eq!(ids(&a, &mut s, b"xxabcxx"), vec![0]);
        assert_eq!(
            ids(&b, &mut s, b"PATTERN-10-X pattern-11-x pattern-13"),
            vec![10, 11]
        );
    }

    #[test]
    fn empty_pattern_is_an_error() {
        let e = Database::literals(&pats(&[b"ok", b""]), false);
        assert!(matches!(
            e,
            Err(HsError::Compile {
                pattern: Some(1),
                ..
            })
        ));
    }
}
