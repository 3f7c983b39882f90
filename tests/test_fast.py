"""turnout/offline/fast.py: no cyclic collection while a program runs, and a quick exit for the CLI only."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import weakref

import pulumi
import pytest

from tests.conftest import REPO
from turnout.offline import fast
from turnout.offline.runtime import run_function


def test_the_collector_is_off_while_a_program_runs_and_back_on_afterwards():
    seen = []

    def program():
        seen.append(gc.isenabled())
        pulumi.export("n", 1)

    assert gc.isenabled()
    run_function(program)
    assert seen == [False]
    assert gc.isenabled()


def test_the_collector_comes_back_after_a_failing_program():
    def program():
        raise ValueError("the program failed")

    with pytest.raises(ValueError, match="the program failed"):
        run_function(program)
    assert gc.isenabled()


def test_a_caller_that_turned_the_collector_off_keeps_it_off():
    gc.disable()
    try:
        with fast.no_cyclic_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_cycles_left_by_the_block_are_collected_afterwards():
    class Node:
        pass

    collected = []
    with fast.no_cyclic_gc():
        node = Node()
        node.self = node
        node_ref = weakref.ref(node, lambda _: collected.append(True))
        del node
        assert node_ref() is not None  # a cycle: reference counting alone never frees it
    gc.collect()
    assert collected == [True]


def _run(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )


@pytest.mark.parametrize("status", [0, 1, 2, 3])
def test_exit_now_keeps_the_status_and_everything_written(tmp_path, status):
    """Buffered standard output (no newline, not a terminal) and a file written in a `with` block are all
    there; the status is the command's."""
    done = _run(
        f"""
        import sys
        from turnout.offline import fast
        with open({str(tmp_path / "plan.json")!r}, "w") as out:
            out.write("x" * 100_000)
        sys.stdout.write("o" * 70_000)
        sys.stderr.write("the last line, unflushed")
        fast.exit_now({status})
        """
    )
    assert done.returncode == status, done.stderr
    assert done.stdout == "o" * 70_000
    assert done.stderr == "the last line, unflushed"
    assert (tmp_path / "plan.json").read_text() == "x" * 100_000


def test_exit_now_skips_the_teardown():
    """What it saves: atexit handlers and finalizers do not run (so never call it from library code)."""
    done = _run(
        """
        import atexit, sys
        from turnout.offline import fast
        atexit.register(lambda: print("atexit ran"))
        print("planned")
        fast.exit_now(0)
        """
    )
    assert (done.returncode, done.stdout) == (0, "planned\n")


def test_exit_now_on_a_broken_pipe_does_not_claim_success():
    """A reader that went away (`turnout ... | head -1`): the final flush fails, and Python's own exit reports
    it (status 120) instead of a silent success."""
    script = (
        "import sys, time\nfrom turnout.offline import fast\ntime.sleep(0.5)\nsys.stdout.write('x')\nfast.exit_now(0)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    child.stdout.close()  # the reader is gone before the child flushes
    child.wait(timeout=60)
    assert child.returncode == 120, child.stderr.read()


def test_the_console_script_runs_main_without_the_collector_and_exits_with_its_status():
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["turnout"] == "turnout.cli:run"
    done = _run(
        """
        import atexit, gc
        from turnout import cli
        atexit.register(lambda: print("torn down"))
        cli.main = lambda argv=None: print("collector on:", gc.isenabled()) or 1
        cli.run()
        """
    )
    assert (done.returncode, done.stdout) == (1, "collector on: False\n"), done.stderr


@pytest.mark.parametrize(
    ("args", "status", "said"),
    [
        (["plan", "no-such-stack"], 2, "no stack 'no-such-stack'"),
        (["config-reference"], 0, ""),
    ],
)
def test_the_cli_keeps_its_exit_status_and_output(args, status, said):
    done = subprocess.run(
        [sys.executable, "-m", "turnout.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == status, done.stderr
    assert said in done.stderr
    if args == ["config-reference"]:
        from turnout.reference import config_reference

        assert done.stdout == config_reference()  # all of it, although the process never tore down
