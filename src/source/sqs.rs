//! The SQS source: long polls, batched deletes and visibility changes with per-entry
//! failures read, and the queue's redrive policy checked at start-up.

use super::{EntryFailure, Message, Receipt, Received, SourceError, SourceInfo};
use crate::config::{MAX_RECEIVE_MESSAGES, SqsSourceConfig};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::SdkError;
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, ChangeMessageVisibilityBatchRequestEntry,
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use std::time::Duration;

/// One SQS queue.
#[derive(Debug)]
pub struct SqsSource {
    client: Client,
    queue_url: String,
    max_messages: i32,
    wait_time_secs: i32,
    visibility_timeout: Duration,
}

impl SqsSource {
    /// A source for the configured queue (validated: every number is within SQS's ranges).
    pub fn new(client: Client, config: &SqsSourceConfig) -> Self {
        SqsSource {
            client,
            queue_url: config.queue_url.clone(),
            max_messages: to_i32(config.max_messages),
            wait_time_secs: to_i32(config.wait_time_secs),
            visibility_timeout: config.visibility_timeout(),
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    pub(super) fn batch_size(&self) -> usize {
        usize::try_from(self.max_messages).unwrap_or(1)
    }

    pub(super) fn visibility_timeout(&self) -> Duration {
        self.visibility_timeout
    }

    pub(super) async fn receive(&self) -> Result<Received, SourceError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.max_messages)
            .wait_time_seconds(self.wait_time_secs)
            .visibility_timeout(duration_secs(self.visibility_timeout))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(|error| call_error("ReceiveMessage", error))?;
        let messages = output
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|message| {
                let attribute = |name| message.attributes().and_then(|a| a.get(&name));
                let receive_count = attribute(MessageSystemAttributeName::ApproximateReceiveCount)
                    .and_then(|count| count.parse().ok())
                    .unwrap_or(1);
                let sent_at = attribute(MessageSystemAttributeName::SentTimestamp)
                    .and_then(|millis| millis.parse().ok())
                    .map(|millis| std::time::UNIX_EPOCH + Duration::from_millis(millis));
                let id = message.message_id.unwrap_or_default();
                let Some(receipt) = message.receipt_handle else {
                    tracing::warn!(message_id = %id, "Skipping SQS message without a receipt handle.");
                    return None;
                };
                Some(Message {
                    id,
                    // A message without a body is decoded as "" and so reported as poison.
                    body: message.body.unwrap_or_default(),
                    receipt: Receipt(receipt),
                    receive_count,
                    sent_at,
                })
            })
            .collect();
        Ok(Received::Messages(messages))
    }

    pub(super) async fn delete(&self, messages: &[&Message]) -> Vec<EntryFailure> {
        let mut failures = Vec::new();
        for chunk in messages.chunks(MAX_RECEIVE_MESSAGES as usize) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(idx, message)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(idx.to_string())
                        .receipt_handle(&message.receipt.0)
                        .build()
                        .expect("id and receipt handle, the required fields, are set")
                })
                .collect();
            let result = self
                .client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await;
            match result {
                Ok(output) => failures.extend(entry_failures(chunk, output.failed())),
                Err(error) => {
                    failures.extend(whole_batch_failed(chunk, "DeleteMessageBatch", &error))
                }
            }
        }
        failures
    }

    pub(super) async fn change_visibility(
        &self,
        messages: &[&Message],
        timeout: Duration,
    ) -> Vec<EntryFailure> {
        let mut failures = Vec::new();
        for chunk in messages.chunks(MAX_RECEIVE_MESSAGES as usize) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(idx, message)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(idx.to_string())
                        .receipt_handle(&message.receipt.0)
                        .visibility_timeout(duration_secs(timeout))
                        .build()
                        .expect("id and receipt handle, the required fields, are set")
                })
                .collect();
            let result = self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await;
            match result {
                Ok(output) => failures.extend(entry_failures(chunk, output.failed())),
                Err(error) => failures.extend(whole_batch_failed(
                    chunk,
                    "ChangeMessageVisibilityBatch",
                    &error,
                )),
            }
        }
        failures
    }

    pub(super) async fn probe(&self) -> Result<SourceInfo, SourceError> {
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|error| call_error("GetQueueAttributes", error))?;
        let redrive = output
            .attributes()
            .and_then(|attributes| attributes.get(&QueueAttributeName::RedrivePolicy))
            .filter(|policy| !policy.trim().is_empty());
        Ok(SourceInfo {
            has_redrive_policy: redrive.is_some(),
            max_receive_count: redrive.and_then(|policy| max_receive_count(policy)),
        })
    }
}

/// `maxReceiveCount` of a redrive policy (a number, or a string as some tools write it).
fn max_receive_count(policy: &str) -> Option<u32> {
    let policy: serde_json::Value = serde_json::from_str(policy).ok()?;
    match policy.get("maxReceiveCount")? {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The failed entries of a batch call, mapped back to message ids.
fn entry_failures(chunk: &[&Message], failed: &[BatchResultErrorEntry]) -> Vec<EntryFailure> {
    failed
        .iter()
        .map(|entry| EntryFailure {
            message_id: entry
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|idx| chunk.get(idx))
                .map_or_else(|| format!("entry {}", entry.id()), |m| m.id.clone()),
            code: entry.code().to_owned(),
            reason: entry.message().unwrap_or_default().to_owned(),
        })
        .collect()
}

fn whole_batch_failed<E>(
    chunk: &[&Message],
    operation: &str,
    error: &aws_sdk_sqs::error::SdkError<E, aws_sdk_sqs::config::http::HttpResponse>,
) -> Vec<EntryFailure>
where
    E: std::error::Error + aws_sdk_sqs::error::ProvideErrorMetadata + 'static,
{
    let code = crate::aws::error_code(error);
    let reason = format!("{operation} failed: {}", crate::aws::describe(error));
    chunk
        .iter()
        .map(|message| EntryFailure {
            message_id: message.id.clone(),
            code: code.clone(),
            reason: reason.clone(),
        })
        .collect()
}

fn call_error<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> SourceError
where
    E: std::error::Error + crate::aws::OperationError + Send + Sync + 'static,
{
    SourceError::Call {
        operation,
        message: crate::aws::describe(&error),
        retryable: crate::aws::is_retryable(&error),
        code: crate::aws::error_code(&error),
        source: Some(Box::new(error)),
    }
}

fn duration_secs(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)
}

fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_receive_count_as_number_or_string() {
        assert_eq!(
            max_receive_count(r#"{"deadLetterTargetArn":"arn:x","maxReceiveCount":3}"#),
            Some(3)
        );
        assert_eq!(max_receive_count(r#"{"maxReceiveCount":"5"}"#), Some(5));
        assert_eq!(max_receive_count("not json"), None);
    }
}
