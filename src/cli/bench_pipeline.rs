//! `meterwatch bench-pipeline`: the daemon's pipeline (envelope decode, rules, alerts, ack)
//! on one core, from an in-memory source to a counting sink: no I/O in the timed part.
//! `--state none` leaves out the state stage (dedup, throttle, group, threshold, absence), so
//! that comparing it with `--state memory` measures what the stage costs.

use crate::daemon::pipeline::{Backoff, Pipeline};
use crate::daemon::{self, Settings, Shared};
use crate::http::Health;
use crate::sink::{MemorySink, NamedSink, Sink};
use crate::source::{MemorySource, Source};
use crate::telemetry::Metrics;
use anyhow::Context;
use arc_swap::ArcSwap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Measures the pipeline's throughput on one core.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    input: super::RulesAndBodies,
    #[command(flatten)]
    passes: super::passes::Passes,
    /// The state stage: `memory` (the daemon's default `[state] type`), fresh for each pass,
    /// or `none` (every match but a heartbeat is published, no dedup or other control).
    #[arg(long, value_enum, default_value_t = StateStage::Memory)]
    state: StateStage,
}

/// `--state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StateStage {
    None,
    Memory,
}

impl StateStage {
    fn as_str(self) -> &'static str {
        match self {
            StateStage::None => "none",
            StateStage::Memory => "memory",
        }
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let rule_set = match super::load_rules(&args.input.rules) {
        Ok(rule_set) => rule_set,
        Err(code) => return Ok(code),
    };
    let n_rules = rule_set.len();
    let rules = Arc::new(ArcSwap::from_pointee(rule_set));
    let text = crate::input::read("events", &args.input.events)?;
    let bodies: Vec<&str> = crate::input::json_lines(&text)
        .map(|(_, line)| line)
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;

    // Each pass runs a fresh pipeline (state included) over every body; it counts the
    // alerts its sink accepted.
    let timed = args.passes.run("bench-pipeline", bodies.len(), || {
        let metrics = Arc::new(Metrics::default());
        let pipeline = Pipeline::new(
            Arc::clone(&rules),
            vec![NamedSink::new(
                "memory",
                Sink::Memory(MemorySink::counting()),
            )],
            Backoff {
                max_attempts: 1,
                initial: Duration::ZERO,
                max: Duration::ZERO,
            },
            Arc::clone(&metrics),
        );
        let pipeline = Arc::new(match args.state {
            StateStage::Memory => pipeline,
            StateStage::None => pipeline.without_state(),
        });
        let shared = Shared {
            source: Arc::new(Source::Memory(MemorySource::new(
                bodies.iter().copied(),
                10,
            ))),
            pipeline: Arc::clone(&pipeline),
            metrics,
            health: Arc::new(Health::local()),
            backlog: Arc::default(),
        };
        let settings = Settings {
            pollers: 1,
            grace: Duration::from_secs(1),
            max_in_flight: daemon::in_flight::DEFAULT_MAX_IN_FLIGHT,
        };
        runtime.block_on(daemon::run(settings, shared, CancellationToken::new()));
        let accepted = pipeline.sinks().iter().map(|named| match &named.sink {
            Sink::Memory(sink) => sink.accepted(),
            _ => 0,
        });
        Ok(accepted.sum::<u64>())
    })?;
    let report = serde_json::json!({
        "messages": bodies.len(),
        "rules": n_rules,
        "alerts": timed.counts,
        "passes": timed.seconds.len(),
        "warmup_passes": args.passes.warmup_passes,
        "state": args.state.as_str(),
        "median_events_per_sec": (bodies.len() as f64 / timed.median()).round(),
        "threads": 1,
    });
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn the_default_state_stage_is_the_daemons_default() {
        let cli = Cli::try_parse_from(["bench", "--events", "e.jsonl"]).expect("parses");
        assert_eq!(cli.args.state, StateStage::Memory);
        assert_eq!(
            crate::config::StateConfig::default().kind,
            crate::config::StateKind::Memory
        );
        let cli = Cli::try_parse_from(["bench", "--events", "e.jsonl", "--state", "none"])
            .expect("parses");
        assert_eq!(cli.args.state, StateStage::None);
    }
}
