"""scripts/e2e's `alerts` scenario without a cluster: the failing version and the alert it waits for, read from the
e2e stack's plan, and its wait against real local HTTP servers standing in for the gateway (the failing version
answering 500 to every second request), Prometheus (/api/v1/rules and /api/v1/alerts, whose alert turns pending
then firing only once the failing version has served failures) and Alertmanager (/api/v2/alerts), reached through
a fake kubectl's port-forward."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from tests.conftest import REPO
from tests.test_e2e import load_e2e, stack_endpoints
from turnout.cli import main as turnout_main

e2e = load_e2e()


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    """The e2e stack planned by turnout, as `make up STACK=e2e` plans it."""
    out = tmp_path_factory.mktemp("plans")
    assert turnout_main(["plan", "e2e", "--project", str(REPO), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def plan(plans):
    return e2e.load_plan(plans / "e2e")


ENDPOINT, VERSION, HEALTHY = "flaky", "v2", "v1"


def planned_rules(plans, endpoint: str) -> dict:
    """The endpoint's rule file in the planned turnout-alert-rules ConfigMap (what Prometheus loads)."""
    inventory = json.loads((plans / "e2e" / "inventory.json").read_text())
    for resource in inventory["resources"]:
        body = resource.get("inputs") or {}
        if body.get("kind") == "ConfigMap" and body["metadata"]["name"] == "turnout-alert-rules":
            return yaml.safe_load(body["data"][f"{endpoint}.yml"])
    raise AssertionError("no turnout-alert-rules ConfigMap in the e2e plan")


def planned_alert(plans, endpoint: str, name: str) -> tuple[dict, str]:
    for group in planned_rules(plans, endpoint)["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == name:
                return rule, group["interval"]
    raise AssertionError(f"no alert {name} for {endpoint}")


# what the scenario reads from the plan ------------------------------------------------------------------------


def test_the_e2e_stack_has_a_version_failing_on_purpose_and_the_prometheus_to_see_it(plan):
    endpoints = stack_endpoints()
    assert endpoints[ENDPOINT]["versions"][VERSION]["env"] == {"FAIL_PERCENT": "50"}
    assert "env" not in endpoints[ENDPOINT]["versions"][HEALTHY]
    assert plan.failing == {(ENDPOINT, VERSION): 50}, "only flaky v2 fails on purpose (gated's v2 is not deployed)"
    assert [e.weights for e in plan.endpoints[ENDPOINT]] == [{HEALTHY: 50, VERSION: 50}], "it takes user traffic"
    assert plan.monitoring == e2e.Monitoring("turnout-monitoring", "prometheus", 15.0)
    assert plan.monitoring.prometheus == ("prometheus-server", 80)
    assert plan.monitoring.alertmanager == ("prometheus-alertmanager", 9093)


def test_the_alert_the_scenario_waits_for_is_the_planned_error_rate_rule(plans):
    """Same name, same labels: the rule Prometheus loads from the plan's ConfigMap fires per version."""
    rule, interval = planned_alert(plans, ENDPOINT, e2e.ERROR_ALERT)
    assert rule["labels"] == {"severity": "page", "endpoint": ENDPOINT}
    assert "turnout:error_ratio:rate5m" in rule["expr"] and 'endpoint="flaky"' in rule["expr"]
    recording = {r["record"]: r for g in planned_rules(plans, ENDPOINT)["groups"] for r in g["rules"] if "record" in r}
    # the alert's destination_version label comes from the recording rules' grouping
    assert "sum by (destination_version, turnout_role)" in recording["turnout:error_ratio:rate5m"]["expr"]
    assert recording["turnout:error_ratio:rate5m"]["labels"] == {"endpoint": ENDPOINT}
    # a 50% failure share is far above the fast burn's threshold (14.4 x the 0.1% budget)
    threshold = float(rule["expr"].split("> ")[1].split("\n")[0])
    assert threshold < 0.5
    wait = e2e.alert_wait(e2e.duration_seconds(rule["for"]), e2e.duration_seconds(interval), 15.0)
    assert wait == 2 * (2 * 15 + 3 * 30 + 120) == 480, "8 minutes at most, within the workflow's hour"


@pytest.mark.parametrize(("text", "seconds"), [("15s", 15), ("2m", 120), ("1h30m", 5400), ("500ms", 0.5)])
def test_prometheus_durations(text, seconds):
    assert e2e.duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "2x", "m"])
