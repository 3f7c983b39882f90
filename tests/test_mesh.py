"""The serving platform under mocks: pinned charts, dependency order, zero-trust defaults, per-cloud
gateways, Knative configured by tier, Flagger where progressive delivery needs it."""

from __future__ import annotations

import json

import pytest

from components.cluster import ClusterArgs
from components.cluster.kind import KIND_HOST_PORTS, KIND_INGRESS_NODE_PORTS, kind_cluster_config
from components.mesh.istio import (
    AWS_PRESERVE_CLIENT_IP,
    GATEWAY_PRINCIPAL,
    cni_values,
    gateway_service_values,
    gateway_values,
)
from components.mesh.knative import (
    INJECTION_LABEL,
    KNATIVE_NAMESPACE,
    POD_INJECTION_LABEL,
    mesh_enrolment,
    release_manifests,
)
from components.mesh.metrics_server import CHART_REPOSITORY as METRICS_SERVER_REPOSITORY
from components.mesh.metrics_server import CHART_VERSION as METRICS_SERVER_VERSION
from components.mesh.metrics_server import metrics_server_values
from components.mesh.platform import ServingPlatform, ServingPlatformArgs
from tests.conftest import REPO, dependency_closure, load, sample_config, write_stack
from turnout.cli import main
from turnout.config import ISTIO_CHARTS, NodePool, Serving
from turnout.errors import ConfigError
from turnout.offline.runtime import run_function


def plan_records(config: dict, stack: str = "lab"):
    """Run the real program for `config` and return its records by name."""
    from tests.conftest import as_cli

    raw = {f"turnout:{k}": v for k, v in as_cli(config).items()}
    from turnout.offline.runtime import run_program

    run = run_program(REPO, "turnout", stack, raw, [])
    return {r.name: r for r in run.records}, run


def rolling(config: dict, tier: str = "dev", **serving) -> dict:
    """Two istio endpoints on one kind cluster named `lab` (stack lab, region lab)."""
    config["tier"] = tier
    config["platform"]["regions"] = ["lab"]
    config["endpoints"]["fraud-score"]["strategy"] = {"type": "rolling", "version": "v1"}
    config["endpoints"]["ranker"] = {"versions": {"v3": {"image": "ghcr.io/acme/ranker:3.0.0"}}}
    if serving:
        config["platform"]["serving"] = serving
    return config


closure = dependency_closure
RELEASE = "kubernetes:helm.sh/v3:Release"
ISTIO_RELEASES = ("istio-base", "istio-cni", "istiod", "istio-ingressgateway")


def istio_releases(records) -> dict[str, dict]:
    return {
        r.inputs["name"]: r.inputs
        for r in records.values()
        if r.type == RELEASE and r.inputs["repositoryOpts"] == {"repo": ISTIO_CHARTS}
    }


def test_istio_charts_are_pinned_to_the_configured_versions(config):
    records, _ = plan_records(rolling(config))
    releases = istio_releases(records)
    assert sorted(releases) == sorted(ISTIO_RELEASES)
    default = Serving().istio
    for release in releases.values():
        assert release["version"] == default.version
    assert [releases[n]["chart"] for n in ISTIO_RELEASES] == ["base", "cni", "istiod", "gateway"]


def test_one_key_bumps_every_istio_chart(config):
    records, _ = plan_records(rolling(config, istio={"version": "1.29.3"}))
    assert {release["version"] for release in istio_releases(records).values()} == {"1.29.3"}


def test_injected_pods_need_no_capabilities_the_cni_agent_redirects_them(config):
    """istiod injects istio-validation instead of istio-init (NET_ADMIN, NET_RAW) only with `pilot.cni.enabled`,
    and the agent must run before istiod injects anything; its DaemonSet's hostPath needs a privileged
    istio-system."""
    records, run = plan_records(rolling(config))
    by_urn = {r.urn: r for r in run.records}
    cni = records["lab-serving-istio-cni"]
    assert cni.inputs["chart"] == "cni" and cni.inputs["namespace"] == "istio-system"
    assert records["lab-serving-istio-istiod"].inputs["values"]["pilot"]["cni"] == {"enabled": True}
    assert cni.urn in closure(by_urn, records["lab-serving-istio-istiod"].urn)
    assert records["lab-serving-istio-base"].urn in closure(by_urn, cni.urn)
    labels = records["lab-serving-istio-system-ns"].inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"


