//! SMTP: envelope (HELO/EHLO, MAIL FROM, RCPT TO), DATA, MIME parts and attachments.

use serde_json::{Map, Value};

use crate::file::{FileRecord, FileState, FileTracker};
use crate::util::{json_str, trim, Lines};
use crate::{AppConfig, AppEvent, AppProto, Direction, Parser, Transaction};

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

fn anomaly(event: &'static str) -> AppEvent {
    AppEvent::Anomaly {
        proto: AppProto::Smtp,
        event,
    }
}

/// Most header fields kept per MIME entity.
const MAX_MIME_HEADERS: usize = 128;
/// Longest MIME header value kept (folded lines included).
const MAX_HEADER_VALUE: usize = 4096;

/// Most RFC 2231 continuation sections joined into one parameter value.
const MAX_PARAM_SECTIONS: usize = 64;

/// The parameters of a MIME header value (after the first `;`): trimmed names and
/// values, quotes removed.
fn mime_params(v: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    v.split(|&c| c == b';').skip(1).filter_map(|p| {
        let p = trim(p);
        let eq = p.iter().position(|&c| c == b'=')?;
        let val = trim(&p[eq + 1..]);
        let val = val.strip_prefix(b"\"").unwrap_or(val);
        Some((trim(&p[..eq]), val.strip_suffix(b"\"").unwrap_or(val)))
    })
}

/// Value of a parameter (`boundary`, `name`, `filename`) in a MIME header value. Without
/// the plain parameter, RFC 2231 continuations `name*0`, `name*1`, ... (each possibly
/// `name*N*`) are joined in section order, as Suricata 7 does (their charset/percent
/// encoding is kept as sent).
fn mime_param(v: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    if let Some((_, val)) = mime_params(v).find(|(n, _)| n.eq_ignore_ascii_case(name)) {
        return Some(val.to_vec());
    }
    let mut sections: Vec<(usize, &[u8])> = mime_params(v)
        .filter_map(|(n, val)| {
            if n.len() <= name.len() || !n[..name.len()].eq_ignore_ascii_case(name) {
                return None;
            }
            let rest = n[name.len()..].strip_prefix(b"*")?;
            let rest = rest.strip_suffix(b"*").unwrap_or(rest);
            let i: usize = std::str::from_utf8(rest).ok()?.parse().ok()?;
            (i < MAX_PARAM_SECTIONS).then_some((i, val))
        })
        .collect();
    if sections.is_empty() {
        return None;
    }
    sections.sort_by_key(|(i, _)| *i);
    Some(
        sections
            .into_iter()
            .flat_map(|(_, v)| v.iter().copied())
            .collect(),
    )
}

fn starts_with_ci(v: &[u8], p: &[u8]) -> bool {
    v.len() >= p.len() && v[..p.len()].eq_ignore_ascii_case(p)
}

/// The `<path>` of a MAIL FROM / RCPT TO argument, without ESMTP parameters
/// ("<a@b> SIZE=525" gives "<a@b>"), as Suricata logs it.
fn path_of(v: &[u8]) -> &[u8] {
    let end = if v.first() == Some(&b'<') {
        v.iter().position(|&c| c == b'>').map_or(v.len(), |i| i + 1)
    } else {
        v.iter().position(|&c| c == b' ').unwrap_or(v.len())
    };
    &v[..end]
}

/// Split an address list header ("a@x, b@y") into trimmed entries.
fn split_addrs(v: &[u8]) -> Vec<Vec<u8>> {
    v.split(|&c| c == b',')
        .map(trim)
        .filter(|a| !a.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Content-Transfer-Encoding of a part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Enc {
    Base64,
    QuotedPrintable,
    Plain,
}

fn b64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Streaming base64: `carry` holds up to 3 sextets between calls. Returns false if an
/// invalid character was skipped.
fn b64_decode(carry: &mut Vec<u8>, input: &[u8], out: &mut Vec<u8>) -> bool {
    let mut ok = true;
    for &c in input {
        if c == b'=' {
            // Padding ends a quantum (RFC 2045): its 1 or 2 bytes are complete, even when
            // more base64 follows (`NA=` then `Mg==` is "42").
            if carry.len() >= 2 {
                b64_finish(carry, out);
            }
            continue;
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        let Some(v) = b64_value(c) else {
            ok = false;
            continue;
        };
        carry.push(v);
        if let [a, b, c, d] = carry[..] {
            out.extend_from_slice(&[a << 2 | b >> 4, b << 4 | c >> 2, c << 6 | d]);
            carry.clear();
        }
    }
    ok
}

/// Flush the last partial base64 group (1 or 2 output bytes).
fn b64_finish(carry: &mut Vec<u8>, out: &mut Vec<u8>) {
    match carry[..] {
        [a, b] => out.push(a << 2 | b >> 4),
        [a, b, c] => out.extend_from_slice(&[a << 2 | b >> 4, b << 4 | c >> 2]),
        _ => {}
    }
    carry.clear();
}

/// Decode one quoted-printable line. Returns (ends with a soft line break, valid).
fn qp_decode(line: &[u8], out: &mut Vec<u8>) -> (bool, bool) {
    let line = {
        let mut l = line;
        while let [rest @ .., b' ' | b'\t'] = l {
            l = rest;
        }
        l
    };
    let mut ok = true;
    let mut i = 0;
    while let Some(&c) = line.get(i) {
        if c == b'=' {
            if i + 1 == line.len() {
                return (true, ok);
            }
            let hx = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16));
            match (hx(line.get(i + 1)), hx(line.get(i + 2))) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => ok = false,
            }
        }
        out.push(c);
        i += 1;
    }
    (false, ok)
}

