//! The parts of an event that alerts read, parsed from its text without building the rest.
//!
//! An alert reads a handful of fields (its content, `matched` values, group keys, `for_each`
//! arrays); an event carries hundreds of bytes of request and response besides. The view is
//! parsed only once some rule's pattern and conditions held (conditions read the values the
//! matching pass captured). A [`FieldTree`] of the wanted paths steers one serde pass that
//! builds only those parts of the value and skips everything else, so the cost of a raising
//! event stays close to one scan of its text.
//! The result is a [`Node`] tree borrowed from the text, which [`FieldPath::values`] reads
//! as it reads a whole [`Value`].

use crate::field::{FieldPath, Tree};
use rustc_hash::FxHashMap;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Serialize, Serializer};
use serde_json::Value;
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

    /// The node a key leads to. A key with dots in it (`{"a.b": 1}`, `dotted`) walks several
    /// levels, as [`FieldPath`] lookups do.
    fn child(&self, key: &str, dotted: bool) -> Option<&FieldTree> {
        if !dotted {
            return self.children.get(key);
        }
        let mut node = self;
        for segment in key.split('.') {
            node = node.children.get(segment)?;
        }
        Some(node)
    }

    /// The wanted parts of `json`, or `None` if it is not valid JSON.
    pub fn parse<'t>(&self, json: &'t str) -> Option<Node<'t>> {
        let mut deserializer = serde_json::Deserializer::from_str(json);
        let node = Pruned(Some(self)).deserialize(&mut deserializer).ok()?;
        deserializer.end().ok()?;
        Some(node)
    }
}

/// A JSON value borrowed from an event's text: strings without escapes are slices of it, and
/// objects are lists of entries, neither hashed nor copied. Parsing the wanted parts of an
/// alerting event into `serde_json::Value`s took 40% more instructions (counting their drop),
/// and every lookup in them hashed its key.
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'t> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Cow<'t, str>),
    Array(Vec<Node<'t>>),
    /// Entries in the text's order; a repeated key keeps its first place and its last
    /// value, as in a `serde_json::Map`.
    Object {
        entries: Vec<(Cow<'t, str>, Node<'t>)>,
        /// Whether some key has a dot in it (rare), which a path may spell across levels:
        /// noted once here so that path lookups need not search every key for dots.
        dotted_keys: bool,
    },
}

impl Tree for Node<'_> {
    fn elements(&self) -> Option<&[Self]> {
        match self {
            Node::Array(elements) => Some(elements),
            _ => None,
        }
    }

    fn member(&self, key: &str) -> Option<&Self> {
        self.entries()
            .find_map(|(name, value)| (name == key).then_some(value))
    }

    fn entries(&self) -> impl Iterator<Item = (&str, &Self)> {
        let entries = match self {
            Node::Object { entries, .. } => entries.as_slice(),
            _ => &[],
        };
        entries.iter().map(|(key, value)| (&**key, value))
    }

    fn dotted_entries(&self) -> impl Iterator<Item = (&str, &Self)> {
        let dotted = matches!(
            self,
            Node::Object {
                dotted_keys: true,
                ..
            }
        );
        self.entries()
            .filter(move |(key, _)| dotted && key.contains('.'))
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Node::String(text) => Some(text),
            _ => None,
        }
    }

    fn as_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Node::String(text) => Some(Cow::Borrowed(text)),
            Node::Number(number) => Some(number.to_string().into()),
            Node::Bool(flag) => Some(flag.to_string().into()),
            Node::Null | Node::Array(_) | Node::Object { .. } => None,
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(flag) => Value::Bool(*flag),
            Node::Number(number) => Value::Number(number.clone()),
            Node::String(text) => Value::String(text.to_string()),
            Node::Array(elements) => Value::Array(elements.iter().map(Node::to_value).collect()),
            Node::Object { entries, .. } => Value::Object(
                entries
                    .iter()
                    .map(|(key, value)| (key.to_string(), value.to_value()))
                    .collect(),
            ),
        }
    }
}

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => serializer.serialize_unit(),
            Node::Bool(flag) => serializer.serialize_bool(*flag),
            Node::Number(number) => number.serialize(serializer),
            Node::String(text) => serializer.serialize_str(text),
            Node::Array(elements) => serializer.collect_seq(elements),
            Node::Object { entries, .. } => {
                serializer.collect_map(entries.iter().map(|(key, value)| (key, value)))
            }
        }
    }
}

/// Deserializes a node keeping only what `0` wants (all of it for `None`).
#[derive(Clone, Copy)]
struct Pruned<'f>(Option<&'f FieldTree>);

