//! An alert: what a rule says about one event (or one element of it), ready for sinks.
//!
//! The JSON form of [`Alert`] is the versioned alert document: what `meterwatch eval` prints,
//! one per line, and what machine subscribers (SQS, Lambda, HTTPS) receive. Its fields are a
//! contract for people's filters and scripts: added to, never renamed.
//!
//! - `content`: who, what and where, read from the CloudTrail record (principal, product,
//!   usage records, console link).
//! - `summary`: what noise control writes over an alert (a threshold's count, a group's
//!   summary, an absence and its resolved notice).
//! - `template`: the rule's `title`, `summary` and `body` templates (minijinja), and defaults.
//! - [`format`](mod@format): what each kind of subscriber receives (email text, Chatbot JSON, the
//!   document), the SNS subject and message attributes, size limits.

pub(crate) mod content;
pub mod format;
pub(crate) mod summary;
pub(crate) mod template;

use crate::envelope::Event;
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// How bad a finding is; ordered from least to most severe.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema,
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

/// By hand, so that a value of the wrong type (`severity = 3`) is told the names too.
impl<'de> serde::Deserialize<'de> for Severity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const NAMES: [&str; 5] = ["info", "low", "medium", "high", "critical"];
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Severity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("one of `info`, `low`, `medium`, `high`, `critical`")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Severity, E> {
                Severity::ALL
                    .into_iter()
                    .find(|severity| severity.as_str() == text)
                    .ok_or_else(|| E::unknown_variant(text, &NAMES))
            }
        }
        deserializer.deserialize_str(Visitor)
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

impl Alert {
    /// The document's top-level field `name` as a template value, converted on its own
    /// (`None` for an unknown name, or a field the JSON document leaves out): templates read a
    /// few fields, and converting the whole document for every alert would dominate its cost.
    pub fn template_value(&self, name: &str) -> Option<minijinja::Value> {
        use minijinja::Value as V;
        fn value<T: Serialize>(field: &T) -> minijinja::Value {
            minijinja::Value::from(minijinja::value::Serde(field))
        }
        Some(match name {
            "version" => V::from(self.version),
            "id" => V::from(self.id.as_str()),
            "rule" => V::from(&*self.rule),
            "severity" => V::from(self.severity.as_str()),
            "title" => V::from(self.title.as_str()),
            "summary" => V::from(self.summary.as_str()),
            "body" => V::from(self.body.as_deref()?),
            "description" => V::from(self.description.as_str()),
            "event_id" => value(&self.event_id),
            "event_name" => value(&self.event_name),
            "account" => value(&self.account),
            "region" => value(&self.region),
            "event_time" => value(&self.event_time),
            "error_code" => value(&self.error_code),
            "error_message" => value(&self.error_message),
            "principal" => value(&self.principal),
            "product_code" => value(&self.product_code),
            "records" => value(&self.records),
            "records_omitted" => V::from(self.records_omitted?),
            "console_url" => value(&self.console_url),
            "matched" => value(&self.matched),
            "matched_omitted" => V::from(self.matched_omitted?),
            "element" => value(self.element.as_ref()?),
            "next_steps" if !self.next_steps.is_empty() => value(&self.next_steps),
            "truncated" if self.truncated => V::from(true),
            "status" => V::from(self.status.as_str()),
            "suppressed" => V::from(self.suppressed?),
            "held_back" => V::from(self.held_back?),
            "group" => value(self.group.as_ref()?),
            _ => return None,
        })
    }
}

/// Usage records an alert lists: a real BatchMeterUsage carries at most 25.
pub const MAX_RECORDS: usize = 25;
/// Values an alert's `matched` keeps of one field.
pub const MAX_MATCHED_VALUES: usize = 25;

/// The version of the alert document (`version` in its JSON). Fields are only ever added
/// within a version; a rename or removal would make it 2.
pub const DOCUMENT_VERSION: u32 = 1;

