//! `meterwatch eval`: message bodies through the rules, alerts out as JSON lines.

use crate::envelope::DecodeError;
use crate::input;
use crate::rules::{BodyError, RuleSet};
use anyhow::Context;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Evaluates rules over SQS message bodies and prints one alert per line as JSON.
///
/// Each input holds one JSON document or JSON lines (one body a line); each body may be any
/// shape the daemon accepts (EventBridge envelope, SNS notification, CloudTrail record or
/// `{"Records": [...]}` batch). JSON lines are read and answered a line at a time, so a
/// large export takes little memory and a pipe's alerts come out as its events arrive.
/// Exit 0 when every body decoded; 2 when any did not (each such body is named on stderr,
/// and the others are still evaluated).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rule files or directories (repeat the flag, or separate them with commas).
    #[arg(long, default_value = "rules", value_delimiter = ',')]
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
    // Alerts run to kilobytes each: a larger buffer writes an export's output in an eighth
    // of the calls.
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut summary = input::Summary::default();
    let mut lines = Vec::new();
    for path in &args.inputs {
        let is_stdin = path.as_os_str() == "-";
        let name = if is_stdin {
            "<stdin>".to_owned()
        } else {
            path.display().to_string()
        };
        let reader: Box<dyn BufRead> = if is_stdin {
            Box::new(std::io::stdin().lock())
        } else {
            let file = BufReader::with_capacity(1 << 16, input::open("events", path)?);
            input::decompressed(file).with_context(|| format!("cannot read {name}"))?
        };
        let evaluate = |line_number: Option<usize>, body: &str| -> anyhow::Result<()> {
            let body_name = || match line_number {
                Some(line) => format!("{name}:{line}"),
                None => name.clone(),
            };
            lines.clear();
            match write_alerts(&rule_set, body, &mut lines) {
                Ok(tally) => {
                    for skipped in &tally.skipped {
                        eprintln!("warning: {}: skipped {skipped}", body_name());
                    }
                    summary.events += tally.events;
                    summary.alerts += tally.alerts;
                    summary.skipped += tally.skipped.len();
                }
                Err(BodyError::Undecodable(kind)) => {
                    eprintln!("error: {}", DecodeError::new(body_name(), kind));
                    summary.undecodable += 1;
                    return Ok(());
                }
                Err(error @ BodyError::OverBudget { .. }) => {
                    eprintln!("error: {}: {error}", body_name());
                    summary.undecodable += 1;
                    return Ok(());
                }
                Err(error) => return Err(error).context(format!("evaluating {}", body_name())),
            }
            out.write_all(&lines).context("cannot write to stdout")?;
            // A pipe's alerts are shown as its events arrive, not when a buffer fills.
            if is_stdin {
                out.flush().context("cannot write to stdout")?;
            }
            Ok(())
        };
        for_each_body(&name, reader, evaluate)?;
    }
    out.flush().context("cannot write to stdout")?;
    eprintln!("{}", summary.line(args.inputs.len()));
    Ok(if summary.undecodable == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// What one body gave: how many events and alerts, and the records it skipped.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub events: usize,
    pub alerts: usize,
    pub skipped: Vec<crate::envelope::DecodeErrorKind>,
}

/// Appends the alerts `body` raises to `out`, one JSON document a line, as `eval` prints
/// them; says how many, of how many events.
pub(super) fn write_alerts(
    rule_set: &RuleSet,
    body: &str,
    out: &mut Vec<u8>,
) -> Result<Tally, BodyError> {
    let found = rule_set.body_alerts(body, crate::rules::Budget::default())?;
    let mut tally = Tally {
        events: found.per_event.len(),
        alerts: 0,
        skipped: found.skipped,
    };
    for (_, findings) in found.per_event {
        for finding in findings {
            finding.alert.write_json(out);
            out.push(b'\n');
            tally.alerts += 1;
        }
    }
    Ok(tally)
}

