"""The agent's image and its release: what the image holds is what the agent imports, `make up` builds it
under the name kind stacks run, and the release workflow publishes only version tags, with the least token."""

from __future__ import annotations

import ast
import re
import sys

import pytest
import yaml

from tests.conftest import REPO
from tests.test_workflows import run_step
from turnout.config import KIND_AGENT_IMAGE

APP = REPO / "apps" / "experiment-agent"
WORKFLOW = REPO / ".github" / "workflows" / "release-agent.yml"


def agent_imports() -> set[str]:
    found = set()
    for path in (APP / "turnout_agent").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add(node.module)
    return found


def test_the_image_holds_what_the_agent_imports():
    dockerfile = (APP / "Dockerfile").read_text()
    copied = re.findall(r"^COPY (\S+) ", dockerfile, re.M)
    required = {line.split("==")[0] for line in (APP / "requirements.txt").read_text().split() if "==" in line}
    for module in agent_imports():
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top == "__future__":
            continue
        if top == "turnout":
            assert module.startswith("turnout.experiments"), f"the agent imports {module}: only the pure algorithms"
            assert "turnout/experiments/" in copied and "turnout/__init__.py" in copied
        elif top == "turnout_agent":
            assert "apps/experiment-agent/turnout_agent/" in copied
        else:
            assert top in required, f"{module} is not in the image's requirements"
    assert "USER 65532:65532" in dockerfile, "the uid the StatefulSet runs as"


def test_make_up_builds_the_image_kind_stacks_run():
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^AGENT_IMAGE := (.*)$", makefile, re.M).group(1) == KIND_AGENT_IMAGE
    assert "docker build -f apps/experiment-agent/Dockerfile -t $(AGENT_IMAGE) ." in makefile
    e2e = yaml.safe_load((REPO / "environments" / "Pulumi.e2e.yaml").read_text())["config"]
    assert KIND_AGENT_IMAGE in e2e["turnout:platform"]["loadImages"]


def test_the_release_publishes_version_tags_with_a_packages_token_on_its_job_only():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow[True] == {"push": {"tags": ["agent-v*"]}}  # YAML 1.1 reads `on` as true
    assert workflow["permissions"] == {"contents": "read"}
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "packages": "write"}
    names = [step.get("name", step.get("uses")) for step in job["steps"]]
    assert names.index("the agent's tests (Prometheus from Debian's package)") < names.index("docker push to ghcr.io")


@pytest.mark.parametrize(
    ("tag", "ok", "image"),
    [
        ("agent-v0.1.0", True, "ghcr.io/acme-labs/turnout-experiment-agent:0.1.0"),
        ("agent-v1.2", False, None),
        ("agent-vlatest", False, None),
    ],
)
def test_the_image_reference_comes_from_the_tag(tmp_path, tag, ok, image):
    workflow = yaml.safe_load(WORKFLOW.read_text())
    (step,) = [s for s in workflow["jobs"]["publish"]["steps"] if s.get("id") == "image"]
    output = tmp_path / "output"
    result = run_step(
        step["run"],
        tmp_path,
        {"GITHUB_REF_NAME": tag, "GITHUB_REPOSITORY_OWNER": "Acme-Labs", "GITHUB_OUTPUT": str(output)},
    )
    assert (result.returncode == 0) == ok, result.stdout + result.stderr
    if ok:
        assert output.read_text() == f"ref={image}\n"
    else:
        assert "expected agent-vX.Y.Z" in result.stdout
