//! meterwatch watches AWS Marketplace metering calls and alerts on what costs sellers money.
//!
//! # Layout
//! Lowest layer first: each module calls only modules listed before it (ARCHITECTURE.md;
//! `tests/integration/layers.rs` checks that there is no cycle).
//! - `meterwatch_pattern` (crate `crates/pattern`): the EventBridge pattern language, compiled.
//! - [`field`]: dotted field paths and the values an event holds at them (a leaf).
//! - [`envelope`]: SQS message bodies → events, one file per shape (`eventbridge`, `sns`,
//!   `cloudtrail`), refusals with their reason (`refused`), the one-pass fast path (`pass`).
//! - [`input`]: reading JSON arguments and event files (`file://`, JSON lines).
//! - [`diagnostic`]: problems in rule and config files, with positions (a leaf).
//! - [`aws`]: SDK config from the default chain; retry classification.
//! - [`alert`]: what a rule raises for an event, as sinks receive it.
//! - [`state`]: stateful rules' pure decisions (dedup, throttle, group, threshold, absence)
//!   and their stores, in memory or DynamoDB.
//! - [`rules`]: TOML rule files → a compiled [`rules::RuleSet`]; decoded events → findings.
//! - [`noise`]: noise control between rules and sinks: dedup claims, gates, group batches,
//!   absence checks, replay time; drives `state`, publishes through the pipeline.
//! - [`sink`]: where alerts go (SNS, stdout, file, memory), and the routes that pick them.
//! - [`config`]: the daemon's config tree (TOML + env + flags), composed of the components'
//!   own sections, validated before use.
//! - [`source`]: where messages come from (SQS, files, stdin, memory).
//! - [`telemetry`]: logs, Prometheus metrics, and events that do both.
//! - [`http`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`daemon`]: assembled from a config: pollers, the per-message pipeline, each batch's
//!   owner from receive to delete or release (`in_flight`), shutdown drain, hot reload.
//! - [`cli`]: the `meterwatch` command line, one file per subcommand.
//!
//! Data flows one way: source → envelope → rules → noise → sink → delete.

pub mod alert;
pub mod aws;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod diagnostic;
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
