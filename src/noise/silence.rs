//! Silences as a gate: the last step before any publish (a finding's alert, a throttled or
//! threshold one, a group's summary, an absence alert, a resolved notice). A silenced alert
//! is not sent, and counts as handled: its message is deleted, its dedup claim confirmed,
//! its gate's write kept; [`Publish::silenced`] logs and counts it.
//!
//! Two kinds of silences apply: the rule files' (`[[silence]]`, passed in with the rule
//! set, or with the group batch they were in force for) and the state table's
//! ([`Noise::set_stored_silences`], polled by the daemon). Both are judged by the noise
//! clock: the wall clock live, event time in a replay.
//!
//! An absence alert is the one that is not simply dropped: its key is not marked reported,
//! so each check finds it again and, once the silence has ended, the next check sends it (a
//! silence never loses an absence). The resolved notice of an absence whose alert was
//! silenced is never sent, since the key was never reported. Each silenced absence is
//! counted once (a marker per alert id in the store, until the silence ends).

use super::{Noise, Publish};
use crate::alert::Alert;
use crate::rules::silence::Silences;
use crate::state::silence::Silence;
use crate::state::{Change, Entry, StateError, Write, dedup, state_key};
use std::sync::Arc;

/// What became of an alert at the silence gate.
#[derive(Debug)]
pub(super) enum Sent {
    Published,
    Silenced,
    Failed,
}

impl Noise {
    /// Replaces the silences read from the state table.
    pub fn set_stored_silences(&self, silences: Silences) {
        self.stored_silences.store(Arc::new(silences));
    }

    /// The silences read from the state table, as last set.
    pub fn stored_silences(&self) -> Arc<Silences> {
        self.stored_silences.load_full()
    }

    /// The silence in force now that silences `alert`: `file`'s, else a stored one.
    pub(super) fn silencing(&self, alert: &Alert, file: &Silences) -> Option<Arc<Silence>> {
        let now = self.clock.now();
        if let Some(silence) = file.silencing(alert, now) {
            return Some(Arc::clone(silence));
        }
        self.stored_silences.load().silencing(alert, now).cloned()
    }

    /// Publishes `alert` unless a silence holds for it.
    pub(super) async fn send(
        &self,
        alert: &Alert,
        file: &Silences,
        publish: &impl Publish,
    ) -> Sent {
        if let Some(silence) = self.silencing(alert, file) {
            publish.silenced(alert, &silence);
            return Sent::Silenced;
        }
        if publish.publish(alert).await {
            Sent::Published
        } else {
            Sent::Failed
        }
    }

