//! Silences kept in the state table (`meterwatch silence add|list|expire`), beside those in
//! rule files: what a silence is ([`Silence`]), when it is in force, and how the table holds
//! them. Matching an alert is `rules::silence`'s (this module knows no alerts).
//!
//! The table has a partition key only, and the daemon may not scan it (its IAM grants
//! `GetItem`, `PutItem`, `DeleteItem`): so each silence is one item, `silence##<id>`, and one
//! index item, `silences##`, lists their ids. Both are written by [`Store::update`]'s
//! optimistic concurrency, so two operators adding silences at once both land. Reading them
//! all ([`list`]) is one read of the index and one per silence; a silence's item outlives its
//! end by [`RETAIN`] (so `list --all` shows what just ended), then TTL removes it and the next
//! [`add`] drops its id from the index.

use super::{Change, Entry, Millis, StateError, Store, Write, millis, state_key};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How long a silence is kept after it ends.
pub const RETAIN: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long the index is kept after the last add (or the end of its longest silence).
const INDEX_RETAIN: Duration = Duration::from_secs(400 * 24 * 3600);

/// One silence: alerts all of whose `matchers` hold are not sent from `starts` until `ends`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    /// Why: shown wherever the silence is listed.
    pub comment: String,
    /// Who: from the rule file, or the caller's IAM identity.
    pub created_by: String,
    pub starts: Millis,
    pub ends: Millis,
    /// Alert field → values (`*` wildcards); every field must hold one of its values.
    pub matchers: BTreeMap<String, Vec<String>>,
}

impl Silence {
    /// Whether it silences alerts raised at `now`.
    pub fn in_force(&self, now: Millis) -> bool {
        self.starts <= now && now < self.ends
    }

    /// Whether it has ended by `now`.
    pub fn has_ended(&self, now: Millis) -> bool {
        self.ends <= now
    }
}

/// The ids of the silences in the table (the index item's entry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub ids: BTreeSet<String>,
}

/// The index item's key.
pub fn index_key() -> String {
    state_key("silences", "", "")
}

/// A silence's item's key.
pub fn key(id: &str) -> String {
    state_key("silence", "", id)
}

/// Whether `add` stored the silence or found one with its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Stored,
    /// A silence with this id exists (and has not ended): ids are never reused while one is
    /// in force, so that `expire` names one silence.
    Exists,
}

/// Writes `silence` at its key unless a live one holds the id.
pub fn put(previous: Option<&Entry>, silence: &Silence, now: Millis) -> Change<Added> {
    if let Some(Entry::Silence(existing)) = previous
        && !existing.has_ended(now)
    {
        return Change {
            write: Write::Keep,
            decision: Added::Exists,
        };
    }
    Change {
        write: Write::Put {
            entry: Entry::Silence(Box::new(silence.clone())),
            expires_at: retained_until(silence, now),
        },
        decision: Added::Stored,
    }
}

/// Adds `silence` to the index, dropping the ids in `gone` (whose items no longer exist).
pub fn index_add(
    previous: Option<&Entry>,
    silence: &Silence,
    gone: &BTreeSet<String>,
    now: Millis,
) -> Change<()> {
    let mut index = match previous {
        Some(Entry::Silences(index)) => index.clone(),
        _ => Index::default(),
    };
    index.ids.retain(|id| !gone.contains(id));
    index.ids.insert(silence.id.clone());
    // At least as long as the silence's item; each add extends it.
    let expires_at = retained_until(silence, now).max(now.saturating_add(millis(INDEX_RETAIN)));
    Change {
        write: Write::Put {
            entry: Entry::Silences(index),
            expires_at,
        },
        decision: (),
    }
}

/// Ends the silence at `now` (a silence that has not started ends before it starts); `None`
/// when there is none with this id, or it had ended.
pub fn end(previous: Option<&Entry>, now: Millis) -> Change<Option<Silence>> {
    let keep = Change {
        write: Write::Keep,
        decision: None,
    };
    let Some(Entry::Silence(silence)) = previous else {
        return keep;
    };
    if silence.has_ended(now) {
        return keep;
    }
    let mut ended = (**silence).clone();
    ended.ends = now;
    ended.starts = ended.starts.min(now);
    Change {
        write: Write::Put {
            entry: Entry::Silence(Box::new(ended.clone())),
            expires_at: retained_until(&ended, now),
        },
        decision: Some(ended),
    }
}

