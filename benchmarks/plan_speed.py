"""How fast `turnout plan` is per resource, next to the Pulumi SDK's own floor.

For each size, in one process: the plan is a generated kind stack of that many resources planned
end to end (program under mocks, manifests, policy pack, files written). It is compared with two
floors, both registrations on the SDK's own mock monitor with no turnout code involved:
- the SDK floor: the same number of bare ConfigMaps (the issue's definition);
- the payload floor: the very objects the plan registered (same types and inputs), flat, so that
  the ratio shows only what turnout adds (components, providers, recording, rendering, policy).
Each is timed as the median of --repeat runs after a warm-up; peak memory is traced in a
separate, untimed run.

    python benchmarks/plan_speed.py [--sizes 100 1000] [--repeat 5]

Not a test: machines differ. The README's performance section says what it measures; benchmarks/peer_ratio.py
times whole `turnout plan` processes against the CDK peer.
"""

from __future__ import annotations

import argparse
import logging
import resource
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from importlib.metadata import version
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pulumi.runtime import mocks
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from turnout.offline.planner import plan_stack  # noqa: E402
from turnout.offline.report import write_plan  # noqa: E402
from turnout.offline.runtime import _fresh_runtime, to_plain  # noqa: E402
from turnout.offline.stackfile import find_project  # noqa: E402

# stack, fleet, kind cluster, two kind commands, kubernetes provider; the serving platform (Istio, TLS)
FIXED = 6 + 11
# endpoint, namespace, workload and routes components; namespace, two authorization policies, network policy,
# service account, deployment, HPA, service, destination rule, virtual service
PER_ENDPOINT = 14


class _Echo(pulumi.runtime.Mocks):
    def new_resource(self, args):
        return f"{args.name}-id", args.inputs

    def call(self, args):
        return {}, None


def sdk_floor(count: int) -> float:
    """Seconds to register `count` bare ConfigMaps (the stack counts as one) on the SDK's mock monitor."""

    def program():
        for index in range(count - 1):
            k8s.core.v1.ConfigMap(f"cm-{index}", metadata={"name": f"cm-{index}"}, data={"k": "v"})

    monitor = mocks.MockMonitor(_Echo())
    _fresh_runtime(monitor, "floor", "floor", REPO, logging.getLogger("floor"))
    started = time.perf_counter()
    _sync_await(run_in_stack(program))
    elapsed = time.perf_counter() - started
    assert len(monitor.resources) == count - 1, len(monitor.resources)
    return elapsed


def payload_floor(records) -> float:
    """Seconds to register the plan's own objects flat on the SDK's mock monitor (no parents, providers)."""
    payloads = [
        (r.type, r.name, to_plain(r.raw_inputs, redact=False)) for r in records if r.type != "pulumi:pulumi:Stack"
    ]

    def program():
        for type_, name, props in payloads:
            pulumi.CustomResource(type_, name, props)

    monitor = mocks.MockMonitor(_Echo())
    _fresh_runtime(monitor, "floor", "payload", REPO, logging.getLogger("floor"))
    started = time.perf_counter()
    _sync_await(run_in_stack(program))
    elapsed = time.perf_counter() - started
    assert len(monitor.resources) == len(payloads), len(monitor.resources)
    return elapsed


MIXED_STRATEGIES = [
    {"type": "canary", "stable": "v1", "canary": "v2", "weight": 10, "sticky": {"cookie": "model"}},
    {"type": "shadow", "primary": "v1", "shadows": {"v2": 50}},
    {
        "type": "ab-test",
        "variants": {"v1": 50, "v2": 50},
        "segment": {"header": "x-cohort", "value": "b"},
        "default": "v1",
    },
    {"type": "blue-green", "active": "v1", "preview": "v2"},
    {"type": "dark-launch", "live": "v1", "dark": "v2"},
    {"type": "feature-flag", "flag": "f", "variants": {"a": "v1", "b": "v2"}, "defaultVariant": "a"},
    {"type": "rolling", "version": "v2"},
]


def mixed_endpoints(count: int) -> dict:
    """`count` two-version endpoints cycling through the strategies (the issue's 50-endpoint case)."""
    return {
        f"model-{i:04d}": {
            "versions": {v: {"image": f"ghcr.io/acme/model-{i}:1.{n}.0"} for n, v in enumerate(("v1", "v2"))},
            "strategy": MIXED_STRATEGIES[i % len(MIXED_STRATEGIES)],
        }
        for i in range(count)
    }


