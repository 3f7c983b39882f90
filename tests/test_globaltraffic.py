"""Global traffic routing: what each cloud allows (checked without the runtime), and under mocks the health
checks, routing policies, TTLs and targets each cloud's component creates over the regions' ingress
addresses, which the serving platform reads from the gateway Service."""

from __future__ import annotations

import dataclasses
import json
import re

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.cluster.eks import eks_kubeconfig
from components.cluster.gke import gke_kubeconfig
from components.globaltraffic import (
    NAME_PATTERN,
    GlobalTrafficArgs,
    RegionalIngress,
    build_global_traffic,
    check_global_traffic,
    exported,
    regional_ingresses,
    routing_name,
)
from components.globaltraffic.aws_probe import check_probe
from components.globaltraffic.cloud_dns import (
    check_routing_policy,
    internal_routing_policy,
    routing_policy,
    source_regions,
)
from components.globaltraffic.traffic_manager import profile_name
from components.mesh.platform import ServingPlatform, ServingPlatformArgs
from turnout.config import Gateway, Serving
from turnout.errors import ConfigError
from turnout.offline import mocks_azure, mocks_dns
from turnout.offline.mocks import OFFLINE_CA_PEM, stable_hash
from turnout.offline.runtime import run_function

DOMAIN = "models.example.com"
HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
RECORD = "aws:route53/record:Record"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
GCP_HEALTH_CHECK = "gcp:compute/healthCheck:HealthCheck"
RECORD_SET = "gcp:dns/recordSet:RecordSet"
PROFILE = "azure-native:trafficmanager:Profile"
ENDPOINT = "azure-native:trafficmanager:Endpoint"

EAST = RegionalIngress(cluster="prod-us-east-1", region="us-east-1", address="east.elb.example", role="primary")
WEST = RegionalIngress(cluster="prod-us-west-2", region="us-west-2", address="west.elb.example", role="secondary")
GCP_ADDRESSES = {"prod-us-east4": "34.1.2.3", "prod-europe-west1": "34.4.5.6", "prod-asia-east1": "34.7.8.9"}
AZURE_ADDRESSES = {"prod-eastus": "20.1.2.3", "prod-westeurope": "20.4.5.6"}


def traffic(*ingresses: RegionalIngress, exposure: str = "external", **overrides) -> GlobalTrafficArgs:
    return GlobalTrafficArgs(name="models", domain=DOMAIN, ingresses=ingresses, exposure=exposure, **overrides)


def ingress(cluster: str, region: str, address: str, role: str = "active", weight: int = 1) -> RegionalIngress:
    return RegionalIngress(cluster=cluster, region=region, address=address, role=role, weight=weight)


def gcp_ingresses(*roles: str, weights: tuple[int, ...] = (1, 1, 1)) -> tuple[RegionalIngress, ...]:
    regions = ("us-east4", "europe-west1", "asia-east1")
    return tuple(
        ingress(f"prod-{region}", region, GCP_ADDRESSES[f"prod-{region}"], role, weight)
        for region, role, weight in zip(regions, roles, weights, strict=False)
    )


def azure_ingresses(*roles: str, weights: tuple[int, ...] = (1, 1)) -> tuple[RegionalIngress, ...]:
    regions = ("eastus", "westeurope")
    return tuple(
        ingress(f"prod-{region}", region, AZURE_ADDRESSES[f"prod-{region}"], role, weight)
        for region, role, weight in zip(regions, roles, weights, strict=False)
    )


def plan(cloud: str, args: GlobalTrafficArgs):
    """Run the cloud's component for `args`; return its records by (type, name) and its exported outputs."""

    def program():
        component = build_global_traffic(cloud, args)
        for output in ("hostname", "records", "detection_seconds", "ttl_seconds"):
            pulumi.export(output, getattr(component, output))

    run = run_function(program)
    return {(r.type, r.name): r for r in run.records}, run.stack_outputs


def of_type(records: dict, type_: str) -> dict:
    return {name: record for (kind, name), record in records.items() if kind == type_}


def mock_id(type_: str, name: str) -> str:
    """The id the offline mocks give a resource (what other resources reference it by)."""
    return f"{name}-{stable_hash(type_, name)}"


def expect_error(cloud: str, args: GlobalTrafficArgs) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        check_global_traffic(cloud, args)
    return caught.value


# What each cloud allows, without the runtime.


@pytest.mark.parametrize(
    ("cloud", "args", "interval", "detection", "port", "protocol"),
    [
        ("aws", traffic(EAST, WEST), 30, 90, 15021, "HTTP"),
        ("aws", traffic(EAST, WEST, exposure="internal"), 60, 180, 443, "CLOUDWATCH_METRIC"),
        ("gcp", traffic(*gcp_ingresses("primary", "secondary")), 30, 90, 15021, "HTTP"),
        ("azure", traffic(*azure_ingresses("primary", "secondary")), 30, 90, 15021, "HTTP"),
    ],
)
def test_default_interval_per_cloud_and_exposure(cloud, args, interval, detection, port, protocol):
    settings = check_global_traffic(cloud, args)
    assert (settings.interval_seconds, settings.failure_threshold) == (interval, 3)
    assert settings.detection_seconds == detection
    assert (settings.port, settings.protocol, settings.ttl_seconds) == (port, protocol, 60)


@pytest.mark.parametrize(
    ("cloud", "args", "interval", "allowed"),
    [
        ("aws", traffic(EAST, WEST), 20, "10 or 30"),
        ("aws", traffic(EAST, WEST, exposure="internal"), 30, "multiple of 60"),
        ("aws", traffic(EAST, WEST, exposure="internal"), 90, "multiple of 60"),
        ("gcp", traffic(*gcp_ingresses("primary", "secondary")), 10, "30 to 300"),
        ("gcp", traffic(*gcp_ingresses("primary", "secondary")), 301, "30 to 300"),
        ("azure", traffic(*azure_ingresses("primary", "secondary")), 60, "10 or 30"),
    ],
)
def test_intervals_the_cloud_refuses_name_the_key_and_the_allowed_values(cloud, args, interval, allowed):
    error = expect_error(cloud, dataclasses.replace(args, health_check_interval_seconds=interval))
    assert error.path == "turnout:globalTraffic.healthCheck.intervalSeconds"
    assert error.found == f"the number {interval}"
    assert allowed in error.allowed and cloud in error.allowed