@pytest.mark.parametrize(
    ("cloud", "values"),
    [
        ("kind", {}),  # kindnet: /opt/cni/bin, chained (the chart's defaults)
        ("aws", {"chained": True}),
        ("azure", {"chained": True}),
        ("gcp", {"cniBinDir": "/home/kubernetes/bin", "global": {"platform": "gke"}}),
    ],
)
def test_cni_values_per_cloud(cloud, values):
    assert cni_values(cloud) == values


@pytest.mark.parametrize(("tier", "replicas"), [("dev", 1), ("prod", 2)])
def test_gateway_spreads_its_replicas_and_prod_keeps_one_through_a_drain(tier, replicas):
    values = gateway_values("aws", "internal", tier)
    assert values["autoscaling"] == {"minReplicas": replicas}
    pods = {"matchLabels": {"app": "istio-ingressgateway", "istio": "ingressgateway"}}  # the chart's selector labels
    spread = {c["topologyKey"]: c for c in values["topologySpreadConstraints"]}
    assert set(spread) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert all(c["labelSelector"] == pods and c["maxSkew"] == 1 for c in spread.values())
    # The chart renders its PodDisruptionBudget only above one replica.
    assert values.get("podDisruptionBudget") == ({"maxUnavailable": 1} if replicas > 1 else None)


@pytest.mark.parametrize(("cloud", "metrics_server"), [("kind", True), ("aws", True), ("gcp", False), ("azure", False)])
def test_metrics_server_where_the_cluster_has_none(config, cloud, metrics_server):
    config = rolling(config)
    config["platform"] = {
        "cloud": cloud,
        "regions": [{"kind": "lab", "aws": "us-east-1", "gcp": "europe-west1", "azure": "westeurope"}[cloud]],
    }
    records, _ = plan_records(config)
    charts = [r.inputs for r in records.values() if r.type == RELEASE and r.inputs["chart"] == "metrics-server"]
    if not metrics_server:
        assert charts == []  # GKE and AKS run their own
        return
    (chart,) = charts
    assert chart["version"] == METRICS_SERVER_VERSION
    assert chart["repositoryOpts"] == {"repo": METRICS_SERVER_REPOSITORY}
    assert chart["namespace"] == "kube-system"
    # Only kind's kubelets have self-signed serving certificates.
    assert ("--kubelet-insecure-tls" in chart["values"]["args"]) == (cloud == "kind")


def test_prod_metrics_server_survives_a_node_drain():
    values = metrics_server_values("aws", "prod")
    assert values["replicas"] == 2
    assert values["podDisruptionBudget"] == {"enabled": True, "maxUnavailable": 1}
    assert values["args"] == []
    assert "replicas" not in metrics_server_values("kind", "dev")


def test_dependency_order_crds_then_control_plane_then_gateway_then_custom_resources(config):
    records, run = plan_records(rolling(config, knative={"install": "always"}))
    by_urn = {r.urn: r for r in run.records}
    urn = {name: r.urn for name, r in records.items()}
    prefix = "lab-serving"
    assert urn[f"{prefix}-istio-base"] in closure(by_urn, urn[f"{prefix}-istio-istiod"])
    assert urn[f"{prefix}-istio-istiod"] in closure(by_urn, urn[f"{prefix}-istio-gateway"])
    assert urn[f"{prefix}-istio-gateway"] in closure(by_urn, urn[f"{prefix}-istio-gateway-cr"])
    assert urn[f"{prefix}-istio-istiod"] in closure(by_urn, urn[f"{prefix}-istio-strict-mtls"])
    assert urn[f"{prefix}-knative-crds"] in closure(by_urn, urn[f"{prefix}-knative-core"])
    net_istio = closure(by_urn, urn[f"{prefix}-knative-net-istio"])
    assert {urn[f"{prefix}-knative-core"], urn[f"{prefix}-istio-istiod"]} <= net_istio
    # Every object in a model namespace comes after the platform's CRDs and control planes.
    for record in run.records:
        if record.type.startswith("kubernetes:") and record.inputs.get("metadata", {}).get("namespace") in (
            "fraud-score",
            "ranker",
        ):
            assert urn[f"{prefix}-istio-base"] in closure(by_urn, record.urn), record.name
            assert urn[f"{prefix}-knative-core"] in closure(by_urn, record.urn), record.name


