//! SIGTERM (ECS, Kubernetes) and SIGINT (a terminal) as one future.

use tokio::signal::unix::{SignalKind, signal};

/// Waits for SIGTERM or SIGINT and returns its name. If a handler cannot be installed, that
/// signal is simply not waited for (the other still is).
pub async fn terminated() -> &'static str {
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    tokio::select! {
        Some(()) = recv(&mut term) => "SIGTERM",
        Some(()) = recv(&mut int) => "SIGINT",
    }
}

async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}
