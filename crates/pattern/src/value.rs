//! Leaf values: what an event field holds, and what a pattern compares it with.

use std::borrow::Cow;

/// A leaf value read from an event. Strings borrow from the event text unless JSON escapes
/// forced a copy.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Str(Cow<'a, str>),
    Num(f64),
    Bool(bool),
    Null,
}

/// An exact value in a pattern (`["a", 5, true, null]`).
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(Box<str>),
    Num(f64),
    Bool(bool),
    Null,
}

impl Literal {
    /// The literal for a JSON scalar; `None` for arrays and objects.
    pub(crate) fn from_json(value: &serde_json::Value) -> Option<Literal> {
        use serde_json::Value;
        Some(match value {
            Value::String(text) => Literal::Str(text.as_str().into()),
            Value::Number(number) => Literal::Num(number.as_f64()?),
            Value::Bool(flag) => Literal::Bool(*flag),
            Value::Null => Literal::Null,
            Value::Array(_) | Value::Object(_) => return None,
        })
    }

    /// Exact equality as AWS defines it: same type, numbers compared by value (`300` equals
    /// `300.0`), strings byte for byte (`null` is not `""`).
    pub fn matches(&self, value: &Scalar<'_>) -> bool {
        match (self, value) {
            (Literal::Str(a), Scalar::Str(b)) => **a == **b,
            (Literal::Num(a), Scalar::Num(b)) => a == b,
            (Literal::Bool(a), Scalar::Bool(b)) => a == b,
            (Literal::Null, Scalar::Null) => true,
            _ => false,
        }
    }
}

/// The key under which a number is indexed: equal values share a key (`-0.0` is `0.0`).
pub(crate) fn number_key(n: f64) -> u64 {
    if n == 0.0 { 0 } else { n.to_bits() }
}
