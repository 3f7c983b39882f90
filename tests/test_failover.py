"""`turnout failover`: the AWS runbook against moto where moto has the API (Route 53 health checks and their
status, CloudWatch alarms) and botocore's Stubber where it has not (ElastiCache Global Datastores: moto 5.2
raises NotImplementedError for DescribeGlobalReplicationGroups and FailoverGlobalReplicationGroup), with
responses shaped as the ElastiCache API reference documents them; the Stubber also checks them against
botocore's service model. A stack with an ARC Region switch plan starts it instead (Stubber too: moto 5.2 has no
`arc-region-switch`)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pulumi
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from components.cache import replication_document
from components.globaltraffic import GlobalTrafficArgs, RegionalIngress, build_global_traffic
from turnout import failover
from turnout.cli import main
from turnout.offline.mocks import stable_hash
from turnout.offline.runtime import run_function

EAST, WEST = "us-east-1", "us-west-2"
STACK = "drtest"
DATASTORE = "ldgnf-drtest-cache"  # ElastiCache prefixes the suffix it was given with its own five letters
GROUPS = {EAST: "drtest-cache-us-east-1", WEST: "drtest-cache-us-west-2"}
CLUSTERS = {EAST: "drtest-us-east-1", WEST: "drtest-us-west-2"}
READ_PREFIXES = ("Get", "Describe", "List")
STACK_FILE = """\
config:
  turnout:tier: prod
  turnout:platform:
    cloud: aws
    regions: [us-east-1, us-west-2]
    serving:
      gateway: {exposure: external, domain: models.acme.example, certificate: models-acme-tls}
  turnout:dr: {rpo: 30s, rto: 30m}
  turnout:endpoints:
    fraud-score:
      versions:
        v1: {image: "ghcr.io/acme/fraud-score:1.4.2", replicas: {min: 3, max: 20}}
        v2: {image: "ghcr.io/acme/fraud-score:1.5.0", replicas: {min: 2, max: 2}}
      strategy: {type: canary, stable: v1, canary: v2, weight: 10}
"""


# Fakes: AWS under moto, a stubbed ElastiCache, a clock that sleeps instantly.


@pytest.fixture
def aws(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": EAST,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


class Clients:
    """A ClientFactory: moto-backed clients, a stubbed ElastiCache in the target region, and every call recorded."""

    def __init__(self, elasticache_region: str = WEST) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.made: dict[tuple[str, str], object] = {}
        self.elasticache = self("elasticache", elasticache_region)
        self.stubber = Stubber(self.elasticache)
        self.stubber.activate()

    def __call__(self, service: str, region: str):
        if (service, region) not in self.made:
            client = boto3.client(service, region_name=region)
            # before-parameter-build reaches every handler (before-call stops at the Stubber's answer).
            client.meta.events.register(
                "before-parameter-build.*.*",
                lambda model, service=service, region=region, **_: self.calls.append((service, region, model.name)),
            )
            self.made[service, region] = client
        return self.made[service, region]

    def operations(self) -> list[str]:
        return [operation for _, _, operation in self.calls]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def datastore(primary: str, status: str = "available") -> dict:
    """DescribeGlobalReplicationGroups' response (API reference: GlobalReplicationGroup and its Members)."""
    return {
        "GlobalReplicationGroups": [
            {
                "GlobalReplicationGroupId": DATASTORE,
                "GlobalReplicationGroupDescription": "turnout cache drtest-cache",
                "Status": status,
                "CacheNodeType": "cache.r7g.large",
                "Engine": "redis",
                "EngineVersion": "7.1",
                "Members": [
                    {
                        "ReplicationGroupId": GROUPS[region],
                        "ReplicationGroupRegion": region,
                        "Role": "PRIMARY" if region == primary else "SECONDARY",
                        "AutomaticFailover": "enabled",
                        "Status": "associated",
                    }
                    for region in (EAST, WEST)
                ],
                "ClusterEnabled": False,
                "AuthTokenEnabled": True,
                "TransitEncryptionEnabled": True,
                "AtRestEncryptionEnabled": True,
                "ARN": f"arn:aws:elasticache::123456789012:globalreplicationgroup:{DATASTORE}",
            }
        ]
    }


DESCRIBE = {"GlobalReplicationGroupId": DATASTORE, "ShowMemberInfo": True}
FAILOVER = {"GlobalReplicationGroupId": DATASTORE, "PrimaryRegion": WEST, "PrimaryReplicationGroupId": GROUPS[WEST]}


def failover_response(primary: str = EAST) -> dict:
    """FailoverGlobalReplicationGroup's response: the GlobalReplicationGroup, now modifying."""
    return {"GlobalReplicationGroup": datastore(primary, "modifying")["GlobalReplicationGroups"][0]}


