"""DR rules: dr-target-achievable re-derives the detection and DNS terms, and an automated failover's trigger alarm
and steps (the ARC Region switch plan), from what the stack creates; dr-warm-standby-not-zero; and prod-min-replicas
across several clusters."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
from pulumi_azure_native import redisenterprise

from tests.policy_cases import fails, missing, passes

WARM = {"healthCheckInterval": 10, "failureThreshold": 3, "ttl": 60, "policy": "failover"}


def dr_record(rpo=30, rto=300, tier="warm-standby", estimated=(1, 240), routing=WARM, data=True, automation=None):
    document = {
        "target": {"rpoSeconds": rpo, "rtoSeconds": rto},
        "tier": tier,
        "regions": ["us-east-1", "us-west-2"] if routing else ["us-east-1"],
        "estimatedRpoSeconds": estimated[0],
        "estimatedRtoSeconds": estimated[1],
        "meets": True,
        "reasons": [],
        "settings": {"routing": routing, **({"automation": automation} if automation else {})},
    }
    return k8s.core.v1.ConfigMap(
        "dr",
        metadata={"name": "turnout-dr", "namespace": "turnout-system"},
        data={"dr.json": json.dumps(document)} if data else None,
    )


def health_check(interval=10, threshold=3, name="hc", route=False, type="HTTPS", port=443):
    """A Route 53 probe: of the gateway (the record counts no health route), or with `route` of the health route
    (HTTPS on 443 with SNI on the cluster's health host, /ready)."""
    return aws.route53.HealthCheck(
        name,
        type=type,
        fqdn="turnout-health-prod-us-east-1.models.example.com" if route else "gw.us-east-1.example.com",
        port=port,
        resource_path="/ready" if route else "/healthz/ready",
        enable_sni=True if route else None,
        request_interval=interval,
        failure_threshold=threshold,
    )


def record(ttl=60):
    return aws.route53.Record(
        "rec", zone_id="Z1", name="*.models.example.com", type="CNAME", ttl=ttl, records=["gw.example.com"]
    )


def warm_stack(interval=10, threshold=3, ttl=60):
    return lambda: (dr_record(), health_check(interval, threshold), record(ttl))


GKE_INTERNAL = {"healthCheckInterval": 3, "failureThreshold": 2, "ttl": 60, "policy": "failover"}


def gcp_internal_stack(targets="internal_load_balancers", ttl=60):
    """A pilot light on GCP with an internal gateway: Cloud DNS over the internal load balancers, judged by GKE's own
    check of each (3 s x 2), which the stack does not create; the record counts 6 s of detection (estimate 666 s)."""

    def program():
        dr_record(tier="pilot-light", rto=900, estimated=(0, 666), routing=GKE_INTERNAL)
        target = (
            {
                "internal_load_balancers": [
                    {
                        "ip_address": "10.0.0.9",
                        "ip_protocol": "tcp",
                        "port": "443",
                        "network_url": "projects/p/global/networks/n",
                        "project": "p",
                        "load_balancer_type": "regionalL4ilb",
                        "region": "europe-west4",
                    }
                ]
            }
            if targets == "internal_load_balancers"
            else {"external_endpoints": ["34.1.2.3"]}
        )
        gcp.dns.RecordSet(
            "internal-record",
            managed_zone="models-example-com-private",
            name="*.models.example.com.",
            type="A",
            ttl=ttl,
            routing_policy={"primary_backup": {"primary": target, "backup_geos": []}},
        )

    return program


ROUTED = {**WARM, "aggregateSeconds": 8}  # failover DNS probes the health route: its aggregator's lag counts


def health_aggregator(period=5, timeout=3, readable=True, name="turnout-health"):
    """The health aggregator's ConfigMap as components/dr/health.py creates it."""
    config = {"gateway": "istio-ingressgateway.istio-system.svc.cluster.local", "port": 443, "endpoints": []}
    config.update({"period": period, "timeout": timeout} if readable else {})
    return k8s.core.v1.ConfigMap(
        f"health-{period}-{timeout}-{readable}-{name}",
        metadata={"name": name, "namespace": "turnout-system"},
        data={"config.json": json.dumps(config), "aggregator.py": "..."},
    )


def routed_stack(aggregator=True, probe=None, **aggregator_args):
    """A warm standby whose failover DNS probes the health route: the record counts 8 s of aggregator lag."""

    def program():
        dr_record(estimated=(1, 248), routing=ROUTED)
        health_check(**(probe or {"route": True}))
        record()
        if aggregator:
            health_aggregator(**aggregator_args)

    return program


INTERNAL = {**ROUTED, "healthCheckInterval": 60, "probeSeconds": 70}  # AWS internal: the in-VPC probe's 60 + 10 s
PROBE_TAGS = {"turnout.dev/purpose": "health-probe"}


def internal_stack(probe=True, rate="rate(1 minute)", timeout=10, path="/ready"):
    """A pilot light with an AWS internal gateway (components/globaltraffic/aws_probe.py): a probe in the VPC on a
    schedule requests the health route, an alarm of 60 s x 3 on its metric, the Route 53 check on the alarm; the
    record counts 8 + 70 + 180 s of detection (estimate 500 s of a 600 s target)."""

    def program():
        dr_record(tier="pilot-light", rto=600, estimated=(1, 500), routing=INTERNAL)
        health_aggregator()
        record()
        alarm = aws.cloudwatch.MetricAlarm(
            "route-alarm",
            name="east-health-route",
            namespace="Turnout/HealthRoute",
            metric_name="HealthRouteUp",
            statistic="Minimum",
            period=60,
            evaluation_periods=3,
            comparison_operator="LessThanThreshold",
            threshold=1,
        )
        aws.route53.HealthCheck(
            "route-check",
            type="CLOUDWATCH_METRIC",
            cloudwatch_alarm_name=alarm.name,
            cloudwatch_alarm_region="us-east-1",
        )
        if probe:
            aws.cloudwatch.EventRule("probe-schedule", schedule_expression=rate, tags=PROBE_TAGS)
            aws.lambda_.Function(
                "probe",
                role="arn:aws:iam::123456789012:role/probe",
                runtime="python3.12",
                handler="health_probe.handler",
                code=pulumi.AssetArchive({"health_probe.py": pulumi.StringAsset("")}),
                timeout=timeout,
                environment={"variables": {"PROBE_HOST": "turnout-health.models.example.com", "PROBE_PORT": "443",
                                           "PROBE_PATH": path}},
                tags=PROBE_TAGS,
            )  # fmt: skip

    return program


AUTOMATIC = {
    "orchestrator": "arc-region-switch",
    "recoveryApproach": "activePassive",
    "primaryRegion": "us-east-1",
    "regions": ["us-east-1", "us-west-2"],
    "steps": ["promote-cache", "scale-models", "route-traffic"],
    "trigger": {"period": 60, "evaluationPeriods": 1, "minDelayMinutes": 60},
}
ALARM_ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{}"


def arc_plan(blocks=("CustomActionLambda", "EKSResourceScaling"), trigger=True, alarm="east-health"):
    """A Region switch plan: the given blocks in a Parallel block, then the Route 53 step; a trigger on `alarm`."""
    parallel = [{"name": block.lower(), "execution_block_type": block} for block in blocks]
    return aws.arcregionswitch.Plan(
        "plan",
        name="prod-failover",
        execution_role="arn:aws:iam::123456789012:role/arc",
        recovery_approach="activePassive",
        regions=["us-east-1", "us-west-2"],
        associated_alarms=[
            {
                "map_block_key": "us-east-1-health",
                "alarm_type": "trigger",
                "resource_identifier": ALARM_ARN.format(alarm),
            },
            {
                "map_block_key": "us-west-2-health",
                "alarm_type": "trigger",
                "resource_identifier": ALARM_ARN.format("w"),
            },
        ],
        triggers=[
            {
                "action": "activate",
                "target_region": "us-west-2",
                "min_delay_minutes_between_executions": 60,
                "conditions": [
                    {"associated_alarm_name": "us-east-1-health", "condition": "red"},
                    {"associated_alarm_name": "us-west-2-health", "condition": "green"},
                ],
            }
        ]
        if trigger
        else None,
        workflows=[
            {
                "workflow_target_action": "activate",
                "steps": [
                    {"name": "both", "execution_block_type": "Parallel", "parallel_configs": [{"steps": parallel}]},
                    {"name": "route-traffic", "execution_block_type": "Route53HealthCheck"},
                ],
            }
        ],
    )


def status_alarm(name="east-health", period=60, periods=1):
    return aws.cloudwatch.MetricAlarm(
        name,
        name=name,
        namespace="AWS/Route53",
        metric_name="HealthCheckStatus",
        statistic="Minimum",
        period=period,
        evaluation_periods=periods,
        comparison_operator="LessThanThreshold",
        threshold=1,
    )


def automatic_stack(plan=True, alarm_period=60, **plan_args):
    """A warm standby whose failover starts by itself: the record counts a 60 s trigger alarm (estimate 300 s)."""

    def program():
        dr_record(estimated=(1, 300), automation=AUTOMATIC)
        health_check()
        record()
        status_alarm(period=alarm_period)
        if plan:
            arc_plan(**plan_args)

    return program


def deployment(name="m-v1", replicas=1, standby="reduced", provider=None, tier="prod"):
    labels = {"turnout.dev/tier": tier, **({"turnout.dev/dr-standby": standby} if standby else {})}
    spec = {
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "m", "image": "m:1"}]}},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return k8s.apps.v1.Deployment(
        f"{name}-{standby}-{id(provider)}",
        metadata={"name": name, "namespace": "models", "labels": labels},
        spec=spec,
        opts=pulumi.ResourceOptions(provider=provider),
    )


