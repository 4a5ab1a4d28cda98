//! `meterwatch bench-patterns`: the engine on the shared benchmark, measured exactly as
//! `../shared/bench/README.md` specifies, so the figures sit beside quamina's and
//! event-ruler's.

#![allow(clippy::disallowed_types, reason = "the benchmark measures wall time")]

use super::passes::Passes;
use crate::input;
use anyhow::Context;
use meterwatch_pattern::{MatcherBuilder, Pattern, Scratch};
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Measures pattern-matching throughput: every event parsed and matched against every
/// pattern on one thread, per pass; prints one JSON line.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A JSON object: pattern name → EventBridge pattern.
    #[arg(long)]
    patterns: PathBuf,
    /// Events, one JSON document a line.
    #[arg(long)]
    events: PathBuf,
    #[command(flatten)]
    passes: Passes,
    /// Use only the first N events.
    #[arg(long)]
    max_events: Option<usize>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    match measure(args) {
        Ok(Outcome::Report(report)) => {
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Outcome::Rejected { name, reason }) => {
            eprintln!("error: pattern {name:?} rejected: InvalidEventPatternException: {reason}");
            Ok(ExitCode::from(3))
        }
        // The contract: I/O and JSON errors exit 1 (usage errors exit 2 through clap).
        Err(error) => {
            eprintln!("error: {error:#}");
            Ok(ExitCode::from(1))
        }
    }
}

enum Outcome {
    Report(Value),
    Rejected { name: String, reason: String },
}

fn measure(args: &Args) -> anyhow::Result<Outcome> {
    let patterns_text = input::read("--patterns", &args.patterns)?;
    let patterns: Map<String, Value> = serde_json::from_str(&patterns_text).with_context(|| {
        format!(
            "{} is not a JSON object of patterns",
            args.patterns.display()
        )
    })?;
    let compile_started = Instant::now();
    let mut builder = MatcherBuilder::default();
    let mut names = Vec::with_capacity(patterns.len());
    for (name, pattern) in &patterns {
        match Pattern::from_json(pattern) {
            Ok(pattern) => builder.add(names.len(), pattern),
            Err(error) => {
                return Ok(Outcome::Rejected {
                    name: name.clone(),
                    reason: error.aws_message(),
                });
            }
        };
        names.push(name.as_str());
    }
    let matcher = builder.build();
    let compile_seconds = compile_started.elapsed().as_secs_f64();

    let events_text = input::read("--events", &args.events)?;
    let events: Vec<&str> = input::json_lines(&events_text)
        .map(|(_, line)| line)
        .take(args.max_events.unwrap_or(usize::MAX))
        .collect();
    let event_bytes: usize = events.iter().map(|event| event.len()).sum();
    eprintln!(
        "bench-patterns: {} patterns compiled in {compile_seconds:.3}s; {} events, {event_bytes} bytes",
        names.len(),
        events.len()
    );

    let mut scratch = Scratch::default();
    let mut found = Vec::new();
    let timed = args.passes.run("bench-patterns", events.len(), || {
        let mut counts = Counts {
            per_pattern: vec![0; names.len()],
            matches_total: 0,
            events_matched: 0,
        };
        for (event_idx, event) in events.iter().enumerate() {
            matcher
                .matches_with(event, &mut scratch, &mut found)
                .with_context(|| format!("event {} of {}", event_idx + 1, args.events.display()))?;
            counts.matches_total += found.len() as u64;
            counts.events_matched += u64::from(!found.is_empty());
            for &pattern_idx in &found {
                counts.per_pattern[*matcher.id(pattern_idx)] += 1;
            }
        }
        Ok(counts)
    })?;
    let median = timed.median();
    let counts = timed.counts;
    let per_pattern: Map<String, Value> = names
        .iter()
        .zip(&counts.per_pattern)
        .map(|(name, n)| ((*name).to_owned(), json!(n)))
        .collect();
    Ok(Outcome::Report(json!({
        "engine": "meterwatch",
        "version": env!("CARGO_PKG_VERSION"),
        "patterns": names.len(),
        "events": events.len(),
        "event_bytes": event_bytes,
        "compile_seconds": compile_seconds,
        "warmup_passes": args.passes.warmup_passes,
        "pass_seconds": timed.seconds,
        "median_events_per_sec": events.len() as f64 / median,
        "median_mb_per_sec": event_bytes as f64 / 1e6 / median,
        "matches_total": counts.matches_total,
        "events_matched": counts.events_matched,
        "per_pattern": per_pattern,
    })))
}

#[derive(Debug, PartialEq)]
struct Counts {
    per_pattern: Vec<u64>,
    matches_total: u64,
    events_matched: u64,
}