@pytest.mark.parametrize("threshold", [0, 11, True])
def test_failure_threshold_is_1_to_10(threshold):
    error = expect_error("azure", traffic(*azure_ingresses("primary", "secondary"), failure_threshold=threshold))
    assert error.path == "turnout:globalTraffic.healthCheck.failureThreshold"
    assert error.allowed == "an integer from 1 to 10"


def test_fastest_detection_per_cloud():
    fast = {"health_check_interval_seconds": 10, "failure_threshold": 1}
    assert check_global_traffic("aws", traffic(EAST, WEST, **fast)).detection_seconds == 10
    assert (
        check_global_traffic("azure", traffic(*azure_ingresses("primary", "secondary"), **fast)).detection_seconds == 10
    )
    slowest_gcp = {"health_check_interval_seconds": 300, "failure_threshold": 10}
    assert (
        check_global_traffic("gcp", traffic(*gcp_ingresses("primary", "secondary"), **slowest_gcp)).detection_seconds
        == 3000
    )


@pytest.mark.parametrize("ttl", [-1, 2**31])
def test_ttl_range(ttl):
    error = expect_error("aws", traffic(EAST, WEST, ttl_seconds=ttl))
    assert error.path == "turnout:globalTraffic.ttlSeconds"
    assert "2147483647" in error.allowed


def test_internal_exposure_is_refused_where_the_cloud_cannot_check_private_load_balancers():
    error = expect_error("azure", traffic(*azure_ingresses("primary", "secondary"), exposure="internal"))
    assert error.path == "turnout:platform.serving.gateway.exposure"
    assert error.allowed.startswith('"external"')
    assert "from the internet" in error.allowed


def test_gcp_internal_takes_gkes_load_balancer_check_and_refuses_other_timings():
    args = traffic(*gcp_ingresses("primary", "secondary"), exposure="internal", failure_threshold=2)
    plan_ = check_global_traffic("gcp", args)
    assert (plan_.mechanism, plan_.interval_seconds, plan_.failure_threshold, plan_.detection_seconds) == (
        "load-balancer",
        3,
        2,
        6,
    )
    error = expect_error("gcp", dataclasses.replace(args, failure_threshold=3))
    assert error.path == "turnout:globalTraffic.healthCheck.failureThreshold" and "GKE" in error.allowed
    error = expect_error("gcp", dataclasses.replace(args, health_check_interval_seconds=30))
    assert error.path == "turnout:globalTraffic.healthCheck.intervalSeconds" and error.allowed.startswith("on gcp: 3")


def test_failover_needs_one_primary_and_on_route53_exactly_one_secondary():
    error = expect_error("aws", traffic(EAST, dataclasses.replace(WEST, role="primary")))
    assert error.path == "turnout:globalTraffic.ingresses" and "exactly one primary" in error.allowed
    third = ingress("prod-eu-west-1", "eu-west-1", "eu.elb.example", "secondary")
    error = expect_error("aws", traffic(EAST, WEST, third))
    assert "one PRIMARY and one SECONDARY" in error.allowed
    # Cloud DNS backup geos and Traffic Manager priorities take several secondaries.
    assert check_global_traffic("gcp", traffic(*gcp_ingresses("primary", "secondary", "secondary")))
    error = expect_error("gcp", traffic(*gcp_ingresses("primary")))
    assert error.found == "no secondary region"


def test_roles_must_fit_the_routing():
    error = expect_error("aws", traffic(EAST, dataclasses.replace(WEST, role="active")))
    assert error.path == "turnout:globalTraffic.ingresses[1].role"
    assert error.allowed == '"primary" or "secondary" with failover routing'
    error = expect_error("aws", traffic(EAST, WEST, routing="latency"))
    assert error.path == "turnout:globalTraffic.ingresses[0].role"
    assert error.allowed == '"active" with latency routing'


def test_weights_are_0_to_255_and_not_all_zero():
    blue = ingress("prod-blue", "us-east-1", "blue.elb.example", weight=256)
    green = ingress("prod-green", "us-east-1", "green.elb.example", weight=0)
    error = expect_error("aws", traffic(blue, green, routing="weighted"))
    assert (error.path, error.allowed) == ("turnout:globalTraffic.ingresses[0].weight", "an integer from 0 to 255")
    error = expect_error("aws", traffic(dataclasses.replace(blue, weight=0), green, routing="weighted"))
    assert error.found == "every weight 0"


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"domain": "localhost"}, "turnout:platform.serving.gateway.domain"),
        ({"health_check_path": "healthz"}, "turnout:globalTraffic.healthCheck.path"),
        ({"routing": "geo"}, "turnout:globalTraffic.routing"),
        ({"ingresses": ()}, "turnout:globalTraffic.ingresses"),
        ({"ingresses": (EAST, dataclasses.replace(WEST, cluster=EAST.cluster))}, "turnout:globalTraffic.ingresses"),
        ({"exposure": "public"}, "turnout:platform.serving.gateway.exposure"),
    ],
)
def test_malformed_args_name_their_key(overrides, path):
    args = dataclasses.replace(traffic(EAST, WEST), **overrides)
    assert expect_error("aws", args).path == path


@pytest.mark.parametrize("name", ["Models", "m" * 41])
def test_a_malformed_name_is_a_bug_not_a_key_the_user_wrote(name):
    """The name derives from the stack name (`routing_name`): no `turnout:globalTraffic.name` key exists to blame."""
    with pytest.raises(ValueError, match="routing_name"):
        check_global_traffic("aws", dataclasses.replace(traffic(EAST, WEST), name=name))


@pytest.mark.parametrize(
    "stack",
    ["prod", "prod-aws-blue", "a" * 42, "x" * 100, "Prod.AWS_eu", "7-seas", "a.b", "---"],
)
def test_any_stack_name_gives_a_valid_stable_routing_name(stack):
    name = routing_name(stack)
    assert re.fullmatch(NAME_PATTERN, name) and len(name) <= 40, name
    assert routing_name(stack) == name
    check_global_traffic("aws", dataclasses.replace(traffic(EAST, WEST), name=name))


def test_short_stack_names_keep_their_routing_name_unchanged():
    assert routing_name("prod-aws") == "prod-aws-models", "existing stacks' resources keep their names"
    assert routing_name("a" * 42) != routing_name("a" * 43), "long names stay distinct"


def test_kind_gets_no_global_routing_and_unknown_clouds_are_refused():
    assert build_global_traffic("kind", traffic(EAST, WEST)) is None
    error = expect_error("openstack", traffic(EAST, WEST))
    assert error.path == "turnout:platform.cloud"


