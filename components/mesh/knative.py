"""Knative Serving with net-istio from the release manifests, configured for the tier.

Knative's public routes are served through turnout's HTTPS Gateway (`istio-system/turnout-gateway`),
not through the plain-HTTP `knative-serving/knative-ingress-gateway` that net-istio ships.

`knative-serving` joins the mesh, as Knative's "Enabling requests to Knative services when additional
authorization policies are enabled" asks: under STRICT mTLS, model pods refuse the activator's and the
autoscaler's plaintext, and an AuthorizationPolicy's `source.namespaces` matches only mTLS peers. The
API server still reaches the (now injected) webhooks on port 8443 through the port-level PERMISSIVE
PeerAuthentications that net-istio ships for them; serving's `controller` stays out of the mesh, as
net-istio's own controller does: it resolves image tags at their registries, which the mesh's
REGISTRY_ONLY egress would refuse."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.mesh.istio import GATEWAY_NAME, GATEWAY_NAMESPACE, GATEWAY_RELEASE, GATEWAY_SELECTOR
from turnout.config import OptionalChart
from turnout.naming import child

KNATIVE_NAMESPACE = "knative-serving"
ISTIO_INGRESS_CLASS = "istio.ingress.networking.knative.dev"
# A route's public host is `<route>.<domain>`: turnout names each Route after its endpoint, in the
# endpoint's own namespace, so the namespace adds nothing but a second label that the Gateway's
# `*.<domain>` certificate would not cover.
DOMAIN_TEMPLATE = "{{.Name}}.{{.Domain}}"
# net-istio's own Gateways and the Service in front of its cluster-local one, as net-istio.yaml ships them.
SHIPPED_INGRESS_GATEWAY = "knative-ingress-gateway"
SHIPPED_LOCAL_GATEWAY = "knative-local-gateway"
SHIPPED_LOCAL_GATEWAY_SERVICE = "knative-local-gateway.istio-system.svc.cluster.local"
RELEASE_ANNOTATION = "turnout.dev/knative-release"
# serving-core.yaml's Deployment that resolves image tags to digests (pkg/reconciler/revision/resolve.go).
TAG_RESOLVING_DEPLOYMENT = "controller"
INJECTION_LABEL = "istio-injection"
POD_INJECTION_LABEL = "sidecar.istio.io/inject"
# Pod-spec fields of turnout's revisions that Knative's webhook refuses unless config-features enables them
# (pkg/apis/serving/fieldmask.go): GPU versions tolerate the GPU taint and select GPU nodes.
REVISION_FEATURES = {
    "kubernetes.podspec-tolerations": "Enabled",
    "kubernetes.podspec-nodeselector": "Enabled",
}


def release_manifests(version: str, downloads: str) -> dict[str, str]:
    """The three release assets, in apply order: CRDs, core, and the Istio networking layer."""
    tag = f"knative-v{version}"
    return {
        "crds": f"{downloads}/knative/serving/releases/download/{tag}/serving-crds.yaml",
        "core": f"{downloads}/knative/serving/releases/download/{tag}/serving-core.yaml",
        "net-istio": f"{downloads}/knative-extensions/net-istio/releases/download/{tag}/net-istio.yaml",
    }


def serving_config(tier: str, domain: str) -> dict[str, dict[str, str]]:
    """The serving-core ConfigMaps turnout owns (key → data), by the tier."""
    return {
        # prod never scales a serving revision to zero: the first request would wait for a cold start.
        "config-autoscaler": {"enable-scale-to-zero": "false" if tier == "prod" else "true"},
        # Tagged revisions (previews, dark launches) are reachable with the Knative-Serving-Tag header.
        "config-features": {"tag-header-based-routing": "Enabled", **REVISION_FEATURES},
        "config-domain": {domain: ""},
        "config-network": {
            "ingress-class": ISTIO_INGRESS_CLASS,
            "domain-template": DOMAIN_TEMPLATE,
            # Redirected would make net-istio bind routes to per-route HTTP Gateways instead of turnout's;
            # turnout's Gateway already redirects port 80 to HTTPS.
            "http-protocol": "Enabled",
            # Routes report the scheme they are served with: turnout's Gateway serves them over HTTPS.
            "default-external-scheme": "https",
        },
    }


def mesh_enrolment(resource_type: str, props: Mapping) -> dict | None:
    """serving-core.yaml's objects as `knative-serving` joins the mesh: its Namespace labelled for sidecar
    injection, the tag-resolving `controller`'s pods opted out. None for every other object (unchanged).

    Applied as the release is created, so the Namespace exists labelled before any of its pods."""
    metadata = props.get("metadata") or {}
    if resource_type == "kubernetes:core/v1:Namespace" and metadata.get("name") == KNATIVE_NAMESPACE:
        changed = copy.deepcopy(dict(props))
        changed["metadata"].setdefault("labels", {})[INJECTION_LABEL] = "enabled"
        return changed
    if (
        resource_type == "kubernetes:apps/v1:Deployment"
        and metadata.get("namespace") == KNATIVE_NAMESPACE
        and metadata.get("name") == TAG_RESOLVING_DEPLOYMENT
    ):
        changed = copy.deepcopy(dict(props))
        template = changed.setdefault("spec", {}).setdefault("template", {}).setdefault("metadata", {})
        template.setdefault("labels", {})[POD_INJECTION_LABEL] = "false"
        return changed
    return None


def _enrol_in_mesh(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    props = mesh_enrolment(args.type_, args.props)
    return None if props is None else pulumi.ResourceTransformResult(props=props, opts=args.opts)


def _gateway_list(namespace: str, name: str, service: str) -> str:
    return f"- name: {name}\n  namespace: {namespace}\n  service: {service}\n"


def istio_config() -> dict[str, str]:
    """net-istio's `config-istio` data: public routes bind to turnout's Gateway, served by the
    `istio-ingressgateway` Service; cluster-local routes keep net-istio's local gateway as shipped.

    The YAML-list keys (net-istio ≥ 1.14); net-istio refuses a ConfigMap that also sets the older
    `gateway.<ns>.<name>` / `local-gateway.<ns>.<name>` keys, which its release only shows in `_example`.
    """
    ingress_service = f"{GATEWAY_RELEASE}.{GATEWAY_NAMESPACE}.svc.cluster.local"
    return {
        "external-gateways": _gateway_list(GATEWAY_NAMESPACE, GATEWAY_NAME, ingress_service),
        "local-gateways": _gateway_list(KNATIVE_NAMESPACE, SHIPPED_LOCAL_GATEWAY, SHIPPED_LOCAL_GATEWAY_SERVICE),
    }


def shipped_gateway_spec() -> dict:
    """net-istio's `knative-ingress-gateway` (port 80, plain HTTP, every host, on turnout's gateway pods)
    reduced to a redirect: no route binds to it any more, and nothing may answer in cleartext."""
    return {
        "selector": dict(GATEWAY_SELECTOR),
        "servers": [
            {
                "port": {"number": 80, "name": "http", "protocol": "HTTP"},
                "hosts": ["*"],
                "tls": {"httpsRedirect": True},
            }
        ],
    }


@dataclass(frozen=True, kw_only=True)
class KnativeServingArgs:
    release: OptionalChart
    domain: str
    tier: str
    after: tuple[pulumi.Resource, ...]
    """The Istio control plane, which net-istio needs and whose injector must be up before Knative's pods."""


