"""The policy pack: each rule passes, fails and tolerates missing properties; the offline evaluator
agrees with the real analyzer that `pulumi preview --policy-pack policies` talks to."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import grpc
import pulumi
import pulumi_kubernetes as k8s
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from tests.conftest import REPO
from tests.policy_cases import all_cases, fails, missing, passes
from turnout.offline.policy import evaluate, load_rules
from turnout.offline.runtime import run_function

POLICIES = REPO / "policies"
CONTRACT_NAMES = {  # CONTRACT §3; dr-target-achievable comes with the DR issue
    "traffic-weights-sum-to-100",
    "canary-weight-cap",
    "prod-min-replicas",
    "shadow-not-user-facing",
    "image-pinned",
}


def virtual_service(*weights, http=True):
    route = [
        {"destination": {"host": "m", "subset": f"v{i}"}, **({"weight": w} if w is not None else {})}
        for i, w in enumerate(weights, start=1)
    ]
    spec = {"hosts": ["m"], **({"http": [{"name": "primary", "route": route}]} if http else {})}
    return lambda: k8s.apiextensions.CustomResource(
        "vs",
        api_version="networking.istio.io/v1",
        kind="VirtualService",
        metadata={"name": "m", "namespace": "models"},
        spec=spec,
    )


def knative_service(*percents):
    traffic = [{"revisionName": f"m-v{i}", "percent": p} for i, p in enumerate(percents, start=1)]
    spec = {"template": {"spec": {"containers": [{"image": "m:1"}]}}, **({"traffic": traffic} if traffic else {})}
    return lambda: k8s.apiextensions.CustomResource(
        "ksvc",
        api_version="serving.knative.dev/v1",
        kind="Service",
        metadata={"name": "m", "namespace": "models"},
        spec=spec,
    )


def violations_for(program, tier=None):
    return evaluate(run_function(program).records, POLICIES, tier=tier)


def deployment(
    name="m-v1", image="ghcr.io/acme/m:1.0.0", replicas=2, tier="prod", role="serving", version="v1", namespace="models"
):
    labels = {"turnout.dev/tier": tier, "turnout.dev/version": version, "turnout.dev/role": role}
    spec = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name, **labels}},
            "spec": {"containers": [{"name": "model", "image": image}]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return k8s.apps.v1.Deployment(name, metadata={"name": name, "namespace": namespace, "labels": labels}, spec=spec)


def hpa(target="m-v1", minimum=2, namespace="models"):
    return k8s.autoscaling.v2.HorizontalPodAutoscaler(
        f"{target}-hpa",
        metadata={"name": target, "namespace": namespace},
        spec={
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": minimum,
            "maxReplicas": 5,
        },
    )


def canary_vs(weight, annotated=True):
    metadata = {"name": "m", "namespace": "models", "labels": {"turnout.dev/tier": "prod"}}
    if annotated:
        metadata["annotations"] = {"turnout.dev/canary-version": "v2"}
    route = [
        {"destination": {"host": "m", "subset": "v1"}, "weight": 100 - weight},
        {"destination": {"host": "m", "subset": "v2"}, "weight": weight},
    ]
    return lambda: k8s.apiextensions.CustomResource(
        "vs",
        api_version="networking.istio.io/v1",
        kind="VirtualService",
        metadata=metadata,
        spec={"hosts": ["m"], "http": [{"name": "default", "route": route}]},
    )


def shadow_stack(route_to_shadow=False, exposed=False):
    def program():
        deployment("m-v1", version="v1")
        deployment("m-v2", version="v2", role="shadow")
        k8s.apiextensions.CustomResource(
            "dr",
            api_version="networking.istio.io/v1",
            kind="DestinationRule",
            metadata={"name": "m", "namespace": "models"},
            spec={
                "host": "m.models.svc.cluster.local",
                "subsets": [{"name": v, "labels": {"turnout.dev/version": v}} for v in ("v1", "v2")],
            },
        )
        route = [{"destination": {"host": "m.models.svc.cluster.local", "subset": "v1"}, "weight": 80}]
        if route_to_shadow:
            route.append({"destination": {"host": "m.models.svc.cluster.local", "subset": "v2"}, "weight": 20})
        else:
            route[0]["weight"] = 100
        k8s.apiextensions.CustomResource(
            "vs",
            api_version="networking.istio.io/v1",
            kind="VirtualService",
            metadata={"name": "m", "namespace": "models"},
            spec={
                "hosts": ["m"],
                "http": [
                    {
                        "route": route,
                        "mirrors": [
                            {
                                "destination": {"host": "m-shadow.models.svc.cluster.local", "subset": "v2"},
                                "percentage": {"value": 50.0},
                            }
                        ],
                    }
                ],
            },
        )
        k8s.core.v1.Service(
            "svc-shadow",
            metadata={"name": "m-shadow", "namespace": "models"},
            spec={
                "type": "LoadBalancer" if exposed else "ClusterIP",
                "selector": {"turnout.dev/role": "shadow"},
                "ports": [{"port": 80}],
            },
        )

    return program


CASES = {
    "traffic-weights-sum-to-100": [
        passes(virtual_service(90, 10)),
        passes(virtual_service(None)),  # one unweighted destination takes 100% by Istio's rules
        passes(knative_service(75, 25)),
        fails(virtual_service(90, 20), "models/m: route primary weights sum to 110, not 100."),
        fails(virtual_service(60, None), "models/m: route primary weights sum to 60, not 100."),
        fails(knative_service(50, 40), "models/m: traffic percents sum to 90, not 100."),
        missing(virtual_service(http=False)),
        missing(knative_service()),
    ],
    "image-pinned": [
        passes(lambda: deployment(image="ghcr.io/acme/m:1.4.2")),
        passes(lambda: deployment(image="ghcr.io/acme/m@sha256:" + "a" * 64)),
        fails(
            lambda: deployment(image="ghcr.io/acme/m:latest"),
            "models/m-v1: container model image 'ghcr.io/acme/m:latest' is tagged latest.",
        ),
        fails(
            lambda: deployment(image="localhost:5000/acme/m"),
            "models/m-v1: container model image 'localhost:5000/acme/m' has no tag (it means latest).",
        ),
        missing(lambda: k8s.core.v1.ConfigMap("cm", metadata={"name": "cm"}, data={"image": "m:latest"})),
        missing(
            lambda: k8s.apps.v1.Deployment(
                "d", metadata={"name": "d"}, spec={"template": {"spec": {"containers": [{"name": "c"}]}}}
            ),
            "d: container c image None has no image.",
        ),
    ],
    "canary-weight-cap": [
        passes(canary_vs(50)),
        fails(canary_vs(60), "models/m: the canary reaches 60%, above the cap of 50%."),
        missing(canary_vs(60, annotated=False)),  # without a canary named, there is no canary to cap
    ],
    "prod-min-replicas": [
        passes(lambda: deployment(replicas=2)),
        passes(lambda: (deployment(replicas=None), hpa(minimum=3))),
        passes(lambda: deployment(replicas=1, tier="dev")),
        passes(lambda: deployment(replicas=0, role="shadow")),
        fails(lambda: deployment(replicas=0), "models/m-v1 runs 0 replica(s); prod needs 2."),
        fails(lambda: (deployment(replicas=None), hpa(minimum=1)), "models/m-v1 runs 1 replica(s); prod needs 2."),
        missing(lambda: deployment(replicas=None), "models/m-v1 runs 1 replica(s); prod needs 2."),
    ],
    "shadow-not-user-facing": [
        passes(shadow_stack()),
        fails(shadow_stack(route_to_shadow=True), "models/m routes users to shadow version v2."),
        fails(shadow_stack(exposed=True), "models/m-shadow exposes shadow versions outside the cluster."),
        missing(lambda: deployment()),
    ],
}

ALL_CASES = all_cases()


@pytest.mark.parametrize(
    ("rule", "case"),
    [
        pytest.param(rule, case, id=f"{rule}-{case.kind}-{i}")
        for rule, cases in ALL_CASES.items()
        for i, case in enumerate(cases)
    ],
)
def test_rule_cases(rule, case):
    found = case.violations(rule)
    assert tuple(v.message.splitlines()[-1] for v in found) == case.expected
    if rule in CONTRACT_NAMES:
        assert all(v.level == "mandatory" for v in found), "every contract rule is mandatory in prod"


def cap_findings(records, **kwargs):
    return [v for v in evaluate(records, POLICIES, **kwargs) if v.policy == "canary-weight-cap"]


def test_rollout_rules_are_advisory_below_prod():
    records = run_function(canary_vs(60)).records
    assert [v.level for v in cap_findings(records, tier="dev")] == ["advisory"]
    assert [v.level for v in cap_findings(records, tier="prod")] == ["mandatory"]


def test_policy_config_overrides_the_cap_and_the_level():
    records = run_function(canary_vs(60)).records
    assert cap_findings(records, config={"canary-weight-cap": {"maxWeight": 70}}) == []
    (found,) = cap_findings(records, config={"canary-weight-cap": {"enforcementLevel": "mandatory"}})
    assert found.level == "mandatory"
    assert cap_findings(records, config={"canary-weight-cap": "disabled"}) == []


def printed_pack_config(*args):
    result = subprocess.run(
        [sys.executable, str(POLICIES / "tier_config.py"), *map(str, args)], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def test_tier_config_is_what_the_cli_gets():
    prod = printed_pack_config("prod")
    assert set(prod) >= {"canary-weight-cap", "prod-min-replicas", "shadow-not-user-facing", "dr-target-achievable"}
    assert {entry["enforcementLevel"] for entry in prod.values()} == {"mandatory"}
    assert set(printed_pack_config("staging")) == {
        "dr-target-achievable",
        "dr-warm-standby-not-zero",
        "dr-cache-replication",
    }
    assert printed_pack_config("dev") == {}
    # the offline evaluator reads the same config the same way
    records = run_function(canary_vs(60)).records
    (found,) = [v for v in evaluate(records, POLICIES, config=prod) if v.policy == "canary-weight-cap"]
    assert found.level == "mandatory"


def test_every_rule_has_passing_failing_and_missing_property_cases():
    """A rule that cannot fail is a hidden bug: each has a failing case, which test_rule_cases runs."""
    names = {p.name for p in load_rules(POLICIES).POLICIES}
    assert names >= CONTRACT_NAMES
    assert set(ALL_CASES) <= names, "cases for a rule the pack does not have"
    for name in sorted(names):
        kinds = {case.kind for case in ALL_CASES.get(name, [])}
        assert kinds == {"pass", "fail", "missing"}, f"{name} has cases of kinds {sorted(kinds)}"


def test_rule_names_are_kebab_case_with_remediation():
    for policy in load_rules(POLICIES).POLICIES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", policy.name)
        assert policy.description and policy.remediation_steps


@pytest.fixture(scope="module")
def analyzer():
    """The pack served exactly as the Pulumi CLI runs it: `python policies/__main__.py` prints its port."""
    process = subprocess.Popen(
        [sys.executable, str(POLICIES / "__main__.py")],
        cwd=POLICIES,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(process.stdout.readline().strip())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=20)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.kill()
        process.wait(timeout=10)


def test_pack_serves_its_rules_to_the_engine(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "turnout"
    assert {p.name for p in info.policies} == {p.name for p in load_rules(POLICIES).POLICIES}


def _struct(values: dict) -> struct_pb2.Struct:
    properties = struct_pb2.Struct()
    properties.update(values)
    return properties


def engine_verdicts(analyzer, records) -> list[tuple[str, str]]:
    """Every diagnostic the real analyzer gives: Analyze per resource, then AnalyzeStack, as the engine calls them."""
    resources = [r for r in records if r.custom]
    by_urn = {r.urn: r for r in resources}
    found = []
    for record in resources:
        response = analyzer.Analyze(
            analyzer_pb2.AnalyzeRequest(
                type=record.type, properties=_struct(record.raw_inputs), urn=record.urn, name=record.name
            )
        )
        found += [(d.policyName, d.message) for d in response.diagnostics]
    stack = []
    for record in resources:
        provider = by_urn.get(record.provider)
        stack.append(
            analyzer_pb2.AnalyzerResource(
                type=record.type,
                properties=_struct(record.raw_outputs),
                urn=record.urn,
                name=record.name,
                provider=None
                if provider is None
                else analyzer_pb2.AnalyzerProviderResource(
                    type=provider.type, properties=_struct(provider.raw_outputs), urn=provider.urn, name=provider.name
                ),
                dependencies=[urn for urn in record.dependencies if urn in by_urn],
            )
        )
    response = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=stack))
    return found + [(d.policyName, d.message) for d in response.diagnostics]


@pytest.mark.parametrize(
    ("rule", "case"),
    [
        pytest.param(rule, case, id=f"{rule}-{case.kind}-{i}")
        for rule, cases in ALL_CASES.items()
        for i, case in enumerate(cases)
    ],
)
def test_offline_verdicts_match_the_real_analyzer(analyzer, rule, case):
    """Every rule's every case: the pack as the Pulumi CLI serves it reports exactly what `turnout plan` does."""
    run = run_function(case.program)
    offline = [(v.policy, v.message) for v in evaluate(run.records, POLICIES)]
    assert sorted(offline) == sorted(engine_verdicts(analyzer, run.records))


def test_stack_outputs_of_a_program_do_not_confuse_resource_rules():
    assert violations_for(lambda: pulumi.export("weights", [90, 20])) == []