/// One alert: everything a person or a program needs to act, with no lookup. Its JSON form is
/// the versioned alert document (`schema/alert.schema.json`); optional fields are `null` or
/// absent when the CloudTrail record lacks them.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Alert {
    /// Always [`DOCUMENT_VERSION`].
    pub version: u32,
    /// Stable for one rule, event and element: a repeat of the same finding has the same id.
    pub id: String,
    /// The id of the rule that fired.
    #[schemars(with = "String")]
    pub rule: Arc<str>,
    pub severity: Severity,
    /// One line: the rule's title (a template) rendered for this event.
    pub title: String,
    /// What happened, in one sentence.
    pub summary: String,
    /// The rule's `body` template rendered, when it has one: details and what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Why the rule exists (its `description`).
    pub description: String,
    /// CloudTrail's `eventID`: the key people look the call up by.
    pub event_id: Option<String>,
    /// CloudTrail's `eventName`, e.g. `BatchMeterUsage`.
    pub event_name: Option<String>,
    /// The account whose CloudTrail recorded the call.
    pub account: Option<String>,
    pub region: Option<String>,
    /// CloudTrail's `eventTime` (RFC 3339).
    pub event_time: Option<String>,
    /// CloudTrail's `errorCode` and `errorMessage`, for a call that failed.
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// Who made the call.
    pub principal: Option<Principal>,
    /// The Marketplace product the call was for.
    pub product_code: Option<String>,
    /// The usage the call carried: one record for MeterUsage, one per record for
    /// BatchMeterUsage (with its result status), none for other calls.
    pub records: Vec<UsageRecord>,
    /// How many of the call's usage records `records` leaves out: a per-element alert lists
    /// only its own element's record, any other at most [`MAX_RECORDS`] (absent when none
    /// are left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_omitted: Option<u64>,
    /// The event in the CloudTrail console of its region.
    pub console_url: Option<String>,
    /// The event's values at every field the rule looks at, keyed by dotted path; a field
    /// holding several values (inside arrays) maps to an array of them.
    pub matched: serde_json::Map<String, Value>,
    /// How many values `matched` leaves out: a field keeps at most [`MAX_MATCHED_VALUES`]
    /// (absent when none are left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_omitted: Option<u64>,
    /// For a rule that fires once per array element: the element this alert is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub element: Option<Element>,
    /// What to do about it (the rule's `next_steps`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next_steps: Vec<String>,
    /// Set when the document was cut to fit a message size limit (long text and large values
    /// are replaced by a marker saying how many bytes were left out).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// `firing` for a problem, `resolved` for the notice that it ended (an absence rule's
    /// key metering again).
    pub status: Status,
    /// For a throttled rule: how many alerts for the same group were held back since the
    /// previous one was sent (absent when none were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<u64>,
    /// The summary alert of a message that raised more than `max_alerts_per_message`
    /// alerts: how many of this rule's alerts for the message it stands for, not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_back: Option<u64>,
    /// For a grouping rule: the events this one alert stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupSummary>,
    /// What threads the alert with its kin (Chatbot `threadId`, FIFO `MessageGroupId`,
    /// [`format::thread_id`]) besides its rule, when not its account and product: an absence
    /// rule's group key, so that the alert (built from no event) and its resolved notice
    /// (built from the heartbeat) share a thread whichever account metered. Not part of the
    /// document.
    #[serde(skip)]
    #[schemars(skip)]
    pub thread_key: Option<String>,
}

/// Whether an alert reports a problem or its end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Something is wrong (every event rule's alerts; an absence that began).
    #[default]
    Firing,
    /// An absence ended: the key is metering again.
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// The events a grouped alert summarises (`[rule.group]`).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct GroupSummary {
    /// How many matching events the group collected.
    pub count: u64,
    /// The earliest and latest `eventTime` among them (RFC 3339), when they had one.
    pub first_time: Option<String>,
    pub last_time: Option<String>,
    /// Their CloudTrail `eventID`s, in arrival order; at most [`GroupSummary::MAX_EVENT_IDS`]
    /// (`count` still counts every event).
    pub event_ids: Vec<String>,
    /// The values of the rule's `group_by` fields this group shares, by dotted path.
    pub key: serde_json::Map<String, Value>,
}

impl GroupSummary {
    /// Enough ids to look a storm up by, few enough to keep the message far under SNS's
    /// 256 KB.
    pub const MAX_EVENT_IDS: usize = 100;
}