def test_mesh_wide_strict_mtls(config):
    records, _ = plan_records(rolling(config))
    strict = records["lab-serving-istio-strict-mtls"].inputs
    assert strict["kind"] == "PeerAuthentication"
    assert strict["metadata"] == {"name": "default", "namespace": "istio-system"}  # root namespace: mesh-wide
    assert strict["spec"] == {"mtls": {"mode": "STRICT"}}


def test_every_model_namespace_denies_by_default_and_admits_only_the_gateway(config):
    records, run = plan_records(rolling(config))
    for namespace in ("fraud-score", "ranker"):
        policies = {
            r.inputs["metadata"]["name"]: r.inputs["spec"]
            for r in run.records
            if r.type == "kubernetes:security.istio.io/v1:AuthorizationPolicy"
            and r.inputs["metadata"]["namespace"] == namespace
        }
        assert policies["deny-all"] == {}
        assert policies["allow-ingress-gateway"] == {
            "action": "ALLOW",
            "rules": [{"from": [{"source": {"principals": [GATEWAY_PRINCIPAL]}}]}],
        }
        assert "allow-platform-controllers" not in policies, "istio-backed endpoints need no controller access"
        labels = records[f"lab-{namespace}-ns-ns"].inputs["metadata"]["labels"]
        assert labels["istio-injection"] == "enabled"


