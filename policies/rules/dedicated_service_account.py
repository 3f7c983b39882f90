"""dedicated-service-account: pods turnout renders run as their own ServiceAccount, never as the
namespace's `default` one (which every other pod there shares) and never unnamed (which means it)."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._kubernetes import get_path, object_name, rendered_pod_spec


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    pod = rendered_pod_spec(args.resource_type, args.props, args.urn)
    if pod is None:
        return
    account = get_path(pod, "serviceAccountName") or get_path(pod, "serviceAccount")  # the latter deprecated
    if not account:
        report_violation(f"{object_name(args.props)}: pods name no ServiceAccount, so they run as default.")
    elif account == "default":
        report_violation(f"{object_name(args.props)}: pods run as the namespace's default ServiceAccount.")


dedicated_service_account = ResourceValidationPolicy(
    name="dedicated-service-account",
    description="Pods run as a ServiceAccount of their own, not the namespace's default.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Create a ServiceAccount for the workload (automountServiceAccountToken: false) and set "
    "serviceAccountName to it.",
)
