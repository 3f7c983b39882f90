"""DR rules: dr-target-achievable re-derives the detection and DNS terms from what the stack
creates; dr-warm-standby-not-zero; and prod-min-replicas across several clusters."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from tests.policy_cases import fails, missing, passes

WARM = {"healthCheckInterval": 10, "failureThreshold": 3, "ttl": 60, "policy": "failover"}


def dr_record(rpo=30, rto=300, tier="warm-standby", estimated=(1, 240), routing=WARM, data=True):
    document = {
        "target": {"rpoSeconds": rpo, "rtoSeconds": rto},
        "tier": tier,
        "regions": ["us-east-1", "us-west-2"] if routing else ["us-east-1"],
        "estimatedRpoSeconds": estimated[0],
        "estimatedRtoSeconds": estimated[1],
        "meets": True,
        "reasons": [],
        "settings": {"routing": routing},
    }
    return k8s.core.v1.ConfigMap(
        "dr",
        metadata={"name": "turnout-dr", "namespace": "turnout-system"},
        data={"dr.json": json.dumps(document)} if data else None,
    )


def health_check(interval=10, threshold=3, name="hc"):
    return aws.route53.HealthCheck(
        name,
        type="HTTPS",
        fqdn="gw.us-east-1.example.com",
        port=443,
        resource_path="/healthz/ready",
        request_interval=interval,
        failure_threshold=threshold,
    )


def record(ttl=60):
    return aws.route53.Record(
        "rec", zone_id="Z1", name="*.models.example.com", type="CNAME", ttl=ttl, records=["gw.example.com"]
    )


def warm_stack(interval=10, threshold=3, ttl=60):
    return lambda: (dr_record(), health_check(interval, threshold), record(ttl))


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
    ],
    "dr-cache-replication": [
        passes(lambda: (dr_record(rpo=30), elasticache(global_datastore=True)())),
        passes(lambda: (dr_record(rpo=3600), elasticache()())),  # backups are enough for an hour
        passes(lambda: dr_record(rpo=30)),  # no cache: nothing to replicate
        fails(
            lambda: (dr_record(rpo=30), elasticache()()),
            "the target RPO is 30s, but the cache (ElastiCache) has no cross-region replica.",
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
