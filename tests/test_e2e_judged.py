"""The judged canary of the e2e stack (environments/Pulumi.e2e-judged.yaml, `scripts/e2e judged`) without a cluster:
the update is the e2e stack with judged's canary turned around, planned as the `e2e` stack `pulumi up --config-file`
updates it changes only judged's target in place; the rollback wait follows from the Canary's analysis and the judge's
own math; and the command's verdicts against a fake pulumi, a fake kubectl serving the Canary's phases and Flagger's
VirtualService, a stand-in agent's report and a local gateway."""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import REPO
from tests.test_e2e import load_e2e
from tests.test_e2e_refused import Gateway, _registrations, config
from turnout.cli import main as turnout_main
from turnout.experiments.judge import SequentialJudge

e2e = load_e2e()

ENVIRONMENTS = REPO / "environments"
UPDATE = ENVIRONMENTS / "Pulumi.e2e-judged.yaml"
ENDPOINT = "judged"


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    out = tmp_path_factory.mktemp("plans")
    assert turnout_main(["plan", "e2e", "e2e-judged", "--project", str(REPO), "--out", str(out)]) == 0
    return out


# the stack files -------------------------------------------------------------------------------------------


def test_the_update_is_the_e2e_stack_with_judgeds_canary_turned_around():
    deployed, update = config(ENVIRONMENTS / "Pulumi.e2e.yaml"), config(UPDATE)
    judged = deployed["turnout:endpoints"][ENDPOINT]
    progressive = {"judge": "sequential", "interval": "30s", "stepWeight": 10, "maxWeight": 50}
    # make up: Flagger's first target is v1, promoted without analysis.
    assert judged["strategy"] == {
        "type": "canary",
        "stable": "v2",
        "canary": "v1",
        "weight": 10,
        "progressive": progressive,
    }
    assert update["turnout:endpoints"][ENDPOINT]["strategy"] == {
        "type": "canary",
        "stable": "v1",
        "canary": "v2",
        "weight": 10,
        "progressive": progressive,
    }
    assert judged["versions"]["v2"]["env"] == {"FAIL_PERCENT": "50"} and "env" not in judged["versions"]["v1"]
    deployed["turnout:endpoints"][ENDPOINT] = update["turnout:endpoints"][ENDPOINT]
    assert update == deployed, "nothing else differs"
    refused = config(ENVIRONMENTS / "Pulumi.e2e-refused.yaml")["turnout:endpoints"][ENDPOINT]
    assert refused == judged, "the refused update, which runs first, leaves judged as deployed"


def test_planned_as_the_e2e_stack_the_update_changes_judgeds_target_in_place():
    """Pulumi matches resources by name: the same names (the target's are its role's, not its version's: a renamed
    Deployment `judged` would be created, then deleted under its old name), new inputs in judged's namespace only
    (and the rule file, whose comparison names the versions)."""
    before, after = _registrations("e2e"), _registrations("e2e-judged")
    assert set(before) == set(after)
    changed = sorted(name for name in after if after[name] != before[name])
    assert {"e2e-judged-flagger-target-deployment", "e2e-judged-flagger-canary"} <= set(changed), changed
    assert all(n.startswith(f"e2e-{ENDPOINT}-") or n == "e2e-serving-prometheus-rules" for n in changed), changed
    deployment = after["e2e-judged-flagger-target-deployment"]
    assert deployment["metadata"]["name"] == before["e2e-judged-flagger-target-deployment"]["metadata"]["name"]
    # Flagger scaled the target, so it owns spec.replicas: Pulumi's server-side apply must force it, or the update
    # would stop on the field conflict (pulumi-kubernetes does not force by default).
    assert deployment["metadata"]["annotations"]["pulumi.com/patchForce"] == "true"
    (model,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "model"]
    assert {"name": "FAIL_PERCENT", "value": "50"} in model["env"] and {"name": "TARGET", "value": "v2"} in model["env"]


