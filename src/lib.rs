//! meterwatch watches AWS Marketplace metering calls and alerts on what costs sellers money.
//!
//! # Layout
//! - `meterwatch_pattern` (crate `crates/pattern`): the EventBridge pattern language, compiled.
//! - [`cli`]: the `meterwatch` command line, one file per subcommand.
//! - [`field`]: dotted field paths and the values an event holds at them (a leaf).
//! - [`rules`]: TOML rule files → a compiled [`rules::RuleSet`]; diagnostics with positions.
//! - [`alert`]: what a rule raises for an event, as sinks receive it.
//! - [`envelope`]: SQS message bodies → events, one file per shape (`eventbridge`, `sns`,
//!   `cloudtrail`), refusals with their reason (`refused`), the one-pass fast path (`pass`).
//! - [`input`]: reading JSON arguments and event files (`file://`, JSON lines).
//! - [`config`]: the daemon's config tree (TOML + env + flags), validated before use.
//! - [`source`]: where messages come from (SQS, files, stdin, memory).
//! - [`sink`]: where alerts go (SNS, stdout, file, memory).
//! - [`daemon`]: assembled from a config: pollers, the per-message pipeline, each batch's
//!   owner from receive to delete or release (`in_flight`), shutdown drain, hot reload.
//! - [`http`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`telemetry`]: logs, Prometheus metrics, and events that do both.
//! - [`aws`]: SDK config from the default chain; retry classification.
//! - [`state`]: stateful rules' pure decisions (dedup, throttle, group, threshold, absence)
//!   and their stores, in memory or DynamoDB.
//! - [`noise`]: noise control between rules and sinks: dedup claims, gates, group batches,
//!   absence checks, replay time; drives `state`, publishes through the pipeline.
//!
//! Data flows one way: source → envelope → rules → alert → sink → ack.

pub mod alert;
pub mod aws;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod envelope;
pub mod field;
pub mod http;
pub mod input;
pub mod noise;
pub mod rules;
pub mod sink;
pub mod source;
pub mod state;
pub mod telemetry;
