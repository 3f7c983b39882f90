"""The AKS cluster under mocks: Entra ID only, private by default, workload identity, pools that
autoscale without public IPs, GPU pools tainted and labelled, and a kubeconfig from the cluster's credentials."""

from __future__ import annotations

import base64
import json

import pulumi
import pytest
import yaml

from components.cluster import ClusterArgs
from components.cluster.aks import (
    CRITICAL_ADDONS_TAINT,
    GPU_TAINT,
    NETWORK_CONTRIBUTOR_ROLE,
    AksCluster,
    agent_pool_name,
    agent_pool_names,
    vm_size,
)
from tests.conftest import write_stack
from turnout.cli import main
from turnout.config import NodePool
from turnout.errors import ConfigError
from turnout.offline import mocks_azure
from turnout.offline.mocks import OFFLINE_CA_PEM, OfflineMocks, stable_hash
from turnout.offline.runtime import run_function

SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}


def test_offline_mocks_answer_azure_invokes_with_a_failure_list():
    """The SDK's mock monitor iterates the failures: Azure invokes (client config, credentials) need a list."""
    args = pulumi.runtime.MockCallArgs(token=mocks_azure.CLIENT_CONFIG, args={}, provider="")
    result, failures = OfflineMocks().call(args)
    assert failures == []
    assert result["subscriptionId"] == mocks_azure.SUBSCRIPTION_ID


GENERAL = NodePool(name="general", machine_type="Standard_D4s_v5", min=2, max=6)
GPU = NodePool(name="gpu-t4", machine_type="Standard_D4s_v5", min=0, max=2, gpu=1)


def aks_args(**overrides) -> ClusterArgs:
    args = {
        "cluster_name": "lab-westeurope",
        "region": "westeurope",
        "kubernetes_version": "1.34",
        "node_pools": (GENERAL, GPU),
    }
    return ClusterArgs(**{**args, **overrides})


def aks_run(args: ClusterArgs | None = None):
    """Records by name, and the component's resolved outputs."""
    args = args or aks_args()
    outputs: dict = {}

    def program():
        cluster = AksCluster(args.cluster_name, args)
        cluster.oidc_issuer.apply(lambda issuer: outputs.setdefault("oidc_issuer", issuer))
        outputs.update(name=cluster.name, region=cluster.region)

    run = run_function(program)
    return {r.name: r for r in run.records}, outputs


def test_cluster_signs_in_with_entra_id_and_azure_rbac_only():
    records, _ = aks_run()
    cluster = records["lab-westeurope-aks"].inputs
    assert cluster["aadProfile"] == {"managed": True, "enableAzureRBAC": True}
    assert cluster["disableLocalAccounts"] is True
    assert cluster["enableRBAC"] is True


def test_api_server_is_private_by_default():
    records, _ = aks_run()
    cluster = records["lab-westeurope-aks"]
    assert cluster.inputs["apiServerAccessProfile"] == {
        "enablePrivateCluster": True,
        "enablePrivateClusterPublicFQDN": False,
    }
    assert cluster.raw_outputs["privateFQDN"] == mocks_azure.api_server_host(
        "lab-westeurope-rg", "lab-westeurope", "westeurope"
    )
    assert "fqdn" not in cluster.raw_outputs


def test_allowlist_opens_a_public_api_to_exactly_those_cidrs():
    cidrs = ("203.0.113.0/24", "198.51.100.7/32")
    records, _ = aks_run(aks_args(api_access_cidrs=cidrs))
    assert records["lab-westeurope-aks"].inputs["apiServerAccessProfile"] == {
        "enablePrivateCluster": False,
        "authorizedIPRanges": ["203.0.113.0/24", "198.51.100.7/32"],
    }


def test_workload_identity_and_oidc_issuer_are_enabled_and_the_issuer_is_an_output():
    records, outputs = aks_run()
    cluster = records["lab-westeurope-aks"].inputs
    assert cluster["securityProfile"] == {"workloadIdentity": {"enabled": True}}
    assert cluster["oidcIssuerProfile"] == {"enabled": True}
    issuer = outputs["oidc_issuer"]
    assert issuer.startswith(f"https://westeurope.oic.prod-aks.azure.com/{mocks_azure.TENANT_ID}/")
    assert issuer == records["lab-westeurope-aks"].raw_outputs["oidcIssuerProfile"]["issuerURL"]
    assert outputs["name"] == "lab-westeurope" and outputs["region"] == "westeurope"


