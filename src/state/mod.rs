//! Stateful rules' decisions and where their state lives: what `noise` drives for a rule's
//! alerts between the rule engine and the sinks. `rules` compiles its noise-control tables
//! into [`Controls`]; `noise` calls the decisions through the [`Store`]. Imports only leaves
//! (`field`, `envelope`, `aws`): no rules, alerts, sinks or daemon.
//!
//! # Layout
//! - `mod.rs`: a rule's compiled [`Controls`], group keys, the [`Clock`], and the [`Store`]
//!   every decision keeps its state in.
//! - [`dedup`]: one alert per CloudTrail event (and element) within a window.
//! - [`throttle`]: one alert per group per interval; the next one counts what was held back.
//! - [`group`]: `[rule.group]` (matches collected for a while, then one alert summarising
//!   them; its batches are `noise::group`'s).
//! - [`threshold`]: alert when N matches fall within a window of *event* time.
//! - [`absence`]: matches are heartbeats; alert when a key stops, resolve when it resumes.
//! - [`memory`], [`dynamodb`]: the two stores.
//!
//! # Design
//! Each stage is pure decision logic over one [`Entry`]: `(previous entry, input, now) →
//! (next entry, decision)`. The store applies a decision atomically ([`Store::update`]): the
//! memory store under a mutex, the DynamoDB store by optimistic concurrency (read, decide,
//! write on condition that the item still carries the `token` of the write read, retry
//! otherwise). So two
//! replicas sharing a table can never both take the same decision for one key, and the logic
//! is tested once, with paused time, whatever the store.
//!
//! Time comes from a [`Clock`], never from `SystemTime` directly: tests run with tokio's
//! paused clock and move it forward. A replay (event files, stdin) runs on the events' own
//! time ([`Clock::events`]), so that it judges what happened then, the same way every run.

pub mod absence;
pub mod dedup;
pub mod dynamodb;
pub mod group;
pub mod memory;
pub mod threshold;
pub mod throttle;

use crate::envelope::Event;
use crate::field::{FieldPath, Tree};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

pub use dynamodb::DynamoStore;
pub use memory::MemoryStore;

/// Milliseconds since the Unix epoch: how every stage stores time.
pub type Millis = i64;

/// Converts a duration to [`Millis`], saturating (rule durations are far below the limit).
pub fn millis(duration: Duration) -> Millis {
    Millis::try_from(duration.as_millis()).unwrap_or(Millis::MAX)
}

/// A rule's noise controls, compiled from its `[rule.dedup]`, `[rule.throttle]`,
/// `[rule.group]`, `[rule.threshold]` and `[rule.absence]` tables.
///
/// Dedup applies to every rule unless disabled. At most one of the others: they each decide
/// when a match becomes an alert, and combining them would make that hard to predict.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Controls {
    /// How long an alert id is remembered; `None` when dedup is disabled.
    pub dedup: Option<Duration>,
    /// What, besides dedup, stands between a match and an alert.
    pub gate: Gate,
}

impl Controls {
    /// An absence rule's: its matches are heartbeats, never alerts by themselves.
    pub fn is_absence(&self) -> bool {
        matches!(self.gate, Gate::Absence(_))
    }

    /// Whether the gate judges a key by all of its events (absence, threshold), which
    /// consumers sharing a queue with state in memory each see only a share of.
    pub fn needs_every_event(&self) -> bool {
        matches!(self.gate, Gate::Absence(_) | Gate::Threshold(_))
    }

    /// The controls of a rule that says nothing: dedup for the default window.
    pub fn standard() -> Controls {
        Controls {
            dedup: Some(dedup::DEFAULT_WINDOW),
            gate: Gate::None,
        }
    }

    /// The fields the rule's group key reads, if it has one.
    pub fn group_by(&self) -> Option<&GroupBy> {
        match &self.gate {
            Gate::None => None,
            Gate::Throttle(spec) => Some(&spec.group_by),
            Gate::Group(spec) => Some(&spec.group_by),
            Gate::Threshold(spec) => Some(&spec.group_by),
            Gate::Absence(spec) => Some(&spec.group_by),
        }
    }
}

