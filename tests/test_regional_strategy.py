"""`endpoints.NAME.regions.REGION.strategy`: one region runs its own strategy for an endpoint (an A/B test in one
market), the others the endpoint's. Planned on two GKE regions: each cluster's routes and traffic.json entry,
the platform each cluster needs (Flagger and the experiment agent only where a region's strategy uses them), the
policies on each cluster's objects; bad configs name the key."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import load, plan_stacks
from turnout.errors import ConfigError

HOME, MARKET = "europe-west4", "australia-southeast1"
VERSIONS = {v: {"image": f"europe-docker.pkg.dev/acme/models/shop:1.{i}.0"} for i, v in enumerate(["v1", "v2"])}
CANARY = {"type": "canary", "stable": "v1", "canary": "v2", "weight": 10}
AB = {
    "type": "ab-test",
    "variants": {"v1": 50, "v2": 50},
    "segment": {"header": "x-market", "value": "au"},
    "default": "v1",
}


def config(regions: dict, *, strategy: dict = CANARY, cloud: str = "gcp", **extra) -> dict:
    return {
        "tier": "dev",
        "platform": {"cloud": cloud, "regions": [HOME, MARKET] if cloud == "gcp" else ["us-east-1", "us-west-2"]},
        "endpoints": {"shop": {"versions": VERSIONS, "strategy": strategy, "regions": regions}},
        **extra,
    }


STACKS = {
    "market-ab": config({MARKET: {"strategy": AB}}),
    "market-progressive": config({MARKET: {"strategy": {**CANARY, "progressive": {}}}}),
}


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    return plan_stacks(tmp_path_factory, STACKS)


def documents(stack_folder, cluster: str) -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in sorted((stack_folder / "manifests" / cluster).glob("*.yaml"))]


def cluster_of(plans, stack: str, region: str) -> str:
    (folder,) = [p.name for p in (plans / stack / "manifests").iterdir() if region in p.name]
    return folder


def test_one_market_runs_an_ab_test_and_the_others_the_canary(plans):
    traffic = {e["cluster"]: e for e in json.loads((plans / "market-ab" / "traffic.json").read_text())["endpoints"]}
    home, market = cluster_of(plans, "market-ab", HOME), cluster_of(plans, "market-ab", MARKET)
    assert traffic[home]["strategy"] == "canary" and traffic[market]["strategy"] == "ab-test"
    assert traffic[home]["routes"] == [
        {"match": None, "to": [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}], "mirror": []}
    ]
    segment, rest = traffic[market]["routes"]
    assert segment["match"] == {"header": "x-market", "value": "au"}
    assert {d["version"]: d["weight"] for d in segment["to"]} == {"v1": 50, "v2": 50}
    assert rest == {"match": None, "to": [{"version": "v1", "weight": 100}], "mirror": []}
    # The rendered objects say the same, per cluster.
    for cluster, matched in ((home, False), (market, True)):
        (vs,) = [d for d in documents(plans / "market-ab", cluster) if d["kind"] == "VirtualService"]
        assert any("match" in r for r in vs["spec"]["http"]) is matched
    violations = json.loads((plans / "market-ab" / "policy.json").read_text())["violations"]
    assert [v for v in violations if v["level"] == "mandatory"] == []


def test_flagger_runs_only_where_a_region_needs_it(plans):
    home, market = (cluster_of(plans, "market-progressive", r) for r in (HOME, MARKET))
    kinds = {c: {d["kind"] for d in documents(plans / "market-progressive", c)} for c in (home, market)}
    assert "Canary" in kinds[market] and "Canary" not in kinds[home]
    inventory = json.loads((plans / "market-progressive" / "inventory.json").read_text())
    releases = [r for r in inventory["resources"] if r["type"] == "kubernetes:helm.sh/v3:Release"]
    flagger = [r["name"] for r in releases if r["inputs"].get("chart") == "flagger"]
    assert len(flagger) == 1 and MARKET in flagger[0], flagger


@pytest.mark.parametrize(
    ("stack", "key", "says"),
    [
        (config({"eu-west1": {"strategy": AB}}), "endpoints.shop.regions.eu-west1", "one of platform.regions"),
        (
            config({MARKET: {"strategy": {**AB, "variants": {"v1": 50, "v9": 50}}}}),
            f"endpoints.shop.regions.{MARKET}.strategy.variants.v9",
            "a version defined under versions",
        ),
        (
            config({MARKET: {"strategy": {**AB, "variants": {"v1": 50, "v2": 40}}}}),
            f"endpoints.shop.regions.{MARKET}.strategy.variants",
            "summing to 100",
        ),
        (config({MARKET: {"strategy": {"type": "nope"}}}), f"endpoints.shop.regions.{MARKET}.strategy.type", "canary"),
        (config({MARKET: {}}), f"endpoints.shop.regions.{MARKET}.strategy", ""),
        (
            config({MARKET: {"strategy": {"type": "bandit", "arms": ["v1", "v2"]}}}),
            "platform.serving.agentImage",
            "experiment agent",
        ),
        (
            config(
                {"us-west-2": {"strategy": {"type": "recreate", "version": "v2"}}},
                cloud="aws",
                dr={"rpo": "1h", "rto": "4h"},
            ),
            "endpoints.shop.regions.us-west-2.strategy",
            "the same Deployments",
        ),
    ],
)
def test_bad_configs_name_the_key(stack, key, says):
    with pytest.raises(ConfigError) as caught:
        loaded = load(stack)
        from components.endpoint.experiment_agent import check_experiment_agents

        check_experiment_agents(loaded)
    assert caught.value.path == f"turnout:{key}", caught.value
    assert says in caught.value.allowed, caught.value
