//! Rules: TOML files → a compiled [`RuleSet`] that turns events into [`Alert`]s.
//!
//! A rule is an EventBridge pattern (`match` or `match_json`), optional `where` conditions
//! that EventBridge cannot express, and optionally `for_each` arrays whose matching elements
//! each get their own alert. Every enabled rule's pattern goes into one matcher, so matching
//! costs about the same for 5 rules as for 500. The same pass captures the values of the
//! fields `where` conditions read (and judges their `match` value lists, as more patterns);
//! conditions run only for rules whose pattern matched, on those values; and only when some
//! rule's conditions all hold is the event parsed (`view`) for its alerts. Given an SQS body
//! ([`RuleSet::body_findings`], [`RuleSet::body_alerts`]), the pass also reads what the
//! decoder needs of an EventBridge envelope ([`envelope::EnvelopeFields`]), so the
//! commonest body is read once.
//!
//! - `file`: the TOML schema (serde types, unknown keys denied).
//! - `load`: files → rules, collecting every [`Diagnostic`](crate::diagnostic::Diagnostic)
//!   rather than stopping at the first.
//! - `lists`: named lists with wildcard entries.
//! - [`silence`]: `[[silence]]` tables, and matching alerts against silences.
//! - `locate`: where in a rule file a rejected pattern's faulty key is written.
//! - `controls`: the noise-control tables (`[rule.dedup]`, `[rule.throttle]`...) → `Controls`.
//! - [`cases`]: rule tests (`rules/tests/*.toml`), run by `meterwatch test`.
//! - `condition`: the `where` tests.
//! - `inhibit`: `inhibits`, a rule's alert replacing other rules' alerts for the same event.
//! - [`explain`]: why each rule did or did not fire for an event.
//! - `view`: the fields alerts read, parsed from an event's text without building the rest.

pub mod cases;
mod condition;
mod controls;
pub mod explain;
mod file;
mod inhibit;
mod lists;
mod load;
mod locate;
pub mod silence;
mod view;

use crate::field::{FieldPath, Tree};
pub use inhibit::Inhibited;
pub use lists::List;
pub use load::{LoadError, rule_files};

use crate::alert::template::{Kind, Templates};
use crate::alert::{Alert, Element, MAX_MATCHED_VALUES, Severity, UsageRecord, content};
use crate::envelope::{self, Event};
use crate::state::absence::Origin;
use crate::state::{Controls, GroupKey};
use condition::{Captured, Condition};
use meterwatch_pattern::{Captures, EventError, Field, Matcher, Scalar, Scratch};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use view::Node;

/// One compiled rule.
#[derive(Debug)]
pub struct Rule {
    pub id: Arc<str>,
    pub title: Arc<str>,
    pub description: String,
    pub severity: Severity,
    /// What to do, listed in alerts.
    pub next_steps: Vec<String>,
    pub enabled: bool,
    /// Where the rule is defined, for messages.
    pub file: PathBuf,
    /// The rule's EventBridge pattern as JSON (from `match` or `match_json`).
    pub pattern_json: Value,
    conditions: Vec<Condition>,
    for_each: Vec<ForEach>,
    /// Every field the rule reads, for the alert's `matched` values.
    fields: Vec<FieldPath>,
    /// Dedup, throttle, group, threshold, absence: applied by the daemon's state stage.
    pub controls: Arc<Controls>,
    /// An enabled absence rule's `group_by` fields, captured by the matching pass: a
    /// heartbeat's key is read without parsing the view.
    heartbeat_key: Vec<condition::Field>,
    /// The rules whose alerts for the same event this rule's alert drops (`inhibit`).
    pub inhibits: Vec<Arc<str>>,
}

/// An alert with what the state stage needs to decide its fate: its rule's controls and its
/// group's key.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Boxed: a finding is moved through the state stage's futures, and an alert is large.
    pub alert: Box<Alert>,
    pub controls: Arc<Controls>,
    /// The values of the rule's `group_by` fields (empty without one).
    pub key: GroupKey,
}

impl Finding {
    /// An absence rule's match: a sign of life, never an alert by itself. Every successful
    /// metering call is a heartbeat, and its alert is sent only when it ends an absence, so
    /// its `alert` holds just what the state stage reads (rule, time, account, region):
    /// [`RuleSet::heartbeat_alert`] builds the rest then.
    pub fn is_heartbeat(&self) -> bool {
        self.controls.is_absence()
    }
}

/// A `for_each` entry: the array, and the pattern each reported element must match.
#[derive(Debug)]
struct ForEach {
    array: FieldPath,
    pattern: Option<Matcher<()>>,
}

/// Every loaded rule, compiled; immutable and shareable across threads.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Enabled rules' patterns, each added under its index in `rules`, and their `match`
    /// conditions' patterns (under `None`); the fields their conditions read are wanted
    /// fields of it, captured in the same pass.
    matcher: Matcher<Option<usize>>,
    lists: BTreeMap<String, Arc<List>>,
    /// Every field rules and alerts read once a rule's pattern and conditions held: matched
    /// values, group keys, `for_each` arrays and the alert's content.
    view: view::FieldTree,
    /// Every rule's `title`, `summary` and `body`, compiled.
    templates: Templates,
    /// The matcher's handles on [`envelope::EnvelopeFields::PATHS`].
    envelope_fields: envelope::EnvelopeFields<Field>,
    /// The files' `[[silence]]`s.
    silences: Arc<silence::Silences>,
}

/// The most alerts one message raises by default (`rules.max_alerts_per_message`).
pub const DEFAULT_MAX_ALERTS_PER_MESSAGE: usize = 100;
/// The most bytes of alert documents one message may raise: hundreds of times what a real
/// message's alerts take (a few KB each), and little beside the daemon's memory.
pub const MAX_ALERT_BYTES_PER_MESSAGE: usize = 16 << 20;

