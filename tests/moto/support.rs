//! Moto on 127.0.0.1 and the daemon as a child process, for the end-to-end tests.
//!
//! Every test starts its own `moto_server` on a free loopback port (killed on drop), so tests
//! run in parallel without sharing state. The daemon gets fake credentials and the endpoint
//! through its own environment only; this process never calls `std::env::set_var` and never
//! talks to real AWS.

#![allow(clippy::unwrap_used)] // Test support: a failed setup step should stop the test loudly.

use aws_config::{Region, SdkConfig};
use aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sqs::config::Credentials;
use aws_sdk_sqs::types::QueueAttributeName;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::body::SdkBody;
use meterwatch::state::DynamoStore;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const REGION: &str = "us-east-1";
/// moto's default account.
pub const ACCOUNT: &str = "123456789012";

/// The EventBridge pattern of `shared/domain.md` §1.1.
pub const METERING_PATTERN: &str = r#"{"source": ["aws.metering-marketplace"], "detail-type": ["AWS API Call via CloudTrail"], "detail": {"eventSource": ["metering-marketplace.amazonaws.com"]}}"#;

/// A free loopback port (bound, then released for the child to take).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Polls `check` until it returns `Some`, or panics naming `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A fixture under `tests/fixtures/events/`.
pub fn fixture(relative: &str) -> String {
    let path = repo_path("tests/fixtures/events").join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `*.eventbridge.json` fixture in a fixtures directory, by name.
pub fn eventbridge_fixtures(directory: &str) -> Vec<(String, String)> {
    let dir = repo_path("tests/fixtures/events").join(directory);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".eventbridge.json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let body = fixture(&format!("{directory}/{name}"));
            (name, body)
        })
        .collect()
}

