"""no-public-node-ips: cluster nodes have private addresses only; they reach the internet through NAT.

- EKS: managed node groups get public IPs exactly when their subnet maps them on launch
  (`mapPublicIpOnLaunch`), so no subnet a node group may run in maps public IPs. A node group runs in a
  subnet of the stack when it depends on it or names its id (`subnetIds`); when a plan tells neither (no
  dependencies recorded, no ids yet, as in offline plans) every subnet of the stack that maps public IPs
  counts as one the node groups may use. Subnets created elsewhere are not seen.
- GKE: `privateClusterConfig.enablePrivateNodes` on the cluster, and no node pool (`nodePool` resources
  or inline `nodePools`) with `networkConfig.enablePrivateNodes: false`.
- AKS: no agent pool (`agentPoolProfiles` of the cluster, `AgentPool` resources) with `enableNodePublicIP`.

Kind clusters (containers on the local machine) and every other resource: not applicable.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from ._cloud import (
    AKS_AGENT_POOL,
    AKS_CLUSTER,
    AWS_SUBNET,
    EKS_NODE_GROUP,
    GKE_CLUSTER,
    GKE_NODE_POOL,
    UNKNOWN,
    display_name,
    is_false,
    is_true,
    items,
    read,
    refers_to,
    type_of,
)


def eks_problems(resources) -> list[tuple[str, str]]:
    """(message, urn) for each subnet mapping public IPs that an EKS node group may run nodes in."""
    groups = [r for r in resources if r.resource_type == EKS_NODE_GROUP]
    found = []
    for subnet in resources:
        if subnet.resource_type != AWS_SUBNET or not is_true(read(subnet.props, "mapPublicIpOnLaunch")):
            continue
        users = [
            display_name(group.resource_type, group.props, group.name)
            for group in groups
            if refers_to(group, subnet, items(group.props, "subnetIds")) is not False
        ]
        if users:
            label = display_name(subnet.resource_type, subnet.props, subnet.name)
            found.append((f"{label} maps public IPs on launch, and {', '.join(users)} may run in it.", subnet.urn))
    return found


def pool_problems(resource_type: str, props) -> list[str]:
    """GKE and AKS: what gives this cluster's or pool's nodes public IPs."""
    kind = type_of(resource_type)
    found = []
    if kind == GKE_CLUSTER:
        private = read(props, "privateClusterConfig", "enablePrivateNodes")
        if private is not UNKNOWN and not is_true(private):
            found.append("nodes get public IPs (privateClusterConfig.enablePrivateNodes is off).")
        found += [
            f"node pool {read(pool, 'name')} gives its nodes public IPs (networkConfig.enablePrivateNodes false)."
            for pool in items(props, "nodePools")
            if is_false(read(pool, "networkConfig", "enablePrivateNodes"))
        ]
    elif kind == GKE_NODE_POOL and is_false(read(props, "networkConfig", "enablePrivateNodes")):
        found.append("its nodes get public IPs (networkConfig.enablePrivateNodes false).")
    elif kind == AKS_CLUSTER:
        found += [
            f"agent pool {read(pool, 'name')} gives its nodes public IPs (enableNodePublicIP)."
            for pool in items(props, "agentPoolProfiles")
            if is_true(read(pool, "enableNodePublicIP"))
        ]
    elif kind == AKS_AGENT_POOL and is_true(read(props, "enableNodePublicIP")):
        found.append("its nodes get public IPs (enableNodePublicIP).")
    return found


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for message, urn in eks_problems(args.resources):
        report_violation(message, urn)
    for resource in args.resources:
        for problem in pool_problems(resource.resource_type, resource.props):
            label = display_name(resource.resource_type, resource.props, resource.name)
            report_violation(f"{label}: {problem}", resource.urn)


no_public_node_ips = StackValidationPolicy(
    name="no-public-node-ips",
    description="Cluster nodes have private addresses only (EKS subnets without public IPs on launch, GKE private "
    "nodes, AKS without node public IPs).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="EKS: run node groups in subnets with map_public_ip_on_launch false (egress through NAT). "
    "GKE: private_cluster_config.enable_private_nodes. AKS: enable_node_public_ip false on every pool.",
)
