"""cluster-audit-logs: every request to a cluster's Kubernetes API leaves an audit record somewhere
the cluster's owner can read.

- EKS: `enabledClusterLogTypes` includes `audit` (CloudWatch Logs).
- AKS: a diagnostic setting on the cluster (`resourceUri` is the cluster) with an enabled `kube-audit` or
  `kube-audit-admin` category, or the `audit` or `allLogs` category group. AKS keeps no audit log
  without one.
- GKE: not read. GKE writes the Kubernetes API's audit entries to Cloud Audit Logs (Admin Activity)
  itself, always, and they cannot be turned off, so every GKE cluster passes.

A stack rule, because an AKS cluster's audit log is another resource. A diagnostic setting is the
cluster's when it depends on it, or its `resourceUri` is the cluster's id or ends in
`/managedClusters/<name>` in the cluster's resource group, or is unknown (preview).
Kind clusters and every other resource: not applicable.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from ._cloud import (
    AKS_CLUSTER,
    AZURE_DIAGNOSTIC_SETTING,
    EKS_CLUSTER,
    UNKNOWN,
    display_name,
    is_false,
    items,
    read,
    refers_to,
    type_of,
)

MANDATORY_IN = ("prod",)  # advisory below prod

AKS_AUDIT_CATEGORIES = frozenset({"kube-audit", "kube-audit-admin"})
AUDIT_CATEGORY_GROUPS = frozenset({"audit", "alllogs"})


def collects_audit(setting) -> bool:
    return any(
        log is UNKNOWN
        or (
            not is_false(read(log, "enabled"))
            and (
                read(log, "category") in AKS_AUDIT_CATEGORIES
                or str(read(log, "categoryGroup")).lower() in AUDIT_CATEGORY_GROUPS
            )
        )
        for log in items(setting, "logs")
    )


def targets(setting, cluster) -> bool:
    """Whether diagnostic setting `setting` is attached to AKS cluster `cluster` (or might be: preview)."""
    uri = read(setting.props, "resourceUri")
    if uri is UNKNOWN or refers_to(setting, cluster, [uri]):
        return True
    if not isinstance(uri, str):
        return False
    name = read(cluster.props, "resourceName") or read(cluster.props, "name") or cluster.name
    group = read(cluster.props, "resourceGroupName")
    path = uri.lower()
    return path.endswith(f"/managedclusters/{str(name).lower()}") and (
        not isinstance(group, str) or f"/resourcegroups/{group.lower()}/" in path
    )


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    settings = [r for r in args.resources if type_of(r.resource_type) == AZURE_DIAGNOSTIC_SETTING]
    for resource in args.resources:
        kind = type_of(resource.resource_type)
        label = display_name(resource.resource_type, resource.props, resource.name)
        if kind == EKS_CLUSTER:
            types = items(resource.props, "enabledClusterLogTypes")
            if not any(t is UNKNOWN or t == "audit" for t in types):
                report_violation(f"{label}: the audit log type is not enabled (enabledClusterLogTypes).", resource.urn)
        elif kind == AKS_CLUSTER and not any(targets(s, resource) and collects_audit(s.props) for s in settings):
            report_violation(f"{label}: no diagnostic setting collects its kube-audit logs.", resource.urn)


cluster_audit_logs = StackValidationPolicy(
    name="cluster-audit-logs",
    description="Every cluster keeps a Kubernetes API audit log (EKS audit log type, AKS kube-audit diagnostics).",
    enforcement_level=EnforcementLevel.ADVISORY,  # MANDATORY_IN raises it in prod
    validate=validate,
    remediation_steps="EKS: add audit to enabledClusterLogTypes. AKS: create a monitor.DiagnosticSetting with "
    "resourceUri = the cluster's id, a Log Analytics workspace and logs [{category: kube-audit-admin, enabled: true}].",
)
