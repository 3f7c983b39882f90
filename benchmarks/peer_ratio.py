"""turnout plan prod-aws against cdk synth of the closest EKS Blueprints app; plan --all against its baseline.

Whole processes, timed from outside as a user runs them, in paired alternating runs (A B A B ...) after a
warm-up of each, so that a ratio holds while a shared machine's speed drifts: per run, wall seconds,
CPU seconds (user + system, the process and the children it waited for) and peak memory (the largest
single process, from wait4). Ratios are taken pair by pair; the medians are quoted.

1. The peer (benchmarks/peer/README.md: two regions, EKS with the Istio, AWS Load Balancer Controller,
   Karpenter and NVIDIA device plugin add-ons, the Kubernetes objects of the very plan it is compared
   with, ElastiCache Global Datastore, Route 53 failover): installed with `npm ci` and compiled with `tsc`
   first (install steps, not timed), synthesized offline from cdk.context.json. Target: turnout <= 0.6x.
2. `turnout plan --all` against the same command at BASELINE_COMMIT (or --baseline COMMIT), extracted
   with `git archive`, and against the wall time recorded on that commit. Target: <= 0.5x on 2 cores.

    python benchmarks/peer_ratio.py [--runs 5] [--all-runs 3] [--skip-peer] [--skip-all] [--baseline COMMIT]

Not a test: machines differ. The README's performance section records its output.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PEER = REPO / "benchmarks" / "peer"
STACK = "prod-aws"

# `turnout plan --all` before issue 16's changes, as measured on main: the median of 3 whole-process runs
# after a warm-up on the shared 2-core machine (load average about 7 from other sessions).
BASELINE_COMMIT = "618ea83"
BASELINE_ALL = {"wall_s": 68.8, "cpu_s": 27.3, "peak_mib": 309.0, "stacks": 9}

PEER_TARGET = 0.6
ALL_TARGET = 0.5


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    peak_mib: float
    status: int


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> Run:
    """One whole-process run: wall clock around it, the OS's accounting of the child from wait4."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    errors = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {child.returncode}:\n{errors[-3000:]}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, child.returncode)


def paired(a: list[str], a_cwd: Path, a_env, b: list[str], b_cwd: Path, b_env, runs: int) -> list[tuple[Run, Run]]:
    timed(a, a_cwd, a_env), timed(b, b_cwd, b_env)  # warm-up: bytecode caches, staged assets, page cache
    pairs = []
    for index in range(runs):
        pair = (timed(a, a_cwd, a_env), timed(b, b_cwd, b_env))
        pairs.append(pair)
        print(
            f"  run {index + 1}/{runs}: A {pair[0].wall_s:.2f} s wall {pair[0].cpu_s:.2f} s CPU, "
            f"B {pair[1].wall_s:.2f} s wall {pair[1].cpu_s:.2f} s CPU",
            file=sys.stderr,
            flush=True,
        )
    return pairs


def median(values) -> float:
    return statistics.median(list(values))


def table(pairs: list[tuple[Run, Run]], names: tuple[str, str], resources: tuple[int, int] | None) -> None:
    a, b = names
    print(f"| figure (median of {len(pairs)} pairs) | {a} | {b} | ratio {a} / {b} (pair by pair) |")
    print("| --- | ---: | ---: | ---: |")
    for label, field in (("wall s", "wall_s"), ("CPU s", "cpu_s")):
        ratio = median(getattr(x, field) / getattr(y, field) for x, y in pairs)
        print(
            f"| {label} | {median(getattr(x, field) for x, _ in pairs):.2f} "
            f"| {median(getattr(y, field) for _, y in pairs):.2f} | {ratio:.2f} |"
        )
    if resources:
        print(f"| resources | {resources[0]} | {resources[1]} | |")
        per = [(x.wall_s / resources[0] * 1000, y.wall_s / resources[1] * 1000) for x, y in pairs]
        print(f"| wall ms / resource | {median(p for p, _ in per):.1f} | {median(q for _, q in per):.1f} | |")
    print(
        f"| peak MiB (largest process) | {median(x.peak_mib for x, _ in pairs):.0f} "
        f"| {median(y.peak_mib for _, y in pairs):.0f} | |"
    )


def spread(pairs: list[tuple[Run, Run]]) -> str:
    ratios = sorted(x.wall_s / y.wall_s for x, y in pairs)
    return f"wall ratios {', '.join(f'{r:.2f}' for r in ratios)}"


def install_peer() -> None:
    """`npm ci` (exactly package-lock.json) and `tsc`, when node_modules or the build is missing or stale."""
    if shutil.which("npm") is None:
        raise SystemExit("the peer needs Node.js and npm (https://nodejs.org); install them and run again")
    lock = PEER / "package-lock.json"
    marker = PEER / "node_modules" / ".package-lock.json"
    if not marker.exists() or marker.stat().st_mtime < lock.stat().st_mtime:
        print("installing the peer (npm ci) ...", file=sys.stderr, flush=True)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEER, check=True)
    sources = [Path(p) for p in glob.glob(str(PEER / "bin" / "*.ts")) + glob.glob(str(PEER / "lib" / "*.ts"))]
    built = PEER / "dist" / "bin" / "app.js"
    if not built.exists() or built.stat().st_mtime < max(p.stat().st_mtime for p in sources):
        print("compiling the peer (tsc) ...", file=sys.stderr, flush=True)
        subprocess.run([str(PEER / "node_modules" / ".bin" / "tsc"), "-p", "."], cwd=PEER, check=True)


