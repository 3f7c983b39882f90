"""Cache rules of the policy pack on raw ElastiCache, Memorystore, Azure Cache for Redis, Azure Managed Redis and
in-cluster Redis resources: each passes, fails and reads a missing property the way its docstring says, on every
cache it reads (tests/test_policies.py runs the cases, offline and through the real analyzer)."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
from pulumi_azure_native import redis, redisenterprise

from tests.policy_cases import fails, missing, passes

ELASTICACHE = "models-us-east-1"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
MEMORYSTORE = "models-europe-west4"
AZURE = "models-westeurope"
GROUP = f"{AZURE}-rg"
OPEN = "anyone who reaches it can read and write it"


def _merged(defaults: dict, overrides: dict) -> dict:
    """`defaults` with `overrides` applied; an override of None leaves the property out."""
    return {key: value for key, value in {**defaults, **overrides}.items() if value is not None}


def replication_group(name: str = ELASTICACHE, **overrides) -> aws.elasticache.ReplicationGroup:
    """A replication group as components/cache/elasticache.py makes it."""
    defaults = {
        "replication_group_id": name,
        "description": "turnout cache models",
        "engine": "redis",
        "node_type": "cache.t4g.medium",
        "num_cache_clusters": 2,
        "at_rest_encryption_enabled": True,
        "kms_key_id": KMS_KEY,
        "transit_encryption_enabled": True,
        "transit_encryption_mode": "required",
        "auth_token": pulumi.Output.secret("a" * 64),
        "snapshot_retention_limit": 7,
        "port": 6379,
        "subnet_group_name": name,
        "security_group_ids": ["sg-0cache"],
    }
    return aws.elasticache.ReplicationGroup(name, **_merged(defaults, overrides))


def secondary(**overrides) -> aws.elasticache.ReplicationGroup:
    """A Global Datastore secondary: encryption and AUTH come from the primary."""
    settings = {
        key: None
        for key in (
            "engine",
            "node_type",
            "at_rest_encryption_enabled",
            "kms_key_id",
            "transit_encryption_enabled",
            "transit_encryption_mode",
            "auth_token",
        )
    }
    return replication_group("models-us-west-2", global_replication_group_id="abcde-models", **settings, **overrides)


def exposed_by(opener):
    """A program: a cache whose security group `opener(group)` opens, or not."""

    def program():
        group = aws.ec2.SecurityGroup("cache-sg", name="cache-sg", vpc_id="vpc-0a")
        opener(group)
        replication_group(security_group_ids=[group.id])

    return program


def ingress_rule(cidr: str | None = "0.0.0.0/0", port: int = 6379):
    return lambda group: aws.vpc.SecurityGroupIngressRule(
        "from-anywhere",
        security_group_id=group.id,
        ip_protocol="tcp",
        from_port=port,
        to_port=port,
        **({"cidr_ipv4": cidr} if cidr else {"referenced_security_group_id": "sg-0nodes"}),
    )


def memorystore(**overrides) -> gcp.redis.Instance:
    """A Memorystore instance as components/cache/memorystore.py makes it."""
    defaults = {
        "name": MEMORYSTORE,
        "region": "europe-west4",
        "tier": "STANDARD_HA",
        "memory_size_gb": 1,
        "authorized_network": "projects/acme/global/networks/prod-gcp-europe-west4",
        "connect_mode": "PRIVATE_SERVICE_ACCESS",
        "auth_enabled": True,
        "transit_encryption_mode": "SERVER_AUTHENTICATION",
        "persistence_config": {"persistence_mode": "RDB", "rdb_snapshot_period": "ONE_HOUR"},
    }
    return gcp.redis.Instance(MEMORYSTORE, **_merged(defaults, overrides))


def azure_redis(**overrides) -> redis.Redis:
    """An Azure Cache for Redis as components/cache/azure_redis.py makes it."""
    defaults = {
        "name": AZURE,
        "resource_group_name": GROUP,
        "location": "westeurope",
        "sku": {"name": "Premium", "family": "P", "capacity": 1},
        "minimum_tls_version": "1.2",
        "enable_non_ssl_port": False,
        "public_network_access": "Disabled",
        "redis_configuration": {
            "rdb_backup_enabled": "true",
            "rdb_backup_frequency": "60",
            "rdb_storage_connection_string": "BlobEndpoint=https://models.blob.core.windows.net/",
        },
    }
    return redis.Redis(AZURE, **_merged(defaults, overrides))


def managed_redis(**overrides) -> redisenterprise.RedisEnterprise:
    defaults = {
        "cluster_name": AZURE,
        "resource_group_name": GROUP,
        "location": "westeurope",
        "sku": {"name": "Balanced_B5"},
        "minimum_tls_version": "1.2",
        "public_network_access": "Disabled",
    }
    return redisenterprise.RedisEnterprise(AZURE, **_merged(defaults, overrides))


def managed_redis_database(**overrides) -> redisenterprise.Database:
    defaults = {
        "cluster_name": AZURE,
        "resource_group_name": GROUP,
        "database_name": "default",
        "client_protocol": "Encrypted",
        "persistence": {"rdb_enabled": True, "rdb_frequency": "1h"},
    }
    return redisenterprise.Database(f"{AZURE}-default", **_merged(defaults, overrides))


SECRET_PASSWORD = {"valueFrom": {"secretKeyRef": {"name": "models-auth", "key": "password"}}}


def in_cluster(image: str = "redis:7.4.5", args=("--requirepass", "$(CACHE_PASSWORD)"), env=None):
    """A program: the in-cluster Redis StatefulSet as components/cache/in_cluster.py makes it."""
    env = [{"name": "CACHE_PASSWORD", **SECRET_PASSWORD}] if env is None else env
    container = {"name": "redis", "image": image, "command": ["redis-server"], "args": list(args), "env": env}
    exporter = {"name": "metrics", "image": "oliver006/redis_exporter:v1.74.0"}  # not a server: not read
    return lambda: k8s.apps.v1.StatefulSet(
        "models",
        metadata={"name": "models", "namespace": "cache"},
        spec={
            "serviceName": "models",
            "selector": {"matchLabels": {"app": "models"}},
            "template": {
                "metadata": {"labels": {"app": "models"}},
                "spec": {"containers": [container, exporter]},
            },
        },
    )


GROUP_NAME = f"ElastiCache replication group {ELASTICACHE}"
MEMORYSTORE_NAME = f"Memorystore instance {MEMORYSTORE}"
AZURE_NAME = f"Azure Cache for Redis {AZURE}"
MANAGED_NO_SNAPSHOTS = (
    "Azure Managed Redis database default: keeps no snapshots (neither persistence.rdbEnabled nor "
    "persistence.aofEnabled) and is in no geo-replication group (geoReplication.groupNickname)."
)

CASES = {
    "cache-encryption-at-rest": [
        passes(lambda: replication_group()),
        passes(lambda: (replication_group(), secondary())),  # the secondary inherits the primary's encryption
        passes(lambda: (memorystore(), azure_redis(), managed_redis())),  # encrypted at rest with no way out
        fails(
            lambda: replication_group(at_rest_encryption_enabled=False, kms_key_id=None),
            f"{GROUP_NAME}: encryption at rest is off (atRestEncryptionEnabled false).",
        ),
        missing(
            lambda: replication_group(at_rest_encryption_enabled=None, kms_key_id=None),
            f"{GROUP_NAME}: encryption at rest is off (no atRestEncryptionEnabled; AWS's default for redis is off).",
        ),
        missing(lambda: replication_group(engine="valkey", at_rest_encryption_enabled=None, kms_key_id=None)),
    ],
    "cache-encryption-in-transit": [
        passes(lambda: (replication_group(), secondary())),
        passes(lambda: memorystore()),
        passes(lambda: azure_redis()),
        passes(lambda: (managed_redis(), managed_redis_database())),
        fails(
            lambda: replication_group(transit_encryption_mode="preferred"),
            f"{GROUP_NAME}: plaintext clients are still accepted (transitEncryptionMode preferred, not required).",
        ),
        fails(
            lambda: replication_group(transit_encryption_enabled=False, transit_encryption_mode=None, auth_token=None),
            f"{GROUP_NAME}: clients connect in plaintext (transitEncryptionEnabled is off).",
        ),
        fails(
            lambda: memorystore(transit_encryption_mode="DISABLED"),
            f"{MEMORYSTORE_NAME}: clients connect in plaintext (transitEncryptionMode DISABLED).",
        ),
        fails(
            lambda: azure_redis(enable_non_ssl_port=True, minimum_tls_version="1.0"),
            f"{AZURE_NAME}: minimumTlsVersion 1.0 admits TLS older than 1.2.",
            f"{AZURE_NAME}: the non-TLS port 6379 is open (enableNonSslPort).",
        ),
        fails(
            lambda: managed_redis_database(client_protocol="Plaintext"),
            "Azure Managed Redis database default: clients connect in plaintext (clientProtocol Plaintext).",
        ),
        fails(
            lambda: managed_redis(minimum_tls_version="1.1"),
            f"Azure Managed Redis {AZURE}: minimumTlsVersion 1.1 admits TLS older than 1.2.",
        ),
        missing(
            lambda: replication_group(transit_encryption_enabled=None, transit_encryption_mode=None, auth_token=None),
            f"{GROUP_NAME}: clients connect in plaintext (transitEncryptionEnabled is off).",
        ),
        missing(
            lambda: memorystore(transit_encryption_mode=None),
            f"{MEMORYSTORE_NAME}: clients connect in plaintext (transitEncryptionMode DISABLED, the default).",
        ),
        missing(
            lambda: azure_redis(minimum_tls_version=None),
            f"{AZURE_NAME}: no minimumTlsVersion (say 1.2: older API versions let clients use TLS 1.0).",
        ),
        missing(lambda: (managed_redis(minimum_tls_version=None), managed_redis_database(client_protocol=None))),
    ],
    "cache-auth": [
        passes(lambda: (replication_group(), secondary())),
        passes(lambda: replication_group(auth_token=None, user_group_ids=["models-users"])),
        passes(lambda: memorystore()),
        passes(lambda: azure_redis()),
        passes(lambda: (managed_redis(), managed_redis_database())),  # keys or Entra ID, always
        passes(in_cluster()),
        passes(in_cluster("docker.io/bitnami/redis:7.4", args=(), env=[{"name": "REDIS_PASSWORD", **SECRET_PASSWORD}])),
        fails(
            lambda: memorystore(auth_enabled=False),
            f"{MEMORYSTORE_NAME}: AUTH is off (authEnabled false): {OPEN}.",
        ),
        fails(
            lambda: azure_redis(redis_configuration={"authnotrequired": "true"}),
            f"{AZURE_NAME}: authentication is disabled (redisConfiguration.authnotrequired): {OPEN}.",
        ),
        fails(
            in_cluster(args=("--requirepass", "hunter2"), env=[]),
            "cache/models: container redis passes its --requirepass password in plain text in the manifest.",
        ),
        fails(
            in_cluster("valkey/valkey:8.1.1", env=[{"name": "CACHE_PASSWORD", "value": "hunter2"}]),
            "cache/models: container redis takes its --requirepass password from CACHE_PASSWORD, written in plain "
            "text in the manifest.",
        ),
        fails(
            in_cluster("bitnami/redis:7.4", args=(), env=[{"name": "REDIS_PASSWORD", "value": "hunter2"}]),
            "cache/models: container redis has its REDIS_PASSWORD written in plain text in the manifest.",
        ),
        missing(
            lambda: replication_group(auth_token=None),
            f"{GROUP_NAME}: no AUTH token and no RBAC user group (authToken, userGroupIds): {OPEN}.",
        ),
        missing(
            lambda: memorystore(auth_enabled=None),
            f"{MEMORYSTORE_NAME}: AUTH is off (no authEnabled; GCP's default is off): {OPEN}.",
        ),
        missing(lambda: azure_redis(redis_configuration=None)),  # access keys unless told otherwise
        missing(
            in_cluster(args=(), env=[]),
            "cache/models: container redis starts without a password (no --requirepass, no REDIS_PASSWORD from a "
            f"Secret): {OPEN}.",
        ),
    ],
    "cache-no-public-access": [
        passes(exposed_by(ingress_rule(cidr=None))),  # from the cluster's security group only
        passes(exposed_by(ingress_rule(port=443))),
        passes(lambda: memorystore()),
        passes(lambda: memorystore(connect_mode=None)),  # peered with the cluster's network
        passes(lambda: azure_redis()),
        passes(lambda: azure_redis(public_network_access=None, subnet_id="/subscriptions/s/subnets/cache")),
        passes(lambda: managed_redis()),
        fails(
            exposed_by(ingress_rule()),
            f"{GROUP_NAME}: security group ingress rule from-anywhere admits 0.0.0.0/0 on port 6379.",
        ),
        fails(
            exposed_by(
                lambda group: aws.ec2.SecurityGroupRule(
                    "v6",
                    type="ingress",
                    security_group_id=group.id,
                    protocol="-1",
                    from_port=0,
                    to_port=0,
                    ipv6_cidr_blocks=["::/0"],
                )
            ),
            f"{GROUP_NAME}: security group rule v6 admits ::/0 on port 6379.",
        ),
        # Offline plans know neither the group's id nor the cache's dependencies: the open group may be the cache's.
        fails(
            lambda: (
                aws.ec2.SecurityGroup(
                    "open",
                    name="open-sg",
                    ingress=[{"protocol": "tcp", "from_port": 6000, "to_port": 7000, "cidr_blocks": ["0.0.0.0/0"]}],
                ),
                replication_group(),
            ),
            f"{GROUP_NAME}: security group open-sg may admit 0.0.0.0/0 on port 6379.",
        ),
        fails(
            lambda: azure_redis(public_network_access="Enabled"),
            f"{AZURE_NAME}: publicNetworkAccess is Enabled, and it is in no VNet (subnetId).",
        ),
        fails(
            lambda: managed_redis(public_network_access="Enabled"),
            f"Azure Managed Redis {AZURE}: publicNetworkAccess is Enabled.",
        ),
        # No security groups named: the VPC's default group admits only its own members.
        missing(lambda: (ingress_rule()(aws.ec2.SecurityGroup("other")), replication_group(security_group_ids=None))),
        missing(
            lambda: memorystore(connect_mode=None, authorized_network=None),
            f"{MEMORYSTORE_NAME}: it names no network (no authorizedNetwork, no PRIVATE_SERVICE_ACCESS): it joins the "
            "default one.",
        ),
        missing(
            lambda: azure_redis(public_network_access=None),
            f"{AZURE_NAME}: publicNetworkAccess is Enabled (Azure default), and it is in no VNet (subnetId).",
        ),
    ],
    "cache-backups": [
        passes(lambda: (replication_group(), secondary())),
        passes(lambda: memorystore()),
        passes(lambda: azure_redis()),
        # Azure refuses persistence on geo-replicated caches: the linked pair's secondary is the copy.
        passes(lambda: azure_redis(redis_configuration=None, tags={"turnout-geo-replication": "secondary"})),
        passes(lambda: managed_redis_database()),
        passes(in_cluster()),  # its PersistentVolume is another question
        fails(
            lambda: replication_group(snapshot_retention_limit=0),
            f"{GROUP_NAME}: keeps no snapshots (snapshotRetentionLimit 0).",
        ),
        fails(
            lambda: memorystore(persistence_config={"persistence_mode": "DISABLED"}),
            f"{MEMORYSTORE_NAME}: keeps no snapshots (persistenceConfig.persistenceMode DISABLED).",
        ),
        fails(
            lambda: azure_redis(sku={"name": "Standard", "family": "C", "capacity": 1}, redis_configuration=None),
            f"{AZURE_NAME}: the Standard tier keeps no backups (Premium with rdbBackupEnabled does).",
        ),
        fails(
            lambda: azure_redis(redis_configuration={"rdb_backup_enabled": "false"}),
            f'{AZURE_NAME}: keeps no snapshots (redisConfiguration.rdbBackupEnabled is not "true").',
        ),
        fails(
            lambda: azure_redis(redis_configuration=None, tags={"turnout-geo-replication": "none"}),
            f'{AZURE_NAME}: keeps no snapshots (redisConfiguration.rdbBackupEnabled is not "true").',
        ),
        passes(lambda: managed_redis_database(persistence={"aof_enabled": True, "aof_frequency": "1s"})),
        # Azure refuses persistence with active geo-replication: the group's other members are the copy.
        passes(
            lambda: managed_redis_database(
                persistence=None,
                geo_replication={"group_nickname": "models", "linked_databases": [{"id": f"{GROUP}/{AZURE}"}]},
            )
        ),
        fails(
            lambda: managed_redis_database(persistence={"rdb_enabled": False, "aof_enabled": False}),
            MANAGED_NO_SNAPSHOTS,
        ),
        missing(
            lambda: replication_group(snapshot_retention_limit=None),
            f"{GROUP_NAME}: keeps no snapshots (snapshotRetentionLimit 0).",
        ),
        missing(
            lambda: memorystore(persistence_config=None),
            f"{MEMORYSTORE_NAME}: keeps no snapshots (persistenceConfig.persistenceMode DISABLED, the default).",
        ),
        missing(
            lambda: azure_redis(redis_configuration=None),
            f'{AZURE_NAME}: keeps no snapshots (redisConfiguration.rdbBackupEnabled is not "true").',
        ),
        missing(lambda: managed_redis_database(persistence=None), MANAGED_NO_SNAPSHOTS),
    ],
}
