"""`ab-test.reward`: the variants' rewards collected by the experiment agent and compared with always-valid
intervals. Planned (the agent, a Role without the VirtualService, version headers on the split route, the
split unchanged), the intervals' coverage under continuous peeking, and the agent against a real Prometheus."""

from __future__ import annotations

import json
import random
import sys

import pytest

from tests.conftest import REPO, load, plan_stacks
from tests.test_strategies_render import documents
from turnout.errors import ConfigError

sys.path.insert(0, str(REPO / "apps" / "experiment-agent"))
from turnout_agent.agent import comparisons, difference_interval, difference_p_value  # noqa: E402
from turnout_agent.settings import parse as parse_agent_settings  # noqa: E402

AGENT_IMAGE = "kind.local/turnout-experiment-agent:0.1.0"
VERSIONS = {v: {"image": f"ghcr.io/acme/m:1.{i}.0"} for i, v in enumerate(["v1", "v2", "v3"])}
AB = {"type": "ab-test", "variants": {"v1": 50, "v2": 30, "v3": 20}}


def config(strategy: dict, *, tier: str = "prod", backend: str = "istio") -> dict:
    return {
        "tier": tier,
        "platform": {"cloud": "kind", "regions": ["lab"], "loadImages": [AGENT_IMAGE]},
        "endpoints": {"shop": {"backend": backend, "versions": VERSIONS, "strategy": strategy}},
    }


STACKS = {
    "ab-feedback": config({**AB, "reward": {"callers": ["web"]}}),
    "ab-slo": config({**AB, "reward": {"source": "slo", "latencyMs": 250}}, tier="dev"),
    "ab-segment": config(
        {
            "type": "ab-test",
            "variants": {"v1": 50, "v2": 50},
            "segment": {"header": "x-market", "value": "au"},
            "default": "v1",
            "reward": {"unreported": "unknown"},
        },
        tier="dev",
    ),
}


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    return plan_stacks(tmp_path_factory, STACKS)


