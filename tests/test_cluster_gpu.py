"""GPU pools get the NVIDIA device plugin where the cloud does not run one (EKS, AKS), and only then."""

from __future__ import annotations

import pytest

from components.cluster import ClusterArgs
from components.cluster.gpu import DEVICE_PLUGIN_REPOSITORY, DEVICE_PLUGIN_VERSION
from turnout.config import NodePool
from turnout.offline.runtime import run_function

CPU = NodePool(name="general", machine_type="m6i.xlarge", min=2, max=6)
GPU = NodePool(name="gpu", min=0, max=2, gpu=1)


def clusters():
    from components.cluster.aks import AksCluster
    from components.cluster.eks import EksCluster

    return [
        (
            EksCluster,
            ClusterArgs(
                cluster_name="lab-us-east-1", region="us-east-1", kubernetes_version="1.34", node_pools=(CPU, GPU)
            ),
        ),
        (
            AksCluster,
            ClusterArgs(
                cluster_name="lab-westeurope",
                region="westeurope",
                kubernetes_version="1.34",
                node_pools=(
                    NodePool(name="general", machine_type="Standard_D4s_v5", min=2, max=6),
                    NodePool(name="gpu", machine_type="Standard_D4s_v5", min=0, max=2, gpu=1),
                ),
            ),
        ),
    ]


def device_plugins(run) -> list:
    """The NVIDIA device plugin releases among a run's records (EKS also installs other charts)."""
    return [
        r
        for r in run.records
        if r.type == "kubernetes:helm.sh/v3:Release" and r.inputs["chart"] == "nvidia-device-plugin"
    ]


@pytest.mark.parametrize("index", [0, 1], ids=["eks", "aks"])
def test_gpu_pools_get_the_device_plugin_on_their_nodes(index):
    component, args = clusters()[index]
    run = run_function(lambda: component("lab", args))
    (plugin,) = device_plugins(run)
    assert plugin.inputs["version"] == DEVICE_PLUGIN_VERSION
    assert plugin.inputs["repositoryOpts"] == {"repo": DEVICE_PLUGIN_REPOSITORY}
    values = plugin.inputs["values"]
    assert values["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    term = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert term == {"matchExpressions": [{"key": "nvidia.com/gpu.present", "operator": "In", "values": ["true"]}]}
    (provider,) = [r for r in run.records if r.type == "pulumi:providers:kubernetes" and r.name == "lab-k8s"]
    assert plugin.provider == provider.urn, "installed into the cluster it belongs to"


@pytest.mark.parametrize("index", [0, 1], ids=["eks", "aks"])
def test_cpu_only_clusters_get_no_device_plugin(index):
    component, args = clusters()[index]
    import dataclasses

    cpu_only = dataclasses.replace(args, node_pools=args.node_pools[:1])
    run = run_function(lambda: component("lab", cpu_only))
    assert not device_plugins(run)
