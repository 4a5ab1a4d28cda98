//! `meterwatch check`: the shipped rules are valid; broken files get precise errors, all at once.

use crate::support::{meterwatch, stderr, stdout};

#[test]
fn shipped_rules_pass() {
    let output = meterwatch(&["check", "rules"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("ok: 8 rules (8 enabled) and 3 lists in 3 files"),
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
