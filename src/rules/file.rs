//! The rule file schema: what a `rules/*.toml` file may say, as serde types.
//!
//! Every table denies unknown keys: a misspelled key must be an error, never a rule that
//! silently stops alerting. `match` values are EventBridge's pattern language as a TOML tree;
//! `load` turns them into JSON for the pattern engine.

use crate::alert::Severity;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// A rule file. `load` reads the two tables separately (to report every problem), so this
/// type serves the JSON Schema editors validate with; it names the same keys.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "meterwatch rule file")]
#[expect(
    dead_code,
    reason = "read by schemars for the JSON Schema, not by the loader"
)]
pub(crate) struct RuleFile {
    /// Named lists, referenced by `in_list` / `not_in_list`; entries may use `*` wildcards.
    /// Each list is defined once across all files; an empty list means "not configured".
    #[serde(default)]
    pub lists: BTreeMap<String, Vec<String>>,
    /// The rules.
    #[serde(default)]
    pub rule: Vec<RuleDef>,
    /// Alerts not to send for a while (maintenance): see `docs/rules.md`.
    #[serde(default)]
    pub silence: Vec<super::silence::SilenceDef>,
}

/// One `[[rule]]` table.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleDef {
    /// Unique across all loaded files, kebab-case; alerts and tooling refer to it.
    pub id: String,
    /// One line, shown as the alert's title; a template (minijinja) like `summary`.
    #[schemars(with = "String")]
    pub title: Spanned<String>,
    /// What happened, in one sentence (a template); without it, a default says who called
    /// what, where, and how it failed.
    #[schemars(with = "Option<String>")]
    pub summary: Option<Spanned<String>>,
    /// Details and what to do (a template), shown in email and Slack under the summary.
    #[schemars(with = "Option<String>")]
    pub body: Option<Spanned<String>>,
    /// Steps for whoever receives the alert (listed in Slack and in the alert document).
    #[serde(default)]
    pub next_steps: Vec<String>,
    /// What the rule catches and why it matters; shown to people reading rules.
    #[serde(default)]
    pub description: String,
    pub severity: Severity,
    /// A disabled rule is still checked, but never fires.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// An EventBridge pattern written as TOML.
    #[serde(rename = "match")]
    #[schemars(with = "Option<BTreeMap<String, serde_json::Value>>")]
    pub pattern: Option<Spanned<toml::Value>>,
    /// An EventBridge pattern as JSON text, e.g. pasted from the console.
    #[schemars(with = "Option<String>")]
    pub match_json: Option<Spanned<String>>,
    /// Conditions beyond EventBridge, all of which must hold.
    #[serde(default, rename = "where")]
    #[schemars(with = "Vec<ConditionDef>")]
    pub conditions: Vec<Spanned<ConditionDef>>,
    /// Fire once per matching element of these arrays instead of once per event.
    #[serde(default)]
    #[schemars(with = "Vec<ForEachDef>")]
    pub for_each: Vec<Spanned<ForEachDef>>,
    /// Alert once per CloudTrail event (and element) within a window; on unless disabled.
    #[schemars(with = "Option<DedupDef>")]
    pub dedup: Option<Spanned<DedupDef>>,
    /// At most one alert per group per interval; the next one says how many were held back.
    #[schemars(with = "Option<ThrottleDef>")]
    pub throttle: Option<Spanned<ThrottleDef>>,
    /// Collect matches for a while, then send one alert summarising them.
    #[schemars(with = "Option<GroupDef>")]
    pub group: Option<Spanned<GroupDef>>,
    /// Alert only when `count` matches fall within a window of event time.
    #[schemars(with = "Option<ThresholdDef>")]
    pub threshold: Option<Spanned<ThresholdDef>>,
    /// Matches are heartbeats: alert when a key has none for `interval` + `grace`.
    #[schemars(with = "Option<AbsenceDef>")]
    pub absence: Option<Spanned<AbsenceDef>>,
    /// Ids of rules whose alerts for the same event this rule's alert replaces (like
    /// Alertmanager's `inhibit_rules`): one problem pages once, by its most specific rule.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub inhibits: Vec<Spanned<String>>,
}

/// `[rule.dedup]`: at-least-once delivery (SQS, EventBridge) repeats events; one alert each.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DedupDef {
    /// `false` alerts on every delivery, repeats included.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// How long an event's alert is remembered, e.g. `"24h"` (the default).
    #[schemars(with = "Option<String>")]
    pub window: Option<Spanned<String>>,
}

/// `[rule.throttle]`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ThrottleDef {
    /// Dotted event paths whose values make the group, e.g. `["account"]`; none: one group.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub group_by: Vec<Spanned<String>>,
    /// At most one alert per group per this long, e.g. `"1h"`.
    #[schemars(with = "String")]
    pub interval: Spanned<String>,
}

