//! The dedup claim of a finding's alert: taken before its gate decides, renewed every
//! [`dedup::RENEW_EVERY`] while its holder publishes or waits for a group's flush, then
//! confirmed (the alert is out) or taken back (so that a redelivery decides again). The
//! decisions are `state::dedup`'s; this drives them through the store. Called by
//! [`Noise::enter`], `group` (a grouped match's settle) and `absence` (an absence alert's id
//! is claimed too).

use super::unsent::Unsent;
use super::{Noise, Reason, Settled};
use crate::alert::Alert;
use crate::state::{Controls, Gate, Millis, StateError, dedup, millis, state_key};
use std::time::Duration;

/// A dedup claim taken for a finding, until it is settled.
#[derive(Debug)]
pub(super) struct Claim<'n> {
    pub(super) key: String,
    pub(super) window: Duration,
    /// Until when the claim stands, as last written (claimed or renewed).
    until: Millis,
    pub(super) unsent: Unsent<'n>,
}

/// A dedup claim must outlive a publish with retries and, for a grouped rule, the wait for
/// its group's flush.
pub(super) fn lease(controls: &Controls) -> Duration {
    match &controls.gate {
        Gate::Group(spec) => dedup::LEASE + spec.wait + spec.interval,
        _ => dedup::LEASE,
    }
}

