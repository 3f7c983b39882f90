"""Azure Managed Redis beside the AKS clusters: per region a cluster (`Microsoft.Cache/redisEnterprise`) and its one
database, `default`, on port 10000. Secure defaults: TLS 1.2 or newer and the encrypted client protocol only, no
public network access (a private endpoint in the AKS node subnet, answered by one `privatelink.redis.azure.net`
zone linked to every region's VNet), high availability (a replica of every shard on another node, spread over the
region's zones where it has them: "a highly available cache into a region with availability zones" is zone
redundant, learn.microsoft.com/azure/reliability/reliability-managed-redis), access-key AUTH (the models read the
key from a Kubernetes Secret; Entra ID tokens would need workload identity in every model pod).

Azure Cache for Redis, which this component built before, is being retired in favour of Azure Managed Redis.

With replicas, the regions' databases form one active geo-replication group ("Configure active geo-replication
for Azure Managed Redis instances", learn.microsoft.com/azure/redis/how-to-active-geo-replication): every member
takes reads and writes, so a failover promotes nothing. Azure's rules for the group, which the Pulumi mocks cannot
see and `check_geo_group` checks before anything is created:
- a database joins a group only when it is created: the founding region's database lists itself, and each other
  region's lists the members created before it and itself, created after them (as the portal and the CLI join
  an existing group). Azure reports the whole group on every member afterwards, which is not a change to make;
- "All caches within a geo-replication group must have the same configuration" (SKU, eviction policy, clustering
  policy, modules, TLS setting);
- persistence is not supported with active geo-replication: the other members are the copy;
- only the RediSearch and RedisJSON modules replicate; Balanced B0 and B1 do not geo-replicate; at most five
  members; FLUSHALL and FLUSHDB are refused (the models' cache client never sends them).

Without replicas the database persists RDB snapshots at the supported frequency nearest the backup interval.
Managed Redis keeps them on the cluster's own disks in the region: they survive a restart or a node's loss, not
the region's (dr.json counts them so).

Names: a cluster's host is `<name>.<region>.redis.azure.net`; the name carries a hash of the subscription like the
other names unique across Azure (components/cluster/azure_limits.py). Encryption at rest uses Microsoft-managed
keys: the stack's only Key Vault keys are each AKS cluster's etcd key, which only its control plane may use; a
customer-managed key would need a vault, key and identity per cache, which turnout does not create.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, network, privatedns, redisenterprise, resources

from components.cache import (
    CACHE_KEY,
    CacheArgs,
    CacheComponent,
    CacheConnection,
    CacheSite,
    backup_period,
    check_cache_args,
    keeps_snapshots,
    replication_document,
)
from components.cluster.azure_limits import azure_name, global_name
from turnout.config import key_path
from turnout.errors import ConfigError
from turnout.naming import child

PORT = 10000  # Managed Redis databases listen on 10000 (TLS with the Encrypted client protocol)
SKUS = {"prod": "Balanced_B10"}  # 12 GB in prod, 6 GB elsewhere: the sizes of the Premium P2/P1 caches before
DEFAULT_SKU = "Balanced_B5"
DATABASE = "default"  # a Managed Redis cluster holds one database, named default
CLUSTERING_POLICY = "EnterpriseCluster"  # one endpoint: clients need not speak the OSS cluster protocol
EVICTION_POLICY = "VolatileLRU"  # Azure's default, written out: every member of a group must have the same
CLIENT_PROTOCOL = "Encrypted"
MINIMUM_TLS_VERSION = "1.2"
PRIVATE_DNS_ZONE = "privatelink.redis.azure.net"
PRIVATE_LINK_GROUP = "redisEnterprise"
# Managed Redis RDB snapshot frequencies (persistence.rdbFrequency), by period in seconds.
RDB_FREQUENCIES = {3600: "1h", 21600: "6h", 43200: "12h"}

# Azure's rules for an active geo-replication group (how-to-active-geo-replication, "Active geo-replication
# prerequisites" and "Scope of availability").
GEO_MAX_MEMBERS = 5
GEO_MODULES = ("RediSearch", "RedisJSON")
GEO_UNSUPPORTED_SKUS = ("Balanced_B0", "Balanced_B1")
GEO_SOURCE = "https://learn.microsoft.com/azure/redis/how-to-active-geo-replication"


def cache_name(site: str, subscription_id: str) -> str:
    """The cluster's name (its host is `<name>.<region>.redis.azure.net`), with a hash of the subscription."""
    return global_name("redis_enterprise", site, subscription_id)


def rdb_frequency(period_seconds: int) -> str:
    """`persistence.rdbFrequency` for a backup period of `backup_period("azure", ...)`."""
    return RDB_FREQUENCIES[period_seconds]


@dataclass(frozen=True)
class Member:
    """What Azure compares across a geo-replication group: one region's planned cluster and database."""

    region: str
    sku: str
    clustering_policy: str = CLUSTERING_POLICY
    eviction_policy: str = EVICTION_POLICY
    client_protocol: str = CLIENT_PROTOCOL
    minimum_tls_version: str = MINIMUM_TLS_VERSION
    modules: tuple[str, ...] = ()
    persistence: bool = False


