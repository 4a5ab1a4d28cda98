//! meterwatch watches AWS Marketplace metering calls and alerts on what costs sellers money.
//!
//! # Layout
//! - `meterwatch_pattern` (crate `crates/pattern`): the EventBridge pattern language, compiled.
//! - [`cli`]: the `meterwatch` command line, one file per subcommand.
//! - [`envelope`]: SQS message bodies (EventBridge, SNS-wrapped, CloudTrail record or batch) → events.
//! - [`input`]: reading JSON arguments and event files (`file://`, JSON lines).
//!
//! Data flows one way: source → envelope → rules → alert → sink → ack.

pub mod cli;
pub mod envelope;
pub mod input;
