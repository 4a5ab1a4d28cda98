//! `meterwatch bench-eval`: what rule evaluation adds to pattern matching. It times `eval`'s
//! work on each body (decode, the matching pass, conditions, alerts and their JSON) and the
//! matching alone of the same rules' patterns. Both run on one thread over the same
//! in-memory bodies and are timed as `bench-patterns` times: warm-up passes, then the
//! median of timed ones. Neither timed part reads a file or writes to a terminal.

use super::bench_patterns::median;
use super::eval::write_alerts;
use crate::input;
use crate::rules::{BodyError, RuleSet};
use anyhow::{Context, bail};
use meterwatch_pattern::{Matcher, MatcherBuilder, Pattern, Scratch};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Measures `eval` beside the matching alone of the same rules' patterns, on one thread;
/// prints one JSON line.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rule files or directories.
    #[arg(long, default_value = "rules", num_args = 1..)]
    rules: Vec<PathBuf>,
    /// Message bodies, one JSON document a line (e.g. from ../shared/bench/gen_metering.py).
    #[arg(long)]
    events: PathBuf,
    /// Timed passes of each; the medians are reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    passes: u32,
    /// Untimed passes of each first.
    #[arg(long, default_value_t = 1)]
    warmup_passes: u32,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let rule_set = match super::load_rules(&args.rules) {
        Ok(rule_set) => rule_set,
        Err(code) => return Ok(code),
    };
    let text = input::read("events", &args.events)?;
    let bodies: Vec<&str> = input::json_lines(&text).map(|(_, line)| line).collect();
    if bodies.is_empty() {
        bail!("{} holds no message bodies", args.events.display());
    }

    let matcher = judged_patterns(&rule_set)?;
    let mut scratch = Scratch::default();
    let mut found = Vec::new();
    let matching = timed(args, "matching", || {
        let mut matches = 0;
        for body in &bodies {
            // A body that is no JSON object matches nothing (eval's decoder rejects it).
            if matcher.matches_with(body, &mut scratch, &mut found).is_ok() {
                matches += found.len();
            }
        }
        Ok(Counts {
            matches,
            ..Counts::default()
        })
    })?;

    let mut out = Vec::new();
    let evaluation = timed(args, "eval", || {
        let mut counts = Counts::default();
        for body in &bodies {
            // What `eval` would print is written and dropped.
            out.clear();
            match write_alerts(&rule_set, body, &mut out) {
                Ok(n_alerts) => counts.alerts += n_alerts,
                Err(BodyError::Undecodable(_)) => counts.undecodable += 1,
                Err(error) => return Err(error).context("evaluating a body"),
            }
            counts.bytes += out.len();
        }
        Ok(counts)
    })?;

    let per_sec = |seconds: f64| (bodies.len() as f64 / seconds).round();
    let report = serde_json::json!({
        "bodies": bodies.len(),
        "patterns": matcher.len(),
        "passes": args.passes,
        "warmup_passes": args.warmup_passes,
        "matches": matching.counts.matches,
        "alerts": evaluation.counts.alerts,
        "alert_bytes": evaluation.counts.bytes,
        "undecodable": evaluation.counts.undecodable,
        "matching_bodies_per_sec": per_sec(matching.seconds),
        "eval_bodies_per_sec": per_sec(evaluation.seconds),
        "eval_time_vs_matching": evaluation.seconds / matching.seconds,
        "threads": 1,
    });
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// One matcher of the patterns of the rules `eval` judges (enabled, and not absence rules,
/// whose matches are heartbeats for the daemon's state stage): what `bench-patterns` would
/// be given for this rule set.
fn judged_patterns(rule_set: &RuleSet) -> anyhow::Result<Matcher<()>> {
    let mut builder = MatcherBuilder::default();
    for rule in rule_set.rules() {
        if !rule.enabled || rule.is_absence() {
            continue;
        }
        let pattern = Pattern::from_json(&rule.pattern_json)
            .with_context(|| format!("rule {}: its pattern", rule.id))?;
        builder.add((), pattern);
    }
    Ok(builder.build())
}

/// What one pass counted; every timed pass must count the same.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    matches: usize,
    alerts: usize,
    bytes: usize,
    undecodable: usize,
}

/// The median time of the timed passes of `pass`, and what they counted.
struct Timed {
    seconds: f64,
    counts: Counts,
}

fn timed(
    args: &Args,
    label: &str,
    mut pass: impl FnMut() -> anyhow::Result<Counts>,
) -> anyhow::Result<Timed> {
    for _ in 0..args.warmup_passes {
        pass()?;
    }
    let mut seconds = Vec::new();
    let mut counted = None;
    for idx in 0..args.passes {
        let started = Instant::now();
        let counts = pass()?;
        let elapsed = started.elapsed().as_secs_f64();
        eprintln!("bench-eval: {label} pass {}: {elapsed:.3}s", idx + 1);
        if *counted.get_or_insert(counts) != counts {
            bail!(
                "{label} pass {} counted differently from the first",
                idx + 1
            );
        }
        seconds.push(elapsed);
    }
    Ok(Timed {
        seconds: median(&seconds),
        counts: counted.expect("at least one timed pass"),
    })
}
