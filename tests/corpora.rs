//! The corpora beside the project, in `../shared`: the EventBridge conformance corpus and the
//! benchmark data. A clone has nothing beside it, so the tests and benchmarks that read them
//! skip when `../shared` is absent, each saying so by name on stderr (past the test harness's
//! capture) and, when `METERWATCH_SKIPPED_LOG` names a file, adding its name there for
//! `scripts/test` to count. Under CI (`CI=true`) an absent `../shared` fails the test: CI always
//! has it.
//!
//! One file, included with `#[path]` by every test and benchmark target that reads `../shared`
//! (both crates'), so there is one answer to "where is it, or skip".

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// `relative` inside `../shared`, or `None` when `../shared` is absent: the caller returns at
/// once, and the skip has been reported. Panics (fails the test) when absent under `CI=true`.
pub fn shared(relative: &str) -> Option<PathBuf> {
    let dir = shared_dir();
    if dir.is_dir() {
        return Some(dir.join(relative));
    }
    let name = test_name();
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{name}: {} is missing, and CI=true: CI must have the shared corpora beside the project",
        dir.display()
    );
    // Straight to the process's stderr: the harness captures only `eprintln!`, and a skip must
    // be seen in a passing run.
    let _ = writeln!(
        std::io::stderr(),
        "skipped {name}: {} is absent",
        dir.display()
    );
    if let Some(log) = std::env::var_os("METERWATCH_SKIPPED_LOG") {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut file| file.write_all(format!("{name}\n").as_bytes()));
        if let Err(error) = appended {
            panic!(
                "cannot record the skip in {}: {error}",
                Path::new(&log).display()
            );
        }
    }
    None
}

/// `shared` beside the workspace root (the directory holding `Cargo.lock`).
fn shared_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .unwrap_or(manifest);
    root.parent().unwrap_or(root).join("shared")
}

/// The running test's name, as the harness names its thread, under its target's name.
fn test_name() -> String {
    let target = env!("CARGO_CRATE_NAME");
    match std::thread::current().name() {
        Some(test) if test != "main" => format!("{target}::{test}"),
        _ => target.to_owned(),
    }
}
