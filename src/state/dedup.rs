//! Dedup: SQS and EventBridge deliver at least once, so one CloudTrail event can arrive
//! twice (or be redelivered after a failure). Its alert is sent once within a window.
//!
//! The key is the alert id, a UUIDv5 of rule, `eventID` and element path. A key is first
//! *claimed* (`Pending`, with a lease) before the alert is sent, and *confirmed* (`Sent`,
//! kept for the window) after. A second delivery that finds a live claim neither sends nor
//! deletes ([`Verdict::InFlight`], which says when the claim runs out): its message comes back
//! after a failure's backoff (twice), and, should the claim still stand then, once it has run out (see
//! `daemon::ack::in_flight_after`). By then the claim is confirmed (a duplicate: deleted),
//! taken back after a failed publish, or expired because its holder was killed before it could
//! confirm or undo (claimed again: sent).
//!
//! A claim is short ([`LEASE`]) and its live holder renews it every [`RENEW_EVERY`] while it
//! publishes or waits for its group's flush (see `noise`), so a slow holder keeps its claim
//! and a killed one's runs out within a lease of its last renewal.
//!
//! What holds: no interleaving of replicas sends an alert twice within the window while its
//! claim stands. A claim left by a killed holder delays the alert by up to [`LEASE`] (a
//! grouped one's first lease also covers its group's wait), and costs its redelivery about
//! three receives (InFlight: back after the backoff twice, then kept invisible for the rest
//! of the lease), not one per visibility timeout; so with the shipped redrive (5 receives) it
//! is sent late, not lost. What
//! does not hold: a holder killed after its publish was accepted but before it confirmed makes
//! the alert go out twice (at least once); and a kill between a gate's write (throttle,
//! threshold) and its publish loses that gate's alert for its interval or window (the write says
//! "sent"; the redelivery is then held or counted), see `noise`.

