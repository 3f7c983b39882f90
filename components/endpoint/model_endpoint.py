"""A model endpoint on one cluster: its namespace, a workload per running version, and its Service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.endpoint.namespace import ModelNamespace, ModelNamespaceArgs
from components.endpoint.workload import ModelWorkload, ModelWorkloadArgs
from components.mesh.platform import MeshInfo
from turnout.config import Endpoint, key_path
from turnout.errors import NotSupportedError
from turnout.naming import child, labels
from turnout.strategies import Recreate, Rolling, Strategy
from turnout.traffic import TrafficPlan, traffic_plan

# Strategies this version renders; the others have traffic plans but no Istio/Knative routing yet.
RENDERED_STRATEGIES = (Recreate, Rolling)
RENDERED_BACKENDS = ("istio",)


def update_strategy(strategy: Strategy) -> dict:
    """The Deployment update strategy that realises `recreate` or `rolling`."""
    if isinstance(strategy, Rolling):
        return {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": strategy.max_surge, "maxUnavailable": strategy.max_unavailable},
        }
    return {"type": "Recreate"}


def check_renderable(name: str, endpoint: Endpoint) -> None:
    path = key_path(f"endpoints.{name}")
    if endpoint.backend not in RENDERED_BACKENDS:
        raise NotSupportedError(f"{path}.backend", repr(endpoint.backend), "backend " + ", ".join(RENDERED_BACKENDS))
    if not isinstance(endpoint.strategy, RENDERED_STRATEGIES):
        raise NotSupportedError(
            f"{path}.strategy.type",
            repr(endpoint.strategy.TYPE),
            "strategy " + ", ".join(s.TYPE for s in RENDERED_STRATEGIES) + " (the others plan traffic but do "
            "not render Istio/Knative routing yet)",
        )


@dataclass(frozen=True, kw_only=True)
class ModelEndpointArgs:
    endpoint_name: str
    endpoint: Endpoint
    tier: str
    cluster: str
    mesh: MeshInfo
    after: tuple[pulumi.Resource, ...]
    """The serving platform of the cluster, which the endpoint's objects wait for."""


class ModelEndpoint(pulumi.ComponentResource):
    plan: TrafficPlan
    traffic: dict[str, Any]
    """This endpoint's entry in `traffic.json`."""

    def __init__(self, name: str, args: ModelEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:endpoint:ModelEndpoint", name, None, opts)
        check_renderable(args.endpoint_name, args.endpoint)
        endpoint = args.endpoint
        self.plan = traffic_plan(endpoint.strategy)

        namespace = ModelNamespace(
            child(name, "ns"),
            ModelNamespaceArgs(
                namespace=args.endpoint_name,
                endpoint=args.endpoint_name,
                tier=args.tier,
                allowed_principals=[args.mesh.gateway_principal],
                allowed_namespaces=[args.mesh.knative_namespace] if endpoint.backend == "knative" else [],
                after=args.after,
            ),
            pulumi.ResourceOptions(parent=self),
        ).namespace
        for version_name in self.plan.running_versions:
            ModelWorkload(
                child(name, version_name),
                ModelWorkloadArgs(
                    namespace=args.endpoint_name,
                    after=(namespace,),
                    endpoint=args.endpoint_name,
                    version_name=version_name,
                    version=endpoint.versions[version_name],
                    port=endpoint.port,
                    health_path=endpoint.health_path,
                    tier=args.tier,
                    update_strategy=update_strategy(endpoint.strategy),
                ),
                pulumi.ResourceOptions(parent=self),
            )
        # recreate and rolling run one version, so selecting the endpoint selects exactly it.
        k8s.core.v1.Service(
            child(name, "svc"),
            metadata={
                "name": args.endpoint_name,
                "namespace": args.endpoint_name,
                "labels": labels(args.endpoint_name, None, args.tier),
            },
            spec={
                "type": "ClusterIP",
                "selector": {"app.kubernetes.io/name": args.endpoint_name},
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}],
            },
            # The name is known statically; the explicit dependency orders the Service after its
            # namespace without every object awaiting the namespace's outputs.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
        )
        self.traffic = {
            "name": args.endpoint_name,
            "cluster": args.cluster,
            "backend": endpoint.backend,
            "strategy": self.plan.strategy,
            "routes": self.plan.to_json(),
        }
        # Names, not the traffic document: every nested value registered becomes an Output to await.
        self.register_outputs({"namespace": args.endpoint_name, "versions": list(self.plan.running_versions)})
