//! `anything-but`: matches every present value except the ones listed.
//!
//! AWS's behaviour, followed here: it never matches a missing field; it does match `null`,
//! and values of another type than the excluded ones (`{"anything-but": "x"}` matches `5`);
//! the text forms (`prefix`, `suffix`, `wildcard`, `equals-ignore-case`) match every
//! non-string value, since only a string can start with, end with or equal text.

use super::{Wildcard, lowercase};
use crate::error::PatternError;
use crate::value::{Literal, Scalar};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum AnythingBut {
    Values(Vec<Literal>),
    Prefixes(Vec<Box<str>>),
    Suffixes(Vec<Box<str>>),
    Wildcards(Vec<Wildcard>),
    /// Stored lowercased.
    EqualsIgnoreCase(Vec<Box<str>>),
}

impl AnythingBut {
    pub fn matches(&self, value: &Scalar<'_>) -> bool {
        if let AnythingBut::Values(excluded) = self {
            return !excluded.iter().any(|literal| literal.matches(value));
        }
        let Scalar::Str(text) = value else {
            return true;
        };
        match self {
            AnythingBut::Values(_) => unreachable!("handled above"),
            AnythingBut::Prefixes(prefixes) => !prefixes.iter().any(|p| text.starts_with(&**p)),
            AnythingBut::Suffixes(suffixes) => !suffixes.iter().any(|s| text.ends_with(&**s)),
            AnythingBut::Wildcards(wildcards) => !wildcards.iter().any(|w| w.matches(text)),
            AnythingBut::EqualsIgnoreCase(excluded) => {
                let folded = lowercase(text);
                !excluded.iter().any(|e| **e == *folded)
            }
        }
    }
}

const NOT_ARRAY_OR_SCALAR: &str =
    "Value of anything-but must be an array or single string/number value.";

const MIXED_TYPES: &str =
    "Inside anything but list, either all values are number or string, mixed type is not supported";

/// Parses the value of an `anything-but` key, with AWS's messages word for word.
pub(crate) fn parse(path: &str, spec: &Value) -> Result<AnythingBut, PatternError> {
    let invalid = |reason: &str| PatternError::invalid(path, reason);
    match spec {
        Value::String(_) | Value::Number(_) => Ok(AnythingBut::Values(
            Literal::from_json(spec).into_iter().collect(),
        )),
        Value::Array(items) => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                match (item, Literal::from_json(item)) {
                    (Value::String(_) | Value::Number(_), Some(literal)) => values.push(literal),
                    _ => {
                        return Err(invalid(
                            "Inside anything but list, start|null|boolean is not supported.",
                        ));
                    }
                }
            }
            let n_strings = values
                .iter()
                .filter(|v| matches!(v, Literal::Str(_)))
                .count();
            // AWS rejects an empty list with the mixed-type message too.
            if values.is_empty() || (n_strings != 0 && n_strings != values.len()) {
                return Err(invalid(MIXED_TYPES));
            }
            Ok(AnythingBut::Values(values))
        }
        Value::Object(fields) => {
            let mut entries = fields.iter();
            let Some((operator, operand)) = entries.next() else {
                return Err(invalid("Anything-But expression name not found"));
            };
            if entries.next().is_some() {
                return Err(invalid("Too many elements in numeric expression"));
            }
            match operator.as_str() {
                "prefix" => Ok(AnythingBut::Prefixes(affixes(path, operand)?)),
                "suffix" => Ok(AnythingBut::Suffixes(affixes(path, operand)?)),
                "wildcard" => {
                    let texts = strings(path, operand, "wildcard match pattern must be a string")?;
                    let wildcards = texts
                        .iter()
                        .map(|text| Wildcard::parse(path, text))
                        .collect::<Result<_, _>>()?;
                    Ok(AnythingBut::Wildcards(wildcards))
                }
                "equals-ignore-case" => {
                    let texts = strings(
                        path,
                        operand,
                        "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.",
                    )?;
                    Ok(AnythingBut::EqualsIgnoreCase(
                        texts.iter().map(|text| lowercase(text).into()).collect(),
                    ))
                }
                other => Err(PatternError::invalid(
                    path,
                    format!("Unsupported anything-but pattern: {other}"),
                )),
            }
        }
        Value::Null | Value::Bool(_) => Err(invalid(NOT_ARRAY_OR_SCALAR)),
    }
}

/// `prefix`/`suffix` operands: a non-empty string or a list of them.
fn affixes(path: &str, operand: &Value) -> Result<Vec<Box<str>>, PatternError> {
    if let Value::Object(_) | Value::Null | Value::Bool(_) = operand {
        // `{"anything-but": {"prefix": {"equals-ignore-case": ...}}}` is not a thing.
        return Err(PatternError::invalid(path, NOT_ARRAY_OR_SCALAR));
    }
    let texts = strings(
        path,
        operand,
        "prefix/suffix match pattern must be a string",
    )?;
    if texts.iter().any(|text| text.is_empty()) {
        return Err(PatternError::invalid(
            path,
            "Null prefix/suffix not allowed",
        ));
    }
    Ok(texts.into_iter().map(Into::into).collect())
}

/// A string, or a list of strings (AWS accepts an empty list, which excludes nothing);
/// anything else fails with `reason`.
fn strings(path: &str, operand: &Value, reason: &str) -> Result<Vec<String>, PatternError> {
    match operand {
        Value::String(text) => Ok(vec![text.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.clone()),
                _ => Err(PatternError::invalid(path, reason)),
            })
            .collect(),
        _ => Err(PatternError::invalid(path, reason)),
    }
}
