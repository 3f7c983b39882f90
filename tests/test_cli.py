"""The command line's rough edges (issue 16): version, help, abbreviations, where plans go, what they
may replace, usage errors as status 2, and errors about values turnout derived itself."""

from __future__ import annotations

import json
import os
import tomllib

import pytest

from tests.conftest import REPO
from turnout import __version__
from turnout.cli import main
from turnout.errors import ConfigError


def run(capsys, *args: str) -> tuple[int, str, str]:
    try:
        status = main(list(args))
    except SystemExit as stop:
        status = stop.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_version(capsys):
    status, out, _ = run(capsys, "--version")
    assert status == 0 and out.strip() == f"turnout {__version__}"


def test_plan_help_lists_every_exit_status(capsys):
    status, out, _ = run(capsys, "plan", "--help")
    assert status == 0
    text = " ".join(out.split())
    for fragment in ("Exit 0:", "1: a mandatory violation", "2: invalid configuration or usage", "3: turnout itself"):
        assert fragment in text


@pytest.mark.parametrize("abbreviation", ["--al", "--ou", "--proj"])
def test_options_are_never_abbreviated(capsys, abbreviation):
    status, _, err = run(capsys, "plan", abbreviation, "x", "--project", str(REPO))
    assert status == 2 and "unrecognized arguments" in err


@pytest.mark.parametrize(
    "argument", ["environments/Pulumi.local.yaml", "Pulumi.local.yaml", "./environments/Pulumi.local.yml"]
)
def test_a_stack_file_path_hints_at_the_stack_name(capsys, argument):
    status, _, err = run(capsys, "plan", argument, "--project", str(REPO))
    assert status == 2 and "turnout plan local" in err and "Traceback" not in err


def test_a_stack_name_with_a_path_in_it_is_refused(capsys, tmp_path):
    status, _, err = run(capsys, "plan", "../local", "--project", str(REPO), "--out", str(tmp_path))
    assert status == 2 and "not a stack name" in err


def test_out_is_relative_to_the_project_not_the_current_folder(project, tmp_path, capsys, monkeypatch):
    (project / "stacks" / "elsewhere").mkdir()
    monkeypatch.chdir(project / "stacks" / "elsewhere")
    status, _, err = run(capsys, "plan", "--out", "plans")
    assert status == 0, err
    assert (project / "plans" / "local" / "summary.md").is_file()
    assert not (project / "stacks" / "elsewhere" / "plans").exists()


@pytest.mark.parametrize("where", ["a-file", "a-file/below", "/proc/turnout-plans"])
def test_an_out_folder_that_cannot_be_written_is_a_usage_error(capsys, tmp_path, where):
    (tmp_path / "a-file").write_text("not a folder")
    out = where if where.startswith("/") else str(tmp_path / where)
    status, _, err = run(capsys, "plan", "--project", str(REPO), "--out", out)
    assert status == 2, err
    assert "--out" in err and "Traceback" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_folder_is_a_usage_error(capsys, tmp_path):
    (tmp_path / "ro").mkdir(mode=0o555)
    status, _, err = run(capsys, "plan", "--project", str(REPO), "--out", str(tmp_path / "ro"))
    assert status == 2 and "cannot write" in err


def test_a_folder_turnout_did_not_write_is_never_deleted(capsys, tmp_path):
    precious = tmp_path / "local" / "notes.txt"
    precious.parent.mkdir()
    precious.write_text("my work")
    status, _, err = run(capsys, "plan", "local", "--project", str(REPO), "--out", str(tmp_path))
    assert status == 2, err
    assert "did not write" in err and precious.read_text() == "my work"


def test_a_plan_of_another_stack_is_not_replaced(project, capsys, tmp_path):
    """The marker names the stack: a folder holding local's plan is not other's to replace."""
    stacks = project / "environments"
    (stacks / "Pulumi.other.yaml").write_text((stacks / "Pulumi.local.yaml").read_text())
    assert run(capsys, "plan", "local", "--project", str(project), "--out", str(tmp_path))[0] == 0
    (tmp_path / "local").rename(tmp_path / "other")
    status, _, err = run(capsys, "plan", "other", "--project", str(project), "--out", str(tmp_path))
    assert status == 2 and "did not write" in err
    assert (tmp_path / "other" / "summary.md").read_text().startswith("# turnout plan: `local`")


