"""The GKE cluster under mocks: each API access path (dns, allowlist, in-network) with GKE's rules for it,
encrypted secrets under a key ring that survives recreation, Workload Identity, hardened node pools that start
with their minimum, GPU pools tainted, the webhook firewall rule, the APIs enabled first, the /16 layout,
and a kubeconfig built from the cluster's own outputs."""

from __future__ import annotations

import base64
import json

import pulumi
import pytest
import yaml

from components.cluster import ClusterArgs
from components.cluster.gcp_access import (
    GkeRuleError,
    check_control_plane,
    control_plane_rule_errors,
    control_plane_settings,
)
from components.cluster.gcp_apis import GKE_APIS
from components.cluster.gcp_network import GkeNetworkLayout
from components.cluster.gke import NODE_ROLES, GkeCluster, check_gke_args, gpu_shape, service_account_id
from tests.conftest import dependency_closure, write_stack
from turnout.cli import main
from turnout.config import NodePool
from turnout.errors import ConfigError
from turnout.offline import mocks_gcp
from turnout.offline.mocks import OFFLINE_CA_PEM, stable_hash
from turnout.offline.runtime import run_function

CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
FIREWALL = "gcp:compute/firewall:Firewall"
SERVICE = "gcp:projects/service:Service"
IAM_MEMBER = "gcp:projects/iAMMember:IAMMember"
LAYOUT = GkeNetworkLayout.of("10.0.0.0/16")
GENERAL = NodePool(name="general", machine_type="n2-standard-4", min=2, max=6)
GPU = NodePool(name="gpu", machine_type="n2-standard-4", min=0, max=2, gpu=1)


def gke_args(**overrides) -> ClusterArgs:
    args = {
        "cluster_name": "prod-europe-west4",
        "region": "europe-west4",
        "kubernetes_version": "1.34",
        "node_pools": (GENERAL, GPU),
    }
    return ClusterArgs(**{**args, **overrides})


def gke_run(**overrides):
    args = gke_args(**overrides)
    return run_function(lambda: GkeCluster(args.cluster_name, args))


def by_name(run):
    return {r.name: r for r in run.records}


def mock_id(record) -> str:
    """The id the offline mocks give every resource (turnout.offline.mocks.OfflineMocks.new_resource)."""
    return f"{record.name}-{stable_hash(record.type, record.name)}"


def kubeconfig_of(records, name: str = "prod-europe-west4") -> dict:
    return yaml.safe_load(records[f"{name}-k8s"].raw_inputs["kubeconfig"]["value"])


def kubeconfig_user(records, name: str = "prod-europe-west4") -> dict:
    return kubeconfig_of(records, name)["users"][0]["user"]["exec"]


def test_nodes_are_private_and_the_default_path_is_the_private_endpoint_with_authorized_networks_enabled():
    # ClusterArgs' default access is in-network: a private endpoint, which GKE refuses without authorized networks.
    component = {}
    run = run_function(lambda: component.setdefault("gke", GkeCluster("prod-europe-west4", gke_args())))
    records = by_name(run)
    cluster = records["prod-europe-west4-cluster"]
    assert cluster.type == CLUSTER
    assert cluster.inputs["name"] == "prod-europe-west4"
    assert cluster.inputs["location"] == "europe-west4", "regional: control plane and nodes across the zones"
    assert cluster.inputs["privateClusterConfig"] == {
        "enablePrivateNodes": True,
        "enablePrivateEndpoint": True,
        "masterIpv4CidrBlock": "10.0.176.0/28",
    }
    assert cluster.inputs["masterAuthorizedNetworksConfig"] == {
        "cidrBlocks": [{"cidrBlock": "10.0.0.0/16", "displayName": "10.0.0.0/16"}],
        "gcpPublicCidrsAccessEnabled": False,
    }, "enabled (the block is present) and admitting only the cluster's own /16"
    assert cluster.inputs["controlPlaneEndpointsConfig"] == {
        "dnsEndpointConfig": {"allowExternalTraffic": False},
        "ipEndpointsConfig": {"enabled": True},
    }
    assert cluster.inputs["removeDefaultNodePool"] is True and cluster.inputs["initialNodeCount"] == 1
    assert cluster.inputs["deletionProtection"] is True
    server = kubeconfig_of(records)["clusters"][0]["cluster"]
    assert server["server"] == "https://10.0.176.2", "the private endpoint, in the control plane's /28"
    assert "certificate-authority-data" in server
    access = component["gke"].access
    assert (access.mode, access.reachable_from) == ("in-network", "inside 10.0.0.0/16 (the cluster's VPC)")


