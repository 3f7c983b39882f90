"""The versions an experiment agent calls itself (an interleaved endpoint's control and treatment, a compared
shadow and its primary): a ClusterIP Service per version that only the agent is allowed to call, so that its
calls reach that version directly instead of going through the endpoint's VirtualService again."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.endpoint.agent_experiments import VERSION_PORT, version_service
from components.endpoint.workload import selector
from turnout.naming import child, k8s_name, labels


@dataclass(frozen=True, kw_only=True)
class AgentBackendsArgs:
    endpoint: str
    namespace: str
    tier: str
    versions: tuple[str, ...]
    agent_principal: str
    """The agent's SPIFFE identity (TRUST_DOMAIN/ns/NS/sa/SA): the only caller the versions' policy adds."""
    after: tuple[pulumi.Resource, ...]


class AgentBackends(pulumi.ComponentResource):
    def __init__(self, name: str, args: AgentBackendsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:endpoint:AgentBackends", name, None, opts)
        mine = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        object_labels = labels(args.endpoint, None, args.tier)
        for version in args.versions:
            k8s.core.v1.Service(
                child(name, version),
                metadata={
                    "name": version_service(args.endpoint, version),
                    "namespace": args.namespace,
                    "labels": {
                        **labels(args.endpoint, version, args.tier),
                        "app.kubernetes.io/component": "agent-backend",
                    },
                },
                spec={
                    "type": "ClusterIP",
                    "selector": selector(args.endpoint, version),
                    "ports": [
                        {
                            "name": "http",
                            "port": VERSION_PORT,
                            "targetPort": "http",
                            "protocol": "TCP",
                            "appProtocol": "http",
                        }
                    ],
                },
                opts=mine,
            )
        # The namespace denies every caller but the ingress gateway; the agent is allowed to the versions it calls.
        k8s.apiextensions.CustomResource(
            child(name, "allow-agent"),
            api_version="security.istio.io/v1",
            kind="AuthorizationPolicy",
            metadata={
                "name": k8s_name("allow", args.endpoint, "agent-calls"),
                "namespace": args.namespace,
                "labels": object_labels,
            },
            spec={
                "selector": {"matchLabels": {"app.kubernetes.io/name": args.endpoint}},
                "action": "ALLOW",
                "rules": [{"from": [{"source": {"principals": [args.agent_principal]}}]}],
            },
            opts=mine,
        )
        self.register_outputs({"versions": list(args.versions)})
