//! The rule file schema: what a `rules/*.toml` file may say, as serde types.
//!
//! Every table denies unknown keys: a misspelled key must be an error, never a rule that
//! silently stops alerting. `match` values are EventBridge's pattern language as a TOML tree;
//! `load` turns them into JSON for the pattern engine.

use crate::alert::Severity;
use serde::Deserialize;
use toml::Spanned;

/// One `[[rule]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleDef {
    /// Unique across all loaded files, kebab-case; alerts and tooling refer to it.
    pub id: String,
    /// One line, shown as the alert's title.
    pub title: String,
    /// What the rule catches and why it matters; shown to people reading rules.
    #[serde(default)]
    pub description: String,
    pub severity: Severity,
    /// A disabled rule is still checked, but never fires.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// An EventBridge pattern written as TOML.
    #[serde(rename = "match")]
    pub pattern: Option<Spanned<toml::Value>>,
    /// An EventBridge pattern as JSON text, e.g. pasted from the console.
    pub match_json: Option<Spanned<String>>,
    /// Conditions beyond EventBridge, all of which must hold.
    #[serde(default, rename = "where")]
    pub conditions: Vec<Spanned<ConditionDef>>,
    /// Fire once per matching element of these arrays instead of once per event.
    #[serde(default)]
    pub for_each: Vec<Spanned<ForEachDef>>,
}

fn enabled_by_default() -> bool {
    true
}

/// One `[[rule.where]]` entry: a field (or several) and exactly one test on it, or an `any`
/// group of which one entry must hold.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConditionDef {
    /// Dotted path of the field, or several paths whose values are pooled.
    pub field: Option<OneOrMany>,
    /// A regular expression (Rust `regex` syntax) that some value must match.
    pub regex: Option<Spanned<String>>,
    /// A regular expression that no value may match.
    pub not_regex: Option<Spanned<String>>,
    /// A named list some value must be on.
    pub in_list: Option<Spanned<String>>,
    /// A named list no value may be on.
    pub not_in_list: Option<Spanned<String>>,
    /// Another field some value must equal.
    pub equals_field: Option<Spanned<String>>,
    /// Another field no value may equal.
    pub not_equals_field: Option<Spanned<String>>,
    /// A timestamp at least this much older than the event's `eventTime`, e.g. `"6h"`.
    pub older_than: Option<Spanned<String>>,
    /// A timestamp later than the event's `eventTime` by at least this much, e.g. `"5m"`.
    pub newer_than: Option<Spanned<String>>,
    /// An EventBridge value list (e.g. `[{ prefix = "a" }]`) some value must match; several
    /// entries on one field AND what EventBridge can only OR.
    #[serde(rename = "match")]
    pub values: Option<Spanned<toml::Value>>,
    /// Alternatives: the entry holds when any of them does.
    pub any: Option<Vec<Spanned<ConditionDef>>>,
}

/// A field given as one path or a list of paths.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(path) => vec![path],
            OneOrMany::Many(paths) => paths,
        }
    }
}

/// One `[[rule.for_each]]` entry: an array whose matching elements each get an alert.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForEachDef {
    /// Dotted path of the array, e.g. `detail.responseElements.results`.
    pub array: String,
    /// An EventBridge pattern each element must match (relative to the element); without
    /// it every element counts.
    #[serde(rename = "match")]
    pub pattern: Option<Spanned<toml::Value>>,
}
