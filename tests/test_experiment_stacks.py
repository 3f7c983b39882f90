"""Interleaved endpoints and compared shadows, planned: the routes re-derived from the rendered objects by a
reader of their own, the agent's settings as the agent parses them, the Services and policies it runs with, the
cache it shares impressions through, the checks every plan gets, and bad configs refused with exit 2 naming the
key."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from components.endpoint.agent_experiments import agent_host
from components.endpoint.experiment_agent import agent_name
from tests.conftest import CRDS, REPO, load, plan_stacks, write_stack
from tests.crd_schema import load_crds, validate_custom_resource
from tests.test_strategies_render import documents, subset_version
from turnout.cli import main
from turnout.errors import ConfigError

sys.path.insert(0, str(REPO / "apps" / "experiment-agent"))
from turnout_agent.settings import parse as parse_agent_settings  # noqa: E402

AGENT_IMAGE = "kind.local/turnout-experiment-agent:0.1.0"
VERSIONS = {v: {"image": f"ghcr.io/acme/m:1.{i}.0"} for i, v in enumerate(["v1", "v2", "v3"])}


def config(strategy: dict, *, tier: str = "prod", backend: str = "istio", cache: bool = False) -> dict:
    found = {
        "tier": tier,
        "platform": {"cloud": "kind", "regions": ["lab"], "loadImages": [AGENT_IMAGE]},
        "endpoints": {"shop": {"backend": backend, "versions": VERSIONS, "strategy": strategy}},
    }
    if cache:
        found["cache"] = {"engine": "redis"}
    return found


INTERLEAVED = {"type": "interleaved", "control": "v1", "treatment": "v2"}
COMPARED = {"type": "shadow", "primary": "v1", "shadows": {"v2": 50, "v3": 5}}
STACKS = {
    "il-prod": config(
        {**INTERLEAVED, "percent": 30, "items": "data.results", "itemId": "doc.id", "callers": ["web"]}, cache=True
    ),
    "il-dev": config({**INTERLEAVED, "method": "balanced"}, tier="dev"),
    "cmp-prod": config(
        {
            **COMPARED,
            "compare": {"fields": ["label", "scores[0]"], "tolerance": 0.01, "sample": 5, "redact": ["user.email"]},
        }
    ),
    "cmp-dev": config({**COMPARED, "compare": {}}, tier="dev"),
}


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    return plan_stacks(tmp_path_factory, STACKS)


def objects(plans, stack: str, kind: str) -> list[dict]:
    return [d for d in documents(plans / stack) if d["kind"] == kind]


def only(plans, stack: str, kind: str, name: str | None = None) -> dict:
    (found,) = [d for d in objects(plans, stack, kind) if name is None or d["metadata"]["name"] == name]
    return found


def settings_document(plans, stack: str) -> dict:
    return json.loads(only(plans, stack, "ConfigMap", "shop-agent-settings")["data"]["settings.json"])


def routes_read_back(plans, stack: str) -> list[dict]:
    """traffic.json's routes from the VirtualService alone, with the agent's settings to say what its ports do."""
    docs = documents(plans / stack)
    (vs,) = [d for d in docs if d["kind"] == "VirtualService"]
    rules = {d["spec"]["host"]: d for d in docs if d["kind"] == "DestinationRule"}
    settings = settings_document(plans, stack)
    agent = f"shop-agent.{settings['namespace']}.svc.cluster.local"
    mirrors_by_port = {e["port"]: v for v, e in (settings.get("compare") or {}).get("shadows", {}).items()}
    routes = []
    for http in vs["spec"]["http"]:
        to = []
        for r in http["route"]:
            if r["destination"]["host"] == agent:
                assert r["destination"]["port"]["number"] == settings["interleaving"]["proxyPort"]
                to.append(
                    {
                        "version": settings["interleaving"]["control"],
                        "weight": r["weight"],
                        "interleavedWith": settings["interleaving"]["treatment"],
                    }
                )
            else:
                to.append({"version": subset_version(rules, r["destination"]), "weight": r.get("weight", 100)})
        mirror = []
        for m in http.get("mirrors", []):
            if m["destination"]["host"] == agent:
                version = mirrors_by_port[m["destination"]["port"]["number"]]
                mirror.append({"version": version, "percent": int(m["percentage"]["value"]), "compared": True})
            else:
                mirror.append(
                    {"version": subset_version(rules, m["destination"]), "percent": int(m["percentage"]["value"])}
                )
        routes.append({"match": None, "to": to, "mirror": mirror})
    return routes


@pytest.mark.parametrize("stack", STACKS)
def test_traffic_json_agrees_with_the_rendered_routes(plans, stack):
    (endpoint,) = json.loads((plans / stack / "traffic.json").read_text())["endpoints"]
    assert routes_read_back(plans, stack) == endpoint["routes"]
    assert validate_custom_resource(only(plans, stack, "VirtualService"), load_crds(CRDS)) == []
    for policy in objects(plans, stack, "AuthorizationPolicy"):
        assert validate_custom_resource(policy, load_crds(CRDS)) == [], policy["metadata"]["name"]


def test_the_interleaved_share_goes_to_the_agent_and_the_rest_to_control(plans):
    (route,) = only(plans, "il-prod", "VirtualService")["spec"]["http"]
    control, agent = route["route"]
    assert control["weight"] == 70 and control["destination"]["subset"] == "v1"
    assert control["headers"] == {"response": {"set": {"x-turnout-version": "v1"}}}
    assert agent == {
        "destination": {"host": "shop-agent.shop.svc.cluster.local", "port": {"number": 8081}},
        "weight": 30,
    }
    (whole,) = only(plans, "il-dev", "VirtualService")["spec"]["http"][0]["route"]
    assert whole["weight"] == 100 and whole["destination"]["port"]["number"] == 8081, "percent 100 by default"
    note = json.loads((plans / "il-prod" / "traffic.json").read_text())["endpoints"][0]["agent"]
    assert note["clicks"] == "/v1/endpoints/shop/clicks" and note["impressions"] == "cache"
    assert agent_host("shop", "shop") == f"{agent_name('shop')}.shop.svc.cluster.local"


@pytest.mark.parametrize("stack", STACKS)
def test_every_replica_runs_with_settings_the_agent_accepts(plans, stack):
    document = settings_document(plans, stack)
    statefulset = only(plans, stack, "StatefulSet", "shop-agent")
    replicas = statefulset["spec"]["replicas"]
    assert replicas == (2 if stack.endswith("prod") else 1)
    for index in range(replicas):
        settings = parse_agent_settings(document, replica=f"shop-agent-{index}")
        assert settings.strategy == document["strategy"] and settings.peers[index].name == f"shop-agent-{index}"
    for version, url in document["backends"].items():
        service = only(plans, stack, "Service", f"shop-version-{version}")
        assert url == f"http://shop-version-{version}.shop.svc.cluster.local:80"
        assert service["spec"]["selector"] == {"app.kubernetes.io/name": "shop", "turnout.dev/version": version}
        assert service["spec"]["type"] == "ClusterIP"
    pod = statefulset["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False, "no Kubernetes API calls: no token"
    ports = {p["name"]: p["containerPort"] for p in pod["containers"][0]["ports"]}
    service_ports = {p["name"]: p["port"] for p in only(plans, stack, "Service", "shop-agent")["spec"]["ports"]}
    assert ports == service_ports
    if document["strategy"] == "interleaved":
        assert ports == {"http": 8080, "proxy": 8081}
    else:
        assert ports == {"http": 8080, "mirror-0": 8100, "mirror-1": 8101}
        assert document["compare"]["shadows"] == {
            "v2": {"port": 8100, "percent": 50},
            "v3": {"port": 8101, "percent": 5},
        }


@pytest.mark.parametrize("stack", STACKS)
def test_no_role_no_lease_and_only_the_agent_may_call_the_versions_directly(plans, stack):
    assert objects(plans, stack, "Role") == [] and objects(plans, stack, "Lease") == []
    policy = only(plans, stack, "AuthorizationPolicy", "allow-shop-agent-calls")["spec"]
    assert policy["rules"] == [{"from": [{"source": {"principals": ["cluster.local/ns/shop/sa/shop-agent"]}}]}]
    callers, peers = only(plans, stack, "AuthorizationPolicy", "allow-shop-agent")["spec"]["rules"]
    assert peers["from"] == [{"source": {"principals": ["cluster.local/ns/shop/sa/shop-agent"]}}]
    paths = {op["operation"]["paths"][0]: op["operation"]["methods"] for op in callers["to"]}
    if stack.startswith("il"):
        assert paths == {"/v1/endpoints/shop/report": ["GET"], "/v1/endpoints/shop/clicks": ["POST"]}
    else:
        assert paths == {"/v1/endpoints/shop/report": ["GET"]}


def test_clicks_come_from_the_named_callers_and_impressions_live_in_the_cache(plans):
    callers = only(plans, "il-prod", "AuthorizationPolicy", "allow-shop-agent")["spec"]["rules"][0]["from"]
    assert callers == [{"source": {"namespaces": ["web"]}}]
    document = settings_document(plans, "il-prod")
    assert document["interleaving"]["store"] == "cache" and document["interleaving"]["items"] == "data.results"
    pod = only(plans, "il-prod", "StatefulSet", "shop-agent")["spec"]["template"]["spec"]
    env = {e["name"] for e in pod["containers"][0]["env"]}
    assert {"REDIS_ADDR", "REDIS_PASSWORD_FILE"} <= env
    assert {"name": "turnout-cache", "secret": {"secretName": "turnout-cache", "defaultMode": 0o440}} in pod["volumes"]
    assert settings_document(plans, "il-dev")["interleaving"]["store"] == "ledger", "no cache: each replica's ledger"


def test_a_compared_shadow_never_serves_users(plans):
    for stack in ("cmp-prod", "cmp-dev"):
        (route,) = only(plans, stack, "VirtualService")["spec"]["http"]
        assert [d["destination"].get("subset") for d in route["route"]] == ["v1"]
        assert {m["destination"]["host"] for m in route["mirrors"]} == {"shop-agent.shop.svc.cluster.local"}
        deployments = {d["metadata"]["name"]: d for d in objects(plans, stack, "Deployment")}
        roles = {n: d["spec"]["template"]["metadata"]["labels"]["turnout.dev/role"] for n, d in deployments.items()}
        assert roles == {"shop-v1": "serving", "shop-v2": "shadow", "shop-v3": "shadow"}
        violations = json.loads((plans / stack / "policy.json").read_text())["violations"]
        assert not [v for v in violations if v["policy"] == "shadow-not-user-facing"]
    note = json.loads((plans / "cmp-prod" / "traffic.json").read_text())["endpoints"][0]["agent"]
    assert note["primaryExtraLoadPercent"] == 110 and "twice to v1" in note["note"]
    compare = settings_document(plans, "cmp-prod")["compare"]
    assert (compare["fields"], compare["tolerance"], compare["sample"], compare["redact"]) == (
        ["label", "scores[0]"],
        0.01,
        5,
        ["user.email"],
    )


def test_prod_plans_have_no_violation_and_core_objects_validate(plans):
    import kubernetes_validate

    for stack in STACKS:
        assert json.loads((plans / stack / "policy.json").read_text())["violations"] == [], stack
        for document in documents(plans / stack):
            if "istio.io" not in document["apiVersion"]:
                kubernetes_validate.validate(document, "1.33.0", strict=True)


# bad configs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "backend", "key", "says"),
    [
        ({**INTERLEAVED}, "knative", "strategy.type", "a Knative Route sends traffic to its revisions only"),
        ({**INTERLEAVED, "items": "results..list"}, "istio", "strategy.items", "a path into a JSON answer"),
        ({**INTERLEAVED, "items": ""}, "istio", "strategy.items", "a path into a JSON answer"),
        ({**INTERLEAVED, "itemId": "$.id"}, "istio", "strategy.itemId", "a path into a JSON answer"),
        ({**INTERLEAVED, "items": 3}, "istio", "strategy.items", "a path into a JSON answer"),
        ({**INTERLEAVED, "treatment": "v1"}, "istio", "strategy.treatment", "a version other than `control`"),
        ({**INTERLEAVED, "treatment": "v9"}, "istio", "strategy.treatment", "a version defined under versions"),
        ({**INTERLEAVED, "percent": 0}, "istio", "strategy.percent", "an integer from 1 to 100"),
        ({**INTERLEAVED, "method": "probabilistic"}, "istio", "strategy.method", "team-draft, balanced"),
        ({**INTERLEAVED, "clickWindow": "10s"}, "istio", "strategy.clickWindow", '"1m" to "1d"'),
        ({**INTERLEAVED, "budgetMs": 0}, "istio", "strategy.budgetMs", "1"),
        ({**INTERLEAVED, "callers": ["Web!"]}, "istio", "strategy.callers[0]", "namespace"),
        (
            {"type": "canary", "stable": "v1", "canary": "v2", "weight": 10, "compare": {}},
            "istio",
            "strategy.compare",
            "compare under type shadow",
        ),
        ({**COMPARED, "compare": {"fields": ["ok", "a b"]}}, "istio", "strategy.compare.fields[1]", "a path"),
        ({**COMPARED, "compare": {"tolerance": -1}}, "istio", "strategy.compare.tolerance", "a number of 0 or more"),
        ({**COMPARED, "compare": {"sample": 101}}, "istio", "strategy.compare.sample", "an integer from 0 to 100"),
        ({**COMPARED, "compare": {"redact": [""]}}, "istio", "strategy.compare.redact[0]", "a path"),
        (
            {**COMPARED, "shadows": {"v2": 10}, "compare": {}, "progressive": {}},
            "istio",
            "strategy.compare",
            "Flagger writes the VirtualService",
        ),
        ({"type": "shadow", "primary": "v1", "shadows": {}, "compare": {}}, "istio", "strategy.shadows", "at least 1"),
    ],
)
def test_bad_configs_name_the_key(strategy, backend, key, says):
    with pytest.raises(ConfigError) as caught:
        load(config(strategy, backend=backend))
    assert caught.value.path == f"turnout:endpoints.shop.{key}", caught.value
    assert says in caught.value.allowed, caught.value


def test_through_the_command_line_exit_2_without_a_traceback(tmp_path, capsys):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "Pulumi.yaml", project)
    for folder in ("stacks", "policies", "environments"):
        shutil.copytree(REPO / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    write_stack(project, "no-path", config({**INTERLEAVED, "items": "results["}))
    assert main(["plan", "no-path", "--project", str(project), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "turnout:endpoints.shop.strategy.items" in err and "Traceback" not in err
