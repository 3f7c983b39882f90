"""Clusters behind one interface: every cloud's component takes `ClusterArgs` and exposes
`name`, `region`, `kubeconfig` (secret) and a Kubernetes `provider`."""

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
    api_access_cidrs: tuple[str, ...] = ()
    """CIDRs allowed to reach the API publicly; empty means a private endpoint only (the default)."""
    load_images: tuple[str, ...] = ()
    """kind only: local images to load into the nodes."""
