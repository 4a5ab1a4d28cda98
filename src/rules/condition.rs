//! `where` conditions: what a rule can ask beyond EventBridge's pattern language.
//!
//! Each condition tests the values an event holds at one or more fields. Like EventBridge,
//! a condition about a field the event lacks never holds, negative ones included
//! (`not_in_list` on a missing field is false, as `anything-but` is); and a list that is
//! empty means "not configured", so conditions on it never hold either. Values are leaves,
//! as the pattern engine reads them: arrays are looked through, objects are no values.
//!
//! The tests are written once, against [`Values`]: in `RuleSet::findings` they read the
//! values the rule set's matcher captured in its one pass over the event (and `match` tests
//! are patterns of that matcher); `explain` judges them on the parsed event.

use super::lists::List;
use crate::field::FieldPath;
use jiff::civil::DateTime;
use jiff::{SignedDuration, Timestamp};
use meterwatch_pattern::{Captures, MatcherBuilder, Pattern, Scalar};
use regex::Regex;
use serde_json::Value;
use std::borrow::Cow;
use std::cell::OnceCell;
use std::sync::Arc;

/// A compiled `[[rule.where]]` entry.
#[derive(Debug)]
pub enum Condition {
    /// Holds when its test holds for the pooled values of `fields`.
    Test {
        fields: Vec<Field>,
        /// Boxed: a compiled pattern test is large, `Any` is small (clippy: large enum variant).
        test: Box<Test>,
        /// The test as written (`not_in_list = "allowed_principals"`), for explanations.
        text: String,
    },
    /// Holds when any alternative does.
    Any(Vec<Condition>),
    /// Holds when every entry does.
    All(Vec<Condition>),
}

/// A field a condition reads: its path, and where the rule set's matching pass keeps its
/// values.
#[derive(Debug)]
pub struct Field {
    pub path: FieldPath,
    /// Set when the rule set is built, for enabled rules' conditions.
    pub capture: Option<meterwatch_pattern::Field>,
}

impl Field {
    pub fn new(path: FieldPath) -> Field {
        Field {
            path,
            capture: None,
        }
    }
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
        other: Field,
        negated: bool,
    },
    /// At least `age` older than the event's `eventTime`.
    OlderThan(SignedDuration),
    /// At least `lead` later than the event's `eventTime`.
    NewerThan(SignedDuration),
    /// An EventBridge value list compiled as the pattern `{field: values}` (with several
    /// fields, `{"$or": [{field: values}, ...]}`). An enabled rule's is one more pattern of
    /// the rule set's matcher, so the matching pass gives its verdict.
    Pattern(PatternTest),
}

/// A `match` test's pattern.
#[derive(Debug)]
pub struct PatternTest {
    pub pattern: Pattern,
    /// Its index among the rule set matcher's patterns (set when the rule set is built).
    pub id: Option<usize>,
}

/// Where conditions read an event: the values the rule set's matching pass captured
/// ([`Captured`]), or a parsed event ([`Parsed`], for explanations). The tests themselves
/// are written once, against this.
pub trait Values {
    /// Whether `visit` returns true for some value the event holds at `field`. Values are
    /// leaves, as in EventBridge: arrays are looked through, objects are no values, `null`
    /// is one.
    fn any(&self, field: &Field, visit: impl FnMut(&Scalar<'_>) -> bool) -> bool;
    /// The event's `eventTime`.
    fn event_time(&self) -> Option<Timestamp>;
    /// Whether a `match` test's pattern matches the event.
    fn matches(&self, test: &PatternTest) -> bool;
}

/// The values the rule set's matcher captured from an event, and the patterns it matched.
pub struct Captured<'c, 's, 'a> {
    pub captures: &'c Captures<'s, 'a>,
    /// The matcher's `found` (ascending pattern indices).
    pub found: &'c [usize],
    pub event_time: EventTime<'c>,
}

/// An event's `eventTime`, parsed the first time a test reads it: most rules never do.
pub struct EventTime<'t> {
    text: Option<&'t str>,
    parsed: OnceCell<Option<Timestamp>>,
}

impl<'t> EventTime<'t> {
    pub fn new(text: Option<&'t str>) -> Self {
        EventTime {
            text,
            parsed: OnceCell::new(),
        }
    }

    fn get(&self) -> Option<Timestamp> {
        *self
            .parsed
            // CloudTrail Lake writes `eventTime` its own way ([`crate::envelope::parse_time`]).
            .get_or_init(|| {
                self.text.and_then(|text| {
                    crate::envelope::parse_time(text).or_else(|| parse_timestamp(text))
                })
            })
    }
}

