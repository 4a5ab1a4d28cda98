//! What the noise tests share: a sink that records, a noise stage on tokio's paused clock,
//! and findings built in code ([`failed`], with controls from [`throttle`], [`group`]...), so
//! that a test states only what it tests. Absence tests load rules instead: their checks
//! read the rule set.

use super::{Noise, Publish, Settled};
use crate::alert::{Alert, Severity, content};
use crate::envelope::{self, Event};
use crate::field::FieldPath;
use crate::rules::{Finding, RuleSet};
use crate::state::{
    Clock, Controls, Gate, GroupBy, MemoryStore, Store, group as grouping, threshold as counting,
    throttle as throttling,
};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A sink that records what it accepts, fails while `failing` is set, and never answers
/// while `hanging` is (an unreachable endpoint, a publish cut off by a kill).
#[derive(Default)]
pub(crate) struct Published {
    alerts: Mutex<Vec<Alert>>,
    failing: AtomicBool,
    hanging: AtomicBool,
}

impl Publish for Published {
    async fn publish(&self, alert: &Alert) -> bool {
        if self.hanging.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.failing.load(Ordering::SeqCst) {
            return false;
        }
        self.alerts.lock().expect("test lock").push(alert.clone());
        true
    }
}

impl Published {
    pub(crate) fn take(&self) -> Vec<Alert> {
        std::mem::take(&mut *self.alerts.lock().expect("test lock"))
    }

    pub(crate) fn hang(&self, hanging: bool) {
        self.hanging.store(hanging, Ordering::SeqCst);
    }

    pub(crate) fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

pub(crate) const EPOCH: &str = "2026-01-01T00:00:00Z";

/// A stage in memory whose clock reads [`EPOCH`] at the start and follows tokio time.
pub(crate) fn noise() -> Noise {
    let epoch: jiff::Timestamp = EPOCH.parse().expect("valid epoch");
    Noise::new(
        Store::Memory(MemoryStore::default()),
        Clock::tokio_from(epoch),
        CancellationToken::new(),
    )
}

/// A stage of a replay: its clock follows the events' time.
pub(crate) fn replay_noise() -> Noise {
    Noise::new(
        Store::Memory(MemoryStore::default()),
        Clock::events(),
        CancellationToken::new(),
    )
}

pub(crate) fn rules(text: &str) -> RuleSet {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rules.toml");
    std::fs::write(&path, text).expect("write rules");
    RuleSet::load(&[&path]).unwrap_or_else(|error| panic!("{error}"))
}

/// No rules: what a finding built in code is admitted with (only an absence's end reads
/// the rules).
pub(crate) fn no_rules() -> RuleSet {
    RuleSet::load::<&str>(&[]).unwrap_or_else(|error| panic!("{error}"))
}

/// A MeterUsage call (failed with `error` unless `None`) at `minute` after the epoch.
pub(crate) fn event(id: &str, product: &str, minute: i64, error: Option<&str>) -> String {
    let time = jiff::Timestamp::from_second(
        EPOCH.parse::<jiff::Timestamp>().expect("valid").as_second() + minute * 60,
    )
    .expect("valid time");
    let mut detail = json!({
        "eventSource": "metering-marketplace.amazonaws.com",
        "eventName": "MeterUsage",
        "eventID": id,
        "eventTime": time.to_string(),
        "awsRegion": "us-east-1",
        "recipientAccountId": "123456789012",
        "requestParameters": {"productCode": product, "usageDimension": "hours"},
    });
    if let Some(error) = error {
        detail["errorCode"] = json!(error);
    }
    json!({
        "version": "0", "id": format!("eb-{id}"), "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.metering-marketplace", "account": "123456789012",
        "time": time.to_string(), "region": "us-east-1", "resources": [], "detail": detail,
    })
    .to_string()
}

fn decoded(body: &str) -> Event {
    envelope::decode(body)
        .expect("test events decode")
        .remove(0)
}

/// A finding of the rule `failed` (a failed metering call), as the rule engine raises it:
/// build it with [`Match::build`].
#[derive(Debug, Clone)]
pub(crate) struct Match {
    id: String,
    product: String,
    minute: i64,
    controls: Controls,
}

/// The finding of event `id` failing: product `p`, at the epoch, with the controls of a rule
/// that says nothing (dedup for the default window).
pub(crate) fn failed(id: &str) -> Match {
    Match {
        id: id.to_owned(),
        product: "p".to_owned(),
        minute: 0,
        controls: Controls::standard(),
    }
}

impl Match {
    pub(crate) fn product(mut self, product: &str) -> Match {
        product.clone_into(&mut self.product);
        self
    }

