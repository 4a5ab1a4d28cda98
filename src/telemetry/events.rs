//! Notable events: each struct logs one line and moves its counters in one `emit`, so logs
//! and metrics cannot drift. Levels: ERROR = data may be lost or an
//! operator must act, WARN = recovered or will be retried, INFO = lifecycle.

use super::metrics::{FailReason, Metrics, PublishErrorLabels, ReasonLabels, ResultLabels};
use crate::envelope::{DecodeError, DecodeErrorKind};
use crate::rules::LoadError;
use crate::sink::PublishError;
use crate::source::{EntryFailure, SourceError};

/// An undecodable message, left for the queue's redrive policy.
#[derive(Debug)]
pub struct MessagePoison<'a> {
    pub error: &'a DecodeError,
    pub receive_count: u32,
}

impl MessagePoison<'_> {
    pub fn emit(&self, metrics: &Metrics) {
        tracing::warn!(
            message_id = %self.error.message_id,
            receive_count = self.receive_count,
            reason = self.error.kind.label(),
            error = %self.error.kind,
            "Leaving undecodable message for redrive."
        );
        metrics
            .messages_poison
            .get_or_create(&ReasonLabels {
                reason: self.error.kind.label(),
            })
            .inc();
    }
}

/// A record of a batch left out (an Insights event, a malformed record); the batch's other
/// records go on.
#[derive(Debug)]
pub struct RecordSkipped<'a> {
    pub message_id: &'a str,
    pub kind: &'a DecodeErrorKind,
}

impl RecordSkipped<'_> {
    pub fn emit(&self, metrics: &Metrics) {
        let reason = self.kind.label();
        // An Insights event is expected in a log file; a malformed record is worth a look.
        if matches!(self.kind, DecodeErrorKind::NotAnApiCall { .. }) {
            tracing::info!(message_id = self.message_id, reason, record = %self.kind, "Skipped a record.");
        } else {
            tracing::warn!(message_id = self.message_id, reason, record = %self.kind, "Skipped a record.");
        }
        metrics
            .records_skipped
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }
}

/// A message whose alerts went over its budget (`rules::Budget`), left for the queue's
/// redrive policy as poison is: whatever it claims, it costs too much to handle.
#[derive(Debug)]
pub struct MessageOverBudget<'a> {
    pub message_id: &'a str,
    pub receive_count: u32,
    pub body_bytes: usize,
    pub error: &'a crate::rules::BodyError,
}

impl MessageOverBudget<'_> {
    /// The `reason` label it is counted under in `meterwatch_messages_poison_total`.
    pub const REASON: &'static str = "over_budget";

    pub fn emit(&self, metrics: &Metrics) {
        tracing::warn!(
            message_id = self.message_id,
            receive_count = self.receive_count,
            body_bytes = self.body_bytes,
            reason = Self::REASON,
            error = %self.error,
            "Leaving message over its budget for redrive."
        );
        metrics
            .messages_poison
            .get_or_create(&ReasonLabels {
                reason: Self::REASON,
            })
            .inc();
    }
}

/// One failed publish attempt.
#[derive(Debug)]
pub struct PublishAttemptFailed<'a> {
    pub sink: &'a str,
    /// The alert's rule and id: what the on-call person looks up.
    pub rule: &'a str,
    pub alert_id: &'a str,
    pub attempt: u32,
    pub error: &'a PublishError,
    pub will_retry: bool,
}

impl PublishAttemptFailed<'_> {
    pub fn emit(&self, metrics: &Metrics) {
        if self.will_retry {
            tracing::warn!(
                sink = self.sink,
                rule = self.rule,
                alert_id = self.alert_id,
                attempt = self.attempt,
                error_code = %self.error.code,
                error = %self.error,
                "Publish failed; retrying."
            );
        } else {
            tracing::error!(
                sink = self.sink,
                rule = self.rule,
                alert_id = self.alert_id,
                attempt = self.attempt,
                retryable = self.error.retryable,
                error_code = %self.error.code,
                error = %self.error,
                "Publish failed; leaving the message for redelivery."
            );
        }
        metrics
            .publish_errors
            .get_or_create(&PublishErrorLabels {
                sink: self.sink.to_owned(),
                retryable: if self.error.retryable {
                    "true"
                } else {
                    "false"
                },
            })
            .inc();
    }
}

