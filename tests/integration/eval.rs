//! `meterwatch eval` with the shipped rules: quiet on the seed's successful calls, and exactly
//! the intended alerts on failing variants, in every envelope shape the daemon accepts.

use crate::support::{meterwatch, stderr, stdout};
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;

/// One expected alert: the rule, and the element path for per-element alerts.
type Expected = (&'static str, Option<&'static str>);

/// What each failing fixture must raise, in output order.
const EXPECTED: &[(&str, &[Expected])] = &[
    (
        "batchmeterusage-partial",
        &[
            (
                "metering-record-failed",
                Some("detail.responseElements.results[0]"),
            ),
            (
                "metering-record-failed",
                Some("detail.responseElements.results[1]"),
            ),
            (
                "metering-record-failed",
                Some("detail.responseElements.unprocessedRecords[0]"),
            ),
        ],
    ),
    (
        "batchmeterusage-stale-timestamp",
        &[
            (
                "metering-record-failed",
                Some("detail.responseElements.unprocessedRecords[0]"),
            ),
            ("metering-timestamp-stale", None),
        ],
    ),
    (
        "meterusage-dryrun-failed",
        &[("dryrun-in-production", None)],
    ),
    (
        "meterusage-dryrun-success",
        &[("dryrun-in-production", None)],
    ),
    (
        "meterusage-invalid-product-code",
        // Drift inhibits the catch-all's alert for the same call: one page.
        &[("product-config-drift", None)],
    ),
    ("meterusage-throttled", &[("metering-throttled", None)]),
    (
        "meterusage-timestamp-out-of-bounds",
        // The stale alert inhibits the catch-all's for the same call: one page.
        &[("metering-timestamp-stale", None)],
    ),
    (
        "meterusage-unexpected-principal",
        &[("unexpected-principal", None)],
    ),
    (
        "meterusage-unknown-product-code",
        &[("product-config-drift", None)],
    ),
    (
        "registerusage-not-entitled",
        &[("metering-call-failed", None)],
    ),
];

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("fixture is readable");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// An SNS notification carrying `message`, as SQS receives it without raw delivery.
fn sns(message: &Value) -> Value {
    json!({
        "Type": "Notification",
        "MessageId": "0b7c2b9e-0000-4000-8000-0000000000aa",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:metering-events",
        "Message": message.to_string(),
        "Timestamp": "2020-07-10T23:06:43.000Z",
        "SignatureVersion": "1",
    })
}

/// The fixture envelope in every shape the daemon accepts, by name.
fn shapes(envelope: &Value) -> Vec<(&'static str, Value)> {
    let record = envelope["detail"].clone();
    let batch = json!({ "Records": [record.clone()] });
    vec![
        ("eventbridge", envelope.clone()),
        ("sns", sns(envelope)),
        ("cloudtrail", record.clone()),
        ("sns-cloudtrail", sns(&record)),
        ("records", batch.clone()),
        ("sns-records", sns(&batch)),
    ]
}

fn eval_body(body: &Value) -> (Vec<Value>, String) {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    write!(file, "{body}").expect("write body");
    let path = file.path().to_str().expect("utf-8 temp path");
    let output = meterwatch(&["eval", "--rules", "rules", path]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let alerts = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is a JSON alert"))
        .collect();
    (alerts, stderr(&output))
}

#[test]
fn seed_records_raise_no_alert_in_any_shape() {
    for seed in [
        "meterusage-ami",
        "meterusage-eks",
        "registerusage-eks",
        "batchmeterusage",
    ] {
        let envelope = read_json(Path::new(&format!(
            "tests/fixtures/events/envelopes/{seed}.eventbridge.json"
        )));
        for (shape, body) in shapes(&envelope) {
            let (alerts, _) = eval_body(&body);
            assert!(alerts.is_empty(), "{seed} as {shape}: {alerts:#?}");
        }
    }
}

#[test]
fn seed_event_files_raise_no_alert() {
    // The seed's eight files (each record bare and as EventBridge delivers it), as files.
    let dir = Path::new("tests/fixtures/events/envelopes");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("the envelope fixtures are readable")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| {
            let name = path.to_string_lossy();
            name.ends_with(".eventbridge.json")
                || (name.ends_with(".cloudtrail.json") && !name.ends_with(".sns-cloudtrail.json"))
        })
        .map(|path| path.to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 8, "{files:?}");
    let mut args = vec!["eval", "--rules", "rules"];
    args.extend(files.iter().map(String::as_str));
    let output = meterwatch(&args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "", "{}", stderr(&output));
}