impl Values for Captured<'_, '_, '_> {
    fn any(&self, field: &Field, visit: impl FnMut(&Scalar<'_>) -> bool) -> bool {
        // Every enabled rule's fields have a handle; only those rules' conditions run here.
        debug_assert!(field.capture.is_some(), "{} was not captured", field.path);
        field
            .capture
            .is_some_and(|handle| self.captures.values(handle).any(visit))
    }

    fn event_time(&self) -> Option<Timestamp> {
        self.event_time.get()
    }

    fn matches(&self, test: &PatternTest) -> bool {
        debug_assert!(test.id.is_some(), "a pattern test outside the matcher");
        test.id
            .is_some_and(|id| self.found.binary_search(&id).is_ok())
    }
}

/// A parsed event and its text: what `explain` judges conditions on, whether or not the
/// rule is enabled or its pattern matched.
pub struct Parsed<'e> {
    pub value: &'e Value,
    pub text: &'e str,
    pub event_time: EventTime<'e>,
}

impl Values for Parsed<'_> {
    fn any(&self, field: &Field, mut visit: impl FnMut(&Scalar<'_>) -> bool) -> bool {
        field
            .path
            .values(self.value)
            .into_iter()
            .filter_map(Scalar::from_json)
            .any(|scalar| visit(&scalar))
    }

    fn event_time(&self) -> Option<Timestamp> {
        self.event_time.get()
    }

    fn matches(&self, test: &PatternTest) -> bool {
        let mut builder = MatcherBuilder::default();
        builder.add((), test.pattern.clone());
        builder
            .build()
            .matches(self.text)
            .is_ok_and(|found| !found.is_empty())
    }
}

impl Condition {
    pub fn holds(&self, values: &impl Values) -> bool {
        match self {
            Condition::Any(alternatives) => alternatives.iter().any(|c| c.holds(values)),
            Condition::All(entries) => entries.iter().all(|c| c.holds(values)),
            Condition::Test { fields, test, .. } => test.holds(fields, values),
        }
    }

    /// The fields this condition reads, for the alert's `matched` values.
    pub fn fields(&self) -> Vec<&Field> {
        match self {
            Condition::Any(group) | Condition::All(group) => {
                group.iter().flat_map(Condition::fields).collect()
            }
            Condition::Test { fields, test, .. } => {
                let mut read: Vec<&Field> = fields.iter().collect();
                if let Test::EqualsField { other, .. } = &**test {
                    read.push(other);
                }
                read
            }
        }
    }

    /// The fields it reads, to give them their handles in the rule set's matcher, and its
    /// `match` tests, to add their patterns to it.
    pub fn parts_mut<'c>(
        &'c mut self,
        fields: &mut Vec<&'c mut Field>,
        patterns: &mut Vec<&'c mut PatternTest>,
    ) {
        match self {
            Condition::Any(group) | Condition::All(group) => {
                for entry in group {
                    entry.parts_mut(fields, patterns);
                }
            }
            Condition::Test {
                fields: own, test, ..
            } => {
                fields.extend(own.iter_mut());
                match &mut **test {
                    Test::EqualsField { other, .. } => fields.push(other),
                    Test::Pattern(pattern) => patterns.push(pattern),
                    _ => {}
                }
            }
        }
    }
}

impl Test {
    /// Whether the test holds for the pooled values of `fields`.
    fn holds(&self, fields: &[Field], values: &impl Values) -> bool {
        // A pattern judges missing fields itself (`exists: false`); every other test needs a value.
        if let Test::Pattern(test) = self {
            return values.matches(test);
        }
        let some = |visit: &mut dyn FnMut(&Scalar<'_>) -> bool| {
            fields.iter().any(|field| values.any(field, &mut *visit))
        };
        if !some(&mut |_| true) {
            return false;
        }
        match self {
            Test::Regex { regex, negated } => {
                let matched = some(&mut |value| text(value).is_some_and(|t| regex.is_match(&t)));
                matched != *negated
            }
            Test::InList { list, negated } => {
                if list.is_empty() {
                    return false;
                }
                let listed = some(&mut |value| text(value).is_some_and(|t| list.contains(&t)));
                listed != *negated
            }
            Test::EqualsField { other, negated } => {
                if !values.any(other, |_| true) {
                    return false;
                }
                let equal = some(&mut |value| values.any(other, |o| o == value));
                equal != *negated
            }
            Test::OlderThan(age) => within(some, values, |timestamp, event_time| {
                event_time.duration_since(timestamp) >= *age
            }),
            Test::NewerThan(lead) => within(some, values, |timestamp, event_time| {
                timestamp.duration_since(event_time) >= *lead
            }),
            Test::Pattern(_) => unreachable!("answered above"),
        }
    }
}

