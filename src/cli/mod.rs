//! The command line. Exit codes are a contract for scripts: 0 success, 1 the command ran
//! and found a problem (an invalid pattern, a failing check), 2 it could not run (bad usage,
//! unreadable or malformed input); `bench-patterns` adds 3 for a rejected pattern, `bench-state`
//! 3 for state over its memory budget.

mod bench_eval;
mod bench_patterns;
mod bench_pipeline;
mod bench_state;
mod check;
mod completions;
mod eval;
mod explain;
mod healthcheck;
mod man;
mod passes;
pub(crate) mod preview;
mod run;
mod schema;
mod test;
mod test_event_pattern;

use crate::envelope::{self, DecodeError, Event};
use crate::rules::RuleSet;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `--version`: the package version and the git revision built from (see build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("METERWATCH_GIT_REVISION"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "meterwatch",
    version = VERSION,
    about,
    propagate_version = true,
    after_help = "The benchmarks (bench-patterns, bench-eval, bench-pipeline, bench-state) are \
                  left out of this list; see README.md, \"Performance\", or `meterwatch \
                  bench-patterns --help`."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Check(check::Args),
    Eval(eval::Args),
    Run(run::Args),
    #[command(hide = true)]
    BenchPipeline(bench_pipeline::Args),
    Explain(explain::Args),
    Healthcheck(healthcheck::Args),
    Preview(preview::Args),
    Schema(schema::Args),
    Test(test::Args),
    TestEventPattern(test_event_pattern::Args),
    Completions(completions::Args),
    Man(man::Args),
    // Measurement tools: runnable and documented (README, "Performance"), not everyday commands.
    #[command(hide = true)]
    BenchPatterns(bench_patterns::Args),
    #[command(hide = true)]
    BenchEval(bench_eval::Args),
    #[command(hide = true)]
    BenchState(bench_state::Args),
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Run(args) => run::run(&args),
        Command::BenchPipeline(args) => bench_pipeline::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Healthcheck(args) => healthcheck::run(&args),
        Command::Preview(args) => preview::run(&args),
        Command::Schema(args) => schema::run(&args),
        Command::Test(args) => test::run(&args),
        Command::TestEventPattern(args) => test_event_pattern::run(&args),
        Command::Completions(args) => completions::run(&args),
        Command::Man(args) => man::run(&args),
        Command::BenchPatterns(args) => bench_patterns::run(&args),
        Command::BenchEval(args) => bench_eval::run(&args),
        Command::BenchState(args) => bench_state::run(&args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// The rules and the one event of `explain` and `preview`.
#[derive(Debug, clap::Args)]
struct RulesAndEvent {
    /// Rule files or directories (repeat the flag, or separate them with commas).
    #[arg(long, default_value = "rules", value_delimiter = ',')]
    rules: Vec<PathBuf>,
    /// A message body (any shape the daemon accepts).
    #[arg(long)]
    event: PathBuf,
}

/// The rules and the message bodies of `bench-pipeline` and `bench-eval`.
#[derive(Debug, clap::Args)]
struct RulesAndBodies {
    /// Rule files or directories (repeat the flag, or separate them with commas).
    #[arg(long, default_value = "rules", value_delimiter = ',')]
    rules: Vec<PathBuf>,
    /// JSON-lines file of SQS message bodies (e.g. from ../shared/bench/gen_metering.py).
    #[arg(long)]
    events: PathBuf,
}

/// The rules a command evaluates events with. Invalid rules are printed, every problem, and
/// the command cannot run (exit 2).
fn load_rules(paths: &[PathBuf]) -> Result<RuleSet, ExitCode> {
    RuleSet::load(paths).map_err(|error| {
        eprintln!("{error}");
        ExitCode::from(2)
    })
}

/// The events of the message body in the file at `path` (`--event`).
fn read_events(path: &Path) -> anyhow::Result<Vec<Event>> {
    let name = path.display().to_string();
    let body = crate::input::read("--event", path)?;
    envelope::decode(&body)
        .map_err(|kind| DecodeError::new(name, kind))
        .context("the event cannot be decoded")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
