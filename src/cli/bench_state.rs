//! `meterwatch bench-state`: what the in-memory state costs. Feeds N distinct failed
//! metering calls through a rule with dedup and a throttle grouped by product (N distinct
//! products), so the store ends up holding N dedup and N throttle entries, and reports the
//! resident memory they added and the time per finding. Exit 3 when the memory exceeds the
//! budget (`--max-mb`, 50 by default for 100,000 keys).
//!
//! Memory is the process's resident set (`/proc/self/statm`, Linux) before and after: an
//! upper bound on what the state allocated, since the allocator may keep freed pages.

use crate::alert::Alert;
use crate::envelope;
use crate::noise::Noise;
use crate::rules::RuleSet;
use anyhow::Context;
use serde_json::json;
use std::process::ExitCode;
use std::time::Instant;

/// Measures the in-memory state store; prints one JSON line.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Distinct keys (events, each of its own product).
    #[arg(long, default_value_t = 100_000)]
    keys: usize,
    /// The memory budget, in MB (10^6 bytes).
    #[arg(long, default_value_t = 50)]
    max_mb: u64,
}

const RULE: &str = "[[rule]]\nid = \"throttled\"\ntitle = \"Throttled\"\nseverity = \"medium\"\n\
    match.detail.errorCode = [\"ThrottlingException\"]\n\
    [rule.throttle]\ngroup_by = [\"account\", \"detail.requestParameters.productCode\"]\ninterval = \"1h\"\n";

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let dir = tempfile_dir()?;
    let path = dir.join("rules.toml");
    std::fs::write(&path, RULE).context("writing the benchmark rule")?;
    let rule_set = RuleSet::load(&[&path]).map_err(|e| anyhow::anyhow!("{e}"))?;
    let _ = std::fs::remove_dir_all(&dir);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("starting a runtime")?;
    let noise = Noise::in_memory();
    let publish = Discard;
    // Each event is built, evaluated and admitted in turn, so that the transient memory stays
    // one event's and the resident set grows by the state alone; only admission is timed.
    let rss_before = resident_bytes();
    let mut elapsed = std::time::Duration::ZERO;
    let mut n_published = 0_usize;
    for idx in 0..args.keys {
        let body = event(idx);
        let events = envelope::decode(&body).context("benchmark events decode")?;
        for event in &events {
            for finding in rule_set.findings(event)? {
                let started = Instant::now();
                let settled = runtime.block_on(noise.admit(finding, event, &rule_set, &publish))?;
                elapsed += started.elapsed();
                if settled == crate::noise::Settled::Published {
                    n_published += 1;
                }
            }
        }
    }
    let rss_after = resident_bytes();
    let n_entries = match noise.store() {
        crate::state::Store::Memory(store) => store.len(),
        crate::state::Store::Dynamodb(_) => 0,
    };
    let added = match (rss_before, rss_after) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    let report = json!({
        "keys": args.keys,
        "entries": n_entries,
        "published": n_published,
        "rss_added_bytes": added,
        "bytes_per_key": added.map(|bytes| bytes / args.keys.max(1) as u64),
        "ns_per_finding": elapsed.as_nanos() / args.keys.max(1) as u128,
        "max_mb": args.max_mb,
    });
    println!("{report}");
    drop(noise);
    match added {
        Some(bytes) if bytes > args.max_mb * 1_000_000 => {
            eprintln!(
                "error: the state for {} keys added {bytes} bytes, over {} MB",
                args.keys, args.max_mb
            );
            Ok(ExitCode::from(3))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// A sink that accepts everything: only the state is measured.
struct Discard;

impl crate::noise::Publish for Discard {
    async fn publish(&self, _: &Alert) -> bool {
        true
    }
}

/// A throttled MeterUsage call of its own product.
fn event(idx: usize) -> String {
    json!({
        "version": "0", "id": format!("eb-{idx}"), "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.metering-marketplace", "account": "123456789012",
        "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {
            "eventSource": "metering-marketplace.amazonaws.com", "eventName": "MeterUsage",
            "eventID": format!("00000000-0000-4000-8000-{idx:012}"),
            "eventTime": "2026-01-01T00:00:00Z", "awsRegion": "us-east-1",
            "errorCode": "ThrottlingException",
            "requestParameters": {"productCode": format!("prod-{idx:016x}")},
        },
    })
    .to_string()
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("meterwatch-bench-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// The resident set size, from `/proc/self/statm` (pages of 4 KiB); `None` off Linux.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
