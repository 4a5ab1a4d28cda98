//! Many patterns compiled into one matcher.
//!
//! Matching an event is two steps. First the event is flattened (only fields some pattern
//! mentions) and each value is looked up in its field's index, which names the branches
//! (`$or`-free conjunctions) it may complete; each branch has one *anchor* leaf in the index,
//! the one least shared with other branches, so that a common value such as the event
//! source does not make every rule a candidate. Then each candidate is verified exactly,
//! choosing one value per leaf such that all chosen values are array-consistent.
//! The cost grows with the candidates an event produces, not with the number of rules.

use crate::error::EventError;
use crate::flatten::{self, FieldValue, NONE, PathTrie, Sink, TrailStep};
use crate::index::{BranchId, FieldIndex};
use crate::op::Predicate;
use crate::pattern::Pattern;
use crate::value::Scalar;
use rustc_hash::FxHashMap;

/// Collects patterns, each under the caller's id, then builds a [`Matcher`].
#[derive(Debug)]
pub struct MatcherBuilder<T> {
    patterns: Vec<(T, Pattern)>,
    /// Paths registered with [`MatcherBuilder::want`], by handle.
    wanted: Vec<Box<str>>,
    handles: FxHashMap<Box<str>, u32>,
}

impl<T> Default for MatcherBuilder<T> {
    fn default() -> Self {
        MatcherBuilder {
            patterns: Vec::new(),
            wanted: Vec::new(),
            handles: FxHashMap::default(),
        }
    }
}

/// A field whose values the caller wants from the matching pass, registered with
/// [`MatcherBuilder::want`] and read with [`Captures::values`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Field(u32);

impl<T> MatcherBuilder<T> {
    pub fn add(&mut self, id: T, pattern: Pattern) -> &mut Self {
        self.patterns.push((id, pattern));
        self
    }

    /// Registers a dotted path (no pattern) whose values [`Matcher::capture`] keeps: the
    /// same pass that matches the patterns reads them. The same path gives the same handle.
    pub fn want(&mut self, path: &str) -> Field {
        let next = self.wanted.len() as u32;
        let handle = *self.handles.entry(path.into()).or_insert(next);
        if handle == next {
            self.wanted.push(path.into());
        }
        Field(handle)
    }

    pub fn build(self) -> Matcher<T> {
        Matcher::new(self.patterns, &self.wanted)
    }
}

/// An immutable set of compiled patterns; `Send + Sync`, share it between threads and give
/// each thread its own [`Scratch`].
#[derive(Debug)]
pub struct Matcher<T> {
    ids: Vec<T>,
    trie: PathTrie,
    n_fields: usize,
    branches: Vec<Branch>,
    indexes: Vec<FieldIndex>,
    /// The fields some anchor is indexed under: only their values are looked up.
    indexed_fields: Box<[u32]>,
    /// Branches with no indexable leaf (only `anything-but` / `exists: false`): verified for
    /// every event.
    always: Vec<BranchId>,
    /// Per [`Field`] handle, its field id.
    wanted: Box<[u32]>,
}

#[derive(Debug)]
struct Branch {
    pattern: u32,
    slots: Box<[Slot]>,
    /// Its one leaf is its anchor and the index answers that leaf exactly: being a
    /// candidate is matching.
    settled_by_anchor: bool,
}

/// A leaf of a branch, resolved to a field id.
#[derive(Debug)]
struct Slot {
    field: u32,
    predicates: Box<[Predicate]>,
    absent_ok: bool,
}

impl Slot {
    fn indexable(&self) -> bool {
        !self.absent_ok
            && !self.predicates.is_empty()
            && self.predicates.iter().all(FieldIndex::indexable)
    }
}

