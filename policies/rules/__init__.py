"""The rules of the turnout policy pack: one rule per module, kebab-case names (CONTRACT §3).

Every public module here holds one policy. A module may declare `MANDATORY_IN = ("prod",)`: the
rule is advisory in other tiers and mandatory in those (rollout-safety and availability rules).
The Pulumi CLI gets the same levels from `python policies/tier_config.py TIER`, passed as
`--policy-pack-config`. Adding a rule is adding a module; nothing else needs editing.
"""

import importlib
import pkgutil

from pulumi_policy import ResourceValidationPolicy, StackValidationPolicy

PACK_NAME = "turnout"


def _discover() -> tuple[list, dict[str, tuple[str, ...]]]:
    policies, mandatory_in = [], {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        found = [
            value
            for value in vars(module).values()
            if isinstance(value, (ResourceValidationPolicy, StackValidationPolicy))
        ]
        if len(found) != 1:
            raise ImportError(
                f"policies/rules/{module_info.name}.py must define exactly one policy, found {len(found)}"
            )
        policies.append(found[0])
        if getattr(module, "MANDATORY_IN", ()):
            mandatory_in[found[0].name] = tuple(module.MANDATORY_IN)
    return policies, mandatory_in


POLICIES, TIER_MANDATORY = _discover()


def tier_config(tier: str) -> dict:
    """Policy-pack config for a stack's tier: the rules mandatory in that tier."""
    return {name: "mandatory" for name, tiers in TIER_MANDATORY.items() if tier in tiers}
