//! Where messages come from: an SQS queue ([`sqs`]), event files or standard input ([`file`](mod@file)),
//! or memory ([`memory`], for tests and benchmarks).
//!
//! A [`Source`] hands out [`Message`]s and later hears what became of them: deleted (every
//! alert delivered), made visible again at once (unfinished at shutdown), or kept invisible a
//! while longer (still being worked on). Only `sqs.rs` names AWS SDK types.

pub mod file;
pub mod memory;
pub mod sqs;

use std::time::Duration;

pub use file::FileSource;
pub use memory::MemorySource;
pub use sqs::SqsSource;

/// Boxed cause of a source error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One message as received.
#[derive(Debug, Clone)]
pub struct Message {
    /// The source's id (the SQS `MessageId`, or `FILE:LINE`): what logs name.
    pub id: String,
    /// The body, decoded by [`crate::envelope::decode`].
    pub body: String,
    /// What deletes it or changes its visibility (the SQS receipt handle).
    pub receipt: Receipt,
    /// How many times it has been received, this time included (`ApproximateReceiveCount`).
    pub receive_count: u32,
    /// When the queue got it (`SentTimestamp`); `None` for sources that do not say.
    pub sent_at: Option<std::time::SystemTime>,
}

/// An opaque handle on a received message (the SQS receipt handle); never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Receipt(pub(crate) String);

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Receipt(..)")
    }
}

/// What one receive returned.
#[derive(Debug)]
pub enum Received {
    /// Messages (possibly none: a long poll that timed out).
    Messages(Vec<Message>),
    /// A finite source has nothing more and never will.
    Exhausted,
}

/// A message the source could not delete or change, as its batch call reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFailure {
    pub message_id: String,
    /// The service's error code, e.g. `ReceiptHandleIsInvalid`.
    pub code: String,
    pub reason: String,
}

/// What the daemon learns about the source at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceInfo {
    /// The queue moves messages received too often to a dead-letter queue.
    pub has_redrive_policy: bool,
    /// `maxReceiveCount` of the redrive policy, if readable.
    pub max_receive_count: Option<u32>,
}

/// A source failed as a whole (not one entry of a batch).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{operation} failed: {message}")]
    Call {
        operation: &'static str,
        message: String,
        /// Whether trying again may succeed (throttling, a timeout, a dropped connection),
        /// unlike a missing queue or denied access, which need an operator.
        retryable: bool,
        /// The service's error code (see [`crate::aws::error_code`]).
        code: String,
        #[source]
        source: Option<BoxError>,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Every kind of source, dispatched without boxing.
#[derive(Debug)]
pub enum Source {
    Sqs(SqsSource),
    File(FileSource),
    Memory(MemorySource),
}

impl Source {
    /// The next messages. A receive dropped in flight loses nothing, but SQS keeps the
    /// messages it handed out invisible for the visibility timeout and counts the receive:
    /// the daemon lets a queue's receive finish and releases what it returned.
    pub async fn receive(&self) -> Result<Received, SourceError> {
        match self {
            Source::Sqs(sqs) => sqs.receive().await,
            Source::File(file) => file.receive().await,
            Source::Memory(memory) => memory.receive().await,
        }
    }

    /// Deletes messages; returns the entries that failed (an `Ok` call is not "all deleted").
    pub async fn delete(&self, messages: &[&Message]) -> Vec<EntryFailure> {
        if messages.is_empty() {
            return Vec::new();
        }
        match self {
            Source::Sqs(sqs) => sqs.delete(messages).await,
            Source::File(_) => Vec::new(),
            Source::Memory(memory) => memory.delete(messages),
        }
    }

    /// Sets the messages' visibility timeout (0: visible again at once); returns the entries
    /// that failed.
    pub async fn change_visibility(
        &self,
        messages: &[&Message],
        timeout: Duration,
    ) -> Vec<EntryFailure> {
        if messages.is_empty() {
            return Vec::new();
        }
        match self {
            Source::Sqs(sqs) => sqs.change_visibility(messages, timeout).await,
            Source::File(_) => Vec::new(),
            Source::Memory(memory) => memory.change_visibility(messages, timeout),
        }
    }

    /// The visibility timeout messages are received with, when the source has one: in-flight
    /// messages are renewed every half of it.
    pub fn visibility_timeout(&self) -> Option<Duration> {
        match self {
            Source::Sqs(sqs) => Some(sqs.visibility_timeout()),
            Source::File(_) => None,
            Source::Memory(memory) => memory.visibility_timeout(),
        }
    }

    /// The most messages one receive returns.
    pub fn batch_size(&self) -> usize {
        match self {
            Source::Sqs(sqs) => sqs.batch_size(),
            Source::File(_) => file::BATCH_SIZE,
            Source::Memory(memory) => memory.batch_size(),
        }
    }

    /// Checks the source is reachable and reports how it is set up.
    pub async fn probe(&self) -> Result<SourceInfo, SourceError> {
        match self {
            Source::Sqs(sqs) => sqs.probe().await,
            Source::File(_) | Source::Memory(_) => Ok(SourceInfo {
                has_redrive_policy: true,
                max_receive_count: None,
            }),
        }
    }

    /// Whether received messages stay invisible until deleted or released (a queue, or a
    /// test's imitation of one): a receive in flight then must not be dropped at shutdown.
    pub fn leases_messages(&self) -> bool {
        matches!(self, Source::Sqs(_) | Source::Memory(_))
    }

    /// Whether the source is a remote queue (readiness then requires reaching it).
    pub fn is_remote(&self) -> bool {
        matches!(self, Source::Sqs(_))
    }

    /// How many files a finite source reads (stdin is one); `None` for a queue.
    pub fn n_files(&self) -> Option<usize> {
        match self {
            Source::Sqs(_) => None,
            Source::File(file) => Some(file.n_files()),
            Source::Memory(_) => Some(1),
        }
    }

    /// A name for logs: the queue URL, or the kind of source.
    pub fn describe(&self) -> String {
        match self {
            Source::Sqs(sqs) => sqs.queue_url().to_owned(),
            Source::File(file) => file.describe(),
            Source::Memory(_) => "memory".to_owned(),
        }
    }
}
