//! FTP control channel: commands and their replies (RFC 959).

use std::collections::VecDeque;

use serde_json::{json, Map, Value};

use crate::file::{FileState, FileTracker};
use crate::util::{json_str, Lines};
use crate::{AppConfig, AppEvent, AppProto, Direction, FtpDataSpec, Parser, Transaction};

/// One FTP command and the replies to it (or the server's greeting, without a command).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FtpTx {
    pub tx_id: u64,
    /// Upper-cased command verb ("USER"); empty for the greeting.
    pub command: Vec<u8>,
    pub command_data: Vec<u8>,
    pub command_truncated: bool,
    /// Reply codes of the reply lines that carry one ("150", "226").
    pub completion_code: Vec<Vec<u8>>,
    /// Reply lines without their codes.
    pub reply: Vec<Vec<u8>>,
    pub reply_received: bool,
    pub reply_truncated: bool,
    /// Data-channel port announced by PORT/EPRT (active) or a PASV/EPSV reply (passive).
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
            m.insert("command_truncated".into(), self.command_truncated.into());
        }
        if !self.completion_code.is_empty() {
            m.insert(
                "completion_code".into(),
                self.completion_code.iter().map(|r| json_str(r)).collect(),
            );
        }
        if !self.reply.is_empty() {
            m.insert(
                "reply".into(),
                self.reply.iter().map(|r| json_str(r)).collect(),
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
        m.insert("reply_truncated".into(), self.reply_truncated.into());
        Value::Object(m)
    }
}

/// The port of a PORT argument or a 227 reply: "h1,h2,h3,h4,p1,p2" anywhere in `s`.
pub(crate) fn port_from_tuple(s: &[u8]) -> Option<u16> {
    let start = s.iter().position(u8::is_ascii_digit)?;
    let end = s[start..]
        .iter()
        .position(|c| !c.is_ascii_digit() && *c != b',')
        .map_or(s.len(), |e| start + e);
    let nums: Vec<u16> = std::str::from_utf8(&s[start..end])
        .ok()?
        .split(',')
        .map(|n| n.parse::<u16>().ok().filter(|v| *v <= 255))
        .collect::<Option<_>>()?;
    match nums[..] {
        [_, _, _, _, hi, lo] => Some(hi << 8 | lo),
        _ => None,
    }
}

/// The port of an EPRT argument ("|1|10.0.0.1|6446|") or a 229 reply ("(|||6446|)").
pub(crate) fn port_from_extended(s: &[u8]) -> Option<u16> {
    let open = s.iter().position(|&c| c == b'|')?;
    let fields: Vec<&[u8]> = s[open..].split(|&c| c == b'|').collect();
    let p = fields.get(3)?;
    std::str::from_utf8(p).ok()?.parse().ok()
}

pub(crate) struct FtpParser {
    lines: [Lines; 2],
    line_max: usize,
    max_tx: usize,
    /// Transactions waiting for their final reply, oldest first.
    pending: VecDeque<FtpTx>,
    next_tx: u64,
    /// Code of a multi-line reply in progress.
    multiline: Option<Vec<u8>>,
    /// After AUTH TLS was accepted: the rest is encrypted.
    done: bool,
    /// Dropping the rest of an over-long line, per direction.
    skipping: [bool; 2],
    /// The data port of the last PORT/EPRT command or PASV/EPSV reply, and whether it is
    /// passive: RETR/STOR then announce a data connection to it.
    data_port: Option<(u16, bool)>,
}

impl FtpParser {
    pub(crate) fn new(cfg: &AppConfig) -> Self {
        FtpParser {
            lines: [Lines::default(), Lines::default()],
            line_max: cfg.line_max,
            max_tx: cfg.max_tx_in_flight,
            pending: VecDeque::new(),
            next_tx: 0,
            multiline: None,
            done: false,
            skipping: [false; 2],
            data_port: None,
        }
    }

    fn new_tx(&mut self, out: &mut Vec<AppEvent>) -> &mut FtpTx {
        if self.pending.len() >= self.max_tx {
            if let Some(t) = self.pending.pop_front() {
                out.push(AppEvent::Tx(Transaction::Ftp(t)));
            }
        }
        let tx_id = self.next_tx;
        self.next_tx += 1;
        self.pending.push_back(FtpTx {
            tx_id,
            ..FtpTx::default()
        });
        let last = self.pending.len() - 1;
        &mut self.pending[last]
    }

