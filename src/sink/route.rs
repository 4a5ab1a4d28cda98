//! Which sinks an alert goes to: the config's `[[route]]`s, tried in order. The first route
//! whose `severity` and `rules` both match sends the alert to its sinks and ends the search,
//! unless it says `continue = true`; then later routes may add sinks. The last route must
//! match every alert (no `severity`, no `rules`), so nothing is routed by accident of
//! omission; `sinks = []` drops on purpose. Without routes every alert goes to every sink.
//!
//! [`Router::compile`] is also the config's validation of routes: every problem is reported
//! with the byte span of the offending value, for `file:line:col`.

use crate::alert::{Alert, Severity};
use meterwatch_pattern::op::Wildcard;
use serde::Deserialize;
use std::ops::Range;
use toml::Spanned;

/// `[[route]]`: which sinks get the alerts it matches. A route matches an alert when both
/// `severity` and `rules` match (an absent key matches anything).
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The severities this route takes, e.g. `["critical", "high"]`. Absent: any.
    #[schemars(with = "Option<Vec<Severity>>")]
    pub severity: Option<Spanned<Vec<Severity>>>,
    /// The rule ids this route takes; `*` matches any run of characters (`"metering-*"`).
    /// Absent: any.
    #[schemars(with = "Option<Vec<String>>")]
    pub rules: Option<Spanned<Vec<Spanned<String>>>>,
    /// The sinks (names of `[sinks.NAME]`) that get the alerts this route takes; `[]` drops
    /// them.
    #[schemars(with = "Vec<String>")]
    pub sinks: Vec<Spanned<String>>,
    /// After this route matched, keep trying the routes below it (which may add sinks).
    /// Default false: the first matching route is the last.
    #[serde(default)]
    pub r#continue: bool,
}

/// Routes compiled against the sinks, by index into the sink list.
#[derive(Debug, Clone)]
pub struct Router {
    n_sinks: usize,
    /// Empty: every alert to every sink.
    routes: Vec<Route>,
}

#[derive(Debug, Clone)]
struct Route {
    /// `None`: any severity.
    severities: Option<Vec<Severity>>,
    /// `None`: any rule. Each pattern keeps its span for [`Router::unmatched_rules`].
    rules: Option<Vec<(Wildcard, Range<usize>)>>,
    /// Indices into the sinks, each once.
    sinks: Vec<usize>,
    carry_on: bool,
}

/// A route that cannot be used, at the span of the value at fault when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteProblem {
    pub message: String,
    pub span: Option<Range<usize>>,
}

impl RouteProblem {
    fn at(span: Range<usize>, message: String) -> Self {
        RouteProblem {
            message,
            span: Some(span),
        }
    }
}

impl Router {
    /// Every alert to each of `n_sinks` sinks (no routes configured).
    pub fn every_sink(n_sinks: usize) -> Self {
        Router {
            n_sinks,
            routes: Vec::new(),
        }
    }

