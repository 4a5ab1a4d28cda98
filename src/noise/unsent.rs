//! The guard of a state write whose alert is not sent yet: used by every part of `noise`
//! that writes before it publishes (`claim`, `gate`, `absence`), over `state`'s [`Store`].

use crate::state::{StateError, Store, Undo, Write};

/// A write whose alert is not sent yet (a dedup claim, a throttle window, a threshold's or
/// an absence's mark), to be settled (the alert is out) or undone (it failed). Dropped
/// before either, as when a task is aborted at the shutdown's hard stop, it is undone at
/// once in memory; a DynamoDB write cannot be taken back from a drop, so it is logged: a
/// dedup claim then stands until its lease runs out (its alert is sent late), other writes
/// keep their alert back (see `state::dedup`'s module comment).
#[derive(Debug)]
#[must_use = "settle or undo it"]
pub(super) struct Unsent<'a> {
    store: &'a Store,
    undo: Option<Undo>,
}

impl<'a> Unsent<'a> {
    pub(super) fn new(store: &'a Store, undo: Undo) -> Self {
        Unsent {
            store,
            undo: Some(undo),
        }
    }

    /// The alert is out: the write stands. Returns it (to confirm a claim by).
    pub(super) fn settled(mut self) -> Undo {
        self.undo
            .take()
            .unwrap_or_else(|| Undo::nothing(String::new()))
    }

    /// Renews the write (a dedup claim) with `write`, if it is still ours
    /// ([`Store::renew_mine`]).
    pub(super) async fn renew(&mut self, write: Write) -> Result<bool, StateError> {
        match self.undo.as_mut() {
            Some(undo) => self.store.renew_mine(undo, write).await,
            None => Ok(false),
        }
    }

    /// The alert failed: takes the write back.
    pub(super) async fn undo(mut self) -> Result<(), StateError> {
        match self.undo.take() {
            Some(undo) => self.store.undo(undo).await,
            None => Ok(()),
        }
    }
}

impl Drop for Unsent<'_> {
    fn drop(&mut self) {
        let Some(undo) = self.undo.take() else {
            return;
        };
        if let Err(undo) = self.store.undo_at_once(undo) {
            tracing::error!(
                key = %undo.key(),
                "Interrupted between a state write and its alert's publish; the write stands \
                 though the alert may not have been sent (a dedup claim holds its alert back \
                 until its lease runs out)."
            );
        }
    }
}
