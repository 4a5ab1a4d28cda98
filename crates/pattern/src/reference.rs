//! A naive evaluator, written for obviousness rather than speed: the oracle that property
//! tests hold the compiled [`crate::Matcher`] to. It shares the operators' value tests with
//! the matcher, and nothing else: its own flattening (of a parsed `serde_json::Value`), its
//! own array-consistency test, no index, exhaustive search.
//!
//! Definition (AWS's): a pattern matches when one of its `$or`-free branches does. A branch's
//! leaves are taken in path order; each takes a value at its path that satisfies one of its
//! predicates and sits in the same element of every array it shares with the values taken
//! before it. A leaf with `exists: false` may instead take nothing, when no value at its path
//! is consistent with the values taken before it.

use crate::pattern::{Leaf, Pattern};
use crate::pattern_json::PatternJson;
use crate::value::Scalar;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A leaf value of the event: its dotted path, and the element index of every array above it.
struct Flat<'v> {
    path: String,
    value: &'v Value,
    arrays: BTreeMap<usize, usize>,
}

/// Whether `event` matches `pattern`, by brute force.
pub fn matches(pattern: &Pattern, event: &Value) -> bool {
    let mut flat = Vec::new();
    let mut n_arrays = 0;
    walk(
        event,
        String::new(),
        &BTreeMap::new(),
        &mut n_arrays,
        &mut flat,
    );
    matches_flat(pattern, &flat)
}

/// Whether the event `text` matches `pattern`, by brute force; `None` when it is not JSON.
/// Unlike a `Value`, which keeps a repeated key's last value, the text gives every value of a
/// key repeated in one object, each in no array (as event-ruler's streaming parser reads it).
pub fn matches_text(pattern: &Pattern, text: &str) -> Option<bool> {
    let tree: PatternJson = serde_json::from_str(text).ok()?;
    let mut flat = Vec::new();
    walk_tree(&tree, String::new(), &BTreeMap::new(), &mut 0, &mut flat);
    Some(matches_flat(pattern, &flat))
}

fn matches_flat(pattern: &Pattern, flat: &[Flat<'_>]) -> bool {
    let Ok(branches) = pattern.branches() else {
        return false;
    };
    branches
        .iter()
        .any(|leaves| assign(leaves, flat, &mut Vec::new()))
}

fn assign<'f>(leaves: &[&Leaf], flat: &'f [Flat<'_>], taken: &mut Vec<&'f Flat<'f>>) -> bool {
    let Some((leaf, rest)) = leaves.split_first() else {
        return true;
    };
    let candidates: Vec<&Flat<'_>> = flat
        .iter()
        .filter(|f| *f.path == *leaf.path && taken.iter().all(|t| compatible(t, f)))
        .collect();
    if candidates.is_empty() && leaf.absent_ok && assign(rest, flat, taken) {
        return true;
    }
    for candidate in candidates {
        let scalar = to_scalar(candidate.value);
        if leaf.predicates.iter().any(|p| p.matches(&scalar)) {
            taken.push(candidate);
            let ok = assign(rest, flat, taken);
            taken.pop();
            if ok {
                return true;
            }
        }
    }
    false
}

/// Two values can be taken together unless some array holds them in different elements.
fn compatible(a: &Flat<'_>, b: &Flat<'_>) -> bool {
    a.arrays
        .iter()
        .all(|(array, idx)| b.arrays.get(array).is_none_or(|other| other == idx))
}

fn to_scalar(value: &Value) -> Scalar<'_> {
    match value {
        Value::String(text) => Scalar::Str(Cow::Borrowed(text)),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(integer), _) => Scalar::integer(integer.into()),
            (None, Some(integer)) => Scalar::integer(integer.into()),
            (None, None) => Scalar::Num(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::Bool(b) => Scalar::Bool(*b),
        _ => Scalar::Null,
    }
}

fn walk<'v>(
    value: &'v Value,
    path: String,
    arrays: &BTreeMap<usize, usize>,
    n_arrays: &mut usize,
    out: &mut Vec<Flat<'v>>,
) {
    match value {
        Value::Object(fields) => {
            for (key, child) in fields {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk(child, child_path, arrays, n_arrays, out);
            }
        }
        Value::Array(items) => {
            let array = *n_arrays;
            *n_arrays += 1;
            for (idx, item) in items.iter().enumerate() {
                let mut inner = arrays.clone();
                inner.insert(array, idx);
                walk(item, path.clone(), &inner, n_arrays, out);
            }
        }
        scalar => out.push(Flat {
            path,
            value: scalar,
            arrays: arrays.clone(),
        }),
    }
}

/// [`walk`] over a tree that keeps repeated keys.
fn walk_tree<'v>(
    tree: &'v PatternJson,
    path: String,
    arrays: &BTreeMap<usize, usize>,
    n_arrays: &mut usize,
    out: &mut Vec<Flat<'v>>,
) {
    match tree {
        PatternJson::Object(entries) => {
            for (key, child) in entries {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk_tree(child, child_path, arrays, n_arrays, out);
            }
        }
        PatternJson::Array(items) => {
            let array = *n_arrays;
            *n_arrays += 1;
            for (idx, item) in items.iter().enumerate() {
                let mut inner = arrays.clone();
                inner.insert(array, idx);
                walk_tree(item, path.clone(), &inner, n_arrays, out);
            }
        }
        PatternJson::Scalar(scalar) => out.push(Flat {
            path,
            value: scalar,
            arrays: arrays.clone(),
        }),
    }
}
