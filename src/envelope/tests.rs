//! The decoder's tests: every shape from the fixtures (`tests/fixtures/events`), every
//! refusal, and properties over generated and mutated bodies.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::json;

use super::eventbridge::envelope_fast_path;
use super::refused::MAX_KEY_CHARS;
use super::refused::MAX_KEYS_SHOWN;
use super::*;

const SEED_NAMES: [&str; 4] = [
    "meterusage-ami",
    "meterusage-eks",
    "registerusage-eks",
    "batchmeterusage",
];

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events")
}

fn fixture(relative: &str) -> String {
    let path = fixtures_dir().join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

fn decode_ok(relative: &str) -> Vec<Event> {
    decode(&fixture(relative)).unwrap_or_else(|error| panic!("{relative}: {error}"))
}

fn decode_one(relative: &str) -> Event {
    let mut events = decode_ok(relative);
    assert_eq!(events.len(), 1, "{relative}");
    events.remove(0)
}

fn decode_err(body: &str) -> DecodeErrorKind {
    match decode(body) {
        Ok(events) => panic!("decoded into {} events, expected an error", events.len()),
        Err(kind) => kind,
    }
}

/// The file names in a fixture folder, sorted.
fn fixture_names(folder: &str) -> Vec<String> {
    let dir = fixtures_dir().join(folder);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("listing {}: {error}", dir.display()))
        .map(|entry| {
            entry
                .expect("a readable fixture directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// The value of an event decoded from a fixture, which a `Value` holds.
fn whole(event: &Event) -> &Value {
    event.value().expect("a fixture's event is a Value")
}

/// The event's value without EventBridge's `id`, which a synthesized envelope cannot know.
fn without_id(event: &Event) -> Value {
    let mut value = whole(event).clone();
    if let Some(object) = value.as_object_mut() {
        object.remove("id");
    }
    value
}

#[test]
fn each_shape_decodes_to_the_same_event() {
    let batch = decode_ok("envelopes/seed.records.json");
    let sns_batch = decode_ok("envelopes/seed.sns-records.json");
    assert_eq!(batch.len(), SEED_NAMES.len());
    assert_eq!(sns_batch, batch);

    for (idx, name) in SEED_NAMES.iter().enumerate() {
        let eventbridge = decode_one(&format!("envelopes/{name}.eventbridge.json"));
        let sns = decode_one(&format!("envelopes/{name}.sns.json"));
        let bare = decode_one(&format!("envelopes/{name}.cloudtrail.json"));
        let sns_bare = decode_one(&format!("envelopes/{name}.sns-cloudtrail.json"));

        assert_eq!(
            whole(&sns),
            whole(&eventbridge),
            "{name}: SNS-wrapped envelope"
        );
        assert_eq!(bare, sns_bare, "{name}: SNS-wrapped record");
        assert_eq!(batch.get(idx), Some(&bare), "{name}: Records batch");
        assert_eq!(
            without_id(&bare),
            without_id(&eventbridge),
            "{name}: bare record"
        );
        assert_eq!(
            whole(&bare)["id"],
            whole(&bare)["detail"]["eventID"],
            "{name}"
        );
    }
}

#[test]
fn envelope_keeps_its_original_text() {
    for name in SEED_NAMES {
        let relative = format!("envelopes/{name}.eventbridge.json");
        assert_eq!(decode_one(&relative).json(), fixture(&relative));

        let notification: Value =
            serde_json::from_str(&fixture(&format!("envelopes/{name}.sns.json")))
                .expect("an SNS fixture is JSON");
        let sns = decode_one(&format!("envelopes/{name}.sns.json"));
        assert_eq!(Some(sns.json()), notification["Message"].as_str());
    }
}

#[test]
fn event_text_and_value_agree() {
    for folder in ["envelopes", "failing"] {
        for name in fixture_names(folder) {
            for event in decode_ok(&format!("{folder}/{name}")) {
                let reparsed: Value =
                    serde_json::from_str(event.json()).expect("event text is JSON");
                assert_eq!(&reparsed, whole(&event), "{folder}/{name}");
            }
        }
    }
}

#[test]
fn synthesized_envelope_is_what_eventbridge_sends() {
    let event = decode_one("envelopes/registerusage-eks.cloudtrail.json");
    let value = whole(&event);
    assert_eq!(value["version"], "0");
    assert_eq!(value["id"], "cEXAMPLE-e6c2-465d-b47f-150EXAMPLE97");
    assert_eq!(value["detail-type"], "AWS API Call via CloudTrail");
    assert_eq!(value["source"], "aws.metering-marketplace");
    assert_eq!(value["account"], "123456789012");
    assert_eq!(value["time"], "2020-07-23T02:19:46Z");
    assert_eq!(value["region"], "us-east-1");
    assert_eq!(value["resources"], json!([]));
    assert_eq!(value["detail"]["eventName"], "RegisterUsage");
}

#[test]
fn accessors_read_cloudtrail_fields() {
    let event = decode_one("failing/meterusage-throttled.eventbridge.json");
    assert_eq!(
        event.event_id(),
        Some("f0a1b2c3-0000-4000-8000-000000000101")
    );
    assert_eq!(event.event_name(), Some("MeterUsage"));
    assert_eq!(
        event.event_source(),
        Some("metering-marketplace.amazonaws.com")
    );
    assert_eq!(event.error_code(), Some("ThrottlingException"));
    assert_eq!(event.account(), Some("123456789012"));
    assert_eq!(event.region(), Some("us-east-1"));
    assert_eq!(event.event_time(), Some("2020-07-10T23:06:42Z"));
    assert!(whole(&event)["detail"].is_object());

    let success = decode_one("envelopes/meterusage-ami.eventbridge.json");
    assert_eq!(success.error_code(), None);
}

#[test]
fn account_and_region_fall_back_to_the_record_when_the_envelope_lacks_them() {
    let mut envelope: Value =
        serde_json::from_str(&fixture("failing/meterusage-throttled.eventbridge.json"))
            .expect("fixture is JSON");
    envelope["detail"]["recipientAccountId"] = json!("210987654321");
    envelope["detail"]["awsRegion"] = json!("eu-central-1");
    let facts = |envelope: &Value| {
        let events = decode(&envelope.to_string()).expect("an envelope decodes");
        let event = events.first().expect("one event");
        (
            event.account().map(str::to_owned),
            event.region().map(str::to_owned),
        )
    };
    let some = |account: &str, region: &str| (Some(account.to_owned()), Some(region.to_owned()));
    assert_eq!(
        facts(&envelope),
        some("123456789012", "us-east-1"),
        "the envelope's own"
    );

    let object = envelope.as_object_mut().expect("an object");
    object.remove("account");
    object.remove("region");
    assert_eq!(
        facts(&envelope),
        some("210987654321", "eu-central-1"),
        "missing"
    );
    envelope["account"] = json!("");
    envelope["region"] = json!(null);
    assert_eq!(
        facts(&envelope),
        some("210987654321", "eu-central-1"),
        "unusable"
    );

    // The slow path (an SNS-wrapped envelope) reads the same facts.
    let sns = json!({"Type": "Notification", "MessageId": "m", "Message": envelope.to_string()});
    assert_eq!(facts(&sns), some("210987654321", "eu-central-1"), "in SNS");

    // A bare record has no envelope: its synthesized one carries the record's account.
    let record = envelope["detail"].clone();
    assert_eq!(
        facts(&record),
        some("210987654321", "eu-central-1"),
        "bare record"
    );
}

#[test]
fn event_time_falls_back_to_envelope_time() {
    let body = json!({
        "version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2024-01-01T00:00:00Z", "region": "eu-west-1",
        "resources": [], "detail": {}
    });
    let events = decode(&body.to_string()).expect("an envelope without a record decodes");
    let event = events.first().expect("one event");
    assert_eq!(event.event_time(), Some("2024-01-01T00:00:00Z"));
    assert_eq!(event.event_id(), None);
}

#[test]
fn failing_fixtures_decode_as_envelopes() {
    let expected = [
        (
            "batchmeterusage-partial.eventbridge.json",
            "BatchMeterUsage",
            None,
        ),
        (
            "batchmeterusage-stale-timestamp.eventbridge.json",
            "BatchMeterUsage",
            None,
        ),
        (
            "meterusage-dryrun-failed.eventbridge.json",
            "MeterUsage",
            Some("DryRunOperation"),
        ),
        (
            "meterusage-dryrun-success.eventbridge.json",
            "MeterUsage",
            None,
        ),
        (
            "meterusage-invalid-product-code.eventbridge.json",
            "MeterUsage",
            Some("InvalidProductCodeException"),
        ),
        (
            "meterusage-throttled.eventbridge.json",
            "MeterUsage",
            Some("ThrottlingException"),
        ),
        (
            "meterusage-timestamp-out-of-bounds.eventbridge.json",
            "MeterUsage",
            Some("TimestampOutOfBoundsException"),
        ),
        (
            "meterusage-unexpected-principal.eventbridge.json",
            "MeterUsage",
            None,
        ),
        (
            "meterusage-unknown-product-code.eventbridge.json",
            "MeterUsage",
            None,
        ),
        (
            "registerusage-not-entitled.eventbridge.json",
            "RegisterUsage",
            Some("CustomerNotEntitledException"),
        ),
    ];
    let listed: Vec<&str> = expected.iter().map(|(name, _, _)| *name).collect();
    assert_eq!(
        fixture_names("failing"),
        listed,
        "every failing fixture is checked"
    );

    let mut event_ids = Vec::new();
    for (name, event_name, error_code) in expected {
        let relative = format!("failing/{name}");
        let event = decode_one(&relative);
        assert_eq!(event.json(), fixture(&relative), "{name}");
        assert_eq!(event.event_name(), Some(event_name), "{name}");
        assert_eq!(event.error_code(), error_code, "{name}");
        event_ids.push(event.event_id().map(str::to_owned));
    }
    event_ids.sort();
    event_ids.dedup();
    assert_eq!(
        event_ids.len(),
        expected.len(),
        "failing fixtures have distinct eventIDs"
    );
}

#[test]
fn poison_files_give_the_expected_error() {
    let expected: [(&str, &str); 8] = [
        ("not-json.txt", "not_json"),
        ("random-object.json", "unknown_shape"),
        ("record-without-event-id.json", "bad_field"),
        ("records-empty.json", "empty_records"),
        ("seed-with-stray-brackets.json", "not_json"),
        ("sns-message-not-json.json", "sns_message_not_json"),
        ("sns-subscription-confirmation.json", "foreign_shape"),
        ("truncated.json", "not_json"),
    ];
    let listed: Vec<&str> = expected.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        fixture_names("poison"),
        listed,
        "every poison fixture is checked"
    );

    for (name, label) in expected {
        let kind = decode_err(&fixture(&format!("poison/{name}")));
        assert_eq!(kind.label(), label, "{name}: {kind}");
    }
}

/// `LABELS` lists every label a kind can have (metrics start each series at 0 from it).
#[test]
fn every_label_is_listed() {
    let not_json = || serde_json::from_str::<Value>("{").expect_err("not JSON");
    let kinds = [
        DecodeErrorKind::TooLarge { bytes: 0 },
        DecodeErrorKind::NotJson { error: not_json() },
        DecodeErrorKind::NotAnObject { found: "an array" },
        DecodeErrorKind::UnknownShape {
            keys: Vec::new(),
            n_keys: 0,
        },
        DecodeErrorKind::BadField {
            at: Location::Envelope,
            field: "detail",
            expected: "an object",
            found: "nothing",
        },
        DecodeErrorKind::EmptyRecords,
        DecodeErrorKind::RecordNotAnObject {
            at: Location::BatchRecord(0),
            found: "a string",
        },
        DecodeErrorKind::NotAnApiCall {
            at: Location::Record,
            what: "x",
        },
        DecodeErrorKind::Foreign { what: "x" },
        DecodeErrorKind::SnsMessageNotJson { error: not_json() },
        DecodeErrorKind::NestedSns,
    ];
    let labels: Vec<&str> = kinds.iter().map(DecodeErrorKind::label).collect();
    assert_eq!(labels, DecodeErrorKind::LABELS);
}

#[test]
fn poison_errors_say_why() {
    let number = decode_err("7");
    assert!(matches!(
        number,
        DecodeErrorKind::NotAnObject { found: "a number" }
    ));

    let random = decode_err(&fixture("poison/random-object.json"));
    assert_eq!(
        random.to_string(),
        "JSON object with keys [\"hello\", \"count\", \"nested\"] is none of the accepted \
         shapes: expected an EventBridge envelope (`detail-type`, `source`, `detail`), an \
         SNS notification (`Type`: \"Notification\", `Message`), a CloudTrail record \
         (`eventSource`, `eventName`, `eventID`), a CloudTrail batch (`Records`, or a JSON \
         array of records) or `aws cloudtrail lookup-events` output (`Events`)"
    );

    let sns = decode_err(&fixture("poison/sns-message-not-json.json"));
    assert!(
        sns.to_string()
            .starts_with("SNS notification's Message is not JSON: expected value at line 1"),
        "{sns}"
    );

    let no_id = decode_err(&fixture("poison/record-without-event-id.json"));
    assert_eq!(
        no_id.to_string(),
        "CloudTrail record: `eventID` must be a string, found nothing"
    );

    let non_object = decode_err(r#"{"Records": [1, "a"]}"#);
    assert_eq!(
        non_object.to_string(),
        "CloudTrail record Records[0] is a number, not a JSON object"
    );
}

#[test]
fn body_of_exactly_one_mib_is_accepted_and_longer_is_not() {
    let envelope = fixture("envelopes/meterusage-ami.eventbridge.json");
    let padding = " ".repeat(MAX_BODY_BYTES - envelope.len());
    let at_limit = format!("{envelope}{padding}");
    assert_eq!(at_limit.len(), MAX_BODY_BYTES);
    assert!(decode(&at_limit).is_ok());

    let over = format!("{at_limit} ");
    assert!(matches!(
        decode_err(&over),
        DecodeErrorKind::TooLarge { bytes } if bytes == MAX_BODY_BYTES + 1
    ));
}

#[test]
fn unknown_object_lists_a_bounded_number_of_keys() {
    let object: Map<String, Value> = (0..40)
        .map(|idx| (format!("{idx:02}{}", "k".repeat(100)), Value::Null))
        .collect();
    let kind = decode_err(&Value::Object(object).to_string());
    let DecodeErrorKind::UnknownShape { keys, n_keys } = &kind else {
        panic!("expected UnknownShape, got {kind:?}");
    };
    assert_eq!(*n_keys, 40);
    assert_eq!(keys.len(), MAX_KEYS_SHOWN);
    assert!(keys.iter().all(|key| key.chars().count() == MAX_KEY_CHARS));
    assert!(kind.to_string().contains(", … 28 more]"), "{kind}");
}

#[test]
fn account_falls_back_to_user_identity() {
    let mut record: Value =
        serde_json::from_str(&fixture("envelopes/meterusage-eks.cloudtrail.json"))
            .expect("a seed record is JSON");
    if let Some(object) = record.as_object_mut() {
        object.remove("recipientAccountId");
    }
    record["userIdentity"]["accountId"] = json!("111122223333");
    let events = decode(&record.to_string()).expect("a record without recipientAccountId");
    assert_eq!(
        events.first().and_then(Event::account),
        Some("111122223333")
    );

    if let Some(identity) = record["userIdentity"].as_object_mut() {
        identity.remove("accountId");
    }
    assert_eq!(
        decode_err(&record.to_string()).to_string(),
        "CloudTrail record: `recipientAccountId` must be a string (or \
         userIdentity.accountId a string), found nothing"
    );
}

#[test]
fn source_is_aws_dot_first_label_of_event_source() {
    let mut record: Value =
        serde_json::from_str(&fixture("envelopes/meterusage-ami.cloudtrail.json"))
            .expect("a seed record is JSON");
    record["eventSource"] = json!("s3.amazonaws.com");
    let events = decode(&record.to_string()).expect("an S3 record decodes");
    assert_eq!(
        events.first().map(|e| &whole(e)["source"]),
        Some(&json!("aws.s3"))
    );

    record["eventSource"] = json!(".amazonaws.com");
    assert!(matches!(
        decode_err(&record.to_string()),
        DecodeErrorKind::BadField {
            at: Location::Record,
            field: "eventSource",
            ..
        }
    ));
}

fn seed_record(name: &str) -> Value {
    serde_json::from_str(&fixture(&format!("envelopes/{name}.cloudtrail.json")))
        .expect("a seed record is JSON")
}

/// The one event `body` decodes to, and the labels of what it skipped.
fn decoded(body: &str) -> (Vec<Event>, Vec<&'static str>) {
    let decoded = decode_all(body).unwrap_or_else(|error| panic!("{error}"));
    let labels = decoded.skipped.iter().map(DecodeErrorKind::label).collect();
    (decoded.events, labels)
}

#[test]
fn batch_errors_name_the_record_and_cost_the_others_nothing() {
    let mut record = seed_record("meterusage-ami");
    let good = record.clone();
    record["awsRegion"] = json!(7);
    let body = json!({ "Records": [good, record] }).to_string();
    let decoded = decode_all(&body).expect("the good record decodes");
    assert_eq!(decoded.events.len(), 1);
    assert_eq!(
        decoded
            .skipped
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["CloudTrail record Records[1]: `awsRegion` must be a string, found a number"]
    );
    let only_bad = json!({ "Records": [json!({"eventSource": 1})] }).to_string();
    assert_eq!(decode_err(&only_bad).label(), "bad_field");

    let not_array = decode_err(r#"{"Records": {"eventID": "x"}}"#);
    assert!(matches!(
        not_array,
        DecodeErrorKind::BadField {
            at: Location::RecordsBatch,
            field: "Records",
            found: "an object",
            ..
        }
    ));
}

fn insight() -> Value {
    json!({
        "eventVersion": "1.07", "eventTime": "2019-11-14T00:51:00Z",
        "awsRegion": "us-east-1", "eventID": "EXAMPLE8-9621-4d00-b913-beca2EXAMPLE",
        "eventType": "AwsCloudTrailInsight", "recipientAccountId": "123456789012",
        "sharedEventID": "x", "insightDetails": {"state": "Start"}, "eventCategory": "Insight"
    })
}

#[test]
fn records_that_are_not_api_calls_are_skipped_in_every_batch_shape() {
    let record = seed_record("meterusage-ami");
    let versioned_1_0 = {
        let mut old = seed_record("meterusage-eks");
        old.as_object_mut().map(|o| o.remove("eventID"));
        old
    };
    for body in [
        json!({"Records": [insight(), record, versioned_1_0]}),
        json!([insight(), record, versioned_1_0]),
        json!({"Type": "Notification", "Message": json!({"Records": [insight(), record, versioned_1_0]}).to_string()}),
    ] {
        let (events, skipped) = decoded(&body.to_string());
        assert_eq!(events.len(), 1, "{body}");
        assert_eq!(events[0].event_name(), Some("MeterUsage"));
        assert_eq!(skipped, ["not_an_api_call", "bad_field"], "{body}");
    }
    // A batch of Insights events only carries nothing, and is no poison.
    let (events, skipped) = decoded(&json!({"Records": [insight()]}).to_string());
    assert!(events.is_empty());
    assert_eq!(skipped, ["not_an_api_call"]);
    let (events, skipped) = decoded(&insight().to_string());
    assert!(events.is_empty());
    assert_eq!(skipped, ["not_an_api_call"]);
}

#[test]
fn a_byte_order_mark_is_ignored() {
    for name in [
        "envelopes/meterusage-ami.eventbridge.json",
        "envelopes/seed.records.json",
        "envelopes/meterusage-ami.sns.json",
    ] {
        let body = format!("\u{feff}{}", fixture(name));
        assert!(!decode_ok_text(&body).is_empty(), "{name}");
    }
}

fn decode_ok_text(body: &str) -> Vec<Event> {
    decode(body).unwrap_or_else(|error| panic!("{error}"))
}

#[test]
fn a_json_array_of_records_or_envelopes_decodes() {
    let envelope: Value =
        serde_json::from_str(&fixture("failing/meterusage-throttled.eventbridge.json"))
            .expect("JSON");
    let events = decode_ok_text(&json!([seed_record("meterusage-ami"), envelope]).to_string());
    let names: Vec<_> = events.iter().map(|e| e.error_code()).collect();
    assert_eq!(names, [None, Some("ThrottlingException")]);
    assert_eq!(decode_err("[]").label(), "empty_records");
    assert_eq!(
        decode_err("[1]").to_string(),
        "array element [0] is a number, not a JSON object"
    );
}

#[test]
fn lookup_events_output_decodes_its_cloudtrail_events() {
    let record = seed_record("registerusage-eks");
    let body = json!({"Events": [
        {"EventId": "x", "EventName": "RegisterUsage", "CloudTrailEvent": record.to_string()},
        {"EventId": "y", "EventName": "Broken", "CloudTrailEvent": "not json"},
    ], "NextToken": "t"});
    let (events, skipped) = decoded(&body.to_string());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_name(), Some("RegisterUsage"));
    assert_eq!(skipped, ["record_not_an_object"]);
}

#[test]
fn lake_event_times_are_read_as_utc() {
    assert_eq!(
        parse_time("2025-03-26 16:43:57.000000000").map(|t| t.to_string()),
        Some("2025-03-26T16:43:57Z".to_owned())
    );
    assert_eq!(parse_time("2025-03-26").map(|t| t.to_string()), None);
    assert_eq!(
        parse_time("2020-07-10T23:06:42Z").map(|t| t.to_string()),
        Some("2020-07-10T23:06:42Z".to_owned())
    );
}

#[test]
fn refusals_name_the_shape_found() {
    let cases = [
        (
            json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "m"}}]}),
            "a Lambda SNS event",
        ),
        (
            json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]}),
            "an S3 event notification",
        ),
        (
            json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}),
            "a Lambda SQS event",
        ),
        (
            json!({"awsAccountId": "1", "digestStartTime": "x", "digestS3Object": "o"}),
            "a CloudTrail digest file",
        ),
        (
            json!({"Type": "SubscriptionConfirmation", "Message": "m"}),
            "an SNS subscription confirmation",
        ),
    ];
    for (body, what) in cases {
        let kind = decode_err(&body.to_string());
        assert_eq!(kind.label(), "foreign_shape", "{body}");
        assert!(
            kind.to_string().starts_with(&format!("body is {what}")),
            "{kind}"
        );
    }
}

