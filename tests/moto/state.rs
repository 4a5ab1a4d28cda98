//! Noise control with the DynamoDB store, end to end: real daemon processes sharing one table
//! in moto, created as the deploy templates create it.

use super::support::{self, Daemon, Moto, dynamodb_state, expected_alerts, write_config};
use super::{ALERT_TIMEOUT, RULES, numbered_events, send_batches};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Distinct CloudTrail events (event ids) of the dedup scenario.
const N_DISTINCT: usize = 700;
/// Messages in all: the rest repeat an event already sent.
const N_MESSAGES: usize = 1000;

/// A directory of its own per daemon: `Daemon::start` logs next to the config.
fn daemon_dir(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir(&path).unwrap();
    path
}

/// `N_DISTINCT` events, then `N_MESSAGES - N_DISTINCT` repeats interleaved among them, each a
/// message of its own (as SQS and EventBridge redeliveries are): some right after their
/// original (likely the same receive batch, processed concurrently), some a few messages
/// later (the other replica, while the first still holds the claim), some far behind (long
/// after the alert was confirmed).
fn with_duplicates(distinct: &[String]) -> Vec<String> {
    const DISTANCES: [usize; 4] = [0, 3, 25, 250];
    let n_duplicates = N_MESSAGES - distinct.len();
    let mut keyed: Vec<(usize, &String)> = distinct
        .iter()
        .enumerate()
        .map(|(idx, body)| (idx * 10, body))
        .collect();
    // Every other event up to `n_duplicates` pairs is repeated once, at one of the distances.
    let step = distinct.len() as f64 / n_duplicates as f64;
    for dup_idx in 0..n_duplicates {
        let original = (dup_idx as f64 * step) as usize;
        let distance = DISTANCES[dup_idx % DISTANCES.len()];
        keyed.push(((original + distance) * 10 + 5, &distinct[original]));
    }
    keyed.sort_by_key(|(key, _)| *key);
    keyed.into_iter().map(|(_, body)| body.clone()).collect()
}

fn sum(daemons: &[&Daemon], name: &str, labels: &str) -> f64 {
    daemons.iter().map(|d| d.metric(name, labels)).sum()
}

