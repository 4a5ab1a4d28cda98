//! The one-pass fast path: an EventBridge envelope decoded from what another full pass over
//! its text read (the rule engine's matching pass), so that the commonest body is read once.

use std::sync::{LazyLock, OnceLock};

use super::MAX_BODY_BYTES;
use super::event::{DetailFacts, Event, Facts};

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
