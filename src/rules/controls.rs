//! `[rule.dedup]`, `[rule.throttle]`, `[rule.group]`, `[rule.threshold]`, `[rule.absence]` →
//! a rule's [`Controls`], with the same precise diagnostics as the rest of the rule.

use super::file::{AbsenceDef, DedupDef, GroupDef, ThresholdDef, ThrottleDef};
use super::load::RuleContext;
use crate::state::{Controls, Gate, GroupBy, absence, dedup, group, threshold, throttle};
use std::time::Duration;
use toml::Spanned;

/// The most a threshold may count: the matches it keeps per group are bounded.
const MAX_THRESHOLD_COUNT: i64 = 1_000;

impl RuleContext<'_> {
    /// Compiles the rule's noise controls; a problem is reported and leaves the default.
    pub(super) fn controls(
        &mut self,
        dedup: &Option<Spanned<DedupDef>>,
        throttle: &Option<Spanned<ThrottleDef>>,
        group: &Option<Spanned<GroupDef>>,
        threshold: &Option<Spanned<ThresholdDef>>,
        absence: &Option<Spanned<AbsenceDef>>,
    ) -> Controls {
        let mut controls = Controls::standard();
        if let Some(def) = dedup {
            let def = def.get_ref();
            let window = self.duration_or(&def.window, dedup::DEFAULT_WINDOW);
            controls.dedup = def.enabled.then_some(window);
        }
        let present: Vec<(&str, std::ops::Range<usize>)> = [
            ("throttle", throttle.as_ref().map(Spanned::span)),
            ("group", group.as_ref().map(Spanned::span)),
            ("threshold", threshold.as_ref().map(Spanned::span)),
            ("absence", absence.as_ref().map(Spanned::span)),
        ]
        .into_iter()
        .filter_map(|(name, span)| span.map(|span| (name, span)))
        .collect();
        if let [(first, _), (second, span), ..] = present.as_slice() {
            self.error(
                Some(span.clone()),
                format!(
                    "a rule takes one of `throttle`, `group`, `threshold` and `absence`; found `{first}` and `{second}`: split it into two rules"
                ),
            );
            return controls;
        }
        if let Some(def) = throttle {
            let def = def.get_ref();
            let group_by = self.group_by(&def.group_by);
            if let Some(interval) = self.positive(&def.interval) {
                controls.gate = Gate::Throttle(throttle::Spec { group_by, interval });
            }
        } else if let Some(def) = group {
            let def = def.get_ref();
            controls.gate = Gate::Group(group::Spec {
                group_by: self.group_by(&def.group_by),
                wait: self.duration_or(&def.wait, group::DEFAULT_WAIT),
                interval: self.duration_or(&def.interval, group::DEFAULT_INTERVAL),
            });
        } else if let Some(def) = threshold {
            let def = def.get_ref();
            let group_by = self.group_by(&def.group_by);
            let count = *def.count.get_ref();
            if !(1..=MAX_THRESHOLD_COUNT).contains(&count) {
                self.error(
                    Some(def.count.span()),
                    format!("`count` must be between 1 and {MAX_THRESHOLD_COUNT}, not {count}"),
                );
            }
            let window = self.positive(&def.window);
            if let (Some(window), Ok(count)) = (window, u32::try_from(count)) {
                controls.gate = Gate::Threshold(threshold::Spec {
                    group_by,
                    count,
                    window,
                });
            }
        } else if let Some(def) = absence {
            let span = def.span();
            let def = def.get_ref();
            if def.group_by.is_empty() {
                self.error(
                    Some(span.clone()),
                    "`absence` needs `group_by`: the fields naming what must keep metering, e.g. [\"detail.requestParameters.productCode\"]".into(),
                );
            }
            let group_by = self.group_by(&def.group_by);
            let expected = def
                .expected_list
                .as_ref()
                .and_then(|name| self.expected(name));
            if def.expected_list.is_none() && !def.learn {
                self.error(
                    Some(span),
                    "`absence` has no keys to watch: name an `expected_list`, or set `learn = true` to watch every key seen".into(),
                );
            }
            controls.gate = Gate::Absence(absence::Spec {
                group_by,
                interval: self.duration_or(&def.interval, absence::DEFAULT_INTERVAL),
                grace: self.duration_or(&def.grace, absence::DEFAULT_GRACE),
                expected,
                learn: def.learn,
            });
            // Heartbeats are idempotent; remembering each one's id would only cost writes.
            controls.dedup = None;
        }
        controls
    }

    fn group_by(&mut self, paths: &[Spanned<String>]) -> GroupBy {
        let fields = paths
            .iter()
            .filter_map(|path| self.field(path.get_ref(), &path.span()))
            .collect();
        GroupBy { fields }
    }

    fn positive(&mut self, text: &Spanned<String>) -> Option<Duration> {
        let duration = self.duration(text)?;
        // Positive, so it converts; the fallback is never taken.
        Some(Duration::try_from(duration).unwrap_or(Duration::ZERO))
    }

    fn duration_or(&mut self, text: &Option<Spanned<String>>, default: Duration) -> Duration {
        match text {
            Some(text) => self.positive(text).unwrap_or(default),
            None => default,
        }
    }

    /// The entries of the list `name`, which must exist and hold exact values (a wildcard
    /// cannot name a key to expect).
    fn expected(&mut self, name: &Spanned<String>) -> Option<(String, Vec<String>)> {
        let Some(list) = self.lists.get(name.get_ref()) else {
            let known: Vec<&str> = self.lists.keys().map(String::as_str).collect();
            self.error(
                Some(name.span()),
                format!(
                    "unknown list `{}`; defined lists: {}",
                    name.get_ref(),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            );
            return None;
        };
        let entries = list.entries().to_vec();
        if let Some(wildcard) = entries.iter().find(|entry| entry.contains('*')) {
            self.error(
                Some(name.span()),
                format!(
                    "list `{}` has the wildcard entry `{wildcard}`; an expected list names keys exactly",
                    name.get_ref()
                ),
            );
            return None;
        }
        Some((name.get_ref().clone(), entries))
    }
}
