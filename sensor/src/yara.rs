//! YARA scanning of extracted files with `yara-x`, and the optional file store.
//!
//! The rules of a directory of `.yar`/`.yara` files are compiled once at start-up
//! ([`YaraRules::compile_dir`]); a compile error names the file, line and column and aborts
//! start-up. Each file gets its own namespace (the file name without extension), so two
//! files may define rules with the same name. The compiled rules are shared read-only by
//! every worker; each worker scans with its own [`YaraScanner`] when a file closes, and the
//! matches go into the EVE `fileinfo` record as
//! `"yara": {"matches": [{"rule", "namespace", "tags"}], "scanned_bytes": N}`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Errors loading YARA rules or storing files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum YaraError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {title}\n{report}")]
    Compile {
        path: PathBuf,
        line: usize,
        column: usize,
        title: String,
        report: String,
    },
    #[error("{dir}: no .yar or .yara files")]
    Empty { dir: PathBuf },
}

/// Compiled YARA rules, shared read-only by every worker.
///
/// `yara_x::Scanner` borrows its `Rules`; a worker keeps one scanner for the whole run, so
/// the rules must outlive every worker. They are compiled once per process at start-up
/// and kept for the process lifetime (one leaked allocation), which gives the scanners a
/// `'static` borrow without `unsafe`.
#[derive(Clone, Copy)]
pub struct YaraRules {
    rules: &'static yara_x::Rules,
    count: usize,
}

impl std::fmt::Debug for YaraRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YaraRules")
            .field("rules", &self.count)
            .finish()
    }
}

/// Line and column (1-based) of byte offset `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(at, |nl| at - nl - 1) + 1;
    (line, column)
}

impl YaraRules {
    /// Compiles every `.yar`/`.yara` file in `dir` (sorted by name, not recursive).
    pub fn compile_dir(dir: &Path) -> Result<Self, YaraError> {
        let io = |source| YaraError::Io {
            path: dir.into(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .is_some_and(|e| e.eq_ignore_ascii_case("yar") || e == "yara")
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(YaraError::Empty { dir: dir.into() });
        }
        let mut texts = Vec::with_capacity(files.len());
        for p in &files {
            let text = std::fs::read_to_string(p).map_err(|source| YaraError::Io {
                path: p.clone(),
                source,
            })?;
            texts.push(text);
        }
        let mut c = yara_x::Compiler::new();
        for (p, text) in files.iter().zip(&texts) {
            let ns = p
                .file_stem()
                .map_or_else(|| "default".into(), |s| s.to_string_lossy().into_owned());
            c.new_namespace(&ns);
            let origin = p.display().to_string();
            if let Err(e) =
                c.add_source(yara_x::SourceCode::from(text.as_str()).with_origin(origin))
            {
                let at = e.labels().next().map_or(0, |l| l.span().0.start as usize);
                let (line, column) = line_col(text, at);
                return Err(YaraError::Compile {
                    path: p.clone(),
                    line,
                    column,
                    title: e.title().to_string(),
                    report: e.to_string(),
                });
            }
        }
        let rules = c.build();
        let count = rules.iter().len();
        Ok(YaraRules {
            rules: Box::leak(Box::new(rules)),
            count,
        })
    }

    /// Number of rules compiled.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// One rule that matched a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YaraMatch {
    pub rule: String,
    pub namespace: String,
    pub tags: Vec<String>,
}

/// The outcome of scanning one file.
#[derive(Clone, Debug, Default)]
pub struct ScanOutcome {
    pub matches: Vec<YaraMatch>,
    pub scanned_bytes: usize,
    /// Why the scan stopped early (e.g. "timeout"), if it did.
    pub error: Option<String>,
}

impl ScanOutcome {
    /// The EVE `fileinfo.yara` value.
    pub fn eve(&self) -> serde_json::Value {
        let matches: Vec<serde_json::Value> = self
            .matches
            .iter()
            .map(
                |m| serde_json::json!({ "rule": m.rule, "namespace": m.namespace, "tags": m.tags }),
            )
            .collect();
        let mut v = serde_json::json!({ "matches": matches, "scanned_bytes": self.scanned_bytes });
        if let (Some(e), Some(m)) = (&self.error, v.as_object_mut()) {
            m.insert("error".into(), e.as_str().into());
        }
        v
    }
}

/// A worker's scanner over the shared rules.
pub struct YaraScanner {
    scanner: yara_x::Scanner<'static>,
}

impl YaraScanner {
    pub fn new(rules: YaraRules, timeout: Duration) -> Self {
        let mut scanner = yara_x::Scanner::new(rules.rules);
        scanner.set_timeout(timeout);
        YaraScanner { scanner }
    }