/// A leaf MIME part being read.
struct Part {
    enc: Enc,
    file: Option<FileTracker>,
    b64: Vec<u8>,
}

impl Part {
    /// One body line. `eol` is the line break of the last plain line written to a file,
    /// held back: like Suricata, a plain line's CR LF is written only when another plain
    /// line follows, so the break before a boundary or the end of the message is no part
    /// of the file, and one left over from a previous part starts the next plain file.
    fn content(
        &mut self,
        line: &[u8],
        whole: bool,
        eol: &mut bool,
        events: &mut Vec<&'static str>,
    ) {
        let Some(f) = self.file.as_mut() else { return };
        let mut out = Vec::new();
        match self.enc {
            Enc::Base64 => {
                if !b64_decode(&mut self.b64, line, &mut out)
                    && !events.contains(&"MIME_INVALID_BASE64")
                {
                    events.push("MIME_INVALID_BASE64");
                }
            }
            // Like Suricata, every whole line keeps its line break, the last one too.
            Enc::QuotedPrintable => {
                let (soft, ok) = qp_decode(line, &mut out);
                if !ok && !events.contains(&"MIME_INVALID_QP") {
                    events.push("MIME_INVALID_QP");
                }
                if whole && !soft {
                    out.extend_from_slice(b"\r\n");
                }
            }
            Enc::Plain => {
                if std::mem::replace(eol, whole) {
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(line);
            }
        }
        f.write(&out);
    }

    fn finish(mut self) -> Option<FileTracker> {
        let mut f = self.file.take()?;
        let mut out = Vec::new();
        b64_finish(&mut self.b64, &mut out);
        f.write(&out);
        Some(f)
    }
}

/// Streaming MIME parser over the lines of one message.
struct Mime {
    in_headers: bool,
    top: bool,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    boundaries: Vec<Vec<u8>>,
    part: Option<Part>,
    max_depth: usize,
    data_limit: usize,
    done_files: Vec<FileTracker>,
    /// A plain line's held-back line break (see [`Part::content`]).
    eol: bool,
}

impl Mime {
    fn new(cfg: &AppConfig) -> Self {
        Mime {
            in_headers: true,
            top: true,
            headers: Vec::new(),
            boundaries: Vec::new(),
            part: None,
            max_depth: cfg.smtp_max_parts.max(1),
            data_limit: cfg.file_data_limit,
            done_files: Vec::new(),
            eol: false,
        }
    }

    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    fn close_part(&mut self) {
        if let Some(f) = self.part.take().and_then(Part::finish) {
            self.done_files.push(f);
        }
    }

    /// End of an entity's header block.
    fn headers_done(&mut self, tx: &mut SmtpTx, events: &mut Vec<&'static str>) {
        self.in_headers = false;
        if self.top {
            tx.from = self.header(b"from").map(<[u8]>::to_vec);
            tx.to = self.header(b"to").map(split_addrs).unwrap_or_default();
            tx.cc = self.header(b"cc").map(split_addrs).unwrap_or_default();
            tx.subject = self.header(b"subject").map(<[u8]>::to_vec);
            self.top = false;
        }
        let ct = self
            .header(b"content-type")
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        if starts_with_ci(trim(&ct), b"multipart/") {
            match mime_param(&ct, b"boundary") {
                Some(b) if !b.is_empty() && self.boundaries.len() < self.max_depth => {
                    self.boundaries.push(b);
                    return;
                }
                _ => events.push("MIME_PARSE_FAILED"),
            }
        }
        if starts_with_ci(trim(&ct), b"message/rfc822") {
            // An encapsulated message: its own header block follows, and its body (or
            // parts) carry the files; the wrapper is no file, whatever its encoding and
            // name say (Suricata 7's mime decoder does the same).
            self.in_headers = true;
            self.headers.clear();
            return;
        }
        let cte = self
            .header(b"content-transfer-encoding")
            .map(trim)
            .unwrap_or_default();
        let enc = if cte.eq_ignore_ascii_case(b"base64") {
            Enc::Base64
        } else if cte.eq_ignore_ascii_case(b"quoted-printable") {
            Enc::QuotedPrintable
        } else {
            Enc::Plain
        };
        let filename = self
            .header(b"content-disposition")
            .and_then(|v| mime_param(v, b"filename"))
            .or_else(|| mime_param(&ct, b"name"));
        let file = filename.map(|name| {
            tx.attachments.push(SmtpAttachment {
                filename: name.clone(),
                size: 0,
            });
            FileTracker::new(name, self.data_limit)
        });
        self.part = Some(Part {
            enc,
            file,
            b64: Vec::new(),
        });
    }

