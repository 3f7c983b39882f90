"""Caches: the checks (without the runtime), the in-cluster Redis on kind, and how endpoints are wired to a cache
(env, the password by Secret reference, mesh egress) under mocks. The cloud caches are in test_cache_clouds.py."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pulumi
import pytest

from components.cache import CacheConnection, backup_period, check_cache_settings
from components.cache.access import service_entry_spec
from components.cache.build import build_cache, cache_args, cache_connection, cache_replication
from components.cache.in_cluster import IMAGES
from components.cluster import ClusterArgs
from components.cluster.kind import KindCluster
from components.endpoint.model_endpoint import ModelEndpoint, ModelEndpointArgs
from tests.conftest import CRDS, dependency_closure, load
from tests.crd_schema import load_crds, validate_custom_resource
from tests.test_components import MESH, rolling_config
from turnout.config import Cache, NodePool
from turnout.errors import ConfigError, NotSupportedError
from turnout.offline import mocks_cache, sdk
from turnout.offline.runtime import REDACTED, run_function

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
SECRET = "kubernetes:core/v1:Secret"
SERVICE_ENTRY = "kubernetes:networking.istio.io/v1:ServiceEntry"
CONFIGURATION = "kubernetes:serving.knative.dev/v1:Configuration"


def by_name(run) -> dict:
    return {r.name: r for r in run.records}


def env_by_name(container: dict) -> dict[str, dict]:
    return {entry["name"]: entry for entry in container["env"]}


def assert_never_in_the_clear(run, secret: str) -> None:
    """The secret value appears in no record's redacted inputs and no stack output."""
    assert secret
    for record in run.records:
        assert secret not in json.dumps(record.inputs), f"{record.type} {record.name} shows the secret"
    assert secret not in json.dumps(run.stack_outputs)


# --- the checks, without the Pulumi runtime ---


@pytest.mark.parametrize(
    ("cloud", "interval", "shortest"),
    [("aws", 3600, "86400s"), ("gcp", 1800, "3600s"), ("azure", 1800, "3600s"), ("kind", 30, "60s")],
)
def test_a_backup_interval_shorter_than_the_cloud_can_snapshot_names_the_key(cloud, interval, shortest):
    with pytest.raises(ConfigError) as caught:
        check_cache_settings(cloud=cloud, engine="redis", backup_interval_seconds=interval, backup_retention_days=7)
    assert caught.value.path == "turnout:cache.backupInterval"
    assert caught.value.found == f"{interval}s on {cloud}"
    assert caught.value.allowed.startswith(f"at least {shortest}")


def test_the_backup_error_lists_the_periods_the_cloud_supports():
    with pytest.raises(ConfigError) as caught:
        check_cache_settings(cloud="gcp", engine="redis", backup_interval_seconds=60, backup_retention_days=1)
    assert caught.value.allowed == "at least 3600s: memorystore snapshots every 3600s, 21600s, 43200s, 86400s"


@pytest.mark.parametrize("days", [0, 36])
def test_elasticache_retention_outside_1_to_35_days_names_the_key(days):
    with pytest.raises(ConfigError) as caught:
        check_cache_settings(cloud="aws", engine="redis", backup_interval_seconds=86400, backup_retention_days=days)
    assert caught.value.path == "turnout:cache.backupRetention"
    assert caught.value.allowed == "1 to 35 days"


@pytest.mark.parametrize("cloud", ["gcp", "azure"])
def test_valkey_is_refused_where_the_managed_cache_runs_redis_only(cloud):
    with pytest.raises(NotSupportedError) as caught:
        check_cache_settings(cloud=cloud, engine="valkey", backup_interval_seconds=86400, backup_retention_days=7)
    assert caught.value.path == "turnout:cache.engine"
    assert "engine redis on" in caught.value.allowed


@pytest.mark.parametrize(("cloud", "why"), [("gcp", "Memorystore for Redis"), ("kind", "one region")])
def test_cross_region_replicas_are_refused_where_the_cache_cannot_replicate(cloud, why):
    with pytest.raises(NotSupportedError) as caught:
        check_cache_settings(
            cloud=cloud,
            engine="redis",
            backup_interval_seconds=86400,
            backup_retention_days=7,
            replica_regions=("europe-west1",),
        )
    assert caught.value.path == "turnout:cache"
    assert why in caught.value.found and "europe-west1" in caught.value.found
    assert "cross-region replicas on aws and azure" in caught.value.allowed


