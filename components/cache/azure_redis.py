"""Azure Cache for Redis beside the AKS clusters: a Premium cache per region with its replica in another zone,
TLS 1.2 or newer on the TLS port only, no public network access (a private endpoint in the AKS VNet with its
privatelink DNS zone), access-key AUTH, and RDB persistence at the supported frequency nearest the backup
interval, written with a managed identity (no storage key anywhere) to a storage account that admits only
trusted Azure services.

With replicas, passive geo-replication links each replica region's cache to the primary as a read-only
secondary. Azure refuses persistence on geo-replicated caches: the geo-secondary then is the copy, and
`replication["backup"]` is null.

Encryption at rest uses Microsoft-managed keys: customer-managed keys are an Enterprise-tier feature.
"""

from __future__ import annotations

import hashlib
import re

import pulumi
from pulumi_azure_native import authorization, managedidentity, network, privatedns, redis, resources, storage

from components.cache import (
    CacheArgs,
    CacheComponent,
    CacheConnection,
    CacheSite,
    backup_period,
    bounded_name,
    check_cache_args,
    replication_document,
)
from components.cluster.aks import role_assignment_name, role_definition
from turnout.naming import child

PORT = 6380  # the TLS port; the plain-text port 6379 stays disabled
SKU_CAPACITY = {"prod": 2}  # Premium P2 (13 GB) in prod, P1 (6 GB) elsewhere
DEFAULT_SKU_CAPACITY = 1
ZONES = ["1", "2"]  # the primary and its one replica in different zones (geo-replication takes one replica)
REDIS_VERSION = "6"
PRIVATE_DNS_ZONE = "privatelink.redis.cache.windows.net"
# Built-in role: read and write blobs, nothing else on the account.
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
CACHE_NAME_MAX = 63
STORAGE_NAME_MAX = 24


def storage_account_name(cache: str) -> str:
    """A storage account name (3-24 lowercase letters and digits, globally unique) derived from the cache's:
    its letters and digits, cut to leave room for 6 hex digits of its hash, which keep cut names distinct."""
    stem = re.sub(r"[^a-z0-9]", "", cache.lower())
    return stem[: STORAGE_NAME_MAX - 6] + hashlib.sha256(cache.encode()).hexdigest()[:6]


