"""The cache of a stack on its cloud, from the typed config and the fleet's clusters, so the program stays thin:
`build_cache` picks the component per cloud (and returns None without `turnout:cache`), `cache_connection`
and `cache_replication` read it, None-safe, for endpoints and exports."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import pulumi

from components.cache import (
    CACHE_KEY,
    DEFAULT_BACKUP_INTERVAL_SECONDS,
    DEFAULT_BACKUP_RETENTION_DAYS,
    CacheArgs,
    CacheComponent,
    CacheConnection,
    CacheSite,
    check_cache_settings,
)
from turnout.config import Cache, key_path
from turnout.errors import ConfigError

# Each cloud's component, by module and class (imported only for the cloud in use).
CACHE_COMPONENTS = {
    "kind": ("components.cache.in_cluster", "InClusterCache"),
    "aws": ("components.cache.elasticache", "ElastiCache"),
    "gcp": ("components.cache.memorystore", "MemorystoreCache"),
    "azure": ("components.cache.azure_redis", "AzureRedisCache"),
}


def cache_args(
    name: str,
    cache: Cache,
    *,
    cloud: str,
    tier: str,
    clusters: Sequence[Any],
    replica_regions: Sequence[str] = (),
    backup_interval_seconds: int = DEFAULT_BACKUP_INTERVAL_SECONDS,
    backup_retention_days: int = DEFAULT_BACKUP_RETENTION_DAYS,
) -> CacheArgs:
    """Checked `CacheArgs`: the primary in the first cluster's region, a replica in each of `replica_regions`."""
    by_region = {cluster.region: cluster for cluster in clusters}
    primary = clusters[0]
    others = [region for region in by_region if region != primary.region]
    for region in replica_regions:
        if region not in others:
            raise ConfigError(
                key_path(CACHE_KEY),
                f"a cache replica in region {region!r}",
                "replicas in the stack's other regions: " + (", ".join(others) or "none (one region)"),
            )
    check_cache_settings(
        cloud=cloud,
        engine=cache.engine,
        backup_interval_seconds=backup_interval_seconds,
        backup_retention_days=backup_retention_days,
        replica_regions=tuple(replica_regions),
        primary_region=cache.primary_region,
        cache_regions=(primary.region, *replica_regions),
    )
    return CacheArgs(
        cache_name=name,
        engine=cache.engine,
        tier=tier,
        primary=CacheSite(region=primary.region, cluster=primary),
        replicas=tuple(CacheSite(region=region, cluster=by_region[region]) for region in replica_regions),
        backup_interval_seconds=backup_interval_seconds,
        backup_retention_days=backup_retention_days,
        primary_region=cache.primary_region,
    )


def build_cache(
    name: str,
    cache: Cache | None,
    *,
    cloud: str,
    tier: str,
    clusters: Sequence[Any],
    replica_regions: Sequence[str] = (),
    backup_interval_seconds: int = DEFAULT_BACKUP_INTERVAL_SECONDS,
    backup_retention_days: int = DEFAULT_BACKUP_RETENTION_DAYS,
    opts: pulumi.ResourceOptions | None = None,
) -> CacheComponent | None:
    """The stack's cache component on `cloud` (None when `turnout:cache` is absent), checked before anything is
    created. `clusters` is the fleet's (the first is the primary's region); `replica_regions` names the other
    regions that get a read-only cross-region copy (empty: none)."""
    if cache is None:
        return None
    args = cache_args(
        name,
        cache,
        cloud=cloud,
        tier=tier,
        clusters=clusters,
        replica_regions=replica_regions,
        backup_interval_seconds=backup_interval_seconds,
        backup_retention_days=backup_retention_days,
    )
    module, cls = CACHE_COMPONENTS[cloud]
    return getattr(importlib.import_module(module), cls)(name, args, opts)


def cache_connection(cache: CacheComponent | None, region: str) -> CacheConnection | None:
    """How endpoints in `region` reach the cache; None without a cache, or without a copy in `region` (a
    pilot light's region on a cloud with no cross-region replica: the runbook restores one there)."""
    if cache is None or region not in cache.address:
        return None
    return cache.connection_for(region)


def cache_replication(cache: CacheComponent | None) -> dict[str, Any] | None:
    """The cache's `replication` document for dr.json, or None without one."""
    return None if cache is None else cache.replication
