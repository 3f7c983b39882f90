"""flagd (OpenFeature) serving one endpoint's flag, deployed with the flag's definition as config."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.endpoint.workload import checkov_skips, container_security, pod_security
from turnout.naming import child, labels
from turnout.strategies import FeatureFlag

FLAGD_IMAGE = "ghcr.io/open-feature/flagd:v0.16.0"
EVALUATION_PORT = 8013  # gRPC flag evaluation
OFREP_PORT = 8016  # OpenFeature Remote Evaluation Protocol over HTTP
MANAGEMENT_PORT = 8014  # /healthz, /readyz


def flag_definition(strategy: FeatureFlag) -> dict:
    """flagd's flag file: each variant evaluates to its own name, which callers send as x-turnout-variant."""
    return {
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "flags": {
            strategy.flag: {
                "state": "ENABLED",
                "variants": {variant: variant for variant in strategy.variants},
                "defaultVariant": strategy.default_variant,
            }
        },
    }


@dataclass(frozen=True, kw_only=True)
class FlagDaemonArgs:
    endpoint: str
    namespace: str
    tier: str
    strategy: FeatureFlag
    pull_policy: str
    after: tuple[pulumi.Resource, ...]


class FlagDaemon(pulumi.ComponentResource):
    def __init__(self, name: str, args: FlagDaemonArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:endpoint:FlagDaemon", name, None, opts)
        object_name = f"{args.endpoint}-flagd"
        object_labels = {**labels(args.endpoint, None, args.tier), "app.kubernetes.io/component": "flagd"}
        metadata = {"name": object_name, "namespace": args.namespace, "labels": object_labels}
        after = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        selector = {"app.kubernetes.io/name": args.endpoint, "app.kubernetes.io/component": "flagd"}
        flags = k8s.core.v1.ConfigMap(
            child(name, "flags"),
            metadata=metadata,
            data={"flags.json": json.dumps(flag_definition(args.strategy), indent=2, sort_keys=True)},
            opts=after,
        )
        account = k8s.core.v1.ServiceAccount(
            child(name, "sa"), metadata=metadata, automount_service_account_token=False, opts=after
        )
        probe = {"httpGet": {"port": "management"}, "periodSeconds": 10}
        k8s.apps.v1.Deployment(
            child(name, "deployment"),
            metadata={**metadata, "annotations": checkov_skips(FLAGD_IMAGE, args.pull_policy)},
            spec={
                "replicas": 2 if args.tier == "prod" else 1,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": {**object_labels, "app": object_name}},
                    "spec": {
                        "serviceAccountName": object_name,
                        "automountServiceAccountToken": False,
                        "securityContext": pod_security(),
                        "containers": [
                            {
                                "name": "flagd",
                                "image": FLAGD_IMAGE,
                                "imagePullPolicy": args.pull_policy,
                                "args": ["start", "--uri", "file:/etc/flagd/flags.json"],
                                "ports": [
                                    {"name": "grpc", "containerPort": EVALUATION_PORT},
                                    {"name": "management", "containerPort": MANAGEMENT_PORT},
                                    {"name": "http-ofrep", "containerPort": OFREP_PORT},
                                ],
                                "readinessProbe": {**probe, "httpGet": {"path": "/readyz", "port": "management"}},
                                "livenessProbe": {**probe, "httpGet": {"path": "/healthz", "port": "management"}},
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "64Mi"},
                                    "limits": {"cpu": "200m", "memory": "128Mi"},
                                },
                                "securityContext": container_security(),
                                "volumeMounts": [{"name": "flags", "mountPath": "/etc/flagd", "readOnly": True}],
                            }
                        ],
                        "volumes": [{"name": "flags", "configMap": {"name": object_name}}],
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.after, flags, account]),
        )
        k8s.core.v1.Service(
            child(name, "svc"),
            metadata=metadata,
            spec={
                "selector": selector,
                "ports": [
                    {"name": "grpc", "port": EVALUATION_PORT, "targetPort": "grpc", "appProtocol": "grpc"},
                    {"name": "http-ofrep", "port": OFREP_PORT, "targetPort": "http-ofrep", "appProtocol": "http"},
                ],
            },
            opts=after,
        )
        k8s.networking.v1.NetworkPolicy(
            child(name, "netpol"),
            metadata={**metadata, "name": f"{object_name}-evaluation"},
            spec={
                "podSelector": {"matchLabels": selector},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [{"namespaceSelector": {}}],
                        "ports": [
                            {"port": EVALUATION_PORT, "protocol": "TCP"},
                            {"port": OFREP_PORT, "protocol": "TCP"},
                        ],
                    }
                ],
            },
            opts=after,
        )
        # Any workload of the mesh may evaluate the flag; the namespace denies everything else.
        k8s.apiextensions.CustomResource(
            child(name, "allow-evaluation"),
            api_version="security.istio.io/v1",
            kind="AuthorizationPolicy",
            metadata={**metadata, "name": f"allow-{object_name}"},
            spec={
                "selector": {"matchLabels": selector},
                "action": "ALLOW",
                "rules": [
                    {
                        "from": [{"source": {"principals": ["*"]}}],
                        "to": [{"operation": {"ports": [str(EVALUATION_PORT), str(OFREP_PORT)]}}],
                    }
                ],
            },
            opts=after,
        )
        self.register_outputs({"service": f"{object_name}.{args.namespace}"})
