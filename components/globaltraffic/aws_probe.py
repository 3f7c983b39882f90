"""The health route's probe inside an AWS region's VPC, for an internal gateway's Route 53 failover.

Route 53's checkers run on the internet and cannot reach a private NLB; a check of type CLOUDWATCH_METRIC on an alarm
is its documented way for private resources ("Configuring failover in a private hosted zone"). Per region:

- a Lambda function (components/dr/lambdas/health_probe.py) in the cluster VPC's private subnets, with a security
  group that lets nothing in and only TCP 443 out (the NLB, and CloudWatch's endpoint through the VPC's NAT; the
  VPC's own DNS resolver is not filtered by security groups). Every minute (EventBridge `rate(1 minute)`) it requests
  the health route through the NLB, with the health host as SNI and Host, `GET /ready`, and publishes 1 (2xx) or 0 to
  `Turnout/HealthRoute` `HealthRouteUp` {Cluster};
- its role: AWSLambdaVPCAccessExecutionRole (its network interfaces and logs) and `cloudwatch:PutMetricData` only
  for that namespace (the `cloudwatch:namespace` condition key); a log group with a retention;
- an alarm on that metric (Minimum < 1 for `failure_threshold` one-minute periods, missing data breaching: a probe
  that stops publishing takes the region out), and the Route 53 CLOUDWATCH_METRIC check on it.

`check_probe` holds the provider's rules the mocks cannot see: a function in a VPC needs subnets and a security
group, Route 53 reads alarms only in its listed regions and only in the alarm's own, on standard-resolution metrics
with a plain statistic.
"""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.cluster.aws_limits import aws_name
from turnout.dr import HEALTH_PROBE_PERIOD, HEALTH_PROBE_TIMEOUT
from turnout.naming import child

PROBE_SOURCE = Path(__file__).resolve().parent.parent / "dr" / "lambdas" / "health_probe.py"
PROBE_HANDLER = "health_probe.handler"
PROBE_RUNTIME = "python3.12"
PROBE_REQUEST_TIMEOUT = HEALTH_PROBE_TIMEOUT / 2  # the request's own: the function publishes well within its timeout
METRIC_NAMESPACE = "Turnout/HealthRoute"
METRIC_NAME = "HealthRouteUp"
SCHEDULE = "rate(1 minute)" if HEALTH_PROBE_PERIOD == 60 else f"rate({HEALTH_PROBE_PERIOD // 60} minutes)"
LOG_RETENTION_DAYS = 30
VPC_ACCESS_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
PROBE_TAG = "turnout.dev/purpose"
PROBE_TAG_VALUE = "health-probe"
"""What dr-target-achievable finds the probe's schedule and function by."""

# Route 53's AlarmIdentifier.Region: the regions whose alarms its health checks read (Route 53 API reference).
ROUTE53_ALARM_REGIONS = frozenset(
    {
        "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-central-1", "eu-central-2",
        "eu-west-1", "eu-west-2", "eu-west-3", "ap-east-1", "me-south-1", "me-central-1", "ap-south-1", "ap-south-2",
        "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
        "eu-north-1", "sa-east-1", "cn-northwest-1", "cn-north-1", "af-south-1", "eu-south-1", "eu-south-2",
        "us-gov-west-1", "us-gov-east-1", "us-iso-east-1", "us-iso-west-1", "us-isob-east-1", "ap-southeast-4",
        "il-central-1", "ca-west-1", "ap-southeast-5", "mx-central-1", "us-isof-south-1", "us-isof-east-1",
        "ap-southeast-7", "ap-east-2", "eu-isoe-west-1",
    }
)  # fmt: skip
# "Route 53 supports CloudWatch alarms with: standard-resolution metrics; statistics Average, Minimum, Maximum, Sum
# and SampleCount. Extended statistics aren't supported." (AlarmIdentifier.Name)
ROUTE53_ALARM_STATISTICS = frozenset({"Average", "Minimum", "Maximum", "Sum", "SampleCount"})


def check_probe(
    *, subnet_count: int, security_group_count: int, alarm_region: str, check_alarm_region: str, period: int,
    statistic: str,
) -> None:  # fmt: skip
    """The provider's rules for the probe, the alarm and the check: a ValueError naming the one broken."""
    if subnet_count < 1 or security_group_count < 1:
        raise ValueError(
            "a Lambda function in a VPC needs at least one subnet and one security group (VpcConfig: SubnetIds and "
            f"SecurityGroupIds), got {subnet_count} and {security_group_count}"
        )
    if check_alarm_region != alarm_region:
        raise ValueError(
            f"the health check reads its alarm in {check_alarm_region}, but the alarm is in {alarm_region}: "
            "cloudwatch_alarm_region must be the region the alarm was created in"
        )
    if alarm_region not in ROUTE53_ALARM_REGIONS:
        raise ValueError(f"Route 53 health checks cannot read CloudWatch alarms in {alarm_region}")
    if period < 60 or period % 60:
        raise ValueError(f"an alarm period of {period} s: Route 53 reads alarms on standard-resolution metrics only")
    if statistic not in ROUTE53_ALARM_STATISTICS:
        raise ValueError(f"the statistic {statistic}: Route 53 reads alarms with {sorted(ROUTE53_ALARM_STATISTICS)}")