/// The caller of a metering API.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Principal {
    /// `userIdentity.type`: `AssumedRole`, `IAMUser`, `Root`, `AWSService`...
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `userIdentity.arn`: for a role session, the session's ARN.
    pub arn: Option<String>,
    /// The role behind an assumed-role session (`sessionContext.sessionIssuer.arn`).
    pub role_arn: Option<String>,
    pub account_id: Option<String>,
    /// `userIdentity.invokedBy`: the AWS service that made the call for the principal.
    pub invoked_by: Option<String>,
}

impl Principal {
    /// Who called, in a few words: the ARN, or for a caller with none (an AWS service,
    /// another account) its type and the service or account it is known by.
    pub fn caller(&self) -> Option<String> {
        if let Some(arn) = &self.arn {
            return Some(arn.clone());
        }
        let by = match (&self.invoked_by, &self.account_id) {
            (Some(service), _) => Some(format!("invoked by {service}")),
            (None, Some(account)) => Some(format!("account {account}")),
            (None, None) => None,
        };
        match (&self.kind, by) {
            (Some(kind), Some(by)) => Some(format!("{kind}, {by}")),
            (Some(kind), None) => Some(kind.clone()),
            (None, by) => by,
        }
    }
}

/// One usage record of a metering call.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct UsageRecord {
    /// `customerIdentifier` or `customerAWSAccountId` (or `customerAWSAccountID`).
    pub customer: Option<String>,
    pub dimension: Option<String>,
    pub quantity: Option<Value>,
    pub timestamp: Option<String>,
    /// BatchMeterUsage's per-record status (`Success`, `CustomerNotSubscribed`,
    /// `DuplicateRecord`), or `Unprocessed` for an `unprocessedRecords` entry.
    pub status: Option<String>,
}

