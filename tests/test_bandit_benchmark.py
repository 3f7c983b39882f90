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
    assert regret.seldon_epsilon_greedy(rates, 20_000, runs=4, seed=1).mean() < uniform / 2
    assert regret.thompson_immediate(rates, 20_000, runs=4, seed=1).mean() < uniform / 3


def test_missing_outcomes_are_read_as_the_setting_says(regret):
    """`unknown`: trials are the outcomes reported; `zero`: every request is a trial."""
    rates = (0.1, 0.3)
    complete = regret.turnout_batched(rates, 10_000, 500, seed=3)
    for unreported in ("zero", "unknown"):
        lost = regret.turnout_batched(rates, 10_000, 500, seed=3, missing=0.2, unreported=unreported)
        assert 0 < lost < 10_000 * 0.1  # still learns: far below a uniform split's 1,000
    assert complete > 0


def test_the_table_names_each_target(regret):
    row = regret.Row("2 arms (0.10, 0.12)", 1000.0, 200.0, 40.0, 40.0, 50.0, 45.0, 120.0)
    assert row.failures() == []
    text = regret.table([row], runs=1, requests=100, batch=10)
    assert "0.20 (≤ 0.5)" in text and "Seldon" in text
    worse = regret.Row("2 arms (0.10, 0.12)", 1000.0, 50.0, 40.0, 40.0, 50.0, 60.0, 120.0)
    assert any("versus epsilon-greedy" in problem for problem in worse.failures())
