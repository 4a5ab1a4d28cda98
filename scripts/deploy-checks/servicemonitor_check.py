"""Validate ServiceMonitor objects in rendered manifests (kubernetes-validate has no CRD schemas).

A strict subset of the Prometheus Operator's monitoring.coreos.com/v1 ServiceMonitor schema,
covering the fields deploy/kubernetes uses; an unknown or misspelt field fails. It also checks
that the ServiceMonitor selects a Service in the same output and names one of its ports.

Usage: servicemonitor_check.py RENDERED.yaml...
"""

import sys

import jsonschema
import yaml

LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}, "labels": LABELS},
        },
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchLabels": LABELS},
                },
                "namespaceSelector": {"type": "object"},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scheme": {"enum": ["http", "https"]},
                        },
                    },
                },
            },
        },
    },
}


def main() -> int:
    problems = []
    n_checked = 0
    for path in sys.argv[1:]:
        documents = [d for d in yaml.safe_load_all(open(path)) if d]
        services = [d for d in documents if d.get("kind") == "Service"]
        for document in documents:
            if document.get("kind") != "ServiceMonitor":
                continue
            n_checked += 1
            name = f"{path}: ServiceMonitor {document['metadata'].get('name')}"
            for error in jsonschema.Draft202012Validator(SCHEMA).iter_errors(document):
                problems.append(f"{name}: {'/'.join(map(str, error.path))}: {error.message}")
            wanted = document["spec"]["selector"].get("matchLabels", {})
            matching = [
                s for s in services
                if wanted.items() <= s["metadata"].get("labels", {}).items()
                and s["metadata"].get("namespace") == document["metadata"].get("namespace")
            ]
            ports = {p.get("name") for s in matching for p in s["spec"].get("ports", [])}
            for endpoint in document["spec"]["endpoints"]:
                if endpoint.get("port") not in ports:
                    problems.append(f"{name}: no selected Service has a port named {endpoint.get('port')!r}")
    for problem in problems:
        print(f"FAIL {problem}")
    print(f"{'ok  ' if not problems else 'FAIL'} {n_checked} ServiceMonitor(s) checked")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
