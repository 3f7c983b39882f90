"""The ARC Region switch plan of an AWS DR stack (components/dr/arc.py): its workflows and steps, the execution role's
least privilege, the promotion Lambda's, the trigger and its alarms, the records that follow the plan, and the
guard that keeps the plan's arguments to what the provider takes. Pure parts without Pulumi; the rest from offline
plans of real stacks."""

from __future__ import annotations

import json
import shutil

import pytest
from pulumi_aws.arcregionswitch import _inputs as arc_inputs

from components.dr import arc
from tests.conftest import REPO, load, write_stack
from turnout import dr
from turnout.cli import main

ENDPOINTS = {
    "fraud": {
        "versions": {
            "v1": {"image": "ghcr.io/acme/fraud:1.0.0", "replicas": {"min": 3, "max": 12}},
            "v2": {"image": "ghcr.io/acme/fraud:1.1.0", "replicas": {"min": 2, "max": 12}},
        },
        "strategy": {"type": "canary", "stable": "v1", "canary": "v2", "weight": 10},
    },
    "ranker": {
        "versions": {"v7": {"image": "ghcr.io/acme/ranker:7.0.0"}, "v8": {"image": "ghcr.io/acme/ranker:8.0.0"}},
        "strategy": {"type": "canary", "stable": "v7", "canary": "v8", "weight": 20, "progressive": {}},
    },
    "scorer": {"backend": "knative", "versions": {"v1": {"image": "ghcr.io/acme/scorer:1.0.0"}}},
}


def aws_stack(dr_target: dict, exposure: str = "external") -> dict:
    return {
        "tier": "prod",
        "platform": {
            "cloud": "aws",
            "regions": ["us-east-1", "us-west-2"],
            "serving": {"gateway": {"exposure": exposure, "domain": "models.example.com"}},
        },
        "dr": dr_target,
        "cache": {"engine": "valkey"},
        "endpoints": ENDPOINTS,
    }


