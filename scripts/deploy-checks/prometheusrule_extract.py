"""Write the rule groups of the PrometheusRule objects in rendered manifests as one Prometheus
rules file, for `promtool check rules` (which reads plain rule files, not the CRD), after
checking the CRD's outer shape (kubernetes-validate has no CRD schemas).

Usage: prometheusrule_extract.py OUT.yaml RENDERED.yaml...
"""

import sys

import jsonschema
import yaml

SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": {"type": "object", "required": ["name", "namespace"]},
        "spec": {
            "type": "object",
            "required": ["groups"],
            "additionalProperties": False,
            "properties": {"groups": {"type": "array", "minItems": 1}},
        },
    },
}


def main() -> int:
    out, rendered = sys.argv[1], sys.argv[2:]
    groups, problems, names = [], [], set()
    for path in rendered:
        for document in yaml.safe_load_all(open(path)):
            if not document or document.get("kind") != "PrometheusRule":
                continue
            name = f"{path}: PrometheusRule {document['metadata'].get('name')}"
            for error in jsonschema.Draft202012Validator(SCHEMA).iter_errors(document):
                problems.append(f"{name}: {'/'.join(map(str, error.path))}: {error.message}")
            # The same component renders in several outputs: one copy of each group.
            for group in document.get("spec", {}).get("groups", []):
                if group.get("name") not in names:
                    names.add(group.get("name"))
                    groups.append(group)
    if not groups:
        problems.append("no PrometheusRule in the rendered manifests")
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    with open(out, "w") as file:
        yaml.safe_dump({"groups": groups}, file, sort_keys=False)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
