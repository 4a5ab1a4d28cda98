//! AWS clients and error classification: the only module besides `source/`, `sink/` and
//! `state/dynamodb.rs` that names AWS SDK types.
//!
//! Credentials and region come from aws-config's default chain (environment, profile, web
//! identity / IRSA, ECS container credentials, IMDS). aws-config itself honours
//! `AWS_ENDPOINT_URL` and the per-service `AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL_SNS` and
//! `AWS_ENDPOINT_URL_DYNAMODB` (and the profile's `endpoint_url`), which is how tests point the
//! daemon at moto.
//! Nothing here logs a credential: the SDK's own `Debug` output redacts them.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_sns::config::retry::RetryConfig;
use aws_sdk_sns::config::timeout::TimeoutConfig;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use std::time::Duration;

/// How long one SNS Publish attempt may take before it counts as failed (and is retried).
const PUBLISH_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Slack added to the long-poll wait for one ReceiveMessage attempt.
const RECEIVE_SLACK: Duration = Duration::from_secs(10);

/// The SDK behaviour version, pinned so that an SDK upgrade cannot change defaults (retries,
/// timeouts, the HTTPS client) unseen: move it on purpose, after reading what the new one
/// changes. `v2025_08_07` is the newest the locked SDK has.
pub fn behavior_version() -> BehaviorVersion {
    BehaviorVersion::v2025_08_07()
}

/// The shared SDK configuration from the default chain.
/// Fails without a region: every call would fail to sign, and retrying cannot fix that.
pub async fn sdk_config() -> anyhow::Result<SdkConfig> {
    let config = aws_config::defaults(behavior_version()).load().await;
    match config.region() {
        Some(region) => {
            tracing::info!(region = %region, "AWS region resolved.");
            Ok(config)
        }
        None => anyhow::bail!(
            "no AWS region: set AWS_REGION (or a profile's region); on ECS and EKS the \
             task's or pod's environment normally provides it"
        ),
    }
}

/// An SQS client whose attempts may last a whole long poll (`wait_time`) and then some.
pub fn sqs_client(sdk_config: &SdkConfig, wait_time: Duration) -> aws_sdk_sqs::Client {
    let timeouts = TimeoutConfig::builder()
        .operation_attempt_timeout(wait_time + RECEIVE_SLACK)
        .build();
    let config = aws_sdk_sqs::config::Builder::from(sdk_config)
        .timeout_config(timeouts)
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// An SNS client without the SDK's own retries: the sink retries with its own backoff, so
/// that attempts are counted and bounded in one place.
pub fn sns_client(sdk_config: &SdkConfig) -> aws_sdk_sns::Client {
    let timeouts = TimeoutConfig::builder()
        .operation_attempt_timeout(PUBLISH_ATTEMPT_TIMEOUT)
        .build();
    let config = aws_sdk_sns::config::Builder::from(sdk_config)
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts)
        .build();
    aws_sdk_sns::Client::from_conf(config)
}

/// The DynamoDB client of the state store: the SDK's standard retries (throttling, 5xx)
/// with a short attempt timeout, since every state operation sits on a message's path.
pub fn dynamodb_client(sdk_config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    let timeouts = TimeoutConfig::builder()
        .operation_attempt_timeout(std::time::Duration::from_secs(5))
        .build();
    let config = aws_sdk_dynamodb::config::Builder::from(sdk_config)
        .retry_config(RetryConfig::standard().with_max_attempts(4))
        .timeout_config(timeouts)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// An operation's error as the SDK models it: which of its typed variants say "slow down" or
/// "try again" (`is_kms_throttling_exception()` and the like). SNS answers a KMS-throttled
/// Publish with the code `KMSThrottling`, which no list of code strings had.
pub trait OperationError: ProvideErrorMetadata {
    /// Whether this is one of the operation's modelled throttling or transient errors.
    fn is_transient(&self) -> bool;
}

impl OperationError for aws_sdk_sns::operation::publish::PublishError {
    fn is_transient(&self) -> bool {
        self.is_kms_throttling_exception() || self.is_internal_error_exception()
    }
}

impl OperationError for aws_sdk_sns::operation::get_topic_attributes::GetTopicAttributesError {
    fn is_transient(&self) -> bool {
        self.is_internal_error_exception()
    }
}

impl OperationError for aws_sdk_sqs::operation::receive_message::ReceiveMessageError {
    fn is_transient(&self) -> bool {
        // OverLimit: the queue's in-flight limit, which deletes free again.
        self.is_request_throttled() || self.is_kms_throttled() || self.is_over_limit()
    }
}

impl OperationError for aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesError {
    fn is_transient(&self) -> bool {
        self.is_request_throttled()
    }
}

/// Whether a failed call may succeed if tried again: timeouts, dispatch (network) failures,
/// unparseable responses, the operation's modelled throttling and transient errors, and for
/// errors the operation does not model (a protocol's generic `Throttling`), 5xx, 429 and the
/// SDK's own lists of throttling and transient codes (what its retry classifier uses). A
/// request that could not be built, or a client error such as `NotFound` or
/// `AuthorizationError`, will not.
pub fn is_retryable<E: OperationError>(error: &SdkError<E, HttpResponse>) -> bool {
    use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service_error) => {
            let status = service_error.raw().status().as_u16();
            let error = service_error.err();
            error.is_transient()
                || status >= 500
                || status == 429
                || error.code().is_some_and(|code| {
                    THROTTLING_ERRORS.contains(&code) || TRANSIENT_ERRORS.contains(&code)
                })
        }
        _ => false,
    }
}

