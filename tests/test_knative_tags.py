"""blue-green and dark-launch on Knative, through Route tags (issue 17).

The hidden version (a blue-green's preview, a dark launch's dark version) is a Route target at 0% under its
tag: Knative reaches it with `Knative-Serving-Tag: <tag>` (config-features tag-header-based-routing) and at the
tag's host `<tag>-<route>.<domain>`, and nothing else does. Knative fixes the header's name and value, so a
header of the user's own is refused by key; the tag's host must be a DNS name Knative can make; prod never lets
the preview scale to zero, so the switch never waits for a cold start; policies read the tagged revision as the
public, user-facing version it is.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil

import pulumi_kubernetes as k8s
import pytest
import yaml

from components.endpoint.knative_revisions import check_tag_hosts, tag_host
from components.mesh.istio import GATEWAY_NAME, GATEWAY_NAMESPACE
from tests.conftest import REPO, as_cli, write_stack
from tests.policy_cases import fails, missing, passes
from tests.test_strategies_render import documents, routes_from_knative, tag_hosts_from_knative
from turnout.cli import main
from turnout.errors import ConfigError
from turnout.offline.policy import evaluate
from turnout.offline.runtime import run_program

POLICIES = REPO / "policies"
MIN_SCALE = "autoscaling.knative.dev/min-scale"


def knative_stack(strategy: dict, tier: str = "prod", endpoint: str = "scores", **preview) -> dict:
    """`endpoint` on Knative with v1 and v2 (`preview` replaces fields of v2), on one kind cluster."""
    versions = {"v1": {"image": "ghcr.io/acme/scores:1.0.0"}, "v2": {"image": "ghcr.io/acme/scores:2.0.0", **preview}}
    return {
        "tier": tier,
        "platform": {"cloud": "kind", "regions": ["lab"]},
        "endpoints": {endpoint: {"backend": "knative", "versions": versions, "strategy": strategy}},
    }


BLUE_GREEN = {"type": "blue-green", "active": "v1", "preview": "v2"}
DARK_LAUNCH = {"type": "dark-launch", "live": "v1", "dark": "v2"}
STACKS = {
    "kn-bg": knative_stack(BLUE_GREEN),  # the defaults, in prod
    "kn-bg-dev": knative_stack(BLUE_GREEN, tier="dev"),
    "kn-bg-switched": knative_stack({**BLUE_GREEN, "active": "v2", "preview": "v1"}),
    "kn-dl": knative_stack(DARK_LAUNCH),
    "kn-bg-min0-dev": knative_stack(BLUE_GREEN, tier="dev", replicas={"min": 0, "max": 3}),
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    shutil.copy(REPO / "Pulumi.yaml", root)
    for folder in ("stacks", "policies", "environments"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture(scope="module")
def plans(project, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    for name, config in STACKS.items():
        write_stack(project, name, config)
    assert main(["plan", *STACKS, "--project", str(project), "--out", str(out)]) == 0
    return out


def plan_status(project, tmp_path, capsys, name: str, config: dict) -> tuple[int, str]:
    write_stack(project, name, config)
    status = main(["plan", name, "--project", str(project), "--out", str(tmp_path)])
    return status, capsys.readouterr().err


def endpoint_of(plans, stack: str) -> dict:
    (endpoint,) = json.loads((plans / stack / "traffic.json").read_text())["endpoints"]
    return endpoint


def route_of(plans, stack: str) -> dict:
    (route,) = [d for d in documents(plans / stack) if d["kind"] == "Route"]
    return route


def configurations(plans, stack: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in documents(plans / stack) if d["kind"] == "Configuration"}


# --- planning, the Route and traffic.json ------------------------------------------------------------------------


def test_a_knative_blue_green_with_defaults_plans_with_no_violation(plans):
    for stack in STACKS:
        violations = json.loads((plans / stack / "policy.json").read_text())["violations"]
        assert violations == [], (stack, violations)
    endpoint = endpoint_of(plans, "kn-bg")
    assert (endpoint["backend"], endpoint["strategy"]) == ("knative", "blue-green")


@pytest.mark.parametrize(("stack", "shown", "hidden"), [("kn-bg", "v1", "v2"), ("kn-dl", "v1", "v2")])
def test_the_route_serves_one_version_and_tags_the_other_at_zero(plans, stack, shown, hidden):
    assert route_of(plans, stack)["spec"]["traffic"] == [
        {"configurationName": f"scores-{shown}", "latestRevision": True, "percent": 100, "tag": shown},
        {"configurationName": f"scores-{hidden}", "latestRevision": True, "percent": 0, "tag": hidden},
    ]
    endpoint = endpoint_of(plans, stack)
    assert endpoint["routes"] == [
        {
            "match": {"header": "knative-serving-tag", "value": hidden},
            "to": [{"version": hidden, "weight": 100}],
            "mirror": [],
        },
        {"match": None, "to": [{"version": shown, "weight": 100}], "mirror": []},
    ]


@pytest.mark.parametrize("stack", list(STACKS))
def test_traffic_json_is_what_the_independent_reader_reads_from_the_route(plans, stack):
    objects = documents(plans / stack)
    endpoint = endpoint_of(plans, stack)
    assert routes_from_knative(objects) == endpoint["routes"]
    assert tag_hosts_from_knative(objects) == endpoint["tagHosts"]


def test_switching_is_one_word_and_moves_only_the_percents(plans):
    before, after = route_of(plans, "kn-bg")["spec"]["traffic"], route_of(plans, "kn-bg-switched")["spec"]["traffic"]
    assert {t["tag"]: t["percent"] for t in before} == {"v1": 100, "v2": 0}
    assert {t["tag"]: t["percent"] for t in after} == {"v2": 100, "v1": 0}
    assert {t["tag"]: t["configurationName"] for t in before} == {t["tag"]: t["configurationName"] for t in after}

    def names(stack):
        return {n: c["spec"]["template"]["metadata"]["name"] for n, c in configurations(plans, stack).items()}

    assert names("kn-bg") == names("kn-bg-switched"), "no revision changes: the hosts and tags stay where they were"
    assert endpoint_of(plans, "kn-bg")["tagHosts"] == endpoint_of(plans, "kn-bg-switched")["tagHosts"]


def test_tag_hosts_are_served_by_turnouts_gateway_and_its_certificate(plans):
    """One label under the domain (the Gateway's `*.<domain>` server and certificate cover it), on routes net-istio
    binds to turnout's Gateway (config-istio external-gateways)."""
    objects = documents(plans / "kn-bg")
    (gateway,) = [o for o in objects if o["kind"] == "Gateway" and o["metadata"]["name"] == GATEWAY_NAME]
    https = next(s for s in gateway["spec"]["servers"] if s["port"]["protocol"] == "HTTPS")
    (wildcard,) = https["hosts"]
    domain = wildcard.removeprefix("*.")
    for tag, host in endpoint_of(plans, "kn-bg")["tagHosts"].items():
        label, _, rest = host.partition(".")
        assert rest == domain and label == f"{tag}-scores", host
    (istio,) = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "config-istio"]
    (external,) = yaml.safe_load(istio["data"]["external-gateways"])
    assert (external["namespace"], external["name"]) == (GATEWAY_NAMESPACE, GATEWAY_NAME)
    (features,) = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "config-features"]
    assert features["data"]["tag-header-based-routing"] == "Enabled", "the tag header reaches the preview"


