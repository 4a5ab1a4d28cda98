//! `meterwatch preview`: what every kind of subscriber receives, snapshot-tested for the
//! seed's records (no alert) and for each failing variant (every shipped rule fires in one).

use crate::support::{meterwatch, stderr, stdout};

fn preview(event: &str, format: Option<&str>) -> String {
    let mut args = vec!["preview", "--rules", "rules", "--event", event];
    if let Some(format) = format {
        args.extend(["--format", format]);
    }
    let output = meterwatch(&args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    stdout(&output)
}

#[test]
fn every_format_for_every_failing_variant() {
    let mut names: Vec<String> = std::fs::read_dir("tests/fixtures/events/failing")
        .expect("fixtures")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    for name in names {
        let event = format!("tests/fixtures/events/failing/{name}");
        let snapshot = name.trim_end_matches(".eventbridge.json").to_owned();
        insta::assert_snapshot!(snapshot, preview(&event, None));
    }
}

#[test]
fn seed_records_raise_nothing_to_preview() {
    for seed in [
        "meterusage-ami",
        "meterusage-eks",
        "registerusage-eks",
        "batchmeterusage",
    ] {
        let event = format!("tests/fixtures/events/envelopes/{seed}.eventbridge.json");
        assert_eq!(
            preview(&event, None),
            "no alert: no rule fires for this event\n"
        );
    }
}

#[test]
fn one_format_at_a_time() {
    let event = "tests/fixtures/events/failing/meterusage-unexpected-principal.eventbridge.json";
    let email = preview(event, Some("email"));
    assert!(
        email.contains("--- email") && !email.contains("--- chatbot"),
        "{email}"
    );
    let chatbot = preview(event, Some("chatbot"));
    assert!(
        chatbot.contains("--- chatbot") && !chatbot.contains("--- json"),
        "{chatbot}"
    );
}

#[test]
fn chatbot_notifications_have_every_field_chatbot_requires() {
    let event = "tests/fixtures/events/failing/meterusage-throttled.eventbridge.json";
    let text = preview(event, Some("chatbot"));
    let mut n = 0;
    for line in text.lines().filter(|line| line.starts_with('{')) {
        let notification: serde_json::Value = serde_json::from_str(line).expect("JSON");
        assert_eq!(notification["version"], "1.0");
        assert_eq!(notification["source"], "custom");
        assert_eq!(notification["content"]["textType"], "client-markdown");
        for key in ["title", "description"] {
            assert!(
                notification["content"][key]
                    .as_str()
                    .is_some_and(|s| !s.is_empty()),
                "{key}"
            );
        }
        assert!(
            notification["content"]["nextSteps"]
                .as_array()
                .is_some_and(|s| !s.is_empty())
        );
        assert!(
            notification["metadata"]["threadId"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
        n += 1;
    }
    assert_eq!(n, 1, "one alert, one notification");
}

/// The README's email and Slack examples are `preview` output, not hand-written: the email
/// block verbatim, and the Slack rendering's summary, fields and next steps from the Chatbot
/// notification (Slack shows `*bold*` as bold and `<url|text>` as a link).
#[test]
fn readme_examples_are_preview_output() {
    let readme = std::fs::read_to_string("README.md").expect("README");
    let event = "tests/fixtures/events/failing/meterusage-unexpected-principal.eventbridge.json";
    let email = preview(event, Some("email"));
    let start = readme.find("**Email**").expect("an email example");
    let block = &readme[start..];
    let block = &block[block.find("```text\n").expect("a text block") + 8..];
    let block = &block[..block.find("```").expect("closed")];
    assert!(email.contains(block), "README email differs from:\n{email}");

    let chatbot = preview(event, Some("chatbot"));
    let line = chatbot
        .lines()
        .find(|line| line.starts_with('{'))
        .expect("a notification");
    let notification: serde_json::Value = serde_json::from_str(line).expect("JSON");
    let slack = &readme[readme.find("**Slack**").expect("a Slack example")..];
    let description = notification["content"]["description"]
        .as_str()
        .expect("description");
    for line in description.lines().filter(|line| !line.starts_with('<')) {
        let shown = format!("> {}", line.replace('*', "**"));
        assert!(
            slack.contains(shown.trim_end()),
            "{shown:?} not in the README"
        );
    }
    for step in notification["content"]["nextSteps"]
        .as_array()
        .expect("next steps")
    {
        assert!(slack.contains(step.as_str().expect("text")), "{step}");
    }
}
