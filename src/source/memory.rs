//! A queue in memory, for tests and `bench-pipeline`: it hands out its messages in batches,
//! records deletes and visibility changes, and can fail chosen deletes.

use super::{EntryFailure, Message, Receipt, Received, SourceError};
use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// An in-memory queue. Locks are std mutexes held only for a push or pop, never across an
/// `.await`.
#[derive(Debug)]
pub struct MemorySource {
    pending: Mutex<VecDeque<Message>>,
    batch_size: usize,
    /// When empty: `false` reports exhausted, `true` answers empty after a long poll (like
    /// an idle queue).
    keep_open: bool,
    /// How long a receive waits before answering: a long poll's wait when empty, and SQS's
    /// delay in handing out messages when set with [`MemorySource::answer_after`].
    wait: Duration,
    /// Whether messages, too, are answered only after `wait`.
    slow: bool,
    visibility_timeout: Option<Duration>,
    fail_deletes: Mutex<HashSet<String>>,
    deleted: Mutex<Vec<String>>,
    visibility_changes: Mutex<Vec<(String, Duration)>>,
}

impl MemorySource {
    /// A finite queue of `bodies` (ids `m0`, `m1`…), received `batch_size` at a time.
    pub fn new<I, S>(bodies: I, batch_size: usize) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let pending = bodies
            .into_iter()
            .enumerate()
            .map(|(idx, body)| Message {
                id: format!("m{idx}"),
                body: body.into(),
                receipt: Receipt(format!("r{idx}")),
                receive_count: 1,
                sent_at: None,
            })
            .collect();
        MemorySource {
            pending: Mutex::new(pending),
            batch_size: batch_size.max(1),
            keep_open: false,
            wait: Duration::from_secs(1),
            slow: false,
            visibility_timeout: None,
            fail_deletes: Mutex::default(),
            deleted: Mutex::default(),
            visibility_changes: Mutex::default(),
        }
    }

    /// Once empty, answers empty receives after a 1 s long poll instead of reporting
    /// exhausted.
    pub fn keep_open(mut self) -> Self {
        self.keep_open = true;
        self
    }

    /// Every receive answers only after `wait`, messages included (a receive in flight).
    pub fn answer_after(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self.slow = true;
        self
    }

    /// Behave like a queue with this visibility timeout (in-flight messages get renewed).
    pub fn with_visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = Some(timeout);
        self
    }

    /// Every message as received this many times (`ApproximateReceiveCount`).
    pub fn with_receive_count(self, receive_count: u32) -> Self {
        for message in lock(&self.pending).iter_mut() {
            message.receive_count = receive_count;
        }
        self
    }

    /// Deleting the message with this id will fail.
    pub fn fail_delete_of(&self, message_id: &str) {
        lock(&self.fail_deletes).insert(message_id.to_owned());
    }

    /// Ids deleted so far, in order.
    pub fn deleted(&self) -> Vec<String> {
        lock(&self.deleted).clone()
    }

    /// Visibility changes so far, in order.
    pub fn visibility_changes(&self) -> Vec<(String, Duration)> {
        lock(&self.visibility_changes).clone()
    }

    pub(super) async fn receive(&self) -> Result<Received, SourceError> {
        if self.slow {
            tokio::time::sleep(self.wait).await;
        }
        let batch: Vec<Message> = {
            let mut pending = lock(&self.pending);
            let n = self.batch_size.min(pending.len());
            pending.drain(..n).collect()
        };
        if !batch.is_empty() {
            return Ok(Received::Messages(batch));
        }
        if self.keep_open {
            if !self.slow {
                tokio::time::sleep(self.wait).await;
            }
            return Ok(Received::Messages(Vec::new()));
        }
        Ok(Received::Exhausted)
    }

    pub(super) fn delete(&self, messages: &[&Message]) -> Vec<EntryFailure> {
        let fail = lock(&self.fail_deletes);
        let mut deleted = lock(&self.deleted);
        let mut failures = Vec::new();
        for message in messages {
            if fail.contains(&message.id) {
                failures.push(EntryFailure {
                    message_id: message.id.clone(),
                    code: "InjectedFailure".to_owned(),
                    reason: "delete failure injected by the test".to_owned(),
                });
            } else {
                deleted.push(message.id.clone());
            }
        }
        failures
    }

    pub(super) fn change_visibility(
        &self,
        messages: &[&Message],
        timeout: Duration,
    ) -> Vec<EntryFailure> {
        let mut changes = lock(&self.visibility_changes);
        changes.extend(messages.iter().map(|m| (m.id.clone(), timeout)));
        Vec::new()
    }

    pub(super) fn batch_size(&self) -> usize {
        self.batch_size
    }

    pub(super) fn visibility_timeout(&self) -> Option<Duration> {
        self.visibility_timeout
    }
}

/// Locks a mutex; a poisoned one (a test thread panicked) still holds usable data.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
