"""Cumulative regret of turnout's bandit allocation against Seldon Core v1's epsilon-greedy and a uniform split.

Simulated Bernoulli arms (a request to arm i earns a reward with probability p_i). Regret is the
expected reward lost against always serving the best arm: the sum over requests of p_best - p_arm.

- turnout (thompson): what the agent does. Every `interval` it calls `bandit.allocate("thompson",
  ...)` with each arm's (requests, rewards) so far; the next interval's requests are split by those
  weights; their rewards reach the agent at the end of the interval (a batch). Optionally a share
  of rewards never arrives (callers that do not report): requests are still counted, as the agent
  counts them from the mesh.
- thompson, immediate: per-request Thompson sampling that sees every reward at once: the best the
  batched form could do.
- seldon epsilon-greedy: Seldon Core v1's EpsilonGreedy router, faithfully: the starting best
  branch is random, untried branches are worth 0, each request goes to the best branch except with
  probability epsilon (0.1, its default) to a random OTHER branch, every reward is seen at once and
  the best branch is re-chosen (ties at random) after each one.
- uniform: an A/B split that never learns.

The targets (issue 14): turnout's regret at most 0.5x epsilon-greedy's on the first three scenarios
and 0.75x on the last; batched at most 1.25x immediate; at most 1.3x with 20% of rewards missing.
`min_weight` is 0 for the targets (the algorithm itself); the table also shows what the prod floor
(`minWeight: 5`, every arm keeps 5%) costs.

    python benchmarks/bandit_regret.py [--runs N] [--requests N] [--batch N] [--jobs N] [--json FILE]

Exit status 0 when every target holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from turnout.experiments import bandit  # noqa: E402

SCENARIOS: dict[str, tuple[float, ...]] = {
    "2 arms (0.10, 0.12)": (0.10, 0.12),
    "3 arms (0.10, 0.11, 0.12)": (0.10, 0.11, 0.12),
    "5 arms (best 0.5, others 0.4)": (0.4, 0.4, 0.4, 0.4, 0.5),
    "5 arms (best 0.5, others 0.48)": (0.48, 0.48, 0.48, 0.48, 0.5),
}
# Scenario -> the most turnout's regret may be, as a multiple of epsilon-greedy's.
VERSUS_EPSILON_GREEDY = dict(zip(SCENARIOS, (0.5, 0.5, 0.5, 0.75), strict=True))
BATCHED_OVER_IMMEDIATE = 1.25
MISSING_OVER_COMPLETE = 1.3
MISSING_SHARE = 0.2
SELDON_EPSILON = 0.1


def turnout_batched(
    rates: tuple[float, ...],
    requests: int,
    batch: int,
    seed: int,
    *,
    missing: float = 0.0,
    min_weight: int = 0,
    unreported: str = "zero",
) -> float:
    """One run of the agent's loop: allocate, serve a batch by those weights, count, repeat.

    `missing`: the share of outcomes that never reach the agent. `unreported`: how the agent reads a
    request without feedback (reward.unreported): "zero" (callers report only rewards, so the
    agent's trials are the requests the mesh counted) or "unknown" (callers report every outcome,
    0 included, so trials are the outcomes reported)."""
    rng = random.Random(seed)
    env = np.random.default_rng(seed)
    arms = [f"v{i}" for i in range(len(rates))]
    p = np.array(rates)
    gaps = p.max() - p
    served = np.zeros(len(rates))
    rewarded = np.zeros(len(rates))
    regret = 0.0
    done = 0
    while done < requests:
        size = min(batch, requests - done)
        stats = {arm: (float(served[i]), float(rewarded[i])) for i, arm in enumerate(arms)}
        weights = bandit.allocate("thompson", stats, min_weight=min_weight, rng=rng)
        counts = env.multinomial(size, np.array([weights[arm] for arm in arms]) / 100.0)
        rewards = env.binomial(counts, p)
        if unreported == "unknown":  # every outcome, 0 or 1, is reported with probability 1 - missing
            trials = env.binomial(counts, 1.0 - missing) if missing else counts
            # The reported outcomes are a random subset of the interval's: their rewards are hypergeometric.
            reported = np.array(
                [env.hypergeometric(r, c - r, t) if c else 0 for r, c, t in zip(rewards, counts, trials, strict=True)]
            )
        else:
            trials = counts
            reported = env.binomial(rewards, 1.0 - missing) if missing else rewards
        served += trials
        rewarded += reported
        regret += float(counts @ gaps)
        done += size
    return regret


def thompson_immediate(rates: tuple[float, ...], requests: int, runs: int, seed: int) -> np.ndarray:
    """Per-request Thompson sampling over `runs` independent runs at once; regret per run."""
    env = np.random.default_rng(seed)
    p = np.array(rates)
    gaps = p.max() - p
    k = len(rates)
    successes = np.zeros((runs, k))
    failures = np.zeros((runs, k))
    regret = np.zeros(runs)
    rows = np.arange(runs)
    for _ in range(requests):
        arm = np.argmax(env.beta(1.0 + successes, 1.0 + failures), axis=1)
        reward = env.random(runs) < p[arm]
        successes[rows, arm] += reward
        failures[rows, arm] += ~reward
        regret += gaps[arm]
    return regret


def seldon_epsilon_greedy(
    rates: tuple[float, ...], requests: int, runs: int, seed: int, epsilon: float = SELDON_EPSILON
) -> np.ndarray:
    """Seldon Core v1's EpsilonGreedy router (components/routers/epsilon-greedy) over `runs` runs at once."""
    env = np.random.default_rng(seed)
    p = np.array(rates)
    gaps = p.max() - p
    k = len(rates)
    successes = np.zeros((runs, k))
    tries = np.zeros((runs, k))
    best = env.integers(0, k, runs)  # "Starting with a random branch"
    regret = np.zeros(runs)
    rows = np.arange(runs)
    for _ in range(requests):
        other = env.integers(0, k - 1, runs)
        other += other >= best  # a random branch among the others
        arm = np.where(env.random(runs) > epsilon, best, other)
        reward = env.random(runs) < p[arm]
        successes[rows, arm] += reward
        tries[rows, arm] += 1
        values = np.divide(successes, tries, out=np.zeros_like(successes), where=tries > 0)
        # Ties broken at random, as np.random.choice over the argmax set does.
        leaders = values == values.max(axis=1, keepdims=True)
        best = np.argmax(leaders * env.random((runs, k)), axis=1)
        regret += gaps[arm]
    return regret


