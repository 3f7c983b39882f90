"""`turnout plan --all` in forked workers (turnout/offline/workers.py): the same output, files and exit status as
planning in turn; one stack's failure, even a dead worker, never hides another's result."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from turnout.offline import workers

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")


def test_a_global_stack_and_its_listed_cells_are_one_job_cells_first():
    cells = {"global": ["blue", "green", "unlisted"], "other-global": ["red"]}
    stacks = ["a", "blue", "global", "green", "other-global", "z"]
    assert workers.jobs(stacks, lambda s: cells.get(s, [])) == [[0], [1, 3, 2], [4], [5]]


def test_stacks_sharing_a_cell_are_one_job():
    cells = {"g1": ["c"], "g2": ["c"]}
    assert workers.jobs(["c", "g1", "g2", "x"], lambda s: cells.get(s, [])) == [[0, 1, 2], [3]]


def test_cells_are_read_from_the_stack_file_as_written(project):
    from turnout.offline.stackfile import find_project

    found = find_project(project)
    assert workers.cells_of(found, "prod-aws-global") == ["prod-aws-blue", "prod-aws-green"]
    assert workers.cells_of(found, "local") == []
    (project / "environments" / "Pulumi.broken.yaml").write_text("config: [not, a, mapping\n")
    assert workers.cells_of(found, "broken") == []


def _run_fake(plan_one_source: str, stacks: list[str], workers_count: int, cells: dict | None = None):
    """plan_stacks in a fresh process, with a plan_one written in the test (no Pulumi, no warm-up)."""
    script = textwrap.dedent(
        f"""
        import os, sys, time, json
        from turnout.offline import workers
        PARENT = os.getpid()
        {textwrap.indent(textwrap.dedent(plan_one_source), "        ").strip()}
        cells = {json.dumps(cells or {})}
        status = workers.plan_stacks({stacks!r}, plan_one, workers={workers_count},
                                     cells=lambda s: cells.get(s, []), warm=lambda: None)
        sys.exit(status)
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


FAKE_PLAN = """
def plan_one(stack, progress, planned):
    print(f"{progress} planning {stack} ...", file=sys.stderr, flush=True)
    time.sleep({"a": 1.0, "b": 0.1, "c": 0.3, "d": 0.0}[stack])  # later stacks finish first
    print(f"{stack} wrote to stdout")
    os.write(2, f"{stack}: native write, pid {'parent' if os.getpid() == PARENT else 'worker'}\\n".encode())
    print(f"{progress} {stack}: done", file=sys.stderr)
    return {"a": 0, "b": 1, "c": 2, "d": 0}[stack]
"""


def test_workers_print_as_a_sequential_run_and_exit_with_the_worst_status():
    sequential = _run_fake(FAKE_PLAN, ["a", "b", "c", "d"], 1)
    parallel = _run_fake(FAKE_PLAN, ["a", "b", "c", "d"], 2)
    assert sequential.returncode == parallel.returncode == 2, parallel.stderr
    assert parallel.stdout == sequential.stdout == "".join(f"{s} wrote to stdout\n" for s in "abcd")
    assert parallel.stderr == sequential.stderr.replace("pid parent", "pid worker")
    assert parallel.stderr.splitlines()[:3] == ["[1/4] planning a ...", "a: native write, pid worker", "[1/4] a: done"]
    assert "pid parent" not in parallel.stderr  # really planned in workers, not in turn


def test_a_worker_that_dies_is_an_internal_error_for_its_stack_only():
    dying = """
    def plan_one(stack, progress, planned):
        print(f"{progress} planning {stack} ...", file=sys.stderr, flush=True)
        if stack == "b":
            os.kill(os.getpid(), 9)
        time.sleep(0.2)
        print(f"{progress} {stack}: done", file=sys.stderr)
        return 1 if stack == "c" else 0
    """
    done = _run_fake(dying, ["a", "b", "c", "d"], 2)
    assert done.returncode == 3
    lines = done.stderr.splitlines()
    assert lines == [
        "[1/4] planning a ...",
        "[1/4] a: done",
        "[2/4] planning b ...",
        "turnout: internal error while planning stack 'b': its worker process ended without a result "
        "(killed by signal 9); please report it with this output",
        "[3/4] planning c ...",
        "[3/4] c: done",
        "[4/4] planning d ...",
        "[4/4] d: done",
    ]


def test_a_crash_inside_plan_one_is_reported_and_the_worker_goes_on():
    crashing = """
    def plan_one(stack, progress, planned):
        if stack == "a":
            raise SystemExit("a component called sys.exit")
        print(f"{stack} planned", file=sys.stderr)
        return 0
    """
    done = _run_fake(crashing, ["a", "b", "c"], 2)
    assert done.returncode == 3
    assert "SystemExit: a component called sys.exit" in done.stderr
    assert "b planned" in done.stderr and "c planned" in done.stderr


