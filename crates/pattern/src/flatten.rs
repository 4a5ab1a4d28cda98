//! Event text → the leaf values of the fields some pattern mentions, each with its array
//! trail; everything else is skipped by the JSON parser without building values.
//!
//! Array consistency: every array instance met while walking gets a number, and each value
//! records the (array, element index) pairs above it. Two values may be used together only
//! if they agree on the element index of every array they share.

use crate::error::EventError;
use crate::value::Scalar;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// The paths patterns mention, as a tree of key segments (split at `.`).
#[derive(Debug, Default)]
pub(crate) struct PathTrie {
    nodes: Vec<TrieNode>,
}

#[derive(Debug, Default)]
struct TrieNode {
    children: Children,
    field: Option<u32>,
}

/// A node's children. Event keys are looked up once per key of every object walked, and
/// most miss, so names are bucketed by length: a key no name is as long as is rejected with
/// one load, the others are compared with the few names of their length.
#[derive(Debug, Default)]
struct Children {
    /// (name, child node), sorted by name length.
    names: Vec<(Box<str>, u32)>,
    /// The names `n` bytes long are `names[starts[n]..starts[n + 1]]`.
    starts: Vec<u32>,
    /// Bit `n` set when some name is `n` bytes long; bit 63 stands for every longer length.
    lengths: u64,
}

impl Children {
    fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    #[inline]
    fn get(&self, key: &str) -> Option<u32> {
        let len = key.len();
        let [start, end] = *self.starts.get(len..len + 2)? else {
            return None;
        };
        let key = key.as_bytes();
        self.names[start as usize..end as usize]
            .iter()
            // The first byte rules out most same-length names without a call to memcmp.
            .find(|(name, _)| name.as_bytes().first() == key.first() && name.as_bytes() == key)
            .map(|&(_, child)| child)
    }

    /// Whether a dotted event key (`a.b`) may lead to a child: its first segment would be a
    /// child's name, so a dot would follow at the length of some name.
    fn may_lead_through_dots(&self, key: &[u8]) -> bool {
        let mut lengths = self.lengths;
        while lengths != 0 {
            let len = lengths.trailing_zeros() as usize;
            lengths &= lengths - 1;
            if len == 63 {
                return key.get(63..).is_some_and(|rest| rest.contains(&b'.'));
            }
            match key.get(len) {
                Some(b'.') => return true,
                Some(_) => {}
                // Lengths come in increasing order: no longer name can be followed by a dot.
                None => return false,
            }
        }
        false
    }

    fn insert(&mut self, key: &str, child: u32) {
        self.names.push((key.into(), child));
        self.names.sort_by_key(|(name, _)| name.len());
        self.lengths |= 1 << key.len().min(63);
        let longest = self.names.last().map_or(0, |(name, _)| name.len());
        self.starts = (0..=longest + 1)
            .map(|len| self.names.partition_point(|(name, _)| name.len() < len) as u32)
            .collect();
    }
}

/// An array element an event value sits in: (array instance, element index).
pub(crate) type TrailStep = (u32, u32);

/// One leaf value of a wanted field.
#[derive(Debug)]
pub(crate) struct FieldValue<'a> {
    pub(crate) scalar: Scalar<'a>,
    /// Range in the scratch trail arena.
    pub(crate) trail_start: u32,
    pub(crate) trail_len: u32,
    /// Next value of the same field ([`NONE`] ends the list).
    pub(crate) next: u32,
}

pub(crate) const NONE: u32 = u32::MAX;

impl PathTrie {
    pub(crate) fn new() -> Self {
        PathTrie {
            nodes: vec![TrieNode::default()],
        }
    }

    /// The field id of a dotted path, created on first use.
    pub(crate) fn insert(&mut self, path: &str, next_field: &mut u32) -> u32 {
        let mut node = 0usize;
        for segment in path.split('.') {
            node = match self.nodes[node].children.get(segment) {
                Some(child) => child as usize,
                None => {
                    let child = self.nodes.len();
                    self.nodes.push(TrieNode::default());
                    self.nodes[node].children.insert(segment, child as u32);
                    child
                }
            };
        }
        *self.nodes[node].field.get_or_insert_with(|| {
            *next_field += 1;
            *next_field - 1
        })
    }

    /// Follows an event key (which may itself contain dots) from `node`.
    fn child(&self, node: u32, key: &str) -> Option<u32> {
        let children = &self.nodes[node as usize].children;
        // Children are single segments, so a key that names one directly has no dot.
        if let Some(child) = children.get(key) {
            return Some(child);
        }
        if !children.may_lead_through_dots(key.as_bytes()) {
            return None;
        }
        let mut node = node;
        for segment in key.split('.') {
            node = self.nodes[node as usize].children.get(segment)?;
        }
        Some(node)
    }
}

