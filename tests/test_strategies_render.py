"""Every strategy rendered on Istio: the objects, and traffic.json re-derived from them by a reader
that shares no code with the renderer."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.conftest import CRDS, write_stack
from tests.crd_schema import load_crds, validate_custom_resource
from turnout.cli import main

STRATEGIES = {
    "recreate": {"type": "recreate", "version": "v2"},
    "rolling": {"type": "rolling", "version": "v1", "maxSurge": 1},
    "blue-green": {"type": "blue-green", "active": "v1", "preview": "v2"},
    "canary": {"type": "canary", "stable": "v1", "canary": "v2", "weight": 10},
    "sticky-canary": {"type": "canary", "stable": "v1", "canary": "v2", "weight": 25, "sticky": {"cookie": "model"}},
    "ab-test": {"type": "ab-test", "variants": {"v1": 50, "v2": 30, "v3": 20}},
    "ab-segment": {
        "type": "ab-test",
        "variants": {"v2": 60, "v3": 40},
        "segment": {"header": "x-cohort", "value": "beta"},
        "default": "v1",
    },
    "shadow": {"type": "shadow", "primary": "v1", "shadows": {"v2": 50, "v3": 5}},
    "dark-launch": {"type": "dark-launch", "live": "v1", "dark": "v3"},
    "feature-flag": {
        "type": "feature-flag",
        "flag": "new-ranker",
        "variants": {"on": "v2", "off": "v1"},
        "defaultVariant": "off",
    },
}


KNATIVE = {
    "kn-recreate": {"type": "recreate", "version": "v2"},
    "kn-rolling": {"type": "rolling", "version": "v1"},
    "kn-canary": {"type": "canary", "stable": "v1", "canary": "v2", "weight": 10},
    "kn-ab-test": {"type": "ab-test", "variants": {"v1": 50, "v2": 30, "v3": 20}},
    "kn-blue-green": {"type": "blue-green", "active": "v1", "preview": "v2"},
    "kn-dark-launch": {"type": "dark-launch", "live": "v1", "dark": "v3"},
}


PROGRESSIVE = {
    "progressive": {
        "type": "canary",
        "stable": "v1",
        "canary": "v2",
        "weight": 5,
        "progressive": {"interval": "90s", "stepWeight": 10, "maxWeight": 40, "successRate": 98, "maxLatencyMs": 300},
    },
    "progressive-blue-green": {
        "type": "blue-green",
        "active": "v1",
        "preview": "v2",
        "previewHeader": "x-try-v2",
        "progressive": {"interval": "2m", "iterations": 6, "successRate": 97},
    },
    "progressive-shadow": {
        "type": "shadow",
        "primary": "v1",
        "shadows": {"v3": 40},
        "progressive": {"iterations": 4, "maxLatencyMs": 250},
    },
}


def stack_config(strategy: dict, tier: str = "prod", backend: str = "istio") -> dict:
    return {
        "tier": tier,
        "platform": {"cloud": "kind", "regions": ["lab"]},
        "endpoints": {
            "scores": {
                "backend": backend,
                "versions": {v: {"image": f"ghcr.io/acme/scores:1.{i}.0"} for i, v in enumerate(["v1", "v2", "v3"])},
                "strategy": strategy,
            }
        },
    }


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    """Plan one stack per strategy once; return each stack's output folder."""
    from tests.conftest import REPO

    project = tmp_path_factory.mktemp("project")
    import shutil

    shutil.copy(REPO / "Pulumi.yaml", project)
    for folder in ("stacks", "policies", "environments"):
        shutil.copytree(REPO / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("out")
    for name, strategy in STRATEGIES.items():
        write_stack(project, name, stack_config(strategy))
    for name, strategy in KNATIVE.items():
        write_stack(project, name, stack_config(strategy, backend="knative"))
    for name, strategy in PROGRESSIVE.items():
        write_stack(project, name, stack_config(strategy))
    assert main(["plan", *STRATEGIES, *KNATIVE, *PROGRESSIVE, "--project", str(project), "--out", str(out)]) == 0
    return out


def documents(folder) -> list[dict]:
    (cluster,) = (folder / "manifests").iterdir()  # one cluster per stack here
    return [yaml.safe_load(p.read_text()) for p in sorted(cluster.glob("*.yaml"))]


# --- the independent reader ------------------------------------------------------------------------

COOKIE = re.compile(r"^\(\.\*;\\s\*\)\?(?P<name>.+?)=(?P<value>.+?)\(;\.\*\)\?$")


def read_match(match: list | None) -> dict | None:
    if not match:
        return None
    ((header, condition),) = match[0]["headers"].items()
    if header == "cookie":
        found = COOKIE.match(condition["regex"])
        return {"cookie": re.sub(r"\\(.)", r"\1", found["name"]), "value": re.sub(r"\\(.)", r"\1", found["value"])}
    return {"header": header, "value": condition["exact"]}


def subset_version(rules: dict[str, dict], destination: dict) -> str:
    """Resolve host+subset through the DestinationRule to the version label its pods carry."""
    rule = rules[destination["host"]]
    (subset,) = [s for s in rule["spec"]["subsets"] if s["name"] == destination["subset"]]
    return subset["labels"]["turnout.dev/version"]


def routes_from_istio(objects: list[dict]) -> list[dict]:
    (vs,) = [o for o in objects if o["kind"] == "VirtualService"]
    rules = {o["spec"]["host"]: o for o in objects if o["kind"] == "DestinationRule"}
    routes = []
    for http in vs["spec"]["http"]:
        routes.append(
            {
                "match": read_match(http.get("match")),
                "to": [
                    {"version": subset_version(rules, r["destination"]), "weight": r.get("weight", 100)}
                    for r in http["route"]
                ],
                "mirror": [
                    {"version": subset_version(rules, m["destination"]), "percent": int(m["percentage"]["value"])}
                    for m in http.get("mirrors", [])
                ],
            }
        )
    return routes


# Knative's own names: the request header of tag routing (knative.dev/networking header.RouteTagKey, as
# traffic.json spells headers) and config-network's default tag-template (knative.dev/networking config.go).
KNATIVE_TAG_HEADER = "knative-serving-tag"
KNATIVE_DEFAULT_TAG_TEMPLATE = "{{.Tag}}-{{.Name}}"


def serving_config(objects: list[dict], name: str) -> dict:
    (config_map,) = [
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"] == {**o["metadata"], "name": name}
    ]
    return config_map["data"]


def go_template(template: str, **fields: str) -> str:
    """A Go text/template made only of field references (`{{.Name}}`), executed as Knative does."""
    result = re.sub(r"\{\{\s*\.(\w+)\s*\}\}", lambda match: fields[match.group(1)], template)
    assert "{{" not in result, f"{template!r} uses more than field references"
    return result


def routes_from_knative(objects: list[dict]) -> list[dict]:
    """What a Knative Route does (pkg/reconciler/route/resources/ingress.go): every request split by the targets'
    percents, except, with config-features tag-header-based-routing Enabled, a request whose Knative-Serving-Tag
    header names a tag, which reaches that tag's target alone. Each target resolved through its Configuration, or
    the Configuration whose template names its revision; a tag whose target the split already sends everything to
    changes nothing and is not listed."""
    (route,) = [o for o in objects if o["kind"] == "Route"]
    configurations = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Configuration"}
    revisions = {c["spec"]["template"]["metadata"]["name"]: c for c in configurations.values()}

    def version(target: dict) -> str:
        if "revisionName" in target:
            template = revisions[target["revisionName"]]["spec"]["template"]
        else:
            template = configurations[target["configurationName"]]["spec"]["template"]
        return template["metadata"]["labels"]["turnout.dev/version"]

    traffic = route["spec"]["traffic"]
    split = [{"version": version(t), "weight": t["percent"]} for t in traffic if t["percent"] > 0]
    by_tag = []
    if serving_config(objects, "config-features").get("tag-header-based-routing") == "Enabled":
        by_tag = [
            {
                "match": {"header": KNATIVE_TAG_HEADER, "value": t["tag"]},
                "to": [{"version": version(t), "weight": 100}],
                "mirror": [],
            }
            for t in traffic
            if t.get("tag") and split != [{"version": version(t), "weight": 100}]
        ]
    return [*by_tag, {"match": None, "to": split, "mirror": []}]


def tag_hosts_from_knative(objects: list[dict]) -> dict[str, str]:
    """Each tag's public host, as Knative makes it (pkg/reconciler/route/domains): the tag-template gives the name,
    the domain-template puts it under the domain config-domain names."""
    (route,) = [o for o in objects if o["kind"] == "Route"]
    network = serving_config(objects, "config-network")
    (domain,) = serving_config(objects, "config-domain")
    name, namespace = route["metadata"]["name"], route["metadata"]["namespace"]
    hosts = {}
    for target in route["spec"]["traffic"]:
        if target.get("tag"):
            tagged = go_template(
                network.get("tag-template", KNATIVE_DEFAULT_TAG_TEMPLATE), Tag=target["tag"], Name=name
            )
            hosts[target["tag"]] = go_template(
                network["domain-template"], Name=tagged, Namespace=namespace, Domain=domain
            )
    return hosts


@pytest.mark.parametrize("name", KNATIVE)
def test_traffic_json_agrees_with_the_rendered_knative_route(plans, name):
    (endpoint,) = json.loads((plans / name / "traffic.json").read_text())["endpoints"]
    assert endpoint["backend"] == "knative" and endpoint["strategy"] == KNATIVE[name]["type"]
    assert routes_from_knative(documents(plans / name)) == endpoint["routes"]
    assert tag_hosts_from_knative(documents(plans / name)) == endpoint["tagHosts"]


@pytest.mark.parametrize("name", KNATIVE)
def test_knative_objects_match_their_crds_and_never_scale_prod_to_zero(plans, name):
    crds = load_crds(CRDS)
    objects = documents(plans / name)
    knative = [d for d in objects if "knative.dev" in d["apiVersion"]]
    assert {d["kind"] for d in knative} == {"Configuration", "Route"}
    for document in knative:
        assert validate_custom_resource(document, crds) == [], document["metadata"]["name"]
    for configuration in (d for d in knative if d["kind"] == "Configuration"):
        annotations = configuration["spec"]["template"]["metadata"]["annotations"]
        assert int(annotations["autoscaling.knative.dev/min-scale"]) >= 1
    assert not [
        d for d in objects if d["kind"] in ("Deployment", "VirtualService") and d["metadata"]["namespace"] == "scores"
    ]


def test_knative_rolling_replaces_one_configuration_gradually(plans):
    objects = documents(plans / "kn-rolling")
    (configuration,) = [d for d in objects if d["kind"] == "Configuration"]
    assert configuration["metadata"]["name"] == "scores"
    revision = configuration["spec"]["template"]["metadata"]["name"]
    assert re.fullmatch(r"scores-v1-[0-9a-f]{8}", revision), "revisions are named per version and template"
    (route,) = [d for d in objects if d["kind"] == "Route"]
    assert route["metadata"]["annotations"] == {"serving.knative.dev/rollout-duration": "300s"}


def test_knative_canary_tags_each_version(plans):
    (route,) = [d for d in documents(plans / "kn-canary") if d["kind"] == "Route"]
    assert [(t["configurationName"], t["percent"], t["tag"]) for t in route["spec"]["traffic"]] == [
        ("scores-v1", 90, "v1"),
        ("scores-v2", 10, "v2"),
    ]
    (endpoint,) = json.loads((plans / "kn-canary" / "traffic.json").read_text())["endpoints"]
    assert [r["match"] for r in endpoint["routes"]] == [
        {"header": "knative-serving-tag", "value": "v1"},
        {"header": "knative-serving-tag", "value": "v2"},
        None,
    ], "each tag bypasses the split: traffic.json says so"


@pytest.mark.parametrize(("name", "shown", "hidden"), [("kn-blue-green", "v1", "v2"), ("kn-dark-launch", "v1", "v3")])
def test_knative_blue_green_and_dark_launch_hide_a_tagged_version_at_zero(plans, name, shown, hidden):
    (route,) = [d for d in documents(plans / name) if d["kind"] == "Route"]
    assert route["spec"]["traffic"] == [
        {"configurationName": f"scores-{shown}", "latestRevision": True, "percent": 100, "tag": shown},
        {"configurationName": f"scores-{hidden}", "latestRevision": True, "percent": 0, "tag": hidden},
    ]
    (endpoint,) = json.loads((plans / name / "traffic.json").read_text())["endpoints"]
    assert endpoint["routes"] == [
        {
            "match": {"header": "knative-serving-tag", "value": hidden},
            "to": [{"version": hidden, "weight": 100}],
            "mirror": [],
        },
        {"match": None, "to": [{"version": shown, "weight": 100}], "mirror": []},
    ]
    assert endpoint["tagHosts"] == {v: f"{v}-scores.127.0.0.1.sslip.io" for v in (shown, hidden)}
    assert "annotations" not in route["metadata"], "no canary to cap, no rollout to pace"


def test_knative_namespaces_admit_the_activator(plans):
    policies = {
        d["metadata"]["name"]: d["spec"]
        for d in documents(plans / "kn-canary")
        if d["kind"] == "AuthorizationPolicy" and d["metadata"]["namespace"] == "scores"
    }
    assert policies["allow-platform-controllers"]["rules"][0]["from"][0]["source"]["namespaces"] == ["knative-serving"]


def routes_from_flagger(objects: list[dict]) -> list[dict]:
    """What users get during a Flagger Canary's first analysis step, read from the Canary and its target:
    a weight (canary release), a header match (A/B testing) or a mirror (blue/green mirroring)."""
    (canary,) = [o for o in objects if o["kind"] == "Canary"]
    (target,) = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == canary["spec"]["targetRef"]["name"]
    ]
    analysis = canary["spec"]["analysis"]
    current = canary["metadata"]["annotations"]["turnout.dev/stable-version"]
    new = target["spec"]["template"]["metadata"]["labels"]["turnout.dev/version"]
    if "stepWeights" in analysis:
        first = analysis["stepWeights"][0]
        return [
            {
                "match": None,
                "to": [{"version": current, "weight": 100 - first}, {"version": new, "weight": first}],
                "mirror": [],
            }
        ]
    everyone = {"match": None, "to": [{"version": current, "weight": 100}], "mirror": []}
    if analysis.get("mirror"):
        return [{**everyone, "mirror": [{"version": new, "percent": analysis.get("mirrorWeight", 100)}]}]
    ((header, condition),) = analysis["match"][0]["headers"].items()
    return [
        {
            "match": {"header": header, "value": condition["exact"]},
            "to": [{"version": new, "weight": 100}],
            "mirror": [],
        },
        everyone,
    ]


