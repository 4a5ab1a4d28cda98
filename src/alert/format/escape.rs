//! Event values made inert before a person reads them.
//!
//! Whoever makes a metering call writes its product code, dimension and customer id, and
//! CloudTrail records them even when the call fails; error messages echo them back. So before
//! an event's text reaches an inbox or a channel:
//! - control characters (terminal escapes, bells) and bidirectional controls, which can hide
//!   or reorder what a reader sees, are removed;
//! - for Slack (Chatbot's `client-markdown`), `&`, `<` and `>` are escaped as Slack asks, so
//!   text can neither mention `@channel` nor disguise a link, and a value shown as code
//!   cannot end its code span.

use std::borrow::Cow;

/// Removed from every human format: control characters but line breaks and tabs, and the
/// bidirectional marks, embeddings, overrides and isolates.
fn removed(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` without control or bidirectional characters; line breaks and tabs kept.
pub fn plain(text: &str) -> Cow<'_, str> {
    if text.chars().any(removed) {
        Cow::Owned(text.chars().filter(|&c| !removed(c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// `text` as one line of plain text: line breaks and tabs become spaces, so a value cannot
/// start a line of its own (a fake field, a list item).
pub fn line(text: &str) -> String {
    plain(text)
        .chars()
        .map(|c| if c == '\n' || c == '\t' { ' ' } else { c })
        .collect()
}

/// `text` for Slack markdown: plain, with `&`, `<` and `>` escaped as Slack documents.
pub fn slack(text: &str) -> String {
    let text = plain(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` as Slack inline code: one line, escaped, and backticks (which would end the span)
/// shown as quotes; within `max` bytes inside the span (cut with a marker).
pub fn slack_code(text: &str, max: usize) -> String {
    let escaped = slack(&line(text)).replace('`', "'");
    format!("`{}`", line(&super::cut(&escaped, max)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_removed_line_breaks_kept() {
        assert_eq!(plain("a\u{1b}[31mb\u{7}c\u{202e}d\ne\tf"), "a[31mbcd\ne\tf");
        assert!(matches!(plain("clean text"), Cow::Borrowed(_)));
        assert_eq!(line("one\ntwo\tthree\r\n"), "one two three ");
    }

    #[test]
    fn slack_text_cannot_mention_a_channel_or_hide_a_link() {
        assert_eq!(
            slack("<!channel> & <https://evil.example|click>"),
            "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;"
        );
        assert_eq!(
            slack_code("user/`<!here>`*boss*\nfake: line", 100),
            "`user/'&lt;!here&gt;'*boss* fake: line`"
        );
        let cut = slack_code(&"<".repeat(100), 64);
        assert!(
            cut.len() <= 66 && cut.starts_with('`') && cut.ends_with('`'),
            "{cut}"
        );
    }
}
