"""dr-warm-standby-not-zero: a warm standby's model workloads never scale to zero.

A warm standby takes traffic the moment DNS fails over; with no pods it is a pilot light that
the RTO estimate does not account for (no runbook, no node scale-up term).
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from ._dr import STANDBY_LABEL
from ._kubernetes import cluster_of, get_path, kind_of, number, object_name

MANDATORY_IN = ("staging", "prod")


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    hpa_minimum = {
        (
            cluster_of(r),
            get_path(r.props, "metadata", "namespace"),
            get_path(r.props, "spec", "scaleTargetRef", "name"),
        ): number(get_path(r.props, "spec", "minReplicas"))
        for r in args.resources
        if kind_of(r.resource_type) == "HorizontalPodAutoscaler"
    }
    for r in args.resources:
        if get_path(r.props, "metadata", "labels", STANDBY_LABEL) != "reduced":
            continue
        kind = kind_of(r.resource_type)
        if kind == "Deployment":
            key = (cluster_of(r), get_path(r.props, "metadata", "namespace"), get_path(r.props, "metadata", "name"))
            replicas = hpa_minimum[key] if key in hpa_minimum else number(get_path(r.props, "spec", "replicas"))
            replicas = 1 if replicas is None else replicas  # Kubernetes' default (an HPA's too)
        elif kind == "Configuration":
            annotations = get_path(r.props, "spec", "template", "metadata", "annotations") or {}
            try:
                replicas = float(annotations.get("autoscaling.knative.dev/min-scale", 0))
            except (TypeError, ValueError):
                replicas = 0.0
        else:
            continue
        if replicas < 1:
            report_violation(f"{object_name(r.props)} is a warm standby scaled to {replicas:g} replicas.", r.urn)


dr_warm_standby_not_zero = StackValidationPolicy(
    name="dr-warm-standby-not-zero",
    description="A warm-standby region's model workloads keep at least one replica.",
    enforcement_level=EnforcementLevel.ADVISORY,  # MANDATORY_IN raises it in staging and prod
    validate=validate,
    remediation_steps="Keep replicas.min at 1 or more in warm-standby regions (turnout sets it), or declare a "
    "looser turnout:dr target so the tier becomes pilot-light.",
)
