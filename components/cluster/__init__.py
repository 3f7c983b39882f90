"""Clusters behind one interface: every cloud's component takes `ClusterArgs` and exposes
`name`, `region`, `kubeconfig` (secret) and a Kubernetes `provider`, and `access`: how the deployer
reaches the API (`ApiAccessPath`)."""

from __future__ import annotations

from dataclasses import dataclass

from turnout.config import NodePool


@dataclass(frozen=True, kw_only=True)
class ClusterArgs:
    cluster_name: str
    """Deterministic cluster name (`naming.cluster_name`)."""
    region: str
    kubernetes_version: str
    """Minor version such as "1.34"."""
    node_pools: tuple[NodePool, ...]
    tier: str = "dev"
    """dev, staging or prod (`turnout:tier`): what the cluster may trade for cost (EKS: spot nodes outside prod)."""
    api_access: str = "in-network"
    """How the deployer reaches the API (turnout.config.ApiAccess): dns (GKE's DNS endpoint), allowlist (a
    public endpoint open only to `api_access_cidrs`) or in-network (a private endpoint only)."""
    api_access_cidrs: tuple[str, ...] = ()
    """With allowlist: the CIDRs allowed to reach the public endpoint."""
    admins: tuple[str, ...] = ()
    """Principals given cluster admin besides the deployer, as the cloud names them (turnout.config.ADMIN_PATTERNS)."""
    network_cidr: str = "10.0.0.0/16"
    """The region's /16 (turnout.network): the cluster's network and subnets are carved from it."""
    registries: tuple[str, ...] = ()
    """azure only: resource ids of the container registries the nodes pull from (AcrPull for the kubelet)."""
    load_images: tuple[str, ...] = ()
    """kind only: local images to load into the nodes."""


@dataclass(frozen=True, kw_only=True)
class ApiAccessPath:
    """Who can reach a cluster's Kubernetes API, from where, and as whom: what `turnout plan` shows so that
    a reviewer knows before `pulumi up` whether the deployer will reach the cluster at all."""

    mode: str
    """dns, allowlist, in-network (clouds) or localhost (kind)."""
    reachable_from: str
    """Where a client must be: "anywhere, with Google credentials", "203.0.113.0/24", "inside 10.0.0.0/16"."""
    identity: str
    """Which identity the Kubernetes provider signs in as (the same as the cloud provider's)."""
    admins: tuple[str, ...] = ()
    """Principals with cluster admin besides the deployer."""

    def to_json(self) -> dict:
        return {
            "mode": self.mode,
            "reachableFrom": self.reachable_from,
            "identity": self.identity,
            "admins": list(self.admins),
        }
