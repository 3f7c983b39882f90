"""The cloud caches under mocks, beside real cluster components: ElastiCache (with and without a Global Datastore),
Memorystore and Azure Managed Redis (with and without active geo-replication). Encryption at rest and in transit,
AUTH, no public access, backups, replication per configuration, network scope, and secrets kept out of plans."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re

import pulumi
import pytest

from components.cache.azure_redis import Member, cache_name, check_geo_group
from components.cache.build import build_cache
from components.cache.elasticache import SECONDARY_CONFLICTS
from components.cluster import ClusterArgs
from components.cluster.aks import AksCluster
from components.cluster.eks import EksCluster
from components.cluster.gcp_apis import MEMORYSTORE_APIS
from components.cluster.gke import GkeCluster
from tests.conftest import dependency_closure
from turnout.config import Cache, NodePool
from turnout.errors import ConfigError, NotSupportedError
from turnout.offline import mocks_azure, sdk
from turnout.offline.runtime import REDACTED, run_function

CLUSTERS = {"aws": EksCluster, "gcp": GkeCluster, "azure": AksCluster}
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
GLOBAL_DATASTORE = "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def cache_run(cloud: str, regions: tuple[str, ...], *, replicas: tuple[str, ...] = (), **settings):
    """Clusters in `regions` (the first is the primary's) and the stack's cache beside them; the cache's
    addresses, replication document and per-region connections are exported."""
    pool = NodePool(name="general", machine_type=None, min=1, max=2)

    def program():
        clusters = [
            CLUSTERS[cloud](
                f"prod-{region}",
                ClusterArgs(
                    cluster_name=f"prod-{region}", region=region, kubernetes_version="1.34", node_pools=(pool,)
                ),
            )
            for region in regions
        ]
        cache = build_cache(
            "prod-cache",
            Cache(engine=settings.pop("engine", "redis"), primary_region=settings.pop("primary_region", None)),
            cloud=cloud,
            tier=settings.pop("tier", "prod"),
            clusters=clusters,
            replica_regions=replicas,
            **settings,
        )
        pulumi.export("address", cache.address)
        pulumi.export("port", cache.port)
        pulumi.export("replication", cache.replication)
        pulumi.export(
            "connections",
            {
                region: {"address": c.address, "port": c.port, "tls": c.tls, "role": c.role, "password": c.password}
                for region in regions
                if region in cache.address
                for c in [cache.connection_for(region)]
            },
        )

    run = run_function(program)
    return run, {(r.type, r.name): r for r in run.records}


def of_type(records: dict, type_: str) -> dict:
    return {name: record for (kind, name), record in records.items() if kind == type_}


def assert_never_in_the_clear(run, secret: str) -> None:
    assert secret
    for record in run.records:
        assert secret not in json.dumps(record.inputs), f"{record.type} {record.name} shows the secret"
    assert secret not in json.dumps(run.stack_outputs)


def to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def is_secret(raw_value) -> bool:
    return isinstance(raw_value, dict) and raw_value.get(sdk.SIG_KEY) == sdk.SECRET_SIG


# --- AWS: ElastiCache ---


@pytest.fixture(scope="module")
def aws_single():
    return cache_run("aws", ("us-east-1",))


@pytest.fixture(scope="module")
def aws_global():
    return cache_run("aws", ("us-east-1", "us-west-2"), replicas=("us-west-2",), tier="dev")


def test_elasticache_is_multi_az_encrypted_with_a_customer_key_and_in_transit(aws_single):
    _, records = aws_single
    (group,) = of_type(records, REPLICATION_GROUP).values()
    inputs = group.inputs
    assert (inputs["engine"], inputs["engineVersion"]) == ("redis", "7.1")
    assert inputs["replicationGroupId"] == "prod-cache-us-east-1"
    assert inputs["numCacheClusters"] == 3 and inputs["nodeType"] == "cache.r7g.large"
    assert inputs["automaticFailoverEnabled"] is True and inputs["multiAzEnabled"] is True
    key = records[("aws:kms/key:Key", "prod-cache-us-east-1-key")]
    assert key.inputs["enableKeyRotation"] is True
    assert inputs["atRestEncryptionEnabled"] is True
    assert inputs["kmsKeyId"] == key.raw_outputs["arn"]
    assert key.raw_outputs["arn"].startswith("arn:aws:kms:us-east-1:")
    assert inputs["transitEncryptionEnabled"] is True and inputs["transitEncryptionMode"] == "required"
    assert inputs["port"] == 6379


def test_elasticache_auth_token_is_generated_and_secret(aws_single):
    run, records = aws_single
    token = records[("random:index/randomPassword:RandomPassword", "prod-cache-auth-token")]
    assert token.inputs == {"length": 64, "special": False}
    (group,) = of_type(records, REPLICATION_GROUP).values()
    assert group.inputs["authToken"] == REDACTED
    assert is_secret(group.raw_inputs["authToken"])
    assert group.raw_inputs["authToken"]["value"] == token.raw_outputs["result"]
    assert run.stack_outputs["connections"]["us-east-1"]["password"] == REDACTED
    assert_never_in_the_clear(run, token.raw_outputs["result"])


def test_elasticache_keeps_daily_snapshots_for_the_retention(aws_single):
    run, records = aws_single
    (group,) = of_type(records, REPLICATION_GROUP).values()
    assert group.inputs["snapshotRetentionLimit"] == 7
    assert group.inputs["snapshotWindow"] == "03:00-05:00"
    suffix = records[("random:index/randomId:RandomId", "prod-cache-us-east-1-final-snapshot")]
    assert group.inputs["finalSnapshotIdentifier"] == f"prod-cache-us-east-1-final-{suffix.raw_outputs['hex']}"
    assert run.stack_outputs["replication"]["backup"] == {
        "intervalSeconds": 86400,
        "requestedIntervalSeconds": 86400,
        "retentionDays": 7,
        "to": "elasticache-automatic-snapshots",
    }


def test_elasticache_lives_in_the_private_subnets_and_admits_only_the_cluster_on_6379(aws_single):
    _, records = aws_single
    eks = records[("aws:eks/cluster:Cluster", "prod-us-east-1-eks")]
    subnet_group = records[("aws:elasticache/subnetGroup:SubnetGroup", "prod-cache-us-east-1-subnets")]
    assert subnet_group.inputs["subnetIds"] == eks.inputs["vpcConfig"]["subnetIds"], "the EKS private subnets"
    public = {r.urn for (kind, name), r in records.items() if kind == "aws:ec2/subnet:Subnet" and "-public-" in name}
    assert public and not public & set(subnet_group.dependencies), "never a public subnet"
    security_group = records[("aws:ec2/securityGroup:SecurityGroup", "prod-cache-us-east-1-sg")]
    vpc = records[("aws:ec2/vpc:Vpc", "prod-us-east-1-vpc")]
    assert vpc.urn in security_group.dependencies
    assert "ingress" not in security_group.inputs and "egress" not in security_group.inputs
    (rule,) = of_type(records, INGRESS_RULE).values()
    assert rule.inputs["referencedSecurityGroupId"] == eks.raw_outputs["vpcConfig"]["clusterSecurityGroupId"]
    assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"]) == ("tcp", 6379, 6379)
    assert "cidrIpv4" not in rule.inputs and "cidrIpv6" not in rule.inputs
    assert not of_type(records, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    (group,) = of_type(records, REPLICATION_GROUP).values()
    assert group.inputs["securityGroupIds"] == [rule.inputs["securityGroupId"]]
    assert group.inputs["subnetGroupName"] == "prod-cache-us-east-1"


def test_a_single_region_elasticache_has_no_global_datastore(aws_single):
    run, records = aws_single
    assert not of_type(records, GLOBAL_DATASTORE)
    replication = run.stack_outputs["replication"]
    assert replication["crossRegion"] is None
    (group,) = of_type(records, REPLICATION_GROUP).values()
    assert replication["regions"] == {
        "us-east-1": {
            "role": "primary",
            "nodes": 3,
            "zoneRedundant": True,
            "replicationGroupId": group.raw_outputs["replicationGroupId"],
        }
    }
    assert run.stack_outputs["address"] == {"us-east-1": group.raw_outputs["primaryEndpointAddress"]}
    assert run.stack_outputs["connections"]["us-east-1"]["tls"] is True


def test_a_replica_region_joins_a_global_datastore_with_its_own_key_and_provider(aws_global):
    run, records = aws_global
    groups = of_type(records, REPLICATION_GROUP)
    primary, secondary = groups["prod-cache-us-east-1-group"], groups["prod-cache-us-west-2-group"]
    (datastore,) = of_type(records, GLOBAL_DATASTORE).values()
    assert datastore.inputs["globalReplicationGroupIdSuffix"] == "prod-cache"
    assert primary.urn in datastore.dependencies
    assert datastore.provider == records[("pulumi:providers:aws", "prod-cache-us-east-1-aws")].urn
    assert secondary.inputs["globalReplicationGroupId"] == datastore.raw_outputs["globalReplicationGroupId"]
    for conflicting in SECONDARY_CONFLICTS:  # the provider's ConflictsWith global_replication_group_id
        assert to_camel(conflicting) not in secondary.inputs, conflicting
    west = records[("pulumi:providers:aws", "prod-cache-us-west-2-aws")]
    assert west.inputs["region"] == "us-west-2" and secondary.provider == west.urn
    west_key = records[("aws:kms/key:Key", "prod-cache-us-west-2-key")]
    assert secondary.inputs["kmsKeyId"] == west_key.raw_outputs["arn"]
    assert west_key.raw_outputs["arn"].startswith("arn:aws:kms:us-west-2:")
    assert primary.inputs["atRestEncryptionEnabled"] is True and primary.inputs["transitEncryptionEnabled"] is True
    assert primary.inputs["nodeType"] == "cache.m7g.large", "dev's t4g.medium cannot join a Global Datastore"
    for group in (primary, secondary):
        assert group.inputs["authToken"] == REDACTED
        assert group.inputs["numCacheClusters"] == 2 and group.inputs["multiAzEnabled"] is True
    west_rule = records[(INGRESS_RULE, "prod-cache-us-west-2-sg-from-cluster")]
    west_eks = records[("aws:eks/cluster:Cluster", "prod-us-west-2-eks")]
    assert west_rule.inputs["referencedSecurityGroupId"] == west_eks.raw_outputs["vpcConfig"]["clusterSecurityGroupId"]
    assert run.stack_outputs["replication"]["crossRegion"] == {
        "mechanism": "elasticache-global-datastore",
        "mode": "asynchronous",
        "promotion": "manual",
        "replicas": ["us-west-2"],
        # what `turnout failover` promotes with
        "globalReplicationGroupId": datastore.raw_outputs["globalReplicationGroupId"],
    }
    regions = run.stack_outputs["replication"]["regions"]
    assert regions["us-west-2"]["replicationGroupId"] == secondary.raw_outputs["replicationGroupId"]
    connections = run.stack_outputs["connections"]
    assert connections["us-east-1"]["role"] == "primary" and connections["us-west-2"]["role"] == "replica"
    assert connections["us-west-2"]["address"] == secondary.raw_outputs["primaryEndpointAddress"]
    assert ".usw2." in connections["us-west-2"]["address"]


def test_valkey_on_elasticache():
    _, records = cache_run("aws", ("us-east-1",), engine="valkey", tier="dev")
    (group,) = of_type(records, REPLICATION_GROUP).values()
    assert (group.inputs["engine"], group.inputs["engineVersion"]) == ("valkey", "8.0")
    assert group.inputs["nodeType"] == "cache.t4g.medium" and group.inputs["numCacheClusters"] == 2


# --- GCP: Memorystore for Redis ---


@pytest.fixture(scope="module")
def gcp_single():
    return cache_run("gcp", ("us-central1",), backup_interval_seconds=4 * 3600)


def test_memorystore_is_standard_ha_with_auth_tls_and_a_customer_key(gcp_single):
    run, records = gcp_single
    instance = records[("gcp:redis/instance:Instance", "prod-cache-instance")]
    inputs = instance.inputs
    assert inputs["tier"] == "STANDARD_HA" and inputs["memorySizeGb"] == 5
    assert inputs["authEnabled"] is True
    assert inputs["transitEncryptionMode"] == "SERVER_AUTHENTICATION"
    key = records[("gcp:kms/cryptoKey:CryptoKey", "prod-cache-key")]
    assert inputs["customerManagedKey"].startswith("prod-cache-key-") and key.urn in instance.dependencies
    assert key.inputs["rotationPeriod"] == "7776000s"
    agent = records[("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember", "prod-cache-key-redis-agent")]
    assert agent.inputs["member"] == "serviceAccount:service-123456789012@cloud-redis.iam.gserviceaccount.com"
    assert agent.inputs["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    assert agent.urn in instance.dependencies, "the service agent holds the key before the instance exists"
    assert (
        instance.raw_outputs["authString"] and run.stack_outputs["connections"]["us-central1"]["password"] == REDACTED
    )
    assert_never_in_the_clear(run, instance.raw_outputs["authString"])
    assert run.stack_outputs["port"] == 6378
    assert run.stack_outputs["connections"]["us-central1"]["address"] == instance.raw_outputs["host"]


def test_memorystore_is_reachable_only_through_private_services_access_on_the_gke_vpc(gcp_single):
    _, records = gcp_single
    network = records[("gcp:compute/network:Network", "prod-us-central1-network")]
    instance = records[("gcp:redis/instance:Instance", "prod-cache-instance")].inputs
    assert instance["connectMode"] == "PRIVATE_SERVICE_ACCESS"
    # Offline, a resource's id is derived from its name: the instance names the GKE cluster's own network.
    assert instance["authorizedNetwork"].startswith("prod-us-central1-network-")
    assert network.urn in records[("gcp:redis/instance:Instance", "prod-cache-instance")].dependencies
    psa_range = records[("gcp:compute/globalAddress:GlobalAddress", "prod-cache-psa-range")].inputs
    assert (psa_range["purpose"], psa_range["addressType"]) == ("VPC_PEERING", "INTERNAL")
    # The network layout's private services /20 of the region's /16 (10.0.0.0/16 by default).
    assert (psa_range["address"], psa_range["prefixLength"]) == ("10.0.160.0", 20)
    host = records[("gcp:redis/instance:Instance", "prod-cache-instance")].raw_outputs["host"]
    assert ipaddress.ip_address(host) in ipaddress.ip_network("10.0.160.0/20"), "an address of the reserved range"
    peering = records[("gcp:servicenetworking/connection:Connection", "prod-cache-psa")].inputs
    assert peering["service"] == "servicenetworking.googleapis.com"
    assert peering["reservedPeeringRanges"] == ["prod-cache-psa"] == [instance["reservedIpRange"]]
    assert peering["network"] == instance["authorizedNetwork"] == psa_range["network"]


def test_memorystore_snapshots_at_the_period_nearest_the_interval(gcp_single):
    run, records = gcp_single
    instance = records[("gcp:redis/instance:Instance", "prod-cache-instance")].inputs
    assert instance["persistenceConfig"] == {"persistenceMode": "RDB", "rdbSnapshotPeriod": "SIX_HOURS"}
    replication = run.stack_outputs["replication"]
    assert replication["backup"]["intervalSeconds"] == 21600
    assert replication["backup"]["requestedIntervalSeconds"] == 14400
    assert replication["crossRegion"] is None


def test_memorystore_enables_its_apis_first_and_its_key_ring_survives_recreation(gcp_single):
    _, records = gcp_single
    services = of_type(records, "gcp:projects/service:Service")
    mine = {r.inputs["service"] for name, r in services.items() if name.startswith("prod-cache-api-")}
    assert mine == set(MEMORYSTORE_APIS) >= {"redis.googleapis.com", "servicenetworking.googleapis.com"}
    assert all(r.inputs["disableOnDestroy"] is False for r in services.values())
    by_urn = {r.urn: r for r in records.values()}
    apis = {r.urn for name, r in services.items() if name.startswith("prod-cache-api-")}
    for kind in (
        "gcp:redis/instance:Instance",
        "gcp:servicenetworking/connection:Connection",
        "gcp:kms/keyRing:KeyRing",
    ):
        for record in of_type(records, kind).values():
            if record.name.startswith("prod-cache"):
                assert apis <= dependency_closure(by_urn, record.urn), f"{record.name} waits for the APIs"
    suffix = records[("random:index/randomId:RandomId", "prod-cache-keyring-suffix")].raw_outputs["hex"]
    assert records[("gcp:kms/keyRing:KeyRing", "prod-cache-keyring")].inputs["name"] == f"prod-cache-{suffix}"


def test_memorystore_replicas_are_refused_before_anything_is_created():
    with pytest.raises(NotSupportedError) as caught:
        cache_run("gcp", ("us-central1", "europe-west1"), replicas=("europe-west1",))
    assert caught.value.path == "turnout:cache"
    assert "Memorystore for Redis instances have no cross-region replication" in caught.value.found


# --- Azure: Azure Managed Redis ---

MANAGED_REDIS = "azure-native:redisenterprise:RedisEnterprise"
DATABASE = "azure-native:redisenterprise:Database"


@pytest.fixture(scope="module")
def azure_single():
    return cache_run("azure", ("eastus",), backup_interval_seconds=3600)


@pytest.fixture(scope="module")
def azure_geo():
    return cache_run("azure", ("eastus", "westus2", "centralus"), replicas=("westus2", "centralus"))


def test_azure_cache_is_managed_redis_highly_available_tls_only_and_private(azure_single):
    run, records = azure_single
    cluster = records[(MANAGED_REDIS, "prod-cache-eastus-cluster")].inputs
    assert cluster["sku"] == {"name": "Balanced_B10"}
    assert cluster["highAvailability"] == "Enabled"
    assert cluster["minimumTlsVersion"] == "1.2"
    assert cluster["publicNetworkAccess"] == "Disabled"
    database = records[(DATABASE, "prod-cache-eastus-database")].inputs
    assert database["databaseName"] == "default" and database["port"] == 10000
    assert database["clientProtocol"] == "Encrypted"
    assert database["clusteringPolicy"] == "EnterpriseCluster"
    assert database["accessKeysAuthentication"] == "Enabled", "AUTH with the access key"
    assert "geoReplication" not in database
    assert run.stack_outputs["port"] == 10000
    assert run.stack_outputs["connections"]["eastus"]["password"] == REDACTED
    assert run.stack_outputs["connections"]["eastus"]["tls"] is True
    name = cache_name("prod-cache-eastus", mocks_azure.SUBSCRIPTION_ID)
    assert run.stack_outputs["address"] == {"eastus": f"{name}.eastus.redis.azure.net"}
    assert run.stack_outputs["replication"]["service"] == "azure-managed-redis"
    assert not of_type(records, "azure-native:redis:Redis"), "Azure Cache for Redis is retired"


def test_azure_cache_names_are_unique_per_subscription_and_fit(azure_single):
    _, records = azure_single
    cluster = records[(MANAGED_REDIS, "prod-cache-eastus-cluster")].inputs["clusterName"]
    other = "44444444-4444-4444-4444-444444444444"
    assert re.fullmatch(r"prod-cache-eastus-[0-9a-f]{6}", cluster)
    assert (
        cluster
        == cache_name("prod-cache-eastus", mocks_azure.SUBSCRIPTION_ID)
        != cache_name("prod-cache-eastus", other)
    )
    long_site = "a-stack-name-of-fifty-characters-for-the-limit-xyz-cache-westeurope"
    long_name = cache_name(long_site, other)
    assert len(long_name) <= 60 and "--" not in long_name


def test_azure_cache_has_a_private_endpoint_in_the_aks_vnet_with_its_dns(azure_single):
    _, records = azure_single
    cluster = records[(MANAGED_REDIS, "prod-cache-eastus-cluster")]
    nodes = records[("azure-native:network:Subnet", "prod-eastus-nodes")]
    vnet = records[("azure-native:network:VirtualNetwork", "prod-eastus-vnet")]
    endpoint = records[("azure-native:network:PrivateEndpoint", "prod-cache-eastus-endpoint")]
    assert nodes.urn in endpoint.dependencies
    (connection,) = endpoint.inputs["privateLinkServiceConnections"]
    assert connection["groupIds"] == ["redisEnterprise"] and cluster.urn in endpoint.dependencies
    zone = records[("azure-native:privatedns:PrivateZone", "prod-cache-dns")]
    assert zone.inputs["privateZoneName"] == "privatelink.redis.azure.net"
    link = records[("azure-native:privatedns:VirtualNetworkLink", "prod-cache-eastus-dns-link")]
    assert vnet.urn in link.dependencies and link.inputs["registrationEnabled"] is False
    group = records[("azure-native:network:PrivateDnsZoneGroup", "prod-cache-eastus-endpoint-dns")]
    assert group.inputs["privateEndpointName"] == "prod-cache-eastus-pe"
    assert zone.urn in group.dependencies


def test_azure_single_region_cache_persists_rdb_in_region(azure_single):
    """Without geo-replication the database persists RDB snapshots at the backup interval's nearest frequency;
    Managed Redis keeps them on the cache's disks, so the replication document says they stay in the region."""
    run, records = azure_single
    database = records[(DATABASE, "prod-cache-eastus-database")].inputs
    assert database["persistence"] == {"rdbEnabled": True, "rdbFrequency": "1h"}
    assert not of_type(records, "azure-native:storage:StorageAccount"), "no storage account: nothing writes to one"
    assert run.stack_outputs["replication"]["backup"] == {
        "intervalSeconds": 3600,
        "requestedIntervalSeconds": 3600,
        "retentionDays": None,
        "to": "azure-managed-redis-rdb-in-region",
    }
    daily = cache_run("azure", ("eastus",))[1]  # the default interval, a day: the longest frequency, 12 hours
    assert daily[(DATABASE, "prod-cache-eastus-database")].inputs["persistence"]["rdbFrequency"] == "12h"


def test_azure_geo_replication_is_one_group_every_member_joining_at_creation(azure_geo):
    """Each region's database joins the group when it is created: the founding one lists itself, each later one
    the members before it and itself, and is created after them; no persistence anywhere."""
    run, records = azure_geo
    clusters = of_type(records, MANAGED_REDIS)
    databases = of_type(records, DATABASE)
    regions = ("eastus", "westus2", "centralus")
    ids = {
        region: clusters[f"prod-cache-{region}-cluster"].raw_outputs["id"] + "/databases/default" for region in regions
    }
    for position, region in enumerate(regions):
        database = databases[f"prod-cache-{region}-database"]
        geo = database.inputs["geoReplication"]
        assert geo["groupNickname"] == "prod-cache"
        assert [linked["id"] for linked in geo["linkedDatabases"]] == [ids[r] for r in regions[: position + 1]]
        for earlier in regions[:position]:
            assert databases[f"prod-cache-{earlier}-database"].urn in database.dependencies, (region, earlier)
        assert "persistence" not in database.inputs, "Azure refuses persistence with active geo-replication"
    configs = {
        region: (
            clusters[f"prod-cache-{region}-cluster"].inputs["sku"]["name"],
            *(
                databases[f"prod-cache-{region}-database"].inputs[key]
                for key in ("clientProtocol", "clusteringPolicy", "evictionPolicy", "port")
            ),
        )
        for region in regions
    }
    assert len(set(configs.values())) == 1, configs
    replication = run.stack_outputs["replication"]
    assert replication["backup"] is None
    assert replication["crossRegion"]["mechanism"] == "azure-managed-redis-active-geo-replication"
    assert replication["crossRegion"]["promotion"] == "none"
    assert {copy["role"] for copy in replication["regions"].values()} == {"primary"}, "every member takes writes"
    connections = run.stack_outputs["connections"]
    name = clusters["prod-cache-westus2-cluster"].inputs["clusterName"]
    assert connections["westus2"]["address"] == f"{name}.westus2.redis.azure.net"
    assert connections["westus2"]["role"] == "primary" and connections["westus2"]["port"] == 10000
    assert connections["westus2"]["password"] == REDACTED == connections["eastus"]["password"]


def test_azure_one_privatelink_zone_serves_every_region_linked_to_every_vnet(azure_geo):
    _, records = azure_geo
    zones = of_type(records, "azure-native:privatedns:PrivateZone")
    redis_zones = [z for z in zones.values() if z.inputs["privateZoneName"] == "privatelink.redis.azure.net"]
    assert [z.name for z in redis_zones] == ["prod-cache-dns"]
    zone = redis_zones[0]
    assert zone.inputs["resourceGroupName"] == "prod-cache-eastus-rg"
    links = of_type(records, "azure-native:privatedns:VirtualNetworkLink")
    regions = ("eastus", "westus2", "centralus")
    for region in regions:
        vnet = records[("azure-native:network:VirtualNetwork", f"prod-{region}-vnet")]
        link = links[f"prod-cache-{region}-dns-link"]
        assert link.inputs["privateZoneName"] == "privatelink.redis.azure.net"
        assert vnet.urn in link.dependencies and zone.urn in link.dependencies
    groups = of_type(records, "azure-native:network:PrivateDnsZoneGroup")
    assert all(zone.urn in group.dependencies for group in groups.values()) and len(groups) == len(regions)


# Azure's rules for a geo-replication group, which the mocks accept whatever the inputs: checked before creation.


def _group(**changes) -> list[Member]:
    members = [Member(region="eastus", sku="Balanced_B5"), Member(region="westus2", sku="Balanced_B5")]
    members[1] = dataclasses.replace(members[1], **changes)
    return members


@pytest.mark.parametrize(
    ("members", "found", "allowed"),
    [
        (_group(sku="Balanced_B10"), "sku 'Balanced_B10' in westus2 but 'Balanced_B5' in eastus", "same configuration"),
        (_group(modules=("RediSearch",)), "modules ('RediSearch',) in westus2", "same configuration"),
        (_group(clustering_policy="OSSCluster"), "clustering_policy 'OSSCluster'", "same configuration"),
        (_group(eviction_policy="NoEviction"), "eviction_policy 'NoEviction'", "same configuration"),
        (_group(persistence=True), "persistence on the geo-replicated", "no persistence with active geo-replication"),
        (
            [Member(region="eastus", sku="Balanced_B1"), Member(region="westus2", sku="Balanced_B1")],
            "geo-replication of SKU Balanced_B1",
            "Balanced_B0 and Balanced_B1",
        ),
        (
            [Member(region=r, sku="Balanced_B5", modules=("RedisBloom",)) for r in ("eastus", "westus2")],
            "modules RedisBloom",
            "only RediSearch and RedisJSON",
        ),
        ([Member(region=f"r{i}", sku="Balanced_B5") for i in range(6)], "group of 6 regions", "at most 5 regions"),
    ],
)
def test_azure_geo_group_rules_refused_before_creation(members, found, allowed):
    with pytest.raises(ConfigError) as caught:
        check_geo_group(members)
    assert caught.value.path == "turnout:cache"
    assert found in caught.value.found and allowed in caught.value.allowed


def test_azure_geo_group_rules_accept_what_the_component_builds():
    check_geo_group(_group())
    check_geo_group([Member(region="eastus", sku="Balanced_B0", persistence=True)])  # one member: no group


def test_the_azure_component_checks_its_group_before_creating_anything(monkeypatch):
    """The component runs the check: a SKU Azure does not geo-replicate stops the program with the key and the
    reason, where the mocks would have accepted the group."""
    from components.cache import azure_redis

    monkeypatch.setattr(azure_redis, "DEFAULT_SKU", "Balanced_B1")
    with pytest.raises(ConfigError) as caught:
        cache_run("azure", ("eastus", "westus2"), replicas=("westus2",), tier="dev")
    assert caught.value.path == "turnout:cache" and "Balanced_B1" in caught.value.found
    cache_run("azure", ("eastus",), tier="dev", backup_interval_seconds=3600)  # one region: no group to refuse
