"""Interleaved comparison of two rankers (CONTRACT §4): one list merged from both rankers' answers,
clicks credited to the ranker that contributed the clicked item.

- team-draft (Radlinski, Kurup and Joachims, CIKM 2008): in each round a fair coin decides which
  ranker picks first; each then adds its highest-ranked item not yet in the list, and that item is
  on its team. Clicks on a team's items are that ranker's.
- balanced (Joachims, KDD 2002): the two rankings are walked in step (a coin decides who leads) and
  each item is added the first time either walk reaches it. An item counts for a ranker when only
  that ranker returned it within the walked depth; an item both returned favours neither.

Items are ids (strings, numbers, anything hashable). A ranker that lists an item twice is read as
listing it once, at its first place. When one ranker runs out, the rest of the other's list is
appended (the user still gets a full list) but those items count for nobody: only what both could
compete for is evidence.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Iterable, Mapping, Sequence

METHODS = ("team-draft", "balanced")
Team = str  # "a" | "b"


def interleave(
    a: Sequence[Hashable], b: Sequence[Hashable], *, method: str, rng: random.Random
) -> tuple[list[Hashable], dict[Hashable, Team]]:
    """The merged list and {item: "a" | "b"} for the items whose clicks count."""
    if method not in METHODS:
        raise ValueError(f"method {method!r}: allowed: {', '.join(METHODS)}")
    first, second = _unique(a), _unique(b)
    if method == "team-draft":
        return _team_draft(first, second, rng)
    return _balanced(first, second, rng)


def credit(assignment: Mapping[Hashable, Team], clicked: Iterable[Hashable]) -> str:
    """Which ranker the clicks favour: "a", "b" or "tie" (no counted click, or as many for each)."""
    counts = {"a": 0, "b": 0}
    for item in set(clicked):
        team = assignment.get(item)
        if team in counts:
            counts[team] += 1
    if counts["a"] == counts["b"]:
        return "tie"
    return "a" if counts["a"] > counts["b"] else "b"


def preference(wins: int, losses: int, ties: int) -> tuple[float, float]:
    """(preference for "a" as a share of impressions, ties counting half; the two-sided sign-test
    p-value of wins against losses, ties left out). 0.5 and 1.0 when there is no evidence."""
    for name, value in (("wins", wins), ("losses", losses), ("ties", ties)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} {value!r}: allowed: a non-negative integer")
    total = wins + losses + ties
    share = (wins + ties / 2) / total if total else 0.5
    return share, sign_test(wins, losses)


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact binomial test of wins against losses at p = 1/2 (normal approximation with
    continuity correction above 100,000 decided impressions, where the two agree to 4 decimals)."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    if n > 100_000:
        z = (abs(wins - losses) - 1) / math.sqrt(n)
        return min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2)))
    log_half = n * math.log(0.5)
    tail = sum(
        math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half) for i in range(k + 1)
    )
    return min(1.0, 2 * tail)


def _unique(ranking: Sequence[Hashable]) -> list[Hashable]:
    seen: set = set()
    result = []
    for item in ranking:
        if item not in seen:
            seen.add(item)
            result.append(item)
    return result


def _team_draft(a: list, b: list, rng: random.Random) -> tuple[list, dict]:
    merged: list = []
    placed: set = set()
    teams: dict = {}
    cursors = {"a": 0, "b": 0}
    rankings = {"a": a, "b": b}

    def next_of(team: str):
        ranking = rankings[team]
        while cursors[team] < len(ranking) and ranking[cursors[team]] in placed:
            cursors[team] += 1
        return ranking[cursors[team]] if cursors[team] < len(ranking) else None

    while next_of("a") is not None and next_of("b") is not None:
        order = ("a", "b") if rng.random() < 0.5 else ("b", "a")  # a fair coin each round
        for team in order:
            item = next_of(team)
            if item is None:  # the first pick took the second's candidate, and it had no other
                break
            merged.append(item)
            placed.add(item)
            teams[item] = team
    for team in ("a", "b"):  # whoever has items left: shown, not counted
        while (item := next_of(team)) is not None:
            merged.append(item)
            placed.add(item)
    return merged, teams


def _balanced(a: list, b: list, rng: random.Random) -> tuple[list, dict]:
    merged: list = []
    placed: set = set()
    a_leads = rng.random() < 0.5
    ka = kb = 0
    while ka < len(a) and kb < len(b):
        if ka < kb or (ka == kb and a_leads):
            item, ka = a[ka], ka + 1
        else:
            item, kb = b[kb], kb + 1
        if item not in placed:
            placed.add(item)
            merged.append(item)
    in_a, in_b = set(a[:ka]), set(b[:kb])
    teams = {item: ("a" if item in in_a else "b") for item in merged if (item in in_a) != (item in in_b)}
    for item in (*a[ka:], *b[kb:]):  # the walk stopped where one ranking ended: shown, not counted
        if item not in placed:
            placed.add(item)
            merged.append(item)
    return merged, teams
