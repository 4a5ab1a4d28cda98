//! EventBridge's matching rules, one behaviour per test, each case through `check` (pattern
//! text, event text, whether AWS matches) or `check_invalid` (pattern text, AWS's reason).
//!
//! `check` holds both the compiled matcher and the brute-force oracle (`reference`) to the
//! expected answer, so that the property tests compare the matcher with something right.
//! The metering cases run on the seed events, read in place from `tests/fixtures/events`.

use meterwatch_pattern::{ErrorKind, MatcherBuilder, Pattern, reference};
use serde_json::Value;
use std::path::PathBuf;

/// Asserts whether `event` matches `pattern`, through the matcher and through the oracle.
fn check(pattern: &str, event: &str, expected: bool) {
    let parsed = Pattern::parse(pattern)
        .unwrap_or_else(|e| panic!("pattern should be valid: {pattern}\n  error: {e}"));
    let mut builder = MatcherBuilder::default();
    builder.add("rule", parsed.clone());
    let matcher = builder.build();
    let found = matcher
        .matches(event)
        .unwrap_or_else(|e| panic!("event should be accepted: {event}\n  error: {e}"));
    assert_eq!(
        !found.is_empty(),
        expected,
        "matcher: pattern {pattern}\n  event {event}"
    );
    let event_json: Value = serde_json::from_str(event).expect("test events are JSON");
    assert_eq!(
        reference::matches(&parsed, &event_json),
        expected,
        "reference: pattern {pattern}\n  event {event}"
    );
}

/// Asserts that `pattern` is rejected as an invalid event pattern, for `reason` (AWS's words,
/// after "Event pattern is not valid. Reason: ").
fn check_invalid(pattern: &str, reason: &str) {
    let error =
        Pattern::parse(pattern).expect_err(&format!("pattern should be rejected: {pattern}"));
    assert_ne!(
        error.kind(),
        ErrorKind::Syntax,
        "{pattern} is JSON, so it is not a syntax error"
    );
    assert_eq!(error.reason(), reason, "reason for {pattern}");
    assert_eq!(
        error.aws_message(),
        format!("Event pattern is not valid. Reason: {reason}")
    );
}

