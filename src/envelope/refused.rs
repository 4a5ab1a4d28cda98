//! Why a body is refused ([`DecodeErrorKind`], [`DecodeError`], with the [`Location`] of a
//! bad field), and the shapes recognised only to be named in that error: Lambda events, S3
//! notifications, CloudTrail digests, CloudWatch Logs data, SNS confirmations.
//!
//! Every shape's decoder returns these; the daemon counts them by [`DecodeErrorKind::label`]
//! (telemetry) and `eval` prints them.

use std::fmt;

use serde_json::{Map, Value};

use super::MAX_BODY_BYTES;

/// How many keys of an unknown object an error lists, and how many characters of each.
pub(super) const MAX_KEYS_SHOWN: usize = 12;
pub(super) const MAX_KEY_CHARS: usize = 64;

/// Where in a body a field was looked for, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// An EventBridge envelope.
    Envelope,
    /// An SNS notification.
    SnsNotification,
    /// A CloudTrail log-file batch `{"Records": [...]}`.
    RecordsBatch,
    /// A bare CloudTrail record.
    Record,
    /// The record at this index of a `Records` batch.
    BatchRecord(usize),
    /// The element at this index of a top-level JSON array.
    ArrayElement(usize),
    /// The event at this index of `aws cloudtrail lookup-events` output (`Events`).
    LookupEvent(usize),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Envelope => f.write_str("EventBridge envelope"),
            Location::SnsNotification => f.write_str("SNS notification"),
            Location::RecordsBatch => f.write_str("CloudTrail Records batch"),
            Location::Record => f.write_str("CloudTrail record"),
            Location::BatchRecord(index) => write!(f, "CloudTrail record Records[{index}]"),
            Location::ArrayElement(index) => write!(f, "array element [{index}]"),
            Location::LookupEvent(index) => write!(f, "lookup-events Events[{index}]"),
        }
    }
}