impl<T> Matcher<T> {
    fn new(patterns: Vec<(T, Pattern)>, wanted: &[Box<str>]) -> Matcher<T> {
        let mut trie = PathTrie::new();
        let mut n_fields = 0u32;
        let mut branches = Vec::new();
        let mut ids = Vec::with_capacity(patterns.len());
        // Per field, the dots in its path.
        let mut depths: Vec<usize> = Vec::new();
        for (pattern_idx, (id, pattern)) in patterns.into_iter().enumerate() {
            let expanded = pattern
                .branches()
                .expect("a parsed Pattern expands within MAX_BRANCHES");
            for leaves in expanded {
                let slots = leaves
                    .into_iter()
                    .map(|leaf| {
                        let field = trie.insert(&leaf.path, &mut n_fields);
                        if depths.len() <= field as usize {
                            depths.resize(field as usize + 1, 0);
                        }
                        depths[field as usize] = leaf.path.matches('.').count();
                        Slot {
                            field,
                            predicates: leaf.predicates.clone().into(),
                            absent_ok: leaf.absent_ok,
                        }
                    })
                    .collect();
                branches.push(Branch {
                    pattern: pattern_idx as u32,
                    slots,
                    settled_by_anchor: false,
                });
            }
            ids.push(id);
        }

        // How many branches use each (field, predicate): a rarely shared predicate is a
        // selective anchor.
        let mut popularity: FxHashMap<(u32, String), u32> = FxHashMap::default();
        let key = |slot: &Slot, predicate: &Predicate| (slot.field, format!("{predicate:?}"));
        for slot in branches.iter().flat_map(|b| b.slots.iter()) {
            for predicate in &slot.predicates {
                *popularity.entry(key(slot, predicate)).or_default() += 1;
            }
        }
        // Ties go to the deeper field: top-level fields are the envelope (`source`,
        // `detail-type`, `account`...), which most events a rule set sees share.
        let cost = |slot: &Slot| -> (u64, std::cmp::Reverse<usize>) {
            let shared = slot
                .predicates
                .iter()
                .map(|p| u64::from(popularity[&key(slot, p)]) + anchor_weight(p))
                .sum();
            (shared, std::cmp::Reverse(depths[slot.field as usize]))
        };

        let mut indexes: Vec<FieldIndex> = (0..n_fields).map(|_| FieldIndex::default()).collect();
        let mut always = Vec::new();
        let mut indexed_fields = Vec::new();
        let mut settled = Vec::with_capacity(branches.len());
        for (branch_idx, branch) in branches.iter().enumerate() {
            let branch_id = branch_idx as BranchId;
            match branch
                .slots
                .iter()
                .filter(|slot| slot.indexable())
                .min_by_key(|slot| cost(slot))
            {
                Some(anchor) => {
                    indexed_fields.push(anchor.field);
                    for predicate in &anchor.predicates {
                        indexes[anchor.field as usize].insert(predicate, branch_id);
                    }
                    settled.push(
                        branch.slots.len() == 1
                            && anchor.predicates.iter().all(FieldIndex::answers_exactly),
                    );
                }
                None => {
                    always.push(branch_id);
                    settled.push(false);
                }
            }
        }
        for (branch, settled) in branches.iter_mut().zip(settled) {
            branch.settled_by_anchor = settled;
        }
        // Wanted paths come after the patterns' fields, whose ids (and so the matching of
        // patterns) they leave as they are; a path a pattern names shares its field.
        let wanted: Box<[u32]> = wanted
            .iter()
            .map(|path| trie.insert(path, &mut n_fields))
            .collect();
        indexes.resize_with(n_fields as usize, FieldIndex::default);
        indexes.iter_mut().for_each(FieldIndex::finish);
        indexed_fields.sort_unstable();
        indexed_fields.dedup();
        Matcher {
            ids,
            trie,
            n_fields: n_fields as usize,
            branches,
            indexes,
            indexed_fields: indexed_fields.into(),
            always,
            wanted,
        }
    }

    /// Number of patterns.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The id a pattern was added under.
    pub fn id(&self, pattern_idx: usize) -> &T {
        &self.ids[pattern_idx]
    }

    /// The ids of the patterns `event` (JSON text) matches, in the order they were added.
    /// Convenient, but allocates a [`Scratch`]; hot loops use [`Matcher::matches_with`].
    pub fn matches(&self, event: &str) -> Result<Vec<&T>, EventError> {
        let mut scratch = Scratch::default();
        let mut found = Vec::new();
        self.matches_with(event, &mut scratch, &mut found)?;
        Ok(found.into_iter().map(|idx| &self.ids[idx]).collect())
    }

    /// Writes to `found` (cleared first) the indices of the patterns `event` matches, in
    /// ascending order; no allocation once `scratch` has grown to the workload.
    pub fn matches_with(
        &self,
        event: &str,
        scratch: &mut Scratch,
        found: &mut Vec<usize>,
    ) -> Result<(), EventError> {
        let mut values: Vec<FieldValue<'_>> = recycle(std::mem::take(&mut scratch.values));
        let result = self.run(event, scratch, &mut values, found);
        scratch.values = recycle(values);
        result
    }

