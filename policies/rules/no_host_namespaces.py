"""no-host-namespaces: pods turnout renders share neither the node's network, nor its process IDs,
nor its IPC with anything else on the node."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._kubernetes import get_path, object_name, rendered_pod_spec

HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    pod = rendered_pod_spec(args.resource_type, args.props, args.urn)
    if pod is None:
        return
    shared = [field for field in HOST_NAMESPACES if get_path(pod, field) is True]
    if shared:
        report_violation(f"{object_name(args.props)}: pods share the node's namespaces ({', '.join(shared)}).")


no_host_namespaces = ResourceValidationPolicy(
    name="no-host-namespaces",
    description="Pods do not use the node's network, PID or IPC namespaces.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Remove hostNetwork, hostPID and hostIPC from the pod spec; expose ports through a Service.",
)
