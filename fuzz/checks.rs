//! What each fuzz target holds true of its input, one function per target. The targets
//! (`fuzz/fuzz_targets/`) and the regression test over `fuzz/regressions/<target>/`
//! (`tests/integration/fuzz_regressions.rs`) both call these, so that they cannot drift.
//! A check panics when its property fails; input it cannot use (not UTF-8) it skips.

use meterwatch::alert::format::{self, Format};
use meterwatch::alert::{Alert, Severity};
use meterwatch::config::{Config, ConfigError};
use meterwatch::envelope::{self, DecodeErrorKind};
use meterwatch::rules::{Budget, RuleSet};
use meterwatch_pattern::{MatcherBuilder, Pattern, Scratch, reference};
use serde_json::Value;
use std::path::Path;

/// The targets, as named under `fuzz/fuzz_targets/` and `fuzz/regressions/`.
pub const TARGETS: [&str; 6] = [
    "pattern_match",
    "envelope_decode",
    "rules_load",
    "config_load",
    "body_to_sns",
    "routes",
];

/// Runs target `name`'s check on `data`; `rules` is what [`body_to_sns`] evaluates with.
pub fn run(name: &str, data: &[u8], rules: &RuleSet) {
    match name {
        "pattern_match" => pattern_match(data),
        "envelope_decode" => envelope_decode(data),
        "rules_load" => rules_load(data),
        "config_load" => config_load(data),
        "body_to_sns" => body_to_sns(rules, data),
        "routes" => routes(data),
        other => panic!("no fuzz target `{other}`"),
    }
}

/// The shipped rules (`rules/` at the project root), what [`body_to_sns`] evaluates with.
pub fn shipped_rules(project_root: &Path) -> RuleSet {
    RuleSet::load(&[project_root.join("rules")]).expect("the shipped rules load")
}

/// Patterns, one a line, then the event on the last line: the compiled matcher finds what
/// the brute-force reference finds, for every pattern, a key repeated in the event giving
/// each of its values to both; a reused scratch changes nothing; a refused pattern says why.
pub fn pattern_match(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines: Vec<&str> = text.lines().collect();
    let Some(event) = lines.pop() else {
        return;
    };
    let mut patterns = Vec::new();
    for line in lines.iter().filter(|line| !line.trim().is_empty()).take(8) {
        match Pattern::parse(line) {
            Ok(pattern) => patterns.push(pattern),
            Err(error) => assert!(!error.to_string().is_empty(), "a refusal says why"),
        }
    }
    let mut builder = MatcherBuilder::default();
    for (idx, pattern) in patterns.iter().enumerate() {
        builder.add(idx, pattern.clone());
    }
    let matcher = builder.build();
    let Ok(found) = matcher.matches(event) else {
        return;
    };
    let mut found: Vec<usize> = found.into_iter().copied().collect();
    found.sort_unstable();
    // The same scratch, used first on another event, must leave no trace.
    let mut scratch = Scratch::default();
    let mut again = Vec::new();
    let _ = matcher.matches_with(
        r#"{"a": [1, {"b": "x"}], "detail": {"c": null}}"#,
        &mut scratch,
        &mut again,
    );
    matcher
        .matches_with(event, &mut scratch, &mut again)
        .expect("the event was accepted once");
    // Pattern indices, which are the ids here: each was added under its index.
    again.sort_unstable();
    assert_eq!(found, again, "a reused scratch changed the result");
    let mut expected = Vec::new();
    for (idx, pattern) in patterns.iter().enumerate() {
        match reference::matches_text(pattern, event) {
            Some(true) => expected.push(idx),
            Some(false) => {}
            // JSON the reference's tree cannot hold (a number beyond f64, deep nesting).
            None => return,
        }
    }
    assert_eq!(found, expected, "matcher and reference disagree on {event}");
}