@pytest.mark.parametrize("cloud", ["aws", "azure"])
def test_supported_settings_pass(cloud):
    check_cache_settings(
        cloud=cloud,
        engine="redis",
        backup_interval_seconds=86400,
        backup_retention_days=35,
        replica_regions=("elsewhere",),
    )


@pytest.mark.parametrize(
    ("cloud", "interval", "period"),
    [
        ("aws", 7 * 86400, 86400),
        ("gcp", 7200, 3600),
        ("gcp", 4 * 3600, 21600),
        ("gcp", 12600, 3600),  # a tie between 1h and 6h takes the shorter period
        ("azure", 2700, 3600),  # Managed Redis RDB: 1h at the most frequent
        ("azure", 12600, 3600),  # a tie between 1h and 6h takes the shorter one
        ("azure", 5 * 86400, 43200),
        ("kind", 300, 300),
    ],
)
def test_the_snapshot_period_is_the_supported_one_nearest_the_interval(cloud, interval, period):
    assert backup_period(cloud, interval) == period


def test_replicas_must_be_in_another_region_of_the_fleet():
    clusters = [SimpleNamespace(region="us-east-1"), SimpleNamespace(region="us-west-2")]
    with pytest.raises(ConfigError) as caught:
        cache_args(
            "c", Cache(engine="redis"), cloud="aws", tier="dev", clusters=clusters, replica_regions=["eu-west-1"]
        )
    assert caught.value.path == "turnout:cache"
    assert caught.value.allowed == "replicas in the stack's other regions: us-west-2"
    args = cache_args("c", Cache(), cloud="aws", tier="dev", clusters=clusters, replica_regions=["us-west-2"])
    assert (args.primary.region, [site.region for site in args.replicas]) == ("us-east-1", ["us-west-2"])
    assert args.replicas[0].cluster is clusters[1]


def test_no_cache_key_builds_nothing():
    assert build_cache("c", None, cloud="aws", tier="prod", clusters=[]) is None
    assert cache_connection(None, "us-east-1") is None
    assert cache_replication(None) is None


def test_service_entries_match_host_names_by_sni_and_ips_by_address():
    named = SimpleNamespace(port=10000, ip_address=False)
    assert service_entry_spec(named, "c.westeurope.redis.azure.net") == {
        "hosts": ["c.westeurope.redis.azure.net"],
        "ports": [{"number": 10000, "name": "tls-redis", "protocol": "TLS"}],
        "location": "MESH_EXTERNAL",
        "resolution": "DNS",
        "exportTo": ["."],
    }
    by_ip = service_entry_spec(SimpleNamespace(port=6378, ip_address=True), "10.40.0.9")
    assert by_ip["addresses"] == ["10.40.0.9/32"] and by_ip["endpoints"] == [{"address": "10.40.0.9"}]
    assert by_ip["resolution"] == "STATIC" and by_ip["ports"][0]["protocol"] == "TCP"
    crds = load_crds(CRDS)
    for spec in (service_entry_spec(named, "c.westeurope.redis.azure.net"), by_ip):
        document = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": {}, "spec": spec}
        assert validate_custom_resource(document, crds) == []


def test_cache_mocks_answer_only_for_cache_resources():
    assert mocks_cache.resource_outputs("aws:ec2/vpc:Vpc", "v", {}) is None
    assert mocks_cache.resource_outputs("kubernetes:core/v1:Secret", "s", {}) is None
    assert mocks_cache.invoke("aws:index/getAvailabilityZones:getAvailabilityZones", {}) is None
    first = mocks_cache.resource_outputs(mocks_cache.RANDOM_PASSWORD, "p", {"length": 40})
    assert len(first["result"]) == 40 and first["result"].isalnum()
    assert first == mocks_cache.resource_outputs(mocks_cache.RANDOM_PASSWORD, "p", {"length": 40}), "stable"


# --- kind: Redis in the cluster ---


