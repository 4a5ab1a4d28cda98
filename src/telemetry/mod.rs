//! What the daemon tells operators: logs ([`logging`]), Prometheus metrics ([`metrics`]), and
//! the notable events that do both at once ([`events`]), so a log line and its counter can
//! never drift apart.

pub mod events;
pub mod logging;
pub mod metrics;

pub use logging::LogFormat;
pub use metrics::Metrics;