def test_a_global_stack_reads_the_plans_of_its_cells_in_its_job():
    recording = """
    def plan_one(stack, progress, planned):
        planned[stack] = os.getpid()
        print(f"{stack} sees {sorted(planned)}", file=sys.stderr)
        return 0
    """
    done = _run_fake(recording, ["blue", "global", "green", "other"], 2, cells={"global": ["blue", "green"]})
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "blue sees ['blue']",
        "global sees ['blue', 'global', 'green']",
        "green sees ['blue', 'green']",
        "other sees ['other']",
    ]


def _cli(project: Path, out: Path, workers_count: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "turnout.cli", "plan", "--all", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO), "TURNOUT_PLAN_WORKERS": str(workers_count)},
    )


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_plan_all_in_workers_writes_and_says_what_planning_in_turn_does(project, tmp_path):
    """Real stacks: a good one, one with a mandatory violation (1), one with invalid configuration (2)."""
    environments = project / "environments"
    for stack_file in environments.glob("Pulumi.*.yaml"):
        if stack_file.name not in ("Pulumi.local.yaml", "Pulumi.e2e.yaml"):
            stack_file.unlink()
    local = yaml.safe_load((environments / "Pulumi.local.yaml").read_text())
    violating = json.loads(json.dumps(local))
    violating["config"]["turnout:tier"] = "prod"
    violating["config"]["turnout:endpoints"]["hello"]["strategy"]["weight"] = 60
    (environments / "Pulumi.canary-heavy.yaml").write_text(yaml.safe_dump(violating))
    broken = json.loads(json.dumps(local))
    broken["config"]["turnout:endpoints"]["echo"]["strategy"]["shadows"] = {"v9": 50}
    (environments / "Pulumi.broken.yaml").write_text(yaml.safe_dump(broken))

    in_turn = _cli(project, tmp_path / "in-turn", 1)
    parallel = _cli(project, tmp_path / "parallel", 2)

    assert in_turn.returncode == parallel.returncode == 2, parallel.stderr
    assert "internal error" not in parallel.stderr
    assert _files(tmp_path / "parallel") == _files(tmp_path / "in-turn")
    assert sorted(p.name for p in (tmp_path / "parallel").iterdir()) == ["canary-heavy", "e2e", "local"]

    def said(done: subprocess.CompletedProcess) -> list[str]:
        return [
            re.sub(r" in [0-9.]+s -> .*", "", line.replace("in-turn", "parallel")) for line in done.stderr.splitlines()
        ]

    assert said(parallel) == said(in_turn)
    assert [line.split(" ")[0] for line in said(parallel) if line.startswith("[")] == [
        "[1/4]",
        "[2/4]",
        "[2/4]",
        "[3/4]",
        "[3/4]",
        "[4/4]",
        "[4/4]",
    ]  # fmt: skip: broken (1/4) says only that it is planned, then its error
    assert "MANDATORY canary-weight-cap" in parallel.stderr
    assert "turnout:endpoints.echo.strategy" in parallel.stderr


def test_the_kubernetes_modules_imported_before_forking_are_those_a_plan_uses():
    """KUBERNETES_MODULES must follow the components: a Kubernetes API group the local stack's plan loads and the
    list lacks would be imported again by every worker."""
    script = textwrap.dedent(
        """
        import sys, json
        from pathlib import Path
        from turnout.offline.planner import plan_stack
        from turnout.offline.stackfile import find_project
        plan_stack(find_project(Path.cwd()), "local")
        loaded = [
            name for name, module in list(sys.modules.items())
            if name.startswith("pulumi_kubernetes.") and type(module).__name__ != "_LazyModule"
        ]
        print(json.dumps(loaded))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    )
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    versioned_groups = {name for name in loaded if re.fullmatch(r"pulumi_kubernetes\.\w+\.v\w+", name)}
    assert versioned_groups <= set(workers.KUBERNETES_MODULES)
    assert "pulumi_kubernetes.apiextensions" in loaded
    for name in workers.KUBERNETES_MODULES:
        __import__(name)


def test_warm_imports_take_the_projects_own_components_as_the_program_would(tmp_path):
    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "__init__.py").write_text("")
    (tmp_path / "components" / "extra.py").write_text("IMPORTED = True\n")
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from turnout.offline import workers
        workers.warm_imports(Path({str(tmp_path)!r}))
        print(sys.modules["components"].__file__, sys.modules["components.extra"].IMPORTED)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    )
    assert done.stdout.split() == [str(tmp_path / "components" / "__init__.py"), "True"]
