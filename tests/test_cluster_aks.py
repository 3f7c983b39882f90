"""The AKS cluster under mocks: Entra ID only, private by default, workload identity, pools that
autoscale without public IPs, GPU pools tainted and labelled, a kubeconfig from the cluster's credentials,
a kube-audit-admin audit log in the cluster's workspace and Secrets encrypted with a Key Vault key."""

from __future__ import annotations

import base64
import ipaddress
import json
import re

import pulumi
import pytest
import yaml

from components.cluster import ClusterArgs
from components.cluster.aks import (
    AKS_RBAC_CLUSTER_ADMIN_ROLE,
    AUDIT_LOG_CATEGORIES,
    CRITICAL_ADDONS_TAINT,
    DNS_SERVICE_IP,
    GPU_TAINT,
    KEY_VAULT_CRYPTO_USER_ROLE,
    NETWORK_CONTRIBUTOR_ROLE,
    POD_CIDR,
    PRIVATE_DNS_ZONE_CONTRIBUTOR_ROLE,
    SERVICE_CIDR,
    AksCluster,
    access_path,
    agent_pool_name,
    agent_pool_names,
    check_api_access,
    check_cluster_ranges,
    deployer_principal_type,
    key_vault_name,
    non_interactive_kubeconfig,
    private_dns_zone_name,
    role_assignment_name,
    vm_size,
)
from tests.conftest import write_stack
from turnout import network
from turnout.cli import main
from turnout.config import NodePool
from turnout.errors import ConfigError
from turnout.offline import mocks_azure
from turnout.offline.mocks import OFFLINE_CA_PEM, OfflineMocks, stable_hash
from turnout.offline.runtime import RecordingMonitor, run_function

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


def test_api_server_is_private_by_default_in_turnouts_own_private_dns_zone():
    records, _ = aks_run()
    cluster = records["lab-westeurope-aks"]
    zone = records["lab-westeurope-api-dns"]
    assert zone.inputs["privateZoneName"] == "privatelink.westeurope.azmk8s.io" == private_dns_zone_name("westeurope")
    assert cluster.inputs["apiServerAccessProfile"] == {
        "enablePrivateCluster": True,
        "enablePrivateClusterPublicFQDN": False,
        "privateDNSZone": pulumi_id(zone),
    }
    assert cluster.raw_outputs["privateFQDN"] == mocks_azure.api_server_host(
        "lab-westeurope-rg", "lab-westeurope", "westeurope"
    )
    assert "fqdn" not in cluster.raw_outputs
    # The zone resolves from the cluster's VNet, and AKS may write its record and link it (aks-baseline's grants).
    link = records["lab-westeurope-api-dns-lab-westeurope"]
    assert link.inputs["virtualNetwork"] == {"id": pulumi_id(records["lab-westeurope-vnet"])}
    assert link.inputs["registrationEnabled"] is False
    identity = records["lab-westeurope-identity"].raw_outputs["principalId"]
    for grant, scope in (("identity-api-dns", "lab-westeurope-api-dns"), ("identity-vnet-dns", "lab-westeurope-vnet")):
        record = records[f"lab-westeurope-{grant}"]
        assert record.inputs["scope"] == pulumi_id(records[scope])
        assert record.inputs["roleDefinitionId"].endswith(f"/{PRIVATE_DNS_ZONE_CONTRIBUTOR_ROLE}")
        assert record.inputs["principalId"] == identity and record.inputs["principalType"] == "ServicePrincipal"
        assert record.urn in cluster.dependencies
    assert PRIVATE_DNS_ZONE_CONTRIBUTOR_ROLE == "b12aa53e-6015-4669-85d0-8515ebb3ae7f"


def test_allowlist_opens_a_public_api_to_exactly_those_cidrs():
    cidrs = ("203.0.113.0/24", "198.51.100.7/32")
    records, _ = aks_run(aks_args(api_access="allowlist", api_access_cidrs=cidrs))
    assert records["lab-westeurope-aks"].inputs["apiServerAccessProfile"] == {
        "enablePrivateCluster": False,
        "authorizedIPRanges": ["203.0.113.0/24", "198.51.100.7/32"],
    }
    assert not [r for r in records.values() if r.type.startswith("azure-native:privatedns:")], "no private zone"
    kubeconfig = yaml.safe_load(records["lab-westeurope-k8s"].raw_inputs["kubeconfig"]["value"])
    assert kubeconfig["clusters"][0]["cluster"]["server"].endswith(".hcp.westeurope.azmk8s.io:443"), "public name"


