"""model-echo: the sample model server of the `local` environment.

Like Knative's helloworld-go, it answers with the version it was deployed as, read from the
TARGET environment variable, so routing between versions is visible with curl:

    GET  /          -> "Hello v1!"
    POST /predict   -> {"version": "v1", "input": <the JSON body>}
    POST /rank      -> {"version": "v1", "items": [{"id": ID, "rank": N}, ...]}: the body's `candidates` ordered by
                       SHA-256 of VERSION/ID, so two versions rank differently (an interleaved endpoint's e2e check)
    GET  /healthz   -> "ok" (readiness and liveness probes)

FAIL_PERCENT (an integer from 0 to 100, default 0) makes exactly that share of the model requests (`/`, `/predict`,
`/rank`) answer 500, spread evenly and deterministically: request n fails when floor(n * P / 100) grows, so any
100 consecutive requests hold exactly P failures (50: every second one). The end-to-end checks use it to make a
version fail, so that its error-rate alert fires and its acceptance tests fail. 500, not 503: Istio's default
retry policy retries a 503 (retriable-status-codes), which would hide the failures from the caller.

Query strings are ignored for routing (`GET /?e2e=RUN` answers like `GET /`), and every request is
logged to standard error as `model-echo VERSION: "GET /?e2e=RUN HTTP/1.1" 200 -`: the end-to-end
checks (scripts/e2e) count the requests a shadow version received from these lines.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

MAX_BODY = 1 << 20
FAIL_STATUS = 500


def fail_percent() -> int:
    """FAIL_PERCENT as an integer from 0 to 100 (ValueError naming it otherwise)."""
    text = os.environ.get("FAIL_PERCENT") or "0"
    try:
        percent = int(text)
    except ValueError:
        percent = -1
    if not 0 <= percent <= 100:
        raise ValueError(f"FAIL_PERCENT={text!r}: expected an integer from 0 to 100")
    return percent


class FailureSchedule:
    """Which model requests fail: the n-th (from 1) when floor(n * percent / 100) grows (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def next_fails(self, percent: int) -> bool:
        with self._lock:
            self._count += 1
            n = self._count
        return n * percent // 100 > (n - 1) * percent // 100


FAILURES = FailureSchedule()


class ModelHandler(BaseHTTPRequestHandler):
    server_version = "model-echo/0.1.0"

    @property
    def target(self) -> str:
        return os.environ.get("TARGET", "World")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Model-Version", self.target)
        self.end_headers()
        self.wfile.write(body)

    @property
    def route(self) -> str:
        return urlsplit(self.path).path

    def _failing(self) -> bool:
        """A FAIL_PERCENT share of model requests answer 500 (never the health probe)."""
        if FAILURES.next_fails(fail_percent()):
            self._send(FAIL_STATUS, b"failing on purpose (FAIL_PERCENT)\n", "text/plain")
            return True
        return False

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.route == "/healthz":
            self._send(200, b"ok\n", "text/plain")
        elif self.route == "/":
            if self._failing():
                return
            self._send(200, f"Hello {self.target}!\n".encode(), "text/plain")
        else:
            self._send(404, b"not found\n", "text/plain")

    def do_POST(self) -> None:  # noqa: N802
        if self.route not in ("/predict", "/rank"):
            self._send(404, b"not found\n", "text/plain")
            return
        if self._failing():
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, b"request too large\n", "text/plain")
            return
        try:
            payload = json.loads(self.rfile.read(length) or b"null")
        except json.JSONDecodeError:
            self._send(400, b'{"error": "body is not JSON"}\n', "application/json")
            return
        if self.route == "/rank":
            candidates = [str(c) for c in (payload or {}).get("candidates", [])] if isinstance(payload, dict) else []
            ranked = sorted(candidates, key=lambda c: hashlib.sha256(f"{self.target}/{c}".encode()).hexdigest())
            items = [{"id": c, "rank": i + 1} for i, c in enumerate(ranked)]
            body = json.dumps({"version": self.target, "items": items}).encode() + b"\n"
        else:
            body = json.dumps({"version": self.target, "input": payload}).encode() + b"\n"
        self._send(200, body, "application/json")

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        sys.stderr.write(f"model-echo {self.target}: {format % args}\n")


def serve(port: int) -> ThreadingHTTPServer:
    return ThreadingHTTPServer(("0.0.0.0", port), ModelHandler)


if __name__ == "__main__":
    try:
        fail_percent()
    except ValueError as error:
        print(f"model-echo: {error}", file=sys.stderr)
        sys.exit(2)
    server = serve(int(os.environ.get("PORT", "8080")))
    print(f"model-echo {os.environ.get('TARGET', 'World')} listening on :{server.server_port}", file=sys.stderr)
    server.serve_forever()
