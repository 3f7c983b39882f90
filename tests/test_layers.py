"""The layers point one way: the domain imports no Pulumi; components no engine; policies stand alone."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

DOMAIN = [p for p in (REPO / "turnout").glob("*.py") if p.name != "cli.py"]
PROVIDERS = ("pulumi_kubernetes", "pulumi_aws", "pulumi_gcp", "pulumi_azure_native", "pulumi_command")


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", DOMAIN, ids=lambda p: p.name)
def test_domain_modules_import_no_pulumi(path):
    assert not {m for m in imports(path) if m.split(".")[0].startswith("pulumi")}


@pytest.mark.parametrize("path", sorted((REPO / "turnout").rglob("*.py")), ids=lambda p: p.name)
def test_nothing_under_turnout_imports_a_provider(path):
    assert not {m for m in imports(path) if m.split(".")[0] in PROVIDERS}


@pytest.mark.parametrize("path", sorted((REPO / "components").rglob("*.py")), ids=lambda p: p.name)
def test_components_do_not_reach_into_the_engine(path):
    assert not {m for m in imports(path) if m.startswith(("turnout.offline", "turnout.cli", "stacks"))}


@pytest.mark.parametrize("path", sorted((REPO / "policies").rglob("*.py")), ids=lambda p: p.name)
def test_policy_pack_is_self_contained(path):
    """The CLI runs the pack in its own virtualenv (policies/requirements.txt): it can import only pulumi_policy."""
    outside = {m.split(".")[0] for m in imports(path)} - set(sys.stdlib_module_names) - {"__future__"}
    assert outside <= {"pulumi_policy", "rules", "yaml"}  # PyYAML comes with pulumi, which pulumi-policy requires


@pytest.mark.parametrize("path", sorted((REPO / "stacks").glob("*.py")), ids=lambda p: p.name)
def test_the_program_stays_thin(path):
    tree = ast.parse(path.read_text())
    branches = [n for n in ast.walk(tree) if isinstance(n, (ast.If, ast.IfExp, ast.Match))]
    assert not branches, "strategy or cloud decisions belong in components/, not in the program"
