//! The daemon's configuration: one tree, read from TOML, layered, validated before use.
//!
//! Layering, lowest first: the defaults below < the `--config` file < `METERWATCH_*`
//! environment variables < command-line flags (clap merges the last two: a flag wins over its
//! variable). [`Config::load`] reads a file, [`Config::apply`] lays [`Overrides`] on top, and
//! [`Config::validate`] checks every range and reference at once, reporting every problem.
//! Nothing binds a port or calls AWS before `validate` has passed.
//!
//! AWS settings (credentials, region, endpoint) are deliberately absent: they come from
//! aws-config's default chain and `AWS_ENDPOINT_URL*` only (see [`crate::aws`]).
//!
//! `meterwatch.toml` at the repository root documents every key; a test parses it.

use crate::alert::format::Format;
use crate::diagnostic::Diagnostic;
use crate::sink::StdoutFormat;
use crate::sink::route::{RouteConfig, RouteProblem, Router};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use toml::Spanned;

/// The largest SQS long-poll wait, in seconds.
pub const MAX_WAIT_TIME_SECS: u32 = 20;
/// The most messages one ReceiveMessage call returns.
pub const MAX_RECEIVE_MESSAGES: u32 = 10;
/// The longest SQS visibility timeout, in seconds (12 hours).
pub const MAX_VISIBILITY_TIMEOUT_SECS: u32 = 43_200;
/// The name of the SNS sink that `--topic-arn` sets.
pub const TOPIC_ARN_SINK: &str = "alerts";
/// The sink `--chatbot-topic-arn` (`METERWATCH_CHATBOT_TOPIC_ARN`) sets: SNS in the `chatbot`
/// format, for the topic AWS Chatbot relays to Slack or Teams (deploy/'s `ChatbotTopicArn`).
pub const CHATBOT_TOPIC_ARN_SINK: &str = "chatbot";
/// The sink used when none is configured.
pub const STDOUT_SINK: &str = "stdout";

/// Everything `meterwatch run` needs. `Default` is the documented defaults: rules from
/// `rules/`, events from stdin, alerts to stdout.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the rules are and whether to reload them when they change.
    #[serde(default)]
    pub rules: RulesConfig,
    /// Where messages come from.
    #[serde(default)]
    pub source: SourceConfig,
    /// Where alerts go, by name. Empty means one stdout sink named `stdout`.
    #[serde(default)]
    pub sinks: BTreeMap<String, SinkConfig>,
    /// `[[route]]`: which sinks get which alerts, tried in order; the first route that
    /// matches an alert sends it to its sinks and stops unless it has `continue = true`. The
    /// last route must match every alert. No routes: every alert goes to every sink.
    #[serde(default, rename = "route")]
    #[schemars(with = "Vec<RouteConfig>")]
    pub routes: Vec<Spanned<RouteConfig>>,
    /// How a publish that fails is retried before its message is left for redelivery.
    #[serde(default)]
    pub retry: RetryConfig,
    /// Where deduplication, throttling and absence state is kept.
    #[serde(default)]
    pub state: StateConfig,
    /// The health and metrics HTTP server.
    #[serde(default)]
    pub http: HttpConfig,
    /// Draining on SIGTERM and SIGINT.
    #[serde(default)]
    pub shutdown: ShutdownConfig,
    /// The file and text this config was read from, to place problems at `file:line:col`.
    #[serde(skip)]
    #[schemars(skip)]
    origin: Origin,
}

/// Where a config was read from.
#[derive(Debug, Clone, Default)]
struct Origin {
    /// `None` for text not read from a file (and for the defaults).
    file: Option<PathBuf>,
    text: Arc<str>,
}

impl Origin {
    fn file(&self) -> &Path {
        self.file.as_deref().unwrap_or(Path::new("(config)"))
    }
}

