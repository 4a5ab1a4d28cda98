//! Noise control: what the pipeline calls between the rule engine and the sinks, for each
//! finding, and what the absence ticker calls periodically. A layer above `rules` (whose
//! [`Finding`]s and [`RuleSet`] it takes) and `state` (whose pure decisions and [`Store`] it
//! drives); it publishes through the caller's [`Publish`] (the daemon's pipeline, which
//! routes to the sinks), and `alert::summary` words what it rewrites. Called by `daemon`
//! (the pipeline, the absence ticker) and `cli` (`bench-state`).
//!
//! For a finding: dedup claims its alert id ([`claim`]); the rule's gate (throttle, group,
//! threshold, absence heartbeat: [`gate`], [`group`]) decides whether and what to send; the
//! alert is published through `publish`; then the dedup claim is confirmed, or taken back
//! (with the gate's write) if the publish failed, so the message's redelivery decides again.
//! [`Settled`] tells the pipeline whether the message may be deleted. A grouped match is
//! settled in two steps ([`Noise::enter`] puts it in its group's batch, [`Noise::settle`]
//! waits for the flush), so that a message enters all its matches before it waits for any.
//! A write whose alert is not out yet is guarded by an [`unsent`] guard.
//!
//! Absence checks ([`absence`]) run on the wall clock by a ticker
//! ([`Noise::run_absence_checks`]) for a queue. A finite source (event files, stdin) is a
//! replay ([`replay`]): its `Clock::Events` follows the events' time, and the pipeline calls
//! [`Noise::observe`] before each event's findings, which checks whenever event time passed
//! the next check point, as the ticker would have while the events happened;
//! [`Noise::finish_replay`] checks once more at the end of the input. Group batches follow the
//! same time in a replay: no match waits for its group's flush; `observe` publishes the
//! summaries of the batches whose flush time event time has reached, and
//! [`Noise::flush_replay_groups`] those still open when the input ends (see [`group`]). A
//! replay's output depends only on its input, never on how fast it was read.
//!
//! # Layout
//! - `mod.rs`: [`Noise`], [`Publish`], the result of a finding ([`Settled`], [`Entered`]).
//! - [`claim`]: the dedup claim of a finding's alert, renewed while its holder lives.
//! - [`gate`]: throttle, threshold and an absence rule's heartbeat, on one finding.
//! - [`group`]: group batches, their leaders and followers, and their flushes.
//! - [`absence`]: the absence checks and their ticker.
//! - [`replay`]: a replay's event-time checks and flushes.
//! - [`unsent`]: the guard of a write whose alert is not out yet.

pub mod absence;
mod claim;
mod gate;
pub mod group;
mod replay;
#[cfg(test)]
pub(crate) mod testing;
mod unsent;

use crate::alert::Alert;
use crate::envelope::Event;
use crate::rules::{Finding, RuleSet};
use crate::state::{Clock, Gate, Millis, StateError, Store};
use group::{Groups, Joined, Leading};
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub use absence::{AbsenceReport, CHECK_EVERY, check_period};
pub use group::Waiting;

/// Sends an alert to every sink it is routed to; true when all accepted it. (A trait rather
/// than an async closure: the pipeline's future must be `Send` for any borrow of the alert.)
pub trait Publish: Sync {
    fn publish(&self, alert: &Alert) -> impl Future<Output = bool> + Send;
}

/// Why a finding sent no alert (the `reason` label of `meterwatch_alerts_suppressed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Its alert was already sent (a redelivered or repeated event).
    Duplicate,
    /// Its group already alerted within the throttle interval.
    Throttled,
    /// Its count has not reached the rule's threshold.
    BelowThreshold,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Duplicate => "duplicate",
            Reason::Throttled => "throttled",
            Reason::BelowThreshold => "below_threshold",
        }
    }
}

/// What became of one finding (or of one absence alert, see [`absence`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// An alert was sent for it (its own, a group's summary it led, a threshold's, a
    /// throttled one carrying a count, a resolved notice, an absence alert).
    Published,
    /// It joined a group whose summary was sent (in a replay: is sent when the group
    /// flushes, see [`Settled::GroupOpened`]).
    Grouped,
    /// In a replay, it opened a group batch: the summary is sent when event time reaches the
    /// batch's flush time, or at the end of the input ([`Noise::observe`],
    /// [`Noise::flush_replay_groups`]). A replay deletes nothing, so nothing waits for it.
    GroupOpened,
    /// An absence rule's heartbeat, recorded.
    Heartbeat,
    /// Nothing to send, on purpose (for an absence alert: sent before, by a check that could
    /// not mark its key reported).
    Suppressed(Reason),
    /// An earlier delivery of the same event is being handled, its claim standing for
    /// `remaining`: leave the message, to come back once the claim is settled or expired.
    /// (For an absence alert: another check is sending it.)
    InFlight { remaining: Duration },
    /// Publishing failed: leave the message (state was rolled back).
    Failed,
}

