"""ElastiCache (Redis OSS or Valkey) beside the EKS clusters: a Multi-AZ replication group per region with automatic
failover, encrypted at rest with a customer KMS key and in transit, an AUTH token generated at deploy time, daily
snapshots, reachable on 6379 only from the EKS cluster's security group. With replicas, a Global Datastore joins a
read-only secondary replication group per replica region to the primary.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_random as random

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
from turnout.naming import child

PORT = 6379
ENGINE_VERSIONS = {"redis": "7.1", "valkey": "8.0"}
NODE_TYPES = {"prod": "cache.r7g.large"}
DEFAULT_NODE_TYPE = "cache.t4g.medium"
NODES = {"prod": 3}  # a primary and a replica in each of the other two AZs
DEFAULT_NODES = 2  # the least Multi-AZ automatic failover takes
# UTC; the snapshot window must not overlap the maintenance window.
SNAPSHOT_WINDOW = "03:00-05:00"
MAINTENANCE_WINDOW = "sun:05:30-sun:07:00"
REPLICATION_GROUP_ID_MAX = 40
AUTH_TOKEN_LENGTH = 64  # ElastiCache takes 16-128 printable characters; alphanumerics avoid its forbidden @ " /


def nodes_for(tier: str) -> int:
    return NODES.get(tier, DEFAULT_NODES)


class ElastiCache(CacheComponent):
    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:cache:ElastiCache", name, opts)
        check_cache_args("aws", args)
        self.port = PORT
        password = random.RandomPassword(
            child(name, "auth-token"),
            length=AUTH_TOKEN_LENGTH,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Marked secret here too: the result must never reach a plan or a state file in the clear.
        self.auth_token = pulumi.Output.secret(password.result)
        nodes = nodes_for(args.tier)
        period = backup_period("aws", args.backup_interval_seconds)

        primary, primary_provider = self._region(name, args, args.primary, nodes, global_id=None)
        group_ids = {args.primary.region: primary.replication_group_id}
        global_id: pulumi.Output[str] | None = None
        if args.replicas:
            # Global Datastore: the primary group replicates asynchronously to a read-only group per replica region.
            global_datastore = aws.elasticache.GlobalReplicationGroup(
                child(name, "global"),
                global_replication_group_id_suffix=args.cache_name,
                global_replication_group_description=f"turnout cache {args.cache_name}",
                primary_replication_group_id=primary.id,
                region=args.primary.region,
                opts=pulumi.ResourceOptions(parent=self, provider=primary_provider),
            )
            global_id = global_datastore.global_replication_group_id
            for site in args.replicas:
                group_ids[site.region] = self._region(name, args, site, nodes, global_id=global_id)[
                    0
                ].replication_group_id

        self.replication = replication_document(
            cloud="aws",
            engine=args.engine,
            primary_region=args.primary.region,
            nodes_per_region=nodes,
            zone_redundant=True,
            replica_regions=tuple(site.region for site in args.replicas),
            cross_region="elasticache-global-datastore",
            backup={
                "intervalSeconds": period,
                "requestedIntervalSeconds": args.backup_interval_seconds,
                "retentionDays": args.backup_retention_days,
                "to": "elasticache-automatic-snapshots",
            },
        )
        # The ids `turnout failover` needs to promote a region's copy (known once deployed).
        for region, group_id in group_ids.items():
            self.replication["regions"][region]["replicationGroupId"] = group_id
        if global_id is not None:
            self.replication["crossRegion"]["globalReplicationGroupId"] = global_id
        self._register()

    def _region(
        self, name: str, args: CacheArgs, site: CacheSite, nodes: int, global_id: pulumi.Output[str] | None
    ) -> tuple[aws.elasticache.ReplicationGroup, aws.Provider]:
        """One region's replication group, its KMS key, subnet group and security group, and the region's provider
        (the Global Datastore is created in the primary's)."""
        cluster = site.cluster
        prefix = child(name, site.region)
        provider = aws.Provider(
            child(prefix, "aws"),
            region=site.region,
            default_tags=aws.ProviderDefaultTagsArgs(tags={"turnout.dev/cache": args.cache_name}),
            opts=pulumi.ResourceOptions(parent=self),
        )
        mine = pulumi.ResourceOptions(parent=self, provider=provider)
        # The provider sets the region; naming it on each resource too lets offline plans answer for that region.
        region = site.region
        group_id = bounded_name(child(args.cache_name, site.region), REPLICATION_GROUP_ID_MAX)
        key = aws.kms.Key(
            child(prefix, "key"),
            description=f"ElastiCache {group_id} encryption at rest",
            region=region,
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=mine,
        )
        subnets = aws.elasticache.SubnetGroup(
            child(prefix, "subnets"),
            name=group_id,
            description=f"Private subnets of {cluster.name}",
            region=region,
            subnet_ids=cluster.private_subnet_ids,
            opts=mine,
        )
        # No rules inline and no egress: AWS's default allow-all egress rule is removed by the provider.
        security_group = aws.ec2.SecurityGroup(
            child(prefix, "sg"),
            name=group_id,
            description=f"ElastiCache {group_id}: {PORT} from the pods of {cluster.name} only",
            vpc_id=cluster.vpc_id,
            region=region,
            revoke_rules_on_delete=True,
            tags={"Name": group_id},
            opts=mine,
        )
        aws.vpc.SecurityGroupIngressRule(
            child(prefix, "sg", "from-cluster"),
            security_group_id=security_group.id,
            referenced_security_group_id=cluster.cluster_security_group_id,
            ip_protocol="tcp",
            region=region,
            from_port=PORT,
            to_port=PORT,
            description=f"Redis from the nodes and pods of {cluster.name}",
            opts=mine,
        )
        common = {
            "replication_group_id": group_id,
            "region": region,
            "description": f"turnout cache {args.cache_name} in {site.region}",
            "num_cache_clusters": nodes,
            "automatic_failover_enabled": True,
            "multi_az_enabled": True,
            "at_rest_encryption_enabled": True,
            "kms_key_id": key.arn,
            "transit_encryption_enabled": True,
            "transit_encryption_mode": "required",
            "auth_token": self.auth_token,
            "port": PORT,
            "subnet_group_name": subnets.name,
            "security_group_ids": [security_group.id],
            "snapshot_retention_limit": args.backup_retention_days,
            "snapshot_window": SNAPSHOT_WINDOW,
            "maintenance_window": MAINTENANCE_WINDOW,
            "final_snapshot_identifier": child(group_id, "final"),
            "auto_minor_version_upgrade": True,
        }
        if global_id is None:
            group = aws.elasticache.ReplicationGroup(
                child(prefix, "group"),
                engine=args.engine,
                engine_version=ENGINE_VERSIONS[args.engine],
                node_type=NODE_TYPES.get(args.tier, DEFAULT_NODE_TYPE),
                **common,
                opts=mine,
            )
        else:
            # A secondary takes engine, version and node type from the Global Datastore (it may not set them).
            group = aws.elasticache.ReplicationGroup(
                child(prefix, "group"), global_replication_group_id=global_id, **common, opts=mine
            )
        self._add_site(
            site.region,
            CacheConnection(
                address=group.primary_endpoint_address,
                port=PORT,
                password=self.auth_token,
                tls=True,
                role="primary" if global_id is None else "replica",
            ),
        )
        return group, provider