def test_bad_durations_are_plan_errors(text):
    with pytest.raises(e2e.PlanError):
        e2e.duration_seconds(text)


def test_a_plan_without_observability_has_no_monitoring(plan):
    resources = [dict(r) for r in plan.resources]
    for resource in resources:
        if resource.get("type") == "kubernetes:helm.sh/v3:Release" and resource["inputs"].get("chart") == "prometheus":
            values = json.loads(json.dumps(resource["inputs"]["values"]))
            values["alertmanager"] = {"enabled": False}
            resource["inputs"] = {**resource["inputs"], "values": values}
    assert e2e.monitoring(resources) is None
    assert e2e.monitoring([]) is None


# the wait, against stand-ins ------------------------------------------------------------------------------------


class Gateway:
    """flaky's route: v1 and v2 in turn; v2 answers 500 to every second request it gets, as model-echo does."""

    def __init__(self) -> None:
        self.lock, self.turn, self.v2_requests, self.failures = threading.Lock(), 0, 0, 0
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                with gateway.lock:
                    gateway.turn += 1
                    version = (HEALTHY, VERSION)[gateway.turn % 2]
                    status = 200
                    if version == VERSION:
                        gateway.v2_requests += 1
                        if gateway.v2_requests % 2 == 0:
                            status, gateway.failures = 500, gateway.failures + 1
                self.send_response(status)
                self.send_header("X-Model-Version", version)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Monitoring:
    """Prometheus and Alertmanager: the alert is inactive until the gateway has served `needed` failures, then
    pending for `pending` seconds, then firing (for `versions`); Alertmanager holds what fires unless `deaf`."""

    def __init__(self, gateway: Gateway, rule: dict | None, *, needed=3, pending=0.3, versions=(VERSION,), deaf=False):
        self.gateway, self.rule, self.needed, self.pending = gateway, rule, needed, pending
        self.versions, self.deaf, self.since = versions, deaf, None
        self.alerts_read = 0
        monitoring = self

        def handler(kind: str):
            class Handler(BaseHTTPRequestHandler):
                def do_GET(self):  # noqa: N802
                    url = urlsplit(self.path)
                    body = monitoring.answer(kind, url.path, parse_qs(url.query))
                    data = json.dumps(body).encode()
                    self.send_response(200 if body is not None else 404)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

                def log_message(self, *args):
                    pass

            return Handler

        self.prometheus = ThreadingHTTPServer(("127.0.0.1", 0), handler("prometheus"))
        self.alertmanager = ThreadingHTTPServer(("127.0.0.1", 0), handler("alertmanager"))
        for server in (self.prometheus, self.alertmanager):
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def state(self) -> str:
        if self.gateway.failures < self.needed:
            return "inactive"
        self.since = self.since or time.monotonic()
        return "firing" if self.pending is not None and time.monotonic() - self.since >= self.pending else "pending"

    def alerts(self) -> list[dict]:
        state = self.state()
        if state == "inactive":
            return []
        labels = {"alertname": e2e.ERROR_ALERT, "endpoint": ENDPOINT, "severity": "page", "turnout_role": "serving"}
        return [
            {
                "labels": {**labels, "destination_version": version},
                "annotations": {"summary": f"flaky {version}: 5xx answers burn the error budget 14.4x too fast"},
                "state": state,
                "activeAt": "2026-01-01T00:00:00Z",
                "value": "5e-01",
            }
            for version in self.versions
        ]

    def answer(self, kind: str, path: str, query: dict):
        if kind == "prometheus" and path == "/api/v1/rules":
            groups = [{"name": "turnout-flaky-alerts", "interval": 0.05, "rules": [self.rule] if self.rule else []}]
            return {"status": "success", "data": {"groups": groups}}
        if kind == "prometheus" and path == "/api/v1/alerts":
            self.alerts_read += 1
            return {"status": "success", "data": {"alerts": self.alerts()}}
        if kind == "alertmanager" and path == "/api/v2/alerts":
            wanted = dict(f.split("=", 1) for f in query.get("filter", []))
            found = [] if self.deaf else [a for a in self.alerts() if a["state"] == "firing"]
            return [
                {"labels": a["labels"], "status": {"state": "active"}, "startsAt": a["activeAt"]}
                for a in found
                if all(a["labels"].get(k) == v.strip('"') for k, v in wanted.items())
            ]
        return None

    def close(self) -> None:
        for server in (self.prometheus, self.alertmanager):
            server.shutdown()
            server.server_close()