#[test]
fn envelope_fields_are_checked() {
    let kind = decode_err(r#"{"detail-type": "x", "source": "y", "detail": "z"}"#);
    assert_eq!(
        kind.to_string(),
        "EventBridge envelope: `detail` must be an object, found a string"
    );
}

/// Serde's derived structs also read arrays (fields in order): the fast path must not
/// take those for an envelope when the general path does not.
#[test]
fn arrays_are_not_envelopes_on_the_fast_path_either() {
    let top = decode_err(r#"["AWS API Call via CloudTrail", "aws.x", {}]"#);
    assert_eq!(top.label(), "record_not_an_object");
    let detail = decode_err(r#"{"detail-type": "x", "source": "y", "detail": []}"#);
    assert_eq!(
        detail.to_string(),
        "EventBridge envelope: `detail` must be an object, found an array"
    );
}

/// Valid JSON a `Value` cannot hold, in a part the decoder skips, is decoded; reading
/// the whole value then says why it cannot, instead of panicking.
#[test]
fn an_event_a_value_cannot_hold_says_so_when_read_whole() {
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    for odd in ["1e400", deep.as_str()] {
        let body = format!(
            r#"{{"detail-type": "x", "source": "y", "detail": {{"eventID": "e", "z": {odd}}}}}"#
        );
        let events = decode(&body).expect("the envelope decodes");
        let [event] = events.as_slice() else {
            panic!("one event expected");
        };
        assert_eq!(event.event_id(), Some("e"));
        let error = event.value().expect_err("no Value holds it");
        assert!(
            ["number out of range", "recursion limit exceeded"]
                .iter()
                .any(|reason| error.to_string().contains(reason)),
            "{error}"
        );
    }
}

#[test]
fn sns_errors_say_they_are_inside_the_message() {
    let wrap = |message: &str| {
        json!({"Type": "Notification", "MessageId": "m", "TopicArn": "t", "Message": message})
            .to_string()
    };

    let array = decode_err(&wrap("[1, 2]"));
    assert_eq!(
        array.to_string(),
        "in SNS notification's Message: array element [0] is a number, not a JSON object"
    );
    assert_eq!(array.label(), "record_not_an_object");

    let nested = decode_err(&wrap(&wrap("{}")));
    assert!(matches!(nested, DecodeErrorKind::NestedSns));

    let empty = decode_err(&wrap(r#"{"Records": []}"#));
    assert_eq!(empty.label(), "empty_records");

    let no_message = decode_err(r#"{"Type": "Notification", "Message": 3}"#);
    assert_eq!(
        no_message.to_string(),
        "SNS notification: `Message` must be a string, found a number"
    );
}

#[test]
fn decode_error_names_the_message() {
    let kind = decode_err("{}");
    let error = DecodeError::new("0f3e-message", kind);
    let text = error.to_string();
    assert!(text.starts_with("cannot decode SQS message 0f3e-message: JSON object with keys []"));
    assert_eq!(error.kind.label(), "unknown_shape");
}

/// The keys the decoder looks at, and one it ignores.
const DECODER_KEYS: [&str; 15] = [
    "detail-type",
    "source",
    "detail",
    "Type",
    "Message",
    "Records",
    "eventSource",
    "eventName",
    "eventID",
    "eventTime",
    "awsRegion",
    "recipientAccountId",
    "userIdentity",
    "accountId",
    "x",
];

/// Arbitrary JSON built from the keys the decoder looks at, so that generated objects
/// reach every shape's checks, not only "unknown shape".
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop::sample::select(DECODER_KEYS.to_vec());
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![
            "Notification",
            "metering-marketplace.amazonaws.com",
            ".",
            "",
            "{}",
            r#"{"Records":[]}"#,
            "aws.s3",
            "é",
        ])
        .prop_map(Value::from),
        ".*".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner.clone(), 0..6).prop_map(|map| {
                Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
            // An SNS notification whose Message is generated JSON.
            inner.prop_map(|message| {
                json!({"Type": "Notification", "Message": message.to_string()})
            }),
        ]
    })
}

/// Each event's text parses to its value.
fn text_matches_value(events: &[Event]) -> Result<(), TestCaseError> {
    for event in events {
        let reparsed: Value = serde_json::from_str(event.json())
            .map_err(|error| TestCaseError::fail(error.to_string()))?;
        let value = event
            .value()
            .map_err(|error| TestCaseError::fail(error.to_string()))?;
        prop_assert_eq!(&reparsed, value);
    }
    Ok(())
}

proptest! {
    #[test]
    fn decoding_arbitrary_strings_never_panics(body in any::<String>()) {
        let _ = decode(&body);
    }

    #[test]
    fn decoding_arbitrary_json_never_panics_and_text_matches_value(value in json_value()) {
        if let Ok(events) = decode(&value.to_string()) {
            prop_assert!(!events.is_empty());
            text_matches_value(&events)?;
        }
    }

    /// The fast path is only a shortcut: what it decodes, the general path decodes the
    /// same.
    #[test]
    fn the_fast_path_agrees_with_the_general_one(
        name in prop::sample::select(SEED_NAMES.to_vec()),
        key in prop::sample::select(DECODER_KEYS.to_vec()),
        replacement in json_value(),
        detail in json_value(),
    ) {
        let mut record: Value =
            serde_json::from_str(&fixture(&format!("envelopes/{name}.cloudtrail.json")))
                .map_err(|error| TestCaseError::fail(error.to_string()))?;
        record[key] = replacement;
        for body in [
            json!({
                "detail-type": CLOUDTRAIL_DETAIL_TYPE, "source": "aws.metering-marketplace",
                "detail": record
            }),
            json!({"detail-type": "x", "source": "y", "detail": detail}),
            json!(["x", "y", detail]),
        ] {
            let body = body.to_string();
            if let Some(fast) = envelope_fast_path(&body) {
                let general = decode_parsed(&body)
                    .map_err(|error| TestCaseError::fail(error.to_string()))?
                    .events;
                prop_assert_eq!(general.len(), 1);
                prop_assert_eq!(&general[0].json, &fast.json);
                prop_assert_eq!(&general[0].facts, &fast.facts);
            }
        }
    }

    /// Seed records with one field replaced by generated JSON, in each shape: unlike
    /// fully generated JSON, these mostly get past shape detection, so both the success
    /// path and each field check are exercised.
    #[test]
    fn decoding_mutated_records_never_panics_and_text_matches_value(
        name in prop::sample::select(SEED_NAMES.to_vec()),
        key in prop::sample::select(DECODER_KEYS.to_vec()),
        replacement in json_value(),
        shape in 0..4_usize,
    ) {
        let mut record: Value =
            serde_json::from_str(&fixture(&format!("envelopes/{name}.cloudtrail.json")))
                .map_err(|error| TestCaseError::fail(error.to_string()))?;
        record[key] = replacement;
        let body = match shape {
            0 => record,
            1 => json!({ "Records": [record] }),
            2 => json!({ "Type": "Notification", "Message": record.to_string() }),
            _ => json!({
                "detail-type": CLOUDTRAIL_DETAIL_TYPE, "source": "aws.metering-marketplace",
                "detail": record
            }),
        };
        if let Ok(events) = decode(&body.to_string()) {
            prop_assert_eq!(events.len(), 1);
            text_matches_value(&events)?;
        }
    }

    #[test]
    fn decoding_cut_fixtures_never_panics(
        name in prop::sample::select(SEED_NAMES.to_vec()),
        shape in prop::sample::select(vec!["eventbridge", "sns", "cloudtrail"]),
        cut in any::<prop::sample::Index>(),
    ) {
        let body = fixture(&format!("envelopes/{name}.{shape}.json"));
        let chars: Vec<char> = body.chars().collect();
        let prefix: String = chars.iter().take(cut.index(chars.len() + 1)).collect();
        let _ = decode(&prefix);
    }
}