impl Settled {
    /// Whether the message that carried the finding may be deleted.
    pub fn is_done(self) -> bool {
        !matches!(self, Settled::InFlight { .. } | Settled::Failed)
    }
}

/// What [`Noise::enter`] made of one finding.
#[derive(Debug)]
pub enum Entered<'n> {
    /// Settled for good.
    Settled(Settled),
    /// A grouped match in its group's batch: [`Noise::settle`] waits for the flush. (Boxed:
    /// a dedup claim's undo is large beside a verdict.)
    Waiting(Box<Waiting<'n>>),
}

/// State, clock and groups, shared by every poller.
#[derive(Debug)]
pub struct Noise {
    store: Store,
    clock: Clock,
    groups: Groups,
    /// Flushes every group batch at once when cancelled, so draining is not held up.
    shutdown: CancellationToken,
    /// A replay's next absence check, in event time (`Millis::MIN`: at the first event).
    next_replay_check: AtomicI64,
}

impl Noise {
    pub fn new(store: Store, clock: Clock, shutdown: CancellationToken) -> Noise {
        Noise {
            store,
            clock,
            groups: Groups::default(),
            shutdown,
            next_replay_check: AtomicI64::new(Millis::MIN),
        }
    }

    /// Whether this is a replay's state: its clock follows the events' time.
    pub fn is_replay(&self) -> bool {
        matches!(self.clock, Clock::Events(_))
    }

    /// In memory with the system clock: one replica, and `meterwatch` commands.
    pub fn in_memory() -> Noise {
        Noise::new(
            Store::Memory(crate::state::MemoryStore::default()),
            Clock::System,
            CancellationToken::new(),
        )
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// Open group batches (a gauge).
    pub fn n_open_groups(&self) -> usize {
        self.groups.n_open()
    }

    /// Takes one finding through dedup and its rule's gate; `publish` sends an alert to every
    /// sink and says whether all accepted it. `event` and `rules` are what raised the
    /// finding: a heartbeat's alert is bare (see [`Finding::is_heartbeat`]), and built whole
    /// from them only when it ends an absence. A grouped match returns once its group's alert
    /// is out ([`Noise::enter`], then [`Noise::settle`]).
    pub async fn admit(
        &self,
        finding: Finding,
        event: &Event,
        rules: &RuleSet,
        publish: &impl Publish,
    ) -> Result<Settled, StateError> {
        Ok(match self.enter(finding, event, rules, publish).await? {
            Entered::Settled(settled) => settled,
            Entered::Waiting(waiting) => self.settle(*waiting, publish).await,
        })
    }

    /// [`Noise::admit`] up to a group's flush: every finding is settled as `admit` would,
    /// except a grouped match (outside a replay), which joins its group's batch and is
    /// returned as [`Entered::Waiting`], to be given to [`Noise::settle`]. So a message can
    /// put all its matches into their batches before waiting for any flush (they then join
    /// one summary), and its caller learns when only the flushes are left.
    ///
    /// A `Waiting` must be settled: if it leads its batch, nobody else flushes it.
    pub async fn enter(
        &self,
        finding: Finding,
        event: &Event,
        rules: &RuleSet,
        publish: &impl Publish,
    ) -> Result<Entered<'_>, StateError> {
        let Finding {
            mut alert,
            controls,
            key,
        } = finding;
        let claim = match controls.dedup {
            Some(window) => {
                let lease = claim::lease(&controls);
                match self.claim(&alert, lease, window).await? {
                    Ok(claim) => Some(claim),
                    Err(settled) => return Ok(Entered::Settled(settled)),
                }
            }
            None => None,
        };
        if let Gate::Group(spec) = &controls.gate {
            let joined = self.groups.join(spec, &key, &alert, self.clock.now());
            // A replay's time moves only with its input, which waiting would hold up: its
            // batches are flushed as event time passes them.
            let settled = match joined {
                Joined::Lead { .. } if self.is_replay() => Settled::GroupOpened,
                Joined::Follow(_) if self.is_replay() => Settled::Grouped,
                joined => {
                    let leading = matches!(joined, Joined::Lead { .. }).then(|| Leading {
                        noise: self,
                        group: Some((Arc::clone(&alert.rule), key.text)),
                    });
                    return Ok(Entered::Waiting(Box::new(Waiting {
                        rule: alert.rule,
                        joined,
                        claim,
                        leading,
                    })));
                }
            };
            self.finish_claim(claim, Ok(&settled)).await;
            return Ok(Entered::Settled(settled));
        }
        let mut claim = claim;
        let settled = self
            .renewing(
                claim.as_mut(),
                self.gate(&mut alert, &controls, &key, (event, rules), publish),
            )
            .await;
        self.finish_claim(claim, settled.as_ref()).await;
        settled.map(Entered::Settled)
    }
}
