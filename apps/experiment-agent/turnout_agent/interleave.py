"""An `interleaved` endpoint's experiment (CONTRACT §1, §4): the agent answers `percent`% of the endpoint's
requests (its VirtualService sends them to the agent's proxy port). It calls control and treatment concurrently
with the request as received, reads each ranked list at `items` and each item's id at `itemId`, merges the two with
`turnout.experiments.interleaving.interleave`, and answers in control's shape with `x-turnout-impression` and
`x-turnout-version`. Clicks reported back for an impression are credited with `interleaving.credit`.

If treatment fails, answers no usable list, or misses its time budget, the user gets control's answer unchanged
(with `x-turnout-version: CONTROL` and no impression) and nothing is counted but the fallback and its reason.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from turnout.experiments import interleaving
from turnout_agent import paths
from turnout_agent.impressions import CLAIMED, DUPLICATE, InterleavingLedger
from turnout_agent.metrics import Families, Histogram
from turnout_agent.upstream import (
    Answer,
    BodyError,
    NoDelayHandler,
    Upstream,
    read_request,
    send_answer,
    send_error,
)

log = logging.getLogger("turnout_agent")

MAX_CLICK_ITEMS = 1000
MAX_LIST = 1000
ALPHA = 0.05
CREDIT_CONTROL, CREDIT_TREATMENT, CREDIT_TIE = "credit:control", "credit:treatment", "credit:tie"
SERVED, EXPIRED = "impressions", "expired"
MERGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)


@dataclass(frozen=True)
class InterleavingSettings:
    control: str
    treatment: str
    method: str
    items: tuple[str | int, ...]
    item_id: tuple[str | int, ...]
    budget_s: float
    click_window_s: float
    timeout_s: float
    proxy_port: int
    backends: dict[str, str]
    store: str
    """cache (the stack's, shared by the replicas) | ledger (each replica's own)"""
    cache_prefix: str

    @classmethod
    def parse(cls, document: dict) -> InterleavingSettings:
        section = document["interleaving"]
        if section.get("method") not in interleaving.METHODS:
            raise ValueError(f"interleaving.method {section.get('method')!r}; expected {interleaving.METHODS}")
        backends = dict(document["backends"])
        for role in ("control", "treatment"):
            if section[role] not in backends:
                raise ValueError(f"interleaving.{role} {section[role]!r} has no backend")
        store = section.get("store", "ledger")
        if store not in ("cache", "ledger"):
            raise ValueError(f"interleaving.store {store!r}; expected cache or ledger")
        return cls(
            control=section["control"],
            treatment=section["treatment"],
            method=section["method"],
            items=paths.steps(section["items"]),
            item_id=paths.steps(section["itemId"]),
            budget_s=float(section["budgetMs"]) / 1000,
            click_window_s=float(section["clickWindowSeconds"]),
            timeout_s=float(section.get("timeoutSeconds", 30)),
            proxy_port=int(section["proxyPort"]),
            backends=backends,
            store=store,
            cache_prefix=str(section.get("cachePrefix") or f"turnout:{document['namespace']}:{document['endpoint']}"),
        )


class ClickError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def parse_clicks(body: Any) -> list[tuple[str, list[str]]]:
    """{"impression": ID, "clicked": [ITEM_ID, ...]} or a list of them; item ids compare as text."""
    single = isinstance(body, dict)
    reports = [body] if single else body
    if not isinstance(reports, list) or not reports:
        raise ClickError("(body)", "expected an object or a non-empty list of objects")
    if len(reports) > MAX_CLICK_ITEMS:
        raise ClickError("(body)", f"{len(reports)} reports; at most {MAX_CLICK_ITEMS} per call")
    parsed = []
    for index, report in enumerate(reports):
        where = "" if single else f"[{index}]."
        if not isinstance(report, dict):
            raise ClickError(f"[{index}]", "expected an object")
        unknown = sorted(set(report) - {"impression", "clicked"})
        if unknown:
            raise ClickError(f"{where}{unknown[0]}", "unknown field; allowed: impression, clicked")
        impression = report.get("impression")
        if not isinstance(impression, str) or not _impression_shape(impression):
            raise ClickError(f"{where}impression", f"{impression!r}; expected the x-turnout-impression of an answer")
        clicked = report.get("clicked")
        if not isinstance(clicked, list) or len(clicked) > MAX_CLICK_ITEMS:
            raise ClickError(f"{where}clicked", f"expected a list of at most {MAX_CLICK_ITEMS} item ids")
        for position, item in enumerate(clicked):
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise ClickError(f"{where}clicked[{position}]", f"{item!r}; expected an item id (a string or integer)")
        parsed.append((impression, [str(item) for item in clicked]))
    return parsed


def _impression_shape(impression: str) -> bool:
    owner, _, token = impression.partition(".")
    return owner.isdigit() and len(owner) <= 4 and len(token) == 24 and all(c in "0123456789abcdef" for c in token)


def ranked(answer: Answer | None, settings: InterleavingSettings) -> tuple[Any, list, list[str]] | str:
    """(the JSON answer, its ranked items, their ids as text), or why the answer cannot be interleaved."""
    if answer is None:
        return "timeout"
    if answer.error is not None:
        return "timeout" if answer.error == "timeout" else "error"
    if not 200 <= answer.status < 300:
        return "status"
    try:
        document = json.loads(answer.body)
    except ValueError:
        return "not-json"
    items = paths.get(document, settings.items)
    if not isinstance(items, list) or len(items) > MAX_LIST:
        return "no-list"
    ids = []
    for item in items:
        found = item if isinstance(item, (str, int)) else paths.get(item, settings.item_id)
        if isinstance(found, bool) or not isinstance(found, (str, int)):
            return "no-id"
        ids.append(str(found))
    return document, items, ids


def merge(control: tuple, treatment: tuple, settings: InterleavingSettings, rng: random.Random) -> tuple[bytes, dict]:
    """Control's document with its list replaced by the interleaved one, and {item id: "a" | "b"} (a: control)."""
    document, control_items, control_ids = control
    _, treatment_items, treatment_ids = treatment
    merged_ids, teams = interleaving.interleave(control_ids, treatment_ids, method=settings.method, rng=rng)
    objects: dict[str, dict] = {"a": {}, "b": {}}
    for team, ids, items in (("a", control_ids, control_items), ("b", treatment_ids, treatment_items)):
        for item_id, item in zip(ids, items, strict=True):
            objects[team].setdefault(item_id, item)
    items = [
        objects[teams[i]][i] if i in teams else objects["a"].get(i, objects["b"].get(i))  # uncounted: control's
        for i in merged_ids
    ]
    body = json.dumps(paths.replaced(document, settings.items, items), separators=(",", ":")).encode()
    return body, teams


