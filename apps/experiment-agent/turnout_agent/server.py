"""The agent's HTTP API (CONTRACT §4), stdlib only. Bad calls get 4xx with a JSON error naming the field."""

from __future__ import annotations

import json
import logging
import math
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from turnout_agent import report_html
from turnout_agent.agent import Agent
from turnout_agent.ledger import Outcome

log = logging.getLogger("turnout_agent")

MAX_BODY = 1 << 20
MAX_ITEMS = 1000
REQUEST_ID_SEPARATOR = "."  # x-turnout-request-id is VERSION.X-REQUEST-ID (set per destination by the route)


class FeedbackError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def parse_feedback(body: Any, arms: tuple[str, ...]) -> list[Outcome]:
    """One outcome or a list of them: {"version", "reward"} or {"requestId", "reward"}, reward in [0, 1]."""
    single = isinstance(body, dict)
    items = [body] if single else body
    if not isinstance(items, list) or not items:
        raise FeedbackError("(body)", "expected an object or a non-empty list of objects")
    if len(items) > MAX_ITEMS:
        raise FeedbackError("(body)", f"{len(items)} items; at most {MAX_ITEMS} per call")
    outcomes = []
    for index, item in enumerate(items):
        where = "" if single else f"[{index}]."
        if not isinstance(item, dict):
            raise FeedbackError(f"[{index}]", "expected an object")
        unknown = sorted(set(item) - {"version", "requestId", "reward"})
        if unknown:
            raise FeedbackError(f"{where}{unknown[0]}", "unknown field; allowed: version, requestId, reward")
        reward = item.get("reward")
        if isinstance(reward, bool) or not isinstance(reward, (int, float)) or not math.isfinite(reward):
            raise FeedbackError(f"{where}reward", f"{reward!r}; expected a number from 0 to 1")
        if not 0 <= reward <= 1:
            raise FeedbackError(f"{where}reward", f"{reward!r}; expected a number from 0 to 1")
        request_id = item.get("requestId")
        if ("version" in item) == (request_id is not None):
            raise FeedbackError(f"{where}version", "expected exactly one of version and requestId")
        if request_id is not None:
            if not isinstance(request_id, str) or REQUEST_ID_SEPARATOR not in request_id or len(request_id) > 256:
                raise FeedbackError(
                    f"{where}requestId", f"{request_id!r}; expected the x-turnout-request-id of an answer"
                )
            version = request_id.split(REQUEST_ID_SEPARATOR, 1)[0]
            if version not in arms:
                raise FeedbackError(
                    f"{where}requestId", f"names version {version!r}; expected one of {', '.join(arms)}"
                )
        else:
            version = item["version"]
            if version not in arms:
                raise FeedbackError(f"{where}version", f"{version!r}; expected one of {', '.join(arms)}")
        outcomes.append(Outcome(version, float(reward), request_id))
    return outcomes


def metrics_text(agent: Agent) -> str:
    """The report as Prometheus metrics, with this replica's own ledger and leadership."""
    lines = []

    def family(name: str, kind: str, text: str, samples: list[tuple[dict, float]]) -> None:
        lines.extend([f"# HELP {name} {text}", f"# TYPE {name} {kind}"])
        for labels, value in samples:
            rendered = ",".join(f'{k}="{v}"' for k, v in labels.items())
            lines.append(f"{name}{{{rendered}}} {value:g}" if rendered else f"{name} {value:g}")

    endpoint = agent.settings.endpoint
    own = agent.ledger.totals()
    family(
        "turnout_agent_feedback_total",
        "counter",
        "Outcomes this replica recorded in its ledger.",
        [({"endpoint": endpoint, "version": v}, own.get(v, (0, 0.0))[0]) for v in agent.settings.arms],
    )
    family(
        "turnout_agent_feedback_reward_total",
        "counter",
        "Reward this replica recorded in its ledger.",
        [({"endpoint": endpoint, "version": v}, own.get(v, (0, 0.0))[1]) for v in agent.settings.arms],
    )
    family(
        "turnout_agent_leader",
        "gauge",
        "1 while this replica holds the Lease.",
        [({"endpoint": endpoint}, 1.0 if agent.leader else 0.0)],
    )
    family(
        "turnout_agent_rounds_failed_total",
        "counter",
        "Rounds this replica skipped (Prometheus or the state unavailable).",
        [({"endpoint": endpoint}, float(agent.rounds_failed))],
    )
    try:
        report = agent.report()
    except Exception as error:  # noqa: BLE001 (the experiment state is unreachable: say so, keep serving)
        log.warning("metrics: no report: %s", error)
        return "\n".join(lines) + "\n"
    for name, key, text in (
        ("turnout_experiment_requests_total", "trials", "Trials per version (requests, or reported outcomes)."),
        ("turnout_experiment_rewards_total", "rewards", "Reward per version."),
    ):
        family(
            name,
            "counter",
            text,
            [({"endpoint": endpoint, "version": v["version"]}, v[key]) for v in report["versions"]],
        )
    family(
        "turnout_experiment_weight_percent",
        "gauge",
        "The weight the agent last wrote per version.",
        [
            ({"endpoint": endpoint, "version": v["version"]}, v["weight"])
            for v in report["versions"]
            if v["weight"] is not None
        ],
    )
    family(
        "turnout_experiment_reward_rate",
        "gauge",
        "Reward rate per version (rewards / trials).",
        [
            ({"endpoint": endpoint, "version": v["version"]}, v["rate"])
            for v in report["versions"]
            if v["rate"] is not None
        ],
    )
    for bound, index in (("low", 0), ("high", 1)):
        family(
            f"turnout_experiment_reward_rate_{bound}",
            "gauge",
            f"The {bound} end of the reward rate's always-valid {report['confidence']:.0%} interval.",
            [({"endpoint": endpoint, "version": v["version"]}, v["interval"][index]) for v in report["versions"]],
        )
    family(
        "turnout_experiment_difference_p_value",
        "gauge",
        "Always-valid p-value of the version's reward rate equal to the baseline's (the first version).",
        [
            ({"endpoint": endpoint, "version": c["version"], "baseline": c["baseline"]}, c["pValue"])
            for c in report["comparisons"]
        ],
    )
    family(
        "turnout_experiment_round",
        "counter",
        "Rounds written to the experiment state.",
        [({"endpoint": endpoint}, float(report["round"]))],
    )
    return "\n".join(lines) + "\n"