use super::{Change, Entry, Millis, Write, millis};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[rule.dedup] window` when not given.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// How long a claim stands unless its holder renews it: a killed holder's claims free this
/// long after its last renewal. A grouped alert's first lease also covers the group's wait
/// and interval.
pub const LEASE: Duration = Duration::from_secs(60);

/// How often a live holder renews its claims: a quarter of the lease, so that three renewals
/// in a row may fail (a slow or briefly unreachable store) before a claim runs out.
pub const RENEW_EVERY: Duration = Duration::from_secs(15);

/// A remembered alert id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seen {
    /// Someone is sending it (or absorbing it in a group or count) until `until`.
    Pending { until: Millis },
    /// It was handled.
    Sent,
}

/// What a delivery of an alert id should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// First delivery: go on, then confirm (or undo the claim if sending failed).
    Fresh,
    /// Already handled within the window: drop it.
    Duplicate,
    /// Another delivery is being handled right now, its claim standing until `until`: leave
    /// the message for redelivery after then.
    InFlight { until: Millis },
}

/// Claims `previous`'s key for a delivery at `now`.
pub fn claim(previous: Option<&Entry>, now: Millis, lease: Duration) -> Change<Verdict> {
    let keep = |decision| Change {
        write: Write::Keep,
        decision,
    };
    match previous {
        Some(Entry::Dedup(Seen::Sent)) => keep(Verdict::Duplicate),
        Some(Entry::Dedup(Seen::Pending { until })) if *until > now => {
            keep(Verdict::InFlight { until: *until })
        }
        // Absent, an expired lease, or (never, keys are per kind) another kind's entry.
        _ => {
            let until = now + millis(lease);
            Change {
                write: Write::Put {
                    entry: Entry::Dedup(Seen::Pending { until }),
                    expires_at: until,
                },
                decision: Verdict::Fresh,
            }
        }
    }
}

/// Renews a claim standing `until`, at `now`: it then stands a [`LEASE`] from now, or
/// until `until` if that is later (a grouped claim's first lease). Written on condition that
/// the claim is still the holder's own (`Store::renew_mine`).
pub fn renew(until: Millis, now: Millis) -> (Millis, Write) {
    let until = until.max(now.saturating_add(millis(LEASE)));
    let write = Write::Put {
        entry: Entry::Dedup(Seen::Pending { until }),
        expires_at: until,
    };
    (until, write)
}

/// Confirms a claim: the alert was handled at `now`; remember it for `window`.
pub fn confirm(now: Millis, window: Duration) -> Change<()> {
    Change {
        write: Write::Put {
            entry: Entry::Dedup(Seen::Sent),
            expires_at: now + millis(window),
        },
        decision: (),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{MemoryStore, Store};

    const MINUTE: Millis = 60_000;

    async fn claim_at(store: &Store, now: Millis) -> (Verdict, crate::state::Undo) {
        store
            .update("k", now, |previous| claim(previous, now, LEASE))
            .await
            .expect("memory store")
    }

    #[tokio::test]
    async fn a_confirmed_alert_is_a_duplicate_for_the_window_only() {
        let store = Store::Memory(MemoryStore::default());
        assert_eq!(claim_at(&store, 0).await.0, Verdict::Fresh);
        store
            .update("k", MINUTE, |_| confirm(MINUTE, DEFAULT_WINDOW))
            .await
            .expect("memory store");
        assert_eq!(claim_at(&store, 2 * MINUTE).await.0, Verdict::Duplicate);
        let after_window = MINUTE + millis(DEFAULT_WINDOW);
        assert_eq!(claim_at(&store, after_window).await.0, Verdict::Fresh);
    }

    #[tokio::test]
    async fn a_live_claim_holds_redeliveries_until_its_lease_runs_out() {
        let store = Store::Memory(MemoryStore::default());
        assert_eq!(claim_at(&store, 0).await.0, Verdict::Fresh);
        let until = millis(LEASE);
        assert_eq!(
            claim_at(&store, MINUTE / 2).await.0,
            Verdict::InFlight { until },
            "it says when the claim runs out"
        );
        // The claimant died: after the lease someone else sends it.
        assert_eq!(claim_at(&store, millis(LEASE)).await.0, Verdict::Fresh);
    }

    #[test]
    fn a_renewal_extends_a_claim_by_a_lease_but_never_shortens_it() {
        assert_eq!(renew(MINUTE, MINUTE / 2).0, MINUTE / 2 + millis(LEASE));
        let grouped = 30 * MINUTE;
        assert_eq!(renew(grouped, MINUTE).0, grouped);
    }

    #[tokio::test]
    async fn only_the_holder_of_a_standing_claim_renews_it() {
        let store = Store::Memory(MemoryStore::default());
        let (_, mut first) = claim_at(&store, 0).await;
        let (_, write) = renew(millis(LEASE), MINUTE / 2);
        assert!(
            store
                .renew_mine(&mut first, write.clone())
                .await
                .expect("memory store")
        );
        assert_eq!(
            claim_at(&store, MINUTE).await.0,
            Verdict::InFlight {
                until: MINUTE / 2 + millis(LEASE)
            }
        );
        // Its holder was too slow: the claim ran out and was taken again.
        let (_, mut second) = claim_at(&store, 10 * MINUTE).await;
        assert!(
            !store
                .renew_mine(&mut first, write)
                .await
                .expect("memory store")
        );
        // The renewal kept the first claim's token: its undo is still its own (a no-op now).
        store.undo(first).await.expect("memory store");
        let (_, write) = renew(10 * MINUTE + millis(LEASE), 10 * MINUTE);
        assert!(
            store
                .renew_mine(&mut second, write)
                .await
                .expect("memory store")
        );
    }

    #[tokio::test]
    async fn an_undone_claim_lets_the_redelivery_send() {
        let store = Store::Memory(MemoryStore::default());
        let (verdict, undo) = claim_at(&store, 0).await;
        assert_eq!(verdict, Verdict::Fresh);
        store.undo(undo).await.expect("memory store");
        assert_eq!(claim_at(&store, 1).await.0, Verdict::Fresh);
    }
}
