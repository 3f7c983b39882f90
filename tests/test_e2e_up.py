"""`make up` (issue 11, defect 6) and `make plan`'s first run, without Docker, kind or Pulumi: the kind
cluster replaced delete-first, kind-loaded images Knative can run, the policy pack's interpreter, and the
Makefile's targets run in a sandbox with stand-ins for the tools, in the order and with the arguments
the real ones would get."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.cluster import ClusterArgs
from components.cluster.kind import (
    KNATIVE_UNRESOLVED_REGISTRIES,
    KindCluster,
    check_loaded_images,
    image_registry,
)
from tests.conftest import REPO, load, write_stack
from turnout.cli import main as turnout_main
from turnout.config import NodePool
from turnout.errors import ConfigError
from turnout.offline import runtime

MAKEFILE = (REPO / "Makefile").read_text()


def make_variable(name: str) -> str:
    return re.search(rf"^{name} :?\??= *(.*)$", MAKEFILE, re.M).group(1).strip()


# the kind cluster ---------------------------------------------------------------------------------------


def test_a_changed_kind_config_deletes_the_cluster_before_creating_its_replacement(monkeypatch):
    """kind cannot create a cluster under a name in use ("node(s) already exist"), and the config is a
    replacement trigger: the Command must be deleteBeforeReplace, as the engine receives it."""
    registered: dict[str, tuple[bool, bool]] = {}
    original = runtime.RecordingMonitor.RegisterResource

    def recording(self, request):
        registered[request.name] = (request.deleteBeforeReplace, request.deleteBeforeReplaceDefined)
        return original(self, request)

    monkeypatch.setattr(runtime.RecordingMonitor, "RegisterResource", recording)
    args = ClusterArgs(
        cluster_name="lab",
        region="local",
        kubernetes_version="1.34",
        node_pools=(NodePool(name="general", machine_type="kind-node", min=1, max=1),),
        load_images=("kind.local/model:1",),
    )
    records = {r.name: r for r in runtime.run_function(lambda: KindCluster("lab", args)).records}
    assert records["lab-create"].inputs["triggers"], "the kind config replaces the cluster when it changes"
    assert registered["lab-create"] == (True, True)
    assert not registered["lab-kubeconfig"][0], "only the cluster itself needs it"


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("turnout-model-echo:0.1.0", "index.docker.io"),
        ("library/python:3.12", "index.docker.io"),
        ("kind.local/turnout-model-echo:0.1.0", "kind.local"),
        ("dev.local/team/model:2", "dev.local"),
        ("ghcr.io/acme/model:1.4.2", "ghcr.io"),
        ("localhost/model:1", "localhost"),
        ("registry:5000/model:1", "registry:5000"),
    ],
)
def test_image_registry_reads_references_as_knatives_resolver_does(image, registry):
    assert image_registry(image) == registry


def kind_stack(image: str, *, backend: str = "knative") -> dict:
    """A kind stack loading `image` (after another one) and running it as v2 of one endpoint."""
    versions = {"v1": {"image": "kind.local/other:1"}, "v2": {"image": image}}
    strategy = {"type": "canary", "stable": "v1", "canary": "v2", "weight": 10}
    return {
        "platform": {"cloud": "kind", "regions": ["local"], "loadImages": ["kind.local/other:1", image]},
        "endpoints": {"hello": {"backend": backend, "versions": versions, "strategy": strategy}},
    }


def test_a_kind_loaded_image_knative_would_look_up_on_docker_hub_is_refused_naming_the_key():
    with pytest.raises(ConfigError) as caught:
        check_loaded_images(load(kind_stack("turnout-model-echo:0.1.0")))
    error = caught.value
    assert error.path == "turnout:platform.loadImages[1]"
    assert "'turnout-model-echo:0.1.0'" in error.found and "turnout:endpoints.hello.versions.v2.image" in error.found
    assert "index.docker.io" in error.found
    assert "kind.local/turnout-model-echo:0.1.0" in error.allowed
    assert all(f"{registry}/" in error.allowed for registry in KNATIVE_UNRESOLVED_REGISTRIES)


@pytest.mark.parametrize(
    "stack",
    [
        kind_stack("kind.local/turnout-model-echo:0.1.0"),
        kind_stack("ko.local/model:1"),
        kind_stack("dev.local/model:1"),
        kind_stack("turnout-model-echo@sha256:" + "a" * 64),  # digests are never resolved
        kind_stack("turnout-model-echo:0.1.0", backend="istio"),  # Istio runs what the node has
    ],
)
def test_images_knative_never_resolves_and_images_istio_runs_are_accepted(stack):
    check_loaded_images(load(stack))


def test_turnout_plan_exits_2_on_the_old_local_image_name(project, tmp_path, capsys):
    """Through the program, as a user meets it: exit 2, the key, no traceback, nothing written."""
    config = {
        k.removeprefix("turnout:"): v
        for k, v in yaml.safe_load((REPO / "environments" / "Pulumi.local.yaml").read_text())["config"].items()
    }
    text = json.dumps(config).replace("kind.local/turnout-model-echo", "turnout-model-echo")
    write_stack(project, "old", json.loads(text))
    status = turnout_main(["plan", "old", "--project", str(project), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2, err
    assert "turnout:platform.loadImages[0]" in err and "kind.local/" in err and "Traceback" not in err
    assert not (tmp_path / "old").exists()


def test_the_bundled_kind_stacks_load_the_image_make_up_builds():
    image = make_variable("MODEL_ECHO_IMAGE")
    assert image.startswith("kind.local/")
    assert "docker build -t $(MODEL_ECHO_IMAGE) apps/model-echo" in MAKEFILE
    stacks = {p.name: yaml.safe_load(p.read_text())["config"] for p in (REPO / "environments").glob("Pulumi.*.yaml")}
    kind = {name: c for name, c in stacks.items() if c["turnout:platform"]["cloud"] == "kind"}
    assert {"Pulumi.local.yaml", "Pulumi.e2e.yaml"} <= set(kind)
    agent = make_variable("AGENT_IMAGE")
    for name, config in kind.items():
        bandits = [e for e in config["turnout:endpoints"].values() if e.get("strategy", {}).get("type") == "bandit"]
        assert config["turnout:platform"].get("loadImages") == [image, *([agent] if bandits else [])], name


# the policy pack's interpreter ----------------------------------------------------------------------------


def test_the_policy_pack_runs_in_the_projects_virtualenv_not_whatever_python3_is_on_path():
    """The CLI runs a Python pack with its `virtualenv` option (relative to the pack's folder), or with
    the first python3 on PATH when there is none; it installs nothing for a local pack."""
    pack = yaml.safe_load((REPO / "policies" / "PulumiPolicy.yaml").read_text())
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    assert pack["runtime"]["name"] == "python"
    pack_venv = (REPO / "policies" / pack["runtime"]["options"]["virtualenv"]).resolve()
    program_venv = (REPO / project["runtime"]["options"]["virtualenv"]).resolve()
    assert pack_venv == program_venv == (REPO / make_variable("VENV")).resolve()
    # What that virtualenv gets installed (pyproject) covers the pack's requirements.
    requirements = (REPO / "policies" / "requirements.txt").read_text().split()
    dependencies = re.findall(r'"([^"]+)"', (REPO / "pyproject.toml").read_text().split("[project.optional")[0])
    assert set(requirements) <= set(dependencies)


# the Makefile, run with stand-ins for the tools ---------------------------------------------------------


@pytest.fixture(scope="module")
def plans(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plans")
    stacks = ["local", "e2e", "e2e-refused", "e2e-judged"]
    assert turnout_main(["plan", *stacks, "--project", str(REPO), "--out", str(out)]) == 0
    return out


RECORDER = """#!/bin/sh
echo "{name} $*" >> "{calls}"
{body}
"""


class Sandbox:
    """A copy of what the Makefile touches, a PATH of stand-ins that record their calls (in one file, in
    order) and none of the machine's other tools (make, bash, openssl and a few coreutils are linked in)."""

    def __init__(self, root: Path, plans: Path, *, installed: bool = True) -> None:
        self.root, self.plans = root / "repo", plans
        self.bin, self.calls = root / "bin", root / "calls"
        self.root.mkdir()
        self.bin.mkdir()
        for name in ("Makefile", "pyproject.toml"):
            shutil.copy(REPO / name, self.root / name)
        for folder in ("scripts", "policies", "environments"):
            shutil.copytree(REPO / folder, self.root / folder, ignore=shutil.ignore_patterns("__pycache__"))
        (self.root / "components" / "cluster").mkdir(parents=True)
        shutil.copy(REPO / "components" / "cluster" / "kind.py", self.root / "components" / "cluster")
        for tool in ("make", "bash", "openssl", "mkdir", "rm", "cp", "touch"):
            if shutil.which(tool):
                (self.bin / tool).symlink_to(shutil.which(tool))
        self.python = self.script(self.root / "python3", f'exec "{sys.executable}" "$@"', record=False)
        if installed:
            self.install()

    def script(self, path: Path, body: str, *, record: bool = True, name: str | None = None) -> Path:
        text = (
            RECORDER.format(name=name or path.name, calls=self.calls, body=body) if record else f"#!/bin/sh\n{body}\n"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
        return path

    def install(self) -> None:
        """.venv as `make` leaves it: python (the test's), turnout planning by copying a real plan."""
        venv = self.root / ".venv" / "bin"
        self.script(venv / "python", f'exec "{sys.executable}" "$@"', record=False)
        copy = f'stack="$2"; mkdir -p build/plan; rm -rf "build/plan/$stack"; cp -r "{self.plans}/$stack" build/plan/'
        self.script(venv / "turnout", copy, name="turnout")
        (self.root / ".venv" / ".installed").touch()

    def tools(self, *, fail: str = "") -> None:
        """docker, kind, kubectl and pulumi stand-ins; `fail` names a `tool subcommand` that exits 1.
        (`docker info`, check-tools' probe of the engine, answers without being recorded.)"""
        for tool in ("docker", "kind", "kubectl", "pulumi"):
            failing = f'[ "$1" = "{fail.split()[1]}" ] && exit 1\n' if fail.startswith(tool + " ") else ""
            self.script(self.bin / tool, failing + "exit 0")
        self.script(self.bin / "docker", f'[ "$1" = info ] && exit 0\necho "docker $*" >> "{self.calls}"', record=False)

    def make(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["make", "--no-print-directory", f"PYTHON={self.python}", *args],
            cwd=self.root,
            env={"PATH": str(self.bin), "HOME": str(self.root), **env},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def recorded(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []


def test_make_up_says_what_it_does_step_by_step_and_how_to_reach_the_endpoints(tmp_path, plans):
    box = Sandbox(tmp_path, plans)
    box.tools()
    result = box.make("up", "STACK=e2e", "PULUMI_FLAGS=--yes --non-interactive")
    assert result.returncode == 0, result.stdout + result.stderr
    steps = re.findall(r"^==> \[(\d)/5\] (.*)$", result.stdout, re.M)
    assert [number for number, _ in steps] == ["1", "2", "3", "4", "5"]
    assert "policy gate" in steps[1][1] and "pulumi up e2e" in steps[3][1]
    assert box.recorded() == [
        "docker build -t kind.local/turnout-model-echo:0.1.0 apps/model-echo",
        "docker build -f apps/experiment-agent/Dockerfile -t kind.local/turnout-experiment-agent:0.1.0 .",
        "turnout plan e2e",
        "pulumi stack select --create e2e",
        "pulumi up --stack e2e --policy-pack policies --policy-pack-config build/plan/e2e/policy-config.json "
        "--yes --non-interactive",
    ]
    tier_config = subprocess.run(
        [sys.executable, "policies/tier_config.py", "dev", "environments/Pulumi.e2e.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert (box.root / "build" / "plan" / "e2e" / "policy-config.json").read_text() == tier_config.stdout
    after = result.stdout.split("[5/5]")[1]
    assert "shadow (istio, shadow): https://shadow.127.0.0.1.sslip.io:8443/" in after
    assert "curl -k -b 'model=v2' https://canary.127.0.0.1.sslip.io:8443/" in after


def test_make_up_stops_at_the_policy_gate(tmp_path, plans):
    box = Sandbox(tmp_path, plans)
    box.tools()
    box.script(box.root / ".venv" / "bin" / "turnout", "exit 1", name="turnout")
    result = box.make("up")
    assert result.returncode != 0
    assert [call.split()[0] for call in box.recorded()] == ["docker", "docker", "turnout"], "nothing deployed"


def test_make_down_destroys_the_stack(tmp_path, plans):
    box = Sandbox(tmp_path, plans)
    box.tools()
    result = box.make("down", "STACK=e2e", "PULUMI_FLAGS=--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert box.recorded() == ["pulumi destroy --stack e2e --yes"]


ALL = ["pulumi up", "e2e check", "e2e refused", "e2e judged", "pulumi destroy"]


@pytest.mark.parametrize(
    ("fail", "check", "refused", "judged", "status", "ran"),
    [
        ("", 0, 0, 0, 0, ALL),
        ("", 1, 0, 0, 2, ALL),  # 2: make's, for a failed recipe
        ("", 0, 1, 0, 2, ALL),
        ("", 0, 0, 1, 2, ALL),
        ("pulumi up", 0, 0, 0, 2, ["pulumi up", "pulumi destroy"]),
        ("pulumi destroy", 0, 0, 0, 2, ALL),
    ],
)
def test_make_e2e_runs_up_the_checks_the_refused_update_the_judged_canary_and_always_down(
    tmp_path, plans, fail, check, refused, judged, status, ran
):
    box = Sandbox(tmp_path, plans)
    box.tools(fail=fail)
    intercept = (
        f'if [ "$1 $2" = "scripts/e2e check" ]; then echo "e2e check $3" >> "{box.calls}"; exit {check}; fi\n'
        f'if [ "$1 $2" = "scripts/e2e refused" ]; then shift 2; echo "e2e refused $*" >> "{box.calls}"; '
        f"exit {refused}; fi\n"
        f'if [ "$1 $2" = "scripts/e2e judged" ]; then shift 2; echo "e2e judged $*" >> "{box.calls}"; '
        f"exit {judged}; fi"
    )
    box.script(box.python, f'{intercept}\nexec "{sys.executable}" "$@"', record=False)
    result = box.make("e2e")
    assert result.returncode == status, result.stdout + result.stderr
    calls = box.recorded()
    assert [" ".join(c.split()[:2]) for c in calls if c.split()[0] in ("pulumi", "e2e") and "select" not in c] == ran
    assert (
        "pulumi up --stack e2e --policy-pack policies --policy-pack-config build/plan/e2e/policy-config.json --yes"
        in calls
    )
    assert "pulumi destroy --stack e2e --yes" in calls
    if "e2e check" in ran:
        assert "e2e check e2e" in calls
    if "e2e refused" in ran:
        # the update is planned first (the script compares the two plans), then refused on the deployed stack
        assert calls.index("turnout plan e2e-refused") < calls.index(
            "e2e refused e2e --config-file environments/Pulumi.e2e-refused.yaml --pulumi-flags=--yes --non-interactive "
        )
        assert (box.root / "build" / "plan" / "e2e-refused" / "traffic.json").exists()
    if "e2e judged" in ran:
        # after the refused update (which leaves judged as deployed), planned first as well
        flags = "--pulumi-flags=--yes --non-interactive "
        refused_call = f"e2e refused e2e --config-file environments/Pulumi.e2e-refused.yaml {flags}"
        judged_call = f"e2e judged e2e --config-file environments/Pulumi.e2e-judged.yaml {flags}"
        assert calls.index(refused_call) < calls.index("turnout plan e2e-judged") < calls.index(judged_call)
        assert (box.root / "build" / "plan" / "e2e-judged" / "traffic.json").exists()


def test_make_e2e_skips_with_the_reason_where_the_tools_are_missing(tmp_path, plans):
    box = Sandbox(tmp_path, plans)
    result = box.make("e2e")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MISSING  pulumi CLI" in result.stdout and "MISSING  kind CLI" in result.stdout
    assert "make e2e: skipped (exit 0)" in result.stdout
    assert box.recorded() == [], "nothing was started"


def test_the_first_make_plan_says_it_is_installing_and_shows_pips_progress(tmp_path, plans):
    """A fresh clone: .venv does not exist; `python3 -m venv` and pip are stand-ins that record."""
    box = Sandbox(tmp_path, plans, installed=False)
    template = tmp_path / "venv-bin"
    box.script(template / "python", "exit 0", name="pip")
    box.script(template / "turnout", "exit 0", name="turnout")
    create = (
        f'[ "$1 $2" = "-m venv" ] && echo "venv $3" >> "{box.calls}" && mkdir -p "$3" && cp -r "{template}" "$3/bin"'
    )
    box.script(box.python, create, record=False)
    first = box.make("plan")
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.lstrip().startswith(
        "==> creating .venv and installing turnout with its dev tools (first run only, about 2 minutes)..."
    )
    assert box.recorded() == [
        "venv .venv",
        "pip -m pip install --quiet --upgrade pip",
        "pip -m pip install -e .[dev]",  # pip's own progress: no --quiet
        "turnout plan local",
    ]
    assert "==> .venv is ready" in first.stdout
    second = box.make("plan")
    assert "creating .venv" not in second.stdout and box.recorded()[-1] == "turnout plan local"


def test_check_tools_requires_kubectl_only_for_e2e(tmp_path, plans):
    box = Sandbox(tmp_path, plans)
    box.tools()
    (box.bin / "kubectl").unlink()
    env = {"PATH": str(box.bin)}
    up = subprocess.run(
        [str(box.root / "scripts" / "check-tools")], env=env, capture_output=True, text=True, check=False
    )
    e2e = subprocess.run(
        [str(box.root / "scripts" / "check-tools"), "e2e"], env=env, capture_output=True, text=True, check=False
    )
    assert up.returncode == 0 and "absent   kubectl (optional)" in up.stdout, up.stdout
    assert e2e.returncode == 1 and "MISSING  kubectl" in e2e.stdout and "make e2e: cannot run" in e2e.stdout
    bad = subprocess.run([str(box.root / "scripts" / "check-tools"), "down"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr
    assert os.access(REPO / "scripts" / "check-tools", os.X_OK)
