//! Pattern text → a checked tree of leaves and `$or` groups, rejecting what AWS rejects.

use crate::error::PatternError;
use crate::op::{self, AnythingBut, Cidr, NumericRange, Predicate, Wildcard, WildcardPattern};
use crate::pattern_json::PatternJson;
use crate::value::Literal;
use serde_json::Value;

/// A valid EventBridge event pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    root: Conjunction,
}

/// Fields that must all match, plus `$or` groups of which one alternative must match.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Conjunction {
    pub(crate) leaves: Vec<Leaf>,
    /// Each group with the position of its `$or` key.
    pub(crate) ors: Vec<(u32, Vec<Conjunction>)>,
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
    /// Where the leaf stands in the pattern text (for `$or` branches: where the `$or` stands),
    /// so that when a path is given twice the later one wins, as in AWS.
    position: u32,
}

/// More `$or` combinations than this in one pattern is refused, as AWS refuses patterns
/// that are too costly; it keeps compile time and memory bounded.
pub const MAX_BRANCHES: usize = 1024;

impl Pattern {
    /// Parses pattern text (JSON). A key given twice is read twice, as AWS reads it: objects
    /// under the same key add up (`{"a": {"b": [1]}, "a": {"c": [2]}}` wants `a.b` and `a.c`),
    /// and of two leaves on one path the later wins.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let tree: PatternJson = serde_json::from_str(text).map_err(|e| PatternError::syntax(&e))?;
        Pattern::from_tree(&tree)
    }

    /// Checks an already-parsed JSON value (which, being a map, has lost any duplicate key;
    /// [`Pattern::parse`] keeps them).
    pub fn from_json(value: &Value) -> Result<Pattern, PatternError> {
        Pattern::from_tree(&PatternJson::from_value(value))
    }

    fn from_tree(tree: &PatternJson) -> Result<Pattern, PatternError> {
        let PatternJson::Object(fields) = tree else {
            return Err(PatternError::invalid("", "Filter is not an object"));
        };
        let pattern = Pattern {
            root: Parser::default().conjunction(fields, "", false)?,
        };
        // Fail now, not when a matcher is built, if the `$or`s multiply out too far.
        pattern.branches()?;
        pattern.check_wildcard_complexity()?;
        Ok(pattern)
    }

    /// AWS refuses a pattern whose wildcards on one field could keep too many matching
    /// states alive at once (see [`op::field_complexity`]); wildcards on a field add up across
    /// `$or` branches, fields are judged apart.
    fn check_wildcard_complexity(&self) -> Result<(), PatternError> {
        let mut by_path: Vec<(&str, Vec<WildcardPattern<'_>>)> = Vec::new();
        let mut anything_but_lists: Vec<(&str, Vec<&str>)> = Vec::new();
        let mut stack = vec![&self.root];
        while let Some(conjunction) = stack.pop() {
            stack.extend(conjunction.ors.iter().flat_map(|(_, group)| group));
            for leaf in &conjunction.leaves {
                for predicate in &leaf.predicates {
                    match predicate {
                        Predicate::Wildcard(wildcard) => {
                            patterns_of(&mut by_path, &leaf.path)
                                .push(WildcardPattern::Plain(wildcard.as_str()));
                        }
                        Predicate::AnythingBut(AnythingBut::Wildcards(wildcards)) => {
                            anything_but_lists.push((
                                &leaf.path,
                                wildcards.iter().map(Wildcard::as_str).collect(),
                            ));
                        }
                        _ => {}
                    }
                }
            }
        }
        for (path, texts) in &anything_but_lists {
            patterns_of(&mut by_path, path).push(WildcardPattern::AnythingBut(texts));
        }
        for (path, patterns) in &by_path {
            if op::field_complexity(patterns) >= op::MAX_COMPLEXITY {
                return Err(PatternError::too_complex(
                    path,
                    "Rule is too complex - try using fewer wildcard characters or fewer repeating \
                     character sequences after a wildcard character",
                ));
            }
        }
        Ok(())
    }

    /// The pattern as alternatives of plain conjunctions (`$or` multiplied out): it matches
    /// when every leaf of some branch does.
    pub fn branches(&self) -> Result<Vec<Vec<&Leaf>>, PatternError> {
        expand(&self.root)
    }
}

