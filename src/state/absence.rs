//! Absence: the costliest metering failure raises no event at all. An absence rule's matches
//! (successful MeterUsage / BatchMeterUsage calls) are *heartbeats* of a key (a product code,
//! optionally with a dimension); a key with no heartbeat for `interval` + `grace` fires once,
//! and its next heartbeat sends one resolved notice.
//!
//! Silence is judged by "now" against the last heartbeat's *event* time, by a periodic check
//! ([`check`]; on a queue "now" is the wall clock and the daemon's ticker runs it; in a replay
//! of files or stdin, the latest event time, see `noise`) over every expected key:
//! the rule's `expected_list` and, with `learn`, every key seen since. Each key's heartbeat
//! entry (last event time, whether it is alerted) lives in the store, as does the set of
//! learned keys, so with DynamoDB a restart neither forgets a pending absence nor alerts
//! again for one already reported. A key is marked reported ([`mark_reported`]) only after
//! its alert was sent, whose id is first claimed in dedup: of several replicas running the
//! check one sends, and a check cut off mid-publish (shutdown, a kill) leaves the key
//! unreported, so a later check sends the alert (after the claim's lease, if it stood).
//!
//! A listed key never seen is watched from the first check: it fires if nothing arrives
//! within `interval` + `grace` of monitoring starting.
//!
//! The entry also keeps where the latest heartbeat was recorded ([`Origin`]: account and
//! region), so the alert names where metering stopped although no event raises it.

use super::{Change, Entry, GroupBy, Millis, Write, millis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

/// `[rule.absence] interval` when not given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(3600);
/// `[rule.absence] grace` when not given.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(15 * 60);
/// Heartbeat entries and learned keys are kept this long after their last write: a product
/// that stopped for good is forgotten after a year, not reported again.
pub const RETAIN: Duration = Duration::from_secs(400 * 24 * 3600);

/// `[rule.absence]`, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub group_by: GroupBy,
    pub interval: Duration,
    pub grace: Duration,
    /// The expected list's name and its entries (each a key's text).
    pub expected: Option<(String, Vec<String>)>,
    pub learn: bool,
}

impl Spec {
    /// How long a key may be silent.
    pub fn allowed_silence(&self) -> Millis {
        millis(self.interval) + millis(self.grace)
    }
}

/// One key's heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The latest heartbeat's event time, or when monitoring of a key never seen began.
    pub last: Millis,
    /// Whether `last` is a heartbeat (else the start of monitoring).
    pub seen: bool,
    /// Whether the absence was reported and not yet resolved.
    pub alerted: bool,
    /// Where the latest heartbeat was recorded. Defaulted: entries written before it existed
    /// are still read.
    #[serde(default, skip_serializing_if = "Origin::is_unknown")]
    pub origin: Origin,
}

/// Where a heartbeat was recorded: the account whose CloudTrail logged the call, and its
/// region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl Origin {
    pub fn is_unknown(&self) -> bool {
        self.account.is_none() && self.region.is_none()
    }
}

/// The keys an absence rule learned from traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Learned {
    pub keys: BTreeSet<String>,
}

/// What a heartbeat did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// The key was reported absent and meters again: send the resolved notice.
    Resumed { silent_since: Millis },
    /// Recorded.
    Alive,
}

/// What the periodic check found for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Silent for too long and not yet reported: send the alert (naming `origin`, where the
    /// last heartbeat came from, if any did).
    Missing {
        since: Millis,
        seen: bool,
        origin: Origin,
    },
    /// Fine.
    Quiet,
    /// Silent, and already reported.
    Reported,
}

/// Records a heartbeat at `event_time` from `origin`, judged at `now`.
pub fn beat(
    previous: Option<&Entry>,
    spec: &Spec,
    event_time: Millis,
    origin: &Origin,
    now: Millis,
) -> Change<Beat> {
    let previous = match previous {
        Some(Entry::Heartbeat(heartbeat)) => Some(&**heartbeat),
        _ => None,
    };
    let seen_before = previous.as_ref().filter(|p| p.seen);
    if seen_before.is_none() && now - event_time > spec.allowed_silence() {
        return first_but_stale(previous, origin, now);
    }
    let last = seen_before.map_or(event_time, |p| p.last.max(event_time));
    // The latest heartbeat says where metering happens; a late, older one does not.
    let origin = match seen_before {
        Some(p) if p.last > event_time => p.origin.clone(),
        _ => origin.clone(),
    };
    let alerted = previous.as_ref().is_some_and(|p| p.alerted);
    // A late delivery of an old heartbeat does not mean metering resumed.
    let recent = now - last <= spec.allowed_silence();
    let resumed = alerted && recent;
    let unchanged = previous
        .as_ref()
        .is_some_and(|p| p.seen && p.last == last && p.origin == origin && !resumed);
    let write = if unchanged {
        Write::Keep
    } else {
        Write::Put {
            entry: Entry::Heartbeat(Box::new(Heartbeat {
                last,
                seen: true,
                alerted: alerted && !resumed,
                origin,
            })),
            expires_at: now.max(last) + millis(RETAIN),
        }
    };
    let decision = match (resumed, previous) {
        (true, Some(previous)) => Beat::Resumed {
            silent_since: previous.last,
        },
        _ => Beat::Alive,
    };
    Change { write, decision }
}

