//! What each kind of subscriber receives for an alert.
//!
//! - [`Format::Json`] publishes with SNS `MessageStructure: "json"`: email subscribers get the
//!   readable text of [`email`], every other protocol (`default`, `sqs`, `lambda`, `https`...)
//!   the versioned alert document.
//! - [`Format::Chatbot`] publishes AWS Chatbot's custom-notification JSON ([`chatbot`]), the
//!   only shape Chatbot shows in Slack or Teams (it drops everything else silently).
//!
//! - [`terminal`]: the stdout sink's readable block, for a person at a terminal.
//!
//! Every message carries a [`subject`] (email's subject line) and [`attributes`] for
//! subscription filter policies, and fits SNS's size limit: the longest parts are cut, with a
//! visible marker, rather than the publish rejected.

pub mod chatbot;
pub mod email;
pub mod escape;
pub mod terminal;

use super::{Alert, Status};
use serde_json::{Map, Value};

/// SNS's limit on a message, structure and all.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// What a sink sends.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Deserialize,
    serde::Serialize,
    schemars::JsonSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The alert document for programs, readable text for email (SNS message structure).
    #[default]
    Json,
    /// AWS Chatbot (Amazon Q Developer in chat applications) custom notifications, for Slack
    /// and Teams channels.
    Chatbot,
}

/// One SNS publish, independent of the SDK.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The message, or with `structured` the per-protocol JSON object as text.
    pub body: String,
    /// Publish with `MessageStructure: "json"`.
    pub structured: bool,
    pub subject: String,
    /// Message attributes (all `String`), for subscription filter policies.
    pub attributes: Vec<(&'static str, String)>,
    /// For FIFO topics: the group (one problem's repeats stay in order) and the
    /// deduplication id (the alert's id).
    pub group_id: String,
    pub deduplication_id: String,
}

/// The SNS message for `alert` in `format`. Message attributes count towards SNS's size
/// limit, so the body gets what they leave.
pub fn message(alert: &Alert, format: Format) -> Message {
    let attributes = attributes(alert);
    let limit = MAX_MESSAGE_BYTES - attribute_bytes(&attributes);
    let body = match format {
        Format::Json => structured(alert, limit),
        Format::Chatbot => chatbot::notification(alert),
    };
    Message {
        body,
        structured: format == Format::Json,
        subject: subject(alert),
        attributes,
        group_id: thread_id(alert),
        deduplication_id: alert.id.clone(),
    }
}

/// Top-level fields a cut document keeps whole: what filters and scripts key on.
const KEPT_WHOLE: [&str; 5] = ["version", "id", "rule", "severity", "status"];
/// Entries a cut document keeps of an array or object (records, matched values).
const MAX_ENTRIES: usize = 100;

/// The alert document within `limit` bytes. One over it keeps its shape, every field of its
/// type, so that it still reads by the schema: long strings anywhere in it are cut with a
/// visible marker, long arrays and objects keep their first entries, and `truncated` says
/// the document was cut.
pub fn document(alert: &Alert, limit: usize) -> String {
    let text = alert.to_json();
    if text.len() <= limit {
        return text;
    }
    if let Ok(Value::Object(whole)) = serde_json::to_value(alert) {
        let mut max_string = limit / 8;
        while max_string >= 64 {
            let mut object = whole.clone();
            for (key, value) in object.iter_mut() {
                if !KEPT_WHOLE.contains(&key.as_str()) {
                    shrink(value, max_string);
                }
            }
            object.insert("truncated".into(), Value::Bool(true));
            let text = Value::Object(object).to_string();
            if text.len() <= limit {
                return text;
            }
            max_string /= 2;
        }
    }
    // Only an alert with thousands of values could get here: the required fields alone,
    // each text in a share of the limit (JSON escaping may grow it six times).
    let share = limit / 48;
    serde_json::json!({
        "version": alert.version, "id": alert.id, "rule": &*alert.rule,
        "severity": alert.severity, "status": alert.status,
        "event_id": alert.event_id.as_deref().map(|id| cut(id, share)),
        "title": cut(&alert.title, share), "summary": cut(&alert.summary, share),
        "description": cut(&alert.description, share), "records": [], "matched": {},
        "truncated": true,
    })
    .to_string()
}

