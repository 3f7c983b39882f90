"""The NVIDIA device plugin, so GPU nodes advertise `nvidia.com/gpu` and GPU pods schedule there.

EKS (NVIDIA AMIs) and AKS install drivers but no device plugin; GKE runs its own with the driver it
installs, so its clusters do not use this component.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from turnout.config import NodePool
from turnout.naming import child

DEVICE_PLUGIN_REPOSITORY = "https://nvidia.github.io/k8s-device-plugin"
DEVICE_PLUGIN_VERSION = "0.18.2"
GPU_LABEL = "nvidia.com/gpu.present"
GPU_TAINT_KEY = "nvidia.com/gpu"


def device_plugin_values() -> dict:
    """Run on GPU nodes only, tolerating their taint; the chart's default affinity expects Node Feature
    Discovery labels, which turnout's pools replace with their own GPU label."""
    return {
        "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": GPU_LABEL, "operator": "In", "values": ["true"]}]}
                    ]
                }
            }
        },
    }


def has_gpu_pools(pools: tuple[NodePool, ...]) -> bool:
    return any(pool.gpu for pool in pools)


class NvidiaDevicePlugin(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:cluster:NvidiaDevicePlugin", name, None, opts)
        k8s.helm.v3.Release(
            child(name, "chart"),
            name="nvidia-device-plugin",
            chart="nvidia-device-plugin",
            version=DEVICE_PLUGIN_VERSION,
            repository_opts={"repo": DEVICE_PLUGIN_REPOSITORY},
            namespace="kube-system",
            values=device_plugin_values(),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"version": DEVICE_PLUGIN_VERSION})
