//! Group batches for `[rule.group]` (Alertmanager's `group_wait` and `group_interval`): a group's first match waits
//! `wait` for others; then one alert summarises them all (count, first and last event time,
//! event ids). Matches after that are collected until `interval` after the previous alert.
//!
//! The rule's compiled `Spec` is `state::group`'s; the batches live here, in the process
//! (below), with the grouped matches waiting for their flush ([`Waiting`]). Called by
//! [`Noise::enter`] (join), the pipeline ([`Noise::settle`]) and `replay` (due batches).
//!
//! # Acknowledgement
//! A message whose match is held in a group must not be deleted before the group's alert is
//! published, or a crash in between would lose it. So nothing here returns early: the match
//! that opens a batch *leads* it (it sleeps until the flush, builds the summary, publishes it,
//! and tells the others), every later match *follows* (awaits the leader's result). Each
//! message's `process` thus finishes only once its group's alert was accepted by the sinks,
//! and the message is deleted then; if publishing fails, every message of the batch is left
//! for redelivery. A message first puts all its matches into their batches, then waits for
//! every flush at once ([`Noise::enter`], then [`Noise::settle`]): several matches of one
//! group in one message join one summary. Meanwhile the message waits apart from its SQS
//! batch (`daemon::hold`), which keeps renewing its visibility, so the poller goes on
//! receiving; the dedup claim (whose lease covers `wait` + `interval`) keeps a redelivery
//! from joining twice. On shutdown every batch flushes at once, so draining is not held up
//! by `interval`.
//!
//! # Replays
//! A replay (event files, stdin) reads one message at a time, and its time is the events'
//! (`Clock::Events`): a leader sleeping until the flush would hold up the very input
//! whose time it waits for. So in a replay nobody waits: a match joins its batch and is
//! settled, and `noise` flushes every batch whose flush time event time has reached
//! ([`Groups::take_due`], before the next event's findings, as absence checks run) and every
//! batch still open at the end of the input ([`Groups::take_all`]). A replay's summaries
//! depend on its input only, and a group's `wait` takes no wall time. (Nothing is deleted in
//! a replay, so no message needs to be held until its summary is out.)
//!
//! Batches live in the process: with several replicas each one groups what it receives (at
//! most one summary per replica per group and interval). Sharing batches through DynamoDB
//! would need a leader across replicas, with its own failure modes, for a feature whose
//! purpose (one message instead of fifty) a per-replica batch already serves.

use super::claim::Claim;
use super::{Noise, Publish, Settled};
use crate::alert::{Alert, GroupSummary};
use crate::state::{GroupKey, Millis, group::Spec, millis};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

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
    pub fn join(&self, spec: &Spec, key: &GroupKey, alert: &Alert, now: Millis) -> Joined {
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
            batch.summary.add(alert);
            return Joined::Follow(batch.done.subscribe());
        }
        let flush_at = now
            .saturating_add(millis(spec.wait))
            .max(slot.not_before.unwrap_or(now));
        let mut summary = GroupSummary::new(&key.values);
        summary.add(alert);
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
    let alert = batch.summary.into_alert(batch.first);
    Some(Flushed {
        alert,
        done: batch.done,
    })
}

/// A grouped match waiting for its batch's flush (see [`Noise::settle`]).
#[derive(Debug)]
pub struct Waiting<'n> {
    pub(super) rule: Arc<str>,
    pub(super) joined: Joined,
    pub(super) claim: Option<Claim<'n>>,
    /// For the batch's leader, until it takes the batch.
    pub(super) leading: Option<Leading<'n>>,
}

impl Waiting<'_> {
    /// The rule whose group the match joined.
    pub fn rule(&self) -> &Arc<str> {
        &self.rule
    }
}

/// A batch's leader that has not taken its batch yet. Dropped before it does (a panic while
/// its message is processed, an abort), it closes the batch as failed: its followers are
/// then left for redelivery instead of waiting for a flush nobody makes, and later matches
/// of the group open a batch of their own.
#[derive(Debug)]
pub(super) struct Leading<'n> {
    pub(super) noise: &'n Noise,
    /// The group (rule, key text); `None` once the batch is taken.
    pub(super) group: Option<(Arc<str>, String)>,
}

impl Leading<'_> {
    /// Takes the batch to flush it, which this leader now answers for.
    fn take(mut self) -> Option<Flushed> {
        let (rule, key) = self.group.take()?;
        self.noise.groups.take(&rule, &key, self.noise.clock.now())
    }
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        let Some((rule, key)) = self.group.take() else {
            return;
        };
        if let Some(flushed) = self.noise.groups.take(&rule, &key, self.noise.clock.now()) {
            flushed.done.send_replace(Some(false));
        }
    }
}

