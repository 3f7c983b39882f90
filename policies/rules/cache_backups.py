"""cache-backups: a managed cache keeps restorable snapshots of its data.

- ElastiCache replication groups: `snapshotRetentionLimit` above 0 (AWS's default, 0, keeps none).
- Memorystore for Redis: `persistenceConfig.persistenceMode: RDB` (GCP's default is DISABLED).
- Azure Cache for Redis: the Premium tier (`sku.name`) with `redisConfiguration.rdbBackupEnabled: "true"`;
  Basic and Standard keep no backups. A Premium cache in passive geo-replication (tagged `turnout-geo-replication`
  by components/cache/azure_redis.py) is exempt: Azure refuses persistence on linked caches ("Persistence isn't
  supported with geo-replication"); its geo-secondary in another region is the copy, and an Export the recovery
  point.
- Azure Managed Redis databases: `persistence.rdbEnabled` or `persistence.aofEnabled` (Azure allows one of the
  two). A database in an active geo-replication group (`geoReplication.groupNickname`, as
  components/cache/azure_redis.py makes them across a DR stack's regions) is exempt: Azure does not support
  persistence with active geo-replication, and the group's members in other regions are the copy. Managed Redis
  keeps its persistence files on the cache's own disks in the region: they survive a restart, not the region's
  loss (dr.json counts them so); that the group spans regions is dr-cache-replication's question.

ElastiCache global datastores (replication is not a backup; their members are checked) and the
in-cluster Redis of kind stacks (its PersistentVolume is the backup question) and every other resource:
not applicable.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._cloud import (
    AZURE_MANAGED_REDIS_DATABASE,
    AZURE_REDIS,
    ELASTICACHE_GROUP,
    MEMORYSTORE,
    UNKNOWN,
    display_name,
    is_true,
    number,
    read,
    type_of,
)

MANDATORY_IN = ("prod",)  # advisory below prod
GEO_REPLICATION_TAG = "turnout-geo-replication"


def problem(resource_type: str, props) -> str | None:
    kind = type_of(resource_type)
    if kind == ELASTICACHE_GROUP:
        days = read(props, "snapshotRetentionLimit")
        if days is not UNKNOWN and not (number(days) or 0) > 0:
            return f"keeps no snapshots (snapshotRetentionLimit {number(days) or 0:g})."
    elif kind == MEMORYSTORE:
        mode = read(props, "persistenceConfig", "persistenceMode")
        if mode not in ("RDB", UNKNOWN):
            return f"keeps no snapshots (persistenceConfig.persistenceMode {mode or 'DISABLED, the default'})."
    elif kind == AZURE_REDIS:
        tier = read(props, "sku", "name")
        rdb = read(props, "redisConfiguration", "rdbBackupEnabled")
        if tier is not UNKNOWN and str(tier).lower() != "premium":
            return f"the {tier} tier keeps no backups (Premium with rdbBackupEnabled does)."
        geo_replicated = read(props, "tags", GEO_REPLICATION_TAG) in ("primary", "secondary")
        if rdb is not UNKNOWN and not is_true(rdb) and not geo_replicated:
            return 'keeps no snapshots (redisConfiguration.rdbBackupEnabled is not "true").'
    elif kind == AZURE_MANAGED_REDIS_DATABASE:
        group = read(props, "geoReplication", "groupNickname")
        if group is UNKNOWN or group:
            return None  # geo-replicated: Azure refuses persistence, the group's other members are the copy
        rdb, aof = read(props, "persistence", "rdbEnabled"), read(props, "persistence", "aofEnabled")
        if UNKNOWN in (rdb, aof) or is_true(rdb) or is_true(aof):
            return None
        return (
            "keeps no snapshots (neither persistence.rdbEnabled nor persistence.aofEnabled) and is in no "
            "geo-replication group (geoReplication.groupNickname)."
        )
    return None


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    found = problem(args.resource_type, args.props)
    if found:
        report_violation(f"{display_name(args.resource_type, args.props, args.name)}: {found}")


cache_backups = ResourceValidationPolicy(
    name="cache-backups",
    description="Managed caches keep restorable snapshots (ElastiCache retention, Memorystore RDB, Azure RDB or AOF "
    "persistence unless geo-replicated).",
    enforcement_level=EnforcementLevel.ADVISORY,  # MANDATORY_IN raises it in prod
    validate=validate,
    remediation_steps="ElastiCache: snapshot_retention_limit of 1 or more days. Memorystore: persistence_config "
    "{persistence_mode: RDB}. Azure Cache for Redis: Premium with rdb-backup-enabled and a storage account; Azure "
    "Managed Redis: persistence {rdb_enabled: True} (or aof_enabled), or an active geo-replication group.",
)