class KnativeServing(pulumi.ComponentResource):
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: KnativeServingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:mesh:KnativeServing", name, None, opts)
        # Fetched by the Kubernetes provider at `pulumi up`; an offline plan records the URLs.
        urls = release_manifests(args.release.version, args.release.repository)
        crds = k8s.yaml.v2.ConfigFile(child(name, "crds"), file=urls["crds"], opts=pulumi.ResourceOptions(parent=self))
        core = k8s.yaml.v2.ConfigFile(
            child(name, "core"),
            file=urls["core"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[crds, *args.after], transforms=[_enrol_in_mesh]),
        )
        networking = k8s.yaml.v2.ConfigFile(
            child(name, "net-istio"),
            file=urls["net-istio"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[core, *args.after]),
        )
        # ConfigMap → (data, the release manifest that ships it).
        settings = {config_map: (data, core) for config_map, data in serving_config(args.tier, args.domain).items()}
        settings["config-istio"] = (istio_config(), networking)
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
                opts=pulumi.ResourceOptions(parent=self, depends_on=[shipped_in]),
            )
            for config_map, (data, shipped_in) in settings.items()
        ]
        redirect = k8s.apiextensions.CustomResourcePatch(
            child(name, "ingress-gateway-redirect"),
            api_version="networking.istio.io/v1",
            kind="Gateway",
            metadata={
                "name": SHIPPED_INGRESS_GATEWAY,
                "namespace": KNATIVE_NAMESPACE,
                "annotations": {
                    "pulumi.com/patchForce": "true",
                    # A new release re-applies the shipped servers; the changed patch then re-applies the redirect.
                    RELEASE_ANNOTATION: args.release.version,
                },
            },
            spec=shipped_gateway_spec(),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[networking]),
        )
        self.ready = [core, networking, *patches, redirect]
        self.register_outputs({"version": args.release.version})