# --- min-scale: the switch never cold-starts in prod ---------------------------------------------------------------


def test_prod_keeps_the_preview_warm_and_refuses_zero(plans, project, tmp_path, capsys):
    """A preview at 0% keeps its pods in prod: a min of 0 there is refused (exit 2, naming the key), never raised
    silently; dev scales to zero when asked."""
    min_scale = {
        stack: {
            n: c["spec"]["template"]["metadata"]["annotations"][MIN_SCALE]
            for n, c in configurations(plans, stack).items()
        }
        for stack in ("kn-bg", "kn-bg-min0-dev")
    }
    assert min_scale["kn-bg"] == {"scores-v1": "2", "scores-v2": "2"}, "prod's default replicas, preview included"
    assert min_scale["kn-bg-min0-dev"]["scores-v2"] == "0", "dev scales to zero when asked"
    autoscaler = [o for o in documents(plans / "kn-bg") if o["metadata"]["name"] == "config-autoscaler"]
    assert autoscaler[0]["data"]["enable-scale-to-zero"] == "false"
    status, err = plan_status(
        project, tmp_path, capsys, "kn-bg-min0", knative_stack(BLUE_GREEN, replicas={"min": 0, "max": 3})
    )
    assert status == 2, err
    assert "turnout:endpoints.scores.versions.v2.replicas.min: found 0 in a prod stack" in err
    assert "Traceback" not in err


