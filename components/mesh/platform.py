"""The serving platform of one cluster: Istio always; Knative and Flagger where endpoints need them."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.mesh.certificate import GatewayTlsArgs, gateway_tls
from components.mesh.flagger import PROMETHEUS_URL, Flagger, FlaggerArgs
from components.mesh.istio import (
    GATEWAY_NAME,
    GATEWAY_NAMESPACE,
    GATEWAY_PRINCIPAL,
    ISTIO_NAMESPACE,
    IstioMesh,
    IstioMeshArgs,
)
from components.mesh.knative import KNATIVE_NAMESPACE, KnativeServing, KnativeServingArgs
from components.mesh.metrics_server import MetricsServer, MetricsServerArgs, needs_metrics_server
from turnout.config import KIND_AGENT_IMAGE, Endpoint, Serving, platform_features
from turnout.naming import child
from turnout.strategies import learns_from_traffic


@dataclass(frozen=True, kw_only=True)
class MeshInfo:
    """What model endpoints need to know about the platform they run on."""

    gateway: str
    """`namespace/name` of the Istio Gateway that VirtualServices bind to."""
    gateway_principal: str
    """The ingress gateway's SPIFFE identity, allowed into model namespaces."""
    domain: str
    knative_namespace: str | None
    """Set where Knative runs: its activator must reach Knative-backed model pods."""
    platform_namespaces: tuple[str, ...]
    """Namespaces whose pods may open connections to model pods (gateway, Knative, Prometheus)."""
    image_pull_policy: str
    """IfNotPresent on kind, whose images are loaded into the nodes; Always elsewhere."""
    agent_image: str | None = None
    """The experiment agent's image (None on a cloud whose stack names none: bandit endpoints are refused)."""
    prometheus_url: str | None = None
    """Where the experiment agents read Istio's metrics (set where an endpoint learns from traffic)."""


@dataclass(frozen=True, kw_only=True)
class ServingPlatformArgs:
    serving: Serving
    cloud: str
    tier: str
    endpoints: dict[str, Endpoint]
    cluster: pulumi.ComponentResource | None = None
    """The cluster the platform runs on (its workload identity, for cert-manager's DNS-01 records)."""


class ServingPlatform(pulumi.ComponentResource):
    mesh: MeshInfo
    ready: list[pulumi.Resource]
    """What objects in model namespaces wait for (CRDs, control planes, webhooks)."""
    versions: dict[str, str | None]
    ingress_address: pulumi.Output[str]
    """The ingress gateway's load balancer address (hostname on AWS, IP on GCP and Azure, 127.0.0.1 on kind)."""

    def __init__(self, name: str, args: ServingPlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:mesh:ServingPlatform", name, None, opts)
        serving = args.serving
        domain = serving.gateway.domain
        features = platform_features(serving, args.endpoints)
        istio = IstioMesh(
            child(name, "istio"),
            IstioMeshArgs(
                chart=serving.istio, gateway=serving.gateway, domain=domain, cloud=args.cloud, tier=args.tier
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.ready = list(istio.ready)
        self.ingress_address = istio.ingress_address
        if needs_metrics_server(args.cloud):  # GKE and AKS run their own
            MetricsServer(
                child(name, "metrics-server"),
                MetricsServerArgs(cloud=args.cloud, tier=args.tier),
                pulumi.ResourceOptions(parent=self),
            )
        tls = gateway_tls(
            child(name, "tls"),
            GatewayTlsArgs(
                gateway=serving.gateway,
                cloud=args.cloud,
                tier=args.tier,
                namespace=GATEWAY_NAMESPACE,
                cluster=args.cluster,
                after=(istio.system_namespace,),
            ),
            pulumi.ResourceOptions(parent=self),
        )
        if features.knative:
            knative = KnativeServing(
                child(name, "knative"),
                KnativeServingArgs(release=serving.knative, domain=domain, tier=args.tier, after=tuple(istio.ready)),
                pulumi.ResourceOptions(parent=self),
            )
            self.ready += knative.ready
        # Bandit endpoints' experiment agents read Istio's metrics from Flagger's Prometheus (alone without Flagger).
        experiments = any(learns_from_traffic(endpoint.strategy) for endpoint in args.endpoints.values())
        if features.flagger or experiments:
            flagger = Flagger(
                child(name, "flagger"),
                FlaggerArgs(
                    flagger=serving.flagger,
                    prometheus=serving.prometheus,
                    after=tuple(istio.ready),
                    install_flagger=features.flagger,
                ),
                pulumi.ResourceOptions(parent=self),
            )
            self.ready += flagger.ready
        self.mesh = MeshInfo(
            gateway=f"{GATEWAY_NAMESPACE}/{GATEWAY_NAME}",
            gateway_principal=GATEWAY_PRINCIPAL,
            domain=domain,
            knative_namespace=KNATIVE_NAMESPACE if features.knative else None,
            platform_namespaces=(ISTIO_NAMESPACE, KNATIVE_NAMESPACE) if features.knative else (ISTIO_NAMESPACE,),
            image_pull_policy="IfNotPresent" if args.cloud == "kind" else "Always",
            agent_image=serving.agent_image or (KIND_AGENT_IMAGE if args.cloud == "kind" else None),
            prometheus_url=PROMETHEUS_URL if experiments else None,
        )
        self.versions = {
            "istio": serving.istio.version,
            "knative": serving.knative.version if features.knative else None,
            "flagger": serving.flagger.version if features.flagger else None,
            "prometheus": serving.prometheus.version if features.flagger or experiments else None,
            "cert-manager": tls.cert_manager,
            "tls": tls.summary,
        }
        self.register_outputs({"versions": self.versions})
