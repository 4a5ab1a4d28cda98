//! meterwatch watches AWS Marketplace metering calls and alerts on what costs sellers money.
//!
//! # Layout
//! - `meterwatch_pattern` (crate `crates/pattern`): the EventBridge pattern language, compiled.
//! - [`cli`]: the `meterwatch` command line, one file per subcommand.
//! - [`rules`]: TOML rule files → a compiled [`rules::RuleSet`]; diagnostics with positions.
//! - [`alert`]: what a rule raises for an event, as sinks receive it.
//! - [`envelope`]: SQS message bodies (EventBridge, SNS-wrapped, CloudTrail record or batch) → events.
//! - [`input`]: reading JSON arguments and event files (`file://`, JSON lines).
//! - [`state`]: noise control and stateful rules (dedup, throttle, group, threshold, absence),
//!   in memory or DynamoDB.
//!
//! Data flows one way: source → envelope → rules → alert → sink → ack.

pub mod alert;
pub mod cli;
pub mod envelope;
pub mod input;
pub mod rules;
pub mod state;
