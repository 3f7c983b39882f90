"""Print the policy-pack config for a tier: `pulumi up --policy-pack policies --policy-pack-config FILE`.

python policies/tier_config.py prod > build/policy-config.json
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rules import tier_config  # noqa: E402  (needs the pack's folder on sys.path)

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("dev", "staging", "prod"):
        sys.exit("usage: python policies/tier_config.py dev|staging|prod")
    print(json.dumps(tier_config(sys.argv[1]), indent=2))
