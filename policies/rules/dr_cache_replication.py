"""dr-cache-replication: a stack whose RPO is under a minute replicates its cache to another region.

Backups run at best every 15 minutes (Azure), hourly (Memorystore) or daily (ElastiCache); only a
cross-region replica (ElastiCache Global Datastore, Azure geo-replication) keeps the loss to
seconds. The rule reads the target from the DR record and the replication from what is created.
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
}
CROSS_REGION = ("aws:elasticache/globalReplicationGroup:GlobalReplicationGroup", "azure-native:redis:LinkedServer")


def _in_cluster_redis(r) -> bool:
    return kind_of(r.resource_type) == "StatefulSet" and any(
        str(get_path(c, "image") or "").split("/")[-1].startswith(("redis:", "valkey:"))
        for c in get_path(r.props, "spec", "template", "spec", "containers") or []
    )


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
    report_violation(
        f"the target RPO is {rpo:g}s, but the cache ({', '.join(sorted(set(caches)))}) has no cross-region replica.",
        resource.urn,
    )


dr_cache_replication = StackValidationPolicy(
    name="dr-cache-replication",
    description="A stack with an RPO under a minute replicates its cache to another region.",
    enforcement_level=EnforcementLevel.ADVISORY,  # MANDATORY_IN raises it in staging and prod
    validate=validate,
    remediation_steps="Use a cloud whose cache replicates across regions (ElastiCache Global Datastore, Azure "
    "geo-replication) with a pilot-light or higher tier, or relax turnout:dr.rpo to what backups give.",
)