def make_project(root: Path, endpoints: int, mixed: bool = False) -> None:
    shutil.copy(REPO / "Pulumi.yaml", root)
    for folder in ("stacks", "policies"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "environments").mkdir()
    config = {
        "turnout:platform": {"cloud": "kind", "regions": ["local"]},
        "turnout:endpoints": mixed_endpoints(endpoints)
        if mixed
        else {
            f"model-{i:04d}": {
                "versions": {"v1": {"image": f"ghcr.io/acme/model-{i}:1.0.{i}", "replicas": {"min": 1, "max": 3}}}
            }
            for i in range(endpoints)
        },
    }
    (root / "environments" / "Pulumi.bench.yaml").write_text(yaml.safe_dump({"config": config}))


def plan_once(project, out: Path):
    started = time.perf_counter()
    plan = plan_stack(project, "bench")
    write_plan(plan, out)
    return time.perf_counter() - started, plan.records


def measure(size: int, repeat: int, mixed_endpoints: int | None = None) -> dict:
    endpoints = mixed_endpoints or max(1, round((size - FIXED) / PER_ENDPOINT))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_project(root, endpoints, mixed=mixed_endpoints is not None)
        project = find_project(root)
        out = root / "out"
        _, records = plan_once(project, out)  # warm-up (imports, caches)
        resources = len(records)
        sdk_floor(resources)
        payload_floor(records)
        plan_times = [plan_once(project, out)[0] for _ in range(repeat)]
        floor_times = [sdk_floor(resources) for _ in range(repeat)]
        payload_times = [payload_floor(records) for _ in range(repeat)]
        tracemalloc.start()
        plan_once(project, out)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    plan_s, floor_s = statistics.median(plan_times), statistics.median(floor_times)
    payload_s = statistics.median(payload_times)
    return {
        "resources": resources,
        "endpoints": endpoints,
        "plan_ms_per_resource": plan_s / resources * 1000,
        "floor_ms_per_resource": floor_s / resources * 1000,
        "ratio": plan_s / floor_s,
        "payload_ms_per_resource": payload_s / resources * 1000,
        "payload_ratio": plan_s / payload_s,
        "plan_s": plan_s,
        "peak_mib": peak / 2**20,
    }


def bundled_stacks(names: list[str], repeat: int) -> list[tuple[str, int, float]]:
    """Plan bundled stacks from environments/ (median of `repeat`): name, resources, seconds."""
    project = find_project(REPO)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            plan_stack(project, name)  # warm-up
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                plan = plan_stack(project, name)
                write_plan(plan, Path(tmp))
                times.append(time.perf_counter() - started)
            rows.append((name, len(plan.records), statistics.median(times)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mixed", type=int, default=50, help="also: this many two-version endpoints, all strategies")
    args = parser.parse_args()
    print(
        "| resources | endpoints | plan ms/resource | SDK floor (bare ConfigMaps) ms/resource | ratio "
        "| payload floor ms/resource | ratio to payload | plan s | peak traced MiB |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    cases = [(size, None) for size in args.sizes] + ([(0, args.mixed)] if args.mixed else [])
    for size, mixed in cases:
        print(
            f"measuring {f'{mixed} mixed endpoints' if mixed else f'~{size} resources'} ...",
            file=sys.stderr,
            flush=True,
        )
        r = measure(size, args.repeat, mixed)
        cells = [
            f"{r['resources']}",
            f"{r['endpoints']}" + (" (mixed strategies)" if mixed else ""),
            f"{r['plan_ms_per_resource']:.2f}",
            f"{r['floor_ms_per_resource']:.2f}",
            f"{r['ratio']:.2f}",
            f"{r['payload_ms_per_resource']:.2f}",
            f"{r['payload_ratio']:.2f}",
            f"{r['plan_s']:.2f}",
            f"{r['peak_mib']:.1f}",
        ]
        print("| " + " | ".join(cells) + " |", flush=True)
    print("\n| bundled stack | regions | resources | plan s | ms/resource |")
    print("| --- | ---: | ---: | ---: | ---: |")
    rows = bundled_stacks(["dev-aws", "prod-aws"], args.repeat)
    for name, resources, seconds in rows:
        regions = len(
            yaml.safe_load((REPO / "environments" / f"Pulumi.{name}.yaml").read_text())["config"]["turnout:platform"][
                "regions"
            ]
        )
        print(f"| {name} | {regions} | {resources} | {seconds:.2f} | {seconds / resources * 1000:.2f} |")
    (_, dev_n, dev_s), (_, prod_n, prod_s) = rows
    print(f"\nprod-aws / dev-aws per resource: {(prod_s / prod_n) / (dev_s / dev_n):.2f} (1.00 = linear)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nprocess peak RSS: {rss:.0f} MiB; python {sys.version.split()[0]}, pulumi {version('pulumi')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
