//! What SNS subscribers receive, through moto: a raw SQS subscription, a wrapped one (the SNS
//! notification JSON), one with a filter policy on the `severity` attribute, a Chatbot-format
//! topic, and routes that split alerts between two topics by severity.

use crate::support::{self, Clients, Daemon, Moto, Resources, alert_counts, write_config};
use crate::{ALERT_TIMEOUT, rules_dir, seed_and_failing};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// Expected (rule, event_id) counts of `bodies` under `rules`, split by whether `keep`
/// accepts the rule's severity.
fn expected_where(
    rules: &Path,
    bodies: &[String],
    keep: impl Fn(&str) -> bool,
) -> HashMap<(String, String), usize> {
    let rule_set = meterwatch::rules::RuleSet::load(&[rules]).unwrap();
    let severity: HashMap<String, &str> = rule_set
        .rules()
        .iter()
        .map(|rule| (rule.id.to_string(), rule.severity.as_str()))
        .collect();
    support::expected_alerts(rules, bodies)
        .into_iter()
        .filter(|((rule, _), _)| keep(severity[rule]))
        .collect()
}

fn total(counts: &HashMap<(String, String), usize>) -> usize {
    counts.values().sum()
}

/// Waits until the daemon deleted every event message, then checks that `queues` hold
/// nothing more than what was already taken: publishes reach every subscription inside the
/// Publish call, so nothing can still be on its way.
async fn assert_nothing_more(
    clients: &Clients,
    resources: &Resources,
    daemon: &Daemon,
    n_bodies: usize,
    queues: &[&str],
) {
    support::eventually("every event message deleted", ALERT_TIMEOUT, || async {
        let deleted = daemon.metric("meterwatch_messages_deleted_total", "");
        (clients.queue_depth(&resources.queue_url).await == 0 && deleted >= n_bodies as f64)
            .then_some(())
    })
    .await;
    for queue_url in queues {
        assert_eq!(
            clients.take(queue_url).await,
            Vec::<String>::new(),
            "{queue_url} got more than expected"
        );
    }
}

