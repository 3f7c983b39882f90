"""The rules of the turnout policy pack, one per module, kebab-case names (CONTRACT §3)."""

from .canary_weight_cap import canary_weight_cap
from .image_pinned import image_pinned
from .prod_min_replicas import prod_min_replicas
from .shadow_not_user_facing import shadow_not_user_facing
from .traffic_weights_sum_to_100 import traffic_weights_sum_to_100

PACK_NAME = "turnout"

POLICIES = [
    traffic_weights_sum_to_100,
    canary_weight_cap,
    prod_min_replicas,
    shadow_not_user_facing,
    image_pinned,
]

# Rollout-safety and availability rules: advisory below prod, mandatory in prod. The Pulumi CLI gets
# the same levels from `python policies/tier_config.py TIER` (passed as --policy-pack-config).
TIER_MANDATORY = {"canary-weight-cap": "prod", "prod-min-replicas": "prod", "shadow-not-user-facing": "prod"}


def tier_config(tier: str) -> dict:
    """Policy-pack config for a stack's tier: the rules mandatory in that tier."""
    return {name: "mandatory" for name, mandatory_in in TIER_MANDATORY.items() if tier == mandatory_in}
