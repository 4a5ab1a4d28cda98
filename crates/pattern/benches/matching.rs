//! Benchmarks of the pattern engine on the shared metering workload (`../shared/bench`).
//!
//! - `compile`: building one matcher from `metering-20.json`, and from 1000 patterns written
//!   by `gen_scale_patterns.py`.
//! - `match`: matching 2000 generated metering events (`gen_metering.py`, seed 20200710)
//!   against both matchers, one thread, one reused `Scratch`; throughput in events.
//!
//! The generated files go to Cargo's per-target temporary directory and are reused by later
//! runs. Without `python3` the benchmarks that need generated files are skipped (with a note
//! on stderr), and without `../shared` all of them are (see `tests/corpora.rs`). Quick run: `cargo bench -p meterwatch-pattern -- --quick`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use meterwatch_pattern::{Matcher, MatcherBuilder, Pattern, Scratch};
use serde_json::Value;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;

const EVENT_COUNT: usize = 2000;
const EVENT_SEED: u32 = 20200710;
const SCALE_COUNT: usize = 1000;

#[path = "../../../tests/corpora.rs"]
mod corpora;

/// `file` in `../shared/bench`; `None` (reported once) when `../shared` is absent.
fn shared_bench(file: &str) -> Option<PathBuf> {
    static BENCH_DIR: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let dir = BENCH_DIR
        .get_or_init(|| corpora::shared("bench"))
        .as_ref()?;
    Some(dir.join(file))
}

/// Runs a generator script from the shared bench directory unless its output already
/// exists; `None` (with a note) when it cannot run.
fn generated(script: &str, args: &[String], file_name: &str) -> Option<PathBuf> {
    let script = shared_bench(script)?;
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(file_name);
    if out.is_file() {
        return Some(out);
    }
    // Write beside the final name and rename, so an interrupted run leaves no partial file.
    let partial = out.with_extension("partial");
    let status = Command::new("python3")
        .arg(&script)
        .args(args)
        .arg("--out")
        .arg(&partial)
        .status();
    match status {
        Ok(status) if status.success() => match std::fs::rename(&partial, &out) {
            Ok(()) => Some(out),
            Err(e) => {
                eprintln!("skipping {file_name}: cannot move it into place: {e}");
                None
            }
        },
        Ok(status) => {
            eprintln!(
                "skipping {file_name}: {} exited with {status}",
                script.display()
            );
            None
        }
        Err(e) => {
            eprintln!("skipping {file_name}: cannot run python3: {e}");
            None
        }
    }
}

/// A patterns file: a JSON object, rule name → EventBridge pattern.
fn load_patterns(path: &Path) -> Vec<(String, Pattern)> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let Value::Object(rules) = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
    else {
        panic!("{} is not a JSON object of patterns", path.display());
    };
    rules
        .into_iter()
        .map(|(name, json)| {
            let pattern = Pattern::from_json(&json)
                .unwrap_or_else(|e| panic!("pattern {name} in {} is invalid: {e}", path.display()));
            (name, pattern)
        })
        .collect()
}

fn build(patterns: Vec<(String, Pattern)>) -> Matcher<String> {
    let mut builder = MatcherBuilder::default();
    for (name, pattern) in patterns {
        builder.add(name, pattern);
    }
    builder.build()
}

/// The pattern sets: always `metering-20`, and `scale-1000` when it could be generated.
fn pattern_sets() -> Vec<(&'static str, Vec<(String, Pattern)>)> {
    let Some(metering_20) = shared_bench("metering-20.json") else {
        return Vec::new();
    };
    let mut sets = vec![("metering-20", load_patterns(&metering_20))];
    let scale_args = ["--count".to_owned(), SCALE_COUNT.to_string()];
    if let Some(path) = generated(
        "gen_scale_patterns.py",
        &scale_args,
        &format!("metering-{SCALE_COUNT}.json"),
    ) {
        sets.push(("scale-1000", load_patterns(&path)));
    }
    sets
}

fn compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    for (label, patterns) in pattern_sets() {
        group.throughput(Throughput::Elements(patterns.len() as u64));
        group.bench_function(label, |b| {
            b.iter_batched(
                || patterns.clone(),
                |patterns| black_box(build(patterns)),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn matching(c: &mut Criterion) {
    let args = [
        "--count".to_owned(),
        EVENT_COUNT.to_string(),
        "--seed".to_owned(),
        EVENT_SEED.to_string(),
    ];
    let Some(events_path) = generated(
        "gen_metering.py",
        &args,
        &format!("metering-{EVENT_COUNT}-{EVENT_SEED}.jsonl"),
    ) else {
        eprintln!("skipping the match group: no events");
        return;
    };
    let text = std::fs::read_to_string(&events_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", events_path.display()));
    let events: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert_eq!(events.len(), EVENT_COUNT, "{}", events_path.display());

    let mut group = c.benchmark_group("match");
    group.throughput(Throughput::Elements(events.len() as u64));
    for (label, patterns) in pattern_sets() {
        let matcher = build(patterns);
        let mut scratch = Scratch::default();
        let mut found = Vec::new();
        group.bench_function(label, |b| {
            b.iter(|| {
                let mut matches = 0;
                for event in &events {
                    matcher
                        .matches_with(event, &mut scratch, &mut found)
                        .expect("generated events are JSON objects");
                    matches += found.len();
                }
                black_box(matches)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, compile, matching);
criterion_main!(benches);