#[test]
fn failing_variants_raise_exactly_the_intended_alerts_in_every_shape() {
    let mut failures = Vec::new();
    for (fixture, expected) in EXPECTED {
        let envelope = read_json(Path::new(&format!(
            "tests/fixtures/events/failing/{fixture}.eventbridge.json"
        )));
        for (shape, body) in shapes(&envelope) {
            let (alerts, _) = eval_body(&body);
            let got: Vec<(String, Option<String>)> = alerts
                .iter()
                .map(|alert| {
                    (
                        alert["rule"].as_str().unwrap_or("?").to_owned(),
                        alert["element"]["path"].as_str().map(str::to_owned),
                    )
                })
                .collect();
            let want: Vec<(String, Option<String>)> = expected
                .iter()
                .map(|(rule, element)| ((*rule).to_owned(), element.map(str::to_owned)))
                .collect();
            if got != want {
                failures.push(format!("{fixture} as {shape}: got {got:?}, want {want:?}"));
            }
            for alert in &alerts {
                assert_eq!(
                    alert["event_id"], envelope["detail"]["eventID"],
                    "{fixture} as {shape}: alerts name the CloudTrail eventID"
                );
                assert_eq!(alert["event_name"], envelope["detail"]["eventName"]);
                assert_eq!(alert["account"], "123456789012");
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_failing_fixture_has_expectations() {
    let mut names: Vec<String> = std::fs::read_dir("tests/fixtures/events/failing")
        .expect("fixtures")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .map(|name| name.trim_end_matches(".eventbridge.json").to_owned())
        .collect();
    names.sort();
    let listed: Vec<&str> = EXPECTED.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, listed);
}

#[test]
fn alerts_carry_rule_severity_title_ids_and_matched_values() {
    let envelope = read_json(Path::new(
        "tests/fixtures/events/failing/meterusage-throttled.eventbridge.json",
    ));
    let (alerts, _) = eval_body(&envelope);
    let throttled = alerts
        .iter()
        .find(|alert| alert["rule"] == "metering-throttled")
        .expect("metering-throttled fires");
    assert_eq!(throttled["severity"], "medium");
    assert_eq!(throttled["title"], "Metering call throttled");
    assert_eq!(
        throttled["event_id"],
        "f0a1b2c3-0000-4000-8000-000000000101"
    );
    assert_eq!(throttled["region"], "us-east-1");
    assert_eq!(throttled["event_time"], "2020-07-10T23:06:42Z");
    assert_eq!(
        throttled["matched"]["detail.errorCode"],
        "ThrottlingException"
    );
}

#[test]
fn undecodable_input_is_named_and_exits_2_after_evaluating_the_rest() {
    let output = meterwatch(&[
        "eval",
        "--rules",
        "rules",
        "tests/fixtures/events/poison/not-json.txt",
        "tests/fixtures/events/failing/meterusage-throttled.eventbridge.json",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("tests/fixtures/events/poison/not-json.txt"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        stdout(&output).lines().count(),
        1,
        "the good file is still evaluated"
    );
}

/// The throttled fixture as one line of JSON lines.
fn throttled_line() -> String {
    read_json(Path::new(
        "tests/fixtures/events/failing/meterusage-throttled.eventbridge.json",
    ))
    .to_string()
}

/// `meterwatch eval` over the shipped rules, reading a pipe.
fn eval_reading_a_pipe() -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_meterwatch"))
        .args(["eval", "--rules", "rules", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("meterwatch runs")
}

#[test]
fn json_lines_and_stdin_are_read() {
    let line = throttled_line();
    let mut child = eval_reading_a_pipe();
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(format!("{line}\n\n{line}\n").as_bytes())
        .expect("write stdin");
    let output = child.wait_with_output().expect("meterwatch exits");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        stdout(&output).lines().count(),
        2,
        "an alert per event, two events"
    );
}

#[test]
fn a_pipes_alerts_come_out_as_its_lines_arrive() {
    use std::io::BufRead;
    let mut child = eval_reading_a_pipe();
    let mut stdin = child.stdin.take().expect("piped stdin");
    // One line, and stdin stays open: its alerts must not wait for more input.
    writeln!(stdin, "{}", throttled_line()).expect("write stdin");
    let child_stdout = child.stdout.take().expect("piped stdout");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(child_stdout).lines() {
            let _ = sender.send(line.expect("stdout reads"));
        }
    });
    let first = receiver
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("an alert before the pipe closes");
    assert!(
        first.contains("\"error_code\":\"ThrottlingException\""),
        "{first}"
    );
    drop(stdin);
    assert_eq!(child.wait().expect("meterwatch exits").code(), Some(0));
}

/// The shipped rules with `lists` for rules/lists.toml, evaluating a MeterUsage record by
/// each of `identities`: what `eval` prints.
fn eval_with_lists(lists: &str, identities: &[Value]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    for file in ["identity.toml", "metering.toml"] {
        std::fs::copy(Path::new("rules").join(file), dir.path().join(file)).expect("copy rules");
    }
    std::fs::write(dir.path().join("lists.toml"), lists).expect("write lists");
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    for identity in identities {
        let record = json!({
            "eventSource": "metering-marketplace.amazonaws.com", "eventName": "MeterUsage",
            "eventID": "q-1", "eventTime": "2020-07-10T23:06:42Z", "awsRegion": "us-east-1",
            "recipientAccountId": "123456789012", "userIdentity": identity,
            "requestParameters": {"productCode": "prod-unlisted", "dryRun": true,
                                  "timestamp": "Jul 10, 2020 11:00:00 PM"}
        });
        writeln!(file, "{record}").expect("write body");
    }
    let rules = dir.path().to_str().expect("utf-8 temp path");
    let events = file.path().to_str().expect("utf-8 temp path");
    let output = meterwatch(&["eval", "--rules", rules, events]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    stdout(&output)
}

fn identities() -> [Value; 3] {
    [
        json!({"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/mallory"}),
        json!({"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}),
        json!({"type": "AWSAccount", "principalId": "AIDAEXAMPLE", "accountId": "111122223333"}),
    ]
}

/// Every shipped rule that reads a list stays quiet while its list is empty ("not
/// configured"), as each rule's description says: callers with no ARN included.
#[test]
fn shipped_rules_stay_quiet_on_empty_lists() {
    let empty = "[lists]\nallowed_principals = []\nproduction_accounts = []\nexpected_product_codes = []\nmetered_product_codes = []\n";
    assert_eq!(eval_with_lists(empty, &identities()), "");
}

/// A caller with no ARN is allowed by the service that invoked it or by its account id; an
/// unlisted one, like an unlisted ARN, is unexpected.
#[test]
fn callers_with_no_arn_are_allowed_by_service_or_account() {
    let lists = |allowed: &str| {
        format!(
            "[lists]\nallowed_principals = [{allowed}]\nproduction_accounts = []\nexpected_product_codes = []\nmetered_product_codes = []\n"
        )
    };
    let flagged = |output: String| -> Vec<String> {
        output
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).expect("an alert"))
            .filter(|alert| alert["rule"] == "unexpected-principal")
            .map(|alert| alert["principal"]["type"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let unrelated = lists("\"arn:aws:iam::123456789012:role/Alice\"");
    assert_eq!(
        flagged(eval_with_lists(&unrelated, &identities())),
        ["IAMUser", "AWSService", "AWSAccount"]
    );
    let listed = lists("\"ec2.amazonaws.com\", \"111122223333\"");
    assert_eq!(
        flagged(eval_with_lists(&listed, &identities())),
        ["IAMUser"]
    );
    // A wildcard for every AWS service also matches the Metering Service's own name, which
    // must not switch the rule off for everyone else.
    let services = lists("\"*.amazonaws.com\"");
    assert_eq!(
        flagged(eval_with_lists(&services, &identities())),
        ["IAMUser", "AWSAccount"]
    );
}

/// `--rules` takes several paths the same way in every command: the flag repeated, or one
/// value with commas.
#[test]
fn rules_are_given_by_repeating_the_flag_or_with_commas() {
    let event = "tests/fixtures/events/failing/meterusage-throttled.eventbridge.json";
    let whole = meterwatch(&["eval", "--rules", "rules", event]);
    assert_eq!(whole.status.code(), Some(0), "{}", stderr(&whole));
    let commas = meterwatch(&[
        "eval",
        "--rules",
        "rules/identity.toml,rules/metering.toml,rules/lists.toml",
        event,
    ]);
    let repeated = meterwatch(&[
        "eval",
        "--rules",
        "rules/identity.toml",
        "--rules",
        "rules/metering.toml",
        "--rules",
        "rules/lists.toml",
        event,
    ]);
    assert!(!stdout(&whole).is_empty());
    assert_eq!(stdout(&commas), stdout(&whole), "{}", stderr(&commas));
    assert_eq!(stdout(&repeated), stdout(&whole), "{}", stderr(&repeated));
}

/// A gzipped log file, a file with a byte-order mark and a broken pretty-printed file: the
/// first two are read, the third is one error with its line and column, and the run ends
/// with what it read.
#[test]
fn gzip_bom_and_broken_files_are_read_as_found() {
    let dir = tempfile::tempdir().expect("temp dir");
    let throttled = std::fs::read_to_string(
        "tests/fixtures/events/failing/meterusage-throttled.eventbridge.json",
    )
    .expect("fixture");
    let record: Value = serde_json::from_str::<Value>(&throttled).expect("JSON")["detail"].clone();
    let insight = json!({"eventVersion": "1.07", "eventType": "AwsCloudTrailInsight",
        "eventCategory": "Insight", "eventID": "i-1", "insightDetails": {}});
    let batch = json!({"Records": [insight, record]}).to_string();

    let gz = dir.path().join("log.json.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(batch.as_bytes()).expect("compress");
    std::fs::write(&gz, encoder.finish().expect("compress")).expect("write");
    let bom = dir.path().join("bom.json");
    std::fs::write(&bom, format!("\u{feff}{throttled}")).expect("write");
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\n  \"Records\": [\n    {\"a\": 1},\n  ]\n}\n").expect("write");

    let paths = [&gz, &bom, &broken].map(|path| path.display().to_string());
    let mut args = vec!["eval", "--rules", "rules"];
    args.extend(paths.iter().map(String::as_str));
    let output = meterwatch(&args);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let errors = stderr(&output);
    let alerts = stdout(&output);
    assert_eq!(alerts.lines().count(), 2, "{alerts}{errors}");
    assert_eq!(errors.matches("error:").count(), 1, "{errors}");
    assert!(errors.contains("at line 4 column 3"), "{errors}");
    assert!(
        errors.contains("skipped CloudTrail record Records[0] is a CloudTrail Insights event"),
        "{errors}"
    );
    assert!(
        errors.contains(
            "2 events from 3 files: 2 alerts, 1 undecodable (named above), 1 record skipped (named above)"
        ),
        "{errors}"
    );
}

/// Every body of `../shared/real-world/`, as found and wrapped in SNS, EventBridge and a
/// `Records` batch, decodes or is refused with a reason that names what it is or the field
/// at fault; no metering alert comes from a non-metering record.
#[test]
fn real_world_bodies_decode_or_are_refused_with_a_reason() {
    let Some(corpus) = crate::corpora::shared("real-world") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut paths = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&corpus)
        .expect("corpus")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext != "md"))
        .collect();
    entries.sort();
    for path in entries {
        paths.push(path.display().to_string());
        let text = std::fs::read_to_string(&path).expect("corpus file");
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let bodies: Vec<Value> = text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .chain(serde_json::from_str(&text).ok())
            .collect();
        for (idx, body) in bodies.iter().enumerate() {
            let wrapped = [
                json!({"Type": "Notification", "MessageId": "m", "Message": body.to_string()}),
                json!({"version": "0", "id": "x", "detail-type": "AWS API Call via CloudTrail",
                       "source": "aws.x", "account": "1", "time": "2020-01-01T00:00:00Z",
                       "region": "us-east-1", "resources": [], "detail": body}),
                json!({"Records": [body]}),
            ];
            for (shape, wrapped) in wrapped.iter().enumerate() {
                let out = dir.path().join(format!("{name}.{idx}.{shape}.json"));
                std::fs::write(&out, wrapped.to_string()).expect("write");
                paths.push(out.display().to_string());
            }
        }
    }
    let mut args = vec!["eval", "--rules", "rules"];
    args.extend(paths.iter().map(String::as_str));
    let output = meterwatch(&args);
    let errors = stderr(&output);
    assert!(matches!(output.status.code(), Some(0 | 2)), "{errors}");
    let clear = [
        "body is ",
        "must be ",
        "not JSON",
        "is none of the accepted shapes",
        "not an API call",
        "not a JSON object",
        "another SNS notification",
        "batch is empty",
    ];
    for line in errors
        .lines()
        .filter(|line| line.starts_with("error") || line.starts_with("warning"))
    {
        assert!(clear.iter().any(|reason| line.contains(reason)), "{line}");
    }
    // Refusals of a foreign shape, as found or in SNS, say what it is, not which field it
    // lacks (inside a `Records` batch it is taken for a record).
    let foreign = ["s3-event", "sns-event", "digest", "kinesis"];
    for line in errors
        .lines()
        .filter(|line| foreign.iter().any(|name| line.contains(name)) && !line.contains(".2.json"))
    {
        assert!(!line.contains("`eventSource` must be"), "{line}");
    }
    for line in stdout(&output).lines() {
        let alert: Value = serde_json::from_str(line).expect("an alert");
        assert_eq!(
            alert["event_name"]
                .as_str()
                .map(|name| name.ends_with("Usage")),
            Some(true),
            "{line}"
        );
    }
}
