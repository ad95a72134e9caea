//! SMTP: envelope (HELO/EHLO, MAIL FROM, RCPT TO), DATA, MIME parts and attachments.

use serde_json::{Map, Value};

use crate::util::json_str;

/// An attachment seen in a message (its file record is emitted separately).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SmtpAttachment {
    pub filename: Vec<u8>,
    pub size: u64,
}

/// One mail transaction (envelope and message).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SmtpTx {
    pub tx_id: u64,
    pub helo: Option<Vec<u8>>,
    pub mail_from: Option<Vec<u8>>,
    pub rcpt_to: Vec<Vec<u8>>,
    /// Message header fields.
    pub from: Option<Vec<u8>>,
    pub to: Vec<Vec<u8>>,
    pub cc: Vec<Vec<u8>>,
    pub subject: Option<Vec<u8>>,
    pub attachments: Vec<SmtpAttachment>,
    /// Suricata's email `status`: "PARSE_DONE", "PARSE_ERROR", ...
    pub status: &'static str,
}

impl SmtpTx {
    /// EVE `smtp` value, Suricata 7 format.
    pub fn eve(&self) -> Value {
        let mut m = Map::new();
        if let Some(h) = &self.helo {
            m.insert("helo".into(), json_str(h).into());
        }
        if let Some(f) = &self.mail_from {
            m.insert("mail_from".into(), json_str(f).into());
        }
        if !self.rcpt_to.is_empty() {
            m.insert(
                "rcpt_to".into(),
                self.rcpt_to.iter().map(|r| json_str(r)).collect(),
            );
        }
        Value::Object(m)
    }

    /// EVE `email` value written beside `smtp` in the same record.
    pub fn eve_email(&self) -> Value {
        let mut m = Map::new();
        m.insert("status".into(), self.status.into());
        if let Some(f) = &self.from {
            m.insert("from".into(), json_str(f).into());
        }
        if !self.to.is_empty() {
            m.insert("to".into(), self.to.iter().map(|r| json_str(r)).collect());
        }
        if !self.cc.is_empty() {
            m.insert("cc".into(), self.cc.iter().map(|r| json_str(r)).collect());
        }
        if !self.attachments.is_empty() {
            m.insert(
                "attachment".into(),
                self.attachments
                    .iter()
                    .map(|a| json_str(&a.filename))
                    .collect(),
            );
        }
        Value::Object(m)
    }
}
