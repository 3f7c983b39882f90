"""Components under Pulumi's mocks: what they create and the inputs that matter for safety."""

from __future__ import annotations

import pytest
import yaml

from components.cluster import ClusterArgs
from components.cluster.kind import KIND_NODE_IMAGES, KindCluster
from components.endpoint.model_endpoint import ModelEndpoint, ModelEndpointArgs
from components.mesh.platform import MeshInfo
from tests.conftest import dependency_closure, load, sample_config
from turnout.config import NodePool
from turnout.errors import ConfigError
from turnout.offline.runtime import run_function


def kind_args(**overrides) -> ClusterArgs:
    args = {
        "cluster_name": "lab",
        "region": "local",
        "kubernetes_version": "1.34",
        "node_pools": (NodePool(name="general", machine_type="kind-node", min=2, max=2),),
        "load_images": ("turnout-model-echo:0.1.0",),
    }
    return ClusterArgs(**{**args, **overrides})


def by_name(run):
    return {r.name: r for r in run.records}


def test_kind_cluster_creates_with_kind_and_builds_the_provider_from_its_kubeconfig():
    run = run_function(lambda: KindCluster("lab", kind_args()))
    records = by_name(run)
    create = records["lab-create"].inputs
    assert create["create"] == "kind create cluster --name lab --config - --wait 180s"
    assert create["delete"] == "kind delete cluster --name lab"
    kind_config = yaml.safe_load(create["stdin"])
    assert kind_config["apiVersion"] == "kind.x-k8s.io/v1alpha4" and kind_config["name"] == "lab"
    assert [n["role"] for n in kind_config["nodes"]] == ["control-plane", "worker", "worker"]
    assert {n["image"] for n in kind_config["nodes"]} == {KIND_NODE_IMAGES["1.34"]}
    assert "@sha256:" in KIND_NODE_IMAGES["1.34"]
    assert kind_config["nodes"][1]["labels"] == {"turnout.dev/pool": "general"}

    assert records["lab-kubeconfig"].inputs["create"] == "kind get kubeconfig --name lab"
    assert records["lab-load-0"].inputs["create"] == "kind load docker-image turnout-model-echo:0.1.0 --name lab"
    assert records["lab-kubeconfig"].parent == records["lab"].urn

    provider = records["lab-k8s"]
    assert provider.type == "pulumi:providers:kubernetes"
    assert provider.inputs["kubeconfig"] == "[secret]", "the kubeconfig is a secret"
    # The provider's kubeconfig is the one the mocked `kind get kubeconfig` returned, not a placeholder.
    kubeconfig = yaml.safe_load(provider.raw_inputs["kubeconfig"]["value"])
    assert kubeconfig["current-context"] == "kind-lab"
    assert kubeconfig["clusters"][0]["cluster"]["server"].startswith("https://127.0.0.1:")
    assert set(provider.dependencies) >= {records["lab-kubeconfig"].urn, records["lab-load-0"].urn}


def test_kind_refuses_versions_without_a_pinned_node_image():
    with pytest.raises(ConfigError) as caught:
        run_function(lambda: KindCluster("lab", kind_args(kubernetes_version="1.29")))
    assert caught.value.path == "turnout:platform.kubernetesVersion"
    assert "1.34, 1.35, 1.36, 1.37" in caught.value.allowed


MESH = MeshInfo(
    gateway="istio-system/turnout-gateway",
    gateway_principal="cluster.local/ns/istio-system/sa/istio-ingressgateway",
    domain="127.0.0.1.sslip.io",
    knative_namespace=None,
    platform_namespaces=("istio-system",),
    image_pull_policy="Always",
)


def endpoint_run(config: dict, tier: str = "dev"):
    config["tier"] = tier
    stack = load(config)
    name, endpoint = next(iter(stack.endpoints.items()))

    def program():
        args = ModelEndpointArgs(endpoint_name=name, endpoint=endpoint, tier=tier, cluster="lab", mesh=MESH, after=())
        ModelEndpoint(f"lab-{name}", args)

    return run_function(program)


def rolling_config(**version) -> dict:
    config = sample_config()
    config["endpoints"] = {
        "scores": {
            "port": 9000,
            "healthPath": "/ready",
            "versions": {"v1": {"image": "ghcr.io/acme/scores:1.0.0", **version}},
            "strategy": {"type": "rolling", "maxSurge": "50%", "maxUnavailable": 1},
        }
    }
    return config


