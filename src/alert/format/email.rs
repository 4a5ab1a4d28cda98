//! The plain-text email body: the summary first, then the facts in aligned lines, then the
//! link to the event. Plain text because SNS email is plain text, and it reads well in any
//! client and in a pager's SMS-to-email gateway.

use crate::alert::{Alert, Status};
use std::fmt::Write as _;

/// The email body for `alert`.
pub fn text(alert: &Alert) -> String {
    let mut out = String::new();
    let label = match alert.status {
        Status::Firing => alert.severity.as_str().to_uppercase(),
        Status::Resolved => "RESOLVED".to_owned(),
    };
    let _ = writeln!(out, "[{label}] {}", alert.title);
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", alert.summary);
    for note in super::noise_notes(alert) {
        let _ = writeln!(out, "{note}");
    }
    if let Some(body) = alert.body.as_deref().filter(|b| !b.is_empty()) {
        let _ = writeln!(out);
        let _ = writeln!(out, "{body}");
    }
    let _ = writeln!(out);
    let mut line = |label: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            let _ = writeln!(out, "{label:<12} {value}");
        }
    };
    line("Rule", Some(format!("{} ({})", alert.rule, alert.severity)));
    line("When", alert.event_time.clone());
    line("Call", alert.event_name.clone());
    line(
        "Account",
        alert.account.as_ref().map(|account| match &alert.region {
            Some(region) => format!("{account} ({region})"),
            None => account.clone(),
        }),
    );
    if let Some(principal) = &alert.principal {
        line("Caller", principal.arn.clone());
        line("Role", principal.role_arn.clone());
    }
    line("Product", alert.product_code.clone());
    line(
        "Error",
        alert
            .error_code
            .as_ref()
            .map(|code| match &alert.error_message {
                Some(message) => format!("{code}: {message}"),
                None => code.clone(),
            }),
    );
    line("Event ID", alert.event_id.clone());
    if let Some(element) = &alert.element {
        line("About", Some(element.path.clone()));
    }
    if !alert.records.is_empty() {
        let _ = writeln!(out, "Records");
        for record in &alert.records {
            let parts: Vec<String> = [
                record.customer.clone().map(|c| format!("customer {c}")),
                record.dimension.clone().map(|d| format!("dimension {d}")),
                record.quantity.as_ref().map(|q| format!("quantity {q}")),
                record.timestamp.clone(),
                record.status.clone(),
            ]
            .into_iter()
            .flatten()
            .collect();
            let _ = writeln!(out, "  - {}", parts.join(", "));
        }
    }
    if !alert.description.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Why this matters: {}", alert.description);
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