def test_workload_identity_and_oidc_issuer_are_enabled_and_the_issuer_is_an_output():
    records, outputs = aks_run()
    cluster = records["lab-westeurope-aks"].inputs
    assert cluster["securityProfile"]["workloadIdentity"] == {"enabled": True}
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


def test_network_is_the_regions_16_with_cni_overlay_pod_and_service_ranges_outside_any_region():
    records, _ = aks_run(aks_args(network_cidr="10.7.0.0/16"))
    assert records["lab-westeurope-rg"].inputs["location"] == "westeurope"
    assert records["lab-westeurope-vnet"].inputs["location"] == "westeurope"
    assert records["lab-westeurope-vnet"].inputs["addressSpace"] == {"addressPrefixes": ["10.7.0.0/16"]}
    subnet = records["lab-westeurope-nodes"]
    assert subnet.inputs["addressPrefix"] == "10.7.0.0/18"
    assert subnet.inputs["virtualNetworkName"] == "lab-westeurope-vnet"
    assert subnet.raw_outputs["id"].endswith("/virtualNetworks/lab-westeurope-vnet/subnets/nodes")
    cluster = records["lab-westeurope-aks"].inputs
    assert cluster["location"] == "westeurope" and cluster["resourceGroupName"] == "lab-westeurope-rg"
    assert cluster["networkProfile"] == {
        "networkPlugin": "azure",
        "networkPluginMode": "overlay",
        "networkDataplane": "cilium",
        "networkPolicy": "cilium",
        "podCidr": "100.64.0.0/14",
        "serviceCidr": "10.255.0.0/16",
        "dnsServiceIP": "10.255.0.10",
        "loadBalancerSku": "standard",
        "outboundType": "loadBalancer",
    }
    pods, services = ipaddress.ip_network(POD_CIDR), ipaddress.ip_network(SERVICE_CIDR)
    assert ipaddress.ip_address(DNS_SERVICE_IP) in services and str(services[0]) != DNS_SERVICE_IP
    assert services.prefixlen > 12, "AKS: the Service range must be smaller than /12"
    # turnout gives regions RFC 1918 /16s from 10.0.0.0/12 by default: none of them reaches either range.
    for region in ipaddress.ip_network("10.0.0.0/12").subnets(new_prefix=16):
        assert not region.overlaps(pods) and not region.overlaps(services)
    assert not any(pods.overlaps(private) for private in network.PRIVATE_RANGES), "pods in RFC 6598 space"


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


def pulumi_id(record) -> str:
    """What `resource.id` resolves to offline (the mocks' id, not the ARM id in `raw_outputs`)."""
    return mocks_azure.offline_id(record.type, record.name)


def test_audit_log_collects_kube_audit_admin_and_the_control_plane_in_the_clusters_workspace():
    records, _ = aks_run()
    cluster, workspace = records["lab-westeurope-aks"], records["lab-westeurope-logs"]
    setting = records["lab-westeurope-audit"]
    assert setting.type == "azure-native:monitor:DiagnosticSetting"
    assert setting.inputs["logs"] == [
        {"category": "kube-audit-admin", "enabled": True},
        {"category": "guard", "enabled": True},
        {"category": "kube-apiserver", "enabled": True},
        {"category": "kube-controller-manager", "enabled": True},
    ]
    assert [log["category"] for log in setting.inputs["logs"]] == list(AUDIT_LOG_CATEGORIES)
    assert "kube-audit" not in AUDIT_LOG_CATEGORIES, "kube-audit-admin already holds every write; no duplicate"
    assert setting.inputs["logAnalyticsDestinationType"] == "Dedicated"  # AKSAuditAdmin, AKSControlPlane
    assert "metrics" not in setting.inputs
    # The cluster's and the workspace's ids, so the setting waits for both; Azure reports ARM ids.
    assert setting.inputs["resourceUri"] == pulumi_id(cluster)
    assert setting.inputs["workspaceId"] == pulumi_id(workspace)
    assert set(setting.dependencies) == {cluster.urn, workspace.urn}
    assert setting.raw_outputs["resourceUri"] == cluster.raw_outputs["id"]
    assert setting.raw_outputs["resourceUri"].endswith(
        "/resourceGroups/lab-westeurope-rg/providers/Microsoft.ContainerService/managedClusters/lab-westeurope"
    )
    assert setting.raw_outputs["workspaceId"].endswith(
        "/providers/Microsoft.OperationalInsights/workspaces/lab-westeurope-logs"
    )


