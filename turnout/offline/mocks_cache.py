"""Answers for the resources caches create: ElastiCache, Memorystore, Azure Managed Redis, their networking, and
pulumi-random's generated passwords. Each builds on its cloud's module (the ids, ARNs and regions those derive)
and adds what the cache's clients read back: endpoints, ports, AUTH strings, server CAs.

Registered before the cloud modules in `CLOUD_MOCK_MODULES`, since those answer for every type of their cloud.
Every value derives from the resource's name and inputs, never random; the "secrets" are placeholders.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress

from turnout.offline import mocks_aws, mocks_azure, mocks_gcp
from turnout.offline.mocks import OFFLINE_CA_PEM, stable_hash

RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
RANDOM_ID = "random:index/randomId:RandomId"
ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
GLOBAL_REPLICATION_GROUP = "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup"
SUBNET_GROUP = "aws:elasticache/subnetGroup:SubnetGroup"

MEMORYSTORE = "gcp:redis/instance:Instance"
GLOBAL_ADDRESS = "gcp:compute/globalAddress:GlobalAddress"
SERVICE_NETWORKING = "gcp:servicenetworking/connection:Connection"
MEMORYSTORE_TLS_PORT = 6378  # Memorystore serves TLS (SERVER_AUTHENTICATION) on 6378, plain TCP on 6379

AZURE_MANAGED_REDIS = "azure-native:redisenterprise:RedisEnterprise"
AZURE_MANAGED_REDIS_DATABASE = "azure-native:redisenterprise:Database"
AZURE_STORAGE = "azure-native:storage:StorageAccount"
AZURE_PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"
AZURE_PRIVATE_ZONE = "azure-native:privatedns:PrivateZone"
LIST_DATABASE_KEYS = "azure-native:redisenterprise:listDatabaseKeys"


def placeholder_secret(*parts: str, length: int = 32) -> str:
    """A deterministic alphanumeric string standing in for a generated secret."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    while len(digest) < length:
        digest += hashlib.sha256(digest).digest()
    return "".join(ALPHANUMERIC[byte % len(ALPHANUMERIC)] for byte in digest[:length])


def _random_password(name: str, inputs: dict) -> dict:
    length = int(inputs.get("length") or 16)
    return {**inputs, "result": placeholder_secret("password", name, length=length), "bcryptHash": ""}


def _random_id(name: str, inputs: dict) -> dict:
    """pulumi-random's RandomId: `byte_length` random bytes as hex, base64url and decimal (here from the name)."""
    raw = hashlib.sha256(f"random-id/{name}".encode()).digest()[: int(inputs.get("byteLength") or 8)]
    b64 = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return {
        **inputs,
        "hex": raw.hex(),
        "b64Url": b64,
        "b64Std": base64.b64encode(raw).decode(),
        "dec": str(int.from_bytes(raw, "big")),
        "id": b64,
    }


def _aws(type_: str, name: str, inputs: dict) -> dict | None:
    outputs = mocks_aws.resource_outputs(type_, name, inputs)
    region = outputs["region"]
    if type_ == REPLICATION_GROUP:
        group = inputs.get("replicationGroupId") or name
        host = f"{group}.{stable_hash(type_, group, length=6)}.{mocks_aws._region_code(region)}.cache.amazonaws.com"
        nodes = int(inputs.get("numCacheClusters") or 1)
        return {
            **outputs,
            "arn": f"arn:aws:elasticache:{region}:{mocks_aws.ACCOUNT_ID}:replicationgroup:{group}",
            "primaryEndpointAddress": f"master.{host}",
            "readerEndpointAddress": f"replica.{host}",
            "memberClusters": [f"{group}-{index:03d}" for index in range(1, nodes + 1)],
            "clusterEnabled": False,
        }
    if type_ == GLOBAL_REPLICATION_GROUP:
        # AWS prefixes the suffix with five letters that identify the Global Datastore.
        prefix = placeholder_secret("global", name, length=5).lower()
        global_id = f"{prefix}-{inputs.get('globalReplicationGroupIdSuffix', name)}"
        return {
            **outputs,
            "globalReplicationGroupId": global_id,
            "arn": f"arn:aws:elasticache::{mocks_aws.ACCOUNT_ID}:globalreplicationgroup:{global_id}",
            "atRestEncryptionEnabled": True,
            "transitEncryptionEnabled": True,
            "authTokenEnabled": True,
        }
    if type_ == SUBNET_GROUP:
        group = inputs.get("name") or name
        return {**outputs, "arn": f"arn:aws:elasticache:{region}:{mocks_aws.ACCOUNT_ID}:subnetgroup:{group}"}
    return None


def _host_in(cidr: str, *parts: str) -> str:
    """An address inside `cidr`, stable per `parts`."""
    network = ipaddress.ip_network(cidr, strict=False)
    offset = 2 + int(stable_hash(*parts, length=6), 16) % max(network.num_addresses - 4, 1)
    return str(network.network_address + offset)


# Private services access ranges by (project, name) as declared, so an instance's address falls in the range
# it reserves (`reservedIpRange` names it); the same name always maps to the same range.
_PSA_RANGES: dict[tuple[str, str], str] = {}


