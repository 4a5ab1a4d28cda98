"""Create deploy/cloudformation/meterwatch.yaml in moto's CloudFormation and check the wiring.

Run through scripts/moto-cfn-smoke, which starts moto_server on a free loopback port and sets
AWS_ENDPOINT_URL. Nothing here reaches AWS: fake credentials, loopback endpoint only.

Checks, for the default parameters and for every option turned on:
- the stack reaches CREATE_COMPLETE and has the outputs the daemon's config needs;
- which resources moto created and which it skipped (printed, not failed: moto skips
  QueuePolicy, Subscription, Alarm and Chatbot resources, domain.md section 6);
- the queue has SSE and a redrive policy to the DLQ with the given maxReceiveCount;
- the rule carries the metering pattern and targets the queue;
- a PutEvents of a failing MeterUsage CloudTrail call lands in the queue as an EventBridge
  envelope, and a non-metering event does not;
- the daemon policy grants exactly the contract's actions, and sns:Publish on exactly the
  topics the daemon is configured with (alert topic; with Slack, the Chatbot topic, which the
  Slack channel relays: read from the template, as moto skips Chatbot);
- the state table (when enabled) has key pk (S) and TTL on expires_at;
- end to end (issue 7): the real `meterwatch run` binary, configured from the stack's outputs
  the way the ECS task definition configures it (the image's config file, deploy/ecs's
  environment with the outputs filled in), turns a PutEvents of a failing MeterUsage call into
  the alerts `meterwatch eval` predicts, read from a queue subscribed to the alert topic (with
  Slack, also as Chatbot custom notifications on the Chatbot topic); on SIGTERM it exits 0 and
  leaves the events queue and the DLQ empty.
"""

import json
import os
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "cloudformation" / "meterwatch.yaml"
ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
REGION = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
# The debug binary scripts/moto-cfn-smoke built (or found fresh) with cargo.
METERWATCH_BIN = os.environ["METERWATCH_BIN"]
TASK_DEFINITION = ROOT / "deploy" / "ecs" / "task-definition.json"
FAILING_FIXTURE = (
    ROOT / "tests" / "fixtures" / "events" / "failing" / "meterusage-invalid-product-code.eventbridge.json"
)
# Where the Dockerfile puts the config and the rules, and what it copies there.
IMAGE_PATHS = {
    "/etc/meterwatch/meterwatch.toml": ROOT / "deploy" / "meterwatch.example.toml",
    "/etc/meterwatch/rules": ROOT / "rules",
}

DAEMON_ACTIONS = {
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sns:Publish",
    "sns:GetTopicAttributes",
}
KMS_ACTIONS = {"kms:Decrypt", "kms:GenerateDataKey"}
STATE_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
}

FAILING_METER_USAGE = {
    "eventVersion": "1.08",
    "userIdentity": {
        "type": "AssumedRole",
        "arn": "arn:aws:sts::123456789012:assumed-role/metering/i-0123456789abcdef0",
        "accountId": "123456789012",
    },
    "eventTime": "2020-07-10T23:06:42Z",
    "eventSource": "metering-marketplace.amazonaws.com",
    "eventName": "MeterUsage",
    "awsRegion": "us-east-1",
    "errorCode": "InvalidProductCodeException",
    "errorMessage": "Product code is invalid",
    "requestParameters": {
        "productCode": "bogus",
        "usageDimension": "Hosts",
        "usageQuantity": 1,
        "timestamp": "Jul 10, 2020 11:06:41 PM",
    },
    "responseElements": None,
    "eventType": "AwsApiCall",
}

failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failures.append(what)


def client(name: str):
    return boto3.client(name, region_name=REGION, endpoint_url=ENDPOINT)