def send_json(handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    """Answer `body` as JSON (keys sorted, one line) with `status`: every listener of the agent answers this way."""
    data = (json.dumps(body, sort_keys=True) + "\n").encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def make_server(agent: Agent, host: str = "0.0.0.0", port: int | None = None) -> ThreadingHTTPServer:
    settings = agent.settings
    prefix = f"/v1/endpoints/{settings.endpoint}/"

    class Handler(BaseHTTPRequestHandler):
        server_version = "turnout-experiment-agent/0.1.0"

        def _json(self, status: int, body: Any) -> None:
            send_json(self, status, body)

        def _error(self, status: int, field: str | None, message: str) -> None:
            self._json(status, {"error": message, "field": field})

        def _text(self, status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _not_here(self) -> None:
            self._error(
                HTTPStatus.NOT_FOUND,
                "endpoint",
                f"this agent serves endpoint {settings.endpoint!r}: {prefix}feedback, {prefix}report",
            )

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path, _, query = self.path.partition("?")
            if path == prefix + "report" and report_html.wants_html(self.headers.get("Accept"), query):
                try:
                    report = agent.extension.report() if agent.extension is not None else agent.report()
                except Exception as error:  # noqa: BLE001 (the state unreachable: 503, not a crash)
                    self._error(HTTPStatus.SERVICE_UNAVAILABLE, None, f"the experiment state is unavailable: {error}")
                    return
                try:
                    page = report_html.render(report)
                except Exception as error:  # noqa: BLE001 (a report the page cannot show: say so, keep serving)
                    log.error("report page: %s: %s", type(error).__name__, error)
                    self._error(HTTPStatus.INTERNAL_SERVER_ERROR, None, f"the report page failed: {error}")
                    return
                self._text(200, page, "text/html; charset=utf-8")
                return
            if agent.extension is not None and agent.extension.handle(self, "GET", path):
                return
            if path == "/healthz":
                self._text(200, "ok\n")
            elif path == "/readyz":
                self._text(200, "ready\n")
            elif path == "/metrics":
                self._text(200, metrics_text(agent), "text/plain; version=0.0.4; charset=utf-8")
            elif path == "/internal/totals":
                totals = agent.ledger.totals()
                self._json(200, {"replica": settings.replica, "totals": {v: list(c) for v, c in totals.items()}})
            elif path == prefix + "report":
                try:
                    self._json(200, agent.report())
                except Exception as error:  # noqa: BLE001 (the state ConfigMap unreachable: 503, not a crash)
                    self._error(HTTPStatus.SERVICE_UNAVAILABLE, None, f"the experiment state is unavailable: {error}")
            elif path in (prefix + "feedback",):
                self._error(HTTPStatus.METHOD_NOT_ALLOWED, None, "POST feedback")
            else:
                self._not_here()

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            if agent.extension is not None and agent.extension.handle(self, "POST", path):
                return
            if path != prefix + "feedback":
                self._not_here() if not path.startswith(prefix) else self._error(405, None, "only feedback is posted")
                return
            if settings.reward_source != "feedback":
                self._error(HTTPStatus.CONFLICT, "reward", "this endpoint's rewards are measured by the mesh (slo)")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY:
                self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "(body)", f"at most {MAX_BODY} bytes")
                return
            try:
                body = json.loads(self.rfile.read(length) or b"null")
            except ValueError:
                self._error(HTTPStatus.BAD_REQUEST, "(body)", "the body is not JSON")
                return
            try:
                outcomes = parse_feedback(body, settings.arms)
            except FeedbackError as error:
                self._error(HTTPStatus.UNPROCESSABLE_ENTITY, error.field, str(error))
                return
            try:
                recorded = agent.ledger.record(outcomes)
            except Exception as error:  # noqa: BLE001 (not durable: the caller must retry)
                log.error("feedback: ledger write failed: %s", error)
                self._error(HTTPStatus.SERVICE_UNAVAILABLE, None, "not recorded; retry")
                return
            self._json(200, {"accepted": recorded.accepted, "duplicates": recorded.duplicates})

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            log.debug("http: " + format, *args)

    server = ThreadingHTTPServer((host, settings.listen_port if port is None else port), Handler)
    server.daemon_threads = True
    return server


def serve_in_background(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return thread
