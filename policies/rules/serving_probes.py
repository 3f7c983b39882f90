"""serving-probes: every serving container (Deployments, StatefulSets, DaemonSets, Knative revision
templates) has a readiness probe, so it gets traffic only when it can answer, and a liveness probe,
so a wedged model is restarted. Jobs serve nobody and are not checked."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._kubernetes import BATCH_KINDS, containers, get_path, kind_of, object_name, rendered_pod_spec

MANDATORY_IN = ("prod",)  # advisory below prod

PROBES = ("readinessProbe", "livenessProbe")


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    pod = rendered_pod_spec(args.resource_type, args.props, args.urn)
    if pod is None or kind_of(args.resource_type) in BATCH_KINDS:
        return
    for name, container in containers(pod, init=False):
        absent = [probe for probe in PROBES if not get_path(container, probe)]
        if absent:
            report_violation(f"{object_name(args.props)}: container {name} lacks {', '.join(absent)}.")


serving_probes = ResourceValidationPolicy(
    name="serving-probes",
    description="Every serving container has a readiness and a liveness probe.",
    enforcement_level=EnforcementLevel.ADVISORY,  # MANDATORY_IN raises it in prod
    validate=validate,
    remediation_steps="Set the endpoint's health path (turnout probes it for readiness and liveness) or add both "
    "probes to the container.",
)
