//! Alerts kept in memory, for tests and `bench-pipeline`; it can be told to fail.

use super::PublishError;
use crate::alert::Alert;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// An in-memory sink. The std mutex is held only to push, never across an `.await`.
#[derive(Debug, Default)]
pub struct MemorySink {
    keep: bool,
    alerts: Mutex<Vec<Alert>>,
    accepted: AtomicU64,
    attempts: AtomicU64,
    /// The next this-many publishes fail.
    failures_left: AtomicU64,
    failures_retryable: std::sync::atomic::AtomicBool,
}

impl MemorySink {
    /// A sink that keeps every alert it accepts.
    pub fn new() -> Self {
        MemorySink {
            keep: true,
            ..MemorySink::default()
        }
    }

    /// A sink that only counts (for benchmarks).
    pub fn counting() -> Self {
        MemorySink::default()
    }

    /// The next `n` publishes fail, as retryable (throttling) or not.
    pub fn fail_next(&self, n: u64, retryable: bool) {
        self.failures_retryable.store(retryable, Ordering::SeqCst);
        self.failures_left.store(n, Ordering::SeqCst);
    }

    /// Alerts accepted so far (empty for a counting sink).
    pub fn alerts(&self) -> Vec<Alert> {
        self.alerts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many alerts were accepted.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// How many publishes were attempted, failed ones included.
    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::SeqCst)
    }

    pub(super) fn publish(&self, alert: &Alert) -> Result<(), PublishError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let failing = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            let retryable = self.failures_retryable.load(Ordering::SeqCst);
            return Err(PublishError::new(
                retryable,
                "InjectedFailure",
                "publish failure injected by the test",
            ));
        }
        self.accepted.fetch_add(1, Ordering::SeqCst);
        if self.keep {
            self.alerts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(alert.clone());
        }
        Ok(())
    }
}
