"""An interleaved endpoint's agent run for real: `python -m turnout_agent` in its own process, between real local
HTTP model servers that rank (tests/ranker_models.py), answering through its proxy port as the VirtualService
would send it `percent`% of requests; clicks credited over its API; impressions kept in its ledger (each replica
its own, clicks passed to the replica that served them) or in a real Redis shared by two replicas."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.agent_harness import AGENT_APP, AgentProcess, free_port, http, wait_for
from tests.ranker_models import ranker, ranking

sys.path.insert(0, str(AGENT_APP))

from turnout_agent.interleave import ClickError, parse_clicks  # noqa: E402

ENDPOINT = "scores"
CLICKS = f"/v1/endpoints/{ENDPOINT}/clicks"
REPORT = f"/v1/endpoints/{ENDPOINT}/report"
CANDIDATES = [f"item-{i}" for i in range(12)]


def interleaved_settings(backends: dict[str, str], peers: dict[str, str], proxy_port: int, **options) -> dict:
    return {
        "strategy": "interleaved",
        "endpoint": ENDPOINT,
        "namespace": ENDPOINT,
        "interleaving": {
            "control": "v1",
            "treatment": "v2",
            "method": options.pop("method", "team-draft"),
            "items": "items",
            "itemId": "id",
            "budgetMs": options.pop("budget_ms", 500),
            "clickWindowSeconds": options.pop("window", 600),
            "proxyPort": proxy_port,
            "store": options.pop("store", "ledger"),
            "cachePrefix": options.pop("prefix", "turnout:test:scores"),
        },
        "backends": backends,
        "peers": [{"name": name, "url": url} for name, url in peers.items()],
        "ledger": {"path": "/unused/ledger.sqlite3"},
        "port": 8080,
    }


@pytest.fixture
def agents(tmp_path):
    started = []

    def start(document: dict, replica: str, port: int) -> AgentProcess:
        agent = AgentProcess(document, replica, port, tmp_path / replica).start()
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


@pytest.fixture
def models():
    servers = []

    def start(**options):
        pair = (ranker("v1", **options.get("v1", {})), ranker("v2", **options.get("v2", {})))
        servers.extend(pair)
        return {"v1": pair[0].url, "v2": pair[1].url}

    yield start
    for server in servers:
        server.close()


def ask(proxy: int, candidates=CANDIDATES) -> tuple[int, dict, dict]:
    """A user's request as the VirtualService forwards it to the agent's proxy port."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{proxy}/rank?user=7",
        data=json.dumps({"candidates": candidates}).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "X-User": "7"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, {k.lower(): v for k, v in response.headers.items()}, json.loads(response.read())


def one(agents, tmp_path, backends, **options):
    port, proxy = free_port(), free_port()
    document = interleaved_settings(backends, {"agent-0": f"http://127.0.0.1:{port}"}, proxy, **options)
    return agents(document, "agent-0", port), proxy


def test_merged_answers_keep_control_shape_and_name_both_versions(agents, tmp_path, models):
    agent, proxy = one(agents, tmp_path, models())
    status, headers, body = ask(proxy)
    assert status == 200 and headers["x-turnout-version"] == "v1,v2"
    assert headers["x-model-version"] == "v1", "control's headers are kept"
    impression = headers["x-turnout-impression"]
    assert impression.startswith("0.") and len(impression) == 26
    assert body["version"] == "v1" and set(body) == {"version", "items"}, "control's shape"
    assert sorted(i["id"] for i in body["items"]) == sorted(CANDIDATES), "every item once"
    first_two = {i["id"] for i in body["items"][:2]}
    assert (
        first_two == {ranking("v1", CANDIDATES)[0], ranking("v2", CANDIDATES)[0]}
        or len(first_two & set(ranking("v1", CANDIDATES)[:1] + ranking("v2", CANDIDATES)[:2])) == 2
    )
    status, report = http("GET", agent.url + REPORT)
    assert report["impressions"] == 1 and report["pending"] == 1 and report["store"] == "ledger"


