"""judge.SequentialJudge (CONTRACT §4): a sequential test of the canary's error rate against the primary's."""

from __future__ import annotations

import random

import pytest

from turnout.experiments import judge


def simulate(primary_rate, canary_rate, *, rps=100.0, intervals=30, weight=0.1, seed=0, **options):
    """An analysis at `rps` requests per second, one judge call a minute, the canary taking `weight`."""
    rng = random.Random(seed)
    sequential = judge.SequentialJudge(**options)
    primary = [0, 0]
    canary = [0, 0]
    for interval in range(1, intervals + 1):
        requests = int(rps * 60)
        to_canary = sum(rng.random() < weight for _ in range(requests))
        primary[0] += requests - to_canary
        canary[0] += to_canary
        primary[1] += sum(rng.random() < primary_rate for _ in range(requests - to_canary))
        canary[1] += sum(rng.random() < canary_rate for _ in range(to_canary))
        verdict = sequential.update(primary=tuple(primary), canary=tuple(canary))
        if verdict != "continue":
            return verdict, interval
    return "continue", intervals


def test_a_much_worse_canary_is_rolled_back_at_once():
    assert simulate(0.001, 0.02) == ("rollback", 1)


def test_a_five_times_worse_canary_is_rolled_back_within_minutes():
    verdict, interval = simulate(0.002, 0.01, intervals=10)
    assert verdict == "rollback" and interval <= 5


def test_a_canary_as_good_as_the_primary_is_promoted_not_rolled_back():
    verdict, _ = simulate(0.01, 0.01, weight=0.5, intervals=60)
    assert verdict == "promote"


def test_false_rollbacks_stay_below_alpha_under_continuous_monitoring():
    rollbacks = sum(
        simulate(0.01, 0.01, rps=20, intervals=40, seed=seed, min_requests=10**9)[0] == "rollback"
        for seed in range(200)
    )
    assert rollbacks / 200 <= 0.05


def test_no_traffic_and_no_errors_mean_continue():
    sequential = judge.SequentialJudge()
    assert sequential.update(primary=(0, 0), canary=(0, 0)) == "continue"
    assert sequential.update(primary=(1000, 0), canary=(100, 0)) == "continue"
    assert sequential.update(primary=(1000, 0), canary=(100, 0)) == "continue"


def test_no_errors_anywhere_promotes_after_the_minimum_evidence():
    sequential = judge.SequentialJudge(min_requests=500)
    assert sequential.update(primary=(5000, 0), canary=(499, 0)) == "continue"
    assert sequential.update(primary=(5100, 0), canary=(500, 0)) == "promote"


def test_promotion_waits_for_the_minimum_canary_requests():
    sequential = judge.SequentialJudge(min_requests=10_000)
    verdict = sequential.update(primary=(100_000, 1_000), canary=(5_000, 10))
    assert verdict == "continue"
    assert sequential.evidence()["promotion_ratio"] >= 20


def test_a_rollback_is_final():
    sequential = judge.SequentialJudge()
    assert sequential.update(primary=(6000, 5), canary=(600, 30)) == "rollback"
    assert sequential.update(primary=(60_000, 50), canary=(6_000, 6)) == "rollback"


def test_an_interval_where_only_one_version_served_is_no_evidence():
    sequential = judge.SequentialJudge()
    sequential.update(primary=(1000, 50), canary=(0, 0))
    assert sequential.evidence()["regression_ratio"] == pytest.approx(1.0)


def test_a_small_regression_is_promoted_unless_the_margin_says_otherwise():
    """1.3x the errors: below the default promote_margin (2x), so it may be promoted."""
    assert simulate(0.01, 0.013, rps=200, intervals=60, weight=0.5)[0] == "promote"
    never = {"min_requests": 10**9}
    assert simulate(0.01, 0.013, rps=200, intervals=60, weight=0.5, **never)[0] == "rollback"


def test_tolerance_accepts_a_small_regression():
    never = {"min_requests": 10**9}
    strict = simulate(0.01, 0.013, rps=200, intervals=60, weight=0.5, **never)
    tolerant = simulate(0.01, 0.013, rps=200, intervals=60, weight=0.5, tolerance=1.5, **never)
    assert strict[0] == "rollback"
    assert tolerant[0] != "rollback"


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        ({"primary": (10, 11), "canary": (1, 0)}, "more errors than requests"),
        ({"primary": (10, -1), "canary": (1, 0)}, "non-negative integers"),
        ({"primary": (10.5, 1), "canary": (1, 0)}, "non-negative integers"),
        ({"primary": 10, "canary": (1, 0)}, "(requests, errors)"),
    ],
)
def test_bad_counts_say_what_is_allowed(call, fragment):
    with pytest.raises(ValueError, match="allowed") as caught:
        judge.SequentialJudge().update(**call)
    assert fragment in str(caught.value)


def test_counts_that_go_down_are_refused():
    sequential = judge.SequentialJudge()
    sequential.update(primary=(100, 1), canary=(10, 0))
    with pytest.raises(ValueError, match="counts went down"):
        sequential.update(primary=(50, 1), canary=(10, 0))


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"alpha": 0}, "alpha 0"),
        ({"tolerance": 0}, "tolerance 0"),
        ({"promote_margin": 1.0}, "promote_margin 1.0"),
        ({"min_requests": 0}, "min_requests 0"),
    ],
)
def test_bad_options_say_what_is_allowed(options, fragment):
    with pytest.raises(ValueError, match=fragment):
        judge.SequentialJudge(**options)


def test_the_rollback_mixture_leans_toward_large_regressions_and_stays_a_mixture():
    # Four of an interval's five errors on a canary taking 10% of the requests (10 rps, 1 minute): a large
    # regression. With the grid weighted equally the mixture is 169 (< 1/alpha = 200); weighted in proportion
    # to the multiple's square it is 570, a rollback one interval sooner.
    sequential = judge.SequentialJudge(alpha=0.005)
    assert sequential.update(primary=(540, 1), canary=(60, 4)) == "rollback"
    assert 500 < sequential.evidence()["regression_ratio"] < 650
    # Still a mixture (weights that sum to 1), so Ville's inequality bounds false rollbacks by alpha.
    assert sum(judge.REGRESSION_WEIGHTS) == pytest.approx(1)
    assert all(w > 0 for w in judge.REGRESSION_WEIGHTS)
    assert list(judge.REGRESSION_WEIGHTS) == sorted(judge.REGRESSION_WEIGHTS)


def test_the_default_tolerance_leaves_a_canary_as_good_as_the_primary_inside_the_null():
    # The same error rate on both: tested against 1.05 (the default) the evidence for a regression is weaker
    # than against 1.0, so good canaries are rolled back less often than alpha; 1.0 stays available.
    default, strict = judge.SequentialJudge(), judge.SequentialJudge(tolerance=1.0)
    for sequential in (default, strict):
        sequential.update(primary=(50000, 100), canary=(50000, 100))
    assert default.tolerance == 1.05
    assert default.evidence()["regression_ratio"] < 0.8 * strict.evidence()["regression_ratio"]
