//! Whether the daemon is draining a backlog of its queue, so that absence checks wait for it.
//!
//! An absence is judged from the latest heartbeat seen. After the daemon was down, the queue
//! holds heartbeats older than the allowed silence with newer ones behind them, in no order: a check run before they are all read would report products
//! that were metering all along, then resolve them. So checks wait until the first receive,
//! and while receives return messages that waited long in the queue; at most
//! [`MAX_WAIT`], since a consumer that never catches up must not silence absences for good
//! (the queue-age alarm reports it).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// A message received for the first time this long after it was sent is from a backlog:
/// EventBridge delivers in seconds.
pub const BEHIND: Duration = Duration::from_secs(120);
/// How long after a backlogged receive the daemon still counts as draining: receives run
/// in parallel and the queue is unordered, so one fresh batch does not mean caught up.
pub const SETTLE: Duration = Duration::from_secs(60);
/// Checks wait for a backlog at most this long.
pub const MAX_WAIT: Duration = Duration::from_secs(15 * 60);

/// What the pollers saw of the queue, for the absence ticker.
#[derive(Debug)]
pub struct Backlog {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// When the daemon began waiting for its first receive.
    created: Instant,
    received: bool,
    /// Since when receives have returned backlogged messages (unset once caught up).
    behind_since: Option<Instant>,
    /// The latest receive that returned a backlogged message.
    last_behind: Option<Instant>,
    /// The latest receive that returned none (an empty one included).
    last_fresh: Option<Instant>,
    /// Whether giving up on a wait was reported.
    gave_up: bool,
}

impl Default for Backlog {
    fn default() -> Self {
        Backlog::new(Instant::now())
    }
}

impl Backlog {
    /// A daemon that has not received yet, from `at`.
    pub fn new(at: Instant) -> Self {
        Backlog {
            state: Mutex::new(State {
                created: at,
                received: false,
                behind_since: None,
                last_behind: None,
                last_fresh: None,
                gave_up: false,
            }),
        }
    }

    /// After each receive: the messages' receive counts and send times (`now` is the wall
    /// clock, `at` tokio's). A redelivery is left out: a retry is late on purpose.
    pub fn observe(
        &self,
        messages: impl IntoIterator<Item = (u32, Option<SystemTime>)>,
        now: SystemTime,
        at: Instant,
    ) {
        let behind = messages.into_iter().any(|(receive_count, sent_at)| {
            receive_count <= 1
                && sent_at.is_some_and(|sent| now.duration_since(sent).unwrap_or_default() > BEHIND)
        });
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.received = true;
        if !behind {
            state.last_fresh = Some(at);
            return;
        }
        if state.behind_since.is_none() {
            tracing::info!(
                "Receiving a backlog (messages over {}s old): absence checks wait until it is read.",
                BEHIND.as_secs()
            );
        }
        state.behind_since.get_or_insert(at);
        state.last_behind = Some(at);
    }

    /// Whether absence checks should wait at `at`: until the first receive, and while a
    /// backlog is read — until a receive returned no backlogged message, [`SETTLE`] after
    /// the last one that did; each wait at most [`MAX_WAIT`].
    pub fn defers_checks(&self, at: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let since = match (state.received, state.behind_since, state.last_behind) {
            (false, _, _) => state.created,
            (true, Some(since), Some(last)) => {
                let caught_up = state.last_fresh.is_some_and(|fresh| fresh > last);
                if caught_up && at.duration_since(last) > SETTLE {
                    tracing::info!("Backlog read: absence checks resume.");
                    state.behind_since = None;
                    state.last_behind = None;
                    state.gave_up = false;
                    return false;
                }
                since
            }
            (true, _, _) => return false,
        };
        if at.duration_since(since) <= MAX_WAIT {
            return true;
        }
        if !state.gave_up {
            tracing::warn!(
                hold_secs = MAX_WAIT.as_secs(),
                received = state.received,
                "Absence checks resume although the queue has not been read up to date (no receive yet, or still a backlog): the daemon is not keeping up with its queue."
            );
            state.gave_up = true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRESH: Duration = Duration::from_secs(5);
    const OLD: Duration = Duration::from_secs(3600);

    fn observe(backlog: &Backlog, age: Duration, receive_count: u32, at: Instant) {
        let now = SystemTime::now();
        backlog.observe([(receive_count, Some(now - age))], now, at);
    }

    #[tokio::test(start_paused = true)]
    async fn checks_wait_for_the_first_receive_and_then_run() {
        let backlog = Backlog::default();
        assert!(backlog.defers_checks(Instant::now()));
        backlog.observe([], SystemTime::now(), Instant::now());
        assert!(!backlog.defers_checks(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn checks_wait_while_a_backlog_is_read_and_resume_after() {
        let backlog = Backlog::default();
        observe(&backlog, OLD, 1, Instant::now());
        assert!(backlog.defers_checks(Instant::now()));
        tokio::time::advance(SETTLE / 2).await;
        observe(&backlog, FRESH, 1, Instant::now());
        assert!(
            backlog.defers_checks(Instant::now()),
            "within SETTLE of the last old one"
        );
        tokio::time::advance(SETTLE).await;
        assert!(!backlog.defers_checks(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn checks_wait_until_a_receive_after_the_backlog_returns_fresh_messages() {
        let backlog = Backlog::default();
        observe(&backlog, OLD, 1, Instant::now());
        // No receive since (every place taken, failing receives): still behind.
        tokio::time::advance(SETTLE * 3).await;
        assert!(backlog.defers_checks(Instant::now()));
        backlog.observe([], SystemTime::now(), Instant::now());
        assert!(!backlog.defers_checks(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn without_any_receive_checks_wait_at_most_max_wait() {
        let backlog = Backlog::default();
        tokio::time::advance(MAX_WAIT).await;
        assert!(backlog.defers_checks(Instant::now()));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!backlog.defers_checks(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_redelivery_is_no_backlog() {
        let backlog = Backlog::default();
        observe(&backlog, OLD, 3, Instant::now());
        assert!(!backlog.defers_checks(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_backlog_that_never_drains_defers_checks_at_most_max_wait() {
        let backlog = Backlog::default();
        let start = Instant::now();
        while Instant::now().duration_since(start) <= MAX_WAIT {
            observe(&backlog, OLD, 1, Instant::now());
            assert!(backlog.defers_checks(Instant::now()));
            tokio::time::advance(Duration::from_secs(30)).await;
        }
        observe(&backlog, OLD, 1, Instant::now());
        assert!(!backlog.defers_checks(Instant::now()));
    }
}
