//! One message through the pipeline: decode → evaluate → publish every alert to the sinks
//! its routes name, retrying with backoff → the verdict on whether the message may be deleted.

use crate::alert::Alert;
use crate::config::RetryConfig;
use crate::envelope::{self, DecodeError};
use crate::noise::{Entered, Noise, Settled, Waiting};
use crate::rules::{BodyError, Budget, RuleSet};
use crate::sink::{NamedSink, PublishError, Router};
use crate::source::Message;
use crate::telemetry::Metrics;
use crate::telemetry::events::{
    MessageOverBudget, MessagePoison, PublishAttemptFailed, RecordSkipped,
};
use crate::telemetry::metrics::{
    AlertLabels, FailReason, RuleLabels, SinkLabels, SuppressedLabels,
};
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// What became of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every alert was accepted by every sink it was routed to (or there were none): delete it.
    Done,
    /// Not decodable: leave it for the redrive policy.
    Poison,
    /// Keep it for redelivery, after a backoff that grows with its receive count.
    Failed(FailReason),
    /// An earlier delivery of the same event holds its dedup claim for `remaining`: keep it
    /// for redelivery after a failure's backoff, or, on a later receive, once the claim has
    /// run out (each receive counts towards the redrive policy's limit; see
    /// `in_flight::in_flight_after`).
    InFlight { remaining: Duration },
}

/// Exponential backoff with full jitter: before attempt `n + 1` wait a random time in
/// `[0, min(max, initial × 2^(n-1))]`. Full jitter spreads the retries of many replicas
/// hitting the same throttled topic.
#[derive(Debug, Clone)]
pub struct Backoff {
    pub max_attempts: u32,
    pub initial: Duration,
    pub max: Duration,
}

impl From<&RetryConfig> for Backoff {
    fn from(config: &RetryConfig) -> Self {
        Backoff {
            max_attempts: config.max_attempts.max(1),
            initial: Duration::from_millis(config.initial_backoff_ms),
            max: Duration::from_millis(config.max_backoff_ms),
        }
    }
}

impl Backoff {
    /// The ceiling of the wait after failed attempt number `attempt` (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// A random wait after failed attempt number `attempt`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(fastrand::u64(0..=millis))
    }
}

/// Decodes, evaluates, passes findings through the state stage and publishes; shared by
/// every poller.
#[derive(Debug)]
pub struct Pipeline {
    rules: Arc<ArcSwap<RuleSet>>,
    sinks: Vec<NamedSink>,
    router: Router,
    backoff: Backoff,
    metrics: Arc<Metrics>,
    /// The state stage; `None` publishes every match as it comes (`bench-pipeline --state
    /// none`, to measure what the stage costs).
    noise: Option<Arc<Noise>>,
    /// What one message may raise (`rules.max_alerts_per_message`).
    budget: Budget,
}

impl Pipeline {
    pub fn new(
        rules: Arc<ArcSwap<RuleSet>>,
        sinks: Vec<NamedSink>,
        backoff: Backoff,
        metrics: Arc<Metrics>,
    ) -> Self {
        metrics.add_sinks(sinks.iter().map(|sink| &*sink.name));
        Pipeline {
            rules,
            router: Router::every_sink(sinks.len()),
            sinks,
            backoff,
            metrics,
            noise: Some(Arc::new(Noise::in_memory())),
            budget: Budget::default(),
        }
    }

