"""The health route every cluster of a DR stack serves (components/dr/health.py): what it creates, with least
privilege, where failover DNS probes it, and which stacks get it."""

from __future__ import annotations

import json

import pytest

from components.dr.failover import check_failover, serves_health_route, uses_health_route
from components.dr.health import (
    AGGREGATOR,
    HealthRoute,
    HealthRouteArgs,
    aggregator_config,
    cluster_health_host,
    health_host,
)
from turnout import dr
from turnout.config import DrTarget, Gateway, Platform, Serving
from turnout.errors import ConfigError
from turnout.offline.runtime import run_function

DOMAIN = "models.example.com"
EXTERNAL = Serving(gateway=Gateway(exposure="external", domain=DOMAIN))
INTERNAL = Serving(gateway=Gateway(exposure="internal", domain=DOMAIN))


def route(tier: str = "prod"):
    def program():
        HealthRoute(
            "east-health",
            HealthRouteArgs(
                cluster="prod-us-east-1",
                domain=DOMAIN,
                endpoints={"ranker": "/healthz", "scorer": "/v1/ready"},
                gateway="istio-system/turnout-gateway",
                tier=tier,
                pull_policy="Always",
                after=(),
            ),
        )

    run = run_function(program)
    return {r.type.rsplit(":", 1)[-1]: r.inputs for r in run.records if r.type.startswith("kubernetes:")}


def test_the_aggregator_probes_every_endpoint_through_the_gateway_with_its_host():
    config = aggregator_config(DOMAIN, {"scorer": "/v1/ready", "ranker": "/healthz"})
    assert config["gateway"] == "istio-ingressgateway.istio-system.svc.cluster.local" and config["port"] == 443
    assert (config["period"], config["timeout"]) == (dr.HEALTH_AGGREGATE_PERIOD, dr.HEALTH_AGGREGATE_TIMEOUT)
    assert config["endpoints"] == [
        {"name": "ranker", "host": "ranker.models.example.com", "path": "/healthz"},
        {"name": "scorer", "host": "scorer.models.example.com", "path": "/v1/ready"},
    ]


def test_the_route_serves_ready_on_the_health_hosts_only_with_least_privilege():
    objects = route()
    assert "Role" not in objects and "RoleBinding" not in objects and "ClusterRole" not in objects
    config = objects["ConfigMap"]
    assert json.loads(config["data"]["config.json"])["endpoints"][0]["host"] == "ranker.models.example.com"
    assert config["data"]["aggregator.py"] == AGGREGATOR.read_text()
    assert objects["ServiceAccount"]["automountServiceAccountToken"] is False
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    assert objects["Deployment"]["spec"]["replicas"] == 2 and "PodDisruptionBudget" in objects
    assert pod["serviceAccountName"] == "turnout-health" and pod["automountServiceAccountToken"] is False
    assert (
        pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    )
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] and container["securityContext"]["capabilities"] == {
        "drop": ["ALL"]
    }
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz" == container["livenessProbe"]["httpGet"]["path"]
    assert container["resources"]["limits"] and container["resources"]["requests"]
    service = objects["VirtualService"]["spec"]
    assert service["hosts"] == ["turnout-health.models.example.com", "turnout-health-prod-us-east-1.models.example.com"]
    assert service["gateways"] == ["istio-system/turnout-gateway"]
    (http,) = service["http"]
    assert http["match"] == [{"uri": {"exact": "/ready"}, "method": {"exact": "GET"}}]
    policy = objects["NetworkPolicy"]["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    gateway = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-system"}},
        "podSelector": {"matchLabels": {"istio": "ingressgateway"}},
    }
    assert policy["ingress"] == [{"from": [gateway], "ports": [{"port": 8080, "protocol": "TCP"}]}]
    assert policy["egress"][0] == {"to": [gateway], "ports": [{"port": 443, "protocol": "TCP"}]}
    assert {port["port"] for port in policy["egress"][1]["ports"]} == {53}


def test_one_replica_and_no_disruption_budget_outside_prod():
    objects = route(tier="dev")
    assert objects["Deployment"]["spec"]["replicas"] == 1 and "PodDisruptionBudget" not in objects