/// `value` with every string cut to `max` bytes and every array or object to its first
/// [`MAX_ENTRIES`] entries.
fn shrink(value: &mut Value, max: usize) {
    match value {
        Value::String(text) if text.len() > max => *text = cut(text, max),
        Value::Array(items) => {
            items.truncate(MAX_ENTRIES);
            items.iter_mut().for_each(|item| shrink(item, max));
        }
        Value::Object(entries) => {
            if entries.len() > MAX_ENTRIES {
                *entries = std::mem::take(entries)
                    .into_iter()
                    .take(MAX_ENTRIES)
                    .collect();
            }
            entries.values_mut().for_each(|entry| shrink(entry, max));
        }
        _ => {}
    }
}

/// The per-protocol message for `MessageStructure: "json"`, within `limit` bytes.
fn structured(alert: &Alert, limit: usize) -> String {
    let mut budget = limit / 2;
    loop {
        let document = document(alert, budget);
        let email = cut(&email::text(alert), budget);
        let mut protocols = Map::new();
        protocols.insert("default".into(), Value::String(document));
        protocols.insert("email".into(), Value::String(email));
        let text = Value::Object(protocols).to_string();
        // JSON escaping can grow the strings; shrink until the whole fits.
        if text.len() <= limit || budget < 1024 {
            return text;
        }
        budget /= 2;
    }
}

/// `text` within `limit` bytes, cut at a character boundary with a visible marker.
pub fn cut(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let marker = format!("\n[… truncated {} bytes]", text.len());
    let mut end = limit.saturating_sub(marker.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{marker}", &text[..end])
}

/// The email subject: `[SEVERITY] title (account region)`, one line of printable ASCII under
/// 100 characters, as SNS requires. A resolved notice says `[RESOLVED]` instead of the
/// severity, and a grouped alert starts with its event count, so a mailbox sorts at a glance.
pub fn subject(alert: &Alert) -> String {
    let label = match alert.status {
        Status::Firing => alert.severity.as_str().to_uppercase(),
        Status::Resolved => "RESOLVED".to_owned(),
    };
    let mut subject = match &alert.group {
        Some(group) if group.count > 1 => format!("[{label}] {}x {}", group.count, alert.title),
        _ => format!("[{label}] {}", alert.title),
    };
    if let Some(account) = &alert.account {
        subject.push_str(&format!(" ({account}"));
        if let Some(region) = &alert.region {
            subject.push_str(&format!(" {region}"));
        }
        subject.push(')');
    }
    let mut clean = String::with_capacity(subject.len());
    for c in subject.chars() {
        match c {
            ' '..='~' => clean.push(c),
            c if c.is_whitespace() => clean.push(' '),
            _ => clean.push('?'),
        }
    }
    let clean = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    if clean.len() < 100 {
        clean
    } else {
        format!("{}...", &clean[..96])
    }
}

/// What noise control did to an alert, one sentence each, for the human formats: how many
/// were held back before it, how many events it stands for.
pub(crate) fn noise_notes(alert: &Alert) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(group) = &alert.group {
        let span = match (&group.first_time, &group.last_time) {
            (Some(first), Some(last)) if first != last => format!(" between {first} and {last}"),
            (Some(first), _) => format!(" at {first}"),
            _ => String::new(),
        };
        let shown = if group.event_ids.len() < usize::try_from(group.count).unwrap_or(usize::MAX) {
            format!(" (first {} event ids listed)", group.event_ids.len())
        } else {
            String::new()
        };
        notes.push(format!(
            "{} matching events{span}: {}{shown}.",
            group.count,
            group.event_ids.join(", ")
        ));
    }
    if let Some(n_suppressed) = alert.suppressed.filter(|n| *n > 0) {
        notes.push(format!(
            "{n_suppressed} more alert{} for the same group {} held back since the previous one.",
            if n_suppressed == 1 { "" } else { "s" },
            if n_suppressed == 1 { "was" } else { "were" },
        ));
    }
    notes
}