def http_checks() -> dict[str, str]:
    """A Route 53 HTTP health check per region (what an external gateway gets), by region."""
    route53 = boto3.client("route53", region_name=EAST)
    return {
        region: route53.create_health_check(
            CallerReference=str(uuid.uuid4()),
            HealthCheckConfig={
                "Type": "HTTP",
                "FullyQualifiedDomainName": f"gw.{region}.elb.amazonaws.com",
                "Port": 15021,
                "ResourcePath": "/healthz/ready",
                "RequestInterval": 30,
                "FailureThreshold": 3,
            },
        )["HealthCheck"]["Id"]
        for region in (EAST, WEST)
    }


def alarm_checks(states: dict[str, str]) -> dict[str, str]:
    """A CloudWatch alarm per region in `states` and a Route 53 check on it (an internal gateway), by region."""
    route53 = boto3.client("route53", region_name=EAST)
    ids = {}
    for region, state in states.items():
        cloudwatch = boto3.client("cloudwatch", region_name=region)
        name = f"models-{CLUSTERS[region]}-healthy-hosts"
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="AWS/NetworkELB",
            MetricName="HealthyHostCount",
            Statistic="Minimum",
            Period=60,
            EvaluationPeriods=2,
            Threshold=1,
            ComparisonOperator="LessThanThreshold",
            TreatMissingData="breaching",
        )
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")
        ids[region] = route53.create_health_check(
            CallerReference=str(uuid.uuid4()),
            HealthCheckConfig={
                "Type": "CLOUDWATCH_METRIC",
                "AlarmIdentifier": {"Region": region, "Name": name},
                "InsufficientDataHealthStatus": "Unhealthy",
            },
        )["HealthCheck"]["Id"]
    return ids


def cache_output(*, with_ids: bool = True) -> dict:
    """The `cache` output (`cache_replication`): components/cache's replication document, with the Global Datastore
    ids the runbook asks it to add."""
    document = replication_document(
        cloud="aws",
        engine="redis",
        primary_region=EAST,
        nodes_per_region=3,
        zone_redundant=True,
        replica_regions=(WEST,),
        cross_region="elasticache-global-datastore",
        backup=None,
    )
    if with_ids:
        document["crossRegion"]["globalReplicationGroupId"] = DATASTORE
        for region, copy in document["regions"].items():
            copy["replicationGroupId"] = GROUPS[region]
    return document


def stack_outputs(checks: dict[str, str], *, alarms: bool = False, cache: bool = True, tier="pilot-light") -> dict:
    """A deployed DR stack's outputs, shaped as stacks/__main__.py exports them."""
    standby = {"pilot-light": "zero", "warm-standby": "reduced", "active-active": "full"}.get(tier, "none")
    records = [
        {
            "cluster": CLUSTERS[region],
            "region": region,
            "role": role,
            "failover": role.upper(),
            "setIdentifier": CLUSTERS[region],
            "healthCheck": {"mechanism": "cloudwatch-alarm" if alarms else "endpoint"},
            "healthCheckId": checks.get(region),
            "healthCheckAlarm": {"name": f"models-{CLUSTERS[region]}-healthy-hosts", "region": region}
            if alarms
            else None,
        }
        for region, role in ((EAST, "primary"), (WEST, "secondary"))
    ]
    routes = [{"match": None, "to": [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}], "mirror": []}]
    outputs = {
        "tier": "prod",
        "clusters": [{"name": CLUSTERS[r], "cloud": "aws", "region": r} for r in (EAST, WEST)],
        "dr": {
            "tier": tier,
            "regions": [EAST, WEST],
            "estimatedRtoSeconds": 930,
            "target": {"rpoSeconds": 30, "rtoSeconds": 1800},
            "settings": {
                "primaryRegion": EAST,
                "standbyRegions": [WEST],
                "standby": standby,
                "cacheReplicas": [WEST] if cache else [],
            },
        },
        "globalTraffic": {"records": records},
        "traffic": {
            "endpoints": [
                {"name": "fraud-score", "cluster": CLUSTERS[r], "backend": "istio", "routes": routes}
                for r in (EAST, WEST)
            ]
        },
    }
    if cache:
        outputs["cache"] = cache_output()
    return outputs


def runbook(outputs: dict, clients: Clients, *, region: str = WEST, lines: list | None = None, **options):
    clock = Clock()
    return failover.Failover(
        failover.read_facts(STACK, outputs),
        region,
        clients,
        emit=(lines if lines is not None else []).append,
        clock=clock,
        sleep=clock.sleep,
        **options,
    )


