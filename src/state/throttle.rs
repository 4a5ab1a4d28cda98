//! Throttle: at most one alert per rule and group (e.g. account + product) per interval,
//! judged by the wall clock. Alerts in between are held back and counted; the next alert
//! sent for the group carries the count (`suppressed`), so a storm of 500 throttled calls is
//! one page now and one an hour later saying "499 more".

use super::{Change, Entry, GroupBy, Millis, Write, millis};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a group's count of held-back alerts outlives its interval: a quiet group's next
/// alert, days later, still says how many were held back at the end of the last storm.
pub const RETAIN: Duration = Duration::from_secs(7 * 24 * 3600);

/// `[rule.throttle]`, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub group_by: GroupBy,
    pub interval: Duration,
}

/// One group's current interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// No alert is sent before this time.
    pub until: Millis,
    /// Alerts held back since the last one sent.
    pub suppressed: u64,
}

/// What to do with one alert of the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it, saying how many were held back before it.
    Send { suppressed: u64 },
    /// Suppress it (counted, for the next one sent).
    Suppress,
}

/// Decides for an alert at `now`.
pub fn decide(previous: Option<&Entry>, now: Millis, interval: Duration) -> Change<Verdict> {
    let window = match previous {
        Some(Entry::Throttle(window)) => Some(window),
        _ => None,
    };
    match window {
        Some(window) if window.until > now => {
            let until = window.until;
            Change {
                write: Write::Put {
                    entry: Entry::Throttle(Window {
                        until,
                        suppressed: window.suppressed.saturating_add(1),
                    }),
                    expires_at: until + millis(RETAIN),
                },
                decision: Verdict::Suppress,
            }
        }
        _ => {
            let until = now + millis(interval);
            Change {
                write: Write::Put {
                    entry: Entry::Throttle(Window {
                        until,
                        suppressed: 0,
                    }),
                    expires_at: until + millis(RETAIN),
                },
                decision: Verdict::Send {
                    suppressed: window.map_or(0, |w| w.suppressed),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{MemoryStore, Store};

    const HOUR: Duration = Duration::from_secs(3600);

    async fn alert_at(store: &Store, now: Millis) -> Verdict {
        store
            .update("g", now, |previous| decide(previous, now, HOUR))
            .await
            .expect("memory store")
            .0
    }

    #[tokio::test]
    async fn one_alert_per_interval_and_the_next_counts_the_held_back() {
        let store = Store::Memory(MemoryStore::default());
        assert_eq!(alert_at(&store, 0).await, Verdict::Send { suppressed: 0 });
        for minute in 1..=3 {
            assert_eq!(alert_at(&store, minute * 60_000).await, Verdict::Suppress);
        }
        let next = millis(HOUR);
        assert_eq!(
            alert_at(&store, next).await,
            Verdict::Send { suppressed: 3 }
        );
        assert_eq!(alert_at(&store, next + 1).await, Verdict::Suppress);
        let quiet = 2 * millis(HOUR) + 1;
        assert_eq!(
            alert_at(&store, quiet).await,
            Verdict::Send { suppressed: 1 }
        );
    }
}