def test_gcp_probes_from_the_ingress_regions_then_fallbacks():
    assert source_regions(gcp_ingresses("primary", "secondary")) == ["us-east4", "europe-west1", "us-central1"]
    assert source_regions(gcp_ingresses("active", "active", "active")) == ["us-east4", "europe-west1", "asia-east1"]


# Route 53 under mocks.


def test_route53_failover_checks_each_nlb_status_port_and_answers_primary_then_secondary():
    records, outputs = plan("aws", traffic(EAST, WEST, health_check_interval_seconds=10, ttl_seconds=30))
    checks = of_type(records, HEALTH_CHECK)
    assert sorted(checks) == ["models-prod-us-east-1-health", "models-prod-us-west-2-health"]
    for ingress_, role in ((EAST, "PRIMARY"), (WEST, "SECONDARY")):
        check = checks[f"models-{ingress_.cluster}-health"].inputs
        assert check["type"] == "HTTP"
        assert check["fqdn"] == ingress_.address
        assert (check["port"], check["resourcePath"]) == (15021, "/healthz/ready")
        assert (check["requestInterval"], check["failureThreshold"]) == (10, 3)
        record = records[(RECORD, f"models-{ingress_.cluster}")].inputs
        assert record["name"] == "*.models.example.com"
        assert (record["type"], record["ttl"], record["records"]) == ("CNAME", 30, [ingress_.address])
        assert record["setIdentifier"] == ingress_.cluster
        assert record["failoverRoutingPolicies"] == [{"type": role}]
        assert record["healthCheckId"] == mock_id(HEALTH_CHECK, f"models-{ingress_.cluster}-health")
        public_zone = mocks_dns.invoke(mocks_dns.GET_ZONE, {"name": DOMAIN, "privateZone": False})
        assert record["zoneId"] == public_zone["zoneId"]
    assert (outputs["detection_seconds"], outputs["ttl_seconds"]) == (30, 30)
    assert outputs["hostname"] == "*.models.example.com"
    assert [(r["cluster"], r["failover"], r["target"]) for r in outputs["records"]] == [
        ("prod-us-east-1", "PRIMARY", "east.elb.example"),
        ("prod-us-west-2", "SECONDARY", "west.elb.example"),
    ]


def test_route53_latency_records_answer_from_each_cluster_region():
    east, west = dataclasses.replace(EAST, role="active"), dataclasses.replace(WEST, role="active")
    records, _ = plan("aws", traffic(east, west, routing="latency"))
    policies = {name: r.inputs["latencyRoutingPolicies"] for name, r in of_type(records, RECORD).items()}
    assert policies == {
        "models-prod-us-east-1": [{"region": "us-east-1"}],
        "models-prod-us-west-2": [{"region": "us-west-2"}],
    }
    for record in of_type(records, RECORD).values():
        assert "failoverRoutingPolicies" not in record.inputs and "weightedRoutingPolicies" not in record.inputs


def test_route53_weighted_records_split_blue_and_green():
    blue = ingress("prod-blue-us-east-1", "us-east-1", "blue.elb.example", weight=230)
    green = ingress("prod-green-us-east-1", "us-east-1", "green.elb.example", weight=25)
    records, outputs = plan("aws", traffic(blue, green, routing="weighted"))
    weights = {r.inputs["records"][0]: r.inputs["weightedRoutingPolicies"] for r in of_type(records, RECORD).values()}
    assert weights == {"blue.elb.example": [{"weight": 230}], "green.elb.example": [{"weight": 25}]}
    assert [r["weight"] for r in outputs["records"]] == [230, 25]
    # One provider for the one region, shared by the zone, checks and records.
    assert sorted(name for (kind, name) in records if kind == "pulumi:providers:aws") == ["models-us-east-1-aws"]


def test_route53_internal_checks_an_alarm_on_each_nlb_healthy_hosts_in_a_private_zone():
    records, outputs = plan("aws", traffic(EAST, WEST, exposure="internal", failure_threshold=2))
    alarms = of_type(records, ALARM)
    providers = {r.urn: r.inputs["region"] for (kind, _), r in records.items() if kind == "pulumi:providers:aws"}
    for ingress_ in (EAST, WEST):
        alarm = alarms[f"models-{ingress_.cluster}-healthy-hosts"]
        assert providers[alarm.provider] == ingress_.region, "the alarm lives where the NLB's metric is"
        settings = alarm.inputs
        assert (settings["namespace"], settings["metricName"]) == ("AWS/NetworkELB", "HealthyHostCount")
        assert (settings["statistic"], settings["comparisonOperator"], settings["threshold"]) == (
            "Minimum",
            "LessThanThreshold",
            1,
        )
        assert (settings["period"], settings["evaluationPeriods"]) == (60, 2)
        assert settings["treatMissingData"] == "breaching"
        tags = {
            "elbv2.k8s.aws/cluster": ingress_.cluster,
            "service.k8s.aws/stack": "istio-system/istio-ingressgateway",
        }
        nlb = mocks_dns.invoke(
            mocks_dns.GET_LOAD_BALANCER,
            {"region": ingress_.region, "tags": {**tags, "service.k8s.aws/resource": "LoadBalancer"}},
        )
        https = mocks_dns.invoke(
            mocks_dns.GET_TARGET_GROUP,
            {
                "region": ingress_.region,
                "tags": {**tags, "service.k8s.aws/resource": f"{tags['service.k8s.aws/stack']}:443"},
            },
        )
        assert settings["dimensions"] == {"LoadBalancer": nlb["arnSuffix"], "TargetGroup": https["arnSuffix"]}
        check = records[(HEALTH_CHECK, f"models-{ingress_.cluster}-health")].inputs
        assert check == {
            "type": "CLOUDWATCH_METRIC",
            "cloudwatchAlarmName": f"models-{ingress_.cluster}-healthy-hosts",
            "cloudwatchAlarmRegion": ingress_.region,
            "insufficientDataHealthStatus": "Unhealthy",
            "tags": {"Name": f"models-{ingress_.cluster}"},
        }
        record = records[(RECORD, f"models-{ingress_.cluster}")].inputs
        assert record["records"] == [ingress_.address]
        assert record["healthCheckId"] == mock_id(HEALTH_CHECK, f"models-{ingress_.cluster}-health")
        private_zone = mocks_dns.invoke(mocks_dns.GET_ZONE, {"name": DOMAIN, "privateZone": True})
        assert record["zoneId"] == private_zone["zoneId"]
    assert outputs["detection_seconds"] == 120
    assert {r["healthCheck"]["mechanism"] for r in outputs["records"]} == {"cloudwatch-alarm"}


