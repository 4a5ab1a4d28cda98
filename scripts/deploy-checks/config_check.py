"""Check the daemon configs shipped in deploy/ against the daemon's config contract.

deploy/meterwatch.example.toml (baked into the image) and the Kubernetes base's meterwatch.toml
must have exactly the contract's keys (a typo would be rejected by the daemon's
deny_unknown_fields), and the platforms' kill timeouts must exceed the drain time.
"""

import json
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = [
    ROOT / "deploy" / "meterwatch.example.toml",
    ROOT / "deploy" / "kubernetes" / "base" / "meterwatch.toml",
]
CONTRACT = {
    "rules": {"paths", "watch"},
    "source": {"type", "queue_url", "pollers", "wait_time_secs", "max_messages", "visibility_timeout_secs"},
    "sinks.alerts": {"type", "topic_arn"},
    "state": {"type", "table"},
    "http": {"listen"},
    "shutdown": {"grace_secs"},
}


def tables(config: dict) -> dict[str, set[str]]:
    found = {}
    for section, value in config.items():
        if section == "sinks":
            for sink, keys in value.items():
                found[f"sinks.{sink}"] = set(keys)
        else:
            found[section] = set(value)
    return found


def main() -> int:
    problems = []
    grace = None
    for path in CONFIGS:
        name = path.relative_to(ROOT)
        config = tomllib.loads(path.read_text())
        if tables(config) != CONTRACT:
            problems.append(f"{name}: keys {tables(config)} differ from the contract {CONTRACT}")
        if not 1 <= config["source"]["wait_time_secs"] <= 20:
            problems.append(f"{name}: wait_time_secs must be 1..20")
        if not 1 <= config["source"]["max_messages"] <= 10:
            problems.append(f"{name}: max_messages must be 1..10")
        grace = config["shutdown"]["grace_secs"]
        print(f"ok   {name}: contract keys, grace_secs {grace}")

    deployment = yaml.safe_load((ROOT / "deploy/kubernetes/base/deployment.yaml").read_text())
    k8s_grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    task = json.loads((ROOT / "deploy/ecs/task-definition.json").read_text())
    stop_timeout = task["containerDefinitions"][0]["stopTimeout"]
    for what, limit in [("terminationGracePeriodSeconds", k8s_grace), ("stopTimeout", stop_timeout)]:
        if grace is None or limit <= grace + 5:
            problems.append(f"{what} {limit} leaves no room after the {grace} s drain")
        else:
            print(f"ok   {what} {limit} > grace_secs {grace}")
    for problem in problems:
        print(f"FAIL {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
