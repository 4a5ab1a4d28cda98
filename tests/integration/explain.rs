//! `meterwatch explain` on the seed's records and failing variants, as snapshots.

use crate::support::{meterwatch, stderr, stdout};

fn explain(args: &[&str]) -> String {
    let mut all = vec!["explain", "--rules", "rules"];
    all.extend_from_slice(args);
    let output = meterwatch(&all);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    stdout(&output)
}

#[test]
fn seed_records_explained() {
    for seed in [
        "meterusage-ami",
        "meterusage-eks",
        "registerusage-eks",
        "batchmeterusage",
    ] {
        let event = format!("tests/fixtures/events/envelopes/{seed}.eventbridge.json");
        insta::assert_snapshot!(format!("seed_{seed}"), explain(&["--event", &event]));
    }
}

#[test]
fn failing_batch_explained_for_one_rule() {
    insta::assert_snapshot!(explain(&[
        "--event",
        "tests/fixtures/events/failing/batchmeterusage-partial.eventbridge.json",
        "--rule",
        "metering-record-failed",
    ]));
}

#[test]
fn json_output_for_a_throttled_call() {
    insta::assert_snapshot!(explain(&[
        "--event",
        "tests/fixtures/events/failing/meterusage-throttled.eventbridge.json",
        "--rule",
        "metering-throttled",
        "--json",
    ]));
}

#[test]
fn an_unknown_rule_id_is_an_error() {
    let output = meterwatch(&[
        "explain",
        "--event",
        "tests/fixtures/events/failing/meterusage-throttled.eventbridge.json",
        "--rule",
        "no-such-rule",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("no-such-rule"));
}

/// A time test passes over a value that is no timestamp; `explain` says which and why.
#[test]
fn a_value_that_is_no_timestamp_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let event = dir.path().join("event.json");
    let record = serde_json::json!({
        "eventSource": "metering-marketplace.amazonaws.com", "eventName": "MeterUsage",
        "eventID": "ts-1", "eventTime": "2020-07-10T23:06:42Z", "awsRegion": "us-east-1",
        "recipientAccountId": "123456789012",
        "requestParameters": {"productCode": "EXAMPLE_proCode", "timestamp": "2020-07-10 16:06:41"}
    });
    std::fs::write(&event, record.to_string()).expect("write event");
    let text = explain(&[
        "--event",
        event.to_str().expect("utf-8 path"),
        "--rule",
        "metering-timestamp-stale",
    ]);
    assert!(
        text.contains(
            r#"older_than = "6h": "2020-07-10 16:06:41" — not a timestamp: "2020-07-10 16:06:41"; expected e.g. "Jul 10, 2020 11:06:41 PM" or RFC 3339"#
        ),
        "{text}"
    );
}
