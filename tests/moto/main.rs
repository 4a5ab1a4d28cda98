//! End-to-end tests against moto on 127.0.0.1, the daemon running as a real process:
//! EventBridge rule → SQS (with a DLQ) → `meterwatch run` → SNS → SQS subscription.
//!
//! Run with `scripts/test` (installs moto into `target/moto-venv`), or
//! `scripts/moto install && cargo test --features moto --test moto`.

#![allow(
    clippy::disallowed_types,
    reason = "a real daemon process runs in real time: deadlines are wall time"
)]
#![allow(clippy::unwrap_used)] // Tests: a failed step should stop the test loudly.

mod state;
mod subscribers;
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{
    Daemon, Moto, alert_counts, eventbridge_fixtures, expected_alerts, fixture, write_config,
};

/// Rules for the scenarios: failed calls, dry runs, and every RegisterUsage (so that the
/// seed's successful records raise alerts too).
const RULES: &str = r#"
[[rule]]
id = "call-failed"
title = "Metering call failed"
severity = "high"
match.detail.errorCode = [{ exists = true }]

[[rule]]
id = "dry-run"
title = "Dry-run metering call"
severity = "medium"
match.detail.requestParameters.dryRun = [true]

[[rule]]
id = "register-usage"
title = "RegisterUsage called"
severity = "info"
match.detail.eventName = ["RegisterUsage"]
"#;

pub(crate) const ALERT_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn rules_dir(dir: &Path) -> PathBuf {
    let rules = dir.join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("metering.toml"), RULES).unwrap();
    rules
}

/// Which rules a scenario's daemon runs.
#[derive(Clone, Copy)]
enum Rules {
    /// [`RULES`], in the scenario's directory (where a test may edit them).
    Test,
    /// The shipped `rules/`, read in place.
    Shipped,
}

/// What a scenario starts from: moto and its clients, the queue (with its DLQ), topic and
/// subscribed queue made by [`support::Clients::create_resources`], and a config for
/// `rules` in a temporary directory (kept for the scenario's life).
struct Scenario {
    moto: Moto,
    clients: support::Clients,
    resources: support::Resources,
    /// Holds the config and test rules; dropping it deletes them.
    _dir: tempfile::TempDir,
    rules: PathBuf,
    config: PathBuf,
}

impl Scenario {
    async fn start(name: &str, max_receive_count: u32, create_topic: bool, rules: Rules) -> Self {
        let moto = Moto::start().await;
        let clients = moto.clients().await;
        let resources = clients
            .create_resources(name, max_receive_count, create_topic)
            .await;
        let dir = tempfile::tempdir().unwrap();
        let rules = match rules {
            Rules::Test => rules_dir(dir.path()),
            Rules::Shipped => Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"),
        };
        let config = write_config(dir.path(), &resources, &rules, "");
        Scenario {
            moto,
            clients,
            resources,
            _dir: dir,
            rules,
            config,
        }
    }
}

/// A queue or topic no retry can reach (here: one that does not exist) stops the daemon at
/// start-up with exit 2 and says which, rather than looking healthy while it polls or fails
/// every alert.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_queue_or_topic_stops_the_daemon_at_start_up() {
    let s = Scenario::start("missing", 1000, false, Rules::Test).await;
    let mut daemon = Daemon::spawn(&s.moto, &s.config);
    let status = daemon.wait(Duration::from_secs(30)).await;
    let logs = daemon.logs();
    assert_eq!(status.code(), Some(2), "{logs}");
    assert!(logs.contains(&s.resources.topic_arn), "{logs}");
    assert!(logs.contains("sns:GetTopicAttributes"), "{logs}");

    s.clients.create_topic(&s.resources).await;
    let gone = format!("{}-gone", s.resources.queue_url);
    let config = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(&s.config, config.replace(&s.resources.queue_url, &gone)).unwrap();
    let mut daemon = Daemon::spawn(&s.moto, &s.config);
    let status = daemon.wait(Duration::from_secs(30)).await;
    let logs = daemon.logs();
    assert_eq!(status.code(), Some(2), "{logs}");
    assert!(logs.contains(&gone), "{logs}");
    assert!(logs.contains("sqs:GetQueueAttributes"), "{logs}");
}

/// The seed's four records and the failing variants, as EventBridge envelopes.
pub(crate) fn seed_and_failing() -> Vec<String> {
    let mut bodies: Vec<String> = eventbridge_fixtures("envelopes")
        .into_iter()
        .map(|(_, body)| body)
        .collect();
    bodies.extend(
        eventbridge_fixtures("failing")
            .into_iter()
            .map(|(_, body)| body),
    );
    bodies
}

