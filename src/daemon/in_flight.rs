//! Messages in flight, each from its receive to its delete or release, with one owner: the
//! [`Batch`] it was received in, a task that processes its messages concurrently, keeps them
//! invisible while they take long, deletes the done ones in one call, leaves the others for
//! redelivery, and at the hard stop aborts what is unfinished and makes it visible again at
//! once. Pollers (`super::run`) hand it each batch they receive; it calls the [`Pipeline`]
//! for each message and the [`Source`] for deletes and visibility changes.
//!
//! The at-least-once contract lives here: a message is deleted only after
//! [`Pipeline::process`] said [`Verdict::Done`]; every other verdict leaves it in the queue.
//! A delete that SQS refuses for one entry is logged and counted; that message is redelivered
//! (a duplicate alert, never a lost one).
//!
//! A message left after a failure comes back after a backoff that grows with its receive
//! count ([`retry_after`]), set as its visibility timeout, so that the queue's redrive limit
//! outlasts an outage of the sinks or the state store rather than a few visibility timeouts;
//! one blocked by another delivery's dedup claim comes back after the same backoff, twice,
//! then, if the claim still stands, once it has run out ([`in_flight_after`]). Poison keeps
//! the queue's visibility timeout: the redrive policy moves it to the DLQ soon.
//!
//! A grouped match waits for its group's summary up to the group's `interval` (5 minutes by
//! default), and its message may be deleted only once that summary is out. Were its poller
//! to wait for it, nothing would be received meanwhile: every other alert would wait too. So
//! a message with nothing left but that wait is *parked*
//! ([`Pipeline::process_parking`]): once each message of a batch is finished or parked, the
//! batch deletes its done ones (in one call), lets its poller receive again, and sees the
//! parked ones to the end alone, deleting those that finish together in one call. Batches
//! run under the daemon's tracker, so a drain waits for them too (at shutdown every group
//! flushes at once).
//!
//! Messages in flight are bounded ([`Places`]): a poller reserves a place for each message of
//! a batch before receiving it; a message keeps its place until it is deleted or left, and
//! the places a batch did not fill go back at its receive. While every place is taken,
//! pollers wait instead of receiving.

use super::pipeline::{Pipeline, Verdict};
use crate::source::{Message, Source};
use crate::telemetry::Metrics;
use crate::telemetry::events::{EntryFailed, MessageLeft};
use crate::telemetry::metrics::FailReason;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::{JoinError, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// SQS's longest visibility timeout, counted from the message's receive: a longer change is
/// refused.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

/// Kept under what is left of [`MAX_VISIBILITY`], for the time the change takes to reach SQS.
const VISIBILITY_MARGIN: Duration = Duration::from_secs(60);

/// How many times longer each redelivery after a failure waits than the one before.
const RETRY_GROWTH: u32 = 4;

/// Added to what is left of another delivery's dedup claim: replicas' clocks differ a little,
/// and a message back a moment early would spend a receive on finding the claim again.
const CLAIM_MARGIN: Duration = Duration::from_secs(5);

/// How many messages may be in flight at once: a few kilobytes each (the body and its boxed
/// processing future), so a few megabytes in all, and far more than a steady flow of grouped
/// alerts parks within a group interval.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1000;

/// How long a message left after a failure on its `receive_count`th receive stays invisible:
/// the visibility timeout, ×4 on each receive after the first, at most SQS's 12 hours. With
/// the shipped 60 s and 5 receives before the DLQ: back after 1, 4, 16 and 64 minutes, so a
/// sink or store outage of about 85 minutes is outlasted (at ×2 it would be 15).
pub fn retry_after(visibility: Duration, receive_count: u32) -> Duration {
    let factor = RETRY_GROWTH.saturating_pow(receive_count.saturating_sub(1));
    visibility.saturating_mul(factor).min(MAX_VISIBILITY)
}

/// How long a message blocked by another delivery's dedup claim (`remaining` of it) stays
/// invisible. On its first two receives, a failure's backoff: the claim's holder is most
/// likely publishing (a duplicate delivery; slowly, when the sinks or the store are slow), so
/// it comes back soon to be found a duplicate and deleted (waiting out a lease that a slow
/// holder keeps renewing would also trip the queue-age alarm). A claim still standing after that is most likely a
/// killed holder's: then until it has run out, rather than spending the redrive policy's
/// receives on it.
pub fn in_flight_after(visibility: Duration, receive_count: u32, remaining: Duration) -> Duration {
    let backoff = retry_after(visibility, receive_count);
    if receive_count <= 2 {
        return backoff;
    }
    backoff
        .max(remaining.saturating_add(CLAIM_MARGIN))
        .min(MAX_VISIBILITY)
}

/// The bound on messages in flight; shared by every poller.
#[derive(Debug, Clone)]
pub struct Places {
    places: Arc<Semaphore>,
    capacity: usize,
    batch_size: usize,
}

/// Places reserved for one batch before its receive; those its messages do not take go back
/// when it is dropped.
#[derive(Debug)]
pub struct Reserved(OwnedSemaphorePermit);

impl Places {
    /// Room for at most `capacity` messages in flight (at least one batch of `batch_size`).
    pub fn new(capacity: usize, batch_size: usize) -> Places {
        let capacity = capacity.max(batch_size).max(1);
        Places {
            places: Arc::new(Semaphore::new(capacity)),
            capacity,
            batch_size,
        }
    }

    /// Reserves a place for each message of the next batch, waiting while messages in flight
    /// take them.
    pub async fn reserve(&self) -> Reserved {
        let n = self.batch_size.clamp(1, self.capacity);
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let permit = Arc::clone(&self.places)
            .acquire_many_owned(n)
            .await
            .expect("the places' semaphore is never closed");
        Reserved(permit)
    }
}

/// Where a message of a batch is, from its receive to its delete or release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Being processed.
    Running,
    /// Processed but for its groups' flushes ([`Pipeline::process_parking`]).
    Parked,
    /// Done: deleted with the batch's other done messages.
    Done,
    /// Left for redelivery after this long (set as its visibility timeout).
    Retry(Duration),
    /// Left to the queue's visibility timeout (poison, or a source without one).
    Left,
}