/// The one control (beyond dedup) a rule may have.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Gate {
    /// Every (deduplicated) match is an alert.
    #[default]
    None,
    Throttle(throttle::Spec),
    Group(group::Spec),
    Threshold(threshold::Spec),
    Absence(absence::Spec),
}

/// The fields whose values make a group key (`group_by`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupBy {
    pub fields: Vec<FieldPath>,
}

/// One group's identity: its values, readable, and as one string for state keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct GroupKey {
    /// The values joined by `|` (several values of one field joined by `,`); empty for a
    /// rule without `group_by`.
    pub text: String,
    /// The values by dotted path, for the alert.
    pub values: Vec<(String, String)>,
}

impl GroupBy {
    /// The key of `envelope`, whose fields rules read are `fields`: every field's values
    /// (missing fields count as empty). An envelope not made by EventBridge may lack
    /// `account` and `region`; they then come from its record, as the alert's do
    /// ([`Event::account`]), so that `group_by = ["account"]` groups as alerts read.
    pub fn key(&self, fields: &impl Tree, envelope: &Event) -> GroupKey {
        self.key_of(envelope, |idx| {
            self.fields[idx]
                .values(fields)
                .into_iter()
                .filter_map(|value| value.as_text().map(Cow::into_owned))
                .collect()
        })
    }

    /// The key of `envelope` from each field's values as text (`texts(idx)` for the field
    /// at `idx`), wherever they were read; see [`GroupBy::key`].
    pub fn key_of(
        &self,
        envelope: &Event,
        mut texts: impl FnMut(usize) -> Vec<String>,
    ) -> GroupKey {
        let mut key = GroupKey::default();
        for (idx, field) in self.fields.iter().enumerate() {
            let mut text = texts(idx).join(",");
            let fallback = match field.as_str() {
                "account" => envelope.account(),
                "region" => envelope.region(),
                _ => None,
            };
            if let (true, Some(fallback)) = (text.is_empty(), fallback) {
                text = fallback.to_owned();
            }
            if idx > 0 {
                key.text.push('|');
            }
            key.text.push_str(&text);
            key.values.push((field.as_str().to_owned(), text));
        }
        key
    }

    /// The key an expected-list entry names: one value per field, joined by `|`.
    pub fn key_from_text(&self, text: &str) -> GroupKey {
        let values: Vec<(String, String)> = self
            .fields
            .iter()
            .zip(text.split('|').chain(std::iter::repeat("")))
            .map(|(field, value)| (field.as_str().to_owned(), value.to_owned()))
            .collect();
        GroupKey {
            text: text.to_owned(),
            values,
        }
    }
}

/// State keys (DynamoDB `pk`) stay readable, but never exceed a size DynamoDB accepts
/// (2048 bytes): a long group key is replaced by its UUIDv5 digest.
pub fn state_key(kind: &str, rule: &str, key: &str) -> String {
    const MAX_KEY_BYTES: usize = 512;
    let join = |last: &str| {
        // Two or three keys per alert and heartbeat: `format!` would cost ten times this.
        let mut joined = String::with_capacity(kind.len() + rule.len() + last.len() + 2);
        for part in [kind, "#", rule, "#", last] {
            joined.push_str(part);
        }
        joined
    };
    if key.len() <= MAX_KEY_BYTES {
        join(key)
    } else {
        let digest = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, key.as_bytes());
        join(&format!("~{digest}"))
    }
}

/// Where "now" comes from. Production reads the system clock; a replay reads the events'
/// time; tests anchor a wall time to tokio's (pausable) clock, so advancing tokio time
/// advances this clock too.
#[derive(Debug, Clone)]
pub enum Clock {
    System,
    /// `epoch` at `started`, moving with tokio time.
    Tokio {
        epoch: jiff::Timestamp,
        started: tokio::time::Instant,
    },
    /// The latest event time [`Clock::observe`]d (`NOT_YET` before the first), for
    /// finite sources: a replay of last Tuesday is judged in last Tuesday's time, whatever
    /// the wall clock says and however fast it is read.
    Events(Arc<AtomicI64>),
}