def only(plans, stack: str, kind: str, name: str | None = None) -> dict:
    (found,) = [
        d for d in documents(plans / stack) if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_the_agent_reports_and_never_changes_the_split(plans, stack):
    document = json.loads(only(plans, stack, "ConfigMap", "shop-agent-settings")["data"]["settings.json"])
    settings = parse_agent_settings(document, replica="shop-agent-0")
    variants = STACKS[stack]["endpoints"]["shop"]["strategy"]["variants"]
    assert settings.fixed_weights == variants and settings.routing == {}
    role = only(plans, stack, "Role", "shop-agent")
    assert {r["resources"][0] for r in role["rules"]} == {"leases", "configmaps"}, "no VirtualService to write"
    vs = only(plans, stack, "VirtualService")
    split = [r for r in vs["spec"]["http"] if len(r["route"]) > 1]
    assert len(split) == 1
    assert {d["destination"]["subset"]: d["weight"] for d in split[0]["route"]} == variants
    for destination in split[0]["route"]:
        version = destination["destination"]["subset"]
        assert destination["headers"]["response"]["set"]["x-turnout-version"] == version
    assert "turnout.dev/weights-owner" not in (vs["metadata"].get("annotations") or {})
    note = json.loads((plans / stack / "traffic.json").read_text())["endpoints"][0]["agent"]
    assert note["owns"] == "nothing" and note["variants"] == variants
    violations = json.loads((plans / stack / "policy.json").read_text())["violations"]
    assert [v for v in violations if v["level"] == "mandatory"] == []
    if stack == "ab-feedback":
        policy = only(plans, stack, "AuthorizationPolicy", "allow-shop-agent")["spec"]["rules"][0]
        assert policy["from"] == [{"source": {"namespaces": ["web"]}}]
        assert {op["operation"]["paths"][0] for op in policy["to"]} == {
            "/v1/endpoints/shop/report",
            "/v1/endpoints/shop/feedback",
        }


@pytest.mark.parametrize(
    ("strategy", "backend", "key", "says"),
    [
        ({**AB, "reward": {"source": "slo"}}, "istio", "strategy.reward.latencyMs", "the latency"),
        ({**AB, "reward": {}}, "knative", "strategy.reward", "backend istio only"),
        (
            {**STACKS["ab-segment"]["endpoints"]["shop"]["strategy"], "reward": {}},
            "istio",
            "strategy.reward",
            "unreported: unknown",
        ),
    ],
)
def test_bad_configs_name_the_key(strategy, backend, key, says):
    with pytest.raises(ConfigError) as caught:
        load(config(strategy, backend=backend))
    assert caught.value.path == f"turnout:endpoints.shop.{key}", caught.value
    assert says in caught.value.allowed, caught.value


# the intervals -------------------------------------------------------------------------------------------


def peeked_runs(rate_a: float, rate_b: float, runs: int, seed: int) -> tuple[float, float]:
    """(coverage, share of runs ever significant) when the report is read after every 100 requests per arm."""
    rng = random.Random(seed)
    covered = significant = 0
    for _ in range(runs):
        a = b = 0
        missed = flagged = False
        for n in range(1, 6001):
            a += rng.random() < rate_a
            b += rng.random() < rate_b
            if n % 100 == 0:
                low, high = difference_interval((n, a), (n, b))
                missed |= not low <= rate_b - rate_a <= high
                flagged |= difference_p_value((n, a), (n, b)) <= 0.05
        covered += not missed
        significant += flagged
    return covered / runs, significant / runs


def test_intervals_cover_under_continuous_peeking_and_detect_a_real_difference():
    coverage, false_stops = peeked_runs(0.1, 0.1, 150, seed=1)
    assert coverage >= 0.95 and false_stops <= 0.05, (coverage, false_stops)
    coverage, detected = peeked_runs(0.10, 0.15, 60, seed=2)
    assert coverage >= 0.9 and detected >= 0.8, (coverage, detected)


def test_comparisons_against_the_first_version():
    (found,) = comparisons({"v1": (10000.0, 1000.0), "v2": (10000.0, 1300.0)}, ("v1", "v2"))
    assert found["baseline"] == "v1" and found["version"] == "v2"
    assert found["difference"] == pytest.approx(0.03)
    low, high = found["interval"]
    assert 0 < low < 0.03 < high and found["pValue"] < 1e-3 and found["significant"]
    (none,) = comparisons({"v1": (0.0, 0.0), "v2": (5.0, 1.0)}, ("v1", "v2"))
    assert none["difference"] is None and none["pValue"] == 1.0 and none["interval"] == [-1.0, 1.0]


# the agent, against a real Prometheus ----------------------------------------------------------------------


def test_the_agent_reports_rates_intervals_and_p_values_without_touching_the_split(tmp_path):
    from tests.agent_harness import (
        NAMESPACE,
        AgentProcess,
        KubeStandIn,
        ModelServer,
        PrometheusProcess,
        free_port,
        http,
        prometheus_binary,
        settings_document,
        virtual_service,
        wait_for,
    )

    if prometheus_binary() is None:
        pytest.skip("needs Debian's prometheus package (apt-get install prometheus)")
    pytest.importorskip("kubernetes", reason="the agent writes its state through the official kubernetes client")
    kube = KubeStandIn()
    kube.put("virtualservices", NAMESPACE, virtual_service(("v1", "v2")))
    models = {version: ModelServer(version) for version in ("v1", "v2")}
    port = free_port()
    started = []
    try:
        prometheus = PrometheusProcess(tmp_path / "prometheus", [m.address for m in models.values()], [])
        started.append(prometheus)
        document = settings_document(
            tmp_path, kube=kube.url, prometheus=prometheus.url, peers={"agent-0": f"http://127.0.0.1:{port}"}
        )
        document.update({"policy": "fixed", "fixedWeights": {"v1": 50, "v2": 50}, "minWeight": 0})
        del document["routing"]
        agent = AgentProcess(document, "agent-0", port, tmp_path / "agent-0").start()
        started.append(agent)
        rng = random.Random(5)
        rates = {"v1": 0.2, "v2": 0.5}
        for number in range(600):
            version = "v1" if number % 2 else "v2"
            assert http("GET", f"http://{models[version].address}/")[0] == 200
            if rng.random() < rates[version]:
                body = {"requestId": f"{version}.r{number}", "reward": 1}
                assert http("POST", f"{agent.url}/v1/endpoints/{NAMESPACE}/feedback", body)[0] == 200

        def counted():
            status, report = http("GET", f"{agent.url}/v1/endpoints/{NAMESPACE}/report")
            done = status == 200 and all(v["requests"] == 300 for v in report["versions"])
            return report if done else None

        report = wait_for(counted, 30, "the mesh's 300 requests per version in the report", poll=0.5)
        versions = {v["version"]: v for v in report["versions"]}
        assert report["strategy"] == "ab-test"
        for version in ("v1", "v2"):
            seen = versions[version]
            assert seen["weight"] == 50
            assert seen["rate"] == pytest.approx(seen["feedback"]["count"] / 300)
            assert seen["interval"][0] <= seen["rate"] <= seen["interval"][1]
        (comparison,) = report["comparisons"]
        assert comparison["baseline"] == "v1" and comparison["version"] == "v2"
        assert comparison["difference"] == pytest.approx(versions["v2"]["rate"] - versions["v1"]["rate"])
        assert comparison["pValue"] < 0.05 and comparison["significant"], comparison
        assert kube.weights() == {"v1": 50, "v2": 50}
        assert not [c for c in kube.calls if c[0] == "PUT" and "virtualservices" in c[1]], "the split is the stack's"
        metrics = http("GET", f"{agent.url}/metrics")[1]
        assert f'turnout_experiment_difference_p_value{{endpoint="{NAMESPACE}",version="v2",baseline="v1"}}' in metrics
        assert f'turnout_experiment_reward_rate_low{{endpoint="{NAMESPACE}",version="v1"}}' in metrics
    finally:
        for thing in reversed(started):
            thing.stop()
        for model in models.values():
            model.close()
        kube.close()
    assert kube.unexpected == []
