"""Model servers for the interleaving and comparison tests and benchmarks, on localhost: real HTTP servers that
answer a JSON ranked list (a ranker) or a label with a score (a classifier), each in its own thread."""

from __future__ import annotations

import hashlib
import json
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def ranking(version: str, candidates: list[str]) -> list[str]:
    """A version's ranking of the candidates: by a hash of version and id, so two versions disagree."""
    return sorted(candidates, key=lambda c: hashlib.sha256(f"{version}/{c}".encode()).hexdigest())


class ModelServer:
    """One version. `answer(request_json, query) -> (status, body dict)`; `delay_s` before answering."""

    def __init__(self, version: str, answer, *, delay_s: float = 0.0) -> None:
        self.version, self.answer, self.delay_s = version, answer, delay_s
        self.requests = 0
        self.lock = threading.Lock()
        model = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()  # answers leave at once (no Nagle delay between headers and body)
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                with model.lock:
                    model.requests += 1
                if model.delay_s:
                    time.sleep(model.delay_s)
                parts = urlsplit(self.path)
                try:
                    payload = json.loads(raw) if raw else None
                except ValueError:
                    payload = None
                status, body = model.answer(payload, parse_qs(parts.query), dict(self.headers))
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Model-Version", model.version)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the caller gave up (a missed time budget)

            do_GET = do_POST = _serve  # noqa: N815

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def ranker(version: str, *, fail: bool = False, delay_s: float = 0.0, items: str = "items") -> ModelServer:
    """Answers {"version", ITEMS: [{"id", "score"}...]} ranking `candidates` (the request's, or a-t)."""

    def answer(payload, query, headers):
        if fail:
            return 500, {"error": "broken"}
        candidates = (payload or {}).get("candidates") or [chr(ord("a") + i) for i in range(20)]
        ranked = ranking(version, [str(c) for c in candidates])
        return 200, {"version": version, items: [{"id": c, "score": len(ranked) - i} for i, c in enumerate(ranked)]}

    return ModelServer(version, answer, delay_s=delay_s)


def classifier(version: str, *, flip: float = 0.0, jitter: bool = True, seed: int = 0) -> ModelServer:
    """Answers {"label", "score", "requestId", "servedAt"} for {"x": N}: the label is a fixed function of x (flipped
    for a share `flip` of requests, at random); servedAt and requestId differ on every answer (noise), the score
    by a little when `jitter`."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def answer(payload, query, headers):
        x = int((payload or {}).get("x", 0))
        label = "fraud" if (x * 2654435761) % 100 < 30 else "ok"
        with lock:
            flipped = rng.random() < flip
            noise = rng.random()
        if flipped:
            label = "ok" if label == "fraud" else "fraud"
        score = round((x % 97) / 97 + (noise * 1e-3 if jitter else 0.0), 6)
        return 200, {
            "label": label,
            "score": score,
            "requestId": f"{version}-{noise:.12f}",
            "servedAt": f"{time.time():.6f}",
            "model": {"name": "fraud", "threshold": 0.5},
        }

    return ModelServer(version, answer)
