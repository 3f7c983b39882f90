"""The regret benchmark runs (a tiny instance): each simulated policy learns, and the table reports them all."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.conftest import REPO

np = pytest.importorskip("numpy", reason="the benchmark's simulations need numpy (the dev extra installs it)")


@pytest.fixture(scope="module")
def regret():
    spec = importlib.util.spec_from_file_location("bandit_regret", REPO / "benchmarks" / "bandit_regret.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bandit_regret"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_every_learner_beats_a_uniform_split(regret):
    rates = (0.4, 0.4, 0.4, 0.4, 0.5)
    uniform = regret.uniform(rates, 20_000)
    assert uniform == pytest.approx(20_000 * 0.08)
    assert regret.turnout_batched(rates, 20_000, 1_000, seed=1) < uniform / 3
    assert regret.seldon_epsilon_greedy(rates, 20_000, seeds=[1, 2, 3, 4]).mean() < uniform / 2
    assert regret.thompson_immediate(rates, 20_000, seeds=[1, 2, 3, 4]).mean() < uniform / 3


def test_missing_outcomes_are_read_as_the_setting_says(regret):
    """`unknown`: trials are the outcomes reported; `zero`: every request is a trial."""
    rates = (0.1, 0.3)
    complete = regret.turnout_batched(rates, 10_000, 500, seed=3)
    for unreported in ("zero", "unknown"):
        lost = regret.turnout_batched(rates, 10_000, 500, seed=3, missing=0.2, unreported=unreported)
        assert 0 < lost < 10_000 * 0.1  # still learns: far below a uniform split's 1,000
    assert complete > 0


def _row(regret, epsilon_greedy: tuple[float, ...]):
    runs = {
        "epsilon_greedy": epsilon_greedy,
        "immediate": (40.0, 40.0),
        "batched": (30.0, 50.0),
        "missing": (50.0, 50.0),
        "missing_outcomes": (40.0, 50.0),
        "floor5": (120.0, 120.0),
    }
    return regret.Row("2 arms (0.10, 0.12)", 1000.0, runs)


def test_the_table_names_each_target_with_its_interval(regret):
    row = _row(regret, (100.0, 300.0))
    assert row.ratios()["versus_epsilon_greedy"] == pytest.approx(0.2)
    assert row.failures() == []
    low, high = row.intervals()["versus_epsilon_greedy"]
    assert 30 / 300 <= low < 0.2 < high <= 50 / 100  # resampled runs: between the extremes a run allows
    text = regret.table([row], runs=2, requests=100, batch=10)
    assert f"0.20 ({low:.2f}–{high:.2f}; ≤ 0.5)" in text and "Seldon" in text
    worse = _row(regret, (50.0, 50.0))
    assert any("versus epsilon-greedy" in problem for problem in worse.failures())


def test_policies_of_a_run_meet_the_same_outcomes(regret):
    """Common random numbers: the outcome table depends on the run's seed only, and a run with no outcome
    missing is the same run whatever the missing share's setting says."""
    rates = (0.1, 0.12)
    first, again = regret.outcomes(rates, 1_000, seed=5), regret.outcomes(rates, 1_000, seed=5)
    assert (first == again).all() and not (first == regret.outcomes(rates, 1_000, seed=6)).all()
    assert abs(first[1].mean() - 0.12) < 0.05
    complete = regret.turnout_batched(rates, 5_000, 500, seed=5)
    assert regret.turnout_batched(rates, 5_000, 500, seed=5, unreported="unknown") == complete
