"""Flagger (Istio provider) and the Prometheus it reads Istio's metrics from."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.mesh.istio import ISTIO_NAMESPACE
from turnout.config import Chart, OptionalChart
from turnout.naming import child

PROMETHEUS_URL = f"http://prometheus-server.{ISTIO_NAMESPACE}"


@dataclass(frozen=True, kw_only=True)
class FlaggerArgs:
    flagger: OptionalChart
    prometheus: Chart
    after: tuple[pulumi.Resource, ...]
    """The Istio control plane."""
    install_flagger: bool = True
    """False: only the Prometheus (the experiment agents of bandit endpoints read Istio's metrics from it)."""


class Flagger(pulumi.ComponentResource):
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: FlaggerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:mesh:Flagger", name, None, opts)
        after = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        prometheus = k8s.helm.v3.Release(
            child(name, "prometheus"),
            name="prometheus",
            chart="prometheus",
            version=args.prometheus.version,
            repository_opts={"repo": args.prometheus.repository},
            namespace=ISTIO_NAMESPACE,
            values={
                # Only the server: Istio's sidecars expose merged metrics with scrape annotations.
                "alertmanager": {"enabled": False},
                "prometheus-pushgateway": {"enabled": False},
                "prometheus-node-exporter": {"enabled": False},
                "kube-state-metrics": {"enabled": False},
                "server": {"persistentVolume": {"enabled": False}, "retention": "6h"},
            },
            opts=after,
        )
        if not args.install_flagger:
            self.ready = [prometheus]
            self.register_outputs({"version": None})
            return
        flagger = k8s.helm.v3.Release(
            child(name, "flagger"),
            name="flagger",
            chart="flagger",
            version=args.flagger.version,
            repository_opts={"repo": args.flagger.repository},
            namespace=ISTIO_NAMESPACE,
            # The chart's crds/ installs Flagger's CRDs; its `crd.create` (for Helm v2 only) would render them a
            # second time as templates, and Helm 3 refuses objects it already created.
            values={"meshProvider": "istio", "metricsServer": PROMETHEUS_URL},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.after, prometheus]),
        )
        self.ready = [flagger]
        self.register_outputs({"version": args.flagger.version})
