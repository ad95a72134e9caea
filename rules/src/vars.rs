//! Rule variables (`$HOME_NET`, `$HTTP_PORTS`) from a Suricata-style YAML `vars:` section.

use std::collections::BTreeMap;

use crate::ast::{AddrSpec, PortSpec, Span};
use crate::diag::Code;
use crate::header;

/// Why a vars file was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VarsError {
    #[error("line {line}: {message}")]
    Yaml { line: usize, message: String },
    #[error("variable `{name}`: {message}")]
    Value { name: String, message: String },
}

/// Address and port groups, validated: every value parses, every reference resolves, and no
/// variable refers to itself.
#[derive(Clone, Debug, Default)]
pub struct Vars {
    pub address: BTreeMap<String, AddrSpec>,
    pub port: BTreeMap<String, PortSpec>,
}

#[derive(serde::Deserialize)]
struct File {
    vars: Option<Section>,
    #[serde(rename = "address-groups")]
    address_groups: Option<BTreeMap<String, serde_yaml::Value>>,
    #[serde(rename = "port-groups")]
    port_groups: Option<BTreeMap<String, serde_yaml::Value>>,
}

#[derive(serde::Deserialize)]
struct Section {
    #[serde(rename = "address-groups")]
    address_groups: Option<BTreeMap<String, serde_yaml::Value>>,
    #[serde(rename = "port-groups")]
    port_groups: Option<BTreeMap<String, serde_yaml::Value>>,
}

