//! The operators a pattern leaf can hold, one file per operator that needs more than a line,
//! and how each one judges an event value.

mod anything_but;
pub(crate) mod cidr;
mod complexity;
mod numeric;
mod wildcard;

pub use anything_but::AnythingBut;
pub use cidr::Cidr;
pub use numeric::{Bound, NumericRange};
pub use wildcard::Wildcard;

pub(crate) use anything_but::parse as parse_anything_but;
pub(crate) use complexity::{MAX_COMPLEXITY, WildcardPattern, field_complexity};

use crate::value::{Literal, Scalar};

/// One alternative of a leaf: `"x"`, `{"prefix": "x"}`, `{"numeric": [...]}`...
///
/// Text operators (`prefix`, `suffix`, `wildcard`, `equals-ignore-case`, `cidr`) only ever
/// match string values: EventBridge keeps strings and numbers apart (a number is never a
/// string that starts with a digit).
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    Exact(Literal),
    Prefix(Box<str>),
    /// Stored lowercased.
    PrefixIgnoreCase(Box<str>),
    Suffix(Box<str>),
    /// Stored lowercased.
    SuffixIgnoreCase(Box<str>),
    /// Stored lowercased.
    EqualsIgnoreCase(Box<str>),
    Wildcard(Wildcard),
    AnythingBut(AnythingBut),
    Numeric(NumericRange),
    Cidr(Cidr),
    /// `{"exists": true}`: any value at all. (`exists: false` is not a predicate on a value;
    /// see [`crate::pattern::Leaf::absent_ok`].)
    Exists,
}

impl Predicate {
    pub fn matches(&self, value: &Scalar<'_>) -> bool {
        match self {
            Predicate::Exact(literal) => literal.matches(value),
            Predicate::Numeric(range) => matches!(value, Scalar::Num(n) if range.contains(*n)),
            Predicate::AnythingBut(anything_but) => anything_but.matches(value),
            Predicate::Exists => true,
            text_operator => match value {
                Scalar::Str(text) => text_operator.matches_str(text),
                _ => false,
            },
        }
    }

    fn matches_str(&self, text: &str) -> bool {
        match self {
            Predicate::Prefix(prefix) => text.starts_with(&**prefix),
            Predicate::Suffix(suffix) => text.ends_with(&**suffix),
            Predicate::PrefixIgnoreCase(prefix) => match ascii_pair(text, prefix) {
                Some((text, prefix)) => text
                    .get(..prefix.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(prefix)),
                None => lowercase(text).starts_with(&**prefix),
            },
            Predicate::SuffixIgnoreCase(suffix) => match ascii_pair(text, suffix) {
                Some((text, suffix)) => text
                    .len()
                    .checked_sub(suffix.len())
                    .is_some_and(|start| text[start..].eq_ignore_ascii_case(suffix)),
                None => lowercase(text).ends_with(&**suffix),
            },
            Predicate::EqualsIgnoreCase(expected) => match ascii_pair(text, expected) {
                Some((text, expected)) => text.eq_ignore_ascii_case(expected),
                None => lowercase(text) == **expected,
            },
            Predicate::Wildcard(wildcard) => wildcard.matches(text),
            Predicate::Cidr(cidr) => cidr.contains_str(text),
            Predicate::Exact(_)
            | Predicate::Numeric(_)
            | Predicate::AnythingBut(_)
            | Predicate::Exists => false,
        }
    }
}

/// Both as bytes when both are ASCII: then case-insensitive comparison needs no lowercased
/// copy of the event's value.
fn ascii_pair<'t, 'p>(text: &'t str, pattern: &'p str) -> Option<(&'t [u8], &'p [u8])> {
    (text.is_ascii() && pattern.is_ascii()).then_some((text.as_bytes(), pattern.as_bytes()))
}

/// Case folding for the `equals-ignore-case` family: Unicode lowercase, as event-ruler's
/// `toLowerCase` does; borrowed when there is nothing to change.
pub(crate) fn lowercase(text: &str) -> std::borrow::Cow<'_, str> {
    if text
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
    {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(text.to_lowercase())
    }
}
