"""cert-manager on one cluster, issuing the gateway's certificate (`*.<domain>` and `<domain>`) into the Secret the
Istio Gateway serves (`gateway.certificate`, in istio-system), from the issuer `gateway.tls` chose:

- acme: Let's Encrypt (production or staging, as the stack says), proving the domain with DNS-01 records that
  cert-manager writes with the cluster's workload identity (`dns01_aws.py`, `dns01_gcp.py`, `dns01_azure.py`);
  DNS-01 needs no inbound reachability, so it works for internal gateways and wildcard names alike.
- private-ca: a self-signed root (cert-manager's SelfSigned issuer, kept in cert-manager's namespace) and a CA
  ClusterIssuer signing with it, for domains no public CA can validate (`models.internal`).

The official chart (`charts.jetstack.io`), pinned, installs its CRDs itself (`crds.enabled`; the chart has no
`crds/` folder, so there is exactly one copy) and keeps them when the release is uninstalled (`crds.keep`), so
deleting the release never garbage-collects the Certificates. Its namespace enforces the `restricted` Pod Security
Standard, which the chart's pods meet with the security contexts set below.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.mesh.dns01 import NAMESPACE, SERVICE_ACCOUNT, Dns01Identity
from turnout.config import Gateway
from turnout.naming import child

CHART = "cert-manager"
CHART_REPOSITORY = "https://charts.jetstack.io"
CHART_VERSION = "v1.21.1"
API_VERSION = "cert-manager.io/v1"
ACME_SERVERS = {
    "letsencrypt": "https://acme-v02.api.letsencrypt.org/directory",
    "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}
SELF_SIGNED_ISSUER = "turnout-self-signed"
PRIVATE_CA_ISSUER = PRIVATE_CA_SECRET = "turnout-private-ca"
GATEWAY_CERTIFICATE = "turnout-gateway"
# The root lives ten years and keeps its key when renewed, so clients that trust it keep trusting it; the
# gateway's certificate lives 90 days and is renewed (with a new key) 30 days before it expires.
CA_DURATION, CA_RENEW_BEFORE = "87600h", "720h"
LEAF_DURATION, LEAF_RENEW_BEFORE = "2160h", "720h"
PRIVATE_KEY = {"algorithm": "ECDSA", "size": 256}

# The restricted Pod Security Standard, stated for every pod of the chart rather than left to its defaults.
POD_SECURITY = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
}
NAMESPACE_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    # Outside the mesh: the API server calls the webhook without a sidecar certificate (STRICT mTLS would refuse
    # it), and the controller only talks to the API server, the ACME CA and the cloud's DNS API.
    "istio-injection": "disabled",
}
COMPONENT_RESOURCES = {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}


def uses_cert_manager(issuer: str) -> bool:
    return issuer in ("acme", "private-ca")


def issuer_name(gateway: Gateway) -> str:
    """The ClusterIssuer that signs the gateway's certificate: one per ACME server, so staging and production
    keep separate accounts."""
    tls = gateway.tls
    return f"turnout-{tls.server}" if tls.issuer == "acme" else PRIVATE_CA_ISSUER


def chart_values(tier: str, identity: Dns01Identity | None = None, annotations: dict | None = None) -> dict:
    """The chart's values: CRDs from the chart, restricted security contexts, two replicas and a PDB per
    component in prod, and the controller's ServiceAccount named (the one the cloud trusts) with the
    identity's annotations and pod labels."""
    replicas = 2 if tier == "prod" else 1
    availability = {"replicaCount": replicas, "podDisruptionBudget": {"enabled": replicas > 1}}
    hardened = {"securityContext": POD_SECURITY, "containerSecurityContext": CONTAINER_SECURITY}
    return {
        "crds": {"enabled": True, "keep": True},
        **availability,
        **hardened,
        "resources": COMPONENT_RESOURCES,
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT, "annotations": dict(annotations or {})},
        "podLabels": dict(identity.pod_labels) if identity else {},
        "webhook": {**availability, **hardened, "resources": COMPONENT_RESOURCES},
        "cainjector": {**availability, **hardened, "resources": COMPONENT_RESOURCES},
        "startupapicheck": {**hardened},
    }


def self_signed_issuer_spec() -> dict:
    return {"selfSigned": {}}


def private_ca_certificate_spec(cluster: str) -> dict:
    """The private root: a CA certificate the SelfSigned issuer signs, in cert-manager's namespace (where a CA
    ClusterIssuer reads its key)."""
    return {
        "isCA": True,
        "commonName": f"turnout private CA ({cluster})",
        "secretName": PRIVATE_CA_SECRET,
        "duration": CA_DURATION,
        "renewBefore": CA_RENEW_BEFORE,
        "privateKey": {**PRIVATE_KEY, "rotationPolicy": "Never"},
        "issuerRef": {"name": SELF_SIGNED_ISSUER, "kind": "ClusterIssuer", "group": "cert-manager.io"},
    }


def private_ca_issuer_spec() -> dict:
    return {"ca": {"secretName": PRIVATE_CA_SECRET}}


