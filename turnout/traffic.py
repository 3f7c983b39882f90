"""Strategies turned into traffic plans: the ordered routes of `traffic.json` (CONTRACT §2).

Routes are evaluated top to bottom; the first whose `match` holds serves the request and the last
matches everything. Components render these plans into Istio or Knative objects, and the plan is
exported unchanged, so what reviewers read is what the cluster does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from turnout.strategies import (
    VARIANT_HEADER,
    AbTest,
    Bandit,
    BlueGreen,
    Canary,
    DarkLaunch,
    FeatureFlag,
    Recreate,
    Rolling,
    Shadow,
    Strategy,
)


@dataclass(frozen=True)
class Match:
    """A request matches when its header (or cookie) `name` equals `value`."""

    kind: str  # "header" | "cookie"
    name: str
    value: str

    def to_json(self) -> dict[str, str]:
        return {self.kind: self.name, "value": self.value}


@dataclass(frozen=True)
class Destination:
    version: str
    weight: int


@dataclass(frozen=True)
class Mirror:
    version: str
    percent: int


@dataclass(frozen=True)
class Route:
    match: Match | None
    to: tuple[Destination, ...]
    mirror: tuple[Mirror, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "match": self.match.to_json() if self.match else None,
            "to": [{"version": d.version, "weight": d.weight} for d in self.to],
            "mirror": [{"version": m.version, "percent": m.percent} for m in self.mirror],
        }


@dataclass(frozen=True)
class TrafficPlan:
    strategy: str
    routes: tuple[Route, ...]

    @property
    def routed_versions(self) -> tuple[str, ...]:
        """Versions that serve user requests, in first-seen order."""
        return _unique(d.version for route in self.routes for d in route.to)

    @property
    def mirrored_versions(self) -> tuple[str, ...]:
        return _unique(m.version for route in self.routes for m in route.mirror)

    @property
    def running_versions(self) -> tuple[str, ...]:
        """Every version that needs pods: routed and mirrored."""
        return _unique((*self.routed_versions, *self.mirrored_versions))

    def to_json(self) -> list[dict[str, Any]]:
        return [route.to_json() for route in self.routes]


def _unique(items) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _all_to(version: str) -> tuple[Destination, ...]:
    return (Destination(version, 100),)


def _split(weights: dict[str, int]) -> tuple[Destination, ...]:
    """Weighted destinations, leaving out versions at 0% (they receive nothing)."""
    return tuple(Destination(version, weight) for version, weight in weights.items() if weight > 0)


def _single(strategy: Recreate | Rolling) -> tuple[Route, ...]:
    return (Route(None, _all_to(strategy.version)),)


def _blue_green(strategy: BlueGreen) -> tuple[Route, ...]:
    return (
        Route(Match("header", strategy.preview_header, "true"), _all_to(strategy.preview)),
        Route(None, _all_to(strategy.active)),
    )


def _canary(strategy: Canary) -> tuple[Route, ...]:
    split = Route(None, _split({strategy.stable: 100 - strategy.weight, strategy.canary: strategy.weight}))
    if strategy.sticky is None:
        return (split,)
    cookie = strategy.sticky.cookie
    # Returning users carry the cookie the split route set on their first response.
    return (
        Route(Match("cookie", cookie, strategy.canary), _all_to(strategy.canary)),
        Route(Match("cookie", cookie, strategy.stable), _all_to(strategy.stable)),
        split,
    )


def _ab_test(strategy: AbTest) -> tuple[Route, ...]:
    split = _split(strategy.variants)
    if strategy.segment is None:
        return (Route(None, split),)
    return (
        Route(Match("header", strategy.segment.header, strategy.segment.value), split),
        Route(None, _all_to(strategy.default)),
    )


def _shadow(strategy: Shadow) -> tuple[Route, ...]:
    mirrors = tuple(Mirror(version, percent) for version, percent in strategy.shadows.items())
    return (Route(None, _all_to(strategy.primary), mirrors),)


def _dark_launch(strategy: DarkLaunch) -> tuple[Route, ...]:
    return (
        Route(Match("header", strategy.header, "true"), _all_to(strategy.dark)),
        Route(None, _all_to(strategy.live)),
    )


def _feature_flag(strategy: FeatureFlag) -> tuple[Route, ...]:
    by_variant = tuple(
        Route(Match("header", VARIANT_HEADER, variant), _all_to(version))
        for variant, version in strategy.variants.items()
    )
    return (*by_variant, Route(None, _all_to(strategy.variants[strategy.default_variant])))


def _bandit(strategy: Bandit) -> tuple[Route, ...]:
    """The initial split; the experiment agent rewrites these weights every `interval` from then on."""
    return (Route(None, tuple(Destination(arm, weight) for arm, weight in strategy.initial_weights().items())),)


_ROUTES: dict[type, Callable[[Any], tuple[Route, ...]]] = {
    Recreate: _single,
    Rolling: _single,
    BlueGreen: _blue_green,
    Canary: _canary,
    AbTest: _ab_test,
    Shadow: _shadow,
    DarkLaunch: _dark_launch,
    FeatureFlag: _feature_flag,
    Bandit: _bandit,
}


def traffic_plan(strategy: Strategy) -> TrafficPlan:
    """The ordered routes that realise `strategy` (validated config: every named version exists)."""
    return TrafficPlan(strategy.TYPE, _ROUTES[type(strategy)](strategy))