/// A file's bytes (gzip or not; one body or JSON lines), each body decoded: never a panic,
/// every refusal and every skipped record with a reason, every event a JSON object.
pub fn envelope_decode(data: &[u8]) {
    let Ok(text) = meterwatch::input::text(data.to_vec()) else {
        return;
    };
    for (_, body) in meterwatch::input::bodies(&text) {
        match envelope::decode_all(body) {
            Ok(decoded) => {
                assert!(!decoded.events.is_empty(), "a decoded body has events");
                for skipped in &decoded.skipped {
                    assert!(
                        DecodeErrorKind::SKIPPED_LABELS.contains(&skipped.label()),
                        "{skipped}"
                    );
                    assert!(!skipped.to_string().is_empty());
                }
                for event in &decoded.events {
                    match event.value() {
                        Ok(value) => assert!(value.is_object(), "an event is an object"),
                        // What `Event::value` documents: text valid JSON a `Value` cannot hold.
                        Err(error) => assert!(
                            ["number out of range", "recursion limit exceeded"]
                                .iter()
                                .any(|reason| error.to_string().contains(reason)),
                            "{error}"
                        ),
                    }
                }
                let events = envelope::decode(body).expect("decode_all accepted it");
                assert_eq!(events, decoded.events);
            }
            Err(kind) => {
                assert!(DecodeErrorKind::LABELS.contains(&kind.label()), "{kind}");
                assert!(!kind.to_string().is_empty());
            }
        }
    }
}

/// Diagnostics that are about the file as a whole, and so have no line.
const FILE_LEVEL: [&str; 1] = ["no rules: the rule files define no `[[rule]]`"];

/// Whether a diagnostic at `position` (1-based line and column in characters) saying
/// `message` is placed inside `text`, or is about the whole file. Takes the fields, not the
/// type, so that the check does not depend on where diagnostics live.
fn placed_inside(position: Option<(usize, usize)>, message: &str, text: &str) -> bool {
    let Some((line, column)) = position else {
        return FILE_LEVEL.contains(&message);
    };
    let Some(text_line) = text.split('\n').nth(line.saturating_sub(1)) else {
        return false;
    };
    line >= 1 && column >= 1 && column <= text_line.chars().count() + 1
}

/// One rule file's text: loading never panics; a refusal lists problems, each placed inside
/// the text; a loaded set evaluates the shipped fixtures without panicking.
pub fn rules_load(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match RuleSet::load_text(Path::new("fuzz.toml"), text) {
        Ok(rule_set) => {
            for body in SAMPLE_BODIES {
                let _ = rule_set.body_findings(body, Budget::default());
            }
        }
        Err(error) => {
            assert!(!error.diagnostics.is_empty(), "a refusal says why");
            for diagnostic in &error.diagnostics {
                let position = diagnostic
                    .position
                    .as_ref()
                    .map(|position| (position.line, position.column));
                assert!(
                    placed_inside(position, &diagnostic.message, text),
                    "no place in the text: {diagnostic}"
                );
            }
            let _ = error.to_string();
        }
    }
}

/// Bodies a fuzzed rule set is tried on: a failed call and a partial batch.
const SAMPLE_BODIES: [&str; 2] = [
    include_str!("../tests/fixtures/events/failing/meterusage-throttled.eventbridge.json"),
    include_str!("../tests/fixtures/events/failing/batchmeterusage-partial.eventbridge.json"),
];

/// A config file's text: parsing and validation never panic; every problem a route has is
/// placed inside the text; the routes of a valid config compile.
pub fn config_load(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::parse(text) else {
        return;
    };
    match config.validate() {
        Ok(()) => {
            config.router().expect("a valid config's routes compile");
        }
        Err(ConfigError::Invalid(problems)) => {
            assert!(!problems.is_empty());
            for problem in &problems {
                if let Some(position) = &problem.position {
                    let n_lines = text.split('\n').count();
                    assert!(position.line >= 1 && position.line <= n_lines, "{problem}");
                }
            }
        }
        Err(other) => panic!("validation of parsed text: {other}"),
    }
    let _ = config.effective_sinks();
}

