"""The refused update of the e2e stack (environments/Pulumi.e2e-refused.yaml, `scripts/e2e refused`) without a
cluster: the update is the e2e stack with one change, planned as the `e2e` stack `pulumi up --config-file` updates
it changes only the gated endpoint, its acceptance test fails against the version it makes a canary (the real
runner against the real model-echo), and the command's verdicts against a fake pulumi, a fake kubectl and a local
gateway that keeps, or does not keep, every request on v1."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.test_e2e import load_e2e
from turnout.cli import main as turnout_main
from turnout.offline.runtime import run_program
from turnout.offline.stackfile import find_project, read_stack

e2e = load_e2e()

ENVIRONMENTS = REPO / "environments"
UPDATE = ENVIRONMENTS / "Pulumi.e2e-refused.yaml"
ENDPOINT = "gated"


def config(path: Path) -> dict:
    return yaml.safe_load(path.read_text())["config"]


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    out = tmp_path_factory.mktemp("plans")
    assert turnout_main(["plan", "e2e", "e2e-refused", "--project", str(REPO), "--out", str(out)]) == 0
    return out


# the stack files -------------------------------------------------------------------------------------------


def test_the_update_is_the_e2e_stack_with_gateds_failing_v2_made_a_canary():
    deployed, update = config(ENVIRONMENTS / "Pulumi.e2e.yaml"), config(UPDATE)
    gated = deployed["turnout:endpoints"][ENDPOINT]
    assert gated["strategy"] == {"type": "rolling", "version": "v1"}, "v1 alone before the update"
    assert update["turnout:endpoints"][ENDPOINT]["strategy"] == {
        "type": "canary",
        "stable": "v1",
        "canary": "v2",
        "weight": 50,
    }
    assert gated["versions"]["v2"]["env"] == {"FAIL_PERCENT": "100"} and "env" not in gated["versions"]["v1"]
    assert gated["tests"] == [
        {
            "path": "/predict",
            "method": "POST",
            "body": {"features": [1, 2]},
            "expect": {"status": 200, "jsonPath": "$.input.features[0]", "equals": 1},
        }
    ]
    same = copy.deepcopy(update)
    same["turnout:endpoints"][ENDPOINT]["strategy"] = gated["strategy"]
    assert same == deployed, "nothing else differs: the update keeps the cluster and every other endpoint"


def _registrations(stack_file: str) -> dict[str, dict]:
    """The program's registrations with `stack_file`'s config under the stack name `e2e`, as `pulumi up --stack e2e
    --config-file` runs it: name -> inputs."""
    project = find_project(REPO)
    settings = read_stack(project, stack_file)
    run = run_program(project.root, project.name, "e2e", settings.config, settings.secret_keys, project.main)
    return {r.name: r.inputs for r in run.records}


def test_planned_as_the_e2e_stack_the_update_changes_only_the_gated_endpoint():
    """Pulumi matches resources by name: the same names, and new or changed inputs only in gated's namespace (and
    gated's rule file, which gains the canary's comparison alerts): the cluster, the platform and the other
    endpoints are left alone, so the refused update can fail nowhere else."""
    before, after = _registrations("e2e"), _registrations("e2e-refused")
    assert set(before) <= set(after), sorted(set(before) - set(after))
    changed = sorted(name for name in before if before[name] != after[name])
    added = sorted(set(after) - set(before))
    assert all(name.startswith(f"e2e-{ENDPOINT}-") for name in added), added
    assert {"e2e-gated-v2-deployment", "e2e-gated-acceptance-v2"} <= set(added)
    assert all(name.startswith(f"e2e-{ENDPOINT}-") or name == "e2e-serving-prometheus-rules" for name in changed), (
        changed
    )
    assert {"e2e-gated-routes-vs", "e2e-gated-acceptance-job"} <= set(changed)
    rules = after["e2e-serving-prometheus-rules"]["data"]
    assert {k: v for k, v in rules.items() if k != "gated.yml"} == {
        k: v for k, v in before["e2e-serving-prometheus-rules"]["data"].items() if k != "gated.yml"
    }
    job = after["e2e-gated-acceptance-job"]
    assert job["metadata"]["name"] != before["e2e-gated-acceptance-job"]["metadata"]["name"], "a new Job runs"
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--url=http://gated-v2-acceptance.gated.svc.cluster.local" in command
    assert after["e2e-gated-routes-vs"]["metadata"]["name"] == before["e2e-gated-routes-vs"]["metadata"]["name"]


def test_both_stacks_plan_with_the_routes_the_script_compares(plans):
    deployed, update = e2e.load_plan(plans / "e2e"), e2e.load_plan(plans / "e2e-refused")
    assert e2e.changed_endpoints(deployed, update) == [ENDPOINT]
    assert [e.weights for e in deployed.endpoints[ENDPOINT]] == [{"v1": 100}]
    assert [e.weights for e in update.endpoints[ENDPOINT]] == [{"v1": 50, "v2": 50}]
    (old,) = e2e._objects(deployed, "VirtualService", ENDPOINT)
    (new,) = e2e._objects(update, "VirtualService", ENDPOINT)
    assert e2e.route_weights(old) == [{"v1": 100}] and e2e.route_weights(new) == [{"v1": 50, "v2": 50}]
    assert update.failing == {(ENDPOINT, "v2"): 100, ("flaky", "v2"): 50}


def _serve_model(env: dict) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, str(REPO / "apps" / "model-echo" / "server.py")],
        env={"PATH": os.environ["PATH"], "PORT": "0", **env},
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stderr.readline()  # "model-echo v2 listening on :PORT"
    return process, f"http://127.0.0.1:{line.rsplit(':', 1)[1].strip()}"


@pytest.mark.parametrize(("version", "env", "status"), [("v1", {}, 0), ("v2", {"FAIL_PERCENT": "100"}, 1)])
def test_the_acceptance_test_passes_v1_and_refuses_the_failing_v2(tmp_path, version, env, status):
    """The real runner (apps/acceptance-runner) with gated's test against the real model-echo, set as each version."""
    gated = config(UPDATE)["turnout:endpoints"][ENDPOINT]
    tests = tmp_path / "tests.json"
    tests.write_text(json.dumps(gated["tests"]))
    process, url = _serve_model({"TARGET": version, **gated["versions"][version].get("env", {})})
    assert env == gated["versions"][version].get("env", {})
    try:
        urllib.request.urlopen(url + "/healthz", timeout=5).close()
        result = subprocess.run(
            [sys.executable, str(REPO / "apps" / "acceptance-runner" / "runner.py"), "check", "--tests", str(tests)]
            + [f"--url={url}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        process.terminate()
        process.wait(10)
    assert result.returncode == status, result.stdout + result.stderr
    if status:
        assert "expected status 200, got 500" in result.stdout


# scripts/e2e refused against stand-ins -------------------------------------------------------------------------


FAKE_PULUMI = """#!{python}
import json, sys
with open({calls!r}, "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\\n")
print("kubernetes:batch/v1:Job (e2e-gated-acceptance-job):")
print("  error: Job {job!r} failed: BackoffLimitExceeded")
sys.exit({status})
"""

FAKE_KUBECTL = """#!{python}
import json, sys
state = json.load(open({state!r}))
args = sys.argv[1:]
if args[:1] == ["--context"]:
    args = args[2:]
if args[:2] == ["get", "job"]:
    print(json.dumps(state["job"]))
elif args[:2] == ["get", "pods"]:
    print(json.dumps(state["pods"]))
elif args[:2] == ["get", "virtualservice"]:
    print(json.dumps(state["virtualservice"]))
else:
    sys.exit(f"unexpected kubectl {{args}}")
"""


class Gateway:
    """Answers gated's host from the versions in `answers` (version, status) in turn."""

    def __init__(self, answers: list[tuple[str, int]]) -> None:
        self.answers, self.count, self.lock = answers, 0, threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                with gateway.lock:
                    version, status = gateway.answers[gateway.count % len(gateway.answers)]
                    gateway.count += 1
                self.send_response(status)
                self.send_header("X-Model-Version", version)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


REASON = "POST /predict on http://gated-v2-acceptance.gated.svc.cluster.local: expected status 200, got 500"


@pytest.fixture
def refused(plans, tmp_path):
    """Run `scripts/e2e refused e2e` against the stand-ins; return its status, report and output."""
    servers = []
    update_job = e2e._objects(e2e.load_plan(plans / "e2e-refused"), "Job", ENDPOINT)[0]["metadata"]["name"]

    def run(
        capsys,
        *,
        pulumi_status=1,
        job_failed=True,
        message=REASON,
        live=({"v1": 100},),
        answers=(("v1", 200),),
        config_file=UPDATE,
    ):
        gateway = Gateway(list(answers))
        servers.append(gateway.server)
        pulumi, kubectl, calls = tmp_path / "pulumi", tmp_path / "kubectl", tmp_path / "pulumi-calls"
        pulumi.write_text(
            FAKE_PULUMI.format(python=sys.executable, calls=str(calls), job=update_job, status=pulumi_status)
        )
        conditions = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}] if job_failed else []
        terminated = {"exitCode": 1, "message": message} if message else {"exitCode": 1}
        pod = {"status": {"containerStatuses": [{"name": "runner", "state": {"terminated": terminated}}]}}
        destinations = [
            {"destination": {"host": "gated.gated.svc.cluster.local", "subset": v}, "weight": w}
            for route in live
            for v, w in route.items()
        ]
        state = {
            "job": {"status": {"conditions": conditions}},
            "pods": {"items": [pod, pod]},
            "virtualservice": {"spec": {"http": [{"name": "default", "route": destinations}]}},
        }
        (tmp_path / "state.json").write_text(json.dumps(state))
        kubectl.write_text(FAKE_KUBECTL.format(python=sys.executable, state=str(tmp_path / "state.json")))
        for tool in (pulumi, kubectl):
            tool.chmod(0o755)
        report = tmp_path / "report.json"
        argv = ["refused", "e2e", "--plans", str(plans), "--config-file", str(config_file), "--scheme", "http"]
        argv += ["--address", "127.0.0.1", "--port", str(gateway.server.server_port), "--requests", "10"]
        argv += ["--pulumi", str(pulumi), "--kubectl", str(kubectl), "--report", str(report)]
        status = e2e.main(argv)
        out = capsys.readouterr()
        outcomes = json.loads(report.read_text()) if report.exists() else []
        pulumi_calls = [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
        return status, outcomes, out, pulumi_calls

    yield run
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_refused_update_that_keeps_users_on_v1_passes(refused, capsys):
    status, outcomes, out, calls = refused(capsys)
    assert status == 0, out.out
    assert calls == [["up", "--stack", "e2e", "--config-file", str(UPDATE), "--yes", "--non-interactive"]]
    assert {o["status"] for o in outcomes} == {"pass"}, outcomes
    details = {o["subject"].split(":")[0].split(" route")[0]: o["detail"] for o in outcomes}
    assert details["pulumi up with e2e-refused's config"] == "exit 1: the update fails"
    job = next(o for o in outcomes if "Job" in o["subject"])
    assert job["detail"].startswith(f"failed: {REASON}") and "(pulumi up's output names it)" in job["detail"]
    service = next(o for o in outcomes if "VirtualService" in o["subject"])
    assert service["detail"] == "routes [{'v1': 100}]; deployed [{'v1': 100}], refused update [{'v1': 50, 'v2': 50}]"
    gateway = next(o for o in outcomes if "through the gateway" in o["subject"])
    assert gateway["detail"] == "10/10 answered as before: v1 100%"
    assert "| kubernetes:batch/v1:Job (e2e-gated-acceptance-job):" in out.out, "pulumi's output is shown"


@pytest.mark.parametrize(
    ("change", "subject", "says"),
    [
        ({"pulumi_status": 0}, "pulumi up", "exit 0: the update succeeds: the update was accepted"),
        ({"job_failed": False}, "Job", "did not fail"),
        ({"message": None}, "Job", "no reason in its pods' termination messages"),
        ({"live": ({"v1": 50, "v2": 50},)}, "VirtualService", "routes [{'v1': 50, 'v2': 50}]"),
        ({"answers": (("v1", 200), ("v2", 500))}, "through the gateway", "expected only v1 100%; got"),
    ],
)
def test_an_update_that_was_not_refused_or_moved_users_fails(refused, capsys, change, subject, says):
    status, outcomes, out, _ = refused(capsys, **change)
    assert status == e2e.EXIT_FAILED, out.out
    failed = [o for o in outcomes if o["status"] == "fail"]
    assert len(failed) == 1 and subject in failed[0]["subject"], outcomes
    assert says in failed[0]["detail"], failed[0]["detail"]


def test_an_update_that_changes_no_route_or_was_not_planned_exits_2(refused, capsys, tmp_path):
    status, _, out, calls = refused(capsys, config_file=ENVIRONMENTS / "Pulumi.e2e.yaml")
    assert status == e2e.EXIT_USAGE and calls == []
    assert "changes no route of e2e: nothing to refuse" in out.err
    status, _, out, calls = refused(capsys, config_file=tmp_path / "Pulumi.e2e-other.yaml")
    assert status == e2e.EXIT_USAGE and calls == []
    assert "the update's plan: no readable plan in" in out.err and "e2e-other" in out.err


def test_a_pulumi_that_cannot_run_fails_the_update_check(plans, tmp_path, capsys):
    run = e2e.Run(
        plan=e2e.load_plan(plans / "e2e"),
        client=e2e.GatewayClient(e2e.Gateway("127.0.0.1", 9, 0, "x"), scheme="http"),
        logs=e2e.ClusterLogs(str(tmp_path / "kubectl"), None),
    )
    started = time.monotonic()
    outcomes = e2e.check_refused(run, e2e.load_plan(plans / "e2e-refused"), [str(tmp_path / "no-pulumi"), "up"])
    assert outcomes[0].status == "fail" and outcomes[0].detail.startswith("FileNotFoundError")
    assert {o.status for o in outcomes} == {"fail"}, "nothing to read the cluster or the gateway with: all fail"
    assert outcomes[-1].detail.startswith("ConnectionRefusedError")
    assert time.monotonic() - started < 30


def test_the_update_is_given_the_deployed_stacks_secrets_settings(tmp_path):
    """`pulumi stack select --create` writes encryptionsalt into the stack's own file; the update's file needs it
    too, or Pulumi could not read the stack's state with the update's config."""
    stack_file, update = tmp_path / "Pulumi.e2e.yaml", tmp_path / "Pulumi.e2e-refused.yaml"
    update.write_text(UPDATE.read_text())
    out = tmp_path / "plans" / "e2e-refused" / "Pulumi.e2e-refused.yaml"
    assert e2e.with_secrets_settings(update, stack_file, out) == update, "no stack file yet: as it is"
    stack_file.write_text("config:\n  turnout:tier: dev\n")
    assert e2e.with_secrets_settings(update, stack_file, out) == update, "no secrets settings: as it is"
    stack_file.write_text("encryptionsalt: v1:abc:def\nconfig:\n  turnout:tier: dev\n")
    assert e2e.with_secrets_settings(update, stack_file, out) == out
    assert out.read_text() == "encryptionsalt: v1:abc:def\n" + UPDATE.read_text()
    assert yaml.safe_load(out.read_text())["config"] == config(UPDATE)
    update.write_text("encryptionsalt: v1:own:salt\n" + UPDATE.read_text())
    assert e2e.with_secrets_settings(update, stack_file, out) == update, "its own settings are kept"