def test_workspace_keeps_logs_90_days_beside_the_cluster_without_shared_keys():
    records, _ = aks_run()
    workspace = records["lab-westeurope-logs"]
    assert workspace.type == "azure-native:operationalinsights:Workspace"
    assert workspace.inputs["retentionInDays"] == 90 >= 30
    assert workspace.inputs["sku"] == {"name": "PerGB2018"}
    assert workspace.inputs["features"] == {"disableLocalAuth": True}
    assert (workspace.inputs["location"], workspace.inputs["resourceGroupName"]) == ("westeurope", "lab-westeurope-rg")


def test_key_vaults_own_audit_log_goes_to_the_same_workspace():
    records, _ = aks_run()
    setting = records["lab-westeurope-kv-audit"]
    assert setting.inputs["resourceUri"] == pulumi_id(records["lab-westeurope-kv"])
    assert setting.inputs["workspaceId"] == pulumi_id(records["lab-westeurope-logs"])
    assert setting.inputs["logs"] == [{"categoryGroup": "audit", "enabled": True}]


def test_key_vault_uses_azure_rbac_soft_delete_and_purge_protection_and_is_public_as_kms_requires():
    records, _ = aks_run()
    vault = records["lab-westeurope-kv"]
    assert vault.type == "azure-native:keyvault:Vault"
    assert vault.inputs["properties"] == {
        "tenantId": mocks_azure.TENANT_ID,
        "sku": {"family": "A", "name": "premium"},
        "enableRbacAuthorization": True,
        "enableSoftDelete": True,
        "softDeleteRetentionInDays": 90,
        "enablePurgeProtection": True,
        "publicNetworkAccess": "Enabled",
        "networkAcls": {"defaultAction": "Allow", "bypass": "None"},
        "enabledForDeployment": False,
        "enabledForDiskEncryption": False,
        "enabledForTemplateDeployment": False,
    }
    assert "accessPolicies" not in vault.inputs["properties"], "Azure RBAC only"
    assert vault.raw_outputs["properties"]["vaultUri"] == f"https://{vault.inputs['vaultName']}.vault.azure.net/"


def test_kms_key_is_an_hsm_rsa_key_for_encrypt_and_decrypt_rotated_yearly_and_never_expiring():
    records, _ = aks_run()
    key = records["lab-westeurope-kms-key"]
    assert key.type == "azure-native:keyvault:Key"
    assert key.inputs["vaultName"] == records["lab-westeurope-kv"].inputs["vaultName"]
    assert key.inputs["keyName"] == "etcd-kms"
    properties = key.inputs["properties"]
    assert (properties["kty"], properties["keySize"]) == ("RSA-HSM", 3072)
    assert properties["keySize"] >= 2048
    assert properties["keyOps"] == ["encrypt", "decrypt"]
    assert properties["attributes"] == {"enabled": True, "exportable": False}
    assert properties["rotationPolicy"] == {
        "lifetimeActions": [{"action": {"type": "rotate"}, "trigger": {"timeAfterCreate": "P1Y"}}]
    }
    # An expired key stops the API server: neither the key nor its future versions expire.
    assert "expires" not in properties["attributes"] and "attributes" not in properties["rotationPolicy"]


def test_secrets_are_encrypted_with_the_versioned_key_over_public_key_vault_access():
    records, _ = aks_run()
    key = records["lab-westeurope-kms-key"]
    kms = records["lab-westeurope-aks"].inputs["securityProfile"]["azureKeyVaultKms"]
    vault = records["lab-westeurope-kv"].inputs["vaultName"]
    assert kms == {"enabled": True, "keyId": key.raw_outputs["keyUriWithVersion"], "keyVaultNetworkAccess": "Public"}
    assert re.fullmatch(rf"https://{vault}\.vault\.azure\.net/keys/etcd-kms/[0-9a-f]{{32}}", kms["keyId"])
    assert "keyVaultResourceId" not in kms, "only a Private key vault names its resource id"


