//! Shared helpers: the built binary and its output (`../shared` is [`crate::corpora`]'s).

use std::process::{Command, Output};

/// Runs `meterwatch` with `args`.
pub fn meterwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meterwatch"))
        .args(args)
        .output()
        .expect("the meterwatch binary runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
