"""The experiment agent run for real: its HTTP API over real HTTP calls, its Kubernetes writes through the
official client against a local server implementing exactly the calls it makes (there is no API server
here), its Lease between two replicas, and its durable ledger across a SIGKILL."""

from __future__ import annotations

import json
import sys

import pytest

from tests.agent_harness import (
    AGENT_APP,
    NAMESPACE,
    AgentProcess,
    KubeStandIn,
    free_port,
    http,
    settings_document,
    virtual_service,
    wait_for,
)

pytest.importorskip("kubernetes", reason="the agent writes through the official kubernetes client (dev extra)")
sys.path.insert(0, str(AGENT_APP))

from turnout_agent.agent import confidence_interval  # noqa: E402
from turnout_agent.ledger import Ledger, Outcome  # noqa: E402
from turnout_agent.mesh import Series, grow  # noqa: E402
from turnout_agent.server import FeedbackError, parse_feedback  # noqa: E402

FEEDBACK = f"/v1/endpoints/{NAMESPACE}/feedback"
REPORT = f"/v1/endpoints/{NAMESPACE}/report"
NO_PROMETHEUS = "http://127.0.0.1:9"  # nothing listens: rounds are skipped, the API still answers


@pytest.fixture
def kube():
    stand_in = KubeStandIn()
    stand_in.put("virtualservices", NAMESPACE, virtual_service(("v1", "v2")))
    yield stand_in
    stand_in.close()
    assert stand_in.unexpected == [], "the agent made a call its Role does not allow"


@pytest.fixture
def agents(tmp_path):
    started = []

    def start(document: dict, replica: str, port: int):
        agent = AgentProcess(document, replica, port, tmp_path / replica).start()
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


def one_agent(tmp_path, kube, agents, **options):
    port = free_port()
    document = settings_document(
        tmp_path, kube=kube.url, prometheus=options.pop("prometheus", NO_PROMETHEUS),
        peers={"agent-0": f"http://127.0.0.1:{port}"}, **options,
    )  # fmt: skip
    return agents(document, "agent-0", port)


# the API ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"version": "v3", "reward": 1}, "version", "'v3'; expected one of v1, v2"),
        ({"version": "v1", "reward": 1.5}, "reward", "1.5; expected a number from 0 to 1"),
        ({"version": "v1", "reward": True}, "reward", "True"),
        ({"version": "v1"}, "reward", "None"),
        ({"reward": 1}, "version", "exactly one of version and requestId"),
        ({"version": "v1", "requestId": "v1.abc", "reward": 1}, "version", "exactly one"),
        ({"requestId": "abc", "reward": 1}, "requestId", "x-turnout-request-id"),
        ({"requestId": "v9.abc", "reward": 1}, "requestId", "names version 'v9'"),
        ({"version": "v1", "reward": 1, "user": "x"}, "user", "unknown field"),
        ([{"version": "v1", "reward": 1}, {"version": "v2", "reward": -1}], "[1].reward", "-1"),
        ([], "(body)", "non-empty list"),
        ("v1", "(body)", "an object"),
    ],
)
def test_bad_feedback_is_refused_naming_the_field(body, field, says):
    with pytest.raises(FeedbackError) as caught:
        parse_feedback(body, ("v1", "v2"))
    assert caught.value.field == field and says in str(caught.value)


def test_the_api_over_http(tmp_path, kube, agents):
    agent = one_agent(tmp_path, kube, agents)
    status, body = http("POST", agent.url + FEEDBACK, {"version": "v9", "reward": 1})
    assert (status, body["field"]) == (422, "version"), body
    status, body = http("POST", agent.url + FEEDBACK, b"{not json")
    assert (status, body["field"]) == (400, "(body)")
    status, body = http("POST", agent.url + "/v1/endpoints/other/feedback", {"version": "v1", "reward": 1})
    assert status == 404 and "this agent serves endpoint 'scores'" in body["error"]
    status, body = http(
        "POST",
        agent.url + FEEDBACK,
        [{"version": "v1", "reward": 0.5}, {"requestId": "v2.r-1", "reward": 1}, {"requestId": "v2.r-1", "reward": 1}],
    )
    assert (status, body) == (200, {"accepted": 2, "duplicates": 1}), "a request reported twice counts once"
    assert http("GET", agent.url + "/healthz")[0] == 200 and http("GET", agent.url + "/readyz")[0] == 200
    status, totals = http("GET", agent.url + "/internal/totals")
    assert totals == {"replica": "agent-0", "totals": {"v1": [1, 0.5], "v2": [1, 1.0]}}
    status, report = http("GET", agent.url + REPORT)
    assert status == 200 and [v["version"] for v in report["versions"]] == ["v1", "v2"]
    assert all(0 <= v["interval"][0] <= v["interval"][1] <= 1 for v in report["versions"])
    status, metrics = http("GET", agent.url + "/metrics")
    assert status == 200
    assert 'turnout_agent_feedback_total{endpoint="scores",version="v2"} 1' in metrics
    assert 'turnout_agent_feedback_reward_total{endpoint="scores",version="v1"} 0.5' in metrics
    assert "# TYPE turnout_experiment_requests_total counter" in metrics


def test_slo_endpoints_take_no_feedback(tmp_path, kube, agents):
    agent = one_agent(tmp_path, kube, agents, reward={"source": "slo", "latencyMs": 250})
    status, body = http("POST", agent.url + FEEDBACK, {"version": "v1", "reward": 1})
    assert (status, body["field"]) == (409, "reward")