    /// Holds each message to `budget` (by default: [`Budget::default`]).
    pub fn with_budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }

    /// Keeps noise-control state in `noise` (by default: in memory, groups flushed only when
    /// due).
    pub fn with_noise(mut self, noise: Arc<Noise>) -> Self {
        self.noise = Some(noise);
        self
    }

    /// Sends alerts only to the sinks `router` selects (by default: every sink). The router
    /// must be compiled against this pipeline's sinks, in order.
    pub fn with_router(mut self, router: Router) -> Self {
        self.router = router;
        self
    }

    /// Runs without the state stage: no dedup, throttle, group or threshold; every match
    /// but an absence heartbeat is published as it comes. Only for measuring the stage's
    /// cost (`bench-pipeline --state none`): the daemon always has one.
    pub fn without_state(mut self) -> Self {
        self.noise = None;
        self
    }

    pub fn rules(&self) -> &Arc<ArcSwap<RuleSet>> {
        &self.rules
    }

    pub fn sinks(&self) -> &[NamedSink] {
        &self.sinks
    }

    /// Runs one message through, returning whether it may be deleted.
    ///
    /// The message is evaluated against one snapshot of the rules: a reload during it takes
    /// effect from the next message, so no event is evaluated by half of each set.
    pub async fn process(&self, message: &Message) -> Verdict {
        self.process_parking(message, || {}).await
    }

    /// [`Pipeline::process`], calling `parked` once the message has nothing left to do but
    /// wait for its groups' flushes (every finding admitted, every other alert out), so that
    /// its caller can go on with other messages meanwhile. Not called when nothing waits.
    pub async fn process_parking(&self, message: &Message, parked: impl FnOnce()) -> Verdict {
        tracing::trace!(body = %message.body, "Processing message.");
        let rule_set = self.rules.load_full();
        // Without a state stage heartbeats would only be dropped: absence rules are not
        // judged at all.
        let per_event =
            match rule_set.body_findings(&message.body, self.noise.is_some(), self.budget) {
                Ok(found) => {
                    for kind in &found.skipped {
                        RecordSkipped {
                            message_id: &message.id,
                            kind,
                        }
                        .emit(&self.metrics);
                    }
                    found.per_event
                }
                Err(error @ BodyError::OverBudget { .. }) => {
                    MessageOverBudget {
                        message_id: &message.id,
                        receive_count: message.receive_count,
                        body_bytes: message.body.len(),
                        error: &error,
                    }
                    .emit(&self.metrics);
                    return Verdict::Poison;
                }
                Err(BodyError::Undecodable(kind)) => {
                    MessagePoison {
                        error: &DecodeError::new(message.id.clone(), kind),
                        receive_count: message.receive_count,
                    }
                    .emit(&self.metrics);
                    return Verdict::Poison;
                }
                Err(BodyError::Evaluate { event_id, error }) => {
                    tracing::warn!(event_id, error = %error, "Rule engine refused an event.");
                    return Verdict::Failed(FailReason::Evaluate);
                }
            };
        self.metrics.events_evaluated.inc_by(per_event.len() as u64);
        let Some(noise) = &self.noise else {
            let findings = per_event
                .into_iter()
                .flat_map(|(_, findings)| findings)
                .collect();
            return self.publish_each(findings).await;
        };
        let mut waiting = Vec::new();
        let mut failed = None;
        for (event, findings) in per_event {
            // A replay keeps its own time: absences due by this event's time are judged
            // before its findings (a no-op on a queue, which has the wall clock's ticker).
            if let Some(event_time) = event_millis(&event)
                && let Some(result) = noise.observe(event_time, &self.rules, self).await
            {
                record_absence_check(&self.metrics, result);
            }
            failed = self
                .admit_all(noise, &event, &rule_set, findings, &mut waiting)
                .await;
            if failed.is_some() {
                break;
            }
        }
        if waiting.is_empty() {
            return failed.unwrap_or(Verdict::Done);
        }
        // Settled even after a failure: a batch this message leads is flushed by nobody
        // else. All at once: several matches of one group join one summary, and matches
        // leading and following different groups never wait on each other in turn.
        parked();
        let settled = futures_util::future::join_all(waiting.into_iter().map(|waiting| {
            let rule_id = Arc::clone(waiting.rule());
            async move { (rule_id, noise.settle(waiting, self).await) }
        }))
        .await;
        for (rule_id, settled) in settled {
            match settled {
                Settled::Grouped => self.count_settled(&rule_id, settled),
                Settled::Failed => {
                    failed.get_or_insert(Verdict::Failed(FailReason::Publish));
                }
                _ => {}
            }
        }
        failed.unwrap_or(Verdict::Done)
    }

    /// Takes findings through the state stage, which publishes what should be sent and says
    /// whether the message may go: a grouped match (outside a replay) is put in its group's
    /// batch and pushed onto `waiting`, to be settled once the group flushes; a dedup claim
    /// held elsewhere leaves the message for later. `Some` verdict when the message must
    /// stay.
    async fn admit_all<'n>(
        &self,
        noise: &'n Noise,
        event: &envelope::Event,
        rule_set: &RuleSet,
        findings: Vec<crate::rules::Finding>,
        waiting: &mut Vec<Waiting<'n>>,
    ) -> Option<Verdict> {
        for finding in findings {
            // A label is made only for what is counted by rule (not for published alerts).
            let rule_id = Arc::clone(&finding.alert.rule);
            let settled = match noise.enter(finding, event, rule_set, self).await {
                Ok(Entered::Settled(settled)) => settled,
                Ok(Entered::Waiting(entered)) => {
                    waiting.push(*entered);
                    continue;
                }
                Err(error) => {
                    self.metrics.state_errors.inc();
                    tracing::warn!(rule = %rule_id, error = %error, "State store failed; leaving the message for redelivery.");
                    return Some(Verdict::Failed(FailReason::State));
                }
            };
            match settled {
                Settled::InFlight { remaining } => return Some(Verdict::InFlight { remaining }),
                Settled::Failed => return Some(Verdict::Failed(FailReason::Publish)),
                settled => self.count_settled(&rule_id, settled),
            }
        }
        None
    }

    /// Counts a finding settled without fault by what became of it.
    fn count_settled(&self, rule_id: &Arc<str>, settled: Settled) {
        let rule = || rule_id.to_string();
        match settled {
            // A replay's group summary is counted when the group flushes.
            Settled::Published
            | Settled::GroupOpened
            | Settled::InFlight { .. }
            | Settled::Failed => {}
            Settled::Grouped => {
                self.metrics
                    .alerts_grouped
                    .get_or_create(&RuleLabels { rule: rule() })
                    .inc();
            }
            Settled::Heartbeat => {
                self.metrics
                    .heartbeats
                    .get_or_create(&RuleLabels { rule: rule() })
                    .inc();
            }
            Settled::Suppressed(reason) => {
                tracing::debug!(rule = %rule_id, reason = reason.as_str(), "Alert suppressed.");
                self.metrics
                    .alerts_suppressed
                    .get_or_create(&SuppressedLabels {
                        rule: rule(),
                        reason: reason.as_str(),
                    })
                    .inc();
            }
        }
    }

    /// Without a state stage: publishes every finding's alert, skipping heartbeats (an
    /// absence rule's match is never an alert by itself).
    async fn publish_each(&self, findings: Vec<crate::rules::Finding>) -> Verdict {
        for finding in findings.iter().filter(|finding| !finding.is_heartbeat()) {
            if !crate::noise::Publish::publish(self, &finding.alert).await {
                return Verdict::Failed(FailReason::Publish);
            }
        }
        Verdict::Done
    }
}