    /// Scans `data` (a file's bytes, or its first bytes when it was bigger than the limit).
    pub fn scan(&mut self, data: &[u8]) -> ScanOutcome {
        let mut out = ScanOutcome {
            scanned_bytes: data.len(),
            ..Default::default()
        };
        match self.scanner.scan(data) {
            Ok(r) => {
                for rule in r.matching_rules() {
                    out.matches.push(YaraMatch {
                        rule: rule.identifier().to_string(),
                        namespace: rule.namespace().to_string(),
                        tags: rule.tags().map(|t| t.identifier().to_string()).collect(),
                    });
                }
            }
            Err(e) => out.error = Some(e.to_string()),
        }
        out
    }
}

/// Stores files by SHA-256 as `<dir>/ab/abcdef…` (the first two hex digits name a
/// subdirectory), each written once, atomically (a temporary file renamed into place).
#[derive(Clone, Debug)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    pub fn new(dir: &Path) -> Result<Self, YaraError> {
        std::fs::create_dir_all(dir).map_err(|source| YaraError::Io {
            path: dir.into(),
            source,
        })?;
        Ok(FileStore { dir: dir.into() })
    }

    /// Where a file with this SHA-256 (lower-case hex) is stored.
    pub fn path_of(&self, sha256: &str) -> Option<PathBuf> {
        let ok = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
        let sub = sha256.get(..2).filter(|_| ok)?;
        Some(self.dir.join(sub).join(sha256))
    }

    /// Stores `data` under its SHA-256 unless it is there already. Returns true when the
    /// file is in the store afterwards.
    pub fn store(&self, sha256: &str, data: &[u8]) -> Result<bool, YaraError> {
        let Some(path) = self.path_of(sha256) else {
            return Ok(false);
        };
        if path.exists() {
            return Ok(true);
        }
        let io = |source| YaraError::Io {
            path: path.clone(),
            source,
        };
        let parent = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent).map_err(io)?;
        let tmp = parent.join(format!(
            ".{sha256}.{}.{:?}.tmp",
            std::process::id(),
            std::thread::current().id()
        ));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        Ok(true)
    }
}

/// Counters of file inspection (EVE `stats.file_store` and `stats.yara`).
#[derive(Clone, Debug, Default)]
pub struct FileStats {
    /// Files scanned with YARA, files with at least one match, rule matches in all.
    pub scanned: u64,
    pub matched: u64,
    pub rule_matches: u64,
    /// Scans that stopped early (timeout or another scan error).
    pub scan_errors: u64,
    /// Files written to the store, files already there, files too big or incomplete to
    /// store, and write errors.
    pub stored: u64,
    pub store_dups: u64,
    pub store_skipped: u64,
    pub store_errors: u64,
}

/// What a worker does with each closed file: YARA scan and, optionally, storing it.
pub struct FileInspector {
    scanner: Option<YaraScanner>,
    store: Option<FileStore>,
    pub stats: FileStats,
}

impl FileInspector {
    /// The inspector `cfg` asks for, or None when files are neither scanned nor stored.
    pub fn from_config(cfg: &crate::SensorConfig) -> Option<Self> {
        let scanner = cfg
            .yara
            .map(|r| YaraScanner::new(r, Duration::from_secs(cfg.files.yara_timeout.max(1))));
        // The directory was created when the configuration was loaded; a failure here
        // shows up as store errors.
        let store = cfg
            .files
            .store_dir
            .as_deref()
            .map(|d| FileStore { dir: d.into() });
        (scanner.is_some() || store.is_some()).then_some(FileInspector {
            scanner,
            store,
            stats: FileStats::default(),
        })
    }

