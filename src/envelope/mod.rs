//! SQS message bodies → EventBridge-shaped events.
//!
//! [`decode`] turns one SQS message body into the CloudTrail records it carries, each as the
//! event EventBridge patterns are matched against (`version`, `id`, `detail-type`, `source`,
//! `account`, `time`, `region`, `resources`, `detail`). It accepts, without configuration, the
//! shapes of `shared/domain.md` §1.1:
//!
//! | body                                             | events                                   |
//! | ------------------------------------------------ | ---------------------------------------- |
//! | EventBridge envelope (`detail-type`, `source`, `detail`) | itself, original text kept       |
//! | SNS notification (`"Type": "Notification"`)      | whatever its `Message` string holds      |
//! | bare CloudTrail record (`eventSource`, `eventName`, `eventID`…) | one synthesized envelope  |
//! | CloudTrail log-file batch `{"Records": [...]}`   | one synthesized envelope per record      |
//!
//! An SNS `Message` may hold any shape but another SNS notification.
//!
//! Anything else is a [`DecodeErrorKind`] saying why. The kind carries no message id: the
//! caller knows it and wraps the kind in a [`DecodeError`] (`DecodeError::new(id, kind)`).
//! Rationale: the decoder stays a pure function of the body, easy to test and fuzz, and the
//! id is never duplicated or made up.
//!
//! A synthesized envelope follows what EventBridge does for CloudTrail API-call events:
//! `source` is `aws.` + the first label of `eventSource`, `detail-type` is
//! [`CLOUDTRAIL_DETAIL_TYPE`], `account` is `recipientAccountId` (else
//! `userIdentity.accountId`), `time` is `eventTime`, `region` is `awsRegion`, `id` is
//! `eventID`, `version` is `"0"` and `resources` is empty. EventBridge's own `id` is not the
//! CloudTrail `eventID`, so the same record decoded from an envelope and from a bare record
//! differs in `id` only; alerts and deduplication use [`Event::event_id`].
//!
//! An envelope without a usable `account` or `region` (moto's PutEvents, forwarders,
//! hand-made envelopes) gets them for alerts from its record's `recipientAccountId` and
//! `awsRegion` ([`Event::account`], [`Event::region`]), and so does `group_by`; patterns
//! read the envelope as it is, as EventBridge does.

mod cloudtrail;
mod event;
mod eventbridge;
mod pass;
mod refused;
mod sns;
#[cfg(test)]
mod tests;
mod time;

use serde_json::{Map, Value};

pub use event::Event;
pub use pass::{ENVELOPE_PASS_FIELDS, Found, from_envelope_pass, may_be_envelope};
pub use refused::{DecodeError, DecodeErrorKind, Location};
pub use time::parse_time;

use refused::{foreign_object, json_kind, unknown_shape};

/// The largest SQS message body, in bytes (1 MiB); a longer body is rejected unparsed.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The `detail-type` EventBridge gives CloudTrail API-call events.
pub const CLOUDTRAIL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";

/// Keys that make an object an EventBridge envelope (all of them).
const ENVELOPE_KEYS: [&str; 3] = ["detail-type", "source", "detail"];

/// Keys that make an object a CloudTrail record (any of them; the record is then checked).
const RECORD_KEYS: [&str; 3] = ["eventSource", "eventName", "eventID"];

/// What one body carries: its events, and the records of it that were left out, each a
/// kind saying where and why (see [`decode_all`]).
#[derive(Debug, Default)]
pub struct Decoded {
    pub events: Vec<Event>,
    /// Records of a batch that are not events (an Insights event, a malformed record):
    /// skipped, and counted, without costing the batch's other records their events.
    pub skipped: Vec<DecodeErrorKind>,
}

impl Decoded {
    /// One event, nothing skipped.
    fn one(event: Event) -> Decoded {
        Decoded {
            events: vec![event],
            skipped: Vec::new(),
        }
    }
}

/// Decodes one SQS message body into the events it carries ([`decode_all`] without the
/// records it skipped).
pub fn decode(body: &str) -> Result<Vec<Event>, DecodeErrorKind> {
    decode_all(body).map(|decoded| decoded.events)
}

/// Decodes one SQS message body into the events it carries, and the records it skipped.
///
/// See the module documentation for the accepted shapes. A batch (`Records`, a JSON array,
/// lookup-events output) is judged record by record: a record that is not an API call, or
/// is malformed, is skipped; the batch is an error only when none of its records is an
/// event and some is not merely a record of another kind (an Insights event). Never panics.
pub fn decode_all(body: &str) -> Result<Decoded, DecodeErrorKind> {
    if body.len() > MAX_BODY_BYTES {
        return Err(DecodeErrorKind::TooLarge { bytes: body.len() });
    }
    // PowerShell and some editors write a byte-order mark; JSON parsers refuse it.
    let body = body.strip_prefix('\u{feff}').unwrap_or(body);
    if let Some(event) = eventbridge::envelope_fast_path(body) {
        return Ok(Decoded::one(event));
    }
    decode_parsed(body)
}

/// [`decode_all`] without its fast path: the body parsed whole, then told apart by shape.
fn decode_parsed(body: &str) -> Result<Decoded, DecodeErrorKind> {
    let value: Value =
        serde_json::from_str(body).map_err(|error| DecodeErrorKind::NotJson { error })?;
    match value {
        Value::Object(object) => match shape_of(&object) {
            Shape::Sns => sns::decode_sns(object),
            shape => decode_object(body, object, shape),
        },
        Value::Array(elements) => cloudtrail::decode_batch(elements, Location::ArrayElement),
        other => Err(DecodeErrorKind::NotAnObject {
            found: json_kind(&other),
        }),
    }
}

/// The accepted shapes, told apart by their keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    EventBridge,
    Sns,
    Records,
    LookupEvents,
    Record,
    Unknown,
}

fn shape_of(object: &Map<String, Value>) -> Shape {
    if ENVELOPE_KEYS.iter().all(|key| object.contains_key(*key)) {
        Shape::EventBridge
    } else if object.get("Type").and_then(Value::as_str) == Some("Notification") {
        Shape::Sns
    } else if object.contains_key("Records") {
        Shape::Records
    } else if RECORD_KEYS.iter().any(|key| object.contains_key(*key)) {
        Shape::Record
    } else if object.get("Events").is_some_and(Value::is_array) {
        Shape::LookupEvents
    } else {
        Shape::Unknown
    }
}

/// Decodes an object of any shape but SNS; `text` is the object's JSON text.
fn decode_object(
    text: &str,
    object: Map<String, Value>,
    shape: Shape,
) -> Result<Decoded, DecodeErrorKind> {
    match shape {
        Shape::EventBridge => {
            eventbridge::check_envelope(&object)?;
            Ok(Decoded::one(Event::from_value(
                text.to_owned(),
                Value::Object(object),
            )))
        }
        Shape::Records => cloudtrail::decode_records(object),
        Shape::LookupEvents => cloudtrail::decode_lookup_events(object),
        Shape::Record => cloudtrail::decode_record(object),
        Shape::Sns | Shape::Unknown => Err(foreign_object(&object).map_or_else(
            || unknown_shape(&object),
            |what| DecodeErrorKind::Foreign { what },
        )),
    }
}