/// An event's time (CloudTrail's `eventTime`, else the envelope's `time`) in milliseconds.
fn event_millis(event: &envelope::Event) -> Option<crate::state::Millis> {
    event
        .event_time()
        .and_then(envelope::parse_time)
        .map(|time| time.as_millisecond())
}

/// Logs and counts what an absence check found (the ticker's, or a replay's).
pub fn record_absence_check(
    metrics: &Metrics,
    result: Result<crate::noise::AbsenceReport, crate::state::StateError>,
) {
    match result {
        Ok(report) => {
            metrics
                .absences_pending
                .set(i64::try_from(report.n_absent).unwrap_or(i64::MAX));
            if report.n_fired > 0 {
                tracing::warn!(
                    n_fired = report.n_fired,
                    n_absent = report.n_absent,
                    "Metering absence alerts sent."
                );
            }
        }
        Err(error) => {
            metrics.state_errors.inc();
            tracing::warn!(error = %error, "Absence check failed; retrying at the next check.");
        }
    }
}

impl crate::noise::Publish for Pipeline {
    async fn publish(&self, alert: &Alert) -> bool {
        let selected = self.router.select(alert);
        if selected.is_empty() {
            // A route with `sinks = []` took it: dropped on purpose, so the message may go.
            tracing::debug!(rule = %alert.rule, severity = alert.severity.as_str(), "Alert routed to no sink.");
            self.metrics
                .alerts_dropped
                .get_or_create(&RuleLabels {
                    rule: alert.rule.to_string(),
                })
                .inc();
            return true;
        }
        for sink_idx in selected {
            let Some(sink) = self.sinks.get(sink_idx) else {
                // The router is compiled against these sinks; an index past them is a bug,
                // and failing keeps the message for redelivery rather than losing the alert.
                tracing::error!(sink_idx, "Route names a sink the pipeline does not have.");
                return false;
            };
            if self.publish_with_retry(sink, alert).await.is_err() {
                return false;
            }
            self.metrics
                .sink_alerts
                .get_or_create(&SinkLabels {
                    sink: sink.name.to_string(),
                })
                .inc();
        }
        self.metrics
            .alerts_published
            .get_or_create(&AlertLabels {
                rule: alert.rule.to_string(),
                severity: alert.severity.as_str(),
            })
            .inc();
        self.metrics.alerts_out.inc();
        true
    }
}

