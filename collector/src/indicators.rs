//! Threat indicators: IP addresses and networks, domains (a domain matches itself and its
//! subdomains), URLs and file hashes (MD5, SHA-1, SHA-256), from plain-text lists and from
//! STIX 2.1 bundles, matched against every event on ingest.
//!
//! Files live in `DIR/indicators/` (or `serve --indicators DIR`): `*.txt` are lists, one
//! indicator per line (`#` starts a comment; the kind is recognised from the value: address
//! or CIDR, 32/40/64 hex digits, `scheme://…` for a URL, else a domain); `*.json` are STIX 2.1
//! bundles whose `indicator` objects with `pattern_type: stix` give comparisons such as
//! `[ipv4-addr:value = '198.51.100.7']`, `[domain-name:value = 'x.example']`,
//! `[url:value = 'http://x.example/a']`, `[file:hashes.'SHA-256' = '…']`, joined by `OR`
//! (inside or between observation brackets). Anything else (`AND`, `FOLLOWEDBY`, other
//! operators, object types or qualifiers, other pattern languages) is reported by
//! [`Indicators::unsupported`] with the object id, never ignored silently; an `OR` keeps its
//! supported comparisons (each one alone implies the pattern) and reports the others.
//!
//! Matched fields: `src_ip`, `dest_ip` (every record), and in their own record type only
//! `dns.rrname` (query and answer records), `http.hostname`, `http.url` (with the hostname),
//! `tls.sni`, `fileinfo.md5|sha1|sha256`.
//! A lookup is a hash probe per field (per label for domains, per prefix length for IPs).

use std::borrow::Cow;
use std::path::Path;

use crate::eve::{Eve, Family};
use crate::files::{self, FileError};
use crate::prefix::{Addrs, FastMap, Net, PrefixMap};

/// Kinds of indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Ip,
    Domain,
    Url,
    Md5,
    Sha1,
    Sha256,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ip => "ip",
            Kind::Domain => "domain",
            Kind::Url => "url",
            Kind::Md5 => "md5",
            Kind::Sha1 => "sha1",
            Kind::Sha256 => "sha256",
        }
    }
}

/// One indicator, normalised (lower-case domains, hosts and hashes; networks canonical).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indicator {
    pub kind: Kind,
    pub value: String,
    /// Where it came from: `file:line` for lists, `file#indicator--<uuid>` for STIX.
    pub source: String,
}

/// An indicator object or comparison that could not be used, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// `file#indicator--<uuid>`.
    pub id: String,
    pub reason: String,
}

/// One match of an event against an indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit<'e> {
    /// Index into [`Indicators::get`].
    pub indicator: usize,
    /// The EVE field that matched, e.g. `dns.rrname`.
    pub field: &'static str,
    /// Its value in the event.
    pub value: &'e str,
}

/// All loaded indicators, indexed for matching.
#[derive(Debug, Default)]
pub struct Indicators {
    list: Vec<Indicator>,
    ips: PrefixMap<usize>,
    domains: FastMap<String, usize>,
    /// host → (path and query, index).
    urls: FastMap<String, Vec<(String, usize)>>,
    hashes: FastMap<String, usize>,
    unsupported: Vec<Unsupported>,
}

/// Longest indicator value accepted (bounds hostile feeds).
const MAX_VALUE: usize = 8192;
/// Longest STIX pattern accepted.
const MAX_PATTERN: usize = 64 * 1024;