def check_geo_group(members: Sequence[Member]) -> None:
    """Refuse, before anything is created, a geo-replication group Azure would refuse: naming `turnout:cache`
    (the key that asks for the group) and what Azure allows. A single member (no group) is not checked here."""
    if len(members) < 2:
        return
    path = key_path(CACHE_KEY)
    regions = ", ".join(m.region for m in members)
    if len(members) > GEO_MAX_MEMBERS:
        raise ConfigError(
            path,
            f"an Azure Managed Redis geo-replication group of {len(members)} regions ({regions})",
            f"at most {GEO_MAX_MEMBERS} regions in one active geo-replication group ({GEO_SOURCE})",
        )
    fields = ("sku", "clustering_policy", "eviction_policy", "client_protocol", "minimum_tls_version", "modules")
    first = members[0]
    for member in members[1:]:
        for name in fields:
            if getattr(member, name) != getattr(first, name):
                raise ConfigError(
                    path,
                    f"{name} {getattr(member, name)!r} in {member.region} but {getattr(first, name)!r} in "
                    f"{first.region}",
                    f"the same configuration in every member of a geo-replication group ({GEO_SOURCE})",
                )
    for member in members:
        if member.persistence:
            raise ConfigError(
                path,
                f"persistence on the geo-replicated Azure Managed Redis database in {member.region}",
                f"no persistence with active geo-replication: the other members are the copy ({GEO_SOURCE})",
            )
        if member.sku in GEO_UNSUPPORTED_SKUS:
            raise ConfigError(
                path,
                f"geo-replication of SKU {member.sku} in {member.region}",
                f"a SKU other than {' and '.join(GEO_UNSUPPORTED_SKUS)}, which do not geo-replicate ({GEO_SOURCE})",
            )
        others = [module for module in member.modules if module not in GEO_MODULES]
        if others:
            raise ConfigError(
                path,
                f"modules {', '.join(others)} in a geo-replication group",
                f"only {' and '.join(GEO_MODULES)} with active geo-replication ({GEO_SOURCE})",
            )


def group_nickname(cache_name_: str) -> str:
    """The geo-replication group's nickname: the cache's name (the same on every member)."""
    return cache_name_


def database_id(subscription_id: str, resource_group: str, cluster: str) -> str:
    """The ARM id of a cluster's database, as `linkedDatabases` names the members of a group."""
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/Microsoft.Cache/redisEnterprise/"
        f"{cluster}/databases/{DATABASE}"
    )


