//! `meterwatch check`: validates rule files, reporting every problem at once.

use crate::rules::{self, RuleSet};
use std::path::PathBuf;
use std::process::ExitCode;

/// Checks rule files: exit 0 when every file is valid, 1 with every problem otherwise.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rule files, or directories whose `*.toml` files are read.
    #[arg(default_value = "rules")]
    paths: Vec<PathBuf>,
    /// Check a daemon config file instead (keys, ranges, ARNs and URLs), and the rules it
    /// names: as `run` would run it, with the same environment variables and flags applied.
    #[arg(long, conflicts_with = "paths")]
    config: Option<PathBuf>,
    /// `run`'s overrides, applied with `--config` (ignored without it).
    #[command(flatten, next_help_heading = "With --config, as for run")]
    overrides: super::run::OverrideArgs,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.config {
        return super::run::check_config(path, &args.overrides);
    }
    match RuleSet::load(&args.paths) {
        Ok(rule_set) => {
            let enabled = rule_set.rules().iter().filter(|rule| rule.enabled).count();
            let files = rules::rule_files(&args.paths).map_or(0, |files| files.len());
            println!(
                "ok: {} rules ({enabled} enabled) and {} lists in {} files",
                rule_set.len(),
                rule_set.lists().len(),
                files,
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{error}");
            Ok(ExitCode::from(1))
        }
    }
}
