"""Cumulative regret of turnout's bandit allocation against Seldon Core v1's epsilon-greedy and a uniform split.

Simulated Bernoulli arms (a request to arm i earns a reward with probability p_i). Regret is the
expected reward lost against always serving the best arm: the sum over requests of p_best - p_arm.

Every policy of a run meets the same outcomes: the n-th request sent to an arm earns, under every
policy, what the run drew for that arm's n-th request beforehand (common random numbers; `outcomes`).
Regrets then differ by what the policies chose rather than by luck, which narrows the intervals of
their ratios (95% bootstrap intervals over runs, printed with each ratio) without changing any
policy's expected regret.

- turnout (thompson): what the agent does. Every `interval` it calls `bandit.allocate("thompson",
  ...)` with each arm's (requests, rewards) so far; the next interval's requests are split by those
  weights; their rewards reach the agent at the end of the interval (a batch). Optionally a share
  of rewards never arrives (callers that do not report): requests are still counted, as the agent
  counts them from the mesh.
- thompson, immediate: the same optimistic Thompson sampling per request, seeing every reward at
  once: the best the batched form could do.
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


def outcomes(rates: tuple[float, ...], requests: int, seed: int) -> np.ndarray:
    """The run's rewards, drawn before any policy acts: row i holds the outcome of arm i's 1st, 2nd, ... request.

    Every policy of a run meets the same outcomes in the same order (common random numbers): the n-th request
    a policy sends to an arm earns what the n-th request to that arm earns under any other policy. The
    policies' regrets differ then by what they chose, not by the luck of the draw, which narrows the
    uncertainty of their ratios without changing any policy's expected regret."""
    return np.random.default_rng([seed, 1]).random((len(rates), requests)) < np.array(rates)[:, None]


def reports(arms: int, requests: int, seed: int, missing: float) -> np.ndarray:
    """Whether the caller reports the outcome of arm i's n-th request (probability 1 - missing), also fixed in
    advance, so that a run with missing outcomes differs from the complete one only by what is missing."""
    return np.random.default_rng([seed, 2]).random((arms, requests)) >= missing


def _counted(table: np.ndarray) -> np.ndarray:
    """Cumulative counts per arm, with a leading 0: counted[i, n] is the sum of table[i, :n]."""
    return np.concatenate([np.zeros((table.shape[0], 1), dtype=np.int64), np.cumsum(table, axis=1)], axis=1)


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
    split = np.random.default_rng([seed, 3])
    arms = [f"v{i}" for i in range(len(rates))]
    every = np.arange(len(rates))
    p = np.array(rates)
    gaps = p.max() - p
    won = _counted(outcomes(rates, requests, seed))
    if missing:
        told = reports(len(rates), requests, seed, missing)
        seen, seen_won = _counted(told), _counted(told & outcomes(rates, requests, seed))
    pulled = np.zeros(len(rates), dtype=np.int64)
    served = np.zeros(len(rates))
    rewarded = np.zeros(len(rates))
    regret = 0.0
    done = 0
    while done < requests:
        size = min(batch, requests - done)
        stats = {arm: (float(served[i]), float(rewarded[i])) for i, arm in enumerate(arms)}
        weights = bandit.allocate("thompson", stats, min_weight=min_weight, rng=rng)
        counts = split.multinomial(size, np.array([weights[arm] for arm in arms]) / 100.0)
        after = pulled + counts
        if not missing:
            trials, reported = counts, won[every, after] - won[every, pulled]
        elif unreported == "unknown":  # every outcome, 0 or 1, reaches the agent if its caller reports it
            trials, reported = (
                seen[every, after] - seen[every, pulled],
                seen_won[every, after] - seen_won[every, pulled],
            )
        else:  # only rewards are reported: every request counts, a lost reward reads as none
            trials, reported = counts, seen_won[every, after] - seen_won[every, pulled]
        served += trials
        rewarded += reported
        regret += float(counts @ gaps)
        pulled = after
        done += size
    return regret


