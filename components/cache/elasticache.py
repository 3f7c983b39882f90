"""ElastiCache (Redis OSS or Valkey) beside the EKS clusters: a Multi-AZ replication group per region with automatic
failover, encrypted at rest with a customer KMS key and in transit, an AUTH token generated at deploy time, daily
snapshots, reachable on 6379 only from the EKS cluster's security group. With replicas, a Global Datastore joins a
read-only secondary replication group per replica region to the primary.

Provider rules the offline mocks cannot see, checked here before a group is declared (`check_replication_group`):

- A secondary (`global_replication_group_id` set) takes engine, version, node type, parameter group and encryption
  from the Global Datastore: the provider declares `ConflictsWith` between `global_replication_group_id` and
  num_node_groups, parameter_group_name, engine, engine_version, node_type, security_group_names,
  transit_encryption_enabled, transit_encryption_mode, at_rest_encryption_enabled, snapshot_arns and snapshot_name
  (terraform-provider-aws, internal/service/elasticache/replication_group.go), so a plan with any of them cannot
  even be previewed.
- A primary needs its companions: node_type (required without a Global Datastore), auth_token only with transit
  encryption, kms_key_id only with encryption at rest, Multi-AZ only with automatic failover, which needs 2 nodes.
- A Global Datastore runs on M5, M6g, M7g, R5, R6g, R6gd, R7g or C7gn nodes, large or bigger (ElastiCache user
  guide, "Prerequisites and limitations" of global datastores): non-prod tiers, which get cache.t4g.medium alone,
  get cache.m7g.large, the smallest such node, when the DR tier adds a cross-region replica.

After `turnout failover` promotes another region, AWS reports that region's group as the Global Datastore's
primary: `primary_replication_group_id` (ForceNew) would plan to replace the datastore. It is ignored as a change,
and `turnout:cache.primaryRegion` (which the runbook tells operators to set to the promoted region) makes the
stack say the same: the datastore's primary, the copy workloads write to, the replication document. The groups
keep the shape they were created with (the founding group has no `global_replication_group_id` input): changing
it would replace them.

Each group's final snapshot is named with a random suffix created with the group, so destroying a recreated stack
never collides with the snapshot the previous destroy left.
"""

from __future__ import annotations

import re

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.cache import (
    CACHE_KEY,
    CacheArgs,
    CacheComponent,
    CacheConnection,
    CacheSite,
    backup_period,
    check_cache_args,
    replication_document,
)
from components.cluster.aws_identity import stack_identity
from components.cluster.aws_limits import RULES, aws_name
from turnout.config import key_path
from turnout.errors import ConfigError
from turnout.naming import child

PORT = 6379
ENGINE_VERSIONS = {"redis": "7.1", "valkey": "8.0"}
NODE_TYPES = {"prod": "cache.r7g.large"}
DEFAULT_NODE_TYPE = "cache.t4g.medium"
GLOBAL_DATASTORE_NODE_TYPE = "cache.m7g.large"
"""The smallest Global Datastore-capable node: what a non-prod tier gets when its cache has a replica."""
GLOBAL_DATASTORE_FAMILIES = ("m5", "m6g", "m7g", "r5", "r6g", "r6gd", "r7g", "c7gn")
TOO_SMALL_FOR_GLOBAL = ("nano", "micro", "small", "medium")
SECONDARY_CONFLICTS = (
    "num_node_groups",
    "parameter_group_name",
    "engine",
    "engine_version",
    "node_type",
    "security_group_names",
    "transit_encryption_enabled",
    "transit_encryption_mode",
    "at_rest_encryption_enabled",
    "snapshot_arns",
    "snapshot_name",
)
"""What the provider's schema declares `ConflictsWith` global_replication_group_id."""
NODES = {"prod": 3}  # a primary and a replica in each of the other two AZs
DEFAULT_NODES = 2  # the least Multi-AZ automatic failover takes
# UTC; the snapshot window must not overlap the maintenance window.
SNAPSHOT_WINDOW = "03:00-05:00"
MAINTENANCE_WINDOW = "sun:05:30-sun:07:00"
AUTH_TOKEN_LENGTH = 64  # ElastiCache takes 16-128 printable characters; alphanumerics avoid its forbidden @ " /
FINAL_SNAPSHOT_SUFFIX_BYTES = 4


def nodes_for(tier: str) -> int:
    return NODES.get(tier, DEFAULT_NODES)


