"""The policy pack: each rule passes, fails and tolerates missing properties; the offline evaluator
agrees with the real analyzer that `pulumi preview --policy-pack policies` talks to."""

from __future__ import annotations

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
from turnout.offline.policy import evaluate, load_rules
from turnout.offline.runtime import run_function

POLICIES = REPO / "policies"
CONTRACT_NAMES = {"traffic-weights-sum-to-100"}  # grows as the pack does (CONTRACT §3)


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


def violations_for(program):
    return evaluate(run_function(program).records, POLICIES)


FIXTURES = {
    # rule: (passing, failing, missing-property)
    "traffic-weights-sum-to-100": [
        (virtual_service(90, 10), []),
        (virtual_service(None), []),  # one unweighted destination takes 100% by Istio's rules
        (knative_service(75, 25), []),
        (virtual_service(90, 20), ["models/m: route primary weights sum to 110, not 100."]),
        (virtual_service(60, None), ["models/m: route primary weights sum to 60, not 100."]),
        (knative_service(50, 40), ["models/m: traffic percents sum to 90, not 100."]),
        (virtual_service(http=False), []),
        (knative_service(), []),
    ],
}


@pytest.mark.parametrize(
    ("rule", "program", "expected"),
    [(rule, program, expected) for rule, cases in FIXTURES.items() for program, expected in cases],
)
def test_rule_fixtures(rule, program, expected):
    found = [v for v in violations_for(program) if v.policy == rule]
    assert [v.message.splitlines()[-1] for v in found] == expected
    assert all(v.level == "mandatory" for v in found)


def test_every_rule_has_a_failing_fixture():
    """A rule that cannot fail is a hidden bug: each must fail on at least one of its fixtures."""
    names = {p.name for p in load_rules(POLICIES).POLICIES}
    assert names >= CONTRACT_NAMES
    for name in names:
        assert any(expected for _, expected in FIXTURES.get(name, [])), f"{name} has no failing fixture"


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


@pytest.mark.parametrize("program", [case[0] for case in FIXTURES["traffic-weights-sum-to-100"]])
def test_offline_verdicts_match_the_real_analyzer(analyzer, program):
    run = run_function(program)
    offline = [(v.policy, v.message) for v in evaluate(run.records, POLICIES)]
    engine = []
    for record in (r for r in run.records if r.custom):
        properties = struct_pb2.Struct()
        properties.update(record.raw_inputs)
        response = analyzer.Analyze(
            analyzer_pb2.AnalyzeRequest(type=record.type, properties=properties, urn=record.urn, name=record.name)
        )
        engine += [(d.policyName, d.message) for d in response.diagnostics]
    assert sorted(offline) == sorted(engine)


def test_stack_outputs_of_a_program_do_not_confuse_resource_rules():
    assert violations_for(lambda: pulumi.export("weights", [90, 20])) == []