    /// One line of the message (dot-unstuffed, without CR LF); `whole` is false for a piece
    /// of an over-long line.
    fn line(&mut self, line: &[u8], whole: bool, tx: &mut SmtpTx, events: &mut Vec<&'static str>) {
        if self.in_headers {
            if line.is_empty() {
                self.headers_done(tx, events);
            } else if matches!(line.first(), Some(b' ' | b'\t')) {
                if let Some((_, v)) = self.headers.last_mut() {
                    if v.len() + line.len() <= MAX_HEADER_VALUE {
                        v.push(b' ');
                        v.extend_from_slice(trim(line));
                    } else if !events.contains(&"MIME_LONG_HEADER_VALUE") {
                        events.push("MIME_LONG_HEADER_VALUE");
                    }
                }
            } else if let Some(c) = line.iter().position(|&c| c == b':') {
                if self.headers.len() < MAX_MIME_HEADERS {
                    let mut v = trim(&line[c + 1..]).to_vec();
                    v.truncate(MAX_HEADER_VALUE);
                    self.headers.push((trim(&line[..c]).to_vec(), v));
                }
            } else if self.top && self.headers.is_empty() {
                // Not a header: a message without headers.
                self.headers_done(tx, events);
                self.line(line, whole, tx, events);
            }
            return;
        }
        if let Some(rest) = line.strip_prefix(b"--") {
            let hit = self.boundaries.iter().rposition(|b| rest.starts_with(b));
            if let Some(i) = hit {
                self.close_part();
                let closing = rest
                    .get(self.boundaries[i].len()..)
                    .is_some_and(|r| r.starts_with(b"--"));
                self.boundaries.truncate(if closing { i } else { i + 1 });
                if !closing {
                    self.in_headers = true;
                    self.headers.clear();
                }
                return;
            }
        }
        if let Some(p) = self.part.as_mut() {
            p.content(line, whole, &mut self.eol, events);
        }
    }

    /// End of the message: the files it carried.
    fn finish(&mut self) -> Vec<FileTracker> {
        self.close_part();
        std::mem::take(&mut self.done_files)
    }
}

/// What the client side is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Command,
    /// DATA was sent: client bytes are held until the server accepts (354) or refuses it.
    AwaitData,
    Data,
    /// BDAT chunk bytes still to read, and whether it is the LAST one.
    Bdat(u64, bool),
    /// After STARTTLS accepted (or a gap): nothing more is parsed.
    Done,
}

pub(crate) struct SmtpParser {
    cfg: AppConfig,
    lines: [Lines; 2],
    mode: Mode,
    helo: Option<Vec<u8>>,
    tx: Option<SmtpTx>,
    mime: Option<Mime>,
    next_tx: u64,
    starttls: bool,
    /// A pending over-long data line piece (no line end seen yet).
    long_line: bool,
    /// Dropping the rest of an over-long command or reply line, per direction.
    skipping: [bool; 2],
    /// Commands sent (the greeting counts as the first) and final replies seen, to pair
    /// the server's answer with DATA under pipelining.
    cmds_sent: u64,
    replies_seen: u64,
    data_cmd: Option<u64>,
    /// Client bytes sent after DATA before its reply (bounded by `max_buffer`).
    held: Vec<u8>,
}

impl SmtpParser {
    pub(crate) fn new(cfg: &AppConfig) -> Self {
        SmtpParser {
            cfg: cfg.clone(),
            lines: [Lines::default(), Lines::default()],
            mode: Mode::Command,
            helo: None,
            tx: None,
            mime: None,
            next_tx: 0,
            starttls: false,
            long_line: false,
            skipping: [false; 2],
            cmds_sent: 1,
            replies_seen: 0,
            data_cmd: None,
            held: Vec::new(),
        }
    }

    fn tx(&mut self) -> &mut SmtpTx {
        let (helo, id) = (self.helo.clone(), self.next_tx);
        self.tx.get_or_insert_with(|| SmtpTx {
            tx_id: id,
            helo,
            status: "PARSE_DONE",
            ..SmtpTx::default()
        })
    }

