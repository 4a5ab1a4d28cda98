//! An SNS notification (`"Type": "Notification"`): its `Message` string is decoded as a body
//! of any shape but another SNS notification, and errors in it say they are inside it.
//!
//! Called by `decode_all`'s general path; calls back into it (`decode_object`,
//! `cloudtrail::decode_batch`) for the message.

use serde_json::{Map, Value};

use super::cloudtrail::decode_batch;
use super::refused::{DecodeErrorKind, Location, json_kind};
use super::{Decoded, Shape, decode_object, shape_of};

/// Unwraps an SNS notification and decodes its `Message`.
pub(super) fn decode_sns(mut notification: Map<String, Value>) -> Result<Decoded, DecodeErrorKind> {
    let message = match notification.remove("Message") {
        Some(Value::String(message)) => message,
        other => {
            return Err(DecodeErrorKind::BadField {
                at: Location::SnsNotification,
                field: "Message",
                expected: "a string",
                found: other.as_ref().map_or("nothing", json_kind),
            });
        }
    };
    let message = message.strip_prefix('\u{feff}').unwrap_or(&message);
    let value: Value = serde_json::from_str(message)
        .map_err(|error| DecodeErrorKind::SnsMessageNotJson { error })?;
    let in_sns = |kind| DecodeErrorKind::InSnsMessage {
        kind: Box::new(kind),
    };
    match value {
        Value::Object(object) => match shape_of(&object) {
            Shape::Sns => Err(DecodeErrorKind::NestedSns),
            shape => decode_object(message, object, shape).map_err(in_sns),
        },
        Value::Array(elements) => decode_batch(elements, Location::ArrayElement).map_err(in_sns),
        other => Err(in_sns(DecodeErrorKind::NotAnObject {
            found: json_kind(&other),
        })),
    }
}