def node_type_for(tier: str, *, global_datastore: bool) -> str:
    """The tier's node type, or the smallest Global Datastore-capable one where the tier's is not."""
    node_type = NODE_TYPES.get(tier, DEFAULT_NODE_TYPE)
    if global_datastore and not global_datastore_capable(node_type):
        return GLOBAL_DATASTORE_NODE_TYPE
    return node_type


def global_datastore_capable(node_type: str) -> bool:
    """cache.<family>.<size> of a family Global Datastores run on, large or bigger."""
    match = re.fullmatch(r"cache\.([a-z0-9]+)\.([a-z0-9]+)", node_type)
    return bool(match) and match.group(1) in GLOBAL_DATASTORE_FAMILIES and match.group(2) not in TOO_SMALL_FOR_GLOBAL


def check_replication_group(arguments: dict, *, global_datastore: bool) -> None:
    """The provider's and ElastiCache's rules for one replication group's arguments (see the module docstring);
    ConfigError naming `turnout:cache`, the key that makes turnout create the cache, for the first one broken."""
    path = key_path(CACHE_KEY)
    group = arguments.get("replication_group_id", "?")

    def refuse(found: str, allowed: str) -> None:
        raise ConfigError(path, f"replication group {group}: {found}", allowed)

    def given(key: str) -> bool:
        return arguments.get(key) is not None

    id_problems = RULES["elasticache-id"].problems(str(group))
    if id_problems:
        refuse(f"an id with {'; '.join(id_problems)}", "an ElastiCache id (1-40 lower-case letters, digits, '-')")
    if given("global_replication_group_id"):
        conflicting = [key for key in SECONDARY_CONFLICTS if given(key)]
        if conflicting:
            refuse(
                f"a Global Datastore secondary given {', '.join(conflicting)}",
                "none of " + ", ".join(SECONDARY_CONFLICTS) + " (the provider's ConflictsWith: the Global Datastore "
                "sets them)",
            )
    else:
        if not given("node_type"):
            refuse("no node_type", "a node type (required unless the group joins a Global Datastore)")
        if given("auth_token") and arguments.get("transit_encryption_enabled") is not True:
            refuse("an auth_token without transit encryption", "auth_token only with transit_encryption_enabled")
        if given("kms_key_id") and arguments.get("at_rest_encryption_enabled") is not True:
            refuse("a kms_key_id without encryption at rest", "kms_key_id only with at_rest_encryption_enabled")
        if global_datastore and not global_datastore_capable(str(arguments["node_type"])):
            refuse(
                f"node type {arguments['node_type']} under a Global Datastore",
                "a large or bigger node of " + ", ".join(f.upper() for f in GLOBAL_DATASTORE_FAMILIES),
            )
    if arguments.get("multi_az_enabled") and not arguments.get("automatic_failover_enabled"):
        refuse("Multi-AZ without automatic failover", "multi_az_enabled only with automatic_failover_enabled")
    if arguments.get("automatic_failover_enabled") and (arguments.get("num_cache_clusters") or 1) < 2:
        refuse("automatic failover with one node", "at least 2 nodes (num_cache_clusters) for automatic failover")


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
        writer = args.primary_region or args.primary.region
        global_datastore = bool(args.replicas)
        node_type = node_type_for(args.tier, global_datastore=global_datastore)
        group_ids = {site.region: self._group_id(args, site) for site in args.sites}

        founder, founder_provider = self._region(
            name, args, args.primary, nodes, node_type, writer, global_id=None, global_datastore=global_datastore
        )
        outputs = {args.primary.region: founder.replication_group_id}
        global_id: pulumi.Output[str] | None = None
        if global_datastore:
            # Global Datastore: the primary group replicates asynchronously to a read-only group per replica region.
            # After a failover AWS reports the promoted group as primary (ForceNew): `primaryRegion` names it, and
            # the reported change is never a reason to replace the datastore.
            global_datastore_resource = aws.elasticache.GlobalReplicationGroup(
                child(name, "global"),
                global_replication_group_id_suffix=aws_name("elasticache-id", args.cache_name),
                global_replication_group_description=f"turnout cache {args.cache_name}",
                primary_replication_group_id=(
                    founder.replication_group_id if writer == args.primary.region else group_ids[writer]
                ),
                region=args.primary.region,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=founder_provider,
                    depends_on=[founder],
                    ignore_changes=["primaryReplicationGroupId"],
                ),
            )
            global_id = global_datastore_resource.global_replication_group_id
            for site in args.replicas:
                outputs[site.region] = self._region(
                    name, args, site, nodes, node_type, writer, global_id=global_id, global_datastore=True
                )[0].replication_group_id

        self.replication = replication_document(
            cloud="aws",
            engine=args.engine,
            primary_region=writer,
            nodes_per_region=nodes,
            zone_redundant=True,
            replica_regions=tuple(site.region for site in args.sites if site.region != writer),
            cross_region="elasticache-global-datastore",
            backup={
                "intervalSeconds": period,
                "requestedIntervalSeconds": args.backup_interval_seconds,
                "retentionDays": args.backup_retention_days,
                "to": "elasticache-automatic-snapshots",
            },
        )
        # The ids `turnout failover` needs to promote a region's copy (known once deployed).
        for region, group_id in outputs.items():
            self.replication["regions"][region]["replicationGroupId"] = group_id
        if global_id is not None:
            self.replication["crossRegion"]["globalReplicationGroupId"] = global_id
        self._register()

    @staticmethod
    def _group_id(args: CacheArgs, site: CacheSite) -> str:
        return aws_name("elasticache-id", child(args.cache_name, site.region), keep=f"-{site.region}")

    def _region(
        self,
        name: str,
        args: CacheArgs,
        site: CacheSite,
        nodes: int,
        node_type: str,
        writer: str,
        *,
        global_id: pulumi.Output[str] | None,
        global_datastore: bool,
    ) -> tuple[aws.elasticache.ReplicationGroup, aws.Provider]:
        """One region's replication group, its KMS key, subnet group and security group, and the region's provider
        (the Global Datastore is created in the founding region's)."""
        cluster = site.cluster
        prefix = child(name, site.region)
        provider = aws.Provider(
            child(prefix, "aws"),
            region=site.region,
            default_tags=aws.ProviderDefaultTagsArgs(tags={"turnout.dev/cache": args.cache_name}),
            **stack_identity().provider_args(),
            opts=pulumi.ResourceOptions(parent=self),
        )
        mine = pulumi.ResourceOptions(parent=self, provider=provider)
        # The provider sets the region; naming it on each resource too lets offline plans answer for that region.
        region = site.region
        group_id = self._group_id(args, site)
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
            name=aws_name("elasticache-subnet-group", group_id),
            description=f"Private subnets of {cluster.name}",
            region=region,
            subnet_ids=cluster.private_subnet_ids,
            opts=mine,
        )
        # No rules inline and no egress: AWS's default allow-all egress rule is removed by the provider.
        security_group = aws.ec2.SecurityGroup(
            child(prefix, "sg"),
            name=aws_name("security-group", group_id),
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
        # A suffix created with the group: a later stack's group (same id) gets a new one, so its final snapshot
        # never collides with the one this group leaves.
        snapshot_suffix = random.RandomId(
            child(prefix, "final-snapshot"),
            byte_length=FINAL_SNAPSHOT_SUFFIX_BYTES,
            opts=pulumi.ResourceOptions(parent=self),
        )
        arguments: dict = {
            "replication_group_id": group_id,
            "region": region,
            "description": f"turnout cache {args.cache_name} in {site.region}",
            "num_cache_clusters": nodes,
            "automatic_failover_enabled": True,
            "multi_az_enabled": True,
            "kms_key_id": key.arn,
            "auth_token": self.auth_token,
            "port": PORT,
            "subnet_group_name": subnets.name,
            "security_group_ids": [security_group.id],
            "snapshot_retention_limit": args.backup_retention_days,
            "snapshot_window": SNAPSHOT_WINDOW,
            "maintenance_window": MAINTENANCE_WINDOW,
            "final_snapshot_identifier": snapshot_suffix.hex.apply(
                lambda suffix: aws_name("elasticache-id", f"{group_id}-final-{suffix}", keep=f"-final-{suffix}")
            ),
            "auto_minor_version_upgrade": True,
        }
        if global_id is None:
            arguments |= {
                "engine": args.engine,
                "engine_version": ENGINE_VERSIONS[args.engine],
                "node_type": node_type,
                "at_rest_encryption_enabled": True,
                "transit_encryption_enabled": True,
                "transit_encryption_mode": "required",
            }
        else:
            # A secondary takes engine, version, node type and encryption from the Global Datastore.
            arguments["global_replication_group_id"] = global_id
        check_replication_group(arguments, global_datastore=global_datastore)
        group = aws.elasticache.ReplicationGroup(child(prefix, "group"), **arguments, opts=mine)
        self._add_site(
            site.region,
            CacheConnection(
                address=group.primary_endpoint_address,
                port=PORT,
                password=self.auth_token,
                tls=True,
                role="primary" if site.region == writer else "replica",
            ),
        )
        return group, provider
