"""The region's health route: what failover DNS probes, answering only while the region's models answer.

Every cluster of a stack with failover routing, and of every cell a blue/green global stack may route to (an external
gateway on a delegated domain: components/dr/failover.py `serves_health_route`), gets, in `turnout-system` (Pod
Security `restricted`, outside the mesh; created here where no DR record creates it):

- the health aggregator (apps/health-aggregator/aggregator.py, Python's standard library only) mounted from a
  ConfigMap into a pinned stock Python image, with its configuration: every endpoint this region runs, its public
  host `<endpoint>.<domain>` and health path, and the in-cluster gateway Service to send them to. Every
  `HEALTH_AGGREGATE_PERIOD` s it requests each endpoint's health path through the gateway over TLS with the
  endpoint's host as SNI, as users' requests arrive; `/ready` is 200 only while every endpoint answered 2xx;
- a ServiceAccount of its own with no API token (it reads nothing from Kubernetes: no RBAC at all), non-root,
  read-only root filesystem, no capabilities, RuntimeDefault seccomp, requests and limits, liveness and readiness
  on `/healthz` (the pod is ready while it serves: a model outage must not restart it), two replicas in prod;
- a Service and a VirtualService on the stack's Gateway for the health hosts only, `/ready` only: the shared
  `turnout-health.<domain>` (Cloud DNS and Traffic Manager send it as Host and SNI to each region's address) and
  the cluster's own `turnout-health-<cluster>.<domain>` (Route 53 resolves its check's name to reach one region);
  both are single labels under the domain, so the Gateway's `*.<domain>` server and its certificate cover them, and
  a region without that certificate fails the cloud's TLS handshake;
- NetworkPolicies: in, only the ingress gateway's pods on the aggregator's port; out, only DNS and the gateway's
  pods on 443.

A Knative endpoint scaled to zero counts these requests as traffic: the probe keeps one pod of it running.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.endpoint.workload import checkov_skips, container_security, pod_security
from turnout.dr import HEALTH_AGGREGATE_PERIOD, HEALTH_AGGREGATE_TIMEOUT
from turnout.naming import PROJECT, child, fit

AGGREGATOR = Path(__file__).resolve().parent.parent.parent / "apps" / "health-aggregator" / "aggregator.py"
AGGREGATOR_IMAGE = "python:3.12.11-slim-bookworm"
NAMESPACE = "turnout-system"
NAME = "turnout-health"
CONFIG_KEY = "config.json"
PORT = 8080
MOUNT = "/opt/turnout-health"
HEALTH_PATH = "/ready"
HEALTH_LABEL = "turnout-health"
"""The shared health host's label: `turnout-health.<domain>`; an endpoint cannot take it (check_failover)."""
GATEWAY_SERVICE = "istio-ingressgateway.istio-system.svc.cluster.local"
GATEWAY_NAMESPACE = "istio-system"
GATEWAY_POD_LABELS = {"istio": "ingressgateway"}
GATEWAY_HTTPS_PORT = 443
LABEL_MAX = 63
RESOURCES = {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"cpu": "200m", "memory": "96Mi"}}


def health_host(domain: str) -> str:
    """The health host every region answers: what Cloud DNS and Traffic Manager send as Host and SNI."""
    return f"{HEALTH_LABEL}.{domain}"


def cluster_health_host(cluster: str, domain: str) -> str:
    """One cluster's own health host (a single DNS label under the domain, hashed to 63 characters when longer): what a
    Route 53 check resolves, through a record of its own, to reach that region's load balancer."""
    return f"{fit(f'{HEALTH_LABEL}-{cluster}', LABEL_MAX)}.{domain}"


def aggregator_config(domain: str, endpoints: dict[str, str]) -> dict:
    """The aggregator's configuration: every endpoint (name → health path) through the in-cluster gateway."""
    return {
        "gateway": GATEWAY_SERVICE,
        "port": GATEWAY_HTTPS_PORT,
        "period": HEALTH_AGGREGATE_PERIOD,
        "timeout": HEALTH_AGGREGATE_TIMEOUT,
        "listen": PORT,
        "endpoints": [
            {"name": name, "host": f"{name}.{domain}", "path": path} for name, path in sorted(endpoints.items())
        ],
    }


def virtual_service_spec(cluster: str, domain: str, gateway: str) -> dict:
    """The health hosts' route: `/ready` exactly, to the aggregator; any other path there gets the gateway's 404."""
    return {
        "hosts": [health_host(domain), cluster_health_host(cluster, domain)],
        "gateways": [gateway],
        "http": [
            {
                "name": "health",
                "match": [{"uri": {"exact": HEALTH_PATH}, "method": {"exact": "GET"}}],
                "route": [{"destination": {"host": f"{NAME}.{NAMESPACE}.svc.cluster.local", "port": {"number": 80}}}],
                "timeout": "2s",
            }
        ],
    }


@dataclass(frozen=True, kw_only=True)
class HealthRouteArgs:
    cluster: str
    domain: str
    endpoints: dict[str, str]
    """Every endpoint this region runs: name → its health path."""
    gateway: str
    """`namespace/name` of the Istio Gateway."""
    tier: str
    pull_policy: str
    after: tuple[pulumi.Resource, ...]
    """The namespace, the Gateway and the VirtualService CRD."""
    own_namespace: bool = False
    """Create `turnout-system` (a stack without a DR record, which otherwise creates it: a blue/green cell)."""


