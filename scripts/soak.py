"""The soak's driver (run through scripts/soak, which builds the daemon and installs moto).

One moto server and one `meterwatch run` (release build, memory state) on loopback. A sender
sends --rate messages a second: every 100th is poison (not JSON, each body distinct), the rest
alternate between a failed MeterUsage call (one alert each, unique event id) and a successful
one (no alert). Every --reload-secs (5 minutes) the rule file is edited (the failed-call rule's title gets a
new revision); the second edit instead adds a broken file, which must be rejected while the
last good set keeps alerting, and the next edit removes it. A reader takes the alerts off the
SNS -> SQS subscription. Every --sample-secs the daemon's RSS and /metrics go into soak.csv.
"""

import argparse
import csv
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import boto3

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "events"
REGION = "us-east-1"
PATTERN = {
    "source": ["aws.metering-marketplace"],
    "detail-type": ["AWS API Call via CloudTrail"],
    "detail": {"eventSource": ["metering-marketplace.amazonaws.com"]},
}
RULES = """
[[rule]]
id = "call-failed"
title = "Metering call failed (rev {rev})"
severity = "high"
match.detail.errorCode = [{{ exists = true }}]
"""
BROKEN = '[[rule]]\nid = "half-written"\nseverity = "loud"\n'
POISON_EVERY = 100
# Counters sampled from /metrics (summed over labels unless a label is given).
METRICS = [
    ("received", "meterwatch_messages_received_total", ""),
    ("deleted", "meterwatch_messages_deleted_total", ""),
    ("poison", "meterwatch_messages_poison_total", ""),
    ("published", "meterwatch_alerts_published_total", ""),
    ("failed", "meterwatch_messages_failed_total", ""),
    ("reload_ok", "meterwatch_rules_reload_total", 'result="ok"'),
    ("reload_failed", "meterwatch_rules_reload_total", 'result="failed"'),
    ("rules_loaded", "meterwatch_rules_loaded", ""),
]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return response.status, response.read().decode()


def wait_for(what, timeout, check):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit(f"soak: timed out after {timeout} s waiting for {what}")


def metric(text, name, labels=""):
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        key, value = line.rsplit(" ", 1)
        metric_name, _, label_text = key.partition("{")
        if metric_name == name and labels in label_text:
            total += float(value)
    return total


