//! The daemon: assembled from a config, it receives batches from the source and runs each
//! message through the pipeline until the source is exhausted or shutdown is asked for; then
//! it drains. Called by `meterwatch run` ([`serve`]) and `bench-pipeline` ([`run`]).
//!
//! - [`assemble`](mod@assemble): a `Config` → source, sinks, store, pipeline, HTTP, probes,
//!   reload; runs them and finishes a replay.
//! - [`run`](mod@run): pollers, shutdown, drain; the absence ticker's run.
//! - [`in_flight`]: each received batch, the one owner of its messages from receive to delete
//!   or release: concurrent processing, visibility renewal, batched delete, backoff of what
//!   failed, release at the hard stop; the bound on messages in flight.
//! - [`pipeline`]: one message: decode, evaluate, publish with retries → a [`Verdict`](pipeline::Verdict).
//! - [`backlog`]: whether receives read a backlog, so that absence checks wait.
//! - [`reload`]: rules hot reload (directory watch, SIGHUP).
//! - [`signal`]: SIGTERM/SIGINT as one future.

pub mod assemble;
pub mod backlog;
#[cfg(test)]
mod harness;
pub mod in_flight;
pub mod pipeline;
pub mod reload;
pub mod run;
pub mod signal;

pub use assemble::serve;
pub use run::{Settings, Shared, Stopped, run};