def test_both_stacks_plan_with_the_judged_canary_the_script_reads(plans):
    deployed, update = e2e.load_plan(plans / "e2e"), e2e.load_plan(plans / "e2e-judged")
    canary = update.progressive[ENDPOINT]
    assert (canary.stable, canary.analysed, canary.judged) == ("v1", "v2", True)
    assert canary.interval == 30 and canary.step_weights == (10, 20, 30, 40, 50)
    assert deployed.progressive[ENDPOINT].analysed == "v1"
    # make up leaves every request with v1 (Flagger's first target); only the update's target fails on purpose.
    assert [e.weights for e in deployed.endpoints[ENDPOINT]] == [{"v1": 100}]
    assert (ENDPOINT, "v2") not in deployed.failing and update.failing[(ENDPOINT, "v2")] == 50
    assert e2e.changed_endpoints(deployed, update) == [ENDPOINT]
    (resource,) = e2e._objects(update, "Canary", ENDPOINT)
    hooks = resource["spec"]["analysis"]["webhooks"]
    assert [h["type"] for h in hooks] == ["pre-rollout", "rollback", "rollout", "confirm-promotion"]
    assert resource["spec"]["analysis"]["metrics"] == [], "the judge decides, not Flagger's thresholds"
    (settings,) = [o for o in e2e._objects(update, "ConfigMap", ENDPOINT) if o["metadata"]["name"].endswith("settings")]
    judge = json.loads(next(iter(settings["data"].values())))["judge"]
    assert judge["latencyMs"] == 500, "latency judged too: each judge gets half of alpha"
    agent = update.endpoints[ENDPOINT][-1].agent
    assert agent["owns"] == "judgement" and agent["report"] == "/v1/endpoints/judged/report"
    assert agent["alpha"] == judge["alpha"] == 0.01


# the wait ---------------------------------------------------------------------------------------------------


def test_one_interval_of_requests_at_the_first_step_is_evidence_enough_and_the_wait_is_six_minutes(plans):
    """10 requests a second for 30 s at 10%: 30 canary requests, 15 of them failed, none of the primary's 270. The
    agent's error judge (alpha 0.005) rolls back on them; a third of the traffic needs two intervals."""
    assert e2e.requests_to_rollback(50, 10, 10.0, 30, 0.01) == 1
    judge = SequentialJudge(alpha=0.005)
    assert judge.update(primary=(270, 0), canary=(30, 15)) == "rollback"
    slow = SequentialJudge(alpha=0.005)
    assert slow.update(primary=(18, 0), canary=(2, 1)) == "continue", "at 2/3 rps, one interval is not enough"
    assert e2e.requests_to_rollback(50, 10, 2 / 3, 30, 0.01) > 1
    canary = e2e.load_plan(plans / "e2e-judged").progressive[ENDPOINT]
    assert e2e.rollback_wait(canary, 15, 1) == 2 * (30 * 5 + 30) == 360
    with pytest.raises(e2e.PlanError, match="no request of an interval reaches both versions"):
        e2e.requests_to_rollback(50, 10, 0.01, 30, 0.01)


# scripts/e2e judged against stand-ins ------------------------------------------------------------------------------


FAKE_PULUMI = """#!{python}
import json, sys
with open({calls!r}, "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\\n")
print("Updating (e2e):")
sys.exit({status})
"""

FAKE_KUBECTL = """#!{python}
import json, pathlib, sys, time
state = json.load(open({state!r}))
args = sys.argv[1:]
if args[:1] == ["--context"]:
    args = args[2:]
if "port-forward" in args:
    print(f"Forwarding from 127.0.0.1:{{state['agent']}} -> 8080", flush=True)
    time.sleep(3600)
elif args[:2] == ["get", "canaries.flagger.app"]:
    counter = pathlib.Path({counter!r})
    seen = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(seen + 1))
    print(json.dumps({{"status": state["statuses"][min(seen, len(state["statuses"]) - 1)]}}))
elif args[:2] == ["get", "virtualservice"]:
    print(json.dumps(state["virtualservice"]))
else:
    sys.exit(f"unexpected kubectl {{args}}")
"""

BEFORE = {"phase": "Initialized", "lastPromotedSpec": "v1-spec", "canaryWeight": 0}
PROGRESSING = {"phase": "Progressing", "lastPromotedSpec": "v1-spec", "canaryWeight": 10}
FAILED = {"phase": "Failed", "lastPromotedSpec": "v1-spec", "canaryWeight": 0}
ROLLED_BACK = {"judged-primary": 100, "judged-canary": 0}

REPORT = {
    "endpoint": ENDPOINT,
    "versions": [
        {"version": "v1", "role": "primary", "requests": 270, "errors": 0},
        {"version": "v2", "role": "canary", "requests": 30, "errors": 15},
    ],
    "analysis": {
        "verdict": "rollback",
        "evidence": {"regression_p_value": 0.0001},
        "verdicts": [
            {"hook": "pre-rollout", "status": 200, "verdict": "continue"},
            {"hook": "rollback", "status": 409, "verdict": "continue"},
            {"hook": "rollback", "status": 200, "verdict": "rollback"},
        ],
    },
}


