//! `meterwatch eval`: message bodies through the rules, alerts out as JSON lines.

use crate::envelope::DecodeError;
use crate::input;
use crate::rules::BodyError;
use anyhow::Context;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Evaluates rules over SQS message bodies and prints one alert per line as JSON.
///
/// Each input holds one JSON document or JSON lines (one body a line); each body may be any
/// shape the daemon accepts (EventBridge envelope, SNS notification, CloudTrail record or
/// `{"Records": [...]}` batch). Exit 0 when every body decoded; 2 when any did not (each
/// such body is named on stderr, and the others are still evaluated).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rule files or directories.
    #[arg(long = "rules", default_value = "rules")]
    rules: Vec<PathBuf>,
    /// Files of message bodies; `-` (the default) reads standard input.
    #[arg(default_value = "-")]
    inputs: Vec<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let rule_set = match super::load_rules(&args.rules) {
        Ok(rule_set) => rule_set,
        Err(code) => return Ok(code),
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut undecodable = 0usize;
    let mut line = Vec::new();
    for path in &args.inputs {
        let (name, text) = if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
            ("<stdin>".to_owned(), text)
        } else {
            let text = input::read("events", path)?;
            (path.display().to_string(), text)
        };
        for (line_number, body) in bodies(&text) {
            let body_name = || match line_number {
                Some(line) => format!("{name}:{line}"),
                None => name.clone(),
            };
            let per_event = match rule_set.body_findings(body, false) {
                Ok(per_event) => per_event,
                Err(BodyError::Undecodable(kind)) => {
                    eprintln!("error: {}", DecodeError::new(body_name(), kind));
                    undecodable += 1;
                    continue;
                }
                Err(error) => return Err(error).context(format!("evaluating {}", body_name())),
            };
            for finding in per_event.into_iter().flat_map(|(_, findings)| findings) {
                line.clear();
                finding.alert.write_json(&mut line);
                line.push(b'\n');
                out.write_all(&line).context("cannot write to stdout")?;
            }
        }
    }
    out.flush().context("cannot write to stdout")?;
    Ok(if undecodable == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// The bodies in one input: the whole text when it is one JSON document, else each
/// non-blank line (JSON lines) with its line number, which names it (`file:line`) only if
/// something is wrong with it.
fn bodies(text: &str) -> Vec<(Option<usize>, &str)> {
    let single = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
    if single || !text.trim_start().starts_with('{') {
        return vec![(None, text)];
    }
    input::json_lines(text)
        .map(|(line, body)| (Some(line), body))
        .collect()
}
