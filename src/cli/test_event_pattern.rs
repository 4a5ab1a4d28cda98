//! `meterwatch test-event-pattern`: `aws events test-event-pattern`, offline.

use crate::input;
use anyhow::Context;
use meterwatch_pattern::{MatcherBuilder, Pattern};
use std::process::ExitCode;

/// Tests whether an event matches an EventBridge event pattern, as
/// `aws events test-event-pattern` does: prints {"Result": true} or {"Result": false}.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The event pattern: JSON text, or file://PATH.
    #[arg(long)]
    event_pattern: String,
    /// The event: JSON text, or file://PATH.
    #[arg(long)]
    event: String,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let pattern_text = input::inline_or_file("--event-pattern", &args.event_pattern)?;
    let event_text = input::inline_or_file("--event", &args.event)?;
    // A pattern that is not JSON is an invalid pattern to AWS too (exit 1, not 2).
    let pattern = match Pattern::parse(&pattern_text) {
        Ok(pattern) => pattern,
        Err(error) => {
            eprintln!("InvalidEventPatternException: {}", error.aws_message());
            return Ok(ExitCode::from(1));
        }
    };
    serde_json::from_str::<serde::de::IgnoredAny>(&event_text)
        .context("--event is not valid JSON")?;
    let mut builder = MatcherBuilder::default();
    builder.add((), pattern);
    let matched = !builder
        .build()
        .matches(&event_text)
        .context("--event is not a JSON object")?
        .is_empty();
    println!("{{\"Result\": {matched}}}");
    Ok(ExitCode::SUCCESS)
}
