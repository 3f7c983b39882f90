"""Calls from the agent to one version of the endpoint (its own ClusterIP Service, never the endpoint's Service,
whose VirtualService would send the call back to the agent or mirror it again): the request as the agent
received it, over kept-alive connections, within a deadline."""

from __future__ import annotations

import http.client
import queue
import socket
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
        "expect",
    }
)
MAX_BODY = 8 << 20


class BodyError(ValueError):
    """The request body could not be read (too large, or a broken chunked encoding)."""


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    """Path and query, as received."""
    headers: tuple[tuple[str, str], ...]
    """End-to-end headers as received (hop-by-hop ones and Host left out)."""
    body: bytes


@dataclass
class Answer:
    status: int = 0
    """0 when no answer came (connection refused, timeout): `error` says why."""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


def read_request(handler: BaseHTTPRequestHandler) -> Request:
    """The request a BaseHTTPRequestHandler received, its body read whole (Content-Length or chunked)."""
    headers = tuple((k, v) for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP)
    if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
        body = _read_chunked(handler.rfile)
    else:
        try:
            length = int(handler.headers.get("Content-Length") or 0)
        except ValueError as error:
            raise BodyError("Content-Length is not a number") from error
        if length < 0 or length > MAX_BODY:
            raise BodyError(f"a body of {length} bytes; at most {MAX_BODY}")
        body = handler.rfile.read(length) if length else b""
    return Request(handler.command, handler.path, headers, body)


def _read_chunked(stream) -> bytes:
    body = bytearray()
    while True:
        line = stream.readline(1024)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as error:
            raise BodyError("a broken chunked body") from error
        if size == 0:
            while stream.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(body)
        if len(body) + size > MAX_BODY:
            raise BodyError(f"a body over {MAX_BODY} bytes")
        body += stream.read(size)
        stream.readline(1024)


class NoDelayHandler(BaseHTTPRequestHandler):
    """A handler whose answers leave at once: http.server writes the headers and the body separately, and Nagle's
    algorithm would hold the body back for the caller's delayed ACK (40 ms on Linux)."""

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Connection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Upstream:
    """One version's Service: a pool of kept-alive connections to it."""

    def __init__(self, url: str, *, pool: int = 64) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"{url!r}: expected http://HOST[:PORT]")
        self.url, self.host, self.port = url, parsed.hostname, parsed.port or 80
        self.authority = parsed.netloc
        self._idle: queue.LifoQueue[http.client.HTTPConnection] = queue.LifoQueue(maxsize=pool)

    def _connection(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        try:
            connection = self._idle.get_nowait()
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
            connection.timeout = timeout
            return connection, True
        except queue.Empty:
            return _Connection(self.host, self.port, timeout=timeout), False

    def _release(self, connection: http.client.HTTPConnection) -> None:
        try:
            self._idle.put_nowait(connection)
        except queue.Full:
            connection.close()

    def call(self, request: Request, *, timeout: float) -> Answer:
        """The version's answer to `request`, or an Answer with `error` (never raises)."""
        started = time.perf_counter()
        headers = dict(request.headers)
        headers["Host"] = self.authority
        if request.body or request.method in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(request.body))
        for attempt in (1, 2):
            remaining = timeout - (time.perf_counter() - started)
            if remaining <= 0:
                return Answer(error="timeout", seconds=time.perf_counter() - started)
            connection, reused = self._connection(remaining)
            try:
                connection.request(request.method, request.target, body=request.body or None, headers=headers)
                response = connection.getresponse()
                body = response.read()
            except TimeoutError:
                connection.close()
                return Answer(error="timeout", seconds=time.perf_counter() - started)
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                if reused and attempt == 1:
                    continue  # a kept-alive connection the server had closed: once more on a new one
                return Answer(error=f"{type(error).__name__}: {error}", seconds=time.perf_counter() - started)
            answer = Answer(response.status, response.getheaders(), body, time.perf_counter() - started)
            if response.will_close:
                connection.close()
            else:
                self._release(connection)
            return answer
        raise AssertionError("unreachable")

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def send_answer(handler: BaseHTTPRequestHandler, answer: Answer, body: bytes, extra: dict[str, str]) -> None:
    """Write `answer`'s status and end-to-end headers, `body`, and the `extra` headers to the caller."""
    handler.send_response(answer.status)
    for name, value in answer.headers:
        lowered = name.lower()
        if lowered in HOP_BY_HOP or lowered in extra or lowered in ("date", "server"):
            continue
        handler.send_header(name, value)
    for name, value in extra.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def send_error(handler: BaseHTTPRequestHandler, status: int, message: str, extra: dict[str, str]) -> None:
    data = (message + "\n").encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "text/plain; charset=utf-8")
    for name, value in extra.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