def test_health_hosts_are_single_labels_under_the_domain():
    assert health_host(DOMAIN) == "turnout-health.models.example.com"
    long = cluster_health_host("a-very-long-stack-name-for-a-cluster-in-a-region-" + "x" * 30, DOMAIN)
    label, _, domain = long.partition(".")
    assert domain == DOMAIN and len(label) <= 63 and label.startswith("turnout-health-")


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        (Platform(cloud="aws", regions=("us-east-1", "us-west-2"), serving=EXTERNAL), True),
        (Platform(cloud="aws", regions=("us-east-1", "us-west-2"), serving=INTERNAL), True),  # the in-VPC probe
        (Platform(cloud="gcp", regions=("europe-west4", "europe-west1"), serving=EXTERNAL), True),
        (Platform(cloud="azure", regions=("westeurope", "northeurope"), serving=EXTERNAL), True),
    ],
)
def test_which_stacks_serve_and_count_the_health_route(platform, expected):
    plan = dr.assess(DrTarget(rpo=60, rto=900), platform)
    assert plan.settings.routing is not None
    assert uses_health_route(plan, platform) is expected
    assert plan.settings.routing.aggregate_seconds == (dr.HEALTH_AGGREGATE_LAG if expected else 0)
    assert plan.to_json()["settings"]["routing"]["aggregateSeconds"] == plan.settings.routing.aggregate_seconds


def test_no_routing_no_health_route():
    platform = Platform(cloud="aws", regions=("us-east-1",), serving=EXTERNAL)
    assert not uses_health_route(dr.assess(None, platform), platform)


@pytest.mark.parametrize(
    ("cloud", "serving", "expected"),
    [
        ("aws", EXTERNAL, True),  # a cell a blue/green global stack may probe
        ("gcp", EXTERNAL, True),
        ("azure", EXTERNAL, True),
        ("aws", INTERNAL, False),  # a global stack judges it by the NLB alarm
        ("gcp", INTERNAL, False),  # ... or by GKE's load balancer check
        ("aws", Serving(gateway=Gateway(exposure="external")), False),  # no delegated domain: no global stack
        ("kind", EXTERNAL, False),
    ],
)
def test_stacks_without_dr_serve_the_route_where_a_global_stack_may_probe_it(cloud, serving, expected):
    platform = Platform(cloud=cloud, regions=("r1",), serving=serving)
    plan = dr.assess(None, platform)
    assert not uses_health_route(plan, platform)  # no failover DNS of its own
    assert serves_health_route(plan, platform) is expected
    if expected:  # so its endpoints cannot take the route's names either
        with pytest.raises(ConfigError) as caught:
            check_failover(plan, platform, "cell", {"turnout-health": object()})
        assert caught.value.path == "turnout:endpoints.turnout-health"
    else:
        check_failover(plan, platform, "cell", {"turnout-health": object()})


@pytest.mark.parametrize("name", ["turnout-health", "turnout-health-prod-us-east-1"])
def test_an_endpoint_cannot_take_a_health_host(name):
    platform = Platform(cloud="aws", regions=("us-east-1", "us-west-2"), serving=EXTERNAL)
    plan = dr.assess(DrTarget(rpo=30, rto=600), platform)
    with pytest.raises(ConfigError) as caught:
        check_failover(plan, platform, "prod", {name: object()})
    assert caught.value.path == f"turnout:endpoints.{name}"
    check_failover(plan, platform, "prod", {"turnout-healthy": object()})  # only the route's own names


def test_the_planned_health_route_passes_strict_validation_and_its_crd(tmp_path):
    """prod-aws as planned: the route's core objects against kubernetes-validate --strict, its VirtualService against
    Istio's CRD, on both clusters."""
    import kubernetes_validate
    import yaml

    from tests.conftest import CRDS, REPO
    from tests.crd_schema import load_crds, validate_custom_resource
    from turnout.cli import main

    assert main(["plan", "prod-aws", "--project", str(REPO), "--out", str(tmp_path)]) == 0
    files = sorted((tmp_path / "prod-aws" / "manifests").rglob("*-turnout-system-turnout-health.yaml"))
    documents = [yaml.safe_load(path.read_text()) for path in files]
    kinds = sorted(d["kind"] for d in documents)
    expected = ["ConfigMap", "ServiceAccount", "Service", "Deployment", "NetworkPolicy", "PodDisruptionBudget"]
    assert kinds == sorted([*expected, "VirtualService"] * 2)
    crds = load_crds(CRDS)
    for document in documents:
        if document["kind"] == "VirtualService":
            assert validate_custom_resource(document, crds) == []
        else:
            kubernetes_validate.validate(document, "1.33.0", strict=True)


