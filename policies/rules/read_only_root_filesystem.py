"""read-only-root-filesystem: containers turnout renders cannot write to their image; scratch space
is an explicit emptyDir (turnout mounts one at /tmp)."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._kubernetes import containers, get_path, object_name, rendered_pod_spec


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    pod = rendered_pod_spec(args.resource_type, args.props, args.urn)
    if pod is None:
        return
    for name, container in containers(pod):
        if get_path(container, "securityContext", "readOnlyRootFilesystem") is not True:
            report_violation(
                f"{object_name(args.props)}: container {name} has a writable root filesystem "
                "(readOnlyRootFilesystem is not true)."
            )


read_only_root_filesystem = ResourceValidationPolicy(
    name="read-only-root-filesystem",
    description="Containers run with a read-only root filesystem.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where the model "
    "writes (turnout mounts one at /tmp).",
)
