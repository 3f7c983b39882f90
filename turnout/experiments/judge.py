"""A sequential judge for canaries (CONTRACT §4): is the canary's error rate worse than the primary's?

The judge is asked after every analysis interval with the cumulative (requests, errors) of the
primary and of the canary since the analysis began, and answers "continue", "rollback" or
"promote". Its answers stay valid however often it is asked (continuous monitoring), because both
of its tests are mixture sequential probability ratio tests (mSPRT: Robbins 1970; Johari et al.,
"Always valid inference", 2017) whose statistics are non-negative supermartingales under their null
hypotheses, so Ville's inequality bounds the chance that they ever cross 1/alpha by alpha.

The model (as in Lindon et al., "Rapid regression detection in software deployments through
sequential testing", KDD 2022, for count data): errors arrive at a rate proportional to requests,
`rho` times faster on the canary than on the primary. Between two calls the traffic split is what
it was (Flagger changes weights between intervals), so, given the number of errors in the interval,
each one is the canary's with probability theta = rho n_c / (rho n_c + n_p), where n_c and n_p are
the interval's requests. Conditioning on the error count removes the unknown baseline error rate:
only rho is tested, and an interval without errors carries no evidence either way.

- rollback: H0 "rho <= tolerance" against a mixture of worse rates (rho = tolerance * g for g in
  `REGRESSION_GRID`, weighted in proportion to g squared: `REGRESSION_WEIGHTS`). Crossing 1/alpha
  means the canary is worse than the primary (by more than `tolerance`) with error probability at
  most alpha, however long the analysis runs. Any prior fixed before the data keeps the mixture a
  non-negative supermartingale under H0, so the weights change only which regressions are caught
  sooner: leaning toward large ones rolls a 20x canary back after about 12% fewer requests (the
  benchmark, 10 rps), at the price of the smallest regressions (with the default tolerance, a 2x
  canary at 10 rps is rolled back in 90% of runs instead of 98%).
- promote: H0 "rho >= promote_margin" (the canary is at least that many times worse) against a
  mixture of better rates; crossing 1/alpha rules a regression of that size out. Promotion also
  needs `min_requests` canary requests. When neither version has had a single error after
  `min_requests` canary requests there is nothing to compare: the judge promotes then, because the
  canary's error rate is below 3/min_requests with 95% confidence (the rule of three).
- no traffic, or no errors: "continue" (never a rollback for missing data, unlike a threshold
  analysis that fails when a query returns no values).

A latency regression is judged soundly the same way: count the requests slower than a fixed
threshold as "errors" (from the mesh's latency histogram bucket at that threshold) and give them to
a second judge; rolling back when either judge says so, promoting when both do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

VERDICTS = ("continue", "rollback", "promote")
REGRESSION_GRID = (1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0)
"""The alternatives each test mixes over, as multiples of its null rate ratio (log-spaced)."""
REGRESSION_WEIGHTS = tuple(g * g / sum(x * x for x in REGRESSION_GRID) for g in REGRESSION_GRID)
"""The rollback test's prior over `REGRESSION_GRID`: in proportion to the multiple's square, so a large regression
(the one that costs most while it serves) needs less evidence; the promotion test weighs its grid equally."""

Counts = tuple[int, int]
"""(requests, errors), cumulative since the analysis began."""


@dataclass
class _State:
    primary: Counts = (0, 0)
    canary: Counts = (0, 0)
    log_likelihood: dict[float, float] = field(default_factory=dict)
    """rho -> the log-likelihood of the canary's share of errors so far (up to a constant)."""


