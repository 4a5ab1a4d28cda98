//! Running the daemon: pollers receive batches from the source and hand each to its owner
//! ([`Batch`]) until the source is exhausted or shutdown is asked for; then it drains. Also
//! the absence ticker's run. Called by `super::assemble::serve` (and `bench-pipeline`);
//! calls `in_flight` for each batch and the source for receives.
//!
//! Shutdown: when `shutdown` fires, readiness turns false and pollers stop receiving. A
//! receive in flight is let finish (a long poll answers within `wait_time_secs`): what it
//! returned is made visible again at once, not left invisible for the visibility timeout
//! with its receive count spent for nothing. Batches in flight get the grace period less a
//! margin to finish and delete; then `hard_stop` abandons what is left and makes it visible
//! again at once. A receive still in flight then is dropped: what SQS had handed it comes
//! back after the visibility timeout. Publish → delete is never cut short by `shutdown`
//! itself. Parked messages (waiting for their groups, which flush at once on `shutdown`)
//! drain the same way.

use super::backlog::Backlog;
use super::in_flight::{self, Batch, Places};
use super::pipeline::{self, Backoff, Pipeline};
use crate::http::Health;
use crate::noise::Noise;
use crate::source::{Message, Received, Source};
use crate::telemetry::Metrics;
use crate::telemetry::events::ReceiveFailed;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Backoff between failed receives: 1 s doubling to 30 s, with jitter.
const RECEIVE_BACKOFF: Backoff = Backoff {
    max_attempts: u32::MAX,
    initial: Duration::from_secs(1),
    max: Duration::from_secs(30),
};

/// How the daemon runs, once assembled.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Concurrent receivers.
    pub pollers: usize,
    /// The shutdown grace period.
    pub grace: Duration,
    /// Messages in flight at most ([`in_flight::Places`]).
    pub max_in_flight: usize,
}

impl Settings {
    /// The part of the grace kept for making unfinished messages visible again.
    pub(super) fn release_margin(&self) -> Duration {
        (self.grace / 4).min(Duration::from_secs(3))
    }

    /// The part of the grace in-flight work gets to finish.
    pub(super) fn drain_budget(&self) -> Duration {
        self.grace.saturating_sub(self.release_margin())
    }
}

/// How [`run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// A finite source was read to the end and everything was processed.
    Exhausted,
    /// Shutdown was asked for and every in-flight message finished in time.
    Drained,
    /// Shutdown was asked for and some messages were abandoned (made visible again).
    GraceExceeded,
}

/// The parts every poller shares.
#[derive(Debug, Clone)]
pub struct Shared {
    pub source: Arc<Source>,
    pub pipeline: Arc<Pipeline>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// What receives saw of a backlog, for the absence ticker.
    pub backlog: Arc<Backlog>,
}

/// Receives and processes until the source is exhausted or `shutdown` fires, then drains
/// within the grace period.
pub async fn run(settings: Settings, shared: Shared, shutdown: CancellationToken) -> Stopped {
    let hard_stop = CancellationToken::new();
    // Pollers and their batches: draining waits for parked messages too.
    let pollers = TaskTracker::new();
    let places = Places::new(settings.max_in_flight, shared.source.batch_size());
    for poller_idx in 0..settings.pollers.max(1) {
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        let hard_stop = hard_stop.clone();
        let places = places.clone();
        let tasks = pollers.clone();
        pollers.spawn(async move {
            poll(
                poller_idx,
                &shared,
                (&shutdown, &hard_stop),
                &places,
                &tasks,
            )
            .await;
        });
    }
    // Closed with pollers still running: a batch is tracked before its poller ends.
    pollers.close();

    // Shutdown first: pollers stop as soon as it fires, and their end must then count as a
    // drain, not as an exhausted source.
    tokio::select! {
        biased;
        () = shutdown.cancelled() => {}
        () = pollers.wait() => return Stopped::Exhausted,
    }
    shared.health.set_draining();
    let in_flight = shared.metrics.messages_in_flight.get();
    tracing::info!(
        in_flight,
        grace_secs = settings.grace.as_secs(),
        "Draining: receiving stopped."
    );
    if tokio::time::timeout(settings.drain_budget(), pollers.wait())
        .await
        .is_ok()
    {
        tracing::info!("Drained; every in-flight message finished.");
        return Stopped::Drained;
    }
    tracing::warn!(
        in_flight = shared.metrics.messages_in_flight.get(),
        "Grace period running out; making unfinished messages visible again."
    );
    hard_stop.cancel();
    if tokio::time::timeout(settings.release_margin(), pollers.wait())
        .await
        .is_err()
    {
        tracing::error!(
            "Could not release every unfinished message in time; they reappear after their visibility timeout."
        );
    }
    Stopped::GraceExceeded
}

