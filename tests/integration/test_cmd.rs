//! `meterwatch test`: the shipped rules' tests pass; failures and mistakes are reported
//! precisely.

use crate::support::{meterwatch, stderr, stdout};

#[test]
fn shipped_rule_tests_pass() {
    let output = meterwatch(&["test"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    let summary = stdout(&output);
    assert!(summary.contains("test result: ok."), "{summary}");
    assert!(summary.contains(" 0 failed"), "{summary}");
}

#[test]
fn failures_show_what_differs_and_exit_1() {
    let output = meterwatch(&["test", "tests/fixtures/rule-tests/failing.toml"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.contains("failing.toml: holds ... ok"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn mistakes_in_test_files_are_precise_errors() {
    let output = meterwatch(&[
        "test",
        "tests/fixtures/rule-tests/typo.toml",
        "tests/fixtures/rule-tests/unknown-rule.toml",
    ]);
    assert_eq!(output.status.code(), Some(1));
    insta::assert_snapshot!(stderr(&output));
}

#[test]
fn a_rules_folder_given_as_tests_runs_the_tests_inside_it() {
    let output = meterwatch(&["test", "rules"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        "note: rules holds rules, not tests: running the tests in rules/tests\n"
    );
    assert_eq!(
        stdout(&output),
        stdout(&meterwatch(&["test", "rules/tests"]))
    );
}

#[test]
fn a_rule_file_given_as_tests_is_named_a_rule_file() {
    let output = meterwatch(&["test", "rules/metering.toml"]);
    assert_eq!(output.status.code(), Some(1));
    let errors = stderr(&output);
    assert!(
        errors.starts_with(
            "note: rules/metering.toml is a rule file; rule tests are `[[test]]` files"
        ),
        "{errors}"
    );
}