    /// As [`Matcher::matches_with`], and keeps the values the pass read: those of the
    /// fields registered with [`MatcherBuilder::want`] (and of the patterns' own fields),
    /// borrowed from `event`, until the [`Captures`] is dropped and hands its memory back
    /// to `scratch`.
    pub fn capture<'s, 'a>(
        &'s self,
        event: &'a str,
        scratch: &'s mut Scratch,
        found: &mut Vec<usize>,
    ) -> Result<Captures<'s, 'a>, EventError> {
        let mut values: Vec<FieldValue<'a>> = recycle(std::mem::take(&mut scratch.values));
        match self.run(event, scratch, &mut values, found) {
            Ok(()) => Ok(Captures {
                wanted: &self.wanted,
                values,
                scratch,
            }),
            Err(error) => {
                scratch.values = recycle(values);
                Err(error)
            }
        }
    }

    /// Flattens `event` into `values` (empty) and writes the matching patterns to `found`.
    fn run<'a>(
        &self,
        event: &'a str,
        scratch: &mut Scratch,
        values: &mut Vec<FieldValue<'a>>,
        found: &mut Vec<usize>,
    ) -> Result<(), EventError> {
        found.clear();
        scratch.prepare(self.n_fields, self.branches.len(), self.ids.len());
        let epoch = scratch.epoch;
        scratch.trails.clear();
        {
            let mut sink = Sink::new(
                values,
                &mut scratch.trails,
                &mut scratch.heads,
                &mut scratch.trail_stack,
                epoch,
            );
            flatten::flatten(&self.trie, event, &mut sink)?;
        }
        let values: &[FieldValue<'a>] = values;
        self.collect_candidates(values, scratch);
        let candidates = std::mem::take(&mut scratch.candidates);
        for &branch_id in &candidates {
            let branch = &self.branches[branch_id as usize];
            let pattern = branch.pattern as usize;
            if scratch.pattern_seen[pattern] == epoch {
                continue;
            }
            let view = EventView {
                values,
                trails: &scratch.trails,
                heads: &scratch.heads,
                epoch,
            };
            scratch.chosen.clear();
            if branch.settled_by_anchor || view.satisfies(&branch.slots, &mut scratch.chosen) {
                scratch.pattern_seen[pattern] = epoch;
                found.push(pattern);
            }
        }
        scratch.candidates = candidates;
        found.sort_unstable();
        Ok(())
    }

    fn collect_candidates(&self, values: &[FieldValue<'_>], scratch: &mut Scratch) {
        let Scratch {
            candidates,
            branch_seen,
            heads,
            epoch,
            ..
        } = scratch;
        let epoch = *epoch;
        candidates.clear();
        let mut add = |branches: &[BranchId]| {
            for &branch in branches {
                let seen = &mut branch_seen[branch as usize];
                if *seen != epoch {
                    *seen = epoch;
                    candidates.push(branch);
                }
            }
        };
        add(&self.always);
        for &field in &self.indexed_fields {
            let (stamp, mut value_idx) = heads[field as usize];
            if stamp != epoch {
                continue;
            }
            let index = &self.indexes[field as usize];
            while value_idx != NONE {
                let value = &values[value_idx as usize];
                index.candidates(&value.scalar, &mut add);
                value_idx = value.next;
            }
        }
    }
}

/// How poor a predicate is as an anchor, beyond how many branches share it: `exists` is
/// satisfied by any value, ranges and networks by many.
fn anchor_weight(predicate: &Predicate) -> u64 {
    match predicate {
        Predicate::Exact(_) | Predicate::EqualsIgnoreCase(_) => 0,
        Predicate::Prefix(_)
        | Predicate::Suffix(_)
        | Predicate::PrefixIgnoreCase(_)
        | Predicate::SuffixIgnoreCase(_) => 1,
        Predicate::Wildcard(_) => 2,
        Predicate::Numeric(_) | Predicate::Cidr(_) => 4,
        Predicate::Exists | Predicate::AnythingBut(_) => 1_000_000,
    }
}

/// The flattened event, as verification sees it.
struct EventView<'v, 'a> {
    values: &'v [FieldValue<'a>],
    trails: &'v [TrailStep],
    heads: &'v [(u32, u32)],
    epoch: u32,
}

impl EventView<'_, '_> {
    fn first_value(&self, field: u32) -> u32 {
        match self.heads[field as usize] {
            (stamp, head) if stamp == self.epoch => head,
            _ => NONE,
        }
    }

    fn trail(&self, value_idx: u32) -> &[TrailStep] {
        let value = &self.values[value_idx as usize];
        let start = value.trail_start as usize;
        &self.trails[start..start + value.trail_len as usize]
    }

