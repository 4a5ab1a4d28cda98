//! meterwatch watches AWS Marketplace metering calls and alerts on what costs sellers money.
//!
//! # Layout
//! - `meterwatch_pattern` (crate `crates/pattern`): the EventBridge pattern language, compiled.
//! - [`cli`]: the `meterwatch` command line, one file per subcommand.
//! - [`rules`]: TOML rule files → a compiled [`rules::RuleSet`]; diagnostics with positions.
//! - [`alert`]: what a rule raises for an event, as sinks receive it.
//! - [`envelope`]: SQS message bodies (EventBridge, SNS-wrapped, CloudTrail record or batch) → events.
//! - [`input`]: reading JSON arguments and event files (`file://`, JSON lines).
//! - [`config`]: the daemon's config tree (TOML + env + flags), validated before use.
//! - [`source`]: where messages come from (SQS, files, stdin, memory).
//! - [`sink`]: where alerts go (SNS, stdout, file, memory).
//! - [`daemon`]: assembled from a config: pollers, the per-message pipeline, each batch's
//!   owner from receive to delete or release (`in_flight`), shutdown drain, hot reload.
//! - [`http`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`telemetry`]: logs, Prometheus metrics, and events that do both.
//! - [`aws`]: SDK config from the default chain; retry classification.
//! - [`state`]: noise control and stateful rules (dedup, throttle, group, threshold, absence),
//!   in memory or DynamoDB.
//!
//! Data flows one way: source → envelope → rules → alert → sink → ack.

pub mod alert;
pub mod aws;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod envelope;
pub mod http;
pub mod input;
pub mod rules;
pub mod sink;
pub mod source;
pub mod state;
pub mod telemetry;
