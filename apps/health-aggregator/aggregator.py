"""The region's health as users see it: ready only while every model endpoint answers through the gateway.

Failover DNS (Route 53, Cloud DNS, Traffic Manager) probes `GET /ready` on this server through the region's Istio
gateway over HTTPS, with the stack's health host as SNI. This server answers from what it last saw:

- every `period` seconds it sends each endpoint's health request (`GET <path>` with `Host: <host>`) to the gateway
  over TLS with SNI `<host>`, the way a user's request arrives, so the VirtualService, the serving versions' pods
  and the gateway's certificate for that host all take part; an answer 200-299 within `timeout` seconds counts;
- `/ready` is 200 while the last round is fresh (younger than `period + timeout` plus one period of slack) and
  every endpoint answered, 503 otherwise, with the per-endpoint outcome as JSON either way;
- `/healthz` is 200 while the server runs (the pod's own probes: a model outage must not restart this pod).

Answers come from memory, never from a probe in flight: cloud health checkers wait about two seconds for an answer.
The gateway's certificate is not verified here (the cloud's own HTTPS probe needs the handshake to succeed, and
self-signed issuers are allowed); what counts is that the model answers. Python's standard library only: the file is
mounted from a ConfigMap into a stock Python image.

Configuration (JSON, the file named by the first argument):
  {"gateway": "istio-ingressgateway.istio-system.svc.cluster.local", "port": 443, "period": 5, "timeout": 3,
   "listen": 8080, "endpoints": [{"name": "ranker", "host": "ranker.models.example.com", "path": "/healthz"}]}
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def insecure_context() -> ssl.SSLContext:
    """TLS without certificate verification (see the module docstring), still sending SNI."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # noqa: S323 - the cloud probe checks the handshake; this checks answers
    return context


def probe(gateway: str, port: int, host: str, path: str, timeout: float, context: ssl.SSLContext) -> dict:
    """One endpoint's health request through the gateway: {"ready": bool, "status": int | None, "error": str}."""
    started = time.monotonic()
    connection = http.client.HTTPConnection(gateway, port, timeout=timeout)
    try:
        # SNI is the endpoint's host, not the gateway's Service name: the Gateway picks its server by it.
        raw = socket.create_connection((gateway, port), timeout=timeout)
        connection.sock = context.wrap_socket(raw, server_hostname=host)
        connection.request("GET", path, headers={"Host": host, "User-Agent": "turnout-health-aggregator"})
        response = connection.getresponse()
        response.read(4096)
        status = response.status
        ready = 200 <= status < 300
        return {"ready": ready, "status": status, "error": "" if ready else f"HTTP {status}", **_took(started)}
    except (OSError, http.client.HTTPException) as error:
        return {"ready": False, "status": None, "error": f"{type(error).__name__}: {error}", **_took(started)}
    finally:
        connection.close()


def _took(started: float) -> dict:
    return {"seconds": round(time.monotonic() - started, 3)}


class Aggregate:
    """The last round's outcome and when it finished; `refresh` runs a round, `answer` reads it."""

    def __init__(self, config: dict, context: ssl.SSLContext | None = None) -> None:
        self.gateway = config["gateway"]
        self.port = int(config.get("port", 443))
        self.period = float(config.get("period", 5))
        self.timeout = float(config.get("timeout", 3))
        self.endpoints = list(config.get("endpoints") or [])
        self.context = context or insecure_context()
        self._lock = threading.Lock()
        self._results: dict[str, dict] = {}
        self._finished: float | None = None

    @property
    def max_age(self) -> float:
        """How old a round may be and still count: one period, its probes' timeout, and one period of slack."""
        return 2 * self.period + self.timeout

    def refresh(self) -> None:
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(self.endpoints)))) as pool:
            outcomes = list(
                pool.map(
                    lambda e: probe(self.gateway, self.port, e["host"], e.get("path", "/"), self.timeout, self.context),
                    self.endpoints,
                )
            )
        with self._lock:
            self._results = {e["name"]: outcome for e, outcome in zip(self.endpoints, outcomes, strict=True)}
            self._finished = time.monotonic()

    def answer(self, now: float | None = None) -> tuple[int, dict]:
        """(HTTP status, body): 200 only while the last round is fresh and every endpoint answered."""
        now = time.monotonic() if now is None else now
        with self._lock:
            results, finished = dict(self._results), self._finished
        if not self.endpoints:
            return 503, {"ready": False, "reason": "no model endpoints in this region", "endpoints": {}}
        if finished is None:
            return 503, {"ready": False, "reason": "no probe round has finished yet", "endpoints": {}}
        age = now - finished
        if age > self.max_age:
            return 503, {"ready": False, "reason": f"last probe round is {age:.0f}s old", "endpoints": results}
        down = sorted(name for name, outcome in results.items() if not outcome["ready"])
        if down:
            return 503, {"ready": False, "reason": f"not answering: {', '.join(down)}", "endpoints": results}
        return 200, {"ready": True, "reason": "every model endpoint answers", "endpoints": results}

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            self.refresh()
            stop.wait(max(0.0, self.period - (time.monotonic() - started)))


def handler_for(aggregate: Aggregate) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            if self.path == "/ready":
                status, body = aggregate.answer()
            elif self.path == "/healthz":
                status, body = 200, {"serving": True}
            else:
                status, body = 404, {"error": "not found: /ready or /healthz"}
            payload = json.dumps(body, sort_keys=True).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the standard library's name
            pass  # every probe would log a line; the outcome is in /ready's body

    return Handler


def serve(config: dict, stop: threading.Event | None = None) -> tuple[ThreadingHTTPServer, threading.Event]:
    """Start the probe loop and the HTTP server (in threads); return the server and the event that stops both."""
    stop = stop or threading.Event()
    aggregate = Aggregate(config)
    threading.Thread(target=aggregate.run, args=(stop,), daemon=True).start()
    server = ThreadingHTTPServer(
        (config.get("bind", "0.0.0.0"), int(config.get("listen", 8080))), handler_for(aggregate)
    )  # noqa: S104
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, stop


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: aggregator.py CONFIG.json", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        config = json.load(handle)
    server, stop = serve(config)
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