/// Where a config was read from does not change what it says.
impl PartialEq for Origin {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

/// `[rules]`
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// Rule files, or directories whose `*.toml` files are read. Default `["rules"]`.
    #[serde(default = "default_rule_paths")]
    pub paths: Vec<PathBuf>,
    /// Reload when a file in these directories changes (SIGHUP always reloads). Default true.
    #[serde(default = "default_true")]
    pub watch: bool,
    /// How long the directory must be quiet before a change is reloaded. Default 500.
    #[serde(default = "default_debounce_ms")]
    pub debounce_ms: u64,
    /// The most alerts one message raises; each rule's alerts beyond it become one summary
    /// alert saying how many were held back. A message's alert documents over 16 MiB make it
    /// poison, left for the DLQ. Default 100.
    #[serde(default = "default_max_alerts_per_message")]
    pub max_alerts_per_message: NonZeroUsize,
}

impl RulesConfig {
    /// What one message may raise.
    pub fn budget(&self) -> crate::rules::Budget {
        crate::rules::Budget {
            max_alerts: self.max_alerts_per_message.get(),
            ..crate::rules::Budget::default()
        }
    }
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            paths: default_rule_paths(),
            watch: default_true(),
            debounce_ms: default_debounce_ms(),
            max_alerts_per_message: default_max_alerts_per_message(),
        }
    }
}

/// `[source]`, selected by `type`.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceConfig {
    /// An SQS queue (what an EventBridge rule fills).
    Sqs(SqsSourceConfig),
    /// Files of events: `*.jsonl` files hold one message per line, other files one message
    /// each; directories are read recursively (`*.json`, `*.jsonl`), in name order.
    File {
        /// The files and directories to read.
        paths: Vec<PathBuf>,
    },
    /// JSON lines on standard input, one message per line. (A struct variant, so that
    /// unknown keys beside `type` are errors too.)
    Stdin {},
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig::Stdin {}
    }
}

/// `[source]` with `type = "sqs"`.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqsSourceConfig {
    /// The queue URL, e.g. `https://sqs.us-east-1.amazonaws.com/123456789012/meterwatch`.
    pub queue_url: String,
    /// How many ReceiveMessage long polls run at once. Default 2.
    #[serde(default = "default_pollers")]
    pub pollers: NonZeroUsize,
    /// Long-poll wait, 0 to 20 seconds. Default 20.
    #[serde(default = "default_wait_time_secs")]
    pub wait_time_secs: u32,
    /// Messages per ReceiveMessage, 1 to 10. Default 10.
    #[serde(default = "default_max_messages")]
    pub max_messages: u32,
    /// Visibility timeout asked for on receive and renewed (every half of it) while a message
    /// is being worked on, 1 to 43200 seconds. Default 60.
    #[serde(default = "default_visibility_timeout_secs")]
    pub visibility_timeout_secs: u32,
}

impl SqsSourceConfig {
    /// The settings for `queue_url`, every other key at its default.
    pub fn new(queue_url: String) -> Self {
        SqsSourceConfig {
            queue_url,
            pollers: default_pollers(),
            wait_time_secs: default_wait_time_secs(),
            max_messages: default_max_messages(),
            visibility_timeout_secs: default_visibility_timeout_secs(),
        }
    }
}

/// `[sinks.NAME]`, selected by `type`.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkConfig {
    /// Publish each alert to an SNS topic.
    Sns {
        /// The topic, e.g. `arn:aws:sns:us-east-1:123456789012:meterwatch-alerts` (a name
        /// ending in `.fifo` gets group and deduplication ids).
        topic_arn: String,
        /// `json` (the alert document; readable text for email subscriptions) or `chatbot`
        /// (AWS Chatbot custom notifications for Slack and Teams). Default `json`.
        #[serde(default)]
        format: Format,
    },
    /// Each alert on standard output.
    Stdout {
        /// `text` (a readable block per alert), `json` (one alert document per line) or
        /// `auto`: text when standard output is a terminal, else JSON. Default `auto`.
        #[serde(default)]
        format: StdoutFormat,
    },
    /// Each alert as one JSON line appended to a file.
    File {
        /// The file, created if missing.
        path: PathBuf,
    },
}