impl Indicators {
    /// Loads every `*.txt` and `*.json` file of `dir` (sorted by name); a missing directory
    /// gives no indicators.
    pub fn load_dir(dir: &Path) -> Result<Indicators, FileError> {
        let mut out = Indicators::default();
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => {
                return Err(FileError::Read {
                    path: dir.to_owned(),
                    reason: e.to_string(),
                })
            }
        };
        let mut paths: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            match p.extension().and_then(|e| e.to_str()) {
                Some("txt") => out.add_list(&p, &files::read(&p)?)?,
                Some("json") => out.add_stix(&p, &files::read(&p)?)?,
                _ => {}
            }
        }
        Ok(out)
    }

    /// Adds a plain-text list (`path` names it in sources and errors).
    pub fn add_list(&mut self, path: &Path, text: &str) -> Result<(), FileError> {
        let name = file_name(path);
        for (i, line) in text.lines().enumerate() {
            let v = line.split('#').next().unwrap_or("").trim();
            if v.is_empty() {
                continue;
            }
            let at = |message: String| FileError::At {
                path: path.to_owned(),
                line: i + 1,
                column: 1,
                message,
            };
            let kind = guess_kind(v).map_err(at)?;
            self.add(kind, v, format!("{name}:{}", i + 1)).map_err(at)?;
        }
        Ok(())
    }

    /// Adds the indicators of a STIX 2.1 bundle. Malformed JSON or a bundle without
    /// `objects` is an error; unusable indicator objects are recorded in [`unsupported`].
    ///
    /// [`unsupported`]: Indicators::unsupported
    pub fn add_stix(&mut self, path: &Path, text: &str) -> Result<(), FileError> {
        #[derive(serde::Deserialize)]
        struct Bundle {
            #[serde(rename = "type")]
            kind: String,
            objects: Vec<serde_json::Value>,
        }
        let name = file_name(path);
        let b: Bundle = serde_json::from_str(text).map_err(|e| files::json_error(path, &e))?;
        if b.kind != "bundle" {
            return Err(FileError::Whole {
                path: path.to_owned(),
                message: format!("field `type`: `{}` is not a STIX `bundle`", b.kind),
            });
        }
        for (n, o) in b.objects.iter().enumerate() {
            if o.get("type").and_then(|t| t.as_str()) != Some("indicator") {
                continue;
            }
            let id = o
                .get("id")
                .and_then(|t| t.as_str())
                .map_or_else(|| format!("objects[{n}]"), str::to_owned);
            let sid = format!("{name}#{id}");
            let field = |f: &str| o.get(f).and_then(|v| v.as_str());
            let reason = if o.get("revoked").and_then(|v| v.as_bool()) == Some(true) {
                Some("revoked".to_owned())
            } else if field("pattern_type") != Some("stix") {
                Some(format!(
                    "pattern_type `{}` is not `stix`",
                    field("pattern_type").unwrap_or("(missing)")
                ))
            } else {
                match field("pattern") {
                    None => Some("no `pattern`".into()),
                    Some(p) => match parse_pattern(p) {
                        Err(reason) => Some(reason),
                        Ok(comps) => {
                            for c in comps {
                                let r = match c {
                                    Ok((kind, value)) => self.add(kind, &value, sid.clone()).err(),
                                    Err(reason) => Some(reason),
                                };
                                if let Some(reason) = r {
                                    self.unsupported.push(Unsupported {
                                        id: sid.clone(),
                                        reason,
                                    });
                                }
                            }
                            None
                        }
                    },
                }
            };
            if let Some(reason) = reason {
                self.unsupported.push(Unsupported { id: sid, reason });
            }
        }
        Ok(())
    }

    /// Adds one indicator; `Err` says why the value is invalid. Duplicates keep the first.
    pub fn add(&mut self, kind: Kind, value: &str, source: String) -> Result<(), String> {
        if value.len() > MAX_VALUE {
            return Err(format!("value is {} bytes, over {MAX_VALUE}", value.len()));
        }
        let idx = self.list.len();
        let value = match kind {
            Kind::Ip => {
                let net: Net = value.parse()?;
                if self.ips.insert(net, idx).is_err() {
                    return Ok(());
                }
                net.to_string()
            }
            Kind::Domain => {
                let d = normalize_domain(value)?;
                if self.domains.contains_key(&d) {
                    return Ok(());
                }
                self.domains.insert(d.clone(), idx);
                d
            }
            Kind::Url => {
                let (host, path) = split_url(value)
                    .ok_or_else(|| format!("`{value}` is not an http(s) URL with a host"))?;
                let host = normalize_domain(host)?;
                let entry = self.urls.entry(host).or_default();
                if entry.iter().any(|(p, _)| p == path) {
                    return Ok(());
                }
                entry.push((path.to_owned(), idx));
                value.to_owned()
            }
            Kind::Md5 | Kind::Sha1 | Kind::Sha256 => {
                let want = match kind {
                    Kind::Md5 => 32,
                    Kind::Sha1 => 40,
                    _ => 64,
                };
                if value.len() != want || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!(
                        "`{value}` is not a {} hash ({want} hex digits)",
                        kind.as_str()
                    ));
                }
                let h = value.to_ascii_lowercase();
                if self.hashes.contains_key(&h) {
                    return Ok(());
                }
                self.hashes.insert(h.clone(), idx);
                h
            }
        };
        self.list.push(Indicator {
            kind,
            value,
            source,
        });
        Ok(())
    }

    /// The indicator behind a [`Hit`].
    pub fn get(&self, idx: usize) -> &Indicator {
        &self.list[idx]
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Indicator objects or comparisons that were not loaded, with the reason.
    pub fn unsupported(&self) -> &[Unsupported] {
        &self.unsupported
    }

    /// Appends every match of `e` to `out`.
    pub fn match_event<'e>(&self, e: &'e Eve<'_>, out: &mut Vec<Hit<'e>>) {
        if self.list.is_empty() {
            return;
        }
        self.match_event_at(e, &Addrs::parse(&e.src_ip, &e.dest_ip), out);
    }

    /// [`match_event`](Self::match_event) with the event's addresses already parsed.
    pub fn match_event_at<'e>(&self, e: &'e Eve<'_>, addrs: &Addrs, out: &mut Vec<Hit<'e>>) {
        if self.list.is_empty() {
            return;
        }
        if !self.ips.is_empty() {
            for (field, ip, v) in [
                ("src_ip", addrs.src, &e.src_ip),
                ("dest_ip", addrs.dest, &e.dest_ip),
            ] {
                if let Some(&i) = ip.and_then(|ip| self.ips.lookup(ip)) {
                    out.push(Hit {
                        indicator: i,
                        field,
                        value: v,
                    });
                }
            }
        }
        // App-layer fields only in their own record type: Suricata repeats the `http` object in
        // fileinfo and alert records of the same transaction, which would match it again.
        let family = e.family();
        if let (Family::Dns, Some(d)) = (family, &e.dns) {
            self.match_domain("dns.rrname", &d.rrname, out);
        }
        if let (Family::Tls, Some(t)) = (family, &e.tls) {
            self.match_domain("tls.sni", &t.sni, out);
        }
        if let (Family::Http, Some(h)) = (family, &e.http) {
            self.match_domain("http.hostname", &h.hostname, out);
            if !self.urls.is_empty() && !h.url.is_empty() {
                let (host, path) = match split_url(&h.url) {
                    Some((host, path)) => (host, path),
                    None => (&*h.hostname, &*h.url),
                };
                if let Some(paths) = self.urls.get(&*lower(host)) {
                    if let Some((_, i)) = paths.iter().find(|(p, _)| p == path) {
                        out.push(Hit {
                            indicator: *i,
                            field: "http.url",
                            value: &h.url,
                        });
                    }
                }
            }
        }
        if let (Family::Fileinfo, Some(f)) = (family, &e.fileinfo) {
            if !self.hashes.is_empty() {
                for (field, v) in [
                    ("fileinfo.md5", &f.md5),
                    ("fileinfo.sha1", &f.sha1),
                    ("fileinfo.sha256", &f.sha256),
                ] {
                    if v.is_empty() {
                        continue;
                    }
                    if let Some(&i) = self.hashes.get(&*lower(v)) {
                        out.push(Hit {
                            indicator: i,
                            field,
                            value: v,
                        });
                    }
                }
            }
        }
    }

    fn match_domain<'e>(&self, field: &'static str, name: &'e str, out: &mut Vec<Hit<'e>>) {
        if self.domains.is_empty() || name.is_empty() {
            return;
        }
        let lowered = lower(name);
        let mut cand = lowered.strip_suffix('.').unwrap_or(&lowered);
        loop {
            if let Some(&i) = self.domains.get(cand) {
                out.push(Hit {
                    indicator: i,
                    field,
                    value: name,
                });
                return;
            }
            match cand.split_once('.') {
                Some((_, rest)) => cand = rest,
                None => return,
            }
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Lower-cases ASCII only when needed (event values are almost always lower-case already).
fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

fn normalize_domain(v: &str) -> Result<String, String> {
    let d = v.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(d)
    } else {
        Err(format!("`{v}` is not a domain name"))
    }
}

/// `http://Host:8080/p?q#f` → (`Host`, `/p?q`); `None` without an http(s) scheme or host.
fn split_url(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..end)?;
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = match host_port.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => host_port,
    };
    if host.is_empty() {
        return None;
    }
    let path = rest.get(end..).unwrap_or("");
    let path = path.split('#').next().unwrap_or("");
    Some((host, if path.is_empty() { "/" } else { path }))
}

