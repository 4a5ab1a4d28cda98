//! The parts of an event that alerts read, parsed from its text without building the rest.
//!
//! An alert reads a handful of fields (its content, `matched` values, group keys, `for_each`
//! arrays); an event carries hundreds of bytes of request and response besides. The view is
//! parsed only once some rule's pattern and conditions held (conditions read the values the
//! matching pass captured). A [`FieldTree`] of the wanted paths steers one serde pass that
//! builds only those parts of the value and skips everything else, so the cost of a raising
//! event stays close to one scan of its text.
//! The result is an ordinary [`Value`], so [`FieldPath::values`] reads it unchanged.

use super::field::FieldPath;
use rustc_hash::FxHashMap;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// The wanted paths as a tree of keys.
#[derive(Debug, Default, Clone)]
pub struct FieldTree {
    children: FxHashMap<String, FieldTree>,
    /// A wanted path ends here: keep the whole value below.
    whole: bool,
}

impl FieldTree {
    pub fn add(&mut self, path: &FieldPath) {
        let mut node = self;
        for segment in path.as_str().split('.') {
            node = node.children.entry(segment.to_owned()).or_default();
        }
        node.whole = true;
    }

    /// The node a key leads to. A key with dots in it (`{"a.b": 1}`) walks several levels,
    /// as [`FieldPath`] lookups do.
    fn child(&self, key: &str) -> Option<&FieldTree> {
        if !key.contains('.') {
            return self.children.get(key);
        }
        let mut node = self;
        for segment in key.split('.') {
            node = node.children.get(segment)?;
        }
        Some(node)
    }

    /// The wanted parts of `json`, or `None` if it is not valid JSON.
    pub fn parse(&self, json: &str) -> Option<Value> {
        let mut deserializer = serde_json::Deserializer::from_str(json);
        let value = Pruned(self).deserialize(&mut deserializer).ok()?;
        deserializer.end().ok()?;
        Some(value)
    }
}

/// Deserializes a value keeping only what `0` wants.
struct Pruned<'t>(&'t FieldTree);

impl<'de> DeserializeSeed<'de> for Pruned<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Pruned<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match self.0.child(&key) {
                Some(node) if node.whole => {
                    kept.insert(key.into_owned(), map.next_value()?);
                }
                Some(node) => {
                    kept.insert(key.into_owned(), map.next_value_seed(Pruned(node))?);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(kept))
    }

    // Arrays are looked through, as by patterns and field paths.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut elements = Vec::new();
        while let Some(element) = seq.next_element_seed(Pruned(self.0))? {
            elements.push(element);
        }
        Ok(Value::Array(elements))
    }

    fn visit_str<E>(self, text: &str) -> Result<Value, E> {
        Ok(Value::String(text.to_owned()))
    }

    fn visit_bool<E>(self, flag: bool) -> Result<Value, E> {
        Ok(Value::Bool(flag))
    }

    fn visit_i64<E>(self, number: i64) -> Result<Value, E> {
        Ok(Value::from(number))
    }

    fn visit_u64<E>(self, number: u64) -> Result<Value, E> {
        Ok(Value::from(number))
    }

    fn visit_f64<E>(self, number: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(number).map_or(Value::Null, Value::Number))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// Object keys, borrowed from the text when they hold no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn tree(paths: &[&str]) -> (FieldTree, Vec<FieldPath>) {
        let mut tree = FieldTree::default();
        let paths: Vec<FieldPath> = paths
            .iter()
            .map(|p| FieldPath::parse(p).expect("valid test path"))
            .collect();
        for path in &paths {
            tree.add(path);
        }
        (tree, paths)
    }

    #[test]
    fn keeps_only_wanted_paths() {
        let (tree, _) = tree(&["detail.errorCode", "detail.results"]);
        let event = json!({
            "account": "1",
            "detail": {"errorCode": "X", "big": {"a": [1, 2, 3]}, "results": [{"status": "S"}]}
        });
        assert_eq!(
            tree.parse(&event.to_string()),
            Some(json!({"detail": {"errorCode": "X", "results": [{"status": "S"}]}}))
        );
    }

    #[test]
    fn dotted_keys_and_arrays_are_followed() {
        let (tree, _) = tree(&["a.b.c"]);
        let event = json!({"a.b": {"c": 1, "d": 2}, "a": [{"b": {"c": 3, "e": 4}}]});
        assert_eq!(
            tree.parse(&event.to_string()),
            Some(json!({"a.b": {"c": 1}, "a": [{"b": {"c": 3}}]}))
        );
    }

    #[test]
    fn invalid_json_is_none() {
        let (tree, _) = tree(&["a"]);
        assert_eq!(tree.parse("{\"a\": 1"), None);
        assert_eq!(tree.parse("{} x"), None);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let key = prop::sample::select(vec!["a", "b", "a.b", "c"]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            "[a-z]{0,3}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 4, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..4).prop_map(
                    |entries| Value::Object(
                        entries
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect()
                    )
                ),
            ]
        })
    }

    proptest! {
        /// Every wanted path reads the same values from the pruned value as from the whole.
        #[test]
        fn pruned_values_equal_full_values(event in json_value()) {
            let (tree, paths) = tree(&["a", "a.b", "b.c", "a.b.c", "c"]);
            let pruned = tree.parse(&event.to_string()).expect("valid JSON");
            for path in &paths {
                prop_assert_eq!(path.values(&pruned), path.values(&event), "{}", path);
            }
        }
    }
}
