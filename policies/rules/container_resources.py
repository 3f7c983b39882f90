"""container-resources: every container turnout renders requests and limits CPU and memory, so the
scheduler places it honestly and a runaway model cannot starve its neighbours."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._kubernetes import containers, get_path, object_name, rendered_pod_spec

MANDATORY_IN = ("prod",)  # advisory below prod

REQUIRED = tuple((bound, resource) for bound in ("requests", "limits") for resource in ("cpu", "memory"))


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    pod = rendered_pod_spec(args.resource_type, args.props, args.urn)
    if pod is None:
        return
    for name, container in containers(pod):
        absent = [
            f"{bound}.{resource}"
            for bound, resource in REQUIRED
            if get_path(container, "resources", bound, resource) in (None, "")
        ]
        if absent:
            report_violation(f"{object_name(args.props)}: container {name} lacks {', '.join(absent)}.")


container_resources = ResourceValidationPolicy(
    name="container-resources",
    description="Every container requests and limits CPU and memory.",
    enforcement_level=EnforcementLevel.ADVISORY,  # MANDATORY_IN raises it in prod
    validate=validate,
    remediation_steps="Set the version's resources (cpu, memory); turnout uses them as requests and limits.",
)