def probe_export(cluster: str, domain: str) -> dict:
    """What a cell exports with each ingress (`ingresses[].health`) so a global stack over it probes the health route:
    the cluster's own health host (what a Route 53 check resolves), the shared one (Cloud DNS, Traffic Manager), and
    the scheme, port and path, all as the VirtualService and the Gateway serve them."""
    return {
        "host": cluster_health_host(cluster, domain),
        "sharedHost": health_host(domain),
        "scheme": "https",
        "port": GATEWAY_HTTPS_PORT,
        "path": HEALTH_PATH,
    }


class HealthRoute(pulumi.ComponentResource):
    def __init__(self, name: str, args: HealthRouteArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:dr:HealthRoute", name, None, opts)
        object_labels = {
            "app.kubernetes.io/name": NAME,
            "app.kubernetes.io/part-of": PROJECT,
            "app.kubernetes.io/managed-by": "pulumi",
            "app.kubernetes.io/component": "health-aggregator",
            "turnout.dev/tier": args.tier,
        }
        selector = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "health-aggregator"}
        metadata = {"name": NAME, "namespace": NAMESPACE, "labels": object_labels}
        owned = []
        if args.own_namespace:
            owned.append(
                k8s.core.v1.Namespace(
                    child(name, "ns"),
                    metadata={
                        "name": NAMESPACE,
                        "labels": {
                            "app.kubernetes.io/part-of": PROJECT,
                            "app.kubernetes.io/managed-by": "pulumi",
                            "pod-security.kubernetes.io/enforce": "restricted",
                        },
                    },
                    opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
                )
            )
        after = pulumi.ResourceOptions(parent=self, depends_on=[*args.after, *owned])
        config = k8s.core.v1.ConfigMap(
            child(name, "config"),
            metadata=metadata,
            data={
                CONFIG_KEY: json.dumps(aggregator_config(args.domain, args.endpoints), indent=1, sort_keys=True),
                "aggregator.py": AGGREGATOR.read_text(),
            },
            opts=after,
        )
        account = k8s.core.v1.ServiceAccount(
            child(name, "sa"), metadata=metadata, automount_service_account_token=False, opts=after
        )
        probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 2}
        replicas = 2 if args.tier == "prod" else 1
        pod_labels = {**object_labels, **selector}
        k8s.apps.v1.Deployment(
            child(name, "deployment"),
            metadata={**metadata, "annotations": checkov_skips(AGGREGATOR_IMAGE, args.pull_policy)},
            spec={
                "replicas": replicas,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": pod_labels},
                    "spec": {
                        "serviceAccountName": NAME,
                        "automountServiceAccountToken": False,
                        "securityContext": pod_security(),
                        "topologySpreadConstraints": [
                            {
                                "maxSkew": 1,
                                "topologyKey": key,
                                "whenUnsatisfiable": "ScheduleAnyway",
                                "labelSelector": {"matchLabels": selector},
                            }
                            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
                        ],
                        "containers": [
                            {
                                "name": "aggregator",
                                "image": AGGREGATOR_IMAGE,
                                "imagePullPolicy": args.pull_policy,
                                "command": ["python", f"{MOUNT}/aggregator.py", f"{MOUNT}/{CONFIG_KEY}"],
                                "env": [
                                    {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
                                    {"name": "PYTHONUNBUFFERED", "value": "1"},
                                ],
                                "ports": [{"name": "http", "containerPort": PORT}],
                                "readinessProbe": probe,
                                "livenessProbe": {**probe, "failureThreshold": 3},
                                "resources": RESOURCES,
                                "securityContext": container_security(),
                                "volumeMounts": [{"name": "config", "mountPath": MOUNT, "readOnly": True}],
                            }
                        ],
                        "volumes": [{"name": "config", "configMap": {"name": NAME}}],
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.after, *owned, config, account]),
        )
        if replicas > 1:
            k8s.policy.v1.PodDisruptionBudget(
                child(name, "pdb"),
                metadata=metadata,
                spec={"maxUnavailable": 1, "selector": {"matchLabels": selector}},
                opts=after,
            )
        k8s.core.v1.Service(
            child(name, "svc"),
            metadata=metadata,
            spec={
                "type": "ClusterIP",
                "selector": selector,
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}],
            },
            opts=after,
        )
        gateway_pods = {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": GATEWAY_NAMESPACE}},
            "podSelector": {"matchLabels": dict(GATEWAY_POD_LABELS)},
        }
        k8s.networking.v1.NetworkPolicy(
            child(name, "netpol"),
            metadata=metadata,
            spec={
                "podSelector": {"matchLabels": selector},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [gateway_pods], "ports": [{"port": PORT, "protocol": "TCP"}]}],
                "egress": [
                    {"to": [gateway_pods], "ports": [{"port": GATEWAY_HTTPS_PORT, "protocol": "TCP"}]},
                    {
                        "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                    },
                ],
            },
            opts=after,
        )
        k8s.apiextensions.CustomResource(
            child(name, "route"),
            api_version="networking.istio.io/v1",
            kind="VirtualService",
            metadata=metadata,
            spec=virtual_service_spec(args.cluster, args.domain, args.gateway),
            opts=after,
        )
        self.cluster = args.cluster
        self.probe = probe_export(args.cluster, args.domain)
        """What the cell exports for a global stack's probe (`probe_export`)."""
        self.register_outputs({"hosts": [health_host(args.domain), cluster_health_host(args.cluster, args.domain)]})
