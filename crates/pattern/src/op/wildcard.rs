//! `wildcard`: `*` matches any run of characters (including none); `\*` and `\\` are literal.

use crate::error::PatternError;

/// A compiled wildcard: the literal pieces between stars.
#[derive(Debug, Clone)]
pub struct Wildcard {
    /// Literal pieces with a star between each two (a leading or trailing star leaves an
    /// empty first or last piece).
    pieces: Vec<String>,
    /// The pattern as written, escapes included.
    text: Box<str>,
    /// Substring searchers for the middle pieces, built once.
    finders: Vec<memchr::memmem::Finder<'static>>,
}

impl PartialEq for Wildcard {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Wildcard {}

impl Wildcard {
    /// Parses a wildcard pattern, rejecting what AWS rejects (`**`, bad escapes). Positions in
    /// messages are AWS's: byte offsets counted from an opening quote.
    pub(crate) fn parse(path: &str, text: &str) -> Result<Wildcard, PatternError> {
        let mut pieces = vec![String::new()];
        let mut chars = text.char_indices().peekable();
        let mut previous_was_star = false;
        while let Some((pos, c)) = chars.next() {
            match c {
                '*' => {
                    if previous_was_star {
                        return Err(PatternError::invalid(
                            path,
                            format!("Consecutive wildcard characters at pos {pos}"),
                        ));
                    }
                    previous_was_star = true;
                    pieces.push(String::new());
                    continue;
                }
                '\\' => match chars.next() {
                    Some((_, escaped @ ('*' | '\\'))) => last(&mut pieces).push(escaped),
                    _ => {
                        return Err(PatternError::invalid(
                            path,
                            format!("Invalid escape character at pos {}", pos + 1),
                        ));
                    }
                },
                other => last(&mut pieces).push(other),
            }
            previous_was_star = false;
        }
        // The pieces between the first and the last are searched for; build their searchers once.
        let middle = pieces.len().saturating_sub(1).max(1);
        let finders = pieces[1..middle]
            .iter()
            .map(|piece| memchr::memmem::Finder::new(piece.as_bytes()).into_owned())
            .collect();
        Ok(Wildcard {
            pieces,
            text: text.into(),
            finders,
        })
    }

    /// Parses a wildcard outside any pattern (e.g. an entry of a named list), with the same
    /// rules and messages as the `wildcard` operator.
    pub fn new(text: &str) -> Result<Wildcard, PatternError> {
        Wildcard::parse("", text)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The longest literal piece: any matching value contains it.
    pub(crate) fn required_literal(&self) -> &str {
        self.pieces
            .iter()
            .max_by_key(|piece| piece.len())
            .map_or("", String::as_str)
    }

    pub fn matches(&self, value: &str) -> bool {
        let n_pieces = self.pieces.len();
        if n_pieces == 1 {
            return value == self.pieces[0];
        }
        let first = &self.pieces[0];
        let last = &self.pieces[n_pieces - 1];
        if value.len() < first.len() + last.len()
            || !value.starts_with(first.as_str())
            || !value.ends_with(last.as_str())
        {
            return false;
        }
        // Middle pieces, leftmost first: a greedy leftmost placement never loses a match when
        // the only metacharacter is `*`.
        let mut rest = &value.as_bytes()[first.len()..value.len() - last.len()];
        for (piece, finder) in self.pieces[1..n_pieces - 1].iter().zip(&self.finders) {
            match finder.find(rest) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
        true
    }
}

fn last(pieces: &mut [String]) -> &mut String {
    pieces
        .last_mut()
        .expect("pieces starts non-empty and only grows")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, value: &str, expected: bool) {
        let wildcard = Wildcard::parse("f", pattern).expect("valid wildcard");
        assert_eq!(
            wildcard.matches(value),
            expected,
            "{pattern:?} on {value:?}"
        );
    }

    #[test]
    fn stars_match_any_run() {
        check("*", "", true);
        check("*", "anything", true);
        check("a*", "abc", true);
        check("*c", "abc", true);
        check("a*c", "ac", true);
        check("a*c", "abbc", true);
        check("a*c", "abcd", false);
        check("*/dir/*", "x/dir/y", true);
        check("*/dir/*", "dir", false);
        check("a*b*a", "aba", true);
        check("a*a", "a", false);
        check("", "", true);
        check("", "x", false);
    }

    #[test]
    fn escapes_are_literal() {
        check(r"a\*b", "a*b", true);
        check(r"a\*b", "axb", false);
        check(r"a\\b", r"a\b", true);
    }

    #[test]
    fn consecutive_stars_are_rejected_with_position() {
        let error = Wildcard::parse("f", "arn:aws:events:us-east-1:**:event-bus/*")
            .expect_err("** is invalid");
        assert_eq!(error.reason(), "Consecutive wildcard characters at pos 26");
    }
}
