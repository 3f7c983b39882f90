"""The agent of a progressive canary with `judge: sequential` (CONTRACT §1, §4): Flagger steps the weights and
calls this agent's webhooks; the sequential judge (turnout.experiments.judge) decides when to stop and when
promotion is safe, from the primary's and canary's request and error counts since the analysis started.

Flagger's webhooks (fluxcd/flagger pkg/controller/scheduler.go, scheduler_hooks.go), all POSTed with
`{"name", "namespace", "phase", "checksum", "metadata"}` to the webhook port (Flagger has no sidecar, so the
port is excluded from it, as the acceptance runner's is):

- `pre-rollout` (called before the canary gets any request; placed after the acceptance tests): starts the
  analysis of this `checksum` (the canary revision): the counters' current values become its baseline. A
  running analysis of the same checksum that already saw canary requests is kept, not reset.
- `rollback` (polled every interval while Progressing, Waiting or WaitingPromotion, before the checks):
  2xx makes Flagger roll back at once; this agent answers 200 only when the judge says "rollback", else 409.
- `rollout` (every interval, before the metric checks): non-2xx counts as one failed check. 409 when the
  judge says "rollback" (the rollback hook has normally already stopped the analysis), 503 when Prometheus
  cannot be read (no evidence either way: the same as Flagger's own check when its metrics server is down);
  200 otherwise, including when nothing was served (no traffic is never a failed check).
- `confirm-promotion` (before promotion at maxWeight; while it fails, Flagger holds the canary at maxWeight
  and keeps calling the other hooks): 200 only when the judge says "promote" (the documented minimum of
  canary requests reached and a regression of `promote_margin` ruled out), else 409.

Each call reads Prometheus (`istio_requests_total`, reporter destination, by destination_workload and
response_code: the primary's workload is `<endpoint>-primary`, the canary's `<endpoint>`), adds what each
series grew by since its last value (a counter that fell restarted: all of it is new), and gives the
cumulative counts to the judge. The analyses live in a JSON file on the agent's volume, written before the
answer: a restarted agent replays the recorded observations into a new judge and continues.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from turnout.experiments.judge import SequentialJudge
from turnout_agent.agent import confidence_interval
from turnout_agent.mesh import MeshError, Prometheus
from turnout_agent.metrics import Families
from turnout_agent.server import send_json
from turnout_agent.settings import SettingsError

log = logging.getLogger("turnout_agent")

HOOKS = ("pre-rollout", "rollout", "rollback", "confirm-promotion")
REQUESTS = "istio_requests_total"
DURATION_BUCKETS = "istio_request_duration_milliseconds_bucket"
KEPT_ANALYSES = 10
KEPT_VERDICTS = 200
MAX_BODY = 64 * 1024
ROLES = ("primary", "canary")
LARGEST = 1.7976931348623157e308


@dataclass(frozen=True)
class JudgeSettings:
    primary_workload: str
    canary_workload: str
    stable: str
    """The version the primary runs (as the stack names it), for the report."""
    canary: str
    alpha: float
    min_requests: int
    prometheus_url: str
    webhook_port: int
    latency_ms: float | None = None
    """Requests slower than this (a bucket boundary of Istio's histogram) are judged as errors are, by a second
    judge: a canary whose share of slow requests is shown worse than the primary's is rolled back."""

    @classmethod
    def parse(cls, document: dict) -> JudgeSettings:
        judge = document["judge"]
        settings = cls(
            primary_workload=str(judge["primaryWorkload"]),
            canary_workload=str(judge["canaryWorkload"]),
            stable=str(judge["stable"]),
            canary=str(judge["canary"]),
            alpha=float(judge["alpha"]),
            min_requests=int(judge["minRequests"]),
            prometheus_url=str(judge["prometheus"]).rstrip("/"),
            webhook_port=int(judge["webhookPort"]),
            latency_ms=float(judge["latencyMs"]) if judge.get("latencyMs") is not None else None,
        )
        SequentialJudge(alpha=settings.alpha, min_requests=settings.min_requests)  # the judge's own checks
        return settings


class WebhookError(ValueError):
    def __init__(self, status: int, field: str | None, message: str) -> None:
        super().__init__(message)
        self.status, self.field = status, field


class JudgeStore:
    """The analyses, one JSON document on the agent's volume, replaced atomically (written, synced, renamed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def load(self) -> dict:
        try:
            document = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"analyses": {}, "current": None}
        if not isinstance(document, dict) or "analyses" not in document:
            raise SettingsError(f"{self.path}: not the judge's analyses")
        return document

    def save(self, document: dict) -> None:
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("w") as file:
            json.dump(document, file, sort_keys=True)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _finite(evidence: dict[str, float]) -> dict[str, float]:
    """JSON has no infinity: an overwhelming likelihood ratio is written as the largest double."""
    return {k: v if math.isfinite(v) else LARGEST for k, v in evidence.items()}


def _bucket(le: str) -> float | None:
    try:
        return float(le)
    except ValueError:
        return None


def _series_key(labels: dict) -> str:
    return json.dumps({k: v for k, v in labels.items() if k != "__name__"}, sort_keys=True)


class CanaryJudge:
    """The extension the agent's HTTP API delegates to (report, metrics), and the webhook listener."""

    def __init__(self, base, judge: JudgeSettings, store: JudgeStore, prometheus: Prometheus | None = None) -> None:
        self.base, self.judge, self.store = base, judge, store
        self.prometheus = prometheus or Prometheus(judge.prometheus_url)
        self._lock = threading.Lock()
        self._document = store.load()
        self._judges: dict[str, SequentialJudge] = {}
        self._calls: dict[tuple[str, int], int] = {}
        self._server: ThreadingHTTPServer | None = None

    # the judge --------------------------------------------------------------------------------------------

    def _new_judge(self) -> SequentialJudge:
        """With latency judged too, each judge gets half of alpha: a canary no worse than the primary is rolled
        back by either with probability at most alpha, ever (the union bound)."""
        alpha = self.judge.alpha / (2 if self.judge.latency_ms is not None else 1)
        return SequentialJudge(alpha=alpha, min_requests=self.judge.min_requests)

    def _judges_of(self, checksum: str, analysis: dict) -> tuple[SequentialJudge, SequentialJudge | None]:
        """The analysis' judges (errors, and slow requests when latencyMs is set), rebuilt from its recorded
        observations after a restart."""
        judges = self._judges.get(checksum)
        if judges is None:
            errors = self._new_judge()
            latency = self._new_judge() if self.judge.latency_ms is not None else None
            for observation in analysis["observations"]:
                errors.update(primary=tuple(observation[1]), canary=tuple(observation[2]))
                if latency is not None and len(observation) == 5:
                    latency.update(primary=tuple(observation[3]), canary=tuple(observation[4]))
            judges = self._judges[checksum] = (errors, latency)
        return judges

    def _read(self) -> dict[str, tuple[str, str, float]]:
        """Every series the judges count, of the two workloads: key -> (role, kind, value); kind is `request` or
        `error` (istio_requests_total by response_code), or `all` or `fast` (the latency histogram's +Inf bucket and
        its bucket at latencyMs: slow requests are all - fast, from one histogram, scraped together)."""
        namespace = self.base.namespace
        workloads = f"{self.judge.primary_workload}|{self.judge.canary_workload}"
        selector = (
            f'{{reporter="destination",destination_workload_namespace="{namespace}",'
            f'destination_workload=~"{workloads}"}}'
        )
        roles = {self.judge.primary_workload: "primary", self.judge.canary_workload: "canary"}
        found = {}
        for item in self.prometheus.query(REQUESTS + selector):
            labels = item.get("metric") or {}
            role = roles.get(labels.get("destination_workload"))
            if role is not None:
                kind = "error" if str(labels.get("response_code", "")).startswith("5") else "request"
                found[_series_key(labels)] = (role, kind, float(item["value"][1]))
        if self.judge.latency_ms is None:
            return found
        for item in self.prometheus.query(DURATION_BUCKETS + selector):
            labels = item.get("metric") or {}
            role = roles.get(labels.get("destination_workload"))
            le = labels.get("le", "")
            kind = "all" if le == "+Inf" else "fast" if _bucket(le) == self.judge.latency_ms else None
            if role is not None and kind is not None:
                found[_series_key(labels)] = (role, kind, float(item["value"][1]))
        return found

    def _start(self, checksum: str, now: float, series: dict, *, how: str) -> dict:
        analysis = {
            "checksum": checksum,
            "startedAt": now,
            "started": how,
            "last": {key: value for key, (_, _, value) in series.items()},
            "counts": {role: [0, 0] for role in ROLES},
            "latency": None
            if self.judge.latency_ms is None
            else {"thresholdMs": self.judge.latency_ms, "counts": {role: [0, 0] for role in ROLES}},
            "observations": [],
            "verdicts": [],
            "verdict": "continue",
            "evidence": None,
        }
        document = self._document
        document["analyses"][checksum] = analysis
        document["current"] = checksum
        for old in sorted(document["analyses"], key=lambda c: document["analyses"][c]["startedAt"])[:-KEPT_ANALYSES]:
            del document["analyses"][old]
            self._judges.pop(old, None)
        self._judges.pop(checksum, None)
        return analysis

    def _observe(self, analysis: dict, series: dict, now: float) -> str:
        last, counts = analysis["last"], analysis["counts"]
        latency = analysis.get("latency")
        fast = {role: 0 for role in ROLES}
        grown = False
        for key, (role, kind, value) in series.items():
            previous = last.get(key)
            growth = int(round(value if previous is None or value < previous else value - previous))
            last[key] = value
            if not growth:
                continue
            grown = True
            if kind in ("request", "error"):
                counts[role][0] += growth
                counts[role][1] += growth if kind == "error" else 0
            elif latency is not None and kind == "all":
                latency["counts"][role][0] += growth
                latency["counts"][role][1] += growth  # every request slow until its fast bucket says otherwise
            elif latency is not None:
                fast[role] += growth
        for role in ROLES:
            counts[role][1] = min(counts[role][1], counts[role][0])
            if latency is not None:
                slow = latency["counts"][role]
                slow[1] = min(slow[0], max(0, slow[1] - fast[role]))
        errors_judge, latency_judge = self._judges_of(analysis["checksum"], analysis)
        primary, canary = tuple(counts["primary"]), tuple(counts["canary"])
        observation = [round(now, 3), list(primary), list(canary)]
        verdict = errors_judge.update(primary=primary, canary=canary)
        evidence = errors_judge.evidence()
        if latency is not None and latency_judge is not None:
            slow_primary, slow_canary = tuple(latency["counts"]["primary"]), tuple(latency["counts"]["canary"])
            observation += [list(slow_primary), list(slow_canary)]
            slow_verdict = latency_judge.update(primary=slow_primary, canary=slow_canary)
            latency["verdict"] = slow_verdict
            latency["evidence"] = _finite(latency_judge.evidence())
            # Rolled back when either judge shows a regression; promoted when both rule one out.
            if slow_verdict == "rollback":
                verdict = "rollback"
            elif verdict == "promote" and slow_verdict != "promote":
                verdict = "continue"
        if grown or not analysis["observations"]:
            analysis["observations"].append(observation)
        if analysis["verdict"] == "rollback":
            verdict = "rollback"  # final, whichever judge said it
        analysis["verdict"] = verdict
        analysis["evidence"] = _finite(evidence)
        return verdict

    def webhook(self, hook: str, payload: Any, *, now: float | None = None) -> tuple[int, dict]:
        """One Flagger webhook call: (HTTP status, body)."""
        now = time.time() if now is None else now
        if hook not in HOOKS:
            raise WebhookError(HTTPStatus.NOT_FOUND, None, f"unknown hook {hook!r}; served: {', '.join(HOOKS)}")
        if not isinstance(payload, dict):
            raise WebhookError(HTTPStatus.BAD_REQUEST, "(body)", "expected Flagger's webhook payload (a JSON object)")
        for field, expected in (("name", self.base.endpoint), ("namespace", self.base.namespace)):
            if payload.get(field) != expected:
                raise WebhookError(
                    HTTPStatus.UNPROCESSABLE_ENTITY,
                    field,
                    f"{payload.get(field)!r}; this agent judges Canary {self.base.namespace}/{self.base.endpoint}",
                )
        checksum = payload.get("checksum") or ""
        if not isinstance(checksum, str) or len(checksum) > 256:
            raise WebhookError(HTTPStatus.UNPROCESSABLE_ENTITY, "checksum", f"{checksum!r}; expected a checksum")
        phase = str(payload.get("phase") or "")
        with self._lock:
            try:
                series = self._read()
            except MeshError as error:
                self._count(hook, HTTPStatus.SERVICE_UNAVAILABLE)
                return HTTPStatus.SERVICE_UNAVAILABLE, {"verdict": None, "error": f"no evidence: {error}"}
            analyses = self._document["analyses"]
            analysis = analyses.get(checksum)
            if hook == "pre-rollout":
                if analysis is None or analysis["verdict"] != "continue" or analysis["counts"]["canary"][0] == 0:
                    analysis = self._start(checksum, now, series, how="pre-rollout")
                else:
                    self._observe(analysis, series, now)
                status = HTTPStatus.OK
            else:
                if analysis is None:  # the agent missed pre-rollout (its volume was replaced): start now
                    analysis = self._start(checksum, now, series, how=hook)
                verdict = self._observe(analysis, series, now)
                if hook == "rollback":
                    status = HTTPStatus.OK if verdict == "rollback" else HTTPStatus.CONFLICT
                elif hook == "confirm-promotion":
                    status = HTTPStatus.OK if verdict == "promote" else HTTPStatus.CONFLICT
                else:
                    status = HTTPStatus.CONFLICT if verdict == "rollback" else HTTPStatus.OK
            self._document["current"] = checksum
            entry = {"at": round(now, 3), "hook": hook, "phase": phase, "verdict": analysis["verdict"]}
            entry["status"] = int(status)
            analysis["verdicts"] = [*analysis["verdicts"], entry][-KEPT_VERDICTS:]
            self.store.save(self._document)
            self._count(hook, status)
            return status, {
                "hook": hook,
                "verdict": analysis["verdict"],
                "primary": analysis["counts"]["primary"],
                "canary": analysis["counts"]["canary"],
                "evidence": analysis["evidence"],
                "minRequests": self.judge.min_requests,
            }

    def _count(self, hook: str, status: int) -> None:
        self._calls[(hook, int(status))] = self._calls.get((hook, int(status)), 0) + 1

    # what callers read -----------------------------------------------------------------------------------------

    def report(self) -> dict:
        with self._lock:
            document = json.loads(json.dumps(self._document))
        current = document["analyses"].get(document.get("current") or "")
        versions = []
        analysis_report = None
        if current is not None:
            for role, version in (("primary", self.judge.stable), ("canary", self.judge.canary)):
                requests, errors = current["counts"][role]
                low, high = confidence_interval(errors, requests)
                versions.append(
                    {
                        "version": version,
                        "role": role,
                        "workload": self.judge.primary_workload if role == "primary" else self.judge.canary_workload,
                        "requests": requests,
                        "errors": errors,
                        "rate": errors / requests if requests else None,
                        "interval": [low, high],
                    }
                )
            analysis_report = {
                "latency": current.get("latency"),
                "checksum": current["checksum"],
                "startedAt": current["startedAt"],
                "started": current["started"],
                "verdict": current["verdict"],
                "evidence": current["evidence"],
                "verdicts": current["verdicts"],
                "observations": current["observations"],
            }
        return {
            "endpoint": self.base.endpoint,
            "strategy": "canary",
            "judge": {
                "kind": "sequential",
                "test": "mSPRT on the canary-to-primary error-rate ratio (turnout.experiments.judge)",
                "alpha": self.judge.alpha,
                "minRequests": self.judge.min_requests,
                "latencyMs": self.judge.latency_ms,
            },
            "confidence": 0.95,
            "rateMeaning": "error rate (5xx share), with an always-valid 95% interval",
            "versions": versions,
            "analysis": analysis_report,
            "analyses": [
                {"checksum": c, "startedAt": a["startedAt"], "verdict": a["verdict"], "counts": a["counts"]}
                for c, a in sorted(document["analyses"].items(), key=lambda item: item[1]["startedAt"])
            ],
        }

    def metrics_text(self) -> str:
        families = Families()
        report = self.report()
        endpoint = self.base.endpoint
        for name, key, text in (
            ("turnout_judge_requests_total", "requests", "Requests per version since the analysis started."),
            ("turnout_judge_errors_total", "errors", "5xx answers per version since the analysis started."),
        ):
            families.add(
                name,
                "counter",
                text,
                [
                    ({"endpoint": endpoint, "version": v["version"], "role": v["role"]}, v[key])
                    for v in report["versions"]
                ],
            )
        analysis = report["analysis"]
        verdict = analysis["verdict"] if analysis else None
        families.add(
            "turnout_judge_verdict",
            "gauge",
            "1 for the judge's current verdict on the current analysis.",
            [({"endpoint": endpoint, "verdict": v}, float(v == verdict)) for v in ("continue", "rollback", "promote")],
        )
        evidence = (analysis or {}).get("evidence") or {}
        for name, key in (
            ("turnout_judge_regression_p_value", "regression_p_value"),
            ("turnout_judge_promotion_p_value", "promotion_p_value"),
        ):
            if key in evidence:
                families.add(name, "gauge", f"Always-valid p-value ({key}).", [({"endpoint": endpoint}, evidence[key])])
        families.add(
            "turnout_judge_webhook_calls_total",
            "counter",
            "Flagger webhook calls this replica answered, by hook and status.",
            [
                ({"endpoint": endpoint, "hook": hook, "status": str(status)}, float(count))
                for (hook, status), count in sorted(self._calls.items())
            ],
        )
        return families.text()

    def handle(self, handler, method: str, path: str) -> bool:
        prefix = f"/v1/endpoints/{self.base.endpoint}/"
        if method == "GET" and path == "/metrics":
            handler._text(200, self.metrics_text(), "text/plain; version=0.0.4; charset=utf-8")
        elif method == "GET" and path == prefix + "report":
            handler._json(200, self.report())
        elif path.startswith(prefix):
            handler._error(
                404 if path != prefix + "report" else 405,
                None,
                f"this agent serves GET {prefix}report; Flagger calls its webhooks on port {self.judge.webhook_port}",
            )
        else:
            return False
        return True

    # the webhook listener ----------------------------------------------------------------------------------------

    def start(self, host: str = "0.0.0.0", port: int | None = None) -> ThreadingHTTPServer:
        judge = self

        class Webhooks(BaseHTTPRequestHandler):
            server_version = "turnout-experiment-agent/0.1.0"

            def _json(self, status: int, body: dict) -> None:
                send_json(self, status, body)

            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/healthz":
                    self._json(200, {"ok": True})
                else:
                    self._json(405, {"error": "Flagger POSTs its webhooks: /flagger/HOOK", "field": None})

            def do_POST(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0]
                hook = path.removeprefix("/flagger/") if path.startswith("/flagger/") else None
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    if hook is None:
                        raise WebhookError(404, None, f"{path}: this port serves /flagger/HOOK, HOOK one of {HOOKS}")
                    if not 0 <= length <= MAX_BODY:
                        raise WebhookError(413, "(body)", f"at most {MAX_BODY} bytes")
                    try:
                        payload = json.loads(self.rfile.read(length) or b"null")
                    except ValueError:
                        raise WebhookError(400, "(body)", "the body is not JSON") from None
                    status, body = judge.webhook(hook, payload)
                except WebhookError as error:
                    status, body = error.status, {"error": str(error), "field": error.field}
                except ValueError as error:
                    status, body = 400, {"error": str(error), "field": None}
                self._json(int(status), body)

            def log_message(self, format: str, *args) -> None:  # noqa: A002
                log.debug("webhook: " + format, *args)

        server = ThreadingHTTPServer((host, self.judge.webhook_port if port is None else port), Webhooks)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="webhooks", daemon=True).start()
        self._server = server
        return server

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
