"""Whole Azure stacks, planned: the bundled prod-azure stack's access path (who reaches each cluster's API, from
where, as whom), its role assignments and image pulls; a DR stack with a cache (once refused for a backup retention
turnout derived itself); every Azure name of a stack with a 50-character name within its service's rules; and the
registry guard."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from components.cache import check_cache_settings
from components.cluster.aks import (
    ACR_PULL_ROLE,
    AKS_RBAC_CLUSTER_ADMIN_ROLE,
    KUBELOGIN_LOGIN,
    role_assignment_name,
)
from components.cluster.azure_limits import NAME_INPUTS, name_violations
from components.cluster.azure_registries import check_registries
from components.globaltraffic import NAME_PATTERN, routing_name
from tests.conftest import REPO, load, write_stack
from turnout.cli import main
from turnout.errors import ConfigError
from turnout.offline import mocks_azure
from turnout.offline.planner import plan_stack
from turnout.offline.stackfile import find_project

REGISTRY = (
    "/subscriptions/8f3c1a52-7d4e-4b9a-a6c1-2e5f0b9d7c31/resourceGroups/acme-shared/providers/"
    "Microsoft.ContainerRegistry/registries/acmemodels"
)
ADMIN_GROUP = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"


@pytest.fixture(scope="module")
def prod_azure():
    plan = plan_stack(find_project(REPO), "prod-azure")
    return plan, {r.name: r for r in plan.records}


def test_prod_azure_clusters_are_private_reached_from_peered_networks_as_the_azure_clis_identity(prod_azure):
    plan, records = prod_azure
    clusters = plan.outputs["clusters"]
    assert [c["region"] for c in clusters] == ["westeurope", "northeurope"]
    for cluster, network in zip(clusters, ("10.0.0.0/16", "10.1.0.0/16"), strict=True):
        access = cluster["apiAccess"]
        assert access["mode"] == "in-network"
        assert f"inside {network}" in access["reachableFrom"]
        assert f"privatelink.{cluster['region']}.azmk8s.io" in access["reachableFrom"]
        assert f"kubelogin --login {KUBELOGIN_LOGIN}" in access["identity"]
        assert access["admins"] == [f"group:{ADMIN_GROUP}"]
        aks = records[f"{cluster['name']}-aks"].inputs["apiServerAccessProfile"]
        assert aks["enablePrivateCluster"] is True and aks["enablePrivateClusterPublicFQDN"] is False
        # The provider signs in without a prompt, as the identity the Azure CLI holds.
        kubeconfig = yaml.safe_load(records[f"{cluster['name']}-k8s"].raw_inputs["kubeconfig"]["value"])
        exec_args = kubeconfig["users"][0]["user"]["exec"]["args"]
        assert exec_args[:3] == ["get-token", "--login", "azurecli"] and "devicecode" not in exec_args
    # Each region's API name resolves from both regions' VNets.
    links = [r for r in records.values() if r.type == "azure-native:privatedns:VirtualNetworkLink"]
    assert len(links) == 4


def test_prod_azure_grants_cluster_admin_to_the_deployer_and_the_admin_group_and_acrpull_to_the_nodes(prod_azure):
    _, records = prod_azure
    grants = [r.inputs for r in records.values() if r.type == ROLE_ASSIGNMENT]
    for cluster in ("prod-azure-westeurope", "prod-azure-northeurope"):
        deployer = records[f"{cluster}-deployer-admin"].inputs
        assert deployer["roleDefinitionId"].endswith(AKS_RBAC_CLUSTER_ADMIN_ROLE)
        assert deployer["principalId"] == mocks_azure.DEPLOYER_OBJECT_ID
        assert deployer["scope"].startswith(f"{cluster}-rg-"), "the cluster's resource group"
        admin = records[f"{cluster}-admin-{ADMIN_GROUP}"].inputs
        assert (admin["principalId"], admin["principalType"]) == (ADMIN_GROUP, "Group")
        assert admin["scope"].startswith(f"{cluster}-aks-"), "the cluster"
        assert admin["roleAssignmentName"] == role_assignment_name(cluster, "admin", ADMIN_GROUP)
        pull = records[f"{cluster}-acr-pull-acmemodels"]
        kubelet = records[f"{cluster}-aks"].raw_outputs["identityProfile"]["kubeletidentity"]["objectId"]
        assert pull.inputs["scope"] == REGISTRY and pull.inputs["principalId"] == kubelet
        assert pull.inputs["roleDefinitionId"] == (
            f"/subscriptions/8f3c1a52-7d4e-4b9a-a6c1-2e5f0b9d7c31/providers/Microsoft.Authorization/roleDefinitions/"
            f"{ACR_PULL_ROLE}"
        )
    assert len({g["roleAssignmentName"] for g in grants}) == len(grants), "every assignment its own GUID"


def azure_dr_stack(stack: str, **platform) -> dict:
    return {
        "tier": "prod",
        "platform": {
            "cloud": "azure",
            "regions": ["westeurope", "northeurope"],
            "registries": {"acmemodels.azurecr.io": REGISTRY},
            "serving": {"gateway": {"exposure": "external", "domain": "models.acme.example"}},
            **platform,
        },
        "dr": {"rpo": "30s", "rto": "15m"},
        "cache": {"engine": "redis"},
        "endpoints": {"pricing": {"versions": {"v1": {"image": "acmemodels.azurecr.io/pricing:1.9.0"}}}},
    }


def plan_files(project: Path, out: Path, stack: str) -> tuple[dict, dict]:
    return (
        json.loads((out / stack / "inventory.json").read_text()),
        json.loads((out / stack / "dr.json").read_text()),
    )


def test_an_azure_dr_stack_with_a_cache_plans_with_a_consistent_backup_story(project, tmp_path, capsys):
    """It used to stop at `turnout:cache.backupRetention: found 0 days`, a value turnout derived itself. Now the
    regions' Azure Managed Redis databases form one active geo-replication group (Azure refuses persistence with
    it): the group is the protection, no snapshots are kept, dr.json promotes nothing and the policies agree."""
    write_stack(project, "azdr", azure_dr_stack("azdr"))
    status = main(["plan", "azdr", "--project", str(project), "--out", str(tmp_path)])
    assert status == 0, capsys.readouterr().err
    inventory, dr = plan_files(project, tmp_path, "azdr")
    assert dr["settings"]["cacheReplicas"] == ["northeurope"] and dr["settings"]["backupRetentionDays"] == 0
    assert inventory["outputs"]["cache"]["backup"] is None, "no snapshots, said so"
    assert inventory["outputs"]["cache"]["crossRegion"]["promotion"] == "none"
    databases = [r for r in inventory["resources"] if r["type"] == "azure-native:redisenterprise:Database"]
    assert len(databases) == 2 and all("persistence" not in d["inputs"] for d in databases)
    assert {d["inputs"]["geoReplication"]["groupNickname"] for d in databases} == {"azdr-cache"}
    assert not [r for r in inventory["resources"] if r["type"].startswith("azure-native:redis:")]
    assert not [line for line in dr["reasons"] if "promote" in line], dr["reasons"]
    assert dr["tier"] == "pilot-light", "the runbook scales the pilot light; it promotes nothing"
    assert any(line.startswith("rto cache promotion: 0s (none:") for line in dr["reasons"]), dr["reasons"]
    policy = json.loads((tmp_path / "azdr" / "policy.json").read_text())
    assert not [v for v in policy["violations"] if v["policy"] in ("cache-backups", "dr-cache-replication")]
    # Each region's models reach their own member on port 10000 over TLS, through the mesh's ServiceEntry.
    hosts = {
        r["inputs"]["location"]: f"{r['inputs']['clusterName']}.{r['inputs']['location']}.redis.azure.net"
        for r in inventory["resources"]
        if r["type"] == "azure-native:redisenterprise:RedisEnterprise"
    }
    entries = [r for r in inventory["resources"] if r["type"] == "kubernetes:networking.istio.io/v1:ServiceEntry"]
    cache_entries = [e["inputs"]["spec"] for e in entries if e["inputs"]["spec"]["hosts"][0] in hosts.values()]
    assert len(hosts) == 2 and sorted(e["hosts"][0] for e in cache_entries) == sorted(hosts.values())
    assert all(e["ports"] == [{"number": 10000, "name": "tls-redis", "protocol": "TLS"}] for e in cache_entries)


def test_a_derived_zero_retention_is_checked_only_where_snapshots_are_kept():
    check_cache_settings(
        cloud="azure", engine="redis", backup_interval_seconds=86400, backup_retention_days=0, replica_regions=("b",)
    )
    with pytest.raises(ConfigError):  # AWS Global Datastore members still snapshot
        check_cache_settings(
            cloud="aws", engine="redis", backup_interval_seconds=86400, backup_retention_days=0, replica_regions=("b",)
        )


LONG_STACK = "a-fifty-character-stack-name-for-azure-name-limits"


def test_every_azure_name_of_a_dr_stack_with_a_50_character_name_fits_its_service(project, tmp_path, capsys):
    assert len(LONG_STACK) == 50
    write_stack(project, LONG_STACK, azure_dr_stack(LONG_STACK))
    status = main(["plan", LONG_STACK, "--project", str(project), "--out", str(tmp_path)])
    assert status == 0, capsys.readouterr().err
    inventory, _ = plan_files(project, tmp_path, LONG_STACK)
    azure = [r for r in inventory["resources"] if r["type"].startswith("azure-native:")]
    assert {r["type"] for r in azure} >= {
        "azure-native:redisenterprise:RedisEnterprise",
        "azure-native:trafficmanager:Profile",
        "azure-native:keyvault:Vault",
        "azure-native:containerservice:ManagedCluster",
    }
    problems = [p for r in azure for p in name_violations(r["type"], r["inputs"])]
    assert problems == []
    checked = {r["type"] for r in azure if r["type"] in NAME_INPUTS}
    assert len(checked) >= 14, sorted(checked)
    # The derived names really were long: the table, not luck, kept them in.
    group = next(r for r in azure if r["type"] == "azure-native:resources:ResourceGroup")
    assert len(f"{LONG_STACK}-westeurope-rg") > 63 >= len(group["inputs"]["resourceGroupName"])


def test_the_name_table_catches_what_azure_would_refuse():
    assert name_violations("azure-native:storage:StorageAccount", {"accountName": "Prod_Cache"})
    assert name_violations("azure-native:keyvault:Vault", {"vaultName": "a" * 25})
    assert name_violations("azure-native:keyvault:Vault", {"vaultName": "kv--double"})
    assert name_violations("azure-native:containerservice:ManagedCluster", {"dnsPrefix": "p" * 55})
    assert name_violations("azure-native:trafficmanager:Profile", {"dnsConfig": {"relativeName": "Has_Upper"}})
    assert not name_violations("azure-native:storage:StorageAccount", {"accountName": "prodcache0a1b2c"})
    managed = "azure-native:redisenterprise:RedisEnterprise"
    assert name_violations(managed, {"clusterName": "c" * 61})  # 1-60 characters
    assert name_violations(managed, {"clusterName": "cache--west"}) and name_violations(managed, {"clusterName": "-c"})
    assert not name_violations(managed, {"clusterName": "c" * 60})


def registries_config(images: dict[str, str], registries: dict[str, str] | None = None, cloud: str = "azure"):
    platform = {"cloud": cloud, "regions": ["westeurope" if cloud == "azure" else "us-east-1"]}
    if registries is not None:
        platform["registries"] = registries
    return load(
        {
            "platform": platform,
            "endpoints": {"pricing": {"versions": {v: {"image": image} for v, image in images.items()}}},
        }
    )


def test_an_azure_registry_image_needs_its_registry_located():
    config = registries_config({"v1": "acmemodels.azurecr.io/pricing:1.9.0"})
    with pytest.raises(ConfigError) as caught:
        check_registries(config.platform, config.endpoints)
    assert caught.value.path == "turnout:endpoints.pricing.versions.v1.image"
    assert "turnout:platform.registries" in caught.value.allowed
    located = registries_config({"v1": "acmemodels.azurecr.io/pricing:1.9.0"}, {"acmemodels.azurecr.io": REGISTRY})
    assert check_registries(located.platform, located.endpoints) == (REGISTRY,)
    public = registries_config({"v1": "ghcr.io/acme/pricing:1.9.0"})
    assert check_registries(public.platform, public.endpoints) == ()


@pytest.mark.parametrize(
    ("registries", "cloud", "path", "found"),
    [
        ({"acme.example.com": REGISTRY}, "azure", "turnout:platform.registries.acme.example.com", "acme.example.com"),
        ({"acmemodels.azurecr.io": "acmemodels"}, "azure", "turnout:platform.registries.acmemodels.azurecr.io", "'a"),
        (
            {"othermodels.azurecr.io": REGISTRY},
            "azure",
            "turnout:platform.registries.othermodels.azurecr.io",
            "registry 'acmemodels'",
        ),
        ({"acmemodels.azurecr.io": REGISTRY}, "aws", "turnout:platform.registries", "with cloud aws"),
    ],
)
def test_registries_are_login_servers_with_their_own_resource_ids_on_azure_only(registries, cloud, path, found):
    config = registries_config({"v1": "ghcr.io/acme/pricing:1.9.0"}, registries, cloud)
    with pytest.raises(ConfigError) as caught:
        check_registries(config.platform, config.endpoints)
    assert caught.value.path == path and found in caught.value.found


@pytest.mark.parametrize("stack", [LONG_STACK, "Prod_Azure.v2", "9lives", "prod-azure"])
def test_the_failover_routing_name_is_a_valid_name_whatever_the_stack_name(stack):
    """The stack name is no key of the stack file: a long or odd one must never be refused as
    `turnout:globalTraffic.name` (what a 42-character stack name with DR used to get)."""
    name = routing_name(stack)
    assert re.fullmatch(NAME_PATTERN, name) and len(name) <= 40
    assert name == routing_name(stack) and name != routing_name(stack + "x")
    assert routing_name("prod-azure") == "prod-azure-models", "a name that fits stays readable"
