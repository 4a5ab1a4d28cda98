#![no_main]
//! See `meterwatch_fuzz::body_to_sns`, with the shipped rules.

use meterwatch::rules::RuleSet;
use std::path::Path;
use std::sync::LazyLock;

static RULES: LazyLock<RuleSet> = LazyLock::new(|| {
    meterwatch_fuzz::shipped_rules(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")))
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| meterwatch_fuzz::body_to_sns(&RULES, data));