#[tokio::test(flavor = "multi_thread")]
async fn eventbridge_to_sns_end_to_end() {
    let s = Scenario::start("e2e", 3, true, Rules::Shipped).await;
    let n_rules = meterwatch::rules::RuleSet::load(&[&s.rules]).unwrap().len();
    let mut daemon = Daemon::start(&s.moto, &s.config).await;

    let bodies = seed_and_failing();
    assert!(
        bodies.len() >= 12,
        "4 seed records and the failing variants"
    );
    let expected = expected_alerts(&s.rules, &bodies);
    let n_expected: usize = expected.values().sum();
    assert!(
        n_expected >= 8,
        "the scenario must raise alerts: {expected:?}"
    );

    let started = std::time::Instant::now();
    s.clients.put_events(&bodies).await;
    let alerts = s
        .clients
        .alerts(&s.resources, n_expected, ALERT_TIMEOUT)
        .await;
    let elapsed = started.elapsed();
    assert_eq!(alert_counts(&alerts), expected);
    assert!(
        alerts
            .iter()
            .all(|a| a["event_name"].is_string() && a["severity"].is_string()),
        "{alerts:#?}"
    );

    support::eventually("the source queue to be empty", ALERT_TIMEOUT, || async {
        (s.clients.queue_depth(&s.resources.queue_url).await == 0).then_some(())
    })
    .await;
    let deleted = support::eventually("the deletes to be counted", ALERT_TIMEOUT, || async {
        let deleted = daemon.metric("meterwatch_messages_deleted_total", "");
        (deleted >= bodies.len() as f64).then_some(deleted)
    })
    .await;
    assert_eq!(deleted, bodies.len() as f64);
    let metrics = daemon.metrics();
    assert_eq!(
        support::metric(&metrics, "meterwatch_events_evaluated_total", ""),
        bodies.len() as f64
    );
    let mut per_rule: std::collections::BTreeMap<&str, usize> = Default::default();
    for ((rule, _), n) in &expected {
        *per_rule.entry(rule.as_str()).or_insert(0) += n;
    }
    for (rule, n) in per_rule {
        let label = format!("rule=\"{rule}\"");
        let published = support::metric(&metrics, "meterwatch_alerts_published_total", &label);
        assert_eq!(published, n as f64, "alerts published by {rule}");
    }
    assert_eq!(
        support::metric(&metrics, "meterwatch_messages_poison_total", ""),
        0.0
    );
    assert_eq!(
        support::metric(&metrics, "meterwatch_rules_loaded", ""),
        n_rules as f64
    );
    let processing_ms = support::metric(&metrics, "meterwatch_message_processing_seconds_sum", "")
        * 1000.0
        / support::metric(&metrics, "meterwatch_message_processing_seconds_count", "");
    eprintln!(
        "end to end: {} events → {} alerts in {:.2} s (PutEvents to alerts read back); \
         daemon time per message (receive → every alert published) {processing_ms:.1} ms",
        bodies.len(),
        alerts.len(),
        elapsed.as_secs_f64(),
    );

    daemon.sigterm();
    assert!(daemon.wait(Duration::from_secs(10)).await.success());
    assert_eq!(s.clients.queue_depth(&s.resources.dlq_url).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_is_never_deleted_and_lands_in_the_dlq() {
    let s = Scenario::start("poison", 2, true, Rules::Test).await;
    let daemon = Daemon::start(&s.moto, &s.config).await;

    let poison = [
        fixture("poison/not-json.txt"),
        fixture("poison/random-object.json"),
    ];
    for body in &poison {
        s.clients.send(&s.resources.queue_url, body).await;
    }
    s.clients
        .send(
            &s.resources.queue_url,
            &fixture("failing/meterusage-throttled.eventbridge.json"),
        )
        .await;

    // The good message goes through; the poison ones are received maxReceiveCount times, never
    // deleted, then moved to the DLQ by the queue's redrive policy.
    let alerts = s.clients.alerts(&s.resources, 1, ALERT_TIMEOUT).await;
    assert_eq!(alerts[0]["rule"], "call-failed");
    support::eventually(
        "both poison messages in the DLQ",
        Duration::from_secs(60),
        || async { (s.clients.queue_depth(&s.resources.dlq_url).await == 2).then_some(()) },
    )
    .await;
    let dlq_bodies = s.clients.take(&s.resources.dlq_url).await;
    assert_eq!(dlq_bodies.len(), 2);
    assert!(poison.iter().all(|body| dlq_bodies.contains(body)));
    assert_eq!(s.clients.queue_depth(&s.resources.queue_url).await, 0);

    let metrics = daemon.metrics();
    assert!(
        support::metric(
            &metrics,
            "meterwatch_messages_poison_total",
            "reason=\"not_json\""
        ) >= 1.0,
        "{metrics}"
    );
    assert!(
        support::metric(
            &metrics,
            "meterwatch_messages_poison_total",
            "reason=\"unknown_shape\""
        ) >= 1.0
    );
    assert_eq!(
        support::metric(&metrics, "meterwatch_messages_deleted_total", ""),
        1.0
    );
    let logs = daemon.logs();
    assert!(
        logs.contains("Leaving undecodable message for redrive."),
        "{logs}"
    );
    assert!(!logs.contains("no redrive policy"));
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_is_deleted_while_sns_fails_and_everything_arrives_after() {
    let s = Scenario::start("snsdown", 1000, true, Rules::Test).await;
    let daemon = Daemon::start(&s.moto, &s.config).await;
    // The topic goes away once the daemon runs: every Publish fails.
    s.clients.delete_topic(&s.resources).await;

    let bodies: Vec<String> = eventbridge_fixtures("failing")
        .into_iter()
        .map(|(_, body)| body)
        .collect();
    let expected = expected_alerts(&s.rules, &bodies);
    // Messages that raise no alert have nothing to deliver and are deleted at once.
    let n_alerting = bodies
        .iter()
        .filter(|body| !expected_alerts(&s.rules, std::slice::from_ref(body)).is_empty())
        .count();
    assert!(n_alerting >= 4);
    for body in &bodies {
        s.clients.send(&s.resources.queue_url, body).await;
    }
    support::eventually("publish failures", ALERT_TIMEOUT, || async {
        (daemon.metric("meterwatch_messages_failed_total", "reason=\"publish\"")
            >= n_alerting as f64)
            .then_some(())
    })
    .await;
    let n_silent = (bodies.len() - n_alerting) as f64;
    support::eventually("the silent messages deleted", ALERT_TIMEOUT, || async {
        (daemon.metric("meterwatch_messages_deleted_total", "") >= n_silent).then_some(())
    })
    .await;
    assert_eq!(
        daemon.metric("meterwatch_messages_deleted_total", ""),
        n_silent,
        "only messages without alerts are deleted while SNS fails"
    );
    assert!(daemon.metric("meterwatch_publish_errors_total", "sink=\"alerts\"") >= 1.0);
    assert_eq!(
        s.clients.queue_depth(&s.resources.queue_url).await,
        n_alerting as u64
    );

    s.clients.create_topic(&s.resources).await;
    let n_expected: usize = expected.values().sum();
    let alerts = s
        .clients
        .alerts(&s.resources, n_expected, Duration::from_secs(60))
        .await;
    // At least once: every expected alert arrived (an alert published before a later one of
    // the same message failed may arrive twice).
    let counts = alert_counts(&alerts);
    for (key, n) in &expected {
        assert!(
            counts.get(key).copied().unwrap_or(0) >= *n,
            "missing {key:?}: {counts:?}"
        );
    }
    support::eventually("the source queue to be empty", ALERT_TIMEOUT, || async {
        (s.clients.queue_depth(&s.resources.queue_url).await == 0).then_some(())
    })
    .await;
    assert_eq!(
        daemon.metric("meterwatch_messages_deleted_total", ""),
        bodies.len() as f64
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_with_messages_in_flight_exits_zero_and_loses_nothing() {
    let s = Scenario::start("sigterm", 1000, true, Rules::Test).await;
    let mut daemon = Daemon::start(&s.moto, &s.config).await;

    let n_events = 200;
    let bodies = numbered_events("sigterm", n_events);
    send_batches(&s.clients, &s.resources.queue_url, &bodies).await;
    support::eventually("messages in flight", ALERT_TIMEOUT, || async {
        (daemon.metric("meterwatch_messages_received_total", "") >= 1.0).then_some(())
    })
    .await;
    let signalled = std::time::Instant::now();
    daemon.sigterm();
    let status = daemon.wait(Duration::from_secs(8 + 2)).await;
    assert!(
        status.success(),
        "exit status {status:?}: {}",
        daemon.logs()
    );
    assert!(
        signalled.elapsed() < Duration::from_secs(8),
        "exited within the grace period"
    );
    assert!(daemon.logs().contains("Draining"));

    // Whatever was not finished is still in the queue: a second daemon completes the job.
    let mut second = Daemon::start(&s.moto, &s.config).await;
    wait_for_distinct_alerts(&s.clients, &s.resources, n_events).await;
    support::eventually("the source queue to be empty", ALERT_TIMEOUT, || async {
        (s.clients.queue_depth(&s.resources.queue_url).await == 0).then_some(())
    })
    .await;
    second.sigterm();
    assert!(second.wait(Duration::from_secs(10)).await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_rules_are_rejected_and_good_edits_apply_without_restart() {
    let s = Scenario::start("reload", 1000, true, Rules::Test).await;
    let daemon = Daemon::start(&s.moto, &s.config).await;
    // Distinct event ids: a repeat of one event would be (rightly) deduplicated.
    let throttled = numbered_events("reload", 3);

    s.clients.send(&s.resources.queue_url, &throttled[0]).await;
    let alerts = s.clients.alerts(&s.resources, 1, ALERT_TIMEOUT).await;
    assert_eq!(alerts[0]["rule"], "call-failed");

    // A broken file is rejected, counted and logged; the old rules keep alerting.
    std::fs::write(
        s.rules.join("broken.toml"),
        "[[rule]]\nid = \"half-written\"\nseverity = \"loud\"\n",
    )
    .unwrap();
    support::eventually("the broken set to be rejected", ALERT_TIMEOUT, || async {
        (daemon.metric("meterwatch_rules_reload_total", "result=\"failed\"") >= 1.0).then_some(())
    })
    .await;
    assert!(daemon.logs().contains("Rejected new rules"));
    s.clients.send(&s.resources.queue_url, &throttled[1]).await;
    let alerts = s.clients.alerts(&s.resources, 1, ALERT_TIMEOUT).await;
    assert_eq!(alerts[0]["rule"], "call-failed");

    // A good edit takes effect without a restart.
    std::fs::remove_file(s.rules.join("broken.toml")).unwrap();
    std::fs::write(
        s.rules.join("metering.toml"),
        RULES.replace("id = \"call-failed\"", "id = \"metering-failed\""),
    )
    .unwrap();
    support::eventually("the good set to be loaded", ALERT_TIMEOUT, || async {
        let text = daemon.metrics();
        let loaded =
            support::metric(&text, "meterwatch_rules_reload_total", "result=\"ok\"") >= 2.0;
        loaded.then_some(())
    })
    .await;
    // Reloads may coalesce or repeat; wait for the last write's set to be the one in force.
    s.clients.send(&s.resources.queue_url, &throttled[2]).await;
    let alerts = s.clients.alerts(&s.resources, 1, ALERT_TIMEOUT).await;
    assert_eq!(alerts[0]["rule"], "metering-failed", "{}", daemon.logs());
    assert_eq!(daemon.metric("meterwatch_rules_loaded", ""), 3.0);
}

/// Not a timing assertion: measures and prints the end-to-end rate through moto and the
/// daemon's own time per message (receive to delete), for the record.
#[tokio::test(flavor = "multi_thread")]
async fn end_to_end_rate_is_reported() {
    let s = Scenario::start("rate", 1000, true, Rules::Shipped).await;
    let daemon = Daemon::start(&s.moto, &s.config).await;

    let n_events = 300;
    let bodies = numbered_events("rate", n_events);
    let n_matched: usize = expected_alerts(&s.rules, &bodies).values().sum();
    let started = std::time::Instant::now();
    send_batches(&s.clients, &s.resources.queue_url, &bodies).await;
    support::eventually("every delete", Duration::from_secs(120), || async {
        (daemon.metric("meterwatch_messages_deleted_total", "") >= n_events as f64).then_some(())
    })
    .await;
    let elapsed = started.elapsed();
    // The shipped metering-throttled sends one an hour per account and product.
    let held_back = daemon.metric("meterwatch_alerts_suppressed_total", "reason=\"throttled\"");
    assert!(held_back > 0.0, "{}", daemon.metrics());
    let n_alerts = n_matched - held_back as usize;
    s.clients
        .alerts(&s.resources, n_alerts, Duration::from_secs(120))
        .await;
    let metrics = daemon.metrics();
    let processing_sum = support::metric(&metrics, "meterwatch_message_processing_seconds_sum", "");
    let processing_count =
        support::metric(&metrics, "meterwatch_message_processing_seconds_count", "");
    eprintln!(
        "s.moto end to end: {n_events} messages sent, {n_alerts} alerts published, all deleted in \
         {:.2} s = {:.0} messages/s; daemon time per message (receive → every alert published) \
         {:.1} ms on average",
        elapsed.as_secs_f64(),
        n_events as f64 / elapsed.as_secs_f64(),
        processing_sum * 1000.0 / processing_count
    );
}

async fn send_batches(clients: &support::Clients, queue_url: &str, bodies: &[String]) {
    for chunk in bodies.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(idx, body)| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(idx.to_string())
                    .message_body(body)
                    .build()
                    .unwrap()
            })
            .collect();
        clients
            .sqs
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_batch_loses_nothing() {
    let s = Scenario::start("kill", 1000, true, Rules::Test).await;
    let mut daemon = Daemon::start(&s.moto, &s.config).await;

    let n_events = 100;
    send_batches(
        &s.clients,
        &s.resources.queue_url,
        &numbered_events("kill", n_events),
    )
    .await;
    support::eventually("messages in flight", ALERT_TIMEOUT, || async {
        (daemon.metric("meterwatch_messages_received_total", "") >= 1.0).then_some(())
    })
    .await;
    daemon.kill();

    // Received but undeleted messages come back after their visibility timeout (2 s).
    let mut second = Daemon::start(&s.moto, &s.config).await;
    wait_for_distinct_alerts(&s.clients, &s.resources, n_events).await;
    support::eventually("the source queue to be empty", ALERT_TIMEOUT, || async {
        (s.clients.queue_depth(&s.resources.queue_url).await == 0).then_some(())
    })
    .await;
    second.sigterm();
    assert!(second.wait(Duration::from_secs(10)).await.success());
}

/// Throttled MeterUsage calls, each with its own event id `PREFIX-NNNN`.
fn numbered_events(prefix: &str, n: usize) -> Vec<String> {
    let template: serde_json::Value =
        serde_json::from_str(&fixture("failing/meterusage-throttled.eventbridge.json")).unwrap();
    (0..n)
        .map(|idx| {
            let mut event = template.clone();
            event["detail"]["eventID"] = serde_json::json!(format!("{prefix}-{idx:04}"));
            event.to_string()
        })
        .collect()
}

/// Reads alerts until `n` distinct event ids have been alerted on. At least once: redelivery
/// may repeat an alert, so ids are counted, not alerts.
async fn wait_for_distinct_alerts(
    clients: &support::Clients,
    resources: &support::Resources,
    n: usize,
) {
    let mut ids = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while ids.len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {n} events alerted",
            ids.len()
        );
        for alert in clients.alerts(resources, 1, ALERT_TIMEOUT).await {
            ids.insert(alert["event_id"].as_str().unwrap().to_owned());
        }
    }
}

/// A log-file batch mixing records that are not API calls (an Insights event, an eventVersion
/// 1.0 record without `eventID`) with a failed metering call: the call's alert goes out, the
/// message is deleted, and the skipped records are counted.
#[tokio::test(flavor = "multi_thread")]
async fn a_batchs_non_api_records_cost_its_failed_call_nothing() {
    let s = Scenario::start("mixed-batch", 2, true, Rules::Test).await;
    let daemon = Daemon::start(&s.moto, &s.config).await;

    let envelope: serde_json::Value =
        serde_json::from_str(&fixture("failing/meterusage-throttled.eventbridge.json"))
            .expect("a fixture is JSON");
    let insight = serde_json::json!({
        "eventVersion": "1.07", "eventTime": "2020-07-10T23:00:00Z", "awsRegion": "us-east-1",
        "eventID": "insight-1", "eventType": "AwsCloudTrailInsight", "eventCategory": "Insight",
        "recipientAccountId": "123456789012", "insightDetails": {"state": "Start"}
    });
    let mut old = envelope["detail"].clone();
    old.as_object_mut().map(|record| record.remove("eventID"));
    let batch = serde_json::json!({"Records": [insight, envelope["detail"], old]});
    s.clients
        .send(&s.resources.queue_url, &batch.to_string())
        .await;

    let alerts = s.clients.alerts(&s.resources, 1, ALERT_TIMEOUT).await;
    assert_eq!(alerts[0]["rule"], "call-failed");
    support::eventually("the batch to be deleted", ALERT_TIMEOUT, || async {
        (daemon.metric("meterwatch_messages_deleted_total", "") == 1.0).then_some(())
    })
    .await;
    let metrics = daemon.metrics();
    let skipped = |reason: &str| {
        support::metric(
            &metrics,
            "meterwatch_records_skipped_total",
            &format!("reason=\"{reason}\""),
        )
    };
    assert_eq!(skipped("not_an_api_call"), 1.0, "{metrics}");
    assert_eq!(skipped("bad_field"), 1.0, "{metrics}");
    assert_eq!(
        support::metric(&metrics, "meterwatch_messages_poison_total", ""),
        0.0
    );
}
