//! Silences: `[[silence]]` tables in rule files, and matching an alert against silences
//! wherever they were written (rule files, or items in the state table: `state::silence`).
//!
//! ```toml
//! [[silence]]
//! id = "migration-window"
//! comment = "metering job moves to a new cluster"
//! created_by = "ops@example.com"
//! starts = "2026-11-09T10:00:00Z"
//! ends = "2026-11-09T14:00:00Z"
//! match.rule = ["metering-stopped"]
//! match.product_code = ["EXAMPLE_*"]
//! ```
//!
//! A silence holds for an alert when every `match` key holds: the alert's value of that
//! field equals one of the key's values, or one of its `*` wildcards matches it (an alert
//! without the field never matches). What a silenced alert becomes is `noise`'s.

use super::lists::List;
use crate::alert::Alert;
use crate::state::Millis;
use crate::state::silence::Silence;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use toml::Spanned;

/// The alert fields a silence may match, and how each is read from the alert.
pub const FIELDS: [&str; 12] = [
    "rule",
    "severity",
    "status",
    "account",
    "region",
    "product_code",
    "customer",
    "dimension",
    "event_name",
    "event_id",
    "error_code",
    "principal",
];

/// One `[[silence]]` table.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SilenceDef {
    /// Unique across all loaded files (and among stored silences in force).
    pub id: String,
    /// Why alerts are silenced: required.
    pub comment: String,
    /// Who silenced them: required.
    pub created_by: String,
    /// RFC 3339, e.g. `"2026-11-09T10:00:00Z"`.
    #[schemars(with = "String")]
    pub starts: Spanned<String>,
    /// RFC 3339; after `starts`.
    #[schemars(with = "String")]
    pub ends: Spanned<String>,
    /// Alert field → values (`*` wildcards); all keys must hold.
    #[serde(rename = "match")]
    #[schemars(with = "BTreeMap<String, Vec<String>>")]
    pub matchers: Spanned<BTreeMap<Spanned<String>, Vec<Spanned<String>>>>,
}

/// A silence that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    #[error("silence id must not be empty")]
    NoId,
    #[error("`{0}` must not be empty")]
    Empty(&'static str),
    #[error("silence `{id}` matches every alert: give `match` at least one key")]
    NoMatch { id: String },
    #[error("unknown alert field `{field}` in `match`, expected one of: {}", FIELDS.join(", "))]
    UnknownField { field: String },
    #[error("`match.{field}` has no values: it would never hold")]
    NoValues { field: String },
    #[error("in `match.{field}`: invalid wildcard `{value}`: {reason}")]
    Wildcard {
        field: String,
        value: String,
        reason: String,
    },
    #[error("`{0}` is not an RFC 3339 time (e.g. 2026-11-09T10:00:00Z): {1}")]
    Time(&'static str, String),
    #[error("`ends` must be after `starts`")]
    EndsBeforeStarts,
}

/// A silence ready to match alerts.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub silence: Arc<Silence>,
    matchers: Vec<(&'static str, List)>,
    /// Where it is written (`path:line:col`); `None` for a stored silence.
    pub place: Option<String>,
}

impl Compiled {
    /// Checks and compiles a silence, from whichever source.
    pub fn new(silence: Silence, place: Option<String>) -> Result<Compiled, SilenceError> {
        check_text(&silence)?;
        if silence.ends <= silence.starts {
            return Err(SilenceError::EndsBeforeStarts);
        }
        if silence.matchers.is_empty() {
            return Err(SilenceError::NoMatch {
                id: silence.id.clone(),
            });
        }
        let mut matchers = Vec::with_capacity(silence.matchers.len());
        for (field, values) in &silence.matchers {
            matchers.push(matcher(field, values.iter().map(String::as_str))?);
        }
        Ok(Compiled {
            silence: Arc::new(silence),
            matchers,
            place,
        })
    }

    /// Whether it silences `alert` raised at `now`.
    pub fn silences(&self, alert: &Alert, now: Millis) -> bool {
        self.silence.in_force(now)
            && self
                .matchers
                .iter()
                .all(|(field, list)| values(alert, field).iter().any(|v| list.contains(v)))
    }
}

fn check_text(silence: &Silence) -> Result<(), SilenceError> {
    if silence.id.trim().is_empty() {
        return Err(SilenceError::NoId);
    }
    if silence.comment.trim().is_empty() {
        return Err(SilenceError::Empty("comment"));
    }
    if silence.created_by.trim().is_empty() {
        return Err(SilenceError::Empty("created_by"));
    }
    Ok(())
}

/// One `match` key: its field's name (as one of [`FIELDS`]) and its values.
fn matcher<'a>(
    field: &str,
    values: impl IntoIterator<Item = &'a str>,
) -> Result<(&'static str, List), SilenceError> {
    let Some(known) = FIELDS.iter().find(|known| **known == field) else {
        return Err(SilenceError::UnknownField {
            field: field.to_owned(),
        });
    };
    let values: Vec<&str> = values.into_iter().collect();
    if values.is_empty() {
        return Err(SilenceError::NoValues {
            field: field.to_owned(),
        });
    }
    for value in &values {
        List::new([*value]).map_err(|error| SilenceError::Wildcard {
            field: field.to_owned(),
            value: (*value).to_owned(),
            reason: error.reason().to_string(),
        })?;
    }
    let list = List::new(values).map_err(|error| SilenceError::Wildcard {
        field: field.to_owned(),
        value: String::new(),
        reason: error.reason().to_string(),
    })?;
    Ok((known, list))
}