class Interleaving:
    """The experiment: the proxy the VirtualService sends `percent`% of requests to, the clicks API, the counts."""

    def __init__(self, base, experiment: InterleavingSettings, ledger: InterleavingLedger, store) -> None:
        self.base, self.settings, self.ledger, self.store = base, experiment, ledger, store
        self.index = [p.name for p in base.peers].index(base.replica)
        self.control = Upstream(experiment.backends[experiment.control])
        self.treatment = Upstream(experiment.backends[experiment.treatment])
        self.pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="treatment")
        self.rng = random.Random(os.urandom(16))
        self.merge_seconds = Histogram(MERGE_BUCKETS)
        self.both = f"{experiment.control},{experiment.treatment}"
        self._stop = threading.Event()
        self.proxy: ThreadingHTTPServer | None = None

    # the user's path ---------------------------------------------------------------------------------

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        settings = self.settings
        started = time.perf_counter()
        try:
            request = read_request(handler)
        except BodyError as error:
            send_error(handler, 413, f"turnout agent: {error}", {})
            return
        pending = self.pool.submit(self.treatment.call, request, timeout=settings.budget_s)
        control = self.control.call(request, timeout=settings.timeout_s)
        if control.error is not None:
            self.ledger.count("fallback:control-unavailable")
            send_error(
                handler, 502 if control.error != "timeout" else 504, f"control did not answer: {control.error}", {}
            )
            return
        try:
            treatment = pending.result(timeout=max(0.0, settings.budget_s - (time.perf_counter() - started)))
        except FutureTimeout:
            treatment = None
        control_list = ranked(control, settings)
        treatment_list = ranked(treatment, settings)
        reason = None
        if isinstance(control_list, str):
            reason = f"control-{control_list}"
        elif isinstance(treatment_list, str):
            reason = f"treatment-{treatment_list}"
        if reason is None:
            merging = time.perf_counter()
            body, teams = merge(control_list, treatment_list, settings, self.rng)
            impression = f"{self.index}.{secrets.token_hex(12)}"
            try:
                kept = self.store.remember(impression, teams, served=SERVED)
            except Exception as error:  # noqa: BLE001 (the store unavailable: the user still gets control's answer)
                log.warning("interleaving: impression not stored: %s", error)
                kept = False
            self.merge_seconds.observe(time.perf_counter() - merging)
            if kept:
                extra = {"x-turnout-version": self.both, "x-turnout-impression": impression}
                send_answer(handler, control, body, extra)
                return
            reason = "store-unavailable"
        self.ledger.count(f"fallback:{reason}")
        send_answer(handler, control, control.body, {"x-turnout-version": settings.control})

    def start(self, host: str = "0.0.0.0", port: int | None = None) -> ThreadingHTTPServer:
        experiment = self

        class Proxy(NoDelayHandler):
            protocol_version = "HTTP/1.1"  # kept-alive connections from the sidecar
            server_version = "turnout-experiment-agent"

            def _answer(self) -> None:
                try:
                    experiment.answer(self)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer  # noqa: N815

            def log_message(self, format: str, *args) -> None:  # noqa: A002
                log.debug("proxy: " + format, *args)

        self.proxy = ThreadingHTTPServer((host, self.settings.proxy_port if port is None else port), Proxy)
        self.proxy.daemon_threads = True
        threading.Thread(target=self.proxy.serve_forever, name="proxy", daemon=True).start()
        threading.Thread(target=self._sweep_forever, name="sweeper", daemon=True).start()
        return self.proxy

    def _sweep_forever(self) -> None:
        period = max(1.0, min(30.0, self.settings.click_window_s / 4))
        while not self._stop.wait(period):
            try:
                self.store.sweep(expired=EXPIRED)
            except Exception as error:  # noqa: BLE001 (the next sweep counts what this one could not)
                log.warning("interleaving: sweep failed: %s", error)

    def stop(self) -> None:
        self._stop.set()
        if self.proxy is not None:
            self.proxy.shutdown()
            self.proxy.server_close()
        self.pool.shutdown(wait=False, cancel_futures=True)

    # clicks --------------------------------------------------------------------------------------------

    @staticmethod
    def credit_name(assignment: dict, clicked: list[str]) -> str:
        """The count a clicked impression adds to: the version its clicks favour, or a tie."""
        return {"a": CREDIT_CONTROL, "b": CREDIT_TREATMENT}.get(interleaving.credit(assignment, clicked), CREDIT_TIE)

    def record_clicks(self, reports: list[tuple[str, list[str]]], *, forward: bool) -> dict:
        """Credit each impression once; without a shared store, an impression another replica served is passed on."""
        result: dict[str, Any] = {"credited": 0, "duplicates": 0, "unknown": [], "credits": {}}
        elsewhere: dict[int, list[tuple[str, list[str]]]] = {}
        names = {CREDIT_CONTROL: self.settings.control, CREDIT_TREATMENT: self.settings.treatment, CREDIT_TIE: "tie"}
        for impression, clicked in reports:
            owner = int(impression.split(".", 1)[0])
            if not self.store.shared and owner != self.index:
                if forward and owner < len(self.base.peers):
                    elsewhere.setdefault(owner, []).append((impression, clicked))
                else:
                    result["unknown"].append(impression)
                continue
            status, credit = self.store.claim(impression, lambda assignment, c=clicked: self.credit_name(assignment, c))
            if status == CLAIMED:
                result["credited"] += 1
                result["credits"][impression] = names[credit]
            elif status == DUPLICATE:
                result["duplicates"] += 1
            else:
                result["unknown"].append(impression)
        for owner, passed in elsewhere.items():
            body = [{"impression": i, "clicked": c} for i, c in passed]
            answer = _post_json(f"{self.base.peers[owner].url}/internal/clicks", body)
            for key in ("credited", "duplicates"):
                result[key] += answer[key]
            result["unknown"] += answer["unknown"]
            result["credits"].update(answer["credits"])
        return result

    # the API -------------------------------------------------------------------------------------------

    def handle(self, handler, method: str, path: str) -> bool:
        prefix = f"/v1/endpoints/{self.base.endpoint}/"
        if method == "GET" and path == "/metrics":
            handler._text(200, self.metrics_text(), "text/plain; version=0.0.4; charset=utf-8")
        elif method == "GET" and path == "/internal/totals":
            handler._json(200, {"replica": self.base.replica, "counts": self.ledger.counts()})
        elif method == "GET" and path == prefix + "report":
            handler._json(200, self.report())
        elif method == "POST" and path in (prefix + "clicks", "/internal/clicks"):
            self._post_clicks(handler, forward=path != "/internal/clicks")
        elif path.startswith(prefix) or path == "/internal/clicks":
            handler._error(
                405 if path in (prefix + "clicks", prefix + "report") else 404,
                None,
                f"this agent serves POST {prefix}clicks and GET {prefix}report",
            )
        else:
            return False
        return True

    def _post_clicks(self, handler, *, forward: bool) -> None:
        try:
            length = int(handler.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > 1 << 20:
            handler._error(413, "(body)", "at most 1048576 bytes")
            return
        try:
            body = json.loads(handler.rfile.read(length) or b"null")
        except ValueError:
            handler._error(400, "(body)", "the body is not JSON")
            return
        try:
            reports = parse_clicks(body)
        except ClickError as error:
            handler._error(422, error.field, str(error))
            return
        try:
            result = self.record_clicks(reports, forward=forward)
        except Exception as error:  # noqa: BLE001 (not counted: the caller must retry)
            log.error("clicks: not recorded: %s", error)
            handler._error(503, None, f"not recorded; retry ({type(error).__name__})")
            return
        if isinstance(body, dict) and result["unknown"]:
            window = int(self.settings.click_window_s)
            handler._error(404, "impression", f"{body['impression']!r} is unknown or expired (click window {window}s)")
            return
        handler._json(200, result)

    # what callers read -----------------------------------------------------------------------------------

    def gathered(self) -> tuple[dict[str, int], list[str], list[str]]:
        """Every replica's counts summed; (counts, replicas that answered, replicas that did not)."""
        total: dict[str, int] = {}
        answered, missing = [], []
        for peer in self.base.peers:
            try:
                counts = (
                    self.ledger.counts()
                    if peer.name == self.base.replica
                    else _get_json(f"{peer.url}/internal/totals")["counts"]
                )
            except (OSError, ValueError, KeyError) as error:
                log.warning("interleaving: replica %s did not answer: %s", peer.name, error)
                missing.append(peer.name)
                continue
            answered.append(peer.name)
            for name, value in counts.items():
                total[name] = total.get(name, 0) + int(value)
        return total, answered, missing

    def report(self) -> dict:
        settings = self.settings
        counts, answered, missing = self.gathered()
        wins, losses, ties = (counts.get(n, 0) for n in (CREDIT_TREATMENT, CREDIT_CONTROL, CREDIT_TIE))
        share, p_value = interleaving.preference(wins, losses, ties)
        winner = None
        if p_value < ALPHA:
            winner = settings.treatment if wins > losses else settings.control
        served, expired = counts.get(SERVED, 0), counts.get(EXPIRED, 0)
        return {
            "endpoint": self.base.endpoint,
            "strategy": "interleaved",
            "method": settings.method,
            "control": settings.control,
            "treatment": settings.treatment,
            "impressions": served,
            "clicked": wins + losses + ties,
            "expired": expired,
            "pending": max(0, served - wins - losses - ties - expired),
            "fallbacks": {n.split(":", 1)[1]: v for n, v in sorted(counts.items()) if n.startswith("fallback:")},
            "wins": wins,
            "losses": losses,
            "ties": ties,
            "preference": {"version": settings.treatment, "share": share, "pValue": p_value},
            "winner": winner,
            "alpha": ALPHA,
            "store": settings.store,
            "replicas": {"answered": answered, "unreachable": missing},
            "replica": self.base.replica,
        }

    def metrics_text(self) -> str:
        endpoint, own = self.base.endpoint, self.ledger.counts()
        at = {"endpoint": endpoint}
        families = Families()
        families.add(
            "turnout_interleaving_impressions_total",
            "counter",
            "Merged answers this replica served (impressions counted).",
            [(at, own.get(SERVED, 0))],
        )
        families.add(
            "turnout_interleaving_clicked_total",
            "counter",
            "Clicked impressions this replica credited, by the version the clicks favour (or tie).",
            [
                ({**at, "credit": version}, own.get(name, 0))
                for name, version in (
                    (CREDIT_TREATMENT, self.settings.treatment),
                    (CREDIT_CONTROL, self.settings.control),
                    (CREDIT_TIE, "tie"),
                )
            ],
        )
        families.add(
            "turnout_interleaving_expired_total",
            "counter",
            "Impressions whose click window ended unclicked (counted by this replica).",
            [(at, own.get(EXPIRED, 0))],
        )
        families.add(
            "turnout_interleaving_fallbacks_total",
            "counter",
            "Requests this replica answered with control's answer unchanged, by reason.",
            [({**at, "reason": n.split(":", 1)[1]}, v) for n, v in sorted(own.items()) if n.startswith("fallback:")],
        )
        families.histogram(
            "turnout_interleaving_merge_seconds", "Time the agent spent merging and storing.", at, self.merge_seconds
        )
        report = self.report()
        families.add(
            "turnout_interleaving_preference",
            "gauge",
            "Share of impressions whose clicks favour the treatment, ties counting half (every replica).",
            [({**at, "version": self.settings.treatment}, report["preference"]["share"])],
        )
        families.add(
            "turnout_interleaving_p_value",
            "gauge",
            "Two-sided sign-test p-value of treatment's wins against its losses (every replica).",
            [(at, report["preference"]["pValue"])],
        )
        return families.text()


def _get_json(url: str, timeout: float = 3.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (a peer's URL from the settings)
        return json.loads(response.read())


def _post_json(url: str, body: Any, timeout: float = 5.0) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read())
