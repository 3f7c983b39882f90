"""Disaster recovery: what a stack's topology recovers from, as `dr.json` reports it.

This version plans stacks without a DR target: it reports the tier `none` and why the estimates
are unbounded. A declared `turnout:dr` target needs the DR topologies (standby regions, replicated
caches, health-checked DNS), which this version does not build yet, so it is refused by name.
"""

from __future__ import annotations

from typing import Any

from turnout.config import DrTarget, Platform, key_path
from turnout.errors import NotSupportedError
from turnout.units import format_duration


def assess(target: DrTarget | None, platform: Platform) -> dict[str, Any]:
    """The `dr.json` document for a stack."""
    if target is not None:
        raise NotSupportedError(
            key_path("dr"),
            f"a target (rpo {format_duration(target.rpo)}, rto {format_duration(target.rto)})",
            "no turnout:dr key: DR tiers derived from RPO/RTO are not built by this version",
        )
    regions = list(platform.regions)
    return {
        "target": None,
        "tier": "none",
        "regions": regions,
        "estimatedRpoSeconds": None,
        "estimatedRtoSeconds": None,
        "meets": True,
        "reasons": [
            "no target declared (turnout:dr is absent), so there is nothing to meet",
            f"{len(regions)} region(s) ({', '.join(regions)}), no standby and no backups: "
            "a regional loss is recovered only by re-running `pulumi up`, so RPO and RTO are unbounded",
        ],
    }
