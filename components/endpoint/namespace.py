"""A model's namespace: restricted pods, Istio sidecars, and nothing reaches it unless allowed."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from turnout.naming import child, labels


def authorization_policies(namespace: str, allowed_principals: list[str], allowed_namespaces: list[str]) -> dict:
    """Policy name → spec: deny everything, then allow only the named callers."""
    policies: dict[str, dict] = {"deny-all": {}}  # an empty spec matches no request, so all are denied
    if allowed_principals:
        policies["allow-ingress-gateway"] = {
            "action": "ALLOW",
            "rules": [{"from": [{"source": {"principals": sorted(allowed_principals)}}]}],
        }
    if allowed_namespaces:
        policies["allow-platform-controllers"] = {
            "action": "ALLOW",
            "rules": [{"from": [{"source": {"namespaces": sorted(allowed_namespaces)}}]}],
        }
    return policies


@dataclass(frozen=True, kw_only=True)
class ModelNamespaceArgs:
    namespace: str
    endpoint: str
    tier: str
    allowed_principals: list[str]
    """Workload identities allowed in (the ingress gateway)."""
    allowed_namespaces: list[str]
    """Namespaces whose controllers must reach the pods (Knative's activator)."""
    platform_namespaces: tuple[str, ...]
    """Namespaces allowed to open connections at all (NetworkPolicy, beneath the mesh's policies)."""
    after: tuple[pulumi.Resource, ...]
    """The serving platform: Istio's CRDs and webhooks must exist first."""


class ModelNamespace(pulumi.ComponentResource):
    namespace: k8s.core.v1.Namespace

    def __init__(self, name: str, args: ModelNamespaceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:endpoint:ModelNamespace", name, None, opts)
        self.namespace = k8s.core.v1.Namespace(
            child(name, "ns"),
            metadata={
                "name": args.namespace,
                "labels": {
                    **labels(args.endpoint, None, args.tier),
                    "istio-injection": "enabled",
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        for policy, spec in authorization_policies(
            args.namespace, args.allowed_principals, args.allowed_namespaces
        ).items():
            k8s.apiextensions.CustomResource(
                child(name, policy),
                api_version="security.istio.io/v1",
                kind="AuthorizationPolicy",
                metadata={
                    "name": policy,
                    "namespace": args.namespace,
                    "labels": labels(args.endpoint, None, args.tier),
                },
                spec=spec,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace, *args.after]),
            )
        # Beneath the mesh: only the platform's namespaces and the namespace itself may connect at all.
        k8s.networking.v1.NetworkPolicy(
            child(name, "ingress-netpol"),
            metadata={
                "name": "platform-ingress-only",
                "namespace": args.namespace,
                "labels": labels(args.endpoint, None, args.tier),
            },
            spec={
                "podSelector": {},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            *(
                                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
                                for ns in args.platform_namespaces
                            ),
                            {"podSelector": {}},
                        ]
                    }
                ],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace]),
        )
        self.register_outputs({"namespace": args.namespace})
