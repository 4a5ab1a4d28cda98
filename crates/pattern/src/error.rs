//! Errors: invalid patterns (worded as AWS words them) and undecodable events.

use std::fmt;

/// What kind of problem made a pattern invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The pattern text is not JSON.
    Syntax,
    /// The JSON is not a valid event pattern (AWS: `InvalidEventPatternException`).
    InvalidPattern,
    /// The pattern is valid but too costly to match (AWS rejects these too).
    TooComplex,
}

/// An invalid event pattern.
///
/// `reason` is AWS's wording where AWS has one, so that a message can be compared with what
/// `aws events test-event-pattern` says; `path` is the dotted field path where the problem
/// was found (empty at the top level), which AWS does not report but people need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    kind: ErrorKind,
    reason: String,
    path: String,
}

impl PatternError {
    pub(crate) fn invalid(path: &str, reason: impl Into<String>) -> Self {
        PatternError {
            kind: ErrorKind::InvalidPattern,
            reason: reason.into(),
            path: path.to_owned(),
        }
    }

    pub(crate) fn too_complex(path: &str, reason: impl Into<String>) -> Self {
        PatternError {
            kind: ErrorKind::TooComplex,
            reason: reason.into(),
            path: path.to_owned(),
        }
    }

    pub(crate) fn syntax(error: &serde_json::Error) -> Self {
        PatternError {
            kind: ErrorKind::Syntax,
            reason: error.to_string(),
            path: String::new(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The reason, as AWS words it after "Event pattern is not valid. Reason: ".
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Dotted path of the field the problem is in; empty for the pattern as a whole.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The message `aws events test-event-pattern` prints for this error, after the
    /// exception name.
    pub fn aws_message(&self) -> String {
        format!("Event pattern is not valid. Reason: {}", self.reason)
    }
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{} (at `{}`)", self.reason, self.path)
        }
    }
}

impl std::error::Error for PatternError {}

/// An event that cannot be matched because it is not a JSON object.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("event is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("event is not a JSON object")]
    NotAnObject,
}
