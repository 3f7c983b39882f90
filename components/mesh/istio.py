"""Istio from its official charts (base → cni → istiod → gateway), STRICT mTLS and the TLS Gateway.

Sidecar mode with the Istio CNI node agent: the agent (a privileged DaemonSet in `istio-system`)
sets up each pod's traffic redirection, so injected pods carry only the unprivileged
`istio-validation` init container instead of `istio-init`, whose NET_ADMIN and NET_RAW the
`restricted` (and `baseline`) Pod Security Standard of model namespaces forbid."""

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
# The CNI DaemonSet mounts the node's CNI directories (hostPath), which only `privileged` admits; Istio's
# "Install Istio with Pod Security Admission" labels istio-system so.
ISTIO_NAMESPACE_LABELS = {"pod-security.kubernetes.io/enforce": "privileged"}
CNI_RELEASE = "istio-cni"
GATEWAY_RELEASE = "istio-ingressgateway"
# The gateway chart labels its pods `istio: <release name without the "istio-" prefix>`.
GATEWAY_SELECTOR = {"istio": "ingressgateway"}
GATEWAY_NAME = "turnout-gateway"
GATEWAY_PRINCIPAL = f"cluster.local/ns/{GATEWAY_NAMESPACE}/sa/{GATEWAY_RELEASE}"
TLS_ISSUER_ANNOTATION = "turnout.dev/tls-issuer"
# kind publishes the gateway's NodePorts on the host's loopback (components.cluster.kind).
KIND_INGRESS_ADDRESS = "127.0.0.1"

# An NLB's IP target groups over TCP replace the client's address with the NLB's own unless this target
# group attribute is on (AWS Load Balancer Controller docs, "target-group-attributes"); the Service's
# externalTrafficPolicy plays no part with IP targets, which bypass kube-proxy.
AWS_PRESERVE_CLIENT_IP = {
    "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes": "preserve_client_ip.enabled=true"
}

# Load balancer annotations per cloud and exposure, for the gateway's Service.
_LOAD_BALANCER_ANNOTATIONS: dict[str, dict[str, dict[str, str]]] = {
    "aws": {
        "internal": {
            "service.beta.kubernetes.io/aws-load-balancer-type": "external",
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
            "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
            **AWS_PRESERVE_CLIENT_IP,
        },
        "external": {
            "service.beta.kubernetes.io/aws-load-balancer-type": "external",
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
            "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
            **AWS_PRESERVE_CLIENT_IP,
        },
    },
    "gcp": {
        # Global access: clients in other regions (the peered networks of a DR stack's other regions, after a Cloud
        # DNS failover) reach the regional internal load balancer (Cloud DNS, configure-routing-policies).
        "internal": {
            "networking.gke.io/load-balancer-type": "Internal",
            "networking.gke.io/internal-load-balancer-allow-global-access": "true",
        },
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
        # Keeps client addresses on GCP's and Azure's pass-through load balancers (no second hop through
        # another node); on AWS the target group attribute above does it.
        "externalTrafficPolicy": "Local",
    }


def gateway_values(cloud: str, exposure: str, tier: str) -> dict:
    """The gateway chart's values: its Service, replicas (two in prod), their spread over zones and nodes,
    and in prod a PodDisruptionBudget (the chart renders one only with more than one replica)."""
    replicas = 2 if tier == "prod" else 1
    pods = {"matchLabels": {"app": GATEWAY_RELEASE, **GATEWAY_SELECTOR}}
    values: dict = {
        "service": gateway_service_values(cloud, exposure),
        "autoscaling": {"minReplicas": replicas},
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": pods}
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
        ],
    }
    if replicas > 1:
        values["podDisruptionBudget"] = {"maxUnavailable": 1}
    return values


def cni_values(cloud: str) -> dict:
    """The `cni` chart's values per cloud. kind (kindnet) uses the chart's defaults (/opt/cni/bin, chained
    after the cluster's CNI); EKS (VPC CNI) and AKS (Azure CNI with Cilium) chain after theirs; GKE keeps
    CNI binaries in /home/kubernetes/bin, and its `gke` platform profile adds the ResourceQuota that GKE
    requires before system-node-critical pods run outside kube-system."""
    if cloud == "gcp":
        return {"cniBinDir": "/home/kubernetes/bin", "global": {"platform": "gke"}}
    if cloud in ("aws", "azure"):
        return {"chained": True}
    return {}


def istiod_values(tier: str) -> dict:
    replicas = 2 if tier == "prod" else 1
    return {
        # Injected pods get istio-validation instead of istio-init: the CNI agent redirects their traffic.
        "pilot": {"autoscaleMin": replicas, "replicaCount": replicas, "cni": {"enabled": True}},
        # The injected containers get the RuntimeDefault profile themselves: `restricted` requires one, and a
        # Knative revision's pod cannot carry a pod-level one (Knative's PodSpec field mask refuses it).
        "global": {"proxy": {"seccompProfile": {"type": "RuntimeDefault"}}},
        "meshConfig": {"accessLogFile": "/dev/stdout", "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}},
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
    cni: k8s.helm.v3.Release
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
            child(name, "system-ns"),
            metadata={"name": ISTIO_NAMESPACE, "labels": dict(ISTIO_NAMESPACE_LABELS)},
            opts=pulumi.ResourceOptions(parent=self),
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
        # Before istiod, as Istio's Helm guide orders it: no pod is injected before its node can redirect it.
        self.cni = k8s.helm.v3.Release(
            child(name, "cni"),
            name=CNI_RELEASE,
            chart="cni",
            version=args.chart.version,
            repository_opts=repo,
            namespace=ISTIO_NAMESPACE,
            values=cni_values(args.cloud),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[base]),
        )
        self.control_plane = k8s.helm.v3.Release(
            child(name, "istiod"),
            name="istiod",
            chart="istiod",
            version=args.chart.version,
            repository_opts=repo,
            namespace=ISTIO_NAMESPACE,
            values=istiod_values(args.tier),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[base, self.cni]),
        )
        self.gateway_release = k8s.helm.v3.Release(
            child(name, "gateway"),
            name=GATEWAY_RELEASE,
            chart="gateway",
            version=args.chart.version,
            repository_opts=repo,
            namespace=GATEWAY_NAMESPACE,
            values=gateway_values(args.cloud, args.gateway.exposure, args.tier),
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
