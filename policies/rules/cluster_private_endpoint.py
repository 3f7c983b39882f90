"""cluster-private-endpoint: a cluster's Kubernetes API is private, or public only to an explicit CIDR
allowlist, and the allowlist never holds the whole internet (0.0.0.0/0, ::/0).

- EKS: `vpcConfig.endpointPublicAccess` (AWS makes the endpoint public unless told otherwise) and
  `vpcConfig.publicAccessCidrs` (AWS's default, when public, is 0.0.0.0/0).
- GKE: `privateClusterConfig.enablePrivateEndpoint`, or no IP endpoint at all
  (`controlPlaneEndpointsConfig.ipEndpointsConfig.enabled: false`, the IAM-guarded DNS endpoint only);
  otherwise `masterAuthorizedNetworksConfig.cidrBlocks`, and not `gcpPublicCidrsAccessEnabled`, which
  admits every Google Cloud address, anybody's VM included.
- AKS: `apiServerAccessProfile.enablePrivateCluster`, otherwise `apiServerAccessProfile.authorizedIPRanges`.

Kind clusters (reached on localhost, and not cloud resources) and every other resource: not applicable.
A value unknown during preview is not judged.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._cloud import (
    AKS_CLUSTER,
    EKS_CLUSTER,
    GKE_CLUSTER,
    UNKNOWN,
    display_name,
    is_false,
    is_true,
    items,
    read,
    type_of,
    whole_internet,
)

NO_ALLOWLIST = "the API endpoint is public to the whole internet (no CIDR allowlist)."


def allowlist_problems(cidrs: list) -> list[str]:
    """What is wrong with a public endpoint's allowlist: missing, or holding the whole internet."""
    if not cidrs:
        return [NO_ALLOWLIST]
    return [
        f"the API endpoint's allowlist includes {cidr}, the whole internet." for cidr in cidrs if whole_internet(cidr)
    ]


def problems(resource_type: str, props) -> list[str]:
    kind = type_of(resource_type)
    if kind == EKS_CLUSTER:
        public = read(props, "vpcConfig", "endpointPublicAccess")
        if public is UNKNOWN or is_false(public):
            return []
        return allowlist_problems(items(props, "vpcConfig", "publicAccessCidrs"))
    if kind == GKE_CLUSTER:
        private = read(props, "privateClusterConfig", "enablePrivateEndpoint")
        ip_endpoint = read(props, "controlPlaneEndpointsConfig", "ipEndpointsConfig", "enabled")
        if private is UNKNOWN or is_true(private) or ip_endpoint is UNKNOWN or is_false(ip_endpoint):
            return []
        networks = read(props, "masterAuthorizedNetworksConfig")
        if networks is UNKNOWN:
            return []
        if networks is None:
            return [NO_ALLOWLIST]
        found = [
            f"the API endpoint's allowlist includes {cidr}, the whole internet."
            for cidr in (read(block, "cidrBlock") for block in items(networks, "cidrBlocks"))
            if whole_internet(cidr)
        ]
        if is_true(read(networks, "gcpPublicCidrsAccessEnabled")):
            found.append("the API endpoint admits every Google Cloud address (gcpPublicCidrsAccessEnabled).")
        return found
    if kind == AKS_CLUSTER:
        private = read(props, "apiServerAccessProfile", "enablePrivateCluster")
        if private is UNKNOWN or is_true(private):
            return []
        return allowlist_problems(items(props, "apiServerAccessProfile", "authorizedIPRanges"))
    return []


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for problem in problems(args.resource_type, args.props):
        report_violation(f"{display_name(args.resource_type, args.props, args.name)}: {problem}")


cluster_private_endpoint = ResourceValidationPolicy(
    name="cluster-private-endpoint",
    description="A cluster's Kubernetes API is private, or public only to a CIDR allowlist without 0.0.0.0/0.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Set turnout:platform.apiAccess to in-network for a private endpoint (deploy from inside the "
    "network), dns on GKE, or allowlist with apiAccessCidrs listing only the networks that must reach the API.",
)
