"""The CloudWatch alarms of deploy/cloudformation and deploy/terraform: the same alarms in both,
each notifying the alarm topic with OK actions too, and the ones issue 25 asks for.

- every alarm of the template has a Terraform alarm of the same name (NamePrefix-x and
  local.x_key) with the same metrics, statistic, period, evaluation, threshold, comparison and
  missing-data treatment, and the reverse;
- the no-consumer alarm sums NumberOfEmptyReceives and NumberOfMessagesReceived (metric math,
  missing data filled with 0) and fires when that stays at 0 for 15 minutes.
"""

import re
import sys
from pathlib import Path

import hcl2
from cfnlint.decode import decode_str

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "cloudformation" / "meterwatch.yaml"
MODULE = ROOT / "deploy" / "terraform" / "main.tf"


def cfn_alarms() -> dict:
    template, matches = decode_str(TEMPLATE.read_text())
    if matches:
        raise SystemExit(f"{TEMPLATE.name} does not parse")
    alarms = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        p = resource["Properties"]
        alarm_name = p["AlarmName"]["Fn::Sub"].replace("${NamePrefix}-", "")
        if "Metrics" in p:
            metrics = []
            for query in p["Metrics"]:
                stat = query.get("MetricStat")
                metrics.append((
                    query["Id"],
                    stat["Metric"]["MetricName"] if stat else None,
                    stat["Stat"] if stat else None,
                    stat["Period"] if stat else None,
                    query.get("Expression"),
                    query.get("ReturnData", True),
                ))
        else:
            metrics = [("m", p["MetricName"], p["Statistic"], p["Period"], None, True)]
        alarms[alarm_name] = {
            "metrics": sorted(metrics, key=str),
            "evaluation_periods": p["EvaluationPeriods"],
            "datapoints_to_alarm": p.get("DatapointsToAlarm", p["EvaluationPeriods"]),
            "threshold": p["Threshold"] if isinstance(p["Threshold"], (int, float)) else "param",
            "comparison": p["ComparisonOperator"],
            "missing": p["TreatMissingData"],
            "actions": (p.get("AlarmActions") == [{"Ref": "AlarmTopic"}], p.get("OKActions") == [{"Ref": "AlarmTopic"}]),
            "resource": name,
        }
    return alarms


def unwrap(value):
    """python-hcl2 wraps every attribute's value in a one-element list; blocks stay lists."""
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list) and len(value) == 1 and not isinstance(value[0], dict):
        return unwrap(value[0])
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def tf_alarms() -> dict:
    parsed = unwrap(hcl2.loads(MODULE.read_text()))
    keys = {}
    for block in parsed.get("locals", []):
        for key, value in block.items():
            if isinstance(value, str) and key.endswith("_key"):
                keys[f"local.{key}"] = re.sub(r"^\$\{var\.name_prefix\}-", "", value)
    alarms = {}
    for block in parsed.get("resource", []):
        for kind, named in block.items():
            if kind.strip('"') != "aws_cloudwatch_metric_alarm":
                continue
            for a in named.values():
                if not isinstance(a, dict):
                    continue
                name = keys.get(a["alarm_name"].strip("${}"), a["alarm_name"])
                if "metric_query" in a:
                    metrics = []
                    for query in a["metric_query"]:
                        metric = query.get("metric")
                        metric = metric[0] if isinstance(metric, list) else metric
                        metrics.append((
                            query["id"],
                            metric["metric_name"] if metric else None,
                            metric["stat"] if metric else None,
                            metric["period"] if metric else None,
                            query.get("expression"),
                            query.get("return_data", True),
                        ))
                else:
                    metrics = [("m", a["metric_name"], a["statistic"], a["period"], None, True)]
                threshold = a["threshold"]
                alarms[name] = {
                    "metrics": sorted(metrics, key=str),
                    "evaluation_periods": a["evaluation_periods"],
                    "datapoints_to_alarm": a.get("datapoints_to_alarm", a["evaluation_periods"]),
                    "threshold": threshold if isinstance(threshold, (int, float)) else "param",
                    "comparison": a["comparison_operator"],
                    "missing": a["treat_missing_data"],
                    "actions": (
                        "aws_sns_topic.alarms.arn" in str(a.get("alarm_actions")),
                        "aws_sns_topic.alarms.arn" in str(a.get("ok_actions")),
                    ),
                }
    return alarms


def main() -> int:
    problems = []
    cfn, tf = cfn_alarms(), tf_alarms()
    for name in sorted(set(cfn) | set(tf)):
        if name not in tf:
            problems.append(f"alarm {name} is in the template only")
            continue
        if name not in cfn:
            problems.append(f"alarm {name} is in the Terraform module only")
            continue
        ours = {k: v for k, v in cfn[name].items() if k != "resource"}
        for key, value in ours.items():
            if tf[name][key] != value:
                problems.append(f"alarm {name}: {key} differs: template {value!r}, Terraform {tf[name][key]!r}")
        if ours["actions"] != (True, True):
            problems.append(f"alarm {name}: must notify the alarm topic on ALARM and on OK")
    no_consumer = cfn.get("no-consumer")
    if no_consumer is None:
        problems.append("no no-consumer alarm (issue 25: a queue without a consumer pages)")
    else:
        names = {m[1] for m in no_consumer["metrics"]}
        expressions = [m[4] for m in no_consumer["metrics"] if m[4]]
        periods = {m[3] for m in no_consumer["metrics"] if m[3]}
        if not {"NumberOfEmptyReceives", "NumberOfMessagesReceived"} <= names:
            problems.append(f"no-consumer: metrics {sorted(n for n in names if n)}")
        if not any("FILL(" in e and "+" in e for e in expressions):
            problems.append("no-consumer: expects one sum with missing data filled with 0")
        window = no_consumer["datapoints_to_alarm"] * max(periods or {0})
        if window != 900 or no_consumer["threshold"] != 0 or no_consumer["comparison"] != "LessThanOrEqualToThreshold":
            problems.append(f"no-consumer: fires after {window} s at <= 0 expected 900 s")
        if no_consumer["missing"] != "breaching":
            problems.append("no-consumer: missing data must count as breaching")
    for problem in problems:
        print(f"FAIL {problem}")
    print(f"{'ok  ' if not problems else 'FAIL'} {len(cfn)} alarms in the template, {len(tf)} in Terraform")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
