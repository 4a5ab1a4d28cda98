//! The SNS sink: one `Publish` per alert.
//!
//! The body is the alert's JSON document (what `meterwatch eval` prints); the subject is the
//! rule's title (for email subscriptions); message attributes `rule` and `severity` let
//! subscription filter policies route alerts (a pager for `critical`, a digest for the rest).

use super::PublishError;
use crate::alert::Alert;
use aws_sdk_sns::Client;
use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;

/// SNS limits a subject to fewer than 100 characters.
const MAX_SUBJECT_CHARS: usize = 99;

/// One SNS topic.
#[derive(Debug)]
pub struct SnsSink {
    client: Client,
    topic_arn: String,
}

impl SnsSink {
    pub fn new(client: Client, topic_arn: String) -> Self {
        SnsSink { client, topic_arn }
    }

    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }

    pub(super) async fn publish(&self, alert: &Alert) -> Result<(), PublishError> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(alert.to_json())
            .subject(subject(alert))
            .message_attributes("rule", string_attribute(&alert.rule))
            .message_attributes("severity", string_attribute(alert.severity.as_str()))
            .send()
            .await
            .map(|_| ())
            .map_err(|error| {
                PublishError::new(
                    crate::aws::is_retryable(&error),
                    crate::aws::error_code(&error),
                    format!(
                        "Publish to {} failed: {}",
                        self.topic_arn,
                        DisplayErrorContext(&error)
                    ),
                )
            })
    }
}

/// `[SEVERITY] title`, on one line, cut to SNS's limit.
fn subject(alert: &Alert) -> String {
    let text = format!(
        "[{}] {}",
        alert.severity.as_str().to_uppercase(),
        alert.title
    );
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_SUBJECT_CHARS)
        .collect()
}

fn string_attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data_type, the required field, is set")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Severity;
    use std::sync::Arc;

    #[test]
    fn subject_is_one_short_line() {
        let alert = Alert {
            rule: Arc::from("r"),
            severity: Severity::High,
            title: Arc::from(format!("line one\nline two {}", "x".repeat(200)).as_str()),
            event_id: None,
            event_name: None,
            account: None,
            region: None,
            event_time: None,
            matched: serde_json::Map::new(),
            element: None,
        };
        let subject = subject(&alert);
        assert!(subject.starts_with("[HIGH] line one line two"));
        assert!(subject.chars().count() < 100);
        assert!(!subject.contains('\n'));
    }
}
