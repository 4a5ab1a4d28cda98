//! An alert: what a rule says about one event (or one element of it), ready for sinks.
//!
//! The JSON form of [`Alert`] is what `meterwatch eval` prints, one per line, and what the
//! SNS sink publishes; its fields are a contract for people's filters and scripts, so they
//! are added to, never renamed.

use serde::Serialize;
use serde_json::Value;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// How bad a finding is; ordered from least to most severe.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|severity| severity.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown severity `{text}`, expected one of info, low, medium, high, critical"
                )
            })
    }
}

/// One alert. Optional CloudTrail fields are `null` when the record lacks them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// The id of the rule that fired.
    pub rule: Arc<str>,
    pub severity: Severity,
    /// The rule's title.
    pub title: Arc<str>,
    /// CloudTrail's `eventID`: the key people look the call up by.
    pub event_id: Option<String>,
    /// CloudTrail's `eventName`, e.g. `BatchMeterUsage`.
    pub event_name: Option<String>,
    /// The account whose CloudTrail recorded the call.
    pub account: Option<String>,
    pub region: Option<String>,
    /// CloudTrail's `eventTime` (RFC 3339).
    pub event_time: Option<String>,
    /// The event's values at every field the rule looks at, keyed by dotted path; a field
    /// holding several values (inside arrays) maps to an array of them.
    pub matched: serde_json::Map<String, Value>,
    /// For a rule that fires once per array element: the element this alert is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub element: Option<Element>,
}

/// The array element a per-element alert is about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Element {
    /// Dotted path of the array with the element's index, e.g.
    /// `detail.responseElements.results[1]`.
    pub path: String,
    pub value: Value,
}

impl Alert {
    /// The alert as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an Alert holds only strings and JSON values")
    }
}