def _gcp(type_: str, name: str, inputs: dict) -> dict | None:
    outputs = mocks_gcp.resource_outputs(type_, name, inputs)
    project = inputs.get("project") or mocks_gcp.OFFLINE_PROJECT
    physical = inputs.get("name") or name
    if type_ == MEMORYSTORE:
        region = inputs.get("region") or mocks_gcp.OFFLINE_REGION
        tls = inputs.get("transitEncryptionMode") == "SERVER_AUTHENTICATION"
        path = f"projects/{project}/locations/{region}/instances/{physical}"
        reserved = _PSA_RANGES.get((project, inputs.get("reservedIpRange", "")), "10.40.0.0/20")
        outputs.update(
            id=path,
            host=_host_in(reserved, path),
            port=MEMORYSTORE_TLS_PORT if tls else 6379,
            currentLocationId=f"{region}-a",
            serverCaCerts=[{"cert": OFFLINE_CA_PEM, "serialNumber": "1", "sha1Fingerprint": stable_hash(path)}]
            if tls
            else [],
        )
        if inputs.get("authEnabled"):
            outputs["authString"] = placeholder_secret("memorystore-auth", path, length=36)
        return outputs
    if type_ == GLOBAL_ADDRESS:
        if inputs.get("address") and inputs.get("prefixLength"):
            _PSA_RANGES[(project, physical)] = f"{inputs['address']}/{int(inputs['prefixLength'])}"
        path = f"projects/{project}/global/addresses/{physical}"
        return {**outputs, "id": path, "selfLink": f"{mocks_gcp.COMPUTE}/{path}"}
    if type_ == SERVICE_NETWORKING:
        network = str(inputs.get("network", "")).rsplit("/", 1)[-1]
        return {**outputs, "id": f"{network}:{inputs.get('service')}", "peering": "servicenetworking-googleapis-com"}
    return None


def _azure(type_: str, name: str, inputs: dict) -> dict | None:
    if type_ not in (
        AZURE_MANAGED_REDIS,
        AZURE_MANAGED_REDIS_DATABASE,
        AZURE_STORAGE,
        AZURE_PRIVATE_ENDPOINT,
        AZURE_PRIVATE_ZONE,
    ):
        return None
    outputs = mocks_azure.resource_outputs(type_, name, inputs)
    group = mocks_azure.group_id(inputs.get("resourceGroupName", ""))
    if type_ == AZURE_MANAGED_REDIS:
        cluster = inputs.get("clusterName") or name
        outputs.update(
            name=cluster,
            id=f"{group}/providers/Microsoft.Cache/redisEnterprise/{cluster}",
            hostName=f"{cluster}.{inputs.get('location', '')}.redis.azure.net",
            redisVersion="7.4",
            provisioningState="Succeeded",
            resourceState="Running",
        )
    elif type_ == AZURE_MANAGED_REDIS_DATABASE:
        cluster, database = inputs.get("clusterName", ""), inputs.get("databaseName") or name
        outputs.update(
            name=database,
            id=f"{group}/providers/Microsoft.Cache/redisEnterprise/{cluster}/databases/{database}",
            provisioningState="Succeeded",
            resourceState="Running",
        )
    elif type_ == AZURE_STORAGE:
        account = inputs.get("accountName") or name
        outputs.update(
            name=account,
            id=f"{group}/providers/Microsoft.Storage/storageAccounts/{account}",
            primaryEndpoints={"blob": f"https://{account}.blob.core.windows.net/"},
        )
    elif type_ == AZURE_PRIVATE_ENDPOINT:
        endpoint = inputs.get("privateEndpointName") or name
        outputs.update(
            name=endpoint,
            id=f"{group}/providers/Microsoft.Network/privateEndpoints/{endpoint}",
            customDnsConfigs=[{"ipAddresses": [_host_in("10.224.0.0/16", group, endpoint)]}],
        )
    elif type_ == AZURE_PRIVATE_ZONE:
        zone = inputs.get("privateZoneName") or name
        outputs.update(name=zone, id=f"{group}/providers/Microsoft.Network/privateDnsZones/{zone}")
    return outputs


def resource_outputs(type_: str, name: str, inputs: dict) -> dict | None:
    """Outputs of the cache resources; None for every other type (the cloud modules answer those)."""
    if type_ == RANDOM_PASSWORD:
        return _random_password(name, inputs)
    if type_ == RANDOM_ID:
        return _random_id(name, inputs)
    if type_ in (REPLICATION_GROUP, GLOBAL_REPLICATION_GROUP, SUBNET_GROUP):
        return _aws(type_, name, inputs)
    if type_ in (MEMORYSTORE, GLOBAL_ADDRESS, SERVICE_NETWORKING):
        return _gcp(type_, name, inputs)
    return _azure(type_, name, inputs)


def invoke(token: str, args: dict) -> dict | None:
    """The cache's data sources: Azure Managed Redis database access keys (placeholders)."""
    if token == LIST_DATABASE_KEYS:
        cache = f"{args.get('resourceGroupName')}/{args.get('clusterName')}/{args.get('databaseName')}"
        return {
            "primaryKey": base64.b64encode(placeholder_secret("primary", cache).encode()).decode(),
            "secondaryKey": base64.b64encode(placeholder_secret("secondary", cache).encode()).decode(),
        }
    return None
