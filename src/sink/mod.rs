//! Where alerts go: SNS ([`sns`]), standard output ([`stdout`]), a file ([`file`](mod@file)), or memory
//! ([`memory`], for tests and benchmarks); [`route`] decides which of them get an alert.
//!
//! A sink either accepts an alert or returns a [`PublishError`] saying whether trying again
//! may help; retrying with backoff is the daemon's job, so that every sink gets the same
//! policy and the same counters. Only `sns.rs` names AWS SDK types.

pub mod file;
pub mod memory;
pub mod route;
pub mod sns;
pub mod stdout;

use crate::alert::Alert;
use std::sync::Arc;

pub use file::FileSink;
pub use memory::MemorySink;
pub use route::Router;
pub use sns::SnsSink;
pub use stdout::{StdoutFormat, StdoutSink};

/// A sink did not accept an alert.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct PublishError {
    /// Whether the same publish may succeed later (throttling, timeouts, 5xx).
    pub retryable: bool,
    /// The service's error code or the I/O error kind, for logs.
    pub code: String,
    message: String,
}

impl PublishError {
    pub fn new(retryable: bool, code: impl Into<String>, message: impl Into<String>) -> Self {
        PublishError {
            retryable,
            code: code.into(),
            message: message.into(),
        }
    }

    fn io(error: &std::io::Error) -> Self {
        // A full disk or a closed pipe does not fix itself within a retry window, but an
        // interrupted write might.
        let retryable = matches!(
            error.kind(),
            std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
        );
        PublishError::new(retryable, format!("{:?}", error.kind()), error.to_string())
    }
}

/// Every kind of sink, dispatched without boxing.
#[derive(Debug)]
pub enum Sink {
    Sns(SnsSink),
    Stdout(StdoutSink),
    File(FileSink),
    Memory(MemorySink),
}

impl Sink {
    /// Delivers one alert.
    pub async fn publish(&self, alert: &Alert) -> Result<(), PublishError> {
        match self {
            Sink::Sns(sns) => Box::pin(sns.publish(alert)).await,
            Sink::Stdout(stdout) => stdout.publish(alert),
            Sink::File(file) => file.publish(alert),
            Sink::Memory(memory) => memory.publish(alert),
        }
    }

    /// Checks at start-up that the sink can be published to, where asking costs nothing:
    /// an SNS topic's attributes. Local sinks were checked when opened.
    pub async fn probe(&self) -> Result<(), PublishError> {
        match self {
            Sink::Sns(sns) => sns.probe().await,
            Sink::Stdout(_) | Sink::File(_) | Sink::Memory(_) => Ok(()),
        }
    }
}

/// A sink with the name it has in the config (`[sinks.NAME]`), used in logs and metrics.
#[derive(Debug)]
pub struct NamedSink {
    pub name: Arc<str>,
    pub sink: Sink,
}

impl NamedSink {
    pub fn new(name: impl Into<Arc<str>>, sink: Sink) -> Self {
        NamedSink {
            name: name.into(),
            sink,
        }
    }
}
