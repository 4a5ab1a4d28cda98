//! `meterwatch test-event-pattern` behaves like `aws events test-event-pattern`, on every case
//! of the shared conformance corpus.

use crate::corpora::shared;
use crate::support::{meterwatch, stderr, stdout};
use serde_json::Value;

#[test]
fn every_conformance_case_through_the_cli() {
    let Some(corpus) = shared("conformance/eventbridge-patterns/cases.jsonl") else {
        return;
    };
    let corpus = std::fs::read_to_string(corpus).expect("the conformance corpus is readable");
    let mut failures = Vec::new();
    let mut n_cases = 0;
    for line in corpus.lines().filter(|line| !line.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).expect("corpus lines are JSON");
        n_cases += 1;
        let name = case["name"].as_str().unwrap_or("?");
        let pattern = match case.get("pattern_text").and_then(Value::as_str) {
            Some(text) => text.to_owned(),
            None => case["pattern"].to_string(),
        };
        let event = case["event"].to_string();
        let output = meterwatch(&[
            "test-event-pattern",
            "--event-pattern",
            &pattern,
            "--event",
            &event,
        ]);
        let got = match (output.status.code(), stdout(&output).trim()) {
            (Some(0), r#"{"Result": true}"#) => "match",
            (Some(0), r#"{"Result": false}"#) => "no_match",
            (Some(1), "")
                if stderr(&output).starts_with(
                    "InvalidEventPatternException: Event pattern is not valid. Reason: ",
                ) =>
            {
                "invalid"
            }
            _ => "unexpected output",
        };
        if got != case["expect"] {
            failures.push(format!(
                "{name}: expected {}, got {got} (exit {:?}, stdout {:?}, stderr {:?})",
                case["expect"],
                output.status.code(),
                stdout(&output),
                stderr(&output)
            ));
        }
    }
    assert_eq!(n_cases, 240);
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn patterns_and_events_can_come_from_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pattern = dir.path().join("pattern.json");
    std::fs::write(
        &pattern,
        r#"{"detail": {"eventName": ["BatchMeterUsage"]}}"#,
    )
    .expect("write");
    let event = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/events/envelopes/batchmeterusage.eventbridge.json");
    let output = meterwatch(&[
        "test-event-pattern",
        "--event-pattern",
        &format!("file://{}", pattern.display()),
        "--event",
        &format!("file://{}", event.display()),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), r#"{"Result": true}"#);
}

#[test]
fn invalid_event_json_exits_2_naming_the_input() {
    let output = meterwatch(&[
        "test-event-pattern",
        "--event-pattern",
        r#"{"a": ["b"]}"#,
        "--event",
        "{nope",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--event"), "{}", stderr(&output));
}

#[test]
fn unreadable_file_exits_2_naming_the_input() {
    let output = meterwatch(&[
        "test-event-pattern",
        "--event-pattern",
        "file:///nonexistent/p.json",
        "--event",
        "{}",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--event-pattern"),
        "{}",
        stderr(&output)
    );
}
