"""Reading cloud resources as the policy engine hands them over.

Properties arrive in the providers' wire (camelCase) names, numbers as floats, lists as sequences
(the engine's proxies are not `list`s), and during `pulumi preview` a value that depends on another
resource's outputs is unknown: reading it through the engine's proxy raises. `read` turns that into
`UNKNOWN`, so one unknown property never stops a rule from judging the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy.proxy import UnknownValueError


class _Unknown:
    def __repr__(self) -> str:
        return "(unknown until apply)"


UNKNOWN: Any = _Unknown()
"""A value the engine cannot know yet (preview): set, but not readable."""

# Resource types, as the providers spell them.
EKS_CLUSTER = "aws:eks/cluster:Cluster"
EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
EKS_ADDON = "aws:eks/addon:Addon"
IAM_OIDC_PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
AWS_SUBNET = "aws:ec2/subnet:Subnet"
AWS_SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
AWS_SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
AWS_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
GKE_CLUSTER = "gcp:container/cluster:Cluster"
GKE_NODE_POOL = "gcp:container/nodePool:NodePool"
ELASTICACHE_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
ELASTICACHE_GLOBAL_GROUP = "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup"
MEMORYSTORE = "gcp:redis/instance:Instance"
# Azure Native also publishes each resource under API-versioned modules; `type_of` folds those in.
AKS_CLUSTER = "azure-native:containerservice:ManagedCluster"
AKS_AGENT_POOL = "azure-native:containerservice:AgentPool"
AZURE_DIAGNOSTIC_SETTING = "azure-native:monitor:DiagnosticSetting"
AZURE_REDIS = "azure-native:redis:Redis"
AZURE_MANAGED_REDIS = "azure-native:redisenterprise:RedisEnterprise"
AZURE_MANAGED_REDIS_DATABASE = "azure-native:redisenterprise:Database"

KINDS = {
    EKS_CLUSTER: "EKS cluster",
    EKS_NODE_GROUP: "EKS node group",
    AWS_SUBNET: "subnet",
    AWS_SECURITY_GROUP: "security group",
    AWS_SECURITY_GROUP_RULE: "security group rule",
    AWS_INGRESS_RULE: "security group ingress rule",
    GKE_CLUSTER: "GKE cluster",
    GKE_NODE_POOL: "GKE node pool",
    AKS_CLUSTER: "AKS cluster",
    AKS_AGENT_POOL: "AKS agent pool",
    ELASTICACHE_GROUP: "ElastiCache replication group",
    ELASTICACHE_GLOBAL_GROUP: "ElastiCache global datastore",
    MEMORYSTORE: "Memorystore instance",
    AZURE_REDIS: "Azure Cache for Redis",
    AZURE_MANAGED_REDIS: "Azure Managed Redis",
    AZURE_MANAGED_REDIS_DATABASE: "Azure Managed Redis database",
}
# The property holding the name the cloud knows a resource by; absent, Pulumi auto-names it after the resource.
NAME_PROPERTIES = {
    EKS_NODE_GROUP: "nodeGroupName",
    AKS_CLUSTER: "resourceName",
    AKS_AGENT_POOL: "agentPoolName",
    ELASTICACHE_GROUP: "replicationGroupId",
    ELASTICACHE_GLOBAL_GROUP: "globalReplicationGroupIdSuffix",
    AZURE_MANAGED_REDIS: "clusterName",
    AZURE_MANAGED_REDIS_DATABASE: "databaseName",
}


def type_of(resource_type: str) -> str:
    """The token rules compare against: `azure-native:containerservice/v20250801:ManagedCluster` is a
    ManagedCluster like `azure-native:containerservice:ManagedCluster`."""
    if not resource_type.startswith("azure-native:") or resource_type.count(":") != 2:
        return resource_type
    _, module, resource = resource_type.split(":")
    return f"azure-native:{module.split('/', 1)[0]}:{resource}"


def read(props: Any, *path: str | int) -> Any:
    """props[k1][k2]...: None where a step is missing, UNKNOWN where the engine does not know it yet."""
    value = props
    for key in path:
        try:
            if isinstance(key, int):
                if not is_sequence(value) or key >= len(value):
                    return None
            elif not isinstance(value, Mapping) or key not in value:
                return None
            value = value[key]
        except UnknownValueError:
            return UNKNOWN
    return value


def is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def items(props: Any, *path: str | int) -> list[Any]:
    """The elements of the list at `path` ([] when missing); an element the engine does not know is UNKNOWN."""
    value = read(props, *path)
    if value is UNKNOWN:
        return [UNKNOWN]
    if not is_sequence(value):
        return []
    return [read(value, index) for index in range(len(value))]


def is_true(value: Any) -> bool:
    """True, or Azure's "true" (some Azure settings are strings)."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


def number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def whole_internet(cidr: Any) -> bool:
    """0.0.0.0/0, ::/0 or any other /0: every address there is."""
    return isinstance(cidr, str) and cidr.strip().endswith("/0")


def display_name(resource_type: str, props: Any, fallback: str) -> str:
    """How messages name a resource: its kind and the name the cloud knows it by."""
    unversioned = type_of(resource_type)
    name = read(props, NAME_PROPERTIES.get(unversioned, "name"))
    if not isinstance(name, str) or not name:
        name = fallback
    kind = KINDS.get(unversioned)
    return f"{kind} {name}" if kind else name


def minor_version(text: Any) -> tuple[int, int] | None:
    """(1, 33) from "1.33", "1.33.2", "v1.33.5-gke.1200" or "1.33.2-eks-1"; None for "latest" and the like."""
    if not isinstance(text, str):
        return None
    parts = text.strip().removeprefix("v").split(".")
    if len(parts) < 2 or not parts[0].isdigit():
        return None
    minor = ""
    for char in parts[1]:
        if not char.isdigit():
            break
        minor += char
    return (int(parts[0]), int(minor)) if minor else None


def resource_id(props: Any) -> str | None:
    """The provider's id of a resource in the stack's state, or None where it is not known.

    The engine's stack state carries the `id` once the resource exists; a plan made before that (a
    preview, an offline plan) does not, and a rule must then not assume two resources are unrelated.
    """
    value = read(props, "id")
    return value if isinstance(value, str) and value else None


def global_datastore_secondary(props: Any) -> bool:
    """An ElastiCache replication group joining a global datastore as a secondary: it inherits encryption
    and AUTH from the datastore's primary (AWS refuses them on the secondary), and the primary is checked."""
    member = read(props, "globalReplicationGroupId")
    return member is UNKNOWN or (isinstance(member, str) and bool(member))


def refers_to(resource: Any, target: Any, references: list[Any]) -> bool | None:
    """Whether stack resource `resource` points at `target` through one of `references` (ids it holds).

    True when it depends on `target` (the engine records that for every output passed on) or names its
    known id; False when neither holds and the dependencies are known; None when nothing tells (a plan
    that records no dependencies, before `target` has an id).
    """
    dependencies = getattr(resource, "dependencies", None) or []
    if any(getattr(d, "urn", None) == target.urn for d in dependencies):
        return True
    known_id = resource_id(target.props)
    if known_id is not None and known_id in references:
        return True
    if UNKNOWN in references:
        return None
    return False if dependencies or known_id is not None else None
