"""Offline checks of the Terraform module in deploy/terraform (no provider download needed).

`terraform validate` needs the AWS provider from the Terraform registry, which this machine
cannot reach, so this stands in for the parts it can check without the provider schema:
- every file parses as HCL2 (python-hcl2);
- every var.X, local.X, resource and data reference names something declared, and every
  variable and local is used;
- the module mirrors the CloudFormation template: its variables are the template's
  parameters and its outputs the template's outputs, in snake_case (plus `tags`).
"""

import re
import sys
from pathlib import Path

import hcl2
from cfnlint.decode import decode_str

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "deploy" / "terraform"
TEMPLATE = ROOT / "deploy" / "cloudformation" / "meterwatch.yaml"
TERRAFORM_ONLY_VARIABLES = {"tags"}


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def main() -> int:
    problems: list[str] = []
    variables: set[str] = set()
    locals_: set[str] = set()
    resources: set[str] = set()
    data: set[str] = set()
    outputs: set[str] = set()
    text = ""
    for path in sorted(MODULE.glob("*.tf")):
        source = path.read_text()
        text += source
        try:
            parsed = hcl2.loads(source)
        except Exception as error:  # python-hcl2 raises lark errors of several kinds
            problems.append(f"{path.name}: does not parse: {error}")
            continue
        for block in parsed.get("variable", []):
            variables.update(k.strip('"') for k in block if not k.startswith("__"))
        for block in parsed.get("locals", []):
            locals_.update(k.strip('"') for k in block if not k.startswith("__"))
        for block in parsed.get("output", []):
            outputs.update(k.strip('"') for k in block if not k.startswith("__"))
        for block in parsed.get("resource", []):
            for kind, named in block.items():
                resources.update(f"{kind.strip(chr(34))}.{n.strip(chr(34))}" for n in named if not n.startswith("__"))
        for block in parsed.get("data", []):
            for kind, named in block.items():
                data.update(f"{kind.strip(chr(34))}.{n.strip(chr(34))}" for n in named if not n.startswith("__"))
        print(f"ok   {path.name} parses")

    code = re.sub(r"#[^\n]*", "", text)  # references in comments do not count
    used_vars = set(re.findall(r"\bvar\.(\w+)", code))
    used_locals = set(re.findall(r"\blocal\.(\w+)", code))
    used_data = {f"{k}.{n}" for k, n in re.findall(r"\bdata\.(aws_\w+)\.(\w+)", code)}
    used_resources = {
        f"{k}.{n}" for k, n in re.findall(r"(?<![\w.\"])(aws_\w+)\.(\w+)", code)
    } - {f"{k}" for k in used_data}
    problems += [f"var.{v} is not declared" for v in sorted(used_vars - variables)]
    problems += [f"variable {v} is never used" for v in sorted(variables - used_vars)]
    problems += [f"local.{v} is not declared" for v in sorted(used_locals - locals_)]
    problems += [f"local {v} is never used" for v in sorted(locals_ - used_locals)]
    problems += [f"data.{d} is not declared" for d in sorted(used_data - data)]
    problems += [f"data.{d} is never used" for d in sorted(data - used_data)]
    problems += [f"{r} is not declared" for r in sorted(used_resources - resources)]

    template, matches = decode_str(TEMPLATE.read_text())
    if matches:
        problems.append(f"{TEMPLATE.name} does not parse")
    else:
        parameters = {snake(p) for p in template["Parameters"]}
        cfn_outputs = {snake(o) for o in template["Outputs"]}
        if parameters != variables - TERRAFORM_ONLY_VARIABLES:
            problems.append(
                "variables differ from the template's parameters: "
                f"only in Terraform {sorted(variables - TERRAFORM_ONLY_VARIABLES - parameters)}, "
                f"only in CloudFormation {sorted(parameters - variables)}"
            )
        if cfn_outputs != outputs:
            problems.append(
                "outputs differ from the template's: "
                f"only in Terraform {sorted(outputs - cfn_outputs)}, "
                f"only in CloudFormation {sorted(cfn_outputs - outputs)}"
            )
    print(
        f"     {len(variables)} variables, {len(locals_)} locals, {len(resources)} resources, "
        f"{len(data)} data sources, {len(outputs)} outputs"
    )
    for problem in problems:
        print(f"FAIL {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
