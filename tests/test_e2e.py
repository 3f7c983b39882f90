"""scripts/e2e, as far as it runs without a cluster: its arguments, the expectations it derives from the
e2e stack's plan, its binomial tolerance, and its checks against real local HTTP servers standing in for
the gateway (answering like the versions would, or like a broken gateway would)."""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import json
import random
import secrets
import shutil
import ssl
import subprocess
import sys
import threading
from fractions import Fraction
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from math import comb
from pathlib import Path

import pytest
import yaml

from components.cluster.kind import KIND_HOST_PORTS
from tests.conftest import REPO
from tests.e2e_agent_stand_in import PORT_FORWARD, StandInAgent
from turnout.cli import main as turnout_main

SCRIPT = REPO / "scripts" / "e2e"
E2E_STACK = REPO / "environments" / "Pulumi.e2e.yaml"


def load_e2e():
    """scripts/e2e as a module (it has no .py suffix: it is a command)."""
    if "turnout_e2e" not in sys.modules:
        loader = importlib.machinery.SourceFileLoader("turnout_e2e", str(SCRIPT))
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader("turnout_e2e", loader))
        sys.modules["turnout_e2e"] = module  # dataclasses look their module up while the class is made
        loader.exec_module(module)
    return sys.modules["turnout_e2e"]


e2e = load_e2e()


