//! The state stage: what the pipeline calls between the rule engine and the sinks, for each
//! finding, and what the absence ticker calls periodically.
//!
//! For a finding: dedup claims its alert id; the rule's gate (throttle, group, threshold,
//! absence) decides whether and what to send; the alert is published through the caller's
//! `publish`; then the dedup claim is confirmed, or taken back (with the gate's write) if the
//! publish failed, so the message's redelivery decides again. [`Settled`] tells the pipeline
//! whether the message may be deleted. A grouped match is settled in two steps
//! ([`Noise::enter`] puts it in its group's batch, [`Noise::settle`] waits for the flush), so
//! that a message enters all its matches before it waits for any.
//!
//! Absence checks run on the wall clock by a ticker ([`Noise::run_absence_checks`]) for a
//! queue. A finite source (event files, stdin) is a replay: its [`Clock::Events`] follows the
//! events' time, and the pipeline calls [`Noise::observe`] before each event's findings, which
//! checks whenever event time passed the next check point, as the ticker would have while the
//! events happened; [`Noise::finish_replay`] checks once more at the end of the input. Group
//! batches follow the same time in a replay: no match waits for its group's flush; `observe`
//! publishes the summaries of the batches whose flush time event time has reached, and
//! [`Noise::flush_replay_groups`] those still open when the input ends (see [`group`]). A
//! replay's output depends only on its input, never on how fast it was read.

use super::{
    Clock, Controls, Gate, GroupKey, Millis, StateError, Store, absence, dedup,
    group::{self, Groups, Joined},
    state_key, threshold, throttle,
};
use crate::alert::{Alert, Status};
use crate::envelope::Event;
use crate::rules::{Finding, RuleSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often absence rules' keys are checked: a small fraction of any sensible grace. A rule
/// allowing less silence is checked more often ([`check_period`]). In a replay, in event time.
pub const CHECK_EVERY: Duration = Duration::from_secs(30);

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

/// What became of one finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// An alert was sent for it (its own, a group's summary it led, a threshold's, a
    /// throttled one carrying a count, a resolved notice).
    Published,
    /// It joined a group whose summary was sent (in a replay: is sent when the group
    /// flushes, see [`Settled::Held`]).
    Grouped,
    /// In a replay, it opened a group batch: the summary is sent when event time reaches the
    /// batch's flush time, or at the end of the input ([`Noise::observe`],
    /// [`Noise::flush_replay_groups`]). A replay deletes nothing, so nothing waits for it.
    Held,
    /// An absence rule's heartbeat, recorded.
    Heartbeat,
    /// Nothing to send, on purpose.
    Suppressed(Reason),
    /// An earlier delivery of the same event is being handled, its claim standing for
    /// `remaining`: leave the message, to come back once the claim is settled or expired.
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

/// A grouped match waiting for its batch's flush (see [`Noise::settle`]).
#[derive(Debug)]
pub struct Waiting<'n> {
    rule: Arc<str>,
    joined: Joined,
    claim: Option<Claim<'n>>,
    /// For the batch's leader, until it takes the batch.
    leading: Option<Leading<'n>>,
}

/// A batch's leader that has not taken its batch yet. Dropped before it does (a panic while
/// its message is processed, an abort), it closes the batch as failed: its followers are
/// then left for redelivery instead of waiting for a flush nobody makes, and later matches
/// of the group open a batch of their own.
#[derive(Debug)]
struct Leading<'n> {
    noise: &'n Noise,
    /// The group (rule, key text); `None` once the batch is taken.
    group: Option<(Arc<str>, String)>,
}

impl Leading<'_> {
    /// Takes the batch to flush it, which this leader now answers for.
    fn take(mut self) -> Option<group::Flushed> {
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

impl Waiting<'_> {
    /// The rule whose group the match joined.
    pub fn rule(&self) -> &Arc<str> {
        &self.rule
    }
}

/// A dedup claim taken for a finding, until it is settled.
#[derive(Debug)]
struct Claim<'n> {
    key: String,
    window: Duration,
    /// Until when the claim stands, as last written (claimed or renewed).
    until: Millis,
    unsent: Unsent<'n>,
}

