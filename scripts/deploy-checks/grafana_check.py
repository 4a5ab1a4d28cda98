"""Check the Grafana dashboard in deploy/grafana and write its queries as a Prometheus rules
file (one recording rule a query) for `promtool check rules`, which parses every expression.

- the file is JSON with a title, a uid, panels with unique ids and grid positions;
- every panel and query uses the `${datasource}` variable (no data source uid of one install);
- every query has an expression; Grafana's variables are replaced by values promtool parses.

Usage: grafana_check.py OUT.yaml
"""

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana").glob("*.json"))
# Grafana's variables, as values that keep the expression's meaning.
VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$job": ".*"}


def main() -> int:
    out = sys.argv[1]
    problems, rules = [], []
    for path in DASHBOARDS:
        name = path.relative_to(ROOT)
        try:
            dashboard = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            problems.append(f"{name}: not JSON: {error}")
            continue
        for key in ("title", "uid", "panels", "schemaVersion"):
            if key not in dashboard:
                problems.append(f"{name}: no {key}")
        variables = {v.get("name") for v in dashboard.get("templating", {}).get("list", [])}
        if "datasource" not in variables:
            problems.append(f"{name}: no datasource variable")
        ids = [panel.get("id") for panel in dashboard.get("panels", [])]
        if len(ids) != len(set(ids)):
            problems.append(f"{name}: panel ids repeat: {ids}")
        for panel in dashboard.get("panels", []):
            where = f"{name}: panel {panel.get('title')!r}"
            if "gridPos" not in panel:
                problems.append(f"{where}: no gridPos")
            for target in [panel] + panel.get("targets", []):
                uid = target.get("datasource", {}).get("uid")
                if uid != "${datasource}":
                    problems.append(f"{where}: data source {uid!r}, expected ${{datasource}}")
            if not panel.get("targets"):
                problems.append(f"{where}: no queries")
            for target in panel.get("targets", []):
                expr = target.get("expr")
                if not expr:
                    problems.append(f"{where}: query {target.get('refId')} has no expr")
                    continue
                for variable, value in VARIABLES.items():
                    expr = expr.replace(variable, value)
                rules.append({
                    "record": f"dashboard:panel{panel.get('id')}:{target.get('refId')}",
                    "expr": expr,
                })
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    with open(out, "w") as file:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, file, sort_keys=False)
    print(f"{len(DASHBOARDS)} dashboard(s), {len(rules)} queries written to {out}")
    return 1 if problems or not rules else 0


if __name__ == "__main__":
    sys.exit(main())