    /// For an absence alert a silence holds for: tells `publish` the first time only (each
    /// check finds the absence again while the silence lasts).
    pub(super) async fn note_silenced_absence(
        &self,
        alert: &Alert,
        silence: &Silence,
        publish: &impl Publish,
    ) -> Result<(), StateError> {
        let key = state_key("silenced", &alert.rule, &alert.id);
        let now = self.clock.now();
        let (first, _) = self
            .store
            .update(&key, now, |previous| Change {
                write: match previous {
                    Some(_) => Write::Keep,
                    None => Write::Put {
                        entry: Entry::Dedup(dedup::Seen::Sent),
                        expires_at: silence.ends.max(now),
                    },
                },
                decision: previous.is_none(),
            })
            .await?;
        if first {
            publish.silenced(alert, silence);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Published, admit, failed, replay_noise};
    use super::super::{Noise, Settled};
    use crate::rules::RuleSet;

    fn rules(text: &str) -> RuleSet {
        super::super::testing::rules(text)
    }

    /// Absence of `p` after 1 h + 15 min, silenced from 01:00 to 03:00 on 2026-01-01.
    const STOPPED: &str = "[[rule]]\nid = \"stopped\"\ntitle = \"Metering stopped for {{ product_code }}\"\nseverity = \"critical\"\n\
        match.detail.eventName = [\"MeterUsage\"]\nmatch.detail.errorCode = [{ exists = false }]\n\
        [rule.absence]\ngroup_by = [\"detail.requestParameters.productCode\"]\nlearn = true\n\
        [[silence]]\nid = \"migration\"\ncomment = \"job moves\"\ncreated_by = \"ops@example.com\"\n\
        starts = \"2026-01-01T01:00:00Z\"\nends = \"2026-01-01T03:00:00Z\"\n\
        match.rule = [\"stopped\"]\nmatch.product_code = [\"p*\"]\n";

    #[tokio::test(start_paused = true)]
    async fn a_replayed_absence_in_a_silence_fires_once_after_it_and_resolves_once() {
        use super::super::testing::event;
        let (noise, rule_set, sink) = (replay_noise(), rules(STOPPED), Published::default());
        let rules = arc_swap::ArcSwap::from_pointee(rule_set);
        // p meters at 00:00, then nothing until 04:00: absent from 01:15, within the
        // silence until 03:00. q meters throughout and is never absent.
        let mut heartbeats: Vec<(&str, &str, i64)> = (0..=8)
            .map(|half_hour| ("q", "q-", half_hour * 30))
            .collect();
        heartbeats.push(("p", "p-", 0));
        heartbeats.push(("p", "p-", 240));
        heartbeats.push(("p", "p-", 270));
        heartbeats.sort_by_key(|(_, _, minute)| *minute);
        let mut resolved_at = None;
        let mut sent_at_three = Vec::new();
        for (idx, (product, prefix, minute)) in heartbeats.into_iter().enumerate() {
            let body = event(&format!("{prefix}{idx}"), product, minute, None);
            let time = 1_767_225_600_000 + minute * 60_000;
            if let Some(report) = noise.observe(time, &rules, &sink).await {
                report.expect("memory store");
            }
            let settled =
                super::super::testing::admit_body(&noise, &rules.load(), &body, &sink).await;
            if settled.contains(&Settled::Published) {
                resolved_at = Some(minute);
            }
            if minute == 150 {
                // The checks at 01:30, 02:00 and 02:30 found p absent, and silenced.
                assert!(sink.take().is_empty(), "silenced until 03:00");
                assert_eq!(sink.n_silenced(), 1, "counted once, not at every check");
            }
            if minute == 180 {
                // The check at 03:00, when the silence ended, sent it.
                sent_at_three = sink.take();
                assert_eq!(sent_at_three.len(), 1, "{sent_at_three:?}");
            }
        }
        noise.finish_replay(&rules.load(), &sink).await;
        // What was sent at 03:00, then from 04:00 on.
        let mut alerts = sent_at_three;
        alerts.extend(sink.take());
        let titles: Vec<(&str, crate::alert::Status)> = alerts
            .iter()
            .map(|alert| (alert.title.as_str(), alert.status))
            .collect();
        assert_eq!(
            titles,
            [
                ("Metering stopped for p", crate::alert::Status::Firing),
                ("Metering stopped for p", crate::alert::Status::Resolved),
            ]
        );
        let fired = alerts[0].summary.clone();
        assert!(fired.contains("2026-01-01T00:00:00Z"), "{fired}");
        assert_eq!(resolved_at, Some(240));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silenced_alert_is_handled_not_sent_and_its_redelivery_is_a_duplicate() {
        let (noise, sink) = (Noise::in_memory(), Published::default());
        let found = failed("e-1");
        noise.set_stored_silences(crate::rules::silence::Silences::new(vec![
            crate::rules::silence::Compiled::new(
                crate::state::silence::Silence {
                    id: "all-failures".into(),
                    comment: "incident 42".into(),
                    created_by: "arn:aws:iam::123456789012:user/ops".into(),
                    starts: 0,
                    ends: i64::MAX,
                    matchers: [("rule".to_owned(), vec!["*".to_owned()])].into(),
                },
                None,
            )
            .expect("valid"),
        ]));
        assert_eq!(admit(&noise, &found, &sink).await, Settled::Silenced);
        assert!(Settled::Silenced.is_done(), "its message is deleted");
        assert!(sink.take().is_empty());
        assert_eq!(sink.n_silenced(), 1);
        assert_eq!(
            admit(&noise, &found, &sink).await,
            Settled::Suppressed(super::super::Reason::Duplicate)
        );
        noise.set_stored_silences(crate::rules::silence::Silences::default());
        let other = failed("e-2");
        assert_eq!(admit(&noise, &other, &sink).await, Settled::Published);
    }
}
