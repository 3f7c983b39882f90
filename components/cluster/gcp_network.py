"""How a GKE cluster's VPC carves the region's /16 (`ClusterArgs.network_cidr`, turnout.network).

For 10.0.0.0/16:

| range | CIDR | size | what for |
| --- | --- | --- | --- |
| pods | 10.0.0.0/17 | 32,768 | the subnet's secondary range for Pod IPs: GKE gives each node a /24 (110 Pods) |
| nodes | 10.0.128.0/20 | 4,096 | the subnet's primary range: node IPs (and internal load balancers) |
| services | 10.0.144.0/20 | 4,096 | the subnet's secondary range for ClusterIPs |
| private services access | 10.0.160.0/20 | 4,096 | peered to Google's services network: Memorystore |
| control plane | 10.0.176.0/28 | 16 | GKE's control plane (`master_ipv4_cidr_block`): calls webhooks from it |
| free | 10.0.176.16 - 10.0.255.255 | ~20,000 | yours |

Limits: the pods range holds 128 per-node /24s, so a cluster has at most 128 nodes, surge upgrades
included (`check_node_capacity`); 4,096 Services; Memorystore and any other producer service reached over
private services access share one /20.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from turnout.config import NodePool, key_path
from turnout.errors import ConfigError

PODS_PREFIX = 17
NODES_PREFIX = SERVICES_PREFIX = PRIVATE_SERVICES_PREFIX = 20
CONTROL_PLANE_PREFIX = 28  # GKE requires a /28 for the control plane's range
POD_RANGE_PER_NODE = 24  # GKE's per-node Pod range at the default of 110 Pods per node
SURGE_NODES_PER_POOL = 1  # GKE's default surge upgrade: one extra node per pool at a time


@dataclass(frozen=True)
class GkeNetworkLayout:
    region_cidr: str
    nodes: str
    pods: str
    services: str
    private_services: str
    control_plane: str

    @classmethod
    def of(cls, region_cidr: str) -> GkeNetworkLayout:
        region = ipaddress.IPv4Network(region_cidr)
        if region.prefixlen != 16:
            raise ValueError(f"a GKE network layout is written for a /16, not {region_cidr}")
        pods, rest = list(region.subnets(new_prefix=PODS_PREFIX))
        twentieths = list(rest.subnets(new_prefix=NODES_PREFIX))
        nodes, services, private_services, tail = twentieths[0], twentieths[1], twentieths[2], twentieths[3]
        control_plane = next(tail.subnets(new_prefix=CONTROL_PLANE_PREFIX))
        return cls(
            region_cidr=str(region),
            nodes=str(nodes),
            pods=str(pods),
            services=str(services),
            private_services=str(private_services),
            control_plane=str(control_plane),
        )

    @property
    def max_nodes(self) -> int:
        """Nodes the pods range can give a /24 each."""
        return 2 ** (POD_RANGE_PER_NODE - ipaddress.IPv4Network(self.pods).prefixlen)

    def ranges(self) -> dict[str, str]:
        return {
            "nodes": self.nodes,
            "pods": self.pods,
            "services": self.services,
            "privateServices": self.private_services,
            "controlPlane": self.control_plane,
        }


def check_node_capacity(layout: GkeNetworkLayout, pools: tuple[NodePool, ...]) -> None:
    """Refuse node pools whose maxima (plus a surge node each during upgrades) need more per-node Pod ranges than
    the pods range holds: GKE would stop adding nodes with the range exhausted."""
    needed = sum(pool.max + SURGE_NODES_PER_POOL for pool in pools)
    if needed <= layout.max_nodes:
        return
    index = max(range(len(pools)), key=lambda i: pools[i].max)
    raise ConfigError(
        key_path(f"platform.nodePools[{index}].max"),
        f"{pools[index].max}, so {needed} nodes with upgrade surge across the pools",
        f"at most {layout.max_nodes} nodes per GKE cluster, surge included: its pods range {layout.pods} "
        f"holds {layout.max_nodes} per-node /{POD_RANGE_PER_NODE}s",
    )
