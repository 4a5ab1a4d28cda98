//! The DynamoDB store: state shared by every replica, kept across restarts.
//!
//! # Table
//! Partition key `pk` (S) only, no sort key; TTL on `expires_at`. The deploy templates
//! (`deploy/cloudformation/meterwatch.yaml`, `deploy/terraform/`) create it; one item per key:
//!
//! | attribute       | type | meaning                                                        |
//! |-----------------|------|----------------------------------------------------------------|
//! | `pk`            | S    | `<kind>#<rule id>#<key>`: kind is `dedup`, `throttle`, `threshold`, `absence`, `absence-keys`; key is the alert id (dedup) or the group key (`group_by` values joined by `\|`; a UUIDv5 digest `~…` if over 512 bytes) |
//! | `kind`          | S    | the entry's kind, for people reading the table                 |
//! | `entry`         | S    | the entry as JSON (see `state::Entry`), e.g. `{"kind":"dedup","sent":null}` |
//! | `version`       | N    | incremented by every write: what conditional writes compare    |
//! | `token`         | S    | random per write, the same in the SDK's retries of it: see below |
//! | `expires_at_ms` | N    | epoch milliseconds after which the entry is treated as absent |
//! | `expires_at`    | N    | epoch seconds, the TTL attribute: DynamoDB deletes the item some time (typically within days) after it |
//!
//! # Concurrency
//! Every change is read → decide → conditional write: `PutItem` with
//! `attribute_not_exists(pk)` for a new item, else `version = :read_version`. A writer that
//! lost the race (`ConditionalCheckFailedException`) reads again and decides again, so of two
//! replicas deciding on one key, exactly one decision applies and the other sees its result.
//! That is the `attribute_not_exists(pk) OR expires_at < :now` claim generalised: an expired
//! item is absent to the decision, and its version still guards the overwrite. Reads are
//! strongly consistent. An expired item that TTL has not deleted yet is never trusted, since
//! TTL deletion is lazy.
//!
//! The SDK retries a write whose response is late or lost, and the retry would fail its own
//! condition when the first attempt was applied: the writer would take its own write for a
//! rival's (a dedup claim then waits out its lease). So each write's condition also accepts
//! an item carrying that write's `token`: a retry of an applied write rewrites the same item.
//!
//! Cost: an alert of a rule without other controls takes one consistent read and two writes
//! (the dedup claim, then its confirmation, written on condition of the claim's version
//! without reading again: [`super::Store::replace_mine`]); a repeated event one read; a
//! throttle, threshold or absence decision one more read and (usually) one write. Events no
//! rule matches never touch the table. IAM: `dynamodb:GetItem`,
//! `PutItem` and `DeleteItem` on the table (the deploy templates' policy grants these).

use super::{Change, Entry, Millis, StateError, Undo, Write};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
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

/// An item as read: its live entry (if not expired) and its version.
struct Read {
    previous: Option<(Entry, Millis)>,
    version: Option<u64>,
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
                version: None,
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
        let expires_at = number("expires_at_ms")?;
        if expires_at <= now {
            return Ok(Read {
                previous: None,
                version: Some(version),
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
            version: Some(version),
        })
    }

    /// Writes `entry` if the item's version is still `expected` (`None`: no item), or if the
    /// item is this very write (a retry of it). Returns `false` when someone else wrote first.
    pub(super) async fn put(
        &self,
        key: &str,
        entry: &Entry,
        expires_at: Millis,
        expected: Option<u64>,
        version: u64,
    ) -> Result<bool, StateError> {
        let json = serde_json::to_string(entry).map_err(|error| StateError::Corrupt {
            key: key.to_owned(),
            message: error.to_string(),
        })?;
        let kind = json_kind(entry);
        let token = write_token();
        let mut request = self
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
            .item("token", AttributeValue::S(token.clone()))
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", AttributeValue::S(token));
        request = match expected {
            None => request.condition_expression("attribute_not_exists(pk) OR #token = :token"),
            Some(read) => request
                .condition_expression("#version = :read OR #token = :token")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":read", AttributeValue::N(read.to_string())),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(error) if is_condition_failure(&error) => Ok(false),
            Err(error) => Err(store_error("PutItem", key, &error)),
        }
    }

    /// Deletes the item if its version is still `expected`, or if it is gone already: a
    /// retry of an applied delete needs no token to succeed.
    async fn delete(&self, key: &str, expected: u64) -> Result<bool, StateError> {
        let request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .condition_expression("attribute_not_exists(pk) OR #version = :read")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":read", AttributeValue::N(expected.to_string()));
        match request.send().await {
            Ok(_) => Ok(true),
            Err(error) if is_condition_failure(&error) => Ok(false),
            Err(error) => Err(store_error("DeleteItem", key, &error)),
        }
    }

    pub(super) async fn update<D>(
        &self,
        key: &str,
        now: Millis,
        mut decide: impl FnMut(Option<Entry>) -> Change<D>,
    ) -> Result<(D, Undo), StateError> {
        for _ in 0..MAX_ATTEMPTS {
            let Read { previous, version } = self.read(key, now).await?;
            let change = decide(previous.as_ref().map(|(entry, _)| entry.clone()));
            let written = version.unwrap_or(0) + 1;
            let applied = match &change.write {
                Write::Put { entry, expires_at } => {
                    self.put(key, entry, *expires_at, version, written).await?
                }
                Write::Delete => match version {
                    Some(version) => self.delete(key, version).await?,
                    // No item: nothing to delete (and one created since read must stay).
                    None => return Ok((change.decision, Undo::nothing(key.to_owned()))),
                },
                Write::Keep => return Ok((change.decision, Undo::nothing(key.to_owned()))),
            };
            if applied {
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
        let Some(written) = undo.written else {
            return Ok(());
        };
        match &undo.previous {
            Some((entry, expires_at)) => {
                // Our write left version `written` (or, for a delete, no item).
                let restored = written + 1;
                let applied = self
                    .put(&undo.key, entry, *expires_at, Some(written), restored)
                    .await?;
                if !applied {
                    // Perhaps our write was a delete: restore only if the item is still gone.
                    self.put(&undo.key, entry, *expires_at, None, restored)
                        .await?;
                }
            }
            None => {
                self.delete(&undo.key, written).await?;
            }
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

/// A token no other write carries: 128 random bits, in hex.
fn write_token() -> String {
    format!("{:032x}", fastrand::u128(..))
}

fn json_kind(entry: &Entry) -> &'static str {
    match entry {
        Entry::Dedup(_) => "dedup",
        Entry::Throttle(_) => "throttle",
        Entry::Threshold(_) => "threshold",
        Entry::Heartbeat(_) => "heartbeat",
        Entry::Keys(_) => "keys",
    }
}

fn is_condition_failure<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error.code() == Some("ConditionalCheckFailedException")
}

fn store_error<E, R>(operation: &'static str, key: &str, error: &SdkError<E, R>) -> StateError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
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
        message: DisplayErrorContext(error).to_string(),
        retryable,
    }
}
