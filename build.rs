//! Names the git revision the binary is built from (`--version`, the start-up log) in
//! `METERWATCH_GIT_REVISION`: taken from the environment when set (the container build has no
//! `.git`: `docker build --build-arg METERWATCH_GIT_REVISION=$(git rev-parse --short=12 HEAD)`),
//! else from `git rev-parse`, else `unknown`.

use std::path::Path;
use std::process::Command;

const VARIABLE: &str = "METERWATCH_GIT_REVISION";

fn main() {
    println!("cargo::rerun-if-env-changed={VARIABLE}");
    let revision = std::env::var(VARIABLE)
        .ok()
        .filter(|revision| !revision.trim().is_empty())
        .or_else(git_revision)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo::rustc-env={VARIABLE}={}", revision.trim());
}

/// `git`'s output, trimmed; `None` without git, outside a repository, or on empty output.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| text.to_owned())
}

/// The checked-out commit, and a rerun when it moves: HEAD changes on a checkout, the branch's
/// ref (loose or packed) on a commit. Paths come from git, so a worktree works too.
fn git_revision() -> Option<String> {
    let revision = git(&["rev-parse", "--short=12", "HEAD"])?;
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name])
            && Path::new(&path).exists()
        {
            println!("cargo::rerun-if-changed={path}");
        }
    }
    Some(revision)
}
