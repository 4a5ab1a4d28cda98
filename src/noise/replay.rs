//! A replay (event files, stdin) keeps the events' time (`state::Clock::Events`): absence
//! checks run as that clock passes their check points, and group batches flush as it reaches
//! their flush time, so that a replay's output depends on its input only. Called by the
//! pipeline, before each event's findings and at the end of the input.

use super::absence::{AbsenceReport, CHECK_EVERY, check_period};
use super::{Noise, Publish};
use crate::rules::RuleSet;
use crate::state::{Millis, StateError, millis};
use std::sync::atomic::Ordering;

impl Noise {
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
            .store(now.saturating_add(millis(period)), Ordering::SeqCst);
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
}

#[cfg(test)]
mod tests {
    use super::super::Settled;
    use super::super::testing::{Match, Published, failed, group, no_rules, replay_noise};
    use crate::alert::Alert;
    use std::time::Duration;

    /// A replay as the pipeline drives one: each event's time observed, then its finding
    /// admitted; at the end of the input, the open groups flushed.
    async fn replay(found: &[Match]) -> (Vec<Settled>, Vec<Alert>) {
        let noise = replay_noise();
        let rules = arc_swap::ArcSwap::from_pointee(no_rules());
        let sink = Published::default();
        let mut settled = Vec::new();
        for found in found {
            let (event, finding) = found.build();
            let time: jiff::Timestamp = event
                .event_time()
                .expect("timed")
                .parse()
                .expect("valid time");
            if let Some(report) = noise.observe(time.as_millisecond(), &rules, &sink).await {
                report.expect("memory store");
            }
            let rule_set = rules.load_full();
            let outcome = noise.admit(finding, &event, &rule_set, &sink).await;
            settled.push(outcome.expect("memory store"));
        }
        noise.flush_replay_groups(&sink).await;
        (settled, sink.take())
    }

    #[tokio::test(start_paused = true)]
    async fn a_replay_flushes_groups_in_event_time_without_waiting() {
        let grouped = group(
            &["detail.requestParameters.productCode"],
            Duration::from_secs(300),
            Duration::from_secs(3600),
        );
        // p fails three times within 5 minutes of its first failure, then twice more; q once.
        let found: Vec<Match> = [
            ("e-0", "p", 0),
            ("e-1", "p", 1),
            ("q-0", "q", 2),
            ("e-2", "p", 4),
            ("e-3", "p", 6),
            ("e-4", "p", 8),
        ]
        .iter()
        .map(|(id, product, minute)| {
            failed(id)
                .product(product)
                .minute(*minute)
                .controls(grouped.clone())
        })
        .collect();
        let started = tokio::time::Instant::now();
        let (settled, alerts) = replay(&found).await;
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "no match waited for its group: an hour's wait and interval took no time"
        );
        assert_eq!(
            settled,
            [
                Settled::GroupOpened,
                Settled::Grouped,
                Settled::GroupOpened,
                Settled::Grouped,
                Settled::GroupOpened,
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
        let again = replay(&found).await.1;
        assert_eq!(
            again.iter().map(Alert::to_json).collect::<Vec<_>>(),
            alerts.iter().map(Alert::to_json).collect::<Vec<_>>()
        );
    }
}
