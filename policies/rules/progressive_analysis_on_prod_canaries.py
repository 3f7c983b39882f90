"""progressive-analysis-on-prod-canaries: a prod canary on static weights (a VirtualService naming
its canary) waits for a person to notice trouble; Flagger's analysis would promote it on healthy
metrics and roll it back on failing ones. Advice in every tier, never a gate: a static canary is a
legitimate choice. (Knative canaries cannot be progressive and are not advised.)"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._kubernetes import (
    CANARY_ANNOTATION,
    ISTIO_VIRTUAL_SERVICE_TYPES,
    get_path,
    object_name,
    shipped_upstream,
    tier_of,
)


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in ISTIO_VIRTUAL_SERVICE_TYPES or shipped_upstream(args.urn):
        return
    canary = get_path(args.props, "metadata", "annotations", CANARY_ANNOTATION)
    if canary and tier_of(args.props) == "prod":
        report_violation(
            f"{object_name(args.props)}: prod canary {canary} runs on static weights, with no analysis to roll it back."
        )


progressive_analysis_on_prod_canaries = ResourceValidationPolicy(
    name="progressive-analysis-on-prod-canaries",
    description="Prod canaries are analysed by Flagger (strategy.progressive) rather than held at static weights.",
    enforcement_level=EnforcementLevel.ADVISORY,  # advice in every tier
    validate=validate,
    remediation_steps="Add `progressive: {}` to the canary strategy (istio backend): Flagger then steps the weight "
    "up on success rate and latency and rolls back on failure.",
)