def _tables(rates: tuple[float, ...], requests: int, seeds: list[int]) -> np.ndarray:
    return np.stack([outcomes(rates, requests, seed) for seed in seeds])


def thompson_immediate(rates: tuple[float, ...], requests: int, seeds: list[int]) -> np.ndarray:
    """Per-request optimistic Thompson sampling (each draw raised to its arm's posterior mean, as
    `bandit.allocate` does), one run per seed at once (the runs' outcomes as `outcomes`); regret per run."""
    env = np.random.default_rng([seeds[0], len(seeds), 4])
    p = np.array(rates)
    gaps = p.max() - p
    k, runs = len(rates), len(seeds)
    table = _tables(rates, requests, seeds)
    successes = np.zeros((runs, k))
    failures = np.zeros((runs, k))
    pulled = np.zeros((runs, k), dtype=np.int64)
    regret = np.zeros(runs)
    rows = np.arange(runs)
    for _ in range(requests):
        a, b = 1.0 + successes, 1.0 + failures
        arm = np.argmax(np.maximum(env.beta(a, b), a / (a + b)), axis=1)
        reward = table[rows, arm, pulled[rows, arm]]
        pulled[rows, arm] += 1
        successes[rows, arm] += reward
        failures[rows, arm] += ~reward
        regret += gaps[arm]
    return regret


def seldon_epsilon_greedy(
    rates: tuple[float, ...], requests: int, seeds: list[int], epsilon: float = SELDON_EPSILON
) -> np.ndarray:
    """Seldon Core v1's EpsilonGreedy router (components/routers/epsilon-greedy), one run per seed at once."""
    env = np.random.default_rng([seeds[0], len(seeds), 5])
    p = np.array(rates)
    gaps = p.max() - p
    k, runs = len(rates), len(seeds)
    table = _tables(rates, requests, seeds)
    successes = np.zeros((runs, k))
    tries = np.zeros((runs, k), dtype=np.int64)
    best = env.integers(0, k, runs)  # "Starting with a random branch"
    regret = np.zeros(runs)
    rows = np.arange(runs)
    for _ in range(requests):
        other = env.integers(0, k - 1, runs)
        other += other >= best  # a random branch among the others
        arm = np.where(env.random(runs) > epsilon, best, other)
        reward = table[rows, arm, tries[rows, arm]]
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


RATIOS = {  # name -> (numerator, denominator), both policies' mean regret over the same runs
    "versus_epsilon_greedy": ("batched", "epsilon_greedy"),
    "batched_over_immediate": ("batched", "immediate"),
    "missing_over_complete": ("missing", "batched"),
    "missing_outcomes_over_complete": ("missing_outcomes", "batched"),
}
BOOTSTRAP = 2000


@dataclass(frozen=True)
class Row:
    """One scenario: each policy's regret per run (runs in seed order, so run i of every policy met the same
    outcomes) and the uniform split's expected regret."""

    scenario: str
    uniform: float
    regrets: dict[str, tuple[float, ...]]

    def mean(self, policy: str) -> float:
        return float(np.mean(self.regrets[policy]))

    def ratios(self) -> dict[str, float]:
        return {name: self.mean(top) / self.mean(bottom) for name, (top, bottom) in RATIOS.items()}

    def intervals(self) -> dict[str, tuple[float, float]]:
        """95% bootstrap intervals of each ratio: runs resampled with replacement, each run whole (all its
        policies together, as they shared its outcomes)."""
        runs = len(self.regrets["batched"])
        picks = np.random.default_rng(7).integers(0, runs, (BOOTSTRAP, runs))
        found = {}
        for name, (top, bottom) in RATIOS.items():
            resampled = np.asarray(self.regrets[top])[picks].mean(axis=1) / np.asarray(self.regrets[bottom])[
                picks
            ].mean(axis=1)
            low, high = np.percentile(resampled, [2.5, 97.5])
            found[name] = (float(low), float(high))
        return found

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