def cli(capsys, tmp_path: Path, outputs: dict, *args: str) -> tuple[int, str, str]:
    file = tmp_path / "outputs.json"
    file.write_text(json.dumps(outputs))
    status = main(["failover", STACK, "--outputs", str(file), "--project", str(tmp_path), *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# What the global traffic component exports for the runbook.


def exported_records(exposure: str) -> list[dict]:
    ingresses = tuple(
        RegionalIngress(cluster=CLUSTERS[r], region=r, address=f"gw.{r}.elb.example", role=role)
        for r, role in ((EAST, "primary"), (WEST, "secondary"))
    )
    args = GlobalTrafficArgs(name="models", domain="models.example.com", ingresses=ingresses, exposure=exposure)
    run = run_function(lambda: pulumi.export("records", build_global_traffic("aws", args).records))
    return run.stack_outputs["records"]


@pytest.mark.parametrize("exposure", ["external", "internal"])
def test_route53_records_export_their_health_check_id_and_alarm(exposure):
    for record in exported_records(exposure):
        name = f"models-{record['cluster']}-health"
        assert record["healthCheckId"] == f"{name}-{stable_hash('aws:route53/healthCheck:HealthCheck', name)}"
        alarm = {"name": f"models-{record['cluster']}-healthy-hosts", "region": record["region"]}
        assert record["healthCheckAlarm"] == (alarm if exposure == "internal" else None)


# The runbook.


def test_dry_run_makes_only_read_calls_and_prints_the_promotion(aws):
    clients = Clients()
    clients.stubber.add_response("describe_global_replication_groups", datastore(EAST), DESCRIBE)
    lines: list[str] = []
    runbook(stack_outputs(http_checks()), clients, lines=lines, dry_run=True).run()
    clients.stubber.assert_no_pending_responses()
    assert clients.operations() == ["DescribeGlobalReplicationGroups", "GetHealthCheckStatus", "GetHealthCheckStatus"]
    assert all(operation.startswith(READ_PREFIXES) for operation in clients.operations())
    text = "\n".join(lines)
    assert (
        f"would call elasticache.failover_global_replication_group(GlobalReplicationGroupId='{DATASTORE}', "
        f"PrimaryRegion='{WEST}', PrimaryReplicationGroupId='{GROUPS[WEST]}') in {WEST}"
    ) in text
    assert "dry run, nothing changed" in text
    assert f"primaryRegion: {WEST}" in text, "the dry run shows the stack-file change too"
    # moto's HTTP checks always pass: the primary still looks healthy, which is a warning, not a failure.
    assert f"warning: the current primary {EAST} still looks healthy" in text
    assert "--inverted" in text


def test_promotion_calls_failover_in_the_target_region_and_waits_until_primary(aws):
    clients = Clients()
    stub = clients.stubber
    stub.add_response("describe_global_replication_groups", datastore(EAST), DESCRIBE)
    stub.add_response("failover_global_replication_group", failover_response(), FAILOVER)
    stub.add_response("describe_global_replication_groups", datastore(EAST, "modifying"), DESCRIBE)
    stub.add_response("describe_global_replication_groups", datastore(WEST, "modifying"), DESCRIBE)
    stub.add_response("describe_global_replication_groups", datastore(WEST), DESCRIBE)
    lines: list[str] = []
    run = runbook(stack_outputs(alarm_checks({EAST: "ALARM", WEST: "OK"}), alarms=True), clients, lines=lines)
    results = run.run()
    stub.assert_no_pending_responses()
    assert ("elasticache", WEST, "FailoverGlobalReplicationGroup") in clients.calls
    assert run.promotion_seconds == 20.0  # two polls of 10 s on the fake clock
    assert [r.name for r in results] == ["target", "health checks", "cache promotion", "standby capacity"]
    health = next(r for r in results if r.name == "health checks")
    assert health.outcome == f"{EAST} unhealthy, {WEST} healthy" and not health.warnings
    assert ("cloudwatch", EAST, "DescribeAlarms") in clients.calls and (
        "cloudwatch",
        WEST,
        "DescribeAlarms",
    ) in clients.calls
    text = "\n".join(lines)
    assert f"{GROUPS[WEST]} in {WEST} is primary after 20.0s (dr.json estimates 1m)" in text
    assert "cache promotion measured 20.0s against dr.json's 1m term" in text
    assert "the stack's estimated RTO is 15m30s, target 30m" in text
    # Without this the next refresh sees the datastore's primary move (ForceNew) and workloads keep writing east.
    assert f"set turnout:cache: {{..., primaryRegion: {WEST}}}" in text
    assert "environments/Pulumi.drtest.yaml" in text and "pulumi refresh --stack drtest" in text


def test_failing_back_tells_operators_the_first_region_is_the_default_again(aws):
    back = runbook(stack_outputs({}), Clients(elasticache_region=EAST), region=EAST, dry_run=True)
    back.clients.stubber.add_response("describe_global_replication_groups", datastore(WEST), DESCRIBE)
    lines = back.stack_file_change()
    assert f"primaryRegion: {EAST}}}" in lines[0] and "the stack's first region is the default" in lines[0]


def test_promotion_that_does_not_finish_in_time_fails_the_step(aws):
    clients = Clients()
    stub = clients.stubber
    stub.add_response("describe_global_replication_groups", datastore(EAST), DESCRIBE)
    stub.add_response("failover_global_replication_group", failover_response(), FAILOVER)
    for _ in range(4):  # at 0, 10, 20 and 30 s; the deadline is 30 s
        stub.add_response("describe_global_replication_groups", datastore(EAST, "modifying"), DESCRIBE)
    run = runbook(stack_outputs(http_checks()), clients, timeout=30)
    with pytest.raises(failover.FailoverStepError, match="timed out after 30s: .* is modifying, .* is secondary"):
        run.run()
    stub.assert_no_pending_responses()
    assert run.results[-1].name == "cache promotion" and run.results[-1].failed


def test_cli_timeout_exits_1_without_traceback(aws, capsys, tmp_path, monkeypatch):
    clients = Clients()
    clients.stubber.add_response("describe_global_replication_groups", datastore(EAST), DESCRIBE)
    clients.stubber.add_response("failover_global_replication_group", failover_response(), FAILOVER)
    clients.stubber.add_response("describe_global_replication_groups", datastore(EAST, "modifying"), DESCRIBE)
    monkeypatch.setattr(failover, "boto3_clients", lambda: clients)
    status, out, err = cli(capsys, tmp_path, stack_outputs(http_checks()), "--to", WEST, "--timeout", "0")
    assert status == 1
    assert "cache promotion timed out after 0s" in err and "describe-global-replication-groups" in err
    assert "Traceback" not in err + out


def test_cli_happy_path_exits_0(aws, capsys, tmp_path, monkeypatch):
    clients = Clients()
    clients.stubber.add_response("describe_global_replication_groups", datastore(EAST), DESCRIBE)
    clients.stubber.add_response("failover_global_replication_group", failover_response(), FAILOVER)
    clients.stubber.add_response("describe_global_replication_groups", datastore(WEST), DESCRIBE)
    monkeypatch.setattr(failover, "boto3_clients", lambda: clients)
    status, out, err = cli(capsys, tmp_path, stack_outputs(http_checks()), "--to", WEST)
    assert (status, err) == (0, "")
    assert [line.split(" (t+")[0] for line in out.splitlines() if line.startswith("[")] == [
        "[1/5] target",
        "[2/5] health checks",
        "[3/5] cache promotion",
        "[4/5] standby capacity",
        "[5/5] summary",
    ]


def test_a_failed_aws_call_exits_1_with_its_error_code(aws, capsys, tmp_path, monkeypatch):
    clients = Clients()
    clients.stubber.add_response("describe_global_replication_groups", datastore(EAST), DESCRIBE)
    clients.stubber.add_client_error(
        "failover_global_replication_group",
        service_error_code="InvalidGlobalReplicationGroupState",
        service_message="The Global datastore is not available or in primary-only state.",
        http_status_code=400,
        expected_params=FAILOVER,
    )
    monkeypatch.setattr(failover, "boto3_clients", lambda: clients)
    status, out, err = cli(capsys, tmp_path, stack_outputs(http_checks()), "--to", WEST)
    assert status == 1
    assert "InvalidGlobalReplicationGroupState: The Global datastore is not available" in err
    assert f"disassociate-global-replication-group --global-replication-group-id {DATASTORE}" in err
    assert "Traceback" not in err + out


def test_unknown_region_exits_2_naming_it_and_the_stacks_regions(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(failover, "boto3_clients", lambda: lambda *_: pytest.fail("no AWS call for a bad region"))
    status, out, err = cli(capsys, tmp_path, stack_outputs({}), "--to", "eu-west-1")
    assert status == 2
    assert err.strip() == f"turnout: --to eu-west-1: not a region of stack 'drtest'; its regions: {EAST}, {WEST}"


def test_the_live_primary_decides_what_is_already_primary(aws, capsys, tmp_path, monkeypatch):
    """After a failover to us-west-2 the Global Datastore's primary is there: failing back to us-east-1 is allowed."""
    clients = Clients(elasticache_region=WEST)
    clients.stubber.add_response("describe_global_replication_groups", datastore(WEST), DESCRIBE)
    monkeypatch.setattr(failover, "boto3_clients", lambda: clients)
    status, _, err = cli(capsys, tmp_path, stack_outputs({}), "--to", WEST, "--dry-run")
    assert status == 2
    assert f"--to {WEST}: already the primary of stack 'drtest'; fail over to one of: {EAST}" in err
    back = runbook(stack_outputs({}), Clients(elasticache_region=EAST), region=EAST, dry_run=True)
    back.clients.stubber.add_response("describe_global_replication_groups", datastore(WEST), DESCRIBE)
    assert back.run()[0].outcome == f"{EAST} takes over from {WEST}: the stack's configured primary (failing back)"


def test_outputs_come_from_turnout_plans_inventory(tmp_path):
    outputs = stack_outputs({"us-east-1": "a", "us-west-2": "b"})
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"stack": STACK, "resources": [], "outputs": outputs}))
    assert failover.load_outputs(STACK, inventory) == outputs
    assert failover.load_outputs(f"acme/turnout/{STACK}", inventory) == outputs
    with pytest.raises(failover.FailoverUsageError, match="the plan of stack 'drtest', not 'other'"):
        failover.load_outputs("other", inventory)