/// What one message may raise, so that its cost does not depend on what it claims to hold:
/// see [`RuleSet::body_findings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Alerts beyond it are held back: each rule's become one summary alert saying how many
    /// (heartbeats are not alerts, and not counted).
    pub max_alerts: usize,
    /// Bytes of alert documents beyond it make the message poison ([`BodyError::OverBudget`]).
    pub max_bytes: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_alerts: DEFAULT_MAX_ALERTS_PER_MESSAGE,
            max_bytes: MAX_ALERT_BYTES_PER_MESSAGE,
        }
    }
}

/// What one message has raised so far, against its [`Budget`].
#[derive(Debug)]
struct Spent {
    budget: Budget,
    alerts: usize,
    bytes: usize,
    /// Set once the alerts' bytes went over the budget: nothing more is built.
    over: bool,
    /// The rules whose alerts went past the budget's count: where each one's summary finding
    /// is (event, finding) and how many alerts it stands for.
    capped: Vec<Capped>,
    /// The event being evaluated, by its index in the message.
    event_idx: usize,
    /// The rules whose alerts were dropped for an event by another rule's (`inhibit`).
    inhibited: Vec<Inhibited>,
}

#[derive(Debug)]
struct Capped {
    rule: Arc<str>,
    event_idx: usize,
    finding_idx: usize,
    count: u64,
}

impl Spent {
    fn new(budget: Budget) -> Spent {
        Spent {
            budget,
            alerts: 0,
            bytes: 0,
            over: false,
            capped: Vec::new(),
            event_idx: 0,
            inhibited: Vec::new(),
        }
    }

    /// Counts an alert built, with its document's size.
    fn charge(&mut self, alert: &Alert) {
        self.alerts += 1;
        self.bytes = self.bytes.saturating_add(document_bytes(alert));
        self.over |= self.bytes > self.budget.max_bytes;
    }

    /// Counts one more alert of `rule` held back; false for the first, whose summary the
    /// caller then builds (and reports with [`Spent::cap`]).
    fn capped_again(&mut self, rule: &str) -> bool {
        match self.capped.iter_mut().find(|capped| &*capped.rule == rule) {
            Some(capped) => {
                capped.count += 1;
                true
            }
            None => false,
        }
    }

    fn cap(&mut self, rule: &Arc<str>, finding_idx: usize) {
        self.capped.push(Capped {
            rule: Arc::clone(rule),
            event_idx: self.event_idx,
            finding_idx,
            count: 1,
        });
    }

    /// Writes into each summary alert how many alerts it stands for, now that all are known.
    fn settle(self, per_event: &mut [(Event, Vec<Finding>)]) {
        for capped in &self.capped {
            if let Some((_, findings)) = per_event.get_mut(capped.event_idx) {
                capped.settle(findings, self.budget.max_alerts);
            }
        }
    }
}

impl Capped {
    fn settle(&self, findings: &mut [Finding], max_alerts: usize) {
        if let Some(finding) = findings.get_mut(self.finding_idx) {
            finding.alert.held_back = Some(self.count);
            finding.alert.summary = format!(
                "{} more alerts of rule {} for this message were held back: it raised more \
                 than max_alerts_per_message ({max_alerts}).",
                self.count, self.rule
            );
        }
    }
}

/// The size of `alert`'s document, written into this thread's reused buffer.
fn document_bytes(alert: &Alert) -> usize {
    thread_local! {
        static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    BUFFER.with(|cell| {
        let mut buffer = cell.borrow_mut();
        buffer.clear();
        alert.write_json(&mut buffer);
        let n_bytes = buffer.len();
        // A rare large document does not stay in the thread's memory.
        if buffer.capacity() > 1 << 20 {
            *buffer = Vec::new();
        }
        n_bytes
    })
}

/// Why a message body raised nothing: see [`RuleSet::body_findings`].
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is no accepted shape: a poison message.
    #[error(transparent)]
    Undecodable(envelope::DecodeErrorKind),
    /// Its alerts' documents came to more bytes than [`Budget::max_bytes`]: a poison
    /// message, whatever it claims to be.
    #[error("its alerts came to over {max_bytes} bytes (after {alerts} alerts)")]
    OverBudget { alerts: usize, max_bytes: usize },
    /// The rule engine refused an event of it.
    #[error("event {}: {error}", event_id.as_deref().unwrap_or("(no eventID)"))]
    Evaluate {
        event_id: Option<String>,
        error: EventError,
    },
}

/// What one message body raised ([`RuleSet::body_findings`]).
#[derive(Debug, Default)]
pub struct BodyFindings {
    /// Each event of the body, with its findings.
    pub per_event: Vec<(Event, Vec<Finding>)>,
    /// Records of a batch that were skipped, each saying where and why
    /// ([`envelope::Decoded::skipped`]).
    pub skipped: Vec<envelope::DecodeErrorKind>,
    /// Alerts dropped because another rule's alert for the same event inhibits them.
    pub inhibited: Vec<Inhibited>,
}

thread_local! {
    /// Per-thread matcher scratch space, so evaluation allocates nothing once warm.
    static SCRATCH: RefCell<(Scratch, Vec<usize>)> = RefCell::new((Scratch::default(), Vec::new()));
}

/// Whether `matcher` matches `json` (valid JSON, e.g. a decoded event's part), using this
/// thread's scratch space: `for_each` patterns run per raising event.
fn matches_any<T>(matcher: &Matcher<T>, json: &str) -> bool {
    SCRATCH.with(|cell| {
        let (scratch, found) = &mut *cell.borrow_mut();
        matcher.matches_with(json, scratch, found).is_ok() && !found.is_empty()
    })
}

/// The JSON Schema of rule files, generated from the types `load` reads, for editors.
pub fn rule_file_schema() -> Value {
    schemars::schema_for!(file::RuleFile).to_value()
}

/// The JSON Schema of rule test files.
pub fn test_file_schema() -> Value {
    schemars::schema_for!(cases::CaseFile).to_value()
}

impl RuleSet {
    /// Loads every rule file at `paths` (files, or directories whose `*.toml` files are
    /// read in name order). Any problem anywhere rejects the whole set, with every
    /// diagnostic found.
    pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<RuleSet, LoadError> {
        load::load(paths)
    }

