"""Istio from its official charts (base → istiod → gateway), STRICT mTLS and the TLS Gateway."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.kind import KIND_INGRESS_NODE_PORTS
from turnout.config import Chart, Gateway
from turnout.naming import child

ISTIO_NAMESPACE = "istio-system"
# net-istio's manifests expect exactly this gateway: Service istio-ingressgateway in istio-system,
# pods labelled istio: ingressgateway. Any other name breaks Knative routing.
GATEWAY_NAMESPACE = ISTIO_NAMESPACE
GATEWAY_RELEASE = "istio-ingressgateway"
# The gateway chart labels its pods `istio: <release name without the "istio-" prefix>`.
GATEWAY_SELECTOR = {"istio": "ingressgateway"}
GATEWAY_NAME = "turnout-gateway"
GATEWAY_PRINCIPAL = f"cluster.local/ns/{GATEWAY_NAMESPACE}/sa/{GATEWAY_RELEASE}"
TLS_ISSUER_ANNOTATION = "turnout.dev/tls-issuer"
# kind publishes the gateway's NodePorts on the host's loopback (components.cluster.kind).
KIND_INGRESS_ADDRESS = "127.0.0.1"

# Load balancer annotations per cloud and exposure, for the gateway's Service.
_LOAD_BALANCER_ANNOTATIONS: dict[str, dict[str, dict[str, str]]] = {
    "aws": {
        "internal": {
            "service.beta.kubernetes.io/aws-load-balancer-type": "external",
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
            "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
        },
        "external": {
            "service.beta.kubernetes.io/aws-load-balancer-type": "external",
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
            "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
        },
    },
    "gcp": {
        "internal": {"networking.gke.io/load-balancer-type": "Internal"},
        "external": {"cloud.google.com/l4-rbs": "enabled"},
    },
    "azure": {
        "internal": {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"},
        "external": {},
    },
}


def gateway_service_values(cloud: str, exposure: str) -> dict:
    """The gateway chart's `service` values: NodePorts on kind, the cloud's load balancer elsewhere."""
    ports = [
        {"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"},
        {"name": "http2", "port": 80, "targetPort": 80, "protocol": "TCP"},
        {"name": "https", "port": 443, "targetPort": 443, "protocol": "TCP"},
    ]
    if cloud == "kind":
        for port in ports[1:]:
            port["nodePort"] = KIND_INGRESS_NODE_PORTS[port["port"]]
        return {"type": "NodePort", "ports": ports, "annotations": {}}
    return {
        "type": "LoadBalancer",
        "ports": ports,
        "annotations": dict(_LOAD_BALANCER_ANNOTATIONS[cloud][exposure]),
        "externalTrafficPolicy": "Local",  # keeps client addresses for AuthorizationPolicies
    }


def load_balancer_address(status: object) -> str:
    """The gateway Service's load balancer address from its status: the hostname (AWS) or the IP (GCP, Azure)."""
    load_balancer = getattr(status, "load_balancer", None)
    for ingress in getattr(load_balancer, "ingress", None) or []:
        address = getattr(ingress, "hostname", None) or getattr(ingress, "ip", None)
        if address:
            return address
    raise ValueError(f"the {GATEWAY_NAMESPACE}/{GATEWAY_RELEASE} Service has no load balancer address")


def gateway_spec(domain: str, certificate: str) -> dict:
    """HTTPS for every host of the domain, HTTP redirected to it."""
    hosts = [f"*.{domain}"]
    return {
        "selector": dict(GATEWAY_SELECTOR),
        "servers": [
            {
                "port": {"number": 80, "name": "http", "protocol": "HTTP"},
                "hosts": hosts,
                "tls": {"httpsRedirect": True},
            },
            {
                "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                "hosts": hosts,
                "tls": {"mode": "SIMPLE", "credentialName": certificate, "minProtocolVersion": "TLSV1_2"},
            },
        ],
    }


@dataclass(frozen=True, kw_only=True)
class IstioMeshArgs:
    chart: Chart
    gateway: Gateway
    domain: str
    cloud: str
    tier: str


