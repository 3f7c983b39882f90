"""Waivers: one policy accepted on one resource, with a reason, until a date. `turnout plan` shows
waived findings and does not count them; the pack, as the Pulumi CLI runs it, drops the same ones."""

from __future__ import annotations

import json

import pytest
from google.protobuf import struct_pb2
from pulumi.runtime.proto import analyzer_pb2

from tests.conftest import write_stack
from tests.test_policies import POLICIES, analyzer, engine_verdicts, printed_pack_config  # noqa: F401 (fixture)
from turnout.cli import main
from turnout.offline.runtime import run_function

LATEST = "ghcr.io/acme/m:latest"
DEPLOYMENT = "waived-local-m-v1-deployment"


def stack_config(waivers=None):
    config = {
        "tier": "prod",
        "platform": {"cloud": "kind", "regions": ["local"]},
        "endpoints": {"m": {"versions": {"v1": {"image": LATEST}}}},
    }
    if waivers is not None:
        config["waivers"] = waivers
    return config


def waiver(**overrides):
    return {
        "policy": "image-pinned",
        "resource": DEPLOYMENT,
        "reason": "vendor publishes only latest; pinned by digest in ACME-123 (accepted by platform team)",
        "expires": "2099-12-31",
        **overrides,
    }


def plan(capsys, project, tmp_path, config):
    write_stack(project, "waived", config)
    status = main(["plan", "waived", "--project", str(project), "--out", str(tmp_path)])
    folder = tmp_path / "waived"
    return status, capsys.readouterr().err, folder


def image_findings(folder, key):
    return [v for v in json.loads((folder / "policy.json").read_text())[key] if v["policy"] == "image-pinned"]


def test_without_a_waiver_the_finding_blocks(capsys, project, tmp_path):
    status, err, folder = plan(capsys, project, tmp_path, stack_config())
    assert status == 1 and "MANDATORY image-pinned" in err
    (finding,) = image_findings(folder, "violations")
    assert finding["urn"].endswith("::" + DEPLOYMENT), "the resource name the waivers below use"


def test_a_waiver_in_force_accepts_the_finding_and_the_summary_still_shows_it(capsys, project, tmp_path):
    status, err, folder = plan(capsys, project, tmp_path, stack_config([waiver()]))
    assert "MANDATORY image-pinned" not in err and "waived" in err
    assert image_findings(folder, "violations") == []
    (waived,) = image_findings(folder, "waived")
    assert waived["reason"].startswith("vendor publishes only latest") and waived["expires"] == "2099-12-31"
    assert waived["level"] == "mandatory"
    summary = (folder / "summary.md").read_text()
    assert "## Waivers" in summary
    assert f"| `image-pinned` | mandatory | `{DEPLOYMENT}` |" in summary and "| 2099-12-31 |" in summary
    assert status == 0 and "(1 waived)" in err


def test_an_unquoted_yaml_date_works_as_written(capsys, project, tmp_path):
    path = write_stack(project, "waived", stack_config([waiver()]))
    path.write_text(path.read_text().replace("'2099-12-31'", "2099-12-31"))
    assert "expires: 2099-12-31\n" in path.read_text()
    status = main(["plan", "waived", "--project", str(project), "--out", str(tmp_path)])
    capsys.readouterr()
    assert image_findings(tmp_path / "waived", "waived")[0]["expires"] == "2099-12-31"
    assert status == 0


def test_an_expired_waiver_counts_the_finding_again_and_says_so(capsys, project, tmp_path):
    status, err, folder = plan(capsys, project, tmp_path, stack_config([waiver(expires="2020-01-31")]))
    assert status == 1 and "MANDATORY image-pinned" in err
    assert image_findings(folder, "waived") == []
    assert (
        f"- expired on 2020-01-31, counted again: `image-pinned` on `{DEPLOYMENT}`"
        in (folder / "summary.md").read_text()
    )


