//! The plain-text email body: the summary first, then the facts in aligned lines, then the
//! link to the event. Plain text because SNS email is plain text, and it reads well in any
//! client and in a pager's SMS-to-email gateway.

use super::escape::{line, plain};
use crate::alert::{Alert, Status};
use std::fmt::Write as _;

/// The email body for `alert`. Event values are shown as plain text, one line each (see
/// [`escape`](super::escape)).
pub fn text(alert: &Alert) -> String {
    let mut out = String::new();
    let label = match alert.status {
        Status::Firing => alert.severity.as_str().to_uppercase(),
        Status::Resolved => "RESOLVED".to_owned(),
    };
    let _ = writeln!(out, "[{label}] {}", line(&alert.title));
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", plain(&alert.summary));
    for note in super::noise_notes(alert) {
        let _ = writeln!(out, "{}", plain(&note));
    }
    // A resolved notice says what ended; the firing alert's advice no longer applies.
    let firing = alert.status == Status::Firing;
    if let Some(body) = alert.body.as_deref().filter(|b| firing && !b.is_empty()) {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", plain(body));
    }
    let _ = writeln!(out);
    let mut field = |label: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            let _ = writeln!(out, "{label:<12} {}", line(&value));
        }
    };
    field("Rule", Some(format!("{} ({})", alert.rule, alert.severity)));
    field("When", alert.event_time.clone());
    field("Call", alert.event_name.clone());
    field(
        "Account",
        alert.account.as_ref().map(|account| match &alert.region {
            Some(region) => format!("{account} ({region})"),
            None => account.clone(),
        }),
    );
    if let Some(principal) = &alert.principal {
        field("Caller", principal.caller());
        field("Role", principal.role_arn.clone());
    }
    field("Product", alert.product_code.clone());
    field(
        "Error",
        alert
            .error_code
            .as_ref()
            .map(|code| match &alert.error_message {
                Some(message) => format!("{code}: {message}"),
                None => code.clone(),
            }),
    );
    field("Event ID", alert.event_id.clone());
    if let Some(element) = &alert.element {
        field("About", Some(element.path.clone()));
    }
    let records: Vec<String> = alert
        .records
        .iter()
        .map(|record| record.describe())
        .filter(|text| !text.is_empty())
        .collect();
    let omitted = alert.records_omitted.unwrap_or(0);
    if !records.is_empty() || omitted > 0 {
        let _ = writeln!(out, "Records");
        for record in records {
            let _ = writeln!(out, "  - {}", line(&record));
        }
        if omitted > 0 {
            let _ = writeln!(out, "  + {omitted} more in the call, not listed");
        }
    }
    if firing && !alert.next_steps.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "What to do");
        for (n, step) in alert.next_steps.iter().enumerate() {
            let _ = writeln!(out, "  {}. {}", n + 1, line(step));
        }
    }
    if !alert.description.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Why this matters: {}", plain(&alert.description));
    }
    if let Some(url) = &alert.console_url {
        let _ = writeln!(out);
        let _ = writeln!(out, "Open in CloudTrail: {url}");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "-- ");
    let _ = writeln!(out, "meterwatch alert {}", alert.id);
    out
}
