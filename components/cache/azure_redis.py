"""Azure Cache for Redis beside the AKS clusters: a Premium cache per region, TLS 1.2 or newer on the TLS port
only, no public network access (a private endpoint in the AKS node subnet), access-key AUTH, and, for a cache
without geo-replication, its replica in another zone and RDB persistence at the supported frequency nearest the
backup interval, written with a managed identity (no storage key anywhere) to a storage account that admits only
trusted Azure services.

With replicas, passive geo-replication links each replica region's cache to the primary as a read-only secondary.
Azure's rules for linked caches ("Configure passive geo-replication for Premium Azure Cache for Redis instances"):
- "Persistence isn't supported with geo-replication": the geo-secondary is the copy, `replication["backup"]` is
  null, and a point-in-time copy is an Export (from either cache), which the stack does not schedule;
- "Zone Redundancy isn't supported with geo-replication": linked caches are not zonal;
- "Private links can't be added to caches that are already geo-replicated": the link waits for both caches'
  private endpoints and their DNS.

One `privatelink.redis.cache.windows.net` zone serves every region, linked to every region's VNet: a VNet can be
linked to only one zone of a name, so per-region zones would leave a network peered with two regions (a runner, a
hub) unable to resolve both caches. Cache and storage account names are unique across Azure: they carry a hash of
the subscription (components/cluster/azure_limits.py).

Encryption at rest uses Microsoft-managed keys: customer-managed keys are an Enterprise-tier feature.
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import authorization, managedidentity, network, privatedns, redis, resources, storage

from components.cache import (
    CacheArgs,
    CacheComponent,
    CacheConnection,
    CacheSite,
    backup_period,
    check_cache_args,
    keeps_snapshots,
    replication_document,
)
from components.cluster.aks import role_assignment_name, role_definition
from components.cluster.azure_limits import azure_name, global_name
from turnout.naming import child

PORT = 6380  # the TLS port; the plain-text port 6379 stays disabled
SKU_CAPACITY = {"prod": 2}  # Premium P2 (13 GB) in prod, P1 (6 GB) elsewhere
DEFAULT_SKU_CAPACITY = 1
ZONES = ["1", "2"]  # a cache's primary and its one replica in different zones, when it is not geo-replicated
REDIS_VERSION = "6"
PRIVATE_DNS_ZONE = "privatelink.redis.cache.windows.net"
GEO_REPLICATION_TAG = "turnout-geo-replication"  # primary or secondary on a linked cache (policies: cache-backups)
# Built-in role: read and write blobs, nothing else on the account.
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"


def cache_name(site: str, subscription_id: str) -> str:
    """The cache's name (its host is `<name>.redis.cache.windows.net`): unique across Azure, so it carries a hash of
    the subscription."""
    return global_name("redis", site, subscription_id)


def storage_account_name(site: str, subscription_id: str) -> str:
    """A storage account name (3-24 lowercase letters and digits, unique across Azure) derived from the cache site's:
    its letters and digits, cut to leave room for 6 hex digits of a hash of subscription and site."""
    return global_name("storage_account", site, subscription_id)


class AzureRedisCache(CacheComponent):
    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:cache:AzureRedisCache", name, opts)
        check_cache_args("azure", args)
        self.port = PORT
        self._client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        period = backup_period("azure", args.backup_interval_seconds)
        replicas = tuple(site.region for site in args.replicas)
        # Persistence only without geo-replication, which Azure does not allow together with it.
        persisted_minutes = period // 60 if keeps_snapshots("azure", replicas) else None
        zonal = not args.replicas  # Azure does not geo-replicate zone-redundant caches
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
        primary, primary_ready = self._region(
            name, args, args.primary, primary_group, "primary", persisted_minutes, zonal
        )
        self.auth_token = self.connection_for(args.primary.region).password
        for site in args.replicas:
            group = self._group(name, args, site.region)
            secondary, secondary_ready = self._region(name, args, site, group, "replica", None, zonal)
            redis.LinkedServer(
                child(name, site.region, "geo-link"),
                name=primary.name,
                resource_group_name=primary_group.name,
                linked_server_name=secondary.name,
                linked_redis_cache_id=secondary.id,
                linked_redis_cache_location=site.region,
                server_role="Secondary",
                # Private links cannot be added to caches that are already geo-replicated.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*primary_ready, *secondary_ready]),
            )

        self.replication = replication_document(
            cloud="azure",
            engine=args.engine,
            primary_region=args.primary.region,
            nodes_per_region=2,
            zone_redundant=zonal,
            replica_regions=replicas,
            cross_region="azure-passive-geo-replication",
            backup=None
            if persisted_minutes is None
            else {
                "intervalSeconds": period,
                "requestedIntervalSeconds": args.backup_interval_seconds,
                "retentionDays": None,
                "to": "azure-storage-rdb",
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
        persisted_minutes: int | None,
        zonal: bool,
    ) -> tuple[redis.Redis, list[pulumi.Resource]]:
        """One region's cache, its private endpoint and DNS, and (when persisted) its backup storage; returns the
        cache and what must exist before it is geo-replicated."""
        cluster, region = site.cluster, site.region
        prefix = child(name, region)
        site_name = child(args.cache_name, region)
        tags = self._tags(args)
        persistence: dict = {}
        identity = None
        after: list[pulumi.Resource] = []
        if persisted_minutes is not None:
            identity, grant, blob_endpoint = self._backup_storage(prefix, site_name, region, group, tags)
            after.append(grant)
            persistence = {
                "rdb_backup_enabled": "true",
                "rdb_backup_frequency": str(persisted_minutes),
                "rdb_backup_max_snapshot_count": "1",
                # With a managed identity the connection string names the endpoint only: no key to leak.
                "rdb_storage_connection_string": pulumi.Output.concat("BlobEndpoint=", blob_endpoint),
                "preferred_data_persistence_auth_method": "ManagedIdentity",
                "storage_subscription_id": self._client.subscription_id,
            }
        cache = redis.Redis(
            child(prefix, "cache"),
            name=self._client.subscription_id.apply(lambda subscription: cache_name(site_name, subscription)),
            resource_group_name=group.name,
            location=region,
            sku={"name": "Premium", "family": "P", "capacity": SKU_CAPACITY.get(args.tier, DEFAULT_SKU_CAPACITY)},
            redis_version=REDIS_VERSION,
            zones=ZONES if zonal else None,
            replicas_per_primary=1,
            minimum_tls_version="1.2",
            enable_non_ssl_port=False,
            public_network_access="Disabled",
            disable_access_key_authentication=False,
            identity=None if identity is None else {"type": "UserAssigned", "user_assigned_identities": [identity.id]},
            redis_configuration=persistence or None,
            # Visible to the policy pack (cache-backups): Azure keeps no snapshots of a geo-replicated cache.
            tags={**tags, GEO_REPLICATION_TAG: "primary" if role == "primary" else "secondary"} if not zonal else tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )
        ready = self._private_access(prefix, site_name, region, cluster, group, cache, tags)
        keys = redis.list_redis_keys_output(
            resource_group_name=group.name, name=cache.name, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        self._add_site(
            region,
            CacheConnection(
                address=cache.host_name,
                port=PORT,
                password=pulumi.Output.secret(keys.primary_key),
                tls=True,
                role=role,
            ),
        )
        return cache, ready

    def _backup_storage(
        self, prefix: str, site_name: str, region: str, group: resources.ResourceGroup, tags: dict
    ) -> tuple[managedidentity.UserAssignedIdentity, authorization.RoleAssignment, pulumi.Output[str]]:
        """The storage account RDB snapshots go to, and the identity the cache writes them as, granted before the
        cache exists (a system-assigned identity could only be granted after Azure had already needed it)."""
        mine = pulumi.ResourceOptions(parent=self)
        identity = managedidentity.UserAssignedIdentity(
            child(prefix, "identity"),
            resource_name_=azure_name("managed_identity", child(site_name, "identity")),
            resource_group_name=group.name,
            location=region,
            tags=tags,
            opts=mine,
        )
        account = storage.StorageAccount(
            child(prefix, "backups"),
            account_name=self._client.subscription_id.apply(
                lambda subscription: storage_account_name(site_name, subscription)
            ),
            resource_group_name=group.name,
            location=region,
            kind="StorageV2",
            sku={"name": "Standard_GRS"},  # snapshots survive the loss of the region
            allow_blob_public_access=False,
            allow_shared_key_access=False,
            default_to_o_auth_authentication=True,
            enable_https_traffic_only=True,
            minimum_tls_version="TLS1_2",
            # Nothing reaches the account over the network but trusted Azure services (the cache).
            network_rule_set={"default_action": "Deny", "bypass": "AzureServices"},
            tags=tags,
            opts=mine,
        )
        grant = authorization.RoleAssignment(
            child(prefix, "identity-backups"),
            role_assignment_name=role_assignment_name(site_name, "identity-backups"),
            scope=account.id,
            role_definition_id=role_definition(self._client.subscription_id, STORAGE_BLOB_DATA_CONTRIBUTOR),
            principal_id=identity.principal_id,
            principal_type="ServicePrincipal",
            opts=mine,
        )
        return identity, grant, account.primary_endpoints.blob

    def _private_access(
        self,
        prefix: str,
        site_name: str,
        region: str,
        cluster,
        group: resources.ResourceGroup,
        cache: redis.Redis,
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
                    "private_link_service_id": cache.id,
                    "group_ids": ["redisCache"],
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