def cloudformation_resources(cdk_out: Path) -> int:
    return sum(
        len(json.loads(Path(path).read_text()).get("Resources", {}))
        for path in glob.glob(str(cdk_out / "*.template.json"))
    )


def python_env(root: Path) -> dict[str, str]:
    """As on a developer's machine: bytecode cached after the first run (some CI images turn that off)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def peer_ratio(runs: int) -> float:
    install_peer()
    with tempfile.TemporaryDirectory(prefix="turnout-peer-") as tmp:
        out = Path(tmp) / "plan"
        turnout = [sys.executable, "-m", "turnout.cli", "plan", STACK, "--out", str(out)]
        cdk = [
            str(PEER / "node_modules" / ".bin" / "cdk"),
            "synth",
            "--quiet",
            "--output",
            str(Path(tmp) / "cdk.out"),
            "-c",
            f"manifests={out / STACK / 'manifests'}",
        ]
        cdk_env = {**os.environ, "CDK_DISABLE_CLI_TELEMETRY": "true"}
        subprocess.run(turnout, cwd=REPO, env=python_env(REPO), check=True, capture_output=True)  # the peer's objects
        print(f"`turnout plan {STACK}` (A) against `cdk synth` of the peer (B), {runs} pairs ...", file=sys.stderr)
        pairs = paired(turnout, REPO, python_env(REPO), cdk, PEER, cdk_env, runs)
        resources = len(json.loads((out / STACK / "inventory.json").read_text())["resources"])
        peer_resources = cloudformation_resources(Path(tmp) / "cdk.out")
    ratio = median(x.wall_s / y.wall_s for x, y in pairs)
    print(f"\n### `turnout plan {STACK}` against `cdk synth` of the EKS Blueprints peer\n")
    table(pairs, ("turnout", "cdk synth"), (resources, peer_resources))
    print(f"\n{spread(pairs)}; target <= {PEER_TARGET}: {'met' if ratio <= PEER_TARGET else 'NOT met'} ({ratio:.2f})")
    return ratio


def plan_resources(out: Path) -> tuple[int, int]:
    """Stacks and resources in a plan folder."""
    inventories = list(out.glob("*/inventory.json"))
    return len(inventories), sum(len(json.loads(p.read_text())["resources"]) for p in inventories)


def all_ratio(runs: int, commit: str) -> float:
    with tempfile.TemporaryDirectory(prefix="turnout-all-") as tmp:
        baseline = Path(tmp) / "baseline"
        baseline.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive, check=True)
        now = [sys.executable, "-m", "turnout.cli", "plan", "--all", "--out", str(Path(tmp) / "now")]
        then = [sys.executable, "-m", "turnout.cli", "plan", "--all", "--out", str(Path(tmp) / "then")]
        print(f"`turnout plan --all` (A) against it at {commit} (B), {runs} pairs ...", file=sys.stderr)
        pairs = paired(now, REPO, python_env(REPO), then, baseline, python_env(baseline), runs)
        sizes = plan_resources(Path(tmp) / "now"), plan_resources(Path(tmp) / "then")
    ratio = median(x.wall_s / y.wall_s for x, y in pairs)
    print(f"\n### `turnout plan --all` against the same command at {commit}\n")
    table(pairs, ("now", commit), None)
    print(f"| stacks, resources | {sizes[0][0]}, {sizes[0][1]} | {sizes[1][0]}, {sizes[1][1]} | |")
    verdict = f"target <= {ALL_TARGET}: {'met' if ratio <= ALL_TARGET else 'NOT met'} ({ratio:.2f})"
    if commit == BASELINE_COMMIT:
        recorded = median(x.wall_s for x, _ in pairs) / BASELINE_ALL["wall_s"]
        verdict += f"; against the {BASELINE_ALL['wall_s']} s recorded at {commit}: {recorded:.2f}"
    print(f"\n{spread(pairs)}; {verdict}")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="pairs of the peer comparison (default 5)")
    parser.add_argument("--all-runs", type=int, default=3, help="pairs of the --all comparison (default 3)")
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--skip-all", action="store_true")
    parser.add_argument(
        "--baseline",
        default=BASELINE_COMMIT,
        help=f"the commit --all is compared with (default {BASELINE_COMMIT}, before issue 16's changes)",
    )
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"{platform.processor() or platform.machine()}, {cores} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} at the start"
    )
    if not args.skip_peer:
        peer_ratio(args.runs)
    if not args.skip_all:
        all_ratio(args.all_runs, args.baseline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
