//! The one-pass fast path: an EventBridge envelope decoded from what another full pass over
//! its text read (the rule engine's matching pass), so that the commonest body is read once.

use std::sync::{LazyLock, OnceLock};

use super::MAX_BODY_BYTES;
use super::event::{DetailFacts, Event, Facts};

/// The fields of an EventBridge envelope that another pass over its text reads for the
/// decoder, each as a `T`: their paths ([`EnvelopeFields::PATHS`]), that pass's handles on
/// them, or what it found there ([`EnvelopeFields::event`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeFields<T> {
    /// With `source`, what makes the body an envelope.
    pub detail_type: T,
    pub source: T,
    pub account: T,
    pub region: T,
    pub time: T,
    /// The record's facts, in `detail`.
    pub detail: DetailFields<T>,
}

/// The record's facts an [`EnvelopeFields`] reads in `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetailFields<T> {
    pub event_id: T,
    pub event_name: T,
    pub event_source: T,
    pub error_code: T,
    pub event_time: T,
    pub recipient_account_id: T,
    pub aws_region: T,
}

impl EnvelopeFields<&'static str> {
    /// The fields' dotted paths.
    pub const PATHS: EnvelopeFields<&'static str> = EnvelopeFields {
        detail_type: "detail-type",
        source: "source",
        account: "account",
        region: "region",
        time: "time",
        detail: DetailFields {
            event_id: "detail.eventID",
            event_name: "detail.eventName",
            event_source: "detail.eventSource",
            error_code: "detail.errorCode",
            event_time: "detail.eventTime",
            recipient_account_id: "detail.recipientAccountId",
            aws_region: "detail.awsRegion",
        },
    };
}

impl<T> EnvelopeFields<T> {
    /// Each field's `T` turned into a `U`, in the order of the fields.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> EnvelopeFields<U> {
        let detail = self.detail;
        EnvelopeFields {
            detail_type: f(self.detail_type),
            source: f(self.source),
            account: f(self.account),
            region: f(self.region),
            time: f(self.time),
            detail: DetailFields {
                event_id: f(detail.event_id),
                event_name: f(detail.event_name),
                event_source: f(detail.event_source),
                error_code: f(detail.error_code),
                event_time: f(detail.event_time),
                recipient_account_id: f(detail.recipient_account_id),
                aws_region: f(detail.aws_region),
            },
        }
    }
}

/// What a pass over a body found at one of [`EnvelopeFields::PATHS`], counting only values
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

impl EnvelopeFields<Found<'_>> {
    /// The event of `body`, when another full pass over its text (the rule engine's
    /// matching pass, which checks it is a JSON object) found here what makes an
    /// EventBridge envelope: this saves the decoder its own pass over the common shape.
    ///
    /// `None` when the pass cannot vouch for the body as [`decode`](super::decode) would
    /// read it: then decode it. That is the case unless `detail-type` and `source` are one
    /// string each and some fact lies in `detail` (so `detail` is an object), with no fact
    /// repeated; and, because a pass by dotted paths cannot tell `{"detail": {"a": 1}}`
    /// from `{"detail.a": 1}` nor see a repeated `detail` key whose last value holds no
    /// fact, unless the text has exactly one `"detail"` key, no `"detail.` key and no `\u`
    /// escape (which could spell either).
    pub fn event(&self, body: &str) -> Option<Event> {
        if body.len() > MAX_BODY_BYTES {
            return None;
        }
        let (Found::One(Some(_)), Found::One(Some(_))) = (self.detail_type, self.source) else {
            return None;
        };
        let detail = &self.detail;
        let in_detail = [
            detail.event_id,
            detail.event_name,
            detail.event_source,
            detail.error_code,
            detail.event_time,
            detail.recipient_account_id,
            detail.aws_region,
        ];
        if !in_detail.iter().any(|found| matches!(found, Found::One(_)))
            || !has_one_plain_detail(body)
        {
            return None;
        }
        let text = |found: Found<'_>| match found {
            Found::One(text) => Some(text.map(str::to_owned)),
            Found::Nothing => Some(None),
            Found::Repeated => None,
        };
        let facts = Facts {
            account: text(self.account)?,
            region: text(self.region)?,
            time: text(self.time)?,
            detail: DetailFacts {
                event_id: text(detail.event_id)?,
                event_name: text(detail.event_name)?,
                event_source: text(detail.event_source)?,
                error_code: text(detail.error_code)?,
                event_time: text(detail.event_time)?,
                recipient_account_id: text(detail.recipient_account_id)?,
                aws_region: text(detail.aws_region)?,
            },
        };
        Some(Event {
            json: body.to_owned(),
            value: OnceLock::new(),
            facts,
        })
    }
}

/// Whether `body` may be an EventBridge envelope (it names `detail-type`): other shapes
/// (SNS notifications, CloudTrail records) are better decoded without first being read by
/// a pass that could not vouch for them ([`EnvelopeFields::event`]).
pub fn may_be_envelope(body: &str) -> bool {
    static DETAIL_TYPE: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(b"\"detail-type\""));
    DETAIL_TYPE.find(body.as_bytes()).is_some()
}

/// Whether `body` has exactly one `"detail"` key, no key starting `"detail.`, and no `\u`
/// escape (see [`EnvelopeFields::event`]); a `"detail"` inside a string is escaped (`\"`) and
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