def create_stack(cfn, name: str, params: dict[str, str]) -> dict[str, str]:
    cfn.create_stack(
        StackName=name,
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    deadline = time.monotonic() + 60
    while True:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    check(stack["StackStatus"] == "CREATE_COMPLETE", f"stack {name}: {stack['StackStatus']}")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def report_resources(cfn, name: str) -> None:
    """Print each declared resource: created (with its physical id), or why it is absent.

    moto lists absent resources as blank rows, so absence is explained from the template:
    a type moto has no CloudFormation model for is "skipped by moto", anything else that is
    missing had a false condition.
    """
    from cfnlint.decode import decode_str
    from moto.cloudformation.parsing import get_model_map

    supported = set(get_model_map())
    template, _ = decode_str(TEMPLATE.read_text())
    created = {
        r["LogicalResourceId"]: r
        for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
        if r["LogicalResourceId"]
    }
    for logical_id, resource in template["Resources"].items():
        kind = resource["Type"]
        got = created.get(logical_id)
        if got is not None:
            state = f"{got['ResourceStatus']} {got.get('PhysicalResourceId', '')}"
        elif kind not in supported:
            state = "skipped by moto (no CloudFormation support)"
        elif "Condition" in resource:
            state = f"not created (condition {resource['Condition']} is false)"
        else:
            state = "MISSING"
            failures.append(f"{name}: {logical_id} was not created")
        print(f"    {logical_id:24} {kind:42} {state}")


def policy_actions(iam, role_name: str) -> set[str]:
    return {action for action, _ in policy_grants(iam, role_name)}


def policy_grants(iam, role_name: str) -> set[tuple[str, str]]:
    """(action, resource) pairs of the managed policies attached to a role."""
    grants: set[tuple[str, str]] = set()
    for attached in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        version = iam.get_policy_version(
            PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"]
        )["PolicyVersion"]
        document = version["Document"]
        if isinstance(document, str):
            document = json.loads(document)
        for statement in document["Statement"]:
            listed = statement["Action"]
            resources = statement["Resource"]
            for action in [listed] if isinstance(listed, str) else listed:
                for resource in [resources] if isinstance(resources, str) else resources:
                    grants.add((action, resource))
    return grants


def receive_all(sqs, queue_url: str) -> list[dict]:
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages = got.get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def ecs_container(outputs: dict[str, str]) -> tuple[list[str], dict[str, str]] | None:
    """The container's command and environment from deploy/ecs/task-definition.json, filled in
    the way deploy/README.md step 4a does (`envsubst` with QUEUE_URL, TOPIC_ARN and
    CHATBOT_TOPIC_ARN read from the outputs), the image's paths mapped to the files the
    Dockerfile copies there."""
    container = json.loads(TASK_DEFINITION.read_text())["containerDefinitions"][0]
    values = {
        "AWS_REGION": REGION,
        "QUEUE_URL": outputs["QueueUrl"],
        "TOPIC_ARN": outputs["TopicArn"],
        # Empty without Slack, as `$(out ChatbotTopicArn)` is: the daemon then adds no sink.
        "CHATBOT_TOPIC_ARN": outputs.get("ChatbotTopicArn", ""),
    }
    try:
        environment = {
            entry["name"]: string.Template(entry["value"]).substitute(values)
            for entry in container["environment"]
        }
    except KeyError as missing:
        check(False, f"task definition environment needs {missing}, which no stack output gives")
        return None
    command = [str(IMAGE_PATHS.get(arg, arg)) for arg in container["command"]]
    return command, environment


def queue_depth(sqs, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def expected_alerts(envelope: dict) -> list[tuple[str, str]]:
    """What the shipped rules raise for `envelope`, by `meterwatch eval` (rule, event id)."""
    evaluated = subprocess.run(
        [METERWATCH_BIN, "eval", "--rules", str(IMAGE_PATHS["/etc/meterwatch/rules"]), "-"],
        input=json.dumps(envelope),
        capture_output=True,
        text=True,
        check=False,
    )
    check(
        evaluated.returncode == 0,
        "meterwatch eval predicts the alerts"
        + (f": exit {evaluated.returncode}, {evaluated.stderr.strip()[-300:]}" if evaluated.returncode else ""),
    )
    alerts = [json.loads(line) for line in evaluated.stdout.splitlines() if line.strip()]
    return sorted((alert["rule"], alert.get("event_id") or "") for alert in alerts)


def check_daemon(name: str, outputs: dict[str, str], bus: str) -> None:
    """Issue 7: the daemon, configured from the stack's outputs, turns a PutEvents of a failing
    metering call into an alert read from a queue subscribed to the alert topic."""
    if not {"QueueUrl", "TopicArn", "DeadLetterQueueUrl"} <= set(outputs):
        check(False, f"{name}: no daemon run without QueueUrl, TopicArn and DeadLetterQueueUrl")
        return
    sqs, sns, events = client("sqs"), client("sns"), client("events")
    container = ecs_container(outputs)
    if container is None:
        return
    command, environment = container
    # The default stack's names equal the example config's placeholders, so only this says the
    # outputs reach the daemon there; the other stack's names differ, and its alerts prove it.
    wiring = {
        "METERWATCH_QUEUE_URL": outputs["QueueUrl"],
        "METERWATCH_TOPIC_ARN": outputs["TopicArn"],
        "METERWATCH_CHATBOT_TOPIC_ARN": outputs.get("ChatbotTopicArn", ""),
    }
    unwired = sorted(k for k, v in wiring.items() if environment.get(k) != v)
    check(
        not unwired,
        f"ECS task environment carries the outputs as {', '.join(wiring)}"
        + (f"; not {unwired}" if unwired else ""),
    )

    # moto skips AWS::SNS::Subscription (and delivers no email, runs no Chatbot): read what the
    # topics carry from queues of our own.
    def subscribe_queue(topic_arn: str, queue_name: str) -> str:
        queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        return queue_url

    read_url = subscribe_queue(outputs["TopicArn"], f"{name}-alerts-read")
    chatbot_url = (
        subscribe_queue(outputs["ChatbotTopicArn"], f"{name}-chatbot-read")
        if "ChatbotTopicArn" in outputs
        else None
    )

    port = free_port()
    log_path = ROOT / "target" / f"moto-cfn-smoke-{name}.daemon.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **environment,
        # The test's only additions: the rules the image carries, loopback, moto, fake keys.
        "METERWATCH_RULES": str(IMAGE_PATHS["/etc/meterwatch/rules"]),
        "METERWATCH_LISTEN": f"127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_ENDPOINT_URL": ENDPOINT,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    started = time.monotonic()
    with open(log_path, "w") as log:
        daemon = subprocess.Popen(
            [METERWATCH_BIN, *command], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    failures_before = len(failures)
    try:
        ready = False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and daemon.poll() is None:
            if http_status(f"http://127.0.0.1:{port}/readyz") == 200:
                ready = True
                break
            time.sleep(0.1)
        ready_secs = time.monotonic() - started
        shown = " ".join(
            str(Path(arg).relative_to(ROOT)) if arg.startswith(str(ROOT)) else arg for arg in command
        )
        exited = daemon.poll()
        check(
            ready,
            f"daemon ({shown}, ECS task environment from the outputs) ready in {ready_secs:.1f}s"
            + (f"; it exited {exited}" if exited is not None else ""),
        )
        if not ready:
            return

        envelope = json.loads(FAILING_FIXTURE.read_text())
        event_id = str(uuid.uuid4())
        envelope["detail"]["eventID"] = event_id
        expected = expected_alerts(envelope)
        check(
            # Which rule pages depends on inhibition (a specific rule replaces the catch-all);
            # that some shipped rule does is what the smoke test needs.
            any(alerted == event_id for _, alerted in expected),
            f"the shipped rules alert on {envelope['detail']['errorCode']}: {[r for r, _ in expected]}",
        )
        put_at = time.monotonic()
        put = events.put_events(
            Entries=[
                {
                    "Source": envelope["source"],
                    "DetailType": envelope["detail-type"],
                    "Detail": json.dumps(envelope["detail"]),
                    "EventBusName": bus,
                }
            ]
        )
        check(put["FailedEntryCount"] == 0, "PutEvents of the failing MeterUsage call accepted")

        alerts: list[dict] = []
        deadline = time.monotonic() + 30
        while len(alerts) < len(expected) and time.monotonic() < deadline:
            alerts.extend(receive_all(sqs, read_url))
        alert_secs = time.monotonic() - put_at
        alerts.extend(receive_all(sqs, read_url))  # one more round: nothing may follow
        got = sorted((alert.get("rule", ""), alert.get("event_id") or "") for alert in alerts)
        check(
            got == expected,
            f"alerts read from a queue subscribed to TopicArn in {alert_secs:.1f}s: "
            + (
                f"{', '.join(rule for rule, _ in got)} for event {event_id}, as eval predicts"
                if got == expected
                else f"{got}, want {expected}"
            ),
        )

        if chatbot_url is not None:
            notes: list[dict] = []
            deadline = time.monotonic() + 30
            while len(notes) < len(expected) and time.monotonic() < deadline:
                notes.extend(receive_all(sqs, chatbot_url))
            shapes = sorted(
                (note.get("version"), note.get("source"), note.get("content", {}).get("textType"))
                for note in notes
            )
            check(
                len(notes) == len(expected)
                and all(shape == ("1.0", "custom", "client-markdown") for shape in shapes)
                and any(event_id in json.dumps(note) for note in notes),
                f"Chatbot topic: {len(notes)} custom notification(s) for Slack, naming the event",
            )

        stop_at = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        try:
            code = daemon.wait(timeout=40)
        except subprocess.TimeoutExpired:
            code = None
        check(code == 0, f"SIGTERM: daemon exited {code} in {time.monotonic() - stop_at:.1f}s")
        check(queue_depth(sqs, outputs["QueueUrl"]) == 0, "events queue empty after shutdown")
        check(queue_depth(sqs, outputs["DeadLetterQueueUrl"]) == 0, "dead-letter queue empty")
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        if len(failures) > failures_before:
            print(f"    daemon log ({log_path}), last lines:")
            for line in log_path.read_text(errors="replace").splitlines()[-20:]:
                print(f"      {line}")


def check_stack(name: str, params: dict[str, str]) -> None:
    print(f"== stack {name} {params or '(defaults)'}")
    cfn, sqs, events, iam = client("cloudformation"), client("sqs"), client("events"), client("iam")
    outputs = create_stack(cfn, name, params)
    report_resources(cfn, name)

    state = params.get("EnableStateTable") == "true"
    kms = bool(params.get("KmsKeyArn"))
    expected = {"QueueUrl", "QueueArn", "DeadLetterQueueUrl", "TopicArn", "AlarmTopicArn",
                "RuleArn", "TaskRoleArn", "ExecutionRoleArn", "LogGroupName",
                "RepositoryUri", "ServiceAccountRoleArn"}
    if state:
        expected.add("StateTableName")
    slack = bool(params.get("SlackWorkspaceId") and params.get("SlackChannelId"))
    if slack:
        expected.add("ChatbotTopicArn")
    check(set(outputs) == expected, f"outputs {sorted(outputs)}")
    if "QueueUrl" not in outputs:
        return

    attributes = sqs.get_queue_attributes(QueueUrl=outputs["QueueUrl"], AttributeNames=["All"])[
        "Attributes"
    ]
    redrive = json.loads(attributes.get("RedrivePolicy", "{}"))
    dlq_arn = sqs.get_queue_attributes(
        QueueUrl=outputs["DeadLetterQueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    check(redrive.get("deadLetterTargetArn") == dlq_arn, "queue redrives to the DLQ")
    check(
        int(redrive.get("maxReceiveCount", 0)) == int(params.get("MaxReceiveCount", "5")),
        f"maxReceiveCount {redrive.get('maxReceiveCount')}",
    )
    if kms:
        check(attributes.get("KmsMasterKeyId") == params["KmsKeyArn"], "queue SSE with the customer key")
    else:
        check(attributes.get("SqsManagedSseEnabled") == "true", "queue SSE (SQS-managed)")

    bus = params.get("EventBusName", "default")
    rule_name = outputs["RuleArn"].rsplit("/", 1)[-1]
    rule = events.describe_rule(Name=rule_name, EventBusName=bus)
    check(
        json.loads(rule["EventPattern"])
        == {
            "source": ["aws.metering-marketplace"],
            "detail-type": ["AWS API Call via CloudTrail"],
            "detail": {"eventSource": ["metering-marketplace.amazonaws.com"]},
        },
        "rule pattern is the metering pattern",
    )
    targets = events.list_targets_by_rule(Rule=rule_name, EventBusName=bus)["Targets"]
    check([t["Arn"] for t in targets] == [outputs["QueueArn"]], "rule targets the queue")

    receive_all(sqs, outputs["QueueUrl"])
    marker = str(uuid.uuid4())
    failing = dict(FAILING_METER_USAGE, eventID=marker)
    put = events.put_events(
        Entries=[
            {
                "Source": "aws.metering-marketplace",
                "DetailType": "AWS API Call via CloudTrail",
                "Detail": json.dumps(failing),
                "EventBusName": bus,
            },
            {
                "Source": "aws.ec2",
                "DetailType": "AWS API Call via CloudTrail",
                "Detail": json.dumps(dict(failing, eventSource="ec2.amazonaws.com")),
                "EventBusName": bus,
            },
        ]
    )
    check(put["FailedEntryCount"] == 0, "PutEvents accepted")
    bodies = receive_all(sqs, outputs["QueueUrl"])
    delivered = [b for b in bodies if b.get("detail", {}).get("eventID") == marker]
    check(
        len(delivered) == 1 and delivered[0]["source"] == "aws.metering-marketplace",
        f"failing MeterUsage delivered once as an EventBridge envelope ({len(bodies)} message(s) in all)",
    )
    check(
        all(b.get("source") == "aws.metering-marketplace" for b in bodies),
        "the non-metering event was filtered out",
    )

    wanted = DAEMON_ACTIONS | (KMS_ACTIONS if kms else set()) | (STATE_ACTIONS if state else set())
    publish_to = {outputs[o] for o in ("TopicArn", "ChatbotTopicArn") if o in outputs}
    for output in ("TaskRoleArn", "ServiceAccountRoleArn"):
        role_name = outputs[output].rsplit("/", 1)[-1]
        got = policy_actions(iam, role_name)
        check(got == wanted, f"{output}: exactly the daemon's actions ({len(got)})")
        topics = {resource for action, resource in policy_grants(iam, role_name) if action == "sns:Publish"}
        check(topics == publish_to, f"{output}: sns:Publish on exactly the daemon's topics ({len(topics)})")
    if slack:
        # moto skips AWS::Chatbot::SlackChannelConfiguration: read what it would subscribe.
        from cfnlint.decode import decode_str

        template, _ = decode_str(TEMPLATE.read_text())
        relayed = template["Resources"]["SlackChannel"]["Properties"]["SnsTopicArns"]
        check(
            relayed == [{"Ref": "ChatbotTopic"}, {"Ref": "AlarmTopic"}],
            "Slack channel relays the Chatbot topic and the alarm topic (from the template: moto skips Chatbot)",
        )
    trust = iam.get_role(RoleName=outputs["ServiceAccountRoleArn"].rsplit("/", 1)[-1])["Role"][
        "AssumeRolePolicyDocument"
    ]
    if isinstance(trust, str):
        trust = json.loads(trust)
    principals = [json.dumps(s["Principal"], sort_keys=True) for s in trust["Statement"]]
    want_principals = 2 if params.get("EksOidcIssuer") else 1
    check(len(principals) == want_principals, f"service account role trust: {principals}")

    if state:
        table = client("dynamodb").describe_table(TableName=outputs["StateTableName"])["Table"]
        check(table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}], "state table key pk")
        ttl = client("dynamodb").describe_time_to_live(TableName=outputs["StateTableName"])[
            "TimeToLiveDescription"
        ]
        if ttl.get("TimeToLiveStatus") == "DISABLED":
            # moto's DynamoDB CloudFormation model drops TimeToLiveSpecification; check the
            # template says it instead.
            from cfnlint.decode import decode_str

            template, _ = decode_str(TEMPLATE.read_text())
            spec = template["Resources"]["StateTable"]["Properties"]["TimeToLiveSpecification"]
            check(
                spec == {"AttributeName": "expires_at", "Enabled": True},
                "state table TTL on expires_at (from the template: moto ignores it)",
            )
        else:
            check(ttl.get("AttributeName") == "expires_at", f"state table TTL {ttl}")

    check_daemon(name, outputs, bus)


def main() -> int:
    check_stack("meterwatch", {})
    check_stack(
        "meterwatch-all-options",
        {
            "NamePrefix": "mw-all",
            "EventBusName": "meterwatch-metering",
            "CreateEventBus": "true",
            "EventBusSourceAccountIds": "111111111111,222222222222",
            "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "MaxReceiveCount": "3",
            "AlertEmail": "alerts@example.com",
            "SlackWorkspaceId": "T0123456789",
            "SlackChannelId": "C0123456789",
            "EnableStateTable": "true",
            "EksOidcIssuer": "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE",
        },
    )
    if failures:
        print(f"moto-cfn-smoke: {len(failures)} check(s) failed:")
        for failure in failures:
            print(f"  - {failure}")
        return 1
    print("moto-cfn-smoke: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