/// What one absence check found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AbsenceReport {
    /// Keys reported absent and not yet resolved (the pending absences gauge).
    pub n_absent: usize,
    /// Alerts sent by this check.
    pub n_fired: usize,
    /// Keys watched.
    pub n_keys: usize,
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
            Store::Memory(super::MemoryStore::default()),
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
                let dedup_key = state_key("dedup", &alert.rule, &alert.id);
                let lease = lease(&controls);
                let now = self.clock.now();
                let (verdict, undo) = self
                    .store
                    .update(&dedup_key, now, |previous| {
                        dedup::claim(previous, now, lease)
                    })
                    .await?;
                match verdict {
                    dedup::Verdict::Duplicate => {
                        return Ok(Entered::Settled(Settled::Suppressed(Reason::Duplicate)));
                    }
                    dedup::Verdict::InFlight { until } => {
                        let remaining = u64::try_from(until.saturating_sub(now)).unwrap_or(0);
                        return Ok(Entered::Settled(Settled::InFlight {
                            remaining: Duration::from_millis(remaining),
                        }));
                    }
                    dedup::Verdict::Fresh => Some(Claim {
                        key: dedup_key,
                        window,
                        until: now.saturating_add(super::millis(lease)),
                        unsent: Unsent::new(&self.store, undo),
                    }),
                }
            }
            None => None,
        };
        if let Gate::Group(spec) = &controls.gate {
            let joined = self.groups.join(spec, &key, &alert, self.clock.now());
            // A replay's time moves only with its input, which waiting would hold up: its
            // batches are flushed as event time passes them.
            let settled = match joined {
                Joined::Lead { .. } if self.is_replay() => Settled::Held,
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

    /// Runs `work` (a publish, a wait for a group's flush) while renewing `claim` every
    /// [`dedup::RENEW_EVERY`], so that it stands as long as its holder lives and runs out
    /// within a [`dedup::LEASE`] once the holder is killed. A renewal that finds the claim
    /// taken by someone else (it ran out: the store was unreachable for a whole lease) stops
    /// renewing; the alert may then go out twice, which is logged.
    async fn renewing<T>(&self, claim: Option<&mut Claim<'_>>, work: impl Future<Output = T>) -> T {
        let Some(claim) = claim else {
            return work.await;
        };
        let renewals = async {
            let start = tokio::time::Instant::now() + dedup::RENEW_EVERY;
            let mut ticks = tokio::time::interval_at(start, dedup::RENEW_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if !self.renew(claim).await {
                    break;
                }
            }
            std::future::pending::<std::convert::Infallible>().await
        };
        tokio::select! {
            output = work => output,
            never = renewals => match never {},
        }
    }

    /// Renews `claim` once; false once it is no longer the holder's to renew.
    async fn renew(&self, claim: &mut Claim<'_>) -> bool {
        let now = self.clock.now();
        let (until, write) = dedup::renew(claim.until, now);
        match claim.unsent.renew(write).await {
            Ok(true) => {
                claim.until = until;
                true
            }
            Ok(false) => {
                tracing::warn!(key = %claim.key, "A dedup claim ran out before its holder could renew it; its alert may be sent twice.");
                false
            }
            // Tried again at the next tick: the claim stands for a while yet.
            Err(error) => {
                tracing::warn!(key = %claim.key, error = %error, "Could not renew a dedup claim; trying again.");
                true
            }
        }
    }

    /// Confirms a dedup claim once its finding is settled for good, or takes it back (with
    /// whatever the gate wrote) so that the message's redelivery decides again.
    async fn finish_claim(&self, claim: Option<Claim<'_>>, settled: Result<&Settled, &StateError>) {
        let Some(Claim {
            key,
            window,
            unsent,
            ..
        }) = claim
        else {
            return;
        };
        match settled {
            Ok(settled) if settled.is_done() => {
                let undo = unsent.settled();
                let now = self.clock.now();
                // The alert is out: failing to remember it risks a duplicate only if the
                // same event arrives again after the claim's lease, so warn and go on.
                let confirm = dedup::confirm(now, window).write;
                if let Err(error) = self.store.replace_mine(&undo, now, confirm).await {
                    tracing::warn!(key = %key, error = %error, "Could not confirm a dedup claim.");
                }
            }
            _ => {
                if let Err(error) = unsent.undo().await {
                    tracing::warn!(key = %key, error = %error, "Could not release a dedup claim; a redelivery waits for its lease.");
                }
            }
        }
    }

    async fn gate(
        &self,
        alert: &mut Alert,
        controls: &Controls,
        key: &GroupKey,
        (event, rules): (&Event, &RuleSet),
        publish: &impl Publish,
    ) -> Result<Settled, StateError> {
        let rule = Arc::clone(&alert.rule);
        match &controls.gate {
            Gate::None => Ok(if publish.publish(alert).await {
                Settled::Published
            } else {
                Settled::Failed
            }),
            Gate::Throttle(spec) => {
                let state_key = state_key("throttle", &rule, &key.text);
                let now = self.clock.now();
                let (verdict, undo) = self
                    .store
                    .update(&state_key, now, |previous| {
                        throttle::decide(previous, now, spec.interval)
                    })
                    .await?;
                match verdict {
                    throttle::Verdict::Hold => Ok(Settled::Suppressed(Reason::Throttled)),
                    throttle::Verdict::Send { suppressed } => {
                        alert.suppressed = (suppressed > 0).then_some(suppressed);
                        self.publish_or_undo(alert, undo, publish).await
                    }
                }
            }
            Gate::Threshold(spec) => {
                let state_key = state_key("threshold", &rule, &key.text);
                let now = self.clock.now();
                let event_time = alert
                    .event_time
                    .as_deref()
                    .and_then(crate::envelope::parse_time)
                    .map_or(now, |t| t.as_millisecond());
                let id_hash = threshold::id_hash(&alert.id);
                let (verdict, undo) = self
                    .store
                    .update(&state_key, now, |previous| {
                        threshold::decide(previous, spec, event_time, id_hash, now)
                    })
                    .await?;
                match verdict {
                    threshold::Verdict::Fire { count, first, last } => {
                        alert.summary = format!(
                            "{count} matches within {} (event times {} to {}). Latest: {}",
                            human(spec.window),
                            timestamp(first),
                            timestamp(last),
                            alert.summary
                        );
                        self.publish_or_undo(alert, undo, publish).await
                    }
                    threshold::Verdict::Counted | threshold::Verdict::Ignored => {
                        Ok(Settled::Suppressed(Reason::BelowThreshold))
                    }
                }
            }
            Gate::Absence(spec) => {
                let now = self.clock.now();
                if spec.learn {
                    let keys_key = state_key("absence-keys", &rule, "");
                    self.store
                        .update(&keys_key, now, |previous| {
                            absence::learn(previous, &key.text, now)
                        })
                        .await?;
                }
                let event_time = alert
                    .event_time
                    .as_deref()
                    .and_then(crate::envelope::parse_time)
                    .map_or(now, |t| t.as_millisecond());
                let origin = absence::Origin {
                    account: alert.account.clone(),
                    region: alert.region.clone(),
                };
                let state_key = state_key("absence", &rule, &key.text);
                let (beat, undo) = self
                    .store
                    .update(&state_key, now, |previous| {
                        absence::beat(previous, spec, event_time, &origin, now)
                    })
                    .await?;
                match beat {
                    absence::Beat::Alive => Ok(Settled::Heartbeat),
                    absence::Beat::Resumed { silent_since } => {
                        // The heartbeat's alert was left bare (see `Finding::is_heartbeat`).
                        if let Some(whole) = rules.heartbeat_alert(&rule, event) {
                            *alert = whole;
                        }
                        alert.status = Status::Resolved;
                        // The absence alert's thread: it had no event, so no account of its
                        // own to thread by.
                        alert.thread_key = Some(key.text.clone());
                        alert.id = uuid::Uuid::new_v5(
                            &uuid::Uuid::NAMESPACE_OID,
                            format!("resolved:{rule}:{}:{silent_since}", key.text).as_bytes(),
                        )
                        .to_string();
                        alert.summary = format!(
                            "{} is metering again: a successful call at {} after silence since {}.",
                            describe_key(key),
                            alert.event_time.as_deref().unwrap_or("(unknown time)"),
                            timestamp(silent_since)
                        );
                        self.publish_or_undo(alert, undo, publish).await
                    }
                }
            }
            // Never reached: `enter` takes grouped matches before the gate. (Failing would
            // leave the message for redelivery: nothing lost.)
            Gate::Group(_) => Ok(Settled::Failed),
        }
    }

    /// Publishes flushed group batches and tells their members (none wait in a replay).
    async fn publish_groups(&self, batches: Vec<group::Flushed>, publish: &impl Publish) {
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

    async fn publish_or_undo(
        &self,
        alert: &Alert,
        undo: super::Undo,
        publish: &impl Publish,
    ) -> Result<Settled, StateError> {
        let unsent = Unsent::new(&self.store, undo);
        if publish.publish(alert).await {
            unsent.settled();
            return Ok(Settled::Published);
        }
        unsent.undo().await?;
        Ok(Settled::Failed)
    }

    /// Checks every absence rule's expected keys once; sends an alert for each key silent
    /// for longer than its rule allows and not yet reported.
    pub async fn check_absences(
        &self,
        rule_set: &RuleSet,
        publish: &impl Publish,
    ) -> Result<AbsenceReport, StateError> {
        let mut report = AbsenceReport::default();
        for rule in rule_set.rules().iter().filter(|rule| rule.enabled) {
            let Gate::Absence(spec) = &rule.controls.gate else {
                continue;
            };
            let mut keys: Vec<String> = spec
                .expected
                .as_ref()
                .map(|(_, entries)| entries.clone())
                .unwrap_or_default();
            if spec.learn {
                let keys_key = state_key("absence-keys", &rule.id, "");
                if let Some(super::Entry::Keys(learned)) =
                    self.store.get(&keys_key, self.clock.now()).await?
                {
                    keys.extend(learned.keys);
                }
            }
            keys.sort();
            keys.dedup();
            for key_text in keys {
                report.n_keys += 1;
                let state_key = state_key("absence", &rule.id, &key_text);
                let now = self.clock.now();
                let (check, _) = self
                    .store
                    .update(&state_key, now, |previous| {
                        absence::check(previous, spec, now)
                    })
                    .await?;
                match check {
                    absence::Check::Quiet => {}
                    absence::Check::Reported => report.n_absent += 1,
                    absence::Check::Missing {
                        since,
                        seen,
                        origin,
                    } => {
                        let key = spec.group_by.key_from_text(&key_text);
                        let mut alert = rule_set.absence_alert(rule, &key, &origin);
                        alert.id = uuid::Uuid::new_v5(
                            &uuid::Uuid::NAMESPACE_OID,
                            format!("absent:{}:{key_text}:{since}", rule.id).as_bytes(),
                        )
                        .to_string();
                        alert.summary = format!(
                            "No successful metering for {} since {}{} (expected at least every {}, plus {} grace).",
                            describe_key(&key),
                            timestamp(since),
                            if seen {
                                ""
                            } else {
                                ", when monitoring began; none seen yet"
                            },
                            human(spec.interval),
                            human(spec.grace),
                        );
                        match self.send_absence(&alert, publish).await? {
                            AbsenceSent::Now => report.n_fired += 1,
                            AbsenceSent::Before => {}
                            // Being reported elsewhere (or by a check cut off): absent.
                            AbsenceSent::Elsewhere => {
                                report.n_absent += 1;
                                continue;
                            }
                            AbsenceSent::Failed => continue,
                        }
                        let now = self.clock.now();
                        self.store
                            .update(&state_key, now, |previous| {
                                absence::mark_reported(previous, now)
                            })
                            .await?;
                        report.n_absent += 1;
                    }
                }
            }
        }
        Ok(report)
    }

    /// Sends an absence alert once, whoever checks: its id is claimed in dedup first and
    /// confirmed after, and only then may the key be marked reported. Marking first would
    /// lose the alert for good if the check were cut off mid-publish (shutdown, a kill):
    /// the key would read as reported with nothing sent. Now a check cut off leaves a claim,
    /// taken back at once if it can be (see [`Unsent`]), else expiring after its lease, when
    /// a later check sends the alert.
    async fn send_absence(
        &self,
        alert: &Alert,
        publish: &impl Publish,
    ) -> Result<AbsenceSent, StateError> {
        let dedup_key = state_key("dedup", &alert.rule, &alert.id);
        let now = self.clock.now();
        let (verdict, undo) = self
            .store
            .update(&dedup_key, now, |previous| {
                dedup::claim(previous, now, dedup::LEASE)
            })
            .await?;
        match verdict {
            dedup::Verdict::Duplicate => return Ok(AbsenceSent::Before),
            dedup::Verdict::InFlight { .. } => return Ok(AbsenceSent::Elsewhere),
            dedup::Verdict::Fresh => {}
        }
        let mut claim = Claim {
            key: dedup_key,
            window: ABSENCE_DEDUP_WINDOW,
            until: now.saturating_add(super::millis(dedup::LEASE)),
            unsent: Unsent::new(&self.store, undo),
        };
        if !self
            .renewing(Some(&mut claim), publish.publish(alert))
            .await
        {
            // The next check tries again.
            claim.unsent.undo().await?;
            return Ok(AbsenceSent::Failed);
        }
        let Claim {
            key: dedup_key,
            window,
            unsent,
            ..
        } = claim;
        let undo = unsent.settled();
        let now = self.clock.now();
        let confirm = dedup::confirm(now, window).write;
        if let Err(error) = self.store.replace_mine(&undo, now, confirm).await {
            // The key is marked next; only if that fails too may a check after the lease
            // send the alert again.
            tracing::warn!(key = %dedup_key, error = %error, "Could not confirm an absence alert's claim.");
        }
        Ok(AbsenceSent::Now)
    }

    /// For a replay: moves the event clock to `event_time` (if later), publishes the summary
    /// of every group batch due by then and, when it has passed the next check point, checks
    /// every absence rule's keys at that time. Called before the event's own findings are
    /// admitted: a heartbeat ending a long silence first lets the silence be reported, then
    /// resolves it, as on a live queue (and a group due by then is sent before the event
    /// opens the next one). `None` when no check was due, or the clock is not an event clock.
    pub async fn observe(
        &self,
        event_time: Millis,
        rules: &arc_swap::ArcSwap<RuleSet>,
        publish: &impl Publish,
    ) -> Option<Result<AbsenceReport, StateError>> {
        let now = self.clock.observe(event_time)?;
        self.publish_groups(self.groups.take_due(now), publish)
            .await;
        if now < self.next_replay_check.load(Ordering::SeqCst) {
            return None;
        }
        let rule_set = rules.load_full();
        let period = check_period(&rule_set, CHECK_EVERY);
        self.next_replay_check
            .store(now.saturating_add(super::millis(period)), Ordering::SeqCst);
        Some(self.check_absences(&rule_set, publish).await)
    }

    /// For a replay that ended (its input, or an interruption, as a daemon's groups flush at
    /// shutdown): publishes the summary of every group batch still open. A no-op when not
    /// a replay, whose leaders flush their own batches.
    pub async fn flush_replay_groups(&self, publish: &impl Publish) {
        if self.is_replay() {
            self.publish_groups(self.groups.take_all(), publish).await;
        }
    }

    /// For a replay whose input ended: checks every absence rule's keys once more, at the
    /// latest event time, so a key silent at the end of the input is reported. `None` when
    /// not a replay, or no event had a time.
    pub async fn finish_replay(
        &self,
        rule_set: &RuleSet,
        publish: &impl Publish,
    ) -> Option<Result<AbsenceReport, StateError>> {
        if !self.clock.has_observed() {
            return None;
        }
        Some(self.check_absences(rule_set, publish).await)
    }

    /// Runs [`Noise::check_absences`] at once and then every `every` (or sooner, see
    /// [`check_period`]) until `shutdown`, skipping a check while `held` says so (the daemon
    /// reading a backlog); `report` receives each check's result (for metrics and logs).
    pub async fn run_absence_checks(
        &self,
        rules: &arc_swap::ArcSwap<RuleSet>,
        every: Duration,
        publish: &impl Publish,
        report: impl Fn(Result<AbsenceReport, StateError>),
        held: impl Fn() -> bool,
        shutdown: &CancellationToken,
    ) {
        loop {
            // The rules are read afresh each time: a reload may add, drop or retime a rule.
            let rule_set = rules.load_full();
            if !held() {
                report(self.check_absences(&rule_set, publish).await);
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(check_period(&rule_set, every)) => {}
            }
        }
    }
}

/// How long an absence alert's id is remembered once sent: the key is marked reported just
/// after, so this only covers a mark that failed, until the next checks.
const ABSENCE_DEDUP_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// What became of one absence alert ([`Noise::send_absence`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AbsenceSent {
    /// Sent by this check.
    Now,
    /// Sent by an earlier check, which could not mark the key reported.
    Before,
    /// Another check holds its claim (another replica's, or one cut off before it sent).
    Elsewhere,
    /// The publish failed; the next check tries again.
    Failed,
}

/// A write whose alert is not sent yet (a dedup claim, a throttle window, a threshold's or
/// an absence's mark), to be settled (the alert is out) or undone (it failed). Dropped
/// before either, as when a task is aborted at the shutdown's hard stop, it is undone at
/// once in memory; a DynamoDB write cannot be taken back from a drop, so it is logged: a
/// dedup claim then stands until its lease runs out (its alert is sent late), other writes
/// keep their alert back (see `dedup`'s module comment).
#[derive(Debug)]
#[must_use = "settle or undo it"]
struct Unsent<'a> {
    store: &'a Store,
    undo: Option<super::Undo>,
}