/// A running `moto_server`, killed on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    /// Starts `moto_server` from `target/moto-venv` through `atomic_moto.py` (which makes
    /// DynamoDB's conditional writes atomic, as they are on AWS), or `$MOTO_SERVER` as is.
    pub async fn start() -> Moto {
        let port = free_port();
        let address = [
            "-H".to_owned(),
            "127.0.0.1".to_owned(),
            "-p".to_owned(),
            port.to_string(),
        ];
        let mut command = match std::env::var_os("MOTO_SERVER") {
            Some(server) => Command::new(server),
            None => {
                let python = repo_path("target/moto-venv/bin/python");
                assert!(
                    python.exists(),
                    "{} not found: run `scripts/moto install` (or set MOTO_SERVER)",
                    python.display()
                );
                let mut command = Command::new(python);
                command.arg(repo_path("tests/moto/atomic_moto.py"));
                command
            }
        };
        let child = command
            .args(&address)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting moto: {e}"));
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        eventually("moto to listen", Duration::from_secs(30), || async move {
            http_get(addr, "/moto-api/").map(|_| ())
        })
        .await;
        moto
    }

    /// SDK config for the test's own clients: explicit fake credentials, moto's endpoint.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(meterwatch::aws::behavior_version())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("test", "test", None, None, "moto-tests"))
            .endpoint_url(&self.endpoint)
            .load()
            .await
    }

    pub async fn clients(&self) -> Clients {
        let config = self.sdk_config().await;
        Clients {
            sqs: aws_sdk_sqs::Client::new(&config),
            sns: aws_sdk_sns::Client::new(&config),
            events: aws_sdk_eventbridge::Client::new(&config),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test's AWS clients, all pointed at moto.
pub struct Clients {
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

/// The resources of one scenario, named after it.
pub struct Resources {
    pub queue_url: String,
    pub dlq_url: String,
    pub topic_arn: String,
    pub alerts_queue_url: String,
}

impl Clients {
    pub async fn create_queue(
        &self,
        name: &str,
        attributes: &[(QueueAttributeName, String)],
    ) -> String {
        let mut request = self.sqs.create_queue().queue_name(name);
        for (key, value) in attributes {
            request = request.attributes(key.clone(), value);
        }
        request.send().await.unwrap().queue_url.unwrap()
    }

    pub async fn queue_arn(&self, queue_url: &str) -> String {
        self.sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()
            .remove(&QueueAttributeName::QueueArn)
            .unwrap()
    }

    /// Source queue with a DLQ (`max_receive_count`), an alerts topic with a raw SQS
    /// subscription to read alerts back, and an EventBridge rule (domain.md §1.1) targeting
    /// the source queue. `create_topic: false` leaves the topic (and subscription) for later.
    pub async fn create_resources(
        &self,
        name: &str,
        max_receive_count: u32,
        create_topic: bool,
    ) -> Resources {
        let dlq_url = self.create_queue(&format!("{name}-dlq"), &[]).await;
        let dlq_arn = self.queue_arn(&dlq_url).await;
        let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count});
        let queue_url = self
            .create_queue(
                &format!("{name}-events"),
                &[(QueueAttributeName::RedrivePolicy, redrive.to_string())],
            )
            .await;
        let queue_arn = self.queue_arn(&queue_url).await;

        self.events
            .put_rule()
            .name(format!("{name}-metering"))
            .event_pattern(METERING_PATTERN)
            .send()
            .await
            .unwrap();
        self.events
            .put_targets()
            .rule(format!("{name}-metering"))
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("events-queue")
                    .arn(&queue_arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();

        let topic_name = format!("{name}-alerts");
        let topic_arn = format!("arn:aws:sns:{REGION}:{ACCOUNT}:{topic_name}");
        let alerts_queue_url = self.create_queue(&format!("{name}-alerts-read"), &[]).await;
        let resources = Resources {
            queue_url,
            dlq_url,
            topic_arn,
            alerts_queue_url,
        };
        if create_topic {
            self.create_topic(&resources).await;
        }
        resources
    }

    /// Creates the alerts topic and subscribes the alerts queue with raw delivery.
    pub async fn create_topic(&self, resources: &Resources) {
        let name = resources.topic_arn.rsplit(':').next().unwrap();
        let topic_arn = self.create_named_topic(name).await;
        assert_eq!(topic_arn, resources.topic_arn);
        self.subscribe(&topic_arn, &resources.alerts_queue_url, true, None)
            .await;
    }

    /// Deletes the scenario's alert topic (and so its subscriptions): publishes fail until
    /// [`Clients::create_topic`] makes it again.
    pub async fn delete_topic(&self, resources: &Resources) {
        self.sns
            .delete_topic()
            .topic_arn(&resources.topic_arn)
            .send()
            .await
            .unwrap();
    }

    /// Creates an SNS topic; returns its ARN.
    pub async fn create_named_topic(&self, name: &str) -> String {
        self.sns
            .create_topic()
            .name(name)
            .send()
            .await
            .unwrap()
            .topic_arn
            .unwrap()
    }

    /// Subscribes a queue to a topic: `raw` delivers the message alone (else the SNS
    /// notification JSON around it); `filter_policy` on message attributes.
    pub async fn subscribe(
        &self,
        topic_arn: &str,
        queue_url: &str,
        raw: bool,
        filter_policy: Option<&str>,
    ) {
        let queue_arn = self.queue_arn(queue_url).await;
        let mut request = self
            .sns
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .attributes("RawMessageDelivery", raw.to_string());
        if let Some(policy) = filter_policy {
            request = request.attributes("FilterPolicy", policy);
        }
        request.send().await.unwrap();
    }

    /// The state table, created by the daemon's own [`DynamoStore::create_table`], then held
    /// to the contract the deploy templates also meet (`deploy/cloudformation`'s `StateTable`,
    /// `deploy/terraform`'s `aws_dynamodb_table.state`, the schema at the top of
    /// `src/state/dynamodb.rs`): on-demand, partition key `pk` (S) and no sort key, TTL on
    /// `expires_at`.
    pub async fn create_state_table(&self, name: &str) -> String {
        use aws_sdk_dynamodb::types::{
            BillingMode, KeyType, ScalarAttributeType, TimeToLiveStatus,
        };
        DynamoStore::new(self.dynamodb.clone(), name)
            .create_table()
            .await
            .unwrap();
        let table = self
            .dynamodb
            .describe_table()
            .table_name(name)
            .send()
            .await
            .unwrap()
            .table
            .unwrap();
        let keys: Vec<_> = table
            .key_schema()
            .iter()
            .map(|key| (key.attribute_name(), key.key_type()))
            .collect();
        assert_eq!(keys, [("pk", &KeyType::Hash)]);
        let attributes: Vec<_> = table
            .attribute_definitions()
            .iter()
            .map(|attribute| (attribute.attribute_name(), attribute.attribute_type()))
            .collect();
        assert_eq!(attributes, [("pk", &ScalarAttributeType::S)]);
        assert_eq!(
            table
                .billing_mode_summary()
                .and_then(|summary| summary.billing_mode()),
            Some(&BillingMode::PayPerRequest)
        );
        let ttl = self
            .dynamodb
            .describe_time_to_live()
            .table_name(name)
            .send()
            .await
            .unwrap()
            .time_to_live_description
            .unwrap();
        assert_eq!(ttl.attribute_name(), Some("expires_at"));
        assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
        name.to_owned()
    }

    /// Every item of a state table (a scan, fine for a test's few thousand).
    pub async fn state_items(
        &self,
        table: &str,
    ) -> Vec<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .dynamodb
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            items.extend(output.items.unwrap_or_default());
            start = output.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }

    /// PutEvents for EventBridge-envelope fixtures (10 per call), as AWS would emit them.
    pub async fn put_events(&self, envelopes: &[String]) {
        for chunk in envelopes.chunks(10) {
            let entries = chunk
                .iter()
                .map(|text| {
                    let envelope: serde_json::Value = serde_json::from_str(text).unwrap();
                    aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                        .source(envelope["source"].as_str().unwrap())
                        .detail_type(envelope["detail-type"].as_str().unwrap())
                        .detail(envelope["detail"].to_string())
                        .build()
                })
                .collect();
            let output = self
                .events
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .unwrap();
            assert_eq!(output.failed_entry_count, 0, "{output:?}");
        }
    }

    pub async fn send(&self, queue_url: &str, body: &str) {
        self.sqs
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    /// Visible plus in-flight messages of a queue.
    pub async fn queue_depth(&self, queue_url: &str) -> u64 {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ]
        .iter()
        .map(|key| {
            attributes
                .get(key)
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
    }

    /// Receives and deletes what is on a queue now (one short poll round).
    pub async fn take(&self, queue_url: &str) -> Vec<String> {
        let output = self
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .unwrap();
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            return Vec::new();
        }
        let entries = messages
            .iter()
            .enumerate()
            .map(|(idx, message)| {
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(idx.to_string())
                    .receipt_handle(message.receipt_handle.clone().unwrap())
                    .build()
                    .unwrap()
            })
            .collect();
        let deleted = self
            .sqs
            .delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
        assert!(deleted.failed.is_empty(), "{deleted:?}");
        messages.into_iter().map(|m| m.body.unwrap()).collect()
    }

    /// Everything left on a queue: short polls until one comes back empty.
    pub async fn drain(&self, queue_url: &str) -> Vec<String> {
        let mut bodies = Vec::new();
        loop {
            let taken = self.take(queue_url).await;
            if taken.is_empty() {
                return bodies;
            }
            bodies.extend(taken);
        }
    }

    /// Collects alert documents from the alerts queue until `n` have arrived.
    pub async fn alerts(
        &self,
        resources: &Resources,
        n: usize,
        timeout: Duration,
    ) -> Vec<serde_json::Value> {
        self.messages(&resources.alerts_queue_url, n, timeout).await
    }

    /// Collects JSON message bodies from a queue until `n` have arrived.
    pub async fn messages(
        &self,
        queue_url: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<serde_json::Value> {
        let mut messages = Vec::new();
        let deadline = Instant::now() + timeout;
        while messages.len() < n {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} with {} of {n} messages from {queue_url}: {messages:?}",
                messages.len()
            );
            let bodies = self.take(queue_url).await;
            if bodies.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            for body in bodies {
                messages.push(serde_json::from_str::<serde_json::Value>(&body).unwrap());
            }
        }
        messages
    }
}

/// `meterwatch run` as a child process.
pub struct Daemon {
    child: Child,
    pub http: SocketAddr,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `meterwatch run --config CONFIG` against moto and waits until ready.
    pub async fn start(moto: &Moto, config: &Path) -> Daemon {
        let daemon = Daemon::spawn(moto, config);
        let http = daemon.http;
        eventually(
            "the daemon to be ready",
            Duration::from_secs(30),
            || async move { http_get(http, "/readyz").filter(|(status, _)| *status == 200) },
        )
        .await;
        daemon
    }

    /// Starts `meterwatch run --config CONFIG` against moto, without waiting for anything.
    pub fn spawn(moto: &Moto, config: &Path) -> Daemon {
        Daemon::spawn_with_env(moto, config, &[])
    }

    /// [`Daemon::spawn`] with more environment, e.g. `AWS_ENDPOINT_URL_SNS` for one service
    /// elsewhere than moto.
    pub fn spawn_with_env(moto: &Moto, config: &Path, env: &[(&str, &str)]) -> Daemon {
        let http: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let log = config.with_extension("log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_meterwatch"))
            .args(["run", "--log-format", "json", "--config"])
            .arg(config)
            .args(["--listen", &http.to_string()])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", REGION)
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", "info,meterwatch=debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        Daemon { child, http, log }
    }

    /// The `/metrics` text.
    pub fn metrics(&self) -> String {
        http_get(self.http, "/metrics")
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// The sum of every sample of `name` whose labels contain `labels` (e.g. `reason="publish"`).
    pub fn metric(&self, name: &str, labels: &str) -> f64 {
        metric(&self.metrics(), name, labels)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGKILL: a crash, with no chance to drain.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Waits for the process to exit, at most `timeout`.
    pub async fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let child = &mut self.child;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not exit within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sum of the samples of `name` whose label text contains `labels`.
pub fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            let (metric_name, label_text) = match key.split_once('{') {
                Some((metric_name, rest)) => (metric_name, rest),
                None => (key, ""),
            };
            (metric_name == name && label_text.contains(labels))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// A minimal HTTP/1.1 GET on loopback: (status, body), or `None` when nothing listens.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())?;
    Some((status, body))
}

/// The `[state]` table of a config keeping state in DynamoDB `table`.
pub fn dynamodb_state(table: &str) -> String {
    format!("[state]\ntype = \"dynamodb\"\ntable = \"{table}\"\n")
}

/// Writes a daemon config for a scenario: short polls and visibility timeouts for speed.
pub fn write_config(dir: &Path, resources: &Resources, rules: &Path, extra: &str) -> PathBuf {
    let config = format!(
        r#"
[rules]
paths = ["{rules}"]
watch = true
debounce_ms = 100

[source]
type = "sqs"
queue_url = "{queue_url}"
pollers = 2
wait_time_secs = 1
max_messages = 10
visibility_timeout_secs = 2

[sinks.alerts]
type = "sns"
topic_arn = "{topic_arn}"

[retry]
max_attempts = 2
initial_backoff_ms = 50
max_backoff_ms = 200

[shutdown]
grace_secs = 8
{extra}
"#,
        rules = rules.display(),
        queue_url = resources.queue_url,
        topic_arn = resources.topic_arn,
    );
    let path = dir.join("meterwatch.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// The alerts `rules` raise for `bodies`, as (rule, event_id) counts: what the daemon must publish.
pub fn expected_alerts(rules: &Path, bodies: &[String]) -> HashMap<(String, String), usize> {
    let rule_set = meterwatch::rules::RuleSet::load(&[rules]).unwrap();
    let mut expected = HashMap::new();
    for body in bodies {
        for event in meterwatch::envelope::decode(body).unwrap() {
            for alert in rule_set.evaluate(&event).unwrap() {
                let key = (
                    alert.rule.to_string(),
                    alert.event_id.clone().unwrap_or_default(),
                );
                *expected.entry(key).or_insert(0) += 1;
            }
        }
    }
    expected
}

/// Received alert documents as (rule, event_id) counts.
pub fn alert_counts(alerts: &[serde_json::Value]) -> HashMap<(String, String), usize> {
    let mut counts = HashMap::new();
    for alert in alerts {
        let key = (
            alert["rule"].as_str().unwrap_or_default().to_owned(),
            alert["event_id"].as_str().unwrap_or_default().to_owned(),
        );
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// A DynamoDB client interceptor that replaces the response to the next `n` writes it is
/// [`armed`](LoseWriteResponses::arm) for with a 500, after moto applied them: the SDK then
/// retries the same request, as it does when a response is lost or late.
#[derive(Debug, Clone, Default)]
pub struct LoseWriteResponses {
    armed: Arc<AtomicUsize>,
    lost: Arc<AtomicUsize>,
}

impl LoseWriteResponses {
    pub fn arm(&self, n: usize) {
        self.armed.store(n, Ordering::SeqCst);
    }

    /// Responses replaced so far.
    pub fn lost(&self) -> usize {
        self.lost.load(Ordering::SeqCst)
    }
}

impl Intercept for LoseWriteResponses {
    fn name(&self) -> &'static str {
        "LoseWriteResponses"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let write = matches!(
            cfg.load::<Metadata>().map(Metadata::name),
            Some("PutItem" | "DeleteItem")
        );
        let take = || {
            self.armed
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        };
        if write && take() {
            let response = context.response_mut();
            *response.status_mut() = 500.try_into()?;
            let headers = response.headers_mut();
            headers.remove("content-length");
            headers.remove("x-amz-crc32");
            *response.body_mut() = SdkBody::from(
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"response lost by the test"}"#,
            );
            self.lost.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}
