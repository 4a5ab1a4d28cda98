//! Pattern text → a checked tree of leaves and `$or` groups, rejecting what AWS rejects.

use crate::error::PatternError;
use crate::op::{self, Cidr, NumericRange, Predicate, Wildcard};
use crate::value::Literal;
use serde_json::{Map, Value};

/// A valid EventBridge event pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    root: Conjunction,
}

/// Fields that must all match, plus `$or` groups of which one alternative must match.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Conjunction {
    pub(crate) leaves: Vec<Leaf>,
    pub(crate) ors: Vec<Vec<Conjunction>>,
}

/// One field of a pattern: its dotted path and the alternatives its value may match.
#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    /// Keys joined by `.`: EventBridge treats `{"a.b": [..]}` and `{"a": {"b": [..]}}` alike,
    /// on both the pattern and the event side.
    pub path: Box<str>,
    /// The value must match at least one of these.
    pub predicates: Vec<Predicate>,
    /// `{"exists": false}` was among the alternatives: a missing field matches too.
    pub absent_ok: bool,
}

/// More `$or` combinations than this in one pattern is refused, as AWS refuses patterns
/// that are too costly; it keeps compile time and memory bounded.
pub const MAX_BRANCHES: usize = 1024;

impl Pattern {
    /// Parses pattern text (JSON). With duplicate keys the last one wins, as in AWS.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let value: Value = serde_json::from_str(text).map_err(|e| PatternError::syntax(&e))?;
        Pattern::from_json(&value)
    }

    /// Checks an already-parsed JSON value.
    pub fn from_json(value: &Value) -> Result<Pattern, PatternError> {
        let Value::Object(fields) = value else {
            return Err(PatternError::invalid("", "Filter is not an object"));
        };
        let pattern = Pattern {
            root: conjunction(fields, "")?,
        };
        // Fail now, not when a matcher is built, if the `$or`s multiply out too far.
        pattern.branches()?;
        Ok(pattern)
    }

    /// The pattern as alternatives of plain conjunctions (`$or` multiplied out): it matches
    /// when every leaf of some branch does.
    pub fn branches(&self) -> Result<Vec<Vec<&Leaf>>, PatternError> {
        expand(&self.root)
    }

    pub(crate) fn root(&self) -> &Conjunction {
        &self.root
    }
}

