//! The daemon: pollers receive batches from the source and run them through the pipeline
//! until the source is exhausted or shutdown is asked for; then it drains.
//!
//! - [`pipeline`]: one message: decode, evaluate, publish with retries → a verdict.
//! - [`ack`]: one batch: concurrent processing, visibility renewal, batched delete, release.
//! - [`hold`]: messages waiting for their groups' flushes, held apart from their batch so
//!   that pollers go on receiving; bounded.
//! - [`reload`]: rules hot reload (directory watch, SIGHUP).
//! - [`signal`]: SIGTERM/SIGINT as one future.
//!
//! Shutdown: when `shutdown` fires, readiness
//! turns false and pollers stop receiving. A receive in flight is let finish (a long poll
//! answers within `wait_time_secs`): what it returned is made visible again at once, not
//! left invisible for the visibility timeout with its receive count spent for nothing. In-flight
//! batches get the grace period less a margin to finish and delete; then `hard_stop` abandons
//! what is left and makes it visible again at once. A receive still in flight then is
//! dropped: what SQS had handed it comes back after the visibility timeout.
//! Publish → delete is never cut short by `shutdown` itself. Held messages (waiting for their
//! groups, which flush at once on `shutdown`) drain the same way.

pub mod ack;
pub mod backlog;
pub mod hold;
pub mod pipeline;
pub mod reload;
pub mod signal;

use crate::config::{Config, SinkConfig, SourceConfig, StateKind};
use crate::http::{self, Health};
use crate::noise::Noise;
use crate::rules::RuleSet;
use crate::sink::{FileSink, NamedSink, Sink, SnsSink, StdoutSink};
use crate::source::{FileSource, Message, Received, Source, SourceError, SqsSource};
use crate::state::{DynamoStore, MemoryStore, Store};
use crate::telemetry::Metrics;
use crate::telemetry::events::{ReceiveFailed, ReloadTrigger, RulesReloaded};
use anyhow::Context;
use arc_swap::ArcSwap;
use backlog::Backlog;
use hold::Hold;
use pipeline::{Backoff, Pipeline};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Backoff between failed receives: 1 s doubling to 30 s, with jitter.
const RECEIVE_BACKOFF: Backoff = Backoff {
    max_attempts: u32::MAX,
    initial: Duration::from_secs(1),
    max: Duration::from_secs(30),
};

/// How the daemon runs, once assembled.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Concurrent receivers.
    pub pollers: usize,
    /// The shutdown grace period.
    pub grace: Duration,
    /// Messages held at most while they wait for their groups ([`hold`]).
    pub max_held: usize,
}

impl Settings {
    /// The part of the grace kept for making unfinished messages visible again.
    fn release_margin(&self) -> Duration {
        (self.grace / 4).min(Duration::from_secs(3))
    }

    /// The part of the grace in-flight work gets to finish.
    fn drain_budget(&self) -> Duration {
        self.grace.saturating_sub(self.release_margin())
    }
}

/// How [`run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// A finite source was read to the end and everything was processed.
    Exhausted,
    /// Shutdown was asked for and every in-flight message finished in time.
    Drained,
    /// Shutdown was asked for and some messages were abandoned (made visible again).
    GraceExceeded,
}

/// The parts every poller shares.
#[derive(Debug, Clone)]
pub struct Shared {
    pub source: Arc<Source>,
    pub pipeline: Arc<Pipeline>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// What receives saw of a backlog, for the absence ticker.
    pub backlog: Arc<Backlog>,
}