/// A value as text for comparisons with strings: strings as they are, booleans and numbers
/// as JSON writes them, `null` none. As `Tree::as_text` writes a parsed value, except that a
/// number written with a fraction or exponent yet of integral value below 2^64 (`5.0`,
/// `1e3`) reads as that integer (`5`, `1000`): the matcher reads numbers as doubles.
pub(super) fn text<'v>(value: &'v Scalar<'_>) -> Option<Cow<'v, str>> {
    const TWO_TO_64: f64 = 18_446_744_073_709_551_616.0;
    match value {
        Scalar::Str(text) => Some(Cow::Borrowed(text)),
        // Integers arrive as doubles whenever a double holds them exactly.
        Scalar::Num(number) if number.fract() == 0.0 && number.abs() < TWO_TO_64 => {
            Some(Cow::Owned((*number as i128).to_string()))
        }
        Scalar::Num(number) => {
            serde_json::Number::from_f64(*number).map(|n| Cow::Owned(n.to_string()))
        }
        Scalar::BigInt(integer) => Some(Cow::Owned(integer.to_string())),
        Scalar::Bool(flag) => Some(Cow::Borrowed(if *flag { "true" } else { "false" })),
        Scalar::Null => None,
    }
}

/// Whether some value is a timestamp that passes `test` against the event's `eventTime`.
fn within(
    some: impl Fn(&mut dyn FnMut(&Scalar<'_>) -> bool) -> bool,
    values: &impl Values,
    test: impl Fn(Timestamp, Timestamp) -> bool,
) -> bool {
    let Some(event_time) = values.event_time() else {
        return false;
    };
    some(&mut |value| match value {
        Scalar::Str(text) => parse_timestamp(text).is_some_and(|t| test(t, event_time)),
        _ => false,
    })
}

/// The format CloudTrail writes request timestamps in: `Jul 10, 2020 11:06:41 PM`, UTC.
const CLOUDTRAIL_TIMESTAMP: &str = "%b %d, %Y %I:%M:%S %p";

/// Parses RFC 3339 (`eventTime`) or CloudTrail's request-parameter form (taken as UTC).
pub fn parse_timestamp(text: &str) -> Option<Timestamp> {
    // RFC 3339 starts with the year, CloudTrail's form with the month's name.
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        return text.parse::<Timestamp>().ok();
    }
    let read = |text: &str| {
        parse_cloudtrail_exactly(text).or_else(|| {
            DateTime::strptime(CLOUDTRAIL_TIMESTAMP, text)
                .ok()
                .and_then(|civil| civil.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
                .map(|zoned| zoned.timestamp())
        })
    };
    read(text).or_else(|| read(&classic_form(text)?))
}

/// Java 20 and later (CLDR 42) write the same timestamps as `Jul 10, 2020, 11:06:41 PM` with
/// a comma after the year and a narrow no-break space before AM/PM: a JDK upgrade behind
/// CloudTrail must not blind the age tests. That form rewritten as the classic one, or
/// `None` when `text` is not it.
fn classic_form(text: &str) -> Option<String> {
    let spaced = text.replace(['\u{202f}', '\u{a0}'], " ");
    // The first ", " follows the day, a second one the year.
    let classic = match spaced.match_indices(", ").nth(1) {
        Some((at, _)) => format!("{} {}", &spaced[..at], &spaced[at + 2..]),
        None if spaced != text => spaced,
        None => return None,
    };
    Some(classic)
}

/// CloudTrail's request-parameter timestamps as CloudTrail writes them (`Jul 10, 2020
/// 11:06:41 PM`, day and hour of one or two digits), read directly: a batch carries up to
/// 25, and the general `strptime` costs ten times as much. `None` for anything else, which
/// `strptime` then reads (a test holds the two to the same answers).
fn parse_cloudtrail_exactly(text: &str) -> Option<Timestamp> {
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    /// Takes `separator` off the front of `rest`.
    fn separator(rest: &mut &[u8], separator: &[u8]) -> Option<()> {
        *rest = rest.strip_prefix(separator)?;
        Some(())
    }
    /// Takes a run of digits, `len` long, off the front of `rest`.
    fn number(rest: &mut &[u8], len: std::ops::RangeInclusive<usize>) -> Option<i16> {
        let end = rest
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(rest.len());
        if !len.contains(&end) {
            return None;
        }
        let (digits, after) = rest.split_at(end);
        *rest = after;
        Some(
            digits
                .iter()
                .fold(0, |n, digit| n * 10 + i16::from(digit - b'0')),
        )
    }
    // Read byte by byte: splitting at separators and `str::parse` cost ten times as much.
    let mut rest = text.as_bytes();
    let month = MONTHS.iter().position(|name| rest.starts_with(name))? + 1;
    rest = &rest[3..];
    separator(&mut rest, b" ")?;
    let day = number(&mut rest, 1..=2)?;
    separator(&mut rest, b", ")?;
    let year = number(&mut rest, 4..=4)?;
    separator(&mut rest, b" ")?;
    let hour = number(&mut rest, 1..=2).filter(|hour| (1..=12).contains(hour))?;
    separator(&mut rest, b":")?;
    let minute = number(&mut rest, 2..=2)?;
    separator(&mut rest, b":")?;
    let second = number(&mut rest, 2..=2)?;
    let hour = match rest {
        b" AM" => hour % 12,
        b" PM" => hour % 12 + 12,
        _ => return None,
    };
    let civil = DateTime::new(
        year,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
        i8::try_from(hour).ok()?,
        i8::try_from(minute).ok()?,
        i8::try_from(second).ok()?,
        0,
    )
    .ok()?;
    jiff::tz::Offset::UTC.to_timestamp(civil).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The direct reading of CloudTrail's form agrees with `strptime` wherever it answers.
        #[test]
        fn cloudtrail_timestamps_read_directly_as_strptime_reads_them(
            month in prop::sample::select(vec!["Jan", "Feb", "Jul", "Dec", "jul", "JUL", "July"]),
            day in 0u32..40,
            pad_day in any::<bool>(),
            year in prop::sample::select(vec![0u32, 1970, 2000, 2020, 2024, 2100, 9999]),
            hour in 0u32..15,
            pad_hour in any::<bool>(),
            minute in 0u32..62,
            second in 0u32..62,
            meridiem in prop::sample::select(vec!["AM", "PM", "am", "pm", "XM"]),
        ) {
            let canonical = ["Jan", "Feb", "Jul", "Dec"].contains(&month)
                && (1..=28).contains(&day)
                && (1..=12).contains(&hour)
                && minute < 60
                && second < 60
                && ["AM", "PM"].contains(&meridiem);
            let day = if pad_day { format!("{day:02}") } else { day.to_string() };
            let hour = if pad_hour { format!("{hour:02}") } else { hour.to_string() };
            let text = format!("{month} {day}, {year:04} {hour}:{minute:02}:{second:02} {meridiem}");
            let general = DateTime::strptime(CLOUDTRAIL_TIMESTAMP, &text)
                .ok()
                .and_then(|civil| civil.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
                .map(|zoned| zoned.timestamp());
            match parse_cloudtrail_exactly(&text) {
                Some(direct) => prop_assert_eq!(Some(direct), general, "{}", text),
                None => prop_assert!(!canonical, "{} is CloudTrail's own form", text),
            }
        }
    }

    #[test]
    fn the_java_20_form_of_cloudtrail_timestamps_is_read_too() {
        let classic = parse_timestamp("Jul 10, 2020 11:06:41 PM");
        assert!(classic.is_some());
        for text in [
            "Jul 10, 2020, 11:06:41\u{202f}PM",
            "Jul 10, 2020, 11:06:41 PM",
            "Jul 10, 2020 11:06:41\u{a0}PM",
        ] {
            assert_eq!(parse_timestamp(text), classic, "{text:?}");
        }
        assert_eq!(parse_timestamp("Jul 10, 2020, 11:06:41, PM"), None);
        assert_eq!(classic_form("not, a timestamp"), None);
    }

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
    fn values_read_as_text_as_json_writes_them() {
        let read = |json: &str| {
            let value: Value = serde_json::from_str(json).expect("valid JSON");
            let scalar = Scalar::from_json(&value).expect("a scalar");
            let text = text(&scalar).map(Cow::into_owned);
            (
                text,
                super::super::Tree::as_text(&value).map(Cow::into_owned),
            )
        };
        for json in [
            r#""a\"b""#,
            "0",
            "-12",
            "1.5",
            "-0.25",
            "111122223333",
            "18446744073709551615",
            "9007199254740993",
            "123456789012345678901234",
            "1e300",
            "true",
            "false",
            "null",
        ] {
            let (new, old) = read(json);
            assert_eq!(new, old, "{json}");
        }
        // The one difference: integral numbers written as fractions read as integers.
        assert_eq!(read("5.0"), (Some("5".into()), Some("5.0".into())));
    }

    #[test]
    fn other_text_is_not_a_timestamp() {
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp("Jul 10, 2020"), None);
    }
}