    /// Loads one rule file's `text` as [`RuleSet::load`] loads a file, naming it `path`.
    pub fn load_text(path: &Path, text: &str) -> Result<RuleSet, LoadError> {
        load::load_text(path, text)
    }

    /// All rules, enabled or not, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Number of rules (enabled or not).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The named lists, by name.
    pub fn lists(&self) -> &BTreeMap<String, Arc<List>> {
        &self.lists
    }

    /// The files' silences (in force or not).
    pub fn silences(&self) -> &Arc<silence::Silences> {
        &self.silences
    }

    /// The alerts the rules raise for `event`, in rule order, before any noise control: what
    /// `meterwatch eval` and `preview` show. An absence rule's matches are heartbeats, not
    /// alerts, and are left out.
    pub fn evaluate(&self, event: &Event) -> Result<Vec<Alert>, EventError> {
        Ok(self
            .raised(event, false, Budget::default())?
            .into_iter()
            .map(|finding| *finding.alert)
            .collect())
    }

    /// Everything the rules raise for `event`, heartbeats included, with their controls and
    /// group keys: what the state stage decides on.
    pub fn findings(&self, event: &Event) -> Result<Vec<Finding>, EventError> {
        self.raised(event, true, Budget::default())
    }

    /// Decodes an SQS message body ([`envelope::decode`]) and raises what each of its
    /// events does ([`RuleSet::findings`]), heartbeats included: what the state stage
    /// decides on. An EventBridge envelope, the common shape, takes one pass over its text:
    /// the matching pass also reads what the decoder would ([`envelope::EnvelopeFields`]).
    ///
    /// The message's alerts keep to `budget`: past its `max_alerts`, each rule's further
    /// alerts become one summary alert saying how many were held back; past its `max_bytes`
    /// the message is [`BodyError::OverBudget`], and nothing more is built.
    pub fn body_findings(&self, body: &str, budget: Budget) -> Result<BodyFindings, BodyError> {
        self.body(body, true, budget)
    }

    /// [`RuleSet::body_findings`] without heartbeats, for callers with no state stage to
    /// give them to: absence rules are not even judged.
    pub fn body_alerts(&self, body: &str, budget: Budget) -> Result<BodyFindings, BodyError> {
        self.body(body, false, budget)
    }

    fn body(
        &self,
        body: &str,
        heartbeats: bool,
        budget: Budget,
    ) -> Result<BodyFindings, BodyError> {
        let mut spent = Spent::new(budget);
        let (mut per_event, skipped) = match self.one_pass(body, heartbeats, &mut spent) {
            Some(raised) => (vec![raised], Vec::new()),
            None => {
                let decoded = envelope::decode_all(body).map_err(BodyError::Undecodable)?;
                let mut per_event = Vec::with_capacity(decoded.events.len());
                for (event_idx, event) in decoded.events.into_iter().enumerate() {
                    spent.event_idx = event_idx;
                    match self.raised_spending(&event, heartbeats, &mut spent) {
                        Ok(findings) => per_event.push((event, findings)),
                        Err(error) => {
                            return Err(BodyError::Evaluate {
                                event_id: event.event_id().map(str::to_owned),
                                error,
                            });
                        }
                    }
                    if spent.over {
                        break;
                    }
                }
                (per_event, decoded.skipped)
            }
        };
        if spent.over {
            return Err(BodyError::OverBudget {
                alerts: spent.alerts,
                max_bytes: budget.max_bytes,
            });
        }
        let inhibited = std::mem::take(&mut spent.inhibited);
        spent.settle(&mut per_event);
        Ok(BodyFindings {
            per_event,
            skipped,
            inhibited,
        })
    }

    /// [`RuleSet::body_findings`] for a body the matching pass vouches for as an
    /// EventBridge envelope; `None` for the rest, which is then decoded first.
    fn one_pass(
        &self,
        body: &str,
        heartbeats: bool,
        spent: &mut Spent,
    ) -> Option<(Event, Vec<Finding>)> {
        if !envelope::may_be_envelope(body) {
            return None;
        }
        let (event, raising) = SCRATCH.with(|cell| {
            let (scratch, found) = &mut *cell.borrow_mut();
            let captures = self.matcher.capture(body, scratch, found).ok()?;
            let found_at = self.envelope_fields.map(|field| {
                let mut values = captures.values_outside_arrays(field);
                match (values.next(), values.next()) {
                    (None, _) => envelope::Found::Nothing,
                    (Some(Scalar::Str(text)), None) => envelope::Found::One(Some(text)),
                    (Some(_), None) => envelope::Found::One(None),
                    (Some(_), Some(_)) => envelope::Found::Repeated,
                }
            });
            let event = found_at.event(body)?;
            let raising = self.raising(&captures, found, &event, heartbeats);
            Some((event, raising))
        })?;
        let findings = self.build(&event, raising, spent);
        Some((event, findings))
    }

    /// What `event` raises within `budget`, for one event on its own; a summary alert says
    /// how many it stands for.
    fn raised(
        &self,
        event: &Event,
        heartbeats: bool,
        budget: Budget,
    ) -> Result<Vec<Finding>, EventError> {
        let mut spent = Spent::new(budget);
        let mut findings = self.raised_spending(event, heartbeats, &mut spent)?;
        for capped in &spent.capped {
            capped.settle(&mut findings, budget.max_alerts);
        }
        Ok(findings)
    }

    fn raised_spending(
        &self,
        event: &Event,
        heartbeats: bool,
        spent: &mut Spent,
    ) -> Result<Vec<Finding>, EventError> {
        // One pass over the text matches the patterns (rules' and `match` conditions') and
        // keeps the values of the fields conditions read, borrowed from the text.
        let raising = SCRATCH.with(|cell| {
            let (scratch, found) = &mut *cell.borrow_mut();
            let captures = self.matcher.capture(event.json(), scratch, found)?;
            Ok::<_, EventError>(self.raising(&captures, found, event, heartbeats))
        })?;
        Ok(self.build(event, raising, spent))
    }