class AzureRedisCache(CacheComponent):
    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:cache:AzureRedisCache", name, opts)
        check_cache_args("azure", args)
        self.port = PORT
        self._client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        period = backup_period("azure", args.backup_interval_seconds)
        replicas = tuple(site.region for site in args.replicas)
        geo = bool(replicas)
        # Persistence only without geo-replication, which Azure does not allow together with it.
        persisted = keeps_snapshots("azure", replicas)
        sku = SKUS.get(args.tier, DEFAULT_SKU)
        if geo:
            check_geo_group([Member(region=site.region, sku=sku, persistence=persisted) for site in args.sites])
        mine = pulumi.ResourceOptions(parent=self)

        primary_group = self._group(name, args, args.primary.region)
        # One privatelink zone for every region, in the primary's resource group.
        self._zone = privatedns.PrivateZone(
            child(name, "dns"),
            private_zone_name=PRIVATE_DNS_ZONE,
            resource_group_name=primary_group.name,
            location="global",
            tags=self._tags(args),
            opts=mine,
        )
        self._zone_group = primary_group
        members: list[pulumi.Output[str]] = []  # database ids of the group, in creation order
        earlier: list[pulumi.Resource] = []
        for site in args.sites:
            group = primary_group if site is args.primary else self._group(name, args, site.region)
            role = "primary" if site is args.primary else "replica"
            database = self._region(
                name, args, site, group, role, sku, period if persisted else None, geo, members, earlier
            )
            earlier.append(database)
        self.auth_token = self.connection_for(args.primary.region).password

        self.replication = replication_document(
            cloud="azure",
            engine=args.engine,
            primary_region=args.primary.region,
            nodes_per_region=2,
            zone_redundant=True,
            replica_regions=replicas,
            cross_region="azure-managed-redis-active-geo-replication",
            promotion="none",
            backup=None
            if not persisted
            else {
                "intervalSeconds": period,
                "requestedIntervalSeconds": args.backup_interval_seconds,
                "retentionDays": None,
                "to": "azure-managed-redis-rdb-in-region",
            },
        )
        self._register()

    @staticmethod
    def _tags(args: CacheArgs) -> dict:
        return {"managed-by": "pulumi", "turnout-cache": args.cache_name}

    def _group(self, name: str, args: CacheArgs, region: str) -> resources.ResourceGroup:
        return resources.ResourceGroup(
            child(name, region, "rg"),
            resource_group_name=azure_name("resource_group", child(args.cache_name, region, "rg")),
            location=region,
            tags=self._tags(args),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _region(
        self,
        name: str,
        args: CacheArgs,
        site: CacheSite,
        group: resources.ResourceGroup,
        role: str,
        sku: str,
        persisted_period: int | None,
        geo: bool,
        members: list[pulumi.Output[str]],
        earlier: list[pulumi.Resource],
    ) -> redisenterprise.Database:
        """One region's cluster and database, its private endpoint and DNS; a geo-replicated database lists the
        members created before it and itself, and is created after them."""
        region = site.region
        prefix = child(name, region)
        site_name = child(args.cache_name, region)
        tags = self._tags(args)
        # Known at preview (the subscription is read then), unlike the cluster's `name` output: the database and the
        # policy pack (dr-cache-replication) read it.
        name_of_cluster = self._client.subscription_id.apply(lambda subscription: cache_name(site_name, subscription))
        cluster = redisenterprise.RedisEnterprise(
            child(prefix, "cluster"),
            cluster_name=name_of_cluster,
            resource_group_name=group.name,
            location=region,
            sku={"name": sku},
            high_availability="Enabled",
            minimum_tls_version=MINIMUM_TLS_VERSION,
            public_network_access="Disabled",
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        own_id = pulumi.Output.all(self._client.subscription_id, group.name, name_of_cluster).apply(
            lambda parts: database_id(*parts)
        )
        geo_replication = None
        database_opts = pulumi.ResourceOptions(parent=self, depends_on=[cluster])
        if geo:
            members.append(own_id)
            geo_replication = {
                "group_nickname": group_nickname(args.cache_name),
                "linked_databases": [{"id": member} for member in members],
            }
            # Joins the group when created, after the members it lists; Azure then reports the whole group on
            # every member, which is no change to apply (membership is fixed at creation).
            database_opts = pulumi.ResourceOptions(
                parent=self, depends_on=[cluster, *earlier], ignore_changes=["geoReplication.linkedDatabases"]
            )
        database = redisenterprise.Database(
            child(prefix, "database"),
            database_name=DATABASE,
            cluster_name=name_of_cluster,
            resource_group_name=group.name,
            port=PORT,
            client_protocol=CLIENT_PROTOCOL,
            clustering_policy=CLUSTERING_POLICY,
            eviction_policy=EVICTION_POLICY,
            access_keys_authentication="Enabled",
            geo_replication=geo_replication,
            persistence=None
            if persisted_period is None
            else {"rdb_enabled": True, "rdb_frequency": rdb_frequency(persisted_period)},
            opts=database_opts,
        )
        self._private_access(prefix, site_name, region, site.cluster, group, cluster, tags)
        keys = redisenterprise.list_database_keys_output(
            cluster_name=name_of_cluster,
            database_name=database.name,
            resource_group_name=group.name,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        self._add_site(
            region,
            CacheConnection(
                address=cluster.host_name,
                port=PORT,
                password=pulumi.Output.secret(keys.primary_key),
                tls=True,
                role=role if not geo else "primary",
            ),
        )
        return database

    def _private_access(
        self,
        prefix: str,
        site_name: str,
        region: str,
        cluster,
        group: resources.ResourceGroup,
        redis_cluster: redisenterprise.RedisEnterprise,
        tags: dict,
    ) -> list[pulumi.Resource]:
        """A private endpoint in the AKS node subnet whose address the stack's privatelink zone answers, and that
        zone linked to this region's VNet; returns them."""
        mine = pulumi.ResourceOptions(parent=self)
        endpoint = network.PrivateEndpoint(
            child(prefix, "endpoint"),
            private_endpoint_name=azure_name("private_endpoint", child(site_name, "pe")),
            resource_group_name=group.name,
            location=region,
            subnet={"id": cluster.node_subnet_id},
            private_link_service_connections=[
                {
                    "name": azure_name("private_endpoint", site_name),
                    "private_link_service_id": redis_cluster.id,
                    "group_ids": [PRIVATE_LINK_GROUP],
                }
            ],
            tags=tags,
            opts=mine,
        )
        link = privatedns.VirtualNetworkLink(
            child(prefix, "dns-link"),
            virtual_network_link_name=azure_name("private_dns_zone_link", cluster.name),
            private_zone_name=self._zone.name,
            resource_group_name=self._zone_group.name,
            location="global",
            virtual_network={"id": cluster.vnet_id},
            registration_enabled=False,
            tags=tags,
            opts=mine,
        )
        records = network.PrivateDnsZoneGroup(
            child(prefix, "endpoint-dns"),
            private_dns_zone_group_name="default",
            private_endpoint_name=endpoint.name,
            resource_group_name=group.name,
            private_dns_zone_configs=[{"name": "redis", "private_dns_zone_id": self._zone.id}],
            opts=mine,
        )
        return [endpoint, link, records]
