//! `meterwatch run`: the daemon. With no config it reads JSON lines on stdin and prints
//! alerts on stdout; `--events PATH...` reads event files instead and exits 0 once they are
//! all processed; a queue (`--queue-url` or `[source] type = "sqs"`) makes it a service that
//! runs until SIGTERM or SIGINT.

use crate::config::{Config, ConfigError, Overrides, SourceConfig};
use crate::daemon;
use crate::sink::StdoutFormat;
use crate::telemetry::{LogFormat, logging};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// Runs the pipeline: source → rules → sinks.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config file (TOML; every key is documented in meterwatch.toml).
    #[arg(long, env = "METERWATCH_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    overrides: OverrideArgs,
    /// Log format on stderr.
    #[arg(long, env = "METERWATCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    log_format: LogFormat,
}

/// The environment variables and flags laid over the config file: `run`'s, and
/// `check --config`'s, so that a check validates what `run` would run.
#[derive(Debug, Clone, clap::Args)]
pub struct OverrideArgs {
    /// Rule files or directories, replacing `rules.paths` (repeat the flag, or separate them
    /// with commas, as in the variable).
    #[arg(long, env = "METERWATCH_RULES", value_delimiter = ',')]
    rules: Option<Vec<PathBuf>>,
    /// Read this SQS queue (sets the sqs source).
    #[arg(long, env = "METERWATCH_QUEUE_URL")]
    queue_url: Option<String>,
    /// Read these event files or directories, then exit (sets the file source).
    #[arg(long, num_args = 1..)]
    events: Option<Vec<PathBuf>>,
    /// Publish alerts to this SNS topic (sets the sns sink named `alerts`).
    #[arg(long, env = "METERWATCH_TOPIC_ARN")]
    topic_arn: Option<String>,
    /// Also publish AWS Chatbot custom notifications to this SNS topic, the one Chatbot relays
    /// to Slack or Teams (sets the sns sink named `chatbot`, format `chatbot`; empty: none).
    #[arg(long, env = "METERWATCH_CHATBOT_TOPIC_ARN")]
    chatbot_topic_arn: Option<String>,
    /// Keep state in this DynamoDB table (sets `[state] type = "dynamodb"`; empty: as
    /// configured).
    #[arg(long, env = "METERWATCH_STATE_TABLE")]
    state_table: Option<String>,
    /// Serve /healthz, /readyz and /metrics on this address.
    #[arg(long, env = "METERWATCH_LISTEN")]
    listen: Option<SocketAddr>,
    /// How stdout sinks write alerts: `text` (a readable block each), `json` (JSON lines) or
    /// `auto` (text on a terminal, else JSON; the default, or each sink's `format`).
    #[arg(long, value_enum)]
    output: Option<StdoutFormat>,
}

impl OverrideArgs {
    /// The config `run` runs: defaults < `file` < environment and flags, validated.
    pub fn config(&self, file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        config.apply(Overrides {
            rules: self.rules.clone(),
            queue_url: self.queue_url.clone(),
            events: self.events.clone(),
            topic_arn: self.topic_arn.clone(),
            chatbot_topic_arn: self.chatbot_topic_arn.clone(),
            state_table: self.state_table.clone(),
            listen: self.listen,
            output: self.output,
        });
        config.validate()?;
        Ok(config)
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    // Validate before anything else: a bad config exits 2 without binding a port or calling AWS.
    let config = args.overrides.config(args.config.as_deref())?;
    logging::init(args.log_format);
    // A queue gets every core; files and stdin one thread, so alerts keep the input's order.
    let mut builder = match config.source {
        SourceConfig::Sqs(_) => tokio::runtime::Builder::new_multi_thread(),
        SourceConfig::File { .. } | SourceConfig::Stdin {} => {
            tokio::runtime::Builder::new_current_thread()
        }
    };
    let runtime = builder
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let served = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let signals = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                let signal = daemon::signal::terminated().await;
                tracing::info!(signal, "Shutdown requested.");
                shutdown.cancel();
            }
        });
        let stopped = daemon::serve(&config, args.config.as_deref(), shutdown).await;
        signals.abort();
        stopped
    });
    match served {
        Ok(_) => Ok(ExitCode::SUCCESS),
        // Logging is up: the reason goes where the logs go (JSON in production), once.
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "meterwatch cannot run.");
            Ok(ExitCode::from(2))
        }
    }
}

/// `meterwatch check --config FILE`: the config `run` would run, the environment's and the
/// flags' overrides applied ([`OverrideArgs::config`]), parsed and validated (unknown keys,
/// ranges, ARNs and URLs, routes), then the rules it names when they exist on this machine
/// (a config written for a container names paths inside it), and that every rule pattern of
/// a route matches one of them. Exit 0 valid, 1 invalid, 2 unreadable.
pub fn check_config(path: &Path, overrides: &OverrideArgs) -> anyhow::Result<ExitCode> {
    let config = match overrides.config(Some(path)) {
        Ok(config) => config,
        Err(error @ ConfigError::Read { .. }) => return Err(error.into()),
        Err(error) => {
            eprintln!("{error}");
            return Ok(ExitCode::from(1));
        }
    };
    let missing: Vec<&Path> = config
        .rules
        .paths
        .iter()
        .map(PathBuf::as_path)
        .filter(|rules| !rules.exists())
        .collect();
    if !missing.is_empty() {
        for rules in missing {
            eprintln!(
                "note: rules not checked: {} does not exist here",
                rules.display()
            );
        }
        println!("ok: {} is valid", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    match crate::rules::RuleSet::load(&config.rules.paths) {
        Ok(rule_set) => {
            let problems =
                config.unmatched_route_rules(rule_set.rules().iter().map(|rule| &*rule.id));
            if !problems.is_empty() {
                for problem in problems {
                    eprintln!("{problem}");
                }
                return Ok(ExitCode::from(1));
            }
            println!("ok: {} is valid; {} rules", path.display(), rule_set.len());
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{error}");
            Ok(ExitCode::from(1))
        }
    }
}
