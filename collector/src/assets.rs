//! The asset inventory: which agency, information system and security level (cấp độ 1–5 of
//! Decree 85/2016/NĐ-CP, carried on by Decree 331/2026/NĐ-CP) each network belongs to.
//!
//! File `DIR/assets.yaml` (or `serve --assets FILE`):
//!
//! ```yaml
//! systems:
//!   - agency: Sở Thông tin và Truyền thông Hà Nội
//!     system: Cổng dịch vụ công
//!     level: 4
//!     networks: [10.20.0.0/16, "2001:db8:20::/48"]
//! ```
//!
//! Every stored event is enriched on ingest (`asset_agency`, `asset_system`, `asset_level`,
//! `asset_side`): the side is `dest` when the destination address is in the inventory, else
//! `src` when the source is, else none (level 0). For an alert, the destination is the
//! attacked side when the alert is `to_server`, and an internal client that receives an
//! attack `to_client` is the destination too, so "destination first" names the protected
//! asset in both cases. The longest matching prefix wins.
//!
//! Severity rule (alerts and intel alerts): a hit on a level 4 or 5 system raises the
//! severity to 1 (highest); a hit on a level 3 system raises it to at least 2; levels 1–2
//! leave it as the sensor wrote it. The original is still in `raw`.

use std::path::Path;

use serde::Deserialize;

use crate::files::{self, FileError};
use crate::prefix::{Addrs, Net, PrefixMap};

/// One information system of the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    pub agency: String,
    pub system: String,
    /// Security level 1–5 (cấp độ).
    pub level: u8,
}

/// Which address of an event is in the inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Src,
    Dest,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Src => "src",
            Side::Dest => "dest",
        }
    }
}

/// The loaded inventory.
#[derive(Debug, Clone, Default)]
pub struct Assets {
    nets: PrefixMap<Asset>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    systems: Vec<SystemDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SystemDoc {
    agency: NonEmpty,
    system: NonEmpty,
    level: Level,
    networks: Vec<NetDoc>,
}

/// A non-empty string (validated while deserializing, so errors carry the line).
#[derive(Debug)]
pub(crate) struct NonEmpty(pub String);

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        files::de_checked(d, "a non-empty string", |s| {
            if s.trim().is_empty() {
                Err("must not be empty".into())
            } else {
                Ok(NonEmpty(s.trim().to_owned()))
            }
        })
    }
}

#[derive(Debug)]
struct Level(u8);

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        files::de_checked(d, "a security level 1–5", |s| match s.parse::<u8>() {
            Ok(l @ 1..=5) => Ok(Level(l)),
            _ => Err(format!("security level `{s}` is not 1–5 (cấp độ 1–5)")),
        })
    }
}

#[derive(Debug)]
struct NetDoc(Net);

impl<'de> Deserialize<'de> for NetDoc {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        files::de_checked(d, "a network (CIDR or address)", |s| s.parse().map(NetDoc))
    }
}

impl Assets {
    /// Loads and validates an inventory file.
    pub fn load(path: &Path) -> Result<Assets, FileError> {
        Assets::parse(path, &files::read(path)?)
    }

    /// Parses inventory text; `path` is only used in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Assets, FileError> {
        let doc: FileDoc = serde_yaml::from_str(text).map_err(|e| files::yaml_error(path, &e))?;
        let mut nets = PrefixMap::default();
        for s in doc.systems {
            let asset = Asset {
                agency: s.agency.0,
                system: s.system.0,
                level: s.level.0,
            };
            for NetDoc(net) in s.networks {
                if let Err(first) = nets.insert(net, asset.clone()) {
                    return Err(FileError::Whole {
                        path: path.to_owned(),
                        message: format!(
                            "network {net} is listed by `{} / {}` and again by `{} / {}`",
                            first.agency, first.system, asset.agency, asset.system
                        ),
                    });
                }
            }
        }
        Ok(Assets { nets })
    }

    /// Number of networks.
    pub fn len(&self) -> usize {
        self.nets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The system an address belongs to.
    pub fn lookup(&self, ip: &str) -> Option<&Asset> {
        self.nets.lookup_str(ip)
    }

    /// The asset side of an event: the destination if it is in the inventory, else the source.
    pub fn locate(&self, src: &str, dest: &str) -> Option<(Side, &Asset)> {
        if self.nets.is_empty() {
            return None;
        }
        self.locate_addrs(&Addrs::parse(src, dest))
    }

    /// [`locate`](Self::locate) with the addresses already parsed.
    pub fn locate_addrs(&self, a: &Addrs) -> Option<(Side, &Asset)> {
        if self.nets.is_empty() {
            return None;
        }
        let find = |ip: Option<std::net::IpAddr>| ip.and_then(|ip| self.nets.lookup(ip));
        find(a.dest)
            .map(|x| (Side::Dest, x))
            .or_else(|| find(a.src).map(|x| (Side::Src, x)))
    }
}

