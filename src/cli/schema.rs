//! `meterwatch schema`: the JSON Schemas editors validate meterwatch's TOML files with.

use crate::rules;

use std::process::ExitCode;

/// Prints the JSON Schema of a kind of file (the files under `schema/` are its output).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(value_enum)]
    kind: Kind,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Kind {
    /// Rule files (`rules/*.toml`).
    Rules,
    /// Rule test files (`rules/tests/*.toml`).
    Tests,
    /// The JSON alert document machine subscribers receive.
    Alert,
    /// The daemon's configuration file (`meterwatch.toml`).
    Config,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let schema = match args.kind {
        Kind::Rules => rules::rule_file_schema(),
        Kind::Tests => rules::test_file_schema(),
        Kind::Alert => crate::alert::document_schema(),
        Kind::Config => schemars::schema_for!(crate::config::Config).to_value(),
    };
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(ExitCode::SUCCESS)
}
