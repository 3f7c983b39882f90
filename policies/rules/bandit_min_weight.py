"""bandit-min-weight: a VirtualService whose weights an experiment agent owns keeps every arm at
`minWeight` > 0, so the agent never stops learning about an arm (and a bad streak cannot starve one
for good); its initial split respects the same floor."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._kubernetes import ISTIO_VIRTUAL_SERVICE_TYPES, get_path, items, number, object_name

MANDATORY_IN = ("prod",)  # advisory below prod

OWNER_ANNOTATION = "turnout.dev/weights-owner"
MIN_WEIGHT_ANNOTATION = "turnout.dev/bandit-min-weight"


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in ISTIO_VIRTUAL_SERVICE_TYPES:
        return
    annotations = get_path(args.props, "metadata", "annotations") or {}
    if annotations.get(OWNER_ANNOTATION) != "experiment-agent":
        return
    name = object_name(args.props)
    text = annotations.get(MIN_WEIGHT_ANNOTATION)
    try:
        floor = float(text)
    except (TypeError, ValueError):
        report_violation(f"{name}: its weights are learned but it declares no minWeight ({MIN_WEIGHT_ANNOTATION}).")
        return
    if floor <= 0:
        report_violation(f"{name}: minWeight {floor:g} lets the agent starve an arm; keep it above 0.")
        return
    for route in items(get_path(args.props, "spec", "http")):
        destinations = items(get_path(route, "route"))
        if len(destinations) < 2:
            continue
        for destination in destinations:
            weight = number(get_path(destination, "weight")) or 0
            if weight < floor:
                subset = get_path(destination, "destination", "subset")
                report_violation(f"{name}: arm {subset} starts at {weight:g}%, below minWeight {floor:g}%.")


bandit_min_weight = ResourceValidationPolicy(
    name="bandit-min-weight",
    description="Learned (bandit) weights keep every arm at minWeight > 0.",
    enforcement_level=EnforcementLevel.ADVISORY,  # MANDATORY_IN raises it in prod
    validate=validate,
    remediation_steps="Set the bandit's minWeight to 1 or more (5 by default), small enough for every arm to keep it.",
)