/// A key's first heartbeat already older than the silence allowed (delivered late, or
/// redriven from a dead-letter queue) shows that the key metered once, not that it meters:
/// taken as the latest, it would report an absence at once, and a newer heartbeat still on
/// its way would resolve it. So the key is watched as one never seen, from when watching
/// began (now, if it had not), and only silence from then on is reported.
fn first_but_stale(previous: Option<&Heartbeat>, origin: &Origin, now: Millis) -> Change<Beat> {
    let watching_since = previous.map_or(now, |p| p.last);
    let write = if previous.is_some_and(|p| p.origin == *origin) {
        Write::Keep
    } else {
        Write::Put {
            entry: Entry::Heartbeat(Box::new(Heartbeat {
                last: watching_since,
                seen: false,
                alerted: previous.is_some_and(|p| p.alerted),
                origin: origin.clone(),
            })),
            expires_at: now.max(watching_since) + millis(RETAIN),
        }
    };
    Change {
        write,
        decision: Beat::Alive,
    }
}

/// Checks one expected key at `now`.
pub fn check(previous: Option<&Entry>, spec: &Spec, now: Millis) -> Change<Check> {
    let keep = Change {
        write: Write::Keep,
        decision: Check::Quiet,
    };
    match previous {
        Some(Entry::Heartbeat(heartbeat)) => {
            if heartbeat.alerted {
                return Change {
                    write: Write::Keep,
                    decision: Check::Reported,
                };
            }
            if now - heartbeat.last <= spec.allowed_silence() {
                return keep;
            }
            // Not marked reported here: only once the alert is out ([`mark_reported`]), so
            // that a check cut off while sending leaves the key to be reported again.
            Change {
                write: Write::Keep,
                decision: Check::Missing {
                    since: heartbeat.last,
                    seen: heartbeat.seen,
                    origin: heartbeat.origin.clone(),
                },
            }
        }
        // Never seen: start watching now.
        _ => Change {
            write: Write::Put {
                entry: Entry::Heartbeat(Box::new(Heartbeat {
                    last: now,
                    seen: false,
                    alerted: false,
                    origin: Origin::default(),
                })),
                expires_at: now + millis(RETAIN),
            },
            decision: Check::Quiet,
        },
    }
}

/// Marks a key's absence reported, once its alert was sent: the next heartbeat resolves it.
/// Also when a heartbeat arrived while the alert was being sent: the alert is out, so the
/// resolved notice must follow.
pub fn mark_reported(previous: Option<&Entry>, now: Millis) -> Change<()> {
    let write = match previous {
        Some(Entry::Heartbeat(heartbeat)) if !heartbeat.alerted => Write::Put {
            entry: Entry::Heartbeat(Box::new(Heartbeat {
                alerted: true,
                ..(**heartbeat).clone()
            })),
            expires_at: now.max(heartbeat.last) + millis(RETAIN),
        },
        // Already marked (by another replica), or gone: nothing to add.
        _ => Write::Keep,
    };
    Change {
        write,
        decision: (),
    }
}