    /// At `minute` after the epoch.
    pub(crate) fn minute(mut self, minute: i64) -> Match {
        self.minute = minute;
        self
    }

    pub(crate) fn controls(mut self, controls: Controls) -> Match {
        self.controls = controls;
        self
    }

    /// The event, and the finding the rule raises for it (its group key read from it).
    pub(crate) fn build(&self) -> (Event, Finding) {
        let event = decoded(&event(&self.id, &self.product, self.minute, Some("X")));
        let value: serde_json::Value = serde_json::from_str(event.json()).expect("JSON");
        let key = self
            .controls
            .group_by()
            .map(|group_by| group_by.key(&value, &event))
            .unwrap_or_default();
        let alert = Alert {
            id: content::alert_id("failed", event.event_id(), None),
            ..Alert::new("failed".into(), Severity::High, "Failed".into()).with_event_facts(&event)
        };
        let finding = Finding {
            alert: Box::new(alert),
            controls: Arc::new(self.controls.clone()),
            key,
        };
        (event, finding)
    }
}

fn group_by(paths: &[&str]) -> GroupBy {
    GroupBy {
        fields: paths
            .iter()
            .map(|path| FieldPath::parse(path).expect("valid test path"))
            .collect(),
    }
}

/// `[rule.dedup] enabled = false`.
pub(crate) fn without_dedup() -> Controls {
    Controls {
        dedup: None,
        ..Controls::standard()
    }
}

/// `[rule.throttle]`.
pub(crate) fn throttle(by: &[&str], interval: Duration) -> Controls {
    Controls {
        gate: Gate::Throttle(throttling::Spec {
            group_by: group_by(by),
            interval,
        }),
        ..Controls::standard()
    }
}

/// `[rule.group]`.
pub(crate) fn group(by: &[&str], wait: Duration, interval: Duration) -> Controls {
    Controls {
        gate: Gate::Group(grouping::Spec {
            group_by: group_by(by),
            wait,
            interval,
        }),
        ..Controls::standard()
    }
}

/// `[rule.threshold]`.
pub(crate) fn threshold(by: &[&str], count: u32, window: Duration) -> Controls {
    Controls {
        gate: Gate::Threshold(counting::Spec {
            group_by: group_by(by),
            count,
            window,
        }),
        ..Controls::standard()
    }
}

/// Takes one finding built in code through the stage.
pub(crate) async fn admit(noise: &Noise, found: &Match, sink: &Published) -> Settled {
    let (event, finding) = found.build();
    noise
        .admit(finding, &event, &no_rules(), sink)
        .await
        .expect("memory store")
}

/// Takes every finding `rule_set` raises for `body` through the stage.
pub(crate) async fn admit_body(
    noise: &Noise,
    rule_set: &RuleSet,
    body: &str,
    sink: &Published,
) -> Vec<Settled> {
    let events = envelope::decode(body).expect("test events decode");
    let mut settled = Vec::new();
    for event in &events {
        for finding in rule_set.findings(event).expect("evaluates") {
            let outcome = noise
                .admit(finding, event, rule_set, sink)
                .await
                .expect("memory store");
            settled.push(outcome);
        }
    }
    settled
}