STACKS = {
    # warm standby, failing over by itself
    "warm": aws_stack({"rpo": "30s", "rto": "10m", "failover": "automatic"}),
    # the target: active-active, by itself
    "active": aws_stack({"rpo": "5s", "rto": "3m", "failover": "automatic"}),
    # a pilot light behind an internal gateway, started by people
    "pilot": aws_stack({"rpo": "1m", "rto": "30m"}, exposure="internal"),
}


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    root = tmp_path_factory.mktemp("arc") / "project"
    root.mkdir()
    shutil.copy(REPO / "Pulumi.yaml", root)
    for folder in ("stacks", "policies", "environments"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name, config in STACKS.items():
        write_stack(root, name, config)
    out = root.parent / "plan"
    status = main(["plan", *STACKS, "--project", str(root), "--out", str(out)])
    assert status in (0, 1)  # the active-active target is not met: a mandatory violation in prod
    return {
        name: {
            "inventory": json.loads((out / name / "inventory.json").read_text()),
            "dr": json.loads((out / name / "dr.json").read_text()),
            "violations": [
                v["message"]
                for v in json.loads((out / name / "policy.json").read_text())["violations"]
                if v["policy"] == "dr-target-achievable"
            ],
        }
        for name in STACKS
    }


def resources(plan: dict, type_: str) -> list[dict]:
    return [r for r in plan["inventory"]["resources"] if r["type"] == type_]


def one(plan: dict, type_: str, name_part: str = "") -> dict:
    (found,) = [r for r in resources(plan, type_) if name_part in r["name"]]
    return found["inputs"]


def blocks(steps: list[dict]) -> list:
    """Execution block types in order, a Parallel block as the list of its own."""
    return [
        [s["executionBlockType"] for s in step["parallelConfigs"][0]["steps"]]
        if step["executionBlockType"] == "Parallel"
        else step["executionBlockType"]
        for step in steps
    ]


def policy(plan: dict, name_part: str) -> dict:
    return json.loads(one(plan, "aws:iam/rolePolicy:RolePolicy", name_part)["policy"])


# Workflows and steps.


def test_an_active_passive_plan_promotes_and_scales_side_by_side_then_moves_dns(planned):
    plan = one(planned["warm"], "aws:arcregionswitch/plan:Plan")
    assert (plan["recoveryApproach"], plan["regions"], plan["primaryRegion"]) == (
        "activePassive",
        ["us-east-1", "us-west-2"],
        "us-east-1",
    )
    assert plan["recoveryTimeObjectiveMinutes"] == 10
    (workflow,) = plan["workflows"]
    assert workflow["workflowTargetAction"] == "activate" and "workflowTargetRegion" not in workflow  # either way
    assert blocks(workflow["steps"]) == [["CustomActionLambda", "EKSResourceScaling"], "Route53HealthCheck"]


def test_the_promotion_step_runs_turnouts_lambda_of_the_activating_region(planned):
    plan = one(planned["warm"], "aws:arcregionswitch/plan:Plan")
    promote = plan["workflows"][0]["steps"][0]["parallelConfigs"][0]["steps"][0]
    (config,) = promote["customActionLambdaConfigs"]
    functions = {
        f["region"]: f for f in (r["inputs"] for r in resources(planned["warm"], "aws:lambda/function:Function"))
    }
    assert [lam["arn"] for lam in config["lambdas"]] == [
        f"arn:aws:lambda:{region}:123456789012:function:{functions[region]['name']}"
        for region in ("us-east-1", "us-west-2")
    ]
    assert config["regionToRun"] == "activatingRegion"  # ARC advises against depending on the deactivating region
    assert config["retryIntervalMinutes"] * 60 > arc.LAMBDA_TIMEOUT_SECONDS  # a retry never overlaps a running one
    cache = planned["warm"]["inventory"]["outputs"]["cache"]
    for region, function in functions.items():
        assert function["handler"] == "promote_cache.handler" and function["runtime"] == "python3.12"
        assert function["environment"]["variables"] == {
            "GLOBAL_DATASTORE_ID": cache["crossRegion"]["globalReplicationGroupId"],
            "MEMBER_REPLICATION_GROUP_ID": cache["regions"][region]["replicationGroupId"],
        }


def test_the_scaling_step_names_each_model_deployment_in_both_clusters(planned):
    plan = one(planned["warm"], "aws:arcregionswitch/plan:Plan")
    scale = plan["workflows"][0]["steps"][0]["parallelConfigs"][0]["steps"][1]
    (config,) = scale["eksResourceScalingConfigs"]
    assert config["kubernetesResourceTypes"] == [{"apiVersion": "apps/v1", "kind": "Deployment"}]
    assert [c["clusterArn"] for c in config["eksClusters"]] == [
        "arn:aws:eks:us-east-1:123456789012:cluster/warm-us-east-1",
        "arn:aws:eks:us-west-2:123456789012:cluster/warm-us-west-2",
    ]
    assert (config["targetPercent"], config["capacityMonitoringApproach"]) == (100, "sampledMaxInLast24Hours")
    scaled = {app["namespace"]: {r["resourceName"]: r for r in app["resources"]} for app in config["scalingResources"]}
    # canary versions by name; Flagger's primary for the progressive ranker; Knative's scorer scales itself
    assert sorted(scaled) == ["fraud/fraud-v1", "fraud/fraud-v2", "ranker/ranker-primary"]
    for app, regions in scaled.items():
        namespace, deployment = app.split("/")
        assert {(r["namespace"], r["name"], r.get("hpaName")) for r in regions.values()} == {
            (namespace, deployment, deployment)  # warm standby: an HPA in both regions
        }


def test_a_pilot_lights_standby_has_no_autoscaler_for_the_step_to_raise():
    config = load(STACKS["pilot"])
    plan = dr.assess(config.dr, config.platform, has_cache=True)
    assert plan.settings.standby == "zero"
    targets = {t.app: dict(t.hpa_by_region) for t in arc.scaling_targets(config.endpoints, plan.settings)}
    assert targets["fraud/fraud-v1"] == {"us-east-1": "fraud-v1", "us-west-2": None}


def test_active_active_shifts_away_from_a_region_and_can_return_it(planned):
    plan = one(planned["active"], "aws:arcregionswitch/plan:Plan")
    assert plan["recoveryApproach"] == "activeActive"
    actions = {w["workflowTargetAction"]: blocks(w["steps"]) for w in plan["workflows"]}
    # the peer already runs full capacity: nothing to scale; ARC wants one workflow of each action
    assert actions == {"deactivate": ["CustomActionLambda", "Route53HealthCheck"], "activate": ["Route53HealthCheck"]}


def test_the_route53_step_names_the_records_by_their_set_identifiers(planned):
    plan = one(planned["warm"], "aws:arcregionswitch/plan:Plan")
    route = plan["workflows"][0]["steps"][-1]["route53HealthCheckConfigs"][0]
    records = [
        r["inputs"] for r in resources(planned["warm"], "aws:route53/record:Record") if "setIdentifier" in r["inputs"]
    ]
    assert len(records) == 2  # the routed records (each region's health host has a plain record of its own)
    assert route["recordName"] == "*.models.example.com" == records[0]["name"]
    assert route["hostedZoneId"] == records[0]["zoneId"]
    assert {(s["recordSetIdentifier"], s["region"]) for s in route["recordSets"]} == {
        (r["setIdentifier"], r["setIdentifier"].removeprefix("warm-")) for r in records
    }


# Records follow the plan.


def test_the_primary_record_needs_its_probe_and_the_plans_check_the_secondary_its_probe(planned):
    stack = planned["warm"]
    checks = {r["name"]: r["inputs"] for r in resources(stack, "aws:route53/healthCheck:HealthCheck")}
    records = {
        r["inputs"]["failoverRoutingPolicies"][0]["type"]: r["inputs"]
        for r in resources(stack, "aws:route53/record:Record")
        if "failoverRoutingPolicies" in r["inputs"]
    }
    gate = checks["warm-models-warm-us-east-1-switch"]
    assert gate["type"] == "CALCULATED" and gate["childHealthThreshold"] == 2
    probe = stack["inventory"]["outputs"]["globalTraffic"]["records"]
    east_probe = next(r["healthCheckId"] for r in probe if r["region"] == "us-east-1")
    west_probe = next(r["healthCheckId"] for r in probe if r["region"] == "us-west-2")
    assert gate["childHealthchecks"][0] == east_probe and len(gate["childHealthchecks"]) == 2  # + ARC's own
    assert records["SECONDARY"]["healthCheckId"] == west_probe
    assert records["PRIMARY"]["healthCheckId"] not in (east_probe, west_probe)


# Trigger and alarms.


def test_the_trigger_activates_the_standby_when_the_primary_is_red_and_the_standby_green(planned):
    plan = one(planned["warm"], "aws:arcregionswitch/plan:Plan")
    (trigger,) = plan["triggers"]
    assert (trigger["action"], trigger["targetRegion"]) == ("activate", "us-west-2")
    assert trigger["conditions"] == [
        {"associatedAlarmName": "us-east-1-health", "condition": "red"},
        {"associatedAlarmName": "us-west-2-health", "condition": "green"},
    ]
    assert trigger["minDelayMinutesBetweenExecutions"] == 60
    active = one(planned["active"], "aws:arcregionswitch/plan:Plan")["triggers"][0]
    assert (active["action"], active["targetRegion"]) == ("deactivate", "us-east-1")


def test_each_associated_alarm_is_a_created_alarm_on_its_regions_route53_health_check(planned):
    stack = planned["warm"]
    plan = one(stack, "aws:arcregionswitch/plan:Plan")
    alarms = {r["inputs"]["name"]: r["inputs"] for r in resources(stack, "aws:cloudwatch/metricAlarm:MetricAlarm")}
    probes = {r["region"]: r["healthCheckId"] for r in stack["inventory"]["outputs"]["globalTraffic"]["records"]}
    assert [a["alarmType"] for a in plan["associatedAlarms"]] == ["trigger", "trigger"]
    for associated in plan["associatedAlarms"]:
        region = associated["mapBlockKey"].removesuffix("-health")
        arn = associated["resourceIdentifier"]
        assert arn.startswith("arn:aws:cloudwatch:us-east-1:123456789012:alarm:")  # Route 53 metrics: us-east-1
        alarm = alarms[arn.rsplit(":", 1)[-1]]
        assert (alarm["namespace"], alarm["metricName"], alarm["region"]) == (
            "AWS/Route53",
            "HealthCheckStatus",
            "us-east-1",
        )
        assert alarm["dimensions"] == {"HealthCheckId": probes[region]}
        assert (alarm["period"], alarm["evaluationPeriods"], alarm["threshold"]) == (60, 1, 1)
        assert alarm["treatMissingData"] == "notBreaching"  # a check that has not reported must not fail over


def test_a_manual_plan_has_no_trigger_and_watches_its_alarms_for_application_health(planned):
    plan = one(planned["pilot"], "aws:arcregionswitch/plan:Plan")
    assert "triggers" not in plan or not plan["triggers"]
    assert {a["alarmType"] for a in plan["associatedAlarms"]} == {"applicationHealth"}
    assert not [
        r for r in resources(planned["pilot"], "aws:iam/rolePolicy:RolePolicy") if r["name"].endswith("-trigger")
    ]
    assert planned["pilot"]["inventory"]["outputs"]["regionSwitch"]["trigger"] is False


# Least privilege.


def test_the_execution_role_is_trusted_by_arc_only_and_may_do_exactly_what_the_steps_need(planned):
    stack = planned["warm"]
    role = one(stack, "aws:iam/role:Role", "switch-execution")
    assert json.loads(role["assumeRolePolicy"])["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "arc-region-switch.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    grants = {s["Sid"]: (s["Action"], s["Resource"]) for s in policy(stack, "switch-execution")["Statement"]}
    zone = one(stack, "aws:arcregionswitch/plan:Plan")["workflows"][0]["steps"][-1]["route53HealthCheckConfigs"][0]
    functions = sorted(f"arn:aws:lambda:{r}:123456789012:function:" for r in ("us-east-1", "us-west-2"))
    assert set(grants) == {
        "AssociatedAlarms",
        "PromoteCache",
        "ScaleModelsClusters",
        "ScaleModelsAccess",
        "RouteTraffic",
    }
    assert grants["PromoteCache"][0] == ["lambda:GetFunction", "lambda:InvokeFunction"]
    assert [arn.rsplit(":", 1)[0] + ":" for arn in sorted(grants["PromoteCache"][1])] == functions
    assert grants["ScaleModelsClusters"] == (
        ["eks:DescribeCluster"],
        [f"arn:aws:eks:{r}:123456789012:cluster/warm-{r}" for r in ("us-east-1", "us-west-2")],
    )
    assert grants["ScaleModelsAccess"] == (
        ["eks:ListAssociatedAccessPolicies"],
        [f"arn:aws:eks:{r}:123456789012:access-entry/warm-{r}/*" for r in ("us-east-1", "us-west-2")],
    )
    assert grants["RouteTraffic"] == (
        ["route53:ListResourceRecordSets"],
        [f"arn:aws:route53:::hostedzone/{zone['hostedZoneId']}"],
    )
    plan = one(stack, "aws:arcregionswitch/plan:Plan")
    assert grants["AssociatedAlarms"] == (
        ["cloudwatch:DescribeAlarms"],
        [a["resourceIdentifier"] for a in plan["associatedAlarms"]],
    )
    trigger = policy(stack, "switch-trigger")["Statement"]
    assert trigger == [
        {
            "Sid": "Trigger",
            "Effect": "Allow",
            "Action": ["arc-region-switch:StartPlanExecution"],
            "Resource": [planned["warm"]["inventory"]["outputs"]["regionSwitch"]["planArn"]],
        }
    ]


def test_no_policy_of_the_plan_grants_a_wildcard_action_or_resource(planned):
    for stack in planned.values():
        for inputs in (
            r["inputs"] for r in resources(stack, "aws:iam/rolePolicy:RolePolicy") if "-switch-" in r["name"]
        ):
            for statement in json.loads(inputs["policy"])["Statement"]:
                assert statement["Resource"], statement
                for action in statement["Action"]:
                    assert "*" not in action, statement
                for resource in statement["Resource"]:
                    assert resource != "*" and "*" not in resource.rsplit("/", 1)[0], statement


def test_each_step_brings_exactly_its_own_permissions():
    common = dict(cluster_arns=["c"], access_entries=["e/*"], function_arns=["f"], zone_arn="z", alarm_arns=["a"])
    actions = {
        step: {a for s in arc.execution_policy(steps=(step,), **common)["Statement"] for a in s["Action"]}
        for step in arc.STEP_NAMES
    }
    alarms = {"cloudwatch:DescribeAlarms"}
    assert actions == {
        "promote-cache": alarms | {"lambda:GetFunction", "lambda:InvokeFunction"},
        "scale-models": alarms | {"eks:DescribeCluster", "eks:ListAssociatedAccessPolicies"},
        "route-traffic": alarms | {"route53:ListResourceRecordSets"},
    }


def test_the_promotion_lambda_may_fail_over_its_datastore_and_log_nothing_more(planned):
    stack = planned["warm"]
    role = one(stack, "aws:iam/role:Role", "switch-promote-cache")
    assert json.loads(role["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    grants = {s["Sid"]: (s["Action"], s["Resource"]) for s in policy(stack, "switch-promote-cache")["Statement"]}
    cache = stack["inventory"]["outputs"]["cache"]
    datastore = (
        f"arn:aws:elasticache::123456789012:globalreplicationgroup:{cache['crossRegion']['globalReplicationGroupId']}"
    )
    members = [
        f"arn:aws:elasticache:{r}:123456789012:replicationgroup:{cache['regions'][r]['replicationGroupId']}"
        for r in ("us-east-1", "us-west-2")
    ]
    assert grants["WatchDatastore"] == (["elasticache:DescribeGlobalReplicationGroups"], [datastore])
    assert grants["PromoteMember"] == (["elasticache:FailoverGlobalReplicationGroup"], [datastore, *members])
    logs = [r["inputs"]["name"] for r in resources(stack, "aws:cloudwatch/logGroup:LogGroup")]
    assert grants["Logs"] == (
        ["logs:CreateLogStream", "logs:PutLogEvents"],
        [
            f"arn:aws:logs:{r}:123456789012:log-group:{name}:*"
            for r, name in zip(("us-east-1", "us-west-2"), logs, strict=True)
        ],
    )


def test_arc_scales_inside_the_clusters_only_in_the_model_namespaces(planned):
    stack = planned["warm"]
    role_arn = f"arn:aws:iam::123456789012:role/{one(stack, 'aws:iam/role:Role', 'switch-execution')['name']}"
    entries = [r["inputs"] for r in resources(stack, "aws:eks/accessEntry:AccessEntry") if "-switch-" in r["name"]]
    assert [(e["clusterName"], e["principalArn"], e["region"]) for e in entries] == [
        ("warm-us-east-1", role_arn, "us-east-1"),
        ("warm-us-west-2", role_arn, "us-west-2"),
    ]
    associations = [
        r["inputs"]
        for r in resources(stack, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
        if "-switch-" in r["name"]
    ]
    assert {a["policyArn"] for a in associations} == {
        "arn:aws:eks::aws:cluster-access-policy/AmazonARCRegionSwitchScalingPolicy"
    }
    assert [a["accessScope"] for a in associations] == [{"type": "namespace", "namespaces": ["fraud", "ranker"]}] * 2


# The stack says what it built.


def test_dr_json_counts_the_plans_terms_and_the_policy_agrees(planned):
    warm = planned["warm"]["dr"]
    assert (warm["tier"], warm["meets"], warm["estimatedRtoSeconds"]) == ("warm-standby", True, 308)
    assert warm["settings"]["automation"]["trigger"] == {"period": 60, "evaluationPeriods": 1, "minDelayMinutes": 60}
    assert not [r for r in warm["reasons"] if "runbook" in r]
    active = planned["active"]["dr"]
    assert (active["tier"], active["meets"], active["estimatedRtoSeconds"]) == ("active-active", False, 238)
    # re-derived from the plan, its trigger and alarms, and the records' checks (the calculated ones not timed)
    assert planned["warm"]["violations"] == [] and planned["pilot"]["violations"] == []
    assert planned["active"]["violations"] == [
        "The stack's topology meets its declared RPO and RTO.\n"
        "active-active over us-east-1, us-west-2 recovers in 238s; the target RTO is 180s."
    ]


def test_the_plans_arguments_are_what_the_provider_takes():
    steps = ("promote-cache", "scale-models", "route-traffic")
    route = {"route53_health_check_configs": [{"hosted_zone_id": "Z", "record_name": "*.m.example.com"}]}
    promote = {
        "custom_action_lambda_configs": [
            {"lambdas": [{"arn": "a"}], "region_to_run": "activatingRegion", "retry_interval_minutes": 5.0}
        ]
    }
    scale = {
        "eks_resource_scaling_configs": [
            {
                "kubernetes_resource_types": [{"api_version": "apps/v1", "kind": "Deployment"}],
                "capacity_monitoring_approach": "sampledMaxInLast24Hours",
                "target_percent": 100,
            }
        ]
    }
    good = arc.workflows(approach="activePassive", steps=steps, promote=promote, scale=scale, route=route)
    assert arc.plan_argument_problems(good, arc_inputs.PlanWorkflowArgsDict) == []
    # The mocks would pass a singular `kubernetes_resource_type` through; the provider declares a list.
    scale["eks_resource_scaling_configs"][0]["kubernetes_resource_type"] = {"api_version": "v1", "kind": "Deployment"}
    bad = arc.workflows(approach="activePassive", steps=steps, promote=promote, scale=scale, route=route)
    assert arc.plan_argument_problems(bad, arc_inputs.PlanWorkflowArgsDict) == [
        "[0].steps[0].parallel_configs[0].steps[1].eks_resource_scaling_configs[0].kubernetes_resource_type: "
        "not an input of PlanWorkflowStepParallelConfigStepEksResourceScalingConfigArgsDict"
    ]
    with pytest.raises(ValueError, match="kubernetes_resource_type: not an input"):
        arc.check_plan_arguments({"workflows": bad})
    missing_name = [{"workflow_target_action": "activate", "steps": [{"execution_block_type": "Route53HealthCheck"}]}]
    assert arc.plan_argument_problems(missing_name, arc_inputs.PlanWorkflowArgsDict) == [
        "[0].steps[0].name: required by PlanWorkflowStepArgsDict"
    ]


def test_the_lambda_package_is_the_repositorys_promote_cache_module():
    from components.dr.lambdas import promote_cache

    module, function = arc.LAMBDA_HANDLER.split(".")
    assert arc.LAMBDA_SOURCE.stem == module and arc.LAMBDA_SOURCE.samefile(promote_cache.__file__)
    assert callable(getattr(promote_cache, function))
