//! Shared helpers: the built binary, and paths to the shared material beside the project.

use std::path::PathBuf;
use std::process::{Command, Output};

/// `../shared` beside the project root, where CI also has it.
pub fn shared(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .join(relative)
}

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