ZONE_ASSOCIATION = "aws:route53/zoneAssociation:ZoneAssociation"


def test_a_private_zone_is_associated_with_every_regions_network():
    """Clients of an internal gateway resolve the records only inside networks the private zone is associated with;
    the clusters' VPCs are the stack's own, so nobody could have associated them beforehand."""
    east, west = (dataclasses.replace(i, network_id=f"vpc-{i.region}") for i in (EAST, WEST))
    records, _ = plan("aws", traffic(east, west, exposure="internal"))
    private_zone = mocks_dns.invoke(mocks_dns.GET_ZONE, {"name": DOMAIN, "privateZone": True})
    associations = {r.inputs["vpcId"]: r.inputs for r in of_type(records, ZONE_ASSOCIATION).values()}
    assert associations == {
        f"vpc-{i.region}": {"zoneId": private_zone["zoneId"], "vpcId": f"vpc-{i.region}", "vpcRegion": i.region}
        for i in (EAST, WEST)
    }
    external, _ = plan("aws", traffic(east, west))
    assert not of_type(external, ZONE_ASSOCIATION), "a public zone answers everyone"


# Cloud DNS under mocks.


def gcp_health_check(records: dict) -> dict:
    (check,) = of_type(records, GCP_HEALTH_CHECK).values()
    return check


def test_cloud_dns_failover_health_checks_the_primary_ip_and_backs_up_by_region():
    args = traffic(*gcp_ingresses("primary", "secondary", "secondary"), ttl_seconds=30, failure_threshold=2)
    records, outputs = plan("gcp", args)
    check = gcp_health_check(records)
    assert check.inputs["name"] == "models-gateway-ready"
    assert check.inputs["httpHealthCheck"] == {"port": 15021, "requestPath": "/healthz/ready"}
    assert (check.inputs["checkIntervalSec"], check.inputs["timeoutSec"]) == (30, 5)
    assert (check.inputs["unhealthyThreshold"], check.inputs["healthyThreshold"]) == (2, 2)
    assert check.inputs["sourceRegions"] == ["us-east4", "europe-west1", "asia-east1"]
    (record_set,) = of_type(records, RECORD_SET).values()
    assert record_set.inputs["managedZone"] == "models-example-com"
    assert (record_set.inputs["name"], record_set.inputs["type"], record_set.inputs["ttl"]) == (
        "*.models.example.com.",
        "A",
        30,
    )
    policy = record_set.inputs["routingPolicy"]
    assert (
        policy["healthCheck"]
        == f"{mocks_dns.mocks_gcp.COMPUTE}/projects/turnout-offline/global/healthChecks/models-gateway-ready"
    )
    assert policy["primaryBackup"] == {
        "primary": {"externalEndpoints": ["34.1.2.3"]},
        "backupGeos": [
            {"location": "europe-west1", "healthCheckedTargets": {"externalEndpoints": ["34.4.5.6"]}},
            {"location": "asia-east1", "healthCheckedTargets": {"externalEndpoints": ["34.7.8.9"]}},
        ],
        "trickleRatio": 0,
        "enableGeoFencingForBackups": False,
    }
    assert (outputs["detection_seconds"], outputs["ttl_seconds"]) == (60, 30)
    assert [r["target"] for r in outputs["records"]] == ["34.1.2.3", "34.4.5.6", "34.7.8.9"]


def test_cloud_dns_latency_answers_from_the_nearest_healthy_region():
    records, _ = plan("gcp", traffic(*gcp_ingresses("active", "active"), routing="latency"))
    policy = next(iter(of_type(records, RECORD_SET).values())).inputs["routingPolicy"]
    assert policy["geos"] == [
        {"location": "us-east4", "healthCheckedTargets": {"externalEndpoints": ["34.1.2.3"]}},
        {"location": "europe-west1", "healthCheckedTargets": {"externalEndpoints": ["34.4.5.6"]}},
    ]
    assert policy["enableGeoFencing"] is False, "a region down must fail over to the next nearest"
    assert "primaryBackup" not in policy and "wrrs" not in policy


def test_cloud_dns_weighted_round_robin_keeps_each_weight():
    records, _ = plan("gcp", traffic(*gcp_ingresses("active", "active", weights=(90, 10)), routing="weighted"))
    policy = next(iter(of_type(records, RECORD_SET).values())).inputs["routingPolicy"]
    assert policy["wrrs"] == [
        {"weight": 90, "healthCheckedTargets": {"externalEndpoints": ["34.1.2.3"]}},
        {"weight": 10, "healthCheckedTargets": {"externalEndpoints": ["34.4.5.6"]}},
    ]


def test_cloud_dns_enables_its_apis_before_the_health_check_and_the_record():
    records, _ = plan("gcp", traffic(*gcp_ingresses("primary", "secondary")))
    services = of_type(records, "gcp:projects/service:Service")
    assert {r.inputs["service"] for r in services.values()} == {"dns.googleapis.com", "compute.googleapis.com"}
    assert all(r.inputs["disableOnDestroy"] is False for r in services.values())
    apis = {r.urn for r in services.values()}
    for kind in (GCP_HEALTH_CHECK, RECORD_SET):
        (record,) = of_type(records, kind).values()
        assert apis <= set(record.dependencies), f"{kind} waits for the APIs"


def test_cloud_dns_refuses_a_domain_whose_zone_name_cloud_dns_cannot_hold():
    long_domain = "models." + "a" * 52 + ".example.com"  # 71 characters: a zone name of 71
    with pytest.raises(ConfigError) as caught:
        plan("gcp", dataclasses.replace(traffic(*gcp_ingresses("primary", "secondary")), domain=long_domain))
    assert caught.value.path == "turnout:platform.serving.gateway.domain"
    assert "Cloud DNS managed zone name" in caught.value.allowed


# Traffic Manager under mocks.