    /// The rules whose pattern matched (`found`) and whose conditions hold on the captured
    /// values, each with its heartbeat key if it is an absence rule.
    fn raising(
        &self,
        captures: &Captures<'_, '_>,
        found: &[usize],
        event: &Event,
        heartbeats: bool,
    ) -> Vec<(&Rule, Option<GroupKey>)> {
        let mut rules = found
            .iter()
            .filter_map(|&pattern_idx| *self.matcher.id(pattern_idx))
            .map(|rule_idx| &self.rules[rule_idx])
            .filter(|rule| heartbeats || !rule.is_absence())
            .peekable();
        if rules.peek().is_none() {
            return Vec::new();
        }
        let values = Captured {
            captures,
            found,
            event_time: condition::EventTime::new(event.event_time()),
        };
        rules
            .filter(|rule| rule.conditions.iter().all(|c| c.holds(&values)))
            // A heartbeat's key comes from the captures, while they last.
            .map(|rule| {
                let key = rule
                    .is_absence()
                    .then(|| rule.heartbeat_group_key(captures, event));
                (rule, key)
            })
            .collect()
    }

    /// The findings of the rules `raising` for `event`.
    fn build(
        &self,
        event: &Event,
        raising: Vec<(&Rule, Option<GroupKey>)>,
        spent: &mut Spent,
    ) -> Vec<Finding> {
        let mut findings = Vec::new();
        // Only now is anything built: one parse serves every raising rule's alerts (not
        // heartbeats, which need none). The text was valid JSON when it was decoded, so the
        // view always parses; were it not to, the alerts would show no content.
        let fields = if raising.iter().any(|(_, key)| key.is_none()) {
            self.view.parse(event.json()).unwrap_or(Node::Null)
        } else {
            Node::Null
        };
        let fields = &fields;
        let inhibitors: Vec<&Rule> = raising
            .iter()
            .filter(|(rule, key)| key.is_none() && !rule.inhibits.is_empty())
            .map(|(rule, _)| *rule)
            .collect();
        for (rule, key) in raising {
            match key {
                Some(key) => findings.push(rule.heartbeat(event, key)),
                None => rule.raise(event, fields, self, &mut findings, spent),
            }
            if spent.over {
                break;
            }
        }
        if !inhibitors.is_empty() {
            inhibit::apply(&inhibitors, event.event_id(), &mut findings, spent);
        }
        findings
    }

    /// The whole alert of a heartbeat ([`Finding::is_heartbeat`]) of the rule `rule_id`, as a
    /// rule without noise control would raise it; `None` if no such rule is loaded (any
    /// more).
    pub fn heartbeat_alert(&self, rule_id: &str, event: &Event) -> Option<Alert> {
        let rule = self.rules.iter().find(|rule| &*rule.id == rule_id)?;
        let fields = self.view.parse(event.json()).unwrap_or(Node::Null);
        let records = rule.records(&fields).listed(None);
        Some(rule.alert(
            event,
            &fields,
            rule.matched_values(&fields),
            records,
            None,
            self,
        ))
    }

    /// The alert of an absence rule for `key`, which no event raised: its title and body
    /// templates see an event holding just the key's fields, and the account and region
    /// the key's last heartbeat came from (`origin`), unless the key names them.
    pub fn absence_alert(&self, rule: &Rule, key: &GroupKey, origin: &Origin) -> Alert {
        let mut event = Value::Object(Map::new());
        for (path, value) in &key.values {
            let mut at = &mut event;
            for segment in path.split('.') {
                if !at.is_object() {
                    *at = Value::Object(Map::new());
                }
                let Value::Object(object) = at else {
                    unreachable!("made an object just above")
                };
                at = object.entry(segment.to_owned()).or_insert(Value::Null);
            }
            *at = Value::String(value.clone());
        }
        if let Value::Object(object) = &mut event {
            for (name, value) in [("account", &origin.account), ("region", &origin.region)] {
                if let Some(value) = value {
                    object
                        .entry(name)
                        .or_insert_with(|| Value::String(value.clone()));
                }
            }
        }
        let detail = event.get("detail").cloned().unwrap_or(Value::Null);
        let matched: Map<String, Value> = key
            .values
            .iter()
            .map(|(path, value)| (path.clone(), Value::String(value.clone())))
            .collect();
        let text = |name| event.get(name).and_then(Value::as_str).map(str::to_owned);
        let mut alert = Alert {
            description: rule.description.clone(),
            account: text("account"),
            region: text("region"),
            product_code: content::product_code(&detail),
            matched,
            next_steps: rule.next_steps.clone(),
            thread_key: Some(key.text.clone()),
            ..rule.new_alert()
        };
        rule.render(&mut alert, || Ok(&event), self);
        alert
    }
}

impl Rule {
    /// An alert of this rule with nothing read from an event yet.
    fn new_alert(&self) -> Alert {
        Alert::new(Arc::clone(&self.id), self.severity, self.title.to_string())
    }

    /// An absence rule: its matches are heartbeats, not alerts.
    pub fn is_absence(&self) -> bool {
        self.controls.is_absence()
    }

    /// An absence rule's finding for an event its pattern and conditions accepted: a
    /// heartbeat with a bare alert (see [`Finding::is_heartbeat`]).
    fn heartbeat(&self, event: &Event, key: GroupKey) -> Finding {
        Finding {
            alert: Box::new(self.bare_alert(event)),
            controls: Arc::clone(&self.controls),
            key,
        }
    }