/// Issue 8's acceptance: two replicas on one queue and one DynamoDB table send exactly one
/// alert per dedup key (rule, event id, element: the alert `id`) across 1,000 messages of
/// which 300 repeat an earlier event.
#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_on_one_table_alert_once_per_dedup_key() {
    let started = Instant::now();
    let moto = Moto::start().await;
    let clients = moto.clients().await;
    let resources = clients.create_resources("replicas", 1000, true).await;
    let table = clients.create_state_table("replicas-state").await;
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, RULES).unwrap();
    let state = dynamodb_state(&table);
    // A visibility timeout of 10 s rather than 2: under this load moto can lag a renewal past
    // a 2 s timeout, and the message is then received again: a repeat that dedup absorbs, at
    // the cost of another round of requests.
    let config = |name: &str| {
        let path = write_config(&daemon_dir(dir.path(), name), &resources, &rules, &state);
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace(
            "visibility_timeout_secs = 2",
            "visibility_timeout_secs = 10",
        );
        assert!(text.contains("visibility_timeout_secs = 10"));
        std::fs::write(&path, text).unwrap();
        path
    };
    let mut a = Daemon::start(&moto, &config("a")).await;
    let mut b = Daemon::start(&moto, &config("b")).await;

    let distinct = numbered_events("dup", N_DISTINCT);
    let bodies = with_duplicates(&distinct);
    assert_eq!(bodies.len(), N_MESSAGES);
    let expected = expected_alerts(&rules, &distinct);
    let n_expected: usize = expected.values().sum();
    assert_eq!(n_expected, N_DISTINCT, "one alert per event: {expected:?}");
    let sent = Instant::now();
    send_batches(&clients, &resources.queue_url, &bodies).await;

    // Generous: moto serves ~30 requests a second here, and the run needs ~4,000 of them.
    let timeout = Duration::from_secs(480);
    let mut alerts = clients.alerts(&resources, n_expected, timeout).await;
    support::eventually("the source queue to be empty", timeout, || async {
        (clients.queue_depth(&resources.queue_url).await == 0).then_some(())
    })
    .await;
    let delivered = sent.elapsed();
    let daemons = [&a, &b];
    let published = sum(&daemons, "meterwatch_alerts_published_total", "");
    let duplicates = sum(
        &daemons,
        "meterwatch_alerts_suppressed_total",
        "reason=\"duplicate\"",
    );
    let in_flight = sum(
        &daemons,
        "meterwatch_messages_failed_total",
        "reason=\"in_flight\"",
    );
    let deleted = [&a, &b].map(|d| d.metric("meterwatch_messages_deleted_total", ""));
    let state_errors = sum(&daemons, "meterwatch_state_errors_total", "");
    // Once both have drained and exited nothing more can be published: whatever is on the
    // alerts queue now is everything they sent.
    for daemon in [&a, &b] {
        daemon.sigterm();
    }
    for daemon in [&mut a, &mut b] {
        assert!(daemon.wait(Duration::from_secs(30)).await.success());
    }
    for body in clients.drain(&resources.alerts_queue_url).await {
        alerts.push(serde_json::from_str(&body).unwrap());
    }

    let mut per_id: HashMap<String, usize> = HashMap::new();
    for alert in &alerts {
        *per_id
            .entry(alert["id"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    let repeated: BTreeMap<&String, &usize> = per_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "alerts sent more than once: {repeated:?}\n--- a ---\n{}\n--- b ---\n{}",
        a.logs(),
        b.logs()
    );
    assert_eq!(per_id.len(), N_DISTINCT);
    assert_eq!(alerts.len(), N_DISTINCT);
    assert_eq!(support::alert_counts(&alerts), expected);
    assert_eq!(published, N_DISTINCT as f64);
    assert!(
        duplicates >= (N_MESSAGES - N_DISTINCT) as f64,
        "every repeat was recognised: {duplicates}"
    );
    assert!(
        deleted.iter().all(|n| *n > 0.0),
        "both replicas took part: {deleted:?}"
    );
    // What the table holds: one confirmed dedup entry per alert id.
    let items = clients.state_items(&table).await;
    let confirmed = items
        .iter()
        .filter(|item| item["entry"].as_s().unwrap().contains("\"sent\""))
        .count();
    assert_eq!(
        (items.len(), confirmed),
        (N_DISTINCT, N_DISTINCT),
        "{:?}",
        items.first()
    );
    assert!(
        items
            .iter()
            .all(|item| item["expires_at"].as_n().unwrap().parse::<i64>().is_ok())
    );
    eprintln!(
        "two replicas, DynamoDB dedup: {N_MESSAGES} messages ({N_DISTINCT} distinct events) → \
         {} alerts, at most 1 per id; delivered and deleted in {:.1} s (test {:.1} s); \
         deleted per replica {deleted:?}; duplicates suppressed {duplicates}; left for \
         redelivery while a claim stood {in_flight}; state errors {state_errors}",
        alerts.len(),
        delivered.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
}

/// An absence rule that allows 12 s of silence (checked every 1.2 s).
const STOPPED: &str = r#"
[[rule]]
id = "metering-stopped"
title = "Metering stopped for {{ product_code }}"
severity = "critical"
match.detail.eventName = ["MeterUsage", "BatchMeterUsage"]
match.detail.errorCode = [{ exists = false }]

[rule.absence]
group_by = ["detail.requestParameters.productCode"]
interval = "10s"
grace = "2s"
learn = true
"#;
const PRODUCT: &str = "prod-restart";
const CHECK_PERIOD: Duration = Duration::from_millis(1200);

/// A successful MeterUsage call of `PRODUCT`, happening now.
fn heartbeat(event_id: &str) -> (String, String) {
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap();
    let mut event: serde_json::Value = serde_json::from_str(&support::fixture(
        "envelopes/meterusage-eks.eventbridge.json",
    ))
    .unwrap();
    event["time"] = serde_json::json!(now.to_string());
    event["detail"]["eventTime"] = serde_json::json!(now.to_string());
    event["detail"]["eventID"] = serde_json::json!(event_id);
    event["detail"]["requestParameters"]["productCode"] = serde_json::json!(PRODUCT);
    (event.to_string(), now.to_string())
}

/// Issue 8's acceptance: with DynamoDB state, a daemon restarted while a product is silent
/// alerts exactly once when the silence runs out, a further restart does not alert again,
/// and the next successful call sends exactly one resolved notice.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_mid_absence_alerts_once_and_resuming_resolves_once() {
    let started = Instant::now();
    let moto = Moto::start().await;
    let clients = moto.clients().await;
    let resources = clients.create_resources("absence", 1000, true).await;
    let table = clients.create_state_table("absence-state").await;
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, STOPPED).unwrap();
    let state = dynamodb_state(&table);
    let config =
        |name: &str| write_config(&daemon_dir(dir.path(), name), &resources, &rules, &state);
    let (config_a, config_b, config_c) = (config("a"), config("b"), config("c"));

    // The first daemon sees the product's heartbeat (and learns the key), then stops before
    // the 12 s of allowed silence run out.
    let mut first = Daemon::start(&moto, &config_a).await;
    let (body, beat_time) = heartbeat("beat-1");
    clients.send(&resources.queue_url, &body).await;
    support::eventually("the heartbeat to be recorded", ALERT_TIMEOUT, || async {
        (first.metric("meterwatch_heartbeats_total", "") >= 1.0
            && clients.queue_depth(&resources.queue_url).await == 0)
            .then_some(())
    })
    .await;
    first.sigterm();
    assert!(first.wait(Duration::from_secs(30)).await.success());
    let early = clients.drain(&resources.alerts_queue_url).await;
    assert!(
        early.is_empty(),
        "the first daemon stopped before the deadline, without alerting: {early:?}"
    );

    // A new process knows the key and its last heartbeat only from the table (the rule has
    // no expected list): its alert names the heartbeat's time.
    let mut second = Daemon::start(&moto, &config_b).await;
    let fired = clients
        .alerts(&resources, 1, Duration::from_secs(60))
        .await
        .remove(0);
    let fired_after = started.elapsed();
    assert_eq!(fired["rule"], "metering-stopped");
    assert_eq!(fired["status"], "firing");
    assert_eq!(fired["product_code"], PRODUCT);
    let summary = fired["summary"].as_str().unwrap();
    assert!(
        summary.contains(&beat_time) && !summary.contains("none seen yet"),
        "the absence is counted from the stored heartbeat at {beat_time}: {summary}"
    );
    // A few more checks by it, then by a third process after another restart: nothing more.
    support::eventually(
        "the second daemon to count the absence",
        ALERT_TIMEOUT,
        || async { (second.metric("meterwatch_absences_pending", "") == 1.0).then_some(()) },
    )
    .await;
    tokio::time::sleep(CHECK_PERIOD * 2).await;
    second.sigterm();
    assert!(second.wait(Duration::from_secs(30)).await.success());
    let third = Daemon::start(&moto, &config_c).await;
    support::eventually(
        "the third daemon to count the absence",
        ALERT_TIMEOUT,
        || async { (third.metric("meterwatch_absences_pending", "") == 1.0).then_some(()) },
    )
    .await;
    tokio::time::sleep(CHECK_PERIOD * 2).await;
    let repeats = clients.drain(&resources.alerts_queue_url).await;
    assert!(repeats.is_empty(), "one alert per absence: {repeats:?}");

    // Metering resumes: one resolved notice, and the key is fine again.
    let (body, _) = heartbeat("beat-2");
    clients.send(&resources.queue_url, &body).await;
    let resolved = clients.alerts(&resources, 1, ALERT_TIMEOUT).await.remove(0);
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["rule"], "metering-stopped");
    assert_eq!(resolved["product_code"], PRODUCT);
    assert_eq!(resolved["event_id"], "beat-2");
    assert_ne!(resolved["id"], fired["id"]);
    support::eventually("the absence to be resolved", ALERT_TIMEOUT, || async {
        (third.metric("meterwatch_absences_pending", "") == 0.0).then_some(())
    })
    .await;
    let after = clients.drain(&resources.alerts_queue_url).await;
    assert!(after.is_empty(), "one resolved notice: {after:?}");
    eprintln!(
        "absence across restarts (DynamoDB): heartbeat at {beat_time}, 12 s allowed; fired once \
         {:.1} s into the test, after one restart; no repeat across a second restart; \
         resolved once; test {:.1} s",
        fired_after.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
}