/// The alert's values of one of [`FIELDS`] (several for the usage records' fields).
fn values<'a>(alert: &'a Alert, field: &str) -> Vec<&'a str> {
    let one = |value: Option<&'a String>| value.map(String::as_str).into_iter().collect();
    match field {
        "rule" => vec![&*alert.rule],
        "severity" => vec![alert.severity.as_str()],
        "status" => vec![alert.status.as_str()],
        "account" => one(alert.account.as_ref()),
        "region" => one(alert.region.as_ref()),
        "product_code" => one(alert.product_code.as_ref()),
        "event_name" => one(alert.event_name.as_ref()),
        "event_id" => one(alert.event_id.as_ref()),
        "error_code" => one(alert.error_code.as_ref()),
        "principal" => one(alert.principal.as_ref().and_then(|p| p.arn.as_ref())),
        "customer" => alert
            .records
            .iter()
            .filter_map(|record| record.customer.as_deref())
            .collect(),
        "dimension" => alert
            .records
            .iter()
            .filter_map(|record| record.dimension.as_deref())
            .collect(),
        _ => Vec::new(),
    }
}

/// A set of silences: a rule set's, or those read from the state table.
#[derive(Debug, Clone, Default)]
pub struct Silences {
    silences: Vec<Compiled>,
}

impl Silences {
    pub fn new(silences: Vec<Compiled>) -> Silences {
        Silences { silences }
    }