def test_rolling_endpoint_renders_a_hardened_deployment():
    records = by_name(endpoint_run(rolling_config(env={"MODEL_URI": "s3://m/1"})))
    namespace_labels = records["lab-scores-ns-ns"].inputs["metadata"]["labels"]
    assert namespace_labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespace_labels["istio-injection"] == "enabled"
    deployment = records["lab-scores-v1-deployment"].inputs
    spec = deployment["spec"]
    assert deployment["metadata"] == {
        "name": "scores-v1",
        "namespace": "scores",
        "annotations": {
            "checkov.io/skip1": "CKV_K8S_43=pinned by version tag, which the image-pinned policy accepts; "
            "use a digest to pass"
        },
        "labels": {
            "app.kubernetes.io/name": "scores",
            "app.kubernetes.io/part-of": "turnout",
            "app.kubernetes.io/managed-by": "pulumi",
            "app.kubernetes.io/version": "v1",
            "turnout.dev/endpoint": "scores",
            "turnout.dev/tier": "dev",
            "turnout.dev/version": "v1",
        },
    }
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "50%", "maxUnavailable": 1}}
    assert "replicas" not in spec, "the HPA owns the replica count"
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "scores-v1" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "250m", "memory": "256Mi"},
    }
    assert {"name": "TARGET", "value": "v1"} in container["env"]
    assert {"name": "MODEL_URI", "value": "s3://m/1"} in container["env"]

    hpa = records["lab-scores-v1-hpa"].inputs["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 3)
    assert "lab-scores-v1-pdb" not in records, "a single replica cannot keep a disruption budget"

    service = records["lab-scores-svc"].inputs["spec"]
    assert service["selector"] == {"app.kubernetes.io/name": "scores", "turnout.dev/role": "serving"}
    assert service["ports"][0]["targetPort"] == "http"


def test_prod_versions_get_two_replicas_and_a_disruption_budget():
    records = by_name(endpoint_run(rolling_config(replicas={"min": 2, "max": 2}), tier="prod"))
    assert records["lab-scores-v1-deployment"].inputs["spec"]["replicas"] == 2
    assert "lab-scores-v1-hpa" not in records
    assert records["lab-scores-v1-pdb"].inputs["spec"]["maxUnavailable"] == 1
    assert records["lab-scores-v1-deployment"].inputs["metadata"]["labels"]["turnout.dev/tier"] == "prod"


def test_recreate_replaces_all_at_once_and_runs_only_its_version():
    config = sample_config()
    config["endpoints"]["fraud-score"]["strategy"] = {"type": "recreate", "version": "v2"}
    records = by_name(endpoint_run(config))
    deployments = [r for r in records.values() if r.type == "kubernetes:apps/v1:Deployment"]
    assert [d.inputs["metadata"]["name"] for d in deployments] == ["fraud-score-v2"]
    assert deployments[0].inputs["spec"]["strategy"] == {"type": "Recreate"}


def test_gpu_versions_ask_for_gpus_and_tolerate_the_gpu_taint():
    config = rolling_config(resources={"gpu": 1, "cpu": "2", "memory": "8Gi"})
    config["platform"] = {"cloud": "aws", "regions": ["us-east-1"], "nodePools": [{"name": "gpu", "gpu": 1}]}
    records = by_name(endpoint_run(config))
    pod = records["lab-scores-v1-deployment"].inputs["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"] == {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_endpoint_traffic_entry_comes_from_its_plan():
    run = endpoint_run(rolling_config())
    endpoint = by_name(run)["lab-scores"]
    assert endpoint.type == "turnout:endpoint:ModelEndpoint"
    # namespace, 2 authorization policies, network policy, service account, deployment, HPA, service,
    # destination rule, virtual service
    assert len([r for r in run.records if r.type.startswith("kubernetes:")]) == 10


def test_every_namespaced_object_waits_for_its_namespace():
    """Kubernetes rejects objects in a namespace that does not exist yet; Pulumi must order them."""
    config = sample_config()
    config["endpoints"]["fraud-score"]["strategy"] = {"type": "rolling", "version": "v1"}
    run = endpoint_run(config, tier="prod")
    records = {r.urn: r for r in run.records}
    namespaces = {r.inputs["metadata"]["name"]: r.urn for r in run.records if r.type == "kubernetes:core/v1:Namespace"}

    def closure(urn: str) -> set[str]:
        return dependency_closure(records, urn)

    namespaced = [
        r for r in run.records if r.type.startswith("kubernetes:") and "namespace" in r.inputs.get("metadata", {})
    ]
    # 2 authorization policies, network policy, service account, deployment, HPA, PDB, service, destination rule,
    # virtual service
    assert len(namespaced) == 10
    for record in namespaced:
        assert namespaces[record.inputs["metadata"]["namespace"]] in closure(record.urn), record.name