def uniform(rates: tuple[float, ...], requests: int) -> float:
    p = np.array(rates)
    return float(requests * (p.max() - p.mean()))


@dataclass(frozen=True)
class Row:
    scenario: str
    uniform: float
    epsilon_greedy: float
    immediate: float
    batched: float
    missing: float
    missing_outcomes: float
    floor5: float

    def ratios(self) -> dict[str, float]:
        return {
            "versus_epsilon_greedy": self.batched / self.epsilon_greedy,
            "batched_over_immediate": self.batched / self.immediate,
            "missing_over_complete": self.missing / self.batched,
            "missing_outcomes_over_complete": self.missing_outcomes / self.batched,
        }

    def failures(self) -> list[str]:
        ratios = self.ratios()
        found = []
        if ratios["versus_epsilon_greedy"] > VERSUS_EPSILON_GREEDY[self.scenario]:
            found.append(
                f"versus epsilon-greedy {ratios['versus_epsilon_greedy']:.2f} > {VERSUS_EPSILON_GREEDY[self.scenario]}"
            )
        if ratios["batched_over_immediate"] > BATCHED_OVER_IMMEDIATE:
            found.append(f"batched over immediate {ratios['batched_over_immediate']:.2f} > {BATCHED_OVER_IMMEDIATE}")
        if ratios["missing_outcomes_over_complete"] > MISSING_OVER_COMPLETE:
            found.append(
                f"20% of outcomes missing over complete {ratios['missing_outcomes_over_complete']:.2f} > "
                f"{MISSING_OVER_COMPLETE}"
            )
        return found