/// An event clock that has seen no event time yet.
const NOT_YET: Millis = Millis::MIN;

impl Clock {
    /// A clock that reads `epoch` now and follows tokio time from here.
    pub fn tokio_from(epoch: jiff::Timestamp) -> Clock {
        Clock::Tokio {
            epoch,
            started: tokio::time::Instant::now(),
        }
    }

    /// A clock that follows the events' time ([`Clock::Events`]).
    pub fn events() -> Clock {
        Clock::Events(Arc::new(AtomicI64::new(NOT_YET)))
    }

    /// Now. An event clock that has seen no event time reads the system clock: only an
    /// event without a time can be judged before the first timed one.
    pub fn now(&self) -> Millis {
        match self {
            Clock::System => jiff::Timestamp::now().as_millisecond(),
            Clock::Tokio { epoch, started } => epoch.as_millisecond() + millis(started.elapsed()),
            Clock::Events(latest) => match latest.load(Ordering::SeqCst) {
                NOT_YET => jiff::Timestamp::now().as_millisecond(),
                latest => latest,
            },
        }
    }

    /// For an event clock: moves it to `event_time` if that is later (an out-of-order event
    /// never turns it back) and returns the clock's time; `None` for other clocks.
    pub fn observe(&self, event_time: Millis) -> Option<Millis> {
        match self {
            Clock::Events(latest) => Some(
                latest
                    .fetch_max(event_time, Ordering::SeqCst)
                    .max(event_time),
            ),
            Clock::System | Clock::Tokio { .. } => None,
        }
    }

    /// Whether an event clock has seen an event time.
    pub fn has_observed(&self) -> bool {
        matches!(self, Clock::Events(latest) if latest.load(Ordering::SeqCst) != NOT_YET)
    }
}

/// The state of one key, whichever stage owns it. Stored as is in memory and as JSON (the
/// `entry` attribute) in DynamoDB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    Dedup(dedup::Seen),
    Throttle(throttle::Window),
    // Boxed, as the larger kinds: every slot of the memory store is the size of the
    // largest, and most hold a dedup or throttle entry of 16 bytes.
    Threshold(Box<threshold::Counts>),
    Heartbeat(Box<absence::Heartbeat>),
    Keys(absence::Learned),
}

/// What a decision does to its key's entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Leave it as it is.
    Keep,
    /// Replace it; it is forgotten after `expires_at` (the DynamoDB TTL attribute).
    Put { entry: Entry, expires_at: Millis },
    /// Remove it.
    Delete,
}

/// A stage's decision and what it writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Change<D> {
    pub write: Write,
    pub decision: D,
}

/// How to take back a write whose alert could not be sent (so that a redelivery decides
/// again): the entry before, and what the write left, so that a later write by someone
/// else is never overwritten.
#[derive(Debug, Clone, PartialEq)]
pub struct Undo {
    key: String,
    previous: Option<(Entry, Millis)>,
    /// `None` when nothing was written: there is nothing to undo.
    written: Option<Written>,
}

/// What a write left at its key: a later write on condition that the item is still what
/// this one left compares the token, which no other write carries (a version number would
/// be reused once the item is deleted and created again).
#[derive(Debug, Clone, PartialEq)]
enum Written {
    /// An item carrying `token`, unique to the write. `version` is the DynamoDB item's
    /// write counter (see [`dynamodb`]); the memory store leaves it 0.
    Item { token: Token, version: u64 },
    /// No item: the write was a delete.
    Deleted,
}

/// A write's identity: unique per write (random in DynamoDB, a counter in memory).
type Token = u128;

impl Undo {
    pub fn nothing(key: String) -> Undo {
        Undo {
            key,
            previous: None,
            written: None,
        }
    }

