//! The daemon's Prometheus metrics, registered once and shared as `Arc<Metrics>`.
//!
//! Names follow `meterwatch_<noun>_<unit>_total` (prometheus-client appends `_total` to
//! counters). Labels are bounded: rule ids, severities, sink names and fixed reason words,
//! never message ids, accounts or principals.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

/// Why a message was not deleted (other than being poison).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailReason {
    /// Some alert was not accepted by some sink.
    Publish,
    /// Its DeleteMessageBatch entry failed.
    Delete,
    /// The rule engine refused an event.
    Evaluate,
    /// Unfinished when the shutdown grace ran out; made visible again.
    Shutdown,
    /// Its processing panicked (a bug).
    Internal,
    /// The state store failed (DynamoDB unreachable, throttled, contended).
    State,
    /// An earlier delivery of the same event is being handled (a dedup claim stands).
    InFlight,
}

impl FailReason {
    pub const ALL: [FailReason; 7] = [
        FailReason::Publish,
        FailReason::Delete,
        FailReason::Evaluate,
        FailReason::Shutdown,
        FailReason::Internal,
        FailReason::State,
        FailReason::InFlight,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::Publish => "publish",
            FailReason::Delete => "delete",
            FailReason::Evaluate => "evaluate",
            FailReason::Shutdown => "shutdown",
            FailReason::Internal => "internal",
            FailReason::State => "state",
            FailReason::InFlight => "in_flight",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct AlertLabels {
    pub rule: String,
    pub severity: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SuppressedLabels {
    pub rule: String,
    /// `duplicate`, `throttled`, `below_threshold`.
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SinkLabels {
    pub sink: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PublishErrorLabels {
    pub sink: String,
    pub retryable: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
    /// The git revision built from (`build.rs`), `unknown` without git.
    pub revision: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

/// Every metric the daemon exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub messages_received: Counter,
    pub messages_deleted: Counter,
    pub messages_failed: Family<ReasonLabels, Counter>,
    pub messages_poison: Family<ReasonLabels, Counter>,
    pub records_skipped: Family<ReasonLabels, Counter>,
    pub messages_in_flight: Gauge,
    pub receive_errors: Counter,
    pub events_evaluated: Counter,
    pub alerts_published: Family<AlertLabels, Counter>,
    /// `alerts_published` over every rule, not exported: a replay's closing line.
    pub alerts_out: Counter,
    pub alerts_suppressed: Family<SuppressedLabels, Counter>,
    pub alerts_dropped: Family<RuleLabels, Counter>,
    pub sink_alerts: Family<SinkLabels, Counter>,
    pub alerts_grouped: Family<RuleLabels, Counter>,
    pub heartbeats: Family<RuleLabels, Counter>,
    pub absences_pending: Gauge,
    pub groups_open: Gauge,
    pub state_errors: Counter,
    pub publish_attempts: Family<SinkLabels, Counter>,
    pub publish_errors: Family<PublishErrorLabels, Counter>,
    pub visibility_extensions: Counter,
    pub visibility_changes_failed: Counter,
    pub rules_loaded: Gauge,
    pub rules_reloads: Family<ResultLabels, Counter>,
    /// 1 when the last load of the rules (start-up included) succeeded, 0 when it was rejected.
    pub rules_last_reload_successful: Gauge,
    /// When the rules were last loaded or rejected, in Unix seconds.
    pub rules_last_reload_timestamp: Gauge<f64, AtomicU64>,
    /// When a receive last answered (with messages or none), in Unix seconds.
    pub last_receive_timestamp: Gauge<f64, AtomicU64>,
    pub receive_seconds: Histogram,
    pub message_age_seconds: Histogram,
    build_info: Family<BuildLabels, Gauge>,
    pub publish_seconds: Histogram,
    pub message_processing_seconds: Histogram,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 33 s: a fast publish up to a full long poll.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut metrics = Metrics {
            registry: Registry::default(),
            messages_received: Counter::default(),
            messages_deleted: Counter::default(),
            messages_failed: Family::default(),
            messages_poison: Family::default(),
            records_skipped: Family::default(),
            messages_in_flight: Gauge::default(),
            receive_errors: Counter::default(),
            events_evaluated: Counter::default(),
            alerts_published: Family::default(),
            alerts_out: Counter::default(),
            alerts_suppressed: Family::default(),
            alerts_dropped: Family::default(),
            sink_alerts: Family::default(),
            alerts_grouped: Family::default(),
            heartbeats: Family::default(),
            absences_pending: Gauge::default(),
            groups_open: Gauge::default(),
            state_errors: Counter::default(),
            publish_attempts: Family::default(),
            publish_errors: Family::default(),
            visibility_extensions: Counter::default(),
            visibility_changes_failed: Counter::default(),
            rules_loaded: Gauge::default(),
            rules_reloads: Family::default(),
            rules_last_reload_successful: Gauge::default(),
            rules_last_reload_timestamp: Gauge::default(),
            last_receive_timestamp: Gauge::default(),
            receive_seconds: latency_histogram(),
            // 0.1 s to about 55 minutes: EventBridge's seconds up to a backlog.
            message_age_seconds: Histogram::new(exponential_buckets(0.1, 2.0, 16)),
            build_info: Family::default(),
            publish_seconds: latency_histogram(),
            message_processing_seconds: latency_histogram(),
        };
        metrics.register();
        metrics.start_at_zero();
        metrics
    }
}

impl Metrics {
    /// Shows the series of fixed label values at 0 before their first event: a rate or an
    /// `increase(...) > 0` alarm sees the first failure only if the series existed before it.
    fn start_at_zero(&self) {
        for reason in FailReason::ALL {
            self.messages_failed.get_or_create_owned(&ReasonLabels {
                reason: reason.as_str(),
            });
        }
        for reason in crate::envelope::DecodeErrorKind::LABELS
            .into_iter()
            .chain([super::events::MessageOverBudget::REASON])
        {
            self.messages_poison
                .get_or_create_owned(&ReasonLabels { reason });
        }
        for reason in crate::envelope::DecodeErrorKind::SKIPPED_LABELS {
            self.records_skipped
                .get_or_create_owned(&ReasonLabels { reason });
        }
        for result in ["ok", "failed"] {
            self.rules_reloads
                .get_or_create_owned(&ResultLabels { result });
        }
        self.build_info
            .get_or_create_owned(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                revision: env!("METERWATCH_GIT_REVISION"),
            })
            .set(1);
    }

    /// What a replay read, for its closing line ([`crate::input::Summary`]).
    pub fn replay_summary(&self) -> crate::input::Summary {
        let sum = |family: &Family<ReasonLabels, Counter>, labels: &[&'static str]| {
            labels
                .iter()
                .map(|&reason| family.get_or_create(&ReasonLabels { reason }).get())
                .sum::<u64>()
        };
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        crate::input::Summary {
            events: count(self.events_evaluated.get()),
            alerts: count(self.alerts_out.get()),
            undecodable: count(sum(
                &self.messages_poison,
                &crate::envelope::DecodeErrorKind::LABELS,
            )),
            skipped: count(sum(
                &self.records_skipped,
                &crate::envelope::DecodeErrorKind::SKIPPED_LABELS,
            )),
        }
    }

    /// Shows each sink's series at 0 from start-up (see [`Metrics::start_at_zero`]).
    pub fn add_sinks<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        for sink in names {
            let labels = SinkLabels {
                sink: sink.to_owned(),
            };
            self.sink_alerts.get_or_create_owned(&labels);
            self.publish_attempts.get_or_create_owned(&labels);
            for retryable in ["true", "false"] {
                self.publish_errors
                    .get_or_create_owned(&PublishErrorLabels {
                        sink: sink.to_owned(),
                        retryable,
                    });
            }
        }
    }

    fn register(&mut self) {
        let registry = &mut self.registry;
        registry.register(
            "meterwatch_messages_received",
            "Messages received from the source",
            self.messages_received.clone(),
        );
        registry.register(
            "meterwatch_messages_deleted",
            "Messages deleted after every alert was accepted",
            self.messages_deleted.clone(),
        );
        registry.register(
            "meterwatch_messages_failed",
            "Messages left undeleted for redelivery, by reason",
            self.messages_failed.clone(),
        );
        registry.register(
            "meterwatch_messages_poison",
            "Undecodable messages left for the queue's redrive policy, by reason",
            self.messages_poison.clone(),
        );
        registry.register(
            "meterwatch_records_skipped",
            "Records of a batch left out while its other records went on (not API calls, or malformed), by reason",
            self.records_skipped.clone(),
        );
        registry.register(
            "meterwatch_messages_in_flight",
            "Messages received and not yet deleted or released",
            self.messages_in_flight.clone(),
        );
        registry.register(
            "meterwatch_receive_errors",
            "ReceiveMessage calls that failed",
            self.receive_errors.clone(),
        );
        registry.register(
            "meterwatch_events_evaluated",
            "Events evaluated against the rules",
            self.events_evaluated.clone(),
        );
        registry.register(
            "meterwatch_alerts_published",
            "Alerts accepted by every sink they were routed to, by rule and severity",
            self.alerts_published.clone(),
        );
        registry.register(
            "meterwatch_alerts_suppressed",
            "Matches that sent no alert on purpose, by rule and reason (duplicate, throttled, below_threshold)",
            self.alerts_suppressed.clone(),
        );
        registry.register(
            "meterwatch_alerts_dropped",
            "Alerts a route with no sinks took (dropped on purpose), by rule",
            self.alerts_dropped.clone(),
        );
        registry.register(
            "meterwatch_sink_alerts",
            "Alerts accepted, by sink (what the routes sent it)",
            self.sink_alerts.clone(),
        );
        registry.register(
            "meterwatch_alerts_grouped",
            "Matches folded into a group's summary alert, by rule",
            self.alerts_grouped.clone(),
        );
        registry.register(
            "meterwatch_heartbeats",
            "Matches of absence rules (signs of metering), by rule",
            self.heartbeats.clone(),
        );
        registry.register(
            "meterwatch_absences_pending",
            "Keys of absence rules reported silent and not yet resolved",
            self.absences_pending.clone(),
        );
        registry.register(
            "meterwatch_groups_open",
            "Group batches waiting for their flush",
            self.groups_open.clone(),
        );
        registry.register(
            "meterwatch_state_errors",
            "State store operations that failed (the message is left for redelivery)",
            self.state_errors.clone(),
        );
        registry.register(
            "meterwatch_publish_attempts",
            "Publish attempts, by sink",
            self.publish_attempts.clone(),
        );
        registry.register(
            "meterwatch_publish_errors",
            "Failed publish attempts, by sink and whether the error was retryable",
            self.publish_errors.clone(),
        );
        registry.register(
            "meterwatch_visibility_extensions",
            "ChangeMessageVisibility renewals of in-flight messages",
            self.visibility_extensions.clone(),
        );
        registry.register(
            "meterwatch_visibility_changes_failed",
            "ChangeMessageVisibility entries SQS refused: renewals (a message may then be received again while in flight), retry delays and releases",
            self.visibility_changes_failed.clone(),
        );
        registry.register(
            "meterwatch_rules_loaded",
            "Rules in the rule set in force",
            self.rules_loaded.clone(),
        );
        registry.register(
            "meterwatch_rules_reload",
            "Rule reloads, by result (ok or failed)",
            self.rules_reloads.clone(),
        );
        registry.register(
            "meterwatch_rules_last_reload_successful",
            "1 when the last load of the rules (start-up, watch or SIGHUP) succeeded, 0 when it was rejected and the previous rules stayed in force",
            self.rules_last_reload_successful.clone(),
        );
        registry.register(
            "meterwatch_rules_last_reload_timestamp_seconds",
            "When the rules were last loaded or rejected (Unix time)",
            self.rules_last_reload_timestamp.clone(),
        );
        registry.register(
            "meterwatch_last_receive_timestamp_seconds",
            "When a receive last answered, with messages or none (Unix time): a live daemon long-polls all the time",
            self.last_receive_timestamp.clone(),
        );
        registry.register(
            "meterwatch_receive_duration_seconds",
            "ReceiveMessage latency, long-poll wait included",
            self.receive_seconds.clone(),
        );
        registry.register(
            "meterwatch_message_age_seconds",
            "How long a message waited in the queue before its first receive (now minus SentTimestamp): how far alerting runs behind",
            self.message_age_seconds.clone(),
        );
        registry.register(
            "meterwatch_build_info",
            "Always 1; the running version and git revision as labels",
            self.build_info.clone(),
        );
        registry.register(
            "meterwatch_publish_duration_seconds",
            "Latency of one publish attempt",
            self.publish_seconds.clone(),
        );
        registry.register(
            "meterwatch_message_processing_seconds",
            "From receive to delete or release of one message",
            self.message_processing_seconds.clone(),
        );
    }

    /// Counts one message left undeleted for `reason`.
    pub fn message_failed(&self, reason: FailReason) {
        self.messages_failed
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// A receive answered at `now` (with messages or none).
    pub fn receive_answered(&self, now: SystemTime) {
        self.last_receive_timestamp.set(unix_seconds(now));
    }

    /// The rules were loaded (`successful`) or rejected at `now`.
    pub fn rules_reload_finished(&self, successful: bool, now: SystemTime) {
        self.rules_last_reload_successful.set(i64::from(successful));
        self.rules_last_reload_timestamp.set(unix_seconds(now));
    }

    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// `now` in Unix seconds; a clock before 1970 reads 0.
fn unix_seconds(now: SystemTime) -> f64 {
    now.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_names_with_units_and_labels() {
        let metrics = Metrics::default();
        metrics.messages_received.inc();
        metrics.message_failed(FailReason::Publish);
        metrics
            .alerts_published
            .get_or_create(&AlertLabels {
                rule: "metering-call-failed".to_owned(),
                severity: "high",
            })
            .inc();
        let text = metrics.encode();
        assert!(
            text.contains("meterwatch_messages_received_total 1"),
            "{text}"
        );
        assert!(
            text.contains("meterwatch_messages_failed_total{reason=\"publish\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "meterwatch_alerts_published_total{rule=\"metering-call-failed\",severity=\"high\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("meterwatch_receive_duration_seconds_bucket"),
            "{text}"
        );
    }

    #[test]
    fn failure_series_exist_at_zero_before_the_first_failure() {
        let metrics = Metrics::default();
        metrics.add_sinks(["pager"]);
        let text = metrics.encode();
        for series in [
            "meterwatch_messages_failed_total{reason=\"in_flight\"} 0",
            "meterwatch_messages_poison_total{reason=\"not_json\"} 0",
            "meterwatch_records_skipped_total{reason=\"not_an_api_call\"} 0",
            "meterwatch_rules_reload_total{result=\"failed\"} 0",
            "meterwatch_publish_errors_total{sink=\"pager\",retryable=\"false\"} 0",
            "meterwatch_sink_alerts_total{sink=\"pager\"} 0",
            "meterwatch_build_info{version=\"",
            "meterwatch_rules_last_reload_successful 0",
            "meterwatch_rules_last_reload_timestamp_seconds 0",
            "meterwatch_last_receive_timestamp_seconds 0",
        ] {
            assert!(text.contains(series), "{series} missing from:\n{text}");
        }
    }

    #[test]
    fn reload_and_receive_times_are_unix_seconds() {
        let metrics = Metrics::default();
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_767_225_600_500);
        metrics.rules_reload_finished(true, at);
        metrics.receive_answered(at);
        let text = metrics.encode();
        for series in [
            "meterwatch_rules_last_reload_successful 1",
            "meterwatch_rules_last_reload_timestamp_seconds 1767225600.5",
            "meterwatch_last_receive_timestamp_seconds 1767225600.5",
        ] {
            assert!(text.contains(series), "{series} missing from:\n{text}");
        }
        metrics.rules_reload_finished(false, at);
        assert!(
            metrics
                .encode()
                .contains("meterwatch_rules_last_reload_successful 0")
        );
    }

    #[test]
    fn build_info_names_the_git_revision() {
        let text = Metrics::default().encode();
        let revision = env!("METERWATCH_GIT_REVISION");
        assert!(!revision.is_empty());
        assert!(text.contains(&format!("revision=\"{revision}\"")), "{text}");
    }

    /// The names a scrape shows: samples are named after their family, with `_total` for a
    /// counter and `_bucket`, `_sum`, `_count` for a histogram.
    fn exported_names(text: &str) -> std::collections::BTreeSet<String> {
        let mut names = std::collections::BTreeSet::new();
        for line in text.lines() {
            let mut words = line.split(' ');
            if let (Some("#"), Some("TYPE"), Some(family), Some(kind)) =
                (words.next(), words.next(), words.next(), words.next())
            {
                let suffixes: &[&str] = match kind {
                    "counter" => &["_total"],
                    "histogram" => &["_bucket", "_sum", "_count"],
                    _ => &[""],
                };
                names.extend(suffixes.iter().map(|suffix| format!("{family}{suffix}")));
            }
        }
        names
    }

    /// Every series the shipped alert rules and dashboard read is one the daemon exports
    /// (`scripts/lint-deploy` runs this beside `promtool check rules`).
    #[test]
    fn deploy_rules_and_dashboard_read_only_exported_series() {
        // A family shows only once it has a series: give the per-rule ones one each.
        let metrics = Metrics::default();
        metrics.add_sinks(["alerts"]);
        let rule = || "metering-call-failed".to_owned();
        metrics
            .alerts_published
            .get_or_create(&AlertLabels {
                rule: rule(),
                severity: "high",
            })
            .inc();
        metrics
            .alerts_suppressed
            .get_or_create(&SuppressedLabels {
                rule: rule(),
                reason: "duplicate",
            })
            .inc();
        for family in [
            &metrics.alerts_dropped,
            &metrics.alerts_grouped,
            &metrics.heartbeats,
        ] {
            family.get_or_create(&RuleLabels { rule: rule() }).inc();
        }
        let exported = exported_names(&metrics.encode());
        assert!(
            exported.contains("meterwatch_alerts_published_total"),
            "{exported:?}"
        );
        let name = regex::Regex::new(r"\bmeterwatch_[a-z0-9_]+").expect("a valid regex");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut unknown = Vec::new();
        let mut n_read = 0;
        for file in [
            "deploy/kubernetes/components/servicemonitor/prometheusrule.yaml",
            "deploy/grafana/meterwatch.json",
        ] {
            let text = std::fs::read_to_string(root.join(file)).expect("shipped file");
            for found in name.find_iter(&text) {
                n_read += 1;
                if !exported.contains(found.as_str()) {
                    unknown.push(format!("{file}: {}", found.as_str()));
                }
            }
        }
        assert!(n_read > 10, "only {n_read} series read");
        assert!(unknown.is_empty(), "not exported: {unknown:#?}");
    }
}