fn expand(conjunction: &Conjunction) -> Result<Vec<Vec<&Leaf>>, PatternError> {
    let mut branches = vec![conjunction.leaves.iter().collect::<Vec<_>>()];
    for group in &conjunction.ors {
        let mut alternatives = Vec::new();
        for alternative in group {
            alternatives.extend(expand(alternative)?);
        }
        let mut product = Vec::with_capacity(branches.len() * alternatives.len());
        for branch in &branches {
            for alternative in &alternatives {
                if product.len() == MAX_BRANCHES {
                    return Err(PatternError::too_complex(
                        "",
                        format!(
                            "Rule is too complex - $or expands to more than {MAX_BRANCHES} combinations"
                        ),
                    ));
                }
                product.push(branch.iter().chain(alternative).copied().collect());
            }
        }
        branches = product;
    }
    Ok(branches)
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn conjunction(fields: &Map<String, Value>, prefix: &str) -> Result<Conjunction, PatternError> {
    let mut conjunction = Conjunction::default();
    for (key, value) in fields {
        if key == "$or" {
            conjunction.ors.push(or_group(value, prefix)?);
            continue;
        }
        let path = join(prefix, key);
        match value {
            Value::Object(inner) => {
                let nested = conjunction_of_object(inner, &path)?;
                conjunction.leaves.extend(nested.leaves);
                conjunction.ors.extend(nested.ors);
            }
            Value::Array(items) => conjunction.leaves.push(leaf(path, items)?),
            _ => {
                return Err(PatternError::invalid(
                    &path,
                    format!("\"{key}\" must be an object or an array"),
                ));
            }
        }
    }
    Ok(conjunction)
}

fn conjunction_of_object(
    fields: &Map<String, Value>,
    path: &str,
) -> Result<Conjunction, PatternError> {
    if fields.is_empty() {
        return Err(PatternError::invalid(path, "Empty objects are not allowed"));
    }
    conjunction(fields, path)
}

/// `"$or": [ {...}, {...} ]`: at least two sub-patterns, each an object.
fn or_group(value: &Value, prefix: &str) -> Result<Vec<Conjunction>, PatternError> {
    let Value::Array(items) = value else {
        return Err(PatternError::invalid(
            prefix,
            "Or relationship must be an array",
        ));
    };
    if items.len() < 2 {
        return Err(PatternError::invalid(
            prefix,
            "There must be at least 2 elements in an Or relationship",
        ));
    }
    items
        .iter()
        .map(|item| match item {
            Value::Object(fields) => conjunction_of_object(fields, prefix),
            _ => Err(PatternError::invalid(
                prefix,
                "Or relationship must contain objects",
            )),
        })
        .collect()
}

fn leaf(path: String, items: &[Value]) -> Result<Leaf, PatternError> {
    if items.is_empty() {
        return Err(PatternError::invalid(&path, "Empty arrays are not allowed"));
    }
    let mut leaf = Leaf {
        path: path.into(),
        predicates: Vec::new(),
        absent_ok: false,
    };
    for item in items {
        match item {
            Value::Object(operator) => operator_object(&mut leaf, operator)?,
            Value::Array(_) => {
                return Err(PatternError::invalid(
                    &leaf.path,
                    "Match value must be String, number, true, false, or null",
                ));
            }
            scalar => {
                let literal = Literal::from_json(scalar).expect("only scalars reach this arm");
                leaf.predicates.push(Predicate::Exact(literal));
            }
        }
    }
    Ok(leaf)
}

/// `{"prefix": "x"}` and friends: exactly one recognised, lowercase operator.
fn operator_object(leaf: &mut Leaf, operator: &Map<String, Value>) -> Result<(), PatternError> {
    let path = &*leaf.path;
    let mut entries = operator.iter();
    let (Some((name, operand)), None) = (entries.next(), entries.next()) else {
        return Err(PatternError::invalid(
            path,
            "Only one key allowed in match expression",
        ));
    };
    let predicate = match name.as_str() {
        "prefix" => affix(
            path,
            "prefix",
            operand,
            Predicate::Prefix,
            Predicate::PrefixIgnoreCase,
        )?,
        "suffix" => affix(
            path,
            "suffix",
            operand,
            Predicate::Suffix,
            Predicate::SuffixIgnoreCase,
        )?,
        "equals-ignore-case" => {
            let text = string(
                path,
                operand,
                "equals-ignore-case match pattern must be a string",
            )?;
            Predicate::EqualsIgnoreCase(op::lowercase(text).into())
        }
        "wildcard" => {
            let text = string(path, operand, "wildcard match pattern must be a string")?;
            Predicate::Wildcard(Wildcard::parse(path, text)?)
        }
        "anything-but" => Predicate::AnythingBut(op::parse_anything_but(path, operand)?),
        "numeric" => Predicate::Numeric(NumericRange::parse(path, operand)?),
        // AWS words a non-string CIDR as a prefix problem (recorded behaviour).
        "cidr" => Predicate::Cidr(Cidr::parse(
            path,
            string(path, operand, "prefix match pattern must be a string")?,
        )?),
        "exists" => match operand {
            Value::Bool(true) => Predicate::Exists,
            Value::Bool(false) => {
                leaf.absent_ok = true;
                return Ok(());
            }
            _ => {
                return Err(PatternError::invalid(
                    path,
                    "exists match pattern must be either true or false.",
                ));
            }
        },
        other => {
            return Err(PatternError::invalid(
                path,
                format!("Unrecognized match type {other}"),
            ));
        }
    };
    leaf.predicates.push(predicate);
    Ok(())
}

/// `prefix`/`suffix`: a string, or `{"equals-ignore-case": string}`.
fn affix(
    path: &str,
    name: &str,
    operand: &Value,
    exact: fn(Box<str>) -> Predicate,
    ignore_case: fn(Box<str>) -> Predicate,
) -> Result<Predicate, PatternError> {
    let reason = format!("{name} match pattern must be a string");
    match operand {
        Value::String(text) => Ok(exact(text.as_str().into())),
        Value::Object(inner) => {
            let mut entries = inner.iter();
            match (entries.next(), entries.next()) {
                (Some((key, Value::String(text))), None) if key == "equals-ignore-case" => {
                    Ok(ignore_case(op::lowercase(text).into()))
                }
                _ => Err(PatternError::invalid(path, reason)),
            }
        }
        _ => Err(PatternError::invalid(path, reason)),
    }
}

fn string<'v>(path: &str, operand: &'v Value, reason: &str) -> Result<&'v str, PatternError> {
    match operand {
        Value::String(text) => Ok(text),
        _ => Err(PatternError::invalid(path, reason)),
    }
}
