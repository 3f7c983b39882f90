"""The sequential judge's agent (`progressive.judge: sequential`) answering Flagger's webhooks against a real
Prometheus (Debian's `prometheus` package) that scrapes synthetic Istio series of the primary and canary
workloads: a bad canary makes the rollback hook say stop, a good one passes confirm-promotion only once the
judge has its minimum evidence, no traffic is never a failed check, and a killed agent continues its analysis."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.agent_harness import (
    NAMESPACE,
    AgentProcess,
    PrometheusProcess,
    free_port,
    http,
    prometheus_binary,
    wait_for,
)

pytestmark = pytest.mark.skipif(
    prometheus_binary() is None,
    reason="needs Debian's prometheus package (apt-get install prometheus; .ci/run installs it where it can)",
)

PRIMARY, CANARY = f"{NAMESPACE}-primary", NAMESPACE
ALPHA = 0.01


class Sidecars:
    """istio_requests_total of both workloads as their sidecars expose it, with counters the test sets."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.slow: dict[str, int] = {}
        self.lock = threading.Lock()
        sidecars = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                data = sidecars.exposition().encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_port}"

    def add(self, workload: str, requests: int, errors: int, slow: int = 0) -> None:
        with self.lock:
            self.slow[workload] = self.slow.get(workload, 0) + slow
            for code, count in (("200", requests - errors), ("503", errors)):
                if count:
                    self.counts[(workload, code)] = self.counts.get((workload, code), 0) + count

    def exposition(self) -> str:
        lines = ["# TYPE istio_requests_total counter"]
        with self.lock:
            for (workload, code), value in sorted(self.counts.items()):
                labels = (
                    f'reporter="destination",destination_workload_namespace="{NAMESPACE}",'
                    f'destination_workload="{workload}",destination_service_name="{NAMESPACE}",response_code="{code}"'
                )
                lines.append(f"istio_requests_total{{{labels}}} {value}")
            lines.append("# TYPE istio_request_duration_milliseconds histogram")
            for workload in sorted({w for w, _ in self.counts}):
                total = sum(v for (w, _), v in self.counts.items() if w == workload)
                labels = (
                    f'reporter="destination",destination_workload_namespace="{NAMESPACE}",'
                    f'destination_workload="{workload}",destination_service_name="{NAMESPACE}"'
                )
                for le, count in (("100", 0), ("500", total - self.slow.get(workload, 0)), ("+Inf", total)):
                    lines.append(f'istio_request_duration_milliseconds_bucket{{{labels},le="{le}"}} {count}')
        return "\n".join(lines) + "\n"

    def total(self) -> int:
        with self.lock:
            return sum(self.counts.values())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def world(tmp_path):
    sidecars = Sidecars()
    prometheus = PrometheusProcess(tmp_path / "prometheus", [sidecars.address], [])
    started = [prometheus]

    def agent(min_requests: int) -> tuple[AgentProcess, str]:
        port, webhook_port = free_port(), free_port()
        document = {
            "strategy": "canary",
            "endpoint": NAMESPACE,
            "namespace": NAMESPACE,
            "peers": [{"name": "agent-0", "url": f"http://127.0.0.1:{port}"}],
            "ledger": {"path": str(tmp_path / "ledger.sqlite3")},
            "port": port,
            "judge": {
                "primaryWorkload": PRIMARY,
                "canaryWorkload": CANARY,
                "stable": "v1",
                "canary": "v2",
                "alpha": ALPHA,
                "minRequests": min_requests,
                "prometheus": prometheus.url,
                "webhookPort": webhook_port,
                "latencyMs": 500,
            },
        }
        process = AgentProcess(document, "agent-0", port, tmp_path / "agent-0").start()
        started.append(process)
        return process, f"http://127.0.0.1:{webhook_port}/flagger/"

    yield sidecars, prometheus, agent
    for thing in reversed(started):
        thing.stop()
    sidecars.close()


def scraped(prometheus, sidecars) -> None:
    """Wait until Prometheus holds what the sidecars count now (as it would a scrape interval later)."""
    expected = sidecars.total()

    def caught_up():
        result = prometheus.query(f'sum(istio_requests_total{{destination_workload_namespace="{NAMESPACE}"}})')
        return result and float(result[0]["value"][1]) == expected

    if expected:
        wait_for(caught_up, 15, f"Prometheus to scrape {expected} requests", poll=0.2)


def hook(base: str, which: str, checksum: str = "rev-1", **overrides) -> tuple[int, dict]:
    payload = {"name": NAMESPACE, "namespace": NAMESPACE, "phase": "Progressing", "checksum": checksum,
               "metadata": {}} | overrides  # fmt: skip
    return http("POST", base + which, payload)


def report(agent) -> dict:
    status, body = http("GET", f"{agent.url}/v1/endpoints/{NAMESPACE}/report")
    assert status == 200, body
    return body


