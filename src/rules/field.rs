//! Dotted field paths (`detail.userIdentity.arn`) and the values an event holds at them.
//!
//! Paths read events the way EventBridge patterns do: arrays are looked through (every
//! element is visited), and a key that itself contains dots (`{"a.b": 1}`) is found by the
//! path `a.b` as well as a nested `{"a": {"b": 1}}`.

use serde_json::Value;
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

    /// Every scalar (or `null`, or empty object) value at this path, looking through arrays.
    pub fn values<'v>(&self, event: &'v Value) -> Vec<&'v Value> {
        let mut found = Vec::new();
        collect(event, &self.segments, &mut found);
        found
    }

    /// Every value at this path without looking through a final array: for `for_each`, which
    /// wants the array itself. Arrays on the way are still looked through.
    pub fn containers<'v>(&self, event: &'v Value) -> Vec<&'v Value> {
        let mut found = Vec::new();
        collect_containers(event, &self.segments, &mut found);
        found
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn collect<'v>(value: &'v Value, segments: &[String], found: &mut Vec<&'v Value>) {
    match value {
        Value::Array(elements) => {
            for element in elements {
                collect(element, segments, found);
            }
        }
        Value::Object(fields) if !segments.is_empty() => {
            for_each_key_split(fields, segments, |child, rest| collect(child, rest, found));
        }
        _ if segments.is_empty() => found.push(value),
        _ => {}
    }
}

fn collect_containers<'v>(value: &'v Value, segments: &[String], found: &mut Vec<&'v Value>) {
    if segments.is_empty() {
        found.push(value);
        return;
    }
    match value {
        Value::Array(elements) => {
            for element in elements {
                collect_containers(element, segments, found);
            }
        }
        Value::Object(fields) => for_each_key_split(fields, segments, |child, rest| {
            collect_containers(child, rest, found)
        }),
        _ => {}
    }
}

/// Calls `visit` for each way the leading segments name a key of `fields`: `a`, then any
/// key with dots in it (`a.b`) that spells the next few segments.
fn for_each_key_split<'v, F>(
    fields: &'v serde_json::Map<String, Value>,
    segments: &[String],
    mut visit: F,
) where
    F: FnMut(&'v Value, &[String]),
{
    let Some(first) = segments.first() else {
        return;
    };
    if let Some(child) = fields.get(first) {
        visit(child, &segments[1..]);
    }
    // Keys with dots are rare: look for them without building joined strings.
    for (key, child) in fields {
        if !key.contains('.') {
            continue;
        }
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

/// A value as text for comparisons with strings: strings as they are, numbers and booleans
/// as JSON writes them; `null`, arrays and objects have none.
pub fn as_text(value: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match value {
        Value::String(text) => Some(text.as_str().into()),
        Value::Number(number) => Some(number.to_string().into()),
        Value::Bool(flag) => Some(flag.to_string().into()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
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
