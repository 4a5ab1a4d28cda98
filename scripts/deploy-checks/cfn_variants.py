"""Write deploy/cloudformation/meterwatch.yaml with every option turned on, as JSON.

checkov evaluates a template's conditions with the parameter defaults, so resources behind a
false condition (Slack, state table, custom bus, customer key, IRSA) are never scanned. This
variant flips the defaults so that scripts/lint-deploy lints those resources too.

Usage: cfn_variants.py OUTPUT_DIR  (prints the written path)
"""

import json
import sys
from pathlib import Path

from cfnlint.decode import decode_str

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "cloudformation" / "meterwatch.yaml"
ALL_OPTIONS = {
    "EventBusName": "meterwatch-metering",
    "CreateEventBus": "true",
    "EventBusSourceAccountIds": "111111111111,222222222222",
    "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "AlertEmail": "alerts@example.com",
    "SlackWorkspaceId": "T0123456789",
    "SlackChannelId": "C0123456789",
    "EnableStateTable": "true",
    "EksOidcIssuer": "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE",
}


def main() -> int:
    out_dir = Path(sys.argv[1])
    template, matches = decode_str(TEMPLATE.read_text())
    if matches:
        for match in matches:
            print(match, file=sys.stderr)
        return 1
    for name, value in ALL_OPTIONS.items():
        template["Parameters"][name]["Default"] = value
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "meterwatch.all-options.json"
    out.write_text(json.dumps(template, indent=2, default=str) + "\n")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
