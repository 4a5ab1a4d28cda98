//! [`Event`]: one EventBridge-shaped event carrying one CloudTrail record, whatever shape it
//! came in, with the facts alerts and logs read most (ids, names, account, region, time).
//!
//! Built by every shape's decoder (`eventbridge`, `cloudtrail`, `pass`), read by the rules,
//! the state stage and the sinks. Its text is what patterns are matched against; its value
//! is parsed only when asked for.

use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

/// One EventBridge-shaped event carrying one CloudTrail record.
///
/// The rule engine matches on the text (its fast path reads bytes); the fields alerts and
/// logs need most are read once at decode time; the full value is parsed only when someone
/// asks for it. When the body already was an EventBridge envelope, the text is the original
/// one, not a re-serialization.
#[derive(Debug, Clone)]
pub struct Event {
    pub(super) json: String,
    /// Parsed on first use: most events raise no alert and never need it.
    pub(super) value: OnceLock<Value>,
    pub(super) facts: Facts,
}

/// The envelope and CloudTrail fields read for every event; each is `None` when absent or
/// not a string.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(super) struct Facts {
    #[serde(default, deserialize_with = "string_or_none")]
    pub(super) account: Option<String>,
    #[serde(default, deserialize_with = "string_or_none")]
    pub(super) region: Option<String>,
    #[serde(default, deserialize_with = "string_or_none")]
    pub(super) time: Option<String>,
    #[serde(default)]
    pub(super) detail: DetailFacts,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(super) struct DetailFacts {
    #[serde(default, rename = "eventID", deserialize_with = "string_or_none")]
    pub(super) event_id: Option<String>,
    #[serde(default, rename = "eventName", deserialize_with = "string_or_none")]
    pub(super) event_name: Option<String>,
    #[serde(default, rename = "eventSource", deserialize_with = "string_or_none")]
    pub(super) event_source: Option<String>,
    #[serde(default, rename = "errorCode", deserialize_with = "string_or_none")]
    pub(super) error_code: Option<String>,
    #[serde(default, rename = "eventTime", deserialize_with = "string_or_none")]
    pub(super) event_time: Option<String>,
    /// Where the envelope's `account` and `region` fall back to (see [`Event::account`]).
    #[serde(
        default,
        rename = "recipientAccountId",
        deserialize_with = "string_or_none"
    )]
    pub(super) recipient_account_id: Option<String>,
    #[serde(default, rename = "awsRegion", deserialize_with = "string_or_none")]
    pub(super) aws_region: Option<String>,
}

/// A string as itself; any other JSON value (skipped without being built) as `None`.
pub(super) fn string_or_none<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    struct StringOrNone;
    impl<'de> serde::de::Visitor<'de> for StringOrNone {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
            Ok(Some(text.to_owned()))
        }
        fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
            Ok(Some(text))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    deserializer.deserialize_any(StringOrNone)
}

impl Facts {
    fn of(value: &Value) -> Facts {
        let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
        let detail = value.get("detail");
        let detail_text = |key| text(detail.and_then(|detail| detail.get(key)));
        Facts {
            account: text(value.get("account")),
            region: text(value.get("region")),
            time: text(value.get("time")),
            detail: DetailFacts {
                event_id: detail_text("eventID"),
                event_name: detail_text("eventName"),
                event_source: detail_text("eventSource"),
                error_code: detail_text("errorCode"),
                event_time: detail_text("eventTime"),
                recipient_account_id: detail_text("recipientAccountId"),
                aws_region: detail_text("awsRegion"),
            },
        }
    }
}

/// Two events are equal when their text is: the value and facts are read from it.
impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

impl Event {
    /// An event whose value was already built (synthesized, or parsed for a slow path).
    pub(super) fn from_value(json: String, value: Value) -> Event {
        let facts = Facts::of(&value);
        Event {
            json,
            value: OnceLock::from(value),
            facts,
        }
    }

    /// The event as JSON text, what patterns are matched against.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The event as a JSON value (always an object), parsed on first use.
    ///
    /// An error for the rare envelope whose text is valid JSON a `Value` cannot hold: a
    /// number beyond `f64` (`1e400`) or nesting deeper than serde_json's 128 levels, in a
    /// part the decoder and the matching pass skip without building. Rejecting those when
    /// decoding would cost every message a scan for them; what reads the whole value copes.
    pub fn value(&self) -> Result<&Value, serde_json::Error> {
        if let Some(value) = self.value.get() {
            return Ok(value);
        }
        let value = serde_json::from_str(&self.json)?;
        Ok(self.value.get_or_init(|| value))
    }

    /// CloudTrail's `eventID`, unique per record (EventBridge's `id` is not).
    pub fn event_id(&self) -> Option<&str> {
        self.facts.detail.event_id.as_deref()
    }

    /// CloudTrail's `eventName`, e.g. `MeterUsage`.
    pub fn event_name(&self) -> Option<&str> {
        self.facts.detail.event_name.as_deref()
    }

    /// CloudTrail's `eventSource`, e.g. `metering-marketplace.amazonaws.com`.
    pub fn event_source(&self) -> Option<&str> {
        self.facts.detail.event_source.as_deref()
    }

    /// CloudTrail's `errorCode`; `None` for a call that succeeded.
    pub fn error_code(&self) -> Option<&str> {
        self.facts.detail.error_code.as_deref()
    }

    /// The account whose CloudTrail recorded the call: the envelope's `account`, else the
    /// record's `recipientAccountId`. Envelopes not made by EventBridge itself (moto's
    /// PutEvents, hand-written tests, forwarders) may lack a usable `account`, and an empty
    /// string names no account.
    pub fn account(&self) -> Option<&str> {
        usable(&self.facts.account).or(usable(&self.facts.detail.recipient_account_id))
    }

    /// The envelope's `region`, else the record's `awsRegion` (as for [`Event::account`]).
    pub fn region(&self) -> Option<&str> {
        usable(&self.facts.region).or(usable(&self.facts.detail.aws_region))
    }

    /// When the call happened, RFC 3339: CloudTrail's `eventTime`, else the envelope's `time`.
    pub fn event_time(&self) -> Option<&str> {
        self.facts
            .detail
            .event_time
            .as_deref()
            .or(self.facts.time.as_deref())
    }
}

/// A fact's text, unless missing or empty.
fn usable(fact: &Option<String>) -> Option<&str> {
    fact.as_deref().filter(|text| !text.is_empty())
}