def test_control_plane_identity_holds_crypto_user_on_the_key_before_the_cluster_exists():
    records, _ = aks_run()
    identity, key = records["lab-westeurope-identity"], records["lab-westeurope-kms-key"]
    grant = records["lab-westeurope-identity-kms"]
    assert grant.inputs["scope"] == pulumi_id(key), "the key alone, not the vault"
    assert grant.inputs["roleDefinitionId"] == (
        f"/subscriptions/{mocks_azure.SUBSCRIPTION_ID}/providers/Microsoft.Authorization/roleDefinitions/"
        f"{KEY_VAULT_CRYPTO_USER_ROLE}"
    )
    assert KEY_VAULT_CRYPTO_USER_ROLE == "12338af0-0e69-4776-bea7-57ae8d297424"
    assert grant.inputs["principalId"] == identity.raw_outputs["principalId"]
    assert grant.inputs["principalType"] == "ServicePrincipal"
    assert set(grant.dependencies) == {key.urn, identity.urn}
    assert key.raw_outputs["id"].endswith(
        f"/providers/Microsoft.KeyVault/vaults/{records['lab-westeurope-kv'].inputs['vaultName']}/keys/etcd-kms"
    )
    cluster = records["lab-westeurope-aks"]
    assert cluster.inputs["identity"] == {"type": "UserAssigned", "userAssignedIdentities": [pulumi_id(identity)]}
    assert {grant.urn, records["lab-westeurope-identity-network"].urn} <= set(cluster.dependencies)
    assert key.urn in cluster.dependencies, "the cluster reads the key's versioned id"


SECRET_MATERIAL = re.compile(r"sharedkey|password|privatekey|BEGIN [A-Z ]*PRIVATE KEY", re.I)


def test_secrets_stay_out_of_plain_inputs():
    records, _ = aks_run()
    for name in ("logs", "kv", "kms-key", "identity-kms", "audit", "kv-audit", "aks"):
        record = records[f"lab-westeurope-{name}"]
        text = json.dumps(record.raw_inputs)
        assert not SECRET_MATERIAL.search(text), name
        assert "[secret]" not in json.dumps(record.inputs), f"{name} needs no secret input"
    key = records["lab-westeurope-kms-key"].inputs["properties"]
    # Key Vault makes the key inside its HSM: no key material goes in, none can come out.
    assert set(key) == {"kty", "keySize", "keyOps", "attributes", "rotationPolicy"}
    assert key["attributes"]["exportable"] is False and "releasePolicy" not in key
    assert records["lab-westeurope-logs"].inputs["features"]["disableLocalAuth"] is True
    assert records["lab-westeurope-k8s"].inputs["kubeconfig"] == "[secret]"


@pytest.mark.parametrize(
    ("cluster", "stem"),
    [
        ("lab-westeurope", "lab-westeurope"),
        ("prod-azure-northeurope", "prod-azure-northe"),  # cut to fit 24 with the digest
        ("Prod_Azure--x", "prodazure-x"),  # what Azure allows, no doubled hyphens
        ("9lives-eastus", "kv9lives-eastus"),  # must start with a letter
    ],
)
def test_key_vault_names_fit_azures_rules_and_differ_per_subscription(cluster, stem):
    name = key_vault_name(cluster, mocks_azure.SUBSCRIPTION_ID)
    assert re.fullmatch(rf"{stem}-[0-9a-f]{{6}}", name)
    assert 3 <= len(name) <= 24 and re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]", name) and "--" not in name
    assert name == key_vault_name(cluster, mocks_azure.SUBSCRIPTION_ID), "deterministic"
    assert name != key_vault_name(cluster, "44444444-4444-4444-4444-444444444444"), "globally unique names"


def azure_names(records: dict) -> dict:
    """Each Azure resource's Pulumi name and the name it gets in Azure."""
    return {name: r.raw_outputs["name"] for name, r in records.items() if r.type.startswith("azure-native:")}