/// One received batch, the one owner of its messages until each is deleted or left (or
/// released at the hard stop).
#[derive(Debug)]
pub struct Batch {
    source: Arc<Source>,
    metrics: Arc<Metrics>,
    hard_stop: CancellationToken,
    /// By their index in the batch (what their tasks return); `None` once settled.
    messages: Vec<Option<InFlight>>,
    /// The finished messages not settled yet, in the order they finished (their delete's).
    finished: Vec<usize>,
    received_at: Instant,
}

#[derive(Debug)]
struct InFlight {
    message: Arc<Message>,
    stage: Stage,
    /// Its place among the messages in flight, given back once it is settled.
    _place: Option<OwnedSemaphorePermit>,
}

impl Batch {
    /// Takes over `messages`, just received, each taking one of the places `reserved` for
    /// them. `hard_stop` fires when the shutdown grace is about to run out: unfinished
    /// messages are then abandoned and made visible again.
    pub fn new(
        source: &Arc<Source>,
        metrics: &Arc<Metrics>,
        hard_stop: &CancellationToken,
        messages: Vec<Message>,
        mut reserved: Reserved,
    ) -> Batch {
        metrics.messages_received.inc_by(messages.len() as u64);
        metrics.messages_in_flight.inc_by(messages.len() as i64);
        let messages = messages
            .into_iter()
            .map(|message| {
                Some(InFlight {
                    message: Arc::new(message),
                    stage: Stage::Running,
                    // A batch never has more messages than places reserved for it; were one
                    // missing, the message would be seen to the end all the same, just not
                    // counted.
                    _place: reserved.0.split(1),
                })
            })
            .collect();
        Batch {
            source: Arc::clone(source),
            metrics: Arc::clone(metrics),
            hard_stop: hard_stop.clone(),
            messages,
            finished: Vec::new(),
            received_at: Instant::now(),
        }
    }

    /// Sees the batch to the end in a task under `tasks`. The receiver answers (or closes,
    /// if the batch ended first) once each message is finished or parked: its poller may
    /// then receive again.
    pub fn spawn(self, pipeline: &Arc<Pipeline>, tasks: &TaskTracker) -> oneshot::Receiver<()> {
        let (let_go, released) = oneshot::channel();
        tasks.spawn(self.run(Arc::clone(pipeline), let_go));
        released
    }

