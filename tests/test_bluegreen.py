"""Redundant blue/green cells: two cell stacks that differ only in name, and a global stack that owns
the weighted DNS over both, reading the cells through StackReferences. Switching the live colour
changes only the global stack's records."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import REPO
from turnout.cli import main

TRIO = ("prod-aws-blue", "prod-aws-green", "prod-aws-global")


def plan(capsys, project, out, *stacks):
    status = main(["plan", *stacks, "--project", str(project), "--out", str(out)])
    return status, capsys.readouterr().err


def inventory(folder):
    return json.loads((folder / "inventory.json").read_text())


def inputs_by_urn(folder):
    return {r["urn"]: r["inputs"] for r in inventory(folder)["resources"]}


def edit_global(project, change, stack="prod-aws-global"):
    path = project / "environments" / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text())
    change(document["config"])
    path.write_text(yaml.safe_dump(document))


def checks_of(folder):
    return [r["inputs"] for r in inventory(folder)["resources"] if r["type"] == "aws:route53/healthCheck:HealthCheck"]


def test_the_cells_differ_only_in_their_names_and_address_spaces():
    """One module call each, differing in colour only; and each cell its own addresses, so they can be peered."""
    blue, green = (yaml.safe_load((REPO / "environments" / f"Pulumi.{s}.yaml").read_text()) for s in TRIO[:2])
    spaces = [cell["config"]["turnout:platform"].pop("addressSpace") for cell in (blue, green)]
    assert blue == green
    assert spaces == ["10.0.0.0/12", "10.16.0.0/12"]


def test_the_trio_plans_and_the_global_stack_routes_users_to_the_live_colour(capsys, project, tmp_path):
    status, err = plan(capsys, project, tmp_path, *TRIO)
    assert status == 0, err
    cells = {colour: inventory(tmp_path / f"prod-aws-{colour}")["outputs"]["ingresses"] for colour in ("blue", "green")}
    glob = inventory(tmp_path / "prod-aws-global")
    assert glob["outputs"]["liveColour"] == "blue" and glob["outputs"]["weights"] == {"blue": 100, "green": 0}
    records = [r["inputs"] for r in glob["resources"] if r["type"] == "aws:route53/record:Record"]
    by_set = {r["setIdentifier"]: r for r in records if "setIdentifier" in r}
    assert sorted(by_set) == sorted(i["cluster"] for colour in cells for i in cells[colour])
    for colour, ingresses in cells.items():
        for ingress in ingresses:  # each record points at the gateway its cell exported, read via StackReference
            record = by_set[ingress["cluster"]]
            assert record["records"] == [ingress["address"]]
            assert record["weightedRoutingPolicies"] == [{"weight": 100 if colour == "blue" else 0}]
            assert record["healthCheckId"]
    checks = [r["inputs"] for r in glob["resources"] if r["type"] == "aws:route53/healthCheck:HealthCheck"]
    assert len(checks) == 4 and {(c["requestInterval"], c["failureThreshold"]) for c in checks} == {(10, 3)}
    summary = (tmp_path / "prod-aws-global" / "summary.md").read_text()
    assert "Live colour **blue** (blue 100%, green 0%)" in summary
    assert '-->|"weight 0"| cluster_prod_aws_green_us_east_1' in summary


def test_the_global_checks_probe_each_cells_health_route_over_https_with_sni(capsys, project, tmp_path):
    """Every cell serves the health route and exports it with its ingresses; the global stack reads it through the
    StackReferences and its checks request `/ready` with SNI each cell cluster's own health host, which a plain
    record in the global zone points at that cell's NLB: a colour whose models stop answering leaves DNS."""
    status, err = plan(capsys, project, tmp_path, *TRIO)
    assert status == 0, err
    glob = inventory(tmp_path / "prod-aws-global")
    records = [r["inputs"] for r in glob["resources"] if r["type"] == "aws:route53/record:Record"]
    own_records = {r["name"]: r for r in records if "setIdentifier" not in r}
    checks = {c["fqdn"]: c for c in checks_of(tmp_path / "prod-aws-global")}
    for cell in TRIO[:2]:
        cell_plan = inventory(tmp_path / cell)
        for ingress in cell_plan["outputs"]["ingresses"]:
            health = ingress["health"]
            assert health == {
                "host": f"turnout-health-{ingress['cluster']}.serving.acme.example",
                "sharedHost": "turnout-health.serving.acme.example",
                "scheme": "https",
                "port": 443,
                "path": "/ready",
            }
            check = checks[health["host"]]
            assert (check["type"], check["port"], check["resourcePath"], check["enableSni"]) == (
                "HTTPS",
                443,
                "/ready",
                True,
            )
            assert own_records[health["host"]]["records"] == [ingress["address"]]
        # ...and the cell really serves it: the aggregator and the route on the Gateway, in its own namespace
        routes = [
            r["inputs"]
            for r in cell_plan["resources"]
            if r["type"] == "kubernetes:networking.istio.io/v1:VirtualService"
            and r["inputs"]["metadata"]["name"] == "turnout-health"
        ]
        assert sorted(host for route in routes for host in route["spec"]["hosts"]) == sorted(
            [i["health"]["host"] for i in cell_plan["outputs"]["ingresses"]]
            + ["turnout-health.serving.acme.example"] * 2
        )
        namespaces = [
            r["inputs"]["metadata"]
            for r in cell_plan["resources"]
            if r["type"] == "kubernetes:core/v1:Namespace" and r["inputs"]["metadata"]["name"] == "turnout-system"
        ]
        assert len(namespaces) == 2
        assert {ns["labels"]["pod-security.kubernetes.io/enforce"] for ns in namespaces} == {"restricted"}
    detection = {r["healthCheck"]["detectionSeconds"] for r in glob["outputs"]["globalTraffic"]["records"]}
    assert detection == {8 + 10 * 3} == {glob["outputs"]["globalTraffic"]["detectionSeconds"]}
    reasons = json.loads((tmp_path / "prod-aws-global" / "dr.json").read_text())["reasons"]
    assert any(reason.startswith("the checks probe each cell's health route") for reason in reasons)


