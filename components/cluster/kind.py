"""A Kind cluster, created with the `kind` CLI through pulumi-command on `pulumi up`."""

from __future__ import annotations

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s
import yaml

from components.cluster import ClusterArgs
from turnout.config import StackConfig, key_path
from turnout.errors import ConfigError, describe
from turnout.naming import child

KIND_VERSION = "v0.33.0"
# Node images built for KIND_VERSION, pinned by digest as its release notes require.
KIND_NODE_IMAGES = {
    "1.37": "kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5",
    "1.36": "kindest/node:v1.36.4@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed",
    "1.35": "kindest/node:v1.35.8@sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0",
    "1.34": "kindest/node:v1.34.11@sha256:44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d",
}
POOL_LABEL = "turnout.dev/pool"
# The ingress gateway's NodePorts, published on the host as 8080 (HTTP) and 8443 (HTTPS).
KIND_INGRESS_NODE_PORTS = {80: 30080, 443: 30443}
KIND_HOST_PORTS = {80: 8080, 443: 8443}
# Knative resolves a revision's image tag to a digest in its registry, except in these registries
# (its config-deployment `registries-skipping-tag-resolving` default). A `kind load`ed image is in no
# registry: named anywhere else, its revision never becomes ready.
KNATIVE_UNRESOLVED_REGISTRIES = ("kind.local", "ko.local", "dev.local")


def image_registry(image: str) -> str:
    """The registry an image reference names, read as Knative's resolver (go-containerregistry) reads it:
    the first path part when it looks like a host (a dot, a port or localhost), else Docker Hub."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return "index.docker.io"


def check_loaded_images(config: StackConfig) -> None:
    """On kind, an image in `platform.loadImages` that a Knative endpoint runs must be named under a
    registry Knative does not resolve tags in (or by digest, which it never resolves)."""
    if config.platform.cloud != "kind":
        return
    for index, image in enumerate(config.platform.load_images):
        registry = image_registry(image)
        if "@" in image or registry in KNATIVE_UNRESOLVED_REGISTRIES:
            continue
        users = [
            f"endpoints.{name}.versions.{version}.image"
            for name, endpoint in config.endpoints.items()
            if endpoint.backend == "knative"
            for version, spec in endpoint.versions.items()
            if spec.image == image
        ]
        if users:
            raise ConfigError(
                key_path(f"platform.loadImages[{index}]"),
                f"{describe(image)}, run by Knative ({key_path(users[0])}): Knative would look its tag up in "
                f"{registry}, where a kind-loaded image is not",
                "for images Knative runs, a name under "
                + ", ".join(f"{r}/" for r in KNATIVE_UNRESOLVED_REGISTRIES)
                + f" (e.g. kind.local/{image.rsplit('/', 1)[-1]}), the registries Knative never resolves; "
                "rename it in loadImages and in the versions that use it",
            )


def kind_cluster_config(args: ClusterArgs) -> dict:
    """The kind `Cluster` document: one control plane and each pool's `min` workers, labelled by pool."""
    image = KIND_NODE_IMAGES.get(args.kubernetes_version)
    if image is None:
        raise ConfigError(
            key_path("platform.kubernetesVersion"),
            f'"{args.kubernetes_version}" with cloud kind',
            f"a version with a kind {KIND_VERSION} node image: " + ", ".join(sorted(KIND_NODE_IMAGES)),
        )
    port_mappings = [
        {"containerPort": KIND_INGRESS_NODE_PORTS[port], "hostPort": KIND_HOST_PORTS[port], "protocol": "TCP"}
        for port in (80, 443)
    ]
    nodes: list[dict] = [{"role": "control-plane", "image": image, "extraPortMappings": port_mappings}]
    for pool in args.node_pools:
        nodes += [{"role": "worker", "image": image, "labels": {POOL_LABEL: pool.name}}] * pool.min
    return {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "name": args.cluster_name, "nodes": nodes}


class KindCluster(pulumi.ComponentResource):
    name: str
    region: str
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:cluster:KindCluster", name, None, opts)
        self.name = args.cluster_name
        self.region = args.region
        kind_config = yaml.safe_dump(kind_cluster_config(args), sort_keys=False)

        created = command.local.Command(
            child(name, "create"),
            create=f"kind create cluster --name {args.cluster_name} --config - --wait 180s",
            delete=f"kind delete cluster --name {args.cluster_name}",
            stdin=kind_config,
            triggers=[kind_config],
            # A changed config replaces the cluster under the same name: the old one must go first
            # (kind refuses to create "node(s) already exist for a cluster with the name").
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        kubeconfig = command.local.Command(
            child(name, "kubeconfig"),
            create=f"kind get kubeconfig --name {args.cluster_name}",
            triggers=[created.id],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[created], additional_secret_outputs=["stdout"]),
        )
        loaded = [
            command.local.Command(
                child(name, "load", str(index)),
                create=f"kind load docker-image {image} --name {args.cluster_name}",
                triggers=[created.id, image],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[created]),
            )
            for index, image in enumerate(args.load_images)
        ]
        self.kubeconfig = pulumi.Output.secret(kubeconfig.stdout)
        # The provider (and so everything deployed through it) waits for the images too.
        self.provider = k8s.Provider(
            child(name, "k8s"),
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[kubeconfig, *loaded]),
        )
        self.register_outputs({"name": self.name, "region": self.region, "kubeconfig": self.kubeconfig})
