//! Errors of the operator-edited files (asset inventory, indicator lists, STIX bundles,
//! correlation rules): each names the file, the line (and column) and the field at fault.

use std::path::{Path, PathBuf};

/// A problem in an operator file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file could not be read.
    #[error("{path}: {reason}")]
    Read { path: PathBuf, reason: String },
    /// A problem at a known place: `file:line:column: message`.
    #[error("{}:{line}:{column}: {message}", path.display())]
    At {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A problem of the file as a whole (e.g. two entries in conflict, named in the message).
    #[error("{}: {message}", path.display())]
    Whole { path: PathBuf, message: String },
}

/// Reads a whole operator file.
pub fn read(path: &Path) -> Result<String, FileError> {
    std::fs::read_to_string(path).map_err(|e| FileError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// A serde_yaml error placed at its line and column (serde_yaml's message names the field,
/// e.g. `systems[1].level: …`).
pub fn yaml_error(path: &Path, e: &serde_yaml::Error) -> FileError {
    match e.location() {
        Some(loc) => FileError::At {
            path: path.to_owned(),
            line: loc.line(),
            column: loc.column(),
            message: strip_location(&e.to_string()),
        },
        None => FileError::Whole {
            path: path.to_owned(),
            message: e.to_string(),
        },
    }
}

/// serde_yaml appends " at line L column C" to its messages; the error already says where.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// A serde_json error placed at its line and column.
pub fn json_error(path: &Path, e: &serde_json::Error) -> FileError {
    FileError::At {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: strip_location(&e.to_string()),
    }
}

/// Deserializes a scalar through `check`, raising its error while the YAML/JSON scalar is
/// being read, so that serde_yaml places it at the scalar's own line and column.
pub(crate) fn de_checked<'de, D, T>(
    d: D,
    expecting: &'static str,
    check: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct V<T> {
        expecting: &'static str,
        check: fn(&str) -> Result<T, String>,
    }
    impl<T> serde::de::Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
            (self.check)(v).map_err(E::custom)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
            (self.check)(&v.to_string()).map_err(E::custom)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
            (self.check)(&v.to_string()).map_err(E::custom)
        }
    }
    d.deserialize_any(V { expecting, check })
}