def test_a_cell_that_serves_no_health_route_for_this_domain_falls_back_to_the_status_port_and_says_so(
    capsys, project, tmp_path
):
    """A cell on another domain serves its health route under that one, which the global zone cannot name: every
    check falls back to the gateways' status port (one probe, one detection time), and dr.json names the cell."""

    def elsewhere(config):
        config["turnout:platform"]["serving"]["gateway"]["domain"] = "green.acme.example"

    edit_global(project, elsewhere, stack="prod-aws-green")
    status, err = plan(capsys, project, tmp_path, *TRIO)
    assert status == 0, err
    checks = checks_of(tmp_path / "prod-aws-global")
    assert len(checks) == 4
    assert {(c["type"], c["port"], c["resourcePath"]) for c in checks} == {("HTTP", 15021, "/healthz/ready")}
    assert not any("enableSni" in c for c in checks)
    glob = inventory(tmp_path / "prod-aws-global")
    assert glob["outputs"]["globalTraffic"]["detectionSeconds"] == 10 * 3
    reasons = json.loads((tmp_path / "prod-aws-global" / "dr.json").read_text())["reasons"]
    (line,) = [reason for reason in reasons if "status port" in reason]
    assert "cell 'prod-aws-green' serves prod-aws-green-us-east-1's health route with host" in line
    assert "turnout-health-prod-aws-green-us-east-1.serving.acme.example" in line
    assert "prod-aws-blue" not in line


