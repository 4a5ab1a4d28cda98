//! Leaf values: what an event field holds, and what a pattern compares it with.

use std::borrow::Cow;

/// A leaf value read from an event. Strings borrow from the event text unless JSON escapes
/// forced a copy.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Str(Cow<'a, str>),
    Num(f64),
    /// An integer that no double stands for exactly (the double's shortest decimal form is
    /// another number, as for most integers beyond 2^53): AWS compares it by its text, so it
    /// equals only the same integer and is no number to `numeric`.
    BigInt(i128),
    Bool(bool),
    Null,
}

/// An exact value in a pattern (`["a", 5, true, null]`).
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(Box<str>),
    Num(f64),
    /// As [`Scalar::BigInt`]: matches that integer only.
    BigInt(i128),
    Bool(bool),
    Null,
}

impl Scalar<'_> {
    /// The scalar the matcher reads for a parsed JSON value (numbers as [`Matcher`] reads
    /// their text); `None` for arrays and objects, which are no leaf values.
    ///
    /// [`Matcher`]: crate::Matcher
    pub fn from_json(value: &serde_json::Value) -> Option<Scalar<'_>> {
        use serde_json::Value;
        Some(match value {
            Value::String(text) => Scalar::Str(Cow::Borrowed(text)),
            Value::Number(number) => match number.as_i64() {
                Some(integer) => Scalar::integer(integer.into()),
                None => match number.as_u64() {
                    Some(integer) => Scalar::integer(integer.into()),
                    None => Scalar::Num(number.as_f64()?),
                },
            },
            Value::Bool(flag) => Scalar::Bool(*flag),
            Value::Null => Scalar::Null,
            Value::Array(_) | Value::Object(_) => return None,
        })
    }

    /// A JSON integer, as AWS reads it.
    pub(crate) fn integer(value: i128) -> Scalar<'static> {
        match exact_double(value) {
            Some(double) => Scalar::Num(double),
            None => Scalar::BigInt(value),
        }
    }
}

/// The double an integer is compared as, if it is exactly the integer as AWS judges it: the
/// double's shortest decimal form must be the integer itself. All integers up to 2^53 pass;
/// most beyond (account numbers, nanosecond clocks) do not, and AWS falls back to comparing
/// their text, which tells apart integers that round to the same double.
pub(crate) fn exact_double(value: i128) -> Option<f64> {
    const EXACT: i128 = 1 << 53;
    let double = value as f64;
    if (-EXACT..=EXACT).contains(&value) {
        return Some(double);
    }
    // `Display` writes a double's shortest round-trip digits, as Java's
    // `BigDecimal.valueOf(double)` does, and with no exponent.
    (double.to_string().parse::<i128>() == Ok(value)).then_some(double)
}

impl Literal {
    /// The literal for a JSON scalar; `None` for arrays and objects.
    pub(crate) fn from_json(value: &serde_json::Value) -> Option<Literal> {
        use serde_json::Value;
        Some(match value {
            Value::String(text) => Literal::Str(text.as_str().into()),
            Value::Number(number) => match number.as_i64().map(i128::from) {
                Some(integer) => Literal::integer(integer),
                None => match number.as_u64() {
                    Some(integer) => Literal::integer(integer.into()),
                    // A fraction or exponent, or an integer beyond 64 bits: serde_json keeps
                    // no text for it, so it is compared as the nearest double.
                    None => Literal::Num(number.as_f64()?),
                },
            },
            Value::Bool(flag) => Literal::Bool(*flag),
            Value::Null => Literal::Null,
            Value::Array(_) | Value::Object(_) => return None,
        })
    }

    fn integer(value: i128) -> Literal {
        match exact_double(value) {
            Some(double) => Literal::Num(double),
            None => Literal::BigInt(value),
        }
    }

    /// Exact equality as AWS defines it: same type, numbers compared by value (`300` equals
    /// `300.0`), strings byte for byte (`null` is not `""`).
    pub fn matches(&self, value: &Scalar<'_>) -> bool {
        match (self, value) {
            (Literal::Str(a), Scalar::Str(b)) => **a == **b,
            (Literal::Num(a), Scalar::Num(b)) => a == b,
            (Literal::BigInt(a), Scalar::BigInt(b)) => a == b,
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