impl UsageRecord {
    /// The record in one line, e.g. `customer c-1, dimension users, quantity 3, at
    /// 2020-07-10T23:00:00Z: CustomerNotSubscribed`; missing or null parts left out.
    pub fn describe(&self) -> String {
        let quantity = self.quantity.as_ref().filter(|q| !q.is_null());
        let parts: Vec<String> = [
            self.customer.as_ref().map(|c| format!("customer {c}")),
            self.dimension.as_ref().map(|d| format!("dimension {d}")),
            quantity.map(|q| format!("quantity {q}")),
            self.timestamp.as_ref().map(|t| format!("at {t}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut text = parts.join(", ");
        if let Some(status) = &self.status {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(status);
        }
        text
    }
}

/// The array element a per-element alert is about.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Element {
    /// Dotted path of the array with the element's index, e.g.
    /// `detail.responseElements.results[1]`.
    pub path: String,
    pub value: Value,
}

#[cfg(test)]
impl Alert {
    /// A small firing alert of `rule` at `severity` (a MeterUsage call in 123456789012,
    /// us-east-1), for tests.
    pub(crate) fn example(rule: &str, severity: Severity) -> Alert {
        Alert {
            id: "00000000-0000-5000-8000-000000000000".into(),
            summary: "MeterUsage was throttled.".into(),
            event_id: Some("e-1".into()),
            event_name: Some("MeterUsage".into()),
            account: Some("123456789012".into()),
            region: Some("us-east-1".into()),
            ..Alert::new(rule.into(), severity, "Metering call throttled".into())
        }
    }
}

impl Alert {
    /// A firing alert of `rule` with nothing read from an event yet: every optional field
    /// empty, summary included. The one place that lists every field, so that adding one
    /// touches one constructor.
    pub fn new(rule: Arc<str>, severity: Severity, title: String) -> Alert {
        Alert {
            version: DOCUMENT_VERSION,
            id: String::new(),
            rule,
            severity,
            title,
            summary: String::new(),
            body: None,
            description: String::new(),
            event_id: None,
            event_name: None,
            account: None,
            region: None,
            event_time: None,
            error_code: None,
            error_message: None,
            principal: None,
            product_code: None,
            records: Vec::new(),
            records_omitted: None,
            console_url: None,
            matched: serde_json::Map::new(),
            matched_omitted: None,
            element: None,
            next_steps: Vec::new(),
            truncated: false,
            status: Status::Firing,
            suppressed: None,
            held_back: None,
            group: None,
            thread_key: None,
        }
    }

    /// This alert with the facts every event states (id, name, account, Region, time, error
    /// code) copied from `event`: what an alert shows before anything is read from its record.
    pub fn with_event_facts(self, event: &Event) -> Alert {
        Alert {
            event_id: event.event_id().map(str::to_owned),
            event_name: event.event_name().map(str::to_owned),
            account: event.account().map(str::to_owned),
            region: event.region().map(str::to_owned),
            event_time: event.event_time().map(str::to_owned),
            error_code: event.error_code().map(str::to_owned),
            ..self
        }
    }

    /// The alert document as one line of JSON.
    pub fn to_json(&self) -> String {
        let mut json = Vec::with_capacity(4096);
        self.write_json(&mut json);
        String::from_utf8(json).expect("JSON is UTF-8")
    }

    /// Appends the alert document to `out` as one line of JSON (no newline).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        sonic_rs::to_writer(out, self).expect("an Alert holds only strings and JSON values");
    }
}

/// The JSON Schema of the alert document, generated from [`Alert`].
pub fn document_schema() -> Value {
    schemars::schema_for!(Alert).to_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field the document has, filled, and left out: `template_value` must agree
    /// with the JSON document, so that templates see the same alert either way.
    #[test]
    fn template_values_are_the_documents_fields() {
        let empty = Alert::example("r", Severity::High);
        let mut full = empty.clone();
        full.body = Some("body".into());
        full.event_time = Some("2020-07-10T23:06:42Z".into());
        full.error_code = Some("ThrottlingException".into());
        full.error_message = Some("Rate exceeded".into());
        full.principal = Some(Principal {
            kind: Some("AssumedRole".into()),
            arn: Some("arn:aws:sts::1:assumed-role/R/s".into()),
            role_arn: Some("arn:aws:iam::1:role/R".into()),
            account_id: Some("1".into()),
            invoked_by: Some("ecs-tasks.amazonaws.com".into()),
        });
        full.product_code = Some("p".into());
        full.records = vec![UsageRecord {
            customer: Some("c".into()),
            dimension: Some("d".into()),
            quantity: Some(serde_json::json!(3)),
            timestamp: None,
            status: Some("Success".into()),
        }];
        full.console_url = Some("https://console".into());
        full.matched
            .insert("detail.x".into(), serde_json::json!([1, "a"]));
        full.element = Some(Element {
            path: "detail.a[0]".into(),
            value: serde_json::json!({"k": null}),
        });
        full.next_steps = vec!["look".into()];
        full.truncated = true;
        full.status = Status::Resolved;
        full.suppressed = Some(4);
        full.records_omitted = Some(2);
        full.matched_omitted = Some(3);
        full.held_back = Some(5);
        full.group = Some(GroupSummary {
            count: 2,
            first_time: None,
            last_time: None,
            event_ids: vec!["e".into()],
            key: serde_json::Map::new(),
        });
        let schema = schemars::schema_for!(Alert).to_value();
        let fields: Vec<&String> = schema["properties"]
            .as_object()
            .expect("the alert schema lists its properties")
            .keys()
            .collect();
        for alert in [&empty, &full] {
            let document = serde_json::to_value(alert).expect("an alert serializes");
            for field in &fields {
                let expected = document
                    .get(field.as_str())
                    .map(|v| minijinja::Value::from(minijinja::value::Serde(v)));
                assert_eq!(alert.template_value(field), expected, "{field}");
            }
        }
        assert_eq!(full.template_value("no_such_field"), None);
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop::sample::select(vec![0.1, 1.0, 1e21, 1e-7, -0.0, 123456789.125, 5e-324])
                .prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            "[\\x00-\\x1f\"\\\\/\\x7f\u{2028}\u{2029}é😀]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((any::<String>(), inner), 0..4)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// The document is written byte for byte as serde_json writes it (it is read back
        /// by serde_json, and compared as text by people's scripts).
        #[test]
        fn documents_are_written_as_serde_json_writes_them(
            value in json_value(),
            text in proptest::arbitrary::any::<String>(),
        ) {
            let mut alert = Alert::example("r", Severity::Low);
            alert.summary = text.clone();
            alert.error_message = Some(text);
            alert.matched.insert("detail.x".into(), value.clone());
            alert.element = Some(Element { path: "detail.a[0]".into(), value });
            let expected = serde_json::to_string(&alert).expect("an alert serializes");
            proptest::prop_assert_eq!(alert.to_json(), expected);
        }
    }
}
