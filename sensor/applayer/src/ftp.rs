//! FTP control channel: commands and their replies (RFC 959).

use serde_json::{json, Map, Value};

use crate::util::json_str;

/// One FTP command and the replies to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FtpTx {
    pub tx_id: u64,
    /// Upper-cased command verb ("USER").
    pub command: Vec<u8>,
    pub command_data: Vec<u8>,
    /// Reply codes, one per reply line group ("331").
    pub completion_code: Vec<Vec<u8>>,
    /// Reply texts without their codes.
    pub reply: Vec<Vec<u8>>,
    pub reply_received: bool,
    /// Data-channel port announced by PORT/EPRT (active) or the PASV/EPSV reply (passive).
    pub dynamic_port: Option<u16>,
    pub passive: Option<bool>,
}

impl FtpTx {
    /// EVE `ftp` value, Suricata 7 format.
    pub fn eve(&self) -> Value {
        let mut m = Map::new();
        if !self.command.is_empty() {
            m.insert("command".into(), json_str(&self.command).into());
        }
        if !self.command_data.is_empty() {
            m.insert("command_data".into(), json_str(&self.command_data).into());
        }
        if !self.reply.is_empty() {
            m.insert(
                "reply".into(),
                self.reply.iter().map(|r| json_str(r)).collect(),
            );
        }
        if !self.completion_code.is_empty() {
            m.insert(
                "completion_code".into(),
                self.completion_code.iter().map(|r| json_str(r)).collect(),
            );
        }
        if let Some(p) = self.dynamic_port {
            m.insert("dynamic_port".into(), json!(p));
        }
        if let Some(passive) = self.passive {
            m.insert(
                "mode".into(),
                (if passive { "passive" } else { "active" }).into(),
            );
        }
        m.insert(
            "reply_received".into(),
            (if self.reply_received { "yes" } else { "no" }).into(),
        );
        Value::Object(m)
    }
}
