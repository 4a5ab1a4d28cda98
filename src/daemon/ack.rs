//! One received batch, from in flight to acknowledged: its messages are processed
//! concurrently, kept invisible while they take long, deleted in one batch once each is
//! done, and made visible again at once if the shutdown grace runs out first.
//!
//! The at-least-once contract lives here: a message is deleted only after
//! [`Pipeline::process`] said [`Verdict::Done`]; every other verdict leaves it in the queue.
//! A delete that SQS refuses for one entry is logged and counted; that message is redelivered
//! (a duplicate alert, never a lost one).
//!
//! A message left after a failure comes back after a backoff that grows with its receive
//! count ([`retry_after`]), set as its visibility timeout, so that the queue's redrive limit
//! outlasts an outage of the sinks or the state store rather than a few visibility timeouts;
//! one held by another delivery's dedup claim comes back after the same backoff, twice, then,
//! if the claim still stands, once it has run out ([`in_flight_after`]). Poison
//! keeps the queue's visibility timeout: the redrive policy moves it to the DLQ soon.
//!
//! A batch ends once each of its messages is finished or only waits for its groups' flushes:
//! those are handed to the [`Hold`], which sees them to the end, so that the poller receives
//! again meanwhile.

use super::hold::{Hold, Parked, Reserved};
use super::pipeline::{Pipeline, Verdict};
use crate::source::{Message, Source};
use crate::telemetry::Metrics;
use crate::telemetry::events::{EntryFailed, MessageLeft};
use crate::telemetry::metrics::FailReason;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
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

/// How long a message left after a failure on its `receive_count`th receive stays invisible:
/// the visibility timeout, ×4 on each receive after the first, at most SQS's 12 hours. With
/// the shipped 60 s and 5 receives before the DLQ: back after 1, 4, 16 and 64 minutes, so a
/// sink or store outage of about 85 minutes is outlasted (at ×2 it would be 15).
pub fn retry_after(visibility: Duration, receive_count: u32) -> Duration {
    let factor = RETRY_GROWTH.saturating_pow(receive_count.saturating_sub(1));
    visibility.saturating_mul(factor).min(MAX_VISIBILITY)
}

/// How long a message held by another delivery's dedup claim (`remaining` of it) stays
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

/// Processes one batch until each message is finished or waits for its groups (handed to
/// `hold`, in places `reserved` for the batch). `hard_stop` fires when the shutdown grace is
/// about to run out: unfinished messages are then abandoned and made visible again.
pub async fn handle_batch(
    source: &Source,
    pipeline: &Arc<Pipeline>,
    metrics: &Metrics,
    messages: Vec<Message>,
    hard_stop: &CancellationToken,
    (hold, mut reserved): (&Hold, Reserved),
) {
    let n_messages = messages.len();
    let received_at = Instant::now();
    metrics.messages_received.inc_by(n_messages as u64);
    metrics.messages_in_flight.inc_by(n_messages as i64);

    let messages: Vec<Arc<Message>> = messages.into_iter().map(Arc::new).collect();
    let mut unfinished = vec![true; n_messages];
    // Messages to keep invisible: the unfinished ones and the done ones until the batch's
    // delete. A done message left to time out while a slower one holds the batch would be
    // received and processed again by another consumer (a second alert, were it not for
    // dedup); the ones left for redelivery are not renewed.
    let mut held = vec![true; n_messages];
    // Messages that only wait for their groups' flushes (they say so on `parked`).
    let mut waiting = vec![false; n_messages];
    let (parked_tx, mut parked_rx) = mpsc::unbounded_channel();
    let mut tasks = JoinSet::new();
    let mut task_messages = HashMap::new();
    for (idx, message) in messages.iter().enumerate() {
        let pipeline = Arc::clone(pipeline);
        let message = Arc::clone(message);
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
            // message runs unparked.
            let parked = move || {
                let _ = parked_tx.send(idx);
            };
            (idx, pipeline.process_parking(&message, parked).await)
        });
        let task = tasks.spawn(process.instrument(span));
        task_messages.insert(task.id(), idx);
    }

    // Renew the visibility of unfinished messages every half timeout, so that a slow publish
    // (retries, a throttled topic) never lets another consumer receive the same message.
    let renewal = source.visibility_timeout();
    // Without a visibility timeout the ticker is never polled (`if renewal.is_some()`).
    let period = renewal.map_or(Duration::from_secs(3600), |timeout| {
        (timeout / 2).max(Duration::from_millis(500))
    });
    let mut ticks = tokio::time::interval_at(received_at + period, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);

    drop(parked_tx);
    let mut done = Vec::new();
    // Messages left for redelivery, and when each should come back. They stay held until
    // the batch ends, then get that visibility (one call for all, not one per failure).
    let mut retries: Retries = Vec::new();
    let mut abandoned = false;
    let running = |unfinished: &[bool], waiting: &[bool]| {
        unfinished
            .iter()
            .zip(waiting)
            .any(|(unfinished, waiting)| *unfinished && !*waiting)
    };
    // Aborted at the hard stop, the waiting are released here with the rest.
    while !tasks.is_empty() && (abandoned || running(&unfinished, &waiting)) {
        tokio::select! {
            biased;
            joined = tasks.join_next() => {
                let Some(joined) = joined else { break };
                // Aborted at the hard stop: released below.
                let Some((idx, verdict)) = verdict_of(joined, &task_messages) else { continue };
                unfinished[idx] = false;
                let message = &messages[idx];
                metrics.message_processing_seconds.observe(received_at.elapsed().as_secs_f64());
                match outcome(message, verdict, (renewal, received_at), metrics) {
                    Outcome::Delete => done.push(Arc::clone(message)),
                    Outcome::Leave => held[idx] = false,
                    Outcome::Retry(retry_in) => retries.push((Arc::clone(message), retry_in)),
                }
            }
            Some(idx) = parked_rx.recv() => {
                if let Some(waiting) = waiting.get_mut(idx) {
                    *waiting = true;
                }
            }
            _ = hard_stop.cancelled(), if !abandoned => {
                abandoned = true;
                tasks.abort_all();
            }
            _ = ticks.tick(), if renewal.is_some() => {
                let Some(timeout) = renewal else { continue };
                renew(source, metrics, &select(&messages, &held), timeout).await;
            }
        }
    }

    let mut n_parked = 0;
    if !tasks.is_empty() {
        let parked: Vec<(usize, Arc<Message>)> = (0..n_messages)
            .filter(|&idx| unfinished[idx])
            .map(|idx| (idx, Arc::clone(&messages[idx])))
            .collect();
        n_parked = parked.len();
        for (idx, _) in &parked {
            unfinished[*idx] = false;
        }
        let parked = Parked {
            tasks,
            messages: parked,
            task_messages,
            received_at,
            ticks,
        };
        hold.adopt(parked, &mut reserved);
    }

    delete(source, metrics, &done).await;
    set_visibility(source, metrics, retries).await;
    release(source, metrics, &select(&messages, &unfinished)).await;
    // The held ones are counted down by the hold.
    metrics
        .messages_in_flight
        .dec_by((n_messages - n_parked) as i64);
}

