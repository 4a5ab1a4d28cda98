//! Alerts on standard output (logs go to standard error): JSON lines for pipes and programs,
//! a readable block per alert for a person at a terminal.

use super::PublishError;
use crate::alert::Alert;
use crate::alert::format::terminal;
use std::io::{IsTerminal as _, Write};

/// How the stdout sink writes alerts (`[sinks.NAME] format`, `meterwatch run --output`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Deserialize,
    schemars::JsonSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum StdoutFormat {
    /// `text` when standard output is a terminal, else `json`.
    #[default]
    Auto,
    /// One readable block per alert: severity, rule, title, account and Region, product,
    /// customer, summary.
    Text,
    /// One alert document per line.
    Json,
}

/// Standard output. Writes are small and synchronous; the lock keeps lines whole.
#[derive(Debug, Default)]
pub struct StdoutSink {
    text: bool,
}

impl StdoutSink {
    /// A sink writing `format`, `auto` decided now by whether standard output is a terminal.
    pub fn new(format: StdoutFormat) -> Self {
        let text = match format {
            StdoutFormat::Auto => std::io::stdout().is_terminal(),
            StdoutFormat::Text => true,
            StdoutFormat::Json => false,
        };
        StdoutSink { text }
    }

    pub(super) fn publish(&self, alert: &Alert) -> Result<(), PublishError> {
        let out = if self.text {
            terminal::text(alert)
        } else {
            let mut line = alert.to_json();
            line.push('\n');
            line
        };
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|error| PublishError::io(&error))
    }
}
