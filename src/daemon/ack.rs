//! One received batch, from in flight to acknowledged: its messages are processed
//! concurrently, kept invisible while they take long, deleted in one batch once each is
//! done, and made visible again at once if the shutdown grace runs out first.
//!
//! The at-least-once contract lives here: a message is deleted only after
//! [`Pipeline::process`] said [`Verdict::Done`]; every other verdict leaves it in the queue.
//! A delete that SQS refuses for one entry is logged and counted; that message is redelivered
//! (a duplicate alert, never a lost one).
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
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

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
                match joined {
                    Ok((idx, verdict)) => {
                        unfinished[idx] = false;
                        let message = &messages[idx];
                        metrics.message_processing_seconds.observe(received_at.elapsed().as_secs_f64());
                        match verdict {
                            Verdict::Done => done.push(Arc::clone(message)),
                            // Poison was logged and counted where it was found.
                            Verdict::Poison => held[idx] = false,
                            Verdict::Failed(reason) => {
                                held[idx] = false;
                                MessageLeft { message_id: &message.id, reason }.emit(metrics);
                            }
                        }
                    }
                    // Aborted at the hard stop: released below.
                    Err(error) if error.is_cancelled() => {}
                    // A panic is a bug: log it and leave the message for redelivery after its
                    // visibility timeout (not at once: a message that panics would spin).
                    Err(error) => {
                        tracing::error!(error = %error, "Message task panicked.");
                        if let Some(&idx) = task_messages.get(&error.id()) {
                            unfinished[idx] = false;
                            held[idx] = false;
                            MessageLeft { message_id: &messages[idx].id, reason: FailReason::Internal }.emit(metrics);
                        }
                    }
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
                let pending = select(&messages, &held);
                metrics.visibility_extensions.inc_by(pending.len() as u64);
                for failure in source.change_visibility(&pending, timeout).await {
                    EntryFailed { operation: "change_visibility", failure: &failure }.emit(metrics);
                }
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

    let pending = select(&messages, &unfinished);
    if !pending.is_empty() {
        for message in &pending {
            MessageLeft {
                message_id: &message.id,
                reason: FailReason::Shutdown,
            }
            .emit(metrics);
        }
        for failure in source.change_visibility(&pending, Duration::ZERO).await {
            EntryFailed {
                operation: "change_visibility",
                failure: &failure,
            }
            .emit(metrics);
        }
    }
    // The held ones are counted down by the hold.
    metrics
        .messages_in_flight
        .dec_by((n_messages - n_parked) as i64);
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
