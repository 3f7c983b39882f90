"""The report as a page (`/report` with `Accept: text/html`), loaded by a real headless browser (Debian's
Chromium) from live agents: it renders (inline SVG, no script, nothing fetched from elsewhere), and every number
it shows is the one `/report` returns as JSON. A bandit's (weights over time, rates with intervals, differences),
a judged canary's (verdict, p-values, webhook calls) and an interleaving's (preference)."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser

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

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
needs_prometheus = pytest.mark.skipif(prometheus_binary() is None, reason="needs Debian's prometheus package")


class Page(HTMLParser):
    """What the browser's DOM holds: each data-key's value, the tags, and any reference to elsewhere."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.texts: dict[str, str] = {}
        self.tags: list[str] = []
        self.external: list[str] = []
        self._open: list[str] = []
        self.feed(dom)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        for name in ("src", "href"):
            if attrs.get(name):
                self.external.append(attrs[name])
        if "data-key" in attrs:
            if "data-value" in attrs:
                self.values[attrs["data-key"]] = attrs["data-value"]
            self._open.append(attrs["data-key"])
            self.texts[attrs["data-key"]] = ""

    def handle_data(self, data):
        for key in self._open:
            self.texts[key] += data

    def handle_endtag(self, tag):
        if tag in ("td", "span", "p") and self._open:
            self._open.pop()


def browse(url: str) -> Page:
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return Page(done.stdout)


def lookup(report: dict, key: str):
    value = report
    for part in key.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def shown_as_json(url: str) -> tuple[Page, dict]:
    """The page and the JSON report read just before and after it, the same (the agent may be mid-round)."""
    for _ in range(5):
        before = http("GET", url)[1]
        page = browse(url)
        after = http("GET", url)[1]
        if all(lookup(before, k) == lookup(after, k) for k in page.texts):
            return page, after
    raise AssertionError("the report kept changing while the page was read")


def check(page: Page, report: dict) -> None:
    assert "svg" in page.tags and "table" in page.tags
    assert "script" not in page.tags and "link" not in page.tags, "no script, no stylesheet from elsewhere"
    assert page.external == [], page.external
    assert page.texts, "numbers are shown"
    for key, shown in page.values.items():
        expected = lookup(report, key)
        if expected is None:
            assert shown == "", key
        elif isinstance(expected, float):
            assert float(shown) == pytest.approx(expected, rel=1e-9, abs=1e-12), key
        else:
            assert shown == str(expected), key
    for key, text in page.texts.items():  # what a reader sees, rounded for the eye
        expected = lookup(report, key)
        if isinstance(expected, (int, float)) and not isinstance(expected, bool) and text.strip() != "–":
            assert float(text) == pytest.approx(expected, rel=1e-3, abs=1e-4), (key, text, expected)


@needs_prometheus
def test_a_bandit_page_shows_weights_over_time_rates_and_differences(tmp_path):
    pytest.importorskip("kubernetes", reason="the bandit agent writes through the official kubernetes client")
    kube = KubeStandIn()
    kube.put("virtualservices", NAMESPACE, virtual_service(("v1", "v2")))
    models = {v: ModelServer(v) for v in ("v1", "v2")}
    port = free_port()
    started = []
    try:
        prometheus = PrometheusProcess(tmp_path / "prometheus", [m.address for m in models.values()], [])
        started.append(prometheus)
        document = settings_document(
            tmp_path, kube=kube.url, prometheus=prometheus.url, peers={"agent-0": f"http://127.0.0.1:{port}"},
            interval=1,
        )  # fmt: skip
        agent = AgentProcess(document, "agent-0", port, tmp_path / "agent-0").start()
        started.append(agent)
        rng = random.Random(2)
        for _ in range(300):
            version = rng.choices(["v1", "v2"], list(kube.weights().values()))[0]
            http("GET", f"http://{models[version].address}/")
            if rng.random() < (0.2 if version == "v1" else 0.6):
                http("POST", f"{agent.url}/v1/endpoints/{NAMESPACE}/feedback", {"version": version, "reward": 1})
        url = f"{agent.url}/v1/endpoints/{NAMESPACE}/report"
        wait_for(lambda: len(http("GET", url)[1]["history"]) >= 3, 30, "three rounds")
        status, raw = http("GET", url)
        assert status == 200 and isinstance(raw, dict), "curl's */* and a JSON client still get JSON"
        page, report = shown_as_json(url)
        check(page, report)
        assert {f"versions.{i}.rate" for i in range(2)} <= set(page.values)
        assert "comparisons.0.pValue" in page.values
        assert page.tags.count("polyline") == 2, "one line per arm: the weights over time"
    finally:
        for thing in reversed(started):
            thing.stop()
        for model in models.values():
            model.close()
        kube.close()


