"""Comparing a shadow's answers with the primary's (CONTRACT §1 `shadow.compare`, §4), with a noise baseline.

For every mirrored request the agent has three answers: the primary's (A), the primary's again (B, the baseline:
what the primary itself varies from one answer to the next, as Diffy's second primary copy shows) and the
shadow's (C). Each compared field of A is checked against C and against B:

- a number agrees within `tolerance` (absolute difference); a label (string, boolean, null) agrees exactly;
  a list agrees when it has as many items, each agreeing in turn, and its overlap (the share of items both
  lists hold, items known by their `id` when they are objects that have one) is reported besides;
- a request agrees when every field on which the shadow differs from the primary also differs between the
  primary's two answers (a nondeterministic field, not the shadow's doing).

A field is flagged by a sequential test that holds however often it is read: among the requests where exactly
one of "C differs from A" and "B differs from A" holds, an equivalent shadow is as likely to be the one as the
baseline (B and C are exchangeable), so the count of shadow-only differences is a fair coin's. The evidence is
the uniform-prior mixture of the likelihood ratios against that coin, a test martingale: by Ville's inequality
it ever reaches 1/alpha with probability at most alpha, so continuous monitoring is safe. Fields share alpha
(Bonferroni).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from turnout.experiments._paths import get

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()
STATUS = "(status)"
BODY = "(body)"
MAX_FIELDS = 64
"""Distinct fields tracked per shadow when the whole body is compared; further ones share OTHER."""
OTHER = "(other fields)"


def flatten(document: Any, prefix: str = "") -> dict[str, Any]:
    """A JSON document's fields: every scalar and every list, by path (`label`, `scores`, `meta.model`)."""
    if isinstance(document, dict) and document:
        found: dict[str, Any] = {}
        for key, value in document.items():
            found.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return found
    return {prefix or BODY: document}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def agrees(a: Any, b: Any, tolerance: float) -> bool:
    if _number(a) and _number(b):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= tolerance
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(agrees(x, y, tolerance) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(agrees(a[k], b[k], tolerance) for k in a)
    return type(a) is type(b) and a == b if a is not MISSING and b is not MISSING else a is b


def kind(value: Any) -> str:
    if value is MISSING:
        return "missing"
    if _number(value):
        return "number"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "label"


def _identity(item: Any) -> str:
    if isinstance(item, dict) and "id" in item:
        item = item["id"]
    return json.dumps(item, sort_keys=True)


def overlap(a: list, b: list) -> float:
    """The share of items both lists hold: |A ∩ B| / max(|A|, |B|) (1 for two empty lists)."""
    if not a and not b:
        return 1.0
    return len({_identity(x) for x in a} & {_identity(y) for y in b}) / max(len(a), len(b))


@dataclass(frozen=True)
class Answer:
    """One answer as the comparison sees it: its status (0: none came) and its body (parsed JSON, else text)."""

    status: int
    document: Any

    @classmethod
    def of(cls, status: int, body: bytes) -> Answer:
        try:
            return cls(status, json.loads(body)) if body else cls(status, MISSING)
        except ValueError:
            return cls(status, body.decode("utf-8", "replace"))

    @property
    def json(self) -> bool:
        return isinstance(self.document, (dict, list))


@dataclass(frozen=True)
class FieldOutcome:
    field: str
    kind: str
    shadow_differs: bool
    baseline_differs: bool
    abs_difference: float | None = None
    overlap: float | None = None


def fields_of(answer: Answer, fields: tuple[tuple[str, tuple], ...] | None) -> dict[str, Any]:
    """field name -> value: the listed fields, or every field of the body (its text when it is not JSON)."""
    if fields:
        if not answer.json:
            return {name: MISSING for name, _ in fields}
        return {name: get(answer.document, steps, MISSING) for name, steps in fields}
    if not answer.json:
        return {BODY: answer.document}
    return flatten(answer.document)


def compare(
    primary: Answer, baseline: Answer, shadow: Answer, *, fields=None, tolerance: float = 0.0
) -> list[FieldOutcome]:
    """Every compared field (and the status) of the shadow's answer against the primary's, with the baseline's."""
    outcomes = [FieldOutcome(STATUS, "label", primary.status != shadow.status, primary.status != baseline.status)]
    a, b, c = (fields_of(x, fields) for x in (primary, baseline, shadow))
    for name in dict.fromkeys((*a, *c)):
        mine, theirs, again = a.get(name, MISSING), c.get(name, MISSING), b.get(name, MISSING)
        difference = abs(mine - theirs) if _number(mine) and _number(theirs) else None
        shared = overlap(mine, theirs) if isinstance(mine, list) and isinstance(theirs, list) else None
        outcomes.append(
            FieldOutcome(
                name,
                kind(mine if mine is not MISSING else theirs),
                not agrees(mine, theirs, tolerance),
                not agrees(mine, again, tolerance),
                difference,
                shared,
            )
        )
    return outcomes


def agreed(outcomes: Iterable[FieldOutcome]) -> bool:
    """The shadow agrees when every difference it shows, the primary also shows against itself."""
    return all(not o.shadow_differs or o.baseline_differs for o in outcomes)


def log_evidence(shadow_only: int, baseline_only: int) -> float:
    """log of the uniform-mixture likelihood ratio of shadow-only against baseline-only differences versus a fair
    coin: 2^n B(k+1, n-k+1) with k shadow-only differences out of n discordant requests."""
    k, m = shadow_only, baseline_only
    n = k + m
    return n * math.log(2) + math.lgamma(k + 1) + math.lgamma(m + 1) - math.lgamma(n + 2)


def flagged(shadow_only: int, baseline_only: int, alpha: float) -> bool:
    """Whether the shadow differs on this field more often than the primary differs from itself, with a
    false-flag probability of at most alpha however often this is asked."""
    return shadow_only > baseline_only and log_evidence(shadow_only, baseline_only) >= math.log(1 / alpha)


def field_alpha(alpha: float, listed_fields: int) -> float:
    """Each field's share of alpha: the listed fields (or MAX_FIELDS + OTHER for the whole body) and the status."""
    return alpha / ((listed_fields or MAX_FIELDS + 1) + 1)
