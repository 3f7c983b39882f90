"""no-privilege-escalation: no container turnout renders is privileged or may gain privileges
(setuid binaries, file capabilities): allowPrivilegeEscalation is false, and it defaults to true."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._kubernetes import containers, get_path, object_name, rendered_pod_spec


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    pod = rendered_pod_spec(args.resource_type, args.props, args.urn)
    if pod is None:
        return
    for name, container in containers(pod):
        where = f"{object_name(args.props)}: container {name}"
        if get_path(container, "securityContext", "privileged") is True:
            report_violation(f"{where} is privileged.")
        if get_path(container, "securityContext", "allowPrivilegeEscalation") is not False:
            report_violation(f"{where} may escalate privileges (allowPrivilegeEscalation is not false).")


no_privilege_escalation = ResourceValidationPolicy(
    name="no-privilege-escalation",
    description="Containers are not privileged and set allowPrivilegeEscalation: false.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Set each container's securityContext.allowPrivilegeEscalation: false and drop privileged.",
)
