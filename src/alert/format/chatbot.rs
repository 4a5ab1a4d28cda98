//! AWS Chatbot (Amazon Q Developer in chat applications) custom notifications: the one SNS
//! message shape Chatbot posts to Slack or Teams; it silently drops anything else.
//!
//! `version`, `source`, `content.description` are required by Chatbot; the title carries the
//! severity, the description is Slack markdown, `nextSteps` come from the rule, and
//! `metadata.threadId` groups repeats of one problem (rule, account, product) in one thread.

use crate::alert::{Alert, Severity, Status};
use serde_json::{Value, json};
use std::fmt::Write as _;

/// Chatbot's limit on a description, with room to spare.
const MAX_DESCRIPTION_CHARS: usize = 3500;

/// The notification for `alert`, as JSON text.
pub fn notification(alert: &Alert) -> String {
    let mut description = String::new();
    let _ = writeln!(description, "{}", alert.summary);
    for note in super::noise_notes(alert) {
        let _ = writeln!(description, "_{note}_");
    }
    if let Some(body) = alert.body.as_deref().filter(|b| !b.is_empty()) {
        let _ = writeln!(description, "\n{body}");
    }
    let _ = writeln!(description);
    let mut field = |label: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            let _ = writeln!(description, "*{label}:* {value}");
        }
    };
    field(
        "Rule",
        Some(format!("`{}` ({})", alert.rule, alert.severity)),
    );
    field(
        "Account",
        alert.account.as_ref().map(|account| match &alert.region {
            Some(region) => format!("`{account}` ({region})"),
            None => format!("`{account}`"),
        }),
    );
    if let Some(principal) = &alert.principal {
        field(
            "Caller",
            principal.arn.as_ref().map(|arn| format!("`{arn}`")),
        );
        field(
            "Role",
            principal.role_arn.as_ref().map(|arn| format!("`{arn}`")),
        );
    }
    field(
        "Product",
        alert.product_code.as_ref().map(|p| format!("`{p}`")),
    );
    field(
        "Error",
        alert.error_code.as_ref().map(|code| format!("`{code}`")),
    );
    field("When", alert.event_time.clone());
    if let Some(element) = &alert.element {
        field("About", Some(format!("`{}`", element.path)));
    }
    let failed: Vec<String> = alert
        .records
        .iter()
        .filter(|record| record.status.as_deref().is_some_and(|s| s != "Success"))
        .map(|record| {
            format!(
                "• {} {} → {}",
                record.customer.as_deref().unwrap_or("?"),
                record.dimension.as_deref().unwrap_or(""),
                record.status.as_deref().unwrap_or("")
            )
        })
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(description, "*Records not metered:*\n{}", failed.join("\n"));
    }
    if let Some(url) = &alert.console_url {
        let _ = writeln!(description, "<{url}|Open the event in CloudTrail>");
    }
    let description: String = description
        .trim_end()
        .chars()
        .take(MAX_DESCRIPTION_CHARS)
        .collect();

    let mut next_steps: Vec<Value> = alert.next_steps.iter().map(|s| json!(s)).collect();
    if next_steps.is_empty() {
        if let Some(url) = &alert.console_url {
            next_steps.push(json!(format!("Review the call in CloudTrail: {url}")));
        }
    }
    let keywords: Vec<&str> = [
        Some(alert.severity.as_str()),
        Some(&*alert.rule),
        alert.event_name.as_deref(),
        alert.account.as_deref(),
        alert.product_code.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let related: Vec<&str> = alert
        .principal
        .iter()
        .flat_map(|p| [p.role_arn.as_deref(), p.arn.as_deref()])
        .flatten()
        .collect();
    json!({
        "version": "1.0",
        "source": "custom",
        "id": alert.id,
        "content": {
            "textType": "client-markdown",
            "title": match alert.status {
                Status::Firing => format!("{} {}", emoji(alert.severity), alert.title),
                Status::Resolved => format!(":white_check_mark: Resolved: {}", alert.title),
            },
            "description": description,
            "nextSteps": next_steps,
            "keywords": keywords,
        },
        "metadata": {
            "threadId": super::thread_id(alert),
            "summary": alert.summary,
            "eventType": &*alert.rule,
            "relatedResources": related,
            "additionalContext": {
                "severity": alert.severity.as_str(),
                "eventId": alert.event_id,
                "eventName": alert.event_name,
                "alertId": alert.id,
                "status": alert.status.as_str(),
            },
        },
    })
    .to_string()
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