def metric_policy() -> dict:
    """PutMetricData, only into the probe's namespace (the action supports no resource, only this condition key)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}},
            }
        ],
    }


def lambda_trust() -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }


def probe_environment(cluster: str, address: pulumi.Input[str], host: str, path: str, port: int) -> dict:
    return {
        "PROBE_ADDRESS": address,
        "PROBE_HOST": host,
        "PROBE_PORT": str(port),
        "PROBE_PATH": path,
        "PROBE_TIMEOUT": str(PROBE_REQUEST_TIMEOUT),
        "METRIC_NAMESPACE": METRIC_NAMESPACE,
        "METRIC_NAME": METRIC_NAME,
        "CLUSTER": cluster,
    }


def health_probe(
    prefix: str,
    *,
    cluster: str,
    region: str,
    address: pulumi.Input[str],
    network_id: pulumi.Input[str],
    subnet_ids: tuple[pulumi.Input[str], ...],
    host: str,
    path: str,
    port: int,
    period: int,
    evaluation_periods: int,
    regional: pulumi.ResourceOptions,
    on_dns: pulumi.ResourceOptions,
) -> tuple[aws.route53.HealthCheck, aws.cloudwatch.MetricAlarm]:
    """The probe for one region, the alarm on its metric and the Route 53 check on the alarm (see the module)."""
    statistic = "Minimum"
    check_probe(
        subnet_count=len(subnet_ids),
        security_group_count=1,
        alarm_region=region,
        check_alarm_region=region,
        period=period,
        statistic=statistic,
    )
    name = child(prefix, cluster, "probe")
    tags = {"Name": aws_name("tag-value", name), PROBE_TAG: PROBE_TAG_VALUE}
    group = aws.ec2.SecurityGroup(
        name,
        name=aws_name("security-group", name),
        description="turnout health probe: nothing in, HTTPS out",
        vpc_id=network_id,
        ingress=[],
        egress=[
            {
                "description": "the gateway's NLB and CloudWatch, over HTTPS",
                "protocol": "tcp",
                "from_port": 443,
                "to_port": 443,
                "cidr_blocks": ["0.0.0.0/0"],
            }
        ],
        tags=tags,
        opts=regional,
    )
    role = aws.iam.Role(
        name,
        name=aws_name("iam-role", name),
        description=f"turnout's health probe of {cluster}",
        assume_role_policy=json.dumps(lambda_trust()),
        opts=regional,
    )
    vpc_access = aws.iam.RolePolicyAttachment(name, role=role.name, policy_arn=VPC_ACCESS_POLICY, opts=regional)
    metrics = aws.iam.RolePolicy(
        name,
        name=aws_name("iam-policy", name),
        role=role.name,
        policy=json.dumps(metric_policy()),
        opts=regional,
    )
    function_name = aws_name("lambda-function", name, keep="-probe")
    logs = aws.cloudwatch.LogGroup(
        name,
        name=f"/aws/lambda/{function_name}",
        retention_in_days=LOG_RETENTION_DAYS,
        opts=regional,
    )
    function = aws.lambda_.Function(
        name,
        name=function_name,
        description=f"Request {cluster}'s health route through its internal NLB; publish 1 or 0 to CloudWatch",
        role=role.arn,
        runtime=PROBE_RUNTIME,
        handler=PROBE_HANDLER,
        code=pulumi.AssetArchive({PROBE_SOURCE.name: pulumi.FileAsset(str(PROBE_SOURCE))}),
        timeout=HEALTH_PROBE_TIMEOUT,
        memory_size=128,
        vpc_config={"subnet_ids": list(subnet_ids), "security_group_ids": [group.id]},
        environment={"variables": probe_environment(cluster, address, host, path, port)},
        tags=tags,
        opts=pulumi.ResourceOptions.merge(regional, pulumi.ResourceOptions(depends_on=[logs, vpc_access, metrics])),
    )
    rule = aws.cloudwatch.EventRule(
        name,
        name=aws_name("event-rule", name),
        description=f"Probe {cluster}'s health route every minute",
        schedule_expression=SCHEDULE,
        tags=tags,
        opts=regional,
    )
    permission = aws.lambda_.Permission(
        name,
        action="lambda:InvokeFunction",
        function=function.name,
        principal="events.amazonaws.com",
        source_arn=rule.arn,
        opts=regional,
    )
    aws.cloudwatch.EventTarget(
        name,
        rule=rule.name,
        arn=function.arn,
        target_id=aws_name("event-target", "health-probe"),
        opts=pulumi.ResourceOptions.merge(regional, pulumi.ResourceOptions(depends_on=[permission])),
    )
    alarm_name = child(prefix, cluster, "health-route")
    alarm = aws.cloudwatch.MetricAlarm(
        alarm_name,
        name=aws_name("cloudwatch-alarm", alarm_name, keep="-health-route"),
        alarm_description=f"{cluster}'s health route does not answer 2xx through its internal NLB: fail over",
        namespace=METRIC_NAMESPACE,
        metric_name=METRIC_NAME,
        dimensions={"Cluster": cluster},
        statistic=statistic,
        period=period,
        evaluation_periods=evaluation_periods,
        comparison_operator="LessThanThreshold",
        threshold=1,
        treat_missing_data="breaching",  # no data: the probe stopped publishing, or cannot reach CloudWatch
        opts=regional,
    )
    health = aws.route53.HealthCheck(
        child(prefix, cluster, "health"),
        type="CLOUDWATCH_METRIC",
        cloudwatch_alarm_name=alarm.name,
        cloudwatch_alarm_region=region,
        insufficient_data_health_status="Unhealthy",
        tags={"Name": aws_name("tag-value", child(prefix, cluster))},
        opts=on_dns,
    )
    return health, alarm
