"""A model namespace's access to the cache: the password in a Secret of that namespace (the workloads reference
it, so it never appears in a pod spec), the environment the model containers get, and, for a cache outside the
cluster, the ServiceEntry that lets the namespace's sidecars reach it (the mesh allows registered hosts only).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.cache import CacheConnection
from components.endpoint.workload import PodAdditions
from turnout.naming import child, labels

SECRET_NAME = "turnout-cache"
PASSWORD_KEY = "password"
CA_KEY = "ca.crt"
SERVICE_ENTRY_NAME = "turnout-cache"


SECRET_DIR = "/var/run/secrets/turnout/cache"
"""Where the model container finds the cache's password (and CA) as files: not in its environment, which
crash dumps, `/proc` and child processes would show."""


def cache_env(connection: CacheConnection) -> tuple[dict, ...]:
    """The model container's cache environment: where it is, how to speak to it, and where the password is."""
    env: list[dict] = [
        {"name": "REDIS_ADDR", "value": connection.address},
        {"name": "REDIS_PORT", "value": str(connection.port)},
        {"name": "REDIS_TLS", "value": "true" if connection.tls else "false"},
        {"name": "REDIS_ROLE", "value": connection.role},
        {"name": "REDIS_PASSWORD_FILE", "value": f"{SECRET_DIR}/{PASSWORD_KEY}"},
    ]
    if connection.ca_certificate is not None:
        env.append({"name": "REDIS_CA_CERT_FILE", "value": f"{SECRET_DIR}/{CA_KEY}"})
    return tuple(env)


def cache_additions(connection: CacheConnection) -> PodAdditions:
    """The env, and the Secret mounted read-only at SECRET_DIR (readable by the pod's group only)."""
    return PodAdditions(
        env=cache_env(connection),
        volumes=({"name": "turnout-cache", "secret": {"secretName": SECRET_NAME, "defaultMode": 0o440}},),
        mounts=({"name": "turnout-cache", "mountPath": SECRET_DIR, "readOnly": True},),
    )


def service_entry_spec(connection: CacheConnection, address: str) -> dict:
    """The cache as a mesh-external service, visible to this namespace only. A host name resolves by DNS and is
    matched by TLS SNI; an IP (Memorystore) is a static TCP endpoint under a name of its own."""
    if connection.ip_address:
        return {
            "hosts": ["turnout-cache.external"],
            "addresses": [f"{address}/32"],
            "ports": [{"number": connection.port, "name": "tcp-redis", "protocol": "TCP"}],
            "location": "MESH_EXTERNAL",
            "resolution": "STATIC",
            "endpoints": [{"address": address}],
            "exportTo": ["."],
        }
    return {
        "hosts": [address],
        "ports": [{"number": connection.port, "name": "tls-redis", "protocol": "TLS"}],
        "location": "MESH_EXTERNAL",
        "resolution": "DNS",
        "exportTo": ["."],
    }


@dataclass(frozen=True, kw_only=True)
class CacheAccessArgs:
    namespace: str
    endpoint: str
    tier: str
    connection: CacheConnection
    after: tuple[pulumi.Resource, ...]
    """The namespace, and the serving platform whose CRDs the ServiceEntry needs."""


class CacheAccess(pulumi.ComponentResource):
    additions: PodAdditions
    """Environment, the Secret volume and its mount for the model containers."""
    ready: list[pulumi.Resource]
    """What the workloads wait for: the Secret (and the ServiceEntry)."""

    def __init__(self, name: str, args: CacheAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:cache:CacheAccess", name, None, opts)
        connection = args.connection
        metadata = {"namespace": args.namespace, "labels": labels(args.endpoint, None, args.tier)}
        after = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        data: dict = {PASSWORD_KEY: connection.password}
        if connection.ca_certificate is not None:
            data[CA_KEY] = connection.ca_certificate
        secret = k8s.core.v1.Secret(
            child(name, "secret"),
            metadata={"name": SECRET_NAME, **metadata},
            type="Opaque",
            string_data=data,
            opts=after,
        )
        self.additions = cache_additions(connection)
        self.ready = [secret]
        if not connection.in_cluster:
            self.ready.append(
                k8s.apiextensions.CustomResource(
                    child(name, "egress"),
                    api_version="networking.istio.io/v1",
                    kind="ServiceEntry",
                    metadata={"name": SERVICE_ENTRY_NAME, **metadata},
                    spec=connection.address.apply(lambda address: service_entry_spec(connection, address)),
                    opts=after,
                )
            )
        self.register_outputs({"secret": SECRET_NAME})