def _batched_mean(args) -> float:
    rates, requests, batch, seeds, missing, min_weight, unreported = args
    return float(
        np.mean(
            [
                turnout_batched(
                    rates, requests, batch, s, missing=missing, min_weight=min_weight, unreported=unreported
                )
                for s in seeds
            ]
        )
    )


def measure(scenario: str, *, runs: int, requests: int, batch: int, pool: ProcessPoolExecutor) -> Row:
    rates = SCENARIOS[scenario]
    seeds = list(range(runs))
    halves = [seeds[: runs // 2], seeds[runs // 2 :]]  # one job per half, so both cores work
    jobs = {
        name: [
            pool.submit(_batched_mean, (rates, requests, batch, part, missing, floor, unreported)) for part in halves
        ]
        for name, missing, floor, unreported in (
            ("batched", 0.0, 0, "zero"),
            ("missing", MISSING_SHARE, 0, "zero"),
            ("missing_outcomes", MISSING_SHARE, 0, "unknown"),
            ("floor5", 0.0, 5, "zero"),
        )
    }
    immediate = pool.submit(thompson_immediate, rates, requests, runs, 1)
    greedy = pool.submit(seldon_epsilon_greedy, rates, requests, runs, 2)

    def mean_of(futures) -> float:
        return sum(f.result() * len(part) for f, part in zip(futures, halves, strict=True)) / runs

    return Row(
        scenario=scenario,
        uniform=uniform(rates, requests),
        epsilon_greedy=float(greedy.result().mean()),
        immediate=float(immediate.result().mean()),
        batched=mean_of(jobs["batched"]),
        missing=mean_of(jobs["missing"]),
        missing_outcomes=mean_of(jobs["missing_outcomes"]),
        floor5=mean_of(jobs["floor5"]),
    )


def table(rows: list[Row], runs: int, requests: int, batch: int) -> str:
    lines = [
        f"Mean cumulative regret over {runs} seeded runs of {requests:,} requests; turnout allocates every "
        f"{batch:,} requests (one interval).",
        "",
        "| scenario | uniform A/B | Seldon ε-greedy 0.1 | Thompson, immediate | turnout | turnout, 20% of outcomes "
        "missing | turnout, 20% of rewards missing (successes-only feedback) | turnout, minWeight 5 "
        "| turnout / ε-greedy | batched / immediate | outcomes missing / complete | rewards missing / complete |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        r = row.ratios()
        lines.append(
            f"| {row.scenario} | {row.uniform:,.0f} | {row.epsilon_greedy:,.0f} | {row.immediate:,.0f} | "
            f"{row.batched:,.0f} | {row.missing_outcomes:,.0f} | {row.missing:,.0f} | {row.floor5:,.0f} | "
            f"{r['versus_epsilon_greedy']:.2f} (≤ {VERSUS_EPSILON_GREEDY[row.scenario]}) | "
            f"{r['batched_over_immediate']:.2f} (≤ {BATCHED_OVER_IMMEDIATE}) | "
            f"{r['missing_outcomes_over_complete']:.2f} (≤ {MISSING_OVER_COMPLETE}) | "
            f"{r['missing_over_complete']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="seeded runs per scenario (default 100)")
    parser.add_argument("--requests", type=int, default=100_000, help="requests per run (default 100000)")
    parser.add_argument("--batch", type=int, default=1_000, help="requests per agent interval (default 1000)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS), help="only these scenarios")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    rows = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for scenario in args.scenario or SCENARIOS:
            print(f"simulating {scenario} ...", file=sys.stderr, flush=True)
            rows.append(measure(scenario, runs=args.runs, requests=args.requests, batch=args.batch, pool=pool))
    print(table(rows, args.runs, args.requests, args.batch))
    failed = [f"{row.scenario}: {problem}" for row in rows for problem in row.failures()]
    for problem in failed:
        print(f"TARGET MISSED {problem}", file=sys.stderr)
    if args.json:
        args.json.write_text(
            json.dumps([{**row.__dict__, **row.ratios()} for row in rows], indent=2, sort_keys=True) + "\n"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