def test_version_and_upgrade_channels():
    records, _ = aks_run()
    cluster = records["lab-westeurope-aks"].inputs
    assert cluster["kubernetesVersion"] == "1.34"
    assert cluster["autoUpgradeProfile"] == {"upgradeChannel": "patch", "nodeOSUpgradeChannel": "NodeImage"}
    assert {records[f"lab-westeurope-pool-{p}"].inputs["orchestratorVersion"] for p in ("general", "gpu-t4")} == {
        "1.34"
    }


def test_network_is_one_vnet_per_region_with_cni_overlay_and_cilium_policy():
    records, _ = aks_run()
    assert records["lab-westeurope-rg"].inputs["location"] == "westeurope"
    assert records["lab-westeurope-vnet"].inputs["location"] == "westeurope"
    assert records["lab-westeurope-vnet"].inputs["addressSpace"] == {"addressPrefixes": ["10.224.0.0/12"]}
    subnet = records["lab-westeurope-nodes"]
    assert subnet.inputs["addressPrefix"] == "10.224.0.0/16"
    assert subnet.inputs["virtualNetworkName"] == "lab-westeurope-vnet"
    assert subnet.raw_outputs["id"].endswith("/virtualNetworks/lab-westeurope-vnet/subnets/nodes")
    cluster = records["lab-westeurope-aks"].inputs
    assert cluster["location"] == "westeurope" and cluster["resourceGroupName"] == "lab-westeurope-rg"
    assert cluster["networkProfile"] == {
        "networkPlugin": "azure",
        "networkPluginMode": "overlay",
        "networkDataplane": "cilium",
        "networkPolicy": "cilium",
        "podCidr": "10.244.0.0/16",
        "serviceCidr": "10.0.0.0/16",
        "dnsServiceIP": "10.0.0.10",
        "loadBalancerSku": "standard",
        "outboundType": "loadBalancer",
    }


def test_cluster_identity_may_join_the_node_subnet_before_the_cluster_exists():
    records, _ = aks_run()
    identity = records["lab-westeurope-identity"]
    grant = records["lab-westeurope-identity-network"]
    assert grant.inputs["roleDefinitionId"] == (
        f"/subscriptions/{mocks_azure.SUBSCRIPTION_ID}/providers/Microsoft.Authorization/roleDefinitions/"
        f"{NETWORK_CONTRIBUTOR_ROLE}"
    )
    assert grant.inputs["principalId"] == identity.raw_outputs["principalId"]
    assert grant.inputs["principalType"] == "ServicePrincipal"
    assert grant.dependencies == sorted([records["lab-westeurope-nodes"].urn, identity.urn])
    cluster = records["lab-westeurope-aks"]
    assert cluster.inputs["identity"]["type"] == "UserAssigned"
    assert grant.urn in cluster.dependencies


def test_system_pool_runs_only_critical_addons_in_the_node_subnet():
    records, _ = aks_run()
    # The subnet's Pulumi id (the offline resource id, which OfflineMocks derives from type and name).
    subnet_id = "lab-westeurope-nodes-" + stable_hash("azure-native:network:Subnet", "lab-westeurope-nodes")
    assert records["lab-westeurope-aks"].inputs["agentPoolProfiles"] == [
        {
            "name": "system",
            "mode": "System",
            "type": "VirtualMachineScaleSets",
            "osType": "Linux",
            "vmSize": "Standard_D4s_v5",
            "count": 2,
            "enableAutoScaling": True,
            "minCount": 2,
            "maxCount": 3,
            "vnetSubnetID": subnet_id,
            "enableNodePublicIP": False,
            "nodeTaints": [CRITICAL_ADDONS_TAINT],
            "nodeLabels": {"turnout.dev/pool": "system"},
        }
    ]
    assert CRITICAL_ADDONS_TAINT == "CriticalAddonsOnly=true:NoSchedule"