    async fn run(mut self, pipeline: Arc<Pipeline>, let_go: oneshot::Sender<()>) {
        let (parked_tx, mut parked_rx) = mpsc::unbounded_channel();
        let mut tasks = JoinSet::new();
        let mut task_messages = HashMap::new();
        for (idx, in_flight) in self.messages.iter().enumerate() {
            let Some(in_flight) = in_flight else { continue };
            let pipeline = Arc::clone(&pipeline);
            let message = Arc::clone(&in_flight.message);
            let parked_tx = parked_tx.clone();
            let span = tracing::info_span!(
                "message",
                message_id = %message.id,
                receive_count = message.receive_count
            );
            // Boxed: the processing future is several kilobytes (state stage, retries), and
            // tokio moves a task's future on spawn and again as the task runs.
            let process = Box::pin(async move {
                // Sending fails only once the batch has ended, which it does not while this
                // message runs.
                let parked = move || {
                    let _ = parked_tx.send(idx);
                };
                (idx, pipeline.process_parking(&message, parked).await)
            });
            let task = tasks.spawn(process.instrument(span));
            task_messages.insert(task.id(), idx);
        }
        drop(parked_tx);

        // Renew the visibility of unsettled messages every half timeout, so that a slow
        // publish (retries, a throttled topic) or a group's wait never lets another consumer
        // receive the same message.
        let renewal = self.source.visibility_timeout();
        // Without a visibility timeout the ticker is never polled (`if renewal.is_some()`).
        let period = renewal.map_or(Duration::from_secs(3600), |timeout| {
            (timeout / 2).max(Duration::from_millis(500))
        });
        let mut ticks = tokio::time::interval_at(self.received_at + period, period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);

        let mut let_go = Some(let_go);
        let mut abandoned = false;
        while !tasks.is_empty() {
            tokio::select! {
                biased;
                joined = tasks.join_next() => {
                    let mut joined = joined;
                    // A group's members finish together: deleted in one call.
                    while let Some(result) = joined {
                        self.finished(result, &task_messages, renewal);
                        joined = tasks.try_join_next();
                    }
                }
                Some(idx) = parked_rx.recv() => {
                    if let Some(Some(in_flight)) = self.messages.get_mut(idx)
                        && in_flight.stage == Stage::Running
                    {
                        in_flight.stage = Stage::Parked;
                    }
                }
                _ = self.hard_stop.cancelled(), if !abandoned => {
                    abandoned = true;
                    tasks.abort_all();
                }
                _ = ticks.tick(), if renewal.is_some() => {
                    let Some(timeout) = renewal else { continue };
                    renew(&self.source, &self.metrics, &self.kept_invisible(), timeout).await;
                }
            }
            // Until nothing runs, done messages wait for the slower ones, kept invisible: a
            // done message left to time out would be received and processed again by another
            // consumer (a second alert, were it not for dedup). Aborted ones count as running:
            // released below with the rest.
            if !self.any_running() {
                self.settle().await;
                if let Some(let_go) = let_go.take() {
                    let _ = let_go.send(());
                }
            }
        }

        self.settle().await;
        // What is left was aborted at the hard stop: visible again at once.
        let pending: Vec<&Message> = self
            .messages
            .iter()
            .flatten()
            .map(|in_flight| in_flight.message.as_ref())
            .collect();
        release(&self.source, &self.metrics, &pending).await;
        self.metrics.messages_in_flight.dec_by(pending.len() as i64);
    }

    /// Records a joined task's verdict as its message's stage, unless the task was aborted
    /// (its message is released at the end).
    fn finished(
        &mut self,
        joined: Result<(usize, Verdict), JoinError>,
        task_messages: &HashMap<tokio::task::Id, usize>,
        renewal: Option<Duration>,
    ) {
        let Some((idx, verdict)) = verdict_of(joined, task_messages) else {
            return;
        };
        let Some(Some(in_flight)) = self.messages.get_mut(idx) else {
            return;
        };
        self.metrics
            .message_processing_seconds
            .observe(self.received_at.elapsed().as_secs_f64());
        in_flight.stage = stage_after(
            &in_flight.message,
            verdict,
            (renewal, self.received_at),
            &self.metrics,
        );
        self.finished.push(idx);
    }