@pytest.mark.parametrize(
    ("cloud", "exposure", "annotations"),
    [
        ("aws", "internal", {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}),
        ("aws", "external", {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing"}),
        ("gcp", "internal", {"networking.gke.io/load-balancer-type": "Internal"}),
        ("gcp", "external", {"cloud.google.com/l4-rbs": "enabled"}),
        ("azure", "internal", {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}),
        ("azure", "external", {}),
    ],
)
def test_gateway_service_per_cloud(cloud, exposure, annotations):
    values = gateway_service_values(cloud, exposure)
    assert values["type"] == "LoadBalancer"
    assert annotations.items() <= values["annotations"].items()
    if cloud == "aws":
        assert values["annotations"]["service.beta.kubernetes.io/aws-load-balancer-type"] == "external"
        assert values["annotations"]["service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"] == "ip"
        # IP targets over TCP see the NLB's address unless the target group preserves the client's.
        assert AWS_PRESERVE_CLIENT_IP.items() <= values["annotations"].items()
        assert AWS_PRESERVE_CLIENT_IP == {
            "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes": "preserve_client_ip.enabled=true"
        }
    if exposure == "external" and cloud == "azure":
        assert "service.beta.kubernetes.io/azure-load-balancer-internal" not in values["annotations"]


def test_kind_gateway_uses_the_node_ports_kind_publishes():
    values = gateway_service_values("kind", "internal")
    assert values["type"] == "NodePort"
    node_ports = {p["port"]: p["nodePort"] for p in values["ports"] if "nodePort" in p}
    assert node_ports == KIND_INGRESS_NODE_PORTS
    args = ClusterArgs(
        cluster_name="lab",
        region="local",
        kubernetes_version="1.34",
        node_pools=(NodePool(name="general", min=1, max=1),),
    )
    mappings = kind_cluster_config(args)["nodes"][0]["extraPortMappings"]
    assert {m["containerPort"]: m["hostPort"] for m in mappings} == {
        KIND_INGRESS_NODE_PORTS[p]: KIND_HOST_PORTS[p] for p in (80, 443)
    }


def test_gateway_serves_tls_for_the_domain_with_a_self_signed_certificate_on_kind(config):
    records, _ = plan_records(rolling(config))
    gateway = records["lab-serving-istio-gateway-cr"].inputs["spec"]
    https = next(s for s in gateway["servers"] if s["port"]["protocol"] == "HTTPS")
    assert https["tls"]["mode"] == "SIMPLE" and https["tls"]["credentialName"] == "turnout-gateway-tls"
    assert https["hosts"] == ["*.127.0.0.1.sslip.io"]
    http = next(s for s in gateway["servers"] if s["port"]["protocol"] == "HTTP")
    assert http["tls"] == {"httpsRedirect": True}
    assert gateway["selector"] == {"istio": "ingressgateway"}
    openssl = records["lab-serving-tls-openssl"].inputs["create"]
    assert openssl.startswith("openssl req -x509") and "*.127.0.0.1.sslip.io" in openssl
    secret = records["lab-serving-tls-secret"]
    assert secret.inputs["type"] == "kubernetes.io/tls" and secret.inputs["stringData"] == "[secret]"


@pytest.mark.parametrize(("tier", "scale_to_zero"), [("dev", "true"), ("staging", "true"), ("prod", "false")])
def test_knative_scale_to_zero_follows_the_tier(config, tier, scale_to_zero):
    records, _ = plan_records(rolling(config, tier=tier, knative={"install": "always"}))
    assert records["lab-serving-knative-config-autoscaler"].inputs["data"] == {"enable-scale-to-zero": scale_to_zero}
    assert records["lab-serving-knative-config-features"].inputs["data"] == {
        "tag-header-based-routing": "Enabled",
        # GPU versions tolerate the GPU taint and select GPU nodes (tests/test_knative_fields.py).
        "kubernetes.podspec-tolerations": "Enabled",
        "kubernetes.podspec-nodeselector": "Enabled",
    }
    assert records["lab-serving-knative-config-domain"].inputs["data"] == {"127.0.0.1.sslip.io": ""}
    network = records["lab-serving-knative-config-network"].inputs["data"]
    assert network["ingress-class"] == "istio.ingress.networking.knative.dev"
    # Routes are served over HTTPS by turnout's Gateway, and say so in their status URL.
    assert network["default-external-scheme"] == "https"


def test_knative_serving_joins_the_mesh_but_its_tag_resolver_keeps_registry_egress():
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": KNATIVE_NAMESPACE, "labels": {"a": "b"}}}
    labelled = mesh_enrolment("kubernetes:core/v1:Namespace", namespace)
    assert labelled["metadata"]["labels"] == {"a": "b", INJECTION_LABEL: "enabled"}
    assert "labels" in namespace["metadata"] and INJECTION_LABEL not in namespace["metadata"]["labels"]  # a copy
    controller = {
        "metadata": {"name": "controller", "namespace": KNATIVE_NAMESPACE},
        "spec": {"template": {"metadata": {"labels": {"app": "controller"}}}},
    }
    opted_out = mesh_enrolment("kubernetes:apps/v1:Deployment", controller)
    assert opted_out["spec"]["template"]["metadata"]["labels"] == {"app": "controller", POD_INJECTION_LABEL: "false"}
    activator = {"metadata": {"name": "activator", "namespace": KNATIVE_NAMESPACE}, "spec": {}}
    assert mesh_enrolment("kubernetes:apps/v1:Deployment", activator) is None  # injected through its namespace
    assert mesh_enrolment("kubernetes:core/v1:Namespace", {"metadata": {"name": "models"}}) is None


def test_knative_core_is_applied_with_the_mesh_enrolment_after_istiod(config, monkeypatch):
    """The transform runs as serving-core.yaml's objects are registered (at `pulumi up`, not offline), so the
    namespace exists labelled before any pod; istiod's injector must already answer."""
    import pulumi_kubernetes as k8s

    from components.mesh import knative

    seen = {}
    real = k8s.yaml.v2.ConfigFile

    def spy(name, *args, **kwargs):
        seen[name] = kwargs.get("opts")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(knative.k8s.yaml.v2, "ConfigFile", spy)
    records, run = plan_records(rolling(config, knative={"install": "always"}))
    assert knative._enrol_in_mesh in seen["lab-serving-knative-core"].transforms
    assert not seen["lab-serving-knative-crds"].transforms
    by_urn = {r.urn: r for r in run.records}
    assert records["lab-serving-istio-istiod"].urn in closure(by_urn, records["lab-serving-knative-core"].urn)


def test_knative_release_manifests_are_recorded_not_fetched(config):
    records, _ = plan_records(rolling(config, knative={"install": "always", "version": "1.23.1"}))
    files = {name: records[f"lab-serving-knative-{name}"].inputs["file"] for name in ("crds", "core", "net-istio")}
    assert files == release_manifests("1.23.1", "https://github.com")
    assert files["core"].endswith("/knative/serving/releases/download/knative-v1.23.1/serving-core.yaml")


def test_optional_parts_install_only_where_needed(config):
    records, _ = plan_records(rolling(config))
    types = {r.type for r in records.values()}
    assert "turnout:mesh:KnativeServing" not in types and "turnout:mesh:Flagger" not in types


def test_flagger_reads_istio_metrics_from_prometheus(config):
    records, _ = plan_records(rolling(config, flagger={"install": "always"}))
    flagger = records["lab-serving-flagger-flagger"].inputs
    assert flagger["chart"] == "flagger" and flagger["repositoryOpts"] == {"repo": "https://flagger.app"}
    assert flagger["values"]["meshProvider"] == "istio"
    # The chart's crds/ installs the CRDs; crd.create (Helm v2 only) would render them twice (test_helm_ownership).
    assert "crd" not in flagger["values"]
    assert flagger["values"]["metricsServer"] == "http://prometheus-server.istio-system"
    prometheus = records["lab-serving-flagger-prometheus"]
    assert prometheus.inputs["chart"] == "prometheus"
    assert prometheus.urn in records["lab-serving-flagger-flagger"].dependencies


def test_install_never_is_refused_where_an_endpoint_needs_the_part(config):
    config["endpoints"]["fraud-score"]["backend"] = "knative"
    config["platform"]["serving"] = {"knative": {"install": "never"}}
    with pytest.raises(ConfigError) as caught:
        load(config)
    assert caught.value.path == "turnout:platform.serving.knative.install"
    assert "fraud-score" in caught.value.allowed


@pytest.mark.parametrize(
    ("serving", "key"),
    [
        ({"istio": {"version": "1.30"}}, "turnout:platform.serving.istio.version"),
        ({"knative": {"version": "latest"}}, "turnout:platform.serving.knative.version"),
        ({"flagger": {"repository": "flagger.app"}}, "turnout:platform.serving.flagger.repository"),
        ({"gateway": {"exposure": "public"}}, "turnout:platform.serving.gateway.exposure"),
        ({"knative": {"install": "sometimes"}}, "turnout:platform.serving.knative.install"),
    ],
)
def test_bad_platform_settings_exit_2_naming_the_key(project, tmp_path, capsys, serving, key):
    config = rolling(sample_config(), **serving)
    write_stack(project, "bad", config)
    assert main(["plan", "bad", "--project", str(project), "--out", str(tmp_path)]) == 2
    assert key in capsys.readouterr().err


def test_summary_lists_platform_versions_per_cluster(tmp_path, capsys):
    assert main(["plan", "local", "--project", str(REPO), "--out", str(tmp_path)]) == 0
    summary = (tmp_path / "local" / "summary.md").read_text()
    default = Serving()
    assert "## Serving platform" in summary
    assert f"| `local` | {default.istio.version} | {default.knative.version} | — | — |" in summary
    inventory = json.loads((tmp_path / "local" / "inventory.json").read_text())
    assert inventory["outputs"]["platform"]["local"]["istio"] == default.istio.version


def test_platform_component_alone(config):
    stack = load(rolling(config, tier="prod"))

    def program():
        ServingPlatform(
            "lab-serving",
            ServingPlatformArgs(serving=stack.platform.serving, cloud="kind", tier="prod", endpoints=stack.endpoints),
        )

    records = {r.name: r for r in run_function(program).records}
    istiod = records["lab-serving-istio-istiod"].inputs["values"]
    assert istiod["pilot"]["replicaCount"] == 2, "prod runs two istiod replicas"
    recorded = records["lab-serving-istio-gateway"].inputs["values"]
    assert recorded["service"]["type"] == "NodePort"
    assert recorded["podDisruptionBudget"] == {"maxUnavailable": 1}
    # The recorded release values carry the NodePorts kind publishes on localhost:8080/8443.
    node_ports = {p["port"]: p["nodePort"] for p in recorded["service"]["ports"] if "nodePort" in p}
    assert node_ports == KIND_INGRESS_NODE_PORTS