def test_user_pools_autoscale_within_bounds_without_public_ips():
    records, _ = aks_run()
    cpu = records["lab-westeurope-pool-general"].inputs
    assert cpu["mode"] == "User"
    assert (cpu["enableAutoScaling"], cpu["minCount"], cpu["maxCount"], cpu["count"]) == (True, 2, 6, 2)
    assert cpu["enableNodePublicIP"] is False
    assert cpu["vmSize"] == "Standard_D4s_v5"
    assert cpu["nodeLabels"] == {"turnout.dev/pool": "general"}
    assert "nodeTaints" not in cpu and "gpuProfile" not in cpu, "a CPU pool takes any workload"
    assert cpu["agentPoolName"] == "general"
    assert cpu["resourceName"] == "lab-westeurope" and cpu["resourceGroupName"] == "lab-westeurope-rg"
    assert cpu["vnetSubnetID"] == "lab-westeurope-nodes-" + stable_hash(
        "azure-native:network:Subnet", "lab-westeurope-nodes"
    )
    assert (
        records["lab-westeurope-pool-general"]
        .raw_outputs["id"]
        .endswith("/managedClusters/lab-westeurope/agentPools/general")
    )


def test_gpu_pool_gets_a_gpu_size_taint_label_and_driver():
    records, _ = aks_run()
    gpu = records["lab-westeurope-pool-gpu-t4"].inputs
    assert gpu["vmSize"] == "Standard_NC4as_T4_v3"
    assert gpu["nodeTaints"] == [GPU_TAINT] == ["nvidia.com/gpu=present:NoSchedule"]
    assert gpu["nodeLabels"] == {"turnout.dev/pool": "gpu-t4", "nvidia.com/gpu.present": "true"}
    assert gpu["gpuProfile"] == {"driver": "Install"}
    assert (gpu["minCount"], gpu["maxCount"], gpu["enableNodePublicIP"]) == (0, 2, False)
    assert gpu["agentPoolName"] == "gput48d94"


def test_gpu_sizes():
    assert vm_size(NodePool(name="a", machine_type="Standard_D4s_v5", gpu=4), 0) == "Standard_NC64as_T4_v3"
    assert vm_size(NodePool(name="a", machine_type="Standard_NC24ads_A100_v4", gpu=1), 0) == "Standard_NC24ads_A100_v4"
    assert vm_size(NodePool(name="a", machine_type="Standard_D8s_v5"), 0) == "Standard_D8s_v5"
    with pytest.raises(ConfigError) as caught:
        vm_size(NodePool(name="a", machine_type="Standard_D4s_v5", gpu=8), 3)
    assert caught.value.path == "turnout:platform.nodePools[3].machineType"


@pytest.mark.parametrize(
    ("pool", "azure"),
    [
        ("general", "general"),  # already valid: kept
        ("abcdefghijkl", "abcdefghijkl"),  # 12 characters: kept
        ("abcdefghijklm", "abcdefghff10"),  # 13: 8 characters and 4 hex digits
        ("gpu-a100", "gpua100587d"),  # '-' is not allowed
        ("1gpu", "p1gpuf398"),  # must start with a letter
        ("system", "systembbc5"),  # the system pool's name
    ],
)
def test_agent_pool_names_are_lowercase_alphanumeric_and_at_most_12(pool, azure):
    assert agent_pool_name(pool) == azure
    assert len(azure) <= 12 and azure.isalnum() and azure.islower() and azure[0].isalpha()


def test_pools_whose_azure_names_would_clash_are_refused():
    assert agent_pool_names((NodePool(name="gpua100"), NodePool(name="gpu-a100"))) == {
        "gpua100": "gpua100",
        "gpu-a100": "gpua100587d",
    }
    with pytest.raises(ConfigError) as caught:
        agent_pool_names((NodePool(name="general"), NodePool(name="systembbc5"), NodePool(name="system")))
    assert caught.value.path == "turnout:platform.nodePools[2].name"
    assert '"systembbc5"' in caught.value.found