FAKE_KUBECTL = """#!{python}
import json, sys, time
ports = json.load(open({ports!r}))
args = sys.argv[1:]
with open({calls!r}, "a") as calls:
    calls.write(json.dumps(args) + "\\n")
if "port-forward" in args:
    service = next(a for a in args if a.startswith("svc/"))[4:]
    print(f"Forwarding from 127.0.0.1:{{ports[service]}} -> 9090", flush=True)
    time.sleep(3600)
sys.exit(f"unexpected kubectl {{args}}")
"""


@pytest.fixture
def stand_ins(plan, plans, tmp_path):
    """Start the stand-ins; return a Run of the `alerts` scenario against them and the stand-ins."""
    started = []
    rule, _ = planned_alert(plans, ENDPOINT, e2e.ERROR_ALERT)
    # as Prometheus's /api/v1/rules shows a loaded rule: `for` in seconds (scaled down), its labels
    loaded = {"name": rule["alert"], "type": "alerting", "duration": 0.3, "labels": rule["labels"]}

    def start(*, rule=loaded, kubectl_present=True, **behaviour):
        gateway = Gateway()
        monitoring = Monitoring(gateway, rule, **behaviour)
        started.extend([gateway.server, monitoring])
        ports = {"prometheus-server": monitoring.prometheus.server_port}
        ports["prometheus-alertmanager"] = monitoring.alertmanager.server_port
        (tmp_path / "ports.json").write_text(json.dumps(ports))
        kubectl = tmp_path / "kubectl"
        fake = FAKE_KUBECTL.format(
            python=sys.executable, ports=str(tmp_path / "ports.json"), calls=str(tmp_path / "calls")
        )
        kubectl.write_text(fake)
        kubectl.chmod(0o755)
        quick = dataclasses.replace(plan, monitoring=e2e.Monitoring("turnout-monitoring", "prometheus", 0.05))
        address = e2e.Gateway("127.0.0.1", gateway.server.server_port, 0, plan.gateway.domain)
        run = e2e.Run(
            plan=quick,
            client=e2e.GatewayClient(address, scheme="http"),
            logs=e2e.ClusterLogs(str(kubectl if kubectl_present else tmp_path / "no-kubectl"), "kind-e2e"),
            poll=0.02,
            alert_batch=4,
        )
        return run, gateway, monitoring

    yield start
    for server in started:
        if isinstance(server, Monitoring):
            server.close()
        else:
            server.shutdown()
            server.server_close()