fn guess_kind(v: &str) -> Result<Kind, String> {
    if v.parse::<Net>().is_ok() || v.contains('/') && !v.contains("://") {
        return Ok(Kind::Ip);
    }
    if v.contains("://") {
        return Ok(Kind::Url);
    }
    if v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return match v.len() {
            32 => Ok(Kind::Md5),
            40 => Ok(Kind::Sha1),
            64 => Ok(Kind::Sha256),
            n => Err(format!("`{v}`: {n} hex digits is no md5/sha1/sha256 hash")),
        };
    }
    if v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("`{v}` is not an IP address"));
    }
    if !v.trim_end_matches('.').contains('.') {
        return Err(format!("`{v}`: a domain needs at least two labels"));
    }
    normalize_domain(v).map(|_| Kind::Domain)
}

/// A parsed comparison: the kind and value, or why it is unsupported.
type Comparison = Result<(Kind, String), String>;

/// Parses a STIX 2.1 pattern made of `OR`-joined equality comparisons. `Err` rejects the
/// whole pattern; an `Err` element is one unsupported comparison of an `OR`.
fn parse_pattern(p: &str) -> Result<Vec<Comparison>, String> {
    if p.len() > MAX_PATTERN {
        return Err(format!("pattern is {} bytes, over {MAX_PATTERN}", p.len()));
    }
    let mut t = Tokens { s: p.trim() };
    let mut out = Vec::new();
    loop {
        t.expect('[')?;
        loop {
            out.push(t.comparison()?);
            t.skip_ws();
            if t.s.starts_with(']') {
                break;
            }
            t.keyword("OR")?;
        }
        t.expect(']')?;
        t.skip_ws();
        if t.s.is_empty() {
            return Ok(out);
        }
        t.keyword("OR")?;
    }
}

