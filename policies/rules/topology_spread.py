"""topology-spread: a model Deployment spreads its pods over zones, so one zone's outage leaves
replicas serving. A Deployment pinned to one replica has nothing to spread and is not checked."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._kubernetes import (
    VERSION_LABEL,
    ZONE_KEY,
    get_path,
    items,
    kind_of,
    number,
    object_name,
    rendered_pod_spec,
    selects,
)

MANDATORY_IN = ("prod",)  # advisory below prod


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if kind_of(args.resource_type) != "Deployment":
        return
    pod = rendered_pod_spec(args.resource_type, args.props, args.urn)
    pod_labels = get_path(args.props, "spec", "template", "metadata", "labels") or {}
    if pod is None or VERSION_LABEL not in pod_labels:
        return  # not a model version's pods
    replicas = number(get_path(args.props, "spec", "replicas"))
    if replicas is not None and replicas <= 1:
        return  # absent is checked: an HorizontalPodAutoscaler may own the count
    spread = [
        c
        for c in items(get_path(pod, "topologySpreadConstraints"))
        if get_path(c, "topologyKey") == ZONE_KEY and selects(get_path(c, "labelSelector"), pod_labels)
    ]
    if not spread:
        report_violation(
            f"{object_name(args.props)}: no topologySpreadConstraint on {ZONE_KEY} selects its pods, "
            "so they may all land in one zone."
        )


topology_spread = ResourceValidationPolicy(
    name="topology-spread",
    description="Model Deployments spread their pods over zones (a topologySpreadConstraint on "
    "topology.kubernetes.io/zone that selects them).",
    enforcement_level=EnforcementLevel.ADVISORY,  # MANDATORY_IN raises it in prod
    validate=validate,
    remediation_steps="Add a topologySpreadConstraint with topologyKey topology.kubernetes.io/zone, maxSkew 1 and a "
    "labelSelector matching the pod labels.",
)
