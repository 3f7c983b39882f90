"""The agent for an `interleaved` endpoint or a shadow with `compare` (CONTRACT §1, §4): the same service as a
bandit's (settings, peers, ledger volume, HTTP API, metrics, health), with the experiment's own listeners in
place of the bandit's rounds. Neither needs the Kubernetes API (no weights to write, no Lease: every replica
serves and counts on its own, and the report sums every replica's counts), nor Prometheus (the agent is in the
path of what it measures). A judged progressive canary's agent (turnout_agent.canary_judge) is the same service
again, answering Flagger's webhooks from Prometheus' counts, with one replica (Flagger is its one caller)."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from turnout_agent.agent import Agent
from turnout_agent.cache import Cache, CacheAddress
from turnout_agent.canary_judge import CanaryJudge, JudgeSettings, JudgeStore
from turnout_agent.compare import CompareSettings, CompareStats, Comparison
from turnout_agent.impressions import InterleavingLedger, LocalImpressions, SharedImpressions
from turnout_agent.interleave import Interleaving, InterleavingSettings
from turnout_agent.server import make_server, serve_in_background
from turnout_agent.settings import Peer, Settings, SettingsError

log = logging.getLogger("turnout_agent")
KINDS = ("interleaved", "shadow", "canary")


def parse(document: dict, *, replica: str) -> Settings:
    """The settings of an interleaved or shadow-compare agent (the bandit's own fields left neutral)."""
    kind = document.get("strategy")
    if kind not in KINDS:
        raise SettingsError(f"settings: strategy {kind!r}; expected bandit, {', '.join(KINDS)}")
    try:
        peers = tuple(Peer(str(p["name"]), str(p["url"]).rstrip("/")) for p in document["peers"])
        ledger = document["ledger"]
        if kind == "interleaved":
            experiment = InterleavingSettings.parse(document)
            versions = (experiment.control, experiment.treatment)
        elif kind == "shadow":
            experiment = CompareSettings.parse(document)
            versions = (experiment.primary, *(s.version for s in experiment.shadows))
        else:
            experiment = JudgeSettings.parse(document)
            versions = (experiment.stable, experiment.canary)
        settings = Settings(
            endpoint=str(document["endpoint"]),
            namespace=str(document["namespace"]),
            arms=versions,
            policy="",
            epsilon=0.0,
            min_weight=0,
            reward_source=kind,
            unreported="",
            latency_ms=None,
            interval_s=0.0,
            routing={},
            prometheus_url="",
            service=str(document["endpoint"]),
            state_config_map="",
            lease_name="",
            lease_duration_s=0.0,
            replica=replica,
            peers=peers,
            ledger_path=Path(ledger["path"]),
            dedupe_s=0.0,
            listen_port=int(document.get("port", 8080)),
            kubernetes_host=None,
            strategy=kind,
            experiment=experiment,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise SettingsError(f"settings: {type(error).__name__}: {error}") from error
    if replica not in {p.name for p in peers}:
        raise SettingsError(f"settings: this replica {replica!r} is not among the peers {[p.name for p in peers]}")
    return settings


def build(settings: Settings):
    """The experiment an agent of these settings runs (not started)."""
    folder = settings.ledger_path.parent
    if settings.strategy == "interleaved":
        experiment: InterleavingSettings = settings.experiment
        ledger = InterleavingLedger(folder / "interleaving.sqlite3")
        if experiment.store == "cache":
            cache = Cache(CacheAddress.from_environment())
            store = SharedImpressions(cache, ledger, prefix=experiment.cache_prefix, window_s=experiment.click_window_s)
        else:
            store = LocalImpressions(ledger, experiment.click_window_s)
        return Interleaving(settings, experiment, ledger, store)
    if settings.strategy == "canary":
        return CanaryJudge(settings, settings.experiment, JudgeStore(folder / "judge.json"))
    return Comparison(settings, settings.experiment, CompareStats(folder / "comparison.sqlite3"))


def serve(settings: Settings, *, port: int | None = None, experiment_ports: dict | None = None) -> int:
    """Run until SIGTERM: the API on the settings' port, the experiment's listeners on theirs."""
    experiment = build(settings)
    agent = Agent(settings, None, None, None)
    agent.extension = experiment
    server = make_server(agent, port=port)
    serve_in_background(server)
    if settings.strategy == "interleaved":
        experiment.start(port=(experiment_ports or {}).get("proxy"))
    elif settings.strategy == "canary":
        experiment.start(port=(experiment_ports or {}).get("flagger"))
    else:
        experiment.start(ports=experiment_ports)
    log.info(
        "turnout-agent %s (%s) for %s listening on :%d",
        settings.replica,
        settings.strategy,
        settings.endpoint,
        server.server_port,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    finally:
        experiment.stop()
        server.shutdown()
    return 0