/// A dedup claim of the one key the store tests use, at `now`.
async fn claim_key(
    store: &meterwatch::state::Store,
    now: i64,
    lease: Duration,
) -> (meterwatch::state::dedup::Verdict, meterwatch::state::Undo) {
    store
        .update("dedup#r#k", now, |previous| {
            meterwatch::state::dedup::claim(previous, now, lease)
        })
        .await
        .unwrap()
}

/// The DynamoDB store's conditional writes, as moto judges them (the daemon's tests run it
/// in memory only): of concurrent claims one wins, expired items count as absent, undo and
/// confirmation write only over the item they expect.
#[tokio::test(flavor = "multi_thread")]
async fn the_dynamodb_store_applies_one_decision_per_write_read() {
    use meterwatch::state::dedup::{self, Seen, Verdict};
    use meterwatch::state::{Change, DynamoStore, Entry, Store, Write};

    let moto = Moto::start().await;
    let clients = moto.clients().await;
    let table = clients.create_state_table("store-state").await;
    let store = Store::Dynamodb(DynamoStore::new(clients.dynamodb.clone(), &table));
    let lease = Duration::from_secs(60);
    let claim = |now: i64| claim_key(&store, now, lease);

    let (verdict, first) = claim(1_000).await;
    assert_eq!(verdict, Verdict::Fresh);
    assert_eq!(claim(2_000).await.0, Verdict::InFlight { until: 61_000 });
    // A failed publish takes the claim back: the redelivery claims afresh.
    store.undo(first).await.unwrap();
    let (verdict, second) = claim(3_000).await;
    assert_eq!(verdict, Verdict::Fresh);
    // The confirmation replaces our own claim without reading it first.
    let confirm = dedup::confirm(4_000, Duration::from_secs(3600)).write;
    store.replace_mine(&second, 4_000, confirm).await.unwrap();
    assert_eq!(claim(5_000).await.0, Verdict::Duplicate);
    assert_eq!(
        store.get("dedup#r#k", 5_000).await.unwrap(),
        Some(Entry::Dedup(Seen::Sent))
    );
    // Past its window the item is absent to decisions, though TTL has not removed it.
    assert_eq!(claim(4_000 + 3_600_000).await.0, Verdict::Fresh);

    // A confirmation after someone else took the key over (our lease ran out) still lands.
    let (_, stale) = claim(10_000_000).await;
    let (verdict, _) = claim(10_000_000 + 60_001).await;
    assert_eq!(verdict, Verdict::Fresh);
    let confirm = dedup::confirm(10_000_000 + 60_002, Duration::from_secs(3600)).write;
    store
        .replace_mine(&stale, 10_000_000 + 60_002, confirm)
        .await
        .unwrap();
    assert_eq!(claim(10_000_000 + 60_003).await.0, Verdict::Duplicate);

    // A delete taken back restores the entry, but not over a later write.
    let put = |entry: Entry| Change {
        write: Write::Put {
            entry,
            expires_at: 100_000,
        },
        decision: (),
    };
    store
        .update("other", 0, |_| put(Entry::Dedup(Seen::Sent)))
        .await
        .unwrap();
    let (_, deleted) = store
        .update("other", 0, |_| Change {
            write: Write::Delete,
            decision: (),
        })
        .await
        .unwrap();
    assert_eq!(store.get("other", 0).await.unwrap(), None);
    store.undo(deleted).await.unwrap();
    assert_eq!(
        store.get("other", 0).await.unwrap(),
        Some(Entry::Dedup(Seen::Sent))
    );
    let (_, overwritten) = store
        .update("other", 0, |_| {
            put(Entry::Dedup(Seen::Pending { until: 1 }))
        })
        .await
        .unwrap();
    store
        .update("other", 0, |_| {
            put(Entry::Dedup(Seen::Pending { until: 2 }))
        })
        .await
        .unwrap();
    store.undo(overwritten).await.unwrap();
    assert_eq!(
        store.get("other", 0).await.unwrap(),
        Some(Entry::Dedup(Seen::Pending { until: 2 })),
        "an undo never overwrites a later write"
    );

    // Replicas racing for one key: exactly one claim wins, the others see it.
    let mut replicas = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let replica = Store::Dynamodb(DynamoStore::new(clients.dynamodb.clone(), &table));
        replicas.spawn(async move {
            replica
                .update("dedup#r#race", 0, |previous| {
                    dedup::claim(previous, 0, lease)
                })
                .await
                .unwrap()
                .0
        });
    }
    let verdicts = replicas.join_all().await;
    let n_fresh = verdicts.iter().filter(|v| **v == Verdict::Fresh).count();
    assert_eq!(n_fresh, 1, "{verdicts:?}");
}