/// The severity an alert gets when it hits a system of `level` (0 = not in the inventory):
/// level ≥ 4 → 1, level 3 → at most 2, else unchanged (1 is the highest severity).
pub fn raise_severity(severity: u8, level: u8) -> u8 {
    match level {
        4.. => 1,
        3 if severity == 0 || severity > 2 => 2,
        _ => severity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
systems:
  - agency: Sở Thông tin và Truyền thông Hà Nội
    system: Cổng dịch vụ công
    level: 4
    networks: [10.20.0.0/16, \"2001:db8:20::/48\"]
  - agency: Sở Thông tin và Truyền thông Hà Nội
    system: Máy chủ CSDL
    level: 2
    networks:
      - 10.20.5.0/24
";

    #[test]
    fn lookup_and_side() {
        let a = Assets::parse(Path::new("assets.yaml"), GOOD).unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a.lookup("10.20.1.1").unwrap().level, 4);
        assert_eq!(a.lookup("10.20.5.9").unwrap().system, "Máy chủ CSDL");
        assert_eq!(
            a.lookup("2001:0db8:0020:0000:0000:0000:0000:0001")
                .unwrap()
                .level,
            4
        );
        let (side, asset) = a.locate("203.0.113.5", "10.20.1.1").unwrap();
        assert_eq!((side, asset.level), (Side::Dest, 4));
        let (side, _) = a.locate("10.20.1.1", "8.8.8.8").unwrap();
        assert_eq!(side, Side::Src);
        assert!(a.locate("8.8.8.8", "1.1.1.1").is_none());
        assert!(Assets::default().locate("10.20.1.1", "10.20.1.1").is_none());
    }

    #[test]
    fn severity_rule() {
        assert_eq!(raise_severity(3, 4), 1);
        assert_eq!(raise_severity(2, 5), 1);
        assert_eq!(raise_severity(3, 3), 2);
        assert_eq!(raise_severity(1, 3), 1);
        assert_eq!(raise_severity(3, 2), 3);
        assert_eq!(raise_severity(3, 0), 3);
    }

    fn err(text: &str) -> String {
        Assets::parse(Path::new("/etc/khien/assets.yaml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn malformed_inventories_name_file_line_and_field() {
        let e = err("systems:\n  - agency: A\n    system: S\n    level: 6\n    networks: []\n");
        assert!(e.starts_with("/etc/khien/assets.yaml:4:"), "{e}");
        assert!(e.contains("level") && e.contains("not 1–5"), "{e}");

        let e = err(
            "systems:\n  - agency: A\n    system: S\n    level: 3\n    networks: [10.0.0.1/8]\n",
        );
        assert!(e.starts_with("/etc/khien/assets.yaml:5:"), "{e}");
        assert!(e.contains("networks") && e.contains("host bits"), "{e}");

        let e = err("systems:\n  - agency: A\n    system: S\n    levle: 3\n    networks: []\n");
        assert!(e.starts_with("/etc/khien/assets.yaml:4:"), "{e}");
        assert!(e.contains("levle"), "{e}");

        let e = err("systems:\n  - agency: \"\"\n    system: S\n    level: 3\n    networks: []\n");
        assert!(e.starts_with("/etc/khien/assets.yaml:2:"), "{e}");
        assert!(e.contains("agency"), "{e}");

        let e = err("systems:\n  - agency: A\n    system: S\n    level: 3\n");
        assert!(
            e.contains("/etc/khien/assets.yaml:2:") && e.contains("networks"),
            "{e}"
        );

        let e = err(
            "systems:\n  - {agency: A, system: S, level: 3, networks: [10.0.0.0/8]}\n  - {agency: B, system: T, level: 1, networks: [10.0.0.0/8]}\n",
        );
        assert!(e.contains("10.0.0.0/8") && e.contains("`B / T`"), "{e}");

        let e = err("systems: [\n");
        assert!(e.starts_with("/etc/khien/assets.yaml:"), "{e}");
        assert!(!err("").is_empty());
    }
}