def test_a_planned_dr_stack_dry_runs_its_plan_or_without_one_the_stack_files_replicas(aws, project, tmp_path, capsys):
    (project / "environments" / f"Pulumi.{STACK}.yaml").write_text(STACK_FILE)
    assert main(["plan", STACK, "--project", str(project), "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    inventory = tmp_path / STACK / "inventory.json"
    args = ["failover", STACK, "--to", WEST, "--dry-run", "--project", str(project), "--outputs"]
    assert main([*args, str(inventory)]) == 0
    out = capsys.readouterr().out
    plan = json.loads(inventory.read_text())["outputs"]["regionSwitch"]
    assert (
        f"would call arc-region-switch.start_plan_execution(planArn='{plan['planArn']}', targetRegion='{WEST}', " in out
    )
    assert "kubectl" not in out
    # A stack without a plan (deployed by an earlier turnout, or over three regions): the runbook scales by hand.
    outputs = json.loads(inventory.read_text())["outputs"]
    del outputs["regionSwitch"]
    (tmp_path / "no-plan.json").write_text(json.dumps(outputs))
    status = main([*args, str(tmp_path / "no-plan.json")])
    out = capsys.readouterr().out
    assert status == 0
    # The plan's health check ids are the mocks': moto does not know them, so health is unknown, not fatal.
    assert f"{EAST}        primary    unknown   route53.get_health_check_status({STACK}-models-" in out
    assert "skipped: the stack has no cache" in out
    kubectl = f"kubectl --context {CLUSTERS[WEST]} -n fraud-score"
    assert f"aws eks update-kubeconfig --name {CLUSTERS[WEST]} --region {WEST} --alias {CLUSTERS[WEST]}" in out
    assert f"{kubectl} scale deployment fraud-score-v1 --replicas=3" in out
    assert f"{kubectl} autoscale deployment fraud-score-v1 --min=3 --max=20 --cpu-percent=70" in out
    assert f"{kubectl} scale deployment fraud-score-v2 --replicas=2" in out
    assert "autoscale deployment fraud-score-v2" not in out  # min == max: the primary runs no HPA for it


# A stack with an ARC Region switch plan: the plan does steps 3 and 4 (botocore's Stubber: moto has no ARC).

PLAN_ARN = "arn:aws:arc-region-switch::123456789012:plan/drtest-failover:a1b2c3"


def with_plan(outputs: dict, approach: str = "activePassive") -> dict:
    steps = ["promote-cache", "scale-models", "route-traffic"] if approach == "activePassive" else ["promote-cache"]
    return {
        **outputs,
        "regionSwitch": {
            "planArn": PLAN_ARN,
            "name": "drtest-failover",
            "recoveryApproach": approach,
            "primaryRegion": EAST,
            "regions": [EAST, WEST],
            "steps": steps,
            "trigger": False,
        },
    }


def arc_stub(clients: Clients, region: str = WEST) -> Stubber:
    """An ARC Region switch client in `region`, stubbed, in the factory's place."""
    client = boto3.client("arc-region-switch", region_name=region)
    clients.made["arc-region-switch", region] = client
    client.meta.events.register(
        "before-parameter-build.*.*", lambda model, **_: clients.calls.append(("arc-region-switch", region, model.name))
    )
    stubber = Stubber(client)
    stubber.activate()
    return stubber


def execution(state: str, *steps: tuple[str, str], recovery: str | None = None) -> dict:
    """GetPlanExecution's response (API reference: GetPlanExecution)."""
    response = {
        "planArn": PLAN_ARN,
        "executionId": "exec-1",
        "startTime": datetime(2026, 1, 1, tzinfo=UTC),
        "mode": "graceful",
        "executionState": state,
        "executionAction": "activate",
        "executionRegion": WEST,
        "stepStates": [{"name": name, "status": status} for name, status in steps],
    }
    if recovery:
        response["actualRecoveryTime"] = recovery
    return response


START = {
    "planArn": PLAN_ARN,
    "targetRegion": WEST,
    "action": "activate",
    "mode": "graceful",
    "comment": f"turnout failover --to {WEST}",
}
STARTED = {"executionId": "exec-1", "plan": PLAN_ARN, "planVersion": "1", "activateRegion": WEST}
GET = {"planArn": PLAN_ARN, "executionId": "exec-1"}


def test_a_stack_with_a_plan_starts_it_in_the_target_region_and_follows_its_steps(aws):
    clients = Clients()
    clients.stubber.add_response("describe_global_replication_groups", datastore(EAST), DESCRIBE)
    arc = arc_stub(clients)
    arc.add_response("start_plan_execution", STARTED, START)
    arc.add_response("get_plan_execution", execution("inProgress", ("promote-and-scale", "running")), GET)
    arc.add_response("get_plan_execution", execution("inProgress", ("promote-and-scale", "running")), GET)
    done = execution("completed", ("promote-and-scale", "completed"), ("route-traffic", "completed"), recovery="PT2M")
    arc.add_response("get_plan_execution", done, GET)
    lines: list[str] = []
    results = runbook(with_plan(stack_outputs(http_checks())), clients, lines=lines).run()
    arc.assert_no_pending_responses()
    clients.stubber.assert_no_pending_responses()  # no FailoverGlobalReplicationGroup: the plan's Lambda does it
    assert [r.name for r in results] == ["target", "health checks", "region switch"]
    assert results[-1].outcome.startswith(f"plan drtest-failover completed in 20.0s (activate {WEST})")
    assert "ARC measured a recovery time of PT2M" in results[-1].outcome
    text = "\n".join(lines)
    assert "inProgress; promote-and-scale running" in text and "route-traffic completed" in text
    assert text.count("inProgress; promote-and-scale running") == 1  # a state is shown when it changes
    assert f"primaryRegion: {WEST}" in text  # the stack file must still say where the cache's primary is
    assert f"{EAST} still looks healthy: the plan's Route 53 step takes it out of DNS" in text
    assert ("arc-region-switch", WEST, "StartPlanExecution") in clients.calls


def test_a_dry_run_with_a_plan_only_reads(aws):
    clients = Clients()
    clients.stubber.add_response("describe_global_replication_groups", datastore(EAST), DESCRIBE)
    arc_stub(clients)
    lines: list[str] = []
    runbook(with_plan(stack_outputs(http_checks())), clients, lines=lines, dry_run=True).run()
    assert all(operation.startswith(READ_PREFIXES) for operation in clients.operations())
    assert any("would call arc-region-switch.start_plan_execution(" in line for line in lines)


def test_active_active_shifts_away_from_the_other_region(aws):
    clients = Clients()
    clients.stubber.add_response("describe_global_replication_groups", datastore(EAST), DESCRIBE)
    arc = arc_stub(clients)
    arc.add_response("start_plan_execution", STARTED, {**START, "targetRegion": EAST, "action": "deactivate"})
    arc.add_response("get_plan_execution", execution("completed"), GET)
    outputs = with_plan(stack_outputs(http_checks(), tier="active-active"), approach="activeActive")
    assert (
        runbook(outputs, clients)
        .run()[-1]
        .outcome.startswith(f"plan drtest-failover completed in 0.0s (deactivate {EAST})")
    )


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("pausedByFailedStep", "is pausedByFailedStep and waits for someone in the ARC Region switch console"),
        ("failed", "ended failed: failed; promote-cache failed; see aws arc-region-switch get-plan-execution"),
    ],
)
def test_a_plan_that_stops_exits_1_naming_its_state_and_step(aws, capsys, tmp_path, monkeypatch, state, message):
    clients = Clients()
    clients.stubber.add_response("describe_global_replication_groups", datastore(EAST), DESCRIBE)
    arc = arc_stub(clients)
    arc.add_response("start_plan_execution", STARTED, START)
    arc.add_response("get_plan_execution", execution(state, ("promote-cache", "failed")), GET)
    monkeypatch.setattr(failover, "boto3_clients", lambda: clients)
    status, out, err = cli(capsys, tmp_path, with_plan(stack_outputs(http_checks())), "--to", WEST)
    assert status == 1 and message in err and "Traceback" not in err + out