/// A write whose response was lost (the SDK retries it, and the retry finds the item the first
/// attempt wrote) is still the writer's: a claim is not mistaken for a rival's, which would
/// hold its alert until the lease ran out.
#[tokio::test(flavor = "multi_thread")]
async fn a_write_retried_after_its_response_was_lost_is_still_the_writers() {
    use meterwatch::state::dedup::{self, Verdict};
    use meterwatch::state::{DynamoStore, Store};

    let moto = Moto::start().await;
    let clients = moto.clients().await;
    let table = clients.create_state_table("retried-state").await;
    let lose = support::LoseWriteResponses::default();
    let config = aws_sdk_dynamodb::config::Builder::from(&moto.sdk_config().await)
        .interceptor(lose.clone())
        .build();
    let store = Store::Dynamodb(DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(config),
        &table,
    ));
    let (lease, window) = (Duration::from_secs(60), Duration::from_secs(3600));
    let claim = |now: i64| claim_key(&store, now, lease);

    // A claim of a new key (written on condition that there is no item).
    lose.arm(1);
    let (verdict, mine) = claim(1_000).await;
    assert_eq!(lose.lost(), 1, "the claim's first response was lost");
    assert_eq!(verdict, Verdict::Fresh);
    // Its confirmation (on condition of the claim's token).
    lose.arm(1);
    let confirm = dedup::confirm(2_000, window).write;
    store.replace_mine(&mine, 2_000, confirm).await.unwrap();
    assert_eq!(lose.lost(), 2);
    assert_eq!(claim(3_000).await.0, Verdict::Duplicate);
    // A claim over an expired item (on condition of its token).
    lose.arm(1);
    let (verdict, expired) = claim(2_000 + 3_600_000 + 1).await;
    assert_eq!(lose.lost(), 3);
    assert_eq!(verdict, Verdict::Fresh);
    // Taking a claim back deletes it; a retried delete finds no item, which is what it wanted.
    lose.arm(1);
    store.undo(expired).await.unwrap();
    assert_eq!(lose.lost(), 4);
    assert_eq!(claim(2_000 + 3_600_000 + 2).await.0, Verdict::Fresh);

    let items = clients.state_items(&table).await;
    let token = items[0]["token"].as_s().unwrap();
    assert!(
        token.len() == 32 && token.chars().all(|c| c.is_ascii_hexdigit()),
        "{token}"
    );
}

