//! Messages waiting for their groups' flushes, held apart from the batch they came in.
//!
//! A grouped match waits for its group's summary up to the group's `interval` (5 minutes by
//! default), and its message may be deleted only once that summary is out. Were its batch
//! ([`super::ack`]) to wait for it, the poller would receive nothing meanwhile: every other
//! alert would wait too. So a batch hands over its messages that have nothing left but that
//! wait ([`Pipeline::process_parking`](super::pipeline::Pipeline::process_parking)), and the
//! hold does what the batch would have: keeps them invisible (renewing their visibility),
//! deletes each once it is done, leaves it for redelivery if it failed, and at the hard stop
//! aborts it and makes it visible again at once. Its tasks run under the daemon's tracker,
//! so a drain waits for them too (at shutdown every group flushes at once).
//!
//! Held messages are bounded: a poller reserves a place for each message of a batch before
//! receiving it ([`Hold::reserve`]); a held message keeps its place until it is finished,
//! the others' go back when their batch ends. While the hold is full, pollers wait instead
//! of receiving messages they could not hold.

use super::ack::{self, Outcome};
use super::pipeline::Verdict;
use crate::source::{Message, Source};
use crate::telemetry::Metrics;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinSet};
use tokio::time::{Instant, Interval};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How many messages may be held (and in batches) at once: a few kilobytes each (the body
/// and its boxed processing future), so a few megabytes in all, and far more than a steady
/// flow of grouped alerts fills within a group interval.
pub const DEFAULT_MAX_HELD: usize = 1000;

/// Holds messages waiting for their groups; shared by every poller.
#[derive(Debug, Clone)]
pub struct Hold {
    source: Arc<Source>,
    metrics: Arc<Metrics>,
    tasks: TaskTracker,
    hard_stop: CancellationToken,
    places: Arc<Semaphore>,
    capacity: usize,
}

/// Places reserved for one batch's messages; those its held messages do not take go back
/// when it is dropped.
#[derive(Debug)]
pub struct Reserved(OwnedSemaphorePermit);

/// A batch's messages that wait for their groups, handed over with what the batch knew.
#[derive(Debug)]
pub struct Parked {
    /// Their processing, still running.
    pub tasks: JoinSet<(usize, Verdict)>,
    /// By their index in the batch (what the tasks return).
    pub messages: Vec<(usize, Arc<Message>)>,
    /// Which message a task processes, for a task that panicked.
    pub task_messages: HashMap<tokio::task::Id, usize>,
    pub received_at: Instant,
    /// The batch's visibility renewals, continued on the same schedule: the messages were
    /// last renewed up to a period ago.
    pub ticks: Interval,
}

impl Hold {
    /// A hold for at most `capacity` messages (at least one batch), whose tasks run under
    /// `tasks`.
    pub fn new(
        source: Arc<Source>,
        metrics: Arc<Metrics>,
        tasks: TaskTracker,
        hard_stop: CancellationToken,
        capacity: usize,
    ) -> Hold {
        let capacity = capacity.max(source.batch_size()).max(1);
        Hold {
            source,
            metrics,
            tasks,
            hard_stop,
            places: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// Reserves a place for each message of the next batch, waiting while held messages
    /// fill the hold.
    pub async fn reserve(&self) -> Reserved {
        let n = self.source.batch_size().clamp(1, self.capacity);
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let permit = Arc::clone(&self.places)
            .acquire_many_owned(n)
            .await
            .expect("the hold's semaphore is never closed");
        Reserved(permit)
    }

    /// Takes over `parked`, each message keeping one of the places `reserved` for its batch,
    /// and sees them to the end in a task of its own.
    pub fn adopt(&self, parked: Parked, reserved: &mut Reserved) {
        let places = parked
            .messages
            .iter()
            // A batch never has more messages than places reserved for it; were one
            // missing, the message would be held all the same, just not counted.
            .filter_map(|(idx, _)| Some((*idx, reserved.0.split(1)?)))
            .collect();
        self.tasks.spawn(self.clone().run(parked, places));
    }

    async fn run(self, parked: Parked, mut places: HashMap<usize, OwnedSemaphorePermit>) {
        let Parked {
            mut tasks,
            messages,
            task_messages,
            received_at,
            mut ticks,
        } = parked;
        let mut unfinished: HashMap<usize, Arc<Message>> = messages.into_iter().collect();
        let renewal = self.source.visibility_timeout();
        let mut abandoned = false;
        while !tasks.is_empty() {
            tokio::select! {
                biased;
                joined = tasks.join_next() => {
                    let (mut done, mut retries) = (Vec::new(), Vec::new());
                    let mut joined = joined;
                    while let Some(result) = joined {
                        let idx = self.finished(result, (&task_messages, received_at), &mut unfinished, (&mut done, &mut retries));
                        if let Some(idx) = idx {
                            self.metrics
                                .message_processing_seconds
                                .observe(received_at.elapsed().as_secs_f64());
                            places.remove(&idx);
                        }
                        // A group's members finish together: deleted in one call.
                        joined = tasks.try_join_next();
                    }
                    ack::delete(&self.source, &self.metrics, &done).await;
                    self.metrics.messages_in_flight.dec_by(done.len() as i64);
                    ack::set_visibility(&self.source, &self.metrics, retries).await;
                }
                _ = self.hard_stop.cancelled(), if !abandoned => {
                    abandoned = true;
                    tasks.abort_all();
                }
                _ = ticks.tick(), if renewal.is_some() => {
                    let Some(timeout) = renewal else { continue };
                    let pending: Vec<&Message> = unfinished.values().map(AsRef::as_ref).collect();
                    ack::renew(&self.source, &self.metrics, &pending, timeout).await;
                }
            }
        }

        // What is left was aborted at the hard stop: visible again at once.
        let pending: Vec<&Message> = unfinished.values().map(AsRef::as_ref).collect();
        ack::release(&self.source, &self.metrics, &pending).await;
        self.metrics.messages_in_flight.dec_by(pending.len() as i64);
    }

    /// Records a finished task: a done message goes onto `done`, one left for redelivery
    /// after a delay onto `retries`. Returns the message's index, unless its task was
    /// aborted (released at the end).
    fn finished(
        &self,
        result: Result<(usize, Verdict), JoinError>,
        (task_messages, received_at): (&HashMap<tokio::task::Id, usize>, Instant),
        unfinished: &mut HashMap<usize, Arc<Message>>,
        (done, retries): (&mut Vec<Arc<Message>>, &mut ack::Retries),
    ) -> Option<usize> {
        let (idx, verdict) = ack::verdict_of(result, task_messages)?;
        let message = unfinished.remove(&idx)?;
        let renewal = self.source.visibility_timeout();
        match ack::outcome(&message, verdict, (renewal, received_at), &self.metrics) {
            // Counted out of flight once deleted.
            Outcome::Delete => {
                done.push(message);
                return Some(idx);
            }
            Outcome::Leave => {}
            Outcome::Retry(retry_in) => retries.push((message, retry_in)),
        }
        self.metrics.messages_in_flight.dec();
        Some(idx)
    }
}
