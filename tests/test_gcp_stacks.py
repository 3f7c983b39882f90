"""Whole GCP stacks planned offline: the bundled prod-gcp stack's access path, webhook firewall rules and enabled
APIs; every generated name of a stack with a 50-character name and a cache within GCP's limits; a stack name no
GCP name accepts refused with exit status 2."""

from __future__ import annotations

import json

import pytest

from components.cluster.gcp_apis import GKE_APIS, MEMORYSTORE_APIS
from components.cluster.gcp_limits import GCP_NAMES, NAME_INPUTS
from tests.conftest import REPO, write_stack
from turnout.cli import main

PROD_GCP_CLUSTERS = {"prod-gcp-europe-west4": "10.0.0.0/16", "prod-gcp-europe-west1": "10.1.0.0/16"}


def resources_of(inventory: dict, type_: str) -> list[dict]:
    return [r for r in inventory["resources"] if r["type"] == type_]


@pytest.fixture(scope="module")
def prod_gcp(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("plan")
    assert main(["plan", "prod-gcp", "--project", str(REPO), "--out", str(out)]) == 0
    return json.loads((out / "prod-gcp" / "inventory.json").read_text())


def test_prod_gcp_reaches_each_cluster_through_its_dns_endpoint_as_the_deployer_and_the_admins(prod_gcp):
    clusters = {c["name"]: c for c in prod_gcp["outputs"]["clusters"]}
    assert {name: c["network"] for name, c in clusters.items()} == PROD_GCP_CLUSTERS
    for cluster in clusters.values():
        access = cluster["apiAccess"]
        assert access["mode"] == "dns"
        assert access["reachableFrom"].startswith("anywhere, through the DNS endpoint, with Google credentials")
        assert "Application Default Credentials" in access["identity"]
        assert access["admins"] == ["group:platform-admins@acme.example"]
    for gke in resources_of(prod_gcp, "gcp:container/cluster:Cluster"):
        assert gke["inputs"]["controlPlaneEndpointsConfig"] == {
            "dnsEndpointConfig": {"allowExternalTraffic": True},
            "ipEndpointsConfig": {"enabled": False},
        }, "no IP endpoint: only the IAM-guarded DNS endpoint"
        assert "masterAuthorizedNetworksConfig" not in gke["inputs"]
    grants = [g["inputs"] for g in resources_of(prod_gcp, "gcp:projects/iAMMember:IAMMember")]
    admins = [g for g in grants if g["member"] == "group:platform-admins@acme.example"]
    assert [g["role"] for g in admins] == ["roles/container.admin"] * 2, "one grant per cluster"


def test_prod_gcp_opens_the_webhook_ports_from_each_control_plane_to_its_nodes(prod_gcp):
    rules = {r["name"]: r["inputs"] for r in resources_of(prod_gcp, "gcp:compute/firewall:Firewall")}
    assert sorted(rules) == sorted(f"{cluster}-webhooks" for cluster in PROD_GCP_CLUSTERS)
    clusters = {c["inputs"]["name"]: c["inputs"] for c in resources_of(prod_gcp, "gcp:container/cluster:Cluster")}
    pools = {p["inputs"]["cluster"]: p["inputs"] for p in resources_of(prod_gcp, "gcp:container/nodePool:NodePool")}
    for cluster in PROD_GCP_CLUSTERS:
        rule = rules[f"{cluster}-webhooks"]
        assert rule["sourceRanges"] == [clusters[cluster]["privateClusterConfig"]["masterIpv4CidrBlock"]]
        assert rule["allows"] == [{"protocol": "tcp", "ports": ["15017", "8443"]}]
        assert rule["targetTags"] == pools[cluster]["nodeConfig"]["tags"]


def test_prod_gcp_enables_the_apis_it_calls(prod_gcp):
    services = resources_of(prod_gcp, "gcp:projects/service:Service")
    for cluster in PROD_GCP_CLUSTERS:
        mine = {s["inputs"]["service"] for s in services if s["name"].startswith(f"{cluster}-api-")}
        assert mine == set(GKE_APIS)
    assert {s["inputs"]["disableOnDestroy"] for s in services} == {False}


def name_violations(inventory: dict) -> list[str]:
    """Every GCP resource's name checked against the table; a named GCP type missing from it is a violation."""
    found = []
    for resource in inventory["resources"]:
        type_, inputs = resource["type"], resource["inputs"]
        if type_ in NAME_INPUTS:
            key, kind = NAME_INPUTS[type_]
            rule = GCP_NAMES[kind]
            if not rule.accepts(inputs[key]):
                found.append(f"{type_} {inputs[key]!r} ({len(inputs[key])} > {rule.max_length} or not {rule.pattern})")
        elif type_.startswith("gcp:") and "name" in inputs and type_ != "gcp:dns/recordSet:RecordSet":
            found.append(f"{type_} has a name the table does not cover")
    return found


def test_a_fifty_character_stack_name_with_a_cache_plans_with_every_gcp_name_in_its_limits(project, tmp_path, capsys):
    stack = "ml-" + "really-long-stack-name-" * 2 + "x"
    assert len(stack) == 50
    config = {
        "tier": "prod",
        "platform": {"cloud": "gcp", "regions": ["northamerica-northeast1", "europe-west1"]},
        "cache": {"engine": "redis"},
        "endpoints": {"scores": {"versions": {"v1": {"image": "ghcr.io/acme/scores:1.0.0"}}}},
    }
    write_stack(project, stack, config)
    status = main(["plan", stack, "--project", str(project), "--out", str(tmp_path)])
    assert status == 0, capsys.readouterr().err
    inventory = json.loads((tmp_path / stack / "inventory.json").read_text())
    assert name_violations(inventory) == []
    types = {r["type"] for r in inventory["resources"]}
    assert {"gcp:redis/instance:Instance", "gcp:kms/keyRing:KeyRing", "gcp:compute/firewall:Firewall"} <= types
    names = [r["inputs"].get("name") for r in resources_of(inventory, "gcp:container/cluster:Cluster")]
    assert len(set(names)) == 2, "the hash keeps two long cluster names apart"
    cache_apis = {
        s["inputs"]["service"]
        for s in resources_of(inventory, "gcp:projects/service:Service")
        if "-cache-api-" in s["name"]
    }
    assert cache_apis == set(MEMORYSTORE_APIS)


def test_the_table_catches_an_over_long_name():
    inventory = {"resources": [{"type": "gcp:redis/instance:Instance", "inputs": {"name": "x" * 41}}]}
    assert len(name_violations(inventory)) == 1


def test_a_stack_name_no_gcp_name_accepts_is_refused_naming_the_stack_name(project, tmp_path, capsys):
    config = {
        "platform": {"cloud": "gcp", "regions": ["europe-west4"]},
        "endpoints": {"scores": {"versions": {"v1": {"image": "ghcr.io/acme/scores:1.0.0"}}}},
    }
    write_stack(project, "Prod_EU", config)
    assert main(["plan", "Prod_EU", "--project", str(project), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "the stack name: found 'Prod_EU'" in err and "starts with a letter" in err
    assert "Traceback" not in err