def test_dns_access_is_the_dns_endpoint_alone_with_a_kubeconfig_on_it_and_no_pinned_ca():
    component = {}
    args = gke_args(api_access="dns", admins=("group:platform@acme.example",))
    run = run_function(lambda: component.setdefault("gke", GkeCluster(args.cluster_name, args)))
    records = by_name(run)
    cluster = records["prod-europe-west4-cluster"]
    assert cluster.inputs["controlPlaneEndpointsConfig"] == {
        "dnsEndpointConfig": {"allowExternalTraffic": True},
        "ipEndpointsConfig": {"enabled": False},
    }
    # As the API reports it with no IP endpoint; no allowlist, which pulumi-gcp would drop unsent.
    assert cluster.inputs["privateClusterConfig"]["enablePrivateEndpoint"] is True
    assert "masterAuthorizedNetworksConfig" not in cluster.inputs
    dns_endpoint = cluster.raw_outputs["controlPlaneEndpointsConfig"]["dnsEndpointConfig"]["endpoint"]
    assert dns_endpoint.endswith(".europe-west4.gke.goog")
    server = kubeconfig_of(records)["clusters"][0]["cluster"]
    assert server == {"server": f"https://{dns_endpoint}"}, "Google's front end has a public certificate: no CA"
    assert kubeconfig_user(records)["args"] == ["--use_application_default_credentials"]
    access = component["gke"].access
    assert access.mode == "dns" and access.reachable_from.startswith("anywhere, through the DNS endpoint")
    assert "Application Default Credentials" in access.identity
    assert access.admins == ("group:platform@acme.example",)
    admin = records["prod-europe-west4-admin-group-platform@acme.example"]
    assert admin.type == IAM_MEMBER
    assert admin.inputs == {
        "project": "turnout-offline",
        "role": "roles/container.admin",
        "member": "group:platform@acme.example",
    }


def test_api_allowlist_opens_the_public_endpoint_to_exactly_those_cidrs():
    component = {}
    args = gke_args(api_access="allowlist", api_access_cidrs=("203.0.113.0/24", "198.51.100.7/32"))
    records = by_name(run_function(lambda: component.setdefault("gke", GkeCluster(args.cluster_name, args))))
    cluster = records["prod-europe-west4-cluster"].inputs
    assert cluster["privateClusterConfig"] == {
        "enablePrivateNodes": True,
        "enablePrivateEndpoint": False,
        "masterIpv4CidrBlock": "10.0.176.0/28",
    }
    assert cluster["masterAuthorizedNetworksConfig"] == {
        "cidrBlocks": [
            {"cidrBlock": "203.0.113.0/24", "displayName": "203.0.113.0/24"},
            {"cidrBlock": "198.51.100.7/32", "displayName": "198.51.100.7/32"},
        ],
        "gcpPublicCidrsAccessEnabled": False,
    }
    assert cluster["controlPlaneEndpointsConfig"]["dnsEndpointConfig"] == {"allowExternalTraffic": False}
    assert kubeconfig_of(records)["clusters"][0]["cluster"]["server"].startswith("https://34.")
    assert component["gke"].access.reachable_from == "203.0.113.0/24, 198.51.100.7/32"


