"""The canary benchmark's two analyses behave as their sources say (a tiny instance): Flagger's threshold
emulation rolls back after `threshold` failed checks, counts "no values found" as one, and promotes after five
passed checks; the sequential judge never fails a check for want of traffic and rolls a 20x canary back first."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.conftest import REPO

np = pytest.importorskip("numpy", reason="the benchmark's simulations need numpy (the dev extra installs it)")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("canary_judge", REPO / "benchmarks" / "canary_judge.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["canary_judge"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_flagger_rolls_back_after_threshold_failed_checks(bench):
    rng = np.random.default_rng(1)
    outcome = bench.rollout("flagger", 100.0, 20.0, rng, max_ticks=100)  # 2% errors: every check fails
    assert (outcome.decision, outcome.minutes) == ("rollback", 6)  # five failures at 10%, rolled back on the sixth
    assert 3000 < outcome.canary_requests < 4200  # six intervals at 10% of 100 rps
    good = bench.rollout("flagger", 100.0, 1.0, rng, max_ticks=100)
    assert (good.decision, good.minutes) == ("promote", 5)  # 10, 20, 30, 40, 50% passed, then promoted


def test_no_values_found_is_a_failed_check_for_flagger_only(bench):
    rng = np.random.default_rng(2)
    silent = bench.rollout("flagger", 1e-9, 1.0, rng, max_ticks=100)
    assert (silent.decision, silent.minutes, silent.canary_requests) == ("rollback", 6, 0)
    held = bench.rollout("sequential", 1e-9, 1.0, rng, max_ticks=100)
    assert (held.decision, held.canary_requests) == ("held", 0), "no traffic: never a rollback, nor a promotion"


def test_the_judge_catches_what_flagger_lets_through(bench):
    caught = bench.cell("sequential", 100.0, "5x", runs=20, seed=3, max_ticks=120)
    missed = bench.cell("flagger", 100.0, "5x", runs=20, seed=3, max_ticks=120)
    assert caught.rolled_back >= 0.9 and missed.promoted == 1.0
    good = bench.cell("sequential", 100.0, "good", runs=20, seed=4, max_ticks=120)
    assert good.rolled_back == 0 and good.promoted >= 0.9
    (row,) = bench.ab_coverage(runs=5, seed=1, requests=500)[:1]
    assert row["rateCoverage"] >= 0.8 and row["differenceCoverage"] >= 0.8
