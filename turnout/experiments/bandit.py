"""Multi-armed bandit allocation: how much of an endpoint's traffic each version (arm) gets next.

The experiment agent calls `allocate` every `interval` with each arm's counts since the experiment
began and writes the result into the endpoint's routing object, so traffic moves toward versions
that earn more reward. Pure: no I/O, no clock; randomness only from the `rng` passed in.

- thompson: optimistic Thompson sampling (May et al., "Optimistic Bayesian sampling in
  contextual-bandit problems", JMLR 2012), in probability-matching form. Each arm's reward rate
  has a Beta posterior (Beta(1 + rewards, 1 + requests - rewards), a uniform prior; fractional
  rewards in [0, 1] are taken as fractional successes). An arm's value in a draw is the larger of
  its posterior draw and its posterior mean, and its share is the probability that its value is
  the highest, estimated from `THOMPSON_DRAWS` joint draws. Plain Thompson sampling keeps the
  draw as it is; the optimistic form only ever raises a draw that fell below the arm's own
  estimate, so an arm is still tried as long as its posterior leaves room for it to be the best,
  but a draw that is low by luck no longer hands its traffic to arms that are worse on the
  evidence. On benchmarks/bandit_regret.py's scenarios this cuts regret by up to a tenth against
  the plain form (README, "Experiments: the bandit strategy"). Routing a share equal to that
  probability is what per-request sampling does in expectation, which is why the batched form
  loses little to it.
- ucb1: the arm with the highest upper confidence bound (mean + sqrt(2 ln N / n)) takes all the
  traffic the floor leaves; arms that have never been tried come first.
- epsilon-greedy: the arm with the best mean takes 1 - epsilon, the others share epsilon (the
  exploration share goes to the other arms only, as Seldon Core's router does); untried arms count
  as best, so each is tried.

Every arm then keeps at least `min_weight`%, and the weights are whole percentages that sum to 100
(largest remainders, ties to the earlier arm).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

POLICIES = ("thompson", "ucb1", "epsilon-greedy")
THOMPSON_DRAWS = 2000
TOTAL = 100

Stats = Mapping[str, tuple[float, float]]
"""arm → (requests, reward_sum): cumulative since the experiment began."""


def allocate(policy: str, stats: Stats, *, min_weight: int, rng: random.Random, epsilon: float = 0.1) -> dict[str, int]:
    """Integer weights per arm, summing to 100, each at least `min_weight`, in the order of `stats`."""
    arms = list(stats)
    _check(policy, stats, min_weight, epsilon)
    if len(arms) == 1:
        return {arms[0]: TOTAL}
    if policy == "thompson":
        shares = _thompson(stats, rng)
    elif policy == "ucb1":
        shares = _ucb1(stats)
    else:
        shares = _epsilon_greedy(stats, epsilon)
    return _whole_percentages(arms, shares, min_weight)


def _check(policy: str, stats: Stats, min_weight: int, epsilon: float) -> None:
    if policy not in POLICIES:
        raise ValueError(f"policy {policy!r}: allowed: {', '.join(POLICIES)}")
    if not stats:
        raise ValueError("stats: no arms; allowed: at least one arm")
    if isinstance(min_weight, bool) or not isinstance(min_weight, int) or min_weight < 0:
        raise ValueError(f"min_weight {min_weight!r}: allowed: an integer from 0")
    if min_weight * len(stats) > TOTAL:
        raise ValueError(
            f"min_weight {min_weight} with {len(stats)} arms needs {min_weight * len(stats)}%; allowed: at most "
            f"{TOTAL // len(stats)} for {len(stats)} arms"
        )
    if not 0 <= epsilon <= 1:
        raise ValueError(f"epsilon {epsilon!r}: allowed: a number from 0 to 1")
    for arm, counts in stats.items():
        requests, rewards = counts
        if not (math.isfinite(requests) and math.isfinite(rewards)) or requests < 0 or rewards < 0:
            raise ValueError(f"stats[{arm!r}] = {counts!r}: allowed: non-negative finite (requests, reward_sum)")
        if rewards > requests:
            raise ValueError(
                f"stats[{arm!r}] = {counts!r}: reward_sum above requests; allowed: rewards in [0, 1] per request"
            )


def _mean(requests: float, rewards: float) -> float:
    return rewards / requests


def _thompson(stats: Stats, rng: random.Random) -> dict[str, float]:
    """P(arm's optimistic value is the highest) under independent Beta posteriors, by Monte Carlo; arms
    whose counts are identical are exchangeable, so they get exactly the same share (no data at all: an
    even split)."""
    arms = list(stats)
    posteriors = {arm: (1.0 + rewards, 1.0 + requests - rewards) for arm, (requests, rewards) in stats.items()}
    means = {arm: a / (a + b) for arm, (a, b) in posteriors.items()}
    wins = dict.fromkeys(arms, 0.0)
    for _ in range(THOMPSON_DRAWS):
        values = {arm: max(rng.betavariate(a, b), means[arm]) for arm, (a, b) in posteriors.items()}
        best = max(values.values())
        # Arms whose draws both fell below the same mean tie at it: they share the win.
        leaders = [arm for arm, value in values.items() if value == best]
        for arm in leaders:
            wins[arm] += 1.0 / len(leaders)
    groups: dict[tuple[float, float], list[str]] = {}
    for arm in arms:
        groups.setdefault(tuple(stats[arm]), []).append(arm)
    shares = {}
    for members in groups.values():
        pooled = sum(wins[arm] for arm in members) / len(members)
        shares.update({arm: pooled / THOMPSON_DRAWS for arm in members})
    return shares


def _ucb1(stats: Stats) -> dict[str, float]:
    untried = [arm for arm, (requests, _) in stats.items() if requests == 0]
    if untried:
        return {arm: (1.0 / len(untried) if arm in untried else 0.0) for arm in stats}
    # Fractional counts (rates from Prometheus' increase()) can total below one request: no bonus then.
    total = max(sum(requests for requests, _ in stats.values()), 1.0)
    bounds = {
        arm: _mean(requests, rewards) + math.sqrt(2.0 * math.log(total) / requests)
        for arm, (requests, rewards) in stats.items()
    }
    return _split_among_best(bounds)


def _epsilon_greedy(stats: Stats, epsilon: float) -> dict[str, float]:
    """The greedy arm takes 1 - epsilon and the other arms share epsilon."""
    estimates = {
        arm: (math.inf if requests == 0 else _mean(requests, rewards)) for arm, (requests, rewards) in stats.items()
    }
    greedy = _split_among_best(estimates)
    others = len(stats) - 1
    return {arm: (1 - epsilon) * share + epsilon * (1 - share) / others for arm, share in greedy.items()}


def _split_among_best(scores: Mapping[str, float]) -> dict[str, float]:
    best = max(scores.values())
    leaders = [arm for arm, score in scores.items() if score == best]
    return {arm: (1.0 / len(leaders) if arm in leaders else 0.0) for arm in scores}


def _whole_percentages(arms: list[str], shares: Mapping[str, float], min_weight: int) -> dict[str, int]:
    """min_weight for each arm, then the rest in proportion to `shares`, rounded by largest remainder."""
    free = TOTAL - min_weight * len(arms)
    total_share = sum(shares.values())
    exact = {arm: free * (shares[arm] / total_share if total_share else 1 / len(arms)) for arm in arms}
    weights = {arm: min_weight + math.floor(exact[arm]) for arm in arms}
    left = TOTAL - sum(weights.values())
    order = sorted(arms, key=lambda arm: (-(exact[arm] - math.floor(exact[arm])), arms.index(arm)))
    for arm in order[:left]:
        weights[arm] += 1
    return weights