# --- the header is Knative's ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "key", "says"),
    [
        ({**BLUE_GREEN, "previewHeader": "x-try-v2"}, "previewHeader", "`Knative-Serving-Tag: v2`"),
        ({**BLUE_GREEN, "previewHeader": "x-turnout-preview"}, "previewHeader", "`Knative-Serving-Tag: v2`"),
        ({**DARK_LAUNCH, "header": "x-dark"}, "header", "`Knative-Serving-Tag: v2`"),
        ({**BLUE_GREEN, "progressive": {}}, "progressive", "progressive blue-green with backend istio only"),
    ],
)
def test_a_header_of_ones_own_is_refused_on_knative_by_key(project, tmp_path, capsys, strategy, key, says):
    status, err = plan_status(project, tmp_path, capsys, "kn-refused", knative_stack(strategy))
    assert status == 2, err
    assert f"turnout:endpoints.scores.strategy.{key}: found " in err and says in err, err
    assert "Traceback" not in err
    if key != "progressive":
        assert "v2-<endpoint>.<domain>" in err and "use backend istio for a header of your own" in err


def test_knatives_own_header_may_be_named(project, tmp_path, capsys):
    config = knative_stack({**BLUE_GREEN, "previewHeader": "Knative-Serving-Tag"})
    status, err = plan_status(project, tmp_path, capsys, "kn-named", config)
    assert status == 0, err
    (endpoint,) = json.loads((tmp_path / "kn-named" / "traffic.json").read_text())["endpoints"]
    assert endpoint["routes"][0]["match"] == {"header": "knative-serving-tag", "value": "v2"}


def test_the_same_header_keys_still_work_on_istio(project, tmp_path, capsys):
    config = knative_stack({**BLUE_GREEN, "previewHeader": "x-try-v2"})
    config["endpoints"]["scores"]["backend"] = "istio"
    status, err = plan_status(project, tmp_path, capsys, "istio-bg", config)
    assert status == 0, err
    (endpoint,) = json.loads((tmp_path / "istio-bg" / "traffic.json").read_text())["endpoints"]
    assert endpoint["routes"][0]["match"] == {"header": "x-try-v2", "value": "true"}
    assert "tagHosts" not in endpoint


# --- the tag's host is a DNS name ----------------------------------------------------------------------------------

LONG_ENDPOINT = "fraud-score-for-the-payments-team-eu-01"  # 39 characters
LONG_VERSION = "candidate-for-the-spring-release-2027"  # 37 characters


def test_a_tag_host_over_63_characters_is_refused_naming_the_keys(project, tmp_path, capsys):
    strategy = {**BLUE_GREEN, "preview": LONG_VERSION}
    config = knative_stack(strategy, endpoint=LONG_ENDPOINT)
    config["endpoints"][LONG_ENDPOINT]["versions"][LONG_VERSION] = config["endpoints"][LONG_ENDPOINT]["versions"].pop(
        "v2"
    )
    status, err = plan_status(project, tmp_path, capsys, "kn-long", config)
    assert status == 2, err
    label = f"{LONG_VERSION}-{LONG_ENDPOINT}"
    assert len(label) == 77
    assert f"turnout:endpoints.{LONG_ENDPOINT}.versions.{LONG_VERSION}: found '{LONG_VERSION}'" in err, err
    assert "starts with a label of 77 characters" in err and f"(turnout:endpoints.{LONG_ENDPOINT})" in err
    assert "at most 62 characters together" in err and "Traceback" not in err


def test_a_canary_with_a_long_tag_host_is_refused_too(project, tmp_path, capsys):
    """Every version a Knative Route serves is tagged: the limit holds for every Knative strategy."""
    config = knative_stack({"type": "canary", "stable": "v1", "canary": "v2", "weight": 10}, endpoint="e" * 40)
    versions = config["endpoints"]["e" * 40]["versions"]
    versions["v" * 23] = versions.pop("v2")
    config["endpoints"]["e" * 40]["strategy"]["canary"] = "v" * 23
    status, err = plan_status(project, tmp_path, capsys, "kn-long-canary", config)
    assert status == 2 and f"versions.{'v' * 23}: found" in err and "label of 64 characters" in err, err


def test_the_limit_is_exactly_dns():
    check_tag_hosts("e" * 40, ["v" * 22], "models.example.com")  # 63: accepted
    with pytest.raises(ConfigError) as caught:
        check_tag_hosts("e" * 40, ["v" * 23], "models.example.com")
    assert caught.value.path == f"turnout:endpoints.{'e' * 40}.versions.{'v' * 23}"
    domain = ".".join(["d" * 60] * 3) + ".example"  # 190 characters
    assert len(tag_host("scores", "v2", domain)) == 200
    check_tag_hosts("scores", ["v2"], domain)
    with pytest.raises(ConfigError) as caught:
        check_tag_hosts("e" * 40, ["v" * 22], domain)
    assert "has 254 characters" in caught.value.found