def test_traffic_manager_priority_profile_monitors_the_status_port():
    args = traffic(*azure_ingresses("primary", "secondary"), health_check_interval_seconds=10, failure_threshold=2)
    records, outputs = plan("azure", dataclasses.replace(args, ttl_seconds=20))
    (profile,) = of_type(records, PROFILE).values()
    name = profile_name("models", mocks_azure.SUBSCRIPTION_ID)
    assert profile.inputs["profileName"] == name and profile.inputs["location"] == "global"
    assert profile.inputs["trafficRoutingMethod"] == "Priority"
    assert profile.inputs["dnsConfig"] == {"relativeName": name, "ttl": 20}
    assert profile.inputs["monitorConfig"] == {
        "protocol": "HTTP",
        "port": 15021,
        "path": "/healthz/ready",
        "intervalInSeconds": 10,
        "timeoutInSeconds": 5,
        "toleratedNumberOfFailures": 1,
    }
    endpoints = of_type(records, ENDPOINT)
    for cluster, region, priority in (("prod-eastus", "eastus", 1), ("prod-westeurope", "westeurope", 2)):
        endpoint = endpoints[f"models-{cluster}"].inputs
        assert endpoint["endpointType"] == "ExternalEndpoints"
        assert endpoint["target"] == AZURE_ADDRESSES[cluster]
        assert (endpoint["endpointLocation"], endpoint["priority"], endpoint["endpointStatus"]) == (
            region,
            priority,
            "Enabled",
        )
        assert endpoint["profileName"] == name
    # Degraded on the failure after the tolerated one: 10 s x (1 + 1).
    assert (outputs["detection_seconds"], outputs["ttl_seconds"]) == (20, 20)
    assert {r["cname"] for r in outputs["records"]} == {f"{name}.trafficmanager.net"}


def test_traffic_manager_dns_names_are_unique_per_subscription_and_fit_a_dns_label():
    """`<name>.trafficmanager.net` is global: the same stack in another organisation must not claim it."""
    ours = profile_name("models", mocks_azure.SUBSCRIPTION_ID)
    theirs = profile_name("models", "44444444-4444-4444-4444-444444444444")
    assert re.fullmatch(r"models-[0-9a-f]{6}", ours) and ours != theirs
    long = profile_name("A_Stack.Name-of-fifty-characters-for-the-limit-xyz-models", theirs)
    assert len(long) <= 63 and re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", long)


def test_traffic_manager_performance_and_weighted_methods():
    records, _ = plan("azure", traffic(*azure_ingresses("active", "active"), routing="latency"))
    assert next(iter(of_type(records, PROFILE).values())).inputs["trafficRoutingMethod"] == "Performance"
    assert {e.inputs["endpointLocation"] for e in of_type(records, ENDPOINT).values()} == {"eastus", "westeurope"}
    records, outputs = plan(
        "azure", traffic(*azure_ingresses("active", "active", weights=(255, 0)), routing="weighted")
    )
    assert next(iter(of_type(records, PROFILE).values())).inputs["trafficRoutingMethod"] == "Weighted"
    endpoints = {e.inputs["target"]: e.inputs for e in of_type(records, ENDPOINT).values()}
    assert (endpoints["20.1.2.3"]["weight"], endpoints["20.1.2.3"]["endpointStatus"]) == (255, "Enabled")
    # Traffic Manager weights are 1-1000: weight 0 is a disabled endpoint, out of rotation.
    assert endpoints["20.4.5.6"]["endpointStatus"] == "Disabled"
    assert [r["endpointStatus"] for r in outputs["records"]] == ["Enabled", "Disabled"]


def test_traffic_manager_mock_answers_the_profile_fqdn():
    profile = mocks_dns.resource_outputs(
        PROFILE,
        "models-profile",
        {"profileName": "models", "resourceGroupName": "rg", "dnsConfig": {"relativeName": "models"}},
    )
    assert profile["dnsConfig"]["fqdn"] == "models.trafficmanager.net"
    assert profile["id"] == f"{mocks_azure.group_id('rg')}/providers/Microsoft.Network/trafficManagerProfiles/models"


# The ingress address the serving platform reads, end to end.


def serving(cloud: str) -> ServingPlatformArgs:
    gateway = Gateway(exposure="external", domain=DOMAIN)
    return ServingPlatformArgs(serving=Serving(gateway=gateway), cloud=cloud, tier="prod", endpoints={})


CA = OFFLINE_CA_PEM
KUBECONFIGS = {
    "aws": lambda cluster, region: eks_kubeconfig(cluster, region, "https://eks.example", CA),
    "gcp": lambda cluster, region: gke_kubeconfig(f"gke_turnout-offline_{region}_{cluster}", "10.0.0.2", CA),
    "azure": lambda cluster, region: mocks_azure.user_kubeconfig(f"{cluster}-rg", cluster, region),
}


@pytest.mark.parametrize(
    ("cloud", "cluster", "region", "expected"),
    [
        ("aws", "prod-us-east-1", "us-east-1", mocks_dns.nlb_hostname("prod-us-east-1", "us-east-1")),
        (
            "gcp",
            "prod-europe-west1",
            "europe-west1",
            mocks_dns.load_balancer_ingress("gcp", "gke_turnout-offline_europe-west1_prod-europe-west1", "")["ip"],
        ),
        (
            "azure",
            "prod-westeurope",
            "westeurope",
            mocks_dns.load_balancer_ingress("azure", "prod-westeurope", "")["ip"],
        ),
    ],
)
def test_platform_reads_the_gateway_load_balancer_address_without_counting_a_resource(cloud, cluster, region, expected):
    def program():
        kubeconfig = pulumi.Output.secret(KUBECONFIGS[cloud](cluster, region))
        provider = k8s.Provider(f"{cluster}-k8s", kubeconfig=kubeconfig)
        platform = ServingPlatform(f"{cluster}-serving", serving(cloud), pulumi.ResourceOptions(provider=provider))
        pulumi.export("address", platform.ingress_address)

    run = run_function(program)
    assert run.stack_outputs["address"] == expected
    assert expected.endswith(f".elb.{region}.amazonaws.com") if cloud == "aws" else expected.count(".") == 3
    assert not [r for r in run.records if r.name.endswith("gateway-service")], "a read is not a managed resource"


def test_kind_ingress_address_is_the_host_loopback_and_nothing_is_read():
    def program():
        platform = ServingPlatform("lab-serving", serving("kind"))
        pulumi.export("address", platform.ingress_address)

    assert run_function(program).stack_outputs["address"] == "127.0.0.1"


def test_route53_records_point_at_the_addresses_the_platforms_read():
    def program():
        ingresses = []
        for cluster, region, role in (
            ("prod-us-east-1", "us-east-1", "primary"),
            ("prod-us-west-2", "us-west-2", "secondary"),
        ):
            provider = k8s.Provider(
                f"{cluster}-k8s", kubeconfig=pulumi.Output.secret(KUBECONFIGS["aws"](cluster, region))
            )
            platform = ServingPlatform(f"{cluster}-serving", serving("aws"), pulumi.ResourceOptions(provider=provider))
            ingresses.append(
                RegionalIngress(cluster=cluster, region=region, address=platform.ingress_address, role=role)
            )
        build_global_traffic("aws", traffic(*ingresses))

    records = {(r.type, r.name): r for r in run_function(program).records}
    for cluster, region in (("prod-us-east-1", "us-east-1"), ("prod-us-west-2", "us-west-2")):
        hostname = mocks_dns.nlb_hostname(cluster, region)
        assert records[(RECORD, f"models-{cluster}")].inputs["records"] == [hostname]
        assert records[(HEALTH_CHECK, f"models-{cluster}-health")].inputs["fqdn"] == hostname