def test_kubeconfig_is_a_secret_from_the_clusters_user_credentials():
    records, _ = aks_run()
    provider = records["lab-westeurope-k8s"]
    assert provider.type == "pulumi:providers:kubernetes"
    assert provider.inputs["kubeconfig"] == "[secret]"
    raw = provider.raw_inputs["kubeconfig"]
    assert {k: raw[k] for k in SECRET_SIG} == SECRET_SIG
    kubeconfig = yaml.safe_load(raw["value"])
    cluster = kubeconfig["clusters"][0]["cluster"]
    host = mocks_azure.api_server_host("lab-westeurope-rg", "lab-westeurope", "westeurope")
    assert cluster["server"] == f"https://{host}:443"
    assert host.endswith(".privatelink.westeurope.azmk8s.io") and host.startswith("lab-westeurope-")
    assert base64.b64decode(cluster["certificate-authority-data"]).decode() == OFFLINE_CA_PEM
    exec_user = kubeconfig["users"][0]["user"]["exec"]
    assert exec_user["command"] == "kubelogin" and exec_user["args"][0] == "get-token"
    assert "client-key-data" not in kubeconfig["users"][0]["user"], "no local account credentials"
    # Usable only once nodes exist: the provider waits for the cluster and every user pool.
    assert set(provider.dependencies) >= {
        records["lab-westeurope-aks"].urn,
        records["lab-westeurope-pool-general"].urn,
        records["lab-westeurope-pool-gpu-t4"].urn,
    }


def azure_names(records: dict) -> dict:
    """Each Azure resource's Pulumi name and the name it gets in Azure."""
    return {name: r.raw_outputs["name"] for name, r in records.items() if r.type.startswith("azure-native:")}


def test_two_regions_get_distinct_names_and_each_plans_identically_twice():
    west = azure_names(aks_run()[0])
    north = azure_names(aks_run(aks_args(cluster_name="lab-northeurope", region="northeurope"))[0])
    assert west == azure_names(aks_run()[0]), "same stack, same names"
    assert west == {
        "lab-westeurope-rg": "lab-westeurope-rg",
        "lab-westeurope-vnet": "lab-westeurope-vnet",
        "lab-westeurope-nodes": "nodes",
        "lab-westeurope-identity": "lab-westeurope-identity",
        "lab-westeurope-identity-network": west["lab-westeurope-identity-network"],
        "lab-westeurope-aks": "lab-westeurope",
        "lab-westeurope-pool-general": "general",
        "lab-westeurope-pool-gpu-t4": "gput48d94",
    }
    assert set(west).isdisjoint(north)
    # Names that must be unique across the subscription differ; those scoped by their parent repeat.
    for kind in ("rg", "vnet", "identity", "identity-network", "aks"):
        assert west[f"lab-westeurope-{kind}"] != north[f"lab-northeurope-{kind}"]
    assert north["lab-northeurope-aks"] == "lab-northeurope"


def test_mocks_answer_only_for_azure():
    assert mocks_azure.resource_outputs("kubernetes:core/v1:Namespace", "ns", {}) is None
    assert mocks_azure.invoke("aws:index/getRegion:getRegion", {}) is None
    group = mocks_azure.resource_outputs("azure-native:resources:ResourceGroup", "x", {"resourceGroupName": "rg"})
    assert group["id"] == f"/subscriptions/{mocks_azure.SUBSCRIPTION_ID}/resourceGroups/rg" and group["name"] == "rg"
    cluster = mocks_azure.resource_outputs(
        "azure-native:containerservice:ManagedCluster",
        "x",
        {"resourceGroupName": "rg", "resourceName": "c1", "location": "uksouth", "dnsPrefix": "c1"},
    )
    assert cluster["id"].endswith("/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c1")
    assert cluster["fqdn"] == f"c1-{mocks_azure.stable_hash('aks', 'rg', 'c1')}.hcp.uksouth.azmk8s.io"


STACK = "azlab"


def test_plan_of_an_azure_stack_builds_an_aks_cluster(project, tmp_path):
    write_stack(
        project,
        STACK,
        {
            "platform": {"cloud": "azure", "regions": ["westeurope"]},
            "endpoints": {"scores": {"versions": {"v1": {"image": "ghcr.io/acme/scores:1.0.0"}}}},
        },
    )
    assert main(["plan", STACK, "--project", str(project), "--out", str(tmp_path)]) == 0
    inventory = json.loads((tmp_path / STACK / "inventory.json").read_text())
    clusters = [r for r in inventory["resources"] if r["type"] == "azure-native:containerservice:ManagedCluster"]
    assert [c["inputs"]["resourceName"] for c in clusters] == ["azlab-westeurope"]
    pools = [r for r in inventory["resources"] if r["type"] == "azure-native:containerservice:AgentPool"]
    assert [(p["inputs"]["agentPoolName"], p["inputs"]["vmSize"]) for p in pools] == [("general", "Standard_D4s_v5")]
    assert inventory["outputs"]["kubeconfigs"] == {"azlab-westeurope": "[secret]"}
