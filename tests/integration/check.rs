//! `meterwatch check`: the shipped rules are valid; broken files get precise errors, all at once.

use crate::support::{meterwatch, stderr, stdout};

#[test]
fn shipped_rules_pass() {
    let output = meterwatch(&["check", "rules"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("ok: 9 rules (9 enabled) and 4 lists in 3 files"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn every_problem_is_reported_with_file_line_column_and_rule() {
    let output = meterwatch(&["check", "tests/fixtures/rules/bad"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    insta::assert_snapshot!(stderr(&output));
}

#[test]
fn a_missing_path_is_an_error() {
    let output = meterwatch(&["check", "tests/fixtures/rules/no-such-dir"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no-such-dir"),
        "{}",
        stderr(&output)
    );
}

/// A rule set that alerts on nothing is a mistake: an emptied rules directory, or lists
/// without rules.
#[test]
fn no_rules_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_str().expect("utf-8 temp path");
    let empty = meterwatch(&["check", path]);
    assert_eq!(empty.status.code(), Some(1));
    assert!(
        stderr(&empty).contains("the directory holds no rule files (`*.toml`)"),
        "{}",
        stderr(&empty)
    );

    let lists = meterwatch(&["check", "rules/lists.toml"]);
    assert_eq!(lists.status.code(), Some(1));
    assert!(
        stderr(&lists).contains("rules/lists.toml: error: no rules"),
        "{}",
        stderr(&lists)
    );
}

/// `inhibits` naming no rule, its own rule, an absence rule, or closing a cycle.
#[test]
fn inhibition_mistakes_are_reported_where_they_are_written() {
    let output = meterwatch(&["check", "tests/fixtures/rules/inhibit"]);
    assert_eq!(output.status.code(), Some(1));
    insta::assert_snapshot!(stderr(&output));
}
