//! The EventBridge envelope, the commonest body: checked and its facts read in one serde pass
//! ([`envelope_fast_path`]) without building its value; the general path checks a parsed
//! one ([`check_envelope`]). Its event keeps the body's original text.
//!
//! Called by `decode_all` (the fast path first, for every body) and by the general path
//! for envelopes inside SNS notifications and JSON arrays.

use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::event::{DetailFacts, Event, Facts, string_or_none};
use super::refused::{DecodeErrorKind, Location, json_kind};

/// The common case, an EventBridge envelope, without building the event's value: one pass
/// checks the body is a JSON object with a string `detail-type` and `source` and an object
/// `detail`, and reads the facts. Anything else (including duplicate keys, which the full
/// parse resolves as AWS does, last one winning) goes the general way.
pub(super) fn envelope_fast_path(body: &str) -> Option<Event> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "detail-type")]
        detail_type: Option<IgnoredString>,
        source: Option<IgnoredString>,
        detail: Option<FromObject<DetailFacts>>,
        #[serde(default, deserialize_with = "string_or_none")]
        account: Option<String>,
        #[serde(default, deserialize_with = "string_or_none")]
        region: Option<String>,
        #[serde(default, deserialize_with = "string_or_none")]
        time: Option<String>,
    }
    let FromObject(probe) = serde_json::from_str::<FromObject<Probe>>(body).ok()?;
    let (Some(_), Some(_), Some(FromObject(detail))) =
        (probe.detail_type, probe.source, probe.detail)
    else {
        return None;
    };
    Some(Event {
        json: body.to_owned(),
        value: OnceLock::new(),
        facts: Facts {
            account: probe.account,
            region: probe.region,
            time: probe.time,
            detail,
        },
    })
}

/// A `T` read from a JSON object only: a derived struct also takes an array of its fields
/// in order, which would make `["t", "s", {}]` an envelope to the fast path and not to the
/// general one.
struct FromObject<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for FromObject<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(Visitor(std::marker::PhantomData))
            .map(FromObject)
    }
}

/// A JSON string, checked but not kept.
struct IgnoredString;

impl<'de> Deserialize<'de> for IgnoredString {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = IgnoredString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E>(self, _: &str) -> Result<IgnoredString, E> {
                Ok(IgnoredString)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// Checks the envelope fields rules and alerts rely on; the rest passes through unchecked.
pub(super) fn check_envelope(object: &Map<String, Value>) -> Result<(), DecodeErrorKind> {
    for (field, expected, ok) in [
        (
            "detail-type",
            "a string",
            Value::is_string as fn(&Value) -> bool,
        ),
        ("source", "a string", Value::is_string),
        ("detail", "an object", Value::is_object),
    ] {
        let value = object.get(field);
        if !value.is_some_and(ok) {
            return Err(DecodeErrorKind::BadField {
                at: Location::Envelope,
                field,
                expected,
                found: value.map_or("nothing", json_kind),
            });
        }
    }
    Ok(())
}
