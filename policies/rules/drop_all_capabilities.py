"""drop-all-capabilities: containers turnout renders drop every Linux capability and add back at
most NET_BIND_SERVICE (what Pod Security's restricted profile allows)."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._kubernetes import containers, get_path, items, object_name, rendered_pod_spec

ALLOWED_ADDS = frozenset({"NET_BIND_SERVICE"})


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    pod = rendered_pod_spec(args.resource_type, args.props, args.urn)
    if pod is None:
        return
    for name, container in containers(pod):
        where = f"{object_name(args.props)}: container {name}"
        capabilities = get_path(container, "securityContext", "capabilities") or {}
        if "ALL" not in items(get_path(capabilities, "drop")):
            report_violation(f"{where} does not drop ALL capabilities.")
        added = sorted(str(c) for c in items(get_path(capabilities, "add")) if c not in ALLOWED_ADDS)
        if added:
            report_violation(f"{where} adds capabilities {', '.join(added)}.")


drop_all_capabilities = ResourceValidationPolicy(
    name="drop-all-capabilities",
    description="Containers drop ALL Linux capabilities (adding back NET_BIND_SERVICE at most).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Set securityContext.capabilities.drop: [ALL] and add none back; serve on a port above 1024.",
)
