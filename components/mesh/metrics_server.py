"""metrics-server, so HorizontalPodAutoscalers (model versions, istiod, the ingress gateway) read pod CPU.

kind and EKS clusters come without one; GKE and AKS run their own, so their clusters do not use this
component. The `metrics-server` chart from the kubernetes-sigs repository, in `kube-system`: its pods
already meet the `restricted` Pod Security Standard (non-root uid 1000, no privilege escalation, all
capabilities dropped, RuntimeDefault seccomp, read-only root filesystem, no host namespaces).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from turnout.naming import child

CHART = "metrics-server"
CHART_REPOSITORY = "https://kubernetes-sigs.github.io/metrics-server/"
# Chart 3.13.1 installs metrics-server 0.8.1 (its appVersion).
CHART_VERSION = "3.13.1"
APP_VERSION = "0.8.1"
NAMESPACE = "kube-system"
CLOUDS_WITHOUT_METRICS = ("kind", "aws")
# kind's kubelets serve self-signed certificates that no cluster CA signed: metrics-server cannot verify them.
KIND_ARGS = ["--kubelet-insecure-tls"]


def needs_metrics_server(cloud: str) -> bool:
    return cloud in CLOUDS_WITHOUT_METRICS


def metrics_server_values(cloud: str, tier: str) -> dict:
    """The chart's values: kubelet TLS unverified only on kind; in prod two replicas on different nodes with
    a PodDisruptionBudget, so a node drain never leaves the HPAs blind."""
    values: dict = {"args": list(KIND_ARGS) if cloud == "kind" else []}
    if tier == "prod":
        pods = {"matchLabels": {"app.kubernetes.io/name": CHART, "app.kubernetes.io/instance": CHART}}
        values.update(
            replicas=2,
            podDisruptionBudget={"enabled": True, "maxUnavailable": 1},
            topologySpreadConstraints=[
                {
                    "maxSkew": 1,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": pods,
                }
            ],
        )
    return values


@dataclass(frozen=True, kw_only=True)
class MetricsServerArgs:
    cloud: str
    tier: str


class MetricsServer(pulumi.ComponentResource):
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: MetricsServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:mesh:MetricsServer", name, None, opts)
        self.release = k8s.helm.v3.Release(
            child(name, "chart"),
            name=CHART,
            chart=CHART,
            version=CHART_VERSION,
            repository_opts={"repo": CHART_REPOSITORY},
            namespace=NAMESPACE,
            values=metrics_server_values(args.cloud, args.tier),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"version": APP_VERSION})