@pytest.mark.parametrize("name", ["progressive-blue-green", "progressive-shadow"])
def test_progressive_blue_green_and_shadow_hand_the_switch_to_flagger(plans, name):
    objects = documents(plans / name)
    (endpoint,) = json.loads((plans / name / "traffic.json").read_text())["endpoints"]
    assert routes_from_flagger(objects) == endpoint["routes"]
    (canary,) = [o for o in objects if o["kind"] == "Canary"]
    assert validate_custom_resource(canary, load_crds(CRDS)) == []
    analysis = canary["spec"]["analysis"]
    assert "stepWeights" not in analysis, "switched after the analysis, not stepped"
    if name == "progressive-blue-green":
        assert (analysis["iterations"], analysis["interval"]) == (6, "2m")
        assert analysis["match"] == [{"headers": {"x-try-v2": {"exact": "true"}}}]
        assert analysis["metrics"][0]["thresholdRange"] == {"min": 97}
    else:
        assert (analysis["iterations"], analysis["mirror"], analysis["mirrorWeight"]) == (4, True, 40)
        assert analysis["metrics"][1]["thresholdRange"] == {"max": 250}
    kinds = {o["kind"] for o in objects if o["metadata"].get("namespace") == "scores"}
    assert not kinds & {"Service", "DestinationRule", "VirtualService"}, "Flagger owns the routing"


