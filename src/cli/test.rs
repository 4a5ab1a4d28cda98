//! `meterwatch test`: runs rule tests and reports like `cargo test`.

use crate::rules::{RuleSet, cases};
use std::path::PathBuf;
use std::process::ExitCode;

/// Runs rule tests (`[[test]]` files): one line a case, the differences of each failure, and
/// a closing count; exit 1 when any fails.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Test files, or directories whose `*.toml` files are read.
    #[arg(default_value = "rules/tests")]
    paths: Vec<PathBuf>,
    /// The rules under test: files or directories (repeat the flag, or separate them with
    /// commas).
    #[arg(long, default_value = "rules", value_delimiter = ',')]
    rules: Vec<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let rule_set = match RuleSet::load(&args.rules) {
        Ok(rule_set) => rule_set,
        Err(error) => {
            eprintln!("{error}");
            return Ok(ExitCode::from(1));
        }
    };
    let loaded = cases::case_files(&args.paths).and_then(|files| cases::load(&files, &rule_set));
    let cases = match loaded {
        Ok(cases) => cases,
        Err(error) => {
            eprintln!(
                "{}",
                error.to_string().replace("in rule files", "in test files")
            );
            return Ok(ExitCode::from(1));
        }
    };
    println!("running {} tests", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let label = format!("{}: {}", case.file.display(), case.name);
        match case.run(&rule_set) {
            Ok(()) => println!("test {label} ... ok"),
            Err(failure) => {
                println!("test {label} ... FAILED");
                failures.push((label, failure));
            }
        }
    }
    if !failures.is_empty() {
        println!("\nfailures:");
        for (label, failure) in &failures {
            println!("\n---- {label} ----");
            for line in &failure.lines {
                println!("{line}");
            }
        }
    }
    let result = if failures.is_empty() { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {result}. {} passed; {} failed",
        cases.len() - failures.len(),
        failures.len()
    );
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