def test_a_refused_start_exits_1_with_arcs_error(aws, capsys, tmp_path, monkeypatch):
    clients = Clients()
    clients.stubber.add_response("describe_global_replication_groups", datastore(EAST), DESCRIBE)
    arc = arc_stub(clients)
    arc.add_client_error(
        "start_plan_execution", service_error_code="IllegalStateException", service_message="an execution is running"
    )
    monkeypatch.setattr(failover, "boto3_clients", lambda: clients)
    status, _, err = cli(capsys, tmp_path, with_plan(stack_outputs(http_checks())), "--to", WEST)
    assert status == 1
    assert "arc-region-switch.start_plan_execution: IllegalStateException: an execution is running" in err


def test_a_plan_still_running_at_the_timeout_says_how_to_watch_it(aws):
    clients = Clients()
    clients.stubber.add_response("describe_global_replication_groups", datastore(EAST), DESCRIBE)
    arc = arc_stub(clients)
    arc.add_response("start_plan_execution", STARTED, START)
    arc.add_response("get_plan_execution", execution("inProgress"), GET)
    with pytest.raises(failover.FailoverStepError, match="still inProgress after 0s; it goes on without the runbook"):
        runbook(with_plan(stack_outputs(http_checks())), clients, timeout=0).run()


def test_a_plan_output_without_its_arn_is_refused():
    outputs = with_plan(stack_outputs({}))
    del outputs["regionSwitch"]["planArn"]
    with pytest.raises(failover.FailoverUsageError, match="output regionSwitch.planArn is missing"):
        failover.read_facts(STACK, outputs)