    fn command(&mut self, line: &[u8], truncated: bool, out: &mut Vec<AppEvent>) {
        let sp = line.iter().position(|&c| c == b' ').unwrap_or(line.len());
        let verb = line[..sp].to_ascii_uppercase();
        let data = line.get(sp + 1..).unwrap_or_default().to_vec();
        if verb.is_empty() {
            return;
        }
        if truncated {
            out.push(AppEvent::Anomaly {
                proto: AppProto::Ftp,
                event: "request_command_too_long",
            });
        }
        let port = match verb.as_slice() {
            b"PORT" => port_from_tuple(&data),
            b"EPRT" => port_from_extended(&data),
            _ => None,
        };
        if let Some(p) = port {
            self.data_port = Some((p, false));
        }
        let upload = verb.as_slice() == b"STOR";
        if let (true, Some((port, passive))) =
            (upload || verb.as_slice() == b"RETR", self.data_port)
        {
            out.push(AppEvent::Expect(FtpDataSpec {
                port,
                filename: data.clone(),
                command: verb.clone(),
                upload,
                passive,
            }));
        }
        let tx = self.new_tx(out);
        tx.command = verb;
        tx.command_data = data;
        tx.command_truncated = truncated;
        if port.is_some() {
            tx.dynamic_port = port;
            tx.passive = Some(false);
        }
    }

    fn reply(&mut self, line: &[u8], truncated: bool, out: &mut Vec<AppEvent>) {
        if truncated {
            out.push(AppEvent::Anomaly {
                proto: AppProto::Ftp,
                event: "response_command_too_long",
            });
        }
        if self.pending.is_empty() {
            if self.next_tx > 0 {
                // A reply nobody asked for (or a non-FTP protocol's output): not a
                // transaction of its own, or a POP3 mail would become one per line.
                return;
            }
            // The greeting: its own transaction.
            self.new_tx(out);
        }
        let code = line
            .get(..3)
            .filter(|c| c.iter().all(u8::is_ascii_digit))
            .map(<[u8]>::to_vec);
        let sep = line.get(3).copied();
        let coded = code.is_some() && matches!(sep, Some(b' ' | b'-') | None);
        let Some(tx) = self.pending.front_mut() else {
            return;
        };
        tx.reply_received = true;
        tx.reply_truncated |= truncated;
        let mut final_line = false;
        let mut upgrade = false;
        match (&code, coded) {
            (Some(c), true) => {
                let text = line.get(4..).unwrap_or_default();
                tx.completion_code.push(c.clone());
                tx.reply.push(text.to_vec());
                let is_last = sep != Some(b'-');
                match &self.multiline {
                    Some(m) if m == c && is_last => self.multiline = None,
                    Some(_) => {}
                    None if !is_last => self.multiline = Some(c.clone()),
                    None => {}
                }
                final_line = self.multiline.is_none() && is_last && c.first() != Some(&b'1');
                match c.as_slice() {
                    b"227" => {
                        tx.dynamic_port = port_from_tuple(text);
                        tx.passive = Some(true);
                        self.data_port = tx.dynamic_port.map(|p| (p, true));
                    }
                    b"229" => {
                        tx.dynamic_port = port_from_extended(text);
                        tx.passive = Some(true);
                        self.data_port = tx.dynamic_port.map(|p| (p, true));
                    }
                    b"234" if tx.command == b"AUTH" => {
                        self.done = true;
                        upgrade = true;
                    }
                    _ => {}
                }
            }
            _ => tx.reply.push(line.to_vec()),
        }
        if final_line {
            if let Some(t) = self.pending.pop_front() {
                out.push(AppEvent::Tx(Transaction::Ftp(t)));
            }
        }
        if upgrade {
            out.push(AppEvent::Upgrade {
                from: AppProto::Ftp,
                to: Some(AppProto::Tls),
            });
        }
    }
}

impl Parser for FtpParser {
    fn proto(&self) -> AppProto {
        AppProto::Ftp
    }

    fn parse(&mut self, dir: Direction, mut data: &[u8], _ts: i64, out: &mut Vec<AppEvent>) {
        let d = dir.idx();
        while !self.done {
            let Some((line, whole)) = self.lines[d].next_line(&mut data, self.line_max) else {
                break;
            };
            if self.skipping[d] {
                // The rest of an over-long line: dropped.
                self.skipping[d] = !whole;
                continue;
            }
            match dir {
                Direction::ToServer => self.command(&line, !whole, out),
                Direction::ToClient => self.reply(&line, !whole, out),
            }
            self.skipping[d] = !whole;
        }
    }

