"""mirror-percent-in-range: every mirror percentage of a VirtualService is between 0 and 100
(`mirrors[].percentage.value`, and the older `mirrorPercentage.value` and `mirrorPercent`)."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._kubernetes import (
    ISTIO_VIRTUAL_SERVICE_TYPES,
    get_path,
    items,
    number,
    object_name,
    shipped_upstream,
)


def _mirrors(route) -> list[tuple[float | None, object]]:
    """(percent, destination) for every mirror of an HTTP route; percent None where Istio's 100% applies."""
    found = [
        (number(get_path(m, "percentage", "value")), get_path(m, "destination"))
        for m in items(get_path(route, "mirrors"))
    ]
    mirror = get_path(route, "mirror")
    if mirror is not None:
        percent = number(get_path(route, "mirrorPercentage", "value"))
        found.append((number(get_path(route, "mirrorPercent")) if percent is None else percent, mirror))
    return found


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in ISTIO_VIRTUAL_SERVICE_TYPES or shipped_upstream(args.urn):
        return
    for index, route in enumerate(items(get_path(args.props, "spec", "http"))):
        for percent, destination in _mirrors(route):
            if percent is not None and not 0 <= percent <= 100:
                target = get_path(destination, "subset") or get_path(destination, "host") or "(no destination)"
                name = get_path(route, "name") or f"http[{index}]"
                report_violation(
                    f"{object_name(args.props)}: route {name} mirrors {percent:g}% to {target}; "
                    "a mirror percentage is 0 to 100."
                )


mirror_percent_in_range = ResourceValidationPolicy(
    name="mirror-percent-in-range",
    description="Every mirror percentage of a VirtualService is between 0 and 100.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Set each shadow's percent in the shadow strategy to an integer from 0 to 100.",
)
