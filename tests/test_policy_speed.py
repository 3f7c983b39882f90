"""The whole policy pack on the largest bundled stack takes under a second (median), run the way
`turnout plan` runs it; benchmarks/policy_speed.py prints the figures and where the time goes."""

from __future__ import annotations

import importlib.util
import statistics

import pytest

from tests.conftest import REPO
from turnout.offline.policy import evaluate, pack_policy_names

pytestmark = pytest.mark.slow

_spec = importlib.util.spec_from_file_location("policy_speed", REPO / "benchmarks" / "policy_speed.py")
policy_speed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(policy_speed)


@pytest.fixture(scope="module")
def plans():
    return policy_speed.bundled_plans()


def test_the_benchmark_times_the_largest_bundled_stack(plans):
    files = (REPO / "environments").glob("Pulumi.*.yaml")
    stacks = sorted(f.name.removeprefix("Pulumi.").removesuffix(".yaml") for f in files)
    assert [plan.stack for plan in plans] == stacks
    plan = policy_speed.largest(plans)
    assert all(len(plan.records) >= len(other.records) for other in plans)
    # The timed call is the real one: the same verdicts `turnout plan` wrote for this stack.
    assert evaluate(plan.records, REPO / "policies", tier=plan.outputs.get("tier")) == plan.violations


def test_the_whole_pack_takes_under_a_second_on_the_largest_bundled_stack(plans):
    plan = policy_speed.largest(plans)
    assert len(pack_policy_names(REPO / "policies")) >= 5
    times = policy_speed.time_pack(plan, repeat=15)
    median = statistics.median(times)
    assert median < policy_speed.TARGET_S, (
        f"{plan.stack} ({len(plan.records)} resources): median {median:.3f}s over {len(times)} runs"
    )
