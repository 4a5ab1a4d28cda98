//! `meterwatch bench-patterns` follows the shared benchmark's contract.

use crate::corpora::shared;
use crate::support::{meterwatch, stderr, stdout};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

fn bench(patterns: &Path, events: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "bench-patterns",
        "--patterns",
        patterns.to_str().expect("utf-8 path"),
        "--events",
        events.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    meterwatch(&args)
}

#[test]
fn operator_probe_counts_match_the_expected_file() {
    let Some(bench_dir) = shared("bench") else {
        return;
    };
    let patterns = bench_dir.join("operator-probe.json");
    let events = bench_dir.join("operator-probe.events.jsonl");
    let output = bench(&patterns, &events, &["--passes", "2"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: Value = serde_json::from_str(stdout(&output).trim()).expect("one JSON line");
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(bench_dir.join("operator-probe.expected.json"))
            .expect("expected counts"),
    )
    .expect("JSON");
    assert_eq!(report["per_pattern"], expected);
    assert_eq!(report["engine"], "meterwatch");
    assert_eq!(report["events"], 4);
    for key in [
        "patterns",
        "event_bytes",
        "compile_seconds",
        "pass_seconds",
        "median_events_per_sec",
        "median_mb_per_sec",
        "matches_total",
        "events_matched",
    ] {
        assert!(report.get(key).is_some(), "report lacks {key}");
    }
}

#[test]
fn a_rejected_pattern_exits_3_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let patterns = dir.path().join("patterns.json");
    std::fs::write(
        &patterns,
        r#"{"good": {"a": ["x"]}, "bad-one": {"a": [{"wildcard": "a**"}]}}"#,
    )
    .expect("write");
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, "{\"a\": \"x\"}\n").expect("write");
    let output = bench(&patterns, &events, &[]);
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("bad-one"), "{}", stderr(&output));
}

#[test]
fn a_missing_events_file_exits_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let patterns = dir.path().join("patterns.json");
    std::fs::write(&patterns, r#"{"good": {"a": ["x"]}}"#).expect("write");
    let output = meterwatch(&[
        "bench-patterns",
        "--patterns",
        patterns.to_str().expect("utf-8 path"),
        "--events",
        "/nonexistent.jsonl",
    ]);
    assert_eq!(output.status.code(), Some(1));
}
