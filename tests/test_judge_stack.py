"""Progressive canaries judged by the sequential test (`progressive.judge: sequential`), planned: the Canary's
webhooks to the experiment agent in place of Flagger's threshold checks, the agent's settings as the agent parses
them, its least privilege (no Kubernetes API, one webhook port open to Flagger's pods only, the report through the
mesh), the checks every plan gets, and bad configs refused naming the key."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import CRDS, REPO, load, plan_stacks
from tests.crd_schema import load_crds, validate_custom_resource
from tests.test_strategies_render import documents
from turnout.errors import ConfigError

sys.path.insert(0, str(REPO / "apps" / "experiment-agent"))
from turnout_agent.settings import parse as parse_agent_settings  # noqa: E402

AGENT_IMAGE = "kind.local/turnout-experiment-agent:0.1.0"
VERSIONS = {v: {"image": f"ghcr.io/acme/m:1.{i}.0"} for i, v in enumerate(["v1", "v2"])}
CANARY = {"type": "canary", "stable": "v1", "canary": "v2", "weight": 10}
HOOKS = ["pre-rollout", "rollback", "rollout", "confirm-promotion"]


def config(strategy: dict, *, tier: str = "prod", tests: bool = False) -> dict:
    endpoint = {"versions": VERSIONS, "strategy": strategy}
    if tests:
        endpoint["tests"] = [{"path": "/", "expect": {"status": 200}}]
    return {
        "tier": tier,
        "platform": {"cloud": "kind", "regions": ["lab"], "loadImages": [AGENT_IMAGE]},
        "endpoints": {"shop": endpoint},
    }


STACKS = {
    "judged-prod": config({**CANARY, "progressive": {"judge": "sequential", "alpha": 0.02, "minRequests": 800}}),
    "judged-dev": config({**CANARY, "progressive": {"judge": "sequential"}}, tier="dev", tests=True),
    "threshold-dev": config({**CANARY, "progressive": {}}, tier="dev"),
}


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    return plan_stacks(tmp_path_factory, STACKS)


def objects(plans, stack: str, kind: str) -> list[dict]:
    return [d for d in documents(plans / stack) if d["kind"] == kind]


def only(plans, stack: str, kind: str, name: str | None = None) -> dict:
    (found,) = [d for d in objects(plans, stack, kind) if name is None or d["metadata"]["name"] == name]
    return found


def test_the_canary_calls_the_judge_instead_of_threshold_checks(plans):
    analysis = only(plans, "judged-prod", "Canary")["spec"]["analysis"]
    assert analysis["metrics"] == [], "no threshold check that fails for want of traffic"
    assert analysis["stepWeights"] == [10, 20, 30, 40, 50] and analysis["threshold"] == 5
    base = "http://shop-agent.shop.svc.cluster.local:8082/flagger/"
    assert [(w["type"], w["url"]) for w in analysis["webhooks"]] == [(h, base + h) for h in HOOKS]
    assert all(w["timeout"] == "15s" for w in analysis["webhooks"])
    assert all(w["metadata"] == {"turnout.dev/role": "sequential-judge"} for w in analysis["webhooks"])
    # With acceptance tests, they run first: the judge's baseline is taken after their requests.
    dev = only(plans, "judged-dev", "Canary")["spec"]["analysis"]["webhooks"]
    assert [w["type"] for w in dev] == ["pre-rollout", *HOOKS] and dev[0]["name"] == "acceptance-tests"
    threshold = only(plans, "threshold-dev", "Canary")["spec"]["analysis"]
    assert [m["name"] for m in threshold["metrics"]] == ["request-success-rate", "request-duration"]
    assert "webhooks" not in threshold
    assert not [d for d in documents(plans / "threshold-dev") if d["metadata"]["name"].startswith("shop-agent")]


@pytest.mark.parametrize("stack", ["judged-prod", "judged-dev"])
def test_the_agent_runs_with_settings_it_accepts_and_least_privilege(plans, stack):
    document = json.loads(only(plans, stack, "ConfigMap", "shop-agent-settings")["data"]["settings.json"])
    statefulset = only(plans, stack, "StatefulSet", "shop-agent")
    assert statefulset["spec"]["replicas"] == 1, "Flagger is its one caller; its analyses are on its volume"
    settings = parse_agent_settings(document, replica="shop-agent-0")
    judge = settings.experiment
    assert (settings.strategy, judge.primary_workload, judge.canary_workload) == ("canary", "shop-primary", "shop")
    assert (judge.stable, judge.canary, judge.webhook_port) == ("v1", "v2", 8082)
    assert (judge.alpha, judge.min_requests) == ((0.02, 800) if stack == "judged-prod" else (0.01, 500))
    assert judge.prometheus_url == "http://prometheus-server.turnout-monitoring"
    assert judge.latency_ms == 500, "slower than maxLatencyMs: judged as errors are"
    # No Kubernetes API: no Role, no binding, no Lease, no token.
    for kind in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "Lease"):
        assert not [d for d in objects(plans, stack, kind) if "agent" in d["metadata"]["name"]], kind
    template = statefulset["spec"]["template"]
    assert template["spec"]["automountServiceAccountToken"] is False
    assert template["metadata"]["annotations"]["traffic.sidecar.istio.io/excludeInboundPorts"] == "8082"
    ports = {p["name"]: p["containerPort"] for p in template["spec"]["containers"][0]["ports"]}
    assert ports == {"http": 8080, "flagger": 8082}
    # Through the mesh: anyone may read the report, nothing else.
    (callers,) = only(plans, stack, "AuthorizationPolicy", "allow-shop-agent")["spec"]["rules"]
    assert callers["to"] == [{"operation": {"methods": ["GET"], "paths": ["/v1/endpoints/shop/report"]}}]
    # Beside the mesh: the webhook port from Flagger's pods only.
    api, webhooks = only(plans, stack, "NetworkPolicy", "shop-agent-callers")["spec"]["ingress"]
    assert api["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert webhooks == {
        "from": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-system"}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "flagger"}},
            }
        ],
        "ports": [{"port": 8082, "protocol": "TCP"}],
    }
    note = json.loads((plans / stack / "traffic.json").read_text())["endpoints"][0]["agent"]
    assert note["owns"] == "judgement" and note["report"] == "/v1/endpoints/shop/report"


def test_plans_have_no_violation_and_objects_validate(plans):
    import kubernetes_validate

    crds = load_crds(CRDS)
    for stack in STACKS:
        violations = json.loads((plans / stack / "policy.json").read_text())["violations"]
        assert [v for v in violations if v["level"] == "mandatory"] == [], stack
        if stack == "judged-prod":  # no tests: the judge's own pre-rollout hook is no acceptance test
            assert [v["policy"] for v in violations] == ["acceptance-tests-before-progressive"], violations
        elif stack == "judged-dev":
            assert violations == [], stack
        for document in documents(plans / stack):
            if document["kind"] == "Canary":
                assert validate_custom_resource(document, crds) == [], (stack, document["metadata"]["name"])
            elif "istio.io" not in document["apiVersion"]:
                kubernetes_validate.validate(document, "1.33.0", strict=True)


@pytest.mark.parametrize(
    ("progressive", "key", "says"),
    [
        ({"judge": "bayesian"}, "strategy.progressive.judge", "threshold, sequential"),
        ({"alpha": 0.01}, "strategy.progressive.alpha", "with judge 'sequential' only"),
        ({"judge": "sequential", "alpha": 0.5}, "strategy.progressive.alpha", "above 0 and below 0.5"),
        ({"judge": "sequential", "alpha": "1%"}, "strategy.progressive.alpha", "above 0 and below 0.5"),
        ({"judge": "sequential", "minRequests": 0}, "strategy.progressive.minRequests", "from 1"),
        ({"judge": "threshold", "minRequests": 10}, "strategy.progressive.minRequests", "with judge 'sequential'"),
        ({"judge": "sequential", "maxLatencyMs": 300}, "strategy.progressive.maxLatencyMs", "250, 500, 1000"),
        # the buckets as the user writes them, never in scientific notation
        ({"judge": "sequential", "maxLatencyMs": 300}, "strategy.progressive.maxLatencyMs", "0.5, 1, 5,"),
        ({"judge": "sequential", "maxLatencyMs": 300}, "strategy.progressive.maxLatencyMs", "1800000, 3600000"),
    ],
)
def test_bad_configs_name_the_key(progressive, key, says):
    with pytest.raises(ConfigError) as caught:
        load(config({**CANARY, "progressive": progressive}))
    assert caught.value.path == f"turnout:endpoints.shop.{key}", caught.value
    assert says in caught.value.allowed, caught.value
