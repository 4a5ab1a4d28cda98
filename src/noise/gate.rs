//! The gates on one finding past its dedup claim: throttle, threshold, and an absence rule's
//! heartbeat (a grouped match goes to [`super::group`] instead). Each drives its
//! `state` decision through the store, has `alert::summary` word what it rewrites, publishes,
//! and takes its write back if the publish failed. Called by [`Noise::enter`].

use super::unsent::Unsent;
use super::{Noise, Publish, Reason, Settled};
use crate::alert::{Alert, summary};
use crate::envelope::Event;
use crate::rules::RuleSet;
use crate::state::{
    Controls, Gate, GroupKey, StateError, Undo, absence, state_key, threshold, throttle,
};
use std::sync::Arc;

impl Noise {
    pub(super) async fn gate(
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
                    throttle::Verdict::Suppress => Ok(Settled::Suppressed(Reason::Throttled)),
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
                        summary::threshold_reached(alert, count, spec.window, first, last);
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
                        summary::resolved(alert, &key.text, &key.values, silent_since);
                        self.publish_or_undo(alert, undo, publish).await
                    }
                }
            }
            // Never reached: `enter` takes grouped matches before the gate. (Failing would
            // leave the message for redelivery: nothing lost.)
            Gate::Group(_) => Ok(Settled::Failed),
        }
    }

    async fn publish_or_undo(
        &self,
        alert: &Alert,
        undo: Undo,
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
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Published, admit, failed, noise, threshold, throttle};
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn throttle_sends_one_per_interval_and_then_counts_what_it_held_back() {
        let throttled = throttle(
            &["account", "detail.requestParameters.productCode"],
            Duration::from_secs(3600),
        );
        let (noise, sink) = (noise(), Published::default());
        for idx in 0..5 {
            let found = failed(&format!("e-{idx}"))
                .minute(idx)
                .controls(throttled.clone());
            admit(&noise, &found, &sink).await;
        }
        // Another product is another group.
        let other = failed("o-1").product("other").controls(throttled.clone());
        admit(&noise, &other, &sink).await;
        let first = sink.take();
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].suppressed, None);
        tokio::time::advance(Duration::from_secs(3600)).await;
        let next = failed("e-9").minute(60).controls(throttled);
        assert_eq!(admit(&noise, &next, &sink).await, Settled::Published);
        let next = sink.take();
        assert_eq!(next[0].suppressed, Some(4));
        assert!(next[0].to_json().contains("\"suppressed\":4"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_threshold_fires_once_when_count_matches_fall_within_the_window() {
        let counted = threshold(
            &["detail.requestParameters.productCode"],
            3,
            Duration::from_secs(600),
        );
        let (noise, sink) = (noise(), Published::default());
        // Minutes 8, 2 (late), 20, then 11 (late): 2, 8 and 11 fall within 10 minutes; 12
        // falls in the window that already fired.
        for (idx, minute) in [8, 2, 20, 11, 12].into_iter().enumerate() {
            let found = failed(&format!("e-{idx}"))
                .minute(minute)
                .controls(counted.clone());
            admit(&noise, &found, &sink).await;
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
}
