//! Alerts as JSON lines appended to a file.

use super::PublishError;
use crate::alert::Alert;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A file opened for appending. Each alert is one `write` of one line, under a std mutex
/// that is never held across an `.await`; a line is small, so the write does not block the
/// runtime for long.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file: Mutex<File>,
}

impl FileSink {
    /// Opens (or creates) `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(FileSink {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn publish(&self, alert: &Alert) -> Result<(), PublishError> {
        let mut line = alert.to_json();
        line.push('\n');
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.write_all(line.as_bytes())
            .map_err(|error| PublishError::io(&error))
    }
}
