"""bandit-min-weight: its passing, failing and missing-property cases (run by tests/test_policies.py with
every rule's, against the offline evaluator and the real analyzer)."""

from __future__ import annotations

import pulumi_kubernetes as k8s

from tests.policy_cases import fails, missing, passes


def learned_vs(*weights, floor: str | None = "5", owned: bool = True):
    annotations = {}
    if owned:
        annotations["turnout.dev/weights-owner"] = "experiment-agent"
    if floor is not None:
        annotations["turnout.dev/bandit-min-weight"] = floor
    route = [{"destination": {"host": "m", "subset": f"v{i}"}, "weight": w} for i, w in enumerate(weights, start=1)]
    return lambda: k8s.apiextensions.CustomResource(
        "vs",
        api_version="networking.istio.io/v1",
        kind="VirtualService",
        metadata={
            "name": "m",
            "namespace": "models",
            "labels": {"turnout.dev/tier": "prod"},
            "annotations": annotations,
        },
        spec={"hosts": ["m"], "http": [{"name": "default", "route": route}]},
    )


CASES = {
    "bandit-min-weight": [
        passes(learned_vs(50, 50)),
        passes(learned_vs(100, 0, floor="0", owned=False)),  # not learned: a plain split may drop a version
        fails(learned_vs(50, 50, floor="0"), "models/m: minWeight 0 lets the agent starve an arm; keep it above 0."),
        fails(learned_vs(97, 3), "models/m: arm v2 starts at 3%, below minWeight 5%."),
        missing(
            learned_vs(50, 50, floor=None),
            "models/m: its weights are learned but it declares no minWeight (turnout.dev/bandit-min-weight).",
        ),
    ],
}


def test_the_floor_is_mandatory_in_prod_and_advice_below():
    from tests.policy_cases import POLICIES
    from turnout.offline.policy import evaluate
    from turnout.offline.runtime import run_function

    records = run_function(learned_vs(50, 50, floor="0")).records
    for tier, level in (("prod", "mandatory"), ("dev", "advisory")):
        found = [v for v in evaluate(records, POLICIES, tier=tier) if v.policy == "bandit-min-weight"]
        assert [v.level for v in found] == [level], tier