def kind_cluster() -> KindCluster:
    pool = NodePool(name="general", machine_type="kind-node", min=1, max=1)
    return KindCluster(
        "lab", ClusterArgs(cluster_name="lab", region="local", kubernetes_version="1.34", node_pools=(pool,))
    )


def kind_cache_run(engine: str = "redis", interval: int = 900):
    def program():
        cache = build_cache(
            "lab-cache",
            Cache(engine=engine),
            cloud="kind",
            tier="dev",
            clusters=[kind_cluster()],
            backup_interval_seconds=interval,
        )
        pulumi.export("address", cache.address)
        pulumi.export("replication", cache.replication)
        pulumi.export("port", cache.port)

    return run_function(program)


def test_in_cluster_redis_is_a_hardened_pinned_statefulset_with_its_data_on_a_volume():
    run = kind_cache_run()
    records = by_name(run)
    cluster_provider = records["lab-k8s"].urn
    statefulset = records["lab-cache-statefulset"]
    assert statefulset.provider == cluster_provider, "created in the kind cluster"
    spec = statefulset.inputs["spec"]
    assert spec["replicas"] == 1 and spec["serviceName"] == "lab-cache"
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == "lab-cache"
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 999,
        "runAsGroup": 999,
        "fsGroup": 999,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    (container,) = pod["containers"]
    assert container["image"] == "redis:7.4.5"
    assert re.fullmatch(r"[a-z/]+:\d+\.\d+\.\d+", container["image"]), "pinned by version"
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    }
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["exec"]["command"] == ["sh", "-c", "redis-cli -p 6379 ping | grep -q PONG"]
    assert container["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    args = container["args"]
    assert args[args.index("--save") + 1] == "900 1", "an RDB snapshot every backup interval"
    assert args[args.index("--dir") + 1] == "/data"
    assert args[args.index("--requirepass") + 1] == "$(CACHE_PASSWORD)", "expanded by the kubelet from the Secret"
    env = env_by_name(container)
    for name in ("CACHE_PASSWORD", "REDISCLI_AUTH"):
        assert env[name] == {"name": name, "valueFrom": {"secretKeyRef": {"name": "lab-cache-auth", "key": "password"}}}
    namespace = records["lab-cache-ns"].inputs["metadata"]
    assert namespace["name"] == "lab-cache"
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert "turnout.dev/endpoint" not in namespace["labels"], "the cache's own namespace is not a model namespace"
    assert records["lab-cache-ns"].urn in dependency_closure({r.urn: r for r in run.records}, statefulset.urn)


def test_in_cluster_password_is_generated_and_kept_out_of_the_plan():
    run = kind_cache_run()
    records = by_name(run)
    password = records["lab-cache-password"]
    assert password.type == mocks_cache.RANDOM_PASSWORD
    assert password.inputs == {"length": 48, "special": False}
    secret = records["lab-cache-secret"]
    assert secret.inputs["metadata"]["name"] == "lab-cache-auth"
    assert secret.inputs["stringData"] == REDACTED
    assert secret.raw_inputs["stringData"][sdk.SIG_KEY] == sdk.SECRET_SIG, "sent to the engine as a secret"
    assert_never_in_the_clear(run, password.raw_outputs["result"])


def test_in_cluster_service_and_network_policy_admit_only_model_namespaces_on_6379():
    run = kind_cache_run()
    records = by_name(run)
    service = records["lab-cache-svc"].inputs["spec"]
    assert service["type"] == "ClusterIP"
    assert service["ports"] == [{"name": "tcp-redis", "port": 6379, "targetPort": "redis", "protocol": "TCP"}]
    policy = records["lab-cache-netpol"].inputs["spec"]
    assert policy["podSelector"] == {"matchLabels": service["selector"]}
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"] == [
        {
            "from": [
                {"namespaceSelector": {"matchExpressions": [{"key": "turnout.dev/endpoint", "operator": "Exists"}]}}
            ],
            "ports": [{"port": 6379, "protocol": "TCP"}],
        }
    ]
    assert policy["egress"] == [], "the cache opens no connections"
    assert run.stack_outputs["address"] == {"local": "lab-cache.lab-cache.svc.cluster.local"}
    assert run.stack_outputs["port"] == 6379
    assert run.stack_outputs["replication"] == {
        "service": "in-cluster",
        "engine": "redis",
        "primaryRegion": "local",
        "regions": {"local": {"role": "primary", "nodes": 1, "zoneRedundant": False}},
        "crossRegion": None,
        "backup": {
            "intervalSeconds": 900,
            "requestedIntervalSeconds": 900,
            "retentionDays": None,
            "to": "persistent-volume-rdb",
        },
    }


