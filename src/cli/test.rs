//! `meterwatch test`: runs rule tests and reports like `cargo test`.

use crate::rules::{RuleSet, cases};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Runs rule tests (`[[test]]` files): one line a case, the differences of each failure, and
/// a closing count; exit 1 when any fails.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Test files, or directories whose `*.toml` files are read. A rules folder (no test
    /// files of its own, a `tests/` folder inside) stands for its `tests/` folder.
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
    let paths = test_paths(&args.paths);
    let loaded = cases::case_files(&paths).and_then(|files| cases::load(&files, &rule_set));
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

/// The test paths to read. `meterwatch test rules` is a common slip for `rules/tests`: a
/// directory that holds no test file but has a `tests/` folder is replaced by that folder,
/// and a rule file given as a test file is named as such (its load error follows).
fn test_paths(paths: &[PathBuf]) -> Vec<PathBuf> {
    paths
        .iter()
        .map(|path| {
            let tests = path.join("tests");
            if path.is_dir() && tests.is_dir() && !holds_tests(path) {
                eprintln!(
                    "note: {} holds rules, not tests: running the tests in {}",
                    path.display(),
                    tests.display()
                );
                return tests;
            }
            if path.is_file() && top_level_key(path, "rule") && !top_level_key(path, "test") {
                eprintln!(
                    "note: {} is a rule file; rule tests are `[[test]]` files, such as those \
                     in rules/tests",
                    path.display()
                );
            }
            path.clone()
        })
        .collect()
}

/// Whether any `*.toml` file of `dir` is a test file (has `[[test]]`).
fn holds_tests(dir: &Path) -> bool {
    cases::case_files(&[dir])
        .unwrap_or_default()
        .iter()
        .any(|file| top_level_key(file, "test"))
}

/// Whether `file` is TOML with the table or array of tables `key` at its top level.
fn top_level_key(file: &Path, key: &str) -> bool {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .is_some_and(|table| table.contains_key(key))
}
