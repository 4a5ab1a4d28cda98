//! The DynamoDB store: state shared by every replica, kept across restarts.
//!
//! # Table
//! Partition key `pk` (S) only, no sort key; TTL on `expires_at`. The deploy templates
//! (`deploy/cloudformation/meterwatch.yaml`, `deploy/terraform/`) create it; one item per key:
//!
//! | attribute       | type | meaning                                                        |
//! |-----------------|------|----------------------------------------------------------------|
//! | `pk`            | S    | `<kind>#<rule id>#<key>`: kind is `dedup`, `throttle`, `threshold`, `absence`, `absence-keys`, `silence` (a silence, key its id; see `state::silence`), `silences` (their index); key is the alert id (dedup) or the group key (`group_by` values joined by `\|`; a UUIDv5 digest `~…` if over 512 bytes) |
//! | `kind`          | S    | the entry's kind, for people reading the table                 |
//! | `entry`         | S    | the entry as JSON (see `state::Entry`), e.g. `{"kind":"dedup","sent":null}` |
//! | `version`       | N    | the item's write count (from 1 again after a delete); compared only for an item without `token` |
//! | `token`         | S    | 128 random bits (hex) per write, the same in the SDK's retries of it: what conditional writes compare |
//! | `expires_at_ms` | N    | epoch milliseconds after which the entry is treated as absent |
//! | `expires_at`    | N    | epoch seconds, the TTL attribute: DynamoDB deletes the item some time (typically within days) after it |
//!
//! # Concurrency
//! Every change is read → decide → conditional write: `PutItem` (or `DeleteItem`) with
//! `attribute_not_exists(pk)` for a new item, else `token = :read_token`, the token of the
//! write that left the item read. A writer that lost the race
//! (`ConditionalCheckFailedException`) reads again and decides again, so of two replicas
//! deciding on one key, exactly one decision applies and the other sees its result. That is
//! the `attribute_not_exists(pk) OR expires_at < :now` claim generalised: an expired item is
//! absent to the decision, and its token still guards the overwrite. Reads are strongly
//! consistent. An expired item that TTL has not deleted yet is never trusted, since TTL
//! deletion is lazy.
//!
//! The condition is a token, not the version: versions start again at 1 when an item is
//! deleted (an undo, TTL) and created again, so a late write conditioned on "version 1" could
//! land on someone else's new item. No two writes carry the same token. An item written before
//! writes carried tokens is conditioned on `attribute_not_exists(token) AND version =
//! :read_version`; the version is still counted on every write (it costs nothing, and keeps
//! such releases' version conditions working beside this one during a rolling upgrade).
//!
//! The SDK retries a write whose response is late or lost, and the retry would fail its own
//! condition when the first attempt was applied: the writer would take its own write for a
//! rival's (a dedup claim then waits out its lease). So each write's condition also accepts
//! an item carrying that write's `token`: a retry of an applied write rewrites the same item.
//! A dedup claim's renewal is the one write that keeps the token it finds (its own claim's),
//! on condition of that token: the claim stays the holder's, whether or not the renewal's
//! response arrived.
//!
//! Cost: an alert of a rule without other controls takes one consistent read and two writes
//! (the dedup claim, then its confirmation, written on condition of the claim's token
//! without reading again: [`super::Store::replace_mine`]); a repeated event one read; a
//! throttle, threshold or absence decision one more read and (usually) one write; a claim
//! held longer than 15 s (a slow publish, a group's wait) one write per 15 s. Events no
//! rule matches never touch the table. IAM: `dynamodb:GetItem`,
//! `PutItem` and `DeleteItem` on the table (the deploy templates' policy grants these).

use super::{Change, Entry, Millis, StateError, Token, Undo, Write, Written};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

/// Attempts at one key's read-decide-write before giving up (the message is then left for
/// redelivery): contention on one key is two or three replicas, never dozens.
const MAX_ATTEMPTS: u32 = 8;

/// State in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

/// An item as read: its live entry (if not expired), what a write over it is conditioned
/// on, and its version.
struct Read {
    previous: Option<(Entry, Millis)>,
    expect: Expect,
    version: u64,
}