def test_two_regions_get_distinct_names_and_each_plans_identically_twice():
    west = azure_names(aks_run()[0])
    north = azure_names(aks_run(aks_args(cluster_name="lab-northeurope", region="northeurope"))[0])
    assert west == azure_names(aks_run()[0]), "same stack, same names"
    assert west == {
        "lab-westeurope-api-dns": "privatelink.westeurope.azmk8s.io",
        "lab-westeurope-api-dns-lab-westeurope": "lab-westeurope",
        "lab-westeurope-identity-api-dns": west["lab-westeurope-identity-api-dns"],
        "lab-westeurope-identity-vnet-dns": west["lab-westeurope-identity-vnet-dns"],
        "lab-westeurope-deployer-admin": west["lab-westeurope-deployer-admin"],
        "lab-westeurope-rg": "lab-westeurope-rg",
        "lab-westeurope-vnet": "lab-westeurope-vnet",
        "lab-westeurope-nodes": "nodes",
        "lab-westeurope-identity": "lab-westeurope-identity",
        "lab-westeurope-identity-network": west["lab-westeurope-identity-network"],
        "lab-westeurope-logs": "lab-westeurope-logs",
        "lab-westeurope-kv": key_vault_name("lab-westeurope", mocks_azure.SUBSCRIPTION_ID),
        "lab-westeurope-kms-key": "etcd-kms",
        "lab-westeurope-identity-kms": west["lab-westeurope-identity-kms"],
        "lab-westeurope-aks": "lab-westeurope",
        "lab-westeurope-audit": "turnout-audit",
        "lab-westeurope-kv-audit": "turnout-audit",
        "lab-westeurope-pool-general": "general",
        "lab-westeurope-pool-gpu-t4": "gput48d94",
    }
    assert set(west).isdisjoint(north)
    # Names that must be unique across the subscription differ; those scoped by their parent repeat.
    for kind in ("rg", "vnet", "identity", "identity-network", "kv", "identity-kms", "aks", "deployer-admin"):
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


def test_a_prod_azure_stack_meets_the_audit_log_and_secrets_encryption_rules(project, tmp_path):
    """Both rules are mandatory in prod: the plan fails if the cluster loses its audit log or KMS key."""
    write_stack(
        project,
        STACK,
        {
            "tier": "prod",
            "platform": {"cloud": "azure", "regions": ["westeurope"]},
            "endpoints": {"scores": {"versions": {"v1": {"image": "ghcr.io/acme/scores:1.0.0"}}}},
        },
    )
    main(["plan", STACK, "--project", str(project), "--out", str(tmp_path)])
    policy = json.loads((tmp_path / STACK / "policy.json").read_text())
    found = [v for v in policy["violations"] if v["policy"] in ("cluster-audit-logs", "cluster-secrets-encryption")]
    assert found == []


# --- Access: who reaches the API, from where, as whom --------------------------------------------------------------


def kubeconfig_of(records: dict) -> dict:
    return yaml.safe_load(records["lab-westeurope-k8s"].raw_inputs["kubeconfig"]["value"])


def test_kubeconfig_signs_in_without_a_device_code_as_the_azure_clis_identity():
    records, _ = aks_run()
    credential = kubeconfig_of(records)["users"][0]["user"]["exec"]
    assert credential["command"] == "kubelogin"
    # What `kubelogin convert-kubeconfig -l azurecli` writes: the server id, no tenant, client or device code.
    assert credential["args"] == ["get-token", "--login", "azurecli", "--server-id", mocks_azure.AKS_SERVER_APP_ID]
    assert not set(credential["args"]) & {"devicecode", "interactive", "--client-id", "--tenant-id"}


def test_the_conversion_keeps_the_server_id_and_refuses_a_kubeconfig_it_cannot_make_non_interactive():
    returned = mocks_azure.user_kubeconfig("rg", "c1", "westeurope")
    assert "devicecode" in returned, "what AKS returns: kubelogin's interactive device code"
    converted = yaml.safe_load(non_interactive_kubeconfig(returned, login="workloadidentity"))
    assert converted["users"][0]["user"]["exec"]["args"] == [
        "get-token",
        "--login",
        "workloadidentity",
        "--server-id",
        mocks_azure.AKS_SERVER_APP_ID,
    ]
    assert converted["clusters"] == yaml.safe_load(returned)["clusters"], "only the user changes"
    without_server = returned.replace("--server-id", "--unknown")
    with pytest.raises(ValueError, match="--server-id"):
        non_interactive_kubeconfig(without_server)
    with pytest.raises(ValueError, match="without a kubelogin user"):
        non_interactive_kubeconfig(returned.replace("kubelogin", "kubectl"))


