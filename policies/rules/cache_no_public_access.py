"""cache-no-public-access: a managed cache is reachable from private networks only.

- Azure Cache for Redis: `publicNetworkAccess: Disabled` (private endpoints), or `subnetId` (injected into
  a VNet). Absent, Azure's default is Enabled.
- Azure Managed Redis (`RedisEnterprise` clusters): `publicNetworkAccess: Disabled`.
- Memorystore for Redis: never has a public address; it must name the network it serves:
  `connectMode: PRIVATE_SERVICE_ACCESS` or an `authorizedNetwork` (absent, it peers with the project's
  `default` network, shared with whatever else runs there).
- ElastiCache replication groups: never have a public address either, so what the stack shows is who may
  connect: no security group of the group (`securityGroupIds`; absent, the VPC's default group, which
  admits only its own members) admits 0.0.0.0/0 or ::/0 on the group's `port` (default 6379), whether
  inline (`SecurityGroup.ingress`) or as `SecurityGroupRule` / `vpc.SecurityGroupIngressRule` resources.
  A group of the stack is the cache's when the cache depends on it or names its id; when a plan tells
  neither (no dependencies recorded, no ids yet, as in offline plans) any such group of the stack counts
  as one the cache may use. Groups created elsewhere are not seen.

A stack rule, because an ElastiCache group's exposure lives in security group resources. The in-cluster
Redis of kind stacks (a ClusterIP Service behind the mesh) and every other resource: not applicable.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from ._cloud import (
    AWS_INGRESS_RULE,
    AWS_SECURITY_GROUP,
    AWS_SECURITY_GROUP_RULE,
    AZURE_MANAGED_REDIS,
    AZURE_REDIS,
    ELASTICACHE_GROUP,
    MEMORYSTORE,
    UNKNOWN,
    display_name,
    items,
    number,
    read,
    refers_to,
    type_of,
    whole_internet,
)

REDIS_PORT = 6379.0
ALL_PROTOCOLS = ("-1", "all")


def covers(rule, port: float, protocol_key: str = "protocol") -> bool:
    """Whether an ingress rule admits TCP `port` (or may: a value unknown during preview)."""
    if UNKNOWN in (read(rule, protocol_key), read(rule, "fromPort"), read(rule, "toPort")):
        return True
    protocol = str(read(rule, protocol_key)).lower()
    if protocol in ALL_PROTOCOLS:
        return True
    if protocol not in ("tcp", "6"):
        return False
    low, high = number(read(rule, "fromPort")), number(read(rule, "toPort"))
    return low is not None and high is not None and low <= port <= high


def world_sources(rule, *keys: str) -> list[str]:
    sources = []
    for key in keys:
        value = read(rule, key)
        values = items(rule, key) if not isinstance(value, str) else [value]
        sources += [cidr for cidr in values if whole_internet(cidr)]
    return sources


def open_ingress(resources, port: float) -> list[tuple[object, str, str]]:
    """(the security group: its resource, or the id a rule names; what opens it; to which CIDR) for every
    ingress admitting the whole internet on `port`."""
    found = []
    for r in resources:
        label = display_name(r.resource_type, r.props, r.name)
        if r.resource_type == AWS_SECURITY_GROUP:
            for rule in items(r.props, "ingress"):
                if covers(rule, port):
                    found += [(r, label, cidr) for cidr in world_sources(rule, "cidrBlocks", "ipv6CidrBlocks")]
        elif r.resource_type == AWS_SECURITY_GROUP_RULE:
            if read(r.props, "type") == "ingress" and covers(r.props, port):
                group = read(r.props, "securityGroupId")
                found += [(group, label, cidr) for cidr in world_sources(r.props, "cidrBlocks", "ipv6CidrBlocks")]
        elif r.resource_type == AWS_INGRESS_RULE and covers(r.props, port, protocol_key="ipProtocol"):
            group = read(r.props, "securityGroupId")
            found += [(group, label, cidr) for cidr in world_sources(r.props, "cidrIpv4", "cidrIpv6")]
    return found


def elasticache_problems(cache, resources) -> list[str]:
    attached = items(cache.props, "securityGroupIds")
    if not attached:
        return []  # the VPC's default security group admits only its own members
    port = number(read(cache.props, "port")) or REDIS_PORT
    found = []
    for group, opener, cidr in open_ingress(resources, port):
        if isinstance(group, str) or group is UNKNOWN:  # a rule naming its group by id, as the cache does
            uses = None if UNKNOWN in (group, *attached) else group in attached
        else:
            uses = refers_to(cache, group, attached)
        if uses is not False:
            found.append(f"{opener} {'admits' if uses else 'may admit'} {cidr} on port {port:g}.")
    return found


def problems(resource, resources) -> list[str]:
    kind = type_of(resource.resource_type)
    props = resource.props
    if kind == AZURE_REDIS:
        access = read(props, "publicNetworkAccess")
        subnet = read(props, "subnetId")
        if access in ("Disabled", UNKNOWN) or subnet:
            return []
        return [f"publicNetworkAccess is {access or 'Enabled (Azure default)'}, and it is in no VNet (subnetId)."]
    if kind == AZURE_MANAGED_REDIS:
        access = read(props, "publicNetworkAccess")
        return [] if access in ("Disabled", UNKNOWN) else [f"publicNetworkAccess is {access or 'not Disabled'}."]
    if kind == MEMORYSTORE:
        if read(props, "connectMode") == "PRIVATE_SERVICE_ACCESS" or read(props, "authorizedNetwork"):
            return []
        return ["it names no network (no authorizedNetwork, no PRIVATE_SERVICE_ACCESS): it joins the default one."]
    if kind == ELASTICACHE_GROUP:
        return elasticache_problems(resource, resources)
    return []


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for resource in args.resources:
        for problem in problems(resource, args.resources):
            label = display_name(resource.resource_type, resource.props, resource.name)
            report_violation(f"{label}: {problem}", resource.urn)


cache_no_public_access = StackValidationPolicy(
    name="cache-no-public-access",
    description="Managed caches are reachable from private networks only (no public network access, no "
    "security group open to 0.0.0.0/0).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Azure: public_network_access Disabled and a private endpoint. Memorystore: connect_mode "
    "PRIVATE_SERVICE_ACCESS with the cluster's authorized_network. ElastiCache: admit the cache port only from the "
    "cluster's node or pod security groups, never a /0 CIDR.",
)