/// `[retry]`: exponential backoff with full jitter between publish attempts.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts per alert and sink, the first included. Default 4.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Backoff ceiling before the second attempt; doubles per attempt. Default 200.
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Largest backoff ceiling. Default 5000.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: default_max_attempts(),
            initial_backoff_ms: default_initial_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
        }
    }
}

/// `[state]`.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Where state lives. Default `memory`.
    #[serde(default, rename = "type")]
    pub kind: StateKind,
    /// The DynamoDB table; required with `type = "dynamodb"`, unused with `memory` (so that
    /// one file can switch by changing `type` alone).
    pub table: Option<String>,
}

/// `[state] type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum StateKind {
    /// In the process, per replica; lost on restart.
    #[default]
    Memory,
    /// A DynamoDB table shared by every replica.
    Dynamodb,
}

/// `[http]`
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address of `/healthz`, `/readyz` and `/metrics`. Default `0.0.0.0:8080` with the sqs
    /// source; the file and stdin sources serve HTTP only when this is set.
    pub listen: Option<SocketAddr>,
}

/// `[shutdown]`
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// On SIGTERM or SIGINT, how long in-flight messages may take before the unfinished ones
    /// are made visible again and the process exits; keep it below the orchestrator's grace
    /// (30 s on ECS and Kubernetes). Default 25.
    #[serde(default = "default_grace_secs")]
    pub grace_secs: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            grace_secs: default_grace_secs(),
        }
    }
}

fn default_rule_paths() -> Vec<PathBuf> {
    vec![PathBuf::from("rules")]
}
const fn default_true() -> bool {
    true
}
const fn default_debounce_ms() -> u64 {
    500
}
const fn default_max_alerts_per_message() -> NonZeroUsize {
    NonZeroUsize::new(crate::rules::DEFAULT_MAX_ALERTS_PER_MESSAGE)
        .expect("the default is not zero")
}
const fn default_pollers() -> NonZeroUsize {
    NonZeroUsize::new(2).expect("2 is not zero")
}
const fn default_wait_time_secs() -> u32 {
    MAX_WAIT_TIME_SECS
}
const fn default_max_messages() -> u32 {
    MAX_RECEIVE_MESSAGES
}
const fn default_visibility_timeout_secs() -> u32 {
    60
}
const fn default_max_attempts() -> u32 {
    4
}
const fn default_initial_backoff_ms() -> u64 {
    200
}
const fn default_max_backoff_ms() -> u64 {
    5_000
}
const fn default_grace_secs() -> u64 {
    25
}

/// The default HTTP address of a daemon reading SQS.
pub fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8080))
}

/// What the environment and the command line set, on top of the file. `None` leaves the
/// file's value.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Replaces `rules.paths`.
    pub rules: Option<Vec<PathBuf>>,
    /// Makes the source this SQS queue (keeping the file's other sqs settings).
    pub queue_url: Option<String>,
    /// Makes the source these event files.
    pub events: Option<Vec<PathBuf>>,
    /// Sets (or replaces) the SNS sink named `alerts`.
    pub topic_arn: Option<String>,
    /// Sets (or replaces) the SNS sink named `chatbot`, in the `chatbot` format. Empty means
    /// none, so a deployment can pass the variable whether or not it has a Slack channel.
    pub chatbot_topic_arn: Option<String>,
    /// Keeps state in this DynamoDB table: sets `state.table` and `state.type = "dynamodb"`.
    /// Empty means unchanged, so a deployment can pass the variable whether or not it has
    /// the table.
    pub state_table: Option<String>,
    /// Replaces `http.listen`.
    pub listen: Option<SocketAddr>,
    /// Sets the format of every stdout sink (the default sink included).
    pub output: Option<StdoutFormat>,
}