def test_progressive_canary_hands_routing_to_flagger(plans):
    objects = documents(plans / "progressive")
    (endpoint,) = json.loads((plans / "progressive" / "traffic.json").read_text())["endpoints"]
    assert routes_from_flagger(objects) == endpoint["routes"]
    (canary,) = [o for o in objects if o["kind"] == "Canary"]
    assert validate_custom_resource(canary, load_crds(CRDS)) == []
    analysis = canary["spec"]["analysis"]
    assert analysis["stepWeights"] == [5, 15, 25, 35, 40]
    assert analysis["interval"] == "90s" and analysis["threshold"] == 5
    assert analysis["metrics"] == [
        {"name": "request-success-rate", "thresholdRange": {"min": 98}, "interval": "90s"},
        {"name": "request-duration", "thresholdRange": {"max": 300}, "interval": "90s"},
    ]
    assert canary["spec"]["service"]["gateways"] == ["istio-system/turnout-gateway", "mesh"]
    # Flagger generates the Services, DestinationRules and VirtualService; turnout renders none.
    kinds = {o["kind"] for o in objects if o["metadata"].get("namespace") == "scores"}
    assert not kinds & {"Service", "DestinationRule", "VirtualService"}
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    assert deployment["metadata"]["name"] == "scores"
    assert deployment["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "scores"}}
    inventory = json.loads((plans / "progressive" / "inventory.json").read_text())
    charts = {r["inputs"]["chart"] for r in inventory["resources"] if r["type"] == "kubernetes:helm.sh/v3:Release"}
    assert {"flagger", "prometheus"} <= charts, "progressive endpoints get Flagger and Prometheus"


@pytest.mark.parametrize("name", STRATEGIES)
def test_traffic_json_agrees_with_the_rendered_virtual_service(plans, name):
    traffic = json.loads((plans / name / "traffic.json").read_text())
    (endpoint,) = traffic["endpoints"]
    assert endpoint["strategy"] == STRATEGIES[name]["type"]
    assert routes_from_istio(documents(plans / name)) == endpoint["routes"]


@pytest.mark.parametrize("name", STRATEGIES)
def test_rendered_custom_resources_match_their_crds(plans, name):
    crds = load_crds(CRDS)
    custom = [d for d in documents(plans / name) if "istio.io" in d["apiVersion"]]
    assert {"VirtualService", "DestinationRule"} <= {d["kind"] for d in custom}
    for document in custom:
        assert validate_custom_resource(document, crds) == [], (document["kind"], document["metadata"]["name"])


@pytest.mark.parametrize("name", STRATEGIES)
def test_only_the_versions_the_strategy_names_run(plans, name):
    deployments = {d["metadata"]["name"] for d in documents(plans / name) if d["kind"] == "Deployment"}
    routes = json.loads((plans / name / "traffic.json").read_text())["endpoints"][0]["routes"]
    versions = {t["version"] for r in routes for t in r["to"]} | {m["version"] for r in routes for m in r["mirror"]}
    expected = {f"scores-{v}" for v in versions} | ({"scores-flagd"} if name == "feature-flag" else set())
    assert deployments == expected


def test_virtual_service_binds_the_gateway_and_the_mesh(plans):
    (vs,) = [d for d in documents(plans / "canary") if d["kind"] == "VirtualService"]
    assert vs["spec"]["gateways"] == ["istio-system/turnout-gateway", "mesh"]
    assert vs["spec"]["hosts"] == ["scores.127.0.0.1.sslip.io", "scores.scores.svc.cluster.local"]


def test_sticky_canary_sets_the_cookie_on_the_split_route_only(plans):
    (vs,) = [d for d in documents(plans / "sticky-canary") if d["kind"] == "VirtualService"]
    *pinned, split = vs["spec"]["http"]
    assert all("headers" not in r for route in pinned for r in route["route"])
    cookies = {r["destination"]["subset"]: r["headers"]["response"]["set"]["set-cookie"] for r in split["route"]}
    assert cookies["v2"].startswith("model=v2; Path=/;") and cookies["v1"].startswith("model=v1; Path=/;")


def test_shadows_are_never_selected_by_the_public_service(plans):
    objects = documents(plans / "shadow")
    services = {d["metadata"]["name"]: d["spec"]["selector"] for d in objects if d["kind"] == "Service"}
    assert services["scores"]["turnout.dev/role"] == "serving"
    assert services["scores-shadow"]["turnout.dev/role"] == "shadow"
    roles = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]["turnout.dev/role"]
        for d in objects
        if d["kind"] == "Deployment"
    }
    assert roles == {"scores-v1": "serving", "scores-v2": "shadow", "scores-v3": "shadow"}
    (vs,) = [d for d in objects if d["kind"] == "VirtualService"]
    assert {m["destination"]["host"] for m in vs["spec"]["http"][0]["mirrors"]} == {
        "scores-shadow.scores.svc.cluster.local"
    }


def test_feature_flag_deploys_flagd_with_the_flag_definition(plans):
    objects = documents(plans / "feature-flag")
    (flags,) = [d for d in objects if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "scores-flagd"]
    definition = json.loads(flags["data"]["flags.json"])
    assert definition["flags"]["new-ranker"] == {
        "state": "ENABLED",
        "variants": {"on": "on", "off": "off"},
        "defaultVariant": "off",
    }
    (flagd,) = [d for d in objects if d["kind"] == "Deployment" and d["metadata"]["name"] == "scores-flagd"]
    container = flagd["spec"]["template"]["spec"]["containers"][0]
    assert re.fullmatch(r"ghcr\.io/open-feature/flagd:v\d+\.\d+\.\d+", container["image"])
    assert container["args"] == ["start", "--uri", "file:/etc/flagd/flags.json"]


def test_rendered_core_objects_pass_strict_validation(plans):
    import kubernetes_validate

    for name in [*STRATEGIES, *KNATIVE]:
        for document in documents(plans / name):
            if "istio.io" not in document["apiVersion"] and "knative.dev" not in document["apiVersion"]:
                kubernetes_validate.validate(document, "1.33.0", strict=True)
