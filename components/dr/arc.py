"""The failover steps DNS cannot take, as an ARC Region switch plan (AWS), for every AWS DR tier with a standby.

`turnout failover` (turnout/failover.py) promotes the cache's Global Datastore member and scales a pilot light by
hand. Here the same steps are a plan ARC runs, started by `turnout failover` or, with `turnout:dr.failover:
automatic`, by the plan's trigger on the health alarms (turnout/dr.py decides which; `Automation`):

- Plan: the stack's two regions (ARC plans span exactly two) and its primary, `activePassive` for pilot light and
  warm standby, `activeActive` for active-active, the stack's RTO target as the plan's objective.
- Workflows. activePassive: one `activate` workflow for either region: a Parallel block of the cache promotion and
  the EKS scaling, then the Route 53 step. activeActive: `deactivate` (promote the cache, then the Route 53 step)
  and `activate` (the Route 53 step): ARC wants one of each for active/active plans.
  - promote-cache: a custom-action Lambda turnout ships (lambdas/promote_cache.py), one per region as ARC requires,
    run in the activating region (ARC advises against depending on the deactivating one); each promotes its own
    region's member and is idempotent across ARC's retries.
  - scale-models: the EKS resource-scaling step over both clusters' model Deployments (and their HPAs where the
    region has one), to 100% of what the primary ran in the last 24 hours; Knative revisions scale from zero on
    their first requests and need no step. ARC acts in the clusters through an access entry for its execution role
    with AmazonARCRegionSwitchScalingPolicy, scoped to the model namespaces.
  - route-traffic: the Route 53 health-check step over the stack's records (`*.<domain>`, one record set per
    region by set identifier). ARC creates a health check per region and sets it on execution; the records of the
    regions that serve while healthy (the failover PRIMARY, every latency record) require it as well as their probe
    (`switch_health_checks`: a calculated health check in components/globaltraffic/route53.py), so an execution
    moves DNS even while the old primary still answers (a drill), and keeps it there until a switch back.
- Execution role: trusted by arc-region-switch.amazonaws.com for this account only, allowed exactly the actions the
  steps and the associated alarms need (ARC's sample policies), on the named resources (`execution_policy`).
- Alarms: per region, an alarm on the region's Route 53 health check status (in us-east-1, where Route 53 publishes
  it), associated with the plan: as trigger alarms with `automatic`, application-health alarms otherwise. The
  trigger activates (or, active/active, deactivates) when the primary's is red while the standby's is green. The
  alarms read the routing's health checks, which themselves need the plan's Route 53 health checks: the plan names
  them by their ARNs, and `watch_health` creates them once the routing exists.

Every name fits its AWS limit (`aws_limits`); every provider signs in as the stack's `aws:` identity.
"""

from __future__ import annotations

import functools
import json
import math
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
from pulumi_aws.arcregionswitch import _inputs as arcregionswitch_inputs

from components.cluster.aws_identity import stack_identity
from components.cluster.aws_limits import aws_name
from components.endpoint.flagger_canary import analysed_versions
from components.endpoint.workload import is_autoscaled
from components.globaltraffic import routing_name
from turnout.config import Endpoint, StackConfig
from turnout.dr import DrPlan, Settings, region_endpoints
from turnout.naming import child, k8s_name
from turnout.traffic import traffic_plan

LAMBDA_SOURCE = Path(__file__).parent / "lambdas" / "promote_cache.py"
LAMBDA_HANDLER = "promote_cache.handler"
LAMBDA_RUNTIME = "python3.12"
LAMBDA_TIMEOUT_SECONDS = 240
"""One run waits this long for the promotion ("typically less than a minute"), then fails saying where it stands."""
LAMBDA_RETRY_MINUTES = 5.0
"""ARC runs the function again this long after a run that did not succeed: more than the function's own timeout."""
STEP_TIMEOUT_MINUTES = 15
LOG_RETENTION_DAYS = 365
ROUTE53_METRICS_REGION = "us-east-1"  # Route 53 publishes health check metrics in us-east-1 only
ARC_PRINCIPAL = "arc-region-switch.amazonaws.com"
SCALING_ACCESS_POLICY = "cluster-access-policy/AmazonARCRegionSwitchScalingPolicy"
CAPACITY_MONITORING = "sampledMaxInLast24Hours"
TARGET_PERCENT = 100