    /// Scans and stores `file`, adding `yara` and setting `stored` in its EVE `fileinfo`
    /// value `info`.
    pub fn inspect(&mut self, file: &khien_applayer::FileRecord, info: &mut serde_json::Value) {
        if let Some(s) = self.scanner.as_mut() {
            let out = s.scan(&file.data);
            self.stats.scanned += 1;
            if !out.matches.is_empty() {
                self.stats.matched += 1;
                self.stats.rule_matches += out.matches.len() as u64;
            }
            if out.error.is_some() {
                self.stats.scan_errors += 1;
            }
            if let Some(m) = info.as_object_mut() {
                m.insert("yara".into(), out.eve());
            }
        }
        if let Some(st) = &self.store {
            // Only whole files are stored: a prefix under the file's hash would be wrong.
            if !file.data_complete || file.state != khien_applayer::FileState::Closed {
                self.stats.store_skipped += 1;
                return;
            }
            let existed = st.path_of(&file.sha256).is_some_and(|p| p.exists());
            match st.store(&file.sha256, &file.data) {
                Ok(true) => {
                    if existed {
                        self.stats.store_dups += 1;
                    } else {
                        self.stats.stored += 1;
                    }
                    if let Some(m) = info.as_object_mut() {
                        m.insert("stored".into(), true.into());
                    }
                }
                Ok(false) => self.stats.store_skipped += 1,
                Err(e) => {
                    self.stats.store_errors += 1;
                    tracing::trace!(error = %e, "file store");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("khien-yara-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn compiles_a_directory_and_scans() {
        let d = tmpdir("ok");
        std::fs::write(
            d.join("one.yar"),
            "rule hello : greeting test { strings: $a = \"hello\" condition: $a }\n",
        )
        .unwrap();
        std::fs::write(
            d.join("two.yara"),
            "rule hello { condition: filesize > 100 }\nrule small { condition: filesize < 10 }\n",
        )
        .unwrap();
        std::fs::write(d.join("notes.txt"), "not a rule file").unwrap();
        let rules = YaraRules::compile_dir(&d).unwrap();
        assert_eq!(rules.len(), 3);
        let mut s = YaraScanner::new(rules, Duration::from_secs(5));
        let out = s.scan(b"say hello to everyone");
        assert_eq!(
            out.matches,
            vec![YaraMatch {
                rule: "hello".into(),
                namespace: "one".into(),
                tags: vec!["greeting".into(), "test".into()],
            }]
        );
        assert_eq!(out.scanned_bytes, 21);
        let v = out.eve();
        assert_eq!(v["matches"][0]["namespace"], "one");
        assert_eq!(v["matches"][0]["tags"][1], "test");
        let out = s.scan(b"bye");
        assert_eq!(out.matches.len(), 1);
        assert_eq!(out.matches[0].rule, "small");
        assert_eq!(out.matches[0].namespace, "two");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn compile_errors_name_file_and_line() {
        let d = tmpdir("bad");
        std::fs::write(d.join("a.yar"), "rule fine { condition: true }\n").unwrap();
        std::fs::write(
            d.join("b.yar"),
            "rule ok { condition: true }\n\nrule broken {\n  condition: $missing\n}\n",
        )
        .unwrap();
        let e = YaraRules::compile_dir(&d).unwrap_err().to_string();
        let want = format!("{}:4:", d.join("b.yar").display());
        assert!(e.starts_with(&want), "{e}");
        assert!(e.contains("$missing"), "{e}");
        std::fs::write(d.join("b.yar"), "rule {").unwrap();
        let e = YaraRules::compile_dir(&d).unwrap_err().to_string();
        assert!(e.contains("b.yar:1:"), "{e}");
        let empty = tmpdir("empty");
        let e = YaraRules::compile_dir(&empty).unwrap_err().to_string();
        assert!(e.contains("no .yar"), "{e}");
        assert!(YaraRules::compile_dir(&d.join("nope")).is_err());
        std::fs::remove_dir_all(&d).unwrap();
        std::fs::remove_dir_all(&empty).unwrap();
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_col("ab\ncd\nef", 0), (1, 1));
        assert_eq!(line_col("ab\ncd\nef", 4), (2, 2));
        assert_eq!(line_col("ab\ncd\nef", 99), (3, 3));
    }

    #[test]
    fn store_by_sha256_once() {
        let d = tmpdir("store");
        let s = FileStore::new(&d).unwrap();
        let sha = "ab".repeat(32);
        assert!(s.store(&sha, b"content").unwrap());
        let p = d.join("ab").join(&sha);
        assert_eq!(std::fs::read(&p).unwrap(), b"content");
        // A second store of the same hash leaves the first copy.
        assert!(s.store(&sha, b"other").unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"content");
        assert!(!s.store("../../etc/passwd", b"x").unwrap());
        assert_eq!(std::fs::read_dir(d.join("ab")).unwrap().count(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