fn retained_until(silence: &Silence, now: Millis) -> Millis {
    silence.ends.max(now).saturating_add(millis(RETAIN))
}

/// Every silence in the table (ended ones too, until they are forgotten), by id.
pub async fn list(store: &Store, now: Millis) -> Result<Vec<Silence>, StateError> {
    let ids = match store.get(&index_key(), now).await? {
        Some(Entry::Silences(index)) => index.ids,
        _ => return Ok(Vec::new()),
    };
    let mut silences = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(Entry::Silence(silence)) = store.get(&key(&id), now).await? {
            silences.push(*silence);
        }
    }
    Ok(silences)
}

/// Stores a new silence and lists it in the index.
pub async fn add(store: &Store, silence: &Silence, now: Millis) -> Result<Added, StateError> {
    // Listed first: a silence stored but not listed would be in force nowhere.
    let listed = list_ids(store, now).await?;
    let mut gone = BTreeSet::new();
    for id in listed {
        if store.get(&key(&id), now).await?.is_none() {
            gone.insert(id);
        }
    }
    store
        .update(&index_key(), now, |previous| {
            index_add(previous, silence, &gone, now)
        })
        .await?;
    let (added, _) = store
        .update(&key(&silence.id), now, |previous| {
            put(previous, silence, now)
        })
        .await?;
    Ok(added)
}

/// Ends the silence `id` now; `None` when there is none in force or to come.
pub async fn expire(store: &Store, id: &str, now: Millis) -> Result<Option<Silence>, StateError> {
    let (ended, _) = store
        .update(&key(id), now, |previous| end(previous, now))
        .await?;
    Ok(ended)
}

async fn list_ids(store: &Store, now: Millis) -> Result<BTreeSet<String>, StateError> {
    Ok(match store.get(&index_key(), now).await? {
        Some(Entry::Silences(index)) => index.ids,
        _ => BTreeSet::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MemoryStore;

    fn silence(id: &str, starts: Millis, ends: Millis) -> Silence {
        Silence {
            id: id.to_owned(),
            comment: "maintenance".to_owned(),
            created_by: "ops@example.com".to_owned(),
            starts,
            ends,
            matchers: BTreeMap::from([("rule".to_owned(), vec!["metering-*".to_owned()])]),
        }
    }

    #[test]
    fn a_silence_is_in_force_from_its_start_until_its_end() {
        let window = silence("s", 1_000, 2_000);
        assert!(!window.in_force(999));
        assert!(window.in_force(1_000));
        assert!(window.in_force(1_999));
        assert!(!window.in_force(2_000));
        assert!(window.has_ended(2_000) && !window.has_ended(1_999));
    }

    #[tokio::test]
    async fn silences_are_added_listed_and_expired_through_the_store() {
        let store = Store::Memory(MemoryStore::default());
        let now = 10_000;
        let first = silence("first", now, now + 60_000);
        assert_eq!(add(&store, &first, now).await.ok(), Some(Added::Stored));
        assert_eq!(
            add(&store, &first, now).await.ok(),
            Some(Added::Exists),
            "an id in force is not reused"
        );
        let second = silence("second", now + 1_000, now + 5_000);
        assert_eq!(add(&store, &second, now).await.ok(), Some(Added::Stored));
        let listed = list(&store, now).await.unwrap_or_default();
        assert_eq!(listed, vec![first.clone(), second]);

        let ended = expire(&store, "first", now + 10).await.ok().flatten();
        assert_eq!(ended.map(|s| s.ends), Some(now + 10));
        assert_eq!(expire(&store, "first", now + 20).await.ok(), Some(None));
        assert_eq!(expire(&store, "nobody", now).await.ok(), Some(None));
        let listed = list(&store, now + 20).await.unwrap_or_default();
        assert!(!listed[0].in_force(now + 20), "{listed:?}");
        // An ended silence's id may be used again.
        assert_eq!(
            add(&store, &first, now + 30).await.ok(),
            Some(Added::Stored)
        );
    }

    #[tokio::test]
    async fn forgotten_silences_leave_the_index_at_the_next_add() {
        let store = Store::Memory(MemoryStore::default());
        add(&store, &silence("old", 0, 1_000), 0).await.ok();
        let later = 1_000 + millis(RETAIN) + 1;
        add(&store, &silence("new", later, later + 1_000), later)
            .await
            .ok();
        let ids = list_ids(&store, later).await.unwrap_or_default();
        assert_eq!(ids.into_iter().collect::<Vec<_>>(), ["new"]);
    }
}
