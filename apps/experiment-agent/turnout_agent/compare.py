"""A shadow endpoint's comparison (CONTRACT §1 `shadow.compare`, §4): users keep getting the primary's answer
through the endpoint's route, unchanged; the route's mirror copies go to the agent (one port per shadow) instead
of the shadow. For each copy the agent calls the primary twice (the answer to compare, and the baseline that shows
what the primary varies by itself) and the shadow once, concurrently, through each version's own Service, and
compares them with `turnout.experiments.comparison`. Nothing it does reaches a user: the mirror's answer is
discarded by the mesh, and the agent answers it 202 before it even calls the versions.

Counts are this replica's, cumulative, kept in SQLite on its volume (flushed every second: what a crash loses is
at most the last second of comparisons); the report sums every replica's. A `sample`% of the joined requests are
written to standard output as JSON lines for the cluster's log shipping, secrets and the configured paths
redacted.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import random
import re
import sqlite3
import sys
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from turnout.experiments import comparison
from turnout_agent import paths
from turnout_agent.metrics import Families
from turnout_agent.upstream import Answer, BodyError, NoDelayHandler, Request, Upstream, read_request

log = logging.getLogger("turnout_agent")

ALPHA = 0.01
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ROLES = ("primary", "shadow")
REDACTED = "[redacted]"
SECRET = re.compile(r"authorization|cookie|token|secret|passw|api[-_]?key|session|credential|private[-_]?key", re.I)
FLUSH_S = 1.0


@dataclass(frozen=True)
class ShadowPort:
    version: str
    port: int
    percent: int


@dataclass(frozen=True)
class CompareSettings:
    primary: str
    shadows: tuple[ShadowPort, ...]
    fields: tuple[tuple[str, tuple], ...]
    tolerance: float
    sample: float
    redact: tuple[tuple, ...]
    backends: dict[str, str]
    timeout_s: float
    workers: int
    queue_size: int
    alpha: float

    @classmethod
    def parse(cls, document: dict) -> CompareSettings:
        section = document["compare"]
        backends = dict(document["backends"])
        shadows = tuple(
            ShadowPort(version, int(entry["port"]), int(entry["percent"]))
            for version, entry in section["shadows"].items()
        )
        for version in (section["primary"], *(s.version for s in shadows)):
            if version not in backends:
                raise ValueError(f"compare: version {version!r} has no backend")
        if not shadows or len({s.port for s in shadows}) != len(shadows):
            raise ValueError("compare.shadows: one distinct port per shadow expected")
        return cls(
            primary=section["primary"],
            shadows=shadows,
            fields=tuple((name, paths.steps(name)) for name in section.get("fields") or ()),
            tolerance=float(section.get("tolerance", 0)),
            sample=float(section.get("sample", 0)),
            redact=tuple(paths.steps(p) for p in section.get("redact") or ()),
            backends=backends,
            timeout_s=float(section.get("timeoutSeconds", 30)),
            workers=int(section.get("workers", 16)),
            queue_size=int(section.get("queue", 2000)),
            alpha=float(section.get("alpha", ALPHA)),
        )


class CompareStats:
    """Cumulative counts, keyed (shadow, name, field), in memory and flushed to SQLite; loaded again at start."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS stats (shadow TEXT, name TEXT, field TEXT, value REAL NOT NULL, "
            "PRIMARY KEY (shadow, name, field))"
        )
        self._lock = threading.Lock()
        self.values: dict[tuple[str, str, str], float] = {
            (s, n, f): v for s, n, f, v in self._db.execute("SELECT shadow, name, field, value FROM stats")
        }
        self._dirty: set[tuple[str, str, str]] = set()

    def add(self, shadow: str, name: str, value: float = 1.0, field: str = "") -> None:
        key = (shadow, name, field)
        with self._lock:
            self.values[key] = self.values.get(key, 0.0) + value
            self._dirty.add(key)

    def flush(self) -> None:
        with self._lock:
            rows = [(*key, self.values[key]) for key in self._dirty]
            self._dirty.clear()
            if not rows:
                return
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO stats (shadow, name, field, value) VALUES (?, ?, ?, ?) ON CONFLICT(shadow, name, field) "
                "DO UPDATE SET value = excluded.value",
                rows,
            )
            self._db.execute("COMMIT")

    def rows(self) -> list[list]:
        with self._lock:
            return [[s, n, f, v] for (s, n, f), v in sorted(self.values.items())]

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._db.close()


