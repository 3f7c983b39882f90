"""Shadow comparison against its targets (issue 15), with a real primary and real shadows served locally.

1. End to end: two classifiers behind HTTP (tests/ranker_models.py): an equivalent shadow (the same model:
   `requestId`, `servedAt` and the score's last digits differ on every answer, by design) and a regressed one (the
   same, its label flipped on 1% of requests), and the agent itself (`python -m turnout_agent`, compare settings,
   the whole body compared). `--requests` copies per shadow are sent to the agent's mirror ports at `--rate` per
   second each, as the mesh's mirror would; the agent's report gives the share joined (target: at least 99.5%),
   and what it flagged.
2. Under continuous monitoring, many runs: the same models' answers compared with the agent's comparison
   (turnout.experiments.comparison, the whole body, the agent's alpha shared over its tracked fields) and the
   flag read after every request: the share of runs of an equivalent shadow ever flagged within `--horizon`
   requests (target: at most 1%), and the share of runs of the regressed shadow flagged within 5,000 requests
   (target: at least 95%), with the requests it took.

    python benchmarks/shadow_compare.py [--requests N] [--rate R] [--runs N] [--horizon N] [--json FILE]

Exit status 0 when every target holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.agent_harness import AgentProcess, free_port, wait_for  # noqa: E402
from tests.agent_harness import http as call  # noqa: E402
from tests.ranker_models import classifier  # noqa: E402
from turnout.experiments import comparison  # noqa: E402

FLIP = 0.01
ALPHA = 0.01
DETECT_WITHIN = 5000
TARGETS = {"joined": 0.995, "falseFlags": 0.01, "detected": 0.95}


def end_to_end(requests: int, rate: float) -> dict:
    primary, equivalent, regressed = (
        classifier("v1", seed=1),
        classifier("v2", seed=2),
        classifier("v3", flip=FLIP, seed=3),
    )
    port, ports = free_port(), {"v2": free_port(), "v3": free_port()}
    document = {
        "strategy": "shadow",
        "endpoint": "bench",
        "namespace": "bench",
        "compare": {
            "primary": "v1",
            "shadows": {v: {"port": p, "percent": 100} for v, p in ports.items()},
            "fields": [],
            "tolerance": 0,
            "sample": 0,
            "alpha": ALPHA,
            "workers": 16,
        },
        "backends": {"v1": primary.url, "v2": equivalent.url, "v3": regressed.url},
        "peers": [{"name": "agent-0", "url": f"http://127.0.0.1:{port}"}],
        "ledger": {"path": "/unused"},
        "port": 8080,
    }
    with tempfile.TemporaryDirectory() as folder:
        agent = AgentProcess(document, "agent-0", port, Path(folder)).start()
        try:
            local = threading.local()

            def mirror(shadow: str, x: int) -> int:
                body = json.dumps({"x": x}).encode()
                request = urllib.request.Request(f"http://127.0.0.1:{ports[shadow]}/predict", data=body, method="POST")
                with urllib.request.urlopen(request, timeout=10) as response:
                    response.read()
                    local.sent = getattr(local, "sent", 0) + 1
                    return response.status

            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=8) as senders:
                futures = []
                for index in range(requests):
                    due = started + index / rate
                    time.sleep(max(0.0, due - time.monotonic()))
                    futures += [senders.submit(mirror, "v2", index), senders.submit(mirror, "v3", index)]
                statuses = [f.result() for f in futures]
            sent_seconds = time.monotonic() - started

            def done():
                report = call("GET", f"{agent.url}/v1/endpoints/bench/report")[1]
                shadows = {s["version"]: s for s in report["shadows"]}
                settled = all(s["joined"] + sum(s["dropped"].values()) >= requests for s in shadows.values())
                return settled and shadows

            shadows = wait_for(done, 120, "every copy compared or dropped", poll=0.5)
        finally:
            agent.stop()
            for server in (primary, equivalent, regressed):
                server.close()
    return {
        "requests": requests,
        "rate": rate,
        "sentSeconds": sent_seconds,
        "accepted": statuses.count(202),
        "shadows": {
            version: {
                "mirrored": s["mirrored"],
                "joined": s["joined"],
                "joinRate": s["joinRate"],
                "dropped": s["dropped"],
                "agreement": s["agreement"],
                "flagged": s["flagged"],
                "latency": s["latency"]["delta"],
            }
            for version, s in shadows.items()
        },
    }


def monitored_runs(flip: float, runs: int, horizon: int, seed: int) -> list[int | None]:
    """For each run, the request at which any field was first flagged (None: never within the horizon)."""
    found = []
    for run in range(runs):
        primary, shadow = classifier("v1", seed=seed + 2 * run), classifier("v2", flip=flip, seed=seed + 2 * run + 1)
        primary.close()
        shadow.close()
        shadow_only: dict[str, int] = {}
        noise_only: dict[str, int] = {}
        field_alpha = None
        flagged_at = None
        for index in range(horizon):
            payload = {"x": run * horizon + index}
            a = comparison.Answer(*_answer(primary, payload))
            b = comparison.Answer(*_answer(primary, payload))
            c = comparison.Answer(*_answer(shadow, payload))
            for outcome in comparison.compare(a, b, c):
                if outcome.shadow_differs and not outcome.baseline_differs:
                    shadow_only[outcome.field] = shadow_only.get(outcome.field, 0) + 1
                elif outcome.baseline_differs and not outcome.shadow_differs:
                    noise_only[outcome.field] = noise_only.get(outcome.field, 0) + 1
                else:
                    continue
                field_alpha = field_alpha or comparison.field_alpha(ALPHA, 0)
                k, m = shadow_only.get(outcome.field, 0), noise_only.get(outcome.field, 0)
                if comparison.flagged(k, m, field_alpha):
                    flagged_at = index + 1
                    break
            if flagged_at:
                break
        found.append(flagged_at)
    return found


def _answer(model, payload) -> tuple[int, object]:
    status, body = model.answer(payload, {}, {})
    return status, json.loads(json.dumps(body))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000, help="mirrored copies per shadow, end to end")
    parser.add_argument("--rate", type=float, default=100.0, help="copies per second per shadow, end to end")
    parser.add_argument("--runs", type=int, default=200, help="monitored runs per shadow")
    parser.add_argument("--horizon", type=int, default=20_000, help="requests an equivalent shadow is watched for")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    e2e = end_to_end(args.requests, args.rate)
    equivalent = monitored_runs(0.0, args.runs, args.horizon, args.seed)
    regressed = monitored_runs(FLIP, args.runs, DETECT_WITHIN, args.seed + 1_000_003)
    false_flags = sum(1 for at in equivalent if at is not None) / args.runs
    detected = [at for at in regressed if at is not None]
    result = {
        "endToEnd": e2e,
        "falseFlagRate": false_flags,
        "detectionRate": len(detected) / args.runs,
        "detectionRequests": {
            "median": statistics.median(detected) if detected else None,
            "max": max(detected) if detected else None,
        },
    }
    joined = min(s["joinRate"] for s in e2e["shadows"].values())
    ok = (
        joined >= TARGETS["joined"]
        and false_flags <= TARGETS["falseFlags"]
        and result["detectionRate"] >= TARGETS["detected"]
        and e2e["shadows"]["v2"]["flagged"] == []
        and "label" in e2e["shadows"]["v3"]["flagged"]
    )
    v2, v3 = e2e["shadows"]["v2"], e2e["shadows"]["v3"]
    print(
        f"End to end: {args.requests:,} mirrored copies per shadow at {args.rate:g}/s each "
        f"(sent in {e2e['sentSeconds']:.0f}s):\n"
        "| shadow | joined | dropped | agreement | flagged | latency delta p99 ms |\n"
        "| --- | ---: | --- | ---: | --- | ---: |\n"
        + "\n".join(
            f"| {name} | {s['joined']:,}/{s['mirrored']:,} ({s['joinRate']:.2%}, >= 99.5%) | "
            f"{s['dropped'] or 'none'} | {s['agreement']:.4f} | {', '.join(s['flagged']) or 'nothing'} | "
            f"{s['latency'].get('p99Ms', 0):.2f} |"
            for name, s in (("v2 (equivalent)", v2), ("v3 (1% of labels flipped)", v3))
        )
        + f"\n\nContinuous monitoring, {args.runs} runs each (the flag read after every request):\n"
        f"- equivalent shadow flagged within {args.horizon:,} requests: {false_flags:.3f} of runs (<= 0.01)\n"
        f"- 1% label flips flagged within {DETECT_WITHIN:,} requests: {result['detectionRate']:.3f} of runs (>= 0.95);"
        f" requests it took: median {result['detectionRequests']['median']}, max {result['detectionRequests']['max']}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
