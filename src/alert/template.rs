//! Rule templates: `title`, `summary` and `body` in minijinja, rendered for each alert.
//!
//! A template sees the alert document's fields (`event_name`, `account`, `principal`,
//! `records`, `element`, `matched`...), plus `event` (the whole event), `detail` (the
//! CloudTrail record), `rule` (`id`, `title`, `severity`, `description`) and `lists`.
//! Undefined names render as nothing and may be chained (`detail.x.y`), so a field an event
//! lacks never breaks an alert. Templates are compiled when rules load and rendered once
//! against a sample event, so `meterwatch check` catches what would fail at 3 am.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Value, json};

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
    /// Per rule, the top-level names its templates read: a context holds only those, since
    /// converting a whole event for templates that never look at it would dominate the cost
    /// of an alert.
    names: std::collections::HashMap<String, std::collections::HashSet<String>>,
}

impl Default for Templates {
    fn default() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        // Alerts are plain text (email, Slack markdown), never HTML.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        Templates {
            env,
            names: Default::default(),
        }
    }
}

impl Templates {
    fn name(rule: &str, kind: Kind) -> String {
        format!("{rule}/{}", kind.as_str())
    }

    /// Compiles a rule's template, then renders it against a sample event: a syntax error,
    /// an unknown filter or a type error is reported now, not when an alert is due.
    pub fn add(&mut self, rule: &str, kind: Kind, source: &str) -> Result<(), String> {
        let name = Templates::name(rule, kind);
        self.env
            .add_template_owned(name.clone(), source.to_owned())
            .map_err(|error| describe(&error))?;
        let used = self
            .env
            .get_template(&name)
            .map_err(|error| describe(&error))?
            .undeclared_variables(false);
        self.names.entry(rule.to_owned()).or_default().extend(used);
        self.render(rule, kind, &Templates::context(&sample_context()))
            .map(|_| ())
            .map_err(|error| format!("rendering against a sample event: {error}"))
    }

    /// The top-level names a rule's templates read: what its rendering context must hold.
    pub fn names<'t>(&'t self, rule: &str) -> impl Iterator<Item = &'t str> {
        self.names
            .get(rule)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// A rendering context from a JSON object; made once per alert for all its templates.
    pub fn context(value: &Value) -> minijinja::Value {
        minijinja::Value::from(minijinja::value::Serde(value))
    }

    /// Renders a rule's template, if it has one of that kind.
    pub fn render(
        &self,
        rule: &str,
        kind: Kind,
        context: &minijinja::Value,
    ) -> Result<String, String> {
        let template = self
            .env
            .get_template(&Templates::name(rule, kind))
            .map_err(|error| describe(&error))?;
        template
            .render(context)
            .map(|text| text.trim().to_owned())
            .map_err(|error| describe(&error))
    }

    pub fn has(&self, rule: &str, kind: Kind) -> bool {
        self.env.get_template(&Templates::name(rule, kind)).is_ok()
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
        let names: Vec<&str> = templates.names("r").collect();
        assert!(names.contains(&"detail") && names.contains(&"account"));
        assert!(!names.contains(&"event"));
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