def test_the_alert_fires_for_the_failing_version_and_is_printed(stand_ins, tmp_path, capsys):
    run, gateway, monitoring = stand_ins()
    started = time.monotonic()
    outcomes = e2e.check_alerts(run)
    out = capsys.readouterr().out
    assert [(o.scenario, o.subject, o.status) for o in outcomes] == [
        ("alerts", f"{ENDPOINT} {VERSION}: {e2e.ERROR_ALERT}", "pass")
    ], outcomes
    assert gateway.failures >= 3, "the scenario kept sending requests until the failures were seen"
    assert "in Alertmanager too" in outcomes[0].detail and "'HTTP 500'" not in outcomes[0].detail
    assert f"{e2e.ERROR_ALERT} pending after" in out and f"{e2e.ERROR_ALERT} firing after" in out
    assert f"firing: {e2e.ERROR_ALERT}{{destination_version=v2,endpoint=flaky,severity=page" in out
    budget = e2e.alert_wait(0.3, 0.05, 0.05)
    assert f"waiting up to {budget:.0f}s" in out
    assert time.monotonic() - started < 30
    calls = [json.loads(line) for line in (tmp_path / "calls").read_text().splitlines()]
    forwarded = sorted(c[c.index("port-forward") + 3] for c in calls)
    assert forwarded == ["svc/prometheus-alertmanager", "svc/prometheus-server"]
    assert all(c[:2] == ["--context", "kind-e2e"] and "turnout-monitoring" in c for c in calls)


def test_an_alert_that_never_fires_fails_after_the_wait_derived_from_the_rule(stand_ins):
    run, gateway, monitoring = stand_ins(pending=None)
    started = time.monotonic()
    outcomes = e2e.check_alerts(run)
    waited = time.monotonic() - started
    budget = e2e.alert_wait(0.3, 0.05, 0.05)
    assert [o.status for o in outcomes] == ["fail"]
    assert outcomes[0].detail.startswith("pending after") and f"(the wait: {budget:.0f}s)" in outcomes[0].detail
    assert budget <= waited < budget + 10, "bounded by the derived wait"
    assert monitoring.alerts_read > 3


def test_no_failures_served_means_no_alert(stand_ins):
    run, gateway, monitoring = stand_ins(needed=10**9)
    outcomes = e2e.check_alerts(run)
    assert [o.status for o in outcomes] == ["fail"] and outcomes[0].detail.startswith("inactive after")


def test_an_alert_alertmanager_never_receives_fails(stand_ins):
    run, _, _ = stand_ins(deaf=True)
    outcomes = e2e.check_alerts(run)
    assert [o.status for o in outcomes] == ["fail"]
    assert outcomes[0].detail.startswith("in Prometheus but not in Alertmanager")


def test_the_same_alert_on_the_healthy_version_fails_the_check(stand_ins):
    run, _, _ = stand_ins(versions=(VERSION, HEALTHY))
    outcomes = e2e.check_alerts(run)
    assert [o.status for o in outcomes] == ["fail"]
    assert "but also ModelErrorBudgetFastBurn{destination_version=v1" in outcomes[0].detail


def test_a_rule_prometheus_did_not_load_fails_naming_it(stand_ins):
    run, _, _ = stand_ins(rule=None)
    outcomes = e2e.check_alerts(run)
    assert [(o.status, o.detail) for o in outcomes] == [
        ("fail", f"Prometheus has no rule {e2e.ERROR_ALERT} for {ENDPOINT} loaded")
    ]


def test_without_observability_the_check_fails_and_without_kubectl_it_is_skipped(stand_ins):
    run, _, _ = stand_ins()
    off = dataclasses.replace(run, plan=dataclasses.replace(run.plan, monitoring=None))
    assert [(o.status, o.detail) for o in e2e.check_alerts(off)] == [
        ("fail", "the plan has no Prometheus with Alertmanager (platform.observability is off)")
    ]
    run, _, _ = stand_ins(kubectl_present=False)
    outcomes = e2e.check_alerts(run)
    assert [o.status for o in outcomes] == ["skip"] and "port-forward" in outcomes[0].detail
    assert e2e.exit_status(outcomes) == e2e.EXIT_SKIPPED