PLAN_INPUTS = {
    "associated_alarms": arcregionswitch_inputs.PlanAssociatedAlarmArgsDict,
    "triggers": arcregionswitch_inputs.PlanTriggerArgsDict,
    "workflows": arcregionswitch_inputs.PlanWorkflowArgsDict,
}
STEP_NAMES = {"promote-cache": "promote-cache", "scale-models": "scale-models", "route-traffic": "route-traffic"}


@dataclass(frozen=True)
class ScalingTarget:
    """One model Deployment the EKS step scales: the same object in both regions, and its HPA where there is one."""

    app: str
    """The step's key for it: `<namespace>/<deployment>`."""
    namespace: str
    name: str
    hpa_by_region: Mapping[str, str | None]


def scaling_targets(endpoints: Mapping[str, Endpoint], settings: Settings) -> tuple[ScalingTarget, ...]:
    """Every model Deployment of the stack, as each region runs it (the same names; an HPA only where the region's
    replicas give it one). Flagger's endpoints serve from `<endpoint>-primary` (and its HPA); Knative's revisions
    scale from zero by themselves."""
    regions = settings.cluster_regions
    per_region = {region: region_endpoints(dict(endpoints), settings, region) for region in regions}
    targets = []
    for name, endpoint in endpoints.items():
        if endpoint.backend == "knative":
            continue
        strategy = endpoint.strategy
        if getattr(strategy, "progressive", None) is not None:
            version = analysed_versions(strategy)[1]
            deployments = [(f"{name}-primary", version)]
        else:
            deployments = [(k8s_name(name, version), version) for version in traffic_plan(strategy).running_versions]
        for deployment, version in deployments:
            hpas = {
                region: deployment if is_autoscaled(per_region[region][name].versions[version].replicas) else None
                for region in regions
            }
            targets.append(ScalingTarget(f"{name}/{deployment}", name, deployment, hpas))
    return tuple(targets)