    /// The key the write was made at.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// A state operation that failed: the message is left for redelivery.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state store {operation} failed for {key}: {message}")]
    Store {
        operation: &'static str,
        key: String,
        message: String,
        retryable: bool,
    },
    #[error("state entry {key} is not valid: {message}")]
    Corrupt { key: String, message: String },
    #[error(
        "state entry {key} kept changing under concurrent writers; gave up after {attempts} attempts"
    )]
    Contended { key: String, attempts: u32 },
}

/// Where state lives: the process (one replica) or a DynamoDB table (several, restarts).
#[derive(Debug)]
pub enum Store {
    Memory(MemoryStore),
    Dynamodb(DynamoStore),
}

impl Store {
    /// Applies `decide` to the entry at `key` atomically and returns its decision.
    ///
    /// An entry past its `expires_at` is `None` to `decide`. `decide` may run more than once
    /// (the DynamoDB store retries when another writer got there first), so it must not
    /// have side effects.
    pub async fn update<D>(
        &self,
        key: &str,
        now: Millis,
        decide: impl FnMut(Option<&Entry>) -> Change<D>,
    ) -> Result<(D, Undo), StateError> {
        match self {
            Store::Memory(store) => Ok(store.update(key, now, decide)),
            // Boxed here and below: SDK futures are kilobytes, and unboxed they would size
            // every caller's future, the memory store's included.
            Store::Dynamodb(store) => Box::pin(store.update(key, now, decide)).await,
        }
    }

    /// Reads the entry at `key` (`None` if absent or expired).
    pub async fn get(&self, key: &str, now: Millis) -> Result<Option<Entry>, StateError> {
        let (entry, _) = self
            .update(key, now, |entry| Change {
                write: Write::Keep,
                decision: entry.cloned(),
            })
            .await?;
        Ok(entry)
    }

    /// Replaces the write `mine` made (e.g. a dedup claim, by its confirmation) with
    /// `write`. The DynamoDB store writes on condition that the item still carries the token
    /// `mine` wrote, without reading it first (one request instead of two); if someone wrote
    /// since, or `mine` wrote nothing, `write` is applied over whatever is there, as
    /// [`Store::update`] would.
    pub async fn replace_mine(
        &self,
        mine: &Undo,
        now: Millis,
        write: Write,
    ) -> Result<(), StateError> {
        if let (
            Store::Dynamodb(store),
            Some(Written::Item { token, version }),
            Write::Put { entry, expires_at },
        ) = (self, &mine.written, &write)
            && Box::pin(store.put(
                &mine.key,
                entry,
                *expires_at,
                &dynamodb::Expect::Token(*token),
                version + 1,
            ))
            .await?
            .is_some()
        {
            return Ok(());
        }
        self.update(&mine.key, now, |_| Change {
            write: write.clone(),
            decision: (),
        })
        .await?;
        Ok(())
    }

    /// Renews the write `mine` made (a dedup claim) with `write`, only if the entry is still
    /// the one `mine` left: true if it was (and now holds `write`), false if someone wrote
    /// since (the claim ran out and was taken) or `mine` wrote nothing. The write keeps
    /// `mine`'s token, so that a renewal cut off mid-request (its response lost, the task
    /// aborted) leaves `mine` able to confirm or undo its claim all the same.
    pub async fn renew_mine(&self, mine: &mut Undo, write: Write) -> Result<bool, StateError> {
        let (Some(Written::Item { token, version }), Write::Put { entry, expires_at }) =
            (&mut mine.written, write)
        else {
            return Ok(false);
        };
        match self {
            Store::Memory(store) => Ok(store.renew(&mine.key, *token, entry, expires_at)),
            Store::Dynamodb(store) => {
                let renewed = Box::pin(store.put_as(
                    &mine.key,
                    &entry,
                    expires_at,
                    &dynamodb::Expect::Token(*token),
                    *version + 1,
                    *token,
                ))
                .await?;
                if renewed.is_some() {
                    *version += 1;
                }
                Ok(renewed.is_some())
            }
        }
    }