class Agent:
    """The agent's API: its report on GET /v1/endpoints/judged/report."""

    def __init__(self, report: dict) -> None:
        agent = self
        self.report = report

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                found = self.path == f"/v1/endpoints/{ENDPOINT}/report"
                data = json.dumps(agent.report if found else {"error": "not here"}).encode()
                self.send_response(200 if found else 404)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def stand_ins(plans, tmp_path):
    """Write the stand-ins; return a function that runs check_judged (or main) against them."""
    servers = []

    def prepare(
        *,
        statuses=(BEFORE, BEFORE, PROGRESSING, PROGRESSING, FAILED),
        live=ROLLED_BACK,
        report=REPORT,
        answers=(("v1", 200),),
        pulumi_status=0,
    ):
        gateway, agent = Gateway(list(answers)), Agent(report)
        servers.extend([gateway.server, agent.server])
        pulumi, kubectl = tmp_path / "pulumi", tmp_path / "kubectl"
        pulumi.write_text(
            FAKE_PULUMI.format(python=sys.executable, calls=str(tmp_path / "calls"), status=pulumi_status)
        )
        destinations = [
            {"destination": {"host": host}, "weight": weight}  # Flagger's: the Services' short names
            for host, weight in live.items()
        ]
        state = {
            "statuses": list(statuses),
            "virtualservice": {"spec": {"http": [{"route": destinations}]}},
            "agent": agent.server.server_port,
        }
        (tmp_path / "state.json").write_text(json.dumps(state))
        counter = tmp_path / "canary-reads"
        kubectl.write_text(
            FAKE_KUBECTL.format(python=sys.executable, state=str(tmp_path / "state.json"), counter=str(counter))
        )
        for tool in (pulumi, kubectl):
            tool.chmod(0o755)
        return gateway, pulumi, kubectl

    def run(margin=2.0, **change):
        gateway, pulumi, kubectl = prepare(**change)
        after = e2e.load_plan(plans / "e2e-judged", port=gateway.server.server_port)
        client = e2e.GatewayClient(after.gateway, scheme="http")
        run = e2e.Run(
            plan=after,
            client=client,
            logs=e2e.ClusterLogs(str(kubectl), "kind-e2e"),
            few=10,
            poll=0.01,
            settle=0.5,
            judge_rate=20,
            judge_margin=margin,
        )
        command = [str(pulumi), "up", "--stack", "e2e", "--config-file", str(UPDATE), "--yes"]
        try:
            return e2e.check_judged(run, after, command)
        finally:
            client.close()

    run.prepare = prepare
    yield run
    for server in servers:
        server.shutdown()
        server.server_close()


def calls(tmp_path) -> list:
    path = tmp_path / "calls"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_canary_the_judge_rolls_back_passes(stand_ins, tmp_path):
    outcomes = stand_ins()
    assert {o.status for o in outcomes} == {"pass"}, outcomes
    details = {o.subject: o.detail for o in outcomes}
    assert details["judged: Canary before the update"] == "phase Initialized (Initialized or Succeeded)"
    assert details["pulumi up with e2e-judged's config"] == "exit 0"
    rolled = details["judged: v2 against v1"]
    assert rolled.startswith("rolled back (Canary Failed) after") and "of 360s" in rolled
    assert "'v1':" in rolled and "'v2':" not in rolled, "the stand-in gateway answered v1 only"
    report = details["judged: the agent's report"]
    assert report.startswith("verdict rollback, regression p 0.0001;") and "rollback calls answered 200: 1" in report
    assert "'v2': '15/30 failed'" in report
    assert details["judged: VirtualService judged"].startswith("routes [{'judged-primary': 100, 'judged-canary': 0}]")
    assert details["judged through the gateway after the rollback"] == "10/10: v1 100%"
    assert calls(tmp_path) == [["up", "--stack", "e2e", "--config-file", str(UPDATE), "--yes"]], "pulumi up, once"