def test_fleet_order_gives_failover_roles_and_other_routings_active_regions():
    clusters = [("prod-us-east-1", "us-east-1"), ("prod-us-west-2", "us-west-2")]
    addresses = {"prod-us-east-1": "east.elb.example", "prod-us-west-2": "west.elb.example"}
    failover = regional_ingresses(clusters, addresses, "failover")
    assert [(i.cluster, i.region, i.address, i.role) for i in failover] == [
        ("prod-us-east-1", "us-east-1", "east.elb.example", "primary"),
        ("prod-us-west-2", "us-west-2", "west.elb.example", "secondary"),
    ]
    assert {i.role for i in regional_ingresses(clusters, addresses, "latency")} == {"active"}
    assert check_global_traffic("aws", traffic(*failover)).detection_seconds == 90
    assert exported(None) is None


# The health route (DR failover: components/dr/health.py): HTTPS through the gateway with the health host as SNI.


def test_route53_probes_each_regions_health_route_over_https_with_sni_on_its_own_host():
    records, outputs = plan("aws", traffic(EAST, WEST, health_route=True, health_check_interval_seconds=10))
    checks = of_type(records, HEALTH_CHECK)
    for ingress_ in (EAST, WEST):
        host = f"turnout-health-{ingress_.cluster}.models.example.com"
        check = checks[f"models-{ingress_.cluster}-health"].inputs
        assert (check["type"], check["port"], check["resourcePath"]) == ("HTTPS", 443, "/ready")
        # Route 53 resolves the name to reach this region and sends it as Host and in the ClientHello (SNI).
        assert (check["fqdn"], check["enableSni"]) == (host, True)
        assert (check["requestInterval"], check["failureThreshold"]) == (10, 3)
        # ...through a plain record of its own to this region's NLB, beside the routed wildcard.
        own = records[(RECORD, f"models-{ingress_.cluster}-health-host")].inputs
        assert (own["name"], own["type"], own["records"]) == (host, "CNAME", [ingress_.address])
        assert not any(key.endswith("RoutingPolicies") for key in own)
        routed = records[(RECORD, f"models-{ingress_.cluster}")].inputs
        assert routed["healthCheckId"] == mock_id(HEALTH_CHECK, f"models-{ingress_.cluster}-health")
    # interval x failures, after the aggregator's lag (a round every 5 s, 3 s per answer)
    assert outputs["detection_seconds"] == 8 + 10 * 3
    health = outputs["records"][0]["healthCheck"]
    assert (health["mechanism"], health["protocol"], health["port"], health["path"]) == (
        "health-route",
        "HTTPS",
        443,
        "/ready",
    )
    assert (health["host"], health["aggregateSeconds"]) == ("turnout-health.models.example.com", 8)


def test_route53_internal_keeps_the_nlb_alarm_without_the_health_route():
    records, outputs = plan("aws", traffic(EAST, WEST, exposure="internal"))
    assert {check.inputs["type"] for check in of_type(records, HEALTH_CHECK).values()} == {"CLOUDWATCH_METRIC"}
    assert not [name for (_, name) in records if name.endswith("-health-host")]
    assert outputs["detection_seconds"] == 60 * 3


def in_vpc(ingress_: RegionalIngress) -> RegionalIngress:
    region = ingress_.region
    return dataclasses.replace(
        ingress_, network_id=f"vpc-{region}", subnet_ids=(f"subnet-{region}-a", f"subnet-{region}-b")
    )


def test_route53_internal_probes_the_health_route_from_inside_each_vpc():
    """AWS internal gateways with the health route: a Lambda in each cluster VPC's private subnets requests it through
    the NLB every minute with SNI, publishes a metric, and Route 53's check reads an alarm on that metric."""
    args = traffic(in_vpc(EAST), in_vpc(WEST), exposure="internal", health_route=True)
    records, outputs = plan("aws", args)
    functions = of_type(records, "aws:lambda/function:Function")
    for ingress_ in (EAST, WEST):
        prefix = f"models-{ingress_.cluster}-probe"
        function = functions[prefix].inputs
        assert function["vpcConfig"] == {
            "subnetIds": [f"subnet-{ingress_.region}-a", f"subnet-{ingress_.region}-b"],
            "securityGroupIds": [mock_id("aws:ec2/securityGroup:SecurityGroup", prefix)],
        }
        assert (function["runtime"], function["handler"], function["timeout"]) == (
            "python3.12",
            "health_probe.handler",
            10,
        )
        variables = function["environment"]["variables"]
        assert (variables["PROBE_ADDRESS"], variables["PROBE_HOST"], variables["PROBE_PORT"]) == (
            ingress_.address,
            "turnout-health.models.example.com",
            "443",
        )
        assert (variables["PROBE_PATH"], variables["METRIC_NAMESPACE"], variables["CLUSTER"]) == (
            "/ready",
            "Turnout/HealthRoute",
            ingress_.cluster,
        )
        group = records[("aws:ec2/securityGroup:SecurityGroup", prefix)].inputs
        assert group["vpcId"] == f"vpc-{ingress_.region}" and not group.get("ingress")
        assert [(e["protocol"], e["fromPort"], e["toPort"]) for e in group["egress"]] == [("tcp", 443, 443)]
        # least privilege: its network interfaces and logs (the managed policy), PutMetricData into its namespace only
        attachment = records[("aws:iam/rolePolicyAttachment:RolePolicyAttachment", prefix)].inputs
        assert attachment["policyArn"].endswith("service-role/AWSLambdaVPCAccessExecutionRole")
        (statement,) = json.loads(records[("aws:iam/rolePolicy:RolePolicy", prefix)].inputs["policy"])["Statement"]
        assert statement["Action"] == "cloudwatch:PutMetricData"
        assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Turnout/HealthRoute"}}
        trust = json.loads(records[("aws:iam/role:Role", prefix)].inputs["assumeRolePolicy"])
        assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
        rule = records[("aws:cloudwatch/eventRule:EventRule", prefix)].inputs
        assert rule["scheduleExpression"] == "rate(1 minute)"
        target = records[("aws:cloudwatch/eventTarget:EventTarget", prefix)].inputs
        assert target["rule"] == rule["name"]
        permission = records[("aws:lambda/permission:Permission", prefix)].inputs
        assert (permission["principal"], permission["action"]) == ("events.amazonaws.com", "lambda:InvokeFunction")
        alarm = records[(ALARM, f"models-{ingress_.cluster}-health-route")].inputs
        assert (alarm["namespace"], alarm["metricName"], alarm["dimensions"]) == (
            "Turnout/HealthRoute",
            "HealthRouteUp",
            {"Cluster": ingress_.cluster},
        )
        assert (alarm["statistic"], alarm["period"], alarm["evaluationPeriods"], alarm["treatMissingData"]) == (
            "Minimum",
            60,
            3,
            "breaching",
        )
        check = records[(HEALTH_CHECK, f"models-{ingress_.cluster}-health")].inputs
        assert (check["type"], check["cloudwatchAlarmName"], check["cloudwatchAlarmRegion"]) == (
            "CLOUDWATCH_METRIC",
            alarm["name"],
            ingress_.region,
        )
    assert not of_type(records, "aws:lb/loadBalancer:LoadBalancer")
    assert not [alarm for name, alarm in of_type(records, ALARM).items() if name.endswith("healthy-hosts")]
    # the aggregator's 8 s, the probe's schedule and timeout (60 + 10 s), the alarm's 60 s x 3
    assert outputs["detection_seconds"] == 8 + 70 + 180
    health = outputs["records"][0]["healthCheck"]
    assert (health["mechanism"], health["path"], health["probeSeconds"]) == ("probe-alarm", "/ready", 70)
    assert outputs["records"][0]["healthCheckAlarm"]["name"].endswith("-health-route")