def hpa(minimum, provider, name="m-v1"):
    return k8s.autoscaling.v2.HorizontalPodAutoscaler(
        f"{name}-hpa-{id(provider)}",
        metadata={"name": name, "namespace": "models"},
        spec={
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": minimum,
            "maxReplicas": 10,
        },
        opts=pulumi.ResourceOptions(provider=provider),
    )


def two_clusters(standby_label="reduced"):
    """The same model in a primary (HPA min 3) and a standby cluster (HPA min 1)."""

    def program():
        primary = k8s.Provider("primary", kubeconfig="{}")
        standby = k8s.Provider("standby", kubeconfig="{}")
        deployment(replicas=None, standby=None, provider=primary)
        hpa(3, primary)
        deployment(replicas=None, standby=standby_label, provider=standby)
        hpa(1, standby)

    return program


def elasticache(global_datastore=False):
    def program():
        group = aws.elasticache.ReplicationGroup(
            "cache", description="c", node_type="cache.r7g.large", engine="valkey", num_cache_clusters=2
        )
        if global_datastore:
            aws.elasticache.GlobalReplicationGroup(
                "global", global_replication_group_id_suffix="c", primary_replication_group_id=group.id
            )

    return program


def managed_redis(regions=("westeurope", "northeurope"), group="prod-cache"):
    """Azure Managed Redis clusters and their databases as components/cache/azure_redis.py makes them: one
    geo-replication group over `regions` (group None: each database on its own)."""

    def program():
        for region in regions:
            redisenterprise.RedisEnterprise(
                f"cache-{region}",
                cluster_name=f"cache-{region}",
                resource_group_name=f"cache-{region}-rg",
                location=region,
                sku={"name": "Balanced_B5"},
                public_network_access="Disabled",
            )
            redisenterprise.Database(
                f"cache-{region}-database",
                cluster_name=f"cache-{region}",
                resource_group_name=f"cache-{region}-rg",
                database_name="default",
                geo_replication=None
                if group is None
                else {"group_nickname": group, "linked_databases": [{"id": f"cache-{region}/databases/default"}]},
            )

    return program


