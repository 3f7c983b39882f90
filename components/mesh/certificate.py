"""The gateway's certificate, from the source `gateway.tls.issuer` names: a self-signed one made with openssl on
`pulumi up` (kind), cert-manager (acme or private-ca, `cert_manager.py`), or the stack's own Secret (secret)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from components.mesh.cert_manager import CHART_VERSION, CertManager, CertManagerArgs, issuer_name, uses_cert_manager
from components.mesh.dns01 import Dns01Identity
from turnout.config import Gateway
from turnout.naming import child

_PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----\n?", re.S)


def split_pems(text: str) -> dict[str, str]:
    """openssl prints the key and the certificate to one stream; tell them apart by their labels."""
    found = {}
    for match in _PEM.finditer(text or ""):
        label = "tls.crt" if match.group(1) == "CERTIFICATE" else "tls.key"
        found[label] = match.group(0)
    return found


@dataclass(frozen=True, kw_only=True)
class SelfSignedCertificateArgs:
    domain: str
    secret_name: str
    namespace: str
    after: tuple[pulumi.Resource, ...]
    """The namespace the secret goes in."""


class SelfSignedCertificate(pulumi.ComponentResource):
    secret: k8s.core.v1.Secret

    def __init__(self, name: str, args: SelfSignedCertificateArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:mesh:SelfSignedCertificate", name, None, opts)
        subject = f"*.{args.domain}"
        generated = command.local.Command(
            child(name, "openssl"),
            create=(
                "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 "
                f'-subj "/CN={subject}" -addext "subjectAltName=DNS:{subject},DNS:{args.domain}" '
                "-keyout /dev/stdout -out /dev/stdout 2>/dev/null"
            ),
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stdout"]),
        )
        pems = pulumi.Output.secret(generated.stdout).apply(split_pems)
        self.secret = k8s.core.v1.Secret(
            child(name, "secret"),
            metadata={"name": args.secret_name, "namespace": args.namespace},
            type="kubernetes.io/tls",
            string_data=pems,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        self.register_outputs({"secret": args.secret_name})


@dataclass(frozen=True, kw_only=True)
class GatewayTlsArgs:
    gateway: Gateway
    """Validated settings: `tls.issuer` and `domain` resolved."""
    cloud: str
    tier: str
    namespace: str
    """The gateway's namespace, where the Secret it serves must be."""
    cluster: pulumi.ComponentResource | None = None
    """The cluster component (acme: its workload identity attributes)."""
    after: tuple[pulumi.Resource, ...] = ()


@dataclass(frozen=True)
class GatewayTlsSource:
    summary: str
    """What the plan shows per cluster: `acme letsencrypt (Route 53 Z...)`, `private-ca`, `secret NAME (yours)`."""
    cert_manager: str | None
    """The cert-manager chart version, where it is installed."""


def gateway_tls(name: str, args: GatewayTlsArgs, opts: pulumi.ResourceOptions) -> GatewayTlsSource:
    """Create what makes the Secret the gateway serves, as `tls.issuer` says; nothing for `secret`."""
    gateway = args.gateway
    issuer = gateway.tls.issuer
    if issuer == "self-signed":
        SelfSignedCertificate(
            name,
            SelfSignedCertificateArgs(
                domain=gateway.domain, secret_name=gateway.certificate, namespace=args.namespace, after=args.after
            ),
            opts,
        )
        return GatewayTlsSource(f"self-signed {gateway.certificate} (openssl)", None)
    if not uses_cert_manager(issuer):
        return GatewayTlsSource(f"secret {gateway.certificate} (yours)", None)
    identity = dns01_identity(name, args, opts) if issuer == "acme" else None
    CertManager(
        name,
        CertManagerArgs(
            gateway=gateway,
            cluster_name=getattr(args.cluster, "name", name),
            tier=args.tier,
            gateway_namespace=args.namespace,
            identity=identity,
            after=args.after,
        ),
        opts,
    )
    where = f", {identity.zone}" if identity else ""
    return GatewayTlsSource(f"{issuer} {issuer_name(gateway)}{where}", CHART_VERSION)


def dns01_identity(name: str, args: GatewayTlsArgs, opts: pulumi.ResourceOptions) -> Dns01Identity:
    """The cluster's cloud identity for cert-manager's DNS-01 records, from the cloud's own module."""
    cluster, zone = args.cluster, args.gateway.tls.dns_zone
    identity_name = child(name, "dns01")
    if args.cloud == "aws":
        from components.mesh.dns01_aws import Route53Dns01, Route53Dns01Args

        return Route53Dns01(
            identity_name,
            Route53Dns01Args(
                cluster_name=cluster.name,
                region=cluster.region,
                oidc_provider_arn=cluster.oidc_provider_arn,
                oidc_issuer=cluster.oidc_issuer,
                hosted_zone_id=zone,
            ),
            opts,
        ).identity
    if args.cloud == "gcp":
        from components.mesh.dns01_gcp import CloudDnsDns01, CloudDnsDns01Args

        return CloudDnsDns01(
            identity_name,
            CloudDnsDns01Args(cluster_name=cluster.name, workload_pool=cluster.workload_pool, zone=zone),
            opts,
        ).identity
    if args.cloud == "azure":
        from components.mesh.dns01_azure import AzureDnsDns01, AzureDnsDns01Args

        return AzureDnsDns01(
            identity_name,
            AzureDnsDns01Args(
                cluster_name=cluster.name,
                region=cluster.region,
                resource_group_name=cluster.resource_group_name,
                oidc_issuer=cluster.oidc_issuer,
                zone_id=zone,
            ),
            opts,
        ).identity
    raise ValueError(f"no DNS-01 identity on cloud {args.cloud}")  # config validation refuses acme there