def test_what_was_acknowledged_survives_a_kill(tmp_path, kube, agents):
    agent = one_agent(tmp_path, kube, agents)
    for index in range(50):
        status, _ = http("POST", agent.url + FEEDBACK, {"requestId": f"v2.r{index}", "reward": 1})
        assert status == 200
    agent.kill()
    agent.start()
    assert http("GET", agent.url + "/internal/totals")[1]["totals"] == {"v2": [50, 50.0]}
    assert http("POST", agent.url + FEEDBACK, {"requestId": "v2.r7", "reward": 1})[1] == {
        "accepted": 0,
        "duplicates": 1,
    }


# leadership ------------------------------------------------------------------------------------------


def test_one_replica_leads_and_another_takes_over_when_it_dies(tmp_path, kube, agents):
    ports = {"agent-0": free_port(), "agent-1": free_port()}
    document = settings_document(
        tmp_path, kube=kube.url, prometheus=NO_PROMETHEUS,
        peers={name: f"http://127.0.0.1:{port}" for name, port in ports.items()}, lease=2,
    )  # fmt: skip
    replicas = {name: agents(document, name, port) for name, port in ports.items()}

    def leaders():
        found = []
        for name, agent in replicas.items():
            status, text = http("GET", agent.url + "/metrics")
            if status == 200 and 'turnout_agent_leader{endpoint="scores"} 1' in text:
                found.append(name)
        return found

    first = wait_for(lambda: leaders() if len(leaders()) == 1 else None, 15, "one leader")
    lease = kube.get("leases", f"{NAMESPACE}-agent")
    assert lease["spec"]["holderIdentity"] == first[0] and lease["spec"]["leaseDurationSeconds"] == 2
    replicas[first[0]].kill()
    (other,) = set(replicas) - set(first)
    wait_for(lambda: kube.get("leases", f"{NAMESPACE}-agent")["spec"]["holderIdentity"] == other, 15, "a takeover")
    assert kube.get("leases", f"{NAMESPACE}-agent")["spec"]["leaseTransitions"] >= 1


# pure parts ------------------------------------------------------------------------------------------


def test_counter_growth_survives_resets_and_ignores_other_versions():
    counts, last = {}, {}
    grow(counts, last, [Series("a", "v1", 10), Series("b", "v2", 4), Series("c", "v9", 7)], ("v1", "v2"))
    grow(counts, last, [Series("a", "v1", 15), Series("b", "v2", 1)], ("v1", "v2"))  # b restarted
    assert counts == {"v1": 15, "v2": 5}
    assert last == {"a": 15, "b": 1, "c": 7}


def test_the_confidence_interval_narrows_and_covers():
    wide, narrow = confidence_interval(5, 10), confidence_interval(500, 1000)
    assert wide[0] < 0.5 < wide[1] and narrow[0] < 0.5 < narrow[1]
    assert narrow[1] - narrow[0] < (wide[1] - wide[0]) / 3
    assert confidence_interval(0, 0) == (0.0, 1.0)


def test_the_ledger_commits_before_answering(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite3", dedupe_s=60)
    assert ledger.record([Outcome("v1", 1.0, "v1.a"), Outcome("v1", 0.25)]).accepted == 2
    ledger.close()  # a new connection (another process) sees it: it was committed
    assert Ledger(tmp_path / "l.sqlite3", dedupe_s=60).totals() == {"v1": (2, 1.25)}


def test_updates_keep_what_the_stack_created_and_nothing_else_is_touched(tmp_path, kube, agents):
    """As in a cluster: the stack created the Lease and the state ConfigMap empty, with its labels; the agent
    fills them in and keeps the labels. (A Prometheus stand-in answers every query with no series.)"""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class NoSeries(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            data = b'{"status": "success", "data": {"resultType": "vector", "result": []}}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    prometheus = ThreadingHTTPServer(("127.0.0.1", 0), NoSeries)
    threading.Thread(target=prometheus.serve_forever, daemon=True).start()
    stack_labels = {"app.kubernetes.io/managed-by": "pulumi", "turnout.dev/tier": "dev"}
    kube.put("leases", f"{NAMESPACE}-agent", {"metadata": {"labels": stack_labels}, "spec": {}})
    kube.put("configmaps", f"{NAMESPACE}-agent-state", {"metadata": {"labels": stack_labels}})
    agent = one_agent(tmp_path, kube, agents, prometheus=f"http://127.0.0.1:{prometheus.server_port}")
    http("POST", agent.url + FEEDBACK, {"version": "v2", "reward": 1})

    def saved_replicas() -> dict | None:
        """The replicas' counts in the state ConfigMap, once a round after the feedback has saved them (a round
        already under way when the feedback arrived may save the counts from before it)."""
        data = (kube.get("configmaps", f"{NAMESPACE}-agent-state") or {}).get("data")
        replicas = json.loads(data["state.json"])["replicas"] if data else None
        return replicas if replicas and replicas.get("agent-0") else None

    assert wait_for(saved_replicas, 15, "a round after the feedback") == {"agent-0": {"v2": [1, 1.0]}}
    assert kube.get("configmaps", f"{NAMESPACE}-agent-state")["metadata"]["labels"] == stack_labels
    lease = kube.get("leases", f"{NAMESPACE}-agent")
    assert lease["metadata"]["labels"] == stack_labels and lease["spec"]["holderIdentity"] == "agent-0"
    assert not [call for call in kube.calls if call[0] == "POST"], "nothing created: the stack did"
    prometheus.shutdown()
    prometheus.server_close()
