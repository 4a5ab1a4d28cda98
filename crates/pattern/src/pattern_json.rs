//! Pattern text as a JSON tree whose objects keep every entry in the order written,
//! duplicate keys included. event-ruler reads a pattern as a token stream, so
//! `{"a": {"b": [1]}, "a": {"c": [2]}}` asks for both `a.b` and `a.c`, and
//! `{"prefix": "x", "prefix": "y"}` has two keys; a map would keep only the last of each.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PatternJson {
    Object(Vec<(String, PatternJson)>),
    Array(Vec<PatternJson>),
    /// A string, number, boolean or null.
    Scalar(Value),
}

impl PatternJson {
    /// The tree of an already-parsed value (which can hold no duplicate key).
    pub(crate) fn from_value(value: &Value) -> PatternJson {
        match value {
            Value::Object(fields) => PatternJson::Object(
                fields
                    .iter()
                    .map(|(key, value)| (key.clone(), PatternJson::from_value(value)))
                    .collect(),
            ),
            Value::Array(items) => {
                PatternJson::Array(items.iter().map(PatternJson::from_value).collect())
            }
            scalar => PatternJson::Scalar(scalar.clone()),
        }
    }

    /// As a `serde_json` value, for operator operands (`{"numeric": [...]}`); a key given
    /// twice there keeps its last value.
    pub(crate) fn to_value(&self) -> Value {
        match self {
            PatternJson::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(key, value)| (key.clone(), value.to_value()))
                    .collect::<Map<_, _>>(),
            ),
            PatternJson::Array(items) => {
                Value::Array(items.iter().map(PatternJson::to_value).collect())
            }
            PatternJson::Scalar(scalar) => scalar.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for PatternJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = PatternJson;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<PatternJson, E> {
        Ok(PatternJson::Scalar(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<PatternJson, E> {
        Ok(PatternJson::Scalar(Value::Number(v.into())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<PatternJson, E> {
        Ok(PatternJson::Scalar(Value::Number(v.into())))
    }

    fn visit_f64<E>(self, v: f64) -> Result<PatternJson, E> {
        // As `serde_json::Value` does; JSON text holds no NaN or infinity.
        Ok(PatternJson::Scalar(
            Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }

    fn visit_str<E>(self, v: &str) -> Result<PatternJson, E> {
        Ok(PatternJson::Scalar(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<PatternJson, E> {
        Ok(PatternJson::Scalar(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<PatternJson, E> {
        Ok(PatternJson::Scalar(Value::Null))
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<PatternJson, S::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(PatternJson::Array(items))
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<PatternJson, M::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, PatternJson>()? {
            entries.push(entry);
        }
        Ok(PatternJson::Object(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_kept_in_order() {
        let tree: PatternJson =
            serde_json::from_str(r#"{"a": {"b": [1]}, "a": [2.5, "x", null, true]}"#)
                .expect("valid JSON");
        let PatternJson::Object(entries) = &tree else {
            panic!("an object: {tree:?}");
        };
        let keys: Vec<&str> = entries.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(keys, ["a", "a"]);
        assert_eq!(
            tree.to_value(),
            serde_json::json!({"a": [2.5, "x", null, true]})
        );
    }

    #[test]
    fn values_convert_both_ways() {
        let value =
            serde_json::json!({"a": [{"numeric": [">", -1, "<=", 1e3]}], "b": {"c": ["d"]}});
        assert_eq!(PatternJson::from_value(&value).to_value(), value);
    }
}
