"""The rules of the turnout policy pack: one rule per module, kebab-case names (CONTRACT §3).

Every public module here holds one policy. A module may declare `MANDATORY_IN = ("prod",)`: the
rule is advisory in other tiers and mandatory in those (rollout-safety and availability rules).
The Pulumi CLI gets the same levels from `python policies/tier_config.py TIER`, passed as
`--policy-pack-config`. Adding a rule is adding a module; nothing else needs editing.
"""

import datetime
import importlib
import pkgutil

from pulumi_policy import PolicyConfigSchema, ResourceValidationPolicy, StackValidationPolicy

from ._waivers import WAIVERS_SCHEMA, find

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
        policies.append(_honouring_waivers(found[0]))
        if getattr(module, "MANDATORY_IN", ()):
            mandatory_in[found[0].name] = tuple(module.MANDATORY_IN)
    return policies, mandatory_in


def _honouring_waivers(policy):
    """Drop the findings a waiver in the policy's config (`waivers`, see _waivers.py) covers."""
    validate = policy.validate

    def validate_with_waivers(args, report_violation):
        waivers = (args.get_config() or {}).get("waivers") or []
        if not waivers:
            return validate(args, report_violation)
        today = datetime.date.today()
        own_urn = getattr(args, "urn", "")  # resource rules; stack rules name the resource when reporting

        def report(message, urn=None):
            if find(waivers, urn or own_urn, today)[0] is None:
                report_violation(message, urn)

        return validate(args, report)

    schema = policy.config_schema or PolicyConfigSchema(properties={})
    policy.config_schema = PolicyConfigSchema(
        properties={**schema.properties, "waivers": WAIVERS_SCHEMA}, required=schema.required
    )
    policy.validate = validate_with_waivers
    policy.unwaived_validate = validate  # `turnout plan` applies waivers itself, to show what they cover
    return policy


POLICIES, TIER_MANDATORY = _discover()


def tier_config(tier: str) -> dict:
    """Policy-pack config for a stack's tier: the rules mandatory in that tier."""
    return {name: "mandatory" for name, tiers in TIER_MANDATORY.items() if tier in tiers}
