"""Caches behind one interface (`turnout:cache`): ElastiCache on aws, Memorystore on gcp, Azure Managed Redis on
azure, a Redis StatefulSet on kind.

Every cache component takes `CacheArgs` and exposes the same outputs: `address` (per region), `port`,
`auth_token` (secret), `replication` (what is copied where, for dr.json) and `connection_for(region)`,
which model endpoints consume. The checks below run before anything is created and need no Pulumi runtime.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pulumi

from turnout.config import key_path
from turnout.errors import ConfigError, NotSupportedError

CACHE_KEY = "cache"
DEFAULT_BACKUP_INTERVAL_SECONDS = 86400
DEFAULT_BACKUP_RETENTION_DAYS = 7

# How often each cloud's managed cache can snapshot, in seconds (kind's Redis: any interval from the minimum below).
BACKUP_PERIODS: dict[str, tuple[int, ...]] = {
    "aws": (86400,),  # ElastiCache: one automatic snapshot a day, in the snapshot window
    "gcp": (3600, 21600, 43200, 86400),  # Memorystore RDB: ONE_HOUR, SIX_HOURS, TWELVE_HOURS, TWENTY_FOUR_HOURS
    "azure": (3600, 21600, 43200),  # Azure Managed Redis persistence.rdbFrequency: 1h, 6h, 12h
}
KIND_MIN_BACKUP_SECONDS = 60
# ElastiCache keeps automatic snapshots for 1 to 35 days; the others keep the latest snapshot only.
AWS_RETENTION_DAYS = (1, 35)
SERVICES = {"kind": "in-cluster", "aws": "elasticache", "gcp": "memorystore", "azure": "azure-managed-redis"}
# Engines each cloud's cache product runs.
ENGINES = {"kind": ("redis", "valkey"), "aws": ("redis", "valkey"), "gcp": ("redis",), "azure": ("redis",)}
# Clouds whose cache product replicates across regions (ElastiCache Global Datastore, Azure Managed Redis active
# geo-replication).
CROSS_REGION = ("aws", "azure")
# Clouds whose cross-region replication excludes snapshots: Azure Managed Redis does not support persistence with
# active geo-replication; the group's other members are the copy (components/cache/azure_redis.py).
NO_SNAPSHOTS_WITH_REPLICAS = ("azure",)


@dataclass(frozen=True, kw_only=True)
class CacheSite:
    """Where one copy of the cache runs: a region and the cluster that uses it there."""

    region: str
    """The cluster's region; the cache is created in it."""
    cluster: Any
    """The cluster component of that region (EksCluster, GkeCluster, AksCluster or KindCluster): its network on
    clouds, its Kubernetes `provider` on kind."""


@dataclass(frozen=True, kw_only=True)
class CacheArgs:
    cache_name: str
    """Deterministic name of the cache (`<stack>-cache`); per-region resources derive theirs from it."""
    engine: str
    """redis or valkey (`turnout:cache.engine`)."""
    tier: str
    """dev, staging or prod: sizes the nodes."""
    primary: CacheSite
    """The read-write copy."""
    replicas: tuple[CacheSite, ...] = ()
    """Cross-region read-only copies, replicated asynchronously and promotable on failover; empty means none."""
    backup_interval_seconds: int = DEFAULT_BACKUP_INTERVAL_SECONDS
    """How often a snapshot is taken; the cloud's nearest supported period is used (`backup_period`)."""
    backup_retention_days: int = DEFAULT_BACKUP_RETENTION_DAYS
    """How long snapshots are kept where the cloud lets it be set (ElastiCache); others keep the latest."""
    primary_region: str | None = None
    """The copy that takes writes now (`turnout:cache.primaryRegion`, ElastiCache only, after a failover); None:
    `primary`'s. `primary` stays the copy the cache was founded on, whatever takes writes later."""

    @property
    def sites(self) -> tuple[CacheSite, ...]:
        return (self.primary, *self.replicas)


