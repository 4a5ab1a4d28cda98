//! An alert as a person at a terminal reads it (the stdout sink's `text` format): a heading
//! line with severity, rule and title, the facts that place it, and the summary. The JSON
//! document stays the format for pipes and programs.

use super::escape::line;
use crate::alert::{Alert, Status};
use std::fmt::Write as _;

/// At most this many distinct customers are named; the rest are counted.
const MAX_CUSTOMERS: usize = 3;

/// The block for `alert`, ending with an empty line that separates it from the next. Event
/// values are one line each, control characters removed (a terminal obeys escapes).
pub fn text(alert: &Alert) -> String {
    let mut out = String::new();
    let label = match alert.status {
        Status::Firing => alert.severity.as_str().to_uppercase(),
        Status::Resolved => "RESOLVED".to_owned(),
    };
    let _ = writeln!(out, "{label} {}: {}", alert.rule, line(&alert.title));
    let mut field = |label: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            let _ = writeln!(out, "  {label:<9} {}", line(&value));
        }
    };
    field(
        "account",
        alert.account.as_ref().map(|account| match &alert.region {
            Some(region) => format!("{account} ({region})"),
            None => account.clone(),
        }),
    );
    field("product", alert.product_code.clone());
    field("customer", customers(alert));
    let _ = writeln!(out, "  {}", line(&alert.summary));
    for note in super::noise_notes(alert) {
        let _ = writeln!(out, "  {}", line(&note));
    }
    out.push('\n');
    out
}

/// The distinct customers of the alert's usage records, in order; `None` when none names one.
fn customers(alert: &Alert) -> Option<String> {
    let mut names: Vec<&str> = Vec::new();
    for customer in alert.records.iter().filter_map(|r| r.customer.as_deref()) {
        if !names.contains(&customer) {
            names.push(customer);
        }
    }
    let shown = names.len().min(MAX_CUSTOMERS);
    let (named, rest) = names.split_at(shown);
    match (named.join(", "), rest.len()) {
        (text, _) if text.is_empty() => None,
        (text, 0) => Some(text),
        (text, more) => Some(format!("{text} and {more} more")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Severity, UsageRecord};

    fn record(customer: &str) -> UsageRecord {
        UsageRecord {
            customer: Some(customer.into()),
            dimension: Some("users".into()),
            quantity: Some(3.into()),
            timestamp: None,
            status: Some("CustomerNotSubscribed".into()),
        }
    }

    #[test]
    fn a_firing_alert_reads_as_one_block() {
        let mut alert = Alert::example("metering-batch-rejected", Severity::High);
        alert.title = "BatchMeterUsage rejected usage records".into();
        alert.summary = "2 of 3 usage records were rejected.".into();
        alert.product_code = Some("prod-abc123".into());
        alert.records = vec![record("c-1"), record("c-2"), record("c-1")];
        insta::assert_snapshot!(text(&alert), @r"
        HIGH metering-batch-rejected: BatchMeterUsage rejected usage records
          account   123456789012 (us-east-1)
          product   prod-abc123
          customer  c-1, c-2
          2 of 3 usage records were rejected.
        ");
    }

    #[test]
    fn a_resolved_notice_without_customers_leaves_out_what_it_lacks() {
        let mut alert = Alert::example("metering-stopped", Severity::High);
        alert.status = Status::Resolved;
        alert.region = None;
        insta::assert_snapshot!(text(&alert), @r"
        RESOLVED metering-stopped: Metering call throttled
          account   123456789012
          MeterUsage was throttled.
        ");
    }

    #[test]
    fn many_customers_are_counted_and_escapes_are_removed() {
        let mut alert = Alert::example("metering-batch-rejected", Severity::High);
        alert.records = ["a", "b", "c", "d", "e"].into_iter().map(record).collect();
        alert.product_code = Some("prod-\u{1b}[31mred\nfake".into());
        let block = text(&alert);
        assert!(
            block.contains("  customer  a, b, c and 2 more\n"),
            "{block}"
        );
        assert!(block.contains("  product   prod-[31mred fake\n"), "{block}");
        assert!(block.ends_with("\n\n"), "{block:?}");
    }
}
