"""tls-on-public-gateways, the certificate half: a Gateway's credentialName is a Secret the stack makes on the same
cluster in the Gateway's namespace (or that cert-manager writes there), unless the Gateway says the stack brings
its own. The cases run in tests/test_policies.py with every rule's."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from tests.policy_cases import fails, missing, passes
from tests.test_policies_mesh import SIMPLE, custom, gateway, server, tls_secrets

NOT_MADE = (
    "istio-system/public: server https (port 443) serves the Secret models-tls, which nothing in the stack creates "
    "in istio-system (no Secret and no cert-manager Certificate writes it)."
)


def certificate(secret_name="models-tls", namespace="istio-system", opts=None):
    spec = {"dnsNames": ["*.models.example.com"], "issuerRef": {"name": "turnout-private-ca", "kind": "ClusterIssuer"}}
    if secret_name:
        spec["secretName"] = secret_name
    return custom(
        f"cert-{namespace}", "cert-manager.io/v1", "Certificate", {"name": "gw", "namespace": namespace}, spec, opts
    )


def own_secret_gateway():
    return custom(
        "gw",
        "networking.istio.io/v1",
        "Gateway",
        {"name": "public", "namespace": "istio-system", "annotations": {"turnout.dev/tls-issuer": "secret"}},
        {"selector": {"istio": "ingressgateway"}, "servers": [server(tls=SIMPLE)]},
    )


def on_another_cluster():
    gateway(server(tls=SIMPLE))
    west = pulumi.ResourceOptions(provider=k8s.Provider("west", kubeconfig="apiVersion: v1"))
    k8s.core.v1.Secret("west-tls", metadata={"name": "models-tls", "namespace": "istio-system"}, opts=west)


CASES = {
    "tls-on-public-gateways": [
        passes(lambda: (gateway(server(tls=SIMPLE)), certificate())),
        passes(lambda: (gateway(server(tls=SIMPLE)), tls_secrets("models-tls"))),
        passes(own_secret_gateway),  # the stack brings it: `tls.issuer: secret`
        fails(lambda: gateway(server(tls=SIMPLE)), NOT_MADE),
        fails(lambda: (gateway(server(tls=SIMPLE)), certificate(namespace="models")), NOT_MADE),  # Istio reads its own
        fails(on_another_cluster, NOT_MADE),
        missing(lambda: (gateway(server(tls=SIMPLE)), certificate(secret_name=None)), NOT_MADE),
    ],
}