impl<'de> DeserializeSeed<'de> for Pruned<'_> {
    type Value = Node<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Node<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Pruned<'_> {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut kept: Vec<(Cow<'de, str>, Node<'de>)> = Vec::new();
        let mut dotted_keys = false;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            // Keys are short: a plain loop beats a call to memchr.
            let dotted = key.bytes().any(|b| b == b'.');
            let seed = match self.0.map(|tree| tree.child(&key, dotted)) {
                None => Pruned(None),
                Some(Some(node)) if node.whole => Pruned(None),
                Some(Some(node)) => Pruned(Some(node)),
                Some(None) => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            let value = map.next_value_seed(seed)?;
            match kept.iter_mut().find(|(name, _)| *name == key) {
                Some(entry) => entry.1 = value,
                None => {
                    dotted_keys |= dotted;
                    kept.push((key, value));
                }
            }
        }
        Ok(Node::Object {
            entries: kept,
            dotted_keys,
        })
    }

    // Arrays are looked through, as by patterns and field paths.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut elements = Vec::new();
        while let Some(element) = seq.next_element_seed(self)? {
            elements.push(element);
        }
        Ok(Node::Array(elements))
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Borrowed(text)))
    }

    fn visit_str<E>(self, text: &str) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Owned(text.to_owned())))
    }

    fn visit_bool<E>(self, flag: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(flag))
    }

    fn visit_i64<E>(self, number: i64) -> Result<Node<'de>, E> {
        Ok(Node::Number(number.into()))
    }

    fn visit_u64<E>(self, number: u64) -> Result<Node<'de>, E> {
        Ok(Node::Number(number.into()))
    }

    fn visit_f64<E>(self, number: f64) -> Result<Node<'de>, E> {
        Ok(serde_json::Number::from_f64(number).map_or(Node::Null, Node::Number))
    }

    fn visit_unit<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
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
            tree.parse(&event.to_string()).map(|node| node.to_value()),
            Some(json!({"detail": {"errorCode": "X", "results": [{"status": "S"}]}}))
        );
    }

    #[test]
    fn dotted_keys_and_arrays_are_followed() {
        let (tree, _) = tree(&["a.b.c"]);
        let event = json!({"a.b": {"c": 1, "d": 2}, "a": [{"b": {"c": 3, "e": 4}}]});
        assert_eq!(
            tree.parse(&event.to_string()).map(|node| node.to_value()),
            Some(json!({"a.b": {"c": 1}, "a": [{"b": {"c": 3}}]}))
        );
    }

    #[test]
    fn a_repeated_key_keeps_its_first_place_and_last_value_as_serde_json_does() {
        let (tree, _) = tree(&["a", "b"]);
        let text = r#"{"a": 1, "b": {"x": "\u00e9"}, "a": [3]}"#;
        let whole: Value = serde_json::from_str(text).expect("valid JSON");
        let node = tree.parse(text).expect("valid JSON");
        assert_eq!(node.to_value(), whole);
        assert_eq!(
            serde_json::to_string(&node).expect("a node serializes"),
            whole.to_string()
        );
    }

    #[test]
    fn invalid_json_is_none() {
        let (tree, _) = tree(&["a"]);
        assert_eq!(tree.parse("{\"a\": 1"), None);
        assert_eq!(tree.parse("{} x"), None);
    }

    /// Every node of `node`, itself included.
    fn path_elements<'n>(node: &'n Node<'n>) -> Vec<&'n Node<'n>> {
        let mut all = vec![node];
        for (_, child) in node.entries() {
            all.extend(path_elements(child));
        }
        for child in node.elements().unwrap_or_default() {
            all.extend(path_elements(child));
        }
        all
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let key = prop::sample::select(vec!["a", "b", "a.b", "c"]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            // Quotes, backslashes and control characters are escaped in the text.
            "[a-z\"\\\\\u{1}é]{0,3}".prop_map(Value::from),
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
        fn pruned_values_equal_full_values(event in json_value(), pretty in any::<bool>()) {
            let (tree, paths) = tree(&["a", "a.b", "b.c", "a.b.c", "c"]);
            let text = if pretty {
                serde_json::to_string_pretty(&event).expect("a value serializes")
            } else {
                event.to_string()
            };
            let pruned = tree.parse(&text).expect("valid JSON");
            for path in &paths {
                let read: Vec<Value> = path.values(&pruned).into_iter().map(Tree::to_value).collect();
                let expected: Vec<Value> = path.values(&event).into_iter().cloned().collect();
                prop_assert_eq!(read, expected, "{}", path);
            }
            // Written back, a node is the JSON it was read from (what `for_each` matches).
            for element in path_elements(&pruned) {
                let written = serde_json::to_string(element).expect("a node serializes");
                prop_assert_eq!(written, element.to_value().to_string());
            }
        }
    }
}