def test_a_plan_without_a_failing_version_has_nothing_to_alert_on(stand_ins):
    run, _, _ = stand_ins()
    assert e2e.check_alerts(dataclasses.replace(run, plan=dataclasses.replace(run.plan, failing={}))) == []


def test_the_failing_versions_errors_count_as_its_answers_in_the_other_checks(stand_ins):
    """routes counts flaky's split: v2's on-purpose 500s are v2's answers, anyone else's 500 is an error."""
    run, gateway, _ = stand_ins()
    route = run.plan.endpoints[ENDPOINT][0]
    counts, answers = run.send(route, 40, "t")
    assert counts == {HEALTHY: 20, VERSION: 20} and sum(a.status == 500 for a in answers) == 10
    other = dataclasses.replace(run, plan=dataclasses.replace(run.plan, failing={}))
    counts, _ = other.send(route, 40, "t")
    assert counts == {HEALTHY: 20, VERSION: 10, "HTTP 500": 10}


def test_only_a_positive_integer_fail_percent_on_the_model_container_marks_a_failing_version():
    def deployment(env, container="model", endpoint="flaky"):
        labels = {"turnout.dev/endpoint": endpoint, "turnout.dev/version": "v2"}
        spec = {"template": {"spec": {"containers": [{"name": container, "env": env}]}}}
        return {"inputs": {"kind": "Deployment", "metadata": {"labels": labels}, "spec": spec}}

    def failing(*resources):
        return e2e.failing_versions(list(resources))

    assert failing(deployment([{"name": "FAIL_PERCENT", "value": "30"}])) == {("flaky", "v2"): 30}
    assert failing(deployment([{"name": "FAIL_PERCENT", "value": "0"}])) == {}
    assert failing(deployment([{"name": "FAIL_PERCENT", "value": "lots"}])) == {}
    assert failing(deployment([{"name": "FAIL_PERCENT", "value": "30"}], container="istio-proxy")) == {}
    assert failing(deployment([{"name": "OTHER", "value": "30"}])) == {}


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is missing: `apt-get install prometheus` (Debian's package)")
def test_prometheus_fires_the_planned_alert_for_flaky_v2_within_the_nominal_wait(plans, tmp_path):
    """promtool with the planned rule file: v2 failing half its requests from the start (scraped every 15s, as the
    plan's Prometheus does) fires the alert for v2, and only v2, by the wait the script derives without its margin
    (not before `for` has passed); the script allows twice that."""
    rules = planned_rules(plans, ENDPOINT)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)  # promtool would compare them too
    alert, interval = planned_alert(plans, ENDPOINT, e2e.ERROR_ALERT)
    nominal = e2e.alert_wait(e2e.duration_seconds(alert["for"]), e2e.duration_seconds(interval), 15.0, margin=1)
    assert nominal == 240

    def requests(version: str, code: str, per_scrape: int) -> dict:
        labels = f'reporter="destination",namespace="{ENDPOINT}",destination_version="{version}"'
        labels += f',turnout_role="serving",response_code="{code}"'
        return {"series": f"istio_requests_total{{{labels}}}", "values": f"0+{per_scrape}x60"}

    fired = {"endpoint": ENDPOINT, "destination_version": VERSION, "turnout_role": "serving", "severity": "page"}
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": interval,
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    requests(HEALTHY, "200", 30),
                    requests(VERSION, "200", 15),
                    requests(VERSION, "500", 15),
                ],
                "alert_rule_test": [
                    {"eval_time": "2m", "alertname": e2e.ERROR_ALERT, "exp_alerts": []},
                    {
                        "eval_time": f"{int(nominal)}s",
                        "alertname": e2e.ERROR_ALERT,
                        "exp_alerts": [{"exp_labels": fired}],
                    },
                ],
            }
        ],
    }
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = subprocess.run([PROMTOOL, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