@pytest.mark.parametrize(
    "inventory",
    [
        '{"stack": "local"}',  # the stack named, but not as turnout writes an inventory
        '{\n  "stack": "local",\n  "outputs": {}\n}\n',  # "stack" not the last of sorted keys
        '{\n  "stack": "local"\n}\n  ',
        '{\n  "stack": "local\\"\n}\n',
        "",
    ],
)
def test_a_plan_folder_whose_inventory_does_not_end_as_turnout_writes_one_is_not_replaced(capsys, tmp_path, inventory):
    """The marker is read from inventory.json's end (where its sorted keys put "stack"), so a hand-made or edited
    file that names the stack otherwise does not make the folder turnout's."""
    assert run(capsys, "plan", "local", "--project", str(REPO), "--out", str(tmp_path))[0] == 0
    (tmp_path / "local" / "inventory.json").write_text(inventory)
    status, _, err = run(capsys, "plan", "local", "--project", str(REPO), "--out", str(tmp_path))
    assert status == 2 and "did not write" in err
    assert (tmp_path / "local" / "inventory.json").read_text() == inventory


def test_an_earlier_plan_and_an_empty_folder_are_replaced(capsys, tmp_path):
    (tmp_path / "local").mkdir()
    assert run(capsys, "plan", "local", "--project", str(REPO), "--out", str(tmp_path))[0] == 0
    (tmp_path / "local" / "manifests" / "gone").mkdir()
    assert run(capsys, "plan", "local", "--project", str(REPO), "--out", str(tmp_path))[0] == 0
    assert not (tmp_path / "local" / "manifests" / "gone").exists()


def test_a_symlink_in_place_of_the_plan_folder_is_refused(capsys, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "local").symlink_to(target)
    status, _, err = run(capsys, "plan", "local", "--project", str(REPO), "--out", str(tmp_path / "out"))
    assert status == 2 and target.is_dir()


# --- an error about a value turnout derived is a turnout bug, not the user's ---------------------


def _raise_from_the_program(monkeypatch, error: ConfigError) -> None:
    import turnout.offline.planner as planner

    def failing_run(*args, **kwargs):
        raise error

    monkeypatch.setattr(planner, "run_program", failing_run)


def test_an_error_naming_a_key_nobody_wrote_is_reported_as_a_turnout_bug(project, tmp_path, capsys, monkeypatch):
    _raise_from_the_program(monkeypatch, ConfigError("turnout:cache.backupRetention", "0 days", "1 to 35 days"))
    status, _, err = run(capsys, "plan", "--project", str(project), "--out", str(tmp_path))
    assert status == 3
    assert "turnout:cache.backupRetention: found 0 days" in err and "turnout bug" in err


@pytest.mark.parametrize(
    "path",
    [
        "turnout:dr",  # a key turnout reads, missing: the user's to add
        "turnout:endpoints.echo.versions.v1.replicas.min",  # a key the user wrote
        "turnout:endpoints.echo.strategy.weight",  # strategies name their own fields
        "turnout:platform.nodePools[0].gpu",  # a key turnout reads, not written
        "turnout:globalTraffic.cells.blue",
    ],
)
def test_errors_about_keys_turnout_reads_stay_the_users(project, tmp_path, capsys, monkeypatch, path):
    _raise_from_the_program(monkeypatch, ConfigError(path, "something", "something else"))
    status, _, err = run(capsys, "plan", "--project", str(project), "--out", str(tmp_path))
    assert status == 2 and "turnout bug" not in err


def test_an_unknown_key_the_user_wrote_stays_the_users(project, tmp_path, capsys):
    path = project / "environments" / "Pulumi.local.yaml"
    path.write_text(path.read_text().replace("    cloud: kind\n", "    cloud: kind\n    clod: kind\n"))
    status, _, err = run(capsys, "plan", "--project", str(project), "--out", str(tmp_path))
    assert status == 2 and "turnout:platform.clod: found an unknown key" in err and "turnout bug" not in err


# --- packaging -------------------------------------------------------------------------------------


def test_the_license_is_an_spdx_expression():
    """A TOML table makes setuptools >= 77 warn on every install (its deprecation of `license = {text}`)."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "Apache-2.0"
    assert any(r.replace(" ", "").startswith("setuptools>=7") for r in pyproject["build-system"]["requires"])
    minimum = next(r for r in pyproject["build-system"]["requires"] if r.startswith("setuptools"))
    assert int(minimum.split(">=")[1].split(".")[0]) >= 77, "license expressions need setuptools 77"


def test_plans_written_by_turnout_say_so(capsys, tmp_path):
    assert run(capsys, "plan", "local", "--project", str(REPO), "--out", str(tmp_path))[0] == 0
    assert json.loads((tmp_path / "local" / "inventory.json").read_text())["stack"] == "local"
    assert (tmp_path / "local" / "summary.md").read_text().startswith("# turnout plan: `local`")
