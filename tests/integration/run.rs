//! `meterwatch run` without AWS (file and stdin sources, stdout sink) and
//! `meterwatch check --config`.

use crate::support::{meterwatch, stderr, stdout};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn fixture_files(directory: &str) -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/events")
        .join(directory);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixture directory")
        .map(|entry| entry.expect("entry").path().display().to_string())
        .filter(|path| path.ends_with(".json"))
        .collect();
    files.sort();
    files
}

fn sorted_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

#[test]
fn readme_command_prints_alerts_and_exits_zero() {
    let output = meterwatch(&[
        "run",
        "--rules",
        "rules",
        "--events",
        "tests/fixtures/events",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let alerts = stdout(&output);
    assert!(alerts.lines().count() >= 10, "{alerts}");
    for line in alerts.lines() {
        let alert: serde_json::Value = serde_json::from_str(line).expect("one JSON alert a line");
        assert!(
            alert["rule"].is_string() && alert["severity"].is_string(),
            "{line}"
        );
    }
    // Poison fixtures are reported, not fatal.
    assert!(stderr(&output).contains("Leaving undecodable message for redrive."));
}

#[test]
fn run_over_files_prints_what_eval_prints() {
    let mut files = fixture_files("envelopes");
    files.extend(fixture_files("failing"));
    let mut run_args = vec![
        "run",
        "--rules",
        "rules",
        "--log-format",
        "json",
        "--events",
    ];
    run_args.extend(files.iter().map(String::as_str));
    let run = meterwatch(&run_args);
    assert!(run.status.success(), "{}", stderr(&run));

    let mut eval_args = vec!["eval", "--rules", "rules"];
    eval_args.extend(files.iter().map(String::as_str));
    let eval = meterwatch(&eval_args);
    assert!(eval.status.success(), "{}", stderr(&eval));
    // `run` also judges absences (in the events' time), which no single event raises.
    let run_output = stdout(&run);
    let (absences, alerts): (Vec<&str>, Vec<&str>) = run_output
        .lines()
        .partition(|line| line.contains("\"rule\":\"metering-stopped\""));
    let mut alerts = alerts;
    alerts.sort_unstable();
    assert_eq!(alerts, sorted_lines(&stdout(&eval)));
    assert_eq!(absences.len(), 2, "{absences:?}");
}

/// The rule, status and summary of each `metering-stopped` alert, in output order.
fn absences(output: &str) -> Vec<(String, String)> {
    output
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("one JSON alert a line"))
        .filter(|alert| alert["rule"] == "metering-stopped")
        .map(|alert| {
            (
                alert["status"].as_str().unwrap_or_default().to_owned(),
                alert["summary"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// A replay is judged in its events' time, so the README's command prints the same every
/// time: it used to race the wall clock's absence ticker against the end of the files.
#[test]
fn readme_command_gives_the_same_output_every_time() {
    let args = [
        "run",
        "--rules",
        "rules",
        "--events",
        "tests/fixtures/events",
    ];
    let first = stdout(&meterwatch(&args));
    for _ in 0..2 {
        assert_eq!(stdout(&meterwatch(&args)), first);
    }
    // The fixtures' product is silent from 2020-07-10 to 2020-07-23: reported when event
    // time passes the allowed silence, and resolved by the heartbeat that ends it.
    assert_eq!(
        absences(&first),
        [
            (
                "firing".to_owned(),
                "No successful metering for productCode EXAMPLE_proCode since \
                 2020-07-10T23:06:42Z (expected at least every 1h, plus 15m grace)."
                    .to_owned()
            ),
            (
                "resolved".to_owned(),
                "productCode EXAMPLE_proCode is metering again: a successful call at \
                 2020-07-23T01:38:13Z after silence since 2020-07-10T23:06:42Z."
                    .to_owned()
            ),
        ]
    );
}

/// A successful MeterUsage call of `product` at `time` on 2024-03-05, as a bare record.
fn heartbeat(product: &str, time: &str) -> String {
    serde_json::json!({
        "eventSource": "metering-marketplace.amazonaws.com", "eventName": "MeterUsage",
        "eventID": format!("{product}-{time}"), "eventTime": format!("2024-03-05T{time}Z"),
        "awsRegion": "eu-west-1", "recipientAccountId": "123456789012",
        "requestParameters": {"productCode": product, "usageDimension": "hours"},
    })
    .to_string()
}

/// A day replayed from a file: a product that stopped for three hours is reported when the
/// day's time passes its allowed silence and resolved when it meters again; one silent at
/// the end of the day is reported by the check at the end of the input.
#[test]
fn a_replayed_day_reports_its_gaps_in_event_time() {
    let mut lines = Vec::new();
    for hour in 0..=8 {
        let time = format!("{hour:02}:00:00");
        if !(4..=5).contains(&hour) && hour != 8 {
            lines.push(heartbeat("EXAMPLE_proCode", &time));
        }
        lines.push(heartbeat("prod-b", &time));
        if hour == 6 {
            // Silent from here: 1h15m allowed, due at 08:00:05.
            lines.push(heartbeat("prod-c", "06:45:05"));
        }
    }
    // Within 30 s of the 08:00 check: only the end of the input checks again.
    lines.push(heartbeat("prod-b", "08:00:10"));
    let dir = tempfile::tempdir().expect("tempdir");
    let day = dir.path().join("day.jsonl");
    std::fs::write(&day, lines.join("\n")).expect("write events");
    let args = [
        "run",
        "--rules",
        "rules",
        "--events",
        day.to_str().expect("utf-8"),
    ];
    let output = meterwatch(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let found = absences(&stdout(&output));
    let statuses: Vec<&str> = found.iter().map(|(status, _)| status.as_str()).collect();
    assert_eq!(statuses, ["firing", "resolved", "firing"], "{found:?}");
    assert!(
        found[0]
            .1
            .contains("EXAMPLE_proCode since 2024-03-05T03:00:00Z"),
        "{found:?}"
    );
    assert!(
        found[1].1.contains("call at 2024-03-05T06:00:00Z"),
        "{found:?}"
    );
    assert!(
        found[2].1.contains("prod-c since 2024-03-05T06:45:05Z"),
        "{found:?}"
    );
    assert_eq!(
        stdout(&meterwatch(&args)),
        stdout(&output),
        "the same every time"
    );
}

#[test]
fn run_reads_json_lines_on_stdin() {
    let body = std::fs::read_to_string(
        "tests/fixtures/events/failing/meterusage-throttled.eventbridge.json",
    )
    .expect("fixture");
    let line =
        serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&body).expect("JSON"))
            .expect("serializes");
    let mut child = Command::new(env!("CARGO_BIN_EXE_meterwatch"))
        .args(["run", "--rules", "rules", "--log-format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    {
        let mut stdin = child.stdin.take().expect("piped stdin");
        writeln!(stdin, "{line}\n\n{line}").expect("writes");
    }
    let output = child.wait_with_output().expect("exits");
    assert!(output.status.success(), "{}", stderr(&output));
    let alerts = stdout(&output);
    let throttled = alerts
        .lines()
        .filter(|l| l.contains("\"rule\":\"metering-throttled\""))
        .count();
    // Two lines, one event: the second delivery is a duplicate (dedup), so one alert.
    assert_eq!(throttled, 1, "{alerts}");
}

#[test]
fn invalid_config_exits_2_before_starting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("meterwatch.toml");
    std::fs::write(
        &config,
        "[source]\ntype = \"sqs\"\nqueue_url = \"q\"\nwait_time_secs = 30\n",
    )
    .expect("write");
    let output = meterwatch(&["run", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(2));
    let error = stderr(&output);
    assert!(error.contains("source.queue_url"), "{error}");
    assert!(error.contains("source.wait_time_secs 30"), "{error}");
}

#[test]
fn unknown_config_key_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("meterwatch.toml");
    std::fs::write(&config, "[http]\nlisten = \"127.0.0.1:0\"\nport = 1\n").expect("write");
    let output = meterwatch(&["run", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(2));
    let error = stderr(&output);
    assert!(
        error.contains("meterwatch.toml") && error.contains("port"),
        "{error}"
    );
}

#[test]
fn check_config_validates_the_sample_and_rejects_a_bad_one() {
    let output = meterwatch(&["check", "--config", "meterwatch.toml"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).starts_with("ok: meterwatch.toml is valid"));

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[rules]\npaths = [\"rules\"]\n[sinks.alerts]\ntype = \"sns\"\ntopic_arn = \"alerts\"\n",
    )
    .expect("write");
    let output = meterwatch(&["check", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("sinks.alerts.topic_arn"),
        "{}",
        stderr(&output)
    );
}

/// `check --config` validates what `run` would run: the environment's and the flags' overrides
/// laid over the file, as `run` lays them.
#[test]
fn check_config_applies_the_overrides_run_applies() {
    let from_env = Command::new(env!("CARGO_BIN_EXE_meterwatch"))
        .args(["check", "--config", "meterwatch.toml"])
        .env("METERWATCH_TOPIC_ARN", "alerts")
        .output()
        .expect("runs");
    let from_flag = meterwatch(&[
        "check",
        "--config",
        "meterwatch.toml",
        "--topic-arn",
        "alerts",
    ]);
    for output in [from_env, from_flag] {
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        assert!(
            stderr(&output).contains("sinks.alerts.topic_arn"),
            "{}",
            stderr(&output)
        );
    }
    // A good override is checked as valid, as `run` would take it.
    let output = meterwatch(&[
        "check",
        "--config",
        "meterwatch.toml",
        "--topic-arn",
        "arn:aws:sns:us-east-1:123456789012:alerts",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
}

/// Two file sinks, routed by severity: each gets exactly its share of what an unrouted run
/// prints, and nothing twice.
#[test]
fn routes_split_alerts_between_sinks_by_severity() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    let (urgent, rest) = (
        dir.path().join("urgent.jsonl"),
        dir.path().join("rest.jsonl"),
    );
    let config = dir.path().join("meterwatch.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[rules]
paths = ["{rules}"]
watch = false
[source]
type = "file"
paths = ["{events}"]
[sinks.urgent]
type = "file"
path = "{urgent}"
[sinks.rest]
type = "file"
path = "{rest}"
[[route]]
severity = ["critical", "high"]
sinks = ["urgent"]
[[route]]
sinks = ["rest"]
"#,
            rules = root.join("rules").display(),
            events = root.join("tests/fixtures/events/failing").display(),
            urgent = urgent.display(),
            rest = rest.display(),
        ),
    )
    .expect("write config");
    let output = meterwatch(&["run", "--config", config.to_str().expect("utf-8")]);
    assert!(output.status.success(), "{}", stderr(&output));
    let unrouted = meterwatch(&[
        "run",
        "--rules",
        "rules",
        "--events",
        "tests/fixtures/events/failing",
    ]);
    assert!(unrouted.status.success(), "{}", stderr(&unrouted));

    let read = |path: &PathBuf| -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("an alert per line"))
            .collect()
    };
    let (urgent, rest) = (read(&urgent), read(&rest));
    let is_urgent =
        |alert: &serde_json::Value| matches!(alert["severity"].as_str(), Some("critical" | "high"));
    assert!(
        !urgent.is_empty() && urgent.iter().all(is_urgent),
        "{urgent:?}"
    );
    assert!(!rest.is_empty() && !rest.iter().any(is_urgent), "{rest:?}");
    // metering-stopped fires from the absence ticker (these 2020 heartbeats are long silent),
    // which races the end of the file source: present in one run, absent in another.
    let ids = |alerts: &[serde_json::Value]| -> Vec<String> {
        let mut ids: Vec<String> = alerts
            .iter()
            .filter(|a| a["rule"] != "metering-stopped")
            .map(|a| a["id"].to_string())
            .collect();
        ids.sort();
        ids
    };
    let everything: Vec<serde_json::Value> = stdout(&unrouted)
        .lines()
        .map(|line| serde_json::from_str(line).expect("an alert per line"))
        .collect();
    let routed: Vec<serde_json::Value> = urgent.into_iter().chain(rest).collect();
    assert_eq!(ids(&routed), ids(&everything));
}

#[test]
fn check_config_places_route_mistakes_and_matches_patterns_to_rules() {
    // The sample's routes against the shipped rules (the sample names a container's path).
    let sample = std::fs::read_to_string("meterwatch.toml")
        .expect("sample")
        .replace("/etc/meterwatch/rules", "rules");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("sample.toml");
    std::fs::write(&config, &sample).expect("write");
    let output = meterwatch(&["check", "--config", config.to_str().expect("utf-8")]);
    assert!(output.status.success(), "{}", stderr(&output));

    let typo = dir.path().join("typo.toml");
    std::fs::write(
        &typo,
        "[rules]\npaths = [\"rules\"]\n[sinks.slack]\ntype = \"stdout\"\n\
         [[route]]\nsinks = [\"slakc\"]\n",
    )
    .expect("write");
    let output = meterwatch(&["check", "--config", typo.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(
        error.contains(&format!(
            "{}:6:10: error: route 1: unknown sink `slakc`; the sinks are: slack",
            typo.display()
        )),
        "{error}"
    );

    let unmatched = dir.path().join("unmatched.toml");
    std::fs::write(
        &unmatched,
        "[rules]\npaths = [\"rules\"]\n[sinks.slack]\ntype = \"stdout\"\n\
         [[route]]\nrules = [\"metering-*\", \"metring-*\"]\nsinks = [\"slack\"]\n\
         [[route]]\nsinks = []\n",
    )
    .expect("write");
    let output = meterwatch(&["check", "--config", unmatched.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(
        error.contains(&format!(
            "{}:6:24: error: route 1: rule pattern `metring-*` matches no loaded rule",
            unmatched.display()
        )),
        "{error}"
    );
    assert!(!error.contains("`metering-*`"), "{error}");
}

/// A failed MeterUsage call of `product` at `time` on 2024-03-05, as a bare record.
fn failed_call(id: &str, product: &str, time: &str) -> String {
    serde_json::json!({
        "eventSource": "metering-marketplace.amazonaws.com", "eventName": "MeterUsage",
        "eventID": id, "eventTime": format!("2024-03-05T{time}Z"),
        "awsRegion": "eu-west-1", "recipientAccountId": "123456789012",
        "errorCode": "ThrottlingException",
        "requestParameters": {"productCode": product, "usageDimension": "hours"},
    })
    .to_string()
}

/// A replay's groups wait in event time: hours of events with an hour's group wait take no
/// wall time, and each group's summary depends on the input only.
#[test]
fn a_replay_groups_in_event_time_without_waiting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        r#"
[[rule]]
id = "failed"
title = "Failed metering for {{ product_code }}"
severity = "high"
match.detail.errorCode = [{ exists = true }]

[rule.group]
group_by = ["detail.requestParameters.productCode"]
wait = "1h"
interval = "2h"
"#,
    )
    .expect("write rules");
    let lines = [
        failed_call("a-1", "prod-a", "00:00:00"),
        failed_call("a-2", "prod-a", "00:20:00"),
        failed_call("b-1", "prod-b", "00:30:00"),
        failed_call("a-3", "prod-a", "00:59:59"),
        // Past a's flush (01:00): its summary of three comes out before this one joins.
        failed_call("a-4", "prod-a", "01:00:00"),
        failed_call("a-5", "prod-a", "02:30:00"),
    ];
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, lines.join("\n")).expect("write events");
    let args = [
        "run",
        "--rules",
        rules.to_str().expect("utf-8"),
        "--events",
        events.to_str().expect("utf-8"),
    ];
    let started = std::time::Instant::now();
    let output = meterwatch(&args);
    let took = started.elapsed();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        took < std::time::Duration::from_secs(20),
        "a replay does not sleep its groups' wait: {took:?}"
    );
    let summaries: Vec<(u64, Vec<String>)> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("one JSON alert a line"))
        .map(|alert| {
            let group = &alert["group"];
            let ids = group["event_ids"].as_array().expect("event ids");
            (
                group["count"].as_u64().expect("count"),
                ids.iter()
                    .map(|id| id.as_str().expect("id").to_owned())
                    .collect(),
            )
        })
        .collect();
    let ids = |ids: &[&str]| ids.iter().map(|id| (*id).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        summaries,
        [
            // a's first batch, flushed by a-4's time (01:00).
            (3, ids(&["a-1", "a-2", "a-3"])),
            // b's, flushed by a-5's time (02:30 is past 01:30).
            (1, ids(&["b-1"])),
            // a's next batch waits for its interval (until 03:00): flushed at the end of the input.
            (2, ids(&["a-4", "a-5"])),
        ]
    );
    assert_eq!(
        stdout(&meterwatch(&args)),
        stdout(&output),
        "the same every time"
    );
}

/// The fixture `batchmeterusage-partial` with 6,000 failed results (customer ids of 22
/// characters): just under SQS's 1 MiB limit.
fn batch_of_6000_failed_records() -> String {
    let text = std::fs::read_to_string(
        "tests/fixtures/events/failing/batchmeterusage-partial.eventbridge.json",
    )
    .expect("fixture");
    let mut event: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let results = event["detail"]["responseElements"]["results"].clone();
    let results = results.as_array().expect("results");
    event["detail"]["responseElements"]["results"] = results
        .iter()
        .cycle()
        .take(6_000)
        .enumerate()
        .map(|(idx, result)| {
            let mut result = result.clone();
            result["usageRecord"]["customerIdentifier"] = format!("customer{idx:014}").into();
            result
        })
        .collect();
    event.to_string()
}

/// The peak resident memory of process `pid` so far (Linux's `VmHWM`), in bytes.
fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in kB");
    kb * 1024
}

/// Issue 20: a message of 6,000 failed records once raised 6,001 alerts of every record each
/// (quadratic, gigabytes). Now the daemon sends 100 and one summary, stays under 64 MB of
/// resident memory, and goes on with the next message.
#[test]
fn issue_20_a_1_mib_message_of_6000_failed_records_is_capped_within_64_mb() {
    use std::io::{BufRead, BufReader};
    let big = batch_of_6000_failed_records();
    assert!((1_000_000..1 << 20).contains(&big.len()), "{}", big.len());
    let next = serde_json::to_string(
        &serde_json::from_str::<serde_json::Value>(
            &std::fs::read_to_string(
                "tests/fixtures/events/failing/meterusage-throttled.eventbridge.json",
            )
            .expect("fixture"),
        )
        .expect("JSON"),
    )
    .expect("serializes");
    let mut child = Command::new(env!("CARGO_BIN_EXE_meterwatch"))
        .args(["run", "--rules", "rules", "--log-format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    writeln!(stdin, "{big}\n{next}").expect("writes");
    stdin.flush().expect("flushes");
    // Read until both messages are out (the summary is the big one's last alert), with
    // stdin still open, so that the process is there to be measured.
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let (mut record_failed, mut held_back, mut throttled) = (0, None, false);
    while held_back.is_none() || !throttled {
        let Some(Ok(line)) = lines.next() else {
            panic!("the daemon stopped before both messages were out");
        };
        let alert: serde_json::Value = serde_json::from_str(&line).expect("an alert a line");
        match alert["rule"].as_str() {
            Some("metering-record-failed") => {
                record_failed += 1;
                if let Some(count) = alert["held_back"].as_u64() {
                    held_back = Some(count);
                }
            }
            Some("metering-throttled") => throttled = true,
            _ => {}
        }
    }
    let peak = peak_rss_bytes(child.id());
    drop(stdin);
    let status = child.wait().expect("exits");
    assert!(status.success());
    assert_eq!((record_failed, held_back), (101, Some(5_901)));
    assert!(peak < 64 << 20, "peak RSS {} MB", peak >> 20);
}