    /// Whether values can be chosen for `slots` (one each, array-consistent with each other
    /// and with `chosen`).
    fn satisfies(&self, slots: &[Slot], chosen: &mut Vec<u32>) -> bool {
        let Some((slot, rest)) = slots.split_first() else {
            return true;
        };
        let mut present = false;
        let mut value_idx = self.first_value(slot.field);
        while value_idx != NONE {
            let value = &self.values[value_idx as usize];
            if chosen
                .iter()
                .all(|&other| consistent(self.trail(value_idx), self.trail(other)))
            {
                present = true;
                if slot.predicates.iter().any(|p| p.matches(&value.scalar)) {
                    if rest.is_empty() {
                        return true;
                    }
                    chosen.push(value_idx);
                    if self.satisfies(rest, chosen) {
                        return true;
                    }
                    chosen.pop();
                }
            }
            value_idx = value.next;
        }
        // `exists: false`: AWS counts a field as present only when it sits in the array
        // elements the leaves before it (in path order) were matched in. Surprising, since
        // renaming a key can change the result, but it is what AWS does.
        !present && slot.absent_ok && self.satisfies(rest, chosen)
    }
}

/// Two values can come from one event "instance" unless they sit in different elements of
/// the same array.
fn consistent(a: &[TrailStep], b: &[TrailStep]) -> bool {
    for (step_a, step_b) in a.iter().zip(b) {
        if step_a.0 != step_b.0 {
            // Different arrays: the paths have parted, so no array above is shared.
            return true;
        }
        if step_a.1 != step_b.1 {
            return false;
        }
    }
    true
}

/// Per-thread working memory for [`Matcher::matches_with`], reused across events.
#[derive(Debug, Default)]
pub struct Scratch {
    epoch: u32,
    heads: Vec<(u32, u32)>,
    branch_seen: Vec<u32>,
    pattern_seen: Vec<u32>,
    candidates: Vec<BranchId>,
    values: Vec<FieldValue<'static>>,
    trails: Vec<TrailStep>,
    trail_stack: Vec<TrailStep>,
    chosen: Vec<u32>,
}

impl Scratch {
    /// Sizes the stamp tables for a matcher and starts a new epoch, so that nothing needs
    /// clearing between events.
    fn prepare(&mut self, n_fields: usize, n_branches: usize, n_patterns: usize) {
        if self.epoch == u32::MAX {
            *self = Scratch::default();
        }
        self.epoch += 1;
        if self.heads.len() < n_fields {
            self.heads.resize(n_fields, (0, NONE));
        }
        for (table, len) in [
            (&mut self.branch_seen, n_branches),
            (&mut self.pattern_seen, n_patterns),
        ] {
            if table.len() < len {
                table.resize(len, 0);
            }
        }
        self.trail_stack.clear();
    }
}

/// The values one matching pass read, borrowed from the event text (see [`Matcher::capture`]).
/// Dropping it gives its memory back to the [`Scratch`].
#[derive(Debug)]
pub struct Captures<'s, 'a> {
    wanted: &'s [u32],
    values: Vec<FieldValue<'a>>,
    scratch: &'s mut Scratch,
}

impl<'a> Captures<'_, 'a> {
    /// The leaf values the event holds at `field`, last first: arrays are looked through
    /// (every element's value counts, as in EventBridge), objects are no values, `null` is
    /// one. None when the event lacks the field.
    pub fn values(&self, field: Field) -> impl Iterator<Item = &Scalar<'a>> + '_ {
        self.entries(field).map(|value| &value.scalar)
    }

    /// As [`Captures::values`], but only the values in no array: the field's own value,
    /// once for every time the event gives its key (twice for a key repeated in one
    /// object). A field whose parent is an array, or which holds one, has none.
    pub fn values_outside_arrays(&self, field: Field) -> impl Iterator<Item = &Scalar<'a>> + '_ {
        self.entries(field)
            .filter(|value| value.trail_len == 0)
            .map(|value| &value.scalar)
    }

    fn entries(&self, field: Field) -> impl Iterator<Item = &FieldValue<'a>> + '_ {
        let field = self.wanted[field.0 as usize];
        let mut value_idx = match self.scratch.heads[field as usize] {
            (stamp, head) if stamp == self.scratch.epoch => head,
            _ => NONE,
        };
        std::iter::from_fn(move || {
            let value = self.values.get(value_idx as usize)?;
            value_idx = value.next;
            Some(value)
        })
    }
}

impl Drop for Captures<'_, '_> {
    fn drop(&mut self) {
        self.scratch.values = recycle(std::mem::take(&mut self.values));
    }
}

