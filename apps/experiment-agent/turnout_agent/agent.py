"""The agent: feedback into the ledger, and, on the leader, each interval's counts into weights.

A round (leader only): read the experiment state; add what the mesh counted since the state's
series values; gather every replica's cumulative feedback totals (a replica that does not answer
keeps its last known totals); allocate; write the weights into the VirtualService; write the state.
The state is written last, with its resourceVersion: a leader that dies mid-round leaves the state
of the round before, and its successor recounts from there, so nothing is lost or counted twice.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
import urllib.request
from typing import Any

from turnout.experiments import bandit
from turnout_agent.kube import ConflictError, Kube
from turnout_agent.ledger import Ledger
from turnout_agent.mesh import MeshError, Prometheus, grow
from turnout_agent.settings import Settings

log = logging.getLogger("turnout_agent")

STATE_VERSION = 1
HISTORY = 100
SERIES_FORGOTTEN_S = 3600  # a series unseen this long (its pod gone) is dropped from the state
CI_ALPHA = 0.05
CI_RHO = 25.0  # the normal mixture's precision: tightest near 100 trials (sigma^2 n = 25)


def confidence_interval(rewards: float, trials: float, alpha: float = CI_ALPHA) -> tuple[float, float]:
    """An always-valid (1 - alpha) interval for the mean reward: Robbins' two-sided normal mixture for
    rewards in [0, 1] (sub-Gaussian, sigma = 1/2), which holds however often it is looked at."""
    if trials <= 0:
        return 0.0, 1.0
    variance = trials / 4
    radius = math.sqrt((variance + CI_RHO) * math.log((variance + CI_RHO) / (CI_RHO * alpha**2))) / trials
    mean = rewards / trials
    return max(0.0, mean - radius), min(1.0, mean + radius)


DIFFERENCE_TAU2 = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
"""The normal mixtures' variances over differences of rates (effects from about 0.3 to 30 percentage points),
mixed with equal weights: an average of test martingales is one, so the mixture is as valid as each."""


def _difference_terms(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float] | None:
    """(mean(b) - mean(a), its variance V), with each rate's variance bounded by mean (1 - mean) as for rewards
    in [0, 1] (floored at one success in n + 1, so an arm without any success still has some)."""
    (n_a, r_a), (n_b, r_b) = a, b
    if n_a <= 0 or n_b <= 0:
        return None
    mean_a, mean_b = r_a / n_a, r_b / n_b
    var_a = max(mean_a * (1 - mean_a), 1 / (n_a + 1))
    var_b = max(mean_b * (1 - mean_b), 1 / (n_b + 1))
    return mean_b - mean_a, var_a / n_a + var_b / n_b


def difference_interval(a: tuple[float, float], b: tuple[float, float], alpha: float = CI_ALPHA) -> tuple[float, float]:
    """An always-valid (1 - alpha) interval for mean(b) - mean(a): for each mixture variance, the mixture SPRT's
    (Johari et al., "Always valid inference", 2017) interval at alpha / (number of variances), intersected (the
    union bound keeps it valid). Valid under continuous monitoring as the normal approximation of the difference
    holds (asymptotically; the benchmark measures its coverage)."""
    terms = _difference_terms(a, b)
    if terms is None:
        return -1.0, 1.0
    difference, variance = terms
    share = alpha / len(DIFFERENCE_TAU2)
    radius = min(
        math.sqrt(
            variance * (variance + tau2) / tau2 * (2 * math.log(1 / share) + math.log((variance + tau2) / variance))
        )
        for tau2 in DIFFERENCE_TAU2
    )
    return max(-1.0, difference - radius), min(1.0, difference + radius)


def difference_p_value(a: tuple[float, float], b: tuple[float, float]) -> float:
    """The always-valid p-value of "same mean", 1 / the mixture likelihood ratio at the current counts: under
    the null the chance that it ever falls to alpha is at most alpha, so a team may stop the first time it does."""
    terms = _difference_terms(a, b)
    if terms is None:
        return 1.0
    difference, variance = terms
    logs = [
        0.5 * math.log(variance / (variance + tau2)) + tau2 * difference**2 / (2 * variance * (variance + tau2))
        for tau2 in DIFFERENCE_TAU2
    ]
    top = max(logs)
    log_ratio = top + math.log(sum(math.exp(x - top) for x in logs) / len(logs))
    return 1.0 if log_ratio <= 0 else math.exp(-log_ratio)


def comparisons(stats: dict[str, tuple[float, float]], arms: tuple[str, ...]) -> list[dict[str, Any]]:
    """Each version against the first (the control): the difference of rates, its always-valid interval and
    p-value, and whether a team may stop (p <= 1 - confidence)."""
    if not arms:
        return []
    control = arms[0]
    found = []
    for arm in arms[1:]:
        a, b = stats.get(control, (0.0, 0.0)), stats.get(arm, (0.0, 0.0))
        low, high = difference_interval(a, b)
        p_value = difference_p_value(a, b)
        found.append(
            {
                "version": arm,
                "baseline": control,
                "difference": (b[1] / b[0] - a[1] / a[0]) if a[0] and b[0] else None,
                "interval": [max(-1.0, low), min(1.0, high)],
                "pValue": p_value,
                "significant": p_value <= CI_ALPHA,
            }
        )
    return found


def empty_state(settings: Settings) -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "endpoint": settings.endpoint,
        "requests": {},
        "successes": {},
        "series": {},
        "replicas": {},
        "boundary": None,
        "round": 0,
        "weights": {},
        "history": [],
    }


class Agent:
    extension = None
    """An interleaved or shadow-compare experiment (turnout_agent.experiments) serving its own part of the API."""

    def __init__(self, settings: Settings, kube: Kube, ledger: Ledger, prometheus: Prometheus) -> None:
        self.settings, self.kube, self.ledger, self.prometheus = settings, kube, ledger, prometheus
        self.leader = False
        self.rounds_failed = 0
        self._stop = threading.Event()
        self._lease = None
        self._next_round = 0.0

    # the loop ---------------------------------------------------------------------------------------

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as error:  # noqa: BLE001 (the loop outlives any one failed call and logs it)
                self.leader = False
                log.warning("agent: %s: %s", type(error).__name__, error)
            self._stop.wait(self.settings.renew_s)

    def stop(self) -> None:
        self._stop.set()

    def tick(self) -> None:
        """Hold (or try for) the Lease; as the leader, run a round when one is due."""
        self.leader = self.hold_lease()
        if self.leader and time.monotonic() >= self._next_round:
            self._next_round = time.monotonic() + self.settings.interval_s
            if not self.round():
                self.rounds_failed += 1

    def hold_lease(self) -> bool:
        settings = self.settings
        seen = self.kube.read_lease(settings.lease_name)
        if seen is not None and seen.holder not in (None, "", settings.replica) and seen.renewed is not None:
            expires = seen.renewed.timestamp() + seen.duration_s
            if time.time() < expires:
                return False  # another replica holds it
        claimed = self.kube.claim_lease(settings.lease_name, settings.replica, settings.lease_duration_s, seen)
        if claimed and not self.leader:
            log.info("agent %s: leader of %s", settings.replica, settings.endpoint)
        return claimed

    # a round ------------------------------------------------------------------------------------------

    def round(self, *, now: float | None = None) -> bool:
        settings = self.settings
        now = time.time() if now is None else now
        state, version = self.kube.read_state(settings.state_config_map)
        state = state or empty_state(settings)
        try:
            self.count_requests(state, now)
        except MeshError as error:
            log.warning("agent: round skipped: %s", error)
            return False
        self.gather_feedback(state)
        stats = self.stats(state)
        if settings.fixed_weights is not None:
            weights = dict(settings.fixed_weights)  # an ab-test: the stack's split, reported, never changed
        else:
            rng = random.Random(f"{settings.endpoint}/{state['round']}")
            weights = bandit.allocate(
                settings.policy, stats, min_weight=settings.min_weight, rng=rng, epsilon=settings.epsilon
            )
            self.kube.set_weights(settings.routing, weights)
        state["weights"] = weights
        state["round"] += 1
        state["boundary"] = now
        state["history"] = [*state["history"], [round(now, 3), weights]][-HISTORY:]
        labels = {"app.kubernetes.io/part-of": "turnout", "turnout.dev/endpoint": settings.endpoint}
        try:
            self.kube.write_state(settings.state_config_map, state, version, labels)
        except ConflictError:
            log.warning("agent: the state changed under this round (another leader?): not written")
            return False
        log.info("agent: round %d weights %s from %s", state["round"], weights, stats)
        return True

    def count_requests(self, state: dict, now: float) -> None:
        settings = self.settings
        series = state.setdefault("series", {})
        values = {key: entry[0] for key, entry in series.items()}
        requests = self.prometheus.requests(settings.namespace, settings.service)
        grow(state["requests"], values, requests, settings.arms)
        successes = []
        if settings.reward_source == "slo":
            successes = self.prometheus.fast_successes(settings.namespace, settings.service, settings.latency_ms)
            grow(state["successes"], values, successes, settings.arms)
        seen = {s.key for s in (*requests, *successes)}
        state["series"] = {
            key: [value, now if key in seen else series.get(key, [0, now])[1]]
            for key, value in values.items()
            if key in seen or now - series.get(key, [0, now])[1] < SERIES_FORGOTTEN_S
        }

    def gather_feedback(self, state: dict) -> None:
        """Every replica's cumulative totals; one that does not answer keeps its last known ones."""
        if self.settings.reward_source != "feedback":
            return
        replicas = state.setdefault("replicas", {})
        for peer in self.settings.peers:
            if peer.name == self.settings.replica:
                totals = self.ledger.totals()
            else:
                try:
                    totals = fetch_totals(peer.url)
                except (OSError, ValueError) as error:
                    log.warning("agent: replica %s did not answer (%s): keeping its last totals", peer.name, error)
                    continue
            replicas[peer.name] = {version: list(counts) for version, counts in totals.items()}

    def feedback_totals(self, state: dict) -> dict[str, tuple[int, float]]:
        summed: dict[str, list[float]] = {}
        for totals in (state.get("replicas") or {}).values():
            for version, (count, reward_sum) in totals.items():
                entry = summed.setdefault(version, [0, 0.0])
                entry[0] += count
                entry[1] += reward_sum
        return {version: (int(count), reward_sum) for version, (count, reward_sum) in summed.items()}

    def stats(self, state: dict) -> dict[str, tuple[float, float]]:
        """arm -> (trials, reward sum), as reward.source and reward.unreported define them."""
        settings, stats = self.settings, {}
        feedback = self.feedback_totals(state)
        for arm in settings.arms:
            requests = float(state["requests"].get(arm, 0.0))
            if settings.reward_source == "slo":
                successes = float(state["successes"].get(arm, 0.0))
                stats[arm] = (max(requests, successes), successes)
                continue
            count, reward_sum = feedback.get(arm, (0, 0.0))
            if settings.unreported == "unknown":
                stats[arm] = (float(count), reward_sum)
            else:
                # Feedback can arrive before the mesh's count of its request reaches Prometheus.
                stats[arm] = (max(requests, reward_sum), reward_sum)
        return stats

    # what callers read ----------------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        settings = self.settings
        state, _ = self.kube.read_state(settings.state_config_map)
        state = state or empty_state(settings)
        stats = self.stats(state)
        feedback = self.feedback_totals(state)
        versions = []
        for arm in settings.arms:
            trials, rewards = stats[arm]
            low, high = confidence_interval(rewards, trials)
            versions.append(
                {
                    "version": arm,
                    "requests": state["requests"].get(arm, 0.0),
                    "trials": trials,
                    "rewards": rewards,
                    "rate": rewards / trials if trials else None,
                    "interval": [low, high],
                    "weight": state["weights"].get(arm),
                    "feedback": {"count": feedback.get(arm, (0, 0.0))[0], "sum": feedback.get(arm, (0, 0.0))[1]},
                }
            )
        return {
            "endpoint": settings.endpoint,
            "strategy": "ab-test" if settings.fixed_weights is not None else "bandit",
            "comparisons": comparisons(stats, settings.arms),
            "history": state["history"],
            "policy": settings.policy,
            "reward": {"source": settings.reward_source, "unreported": settings.unreported},
            "confidence": 1 - CI_ALPHA,
            "round": state["round"],
            "updatedAt": state["boundary"],
            "replica": settings.replica,
            "leader": self.leader,
            "versions": versions,
        }


def fetch_totals(base_url: str, timeout: float = 5.0) -> dict[str, tuple[int, float]]:
    with urllib.request.urlopen(f"{base_url}/internal/totals", timeout=timeout) as response:  # noqa: S310
        body = json.loads(response.read())
    return {version: (int(count), float(reward_sum)) for version, (count, reward_sum) in body["totals"].items()}
