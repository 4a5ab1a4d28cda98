//! Every example in `docs/rules.md` runs: each `toml` block of rules passes `meterwatch
//! check`, and the `[[test]]` block after it passes `meterwatch test` against it.

use crate::support::{meterwatch, stderr, stdout};

/// The bodies of the ```toml blocks of a Markdown text, in order.
fn toml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match current.as_mut() {
            None if line.trim_start() == "```toml" => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_start() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    assert!(current.is_none(), "an unclosed code block");
    blocks
}

#[test]
fn every_rules_md_example_checks_and_its_tests_pass() {
    let markdown = std::fs::read_to_string("docs/rules.md").expect("docs/rules.md");
    let blocks = toml_blocks(&markdown);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut n_rule_blocks = 0;
    let mut n_test_blocks = 0;
    let mut rules_path: Option<String> = None;
    for (idx, block) in blocks.iter().enumerate() {
        if block.contains("[[test]]") {
            let rules = rules_path
                .as_ref()
                .unwrap_or_else(|| panic!("block {idx}: tests before any rules"));
            let tests = dir.path().join(format!("tests-{idx}.toml"));
            std::fs::write(&tests, block).expect("write tests");
            let output = meterwatch(&[
                "test",
                tests.to_str().expect("utf-8 path"),
                "--rules",
                rules.as_str(),
            ]);
            assert_eq!(
                output.status.code(),
                Some(0),
                "block {idx}:\n{block}\n{}{}",
                stdout(&output),
                stderr(&output)
            );
            n_test_blocks += 1;
        } else {
            let path = dir.path().join(format!("rules-{idx}.toml"));
            std::fs::write(&path, block).expect("write rules");
            let path = path.to_str().expect("utf-8 path").to_owned();
            let output = meterwatch(&["check", &path]);
            assert_eq!(
                output.status.code(),
                Some(0),
                "block {idx}:\n{block}\n{}",
                stderr(&output)
            );
            rules_path = Some(path);
            n_rule_blocks += 1;
        }
    }
    assert!(
        n_rule_blocks >= 8 && n_test_blocks >= 8,
        "{n_rule_blocks} rule and {n_test_blocks} test blocks"
    );
}