def test_without_the_stack_file_the_scale_up_says_which_counts_to_fill_in(aws):
    clients = Clients()
    clients.stubber.add_response("describe_global_replication_groups", datastore(EAST), DESCRIBE)
    lines: list[str] = []
    run = runbook(stack_outputs(http_checks()), clients, lines=lines, dry_run=True, endpoints_missing="no stack")
    run.run()
    scale = f"kubectl --context {CLUSTERS[WEST]} -n fraud-score scale deployment fraud-score-v1 --replicas=REPLICAS"
    assert scale in [line.strip() for line in lines]
    assert any("replica counts unknown (no stack)" in line for line in lines)


@pytest.mark.parametrize(
    ("tier", "outcome"),
    [
        ("warm-standby", "nothing to run: the standby's autoscalers grow from one pod per version by themselves"),
        ("active-active", f"nothing to run: {WEST} runs full capacity"),
    ],
)
def test_only_a_pilot_light_needs_scaling_up(aws, tier, outcome):
    clients = Clients()
    clients.stubber.add_response("describe_global_replication_groups", datastore(EAST), DESCRIBE)
    results = runbook(stack_outputs(http_checks(), tier=tier), clients, dry_run=True).run()
    assert results[-1].outcome == outcome


def test_route53_health_follows_its_checkers_majority_rule():
    """More than 18% of Route 53's checkers reporting success is healthy (GetHealthCheckStatus, stubbed)."""
    route53 = boto3.client("route53", region_name=EAST, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(route53)

    def observations(successes: int, failures: int) -> dict:
        status = ["Success: HTTP Status Code 200, OK"] * successes + ["Failure: Connection timed out."] * failures
        return {
            "HealthCheckObservations": [
                {"Region": "us-east-1", "IPAddress": f"15.177.0.{i}", "StatusReport": {"Status": s}}
                for i, s in enumerate(status)
            ]
        }

    stub.add_response("get_health_check_status", observations(2, 14), {"HealthCheckId": "east"})
    stub.add_response("get_health_check_status", observations(3, 13), {"HealthCheckId": "west"})
    outputs = stack_outputs({EAST: "east", WEST: "west"}, cache=False)
    with stub:
        run = runbook(outputs, lambda service, region: route53, dry_run=True)
        results = run.run()
    assert results[1].outcome == f"{EAST} unhealthy, {WEST} healthy"  # 2/16 = 12.5%, 3/16 = 18.75%


# What the runbook refuses, and where it reads the outputs from.


def test_a_cache_without_its_global_datastore_ids_is_refused_naming_the_outputs(capsys, tmp_path):
    outputs = stack_outputs({})
    outputs["cache"] = cache_output(with_ids=False)  # what components/cache exports today
    status, _, err = cli(capsys, tmp_path, outputs, "--to", WEST)
    assert status == 2
    assert "cache.crossRegion.globalReplicationGroupId" in err
    assert f"cache.regions.{WEST}.replicationGroupId" in err


def test_the_replication_document_may_also_come_wrapped(aws):
    outputs = stack_outputs(http_checks())
    outputs["cache"] = {"replication": outputs["cache"]}
    facts = failover.read_facts(STACK, outputs)
    assert facts.datastore == failover.GlobalDatastore(DATASTORE, GROUPS)
    del outputs["cache"]["replication"]["crossRegion"]["globalReplicationGroupId"]
    with pytest.raises(
        failover.FailoverUsageError, match=r"\(cache.replication.crossRegion.globalReplicationGroupId\)"
    ):
        failover.read_facts(STACK, outputs)


def test_a_cache_replica_without_a_cache_output_is_refused(capsys, tmp_path):
    outputs = stack_outputs({})
    del outputs["cache"]
    status, _, err = cli(capsys, tmp_path, outputs, "--to", WEST)
    assert status == 2 and "exports no `cache` output" in err


@pytest.mark.parametrize("tier", ["none", "backup-restore"])
def test_tiers_without_a_standby_are_refused(capsys, tmp_path, tier):
    status, _, err = cli(capsys, tmp_path, stack_outputs({}, tier=tier), "--to", WEST)
    assert status == 2 and f"DR tier {tier!r}, which keeps no standby" in err


def test_missing_pulumi_cli_says_so_and_suggests_outputs(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    status = main(["failover", STACK, "--to", WEST, "--project", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2
    assert "the Pulumi CLI is not on PATH" in err and "--outputs FILE" in err and "Traceback" not in err


def test_outputs_are_read_with_the_pulumi_cli(tmp_path):
    seen = {}

    def run(command, **options):
        seen.update(command=command, cwd=options["cwd"])
        return _Done(0, json.dumps({"dr": {}}), "")

    assert failover.load_outputs(STACK, project_dir=tmp_path, run=run) == {"dr": {}}
    assert seen == {
        "command": ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", STACK],
        "cwd": tmp_path,
    }
    failing = lambda command, **_: _Done(255, "", "error: no stack named 'drtest' found\n")  # noqa: E731
    with pytest.raises(failover.FailoverUsageError, match="failed: error: no stack named 'drtest' found"):
        failover.load_outputs(STACK, run=failing)


class _Done:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.mark.parametrize("value", ["5x", "-3", "soon"])
def test_a_bad_timeout_is_a_usage_error(capsys, value):
    with pytest.raises(SystemExit) as exited:
        main(["failover", STACK, "--to", WEST, "--timeout", value])
    assert exited.value.code == 2
    assert "--timeout" in capsys.readouterr().err


def test_the_bundled_prod_aws_plan_gives_the_runbook_every_id_it_needs(tmp_path):
    """prod-aws is a warm standby with a Global Datastore: its planned outputs name the datastore and each
    region's replication group, and each region's health check."""
    from turnout.cli import main as cli
    from turnout.failover import load_outputs, read_facts

    assert cli(["plan", "prod-aws", "--out", str(tmp_path)]) == 0
    facts = read_facts("prod-aws", load_outputs("prod-aws", tmp_path / "prod-aws" / "inventory.json"))
    assert facts.tier == "warm-standby"
    assert facts.datastore is not None and facts.datastore.id.endswith("-prod-aws-cache")
    assert facts.datastore.members == {"us-east-1": "prod-aws-cache-us-east-1", "us-west-2": "prod-aws-cache-us-west-2"}
    assert {check.region for check in facts.checks} == {"us-east-1", "us-west-2"}
    assert all(check.health_check_id for check in facts.checks)


def test_an_azure_stack_stops_before_any_call_and_never_promotes_its_cache():
    """Azure Managed Redis active geo-replication: every member takes writes, so the runbook has nothing to promote
    on Azure and says why (with what a pilot light still needs) instead of reaching for any cloud API."""
    outputs = stack_outputs({EAST: "hc-east", WEST: "hc-west"})
    outputs["clusters"] = [{**cluster, "cloud": "azure"} for cluster in outputs["clusters"]]
    with pytest.raises(failover.FailoverUsageError) as caught:
        failover.read_facts(STACK, outputs)
    message = str(caught.value)
    assert "every member already takes writes, so nothing is promoted" in message
    assert "kubectl" in message and "Traffic Manager moves traffic by itself" in message
    outputs["clusters"] = [{**cluster, "cloud": "gcp"} for cluster in outputs["clusters"]]
    with pytest.raises(failover.FailoverUsageError, match="runs on gcp; failover is AWS only"):
        failover.read_facts(STACK, outputs)
