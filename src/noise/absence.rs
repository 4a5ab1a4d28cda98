//! Absence checks: every absence rule's expected and learned keys, read from the store and
//! judged by `state::absence::check`; a key silent for longer than its rule allows gets one
//! alert (built by `rules`' [`RuleSet::absence_alert`], worded by `alert::summary`), sent
//! once whoever checks. Called by the daemon's ticker ([`Noise::run_absence_checks`]) and by
//! `replay` (in event time).

use super::{Noise, Publish, Reason, Settled};
use crate::alert::{Alert, summary};
use crate::rules::RuleSet;
use crate::state::{Entry, Gate, StateError, absence, dedup, state_key};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often absence rules' keys are checked: a small fraction of any sensible grace. A rule
/// allowing less silence is checked more often ([`check_period`]). In a replay, in event time.
pub const CHECK_EVERY: Duration = Duration::from_secs(30);

/// The shortest time between two absence checks.
const MIN_CHECK_PERIOD: Duration = Duration::from_secs(1);

/// How long an absence alert's id is remembered once sent: the key is marked reported just
/// after, so this only covers a mark that failed, until the next checks.
const ABSENCE_DEDUP_WINDOW: Duration = Duration::from_secs(24 * 3600);

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

impl Noise {
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
                if let Some(Entry::Keys(learned)) =
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
                        let allowed = summary::Allowed {
                            interval: spec.interval,
                            grace: spec.grace,
                        };
                        summary::absent(&mut alert, &key_text, &key.values, since, seen, allowed);
                        match self.send_absence(&alert, publish).await? {
                            Settled::Published => report.n_fired += 1,
                            // Sent by an earlier check, which could not mark the key reported.
                            Settled::Suppressed(Reason::Duplicate) => {}
                            // Being reported elsewhere (another replica's check, or one cut
                            // off before it sent): absent.
                            Settled::InFlight { .. } => {
                                report.n_absent += 1;
                                continue;
                            }
                            // The publish failed (nothing else comes of a send): the next
                            // check tries again.
                            _ => continue,
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
    /// taken back at once if it can be (see `unsent`), else expiring after its lease, when
    /// a later check sends the alert.
    ///
    /// [`Settled::Published`] when sent now, `Suppressed(Duplicate)` when sent before,
    /// `InFlight` when another check holds its claim, `Failed` when the publish failed.
    async fn send_absence(
        &self,
        alert: &Alert,
        publish: &impl Publish,
    ) -> Result<Settled, StateError> {
        let mut claim = match self
            .claim(alert, dedup::LEASE, ABSENCE_DEDUP_WINDOW)
            .await?
        {
            Ok(claim) => claim,
            Err(settled) => return Ok(settled),
        };
        if !self
            .renewing(Some(&mut claim), publish.publish(alert))
            .await
        {
            // The next check tries again.
            claim.unsent.undo().await?;
            return Ok(Settled::Failed);
        }
        let undo = claim.unsent.settled();
        let now = self.clock.now();
        let confirm = dedup::confirm(now, claim.window).write;
        if let Err(error) = self.store.replace_mine(&undo, now, confirm).await {
            // The key is marked next; only if that fails too may a check after the lease
            // send the alert again.
            tracing::warn!(key = %claim.key, error = %error, "Could not confirm an absence alert's claim.");
        }
        Ok(Settled::Published)
    }

    /// Runs [`Noise::check_absences`] at once and then every `every` (or sooner, see
    /// [`check_period`]) until `shutdown`, skipping a check while `paused` says so (the
    /// daemon reading a backlog); `report` receives each check's result (for metrics and
    /// logs).
    pub async fn run_absence_checks(
        &self,
        rules: &arc_swap::ArcSwap<RuleSet>,
        every: Duration,
        publish: &impl Publish,
        report: impl Fn(Result<AbsenceReport, StateError>),
        paused: impl Fn() -> bool,
        shutdown: &CancellationToken,
    ) {
        loop {
            // The rules are read afresh each time: a reload may add, drop or retime a rule.
            let rule_set = rules.load_full();
            if !paused() {
                report(self.check_absences(&rule_set, publish).await);
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(check_period(&rule_set, every)) => {}
            }
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::super::testing::{Published, admit_body, event, noise, rules};
    use super::*;
    use crate::alert::Status;

    const FAILED: &str = "[[rule]]\nid = \"failed\"\ntitle = \"Failed\"\nseverity = \"high\"\n\
        match.detail.errorCode = [{ exists = true }]\n";

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
            admit_body(&noise, &rule_set, &event("h-1", "p", 0, None), &sink).await,
            [Settled::Heartbeat]
        );
        admit_body(&noise, &rule_set, &event("h-2", "learned", 0, None), &sink).await;
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

        let resumed = admit_body(&noise, &rule_set, &event("h-3", "p", 110, None), &sink).await;
        assert_eq!(resumed, [Settled::Published]);
        let resolved = sink.take();
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].status, Status::Resolved);
        assert!(resolved[0].to_json().contains("\"status\":\"resolved\""));
        assert_eq!(
            admit_body(&noise, &rule_set, &event("h-4", "p", 111, None), &sink).await,
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
        admit_body(&noise, &rules.load(), &event("h-1", "p", 0, None), &sink).await;
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

    #[tokio::test(start_paused = true)]
    async fn an_absence_alert_and_its_resolved_notice_share_a_thread_and_name_the_account() {
        let (noise, rule_set, sink) = (noise(), rules(STOPPED), Published::default());
        admit_body(&noise, &rule_set, &event("h-1", "p", 0, None), &sink).await;
        tokio::time::advance(Duration::from_secs(2 * 3600)).await;
        check(&noise, &rule_set, &sink).await;
        admit_body(&noise, &rule_set, &event("h-2", "p", 130, None), &sink).await;
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
        admit_body(&noise, &rule_set, &event("h-1", "p", 0, None), &sink).await;
        tokio::time::advance(Duration::from_secs(2 * 3600)).await;
        sink.fail(true);
        assert_eq!(check(&noise, &rule_set, &sink).await.n_fired, 0);
        sink.fail(false);
        assert!(check(&noise, &rule_set, &sink).await.n_fired >= 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_absence_alert_cut_off_mid_publish_is_sent_by_the_next_check() {
        let (noise, rule_set, sink) = (noise(), rules(STOPPED), Published::default());
        admit_body(&noise, &rule_set, &event("h-1", "p", 0, None), &sink).await;
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
        admit_body(&noise, &rule_set, &event("h-1", "p", 0, None), &sink).await;
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
}
