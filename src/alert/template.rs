//! Rule templates: `title`, `summary` and `body` in minijinja, rendered for each alert.
//!
//! A template sees the alert document's fields (`event_name`, `account`, `principal`,
//! `records`, `element`, `matched`...), plus `event` (the whole event), `detail` (the
//! CloudTrail record), `rule` (`id`, `title`, `severity`, `description`) and `lists`.
//! Undefined names render as nothing and may be chained (`detail.x.y`), so a field an event
//! lacks never breaks an alert. Templates are compiled when rules load and rendered once
//! against a sample event, so `meterwatch check` catches what would fail at 3 am.

use minijinja::{Environment, UndefinedBehavior};
use rustc_hash::FxHashMap;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Which template of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Title,
    Summary,
    Body,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Title => "title",
            Kind::Summary => "summary",
            Kind::Body => "body",
        }
    }
}

/// The summary of a rule without one: who did what where, and how it failed.
pub const DEFAULT_SUMMARY: &str = "{{ event_name or 'A metering call' }}\
{% if principal %} by {{ principal.arn or principal.role_arn }}{% endif %}\
{% if account %} in account {{ account }}{% endif %}\
{% if region %} ({{ region }}){% endif %}\
{% if error_code %} failed with {{ error_code }}{% endif %}\
{% if element %}: {{ element.path }}{% endif %}.";

/// Every rule's templates, compiled once.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    rules: FxHashMap<String, RuleTemplates>,
}

/// One rule's templates.
#[derive(Debug, Default)]
struct RuleTemplates {
    /// The top-level names its templates read: a context holds only those, since converting
    /// a whole event for templates that never look at it would dominate the cost of an
    /// alert. Shared, so a context's keys are not copied for each alert.
    names: BTreeSet<Arc<str>>,
    /// Per [`Kind`], what renders it.
    kinds: [Option<Source>; 3],
}

/// What a rule's template of one kind renders from.
#[derive(Debug)]
enum Source {
    /// Text without template syntax (most titles), as rendering would give it: rendered
    /// once per alert through minijinja, it would cost as much as a real template.
    Text(String),
    /// The template's name in the environment.
    Template(String),
}

impl Default for Templates {
    fn default() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        // Alerts are plain text (email, Slack markdown), never HTML.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        Templates {
            env,
            rules: FxHashMap::default(),
        }
    }
}

impl Kind {
    fn idx(self) -> usize {
        match self {
            Kind::Title => 0,
            Kind::Summary => 1,
            Kind::Body => 2,
        }
    }
}

impl Templates {
    /// Compiles a rule's template, then renders it against a sample event: a syntax error,
    /// an unknown filter or a type error is reported now, not when an alert is due.
    pub fn add(&mut self, rule: &str, kind: Kind, source: &str) -> Result<(), String> {
        let name = format!("{rule}/{}", kind.as_str());
        self.env
            .add_template_owned(name.clone(), source.to_owned())
            .map_err(|error| describe(&error))?;
        let template = self
            .env
            .get_template(&name)
            .map_err(|error| describe(&error))?;
        let used = template.undeclared_variables(false);
        let rendered = template
            .render(Templates::context(&sample_context()))
            .map_err(|error| format!("rendering against a sample event: {}", describe(&error)))?;
        let is_text = !["{{", "{%", "{#"].iter().any(|open| source.contains(open));
        let entry = self.rules.entry(rule.to_owned()).or_default();
        entry.names.extend(used.into_iter().map(Arc::from));
        entry.kinds[kind.idx()] = Some(if is_text {
            Source::Text(rendered.trim().to_owned())
        } else {
            Source::Template(name)
        });
        Ok(())
    }

    /// The top-level names a rule's templates read: what its rendering context must hold.
    pub fn names<'t>(&'t self, rule: &str) -> impl Iterator<Item = &'t Arc<str>> {
        self.rules
            .get(rule)
            .into_iter()
            .flat_map(|templates| &templates.names)
    }

    /// A rendering context from a JSON object; made once per alert for all its templates.
    pub fn context(value: &Value) -> minijinja::Value {
        minijinja::Value::from(minijinja::value::Serde(value))
    }

    /// Renders a rule's template of one kind, trimmed.
    pub fn render(
        &self,
        rule: &str,
        kind: Kind,
        context: &minijinja::Value,
    ) -> Result<String, String> {
        match self.source(rule, kind) {
            None => Err(format!("{rule} has no {} template", kind.as_str())),
            Some(Source::Text(text)) => Ok(text.clone()),
            Some(Source::Template(name)) => self
                .env
                .get_template(name)
                .and_then(|template| template.render(context))
                .map(|text| text.trim().to_owned())
                .map_err(|error| describe(&error)),
        }
    }

    pub fn has(&self, rule: &str, kind: Kind) -> bool {
        self.source(rule, kind).is_some()
    }

    fn source(&self, rule: &str, kind: Kind) -> Option<&Source> {
        self.rules.get(rule)?.kinds[kind.idx()].as_ref()
    }
}