def in_cluster_redis():
    k8s.apps.v1.StatefulSet(
        "redis",
        metadata={"name": "redis", "namespace": "turnout-cache"},
        spec={
            "serviceName": "redis",
            "selector": {"matchLabels": {"app": "redis"}},
            "template": {
                "metadata": {"labels": {"app": "redis"}},
                "spec": {"containers": [{"name": "redis", "image": "redis:7.4.5"}]},
            },
        },
    )


CASES = {
    "dr-target-achievable": [
        passes(warm_stack()),
        passes(lambda: deployment()),  # no DR record: no target declared
        fails(
            warm_stack(interval=30, threshold=5),  # detection 150 s, not the 30 s the estimate assumed
            "warm-standby over us-east-1, us-west-2 recovers in 360s; the target RTO is 300s.",
        ),
        fails(warm_stack(ttl=121), "warm-standby over us-east-1, us-west-2 recovers in 301s; the target RTO is 300s."),
        fails(
            lambda: dr_record(tier="backup-restore", estimated=(0, 3120), routing=None),
            "backup-restore over us-east-1 recovers in 3120s; the target RTO is 300s.",
        ),
        fails(
            lambda: dr_record(rpo=30, estimated=(86400, 240)),
            "warm-standby relies on health-checked failover, but the stack creates no health check.",
            "warm-standby over us-east-1, us-west-2 has no bounded recovery time; the target RTO is 300s.",
            "warm-standby over us-east-1, us-west-2 loses up to 86400s of data; the target RPO is 30s.",
        ),
        missing(lambda: dr_record(data=False), "the DR record turnout-system/turnout-dr is unreadable."),
        passes(gcp_internal_stack()),  # GKE's 3 s x 2 check of each internal load balancer counts
        fails(
            gcp_internal_stack(ttl=300),
            "pilot-light over us-east-1, us-west-2 recovers in 906s; the target RTO is 900s.",
        ),
        fails(
            gcp_internal_stack(targets="external_endpoints"),  # no internal targets, and no health check created
            "pilot-light relies on health-checked failover, but the stack creates no health check.",
            "pilot-light over us-east-1, us-west-2 has no bounded recovery time; the target RTO is 900s.",
        ),
        passes(routed_stack()),
        passes(routed_stack(period=2, timeout=2)),  # quicker than counted
        fails(
            routed_stack(period=60, timeout=10),  # 70 s of lag, not 8: 248 + 62 = 310 s
            "warm-standby over us-east-1, us-west-2 recovers in 310s; the target RTO is 300s.",
        ),
        fails(
            routed_stack(probe={"type": "HTTP", "port": 15021}),  # the gateway's status port, not the models
            "warm-standby counts on the health route, but hc probes something else (not HTTPS on 443 with the health "
            "host, /ready): a region whose models stop answering stays in DNS.",
            "warm-standby over us-east-1, us-west-2 has no bounded recovery time; the target RTO is 300s.",
        ),
        fails(
            routed_stack(aggregator=False),
            "warm-standby counts the health route's lag (8s), but the stack serves no health route "
            "(turnout-system/turnout-health): failover DNS probes a path nothing answers.",
            "warm-standby over us-east-1, us-west-2 has no bounded recovery time; the target RTO is 300s.",
        ),
        fails(
            routed_stack(readable=False),
            "warm-standby over us-east-1, us-west-2 has no bounded recovery time; the target RTO is 300s.",
            "warm-standby: a health aggregator's configuration is unreadable, so nothing bounds when the health "
            "route notices an outage.",
        ),
        fails(
            routed_stack(name="something-else"),  # a ConfigMap that is not the aggregator's
            "warm-standby counts the health route's lag (8s), but the stack serves no health route "
            "(turnout-system/turnout-health): failover DNS probes a path nothing answers.",
            "warm-standby over us-east-1, us-west-2 has no bounded recovery time; the target RTO is 300s.",
        ),
        passes(internal_stack()),  # the probe's schedule and timeout as counted
        fails(
            internal_stack(rate="rate(5 minutes)"),  # 310 s, not 70: 500 + 240 = 740 s
            "pilot-light over us-east-1, us-west-2 recovers in 740s; the target RTO is 600s.",
        ),
        fails(
            internal_stack(probe=False),
            "pilot-light counts an in-VPC probe of the health route (70s), but the stack creates no scheduled probe "
            "(an EventBridge rate schedule and its function, tagged turnout.dev/purpose: health-probe): nothing "
            "publishes the metric the failover alarm reads.",
            "pilot-light over us-east-1, us-west-2 has no bounded recovery time; the target RTO is 600s.",
        ),
        fails(
            internal_stack(path="/healthz/ready"),
            "pilot-light counts the in-VPC probe of the health route, but probe requests something else (not 443, "
            "/ready, with the health host): a region whose models stop answering stays in DNS.",
            "pilot-light over us-east-1, us-west-2 has no bounded recovery time; the target RTO is 600s.",
        ),
        passes(automatic_stack()),
        fails(
            automatic_stack(alarm_period=300),  # a 5-minute alarm, not the minute the estimate counted
            "warm-standby over us-east-1, us-west-2 recovers in 540s; the target RTO is 300s.",
        ),
        fails(
            automatic_stack(plan=False),
            "warm-standby counts an ARC Region switch plan that starts by itself, but the stack creates none.",
            "warm-standby over us-east-1, us-west-2 has no bounded recovery time; the target RTO is 300s.",
        ),
        fails(
            automatic_stack(trigger=False),
            "plan prod-failover has no trigger: nothing starts it by itself.",
            "warm-standby over us-east-1, us-west-2 has no bounded recovery time; the target RTO is 300s.",
        ),
        fails(
            automatic_stack(alarm="someone-elses-alarm"),
            "plan prod-failover's trigger reads an alarm the stack does not create.",
            "warm-standby over us-east-1, us-west-2 has no bounded recovery time; the target RTO is 300s.",
        ),
        fails(
            automatic_stack(blocks=("EKSResourceScaling",)),  # nothing promotes the cache
            "warm-standby counts the plan's promote-cache step, but plan prod-failover has no CustomActionLambda step.",
            "warm-standby over us-east-1, us-west-2 has no bounded recovery time; the target RTO is 300s.",
        ),
    ],
    "dr-cache-replication": [
        passes(lambda: (dr_record(rpo=30), elasticache(global_datastore=True)())),
        passes(lambda: (dr_record(rpo=3600), elasticache()())),  # backups are enough for an hour
        passes(lambda: dr_record(rpo=30)),  # no cache: nothing to replicate
        fails(
            lambda: (dr_record(rpo=30), elasticache()()),
            "the target RPO is 30s, but the cache (ElastiCache) has no cross-region replica.",
        ),
        passes(lambda: (dr_record(rpo=30), managed_redis()())),  # one group over two regions
        fails(
            lambda: (dr_record(rpo=30), managed_redis(regions=("westeurope",))()),
            "the target RPO is 30s, but the cache (Azure Managed Redis) has no cross-region replica.",
        ),
        fails(
            lambda: (dr_record(rpo=30), managed_redis(group=None)()),  # two regions, but no group between them
            "the target RPO is 30s, but the cache (Azure Managed Redis) has no cross-region replica.",
        ),
        fails(
            lambda: (dr_record(rpo=30), in_cluster_redis()),
            "the target RPO is 30s, but the cache (in-cluster Redis) has no cross-region replica.",
        ),
        missing(lambda: (dr_record(data=False), elasticache()())),  # unreadable: dr-target-achievable says so
    ],
    "dr-warm-standby-not-zero": [
        passes(lambda: deployment(replicas=1)),
        passes(lambda: deployment(replicas=0, standby="zero")),  # a pilot light may be empty
        fails(lambda: deployment(replicas=0), "models/m-v1 is a warm standby scaled to 0 replicas."),
        missing(lambda: deployment(replicas=None)),  # Kubernetes defaults to one replica
    ],
    "prod-min-replicas": [
        passes(two_clusters()),  # keys include the cluster: the standby's HPA is not the primary's
        fails(two_clusters(standby_label=None), "models/m-v1 runs 1 replica(s); prod needs 2."),
    ],
}