@dataclass(frozen=True, kw_only=True)
class CacheConnection:
    """What a model workload needs to reach the cache from one region."""

    address: pulumi.Output[str]
    """Host name or IP of the region's copy."""
    port: int
    password: pulumi.Output[str]
    """The AUTH token/password: a secret Output, written only into a Kubernetes Secret."""
    tls: bool
    """Whether clients must speak TLS (every cloud cache; kind's in-cluster Redis speaks plain TCP)."""
    role: str
    """primary (read-write) or replica (read-only until promoted)."""
    in_cluster: bool = False
    """The cache is a Service of the same cluster (no mesh egress entry needed)."""
    ip_address: bool = False
    """`address` is an IP, not a host name (Memorystore): the mesh must match it by address, not by name."""
    ca_certificate: pulumi.Output[str] | None = None
    """The server's CA where it is not publicly trusted (Memorystore), for clients to verify it."""


def backup_period(cloud: str, interval_seconds: int) -> int:
    """The snapshot period used for a requested interval: the cloud's nearest supported period (the shorter one
    on a tie); kind snapshots at exactly the interval."""
    periods = BACKUP_PERIODS.get(cloud)
    if periods is None:
        return interval_seconds
    return min(periods, key=lambda period: (abs(period - interval_seconds), period))


def keeps_snapshots(cloud: str, replica_regions: tuple[str, ...]) -> bool:
    """Whether the cache takes snapshots: always, except where its cross-region replicas exclude them (then the
    backup interval and retention mean nothing, and are not checked)."""
    return not (replica_regions and cloud in NO_SNAPSHOTS_WITH_REPLICAS)


def check_cache_settings(
    *,
    cloud: str,
    engine: str,
    backup_interval_seconds: int,
    backup_retention_days: int,
    replica_regions: tuple[str, ...] = (),
    primary_region: str | None = None,
    cache_regions: tuple[str, ...] = (),
) -> None:
    """Refuse, naming the `turnout:cache` key, what the cloud's cache cannot do, before anything is created.
    `cache_regions`: the regions that hold a copy (the founding one first), for `primary_region`."""
    if engine not in ENGINES[cloud]:
        raise NotSupportedError(
            key_path(f"{CACHE_KEY}.engine"),
            f"{engine!r} on {cloud}",
            f"engine {' or '.join(ENGINES[cloud])} on {cloud} ({SERVICES[cloud]})",
        )
    periods = BACKUP_PERIODS.get(cloud)
    shortest = periods[0] if periods else KIND_MIN_BACKUP_SECONDS
    snapshots = keeps_snapshots(cloud, replica_regions)
    if snapshots and backup_interval_seconds < shortest:
        supported = ", ".join(f"{period}s" for period in periods) if periods else f"any interval from {shortest}s"
        raise ConfigError(
            key_path(f"{CACHE_KEY}.backupInterval"),
            f"{backup_interval_seconds}s on {cloud}",
            f"at least {shortest}s: {SERVICES[cloud]} snapshots every {supported}",
        )
    low, high = AWS_RETENTION_DAYS if cloud == "aws" else (1, 3650)
    if snapshots and not low <= backup_retention_days <= high:
        raise ConfigError(
            key_path(f"{CACHE_KEY}.backupRetention"),
            f"{backup_retention_days} days on {cloud}",
            f"{low} to {high} days",
        )
    if replica_regions and cloud not in CROSS_REGION:
        reason = (
            "a kind cluster has one region"
            if cloud == "kind"
            else "Memorystore for Redis instances have no cross-region replication"
        )
        raise NotSupportedError(
            key_path(CACHE_KEY),
            f"cross-region replicas in {', '.join(replica_regions)} on {cloud} ({reason})",
            "a single-region cache on kind and gcp; cross-region replicas on " + " and ".join(CROSS_REGION),
        )
    if primary_region is not None:
        check_primary_region(cloud, primary_region, cache_regions)


PRIMARY_REGION_CLOUDS = ("aws",)