    /// Log the current transaction and its files.
    fn end_tx(&mut self, complete: bool, out: &mut Vec<AppEvent>) {
        let files = self.mime.as_mut().map(Mime::finish).unwrap_or_default();
        self.mime = None;
        let Some(mut tx) = self.tx.take() else { return };
        self.next_tx += 1;
        if !complete && tx.from.is_some() {
            tx.status = "PARSE_ERROR";
        }
        let mut records: Vec<FileRecord> = Vec::new();
        for (f, a) in files.into_iter().zip(0..) {
            let state = if complete {
                FileState::Closed
            } else {
                FileState::Truncated
            };
            let rec = f.finish(AppProto::Smtp, tx.tx_id, Direction::ToServer, state, None);
            if let Some(att) = tx.attachments.get_mut(a) {
                att.size = rec.size;
            }
            records.push(rec);
        }
        let (smtp, email) = (tx.eve(), tx.eve_email());
        for mut r in records {
            r.section = Some(("smtp", smtp.clone()));
            r.extra_sections = vec![("email", email.clone())];
            out.push(AppEvent::File(r));
        }
        out.push(AppEvent::Tx(Transaction::Smtp(tx)));
    }

    fn command(&mut self, line: &[u8], out: &mut Vec<AppEvent>) {
        let line = trim(line);
        let verb_end = line.iter().position(|&c| c == b' ').unwrap_or(line.len());
        let verb = line[..verb_end].to_ascii_uppercase();
        let arg = trim(&line[verb_end..]);
        let max_rcpt = self.cfg.smtp_max_rcpt;
        self.cmds_sent += 1;
        match verb.as_slice() {
            b"HELO" | b"EHLO" => {
                self.helo = Some(arg.to_vec());
                self.tx().helo = Some(arg.to_vec());
            }
            b"MAIL" => {
                let v = arg
                    .get(5..)
                    .filter(|_| starts_with_ci(arg, b"FROM:"))
                    .map(trim)
                    .unwrap_or(arg);
                self.tx().mail_from = Some(path_of(v).to_vec());
            }
            b"RCPT" => {
                let v = arg
                    .get(3..)
                    .filter(|_| starts_with_ci(arg, b"TO:"))
                    .map(trim)
                    .unwrap_or(arg);
                let tx = self.tx();
                if tx.rcpt_to.len() < max_rcpt {
                    tx.rcpt_to.push(path_of(v).to_vec());
                }
            }
            b"DATA" => {
                self.tx();
                self.mode = Mode::AwaitData;
                self.data_cmd = Some(self.cmds_sent - 1);
            }
            b"BDAT" => {
                let mut words = arg.split(|&c| c == b' ').filter(|w| !w.is_empty());
                let size = words
                    .next()
                    .and_then(|w| std::str::from_utf8(w).ok()?.parse::<u64>().ok());
                let last = words
                    .next()
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"LAST"));
                match size {
                    Some(n) => {
                        self.tx();
                        if self.mime.is_none() {
                            self.mime = Some(Mime::new(&self.cfg));
                        }
                        self.mode = Mode::Bdat(n, last);
                        if n == 0 && last {
                            self.mode = Mode::Command;
                            self.end_tx(true, out);
                        }
                    }
                    None => out.push(anomaly("BDAT_CHUNK_LEN_EXCEEDED")),
                }
            }
            b"RSET" => {
                if self.tx.as_ref().is_some_and(|t| t.mail_from.is_some()) {
                    self.end_tx(false, out);
                }
            }
            b"STARTTLS" => {
                self.tx();
                self.starttls = true;
            }
            _ => {
                self.tx();
            }
        }
    }

    /// The server accepted DATA: message lines follow.
    fn start_data(&mut self) {
        self.mode = Mode::Data;
        self.long_line = false;
        self.mime = Some(Mime::new(&self.cfg));
    }

    /// A line of message data in DATA mode.
    fn data_line(&mut self, line: &[u8], whole: bool, out: &mut Vec<AppEvent>) {
        let at_line_start = !self.long_line;
        self.long_line = !whole;
        if at_line_start && whole && line == b"." {
            self.mode = Mode::Command;
            self.end_tx(true, out);
            return;
        }
        // Dot-stuffing (RFC 5321 4.5.2): a leading dot was doubled by the client.
        let line = if at_line_start {
            line.strip_prefix(b".").unwrap_or(line)
        } else {
            line
        };
        self.feed_mime(line, whole, out);
    }

    fn feed_mime(&mut self, line: &[u8], whole: bool, out: &mut Vec<AppEvent>) {
        let mut events = Vec::new();
        if !whole {
            events.push("MIME_LONG_LINE");
        }
        if let (Some(m), Some(tx)) = (self.mime.as_mut(), self.tx.as_mut()) {
            m.line(line, whole, tx, &mut events);
        }
        events.dedup();
        out.extend(events.into_iter().map(anomaly));
    }

    fn client(&mut self, mut data: &[u8], out: &mut Vec<AppEvent>) {
        while !data.is_empty() {
            match self.mode {
                Mode::Done => return,
                Mode::AwaitData => {
                    if self.held.len() + data.len() <= self.cfg.max_buffer {
                        self.held.extend_from_slice(data);
                        return;
                    }
                    // No reply in sight: assume the server accepted DATA.
                    self.start_data();
                    let held = std::mem::take(&mut self.held);
                    self.client(&held, out);
                }
                Mode::Bdat(left, last) => {
                    // BDAT chunks are raw message bytes: split them into lines for MIME.
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                    let mut chunk = &data[..n];
                    data = &data[n..];
                    let max = self.cfg.line_max;
                    while let Some((line, whole)) = self.lines[0].next_line(&mut chunk, max) {
                        self.feed_mime(&line, whole, out);
                    }
                    let left = left - n as u64;
                    self.mode = Mode::Bdat(left, last);
                    if left == 0 {
                        self.mode = Mode::Command;
                        if last {
                            let rest = std::mem::take(&mut self.lines[0]);
                            if !rest.pending().is_empty() {
                                self.feed_mime(rest.pending(), true, out);
                            }
                            self.end_tx(true, out);
                        }
                    }
                }
                Mode::Command | Mode::Data => {
                    let max = self.cfg.line_max;
                    let Some((line, whole)) = self.lines[0].next_line(&mut data, max) else {
                        return;
                    };
                    if self.mode == Mode::Data {
                        self.data_line(&line, whole, out);
                    } else if whole {
                        self.command(&line, out);
                    } else {
                        out.push(anomaly("MAX_COMMAND_LINE_LEN_EXCEEDED"));
                        // Skip the rest of the over-long command line.
                        let _ = self.lines[0].next_line(&mut data, usize::MAX);
                    }
                }
            }
        }
    }

    fn server(&mut self, mut data: &[u8], out: &mut Vec<AppEvent>) {
        let max = self.cfg.line_max;
        while let Some((line, whole)) = self.lines[1].next_line(&mut data, max) {
            if self.skipping[1] {
                self.skipping[1] = !whole;
                continue;
            }
            if !whole {
                out.push(anomaly("MAX_REPLY_LINE_LEN_EXCEEDED"));
                self.skipping[1] = true;
                continue;
            }
            let code = line.get(..3).filter(|c| c.iter().all(u8::is_ascii_digit));
            if code.is_none() && !line.is_empty() {
                out.push(anomaly("INVALID_REPLY"));
                continue;
            }
            let last = line.get(3) != Some(&b'-');
            if last && code.is_some() {
                let idx = self.replies_seen;
                self.replies_seen += 1;
                let is_354 = code == Some(b"354");
                if self.mode == Mode::AwaitData && (self.data_cmd == Some(idx) || is_354) {
                    self.data_cmd = None;
                    if is_354 {
                        self.start_data();
                    } else {
                        out.push(anomaly("DATA_COMMAND_REJECTED"));
                        self.mode = Mode::Command;
                    }
                    let held = std::mem::take(&mut self.held);
                    self.client(&held, out);
                }
            }
            if self.starttls && last {
                self.starttls = false;
                if code == Some(b"220") {
                    // The session continues in TLS: nothing more can be read here.
                    self.mode = Mode::Done;
                    self.end_tx(true, out);
                    out.push(AppEvent::Upgrade {
                        from: AppProto::Smtp,
                        to: Some(AppProto::Tls),
                    });
                    return;
                }
                out.push(anomaly("TLS_REJECTED"));
            }
        }
    }
}

