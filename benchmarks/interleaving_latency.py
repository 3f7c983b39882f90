"""What the experiment agent adds to an interleaved answer's latency (issue 15: at most 5 ms at p99), measured on
this machine against real HTTP servers: two rankers (tests/ranker_models.py, each answering a ranked list of
`--items` items) and the agent itself (`python -m turnout_agent`, its real proxy code, impressions in its ledger).

Each round sends one request straight to control and one through the agent's proxy port (which calls control
and treatment concurrently, merges with team-draft, stores the impression and answers), alternating which goes
first; the added latency is the agent's p50/p99 minus control's direct p50/p99. The agent's own merge time
(`turnout_interleaving_merge_seconds`) is read from its metrics.

    python benchmarks/interleaving_latency.py [--requests N] [--items N] [--json FILE]

Exit status 0 when the added p99 is at most 5 ms, 1 otherwise.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.agent_harness import AgentProcess, free_port  # noqa: E402
from tests.agent_harness import http as call  # noqa: E402
from tests.ranker_models import ranker  # noqa: E402

TARGET_MS = 5.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(connection: http.client.HTTPConnection, body: bytes) -> tuple[float, dict]:
    started = time.perf_counter()
    connection.request("POST", "/rank", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    return (time.perf_counter() - started) * 1000, {k.lower(): v for k, v in response.getheaders()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    control, treatment = ranker("v1"), ranker("v2")
    port, proxy = free_port(), free_port()
    document = {
        "strategy": "interleaved",
        "endpoint": "bench",
        "namespace": "bench",
        "interleaving": {
            "control": "v1", "treatment": "v2", "method": "team-draft", "items": "items", "itemId": "id",
            "budgetMs": 250, "clickWindowSeconds": 600, "proxyPort": proxy, "store": "ledger",
        },
        "backends": {"v1": control.url, "v2": treatment.url},
        "peers": [{"name": "agent-0", "url": f"http://127.0.0.1:{port}"}],
        "ledger": {"path": "/unused"},
        "port": 8080,
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        agent = AgentProcess(document, "agent-0", port, Path(folder)).start()
        try:
            body = json.dumps({"candidates": [f"item-{i}" for i in range(args.items)]}).encode()
            direct = http.client.HTTPConnection("127.0.0.1", control.server.server_port, timeout=10)
            through = http.client.HTTPConnection("127.0.0.1", proxy, timeout=10)
            for _ in range(100):  # warm both paths (connections, pools, page cache)
                timed(direct, body)
                timed(through, body)
            direct_ms, agent_ms, merged = [], [], 0
            for index in range(args.requests):
                order = ((direct, direct_ms), (through, agent_ms))
                for connection, found in order if index % 2 else order[::-1]:
                    elapsed, headers = timed(connection, body)
                    found.append(elapsed)
                    merged += connection is through and "x-turnout-impression" in headers
            _, metrics = call("GET", f"{agent.url}/metrics")
        finally:
            agent.stop()
            control.close()
            treatment.close()
    merge_count = next(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("turnout_interleaving_merge_seconds_count")
    )
    merge_sum = next(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("turnout_interleaving_merge_seconds_sum")
    )
    result = {
        "requests": args.requests,
        "items": args.items,
        "merged": merged,
        "directMs": {"p50": percentile(direct_ms, 0.5), "p99": percentile(direct_ms, 0.99)},
        "agentMs": {"p50": percentile(agent_ms, 0.5), "p99": percentile(agent_ms, 0.99)},
        "agentMergeMeanMs": merge_sum / merge_count * 1000 if merge_count else None,
    }
    result["addedMs"] = {q: result["agentMs"][q] - result["directMs"][q] for q in ("p50", "p99")}
    ok = result["addedMs"]["p99"] <= TARGET_MS and merged == args.requests
    print(
        f"{args.requests} requests of {args.items} items, each straight to control and through the agent "
        f"({merged} merged):\n"
        f"| path | p50 ms | p99 ms |\n| --- | ---: | ---: |\n"
        f"| straight to control | {result['directMs']['p50']:.2f} | {result['directMs']['p99']:.2f} |\n"
        f"| through the agent (both rankers, merge, impression stored) | {result['agentMs']['p50']:.2f} | "
        f"{result['agentMs']['p99']:.2f} |\n"
        f"| added by the agent | {result['addedMs']['p50']:.2f} | {result['addedMs']['p99']:.2f} (<= {TARGET_MS:g}) |\n"
        f"the agent's own merge and store: {result['agentMergeMeanMs']:.3f} ms on average"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print("target met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
