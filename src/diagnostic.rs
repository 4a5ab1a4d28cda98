//! Problems found in rule and config files, told the way compilers tell them:
//! `path:line:col: error[rule-id]: message`, the source line, a caret under the spot.
//! A leaf: `rules` and `config` both report through it.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in one rule or config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line and column (in characters) of the problem, when it has a place.
    pub position: Option<Position>,
    /// The rule the problem is in, when it is in one.
    pub rule: Option<String>,
    pub message: String,
}

/// A place in a file, with the line's text for the caret display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
    source_line: String,
    /// How many characters the caret underlines (at least one).
    width: usize,
}

impl Position {
    /// The position of byte range `span` in `text`; a span past the end points at the end.
    pub fn of(text: &str, span: Range<usize>) -> Position {
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let line_start = text[..start].rfind('\n').map_or(0, |idx| idx + 1);
        let line_end = text[start..]
            .find('\n')
            .map_or(text.len(), |idx| start + idx);
        let source_line = text[line_start..line_end].trim_end_matches('\r');
        let end = floor_char_boundary(text, span.end.clamp(start, line_end));
        Position {
            line: text[..line_start].matches('\n').count() + 1,
            column: text[line_start..start].chars().count() + 1,
            source_line: source_line.to_owned(),
            width: text[start..end].chars().count().max(1),
        }
    }
}

fn floor_char_boundary(text: &str, mut idx: usize) -> usize {
    while !text.is_char_boundary(idx) {
        idx -= 1;
    }
    idx
}

impl Diagnostic {
    pub fn new(file: &Path, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.to_owned(),
            position: None,
            rule: None,
            message: message.into(),
        }
    }

    /// Places the diagnostic at byte range `span` of the file's `text`.
    pub fn at(mut self, text: &str, span: Option<Range<usize>>) -> Diagnostic {
        self.position = span.map(|span| Position::of(text, span));
        self
    }

    pub fn in_rule(mut self, rule: Option<&str>) -> Diagnostic {
        self.rule = rule.map(str::to_owned);
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(position) = &self.position {
            write!(f, ":{}:{}", position.line, position.column)?;
        }
        match &self.rule {
            Some(rule) => write!(f, ": error[{rule}]: {}", self.message)?,
            None => write!(f, ": error: {}", self.message)?,
        }
        if let Some(position) = &self.position {
            let gutter = position.line.to_string().len();
            write!(
                f,
                "\n{blank:gutter$} |\n{line} | {source}\n{blank:gutter$} | {pad}{carets}",
                blank = "",
                line = position.line,
                source = position.source_line,
                pad = " ".repeat(position.column - 1),
                carets = "^".repeat(position.width),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let text = "a = 1\nbé = 2\n";
        let position = Position::of(text, 10..11);
        assert_eq!((position.line, position.column), (2, 4));
        assert_eq!(position.source_line, "bé = 2");
    }

    #[test]
    fn display_shows_the_line_and_a_caret() {
        let text = "[[rule]]\nid = \"x\"\nseverty = \"high\"\n";
        let diagnostic = Diagnostic::new(Path::new("rules/a.toml"), "unknown field `severty`")
            .at(text, Some(18..25))
            .in_rule(Some("x"));
        assert_eq!(
            diagnostic.to_string(),
            "rules/a.toml:3:1: error[x]: unknown field `severty`\n  |\n3 | severty = \"high\"\n  | ^^^^^^^"
        );
    }

    #[test]
    fn spans_past_the_end_do_not_panic() {
        let position = Position::of("ab", 5..9);
        assert_eq!((position.line, position.column), (1, 3));
    }
}
