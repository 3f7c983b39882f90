"""A bandit endpoint, planned: its arms, the experiment agent and everything it runs with, the initial split
re-derived from the rendered objects by the independent reader, the learned routes Pulumi leaves alone, and
the bad bandit configs refused with exit 2 naming the key."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from components.endpoint.experiment_agent import check_experiment_agents
from components.endpoint.istio_routes import LEARNED_ROUTES
from components.endpoint.workload import container_security, pod_security
from components.observability.prometheus import PROMETHEUS_URL
from tests.conftest import CRDS, REPO, load, plan_stacks, write_stack
from tests.crd_schema import load_crds, validate_custom_resource
from tests.test_strategies_render import documents, routes_from_istio
from turnout.cli import main
from turnout.errors import ConfigError
from turnout.offline import runtime

sys.path.insert(0, str(REPO / "apps" / "experiment-agent"))
from turnout_agent.settings import parse as parse_agent_settings  # noqa: E402

VERSIONS = {v: {"image": f"ghcr.io/acme/scores:1.{i}.0"} for i, v in enumerate(["v1", "v2", "v3"])}
AGENT_IMAGE = "kind.local/turnout-experiment-agent:0.1.0"


def bandit_config(strategy: dict | None = None, *, tier: str = "prod", backend: str = "istio", **platform) -> dict:
    return {
        "tier": tier,
        "platform": {"cloud": "kind", "regions": ["lab"], "loadImages": [AGENT_IMAGE], **platform},
        "endpoints": {
            "scores": {
                "backend": backend,
                "versions": VERSIONS,
                "strategy": {"type": "bandit", "arms": ["v1", "v2", "v3"], **(strategy or {})},
            }
        },
    }


STACKS = {
    "bandit-prod": bandit_config({"reward": {"callers": ["shop", "cluster.local/ns/web/sa/frontend"]}}),
    "bandit-dev": bandit_config({"policy": "ucb1", "interval": "10s", "minWeight": 10}, tier="dev"),
    "bandit-slo": bandit_config({"reward": {"source": "slo", "latencyMs": 250}, "arms": ["v1", "v2"]}),
}


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    return plan_stacks(tmp_path_factory, STACKS)


def objects(plans, stack: str, kind: str) -> list[dict]:
    return [d for d in documents(plans / stack) if d["kind"] == kind]


def only(plans, stack: str, kind: str, name: str | None = None) -> dict:
    (found,) = [d for d in objects(plans, stack, kind) if name is None or d["metadata"]["name"] == name]
    return found


# the plan ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_traffic_json_shows_the_initial_split_that_the_rendered_objects_make(plans, stack):
    (endpoint,) = json.loads((plans / stack / "traffic.json").read_text())["endpoints"]
    assert endpoint["strategy"] == "bandit"
    assert routes_from_istio(documents(plans / stack)) == endpoint["routes"]
    weights = [d["weight"] for d in endpoint["routes"][0]["to"]]
    assert sum(weights) == 100 and max(weights) - min(weights) <= 1, "equal to the percent"
    agent = endpoint["agent"]
    assert agent["owns"] == "weights" and "owns them afterwards" in agent["note"]
    assert agent["feedback"] == "/v1/endpoints/scores/feedback"


def test_every_answer_names_its_version_and_a_request_id(plans):
    vs = only(plans, "bandit-prod", "VirtualService")
    for destination in vs["spec"]["http"][0]["route"]:
        version = destination["destination"]["subset"]
        assert destination["headers"]["response"]["set"] == {
            "x-turnout-version": version,
            "x-turnout-request-id": f"{version}.%REQ(x-request-id)%",
        }
    assert vs["metadata"]["annotations"]["turnout.dev/bandit-min-weight"] == "5"
    assert validate_custom_resource(vs, load_crds(CRDS)) == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_agent_runs_with_settings_it_accepts_and_writes_the_route_pulumi_rendered(plans, stack):
    config = only(plans, stack, "ConfigMap", "scores-agent-settings")
    document = json.loads(config["data"]["settings.json"])
    statefulset = only(plans, stack, "StatefulSet")
    replicas = statefulset["spec"]["replicas"]
    for index in range(replicas):
        settings = parse_agent_settings(document, replica=f"scores-agent-{index}")
        assert (
            settings.peers[index].url == f"http://scores-agent-{index}.scores-agent-peers.scores.svc.cluster.local:8080"
        )
    (split,) = only(plans, stack, "VirtualService")["spec"]["http"]
    assert settings.routing["route"] == split["name"]
    assert {
        arm: {**d, "weight": w["weight"]}
        for (arm, d), w in zip(settings.routing["destinations"].items(), split["route"], strict=True)
    } == {w["destination"]["subset"]: w for w in split["route"]}, (
        "the agent rewrites exactly the destinations Pulumi rendered, with new weights"
    )
    assert settings.prometheus_url == PROMETHEUS_URL == "http://prometheus-server.turnout-monitoring"
    assert settings.lease_name == "scores-agent" and settings.state_config_map == "scores-agent-state"
    assert settings.ledger_path.parent.as_posix() == "/var/lib/turnout-agent"


def test_prod_runs_two_replicas_with_their_own_ledgers_and_a_disruption_budget(plans):
    statefulset = only(plans, "bandit-prod", "StatefulSet")
    spec = statefulset["spec"]
    assert spec["replicas"] == 2 and spec["serviceName"] == "scores-agent-peers"
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "ledger" and claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/var/lib/turnout-agent", "/etc/turnout-agent"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"] == pod_security() and container["securityContext"] == container_security()
    assert pod["serviceAccountName"] == "scores-agent" and pod["automountServiceAccountToken"] is True
    assert spec["template"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert only(plans, "bandit-prod", "PodDisruptionBudget", "scores-agent")["spec"]["maxUnavailable"] == 1
    assert only(plans, "bandit-dev", "StatefulSet")["spec"]["replicas"] == 1
    assert not [
        d for d in objects(plans, "bandit-dev", "PodDisruptionBudget") if d["metadata"]["name"] == "scores-agent"
    ]


def test_the_role_allows_its_own_three_objects_and_nothing_else(plans):
    role = only(plans, "bandit-prod", "Role")
    assert role["rules"] == [
        {
            "apiGroups": ["networking.istio.io"],
            "resources": ["virtualservices"],
            "resourceNames": ["scores"],
            "verbs": ["get", "update"],
        },
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["scores-agent"],
            "verbs": ["get", "update"],
        },
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["scores-agent-state"],
            "verbs": ["get", "update"],
        },
    ]
    binding = only(plans, "bandit-prod", "RoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "scores-agent", "namespace": "scores"}]
    # The two objects it may only update exist from the start, empty: their content is the agent's.
    assert only(plans, "bandit-prod", "Lease")["spec"] == {}
    assert "data" not in only(plans, "bandit-prod", "ConfigMap", "scores-agent-state")


def test_who_may_post_feedback(plans):
    policy = only(plans, "bandit-prod", "AuthorizationPolicy", "allow-scores-agent")["spec"]
    callers, peers = policy["rules"]
    assert callers["from"] == [
        {"source": {"namespaces": ["shop"]}},
        {"source": {"principals": ["cluster.local/ns/web/sa/frontend"]}},
    ]
    assert {op["operation"]["paths"][0]: op["operation"]["methods"] for op in callers["to"]} == {
        "/v1/endpoints/scores/report": ["GET"],
        "/v1/endpoints/scores/feedback": ["POST"],
    }
    assert peers["from"] == [{"source": {"principals": ["cluster.local/ns/scores/sa/scores-agent"]}}]
    netpol = only(plans, "bandit-prod", "NetworkPolicy", "scores-agent-callers")["spec"]
    assert [
        f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for f in netpol["ingress"][0]["from"]
    ] == [
        "shop",
        "web",
    ]
    default = only(plans, "bandit-dev", "AuthorizationPolicy", "allow-scores-agent")["spec"]
    assert default["rules"][0]["from"] == [{"source": {"principals": ["*"]}}], "any workload of the mesh"
    slo = only(plans, "bandit-slo", "AuthorizationPolicy", "allow-scores-agent")["spec"]
    assert [op["operation"]["methods"] for op in slo["rules"][0]["to"]] == [["GET"]], "no feedback to post"


def test_prometheus_is_installed_for_the_agent_and_every_arm_passes_the_prod_rules(plans):
    inventory = json.loads((plans / "bandit-prod" / "inventory.json").read_text())
    charts = {r["inputs"]["chart"] for r in inventory["resources"] if r["type"] == "kubernetes:helm.sh/v3:Release"}
    assert "prometheus" in charts and "flagger" not in charts, "Prometheus without Flagger"
    assert inventory["outputs"]["platform"]["bandit-prod-lab"]["prometheus"]
    assert json.loads((plans / "bandit-prod" / "policy.json").read_text())["violations"] == []
    arms = [d for d in objects(plans, "bandit-prod", "Deployment")]
    assert sorted(d["metadata"]["name"] for d in arms) == ["scores-v1", "scores-v2", "scores-v3"]


def test_rendered_core_objects_pass_strict_validation(plans):
    import kubernetes_validate

    for stack in STACKS:
        for document in documents(plans / stack):
            if "istio.io" not in document["apiVersion"]:
                kubernetes_validate.validate(document, "1.33.0", strict=True)


def test_pulumi_leaves_the_learned_routes_and_state_alone(monkeypatch, tmp_path):
    """The engine receives ignoreChanges for what the agent owns: a later `pulumi up` keeps learned weights."""
    ignored: dict[str, list[str]] = {}
    original = runtime.RecordingMonitor.RegisterResource

    def recording(self, request):
        ignored[request.name] = list(request.ignoreChanges)
        return original(self, request)

    monkeypatch.setattr(runtime.RecordingMonitor, "RegisterResource", recording)
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "Pulumi.yaml", project)
    for folder in ("stacks", "policies", "environments"):
        shutil.copytree(REPO / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    write_stack(project, "learned", STACKS["bandit-dev"])
    assert main(["plan", "learned", "--project", str(project), "--out", str(tmp_path / "out")]) == 0
    assert ignored["learned-lab-scores-routes-vs"] == [LEARNED_ROUTES] == ["spec.http"]
    assert ignored["learned-lab-scores-agent-lease"] == ["spec"]
    assert ignored["learned-lab-scores-agent-state"] == ["data"]
    assert ignored["learned-lab-scores-routes-dr"] == [], "only what the agent writes"


# bad configs ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "backend", "key", "says"),
    [
        ({"arms": ["v1"]}, "istio", "strategy.arms", "a list of 2 to 10 versions"),
        ({"policy": "softmax"}, "istio", "strategy.policy", "one of thompson, ucb1, epsilon-greedy"),
        ({"minWeight": 40}, "istio", "strategy.minWeight", "at most 33 with 3 arms"),
        ({"reward": {"source": "slo", "latencyMs": 300}}, "istio", "strategy.reward.latencyMs", "250, 500"),
        ({"reward": {"source": "slo"}}, "istio", "strategy.reward.latencyMs", "the latency a success answers within"),
        (
            {"reward": {"source": "slo", "latencyMs": 250, "callers": ["shop"]}},
            "istio",
            "strategy.reward.callers",
            "no callers",
        ),
        ({"reward": {"callers": ["Shop!"]}}, "istio", "strategy.reward.callers[0]", "namespace"),
        (
            {"reward": {"source": "slo", "latencyMs": 250, "unreported": "zero"}},
            "istio",
            "strategy.reward.unreported",
            "with feedback",
        ),
        ({"arms": ["v1", "v1"]}, "istio", "strategy.arms[1]", "distinct versions"),
        ({"arms": ["v1", "v9"]}, "istio", "strategy.arms[1]", "a version defined under versions"),
        ({"epsilon": 2}, "istio", "strategy.epsilon", "a number from 0 to 1"),
        ({"interval": "1s"}, "istio", "strategy.interval", '"5s"'),
        ({}, "knative", "strategy.type", "a Knative Route sets no response header per revision"),
    ],
)
def test_bad_bandit_configs_name_the_key(strategy, backend, key, says):
    with pytest.raises(ConfigError) as caught:
        load(bandit_config(strategy, backend=backend))
    assert caught.value.path == f"turnout:endpoints.scores.{key}", caught.value
    assert says in caught.value.allowed, caught.value


def test_a_cloud_stack_names_the_agent_image():
    config = bandit_config()
    config["platform"] = {"cloud": "aws", "regions": ["us-east-1"]}
    with pytest.raises(ConfigError) as caught:
        check_experiment_agents(load(config))
    assert caught.value.path == "turnout:platform.serving.agentImage"
    assert "release-agent.yml" in caught.value.allowed
    config["platform"]["serving"] = {"agentImage": "ghcr.io/acme/turnout-experiment-agent:0.1.0"}
    check_experiment_agents(load(config))


def test_kind_needs_the_agent_image_loaded():
    config = bandit_config()
    config["platform"]["loadImages"] = []
    with pytest.raises(ConfigError) as caught:
        check_experiment_agents(load(config))
    assert caught.value.path == "turnout:platform.loadImages" and AGENT_IMAGE in caught.value.allowed


def test_through_the_command_line_exit_2_without_a_traceback(project, tmp_path, capsys):
    write_stack(project, "one-arm", bandit_config({"arms": ["v2"]}))
    assert main(["plan", "one-arm", "--project", str(project), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "turnout:endpoints.scores.strategy.arms" in err and "Traceback" not in err


def test_prod_without_a_floor_is_a_mandatory_violation(project, tmp_path):
    write_stack(project, "no-floor", bandit_config({"minWeight": 0}))
    assert main(["plan", "no-floor", "--project", str(project), "--out", str(tmp_path)]) == 1
    violations = json.loads((tmp_path / "no-floor" / "policy.json").read_text())["violations"]
    assert [(v["policy"], v["level"]) for v in violations] == [("bandit-min-weight", "mandatory")]
