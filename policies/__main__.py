"""turnout's CrossGuard policy pack: `pulumi preview --policy-pack policies`.

`turnout plan` evaluates the same rules (policies/rules) in-process, offline.
"""

import os
import sys

from pulumi_policy import EnforcementLevel, PolicyPack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rules import PACK_NAME, POLICIES  # noqa: E402  (needs the pack's folder on sys.path)

PolicyPack(name=PACK_NAME, policies=POLICIES, enforcement_level=EnforcementLevel.ADVISORY)
