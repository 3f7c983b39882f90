"""One stack's plan files that do not depend on the policy verdicts are written by a forked helper while the
policies are evaluated (report.WriteAhead): the same files, in place only when all are there, nothing left
behind when planning fails, and everything written by the planner itself when the helper fails.

Each case runs `turnout plan` in a fresh process: a helper is forked only where no other thread runs, and
this test process may hold threads that earlier tests left (the SDK's callback server)."""

from __future__ import annotations

import filecmp
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO

STACK = "prod-gcp"  # no resource hooks: their callback server runs a thread, and then no helper is forked

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or len(os.sched_getaffinity(0)) < 2, reason="a helper is forked on Linux with 2+ processors"
)


def _plan(out: Path, setup: str = "", stacks: tuple[str, ...] = (STACK,)) -> dict:
    """`turnout plan STACKS --out OUT` in a fresh process after `setup`: its status, stderr and the helpers forked."""
    script = textwrap.dedent(
        """
        import json, os, sys
        from turnout.offline import fast, report
        import turnout.offline.planner as planner
        forked = []
        fork = os.fork
        planner_pid = os.getpid()
        os.fork = lambda: forked.append(1) or fork()
        {setup}
        from turnout.cli import main
        status = main(["plan", *sys.argv[2:], "--project", {repo!r}, "--out", sys.argv[1]])
        print(json.dumps({{"status": status, "forks": len(forked)}}))
        """
    ).format(setup=textwrap.dedent(setup).strip(), repo=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", script, str(out), *stacks], capture_output=True, text=True, timeout=600, cwd=REPO
    )
    assert done.stdout.strip(), done.stderr[-3000:]
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "stderr": done.stderr}


def _differences(comparison: filecmp.dircmp) -> list[str]:
    found = [*comparison.left_only, *comparison.right_only, *comparison.funny_files]
    found += filecmp.cmpfiles(comparison.left, comparison.right, comparison.common_files, shallow=False)[1]
    for sub in comparison.subdirs.values():
        found += _differences(sub)
    return found


def _files(out: Path) -> dict[Path, bytes]:
    return {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_the_helper_writes_the_plan_a_single_process_writes(tmp_path):
    ahead, alone = tmp_path / "ahead", tmp_path / "alone"
    assert _plan(ahead)["forks"] == 1
    done = _plan(alone, "fast.may_fork_a_helper = lambda: False")
    assert done["status"] == 0 and done["forks"] == 0

    assert sorted(p.name for p in ahead.iterdir()) == [STACK], "the helper's folder is left behind"
    assert _differences(filecmp.dircmp(ahead / STACK, alone / STACK)) == []
    assert len(list((ahead / STACK / "manifests").rglob("*.yaml"))) > 10
    assert stat.S_IMODE((ahead / STACK).stat().st_mode) == stat.S_IMODE((alone / STACK).stat().st_mode)


def test_when_the_helper_fails_the_planner_writes_everything(tmp_path):
    out, alone = tmp_path / "out", tmp_path / "alone"
    done = _plan(
        out,
        """
        write = report._write_program_files
        def failing_in_the_helper(plan, target):
            if os.getpid() != planner_pid:
                raise OSError("the helper's disk is full")
            write(plan, target)
        report._write_program_files = failing_in_the_helper
        """,
    )
    assert done["status"] == 0 and done["forks"] == 1
    _plan(alone, "fast.may_fork_a_helper = lambda: False")
    assert sorted(p.name for p in out.iterdir()) == [STACK]
    assert _differences(filecmp.dircmp(out / STACK, alone / STACK)) == []


def test_a_failed_policy_evaluation_leaves_the_earlier_plan_and_no_helper_folder(tmp_path):
    out = tmp_path / "out"
    assert _plan(out)["status"] == 0
    earlier = _files(out)
    done = _plan(out, "planner.evaluate = lambda *a, **k: 1 / 0")
    assert done["status"] == 3 and "ZeroDivisionError" in done["stderr"]
    assert done["forks"] == 1
    assert _files(out) == earlier
    assert sorted(p.name for p in out.iterdir()) == [STACK]


def test_no_helper_is_forked_while_another_thread_runs(tmp_path):
    done = _plan(
        tmp_path,
        """
        import threading
        threading.Thread(target=threading.Event().wait, daemon=True).start()
        """,
    )
    assert done["status"] == 0 and done["forks"] == 0
    assert (tmp_path / STACK / "summary.md").is_file()


def test_several_stacks_fork_no_helper_per_stack(tmp_path):
    done = _plan(
        tmp_path,
        """
        os.environ["TURNOUT_PLAN_WORKERS"] = "1"
        report.WriteAhead.start = lambda self, plan: print("helper for", plan.stack, file=sys.stderr)
        """,
        stacks=(STACK, "prod-azure"),
    )
    assert done["status"] == 0 and "helper for" not in done["stderr"]
    assert (tmp_path / "prod-azure" / "summary.md").is_file() and (tmp_path / STACK / "summary.md").is_file()
