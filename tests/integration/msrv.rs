//! The declared minimum Rust version (`rust-version` in Cargo.toml) is the real one: what
//! the locked dependencies declare, and what the code itself needs.

use serde_json::Value;
use std::process::Command;

/// What the code itself needs: let chains (`if let … && …`, edition 2024) are stable since
/// 1.88. Clippy's `incompatible_msrv` lint checks the standard library APIs against
/// `rust-version`.
const CODE_NEEDS: (u32, u32) = (1, 88);

/// `1.88` or `1.88.0` as (major, minor); a missing or unreadable one as (0, 0).
fn minor_version(text: Option<&str>) -> (u32, u32) {
    let mut parts = text
        .unwrap_or("")
        .split('.')
        .map(|part| part.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[test]
fn rust_version_is_the_highest_any_locked_package_or_the_code_needs() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON");
    let members = metadata["workspace_members"]
        .as_array()
        .expect("workspace_members");
    let packages = metadata["packages"].as_array().expect("packages");
    let (ours, locked): (Vec<&Value>, Vec<&Value>) = packages
        .iter()
        .partition(|package| members.contains(&package["id"]));
    let declared: Vec<(u32, u32)> = ours
        .iter()
        .map(|package| minor_version(package["rust_version"].as_str()))
        .collect();
    assert_eq!(declared.len(), 2, "both workspace crates");
    let neediest = locked
        .iter()
        .max_by_key(|package| minor_version(package["rust_version"].as_str()))
        .expect("locked packages");
    let needed = minor_version(neediest["rust_version"].as_str()).max(CODE_NEEDS);
    for (package, version) in ours.iter().zip(&declared) {
        assert_eq!(
            *version, needed,
            "{} declares rust-version {version:?}; {} {} needs {:?} and the code {CODE_NEEDS:?}",
            package["name"], neediest["name"], neediest["version"], neediest["rust_version"]
        );
    }
}