    fn any_running(&self) -> bool {
        self.messages
            .iter()
            .flatten()
            .any(|in_flight| in_flight.stage == Stage::Running)
    }

    /// The messages to keep invisible: all but those left to the queue's visibility timeout.
    fn kept_invisible(&self) -> Vec<&Message> {
        self.messages
            .iter()
            .flatten()
            .filter(|in_flight| in_flight.stage != Stage::Left)
            .map(|in_flight| in_flight.message.as_ref())
            .collect()
    }

    /// Deletes the finished messages that are done, in one call, gives those left for
    /// redelivery their delay, and lets go of them all (their places go back).
    async fn settle(&mut self) {
        let messages = &mut self.messages;
        let finished: Vec<InFlight> = self
            .finished
            .drain(..)
            .filter_map(|idx| messages.get_mut(idx)?.take())
            .collect();
        if finished.is_empty() {
            return;
        }
        let done: Vec<&Message> = finished
            .iter()
            .filter(|in_flight| in_flight.stage == Stage::Done)
            .map(|in_flight| in_flight.message.as_ref())
            .collect();
        delete(&self.source, &self.metrics, &done).await;
        let retries = finished
            .iter()
            .filter_map(|in_flight| match in_flight.stage {
                Stage::Retry(retry_in) => Some((in_flight.message.as_ref(), retry_in)),
                _ => None,
            })
            .collect();
        set_visibility(&self.source, &self.metrics, retries).await;
        self.metrics
            .messages_in_flight
            .dec_by(finished.len() as i64);
    }
}

/// The message index and verdict of a joined task: a panicked one's is a failure (logged;
/// its message comes back after a failure's backoff, not at once: a message that panics
/// would spin). `None` for a task aborted at the hard stop, whose message is released.
fn verdict_of(
    joined: Result<(usize, Verdict), JoinError>,
    task_messages: &HashMap<tokio::task::Id, usize>,
) -> Option<(usize, Verdict)> {
    match joined {
        Ok(finished) => Some(finished),
        Err(error) if error.is_cancelled() => None,
        Err(error) => {
            tracing::error!(error = %error, "Message task panicked.");
            let idx = *task_messages.get(&error.id())?;
            Some((idx, Verdict::Failed(FailReason::Internal)))
        }
    }
}

/// What becomes of `message` after `verdict` (`renewal`: the source's visibility timeout);
/// a message left for redelivery is logged and counted with why.
fn stage_after(
    message: &Message,
    verdict: Verdict,
    (renewal, received_at): (Option<Duration>, Instant),
    metrics: &Metrics,
) -> Stage {
    let (reason, retry_in) = match verdict {
        Verdict::Done => return Stage::Done,
        // Poison was logged and counted where it was found.
        Verdict::Poison => return Stage::Left,
        Verdict::Failed(reason) => (
            reason,
            renewal.map(|visibility| retry_after(visibility, message.receive_count)),
        ),
        Verdict::InFlight { remaining } => (
            FailReason::InFlight,
            renewal.map(|visibility| in_flight_after(visibility, message.receive_count, remaining)),
        ),
    };
    // SQS counts its 12 hours from the receive, so what is left of them bounds the delay.
    let left = MAX_VISIBILITY.saturating_sub(received_at.elapsed() + VISIBILITY_MARGIN);
    let retry_in = retry_in.map(|retry_in| retry_in.min(left));
    MessageLeft {
        message_id: &message.id,
        reason,
        retry_in,
    }
    .emit(metrics);
    retry_in.map_or(Stage::Left, Stage::Retry)
}

/// Deletes the done messages, counting those deleted and logging those SQS refused.
async fn delete(source: &Source, metrics: &Metrics, done: &[&Message]) {
    if done.is_empty() {
        return;
    }
    let failures = source.delete(done).await;
    for failure in &failures {
        EntryFailed {
            operation: "delete",
            failure,
        }
        .emit(metrics);
    }
    metrics
        .messages_deleted
        .inc_by((done.len() - failures.len().min(done.len())) as u64);
}

/// Keeps `pending` invisible for another `timeout`.
async fn renew(source: &Source, metrics: &Metrics, pending: &[&Message], timeout: Duration) {
    metrics.visibility_extensions.inc_by(pending.len() as u64);
    change_visibility(source, metrics, pending, timeout).await;
}