/// Adds `key` to the learned keys (no write if known).
pub fn learn(previous: Option<&Entry>, key: &str, now: Millis) -> Change<bool> {
    let mut learned = match previous {
        Some(Entry::Keys(learned)) if learned.keys.contains(key) => {
            return Change {
                write: Write::Keep,
                decision: false,
            };
        }
        Some(Entry::Keys(learned)) => learned.clone(),
        _ => Learned::default(),
    };
    learned.keys.insert(key.to_owned());
    Change {
        write: Write::Put {
            entry: Entry::Keys(learned),
            expires_at: now + millis(RETAIN),
        },
        decision: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Millis = 60_000;

    fn spec() -> Spec {
        Spec {
            group_by: GroupBy::default(),
            interval: DEFAULT_INTERVAL,
            grace: DEFAULT_GRACE,
            expected: None,
            learn: true,
        }
    }

    fn apply<D>(entry: &mut Option<Entry>, change: Change<D>) -> D {
        if let Write::Put { entry: next, .. } = change.write {
            *entry = Some(next);
        }
        change.decision
    }

    /// A check at `now` whose alert, if any, was sent (and the key then marked).
    fn check_at(entry: &mut Option<Entry>, now: Millis) -> Check {
        let change = check(entry.as_ref(), &spec(), now);
        let decision = apply(entry, change);
        if matches!(decision, Check::Missing { .. }) {
            let change = mark_reported(entry.as_ref(), now);
            apply(entry, change);
        }
        decision
    }

    fn beat_at(entry: &mut Option<Entry>, event_time: Millis, now: Millis) -> Beat {
        beat_from(entry, event_time, &origin("123456789012"), now)
    }

    fn beat_from(
        entry: &mut Option<Entry>,
        event_time: Millis,
        origin: &Origin,
        now: Millis,
    ) -> Beat {
        let change = beat(entry.as_ref(), &spec(), event_time, origin, now);
        apply(entry, change)
    }

    fn origin(account: &str) -> Origin {
        Origin {
            account: Some(account.to_owned()),
            region: Some("us-east-1".to_owned()),
        }
    }

    #[test]
    fn silence_past_interval_and_grace_fires_once_and_a_heartbeat_resolves() {
        let mut entry = None;
        assert_eq!(beat_at(&mut entry, 0, 0), Beat::Alive);
        assert_eq!(check_at(&mut entry, 75 * MINUTE), Check::Quiet);
        assert_eq!(
            check_at(&mut entry, 76 * MINUTE),
            Check::Missing {
                since: 0,
                seen: true,
                origin: origin("123456789012"),
            }
        );
        assert_eq!(check_at(&mut entry, 200 * MINUTE), Check::Reported);
        assert_eq!(
            beat_at(&mut entry, 199 * MINUTE, 200 * MINUTE),
            Beat::Resumed { silent_since: 0 }
        );
        assert_eq!(beat_at(&mut entry, 200 * MINUTE, 201 * MINUTE), Beat::Alive);
        assert_eq!(check_at(&mut entry, 202 * MINUTE), Check::Quiet);
    }

    #[test]
    fn a_first_heartbeat_older_than_the_silence_allowed_is_watched_from_now() {
        let mut entry = None;
        assert_eq!(beat_at(&mut entry, 0, 120 * MINUTE), Beat::Alive);
        assert_eq!(
            check_at(&mut entry, 121 * MINUTE),
            Check::Quiet,
            "no page at once"
        );
        // The newer heartbeat behind it arrives: metering was fine all along.
        assert_eq!(beat_at(&mut entry, 119 * MINUTE, 122 * MINUTE), Beat::Alive);
        assert_eq!(check_at(&mut entry, 150 * MINUTE), Check::Quiet);
        // Without one, silence from when watching began is reported, naming where the
        // stale heartbeat came from.
        let mut entry = None;
        beat_at(&mut entry, 0, 120 * MINUTE);
        assert_eq!(
            check_at(&mut entry, 196 * MINUTE),
            Check::Missing {
                since: 120 * MINUTE,
                seen: false,
                origin: origin("123456789012"),
            }
        );
    }

    #[test]
    fn an_old_heartbeat_delivered_late_does_not_resolve() {
        let mut entry = None;
        beat_at(&mut entry, 0, 0);
        check_at(&mut entry, 100 * MINUTE);
        assert_eq!(beat_at(&mut entry, 10 * MINUTE, 101 * MINUTE), Beat::Alive);
        assert!(matches!(entry, Some(Entry::Heartbeat(h)) if h.alerted));
    }

    #[test]
    fn a_missing_key_is_marked_reported_only_once_its_alert_is_sent() {
        let mut entry = None;
        beat_at(&mut entry, 0, 0);
        let unsent = check(entry.as_ref(), &spec(), 76 * MINUTE);
        assert_eq!(unsent.write, Write::Keep, "the check itself marks nothing");
        assert!(matches!(
            check(entry.as_ref(), &spec(), 77 * MINUTE).decision,
            Check::Missing { .. }
        ));
        let change = mark_reported(entry.as_ref(), 77 * MINUTE);
        apply(&mut entry, change);
        assert_eq!(check_at(&mut entry, 78 * MINUTE), Check::Reported);
    }

    #[test]
    fn a_key_never_seen_is_watched_from_the_first_check() {
        let mut entry = None;
        assert_eq!(check_at(&mut entry, 10 * MINUTE), Check::Quiet);
        assert_eq!(
            check_at(&mut entry, 86 * MINUTE),
            Check::Missing {
                since: 10 * MINUTE,
                seen: false,
                origin: Origin::default(),
            }
        );
    }

    #[test]
    fn the_alert_names_where_the_latest_heartbeat_came_from() {
        let mut entry = None;
        beat_from(
            &mut entry,
            10 * MINUTE,
            &origin("111111111111"),
            10 * MINUTE,
        );
        beat_from(
            &mut entry,
            20 * MINUTE,
            &origin("222222222222"),
            20 * MINUTE,
        );
        // Late and older: it does not move where metering was last seen.
        beat_from(
            &mut entry,
            15 * MINUTE,
            &origin("333333333333"),
            21 * MINUTE,
        );
        assert_eq!(
            check_at(&mut entry, 200 * MINUTE),
            Check::Missing {
                since: 20 * MINUTE,
                seen: true,
                origin: origin("222222222222"),
            }
        );
    }

    #[test]
    fn entries_written_before_origin_existed_still_read() {
        let old = r#"{"kind":"heartbeat","last":5,"seen":true,"alerted":false}"#;
        let entry: Entry = serde_json::from_str(old).expect("an old entry reads");
        assert!(matches!(entry, Entry::Heartbeat(h) if h.last == 5 && h.origin.is_unknown()));
    }

    #[test]
    fn learning_a_key_writes_once() {
        let mut entry = None;
        let change = learn(None, "p", 0);
        assert!(apply(&mut entry, change));
        let change = learn(entry.as_ref(), "p", 1);
        assert!(!apply(&mut entry, change));
    }
}
