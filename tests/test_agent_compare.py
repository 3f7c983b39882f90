"""A shadow's comparison run for real: `python -m turnout_agent` in its own process receives mirrored copies on a
shadow's port (as the VirtualService's mirror sends them), calls real local model servers (the primary twice, the
shadow once) and compares; nondeterministic fields are not flagged, a label regression is, and sampled pairs are
written to standard output with secrets redacted. The comparison's pure parts are tested beside."""

from __future__ import annotations

import json
import random
import sys
import time
import urllib.request

import pytest

from tests.agent_harness import AGENT_APP, AgentProcess, free_port, http, wait_for
from tests.ranker_models import classifier, ranker
from turnout.experiments import comparison
from turnout.experiments._paths import steps

sys.path.insert(0, str(AGENT_APP))

ENDPOINT = "fraud"
REPORT = f"/v1/endpoints/{ENDPOINT}/report"


def compare_settings(backends: dict, ports: dict[str, int], peers: dict[str, str], **compare) -> dict:
    return {
        "strategy": "shadow",
        "endpoint": ENDPOINT,
        "namespace": ENDPOINT,
        "compare": {
            "primary": "v1",
            "shadows": {version: {"port": port, "percent": 100} for version, port in ports.items()},
            "fields": compare.pop("fields", []),
            "tolerance": compare.pop("tolerance", 0.01),
            "sample": compare.pop("sample", 0),
            "redact": compare.pop("redact", []),
            "workers": 4,
        },
        "backends": backends,
        "peers": [{"name": n, "url": u} for n, u in peers.items()],
        "ledger": {"path": "/unused/ledger.sqlite3"},
        "port": 8080,
    }


@pytest.fixture
def setup(tmp_path):
    started, servers = [], []

    def start(shadows: dict, **compare):
        primary = classifier("v1", seed=1)
        servers.append(primary)
        backends = {"v1": primary.url}
        for version, options in shadows.items():
            server = classifier(version, seed=hash(version) % 1000, **options)
            servers.append(server)
            backends[version] = server.url
        ports = {version: free_port() for version in shadows}
        port = free_port()
        document = compare_settings(backends, ports, {"agent-0": f"http://127.0.0.1:{port}"}, **compare)
        agent = AgentProcess(document, "agent-0", port, tmp_path / f"agent-{len(started)}").start()
        started.append(agent)
        return agent, ports

    yield start
    for agent in started:
        agent.stop()
    for server in servers:
        server.close()


def mirror(port: int, x: int, headers: dict | None = None) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict?token=abc&user=9",
        data=json.dumps({"x": x, "password": "hunter2", "card": "4111"}).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer xyz", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.read() == b""
        return response.status


def settled(agent, joined: int) -> dict:
    return wait_for(
        lambda: (r := http("GET", agent.url + REPORT)[1]) and sum(s["joined"] for s in r["shadows"]) >= joined and r,
        120,
        f"{joined} joined copies",
    )


def test_an_equivalent_shadow_agrees_and_noisy_fields_are_not_flagged(setup):
    agent, ports = setup({"v2": {}})
    for x in range(300):
        assert mirror(ports["v2"], x) == 202, "answered at once; the mesh discards it"
    report = settled(agent, 300)
    (shadow,) = report["shadows"]
    assert (shadow["mirrored"], shadow["joined"], shadow["joinRate"]) == (300, 300, 1.0)
    assert shadow["agreement"] == 1.0 and shadow["flagged"] == []
    fields = {f["field"]: f for f in shadow["fields"]}
    assert fields["requestId"]["rate"] == 1.0 and fields["requestId"]["noiseRate"] == 1.0, "noise, not flagged"
    assert fields["label"]["rate"] == 0.0 and fields["label"]["kind"] == "label"
    assert fields["score"]["kind"] == "number" and fields["score"]["meanAbsDifference"] < 0.01
    assert set(shadow["latency"]["delta"]) == {"meanMs", "p50Ms", "p99Ms"}
    assert shadow["errorRate"] == {"primary": 0.0, "shadow": 0.0, "delta": 0.0}


def test_a_label_regression_is_flagged_on_its_field(setup):
    agent, ports = setup({"v2": {}, "v3": {"flip": 0.2}})
    for x in range(400):
        mirror(ports["v2"], x)
        mirror(ports["v3"], x)
    report = settled(agent, 800)
    by_version = {s["version"]: s for s in report["shadows"]}
    assert by_version["v3"]["flagged"] == ["label"] and by_version["v2"]["flagged"] == []
    assert 0.7 < by_version["v3"]["agreement"] < 0.9
    status, metrics = http("GET", agent.url + "/metrics")
    assert 'turnout_compare_field_flagged{endpoint="fraud",shadow="v3",field="label"} 1' in metrics
    assert 'turnout_compare_joined_total{endpoint="fraud",shadow="v2"} 400' in metrics
    assert 'turnout_compare_latency_seconds_count{endpoint="fraud",shadow="v3",role="shadow"} 400' in metrics
    assert "# TYPE turnout_compare_agreement_ratio gauge" in metrics