# --- policies see the tagged revision as the user-facing version it is --------------------------------------------


def configuration(name: str, version: str, role: str | None = None, min_scale: str | None = "1"):
    labels = {
        "turnout.dev/version": version,
        "turnout.dev/tier": "prod",
        **({"turnout.dev/role": role} if role else {}),
    }
    annotations = {MIN_SCALE: min_scale} if min_scale is not None else {}
    return k8s.apiextensions.CustomResource(
        name,
        api_version="serving.knative.dev/v1",
        kind="Configuration",
        metadata={"name": name, "namespace": "models", "labels": {"turnout.dev/tier": "prod"}},
        spec={
            "template": {
                "metadata": {"name": f"{name}-abc", "labels": labels, "annotations": annotations},
                "spec": {"containers": [{"image": "ghcr.io/acme/m:1.0.0"}]},
            }
        },
    )


def knative_route(*targets: dict):
    spec = {"traffic": list(targets)} if targets else {}
    return k8s.apiextensions.CustomResource(
        "route",
        api_version="serving.knative.dev/v1",
        kind="Route",
        metadata={"name": "m", "namespace": "models", "labels": {"turnout.dev/tier": "prod"}},
        spec=spec,
    )


def target(configuration_name: str, percent: int, tag: str | None = None) -> dict:
    return {
        "configurationName": configuration_name,
        "latestRevision": True,
        "percent": percent,
        **({"tag": tag} if tag else {}),
    }


def preview_stack(role: str | None = None, percent: int = 0, tag: str | None = "v2", min_scale: str | None = "1"):
    def program():
        configuration("m-v1", "v1")
        configuration("m-v2", "v2", role=role, min_scale=min_scale)
        knative_route(target("m-v1", 100 - percent, "v1"), target("m-v2", percent, tag))

    return program


CASES = {
    "shadow-not-user-facing": [
        passes(preview_stack()),  # a preview at 0% under its tag: user-facing, and no shadow
        passes(preview_stack(role="shadow", tag=None)),  # at 0% without a tag nothing reaches it
        fails(
            preview_stack(role="shadow"),
            "models/m tags shadow version v2 as 'v2': a public host and the Knative-Serving-Tag header reach it.",
        ),
        fails(preview_stack(role="shadow", percent=10, tag=None), "models/m routes 10% of users to shadow version v2."),
        missing(lambda: (configuration("m-v2", "v2", role="shadow"), knative_route())),
    ],
    "prod-min-replicas": [
        passes(preview_stack()),
        fails(preview_stack(min_scale="0"), "models/m-v2 may scale to zero (min-scale 0)."),
        missing(preview_stack(min_scale=None), "models/m-v2 may scale to zero (min-scale 0)."),
    ],
}


@pytest.mark.parametrize(
    ("rule", "case"),
    [
        pytest.param(rule, case, id=f"{rule}-{case.kind}-{i}")
        for rule, cases in CASES.items()
        for i, case in enumerate(cases)
    ],
)
def test_policies_read_the_tagged_revision(rule, case):
    found = case.violations(rule)
    assert tuple(v.message.splitlines()[-1] for v in found) == case.expected
    assert all(v.level == "mandatory" for v in found), "contract rules are mandatory in prod"


def test_the_planned_preview_is_judged_like_the_active_version(plans):
    """The planned stacks' Configurations and Route, with the preview's min-scale lowered as a fork might: the
    pack finds it (the planned ones pass: see the first test)."""
    raw = {f"turnout:{k}": v for k, v in as_cli(STACKS["kn-bg"]).items()}
    records = run_program(REPO, "turnout", "kn-bg", raw, []).records
    preview = next(
        r for r in records if r.type.endswith(":Configuration") and r.inputs["metadata"]["name"] == "scores-v2"
    )
    lowered = {}
    for field in ("raw_inputs", "raw_outputs"):  # resource rules read inputs, stack rules outputs
        lowered[field] = copy.deepcopy(getattr(preview, field))
        lowered[field]["spec"]["template"]["metadata"]["annotations"][MIN_SCALE] = "0"
    changed = [r if r is not preview else dataclasses.replace(r, **lowered) for r in records]
    found = [v for v in evaluate(changed, POLICIES, tier="prod") if v.policy == "prod-min-replicas"]
    assert [v.message.splitlines()[-1] for v in found] == ["scores/scores-v2 may scale to zero (min-scale 0)."]