def execution_policy(
    *,
    steps: Sequence[str],
    cluster_arns: Sequence[str],
    access_entries: Sequence[str],
    function_arns: Sequence[str],
    zone_arn: str,
    alarm_arns: Sequence[str],
) -> dict:
    """The plan's execution role's permissions: exactly what its steps and associated alarms need (ARC's sample
    policies, "Execution block permissions" and "CloudWatch alarms for application health permissions"), each on
    the resources it acts on. What ARC does inside the clusters is granted by their access entries instead."""
    statements = [
        {
            "Sid": "AssociatedAlarms",
            "Effect": "Allow",
            "Action": ["cloudwatch:DescribeAlarms"],
            "Resource": list(alarm_arns),
        }
    ]
    if "promote-cache" in steps:
        statements.append(
            {
                "Sid": "PromoteCache",
                "Effect": "Allow",
                # GetFunction: plan evaluation checks that the functions exist and are not throttled to zero.
                "Action": ["lambda:GetFunction", "lambda:InvokeFunction"],
                "Resource": list(function_arns),
            }
        )
    if "scale-models" in steps:
        statements += [
            {
                "Sid": "ScaleModelsClusters",
                "Effect": "Allow",
                "Action": ["eks:DescribeCluster"],
                "Resource": list(cluster_arns),
            },
            {
                "Sid": "ScaleModelsAccess",
                "Effect": "Allow",
                "Action": ["eks:ListAssociatedAccessPolicies"],
                "Resource": list(access_entries),
            },
        ]
    if "route-traffic" in steps:
        statements.append(
            {
                "Sid": "RouteTraffic",
                "Effect": "Allow",
                "Action": ["route53:ListResourceRecordSets"],
                "Resource": [zone_arn],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def promotion_policy(*, datastore_arn: str, member_arns: Sequence[str], log_group_arns: Sequence[str]) -> dict:
    """The cache-promotion Lambda's permissions: fail the Global Datastore over to a member and watch it, and write
    its own logs."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WatchDatastore",
                "Effect": "Allow",
                "Action": ["elasticache:DescribeGlobalReplicationGroups"],
                "Resource": [datastore_arn],
            },
            {
                "Sid": "PromoteMember",
                "Effect": "Allow",
                "Action": ["elasticache:FailoverGlobalReplicationGroup"],
                "Resource": [datastore_arn, *member_arns],
            },
            {
                "Sid": "Logs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [f"{arn}:*" for arn in log_group_arns],
            },
        ],
    }


def trust_policy(service: str) -> dict:
    """Assumable by `service` (the trust policies ARC's and Lambda's guides give, as they give them)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def trigger_policy(plan_arn: str) -> dict:
    """With triggers, ARC also starts the execution as the execution role ("Plan execution role trust policy":
    it reads the trigger alarms and starts the plan): that plan only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Trigger",
                "Effect": "Allow",
                "Action": ["arc-region-switch:StartPlanExecution"],
                "Resource": [plan_arn],
            }
        ],
    }


def alarm_key(region: str) -> str:
    """The name a region's alarm has among the plan's associated alarms (what trigger conditions refer to)."""
    return f"{region}-health"


def health_alarm_name(stack: str, cluster: str) -> str:
    """The CloudWatch alarm on a region's Route 53 health check status."""
    return aws_name("cloudwatch-alarm", child(routing_name(stack), cluster, "health-status"), keep="-health-status")


def workflows(
    *,
    approach: str,
    steps: Sequence[str],
    promote: dict | None,
    scale: dict | None,
    route: dict,
) -> list[dict]:
    """The plan's workflows from its step blocks (see the module docstring)."""
    route_step = {"name": STEP_NAMES["route-traffic"], "execution_block_type": "Route53HealthCheck", **route}
    promote_step = (
        {"name": STEP_NAMES["promote-cache"], "execution_block_type": "CustomActionLambda", **promote}
        if promote is not None and "promote-cache" in steps
        else None
    )
    scale_step = (
        {"name": STEP_NAMES["scale-models"], "execution_block_type": "EKSResourceScaling", **scale}
        if scale is not None and "scale-models" in steps
        else None
    )
    side_by_side = [step for step in (promote_step, scale_step) if step is not None]
    if len(side_by_side) > 1:
        first = [
            {
                "name": "promote-and-scale",
                "execution_block_type": "Parallel",
                "parallel_configs": [{"steps": side_by_side}],
            }
        ]
    else:
        first = side_by_side
    if approach == "activeActive":
        return [
            {
                "workflow_target_action": "deactivate",
                "workflow_description": "Shift away from a region: promote the cache elsewhere, take it out of DNS",
                "steps": [*first, route_step],
            },
            {
                "workflow_target_action": "activate",
                "workflow_description": "Return a region to DNS",
                "steps": [route_step],
            },
        ]
    return [
        {
            "workflow_target_action": "activate",
            "workflow_description": "Fail over to a region: promote its cache copy, scale its models, move DNS to it",
            "steps": [*first, route_step],
        }
    ]


def plan_argument_problems(value: Any, typed: type, path: str = "") -> list[str]:
    """Keys of `value` that the provider's input type `typed` (a pulumi_aws `...ArgsDict`) does not have, and required
    keys it lacks, recursively. The offline mocks pass any key through, while `pulumi up` would send it to a
    provider that ignores or rejects it (a singular `kubernetes_resource_type` for the provider's list, say).

    The declared types are read with `typing.get_type_hints`, so they are the same whether the provider's module was
    compiled with its annotations evaluated (`pulumi up`) or deferred (`turnout plan`, turnout/offline/fast.py)."""
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in plan_argument_problems(item, typed, f"{path}[{i}]")]
    if not isinstance(value, dict):
        return []
    hints = _declared_inputs(typed)
    problems = [f"{path}.{key}: not an input of {typed.__name__}" for key in value if key not in hints]
    problems += [
        f"{path}.{key}: required by {typed.__name__}"
        for key, hint in hints.items()
        if typing.get_origin(hint) is not typing.NotRequired and key not in value
    ]
    for key, item in value.items():
        nested = _nested_args_dict(hints.get(key))
        if nested is not None:
            problems += plan_argument_problems(item, nested, f"{path}.{key}")
    return problems


@functools.cache
def _declared_inputs(typed: type) -> dict[str, Any]:
    """The keys `typed` declares, with their types; once per type (a plan checks a few types on many values)."""
    # `pulumi.Input[T]` holds the forward references `Output[T]`; the SDK resolves them so too (pulumi/_types.py).
    return typing.get_type_hints(typed, localns={"Output": pulumi.Output, "T": type(None)}, include_extras=True)


def _nested_args_dict(hint: Any) -> type | None:
    """The first TypedDict inside a declared type (`NotRequired[Input[Sequence[Input[XArgsDict]]]]` -> XArgsDict)."""
    if typing.is_typeddict(hint):
        return hint
    for argument in typing.get_args(hint):
        found = _nested_args_dict(argument)
        if found is not None:
            return found
    return None


def check_plan_arguments(arguments: dict) -> None:
    """The plan's arguments as the provider declares them (see `plan_argument_problems`); a mismatch is turnout's
    bug, never the user's input."""
    problems = [
        problem
        for key in ("associated_alarms", "triggers", "workflows")
        for problem in plan_argument_problems(arguments.get(key) or [], PLAN_INPUTS[key], key)
    ]
    if problems:
        raise ValueError("ARC Region switch plan arguments the provider does not take: " + "; ".join(problems))


@dataclass(frozen=True, kw_only=True)
class RegionSwitchArgs:
    stack: str
    """The Pulumi stack: names everything."""
    plan: DrPlan
    """The DR plan; its settings' `automation` says what the plan does and whether it triggers itself."""
    domain: str
    """The zone the records are in (`platform.serving.gateway.domain`)."""
    private_zone: bool
    """An internal gateway's records live in a private zone."""
    clusters: Sequence[Any]
    """The EKS clusters (name, region), in the settings' region order."""
    endpoints: Mapping[str, Endpoint]
    cache_replication: Mapping[str, Any] | None = None
    """The cache's replication document (`CacheComponent.replication`): the Global Datastore and member ids."""


class RegionSwitch(pulumi.ComponentResource):
    arn: pulumi.Output[str]
    name: str
    health_checks: dict[str, pulumi.Output[str | None]]
    """ARC's Route 53 health check of each region, once ARC has created it (it does so after the plan, by itself)."""

    def __init__(self, name: str, args: RegionSwitchArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:dr:RegionSwitch", name, None, opts)
        automation = args.plan.settings.automation
        assert automation is not None, "region_switch builds only plans the DR settings ask for"
        self._args = args
        self._prefix = name
        self._region_providers: dict[str, aws.Provider] = {}
        regions = automation.regions
        primary = self._region_provider(automation.primary_region)
        invoke = pulumi.InvokeOutputOptions(provider=primary, parent=self)
        identity = aws.get_caller_identity_output(opts=invoke)
        partition = aws.get_partition_output(opts=invoke).partition
        account = identity.account_id
        clusters = {cluster.region: cluster for cluster in args.clusters}
        self.name = aws_name("arc-plan", child(args.stack, "failover"))
        self.alarm_arns = {
            region: pulumi.Output.concat(
                "arn:",
                partition,
                ":cloudwatch:",
                ROUTE53_METRICS_REGION,
                ":",
                account,
                ":alarm:",
                health_alarm_name(args.stack, clusters[region].name),
            )
            for region in regions
        }
        zone = aws.route53.get_zone_output(name=args.domain, private_zone=args.private_zone, opts=invoke)
        role = aws.iam.Role(
            child(name, "execution"),
            name=aws_name("iam-role", child(name, "execution")),
            description=f"ARC Region switch runs the {args.stack} failover plan as this role",
            assume_role_policy=json.dumps(trust_policy(ARC_PRINCIPAL)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        functions = self._promotion(regions, account, partition) if "promote-cache" in automation.steps else {}
        entries = self._cluster_access(role, clusters, regions, partition) if "scale-models" in automation.steps else []
        cluster_arns = [
            pulumi.Output.concat("arn:", partition, ":eks:", region, ":", account, ":cluster/", clusters[region].name)
            for region in regions
        ]
        access_entries = [
            pulumi.Output.concat(
                "arn:", partition, ":eks:", region, ":", account, ":access-entry/", clusters[region].name, "/*"
            )
            for region in regions
        ]
        policy = pulumi.Output.all(
            cluster_arns=cluster_arns,
            access_entries=access_entries,
            function_arns=[functions[r].arn for r in regions if r in functions],
            zone_arn=pulumi.Output.concat("arn:", partition, ":route53:::hostedzone/", zone.zone_id),
            alarm_arns=[self.alarm_arns[r] for r in regions],
        ).apply(lambda v: json.dumps(execution_policy(steps=automation.steps, **v)))
        grants = aws.iam.RolePolicy(
            child(name, "execution"),
            name=aws_name("iam-policy", child(name, "execution")),
            role=role.name,
            policy=policy,
            opts=pulumi.ResourceOptions(parent=self),
        )
        arguments = dict(
            name=self.name,
            description=f"turnout {args.plan.tier} failover of {args.stack}: {', '.join(automation.steps)}",
            execution_role=role.arn,
            recovery_approach=automation.recovery_approach,
            regions=list(regions),
            primary_region=automation.primary_region,
            recovery_time_objective_minutes=max(1, math.ceil((args.plan.target.rto if args.plan.target else 60) / 60)),
            associated_alarms=[
                {
                    "map_block_key": alarm_key(region),
                    "alarm_type": "trigger" if automation.trigger else "applicationHealth",
                    "resource_identifier": self.alarm_arns[region],
                }
                for region in regions
            ],
            triggers=self._triggers(automation),
            workflows=workflows(
                approach=automation.recovery_approach,
                steps=automation.steps,
                promote=self._promote_block(functions, regions),
                scale=self._scale_block(cluster_arns),
                route={
                    "route53_health_check_configs": [
                        {
                            "hosted_zone_id": zone.zone_id,
                            "record_name": f"*.{args.domain}",
                            "record_sets": [
                                {
                                    "record_set_identifier": aws_name("route53-set-identifier", clusters[r].name),
                                    "region": r,
                                }
                                for r in regions
                            ],
                            "timeout_minutes": STEP_TIMEOUT_MINUTES,
                        }
                    ]
                },
            ),
            tags={"turnout.dev/stack": aws_name("tag-value", args.stack)},
        )
        check_plan_arguments(arguments)
        self._plan = aws.arcregionswitch.Plan(
            child(name, "plan"),
            **arguments,
            opts=pulumi.ResourceOptions(parent=self, provider=primary, depends_on=[grants, *entries]),
        )
        self.arn = self._plan.arn
        if automation.trigger is not None:
            aws.iam.RolePolicy(
                child(name, "trigger"),
                name=aws_name("iam-policy", child(name, "trigger")),
                role=role.name,
                policy=self.arn.apply(lambda arn: json.dumps(trigger_policy(arn))),
                opts=pulumi.ResourceOptions(parent=self),
            )
        checks = aws.arcregionswitch.get_route53_health_checks_output(plan_arn=self._plan.arn, opts=invoke)
        self.health_checks = {
            region: checks.health_checks.apply(
                lambda found, region=region: next((c.health_check_id for c in found if c.region == region), None)
            )
            for region in regions
        }
        self.register_outputs({"arn": self.arn, "name": self.name})

    def _region_provider(self, region: str) -> aws.Provider:
        """One explicit provider per region: the region comes from the stack, never from ambient AWS config."""
        if region not in self._region_providers:
            self._region_providers[region] = aws.Provider(
                child(self._prefix, region, "aws"),
                region=region,
                **stack_identity().provider_args(),
                opts=pulumi.ResourceOptions(parent=self),
            )
        return self._region_providers[region]

    def _triggers(self, automation) -> list[dict] | None:
        trigger = automation.trigger
        if trigger is None:
            return None
        primary = automation.primary_region
        (standby,) = (region for region in automation.regions if region != primary)
        # active/passive: activate the standby; active/active: deactivate the primary (its peer already serves).
        action, target = (
            ("deactivate", primary) if automation.recovery_approach == "activeActive" else ("activate", standby)
        )
        return [
            {
                "action": action,
                "target_region": target,
                "min_delay_minutes_between_executions": trigger.min_delay_minutes,
                "description": f"{primary} unhealthy while {standby} is healthy",
                "conditions": [
                    {"associated_alarm_name": alarm_key(primary), "condition": "red"},
                    {"associated_alarm_name": alarm_key(standby), "condition": "green"},
                ],
            }
        ]

    def _promotion(self, regions: Sequence[str], account, partition) -> dict[str, aws.lambda_.Function]:
        """The promotion Lambda in each region, its log group, and one role for both with least privilege."""
        replication = self._args.cache_replication or {}
        global_id = replication["crossRegion"]["globalReplicationGroupId"]
        members = {region: replication["regions"][region]["replicationGroupId"] for region in regions}
        role = aws.iam.Role(
            child(self._prefix, "promote-cache"),
            name=aws_name("iam-role", child(self._prefix, "promote-cache")),
            description="turnout's Global Datastore promotion Lambda",
            assume_role_policy=json.dumps(trust_policy("lambda.amazonaws.com")),
            opts=pulumi.ResourceOptions(parent=self),
        )
        functions, log_groups = {}, {}
        code = pulumi.AssetArchive({LAMBDA_SOURCE.name: pulumi.FileAsset(str(LAMBDA_SOURCE))})
        for region in regions:
            mine = pulumi.ResourceOptions(parent=self, provider=self._region_provider(region))
            function_name = aws_name(
                "lambda-function", child(self._prefix, region, "promote-cache"), keep="-promote-cache"
            )
            log_groups[region] = aws.cloudwatch.LogGroup(
                child(self._prefix, region, "promote-cache"),
                name=f"/aws/lambda/{function_name}",
                region=region,
                retention_in_days=LOG_RETENTION_DAYS,
                opts=mine,
            )
            functions[region] = aws.lambda_.Function(
                child(self._prefix, region, "promote-cache"),
                name=function_name,
                description=f"Promote the {region} member of the cache's Global Datastore (ARC Region switch step)",
                region=region,
                role=role.arn,
                runtime=LAMBDA_RUNTIME,
                handler=LAMBDA_HANDLER,
                code=code,
                timeout=LAMBDA_TIMEOUT_SECONDS,
                memory_size=128,
                environment={
                    "variables": {"GLOBAL_DATASTORE_ID": global_id, "MEMBER_REPLICATION_GROUP_ID": members[region]}
                },
                opts=pulumi.ResourceOptions.merge(mine, pulumi.ResourceOptions(depends_on=[log_groups[region]])),
            )
        policy = pulumi.Output.all(
            datastore_arn=pulumi.Output.concat(
                "arn:", partition, ":elasticache::", account, ":globalreplicationgroup:", global_id
            ),
            member_arns=[
                pulumi.Output.concat(
                    "arn:", partition, ":elasticache:", r, ":", account, ":replicationgroup:", members[r]
                )
                for r in regions
            ],
            log_group_arns=[log_groups[r].arn for r in regions],
        ).apply(lambda v: json.dumps(promotion_policy(**v)))
        aws.iam.RolePolicy(
            child(self._prefix, "promote-cache"),
            name=aws_name("iam-policy", child(self._prefix, "promote-cache")),
            role=role.name,
            policy=policy,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return functions

    def _cluster_access(self, role: aws.iam.Role, clusters: dict, regions: Sequence[str], partition) -> list:
        """An access entry for the execution role in each cluster, with ARC's scaling policy on the model namespaces."""
        namespaces = sorted(
            {target.namespace for target in scaling_targets(self._args.endpoints, self._args.plan.settings)}
        )
        grants = []
        for region in regions:
            cluster = clusters[region]
            mine = pulumi.ResourceOptions(parent=self, provider=self._region_provider(region), depends_on=[cluster])
            entry = aws.eks.AccessEntry(
                child(self._prefix, region, "access"),
                cluster_name=cluster.name,
                principal_arn=role.arn,
                type="STANDARD",
                region=region,
                opts=mine,
            )
            grants.append(
                aws.eks.AccessPolicyAssociation(
                    child(self._prefix, region, "scaling"),
                    cluster_name=cluster.name,
                    principal_arn=entry.principal_arn,
                    policy_arn=pulumi.Output.concat("arn:", partition, ":eks::aws:", SCALING_ACCESS_POLICY),
                    access_scope={"type": "namespace", "namespaces": namespaces},
                    region=region,
                    opts=mine,
                )
            )
        return grants

    def _promote_block(self, functions: dict, regions: Sequence[str]) -> dict | None:
        if not functions:
            return None
        return {
            "custom_action_lambda_configs": [
                {
                    "lambdas": [{"arn": functions[region].arn} for region in regions],
                    "region_to_run": "activatingRegion",
                    "retry_interval_minutes": LAMBDA_RETRY_MINUTES,
                    "timeout_minutes": STEP_TIMEOUT_MINUTES,
                }
            ]
        }

    def _scale_block(self, cluster_arns: list) -> dict | None:
        targets = scaling_targets(self._args.endpoints, self._args.plan.settings)
        if not targets:
            return None
        return {
            "eks_resource_scaling_configs": [
                {
                    "kubernetes_resource_types": [{"api_version": "apps/v1", "kind": "Deployment"}],
                    "eks_clusters": [{"cluster_arn": arn} for arn in cluster_arns],
                    "scaling_resources": [
                        {
                            "namespace": target.app,  # the provider's name for the key of one scaled application
                            "resources": [
                                {
                                    "resource_name": region,
                                    "name": target.name,
                                    "namespace": target.namespace,
                                    **({"hpa_name": hpa} if hpa else {}),
                                }
                                for region, hpa in target.hpa_by_region.items()
                            ],
                        }
                        for target in targets
                    ],
                    "capacity_monitoring_approach": CAPACITY_MONITORING,
                    "target_percent": TARGET_PERCENT,
                    "timeout_minutes": STEP_TIMEOUT_MINUTES,
                }
            ]
        }

    def watch_health(self, routing: pulumi.ComponentResource) -> None:
        """The alarm on each region's Route 53 health check status, named as the plan's associated alarms expect.
        Missing data is not breaching: a health check that has not reported yet must not start a failover."""
        automation = self._args.plan.settings.automation
        records = routing.records
        metrics = self._region_provider(ROUTE53_METRICS_REGION)
        for cluster in self._args.clusters:
            if cluster.region not in automation.regions:
                continue
            health_check = records.apply(
                lambda rows, cluster=cluster: next(r["healthCheckId"] for r in rows if r["cluster"] == cluster.name)
            )
            aws.cloudwatch.MetricAlarm(
                child(self._prefix, cluster.region, "health-status"),
                name=health_alarm_name(self._args.stack, cluster.name),
                alarm_description=f"{cluster.name}'s Route 53 health check is unhealthy ({self.name} failover plan)",
                namespace="AWS/Route53",
                metric_name="HealthCheckStatus",
                dimensions={"HealthCheckId": health_check},
                statistic="Minimum",
                period=automation.trigger.period if automation.trigger else 60,
                evaluation_periods=automation.trigger.evaluation_periods if automation.trigger else 1,
                comparison_operator="LessThanThreshold",
                threshold=1,
                treat_missing_data="notBreaching",
                region=ROUTE53_METRICS_REGION,
                opts=pulumi.ResourceOptions(parent=self, provider=metrics),
            )

    def exported(self) -> dict:
        """What `turnout failover` reads to start the plan."""
        automation = self._args.plan.settings.automation
        return {
            "planArn": self.arn,
            "name": self.name,
            "recoveryApproach": automation.recovery_approach,
            "primaryRegion": automation.primary_region,
            "regions": list(automation.regions),
            "steps": list(automation.steps),
            "trigger": automation.trigger is not None,
        }


def region_switch(
    plan: DrPlan, config: StackConfig, stack: str, clusters: Sequence[Any], cache: Any = None
) -> RegionSwitch | None:
    """The stack's Region switch plan, or None where its DR settings have no orchestrator (tier, cloud, regions)."""
    automation = plan.settings.automation
    if automation is None or automation.orchestrator != "arc-region-switch":
        return None
    gateway = config.platform.serving.gateway
    ordered = sorted(
        (c for c in clusters if c.region in automation.regions), key=lambda c: automation.regions.index(c.region)
    )
    return RegionSwitch(
        child(routing_name(stack), "switch"),
        RegionSwitchArgs(
            stack=stack,
            plan=plan,
            domain=gateway.domain or "",
            private_zone=gateway.exposure == "internal",
            clusters=tuple(ordered),
            endpoints=config.endpoints,
            cache_replication=getattr(cache, "replication", None),
        ),
    )


def switch_health_checks(switch: RegionSwitch | None) -> dict[str, pulumi.Output[str | None]] | None:
    """ARC's health check per region, for the records to require (None without a plan)."""
    return None if switch is None else switch.health_checks


def watch_health(switch: RegionSwitch | None, routing: pulumi.ComponentResource | None) -> None:
    """The plan's health alarms, once the routing's health checks exist (nothing without a plan)."""
    if switch is not None and routing is not None:
        switch.watch_health(routing)


def exported(switch: RegionSwitch | None) -> dict | None:
    """What the stack exports about its Region switch plan (None without one)."""
    return None if switch is None else switch.exported()
