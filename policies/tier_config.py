"""Print the policy-pack config for a stack: `pulumi up --policy-pack policies --policy-pack-config FILE`.

python policies/tier_config.py prod > build/policy-config.json
python policies/tier_config.py prod environments/Pulumi.prod-aws.yaml > build/policy-config.json

The tier makes the rollout-safety and availability rules mandatory (prod) or leaves them advisory;
the stack file adds its `turnout:waivers`, which the pack honours (policies/rules/_waivers.py).
"""

import datetime
import json
import os
import sys

import yaml  # the pack's virtualenv has it: pulumi-policy depends on pulumi, which depends on PyYAML

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rules import tier_config  # noqa: E402  (needs the pack's folder on sys.path)

USAGE = "usage: python policies/tier_config.py dev|staging|prod [environments/Pulumi.STACK.yaml]"


def waivers_of(stack_file: str) -> dict[str, list[dict]]:
    """The stack file's waivers by policy, as each policy's `waivers` setting."""
    with open(stack_file) as handle:
        config = (yaml.safe_load(handle) or {}).get("config") or {}
    by_policy: dict[str, list[dict]] = {}
    for waiver in config.get("turnout:waivers") or []:
        expires = waiver.get("expires")
        by_policy.setdefault(str(waiver.get("policy")), []).append(
            {
                "resource": str(waiver.get("resource")),
                "reason": str(waiver.get("reason")),
                "expires": expires.isoformat() if isinstance(expires, datetime.date) else str(expires),
            }
        )
    return by_policy


def pack_config(tier: str, stack_file: str | None = None) -> dict:
    config: dict = {name: {"enforcementLevel": level} for name, level in tier_config(tier).items()}
    for policy, waivers in (waivers_of(stack_file) if stack_file else {}).items():
        config.setdefault(policy, {})["waivers"] = waivers
    return config


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or sys.argv[1] not in ("dev", "staging", "prod"):
        sys.exit(USAGE)
    print(json.dumps(pack_config(*sys.argv[1:]), indent=2, sort_keys=True))
