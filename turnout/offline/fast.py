"""What a plan does not spend time on: the cyclic garbage collector, and a one-shot process's teardown.

A plan creates hundreds of thousands of objects that live until it is written (the SDK's outputs,
tasks and callbacks, the provider modules' classes), so the collector's passes over them reclaim
little and cost about a fifth of the CPU; interpreter teardown then frees module by module what the
operating system would free at once. Measurements: benchmarks/peer_ratio.py, the README's
performance section.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Run the block without cyclic garbage collection; collect as usual afterwards.

    Reference counting still frees everything not in a cycle, so memory grows only by the cycles the
    block leaves behind (a few MiB for the largest bundled stack); they are collected after it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def collect_nothing() -> None:
    """For a command-line process that ends with `exit_now`: no cyclic collection at all, before, during
    or after its plans (the operating system takes the garbage back with the process). Workers forked
    from it inherit this; what a worker's plans leave in cycles stays until it exits (a few MiB a stack)."""
    gc.disable()


def freeze_imports() -> None:
    """Move every object alive now (imported modules, their classes) out of the collector's sight.

    Before forking workers: a collection in a worker then never writes to the parent's pages, which
    stay shared instead of being copied into each worker."""
    gc.freeze()


def thaw_imports() -> None:
    """Undo `freeze_imports` once the workers are done (a library caller's process goes on)."""
    gc.unfreeze()


def prepare_to_fork() -> bool:
    """Shut the SDK's idle executor threads down and replace its event loop by a fresh one (no child inherits a
    running loop); then whether this process may fork: on Linux, with no other thread running (a forked child
    has only the forking thread, and a lock another held would never be released there)."""
    if not (hasattr(os, "fork") and sys.platform == "linux"):
        return False
    policy = asyncio.get_event_loop_policy()
    with contextlib.suppress(RuntimeError):
        loop = policy.get_event_loop()
        if not loop.is_closed():
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
    policy.set_event_loop(policy.new_event_loop())
    return threading.active_count() == 1


def may_fork_a_helper() -> bool:
    """Whether a helper process forked now could run beside this one: a second processor, and forking is safe."""
    processors = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return processors > 1 and prepare_to_fork()


def exit_now(status: int) -> NoReturn:
    """End a finished command-line process with `status`, skipping the interpreter's teardown.

    For the console script only, never for library calls: atexit handlers and finalizers do not run.
    The caller has closed its files (turnout writes each one in a `with` block); standard output and
    error are flushed here. If a flush fails (a closed pipe), Python's own exit reports it as usual."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(status)
    os._exit(status)