fn expand(conjunction: &Conjunction) -> Result<Vec<Vec<&Leaf>>, PatternError> {
    let mut branches: Vec<Vec<(u32, &Leaf)>> = vec![
        conjunction
            .leaves
            .iter()
            .map(|leaf| (leaf.position, leaf))
            .collect(),
    ];
    for (group_position, group) in &conjunction.ors {
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
                // A branch's leaves are written where its `$or` is.
                let tagged = alternative.iter().map(|leaf| (*group_position, *leaf));
                product.push(branch.iter().copied().chain(tagged).collect());
            }
        }
        branches = product;
    }
    Ok(branches.into_iter().map(last_wins).collect())
}

/// One leaf per path: where a path is given twice (`{"a": {"b": [1]}, "a.b": [2]}`, or a key
/// beside an `$or` that its branches also name) the one written later replaces the other,
/// as AWS does. Leaves come out sorted by path, the order AWS evaluates them in (which
/// matters for `exists: false` inside arrays; see [`crate::matcher`]).
fn last_wins(mut leaves: Vec<(u32, &Leaf)>) -> Vec<&Leaf> {
    // Stable: equal positions keep their order, and the last of equals wins below.
    leaves.sort_by(|(pos_a, a), (pos_b, b)| a.path.cmp(&b.path).then(pos_a.cmp(pos_b)));
    let mut out: Vec<&Leaf> = Vec::with_capacity(leaves.len());
    for (_, leaf) in leaves {
        match out.last_mut() {
            Some(previous) if previous.path == leaf.path => *previous = leaf,
            _ => out.push(leaf),
        }
    }
    out
}

