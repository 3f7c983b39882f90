"""What the experiment agent's tests run it against, for real, on localhost:

- `KubeStandIn`: an HTTP server implementing exactly the Kubernetes API calls the agent makes (GET and
  PUT of its VirtualService, GET/POST/PUT of its Lease and of its state ConfigMap), with
  resourceVersions and 409 conflicts as the API server answers them. There is no API server here; the
  agent talks to this one through the official `kubernetes` client, and every other call is recorded
  as unexpected.
- `ModelServer`: a model version answering requests and exposing Istio-like `istio_requests_total`
  and `istio_request_duration_milliseconds_bucket` counters for Prometheus to scrape.
- `start_prometheus`: Debian's `prometheus` binary with a scrape config for the model servers and the
  agents (skips with the reason where it is not installed).
- `start_agent`: `python -m turnout_agent` as a process of its own, with a settings file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.conftest import REPO

AGENT_APP = REPO / "apps" / "experiment-agent"
NAMESPACE = "scores"
ALLOWED_CALLS = {
    ("GET", "virtualservices/NAME"),
    ("PUT", "virtualservices/NAME"),
    ("GET", "leases/NAME"),
    ("POST", "leases"),
    ("PUT", "leases/NAME"),
    ("GET", "configmaps/NAME"),
    ("POST", "configmaps"),
    ("PUT", "configmaps/NAME"),
}
_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/(?P<version>[^/]+))/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?$"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class KubeStandIn:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict] = {}
        self.calls: list[tuple[str, str]] = []
        self.unexpected: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self._version = 100
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict:
                return json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")

            def _handle(self, method: str) -> None:
                status, body = stand_in.handle(
                    method, self.path.split("?", 1)[0], self._body() if method != "GET" else None
                )
                self._reply(status, body)

            def do_GET(self):  # noqa: N802
                self._handle("GET")

            def do_POST(self):  # noqa: N802
                self._handle("POST")

            def do_PUT(self):  # noqa: N802
                self._handle("PUT")

            def do_PATCH(self):  # noqa: N802
                self._handle("PATCH")

            def do_DELETE(self):  # noqa: N802
                self._handle("DELETE")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    @staticmethod
    def _status(code: int, reason: str, message: str) -> dict:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": reason,
            "code": code,
            "message": message,
        }

    def put(self, plural: str, name: str, body: dict) -> None:
        with self.lock:
            self._version += 1
            body = json.loads(json.dumps(body))
            body.setdefault("metadata", {}).update(
                {"name": name, "namespace": NAMESPACE, "resourceVersion": str(self._version)}
            )
            self.objects[(plural, name)] = body

    def get(self, plural: str, name: str) -> dict | None:
        with self.lock:
            found = self.objects.get((plural, name))
            return json.loads(json.dumps(found)) if found else None

    def handle(self, method: str, path: str, body: dict | None) -> tuple[int, dict]:
        match = _PATH.match(path)
        plural, name = (match["plural"], match["name"]) if match else ("?", None)
        call = (method, f"{plural}/NAME" if name else plural)
        with self.lock:
            self.calls.append((method, path))
            if not match or match["ns"] != NAMESPACE or call not in ALLOWED_CALLS:
                self.unexpected.append((method, path))
                return 405, self._status(405, "MethodNotAllowed", f"{method} {path} is not a call the agent may make")
            current = self.objects.get((plural, name or (body or {}).get("metadata", {}).get("name")))
            if method == "GET":
                return (200, current) if current else (404, self._status(404, "NotFound", f"{plural} {name} not found"))
            if method == "POST":
                name = body["metadata"]["name"]
                if (plural, name) in self.objects:
                    return 409, self._status(409, "AlreadyExists", f"{plural} {name} already exists")
            elif current is None:
                return 404, self._status(404, "NotFound", f"{plural} {name} not found")
            elif body.get("metadata", {}).get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return 409, self._status(409, "Conflict", "the object has been modified; please apply your changes")
            self._version += 1
            body.setdefault("metadata", {}).update({"namespace": NAMESPACE, "resourceVersion": str(self._version)})
            self.objects[(plural, name)] = body
            return (201 if method == "POST" else 200), body

    def weights(self, name: str = NAMESPACE, route: str = "default") -> dict[str, int]:
        vs = self.get("virtualservices", name)
        (split,) = [r for r in vs["spec"]["http"] if r["name"] == route]
        return {d["destination"]["subset"]: d["weight"] for d in split["route"]}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def destination(version: str) -> dict:
    host = f"{NAMESPACE}.{NAMESPACE}.svc.cluster.local"
    return {
        "destination": {"host": host, "subset": version, "port": {"number": 80}},
        "headers": {"response": {"set": {"x-turnout-version": version}}},
    }


def virtual_service(arms: tuple[str, ...]) -> dict:
    share = 100 // len(arms)
    weights = [share + (1 if i < 100 - share * len(arms) else 0) for i in range(len(arms))]
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "spec": {
            "hosts": [f"{NAMESPACE}.{NAMESPACE}.svc.cluster.local"],
            "http": [
                {
                    "name": "default",
                    "route": [{**destination(a), "weight": w} for a, w in zip(arms, weights, strict=True)],
                }
            ],
        },
    }


def settings_document(
    tmp: Path,
    *,
    kube: str,
    prometheus: str,
    peers: dict[str, str],
    arms: tuple[str, ...] = ("v1", "v2"),
    interval: float = 2,
    lease: float = 3,
    reward: dict | None = None,
    policy: str = "thompson",
    min_weight: int = 5,
) -> dict:
    return {
        "endpoint": NAMESPACE,
        "namespace": NAMESPACE,
        "arms": list(arms),
        "policy": policy,
        "epsilon": 0.1,
        "minWeight": min_weight,
        "reward": reward or {"source": "feedback", "unreported": "zero"},
        "intervalSeconds": interval,
        "routing": {
            "kind": "VirtualService",
            "group": "networking.istio.io",
            "version": "v1",
            "plural": "virtualservices",
            "name": NAMESPACE,
            "route": "default",
            "destinations": {arm: destination(arm) for arm in arms},
        },
        "prometheus": {"url": prometheus, "service": NAMESPACE},
        "state": {"configMap": f"{NAMESPACE}-agent-state"},
        "lease": {"name": f"{NAMESPACE}-agent", "durationSeconds": lease},
        "peers": [{"name": name, "url": url} for name, url in peers.items()],
        "ledger": {"path": str(tmp / "ledger.sqlite3"), "dedupeSeconds": 86400},
        "port": 8080,
        "kubernetes": {"host": kube},
    }


class AgentProcess:
    def __init__(self, document: dict, replica: str, port: int, folder: Path) -> None:
        self.replica, self.port, self.folder = replica, port, folder
        folder.mkdir(parents=True, exist_ok=True)
        document = {**document, "ledger": {**document["ledger"], "path": str(folder / "ledger.sqlite3")}}
        self.settings = folder / "settings.json"
        self.settings.write_text(json.dumps(document))
        self.log = folder / "agent.log"
        self.process: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> AgentProcess:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(AGENT_APP), str(REPO)])}
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "turnout_agent", "--settings", str(self.settings), "--replica", self.replica]
                + ["--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        wait_for(lambda: http("GET", f"{self.url}/healthz")[0] == 200, 20, f"agent {self.replica} to listen")
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a node dies."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def http(method: str, url: str, body=None, timeout: float = 10) -> tuple[int, object]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw, status, kind = response.read(), response.status, response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        raw, status, kind = error.read(), error.code, error.headers.get("Content-Type", "")
    except OSError:
        return 0, None
    return status, json.loads(raw) if kind.startswith("application/json") else raw.decode()


def wait_for(condition, seconds: float, what: str, poll: float = 0.1):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


class ModelServer:
    """One version's pod: answers like apps/model-echo and counts its answers as Istio's sidecar would."""

    BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)

    def __init__(self, version: str, *, slow_ms: float = 0.0) -> None:
        self.version, self.slow_ms = version, slow_ms
        self.answered = 0
        self.lock = threading.Lock()
        model = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path == "/metrics":
                    data = model.exposition().encode()
                else:
                    with model.lock:
                        model.answered += 1
                    data = f"Hello {model.version}!\n".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-Model-Version", model.version)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_port}"

    def exposition(self) -> str:
        labels = (
            f'reporter="destination",destination_service_namespace="{NAMESPACE}",destination_service_name="{NAMESPACE}",'
            f'destination_version="{self.version}",response_code="200",pod="{NAMESPACE}-{self.version}-0"'
        )
        with self.lock:
            count = self.answered
        lines = ["# TYPE istio_requests_total counter", f"istio_requests_total{{{labels}}} {count}"]
        lines.append("# TYPE istio_request_duration_milliseconds histogram")
        for bound in self.BUCKETS:
            within = count if self.slow_ms <= bound else 0
            lines.append(f'istio_request_duration_milliseconds_bucket{{{labels},le="{bound:g}"}} {within}')
        lines.append(f'istio_request_duration_milliseconds_bucket{{{labels},le="+Inf"}} {count}')
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


class PrometheusProcess:
    def __init__(self, folder: Path, models: list[str], agents: list[str]) -> None:
        binary = prometheus_binary()
        assert binary is not None
        folder.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "models", "static_configs": [{"targets": models}]},
                {"job_name": "agents", "static_configs": [{"targets": agents}]},
            ],
        }
        (folder / "prometheus.yml").write_text(json.dumps(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "prometheus.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={folder / 'prometheus.yml'}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(lambda: http("GET", f"{self.url}/-/ready")[0] == 200, 60, "Prometheus to be ready", poll=0.3)

    def query(self, expression: str) -> list[dict]:
        status, body = http("GET", f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expression}))
        assert status == 200, body
        return body["data"]["result"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