    /// Compiles `routes` against the sinks named `sink_names` (in the order the daemon holds
    /// them), reporting every problem: unknown or repeated sinks, sinks no route names,
    /// empty lists, bad rule wildcards, a missing final catch-all, unreachable routes.
    pub fn compile(
        routes: &[Spanned<RouteConfig>],
        sink_names: &[&str],
    ) -> Result<Router, Vec<RouteProblem>> {
        if routes.is_empty() {
            return Ok(Router::every_sink(sink_names.len()));
        }
        let mut problems = Vec::new();
        let mut compiled = Vec::with_capacity(routes.len());
        let mut catch_all_before: Option<usize> = None;
        for (route_idx, spanned) in routes.iter().enumerate() {
            let number = route_idx + 1;
            let route = spanned.get_ref();
            if let Some(earlier) = catch_all_before {
                problems.push(RouteProblem::at(
                    spanned.span(),
                    format!(
                        "route {number} is never reached: route {earlier} matches every alert and has no `continue = true`"
                    ),
                ));
            }
            let severities = match &route.severity {
                Some(list) if list.get_ref().is_empty() => {
                    problems.push(RouteProblem::at(
                        list.span(),
                        format!("route {number}: `severity` is empty; leave it out to match any severity"),
                    ));
                    None
                }
                Some(list) => Some(list.get_ref().clone()),
                None => None,
            };
            let rules = match &route.rules {
                Some(list) if list.get_ref().is_empty() => {
                    problems.push(RouteProblem::at(
                        list.span(),
                        format!("route {number}: `rules` is empty; leave it out to match any rule"),
                    ));
                    None
                }
                Some(list) => Some(
                    list.get_ref()
                        .iter()
                        .filter_map(|pattern| match Wildcard::new(pattern.get_ref()) {
                            Ok(wildcard) => Some((wildcard, pattern.span())),
                            Err(error) => {
                                problems.push(RouteProblem::at(
                                    pattern.span(),
                                    format!(
                                        "route {number}: rule pattern `{}`: {error}",
                                        pattern.get_ref()
                                    ),
                                ));
                                None
                            }
                        })
                        .collect(),
                ),
                None => None,
            };
            let mut sinks = Vec::with_capacity(route.sinks.len());
            for name in &route.sinks {
                match sink_names.iter().position(|known| *known == name.get_ref()) {
                    Some(sink_idx) if sinks.contains(&sink_idx) => problems.push(RouteProblem::at(
                        name.span(),
                        format!("route {number}: sink `{}` is listed twice", name.get_ref()),
                    )),
                    Some(sink_idx) => sinks.push(sink_idx),
                    None => problems.push(RouteProblem::at(
                        name.span(),
                        format!(
                            "route {number}: unknown sink `{}`; the sinks are: {}",
                            name.get_ref(),
                            sink_names.join(", ")
                        ),
                    )),
                }
            }
            if route.sinks.is_empty() && route.r#continue {
                problems.push(RouteProblem::at(
                    spanned.span(),
                    format!("route {number} has no sinks and `continue = true`: it does nothing"),
                ));
            }
            let catch_all = route.severity.is_none() && route.rules.is_none();
            if catch_all && !route.r#continue && catch_all_before.is_none() {
                catch_all_before = Some(number);
            }
            compiled.push(Route {
                severities,
                rules,
                sinks,
                carry_on: route.r#continue,
            });
        }
        if let Some(last) = routes.last() {
            let route = last.get_ref();
            if route.severity.is_some() || route.rules.is_some() {
                problems.push(RouteProblem::at(
                    last.span(),
                    format!(
                        "the last route (route {}) must match every alert: leave out `severity` and `rules`, \
                         and list the sinks that get what no other route took (`sinks = []` drops it)",
                        routes.len()
                    ),
                ));
            }
        }
        for (sink_idx, name) in sink_names.iter().enumerate() {
            if !compiled.iter().any(|route| route.sinks.contains(&sink_idx)) {
                problems.push(RouteProblem {
                    message: format!(
                        "sink `{name}` is in no route and would receive nothing; add it to a route's `sinks` or remove it"
                    ),
                    span: None,
                });
            }
        }
        if problems.is_empty() {
            Ok(Router {
                n_sinks: sink_names.len(),
                routes: compiled,
            })
        } else {
            Err(problems)
        }
    }

    /// The sinks `alert` goes to, as indices into the sink list, each once, in route order.
    /// Empty when a route with no sinks took it.
    pub fn select(&self, alert: &Alert) -> Vec<usize> {
        if self.routes.is_empty() {
            return (0..self.n_sinks).collect();
        }
        let mut selected = Vec::new();
        for route in &self.routes {
            if !route.matches(alert) {
                continue;
            }
            for sink_idx in &route.sinks {
                if !selected.contains(sink_idx) {
                    selected.push(*sink_idx);
                }
            }
            if !route.carry_on {
                break;
            }
        }
        selected
    }

    /// Rule patterns that match none of `rule_ids`: most likely typos (checked when the rules
    /// are at hand, by `check --config` and at start-up; a reload may remove a rule a route
    /// names, which is not an error).
    pub fn unmatched_rules<'a>(
        &self,
        rule_ids: impl Iterator<Item = &'a str> + Clone,
    ) -> Vec<RouteProblem> {
        let mut problems = Vec::new();
        for (route_idx, route) in self.routes.iter().enumerate() {
            for (pattern, span) in route.rules.iter().flatten() {
                if !rule_ids.clone().any(|id| pattern.matches(id)) {
                    problems.push(RouteProblem::at(
                        span.clone(),
                        format!(
                            "route {}: rule pattern `{}` matches no loaded rule",
                            route_idx + 1,
                            pattern.as_str()
                        ),
                    ));
                }
            }
        }
        problems
    }
}