def test_gke_rules_catch_what_the_api_would_refuse_or_the_provider_drop():
    # The configuration before this change: a private endpoint and no master_authorized_networks_config.
    old = {"private_cluster_config": {"enable_private_nodes": True, "enable_private_endpoint": True}}
    assert any("Master authorized networks must be enabled" in e for e in control_plane_rule_errors(old, LAYOUT))
    with pytest.raises(GkeRuleError, match="prod-europe-west4"):
        check_control_plane(old, LAYOUT, "prod-europe-west4")
    public_on_private = control_plane_settings("in-network", LAYOUT, ())
    public_on_private["master_authorized_networks_config"]["cidr_blocks"] = [{"cidr_block": "203.0.113.0/24"}]
    assert control_plane_rule_errors(public_on_private, LAYOUT) == [
        "a private endpoint's authorized networks must be internal, not 203.0.113.0/24"
    ]
    dns_with_allowlist = control_plane_settings("dns", LAYOUT, ())
    dns_with_allowlist["master_authorized_networks_config"] = {"cidr_blocks": []}
    assert "pulumi-gcp drops it unsent" in control_plane_rule_errors(dns_with_allowlist, LAYOUT)[0]
    closed = control_plane_settings("dns", LAYOUT, ())
    closed["control_plane_endpoints_config"]["dns_endpoint_config"]["allow_external_traffic"] = False
    assert control_plane_rule_errors(closed, LAYOUT) == [
        "neither an IP endpoint nor a DNS endpoint open to external traffic: no one reaches the API"
    ]
    wrong_block = control_plane_settings("in-network", LAYOUT, ())
    wrong_block["private_cluster_config"].update(
        master_ipv4_cidr_block="10.0.128.0/27", private_endpoint_subnetwork="x"
    )
    assert len(control_plane_rule_errors(wrong_block, LAYOUT)) == 3, "not a /28, overlapping nodes, with a subnet"
    for mode, cidrs in (("dns", ()), ("allowlist", ("203.0.113.0/24",)), ("in-network", ())):
        assert control_plane_rule_errors(control_plane_settings(mode, LAYOUT, cidrs), LAYOUT) == [], mode


def test_the_control_plane_may_call_istiod_and_knative_webhooks_on_the_nodes():
    records = by_name(gke_run())
    rule = records["prod-europe-west4-webhooks"]
    cluster = records["prod-europe-west4-cluster"].inputs
    assert rule.type == FIREWALL
    assert rule.inputs["direction"] == "INGRESS"
    assert rule.inputs["network"] == mock_id(records["prod-europe-west4-network"])
    assert rule.inputs["sourceRanges"] == [cluster["privateClusterConfig"]["masterIpv4CidrBlock"]]
    assert rule.inputs["allows"] == [{"protocol": "tcp", "ports": ["15017", "8443"]}]
    for name in ("general", "gpu"):
        assert records[f"prod-europe-west4-pool-{name}"].inputs["nodeConfig"]["tags"] == rule.inputs["targetTags"]


def test_the_apis_are_enabled_first_and_never_disabled_on_destroy():
    run = gke_run()
    records = {r.urn: r for r in run.records}
    services = [r for r in run.records if r.type == SERVICE]
    assert sorted(r.inputs["service"] for r in services) == sorted(GKE_APIS)
    assert {"container.googleapis.com", "compute.googleapis.com", "cloudkms.googleapis.com"} <= set(GKE_APIS)
    assert all(r.inputs["disableOnDestroy"] is False for r in services)
    apis = {r.urn for r in services}
    for record in run.records:
        if record.type.startswith("gcp:") and record.type != SERVICE:
            assert apis <= dependency_closure(records, record.urn), f"{record.name} waits for every API"


def test_key_rings_carry_a_random_suffix_kept_in_state():
    first, second = by_name(gke_run()), by_name(gke_run())
    suffix = first["prod-europe-west4-keyring-suffix"]
    assert suffix.type == "random:index/randomId:RandomId" and suffix.inputs["byteLength"] == 3
    ring = first["prod-europe-west4-keyring"].inputs["name"]
    assert ring == f"prod-europe-west4-{suffix.raw_outputs['hex']}" and len(suffix.raw_outputs["hex"]) == 6
    assert ring == second["prod-europe-west4-keyring"].inputs["name"], "the same in every plan (offline)"


