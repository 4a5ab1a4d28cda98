//! Runs every case of the shared EventBridge conformance corpus (most recorded against AWS
//! itself) through the engine, in place: the data is never copied into this repository.

use meterwatch_pattern::{ErrorKind, MatcherBuilder, Pattern};
use serde_json::Value;

#[path = "../../../tests/corpora.rs"]
mod corpora;

const AWS_PREFIX: &str = "Event pattern is not valid. Reason: ";

#[test]
fn every_conformance_case_matches_aws() {
    let Some(corpus) = corpora::shared("conformance/eventbridge-patterns/cases.jsonl") else {
        return;
    };
    let text = std::fs::read_to_string(corpus).expect("the conformance corpus is readable");
    let mut failures = Vec::new();
    let mut n_cases = 0;
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).expect("corpus lines are JSON");
        n_cases += 1;
        let name = case["name"].as_str().unwrap_or("?");
        let pattern_text = match case.get("pattern_text").and_then(Value::as_str) {
            Some(text) => text.to_owned(),
            None => case["pattern"].to_string(),
        };
        let event = case["event"].to_string();
        let expect = case["expect"].as_str().unwrap_or("?");
        let got = match Pattern::parse(&pattern_text) {
            Err(error) => {
                if expect == "invalid" && error.kind() != ErrorKind::Syntax {
                    let aws = case["aws_error"].as_str().unwrap_or("");
                    let aws_reason = aws.strip_prefix(AWS_PREFIX).unwrap_or(aws).trim_end();
                    if error.reason() != aws_reason {
                        failures.push(format!(
                            "{name}: reason {:?}, AWS says {aws_reason:?}",
                            error.reason()
                        ));
                    }
                }
                "invalid".to_owned()
            }
            Ok(pattern) => {
                let mut builder = MatcherBuilder::default();
                builder.add(name, pattern);
                match builder.build().matches(&event) {
                    Ok(found) if found.is_empty() => "no_match".to_owned(),
                    Ok(_) => "match".to_owned(),
                    Err(error) => format!("event error: {error}"),
                }
            }
        };
        if got != expect {
            failures.push(format!("{name}: expected {expect}, got {got}\n    pattern {pattern_text}\n    event {event}"));
        }
    }
    assert_eq!(n_cases, 240, "the corpus has 240 cases");
    assert!(
        failures.is_empty(),
        "{} of {n_cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