/// Where flattening writes; reused across events by [`crate::Scratch`].
pub(crate) struct Sink<'s, 'a> {
    pub(crate) values: &'s mut Vec<FieldValue<'a>>,
    pub(crate) trails: &'s mut Vec<TrailStep>,
    /// Per field: (epoch, first value), so stale heads need no clearing.
    pub(crate) heads: &'s mut [(u32, u32)],
    trail_stack: &'s mut Vec<TrailStep>,
    pub(crate) epoch: u32,
    n_arrays: u32,
}

impl<'s, 'a> Sink<'s, 'a> {
    pub(crate) fn new(
        values: &'s mut Vec<FieldValue<'a>>,
        trails: &'s mut Vec<TrailStep>,
        heads: &'s mut [(u32, u32)],
        trail_stack: &'s mut Vec<TrailStep>,
        epoch: u32,
    ) -> Self {
        Sink {
            values,
            trails,
            heads,
            trail_stack,
            epoch,
            n_arrays: 0,
        }
    }

    fn push(&mut self, field: u32, scalar: Scalar<'a>) {
        let head = &mut self.heads[field as usize];
        let next = if head.0 == self.epoch { head.1 } else { NONE };
        let idx = self.values.len() as u32;
        *head = (self.epoch, idx);
        let trail_start = self.trails.len() as u32;
        // Most values sit in no array; skip even the capacity check for them.
        if !self.trail_stack.is_empty() {
            self.trails.extend_from_slice(self.trail_stack);
        }
        self.values.push(FieldValue {
            scalar,
            trail_start,
            trail_len: self.trail_stack.len() as u32,
            next,
        });
    }
}

/// Walks `event` (a JSON object) and records the wanted leaves into `sink`.
pub(crate) fn flatten<'a>(
    trie: &PathTrie,
    event: &'a str,
    sink: &mut Sink<'_, 'a>,
) -> Result<(), EventError> {
    if !event.trim_start().starts_with('{') {
        // Still report bad JSON as such.
        serde_json::from_str::<IgnoredAny>(event)?;
        return Err(EventError::NotAnObject);
    }
    let mut deserializer = serde_json::Deserializer::from_str(event);
    de::Deserializer::deserialize_any(
        &mut deserializer,
        NodeVisitor {
            trie,
            node: 0,
            sink,
        },
    )?;
    deserializer.end()?;
    Ok(())
}

struct NodeVisitor<'t, 'k, 's, 'a> {
    trie: &'t PathTrie,
    node: u32,
    sink: &'k mut Sink<'s, 'a>,
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for NodeVisitor<'_, '_, '_, 'a> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'a> NodeVisitor<'_, '_, '_, 'a> {
    fn leaf(self, scalar: Scalar<'a>) {
        if let Some(field) = self.trie.nodes[self.node as usize].field {
            self.sink.push(field, scalar);
        }
    }
}

impl<'de: 'a, 'a> Visitor<'de> for NodeVisitor<'_, '_, '_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        self.leaf(Scalar::Str(Cow::Borrowed(v)));
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        // Only strings with escapes get here: copy them.
        self.leaf(Scalar::Str(Cow::Owned(v.to_owned())));
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.leaf(Scalar::integer(v.into()));
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.leaf(Scalar::integer(v.into()));
        Ok(())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.leaf(Scalar::Num(v));
        Ok(())
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.leaf(Scalar::Bool(v));
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.leaf(Scalar::Null);
        Ok(())
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        let NodeVisitor { trie, node, sink } = self;
        let has_children = !trie.nodes[node as usize].children.is_empty();
        while let Some(child) = map.next_key_seed(KeySeed {
            trie,
            node,
            has_children,
        })? {
            match child {
                Some(child) => map.next_value_seed(NodeVisitor {
                    trie,
                    node: child,
                    sink: &mut *sink,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        let NodeVisitor { trie, node, sink } = self;
        let array = sink.n_arrays;
        sink.n_arrays += 1;
        let mut element_idx = 0;
        loop {
            sink.trail_stack.push((array, element_idx));
            let more = seq.next_element_seed(NodeVisitor {
                trie,
                node,
                sink: &mut *sink,
            })?;
            sink.trail_stack.pop();
            if more.is_none() {
                return Ok(());
            }
            element_idx += 1;
        }
    }
}

/// Reads an object key and resolves it to a trie child without allocating.
struct KeySeed<'t> {
    trie: &'t PathTrie,
    node: u32,
    has_children: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<u32>;
    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Option<u32>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<u32>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<u32>, E> {
        Ok(if self.has_children {
            self.trie.child(self.node, key)
        } else {
            None
        })
    }
}