def test_the_in_vpc_probe_needs_the_clusters_vpc_and_subnets():
    with pytest.raises(ValueError, match="needs the cluster's VPC and private subnets"):
        plan("aws", traffic(EAST, WEST, exposure="internal", health_route=True))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"subnet_count": 0}, "needs at least one subnet and one security group"),
        ({"security_group_count": 0}, "needs at least one subnet and one security group"),
        ({"check_alarm_region": "us-west-2"}, "cloudwatch_alarm_region must be the region the alarm was created in"),
        ({"alarm_region": "xx-nowhere-1", "check_alarm_region": "xx-nowhere-1"}, "cannot read CloudWatch alarms"),
        ({"period": 10}, "standard-resolution metrics only"),
        ({"period": 90}, "standard-resolution metrics only"),
        ({"statistic": "p99"}, "the statistic p99"),
    ],
)
def test_the_probe_rules_the_provider_enforces_fail_before_anything_is_created(overrides, message):
    rules = {
        "subnet_count": 2,
        "security_group_count": 1,
        "alarm_region": "us-east-1",
        "check_alarm_region": "us-east-1",
        "period": 60,
        "statistic": "Minimum",
    }
    check_probe(**rules)  # what the component creates passes
    with pytest.raises(ValueError, match=message):
        check_probe(**{**rules, **overrides})


def test_cloud_dns_probes_the_health_route_over_https_with_the_health_host():
    args = traffic(*gcp_ingresses("primary", "secondary"), health_route=True, failure_threshold=2)
    records, outputs = plan("gcp", args)
    check = gcp_health_check(records)
    assert check.inputs["httpsHealthCheck"] == {
        "port": 443,
        "requestPath": "/ready",
        "host": "turnout-health.models.example.com",
    }
    assert "httpHealthCheck" not in check.inputs
    assert (check.inputs["checkIntervalSec"], check.inputs["unhealthyThreshold"]) == (30, 2)
    (record_set,) = of_type(records, RECORD_SET).values()
    assert record_set.inputs["routingPolicy"]["primaryBackup"]["primary"] == {"externalEndpoints": ["34.1.2.3"]}
    assert outputs["detection_seconds"] == 8 + 30 * 2


def test_traffic_manager_monitors_the_health_route_over_https_with_the_health_host():
    args = traffic(*azure_ingresses("primary", "secondary"), health_route=True, health_check_interval_seconds=10)
    records, outputs = plan("azure", args)
    (profile,) = of_type(records, PROFILE).values()
    assert profile.inputs["monitorConfig"] == {
        "protocol": "HTTPS",
        "port": 443,
        "path": "/ready",
        "intervalInSeconds": 10,
        "timeoutInSeconds": 5,
        "toleratedNumberOfFailures": 2,
        "customHeaders": [{"name": "Host", "value": "turnout-health.models.example.com"}],
    }
    assert outputs["detection_seconds"] == 8 + 10 * 3


# Blue/green colours (`cells_health_route`): what the cells export decides, per stack, what the checks probe.

COLOUR_BLUE = ingress("blue-us-east-1", "us-east-1", "blue.elb.example")
COLOUR_GREEN = ingress("green-us-east-1", "us-east-1", "green.elb.example", weight=0)


@pytest.mark.parametrize("served", [True, False])
def test_route53_colours_probe_the_health_route_only_while_every_cell_serves_it(served):
    args = traffic(COLOUR_BLUE, COLOUR_GREEN, routing="weighted", cells_health_route=served)
    records, outputs = plan("aws", args)
    checks = of_type(records, HEALTH_CHECK)
    for colour in (COLOUR_BLUE, COLOUR_GREEN):
        check = checks[f"models-{colour.cluster}-health"].inputs
        if served:
            host = f"turnout-health-{colour.cluster}.models.example.com"
            assert (check["type"], check["fqdn"], check["port"], check["resourcePath"], check["enableSni"]) == (
                "HTTPS",
                host,
                443,
                "/ready",
                True,
            )
        else:  # the gateway's status port on the NLB, without SNI
            assert (check["type"], check["fqdn"], check["port"], check["resourcePath"]) == (
                "HTTP",
                colour.address,
                15021,
                "/healthz/ready",
            )
            assert "enableSni" not in check
        # the cell cluster's own health host resolves to its NLB either way (a name the route's check needs)
        own = records[(RECORD, f"models-{colour.cluster}-health-host")].inputs
        assert own["records"] == [colour.address]
    detection = 30 * 3 + (8 if served else 0)
    assert outputs["detection_seconds"] == detection
    health = outputs["records"][0]["healthCheck"]
    assert (health["mechanism"], health["port"], health["detectionSeconds"]) == (
        ("health-route", 443, detection) if served else ("endpoint", 15021, detection)
    )


