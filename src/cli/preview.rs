//! `meterwatch preview`: exactly what each subscriber would receive for an event.

use crate::alert::format::{self, Format, chatbot, email};
use anyhow::Context;
use std::fmt::Write as _;
use std::process::ExitCode;

/// Renders the alerts an event raises as each kind of subscriber receives them: email
/// (subject and text), Slack or Teams through AWS Chatbot, and the JSON alert document for
/// SQS, Lambda and HTTPS subscribers, with the SNS message attributes.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    input: super::RulesAndEvent,
    /// Show only this kind of subscriber.
    #[arg(long, value_enum)]
    format: Option<Subscriber>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Subscriber {
    /// Email subscribers of a `json`-format sink: the subject and the plain text.
    Email,
    /// A `chatbot`-format sink: the AWS Chatbot custom notification.
    Chatbot,
    /// SQS, Lambda, HTTPS (and `default`) subscribers of a `json`-format sink.
    Json,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let rule_set = match super::load_rules(&args.input.rules) {
        Ok(rule_set) => rule_set,
        Err(code) => return Ok(code),
    };
    let name = args.input.event.display().to_string();
    let events = super::read_events(&args.input.event)?;
    let mut alerts = Vec::new();
    for event in &events {
        alerts.extend(
            rule_set
                .evaluate(event)
                .with_context(|| format!("evaluating {name}"))?,
        );
    }
    print!("{}", render(&alerts, args.format));
    Ok(ExitCode::SUCCESS)
}

/// Every format of every alert, as `preview` prints it (also the snapshots of alerts no single
/// event raises, such as absence alerts).
pub(crate) fn render(alerts: &[crate::alert::Alert], only: Option<Subscriber>) -> String {
    let mut out = String::new();
    if alerts.is_empty() {
        out.push_str("no alert: no rule fires for this event\n");
        return out;
    }
    let show = |kind| only.is_none_or(|only| only == kind);
    for (idx, alert) in alerts.iter().enumerate() {
        let _ = writeln!(
            out,
            "=== alert {} of {}: {} ({})",
            idx + 1,
            alerts.len(),
            alert.rule,
            alert.severity
        );
        if show(Subscriber::Email) {
            let _ = writeln!(out, "--- email");
            let _ = writeln!(out, "Subject: {}", format::subject(alert));
            let _ = writeln!(out);
            out.push_str(&email::text(alert));
        }
        if show(Subscriber::Chatbot) {
            let _ = writeln!(out, "--- chatbot (Slack / Teams through AWS Chatbot)");
            let _ = writeln!(out, "{}", chatbot::notification(alert));
        }
        if show(Subscriber::Json) {
            let _ = writeln!(out, "--- json (SQS, Lambda, HTTPS, default)");
            let _ = writeln!(
                out,
                "{}",
                format::document(alert, format::MAX_MESSAGE_BYTES)
            );
        }
        let attributes: Vec<String> = format::attributes(alert)
            .into_iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let _ = writeln!(out, "--- message attributes: {}", attributes.join(" "));
        let fifo = format::message(alert, Format::Json);
        let _ = writeln!(
            out,
            "--- FIFO topics: MessageGroupId={} MessageDeduplicationId={}",
            fifo.group_id, fifo.deduplication_id
        );
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Alert, Status};
    use crate::noise::testing::{Published, admit_body, event, noise};
    use crate::rules::RuleSet;
    use std::time::Duration;

    /// The shipped `metering-stopped` rule's alert and resolved notice in every format, as
    /// `preview` would print them: no single event raises them, so `preview`'s snapshots of
    /// the fixtures cannot.
    #[tokio::test(start_paused = true)]
    async fn shipped_absence_alert_and_resolved_notice_in_every_format() {
        let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let rule_set = RuleSet::load(&[rules]).unwrap_or_else(|error| panic!("{error}"));
        let (noise, sink) = (noise(), Published::default());
        let product = "EXAMPLE_proCode";
        admit_body(&noise, &rule_set, &event("h-1", product, 0, None), &sink).await;
        tokio::time::advance(Duration::from_secs(2 * 3600)).await;
        noise
            .check_absences(&rule_set, &sink)
            .await
            .expect("memory store");
        admit_body(&noise, &rule_set, &event("h-2", product, 130, None), &sink).await;
        let alerts: Vec<Alert> = sink
            .take()
            .into_iter()
            .filter(|alert| &*alert.rule == "metering-stopped")
            .collect();
        assert_eq!(
            alerts.iter().map(|a| a.status).collect::<Vec<_>>(),
            [Status::Firing, Status::Resolved]
        );
        insta::assert_snapshot!(render(&alerts, None));
    }
}
