"""Plan several stacks in worker processes forked once the SDKs are imported (`turnout plan --all`).

Importing the Pulumi SDK, the components and the Kubernetes provider modules every stack uses is
a large part of each plan's CPU. So the parent imports them once (`warm_imports`), then forks up to
`workers` processes that take jobs in turn, each starting with the imports done; a worker keeps what
its jobs import besides (a cloud's provider modules) for its next jobs. A global stack and the cells
it reads that are listed too are one job, cells first, so that a job never needs another's plans
(planner.py's `_plan_cells` plans the cells that are not listed).

What each stack prints is captured in its job and replayed in the listed order, so the output reads
as a sequential run's, and the exit status is the worst of the stacks'. A worker that dies without a
result is an internal error for the stacks of its job only: the others are planned and printed all
the same. Where forking is unsafe (not Linux, threads running), stacks are planned in turn.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import logging
import os
import pkgutil
import select
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from turnout.config import NAMESPACE
from turnout.offline import fast, provider_imports
from turnout.offline.stackfile import Project, read_config_mapping

EXIT_INTERNAL = 3

# The Kubernetes provider modules that turnout's platform (cluster add-ons, mesh, endpoints) uses on every
# cloud; tests/test_plan_all_workers.py checks this list against what planning the local stack imports.
KUBERNETES_MODULES = (
    "pulumi_kubernetes.apiextensions",
    "pulumi_kubernetes.apps.v1",
    "pulumi_kubernetes.autoscaling.v2",
    "pulumi_kubernetes.core.v1",
    "pulumi_kubernetes.helm.v3",
    "pulumi_kubernetes.meta.v1",
    "pulumi_kubernetes.networking.v1",
    "pulumi_kubernetes.policy.v1",
    "pulumi_kubernetes.yaml.v2",
)

PlanOne = Callable[[str, str, dict], int]
"""Plans one stack and says what it did: (stack, progress such as "[2/9]", plans shared in the job) → status."""


def default_workers() -> int:
    """One worker per processor this process may run on, or TURNOUT_PLAN_WORKERS (1: one process)."""
    configured = os.environ.get("TURNOUT_PLAN_WORKERS", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cells_of(project: Project, stack: str) -> list[str]:
    """The cell stacks a global stack names (turnout:globalTraffic.cells), as written; [] when unreadable
    (planning the stack then reports why)."""
    try:
        written = read_config_mapping(project.stack_file(stack), project.name)
    except Exception:  # noqa: BLE001 — grouping only: the stack's own plan reports a bad file
        return []
    traffic = written.get(f"{NAMESPACE}:globalTraffic")
    cells = traffic.get("cells") if isinstance(traffic, dict) else None
    return [cell for cell in cells.values() if isinstance(cell, str)] if isinstance(cells, dict) else []


def jobs(stacks: list[str], cells: Callable[[str], list[str]]) -> list[list[int]]:
    """The listed stacks (by index) grouped so that a global stack and its listed cells share a job, the
    cells first; jobs in the order of their first stack."""
    group = list(range(len(stacks)))

    def root(index: int) -> int:
        while group[index] != index:
            index = group[index]
        return index

    position = {stack: index for index, stack in enumerate(stacks)}
    reads = {index: [position[c] for c in cells(stack) if c in position] for index, stack in enumerate(stacks)}
    for index, listed_cells in reads.items():
        for cell in listed_cells:
            group[root(cell)] = root(index)
    members: dict[int, list[int]] = collections.defaultdict(list)
    for index in range(len(stacks)):
        members[root(index)].append(index)
    return sorted((sorted(m, key=lambda i: (bool(reads[i]), i)) for m in members.values()), key=min)


def warm_imports(project_root: Path) -> None:
    """Import what planning any stack of the project imports: the SDK, the planner and policy evaluation,
    every component module (so every provider package's top level), and KUBERNETES_MODULES. The project
    comes first on the path, as runtime.run_program puts it, so its own components are the ones imported."""
    if str(project_root) not in sys.path:
        sys.path.insert(0, str(project_root))
    import components
    import turnout.offline.planner  # noqa: F401 — the SDK, the offline runtime, the policy pack's loader
    from turnout.offline import sdk

    with sdk.empty_functions_told_by_code():  # as a plan imports them (runtime.run_function)
        for module in pkgutil.walk_packages(components.__path__, "components."):
            importlib.import_module(module.name)
        for name in KUBERNETES_MODULES:
            importlib.import_module(name)


def plan_stacks(
    stacks: list[str],
    plan_one: PlanOne,
    *,
    workers: int,
    cells: Callable[[str], list[str]],
    warm: Callable[[], None],
) -> int:
    """Plan `stacks` with `plan_one`, in up to `workers` processes forked after `warm`; the worst status."""
    progress = [f"[{index}/{len(stacks)}]" for index in range(1, len(stacks) + 1)]
    grouped = jobs(stacks, cells) if workers > 1 and len(stacks) > 1 else []
    if len(grouped) > 1 and hasattr(os, "fork") and sys.platform == "linux":
        warm()
        if _quiesce_for_fork():
            try:
                with tempfile.TemporaryDirectory(prefix="turnout-plan-") as scratch:
                    scheduler = _Scheduler(stacks, progress, plan_one, grouped, Path(scratch))
                    return scheduler.run(min(workers, len(grouped)))
            finally:
                fast.thaw_imports()
    planned: dict = {}  # in turn, in this process: a global stack's cells are planned once, reused when listed
    return max(plan_one(stack, progress[index], planned) for index, stack in enumerate(stacks))


@dataclass
class _Worker:
    pid: int
    commands: int
    """Write end: job numbers, one a line; closed when there is no job left, which ends the worker."""
    results: int
    """Read end: the numbers of the jobs done, one a line."""
    job: int | None = None
    received: bytes = b""


class _Scheduler:
    def __init__(self, stacks, progress, plan_one: PlanOne, all_jobs: list[list[int]], scratch: Path) -> None:
        self.stacks, self.progress, self.plan_one, self.jobs, self.scratch = (
            stacks,
            progress,
            plan_one,
            all_jobs,
            scratch,
        )
        self.statuses: dict[int, int] = {}
        self.printed = 0
        self.pipes: set[int] = set()  # every pipe end this process holds: a new worker closes them all

    def run(self, workers: int) -> int:
        waiting = collections.deque(range(len(self.jobs)))
        running: dict[int, _Worker] = {}
        try:
            for _ in range(workers):
                self._give(self._start(running), waiting)
            while running:
                ready, _, _ = select.select(list(running), [], [])
                for fd in ready:
                    worker = running[fd]
                    data = os.read(fd, 4096)
                    if not data:  # the worker ended: after its last job, or it died during one
                        self._stop(worker, running)
                        _, wait_status = os.waitpid(worker.pid, 0)
                        if worker.job is not None:
                            self._collect(self.jobs[worker.job], wait_status)
                            if waiting:
                                self._give(self._start(running), waiting)
                        continue
                    worker.received += data
                    while b"\n" in worker.received:
                        line, worker.received = worker.received.split(b"\n", 1)
                        self._collect(self.jobs[int(line)], None)
                        worker.job = None
                        self._give(worker, waiting)
        finally:
            for worker in list(running.values()):  # only after an error of our own or an interrupt
                self._stop(worker, running)
                with contextlib.suppress(ProcessLookupError, ChildProcessError):
                    os.kill(worker.pid, 9)
                    os.waitpid(worker.pid, 0)
        return max(self.statuses.values())

    def _give(self, worker: _Worker, waiting: collections.deque) -> None:
        if waiting:
            worker.job = waiting.popleft()
            os.write(worker.commands, f"{worker.job}\n".encode())
        elif worker.commands in self.pipes:
            self.pipes.discard(worker.commands)
            os.close(worker.commands)  # no job left: the worker finishes and exits

    def _start(self, running: dict[int, _Worker]) -> _Worker:
        commands_read, commands_write = os.pipe()
        results_read, results_write = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the caller
            try:
                for fd in (*self.pipes, commands_write, results_read):
                    os.close(fd)
                _streams_on_descriptors()
                self._serve(commands_read, results_write)
                provider_imports.keep_compiled_code()  # what its plans compiled (a no-op unless installed)
            finally:
                fast.exit_now(0)
        os.close(commands_read)
        os.close(results_write)
        self.pipes |= {commands_write, results_read}
        worker = _Worker(pid, commands_write, results_read)
        running[results_read] = worker
        return worker

    def _stop(self, worker: _Worker, running: dict[int, _Worker]) -> None:
        running.pop(worker.results, None)
        for fd in (worker.commands, worker.results):
            if fd in self.pipes:
                self.pipes.discard(fd)
                os.close(fd)

    def _serve(self, commands: int, results: int) -> None:
        with os.fdopen(commands, "r") as lines:
            for line in lines:
                job = int(line)
                self._plan_job(self.jobs[job])
                os.write(results, f"{job}\n".encode())

    def _plan_job(self, job: list[int]) -> None:
        planned: dict = {}  # shared within the job: a global stack's listed cells are planned before it
        for index in job:
            with self._captured(index):
                try:
                    status = self.plan_one(self.stacks[index], self.progress[index], planned)
                except BaseException:  # noqa: BLE001 — plan_one reports errors itself: this is a crash
                    traceback.print_exc()
                    status = EXIT_INTERNAL
                self._path(index, "status").write_text(str(status))

    @contextlib.contextmanager
    def _captured(self, index: int) -> Iterator[None]:
        """File descriptors 1 and 2 (Python's streams, loggers, native code) into the stack's files."""
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, name in ((1, "out"), (2, "err")):
            with open(self._path(index, name), "wb") as capture:
                os.dup2(capture.fileno(), fd)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()

    def _collect(self, job: list[int], wait_status: int | None) -> None:
        for index in job:
            status_file = self._path(index, "status")
            if status_file.exists():
                self.statuses[index] = int(status_file.read_text())
                continue
            self.statuses[index] = EXIT_INTERNAL
            with open(self._path(index, "err"), "a") as err:
                err.write(
                    f"turnout: internal error while planning stack {self.stacks[index]!r}: its worker process "
                    f"ended without a result ({_describe(wait_status)}); please report it with this output\n"
                )
        while self.printed in self.statuses:
            for name, stream in (("out", sys.stdout), ("err", sys.stderr)):
                path = self._path(self.printed, name)
                if path.exists():
                    _write(stream, path.read_bytes())
            self.printed += 1

    def _path(self, index: int, name: str) -> Path:
        return self.scratch / f"{index}.{name}"


def _write(stream, data: bytes) -> None:
    stream.flush()
    if hasattr(stream, "buffer"):
        stream.buffer.write(data)
    else:
        stream.write(data.decode(getattr(stream, "encoding", None) or "utf-8", errors="replace"))
    stream.flush()


def _streams_on_descriptors() -> None:
    """In a worker: sys.stdout, sys.stderr and the log handlers writing to them write to file descriptors
    1 and 2, which `_captured` points at each stack's files (the parent's streams may be in-memory
    objects, as under a test's capture)."""
    replaced = {}
    for fd, name in ((1, "stdout"), (2, "stderr")):
        old = getattr(sys, name)
        encoding = getattr(old, "encoding", None) or "utf-8"
        new = open(fd, "w", buffering=1, closefd=False, encoding=encoding)  # noqa: SIM115 — for the worker's life
        replaced[id(old)] = new
        setattr(sys, name, new)
    loggers = [
        logging.getLogger(),
        *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)),
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and id(handler.stream) in replaced:
                handler.setStream(replaced[id(handler.stream)])


def _describe(wait_status: int | None) -> str:
    if wait_status is None:
        return "it reported none"
    if os.WIFSIGNALED(wait_status):
        return f"killed by signal {os.WTERMSIG(wait_status)}"
    return f"exit status {os.waitstatus_to_exitcode(wait_status)}"


def _quiesce_for_fork() -> bool:
    """Whether this process can fork workers safely (fast.prepare_to_fork). The objects alive now are frozen
    out of the collector's sight, so workers share their pages."""
    if not fast.prepare_to_fork():
        return False
    fast.freeze_imports()
    return True
