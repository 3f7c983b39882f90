"""bandit.allocate (CONTRACT §4): whole-percentage weights from each arm's rewards."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from turnout.experiments import bandit

ARMS = st.lists(st.sampled_from("abcdefghij"), min_size=1, max_size=10, unique=True)


@st.composite
def experiments(draw):
    arms = draw(ARMS)
    stats = {}
    for arm in arms:
        requests = draw(st.one_of(st.integers(0, 10**12), st.floats(0, 1e6, allow_nan=False)))
        rewards = draw(st.floats(0, 1)) * requests
        stats[arm] = (requests, rewards)
    min_weight = draw(st.integers(0, 100 // len(arms)))
    return stats, min_weight


@settings(max_examples=150, deadline=None)
@given(experiments(), st.sampled_from(bandit.POLICIES), st.integers(0, 2**32), st.floats(0, 1))
def test_weights_are_whole_percentages_summing_to_100_above_the_floor(experiment, policy, seed, epsilon):
    stats, min_weight = experiment
    weights = bandit.allocate(policy, stats, min_weight=min_weight, rng=random.Random(seed), epsilon=epsilon)
    assert list(weights) == list(stats)
    assert sum(weights.values()) == 100
    assert all(isinstance(w, int) and w >= min_weight for w in weights.values())


@settings(max_examples=40, deadline=None)
@given(experiments(), st.sampled_from(bandit.POLICIES), st.integers(0, 2**32))
def test_a_seeded_rng_gives_the_same_weights(experiment, policy, seed):
    stats, min_weight = experiment
    first = bandit.allocate(policy, stats, min_weight=min_weight, rng=random.Random(seed))
    assert bandit.allocate(policy, stats, min_weight=min_weight, rng=random.Random(seed)) == first


@pytest.mark.parametrize("policy", bandit.POLICIES)
@pytest.mark.parametrize("arms", [2, 3, 7])
def test_no_data_splits_evenly(policy, arms):
    stats = {f"v{i}": (0, 0) for i in range(arms)}
    weights = bandit.allocate(policy, stats, min_weight=0, rng=random.Random(1))
    assert max(weights.values()) - min(weights.values()) <= 1


@pytest.mark.parametrize("policy", bandit.POLICIES)
def test_identical_evidence_splits_evenly(policy):
    stats = {"v1": (5000, 600), "v2": (5000, 600)}
    assert bandit.allocate(policy, stats, min_weight=5, rng=random.Random(3)) == {"v1": 50, "v2": 50}


@pytest.mark.parametrize("policy", bandit.POLICIES)
def test_an_arm_without_data_is_explored(policy):
    stats = {"v1": (20_000, 2_000), "v2": (20_000, 2_400), "new": (0, 0)}
    weights = bandit.allocate(policy, stats, min_weight=0, rng=random.Random(7))
    assert weights["new"] >= 5, weights


@pytest.mark.parametrize("policy", bandit.POLICIES)
def test_the_best_arm_gets_the_most_and_the_floor_is_kept(policy):
    stats = {"v1": (10_000, 1_000), "v2": (10_000, 1_500), "v3": (10_000, 900)}
    weights = bandit.allocate(policy, stats, min_weight=5, rng=random.Random(11))
    assert max(weights, key=weights.get) == "v2"
    # The floor, plus the exploration share epsilon-greedy spreads over the other arms (85% x 0.1 / 2).
    assert min(weights.values()) == (9 if policy == "epsilon-greedy" else 5)


def test_the_best_arms_weight_grows_as_its_evidence_grows():
    """Same true rates (12% against 10%), ten times the traffic each step: Thompson grows more certain."""
    rng = random.Random(5)
    previous = 0
    for requests in (100, 1_000, 10_000, 100_000):
        stats = {"a": (requests, 0.10 * requests), "b": (requests, 0.12 * requests)}
        weight = bandit.allocate("thompson", stats, min_weight=0, rng=rng)["b"]
        assert weight >= previous
        previous = weight
    assert previous == 100


def test_fractional_rewards_count_as_fractional_successes():
    """Rewards in [0, 1] (a rating of 0.7, a conversion value): the mean reward decides."""
    stats = {"a": (1000, 1000 * 0.55), "b": (1000, 1000 * 0.70)}
    weights = bandit.allocate("thompson", stats, min_weight=0, rng=random.Random(2))
    assert weights == {"a": 0, "b": 100}


def test_huge_counts_stay_finite_and_decisive():
    stats = {"a": (10**12, 10**11), "b": (10**12, 10**11 + 10**7)}
    weights = bandit.allocate("thompson", stats, min_weight=1, rng=random.Random(9))
    assert weights == {"a": 1, "b": 99}
    assert bandit.allocate("ucb1", stats, min_weight=1, rng=random.Random(9)) == {"a": 1, "b": 99}


def _beta_density(a: float, b: float):
    scale = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    return lambda x: math.exp(scale + (a - 1) * math.log(x) + (b - 1) * math.log1p(-x))


def _challenger_shares(leader: tuple[int, int], challenger: tuple[int, int], steps: int = 20_000):
    """The challenger's chance to be chosen over the leader, by quadrature rather than sampling: plain
    Thompson sampling, P(its draw > the leader's draw); optimistic, where each draw is raised to its own
    posterior mean, P(its draw > max(the leader's draw, the leader's mean)), as its mean is the lower."""
    (a_requests, a_rewards), (b_requests, b_rewards) = leader, challenger
    a, b = (1 + a_rewards, 1 + a_requests - a_rewards), (1 + b_rewards, 1 + b_requests - b_rewards)
    leader_density, challenger_density = _beta_density(*a), _beta_density(*b)
    leader_mean = a[0] / sum(a)
    assert b[0] / sum(b) < leader_mean, "the optimistic integral below holds for a challenger with the lower mean"
    width, below, plain, optimistic = 1 / steps, 0.0, 0.0, 0.0
    for step in range(steps):
        x = (step + 0.5) * width
        leader_below = below + leader_density(x) * width / 2  # the leader's CDF at the midpoint
        plain += challenger_density(x) * leader_below * width
        if x > leader_mean:
            optimistic += challenger_density(x) * leader_below * width
        below += leader_density(x) * width
    return plain, optimistic


@pytest.mark.parametrize(("leader", "challenger"), [((4, 2), (4, 1)), ((10, 5), (10, 3)), ((40, 20), (8, 3))])
def test_thompson_shares_are_the_optimistic_chances_of_being_best(leader, challenger):
    """Each arm's posterior draw is raised to its posterior mean (optimistic Thompson sampling): the
    challenger's share is its chance to beat both the leader's draw and the leader's mean, well below
    its chance to beat the leader's draw alone."""
    plain, optimistic = _challenger_shares(leader, challenger)
    assert plain - optimistic > 0.06  # the two forms are told apart
    weights = bandit.allocate("thompson", {"a": leader, "b": challenger}, min_weight=0, rng=random.Random(3))
    assert abs(weights["b"] - 100 * optimistic) <= 3, (weights, plain, optimistic)  # 2,000 draws: ~1 point


def test_arms_that_tie_at_the_same_mean_share_the_draw_whatever_their_order():
    """Two arms with the same posterior mean and different evidence: whenever both draws fall below
    that mean, both values are the mean itself, a tie that a quarter of the draws meet. The tie is
    shared, so an arm's weight does not depend on whether it comes first."""
    stats = {"few": (10, 5), "many": (1_000, 500)}
    forward = bandit.allocate("thompson", stats, min_weight=0, rng=random.Random(1))
    backward = bandit.allocate("thompson", dict(reversed(stats.items())), min_weight=0, rng=random.Random(1))
    assert abs(forward["few"] - backward["few"]) <= 4, (forward, backward)


def test_epsilon_greedy_explores_only_the_other_arms():
    stats = {"a": (1000, 100), "b": (1000, 200), "c": (1000, 150)}
    weights = bandit.allocate("epsilon-greedy", stats, min_weight=0, rng=random.Random(0), epsilon=0.2)
    assert weights == {"a": 10, "b": 80, "c": 10}


def test_ucb1_favours_the_less_tried_arm_with_the_same_mean():
    stats = {"a": (100, 10), "b": (10_000, 1_000)}
    assert bandit.allocate("ucb1", stats, min_weight=0, rng=random.Random(0)) == {"a": 100, "b": 0}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"policy": "softmax"}, "policy 'softmax'"),
        ({"stats": {}}, "no arms"),
        ({"min_weight": 40}, "at most 33 for 3 arms"),
        ({"min_weight": -1}, "min_weight -1"),
        ({"stats": {"a": (10, 11), "b": (1, 0), "c": (0, 0)}}, "reward_sum above requests"),
        ({"stats": {"a": (-1, 0), "b": (1, 0), "c": (0, 0)}}, "non-negative"),
        ({"stats": {"a": (float("nan"), 0), "b": (1, 0), "c": (0, 0)}}, "finite"),
        ({"epsilon": 1.5}, "epsilon 1.5"),
    ],
)
def test_bad_arguments_say_what_is_allowed(args, fragment):
    call = {"policy": "thompson", "stats": {"a": (1, 0), "b": (1, 1), "c": (0, 0)}, "min_weight": 5, **args}
    with pytest.raises(ValueError, match="allowed") as caught:
        bandit.allocate(
            call["policy"],
            call["stats"],
            min_weight=call["min_weight"],
            rng=random.Random(0),
            epsilon=call.get("epsilon", 0.1),
        )
    assert fragment in str(caught.value)


def test_one_arm_takes_everything():
    assert bandit.allocate("thompson", {"only": (10, 3)}, min_weight=5, rng=random.Random(0)) == {"only": 100}


def test_ucb1_with_less_than_one_request_in_all():
    """Request counts read from Prometheus' increase() are fractional; a tiny total must not break the bound."""
    weights = bandit.allocate("ucb1", {"a": (0.5, 0.0), "b": (0.25, 0.0)}, min_weight=0, rng=random.Random(0))
    assert weights == {"a": 50, "b": 50}
