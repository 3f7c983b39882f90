"""The fleet: one cluster per configured region, on the configured cloud."""

from __future__ import annotations

import importlib
import importlib.util

import pulumi

from components.cluster import ClusterArgs
from turnout.config import Platform, key_path
from turnout.errors import NotSupportedError
from turnout.naming import cluster_name

# Each cloud's component, by module and class; a cloud whose module is not there yet is refused by name.
CLUSTER_COMPONENTS = {
    "kind": ("components.cluster.kind", "KindCluster"),
    "aws": ("components.cluster.eks", "EksCluster"),
    "gcp": ("components.cluster.gke", "GkeCluster"),
    "azure": ("components.cluster.aks", "AksCluster"),
}


def available_clouds() -> list[str]:
    return [cloud for cloud, (module, _) in CLUSTER_COMPONENTS.items() if importlib.util.find_spec(module) is not None]


def check_cloud(platform: Platform) -> type:
    """The cluster component for the configured cloud, or NotSupportedError naming the key."""
    module, cls = CLUSTER_COMPONENTS[platform.cloud]
    if importlib.util.find_spec(module) is None:
        raise NotSupportedError(
            key_path("platform.cloud"), repr(platform.cloud), "cloud " + ", ".join(available_clouds())
        )
    return getattr(importlib.import_module(module), cls)


class Fleet(pulumi.ComponentResource):
    clusters: list[pulumi.ComponentResource]
    """Cluster components of one interface: name, region, kubeconfig, provider."""

    def __init__(
        self,
        name: str,
        platform: Platform,
        stack: str,
        opts: pulumi.ResourceOptions | None = None,
        regions: tuple[str, ...] | None = None,
        tier: str = "dev",
    ) -> None:
        """`regions`: the regions that get a cluster now (default: every configured region); a
        backup-restore DR tier builds only the primary and restores elsewhere after a loss. `tier`: the
        stack's `turnout:tier`."""
        super().__init__("turnout:cluster:Fleet", name, None, opts)
        component = check_cloud(platform)
        self.platform = platform
        self.clusters = []
        for region in platform.regions if regions is None else regions:
            cluster = cluster_name(stack, region)
            args = ClusterArgs(
                cluster_name=cluster,
                region=region,
                kubernetes_version=platform.kubernetes_version,
                node_pools=platform.node_pools,
                tier=tier,
                api_access=platform.api_access or "in-network",
                api_access_cidrs=platform.api_access_cidrs,
                admins=platform.admins,
                network_cidr=platform.networks.get(region, "10.0.0.0/16"),
                registries=tuple(platform.registries.values()),
                load_images=platform.load_images,
            )
            self.clusters.append(component(cluster, args, pulumi.ResourceOptions(parent=self)))
        # Resources that need every region's cluster (AKS: private DNS zones linked to every region's VNet).
        if hasattr(component, "join_regions"):
            component.join_regions(self.clusters)
        self.register_outputs({"clusters": [c.name for c in self.clusters]})

    def describe(self) -> list[dict]:
        """What the plan's summary draws: each cluster with its cloud, region and version."""
        return [
            {
                "name": c.name,
                "cloud": self.platform.cloud,
                "region": c.region,
                "kubernetesVersion": self.platform.kubernetes_version,
                **({"network": self.platform.networks[c.region]} if c.region in self.platform.networks else {}),
                **({"apiAccess": c.access.to_json()} if getattr(c, "access", None) is not None else {}),
            }
            for c in self.clusters
        ]