def test_node_pools_start_with_their_minimum_across_three_zones_and_keep_it_on_refresh():
    ignored = {}

    def remember(args: pulumi.ResourceTransformationArgs):
        if args.type_ == NODE_POOL:
            ignored[args.name] = args.opts.ignore_changes
        return None

    def program():
        pulumi.runtime.register_stack_transformation(remember)
        args = gke_args(node_pools=(GENERAL, GPU, NodePool(name="big", min=7, max=9)))
        GkeCluster(args.cluster_name, args)

    records = by_name(run_function(program))
    pools = ("general", "gpu", "big")
    counts = {name: records[f"prod-europe-west4-pool-{name}"].inputs["initialNodeCount"] for name in pools}
    assert counts == {"general": 1, "gpu": 0, "big": 3}, "per zone: ceil(min / 3)"
    autoscaling = records["prod-europe-west4-pool-big"].inputs["autoscaling"]
    assert (autoscaling["totalMinNodeCount"], autoscaling["totalMaxNodeCount"]) == (7, 9), "autoscaling kept"
    assert ignored == {f"prod-europe-west4-pool-{name}": ["initialNodeCount"] for name in pools}


def test_workload_identity_uses_the_projects_pool_and_nodes_hide_instance_metadata():
    run = run_function(lambda: pulumi_export_pool(gke_args()))
    records = by_name(run)
    pool = "turnout-offline.svc.id.goog"
    assert records["prod-europe-west4-cluster"].inputs["workloadIdentityConfig"] == {"workloadPool": pool}
    assert run.stack_outputs["workloadPool"] == pool
    for name in ("general", "gpu"):
        node_config = records[f"prod-europe-west4-pool-{name}"].inputs["nodeConfig"]
        assert node_config["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}


def pulumi_export_pool(args: ClusterArgs) -> None:
    cluster = GkeCluster(args.cluster_name, args)
    pulumi.export("workloadPool", cluster.workload_pool)


def test_release_channel_and_pools_that_repair_upgrade_and_autoscale():
    records = by_name(gke_run())
    cluster = records["prod-europe-west4-cluster"].inputs
    assert cluster["releaseChannel"] == {"channel": "REGULAR"}
    assert cluster["minMasterVersion"] == "1.34"
    pools = {r.inputs["name"]: r for r in records.values() if r.type == NODE_POOL}
    assert sorted(pools) == ["general", "gpu"]
    for pool in pools.values():
        assert pool.inputs["management"] == {"autoRepair": True, "autoUpgrade": True}
        assert pool.inputs["cluster"] == "prod-europe-west4"
        assert pool.inputs["location"] == "europe-west4"
        assert records["prod-europe-west4-cluster"].urn in pool.dependencies
    assert pools["general"].inputs["autoscaling"] == {
        "totalMinNodeCount": 2,
        "totalMaxNodeCount": 6,
        "locationPolicy": "BALANCED",
    }
    assert pools["gpu"].inputs["autoscaling"]["totalMinNodeCount"] == 0
    assert pools["gpu"].inputs["autoscaling"]["totalMaxNodeCount"] == 2


def test_shielded_nodes_with_secure_boot_and_dataplane_v2_with_logging_and_monitoring():
    records = by_name(gke_run())
    cluster = records["prod-europe-west4-cluster"].inputs
    assert cluster["enableShieldedNodes"] is True
    assert cluster["datapathProvider"] == "ADVANCED_DATAPATH"
    assert "networkPolicy" not in cluster, "Dataplane V2 enforces NetworkPolicy; the Calico addon must stay off"
    assert cluster["loggingConfig"] == {"enableComponents": ["SYSTEM_COMPONENTS", "WORKLOADS"]}
    assert cluster["monitoringConfig"]["enableComponents"] == ["SYSTEM_COMPONENTS"]
    for name in ("general", "gpu"):
        node_config = records[f"prod-europe-west4-pool-{name}"].inputs["nodeConfig"]
        assert node_config["shieldedInstanceConfig"] == {"enableSecureBoot": True, "enableIntegrityMonitoring": True}


def test_secrets_are_encrypted_with_a_rotated_kms_key_the_gke_agent_may_use():
    records = by_name(gke_run())
    ring = records["prod-europe-west4-keyring"]
    key = records["prod-europe-west4-secrets-key"]
    assert ring.type == "gcp:kms/keyRing:KeyRing" and ring.inputs["location"] == "europe-west4"
    assert key.inputs["keyRing"] == mock_id(ring)
    assert key.inputs["rotationPeriod"] == "7776000s"
    assert key.inputs["purpose"] == "ENCRYPT_DECRYPT"

    cluster = records["prod-europe-west4-cluster"]
    assert cluster.inputs["databaseEncryption"] == {"state": "ENCRYPTED", "keyName": mock_id(key)}

    binding = records["prod-europe-west4-secrets-key-gke-agent"]
    assert binding.type == "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
    assert binding.inputs == {
        "cryptoKeyId": mock_id(key),
        "role": "roles/cloudkms.cryptoKeyEncrypterDecrypter",
        "member": "serviceAccount:service-123456789012@container-engine-robot.iam.gserviceaccount.com",
    }
    assert binding.urn in cluster.dependencies, "GKE checks the key is usable when it creates the cluster"


def test_gpu_pool_gets_l4s_their_driver_a_taint_and_a_label():
    node_config = by_name(gke_run())["prod-europe-west4-pool-gpu"].inputs["nodeConfig"]
    assert node_config["machineType"] == "g2-standard-8", "the CPU default becomes the G2 machine with one L4"
    assert node_config["guestAccelerators"] == [
        {"type": "nvidia-l4", "count": 1, "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"}}
    ]
    assert node_config["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert node_config["labels"] == {"turnout.dev/pool": "gpu", "nvidia.com/gpu.present": "true"}


def test_cpu_pool_has_no_taint_no_accelerator_and_keeps_its_machine_type():
    node_config = by_name(gke_run())["prod-europe-west4-pool-general"].inputs["nodeConfig"]
    assert node_config["machineType"] == "n2-standard-4"
    assert "taints" not in node_config and "guestAccelerators" not in node_config
    assert node_config["labels"] == {"turnout.dev/pool": "general"}


def test_nodes_run_as_a_dedicated_account_with_minimal_roles():
    records = by_name(gke_run())
    account = records["prod-europe-west4-nodes-sa"]
    assert account.inputs["accountId"] == "prod-europe-west4-nodes"
    email = "prod-europe-west4-nodes@turnout-offline.iam.gserviceaccount.com"
    grants = [r.inputs for r in records.values() if r.type == "gcp:projects/iAMMember:IAMMember"]
    assert sorted(g["role"] for g in grants) == sorted(NODE_ROLES)
    assert {g["member"] for g in grants} == {f"serviceAccount:{email}"}
    assert {g["project"] for g in grants} == {"turnout-offline"}
    assert not {"roles/editor", "roles/owner"} & {g["role"] for g in grants}
    for name in ("general", "gpu"):
        node_config = records[f"prod-europe-west4-pool-{name}"].inputs["nodeConfig"]
        assert node_config["serviceAccount"] == email
        assert node_config["oauthScopes"] == ["https://www.googleapis.com/auth/cloud-platform"]


def test_vpc_native_networking_in_its_own_vpc_with_nat_for_private_nodes():
    records = by_name(gke_run())
    network = records["prod-europe-west4-network"]
    subnet = records["prod-europe-west4-subnet"]
    assert network.inputs["autoCreateSubnetworks"] is False
    assert subnet.inputs["network"] == mock_id(network)
    assert subnet.inputs["region"] == "europe-west4"
    assert subnet.inputs["privateIpGoogleAccess"] is True
    assert subnet.inputs["ipCidrRange"] == "10.0.128.0/20"
    ranges = {r["rangeName"]: r["ipCidrRange"] for r in subnet.inputs["secondaryIpRanges"]}
    assert ranges == {"pods": "10.0.0.0/17", "services": "10.0.144.0/20"}

    cluster = records["prod-europe-west4-cluster"].inputs
    assert cluster["networkingMode"] == "VPC_NATIVE"
    assert cluster["network"] == mock_id(network) and cluster["subnetwork"] == mock_id(subnet)
    assert cluster["ipAllocationPolicy"] == {
        "clusterSecondaryRangeName": "pods",
        "servicesSecondaryRangeName": "services",
    }

    router = records["prod-europe-west4-router"]
    nat = records["prod-europe-west4-nat"]
    assert router.inputs["network"] == mock_id(network) and router.inputs["region"] == "europe-west4"
    assert nat.inputs["router"] == "prod-europe-west4-router"
    assert nat.inputs["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"
    assert nat.inputs["natIpAllocateOption"] == "AUTO_ONLY"


def test_every_gcp_child_uses_the_regions_explicit_provider_in_the_stacks_project():
    args = gke_args()
    run = run_function(lambda: GkeCluster(args.cluster_name, args), config={"gcp:project": "acme-models"})
    records = by_name(run)
    provider = records["prod-europe-west4-gcp"]
    assert provider.type == "pulumi:providers:gcp"
    assert provider.inputs["region"] == "europe-west4"
    assert provider.inputs["project"] == "acme-models", "an explicit provider reads no stack config by itself"
    children = [r for r in records.values() if r.type.startswith("gcp:")]
    assert len(children) == 16 + len(GKE_APIS) + 1, "the cluster's resources, its APIs and the webhook rule"
    assert {r.provider for r in children} == {provider.urn}
    assert {r.parent for r in children} == {records["prod-europe-west4"].urn}


def test_kubeconfig_is_a_secret_built_from_the_clusters_endpoint_and_ca():
    records = by_name(gke_run())
    provider = records["prod-europe-west4-k8s"]
    assert provider.type == "pulumi:providers:kubernetes"
    assert provider.inputs["kubeconfig"] == "[secret]"
    cluster_outputs = records["prod-europe-west4-cluster"].raw_outputs
    kubeconfig = kubeconfig_of(records)
    context = "gke_turnout-offline_europe-west4_prod-europe-west4"
    assert kubeconfig["current-context"] == context
    server = kubeconfig["clusters"][0]["cluster"]
    assert server["server"] == f"https://{cluster_outputs['endpoint']}"
    assert base64.b64decode(server["certificate-authority-data"]).decode() == OFFLINE_CA_PEM
    user = kubeconfig["users"][0]["user"]
    assert user["exec"]["command"] == "gke-gcloud-auth-plugin"
    assert user["exec"]["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    # The plugin's default is the gcloud CLI's account; the gcp provider signs in with ADC: the same identity.
    assert user["exec"]["args"] == ["--use_application_default_credentials"]
    assert "token" not in user and "client-key-data" not in user, "no credential is stored in the kubeconfig"
    pools = {r.urn for r in records.values() if r.type == NODE_POOL}
    assert len(pools) == 2 and pools <= set(provider.dependencies), "usable only once nodes exist"


def test_two_regions_get_distinct_deterministic_names():
    def program():
        for index, region in enumerate(("europe-west4", "us-central1")):
            args = gke_args(cluster_name=f"prod-{region}", region=region, network_cidr=f"10.{index}.0.0/16")
            GkeCluster(args.cluster_name, args)

    first, second = run_function(program), run_function(program)
    assert [(r.urn, r.inputs) for r in first.records] == [(r.urn, r.inputs) for r in second.records]
    clusters = {r.inputs["name"]: r.inputs["location"] for r in first.records if r.type == CLUSTER}
    assert clusters == {"prod-europe-west4": "europe-west4", "prod-us-central1": "us-central1"}
    urns = [r.urn for r in first.records]
    assert len(urns) == len(set(urns))
    # Node pools and crypto keys are named within their cluster and key ring; everything else within the project.
    scoped = (NODE_POOL, "gcp:kms/cryptoKey:CryptoKey")
    physical = [(r.type, r.inputs["name"]) for r in first.records if "name" in r.inputs and r.type not in scoped]
    assert len(physical) == 14 and len(set(physical)) == 14, "no two project-wide GCP resources share a name"
    accounts = {r.inputs["accountId"] for r in first.records if r.type == "gcp:serviceaccount/account:Account"}
    assert accounts == {"prod-europe-west4-nodes", "prod-us-central1-nodes"}
    endpoints = {r.raw_outputs["endpoint"] for r in first.records if r.type == CLUSTER}
    assert endpoints == {"10.0.176.2", "10.1.176.2"}, "each in its region's own /16"


def test_gpu_shapes_follow_the_gpu_count_or_the_machine_family():
    assert gpu_shape(NodePool(name="gpu", machine_type="n2-standard-4", gpu=4), 0) == ("g2-standard-48", "nvidia-l4")
    assert gpu_shape(NodePool(name="gpu", machine_type="n1-standard-8", gpu=2), 0) == (
        "n1-standard-8",
        "nvidia-tesla-t4",
    )
    with pytest.raises(ConfigError) as caught:
        gpu_shape(NodePool(name="gpu", machine_type="n2-standard-4", gpu=3), 1)
    assert caught.value.path == "turnout:platform.nodePools[1].gpu"
    with pytest.raises(ConfigError) as caught:
        gpu_shape(NodePool(name="gpu", machine_type="e2-standard-4", gpu=1), 0)
    assert caught.value.path == "turnout:platform.nodePools[0].machineType"


def test_long_stack_names_are_fitted_and_names_gke_would_refuse_fail_before_anything_is_created():
    long = gke_args(cluster_name="staging-with-a-long-name-northamerica-northeast1", region="northamerica-northeast1")
    records = by_name(run_function(lambda: GkeCluster(long.cluster_name, long)))
    name = records[f"{long.cluster_name}-cluster"].inputs["name"]
    assert len(name) == 40 and name.startswith("staging-with-a-long-name-northa-"), "a stable hash keeps it distinct"
    with pytest.raises(ConfigError) as caught:
        check_gke_args(gke_args(cluster_name="Prod_EU-europe-west4"))
    assert (caught.value.path, caught.value.found) == ("the stack name", "'Prod_EU'")
    assert "lowercase letters, digits and '-'" in caught.value.allowed
    with pytest.raises(ConfigError) as caught:
        check_gke_args(gke_args(node_pools=(NodePool(name="a-pool-name-longer-than-forty-characters-x"),)))
    assert caught.value.path == "turnout:platform.nodePools[0].name"
    with pytest.raises(ConfigError):
        run_function(lambda: GkeCluster("x", gke_args(node_pools=(NodePool(name="gpu", gpu=5),))))


def test_the_region_network_is_carved_into_documented_ranges_with_a_node_limit():
    layout = GkeNetworkLayout.of("10.3.0.0/16")
    assert layout.ranges() == {
        "nodes": "10.3.128.0/20",
        "pods": "10.3.0.0/17",
        "services": "10.3.144.0/20",
        "privateServices": "10.3.160.0/20",
        "controlPlane": "10.3.176.0/28",
    }
    assert layout.max_nodes == 128
    records = by_name(gke_run(network_cidr="10.3.0.0/16"))
    assert records["prod-europe-west4-subnet"].inputs["ipCidrRange"] == "10.3.128.0/20"
    control_plane = records["prod-europe-west4-cluster"].inputs["privateClusterConfig"]["masterIpv4CidrBlock"]
    assert control_plane == "10.3.176.0/28"
    pools = (NodePool(name="general", max=100), NodePool(name="batch", max=27))
    with pytest.raises(ConfigError) as caught:
        check_gke_args(gke_args(node_pools=pools))
    assert caught.value.path == "turnout:platform.nodePools[0].max"
    assert "at most 128 nodes" in caught.value.allowed
    check_gke_args(gke_args(node_pools=(NodePool(name="general", max=100), NodePool(name="batch", max=26))))


def test_service_account_ids_stay_within_thirty_characters_and_stable():
    assert service_account_id("prod-europe-west4") == "prod-europe-west4-nodes"
    long = service_account_id("staging-northamerica-northeast1")
    assert len(long) <= 30 and long == service_account_id("staging-northamerica-northeast1")
    assert long != service_account_id("staging-northamerica-northeast2")


def test_gcp_mocks_answer_only_gcp_and_in_wire_names():
    assert mocks_gcp.resource_outputs("kubernetes:core/v1:Namespace", "n", {}) is None
    assert mocks_gcp.invoke("aws:index/getRegion:getRegion", {}) is None
    assert mocks_gcp.invoke("gcp:organizations/getProject:getProject", {}) == {
        "projectId": "turnout-offline",
        "number": "123456789012",
        "name": "turnout-offline",
        "id": "projects/turnout-offline",
    }
    account = mocks_gcp.resource_outputs("gcp:serviceaccount/account:Account", "sa", {"accountId": "nodes"})
    assert account["email"] == "nodes@turnout-offline.iam.gserviceaccount.com"
    key = mocks_gcp.resource_outputs(
        "gcp:kms/cryptoKey:CryptoKey",
        "k",
        {"name": "gke-secrets", "keyRing": "projects/p/locations/europe-west4/keyRings/r"},
    )
    assert key["id"] == "projects/p/locations/europe-west4/keyRings/r/cryptoKeys/gke-secrets"
    random_id = mocks_gcp.resource_outputs("random:index/randomId:RandomId", "ring", {"byteLength": 3})
    assert random_id == mocks_gcp.resource_outputs("random:index/randomId:RandomId", "ring", {"byteLength": 3})
    assert len(random_id["hex"]) == 6 and random_id["dec"] == str(int(random_id["hex"], 16))


def test_gcp_plan_end_to_end_builds_a_gke_cluster(project, tmp_path, capsys):
    stack = {
        "platform": {"cloud": "gcp", "regions": ["europe-west4"]},
        "endpoints": {"scores": {"versions": {"v1": {"image": "ghcr.io/acme/scores:1.0.0"}}}},
    }
    write_stack(project, "gke", stack)
    status = main(["plan", "gke", "--project", str(project), "--out", str(tmp_path)])
    assert status == 0, capsys.readouterr().err
    inventory = json.loads((tmp_path / "gke" / "inventory.json").read_text())
    resources = {r["name"]: r for r in inventory["resources"]}
    assert resources["gke-europe-west4"]["type"] == "turnout:cluster:GkeCluster"
    cluster = resources["gke-europe-west4-cluster"]
    assert cluster["type"] == "gcp:container/cluster:Cluster"
    assert cluster["inputs"]["privateClusterConfig"]["enablePrivateEndpoint"] is True
    assert cluster["inputs"]["controlPlaneEndpointsConfig"]["ipEndpointsConfig"] == {"enabled": False}
    assert inventory["outputs"]["clusters"][0]["apiAccess"]["mode"] == "dns", "gcp's default"
    assert resources["gke-europe-west4-pool-general"]["inputs"]["nodeConfig"]["machineType"] == "n2-standard-4"
    assert resources["gke-europe-west4-k8s"]["inputs"]["kubeconfig"] == "[secret]"
    assert inventory["outputs"]["kubeconfigs"] == {"gke-europe-west4": "[secret]"}