/// Calls `each` with every body of one input and the line it is on (`None` for an input
/// read as one document). An input whose first line is a whole JSON object is JSON lines,
/// read a line at a time: any size of export is evaluated in little memory, and a pipe's
/// lines as they arrive. Any other input is read whole: one document, or JSON lines whose
/// first line is broken (see [`bodies`]).
fn for_each_body(
    name: &str,
    mut reader: impl BufRead,
    mut each: impl FnMut(Option<usize>, &str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let cannot_read = || format!("cannot read {name}");
    let mut lines = Lines {
        keep: true,
        ..Lines::default()
    };
    let first = lines
        .next_non_blank(&mut reader)
        .with_context(cannot_read)?
        // A byte-order mark (PowerShell writes one) is no part of the first body.
        .map(|(number, first)| (number, first.trim_start_matches('\u{feff}')));
    match first {
        Some((number, first)) if first.starts_with('{') && input::is_json(first) => {
            each(Some(number), first)?;
            lines.keep = false;
            while let Some((number, body)) = lines
                .next_non_blank(&mut reader)
                .with_context(cannot_read)?
            {
                each(Some(number), body)?;
            }
        }
        _ => {
            reader
                .read_to_string(&mut lines.kept)
                .with_context(cannot_read)?;
            for (number, body) in input::bodies(&lines.kept) {
                each(number, body)?;
            }
        }
    }
    Ok(())
}

/// An input read a line at a time.
#[derive(Default)]
struct Lines {
    /// The line last read, with its line break.
    line: String,
    /// Its 1-based number.
    number: usize,
    /// Whether to keep what is read in `kept`: until the input is known to be JSON lines,
    /// it may be one document spread over many lines.
    keep: bool,
    kept: String,
}

impl Lines {
    /// The next non-blank line, trimmed, with its number; `None` at the end of the input.
    fn next_non_blank(
        &mut self,
        reader: &mut impl BufRead,
    ) -> std::io::Result<Option<(usize, &str)>> {
        loop {
            if !self.next_line(reader)? {
                return Ok(None);
            }
            if !self.line.trim().is_empty() {
                return Ok(Some((self.number, self.line.trim())));
            }
        }
    }

    /// Reads the next line into `line`; false at the end of the input.
    fn next_line(&mut self, reader: &mut impl BufRead) -> std::io::Result<bool> {
        // The line's buffer is reused, not reallocated, from line to line.
        let mut bytes = std::mem::take(&mut self.line).into_bytes();
        bytes.clear();
        if !read_line(reader, &mut bytes)? {
            return Ok(false);
        }
        self.number += 1;
        self.line = String::from_utf8(bytes).map_err(|error| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("line {}: {}", self.number, error.utf8_error()),
            )
        })?;
        if self.keep {
            self.kept.push_str(&self.line);
        }
        Ok(true)
    }
}

/// Appends the next line (with its `\n`, if any) to `line`; false at the end of the input.
/// `BufRead::read_line` finds the newline with the standard library's portable `memchr`;
/// the memchr crate's vectorised one takes a fifth of the time over 2 KB lines.
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut read_any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            return Ok(read_any);
        }
        read_any = true;
        let (used, done) = match memchr::memchr(b'\n', available) {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        line.extend_from_slice(&available[..used]);
        reader.consume(used);
        if done {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn streamed(text: &str) -> Vec<(Option<usize>, String)> {
        let mut seen = Vec::new();
        for_each_body("test", text.as_bytes(), |number, body| {
            seen.push((number, body.trim().to_owned()));
            Ok(())
        })
        .expect("reading from memory succeeds");
        seen
    }

    fn whole(text: &str) -> Vec<(Option<usize>, String)> {
        input::bodies(text)
            .into_iter()
            .map(|(number, body)| (number, body.trim().to_owned()))
            .collect()
    }

    #[test]
    fn inputs_are_split_as_documents_or_json_lines() {
        let one = r#"{"a": 1}"#;
        assert_eq!(streamed(one), [(Some(1), one.to_owned())]);
        assert_eq!(
            streamed(&format!("\n{one}\n\n{one}\n")),
            [(Some(2), one.to_owned()), (Some(4), one.to_owned())]
        );
        let pretty = "{\n  \"a\": 1\n}\n";
        assert_eq!(streamed(pretty), [(None, pretty.trim().to_owned())]);
        assert_eq!(
            streamed(&format!("{{broken\n{one}\n")),
            [(Some(1), "{broken".to_owned()), (Some(2), one.to_owned())]
        );
        assert_eq!(streamed(""), [(None, String::new())]);
        assert_eq!(streamed("not json\n"), [(None, "not json".to_owned())]);
    }

    proptest! {
        /// Reading a line at a time finds the same bodies, with the same names, as reading
        /// the input whole, except that a one-line document is named by its line too.
        #[test]
        fn streaming_finds_the_bodies_reading_whole_finds(
            lines in prop::collection::vec(
                prop::sample::select(vec![
                    r#"{"a": 1}"#, r#"{"b": [1, {"c": 2}]}"#, "{", "}", "\"a\": 1", "",
                    "  ", "not json", "[1]", "{\"x\":", "1}",
                ]),
                0..6,
            ),
            crlf in any::<bool>(),
            final_newline in any::<bool>(),
        ) {
            let mut text = lines.join(if crlf { "\r\n" } else { "\n" });
            if final_newline {
                text.push('\n');
            }
            let mut expected = whole(&text);
            if let [(number @ None, body)] = expected.as_mut_slice()
                && !body.contains('\n')
                && body.starts_with('{')
                && input::is_json(body)
            {
                *number = text.lines().position(|line| !line.trim().is_empty()).map(|idx| idx + 1);
            }
            prop_assert_eq!(streamed(&text), expected);
        }
    }
}