def test_listed_fields_only_and_sampled_pairs_are_redacted(setup):
    agent, ports = setup({"v2": {"flip": 1.0}}, fields=["score", "model.threshold"], sample=100, redact=["card"])
    for x in range(20):
        mirror(ports["v2"], x, {"Cookie": "session=abc"})
    report = settled(agent, 20)
    (shadow,) = report["shadows"]
    assert [f["field"] for f in shadow["fields"]] == ["(status)", "model.threshold", "score"]
    assert shadow["agreement"] == 1.0, "the flipped label is not a listed field"
    lines = [json.loads(line) for line in agent.log.read_text().splitlines() if line.startswith('{"turnout"')]
    assert len(lines) == 20
    line = lines[0]
    assert line["request"]["headers"]["authorization"] == "[redacted]"
    assert line["request"]["headers"]["cookie"] == "[redacted]"
    assert line["request"]["body"] == {
        "x": line["request"]["body"]["x"],
        "password": "[redacted]",
        "card": "[redacted]",
    }
    assert "token=[redacted]" in line["request"]["target"] and "user=9" in line["request"]["target"]
    assert set(line) >= {"primary", "baseline", "shadow", "differs"} and line["shadow"]["status"] == 200


def test_a_shadow_that_fails_counts_as_errors_and_is_flagged_on_its_status(setup, tmp_path):
    broken = ranker("v9", fail=True)
    try:
        agent, ports = setup({"v2": {}})
        document = json.loads(agent.settings.read_text())
        document["backends"]["v2"] = broken.url
        agent.stop()
        agent.settings.write_text(json.dumps(document))
        agent.start()
        for x in range(40):
            mirror(ports["v2"], x)
        (shadow,) = settled(agent, 40)["shadows"]
        assert shadow["errorRate"]["shadow"] == 1.0 and shadow["errorRate"]["delta"] == 1.0
        assert "(status)" in shadow["flagged"] and shadow["agreement"] == 0.0
    finally:
        broken.close()


def test_counts_survive_a_restart(setup):
    agent, ports = setup({"v2": {}})
    for x in range(30):
        mirror(ports["v2"], x)
    settled(agent, 30)
    time.sleep(1.5)  # the counts are flushed every second
    agent.kill()
    agent.start()
    (shadow,) = http("GET", agent.url + REPORT)[1]["shadows"]
    assert shadow["joined"] == 30


# the pure comparison -------------------------------------------------------------------------------------


def answer(document, status=200) -> comparison.Answer:
    return comparison.Answer(status, document)


def test_numbers_labels_and_lists_are_compared_as_what_they_are():
    a = answer({"score": 0.50, "label": "ok", "items": [{"id": 1}, {"id": 2}, {"id": 3}]})
    c = answer({"score": 0.505, "label": "ok", "items": [{"id": 2}, {"id": 1}, {"id": 4}]})
    outcomes = {o.field: o for o in comparison.compare(a, a, c, tolerance=0.01)}
    assert not outcomes["score"].shadow_differs and outcomes["score"].abs_difference == pytest.approx(0.005)
    assert not outcomes["label"].shadow_differs and outcomes["label"].kind == "label"
    assert outcomes["items"].shadow_differs and outcomes["items"].overlap == pytest.approx(2 / 3)
    assert comparison.overlap([], []) == 1.0
    listed = comparison.compare(a, a, c, fields=(("items[0].id", steps("items[0].id")),))
    assert [(o.field, o.shadow_differs) for o in listed] == [("(status)", False), ("items[0].id", True)]


def test_a_difference_the_primary_shows_against_itself_is_noise():
    a, b, c = answer({"t": 1, "label": "x"}), answer({"t": 2, "label": "x"}), answer({"t": 3, "label": "x"})
    assert comparison.agreed(comparison.compare(a, b, c))
    assert not comparison.agreed(comparison.compare(a, b, answer({"t": 3, "label": "y"})))
    assert not comparison.agreed(comparison.compare(a, a, answer({"t": 1, "label": "x"}, status=500)))


def test_the_sequential_flag_holds_its_false_alarm_rate_under_continuous_monitoring():
    rng = random.Random(7)
    alpha, runs, flagged_runs = 0.01, 400, 0
    for _ in range(runs):
        shadow_only = baseline_only = 0
        for _ in range(2000):  # a look after every discordant request
            if rng.random() < 0.5:
                shadow_only += 1
            else:
                baseline_only += 1
            if comparison.flagged(shadow_only, baseline_only, alpha):
                flagged_runs += 1
                break
    assert flagged_runs / runs <= alpha + 0.01
    assert comparison.flagged(20, 0, alpha / 66) and not comparison.flagged(5, 0, alpha / 66)