@pytest.mark.parametrize("served", [True, False])
def test_cloud_dns_colours_probe_the_health_route_only_while_every_cell_serves_it(served):
    ingresses = tuple(dataclasses.replace(i, role="active") for i in gcp_ingresses("active", "active"))
    records, outputs = plan("gcp", traffic(*ingresses, routing="weighted", cells_health_route=served))
    check = gcp_health_check(records).inputs
    if served:
        assert check["httpsHealthCheck"] == {"port": 443, "requestPath": "/ready", "host": "turnout-health." + DOMAIN}
        assert "httpHealthCheck" not in check
    else:
        assert check["httpHealthCheck"] == {"port": 15021, "requestPath": "/healthz/ready"}
        assert "httpsHealthCheck" not in check
    assert outputs["detection_seconds"] == 30 * 3 + (8 if served else 0)


@pytest.mark.parametrize("served", [True, False])
def test_traffic_manager_colours_probe_the_health_route_only_while_every_cell_serves_it(served):
    args = traffic(*azure_ingresses("active", "active"), routing="weighted", cells_health_route=served)
    records, outputs = plan("azure", args)
    (profile,) = of_type(records, PROFILE).values()
    monitor = profile.inputs["monitorConfig"]
    expected = ("HTTPS", 443, "/ready") if served else ("HTTP", 15021, "/healthz/ready")
    assert (monitor["protocol"], monitor["port"], monitor["path"]) == expected
    assert ("customHeaders" in monitor) is served
    assert outputs["detection_seconds"] == 30 * 3 + (8 if served else 0)


# GCP internal gateways: Cloud DNS over the regions' internal load balancers, in a private zone.

GCP_NETWORKS = {
    region: f"https://www.googleapis.com/compute/v1/projects/acme-prod/global/networks/prod-{region}"
    for region in ("us-east4", "europe-west1", "asia-east1")
}


def gcp_internal(*roles: str, **overrides) -> GlobalTrafficArgs:
    ingresses = tuple(
        dataclasses.replace(i, network_id=GCP_NETWORKS[i.region]) for i in gcp_ingresses(*roles, weights=(1, 1, 1))
    )
    return traffic(*ingresses, exposure="internal", failure_threshold=2, **overrides)


def test_cloud_dns_internal_fails_over_between_internal_load_balancers_in_a_private_zone():
    records, outputs = plan("gcp", gcp_internal("primary", "secondary", "secondary"))
    assert not of_type(records, GCP_HEALTH_CHECK)  # Cloud DNS reads each load balancer's own (GKE's)
    (zone,) = of_type(records, "gcp:dns/managedZone:ManagedZone").values()
    assert (zone.inputs["name"], zone.inputs["visibility"]) == ("models-example-com-private", "private")
    assert zone.inputs["privateVisibilityConfig"] == {
        "networks": [{"networkUrl": network} for network in GCP_NETWORKS.values()]
    }
    peerings = [p.inputs for p in of_type(records, "gcp:compute/networkPeering:NetworkPeering").values()]
    assert len(peerings) == 6  # every pair of the three networks, both ways
    assert {(p["network"], p["peerNetwork"]) for p in peerings} == {
        (a, b) for a in GCP_NETWORKS.values() for b in GCP_NETWORKS.values() if a != b
    }
    (record_set,) = of_type(records, RECORD_SET).values()
    assert record_set.inputs["managedZone"] == "models-example-com-private"
    policy = record_set.inputs["routingPolicy"]
    assert "healthCheck" not in policy
    assert policy["primaryBackup"]["primary"] == {
        "internalLoadBalancers": [
            {
                "loadBalancerType": "regionalL4ilb",
                "ipAddress": "34.1.2.3",
                "ipProtocol": "tcp",
                "port": "443",
                "networkUrl": GCP_NETWORKS["us-east4"],
                "project": "acme-prod",
                "region": "us-east4",
            }
        ]
    }
    assert [geo["location"] for geo in policy["primaryBackup"]["backupGeos"]] == ["europe-west1", "asia-east1"]
    assert outputs["detection_seconds"] == 6
    assert outputs["records"][0]["healthCheck"]["mechanism"] == "load-balancer"


def test_cloud_dns_internal_needs_every_regions_network():
    args = traffic(*gcp_ingresses("primary", "secondary"), exposure="internal", failure_threshold=2)
    with pytest.raises(ValueError, match="network"):
        plan("gcp", args)


EXTERNAL_TARGETS = {"external_endpoints": ["34.1.2.3"]}
INTERNAL_TARGETS = {
    "internal_load_balancers": [
        {"load_balancer_type": "regionalL4ilb", "ip_address": "10.0.0.9", "region": "us-east4", "port": "443"}
    ]
}


@pytest.mark.parametrize(
    ("policy", "visibility", "message"),
    [
        (
            {"primary_backup": {"primary": INTERNAL_TARGETS, "backup_geos": []}, "health_check": "hc"},
            "private",
            "health_check is for external endpoints",
        ),
        ({"wrrs": [{"weight": 1, "health_checked_targets": INTERNAL_TARGETS}]}, "public", "need a private zone"),
        (
            {
                "geos": [
                    {"location": "us-east4", "health_checked_targets": INTERNAL_TARGETS},
                    {"location": "asia-east1", "health_checked_targets": EXTERNAL_TARGETS},
                ],
                "health_check": "hc",
            },
            "private",
            "cannot mix",
        ),
        ({"wrrs": [{"weight": 1, "health_checked_targets": EXTERNAL_TARGETS}]}, "public", "need the policy's"),
        (
            {
                "primary_backup": {
                    "primary": {"internal_load_balancers": [{"load_balancer_type": "regionalL4ilb"}]},
                    "backup_geos": [],
                }
            },
            "private",
            "names its region",
        ),
    ],
)
def test_routing_policies_the_provider_refuses_fail_before_anything_is_created(policy, visibility, message):
    """The mocks accept any routing policy; these are the provider's rules, held offline by check_routing_policy."""
    with pytest.raises(ValueError, match=message):
        check_routing_policy(policy, visibility)


def test_the_policies_the_component_builds_pass_the_providers_rules():
    check_routing_policy(internal_routing_policy(gcp_internal("primary", "secondary")), "private")
    check_routing_policy(internal_routing_policy(gcp_internal("active", "active", routing="latency")), "private")
    check_routing_policy(routing_policy(traffic(*gcp_ingresses("primary", "secondary")), "hc"), "public")