def test_valkey_on_kind_runs_the_official_valkey_image():
    (container,) = by_name(kind_cache_run(engine="valkey"))["lab-cache-statefulset"].inputs["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["image"] == IMAGES["valkey"] == "valkey/valkey:8.1.1"
    assert container["command"] == ["valkey-server"]
    assert "valkey-cli" in container["readinessProbe"]["exec"]["command"][2]


def test_kind_refuses_replicas_before_creating_anything():
    cluster = SimpleNamespace(region="local")
    with pytest.raises(NotSupportedError):
        cache_args(
            "c",
            Cache(),
            cloud="kind",
            tier="dev",
            clusters=[cluster, SimpleNamespace(region="b")],
            replica_regions=["b"],
        )


# --- endpoints wired to a cache ---

PASSWORD = "offline-cache-password-4f2a"


def endpoint_run(backend: str = "istio", *, external: bool, ip: bool = False, env: dict | None = None):
    config = rolling_config(**({"env": env} if env else {}))
    config["endpoints"]["scores"]["backend"] = backend
    stack = load(config)
    name, endpoint = next(iter(stack.endpoints.items()))

    def program():
        address = "10.40.3.7" if ip else ("master.c.use1.cache.amazonaws.com" if external else "c.c.svc.cluster.local")
        connection = CacheConnection(
            address=pulumi.Output.from_input(address),
            port=6378 if ip else 6379,
            password=pulumi.Output.secret(PASSWORD),
            tls=external,
            role="primary",
            in_cluster=not external,
            ip_address=ip,
            ca_certificate=pulumi.Output.from_input("-----BEGIN CERTIFICATE-----\n") if ip else None,
        )
        args = ModelEndpointArgs(
            endpoint_name=name, endpoint=endpoint, tier="dev", cluster="lab", mesh=MESH, after=(), cache=connection
        )
        ModelEndpoint(f"lab-{name}", args)

    return run_function(program)


def test_endpoint_workloads_get_the_cache_address_and_the_password_as_a_mounted_secret_file():
    run = endpoint_run(external=True, env={"REDIS_ADDR": "overridden", "MODEL_URI": "s3://m/1"})
    records = by_name(run)
    deployment = records["lab-scores-v1-deployment"]
    (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
    env = env_by_name(container)
    assert env["REDIS_ADDR"] == {"name": "REDIS_ADDR", "value": "master.c.use1.cache.amazonaws.com"}
    assert env["REDIS_PORT"] == {"name": "REDIS_PORT", "value": "6379"}
    assert env["REDIS_TLS"] == {"name": "REDIS_TLS", "value": "true"}
    assert env["REDIS_ROLE"] == {"name": "REDIS_ROLE", "value": "primary"}
    # a file, not an env var: env leaks through crash dumps, /proc and child processes (checkov CKV_K8S_35)
    assert env["REDIS_PASSWORD_FILE"] == {
        "name": "REDIS_PASSWORD_FILE",
        "value": "/var/run/secrets/turnout/cache/password",
    }
    assert "REDIS_PASSWORD" not in env
    assert container["volumeMounts"][-1] == {
        "name": "turnout-cache",
        "mountPath": "/var/run/secrets/turnout/cache",
        "readOnly": True,
    }
    pod = deployment.inputs["spec"]["template"]["spec"]
    assert pod["volumes"][-1] == {
        "name": "turnout-cache",
        "secret": {"secretName": "turnout-cache", "defaultMode": 0o440},
    }
    assert [e["name"] for e in container["env"]].count("REDIS_ADDR") == 1, "the cache's address wins"
    assert env["MODEL_URI"]["value"] == "s3://m/1"
    assert "REDIS_CA_CERT_FILE" not in env

    secret = records["lab-scores-cache-secret"]
    assert secret.inputs["metadata"]["name"] == "turnout-cache"
    assert secret.inputs["metadata"]["namespace"] == "scores"
    assert secret.inputs["stringData"] == REDACTED
    assert secret.urn in dependency_closure({r.urn: r for r in run.records}, deployment.urn), "pods need the Secret"
    assert PASSWORD not in json.dumps(deployment.raw_inputs), "only a reference reaches the pod spec"
    assert_never_in_the_clear(run, PASSWORD)


def test_an_external_cache_is_registered_with_the_mesh_for_the_namespace_only():
    run = endpoint_run(external=True)
    entries = [r for r in run.records if r.type == SERVICE_ENTRY]
    assert [e.inputs["metadata"]["namespace"] for e in entries] == ["scores"]
    spec = entries[0].inputs["spec"]
    assert spec["hosts"] == ["master.c.use1.cache.amazonaws.com"]
    assert spec["ports"] == [{"number": 6379, "name": "tls-redis", "protocol": "TLS"}]
    assert (spec["location"], spec["resolution"], spec["exportTo"]) == ("MESH_EXTERNAL", "DNS", ["."])
    document = {k: entries[0].inputs[k] for k in ("apiVersion", "kind", "metadata", "spec")}
    assert validate_custom_resource(document, load_crds(CRDS)) == []


def test_an_in_cluster_cache_needs_no_mesh_entry_and_no_tls():
    run = endpoint_run(external=False)
    assert not [r for r in run.records if r.type == SERVICE_ENTRY]
    (container,) = by_name(run)["lab-scores-v1-deployment"].inputs["spec"]["template"]["spec"]["containers"]
    assert env_by_name(container)["REDIS_TLS"]["value"] == "false"


def test_a_cache_with_a_private_ca_hands_it_to_workloads_and_is_matched_by_ip():
    run = endpoint_run(external=True, ip=True)
    records = by_name(run)
    (container,) = records["lab-scores-v1-deployment"].inputs["spec"]["template"]["spec"]["containers"]
    env = env_by_name(container)
    assert env["REDIS_CA_CERT_FILE"]["value"] == "/var/run/secrets/turnout/cache/ca.crt"
    assert env["REDIS_PORT"]["value"] == "6378"
    (entry,) = [r for r in run.records if r.type == SERVICE_ENTRY]
    assert entry.inputs["spec"]["addresses"] == ["10.40.3.7/32"]
    assert entry.inputs["spec"]["resolution"] == "STATIC"


def test_knative_revisions_take_the_same_cache_env_and_secret_file():
    run = endpoint_run("knative", external=True)
    (configuration,) = [r for r in run.records if r.type == CONFIGURATION]
    (container,) = configuration.inputs["spec"]["template"]["spec"]["containers"]
    env = env_by_name(container)
    assert env["TARGET"]["value"] == "v1"
    assert env["REDIS_ADDR"]["value"] == "master.c.use1.cache.amazonaws.com"
    assert env["REDIS_PASSWORD_FILE"]["value"] == "/var/run/secrets/turnout/cache/password"
    assert container["volumeMounts"][-1] == {
        "name": "turnout-cache",
        "mountPath": "/var/run/secrets/turnout/cache",
        "readOnly": True,
    }
    assert configuration.inputs["spec"]["template"]["spec"]["volumes"][-1]["secret"]["secretName"] == "turnout-cache"
    secret = by_name(run)["lab-scores-cache-secret"]
    assert secret.urn in dependency_closure({r.urn: r for r in run.records}, configuration.urn)
    assert_never_in_the_clear(run, PASSWORD)


def test_without_a_cache_endpoints_are_unchanged():
    config = rolling_config()
    stack = load(config)
    name, endpoint = next(iter(stack.endpoints.items()))
    run = run_function(
        lambda: ModelEndpoint(
            "lab-scores",
            ModelEndpointArgs(endpoint_name=name, endpoint=endpoint, tier="dev", cluster="lab", mesh=MESH, after=()),
        )
    )
    (container,) = by_name(run)["lab-scores-v1-deployment"].inputs["spec"]["template"]["spec"]["containers"]
    assert not [e for e in container["env"] if e["name"].startswith("REDIS_")]
    assert not [r for r in run.records if r.type in (SECRET, SERVICE_ENTRY)]
