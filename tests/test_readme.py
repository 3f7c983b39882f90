"""The README is executable: its first commands exist, its examples plan, its reference is current."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import REPO
from turnout.cli import main
from turnout.reference import BEGIN, END, config_reference

README = (REPO / "README.md").read_text()
EXAMPLE = re.compile(
    r"<!-- example: (?P<name>[a-z0-9-]+),(?: file: (?P<file>\S+),)? resources: (?P<count>\d+) -->\s*"
    r"```yaml\n(?P<body>.*?)```",
    re.S,
)


def test_readme_starts_with_the_plan_and_test_commands():
    first_block = re.search(r"```sh\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands[:2] == ["make plan", "make test"]
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_policy_table_is_generated_from_the_pack():
    from turnout.offline.policy_table import BEGIN as TABLE_BEGIN
    from turnout.offline.policy_table import END as TABLE_END
    from turnout.offline.policy_table import policy_table

    section = README[README.index(TABLE_BEGIN) : README.index(TABLE_END) + len(TABLE_END)]
    assert section + "\n" == policy_table(REPO / "policies"), "README policy table is stale: run `make reference`"


def test_config_reference_is_generated_not_hand_kept():
    section = README[README.index(BEGIN) : README.index(END) + len(END)]
    assert section + "\n" == config_reference(), "README reference is stale: run `make reference`"


def test_reference_covers_every_contract_key():
    for key in (
        "turnout:tier",
        "turnout:platform.cloud",
        "turnout:platform.regions",
        "turnout:platform.kubernetesVersion",
        "turnout:platform.nodePools[].gpu",
        "turnout:dr.rpo",
        "turnout:dr.rto",
        "turnout:cache.engine",
        "turnout:endpoints.NAME.backend",
        "turnout:endpoints.NAME.port",
        "turnout:endpoints.NAME.versions.NAME.replicas.min",
        "turnout:endpoints.NAME.versions.NAME.resources.gpu",
        "turnout:endpoints.NAME.versions.NAME.env",
        "strategy.weight",
        "strategy.sticky.cookie",
        "strategy.previewHeader",
        "strategy.shadows",
        "strategy.defaultVariant",
        "strategy.maxSurge",
    ):
        assert f"`{key}`" in README, key


EXAMPLES = list(EXAMPLE.finditer(README))
FILE_EXAMPLES = [m for m in EXAMPLES if m.group("file")]


def test_readme_has_examples():
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda m: m.group("name"))
def test_readme_example_plans_with_its_resource_count(example, project, tmp_path, capsys):
    name = example.group("name")
    (project / "environments" / f"Pulumi.{name}.yaml").write_text(example.group("body"))
    status = main(["plan", name, "--project", str(project), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 0, err
    inventory = json.loads((tmp_path / name / "inventory.json").read_text())
    assert len(inventory["resources"]) == int(example.group("count"))


@pytest.mark.parametrize("example", FILE_EXAMPLES, ids=lambda m: m.group("name"))
def test_readme_example_of_a_stack_file_is_that_file(example):
    """An example that says it is a bundled stack file holds exactly its configuration."""
    import yaml

    assert yaml.safe_load(example.group("body")) == yaml.safe_load((REPO / example.group("file")).read_text()), (
        f"README example {example.group('name')!r} differs from {example.group('file')}: copy the file into the README"
    )


def test_the_local_environment_example_is_the_local_stack_file():
    assert [m.group("file") for m in FILE_EXAMPLES if m.group("name") == "local"] == ["environments/Pulumi.local.yaml"]