def _redact_document(document: Any, extra: tuple[tuple, ...]) -> Any:
    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: REDACTED if SECRET.search(str(k)) else walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    cleaned = walk(document)
    for path in extra:
        cleaned = paths.redacted(cleaned, path, REDACTED)
    return cleaned


def _redact_body(body: bytes, extra: tuple[tuple, ...]) -> Any:
    if not body:
        return None
    try:
        return _redact_document(json.loads(body), extra)
    except ValueError:
        return f"({len(body)} bytes, not JSON: not logged)"


def _redact_target(target: str) -> str:
    parts = urllib.parse.urlsplit(target)
    if not parts.query:
        return target
    query = [(k, REDACTED if SECRET.search(k) else v) for k, v in urllib.parse.parse_qsl(parts.query, True)]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query, safe="[]")))


def sampled_pair(
    endpoint: str,
    shadow: str,
    request: Request,
    answers: dict[str, Answer],
    differs: list[str],
    redact: tuple[tuple, ...],
) -> dict:
    """The JSON line written for a sampled pair: the request and both answers, secrets and `redact` paths out."""
    return {
        "turnout": "shadow-compare",
        "time": round(time.time(), 3),
        "endpoint": endpoint,
        "shadow": shadow,
        "request": {
            "method": request.method,
            "target": _redact_target(request.target),
            "headers": {k.lower(): REDACTED if SECRET.search(k) else v for k, v in request.headers},
            "body": _redact_body(request.body, redact),
        },
        **{
            role: {
                "status": answer.status,
                "ms": round(answer.seconds * 1000, 3),
                "error": answer.error,
                "body": _redact_body(answer.body, redact),
            }
            for role, answer in answers.items()
        },
        "differs": differs,
    }