struct Tokens<'a> {
    s: &'a str,
}

impl<'a> Tokens<'a> {
    fn skip_ws(&mut self) {
        self.s = self.s.trim_start();
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        self.skip_ws();
        match self.s.strip_prefix(c) {
            Some(rest) => {
                self.s = rest;
                Ok(())
            }
            None => Err(format!("expected `{c}` at `{}`", self.context())),
        }
    }

    fn context(&self) -> &str {
        let end = self
            .s
            .char_indices()
            .nth(30)
            .map_or(self.s.len(), |(i, _)| i);
        &self.s[..end]
    }

    fn word(&mut self) -> &'a str {
        self.skip_ws();
        let end = self
            .s
            .find(|c: char| c.is_whitespace() || c == ']' || c == '[' || c == '=' || c == '!')
            .unwrap_or(self.s.len());
        let (w, rest) = self.s.split_at(end);
        self.s = rest;
        w
    }

    fn keyword(&mut self, kw: &str) -> Result<(), String> {
        let w = self.word();
        if w == kw {
            Ok(())
        } else if w.is_empty() {
            Err(format!("unexpected `{}`", self.context()))
        } else {
            Err(format!(
                "`{w}` is not supported (only `OR` of `=` comparisons)"
            ))
        }
    }

    /// `object-path = 'string'`: the outer `Result` aborts the pattern on a syntax error; the
    /// inner one is an unsupported (but well-formed) comparison.
    fn comparison(&mut self) -> Result<Comparison, String> {
        self.skip_ws();
        let end = self
            .s
            .find(|c: char| c.is_whitespace() || c == '=' || c == '!' || c == ']')
            .unwrap_or(self.s.len());
        let (path, rest) = self.s.split_at(end);
        self.s = rest;
        let op = self.word();
        let op = if op.is_empty() {
            self.skip_ws();
            if let Some(rest) = self.s.strip_prefix("!=") {
                self.s = rest;
                "!="
            } else if let Some(rest) = self.s.strip_prefix('=') {
                self.s = rest;
                "="
            } else {
                return Err(format!("expected an operator at `{}`", self.context()));
            }
        } else {
            op
        };
        let value = self.string()?;
        if op != "=" {
            return Ok(Err(format!(
                "`{path} {op} …`: operator `{op}` is not supported"
            )));
        }
        let kind = match path {
            "ipv4-addr:value" | "ipv6-addr:value" => Kind::Ip,
            "domain-name:value" => Kind::Domain,
            "url:value" => Kind::Url,
            "file:hashes.MD5" | "file:hashes.'MD5'" => Kind::Md5,
            "file:hashes.'SHA-1'" | "file:hashes.SHA1" => Kind::Sha1,
            "file:hashes.'SHA-256'" | "file:hashes.SHA256" => Kind::Sha256,
            other => return Ok(Err(format!("object path `{other}` is not supported"))),
        };
        Ok(Ok((kind, value)))
    }

    fn string(&mut self) -> Result<String, String> {
        self.skip_ws();
        let Some(rest) = self.s.strip_prefix('\'') else {
            return Err(format!("expected a quoted string at `{}`", self.context()));
        };
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\'' => {
                    self.s = &rest[i + 1..];
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, c @ ('\'' | '\\'))) => out.push(c),
                    _ => return Err("invalid escape in a string".into()),
                },
                c => out.push(c),
            }
        }
        Err("unterminated string".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eve(line: &str) -> Eve<'_> {
        crate::eve::parse_str(line).unwrap()
    }

    fn hits(ind: &Indicators, line: &str) -> Vec<(String, &'static str)> {
        let e = eve(line);
        let mut out = Vec::new();
        ind.match_event(&e, &mut out);
        out.iter()
            .map(|h| (ind.get(h.indicator).value.clone(), h.field))
            .collect()
    }

    const LIST: &str = "\
# feed of the day
198.51.100.7
203.0.113.0/24   # a whole network
Evil.Example.
http://dl.bad.example:8080/payload.bin?x=1
44d88612fea8a8f36de82e1278abb02f
3395856ce81f2b7382dee72602f798b642f14140
275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f
";

    fn loaded() -> Indicators {
        let mut i = Indicators::default();
        i.add_list(Path::new("feed.txt"), LIST).unwrap();
        i
    }

    #[test]
    fn list_kinds_and_matches() {
        let i = loaded();
        assert_eq!(i.len(), 7);
        let kinds: Vec<_> = i.list.iter().map(|x| x.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Ip,
                Kind::Ip,
                Kind::Domain,
                Kind::Url,
                Kind::Md5,
                Kind::Sha1,
                Kind::Sha256
            ]
        );
        assert_eq!(i.get(0).source, "feed.txt:2");
        let ts = "\"timestamp\":\"2026-11-22T10:00:00.000000+0000\"";
        assert_eq!(
            hits(&i, &format!("{{{ts},\"event_type\":\"flow\",\"src_ip\":\"10.0.0.1\",\"dest_ip\":\"203.0.113.9\"}}")),
            [("203.0.113.0/24".to_owned(), "dest_ip")]
        );
        assert_eq!(
            hits(
                &i,
                &format!(
                    "{{{ts},\"event_type\":\"dns\",\"dns\":{{\"rrname\":\"cdn.EVIL.example\"}}}}"
                )
            ),
            [("evil.example".to_owned(), "dns.rrname")]
        );
        // Near misses: a longer label is not a subdomain; a neighbour address; another path.
        assert!(hits(
            &i,
            &format!("{{{ts},\"event_type\":\"dns\",\"dns\":{{\"rrname\":\"notevil.example\"}}}}")
        )
        .is_empty());
        assert!(hits(
            &i,
            &format!("{{{ts},\"event_type\":\"tls\",\"tls\":{{\"sni\":\"evil.example.com\"}}}}")
        )
        .is_empty());
        assert!(hits(
            &i,
            &format!("{{{ts},\"event_type\":\"flow\",\"src_ip\":\"198.51.100.8\"}}")
        )
        .is_empty());
        assert_eq!(
            hits(&i, &format!("{{{ts},\"event_type\":\"http\",\"http\":{{\"hostname\":\"dl.bad.example\",\"url\":\"/payload.bin?x=1\"}}}}")),
            [("http://dl.bad.example:8080/payload.bin?x=1".to_owned(), "http.url")]
        );
        assert!(hits(&i, &format!("{{{ts},\"event_type\":\"http\",\"http\":{{\"hostname\":\"dl.bad.example\",\"url\":\"/payload.bin\"}}}}")).is_empty());
        assert_eq!(
            hits(&i, &format!("{{{ts},\"event_type\":\"fileinfo\",\"fileinfo\":{{\"md5\":\"44D88612FEA8A8F36DE82E1278ABB02F\",\"sha256\":\"275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f\"}}}}")),
            [
                ("44d88612fea8a8f36de82e1278abb02f".to_owned(), "fileinfo.md5"),
                ("275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f".to_owned(), "fileinfo.sha256")
            ]
        );
    }

    #[test]
    fn bad_list_lines_name_file_and_line() {
        let mut i = Indicators::default();
        for (text, line) in [
            ("1.2.3.4\n10.0.0.1/8\n", 2),
            ("\n\n300.1.2.3\n", 3),
            ("abcdef0123\n", 1),
            ("bad domain!\n", 1),
            ("ftp://x.example/a\n", 1),
        ] {
            let e = i.add_list(Path::new("/srv/feed.txt"), text).unwrap_err();
            assert!(
                e.to_string().starts_with(&format!("/srv/feed.txt:{line}:")),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn stix_bundle() {
        let bundle = r#"{"type":"bundle","id":"bundle--1","objects":[
          {"type":"identity","id":"identity--1","name":"VNCERT"},
          {"type":"indicator","id":"indicator--a","pattern_type":"stix","pattern":"[ipv4-addr:value = '198.51.100.7']"},
          {"type":"indicator","id":"indicator--b","pattern_type":"stix","pattern":"[domain-name:value = 'c2.example' OR url:value = 'https://c2.example/beacon'] OR [file:hashes.'SHA-256' = '275A021BBFB6489E54D471899F7DB9D1663FC695EC2FE2A2C4538AABF651FD0F']"},
          {"type":"indicator","id":"indicator--c","pattern_type":"stix","pattern":"[ipv4-addr:value = '1.2.3.4' AND network-traffic:dst_port = 443]"},
          {"type":"indicator","id":"indicator--d","pattern_type":"sigma","pattern":"title: x"},
          {"type":"indicator","id":"indicator--e","pattern_type":"stix","pattern":"[email-addr:value = 'a@b.example' OR domain-name:value = 'it\\'s.example']"},
          {"type":"indicator","id":"indicator--f","pattern_type":"stix","pattern":"[ipv4-addr:value = '5.6.7.8'] WITHIN 300 SECONDS"},
          {"type":"indicator","id":"indicator--g","pattern_type":"stix","pattern":"[ipv4-addr:value = 'x"},
          {"type":"indicator","id":"indicator--h","pattern_type":"stix","pattern":"[url:value != 'http://a.example/']"},
          {"type":"indicator","id":"indicator--i","pattern_type":"stix","revoked":true,"pattern":"[ipv4-addr:value = '9.9.9.9']"}
        ]}"#;
        let mut i = Indicators::default();
        i.add_stix(Path::new("vncert.json"), bundle).unwrap();
        let vals: Vec<_> = i.list.iter().map(|x| (x.kind, x.value.as_str())).collect();
        assert_eq!(
            vals,
            [
                (Kind::Ip, "198.51.100.7/32"),
                (Kind::Domain, "c2.example"),
                (Kind::Url, "https://c2.example/beacon"),
                (
                    Kind::Sha256,
                    "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
                ),
            ]
        );
        assert_eq!(i.get(1).source, "vncert.json#indicator--b");
        let un: Vec<_> = i
            .unsupported()
            .iter()
            .map(|u| u.id.trim_start_matches("vncert.json#"))
            .collect();
        assert_eq!(
            un,
            [
                "indicator--c",
                "indicator--d",
                "indicator--e",
                "indicator--e",
                "indicator--f",
                "indicator--g",
                "indicator--h",
                "indicator--i"
            ],
            "{:#?}",
            i.unsupported()
        );
        assert!(i.unsupported()[0].reason.contains("AND"));
        assert!(i.unsupported()[2].reason.contains("email-addr:value"));
        assert!(i.unsupported()[3].reason.contains("it's.example"));

        for bad in [
            "{",
            "[]",
            r#"{"type":"bundle"}"#,
            r#"{"type":"x","objects":[]}"#,
        ] {
            assert!(i.add_stix(Path::new("b.json"), bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hostile_patterns_never_panic() {
        for p in [
            "",
            "[",
            "]",
            "[[",
            "['",
            "[a = '",
            "[a = 'x\\",
            "[a = 'x'",
            "[a = 'x'] OR",
            "[a 'x']",
            "[= 'x']",
            "[a = x]",
            "[a = 'ứ'] OR [",
            "[ipv4-addr:value = 'ứ']",
        ] {
            let _ = parse_pattern(p);
        }
        let long = format!("[{}]", "a".repeat(MAX_PATTERN));
        assert!(parse_pattern(&long).is_err());
    }
}
