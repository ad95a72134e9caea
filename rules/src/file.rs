//! Rule files: lines, `\` continuations, comments, and commented-out (disabled) rules.

use crate::ast::Action;

/// One rule as it appears in a file: its logical text (continuations joined) and where it is.
#[derive(Clone, Debug)]
pub struct RuleText<'a> {
    /// The rule's text, continuations joined. Borrowed when the rule is on one line.
    pub text: std::borrow::Cow<'a, str>,
    /// 1-based line of the rule's first character.
    pub line: u32,
    /// `false` for a commented-out rule (`# alert …`).
    pub enabled: bool,
    /// Maps offsets in `text` to file positions: `(offset in text, line, column of that
    /// offset)`, one entry per physical line the rule spans; columns are 1-based bytes.
    pub(crate) breaks: Vec<(usize, u32, u32)>,
}

impl RuleText<'_> {
    /// File line and column (1-based) of byte `offset` of the rule's text.
    pub fn position(&self, offset: usize) -> (u32, u32) {
        let (start, line, col) = self
            .breaks
            .iter()
            .rev()
            .find(|(o, _, _)| *o <= offset)
            .copied()
            .unwrap_or((0, self.line, 1));
        let seg = self
            .text
            .get(start..offset.min(self.text.len()))
            .unwrap_or("");
        (line, col + seg.chars().count() as u32)
    }
}

/// Whether a comment's text (after the `#`s) is a commented-out rule rather than prose.
fn looks_like_rule(s: &str) -> bool {
    let mut words = s.split_ascii_whitespace();
    let (Some(action), Some(proto)) = (words.next(), words.next()) else {
        return false;
    };
    Action::from_name(action).is_some()
        && crate::header::protocol(proto).is_some()
        && s.contains('(')
        && s.trim_end().ends_with(')')
}

/// Splits a rule file into rules, enabled and disabled, skipping blank lines and prose
/// comments. Never fails: anything that is not a comment or blank is a rule to parse.
pub fn rules(text: &str) -> Vec<RuleText<'_>> {
    let mut out = Vec::new();
    let mut lines = text.split('\n').enumerate().peekable();
    while let Some((i, raw)) = lines.next() {
        let line_no = i as u32 + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let body = line.trim_start();
        if body.is_empty() {
            continue;
        }
        let indent = line.len() - body.len();
        // Commented-out rule or prose?
        let (enabled, start) = if body.starts_with('#') {
            let uncommented = body.trim_start_matches('#').trim_start();
            if !looks_like_rule(uncommented) {
                continue;
            }
            (false, line.len() - uncommented.len())
        } else {
            (true, indent)
        };
        let first = &line[start..];
        if !first.trim_end().ends_with('\\') {
            out.push(RuleText {
                text: std::borrow::Cow::Borrowed(first.trim_end()),
                line: line_no,
                enabled,
                breaks: vec![(0, line_no, start as u32 + 1)],
            });
            continue;
        }
        // Continuation lines: drop the trailing backslash and join.
        let mut joined = String::with_capacity(first.len() * 2);
        let mut breaks = vec![(0, line_no, start as u32 + 1)];
        let mut cur = first.trim_end();
        loop {
            match cur.strip_suffix('\\') {
                Some(c) => {
                    joined.push_str(c);
                    match lines.next() {
                        Some((j, next)) => {
                            let next = next.strip_suffix('\r').unwrap_or(next);
                            breaks.push((joined.len(), j as u32 + 1, 1));
                            cur = next.trim_end();
                        }
                        None => break,
                    }
                }
                None => {
                    joined.push_str(cur);
                    break;
                }
            }
        }
        out.push(RuleText {
            text: std::borrow::Cow::Owned(joined),
            line: line_no,
            enabled,
            breaks,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_files() {
        let f = "# a comment\n\nalert tcp any any -> any any (sid:1;)\n\
                 #alert udp any any -> any any (sid:2;)\n\
                 # alert on this and that\n\
                 alert tcp any any -> any any (msg:\"x\"; \\\n  sid:3;)\r\n";
        let r = rules(f);
        assert_eq!(r.len(), 3);
        assert!(r[0].enabled && r[0].line == 3);
        assert!(!r[1].enabled && r[1].line == 4 && r[1].text.starts_with("alert udp"));
        assert_eq!(
            r[2].text,
            "alert tcp any any -> any any (msg:\"x\";   sid:3;)"
        );
        assert_eq!(r[2].line, 6);
        // `sid` is on line 7, column 3.
        let off = r[2].text.find("sid").unwrap();
        assert_eq!(r[2].position(off), (7, 3));
        assert_eq!(r[1].position(0), (4, 2));
    }
}
