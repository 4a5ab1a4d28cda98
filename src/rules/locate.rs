//! Where in a rule file the faulty part of a rejected pattern is written.
//!
//! The pattern engine names a problem by its dotted path (`detail.errorCode`), as AWS does,
//! and the loader holds a rule's `match` as one TOML value, whose span is the whole pattern.
//! So only when a pattern is rejected is the file parsed again, for the spans of the keys
//! inside it: the diagnostic then points at the field, or the operator, at fault.

use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The span of the key at the pattern path `path` inside the pattern at `keys` (`["match"]`,
/// `["for_each", "match"]`) of the rule whose table spans `rule` in `text`. Of a field's
/// operators, the one `reason` names is pointed at rather than the field. `None` when the
/// path is not written as TOML keys there (the caller keeps the whole pattern's span).
pub(super) fn pattern_key(
    text: &str,
    rule: &Range<usize>,
    keys: &[&str],
    path: &str,
    reason: &str,
) -> Option<Range<usize>> {
    if path.is_empty() {
        return None;
    }
    let document = DeTable::parse(text).ok()?;
    let DeValue::Array(rules) = document.get_ref().get("rule")?.get_ref() else {
        return None;
    };
    // An array on the way (`[[rule.for_each]]`) is searched element by element.
    let mut values = vec![rules.iter().find(|table| table.span() == *rule)?];
    for key in keys {
        values = values
            .into_iter()
            .filter_map(|value| value.get_ref().get(*key))
            .flat_map(|value| match value.get_ref() {
                DeValue::Array(items) => items.iter().collect(),
                _ => vec![value],
            })
            .collect();
    }
    let mut candidates = Vec::new();
    for value in values {
        if let DeValue::Table(pattern) = value.get_ref() {
            find(pattern, path, &mut candidates);
        }
    }
    // Of several places (`$or` alternatives, several `for_each`), the one with the operator
    // the reason names, else the first.
    candidates
        .iter()
        .find_map(|(_, leaf)| operator(leaf, reason))
        .or_else(|| candidates.first().map(|(key, _)| key.clone()))
}

/// Every key written for `path` in `table`, with its value. A key may hold several path
/// segments (`"detail.errorCode"`, as AWS also reads it), and `$or` alternatives are
/// searched in order.
fn find<'t, 'i>(
    table: &'t DeTable<'i>,
    path: &str,
    found: &mut Vec<(Range<usize>, &'t Spanned<DeValue<'i>>)>,
) {
    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        match value.get_ref() {
            DeValue::Array(alternatives) if name == "$or" => {
                for alternative in alternatives {
                    if let DeValue::Table(table) = alternative.get_ref() {
                        find(table, path, found);
                    }
                }
            }
            _ if name == path => found.push((key.span(), value)),
            DeValue::Table(inner) => {
                if let Some(rest) = path.strip_prefix(name).and_then(|r| r.strip_prefix('.')) {
                    find(inner, rest, found);
                }
            }
            _ => {}
        }
    }
}

/// The operator key (`{ prefx = "Throt" }`) among a field's values that `reason` names.
fn operator(leaf: &Spanned<DeValue<'_>>, reason: &str) -> Option<Range<usize>> {
    let DeValue::Array(values) = leaf.get_ref() else {
        return None;
    };
    let named = |name: &str| {
        reason
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .any(|word| word == name)
    };
    values.iter().find_map(|value| match value.get_ref() {
        DeValue::Table(operators) => operators
            .iter()
            .find(|(key, _)| named(key.get_ref()))
            .map(|(key, _)| key.span()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text `pattern_key` points at, for the one rule of `text`.
    fn pointed(text: &str, keys: &[&str], path: &str, reason: &str) -> Option<String> {
        let document = DeTable::parse(text).expect("test TOML parses");
        let rule = match document.get_ref().get("rule").map(Spanned::get_ref) {
            Some(DeValue::Array(rules)) => rules[0].span(),
            _ => panic!("test TOML has one [[rule]]"),
        };
        pattern_key(text, &rule, keys, path, reason).map(|span| text[span].to_owned())
    }

    #[test]
    fn points_at_dotted_keys_inline_tables_and_headers() {
        let dotted = "[[rule]]\nmatch.source = [\"a\"]\nmatch.detail.errorCode = [1]\n";
        assert_eq!(
            pointed(dotted, &["match"], "detail.errorCode", "x").as_deref(),
            Some("errorCode")
        );
        let inline = "[[rule]]\nmatch = { detail = { eventName = [\"x\"] } }\n";
        assert_eq!(
            pointed(inline, &["match"], "detail.eventName", "x").as_deref(),
            Some("eventName")
        );
        let header = "[[rule]]\nid = \"x\"\n[rule.match.detail]\nuserIdentity.arn = [2]\n";
        assert_eq!(
            pointed(header, &["match"], "detail.userIdentity.arn", "x").as_deref(),
            Some("arn")
        );
    }

    #[test]
    fn a_quoted_key_may_hold_several_segments() {
        let text = "[[rule]]\nmatch.\"detail.errorCode\" = [1]\n";
        assert_eq!(
            pointed(text, &["match"], "detail.errorCode", "x").as_deref(),
            Some("\"detail.errorCode\"")
        );
    }

    #[test]
    fn searches_or_alternatives_and_nested_patterns() {
        let text = "[[rule]]\nmatch.detail.\"$or\" = [{ a = [1] }, { b = [2] }]\n\
                    [[rule.for_each]]\narray = \"x\"\n\
                    [[rule.for_each]]\narray = \"y\"\nmatch.status = [3]\n";
        assert_eq!(
            pointed(text, &["match"], "detail.b", "x").as_deref(),
            Some("b")
        );
        assert_eq!(
            pointed(text, &["for_each", "match"], "status", "x").as_deref(),
            Some("status")
        );
    }

    #[test]
    fn of_several_places_the_one_with_the_named_operator_wins() {
        let text = "[[rule]]\nmatch.\"$or\" = [{ a = [1] }, { a = [{ prefx = \"T\" }] }]\n";
        assert_eq!(
            pointed(text, &["match"], "a", "Unrecognized match type prefx").as_deref(),
            Some("prefx")
        );
    }

    #[test]
    fn points_at_the_operator_the_reason_names() {
        let text =
            "[[rule]]\nmatch.errorCode = [{ \"anything-but\" = \"a\" }, { prefx = \"T\" }]\n";
        assert_eq!(
            pointed(
                text,
                &["match"],
                "errorCode",
                "Unrecognized match type prefx"
            )
            .as_deref(),
            Some("prefx")
        );
        assert_eq!(
            pointed(
                text,
                &["match"],
                "errorCode",
                "Empty arrays are not allowed"
            )
            .as_deref(),
            Some("errorCode")
        );
    }

    #[test]
    fn unknown_paths_and_the_root_are_not_located() {
        let text = "[[rule]]\nmatch.detail.a = [1]\n";
        assert_eq!(pointed(text, &["match"], "detail.b", "x"), None);
        assert_eq!(pointed(text, &["match"], "", "x"), None);
        assert_eq!(pointed(text, &["for_each", "match"], "a", "x"), None);
    }
}
