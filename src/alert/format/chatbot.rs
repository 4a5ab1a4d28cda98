//! AWS Chatbot (Amazon Q Developer in chat applications) custom notifications: the one SNS
//! message shape Chatbot posts to Slack or Teams; it silently drops anything else.
//!
//! `version`, `source`, `content.description` are required by Chatbot; the title carries the
//! severity, the description is Slack markdown, `nextSteps` come from the rule, and
//! `metadata.threadId` groups repeats of one problem (rule, account, product) in one thread.

use super::cut;
use super::escape::{line, plain, slack, slack_code};
use crate::alert::{Alert, Severity, Status};
use serde_json::{Map, Value, json};
use std::fmt::Write as _;

/// Chatbot's limit on a description, with room to spare.
const MAX_DESCRIPTION_BYTES: usize = 3500;
/// The summary, notes and body take at most this much of it, escaped, so that the facts
/// after them (account, caller, product, error, link) are always shown.
const MAX_HEAD_BYTES: usize = 1000;
/// A field's value, a keyword or a related resource, escaped.
const MAX_VALUE_BYTES: usize = 200;
/// Usage records listed; the rest are counted.
const MAX_RECORDS: usize = 10;
/// The rule's next steps shown, and each one's length.
const MAX_NEXT_STEPS: usize = 10;
const MAX_STEP_BYTES: usize = 500;

/// The notification for `alert`, as JSON text. Every part is bounded after escaping, so the
/// whole stays far below SNS's limit whatever the event holds; event values are escaped for
/// Slack.
pub fn notification(alert: &Alert) -> String {
    let mut head = String::new();
    let _ = writeln!(head, "{}", slack(&alert.summary));
    for note in super::noise_notes(alert) {
        let _ = writeln!(head, "_{}_", slack(&note));
    }
    // A resolved notice says what ended; the firing alert's advice no longer applies.
    let firing = alert.status == Status::Firing;
    if let Some(body) = alert.body.as_deref().filter(|b| firing && !b.is_empty()) {
        let _ = writeln!(head, "\n{}", slack(body));
    }
    let mut description = cut(head.trim_end(), MAX_HEAD_BYTES);
    let _ = writeln!(description);
    let _ = writeln!(description);
    let mut field = |label: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            let _ = writeln!(description, "*{label}:* {value}");
        }
    };
    let code = |text: &str| slack_code(text, MAX_VALUE_BYTES);
    field(
        "Rule",
        Some(format!("{} ({})", code(&alert.rule), alert.severity)),
    );
    field("Call", alert.event_name.as_deref().map(code));
    field(
        "Account",
        alert.account.as_deref().map(|account| match &alert.region {
            Some(region) => format!("{} ({})", code(account), value(region)),
            None => code(account),
        }),
    );
    if let Some(principal) = &alert.principal {
        field("Caller", principal.caller().as_deref().map(code));
        field("Role", principal.role_arn.as_deref().map(code));
    }
    field("Product", alert.product_code.as_deref().map(code));
    field(
        "Error",
        alert
            .error_code
            .as_deref()
            .map(|error| match &alert.error_message {
                Some(message) => format!("{}: {}", code(error), value(message)),
                None => code(error),
            }),
    );
    field("When", alert.event_time.as_deref().map(value));
    if let Some(element) = &alert.element {
        field("About", Some(code(&element.path)));
    }
    // The link before the records, which are the part a cut description loses.
    if let Some(url) = &alert.console_url {
        let _ = writeln!(description, "<{url}|Open the event in CloudTrail>");
    }
    // A batch's results say which records failed; a single call's record is its usage.
    let with_status = alert.records.iter().any(|record| record.status.is_some());
    let listed: Vec<&crate::alert::UsageRecord> = alert
        .records
        .iter()
        .filter(|record| !with_status || record.status.as_deref() != Some("Success"))
        .collect();
    let mut records: Vec<String> = listed
        .iter()
        .take(MAX_RECORDS)
        .map(|record| format!("• {}", value(&record.describe())))
        .collect();
    // Those the alert itself leaves out ([`Alert::records_omitted`]) are counted too.
    let more = (listed.len().saturating_sub(MAX_RECORDS) as u64)
        .saturating_add(alert.records_omitted.unwrap_or(0));
    if more > 0 {
        records.push(format!("… and {more} more"));
    }
    if !records.is_empty() {
        let heading = if with_status {
            "Records not metered"
        } else {
            "Usage"
        };
        let _ = writeln!(description, "*{heading}:*\n{}", records.join("\n"));
    }
    let description = cut(description.trim_end(), MAX_DESCRIPTION_BYTES);

    let mut next_steps: Vec<Value> = alert
        .next_steps
        .iter()
        .filter(|_| firing)
        .take(MAX_NEXT_STEPS)
        .map(|step| json!(cut(&plain(step), MAX_STEP_BYTES)))
        .collect();
    if next_steps.is_empty() {
        if let Some(url) = &alert.console_url {
            next_steps.push(json!(format!("Review the call in CloudTrail: {url}")));
        }
    }
    let keywords: Vec<String> = [
        Some(alert.severity.as_str()),
        Some(&*alert.rule),
        alert.event_name.as_deref(),
        alert.account.as_deref(),
        alert.product_code.as_deref(),
    ]
    .into_iter()
    .flatten()
    .map(value)
    .collect();
    let related: Vec<String> = alert
        .principal
        .iter()
        .flat_map(|p| [p.role_arn.as_deref(), p.arn.as_deref()])
        .flatten()
        .map(value)
        .collect();
    // Chatbot takes strings only: absent values are left out, not sent as null.
    let mut context = Map::new();
    for (key, text) in [
        ("severity", Some(alert.severity.as_str())),
        ("eventId", alert.event_id.as_deref()),
        ("eventName", alert.event_name.as_deref()),
        ("alertId", Some(alert.id.as_str())),
        ("status", Some(alert.status.as_str())),
    ] {
        if let Some(text) = text {
            context.insert(key.into(), Value::String(value(text)));
        }
    }
    let title = match alert.status {
        Status::Firing => format!("{} {}", emoji(alert.severity), alert.title),
        Status::Resolved => format!(":white_check_mark: Resolved: {}", alert.title),
    };
    json!({
        "version": "1.0",
        "source": "custom",
        "id": alert.id,
        "content": {
            "textType": "client-markdown",
            "title": value(&title),
            "description": description,
            "nextSteps": next_steps,
            "keywords": keywords,
        },
        "metadata": {
            "threadId": super::thread_id(alert),
            "summary": line(&cut(&slack(&line(&alert.summary)), MAX_HEAD_BYTES)),
            "eventType": &*alert.rule,
            "relatedResources": related,
            "additionalContext": context,
        },
    })
    .to_string()
}

/// An event value as Slack text: one line, escaped, bounded.
fn value(text: &str) -> String {
    line(&cut(&slack(&line(text)), MAX_VALUE_BYTES))
}

fn emoji(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => ":rotating_light:",
        Severity::High => ":red_circle:",
        Severity::Medium => ":large_orange_circle:",
        Severity::Low => ":large_yellow_circle:",
        Severity::Info => ":information_source:",
    }
}
