//! `meterwatch explain`: why each rule did or did not fire for an event.

use crate::rules::explain::{ConditionTrace, Explanation, Node};
use anyhow::Context;
use std::fmt::Write as _;
use std::process::ExitCode;

/// Shows, for each rule (or one), whether it fired for an event and why: each pattern field
/// with the event's values and the alternative that accepted or none, `$or` branches,
/// `where` conditions and `for_each` elements.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    input: super::RulesAndEvent,
    /// Explain only this rule.
    #[arg(long)]
    rule: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let rule_set = match super::load_rules(&args.input.rules) {
        Ok(rule_set) => rule_set,
        Err(code) => return Ok(code),
    };
    if let Some(id) = &args.rule {
        if !rule_set.rules().iter().any(|rule| &*rule.id == id) {
            eprintln!("error: no rule has the id `{id}`");
            return Ok(ExitCode::from(2));
        }
    }
    let name = args.input.event.display().to_string();
    let events = super::read_events(&args.input.event)?;
    let mut report = Vec::new();
    for (idx, event) in events.iter().enumerate() {
        let explanations = rule_set
            .explain(event, args.rule.as_deref())
            .with_context(|| format!("explaining {name}"))?;
        report.push((idx, event.event_id().map(str::to_owned), explanations));
    }
    if args.json {
        let document: Vec<_> = report
            .iter()
            .map(|(_, event_id, explanations)| {
                serde_json::json!({ "event_id": event_id, "rules": explanations })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        let mut text = String::new();
        for (idx, event_id, explanations) in &report {
            if events.len() > 1 {
                let _ = writeln!(
                    text,
                    "event {} ({})",
                    idx + 1,
                    event_id.as_deref().unwrap_or("no eventID")
                );
            }
            for explanation in explanations {
                render(&mut text, explanation);
            }
        }
        print!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

fn mark(ok: bool) -> &'static str {
    if ok { "✓" } else { "✗" }
}

fn render(out: &mut String, explanation: &Explanation) {
    let verdict = match (explanation.enabled, explanation.alerts) {
        (false, _) => "disabled".to_owned(),
        (true, 0) if explanation.heartbeat => {
            "heartbeat (an absence rule: the daemon alerts when these stop)".to_owned()
        }
        (true, 0) if explanation.pattern_matched => {
            "pattern matched, conditions did not hold".to_owned()
        }
        (true, 0) => "pattern did not match".to_owned(),
        (true, 1) => "FIRES: 1 alert".to_owned(),
        (true, n) => format!("FIRES: {n} alerts"),
    };
    let _ = writeln!(
        out,
        "{} {} ({}) — {verdict}  [{}]",
        mark(explanation.alerts > 0),
        explanation.rule,
        explanation.severity,
        explanation.file
    );
    let _ = writeln!(out, "  match:");
    for node in &explanation.pattern {
        render_node(out, node, 4);
    }
    if explanation.array_elements_differ {
        let _ = writeln!(
            out,
            "    ✗ every field matches on its own, but not within one element of an array"
        );
    }
    if !explanation.conditions.is_empty() {
        let _ = writeln!(out, "  where:");
        for condition in &explanation.conditions {
            render_condition(out, condition, 4);
        }
    }
    if !explanation.for_each.is_empty() {
        let _ = writeln!(out, "  for_each:");
        for element in &explanation.for_each {
            let _ = writeln!(out, "    {} {}", mark(element.accepted), element.path);
        }
    }
}

fn render_node(out: &mut String, node: &Node, indent: usize) {
    let pad = " ".repeat(indent);
    match node {
        Node::Field(field) => {
            let _ = write!(
                out,
                "{pad}{} {} wants {}",
                mark(field.accepted),
                field.path,
                field.wants
            );
            if field.values.is_empty() {
                let _ = writeln!(out, "; the event has no value there");
                return;
            }
            let _ = writeln!(out);
            for value in &field.values {
                match &value.accepted_by {
                    Some(alternative) => {
                        let _ = writeln!(out, "{pad}    {} accepted by {alternative}", value.value);
                    }
                    None => {
                        let _ = writeln!(out, "{pad}    {} accepted by none", value.value);
                    }
                }
            }
        }
        Node::Or { accepted, branches } => {
            let _ = writeln!(out, "{pad}{} $or (one branch must match)", mark(*accepted));
            for (idx, branch) in branches.iter().enumerate() {
                let _ = writeln!(out, "{pad}  {} branch {}", mark(branch.accepted), idx + 1);
                for node in &branch.nodes {
                    render_node(out, node, indent + 4);
                }
            }
        }
    }
}

fn render_condition(out: &mut String, condition: &ConditionTrace, indent: usize) {
    let pad = " ".repeat(indent);
    let values: Vec<String> = condition.values.iter().map(ToString::to_string).collect();
    let values = if values.is_empty() {
        "no value".to_owned()
    } else {
        values.join(", ")
    };
    let group = match (condition.any.as_slice(), condition.all.as_slice()) {
        ([], []) => None,
        (entries, []) => Some(("any", entries)),
        (_, entries) => Some(("all", entries)),
    };
    match group {
        None => {
            let note = condition
                .note
                .as_ref()
                .map(|note| format!(" — {note}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{pad}{} {}: {values}{note}",
                mark(condition.holds),
                condition.condition
            );
        }
        Some((kind, entries)) => {
            let _ = writeln!(out, "{pad}{} {kind} of:", mark(condition.holds));
            for entry in entries {
                render_condition(out, entry, indent + 4);
            }
        }
    }
}