    /// The first silence in force at `now` that silences `alert`.
    pub fn silencing(&self, alert: &Alert, now: Millis) -> Option<&Arc<Silence>> {
        self.silences
            .iter()
            .find(|compiled| compiled.silences(alert, now))
            .map(|compiled| &compiled.silence)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Compiled> {
        self.silences.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.silences.is_empty()
    }

    pub fn len(&self) -> usize {
        self.silences.len()
    }
}

/// Compiles a `[[silence]]` table read from a file, reporting each problem at its span.
pub(super) fn compile_def(
    def: SilenceDef,
    place: String,
    report: &mut dyn FnMut(Option<Range<usize>>, String),
) -> Option<Compiled> {
    let mut ok = true;
    let mut time = |name: &'static str, text: &Spanned<String>| match text
        .get_ref()
        .parse::<jiff::Timestamp>()
    {
        Ok(time) => Some(time.as_millisecond()),
        Err(error) => {
            let error = SilenceError::Time(name, error.to_string());
            report(Some(text.span()), error.to_string());
            None
        }
    };
    let (starts, ends) = (time("starts", &def.starts), time("ends", &def.ends));
    if let (Some(starts), Some(ends)) = (starts, ends)
        && ends <= starts
    {
        report(
            Some(def.ends.span()),
            SilenceError::EndsBeforeStarts.to_string(),
        );
        ok = false;
    }
    let matchers_span = def.matchers.span();
    let mut matchers = BTreeMap::new();
    for (field, values) in def.matchers.into_inner() {
        match matcher(field.get_ref(), values.iter().map(|v| v.get_ref().as_str())) {
            Ok(_) => {
                matchers.insert(
                    field.into_inner(),
                    values.into_iter().map(Spanned::into_inner).collect(),
                );
            }
            Err(error @ SilenceError::Wildcard { .. }) => {
                let span = values
                    .iter()
                    .find(|v| List::new([v.get_ref().as_str()]).is_err())
                    .map_or(field.span(), Spanned::span);
                report(Some(span), error.to_string());
                ok = false;
            }
            Err(error) => {
                report(Some(field.span()), error.to_string());
                ok = false;
            }
        }
    }
    let silence = Silence {
        id: def.id,
        comment: def.comment,
        created_by: def.created_by,
        starts: starts?,
        ends: ends?,
        matchers,
    };
    if !ok {
        return None;
    }
    match Compiled::new(silence, Some(place)) {
        Ok(compiled) => Some(compiled),
        Err(error) => {
            report(Some(matchers_span), error.to_string());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Status;

    const HOUR: Millis = 3_600_000;

    fn silence(matchers: &[(&str, &[&str])]) -> Silence {
        Silence {
            id: "window".to_owned(),
            comment: "migration".to_owned(),
            created_by: "ops@example.com".to_owned(),
            starts: HOUR,
            ends: 2 * HOUR,
            matchers: matchers
                .iter()
                .map(|(field, values)| {
                    (
                        (*field).to_owned(),
                        values.iter().map(|v| (*v).to_owned()).collect(),
                    )
                })
                .collect(),
        }
    }

    fn alert(rule: &str, product: Option<&str>) -> Alert {
        let mut alert = Alert::new(Arc::from(rule), crate::alert::Severity::High, "t".into());
        alert.product_code = product.map(str::to_owned);
        alert
    }

    fn compiled(matchers: &[(&str, &[&str])]) -> Compiled {
        Compiled::new(silence(matchers), None).expect("a valid silence")
    }

    #[test]
    fn every_key_must_hold_and_values_take_wildcards() {
        let window = compiled(&[
            ("rule", &["metering-stopped"]),
            ("product_code", &["EXAMPLE_*", "other"]),
        ]);
        let now = HOUR + 1;
        assert!(window.silences(&alert("metering-stopped", Some("EXAMPLE_proCode")), now));
        assert!(window.silences(&alert("metering-stopped", Some("other")), now));
        assert!(
            !window.silences(&alert("metering-stopped", Some("prod-x")), now),
            "product_code does not hold"
        );
        assert!(
            !window.silences(&alert("metering-call-failed", Some("EXAMPLE_1")), now),
            "rule does not hold"
        );
        assert!(
            !window.silences(&alert("metering-stopped", None), now),
            "an alert without the field is not silenced"
        );
    }

    #[test]
    fn a_silence_holds_only_within_its_window() {
        let window = compiled(&[("rule", &["*"])]);
        let firing = alert("r", None);
        assert!(!window.silences(&firing, HOUR - 1));
        assert!(window.silences(&firing, HOUR));
        assert!(!window.silences(&firing, 2 * HOUR), "ends is exclusive");
    }

    #[test]
    fn status_and_severity_are_alert_fields() {
        let mut resolved = alert("r", None);
        resolved.status = Status::Resolved;
        let window = compiled(&[("status", &["resolved"]), ("severity", &["high"])]);
        assert!(window.silences(&resolved, HOUR));
        let window = compiled(&[("severity", &["critical"])]);
        assert!(!window.silences(&resolved, HOUR));
    }

    #[test]
    fn invalid_silences_are_refused_with_reasons() {
        let error = |s: Silence| Compiled::new(s, None).err().map(|e| e.to_string());
        assert_eq!(
            error(silence(&[("product", &["p"])])),
            Some(format!(
                "unknown alert field `product` in `match`, expected one of: {}",
                FIELDS.join(", ")
            ))
        );
        assert_eq!(
            error(silence(&[])),
            Some("silence `window` matches every alert: give `match` at least one key".into())
        );
        assert_eq!(
            error(silence(&[("rule", &[])])),
            Some("`match.rule` has no values: it would never hold".into())
        );
        assert!(
            error(silence(&[("rule", &["a**b"])]))
                .is_some_and(|e| e.starts_with("in `match.rule`: invalid wildcard `a**b`"))
        );
        let mut backwards = silence(&[("rule", &["r"])]);
        backwards.ends = backwards.starts;
        assert_eq!(
            error(backwards),
            Some("`ends` must be after `starts`".into())
        );
        let mut anonymous = silence(&[("rule", &["r"])]);
        anonymous.created_by = " ".into();
        assert_eq!(
            error(anonymous),
            Some("`created_by` must not be empty".into())
        );
    }
}

#[cfg(test)]
mod file_tests {
    use crate::rules::RuleSet;

    const RULE: &str =
        "[[rule]]\nid = \"r\"\ntitle = \"t\"\nseverity = \"high\"\nmatch.source = [\"x\"]\n";

    fn errors(text: &str) -> Vec<String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.toml");
        std::fs::write(&path, format!("{RULE}{text}")).expect("write");
        match RuleSet::load(&[&path]) {
            Ok(_) => Vec::new(),
            Err(error) => error
                .diagnostics
                .iter()
                .map(|d| {
                    let text = d.to_string();
                    let first = text.lines().next().unwrap_or_default();
                    first.replace(&format!("{}", dir.path().display()), "")
                })
                .collect(),
        }
    }

    const GOOD: &str = "[[silence]]\nid = \"w\"\ncomment = \"c\"\ncreated_by = \"me\"\n\
        starts = \"2026-11-09T10:00:00Z\"\nends = \"2026-11-09T14:00:00Z\"\nmatch.rule = [\"r\"]\n";

    #[test]
    fn a_valid_silence_loads_with_its_rule_set() {
        assert_eq!(errors(GOOD), Vec::<String>::new());
    }

    #[test]
    fn silence_mistakes_are_reported_at_their_place() {
        let bad = GOOD
            .replace("2026-11-09T14:00:00Z", "tomorrow")
            .replace("match.rule", "match.rules");
        assert_eq!(
            errors(&bad),
            [
                "/s.toml:11:8: error: `ends` is not an RFC 3339 time (e.g. 2026-11-09T10:00:00Z): failed to parse four digit integer as year: invalid digit, expected 0-9 but got t",
                "/s.toml:12:7: error: unknown alert field `rules` in `match`, expected one of: rule, severity, status, account, region, product_code, customer, dimension, event_name, event_id, error_code, principal",
            ]
        );
        let no_comment = GOOD.replace("comment = \"c\"\n", "");
        assert_eq!(
            errors(&no_comment),
            ["/s.toml:6:1: error: in a silence: missing field `comment`"]
        );
        let twice = format!("{GOOD}{GOOD}");
        let twice = errors(&twice);
        assert_eq!(twice.len(), 1, "{twice:?}");
        assert!(
            twice[0]
                .starts_with("/s.toml:13:1: error: duplicate silence id `w`: already defined in"),
            "{twice:?}"
        );
        let backwards = GOOD.replace("14:00:00Z", "09:00:00Z");
        assert_eq!(
            errors(&backwards),
            ["/s.toml:11:8: error: `ends` must be after `starts`"]
        );
    }
}
