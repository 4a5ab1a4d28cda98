//! `meterwatch bench-eval`: what rule evaluation adds to pattern matching. It times `eval`'s
//! work on each body (decode, the matching pass, conditions, alerts and their JSON) and the
//! matching alone of the same rules' patterns. Both run on one thread over the same
//! in-memory bodies and are timed as `bench-patterns` times: warm-up passes, then the
//! median of timed ones. Neither timed part reads a file or writes to a terminal.

use super::eval::write_alerts;
use super::passes::Passes;
use crate::input;
use crate::rules::{BodyError, RuleSet};
use anyhow::{Context, bail};
use meterwatch_pattern::{Matcher, MatcherBuilder, Pattern, Scratch};
use std::process::ExitCode;

/// Measures `eval` beside the matching alone of the same rules' patterns, on one thread;
/// prints one JSON line.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    input: super::RulesAndBodies,
    #[command(flatten)]
    passes: Passes,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let rule_set = match super::load_rules(&args.input.rules) {
        Ok(rule_set) => rule_set,
        Err(code) => return Ok(code),
    };
    let text = input::read("events", &args.input.events)?;
    let bodies: Vec<&str> = input::json_lines(&text).map(|(_, line)| line).collect();
    if bodies.is_empty() {
        bail!("{} holds no message bodies", args.input.events.display());
    }

    let matcher = judged_patterns(&rule_set)?;
    let mut scratch = Scratch::default();
    let mut found = Vec::new();
    let matching = args.passes.run("bench-eval: matching", bodies.len(), || {
        let mut matches = 0;
        for body in &bodies {
            // A body that is no JSON object matches nothing (eval's decoder rejects it).
            if matcher.matches_with(body, &mut scratch, &mut found).is_ok() {
                matches += found.len();
            }
        }
        Ok(matches)
    })?;

    let mut out = Vec::new();
    let evaluation = args.passes.run("bench-eval: eval", bodies.len(), || {
        let mut counts = Counts::default();
        for body in &bodies {
            // What `eval` would print is written and dropped.
            out.clear();
            match write_alerts(&rule_set, body, &mut out) {
                Ok(tally) => counts.alerts += tally.alerts,
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
        "passes": args.passes.passes,
        "warmup_passes": args.passes.warmup_passes,
        "matches": matching.counts,
        "alerts": evaluation.counts.alerts,
        "alert_bytes": evaluation.counts.bytes,
        "undecodable": evaluation.counts.undecodable,
        "matching_bodies_per_sec": per_sec(matching.median()),
        "eval_bodies_per_sec": per_sec(evaluation.median()),
        "eval_time_vs_matching": evaluation.median() / matching.median(),
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

/// What one `eval` pass counted: what `eval` would have printed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    alerts: usize,
    bytes: usize,
    undecodable: usize,
}
