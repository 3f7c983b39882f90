"""Memorystore for Redis beside a GKE cluster: a STANDARD_HA instance (a replica in another zone, automatic
failover) on the cluster's VPC through private services access, AUTH on, TLS with server authentication,
customer-managed encryption at rest, and RDB snapshots at the supported period nearest the backup interval.

Memorystore for Redis instances have no cross-region replication (Memorystore for Valkey and for Redis Cluster
do, as other products): `check_cache_settings` refuses replicas on gcp before anything is created.

The private services access range is the `private_services` /20 of the cluster's network layout
(components/cluster/gcp_network.py), inside the region's /16; the APIs it calls are enabled first; its names
fit GCP's limits (components/cluster/gcp_limits.py); its key ring carries a random suffix, since Cloud KMS
never deletes one (components/cluster/gcp_kms.py). Clients reach the instance by IP, so no private DNS zone
is involved.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from components.cache import (
    CacheArgs,
    CacheComponent,
    CacheConnection,
    backup_period,
    check_cache_args,
    replication_document,
)
from components.cluster.gcp_apis import MEMORYSTORE_APIS, enable_apis
from components.cluster.gcp_kms import service_agent_key
from components.cluster.gcp_limits import gcp_name
from turnout.naming import child

PORT = 6378  # Memorystore serves TLS on 6378 (6379 is its plain-text port, unused here)
REDIS_VERSION = "REDIS_7_2"
MEMORY_GB = {"prod": 5}
DEFAULT_MEMORY_GB = 1
SNAPSHOT_PERIODS = {3600: "ONE_HOUR", 21600: "SIX_HOURS", 43200: "TWELVE_HOURS", 86400: "TWENTY_FOUR_HOURS"}
SERVICE_NETWORKING = "servicenetworking.googleapis.com"


class MemorystoreCache(CacheComponent):
    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:cache:MemorystoreCache", name, opts)
        check_cache_args("gcp", args)
        self.port = PORT
        site = args.primary
        cluster = site.cluster
        period = backup_period("gcp", args.backup_interval_seconds)
        gcp_provider = gcp.Provider(
            child(name, "gcp"),
            project=pulumi.Config("gcp").get("project"),
            region=site.region,
            opts=pulumi.ResourceOptions(parent=self),
        )

        apis = enable_apis(name, MEMORYSTORE_APIS, pulumi.ResourceOptions(parent=self, provider=gcp_provider))

        def on_gcp(*depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, provider=gcp_provider, depends_on=[*apis, *depends_on])

        project = gcp.organizations.get_project_output(
            opts=pulumi.InvokeOutputOptions(parent=self, provider=gcp_provider, depends_on=apis)
        )

        # Private services access: a range of the cluster's VPC peered to Google's services network.
        psa_address, psa_prefix = cluster.network_layout.private_services.split("/")
        psa_range = gcp.compute.GlobalAddress(
            child(name, "psa-range"),
            name=gcp_name("global_address", child(args.cache_name, "psa")),
            purpose="VPC_PEERING",
            address_type="INTERNAL",
            address=psa_address,
            prefix_length=int(psa_prefix),
            network=cluster.network_id,
            opts=on_gcp(),
        )
        peering = gcp.servicenetworking.Connection(
            child(name, "psa"),
            network=cluster.network_id,
            service=SERVICE_NETWORKING,
            reserved_peering_ranges=[psa_range.name],
            opts=on_gcp(),
        )

        # Memorystore encrypts as its service agent, which must hold the key before the instance exists.
        key, agent_on_key = service_agent_key(
            name,
            key_ring_name=args.cache_name,
            key_name="memorystore",
            resources=("key", "key-redis-agent"),
            region=site.region,
            project_number=project.number,
            agent="cloud-redis",
            opts=on_gcp(),
        )

        instance = gcp.redis.Instance(
            child(name, "instance"),
            name=gcp_name("redis_instance", args.cache_name),
            display_name=f"turnout cache {args.cache_name}",
            region=site.region,
            tier="STANDARD_HA",
            memory_size_gb=MEMORY_GB.get(args.tier, DEFAULT_MEMORY_GB),
            redis_version=REDIS_VERSION,
            authorized_network=cluster.network_id,
            connect_mode="PRIVATE_SERVICE_ACCESS",
            reserved_ip_range=psa_range.name,
            auth_enabled=True,
            transit_encryption_mode="SERVER_AUTHENTICATION",
            customer_managed_key=key.id,
            persistence_config={"persistence_mode": "RDB", "rdb_snapshot_period": SNAPSHOT_PERIODS[period]},
            maintenance_policy={
                "weekly_maintenance_windows": [
                    {"day": "SUNDAY", "start_time": {"hours": 5, "minutes": 0, "seconds": 0, "nanos": 0}}
                ]
            },
            labels={"turnout-cache": args.cache_name},
            opts=on_gcp(peering, agent_on_key),
        )
        self.auth_token = pulumi.Output.secret(instance.auth_string)
        self._add_site(
            site.region,
            CacheConnection(
                address=instance.host,
                port=PORT,
                password=self.auth_token,
                tls=True,
                role="primary",
                ip_address=True,
                ca_certificate=instance.server_ca_certs.apply(lambda certs: certs[0].cert if certs else ""),
            ),
        )
        self.replication = replication_document(
            cloud="gcp",
            engine=args.engine,
            primary_region=site.region,
            nodes_per_region=2,  # STANDARD_HA: a primary and a replica in another zone
            zone_redundant=True,
            replica_regions=(),
            cross_region=None,
            backup={
                "intervalSeconds": period,
                "requestedIntervalSeconds": args.backup_interval_seconds,
                "retentionDays": None,
                "to": "memorystore-rdb-snapshots",
            },
        )
        self._register()
