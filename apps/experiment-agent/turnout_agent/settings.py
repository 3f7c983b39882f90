"""The agent's settings: one JSON document the stack renders into a ConfigMap (settings.json)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POLICIES = ("thompson", "ucb1", "epsilon-greedy")


class SettingsError(ValueError):
    """The settings document is not one the agent can run with (a deployment bug, not a caller's)."""


@dataclass(frozen=True)
class Peer:
    name: str
    url: str
    """Base URL of the replica's API (its address behind the peers' headless Service)."""


@dataclass(frozen=True)
class Settings:
    endpoint: str
    namespace: str
    arms: tuple[str, ...]
    policy: str
    epsilon: float
    min_weight: int
    reward_source: str
    """feedback | slo"""
    unreported: str
    """zero | unknown (feedback only)"""
    latency_ms: float | None
    interval_s: float
    routing: dict[str, Any]
    """kind VirtualService: group, version, plural, name, route (the split route's name), destinations (per arm,
    the destination the split route sends to: host, subset, port and response headers)."""
    prometheus_url: str
    service: str
    """The endpoint's Service, whose requests the mesh counts (destination_service_name)."""
    state_config_map: str
    lease_name: str
    lease_duration_s: float
    replica: str
    peers: tuple[Peer, ...]
    ledger_path: Path
    dedupe_s: float
    listen_port: int
    kubernetes_host: str | None
    """None in a cluster (the pod's service account); a URL elsewhere (tests, a local run)."""
    strategy: str = "bandit"
    """bandit, or the experiment of turnout_agent.experiments (interleaved, shadow)."""
    experiment: Any = None
    """That experiment's own settings (turnout_agent.interleave, turnout_agent.compare)."""
    fixed_weights: dict[str, int] | None = None
    """An ab-test with rewards: the split the stack renders, which the agent reports and never changes."""

    @property
    def renew_s(self) -> float:
        return max(0.2, self.lease_duration_s / 3)


def _need(document: dict, key: str, kind: type | tuple[type, ...]) -> Any:
    value = document.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise SettingsError(f"settings: {key} is {value!r}; expected {kind}")
    return value


def parse(document: dict, *, replica: str) -> Settings:
    if document.get("strategy", "bandit") != "bandit":
        from turnout_agent import experiments

        return experiments.parse(document, replica=replica)
    arms = tuple(_need(document, "arms", list))
    if len(arms) < 2 or len(set(arms)) != len(arms) or not all(isinstance(a, str) for a in arms):
        raise SettingsError(f"settings: arms {arms!r}; expected 2 or more distinct versions")
    fixed = document.get("fixedWeights")
    if fixed is not None and (
        not isinstance(fixed, dict)
        or set(fixed) != set(arms)
        or not all(isinstance(w, int) and not isinstance(w, bool) and 0 <= w <= 100 for w in fixed.values())
        or sum(fixed.values()) != 100
    ):
        raise SettingsError(f"settings: fixedWeights {fixed!r}; expected every arm's weight, summing to 100")
    policy = _need(document, "policy", str)
    if fixed is not None and policy != "fixed":
        raise SettingsError(f"settings: policy {policy!r} with fixedWeights; expected fixed")
    if fixed is None and policy not in POLICIES:
        raise SettingsError(f"settings: policy {policy!r}; expected one of {', '.join(POLICIES)}")
    reward = _need(document, "reward", dict)
    source = reward.get("source")
    if source not in ("feedback", "slo"):
        raise SettingsError(f"settings: reward.source {source!r}; expected feedback or slo")
    latency = reward.get("latencyMs")
    if source == "slo" and not (isinstance(latency, (int, float)) and math.isfinite(latency) and latency > 0):
        raise SettingsError(f"settings: reward.latencyMs {latency!r}; expected a bucket boundary with source slo")
    routing = _need(document, "routing", dict) if fixed is None else {}
    routed = routing.get("kind") == "VirtualService" and set(routing.get("destinations") or {}) == set(arms)
    if fixed is None and not routed:
        raise SettingsError("settings: routing must be a VirtualService with a destination for every arm")
    peers = tuple(Peer(str(p["name"]), str(p["url"]).rstrip("/")) for p in _need(document, "peers", list))
    if replica not in {p.name for p in peers}:
        raise SettingsError(f"settings: this replica {replica!r} is not among the peers {[p.name for p in peers]}")
    min_weight = _need(document, "minWeight", int)
    if min_weight < 0 or min_weight * len(arms) > 100:
        raise SettingsError(f"settings: minWeight {min_weight} cannot be kept by {len(arms)} arms")
    ledger = _need(document, "ledger", dict)
    kube = document.get("kubernetes") or {}
    return Settings(
        endpoint=_need(document, "endpoint", str),
        namespace=_need(document, "namespace", str),
        arms=arms,
        policy=policy,
        epsilon=float(_need(document, "epsilon", (int, float))),
        min_weight=min_weight,
        reward_source=source,
        unreported=reward.get("unreported") or "zero",
        latency_ms=float(latency) if source == "slo" else None,
        interval_s=float(_need(document, "intervalSeconds", (int, float))),
        routing=routing,
        prometheus_url=str(_need(document, "prometheus", dict)["url"]).rstrip("/"),
        service=str(document["prometheus"]["service"]),
        state_config_map=str(_need(document, "state", dict)["configMap"]),
        lease_name=str(_need(document, "lease", dict)["name"]),
        lease_duration_s=float(document["lease"]["durationSeconds"]),
        replica=replica,
        peers=peers,
        ledger_path=Path(ledger["path"]),
        dedupe_s=float(ledger.get("dedupeSeconds", 7 * 86400)),
        listen_port=int(document.get("port", 8080)),
        kubernetes_host=kube.get("host"),
        fixed_weights=dict(fixed) if fixed is not None else None,
    )


def load(path: Path, *, replica: str) -> Settings:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SettingsError(f"settings: cannot read {path}: {error}") from error
    if not isinstance(document, dict):
        raise SettingsError(f"settings: {path} holds no JSON object")
    return parse(document, replica=replica)
