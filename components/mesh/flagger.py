"""Flagger (Istio provider), reading Istio's metrics from the cluster's Prometheus (components/observability)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.mesh.istio import ISTIO_NAMESPACE
from components.observability.prometheus import PROMETHEUS_URL
from turnout.config import OptionalChart
from turnout.naming import child

__all__ = ["PROMETHEUS_URL", "Flagger", "FlaggerArgs"]


@dataclass(frozen=True, kw_only=True)
class FlaggerArgs:
    flagger: OptionalChart
    after: tuple[pulumi.Resource, ...]
    """The Istio control plane and the cluster's Prometheus."""


class Flagger(pulumi.ComponentResource):
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: FlaggerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:mesh:Flagger", name, None, opts)
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
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        self.ready = [flagger]
        self.register_outputs({"version": args.flagger.version})