def rss_kb(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def queue_depth(sqs, url):
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def drain(sqs, url, wait=0):
    bodies = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait
        ).get("Messages", [])
        if not messages:
            return bodies
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
        bodies.extend(m["Body"] for m in messages)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=5, help="messages a second")
    parser.add_argument("--sample-secs", type=float, default=10)
    parser.add_argument("--reload-secs", type=float, default=300, help="time between rule edits")
    parser.add_argument("--out", default=str(ROOT / "target" / "soak"))
    parser.add_argument(
        "--rss-growth-pct",
        type=float,
        default=10,
        help="the last third's max RSS may exceed the RSS at the first third's end by this much",
    )
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    duration = args.minutes * 60

    moto_port = free_port()
    moto_log = open(out / "moto.log", "w")
    moto = subprocess.Popen(
        [
            str(ROOT / "target/moto-venv/bin/python"),
            str(ROOT / "tests/moto/atomic_moto.py"),
            "-H",
            "127.0.0.1",
            "-p",
            str(moto_port),
        ],
        stdout=moto_log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{moto_port}"
    wait_for("moto", 30, lambda: http_get(moto_port, "/moto-api/")[0] == 200)
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION
    )
    sqs = session.client("sqs", endpoint_url=endpoint)
    sns = session.client("sns", endpoint_url=endpoint)
    sender_sqs = session.client("sqs", endpoint_url=endpoint)
    reader_sqs = session.client("sqs", endpoint_url=endpoint)

    dlq = sqs.create_queue(QueueName="soak-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    queue = sqs.create_queue(QueueName="soak-events", Attributes={"RedrivePolicy": redrive})[
        "QueueUrl"
    ]
    alerts_queue = sqs.create_queue(QueueName="soak-alerts-read")["QueueUrl"]
    alerts_arn = sqs.get_queue_attributes(QueueUrl=alerts_queue, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    topic = sns.create_topic(Name="soak-alerts")["TopicArn"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=alerts_arn,
        Attributes={"RawMessageDelivery": "true"},
    )

    rules_dir = out / "rules"
    rules_dir.mkdir(exist_ok=True)
    for old in rules_dir.iterdir():
        old.unlink()
    (rules_dir / "metering.toml").write_text(RULES.format(rev=0))
    config = out / "meterwatch.toml"
    config.write_text(
        f"""
[rules]
paths = ["{rules_dir}"]
watch = true
debounce_ms = 200

[source]
type = "sqs"
queue_url = "{queue}"
pollers = 2
wait_time_secs = 1
max_messages = 10
visibility_timeout_secs = 5

[sinks.alerts]
type = "sns"
topic_arn = "{topic}"
"""
    )
    http_port = free_port()
    daemon_log = open(out / "daemon.log", "w")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
        "RUST_LOG": "info",
    }
    daemon = subprocess.Popen(
        [
            os.environ["METERWATCH_BIN"],
            "run",
            "--log-format",
            "json",
            "--config",
            str(config),
            "--listen",
            f"127.0.0.1:{http_port}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=daemon_log,
    )
    wait_for("the daemon to be ready", 60, lambda: http_get(http_port, "/readyz")[0] == 200)

    failing = json.loads((FIXTURES / "failing/meterusage-throttled.eventbridge.json").read_text())
    success = json.loads((FIXTURES / "envelopes/meterusage-eks.eventbridge.json").read_text())
    sent = {"failing": set(), "success": 0, "poison": set()}
    alerts = []
    stop_sending = threading.Event()
    stop_reading = threading.Event()
    started = time.monotonic()

    def sender():
        n = 0
        while not stop_sending.is_set():
            entries = []
            # One batch a second (or less often at rates under 10 a second).
            per_batch = max(1, min(10, round(args.rate)))
            for _ in range(per_batch):
                if n % POISON_EVERY == POISON_EVERY - 1:
                    body = f"soak poison #{n}: not json"
                    sent["poison"].add(body)
                elif n % 2 == 0:
                    event = dict(failing, detail=dict(failing["detail"], eventID=f"soak-{n:07}"))
                    body = json.dumps(event)
                    sent["failing"].add(f"soak-{n:07}")
                else:
                    event = dict(success, detail=dict(success["detail"], eventID=f"soak-{n:07}"))
                    body = json.dumps(event)
                    sent["success"] += 1
                entries.append({"Id": str(len(entries)), "MessageBody": body})
                n += 1
            sender_sqs.send_message_batch(QueueUrl=queue, Entries=entries)
            next_at = started + n / args.rate
            stop_sending.wait(max(0.0, next_at - time.monotonic()))

    def reader():
        while not stop_reading.is_set():
            for body in drain(reader_sqs, alerts_queue, wait=1):
                alerts.append(json.loads(body))

    threads = [threading.Thread(target=sender), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()

    samples = open(out / "soak.csv", "w", newline="")
    writer = csv.writer(samples)
    writer.writerow(
        ["secs", "rss_kb", "sent_failing", "sent_poison", "alerts_read", "queue_depth", "dlq_depth"]
        + [name for name, _, _ in METRICS]
    )
    rss = []  # (secs, kB)
    reloads = []  # (secs, revision or "broken")
    revision = 0
    last_metrics = ""
    next_sample = started
    next_reload = started + args.reload_secs
    try:
        while time.monotonic() - started < duration:
            now = time.monotonic()
            if now >= next_reload:
                next_reload += args.reload_secs
                broken = rules_dir / "broken.toml"
                if len(reloads) == 1:
                    broken.write_text(BROKEN)
                    reloads.append((now - started, "broken"))
                else:
                    if broken.exists():
                        broken.unlink()
                    revision += 1
                    (rules_dir / "metering.toml").write_text(RULES.format(rev=revision))
                    reloads.append((now - started, revision))
                print(f"soak: {now - started:.0f} s: reload {reloads[-1][1]}", flush=True)
            if now >= next_sample:
                next_sample += args.sample_secs
                _, last_metrics = http_get(http_port, "/metrics")
                kb = rss_kb(daemon.pid)
                rss.append((now - started, kb))
                writer.writerow(
                    [
                        round(now - started),
                        kb,
                        len(sent["failing"]),
                        len(sent["poison"]),
                        len(alerts),
                        queue_depth(sqs, queue),
                        queue_depth(sqs, dlq),
                    ]
                    + [metric(last_metrics, name, labels) for _, name, labels in METRICS]
                )
                samples.flush()
            time.sleep(0.2)
        stop_sending.set()
        threads[0].join()
        n_failing = len(sent["failing"])
        n_poison = len(sent["poison"])
        # Everything sent is either deleted after its alerts, or (poison) redriven to the DLQ.
        wait_for(
            "the queue to drain and the poison to reach the DLQ",
            300,
            lambda: queue_depth(sqs, queue) == 0 and queue_depth(sqs, dlq) >= n_poison,
        )
        wait_for("every alert to be read back", 120, lambda: len(alerts) >= n_failing)
        _, last_metrics = http_get(http_port, "/metrics")
    finally:
        stop_sending.set()
        daemon.send_signal(signal.SIGTERM)
        status = daemon.wait(timeout=60)
        stop_reading.set()
        for thread in threads:
            thread.join()
        samples.close()
    for body in drain(sqs, alerts_queue):
        alerts.append(json.loads(body))
    dlq_bodies = drain(sqs, dlq)
    moto.terminate()
    moto.wait()

    checks = []

    def check(ok, what):
        checks.append((ok, what))
        print(f"soak: {'ok  ' if ok else 'FAIL'} {what}", flush=True)

    elapsed = time.monotonic() - started
    ids = [a.get("event_id") for a in alerts]
    check(status == 0, f"the daemon exited 0 on SIGTERM (status {status})")
    check(
        set(ids) == sent["failing"] and len(ids) == len(set(ids)),
        f"nothing lost, nothing repeated: {len(ids)} alerts read back ({len(set(ids))} distinct) "
        f"for {n_failing} failing events sent ({sent['success']} successful calls raised none)",
    )
    check(
        set(dlq_bodies) == sent["poison"] and len(dlq_bodies) == n_poison,
        f"every poison message in the DLQ: {len(dlq_bodies)} of {n_poison}",
    )
    poison_counted = metric(last_metrics, "meterwatch_messages_poison_total", 'reason="not_json"')
    check(
        poison_counted >= 2 * n_poison,
        f"poison counted on each of its 2 receives: meterwatch_messages_poison_total "
        f"{{reason=\"not_json\"}} {poison_counted:.0f} >= {2 * n_poison}",
    )
    deleted = metric(last_metrics, "meterwatch_messages_deleted_total")
    check(
        deleted >= n_failing + sent["success"],
        f"every good message deleted: {deleted:.0f} deletes for {n_failing + sent['success']}",
    )
    good_edits = [r for r in reloads if r[1] != "broken"]
    reload_ok = metric(last_metrics, "meterwatch_rules_reload_total", 'result="ok"')
    reload_failed = metric(last_metrics, "meterwatch_rules_reload_total", 'result="failed"')
    check(
        reload_ok >= len(good_edits),
        f"every good edit loaded: {reload_ok:.0f} reloads ok for {len(good_edits)} edits",
    )
    if any(r[1] == "broken" for r in reloads):
        check(reload_failed >= 1, f"the bad edit rejected: {reload_failed:.0f} reloads failed")
        # While the broken file stood, the alerts still carried the last good revision's title.
        broken_at = next(r[0] for r in reloads if r[1] == "broken")
        revisions = {}
        for alert in alerts:
            title = alert.get("title", "")
            revisions[title] = revisions.get(title, 0) + 1
        check(
            "Metering call failed (rev 1)" in revisions,
            f"the last good set kept running through the bad edit (at {broken_at:.0f} s): "
            f"alerts by title {dict(sorted(revisions.items()))}",
        )
    third = duration / 3
    baseline = [kb for secs, kb in rss if secs <= third]
    late = [kb for secs, kb in rss if secs >= duration - third]
    if baseline and late:
        mark = baseline[-1]
        peak = max(late)
        growth = (peak - mark) * 100 / mark
        check(
            growth <= args.rss_growth_pct,
            f"memory plateaus: RSS {mark / 1024:.1f} MB at {third / 60:.1f} min, at most "
            f"{peak / 1024:.1f} MB in the last {third / 60:.1f} min ({growth:+.1f} %, "
            f"limit {args.rss_growth_pct:+.0f} %); overall min {min(k for _, k in rss) / 1024:.1f} "
            f"MB, max {max(k for _, k in rss) / 1024:.1f} MB",
        )
    else:
        check(False, "too few RSS samples")
    summary = (
        f"soak: {elapsed / 60:.1f} min, {n_failing + sent['success'] + n_poison} messages "
        f"({n_failing} failing, {sent['success']} successful, {n_poison} poison) at "
        f"{args.rate:g}/s, {len(reloads)} reloads; samples in {out / 'soak.csv'}"
    )
    print(summary, flush=True)
    with open(out / "summary.txt", "w") as file:
        file.write(summary + "\n")
        for ok, what in checks:
            file.write(f"{'ok  ' if ok else 'FAIL'} {what}\n")
    sys.exit(0 if all(ok for ok, _ in checks) else 1)


if __name__ == "__main__":
    main()