/// Why a body is not any accepted shape: a poison message.
///
/// Messages say what was found and what was expected, never the body itself (it may be
/// large; bodies are logged at TRACE only).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The body is longer than an SQS message can be.
    #[error("body is {bytes} bytes, over the {MAX_BODY_BYTES}-byte SQS message limit")]
    TooLarge { bytes: usize },

    /// The body is not JSON.
    #[error("body is not JSON: {error}")]
    NotJson { error: serde_json::Error },

    /// The body is JSON but not an object.
    #[error("body is {found}, not a JSON object")]
    NotAnObject { found: &'static str },

    /// The body is an object of none of the accepted shapes.
    #[error(
        "JSON object with keys {} is none of the accepted shapes: expected an EventBridge \
         envelope (`detail-type`, `source`, `detail`), an SNS notification (`Type`: \
         \"Notification\", `Message`), a CloudTrail record (`eventSource`, `eventName`, \
         `eventID`), a CloudTrail batch (`Records`, or a JSON array of records) or \
         `aws cloudtrail lookup-events` output (`Events`)",
        KeyList { keys, n_keys: *n_keys }
    )]
    UnknownShape {
        /// The first keys found (at most 12, each cut to 64 characters).
        keys: Vec<String>,
        /// How many keys the object has.
        n_keys: usize,
    },

    /// A field an accepted shape needs is missing or of the wrong type.
    #[error("{at}: `{field}` must be {expected}, found {found}")]
    BadField {
        at: Location,
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },

    /// A `{"Records": []}` batch carries nothing.
    #[error("CloudTrail Records batch is empty")]
    EmptyRecords,

    /// An element of a batch is not an object.
    #[error("{at} is {found}, not a JSON object")]
    RecordNotAnObject { at: Location, found: &'static str },

    /// A CloudTrail record that is not an API call (an Insights event): nothing to match.
    #[error("{at} is {what}, not an API call")]
    NotAnApiCall { at: Location, what: &'static str },

    /// The body is a known shape that carries no CloudTrail record (a Lambda event, an S3
    /// notification, a CloudTrail digest file…).
    #[error("body is {what}, not a CloudTrail record or an envelope of one")]
    Foreign { what: &'static str },

    /// An SNS notification's `Message` is not JSON.
    #[error("SNS notification's Message is not JSON: {error}")]
    SnsMessageNotJson { error: serde_json::Error },

    /// An SNS notification's `Message` is itself an SNS notification.
    #[error("SNS notification's Message is another SNS notification")]
    NestedSns,

    /// An SNS notification's `Message` is JSON, but not an accepted shape.
    #[error("in SNS notification's Message: {kind}")]
    InSnsMessage { kind: Box<DecodeErrorKind> },
}

impl DecodeErrorKind {
    /// Every [`label`](Self::label), so that metrics can show each at 0 before it happens.
    pub const LABELS: [&'static str; 11] = [
        "too_large",
        "not_json",
        "not_an_object",
        "unknown_shape",
        "bad_field",
        "empty_records",
        "record_not_an_object",
        "not_an_api_call",
        "foreign_shape",
        "sns_message_not_json",
        "nested_sns",
    ];

    /// The labels a record skipped in a batch can have ([`Decoded::skipped`]).
    pub const SKIPPED_LABELS: [&'static str; 3] =
        ["not_an_api_call", "record_not_an_object", "bad_field"];

    /// A short fixed name for the kind, for metric labels (`reason`) and log fields.
    ///
    /// An error inside an SNS `Message` has the label of the inner error, except
    /// `sns_message_not_json` and `nested_sns`, which only happen there.
    pub fn label(&self) -> &'static str {
        match self {
            DecodeErrorKind::TooLarge { .. } => "too_large",
            DecodeErrorKind::NotJson { .. } => "not_json",
            DecodeErrorKind::NotAnObject { .. } => "not_an_object",
            DecodeErrorKind::UnknownShape { .. } => "unknown_shape",
            DecodeErrorKind::BadField { .. } => "bad_field",
            DecodeErrorKind::EmptyRecords => "empty_records",
            DecodeErrorKind::RecordNotAnObject { .. } => "record_not_an_object",
            DecodeErrorKind::NotAnApiCall { .. } => "not_an_api_call",
            DecodeErrorKind::Foreign { .. } => "foreign_shape",
            DecodeErrorKind::SnsMessageNotJson { .. } => "sns_message_not_json",
            DecodeErrorKind::NestedSns => "nested_sns",
            DecodeErrorKind::InSnsMessage { kind } => kind.label(),
        }
    }
}

/// An undecodable SQS message: its id and why.
///
/// The message names the kind itself rather than exposing it as `source()`, so that a log
/// line with `error = %e` says why, and `{:#}` does not say it twice.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode SQS message {message_id}: {kind}")]
pub struct DecodeError {
    pub message_id: String,
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    pub fn new(message_id: impl Into<String>, kind: DecodeErrorKind) -> Self {
        DecodeError {
            message_id: message_id.into(),
            kind,
        }
    }
}

/// What a batch whose first element is this is, when it is a known batch of something
/// other than CloudTrail records: Lambda event sources name themselves `aws:…`.
pub(super) fn foreign_records(first: &Value) -> Option<&'static str> {
    let first = first.as_object()?;
    if first.contains_key("Sns") {
        return Some("a Lambda SNS event (`Records[].Sns`)");
    }
    let source = first
        .get("eventSource")
        .or_else(|| first.get("EventSource"))
        .and_then(Value::as_str)?;
    Some(match source.strip_prefix("aws:")? {
        "sns" => "a Lambda SNS event (`Records[].Sns`)",
        "s3" => "an S3 event notification (`Records[].s3`)",
        "sqs" => "a Lambda SQS event (`Records[].body`): send its bodies, not the event",
        "kinesis" => "a Lambda Kinesis event (`Records[].kinesis`)",
        "dynamodb" => "a DynamoDB Streams event",
        "ses" => "an SES event",
        _ => "a Lambda event's records (`eventSource` `aws:…`)",
    })
}

/// What an object of no accepted shape is, when it is a known one.
pub(super) fn foreign_object(object: &Map<String, Value>) -> Option<&'static str> {
    let has = |key| object.contains_key(key);
    if has("digestStartTime") || has("digestS3Object") || has("previousDigestSignature") {
        return Some("a CloudTrail digest file");
    }
    if has("awslogs") {
        return Some("a CloudWatch Logs subscription event (`awslogs`)");
    }
    if has("logEvents") && has("logGroup") {
        return Some("CloudWatch Logs subscription data (`logEvents`)");
    }
    match object.get("Type").and_then(Value::as_str) {
        Some("SubscriptionConfirmation") => Some("an SNS subscription confirmation"),
        Some("UnsubscribeConfirmation") => Some("an SNS unsubscribe confirmation"),
        _ => None,
    }
}

pub(super) fn unknown_shape(object: &Map<String, Value>) -> DecodeErrorKind {
    DecodeErrorKind::UnknownShape {
        keys: object
            .keys()
            .take(MAX_KEYS_SHOWN)
            .map(|key| key.chars().take(MAX_KEY_CHARS).collect())
            .collect(),
        n_keys: object.len(),
    }
}

/// How an error names a JSON value it did not expect.
pub(super) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Displays the keys of an unknown object: `["a", "b"]`, or `["a", "b", … 10 more]`.
struct KeyList<'a> {
    keys: &'a [String],
    n_keys: usize,
}

impl fmt::Display for KeyList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (idx, key) in self.keys.iter().enumerate() {
            if idx > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{key:?}")?;
        }
        let n_more = self.n_keys.saturating_sub(self.keys.len());
        if n_more > 0 {
            write!(f, ", … {n_more} more")?;
        }
        f.write_str("]")
    }
}