/// Reuses a vector's allocation for values borrowing from another event. The vector is
/// emptied first, so no value outlives its event; the in-place `collect` keeps the buffer.
fn recycle<'b>(mut values: Vec<FieldValue<'_>>) -> Vec<FieldValue<'b>> {
    values.clear();
    values
        .into_iter()
        .map(|_| unreachable!("the vector is empty"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn texts<'c>(captures: &'c Captures<'_, '_>, field: Field) -> Vec<&'c Scalar<'c>> {
        let mut values: Vec<_> = captures.values(field).collect();
        values.reverse();
        values
    }

    #[test]
    fn wanted_fields_are_captured_in_the_matching_pass() {
        let mut builder = MatcherBuilder::default();
        builder.add(
            "a",
            Pattern::parse(r#"{"detail": {"eventName": ["MeterUsage"]}}"#).expect("valid"),
        );
        let arn = builder.want("detail.userIdentity.arn");
        let name = builder.want("detail.eventName");
        let status = builder.want("detail.results.status");
        let missing = builder.want("detail.nothing");
        let object = builder.want("detail.userIdentity");
        assert_eq!(
            builder.want("detail.eventName"),
            name,
            "one handle per path"
        );
        let matcher = builder.build();
        let mut scratch = Scratch::default();
        let mut found = Vec::new();
        let event = r#"{"detail": {"eventName": "MeterUsage", "userIdentity": {"arn": "r\"x"},
            "results": [{"status": "A"}, {"status": null}, {"status": 5}], "x": [1, 2]}}"#;
        {
            let captures = matcher
                .capture(event, &mut scratch, &mut found)
                .expect("valid event");
            assert_eq!(
                texts(&captures, arn),
                [&Scalar::Str(Cow::Owned("r\"x".into()))]
            );
            assert_eq!(
                texts(&captures, name),
                [&Scalar::Str(Cow::Borrowed("MeterUsage"))]
            );
            assert_eq!(
                texts(&captures, status),
                [
                    &Scalar::Str(Cow::Borrowed("A")),
                    &Scalar::Null,
                    &Scalar::Num(5.0)
                ]
            );
            assert!(texts(&captures, missing).is_empty());
            assert!(texts(&captures, object).is_empty(), "objects are no values");
        }
        assert_eq!(found, [0]);
        // The scratch space serves the next event, and stale values are not seen.
        let captures = matcher
            .capture(r#"{"detail": {}}"#, &mut scratch, &mut found)
            .expect("valid event");
        assert!(texts(&captures, name).is_empty());
        drop(captures);
        assert!(found.is_empty());
        assert!(matcher.capture("[1]", &mut scratch, &mut found).is_err());
    }

    #[test]
    fn values_outside_arrays_are_the_fields_own() {
        let mut builder = MatcherBuilder::<()>::default();
        let account = builder.want("account");
        let id = builder.want("detail.eventID");
        let matcher = builder.build();
        let mut scratch = Scratch::default();
        let mut found = Vec::new();
        let mut own = |event: &'static str, field| {
            let captures = matcher
                .capture(event, &mut scratch, &mut found)
                .expect("valid event");
            captures
                .values_outside_arrays(field)
                .cloned()
                .collect::<Vec<Scalar<'static>>>()
        };
        let text = |t: &'static str| Scalar::Str(Cow::Borrowed(t));
        assert_eq!(own(r#"{"account": "1"}"#, account), [text("1")]);
        assert!(own(r#"{"account": ["1"]}"#, account).is_empty());
        assert!(own(r#"{"detail": [{"eventID": "e"}]}"#, id).is_empty());
        assert_eq!(own(r#"{"detail": {"eventID": "e"}}"#, id), [text("e")]);
        assert_eq!(
            own(r#"{"account": "1", "account": null}"#, account).len(),
            2,
            "a repeated key gives each of its values"
        );
    }

    #[test]
    fn wanted_fields_leave_matching_as_it_was() {
        let pattern = r#"{"a": [{"exists": false}], "b": [{"prefix": "x"}]}"#;
        let mut plain = MatcherBuilder::default();
        plain.add(0, Pattern::parse(pattern).expect("valid"));
        let mut wanting = MatcherBuilder::default();
        wanting.add(0, Pattern::parse(pattern).expect("valid"));
        wanting.want("a.c");
        wanting.want("b");
        let (plain, wanting) = (plain.build(), wanting.build());
        for event in [
            r#"{"b": "xy"}"#,
            r#"{"a": {"c": 1}, "b": "xy"}"#,
            r#"{"a": 1, "b": "xy"}"#,
            r#"{"b": "y"}"#,
        ] {
            assert_eq!(
                plain.matches(event).ok(),
                wanting.matches(event).ok(),
                "{event}"
            );
        }
    }
}
