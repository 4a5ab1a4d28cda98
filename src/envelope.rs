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

use std::fmt;
use std::sync::{LazyLock, OnceLock};

use serde::Deserialize;
use serde::de::IgnoredAny;

use serde_json::{Map, Value, json};

/// The largest SQS message body, in bytes (1 MiB); a longer body is rejected unparsed.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The `detail-type` EventBridge gives CloudTrail API-call events.
pub const CLOUDTRAIL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";

/// Keys that make an object an EventBridge envelope (all of them).
const ENVELOPE_KEYS: [&str; 3] = ["detail-type", "source", "detail"];

/// Keys that make an object a CloudTrail record (any of them; the record is then checked).
const RECORD_KEYS: [&str; 3] = ["eventSource", "eventName", "eventID"];

/// How many keys of an unknown object an error lists, and how many characters of each.
const MAX_KEYS_SHOWN: usize = 12;
const MAX_KEY_CHARS: usize = 64;

/// One EventBridge-shaped event carrying one CloudTrail record.
///
/// The rule engine matches on the text (its fast path reads bytes); the fields alerts and
/// logs need most are read once at decode time; the full value is parsed only when someone
/// asks for it. When the body already was an EventBridge envelope, the text is the original
/// one, not a re-serialization.
#[derive(Debug, Clone)]
pub struct Event {
    json: String,
    /// Parsed on first use: most events raise no alert and never need it.
    value: OnceLock<Value>,
    facts: Facts,
}

/// The envelope and CloudTrail fields read for every event; each is `None` when absent or
/// not a string.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
struct Facts {
    #[serde(default, deserialize_with = "string_or_none")]
    account: Option<String>,
    #[serde(default, deserialize_with = "string_or_none")]
    region: Option<String>,
    #[serde(default, deserialize_with = "string_or_none")]
    time: Option<String>,
    #[serde(default)]
    detail: DetailFacts,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
struct DetailFacts {
    #[serde(default, rename = "eventID", deserialize_with = "string_or_none")]
    event_id: Option<String>,
    #[serde(default, rename = "eventName", deserialize_with = "string_or_none")]
    event_name: Option<String>,
    #[serde(default, rename = "eventSource", deserialize_with = "string_or_none")]
    event_source: Option<String>,
    #[serde(default, rename = "errorCode", deserialize_with = "string_or_none")]
    error_code: Option<String>,
    #[serde(default, rename = "eventTime", deserialize_with = "string_or_none")]
    event_time: Option<String>,
    /// Where the envelope's `account` and `region` fall back to (see [`Event::account`]).
    #[serde(
        default,
        rename = "recipientAccountId",
        deserialize_with = "string_or_none"
    )]
    recipient_account_id: Option<String>,
    #[serde(default, rename = "awsRegion", deserialize_with = "string_or_none")]
    aws_region: Option<String>,
}