def test_a_cell_cannot_name_an_endpoint_after_the_health_route(capsys, project, tmp_path):
    def rename(config):
        config["turnout:endpoints"]["turnout-health"] = config["turnout:endpoints"].pop("ranker")

    edit_global(project, rename, stack="prod-aws-blue")
    status, err = plan(capsys, project, tmp_path, "prod-aws-blue")
    assert status == 2 and "turnout:endpoints.turnout-health" in err and "Traceback" not in err


def test_switching_the_live_colour_changes_only_the_global_records(capsys, project, tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    assert plan(capsys, project, before, *TRIO)[0] == 0
    edit_global(project, lambda c: c["turnout:globalTraffic"].update(live="green"))
    assert plan(capsys, project, after, *TRIO)[0] == 0
    for cell in TRIO[:2]:
        assert inputs_by_urn(before / cell) == inputs_by_urn(after / cell), f"{cell} changed"
    old, new = inputs_by_urn(before / "prod-aws-global"), inputs_by_urn(after / "prod-aws-global")
    assert old.keys() == new.keys()
    changed = {urn for urn in old if old[urn] != new[urn]}
    assert changed and all(urn.split("::")[-2].endswith("aws:route53/record:Record") for urn in changed)
    for urn in changed:
        assert {k for k in old[urn] if old[urn][k] != new[urn].get(k)} == {"weightedRoutingPolicies"}


def test_a_gradual_switch_splits_users_by_weight(capsys, project, tmp_path):
    edit_global(project, lambda c: c["turnout:globalTraffic"].update(weights={"blue": 90, "green": 10}))
    assert plan(capsys, project, tmp_path, "prod-aws-global")[0] == 0
    records = [
        r["inputs"]
        for r in inventory(tmp_path / "prod-aws-global")["resources"]
        if "route53/record" in r["type"] and "setIdentifier" in r["inputs"]
    ]
    assert sorted(r["weightedRoutingPolicies"][0]["weight"] for r in records) == [10, 10, 90, 90]


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda c: c["turnout:globalTraffic"].update(live="red"), "turnout:globalTraffic.live"),
        (
            lambda c: c["turnout:globalTraffic"].update(weights={"blue": 50, "green": 40}),
            "turnout:globalTraffic.weights",
        ),
        (
            lambda c: c["turnout:globalTraffic"]["cells"].update(green="prod-aws-purple"),
            "turnout:globalTraffic.cells.green",
        ),
        (
            lambda c: c["turnout:globalTraffic"]["cells"].update(green="prod-aws-global"),
            "turnout:globalTraffic.cells.green",
        ),
        (lambda c: c["turnout:platform"].update(regions=["us-east-1", "eu-west-1"]), "turnout:platform.regions"),
        (lambda c: c.update({"turnout:endpoints": {"m": {"versions": {"v1": {"image": "m:1"}}}}}), "turnout:endpoints"),
        (lambda c: c.update({"turnout:dr": {"rpo": "1m", "rto": "5m"}}), "turnout:dr"),
        (lambda c: c["turnout:platform"].pop("serving"), "turnout:platform.serving.gateway.domain"),
    ],
)
def test_a_wrong_global_stack_is_status_2_naming_the_key(capsys, project, tmp_path, change, key):
    edit_global(project, change)
    status, err = plan(capsys, project, tmp_path, "prod-aws-global")
    assert status == 2 and key in err and "Traceback" not in err


def test_a_global_stack_only_routes(capsys, project, tmp_path):
    assert plan(capsys, project, tmp_path, "prod-aws-global")[0] == 0
    glob = inventory(tmp_path / "prod-aws-global")
    assert not list((tmp_path / "prod-aws-global" / "manifests").iterdir())
    assert {r["type"] for r in glob["resources"]} == {
        "pulumi:pulumi:Stack",
        "pulumi:providers:aws",
        "turnout:globaltraffic:Route53GlobalTraffic",
        "aws:route53/healthCheck:HealthCheck",
        "aws:route53/record:Record",
    }
    assert json.loads((tmp_path / "prod-aws-global" / "dr.json").read_text())["tier"] == "none"
