//! Assembling the daemon from a validated [`Config`]: the rules, the source, the sinks, the
//! state store, the pipeline, the HTTP server, the rules watcher and the start-up probes;
//! then it runs ([`super::run`]) and finishes a replay. Called by `meterwatch run`
//! (`cli::run`); the only place that turns config into running parts.

use super::backlog::Backlog;
use super::pipeline::{self, Backoff, Pipeline};
use super::run::absence_checks;
use super::{Settings, Shared, Stopped, in_flight, reload, run};
use crate::config::{Config, SinkConfig, SourceConfig, StateKind};
use crate::http::{self, Health};
use crate::noise::Noise;
use crate::rules::RuleSet;
use crate::sink::{FileSink, NamedSink, Sink, SnsSink, StdoutSink};
use crate::source::{FileSource, Source, SourceError, SqsSource};
use crate::state::{DynamoStore, MemoryStore, Store};
use crate::telemetry::Metrics;
use crate::telemetry::events::{ReloadTrigger, RulesReloaded};
use anyhow::Context;
use arc_swap::ArcSwap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Everything `meterwatch run` does with a validated config: load the rules, build the
/// source and sinks, serve HTTP, watch the rules, run until done or `shutdown`.
pub async fn serve(
    config: &Config,
    config_path: Option<&Path>,
    shutdown: CancellationToken,
) -> anyhow::Result<Stopped> {
    let metrics = Arc::new(Metrics::default());
    let rule_set = load_rules(config)?;
    let n_rules = rule_set.len();
    let rules = Arc::new(ArcSwap::from_pointee(rule_set));
    RulesReloaded {
        n_rules,
        trigger: ReloadTrigger::Startup,
    }
    .emit(&metrics);

    let needs_aws = matches!(config.source, SourceConfig::Sqs(_))
        || config.state.kind == StateKind::Dynamodb
        || config
            .effective_sinks()
            .values()
            .any(|sink| matches!(sink, SinkConfig::Sns { .. }));
    let sdk_config = if needs_aws {
        Some(crate::aws::sdk_config().await?)
    } else {
        None
    };
    let sdk_config = sdk_config.as_ref();

    let (source, pollers, health) = build_source(config, sdk_config)?;
    let source = Arc::new(source);
    let health = Arc::new(health);
    health.set_rules_loaded();
    let sinks = build_sinks(config, sdk_config)?;
    let store = build_store(config, sdk_config)?;
    // A finite source is a replay: judged in its events' time, absences included, so that
    // its output depends on its input only (see `noise`). A queue is live.
    let replay = !source.is_remote();
    let clock = if replay {
        crate::state::Clock::events()
    } else {
        crate::state::Clock::System
    };
    // Groups flush at once when shutdown begins, so draining never waits for a group.
    let noise = Arc::new(Noise::new(store, clock, shutdown.clone()));
    // `validate` compiled the same routes against the same sinks; this cannot fail after it.
    let router = config.router().map_err(|problems| {
        anyhow::anyhow!(
            "invalid routes: {}",
            problems
                .iter()
                .map(|problem| problem.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    let pipeline = Arc::new(
        Pipeline::new(
            Arc::clone(&rules),
            sinks,
            Backoff::from(&config.retry),
            Arc::clone(&metrics),
        )
        .with_router(router)
        .with_noise(Arc::clone(&noise))
        .with_budget(config.rules.budget()),
    );
    let settings = Settings {
        pollers,
        grace: Duration::from_secs(config.shutdown.grace_secs),
        max_in_flight: in_flight::DEFAULT_MAX_IN_FLIGHT,
    };
    let backlog = Arc::new(Backlog::default());
    // A replay's absences are checked by the pipeline, in event time.
    let absence_task = (!replay).then(|| {
        tokio::spawn(absence_checks(
            Arc::clone(&noise),
            Arc::clone(&pipeline),
            Arc::clone(&metrics),
            Arc::clone(&backlog),
            shutdown.clone(),
            settings.drain_budget(),
        ))
    });

    let http_stop = CancellationToken::new();
    let http_task = spawn_http(config, &health, &metrics, &http_stop).await?;

    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = config_path.map(|p| p.display().to_string()).unwrap_or_else(|| "(none)".to_owned()),
        source = %source.describe(),
        n_rules,
        sinks = %pipeline.sinks().iter().map(|s| s.name.as_ref()).collect::<Vec<_>>().join(","),
        listen = config.effective_listen().map(|l| l.to_string()).unwrap_or_else(|| "(off)".to_owned()),
        "meterwatch starting."
    );
    if source.is_remote() {
        probe_queue(&source, &health).await?;
    }
    probe_sinks(pipeline.sinks()).await?;

    let reload_stop = CancellationToken::new();
    let reload_task = tokio::spawn(reload::run(
        reload::Reloader::new(config.rules.paths.clone(), rules, Arc::clone(&metrics)),
        config.rules.watch,
        Duration::from_millis(config.rules.debounce_ms),
        reload_stop.clone(),
    ));

    let n_files = source.n_files();
    let shared = Shared {
        source,
        pipeline: Arc::clone(&pipeline),
        metrics: Arc::clone(&metrics),
        health,
        backlog,
    };
    let stopped = run::run(settings, shared, shutdown).await;
    // A replay's open groups are flushed by event time, so the last ones only now (also
    // when it was interrupted, as a daemon's groups flush at shutdown).
    noise.flush_replay_groups(pipeline.as_ref()).await;
    if stopped == Stopped::Exhausted {
        // The end of a replay's input: what is silent by its last event's time is reported.
        let rule_set = pipeline.rules().load_full();
        if let Some(result) = noise.finish_replay(&rule_set, pipeline.as_ref()).await {
            pipeline::record_absence_check(&metrics, result);
        }
        if let Some(n_files) = n_files {
            let summary = metrics.replay_summary();
            tracing::info!(
                events = summary.events,
                n_files,
                alerts = summary.alerts,
                undecodable = summary.undecodable,
                skipped = summary.skipped,
                "{}",
                summary.line(n_files)
            );
        }
    }

    reload_stop.cancel();
    http_stop.cancel();
    // Not aborted: it may be publishing an absence alert. It stops on `shutdown`, once the
    // check in flight is done or the grace is spent (see `absence_checks`).
    if let Some(absence_task) = absence_task {
        let _ = absence_task.await;
    }
    // Both stop promptly once told; a failure to join is a panic already logged.
    let _ = reload_task.await;
    if let Some(http_task) = http_task {
        let _ = http_task.await;
    }
    tracing::info!(?stopped, "meterwatch stopped.");
    Ok(stopped)
}

/// The rules `serve` starts with, and the warnings they call for with this config.
fn load_rules(config: &Config) -> anyhow::Result<RuleSet> {
    let rule_set = RuleSet::load(&config.rules.paths).map_err(|error| {
        anyhow::anyhow!("{error}").context(format!(
            "loading rules from {}",
            display_paths(&config.rules.paths)
        ))
    })?;
    // Not fatal here (unlike `check --config`): a reload may add the rule back, and routes
    // that match nothing lose nothing.
    for problem in config.unmatched_route_rules(rule_set.rules().iter().map(|rule| &*rule.id)) {
        tracing::warn!(problem = %problem, "Route names no loaded rule.");
    }
    if matches!(config.source, SourceConfig::Sqs(_)) && config.state.kind == StateKind::Memory {
        let rules: Vec<&str> = rule_set
            .rules()
            .iter()
            .filter(|rule| rule.enabled && rule.controls.needs_every_event())
            .map(|rule| &*rule.id)
            .collect();
        if !rules.is_empty() {
            tracing::warn!(
                rules = %rules.join(", "),
                "State is in memory: run one consumer on this queue, or use [state] type = \"dynamodb\". Absence and threshold rules judge every event of a key, and consumers sharing a queue each see only their share (false absences, thresholds never reached)."
            );
        }
    }
    if matches!(config.source, SourceConfig::Sqs(_)) {
        for (name, list) in rule_set.lists() {
            let examples: Vec<&str> = list
                .entries()
                .iter()
                .map(String::as_str)
                .filter(|entry| is_example_entry(entry))
                .collect();
            if !examples.is_empty() {
                tracing::warn!(
                    list = %name,
                    entries = %examples.join(", "),
                    "A list still holds the shipped example values: rules judge real calls against them and will alert on your own principals, accounts or products. Replace them with your own in lists.toml, or empty the list to keep its rules quiet."
                );
            }
        }
    }
    Ok(rule_set)
}

/// An entry of the shipped example lists: AWS's documentation account, or an `EXAMPLE`
/// value.
fn is_example_entry(entry: &str) -> bool {
    entry.contains("123456789012") || entry.starts_with("EXAMPLE")
}

/// The configured source, how many pollers read it, and what readiness means for it.
fn build_source(
    config: &Config,
    sdk_config: Option<&aws_config::SdkConfig>,
) -> anyhow::Result<(Source, usize, Health)> {
    Ok(match &config.source {
        SourceConfig::Sqs(sqs) => {
            let sdk_config = sdk_config.context("AWS config is loaded for sqs")?;
            let wait_time = Duration::from_secs(u64::from(sqs.wait_time_secs));
            let client = crate::aws::sqs_client(sdk_config, wait_time);
            // Ready means a receive answered within three long polls (and at least a minute).
            let stale_after = (wait_time * 3).max(Duration::from_secs(60));
            (
                Source::Sqs(SqsSource::new(client, sqs)),
                sqs.pollers.get(),
                Health::remote(stale_after),
            )
        }
        SourceConfig::File { paths } => (
            Source::File(FileSource::files(paths).context("reading event files")?),
            1,
            Health::local(),
        ),
        SourceConfig::Stdin {} => (Source::File(FileSource::stdin()), 1, Health::local()),
    })
}

/// The configured sinks, by name.
fn build_sinks(
    config: &Config,
    sdk_config: Option<&aws_config::SdkConfig>,
) -> anyhow::Result<Vec<NamedSink>> {
    let mut sinks = Vec::new();
    for (name, sink) in config.effective_sinks() {
        let sink = match sink {
            SinkConfig::Sns { topic_arn, format } => {
                let sdk_config = sdk_config.context("AWS config is loaded for sns")?;
                Sink::Sns(SnsSink::new(
                    crate::aws::sns_client(sdk_config),
                    topic_arn,
                    format,
                ))
            }
            SinkConfig::Stdout { format } => Sink::Stdout(StdoutSink::new(format)),
            SinkConfig::File { path } => Sink::File(
                FileSink::open(&path)
                    .with_context(|| format!("opening sink {name} at {}", path.display()))?,
            ),
        };
        sinks.push(NamedSink::new(name, sink));
    }
    Ok(sinks)
}

/// Where the state stage keeps its state.
fn build_store(
    config: &Config,
    sdk_config: Option<&aws_config::SdkConfig>,
) -> anyhow::Result<Store> {
    Ok(match (config.state.kind, &config.state.table) {
        (StateKind::Memory, _) => Store::Memory(MemoryStore::default()),
        (StateKind::Dynamodb, table) => {
            // `validate` requires the table with `type = "dynamodb"`.
            let table = table
                .as_ref()
                .context("state.table is required with dynamodb")?;
            let sdk_config = sdk_config.context("AWS config is loaded for dynamodb")?;
            Store::Dynamodb(DynamoStore::new(
                crate::aws::dynamodb_client(sdk_config),
                table.clone(),
            ))
        }
    })
}

/// Serves `/healthz`, `/readyz` and `/metrics` until `stop`, when the config listens.
async fn spawn_http(
    config: &Config,
    health: &Arc<Health>,
    metrics: &Arc<Metrics>,
    stop: &CancellationToken,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    Ok(match config.effective_listen() {
        Some(listen) => {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding the HTTP server to {listen}"))?;
            let local_addr = listener.local_addr().context("reading the HTTP address")?;
            tracing::info!(listen = %local_addr, "Serving /healthz, /readyz and /metrics.");
            let (health, metrics, stop) = (Arc::clone(health), Arc::clone(metrics), stop.clone());
            Some(tokio::spawn(async move {
                if let Err(error) = http::serve(listener, health, metrics, stop).await {
                    tracing::error!(error = %error, "HTTP server failed.");
                }
            }))
        }
        None => None,
    })
}

/// Asks the queue for its attributes at start-up: readiness comes sooner when it answers,
/// a queue without a redrive policy (no DLQ for poison) is warned about, and a queue that
/// does not exist stops the daemon: polling it for ever would only look healthy. Denied
/// access is only warned about: IAM changes take a while to apply.
async fn probe_queue(source: &Source, health: &Health) -> anyhow::Result<()> {
    match source.probe().await {
        Ok(info) => {
            health.queue_answered();
            if info.has_redrive_policy {
                tracing::info!(
                    max_receive_count = info.max_receive_count,
                    "Queue has a redrive policy."
                );
            } else {
                tracing::warn!(
                    queue_url = %source.describe(),
                    "Queue has no redrive policy: undecodable (poison) messages will be received \
                     again and again forever. Attach a dead-letter queue (RedrivePolicy with maxReceiveCount)."
                );
            }
        }
        Err(SourceError::Call {
            ref code,
            ref message,
            ..
        }) if crate::aws::means_missing(code) => anyhow::bail!(
            "cannot use the queue {}: {message} (check the queue URL, the region, and that the \
             daemon's role may call sqs:GetQueueAttributes on it)",
            source.describe()
        ),
        Err(error) => {
            tracing::warn!(error = %error, "Cannot read the queue's attributes; not ready until it answers.")
        }
    }
    Ok(())
}

/// Probes every sink at start-up (see [`Sink::probe`]): a topic that does not exist stops
/// the daemon, rather than failing every alert later; anything else is warned about (a
/// topic's policy may allow `sns:Publish` alone, and IAM changes take a while to apply).
async fn probe_sinks(sinks: &[NamedSink]) -> anyhow::Result<()> {
    for NamedSink { name, sink } in sinks {
        match sink.probe().await {
            Ok(()) => {}
            Err(error) if crate::aws::means_missing(&error.code) => anyhow::bail!(
                "sink {name}: {error} (check its topic_arn, the region, and that the daemon's \
                 role may call sns:GetTopicAttributes and sns:Publish on it)"
            ),
            Err(error) => tracing::warn!(
                sink = %name,
                error = %error,
                "Cannot read the sink's topic; publishing to it may still work, and failed alerts are retried."
            ),
        }
    }
    Ok(())
}

fn display_paths(paths: &[std::path::PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