def test_clicks_credit_the_ranker_that_contributed_the_item(agents, tmp_path, models):
    agent, proxy = one(agents, tmp_path, models())
    treatment_top = ranking("v2", CANDIDATES)[0]
    control_top = ranking("v1", CANDIDATES)[0]
    credits = []
    for _ in range(20):
        _, headers, body = ask(proxy)
        status, answer = http(
            "POST", agent.url + CLICKS, {"impression": headers["x-turnout-impression"], "clicked": [treatment_top]}
        )
        assert status == 200 and answer["credited"] == 1, answer
        credits += list(answer["credits"].values())
    assert set(credits) <= {"v2", "v1"} and credits.count("v2") >= 10, "v2's top item is v2's unless v1 also has it"
    if treatment_top != control_top:
        assert credits == ["v2"] * 20
    again = http("POST", agent.url + CLICKS, {"impression": headers["x-turnout-impression"], "clicked": []})
    assert again == (200, {"credited": 0, "duplicates": 1, "unknown": [], "credits": {}}), "credited once"
    status, report = http("GET", agent.url + REPORT)
    assert report["wins"] + report["losses"] == 20 and report["ties"] == 0
    assert report["preference"]["version"] == "v2" and report["preference"]["share"] >= 0.5
    assert report["preference"]["pValue"] < 0.001 and report["winner"] == "v2"
    status, metrics = http("GET", agent.url + "/metrics")
    assert 'turnout_interleaving_impressions_total{endpoint="scores"} 20' in metrics
    assert 'turnout_interleaving_clicked_total{endpoint="scores",credit="v2"}' in metrics
    assert "# TYPE turnout_interleaving_preference gauge" in metrics
    assert 'turnout_interleaving_p_value{endpoint="scores"}' in metrics


def test_bad_clicks_are_refused_naming_the_field(agents, tmp_path, models):
    agent, _ = one(agents, tmp_path, models())
    status, body = http("POST", agent.url + CLICKS, {"impression": "0." + "a" * 24, "clicked": ["x"]})
    assert (status, body["field"]) == (404, "impression") and "unknown or expired" in body["error"]
    status, body = http("POST", agent.url + CLICKS, {"impression": "nope", "clicked": []})
    assert (status, body["field"]) == (422, "impression")
    status, body = http("POST", agent.url + f"/v1/endpoints/{ENDPOINT}/feedback", {"version": "v1", "reward": 1})
    assert status == 404 and "clicks" in body["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"impression": "0." + "a" * 24, "clicked": "x"}, "clicked"),
        ({"impression": "0." + "a" * 24, "clicked": [True]}, "clicked[0]"),
        ({"impression": "0." + "a" * 24, "clicked": [], "user": 1}, "user"),
        ([{"impression": "0." + "a" * 24, "clicked": []}, {"clicked": []}], "[1].impression"),
        ([], "(body)"),
    ],
)
def test_click_reports_are_checked(body, field):
    with pytest.raises(ClickError) as caught:
        parse_clicks(body)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("v2", "reason"), [({"fail": True}, "treatment-status"), ({"delay_s": 2.0}, "treatment-timeout")]
)
def test_a_failing_or_late_treatment_leaves_control_answer_unchanged(agents, tmp_path, models, v2, reason):
    backends = models(v2=v2)
    agent, proxy = one(agents, tmp_path, backends, budget_ms=100)
    started = time.perf_counter()
    status, headers, body = ask(proxy)
    waited = time.perf_counter() - started
    request = urllib.request.Request(
        backends["v1"] + "/rank", data=json.dumps({"candidates": CANDIDATES}).encode(), method="POST"
    )
    direct = json.loads(urllib.request.urlopen(request, timeout=10).read())
    assert status == 200 and body == direct, "control's answer, unchanged"
    assert headers["x-turnout-version"] == "v1" and "x-turnout-impression" not in headers
    assert waited < 1.5, f"waited {waited:.3f}s for a treatment with a 100 ms budget (it answers after 2 s)"
    _, report = http("GET", agent.url + REPORT)
    assert report["impressions"] == 0 and report["fallbacks"] == {reason: 1}