/// A version number starts again at 1 once its item is deleted (an undo, TTL) and created
/// again, so a write conditioned on the version it read could land on someone else's new
/// item. Writes are conditioned on the token of the write they read, which no other write
/// carries: a late undo leaves a newer writer's item alone, and a write whose item was
/// deleted and created again since its read decides again. Items written before tokens
/// existed are still conditioned on their version (and on still having no token).
#[tokio::test(flavor = "multi_thread")]
async fn an_item_deleted_and_created_again_is_not_the_item_read() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use meterwatch::state::dedup::Seen;
    use meterwatch::state::{Change, DynamoStore, Entry, Store, Write};
    use std::sync::{Arc, Mutex};

    let moto = Moto::start().await;
    let clients = moto.clients().await;
    let table = clients.create_state_table("recreated-state").await;
    let store = || Store::Dynamodb(DynamoStore::new(clients.dynamodb.clone(), &table));
    let (mine, rival) = (store(), store());
    let pending = |until: i64| Entry::Dedup(Seen::Pending { until });
    let put = |entry: Entry| Change {
        write: Write::Put {
            entry,
            expires_at: 1_000_000,
        },
        decision: (),
    };
    let attribute = |key: &str, name: &str| {
        let clients = &clients;
        let table = &table;
        let (key, name) = (key.to_owned(), name.to_owned());
        async move {
            let items = clients.state_items(table).await;
            let item = items
                .iter()
                .find(|item| item["pk"].as_s().unwrap() == &key)
                .unwrap();
            item.get(&name).cloned()
        }
    };

    // A late undo: our claim, deleted by TTL, then a rival's claim at the same version.
    let (_, ours) = mine.update("late", 0, |_| put(pending(1))).await.unwrap();
    let first_token = attribute("late", "token").await;
    clients
        .dynamodb
        .delete_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("late".into()))
        .send()
        .await
        .unwrap();
    rival.update("late", 0, |_| put(pending(2))).await.unwrap();
    assert_eq!(
        attribute("late", "version").await,
        Some(AttributeValue::N("1".into())),
        "the rival's item has the version ours had"
    );
    assert_ne!(attribute("late", "token").await, first_token);
    mine.undo(ours).await.unwrap();
    assert_eq!(
        mine.get("late", 0).await.unwrap(),
        Some(pending(2)),
        "our late undo left the rival's claim"
    );

    // A write racing a delete and re-creation between its read and its write: the rival
    // acts inside our first decision, so our write is sent after it.
    let race = |key: &'static str| {
        let (mine, rival) = (store(), store());
        tokio::spawn(async move {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let log = Arc::clone(&seen);
            mine.update(key, 0, move |previous| {
                let mut log = log.lock().unwrap();
                log.push(previous.cloned());
                if log.len() == 1 {
                    tokio::task::block_in_place(|| {
                        tokio::runtime::Handle::current().block_on(async {
                            rival
                                .update(key, 0, |_| Change {
                                    write: Write::Delete,
                                    decision: (),
                                })
                                .await
                                .unwrap();
                            rival.update(key, 0, |_| put(pending(2))).await.unwrap();
                        })
                    });
                }
                put(pending(3))
            })
            .await
            .unwrap();
            Arc::try_unwrap(seen).unwrap().into_inner().unwrap()
        })
    };
    mine.update("raced", 0, |_| put(pending(1))).await.unwrap();
    let seen = race("raced").await.unwrap();
    assert_eq!(
        seen,
        [Some(pending(1)), Some(pending(2))],
        "the write found another item at the version it read, and decided again"
    );
    assert_eq!(mine.get("raced", 0).await.unwrap(), Some(pending(3)));
    assert_eq!(
        attribute("raced", "version").await,
        Some(AttributeValue::N("2".into()))
    );

    // An item written before tokens existed: the same race, over its version.
    let legacy = |key: &str, version: u64| {
        clients
            .dynamodb
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S(key.into()))
            .item("kind", AttributeValue::S("dedup".into()))
            .item(
                "entry",
                AttributeValue::S(serde_json::to_string(&pending(1)).unwrap()),
            )
            .item("version", AttributeValue::N(version.to_string()))
            .item("expires_at_ms", AttributeValue::N("1000000".into()))
            .item("expires_at", AttributeValue::N("1001".into()))
            .send()
    };
    legacy("old-raced", 1).await.unwrap();
    let seen = race("old-raced").await.unwrap();
    assert_eq!(seen, [Some(pending(1)), Some(pending(2))]);
    assert_eq!(mine.get("old-raced", 0).await.unwrap(), Some(pending(3)));

    // ... and without a race, a write over it, and the undo of that write, apply.
    legacy("old", 5).await.unwrap();
    let (_, over) = mine.update("old", 0, |_| put(pending(4))).await.unwrap();
    assert_eq!(
        attribute("old", "version").await,
        Some(AttributeValue::N("6".into()))
    );
    assert!(attribute("old", "token").await.is_some());
    mine.undo(over).await.unwrap();
    assert_eq!(mine.get("old", 0).await.unwrap(), Some(pending(1)));
}