def test_a_waiver_covering_nothing_is_pointed_out(capsys, project, tmp_path):
    status, err, folder = plan(capsys, project, tmp_path, stack_config([waiver(), waiver(resource="gone")]))
    assert "- covers no finding (remove it?): `image-pinned` on `gone`" in (folder / "summary.md").read_text()


@pytest.mark.parametrize(
    ("change", "key", "allowed"),
    [
        ({"policy": "image-pined"}, "turnout:waivers[0].policy", "one of"),
        ({"expires": "next year"}, "turnout:waivers[0].expires", "YYYY-MM-DD"),
        ({"expires": "2027-02-30"}, "turnout:waivers[0].expires", "YYYY-MM-DD"),
        ({"reason": "because"}, "turnout:waivers[0].reason", "at least 10 characters"),
        ({"resource": ""}, "turnout:waivers[0].resource", "resource name or URN"),
    ],
)
def test_bad_waivers_are_status_2_naming_the_key(capsys, project, tmp_path, change, key, allowed):
    status, err, _ = plan(capsys, project, tmp_path, stack_config([waiver(**change)]))
    assert status == 2 and key in err and allowed in err and "Traceback" not in err


def deployment_program():
    import pulumi_kubernetes as k8s

    k8s.apps.v1.Deployment(
        DEPLOYMENT,
        metadata={"name": "m-v1", "namespace": "m"},
        spec={
            "selector": {"matchLabels": {"app": "m"}},
            "template": {
                "metadata": {"labels": {"app": "m"}},
                "spec": {"containers": [{"name": "m", "image": LATEST}]},
            },
        },
    )


def test_the_pack_under_the_cli_drops_exactly_the_waived_findings(analyzer, tmp_path):  # noqa: F811
    """`python policies/tier_config.py TIER STACK_FILE` carries the waivers; the served pack honours them."""
    (tmp_path / "environments").mkdir()
    stack_file = write_stack(tmp_path, "waived", stack_config([waiver(), waiver(policy="container-resources")]))
    config = printed_pack_config("prod", stack_file)
    assert config["image-pinned"]["waivers"][0]["resource"] == DEPLOYMENT
    assert config["image-pinned"]["waivers"][0]["expires"] == "2099-12-31"
    run = run_function(deployment_program)
    before = {policy for policy, _ in engine_verdicts(analyzer, run.records)}
    assert {"image-pinned", "container-resources"} <= before
    entries = {}
    for name, entry in config.items():
        properties = struct_pb2.Struct()
        properties.update({k: v for k, v in entry.items() if k != "enforcementLevel"})
        level = analyzer_pb2.EnforcementLevel.Value(entry.get("enforcementLevel", "advisory").upper())
        entries[name] = analyzer_pb2.PolicyConfig(enforcementLevel=level, properties=properties)
    analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig=entries))
    try:
        after = {policy for policy, _ in engine_verdicts(analyzer, run.records)}
    finally:
        analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={}))
    assert after == before - {"image-pinned", "container-resources"}


def test_a_plan_imports_the_policy_pack_once_and_a_global_stack_once_per_cell_too(monkeypatch):
    """The pack is imported afresh for each plan (a fork's edits apply) and handed to the waiver check, the
    evaluation and the waivers' matching: not imported by each of them (5 ms each, after the program)."""
    from tests.conftest import REPO
    from turnout.offline import planner, policy
    from turnout.offline.stackfile import find_project

    imported: list[object] = []
    load_rules = policy.load_rules

    def counting(policies_dir):
        imported.append(policies_dir)
        return load_rules(policies_dir)

    monkeypatch.setattr(policy, "load_rules", counting)
    monkeypatch.setattr(planner, "load_rules", counting)
    plan = planner.plan_stack(find_project(REPO), "prod-gcp")
    assert plan.violations is not None and len(imported) == 1
    imported.clear()
    planner.plan_stack(find_project(REPO), "prod-aws-global")  # and its two cells
    assert len(imported) == 3