impl Route {
    fn matches(&self, alert: &Alert) -> bool {
        self.severities
            .as_ref()
            .is_none_or(|severities| severities.contains(&alert.severity))
            && self.rules.as_ref().is_none_or(|rules| {
                rules
                    .iter()
                    .any(|(pattern, _)| pattern.matches(&alert.rule))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `[[route]]`s of a config file.
    #[derive(Deserialize)]
    struct Routes {
        #[serde(default)]
        route: Vec<Spanned<RouteConfig>>,
    }

    /// `routes` compiled against the sinks email, pager and slack.
    fn router(routes: &str) -> Result<Router, Vec<RouteProblem>> {
        let routes: Routes = toml::from_str(routes).expect("parses");
        Router::compile(&routes.route, &["email", "pager", "slack"])
    }

    /// Sink names for an alert; sinks are held in name order: email 0, pager 1, slack 2.
    fn names(router: &Router, rule: &str, severity: Severity) -> Vec<&'static str> {
        const NAMES: [&str; 3] = ["email", "pager", "slack"];
        router
            .select(&Alert::example(rule, severity))
            .into_iter()
            .map(|idx| NAMES[idx])
            .collect()
    }

    #[test]
    fn no_routes_send_everything_everywhere() {
        let router = router("").expect("valid");
        assert_eq!(
            names(&router, "x", Severity::Info),
            ["email", "pager", "slack"]
        );
    }

    #[test]
    fn first_match_wins_unless_it_continues() {
        let router = router(
            r#"
[[route]]
severity = ["critical"]
sinks = ["pager", "slack"]
continue = true
[[route]]
severity = ["critical", "high"]
rules = ["metering-*"]
sinks = ["slack", "email"]
[[route]]
rules = ["noise-*"]
sinks = []
[[route]]
sinks = ["email"]
"#,
        )
        .expect("valid");
        // Critical: route 1 continues into route 2, which stops; slack only once.
        assert_eq!(
            names(&router, "metering-throttled", Severity::Critical),
            ["pager", "slack", "email"]
        );
        // Critical but not metering-*: route 1, then the catch-all.
        assert_eq!(
            names(&router, "unexpected-principal", Severity::Critical),
            ["pager", "slack", "email"]
        );
        assert_eq!(
            names(&router, "metering-throttled", Severity::High),
            ["slack", "email"]
        );
        assert!(
            names(&router, "noise-x", Severity::High).is_empty(),
            "dropped"
        );
        assert_eq!(names(&router, "other", Severity::Low), ["email"]);
    }

    #[test]
    fn every_problem_is_reported() {
        let problems = router(
            r#"
[[route]]
sinks = ["email"]
[[route]]
severity = []
rules = ["a**"]
sinks = ["nope", "email", "email"]
continue = true
"#,
        )
        .expect_err("invalid");
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "route 2 is never reached: route 1 matches every alert and has no `continue = true`",
                "route 2: `severity` is empty; leave it out to match any severity",
                "route 2: rule pattern `a**`: Consecutive wildcard characters at pos 2",
                "route 2: unknown sink `nope`; the sinks are: email, pager, slack",
                "route 2: sink `email` is listed twice",
                "the last route (route 2) must match every alert: leave out `severity` and `rules`, \
                 and list the sinks that get what no other route took (`sinks = []` drops it)",
                "sink `pager` is in no route and would receive nothing; add it to a route's `sinks` or remove it",
                "sink `slack` is in no route and would receive nothing; add it to a route's `sinks` or remove it",
            ]
        );
        assert!(problems[..6].iter().all(|p| p.span.is_some()));
    }

    #[test]
    fn empty_sinks_with_continue_do_nothing() {
        let problems = router(
            "[[route]]\nseverity = [\"info\"]\nsinks = []\ncontinue = true\n[[route]]\nsinks = [\"email\", \"pager\", \"slack\"]\n",
        )
        .expect_err("invalid");
        assert_eq!(
            problems[0].message,
            "route 1 has no sinks and `continue = true`: it does nothing"
        );
    }
}