class SequentialJudge:
    """Sequential canary judge: mSPRT on the canary-to-primary error-rate ratio.

    Options (keyword-only):
    - alpha (0.05): the most probability of rolling back a canary no worse than `tolerance` times
      the primary, and of promoting one at least `promote_margin` times worse on evidence from errors,
      ever (a promotion without a single error anywhere rests on the rule of three instead).
    - tolerance (1.05): the error-rate ratio still accepted. Not 1.0 ("no worse than the primary") by
      default: a canary 5% worse than the primary (0.105% errors against 0.1%) is no regression anyone
      rolls back for, and testing against 1.05 leaves a canary exactly as good as the primary strictly
      inside the null, so it is rolled back far less often than alpha (the benchmark, 10 rps: about
      0.33% of good canaries instead of about 0.43%), while a 2x-20x regression is barely slower to
      catch. Every guarantee for "no worse than tolerance" holds a fortiori for "no worse than the
      primary"; pass tolerance=1.0 for the strict test.
    - promote_margin (2.0): the regression promotion must rule out first.
    - min_requests (500): canary requests before any promotion.
    """

    def __init__(
        self,
        *,
        alpha: float = 0.05,
        tolerance: float = 1.05,
        promote_margin: float = 2.0,
        min_requests: int = 500,
    ) -> None:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha {alpha!r}: allowed: a number between 0 and 1")
        if not (isinstance(tolerance, (int, float)) and tolerance > 0):
            raise ValueError(f"tolerance {tolerance!r}: allowed: a positive number (1.0: no worse than the primary)")
        if not promote_margin > tolerance:
            raise ValueError(f"promote_margin {promote_margin!r}: allowed: a ratio above tolerance {tolerance}")
        if isinstance(min_requests, bool) or not isinstance(min_requests, int) or min_requests < 1:
            raise ValueError(f"min_requests {min_requests!r}: allowed: a positive integer")
        self.alpha = alpha
        self.tolerance = float(tolerance)
        self.promote_margin = float(promote_margin)
        self.min_requests = min_requests
        self._regressions = tuple(self.tolerance * g for g in REGRESSION_GRID)
        self._regression_weights = dict(zip(self._regressions, REGRESSION_WEIGHTS, strict=True))
        self._improvements = tuple(self.promote_margin / g for g in REGRESSION_GRID)
        self._rhos = tuple(sorted({self.tolerance, self.promote_margin, *self._regressions, *self._improvements}))
        self._state = _State(log_likelihood=dict.fromkeys(self._rhos, 0.0))
        self.verdict = "continue"

    def update(self, *, primary: Counts, canary: Counts) -> str:
        """Take the cumulative counts, return "continue", "rollback" or "promote". A rollback is final."""
        primary, canary = _counts("primary", primary), _counts("canary", canary)
        if self.verdict == "rollback":
            return self.verdict
        state = self._state
        (n_p0, e_p0), (n_c0, e_c0) = state.primary, state.canary
        n_p, e_p, n_c, e_c = primary[0] - n_p0, primary[1] - e_p0, canary[0] - n_c0, canary[1] - e_c0
        if min(n_p, e_p, n_c, e_c) < 0:
            raise ValueError(
                f"counts went down (primary {state.primary} -> {primary}, canary {state.canary} -> {canary}): "
                "allowed: cumulative counts since the analysis began; start a new judge for a new analysis"
            )
        state.primary, state.canary = primary, canary
        if e_p + e_c and n_c and n_p:  # an interval where only one version served says nothing about rho
            for rho in self._rhos:
                theta = rho * n_c / (rho * n_c + n_p)
                state.log_likelihood[rho] += e_c * math.log(theta) + e_p * math.log1p(-theta)
        self.verdict = self._decide()
        return self.verdict

    def evidence(self) -> dict[str, float]:
        """The two mixture likelihood ratios, and the always-valid p-values they give (min(1, 1/ratio))."""
        regression = self._mixture(self._regression_weights, self.tolerance)
        safety = self._mixture(dict.fromkeys(self._improvements, 1 / len(self._improvements)), self.promote_margin)
        return {
            "regression_ratio": regression,
            "regression_p_value": min(1.0, 1.0 / regression),
            "promotion_ratio": safety,
            "promotion_p_value": min(1.0, 1.0 / safety),
        }

    def _mixture(self, weights: dict[float, float], null: float) -> float:
        """The prior-weighted mean of the alternatives' likelihood ratios against the null (weights sum to 1)."""
        log_l = self._state.log_likelihood
        terms = [log_l[rho] - log_l[null] + math.log(weight) for rho, weight in weights.items()]
        top = max(terms)
        return math.exp(top) * sum(math.exp(t - top) for t in terms) if top < 700 else math.inf

    def _decide(self) -> str:
        evidence = self.evidence()
        if evidence["regression_ratio"] >= 1 / self.alpha:
            return "rollback"
        canary_requests, canary_errors = self._state.canary
        if canary_requests < self.min_requests:
            return "continue"
        if evidence["promotion_ratio"] >= 1 / self.alpha:
            return "promote"
        if canary_errors == 0 and self._state.primary[1] == 0:
            return "promote"  # rule of three: nothing failed anywhere, the canary's rate < 3 / min_requests
        return "continue"


def _counts(name: str, value: object) -> Counts:
    try:
        requests, errors = value  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ValueError(f"{name} {value!r}: allowed: (requests, errors)") from None
    for part in (requests, errors):
        if isinstance(part, bool) or not isinstance(part, int) or part < 0:
            raise ValueError(f"{name} {value!r}: allowed: non-negative integers (requests, errors)")
    if errors > requests:
        raise ValueError(f"{name} {value!r}: more errors than requests; allowed: errors <= requests")
    return requests, errors