class AzureRedisCache(CacheComponent):
    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:cache:AzureRedisCache", name, opts)
        check_cache_args("azure", args)
        self.port = PORT
        self._client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        period = backup_period("azure", args.backup_interval_seconds)
        # Persistence only without geo-replication, which Azure does not allow together with it.
        persisted_minutes = None if args.replicas else period // 60

        primary, primary_group = self._region(name, args, args.primary, "primary", persisted_minutes)
        self.auth_token = self.connection_for(args.primary.region).password
        for site in args.replicas:
            secondary, _ = self._region(name, args, site, "replica", None)
            redis.LinkedServer(
                child(name, site.region, "geo-link"),
                name=primary.name,
                resource_group_name=primary_group.name,
                linked_server_name=secondary.name,
                linked_redis_cache_id=secondary.id,
                linked_redis_cache_location=site.region,
                server_role="Secondary",
                opts=pulumi.ResourceOptions(parent=self),
            )

        self.replication = replication_document(
            cloud="azure",
            engine=args.engine,
            primary_region=args.primary.region,
            nodes_per_region=2,
            zone_redundant=True,
            replica_regions=tuple(site.region for site in args.replicas),
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

    def _region(
        self, name: str, args: CacheArgs, site: CacheSite, role: str, persisted_minutes: int | None
    ) -> tuple[redis.Redis, resources.ResourceGroup]:
        """One region's cache, its private endpoint and DNS, and (when persisted) its backup storage."""
        cluster, region = site.cluster, site.region
        prefix = child(name, region)
        mine = pulumi.ResourceOptions(parent=self)
        cache_name = bounded_name(child(args.cache_name, region), CACHE_NAME_MAX)
        tags = {"managed-by": "pulumi", "turnout-cache": args.cache_name}
        group = resources.ResourceGroup(
            child(prefix, "rg"),
            resource_group_name=child(cache_name, "rg"),
            location=region,
            tags=tags,
            opts=mine,
        )
        persistence: dict = {}
        identity = None
        after: list[pulumi.Resource] = []
        if persisted_minutes is not None:
            identity, grant, blob_endpoint = self._backup_storage(prefix, cache_name, region, group, tags)
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
            name=cache_name,
            resource_group_name=group.name,
            location=region,
            sku={"name": "Premium", "family": "P", "capacity": SKU_CAPACITY.get(args.tier, DEFAULT_SKU_CAPACITY)},
            redis_version=REDIS_VERSION,
            zones=ZONES,
            replicas_per_primary=1,
            minimum_tls_version="1.2",
            enable_non_ssl_port=False,
            public_network_access="Disabled",
            disable_access_key_authentication=False,
            identity=None if identity is None else {"type": "UserAssigned", "user_assigned_identities": [identity.id]},
            redis_configuration=persistence or None,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )
        self._private_access(prefix, cache_name, region, cluster, group, cache, tags)
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
        return cache, group

    def _backup_storage(
        self, prefix: str, cache_name: str, region: str, group: resources.ResourceGroup, tags: dict
    ) -> tuple[managedidentity.UserAssignedIdentity, authorization.RoleAssignment, pulumi.Output[str]]:
        """The storage account RDB snapshots go to, and the identity the cache writes them as, granted before the
        cache exists (a system-assigned identity could only be granted after Azure had already needed it)."""
        mine = pulumi.ResourceOptions(parent=self)
        identity = managedidentity.UserAssignedIdentity(
            child(prefix, "identity"),
            resource_name_=child(cache_name, "identity"),
            resource_group_name=group.name,
            location=region,
            tags=tags,
            opts=mine,
        )
        account = storage.StorageAccount(
            child(prefix, "backups"),
            account_name=storage_account_name(cache_name),
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
            role_assignment_name=role_assignment_name(cache_name, "identity-backups"),
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
        cache_name: str,
        region: str,
        cluster,
        group: resources.ResourceGroup,
        cache: redis.Redis,
        tags: dict,
    ) -> None:
        """A private endpoint in the AKS node subnet, and the privatelink zone that resolves the cache's name to
        it from the AKS VNet."""
        mine = pulumi.ResourceOptions(parent=self)
        endpoint = network.PrivateEndpoint(
            child(prefix, "endpoint"),
            private_endpoint_name=child(cache_name, "pe"),
            resource_group_name=group.name,
            location=region,
            subnet={"id": cluster.node_subnet_id},
            private_link_service_connections=[
                {"name": cache_name, "private_link_service_id": cache.id, "group_ids": ["redisCache"]}
            ],
            tags=tags,
            opts=mine,
        )
        zone = privatedns.PrivateZone(
            child(prefix, "dns"),
            private_zone_name=PRIVATE_DNS_ZONE,
            resource_group_name=group.name,
            location="global",
            tags=tags,
            opts=mine,
        )
        privatedns.VirtualNetworkLink(
            child(prefix, "dns-link"),
            virtual_network_link_name=child(cache_name, "aks"),
            private_zone_name=zone.name,
            resource_group_name=group.name,
            location="global",
            virtual_network={"id": cluster.vnet_id},
            registration_enabled=False,
            tags=tags,
            opts=mine,
        )
        network.PrivateDnsZoneGroup(
            child(prefix, "endpoint-dns"),
            private_dns_zone_group_name="default",
            private_endpoint_name=endpoint.name,
            resource_group_name=group.name,
            private_dns_zone_configs=[{"name": "redis", "private_dns_zone_id": zone.id}],
            opts=mine,
        )
