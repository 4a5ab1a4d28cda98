"""Validate deploy/ecs/*.json against botocore's ECS service model, offline.

task-definition.json is RegisterTaskDefinition input and service.json CreateService input (the
files `aws ecs ... --cli-input-json` takes). botocore's own parameter validator checks every
key and type, so an unknown or misspelt key fails here as it would in the CLI. Then the
meterwatch contract: stopTimeout above the daemon's 25 s drain, a read-only root filesystem,
awslogs logging, and only environment variables the daemon or the AWS SDK read.
"""

import json
import re
import sys
from pathlib import Path

import botocore.session
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters

ROOT = Path(__file__).resolve().parents[2]
ECS = ROOT / "deploy" / "ecs"
FILES = {
    "task-definition.json": "RegisterTaskDefinition",
    "service.json": "CreateService",
}
ENV_CONTRACT = {
    "METERWATCH_CONFIG",
    "METERWATCH_RULES",
    "METERWATCH_QUEUE_URL",
    "METERWATCH_TOPIC_ARN",
    "METERWATCH_CHATBOT_TOPIC_ARN",
    "METERWATCH_STATE_TABLE",
    "METERWATCH_LISTEN",
    "METERWATCH_LOG_FORMAT",
    "RUST_LOG",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
}
PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)\}")


def main() -> int:
    model = botocore.session.get_session().get_service_model("ecs")
    problems: list[str] = []
    placeholders: set[str] = set()
    for name, operation in FILES.items():
        path = ECS / name
        document = json.loads(path.read_text())
        placeholders |= set(PLACEHOLDER.findall(path.read_text()))
        try:
            validate_parameters(document, model.operation_model(operation).input_shape)
        except ParamValidationError as error:
            problems.append(f"{name}: {operation}: {error}")
        else:
            print(f"ok   {name} is valid {operation} input (botocore {botocore.__version__})")

    task = json.loads((ECS / "task-definition.json").read_text())
    for container in task["containerDefinitions"]:
        where = f"task-definition.json container {container['name']}"
        if not 25 < container.get("stopTimeout", 30) <= 120:
            problems.append(f"{where}: stopTimeout must exceed the 25 s drain (Fargate max 120)")
        if container.get("readonlyRootFilesystem") is not True:
            problems.append(f"{where}: readonlyRootFilesystem must be true")
        if container.get("logConfiguration", {}).get("logDriver") != "awslogs":
            problems.append(f"{where}: logDriver must be awslogs")
        unknown = {e["name"] for e in container.get("environment", [])} - ENV_CONTRACT
        if unknown:
            problems.append(f"{where}: environment variables outside the contract: {sorted(unknown)}")

    readme = (ECS / "README.md").read_text()
    undocumented = sorted(p for p in placeholders if f"${{{p}}}" not in readme)
    if undocumented:
        problems.append(f"placeholders not explained in deploy/ecs/README.md: {undocumented}")

    for problem in problems:
        print(f"FAIL {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