impl Pipeline {
    /// Publishes one alert to one sink, retrying retryable failures with backoff.
    async fn publish_with_retry(
        &self,
        sink: &NamedSink,
        alert: &crate::alert::Alert,
    ) -> Result<(), PublishError> {
        // A clone of the counter, not the family's read guard: the guard is not `Send` and
        // must not be held across the `.await`s below.
        let attempts = self
            .metrics
            .publish_attempts
            .get_or_create(&SinkLabels {
                sink: sink.name.to_string(),
            })
            .clone();
        let mut attempt = 1;
        loop {
            attempts.inc();
            let started = Instant::now();
            let result = sink.sink.publish(alert).await;
            self.metrics
                .publish_seconds
                .observe(started.elapsed().as_secs_f64());
            let error = match result {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            let will_retry = error.retryable && attempt < self.backoff.max_attempts;
            PublishAttemptFailed {
                sink: &sink.name,
                rule: &alert.rule,
                alert_id: &alert.id,
                attempt,
                error: &error,
                will_retry,
            }
            .emit(&self.metrics);
            if !will_retry {
                return Err(error);
            }
            tokio::time::sleep(self.backoff.delay(attempt)).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sink::{MemorySink, Sink};
    use crate::source::Receipt;

    pub(crate) const FAILING_RULE: &str = "[[rule]]\nid = \"call-failed\"\ntitle = \"Metering call failed\"\nseverity = \"high\"\nmatch.detail.errorCode = [{ exists = true }]\n";

    pub(crate) fn rules(text: &str) -> Arc<ArcSwap<RuleSet>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, text).expect("write rules");
        let rule_set = RuleSet::load(&[&path]).expect("valid rules");
        Arc::new(ArcSwap::from_pointee(rule_set))
    }

    pub(crate) fn fixture(path: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/events")
            .join(path);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    pub(crate) fn throttled() -> String {
        fixture("failing/meterusage-throttled.eventbridge.json")
    }

    pub(crate) fn ok_event() -> String {
        fixture("envelopes/meterusage-eks.eventbridge.json")
    }

    fn message(body: String) -> Message {
        Message {
            id: "m".to_owned(),
            body,
            receipt: Receipt("r".to_owned()),
            receive_count: 1,
            sent_at: None,
        }
    }

    fn pipeline(sink: MemorySink, max_attempts: u32) -> (Pipeline, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let backoff = Backoff {
            max_attempts,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let pipeline = Pipeline::new(
            rules(FAILING_RULE),
            vec![NamedSink::new("memory", Sink::Memory(sink))],
            backoff,
            Arc::clone(&metrics),
        );
        (pipeline, metrics)
    }

    fn memory(pipeline: &Pipeline) -> &MemorySink {
        match &pipeline.sinks()[0].sink {
            Sink::Memory(memory) => memory,
            other => panic!("expected memory sink, got {other:?}"),
        }
    }

    #[test]
    fn backoff_ceiling_doubles_up_to_the_maximum() {
        let backoff = Backoff {
            max_attempts: 10,
            initial: Duration::from_millis(200),
            max: Duration::from_secs(1),
        };
        let ceilings: Vec<u128> = (1..=5).map(|n| backoff.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [200, 400, 800, 1000, 1000]);
        for attempt in 1..=5 {
            assert!(backoff.delay(attempt) <= backoff.ceiling(attempt));
        }
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_over_its_budget_is_capped_or_poison_and_the_next_goes_on() {
        let pipeline = |budget| {
            let rules =
                RuleSet::load(&[std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")])
                    .expect("shipped rules");
            let metrics = Arc::new(Metrics::default());
            let pipeline = Pipeline::new(
                Arc::new(ArcSwap::from_pointee(rules)),
                vec![NamedSink::new("memory", Sink::Memory(MemorySink::new()))],
                Backoff {
                    max_attempts: 1,
                    initial: Duration::ZERO,
                    max: Duration::ZERO,
                },
                Arc::clone(&metrics),
            )
            .with_budget(budget);
            (pipeline, metrics)
        };
        let big = crate::rules::tests::batch_with_failed_results(6_000);
        assert!((1_000_000..1 << 20).contains(&big.len()), "{}", big.len());

        // Within the count: 100 alerts and one summary of the 5,901 held back.
        let (capped, _) = pipeline(Budget::default());
        assert_eq!(capped.process(&message(big.clone())).await, Verdict::Done);
        assert_eq!(capped.process(&message(throttled())).await, Verdict::Done);
        let alerts = memory(&capped).alerts();
        assert_eq!(alerts.len(), 102);
        assert_eq!(alerts[100].held_back, Some(5_901));
        assert_eq!(&*alerts[101].rule, "metering-throttled");

        // Over the bytes: poison, counted; the next message is handled as ever.
        let (small, metrics) = pipeline(Budget {
            max_alerts: 100,
            max_bytes: 64 << 10,
        });
        assert_eq!(small.process(&message(big)).await, Verdict::Poison);
        assert!(
            metrics
                .encode()
                .contains("meterwatch_messages_poison_total{reason=\"over_budget\"} 1")
        );
        assert_eq!(small.process(&message(throttled())).await, Verdict::Done);
        let alerts = memory(&small).alerts();
        assert_eq!(alerts.len(), 1);
        assert_eq!(&*alerts[0].rule, "metering-throttled");
    }

    #[tokio::test(start_paused = true)]
    async fn matching_event_is_published_and_done() {
        let (pipeline, metrics) = pipeline(MemorySink::new(), 3);
        assert_eq!(pipeline.process(&message(throttled())).await, Verdict::Done);
        assert_eq!(pipeline.process(&message(ok_event())).await, Verdict::Done);
        let alerts = memory(&pipeline).alerts();
        assert_eq!(alerts.len(), 1);
        assert_eq!(&*alerts[0].rule, "call-failed");
        assert_eq!(metrics.events_evaluated.get(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_redelivered_message_alerts_once_and_counts_the_duplicate() {
        let (pipeline, metrics) = pipeline(MemorySink::new(), 3);
        assert_eq!(pipeline.process(&message(throttled())).await, Verdict::Done);
        assert_eq!(pipeline.process(&message(throttled())).await, Verdict::Done);
        assert_eq!(memory(&pipeline).alerts().len(), 1);
        assert!(metrics.encode().contains(
            "meterwatch_alerts_suppressed_total{rule=\"call-failed\",reason=\"duplicate\"} 1"
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn without_state_every_delivery_alerts_and_heartbeats_do_not() {
        let (pipeline, metrics) = pipeline(MemorySink::new(), 3);
        let pipeline = pipeline.without_state();
        for _ in 0..2 {
            assert_eq!(pipeline.process(&message(throttled())).await, Verdict::Done);
        }
        assert_eq!(memory(&pipeline).alerts().len(), 2);
        assert!(
            !metrics
                .encode()
                .contains("meterwatch_alerts_suppressed_total{")
        );

        let metrics = Arc::new(Metrics::default());
        let heartbeat_rule = "[[rule]]\nid = \"stopped\"\ntitle = \"Stopped\"\nseverity = \"critical\"\n\
            match.detail.eventName = [\"MeterUsage\"]\nmatch.detail.errorCode = [{ exists = false }]\n\
            [rule.absence]\ngroup_by = [\"detail.requestParameters.productCode\"]\nlearn = true\n";
        let pipeline = Pipeline::new(
            rules(heartbeat_rule),
            vec![NamedSink::new("memory", Sink::Memory(MemorySink::new()))],
            Backoff::from(&RetryConfig::default()),
            metrics,
        )
        .without_state();
        assert_eq!(pipeline.process(&message(ok_event())).await, Verdict::Done);
        assert_eq!(memory(&pipeline).attempts(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn retryable_failures_are_retried_with_backoff() {
        let (pipeline, metrics) = pipeline(MemorySink::new(), 3);
        memory(&pipeline).fail_next(2, true);
        let started = Instant::now();
        assert_eq!(pipeline.process(&message(throttled())).await, Verdict::Done);
        assert_eq!(memory(&pipeline).attempts(), 3);
        assert_eq!(memory(&pipeline).accepted(), 1);
        // Two waits, each at most its ceiling (100 ms, then 200 ms).
        assert!(started.elapsed() <= Duration::from_millis(300));
        assert!(
            metrics
                .encode()
                .contains("meterwatch_publish_errors_total{sink=\"memory\",retryable=\"true\"} 2")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn exhausted_retries_leave_the_message() {
        let (pipeline, _) = pipeline(MemorySink::new(), 3);
        memory(&pipeline).fail_next(10, true);
        assert_eq!(
            pipeline.process(&message(throttled())).await,
            Verdict::Failed(FailReason::Publish)
        );
        assert_eq!(memory(&pipeline).attempts(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_failures_are_not_retried() {
        let (pipeline, _) = pipeline(MemorySink::new(), 5);
        memory(&pipeline).fail_next(1, false);
        assert_eq!(
            pipeline.process(&message(throttled())).await,
            Verdict::Failed(FailReason::Publish)
        );
        assert_eq!(memory(&pipeline).attempts(), 1);
    }

    /// Two memory sinks, `email` (0) and `pager` (1): high alerts page, everything mails.
    fn routed_pipeline() -> (Pipeline, Arc<Metrics>) {
        let config = crate::config::Config::parse(
            "[[route]]\nseverity = [\"high\"]\nsinks = [\"pager\"]\ncontinue = true\n\
             [[route]]\nrules = [\"quiet-*\"]\nsinks = []\n\
             [[route]]\nsinks = [\"email\"]\n",
        )
        .expect("parses");
        let router = Router::compile(&config.routes, &["email", "pager"]).expect("valid routes");
        let metrics = Arc::new(Metrics::default());
        let rules = rules(&format!(
            "{FAILING_RULE}\n[[rule]]\nid = \"meter-usage\"\ntitle = \"MeterUsage\"\nseverity = \"info\"\nmatch.detail.eventName = [\"MeterUsage\"]\n\
             [[rule]]\nid = \"quiet-register\"\ntitle = \"RegisterUsage\"\nseverity = \"high\"\nmatch.detail.eventName = [\"RegisterUsage\"]\n"
        ));
        let pipeline = Pipeline::new(
            rules,
            vec![
                NamedSink::new("email", Sink::Memory(MemorySink::new())),
                NamedSink::new("pager", Sink::Memory(MemorySink::new())),
            ],
            Backoff {
                max_attempts: 1,
                initial: Duration::from_millis(1),
                max: Duration::from_millis(1),
            },
            Arc::clone(&metrics),
        )
        .with_router(router);
        (pipeline, metrics)
    }

    fn sink_rules(pipeline: &Pipeline, sink_idx: usize) -> Vec<String> {
        let Sink::Memory(memory) = &pipeline.sinks()[sink_idx].sink else {
            panic!("memory sinks");
        };
        let mut rules: Vec<String> = memory.alerts().iter().map(|a| a.rule.to_string()).collect();
        rules.sort();
        rules
    }

    #[tokio::test(start_paused = true)]
    async fn alerts_go_only_to_the_sinks_their_routes_name() {
        let (pipeline, metrics) = routed_pipeline();
        assert_eq!(pipeline.process(&message(throttled())).await, Verdict::Done);
        assert_eq!(pipeline.process(&message(ok_event())).await, Verdict::Done);
        let register = fixture("envelopes/registerusage-eks.eventbridge.json");
        assert_eq!(pipeline.process(&message(register)).await, Verdict::Done);
        // throttled: call-failed (high) and meter-usage (info); ok_event: meter-usage (info);
        // RegisterUsage: quiet-register (high) pages, then the drop route stops it.
        assert_eq!(
            sink_rules(&pipeline, 0),
            ["call-failed", "meter-usage", "meter-usage"]
        );
        assert_eq!(sink_rules(&pipeline, 1), ["call-failed", "quiet-register"]);
        let text = metrics.encode();
        assert!(
            text.contains("meterwatch_sink_alerts_total{sink=\"email\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("meterwatch_sink_alerts_total{sink=\"pager\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("meterwatch_publish_attempts_total{sink=\"pager\"} 2"),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn dropped_alerts_are_counted_and_the_message_is_done() {
        let config = crate::config::Config::parse("[[route]]\nsinks = []\n").expect("parses");
        let router = Router::compile(&config.routes, &[]).expect("valid routes");
        let (pipeline, metrics) = pipeline(MemorySink::new(), 1);
        let pipeline = pipeline.with_router(router);
        assert_eq!(pipeline.process(&message(throttled())).await, Verdict::Done);
        assert_eq!(memory(&pipeline).attempts(), 0);
        assert!(
            metrics
                .encode()
                .contains("meterwatch_alerts_dropped_total{rule=\"call-failed\"} 1")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_routed_sink_that_fails_leaves_the_message() {
        let (pipeline, _) = routed_pipeline();
        let Sink::Memory(pager) = &pipeline.sinks()[1].sink else {
            panic!("memory sinks");
        };
        pager.fail_next(1, false);
        assert_eq!(
            pipeline.process(&message(throttled())).await,
            Verdict::Failed(FailReason::Publish)
        );
    }

    /// A rule grouping throttled calls by product: its first match waits `wait`, the next
    /// batch `interval` after the previous flush.
    pub(crate) const GROUPED_RULE: &str = "[[rule]]\nid = \"throttled-burst\"\ntitle = \"Throttled burst\"\nseverity = \"low\"\n\
        match.detail.errorCode = [\"ThrottlingException\"]\n\
        [rule.group]\ngroup_by = [\"detail.requestParameters.productCode\"]\nwait = \"2s\"\ninterval = \"60s\"\n";

    /// One `{"Records": [...]}` message of `n` throttled calls (distinct event ids).
    pub(crate) fn throttled_records(n: usize) -> String {
        let envelope: serde_json::Value =
            serde_json::from_str(&throttled()).expect("fixture is JSON");
        let records: Vec<serde_json::Value> = (0..n)
            .map(|idx| {
                let mut record = envelope["detail"].clone();
                record["eventID"] = serde_json::Value::String(format!("throttled-{idx}"));
                record
            })
            .collect();
        serde_json::json!({ "Records": records }).to_string()
    }

    #[tokio::test(start_paused = true)]
    async fn several_matches_of_one_group_in_one_message_make_one_summary() {
        let metrics = Arc::new(Metrics::default());
        let pipeline = Pipeline::new(
            rules(GROUPED_RULE),
            vec![NamedSink::new("memory", Sink::Memory(MemorySink::new()))],
            Backoff::from(&RetryConfig::default()),
            Arc::clone(&metrics),
        );
        let started = Instant::now();
        let n_parked = std::sync::atomic::AtomicUsize::new(0);
        let verdict = pipeline
            .process_parking(&message(throttled_records(3)), || {
                n_parked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })
            .await;
        assert_eq!(verdict, Verdict::Done);
        assert_eq!(n_parked.into_inner(), 1, "parked once, for every match");
        let alerts = memory(&pipeline).alerts();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let group = alerts[0].group.as_ref().expect("a summary");
        assert_eq!(group.count, 3);
        assert_eq!(
            group.event_ids,
            ["throttled-0", "throttled-1", "throttled-2"]
        );
        // The group's wait (to the millisecond: the default state's clock is the system's),
        // not one interval per match after the first.
        assert!(
            started.elapsed() <= Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(
            metrics
                .encode()
                .contains("meterwatch_alerts_grouped_total{rule=\"throttled-burst\"} 2")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_without_grouped_matches_is_never_parked() {
        let (pipeline, _) = pipeline(MemorySink::new(), 3);
        let verdict = pipeline
            .process_parking(&message(throttled()), || panic!("nothing waits"))
            .await;
        assert_eq!(verdict, Verdict::Done);
    }

    #[tokio::test(start_paused = true)]
    async fn undecodable_message_is_poison_and_counted() {
        let (pipeline, metrics) = pipeline(MemorySink::new(), 3);
        let verdict = pipeline.process(&message("not json".to_owned())).await;
        assert_eq!(verdict, Verdict::Poison);
        assert!(
            metrics
                .encode()
                .contains("meterwatch_messages_poison_total{reason=\"not_json\"} 1")
        );
    }
}