/// Receives and processes until the source is exhausted or `shutdown` fires, then drains
/// within the grace period.
pub async fn run(settings: Settings, shared: Shared, shutdown: CancellationToken) -> Stopped {
    let hard_stop = CancellationToken::new();
    // Pollers and the hold's tasks: draining waits for held messages too.
    let pollers = TaskTracker::new();
    let hold = Hold::new(
        Arc::clone(&shared.source),
        Arc::clone(&shared.metrics),
        pollers.clone(),
        hard_stop.clone(),
        settings.max_held,
    );
    for poller_idx in 0..settings.pollers.max(1) {
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        let hard_stop = hard_stop.clone();
        let hold = hold.clone();
        pollers.spawn(async move { poll(poller_idx, &shared, &shutdown, &hard_stop, &hold).await });
    }
    // Closed with pollers still running: held messages are tracked before the last ends.
    pollers.close();

    // Shutdown first: pollers stop as soon as it fires, and their end must then count as a
    // drain, not as an exhausted source.
    tokio::select! {
        biased;
        () = shutdown.cancelled() => {}
        () = pollers.wait() => return Stopped::Exhausted,
    }
    shared.health.set_draining();
    let in_flight = shared.metrics.messages_in_flight.get();
    tracing::info!(
        in_flight,
        grace_secs = settings.grace.as_secs(),
        "Draining: receiving stopped."
    );
    if tokio::time::timeout(settings.drain_budget(), pollers.wait())
        .await
        .is_ok()
    {
        tracing::info!("Drained; every in-flight message finished.");
        return Stopped::Drained;
    }
    tracing::warn!(
        in_flight = shared.metrics.messages_in_flight.get(),
        "Grace period running out; making unfinished messages visible again."
    );
    hard_stop.cancel();
    if tokio::time::timeout(settings.release_margin(), pollers.wait())
        .await
        .is_err()
    {
        tracing::error!(
            "Could not release every unfinished message in time; they reappear after their visibility timeout."
        );
    }
    Stopped::GraceExceeded
}