def test_a_bad_canary_is_rolled_back_at_once_and_a_restart_loses_nothing(world):
    sidecars, prometheus, start = world
    sidecars.add(PRIMARY, 50_000, 50)  # before the analysis: not the judge's business
    scraped(prometheus, sidecars)
    agent, base = start(min_requests=500)
    assert hook(base, "pre-rollout")[0] == 200
    answers = []
    for interval in range(1, 30):
        sidecars.add(PRIMARY, 900, 9)  # 1% errors
        sidecars.add(CANARY, 100, 3)  # 3%: three times the primary's rate, inside no absolute threshold of 5%
        scraped(prometheus, sidecars)
        status, body = hook(base, "rollback")
        answers.append(status)
        if interval == 2:  # killed mid-analysis: the recorded analysis continues
            before = report(agent)
            agent.kill()
            agent.start()
            assert report(agent)["versions"] == before["versions"]
        if status == 200:
            break
    assert answers[-1] == 200 and set(answers[:-1]) <= {409}, answers
    assert body["verdict"] == "rollback" and body["canary"] == [100 * interval, 3 * interval]
    assert body["primary"] == [900 * interval, 9 * interval], "counted since pre-rollout, not before"
    assert body["evidence"]["regression_p_value"] <= ALPHA
    assert hook(base, "rollout")[0] == 409, "a failed check too"
    assert hook(base, "confirm-promotion")[0] == 409
    seen = report(agent)
    versions = {v["role"]: v for v in seen["versions"]}
    assert (versions["canary"]["requests"], versions["canary"]["errors"]) == (100 * interval, 3 * interval)
    low, high = versions["canary"]["interval"]
    assert low <= versions["canary"]["rate"] <= high
    assert seen["analysis"]["verdict"] == "rollback" and seen["analysis"]["checksum"] == "rev-1"
    assert [v["hook"] for v in seen["analysis"]["verdicts"]][-3:] == ["rollback", "rollout", "confirm-promotion"]
    print(f"rolled back after {interval} intervals, {100 * interval} canary requests")


def test_a_good_canary_is_promoted_only_with_the_minimum_evidence(world):
    sidecars, prometheus, start = world
    agent, base = start(min_requests=2000)
    assert hook(base, "pre-rollout", checksum="rev-2")[0] == 200
    seen = []
    for _ in range(40):
        sidecars.add(PRIMARY, 3000, 30)  # both 1% errors
        sidecars.add(CANARY, 600, 6)
        scraped(prometheus, sidecars)
        assert hook(base, "rollback", checksum="rev-2")[0] == 409, "a good canary is not rolled back"
        assert hook(base, "rollout", checksum="rev-2")[0] == 200
        status, body = hook(base, "confirm-promotion", checksum="rev-2")
        seen.append((status, body["canary"][0], body["evidence"]["promotion_p_value"]))
        if status == 200:
            break
    assert seen[-1][0] == 200, seen
    held = [s for s in seen if s[0] == 409]
    assert held, "not promoted on the first call"
    assert seen[-1][1] >= 2000 and seen[-1][2] <= ALPHA, "promotion only with the documented minimum evidence"
    assert all(requests < 2000 or p > ALPHA for _, requests, p in held), "held although the evidence was there"
    assert report(agent)["analysis"]["verdict"] == "promote"


def test_no_traffic_is_never_a_failed_check_nor_a_promotion(world):
    sidecars, prometheus, start = world
    agent, base = start(min_requests=10)
    assert hook(base, "pre-rollout", checksum="rev-3")[0] == 200  # no series at all yet
    for _ in range(3):
        assert hook(base, "rollout", checksum="rev-3")[0] == 200
        assert hook(base, "rollback", checksum="rev-3")[0] == 409
        status, body = hook(base, "confirm-promotion", checksum="rev-3")
        assert status == 409 and body["verdict"] == "continue" and body["canary"] == [0, 0]
    sidecars.add(PRIMARY, 500, 0)  # only the primary serves (canary at 0%): still no evidence either way
    scraped(prometheus, sidecars)
    assert hook(base, "rollout", checksum="rev-3")[0] == 200
    assert hook(base, "confirm-promotion", checksum="rev-3")[0] == 409
    # Bad calls are 4xx naming the field; the wrong Canary is refused.
    status, body = hook(base, "rollout", name="other")
    assert status == 422 and body["field"] == "name"
    status, body = hook(base, "promote")
    assert status == 404 and "confirm-promotion" in body["error"]
    status, body = http("POST", base + "rollout", b"not json")
    assert status == 400 and body["field"] == "(body)"
    metrics = http("GET", f"{agent.url}/metrics")[1]
    assert 'turnout_judge_verdict{endpoint="scores",verdict="continue"} 1' in metrics
    assert 'turnout_judge_webhook_calls_total{endpoint="scores",hook="rollout",status="200"} 4' in metrics


def test_a_slower_canary_is_rolled_back_by_the_latency_judge(world):
    sidecars, prometheus, start = world
    agent, base = start(min_requests=500)
    assert hook(base, "pre-rollout", checksum="rev-4")[0] == 200
    answers = []
    for _ in range(30):
        sidecars.add(PRIMARY, 900, 0, slow=9)  # no errors anywhere; 1% of the primary's requests above 500 ms
        sidecars.add(CANARY, 100, 0, slow=5)  # 5% of the canary's
        scraped(prometheus, sidecars)
        status, body = hook(base, "rollback", checksum="rev-4")
        answers.append(status)
        if status == 200:
            break
    assert answers[-1] == 200 and body["verdict"] == "rollback", answers
    analysis = report(agent)["analysis"]
    assert analysis["latency"]["verdict"] == "rollback" and analysis["latency"]["thresholdMs"] == 500
    rounds = len(answers)
    assert analysis["latency"]["counts"] == {
        "primary": [900 * rounds, 9 * rounds],
        "canary": [100 * rounds, 5 * rounds],
    }
    assert body["canary"] == [100 * rounds, 0], "no errors: the latency judge alone rolled it back"
    assert analysis["latency"]["evidence"]["regression_p_value"] <= ALPHA