@pytest.mark.parametrize(
    ("cloud", "regions"), [("gcp", ["europe-west4", "europe-west1"]), ("azure", ["westeurope", "northeurope"])]
)
def test_gcp_and_azure_dr_stacks_probe_the_health_route_and_the_policy_agrees(
    cloud, regions, capsys, project, tmp_path
):
    """An external-gateway DR stack on GCP and Azure: the cloud's check requests the route, every cluster serves it, and
    dr-target-achievable (which refuses a record counting the route while a probe checks something else) passes."""
    from tests.conftest import write_stack
    from turnout.cli import main

    config = {
        "tier": "prod",
        "platform": {
            "cloud": cloud,
            "regions": regions,
            "serving": {"gateway": {"exposure": "external", "domain": DOMAIN}},
        },
        "dr": {"rpo": "1m", "rto": "15m"},
        "endpoints": {"m": {"versions": {"v1": {"image": "ghcr.io/acme/m:1.0.0", "replicas": {"min": 2, "max": 6}}}}},
    }
    write_stack(project, "routed", config)
    assert main(["plan", "routed", "--project", str(project), "--out", str(tmp_path / "out")]) == 0
    assert "dr-target-achievable" not in capsys.readouterr().err
    inventory = json.loads((tmp_path / "out" / "routed" / "inventory.json").read_text())
    routes = [r for r in inventory["resources"] if r["type"] == "kubernetes:networking.istio.io/v1:VirtualService"]
    assert sum(r["inputs"]["metadata"]["name"] == "turnout-health" for r in routes) == 2
    document = json.loads((tmp_path / "out" / "routed" / "dr.json").read_text())
    assert document["settings"]["routing"]["aggregateSeconds"] == dr.HEALTH_AGGREGATE_LAG


def test_an_aws_internal_dr_stack_probes_the_route_from_each_vpc_and_the_policy_agrees(capsys, project, tmp_path):
    """An internal-gateway DR stack on AWS: every cluster serves the route, a probe in each VPC requests it, dr.json
    counts the probe's schedule and timeout, and dr-target-achievable (which re-derives them) passes."""
    from tests.conftest import write_stack
    from turnout.cli import main

    config = {
        "tier": "prod",
        "platform": {
            "cloud": "aws",
            "regions": ["us-east-1", "us-west-2"],
            "serving": {"gateway": {"exposure": "internal", "domain": DOMAIN}},
        },
        "dr": {"rpo": "1m", "rto": "15m"},
        "endpoints": {"m": {"versions": {"v1": {"image": "ghcr.io/acme/m:1.0.0", "replicas": {"min": 2, "max": 6}}}}},
    }
    write_stack(project, "private", config)
    assert main(["plan", "private", "--project", str(project), "--out", str(tmp_path / "out")]) == 0
    assert "dr-target-achievable" not in capsys.readouterr().err
    inventory = json.loads((tmp_path / "out" / "private" / "inventory.json").read_text())
    routes = [r for r in inventory["resources"] if r["type"] == "kubernetes:networking.istio.io/v1:VirtualService"]
    assert sum(r["inputs"]["metadata"]["name"] == "turnout-health" for r in routes) == 2
    probes = [r["inputs"] for r in inventory["resources"] if r["type"] == "aws:lambda/function:Function"]
    probes = [p for p in probes if p["name"].endswith("-probe")]
    clusters = sorted(p["environment"]["variables"]["CLUSTER"] for p in probes)
    assert clusters == ["private-us-east-1", "private-us-west-2"]
    assert all(len(p["vpcConfig"]["subnetIds"]) == 3 for p in probes)  # the cluster VPC's private subnets
    checks = [r["inputs"] for r in inventory["resources"] if r["type"] == "aws:route53/healthCheck:HealthCheck"]
    alarms = {c["cloudwatchAlarmName"] for c in checks if c["type"] == "CLOUDWATCH_METRIC"}
    assert len(alarms) == 2 and all(name.endswith("-health-route") for name in alarms)  # the probes' alarms
    document = json.loads((tmp_path / "out" / "private" / "dr.json").read_text())
    routing = document["settings"]["routing"]
    assert (routing["aggregateSeconds"], routing["probeSeconds"]) == (dr.HEALTH_AGGREGATE_LAG, 70)
    assert any(line.startswith("rto detection: 258s") for line in document["reasons"])