    fn gap(&mut self, dir: Direction, _len: u64, _out: &mut Vec<AppEvent>) {
        self.lines[dir.idx()].clear();
        self.skipping[dir.idx()] = false;
        self.multiline = None;
    }

    fn close(&mut self, _ts: i64, out: &mut Vec<AppEvent>) {
        while let Some(t) = self.pending.pop_front() {
            out.push(AppEvent::Tx(Transaction::Ftp(t)));
        }
    }
}

/// An FTP data connection: the bytes in the file's direction are one file (tx 0), closed
/// when the flow ends.
pub(crate) struct FtpDataParser {
    file: Option<FileTracker>,
    dir: Direction,
}

impl FtpDataParser {
    pub(crate) fn new(spec: &FtpDataSpec, cfg: &AppConfig) -> Self {
        FtpDataParser {
            file: Some(FileTracker::new(spec.filename.clone(), cfg.file_data_limit)),
            dir: spec.file_direction(),
        }
    }
}

impl Parser for FtpDataParser {
    fn proto(&self) -> AppProto {
        AppProto::FtpData
    }

    fn parse(&mut self, dir: Direction, data: &[u8], _ts: i64, _out: &mut Vec<AppEvent>) {
        if dir == self.dir {
            if let Some(f) = self.file.as_mut() {
                f.write(data);
            }
        }
    }

    fn gap(&mut self, dir: Direction, _len: u64, _out: &mut Vec<AppEvent>) {
        if dir == self.dir {
            if let Some(f) = self.file.as_mut() {
                f.set_gap();
            }
        }
    }