def test_unclicked_impressions_expire_and_are_counted_once(agents, tmp_path, models):
    agent, proxy = one(agents, tmp_path, models(), window=1)
    for _ in range(3):
        ask(proxy)
    _, headers, _ = ask(proxy)
    http("POST", agent.url + CLICKS, {"impression": headers["x-turnout-impression"], "clicked": []})
    report = wait_for(lambda: (r := http("GET", agent.url + REPORT)[1])["expired"] == 3 and r, 30, "the sweep")
    assert report["impressions"] == 4 and report["ties"] == 1 and report["pending"] == 0


def test_counts_survive_a_kill(agents, tmp_path, models):
    agent, proxy = one(agents, tmp_path, models())
    impressions = [ask(proxy)[1]["x-turnout-impression"] for _ in range(5)]
    for impression in impressions[:3]:
        assert http("POST", agent.url + CLICKS, {"impression": impression, "clicked": []})[0] == 200
    agent.kill()
    agent.start()
    _, report = http("GET", agent.url + REPORT)
    assert (report["impressions"], report["ties"], report["pending"]) == (5, 3, 2)
    assert http("POST", agent.url + CLICKS, {"impression": impressions[3], "clicked": []})[1]["credited"] == 1


def test_a_click_reaching_another_replica_is_passed_to_the_one_that_served_it(agents, tmp_path, models):
    backends = models()
    ports = {"agent-0": free_port(), "agent-1": free_port()}
    peers = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    replicas = {}
    for name, port in ports.items():
        proxy = free_port()
        replicas[name] = (agents(interleaved_settings(backends, peers, proxy), name, port), proxy)
    _, headers, _ = ask(replicas["agent-1"][1])
    assert headers["x-turnout-impression"].startswith("1.")
    status, answer = http(
        "POST", replicas["agent-0"][0].url + CLICKS, {"impression": headers["x-turnout-impression"], "clicked": []}
    )
    assert status == 200 and answer["credited"] == 1
    _, report = http("GET", replicas["agent-0"][0].url + REPORT)
    assert report["impressions"] == 1 and report["ties"] == 1
    assert report["replicas"] == {"answered": ["agent-0", "agent-1"], "unreachable": []}


@pytest.fixture
def redis(tmp_path):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian's redis-server package; .ci/run installs it)")
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--requirepass",
            "s3cret",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    password = tmp_path / "redis-password"
    password.write_text("s3cret\n")
    time.sleep(0.3)
    yield {
        "REDIS_ADDR": "127.0.0.1",
        "REDIS_PORT": str(port),
        "REDIS_TLS": "false",
        "REDIS_PASSWORD_FILE": str(password),
    }
    process.terminate()
    process.wait(10)


def test_replicas_share_impressions_through_the_stack_cache(agents, tmp_path, models, redis, monkeypatch):
    for name, value in redis.items():
        monkeypatch.setenv(name, value)
    backends = models()
    ports = {"agent-0": free_port(), "agent-1": free_port()}
    peers = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    replicas = {}
    for name, port in ports.items():
        proxy = free_port()
        document = interleaved_settings(backends, peers, proxy, store="cache", window=8)
        replicas[name] = (agents(document, name, port), proxy)
    served = [ask(replicas[n][1])[1]["x-turnout-impression"] for n in ("agent-0", "agent-1", "agent-1")]
    replicas["agent-1"][0].stop()  # the replica that served two of them is gone: the cache still has them
    status, answer = http("POST", replicas["agent-0"][0].url + CLICKS, {"impression": served[1], "clicked": []})
    assert status == 200 and answer["credited"] == 1
    again = http("POST", replicas["agent-0"][0].url + CLICKS, {"impression": served[1], "clicked": []})[1]
    assert again["duplicates"] == 1
    replicas["agent-1"][0].start()
    report = wait_for(
        lambda: (r := http("GET", replicas["agent-0"][0].url + REPORT)[1])["expired"] == 2 and r, 60, "expiry"
    )
    assert (report["impressions"], report["ties"], report["expired"], report["store"]) == (3, 1, 2, "cache")
