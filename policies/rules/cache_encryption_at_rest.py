"""cache-encryption-at-rest: a managed cache's data is encrypted on disk (snapshots, swap, backups).

- ElastiCache replication groups: `atRestEncryptionEnabled`. Absent, AWS's default is on for the valkey
  `engine` and off for redis (the default engine). A secondary of a global datastore
  (`globalReplicationGroupId`) inherits the primary's setting and is not read; the primary is.
- Not read, because the cloud encrypts at rest with no opt-in and no way out (so they pass): Memorystore
  for Redis (`gcp:redis/instance:Instance`), Azure Cache for Redis and Azure Managed Redis.
- ElastiCache global datastores (`GlobalReplicationGroup`) hold no setting of their own: not applicable.

The in-cluster Redis of kind stacks (its volume is the node's disk) and every other resource: not applicable.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._cloud import ELASTICACHE_GROUP, UNKNOWN, display_name, global_datastore_secondary, is_false, read

MANDATORY_IN = ("prod",)  # advisory below prod


def problem(resource_type: str, props) -> str | None:
    if resource_type != ELASTICACHE_GROUP or global_datastore_secondary(props):
        return None
    enabled = read(props, "atRestEncryptionEnabled")
    if is_false(enabled):
        return "encryption at rest is off (atRestEncryptionEnabled false)."
    if enabled is None and read(props, "engine") not in ("valkey", UNKNOWN):
        return "encryption at rest is off (no atRestEncryptionEnabled; AWS's default for redis is off)."
    return None


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    found = problem(args.resource_type, args.props)
    if found:
        report_violation(f"{display_name(args.resource_type, args.props, args.name)}: {found}")


cache_encryption_at_rest = ResourceValidationPolicy(
    name="cache-encryption-at-rest",
    description="Managed caches encrypt their data at rest (ElastiCache atRestEncryptionEnabled).",
    enforcement_level=EnforcementLevel.ADVISORY,  # MANDATORY_IN raises it in prod
    validate=validate,
    remediation_steps="Set at_rest_encryption_enabled=True on the replication group (optionally kms_key_id); it "
    "can only be chosen at creation, so this replaces an existing group.",
)
