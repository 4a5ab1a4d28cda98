//! What users expect of any command line: help without the benchmarks, a version naming the
//! revision, shell completions and a man page.

use crate::support::{meterwatch, stderr, stdout};

#[test]
fn main_help_leaves_out_the_benchmarks_which_still_run() {
    let help = stdout(&meterwatch(&["--help"]));
    for command in ["run", "check", "eval", "test", "completions", "man"] {
        assert!(
            help.contains(&format!("\n  {command} ")),
            "{command}: {help}"
        );
    }
    for bench in [
        "bench-patterns",
        "bench-eval",
        "bench-pipeline",
        "bench-state",
    ] {
        assert!(
            !help.contains(&format!("\n  {bench} ")),
            "{bench} listed: {help}"
        );
        let output = meterwatch(&[bench, "--help"]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{bench}: {}",
            stderr(&output)
        );
        assert!(stdout(&output).contains("Usage: meterwatch "), "{bench}");
    }
}

#[test]
fn version_names_the_git_revision_built_from() {
    let output = meterwatch(&["--version"]);
    assert_eq!(output.status.code(), Some(0));
    let revision = env!("METERWATCH_GIT_REVISION");
    assert_eq!(
        stdout(&output),
        format!("meterwatch {} ({revision})\n", env!("CARGO_PKG_VERSION"))
    );
    // Built from a git checkout (not the container build), it is the commit checked out.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    if let Some(head) = head.ok().filter(|head| head.status.success()) {
        assert_eq!(revision, String::from_utf8_lossy(&head.stdout).trim());
    }
}

#[test]
fn completions_are_generated_for_bash_zsh_and_fish() {
    for (shell, marker, flag) in [
        ("bash", "complete -F _meterwatch", "--rules"),
        ("zsh", "#compdef meterwatch", "--rules"),
        ("fish", "complete -c meterwatch", "-l rules"),
    ] {
        let output = meterwatch(&["completions", shell]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{shell}: {}",
            stderr(&output)
        );
        let script = stdout(&output);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains(flag), "{shell} completes flags");
    }
}

#[test]
fn the_man_page_is_generated_from_the_command_line() {
    let output = meterwatch(&["man"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let page = stdout(&output);
    assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{page}");
    assert!(page.contains(".TH meterwatch 1"), "{page}");
    assert!(page.contains("meterwatch\\-run(1)"), "{page}");

    let dir = tempfile::tempdir().expect("temp dir");
    let output = meterwatch(&["man", "--out-dir", &dir.path().display().to_string()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    for page in ["meterwatch.1", "meterwatch-run.1", "meterwatch-test.1"] {
        assert!(dir.path().join(page).is_file(), "{page}");
    }
}
