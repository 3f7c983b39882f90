"""prod-min-replicas: prod versions serving traffic keep at least two replicas, and Knative ones
never scale to zero (min-scale at least 1, scale-to-zero off for the cluster)."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from ._dr import STANDBY_LABEL
from ._kubernetes import ROLE_LABEL, cluster_of, get_path, kind_of, number, object_name, tier_of

MANDATORY_IN = ("prod",)  # advisory below prod

MINIMUM = 2
KNATIVE_CONFIGURATION = "kubernetes:serving.knative.dev/v1:Configuration"


def _key(resource) -> tuple:
    return (
        cluster_of(resource),
        get_path(resource.props, "metadata", "namespace"),
        get_path(resource.props, "metadata", "name"),
    )


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = args.resources
    hpa_minimum = {
        (
            cluster_of(r),
            get_path(r.props, "metadata", "namespace"),
            get_path(r.props, "spec", "scaleTargetRef", "name"),
        ): number(get_path(r.props, "spec", "minReplicas")) or 1
        for r in resources
        if kind_of(r.resource_type) == "HorizontalPodAutoscaler"
    }
    scale_to_zero = [
        r
        for r in resources
        if kind_of(r.resource_type) == "ConfigMap"
        and get_path(r.props, "metadata", "name") == "config-autoscaler"
        and str(get_path(r.props, "data", "enable-scale-to-zero")).lower() != "false"
    ]
    for r in resources:
        if tier_of(r.props) != "prod":
            continue
        if get_path(r.props, "metadata", "labels", STANDBY_LABEL):
            continue  # a DR standby serves no user until failover (dr-warm-standby-not-zero checks it)
        if kind_of(r.resource_type) == "Deployment":
            if get_path(r.props, "spec", "template", "metadata", "labels", ROLE_LABEL) == "shadow":
                continue  # a shadow serves no user
            replicas = hpa_minimum.get(_key(r), number(get_path(r.props, "spec", "replicas")))
            replicas = 1 if replicas is None else replicas  # Kubernetes' default
            if replicas < MINIMUM:
                report_violation(f"{object_name(r.props)} runs {replicas:g} replica(s); prod needs {MINIMUM}.", r.urn)
        elif r.resource_type == KNATIVE_CONFIGURATION:
            annotations = get_path(r.props, "spec", "template", "metadata", "annotations") or {}
            try:
                min_scale = float(annotations.get("autoscaling.knative.dev/min-scale", 0))
            except (TypeError, ValueError):
                min_scale = 0.0  # unreadable: Knative falls back to its default, which may be zero
            if min_scale < 1:
                report_violation(f"{object_name(r.props)} may scale to zero (min-scale {min_scale:g}).", r.urn)
            for config in scale_to_zero:
                report_violation(
                    f"{object_name(r.props)} runs where config-autoscaler allows scale-to-zero.", config.urn
                )


prod_min_replicas = StackValidationPolicy(
    name="prod-min-replicas",
    description="Prod model versions serving traffic keep at least 2 replicas (Knative: min-scale >= 1, "
    "no scale-to-zero).",
    enforcement_level=EnforcementLevel.ADVISORY,  # only prod objects are checked; mandatory in prod
    validate=validate,
    remediation_steps="Set the version's replicas.min to 2 or more (prod's default).",
)