/// A message left undeleted (it comes back after its visibility timeout, or `retry_in`).
#[derive(Debug)]
pub struct MessageLeft<'a> {
    pub message_id: &'a str,
    pub reason: FailReason,
    /// When it is set to come back, if not after the queue's visibility timeout.
    pub retry_in: Option<std::time::Duration>,
}

impl MessageLeft<'_> {
    pub fn emit(&self, metrics: &Metrics) {
        tracing::warn!(
            message_id = self.message_id,
            reason = self.reason.as_str(),
            retry_in_secs = self.retry_in.map(|retry_in| retry_in.as_secs()),
            "Leaving message undeleted for redelivery."
        );
        metrics.message_failed(self.reason);
    }
}

/// A delete or visibility change that SQS refused for one entry of a batch.
#[derive(Debug)]
pub struct EntryFailed<'a> {
    pub operation: &'static str,
    pub failure: &'a EntryFailure,
}

impl EntryFailed<'_> {
    pub fn emit(&self, metrics: &Metrics) {
        tracing::warn!(
            message_id = %self.failure.message_id,
            operation = self.operation,
            error_code = %self.failure.code,
            error = %self.failure.reason,
            "Batch entry failed; the message will be redelivered."
        );
        match self.operation {
            "delete" => metrics.message_failed(FailReason::Delete),
            _ => {
                metrics.visibility_changes_failed.inc();
            }
        }
    }
}

/// A receive that failed as a whole.
#[derive(Debug)]
pub struct ReceiveFailed<'a> {
    pub error: &'a SourceError,
    pub retry_in_ms: u128,
}

impl ReceiveFailed<'_> {
    pub fn emit(&self, metrics: &Metrics) {
        tracing::warn!(error = %self.error, retry_in_ms = self.retry_in_ms as u64, "Receive failed; retrying.");
        metrics.receive_errors.inc();
    }
}

/// What made the rules reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadTrigger {
    Startup,
    Watch,
    Sighup,
}

impl ReloadTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadTrigger::Startup => "startup",
            ReloadTrigger::Watch => "watch",
            ReloadTrigger::Sighup => "sighup",
        }
    }
}

/// A new rule set is in force.
#[derive(Debug)]
pub struct RulesReloaded {
    pub n_rules: usize,
    pub trigger: ReloadTrigger,
}

impl RulesReloaded {
    pub fn emit(&self, metrics: &Metrics) {
        tracing::info!(
            n_rules = self.n_rules,
            trigger = self.trigger.as_str(),
            "Rules loaded."
        );
        metrics
            .rules_reloads
            .get_or_create(&ResultLabels { result: "ok" })
            .inc();
        metrics
            .rules_loaded
            .set(i64::try_from(self.n_rules).unwrap_or(i64::MAX));
        metrics.rules_reload_finished(true, std::time::SystemTime::now());
    }
}

/// A new rule set was invalid; the last good one stays in force.
#[derive(Debug)]
pub struct RulesRejected<'a> {
    pub error: &'a LoadError,
    pub trigger: ReloadTrigger,
}

impl RulesRejected<'_> {
    pub fn emit(&self, metrics: &Metrics) {
        tracing::error!(
            trigger = self.trigger.as_str(),
            n_errors = self.error.diagnostics.len(),
            error = %self.error,
            "Rejected new rules; the previous rules stay in force."
        );
        metrics
            .rules_reloads
            .get_or_create(&ResultLabels { result: "failed" })
            .inc();
        metrics.rules_reload_finished(false, std::time::SystemTime::now());
    }
}