    fn close(&mut self, _ts: i64, out: &mut Vec<AppEvent>) {
        // An empty transfer is no file (Suricata logs none).
        if let Some(f) = self.file.take().filter(|f| f.size() > 0) {
            let rec = f.finish(AppProto::FtpData, 0, self.dir, FileState::Closed, None);
            out.push(AppEvent::File(rec));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eves(ev: &[AppEvent]) -> Vec<Value> {
        ev.iter()
            .filter_map(|e| match e {
                AppEvent::Tx(Transaction::Ftp(t)) => Some(t.eve()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn session_like_suricata() {
        // A vsFTPd session from the shared sv-corpus pcap; the expected values are what
        // Suricata 7.0.10 logs for it (tx 0..7).
        let client = b"USER anonymous\r\nPASS anonymous\r\nPORT 192,168,0,13,234,10\r\nNLST\r\nRETR temp.txt\r\nQUIT\r\n";
        let server =
            b"220 (vsFTPd 2.3.5)\r\n331 Please specify the password.\r\n230 Login successful.\r\n\
200 PORT command successful. Consider using PASV.\r\n150 Here comes the directory listing.\r\n\
226 Directory send OK.\r\n150 Opening BINARY mode data connection for temp.txt (1164 bytes).\r\n\
226 Transfer complete.\r\n221 Goodbye.\r\n";
        let want: Vec<Value> = [
            r#"{"completion_code":["220"],"reply":["(vsFTPd 2.3.5)"],"reply_received":"yes","reply_truncated":false}"#,
            r#"{"command":"USER","command_data":"anonymous","command_truncated":false,"completion_code":["331"],"reply":["Please specify the password."],"reply_received":"yes","reply_truncated":false}"#,
            r#"{"command":"PASS","command_data":"anonymous","command_truncated":false,"completion_code":["230"],"reply":["Login successful."],"reply_received":"yes","reply_truncated":false}"#,
            r#"{"command":"PORT","command_data":"192,168,0,13,234,10","command_truncated":false,"completion_code":["200"],"reply":["PORT command successful. Consider using PASV."],"dynamic_port":59914,"mode":"active","reply_received":"yes","reply_truncated":false}"#,
            r#"{"command":"NLST","completion_code":["150","226"],"reply":["Here comes the directory listing.","Directory send OK."],"reply_received":"yes","reply_truncated":false}"#,
            r#"{"command":"RETR","command_data":"temp.txt","command_truncated":false,"completion_code":["150","226"],"reply":["Opening BINARY mode data connection for temp.txt (1164 bytes).","Transfer complete."],"reply_received":"yes","reply_truncated":false}"#,
            r#"{"command":"QUIT","completion_code":["221"],"reply":["Goodbye."],"reply_received":"yes","reply_truncated":false}"#,
        ]
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
        // Greeting first, then the commands and replies interleaved one line at a time.
        let mut p = FtpParser::new(&AppConfig::default());
        let mut out = Vec::new();
        let mut c = client.split_inclusive(|&b| b == b'\n');
        let mut s = server.split_inclusive(|&b| b == b'\n');
        p.parse(Direction::ToClient, s.next().unwrap(), 0, &mut out);
        for line in c.by_ref() {
            p.parse(Direction::ToServer, line, 0, &mut out);
            let n = if line.starts_with(b"NLST") || line.starts_with(b"RETR") {
                2
            } else {
                1
            };
            for _ in 0..n {
                p.parse(Direction::ToClient, s.next().unwrap(), 0, &mut out);
            }
        }
        p.close(0, &mut out);
        assert_eq!(eves(&out), want);
    }

    #[test]
    fn passive_multiline_unanswered_and_hostile() {
        let mut p = FtpParser::new(&AppConfig::default());
        let mut out = Vec::new();
        p.parse(
            Direction::ToClient,
            b"220-Welcome\r\n banner text\r\n220 ready\r\n",
            0,
            &mut out,
        );
        p.parse(
            Direction::ToServer,
            b"PASV\r\nEPSV\r\nRETR secret_file.txt\r\n",
            0,
            &mut out,
        );
        p.parse(Direction::ToClient, b"227 Entering Passive Mode (10,0,0,1,19,137).\r\n229 Entering Extended Passive Mode (|||6446|)\r\n", 0, &mut out);
        p.close(0, &mut out);
        let e = eves(&out);
        assert_eq!(e[0]["reply"], json!(["Welcome", " banner text", "ready"]));
        assert_eq!(e[0]["completion_code"], json!(["220", "220"]));
        assert_eq!(e[1]["dynamic_port"], 5001);
        assert_eq!(e[1]["mode"], "passive");
        assert_eq!(e[2]["dynamic_port"], 6446);
        assert_eq!(
            e[3],
            json!({"command":"RETR","command_data":"secret_file.txt","command_truncated":false,"reply_received":"no","reply_truncated":false})
        );
        // A 1 MB command: truncated at line_max, flagged; the next command parses.
        let mut p = FtpParser::new(&AppConfig::default());
        let mut out = Vec::new();
        let mut long = b"STOR ".to_vec();
        long.resize(1 << 20, b'A');
        for c in long.chunks(4096) {
            p.parse(Direction::ToServer, c, 0, &mut out);
        }
        p.parse(Direction::ToServer, b"\r\nQUIT\r\n", 0, &mut out);
        p.close(0, &mut out);
        let e = eves(&out);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0]["command_truncated"], true);
        assert_eq!(e[1]["command"], "QUIT");
        // Unsolicited lines after the greeting (a POP3 mail body) make no transactions.
        let mut p = FtpParser::new(&AppConfig::default());
        let mut out = Vec::new();
        p.parse(Direction::ToClient, b"+OK POP3 ready\r\n", 0, &mut out);
        p.parse(Direction::ToServer, b"USER bob\r\n", 0, &mut out);
        p.parse(
            Direction::ToClient,
            b"+OK\r\nline 1\r\nline 2\r\n.\r\n",
            0,
            &mut out,
        );
        p.close(0, &mut out);
        assert_eq!(eves(&out).len(), 2);
        // AUTH TLS accepted: the flow continues as TLS.
        let mut p = FtpParser::new(&AppConfig::default());
        let mut out = Vec::new();
        p.parse(Direction::ToServer, b"AUTH TLS\r\n", 0, &mut out);
        p.parse(
            Direction::ToClient,
            b"234 Proceed with negotiation.\r\n",
            0,
            &mut out,
        );
        assert!(matches!(
            out.last(),
            Some(AppEvent::Upgrade {
                from: AppProto::Ftp,
                to: Some(AppProto::Tls)
            })
        ));
        assert_eq!(port_from_tuple(b"1,2,3,4,999,1"), None);
        assert_eq!(port_from_tuple(b"1234"), None);
        assert_eq!(port_from_extended(b"|1|"), None);
    }

    fn expects(ev: &[AppEvent]) -> Vec<&FtpDataSpec> {
        ev.iter()
            .filter_map(|e| match e {
                AppEvent::Expect(x) => Some(x),
                _ => None,
            })
            .collect()
    }

    /// PASV / EPSV replies and PORT / EPRT commands give the data port; RETR and STOR
    /// then announce the data connection with the file name (vsftpd-style exchange).
    #[test]
    fn retr_and_stor_announce_the_data_connection() {
        let cfg = AppConfig::default();
        let mut p = FtpParser::new(&cfg);
        let mut out = Vec::new();
        p.parse(Direction::ToClient, b"220 (vsFTPd 3.0.3)\r\n", 0, &mut out);
        // RETR before any data port: nothing to expect.
        p.parse(Direction::ToServer, b"RETR early.txt\r\n", 0, &mut out);
        p.parse(
            Direction::ToClient,
            b"425 Use PORT or PASV first.\r\n",
            0,
            &mut out,
        );
        p.parse(Direction::ToServer, b"PASV\r\n", 0, &mut out);
        p.parse(
            Direction::ToClient,
            b"227 Entering Passive Mode (192,168,0,1,195,80).\r\n",
            0,
            &mut out,
        );
        p.parse(
            Direction::ToServer,
            b"RETR dir/notepad.exe\r\n",
            0,
            &mut out,
        );
        p.parse(Direction::ToServer, b"EPRT |2|::1|6446|\r\n", 0, &mut out);
        p.parse(Direction::ToServer, b"STOR up.bin\r\n", 0, &mut out);
        p.parse(Direction::ToServer, b"LIST\r\n", 0, &mut out);
        let x = expects(&out);
        assert_eq!(x.len(), 2);
        assert_eq!(
            *x[0],
            FtpDataSpec {
                port: 195 * 256 + 80,
                filename: b"dir/notepad.exe".to_vec(),
                command: b"RETR".to_vec(),
                upload: false,
                passive: true,
            }
        );
        assert_eq!((x[1].port, x[1].upload, x[1].passive), (6446, true, false));
        // Passive RETR: the client opened the connection, the file comes to it.
        assert_eq!(x[0].file_direction(), Direction::ToClient);
        // Active STOR: the server opened it, the file goes to the opener's peer.
        assert_eq!(x[1].file_direction(), Direction::ToClient);
        let active_retr = FtpDataSpec {
            upload: false,
            ..x[1].clone()
        };
        assert_eq!(active_retr.file_direction(), Direction::ToServer);
    }

    #[test]
    fn data_connection_is_one_file_in_its_direction() {
        let spec = FtpDataSpec {
            port: 20,
            filename: b"robots.txt".to_vec(),
            command: b"RETR".to_vec(),
            upload: false,
            passive: true,
        };
        let cfg = AppConfig::default();
        let mut p = FtpDataParser::new(&spec, &cfg);
        let mut out = Vec::new();
        p.parse(Direction::ToServer, b"ignored", 0, &mut out);
        p.parse(Direction::ToClient, b"User-agent: *\n", 0, &mut out);
        p.parse(Direction::ToClient, b"Disallow: /\n", 0, &mut out);
        p.close(1, &mut out);
        let AppEvent::File(f) = &out[0] else {
            panic!("no file: {out:?}");
        };
        assert_eq!(f.proto, AppProto::FtpData);
        assert_eq!((f.filename.as_slice(), f.size), (&b"robots.txt"[..], 26));
        assert_eq!((f.state, f.gaps, f.tx_id), (FileState::Closed, false, 0));
        // sha256 of the 26 bytes, as `sha256sum` gives it.
        assert_eq!(
            f.sha256,
            "331ea9090db0c9f6f597bd9840fd5b171830f6e0b3ba1cb24dfa91f0c95aedc1"
        );
        // A gap in the file's direction: TRUNCATED with gaps; an empty transfer: no file.
        let mut p = FtpDataParser::new(&spec, &cfg);
        let mut out = Vec::new();
        p.parse(Direction::ToClient, b"abc", 0, &mut out);
        p.gap(Direction::ToClient, 10, &mut out);
        p.parse(Direction::ToClient, b"def", 0, &mut out);
        p.close(1, &mut out);
        let AppEvent::File(f) = &out[0] else {
            panic!("no file");
        };
        assert_eq!((f.size, f.gaps, f.state), (6, true, FileState::Truncated));
        let mut p = FtpDataParser::new(&spec, &cfg);
        let mut out = Vec::new();
        p.close(1, &mut out);
        assert!(out.is_empty());
    }
}