    /// Takes back a write at once, without waiting, where the store can (memory: for a
    /// guard dropped before its alert was sent); gives it back where it cannot (DynamoDB).
    pub fn undo_at_once(&self, undo: Undo) -> Result<(), Undo> {
        match self {
            Store::Memory(store) => {
                store.undo(undo);
                Ok(())
            }
            Store::Dynamodb(_) => Err(undo),
        }
    }

    /// Takes back a write (see [`Undo`]); a no-op if someone wrote since.
    pub async fn undo(&self, undo: Undo) -> Result<(), StateError> {
        if undo.written.is_none() {
            return Ok(());
        }
        match self {
            Store::Memory(store) => {
                store.undo(undo);
                Ok(())
            }
            Store::Dynamodb(store) => Box::pin(store.undo(undo)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn group_by(paths: &[&str]) -> GroupBy {
        GroupBy {
            fields: paths
                .iter()
                .map(|p| FieldPath::parse(p).expect("valid test path"))
                .collect(),
        }
    }

    #[test]
    fn group_keys_join_fields_and_tolerate_missing_ones() {
        let by = group_by(&[
            "account",
            "detail.requestParameters.productCode",
            "detail.x",
        ]);
        let event = json!({"account": "1", "detail": {"requestParameters": {"productCode": "p"}}});
        let key = by.key(&event, &envelope(&event));
        assert_eq!(key.text, "1|p|");
        assert_eq!(
            key.values[1],
            ("detail.requestParameters.productCode".into(), "p".into())
        );
        assert_eq!(by.key_from_text("1|p|").text, key.text);
    }

    fn envelope(event: &Value) -> Event {
        let mut envelope = json!({
            "version": "0", "id": "e", "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.metering-marketplace", "time": "2020-07-10T23:06:42Z",
            "resources": [], "detail": {"eventSource": "metering-marketplace.amazonaws.com"},
        });
        json_merge(&mut envelope, event);
        let mut events = crate::envelope::decode(&envelope.to_string()).expect("an envelope");
        events.remove(0)
    }

    fn json_merge(into: &mut Value, from: &Value) {
        match (into, from) {
            (Value::Object(into), Value::Object(from)) => {
                for (key, value) in from {
                    json_merge(into.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
            (into, from) => *into = from.clone(),
        }
    }

    #[test]
    fn account_and_region_missing_from_the_envelope_come_from_the_record() {
        let by = group_by(&["account", "region", "detail.requestParameters.productCode"]);
        let event = json!({"detail": {
            "recipientAccountId": "210987654321", "awsRegion": "eu-west-1",
            "requestParameters": {"productCode": "p"},
        }});
        let key = by.key(&event, &envelope(&event));
        assert_eq!(key.text, "210987654321|eu-west-1|p");
        // The envelope's own values win when it has them.
        let event = json!({"account": "1", "region": "us-east-1", "detail": {
            "recipientAccountId": "210987654321", "awsRegion": "eu-west-1",
        }});
        assert_eq!(by.key(&event, &envelope(&event)).text, "1|us-east-1|");
    }

    #[test]
    fn long_state_keys_are_digested() {
        assert_eq!(state_key("dedup", "r", "k"), "dedup#r#k");
        let long = "x".repeat(2000);
        let key = state_key("throttle", "r", &long);
        assert!(key.len() < 100 && key.starts_with("throttle#r#~"), "{key}");
        assert_eq!(key, state_key("throttle", "r", &long));
    }

    #[test]
    fn the_event_clock_reads_the_latest_event_time_seen() {
        let clock = Clock::events();
        assert!(!clock.has_observed());
        assert_eq!(clock.observe(5_000), Some(5_000));
        assert_eq!(
            clock.observe(3_000),
            Some(5_000),
            "a late event does not turn it back"
        );
        assert_eq!(clock.now(), 5_000);
        assert!(clock.has_observed());
        assert_eq!(Clock::System.observe(1), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_follows_paused_time() {
        let clock = Clock::tokio_from(jiff::Timestamp::from_second(1_000).expect("valid"));
        assert_eq!(clock.now(), 1_000_000);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now(), 1_090_000);
    }
}