/// `[rule.group]`: Alertmanager's `group_wait` and `group_interval`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupDef {
    /// Dotted event paths whose values make the group; none: one group.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub group_by: Vec<Spanned<String>>,
    /// How long the first match of a group waits for others, e.g. `"30s"` (the default).
    #[schemars(with = "Option<String>")]
    pub wait: Option<Spanned<String>>,
    /// After a group's alert, matches are collected this long before the next, e.g. `"5m"`
    /// (the default).
    #[schemars(with = "Option<String>")]
    pub interval: Option<Spanned<String>>,
}

/// `[rule.threshold]`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ThresholdDef {
    /// How many matches, at least 1.
    #[schemars(with = "u32")]
    pub count: Spanned<i64>,
    /// Within how long, by the events' `eventTime`, e.g. `"10m"`.
    #[schemars(with = "String")]
    pub window: Spanned<String>,
    /// Dotted event paths whose values make the group counted; none: one count.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub group_by: Vec<Spanned<String>>,
}

/// `[rule.absence]`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AbsenceDef {
    /// Dotted event paths whose values make the key expected to keep metering, e.g.
    /// `["detail.requestParameters.productCode"]`.
    #[schemars(with = "Vec<String>")]
    pub group_by: Vec<Spanned<String>>,
    /// How often each key is expected to meter, e.g. `"1h"` (the default).
    #[schemars(with = "Option<String>")]
    pub interval: Option<Spanned<String>>,
    /// Extra time allowed past `interval`, e.g. `"15m"` (the default).
    #[schemars(with = "Option<String>")]
    pub grace: Option<Spanned<String>>,
    /// A named list of the keys expected from the start (one value per key; with several
    /// `group_by` fields, the values joined by `|`).
    #[schemars(with = "Option<String>")]
    pub expected_list: Option<Spanned<String>>,
    /// Also watch every key seen in matching events from then on.
    #[serde(default)]
    pub learn: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// One `[[rule.where]]` entry: a field (or several) and exactly one test on it, an `any`
/// group of which one entry must hold, or an `all` group of which every entry must (inside
/// `any`, one alternative made of several tests).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConditionDef {
    /// Dotted path of the field, or several paths whose values are pooled.
    pub field: Option<OneOrMany>,
    /// A regular expression (Rust `regex` syntax) that some value must match.
    #[schemars(with = "Option<String>")]
    pub regex: Option<Spanned<String>>,
    /// A regular expression that no value may match.
    #[schemars(with = "Option<String>")]
    pub not_regex: Option<Spanned<String>>,
    /// A named list some value must be on.
    #[schemars(with = "Option<String>")]
    pub in_list: Option<Spanned<String>>,
    /// A named list no value may be on.
    #[schemars(with = "Option<String>")]
    pub not_in_list: Option<Spanned<String>>,
    /// Another field some value must equal.
    #[schemars(with = "Option<String>")]
    pub equals_field: Option<Spanned<String>>,
    /// Another field no value may equal.
    #[schemars(with = "Option<String>")]
    pub not_equals_field: Option<Spanned<String>>,
    /// A timestamp at least this much older than the event's `eventTime`, e.g. `"6h"`.
    #[schemars(with = "Option<String>")]
    pub older_than: Option<Spanned<String>>,
    /// A timestamp later than the event's `eventTime` by at least this much, e.g. `"5m"`.
    #[schemars(with = "Option<String>")]
    pub newer_than: Option<Spanned<String>>,
    /// An EventBridge value list (e.g. `[{ prefix = "a" }]`) some value must match; several
    /// entries on one field AND what EventBridge can only OR.
    #[serde(rename = "match")]
    #[schemars(with = "Option<Vec<serde_json::Value>>")]
    pub values: Option<Spanned<toml::Value>>,
    /// Alternatives: the entry holds when any of them does.
    #[schemars(with = "Option<Vec<ConditionDef>>")]
    pub any: Option<Vec<Spanned<ConditionDef>>>,
    /// Entries that must all hold: one alternative of an `any` made of several tests.
    #[schemars(with = "Option<Vec<ConditionDef>>")]
    pub all: Option<Vec<Spanned<ConditionDef>>>,
}

/// A field given as one path or a list of paths.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
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
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForEachDef {
    /// Dotted path of the array, e.g. `detail.responseElements.results`.
    pub array: String,
    /// An EventBridge pattern each element must match (relative to the element); without
    /// it every element counts.
    #[serde(rename = "match")]
    #[schemars(with = "Option<BTreeMap<String, serde_json::Value>>")]
    pub pattern: Option<Spanned<toml::Value>>,
}