/// Events the killed replica holds claims on: one receive batch (`max_messages`), so that
/// one poller takes them all whatever moto's split.
const N_HELD: usize = 10;

/// Issue 20 §3's acceptance: a replica killed while it holds dedup claims does not delay
/// their alerts by more than a lease. The victim's SNS endpoint is a loopback port that
/// completes connections and never answers, so its publishes hang (and are retried) while
/// it renews its claims; once the table holds a fresh claim for every event it is killed
/// with SIGKILL, and a normal replica then alerts on each event exactly once within 2
/// minutes. With a 15-minute lease the claims would still stand at the deadline.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_holders_claims_free_within_a_lease_and_each_event_alerts_once() {
    let moto = Moto::start().await;
    let clients = moto.clients().await;
    let resources = clients.create_resources("holder", 1000, true).await;
    let table = clients.create_state_table("holder-state").await;
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, RULES).unwrap();
    let state = dynamodb_state(&table);
    let victim_config = write_config(
        &daemon_dir(dir.path(), "victim"),
        &resources,
        &rules,
        &state,
    );
    let text = std::fs::read_to_string(&victim_config).unwrap();
    // Publishes time out (10 s an attempt) and are retried for far longer than the test.
    let text = text.replace("max_attempts = 2", "max_attempts = 1000");
    assert!(text.contains("max_attempts = 1000"));
    std::fs::write(&victim_config, text).unwrap();
    let survivor_config = write_config(
        &daemon_dir(dir.path(), "survivor"),
        &resources,
        &rules,
        &state,
    );

    // Nobody accepts: the kernel completes each handshake into the backlog, and no byte is
    // ever answered.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sns = format!("http://{}", black_hole.local_addr().unwrap());

    let bodies = numbered_events("held", N_HELD);
    let expected = expected_alerts(&rules, &bodies);
    assert_eq!(expected.values().sum::<usize>(), N_HELD, "{expected:?}");
    send_batches(&clients, &resources.queue_url, &bodies).await;
    let mut victim =
        Daemon::spawn_with_env(&moto, &victim_config, &[("AWS_ENDPOINT_URL_SNS", &sns)]);
    // Each pending claim's `until` (`{"kind":"dedup","pending":{"until":…}}`), by key.
    let claims = || async {
        let items = clients.state_items(&table).await;
        let until = |item: &HashMap<String, aws_sdk_dynamodb::types::AttributeValue>| {
            let entry: serde_json::Value =
                serde_json::from_str(item["entry"].as_s().unwrap()).unwrap();
            entry["pending"]["until"].as_i64()
        };
        let pending: HashMap<String, i64> = items
            .iter()
            .filter_map(|item| Some((item["pk"].as_s().unwrap().clone(), until(item)?)))
            .collect();
        (items.len(), pending)
    };
    let first = support::eventually(
        "the victim to claim every event",
        Duration::from_secs(60),
        || async {
            let (_, pending) = claims().await;
            (pending.len() == N_HELD).then_some(pending)
        },
    )
    .await;
    // What is killed is a live holder that has renewed its claims, not one caught between
    // claim and publish.
    support::eventually(
        "the victim to renew every claim",
        Duration::from_secs(60),
        || async {
            let (_, pending) = claims().await;
            let renewed = pending
                .iter()
                .filter(|(key, until)| first.get(*key).is_some_and(|first| *until > first))
                .count();
            (renewed == N_HELD).then_some(())
        },
    )
    .await;
    assert_eq!(
        victim.metric("meterwatch_alerts_published_total", ""),
        0.0,
        "the victim published nothing"
    );
    victim.kill();
    let killed = Instant::now();
    let (n_items, pending) = claims().await;
    assert_eq!(
        (n_items, pending.len()),
        (N_HELD, N_HELD),
        "the victim died holding every claim"
    );

    let mut survivor = Daemon::start(&moto, &survivor_config).await;
    let mut alerts = clients
        .alerts(
            &resources,
            N_HELD,
            Duration::from_secs(120).saturating_sub(killed.elapsed()),
        )
        .await;
    let all_alerted = killed.elapsed();
    support::eventually("the source queue to be empty", ALERT_TIMEOUT, || async {
        (clients.queue_depth(&resources.queue_url).await == 0).then_some(())
    })
    .await;
    let in_flight = survivor.metric("meterwatch_messages_failed_total", "reason=\"in_flight\"");
    survivor.sigterm();
    assert!(survivor.wait(Duration::from_secs(30)).await.success());
    for body in clients.drain(&resources.alerts_queue_url).await {
        alerts.push(serde_json::from_str(&body).unwrap());
    }

    assert_eq!(
        support::alert_counts(&alerts),
        expected,
        "each event exactly once"
    );
    let mut ids: Vec<&str> = alerts.iter().map(|a| a["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), N_HELD);
    assert!(
        in_flight >= N_HELD as f64,
        "the survivor found the dead holder's claims standing first: {in_flight}"
    );
    assert_eq!(
        clients.queue_depth(&resources.dlq_url).await,
        0,
        "nothing was redriven"
    );
    eprintln!(
        "killed holder (DynamoDB, lease {} s): {N_HELD} claims held at SIGKILL; all {N_HELD} \
         alerted exactly once {:.1} s after the kill; held back while the claims stood {in_flight}",
        meterwatch::state::dedup::LEASE.as_secs(),
        all_alerted.as_secs_f64(),
    );
}
