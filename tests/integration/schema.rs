//! The JSON Schemas under `schema/` are what the code generates (they cannot drift), they
//! accept every shipped file, and they reject a misspelled key.

use crate::support::{meterwatch, stdout};
use serde_json::Value;
use std::path::Path;

fn generated(kind: &str) -> Value {
    let output = meterwatch(&["schema", kind]);
    assert_eq!(output.status.code(), Some(0));
    serde_json::from_str(&stdout(&output)).expect("the schema is JSON")
}

fn committed(file: &str) -> Value {
    let text = std::fs::read_to_string(Path::new("schema").join(file)).expect("schema file");
    serde_json::from_str(&text).expect("the schema file is JSON")
}

/// A TOML file as the JSON a schema validator sees.
fn toml_as_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("TOML file");
    let value: toml::Value = toml::from_str(&text).expect("valid TOML");
    serde_json::to_value(value).expect("TOML converts to JSON")
}

fn toml_files(dir: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("directory")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{dir} has TOML files");
    files
}

#[test]
fn committed_schemas_are_the_generated_ones() {
    assert_eq!(
        committed("rules.schema.json"),
        generated("rules"),
        "run `meterwatch schema rules > schema/rules.schema.json`"
    );
    assert_eq!(
        committed("rule-tests.schema.json"),
        generated("tests"),
        "run `meterwatch schema tests > schema/rule-tests.schema.json`"
    );
    assert_eq!(
        committed("alert.schema.json"),
        generated("alert"),
        "run `meterwatch schema alert > schema/alert.schema.json`"
    );
    assert_eq!(
        committed("config.schema.json"),
        generated("config"),
        "run `meterwatch schema config > schema/config.schema.json`"
    );
}

#[test]
fn every_alert_document_validates_against_the_alert_schema() {
    let validator = jsonschema::validator_for(&generated("alert")).expect("a valid schema");
    let output = meterwatch(&[
        "eval",
        "--rules",
        "rules",
        "tests/fixtures/events/failing/batchmeterusage-partial.eventbridge.json",
        "tests/fixtures/events/failing/meterusage-throttled.eventbridge.json",
        "tests/fixtures/events/failing/meterusage-unexpected-principal.eventbridge.json",
    ]);
    let mut n_alerts = 0;
    for line in stdout(&output).lines() {
        let document: Value = serde_json::from_str(line).expect("a JSON alert");
        let errors: Vec<String> = validator
            .iter_errors(&document)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        n_alerts += 1;
    }
    assert_eq!(n_alerts, 5);
}

#[test]
fn shipped_configs_validate_against_the_config_schema() {
    let validator = jsonschema::validator_for(&generated("config")).expect("a valid schema");
    for file in ["meterwatch.toml", "deploy/meterwatch.example.toml"] {
        let document = toml_as_json(Path::new(file));
        let errors: Vec<String> = validator
            .iter_errors(&document)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{file}: {errors:?}");
    }
    let mut document = toml_as_json(Path::new("meterwatch.toml"));
    let object = document.as_object_mut().expect("a table");
    let shutdown = object.remove("shutdown").unwrap_or(Value::Null);
    object.insert("shutdwon".into(), shutdown);
    assert!(
        !validator.is_valid(&document),
        "a misspelled key is rejected"
    );
}

#[test]
fn shipped_files_validate_and_misspelled_keys_do_not() {
    for (schema, dir) in [("rules", "rules"), ("tests", "rules/tests")] {
        let validator = jsonschema::validator_for(&generated(schema)).expect("a valid schema");
        for file in toml_files(dir) {
            let document = toml_as_json(&file);
            let errors: Vec<String> = validator
                .iter_errors(&document)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{}: {errors:?}", file.display());
        }
    }
    let validator = jsonschema::validator_for(&generated("rules")).expect("a valid schema");
    let mut document = toml_as_json(Path::new("rules/metering.toml"));
    let rule = &mut document["rule"][0];
    let severity = rule["severity"].take();
    rule.as_object_mut()
        .expect("a rule is a table")
        .remove("severity");
    rule["severty"] = severity;
    assert!(
        !validator.is_valid(&document),
        "a misspelled key is rejected"
    );
}