/// A Chatbot custom notification as AWS Chatbot requires it (shared/domain.md §4): anything
/// else is dropped without a trace, so every field is checked, not just parsed.
fn assert_chatbot_notification(notification: &Value) {
    let text = notification.to_string();
    assert_eq!(notification["version"], "1.0", "{text}");
    assert_eq!(notification["source"], "custom", "{text}");
    assert!(
        notification["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{text}"
    );
    let content = &notification["content"];
    assert_eq!(content["textType"], "client-markdown", "{text}");
    for key in ["title", "description"] {
        assert!(
            content[key].as_str().is_some_and(|v| !v.is_empty()),
            "content.{key}: {text}"
        );
    }
    for key in ["nextSteps", "keywords"] {
        assert!(
            content[key]
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
            "content.{key}: {text}"
        );
    }
    let metadata = &notification["metadata"];
    for key in ["threadId", "summary", "eventType"] {
        assert!(
            metadata[key].as_str().is_some_and(|v| !v.is_empty()),
            "metadata.{key}: {text}"
        );
    }
    assert!(metadata["relatedResources"].is_array(), "{text}");
    assert!(metadata["additionalContext"].is_object(), "{text}");
}

/// (rule, event_id) of Chatbot notifications.
fn notification_counts(notifications: &[Value]) -> HashMap<(String, String), usize> {
    let mut counts = HashMap::new();
    for notification in notifications {
        let metadata = &notification["metadata"];
        let key = (
            metadata["eventType"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            metadata["additionalContext"]["eventId"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// One `json`-format topic (SNS `MessageStructure: json`) and three SQS subscriptions:
/// raw delivery gets the alert document (the message's `default` key: SQS has no key of its
/// own in it); wrapped delivery gets the same document inside SNS's notification JSON, with
/// the subject and every message attribute; a filter policy on `severity` lets through
/// exactly the high alerts.
#[tokio::test(flavor = "multi_thread")]
async fn one_topic_serves_raw_wrapped_and_severity_filtered_subscribers() {
    let moto = Moto::start().await;
    let clients = moto.clients().await;
    let resources = clients.create_resources("subs", 3, true).await;
    let wrapped_url = clients.create_queue("subs-wrapped", &[]).await;
    clients
        .subscribe(&resources.topic_arn, &wrapped_url, false, None)
        .await;
    let filtered_url = clients.create_queue("subs-high", &[]).await;
    clients
        .subscribe(
            &resources.topic_arn,
            &filtered_url,
            true,
            Some(r#"{"severity": ["critical", "high"]}"#),
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_dir(dir.path());
    let daemon = Daemon::start(&moto, &write_config(dir.path(), &resources, &rules, "")).await;

    let bodies = seed_and_failing();
    let expected = support::expected_alerts(&rules, &bodies);
    let expected_high = expected_where(&rules, &bodies, |s| s == "high" || s == "critical");
    assert!(
        total(&expected_high) > 0 && total(&expected_high) < total(&expected),
        "alerts of several severities: {expected:?}"
    );
    clients.put_events(&bodies).await;

    let raw = clients
        .alerts(&resources, total(&expected), ALERT_TIMEOUT)
        .await;
    assert_eq!(alert_counts(&raw), expected);
    for document in &raw {
        assert_eq!(document["version"], meterwatch::alert::DOCUMENT_VERSION);
        assert!(document["title"].is_string() && document["summary"].is_string());
    }
    let filtered = clients
        .messages(&filtered_url, total(&expected_high), ALERT_TIMEOUT)
        .await;
    assert_eq!(alert_counts(&filtered), expected_high);

    let wrapped = clients
        .messages(&wrapped_url, total(&expected), ALERT_TIMEOUT)
        .await;
    let by_id: HashMap<&str, &Value> = raw
        .iter()
        .map(|document| (document["id"].as_str().unwrap(), document))
        .collect();
    for notification in &wrapped {
        assert_eq!(notification["Type"], "Notification");
        assert_eq!(notification["TopicArn"], resources.topic_arn.as_str());
        let document: Value =
            serde_json::from_str(notification["Message"].as_str().unwrap()).unwrap();
        let raw_document = by_id[document["id"].as_str().unwrap()];
        assert_eq!(&document, raw_document, "the same document, wrapped");
        let subject = notification["Subject"].as_str().unwrap();
        let label = document["severity"].as_str().unwrap().to_uppercase();
        assert!(subject.starts_with(&format!("[{label}] ")), "{subject}");
        let attributes = &notification["MessageAttributes"];
        // Every attribute filter policies can use, present exactly when the document has the
        // value (SNS refuses empty attribute values).
        for name in [
            "severity",
            "rule",
            "status",
            "event_name",
            "account",
            "product_code",
        ] {
            match document[name].as_str().filter(|value| !value.is_empty()) {
                Some(value) => {
                    assert_eq!(attributes[name]["Type"], "String", "{name}: {notification}");
                    assert_eq!(attributes[name]["Value"], value, "{name}: {notification}");
                }
                None => assert!(attributes[name].is_null(), "{name}: {notification}"),
            }
        }
    }

    assert_nothing_more(
        &clients,
        &resources,
        &daemon,
        bodies.len(),
        &[&resources.alerts_queue_url, &filtered_url, &wrapped_url],
    )
    .await;
}

/// Two topics and routes by severity: high alerts go to the `alerts` topic (json) and, with
/// `continue = true`, on to the catch-all; the catch-all sends everything to a `chatbot`
/// topic. Each topic's subscriber gets exactly its alerts, and every Chatbot message has the
/// fields AWS Chatbot requires.
#[tokio::test(flavor = "multi_thread")]
async fn routes_send_each_topic_exactly_its_alerts() {
    let moto = Moto::start().await;
    let clients = moto.clients().await;
    let resources = clients.create_resources("routes", 3, true).await;
    let slack_topic = clients.create_named_topic("routes-slack").await;
    let slack_url = clients.create_queue("routes-slack-read", &[]).await;
    clients
        .subscribe(&slack_topic, &slack_url, true, None)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_dir(dir.path());
    let routes = format!(
        r#"
[sinks.slack]
type = "sns"
topic_arn = "{slack_topic}"
format = "chatbot"

[[route]]
severity = ["critical", "high"]
sinks = ["alerts"]
continue = true

[[route]]
sinks = ["slack"]
"#
    );
    let daemon = Daemon::start(
        &moto,
        &write_config(dir.path(), &resources, &rules, &routes),
    )
    .await;

    let bodies = seed_and_failing();
    let expected = support::expected_alerts(&rules, &bodies);
    let expected_high = expected_where(&rules, &bodies, |s| s == "high" || s == "critical");
    assert!(total(&expected_high) > 0 && total(&expected_high) < total(&expected));
    clients.put_events(&bodies).await;

    let paged = clients
        .alerts(&resources, total(&expected_high), ALERT_TIMEOUT)
        .await;
    assert_eq!(alert_counts(&paged), expected_high);
    let slack = clients
        .messages(&slack_url, total(&expected), ALERT_TIMEOUT)
        .await;
    assert_eq!(notification_counts(&slack), expected);
    for notification in &slack {
        assert_chatbot_notification(notification);
    }

    assert_nothing_more(
        &clients,
        &resources,
        &daemon,
        bodies.len(),
        &[&resources.alerts_queue_url, &slack_url],
    )
    .await;
    let metrics = daemon.metrics();
    assert_eq!(
        support::metric(&metrics, "meterwatch_sink_alerts_total", "sink=\"alerts\""),
        total(&expected_high) as f64
    );
    assert_eq!(
        support::metric(&metrics, "meterwatch_sink_alerts_total", "sink=\"slack\""),
        total(&expected) as f64
    );
}
