//! Inhibition, as Alertmanager's `inhibit_rules`: a rule's `inhibits = ["other-rule"]` means
//! that when it raises an alert for an event, the other rule's alerts for that same event
//! are dropped, so that one problem pages once, by its most specific rule.
//!
//! It is judged per event, on what the rules raise, before noise control: an inhibiting
//! alert that dedup, throttle or a threshold then holds back still inhibits, and an
//! inhibited alert still inhibits the rules it names (Alertmanager does the same). Absence
//! rules take no part: their matches are heartbeats, not alerts. `check` refuses an unknown
//! id, a rule inhibiting itself and cycles, which would have two rules silence each other.

use super::{Finding, Rule, Spent};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;
use toml::Spanned;

/// One event's alerts of a rule dropped because another rule's alert inhibits them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inhibited {
    /// The rule whose alerts were dropped.
    pub rule: Arc<str>,
    /// The rule whose alert inhibited them (the first of several).
    pub by: Arc<str>,
    pub event_id: Option<String>,
    /// How many alerts were dropped (several for a `for_each` rule).
    pub alerts: usize,
}

/// What a rule declares, as read from its file, for [`check`].
#[derive(Debug)]
pub(super) struct Declared<'a> {
    pub source: usize,
    pub id: &'a str,
    pub absence: bool,
    pub inhibits: &'a [Spanned<String>],
}

/// A problem with a rule's `inhibits`, where it is written.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Problem {
    pub source: usize,
    pub span: Range<usize>,
    pub rule: String,
    pub message: String,
}

/// Every problem with the rules' `inhibits`: `known` holds every rule id defined (including
/// those of rules that failed to read, which are reported on their own).
pub(super) fn check(rules: &[Declared<'_>], known: &HashSet<&str>) -> Vec<Problem> {
    let absence: HashSet<&str> = rules.iter().filter(|r| r.absence).map(|r| r.id).collect();
    let mut problems = Vec::new();
    let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
    for rule in rules {
        for target in rule.inhibits {
            let name = target.get_ref().as_str();
            let message = if name == rule.id {
                Some("a rule cannot inhibit itself".to_owned())
            } else if !known.contains(name) {
                Some(format!("`inhibits` names `{name}`, which is no rule id"))
            } else if rule.absence {
                Some(
                    "an absence rule cannot inhibit: its matches are heartbeats, not alerts"
                        .to_owned(),
                )
            } else if absence.contains(name) {
                Some(format!(
                    "`{name}` is an absence rule: its matches are heartbeats, never inhibited"
                ))
            } else {
                edges.entry(rule.id).or_default().push(name);
                None
            };
            if let Some(message) = message {
                problems.push(Problem {
                    source: rule.source,
                    span: target.span(),
                    rule: rule.id.to_owned(),
                    message,
                });
            }
        }
    }
    // A cycle is reported once, at the first of its edges in file order.
    let mut reported: HashSet<BTreeSet<&str>> = HashSet::new();
    for rule in rules {
        for target in rule.inhibits {
            let name = target.get_ref().as_str();
            if !edges.get(rule.id).is_some_and(|to| to.contains(&name)) {
                continue;
            }
            let Some(path) = path_between(&edges, name, rule.id) else {
                continue;
            };
            if !reported.insert(path.iter().copied().collect()) {
                continue;
            }
            let chain: Vec<String> = std::iter::once(rule.id)
                .chain(path.iter().copied())
                .map(|id| format!("`{id}`"))
                .collect();
            problems.push(Problem {
                source: rule.source,
                span: target.span(),
                rule: rule.id.to_owned(),
                message: format!(
                    "inhibition cycle: {}: an event that raises them all would page for none",
                    chain.join(" inhibits ")
                ),
            });
        }
    }
    problems
}

/// The rules from `from` to `to` (both included) along `edges`, if `to` can be reached.
fn path_between<'a>(
    edges: &HashMap<&'a str, Vec<&'a str>>,
    from: &'a str,
    to: &'a str,
) -> Option<Vec<&'a str>> {
    let mut came_from: HashMap<&str, &str> = HashMap::new();
    let mut stack = vec![from];
    let mut seen: HashSet<&str> = HashSet::from([from]);
    while let Some(at) = stack.pop() {
        if at == to {
            let mut path = vec![at];
            let mut step = at;
            while let Some(&before) = came_from.get(step) {
                path.push(before);
                step = before;
            }
            path.reverse();
            return Some(path);
        }
        for &next in edges.get(at).into_iter().flatten() {
            if seen.insert(next) {
                came_from.insert(next, at);
                stack.push(next);
            }
        }
    }
    None
}