@needs_prometheus
def test_a_judged_canary_page_shows_the_verdict_and_the_webhook_calls(tmp_path):
    from tests.test_agent_judge import CANARY, PRIMARY, Sidecars, hook, scraped

    sidecars = Sidecars()
    started = []
    try:
        prometheus = PrometheusProcess(tmp_path / "prometheus", [sidecars.address], [])
        started.append(prometheus)
        port, webhook_port = free_port(), free_port()
        document = {
            "strategy": "canary", "endpoint": NAMESPACE, "namespace": NAMESPACE,
            "peers": [{"name": "agent-0", "url": f"http://127.0.0.1:{port}"}],
            "ledger": {"path": str(tmp_path / "ledger.sqlite3")}, "port": port,
            "judge": {"primaryWorkload": PRIMARY, "canaryWorkload": CANARY, "stable": "v1", "canary": "v2",
                      "alpha": 0.01, "minRequests": 100, "prometheus": prometheus.url, "webhookPort": webhook_port,
                      "latencyMs": 500},
        }  # fmt: skip
        agent = AgentProcess(document, "agent-0", port, tmp_path / "agent-0").start()
        started.append(agent)
        base = f"http://127.0.0.1:{webhook_port}/flagger/"
        assert hook(base, "pre-rollout")[0] == 200
        for _ in range(3):
            sidecars.add(PRIMARY, 900, 9)
            sidecars.add(CANARY, 100, 8)
            scraped(prometheus, sidecars)
            hook(base, "rollback")
            hook(base, "rollout")
        page, report = shown_as_json(f"{agent.url}/v1/endpoints/{NAMESPACE}/report")
        check(page, report)
        assert page.texts["analysis.verdict"] == report["analysis"]["verdict"] == "rollback"
        assert "analysis.evidence.regression_p_value" in page.values
        assert page.tags.count("polyline") == 2, "the primary's and canary's error rates over the analysis"
        assert {"analysis.latency.counts.canary.0", "analysis.latency.verdict"} <= set(page.texts)
    finally:
        for thing in reversed(started):
            thing.stop()
        sidecars.close()


def test_an_interleaving_page_shows_the_preference(tmp_path):
    from tests.ranker_models import ranker, ranking
    from tests.test_agent_interleave import CLICKS, ask, interleaved_settings

    rankers = (ranker("v1"), ranker("v2"))
    port, proxy = free_port(), free_port()
    document = interleaved_settings(
        {"v1": rankers[0].url, "v2": rankers[1].url}, {"agent-0": f"http://127.0.0.1:{port}"}, proxy
    )
    agent = AgentProcess(document, "agent-0", port, tmp_path / "agent-0").start()
    try:
        for _ in range(8):
            _, headers, body = ask(proxy)
            top = ranking("v2", [i["id"] for i in body["items"]])[0]
            http("POST", agent.url + CLICKS, {"impression": headers["x-turnout-impression"], "clicked": [top]})
        page, report = shown_as_json(f"{agent.url}/v1/endpoints/scores/report")
        check(page, report)
        assert {"preference.share", "preference.pValue", "wins", "impressions"} <= set(page.texts)
        assert re.search(r"winner|no winner", page.texts["winner"])
    finally:
        agent.stop()
        for server in rankers:
            server.close()


def test_content_negotiation():
    import sys

    from tests.agent_harness import AGENT_APP

    sys.path.insert(0, str(AGENT_APP))
    from turnout_agent.report_html import wants_html

    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
    assert wants_html(browser) and wants_html("text/html") and wants_html(None, "format=html")
    assert not wants_html("*/*") and not wants_html("application/json") and not wants_html(None)
    assert not wants_html("application/json, text/html;q=0.5") and not wants_html(browser, "format=json")
