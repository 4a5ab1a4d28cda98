//! Grouping (Alertmanager's `group_wait` and `group_interval`): a group's first match waits
//! `wait` for others; then one alert summarises them all (count, first and last event time,
//! event ids). Matches after that are collected until `interval` after the previous alert.
//!
//! # Acknowledgement
//! A message whose match is held in a group must not be deleted before the group's alert is
//! published, or a crash in between would lose it. So nothing here returns early: the match
//! that opens a batch *leads* it (it sleeps until the flush, builds the summary, publishes it,
//! and tells the others), every later match *follows* (awaits the leader's result). Each
//! message's `process` thus finishes only once its group's alert was accepted by the sinks,
//! and the message is deleted then; if publishing fails, every message of the batch is left
//! for redelivery. Meanwhile the batch handler keeps renewing the messages' visibility, and
//! the dedup claim (whose lease covers `wait` + `interval`) keeps a redelivery from joining
//! twice. On shutdown every batch flushes at once, so draining is not held up by `interval`.
//!
//! Batches live in the process: with several replicas each one groups what it receives (at
//! most one summary per replica per group and interval). Sharing batches through DynamoDB
//! would need a leader across replicas, with its own failure modes, for a feature whose
//! purpose (one message instead of fifty) a per-replica batch already serves.

use super::GroupBy;
use crate::alert::{Alert, GroupSummary};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// `[rule.group] wait` when not given.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// `[rule.group] interval` when not given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

/// `[rule.group]`, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub group_by: GroupBy,
    pub wait: Duration,
    pub interval: Duration,
}

/// The outcome of a batch, shared with its followers: `None` until published.
pub type Outcome = Option<bool>;

#[derive(Debug)]
struct Batch {
    /// The alert the summary is built on (the first match's).
    first: Alert,
    summary: GroupSummary,
    done: watch::Sender<Outcome>,
}

#[derive(Debug, Default)]
struct Slot {
    batch: Option<Batch>,
    /// The next batch flushes no earlier than this (previous flush + interval).
    not_before: Option<Instant>,
}

/// Every rule's open batches.
#[derive(Debug, Default)]
pub struct Groups {
    slots: Mutex<HashMap<(Arc<str>, String), Slot>>,
}

/// How a match joined its group.
#[derive(Debug)]
pub enum Joined {
    /// It opened the batch: wait until `flush_at`, then [`Groups::take`] and publish.
    Lead { flush_at: Instant },
    /// It joined an open batch: await the leader's outcome.
    Follow(watch::Receiver<Outcome>),
}

/// A flushed batch: the summary alert to publish and where to report the outcome.
#[derive(Debug)]
pub struct Flushed {
    pub alert: Alert,
    pub done: watch::Sender<Outcome>,
}

impl Groups {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Arc<str>, String), Slot>> {
        // Each operation leaves the map consistent, so a poisoned lock is still usable.
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a match (its alert, and its group's key values) to its group.
    pub fn join(&self, spec: &Spec, key: &super::GroupKey, alert: &Alert) -> Joined {
        let now = Instant::now();
        let mut slots = self.lock();
        if slots.len() > 1024 {
            // Forget groups idle for longer than their interval (no batch, no pacing left).
            slots
                .retain(|_, slot| slot.batch.is_some() || slot.not_before.is_some_and(|t| t > now));
        }
        let slot = slots
            .entry((Arc::clone(&alert.rule), key.text.clone()))
            .or_default();
        if let Some(batch) = &mut slot.batch {
            add(&mut batch.summary, alert);
            return Joined::Follow(batch.done.subscribe());
        }
        let flush_at = (now + spec.wait).max(slot.not_before.unwrap_or(now));
        let mut summary = GroupSummary {
            count: 0,
            first_time: None,
            last_time: None,
            event_ids: Vec::new(),
            key: key
                .values
                .iter()
                .map(|(path, value)| (path.clone(), serde_json::Value::String(value.clone())))
                .collect(),
        };
        add(&mut summary, alert);
        let (done, _) = watch::channel(None);
        slot.batch = Some(Batch {
            first: alert.clone(),
            summary,
            done,
        });
        Joined::Lead { flush_at }
    }

    /// Closes the batch of `rule` and `key` (its leader calls this at `flush_at`).
    pub fn take(&self, spec: &Spec, rule: &Arc<str>, key: &str) -> Option<Flushed> {
        let mut slots = self.lock();
        let slot = slots.get_mut(&(Arc::clone(rule), key.to_owned()))?;
        let batch = slot.batch.take()?;
        slot.not_before = Some(Instant::now() + spec.interval);
        let mut alert = batch.first;
        let summary = batch.summary;
        alert.id = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("group:{}:{}", alert.id, summary.count).as_bytes(),
        )
        .to_string();
        if summary.count > 1 {
            alert.summary = format!(
                "{} matching events (first: {})",
                summary.count, alert.summary
            );
        }
        alert.group = Some(summary);
        Some(Flushed {
            alert,
            done: batch.done,
        })
    }

    /// Open batches (for the metrics gauge).
    pub fn n_open(&self) -> usize {
        self.lock()
            .values()
            .filter(|slot| slot.batch.is_some())
            .count()
    }
}

fn add(summary: &mut GroupSummary, alert: &Alert) {
    summary.count += 1;
    if let Some(time) = &alert.event_time {
        // RFC 3339 UTC times from CloudTrail compare as text.
        if summary.first_time.as_ref().is_none_or(|first| time < first) {
            summary.first_time = Some(time.clone());
        }
        if summary.last_time.as_ref().is_none_or(|last| time > last) {
            summary.last_time = Some(time.clone());
        }
    }
    if let Some(id) = &alert.event_id {
        if summary.event_ids.len() < GroupSummary::MAX_EVENT_IDS {
            summary.event_ids.push(id.clone());
        }
    }
}