def test_access_path_says_who_reaches_the_api_from_where_and_as_whom():
    private = access_path(aks_args(admins=(ADMIN_GROUP,), network_cidr="10.3.0.0/16"))
    assert private.mode == "in-network"
    assert "inside 10.3.0.0/16" in private.reachable_from
    assert "privatelink.westeurope.azmk8s.io" in private.reachable_from
    assert "kubelogin --login azurecli" in private.identity and "AAD_LOGIN_METHOD" in private.identity
    assert private.admins == (ADMIN_GROUP,)
    public = access_path(aks_args(api_access="allowlist", api_access_cidrs=("203.0.113.0/24",)))
    assert public.to_json()["reachableFrom"] == "the public endpoint, only from 203.0.113.0/24"


ADMIN_GROUP = "group:6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
ADMIN_SP = "servicePrincipal:0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"


def test_deployer_and_admins_get_rbac_cluster_admin_naming_their_principal_types():
    records, _ = aks_run(aks_args(admins=(ADMIN_GROUP, ADMIN_SP)))
    role = (
        f"/subscriptions/{mocks_azure.SUBSCRIPTION_ID}/providers/Microsoft.Authorization/roleDefinitions/"
        f"{AKS_RBAC_CLUSTER_ADMIN_ROLE}"
    )
    deployer = records["lab-westeurope-deployer-admin"].inputs
    # The deployer on the resource group, admins on the cluster: a listed deployer never collides with itself.
    assert deployer["scope"] == pulumi_id(records["lab-westeurope-rg"])
    assert deployer["principalId"] == mocks_azure.DEPLOYER_OBJECT_ID
    assert deployer["principalType"] == "ServicePrincipal", "the offline deployer signs in as an application"
    assert deployer["roleDefinitionId"] == role
    assert deployer["roleAssignmentName"] == role_assignment_name(
        "lab-westeurope", "deployer", mocks_azure.DEPLOYER_OBJECT_ID
    )
    admins = {
        r.inputs["principalId"]: r.inputs
        for r in records.values()
        if r.type == "azure-native:authorization:RoleAssignment" and r.name.startswith("lab-westeurope-admin-")
    }
    assert {object_id: (a["principalType"], a["scope"]) for object_id, a in admins.items()} == {
        "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f": ("Group", pulumi_id(records["lab-westeurope-aks"])),
        "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d": ("ServicePrincipal", pulumi_id(records["lab-westeurope-aks"])),
    }
    assert {a["roleDefinitionId"] for a in admins.values()} == {role}
    # Azure Kubernetes Service RBAC Cluster Admin (azure-docs built-in roles).
    assert AKS_RBAC_CLUSTER_ADMIN_ROLE == "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"
    # Helm releases and objects go through the provider: it waits until the deployer may act.
    provider = records["lab-westeurope-k8s"]
    grants = [r.urn for r in records.values() if r.name.startswith(("lab-westeurope-deployer", "lab-westeurope-admin"))]
    assert len(grants) == 3 and set(grants) <= set(provider.dependencies)


def test_a_deployer_signed_in_through_the_azure_cli_is_a_user(monkeypatch):
    monkeypatch.setattr(mocks_azure, "DEPLOYER_CLIENT_ID", "04b07795-8ddb-461a-bbee-02f9e1bf7b46")
    records, _ = aks_run()
    assert records["lab-westeurope-deployer-admin"].inputs["principalType"] == "User"
    assert deployer_principal_type("1950a258-227b-4e31-a9cf-717495945fc2") == "User"  # Azure PowerShell
    assert deployer_principal_type("3f4c1e8a-1111-4b6e-9d2c-aaaaaaaaaaaa") == "ServicePrincipal"


REGISTRY = (
    "/subscriptions/55555555-5555-5555-5555-555555555555/resourceGroups/shared-acr/providers/"
    "Microsoft.ContainerRegistry/registries/acmemodels"
)


