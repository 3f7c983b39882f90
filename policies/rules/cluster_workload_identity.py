"""cluster-workload-identity: pods get cloud credentials of their own (short-lived, per service account)
instead of borrowing the node's.

- EKS: an IAM OIDC provider whose `url` is the cluster's issuer (`identities[0].oidcs[0].issuer`), for
  IAM roles for service accounts, or the `eks-pod-identity-agent` add-on on the cluster (EKS Pod Identity).
- GKE: `workloadIdentityConfig.workloadPool` on the cluster, and no node pool (`nodePool` resources or the
  cluster's `nodeConfig` / inline `nodePools`) set to `workloadMetadataConfig.mode: GCE_METADATA`, which
  hands its pods the node's service account.
- AKS: `oidcIssuerProfile.enabled` and `securityProfile.workloadIdentity.enabled`.

A stack rule, because an EKS cluster's identity provider is another resource. While the issuer or a
provider's URL is unknown (preview), any OIDC provider in the stack counts. Kind clusters and every
other resource: not applicable.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from ._cloud import (
    AKS_CLUSTER,
    EKS_ADDON,
    EKS_CLUSTER,
    GKE_CLUSTER,
    GKE_NODE_POOL,
    IAM_OIDC_PROVIDER,
    UNKNOWN,
    display_name,
    is_true,
    items,
    read,
    type_of,
)

MANDATORY_IN = ("prod",)  # advisory below prod

POD_IDENTITY_ADDON = "eks-pod-identity-agent"
NODE_METADATA = "GCE_METADATA"


def _issuer(url) -> str:
    return url.removeprefix("https://").rstrip("/") if isinstance(url, str) else ""


def eks_has_workload_identity(cluster, providers: list, addons: list) -> bool:
    name = read(cluster.props, "name")
    name = name if isinstance(name, str) and name else cluster.name
    if any(
        read(a.props, "addonName") in (POD_IDENTITY_ADDON, UNKNOWN) and read(a.props, "clusterName") in (name, UNKNOWN)
        for a in addons
    ):
        return True
    issuer = read(cluster.props, "identities", 0, "oidcs", 0, "issuer")
    urls = [read(p.props, "url") for p in providers]
    if issuer is UNKNOWN or UNKNOWN in urls:
        return bool(providers)
    return bool(issuer) and any(_issuer(url) == _issuer(issuer) for url in urls)


def gke_problems(props) -> list[str]:
    found = []
    pool = read(props, "workloadIdentityConfig", "workloadPool")
    if pool is not UNKNOWN and not pool:
        found.append("Workload Identity is off (no workloadIdentityConfig.workloadPool).")
    if read(props, "nodeConfig", "workloadMetadataConfig", "mode") == NODE_METADATA:
        found.append("its default node pool exposes the node's service account (workloadMetadataConfig GCE_METADATA).")
    for inline in items(props, "nodePools"):
        if read(inline, "nodeConfig", "workloadMetadataConfig", "mode") == NODE_METADATA:
            found.append(
                f"node pool {read(inline, 'name')} exposes the node's service account (workloadMetadataConfig "
                "GCE_METADATA)."
            )
    return found


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    providers = [r for r in args.resources if r.resource_type == IAM_OIDC_PROVIDER]
    addons = [r for r in args.resources if r.resource_type == EKS_ADDON]
    for resource in args.resources:
        kind = type_of(resource.resource_type)
        props = resource.props
        label = display_name(resource.resource_type, props, resource.name)
        if kind == EKS_CLUSTER:
            if not eks_has_workload_identity(resource, providers, addons):
                report_violation(
                    f"{label}: no IAM OIDC provider for its issuer (IRSA) and no EKS Pod Identity agent.", resource.urn
                )
        elif kind == GKE_CLUSTER:
            for problem in gke_problems(props):
                report_violation(f"{label}: {problem}", resource.urn)
        elif kind == GKE_NODE_POOL:
            if read(props, "nodeConfig", "workloadMetadataConfig", "mode") == NODE_METADATA:
                report_violation(
                    f"{label}: its pods get the node's service account (workloadMetadataConfig GCE_METADATA).",
                    resource.urn,
                )
        elif kind == AKS_CLUSTER:
            missing = [
                setting
                for setting, value in (
                    ("oidcIssuerProfile.enabled", read(props, "oidcIssuerProfile", "enabled")),
                    (
                        "securityProfile.workloadIdentity.enabled",
                        read(props, "securityProfile", "workloadIdentity", "enabled"),
                    ),
                )
                if value is not UNKNOWN and not is_true(value)
            ]
            if missing:
                report_violation(f"{label}: workload identity is off (no {' and no '.join(missing)}).", resource.urn)


cluster_workload_identity = StackValidationPolicy(
    name="cluster-workload-identity",
    description="Pods get cloud credentials of their own: IRSA or EKS Pod Identity, GKE Workload Identity, AKS "
    "workload identity.",
    enforcement_level=EnforcementLevel.ADVISORY,  # MANDATORY_IN raises it in prod
    validate=validate,
    remediation_steps="EKS: an aws.iam.OpenIdConnectProvider for the cluster's OIDC issuer (client sts.amazonaws.com). "
    "GKE: workload_identity_config.workload_pool and node pools in GKE_METADATA mode. AKS: "
    "oidc_issuer_profile.enabled and security_profile.workload_identity.enabled.",
)
