"""dr-cache-replication: a stack whose RPO is under a minute replicates its cache to another region.

Backups run at best hourly (Memorystore, and Azure Managed Redis, whose persistence stays in the region) or daily
(ElastiCache); only a cross-region replica keeps the loss to seconds: an ElastiCache Global Datastore, an Azure
Cache for Redis linked server, or an Azure Managed Redis active geo-replication group whose databases (the same
`geoReplication.groupNickname`) are in at least two regions (their clusters' `location`). The rule reads the target
from the DR record and the replication from what is created.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from ._dr import dr_records
from ._kubernetes import get_path, kind_of, number

MANDATORY_IN = ("staging", "prod")
RPO_NEEDING_REPLICATION = 60

CACHES = {
    "aws:elasticache/replicationGroup:ReplicationGroup": "ElastiCache",
    "gcp:redis/instance:Instance": "Memorystore",
    "azure-native:redis:Redis": "Azure Cache for Redis",
    "azure-native:redisenterprise:RedisEnterprise": "Azure Managed Redis",
}
CROSS_REGION = ("aws:elasticache/globalReplicationGroup:GlobalReplicationGroup", "azure-native:redis:LinkedServer")


def _in_cluster_redis(r) -> bool:
    return kind_of(r.resource_type) == "StatefulSet" and any(
        str(get_path(c, "image") or "").split("/")[-1].startswith(("redis:", "valkey:"))
        for c in get_path(r.props, "spec", "template", "spec", "containers") or []
    )


def _geo_group_regions(resources) -> bool:
    """Whether some Azure Managed Redis geo-replication group has databases on clusters in two or more regions."""
    locations = {
        (get_path(r.props, "resourceGroupName"), get_path(r.props, "clusterName")): get_path(r.props, "location")
        for r in resources
        if r.resource_type == "azure-native:redisenterprise:RedisEnterprise"
    }
    groups: dict[str, set] = {}
    for r in resources:
        if r.resource_type != "azure-native:redisenterprise:Database":
            continue
        nickname = get_path(r.props, "geoReplication", "groupNickname")
        cluster = (get_path(r.props, "resourceGroupName"), get_path(r.props, "clusterName"))
        if nickname and cluster in locations:
            groups.setdefault(nickname, set()).add(locations[cluster])
    return any(len(regions) >= 2 for regions in groups.values())


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    records = dr_records(args.resources)
    if not records or records[0][1] is None:
        return  # no target (or an unreadable record, which dr-target-achievable reports)
    resource, document = records[0]
    rpo = number(get_path(document, "target", "rpoSeconds"))
    if rpo is None or rpo >= RPO_NEEDING_REPLICATION:
        return
    caches = [CACHES[r.resource_type] for r in args.resources if r.resource_type in CACHES]
    caches += ["in-cluster Redis" for r in args.resources if _in_cluster_redis(r)]
    if not caches or any(r.resource_type in CROSS_REGION for r in args.resources):
        return
    if _geo_group_regions(args.resources):
        return
    report_violation(
        f"the target RPO is {rpo:g}s, but the cache ({', '.join(sorted(set(caches)))}) has no cross-region replica.",
        resource.urn,
    )


dr_cache_replication = StackValidationPolicy(
    name="dr-cache-replication",
    description="A stack with an RPO under a minute replicates its cache to another region.",
    enforcement_level=EnforcementLevel.ADVISORY,  # MANDATORY_IN raises it in staging and prod
    validate=validate,
    remediation_steps="Use a cloud whose cache replicates across regions (ElastiCache Global Datastore, Azure Managed "
    "Redis active geo-replication) with a pilot-light or higher tier, or relax turnout:dr.rpo to what backups give.",
)
