"""run-as-non-root: no container turnout renders may run as root (runAsNonRoot, and no uid 0)."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._kubernetes import containers, effective_security, number, object_name, rendered_pod_spec


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    pod = rendered_pod_spec(args.resource_type, args.props, args.urn)
    if pod is None:
        return
    for name, container in containers(pod):
        where = f"{object_name(args.props)}: container {name}"
        if number(effective_security(pod, container, "runAsUser")) == 0:
            report_violation(f"{where} runs as uid 0 (root).")
        elif effective_security(pod, container, "runAsNonRoot") is not True:
            report_violation(f"{where} may run as root (runAsNonRoot is not true).")


run_as_non_root = ResourceValidationPolicy(
    name="run-as-non-root",
    description="Containers run as a non-root user (runAsNonRoot: true, never uid 0).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Set securityContext.runAsNonRoot: true (pod or container) and a non-zero runAsUser; "
    "build the image to run as an unprivileged user.",
)
