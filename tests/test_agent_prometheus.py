"""The experiment agent against a real Prometheus (Debian's `prometheus` package) scraping real model
servers that count their requests as Istio's sidecars do, and the agents themselves: feedback moves
the weights toward the better version within a few intervals, and a SIGKILLed agent loses nothing.
The Kubernetes side is the local stand-in of tests/agent_harness.py (no API server here)."""

from __future__ import annotations

import random
import time

import pytest

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

pytest.importorskip("kubernetes", reason="the agent writes through the official kubernetes client (dev extra)")
pytestmark = pytest.mark.skipif(
    prometheus_binary() is None,
    reason="needs Debian's prometheus package (apt-get install prometheus; .ci/run installs it where it can)",
)

REWARD_RATES = {"v1": 0.15, "v2": 0.6}  # v2 earns rewards four times as often
INTERVAL = 2.0
MOVED = 80  # v2's weight once the agent has learned it is better (min 50, max 95 with minWeight 5)


@pytest.fixture
def world(tmp_path):
    kube = KubeStandIn()
    kube.put("virtualservices", NAMESPACE, virtual_service(("v1", "v2")))
    models = {version: ModelServer(version, slow_ms=300 if version == "v1" else 20) for version in ("v1", "v2")}
    started: list = []
    yield kube, models, started, tmp_path
    for thing in started:
        thing.stop()
    for model in models.values():
        model.close()
    kube.close()
    assert kube.unexpected == [], "the agent made a call its Role does not allow"


def traffic(kube, models, rng, count: int) -> dict[str, int]:
    """`count` requests split by the VirtualService's current weights, as the mesh would route them."""
    weights = kube.weights()
    served = dict.fromkeys(weights, 0)
    for _ in range(count):
        version = rng.choices(list(weights), list(weights.values()))[0]
        status, _ = http("GET", f"http://{models[version].address}/")
        assert status == 200
        served[version] += 1
    return served


def test_feedback_moves_the_weights_and_a_killed_agent_loses_nothing(world):
    kube, models, started, tmp = world
    port = free_port()
    agent_address = f"127.0.0.1:{port}"
    prometheus = PrometheusProcess(tmp / "prometheus", [m.address for m in models.values()], [agent_address])
    started.append(prometheus)
    document = settings_document(
        tmp, kube=kube.url, prometheus=prometheus.url, peers={"agent-0": f"http://{agent_address}"},
        interval=INTERVAL, lease=3,
    )  # fmt: skip
    agent = AgentProcess(document, "agent-0", port, tmp / "agent-0").start()
    started.append(agent)
    rng = random.Random(14)
    posted = {"v1": 0, "v2": 0}
    started_at, request_number = time.monotonic(), 0
    assert kube.weights() == {"v1": 50, "v2": 50}
    while kube.weights()["v2"] < MOVED:
        assert time.monotonic() - started_at < 20 * INTERVAL, f"not moved within 20 intervals: {kube.weights()}"
        served = traffic(kube, models, rng, 40)
        feedback = []
        for version, count in served.items():
            for _ in range(count):
                request_number += 1
                if rng.random() < REWARD_RATES[version]:
                    feedback.append({"requestId": f"{version}.req-{request_number}", "reward": 1})
                    posted[version] += 1
        if feedback:
            status, body = http("POST", f"{agent.url}/v1/endpoints/{NAMESPACE}/feedback", feedback)
            assert status == 200 and body == {"accepted": len(feedback), "duplicates": 0}, body
        time.sleep(0.3)
    learned_in = time.monotonic() - started_at

    def counted():
        """The report once a round has read every answered request from Prometheus: until then its requests lag the
        rewards already posted, and a rate is capped at 1."""
        status, report = http("GET", f"{agent.url}/v1/endpoints/{NAMESPACE}/report")
        by_version = {v["version"]: v for v in report["versions"]} if status == 200 else {}
        caught_up = all(by_version.get(v, {}).get("requests") == models[v].answered for v in ("v1", "v2"))
        return report if caught_up else None

    before = wait_for(counted, 10 * INTERVAL, "a round that counted every answered request", poll=0.5)
    by_version = {v["version"]: v for v in before["versions"]}
    assert by_version["v2"]["rate"] > by_version["v1"]["rate"]
    assert by_version["v2"]["requests"] > 0 and by_version["v1"]["requests"] > 0, "counted from Prometheus"

    # Killed mid-experiment: what it acknowledged and what the state holds survive.
    agent.kill()
    served_while_down = traffic(kube, models, rng, 30)
    agent.start()

    def caught_up():
        status, report = http("GET", f"{agent.url}/v1/endpoints/{NAMESPACE}/report")
        return report if status == 200 and report["round"] > before["round"] + 1 else None

    after = wait_for(caught_up, 10 * INTERVAL, "rounds after the restart", poll=0.5)
    after_by_version = {v["version"]: v for v in after["versions"]}
    for version in ("v1", "v2"):
        assert after_by_version[version]["feedback"]["count"] == posted[version], "every acknowledged reward"
        expected = models[version].answered
        assert after_by_version[version]["requests"] == expected, (version, after_by_version[version], expected)
    assert sum(served_while_down.values()) == 30
    assert kube.weights()["v2"] >= MOVED, "the restarted agent continued from the state, not from scratch"
    # Prometheus scraped the agent too.
    scraped = prometheus.query(f'turnout_agent_feedback_total{{endpoint="{NAMESPACE}"}}')
    assert {s["metric"]["version"] for s in scraped} == {"v1", "v2"}
    print(f"v2 reached {MOVED}% after {learned_in:.1f}s ({learned_in / INTERVAL:.1f} intervals)")


def test_slo_rewards_come_from_the_latency_histogram(world):
    kube, models, started, tmp = world
    port = free_port()
    prometheus = PrometheusProcess(tmp / "prometheus", [m.address for m in models.values()], [])
    started.append(prometheus)
    document = settings_document(
        tmp, kube=kube.url, prometheus=prometheus.url, peers={"agent-0": f"http://127.0.0.1:{port}"},
        interval=INTERVAL, reward={"source": "slo", "latencyMs": 250},
    )  # fmt: skip
    agent = AgentProcess(document, "agent-0", port, tmp / "agent-0").start()
    started.append(agent)
    rng = random.Random(3)
    deadline = time.monotonic() + 20 * INTERVAL
    while kube.weights()["v2"] < MOVED:  # v1 answers in 300 ms, above the 250 ms bucket; v2 in 20
        assert time.monotonic() < deadline, kube.weights()
        traffic(kube, models, rng, 30)
        time.sleep(0.3)
    # The weights can move before Prometheus has scraped any of v2's answers (v1's measured failures against v2's
    # prior): the rates are compared once both versions have answers counted.
    while True:
        status, report = http("GET", f"{agent.url}/v1/endpoints/{NAMESPACE}/report")
        rates = {v["version"]: v["rate"] for v in report["versions"]}
        if None not in rates.values():
            break
        assert time.monotonic() < deadline, report
        traffic(kube, models, rng, 30)
        time.sleep(0.3)
    assert rates["v1"] == 0 and rates["v2"] == 1
