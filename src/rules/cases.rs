//! Rule tests: events with the alerts they must (and must not) raise, kept beside the rules
//! (`rules/tests/*.toml`) and run by `meterwatch test`.
//!
//! ```toml
//! [[test]]
//! name = "a throttled call raises the catch-all and the throttling alert"
//! event = "../../tests/fixtures/events/failing/meterusage-throttled.eventbridge.json"
//! rules = ["metering-call-failed", "metering-throttled"]   # exactly these fire
//! alerts = 2                                               # optional: how many in all
//!
//! [[test.alert]]                                           # optional: some alert has these
//! rule = "metering-throttled"
//! "matched.detail.errorCode" = "ThrottlingException"
//! ```
//!
//! An absence rule's matches are heartbeats, not alerts: `rules` never lists it, and
//! `heartbeats = ["metering-stopped"]` says which absence rules count the event (time passing,
//! and so the absence alert itself, is covered by the state module's unit tests).

use super::diagnostic::Diagnostic;
use super::{LoadError, RuleSet};
use crate::alert::Alert;
use crate::envelope;
use crate::field::FieldPath;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A rule test file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "meterwatch rule tests")]
pub(crate) struct CaseFile {
    /// The tests.
    #[serde(rename = "test")]
    #[schemars(with = "Vec<CaseDef>")]
    tests: Vec<Spanned<CaseDef>>,
}

/// One `[[test]]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CaseDef {
    /// Shown on the test's line.
    name: String,
    /// A file of message bodies (one JSON document, or JSON lines), relative to the test file.
    #[schemars(with = "Option<String>")]
    event: Option<Spanned<String>>,
    /// A message body written inline.
    #[schemars(with = "Option<String>")]
    event_json: Option<Spanned<String>>,
    /// The ids of the rules that must fire: no more, no fewer (order and repeats aside).
    #[schemars(with = "Vec<String>")]
    rules: Spanned<Vec<Spanned<String>>>,
    /// How many alerts in all, when given.
    alerts: Option<usize>,
    /// The ids of the absence rules that must count the event as a heartbeat, when given:
    /// no more, no fewer.
    #[schemars(with = "Option<Vec<String>>")]
    heartbeats: Option<Vec<Spanned<String>>>,
    /// Alerts that must be among those raised: dotted paths into the alert's JSON (as `eval`
    /// prints it) with the values expected there.
    #[serde(default)]
    #[schemars(with = "Vec<std::collections::BTreeMap<String, serde_json::Value>>")]
    alert: Vec<toml::Table>,
}

/// A test ready to run.
#[derive(Debug)]
pub struct Case {
    pub file: PathBuf,
    pub name: String,
    bodies: Vec<String>,
    rules: BTreeSet<String>,
    alerts: Option<usize>,
    heartbeats: Option<BTreeSet<String>>,
    alert: Vec<Vec<(FieldPath, Value)>>,
}

/// What went wrong in a test that ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// One line each, in the style of a diff where it compares lists: `- expected`, `+ got`.
    pub lines: Vec<String>,
}

/// The test files at `paths`: files as given, directories' `*.toml` files in name order.
pub fn case_files<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<PathBuf>, LoadError> {
    super::rule_files(paths).map_err(|diagnostics| LoadError { diagnostics })
}

/// Reads test files, checking them against `rule_set` (unknown rule ids are errors).
pub fn load(files: &[PathBuf], rule_set: &RuleSet) -> Result<Vec<Case>, LoadError> {
    let mut cases = Vec::new();
    let mut diagnostics = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(error) => {
                diagnostics.push(Diagnostic::new(
                    file,
                    format!("cannot read test file: {error}"),
                ));
                continue;
            }
        };
        let parsed: CaseFile = match toml::from_str(&text) {
            Ok(parsed) => parsed,
            Err(error) => {
                let message = error.message().trim().to_owned();
                diagnostics.push(Diagnostic::new(file, message).at(&text, error.span()));
                continue;
            }
        };
        for def in parsed.tests {
            match case(file, &text, def, rule_set) {
                Ok(case) => cases.push(case),
                Err(diagnostic) => diagnostics.push(diagnostic),
            }
        }
    }
    if diagnostics.is_empty() {
        Ok(cases)
    } else {
        Err(LoadError { diagnostics })
    }
}