def check_primary_region(cloud: str, primary_region: str, cache_regions: tuple[str, ...]) -> None:
    """`turnout:cache.primaryRegion` names a region holding a copy, on a cloud whose failover turnout runs."""
    path = key_path(f"{CACHE_KEY}.primaryRegion")
    if cloud not in PRIMARY_REGION_CLOUDS:
        raise NotSupportedError(
            path,
            f"{primary_region!r} on {cloud}",
            "primaryRegion on " + ", ".join(PRIMARY_REGION_CLOUDS) + " (after `turnout failover`)",
        )
    if cache_regions and primary_region not in cache_regions:
        raise ConfigError(
            path,
            f"{primary_region!r}, which holds no copy of the cache",
            "a region with a copy: " + ", ".join(cache_regions),
        )


def check_cache_args(cloud: str, args: CacheArgs) -> None:
    """`check_cache_settings` for a component's args (components check again: they may be built directly)."""
    check_cache_settings(
        cloud=cloud,
        engine=args.engine,
        backup_interval_seconds=args.backup_interval_seconds,
        backup_retention_days=args.backup_retention_days,
        replica_regions=tuple(site.region for site in args.replicas),
        primary_region=args.primary_region,
        cache_regions=tuple(site.region for site in args.sites),
    )


def replication_document(
    *,
    cloud: str,
    engine: str,
    primary_region: str,
    nodes_per_region: int,
    zone_redundant: bool,
    replica_regions: tuple[str, ...],
    cross_region: str | None,
    backup: dict[str, Any] | None,
    promotion: str = "manual",
) -> dict[str, Any]:
    """The `replication` output every cache exposes, in plain JSON for dr.json:

    {"service", "engine", "primaryRegion",
     "regions": {REGION: {"role": "primary"|"replica", "nodes": N, "zoneRedundant": bool}},
     "crossRegion": null | {"mechanism", "mode": "asynchronous", "promotion": "manual"|"none", "replicas": [REGION]},
     "backup": null | {"intervalSeconds", "requestedIntervalSeconds", "retentionDays" (null: latest only), "to"}}

    `promotion` "none": every region's copy takes writes (Azure Managed Redis active geo-replication), so every
    region's role is primary and a failover promotes nothing.
    """
    replica_role = "primary" if promotion == "none" else "replica"
    regions = {primary_region: {"role": "primary", "nodes": nodes_per_region, "zoneRedundant": zone_redundant}}
    for region in replica_regions:
        regions[region] = {"role": replica_role, "nodes": nodes_per_region, "zoneRedundant": zone_redundant}
    return {
        "service": SERVICES[cloud],
        "engine": engine,
        "primaryRegion": primary_region,
        "regions": regions,
        "crossRegion": None
        if not replica_regions
        else {
            "mechanism": cross_region,
            "mode": "asynchronous",
            "promotion": promotion,
            "replicas": list(replica_regions),
        },
        "backup": backup,
    }


def bounded_name(name: str, limit: int) -> str:
    """`name`, or when longer than `limit` a stable hash-suffixed prefix of it (cloud name limits)."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{name[: limit - 7].rstrip('-')}-{digest}"


class CacheComponent(pulumi.ComponentResource):
    """What every cache component exposes, whichever cloud it is on."""

    address: dict[str, pulumi.Output[str]]
    """Host name or IP of the copy in each region (primary and replicas)."""
    port: int
    auth_token: pulumi.Output[str]
    """The primary's AUTH token (secret)."""
    replication: dict[str, Any]
    """What is replicated where and how it is backed up (`replication_document`), for dr.json."""

    def __init__(self, type_: str, name: str, opts: pulumi.ResourceOptions | None) -> None:
        super().__init__(type_, name, None, opts)
        self.address = {}
        self._connections: dict[str, CacheConnection] = {}

    def _add_site(self, region: str, connection: CacheConnection) -> None:
        self.address[region] = connection.address
        self._connections[region] = connection

    def connection_for(self, region: str) -> CacheConnection:
        """How workloads in `region` reach the cache: the copy in their own region (a replica is read-only until
        it is promoted, and keeps its address when it is)."""
        if region not in self._connections:
            raise ValueError(f"the cache has no copy in region {region!r}; it has {', '.join(self._connections)}")
        return self._connections[region]

    def _register(self) -> None:
        self.register_outputs(
            {"address": self.address, "port": self.port, "authToken": self.auth_token, "replication": self.replication}
        )
