//! What the writer adds to events on ingest: asset columns ([`Assets`]) and indicator
//! matches ([`Indicators`]). Loaded once at start-up; a file error stops the start-up with
//! the file, line and field at fault.

use std::path::{Path, PathBuf};

use crate::assets::Assets;
use crate::files::FileError;
use crate::indicators::Indicators;

/// The enrichment data of a running collector.
#[derive(Debug, Default)]
pub struct Enrichment {
    pub assets: Assets,
    pub indicators: Indicators,
}

/// Where the enrichment files are: `DIR/assets.yaml` and `DIR/indicators/` unless given.
#[derive(Debug, Clone)]
pub struct EnrichPaths {
    pub assets: PathBuf,
    pub indicators: PathBuf,
}

impl EnrichPaths {
    pub fn for_dir(dir: &Path) -> EnrichPaths {
        EnrichPaths {
            assets: dir.join("assets.yaml"),
            indicators: dir.join("indicators"),
        }
    }
}

impl Enrichment {
    /// Whether there is nothing to add (the writer then skips parsing addresses).
    pub fn is_empty(&self) -> bool {
        self.assets.is_empty() && self.indicators.is_empty()
    }

    /// Loads both; a missing inventory file or indicator directory means none. Unsupported
    /// STIX patterns are logged (one warning each, with the object id) and kept in
    /// `indicators.unsupported()`.
    pub fn load(paths: &EnrichPaths) -> Result<Enrichment, FileError> {
        let assets = if paths.assets.exists() {
            Assets::load(&paths.assets)?
        } else {
            Assets::default()
        };
        let indicators = Indicators::load_dir(&paths.indicators)?;
        for u in indicators.unsupported() {
            tracing::warn!(id = %u.id, reason = %u.reason, "STIX indicator not used");
        }
        tracing::info!(
            networks = assets.len(),
            indicators = indicators.len(),
            unsupported = indicators.unsupported().len(),
            "enrichment loaded"
        );
        Ok(Enrichment { assets, indicators })
    }
}