fn case(
    file: &Path,
    text: &str,
    def: Spanned<CaseDef>,
    rule_set: &RuleSet,
) -> Result<Case, Diagnostic> {
    let span = def.span();
    let def = def.into_inner();
    let error = |span: std::ops::Range<usize>, message: String| {
        Diagnostic::new(file, format!("in test `{}`: {message}", def.name)).at(text, Some(span))
    };
    let bodies = match (&def.event, &def.event_json) {
        (Some(path), None) => {
            let resolved = file.parent().unwrap_or(Path::new(".")).join(path.get_ref());
            let content = std::fs::read_to_string(&resolved).map_err(|e| {
                error(
                    path.span(),
                    format!("cannot read event file {}: {e}", resolved.display()),
                )
            })?;
            bodies(&content)
        }
        (None, Some(json)) => bodies(json.get_ref()),
        _ => {
            return Err(error(
                span,
                "give exactly one of `event` (a file) and `event_json` (a body)".into(),
            ));
        }
    };
    let known: BTreeSet<&str> = rule_set.rules().iter().map(|rule| &*rule.id).collect();
    for id in def
        .rules
        .get_ref()
        .iter()
        .chain(def.heartbeats.iter().flatten())
    {
        if !known.contains(id.get_ref().as_str()) {
            return Err(error(
                id.span(),
                format!("no rule has the id `{}`", id.get_ref()),
            ));
        }
    }
    let mut alert = Vec::new();
    for table in &def.alert {
        let mut expected = Vec::new();
        for (key, value) in table {
            let path = FieldPath::parse(key).map_err(|message| error(span.clone(), message))?;
            let value =
                serde_json::to_value(value).map_err(|e| error(span.clone(), e.to_string()))?;
            expected.push((path, value));
        }
        alert.push(expected);
    }
    Ok(Case {
        file: file.to_owned(),
        name: def.name,
        bodies,
        rules: def
            .rules
            .into_inner()
            .into_iter()
            .map(Spanned::into_inner)
            .collect(),
        alerts: def.alerts,
        heartbeats: def
            .heartbeats
            .map(|ids| ids.into_iter().map(Spanned::into_inner).collect()),
        alert,
    })
}

/// The rules `expected` and not `got`, then those `got` and not `expected`, each list under
/// its heading (none when it is empty).
fn differences(
    lines: &mut Vec<String>,
    expected: &BTreeSet<String>,
    got: &BTreeSet<String>,
    [missing_heading, extra_heading]: [&str; 2],
) {
    for (heading, ids) in [
        (
            missing_heading,
            expected.difference(got).collect::<Vec<_>>(),
        ),
        (extra_heading, got.difference(expected).collect()),
    ] {
        if !ids.is_empty() {
            lines.push(heading.to_owned());
            lines.extend(ids.into_iter().map(|id| format!("  {id}")));
        }
    }
}

/// One JSON document, or JSON lines.
fn bodies(text: &str) -> Vec<String> {
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
        return vec![text.to_owned()];
    }
    crate::input::json_lines(text)
        .map(|(_, line)| line.to_owned())
        .collect()
}

impl Case {
    /// Runs the test against `rule_set`.
    pub fn run(&self, rule_set: &RuleSet) -> Result<(), Failure> {
        let mut alerts: Vec<Alert> = Vec::new();
        let mut heartbeats: BTreeSet<String> = BTreeSet::new();
        let mut lines = Vec::new();
        for body in &self.bodies {
            match envelope::decode(body) {
                Ok(events) => {
                    for event in &events {
                        match rule_set.findings(event) {
                            Ok(found) => {
                                for finding in found {
                                    if finding.is_heartbeat() {
                                        heartbeats.insert(finding.alert.rule.to_string());
                                    } else {
                                        alerts.push(*finding.alert);
                                    }
                                }
                            }
                            Err(e) => lines.push(format!("the event could not be evaluated: {e}")),
                        }
                    }
                }
                Err(kind) => lines.push(format!("the event could not be decoded: {kind}")),
            }
        }
        let fired: BTreeSet<String> = alerts.iter().map(|alert| alert.rule.to_string()).collect();
        differences(
            &mut lines,
            &self.rules,
            &fired,
            ["expected, did not fire:", "fired, not expected:"],
        );
        if let Some(expected) = &self.heartbeats {
            differences(
                &mut lines,
                expected,
                &heartbeats,
                [
                    "heartbeats expected, not counted:",
                    "heartbeats counted, not expected:",
                ],
            );
        }
        if let Some(expected) = self.alerts {
            if expected != alerts.len() {
                lines.push(format!("alerts: expected {expected}, got {}", alerts.len()));
            }
        }
        let documents: Vec<Value> = alerts
            .iter()
            .map(|alert| serde_json::to_value(alert).unwrap_or(Value::Null))
            .collect();
        for expected in &self.alert {
            let found = documents.iter().any(|document| {
                expected
                    .iter()
                    .all(|(path, value)| path.values(document).contains(&value))
            });
            if !found {
                let wanted: Vec<String> = expected
                    .iter()
                    .map(|(path, value)| format!("{path} = {value}"))
                    .collect();
                lines.push(format!("no alert has {}", wanted.join(", ")));
                for document in &documents {
                    let got: Vec<String> = expected
                        .iter()
                        .map(|(path, _)| {
                            let values: Vec<String> = path
                                .values(document)
                                .iter()
                                .map(|v| v.to_string())
                                .collect();
                            format!("{path} = {}", values.join(" | "))
                        })
                        .collect();
                    lines.push(format!("  an alert has {}", got.join(", ")));
                }
            }
        }
        if lines.is_empty() {
            Ok(())
        } else {
            Err(Failure { lines })
        }
    }
}
