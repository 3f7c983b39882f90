"""A stand-in for a bandit endpoint's experiment agent, for scripts/e2e's checks without a cluster: it
serves the agent's feedback and report calls, is told what the stand-in gateway served (as the mesh
counts it), and moves its weights with the real `turnout.experiments.bandit.allocate` (or never, when
`frozen`, like an agent that is not learning)."""

from __future__ import annotations

import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from turnout.experiments import bandit

# A fake kubectl's answer to `port-forward`: kubectl's own first line, naming the stand-in's port.
PORT_FORWARD = """
if "port-forward" in args:
    port = (logs / "agent-port").read_text().strip()
    print(f"Forwarding from 127.0.0.1:{port} -> 8080", flush=True)
    import time
    time.sleep(3600)
    sys.exit(0)
"""


class StandInAgent:
    def __init__(self, endpoint: str, arms: list[str], *, frozen: bool = False) -> None:
        self.endpoint, self.arms, self.frozen = endpoint, list(arms), frozen
        self.served = dict.fromkeys(arms, 0)
        self.rewards = dict.fromkeys(arms, 0.0)
        self.seen: set[str] = set()
        self.weights = bandit.allocate("thompson", {a: (0, 0) for a in arms}, min_weight=5, rng=random.Random(0))
        self.lock = threading.Lock()
        agent = self
        prefix = f"/v1/endpoints/{endpoint}/"

        class Handler(BaseHTTPRequestHandler):
            def _json(self, status: int, body) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                if self.path != prefix + "report":
                    return self._json(404, {"error": "not here", "field": "endpoint"})
                with agent.lock:
                    versions = [{"version": a, "weight": agent.weights[a]} for a in agent.arms]
                return self._json(200, {"endpoint": agent.endpoint, "versions": versions})

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != prefix + "feedback":
                    return self._json(404, {"error": "not here", "field": "endpoint"})
                with agent.lock:
                    for item in body:
                        if item["requestId"] not in agent.seen:
                            agent.seen.add(item["requestId"])
                            agent.rewards[item["requestId"].split(".", 1)[0]] += item["reward"]
                    agent.learn()
                return self._json(200, {"accepted": len(body), "duplicates": 0})

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_port

    def learn(self) -> None:
        if not self.frozen:
            stats = {a: (max(self.served[a], self.rewards[a]), self.rewards[a]) for a in self.arms}
            self.weights = bandit.allocate(
                "thompson", stats, min_weight=5, rng=random.Random(sum(self.served.values()))
            )

    def route(self, rng: random.Random) -> str:
        """The version the mesh sends the next request to, counted as the mesh counts it."""
        with self.lock:
            version = rng.choices(self.arms, [self.weights[a] for a in self.arms])[0]
            self.served[version] += 1
        return version

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
