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
//! for redelivery. A message first puts all its matches into their batches, then waits for
//! every flush at once ([`super::stage::Noise::enter`], then `settle`): several matches of one
//! group in one message join one summary. Meanwhile the message waits apart from its SQS
//! batch (`daemon::hold`), which keeps renewing its visibility, so the poller goes on
//! receiving; the dedup claim (whose lease covers `wait` + `interval`) keeps a redelivery
//! from joining twice. On shutdown every batch flushes at once, so draining is not held up
//! by `interval`.
//!
//! # Replays
//! A replay (event files, stdin) reads one message at a time, and its time is the events'
//! ([`super::Clock::Events`]): a leader sleeping until the flush would hold up the very input
//! whose time it waits for. So in a replay nobody waits: a match joins its batch and is
//! settled, and the stage flushes every batch whose flush time event time has reached
//! ([`Groups::take_due`], before the next event's findings, as absence checks run) and every
//! batch still open at the end of the input ([`Groups::take_all`]). A replay's summaries
//! depend on its input only, and a group's `wait` takes no wall time. (Nothing is deleted in
//! a replay, so no message needs to be held until its summary is out.)
//!
//! Batches live in the process: with several replicas each one groups what it receives (at
//! most one summary per replica per group and interval). Sharing batches through DynamoDB
//! would need a leader across replicas, with its own failure modes, for a feature whose
//! purpose (one message instead of fifty) a per-replica batch already serves.

use super::{GroupBy, Millis, millis};
use crate::alert::{Alert, GroupSummary};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

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
    /// When the batch is due (its first match + `wait`, or the group's `not_before`).
    flush_at: Millis,
    /// The rule's `interval`, for the next batch's `not_before`.
    interval: Millis,
}

#[derive(Debug, Default)]
struct Slot {
    batch: Option<Batch>,
    /// The next batch flushes no earlier than this (previous flush + interval).
    not_before: Option<Millis>,
}

/// Every rule's open batches.
#[derive(Debug, Default)]
pub struct Groups {
    slots: Mutex<HashMap<GroupId, Slot>>,
}

/// A group: its rule and its key's text.
type GroupId = (Arc<str>, String);

/// How a match joined its group.
#[derive(Debug)]
pub enum Joined {
    /// It opened the batch: wait until `flush_at` (clock time), then [`Groups::take`] and
    /// publish.
    Lead { flush_at: Millis },
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
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<GroupId, Slot>> {
        // Each operation leaves the map consistent, so a poisoned lock is still usable.
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a match (its alert, and its group's key values) to its group at `now`.
    pub fn join(&self, spec: &Spec, key: &super::GroupKey, alert: &Alert, now: Millis) -> Joined {
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
        let flush_at = now
            .saturating_add(millis(spec.wait))
            .max(slot.not_before.unwrap_or(now));
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
            flush_at,
            interval: millis(spec.interval),
        });
        Joined::Lead { flush_at }
    }

    /// Closes the batch of `rule` and `key` at `now` (its leader calls this at `flush_at`).
    pub fn take(&self, rule: &Arc<str>, key: &str, now: Millis) -> Option<Flushed> {
        let mut slots = self.lock();
        let slot = slots.get_mut(&(Arc::clone(rule), key.to_owned()))?;
        close(slot, now)
    }

    /// For a replay: closes every batch due by `now`, each as of its own flush time (when a
    /// live leader would have flushed it), oldest first.
    pub fn take_due(&self, now: Millis) -> Vec<Flushed> {
        self.take_where(|batch| batch.flush_at <= now)
    }

    /// For a replay's end: closes every open batch, each as of its flush time.
    pub fn take_all(&self) -> Vec<Flushed> {
        self.take_where(|_| true)
    }

    fn take_where(&self, due: impl Fn(&Batch) -> bool) -> Vec<Flushed> {
        let mut slots = self.lock();
        let mut flushed: Vec<(Millis, &GroupId, Flushed)> = slots
            .iter_mut()
            .filter(|(_, slot)| slot.batch.as_ref().is_some_and(&due))
            .filter_map(|(group, slot)| {
                let flush_at = slot.batch.as_ref()?.flush_at;
                Some((flush_at, group, close(slot, flush_at)?))
            })
            .collect();
        // In flush order, then by rule and key: the same order every run.
        flushed.sort_by(|(a_at, a, _), (b_at, b, _)| (a_at, a).cmp(&(b_at, b)));
        flushed.into_iter().map(|(_, _, flushed)| flushed).collect()
    }

    /// Open batches (for the metrics gauge).
    pub fn n_open(&self) -> usize {
        self.lock()
            .values()
            .filter(|slot| slot.batch.is_some())
            .count()
    }
}

/// Closes `slot`'s batch at `now`: its summary alert, and the group paced until `now` +
/// interval.
fn close(slot: &mut Slot, now: Millis) -> Option<Flushed> {
    let batch = slot.batch.take()?;
    slot.not_before = Some(now.saturating_add(batch.interval));
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