/// The item a conditional write expects to find (besides a retry of itself).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expect {
    /// No item.
    Absent,
    /// The item one write left: it carries that write's token.
    Token(Token),
    /// An item written before writes carried a token: its version, and still no token.
    Legacy(u64),
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn read(&self, key: &str, now: Millis) -> Result<Read, StateError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| store_error("GetItem", key, &error))?;
        let Some(item) = output.item() else {
            return Ok(Read {
                previous: None,
                expect: Expect::Absent,
                version: 0,
            });
        };
        let number = |name: &str| -> Result<i64, StateError> {
            item.get(name)
                .and_then(|value| value.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or_else(|| StateError::Corrupt {
                    key: key.to_owned(),
                    message: format!("missing or non-numeric `{name}`"),
                })
        };
        let version = u64::try_from(number("version")?).unwrap_or(0);
        let expect = match item.get("token") {
            None => Expect::Legacy(version),
            Some(token) => token
                .as_s()
                .ok()
                .and_then(|hex| Token::from_str_radix(hex, 16).ok())
                .map(Expect::Token)
                .ok_or_else(|| StateError::Corrupt {
                    key: key.to_owned(),
                    message: "`token` is not a hex string".to_owned(),
                })?,
        };
        let expires_at = number("expires_at_ms")?;
        if expires_at <= now {
            return Ok(Read {
                previous: None,
                expect,
                version,
            });
        }
        let text = item
            .get("entry")
            .and_then(|value| value.as_s().ok())
            .ok_or_else(|| StateError::Corrupt {
                key: key.to_owned(),
                message: "missing `entry`".to_owned(),
            })?;
        let entry: Entry = serde_json::from_str(text).map_err(|error| StateError::Corrupt {
            key: key.to_owned(),
            message: error.to_string(),
        })?;
        Ok(Read {
            previous: Some((entry, expires_at)),
            expect,
            version,
        })
    }

    /// Writes `entry` at `version` if the item is still the one `expected`, or if it is
    /// this very write (a retry of it). Returns what it wrote, or `None` when someone else
    /// wrote first.
    pub(super) async fn put(
        &self,
        key: &str,
        entry: &Entry,
        expires_at: Millis,
        expected: &Expect,
        version: u64,
    ) -> Result<Option<Written>, StateError> {
        self.put_as(
            key,
            entry,
            expires_at,
            expected,
            version,
            fastrand::u128(..),
        )
        .await
    }

    /// [`DynamoStore::put`] carrying `token`: a fresh one, or (a renewal) the token of the
    /// write it extends, which stays that write's.
    pub(super) async fn put_as(
        &self,
        key: &str,
        entry: &Entry,
        expires_at: Millis,
        expected: &Expect,
        version: u64,
        token: Token,
    ) -> Result<Option<Written>, StateError> {
        let json = serde_json::to_string(entry).map_err(|error| StateError::Corrupt {
            key: key.to_owned(),
            message: error.to_string(),
        })?;
        let kind = json_kind(entry);
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.to_owned()))
            .item("kind", AttributeValue::S(kind.to_owned()))
            .item("entry", AttributeValue::S(json))
            .item("version", AttributeValue::N(version.to_string()))
            .item("expires_at_ms", AttributeValue::N(expires_at.to_string()))
            .item(
                "expires_at",
                AttributeValue::N((expires_at.div_euclid(1000) + 1).to_string()),
            )
            .item("token", AttributeValue::S(hex(token)))
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", AttributeValue::S(hex(token)));
        let (condition, request) = expected.condition(request);
        match request
            .condition_expression(format!("{condition} OR #token = :token"))
            .send()
            .await
        {
            Ok(_) => Ok(Some(Written::Item { token, version })),
            Err(error) if is_condition_failure(&error) => Ok(None),
            Err(error) => Err(store_error("PutItem", key, &error)),
        }
    }

    /// Deletes the item if it is still the one `expected`, or if it is gone already: a
    /// retry of an applied delete needs no token to succeed.
    async fn delete(&self, key: &str, expected: &Expect) -> Result<bool, StateError> {
        let request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()));
        let (condition, request) = expected.condition(request);
        match request
            .condition_expression(format!("attribute_not_exists(pk) OR {condition}"))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(error) if is_condition_failure(&error) => Ok(false),
            Err(error) => Err(store_error("DeleteItem", key, &error)),
        }
    }

    pub(super) async fn update<D>(
        &self,
        key: &str,
        now: Millis,
        mut decide: impl FnMut(Option<&Entry>) -> Change<D>,
    ) -> Result<(D, Undo), StateError> {
        for _ in 0..MAX_ATTEMPTS {
            let Read {
                previous,
                expect,
                version,
            } = self.read(key, now).await?;
            let change = decide(previous.as_ref().map(|(entry, _)| entry));
            let written = match &change.write {
                Write::Put { entry, expires_at } => {
                    self.put(key, entry, *expires_at, &expect, version + 1)
                        .await?
                }
                // No item: nothing to delete (and one created since read must stay).
                Write::Delete if expect == Expect::Absent => {
                    return Ok((change.decision, Undo::nothing(key.to_owned())));
                }
                Write::Delete => self.delete(key, &expect).await?.then_some(Written::Deleted),
                Write::Keep => return Ok((change.decision, Undo::nothing(key.to_owned()))),
            };
            if let Some(written) = written {
                let undo = Undo {
                    key: key.to_owned(),
                    previous,
                    written: Some(written),
                };
                return Ok((change.decision, undo));
            }
        }
        Err(StateError::Contended {
            key: key.to_owned(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Restores the entry before our write, unless someone wrote after us.
    pub(super) async fn undo(&self, undo: Undo) -> Result<(), StateError> {
        // What our write left: an item carrying its token, or (a delete) no item.
        let (left, version) = match undo.written {
            None => return Ok(()),
            Some(Written::Item { token, version }) => (Expect::Token(token), version),
            // The next write's version is not known without reading: 1, as for a new item.
            Some(Written::Deleted) => (Expect::Absent, 0),
        };
        match (&undo.previous, &left) {
            (Some((entry, expires_at)), _) => {
                self.put(&undo.key, entry, *expires_at, &left, version + 1)
                    .await?;
            }
            (None, Expect::Token(_)) => {
                self.delete(&undo.key, &left).await?;
            }
            // A delete of an expired item: nothing to restore.
            (None, _) => {}
        }
        Ok(())
    }

    /// Creates the table as the deploy templates do (tests against moto, local runs).
    pub async fn create_table(&self) -> Result<(), StateError> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
            TimeToLiveSpecification,
        };
        let build = |error: aws_sdk_dynamodb::error::BuildError| StateError::Store {
            operation: "CreateTable",
            key: self.table.clone(),
            message: error.to_string(),
            retryable: false,
        };
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(build)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(build)?,
            )
            .send()
            .await
            .map_err(|error| store_error("CreateTable", &self.table, &error))?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("expires_at")
                    .enabled(true)
                    .build()
                    .map_err(build)?,
            )
            .send()
            .await
            .map_err(|error| store_error("UpdateTimeToLive", &self.table, &error))?;
        Ok(())
    }
}