/// Drops from one event's `findings` the alerts of the rules that a rule among `inhibitors`
/// (rules that raised for the event and inhibit others) inhibits, if it raised an alert;
/// reports each rule dropped in `spent`, whose held-back summaries are kept in step.
pub(super) fn apply(
    inhibitors: &[&Rule],
    event_id: Option<&str>,
    findings: &mut Vec<Finding>,
    spent: &mut Spent,
) {
    let alerted = |rule: &Rule| {
        findings
            .iter()
            .any(|finding| finding.alert.rule == rule.id && !finding.is_heartbeat())
    };
    let mut by: Vec<(&Arc<str>, &Arc<str>)> = Vec::new();
    for inhibitor in inhibitors.iter().filter(|rule| alerted(rule)) {
        for target in &inhibitor.inhibits {
            if !by.iter().any(|(rule, _)| *rule == target) {
                by.push((target, &inhibitor.id));
            }
        }
    }
    if by.is_empty() {
        return;
    }
    let inhibited_by = |finding: &Finding| {
        (!finding.is_heartbeat())
            .then(|| by.iter().find(|(rule, _)| **rule == finding.alert.rule))
            .flatten()
    };
    let event_idx = spent.event_idx;
    let mut kept = Vec::with_capacity(findings.len());
    let mut dropped_before = Vec::with_capacity(findings.len());
    let mut n_dropped = 0;
    for finding in findings.drain(..) {
        dropped_before.push(n_dropped);
        match inhibited_by(&finding) {
            Some(&(rule, inhibitor)) => {
                n_dropped += 1;
                match spent.inhibited.iter_mut().find(|inhibited| {
                    inhibited.rule == *rule && inhibited.event_id.as_deref() == event_id
                }) {
                    Some(inhibited) => inhibited.alerts += 1,
                    None => spent.inhibited.push(Inhibited {
                        rule: Arc::clone(rule),
                        by: Arc::clone(inhibitor),
                        event_id: event_id.map(str::to_owned),
                        alerts: 1,
                    }),
                }
            }
            None => kept.push(finding),
        }
    }
    *findings = kept;
    // A held-back summary of a dropped rule goes with it; the others move up.
    spent.capped.retain_mut(|capped| {
        if capped.event_idx != event_idx {
            return true;
        }
        if by.iter().any(|(rule, _)| **rule == capped.rule) {
            return false;
        }
        if let Some(before) = dropped_before.get(capped.finding_idx) {
            capped.finding_idx -= before;
        }
        true
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Budget, RuleSet};

    fn rule_set(text: &str) -> RuleSet {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, text).expect("write");
        RuleSet::load(&[path]).expect("valid rules")
    }

    /// A rule of id `id` matching every event of `source` "s", with `extra` lines.
    fn rule(id: &str, extra: &str) -> String {
        format!(
            "[[rule]]\nid = \"{id}\"\ntitle = \"{id}\"\nseverity = \"high\"\n\
             match.source = [\"s\"]\n{extra}\n"
        )
    }

    /// The rules that alerted for `body`, and what was inhibited (rule, by, alerts).
    fn raised(rule_set: &RuleSet, body: &str) -> (Vec<String>, Vec<(String, String, usize)>) {
        let found = rule_set
            .body_findings(body, Budget::default())
            .expect("evaluates");
        let alerted = found
            .per_event
            .iter()
            .flat_map(|(_, findings)| findings)
            .map(|finding| finding.alert.rule.to_string())
            .collect();
        let inhibited = found
            .inhibited
            .iter()
            .map(|i| (i.rule.to_string(), i.by.to_string(), i.alerts))
            .collect();
        (alerted, inhibited)
    }

    const EVENT: &str = r#"{"source": "s", "detail-type": "t", "detail": {"eventID": "e-1", "items": [{"ok": false}, {"ok": false}]}}"#;

    #[test]
    fn an_alert_drops_the_alerts_it_inhibits_for_the_same_event_only() {
        let rules = rule_set(&format!(
            "{}{}",
            rule(
                "specific",
                "inhibits = [\"catch-all\"]\n[[rule.where]]\nfield = \"detail.eventID\"\nmatch = [\"e-1\"]"
            ),
            rule("catch-all", ""),
        ));
        assert_eq!(
            raised(&rules, EVENT),
            (
                vec!["specific".to_owned()],
                vec![("catch-all".to_owned(), "specific".to_owned(), 1)]
            )
        );
        // Another event the specific rule does not raise for: the catch-all pages.
        let other = EVENT.replace("e-1", "e-2");
        assert_eq!(
            raised(&rules, &other),
            (vec!["catch-all".to_owned()], vec![])
        );
    }

    #[test]
    fn a_rule_that_matched_but_raised_no_alert_inhibits_nothing() {
        // A `for_each` rule none of whose elements is accepted raises no alert.
        let rules = rule_set(&format!(
            "{}{}",
            rule(
                "per-item",
                "inhibits = [\"catch-all\"]\n[[rule.for_each]]\narray = \"detail.items\"\nmatch.ok = [true]"
            ),
            rule("catch-all", ""),
        ));
        assert_eq!(
            raised(&rules, EVENT),
            (vec!["catch-all".to_owned()], vec![])
        );
        // Two accepted elements: two alerts, and the catch-all's one alert dropped.
        let accepted = EVENT.replace("false", "true");
        assert_eq!(
            raised(&rules, &accepted),
            (
                vec!["per-item".to_owned(), "per-item".to_owned()],
                vec![("catch-all".to_owned(), "per-item".to_owned(), 1)]
            )
        );
    }

    #[test]
    fn an_inhibited_alert_still_inhibits_as_in_alertmanager() {
        let rules = rule_set(&format!(
            "{}{}{}",
            rule("a", "inhibits = [\"b\"]"),
            rule("b", "inhibits = [\"c\"]"),
            rule("c", ""),
        ));
        let (alerted, inhibited) = raised(&rules, EVENT);
        assert_eq!(alerted, ["a"]);
        assert_eq!(inhibited.len(), 2, "{inhibited:?}");
    }

    #[test]
    fn a_held_back_summary_stays_in_step_when_alerts_before_it_are_inhibited() {
        let rules = rule_set(&format!(
            "{}{}",
            rule("catch-all", ""),
            rule(
                "per-item",
                "inhibits = [\"catch-all\"]\n[[rule.for_each]]\narray = \"detail.items\""
            ),
        ));
        let budget = Budget {
            max_alerts: 2,
            ..Budget::default()
        };
        let three_items = EVENT.replace(r#"{"ok": false}]"#, r#"{"ok": false}, {"ok": false}]"#);
        let found = rules
            .body_findings(&three_items, budget)
            .expect("evaluates");
        let alerts: Vec<(String, Option<u64>)> = found
            .per_event
            .iter()
            .flat_map(|(_, findings)| findings)
            .map(|finding| (finding.alert.rule.to_string(), finding.alert.held_back))
            .collect();
        // The catch-all's alert took one place of two; per-item's other two became a summary.
        assert_eq!(
            alerts,
            [
                ("per-item".to_owned(), None),
                ("per-item".to_owned(), Some(2))
            ]
        );
    }

    fn spanned(text: &str, at: usize) -> Spanned<String> {
        Spanned::new(at..at + text.len(), text.to_owned())
    }

    fn messages(rules: &[Declared<'_>]) -> Vec<(String, String)> {
        let known: HashSet<&str> = rules.iter().map(|r| r.id).chain(["other", "c"]).collect();
        check(rules, &known)
            .into_iter()
            .map(|p| (p.rule, p.message))
            .collect()
    }

    #[test]
    fn cycles_of_any_length_are_reported_once() {
        let [ab, bc, ca] = [spanned("b", 1), spanned("c", 2), spanned("a", 3)];
        let rule = |id, inhibits| Declared {
            source: 0,
            id,
            absence: false,
            inhibits,
        };
        let (ab, bc, ca) = (
            std::slice::from_ref(&ab),
            std::slice::from_ref(&bc),
            std::slice::from_ref(&ca),
        );
        assert_eq!(
            messages(&[rule("a", ab), rule("b", bc), rule("c", ca)]),
            [(
                "a".to_owned(),
                "inhibition cycle: `a` inhibits `b` inhibits `c` inhibits `a`: an event that \
                 raises them all would page for none"
                    .to_owned()
            )]
        );
        // Without the closing edge there is no cycle.
        assert_eq!(messages(&[rule("a", ab), rule("b", bc)]), []);
    }

    #[test]
    fn absence_rules_neither_inhibit_nor_are_inhibited() {
        let to_beat = [spanned("beat", 0)];
        let to_other = [spanned("other", 0)];
        let rules = [
            Declared {
                source: 0,
                id: "a",
                absence: false,
                inhibits: &to_beat,
            },
            Declared {
                source: 0,
                id: "beat",
                absence: true,
                inhibits: &to_other,
            },
        ];
        let found = messages(&rules);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].1.contains("`beat` is an absence rule"),
            "{found:?}"
        );
        assert!(found[1].1.starts_with("an absence rule cannot inhibit"));
    }
}