/// One poller: receive, process the batch (handing what waits for its groups to `hold`),
/// repeat.
async fn poll(
    poller_idx: usize,
    shared: &Shared,
    shutdown: &CancellationToken,
    hard_stop: &CancellationToken,
    hold: &Hold,
) {
    let mut n_failures = 0;
    while !shutdown.is_cancelled() {
        // Places first: a batch received with the hold full could not be held, and would
        // wait unrenewed.
        let reserved = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            reserved = hold.reserve() => reserved,
        };
        let started = tokio::time::Instant::now();
        // A queue's receive is not cut by `shutdown`: it may already hold messages, which
        // would stay invisible for the visibility timeout; only the hard stop drops it. A
        // file or stdin loses nothing by stopping mid-read (and stdin may never answer).
        let lets_finish = shared.source.leases_messages();
        let received = tokio::select! {
            biased;
            () = hard_stop.cancelled() => break,
            () = shutdown.cancelled(), if !lets_finish => break,
            received = shared.source.receive() => received,
        };
        shared
            .metrics
            .receive_seconds
            .observe(started.elapsed().as_secs_f64());
        match received {
            Ok(Received::Messages(messages)) => {
                n_failures = 0;
                shared.health.queue_answered();
                let now = std::time::SystemTime::now();
                shared.metrics.receive_answered(now);
                for sent_at in messages
                    .iter()
                    .filter(|m| m.receive_count <= 1)
                    .filter_map(|m| m.sent_at)
                {
                    let age = now.duration_since(sent_at).unwrap_or_default();
                    shared
                        .metrics
                        .message_age_seconds
                        .observe(age.as_secs_f64());
                }
                shared.backlog.observe(
                    messages.iter().map(|m| (m.receive_count, m.sent_at)),
                    now,
                    tokio::time::Instant::now(),
                );
                if messages.is_empty() {
                    continue;
                }
                if shutdown.is_cancelled() {
                    // Received after shutdown began: visible again at once, unprocessed.
                    let messages: Vec<&Message> = messages.iter().collect();
                    ack::release(&shared.source, &shared.metrics, &messages).await;
                    break;
                }
                tracing::debug!(poller_idx, n_messages = messages.len(), "Received batch.");
                ack::handle_batch(
                    &shared.source,
                    &shared.pipeline,
                    &shared.metrics,
                    messages,
                    hard_stop,
                    (hold, reserved),
                )
                .await;
            }
            Ok(Received::Exhausted) => break,
            Err(error) => {
                n_failures += 1;
                let delay = RECEIVE_BACKOFF.delay(n_failures);
                ReceiveFailed {
                    error: &error,
                    retry_in_ms: delay.as_millis(),
                }
                .emit(&shared.metrics);
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

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
        max_held: hold::DEFAULT_MAX_HELD,
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
    let stopped = run(settings, shared, shutdown).await;
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

/// The absence ticker: checks every absence rule's keys until `shutdown`, publishing through
/// the pipeline's sinks; keeps the pending-absences and open-groups gauges current. A check
/// in flight at `shutdown` may finish within `budget` (the drain's); one cut off after it
/// sends nothing twice and loses nothing (see `Noise::check_absences`): its alert is sent
/// by a later check.
async fn absence_checks(
    noise: Arc<Noise>,
    pipeline: Arc<Pipeline>,
    metrics: Arc<Metrics>,
    backlog: Arc<Backlog>,
    shutdown: CancellationToken,
    budget: Duration,
) {
    let report = |result: Result<crate::noise::AbsenceReport, crate::state::StateError>| {
        metrics
            .groups_open
            .set(i64::try_from(noise.n_open_groups()).unwrap_or(i64::MAX));
        pipeline::record_absence_check(&metrics, result);
    };
    let checks = noise.run_absence_checks(
        pipeline.rules(),
        crate::noise::CHECK_EVERY,
        pipeline.as_ref(),
        report,
        || backlog.holds_checks(tokio::time::Instant::now()),
        &shutdown,
    );
    tokio::pin!(checks);
    tokio::select! {
        () = &mut checks => return,
        () = shutdown.cancelled() => {}
    }
    if tokio::time::timeout(budget, checks).await.is_err() {
        tracing::warn!(
            budget_ms = budget.as_millis(),
            "The absence check in flight did not finish within the shutdown grace; a later \
             check (after a restart) sends what it was sending."
        );
    }
}

fn display_paths(paths: &[std::path::PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::pipeline::tests::{
        FAILING_RULE, GROUPED_RULE, fixture, ok_event, rules, throttled,
    };
    use crate::sink::MemorySink;
    use crate::source::MemorySource;
    use crate::state::MemoryStore;

    struct Harness {
        shared: Shared,
    }

    impl Harness {
        /// Runs the daemon until its source is exhausted, with `grace_secs` of grace.
        async fn run_to_end(&self, grace_secs: u64) -> Stopped {
            run(
                settings(grace_secs),
                self.shared.clone(),
                CancellationToken::new(),
            )
            .await
        }

        fn new(source: MemorySource, backoff: Backoff) -> Self {
            let metrics = Arc::new(Metrics::default());
            // State on tokio's clock: paused time moves dedup leases too.
            let epoch = jiff::Timestamp::from_second(1_767_225_600).expect("valid epoch");
            let noise = Noise::new(
                Store::Memory(MemoryStore::default()),
                crate::state::Clock::tokio_from(epoch),
                CancellationToken::new(),
            );
            let pipeline = Pipeline::new(
                rules(FAILING_RULE),
                vec![NamedSink::new("memory", Sink::Memory(MemorySink::new()))],
                backoff,
                Arc::clone(&metrics),
            )
            .with_noise(Arc::new(noise));
            let health = Arc::new(Health::local());
            health.set_rules_loaded();
            Harness {
                shared: Shared {
                    source: Arc::new(Source::Memory(source)),
                    pipeline: Arc::new(pipeline),
                    metrics,
                    health,
                    backlog: Arc::default(),
                },
            }
        }

        /// With the grouped rule (`GROUPED_RULE`, or as `with_rule` changes it) and an
        /// ungrouped critical one, and groups that flush at once when `shutdown` fires (as
        /// the daemon's do).
        fn grouped(source: MemorySource, backoff: Backoff, shutdown: &CancellationToken) -> Self {
            Harness::grouped_as(source, backoff, shutdown, GROUPED_RULE)
        }

        fn grouped_as(
            source: MemorySource,
            backoff: Backoff,
            shutdown: &CancellationToken,
            grouped_rule: &str,
        ) -> Self {
            let harness = Harness::new(source, backoff.clone());
            let noise = Noise::new(
                Store::Memory(MemoryStore::default()),
                crate::state::Clock::tokio_from(jiff::Timestamp::UNIX_EPOCH),
                shutdown.clone(),
            );
            let pipeline = Pipeline::new(
                rules(&format!("{grouped_rule}{CRITICAL_RULE}")),
                vec![NamedSink::new("memory", Sink::Memory(MemorySink::new()))],
                backoff,
                Arc::clone(&harness.shared.metrics),
            )
            .with_noise(Arc::new(noise));
            Harness {
                shared: Shared {
                    pipeline: Arc::new(pipeline),
                    ..harness.shared
                },
            }
        }

        fn source(&self) -> &MemorySource {
            match self.shared.source.as_ref() {
                Source::Memory(memory) => memory,
                other => panic!("expected memory source, got {other:?}"),
            }
        }

        fn sink(&self) -> &MemorySink {
            match &self.shared.pipeline.sinks()[0].sink {
                Sink::Memory(memory) => memory,
                other => panic!("expected memory sink, got {other:?}"),
            }
        }

        fn metrics(&self) -> String {
            self.shared.metrics.encode()
        }
    }

    fn quick_backoff(max_attempts: u32) -> Backoff {
        fixed_backoff(max_attempts, Duration::from_millis(10))
    }

    /// Waits of up to `wait` between attempts, never more.
    fn fixed_backoff(max_attempts: u32, wait: Duration) -> Backoff {
        Backoff {
            max_attempts,
            initial: wait,
            max: wait,
        }
    }

    fn settings(grace_secs: u64) -> Settings {
        Settings {
            pollers: 2,
            grace: Duration::from_secs(grace_secs),
            max_held: hold::DEFAULT_MAX_HELD,
        }
    }

    const CRITICAL_RULE: &str = "[[rule]]\nid = \"critical-product\"\ntitle = \"Invalid product code\"\nseverity = \"critical\"\n\
        match.detail.errorCode = [\"InvalidProductCodeException\"]\n";

    fn critical() -> String {
        fixture("failing/meterusage-invalid-product-code.eventbridge.json")
    }

    fn published_rules(harness: &Harness) -> Vec<String> {
        harness
            .sink()
            .alerts()
            .iter()
            .map(|alert| alert.rule.to_string())
            .collect()
    }

    /// Lets the daemon's tasks run until `at` (after the test started).
    async fn until(started: tokio::time::Instant, at: Duration) {
        tokio::time::sleep_until(started + at).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_waiting_for_its_group_does_not_hold_up_the_next() {
        // One poller, one message a batch: before, the critical message waited for the
        // grouped one's flush.
        let source = MemorySource::new([throttled(), critical()], 1)
            .keep_open()
            .with_visibility_timeout(Duration::from_secs(10));
        let shutdown = CancellationToken::new();
        let harness = Harness::grouped(source, quick_backoff(3), &shutdown);
        let settings = Settings {
            pollers: 1,
            ..settings(30)
        };
        let started = tokio::time::Instant::now();
        let task = tokio::spawn(run(settings, harness.shared.clone(), shutdown.clone()));

        until(started, Duration::from_millis(100)).await;
        assert_eq!(published_rules(&harness), ["critical-product"]);
        assert_eq!(harness.source().deleted(), ["m1"], "m0 waits for its group");
        assert!(
            harness
                .metrics()
                .contains("meterwatch_messages_in_flight 1")
        );

        // A group's first batch waits 2 s.
        until(started, Duration::from_millis(2_100)).await;
        assert_eq!(
            published_rules(&harness),
            ["critical-product", "throttled-burst"]
        );
        assert_eq!(harness.source().deleted(), ["m1", "m0"]);
        assert!(
            harness
                .metrics()
                .contains("meterwatch_messages_in_flight 0")
        );

        shutdown.cancel();
        assert_eq!(task.await.expect("joins"), Stopped::Drained);
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_message_stays_invisible_until_its_group_is_out() {
        let source = MemorySource::new([throttled()], 1)
            .keep_open()
            .with_visibility_timeout(Duration::from_secs(10));
        let shutdown = CancellationToken::new();
        let rule = GROUPED_RULE.replace("wait = \"2s\"", "wait = \"62s\"");
        let harness = Harness::grouped_as(source, quick_backoff(3), &shutdown, &rule);
        let started = tokio::time::Instant::now();
        let task = tokio::spawn(run(settings(30), harness.shared.clone(), shutdown.clone()));
        let renewals = || {
            let changes = harness.source().visibility_changes();
            assert!(
                changes
                    .iter()
                    .all(|change| *change == ("m0".to_owned(), Duration::from_secs(10))),
                "{changes:?}"
            );
            changes.len()
        };

        until(started, Duration::from_secs(61)).await;
        assert!(harness.source().deleted().is_empty());
        // Every 5 s (half the timeout) since it was received.
        assert_eq!(renewals(), 12);
        until(started, Duration::from_secs(63)).await;
        assert_eq!(harness.source().deleted(), ["m0"]);
        assert_eq!(harness.sink().accepted(), 1);
        until(started, Duration::from_secs(90)).await;
        assert_eq!(renewals(), 12, "none once deleted");

        shutdown.cancel();
        assert_eq!(task.await.expect("joins"), Stopped::Drained);
    }

    fn throttled_with_id(event_id: &str) -> String {
        let mut event: serde_json::Value =
            serde_json::from_str(&throttled()).expect("fixture is JSON");
        event["detail"]["eventID"] = serde_json::Value::String(event_id.to_owned());
        event.to_string()
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_flushes_held_groups_and_the_drain_waits_for_them() {
        let source = MemorySource::new([throttled()], 1).keep_open();
        let shutdown = CancellationToken::new();
        let rule = GROUPED_RULE.replace("wait = \"2s\"", "wait = \"10m\"");
        let harness = Harness::grouped_as(source, quick_backoff(3), &shutdown, &rule);
        let started = tokio::time::Instant::now();
        let task = tokio::spawn(run(settings(5), harness.shared.clone(), shutdown.clone()));
        until(started, Duration::from_millis(500)).await;
        assert!(harness.source().deleted().is_empty());
        shutdown.cancel();
        assert_eq!(task.await.expect("joins"), Stopped::Drained);
        // Not the group's 10-minute wait: only the receive in flight is let finish.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(harness.source().deleted(), ["m0"]);
        assert_eq!(published_rules(&harness), ["throttled-burst"]);
    }

    #[tokio::test(start_paused = true)]
    async fn held_messages_are_released_when_grace_runs_out() {
        let source = MemorySource::new([throttled(), throttled_with_id("b")], 1).keep_open();
        let shutdown = CancellationToken::new();
        let backoff = fixed_backoff(100, Duration::from_secs(60));
        let harness = Harness::grouped(source, backoff, &shutdown);
        harness.sink().fail_next(1_000, true);
        let task = tokio::spawn(run(settings(8), harness.shared.clone(), shutdown.clone()));
        tokio::time::sleep(Duration::from_millis(500)).await;
        shutdown.cancel();
        assert_eq!(task.await.expect("joins"), Stopped::GraceExceeded);
        assert!(harness.source().deleted().is_empty());
        let mut released = harness.source().visibility_changes();
        released.sort();
        assert_eq!(
            released,
            [
                ("m0".to_owned(), Duration::ZERO),
                ("m1".to_owned(), Duration::ZERO)
            ]
        );
        assert!(
            harness
                .metrics()
                .contains("meterwatch_messages_failed_total{reason=\"shutdown\"} 2")
        );
        assert!(
            harness
                .metrics()
                .contains("meterwatch_messages_in_flight 0")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_hold_keeps_pollers_from_receiving() {
        // Room for one message: the critical one is received only once the grouped one is
        // out of the hold.
        let source = MemorySource::new([throttled(), critical()], 1).keep_open();
        let shutdown = CancellationToken::new();
        let harness = Harness::grouped(source, quick_backoff(3), &shutdown);
        let settings = Settings {
            max_held: 1,
            ..settings(30)
        };
        let started = tokio::time::Instant::now();
        let task = tokio::spawn(run(settings, harness.shared.clone(), shutdown.clone()));
        until(started, Duration::from_millis(1_900)).await;
        assert!(published_rules(&harness).is_empty());
        until(started, Duration::from_millis(2_100)).await;
        assert_eq!(
            published_rules(&harness),
            ["throttled-burst", "critical-product"]
        );
        shutdown.cancel();
        assert_eq!(task.await.expect("joins"), Stopped::Drained);
    }

    #[tokio::test(start_paused = true)]
    async fn finite_source_is_processed_and_only_done_messages_deleted() {
        let bodies = [throttled(), ok_event(), "not json".to_owned(), throttled()];
        let harness = Harness::new(MemorySource::new(bodies, 3), quick_backoff(3));
        let stopped = run(
            settings(5),
            harness.shared.clone(),
            CancellationToken::new(),
        )
        .await;
        assert_eq!(stopped, Stopped::Exhausted);
        let mut deleted = harness.source().deleted();
        deleted.sort();
        assert_eq!(
            deleted,
            ["m0", "m1", "m3"],
            "the poison message m2 is never deleted"
        );
        // m3 repeats m0's event: deleted, but deduplicated to one alert.
        assert_eq!(harness.sink().accepted(), 1);
        let text = harness.metrics();
        assert!(
            text.contains("meterwatch_messages_received_total 4"),
            "{text}"
        );
        assert!(
            text.contains("meterwatch_messages_deleted_total 3"),
            "{text}"
        );
        assert!(
            text.contains("meterwatch_messages_poison_total{reason=\"not_json\"} 1"),
            "{text}"
        );
        assert!(text.contains("meterwatch_messages_in_flight 0"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn failed_publish_leaves_the_message() {
        let harness = Harness::new(MemorySource::new([throttled()], 10), quick_backoff(3));
        harness.sink().fail_next(3, true);
        harness.run_to_end(5).await;
        assert!(harness.source().deleted().is_empty());
        assert_eq!(harness.sink().attempts(), 3);
        assert!(
            harness
                .metrics()
                .contains("meterwatch_messages_failed_total{reason=\"publish\"} 1")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn refused_delete_entry_is_counted_not_assumed() {
        let source = MemorySource::new([throttled(), throttled()], 10);
        source.fail_delete_of("m1");
        let harness = Harness::new(source, quick_backoff(1));
        harness.run_to_end(5).await;
        assert_eq!(harness.source().deleted(), ["m0"]);
        let text = harness.metrics();
        assert!(
            text.contains("meterwatch_messages_deleted_total 1"),
            "{text}"
        );
        assert!(
            text.contains("meterwatch_messages_failed_total{reason=\"delete\"} 1"),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn slow_messages_have_their_visibility_renewed() {
        let source =
            MemorySource::new([throttled()], 10).with_visibility_timeout(Duration::from_secs(10));
        // Four retryable failures, 4 s apart at most: up to 16 s of work on one message (the
        // jitter seeded, so the same every run).
        fastrand::seed(20_200_710);
        let backoff = fixed_backoff(5, Duration::from_secs(4));
        let harness = Harness::new(source, backoff);
        harness.sink().fail_next(4, true);
        let started = tokio::time::Instant::now();
        harness.run_to_end(60).await;
        let elapsed = started.elapsed();
        assert_eq!(harness.source().deleted(), ["m0"]);
        let renewals = harness.source().visibility_changes();
        // One renewal per 5 s (half the timeout) of work.
        let expected = (elapsed.as_secs() / 5) as usize;
        assert_eq!(
            renewals.len(),
            expected,
            "elapsed {elapsed:?}: {renewals:?}"
        );
        assert!(
            renewals
                .iter()
                .all(|(id, timeout)| id == "m0" && *timeout == Duration::from_secs(10))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_done_message_stays_invisible_while_its_batch_waits_for_a_slow_one() {
        // m1 raises no alert and is done at once; m0 retries 20 times, 0 to 4 s apart (about
        // 40 s). The jitter is seeded: the runtime runs on this thread, so the waits, and the
        // renewals due, are the same every run.
        fastrand::seed(20_200_710);
        let source = MemorySource::new([throttled(), ok_event()], 10)
            .with_visibility_timeout(Duration::from_secs(10));
        let backoff = fixed_backoff(21, Duration::from_secs(4));
        let harness = Harness::new(source, backoff);
        harness.sink().fail_next(20, true);
        let started = tokio::time::Instant::now();
        harness.run_to_end(60).await;
        let n_due = (started.elapsed().as_secs() / 5) as usize;
        assert_eq!(harness.source().deleted(), ["m1", "m0"], "in one batch");
        let renewals = harness.source().visibility_changes();
        let renewed = |id: &str| renewals.iter().filter(|(m, _)| m == id).count();
        assert!(n_due >= 1);
        assert_eq!(
            (renewed("m0"), renewed("m1")),
            (n_due, n_due),
            "{renewals:?}"
        );
    }

    /// SQS refuses a visibility beyond 12 hours from the receive: a late failure's backoff
    /// is cut to what is left of them.
    #[tokio::test(start_paused = true)]
    async fn a_backoff_ends_within_twelve_hours_of_the_receive() {
        let message = crate::source::Message {
            id: "m0".to_owned(),
            body: String::new(),
            receipt: crate::source::Receipt("r0".to_owned()),
            receive_count: 5,
            sent_at: None,
        };
        let metrics = Metrics::default();
        let received_at = tokio::time::Instant::now();
        let visibility = Some(Duration::from_secs(300));
        let verdict = || pipeline::Verdict::Failed(crate::telemetry::metrics::FailReason::Publish);
        // 300 s × 4^4 is over 21 hours: at the receive, the 12 hours less a margin.
        let at_once = ack::outcome(&message, verdict(), (visibility, received_at), &metrics);
        assert!(
            matches!(at_once, ack::Outcome::Retry(d) if d == Duration::from_secs(12 * 3600 - 60))
        );
        tokio::time::advance(Duration::from_secs(11 * 3600)).await;
        let late = ack::outcome(&message, verdict(), (visibility, received_at), &metrics);
        assert!(matches!(late, ack::Outcome::Retry(d) if d == Duration::from_secs(3600 - 60)));
    }

    #[test]
    fn retries_back_off_with_the_receive_count_up_to_twelve_hours() {
        let minute = Duration::from_secs(60);
        let backoffs: Vec<Duration> = (1..=5).map(|n| ack::retry_after(minute, n)).collect();
        assert_eq!(
            backoffs,
            [minute, minute * 4, minute * 16, minute * 64, minute * 256]
        );
        // The shipped redrive (5 receives) outlasts an hour's outage: the 5th receive comes
        // 85 minutes after the first failure.
        assert!(backoffs[..4].iter().sum::<Duration>() > Duration::from_secs(3600));
        assert_eq!(ack::retry_after(minute, 9), Duration::from_secs(12 * 3600));
        assert_eq!(
            ack::retry_after(minute, u32::MAX),
            Duration::from_secs(12 * 3600)
        );
        // A claim found on a first or second receive: the backoff (its holder is likely
        // publishing, if slowly).
        let lease = crate::state::dedup::LEASE;
        assert_eq!(ack::in_flight_after(minute, 1, lease), minute);
        assert_eq!(ack::in_flight_after(minute, 2, lease), minute * 4);
        // Still standing on a later one: its rest, if longer than the backoff.
        let short = Duration::from_secs(2);
        assert_eq!(
            ack::in_flight_after(short, 3, lease),
            lease + Duration::from_secs(5)
        );
        assert_eq!(ack::in_flight_after(minute, 4, lease), minute * 64);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_message_comes_back_after_a_backoff_growing_with_its_receive_count() {
        // Its third receive: SNS has been failing for a while.
        let source = MemorySource::new([throttled()], 10)
            .with_visibility_timeout(Duration::from_secs(60))
            .with_receive_count(3);
        let harness = Harness::new(source, quick_backoff(3));
        harness.sink().fail_next(3, true);
        harness.run_to_end(5).await;
        assert!(harness.source().deleted().is_empty());
        assert_eq!(
            harness.source().visibility_changes(),
            [("m0".to_owned(), Duration::from_secs(16 * 60))]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_poison_message_keeps_the_queues_visibility_timeout() {
        let source = MemorySource::new(["not json"], 10)
            .with_visibility_timeout(Duration::from_secs(60))
            .with_receive_count(3);
        let harness = Harness::new(source, quick_backoff(3));
        harness.run_to_end(5).await;
        assert!(harness.source().deleted().is_empty());
        assert!(harness.source().visibility_changes().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_held_by_a_dedup_claim_comes_back_when_the_claim_runs_out() {
        // Two deliveries of one event in one batch, on their third receive (the claim
        // already stood on the first two): whichever claims first publishes (after two
        // failures); the other finds its claim standing.
        // A short visibility, so that the backoff (2 s × 4²) is shorter than the lease.
        let source = MemorySource::new([throttled(), throttled()], 10)
            .with_visibility_timeout(Duration::from_secs(2))
            .with_receive_count(3);
        let harness = Harness::new(source, quick_backoff(3));
        harness.sink().fail_next(2, true);
        harness.run_to_end(5).await;
        let deleted = harness.source().deleted();
        assert_eq!(deleted.len(), 1, "{deleted:?}");
        assert_eq!(harness.sink().accepted(), 1);
        let held = if deleted[0] == "m0" { "m1" } else { "m0" };
        // Not back after its backoff, again and again into the DLQ while the claim stands,
        // but once the claim's lease has run out.
        assert_eq!(
            harness.source().visibility_changes(),
            [(
                held.to_owned(),
                crate::state::dedup::LEASE + Duration::from_secs(5)
            )]
        );
        assert!(
            harness
                .metrics()
                .contains("meterwatch_messages_failed_total{reason=\"in_flight\"} 1")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_duplicate_delivery_finding_a_claim_comes_back_soon_to_be_deleted() {
        // First receive: the claim's holder is publishing right now, most likely.
        let source = MemorySource::new([throttled(), throttled()], 10)
            .with_visibility_timeout(Duration::from_secs(60));
        let harness = Harness::new(source, quick_backoff(3));
        harness.sink().fail_next(2, true);
        harness.run_to_end(5).await;
        let deleted = harness.source().deleted();
        let held = if deleted[0] == "m0" { "m1" } else { "m0" };
        assert_eq!(
            harness.source().visibility_changes(),
            [(held.to_owned(), Duration::from_secs(60))]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn messages_a_receive_in_flight_at_shutdown_returns_are_released_at_once() {
        // The receive is in flight when SIGTERM comes, and answers a second later.
        let source = MemorySource::new([throttled(), ok_event()], 10)
            .answer_after(Duration::from_secs(2))
            .keep_open();
        let harness = Harness::new(source, quick_backoff(3));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(settings(5), harness.shared.clone(), shutdown.clone()));
        tokio::time::sleep(Duration::from_secs(1)).await;
        shutdown.cancel();
        assert_eq!(task.await.expect("joins"), Stopped::Drained);
        // Unprocessed, visible again at once (not after the visibility timeout).
        assert!(harness.source().deleted().is_empty());
        assert_eq!(harness.sink().attempts(), 0);
        assert_eq!(
            harness.source().visibility_changes(),
            [
                ("m0".to_owned(), Duration::ZERO),
                ("m1".to_owned(), Duration::ZERO)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_drains_in_flight_work_then_stops() {
        let source = MemorySource::new([throttled()], 10).keep_open();
        let harness = Harness::new(source, quick_backoff(3));
        harness.sink().fail_next(2, true);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(settings(5), harness.shared.clone(), shutdown.clone()));
        // The retries take at most 20 ms; the source then idles.
        tokio::time::sleep(Duration::from_secs(1)).await;
        shutdown.cancel();
        assert_eq!(task.await.expect("joins"), Stopped::Drained);
        assert_eq!(harness.source().deleted(), ["m0"]);
        assert!(harness.source().visibility_changes().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn unfinished_messages_are_released_when_grace_runs_out() {
        let source = MemorySource::new([throttled(), ok_event()], 10).keep_open();
        let backoff = fixed_backoff(100, Duration::from_secs(60));
        let harness = Harness::new(source, backoff);
        harness.sink().fail_next(1_000, true);
        let shutdown = CancellationToken::new();
        let started = tokio::time::Instant::now();
        let task = tokio::spawn(run(settings(8), harness.shared.clone(), shutdown.clone()));
        tokio::time::sleep(Duration::from_secs(1)).await;
        shutdown.cancel();
        assert_eq!(task.await.expect("joins"), Stopped::GraceExceeded);
        assert!(
            started.elapsed() <= Duration::from_secs(1 + 8),
            "within the grace"
        );
        // m1 raised no alert and was deleted; m0 was stuck publishing and is released.
        assert_eq!(harness.source().deleted(), ["m1"]);
        assert_eq!(
            harness.source().visibility_changes(),
            [("m0".to_owned(), Duration::ZERO)]
        );
        assert!(
            harness
                .metrics()
                .contains("meterwatch_messages_failed_total{reason=\"shutdown\"} 1")
        );
    }
}
