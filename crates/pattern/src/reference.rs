//! A naive evaluator, written for obviousness rather than speed: the oracle that property
//! tests hold the compiled [`crate::Matcher`] to.
//!
//! Definition: an event matches a pattern when some *instance* of the event matches, where
//! an instance keeps exactly one element of every array (recursively; an empty array
//! leaves its key out). A leaf matches an instance when a value at its path satisfies one
//! of its predicates; `exists: false` holds when the path has no value anywhere in the event.

use crate::pattern::{Conjunction, Leaf, Pattern};
use crate::value::Scalar;
use serde_json::Value;
use std::borrow::Cow;

/// Whether `event` matches `pattern`, by brute force.
pub fn matches(pattern: &Pattern, event: &Value) -> bool {
    let all_paths = leaves_of(event);
    instances(event).iter().any(|instance| {
        let values = leaves_of(instance);
        conjunction_matches(pattern.root(), &values, &all_paths)
    })
}

fn conjunction_matches(
    conjunction: &Conjunction,
    values: &[(String, Value)],
    all: &[(String, Value)],
) -> bool {
    conjunction
        .leaves
        .iter()
        .all(|leaf| leaf_matches(leaf, values, all))
        && conjunction.ors.iter().all(|group| {
            group
                .iter()
                .any(|alternative| conjunction_matches(alternative, values, all))
        })
}

fn leaf_matches(leaf: &Leaf, values: &[(String, Value)], all: &[(String, Value)]) -> bool {
    let present_anywhere = all.iter().any(|(path, _)| **path == *leaf.path);
    if leaf.absent_ok && !present_anywhere {
        return true;
    }
    values
        .iter()
        .filter(|(path, _)| **path == *leaf.path)
        .any(|(_, value)| {
            let scalar = to_scalar(value);
            leaf.predicates
                .iter()
                .any(|predicate| predicate.matches(&scalar))
        })
}

fn to_scalar(value: &Value) -> Scalar<'_> {
    match value {
        Value::String(text) => Scalar::Str(Cow::Borrowed(text)),
        Value::Number(n) => Scalar::Num(n.as_f64().unwrap_or(f64::NAN)),
        Value::Bool(b) => Scalar::Bool(*b),
        _ => Scalar::Null,
    }
}

/// Every (dotted path, leaf value) of a value; arrays contribute each element.
fn leaves_of(value: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    walk(value, String::new(), &mut out);
    out
}

fn walk(value: &Value, path: String, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(fields) => {
            for (key, child) in fields {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk(child, child_path, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| walk(item, path.clone(), out)),
        scalar => out.push((path, scalar.clone())),
    }
}

/// All array-free instances of a value.
fn instances(value: &Value) -> Vec<Value> {
    match value {
        Value::Object(fields) => {
            let mut partial = vec![serde_json::Map::new()];
            for (key, child) in fields {
                let child_instances = match child {
                    Value::Array(items) => items.iter().flat_map(instances).collect(),
                    other => instances(other),
                };
                if child_instances.is_empty() {
                    continue; // an empty array: the key is absent in every instance
                }
                partial = partial
                    .into_iter()
                    .flat_map(|map| {
                        child_instances.iter().map(move |instance| {
                            let mut map = map.clone();
                            map.insert(key.clone(), instance.clone());
                            map
                        })
                    })
                    .collect();
            }
            partial.into_iter().map(Value::Object).collect()
        }
        Value::Array(items) => items.iter().flat_map(instances).collect(),
        scalar => vec![scalar.clone()],
    }
}