def test_the_kubelet_identity_may_pull_from_each_registry_in_its_own_subscription():
    records, _ = aks_run(aks_args(registries=(REGISTRY,)))
    grant = records["lab-westeurope-acr-pull-acmemodels"].inputs
    kubelet = records["lab-westeurope-aks"].raw_outputs["identityProfile"]["kubeletidentity"]["objectId"]
    assert grant["scope"] == REGISTRY
    assert grant["principalId"] == kubelet and grant["principalType"] == "ServicePrincipal"
    assert grant["roleDefinitionId"] == (
        "/subscriptions/55555555-5555-5555-5555-555555555555/providers/Microsoft.Authorization/roleDefinitions/"
        "7f951dda-4ed3-4680-a7ca-43fe172d538d"
    ), "AcrPull, as the registry's subscription knows it"
    none, _ = aks_run()
    assert not [name for name in none if "acr-pull" in name]


@pytest.fixture
def ignored(monkeypatch) -> dict:
    """Each registration's ignoreChanges, by resource name (the offline inventory does not keep them)."""
    seen: dict[str, list[str]] = {}
    register = RecordingMonitor.RegisterResource

    def recording(self, request):
        seen[request.name] = list(request.ignoreChanges)
        return register(self, request)

    monkeypatch.setattr(RecordingMonitor, "RegisterResource", recording)
    return seen


def test_autoscaled_node_counts_are_not_reset_by_the_next_up(ignored):
    records, _ = aks_run()
    assert ignored["lab-westeurope-pool-general"] == ["count"] == ignored["lab-westeurope-pool-gpu-t4"]
    assert records["lab-westeurope-pool-general"].inputs["count"] == 2, "the first size, which AKS requires"
    # The system pool's count only, never the whole agentPoolProfiles (pulumi-azure-native#2719).
    assert ignored["lab-westeurope-aks"] == ["agentPoolProfiles[0].count"]


def test_two_regions_link_each_private_zone_to_the_other_regions_vnet():
    def program():
        clusters = [
            AksCluster(f"lab-{region}", aks_args(cluster_name=f"lab-{region}", region=region, network_cidr=cidr))
            for region, cidr in (("westeurope", "10.0.0.0/16"), ("northeurope", "10.1.0.0/16"))
        ]
        AksCluster.join_regions(clusters)

    records = {r.name: r for r in run_function(program).records}
    links = {
        (r.inputs["privateZoneName"], r.inputs["virtualNetwork"]["id"].split("-vnet-")[0])
        for r in records.values()
        if r.type == "azure-native:privatedns:VirtualNetworkLink"
    }
    assert links == {
        ("privatelink.westeurope.azmk8s.io", "lab-westeurope"),
        ("privatelink.westeurope.azmk8s.io", "lab-northeurope"),
        ("privatelink.northeurope.azmk8s.io", "lab-northeurope"),
        ("privatelink.northeurope.azmk8s.io", "lab-westeurope"),
    }


# --- Guards: what AKS refuses, checked before anything is created -----------------------------------------------


def test_a_region_network_over_the_service_range_is_refused_naming_the_region():
    with pytest.raises(ConfigError) as caught:
        check_cluster_ranges(aks_args(network_cidr="10.255.0.0/16"))
    assert caught.value.path == "turnout:platform.networks.westeurope"
    assert "Service range 10.255.0.0/16" in caught.value.found
    check_cluster_ranges(aks_args(network_cidr="10.254.0.0/16"))


def test_more_nodes_than_the_overlay_pod_range_holds_are_refused():
    pools = (NodePool(name="a", min=1, max=1000), NodePool(name="b", min=1, max=30))
    with pytest.raises(ConfigError) as caught:
        check_cluster_ranges(aks_args(node_pools=pools))
    assert caught.value.path == "turnout:platform.nodePools"
    assert "at most 1024" in caught.value.allowed


def test_more_than_200_authorized_ranges_and_foreign_access_modes_are_refused():
    cidrs = tuple(f"203.0.{i // 256}.{i % 256}/32" for i in range(201))
    with pytest.raises(ConfigError) as caught:
        check_api_access(aks_args(api_access="allowlist", api_access_cidrs=cidrs))
    assert caught.value.path == "turnout:platform.apiAccessCidrs" and "200" in caught.value.allowed
    check_api_access(aks_args(api_access="allowlist", api_access_cidrs=cidrs[:200]))
    with pytest.raises(ConfigError) as caught:
        check_api_access(aks_args(api_access="dns"))
    assert caught.value.path == "turnout:platform.apiAccess"
    with pytest.raises(ConfigError) as caught:
        check_api_access(aks_args(admins=("group:platform-admins@example.com",)))
    assert caught.value.path == "turnout:platform.admins[0]"
