"""How many impressions interleaving needs to find the better of two rankers, against an A/B test on click-through
rate at the same users (issue 15), in a simulation of position-biased cascade clicks.

The world: each query has 50 candidate documents whose attractiveness (the probability that a user who examines
one clicks it) is drawn from Beta(0.3, 3): a few attractive documents among many that are not. A ranker scores
each candidate as its attractiveness plus Gaussian noise and shows its top 10; the better ranker's noise is
smaller (the known quality difference). A user reads the shown list from the top (a cascade with position bias):
each examined document is clicked with its attractiveness; after a click the user stops with probability 0.5,
after no click goes on with probability 0.85.

- Interleaving: each impression shows the first 10 of `turnout.experiments.interleaving.interleave`'s merged list
  of the two rankings, and `credit` says which ranker the clicks favour; the sign test of `preference` (alpha 0.05,
  two-sided) decides.
- A/B: each user sees one ranker's list (half the impressions each); a two-proportion z-test (alpha 0.05,
  two-sided) on click-through rate (an impression with at least one click) decides.

Per impression the outcomes are independent and identically distributed, so each method's per-impression outcome
probabilities are measured once on a long simulated stream (the real merge and credit on every impression; the two
rankers' click-through rates on the same queries and the same users' random draws, so that their difference is
measured precisely), and the power of an experiment of N impressions is then the share of `--trials` simulated
experiments of N draws that find the better ranker. The impressions needed for 95% power are searched on N
(bisection). Under the null (identical rankers), the preference over the stream stays 0.500 +/- 0.005, and the share
of `--null-experiments` whole experiments (every impression merged and credited for real) that declare a winner
stays at most alpha.

    python benchmarks/interleaving_power.py [--stream N] [--trials N] [--seed N] [--json FILE]

Exit status 0 when every target holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from turnout.experiments import interleaving  # noqa: E402

CANDIDATES, SHOWN = 50, 10
STOP_AFTER_CLICK, CONTINUE_WITHOUT_CLICK = 0.5, 0.85
ALPHA, POWER = 0.05, 0.95
TARGET_RATIO = 5.0
TARGET_SCENARIO = "small difference"
"""The 5x target is the small difference's, where an A/B test needs tens of thousands of impressions; with a large
difference both methods need few and the ratio is reported only."""


def cascade_clicks(attractiveness: list[float], rng: random.Random, draws: list[tuple[float, float]] | None = None):
    """Positions clicked by a user reading the list top-down (position-biased cascade). `draws`: the user's own
    random numbers per position (click, go on), to show two lists to the same user."""
    clicked = []
    for position, a in enumerate(attractiveness):
        click, go_on = draws[position] if draws else (rng.random(), rng.random())
        if click < a:
            clicked.append(position)
            if go_on < STOP_AFTER_CLICK:
                break
        elif go_on >= CONTINUE_WITHOUT_CLICK:
            break
    return clicked


def query(np_rng: np.random.Generator) -> np.ndarray:
    return np_rng.beta(0.3, 3.0, CANDIDATES)


def ranked(attractiveness: np.ndarray, noise: float, np_rng: np.random.Generator) -> list[int]:
    scores = attractiveness + np_rng.normal(0.0, noise, CANDIDATES) if noise else attractiveness
    return [int(i) for i in np.argsort(-scores)[:SHOWN]]


def interleaving_stream(noise_a: float, noise_b: float, n: int, seed: int, method: str, identical: bool = False):
    """Per-impression outcome counts (a wins, b wins, ties) over a stream of n impressions."""
    rng, np_rng = random.Random(seed), np.random.default_rng(seed)
    counts = {"a": 0, "b": 0, "tie": 0}
    for _ in range(n):
        attractiveness = query(np_rng)
        a = ranked(attractiveness, noise_a, np_rng)
        b = a if identical else ranked(attractiveness, noise_b, np_rng)
        merged, teams = interleaving.interleave(a, b, method=method, rng=rng)
        shown = merged[:SHOWN]
        clicks = cascade_clicks([float(attractiveness[d]) for d in shown], rng)
        counts[interleaving.credit(teams, [shown[p] for p in clicks])] += 1
    return counts


def ctr_pair(noise_a: float, noise_b: float, n: int, seed: int) -> tuple[float, float]:
    """Both rankers' click-through rates, on the same queries and the same users' draws."""
    rng, np_rng = random.Random(seed), np.random.default_rng(seed)
    clicked = [0, 0]
    for _ in range(n):
        attractiveness = query(np_rng)
        draws = [(rng.random(), rng.random()) for _ in range(SHOWN)]
        for index, noise in enumerate((noise_a, noise_b)):
            shown = ranked(attractiveness, noise, np_rng)
            clicked[index] += bool(cascade_clicks([float(attractiveness[d]) for d in shown], rng, draws))
    return clicked[0] / n, clicked[1] / n


def interleaving_power(p_better: float, p_worse: float, n: int, trials: int, np_rng) -> float:
    """Share of experiments of n impressions whose sign test finds the better ranker at ALPHA."""
    draws = np_rng.multinomial(n, [p_better, p_worse, 1 - p_better - p_worse], size=trials)
    found = sum(
        1 for better, worse, _ in draws if better > worse and interleaving.sign_test(int(better), int(worse)) < ALPHA
    )
    return found / trials


def ab_power(ctr_better: float, ctr_worse: float, n: int, trials: int, np_rng) -> float:
    """Share of A/B tests of n impressions (n/2 per ranker) whose z-test on CTR finds the better ranker at ALPHA."""
    half = n // 2
    better = np_rng.binomial(half, ctr_better, trials)
    worse = np_rng.binomial(half, ctr_worse, trials)
    pooled = (better + worse) / (2 * half)
    se = np.sqrt(np.maximum(pooled * (1 - pooled) * 2 / half, 1e-300))
    z = (better - worse) / half / se
    critical = 1.959963984540054
    return float(np.mean(z > critical))


def needed(power_at, low: int = 10, high: int = 50_000_000) -> int:
    """The smallest n (to 2%) whose power reaches POWER."""
    n = low
    while power_at(n) < POWER:
        n *= 2
        if n > high:
            return high
    lo, hi = n // 2, n
    while hi - lo > max(2, lo // 50):
        mid = (lo + hi) // 2
        if power_at(mid) >= POWER:
            hi = mid
        else:
            lo = mid
    return hi


def false_winner_rate(method: str, n: int, experiments: int, seed: int) -> float:
    """Share of whole null experiments (identical rankers, n impressions each) whose sign test declares a winner."""
    winners = 0
    for index in range(experiments):
        counts = interleaving_stream(0.1, 0.1, n, seed * 100_003 + index, method, identical=True)
        winners += interleaving.sign_test(counts["a"], counts["b"]) < ALPHA
    return winners / experiments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stream", type=int, default=40_000, help="simulated impressions per measured stream")
    parser.add_argument("--trials", type=int, default=400, help="simulated experiments per power estimate")
    parser.add_argument("--null-experiments", type=int, default=400, help="whole experiments under the null")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    np_rng = np.random.default_rng(args.seed)
    scenarios = {"small difference": (0.10, 0.07), "larger difference": (0.20, 0.15)}
    rows, ok = [], True
    for name, (noise_worse, noise_better) in scenarios.items():
        ctr_worse, ctr_better = ctr_pair(noise_worse, noise_better, args.stream, args.seed + 1)
        row = {"scenario": name, "noise": [noise_worse, noise_better], "ctr": [ctr_worse, ctr_better]}
        row["abImpressions"] = needed(
            lambda n, better=ctr_better, worse=ctr_worse: ab_power(better, worse, n, args.trials, np_rng)
        )
        for method in interleaving.METHODS:
            counts = interleaving_stream(noise_worse, noise_better, args.stream, args.seed + 3, method)
            total = sum(counts.values())
            p_better, p_worse = counts["b"] / total, counts["a"] / total
            impressions = needed(lambda n, p=p_better, q=p_worse: interleaving_power(p, q, n, args.trials, np_rng))
            row[method] = {
                "winsLossesTies": [counts["b"], counts["a"], counts["tie"]],
                "preference": interleaving.preference(counts["b"], counts["a"], counts["tie"])[0],
                "impressions": impressions,
                "ratio": row["abImpressions"] / impressions,
            }
            if name == TARGET_SCENARIO:
                ok &= row[method]["ratio"] >= TARGET_RATIO
        rows.append(row)
    null = {}
    for method in interleaving.METHODS:
        counts = interleaving_stream(0.1, 0.1, args.stream * 2, args.seed + 4, method, identical=True)
        preference = interleaving.preference(counts["a"], counts["b"], counts["tie"])[0]
        n = rows[-1][method]["impressions"]
        rate = false_winner_rate(method, n, args.null_experiments, args.seed + 5)
        null[method] = {"preference": preference, "experimentImpressions": n, "falseWinnerRate": rate}
        ok &= abs(preference - 0.5) <= 0.005 and rate <= ALPHA
    print(f"Impressions for {POWER:.0%} power at alpha {ALPHA} (stream {args.stream:,} impressions, "
          f"{args.trials} experiments per estimate, seed {args.seed})\n")  # fmt: skip
    print("| scenario | CTR worse / better | A/B on CTR | team-draft | balanced | A/B / team-draft | A/B / balanced |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        td, bal = row["team-draft"], row["balanced"]
        print(
            f"| {row['scenario']} (noise {row['noise'][0]} vs {row['noise'][1]}) | {row['ctr'][0]:.3f} / "
            f"{row['ctr'][1]:.3f} | {row['abImpressions']:,} | {td['impressions']:,} | {bal['impressions']:,} | "
            + " | ".join(
                f"{r['ratio']:.1f}" + (f" (>= {TARGET_RATIO:g})" if row["scenario"] == TARGET_SCENARIO else "")
                for r in (td, bal)
            )
            + " |"
        )
    print("\nNull (identical rankers):")
    for method, found in null.items():
        print(
            f"- {method}: preference {found['preference']:.4f} (0.500 +/- 0.005); false winners "
            f"{found['falseWinnerRate']:.4f} of {args.null_experiments} experiments of "
            f"{found['experimentImpressions']:,} impressions (<= {ALPHA})"
        )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "null": null}, indent=2) + "\n")
    print("\nall targets met" if ok else "\nTARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