/// The text of a seed event as EventBridge delivers it (`NAME.eventbridge.json`).
fn seed(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/events/envelopes")
        .join(format!("{name}.eventbridge.json"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("seed event {} is readable: {e}", path.display()))
}

const BATCH: &str = "batchmeterusage";
const AMI: &str = "meterusage-ami";
const EKS: &str = "meterusage-eks";
const REGISTER: &str = "registerusage-eks";
const SEEDS: [&str; 4] = [BATCH, AMI, EKS, REGISTER];

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

#[test]
fn null_and_empty_string_are_different_values() {
    check(r#"{"a": [null]}"#, r#"{"a": null}"#, true);
    check(r#"{"a": [null]}"#, r#"{"a": ""}"#, false);
    check(r#"{"a": [null]}"#, r#"{"a": "null"}"#, false);
    check(r#"{"a": [""]}"#, r#"{"a": ""}"#, true);
    check(r#"{"a": [""]}"#, r#"{"a": null}"#, false);
    check(r#"{"a": [null]}"#, r#"{"b": null}"#, false);
}

#[test]
fn exact_values_keep_their_json_type() {
    check(r#"{"a": [5]}"#, r#"{"a": "5"}"#, false);
    check(r#"{"a": ["5"]}"#, r#"{"a": 5}"#, false);
    check(r#"{"a": [true]}"#, r#"{"a": "true"}"#, false);
    check(r#"{"a": ["true"]}"#, r#"{"a": true}"#, false);
    check(r#"{"a": [false]}"#, r#"{"a": false}"#, true);
    check(r#"{"a": [false]}"#, r#"{"a": true}"#, false);
    check(r#"{"a": ["X"]}"#, r#"{"a": "x"}"#, false);
}

#[test]
fn numbers_compare_by_value_not_spelling() {
    check(r#"{"a": [300]}"#, r#"{"a": 300.0}"#, true);
    check(r#"{"a": [300.0]}"#, r#"{"a": 300}"#, true);
    check(r#"{"a": [3e2]}"#, r#"{"a": 300}"#, true);
    check(r#"{"a": [300]}"#, r#"{"a": 3.0e2}"#, true);
    check(r#"{"a": [1.5]}"#, r#"{"a": 1.50}"#, true);
    check(r#"{"a": [0]}"#, r#"{"a": -0.0}"#, true);
    check(r#"{"a": [300]}"#, r#"{"a": 300.5}"#, false);
    check(
        r#"{"a": [{"numeric": ["=", 300]}]}"#,
        r#"{"a": 300.0}"#,
        true,
    );
    check(
        r#"{"a": [{"numeric": ["=", 3.018e2]}]}"#,
        r#"{"a": 301.8}"#,
        true,
    );
}

#[test]
fn integers_no_double_holds_exactly_compare_by_text() {
    // 2^53 + 1 rounds to 2^53 as a double; AWS compares such integers by their text.
    check(
        r#"{"a": [9007199254740993]}"#,
        r#"{"a": 9007199254740993}"#,
        true,
    );
    check(
        r#"{"a": [9007199254740993]}"#,
        r#"{"a": 9007199254740992}"#,
        false,
    );
    check(
        r#"{"a": [9007199254740992]}"#,
        r#"{"a": 9007199254740993}"#,
        false,
    );
    check(
        r#"{"a": [12345678901234567890]}"#,
        r#"{"a": 12345678901234567890}"#,
        true,
    );
    check(
        r#"{"a": [12345678901234567890]}"#,
        r#"{"a": 12345678901234567891}"#,
        false,
    );
    check(
        r#"{"a": [-9007199254740993]}"#,
        r#"{"a": -9007199254740993}"#,
        true,
    );
    check(
        r#"{"a": [-9007199254740993]}"#,
        r#"{"a": -9007199254740992}"#,
        false,
    );
    // The text is not a number to `numeric`, and not a string either.
    check(
        r#"{"a": [{"numeric": [">", 0]}]}"#,
        r#"{"a": 9007199254740993}"#,
        false,
    );
    check(
        r#"{"a": ["9007199254740993"]}"#,
        r#"{"a": 9007199254740993}"#,
        false,
    );
    check(
        r#"{"a": [{"anything-but": [9007199254740993]}]}"#,
        r#"{"a": 9007199254740993}"#,
        false,
    );
    check(
        r#"{"a": [{"anything-but": [1]}]}"#,
        r#"{"a": 9007199254740993}"#,
        true,
    );
    check(
        r#"{"a": [{"exists": true}]}"#,
        r#"{"a": 9007199254740993}"#,
        true,
    );
    // Large integers a double does hold exactly (shortest form = the integer) stay numbers.
    check(
        r#"{"a": [9007199254740992]}"#,
        r#"{"a": 9007199254740992.0}"#,
        true,
    );
    check(r#"{"a": [1e19]}"#, r#"{"a": 10000000000000000000}"#, true);
    check(
        r#"{"a": [{"numeric": [">", 9e18]}]}"#,
        r#"{"a": 10000000000000000000}"#,
        true,
    );
}

#[test]
fn numeric_never_matches_numeric_strings() {
    check(
        r#"{"a": [{"numeric": [">", 100]}]}"#,
        r#"{"a": "300"}"#,
        false,
    );
    check(r#"{"a": [{"numeric": [">", 100]}]}"#, r#"{"a": 300}"#, true);
    check(r#"{"a": [{"numeric": ["=", 5]}]}"#, r#"{"a": "5"}"#, false);
    check(
        r#"{"a": [{"numeric": ["<", 10]}]}"#,
        r#"{"a": null}"#,
        false,
    );
    check(
        r#"{"a": [{"numeric": ["<", 10]}]}"#,
        r#"{"a": false}"#,
        false,
    );
}

#[test]
fn numeric_ranges_respect_inclusive_and_exclusive_bounds() {
    let range = r#"{"a": [{"numeric": [">", 0, "<=", 5]}]}"#;
    check(range, r#"{"a": 0}"#, false);
    check(range, r#"{"a": 0.000001}"#, true);
    check(range, r#"{"a": 5}"#, true);
    check(range, r#"{"a": 5.000001}"#, false);
    check(
        r#"{"a": [{"numeric": [">=", -1.5]}]}"#,
        r#"{"a": -1.5}"#,
        true,
    );
    check(r#"{"a": [{"numeric": ["<", 0]}]}"#, r#"{"a": -0.0}"#, false);
}

#[test]
fn numeric_matches_any_element_of_an_array() {
    check(
        r#"{"a": [{"numeric": [">", 0, "<", 10]}]}"#,
        r#"{"a": [100, 5, 200]}"#,
        true,
    );
    check(
        r#"{"a": [{"numeric": [">", 0, "<", 10]}]}"#,
        r#"{"a": [100, "5", 200]}"#,
        false,
    );
}

// ---------------------------------------------------------------------------------------------
// exists
// ---------------------------------------------------------------------------------------------

#[test]
fn exists_false_matches_a_missing_field() {
    check(r#"{"a": [{"exists": false}]}"#, r#"{"b": 1}"#, true);
    check(r#"{"a": [{"exists": false}]}"#, r#"{}"#, true);
    check(
        r#"{"a": {"b": [{"exists": false}]}}"#,
        r#"{"a": "x"}"#,
        true,
    );
    // An empty array holds no value, so the field is as good as missing.
    check(r#"{"a": [{"exists": false}]}"#, r#"{"a": []}"#, true);
}

#[test]
fn exists_false_does_not_match_a_present_value() {
    check(r#"{"a": [{"exists": false}]}"#, r#"{"a": null}"#, false);
    check(r#"{"a": [{"exists": false}]}"#, r#"{"a": ""}"#, false);
    check(r#"{"a": [{"exists": false}]}"#, r#"{"a": 0}"#, false);
    check(r#"{"a": [{"exists": false}]}"#, r#"{"a": false}"#, false);
    check(r#"{"a": [{"exists": false}]}"#, r#"{"a": ["x"]}"#, false);
}

#[test]
fn exists_looks_at_leaves_not_objects() {
    // An object is not a leaf: `a` has no value of its own here, only `a.b` does.
    check(r#"{"a": [{"exists": true}]}"#, r#"{"a": {"b": 1}}"#, false);
    check(r#"{"a": [{"exists": false}]}"#, r#"{"a": {"b": 1}}"#, true);
    check(
        r#"{"a": {"b": [{"exists": true}]}}"#,
        r#"{"a": {"b": 1}}"#,
        true,
    );
}

#[test]
fn exists_true_matches_any_present_leaf() {
    for value in [r#""""#, r#""x""#, "0", "false", r#"["x"]"#] {
        check(
            r#"{"a": [{"exists": true}]}"#,
            &format!(r#"{{"a": {value}}}"#),
            true,
        );
    }
    check(r#"{"a": [{"exists": true}]}"#, r#"{"b": 1}"#, false);
}

#[test]
fn exists_false_with_other_alternatives_matches_absent_or_matching() {
    let pattern = r#"{"a": [{"anything-but": ["roses"]}, {"exists": false}]}"#;
    check(pattern, r#"{"b": 1}"#, true);
    check(pattern, r#"{"a": "tulips"}"#, true);
    check(pattern, r#"{"a": "roses"}"#, false);
}

// ---------------------------------------------------------------------------------------------
// Empty arrays
// ---------------------------------------------------------------------------------------------

#[test]
fn empty_array_never_matches_a_leaf() {
    for leaf in [
        r#"[{"exists": true}]"#,
        r#"[null]"#,
        r#"[""]"#,
        r#"[{"prefix": ""}]"#,
        r#"[{"wildcard": "*"}]"#,
        r#"[{"anything-but": "x"}]"#,
        r#"[{"anything-but": {"prefix": "x"}}]"#,
        r#"[{"numeric": [">", 0]}]"#,
    ] {
        check(&format!(r#"{{"a": {leaf}}}"#), r#"{"a": []}"#, false);
        check(&format!(r#"{{"a": {leaf}}}"#), r#"{"a": [[]]}"#, false);
    }
}

#[test]
fn empty_arrays_inside_array_elements_hold_no_value() {
    check(
        r#"{"a": {"b": ["x"]}}"#,
        r#"{"a": [{"b": []}, {"b": "y"}]}"#,
        false,
    );
    check(
        r#"{"a": {"b": ["x"]}}"#,
        r#"{"a": [{"b": []}, {"b": "x"}]}"#,
        true,
    );
}

// ---------------------------------------------------------------------------------------------
// anything-but
// ---------------------------------------------------------------------------------------------

#[test]
fn anything_but_never_matches_a_missing_field() {
    for operand in [
        r#""x""#,
        "5",
        r#"["x", "y"]"#,
        "[1, 2]",
        r#"{"prefix": "x"}"#,
        r#"{"suffix": "x"}"#,
        r#"{"wildcard": "x*"}"#,
        r#"{"equals-ignore-case": "x"}"#,
    ] {
        let pattern = format!(r#"{{"a": [{{"anything-but": {operand}}}]}}"#);
        check(&pattern, r#"{"b": "y"}"#, false);
        check(&pattern, r#"{}"#, false);
    }
}

#[test]
fn anything_but_matches_null_and_values_of_other_types() {
    for operand in [
        r#""x""#,
        r#"["x", "y"]"#,
        r#"{"prefix": "x"}"#,
        r#"{"suffix": "x"}"#,
        r#"{"wildcard": "x*"}"#,
        r#"{"equals-ignore-case": "x"}"#,
    ] {
        let pattern = format!(r#"{{"a": [{{"anything-but": {operand}}}]}}"#);
        check(&pattern, r#"{"a": null}"#, true);
        check(&pattern, r#"{"a": 12}"#, true);
        check(&pattern, r#"{"a": "x"}"#, false);
    }
    check(r#"{"a": [{"anything-but": 123}]}"#, r#"{"a": "123"}"#, true);
    check(r#"{"a": [{"anything-but": 123}]}"#, r#"{"a": null}"#, true);
}

#[test]
fn anything_but_excludes_numbers_by_value() {
    check(
        r#"{"a": [{"anything-but": [100, 300]}]}"#,
        r#"{"a": 300.0}"#,
        false,
    );
    check(
        r#"{"a": [{"anything-but": [100, 300]}]}"#,
        r#"{"a": 301}"#,
        true,
    );
    check(r#"{"a": [{"anything-but": 0}]}"#, r#"{"a": 789}"#, true);
}

#[test]
fn anything_but_text_forms_exclude_what_they_describe() {
    check(
        r#"{"a": [{"anything-but": {"prefix": "init"}}]}"#,
        r#"{"a": "init-1"}"#,
        false,
    );
    check(
        r#"{"a": [{"anything-but": {"prefix": "init"}}]}"#,
        r#"{"a": "post-init"}"#,
        true,
    );
    check(
        r#"{"a": [{"anything-but": {"suffix": ".txt"}}]}"#,
        r#"{"a": "f.txt"}"#,
        false,
    );
    check(
        r#"{"a": [{"anything-but": {"suffix": ".txt"}}]}"#,
        r#"{"a": "f.txt.bak"}"#,
        true,
    );
    check(
        r#"{"a": [{"anything-but": {"wildcard": ["*/init/*", "*/dir/*"]}}]}"#,
        r#"{"a": "dir/init/dir"}"#,
        false,
    );
    check(
        r#"{"a": [{"anything-but": {"wildcard": ["*/init/*", "*/dir/*"]}}]}"#,
        r#"{"a": "dir/post/dir"}"#,
        true,
    );
    check(
        r#"{"a": [{"anything-but": {"equals-ignore-case": ["Stopped", "x"]}}]}"#,
        r#"{"a": "STOPPED"}"#,
        false,
    );
}

#[test]
fn anything_but_matches_when_any_array_element_differs() {
    check(
        r#"{"a": [{"anything-but": "banned"}]}"#,
        r#"{"a": ["banned", "ok"]}"#,
        true,
    );
    check(
        r#"{"a": [{"anything-but": "banned"}]}"#,
        r#"{"a": ["banned"]}"#,
        false,
    );
}

// ---------------------------------------------------------------------------------------------
// Text operators
// ---------------------------------------------------------------------------------------------

#[test]
fn text_operators_only_match_strings() {
    for operator in [
        r#"{"prefix": "1"}"#,
        r#"{"suffix": "1"}"#,
        r#"{"equals-ignore-case": "1"}"#,
        r#"{"wildcard": "1*"}"#,
        r#"{"prefix": ""}"#,
        r#"{"wildcard": "*"}"#,
    ] {
        let pattern = format!(r#"{{"a": [{operator}]}}"#);
        check(&pattern, r#"{"a": 1}"#, false);
        check(&pattern, r#"{"a": 10}"#, false);
        check(&pattern, r#"{"a": null}"#, false);
        check(&pattern, r#"{"a": "1"}"#, true);
    }
}

#[test]
fn empty_prefix_and_suffix_match_every_string() {
    check(r#"{"a": [{"prefix": ""}]}"#, r#"{"a": ""}"#, true);
    check(r#"{"a": [{"suffix": ""}]}"#, r#"{"a": "anything"}"#, true);
}

#[test]
fn prefix_and_suffix_are_case_sensitive_unless_asked() {
    check(
        r#"{"a": [{"suffix": ".PNG"}]}"#,
        r#"{"a": "image.png"}"#,
        false,
    );
    check(
        r#"{"a": [{"suffix": {"equals-ignore-case": ".PNG"}}]}"#,
        r#"{"a": "image.png"}"#,
        true,
    );
    check(
        r#"{"a": [{"prefix": {"equals-ignore-case": "EventB"}}]}"#,
        r#"{"a": "EvEnTbridge"}"#,
        true,
    );
    check(
        r#"{"a": [{"prefix": {"equals-ignore-case": "EventB"}}]}"#,
        r#"{"a": "Event"}"#,
        false,
    );
}

#[test]
fn equals_ignore_case_folds_non_ascii_letters() {
    check(
        r#"{"a": [{"equals-ignore-case": "ÉTÉ"}]}"#,
        r#"{"a": "été"}"#,
        true,
    );
    check(
        r#"{"a": [{"equals-ignore-case": "été"}]}"#,
        r#"{"a": "ÉTÉ"}"#,
        true,
    );
    check(
        r#"{"a": [{"equals-ignore-case": "ПРИВЕТ"}]}"#,
        r#"{"a": "привет"}"#,
        true,
    );
    check(
        r#"{"a": [{"equals-ignore-case": "ÉTÉ"}]}"#,
        r#"{"a": "ete"}"#,
        false,
    );
    check(
        r#"{"a": [{"equals-ignore-case": "ÉTÉ"}]}"#,
        r#"{"a": "été!"}"#,
        false,
    );
    check(
        r#"{"a": [{"prefix": {"equals-ignore-case": "ÉT"}}]}"#,
        r#"{"a": "été"}"#,
        true,
    );
    check(
        r#"{"a": [{"suffix": {"equals-ignore-case": "TÉ"}}]}"#,
        r#"{"a": "été"}"#,
        true,
    );
    check(
        r#"{"a": [{"anything-but": {"equals-ignore-case": "ÉTÉ"}}]}"#,
        r#"{"a": "été"}"#,
        false,
    );
    // Case-sensitive operators keep accents and case apart.
    check(r#"{"a": [{"prefix": "É"}]}"#, r#"{"a": "été"}"#, false);
    check(r#"{"a": ["ÉTÉ"]}"#, r#"{"a": "été"}"#, false);
}

#[test]
fn escaped_event_strings_are_compared_after_decoding() {
    check(
        r#"{"a": [{"equals-ignore-case": "ÉTÉ"}]}"#,
        r#"{"a": "\u00e9t\u00c9"}"#,
        true,
    );
    check(r#"{"a": ["a\"b"]}"#, r#"{"a": "a\u0022b"}"#, true);
}

#[test]
fn wildcard_star_matches_any_run_of_characters() {
    check(r#"{"a": [{"wildcard": "*"}]}"#, r#"{"a": ""}"#, true);
    check(r#"{"a": [{"wildcard": "a*c"}]}"#, r#"{"a": "ac"}"#, true);
    check(r#"{"a": [{"wildcard": "a*c"}]}"#, r#"{"a": "abbbc"}"#, true);
    check(r#"{"a": [{"wildcard": "a*c"}]}"#, r#"{"a": "abcd"}"#, false);
    check(r#"{"a": [{"wildcard": "a*a"}]}"#, r#"{"a": "a"}"#, false);
    check(r#"{"a": [{"wildcard": ""}]}"#, r#"{"a": "x"}"#, false);
    check(r#"{"a": [{"wildcard": ""}]}"#, r#"{"a": ""}"#, true);
    check(
        r#"{"a": [{"wildcard": "/Users/*/doc.txt"}]}"#,
        r#"{"a": "/Users/u/dir/dir/doc.txt"}"#,
        true,
    );
}

#[test]
fn wildcard_escapes_match_a_literal_star_or_backslash() {
    // Pattern text `a\*b` (JSON "a\\*b"): the star is literal.
    check(r#"{"a": [{"wildcard": "a\\*b"}]}"#, r#"{"a": "a*b"}"#, true);
    check(
        r#"{"a": [{"wildcard": "a\\*b"}]}"#,
        r#"{"a": "axb"}"#,
        false,
    );
    check(r#"{"a": [{"wildcard": "*\\*"}]}"#, r#"{"a": "x*"}"#, true);
    check(r#"{"a": [{"wildcard": "*\\*"}]}"#, r#"{"a": "x"}"#, false);
    // Pattern text `a\\b`: one literal backslash.
    check(
        r#"{"a": [{"wildcard": "a\\\\b"}]}"#,
        r#"{"a": "a\\b"}"#,
        true,
    );
    check(
        r#"{"a": [{"wildcard": "a\\\\*"}]}"#,
        r#"{"a": "a\\xyz"}"#,
        true,
    );
    check(
        r#"{"a": [{"wildcard": "a\\\\*"}]}"#,
        r#"{"a": "axyz"}"#,
        false,
    );
}

#[test]
fn exact_values_with_wildcard_characters_are_literal() {
    check(r#"{"a": ["*"]}"#, r#"{"a": "*"}"#, true);
    check(r#"{"a": ["*"]}"#, r#"{"a": "x"}"#, false);
    check(r#"{"a": ["\\"]}"#, r#"{"a": "\\"}"#, true);
}

// ---------------------------------------------------------------------------------------------
// cidr
// ---------------------------------------------------------------------------------------------

#[test]
fn cidr_matches_addresses_inside_the_network() {
    check(
        r#"{"a": [{"cidr": "10.0.0.0/24"}]}"#,
        r#"{"a": "10.0.0.255"}"#,
        true,
    );
    check(
        r#"{"a": [{"cidr": "10.0.0.0/24"}]}"#,
        r#"{"a": "10.0.1.0"}"#,
        false,
    );
    check(
        r#"{"a": [{"cidr": "10.0.0.0/24"}]}"#,
        r#"{"a": "10.0.0.256"}"#,
        false,
    );
    check(
        r#"{"a": [{"cidr": "2001:db8:1234:1a00::/64"}]}"#,
        r#"{"a": "2001:0db8:1234:1a00:0000:0000:0000:0001"}"#,
        true,
    );
    check(
        r#"{"a": [{"cidr": "2001:db8:1234:1a00::/64"}]}"#,
        r#"{"a": "2001:db8:1234:1a01::1"}"#,
        false,
    );
}

#[test]
fn cidr_never_matches_non_strings_or_non_addresses() {
    for event in [
        r#"{"a": 10}"#,
        r#"{"a": 167772161}"#,
        r#"{"a": null}"#,
        r#"{"a": true}"#,
        r#"{"a": "10.0.0.1/32"}"#,
        r#"{"a": "host.example"}"#,
        r#"{"a": []}"#,
    ] {
        check(r#"{"a": [{"cidr": "10.0.0.0/8"}]}"#, event, false);
    }
}

// ---------------------------------------------------------------------------------------------
// Structure: arrays, dotted keys, $or
// ---------------------------------------------------------------------------------------------

#[test]
fn leaf_matches_when_any_event_array_element_matches() {
    check(r#"{"a": ["x"]}"#, r#"{"a": ["y", "x"]}"#, true);
    check(r#"{"a": ["x"]}"#, r#"{"a": ["y", "z"]}"#, false);
    check(r#"{"a": ["x"]}"#, r#"{"a": [["y"], ["x"]]}"#, true);
    check(r#"{"a": ["z", "x"]}"#, r#"{"a": ["x"]}"#, true);
}

#[test]
fn fields_of_objects_in_an_array_match_within_one_element() {
    let pattern = r#"{"d": {"name": ["alice"], "status": ["active"]}}"#;
    check(
        pattern,
        r#"{"d": [{"name": "alice", "status": "active"}]}"#,
        true,
    );
    check(
        pattern,
        r#"{"d": [{"name": "alice"}, {"status": "active"}]}"#,
        false,
    );
    check(
        pattern,
        r#"{"d": [{"name": "bob", "status": "active"}, {"name": "alice", "status": "gone"}]}"#,
        false,
    );
    check(
        pattern,
        r#"{"d": [{"name": "bob"}, {"name": "alice", "status": "active"}]}"#,
        true,
    );
}

#[test]
fn array_consistency_holds_through_nested_arrays() {
    let pattern = r#"{"u": {"t": {"k": ["color"], "v": ["blue"]}}}"#;
    check(
        pattern,
        r#"{"u": [{"t": [{"k": "color", "v": "blue"}]}]}"#,
        true,
    );
    check(
        pattern,
        r#"{"u": [{"t": [{"k": "color"}, {"v": "blue"}]}]}"#,
        false,
    );
    check(
        pattern,
        r#"{"u": [{"t": [{"k": "color"}]}, {"t": [{"v": "blue"}]}]}"#,
        false,
    );
}

#[test]
fn fields_outside_an_array_combine_with_any_element() {
    let pattern = r#"{"users": {"name": ["alice"]}, "version": ["1"]}"#;
    check(
        pattern,
        r#"{"users": [{"name": "bob"}, {"name": "alice"}], "version": "1"}"#,
        true,
    );
    check(
        pattern,
        r#"{"users": [{"name": "alice"}], "version": "2"}"#,
        false,
    );
}

#[test]
fn separate_arrays_do_not_constrain_each_other() {
    let pattern = r#"{"a": {"x": ["1"]}, "b": {"y": ["2"]}}"#;
    check(
        pattern,
        r#"{"a": [{"x": "0"}, {"x": "1"}], "b": [{"y": "2"}, {"y": "3"}]}"#,
        true,
    );
}

#[test]
fn dotted_keys_in_pattern_and_event_are_paths() {
    check(r#"{"a.b": ["x"]}"#, r#"{"a": {"b": "x"}}"#, true);
    check(r#"{"a": {"b": ["x"]}}"#, r#"{"a.b": "x"}"#, true);
    check(r#"{"a.b": ["x"]}"#, r#"{"a.b": "x"}"#, true);
    check(r#"{"a": {"b.c": ["x"]}}"#, r#"{"a.b": {"c": "x"}}"#, true);
    check(r#"{"a.b": {"c": ["x"]}}"#, r#"{"a": [{"b.c": "x"}]}"#, true);
    check(r#"{"a.b": ["x"]}"#, r#"{"a": {"b": "y"}}"#, false);
    // The key is split at the dot, not matched as a prefix.
    check(r#"{"a.b": ["x"]}"#, r#"{"a.bc": "x"}"#, false);
    check(r#"{"a": {"b": ["x"]}}"#, r#"{"a.b": {"b": "x"}}"#, false);
}

#[test]
fn keys_are_case_sensitive() {
    check(r#"{"MY_KEY": ["v"]}"#, r#"{"my_key": "v"}"#, false);
}

#[test]
fn or_matches_when_any_alternative_matches() {
    let pattern = r#"{"source": ["s"], "$or": [{"a": ["1"]}, {"b": ["2"], "c": ["3"]}]}"#;
    check(pattern, r#"{"source": "s", "a": "1"}"#, true);
    check(pattern, r#"{"source": "s", "b": "2", "c": "3"}"#, true);
    check(pattern, r#"{"source": "s", "b": "2"}"#, false);
    check(pattern, r#"{"source": "t", "a": "1"}"#, false);
}

#[test]
fn or_nested_inside_a_field_applies_to_its_subfields() {
    let pattern = r#"{"detail": {"$or": [{"a": ["1"]}, {"b": {"c": ["2"]}}]}}"#;
    check(pattern, r#"{"detail": {"a": "1"}}"#, true);
    check(pattern, r#"{"detail": {"b": {"c": "2"}}}"#, true);
    check(pattern, r#"{"detail": {"b": "2"}}"#, false);
    check(pattern, r#"{"a": "1", "detail": {}}"#, false);
}

#[test]
fn or_groups_nest_and_combine_with_and() {
    let pattern = r#"{
        "$or": [
            {"a": ["1"]},
            {"b": ["2"], "$or": [{"c": ["3"]}, {"d": ["4"]}]}
        ],
        "e": {"$or": [{"f": [5]}, {"g": [6]}]}
    }"#;
    check(pattern, r#"{"a": "1", "e": {"g": 6}}"#, true);
    check(pattern, r#"{"b": "2", "d": "4", "e": {"f": 5}}"#, true);
    check(pattern, r#"{"b": "2", "e": {"f": 5}}"#, false);
    check(pattern, r#"{"a": "1", "e": {"h": 7}}"#, false);
}

#[test]
fn or_alternatives_under_an_array_match_within_one_element() {
    let pattern = r#"{"r": {"$or": [{"a": ["1"], "b": ["2"]}, {"c": ["3"]}]}}"#;
    check(pattern, r#"{"r": [{"a": "1"}, {"b": "2"}]}"#, false);
    check(
        pattern,
        r#"{"r": [{"a": "1"}, {"a": "1", "b": "2"}]}"#,
        true,
    );
    check(pattern, r#"{"r": [{"a": "1"}, {"c": "3"}]}"#, true);
}

#[test]
fn several_alternatives_in_one_leaf_are_or() {
    check(
        r#"{"a": [{"exists": true}, {"prefix": "IGNORED"}]}"#,
        r#"{"a": "v"}"#,
        true,
    );
    check(
        r#"{"a": ["x", {"numeric": [">", 10]}, {"prefix": "p"}]}"#,
        r#"{"a": 11}"#,
        true,
    );
    check(
        r#"{"a": ["x", {"numeric": [">", 10]}, {"prefix": "p"}]}"#,
        r#"{"a": "q"}"#,
        false,
    );
}

#[test]
fn duplicate_object_keys_in_a_pattern_add_up() {
    // event-ruler reads the pattern as a stream: both objects under `a` are read.
    let pattern = r#"{"a": {"b": ["x"]}, "a": {"c": ["y"]}}"#;
    check(pattern, r#"{"a": {"b": "x", "c": "y"}}"#, true);
    check(pattern, r#"{"a": {"c": "y"}}"#, false);
    check(pattern, r#"{"a": {"b": "x"}}"#, false);
    // Nested duplicates add up too; one path given twice keeps the later leaf.
    let pattern = r#"{"a": {"b": {"c": ["1"]}}, "a": {"b": {"d": ["2"]}, "e": ["3"]}}"#;
    check(
        pattern,
        r#"{"a": {"b": {"c": "1", "d": "2"}, "e": "3"}}"#,
        true,
    );
    check(pattern, r#"{"a": {"b": {"d": "2"}, "e": "3"}}"#, false);
    let pattern = r#"{"a": {"b": ["1"]}, "a": {"b": ["2"]}}"#;
    check(pattern, r#"{"a": {"b": "2"}}"#, true);
    check(pattern, r#"{"a": {"b": "1"}}"#, false);
    // Two `$or` keys: one alternative of each.
    let pattern = r#"{"$or": [{"a": ["1"]}, {"b": ["2"]}], "$or": [{"c": ["3"]}, {"d": ["4"]}]}"#;
    check(pattern, r#"{"b": "2", "c": "3"}"#, true);
    check(pattern, r#"{"a": "1", "b": "2"}"#, false);
}

#[test]
fn an_operator_given_twice_is_invalid() {
    check_invalid(
        r#"{"a": [{"prefix": "x", "prefix": "y"}]}"#,
        "Only one key allowed in match expression",
    );
}

#[test]
fn duplicate_pattern_paths_keep_the_last_one() {
    let pattern = r#"{"a": [{"prefix": "us-"}], "a": [{"anything-but": "us-east"}]}"#;
    check(pattern, r#"{"a": "eu-central-1"}"#, true);
    // `a.b` and `a` → `b` name the same path: the one written last wins.
    check(
        r#"{"a.b": ["x"], "a": {"b": ["y"]}}"#,
        r#"{"a": {"b": "y"}}"#,
        true,
    );
    check(
        r#"{"a.b": ["x"], "a": {"b": ["y"]}}"#,
        r#"{"a": {"b": "x"}}"#,
        false,
    );
    check(
        r#"{"a": {"b": ["y"]}, "a.b": ["x"]}"#,
        r#"{"a": {"b": "x"}}"#,
        true,
    );
}

#[test]
fn an_event_that_is_a_json_string_is_not_an_object() {
    check(
        r#"{"a": {"b": ["x"]}}"#,
        r#"{"a": "{\"b\": \"x\"}"}"#,
        false,
    );
}

// ---------------------------------------------------------------------------------------------
// Invalid patterns
// ---------------------------------------------------------------------------------------------

#[test]
fn consecutive_wildcard_stars_are_invalid() {
    check_invalid(
        r#"{"a": [{"wildcard": "a**b"}]}"#,
        "Consecutive wildcard characters at pos 2",
    );
    check_invalid(
        r#"{"a": [{"wildcard": "arn:aws:events:us-east-1:**:event-bus/*"}]}"#,
        "Consecutive wildcard characters at pos 26",
    );
    check_invalid(
        r#"{"a": [{"anything-but": {"wildcard": "**"}}]}"#,
        "Consecutive wildcard characters at pos 1",
    );
}

#[test]
fn wildcards_too_complex_to_match_are_invalid() {
    check_invalid(
        r#"{"a": [{"wildcard": "*:*:*:*:*:event-bus/*"}]}"#,
        "Rule is too complex - try using fewer wildcard characters or fewer repeating character \
         sequences after a wildcard character",
    );
}

#[test]
fn anything_but_empty_prefix_or_suffix_is_invalid() {
    check_invalid(
        r#"{"a": [{"anything-but": {"prefix": ""}}]}"#,
        "Null prefix/suffix not allowed",
    );
    check_invalid(
        r#"{"a": [{"anything-but": {"suffix": ""}}]}"#,
        "Null prefix/suffix not allowed",
    );
}

#[test]
fn anything_but_operands_must_be_strings_or_numbers() {
    check_invalid(
        r#"{"a": [{"anything-but": null}]}"#,
        "Value of anything-but must be an array or single string/number value.",
    );
    check_invalid(
        r#"{"a": [{"anything-but": ["x", null]}]}"#,
        "Inside anything but list, start|null|boolean is not supported.",
    );
    check_invalid(
        r#"{"a": [{"anything-but": {"prefix": {"equals-ignore-case": "x"}}}]}"#,
        "Value of anything-but must be an array or single string/number value.",
    );
    check_invalid(
        r#"{"a": [{"anything-but": {"prefix": 123}}]}"#,
        "prefix/suffix match pattern must be a string",
    );
    check_invalid(
        r#"{"a": [{"anything-but": {"equals-ignore-case": [1]}}]}"#,
        "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.",
    );
}

#[test]
fn mis_cased_operators_are_invalid() {
    for operator in [
        r#"{"Prefix": "x"}"#,
        r#"{"EXISTS": true}"#,
        r#"{"NUMERIC": ["=", 5]}"#,
        r#"{"Anything-But": "x"}"#,
        r#"{"equals-Ignore-Case": "x"}"#,
        r#"{"CIDR": "10.0.0.0/8"}"#,
    ] {
        let name = operator
            .split('"')
            .nth(1)
            .expect("the operator is the first quoted text");
        check_invalid(
            &format!(r#"{{"a": [{operator}]}}"#),
            &format!("Unrecognized match type {name}"),
        );
    }
}

#[test]
fn non_array_leaves_are_invalid() {
    check_invalid(r#"{"a": "x"}"#, r#""a" must be an object or an array"#);
    check_invalid(r#"{"int": 42}"#, r#""int" must be an object or an array"#);
    check_invalid(r#"{"a": null}"#, r#""a" must be an object or an array"#);
    check_invalid(r#"{"a": true}"#, r#""a" must be an object or an array"#);
    check_invalid(
        r#"{"detail": {"state": "running"}}"#,
        r#""state" must be an object or an array"#,
    );
}

#[test]
fn empty_leaves_and_objects_are_invalid() {
    check_invalid(r#"{"a": []}"#, "Empty arrays are not allowed");
    check_invalid(r#"{"a": {}}"#, "Empty objects are not allowed");
    check_invalid(
        r#"{"a": [["x"]]}"#,
        "Match value must be String, number, true, false, or null",
    );
}

#[test]
fn operator_operands_of_the_wrong_type_are_invalid() {
    check_invalid(
        r#"{"a": [{"prefix": 123}]}"#,
        "prefix match pattern must be a string",
    );
    check_invalid(
        r#"{"a": [{"suffix": [".png"]}]}"#,
        "suffix match pattern must be a string",
    );
    check_invalid(
        r#"{"a": [{"equals-ignore-case": ["x"]}]}"#,
        "equals-ignore-case match pattern must be a string",
    );
    check_invalid(
        r#"{"a": [{"wildcard": 123}]}"#,
        "wildcard match pattern must be a string",
    );
    check_invalid(
        r#"{"a": [{"cidr": ["10.0.0.0/8"]}]}"#,
        "prefix match pattern must be a string",
    );
    check_invalid(
        r#"{"a": [{"numeric": 10}]}"#,
        "Value of numeric must be an array.",
    );
    check_invalid(
        r#"{"a": [{"numeric": [">", 0, ">", 0]}]}"#,
        "Bad numeric range operator: >",
    );
    check_invalid(
        r#"{"a": [{"numeric": [">", 0, "<"]}]}"#,
        "Value of < must be numeric",
    );
}

#[test]
fn malformed_cidrs_are_invalid() {
    check_invalid(
        r#"{"a": [{"cidr": "bad-filter"}]}"#,
        "Malformed CIDR, one '/' required",
    );
    check_invalid(
        r#"{"a": [{"cidr": "xx.11.xx/8"}]}"#,
        "Nonstandard IP address: xx.11.xx",
    );
    check_invalid(
        r#"{"a": [{"cidr": "bad-/64filter"}]}"#,
        "Malformed CIDR, mask bits must be an integer",
    );
}

#[test]
fn or_needs_at_least_two_alternatives() {
    // event-ruler's wording (`JsonRuleCompiler`); the corpus has no AWS recording of this case.
    let reason = "There must have at least 2 Objects in $or relationship.";
    check_invalid(r#"{"$or": [{"a": ["x"]}]}"#, reason);
    check_invalid(r#"{"$or": []}"#, reason);
    check_invalid(r#"{"d": {"$or": [{"a": ["x"]}]}}"#, reason);
}

#[test]
fn a_pattern_must_be_an_object() {
    check_invalid(r#"["not", "a", "dict"]"#, "Filter is not an object");
    let syntax = Pattern::parse("{'bad': 'quotation'}").expect_err("not JSON");
    assert_eq!(syntax.kind(), ErrorKind::Syntax);
}

// ---------------------------------------------------------------------------------------------
// Metering rules on the seed events
// ---------------------------------------------------------------------------------------------

#[test]
fn metering_rule_from_the_domain_notes_matches_every_seed_event() {
    let rule = r#"{
        "source": ["aws.metering-marketplace"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {"eventSource": ["metering-marketplace.amazonaws.com"]}
    }"#;
    for name in SEEDS {
        check(rule, &seed(name), true);
    }
}

#[test]
fn failed_call_rules_stay_quiet_on_successful_seed_calls() {
    for name in SEEDS {
        let event = seed(name);
        check(
            r#"{"detail": {"errorCode": [{"exists": true}]}}"#,
            &event,
            false,
        );
        check(
            r#"{"detail": {"errorCode": [{"exists": false}]}}"#,
            &event,
            true,
        );
        // `responseElements` is an object here, not null.
        check(r#"{"detail": {"responseElements": [null]}}"#, &event, false);
    }
}

#[test]
fn event_name_tells_the_metering_calls_apart() {
    let pattern = r#"{"detail": {"eventName": ["MeterUsage", "RegisterUsage"]}}"#;
    check(pattern, &seed(AMI), true);
    check(pattern, &seed(EKS), true);
    check(pattern, &seed(REGISTER), true);
    check(pattern, &seed(BATCH), false);
}

#[test]
fn batch_record_status_is_matched_inside_results() {
    let success = r#"{"detail": {"responseElements": {"results": {"status": ["Success"]}}}}"#;
    let not_success = r#"{"detail": {"responseElements": {"results": {"status": [{"anything-but": ["Success"]}]}}}}"#;
    check(success, &seed(BATCH), true);
    check(not_success, &seed(BATCH), false);
    // A MeterUsage call has no per-record status: anything-but needs the field.
    check(not_success, &seed(AMI), false);
}

#[test]
fn batch_usage_record_fields_match_within_one_record() {
    let record = |customer: &str| {
        format!(
            r#"{{"detail": {{"requestParameters": {{"usageRecords": {{"dimension": ["Dimension1"], "customerIdentifier": ["{customer}"]}}}}}}}}"#
        )
    };
    check(&record("customer1"), &seed(BATCH), true);
    check(&record("customer2"), &seed(BATCH), false);
    check(
        r#"{"detail": {"responseElements": {"results": {"usageRecord": {"quantity": [{"numeric": ["=", 1]}]}, "status": ["Success"]}}}}"#,
        &seed(BATCH),
        true,
    );
}

#[test]
fn empty_unprocessed_records_and_resources_match_no_leaf() {
    check(
        r#"{"detail": {"responseElements": {"unprocessedRecords": {"customerIdentifier": [{"exists": true}]}}}}"#,
        &seed(BATCH),
        false,
    );
    for name in SEEDS {
        check(r#"{"resources": [{"exists": true}]}"#, &seed(name), false);
    }
}

#[test]
fn eks_service_account_calls_are_told_from_ami_instance_profiles() {
    let irsa = r#"{"detail": {"userIdentity": {"sessionContext": {"webIdFederationData": {"federatedProvider": [{"prefix": "arn:aws:iam::123456789012:oidc-provider/oidc.eks."}]}}}}}"#;
    let instance_profile = r#"{"detail": {"userIdentity": {"sessionContext": {"ec2RoleDelivery": [{"exists": true}]}}}}"#;
    check(irsa, &seed(EKS), true);
    check(irsa, &seed(REGISTER), true);
    check(irsa, &seed(AMI), false);
    check(irsa, &seed(BATCH), false);
    check(instance_profile, &seed(AMI), true);
    check(instance_profile, &seed(EKS), false);
}

#[test]
fn dry_run_is_a_boolean_and_may_be_absent() {
    let dry_run =
        |value: &str| format!(r#"{{"detail": {{"requestParameters": {{"dryRun": [{value}]}}}}}}"#);
    check(&dry_run("false"), &seed(AMI), true);
    check(&dry_run("true"), &seed(AMI), false);
    check(&dry_run(r#""false""#), &seed(AMI), false);
    check(&dry_run(r#"{"exists": false}"#), &seed(EKS), true);
    check(&dry_run(r#"{"exists": false}"#), &seed(AMI), false);
}

#[test]
fn usage_quantities_are_numbers() {
    let quantity = |leaf: &str| {
        format!(
            r#"{{"detail": {{"eventName": ["MeterUsage"], "requestParameters": {{"usageQuantity": [{leaf}]}}}}}}"#
        )
    };
    check(
        &quantity(r#"{"numeric": [">", 0, "<=", 10]}"#),
        &seed(AMI),
        true,
    );
    check(&quantity("1.0"), &seed(AMI), true);
    check(&quantity(r#""1""#), &seed(AMI), false);
    check(
        &quantity(r#"{"numeric": [">", 1000000]}"#),
        &seed(EKS),
        false,
    );
    check(
        r#"{"detail": {"requestParameters": {"publicKeyVersion": [{"numeric": ["=", 1]}]}}}"#,
        &seed(REGISTER),
        true,
    );
}

#[test]
fn source_ip_cidr_matches_only_addresses() {
    check(
        r#"{"detail": {"sourceIPAddress": [{"cidr": "1.2.3.0/24"}]}}"#,
        &seed(AMI),
        true,
    );
    check(
        r#"{"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/8"}]}}"#,
        &seed(AMI),
        false,
    );
    // The BatchMeterUsage seed records "192.0.0.2/24": a network, not an address.
    check(
        r#"{"detail": {"sourceIPAddress": [{"cidr": "192.0.0.0/24"}]}}"#,
        &seed(BATCH),
        false,
    );
}

#[test]
fn user_agent_prefix_ignores_case() {
    let pattern = r#"{"detail": {"userAgent": [{"prefix": {"equals-ignore-case": "AWS-CLI/"}}]}}"#;
    check(pattern, &seed(AMI), true);
    check(pattern, &seed(EKS), true);
    check(pattern, &seed(REGISTER), true);
    check(pattern, &seed(BATCH), false);
}

#[test]
fn principal_arn_wildcards_and_dotted_paths() {
    let iam_user =
        r#"{"detail": {"userIdentity": {"arn": [{"wildcard": "arn:aws:iam::*:user/*"}]}}}"#;
    check(iam_user, &seed(BATCH), true);
    check(iam_user, &seed(AMI), false);
    let issuer = r#"{"detail.userIdentity.sessionContext.sessionIssuer.arn": [{"wildcard": "arn:aws:iam::*:role/*"}]}"#;
    check(issuer, &seed(AMI), true);
    check(issuer, &seed(BATCH), false);
    let not_expected_role = r#"{"detail": {"userIdentity": {"arn": [{"anything-but": {"prefix": "arn:aws:sts::111122223333:assumed-role/"}}]}}}"#;
    for name in SEEDS {
        check(not_expected_role, &seed(name), true);
    }
}

#[test]
fn or_across_call_shapes_on_the_seed_events() {
    let pattern = r#"{
        "source": ["aws.metering-marketplace"],
        "detail": {"$or": [
            {"eventName": ["RegisterUsage"]},
            {"requestParameters": {"usageRecords": {"quantity": [{"numeric": [">", 0]}]}}}
        ]}
    }"#;
    check(pattern, &seed(REGISTER), true);
    check(pattern, &seed(BATCH), true);
    check(pattern, &seed(AMI), false);
    check(pattern, &seed(EKS), false);
}

/// Every operator `pattern::OPERATORS` lists (for messages) parses.
#[test]
fn the_listed_operators_are_the_recognised_ones() {
    let operand = |operator: &str| match operator {
        "anything-but" | "prefix" | "suffix" | "equals-ignore-case" | "wildcard" => "\"a\"",
        "numeric" => "[\">\", 0]",
        "cidr" => "\"10.0.0.0/8\"",
        "exists" => "true",
        other => panic!("no operand for {other}"),
    };
    for operator in meterwatch_pattern::pattern::OPERATORS {
        let pattern = format!(r#"{{"a": [{{"{operator}": {}}}]}}"#, operand(operator));
        assert!(Pattern::parse(&pattern).is_ok(), "{pattern}");
    }
    check_invalid(
        r#"{"a": [{"prefx": "a"}]}"#,
        "Unrecognized match type prefx",
    );
}