impl<'a> Unsent<'a> {
    fn new(store: &'a Store, undo: super::Undo) -> Self {
        Unsent {
            store,
            undo: Some(undo),
        }
    }

    /// The alert is out: the write stands. Returns it (to confirm a claim by).
    fn settled(mut self) -> super::Undo {
        self.undo
            .take()
            .unwrap_or_else(|| super::Undo::nothing(String::new()))
    }

    /// Renews the write (a dedup claim) with `write`, if it is still ours
    /// ([`Store::renew_mine`]).
    async fn renew(&mut self, write: super::Write) -> Result<bool, StateError> {
        match self.undo.as_mut() {
            Some(undo) => self.store.renew_mine(undo, write).await,
            None => Ok(false),
        }
    }

    /// The alert failed: takes the write back.
    async fn undo(mut self) -> Result<(), StateError> {
        match self.undo.take() {
            Some(undo) => self.store.undo(undo).await,
            None => Ok(()),
        }
    }
}

impl Drop for Unsent<'_> {
    fn drop(&mut self) {
        let Some(undo) = self.undo.take() else {
            return;
        };
        match self.store {
            Store::Memory(memory) => memory.undo(undo),
            Store::Dynamodb(_) => tracing::error!(
                key = %undo.key,
                "Interrupted between a state write and its alert's publish; the write stands \
                 though the alert may not have been sent (a dedup claim holds its alert back \
                 until its lease runs out)."
            ),
        }
    }
}