/// A minijinja error as one line, with its line in the template when known.
fn describe(error: &minijinja::Error) -> String {
    let detail = error.detail().map(|d| format!(": {d}")).unwrap_or_default();
    match error.line() {
        Some(line) => format!("{}{detail} (template line {line})", error.kind()),
        None => format!("{}{detail}", error.kind()),
    }
}

/// What templates are rendered with at load time: a failed MeterUsage by an assumed role.
fn sample_context() -> Value {
    let detail = json!({
        "eventSource": "metering-marketplace.amazonaws.com",
        "eventName": "MeterUsage",
        "eventID": "00000000-0000-4000-8000-000000000000",
        "eventTime": "2020-07-10T23:06:42Z",
        "awsRegion": "us-east-1",
        "recipientAccountId": "123456789012",
        "errorCode": "ThrottlingException",
        "errorMessage": "Rate exceeded",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": "arn:aws:sts::123456789012:assumed-role/metering/session",
            "accountId": "123456789012",
            "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::123456789012:role/metering"}}
        },
        "requestParameters": {
            "productCode": "prod-example", "usageDimension": "users", "usageQuantity": 1,
            "timestamp": "Jul 10, 2020 11:06:41 PM"
        },
        "responseElements": null
    });
    json!({
        "event_name": "MeterUsage",
        "event_id": "00000000-0000-4000-8000-000000000000",
        "event_time": "2020-07-10T23:06:42Z",
        "account": "123456789012",
        "region": "us-east-1",
        "error_code": "ThrottlingException",
        "error_message": "Rate exceeded",
        "principal": {"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/metering/session",
                      "role_arn": "arn:aws:iam::123456789012:role/metering", "account_id": "123456789012"},
        "product_code": "prod-example",
        "records": [{"customer": null, "dimension": "users", "quantity": 1,
                     "timestamp": "Jul 10, 2020 11:06:41 PM", "status": null}],
        "matched": {"detail.errorCode": "ThrottlingException"},
        "element": null,
        "severity": "high",
        "rule": {"id": "sample", "title": "Sample", "severity": "high", "description": ""},
        "lists": {},
        "detail": detail.clone(),
        "event": {"version": "0", "detail-type": "AWS API Call via CloudTrail",
                  "source": "aws.metering-marketplace", "account": "123456789012",
                  "region": "us-east-1", "time": "2020-07-10T23:06:42Z", "detail": detail},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_fields_and_tolerate_missing_ones() {
        let mut templates = Templates::default();
        templates
            .add(
                "r",
                Kind::Summary,
                "{{ event_name }} by {{ principal.arn }}{{ detail.no.such }}",
            )
            .expect("valid");
        let text = templates
            .render("r", Kind::Summary, &Templates::context(&sample_context()))
            .expect("renders");
        assert_eq!(
            text,
            "MeterUsage by arn:aws:sts::123456789012:assumed-role/metering/session"
        );
    }

    #[test]
    fn syntax_errors_and_unknown_filters_are_caught_when_added() {
        let mut templates = Templates::default();
        let syntax = templates
            .add("r", Kind::Title, "{{ event_name ")
            .expect_err("syntax");
        assert!(syntax.contains("syntax error"), "{syntax}");
        let filter = templates
            .add("q", Kind::Body, "{{ event_name | no_such_filter }}")
            .expect_err("unknown filter");
        assert!(
            filter.contains("no_such_filter") || filter.contains("unknown filter"),
            "{filter}"
        );
    }

    #[test]
    fn the_names_templates_read_are_known() {
        let mut templates = Templates::default();
        templates
            .add("r", Kind::Title, "{{ detail.errorCode }} in {{ account }}")
            .expect("valid");
        let names: Vec<&str> = templates.names("r").map(|name| &**name).collect();
        assert!(names.contains(&"detail") && names.contains(&"account"));
        assert!(!names.contains(&"event"));
    }

    #[test]
    fn text_without_template_syntax_renders_as_itself() {
        let mut templates = Templates::default();
        templates
            .add("r", Kind::Title, "  Metering call failed \n")
            .expect("valid");
        templates
            .add("r", Kind::Summary, "In {{ account }}")
            .expect("valid");
        let context = Templates::context(&sample_context());
        assert_eq!(
            templates.render("r", Kind::Title, &context).as_deref(),
            Ok("Metering call failed")
        );
        assert_eq!(
            templates.render("r", Kind::Summary, &context).as_deref(),
            Ok("In 123456789012")
        );
        assert!(!templates.has("r", Kind::Body));
        assert!(templates.render("r", Kind::Body, &context).is_err());
    }

    #[test]
    fn the_default_summary_says_who_what_where() {
        let mut templates = Templates::default();
        templates
            .add("r", Kind::Summary, DEFAULT_SUMMARY)
            .expect("valid");
        assert_eq!(
            templates
                .render("r", Kind::Summary, &Templates::context(&sample_context()))
                .expect("renders"),
            "MeterUsage by arn:aws:sts::123456789012:assumed-role/metering/session in account \
             123456789012 (us-east-1) failed with ThrottlingException."
        );
    }
}