impl Noise {
    /// Waits for a grouped match's batch to flush (the leader sleeps until then, builds the
    /// summary and publishes it; a follower awaits its result), then confirms or releases
    /// the match's dedup claim.
    pub async fn settle(&self, waiting: Waiting<'_>, publish: &impl Publish) -> Settled {
        let Waiting {
            joined,
            mut claim,
            leading,
            ..
        } = waiting;
        let flushed = async {
            match joined {
                Joined::Lead { flush_at } => {
                    let wait =
                        u64::try_from(flush_at.saturating_sub(self.clock.now())).unwrap_or(0);
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(wait)) => {}
                        () = self.shutdown.cancelled() => {}
                    }
                    match leading.and_then(Leading::take) {
                        Some(flushed) => {
                            let ok = publish.publish(&flushed.alert).await;
                            flushed.done.send_replace(Some(ok));
                            if ok {
                                Settled::Published
                            } else {
                                Settled::Failed
                            }
                        }
                        // Only the leader takes its batch; nothing to do if it is gone.
                        None => Settled::Failed,
                    }
                }
                Joined::Follow(mut done) => {
                    // `false` (the flush failed, or its leader was lost before it: see
                    // `Leading`) or an error (the taken batch was dropped mid-publish): leave
                    // the message for redelivery.
                    let ok = match done.wait_for(Option::is_some).await {
                        Ok(outcome) => *outcome == Some(true),
                        Err(_) => false,
                    };
                    if ok {
                        Settled::Grouped
                    } else {
                        Settled::Failed
                    }
                }
            }
        };
        let settled = self.renewing(claim.as_mut(), flushed).await;
        self.finish_claim(claim, Ok(&settled)).await;
        settled
    }

    /// Publishes flushed group batches and tells their members (none wait in a replay).
    pub(super) async fn publish_groups(&self, batches: Vec<Flushed>, publish: &impl Publish) {
        for flushed in batches {
            let ok = publish.publish(&flushed.alert).await;
            if !ok {
                tracing::warn!(
                    rule = %flushed.alert.rule,
                    alert_id = %flushed.alert.id,
                    "A group's summary could not be published."
                );
            }
            flushed.done.send_replace(Some(ok));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Entered;
    use super::super::testing::{Published, admit, failed, group, no_rules, noise};
    use super::*;
    use crate::state::group::DEFAULT_INTERVAL;

    fn by_product(wait: Duration, interval: Duration) -> crate::state::Controls {
        group(&["detail.requestParameters.productCode"], wait, interval)
    }

    #[tokio::test(start_paused = true)]
    async fn a_group_sends_one_summary_after_its_wait_and_every_message_waits_for_it() {
        let grouped = by_product(Duration::from_secs(30), Duration::from_secs(300));
        let (noise, sink) = (noise(), Published::default());
        let started = tokio::time::Instant::now();
        let found: Vec<_> = (0..3)
            .map(|idx| {
                failed(&format!("e-{idx}"))
                    .minute(idx)
                    .controls(grouped.clone())
            })
            .collect();
        let (a, b, c) = tokio::join!(
            admit(&noise, &found[0], &sink),
            admit(&noise, &found[1], &sink),
            admit(&noise, &found[2], &sink),
        );
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        assert_eq!(
            [a, b, c],
            [Settled::Published, Settled::Grouped, Settled::Grouped]
        );
        let alerts = sink.take();
        assert_eq!(alerts.len(), 1);
        let group = alerts[0].group.as_ref().expect("a summary");
        assert_eq!(group.count, 3);
        assert_eq!(group.event_ids, ["e-0", "e-1", "e-2"]);
        assert_eq!(group.first_time.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(group.last_time.as_deref(), Some("2026-01-01T00:02:00Z"));

        // The next match waits for the group interval, not just the wait.
        let started = tokio::time::Instant::now();
        admit(&noise, &failed("e-3").minute(3).controls(grouped), &sink).await;
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(300),
            "previous flush + interval"
        );
        assert_eq!(sink.take()[0].group.as_ref().map(|g| g.count), Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_group_publish_fails_every_member() {
        let grouped = group(&[], Duration::from_secs(10), DEFAULT_INTERVAL);
        let (noise, sink) = (noise(), Published::default());
        sink.fail(true);
        let (first, second) = (
            failed("e-0").controls(grouped.clone()),
            failed("e-1").controls(grouped),
        );
        let (a, b) = tokio::join!(admit(&noise, &first, &sink), admit(&noise, &second, &sink),);
        assert_eq!([a, b], [Settled::Failed, Settled::Failed]);
    }

    /// A leader lost before its flush (its message's processing panicked or was aborted)
    /// fails its followers rather than leaving them waiting for ever, and the next match
    /// opens a batch of its own.
    #[tokio::test(start_paused = true)]
    async fn a_lost_leader_fails_its_followers_and_frees_its_group() {
        let grouped = group(&[], Duration::from_secs(10), DEFAULT_INTERVAL);
        let (noise, sink, rule_set) = (noise(), Published::default(), no_rules());
        let enter = |id: &'static str| {
            let (noise, rule_set, sink) = (&noise, &rule_set, &sink);
            let (event, finding) = failed(id).controls(grouped.clone()).build();
            async move {
                match noise.enter(finding, &event, rule_set, sink).await {
                    Ok(Entered::Waiting(waiting)) => *waiting,
                    other => panic!("a grouped match waits: {other:?}"),
                }
            }
        };
        let leader = enter("e-0").await;
        let follower = enter("e-1").await;
        drop(leader);
        let settled = tokio::time::timeout(Duration::from_secs(60), noise.settle(follower, &sink))
            .await
            .expect("the follower is not left waiting");
        assert_eq!(settled, Settled::Failed);
        assert!(sink.take().is_empty());
        let next = enter("e-2").await;
        assert_eq!(noise.settle(next, &sink).await, Settled::Published);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_flushes_groups_at_once() {
        let grouped = group(&[], Duration::from_secs(600), DEFAULT_INTERVAL);
        let (noise, sink) = (noise(), Published::default());
        let started = tokio::time::Instant::now();
        let shutdown = noise.shutdown.clone();
        let found = failed("e-0").controls(grouped);
        let (settled, ()) = tokio::join!(admit(&noise, &found, &sink), async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            shutdown.cancel();
        });
        assert_eq!(settled, Settled::Published);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }
}