class Comparison:
    def __init__(self, base, experiment: CompareSettings, stats: CompareStats, *, out=None) -> None:
        self.base, self.settings, self.stats = base, experiment, stats
        self.primary = Upstream(experiment.backends[experiment.primary])
        self.shadows = {s.version: Upstream(experiment.backends[s.version]) for s in experiment.shadows}
        self.jobs: queue.Queue = queue.Queue(maxsize=experiment.queue_size)
        self.calls = ThreadPoolExecutor(max_workers=experiment.workers * 2, thread_name_prefix="compare-call")
        self.rng = random.Random(os.urandom(16))
        self.out = out or sys.stdout
        self._out_lock = threading.Lock()
        self._stop = threading.Event()
        self._servers: list[ThreadingHTTPServer] = []
        self._alpha = comparison.field_alpha(experiment.alpha, len(experiment.fields))
        self._tracked: dict[str, set[str]] = {s.version: set() for s in experiment.shadows}
        for shadow, name, field in stats.values:
            if name == "compared" and shadow in self._tracked:
                self._tracked[shadow].add(field)

    # the mirrored copies ------------------------------------------------------------------------------

    def receive(self, handler: BaseHTTPRequestHandler, shadow: str) -> None:
        """A mirrored copy: queued for comparison and answered 202 at once (the mesh discards the answer)."""
        self.stats.add(shadow, "mirrored")
        try:
            request = read_request(handler)
            self.jobs.put_nowait((shadow, request))
        except BodyError:
            self.stats.add(shadow, "dropped", field="body")
        except queue.Full:
            self.stats.add(shadow, "dropped", field="queue-full")
        handler.send_response(202)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def compare_one(self, shadow: str, request: Request) -> None:
        timeout = self.settings.timeout_s
        baseline = self.calls.submit(self.primary.call, request, timeout=timeout)
        candidate = self.calls.submit(self.shadows[shadow].call, request, timeout=timeout)
        primary = self.primary.call(request, timeout=timeout)
        answers = {"primary": primary, "baseline": baseline.result(), "shadow": candidate.result()}
        if primary.error is not None or answers["baseline"].error is not None:
            self.stats.add(shadow, "dropped", field="primary-unavailable")
            self.stats.add(shadow, "errors", field="primary")
            return
        self.record(shadow, request, answers)

    def record(self, shadow: str, request: Request, answers: dict[str, Answer]) -> list[comparison.FieldOutcome]:
        stats = self.stats
        observed = {
            role: comparison.Answer.of(a.status, a.body)
            if a.error is None
            else comparison.Answer(0, comparison.MISSING)
            for role, a in answers.items()
        }
        outcomes = comparison.compare(
            observed["primary"],
            observed["baseline"],
            observed["shadow"],
            fields=self.settings.fields or None,
            tolerance=self.settings.tolerance,
        )
        stats.add(shadow, "joined")
        if comparison.agreed(outcomes):
            stats.add(shadow, "agreed")
        for role in ROLES:
            answer = answers[role]
            if answer.error is not None or answer.status >= 500:
                stats.add(shadow, "errors", field=role)
            bucket = next((i for i, b in enumerate(LATENCY_BUCKETS) if answer.seconds <= b), len(LATENCY_BUCKETS))
            stats.add(shadow, "latency", field=f"{role}:{bucket}")
            stats.add(shadow, "latency_sum", answer.seconds, field=role)
        differs = []
        for outcome in outcomes:
            name = outcome.field
            tracked = self._tracked[shadow]
            if name not in tracked:
                if len(tracked) > comparison.MAX_FIELDS:  # the status, MAX_FIELDS fields, then OTHER for the rest
                    name = comparison.OTHER
                tracked.add(name)
            stats.add(shadow, "compared", field=name)
            stats.add(shadow, f"kind:{outcome.kind}", field=name)
            if outcome.shadow_differs:
                stats.add(shadow, "differs", field=name)
                differs.append(outcome.field)
            if outcome.baseline_differs:
                stats.add(shadow, "noise", field=name)
            if outcome.shadow_differs and not outcome.baseline_differs:
                stats.add(shadow, "shadow_only", field=name)
            if outcome.baseline_differs and not outcome.shadow_differs:
                stats.add(shadow, "noise_only", field=name)
            if outcome.abs_difference is not None:
                stats.add(shadow, "abs_diff_sum", outcome.abs_difference, field=name)
                stats.add(shadow, "abs_diff_n", field=name)
            if outcome.overlap is not None:
                stats.add(shadow, "overlap_sum", outcome.overlap, field=name)
                stats.add(shadow, "overlap_n", field=name)
        if self.settings.sample and self.rng.random() * 100 < self.settings.sample:
            line = sampled_pair(self.base.endpoint, shadow, request, answers, differs, self.settings.redact)
            with self._out_lock:
                self.out.write(json.dumps(line, separators=(",", ":"), default=str) + "\n")
                self.out.flush()
        return outcomes

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                shadow, request = self.jobs.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self.compare_one(shadow, request)
            except Exception as error:  # noqa: BLE001 (one comparison lost, counted; the worker goes on)
                log.warning("compare: %s: %s", type(error).__name__, error)
                self.stats.add(shadow, "dropped", field="agent-error")
            finally:
                self.jobs.task_done()

    def _flush_forever(self) -> None:
        while not self._stop.wait(FLUSH_S):
            try:
                self.stats.flush()
            except sqlite3.Error as error:
                log.warning("compare: counts not flushed: %s", error)

    def start(self, host: str = "0.0.0.0", ports: dict[str, int] | None = None) -> list[ThreadingHTTPServer]:
        experiment = self
        for shadow in self.settings.shadows:
            version = shadow.version

            class Mirror(NoDelayHandler):
                protocol_version = "HTTP/1.1"
                server_version = "turnout-experiment-agent"

                def _receive(self, version=version) -> None:
                    try:
                        experiment.receive(self, version)
                    except (BrokenPipeError, ConnectionResetError):
                        self.close_connection = True

                do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _receive  # noqa: N815

                def log_message(self, format: str, *args) -> None:  # noqa: A002
                    log.debug("mirror: " + format, *args)

            port = (ports or {}).get(version, shadow.port)
            server = ThreadingHTTPServer((host, port), Mirror)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, name=f"mirror-{version}", daemon=True).start()
            self._servers.append(server)
        for index in range(self.settings.workers):
            threading.Thread(target=self._work, name=f"compare-{index}", daemon=True).start()
        threading.Thread(target=self._flush_forever, name="compare-flush", daemon=True).start()
        return self._servers

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued copy has been compared (tests, benchmarks, shutdown)."""
        deadline = time.monotonic() + timeout
        while self.jobs.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self.jobs.unfinished_tasks

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self.drain(5)
        self._stop.set()
        self.calls.shutdown(wait=False, cancel_futures=True)
        self.stats.flush()

    # the API ----------------------------------------------------------------------------------------------

    def handle(self, handler, method: str, path: str) -> bool:
        prefix = f"/v1/endpoints/{self.base.endpoint}/"
        if method == "GET" and path == "/metrics":
            handler._text(200, self.metrics_text(), "text/plain; version=0.0.4; charset=utf-8")
        elif method == "GET" and path == "/internal/totals":
            handler._json(200, {"replica": self.base.replica, "stats": self.stats.rows()})
        elif method == "GET" and path == prefix + "report":
            handler._json(200, self.report())
        elif path.startswith(prefix):
            handler._error(
                404 if path != prefix + "report" else 405,
                None,
                f"this agent serves GET {prefix}report (a shadow comparison takes no feedback)",
            )
        else:
            return False
        return True

    def gathered(self) -> tuple[dict[tuple[str, str, str], float], list[str], list[str]]:
        total: dict[tuple[str, str, str], float] = {}
        answered, missing = [], []
        for peer in self.base.peers:
            try:
                rows = (
                    self.stats.rows()
                    if peer.name == self.base.replica
                    else _get_json(f"{peer.url}/internal/totals")["stats"]
                )
            except (OSError, ValueError, KeyError) as error:
                log.warning("compare: replica %s did not answer: %s", peer.name, error)
                missing.append(peer.name)
                continue
            answered.append(peer.name)
            for shadow, name, field, value in rows:
                total[(shadow, name, field)] = total.get((shadow, name, field), 0.0) + float(value)
        return total, answered, missing

    def report(self) -> dict:
        values, answered, missing = self.gathered()
        return {
            "endpoint": self.base.endpoint,
            "strategy": "shadow",
            "primary": self.settings.primary,
            "compared": [name for name, _ in self.settings.fields] or "the whole body",
            "tolerance": self.settings.tolerance,
            "alpha": self.settings.alpha,
            "fieldAlpha": self._alpha,
            "shadows": [self.shadow_report(s.version, values) for s in self.settings.shadows],
            "replicas": {"answered": answered, "unreachable": missing},
            "replica": self.base.replica,
        }

    def shadow_report(self, shadow: str, values: dict) -> dict:
        def value(name: str, field: str = "") -> float:
            return values.get((shadow, name, field), 0.0)

        mirrored, joined = value("mirrored"), value("joined")
        names = sorted({f for s, n, f in values if s == shadow and n == "compared"})
        fields = []
        for name in names:
            compared = value("compared", name)
            shadow_only, noise_only = int(value("shadow_only", name)), int(value("noise_only", name))
            kinds = {
                n.split(":", 1)[1]: v
                for (s, n, f), v in values.items()
                if s == shadow and f == name and n.startswith("kind:")
            }
            entry = {
                "field": name,
                "kind": max(kinds, key=kinds.get) if kinds else None,
                "compared": int(compared),
                "disagreements": int(value("differs", name)),
                "rate": value("differs", name) / compared if compared else None,
                "noiseRate": value("noise", name) / compared if compared else None,
                "shadowOnly": shadow_only,
                "noiseOnly": noise_only,
                "evidence": comparison.log_evidence(shadow_only, noise_only),
                "flagged": comparison.flagged(shadow_only, noise_only, self._alpha),
            }
            if value("abs_diff_n", name):
                entry["meanAbsDifference"] = value("abs_diff_sum", name) / value("abs_diff_n", name)
            if value("overlap_n", name):
                entry["meanOverlap"] = value("overlap_sum", name) / value("overlap_n", name)
            fields.append(entry)
        latency = {role: _latency(values, shadow, role) for role in ROLES}
        errors = {role: value("errors", role) / joined if joined else None for role in ROLES}
        delta = {
            key: latency["shadow"][key] - latency["primary"][key]
            for key in ("meanMs", "p50Ms", "p99Ms")
            if latency["shadow"][key] is not None and latency["primary"][key] is not None
        }
        return {
            "version": shadow,
            "mirrored": int(mirrored),
            "joined": int(joined),
            "joinRate": joined / mirrored if mirrored else None,
            "dropped": {f: int(v) for (s, n, f), v in sorted(values.items()) if s == shadow and n == "dropped"},
            "agreement": value("agreed") / joined if joined else None,
            "flagged": [f["field"] for f in fields if f["flagged"]],
            "fields": fields,
            "latency": {**latency, "delta": delta},
            "errorRate": {**errors, "delta": errors["shadow"] - errors["primary"] if joined else None},
        }

    def metrics_text(self) -> str:
        endpoint = self.base.endpoint
        own = {key: v for key, v in ((tuple(r[:3]), r[3]) for r in self.stats.rows())}
        families = Families()

        def per_shadow(name: str, kind: str, text: str, stat: str) -> None:
            samples = [
                ({"endpoint": endpoint, "shadow": s.version}, own.get((s.version, stat, ""), 0.0))
                for s in self.settings.shadows
            ]
            families.add(name, kind, text, samples)

        per_shadow("turnout_compare_mirrored_total", "counter", "Mirrored copies this replica received.", "mirrored")
        per_shadow("turnout_compare_joined_total", "counter", "Copies joined with the primary's answers.", "joined")
        per_shadow("turnout_compare_agreed_total", "counter", "Joined copies on which the shadow agreed.", "agreed")
        families.add(
            "turnout_compare_dropped_total",
            "counter",
            "Copies this replica could not join, by reason.",
            [
                ({"endpoint": endpoint, "shadow": s, "reason": f}, v)
                for (s, n, f), v in sorted(own.items())
                if n == "dropped"
            ],
        )
        for stat, name, text in (
            ("differs", "turnout_compare_field_disagreements_total", "Joined copies whose field differs (shadow)."),
            (
                "noise",
                "turnout_compare_field_noise_total",
                "Joined copies whose field differs between primary answers.",
            ),
        ):
            families.add(
                name,
                "counter",
                text,
                [
                    ({"endpoint": endpoint, "shadow": s, "field": f}, v)
                    for (s, n, f), v in sorted(own.items())
                    if n == stat
                ],
            )
        families.add(
            "turnout_compare_errors_total",
            "counter",
            "Answers with a 5xx or none, by role (primary, shadow).",
            [
                ({"endpoint": endpoint, "shadow": s, "role": f}, v)
                for (s, n, f), v in sorted(own.items())
                if n == "errors"
            ],
        )
        series = []
        for shadow in self.settings.shadows:
            for role in ROLES:
                counts = [
                    int(own.get((shadow.version, "latency", f"{role}:{i}"), 0)) for i in range(len(LATENCY_BUCKETS) + 1)
                ]
                total = own.get((shadow.version, "latency_sum", role), 0.0)
                series.append(
                    ({"endpoint": endpoint, "shadow": shadow.version, "role": role}, LATENCY_BUCKETS, counts, total)
                )
        families.histogram(
            "turnout_compare_latency_seconds", "Answer times the agent measured, by role.", {}, series=series
        )
        report = self.report()
        families.add(
            "turnout_compare_agreement_ratio",
            "gauge",
            "Share of joined copies on which the shadow agreed (every replica).",
            [
                ({"endpoint": endpoint, "shadow": s["version"]}, s["agreement"])
                for s in report["shadows"]
                if s["agreement"] is not None
            ],
        )
        families.add(
            "turnout_compare_field_flagged",
            "gauge",
            "1 when the field differs more often than the primary varies by itself (sequential test).",
            [
                ({"endpoint": endpoint, "shadow": s["version"], "field": f["field"]}, 1.0 if f["flagged"] else 0.0)
                for s in report["shadows"]
                for f in s["fields"]
            ],
        )
        families.add(
            "turnout_compare_latency_delta_seconds",
            "gauge",
            "Shadow minus primary answer time, by statistic (mean, p50, p99; every replica).",
            [
                ({"endpoint": endpoint, "shadow": s["version"], "statistic": k.removesuffix("Ms")}, v / 1000)
                for s in report["shadows"]
                for k, v in s["latency"]["delta"].items()
            ],
        )
        families.add(
            "turnout_compare_error_rate_delta",
            "gauge",
            "Shadow minus primary error rate (every replica).",
            [
                ({"endpoint": endpoint, "shadow": s["version"]}, s["errorRate"]["delta"])
                for s in report["shadows"]
                if s["errorRate"]["delta"] is not None
            ],
        )
        return families.text()


def _latency(values: dict, shadow: str, role: str) -> dict:
    counts = [values.get((shadow, "latency", f"{role}:{i}"), 0.0) for i in range(len(LATENCY_BUCKETS) + 1)]
    total = sum(counts)
    if not total:
        return {"meanMs": None, "p50Ms": None, "p99Ms": None}

    def quantile(q: float) -> float:
        rank, running, low = q * total, 0.0, 0.0
        for bound, count in zip((*LATENCY_BUCKETS, LATENCY_BUCKETS[-1]), counts, strict=True):
            if count and running + count >= rank:
                return (low + (bound - low) * (rank - running) / count) * 1000
            running, low = running + count, bound
        return LATENCY_BUCKETS[-1] * 1000

    return {
        "meanMs": values.get((shadow, "latency_sum", role), 0.0) / total * 1000,
        "p50Ms": quantile(0.5),
        "p99Ms": quantile(0.99),
    }


def _get_json(url: str, timeout: float = 3.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (a peer's URL from the settings)
        return json.loads(response.read())