fn patterns_of<'v, 'p>(
    by_path: &'v mut Vec<(&'p str, Vec<WildcardPattern<'p>>)>,
    path: &'p str,
) -> &'v mut Vec<WildcardPattern<'p>> {
    let idx = match by_path.iter().position(|(p, _)| *p == path) {
        Some(idx) => idx,
        None => {
            by_path.push((path, Vec::new()));
            by_path.len() - 1
        }
    };
    &mut by_path[idx].1
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Operator names that may not be field names inside `$or` (event-ruler's reserved list).
const RESERVED_IN_OR: &[&str] = &[
    "exactly",
    "equals-ignore-case",
    "prefix",
    "suffix",
    "anything-but",
    "exists",
    "wildcard",
    "numeric",
    "cidr",
    "=",
    "<",
    "<=",
    ">",
    ">=",
];

/// Walks the pattern JSON, numbering leaves in document order.
#[derive(Default)]
struct Parser {
    next_position: u32,
}

impl Parser {
    fn position(&mut self) -> u32 {
        self.next_position += 1;
        self.next_position
    }

    fn conjunction(
        &mut self,
        fields: &[(String, PatternJson)],
        prefix: &str,
        in_or: bool,
    ) -> Result<Conjunction, PatternError> {
        if fields.is_empty() {
            return Err(PatternError::invalid(
                prefix,
                "Empty objects are not allowed",
            ));
        }
        let mut conjunction = Conjunction::default();
        for (key, value) in fields {
            if key == "$or" {
                let position = self.position();
                conjunction
                    .ors
                    .push((position, self.or_group(value, prefix)?));
                continue;
            }
            let path = join(prefix, key);
            if in_or && RESERVED_IN_OR.contains(&key.as_str()) {
                return Err(PatternError::invalid(
                    &path,
                    format!("{key} is Ruler reserved fieldName which cannot be used inside $or."),
                ));
            }
            match value {
                PatternJson::Object(inner) => {
                    let nested = self.conjunction(inner, &path, in_or)?;
                    conjunction.leaves.extend(nested.leaves);
                    conjunction.ors.extend(nested.ors);
                }
                PatternJson::Array(items) => {
                    let position = self.position();
                    conjunction.leaves.push(leaf(path, position, items)?);
                }
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

    /// `"$or": [ {...}, {...} ]`: at least two sub-patterns, each an object.
    fn or_group(
        &mut self,
        value: &PatternJson,
        prefix: &str,
    ) -> Result<Vec<Conjunction>, PatternError> {
        let PatternJson::Array(items) = value else {
            return Err(PatternError::invalid(
                prefix,
                "It must be an Array followed with $or.",
            ));
        };
        let alternatives = items
            .iter()
            .map(|item| match item {
                PatternJson::Object(fields) => self.conjunction(fields, prefix, true),
                _ => Err(PatternError::invalid(
                    prefix,
                    "Only JSON object is allowed in array of $or relationship.",
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if alternatives.len() < 2 {
            return Err(PatternError::invalid(
                prefix,
                "There must have at least 2 Objects in $or relationship.",
            ));
        }
        Ok(alternatives)
    }
}

fn leaf(path: String, position: u32, items: &[PatternJson]) -> Result<Leaf, PatternError> {
    if items.is_empty() {
        return Err(PatternError::invalid(&path, "Empty arrays are not allowed"));
    }
    let mut leaf = Leaf {
        path: path.into(),
        predicates: Vec::new(),
        absent_ok: false,
        position,
    };
    for item in items {
        match item {
            PatternJson::Object(operator) => operator_object(&mut leaf, operator)?,
            PatternJson::Array(_) => {
                return Err(PatternError::invalid(
                    &leaf.path,
                    "Match value must be String, number, true, false, or null",
                ));
            }
            PatternJson::Scalar(scalar) => {
                let literal = Literal::from_json(scalar).expect("a scalar is a literal");
                leaf.predicates.push(Predicate::Exact(literal));
            }
        }
    }
    Ok(leaf)
}

/// The operators a value list may hold as `{"operator": operand}`, for messages that list
/// them (AWS's own error for an unknown one names only the culprit).
pub const OPERATORS: [&str; 8] = [
    "prefix",
    "suffix",
    "equals-ignore-case",
    "wildcard",
    "anything-but",
    "numeric",
    "cidr",
    "exists",
];

/// `{"prefix": "x"}` and friends: exactly one recognised, lowercase operator.
fn operator_object(
    leaf: &mut Leaf,
    operator: &[(String, PatternJson)],
) -> Result<(), PatternError> {
    let path = &*leaf.path;
    let mut entries = operator.iter();
    let Some((name, operand)) = entries.next() else {
        return Err(PatternError::invalid(
            path,
            "Match expression name not found",
        ));
    };
    if entries.next().is_some() {
        // AWS's wording differs by operator (event-ruler reuses a numeric message).
        let reason = match name.as_str() {
            "numeric" | "anything-but" => "Too many elements in numeric expression",
            _ => "Only one key allowed in match expression",
        };
        return Err(PatternError::invalid(path, reason));
    }
    let operand = &operand.to_value();
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
    match operand {
        Value::String(text) => Ok(exact(text.as_str().into())),
        Value::Object(inner) => {
            let capitalized = if name == "prefix" { "Prefix" } else { "Suffix" };
            let mut entries = inner.iter();
            match (entries.next(), entries.next()) {
                (None, _) => Err(PatternError::invalid(
                    path,
                    format!("{capitalized} expression name not found"),
                )),
                (Some((key, value)), None) if key == "equals-ignore-case" => {
                    let text = string(
                        path,
                        value,
                        "equals-ignore-case match pattern must be a string",
                    )?;
                    Ok(ignore_case(op::lowercase(text).into()))
                }
                (Some((key, _)), None) => Err(PatternError::invalid(
                    path,
                    format!("Unsupported {name} pattern: {key}"),
                )),
                (Some(_), Some(_)) => Err(PatternError::invalid(
                    path,
                    "Only one key allowed in match expression",
                )),
            }
        }
        _ => Err(PatternError::invalid(
            path,
            format!("{name} match pattern must be a string"),
        )),
    }
}

fn string<'v>(path: &str, operand: &'v Value, reason: &str) -> Result<&'v str, PatternError> {
    match operand {
        Value::String(text) => Ok(text),
        _ => Err(PatternError::invalid(path, reason)),
    }
}