impl Parser for SmtpParser {
    fn proto(&self) -> AppProto {
        AppProto::Smtp
    }

    fn parse(&mut self, dir: Direction, data: &[u8], _ts: i64, out: &mut Vec<AppEvent>) {
        if self.mode == Mode::Done {
            return;
        }
        match dir {
            Direction::ToServer => self.client(data, out),
            Direction::ToClient => self.server(data, out),
        }
    }

    fn gap(&mut self, dir: Direction, _len: u64, out: &mut Vec<AppEvent>) {
        self.lines[dir.idx()].clear();
        self.skipping[dir.idx()] = false;
        if dir == Direction::ToServer {
            // Lost client bytes: the message cannot be decoded further.
            if self.mode != Mode::Command {
                self.end_tx(false, out);
            }
            self.mode = Mode::Done;
        }
    }

    fn close(&mut self, _ts: i64, out: &mut Vec<AppEvent>) {
        if self.mode == Mode::AwaitData && !self.held.is_empty() {
            // The reply to DATA was never seen: read what followed as the message.
            self.start_data();
            let held = std::mem::take(&mut self.held);
            self.client(&held, out);
        }
        let complete = self.mode == Mode::Command || self.mode == Mode::Done;
        self.end_tx(complete, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session shaped like suricata-verify bug-3616-smtp: EHLO, AUTH LOGIN, envelope,
    /// a multipart/mixed message with a nested multipart/alternative and a quoted-printable
    /// attachment NEWS.txt, then QUIT.
    const CLIENT: &[u8] = b"EHLO GP\r\n\
AUTH LOGIN\r\n\
Z3VycGFydGFwQHBhdHJpb3RzLmlu\r\n\
cHVuamFiQDEyMw==\r\n\
MAIL FROM: <gurpartap@patriots.in>\r\n\
RCPT TO: <raj_deol2002in@yahoo.co.in>\r\n\
DATA\r\n\
From: \"Gurpartap Singh\" <gurpartap@patriots.in>\r\n\
To: <raj_deol2002in@yahoo.co.in>\r\n\
Subject: SMTP\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed;\r\n\
\tboundary=\"----=_NextPart_000_0004_01CA45B0.095693F0\"\r\n\
\r\n\
This is a multi-part message in MIME format.\r\n\
\r\n\
------=_NextPart_000_0004_01CA45B0.095693F0\r\n\
Content-Type: multipart/alternative;\r\n\
\tboundary=\"----=_NextPart_001_0005_01CA45B0.095693F0\"\r\n\
\r\n\
------=_NextPart_001_0005_01CA45B0.095693F0\r\n\
Content-Type: text/plain;\r\n\
\tcharset=\"us-ascii\"\r\n\
Content-Transfer-Encoding: 7bit\r\n\
\r\n\
Hello\r\n\
------=_NextPart_001_0005_01CA45B0.095693F0--\r\n\
\r\n\
------=_NextPart_000_0004_01CA45B0.095693F0\r\n\
Content-Type: text/plain;\r\n\
\tname=\"NEWS.txt\"\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
Content-Disposition: attachment;\r\n\
\tfilename=\"NEWS.txt\"\r\n\
\r\n\
Version 4.9.9.1 =3D soft=\r\n\
break\r\n\
..leading dot\r\n\
------=_NextPart_000_0004_01CA45B0.095693F0--\r\n\
\r\n\
.\r\n\
QUIT\r\n";

    const SERVER: &[u8] = b"220-xc90.websitewelcome.com ESMTP Exim 4.69\r\n\
220 and/or bulk e-mail.\r\n\
250-xc90.websitewelcome.com Hello GP [122.162.143.157]\r\n\
250 HELP\r\n\
334 VXNlcm5hbWU6\r\n\
334 UGFzc3dvcmQ6\r\n\
235 Authentication succeeded\r\n\
250 OK\r\n\
250 Accepted\r\n\
354 Enter message, ending with \".\" on a line by itself\r\n\
250 OK id=1Mugho-0003Dg-Un\r\n\
221 xc90.websitewelcome.com closing connection\r\n";

    fn run(chunks: &[(Direction, &[u8])]) -> Vec<AppEvent> {
        let mut p = SmtpParser::new(&AppConfig::default());
        let mut out = Vec::new();
        for (d, c) in chunks {
            p.parse(*d, c, 0, &mut out);
        }
        p.close(0, &mut out);
        out
    }

    fn txs(ev: &[AppEvent]) -> Vec<&SmtpTx> {
        ev.iter()
            .filter_map(|e| match e {
                AppEvent::Tx(Transaction::Smtp(t)) => Some(t),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn session_like_suricata_any_split() {
        let attachment = b"Version 4.9.9.1 = softbreak\r\n.leading dot\r\n";
        for split in 0..CLIENT.len() {
            let (a, b) = CLIENT.split_at(split);
            let ev = run(&[
                (Direction::ToClient, &SERVER[..120]),
                (Direction::ToServer, a),
                (Direction::ToServer, b),
                (Direction::ToClient, &SERVER[120..]),
            ]);
            let t = txs(&ev);
            assert_eq!(t.len(), 2, "split {split}");
            // As Suricata 7.0.10 logs bug-3616-smtp (tx 0 and the QUIT tx 1).
            let tx0 = Transaction::Smtp(t[0].clone());
            assert_eq!(
                tx0.eve(),
                vec![(
                    "smtp",
                    "smtp",
                    serde_json::json!({"helo":"GP","mail_from":"<gurpartap@patriots.in>","rcpt_to":["<raj_deol2002in@yahoo.co.in>"]})
                )]
            );
            assert_eq!(
                tx0.eve_extra(),
                vec![(
                    "email",
                    serde_json::json!({"status":"PARSE_DONE","from":"\"Gurpartap Singh\" <gurpartap@patriots.in>","to":["<raj_deol2002in@yahoo.co.in>"],"attachment":["NEWS.txt"]})
                )]
            );
            assert_eq!(t[1].eve(), serde_json::json!({"helo":"GP"}));
            assert_eq!(t[1].tx_id, 1);
            let files: Vec<_> = ev
                .iter()
                .filter_map(|e| match e {
                    AppEvent::File(f) => Some(f),
                    _ => None,
                })
                .collect();
            assert_eq!(files.len(), 1, "split {split}");
            assert_eq!(files[0].filename, b"NEWS.txt");
            assert_eq!(files[0].size, attachment.len() as u64, "split {split}");
            assert_eq!(files[0].state, FileState::Closed);
            assert_eq!(files[0].section.as_ref().map(|s| s.0), Some("smtp"));
            assert_eq!(files[0].eve_extra()[0].0, "email");
        }
    }

    /// The files of one message sent with DATA.
    fn message_files(msg: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut client = b"EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n".to_vec();
        client.extend_from_slice(msg);
        client.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
        let ev = run(&[
            (
                Direction::ToClient,
                b"220 x\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n",
            ),
            (Direction::ToServer, &client),
            (Direction::ToClient, b"250 ok\r\n221 bye\r\n"),
        ]);
        let mut out = Vec::new();
        for e in &ev {
            if let AppEvent::File(f) = e {
                out.push((f.filename.clone(), f.size));
            }
        }
        // Sizes are enough to tell the line breaks apart; names say which part.
        out.into_iter()
            .map(|(n, size)| (n, size.to_string().into_bytes()))
            .collect()
    }

    #[test]
    fn plain_attachment_line_breaks_like_suricata() {
        // A single-part message: the break before the final "." is no part of the file.
        let f = message_files(
            b"Content-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename=\"m.exe\"\r\n\r\nPAYLOAD-30-BYTES-PAYLOAD-30-BY\r\nx",
        );
        assert_eq!(f, [(b"m.exe".to_vec(), b"33".to_vec())]);
        // Multipart: the break before a boundary is held back and starts the next plain
        // file (Suricata keeps one held-back break per message).
        let f = message_files(
            b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
Content-Disposition: attachment; filename=\"one.txt\"\r\n\r\nabc\r\ndef\r\n--b\r\n\
Content-Disposition: attachment; filename=\"two.txt\"\r\n\r\nghi\r\n--b--",
        );
        assert_eq!(
            f,
            [
                (b"one.txt".to_vec(), b"8".to_vec()),
                (b"two.txt".to_vec(), b"5".to_vec())
            ]
        );
    }

    #[test]
    fn base64_attachment_and_invalid_chars() {
        let mut msg = b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: x\r\n\
Content-Type: application/pdf; name=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            .to_vec();
        // "%PDF-1.4 test" in base64, split across lines, with a stray '!'.
        msg.extend_from_slice(b"JVBERi0x\r\nLjQgdGVz!\r\ndA==\r\n.\r\n");
        let ev = run(&[(Direction::ToServer, &msg)]);
        let f = ev.iter().find_map(|e| match e {
            AppEvent::File(f) => Some(f),
            _ => None,
        });
        let f = f.unwrap();
        assert_eq!(f.filename, b"r.pdf");
        assert_eq!(f.size, 13);
        assert_eq!(f.magic, Some("PDF document"));
        assert!(ev.iter().any(|e| matches!(
            e,
            AppEvent::Anomaly {
                event: "MIME_INVALID_BASE64",
                ..
            }
        )));
    }

    #[test]
    fn bdat_starttls_and_hostile_input() {
        let ev = run(&[(
            Direction::ToServer,
            b"EHLO x\r\nMAIL FROM:<a@b>\r\nBDAT 5 LAST\r\nSub: ",
        )]);
        assert_eq!(txs(&ev).len(), 1);
        // STARTTLS accepted: parsing stops, nothing after it is read.
        let mut p = SmtpParser::new(&AppConfig::default());
        let mut out = Vec::new();
        p.parse(Direction::ToServer, b"EHLO x\r\nSTARTTLS\r\n", 0, &mut out);
        p.parse(Direction::ToClient, b"220 go ahead\r\n", 0, &mut out);
        p.parse(
            Direction::ToServer,
            b"\x16\x03\x01\x02\x00 binary",
            0,
            &mut out,
        );
        assert_eq!(p.mode, Mode::Done);
        assert!(matches!(
            out.last(),
            Some(AppEvent::Upgrade {
                from: AppProto::Smtp,
                to: Some(AppProto::Tls)
            })
        ));
        // A 1 MB command line in pieces: bounded, anomaly, no panic.
        let long = vec![b'A'; 1 << 20];
        let mut chunks: Vec<(Direction, &[u8])> = long
            .chunks(1000)
            .map(|c| (Direction::ToServer, c))
            .collect();
        chunks.push((Direction::ToServer, b"\r\nHELO ok\r\n"));
        let ev = run(&chunks);
        assert!(ev.iter().any(|e| matches!(
            e,
            AppEvent::Anomaly {
                event: "MAX_COMMAND_LINE_LEN_EXCEEDED",
                ..
            }
        )));
        assert_eq!(txs(&ev)[0].helo.as_deref(), Some(&b"ok"[..]));
        // Deeply nested multipart: depth bounded by smtp_max_parts.
        let mut msg = b"DATA\r\n".to_vec();
        for i in 0..1000 {
            msg.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
            );
        }
        msg.extend_from_slice(b"\r\n.\r\n");
        let ev = run(&[(Direction::ToServer, &msg)]);
        assert_eq!(txs(&ev).len(), 1);
        // Truncated anywhere: no panic; the message is flushed at close.
        for n in 0..CLIENT.len() {
            run(&[(Direction::ToServer, &CLIENT[..n])]);
        }
        let ev = run(&[(Direction::ToServer, &CLIENT[..CLIENT.len() - 40])]);
        assert_eq!(txs(&ev)[0].status, "PARSE_ERROR");
    }

    #[test]
    fn rfc2231_continued_filename_and_encapsulated_message() {
        // A name split in RFC 2231 sections over folded lines (sv-corpus, Suricata 7 joins
        // them); the inner message of a message/rfc822 entity carries the file, the
        // wrapper's name and encoding do not apply.
        let msg = b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n\
Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\
Content-Type: application/zip;\r\nContent-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment;\r\n filename*1=\"part2.zip\";\r\n filename*0=part1-;\r\n\r\n\
aGVsbG8=\r\n--B\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"innocent.txt\"\r\n\r\n\
Subject: inner\r\nContent-Disposition: attachment; filename=\"inner.exe\"\r\n\r\n\
PAYLOAD\r\n--B--\r\n.\r\n";
        let ev = run(&[(Direction::ToServer, msg)]);
        let f = crate::testing::files(&ev);
        let names: Vec<_> = f.iter().map(|f| (f.filename.clone(), f.size)).collect();
        assert_eq!(
            names,
            vec![(b"part1-part2.zip".to_vec(), 5), (b"inner.exe".to_vec(), 7)]
        );
        assert_eq!(
            mime_param(b"x; a*0=1; a*2*=3; a*1=2", b"a"),
            Some(b"123".to_vec())
        );
        assert_eq!(
            mime_param(b"x; a=plain; a*0=no", b"a"),
            Some(b"plain".to_vec())
        );
        assert_eq!(
            mime_param(b"x; a*99999999999999999999=1; a*x=2", b"a"),
            None
        );
    }

    #[test]
    fn rejected_data_is_not_a_message() {
        // Postfix refusing DATA before MAIL/RCPT (sv-corpus): the next commands are commands.
        let ev = run(&[
            (
                Direction::ToClient,
                b"220 mail.example.com ESMTP Postfix\r\n",
            ),
            (Direction::ToServer, b"helo client.example.com\r\n"),
            (Direction::ToClient, b"250 mail.example.com\r\n"),
            (Direction::ToServer, b"rcpt to:<bob@example.com>\r\n"),
            (
                Direction::ToClient,
                b"503 5.5.1 Error: need MAIL command\r\n",
            ),
            (Direction::ToServer, b"data\r\n"),
            (
                Direction::ToClient,
                b"503 5.5.1 Error: need RCPT command\r\n",
            ),
            (
                Direction::ToServer,
                b"mail from:<alice@example.com> SIZE=10\r\n",
            ),
            (Direction::ToClient, b"250 2.1.0 Ok\r\n"),
            (
                Direction::ToServer,
                b"rcpt to:<bob@example.com> NOTIFY=NEVER\r\n",
            ),
            (Direction::ToClient, b"250 2.1.5 Ok\r\n"),
            (Direction::ToServer, b"data\r\n"),
            (
                Direction::ToClient,
                b"354 End data with <CR><LF>.<CR><LF>\r\n",
            ),
            (
                Direction::ToServer,
                b"From: alice@example.com\r\nSubject: x\r\n\r\nhi\r\n.\r\n",
            ),
            (Direction::ToClient, b"250 2.0.0 Ok: queued\r\n"),
        ]);
        let t = txs(&ev);
        // As Suricata 7.0.10 logs this session.
        assert_eq!(
            t[0].eve(),
            serde_json::json!({"helo":"client.example.com","mail_from":"<alice@example.com>","rcpt_to":["<bob@example.com>","<bob@example.com>"]})
        );
        assert!(ev.iter().any(|e| matches!(
            e,
            AppEvent::Anomaly {
                event: "DATA_COMMAND_REJECTED",
                ..
            }
        )));
        assert_eq!(t[0].from.as_deref(), Some(&b"alice@example.com"[..]));
    }

    #[test]
    fn decoders() {
        let mut carry = Vec::new();
        let mut out = Vec::new();
        assert!(b64_decode(&mut carry, b"aGVsbG8", &mut out));
        b64_finish(&mut carry, &mut out);
        assert_eq!(out, b"hello");
        let mut out = Vec::new();
        assert_eq!(qp_decode(b"a=3Db=", &mut out), (true, true));
        assert_eq!(out, b"a=b");
        let mut out = Vec::new();
        assert_eq!(qp_decode(b"bad=ZZ", &mut out), (false, false));
    }

    #[test]
    fn base64_padding_ends_a_quantum() {
        let (mut carry, mut out) = (Vec::new(), Vec::new());
        for line in [&b"NA="[..], b"=Mg", b"=="] {
            b64_decode(&mut carry, line, &mut out);
        }
        b64_finish(&mut carry, &mut out);
        assert_eq!(out, b"42");
    }
}