    /// An absence rule's group key, from the values the matching pass captured.
    fn heartbeat_group_key(&self, captures: &Captures<'_, '_>, event: &Event) -> GroupKey {
        let Some(group_by) = self.controls.group_by() else {
            return GroupKey::default();
        };
        group_by.key_of(event, |idx| {
            self.heartbeat_key
                .get(idx)
                .and_then(|field| field.capture)
                .map(|handle| {
                    captures
                        .values(handle)
                        .filter_map(condition::text)
                        .map(std::borrow::Cow::into_owned)
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// Pushes the rule's alerts for an event its pattern and conditions accepted; `fields`
    /// holds (at least) every field the rule and alert content read.
    ///
    /// Within the message's budget (`spent`): past its alert count, the rule's alerts are
    /// counted, not built, and the first of them becomes the summary alert.
    fn raise(
        &self,
        event: &Event,
        fields: &Node,
        rule_set: &RuleSet,
        alerts: &mut Vec<Finding>,
        spent: &mut Spent,
    ) {
        let key = self
            .controls
            .group_by()
            .map(|group_by| group_by.key(fields, event))
            .unwrap_or_default();
        let finding = |alert| Finding {
            alert: Box::new(alert),
            controls: Arc::clone(&self.controls),
            key: key.clone(),
        };
        // Read once for all the alerts: each lists a bounded part of them.
        let records = self.records(fields);
        let matched = self.matched_values(fields);
        let push = |alerts: &mut Vec<Finding>,
                    spent: &mut Spent,
                    element: Option<(&FieldPath, usize, &Node)>| {
            if spent.alerts >= spent.budget.max_alerts {
                if !spent.capped_again(&self.id) {
                    spent.cap(&self.id, alerts.len());
                    alerts.push(finding(self.held_back_alert(event, fields, &records)));
                }
                return;
            }
            let listed = records.listed(element.map(|(array, idx, _)| (array.as_str(), idx)));
            let element = element.map(|(array, idx, element)| Element {
                path: format!("{array}[{idx}]"),
                value: element.to_value(),
            });
            let alert = self.alert(event, fields, matched.clone(), listed, element, rule_set);
            spent.charge(&alert);
            alerts.push(finding(alert));
        };
        if self.for_each.is_empty() {
            push(alerts, spent, None);
            return;
        }
        for for_each in &self.for_each {
            for array in for_each.array.containers(fields) {
                let Some(elements) = array.elements() else {
                    continue;
                };
                for (idx, element) in elements.iter().enumerate() {
                    if spent.over {
                        return;
                    }
                    if for_each.accepts(element) {
                        push(alerts, spent, Some((&for_each.array, idx, element)));
                    }
                }
            }
        }
    }

    /// The usage records of the call, for this rule's alerts.
    fn records(&self, fields: &Node) -> content::Records {
        content::Records::read(fields.member("detail").unwrap_or(&Node::Null))
    }

    /// The summary alert standing for this rule's alerts held back from a message over its
    /// alert budget; [`Spent::settle`] writes how many into it. Templates are not rendered:
    /// they may read an element, and this alert is about none.
    fn held_back_alert(&self, event: &Event, fields: &Node, records: &content::Records) -> Alert {
        let detail = fields.member("detail").unwrap_or(&Node::Null);
        let records_omitted = (records.n_records() > 0).then_some(records.n_records() as u64);
        Alert {
            id: content::alert_id(&self.id, event.event_id(), Some("held-back")),
            description: self.description.clone(),
            next_steps: self.next_steps.clone(),
            console_url: content::console_url(event.region(), event.event_id()),
            principal: content::principal(detail),
            product_code: content::product_code(detail),
            records_omitted,
            held_back: Some(1),
            ..self.bare_alert(event)
        }
    }

    fn alert(
        &self,
        event: &Event,
        fields: &Node,
        (matched, matched_omitted): (Map<String, Value>, Option<u64>),
        (records, records_omitted): (Vec<UsageRecord>, Option<u64>),
        element: Option<Element>,
        rule_set: &RuleSet,
    ) -> Alert {
        let detail = fields.member("detail").unwrap_or(&Node::Null);
        let mut alert = Alert {
            id: content::alert_id(
                &self.id,
                event.event_id(),
                element.as_ref().map(|e| e.path.as_str()),
            ),
            description: self.description.clone(),
            next_steps: self.next_steps.clone(),
            console_url: content::console_url(event.region(), event.event_id()),
            error_message: detail
                .member("errorMessage")
                .and_then(Tree::as_str)
                .map(str::to_owned),
            principal: content::principal(detail),
            product_code: content::product_code(detail),
            records,
            records_omitted,
            matched,
            matched_omitted,
            element,
            ..self.bare_alert(event)
        };
        self.render(&mut alert, || event.value(), rule_set);
        alert
    }

    /// What the state stage reads of an alert, from the event's facts alone: no id (an
    /// absence rule has no dedup, and a resolved notice gets an id of its own), no content
    /// read from the record, no templates rendered.
    fn bare_alert(&self, event: &Event) -> Alert {
        self.new_alert().with_event_facts(event)
    }

    /// Fills in the alert's title, summary and body from the rule's templates. A template
    /// that fails (rare: they were rendered once at load) leaves a visible note, never a
    /// missing alert. `event` gives the raw event, read only when a template uses `event` or
    /// `detail`; an event a `Value` cannot hold ([`Event::value`]) leaves them undefined, and
    /// the alert says why.
    fn render<'e>(
        &self,
        alert: &mut Alert,
        event: impl Fn() -> Result<&'e Value, serde_json::Error>,
        rule_set: &RuleSet,
    ) {
        let templates: &Templates = &rule_set.templates;
        let mut errors = Vec::new();
        let mut whole = |part: Option<&str>| match event() {
            Ok(value) => Some(minijinja::Value::from(minijinja::value::Serde(
                match part {
                    Some(key) => value.get(key),
                    None => Some(value),
                },
            ))),
            Err(error) => {
                // Once, should the templates read both `event` and `detail`.
                if errors.is_empty() {
                    errors.push(format!("the event cannot be read whole: {error}"));
                }
                None
            }
        };
        // The context holds only the names the templates read, each converted on its own.
        let context: BTreeMap<Arc<str>, minijinja::Value> = templates
            .names(&self.id)
            .filter_map(|name| {
                let value = match &**name {
                    "event" => whole(None)?,
                    "detail" => whole(Some("detail"))?,
                    "rule" => minijinja::Value::from(minijinja::value::Serde(serde_json::json!({
                        "id": &*self.id, "title": &*self.title,
                        "severity": self.severity, "description": self.description,
                    }))),
                    "lists" => minijinja::Value::from(
                        rule_set
                            .lists
                            .iter()
                            .map(|(name, list)| (name.as_str(), list.entries().to_vec()))
                            .collect::<BTreeMap<_, _>>(),
                    ),
                    field => alert.template_value(field)?,
                };
                Some((Arc::clone(name), value))
            })
            .collect();
        let context = minijinja::Value::from_object(context);
        match templates.render(&self.id, Kind::Title, &context) {
            Ok(title) if !title.is_empty() => alert.title = title,
            Ok(_) => {}
            Err(error) => errors.push(format!("title: {error}")),
        }
        match templates.render(&self.id, Kind::Summary, &context) {
            Ok(summary) => alert.summary = summary,
            Err(error) => errors.push(format!("summary: {error}")),
        }
        if templates.has(&self.id, Kind::Body) {
            match templates.render(&self.id, Kind::Body, &context) {
                Ok(body) => alert.body = Some(body).filter(|body| !body.is_empty()),
                Err(error) => errors.push(format!("body: {error}")),
            }
        }
        if alert.summary.is_empty() {
            alert.summary = format!("{} raised an alert.", self.id);
        }
        if !errors.is_empty() {
            let note = format!("(template error: {})", errors.join("; "));
            alert.body = Some(match alert.body.take() {
                Some(body) => format!("{body}\n{note}"),
                None => note,
            });
        }
    }

    /// The event's values at the rule's fields: one value as itself, several as an array of
    /// at most [`MAX_MATCHED_VALUES`]; with how many were left out, if any.
    fn matched_values(&self, event: &Node) -> (Map<String, Value>, Option<u64>) {
        let mut matched = Map::new();
        let mut omitted = 0;
        for field in &self.fields {
            let values = field.values(event);
            let value = match values.as_slice() {
                [] => continue,
                [one] => one.to_value(),
                many => {
                    omitted += many.len().saturating_sub(MAX_MATCHED_VALUES);
                    Value::Array(
                        many.iter()
                            .take(MAX_MATCHED_VALUES)
                            .map(|value| value.to_value())
                            .collect(),
                    )
                }
            };
            matched.insert(field.as_str().to_owned(), value);
        }
        (matched, (omitted > 0).then_some(omitted as u64))
    }
}

impl ForEach {
    fn accepts(&self, element: &(impl Tree + serde::Serialize)) -> bool {
        match &self.pattern {
            None => true,
            // Elements of a decoded event are valid JSON, so matching cannot fail on syntax.
            // sonic-rs writes them as serde_json would (see `Alert::write_json`), faster.
            Some(matcher) => {
                sonic_rs::to_string(element).is_ok_and(|json| matches_any(matcher, &json))
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::Path;

    /// What one body gave: per event, its text, what it says of itself, and its findings'
    /// alerts as JSON (heartbeats marked); or the decode error.
    type Outcome = Result<Vec<(String, Vec<Option<String>>, Vec<String>)>, String>;

    fn outcome(per_event: Result<Vec<(Event, Vec<Finding>)>, BodyError>) -> Outcome {
        let per_event = per_event.map_err(|error| error.to_string())?;
        outcome_of(per_event)
    }

    fn outcome_of(per_event: Vec<(Event, Vec<Finding>)>) -> Outcome {
        Ok(per_event
            .into_iter()
            .map(|(event, findings)| {
                let said = [
                    event.event_id(),
                    event.event_name(),
                    event.event_source(),
                    event.error_code(),
                    event.account(),
                    event.region(),
                    event.event_time(),
                ]
                .map(|fact| fact.map(str::to_owned));
                let alerts = findings
                    .iter()
                    .map(|f| format!("{} {}", f.is_heartbeat(), f.alert.to_json()))
                    .collect();
                (event.json().to_owned(), said.into(), alerts)
            })
            .collect())
    }

    /// The reference: decode, then evaluate each event.
    fn decoded_then_evaluated(rule_set: &RuleSet, body: &str) -> Outcome {
        outcome(
            envelope::decode(body)
                .map_err(BodyError::Undecodable)
                .and_then(|events| {
                    events
                        .into_iter()
                        .map(|event| {
                            let findings =
                                rule_set
                                    .findings(&event)
                                    .map_err(|error| BodyError::Evaluate {
                                        event_id: None,
                                        error,
                                    })?;
                            Ok((event, findings))
                        })
                        .collect()
                }),
        )
    }

    fn fixtures(kind: &str) -> Vec<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/events")
            .join(kind);
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .expect("fixtures")
            .map(|entry| entry.expect("entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == "json" || e == "txt"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|path| std::fs::read_to_string(path).expect("readable"))
            .collect()
    }

    #[test]
    fn one_pass_reads_every_body_as_decoding_does() {
        let rule_set = RuleSet::load(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")])
            .expect("shipped rules");
        let envelopes: Vec<String> = ["envelopes", "failing"]
            .into_iter()
            .flat_map(fixtures)
            .filter(|body| body.contains("\"detail-type\""))
            .collect();
        assert!(envelopes.len() >= 10, "{}", envelopes.len());
        for body in &envelopes {
            assert!(
                rule_set
                    .one_pass(body, true, &mut Spent::new(Budget::default()))
                    .is_some(),
                "one pass: {body}"
            );
        }

        // Bodies the pass cannot vouch for, made from an envelope: each is decoded first.
        let envelope = envelopes[0].trim_end();
        let (open, detail) = envelope
            .split_once("\"detail\":")
            .expect("an envelope has a detail");
        let with = |extra: &str| format!("{},{extra}}}", &envelope[..envelope.len() - 1]);
        let fall_back = [
            // A repeated `detail` whose last value holds no fact: the last one counts.
            with(r#""detail": {"x": 1}"#),
            // The record inside an array.
            format!("{open}\"detail\": [{}]}}", &detail[..detail.len() - 1]),
            // A dotted key, and a key spelled with an escape.
            with(r#""detail.eventID": "dotted""#),
            with(r#""det\u0061il": {"eventID": "escaped"}"#),
            // Facts repeated or of other types.
            with(r#""account": "111122223333""#),
            with(r#""detail-type": 5"#),
            r#"{"detail-type": 5, "source": "s", "detail": {"eventID": "e"}}"#.to_owned(),
            r#"{"detail-type": "t", "source": "s", "detail": {"a": 1}}"#.to_owned(),
            r#"{"detail-type": "t", "source": ["s"], "detail": {"eventID": "e"}}"#.to_owned(),
            // A second `"detail"` key deeper down: told apart by decoding.
            with(r#""extra": {"detail": {"eventID": "deep"}}"#),
        ];
        for body in &fall_back {
            assert!(
                rule_set
                    .one_pass(body, true, &mut Spent::new(Budget::default()))
                    .is_none(),
                "decoded first: {body}"
            );
        }
        // And shapes that vouch for themselves with odd facts.
        let odd = [
            r#"{"detail-type": "t", "source": "s", "account": 5, "detail": {"eventID": ["e"], "eventName": null, "awsRegion": {"x": 1}, "eventSource": "m"}}"#.to_owned(),
            with(r#""note": "\"detail\": not a key""#),
        ];
        for body in &odd {
            assert!(
                rule_set
                    .one_pass(body, true, &mut Spent::new(Budget::default()))
                    .is_some(),
                "one pass: {body}"
            );
        }

        let others = ["envelopes", "failing", "poison"]
            .into_iter()
            .flat_map(fixtures);
        for body in others.chain(fall_back).chain(odd) {
            for heartbeats in [true, false] {
                let mut expected = decoded_then_evaluated(&rule_set, &body);
                if !heartbeats && let Ok(per_event) = &mut expected {
                    for (_, _, alerts) in per_event {
                        alerts.retain(|alert| alert.starts_with("false"));
                    }
                }
                let found = if heartbeats {
                    rule_set.body_findings(&body, Budget::default())
                } else {
                    rule_set.body_alerts(&body, Budget::default())
                };
                assert_eq!(
                    found
                        .map_err(|error| error.to_string())
                        .and_then(|found| outcome_of(found.per_event)),
                    expected,
                    "{body}"
                );
            }
        }
    }

    fn shipped_rules() -> RuleSet {
        RuleSet::load(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")])
            .expect("shipped rules")
    }

    /// The fixture `batchmeterusage-partial` with its failed results copied to `n`, each for
    /// a customer of its own (ids of 22 characters: 6,000 results come to just under 1 MiB,
    /// SQS's limit).
    pub(crate) fn batch_with_failed_results(n: usize) -> String {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/events/failing/batchmeterusage-partial.eventbridge.json"),
        )
        .expect("fixture");
        let mut event: Value = serde_json::from_str(&text).expect("JSON");
        let results = event["detail"]["responseElements"]["results"]
            .as_array()
            .expect("results")
            .clone();
        event["detail"]["responseElements"]["results"] = results
            .iter()
            .cycle()
            .take(n)
            .enumerate()
            .map(|(idx, result)| {
                let mut result = result.clone();
                result["usageRecord"]["customerIdentifier"] = format!("customer{idx:014}").into();
                result
            })
            .collect();
        event.to_string()
    }

    #[test]
    fn issue_20_a_repeated_key_matches_by_any_value_and_alerts_with_the_last() {
        let rules = "[[rule]]\nid = \"throttled\"\ntitle = \"t\"\nseverity = \"high\"\n\
                     match.detail.errorCode = [\"ThrottlingException\"]\n\
                     where = [{ field = \"detail.errorCode\", match = [\"ThrottlingException\"] }]\n";
        let rule_set = RuleSet::load_text(Path::new("r.toml"), rules).expect("valid rules");
        let body = r#"{"detail-type": "AWS API Call via CloudTrail", "source": "aws.metering-marketplace",
            "detail": {"eventID": "e", "errorCode": "ThrottlingException", "errorCode": "Other"}}"#;
        let alerts = alerts_of(
            rule_set
                .body_alerts(body, Budget::default())
                .expect("decodes"),
        );
        let [alert] = alerts.as_slice() else {
            panic!("one alert: {alerts:?}");
        };
        assert_eq!(alert.error_code.as_deref(), Some("Other"));
        assert_eq!(
            alert.matched.get("detail.errorCode"),
            Some(&Value::from("Other"))
        );
    }

    fn alerts_of(found: BodyFindings) -> Vec<Alert> {
        found
            .per_event
            .into_iter()
            .flat_map(|(_, findings)| findings)
            .map(|finding| *finding.alert)
            .collect()
    }

    #[test]
    fn a_per_element_alert_lists_its_own_record_and_counts_the_others() {
        let body = fixtures("failing")
            .into_iter()
            .find(|body| body.contains("unprocessedRecords"))
            .expect("the partial batch");
        let alerts = alerts_of(
            shipped_rules()
                .body_alerts(&body, Budget::default())
                .expect("evaluates"),
        );
        let listed: Vec<(Option<&str>, Vec<String>, Option<u64>)> = alerts
            .iter()
            .map(|alert| {
                let records = alert.records.iter().map(|r| r.describe()).collect();
                (
                    alert.element.as_ref().map(|e| e.path.as_str()),
                    records,
                    alert.records_omitted,
                )
            })
            .collect();
        let at = "at Apr 19, 2018 4:32:50 PM";
        assert_eq!(
            listed,
            [
                (
                    Some("detail.responseElements.results[0]"),
                    vec![format!(
                        "customer customer1, dimension Dimension1, quantity 1, {at}: CustomerNotSubscribed"
                    )],
                    Some(2)
                ),
                (
                    Some("detail.responseElements.results[1]"),
                    vec![format!(
                        "customer customer2, dimension Dimension1, quantity 1, {at}: DuplicateRecord"
                    )],
                    Some(2)
                ),
                (
                    Some("detail.responseElements.unprocessedRecords[0]"),
                    vec![format!(
                        "customer customer3, dimension Dimension1, quantity 1, {at}: Unprocessed"
                    )],
                    Some(2)
                ),
            ]
        );
    }

    #[test]
    fn alerts_beyond_the_budget_become_one_summary_saying_how_many() {
        let budget = Budget {
            max_alerts: 5,
            ..Budget::default()
        };
        let body = batch_with_failed_results(40);
        let alerts = alerts_of(
            shipped_rules()
                .body_alerts(&body, budget)
                .expect("evaluates"),
        );
        // 40 failed results and 1 unprocessed record: 5 alerts, then 36 held back in one.
        assert_eq!(alerts.len(), 6);
        let (sent, summary) = alerts.split_at(5);
        for (idx, alert) in sent.iter().enumerate() {
            let element = alert.element.as_ref().expect("a per-element alert");
            assert_eq!(
                element.path,
                format!("detail.responseElements.results[{idx}]")
            );
            assert_eq!(alert.held_back, None);
            // Its own record; the 40 others counted. 40 values of `status`, 25 kept.
            assert_eq!(alert.records.len(), 1);
            assert_eq!(alert.records_omitted, Some(40));
            assert_eq!(alert.matched_omitted, Some(15));
        }
        let summary = &summary[0];
        assert_eq!(summary.held_back, Some(36));
        assert_eq!(summary.element, None);
        assert!(
            summary
                .summary
                .starts_with("36 more alerts of rule metering-record-failed")
        );
        assert_eq!(summary.records_omitted, Some(41));
        // Its id is its own, stable across deliveries.
        assert!(sent.iter().all(|alert| alert.id != summary.id));
        let again = alerts_of(
            shipped_rules()
                .body_alerts(&body, budget)
                .expect("evaluates"),
        );
        assert_eq!(again.last().map(|alert| &alert.id), Some(&summary.id));
    }

    #[test]
    fn a_message_whose_alerts_outgrow_the_byte_budget_is_over_budget() {
        let budget = Budget {
            max_alerts: 100,
            max_bytes: 20_000,
        };
        let body = batch_with_failed_results(40);
        match shipped_rules().body_alerts(&body, budget) {
            Err(BodyError::OverBudget { alerts, max_bytes }) => {
                assert_eq!(max_bytes, 20_000);
                assert!((1..40).contains(&alerts), "{alerts}");
            }
            other => panic!("expected over budget, got {:?}", other.map(alerts_of)),
        }
        // Within the default budget the same message is fine.
        assert!(
            shipped_rules()
                .body_alerts(&body, Budget::default())
                .is_ok()
        );
    }

    pub(super) const HEAD: &str = "[[rule]]\nid = \"r\"\ntitle = \"R\"\nseverity = \"low\"\n";

    /// Rule ids (with element paths) that fire on `event` (any accepted body shape).
    pub(super) fn fired(rule_set: &RuleSet, event: serde_json::Value) -> Vec<String> {
        let events = envelope::decode(&event.to_string()).expect("test events decode");
        let mut fired = Vec::new();
        for event in &events {
            for alert in rule_set.evaluate(event).expect("evaluation succeeds") {
                match alert.element {
                    Some(element) => fired.push(format!("{}@{}", alert.rule, element.path)),
                    None => fired.push(alert.rule.to_string()),
                }
            }
        }
        fired
    }

    pub(super) fn record(detail: serde_json::Value) -> serde_json::Value {
        let mut base = serde_json::json!({
            "eventSource": "metering-marketplace.amazonaws.com",
            "eventName": "MeterUsage",
            "eventID": "e-1",
            "eventTime": "2020-07-10T23:06:42Z",
            "awsRegion": "us-east-1",
            "recipientAccountId": "123456789012",
        });
        for (key, value) in detail.as_object().expect("detail is an object") {
            base[key] = value.clone();
        }
        base
    }

    pub(super) fn rule(body: &str) -> RuleSet {
        load::load_texts(&[("r.toml", &format!("{HEAD}{body}"))]).unwrap_or_else(|e| panic!("{e}"))
    }

    /// An event holding valid JSON a `Value` cannot (see `Event::value`) still raises its
    /// alert; templates that read the whole event say why they cannot, and `explain` is an
    /// error, not a panic.
    #[test]
    fn an_event_a_value_cannot_hold_still_alerts() {
        let rule_set = rule(
            "summary = \"{{ detail.errorCode }} at {{ event.account }}\"\n\
             match.detail.errorCode = [{ exists = true }]\n",
        );
        let body = r#"{"detail-type": "x", "source": "y", "account": "1",
            "detail": {"eventID": "e", "errorCode": "X", "z": 1e400}}"#;
        let events = envelope::decode(body).expect("the envelope decodes");
        let [event] = events.as_slice() else {
            panic!("one event expected");
        };
        let alerts = rule_set.evaluate(event).expect("evaluation succeeds");
        let [alert] = alerts.as_slice() else {
            panic!("one alert expected: {alerts:?}");
        };
        assert_eq!(alert.event_id.as_deref(), Some("e"));
        assert_eq!(alert.summary, "at");
        let note = alert.body.as_deref().unwrap_or_default();
        assert!(
            note.starts_with(
                "(template error: the event cannot be read whole: number out of range"
            ),
            "{note}"
        );
        assert!(rule_set.explain(event, None).is_err());
    }

    #[test]
    fn for_each_raises_one_alert_per_matching_element() {
        let rule_set = rule(
            "match.detail.eventName = [\"BatchMeterUsage\"]\n\
             [[rule.for_each]]\narray = \"detail.responseElements.results\"\nmatch.status = [{ \"anything-but\" = \"Success\" }]\n",
        );
        let event = record(serde_json::json!({
            "eventName": "BatchMeterUsage",
            "responseElements": {"results": [
                {"status": "Success"}, {"status": "DuplicateRecord"}, {"status": "CustomerNotSubscribed"}
            ]}
        }));
        assert_eq!(
            fired(&rule_set, event),
            [
                "r@detail.responseElements.results[1]",
                "r@detail.responseElements.results[2]"
            ]
        );
    }
}
