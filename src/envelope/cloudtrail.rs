//! CloudTrail records: a bare record, a log-file batch `{"Records": [...]}`, a JSON array of
//! records (or envelopes), `aws cloudtrail lookup-events` output. Each record is wrapped in
//! the envelope EventBridge would give it ([`from_record`]); a batch is judged record by
//! record, an Insights or malformed record skipped and counted ([`super::Decoded::skipped`]).
//!
//! Called by `decode_all`'s general path (and `sns` for a message holding these shapes).

use serde_json::{Map, Value, json};

use super::eventbridge::check_envelope;
use super::refused::{DecodeErrorKind, Location, foreign_records, json_kind, unknown_shape};
use super::{CLOUDTRAIL_DETAIL_TYPE, Decoded, Event, Shape, shape_of};

/// A log-file batch `{"Records": [...]}`.
pub(super) fn decode_records(mut object: Map<String, Value>) -> Result<Decoded, DecodeErrorKind> {
    let records = match object.remove("Records") {
        Some(Value::Array(records)) => records,
        other => {
            return Err(DecodeErrorKind::BadField {
                at: Location::RecordsBatch,
                field: "Records",
                expected: "an array",
                found: other.as_ref().map_or("nothing", json_kind),
            });
        }
    };
    decode_batch(records, Location::BatchRecord)
}

/// `aws cloudtrail lookup-events` output: each of its `Events` holds a record as a string.
pub(super) fn decode_lookup_events(
    mut object: Map<String, Value>,
) -> Result<Decoded, DecodeErrorKind> {
    let Some(Value::Array(events)) = object.remove("Events") else {
        return Err(unknown_shape(&object));
    };
    let records = events
        .into_iter()
        .map(|event| match event {
            // The record is a JSON string inside each event: parsed, or left for
            // the batch to report as not an object.
            Value::Object(mut event) => match event.remove("CloudTrailEvent") {
                Some(Value::String(record)) => {
                    serde_json::from_str(&record).unwrap_or(Value::String(record))
                }
                other => other.unwrap_or(Value::Null),
            },
            other => other,
        })
        .collect();
    decode_batch(records, Location::LookupEvent)
}

/// A bare record: one event, or nothing (skipped) if it is not an API call.
pub(super) fn decode_record(object: Map<String, Value>) -> Result<Decoded, DecodeErrorKind> {
    match not_an_api_call(&object) {
        Some(what) => Ok(Decoded {
            events: Vec::new(),
            skipped: vec![DecodeErrorKind::NotAnApiCall {
                at: Location::Record,
                what,
            }],
        }),
        None => Ok(Decoded::one(from_record(Location::Record, object)?)),
    }
}

/// A batch's records, each judged alone (see [`decode_all`]); `at` names an element.
pub(super) fn decode_batch(
    elements: Vec<Value>,
    at: fn(usize) -> Location,
) -> Result<Decoded, DecodeErrorKind> {
    if elements.is_empty() {
        return Err(DecodeErrorKind::EmptyRecords);
    }
    if let Some(what) = elements.first().and_then(foreign_records) {
        return Err(DecodeErrorKind::Foreign { what });
    }
    let mut decoded = Decoded::default();
    for (index, element) in elements.into_iter().enumerate() {
        match decode_element(at(index), element) {
            Ok(event) => decoded.events.push(event),
            Err(kind) => decoded.skipped.push(kind),
        }
    }
    if decoded.events.is_empty()
        && let Some(at) = decoded
            .skipped
            .iter()
            .position(|kind| !matches!(kind, DecodeErrorKind::NotAnApiCall { .. }))
    {
        return Err(decoded.skipped.swap_remove(at));
    }
    Ok(decoded)
}

/// One record of a batch (or an EventBridge envelope, which a JSON array may hold).
fn decode_element(at: Location, element: Value) -> Result<Event, DecodeErrorKind> {
    let Value::Object(object) = element else {
        return Err(DecodeErrorKind::RecordNotAnObject {
            at,
            found: json_kind(&element),
        });
    };
    if shape_of(&object) == Shape::EventBridge {
        check_envelope(&object)?;
        let value = Value::Object(object);
        return Ok(Event::from_value(value.to_string(), value));
    }
    if let Some(what) = not_an_api_call(&object) {
        return Err(DecodeErrorKind::NotAnApiCall { at, what });
    }
    from_record(at, object)
}

/// What a CloudTrail record that is not an API call is, if it is one: nothing a rule can
/// match on, skipped rather than refused.
fn not_an_api_call(record: &Map<String, Value>) -> Option<&'static str> {
    let insight = record.get("eventType").and_then(Value::as_str) == Some("AwsCloudTrailInsight")
        || record.get("eventCategory").and_then(Value::as_str) == Some("Insight")
        || record.contains_key("insightDetails");
    insight.then_some("a CloudTrail Insights event")
}

/// Wraps a CloudTrail record in the envelope EventBridge would give it.
pub(super) fn from_record(
    at: Location,
    record: Map<String, Value>,
) -> Result<Event, DecodeErrorKind> {
    let bad = |field, expected, found| DecodeErrorKind::BadField {
        at,
        field,
        expected,
        found,
    };
    let string = |field| match record.get(field) {
        Some(Value::String(text)) => Ok(text.clone()),
        other => Err(bad(field, "a string", other.map_or("nothing", json_kind))),
    };

    let event_source = string("eventSource")?;
    let service = event_source
        .split('.')
        .next()
        .filter(|service| !service.is_empty())
        .ok_or_else(|| {
            bad(
                "eventSource",
                "a host name like `s3.amazonaws.com`",
                "a string",
            )
        })?;
    let source = format!("aws.{service}");
    string("eventName")?;
    let id = string("eventID")?;
    let time = string("eventTime")?;
    let region = string("awsRegion")?;
    let account = match record.get("recipientAccountId") {
        Some(Value::String(account)) => account.clone(),
        recipient => match record
            .get("userIdentity")
            .and_then(|identity| identity.get("accountId"))
        {
            Some(Value::String(account)) => account.clone(),
            _ => {
                return Err(bad(
                    "recipientAccountId",
                    "a string (or userIdentity.accountId a string)",
                    recipient.map_or("nothing", json_kind),
                ));
            }
        },
    };

    let value = json!({
        "version": "0",
        "id": id,
        "detail-type": CLOUDTRAIL_DETAIL_TYPE,
        "source": source,
        "account": account,
        "time": time,
        "region": region,
        "resources": [],
        "detail": Value::Object(record),
    });
    Ok(Event::from_value(value.to_string(), value))
}
