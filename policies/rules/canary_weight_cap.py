"""canary-weight-cap: a canary never takes more than `maxWeight`% (50 by default) of the traffic."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from ._kubernetes import (
    CANARY_ANNOTATION,
    ISTIO_VIRTUAL_SERVICE_TYPES,
    KNATIVE_TRAFFIC_TYPES,
    get_path,
    number,
    object_name,
)

MANDATORY_IN = ("prod",)  # advisory below prod

DEFAULT_CAP = 50
FLAGGER_CANARY = "kubernetes:flagger.app/v1beta1:Canary"


def canary_weights(resource_type: str, props) -> list[float]:
    """Every weight the canary version gets in this object."""
    canary = get_path(props, "metadata", "annotations", CANARY_ANNOTATION)
    if resource_type == FLAGGER_CANARY:
        analysis = get_path(props, "spec", "analysis") or {}
        steps = [number(w) for w in get_path(analysis, "stepWeights") or []]
        return [w for w in (*steps, number(get_path(analysis, "maxWeight"))) if w is not None]
    if not canary:
        return []
    if resource_type in ISTIO_VIRTUAL_SERVICE_TYPES:
        return [
            number(get_path(d, "weight")) or 0
            for route in get_path(props, "spec", "http") or []
            for d in get_path(route, "route") or []
            if get_path(d, "destination", "subset") == canary and len(get_path(route, "route") or []) > 1
        ]
    if resource_type in KNATIVE_TRAFFIC_TYPES:
        return [
            number(get_path(t, "percent")) or 0
            for t in get_path(props, "spec", "traffic") or []
            if get_path(t, "tag") == canary
        ]
    return []


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    cap = number(args.get_config().get("maxWeight"))
    cap = DEFAULT_CAP if cap is None else cap
    heaviest = max(canary_weights(args.resource_type, args.props), default=None)
    if heaviest is not None and heaviest > cap:
        report_violation(f"{object_name(args.props)}: the canary reaches {heaviest:g}%, above the cap of {cap:g}%.")


canary_weight_cap = ResourceValidationPolicy(
    name="canary-weight-cap",
    description="A canary takes at most maxWeight% of the traffic (50 unless configured).",
    enforcement_level=EnforcementLevel.ADVISORY,  # MANDATORY_IN raises it in prod
    validate=validate,
    config_schema=PolicyConfigSchema(
        properties={"maxWeight": {"type": "number", "minimum": 1, "maximum": 100, "default": DEFAULT_CAP}}
    ),
    remediation_steps="Lower the canary's weight (or progressive.maxWeight); promote it once it has proven itself.",
)