@pytest.fixture(scope="module")
def plans(tmp_path_factory) -> Path:
    """The e2e stack planned by turnout, as `make up STACK=e2e` plans it."""
    out = tmp_path_factory.mktemp("plans")
    assert turnout_main(["plan", "e2e", "--project", str(REPO), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def plan(plans):
    return e2e.load_plan(plans / "e2e")


def stack_endpoints() -> dict:
    return yaml.safe_load(E2E_STACK.read_text())["config"]["turnout:endpoints"]


# the script itself ------------------------------------------------------------------------------------


def test_the_script_imports_only_the_standard_library():
    """It runs anywhere Python does (a CI runner's python3, a laptop without the project's .venv)."""
    imported = set()
    for node in ast.walk(ast.parse(SCRIPT.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported - {"__future__"} <= sys.stdlib_module_names, imported - sys.stdlib_module_names
    assert SCRIPT.read_text().startswith("#!/usr/bin/env python3\n") and SCRIPT.stat().st_mode & 0o111


def test_the_script_runs_outside_the_projects_environment(plans):
    """Isolated mode (-I: no PYTHONPATH, no user site) with the system's python3 where there is one."""
    python = next((p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if Path(p).exists()), sys.executable)
    result = subprocess.run(
        [python, "-I", str(SCRIPT), "endpoints", "e2e", "--plans", str(plans)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "curl -k -H 'x-turnout-preview: true' https://preview.127.0.0.1.sslip.io:8443/" in result.stdout


# arguments --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["check"],
        ["chek", "e2e"],
        ["check", "e2e", "--requests", "0"],
        ["check", "e2e", "--requests", "many"],
        ["check", "e2e", "--alpha", "1"],
        ["check", "e2e", "--alpha", "0"],
        ["check", "e2e", "--wait", "-1"],
        ["check", "e2e", "--only", "bandits"],
        ["check", "e2e", "--scheme", "ftp"],
        ["check", "e2e", "--req", "10"],  # no abbreviations: a typo is an error, not another option
        ["endpoints", "e2e", "--requests", "10"],  # a check option on the wrong command
    ],
)
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        e2e.main(argv)
    assert caught.value.code == e2e.EXIT_USAGE
    assert "usage: scripts/e2e" in capsys.readouterr().err


def test_a_missing_plan_exits_2_saying_how_to_make_one(tmp_path, capsys):
    assert e2e.main(["check", "e2e", "--plans", str(tmp_path)]) == e2e.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"no readable plan in {tmp_path / 'e2e'}" in err and "turnout plan" in err and "Traceback" not in err


def test_a_stack_not_on_kind_exits_2(plans, tmp_path, capsys):
    folder = tmp_path / "cloud"
    shutil.copytree(plans / "e2e", folder)
    inventory = json.loads((folder / "inventory.json").read_text())
    for cluster in inventory["outputs"]["clusters"]:
        cluster["cloud"] = "aws"
    (folder / "inventory.json").write_text(json.dumps(inventory))
    assert e2e.main(["endpoints", "cloud", "--plans", str(tmp_path)]) == e2e.EXIT_USAGE
    assert "a stack on aws: these checks run on kind" in capsys.readouterr().err


def test_scenarios_lists_every_registered_check(capsys):
    assert e2e.main(["scenarios"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == list(e2e.SCENARIOS) == [*STAND_IN_SCENARIOS, "interleaving", "compare", "alerts"]


def test_exit_statuses_are_documented_as_returned():
    doc = e2e.__doc__
    assert "0 every check passed; 1 a check failed; 2 bad arguments or no readable plan;" in doc
    assert "77 nothing failed but a check could not run" in doc
    outcome = e2e.verdict
    assert e2e.exit_status([outcome("a", "x", True, "")]) == 0
    assert e2e.exit_status([outcome("a", "x", True, ""), outcome("b", "y", None, "")]) == 77
    assert e2e.exit_status([outcome("a", "x", False, ""), outcome("b", "y", None, "")]) == 1


# what the script derives from the plan ----------------------------------------------------------------


def test_the_gateway_comes_from_the_plan_and_kinds_published_ports(plan):
    assert plan.stack == "e2e"
    assert plan.gateway.address == "127.0.0.1"
    assert (plan.gateway.https_port, plan.gateway.http_port) == (KIND_HOST_PORTS[443], KIND_HOST_PORTS[80])
    assert e2e.kind_host_ports() == KIND_HOST_PORTS
    assert plan.gateway.domain == "127.0.0.1.sslip.io"  # kind's default gateway domain (turnout.config.KIND_DOMAIN)


def test_hosts_are_the_ones_the_rendered_routes_answer_at(plans, plan):
    """Istio endpoints: a host of their VirtualService; Knative ones: Knative's {{.Name}}.{{.Domain}}."""
    objects = [r["inputs"] for r in json.loads((plans / "e2e" / "inventory.json").read_text())["resources"]]
    virtual_hosts = {o["metadata"]["name"]: o["spec"]["hosts"] for o in objects if o.get("kind") == "VirtualService"}
    patches = {o["metadata"]["name"]: o.get("data") for o in objects if o.get("kind") == "ConfigMap"}
    # A progressive endpoint's VirtualService is Flagger's, made from its Canary's service hosts.
    virtual_hosts |= {
        o["metadata"]["name"]: o["spec"]["service"]["hosts"] for o in objects if o.get("kind") == "Canary"
    }
    for expectation in plan.expectations:
        if expectation.backend == "istio":
            assert expectation.host in virtual_hosts[expectation.endpoint], expectation
        else:
            assert patches["config-network"]["domain-template"] == "{{.Name}}.{{.Domain}}"
            assert expectation.host == f"{expectation.endpoint}.{next(iter(patches['config-domain']))}"


def _expected_routes(endpoint: dict) -> list[tuple]:
    """What each strategy of the e2e stack promises (CONTRACT §1), read from the stack file:
    (request headers, weights, mirrors, sticky cookie) per route, top to bottom. On Knative, a version is also
    reached by its Route tag (its name) in the `knative-serving-tag` header, unless every request reaches it."""
    strategy = endpoint["strategy"]
    kind = strategy["type"]
    knative = endpoint.get("backend") == "knative"
    if kind == "shadow":
        return [({}, {strategy["primary"]: 100}, strategy["shadows"], None)]
    if kind == "blue-green" and knative:
        preview, active = strategy["preview"], strategy["active"]
        return [({"knative-serving-tag": preview}, {preview: 100}, {}, None), ({}, {active: 100}, {}, None)]
    if kind == "blue-green":
        header = strategy.get("previewHeader", "x-turnout-preview")
        return [({header: "true"}, {strategy["preview"]: 100}, {}, None), ({}, {strategy["active"]: 100}, {}, None)]
    if kind == "canary" and "progressive" in strategy:  # Flagger promotes the first target it sees, at once
        return [({}, {strategy["canary"]: 100}, {}, None)]
    if kind == "canary":
        split = {strategy["stable"]: 100 - strategy["weight"], strategy["canary"]: strategy["weight"]}
        cookie = (strategy.get("sticky") or {}).get("cookie")
        if cookie is None and knative:
            return [*(({"knative-serving-tag": v}, {v: 100}, {}, None) for v in split), ({}, split, {}, None)]
        if cookie is None:
            return [({}, split, {}, None)]
        return [
            ({"Cookie": f"{cookie}={strategy['canary']}"}, {strategy["canary"]: 100}, {}, None),
            ({"Cookie": f"{cookie}={strategy['stable']}"}, {strategy["stable"]: 100}, {}, None),
            ({}, split, {}, cookie),
        ]
    if kind in ("rolling", "recreate"):  # one version takes every request
        return [({}, {strategy.get("version") or next(iter(endpoint["versions"])): 100}, {}, None)]
    if kind == "interleaved":  # the agent's share answers in control's shape: control's, as far as routes go
        return [({}, {strategy["control"]: 100}, {}, None)]
    if kind == "bandit":  # the initial split, even (the agent owns the weights afterwards)
        arms = strategy["arms"]
        return [({}, {arm: 100 // len(arms) + (i < 100 % len(arms)) for i, arm in enumerate(arms)}, {}, None)]
    raise AssertionError(f"the e2e stack uses strategy {kind}: add what it promises here")


def test_expectations_for_every_strategy_type_in_the_e2e_stack(plan):
    endpoints = stack_endpoints()
    assert {e.endpoint for e in plan.expectations} == set(endpoints)
    for name, endpoint in endpoints.items():
        derived = [(e.headers, e.weights, e.mirrors, e.sticky_cookie) for e in plan.expectations if e.endpoint == name]
        assert derived == _expected_routes(endpoint), name
        backend = endpoint.get("backend", "istio")
        assert all(e.backend == backend and e.strategy == endpoint["strategy"]["type"] for e in plan.endpoints[name])
    learned = sum(len(e.weights) for e in plan.expectations if e.learned)  # a bandit's split is not counted
    assert plan.comparisons == sum(len(e.weights) for e in plan.expectations if e.is_split) - learned + 1


def test_the_e2e_stack_gives_every_check_something_to_check(plan):
    """A mirrored share, a header route, a cookie route, a sticky split, a weighted split, a Knative endpoint."""
    routes = plan.expectations
    assert any(e.mirrors for e in routes)
    assert any(e.match and "header" in e.match for e in routes)
    assert any(e.match and "cookie" in e.match for e in routes)
    assert any(e.sticky_cookie for e in routes)
    assert any(e.is_split and e.backend == "istio" for e in routes)
    assert any(e.is_split and e.backend == "knative" for e in routes)
    assert any(
        e.match == {"header": "knative-serving-tag", "value": "v2"} and e.strategy == "blue-green" for e in routes
    )
    assert {(t.endpoint, t.version) for t in plan.tag_hosts} >= {("kn-preview", "v2"), ("hello", "v2")}


def test_tag_hosts_are_the_ones_knative_makes_for_the_rendered_routes(plans, plan):
    """Knative's default tag-template `{{.Tag}}-{{.Name}}` (config-network leaves it) under the domain-template."""
    objects = [r["inputs"] for r in json.loads((plans / "e2e" / "inventory.json").read_text())["resources"]]
    patches = {o["metadata"]["name"]: o.get("data") for o in objects if o.get("kind") == "ConfigMap"}
    assert "tag-template" not in patches["config-network"]
    (domain,) = patches["config-domain"]
    tags = {
        (o["metadata"]["name"], t["tag"]) for o in objects if o.get("kind") == "Route" for t in o["spec"]["traffic"]
    }
    assert {(t.endpoint, t.version) for t in plan.tag_hosts} == tags
    assert all(t.host == f"{t.version}-{t.endpoint}.{domain}" for t in plan.tag_hosts)


def test_a_split_behind_a_header_and_versions_at_zero():
    """An A/B test on a segment: the header route is itself a split; a 0% destination gets nothing."""
    traffic = {
        "endpoints": [
            {
                "name": "ranker",
                "cluster": "lab",
                "backend": "istio",
                "strategy": "ab-test",
                "routes": [
                    {
                        "match": {"header": "x-market", "value": "fr"},
                        "to": [{"version": "a", "weight": 60}, {"version": "b", "weight": 40}],
                        "mirror": [],
                    },
                    {"match": None, "to": [{"version": "a", "weight": 100}, {"version": "b", "weight": 0}]},
                ],
            }
        ]
    }
    segment, rest = e2e.expectations(traffic, "models.test")
    assert segment.headers == {"x-market": "fr"} and segment.is_split and segment.weights == {"a": 60, "b": 40}
    assert rest.headers == {} and not rest.is_split and rest.weights == {"a": 100} and rest.mirrors == {}
    assert rest.sticky_cookie is None and rest.host == "ranker.models.test"


def test_endpoints_says_how_to_reach_each_route(plan):
    text = e2e.describe_endpoints(plan)
    assert "127.0.0.1:8443 (HTTPS, self-signed: curl -k)" in text
    assert "shadow (istio, shadow): https://shadow.127.0.0.1.sslip.io:8443/" in text
    assert "every request -> v1 100%; copied to v2 50%" in text
    assert "kubectl --context kind-e2e -n shadow logs -l turnout.dev/version=v2 -c model --tail=-1" in text
    assert "cookie model=v2 -> v2 100%\n    curl -k -b 'model=v2' https://canary.127.0.0.1.sslip.io:8443/" in text
    assert "every other request -> v1 70%, v2 30%" in text
    assert "curl -k -H 'x-turnout-preview: true' https://preview.127.0.0.1.sslip.io:8443/" in text
    assert "hello (knative, canary): https://hello.127.0.0.1.sslip.io:8443/" in text
    assert "curl -k -H 'knative-serving-tag: v2' https://kn-preview.127.0.0.1.sslip.io:8443/" in text
    assert "v2 alone, at its tag's host -> curl -k https://v2-kn-preview.127.0.0.1.sslip.io:8443/" in text


# the binomial tolerance --------------------------------------------------------------------------------


def _exact_region(n: int, p: Fraction, alpha: Fraction) -> tuple[int, int]:
    pmf = [comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    lo = max(k for k in range(n + 1) if sum(pmf[:k]) <= alpha / 2)
    hi = min(k for k in range(n + 1) if sum(pmf[k + 1 :]) <= alpha / 2)
    return lo, hi


@pytest.mark.parametrize(("n", "p", "alpha"), [(20, "3/10", "1/20"), (50, "1/2", "1/100"), (40, "1/10", "1/1000")])
def test_the_region_is_the_exact_two_sided_binomial_one(n, p, alpha):
    expected = _exact_region(n, Fraction(p), Fraction(alpha))
    assert e2e.binomial_acceptance(n, float(Fraction(p)), float(Fraction(alpha))) == expected


def test_the_documented_region_of_the_e2e_stacks_canaries(plan):
    """The README and the script's docstring quote the region of a 30% canary over the default 1000
    requests at the default family-wise alpha, shared over the e2e stack's counts."""
    lo, hi = e2e.binomial_acceptance(1000, 0.3, 0.001 / plan.comparisons)
    assert 240 <= lo <= 255 and 345 <= hi <= 360, (lo, hi)  # 300 -+ 3.7 sd (sd 14.5)
    readme = " ".join((REPO / "README.md").read_text().split())
    assert f"The e2e stack's plan has {plan.comparisons} such counts" in readme
    assert f"30% canaries must answer between {lo} and {hi} times" in readme
    assert f"has {plan.comparisons} such counts: over 1000 requests, a 30% canary passes from {lo} to" in " ".join(
        e2e.__doc__.split()
    )
    assert e2e.parser().parse_args(["check", "e2e"]).requests == 1000
    assert e2e.parser().parse_args(["check", "e2e"]).alpha == 0.001


def test_chance_alone_fails_at_most_alpha_of_the_time():
    rng = random.Random(11)
    n, p, alpha = 200, 0.3, 0.05
    lo, hi = e2e.binomial_acceptance(n, p, alpha)
    outside = sum(not lo <= sum(rng.random() < p for _ in range(n)) <= hi for _ in range(2000))
    assert outside / 2000 <= alpha + 0.015


def test_degenerate_and_invalid_regions():
    assert e2e.binomial_acceptance(100, 0.0, 0.01) == (0, 0)
    assert e2e.binomial_acceptance(100, 1.0, 0.01) == (100, 100)
    for args in ((10, 1.5, 0.01), (10, 0.5, 0), (10, 0.5, 1), (-1, 0.5, 0.01)):
        with pytest.raises(ValueError):
            e2e.binomial_acceptance(*args)


def test_the_family_wise_alpha_is_shared_over_every_count(plan):
    run = e2e.Run(plan=plan, client=None, logs=None, alpha=0.001)
    assert run.alpha_each == pytest.approx(0.001 / plan.comparisons)


# the checks against a stand-in gateway -------------------------------------------------------------------


class StandIn:
    """A gateway on localhost that routes like the plan says (its own reading of traffic.json, not the
    script's), answering as apps/model-echo would and logging mirrored copies as a shadow's pods do;
    `faults` make it misbehave the way a broken gateway would."""

    def __init__(self, traffic: dict, domain: str, logs: Path, flagger: dict | None = None, **faults) -> None:
        self.endpoints = {e["name"]: e for e in traffic["endpoints"]}
        # A progressive endpoint on a fresh cluster: Flagger promoted its Canary's target (endpoint -> version).
        for name, target in (flagger or {}).items():
            self.endpoints[name] = {
                **self.endpoints[name],
                "routes": [{"match": None, "to": [{"version": target, "weight": 100}], "mirror": []}],
            }
        # A bandit endpoint's split is its agent's (tests/e2e_agent_stand_in.py), reached by port-forward.
        self.agents = {
            e["name"]: StandInAgent(e["name"], e["agent"]["arms"], frozen=faults.get("frozen", False))
            for e in traffic["endpoints"]
            if (e.get("agent") or {}).get("owns") == "weights"
        }
        for agent in self.agents.values():
            (logs / "agent-port").write_text(str(agent.port))
        self.tag_hosts = {h: (e["name"], v) for e in traffic["endpoints"] for v, h in (e.get("tagHosts") or {}).items()}
        self.domain, self.logs, self.faults = domain, logs, faults
        self.rng, self.lock = random.Random(5), threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                status, version, cookie = stand_in.answer(self.headers, self.path)
                self.send_response(status)
                if version:
                    self.send_header("X-Model-Version", version)
                if version and stand_in.headers_for(self.headers["Host"]):
                    self.send_header("x-turnout-version", version)
                    self.send_header("x-turnout-request-id", f"{version}.{secrets.token_hex(8)}")
                if cookie:
                    self.send_header("Set-Cookie", cookie)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        for endpoint in traffic["endpoints"]:  # every version's pod runs, logging its probes
            for route in endpoint["routes"]:
                for version in [d["version"] for d in route["to"]] + [m["version"] for m in route["mirror"]]:
                    self.log(endpoint["name"], version, "/healthz")
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def log(self, endpoint: str, version: str, path: str) -> None:
        with (self.logs / f"{endpoint}--{version}.log").open("a") as log:
            log.write(f'model-echo {version}: "GET {path} HTTP/1.1" 200 -\n')

    def answer(self, headers, path) -> tuple[int, str | None, str | None]:
        if headers["Host"] in self.tag_hosts:
            endpoint, version = self.tag_hosts[headers["Host"]]
            version = self.faults.get("tag_hosts", {}).get(headers["Host"], version)
            self.log(endpoint, version, path)
            return 200, version, None
        name = headers["Host"].removesuffix("." + self.domain)
        if name not in self.endpoints or name in self.faults.get("down", ()):
            return 503, None, None
        cookies = {k: m.value for k, m in SimpleCookie(headers.get("Cookie", "")).items()}
        routes = self.endpoints[name]["routes"]
        for route in routes:
            match = route["match"]
            if match is None or (
                "header" in match
                and headers.get(match["header"]) == match["value"]
                and match["header"] not in self.faults.get("no_headers", ())
            ):
                break
            if match and "cookie" in match and cookies.get(match["cookie"]) == match["value"]:
                break
        weights = {d["version"]: d["weight"] for d in route["to"]}
        if route["match"] is None:
            weights = self.faults.get("weights", {}).get(name, weights)
        with self.lock:
            version = self.rng.choices(list(weights), list(weights.values()))[0]
            if name in self.agents:
                version = self.agents[name].route(self.rng)
            mirrored = [m["version"] for m in route["mirror"] if self.rng.random() < m["percent"] / 100]
            if name in self.faults.get("shadow_answers", ()) and mirrored:
                version = mirrored[0]
        self.log(name, version, path)
        if not self.faults.get("no_mirror"):
            for copy in mirrored:
                self.log(name, copy, path)
        sticky = self.endpoints[name]["strategy"] == "canary" and any(r["match"] for r in routes)
        cookie = (
            f"model={version}; Path=/"
            if sticky and route["match"] is None and not self.faults.get("no_cookie")
            else None
        )
        return 200, version, cookie

    def headers_for(self, host: str) -> bool:
        """Whether answers of this host carry x-turnout-* headers (a bandit's route sets them)."""
        return host.removesuffix("." + self.domain) in self.agents and not self.faults.get("no_turnout_headers")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        for agent in self.agents.values():
            agent.close()


FAKE_KUBECTL = """#!{python}
import json, pathlib, sys
logs = pathlib.Path({logs!r})
args = sys.argv[1:]
with open({calls!r}, "a") as calls:
    calls.write(json.dumps(args) + "\\n")
if args[:1] == ["--context"]:
    args = args[2:]
{port_forward}
if args[0] == "get":
    labels = dict(pair.split("=") for pair in args[args.index("-l") + 1].split(","))
    endpoint, version = labels["turnout.dev/endpoint"], labels["turnout.dev/version"]
    found = (logs / f"{{endpoint}}--{{version}}.log").exists()
    items = [{{"metadata": {{"namespace": endpoint, "name": f"{{endpoint}}--{{version}}"}}}}] if found else []
    print(json.dumps({{"items": items}}))
elif args[0] == "logs":
    print((logs / (args[args.index("-n") + 2] + ".log")).read_text(), end="")
else:
    sys.exit(f"unexpected kubectl {{args}}")
"""


@pytest.fixture
def gateway(plans, tmp_path):
    """Start a stand-in (with faults) and return it with a fake kubectl reading its logs."""
    traffic = json.loads((plans / "e2e" / "traffic.json").read_text())
    objects = [r["inputs"] for r in json.loads((plans / "e2e" / "inventory.json").read_text())["resources"]]
    flagger = {
        o["metadata"]["namespace"]: o["metadata"]["annotations"]["turnout.dev/canary-version"]
        for o in objects
        if o.get("kind") == "Canary"
    }
    logs, started = tmp_path / "logs", []
    logs.mkdir()
    kubectl = tmp_path / "kubectl"
    fake = FAKE_KUBECTL.format(
        python=sys.executable, logs=str(logs), calls=str(tmp_path / "calls"), port_forward=PORT_FORWARD
    )
    kubectl.write_text(fake)
    kubectl.chmod(0o755)

    def start(**faults):
        stand_in = StandIn(traffic, "127.0.0.1.sslip.io", logs, flagger, **faults)
        started.append(stand_in)
        return stand_in, kubectl

    yield start
    for stand_in in started:
        stand_in.close()


def quick_run(plan, stand_in, kubectl, **options):
    gateway = e2e.Gateway("127.0.0.1", stand_in.server.server_port, 0, plan.gateway.domain)
    settings = {"requests": 400, "wait": 1.0, "poll": 0.01, "settle": 1.0, **options}
    return e2e.Run(
        plan=plan,
        client=e2e.GatewayClient(gateway, scheme="http"),
        logs=e2e.ClusterLogs(str(kubectl), "kind-e2e"),
        **settings,
    )


def by_status(outcomes) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for outcome in outcomes:
        found.setdefault(outcome.status, []).append(f"{outcome.scenario}: {outcome.subject}: {outcome.detail}")
    return found


# What the stand-in gateway implements; the interleaving and compare scenarios need the experiment agent's
# interleaving and comparison, which the stand-in does not imitate.
STAND_IN_SCENARIOS = ("answers", "routes", "tags", "mirrors", "sticky", "bandit")


def test_a_gateway_that_routes_as_planned_passes_every_check(plans, gateway, tmp_path, capsys):
    stand_in, kubectl = gateway()
    report = tmp_path / "report.json"
    argv = ["check", "e2e", "--plans", str(plans), "--scheme", "http", "--address", "127.0.0.1"]
    argv += ["--port", str(stand_in.server.server_port), "--kubectl", str(kubectl), "--requests", "400"]
    argv += ["--learn-wait", "60"]
    for name in STAND_IN_SCENARIOS:
        argv += ["--only", name]
    status = e2e.main([*argv, "--report", str(report)])
    out = capsys.readouterr().out
    assert status == 0, out
    outcomes = json.loads(report.read_text())
    assert {o["status"] for o in outcomes} == {"pass"}, out
    assert [o["scenario"] for o in outcomes] == sorted(
        (o["scenario"] for o in outcomes), key=list(e2e.SCENARIOS).index
    ), "scenarios run in their registered order"
    assert {o["scenario"] for o in outcomes} == set(STAND_IN_SCENARIOS)
    subjects = {o["subject"] for o in outcomes}
    # Every endpoint answered, Knative's included.
    assert {"shadow", "canary", "preview", "kn-preview", "hello", "bandit"} <= subjects
    assert "bandit: toward v2" in subjects
    assert {"canary route 0 (cookie model=v2)", "preview route 0 (header x-turnout-preview: true)"} <= subjects
    assert {
        "kn-preview route 0 (header knative-serving-tag: v2)",
        "hello route 1 (header knative-serving-tag: v2)",
    } <= (subjects)
    assert "kn-preview tag v2 (v2-kn-preview.127.0.0.1.sslip.io)" in subjects
    assert {"shadow route 0 (every request) -> v2", "canary route 2 (every other request): cookie model"} <= subjects
    assert "0 failed, 0 skipped (exit 0)" in out
    calls = [json.loads(line) for line in (tmp_path / "calls").read_text().splitlines()]
    assert calls and all(call[:2] == ["--context", "kind-e2e"] for call in calls), "the kind cluster's context"


@pytest.mark.parametrize(
    ("faults", "scenario", "subject", "says"),
    [
        ({"weights": {"canary": {"v1": 50, "v2": 50}}}, "routes", "canary route 2 (every other request)", "v2 "),
        ({"weights": {"hello": {"v1": 100, "v2": 0}}}, "routes", "hello route 2 (every other request)", "v2 0/400"),
        (
            {"tag_hosts": {"v2-kn-preview.127.0.0.1.sslip.io": "v1"}},
            "tags",
            "kn-preview tag v2 (v2-kn-preview.127.0.0.1.sslip.io)",
            "expected only v2; got {'v1': 20}",
        ),
        (
            {"no_headers": {"x-turnout-preview"}},
            "routes",
            "preview route 0 (header x-turnout-preview: true)",
            "expected only v2 100%",
        ),
        ({"shadow_answers": {"shadow"}}, "routes", "shadow route 0 (every request)", "expected only v1 100%"),
        # (the mirror check's own requests find the shadow answering too: both fail)
        ({"no_mirror": True}, "mirrors", "shadow route 0 (every request) -> v2", "v2 received 0/400"),
        ({"no_cookie": True}, "sticky", "canary route 2 (every other request): cookie model", "40/40 wrong"),
    ],
)
def test_a_gateway_that_misroutes_fails_the_check_that_covers_it(plan, gateway, faults, scenario, subject, says):
    stand_in, kubectl = gateway(**faults)
    outcomes = e2e.run_checks(quick_run(plan, stand_in, kubectl), STAND_IN_SCENARIOS)
    failed = [o for o in outcomes if o.status == "fail"]
    expected = [(scenario, subject)]
    if "shadow_answers" in faults:
        expected.append(("mirrors", subject))
    assert [(o.scenario, o.subject) for o in failed] == expected, by_status(outcomes)
    assert says in failed[0].detail, failed[0].detail
    assert e2e.exit_status(outcomes) == e2e.EXIT_FAILED


def test_a_gateway_without_knatives_tag_routing_fails_each_tag_route(plan, gateway):
    """config-features tag-header-based-routing off: the preview's header route and the canary's tag routes fail."""
    stand_in, kubectl = gateway(no_headers={"knative-serving-tag"})
    outcomes = e2e.run_checks(quick_run(plan, stand_in, kubectl), ["routes"])
    assert {o.subject for o in outcomes if o.status == "fail"} == {
        "kn-preview route 0 (header knative-serving-tag: v2)",
        "hello route 0 (header knative-serving-tag: v1)",
        "hello route 1 (header knative-serving-tag: v2)",
    }


def test_an_endpoint_that_never_answers_stops_the_run(plan, gateway, capsys):
    stand_in, kubectl = gateway(down={"hello"})
    outcomes = e2e.run_checks(quick_run(plan, stand_in, kubectl, wait=0.2), STAND_IN_SCENARIOS)
    assert [(o.scenario, o.subject, o.status) for o in outcomes if o.status != "pass"] == [("answers", "hello", "fail")]
    assert "HTTP 503" in next(o.detail for o in outcomes if o.status == "fail")
    assert {o.scenario for o in outcomes} == {"answers"}, "nothing else runs against a stack that is not up"
    assert "stopped here" in capsys.readouterr().out


def test_without_kubectl_the_mirror_check_is_skipped_saying_why(plan, gateway, tmp_path):
    stand_in, _ = gateway()
    run = quick_run(plan, stand_in, tmp_path / "no-kubectl")
    outcomes = e2e.run_checks(run, ["mirrors", "sticky"])
    skipped = [o for o in outcomes if o.status == "skip"]
    assert skipped and "not found: a shadow's requests are counted in its pods' logs" in skipped[0].detail
    assert e2e.exit_status(outcomes) == e2e.EXIT_SKIPPED


def test_mirrored_copies_that_arrive_late_are_waited_for(plan, gateway):
    """The count is read until two reads agree: a copy logged after the first read still counts."""
    stand_in, kubectl = gateway()
    # settle: time enough for three reads of a fake kubectl on a loaded machine
    run = quick_run(plan, stand_in, kubectl, poll=0.2, settle=30.0)
    reads = []
    real = e2e.ClusterLogs(str(kubectl), "kind-e2e")

    class Late:
        kubectl = real.kubectl

        def available(self):
            return True

        def logs(self, endpoint, version):
            reads.append(version)
            return real.logs(endpoint, version) if len(reads) > 1 else ""

    run.logs = Late()
    outcomes = e2e.check_mirrors(run)
    assert [o.status for o in outcomes] == ["pass"] and len(reads) >= 3


def test_unreadable_logs_fail_the_mirror_check(plan, gateway, tmp_path):
    stand_in, _ = gateway()
    broken = tmp_path / "broken-kubectl"
    broken.write_text("#!/bin/sh\necho 'error: context kind-e2e does not exist' >&2\nexit 1\n")
    broken.chmod(0o755)
    outcomes = e2e.check_mirrors(quick_run(plan, stand_in, broken))
    assert [o.status for o in outcomes] == ["fail"]
    assert "context kind-e2e does not exist" in outcomes[0].detail


def test_count_tagged_counts_only_this_runs_requests():
    logs = "\n".join(
        [
            'model-echo v2: "GET /?e2e=ab12-shadow-0-mirrors HTTP/1.1" 200 -',
            'model-echo v2: "GET /?e2e=ab12-shadow-0-mirrors HTTP/1.1" 200 -',
            'model-echo v2: "GET /?e2e=ab12-shadow-0-mirrors-x HTTP/1.1" 200 -',
            'model-echo v2: "GET /healthz HTTP/1.1" 200 -',
            'model-echo v2: "GET /?e2e=ff00-shadow-0-mirrors HTTP/1.1" 200 -',
        ]
    )
    assert e2e.count_tagged(logs, "ab12-shadow-0-mirrors") == 2


# HTTPS as the kind gateway serves it ------------------------------------------------------------------


def test_requests_carry_the_endpoint_name_in_sni_and_host(tmp_path):
    """The gateway picks its HTTPS server by SNI and its route by Host; the address is kind's localhost."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs openssl to make a self-signed certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=*.models.test"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    seen: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen["host"] = self.headers["Host"]
            seen["header"] = self.headers.get("x-turnout-preview")
            self.send_response(200)
            self.send_header("X-Model-Version", "v2")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: seen.__setitem__("sni", name)
    server = HTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = e2e.GatewayClient(e2e.Gateway("127.0.0.1", server.server_port, 0, "models.test"))
        answer = client.get("preview.models.test", "/", {"x-turnout-preview": "true"})
        client.close()
    finally:
        server.shutdown()
        server.server_close()
    assert answer == e2e.Answer(200, "v2", {})
    assert seen == {"sni": "preview.models.test", "host": "preview.models.test", "header": "true"}
