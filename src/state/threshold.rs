//! Threshold: alert when `count` matches of one group fall within `window`, by the events'
//! own `eventTime` rather than arrival time, so that a late or out-of-order delivery still
//! counts in the window it belongs to.
//!
//! The entry keeps the matches' event times (sorted) for two windows back from the latest
//! one seen: enough for any window a match up to one window late can fall in. A later match
//! is dropped as too late. After firing for a window, the matches in it are spent: the next
//! alert needs `count` new matches after that window's end, so a continuing storm fires once
//! per window, not once per match. Each match is recorded with its alert id's hash, so a
//! redelivered match is not counted twice.

use super::{Change, Entry, GroupBy, Millis, Write, millis};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Matches kept per group at most: far above any sensible `count`, it bounds a storm.
const MAX_KEPT: usize = 10_000;

/// `[rule.threshold]`, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub group_by: GroupBy,
    pub count: u32,
    pub window: Duration,
}

/// One group's recent matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// (event time, alert id hash), sorted.
    pub times: Vec<(Millis, u64)>,
    /// The end of the last window that fired: matches up to here are spent.
    pub spent_until: Option<Millis>,
}

/// What one match did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It completed `count` matches within a window from `first` to `last` (event times).
    Fire {
        count: u32,
        first: Millis,
        last: Millis,
    },
    /// Counted; no window has enough yet (or its window already fired).
    Counted,
    /// Already counted (a redelivery), or older than the window it could still count in.
    Ignored,
}

/// Records a match at `event_time` (wall-clock `now` for the entry's expiry).
pub fn decide(
    previous: Option<&Entry>,
    spec: &Spec,
    event_time: Millis,
    id_hash: u64,
    now: Millis,
) -> Change<Verdict> {
    let window = millis(spec.window);
    let mut counts = match previous {
        Some(Entry::Threshold(counts)) => counts.clone(),
        _ => Box::default(),
    };
    let latest = counts
        .times
        .last()
        .map_or(event_time, |(t, _)| (*t).max(event_time));
    let ignored = Change {
        write: Write::Keep,
        decision: Verdict::Ignored,
    };
    if event_time < latest - window || counts.times.contains(&(event_time, id_hash)) {
        return ignored;
    }
    let at = counts
        .times
        .partition_point(|entry| *entry < (event_time, id_hash));
    counts.times.insert(at, (event_time, id_hash));
    let horizon = latest - 2 * window;
    counts.times.retain(|(t, _)| *t >= horizon);
    if counts.times.len() > MAX_KEPT {
        let excess = counts.times.len() - MAX_KEPT;
        counts.times.drain(..excess);
    }

    // Windows [start, start + window] holding the new match, starting at a live match.
    let live: Vec<Millis> = counts
        .times
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| counts.spent_until.is_none_or(|spent| *t > spent))
        .collect();
    let mut decision = Verdict::Counted;
    if counts.spent_until.is_none_or(|spent| event_time > spent) {
        for (start_idx, start) in live.iter().enumerate() {
            if *start > event_time {
                break;
            }
            if *start < event_time - window {
                continue;
            }
            let end = start + window;
            let n_in = live[start_idx..].partition_point(|t| *t <= end);
            if n_in >= spec.count as usize {
                let last = live[start_idx + n_in - 1];
                decision = Verdict::Fire {
                    count: u32::try_from(n_in).unwrap_or(u32::MAX),
                    first: *start,
                    last,
                };
                counts.spent_until = Some(end);
                break;
            }
        }
    }
    let newest = counts.times.last().map_or(event_time, |(t, _)| *t);
    Change {
        write: Write::Put {
            entry: Entry::Threshold(counts),
            expires_at: newest.max(now) + 2 * window,
        },
        decision,
    }
}

/// A match's identity for [`Counts`]: the first 8 bytes of its alert id.
pub fn id_hash(alert_id: &str) -> u64 {
    match uuid::Uuid::parse_str(alert_id) {
        Ok(uuid) => uuid.as_u64_pair().0,
        Err(_) => {
            uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, alert_id.as_bytes())
                .as_u64_pair()
                .0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Millis = 60_000;

    fn spec() -> Spec {
        Spec {
            group_by: GroupBy::default(),
            count: 3,
            window: Duration::from_secs(600),
        }
    }

    /// Feeds matches (event minute, id) and returns the verdicts.
    fn feed(matches: &[(Millis, u64)]) -> Vec<Verdict> {
        let mut entry = None;
        let mut verdicts = Vec::new();
        for (minute, id) in matches {
            let change = decide(entry.as_ref(), &spec(), minute * MINUTE, *id, 0);
            if let Write::Put { entry: next, .. } = change.write {
                entry = Some(next);
            }
            verdicts.push(change.decision);
        }
        verdicts
    }

    fn fire(count: u32, first: Millis, last: Millis) -> Verdict {
        Verdict::Fire {
            count,
            first: first * MINUTE,
            last: last * MINUTE,
        }
    }

    #[test]
    fn fires_once_when_count_matches_fall_within_the_window() {
        use Verdict::Counted;
        let verdicts = feed(&[(0, 1), (4, 2), (9, 3), (10, 4), (11, 5)]);
        assert_eq!(
            verdicts,
            [Counted, Counted, fire(3, 0, 9), Counted, Counted]
        );
    }

    #[test]
    fn matches_spread_wider_than_the_window_do_not_fire() {
        let verdicts = feed(&[(0, 1), (6, 2), (12, 3), (18, 4)]);
        assert!(
            verdicts.iter().all(|v| *v == Verdict::Counted),
            "{verdicts:?}"
        );
    }

    #[test]
    fn a_late_match_counts_in_its_own_window() {
        use Verdict::Counted;
        // Minutes 20 and 22 arrive, then minute 15 late: 15, 20, 22 are within 10 minutes.
        let verdicts = feed(&[(20, 1), (22, 2), (15, 3)]);
        assert_eq!(verdicts, [Counted, Counted, fire(3, 15, 22)]);
    }

    #[test]
    fn redeliveries_and_matches_too_late_are_ignored() {
        use Verdict::{Counted, Ignored};
        let verdicts = feed(&[(30, 1), (30, 1), (19, 2), (31, 3)]);
        assert_eq!(verdicts, [Counted, Ignored, Ignored, Counted]);
    }

    #[test]
    fn a_continuing_storm_fires_once_per_window() {
        let matches: Vec<(Millis, u64)> = (0..30).map(|minute| (minute, minute as u64)).collect();
        let fired: Vec<Verdict> = feed(&matches)
            .into_iter()
            .filter(|v| matches!(v, Verdict::Fire { .. }))
            .collect();
        // Windows [0, 10] (fires at minute 2), then matches after 10: [11, 21] fires at 13,
        // then after 21: fires at 24.
        assert_eq!(fired, [fire(3, 0, 2), fire(3, 11, 13), fire(3, 22, 24)]);
    }
}
