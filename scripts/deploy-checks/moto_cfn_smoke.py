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
- the daemon policy grants exactly the contract's actions;
- the state table (when enabled) has key pk (S) and TTL on expires_at.
"""

import json
import os
import sys
import time
import uuid
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "cloudformation" / "meterwatch.yaml"
ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
REGION = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")

DAEMON_ACTIONS = {
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sns:Publish",
}
KMS_ACTIONS = {"kms:Decrypt", "kms:GenerateDataKey"}
STATE_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
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
    actions: set[str] = set()
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
            actions.update([listed] if isinstance(listed, str) else listed)
    return actions


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
    for output in ("TaskRoleArn", "ServiceAccountRoleArn"):
        role_name = outputs[output].rsplit("/", 1)[-1]
        got = policy_actions(iam, role_name)
        check(got == wanted, f"{output}: exactly the daemon's actions ({len(got)})")
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
