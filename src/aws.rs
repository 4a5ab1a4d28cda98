//! AWS clients and error classification: the only module besides `source/` and `sink/` that
//! names AWS SDK types.
//!
//! Credentials and region come from aws-config's default chain (environment, profile, web
//! identity / IRSA, ECS container credentials, IMDS). aws-config itself honours
//! `AWS_ENDPOINT_URL` and the per-service `AWS_ENDPOINT_URL_SQS` / `AWS_ENDPOINT_URL_SNS`
//! (and the profile's `endpoint_url`), which is how tests point the daemon at moto.
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

/// Error codes that mean "slow down": retried with backoff.
const THROTTLING_CODES: [&str; 9] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "Throttled",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "KMSThrottlingException",
    "RequestLimitExceeded",
];

/// The shared SDK configuration from the default chain.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
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

/// Whether a failed call may succeed if tried again: timeouts, dispatch (network) failures,
/// unparseable responses, 5xx, 429 and throttling codes. A request that could not be built,
/// or a client error such as `NotFound` or `AuthorizationError`, will not.
pub fn is_retryable<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service_error) => {
            let status = service_error.raw().status().as_u16();
            status >= 500
                || status == 429
                || service_error
                    .err()
                    .code()
                    .is_some_and(|code| THROTTLING_CODES.contains(&code))
        }
        _ => false,
    }
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
