//! Logs on standard error (standard output carries alerts): human-readable on a terminal,
//! one JSON object per line otherwise, filtered by `RUST_LOG` (default: [`DEFAULT_FILTER`]).

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Pretty when standard error is a terminal, JSON otherwise.
    #[default]
    Auto,
    /// One JSON object per line (what log shippers want).
    Json,
    /// Human-readable lines.
    Pretty,
}

/// Without `RUST_LOG`: `info`, but the AWS SDK's runtime only from `warn`: it logs every
/// dropped connection at `info`, hundreds a minute while a service answers 503, which the
/// daemon's own failure events already report once per attempt.
const DEFAULT_FILTER: &str = "info,aws_smithy_runtime=warn,aws_smithy_runtime_api=warn";

/// Installs the global subscriber. Call once, before anything logs; a second call is ignored
/// (tests may race to install one).
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let json = match format {
        LogFormat::Auto => !std::io::stderr().is_terminal(),
        LogFormat::Json => true,
        LogFormat::Pretty => false,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // An already installed subscriber is kept; that is the only possible error.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
}
