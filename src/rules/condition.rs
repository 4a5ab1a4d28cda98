//! `where` conditions: what a rule can ask beyond EventBridge's pattern language.
//!
//! Each condition tests the values an event holds at one or more fields. Like EventBridge,
//! a condition about a field the event lacks never holds, negative ones included
//! (`not_in_list` on a missing field is false, as `anything-but` is); and a list that is
//! empty means "not configured", so conditions on it never hold either.

use super::field::{FieldPath, as_text};
use super::lists::List;
use super::view::FieldTree;
use jiff::civil::DateTime;
use jiff::{SignedDuration, Timestamp};
use meterwatch_pattern::Matcher;
use regex::Regex;
use serde_json::Value;
use std::sync::Arc;

/// A compiled `[[rule.where]]` entry.
#[derive(Debug)]
pub enum Condition {
    /// Holds when its test holds for the pooled values of `fields`.
    Test {
        fields: Vec<FieldPath>,
        /// Boxed: a compiled pattern test is large, `Any` is small (clippy: large enum variant).
        test: Box<Test>,
        /// The test as written (`not_in_list = "allowed_principals"`), for explanations.
        text: String,
    },
    /// Holds when any alternative does.
    Any(Vec<Condition>),
}

/// What a condition checks about a field's values.
#[derive(Debug)]
pub enum Test {
    Regex {
        regex: Regex,
        negated: bool,
    },
    InList {
        list: Arc<List>,
        negated: bool,
    },
    EqualsField {
        other: FieldPath,
        negated: bool,
    },
    /// At least `age` older than the event's `eventTime`.
    OlderThan(SignedDuration),
    /// At least `lead` later than the event's `eventTime`.
    NewerThan(SignedDuration),
    /// An EventBridge value list compiled as the pattern `{field: values}` (with several
    /// fields, `{"$or": [{field: values}, ...]}`).
    Pattern {
        /// Boxed: a matcher is large, and most conditions are not patterns.
        matcher: Box<Matcher<()>>,
        /// The fields the pattern names, to cut the text it is matched against to them.
        fields: FieldTree,
    },
}

/// What an event offers conditions: the fields rules read, and its `eventTime`.
#[derive(Debug)]
pub struct Subject<'e> {
    /// At least every field any condition reads (see `view`), with the event's structure.
    pub value: &'e Value,
    pub event_time: Option<Timestamp>,
}

impl Condition {
    pub fn holds(&self, subject: &Subject<'_>) -> bool {
        match self {
            Condition::Any(alternatives) => alternatives.iter().any(|c| c.holds(subject)),
            Condition::Test { fields, test, .. } => {
                let values: Vec<&Value> = fields
                    .iter()
                    .flat_map(|field| field.values(subject.value))
                    .collect();
                test.holds(&values, subject)
            }
        }
    }

    /// The fields this condition reads, for the alert's `matched` values.
    pub fn fields(&self) -> Vec<&FieldPath> {
        match self {
            Condition::Any(alternatives) => {
                alternatives.iter().flat_map(Condition::fields).collect()
            }
            Condition::Test { fields, test, .. } => {
                let mut read: Vec<&FieldPath> = fields.iter().collect();
                if let Test::EqualsField { other, .. } = &**test {
                    read.push(other);
                }
                read
            }
        }
    }
}

impl Test {
    fn holds(&self, values: &[&Value], subject: &Subject<'_>) -> bool {
        // A pattern judges missing fields itself (`exists: false`); every other test needs a value.
        if values.is_empty() && !matches!(self, Test::Pattern { .. }) {
            return false;
        }
        match self {
            Test::Regex { regex, negated } => {
                let mut texts = values.iter().filter_map(|value| as_text(value));
                if *negated {
                    texts.all(|text| !regex.is_match(&text))
                } else {
                    texts.any(|text| regex.is_match(&text))
                }
            }
            Test::InList { list, negated } => {
                if list.is_empty() {
                    return false;
                }
                let mut texts = values.iter().filter_map(|value| as_text(value));
                if *negated {
                    texts.all(|text| !list.contains(&text))
                } else {
                    texts.any(|text| list.contains(&text))
                }
            }
            Test::EqualsField { other, negated } => {
                let others = other.values(subject.value);
                if others.is_empty() {
                    return false;
                }
                let equal = values.iter().any(|value| others.contains(value));
                equal != *negated
            }
            Test::OlderThan(age) => within(values, subject, |timestamp, event_time| {
                event_time.duration_since(timestamp) >= *age
            }),
            Test::NewerThan(lead) => within(values, subject, |timestamp, event_time| {
                timestamp.duration_since(event_time) >= *lead
            }),
            // Matching the pattern's own fields, with the event's structure, answers as
            // matching the whole event would, for a fraction of the text.
            Test::Pattern { matcher, fields } => {
                let text = fields.prune(subject.value).to_string();
                super::matches_any(matcher, &text)
            }
        }
    }
}

/// Whether some value is a timestamp that passes `test` against the event's `eventTime`.
fn within(
    values: &[&Value],
    subject: &Subject<'_>,
    test: impl Fn(Timestamp, Timestamp) -> bool,
) -> bool {
    let Some(event_time) = subject.event_time else {
        return false;
    };
    values
        .iter()
        .filter_map(|value| value.as_str())
        .filter_map(parse_timestamp)
        .any(|timestamp| test(timestamp, event_time))
}

/// The format CloudTrail writes request timestamps in: `Jul 10, 2020 11:06:41 PM`, UTC.
const CLOUDTRAIL_TIMESTAMP: &str = "%b %d, %Y %I:%M:%S %p";

/// Parses RFC 3339 (`eventTime`) or CloudTrail's request-parameter form (taken as UTC).
pub fn parse_timestamp(text: &str) -> Option<Timestamp> {
    // RFC 3339 starts with the year, CloudTrail's form with the month's name.
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        return text.parse::<Timestamp>().ok();
    }
    DateTime::strptime(CLOUDTRAIL_TIMESTAMP, text)
        .ok()
        .and_then(|civil| civil.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
        .map(|zoned| zoned.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudtrail_request_timestamps_parse_as_utc() {
        let parsed = parse_timestamp("Jul 10, 2020 11:06:41 PM").expect("CloudTrail form");
        assert_eq!(parsed.to_string(), "2020-07-10T23:06:41Z");
        let morning = parse_timestamp("Jul 10, 2020 12:06:41 AM").expect("CloudTrail form");
        assert_eq!(morning.to_string(), "2020-07-10T00:06:41Z");
    }

    #[test]
    fn rfc3339_timestamps_parse() {
        let parsed = parse_timestamp("2020-07-10T23:06:42Z").expect("RFC 3339");
        assert_eq!(parsed.as_second(), 1_594_422_402);
    }

    #[test]
    fn other_text_is_not_a_timestamp() {
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp("Jul 10, 2020"), None);
    }
}