/// Gives each message left for redelivery its delay, in one call per delay (a batch's
/// failures mostly share one receive count).
async fn set_visibility(
    source: &Source,
    metrics: &Metrics,
    mut retries: Vec<(&Message, Duration)>,
) {
    retries.sort_by_key(|(_, retry_in)| *retry_in);
    for same_delay in retries.chunk_by(|a, b| a.1 == b.1) {
        let retry_in = same_delay[0].1;
        let messages: Vec<&Message> = same_delay.iter().map(|(message, _)| *message).collect();
        change_visibility(source, metrics, &messages, retry_in).await;
    }
}

/// Makes messages visible again at once, saying so: those abandoned at the hard stop, and
/// those a receive returned once shutdown had begun.
pub(super) async fn release(source: &Source, metrics: &Metrics, pending: &[&Message]) {
    if pending.is_empty() {
        return;
    }
    for message in pending {
        MessageLeft {
            message_id: &message.id,
            reason: FailReason::Shutdown,
            retry_in: Some(Duration::ZERO),
        }
        .emit(metrics);
    }
    change_visibility(source, metrics, pending, Duration::ZERO).await;
}

async fn change_visibility(
    source: &Source,
    metrics: &Metrics,
    messages: &[&Message],
    timeout: Duration,
) {
    for failure in source.change_visibility(messages, timeout).await {
        EntryFailed {
            operation: "change_visibility",
            failure: &failure,
        }
        .emit(metrics);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::harness::{
        Harness, critical, fixed_backoff, published_rules, quick_backoff, settings,
        throttled_with_id, until,
    };
    use crate::daemon::pipeline::tests::{GROUPED_RULE, ok_event, throttled};
    use crate::daemon::{Settings, Stopped, run};
    use crate::source::MemorySource;

    #[tokio::test(start_paused = true)]
    async fn a_message_waiting_for_its_group_does_not_delay_the_next() {
        // One poller, one message a batch: before, the critical message waited for the
        // grouped one's flush.
        let source = MemorySource::new([throttled(), critical()], 1)
            .keep_open()
            .with_visibility_timeout(Duration::from_secs(10));
        let shutdown = CancellationToken::new();
        let harness = Harness::grouped(source, quick_backoff(3), &shutdown);
        let settings = Settings {
            pollers: 1,
            ..settings(30)
        };
        let started = tokio::time::Instant::now();
        let task = tokio::spawn(run(settings, harness.shared.clone(), shutdown.clone()));

        until(started, Duration::from_millis(100)).await;
        assert_eq!(published_rules(&harness), ["critical-product"]);
        assert_eq!(harness.source().deleted(), ["m1"], "m0 waits for its group");
        assert!(
            harness
                .metrics()
                .contains("meterwatch_messages_in_flight 1")
        );

        // A group's first batch waits 2 s.
        until(started, Duration::from_millis(2_100)).await;
        assert_eq!(
            published_rules(&harness),
            ["critical-product", "throttled-burst"]
        );
        assert_eq!(harness.source().deleted(), ["m1", "m0"]);
        assert!(
            harness
                .metrics()
                .contains("meterwatch_messages_in_flight 0")
        );

        shutdown.cancel();
        assert_eq!(task.await.expect("joins"), Stopped::Drained);
    }

    #[tokio::test(start_paused = true)]
    async fn a_parked_message_stays_invisible_until_its_group_is_out() {
        let source = MemorySource::new([throttled()], 1)
            .keep_open()
            .with_visibility_timeout(Duration::from_secs(10));
        let shutdown = CancellationToken::new();
        let rule = GROUPED_RULE.replace("wait = \"2s\"", "wait = \"62s\"");
        let harness = Harness::grouped_as(source, quick_backoff(3), &shutdown, &rule);
        let started = tokio::time::Instant::now();
        let task = tokio::spawn(run(settings(30), harness.shared.clone(), shutdown.clone()));
        let renewals = || {
            let changes = harness.source().visibility_changes();
            assert!(
                changes
                    .iter()
                    .all(|change| *change == ("m0".to_owned(), Duration::from_secs(10))),
                "{changes:?}"
            );
            changes.len()
        };

        until(started, Duration::from_secs(61)).await;
        assert!(harness.source().deleted().is_empty());
        // Every 5 s (half the timeout) since it was received.
        assert_eq!(renewals(), 12);
        until(started, Duration::from_secs(63)).await;
        assert_eq!(harness.source().deleted(), ["m0"]);
        assert_eq!(harness.sink().accepted(), 1);
        until(started, Duration::from_secs(90)).await;
        assert_eq!(renewals(), 12, "none once deleted");

        shutdown.cancel();
        assert_eq!(task.await.expect("joins"), Stopped::Drained);
    }

    #[tokio::test(start_paused = true)]
    async fn parked_messages_are_released_when_grace_runs_out() {
        let source = MemorySource::new([throttled(), throttled_with_id("b")], 1).keep_open();
        let shutdown = CancellationToken::new();
        let backoff = fixed_backoff(100, Duration::from_secs(60));
        let harness = Harness::grouped(source, backoff, &shutdown);
        harness.sink().fail_next(1_000, true);
        let task = tokio::spawn(run(settings(8), harness.shared.clone(), shutdown.clone()));
        tokio::time::sleep(Duration::from_millis(500)).await;
        shutdown.cancel();
        assert_eq!(task.await.expect("joins"), Stopped::GraceExceeded);
        assert!(harness.source().deleted().is_empty());
        let mut released = harness.source().visibility_changes();
        released.sort();
        assert_eq!(
            released,
            [
                ("m0".to_owned(), Duration::ZERO),
                ("m1".to_owned(), Duration::ZERO)
            ]
        );
        assert!(
            harness
                .metrics()
                .contains("meterwatch_messages_failed_total{reason=\"shutdown\"} 2")
        );
        assert!(
            harness
                .metrics()
                .contains("meterwatch_messages_in_flight 0")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pollers_wait_while_every_place_is_taken() {
        // Room for one message: the critical one is received only once the grouped one is
        // deleted.
        let source = MemorySource::new([throttled(), critical()], 1).keep_open();
        let shutdown = CancellationToken::new();
        let harness = Harness::grouped(source, quick_backoff(3), &shutdown);
        let settings = Settings {
            max_in_flight: 1,
            ..settings(30)
        };
        let started = tokio::time::Instant::now();
        let task = tokio::spawn(run(settings, harness.shared.clone(), shutdown.clone()));
        until(started, Duration::from_millis(1_900)).await;
        assert!(published_rules(&harness).is_empty());
        until(started, Duration::from_millis(2_100)).await;
        assert_eq!(
            published_rules(&harness),
            ["throttled-burst", "critical-product"]
        );
        shutdown.cancel();
        assert_eq!(task.await.expect("joins"), Stopped::Drained);
    }

    #[tokio::test(start_paused = true)]
    async fn finite_source_is_processed_and_only_done_messages_deleted() {
        let bodies = [throttled(), ok_event(), "not json".to_owned(), throttled()];
        let harness = Harness::new(MemorySource::new(bodies, 3), quick_backoff(3));
        let stopped = run(
            settings(5),
            harness.shared.clone(),
            CancellationToken::new(),
        )
        .await;
        assert_eq!(stopped, Stopped::Exhausted);
        let mut deleted = harness.source().deleted();
        deleted.sort();
        assert_eq!(
            deleted,
            ["m0", "m1", "m3"],
            "the poison message m2 is never deleted"
        );
        // m3 repeats m0's event: deleted, but deduplicated to one alert.
        assert_eq!(harness.sink().accepted(), 1);
        let text = harness.metrics();
        assert!(
            text.contains("meterwatch_messages_received_total 4"),
            "{text}"
        );
        assert!(
            text.contains("meterwatch_messages_deleted_total 3"),
            "{text}"
        );
        assert!(
            text.contains("meterwatch_messages_poison_total{reason=\"not_json\"} 1"),
            "{text}"
        );
        assert!(text.contains("meterwatch_messages_in_flight 0"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn failed_publish_leaves_the_message() {
        let harness = Harness::new(MemorySource::new([throttled()], 10), quick_backoff(3));
        harness.sink().fail_next(3, true);
        harness.run_to_end(5).await;
        assert!(harness.source().deleted().is_empty());
        assert_eq!(harness.sink().attempts(), 3);
        assert!(
            harness
                .metrics()
                .contains("meterwatch_messages_failed_total{reason=\"publish\"} 1")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn refused_delete_entry_is_counted_not_assumed() {
        let source = MemorySource::new([throttled(), throttled()], 10);
        source.fail_delete_of("m1");
        let harness = Harness::new(source, quick_backoff(1));
        harness.run_to_end(5).await;
        assert_eq!(harness.source().deleted(), ["m0"]);
        let text = harness.metrics();
        assert!(
            text.contains("meterwatch_messages_deleted_total 1"),
            "{text}"
        );
        assert!(
            text.contains("meterwatch_messages_failed_total{reason=\"delete\"} 1"),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn slow_messages_have_their_visibility_renewed() {
        let source =
            MemorySource::new([throttled()], 10).with_visibility_timeout(Duration::from_secs(10));
        // Four retryable failures, 4 s apart at most: up to 16 s of work on one message (the
        // jitter seeded, so the same every run).
        fastrand::seed(20_200_710);
        let backoff = fixed_backoff(5, Duration::from_secs(4));
        let harness = Harness::new(source, backoff);
        harness.sink().fail_next(4, true);
        let started = tokio::time::Instant::now();
        harness.run_to_end(60).await;
        let elapsed = started.elapsed();
        assert_eq!(harness.source().deleted(), ["m0"]);
        let renewals = harness.source().visibility_changes();
        // One renewal per 5 s (half the timeout) of work.
        let expected = (elapsed.as_secs() / 5) as usize;
        assert_eq!(
            renewals.len(),
            expected,
            "elapsed {elapsed:?}: {renewals:?}"
        );
        assert!(
            renewals
                .iter()
                .all(|(id, timeout)| id == "m0" && *timeout == Duration::from_secs(10))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_done_message_stays_invisible_while_its_batch_waits_for_a_slow_one() {
        // m1 raises no alert and is done at once; m0 retries 20 times, 0 to 4 s apart (about
        // 40 s). The jitter is seeded: the runtime runs on this thread, so the waits, and the
        // renewals due, are the same every run.
        fastrand::seed(20_200_710);
        let source = MemorySource::new([throttled(), ok_event()], 10)
            .with_visibility_timeout(Duration::from_secs(10));
        let backoff = fixed_backoff(21, Duration::from_secs(4));
        let harness = Harness::new(source, backoff);
        harness.sink().fail_next(20, true);
        let started = tokio::time::Instant::now();
        harness.run_to_end(60).await;
        let n_due = (started.elapsed().as_secs() / 5) as usize;
        assert_eq!(harness.source().deleted(), ["m1", "m0"], "in one batch");
        let renewals = harness.source().visibility_changes();
        let renewed = |id: &str| renewals.iter().filter(|(m, _)| m == id).count();
        assert!(n_due >= 1);
        assert_eq!(
            (renewed("m0"), renewed("m1")),
            (n_due, n_due),
            "{renewals:?}"
        );
    }

    /// SQS refuses a visibility beyond 12 hours from the receive: a late failure's backoff
    /// is cut to what is left of them.
    #[tokio::test(start_paused = true)]
    async fn a_backoff_ends_within_twelve_hours_of_the_receive() {
        let message = crate::source::Message {
            id: "m0".to_owned(),
            body: String::new(),
            receipt: crate::source::Receipt("r0".to_owned()),
            receive_count: 5,
            sent_at: None,
        };
        let metrics = Metrics::default();
        let received_at = tokio::time::Instant::now();
        let visibility = Some(Duration::from_secs(300));
        let verdict = || Verdict::Failed(crate::telemetry::metrics::FailReason::Publish);
        // 300 s × 4^4 is over 21 hours: at the receive, the 12 hours less a margin.
        let at_once = stage_after(&message, verdict(), (visibility, received_at), &metrics);
        assert!(matches!(at_once, Stage::Retry(d) if d == Duration::from_secs(12 * 3600 - 60)));
        tokio::time::advance(Duration::from_secs(11 * 3600)).await;
        let late = stage_after(&message, verdict(), (visibility, received_at), &metrics);
        assert!(matches!(late, Stage::Retry(d) if d == Duration::from_secs(3600 - 60)));
    }

    #[test]
    fn retries_back_off_with_the_receive_count_up_to_twelve_hours() {
        let minute = Duration::from_secs(60);
        let backoffs: Vec<Duration> = (1..=5).map(|n| retry_after(minute, n)).collect();
        assert_eq!(
            backoffs,
            [minute, minute * 4, minute * 16, minute * 64, minute * 256]
        );
        // The shipped redrive (5 receives) outlasts an hour's outage: the 5th receive comes
        // 85 minutes after the first failure.
        assert!(backoffs[..4].iter().sum::<Duration>() > Duration::from_secs(3600));
        assert_eq!(retry_after(minute, 9), Duration::from_secs(12 * 3600));
        assert_eq!(
            retry_after(minute, u32::MAX),
            Duration::from_secs(12 * 3600)
        );
        // A claim found on a first or second receive: the backoff (its holder is likely
        // publishing, if slowly).
        let lease = crate::state::dedup::LEASE;
        assert_eq!(in_flight_after(minute, 1, lease), minute);
        assert_eq!(in_flight_after(minute, 2, lease), minute * 4);
        // Still standing on a later one: its rest, if longer than the backoff.
        let short = Duration::from_secs(2);
        assert_eq!(
            in_flight_after(short, 3, lease),
            lease + Duration::from_secs(5)
        );
        assert_eq!(in_flight_after(minute, 4, lease), minute * 64);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_message_comes_back_after_a_backoff_growing_with_its_receive_count() {
        // Its third receive: SNS has been failing for a while.
        let source = MemorySource::new([throttled()], 10)
            .with_visibility_timeout(Duration::from_secs(60))
            .with_receive_count(3);
        let harness = Harness::new(source, quick_backoff(3));
        harness.sink().fail_next(3, true);
        harness.run_to_end(5).await;
        assert!(harness.source().deleted().is_empty());
        assert_eq!(
            harness.source().visibility_changes(),
            [("m0".to_owned(), Duration::from_secs(16 * 60))]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_poison_message_keeps_the_queues_visibility_timeout() {
        let source = MemorySource::new(["not json"], 10)
            .with_visibility_timeout(Duration::from_secs(60))
            .with_receive_count(3);
        let harness = Harness::new(source, quick_backoff(3));
        harness.run_to_end(5).await;
        assert!(harness.source().deleted().is_empty());
        assert!(harness.source().visibility_changes().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_blocked_by_a_dedup_claim_comes_back_when_the_claim_runs_out() {
        // Two deliveries of one event in one batch, on their third receive (the claim
        // already stood on the first two): whichever claims first publishes (after two
        // failures); the other finds its claim standing.
        // A short visibility, so that the backoff (2 s × 4²) is shorter than the lease.
        let source = MemorySource::new([throttled(), throttled()], 10)
            .with_visibility_timeout(Duration::from_secs(2))
            .with_receive_count(3);
        let harness = Harness::new(source, quick_backoff(3));
        harness.sink().fail_next(2, true);
        harness.run_to_end(5).await;
        let deleted = harness.source().deleted();
        assert_eq!(deleted.len(), 1, "{deleted:?}");
        assert_eq!(harness.sink().accepted(), 1);
        let blocked = if deleted[0] == "m0" { "m1" } else { "m0" };
        // Not back after its backoff, again and again into the DLQ while the claim stands,
        // but once the claim's lease has run out.
        assert_eq!(
            harness.source().visibility_changes(),
            [(
                blocked.to_owned(),
                crate::state::dedup::LEASE + Duration::from_secs(5)
            )]
        );
        assert!(
            harness
                .metrics()
                .contains("meterwatch_messages_failed_total{reason=\"in_flight\"} 1")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_duplicate_delivery_finding_a_claim_comes_back_soon_to_be_deleted() {
        // First receive: the claim's holder is publishing right now, most likely.
        let source = MemorySource::new([throttled(), throttled()], 10)
            .with_visibility_timeout(Duration::from_secs(60));
        let harness = Harness::new(source, quick_backoff(3));
        harness.sink().fail_next(2, true);
        harness.run_to_end(5).await;
        let deleted = harness.source().deleted();
        let blocked = if deleted[0] == "m0" { "m1" } else { "m0" };
        assert_eq!(
            harness.source().visibility_changes(),
            [(blocked.to_owned(), Duration::from_secs(60))]
        );
    }
}
