"""Shared fixtures: the repository, sample configs, and a runner for components under mocks."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

# Imported before any test runs: left to hypothesis' own pytest plugin at the end of a run that has no property
# test, its first import (rewritten by pytest) can fail with CPython 3.11's "SystemError: AST constructor
# recursion depth mismatch" (seen here on 3.11.7 running tests/test_sdk_contract.py with another file; cpython
# gh-106905 is that check's known false alarm) and fail a run whose tests all passed.
import hypothesis  # noqa: F401
import pytest

from turnout.config import StackConfig, load_stack_config

REPO = Path(__file__).resolve().parent.parent
CRDS = REPO / "tests" / "crds"


def sample_config() -> dict:
    """A valid stack config as decoded YAML: the contract's example reduced to kind."""
    return {
        "tier": "dev",
        "platform": {"cloud": "kind", "regions": ["local"]},
        "endpoints": {
            "fraud-score": {
                "port": 8080,
                "versions": {
                    "v1": {"image": "ghcr.io/acme/fraud-score:1.4.2", "replicas": {"min": 2, "max": 10}},
                    "v2": {"image": "ghcr.io/acme/fraud-score:1.5.0"},
                },
                "strategy": {"type": "canary", "stable": "v1", "canary": "v2", "weight": 10},
            }
        },
    }


def as_cli(config: dict) -> dict[str, str]:
    """Encode like the Pulumi CLI: strings stay, structured values become JSON."""
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}


def load(config: dict) -> StackConfig:
    return load_stack_config(as_cli(config))


@pytest.fixture
def config() -> dict:
    return copy.deepcopy(sample_config())


def copy_project(root: Path) -> Path:
    """A copy of the project's Pulumi files (program, components, policies, environments) in `root`, to edit freely."""
    root.mkdir(exist_ok=True)
    shutil.copy(REPO / "Pulumi.yaml", root)
    for folder in ("stacks", "policies", "environments"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")


def plan_stacks(tmp_path_factory, stacks: dict[str, dict]) -> Path:
    """Plan `stacks` (name → decoded `turnout:` config) in a copy of the project, in one `turnout plan`, which must
    exit 0; the plan folders' parent."""
    from turnout.cli import main

    project = copy_project(tmp_path_factory.mktemp("project"))
    for name, config in stacks.items():
        write_stack(project, name, config)
    out = tmp_path_factory.mktemp("out")
    assert main(["plan", *stacks, "--project", str(project), "--out", str(out)]) == 0
    return out


def write_stack(project: Path, stack: str, config: dict) -> Path:
    """Write environments/Pulumi.<stack>.yaml with `turnout:` keys from a decoded config."""
    import yaml

    path = project / "environments" / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump({"config": {f"turnout:{k}": v for k, v in config.items()}}, sort_keys=False))
    return path


def dependency_closure(records, urn: str) -> set[str]:
    """Every URN `urn` waits for, directly or through its dependencies (records: URN → ResourceRecord)."""
    seen, todo = set(), [urn]
    while todo:
        for dependency in records[todo.pop()].dependencies:
            if dependency not in seen:
                seen.add(dependency)
                todo.append(dependency)
    return seen
