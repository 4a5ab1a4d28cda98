//! Alerts as JSON lines on standard output (logs go to standard error).

use super::PublishError;
use crate::alert::Alert;
use std::io::Write;

/// Standard output. Writes are small and synchronous; the lock keeps lines whole.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl StdoutSink {
    pub(super) fn publish(&self, alert: &Alert) -> Result<(), PublishError> {
        let mut line = alert.to_json();
        line.push('\n');
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(line.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|error| PublishError::io(&error))
    }
}