@pytest.mark.parametrize(
    ("change", "subject", "says"),
    [
        (
            {"statuses": (BEFORE, BEFORE, PROGRESSING, {**PROGRESSING, "phase": "Promoting"})},
            "judged: v2 against v1",
            "promoted (Promoting) after",
        ),
        (
            {"statuses": (BEFORE, PROGRESSING, {"phase": "Succeeded", "lastPromotedSpec": "v2-spec"})},
            "judged: v2 against v1",
            "promoted (Succeeded) after",
        ),
        ({"live": {"judged-primary": 50, "judged-canary": 50}}, "judged: VirtualService judged", "routes [{"),
        (
            {"report": {**REPORT, "analysis": {**REPORT["analysis"], "verdict": "continue", "verdicts": []}}},
            "judged: the agent's report",
            "verdict continue",
        ),
        ({"answers": (("v1", 200), ("v2", 500))}, "judged through the gateway after the rollback", "expected only v1"),
        ({"pulumi_status": 255}, "pulumi up with e2e-judged's config", "exit 255"),
        ({"statuses": (PROGRESSING,)}, "judged: Canary before the update", "phase Progressing"),
    ],
)
def test_a_canary_not_rolled_back_by_the_judge_fails_saying_why(stand_ins, tmp_path, change, subject, says):
    outcomes = stand_ins(**change)
    failed = [o for o in outcomes if o.status == "fail"]
    assert [o.subject for o in failed] == [subject], outcomes
    assert says in failed[0].detail, failed[0].detail
    if subject in ("judged: Canary before the update",):
        assert calls(tmp_path) == [], "no update of a Canary that is not ready to analyse"


def test_a_canary_never_failed_within_the_wait_fails(stand_ins):
    started = time.monotonic()
    outcomes = stand_ins(margin=0.005, statuses=(BEFORE, BEFORE, PROGRESSING))  # a wait of 0.9 s
    (failed,) = [o for o in outcomes if o.status == "fail"]
    assert failed.subject == "judged: v2 against v1"
    assert failed.detail.startswith("phase Progressing after") and "(the wait: 1s), never Failed" in failed.detail
    assert time.monotonic() - started < 30
    assert [o.subject for o in outcomes] == [
        "judged: Canary before the update",
        "pulumi up with e2e-judged's config",
        "judged: v2 against v1",
    ], "nothing else is judged of a canary that did not end"


def test_the_command_runs_the_update_and_reports(stand_ins, plans, tmp_path, capsys):
    gateway, pulumi, kubectl = stand_ins.prepare()
    report = tmp_path / "report.json"
    argv = ["judged", "e2e", "--plans", str(plans), "--config-file", str(UPDATE), "--scheme", "http"]
    argv += ["--address", "127.0.0.1", "--port", str(gateway.server.server_port), "--requests", "10", "--rate", "20"]
    argv += ["--pulumi", str(pulumi), "--kubectl", str(kubectl), "--report", str(report)]
    status = e2e.main(argv)
    out = capsys.readouterr().out
    assert status == 0, out
    assert "scripts/e2e judged e2e (run " in out and "judged (v2 against v1)" in out
    assert "waiting up to 360s for judged's Canary to fail: 20 requests/s, interval 30s, first step 10%" in out
    assert {o["status"] for o in json.loads(report.read_text())} == {"pass"}
    (call,) = calls(tmp_path)
    assert call[:5] == ["up", "--stack", "e2e", "--config-file", str(UPDATE)]


def test_an_update_without_a_failing_judged_canary_exits_2(plans, capsys):
    for stack_file in ("Pulumi.e2e.yaml", "Pulumi.e2e-refused.yaml"):
        status = e2e.main(["judged", "e2e", "--plans", str(plans), "--config-file", str(ENVIRONMENTS / stack_file)])
        assert status == e2e.EXIT_USAGE
    err = capsys.readouterr().err
    assert "has no canary judged sequentially" in err or "no readable plan" in err
    status = e2e.main(["judged", "e2e", "--plans", str(plans), "--config-file", str(ENVIRONMENTS / "Pulumi.e2e.yaml")])
    assert status == e2e.EXIT_USAGE and "nothing to roll back" in capsys.readouterr().err


def test_a_canary_flagger_has_not_seen_change_yet_is_waited_for(stand_ins):
    """Succeeded with the promoted spec it had before the update is the last release, not this one's promotion."""
    done = {**BEFORE, "phase": "Succeeded"}
    outcomes = stand_ins(statuses=(done, done, done, PROGRESSING, FAILED))
    assert {o.status for o in outcomes} == {"pass"}, outcomes
