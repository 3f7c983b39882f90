"""The stack's cache (Redis or Valkey), spoken to in RESP2 with the standard library: the agent's replicas share
impressions through it. It is reached as the endpoint's model containers reach it: REDIS_ADDR, REDIS_PORT,
REDIS_TLS, the password in REDIS_PASSWORD_FILE and a private CA in REDIS_CA_CERT_FILE (components/cache/access.py).
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path


class CacheError(RuntimeError):
    """The cache did not answer, or answered with an error."""


@dataclass(frozen=True)
class CacheAddress:
    host: str
    port: int
    tls: bool
    password: str | None
    ca_file: str | None = None

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> CacheAddress:
        environ = dict(os.environ) if environ is None else environ
        if not environ.get("REDIS_ADDR"):
            raise CacheError("REDIS_ADDR is not set: the stack gave this agent no cache")
        password_file = environ.get("REDIS_PASSWORD_FILE")
        password = Path(password_file).read_text().strip() if password_file else None
        return cls(
            host=environ["REDIS_ADDR"],
            port=int(environ.get("REDIS_PORT") or 6379),
            tls=environ.get("REDIS_TLS", "false").lower() == "true",
            password=password or None,
            ca_file=environ.get("REDIS_CA_CERT_FILE") or None,
        )


def _encode(*parts: str | bytes | int | float) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Connection:
    def __init__(self, address: CacheAddress, timeout: float) -> None:
        sock = socket.create_connection((address.host, address.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if address.tls:
            context = ssl.create_default_context(cafile=address.ca_file)
            sock = context.wrap_socket(sock, server_hostname=address.host)
        self.sock = sock
        self.reader = sock.makefile("rb")
        if address.password:
            self.execute([("AUTH", address.password)])

    def execute(self, commands: list[tuple]) -> list:
        """Send every command, then read every reply (a pipeline); error replies come back as CacheError values."""
        self.sock.sendall(b"".join(_encode(*command) for command in commands))
        return [self._reply() for _ in commands]

    def _reply(self):
        line = self.reader.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("the cache closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return CacheError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.reader.read(size + 2)
            return data[:-2]
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self._reply() for _ in range(size)]
        raise ConnectionError(f"an unexpected reply from the cache: {line[:40]!r}")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class Cache:
    """A small pool of connections; `pipeline` sends several commands in one round trip."""

    def __init__(self, address: CacheAddress, *, timeout: float = 2.0, pool: int = 16) -> None:
        self.address, self.timeout = address, timeout
        self._idle: queue.LifoQueue[_Connection] = queue.LifoQueue(maxsize=pool)

    def pipeline(self, *commands: tuple) -> list:
        for attempt in (1, 2):
            try:
                connection = self._idle.get_nowait()
                reused = True
            except queue.Empty:
                try:
                    connection = _Connection(self.address, self.timeout)
                except (OSError, ssl.SSLError) as error:
                    raise CacheError(
                        f"cannot reach the cache at {self.address.host}:{self.address.port}: {error}"
                    ) from error
                reused = False
            try:
                replies = connection.execute(list(commands))
            except (OSError, ConnectionError, ValueError) as error:
                connection.close()
                if reused and attempt == 1:
                    continue  # an idle connection the cache had closed
                raise CacheError(f"the cache at {self.address.host}:{self.address.port}: {error}") from error
            try:
                self._idle.put_nowait(connection)
            except queue.Full:
                connection.close()
            errors = [reply for reply in replies if isinstance(reply, CacheError)]
            if errors:
                raise errors[0]
            return replies
        raise AssertionError("unreachable")

    def execute(self, *command) -> object:
        return self.pipeline(tuple(command))[0]

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