def acme_issuer_spec(gateway: Gateway, domain: str, solver: dict) -> dict:
    """An ACME account on the chosen Let's Encrypt server, solving DNS-01 for the domain (and its subdomains)."""
    tls = gateway.tls
    acme: dict = {
        "server": ACME_SERVERS[tls.server],
        "privateKeySecretRef": {"name": f"turnout-{tls.server}-account"},
        "solvers": [{"selector": {"dnsZones": [domain]}, "dns01": solver}],
    }
    if tls.email:
        acme["email"] = tls.email
    return {"acme": acme}


def gateway_certificate_spec(gateway: Gateway, domain: str) -> dict:
    """The gateway's certificate, for every endpoint host (`*.<domain>`) and the domain itself."""
    spec = {
        "secretName": gateway.certificate,
        "dnsNames": [f"*.{domain}", domain],
        "privateKey": {**PRIVATE_KEY, "rotationPolicy": "Always"},
        "issuerRef": {"name": issuer_name(gateway), "kind": "ClusterIssuer", "group": "cert-manager.io"},
    }
    if gateway.tls.issuer == "private-ca":  # an ACME CA sets its own lifetime
        spec |= {"duration": LEAF_DURATION, "renewBefore": LEAF_RENEW_BEFORE}
    return spec


@dataclass(frozen=True, kw_only=True)
class CertManagerArgs:
    gateway: Gateway
    """The gateway settings, validated: `tls.issuer` is acme or private-ca, `domain` resolved."""
    cluster_name: str
    tier: str
    gateway_namespace: str
    identity: Dns01Identity | None = None
    """acme only: the cloud identity that writes the DNS-01 records."""
    after: tuple[pulumi.Resource, ...] = ()
    """The gateway's namespace, which the certificate goes in."""


class CertManager(pulumi.ComponentResource):
    namespace: k8s.core.v1.Namespace
    release: k8s.helm.v3.Release
    certificate: k8s.apiextensions.CustomResource
    """The gateway's Certificate; cert-manager writes the Secret the Gateway serves."""

    def __init__(self, name: str, args: CertManagerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:mesh:CertManager", name, None, opts)
        gateway, domain = args.gateway, args.gateway.domain
        identity = args.identity
        if gateway.tls.issuer == "acme" and identity is None:
            raise ValueError("an acme issuer needs the cluster's DNS-01 identity")
        self.namespace = k8s.core.v1.Namespace(
            child(name, "ns"),
            metadata={"name": NAMESPACE, "labels": dict(NAMESPACE_LABELS)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        annotations = identity.service_account_annotations if identity else {}
        self.release = k8s.helm.v3.Release(
            child(name, "chart"),
            name=CHART,
            chart=CHART,
            version=CHART_VERSION,
            repository_opts={"repo": CHART_REPOSITORY},
            namespace=NAMESPACE,
            values=pulumi.Output.from_input(annotations).apply(lambda found: chart_values(args.tier, identity, found)),
            # The controller assumes its cloud identity as it starts: grants first.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.namespace, *(identity.ready if identity else ())]
            ),
        )
        # Custom resources wait for the release: its CRDs, and its webhook, which validates them.
        after_release = pulumi.ResourceOptions(parent=self, depends_on=[self.release])
        if gateway.tls.issuer == "acme":
            issuers = [
                self._cluster_issuer(
                    name,
                    issuer_name(gateway),
                    pulumi.Output.from_input(identity.solver).apply(
                        lambda solver: acme_issuer_spec(gateway, domain, solver)
                    ),
                    after_release,
                )
            ]
        else:
            self_signed = self._cluster_issuer(name, SELF_SIGNED_ISSUER, self_signed_issuer_spec(), after_release)
            root = k8s.apiextensions.CustomResource(
                child(name, "private-ca-root"),
                api_version=API_VERSION,
                kind="Certificate",
                metadata={"name": PRIVATE_CA_SECRET, "namespace": NAMESPACE},
                spec=private_ca_certificate_spec(args.cluster_name),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release, self_signed]),
            )
            issuers = [
                self._cluster_issuer(
                    name,
                    PRIVATE_CA_ISSUER,
                    private_ca_issuer_spec(),
                    pulumi.ResourceOptions(parent=self, depends_on=[self.release, root]),
                )
            ]
        self.certificate = k8s.apiextensions.CustomResource(
            child(name, "gateway"),
            api_version=API_VERSION,
            kind="Certificate",
            metadata={"name": GATEWAY_CERTIFICATE, "namespace": args.gateway_namespace},
            spec=gateway_certificate_spec(gateway, domain),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release, *issuers, *args.after]),
        )
        self.register_outputs({"version": CHART_VERSION, "issuer": issuer_name(gateway)})

    def _cluster_issuer(
        self, name: str, issuer: str, spec: pulumi.Input[dict], opts: pulumi.ResourceOptions
    ) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            child(name, issuer.removeprefix("turnout-")),
            api_version=API_VERSION,
            kind="ClusterIssuer",
            metadata={"name": issuer},
            spec=spec,
            opts=opts,
        )
