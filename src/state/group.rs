//! Grouping (Alertmanager's `group_wait` and `group_interval`): a group's first match waits
//! `wait` for others; then one alert summarises them all (count, first and last event time,
//! event ids). Matches after that are collected until `interval` after the previous alert.
//!
//! This is the rule's compiled `[rule.group]`; its batches live in the process, not in a
//! store, and are kept by `noise::group`, which also says how a grouped match is
//! acknowledged and how a replay flushes.

use super::GroupBy;
use std::time::Duration;

/// `[rule.group] wait` when not given.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// `[rule.group] interval` when not given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

/// `[rule.group]`, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub group_by: GroupBy,
    pub wait: Duration,
    pub interval: Duration,
}
