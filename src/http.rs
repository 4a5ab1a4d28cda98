//! The operator's HTTP endpoints (axum):
//!
//! - `/healthz`: 200 while the process runs. It never depends on AWS: an SQS outage must not
//!   make the orchestrator restart every replica.
//! - `/readyz`: 200 once the rules are loaded and, for a queue source, the queue answered
//!   recently; 503 before that, when the queue has not answered for a while, and while
//!   draining at shutdown.
//! - `/metrics`: Prometheus text format.

use crate::telemetry::Metrics;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The content type of the Prometheus text format prometheus-client writes.
const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What readiness depends on, updated by the daemon.
#[derive(Debug)]
pub struct Health {
    rules_loaded: AtomicBool,
    draining: AtomicBool,
    /// `None`: the source needs no reachability (files, memory).
    queue: Option<QueueHealth>,
}

#[derive(Debug)]
struct QueueHealth {
    /// When the queue last answered; the std mutex is held only to copy an `Instant`.
    last_ok: Mutex<Option<Instant>>,
    stale_after: Duration,
}

impl Health {
    /// Health for a source that is always reachable.
    pub fn local() -> Self {
        Health {
            rules_loaded: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            queue: None,
        }
    }

    /// Health for a remote queue that counts as unreachable when it has not answered for
    /// `stale_after`.
    pub fn remote(stale_after: Duration) -> Self {
        Health {
            queue: Some(QueueHealth {
                last_ok: Mutex::new(None),
                stale_after,
            }),
            ..Health::local()
        }
    }

    pub fn set_rules_loaded(&self) {
        self.rules_loaded.store(true, Ordering::SeqCst);
    }

    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// The queue just answered.
    pub fn queue_answered(&self) {
        if let Some(queue) = &self.queue {
            *queue
                .last_ok
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        }
    }

    /// Why the daemon is not ready, or `None` when it is.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        if self.draining.load(Ordering::SeqCst) {
            return Some("draining");
        }
        if !self.rules_loaded.load(Ordering::SeqCst) {
            return Some("rules not loaded");
        }
        if let Some(queue) = &self.queue {
            let last_ok = *queue
                .last_ok
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match last_ok {
                None => return Some("queue not reached yet"),
                Some(at) if at.elapsed() > queue.stale_after => {
                    return Some("queue not reached recently");
                }
                Some(_) => {}
            }
        }
        None
    }
}

#[derive(Debug, Clone)]
struct AppState {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

/// The router, for serving and for tests.
pub fn router(health: Arc<Health>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AppState { health, metrics })
}

/// Serves on `listener` until `stop` fires.
pub async fn serve(
    listener: TcpListener,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(health, metrics))
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.health.not_ready_reason() {
        None => (StatusCode::OK, "ready\n".to_owned()),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        ),
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        state.metrics.encode(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("status line");
        (status, response)
    }

    #[tokio::test]
    async fn endpoints_follow_health() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let health = Arc::new(Health::remote(Duration::from_secs(60)));
        let metrics = Arc::new(Metrics::default());
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(
            listener,
            Arc::clone(&health),
            Arc::clone(&metrics),
            stop.clone(),
        ));

        assert_eq!(get(addr, "/healthz").await.0, 200);
        let (status, body) = get(addr, "/readyz").await;
        assert_eq!(status, 503);
        assert!(body.contains("rules not loaded"), "{body}");

        health.set_rules_loaded();
        assert!(
            get(addr, "/readyz")
                .await
                .1
                .contains("queue not reached yet")
        );
        health.queue_answered();
        assert_eq!(get(addr, "/readyz").await.0, 200);
        health.set_draining();
        assert_eq!(get(addr, "/readyz").await.0, 503);
        assert_eq!(
            get(addr, "/healthz").await.0,
            200,
            "liveness never follows AWS"
        );

        metrics.messages_received.inc_by(3);
        let (status, body) = get(addr, "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            body.contains("meterwatch_messages_received_total 3"),
            "{body}"
        );

        stop.cancel();
        server.await.expect("joins").expect("serves");
    }

    #[tokio::test(start_paused = true)]
    async fn queue_silence_makes_unready() {
        let health = Health::remote(Duration::from_secs(60));
        health.set_rules_loaded();
        health.queue_answered();
        assert_eq!(health.not_ready_reason(), None);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(
            health.not_ready_reason(),
            Some("queue not reached recently")
        );
    }
}