/// What message attributes count towards SNS's size limit: each name, type and value.
pub fn attribute_bytes(attributes: &[(&'static str, String)]) -> usize {
    attributes
        .iter()
        .map(|(name, value)| name.len() + "String".len() + value.len())
        .sum()
}

/// An attribute's longest value: filter policies match short values, and attributes count
/// towards the message's size.
const MAX_ATTRIBUTE_BYTES: usize = 256;

/// Message attributes for filter policies: present fields only (SNS refuses empty values),
/// each within [`MAX_ATTRIBUTE_BYTES`].
pub fn attributes(alert: &Alert) -> Vec<(&'static str, String)> {
    let mut attributes = vec![
        ("severity", alert.severity.as_str().to_owned()),
        ("rule", alert.rule.to_string()),
        ("status", alert.status.as_str().to_owned()),
    ];
    for (name, value) in [
        ("event_name", &alert.event_name),
        ("account", &alert.account),
        ("product_code", &alert.product_code),
    ] {
        // Emptiness is judged after cleaning: a value of control characters alone is none.
        let value = value
            .as_deref()
            .map(|v| escape::line(&cut(v, MAX_ATTRIBUTE_BYTES)))
            .filter(|v| !v.trim().is_empty());
        if let Some(value) = value {
            attributes.push((name, value));
        }
    }
    attributes
}

/// Repeats of one problem share a thread: the rule, the account and the product; or the
/// rule and the alert's [`Alert::thread_key`] (an absence and its resolved notice).
pub fn thread_id(alert: &Alert) -> String {
    let part = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".into());
    match &alert.thread_key {
        Some(key) => format!("{}-{key}", alert.rule),
        None => format!(
            "{}-{}-{}",
            alert.rule,
            part(&alert.account),
            part(&alert.product_code)
        ),
    }
    .chars()
    .map(|c| {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '_'
        }
    })
    .take(128)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{DOCUMENT_VERSION, Severity};

    fn alert() -> Alert {
        Alert::example("metering-throttled", Severity::Medium)
    }

    #[test]
    fn subjects_are_one_short_line_of_ascii() {
        let mut alert = alert();
        assert_eq!(
            subject(&alert),
            "[MEDIUM] Metering call throttled (123456789012 us-east-1)"
        );
        alert.title = format!("Line one\nline two — with ünïcode {}", "x".repeat(200));
        let subject = subject(&alert);
        assert!(subject.len() < 100, "{}", subject.len());
        assert!(
            subject.bytes().all(|b| (b' '..=b'~').contains(&b)),
            "{subject}"
        );
        assert!(
            subject.starts_with("[MEDIUM] Line one line two ? with ?n?code"),
            "{subject}"
        );
    }

    #[test]
    fn attributes_leave_out_missing_fields() {
        let names: Vec<&str> = attributes(&alert()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["severity", "rule", "status", "event_name", "account"]
        );
        // SNS refuses an empty value: one that cleaning empties is left out too.
        let mut alert = alert();
        alert.product_code = Some("\u{202e}\u{7}\n".into());
        assert!(
            attributes(&alert)
                .iter()
                .all(|(name, _)| *name != "product_code")
        );
    }

    #[test]
    fn resolved_grouped_and_throttled_alerts_say_so_in_every_human_format() {
        let mut resolved = alert();
        resolved.status = Status::Resolved;
        assert!(subject(&resolved).starts_with("[RESOLVED] "));
        assert!(email::text(&resolved).starts_with("[RESOLVED] "));
        assert!(chatbot::notification(&resolved).contains(":white_check_mark: Resolved: "));

        let mut grouped = alert();
        grouped.suppressed = Some(4);
        grouped.group = Some(crate::alert::GroupSummary {
            count: 3,
            first_time: Some("2026-01-01T00:00:00Z".into()),
            last_time: Some("2026-01-01T00:02:00Z".into()),
            event_ids: vec!["e-0".into(), "e-1".into(), "e-2".into()],
            key: Map::new(),
        });
        assert!(
            subject(&grouped).starts_with("[MEDIUM] 3x "),
            "{}",
            subject(&grouped)
        );
        let notes = "3 matching events between 2026-01-01T00:00:00Z and 2026-01-01T00:02:00Z: e-0, e-1, e-2.";
        let held = "4 more alerts for the same group were held back since the previous one.";
        for text in [email::text(&grouped), chatbot::notification(&grouped)] {
            assert!(text.contains(notes), "{text}");
            assert!(text.contains(held), "{text}");
        }
    }

    /// Message and attributes together, as SNS counts them.
    fn published_bytes(message: &Message) -> usize {
        message.body.len() + attribute_bytes(&message.attributes)
    }

    /// An alert whose event holds far more than SNS takes, everywhere a caller can write.
    fn oversized() -> Alert {
        let mut alert = alert();
        alert.title = "t".repeat(5_000);
        alert.summary = "\u{1}".repeat(50_000);
        alert.description = "d".repeat(50_000);
        alert.event_id = Some("e".repeat(100_000));
        alert.body = Some("é".repeat(400_000));
        alert.error_code = Some("ThrottlingException".into());
        alert.error_message = Some("m".repeat(9_000));
        alert.product_code = Some("p".repeat(200_000));
        alert
            .matched
            .insert("detail.big".into(), Value::String("x".repeat(300_000)));
        alert.records = (0..500)
            .map(|n| crate::alert::UsageRecord {
                customer: Some(format!("c-{n}-{}", "c".repeat(1_000))),
                dimension: Some("users".into()),
                quantity: Some(Value::from(n)),
                timestamp: None,
                status: Some("CustomerNotSubscribed".into()),
            })
            .collect();
        alert
    }

    #[test]
    fn oversized_alerts_are_cut_with_a_marker_not_rejected() {
        let alert = oversized();
        for format in [Format::Json, Format::Chatbot] {
            let message = message(&alert, format);
            assert!(published_bytes(&message) <= MAX_MESSAGE_BYTES, "{format:?}");
        }
        let message = message(&alert, Format::Json);
        let protocols: Value = serde_json::from_str(&message.body).expect("structured JSON");
        let email = protocols["email"].as_str().expect("email text");
        assert!(email.contains("[… truncated"), "a visible marker");
        let document: Value =
            serde_json::from_str(protocols["default"].as_str().expect("document")).expect("JSON");
        assert_eq!(document["truncated"], true);
        assert_eq!(document["rule"], "metering-throttled");
        assert_eq!(
            document["records"].as_array().map(Vec::len),
            Some(MAX_ENTRIES)
        );
    }

    #[test]
    fn a_cut_document_still_reads_by_the_schema() {
        let validator =
            jsonschema::validator_for(&crate::alert::document_schema()).expect("a valid schema");
        let alert = oversized();
        for limit in [MAX_MESSAGE_BYTES / 2, 16 * 1024, 2 * 1024, 1024] {
            let text = document(&alert, limit);
            assert!(text.len() <= limit, "{} > {limit}", text.len());
            let document: Value = serde_json::from_str(&text).expect("JSON");
            let errors: Vec<String> = validator
                .iter_errors(&document)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "at {limit}: {errors:?}");
            assert_eq!(document["truncated"], true);
            assert_eq!(document["id"], alert.id.as_str());
        }
    }

    #[test]
    fn event_values_cannot_mention_a_channel_or_forge_lines() {
        let mut alert = alert();
        alert.product_code = Some("<!channel>`*x*".into());
        alert.error_code = Some("InvalidProductCodeException".into());
        alert.error_message =
            Some("bad <https://evil.example|click here>\nRule: fake\u{1b}[2J".into());
        alert.summary = "summary with <!here> and \u{202e}reversed".into();
        let notification: Value =
            serde_json::from_str(&chatbot::notification(&alert)).expect("JSON");
        let description = notification["content"]["description"]
            .as_str()
            .expect("text");
        for text in [description, &notification.to_string()] {
            assert!(!text.contains("<!"), "{text}");
            assert!(!text.contains("<https://evil"), "{text}");
            assert!(
                !text.contains('\u{1b}') && !text.contains('\u{202e}'),
                "{text}"
            );
        }
        assert!(
            description.contains("`&lt;!channel&gt;'*x*`"),
            "{description}"
        );
        assert!(!description.contains("\nRule: fake"), "{description}");
        let email = email::text(&alert);
        assert!(
            !email.contains('\u{1b}') && !email.contains('\u{202e}'),
            "{email}"
        );
        assert!(!email.contains("\nRule: fake"), "{email}");
    }

    #[test]
    fn chatbot_context_holds_strings_only() {
        let mut alert = alert();
        alert.event_id = None;
        alert.event_name = None;
        let notification: Value =
            serde_json::from_str(&chatbot::notification(&alert)).expect("JSON");
        let context = notification["metadata"]["additionalContext"]
            .as_object()
            .expect("an object");
        assert!(context.values().all(Value::is_string), "{context:?}");
        assert!(!context.contains_key("eventId"));
    }

    #[test]
    fn email_says_what_to_do() {
        let mut alert = alert();
        alert.next_steps = vec!["Retry with backoff".into(), "Batch the usage".into()];
        let email = email::text(&alert);
        assert!(
            email.contains("What to do\n  1. Retry with backoff\n  2. Batch the usage\n"),
            "{email}"
        );
    }

    #[test]
    fn structured_messages_have_a_default_and_an_email_body() {
        let message = message(&alert(), Format::Json);
        assert!(message.structured);
        let protocols: Value = serde_json::from_str(&message.body).expect("JSON");
        let document: Value =
            serde_json::from_str(protocols["default"].as_str().expect("default")).expect("JSON");
        assert_eq!(document["version"], DOCUMENT_VERSION);
        assert!(
            protocols["email"]
                .as_str()
                .is_some_and(|e| e.starts_with("[MEDIUM]"))
        );
        assert_eq!(
            message.deduplication_id,
            "00000000-0000-5000-8000-000000000000"
        );
        assert_eq!(message.group_id, "metering-throttled-123456789012--");
    }
}