/// A string as itself; any other JSON value (skipped without being built) as `None`.
fn string_or_none<'de, D: serde::Deserializer<'de>>(
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
    fn from_value(json: String, value: Value) -> Event {
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

/// An event time as CloudTrail writes it: RFC 3339 (`2020-07-10T23:06:42Z`), or CloudTrail
/// Lake's form (`2025-03-26 16:43:57.000000000`), which has no offset and is UTC. Any other
/// text is `None`.
pub fn parse_time(text: &str) -> Option<jiff::Timestamp> {
    if let Ok(time) = text.parse::<jiff::Timestamp>() {
        return Some(time);
    }
    // Only the Lake form: jiff also reads a bare date, which no event time is.
    if text.as_bytes().get(10) != Some(&b' ') {
        return None;
    }
    let civil = text.parse::<jiff::civil::DateTime>().ok()?;
    jiff::tz::Offset::UTC.to_timestamp(civil).ok()
}

/// A fact's text, unless missing or empty.
fn usable(fact: &Option<String>) -> Option<&str> {
    fact.as_deref().filter(|text| !text.is_empty())
}

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

/// What one body carries: its events, and the records of it that were left out, each a
/// kind saying where and why (see [`decode_all`]).
#[derive(Debug, Default)]
pub struct Decoded {
    pub events: Vec<Event>,
    /// Records of a batch that are not events (an Insights event, a malformed record):
    /// skipped, and counted, without costing the batch's other records their events.
    pub skipped: Vec<DecodeErrorKind>,
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
    if let Some(event) = envelope_fast_path(body) {
        return Ok(Decoded {
            events: vec![event],
            skipped: Vec::new(),
        });
    }
    decode_parsed(body)
}

/// [`decode_all`] without its fast path: the body parsed whole, then told apart by shape.
fn decode_parsed(body: &str) -> Result<Decoded, DecodeErrorKind> {
    let value: Value =
        serde_json::from_str(body).map_err(|error| DecodeErrorKind::NotJson { error })?;
    match value {
        Value::Object(object) => match shape_of(&object) {
            Shape::Sns => decode_sns(object),
            shape => decode_object(body, object, shape),
        },
        Value::Array(elements) => decode_batch(elements, Location::ArrayElement),
        other => Err(DecodeErrorKind::NotAnObject {
            found: json_kind(&other),
        }),
    }
}

/// The common case, an EventBridge envelope, without building the event's value: one pass
/// checks the body is a JSON object with a string `detail-type` and `source` and an object
/// `detail`, and reads the facts. Anything else (including duplicate keys, which the full
/// parse resolves as AWS does, last one winning) goes the general way.
fn envelope_fast_path(body: &str) -> Option<Event> {
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

/// The fields a pass over an EventBridge envelope's text reads for
/// [`from_envelope_pass`]: the two that make it one, then the facts.
pub const ENVELOPE_PASS_FIELDS: [&str; 12] = [
    "detail-type",
    "source",
    "account",
    "region",
    "time",
    "detail.eventID",
    "detail.eventName",
    "detail.eventSource",
    "detail.errorCode",
    "detail.eventTime",
    "detail.recipientAccountId",
    "detail.awsRegion",
];

/// What a pass over a body found at one of [`ENVELOPE_PASS_FIELDS`], counting only values
/// in no array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found<'v> {
    /// No value (absent, an object, or only inside arrays).
    Nothing,
    /// One value: its text if a string.
    One(Option<&'v str>),
    /// The key is repeated.
    Repeated,
}

/// Whether `body` may be an EventBridge envelope (it names `detail-type`): other shapes
/// (SNS notifications, CloudTrail records) are better decoded without first being read by
/// a pass that could not vouch for them ([`from_envelope_pass`]).
pub fn may_be_envelope(body: &str) -> bool {
    static DETAIL_TYPE: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(b"\"detail-type\""));
    DETAIL_TYPE.find(body.as_bytes()).is_some()
}

/// The event of `body`, when another full pass over its text (the rule engine's matching
/// pass, which checks it is a JSON object) found at [`ENVELOPE_PASS_FIELDS`] what makes an
/// EventBridge envelope: this saves the decoder its own pass over the common shape.
///
/// `None` when the pass cannot vouch for the body as [`decode`] would read it: then decode
/// it. That is the case unless `detail-type` and `source` are one string each and some
/// fact lies in `detail` (so `detail` is an object), with no fact repeated; and, because a
/// pass by dotted paths cannot tell `{"detail": {"a": 1}}` from `{"detail.a": 1}` nor see
/// a repeated `detail` key whose last value holds no fact, unless the text has exactly one
/// `"detail"` key, no `"detail.` key and no `\u` escape (which could spell either).
pub fn from_envelope_pass(body: &str, found: &[Found<'_>; 12]) -> Option<Event> {
    if body.len() > MAX_BODY_BYTES {
        return None;
    }
    let text = |found: &Found<'_>| match found {
        Found::One(text) => Ok(text.map(str::to_owned)),
        Found::Nothing => Ok(None),
        Found::Repeated => Err(()),
    };
    let [detail_type, source, rest @ ..] = found;
    let (Found::One(Some(_)), Found::One(Some(_))) = (detail_type, source) else {
        return None;
    };
    let [account, region, time, detail @ ..] = rest;
    if !detail.iter().any(|found| matches!(found, Found::One(_))) || !has_one_plain_detail(body) {
        return None;
    }
    let [
        event_id,
        event_name,
        event_source,
        error_code,
        event_time,
        recipient,
        aws_region,
    ] = detail;
    let facts = Facts {
        account: text(account).ok()?,
        region: text(region).ok()?,
        time: text(time).ok()?,
        detail: DetailFacts {
            event_id: text(event_id).ok()?,
            event_name: text(event_name).ok()?,
            event_source: text(event_source).ok()?,
            error_code: text(error_code).ok()?,
            event_time: text(event_time).ok()?,
            recipient_account_id: text(recipient).ok()?,
            aws_region: text(aws_region).ok()?,
        },
    };
    Some(Event {
        json: body.to_owned(),
        value: OnceLock::new(),
        facts,
    })
}

/// Whether `body` has exactly one `"detail"` key, no key starting `"detail.`, and no `\u`
/// escape (see [`from_envelope_pass`]); a `"detail"` inside a string is escaped (`\"`) and
/// does not count. One vectorised search for `"detail`, one for backslashes (rare in
/// bodies): this runs for every message.
fn has_one_plain_detail(body: &str) -> bool {
    use memchr::memmem::Finder;
    static DETAIL: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"detail"));
    let bytes = body.as_bytes();
    // An escaped backslash before a `u` is taken for `\u` too: that body is merely decoded.
    if memchr::memchr_iter(b'\\', bytes).any(|at| bytes.get(at + 1) == Some(&b'u')) {
        return false;
    }
    let mut keys = 0;
    for at in DETAIL.find_iter(bytes) {
        let after = &body[at + DETAIL.needle().len()..];
        if after.starts_with('.') {
            return false;
        }
        if let Some(rest) = after.strip_prefix('"')
            && rest
                .trim_start_matches([' ', '\t', '\n', '\r'])
                .starts_with(':')
        {
            keys += 1;
        }
    }
    keys == 1
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

/// Unwraps an SNS notification and decodes its `Message`.
fn decode_sns(mut notification: Map<String, Value>) -> Result<Decoded, DecodeErrorKind> {
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

/// Decodes an object of any shape but SNS; `text` is the object's JSON text.
fn decode_object(
    text: &str,
    mut object: Map<String, Value>,
    shape: Shape,
) -> Result<Decoded, DecodeErrorKind> {
    let one = |event| Decoded {
        events: vec![event],
        skipped: Vec::new(),
    };
    match shape {
        Shape::EventBridge => {
            check_envelope(&object)?;
            Ok(one(Event::from_value(
                text.to_owned(),
                Value::Object(object),
            )))
        }
        Shape::Records => {
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
        Shape::LookupEvents => {
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
        Shape::Record => match not_an_api_call(&object) {
            Some(what) => Ok(Decoded {
                events: Vec::new(),
                skipped: vec![DecodeErrorKind::NotAnApiCall {
                    at: Location::Record,
                    what,
                }],
            }),
            None => Ok(one(from_record(Location::Record, object)?)),
        },
        Shape::Sns | Shape::Unknown => Err(foreign_object(&object).map_or_else(
            || unknown_shape(&object),
            |what| DecodeErrorKind::Foreign { what },
        )),
    }
}

/// A batch's records, each judged alone (see [`decode_all`]); `at` names an element.
fn decode_batch(
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

/// What a batch whose first element is this is, when it is a known batch of something
/// other than CloudTrail records: Lambda event sources name themselves `aws:…`.
fn foreign_records(first: &Value) -> Option<&'static str> {
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
fn foreign_object(object: &Map<String, Value>) -> Option<&'static str> {
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

/// Checks the envelope fields rules and alerts rely on; the rest passes through unchecked.
fn check_envelope(object: &Map<String, Value>) -> Result<(), DecodeErrorKind> {
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

/// Wraps a CloudTrail record in the envelope EventBridge would give it.
fn from_record(at: Location, record: Map<String, Value>) -> Result<Event, DecodeErrorKind> {
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

fn unknown_shape(object: &Map<String, Value>) -> DecodeErrorKind {
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
fn json_kind(value: &Value) -> &'static str {
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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use proptest::prelude::*;

    use super::*;

    const SEED_NAMES: [&str; 4] = [
        "meterusage-ami",
        "meterusage-eks",
        "registerusage-eks",
        "batchmeterusage",
    ];

    fn fixtures_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events")
    }

    fn fixture(relative: &str) -> String {
        let path = fixtures_dir().join(relative);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
    }

    fn decode_ok(relative: &str) -> Vec<Event> {
        decode(&fixture(relative)).unwrap_or_else(|error| panic!("{relative}: {error}"))
    }

    fn decode_one(relative: &str) -> Event {
        let mut events = decode_ok(relative);
        assert_eq!(events.len(), 1, "{relative}");
        events.remove(0)
    }

    fn decode_err(body: &str) -> DecodeErrorKind {
        match decode(body) {
            Ok(events) => panic!("decoded into {} events, expected an error", events.len()),
            Err(kind) => kind,
        }
    }

    /// The file names in a fixture folder, sorted.
    fn fixture_names(folder: &str) -> Vec<String> {
        let dir = fixtures_dir().join(folder);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("listing {}: {error}", dir.display()))
            .map(|entry| {
                entry
                    .expect("a readable fixture directory entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    /// The value of an event decoded from a fixture, which a `Value` holds.
    fn whole(event: &Event) -> &Value {
        event.value().expect("a fixture's event is a Value")
    }

    /// The event's value without EventBridge's `id`, which a synthesized envelope cannot know.
    fn without_id(event: &Event) -> Value {
        let mut value = whole(event).clone();
        if let Some(object) = value.as_object_mut() {
            object.remove("id");
        }
        value
    }

    #[test]
    fn each_shape_decodes_to_the_same_event() {
        let batch = decode_ok("envelopes/seed.records.json");
        let sns_batch = decode_ok("envelopes/seed.sns-records.json");
        assert_eq!(batch.len(), SEED_NAMES.len());
        assert_eq!(sns_batch, batch);

        for (idx, name) in SEED_NAMES.iter().enumerate() {
            let eventbridge = decode_one(&format!("envelopes/{name}.eventbridge.json"));
            let sns = decode_one(&format!("envelopes/{name}.sns.json"));
            let bare = decode_one(&format!("envelopes/{name}.cloudtrail.json"));
            let sns_bare = decode_one(&format!("envelopes/{name}.sns-cloudtrail.json"));

            assert_eq!(
                whole(&sns),
                whole(&eventbridge),
                "{name}: SNS-wrapped envelope"
            );
            assert_eq!(bare, sns_bare, "{name}: SNS-wrapped record");
            assert_eq!(batch.get(idx), Some(&bare), "{name}: Records batch");
            assert_eq!(
                without_id(&bare),
                without_id(&eventbridge),
                "{name}: bare record"
            );
            assert_eq!(
                whole(&bare)["id"],
                whole(&bare)["detail"]["eventID"],
                "{name}"
            );
        }
    }

    #[test]
    fn envelope_keeps_its_original_text() {
        for name in SEED_NAMES {
            let relative = format!("envelopes/{name}.eventbridge.json");
            assert_eq!(decode_one(&relative).json(), fixture(&relative));

            let notification: Value =
                serde_json::from_str(&fixture(&format!("envelopes/{name}.sns.json")))
                    .expect("an SNS fixture is JSON");
            let sns = decode_one(&format!("envelopes/{name}.sns.json"));
            assert_eq!(Some(sns.json()), notification["Message"].as_str());
        }
    }

    #[test]
    fn event_text_and_value_agree() {
        for folder in ["envelopes", "failing"] {
            for name in fixture_names(folder) {
                for event in decode_ok(&format!("{folder}/{name}")) {
                    let reparsed: Value =
                        serde_json::from_str(event.json()).expect("event text is JSON");
                    assert_eq!(&reparsed, whole(&event), "{folder}/{name}");
                }
            }
        }
    }

    #[test]
    fn synthesized_envelope_is_what_eventbridge_sends() {
        let event = decode_one("envelopes/registerusage-eks.cloudtrail.json");
        let value = whole(&event);
        assert_eq!(value["version"], "0");
        assert_eq!(value["id"], "cEXAMPLE-e6c2-465d-b47f-150EXAMPLE97");
        assert_eq!(value["detail-type"], "AWS API Call via CloudTrail");
        assert_eq!(value["source"], "aws.metering-marketplace");
        assert_eq!(value["account"], "123456789012");
        assert_eq!(value["time"], "2020-07-23T02:19:46Z");
        assert_eq!(value["region"], "us-east-1");
        assert_eq!(value["resources"], json!([]));
        assert_eq!(value["detail"]["eventName"], "RegisterUsage");
    }

    #[test]
    fn accessors_read_cloudtrail_fields() {
        let event = decode_one("failing/meterusage-throttled.eventbridge.json");
        assert_eq!(
            event.event_id(),
            Some("f0a1b2c3-0000-4000-8000-000000000101")
        );
        assert_eq!(event.event_name(), Some("MeterUsage"));
        assert_eq!(
            event.event_source(),
            Some("metering-marketplace.amazonaws.com")
        );
        assert_eq!(event.error_code(), Some("ThrottlingException"));
        assert_eq!(event.account(), Some("123456789012"));
        assert_eq!(event.region(), Some("us-east-1"));
        assert_eq!(event.event_time(), Some("2020-07-10T23:06:42Z"));
        assert!(whole(&event)["detail"].is_object());

        let success = decode_one("envelopes/meterusage-ami.eventbridge.json");
        assert_eq!(success.error_code(), None);
    }

    #[test]
    fn account_and_region_fall_back_to_the_record_when_the_envelope_lacks_them() {
        let mut envelope: Value =
            serde_json::from_str(&fixture("failing/meterusage-throttled.eventbridge.json"))
                .expect("fixture is JSON");
        envelope["detail"]["recipientAccountId"] = json!("210987654321");
        envelope["detail"]["awsRegion"] = json!("eu-central-1");
        let facts = |envelope: &Value| {
            let events = decode(&envelope.to_string()).expect("an envelope decodes");
            let event = events.first().expect("one event");
            (
                event.account().map(str::to_owned),
                event.region().map(str::to_owned),
            )
        };
        let some =
            |account: &str, region: &str| (Some(account.to_owned()), Some(region.to_owned()));
        assert_eq!(
            facts(&envelope),
            some("123456789012", "us-east-1"),
            "the envelope's own"
        );

        let object = envelope.as_object_mut().expect("an object");
        object.remove("account");
        object.remove("region");
        assert_eq!(
            facts(&envelope),
            some("210987654321", "eu-central-1"),
            "missing"
        );
        envelope["account"] = json!("");
        envelope["region"] = json!(null);
        assert_eq!(
            facts(&envelope),
            some("210987654321", "eu-central-1"),
            "unusable"
        );

        // The slow path (an SNS-wrapped envelope) reads the same facts.
        let sns =
            json!({"Type": "Notification", "MessageId": "m", "Message": envelope.to_string()});
        assert_eq!(facts(&sns), some("210987654321", "eu-central-1"), "in SNS");

        // A bare record has no envelope: its synthesized one carries the record's account.
        let record = envelope["detail"].clone();
        assert_eq!(
            facts(&record),
            some("210987654321", "eu-central-1"),
            "bare record"
        );
    }

    #[test]
    fn event_time_falls_back_to_envelope_time() {
        let body = json!({
            "version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2024-01-01T00:00:00Z", "region": "eu-west-1",
            "resources": [], "detail": {}
        });
        let events = decode(&body.to_string()).expect("an envelope without a record decodes");
        let event = events.first().expect("one event");
        assert_eq!(event.event_time(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(event.event_id(), None);
    }

    #[test]
    fn failing_fixtures_decode_as_envelopes() {
        let expected = [
            (
                "batchmeterusage-partial.eventbridge.json",
                "BatchMeterUsage",
                None,
            ),
            (
                "batchmeterusage-stale-timestamp.eventbridge.json",
                "BatchMeterUsage",
                None,
            ),
            (
                "meterusage-dryrun-failed.eventbridge.json",
                "MeterUsage",
                Some("DryRunOperation"),
            ),
            (
                "meterusage-dryrun-success.eventbridge.json",
                "MeterUsage",
                None,
            ),
            (
                "meterusage-invalid-product-code.eventbridge.json",
                "MeterUsage",
                Some("InvalidProductCodeException"),
            ),
            (
                "meterusage-throttled.eventbridge.json",
                "MeterUsage",
                Some("ThrottlingException"),
            ),
            (
                "meterusage-timestamp-out-of-bounds.eventbridge.json",
                "MeterUsage",
                Some("TimestampOutOfBoundsException"),
            ),
            (
                "meterusage-unexpected-principal.eventbridge.json",
                "MeterUsage",
                None,
            ),
            (
                "meterusage-unknown-product-code.eventbridge.json",
                "MeterUsage",
                None,
            ),
            (
                "registerusage-not-entitled.eventbridge.json",
                "RegisterUsage",
                Some("CustomerNotEntitledException"),
            ),
        ];
        let listed: Vec<&str> = expected.iter().map(|(name, _, _)| *name).collect();
        assert_eq!(
            fixture_names("failing"),
            listed,
            "every failing fixture is checked"
        );

        let mut event_ids = Vec::new();
        for (name, event_name, error_code) in expected {
            let relative = format!("failing/{name}");
            let event = decode_one(&relative);
            assert_eq!(event.json(), fixture(&relative), "{name}");
            assert_eq!(event.event_name(), Some(event_name), "{name}");
            assert_eq!(event.error_code(), error_code, "{name}");
            event_ids.push(event.event_id().map(str::to_owned));
        }
        event_ids.sort();
        event_ids.dedup();
        assert_eq!(
            event_ids.len(),
            expected.len(),
            "failing fixtures have distinct eventIDs"
        );
    }

    #[test]
    fn poison_files_give_the_expected_error() {
        let expected: [(&str, &str); 8] = [
            ("not-json.txt", "not_json"),
            ("random-object.json", "unknown_shape"),
            ("record-without-event-id.json", "bad_field"),
            ("records-empty.json", "empty_records"),
            ("seed-with-stray-brackets.json", "not_json"),
            ("sns-message-not-json.json", "sns_message_not_json"),
            ("sns-subscription-confirmation.json", "foreign_shape"),
            ("truncated.json", "not_json"),
        ];
        let listed: Vec<&str> = expected.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            fixture_names("poison"),
            listed,
            "every poison fixture is checked"
        );

        for (name, label) in expected {
            let kind = decode_err(&fixture(&format!("poison/{name}")));
            assert_eq!(kind.label(), label, "{name}: {kind}");
        }
    }

    /// `LABELS` lists every label a kind can have (metrics start each series at 0 from it).
    #[test]
    fn every_label_is_listed() {
        let not_json = || serde_json::from_str::<Value>("{").expect_err("not JSON");
        let kinds = [
            DecodeErrorKind::TooLarge { bytes: 0 },
            DecodeErrorKind::NotJson { error: not_json() },
            DecodeErrorKind::NotAnObject { found: "an array" },
            DecodeErrorKind::UnknownShape {
                keys: Vec::new(),
                n_keys: 0,
            },
            DecodeErrorKind::BadField {
                at: Location::Envelope,
                field: "detail",
                expected: "an object",
                found: "nothing",
            },
            DecodeErrorKind::EmptyRecords,
            DecodeErrorKind::RecordNotAnObject {
                at: Location::BatchRecord(0),
                found: "a string",
            },
            DecodeErrorKind::NotAnApiCall {
                at: Location::Record,
                what: "x",
            },
            DecodeErrorKind::Foreign { what: "x" },
            DecodeErrorKind::SnsMessageNotJson { error: not_json() },
            DecodeErrorKind::NestedSns,
        ];
        let labels: Vec<&str> = kinds.iter().map(DecodeErrorKind::label).collect();
        assert_eq!(labels, DecodeErrorKind::LABELS);
    }

    #[test]
    fn poison_errors_say_why() {
        let number = decode_err("7");
        assert!(matches!(
            number,
            DecodeErrorKind::NotAnObject { found: "a number" }
        ));

        let random = decode_err(&fixture("poison/random-object.json"));
        assert_eq!(
            random.to_string(),
            "JSON object with keys [\"hello\", \"count\", \"nested\"] is none of the accepted \
             shapes: expected an EventBridge envelope (`detail-type`, `source`, `detail`), an \
             SNS notification (`Type`: \"Notification\", `Message`), a CloudTrail record \
             (`eventSource`, `eventName`, `eventID`), a CloudTrail batch (`Records`, or a JSON \
             array of records) or `aws cloudtrail lookup-events` output (`Events`)"
        );

        let sns = decode_err(&fixture("poison/sns-message-not-json.json"));
        assert!(
            sns.to_string()
                .starts_with("SNS notification's Message is not JSON: expected value at line 1"),
            "{sns}"
        );

        let no_id = decode_err(&fixture("poison/record-without-event-id.json"));
        assert_eq!(
            no_id.to_string(),
            "CloudTrail record: `eventID` must be a string, found nothing"
        );

        let non_object = decode_err(r#"{"Records": [1, "a"]}"#);
        assert_eq!(
            non_object.to_string(),
            "CloudTrail record Records[0] is a number, not a JSON object"
        );
    }

    #[test]
    fn body_of_exactly_one_mib_is_accepted_and_longer_is_not() {
        let envelope = fixture("envelopes/meterusage-ami.eventbridge.json");
        let padding = " ".repeat(MAX_BODY_BYTES - envelope.len());
        let at_limit = format!("{envelope}{padding}");
        assert_eq!(at_limit.len(), MAX_BODY_BYTES);
        assert!(decode(&at_limit).is_ok());

        let over = format!("{at_limit} ");
        assert!(matches!(
            decode_err(&over),
            DecodeErrorKind::TooLarge { bytes } if bytes == MAX_BODY_BYTES + 1
        ));
    }

    #[test]
    fn unknown_object_lists_a_bounded_number_of_keys() {
        let object: Map<String, Value> = (0..40)
            .map(|idx| (format!("{idx:02}{}", "k".repeat(100)), Value::Null))
            .collect();
        let kind = decode_err(&Value::Object(object).to_string());
        let DecodeErrorKind::UnknownShape { keys, n_keys } = &kind else {
            panic!("expected UnknownShape, got {kind:?}");
        };
        assert_eq!(*n_keys, 40);
        assert_eq!(keys.len(), MAX_KEYS_SHOWN);
        assert!(keys.iter().all(|key| key.chars().count() == MAX_KEY_CHARS));
        assert!(kind.to_string().contains(", … 28 more]"), "{kind}");
    }

    #[test]
    fn account_falls_back_to_user_identity() {
        let mut record: Value =
            serde_json::from_str(&fixture("envelopes/meterusage-eks.cloudtrail.json"))
                .expect("a seed record is JSON");
        if let Some(object) = record.as_object_mut() {
            object.remove("recipientAccountId");
        }
        record["userIdentity"]["accountId"] = json!("111122223333");
        let events = decode(&record.to_string()).expect("a record without recipientAccountId");
        assert_eq!(
            events.first().and_then(Event::account),
            Some("111122223333")
        );

        if let Some(identity) = record["userIdentity"].as_object_mut() {
            identity.remove("accountId");
        }
        assert_eq!(
            decode_err(&record.to_string()).to_string(),
            "CloudTrail record: `recipientAccountId` must be a string (or \
             userIdentity.accountId a string), found nothing"
        );
    }

    #[test]
    fn source_is_aws_dot_first_label_of_event_source() {
        let mut record: Value =
            serde_json::from_str(&fixture("envelopes/meterusage-ami.cloudtrail.json"))
                .expect("a seed record is JSON");
        record["eventSource"] = json!("s3.amazonaws.com");
        let events = decode(&record.to_string()).expect("an S3 record decodes");
        assert_eq!(
            events.first().map(|e| &whole(e)["source"]),
            Some(&json!("aws.s3"))
        );

        record["eventSource"] = json!(".amazonaws.com");
        assert!(matches!(
            decode_err(&record.to_string()),
            DecodeErrorKind::BadField {
                at: Location::Record,
                field: "eventSource",
                ..
            }
        ));
    }

    fn seed_record(name: &str) -> Value {
        serde_json::from_str(&fixture(&format!("envelopes/{name}.cloudtrail.json")))
            .expect("a seed record is JSON")
    }

    /// The one event `body` decodes to, and the labels of what it skipped.
    fn decoded(body: &str) -> (Vec<Event>, Vec<&'static str>) {
        let decoded = decode_all(body).unwrap_or_else(|error| panic!("{error}"));
        let labels = decoded.skipped.iter().map(DecodeErrorKind::label).collect();
        (decoded.events, labels)
    }

    #[test]
    fn batch_errors_name_the_record_and_cost_the_others_nothing() {
        let mut record = seed_record("meterusage-ami");
        let good = record.clone();
        record["awsRegion"] = json!(7);
        let body = json!({ "Records": [good, record] }).to_string();
        let decoded = decode_all(&body).expect("the good record decodes");
        assert_eq!(decoded.events.len(), 1);
        assert_eq!(
            decoded
                .skipped
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["CloudTrail record Records[1]: `awsRegion` must be a string, found a number"]
        );
        let only_bad = json!({ "Records": [json!({"eventSource": 1})] }).to_string();
        assert_eq!(decode_err(&only_bad).label(), "bad_field");

        let not_array = decode_err(r#"{"Records": {"eventID": "x"}}"#);
        assert!(matches!(
            not_array,
            DecodeErrorKind::BadField {
                at: Location::RecordsBatch,
                field: "Records",
                found: "an object",
                ..
            }
        ));
    }

    fn insight() -> Value {
        json!({
            "eventVersion": "1.07", "eventTime": "2019-11-14T00:51:00Z",
            "awsRegion": "us-east-1", "eventID": "EXAMPLE8-9621-4d00-b913-beca2EXAMPLE",
            "eventType": "AwsCloudTrailInsight", "recipientAccountId": "123456789012",
            "sharedEventID": "x", "insightDetails": {"state": "Start"}, "eventCategory": "Insight"
        })
    }

    #[test]
    fn records_that_are_not_api_calls_are_skipped_in_every_batch_shape() {
        let record = seed_record("meterusage-ami");
        let versioned_1_0 = {
            let mut old = seed_record("meterusage-eks");
            old.as_object_mut().map(|o| o.remove("eventID"));
            old
        };
        for body in [
            json!({"Records": [insight(), record, versioned_1_0]}),
            json!([insight(), record, versioned_1_0]),
            json!({"Type": "Notification", "Message": json!({"Records": [insight(), record, versioned_1_0]}).to_string()}),
        ] {
            let (events, skipped) = decoded(&body.to_string());
            assert_eq!(events.len(), 1, "{body}");
            assert_eq!(events[0].event_name(), Some("MeterUsage"));
            assert_eq!(skipped, ["not_an_api_call", "bad_field"], "{body}");
        }
        // A batch of Insights events only carries nothing, and is no poison.
        let (events, skipped) = decoded(&json!({"Records": [insight()]}).to_string());
        assert!(events.is_empty());
        assert_eq!(skipped, ["not_an_api_call"]);
        let (events, skipped) = decoded(&insight().to_string());
        assert!(events.is_empty());
        assert_eq!(skipped, ["not_an_api_call"]);
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        for name in [
            "envelopes/meterusage-ami.eventbridge.json",
            "envelopes/seed.records.json",
            "envelopes/meterusage-ami.sns.json",
        ] {
            let body = format!("\u{feff}{}", fixture(name));
            assert!(!decode_ok_text(&body).is_empty(), "{name}");
        }
    }

    fn decode_ok_text(body: &str) -> Vec<Event> {
        decode(body).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn a_json_array_of_records_or_envelopes_decodes() {
        let envelope: Value =
            serde_json::from_str(&fixture("failing/meterusage-throttled.eventbridge.json"))
                .expect("JSON");
        let events = decode_ok_text(&json!([seed_record("meterusage-ami"), envelope]).to_string());
        let names: Vec<_> = events.iter().map(|e| e.error_code()).collect();
        assert_eq!(names, [None, Some("ThrottlingException")]);
        assert_eq!(decode_err("[]").label(), "empty_records");
        assert_eq!(
            decode_err("[1]").to_string(),
            "array element [0] is a number, not a JSON object"
        );
    }

    #[test]
    fn lookup_events_output_decodes_its_cloudtrail_events() {
        let record = seed_record("registerusage-eks");
        let body = json!({"Events": [
            {"EventId": "x", "EventName": "RegisterUsage", "CloudTrailEvent": record.to_string()},
            {"EventId": "y", "EventName": "Broken", "CloudTrailEvent": "not json"},
        ], "NextToken": "t"});
        let (events, skipped) = decoded(&body.to_string());
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_name(), Some("RegisterUsage"));
        assert_eq!(skipped, ["record_not_an_object"]);
    }

    #[test]
    fn lake_event_times_are_read_as_utc() {
        assert_eq!(
            parse_time("2025-03-26 16:43:57.000000000").map(|t| t.to_string()),
            Some("2025-03-26T16:43:57Z".to_owned())
        );
        assert_eq!(parse_time("2025-03-26").map(|t| t.to_string()), None);
        assert_eq!(
            parse_time("2020-07-10T23:06:42Z").map(|t| t.to_string()),
            Some("2020-07-10T23:06:42Z".to_owned())
        );
    }

    #[test]
    fn refusals_name_the_shape_found() {
        let cases = [
            (
                json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "m"}}]}),
                "a Lambda SNS event",
            ),
            (
                json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]}),
                "an S3 event notification",
            ),
            (
                json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}),
                "a Lambda SQS event",
            ),
            (
                json!({"awsAccountId": "1", "digestStartTime": "x", "digestS3Object": "o"}),
                "a CloudTrail digest file",
            ),
            (
                json!({"Type": "SubscriptionConfirmation", "Message": "m"}),
                "an SNS subscription confirmation",
            ),
        ];
        for (body, what) in cases {
            let kind = decode_err(&body.to_string());
            assert_eq!(kind.label(), "foreign_shape", "{body}");
            assert!(
                kind.to_string().starts_with(&format!("body is {what}")),
                "{kind}"
            );
        }
    }

    #[test]
    fn envelope_fields_are_checked() {
        let kind = decode_err(r#"{"detail-type": "x", "source": "y", "detail": "z"}"#);
        assert_eq!(
            kind.to_string(),
            "EventBridge envelope: `detail` must be an object, found a string"
        );
    }

    /// Serde's derived structs also read arrays (fields in order): the fast path must not
    /// take those for an envelope when the general path does not.
    #[test]
    fn arrays_are_not_envelopes_on_the_fast_path_either() {
        let top = decode_err(r#"["AWS API Call via CloudTrail", "aws.x", {}]"#);
        assert_eq!(top.label(), "record_not_an_object");
        let detail = decode_err(r#"{"detail-type": "x", "source": "y", "detail": []}"#);
        assert_eq!(
            detail.to_string(),
            "EventBridge envelope: `detail` must be an object, found an array"
        );
    }

    /// Valid JSON a `Value` cannot hold, in a part the decoder skips, is decoded; reading
    /// the whole value then says why it cannot, instead of panicking.
    #[test]
    fn an_event_a_value_cannot_hold_says_so_when_read_whole() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        for odd in ["1e400", deep.as_str()] {
            let body = format!(
                r#"{{"detail-type": "x", "source": "y", "detail": {{"eventID": "e", "z": {odd}}}}}"#
            );
            let events = decode(&body).expect("the envelope decodes");
            let [event] = events.as_slice() else {
                panic!("one event expected");
            };
            assert_eq!(event.event_id(), Some("e"));
            let error = event.value().expect_err("no Value holds it");
            assert!(
                ["number out of range", "recursion limit exceeded"]
                    .iter()
                    .any(|reason| error.to_string().contains(reason)),
                "{error}"
            );
        }
    }

    #[test]
    fn sns_errors_say_they_are_inside_the_message() {
        let wrap = |message: &str| {
            json!({"Type": "Notification", "MessageId": "m", "TopicArn": "t", "Message": message})
                .to_string()
        };

        let array = decode_err(&wrap("[1, 2]"));
        assert_eq!(
            array.to_string(),
            "in SNS notification's Message: array element [0] is a number, not a JSON object"
        );
        assert_eq!(array.label(), "record_not_an_object");

        let nested = decode_err(&wrap(&wrap("{}")));
        assert!(matches!(nested, DecodeErrorKind::NestedSns));

        let empty = decode_err(&wrap(r#"{"Records": []}"#));
        assert_eq!(empty.label(), "empty_records");

        let no_message = decode_err(r#"{"Type": "Notification", "Message": 3}"#);
        assert_eq!(
            no_message.to_string(),
            "SNS notification: `Message` must be a string, found a number"
        );
    }

    #[test]
    fn decode_error_names_the_message() {
        let kind = decode_err("{}");
        let error = DecodeError::new("0f3e-message", kind);
        let text = error.to_string();
        assert!(
            text.starts_with("cannot decode SQS message 0f3e-message: JSON object with keys []")
        );
        assert_eq!(error.kind.label(), "unknown_shape");
    }

    /// The keys the decoder looks at, and one it ignores.
    const DECODER_KEYS: [&str; 15] = [
        "detail-type",
        "source",
        "detail",
        "Type",
        "Message",
        "Records",
        "eventSource",
        "eventName",
        "eventID",
        "eventTime",
        "awsRegion",
        "recipientAccountId",
        "userIdentity",
        "accountId",
        "x",
    ];

    /// Arbitrary JSON built from the keys the decoder looks at, so that generated objects
    /// reach every shape's checks, not only "unknown shape".
    fn json_value() -> impl Strategy<Value = Value> {
        let key = prop::sample::select(DECODER_KEYS.to_vec());
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            prop::sample::select(vec![
                "Notification",
                "metering-marketplace.amazonaws.com",
                ".",
                "",
                "{}",
                r#"{"Records":[]}"#,
                "aws.s3",
                "é",
            ])
            .prop_map(Value::from),
            ".*".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(key.clone(), inner.clone(), 0..6).prop_map(|map| {
                    Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }),
                // An SNS notification whose Message is generated JSON.
                inner.prop_map(|message| {
                    json!({"Type": "Notification", "Message": message.to_string()})
                }),
            ]
        })
    }

    /// Each event's text parses to its value.
    fn text_matches_value(events: &[Event]) -> Result<(), TestCaseError> {
        for event in events {
            let reparsed: Value = serde_json::from_str(event.json())
                .map_err(|error| TestCaseError::fail(error.to_string()))?;
            let value = event
                .value()
                .map_err(|error| TestCaseError::fail(error.to_string()))?;
            prop_assert_eq!(&reparsed, value);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_strings_never_panics(body in any::<String>()) {
            let _ = decode(&body);
        }

        #[test]
        fn decoding_arbitrary_json_never_panics_and_text_matches_value(value in json_value()) {
            if let Ok(events) = decode(&value.to_string()) {
                prop_assert!(!events.is_empty());
                text_matches_value(&events)?;
            }
        }

        /// The fast path is only a shortcut: what it decodes, the general path decodes the
        /// same.
        #[test]
        fn the_fast_path_agrees_with_the_general_one(
            name in prop::sample::select(SEED_NAMES.to_vec()),
            key in prop::sample::select(DECODER_KEYS.to_vec()),
            replacement in json_value(),
            detail in json_value(),
        ) {
            let mut record: Value =
                serde_json::from_str(&fixture(&format!("envelopes/{name}.cloudtrail.json")))
                    .map_err(|error| TestCaseError::fail(error.to_string()))?;
            record[key] = replacement;
            for body in [
                json!({
                    "detail-type": CLOUDTRAIL_DETAIL_TYPE, "source": "aws.metering-marketplace",
                    "detail": record
                }),
                json!({"detail-type": "x", "source": "y", "detail": detail}),
                json!(["x", "y", detail]),
            ] {
                let body = body.to_string();
                if let Some(fast) = envelope_fast_path(&body) {
                    let general = decode_parsed(&body)
                        .map_err(|error| TestCaseError::fail(error.to_string()))?
                        .events;
                    prop_assert_eq!(general.len(), 1);
                    prop_assert_eq!(&general[0].json, &fast.json);
                    prop_assert_eq!(&general[0].facts, &fast.facts);
                }
            }
        }

        /// Seed records with one field replaced by generated JSON, in each shape: unlike
        /// fully generated JSON, these mostly get past shape detection, so both the success
        /// path and each field check are exercised.
        #[test]
        fn decoding_mutated_records_never_panics_and_text_matches_value(
            name in prop::sample::select(SEED_NAMES.to_vec()),
            key in prop::sample::select(DECODER_KEYS.to_vec()),
            replacement in json_value(),
            shape in 0..4_usize,
        ) {
            let mut record: Value =
                serde_json::from_str(&fixture(&format!("envelopes/{name}.cloudtrail.json")))
                    .map_err(|error| TestCaseError::fail(error.to_string()))?;
            record[key] = replacement;
            let body = match shape {
                0 => record,
                1 => json!({ "Records": [record] }),
                2 => json!({ "Type": "Notification", "Message": record.to_string() }),
                _ => json!({
                    "detail-type": CLOUDTRAIL_DETAIL_TYPE, "source": "aws.metering-marketplace",
                    "detail": record
                }),
            };
            if let Ok(events) = decode(&body.to_string()) {
                prop_assert_eq!(events.len(), 1);
                text_matches_value(&events)?;
            }
        }

        #[test]
        fn decoding_cut_fixtures_never_panics(
            name in prop::sample::select(SEED_NAMES.to_vec()),
            shape in prop::sample::select(vec!["eventbridge", "sns", "cloudtrail"]),
            cut in any::<prop::sample::Index>(),
        ) {
            let body = fixture(&format!("envelopes/{name}.{shape}.json"));
            let chars: Vec<char> = body.chars().collect();
            let prefix: String = chars.iter().take(cut.index(chars.len() + 1)).collect();
            let _ = decode(&prefix);
        }
    }
}
