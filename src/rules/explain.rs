//! Why a rule did or did not fire for an event: every pattern field with the event's values
//! and the alternative that accepted each (or none), every `$or` branch, every `where`
//! condition, every `for_each` element.
//!
//! Each field is judged by the pattern engine itself (a one-field pattern against a one-field
//! event), so the explanation cannot disagree with matching about a single value. The
//! verdict is the real matcher's; when every field passes alone but the rule still does not
//! match, the values sat in different elements of an array, which the explanation says.

use super::condition::{Condition, EventTime, Parsed, Test, parse_timestamp};
use super::{Rule, RuleSet};
use crate::envelope::Event;
use crate::field::FieldPath;
use meterwatch_pattern::{EventError, MatcherBuilder, Pattern};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// One rule's account of one event.
#[derive(Debug, Serialize)]
pub struct Explanation {
    pub rule: String,
    pub severity: String,
    pub file: String,
    pub enabled: bool,
    /// The rule's EventBridge pattern matched (as the real matcher judges it).
    pub pattern_matched: bool,
    /// Every field held on its own, yet the pattern did not match: the values came from
    /// different elements of one array.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub array_elements_differ: bool,
    pub pattern: Vec<Node>,
    /// Each `where` entry, judged even when the pattern did not match (to show what would).
    pub conditions: Vec<ConditionTrace>,
    pub for_each: Vec<ElementTrace>,
    /// How many alerts the rule raises for the event.
    pub alerts: usize,
    /// For an absence rule: the event is one of its heartbeats.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub heartbeat: bool,
}

/// A pattern field, or an `$or` of alternatives.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Node {
    Field(FieldTrace),
    Or {
        accepted: bool,
        branches: Vec<Branch>,
    },
}

/// One `$or` alternative: all its nodes must be accepted.
#[derive(Debug, Serialize)]
pub struct Branch {
    pub accepted: bool,
    pub nodes: Vec<Node>,
}

/// One pattern field.
#[derive(Debug, Serialize)]
pub struct FieldTrace {
    pub path: String,
    /// What the pattern accepts (its value list).
    pub wants: Value,
    pub accepted: bool,
    /// Each value the event holds at the path (several when inside arrays), with the
    /// alternative that accepted it, if any.
    pub values: Vec<ValueTrace>,
}

#[derive(Debug, Serialize)]
pub struct ValueTrace {
    pub value: Value,
    pub accepted_by: Option<Value>,
}

#[derive(Debug, Serialize)]
pub struct ConditionTrace {
    /// `field = ..., test = ...`, or `any` for a group.
    pub condition: String,
    pub holds: bool,
    /// The values the condition read.
    pub values: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub any: Vec<ConditionTrace>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub all: Vec<ConditionTrace>,
    /// Why values were of no use to the test, when that is not plain (a time test's value
    /// that is no timestamp).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ElementTrace {
    pub path: String,
    pub accepted: bool,
}

impl RuleSet {
    /// Explains every rule (or the one with id `only`) for `event`.
    pub fn explain(
        &self,
        event: &Event,
        only: Option<&str>,
    ) -> Result<Vec<Explanation>, EventError> {
        let findings = self.findings(event)?;
        let value = event.value()?;
        // Conditions are judged on the parsed event, by the same tests as `findings` runs on
        // the matcher's captured values, for every rule (enabled or not, matched or not).
        let subject = Parsed {
            value,
            text: event.json(),
            event_time: EventTime::new(event.event_time()),
        };
        let mut explanations = Vec::new();
        for rule in &self.rules {
            if only.is_some_and(|id| id != &*rule.id) {
                continue;
            }
            let pattern_matched = single_matches(&rule.pattern_json, event.json());
            let pattern = nodes(&rule.pattern_json, "", value);
            let all_fields_pass = pattern.iter().all(Node::accepted);
            explanations.push(Explanation {
                rule: rule.id.to_string(),
                severity: rule.severity.to_string(),
                file: rule.file.display().to_string(),
                enabled: rule.enabled,
                pattern_matched,
                array_elements_differ: all_fields_pass && !pattern_matched,
                pattern,
                conditions: rule.conditions.iter().map(|c| trace(c, &subject)).collect(),
                for_each: elements(rule, value),
                alerts: findings
                    .iter()
                    .filter(|f| f.alert.rule == rule.id && !f.is_heartbeat())
                    .count(),
                heartbeat: findings
                    .iter()
                    .any(|f| f.alert.rule == rule.id && f.is_heartbeat()),
            });
        }
        Ok(explanations)
    }
}

impl Node {
    fn accepted(&self) -> bool {
        match self {
            Node::Field(field) => field.accepted,
            Node::Or { accepted, .. } => *accepted,
        }
    }
}

/// Whether the pattern `pattern` (JSON) matches `event` (text), by the engine.
fn single_matches(pattern: &Value, event: &str) -> bool {
    let Ok(pattern) = Pattern::from_json(pattern) else {
        return false;
    };
    let mut builder = MatcherBuilder::default();
    builder.add((), pattern);
    builder
        .build()
        .matches(event)
        .is_ok_and(|found| !found.is_empty())
}

