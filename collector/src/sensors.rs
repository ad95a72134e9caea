//! Sensor registry: one bearer token per sensor, of which only the SHA-256 is stored
//! (`DIR/sensors.json`). The tenant of every event comes from its sensor's entry here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{io_err, write_atomic, Error, Result};

/// One registered sensor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sensor {
    /// Unique name, e.g. `hanoi-edge-1`.
    pub name: String,
    /// Tenant (agency) whose events this sensor sends.
    pub tenant: String,
    /// Hex SHA-256 of the token.
    pub token_sha256: String,
    /// Creation time, Unix seconds.
    pub created: u32,
    /// A revoked sensor's token is refused.
    #[serde(default)]
    pub revoked: bool,
}

/// The registry file.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    pub sensors: Vec<Sensor>,
}

/// Hex SHA-256 of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Tenant and sensor names: 1–64 characters of `[A-Za-z0-9_.-]`.
pub fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl Registry {
    fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("sensors.json")
    }

    /// Loads the registry (empty if the file does not exist yet).
    pub fn load(data_dir: &Path) -> Result<Registry> {
        let path = Self::path(data_dir);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::BadFile {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Registry::default()),
            Err(e) => Err(Error::Io { path, source: e }),
        }
    }

    fn save(&self, data_dir: &Path) -> Result<()> {
        std::fs::create_dir_all(data_dir).map_err(io_err(data_dir))?;
        let json = serde_json::to_vec_pretty(self).unwrap_or_default();
        write_atomic(&Self::path(data_dir), &json)
    }

    /// Registers a sensor and returns its new token (shown once, never stored).
    pub fn add(data_dir: &Path, tenant: &str, name: &str) -> Result<String> {
        if !valid_name(tenant) || !valid_name(name) {
            return Err(Error::Sensors(format!(
                "tenant `{tenant}` / name `{name}`: use 1-64 characters of A-Z a-z 0-9 _ . -"
            )));
        }
        let mut reg = Self::load(data_dir)?;
        if reg.sensors.iter().any(|s| s.name == name) {
            return Err(Error::Sensors(format!(
                "a sensor named `{name}` already exists"
            )));
        }
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut secret).map_err(|e| Error::Sensors(e.to_string()))?;
        let token = format!("khs_{}", hex::encode(secret));
        reg.sensors.push(Sensor {
            name: name.to_owned(),
            tenant: tenant.to_owned(),
            token_sha256: token_hash(&token),
            created: crate::schema::now_secs(),
            revoked: false,
        });
        reg.save(data_dir)?;
        Ok(token)
    }

    /// Revokes a sensor's token.
    pub fn revoke(data_dir: &Path, name: &str) -> Result<()> {
        let mut reg = Self::load(data_dir)?;
        let s = reg
            .sensors
            .iter_mut()
            .find(|s| s.name == name)
            .ok_or_else(|| Error::Sensors(format!("no sensor named `{name}`")))?;
        s.revoked = true;
        reg.save(data_dir)
    }

    /// Active (non-revoked) sensors by token hash.
    pub fn by_hash(&self) -> HashMap<String, Sensor> {
        self.sensors
            .iter()
            .filter(|s| !s.revoked)
            .map(|s| (s.token_sha256.clone(), s.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let t = Registry::add(dir.path(), "hanoi", "edge-1").unwrap();
        assert!(t.starts_with("khs_") && t.len() == 68);
        let text = std::fs::read_to_string(dir.path().join("sensors.json")).unwrap();
        assert!(!text.contains(&t), "the token itself must not be stored");
        let reg = Registry::load(dir.path()).unwrap();
        assert_eq!(reg.by_hash()[&token_hash(&t)].tenant, "hanoi");
        assert!(Registry::add(dir.path(), "hanoi", "edge-1").is_err());
        assert!(Registry::add(dir.path(), "ha noi", "edge-2").is_err());
        Registry::revoke(dir.path(), "edge-1").unwrap();
        assert!(Registry::load(dir.path()).unwrap().by_hash().is_empty());
    }
}