/// An SDK error in one line for logs and alerts: the service's code and message when the
/// service answered (its `Display` context would add the raw response, headers and body,
/// kilobytes a line), else the whole chain of causes (a refused connection, a timeout).
pub fn describe<E>(error: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match error {
        SdkError::ServiceError(service_error) => {
            let error = service_error.err();
            match (error.code(), error.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_owned(),
                _ => format!(
                    "HTTP {} from the service",
                    service_error.raw().status().as_u16()
                ),
            }
        }
        other => aws_sdk_sqs::error::DisplayErrorContext(other).to_string(),
    }
}

/// Whether an error code says the resource called does not exist (or its name is not one):
/// no retry and no permission change will make that call work.
pub fn means_missing(code: &str) -> bool {
    matches!(
        code,
        "AWS.SimpleQueueService.NonExistentQueue"
            | "QueueDoesNotExist"
            | "InvalidAddress"
            | "NotFound"
            | "NotFoundException"
            | "InvalidParameter"
            | "InvalidParameterValue"
    )
}

/// The service's error code, or what kind of failure it was when there is none.
pub fn error_code<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> String {
    match error {
        SdkError::ServiceError(service_error) => service_error
            .err()
            .code()
            .unwrap_or("ServiceError")
            .to_owned(),
        SdkError::TimeoutError(_) => "Timeout".to_owned(),
        SdkError::DispatchFailure(_) => "DispatchFailure".to_owned(),
        SdkError::ResponseError(_) => "ResponseError".to_owned(),
        SdkError::ConstructionFailure(_) => "ConstructionFailure".to_owned(),
        _ => "Unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sns::error::ErrorMetadata;
    use aws_sdk_sns::operation::publish::PublishError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_types::body::SdkBody;

    fn service_error(status: u16, code: &str) -> SdkError<PublishError, HttpResponse> {
        let error = PublishError::generic(ErrorMetadata::builder().code(code).build());
        raw_service_error(status, error)
    }

    fn raw_service_error<E>(status: u16, error: E) -> SdkError<E, HttpResponse> {
        let status = aws_smithy_runtime_api::http::StatusCode::try_from(status)
            .expect("a valid status code");
        SdkError::service_error(error, HttpResponse::new(status, SdkBody::empty()))
    }

    #[test]
    fn throttling_server_errors_and_network_failures_are_retryable() {
        assert!(is_retryable(&service_error(400, "Throttling")));
        assert!(is_retryable(&service_error(400, "RequestLimitExceeded")));
        assert!(is_retryable(&service_error(429, "Whatever")));
        assert!(is_retryable(&service_error(500, "InternalError")));
        assert!(is_retryable(&service_error(503, "ServiceUnavailable")));
        let timeout: SdkError<PublishError, HttpResponse> =
            SdkError::timeout_error("attempt timed out");
        assert!(is_retryable(&timeout));
        let dispatch: SdkError<PublishError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        assert!(is_retryable(&dispatch));
        assert_eq!(error_code(&dispatch), "DispatchFailure");
    }

    #[test]
    fn typed_throttling_errors_are_retryable_whatever_their_code() {
        // SNS's code for it is `KMSThrottling`; SQS's is `KMS.ThrottlingException`.
        let kms = aws_sdk_sns::types::error::KmsThrottlingException::builder()
            .message("slow down")
            .meta(ErrorMetadata::builder().code("KMSThrottling").build())
            .build();
        assert!(is_retryable(&raw_service_error(
            400,
            PublishError::KmsThrottlingException(kms)
        )));
        let kms = aws_sdk_sqs::types::error::KmsThrottled::builder()
            .meta(
                ErrorMetadata::builder()
                    .code("KMS.ThrottlingException")
                    .build(),
            )
            .build();
        assert!(is_retryable(&raw_service_error(
            400,
            aws_sdk_sqs::operation::receive_message::ReceiveMessageError::KmsThrottled(kms)
        )));
        let disabled = aws_sdk_sns::types::error::KmsDisabledException::builder()
            .meta(ErrorMetadata::builder().code("KMSDisabled").build())
            .build();
        assert!(!is_retryable(&raw_service_error(
            400,
            PublishError::KmsDisabledException(disabled)
        )));
    }

    #[test]
    fn client_errors_and_bad_requests_are_not() {
        let not_found = service_error(404, "NotFound");
        assert!(!is_retryable(&not_found));
        assert_eq!(error_code(&not_found), "NotFound");
        assert!(!is_retryable(&service_error(403, "AuthorizationError")));
        assert!(!is_retryable(&service_error(400, "InvalidParameter")));
        let construction: SdkError<PublishError, HttpResponse> =
            SdkError::construction_failure("missing topic");
        assert!(!is_retryable(&construction));
    }
}
