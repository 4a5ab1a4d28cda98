//! The SNS sink: one `Publish` per alert.
//!
//! What is sent is [`crate::alert::format::message`]'s: for [`Format::Json`] a per-protocol
//! message (`MessageStructure: "json"`: readable text for email, the alert document for
//! everything else), for [`Format::Chatbot`] AWS Chatbot's custom notification; a subject for
//! email; message attributes (`rule`, `severity`…) for subscription filter policies; and on
//! a FIFO topic (`….fifo`) the group and deduplication ids.

use super::PublishError;
use crate::alert::Alert;
use crate::alert::format::{self, Format};
use aws_sdk_sns::Client;
use aws_sdk_sns::config::http::HttpResponse;
use aws_sdk_sns::error::SdkError;
use aws_sdk_sns::types::MessageAttributeValue;

/// One SNS topic.
#[derive(Debug)]
pub struct SnsSink {
    client: Client,
    topic_arn: String,
    format: Format,
    fifo: bool,
}

impl SnsSink {
    pub fn new(client: Client, topic_arn: String, format: Format) -> Self {
        let fifo = topic_arn.ends_with(".fifo");
        SnsSink {
            client,
            topic_arn,
            format,
            fifo,
        }
    }

    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }

    /// Asks for the topic's attributes: a wrong ARN, region or permission shows at start-up
    /// rather than at the first alert.
    pub(super) async fn probe(&self) -> Result<(), PublishError> {
        self.client
            .get_topic_attributes()
            .topic_arn(&self.topic_arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|error| {
                call_error(format!("GetTopicAttributes on {}", self.topic_arn), &error)
            })
    }

    pub(super) async fn publish(&self, alert: &Alert) -> Result<(), PublishError> {
        let message = format::message(alert, self.format);
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(message.body)
            .subject(message.subject);
        if message.structured {
            request = request.message_structure("json");
        }
        for (name, value) in message.attributes {
            request = request.message_attributes(name, string_attribute(value));
        }
        if self.fifo {
            request = request
                .message_group_id(message.group_id)
                .message_deduplication_id(message.deduplication_id);
        }
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|error| call_error(format!("Publish to {}", self.topic_arn), &error))
    }
}

/// A failed SNS call as the sink reports it: retryable or not, the service's code, and what
/// was called.
fn call_error<E>(call: String, error: &SdkError<E, HttpResponse>) -> PublishError
where
    E: crate::aws::OperationError + std::error::Error + 'static,
{
    PublishError::new(
        crate::aws::is_retryable(error),
        crate::aws::error_code(error),
        format!("{call} failed: {}", crate::aws::describe(error)),
    )
}

fn string_attribute(value: String) -> MessageAttributeValue {
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
    use axum::http::StatusCode;

    /// A client of an SNS that answers every call with HTTP 400 and `code`, as SNS's query
    /// protocol writes errors; the server stops when the runtime does.
    async fn sns_answering(code: &'static str) -> Client {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let body = format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
             <Message>answered by the test</Message></Error>\
             <RequestId>test</RequestId></ErrorResponse>"
        );
        let app = axum::Router::new().fallback(move || {
            let body = body.clone();
            async move {
                (
                    StatusCode::BAD_REQUEST,
                    [("content-type", "text/xml")],
                    body,
                )
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        let config = aws_sdk_sns::Config::builder()
            .behavior_version(crate::aws::behavior_version())
            .region(aws_sdk_sns::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sns::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .endpoint_url(format!("http://{addr}"))
            .retry_config(aws_sdk_sns::config::retry::RetryConfig::disabled())
            .build();
        Client::from_conf(config)
    }

    #[tokio::test]
    async fn a_kms_throttled_publish_is_retryable() {
        let sink = SnsSink::new(
            sns_answering("KMSThrottling").await,
            "arn:aws:sns:us-east-1:123456789012:alerts".to_owned(),
            Format::Json,
        );
        let alert = Alert::example("metering-throttled", Severity::Medium);
        let error = sink.publish(&alert).await.expect_err("SNS refused it");
        assert_eq!(error.code, "KMSThrottling");
        assert!(error.retryable, "{error}");
    }

    #[tokio::test]
    async fn a_publish_to_a_disabled_kms_key_is_not_retryable() {
        let sink = SnsSink::new(
            sns_answering("KMSDisabled").await,
            "arn:aws:sns:us-east-1:123456789012:alerts".to_owned(),
            Format::Json,
        );
        let alert = Alert::example("metering-throttled", Severity::Medium);
        let error = sink.publish(&alert).await.expect_err("SNS refused it");
        assert_eq!(error.code, "KMSDisabled");
        assert!(!error.retryable, "{error}");
    }
}