def _batched_runs(args) -> list[float]:
    rates, requests, batch, seeds, missing, min_weight, unreported = args
    return [
        turnout_batched(rates, requests, batch, s, missing=missing, min_weight=min_weight, unreported=unreported)
        for s in seeds
    ]


def _vector_runs(args) -> list[float]:
    policy, rates, requests, seeds = args
    return [
        float(r)
        for r in {"immediate": thompson_immediate, "epsilon_greedy": seldon_epsilon_greedy}[policy](
            rates, requests, seeds
        )
    ]


def measure(scenario: str, *, runs: int, requests: int, batch: int, pool: ProcessPoolExecutor) -> Row:
    rates = SCENARIOS[scenario]
    seeds = list(range(runs))
    chunks = [seeds[i : i + 25] for i in range(0, runs, 25)]  # jobs small enough to keep both cores busy
    jobs = {
        name: [
            pool.submit(_batched_runs, (rates, requests, batch, part, missing, floor, unreported)) for part in chunks
        ]
        for name, missing, floor, unreported in (
            ("batched", 0.0, 0, "zero"),
            ("missing", MISSING_SHARE, 0, "zero"),
            ("missing_outcomes", MISSING_SHARE, 0, "unknown"),
            ("floor5", 0.0, 5, "zero"),
        )
    }
    for policy in ("immediate", "epsilon_greedy"):
        jobs[policy] = [pool.submit(_vector_runs, (policy, rates, requests, part)) for part in chunks]
    return Row(
        scenario=scenario,
        uniform=uniform(rates, requests),
        regrets={name: tuple(r for f in futures for r in f.result()) for name, futures in jobs.items()},
    )


def _ratio_text(row: Row):
    """A ratio as the table shows it: the estimate, its interval and the target, if any."""
    ratios, intervals = row.ratios(), row.intervals()

    def text(name: str, target: float | None = None) -> str:
        bound = f"; ≤ {target}" if target is not None else ""
        return f"{ratios[name]:.2f} ({intervals[name][0]:.2f}–{intervals[name][1]:.2f}{bound})"

    return text


def table(rows: list[Row], runs: int, requests: int, batch: int) -> str:
    lines = [
        f"Mean cumulative regret over {runs} seeded runs of {requests:,} requests; turnout allocates every "
        f"{batch:,} requests (one interval). Ratios with their 95% bootstrap intervals.",
        "",
        "| scenario | uniform A/B | Seldon ε-greedy 0.1 | Thompson, immediate | turnout | turnout, 20% of outcomes "
        "missing | turnout, 20% of rewards missing (successes-only feedback) | turnout, minWeight 5 "
        "| turnout / ε-greedy | batched / immediate | outcomes missing / complete | rewards missing / complete |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        ratio = _ratio_text(row)
        lines.append(
            f"| {row.scenario} | {row.uniform:,.0f} | {row.mean('epsilon_greedy'):,.0f} | "
            f"{row.mean('immediate'):,.0f} | "
            f"{row.mean('batched'):,.0f} | {row.mean('missing_outcomes'):,.0f} | {row.mean('missing'):,.0f} | "
            f"{row.mean('floor5'):,.0f} | {ratio('versus_epsilon_greedy', VERSUS_EPSILON_GREEDY[row.scenario])} | "
            f"{ratio('batched_over_immediate', BATCHED_OVER_IMMEDIATE)} | "
            f"{ratio('missing_outcomes_over_complete', MISSING_OVER_COMPLETE)} | {ratio('missing_over_complete')} |"
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
            json.dumps(
                [
                    {
                        "scenario": row.scenario,
                        "uniform": row.uniform,
                        "means": {name: row.mean(name) for name in row.regrets},
                        "ratios": row.ratios(),
                        "intervals": row.intervals(),
                        "regrets": row.regrets,
                    }
                    for row in rows
                ],
                indent=2,
                sort_keys=True,
            )
            + "\n"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