class IstioMesh(pulumi.ComponentResource):
    system_namespace: k8s.core.v1.Namespace
    control_plane: k8s.helm.v3.Release
    gateway_release: k8s.helm.v3.Release
    gateway: k8s.apiextensions.CustomResource
    ready: list[pulumi.Resource]
    """What custom resources in model namespaces wait for: CRDs, control plane and mTLS policy."""
    ingress_address: pulumi.Output[str]
    """The gateway's load balancer address (hostname on AWS, IP on GCP and Azure; 127.0.0.1 on kind), read
    from its Service once the release is ready: what global DNS routing points at."""

    def __init__(self, name: str, args: IstioMeshArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:mesh:IstioMesh", name, None, opts)
        repo = {"repo": args.chart.repository}
        system = self.system_namespace = k8s.core.v1.Namespace(
            child(name, "system-ns"), metadata={"name": ISTIO_NAMESPACE}, opts=pulumi.ResourceOptions(parent=self)
        )
        base = k8s.helm.v3.Release(
            child(name, "base"),
            name="istio-base",
            chart="base",
            version=args.chart.version,
            repository_opts=repo,
            namespace=ISTIO_NAMESPACE,
            values={"defaultRevision": "default"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[system]),
        )
        replicas = 2 if args.tier == "prod" else 1
        self.control_plane = k8s.helm.v3.Release(
            child(name, "istiod"),
            name="istiod",
            chart="istiod",
            version=args.chart.version,
            repository_opts=repo,
            namespace=ISTIO_NAMESPACE,
            values={
                "pilot": {"autoscaleMin": replicas, "replicaCount": replicas},
                "meshConfig": {"accessLogFile": "/dev/stdout", "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[base]),
        )
        self.gateway_release = k8s.helm.v3.Release(
            child(name, "gateway"),
            name=GATEWAY_RELEASE,
            chart="gateway",
            version=args.chart.version,
            repository_opts=repo,
            namespace=GATEWAY_NAMESPACE,
            values={
                "service": gateway_service_values(args.cloud, args.gateway.exposure),
                "autoscaling": {"minReplicas": replicas},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.control_plane]),
        )
        # Mesh-wide: no plaintext between workloads.
        strict = k8s.apiextensions.CustomResource(
            child(name, "strict-mtls"),
            api_version="security.istio.io/v1",
            kind="PeerAuthentication",
            metadata={"name": "default", "namespace": ISTIO_NAMESPACE},
            spec={"mtls": {"mode": "STRICT"}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.control_plane]),
        )
        self.gateway = k8s.apiextensions.CustomResource(
            child(name, "gateway-cr"),
            api_version="networking.istio.io/v1",
            kind="Gateway",
            # Says where its certificate comes from (tls-on-public-gateways accepts a Secret the stack brings).
            metadata={
                "name": GATEWAY_NAME,
                "namespace": GATEWAY_NAMESPACE,
                **({"annotations": {TLS_ISSUER_ANNOTATION: issuer}} if (issuer := args.gateway.tls.issuer) else {}),
            },
            spec=gateway_spec(args.domain, args.gateway.certificate),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.gateway_release]),
        )
        self.ready = [self.control_plane, strict]
        self.ingress_address = self._ingress_address(name, args.cloud)
        self.register_outputs(
            {
                "version": args.chart.version,
                "gateway": f"{GATEWAY_NAMESPACE}/{GATEWAY_NAME}",
                "ingress_address": self.ingress_address,
            }
        )

    def _ingress_address(self, name: str, cloud: str) -> pulumi.Output[str]:
        """Read (not managed: the chart owns it) the gateway Service; kind has no load balancer."""
        if cloud == "kind":
            return pulumi.Output.from_input(KIND_INGRESS_ADDRESS)
        # An id known only once the release exists: a preview of a new stack skips the read instead of failing.
        service_id = self.gateway_release.id.apply(lambda _: f"{GATEWAY_NAMESPACE}/{GATEWAY_RELEASE}")
        service = k8s.core.v1.Service.get(
            child(name, "gateway-service"),
            service_id,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.gateway_release]),
        )
        return service.status.apply(load_balancer_address)
