//! The fuzz targets' regression corpus (`fuzz/regressions/<target>/`), each file run through
//! its target's own check (`fuzz/checks.rs`), on stable: every past finding stays fixed.

#[path = "../../fuzz/checks.rs"]
mod checks;

use std::path::Path;

#[test]
fn every_regression_input_passes_its_targets_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = checks::shipped_rules(root);
    for target in checks::TARGETS {
        let dir = root.join("fuzz/regressions").join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .collect();
        files.sort();
        assert!(files.len() >= 3, "{target}: {} inputs", files.len());
        for file in files {
            let data = std::fs::read(&file).expect("a readable input");
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                checks::run(target, &data, &rules)
            }));
            assert!(
                outcome.is_ok(),
                "{target}: {} fails its check",
                file.display()
            );
        }
    }
}
