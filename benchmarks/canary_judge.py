"""Canary rollouts under Flagger's weight schedule: the sequential judge against Flagger's threshold analysis.

Simulated, one interval at a time, with Flagger's settings from its Istio tutorial (and turnout's defaults):
interval 1m, threshold 5, stepWeight 10, maxWeight 50, a first step of 10%. Requests arrive as a Poisson
process at `rps`; the canary gets its weight's share; each request fails (5xx) with its version's error rate.
The primary fails 0.1% of requests; a good canary as often, bad ones 2x, 5x and 20x as often (0.2%, 0.5%: both
inside the 99% success-rate SLO; 2%: outside it).

- flagger (threshold): Flagger's scheduler (fluxcd/flagger pkg/controller/scheduler.go) faithfully: the first tick
  sets the weight to 10%; every later tick first rolls back if `failedChecks >= threshold`, then checks the last
  interval's canary requests alone: no request at all is "no values found" (the success-rate query is 0/0),
  a failed check, as is a success rate below 99%; a failed check does not advance the weight (and is never
  forgotten); a passed one steps it up, or, at maxWeight, promotes.
- sequential: the same scheduler with turnout's webhooks instead of the metric checks: every tick the judge
  (`turnout.experiments.judge.SequentialJudge`, with the stack's defaults alpha 0.01 and minRequests 500) gets the
  cumulative counts of both versions; its rollback verdict rolls back at once (the `rollback` hook), otherwise
  the weight steps up (the `rollout` hook passes, traffic or not), and at maxWeight promotion waits for its
  promote verdict (`confirm-promotion`), for at most `--hours` (then "held").

Measured per rate and canary: the share rolled back, promoted and held; the minutes and canary requests until
rollback. The targets (issue 18): requests a bad canary serves before rollback at most 0.5x Flagger's at 10 and
100 rps (where Flagger rolls it back at all); at most 0.5% false rollbacks of good canaries at 10, 100 and 0.1 rps;
at least 90% of the 5x regressions (inside the SLO) caught within 5 minutes at 100 rps. And the A/B test's
always-valid intervals (turnout_agent.agent: each rate's, and the difference's) covering the truth in at least
95% of runs while read after every 100 requests per variant.

    python benchmarks/canary_judge.py [--runs N] [--good-runs N] [--hours H] [--ab-runs N] [--seed N] [--json FILE]

Exit status 0 when every target holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "apps" / "experiment-agent")]

from turnout_agent.agent import confidence_interval, difference_interval  # noqa: E402

from turnout.experiments.judge import SequentialJudge  # noqa: E402
from turnout.strategies import DEFAULT_JUDGE_ALPHA, DEFAULT_JUDGE_MIN_REQUESTS  # noqa: E402

INTERVAL_S = 60
THRESHOLD = 5
STEP, FIRST, MAX_WEIGHT = 10, 10, 50
SUCCESS_RATE = 99.0
PRIMARY_ERRORS = 0.001
RATES = (0.1, 1.0, 10.0, 100.0)
CANARIES = {"good": 1.0, "2x": 2.0, "5x": 5.0, "20x": 20.0}
TARGET_REQUESTS_RATIO = 0.5
TARGET_FALSE_ROLLBACKS = 0.005
TARGET_CAUGHT_5X = 0.9
TARGET_COVERAGE = 0.95


@dataclass
class Outcome:
    decision: str
    """rollback | promote | held"""
    minutes: float
    canary_requests: int


SLOW = {"share": 0.01}
"""The share of requests slower than maxLatencyMs, the same for both versions (the latency judge's null)."""
JUDGE = {"alpha": DEFAULT_JUDGE_ALPHA, "min_requests": DEFAULT_JUDGE_MIN_REQUESTS}
"""The judge's options: the stack's defaults unless --alpha or --min-requests say otherwise."""


def rollout(judge: str, rps: float, multiple: float, rng: np.random.Generator, max_ticks: int) -> Outcome:
    weight, failed = 0, 0
    canary_total = [0, 0]
    primary_total = [0, 0]
    slow_canary, slow_primary = [0, 0], [0, 0]
    latency = SLOW["share"] > 0
    # As the agent deploys them: with latency judged too, each judge has half of alpha.
    options = {**JUDGE, "alpha": JUDGE["alpha"] / (2 if latency else 1)}
    sequential = SequentialJudge(**options) if judge == "sequential" else None
    slow_judge = SequentialJudge(**options) if judge == "sequential" and latency else None
    canary_rate = PRIMARY_ERRORS * multiple
    for tick in range(max_ticks + 1):
        if tick == 0:  # pre-rollout passed: the first step, no analysis yet
            weight = FIRST
            continue
        # What the last interval served at `weight`.
        n_c = int(rng.poisson(rps * INTERVAL_S * weight / 100))
        n_p = int(rng.poisson(rps * INTERVAL_S * (100 - weight) / 100))
        e_c = int(rng.binomial(n_c, canary_rate)) if n_c else 0
        e_p = int(rng.binomial(n_p, PRIMARY_ERRORS)) if n_p else 0
        canary_total[0] += n_c
        canary_total[1] += e_c
        primary_total[0] += n_p
        primary_total[1] += e_p
        if sequential is not None:
            verdict = sequential.update(primary=tuple(primary_total), canary=tuple(canary_total))
            if slow_judge is not None:  # both versions as fast: the latency judge sees good canaries only
                slow_canary[0] += n_c
                slow_canary[1] += int(rng.binomial(n_c, SLOW["share"])) if n_c else 0
                slow_primary[0] += n_p
                slow_primary[1] += int(rng.binomial(n_p, SLOW["share"])) if n_p else 0
                slow = slow_judge.update(primary=tuple(slow_primary), canary=tuple(slow_canary))
                if slow == "rollback":
                    verdict = "rollback"
                elif verdict == "promote" and slow != "promote":
                    verdict = "continue"
            if verdict == "rollback":  # the rollback hook, polled first each tick
                return Outcome("rollback", tick, canary_total[0])
            if weight < MAX_WEIGHT:
                weight = min(MAX_WEIGHT, weight + STEP)
            elif verdict == "promote":
                return Outcome("promote", tick, canary_total[0])
            continue
        if failed >= THRESHOLD:
            return Outcome("rollback", tick, canary_total[0])
        passed = n_c > 0 and 100.0 * (n_c - e_c) / n_c >= SUCCESS_RATE
        if not passed:
            failed += 1
        elif weight < MAX_WEIGHT:
            weight = min(MAX_WEIGHT, weight + STEP)
        else:
            return Outcome("promote", tick, canary_total[0])
    return Outcome("held", max_ticks, canary_total[0])


@dataclass
class Cell:
    judge: str
    rps: float
    canary: str
    runs: int
    rolled_back: float
    promoted: float
    held: float
    mean_minutes_to_rollback: float | None
    mean_canary_requests_before_rollback: float | None
    caught_within_5_minutes: float
    median_minutes_to_promotion: float | None


def cell(judge: str, rps: float, canary: str, runs: int, seed: int, max_ticks: int) -> Cell:
    rng = np.random.default_rng(seed)
    outcomes = [rollout(judge, rps, CANARIES[canary], rng, max_ticks) for _ in range(runs)]
    rolled = [o for o in outcomes if o.decision == "rollback"]
    promoted = [o for o in outcomes if o.decision == "promote"]
    return Cell(
        judge=judge,
        rps=rps,
        canary=canary,
        runs=runs,
        rolled_back=len(rolled) / runs,
        promoted=len(promoted) / runs,
        held=sum(o.decision == "held" for o in outcomes) / runs,
        mean_minutes_to_rollback=statistics.fmean(o.minutes for o in rolled) if rolled else None,
        mean_canary_requests_before_rollback=statistics.fmean(o.canary_requests for o in rolled) if rolled else None,
        caught_within_5_minutes=sum(o.minutes <= 5 for o in rolled) / runs,
        median_minutes_to_promotion=statistics.median(o.minutes for o in promoted) if promoted else None,
    )


def ab_coverage(runs: int, seed: int, requests: int = 5000, every: int = 100) -> list[dict]:
    """Coverage of the A/B report's always-valid 95% intervals read after every `every` requests per variant."""
    rng = np.random.default_rng(seed)
    found = []
    for rate_a, rate_b in ((0.1, 0.1), (0.1, 0.12), (0.02, 0.03), (0.5, 0.5), (0.01, 0.01)):
        rate_missed = difference_missed = 0
        for _ in range(runs):
            a = np.cumsum(rng.random(requests) < rate_a)
            b = np.cumsum(rng.random(requests) < rate_b)
            missed_rate = missed_difference = False
            for n in range(every, requests + 1, every):
                low, high = confidence_interval(float(a[n - 1]), float(n))
                missed_rate |= not low <= rate_a <= high
                low, high = difference_interval((n, float(a[n - 1])), (n, float(b[n - 1])))
                missed_difference |= not low <= rate_b - rate_a <= high
            rate_missed += missed_rate
            difference_missed += missed_difference
        found.append(
            {
                "rates": [rate_a, rate_b],
                "runs": runs,
                "rateCoverage": 1 - rate_missed / runs,
                "differenceCoverage": 1 - difference_missed / runs,
            }
        )
    return found


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def table(cells: list[Cell]) -> str:
    by = {(c.judge, c.rps, c.canary): c for c in cells}
    lines = [
        "| rps | canary | Flagger: rolled back / promoted | sequential: rolled back / promoted / held | "
        "minutes to rollback (Flagger → sequential) | canary requests before rollback (Flagger → sequential) | "
        "sequential / Flagger requests | caught within 5 min (Flagger → sequential) | "
        "minutes to promotion (Flagger → sequential) |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rps in RATES:
        for canary in CANARIES:
            f, s = by.get(("flagger", rps, canary)), by.get(("sequential", rps, canary))
            if f is None or s is None:
                continue
            ratio = (
                s.mean_canary_requests_before_rollback / f.mean_canary_requests_before_rollback
                if s.mean_canary_requests_before_rollback and f.mean_canary_requests_before_rollback
                else None
            )
            lines.append(
                f"| {rps:g} | {canary} | {f.rolled_back:.2%} / {f.promoted:.1%} | "
                f"{s.rolled_back:.2%} / {s.promoted:.1%} / {s.held:.1%} | "
                f"{_fmt(f.mean_minutes_to_rollback)} → {_fmt(s.mean_minutes_to_rollback)} | "
                f"{_fmt(f.mean_canary_requests_before_rollback, 0)} → "
                f"{_fmt(s.mean_canary_requests_before_rollback, 0)} | "
                f"{_fmt(ratio, 2)} | {f.caught_within_5_minutes:.1%} → {s.caught_within_5_minutes:.1%} | "
                f"{_fmt(f.median_minutes_to_promotion, 0)} → {_fmt(s.median_minutes_to_promotion, 0)} |"
            )
    return "\n".join(lines)


def targets(cells: list[Cell], coverage: list[dict]) -> list[tuple[str, float | None, str, bool]]:
    by = {(c.judge, c.rps, c.canary): c for c in cells}
    found = []
    for rps in (10.0, 100.0):
        for canary in ("2x", "5x", "20x"):
            f, s = by.get(("flagger", rps, canary)), by.get(("sequential", rps, canary))
            if f is None or s is None:
                continue
            if f.rolled_back >= 0.5 and f.mean_canary_requests_before_rollback:
                ratio = (
                    s.mean_canary_requests_before_rollback or float("inf")
                ) / f.mean_canary_requests_before_rollback
                ok = ratio <= TARGET_REQUESTS_RATIO and s.rolled_back >= f.rolled_back
                found.append((f"{canary} at {rps:g} rps: requests before rollback vs Flagger", ratio, "≤ 0.5", ok))
            else:  # Flagger lets it through: the judge must catch it
                found.append(
                    (
                        f"{canary} at {rps:g} rps: rolled back (Flagger {f.rolled_back:.1%})",
                        s.rolled_back,
                        "Flagger misses it",
                        s.rolled_back > f.rolled_back,
                    )
                )
    for rps in (0.1, 10.0, 100.0):
        s = by.get(("sequential", rps, "good"))
        if s is not None:
            found.append(
                (
                    f"good at {rps:g} rps: false rollbacks",
                    s.rolled_back,
                    "≤ 0.5%",
                    s.rolled_back <= TARGET_FALSE_ROLLBACKS,
                )
            )
    s = by.get(("sequential", 100.0, "5x"))
    if s is not None:
        found.append(
            (
                "5x at 100 rps: caught within 5 minutes",
                s.caught_within_5_minutes,
                "≥ 90%",
                s.caught_within_5_minutes >= TARGET_CAUGHT_5X,
            )
        )
    for entry in coverage:
        worst = min(entry["rateCoverage"], entry["differenceCoverage"])
        found.append((f"A/B {entry['rates']}: coverage under peeking", worst, "≥ 95%", worst >= TARGET_COVERAGE))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=400, help="runs per bad canary and rate (default 400)")
    parser.add_argument("--good-runs", type=int, default=2000, help="runs per good canary and rate (default 2000)")
    parser.add_argument("--hours", type=float, default=6, help="longest a judged canary is held at maxWeight (6)")
    parser.add_argument("--ab-runs", type=int, default=200, help="A/B runs per pair of rates (default 200)")
    parser.add_argument("--rps", type=float, action="append", help="only these rates")
    parser.add_argument("--alpha", type=float, default=DEFAULT_JUDGE_ALPHA, help="the judge's alpha (the stack's)")
    parser.add_argument("--min-requests", type=int, default=DEFAULT_JUDGE_MIN_REQUESTS, help="the judge's minRequests")
    parser.add_argument(
        "--slow", type=float, default=0.01, help="share of slow requests, both versions (0: no latency judge; 0.01)"
    )
    parser.add_argument("--seed", type=int, default=0, help="added to every cell's seed: another sample (0)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    JUDGE.update(alpha=args.alpha, min_requests=args.min_requests)
    SLOW.update(share=args.slow)
    max_ticks = int(args.hours * 3600 / INTERVAL_S)
    started = time.monotonic()
    cells = []
    for index, rps in enumerate(args.rps or RATES):
        for c_index, canary in enumerate(CANARIES):
            runs = args.good_runs if canary == "good" else args.runs
            for judge in ("flagger", "sequential"):
                cells.append(
                    cell(judge, rps, canary, runs, seed=args.seed + 1000 * index + 10 * c_index, max_ticks=max_ticks)
                )
                print(f"  {judge} {rps:g} rps {canary}: {time.monotonic() - started:.0f}s", file=sys.stderr)
    coverage = ab_coverage(args.ab_runs, seed=7) if args.ab_runs else []
    print(table(cells))
    print()
    if coverage:
        print("| A/B rates | runs | each rate's interval covered | the difference's interval covered |")
        print("| --- | ---: | ---: | ---: |")
        for entry in coverage:
            print(
                f"| {entry['rates'][0]:g} vs {entry['rates'][1]:g} | {entry['runs']} | "
                f"{entry['rateCoverage']:.1%} | {entry['differenceCoverage']:.1%} |"
            )
        print()
    checks = targets(cells, coverage)
    print("| target | measured | wanted | met |")
    print("| --- | ---: | --- | --- |")
    for name, value, wanted, ok in checks:
        shown = "–" if value is None else f"{value:.2f}" if "requests" in name else f"{value:.2%}"
        print(f"| {name} | {shown} | {wanted} | {'met' if ok else 'NOT MET'} |")
    print(
        f"\n({time.monotonic() - started:.0f} s; {args.runs} runs per bad canary, {args.good_runs} per good one; "
        f"judge alpha {args.alpha:g}, minRequests {args.min_requests}, "
        f"{f'{args.slow:.1%} slow requests: latency judged too' if args.slow else 'errors only'})"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"cells": [asdict(c) for c in cells], "coverage": coverage, "targets": checks}, indent=1, default=str
            )
        )
    return 0 if all(ok for *_, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