/// The fields and `$or`s of a pattern object under `prefix`.
fn nodes(pattern: &Value, prefix: &str, event: &Value) -> Vec<Node> {
    let Value::Object(fields) = pattern else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for (key, wants) in fields {
        if key == "$or" {
            let branches: Vec<Branch> = wants
                .as_array()
                .into_iter()
                .flatten()
                .map(|alternative| {
                    let nodes = nodes(alternative, prefix, event);
                    Branch {
                        accepted: nodes.iter().all(Node::accepted),
                        nodes,
                    }
                })
                .collect();
            found.push(Node::Or {
                accepted: branches.iter().any(|branch| branch.accepted),
                branches,
            });
            continue;
        }
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match wants {
            Value::Object(_) => found.extend(nodes(wants, &path, event)),
            _ => found.push(Node::Field(field(&path, wants, event))),
        }
    }
    found
}

/// Judges each of the event's values at `path` against each alternative of `wants`.
fn field(path: &str, wants: &Value, event: &Value) -> FieldTrace {
    let values: Vec<Value> = FieldPath::parse(path)
        .map(|field| field.values(event))
        .unwrap_or_default()
        .into_iter()
        .filter(|value| !value.is_object() && !value.is_array())
        .cloned()
        .collect();
    let alternatives: Vec<Value> = wants.as_array().cloned().unwrap_or_default();
    if values.is_empty() {
        // Only `{"exists": false}` accepts a missing field.
        let absent = json!({ "exists": false });
        return FieldTrace {
            path: path.to_owned(),
            wants: wants.clone(),
            accepted: alternatives.contains(&absent),
            values: Vec::new(),
        };
    }
    let traces: Vec<ValueTrace> = values
        .into_iter()
        .map(|value| {
            let accepted_by = alternatives
                .iter()
                .find(|alternative| one_value_matches(alternative, &value))
                .cloned();
            ValueTrace { value, accepted_by }
        })
        .collect();
    FieldTrace {
        path: path.to_owned(),
        wants: wants.clone(),
        accepted: traces.iter().any(|trace| trace.accepted_by.is_some()),
        values: traces,
    }
}

/// Whether one alternative accepts one value: `{"v": [alternative]}` against `{"v": value}`.
fn one_value_matches(alternative: &Value, value: &Value) -> bool {
    let mut pattern = Map::new();
    pattern.insert("v".into(), Value::Array(vec![alternative.clone()]));
    let mut event = Map::new();
    event.insert("v".into(), value.clone());
    single_matches(&Value::Object(pattern), &Value::Object(event).to_string())
}

fn trace(condition: &Condition, subject: &Parsed<'_>) -> ConditionTrace {
    match condition {
        Condition::Any(alternatives) => ConditionTrace {
            condition: "any".into(),
            holds: condition.holds(subject),
            values: Vec::new(),
            any: alternatives.iter().map(|c| trace(c, subject)).collect(),
            all: Vec::new(),
            note: None,
        },
        Condition::All(entries) => ConditionTrace {
            condition: "all".into(),
            holds: condition.holds(subject),
            values: Vec::new(),
            any: Vec::new(),
            all: entries.iter().map(|c| trace(c, subject)).collect(),
            note: None,
        },
        Condition::Test { fields, test, text } => {
            let names: Vec<&str> = fields.iter().map(|field| field.path.as_str()).collect();
            let field = match names.as_slice() {
                [one] => format!("\"{one}\""),
                many => format!("{many:?}"),
            };
            let values: Vec<Value> = fields
                .iter()
                .flat_map(|field| field.path.values(subject.value))
                .cloned()
                .collect();
            // A time test passes over what is no timestamp without a word: say so here.
            let note = matches!(**test, Test::OlderThan(_) | Test::NewerThan(_))
                .then(|| {
                    values
                        .iter()
                        .filter(|value| value.as_str().and_then(parse_timestamp).is_none())
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                })
                .filter(|unread| !unread.is_empty())
                .map(|unread| {
                    format!(
                        "not a timestamp: {}; expected e.g. \"Jul 10, 2020 11:06:41 PM\" or RFC 3339",
                        unread.join(", ")
                    )
                });
            ConditionTrace {
                condition: format!("field = {field}, {text}"),
                holds: condition.holds(subject),
                values,
                any: Vec::new(),
                all: Vec::new(),
                note,
            }
        }
    }
}

fn elements(rule: &Rule, event: &Value) -> Vec<ElementTrace> {
    let mut traces = Vec::new();
    for for_each in &rule.for_each {
        for array in for_each.array.containers(event) {
            let Value::Array(elements) = array else {
                continue;
            };
            for (idx, element) in elements.iter().enumerate() {
                traces.push(ElementTrace {
                    path: format!("{}[{idx}]", for_each.array),
                    accepted: for_each.accepts(element),
                });
            }
        }
    }
    traces
}