/// The message index and verdict of a joined task: a panicked one's is a failure (logged;
/// its message comes back after a failure's backoff, not at once: a message that panics
/// would spin). `None` for a task aborted at the hard stop, whose message is released.
pub(super) fn verdict_of(
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

/// Messages left for redelivery, each with when it should come back.
pub(super) type Retries = Vec<(Arc<Message>, Duration)>;

/// What becomes of a message whose processing is over.
pub(super) enum Outcome {
    Delete,
    /// Left to the queue's visibility timeout (poison, or a source without one).
    Leave,
    /// Left for redelivery after this long (set as its visibility timeout).
    Retry(Duration),
}

/// What becomes of `message` after `verdict` (`renewal`: the source's visibility timeout);
/// a message left for redelivery is logged and counted with why.
pub(super) fn outcome(
    message: &Message,
    verdict: Verdict,
    (renewal, received_at): (Option<Duration>, Instant),
    metrics: &Metrics,
) -> Outcome {
    let (reason, retry_in) = match verdict {
        Verdict::Done => return Outcome::Delete,
        // Poison was logged and counted where it was found.
        Verdict::Poison => return Outcome::Leave,
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
    retry_in.map_or(Outcome::Leave, Outcome::Retry)
}

/// Deletes the done messages, counting those deleted and logging those SQS refused.
pub(super) async fn delete(source: &Source, metrics: &Metrics, done: &[Arc<Message>]) {
    if done.is_empty() {
        return;
    }
    let done: Vec<&Message> = done.iter().map(AsRef::as_ref).collect();
    let failures = source.delete(&done).await;
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
pub(super) async fn renew(
    source: &Source,
    metrics: &Metrics,
    pending: &[&Message],
    timeout: Duration,
) {
    metrics.visibility_extensions.inc_by(pending.len() as u64);
    change_visibility(source, metrics, pending, timeout).await;
}

/// Gives each message left for redelivery its delay, in one call per delay (a batch's
/// failures mostly share one receive count).
pub(super) async fn set_visibility(source: &Source, metrics: &Metrics, mut retries: Retries) {
    retries.sort_by_key(|(_, retry_in)| *retry_in);
    for same_delay in retries.chunk_by(|a, b| a.1 == b.1) {
        let retry_in = same_delay[0].1;
        let messages: Vec<&Message> = same_delay
            .iter()
            .map(|(message, _)| message.as_ref())
            .collect();
        change_visibility(source, metrics, &messages, retry_in).await;
    }
}

/// Makes messages abandoned at the hard stop visible again at once, saying so.
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

/// The messages still flagged.
fn select<'a>(messages: &'a [Arc<Message>], flags: &[bool]) -> Vec<&'a Message> {
    messages
        .iter()
        .zip(flags)
        .filter(|(_, flag)| **flag)
        .map(|(message, _)| message.as_ref())
        .collect()
}
