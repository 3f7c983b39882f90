"""The rules of the turnout policy pack, one per module, kebab-case names (CONTRACT §3)."""

from .traffic_weights_sum_to_100 import traffic_weights_sum_to_100

PACK_NAME = "turnout"

POLICIES = [
    traffic_weights_sum_to_100,
]
