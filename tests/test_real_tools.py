"""Paths that need the Pulumi CLI, Docker or kind: they run where the tools are, and skip saying why."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO


def _docker_running() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def test_check_tools_names_exactly_what_is_missing():
    result = subprocess.run([str(REPO / "scripts" / "check-tools")], capture_output=True, text=True, check=False)
    for tool, present in (
        ("pulumi CLI", shutil.which("pulumi")),
        ("kind CLI", shutil.which("kind")),
        ("docker engine running", _docker_running()),
    ):
        marker = "ok" if present else "MISSING"
        assert f"{marker}" in next(line for line in result.stdout.splitlines() if tool in line), result.stdout
    everything = shutil.which("pulumi") and shutil.which("kind") and _docker_running()
    assert result.returncode == (0 if everything else 1)
    if not everything:
        assert "cannot create the local environment" in result.stdout


@pytest.mark.needs_pulumi_cli
@pytest.mark.skipif(shutil.which("pulumi") is None, reason="needs the Pulumi CLI on PATH (not installed here)")
def test_pulumi_preview_with_the_policy_pack(tmp_path):
    """`pulumi preview` of the local stack against a local backend, with the pack enforcing."""
    env = {**os.environ, "PULUMI_BACKEND_URL": f"file://{tmp_path}", "PULUMI_CONFIG_PASSPHRASE": "turnout-test"}
    subprocess.run(["pulumi", "stack", "select", "--create", "local"], cwd=REPO, env=env, check=True)
    result = subprocess.run(
        ["pulumi", "preview", "--stack", "local", "--policy-pack", "policies", "--non-interactive"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kubernetes:apps/v1:Deployment" in result.stdout


@pytest.mark.needs_kind
@pytest.mark.skipif(
    not (shutil.which("kind") and _docker_running()),
    reason="needs the kind CLI and a running Docker engine (neither is available here)",
)
def test_model_echo_image_builds():
    """Under the name `make up` gives it and the kind stacks load (kind.local/: Knative never resolves it)."""
    image = re.search(r"^MODEL_ECHO_IMAGE := (.+)$", (REPO / "Makefile").read_text(), re.M).group(1)
    result = subprocess.run(
        ["docker", "build", "-t", image, "apps/model-echo"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
