"""Redis (or Valkey) inside the cluster, for kind: a one-pod StatefulSet of the official image pinned by version,
its data on a PersistentVolumeClaim with RDB snapshots at the backup interval, a password generated at deploy
time and kept in a Secret, a ClusterIP Service, and a NetworkPolicy that admits only pods of model namespaces
(labelled `turnout.dev/endpoint`) on the Redis port.

Not for production: one pod, no TLS (traffic stays inside the cluster's network; the password and the
NetworkPolicy keep other pods out), the latest snapshot only.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.cache import (
    CacheArgs,
    CacheComponent,
    CacheConnection,
    backup_period,
    check_cache_args,
    replication_document,
)
from components.endpoint.workload import container_security
from turnout.naming import child, k8s_name

PORT = 6379
# Official images pinned by version; both run as uid/gid 999 when started as non-root.
IMAGES = {"redis": "redis:7.4.5", "valkey": "valkey/valkey:8.1.1"}
CLIS = {"redis": "redis-cli", "valkey": "valkey-cli"}
SERVERS = {"redis": "redis-server", "valkey": "valkey-server"}
RUN_AS = 999
ENDPOINT_NAMESPACE_LABEL = "turnout.dev/endpoint"  # every model namespace carries it (turnout.naming.labels)
PASSWORD_KEY = "password"
PASSWORD_LENGTH = 48
STORAGE = "1Gi"
MEMORY = "256Mi"
MAX_MEMORY = "192mb"  # below the container limit: a cache evicts instead of being OOM-killed


def cache_labels(cache: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": cache,
        "app.kubernetes.io/component": "cache",
        "app.kubernetes.io/part-of": "turnout",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def server_args(engine: str, snapshot_seconds: int) -> list[str]:
    """The server's command line; the password comes from the environment, expanded by the kubelet."""
    return [
        "--port",
        str(PORT),
        "--dir",
        "/data",
        "--save",
        f"{snapshot_seconds} 1",  # snapshot when anything changed in the interval
        "--appendonly",
        "no",
        "--maxmemory",
        MAX_MEMORY,
        "--maxmemory-policy",
        "allkeys-lru",
        "--protected-mode",
        "yes",
        "--requirepass",
        "$(CACHE_PASSWORD)",
    ]


class InClusterCache(CacheComponent):
    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:cache:InClusterCache", name, opts)
        check_cache_args("kind", args)
        self.port = PORT
        site = args.primary
        period = backup_period("kind", args.backup_interval_seconds)
        namespace_name = k8s_name(args.cache_name)
        labels = cache_labels(args.cache_name)
        on_cluster = pulumi.ResourceOptions(parent=self, provider=site.cluster.provider)

        password = random.RandomPassword(
            child(name, "password"), length=PASSWORD_LENGTH, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        self.auth_token = pulumi.Output.secret(password.result)

        namespace = k8s.core.v1.Namespace(
            child(name, "ns"),
            metadata={
                "name": namespace_name,
                "labels": {
                    **labels,
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                    # Outside the mesh: clients' sidecars reach it as a plain TCP service.
                    "istio-injection": "disabled",
                },
            },
            opts=on_cluster,
        )
        in_namespace = pulumi.ResourceOptions(parent=self, provider=site.cluster.provider, depends_on=[namespace])
        metadata = {"namespace": namespace_name, "labels": labels}
        secret = k8s.core.v1.Secret(
            child(name, "secret"),
            metadata={"name": child(args.cache_name, "auth"), **metadata},
            type="Opaque",
            string_data={PASSWORD_KEY: self.auth_token},
            opts=in_namespace,
        )
        account = k8s.core.v1.ServiceAccount(
            child(name, "sa"),
            metadata={"name": args.cache_name, **metadata},
            automount_service_account_token=False,
            opts=in_namespace,
        )
        service = k8s.core.v1.Service(
            child(name, "svc"),
            metadata={"name": args.cache_name, **metadata},
            spec={
                "type": "ClusterIP",
                "selector": labels,
                # tcp-: Istio sidecars of the clients treat it as opaque TCP.
                "ports": [{"name": "tcp-redis", "port": PORT, "targetPort": "redis", "protocol": "TCP"}],
            },
            opts=in_namespace,
        )
        password_env = {"valueFrom": {"secretKeyRef": {"name": child(args.cache_name, "auth"), "key": PASSWORD_KEY}}}
        ping = {
            "exec": {"command": ["sh", "-c", f"{CLIS[args.engine]} -p {PORT} ping | grep -q PONG"]},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
        }
        k8s.apps.v1.StatefulSet(
            child(name, "statefulset"),
            metadata={"name": args.cache_name, **metadata},
            spec={
                "serviceName": args.cache_name,
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": args.cache_name,
                        "automountServiceAccountToken": False,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": RUN_AS,
                            "runAsGroup": RUN_AS,
                            "fsGroup": RUN_AS,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": args.engine,
                                "image": IMAGES[args.engine],
                                "imagePullPolicy": "Always",
                                "command": [SERVERS[args.engine]],
                                "args": server_args(args.engine, period),
                                "env": [
                                    {"name": "CACHE_PASSWORD", **password_env},
                                    # The CLIs read the password from here, never from their command line.
                                    {"name": "REDISCLI_AUTH", **password_env},
                                    {"name": "VALKEYCLI_AUTH", **password_env},
                                ],
                                "ports": [{"name": "redis", "containerPort": PORT, "protocol": "TCP"}],
                                "resources": {
                                    "requests": {"cpu": "100m", "memory": MEMORY},
                                    "limits": {"cpu": "500m", "memory": MEMORY},
                                },
                                "readinessProbe": {**ping, "failureThreshold": 3},
                                "livenessProbe": {**ping, "initialDelaySeconds": 15, "failureThreshold": 6},
                                "securityContext": container_security(),
                                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                            }
                        ],
                    },
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data", "labels": labels},
                        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": STORAGE}}},
                    }
                ],
            },
            opts=pulumi.ResourceOptions(
                parent=self, provider=site.cluster.provider, depends_on=[namespace, secret, account]
            ),
        )
        # Only model namespaces may connect, and only to the Redis port; the cache itself opens no connections.
        k8s.networking.v1.NetworkPolicy(
            child(name, "netpol"),
            metadata={"name": child(args.cache_name, "model-namespaces-only"), **metadata},
            spec={
                "podSelector": {"matchLabels": labels},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchExpressions": [{"key": ENDPOINT_NAMESPACE_LABEL, "operator": "Exists"}]
                                }
                            }
                        ],
                        "ports": [{"port": PORT, "protocol": "TCP"}],
                    }
                ],
                "egress": [],
            },
            opts=in_namespace,
        )
        self._add_site(
            site.region,
            CacheConnection(
                address=pulumi.Output.concat(service.metadata.name, ".", namespace_name, ".svc.cluster.local"),
                port=PORT,
                password=self.auth_token,
                tls=False,
                role="primary",
                in_cluster=True,
            ),
        )
        self.replication = replication_document(
            cloud="kind",
            engine=args.engine,
            primary_region=site.region,
            nodes_per_region=1,
            zone_redundant=False,
            replica_regions=(),
            cross_region=None,
            backup={
                "intervalSeconds": period,
                "requestedIntervalSeconds": args.backup_interval_seconds,
                "retentionDays": None,
                "to": "persistent-volume-rdb",
            },
        )
        self._register()
