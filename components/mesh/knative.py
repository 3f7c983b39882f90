"""Knative Serving with net-istio from the release manifests, configured for the tier."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from turnout.config import OptionalChart
from turnout.naming import child

KNATIVE_NAMESPACE = "knative-serving"
ISTIO_INGRESS_CLASS = "istio.ingress.networking.knative.dev"


def release_manifests(version: str, downloads: str) -> dict[str, str]:
    """The three release assets, in apply order: CRDs, core, and the Istio networking layer."""
    tag = f"knative-v{version}"
    return {
        "crds": f"{downloads}/knative/serving/releases/download/{tag}/serving-crds.yaml",
        "core": f"{downloads}/knative/serving/releases/download/{tag}/serving-core.yaml",
        "net-istio": f"{downloads}/knative-extensions/net-istio/releases/download/{tag}/net-istio.yaml",
    }


def serving_config(tier: str, domain: str) -> dict[str, dict[str, str]]:
    """The Knative ConfigMaps turnout owns (key → data), by the tier."""
    return {
        # prod never scales a serving revision to zero: the first request would wait for a cold start.
        "config-autoscaler": {"enable-scale-to-zero": "false" if tier == "prod" else "true"},
        # Tagged revisions (previews, dark launches) are reachable with the Knative-Serving-Tag header.
        "config-features": {"tag-header-based-routing": "Enabled"},
        "config-domain": {domain: ""},
        "config-network": {"ingress-class": ISTIO_INGRESS_CLASS, "domain-template": "{{.Name}}.{{.Domain}}"},
    }


@dataclass(frozen=True, kw_only=True)
class KnativeServingArgs:
    release: OptionalChart
    domain: str
    tier: str
    after: tuple[pulumi.Resource, ...]
    """The Istio control plane, which net-istio needs."""


class KnativeServing(pulumi.ComponentResource):
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: KnativeServingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:mesh:KnativeServing", name, None, opts)
        # Fetched by the Kubernetes provider at `pulumi up`; an offline plan records the URLs.
        urls = release_manifests(args.release.version, args.release.repository)
        crds = k8s.yaml.v2.ConfigFile(child(name, "crds"), file=urls["crds"], opts=pulumi.ResourceOptions(parent=self))
        core = k8s.yaml.v2.ConfigFile(
            child(name, "core"), file=urls["core"], opts=pulumi.ResourceOptions(parent=self, depends_on=[crds])
        )
        networking = k8s.yaml.v2.ConfigFile(
            child(name, "net-istio"),
            file=urls["net-istio"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[core, *args.after]),
        )
        patches = [
            k8s.core.v1.ConfigMapPatch(
                child(name, config_map),
                metadata={
                    "name": config_map,
                    "namespace": KNATIVE_NAMESPACE,
                    # turnout owns these keys even where the release manifest set them first.
                    "annotations": {"pulumi.com/patchForce": "true"},
                },
                data=data,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[core]),
            )
            for config_map, data in serving_config(args.tier, args.domain).items()
        ]
        self.ready = [core, networking, *patches]
        self.register_outputs({"version": args.release.version})