/// Sinks the [`routes`] target's routes are compiled against.
const ROUTE_SINKS: &str = "[sinks.email]\ntype = \"stdout\"\n[sinks.pager]\ntype = \"stdout\"\n[sinks.slack]\ntype = \"stdout\"\n";

/// `[[route]]` tables after three sinks: compiling never panics; a valid router sends every
/// alert to known sinks, each once. (Silences do not exist yet; when they do, they belong
/// here.)
pub fn routes(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::parse(&format!("{ROUTE_SINKS}{text}")) else {
        return;
    };
    let Ok(router) = config.router() else {
        return;
    };
    let n_sinks = config.effective_sinks().len();
    for rule in ["metering-call-failed", "a", "", "x*y", "metering-"] {
        for severity in Severity::ALL {
            let alert = Alert::new(rule.into(), severity, String::new());
            let sinks = router.select(&alert);
            assert!(sinks.iter().all(|&sink| sink < n_sinks), "{sinks:?}");
            let mut unique = sinks.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), sinks.len(), "a sink selected twice");
        }
    }
    let _ = router.unmatched_rules(["a", "b"].into_iter());
}

/// An SQS body through the shipped rules to every SNS format: one pass over an envelope
/// raises what decoding and then evaluating raises; each alert's document is written byte
/// for byte as serde_json writes it; each message is valid JSON within SNS's limit, its
/// subject one printable line under 100 characters.
pub fn body_to_sns(rules: &RuleSet, data: &[u8]) {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let budget = Budget::default();
    let found = rules.body_alerts(body, budget);
    if let Ok(events) = envelope::decode(body) {
        let decoded: Option<Vec<String>> = match events.as_slice() {
            [event] => rules
                .evaluate(event)
                .ok()
                .map(|alerts| alerts.iter().map(Alert::to_json).collect()),
            _ => None,
        };
        if let (Some(decoded), Ok(found)) = (decoded, &found) {
            let one_pass: Vec<String> = found
                .per_event
                .iter()
                .flat_map(|(_, findings)| findings.iter().map(|f| f.alert.to_json()))
                .collect();
            assert_eq!(
                one_pass, decoded,
                "one pass and decoding raised different alerts"
            );
        }
    }
    let Ok(found) = found else {
        return;
    };
    // Past the budget each rule's further alerts become one summary: at most one per rule more.
    let n_alerts: usize = found
        .per_event
        .iter()
        .map(|(_, findings)| findings.len())
        .sum();
    assert!(
        n_alerts <= budget.max_alerts + rules.len(),
        "{n_alerts} alerts from one message"
    );
    for (_, findings) in &found.per_event {
        for finding in findings {
            check_alert(&finding.alert);
        }
    }
}

fn check_alert(alert: &Alert) {
    let document = alert.to_json();
    assert_eq!(
        document,
        serde_json::to_string(alert).expect("an alert serializes"),
        "the two writers of the alert document differ"
    );
    for format in [Format::Json, Format::Chatbot] {
        let message = format::message(alert, format);
        let limit = format::MAX_MESSAGE_BYTES - format::attribute_bytes(&message.attributes);
        assert!(
            message.body.len() <= limit,
            "{format:?}: {} bytes",
            message.body.len()
        );
        let body: Value = serde_json::from_str(&message.body).expect("a message is JSON");
        if format == Format::Json {
            let default = body["default"].as_str().expect("a `default` string");
            let document: Value = serde_json::from_str(default).expect("the document is JSON");
            assert!(document.is_object());
            assert!(body["email"].is_string(), "an `email` string");
        }
        assert!(message.subject.len() < 100, "{}", message.subject);
        assert!(
            message.subject.chars().all(|c| (' '..='~').contains(&c)),
            "{}",
            message.subject
        );
        for (name, value) in &message.attributes {
            assert!(!value.trim().is_empty(), "attribute {name} is empty");
        }
    }
    let _ = format::email::text(alert);
    let _ = format::terminal::text(alert);
}
