//! `meterwatch bench-eval` times exactly what `eval` prints, beside the matching alone; and
//! `bench-pipeline` publishes it.

use crate::support::{meterwatch, stderr, stdout};
use serde_json::Value;
use std::path::Path;

/// The failing fixture events as JSON lines, and a line that is no message body.
fn bodies(dir: &Path) -> std::path::PathBuf {
    let mut lines = String::new();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events/failing");
    let mut files: Vec<_> = std::fs::read_dir(&fixtures)
        .expect("fixture directory")
        .map(|entry| entry.expect("fixture entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", fixtures.display());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("fixture");
        let value: Value = serde_json::from_str(&text).expect("fixture is JSON");
        lines.push_str(&value.to_string());
        lines.push('\n');
    }
    lines.push_str("{\"not\": \"a message body\"}\n");
    let path = dir.join("bodies.jsonl");
    std::fs::write(&path, lines).expect("write bodies");
    path
}

#[test]
fn it_counts_what_eval_prints_and_times_both_sides() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bodies = bodies(dir.path());
    let bodies = bodies.to_str().expect("utf-8 path");
    let eval = meterwatch(&["eval", "--rules", "rules", bodies]);
    assert_eq!(eval.status.code(), Some(2), "one body is undecodable");
    let printed = stdout(&eval);

    let output = meterwatch(&[
        "bench-eval",
        "--rules",
        "rules",
        "--events",
        bodies,
        "--passes",
        "2",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: Value = serde_json::from_str(stdout(&output).trim()).expect("one JSON line");
    assert_eq!(report["alerts"], printed.lines().count());
    assert!(
        report["alerts"].as_u64() > Some(0),
        "the failing fixtures raise alerts"
    );
    assert_eq!(report["alert_bytes"], printed.len());
    assert_eq!(report["undecodable"], 1);
    // The shipped rules but `metering-stopped`, an absence rule eval does not judge.
    assert_eq!(report["patterns"], 8);
    for key in [
        "matching_bodies_per_sec",
        "eval_bodies_per_sec",
        "eval_time_vs_matching",
    ] {
        assert!(
            report[key].as_f64().is_some_and(|n| n > 0.0),
            "{key}: {}",
            report[key]
        );
    }
}

/// `bench-pipeline` with no state stage publishes what `eval` prints, every pass.
#[test]
fn bench_pipeline_without_state_publishes_what_eval_prints() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bodies = bodies(dir.path());
    let bodies = bodies.to_str().expect("utf-8 path");
    let eval = meterwatch(&["eval", "--rules", "rules", bodies]);
    let printed = stdout(&eval).lines().count();
    let output = meterwatch(&[
        "bench-pipeline",
        "--events",
        bodies,
        "--state",
        "none",
        "--passes",
        "2",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: Value = serde_json::from_str(stdout(&output).trim()).expect("one JSON line");
    assert_eq!(report["alerts"], printed);
    assert_eq!(report["passes"], 2);
    assert!(
        report["median_events_per_sec"]
            .as_f64()
            .is_some_and(|n| n > 0.0)
    );
}
