//! The daemon's test harness: a daemon on a memory source and sink, run to the end or until
//! a test stops it; shared by the tests of `run` and `in_flight`.

use super::pipeline::tests::{FAILING_RULE, GROUPED_RULE, fixture, rules, throttled};
use super::pipeline::{Backoff, Pipeline};
use super::{Settings, Shared, Stopped, in_flight, run};
use crate::http::Health;
use crate::noise::Noise;
use crate::sink::{MemorySink, NamedSink, Sink};
use crate::source::{MemorySource, Source};
use crate::state::{MemoryStore, Store};
use crate::telemetry::Metrics;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(super) struct Harness {
    pub(super) shared: Shared,
}

impl Harness {
    /// Runs the daemon until its source is exhausted, with `grace_secs` of grace.
    pub(super) async fn run_to_end(&self, grace_secs: u64) -> Stopped {
        run::run(
            settings(grace_secs),
            self.shared.clone(),
            CancellationToken::new(),
        )
        .await
    }

    pub(super) fn new(source: MemorySource, backoff: Backoff) -> Self {
        let metrics = Arc::new(Metrics::default());
        // State on tokio's clock: paused time moves dedup leases too.
        let epoch = jiff::Timestamp::from_second(1_767_225_600).expect("valid epoch");
        let noise = Noise::new(
            Store::Memory(MemoryStore::default()),
            crate::state::Clock::tokio_from(epoch),
            CancellationToken::new(),
        );
        let pipeline = Pipeline::new(
            rules(FAILING_RULE),
            vec![NamedSink::new("memory", Sink::Memory(MemorySink::new()))],
            backoff,
            Arc::clone(&metrics),
        )
        .with_noise(Arc::new(noise));
        let health = Arc::new(Health::local());
        health.set_rules_loaded();
        Harness {
            shared: Shared {
                source: Arc::new(Source::Memory(source)),
                pipeline: Arc::new(pipeline),
                metrics,
                health,
                backlog: Arc::default(),
            },
        }
    }

    /// With the grouped rule (`GROUPED_RULE`, or as `with_rule` changes it) and an
    /// ungrouped critical one, and groups that flush at once when `shutdown` fires (as
    /// the daemon's do).
    pub(super) fn grouped(
        source: MemorySource,
        backoff: Backoff,
        shutdown: &CancellationToken,
    ) -> Self {
        Harness::grouped_as(source, backoff, shutdown, GROUPED_RULE)
    }

    pub(super) fn grouped_as(
        source: MemorySource,
        backoff: Backoff,
        shutdown: &CancellationToken,
        grouped_rule: &str,
    ) -> Self {
        let harness = Harness::new(source, backoff.clone());
        let noise = Noise::new(
            Store::Memory(MemoryStore::default()),
            crate::state::Clock::tokio_from(jiff::Timestamp::UNIX_EPOCH),
            shutdown.clone(),
        );
        let pipeline = Pipeline::new(
            rules(&format!("{grouped_rule}{CRITICAL_RULE}")),
            vec![NamedSink::new("memory", Sink::Memory(MemorySink::new()))],
            backoff,
            Arc::clone(&harness.shared.metrics),
        )
        .with_noise(Arc::new(noise));
        Harness {
            shared: Shared {
                pipeline: Arc::new(pipeline),
                ..harness.shared
            },
        }
    }

    pub(super) fn source(&self) -> &MemorySource {
        match self.shared.source.as_ref() {
            Source::Memory(memory) => memory,
            other => panic!("expected memory source, got {other:?}"),
        }
    }

    pub(super) fn sink(&self) -> &MemorySink {
        match &self.shared.pipeline.sinks()[0].sink {
            Sink::Memory(memory) => memory,
            other => panic!("expected memory sink, got {other:?}"),
        }
    }

    pub(super) fn metrics(&self) -> String {
        self.shared.metrics.encode()
    }
}

pub(super) fn quick_backoff(max_attempts: u32) -> Backoff {
    fixed_backoff(max_attempts, Duration::from_millis(10))
}

/// Waits of up to `wait` between attempts, never more.
pub(super) fn fixed_backoff(max_attempts: u32, wait: Duration) -> Backoff {
    Backoff {
        max_attempts,
        initial: wait,
        max: wait,
    }
}

pub(super) fn settings(grace_secs: u64) -> Settings {
    Settings {
        pollers: 2,
        grace: Duration::from_secs(grace_secs),
        max_in_flight: in_flight::DEFAULT_MAX_IN_FLIGHT,
    }
}

pub(super) const CRITICAL_RULE: &str = "[[rule]]\nid = \"critical-product\"\ntitle = \"Invalid product code\"\nseverity = \"critical\"\n\
    match.detail.errorCode = [\"InvalidProductCodeException\"]\n";

pub(super) fn critical() -> String {
    fixture("failing/meterusage-invalid-product-code.eventbridge.json")
}

pub(super) fn published_rules(harness: &Harness) -> Vec<String> {
    harness
        .sink()
        .alerts()
        .iter()
        .map(|alert| alert.rule.to_string())
        .collect()
}

/// Lets the daemon's tasks run until `at` (after the test started).
pub(super) async fn until(started: tokio::time::Instant, at: Duration) {
    tokio::time::sleep_until(started + at).await;
}

pub(super) fn throttled_with_id(event_id: &str) -> String {
    let mut event: serde_json::Value = serde_json::from_str(&throttled()).expect("fixture is JSON");
    event["detail"]["eventID"] = serde_json::Value::String(event_id.to_owned());
    event.to_string()
}
