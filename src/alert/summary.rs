//! What noise control writes over a rule's alert: a threshold's count, a group's summary, an
//! absence and its end (the resolved notice), with the ids those alerts get.
//!
//! Plain functions of an [`Alert`] and what `noise` decided (times in milliseconds since the
//! Unix epoch, a group key's values by dotted path), called by `noise` only. The wording
//! lives here, beside the alert's other text, so that the layers deciding an alert's fate
//! (`state`, `noise`) hold no prose.

use super::{Alert, GroupSummary, Status};
use std::time::Duration;

/// A threshold reached: `count` matches within `window`, at event times `first` to `last`.
pub fn threshold_reached(alert: &mut Alert, count: u32, window: Duration, first: i64, last: i64) {
    alert.summary = format!(
        "{count} matches within {} (event times {} to {}). Latest: {}",
        human(window),
        timestamp(first),
        timestamp(last),
        alert.summary
    );
}

/// Makes `alert` (a heartbeat's, built whole) the resolved notice of the absence of the key
/// `key_text` (values `key`), silent since `silent_since`.
pub fn resolved(alert: &mut Alert, key_text: &str, key: &[(String, String)], silent_since: i64) {
    alert.status = Status::Resolved;
    // The absence alert's thread: it had no event, so no account of its own to thread by.
    alert.thread_key = Some(key_text.to_owned());
    alert.id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("resolved:{}:{key_text}:{silent_since}", alert.rule).as_bytes(),
    )
    .to_string();
    alert.summary = format!(
        "{} is metering again: a successful call at {} after silence since {}.",
        describe_key(key),
        alert.event_time.as_deref().unwrap_or("(unknown time)"),
        timestamp(silent_since)
    );
}

/// What an absence rule allows: a heartbeat at least every `interval`, plus `grace`.
#[derive(Debug, Clone, Copy)]
pub struct Allowed {
    pub interval: Duration,
    pub grace: Duration,
}

/// Makes `alert` (an absence rule's, for the key `key_text`) the alert that the key has been
/// silent since `since`; `seen` is false for a key never heard from.
pub fn absent(
    alert: &mut Alert,
    key_text: &str,
    key: &[(String, String)],
    since: i64,
    seen: bool,
    allowed: Allowed,
) {
    alert.id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("absent:{}:{key_text}:{since}", alert.rule).as_bytes(),
    )
    .to_string();
    alert.summary = format!(
        "No successful metering for {} since {}{} (expected at least every {}, plus {} grace).",
        describe_key(key),
        timestamp(since),
        if seen {
            ""
        } else {
            ", when monitoring began; none seen yet"
        },
        human(allowed.interval),
        human(allowed.grace),
    );
}

impl GroupSummary {
    /// An empty summary of the group whose key values are `key`.
    pub fn new(key: &[(String, String)]) -> GroupSummary {
        GroupSummary {
            count: 0,
            first_time: None,
            last_time: None,
            event_ids: Vec::new(),
            key: key
                .iter()
                .map(|(path, value)| (path.clone(), serde_json::Value::String(value.clone())))
                .collect(),
        }
    }

    /// Counts one more match of the group.
    pub fn add(&mut self, alert: &Alert) {
        self.count += 1;
        if let Some(time) = &alert.event_time {
            // RFC 3339 UTC times from CloudTrail compare as text.
            if self.first_time.as_ref().is_none_or(|first| time < first) {
                self.first_time = Some(time.clone());
            }
            if self.last_time.as_ref().is_none_or(|last| time > last) {
                self.last_time = Some(time.clone());
            }
        }
        if let Some(id) = &alert.event_id {
            if self.event_ids.len() < GroupSummary::MAX_EVENT_IDS {
                self.event_ids.push(id.clone());
            }
        }
    }

    /// The group's alert: its first match's, carrying the summary.
    pub fn into_alert(self, mut first: Alert) -> Alert {
        first.id = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("group:{}:{}", first.id, self.count).as_bytes(),
        )
        .to_string();
        if self.count > 1 {
            first.summary = format!("{} matching events (first: {})", self.count, first.summary);
        }
        first.group = Some(self);
        first
    }
}

fn timestamp(at: i64) -> String {
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

/// A group key for people: `productCode p, account 1`, by each path's last name.
fn describe_key(key: &[(String, String)]) -> String {
    let parts: Vec<String> = key
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