/// A configuration that could not be read or is not valid.
///
/// The cause is part of the message rather than a `source()`, so that `{:#}` does not say
/// it twice.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("invalid config {path}: {error}")]
    Parse {
        path: PathBuf,
        error: Box<toml::de::Error>,
    },
    /// Every problem found, each naming the file (and line and column when it has a place).
    #[error("invalid config:{}", Problems(.0))]
    Invalid(Vec<Diagnostic>),
}

/// Problems, one per line.
struct Problems<'a>(&'a [Diagnostic]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in self.0 {
            write!(f, "\n{problem}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Reads a TOML file; unknown keys are errors. Does not validate.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        let mut config = Config::parse(&text).map_err(|error| ConfigError::Parse {
            path: path.to_owned(),
            error: Box::new(error),
        })?;
        config.origin.file = Some(path.to_owned());
        Ok(config)
    }

    /// Parses TOML text; unknown keys are errors. Does not validate.
    pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
        let mut config: Config = toml::from_str(text)?;
        config.origin.text = text.into();
        Ok(config)
    }

    /// A problem with no place in the file (or set by the environment or a flag).
    fn problem(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.origin.file(), message)
    }

    /// A route problem, at its place in the file when it has one.
    fn route_problem(&self, problem: RouteProblem) -> Diagnostic {
        self.problem(problem.message)
            .at(&self.origin.text, problem.span)
    }

    /// Lays the environment's and command line's settings over this config.
    pub fn apply(&mut self, overrides: Overrides) {
        if let Some(paths) = overrides.rules {
            self.rules.paths = paths;
        }
        if let Some(queue_url) = overrides.queue_url {
            match &mut self.source {
                SourceConfig::Sqs(sqs) => sqs.queue_url = queue_url,
                other => *other = SourceConfig::Sqs(SqsSourceConfig::new(queue_url)),
            }
        }
        if let Some(paths) = overrides.events {
            self.source = SourceConfig::File { paths };
        }
        if let Some(topic_arn) = overrides.topic_arn {
            let format = match self.sinks.get(TOPIC_ARN_SINK) {
                Some(SinkConfig::Sns { format, .. }) => *format,
                _ => Format::default(),
            };
            self.sinks.insert(
                TOPIC_ARN_SINK.to_owned(),
                SinkConfig::Sns { topic_arn, format },
            );
        }
        if let Some(topic_arn) = overrides.chatbot_topic_arn.filter(|arn| !arn.is_empty()) {
            self.sinks.insert(
                CHATBOT_TOPIC_ARN_SINK.to_owned(),
                SinkConfig::Sns {
                    topic_arn,
                    format: Format::Chatbot,
                },
            );
        }
        if let Some(table) = overrides.state_table.filter(|table| !table.is_empty()) {
            self.state = StateConfig {
                kind: StateKind::Dynamodb,
                table: Some(table),
            };
        }
        if let Some(listen) = overrides.listen {
            self.http.listen = Some(listen);
        }
        if let Some(output) = overrides.output {
            // The default sink made explicit, so that the flag reaches it too.
            self.sinks = self.effective_sinks();
            for sink in self.sinks.values_mut() {
                if let SinkConfig::Stdout { format } = sink {
                    *format = output;
                }
            }
        }
    }

    /// Checks every value and reports every problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems: Vec<String> = Vec::new();
        if self.rules.paths.is_empty() {
            problems.push("rules.paths is empty".to_owned());
        }
        match &self.source {
            SourceConfig::Sqs(sqs) => sqs.check(&mut problems),
            SourceConfig::File { paths } if paths.is_empty() => {
                problems.push("source.paths is empty".to_owned());
            }
            SourceConfig::File { .. } | SourceConfig::Stdin {} => {}
        }
        for (name, sink) in &self.sinks {
            match sink {
                SinkConfig::Sns { topic_arn, .. } => {
                    if let Err(reason) = check_topic_arn(topic_arn) {
                        problems.push(format!("sinks.{name}.topic_arn: {reason}"));
                    }
                }
                SinkConfig::File { path } if path.as_os_str().is_empty() => {
                    problems.push(format!("sinks.{name}.path is empty"));
                }
                SinkConfig::File { .. } | SinkConfig::Stdout { .. } => {}
            }
        }
        if self.retry.max_attempts == 0 {
            problems.push("retry.max_attempts must be at least 1".to_owned());
        }
        if self.retry.initial_backoff_ms > self.retry.max_backoff_ms {
            problems.push("retry.initial_backoff_ms exceeds retry.max_backoff_ms".to_owned());
        }
        if self.state.kind == StateKind::Dynamodb
            && self.state.table.as_deref().is_none_or(str::is_empty)
        {
            problems.push("state.table is required with state.type = \"dynamodb\"".to_owned());
        }
        if self.shutdown.grace_secs == 0 {
            problems.push("shutdown.grace_secs must be at least 1".to_owned());
        }
        let mut problems: Vec<Diagnostic> = problems
            .into_iter()
            .map(|problem| self.problem(problem))
            .collect();
        if let Err(route_problems) = self.router() {
            problems.extend(
                route_problems
                    .into_iter()
                    .map(|problem| self.route_problem(problem)),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// The sinks alerts go to: the configured ones, else one stdout sink named `stdout`.
    pub fn effective_sinks(&self) -> BTreeMap<String, SinkConfig> {
        if self.sinks.is_empty() {
            BTreeMap::from([(
                STDOUT_SINK.to_owned(),
                SinkConfig::Stdout {
                    format: StdoutFormat::Auto,
                },
            )])
        } else {
            self.sinks.clone()
        }
    }

    /// The routes compiled against [`Config::effective_sinks`] (in name order, the order the
    /// daemon holds them in).
    pub fn router(&self) -> Result<Router, Vec<RouteProblem>> {
        let sinks = self.effective_sinks();
        let names: Vec<&str> = sinks.keys().map(String::as_str).collect();
        Router::compile(&self.routes, &names)
    }

    /// Route rule patterns that match none of `rule_ids` (see [`Router::unmatched_rules`]),
    /// placed in the file.
    pub fn unmatched_route_rules<'a>(
        &self,
        rule_ids: impl Iterator<Item = &'a str> + Clone,
    ) -> Vec<Diagnostic> {
        match self.router() {
            Ok(router) => router
                .unmatched_rules(rule_ids)
                .into_iter()
                .map(|problem| self.route_problem(problem))
                .collect(),
            // `validate` reports these.
            Err(_) => Vec::new(),
        }
    }

    /// The HTTP address to serve on, if any (see [`HttpConfig::listen`]).
    pub fn effective_listen(&self) -> Option<SocketAddr> {
        match (&self.http.listen, &self.source) {
            (Some(listen), _) => Some(*listen),
            (None, SourceConfig::Sqs(_)) => Some(default_listen()),
            (None, _) => None,
        }
    }
}

