//! Dotted field paths (`detail.userIdentity.arn`) and the values an event holds at them.
//!
//! Paths read events the way EventBridge patterns do: arrays are looked through (every
//! element is visited), and a key that itself contains dots (`{"a.b": 1}`) is found by the
//! path `a.b` as well as a nested `{"a": {"b": 1}}`.
//!
//! A leaf (only serde_json): `rules` reads conditions, `for_each` and matched values through
//! it, `alert::content` the CloudTrail record, `state` group keys.

use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// A dotted path into an event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath {
    text: String,
    segments: Vec<String>,
}

impl FieldPath {
    /// A path of non-empty dot-separated segments.
    pub fn parse(text: &str) -> Result<FieldPath, String> {
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return Err(format!(
                "`{text}` is not a field path: expected names separated by single dots, e.g. `detail.errorCode`"
            ));
        }
        Ok(FieldPath {
            text: text.to_owned(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Every scalar (or `null`, or object) value at this path, looking through arrays.
    pub fn values<'v, T: Tree>(&self, event: &'v T) -> Vec<&'v T> {
        let mut found = Vec::new();
        collect(event, &self.segments, &mut found);
        found
    }

    /// Every value at this path without looking through a final array: for `for_each`, which
    /// wants the array itself. Arrays on the way are still looked through.
    pub fn containers<'v, T: Tree>(&self, event: &'v T) -> Vec<&'v T> {
        let mut found = Vec::new();
        collect_containers(event, &self.segments, &mut found);
        found
    }
}

/// A JSON value that paths read: a whole event's [`Value`], or the borrowed parts of it an
/// alert reads (`rules`' view `Node`).
pub trait Tree: Sized {
    /// An array's elements; `None` for anything else.
    fn elements(&self) -> Option<&[Self]>;
    /// An object's value at `key` (the last, if the key is repeated); `None` for anything else.
    fn member(&self, key: &str) -> Option<&Self>;
    /// An object's keys and values; empty for anything else.
    fn entries(&self) -> impl Iterator<Item = (&str, &Self)>;
    /// The entries whose key has a dot in it.
    fn dotted_entries(&self) -> impl Iterator<Item = (&str, &Self)> {
        self.entries().filter(|(key, _)| key.contains('.'))
    }
    fn as_str(&self) -> Option<&str>;
    /// Text for comparisons with strings: strings as they are, numbers and booleans as JSON
    /// writes them; `null`, arrays and objects have none.
    fn as_text(&self) -> Option<Cow<'_, str>>;
    fn to_value(&self) -> Value;
}

impl Tree for Value {
    fn elements(&self) -> Option<&[Value]> {
        self.as_array().map(Vec::as_slice)
    }

    fn member(&self, key: &str) -> Option<&Value> {
        self.as_object()?.get(key)
    }

    fn entries(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.as_object()
            .into_iter()
            .flatten()
            .map(|(key, value)| (key.as_str(), value))
    }

    fn as_str(&self) -> Option<&str> {
        self.as_str()
    }

    fn as_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::String(text) => Some(text.as_str().into()),
            Value::Number(number) => Some(number.to_string().into()),
            Value::Bool(flag) => Some(flag.to_string().into()),
            Value::Null | Value::Array(_) | Value::Object(_) => None,
        }
    }

    fn to_value(&self) -> Value {
        self.clone()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn collect<'v, T: Tree>(value: &'v T, segments: &[String], found: &mut Vec<&'v T>) {
    if let Some(elements) = value.elements() {
        for element in elements {
            collect(element, segments, found);
        }
    } else if segments.is_empty() {
        found.push(value);
    } else {
        // A scalar has no members: nothing is visited.
        for_each_key_split(value, segments, |child, rest| collect(child, rest, found));
    }
}

fn collect_containers<'v, T: Tree>(value: &'v T, segments: &[String], found: &mut Vec<&'v T>) {
    if segments.is_empty() {
        found.push(value);
    } else if let Some(elements) = value.elements() {
        for element in elements {
            collect_containers(element, segments, found);
        }
    } else {
        for_each_key_split(value, segments, |child, rest| {
            collect_containers(child, rest, found)
        });
    }
}

/// Calls `visit` for each way the leading segments name a key of the object `fields`: `a`,
/// then any key with dots in it (`a.b`) that spells the next few segments. Anything but an
/// object has no keys.
fn for_each_key_split<'v, T: Tree, F>(fields: &'v T, segments: &[String], mut visit: F)
where
    F: FnMut(&'v T, &[String]),
{
    let Some(first) = segments.first() else {
        return;
    };
    if let Some(child) = fields.member(first) {
        visit(child, &segments[1..]);
    }
    // Keys with dots are rare: look for them without building joined strings.
    for (key, child) in fields.dotted_entries() {
        let mut parts = key.split('.');
        let mut n_parts = 0;
        let spelled = parts.by_ref().zip(segments).all(|(part, segment)| {
            n_parts += 1;
            part == segment
        });
        if spelled && parts.next().is_none() && n_parts > 1 {
            visit(child, &segments[n_parts..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(path: &str, event: &Value) -> Vec<Value> {
        FieldPath::parse(path)
            .expect("test paths are valid")
            .values(event)
            .into_iter()
            .cloned()
            .collect()
    }

    #[test]
    fn arrays_are_looked_through() {
        let event = json!({"detail": {"results": [{"status": "Success"}, {"status": "CustomerNotSubscribed"}]}});
        assert_eq!(
            values("detail.results.status", &event),
            vec![json!("Success"), json!("CustomerNotSubscribed")]
        );
    }

    #[test]
    fn dotted_keys_are_found_too() {
        let event = json!({"a.b": 1, "a": {"b": 2}});
        assert_eq!(values("a.b", &event), vec![json!(2), json!(1)]);
    }

    #[test]
    fn missing_fields_have_no_values() {
        assert!(values("detail.errorCode", &json!({"detail": {}})).is_empty());
    }

    #[test]
    fn empty_segments_are_rejected() {
        assert!(FieldPath::parse("detail..errorCode").is_err());
        assert!(FieldPath::parse("").is_err());
    }
}