impl Noise {
    /// Claims `alert`'s id for `lease`, to be remembered for `window` once confirmed; `Err`
    /// with what became of the alert when someone else has it: sent before
    /// ([`Reason::Duplicate`]), or claimed by another delivery ([`Settled::InFlight`]).
    pub(super) async fn claim(
        &self,
        alert: &Alert,
        lease: Duration,
        window: Duration,
    ) -> Result<Result<Claim<'_>, Settled>, StateError> {
        let dedup_key = state_key("dedup", &alert.rule, &alert.id);
        let now = self.clock.now();
        let (verdict, undo) = self
            .store
            .update(&dedup_key, now, |previous| {
                dedup::claim(previous, now, lease)
            })
            .await?;
        Ok(match verdict {
            dedup::Verdict::Duplicate => Err(Settled::Suppressed(Reason::Duplicate)),
            dedup::Verdict::InFlight { until } => {
                let remaining = u64::try_from(until.saturating_sub(now)).unwrap_or(0);
                Err(Settled::InFlight {
                    remaining: Duration::from_millis(remaining),
                })
            }
            dedup::Verdict::Fresh => Ok(Claim {
                key: dedup_key,
                window,
                until: now.saturating_add(millis(lease)),
                unsent: Unsent::new(&self.store, undo),
            }),
        })
    }

    /// Runs `work` (a publish, a wait for a group's flush) while renewing `claim` every
    /// [`dedup::RENEW_EVERY`], so that it stands as long as its holder lives and runs out
    /// within a [`dedup::LEASE`] once the holder is killed. A renewal that finds the claim
    /// taken by someone else (it ran out: the store was unreachable for a whole lease) stops
    /// renewing; the alert may then go out twice, which is logged.
    pub(super) async fn renewing<T>(
        &self,
        claim: Option<&mut Claim<'_>>,
        work: impl Future<Output = T>,
    ) -> T {
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
    pub(super) async fn finish_claim(
        &self,
        claim: Option<Claim<'_>>,
        settled: Result<&Settled, &StateError>,
    ) {
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
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Published, admit, failed, group, noise, without_dedup};
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_redelivered_event_alerts_once_within_the_dedup_window() {
        let (noise, sink, found) = (noise(), Published::default(), failed("e-1"));
        assert_eq!(admit(&noise, &found, &sink).await, Settled::Published);
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(
            admit(&noise, &found, &sink).await,
            Settled::Suppressed(Reason::Duplicate)
        );
        tokio::time::advance(dedup::DEFAULT_WINDOW).await;
        assert_eq!(admit(&noise, &found, &sink).await, Settled::Published);
        assert_eq!(sink.take().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn dedup_can_be_disabled() {
        let (noise, sink) = (noise(), Published::default());
        let found = failed("e-1").controls(without_dedup());
        admit(&noise, &found, &sink).await;
        admit(&noise, &found, &sink).await;
        assert_eq!(sink.take().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_publish_releases_the_claim_for_the_redelivery() {
        let (noise, sink, found) = (noise(), Published::default(), failed("e-1"));
        sink.fail(true);
        assert_eq!(admit(&noise, &found, &sink).await, Settled::Failed);
        sink.fail(false);
        assert_eq!(admit(&noise, &found, &sink).await, Settled::Published);
        assert_eq!(sink.take().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_delivery_cut_off_mid_publish_leaves_no_claim_in_memory() {
        let (noise, sink, found) = (noise(), Published::default(), failed("e-1"));
        sink.hang(true);
        let cut_off =
            tokio::time::timeout(Duration::from_secs(1), admit(&noise, &found, &sink)).await;
        assert!(cut_off.is_err());
        sink.hang(false);
        assert_eq!(
            admit(&noise, &found, &sink).await,
            Settled::Published,
            "the redelivery sends at once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_redelivery_finding_a_killed_deliverys_claim_is_told_how_long_it_stands() {
        let (noise, sink, found) = (noise(), Published::default(), failed("e-1"));
        sink.hang(true);
        let mut killed = Box::pin(admit(&noise, &found, &sink));
        // Killed 20 s in, 5 s after it renewed its claim.
        assert!(
            tokio::time::timeout(Duration::from_secs(20), &mut killed)
                .await
                .is_err()
        );
        std::mem::forget(killed);
        sink.hang(false);
        assert_eq!(
            admit(&noise, &found, &sink).await,
            Settled::InFlight {
                remaining: dedup::LEASE - Duration::from_secs(5)
            }
        );
        // Free a lease after the last renewal, not a fixed time after the claim.
        tokio::time::advance(dedup::LEASE - Duration::from_secs(5)).await;
        assert_eq!(admit(&noise, &found, &sink).await, Settled::Published);
    }

    #[tokio::test(start_paused = true)]
    async fn a_live_holder_keeps_its_claim_past_the_lease_while_it_publishes() {
        let (noise, sink, found) = (noise(), Published::default(), failed("e-1"));
        sink.hang(true);
        let mut slow = Box::pin(admit(&noise, &found, &sink));
        let publishing_for = dedup::LEASE * 10 + Duration::from_secs(1);
        assert!(
            tokio::time::timeout(publishing_for, &mut slow)
                .await
                .is_err(),
            "the publish never answers"
        );
        // The redelivery finds the claim renewed 1 s ago, not expired 9 leases ago.
        assert_eq!(
            admit(&noise, &found, &sink).await,
            Settled::InFlight {
                remaining: dedup::LEASE - Duration::from_secs(1)
            }
        );
        assert!(sink.take().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_grouped_claim_is_renewed_past_its_first_lease_while_its_flush_publishes() {
        let (noise, sink) = (noise(), Published::default());
        let grouped = group(
            &["account"],
            Duration::from_secs(30),
            Duration::from_secs(300),
        );
        let found = failed("e-1").controls(grouped);
        sink.hang(true);
        let mut slow = Box::pin(admit(&noise, &found, &sink));
        // The first lease covers the wait and the interval; the summary's publish hangs on.
        let first_lease = dedup::LEASE + Duration::from_secs(30 + 300);
        let publishing_for = first_lease + dedup::LEASE * 2;
        assert!(
            tokio::time::timeout(publishing_for, &mut slow)
                .await
                .is_err()
        );
        let redelivery = admit(&noise, &found, &sink).await;
        assert!(
            matches!(redelivery, Settled::InFlight { remaining }
                if remaining > dedup::LEASE - dedup::RENEW_EVERY && remaining <= dedup::LEASE),
            "{redelivery:?}"
        );
    }
}