impl SqsSourceConfig {
    fn check(&self, problems: &mut Vec<String>) {
        let url = &self.queue_url;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            problems.push(format!(
                "source.queue_url `{url}` is not an http(s) URL (a queue URL, not a name or ARN)"
            ));
        }
        if self.wait_time_secs > MAX_WAIT_TIME_SECS {
            problems.push(format!(
                "source.wait_time_secs {} exceeds SQS's maximum of {MAX_WAIT_TIME_SECS}",
                self.wait_time_secs
            ));
        }
        if !(1..=MAX_RECEIVE_MESSAGES).contains(&self.max_messages) {
            problems.push(format!(
                "source.max_messages {} is outside 1..={MAX_RECEIVE_MESSAGES}",
                self.max_messages
            ));
        }
        if !(1..=MAX_VISIBILITY_TIMEOUT_SECS).contains(&self.visibility_timeout_secs) {
            problems.push(format!(
                "source.visibility_timeout_secs {} is outside 1..={MAX_VISIBILITY_TIMEOUT_SECS}",
                self.visibility_timeout_secs
            ));
        }
    }

    /// The visibility timeout as a duration.
    pub fn visibility_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.visibility_timeout_secs))
    }
}

/// Checks the shape of an SNS topic ARN: `arn:PARTITION:sns:REGION:ACCOUNT:NAME`.
fn check_topic_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", partition, "sns", region, account, name]
            if !partition.is_empty()
                && !region.is_empty()
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && !name.is_empty() =>
        {
            Ok(())
        }
        _ => Err(format!(
            "`{arn}` is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Severity;

    #[test]
    fn empty_file_is_the_defaults() {
        let config = Config::parse("").expect("empty TOML parses");
        assert_eq!(config, Config::default());
        assert_eq!(config.source, SourceConfig::Stdin {});
        assert!(config.rules.watch);
        assert_eq!(config.shutdown.grace_secs, 25);
        assert_eq!(config.effective_listen(), None);
        assert!(matches!(
            config.effective_sinks().get("stdout"),
            Some(SinkConfig::Stdout {
                format: StdoutFormat::Auto
            })
        ));
        config.validate().expect("defaults are valid");
    }

    #[test]
    fn output_sets_every_stdout_sink_and_the_default_one() {
        let mut default = Config::default();
        default.apply(Overrides {
            output: Some(StdoutFormat::Text),
            ..Overrides::default()
        });
        assert_eq!(
            default.effective_sinks(),
            BTreeMap::from([(
                STDOUT_SINK.to_owned(),
                SinkConfig::Stdout {
                    format: StdoutFormat::Text
                }
            )])
        );
        let mut config = Config::parse(
            "[sinks.out]\ntype = \"stdout\"\nformat = \"text\"\n[sinks.log]\ntype = \"file\"\npath = \"a.jsonl\"",
        )
        .expect("parses");
        config.apply(Overrides {
            output: Some(StdoutFormat::Json),
            ..Overrides::default()
        });
        assert_eq!(
            config.sinks.get("out"),
            Some(&SinkConfig::Stdout {
                format: StdoutFormat::Json
            })
        );
        assert!(matches!(
            config.sinks.get("log"),
            Some(SinkConfig::File { .. })
        ));
    }

    #[test]
    fn full_contract_parses() {
        let config = Config::parse(
            r#"
            [rules]
            paths = ["/etc/meterwatch/rules"]
            watch = true
            [source]
            type = "sqs"
            queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/q"
            pollers = 3
            wait_time_secs = 5
            max_messages = 4
            visibility_timeout_secs = 30
            [sinks.alerts]
            type = "sns"
            topic_arn = "arn:aws:sns:us-east-1:123456789012:alerts"
            [sinks.audit]
            type = "file"
            path = "/var/log/alerts.jsonl"
            [state]
            type = "dynamodb"
            table = "meterwatch-state"
            [http]
            listen = "127.0.0.1:9090"
            [shutdown]
            grace_secs = 20
            "#,
        )
        .expect("contract parses");
        config.validate().expect("contract is valid");
        let SourceConfig::Sqs(sqs) = &config.source else {
            panic!("expected sqs source, got {:?}", config.source);
        };
        assert_eq!(sqs.pollers.get(), 3);
        assert_eq!(sqs.visibility_timeout_secs, 30);
        assert_eq!(config.sinks.len(), 2);
        assert_eq!(
            config.effective_listen(),
            Some(([127, 0, 0, 1], 9090).into())
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        for text in [
            "[rules]\npath = [\"x\"]",
            "[source]\ntype = \"sqs\"\nqueue_url = \"http://q\"\nwait_secs = 3",
            "[sinks.a]\ntype = \"stdout\"\ncolor = true",
            "[source]\ntype = \"stdin\"\npaths = [\"x\"]",
            "[source]\ntype = \"kafka\"",
            "[surprise]\nx = 1",
        ] {
            let error = Config::parse(text).expect_err(text);
            assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn validation_reports_every_problem() {
        let config = Config::parse(
            r#"
            [source]
            type = "sqs"
            queue_url = "meterwatch"
            wait_time_secs = 21
            max_messages = 11
            [sinks.alerts]
            type = "sns"
            topic_arn = "arn:aws:sqs:us-east-1:123456789012:q"
            [retry]
            max_attempts = 0
            "#,
        )
        .expect("parses");
        let ConfigError::Invalid(problems) = config.validate().expect_err("invalid") else {
            panic!("expected Invalid");
        };
        assert_eq!(problems.len(), 5, "{problems:#?}");
    }

    const ROUTED: &str = r#"
[sinks.pager]
type = "sns"
topic_arn = "arn:aws:sns:us-east-1:123456789012:pager"
[sinks.slack]
type = "sns"
topic_arn = "arn:aws:sns:us-east-1:123456789012:slack"
format = "chatbot"
[sinks.email]
type = "sns"
topic_arn = "arn:aws:sns:us-east-1:123456789012:email"

[[route]]
severity = ["critical", "high"]
sinks = ["pager", "slack"]
continue = true

[[route]]
rules = ["metering-*"]
sinks = ["email"]

[[route]]
sinks = ["email"]
"#;

    #[test]
    fn routes_parse_and_validate() {
        let config = Config::parse(ROUTED).expect("parses");
        config.validate().expect("valid");
        assert_eq!(config.routes.len(), 3);
        let first = config.routes[0].get_ref();
        assert!(first.r#continue);
        assert_eq!(
            first.severity.as_ref().map(|s| s.get_ref().clone()),
            Some(vec![Severity::Critical, Severity::High])
        );
        assert!(
            !config.routes[1].get_ref().r#continue,
            "continue defaults to false"
        );
        assert!(
            config
                .unmatched_route_rules(["metering-throttled"].into_iter())
                .is_empty()
        );
    }

    #[test]
    fn route_problems_name_file_line_and_column() {
        let text = ROUTED.replace(
            "sinks = [\"pager\", \"slack\"]",
            "sinks = [\"pagr\", \"slack\"]",
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("meterwatch.toml");
        std::fs::write(&path, text).expect("write");
        let config = Config::load(&path).expect("parses");
        let error = config.validate().expect_err("unknown sink").to_string();
        let place = format!(
            "{}:15:10: error: route 1: unknown sink `pagr`",
            path.display()
        );
        assert!(error.contains(&place), "{error}");
        assert!(
            error.contains("the sinks are: email, pager, slack"),
            "{error}"
        );
        // `pager` is now in no route: a sink that would receive nothing is a mistake too.
        assert!(error.contains("sink `pager` is in no route"), "{error}");

        let unmatched = config_with_rules_pattern("nope-*");
        let problems = unmatched.unmatched_route_rules(["metering-throttled"].into_iter());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].to_string().starts_with(
                "(config):4:10: error: route 1: rule pattern `nope-*` matches no loaded rule"
            ),
            "{}",
            problems[0]
        );
    }

    fn config_with_rules_pattern(pattern: &str) -> Config {
        Config::parse(&format!(
            "[sinks.a]\ntype = \"stdout\"\n[[route]]\nrules = [\"{pattern}\"]\nsinks = [\"a\"]\n[[route]]\nsinks = []\n"
        ))
        .expect("parses")
    }

    #[test]
    fn unknown_severities_are_parse_errors_with_a_place() {
        let error = Config::parse("[[route]]\nseverity = [\"critcal\"]\nsinks = []\n")
            .expect_err("unknown severity");
        let text = error.to_string();
        assert!(text.contains("line 2, column 13"), "{text}");
        assert!(text.contains("unknown variant `critcal`"), "{text}");
    }

    #[test]
    fn overrides_lay_over_the_file() {
        let mut config = Config::parse(
            "[source]\ntype = \"sqs\"\nqueue_url = \"http://old\"\npollers = 4\n\
             [sinks.alerts]\ntype = \"sns\"\ntopic_arn = \"arn:aws:sns:us-east-1:123456789012:old\"",
        )
        .expect("parses");
        config.apply(Overrides {
            rules: Some(vec!["/r".into()]),
            queue_url: Some("http://new".to_owned()),
            topic_arn: Some("arn:aws:sns:us-east-1:123456789012:new".to_owned()),
            listen: Some(([127, 0, 0, 1], 1).into()),
            ..Overrides::default()
        });
        let SourceConfig::Sqs(sqs) = &config.source else {
            panic!("expected sqs");
        };
        assert_eq!(sqs.queue_url, "http://new");
        assert_eq!(sqs.pollers.get(), 4, "other sqs settings are kept");
        assert_eq!(
            config.sinks.get(TOPIC_ARN_SINK),
            Some(&SinkConfig::Sns {
                topic_arn: "arn:aws:sns:us-east-1:123456789012:new".to_owned(),
                format: Format::Json,
            })
        );
        assert_eq!(config.rules.paths, vec![PathBuf::from("/r")]);
    }

    #[test]
    fn chatbot_topic_adds_a_chatbot_sink_and_empty_adds_none() {
        let mut config = Config::parse(
            "[sinks.alerts]\ntype = \"sns\"\ntopic_arn = \"arn:aws:sns:us-east-1:123456789012:a\"",
        )
        .expect("parses");
        config.apply(Overrides {
            chatbot_topic_arn: Some(String::new()),
            ..Overrides::default()
        });
        assert_eq!(config.sinks.len(), 1, "an empty ARN adds no sink");
        config.apply(Overrides {
            chatbot_topic_arn: Some("arn:aws:sns:us-east-1:123456789012:chat".to_owned()),
            ..Overrides::default()
        });
        assert_eq!(
            config.sinks.get(CHATBOT_TOPIC_ARN_SINK),
            Some(&SinkConfig::Sns {
                topic_arn: "arn:aws:sns:us-east-1:123456789012:chat".to_owned(),
                format: Format::Chatbot,
            })
        );
        assert!(
            matches!(
                config.sinks.get(TOPIC_ARN_SINK),
                Some(SinkConfig::Sns {
                    format: Format::Json,
                    ..
                })
            ),
            "the alerts sink is kept"
        );
        config.validate().expect("valid");
    }

    #[test]
    fn events_select_the_file_source() {
        let mut config = Config::default();
        config.apply(Overrides {
            events: Some(vec!["tests/fixtures/events".into()]),
            ..Overrides::default()
        });
        assert!(matches!(config.source, SourceConfig::File { .. }));
        assert_eq!(config.effective_listen(), None);
    }

    #[test]
    fn dynamodb_state_needs_a_table_from_file_or_env() {
        let mut config = Config::parse("[state]\ntype = \"dynamodb\"").expect("parses");
        assert!(config.validate().is_err());
        config.apply(Overrides {
            state_table: Some("meterwatch-state".to_owned()),
            ..Overrides::default()
        });
        config.validate().expect("table from the environment");
        // The table alone selects DynamoDB: with memory state it would be silently unused.
        let mut memory = Config::default();
        memory.apply(Overrides {
            state_table: Some("meterwatch-state".to_owned()),
            ..Overrides::default()
        });
        assert_eq!(memory.state.kind, StateKind::Dynamodb);
        let mut unset = Config::default();
        unset.apply(Overrides {
            state_table: Some(String::new()),
            ..Overrides::default()
        });
        assert_eq!(unset.state.kind, StateKind::Memory);
        let memory = Config::parse("[state]\ntype = \"memory\"\ntable = \"t\"").expect("parses");
        memory
            .validate()
            .expect("a table beside memory is unused, not wrong");
    }

    #[test]
    fn sample_and_deploy_configs_are_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for relative in [
            "meterwatch.toml",
            "deploy/meterwatch.example.toml",
            "deploy/kubernetes/base/meterwatch.toml",
        ] {
            let path = root.join(relative);
            let config = Config::load(&path).unwrap_or_else(|e| panic!("{relative}: {e}"));
            config
                .validate()
                .unwrap_or_else(|e| panic!("{relative}: {e}"));
        }
    }
}