fn scalar(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Vars {
    /// Suricata's default variables (its shipped suricata.yaml), used when none are given.
    pub fn suricata_defaults() -> Vars {
        let yaml = r#"
vars:
  address-groups:
    HOME_NET: "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]"
    EXTERNAL_NET: "!$HOME_NET"
    HTTP_SERVERS: "$HOME_NET"
    SMTP_SERVERS: "$HOME_NET"
    SQL_SERVERS: "$HOME_NET"
    DNS_SERVERS: "$HOME_NET"
    TELNET_SERVERS: "$HOME_NET"
    AIM_SERVERS: "$EXTERNAL_NET"
    DC_SERVERS: "$HOME_NET"
    DNP3_SERVER: "$HOME_NET"
    DNP3_CLIENT: "$HOME_NET"
    MODBUS_CLIENT: "$HOME_NET"
    MODBUS_SERVER: "$HOME_NET"
    ENIP_CLIENT: "$HOME_NET"
    ENIP_SERVER: "$HOME_NET"
  port-groups:
    HTTP_PORTS: "80"
    SHELLCODE_PORTS: "!80"
    ORACLE_PORTS: 1521
    SSH_PORTS: 22
    DNP3_PORTS: 20000
    MODBUS_PORTS: 502
    FILE_DATA_PORTS: "[$HTTP_PORTS,110,143]"
    FTP_PORTS: 21
    GENEVE_PORTS: 6081
    VXLAN_PORTS: 4789
    TEREDO_PORTS: 3544
"#;
        static DEFAULTS: std::sync::OnceLock<Vars> = std::sync::OnceLock::new();
        DEFAULTS
            .get_or_init(|| Vars::from_yaml(yaml).expect("built-in defaults are valid"))
            .clone()
    }

    /// Reads `vars: {address-groups, port-groups}` (or the two groups at top level) from a
    /// Suricata-style YAML document.
    pub fn from_yaml(text: &str) -> Result<Vars, VarsError> {
        let f: File = serde_yaml::from_str(text).map_err(|e| VarsError::Yaml {
            line: e.location().map_or(0, |l| l.line()),
            message: e.to_string(),
        })?;
        let (ag, pg) = match f.vars {
            Some(s) => (s.address_groups, s.port_groups),
            None => (f.address_groups, f.port_groups),
        };
        let mut vars = Vars::default();
        for (name, v) in ag.unwrap_or_default() {
            let s = scalar(&v).ok_or_else(|| VarsError::Value {
                name: name.clone(),
                message: "value must be a string".into(),
            })?;
            let a = header::address(&s, Span::default()).map_err(|d| VarsError::Value {
                name: name.clone(),
                message: d.message,
            })?;
            vars.address.insert(name, a);
        }
        for (name, v) in pg.unwrap_or_default() {
            let s = scalar(&v).ok_or_else(|| VarsError::Value {
                name: name.clone(),
                message: "value must be a string or number".into(),
            })?;
            let p = header::ports(&s, Span::default()).map_err(|d| VarsError::Value {
                name: name.clone(),
                message: d.message,
            })?;
            vars.port.insert(name, p);
        }
        for name in vars.address.keys() {
            vars.resolve_address(&AddrSpec::Var(name.clone()))
                .map_err(|(_, m)| VarsError::Value {
                    name: name.clone(),
                    message: m,
                })?;
        }
        for name in vars.port.keys() {
            vars.resolve_ports(&PortSpec::Var(name.clone()))
                .map_err(|(_, m)| VarsError::Value {
                    name: name.clone(),
                    message: m,
                })?;
        }
        Ok(vars)
    }

    /// Checks that every variable in `a` is a defined address variable (their own values were
    /// checked when the vars were loaded), without building the resolved tree.
    pub fn check_address(&self, a: &AddrSpec) -> Result<(), (Code, String)> {
        match a {
            AddrSpec::Var(v) if self.address.contains_key(v) => Ok(()),
            AddrSpec::Var(_) => self.resolve_address(a).map(drop),
            AddrSpec::List(l) => l.iter().try_for_each(|x| self.check_address(x)),
            AddrSpec::Not(x) => self.check_address(x),
            _ => Ok(()),
        }
    }

    /// Checks that every variable in `p` is a defined port variable.
    pub fn check_ports(&self, p: &PortSpec) -> Result<(), (Code, String)> {
        match p {
            PortSpec::Var(v) if self.port.contains_key(v) => Ok(()),
            PortSpec::Var(_) => self.resolve_ports(p).map(drop),
            PortSpec::List(l) => l.iter().try_for_each(|x| self.check_ports(x)),
            PortSpec::Not(x) => self.check_ports(x),
            _ => Ok(()),
        }
    }

    /// Replaces every variable in `a` by its value, recursively.
    pub fn resolve_address(&self, a: &AddrSpec) -> Result<AddrSpec, (Code, String)> {
        self.addr_depth(a, 0)
    }

    fn addr_depth(&self, a: &AddrSpec, depth: u32) -> Result<AddrSpec, (Code, String)> {
        if depth > 32 {
            return Err((
                Code::UnknownVariable,
                "variables refer to each other in a loop".into(),
            ));
        }
        Ok(match a {
            AddrSpec::Var(v) => match self.address.get(v) {
                Some(x) => self.addr_depth(x, depth + 1)?,
                None if self.port.contains_key(v) => {
                    return Err((
                        Code::BadAddress,
                        format!("`${v}` is a port variable, used as an address"),
                    ))
                }
                None => {
                    return Err((
                        Code::UnknownVariable,
                        format!("address variable `${v}` is not defined"),
                    ))
                }
            },
            AddrSpec::List(l) => AddrSpec::List(
                l.iter()
                    .map(|x| self.addr_depth(x, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            AddrSpec::Not(x) => AddrSpec::Not(Box::new(self.addr_depth(x, depth + 1)?)),
            other => other.clone(),
        })
    }

    /// Replaces every variable in `p` by its value, recursively.
    pub fn resolve_ports(&self, p: &PortSpec) -> Result<PortSpec, (Code, String)> {
        self.port_depth(p, 0)
    }

    fn port_depth(&self, p: &PortSpec, depth: u32) -> Result<PortSpec, (Code, String)> {
        if depth > 32 {
            return Err((
                Code::UnknownVariable,
                "variables refer to each other in a loop".into(),
            ));
        }
        Ok(match p {
            PortSpec::Var(v) => match self.port.get(v) {
                Some(x) => self.port_depth(x, depth + 1)?,
                None if self.address.contains_key(v) => {
                    return Err((
                        Code::BadPort,
                        format!("`${v}` is an address variable, used as a port"),
                    ))
                }
                None => {
                    return Err((
                        Code::UnknownVariable,
                        format!("port variable `${v}` is not defined"),
                    ))
                }
            },
            PortSpec::List(l) => PortSpec::List(
                l.iter()
                    .map(|x| self.port_depth(x, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            PortSpec::Not(x) => PortSpec::Not(Box::new(self.port_depth(x, depth + 1)?)),
            other => other.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_resolve() {
        let v = Vars::suricata_defaults();
        let ext = v
            .resolve_address(&AddrSpec::Var("EXTERNAL_NET".into()))
            .unwrap();
        assert!(
            matches!(ext, AddrSpec::Not(b) if matches!(*b, AddrSpec::List(ref l) if l.len() == 3))
        );
        assert!(v
            .resolve_ports(&PortSpec::Var("FILE_DATA_PORTS".into()))
            .is_ok());
        assert_eq!(
            v.resolve_address(&AddrSpec::Var("NOPE".into()))
                .unwrap_err()
                .0,
            Code::UnknownVariable
        );
        assert_eq!(
            v.resolve_ports(&PortSpec::Var("HOME_NET".into()))
                .unwrap_err()
                .0,
            Code::BadPort
        );
    }

    #[test]
    fn rejects_loops_and_bad_values() {
        let e = Vars::from_yaml("vars:\n  address-groups:\n    A: \"$B\"\n    B: \"[$A]\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("loop"), "{e}");
        let e = Vars::from_yaml("vars:\n  address-groups:\n    A: \"300.0.0.1\"\n").unwrap_err();
        assert!(e.to_string().contains("`A`"), "{e}");
        let e = Vars::from_yaml("vars:\n  port-groups:\n    P: \"70000\"\n").unwrap_err();
        assert!(e.to_string().contains("`P`"), "{e}");
        let e = Vars::from_yaml("vars: [\n").unwrap_err();
        assert!(matches!(e, VarsError::Yaml { .. }));
    }
}