/// A token as stored: 32 hex digits.
fn hex(token: Token) -> String {
    format!("{token:032x}")
}

impl Expect {
    /// The condition that the item is this one, with the names and values it uses.
    fn condition<B: ConditionBuilder>(&self, request: B) -> (&'static str, B) {
        match self {
            Expect::Absent => ("attribute_not_exists(pk)", request),
            Expect::Token(token) => (
                "#token = :read",
                request
                    .name("#token", "token")
                    .value(":read", AttributeValue::S(hex(*token))),
            ),
            Expect::Legacy(version) => (
                "(attribute_not_exists(#token) AND #version = :read)",
                request
                    .name("#token", "token")
                    .name("#version", "version")
                    .value(":read", AttributeValue::N(version.to_string())),
            ),
        }
    }
}

/// The parts of `PutItem` and `DeleteItem` requests a condition sets.
trait ConditionBuilder: Sized {
    fn name(self, placeholder: &str, name: &str) -> Self;
    fn value(self, placeholder: &str, value: AttributeValue) -> Self;
}

macro_rules! condition_builder {
    ($builder:ty) => {
        impl ConditionBuilder for $builder {
            fn name(self, placeholder: &str, name: &str) -> Self {
                self.expression_attribute_names(placeholder, name)
            }
            fn value(self, placeholder: &str, value: AttributeValue) -> Self {
                self.expression_attribute_values(placeholder, value)
            }
        }
    };
}
condition_builder!(aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder);
condition_builder!(aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder);

fn json_kind(entry: &Entry) -> &'static str {
    match entry {
        Entry::Dedup(_) => "dedup",
        Entry::Throttle(_) => "throttle",
        Entry::Threshold(_) => "threshold",
        Entry::Heartbeat(_) => "heartbeat",
        Entry::Keys(_) => "keys",
        Entry::Silence(_) => "silence",
        Entry::Silences(_) => "silences",
    }
}

fn is_condition_failure<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error.code() == Some("ConditionalCheckFailedException")
}

fn store_error<E>(
    operation: &'static str,
    key: &str,
    error: &SdkError<E, HttpResponse>,
) -> StateError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
{
    // Throttling, timeouts and dispatch failures pass; a missing table or denied access
    // needs an operator.
    let retryable = match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        SdkError::ServiceError(_) => matches!(
            error.code(),
            Some(
                "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "TransactionConflictException"
            )
        ),
        _ => false,
    };
    StateError::Store {
        operation,
        key: key.to_owned(),
        message: crate::aws::describe(error),
        retryable,
    }
}