/// The shortest time between two absence checks.
const MIN_CHECK_PERIOD: Duration = Duration::from_secs(1);

/// How long until the next absence check: `every`, unless an absence rule allows so little
/// silence (`interval` + `grace`) that `every` would make its alert late by a large part of
/// it; then a tenth of that silence, but not under `MIN_CHECK_PERIOD` (each check reads
/// every watched key from the store).
pub fn check_period(rule_set: &RuleSet, every: Duration) -> Duration {
    rule_set
        .rules()
        .iter()
        .filter(|rule| rule.enabled)
        .filter_map(|rule| match &rule.controls.gate {
            Gate::Absence(spec) => Some((spec.interval + spec.grace) / 10),
            _ => None,
        })
        .fold(every, Duration::min)
        .max(MIN_CHECK_PERIOD.min(every))
}

/// A dedup claim must outlive a publish with retries and, for a grouped rule, the wait for
/// its group's flush.
fn lease(controls: &Controls) -> Duration {
    match &controls.gate {
        Gate::Group(spec) => dedup::LEASE + spec.wait + spec.interval,
        _ => dedup::LEASE,
    }
}

fn timestamp(at: Millis) -> String {
    jiff::Timestamp::from_millisecond(at)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| at.to_string())
}

fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn describe_key(key: &GroupKey) -> String {
    let parts: Vec<String> = key
        .values
        .iter()
        .map(|(path, value)| {
            let name = path.rsplit('.').next().unwrap_or(path);
            format!("{name} {value}")
        })
        .collect();
    if parts.is_empty() {
        "the rule's events".to_owned()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope;
    use crate::state::MemoryStore;
    use serde_json::json;
    use std::sync::Mutex;

    /// A sink that records what it accepts, fails while `failing` is set, and never answers
    /// while `hanging` is (an unreachable endpoint, a publish cut off by a kill).
    #[derive(Default)]
    struct Published {
        alerts: Mutex<Vec<Alert>>,
        failing: std::sync::atomic::AtomicBool,
        hanging: std::sync::atomic::AtomicBool,
    }

    impl Publish for Published {
        async fn publish(&self, alert: &Alert) -> bool {
            if self.hanging.load(std::sync::atomic::Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
                return false;
            }
            self.alerts.lock().expect("test lock").push(alert.clone());
            true
        }
    }

    impl Published {
        fn take(&self) -> Vec<Alert> {
            std::mem::take(&mut *self.alerts.lock().expect("test lock"))
        }

        fn hang(&self, hanging: bool) {
            self.hanging
                .store(hanging, std::sync::atomic::Ordering::SeqCst);
        }

        fn fail(&self, failing: bool) {
            self.failing
                .store(failing, std::sync::atomic::Ordering::SeqCst);
        }
    }

    const EPOCH: &str = "2026-01-01T00:00:00Z";

    fn noise() -> Noise {
        let epoch: jiff::Timestamp = EPOCH.parse().expect("valid epoch");
        Noise::new(
            Store::Memory(MemoryStore::default()),
            Clock::tokio_from(epoch),
            CancellationToken::new(),
        )
    }

    fn rules(text: &str) -> RuleSet {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, text).expect("write rules");
        RuleSet::load(&[&path]).unwrap_or_else(|error| panic!("{error}"))
    }

    /// A MeterUsage call (failed with `error` unless `None`) at `minute` after the epoch.
    fn event(id: &str, product: &str, minute: i64, error: Option<&str>) -> String {
        let time = jiff::Timestamp::from_second(
            EPOCH.parse::<jiff::Timestamp>().expect("valid").as_second() + minute * 60,
        )
        .expect("valid time");
        let mut detail = json!({
            "eventSource": "metering-marketplace.amazonaws.com",
            "eventName": "MeterUsage",
            "eventID": id,
            "eventTime": time.to_string(),
            "awsRegion": "us-east-1",
            "recipientAccountId": "123456789012",
            "requestParameters": {"productCode": product, "usageDimension": "hours"},
        });
        if let Some(error) = error {
            detail["errorCode"] = json!(error);
        }
        json!({
            "version": "0", "id": format!("eb-{id}"), "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.metering-marketplace", "account": "123456789012",
            "time": time.to_string(), "region": "us-east-1", "resources": [], "detail": detail,
        })
        .to_string()
    }

    async fn admit(
        noise: &Noise,
        rule_set: &RuleSet,
        body: &str,
        sink: &Published,
    ) -> Vec<Settled> {
        let events = envelope::decode(body).expect("test events decode");
        let mut settled = Vec::new();
        for event in &events {
            for finding in rule_set.findings(event).expect("evaluates") {
                let outcome = noise
                    .admit(finding, event, rule_set, sink)
                    .await
                    .expect("memory store");
                settled.push(outcome);
            }
        }
        settled
    }

    const FAILED: &str = "[[rule]]\nid = \"failed\"\ntitle = \"Failed\"\nseverity = \"high\"\n\
        match.detail.errorCode = [{ exists = true }]\n";

    #[tokio::test(start_paused = true)]
    async fn a_redelivered_event_alerts_once_within_the_dedup_window() {
        let (noise, rule_set, sink) = (noise(), rules(FAILED), Published::default());
        let body = event("e-1", "p", 0, Some("ThrottlingException"));
        assert_eq!(
            admit(&noise, &rule_set, &body, &sink).await,
            [Settled::Published]
        );
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(
            admit(&noise, &rule_set, &body, &sink).await,
            [Settled::Suppressed(Reason::Duplicate)]
        );
        tokio::time::advance(dedup::DEFAULT_WINDOW).await;
        assert_eq!(
            admit(&noise, &rule_set, &body, &sink).await,
            [Settled::Published]
        );
        assert_eq!(sink.take().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn dedup_can_be_disabled() {
        let rule_set = rules(&format!("{FAILED}[rule.dedup]\nenabled = false\n"));
        let (noise, sink) = (noise(), Published::default());
        let body = event("e-1", "p", 0, Some("ThrottlingException"));
        admit(&noise, &rule_set, &body, &sink).await;
        admit(&noise, &rule_set, &body, &sink).await;
        assert_eq!(sink.take().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_publish_releases_the_claim_for_the_redelivery() {
        let (noise, rule_set, sink) = (noise(), rules(FAILED), Published::default());
        let body = event("e-1", "p", 0, Some("ThrottlingException"));
        sink.fail(true);
        assert_eq!(
            admit(&noise, &rule_set, &body, &sink).await,
            [Settled::Failed]
        );
        sink.fail(false);
        assert_eq!(
            admit(&noise, &rule_set, &body, &sink).await,
            [Settled::Published]
        );
        assert_eq!(sink.take().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn throttle_sends_one_per_interval_and_then_counts_what_it_held_back() {
        let rule_set = rules(&format!(
            "{FAILED}[rule.throttle]\ngroup_by = [\"account\", \"detail.requestParameters.productCode\"]\ninterval = \"1h\"\n"
        ));
        let (noise, sink) = (noise(), Published::default());
        for idx in 0..5 {
            let body = event(&format!("e-{idx}"), "p", idx, Some("ThrottlingException"));
            admit(&noise, &rule_set, &body, &sink).await;
        }
        // Another product is another group.
        admit(
            &noise,
            &rule_set,
            &event("o-1", "other", 0, Some("X")),
            &sink,
        )
        .await;
        let first = sink.take();
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].suppressed, None);
        tokio::time::advance(Duration::from_secs(3600)).await;
        let settled = admit(&noise, &rule_set, &event("e-9", "p", 60, Some("X")), &sink).await;
        assert_eq!(settled, [Settled::Published]);
        let next = sink.take();
        assert_eq!(next[0].suppressed, Some(4));
        assert!(next[0].to_json().contains("\"suppressed\":4"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_group_sends_one_summary_after_its_wait_and_every_message_waits_for_it() {
        let rule_set = rules(&format!(
            "{FAILED}[rule.group]\ngroup_by = [\"detail.requestParameters.productCode\"]\nwait = \"30s\"\ninterval = \"5m\"\n"
        ));
        let (noise, sink) = (noise(), Published::default());
        let started = tokio::time::Instant::now();
        let bodies: Vec<String> = (0..3)
            .map(|idx| event(&format!("e-{idx}"), "p", idx, Some("X")))
            .collect();
        let (a, b, c) = tokio::join!(
            admit(&noise, &rule_set, &bodies[0], &sink),
            admit(&noise, &rule_set, &bodies[1], &sink),
            admit(&noise, &rule_set, &bodies[2], &sink),
        );
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        assert_eq!(
            [a, b, c].concat(),
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
        admit(&noise, &rule_set, &event("e-3", "p", 3, Some("X")), &sink).await;
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(300),
            "previous flush + interval"
        );
        assert_eq!(sink.take()[0].group.as_ref().map(|g| g.count), Some(1));
    }

    /// A replay as the pipeline drives one: each event's time observed, then its findings
    /// admitted; at the end of the input, the open groups flushed.
    async fn replay(
        rules: &arc_swap::ArcSwap<RuleSet>,
        bodies: &[String],
    ) -> (Vec<Settled>, Vec<Alert>) {
        let noise = Noise::new(
            Store::Memory(MemoryStore::default()),
            Clock::events(),
            CancellationToken::new(),
        );
        let sink = Published::default();
        let mut settled = Vec::new();
        for body in bodies {
            for event in envelope::decode(body).expect("test events decode") {
                let time: jiff::Timestamp = event
                    .event_time()
                    .expect("timed")
                    .parse()
                    .expect("valid time");
                if let Some(report) = noise.observe(time.as_millisecond(), rules, &sink).await {
                    report.expect("memory store");
                }
                let rule_set = rules.load_full();
                for finding in rule_set.findings(&event).expect("evaluates") {
                    let outcome = noise.admit(finding, &event, &rule_set, &sink).await;
                    settled.push(outcome.expect("memory store"));
                }
            }
        }
        noise.flush_replay_groups(&sink).await;
        (settled, sink.take())
    }

    #[tokio::test(start_paused = true)]
    async fn a_replay_flushes_groups_in_event_time_without_waiting() {
        let rules = arc_swap::ArcSwap::from_pointee(rules(&format!(
            "{FAILED}[rule.group]\ngroup_by = [\"detail.requestParameters.productCode\"]\nwait = \"5m\"\ninterval = \"1h\"\n"
        )));
        // p fails three times within 5 minutes of its first failure, then twice more; q once.
        let bodies: Vec<String> = [
            ("e-0", "p", 0),
            ("e-1", "p", 1),
            ("q-0", "q", 2),
            ("e-2", "p", 4),
            ("e-3", "p", 6),
            ("e-4", "p", 8),
        ]
        .iter()
        .map(|(id, product, minute)| event(id, product, *minute, Some("X")))
        .collect();
        let started = tokio::time::Instant::now();
        let (settled, alerts) = replay(&rules, &bodies).await;
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "no match waited for its group: an hour's wait and interval took no time"
        );
        assert_eq!(
            settled,
            [
                Settled::Held,
                Settled::Grouped,
                Settled::Held,
                Settled::Grouped,
                Settled::Held,
                Settled::Grouped
            ]
        );
        let groups: Vec<(u64, Vec<String>, Option<String>)> = alerts
            .iter()
            .map(|alert| {
                let group = alert.group.as_ref().expect("a summary");
                (
                    group.count,
                    group.event_ids.clone(),
                    group.last_time.clone(),
                )
            })
            .collect();
        assert_eq!(
            groups,
            [
                // Flushed by e-3's time (minute 6 is past 0 + 5m), before e-3 joined.
                (
                    3,
                    vec!["e-0".into(), "e-1".into(), "e-2".into()],
                    Some("2026-01-01T00:04:00Z".into())
                ),
                // Flushed by e-4's time (minute 8 is past 2 + 5m).
                (1, vec!["q-0".into()], Some("2026-01-01T00:02:00Z".into())),
                // p's next batch waits for its interval (5m + 1h): flushed at the end.
                (
                    2,
                    vec!["e-3".into(), "e-4".into()],
                    Some("2026-01-01T00:08:00Z".into())
                ),
            ]
        );
        assert!(
            alerts[0].summary.starts_with("3 matching events (first: "),
            "{}",
            alerts[0].summary
        );
        // The same input, the same alerts, every time.
        let again = replay(&rules, &bodies).await.1;
        assert_eq!(
            again.iter().map(Alert::to_json).collect::<Vec<_>>(),
            alerts.iter().map(Alert::to_json).collect::<Vec<_>>()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_group_publish_fails_every_member() {
        let rule_set = rules(&format!("{FAILED}[rule.group]\nwait = \"10s\"\n"));
        let (noise, sink) = (noise(), Published::default());
        sink.fail(true);
        let (first, second) = (
            event("e-0", "p", 0, Some("X")),
            event("e-1", "p", 0, Some("X")),
        );
        let (a, b) = tokio::join!(
            admit(&noise, &rule_set, &first, &sink),
            admit(&noise, &rule_set, &second, &sink),
        );
        assert_eq!([a, b].concat(), [Settled::Failed, Settled::Failed]);
    }

    /// A leader lost before its flush (its message's processing panicked or was aborted)
    /// fails its followers rather than leaving them waiting for ever, and the next match
    /// opens a batch of its own.
    #[tokio::test(start_paused = true)]
    async fn a_lost_leader_fails_its_followers_and_frees_its_group() {
        let rule_set = rules(&format!("{FAILED}[rule.group]\nwait = \"10s\"\n"));
        let (noise, sink) = (noise(), Published::default());
        let enter = |id: &'static str| {
            let (noise, rule_set, sink) = (&noise, &rule_set, &sink);
            async move {
                let events = envelope::decode(&event(id, "p", 0, Some("X"))).expect("decodes");
                let event = &events[0];
                let finding = rule_set.findings(event).expect("evaluates").remove(0);
                match noise.enter(finding, event, rule_set, sink).await {
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
        let rule_set = rules(&format!("{FAILED}[rule.group]\nwait = \"10m\"\n"));
        let (noise, sink) = (noise(), Published::default());
        let started = tokio::time::Instant::now();
        let shutdown = noise.shutdown.clone();
        let body = event("e-0", "p", 0, Some("X"));
        let (settled, ()) = tokio::join!(admit(&noise, &rule_set, &body, &sink), async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            shutdown.cancel();
        });
        assert_eq!(settled, [Settled::Published]);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_threshold_fires_once_when_count_matches_fall_within_the_window() {
        let rule_set = rules(&format!(
            "{FAILED}[rule.threshold]\ncount = 3\nwindow = \"10m\"\ngroup_by = [\"detail.requestParameters.productCode\"]\n"
        ));
        let (noise, sink) = (noise(), Published::default());
        // Minutes 8, 2 (late), 20, then 11 (late): 2, 8 and 11 fall within 10 minutes; 12
        // falls in the window that already fired.
        for (idx, minute) in [8, 2, 20, 11, 12].into_iter().enumerate() {
            admit(
                &noise,
                &rule_set,
                &event(&format!("e-{idx}"), "p", minute, Some("X")),
                &sink,
            )
            .await;
        }
        let alerts = sink.take();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].event_id.as_deref(), Some("e-3"));
        assert!(
            alerts[0].summary.starts_with("3 matches within 10m"),
            "{}",
            alerts[0].summary
        );
    }

    const STOPPED: &str = "[lists]\nexpected = [\"p\", \"q\"]\n\
        [[rule]]\nid = \"stopped\"\ntitle = \"Metering stopped for {{ product_code }}\"\nseverity = \"critical\"\n\
        match.detail.eventName = [\"MeterUsage\"]\nmatch.detail.errorCode = [{ exists = false }]\n\
        [rule.absence]\ngroup_by = [\"detail.requestParameters.productCode\"]\nexpected_list = \"expected\"\nlearn = true\n";

    async fn check(noise: &Noise, rule_set: &RuleSet, sink: &Published) -> AbsenceReport {
        noise
            .check_absences(rule_set, sink)
            .await
            .expect("memory store")
    }

    #[tokio::test(start_paused = true)]
    async fn absence_fires_once_after_interval_and_grace_and_resolves_once() {
        let (noise, rule_set, sink) = (noise(), rules(STOPPED), Published::default());
        assert_eq!(
            admit(&noise, &rule_set, &event("h-1", "p", 0, None), &sink).await,
            [Settled::Heartbeat]
        );
        admit(&noise, &rule_set, &event("h-2", "learned", 0, None), &sink).await;
        check(&noise, &rule_set, &sink).await;
        tokio::time::advance(Duration::from_secs(75 * 60)).await;
        assert_eq!(
            check(&noise, &rule_set, &sink).await.n_fired,
            0,
            "within grace"
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        let report = check(&noise, &rule_set, &sink).await;
        // p and the learned key fell silent; q was never seen, and is watched from the
        // first check.
        assert_eq!((report.n_keys, report.n_fired), (3, 3));
        let alerts = sink.take();
        assert_eq!(alerts[0].title, "Metering stopped for learned");
        assert_eq!(alerts[1].product_code.as_deref(), Some("p"));
        assert_eq!(alerts[1].status, Status::Firing);
        assert!(
            alerts[2].summary.contains("none seen yet"),
            "{}",
            alerts[2].summary
        );
        tokio::time::advance(Duration::from_secs(30 * 60)).await;
        let report = check(&noise, &rule_set, &sink).await;
        assert_eq!(
            (report.n_fired, report.n_absent),
            (0, 3),
            "once per absence"
        );

        let resumed = admit(&noise, &rule_set, &event("h-3", "p", 110, None), &sink).await;
        assert_eq!(resumed, [Settled::Published]);
        let resolved = sink.take();
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].status, Status::Resolved);
        assert!(resolved[0].to_json().contains("\"status\":\"resolved\""));
        assert_eq!(
            admit(&noise, &rule_set, &event("h-4", "p", 111, None), &sink).await,
            [Settled::Heartbeat]
        );
        assert_eq!(check(&noise, &rule_set, &sink).await.n_absent, 2);
        assert!(sink.take().is_empty());
    }

    #[test]
    fn short_absence_rules_are_checked_more_often() {
        let every = Duration::from_secs(30);
        assert_eq!(check_period(&rules(STOPPED), every), every, "1h15m allowed");
        let short = STOPPED.replace(
            "learn = true",
            "learn = true\ninterval = \"10s\"\ngrace = \"2s\"",
        );
        assert_eq!(
            check_period(&rules(&short), every),
            Duration::from_millis(1200)
        );
        let tiny = STOPPED.replace(
            "learn = true",
            "learn = true\ninterval = \"1s\"\ngrace = \"1s\"",
        );
        assert_eq!(check_period(&rules(&tiny), every), MIN_CHECK_PERIOD);
        assert_eq!(check_period(&rules(FAILED), every), every);
    }

    #[tokio::test(start_paused = true)]
    async fn the_ticker_checks_at_once_then_every_period() {
        let short = STOPPED.replace(
            "learn = true",
            "learn = true\ninterval = \"10s\"\ngrace = \"2s\"",
        );
        let rules = arc_swap::ArcSwap::from_pointee(rules(&short));
        let (noise, sink) = (noise(), Published::default());
        admit(&noise, &rules.load(), &event("h-1", "p", 0, None), &sink).await;
        let shutdown = CancellationToken::new();
        let n_checks = std::sync::atomic::AtomicUsize::new(0);
        let count = |_: Result<AbsenceReport, StateError>| {
            n_checks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        };
        let stop = async {
            // Checks at 0, 1.2, 2.4, …, 12.0 s: 11 of them; the key (silent since 0) fires
            // at the first check past 12 s.
            tokio::time::sleep(Duration::from_millis(12_100)).await;
            assert_eq!(n_checks.load(std::sync::atomic::Ordering::SeqCst), 11);
            assert!(sink.take().is_empty(), "12 s of silence are allowed");
            tokio::time::sleep(Duration::from_millis(1_200)).await;
            shutdown.cancel();
        };
        tokio::join!(
            noise.run_absence_checks(
                &rules,
                Duration::from_secs(30),
                &sink,
                count,
                || false,
                &shutdown,
            ),
            stop
        );
        let alerts = sink.take();
        // "q" (expected, never seen) is watched from the first check: also silent for 12 s.
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        assert!(alerts.iter().all(|a| a.status == Status::Firing));
    }

    /// The shipped `metering-stopped` rule's alert and resolved notice in every format, as
    /// `preview` would print them: no single event raises them, so `preview`'s snapshots of
    /// the fixtures cannot.
    #[tokio::test(start_paused = true)]
    async fn shipped_absence_alert_and_resolved_notice_in_every_format() {
        let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let rule_set = RuleSet::load(&[rules]).unwrap_or_else(|error| panic!("{error}"));
        let (noise, sink) = (noise(), Published::default());
        let product = "EXAMPLE_proCode";
        admit(&noise, &rule_set, &event("h-1", product, 0, None), &sink).await;
        tokio::time::advance(Duration::from_secs(2 * 3600)).await;
        check(&noise, &rule_set, &sink).await;
        admit(&noise, &rule_set, &event("h-2", product, 130, None), &sink).await;
        let alerts: Vec<Alert> = sink
            .take()
            .into_iter()
            .filter(|alert| &*alert.rule == "metering-stopped")
            .collect();
        assert_eq!(
            alerts.iter().map(|a| a.status).collect::<Vec<_>>(),
            [Status::Firing, Status::Resolved]
        );
        insta::assert_snapshot!(crate::cli::preview::render(&alerts, None));
    }

    #[tokio::test(start_paused = true)]
    async fn an_absence_alert_and_its_resolved_notice_share_a_thread_and_name_the_account() {
        let (noise, rule_set, sink) = (noise(), rules(STOPPED), Published::default());
        admit(&noise, &rule_set, &event("h-1", "p", 0, None), &sink).await;
        tokio::time::advance(Duration::from_secs(2 * 3600)).await;
        check(&noise, &rule_set, &sink).await;
        admit(&noise, &rule_set, &event("h-2", "p", 130, None), &sink).await;
        let alerts: Vec<Alert> = sink
            .take()
            .into_iter()
            .filter(|alert| alert.product_code.as_deref() == Some("p"))
            .collect();
        let [firing, resolved] = alerts.as_slice() else {
            panic!("a firing alert and a resolved notice: {alerts:?}");
        };
        assert_eq!(
            (firing.status, resolved.status),
            (Status::Firing, Status::Resolved)
        );
        // Where metering stopped: the last heartbeat's account and region.
        assert_eq!(firing.account.as_deref(), Some("123456789012"));
        assert_eq!(firing.region.as_deref(), Some("us-east-1"));
        use crate::alert::format::{Format, message};
        // The FIFO message group, and Slack's thread through Chatbot.
        let group = |alert: &Alert| message(alert, Format::Chatbot).group_id;
        assert_eq!(group(firing), group(resolved));
        assert_eq!(group(firing), "stopped-p");
        let thread = |alert: &Alert| {
            let body = message(alert, Format::Chatbot).body;
            let value: serde_json::Value = serde_json::from_str(&body).expect("chatbot JSON");
            value["metadata"]["threadId"].clone()
        };
        assert_eq!(thread(firing), thread(resolved));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_absence_alert_is_sent_by_the_next_check() {
        let (noise, rule_set, sink) = (noise(), rules(STOPPED), Published::default());
        admit(&noise, &rule_set, &event("h-1", "p", 0, None), &sink).await;
        tokio::time::advance(Duration::from_secs(2 * 3600)).await;
        sink.fail(true);
        assert_eq!(check(&noise, &rule_set, &sink).await.n_fired, 0);
        sink.fail(false);
        assert!(check(&noise, &rule_set, &sink).await.n_fired >= 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_absence_alert_cut_off_mid_publish_is_sent_by_the_next_check() {
        let (noise, rule_set, sink) = (noise(), rules(STOPPED), Published::default());
        admit(&noise, &rule_set, &event("h-1", "p", 0, None), &sink).await;
        tokio::time::advance(Duration::from_secs(2 * 3600)).await;
        // The ticker aborted at shutdown while SNS does not answer.
        sink.hang(true);
        let cut_off = tokio::time::timeout(
            Duration::from_secs(1),
            noise.check_absences(&rule_set, &sink),
        )
        .await;
        assert!(cut_off.is_err(), "the publish never answered");
        assert!(sink.take().is_empty());
        sink.hang(false);
        let report = check(&noise, &rule_set, &sink).await;
        // p's (q, never seen, is watched from this first finished check on).
        assert_eq!(report.n_fired, 1, "{report:?}");
        assert_eq!(sink.take()[0].product_code.as_deref(), Some("p"));
        assert_eq!(check(&noise, &rule_set, &sink).await.n_fired, 0, "once");
    }

    #[tokio::test(start_paused = true)]
    async fn an_absence_alert_whose_check_was_killed_is_sent_after_the_claims_lease() {
        let (noise, rule_set, sink) = (noise(), rules(STOPPED), Published::default());
        admit(&noise, &rule_set, &event("h-1", "p", 0, None), &sink).await;
        tokio::time::advance(Duration::from_secs(2 * 3600)).await;
        sink.hang(true);
        let mut killed = Box::pin(noise.check_absences(&rule_set, &sink));
        assert!(
            tokio::time::timeout(Duration::from_secs(1), &mut killed)
                .await
                .is_err()
        );
        // A kill: nothing of the check runs again, not even its drop (as with DynamoDB,
        // whose writes cannot be taken back from a drop).
        std::mem::forget(killed);
        sink.hang(false);
        let report = check(&noise, &rule_set, &sink).await;
        assert_eq!(
            (report.n_fired, report.n_absent),
            (0, 1),
            "p's alert is claimed by the killed check: absent, not reported"
        );
        tokio::time::advance(dedup::LEASE).await;
        let report = check(&noise, &rule_set, &sink).await;
        assert_eq!(report.n_fired, 1, "sent once the claim ran out");
        let alerts = sink.take();
        assert!(
            alerts
                .iter()
                .any(|a| a.product_code.as_deref() == Some("p")),
            "{alerts:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_delivery_cut_off_mid_publish_leaves_no_claim_in_memory() {
        let (noise, rule_set, sink) = (noise(), rules(FAILED), Published::default());
        let body = event("e-1", "p", 0, Some("ThrottlingException"));
        sink.hang(true);
        let cut_off = tokio::time::timeout(
            Duration::from_secs(1),
            admit(&noise, &rule_set, &body, &sink),
        )
        .await;
        assert!(cut_off.is_err());
        sink.hang(false);
        assert_eq!(
            admit(&noise, &rule_set, &body, &sink).await,
            [Settled::Published],
            "the redelivery sends at once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_redelivery_finding_a_killed_deliverys_claim_is_told_how_long_it_stands() {
        let (noise, rule_set, sink) = (noise(), rules(FAILED), Published::default());
        let body = event("e-1", "p", 0, Some("ThrottlingException"));
        sink.hang(true);
        let mut killed = Box::pin(admit(&noise, &rule_set, &body, &sink));
        // Killed 20 s in, 5 s after it renewed its claim.
        assert!(
            tokio::time::timeout(Duration::from_secs(20), &mut killed)
                .await
                .is_err()
        );
        std::mem::forget(killed);
        sink.hang(false);
        assert_eq!(
            admit(&noise, &rule_set, &body, &sink).await,
            [Settled::InFlight {
                remaining: dedup::LEASE - Duration::from_secs(5)
            }]
        );
        // Free a lease after the last renewal, not a fixed time after the claim.
        tokio::time::advance(dedup::LEASE - Duration::from_secs(5)).await;
        assert_eq!(
            admit(&noise, &rule_set, &body, &sink).await,
            [Settled::Published]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_live_holder_keeps_its_claim_past_the_lease_while_it_publishes() {
        let (noise, rule_set, sink) = (noise(), rules(FAILED), Published::default());
        let body = event("e-1", "p", 0, Some("ThrottlingException"));
        sink.hang(true);
        let mut slow = Box::pin(admit(&noise, &rule_set, &body, &sink));
        let held_for = dedup::LEASE * 10 + Duration::from_secs(1);
        assert!(
            tokio::time::timeout(held_for, &mut slow).await.is_err(),
            "the publish never answers"
        );
        // The redelivery finds the claim renewed 1 s ago, not expired 9 leases ago.
        let redelivery = admit(&noise, &rule_set, &body, &sink).await;
        assert_eq!(
            redelivery,
            [Settled::InFlight {
                remaining: dedup::LEASE - Duration::from_secs(1)
            }]
        );
        assert!(sink.take().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_grouped_claim_is_renewed_past_its_first_lease_while_its_flush_publishes() {
        let rule_set = rules(&format!(
            "{FAILED}[rule.group]\ngroup_by = [\"account\"]\nwait = \"30s\"\ninterval = \"5m\"\n"
        ));
        let (noise, sink) = (noise(), Published::default());
        let body = event("e-1", "p", 0, Some("ThrottlingException"));
        sink.hang(true);
        let mut slow = Box::pin(admit(&noise, &rule_set, &body, &sink));
        // The first lease covers the wait and the interval; the summary's publish hangs on.
        let first_lease = dedup::LEASE + Duration::from_secs(30 + 300);
        let held_for = first_lease + dedup::LEASE * 2;
        assert!(tokio::time::timeout(held_for, &mut slow).await.is_err());
        let redelivery = admit(&noise, &rule_set, &body, &sink).await;
        assert!(
            matches!(redelivery[..], [Settled::InFlight { remaining }]
                if remaining > dedup::LEASE - dedup::RENEW_EVERY && remaining <= dedup::LEASE),
            "{redelivery:?}"
        );
    }
}
