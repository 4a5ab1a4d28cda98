//! What each kind of subscriber receives for an alert.
//!
//! - [`Format::Json`] publishes with SNS `MessageStructure: "json"`: email subscribers get the
//!   readable text of [`email`], every other protocol (`default`, `sqs`, `lambda`, `https`...)
//!   the versioned alert document.
//! - [`Format::Chatbot`] publishes AWS Chatbot's custom-notification JSON ([`chatbot`]), the
//!   only shape Chatbot shows in Slack or Teams (it drops everything else silently).
//!
//! Every message carries a [`subject`] (email's subject line) and [`attributes`] for
//! subscription filter policies, and fits SNS's size limit: the longest parts are cut, with a
//! visible marker, rather than the publish rejected.

pub mod chatbot;
pub mod email;

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

/// The SNS message for `alert` in `format`.
pub fn message(alert: &Alert, format: Format) -> Message {
    let body = match format {
        Format::Json => structured(alert),
        Format::Chatbot => chatbot::notification(alert),
    };
    Message {
        body,
        structured: format == Format::Json,
        subject: subject(alert),
        attributes: attributes(alert),
        group_id: thread_id(alert),
        deduplication_id: alert.id.clone(),
    }
}

/// The alert document, cut to `limit` bytes if it must be.
pub fn document(alert: &Alert, limit: usize) -> String {
    let text = alert.to_json();
    if text.len() <= limit {
        return text;
    }
    // Keep every small field; cut the ones that can grow (templates' text, matched values,
    // records) and say so in the document itself.
    let mut value = serde_json::to_value(alert).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.insert("truncated".into(), Value::Bool(true));
        for key in ["body", "description", "summary"] {
            if let Some(Value::String(text)) = object.get_mut(key) {
                *text = cut(text, limit / 8);
            }
        }
        for key in ["matched", "element", "records"] {
            if let Some(part) = object.get_mut(key) {
                if part.to_string().len() > limit / 8 {
                    *part = Value::String(format!("[truncated: {} bytes]", part.to_string().len()));
                }
            }
        }
    }
    let text = value.to_string();
    if text.len() <= limit {
        text
    } else {
        // Only a pathological title could get here; keep the essentials.
        serde_json::json!({
            "version": alert.version, "id": alert.id, "rule": &*alert.rule,
            "severity": alert.severity, "title": cut(&alert.title, 200),
            "event_id": alert.event_id, "truncated": true,
        })
        .to_string()
    }
}

/// The per-protocol message for `MessageStructure: "json"`, within SNS's limit.
fn structured(alert: &Alert) -> String {
    let mut budget = MAX_MESSAGE_BYTES / 2;
    loop {
        let document = document(alert, budget);
        let email = cut(&email::text(alert), budget);
        let mut protocols = Map::new();
        protocols.insert("default".into(), Value::String(document));
        protocols.insert("email".into(), Value::String(email));
        let text = Value::Object(protocols).to_string();
        // JSON escaping can grow the strings; shrink until the whole fits.
        if text.len() <= MAX_MESSAGE_BYTES || budget < 1024 {
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

/// Message attributes for filter policies: present fields only (SNS refuses empty values).
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
        if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
            attributes.push((name, value.clone()));
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

    #[test]
    fn oversized_alerts_are_cut_with_a_marker_not_rejected() {
        let mut alert = alert();
        alert.body = Some("é".repeat(400_000));
        alert
            .matched
            .insert("detail.big".into(), Value::String("x".repeat(300_000)));
        let message = message(&alert, Format::Json);
        assert!(
            message.body.len() <= MAX_MESSAGE_BYTES,
            "{}",
            message.body.len()
        );
        let protocols: Value = serde_json::from_str(&message.body).expect("structured JSON");
        let email = protocols["email"].as_str().expect("email text");
        assert!(email.contains("[… truncated"), "a visible marker");
        let document: Value =
            serde_json::from_str(protocols["default"].as_str().expect("document")).expect("JSON");
        assert_eq!(document["truncated"], true);
        assert_eq!(document["rule"], "metering-throttled");
        let chatbot = super::message(&alert, Format::Chatbot);
        assert!(chatbot.body.len() <= MAX_MESSAGE_BYTES);
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
