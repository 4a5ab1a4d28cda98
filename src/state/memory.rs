//! The in-process store: one replica, forgotten on restart.
//!
//! A `HashMap` behind a std `Mutex`: every operation is a lookup and an insert, the lock is
//! never held across an `.await` (decisions are synchronous), so a tokio mutex would only add
//! cost. Expired entries are evicted by a sweep that runs whenever the map has doubled since
//! the last one, so memory follows the number of *live* keys (amortised O(1) per write), and
//! an entry read after it expired counts as absent even before it is swept. Keys are hashed
//! with foldhash, seeded per process: SipHash was a tenth of the stage's cost, and keys hold
//! event values, so the seed still matters.

use super::{Change, Entry, Millis, Token, Undo, Write, Written};
use std::collections::HashMap;
use std::sync::Mutex;

use foldhash::fast::RandomState;

/// Never sweep below this many entries: small maps are cheap to keep.
const MIN_SWEEP_LEN: usize = 1024;

#[derive(Debug)]
struct Slot {
    entry: Entry,
    expires_at: Millis,
    /// The write that left this entry.
    token: Token,
}

#[derive(Debug)]
struct Inner {
    slots: HashMap<Box<str>, Slot, RandomState>,
    /// Sweep expired entries when the map reaches this size.
    sweep_at: usize,
    /// Tokens are unique per store, so an undo never matches a later write.
    next_token: Token,
}

/// State in this process.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            inner: Mutex::new(Inner {
                slots: HashMap::default(),
                sweep_at: MIN_SWEEP_LEN,
                next_token: 1,
            }),
        }
    }
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock left a consistent map (each operation is one
        // insert or remove), so a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn update<D>(
        &self,
        key: &str,
        now: Millis,
        mut decide: impl FnMut(Option<&Entry>) -> Change<D>,
    ) -> (D, Undo) {
        let mut inner = self.lock();
        let live = inner.slots.get(key).filter(|slot| slot.expires_at > now);
        let change = decide(live.map(|slot| &slot.entry));
        // Most decisions keep the entry (a known heartbeat key, a duplicate): the entry is
        // copied, for the undo, only when it is about to be replaced.
        let previous = match change.write {
            Write::Keep => None,
            Write::Put { .. } | Write::Delete => {
                live.map(|slot| (slot.entry.clone(), slot.expires_at))
            }
        };
        let written = match change.write {
            Write::Keep => return (change.decision, Undo::nothing(key.to_owned())),
            Write::Put { entry, expires_at } => {
                let token = inner.next_token;
                inner.next_token += 1;
                let slot = Slot {
                    entry,
                    expires_at,
                    token,
                };
                // A key written before keeps its boxed copy: most writes are to known keys.
                match inner.slots.get_mut(key) {
                    Some(known) => *known = slot,
                    None => {
                        inner.slots.insert(key.into(), slot);
                    }
                }
                if inner.slots.len() >= inner.sweep_at {
                    inner.slots.retain(|_, slot| slot.expires_at > now);
                    inner.sweep_at = (inner.slots.len() * 2).max(MIN_SWEEP_LEN);
                }
                Written::Item { token, version: 0 }
            }
            Write::Delete => {
                inner.slots.remove(key);
                Written::Deleted
            }
        };
        let undo = Undo {
            key: key.to_owned(),
            previous,
            written: Some(written),
        };
        (change.decision, undo)
    }

    pub(super) fn undo(&self, undo: Undo) {
        let mut inner = self.lock();
        let current = inner.slots.get(undo.key.as_str()).map(|slot| slot.token);
        // Our write is still the last one: a put left our token, a delete left nothing.
        let ours = match (current, &undo.written) {
            (Some(current), Some(Written::Item { token, .. })) => current == *token,
            (None, Some(Written::Deleted)) => true,
            _ => false,
        };
        if !ours {
            return;
        }
        match undo.previous {
            Some((entry, expires_at)) => {
                let token = inner.next_token;
                inner.next_token += 1;
                inner.slots.insert(
                    undo.key.into(),
                    Slot {
                        entry,
                        expires_at,
                        token,
                    },
                );
            }
            None => {
                inner.slots.remove(undo.key.as_str());
            }
        }
    }

    /// Replaces the entry at `key` if it is still the write `token` made, keeping the token
    /// (see `Store::renew_mine`); whether it was.
    pub(super) fn renew(&self, key: &str, token: Token, entry: Entry, expires_at: Millis) -> bool {
        let mut inner = self.lock();
        match inner.slots.get_mut(key) {
            Some(slot) if slot.token == token => {
                slot.entry = entry;
                slot.expires_at = expires_at;
                true
            }
            _ => false,
        }
    }

    /// Entries held, expired or not (for tests and the benchmark).
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::dedup::Seen;

    fn put(store: &MemoryStore, key: &str, now: Millis, ttl: Millis) -> (bool, Undo) {
        store.update(key, now, |previous| Change {
            write: Write::Put {
                entry: Entry::Dedup(Seen::Sent),
                expires_at: now + ttl,
            },
            decision: previous.is_none(),
        })
    }

    #[test]
    fn expired_entries_read_as_absent_and_are_swept() {
        let store = MemoryStore::default();
        assert!(put(&store, "a", 0, 10).0);
        assert!(!put(&store, "a", 5, 10).0, "live entry");
        assert!(put(&store, "a", 15, 10).0, "expired at 15");
        for idx in 0..(MIN_SWEEP_LEN * 4) {
            put(&store, &format!("k{idx}"), idx as Millis, 1);
        }
        assert!(
            store.len() <= MIN_SWEEP_LEN * 2,
            "expired keys evicted: {}",
            store.len()
        );
    }

    #[test]
    fn undo_restores_the_previous_entry_unless_someone_wrote_since() {
        let store = MemoryStore::default();
        let (_, first) = put(&store, "a", 0, 100);
        let (_, second) = put(&store, "a", 1, 100);
        store.undo(first);
        assert_eq!(store.len(), 1, "a stale undo leaves the later write");
        store.undo(second);
        let (fresh, _) = put(&store, "a", 2, 100);
        assert!(!fresh, "the first write is back");

        // A delete since our write is someone's write too: our undo leaves the key absent.
        let (_, ours) = put(&store, "b", 0, 100);
        store.update("b", 0, |_| Change {
            write: Write::Delete,
            decision: (),
        });
        store.undo(ours);
        let (fresh, _) = put(&store, "b", 1, 100);
        assert!(fresh, "nothing restored");
    }
}