/// One poller: reserve places, receive, hand the batch to its owner (under `tasks`), wait
/// until nothing of it runs but for its groups' flushes, repeat.
async fn poll(
    poller_idx: usize,
    shared: &Shared,
    (shutdown, hard_stop): (&CancellationToken, &CancellationToken),
    places: &Places,
    tasks: &TaskTracker,
) {
    let mut n_failures = 0;
    while !shutdown.is_cancelled() {
        // Places first: what is received is in flight at once.
        let reserved = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            reserved = places.reserve() => reserved,
        };
        let started = tokio::time::Instant::now();
        // A queue's receive is not cut by `shutdown`: it may already have taken messages, which
        // would stay invisible for the visibility timeout; only the hard stop drops it. A
        // file or stdin loses nothing by stopping mid-read (and stdin may never answer).
        let lets_finish = shared.source.leases_messages();
        let received = tokio::select! {
            biased;
            () = hard_stop.cancelled() => break,
            () = shutdown.cancelled(), if !lets_finish => break,
            received = shared.source.receive() => received,
        };
        shared
            .metrics
            .receive_seconds
            .observe(started.elapsed().as_secs_f64());
        match received {
            Ok(Received::Messages(messages)) => {
                n_failures = 0;
                shared.health.queue_answered();
                let now = std::time::SystemTime::now();
                shared.metrics.receive_answered(now);
                for sent_at in messages
                    .iter()
                    .filter(|m| m.receive_count <= 1)
                    .filter_map(|m| m.sent_at)
                {
                    let age = now.duration_since(sent_at).unwrap_or_default();
                    shared
                        .metrics
                        .message_age_seconds
                        .observe(age.as_secs_f64());
                }
                shared.backlog.observe(
                    messages.iter().map(|m| (m.receive_count, m.sent_at)),
                    now,
                    tokio::time::Instant::now(),
                );
                if messages.is_empty() {
                    continue;
                }
                if shutdown.is_cancelled() {
                    // Received after shutdown began: visible again at once, unprocessed.
                    let messages: Vec<&Message> = messages.iter().collect();
                    in_flight::release(&shared.source, &shared.metrics, &messages).await;
                    break;
                }
                tracing::debug!(poller_idx, n_messages = messages.len(), "Received batch.");
                let batch = Batch::new(
                    &shared.source,
                    &shared.metrics,
                    hard_stop,
                    messages,
                    reserved,
                );
                // Answered once each message is finished or parked; closed if the batch
                // ended first (at the hard stop too).
                let _ = batch.spawn(&shared.pipeline, tasks).await;
            }
            Ok(Received::Exhausted) => break,
            Err(error) => {
                n_failures += 1;
                let delay = RECEIVE_BACKOFF.delay(n_failures);
                ReceiveFailed {
                    error: &error,
                    retry_in_ms: delay.as_millis(),
                }
                .emit(&shared.metrics);
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// The absence ticker: checks every absence rule's keys until `shutdown`, publishing through
/// the pipeline's sinks; keeps the pending-absences and open-groups gauges current. A check
/// in flight at `shutdown` may finish within `budget` (the drain's); one cut off after it
/// sends nothing twice and loses nothing (see `Noise::check_absences`): its alert is sent
/// by a later check.
pub(super) async fn absence_checks(
    noise: Arc<Noise>,
    pipeline: Arc<Pipeline>,
    metrics: Arc<Metrics>,
    backlog: Arc<Backlog>,
    shutdown: CancellationToken,
    budget: Duration,
) {
    let report = |result: Result<crate::noise::AbsenceReport, crate::state::StateError>| {
        metrics
            .groups_open
            .set(i64::try_from(noise.n_open_groups()).unwrap_or(i64::MAX));
        pipeline::record_absence_check(&metrics, result);
    };
    let checks = noise.run_absence_checks(
        pipeline.rules(),
        crate::noise::CHECK_EVERY,
        pipeline.as_ref(),
        report,
        || backlog.defers_checks(tokio::time::Instant::now()),
        &shutdown,
    );
    tokio::pin!(checks);
    tokio::select! {
        () = &mut checks => return,
        () = shutdown.cancelled() => {}
    }
    if tokio::time::timeout(budget, checks).await.is_err() {
        tracing::warn!(
            budget_ms = budget.as_millis(),
            "The absence check in flight did not finish within the shutdown grace; a later \
             check (after a restart) sends what it was sending."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::harness::{
        Harness, fixed_backoff, published_rules, quick_backoff, settings, until,
    };
    use crate::daemon::pipeline::tests::{GROUPED_RULE, ok_event, throttled};
    use crate::source::MemorySource;

    #[tokio::test(start_paused = true)]
    async fn shutdown_flushes_open_groups_and_the_drain_waits_for_them() {
        let source = MemorySource::new([throttled()], 1).keep_open();
        let shutdown = CancellationToken::new();
        let rule = GROUPED_RULE.replace("wait = \"2s\"", "wait = \"10m\"");
        let harness = Harness::grouped_as(source, quick_backoff(3), &shutdown, &rule);
        let started = tokio::time::Instant::now();
        let task = tokio::spawn(run(settings(5), harness.shared.clone(), shutdown.clone()));
        until(started, Duration::from_millis(500)).await;
        assert!(harness.source().deleted().is_empty());
        shutdown.cancel();
        assert_eq!(task.await.expect("joins"), Stopped::Drained);
        // Not the group's 10-minute wait: only the receive in flight is let finish.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(harness.source().deleted(), ["m0"]);
        assert_eq!(published_rules(&harness), ["throttled-burst"]);
    }

    #[tokio::test(start_paused = true)]
    async fn messages_a_receive_in_flight_at_shutdown_returns_are_released_at_once() {
        // The receive is in flight when SIGTERM comes, and answers a second later.
        let source = MemorySource::new([throttled(), ok_event()], 10)
            .answer_after(Duration::from_secs(2))
            .keep_open();
        let harness = Harness::new(source, quick_backoff(3));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(settings(5), harness.shared.clone(), shutdown.clone()));
        tokio::time::sleep(Duration::from_secs(1)).await;
        shutdown.cancel();
        assert_eq!(task.await.expect("joins"), Stopped::Drained);
        // Unprocessed, visible again at once (not after the visibility timeout).
        assert!(harness.source().deleted().is_empty());
        assert_eq!(harness.sink().attempts(), 0);
        assert_eq!(
            harness.source().visibility_changes(),
            [
                ("m0".to_owned(), Duration::ZERO),
                ("m1".to_owned(), Duration::ZERO)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_drains_in_flight_work_then_stops() {
        let source = MemorySource::new([throttled()], 10).keep_open();
        let harness = Harness::new(source, quick_backoff(3));
        harness.sink().fail_next(2, true);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(settings(5), harness.shared.clone(), shutdown.clone()));
        // The retries take at most 20 ms; the source then idles.
        tokio::time::sleep(Duration::from_secs(1)).await;
        shutdown.cancel();
        assert_eq!(task.await.expect("joins"), Stopped::Drained);
        assert_eq!(harness.source().deleted(), ["m0"]);
        assert!(harness.source().visibility_changes().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn unfinished_messages_are_released_when_grace_runs_out() {
        let source = MemorySource::new([throttled(), ok_event()], 10).keep_open();
        let backoff = fixed_backoff(100, Duration::from_secs(60));
        let harness = Harness::new(source, backoff);
        harness.sink().fail_next(1_000, true);
        let shutdown = CancellationToken::new();
        let started = tokio::time::Instant::now();
        let task = tokio::spawn(run(settings(8), harness.shared.clone(), shutdown.clone()));
        tokio::time::sleep(Duration::from_secs(1)).await;
        shutdown.cancel();
        assert_eq!(task.await.expect("joins"), Stopped::GraceExceeded);
        assert!(
            started.elapsed() <= Duration::from_secs(1 + 8),
            "within the grace"
        );
        // m1 raised no alert and was deleted; m0 was stuck publishing and is released.
        assert_eq!(harness.source().deleted(), ["m1"]);
        assert_eq!(
            harness.source().visibility_changes(),
            [("m0".to_owned(), Duration::ZERO)]
        );
        assert!(
            harness
                .metrics()
                .contains("meterwatch_messages_failed_total{reason=\"shutdown\"} 1")
        );
    }
}
