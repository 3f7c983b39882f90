"""Admission emulation: every pod turnout would run, after Istio's sidecar injector and Knative have added theirs,
against the Pod Security Standard its namespace enforces, as the API server would judge it at `pulumi up`.

The mocks behind `turnout plan` never see admission; this test does, for every bundled stack, every README example
and stacks that use every strategy, backend, cache and GPU option (tests/admission/corpus.py), and for the pods of
every Helm release they install (the pod templates of tests/charts/, rendered by scripts/render-charts). The models:
tests/admission/pod_security.py (the PSS checks of k8s.io/pod-security-admission), istio_injection.py (what the
injector adds, under the settings of the plan's istiod release) and knative_pod.py (a revision's pod).
"""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from components.mesh.knative import KNATIVE_NAMESPACE
from components.observability import prometheus
from tests import helm_inventory
from tests.admission import istio_injection, pod_security
from tests.admission.corpus import CELL_STACKS, OPTION_STACKS, Planned, corpus_plans
from tests.admission.istio_injection import MeshSettings, inject, is_injected
from tests.admission.knative_pod import revision_pod
from tests.admission.plan_pods import (
    MissingInventoryError,
    PlannedPod,
    UnknownWorkloadError,
    admission,
    chart_pods,
    mesh_settings,
    namespace_labels,
    planned_pods,
    unrendered_namespaces,
)
from tests.conftest import REPO
from tests.helm_inventory import ReleaseInputs
from turnout.offline.runtime import ResourceRecord

# --- Pod Security, check by check -------------------------------------------------------------------------------


def restricted_pod() -> dict:
    """A pod every level admits: the starting point each case changes in one place."""
    return {
        "metadata": {"name": "model"},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "app",
                    "ports": [{"containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "token", "projected": {"sources": []}}],
        },
    }


def changed(change) -> dict:
    pod = restricted_pod()
    change(pod["metadata"], pod["spec"], pod["spec"]["containers"][0])
    return pod


def app_context(**fields):
    return lambda metadata, spec, app: app["securityContext"].update(fields)


def pod_context(**fields):
    return lambda metadata, spec, app: spec["securityContext"].update(fields)


# (check, level it belongs to, a change it forbids, the detail the API server prints, a nearby change it allows)
CASES = [
    (
        "hostNamespaces",
        "baseline",
        lambda m, s, a: s.update(hostNetwork=True, hostPID=True),
        "hostNetwork=true, hostPID=true",
        lambda m, s, a: s.update(hostNetwork=False),
    ),
    (
        "privileged",
        "baseline",
        app_context(privileged=True),
        'container "app" must not set securityContext.privileged=true',
        app_context(privileged=False),
    ),
    (
        "capabilities_baseline",
        "baseline",
        app_context(capabilities={"add": ["NET_ADMIN", "NET_RAW", "CHOWN"]}),
        'container "app" must not include "NET_ADMIN", "NET_RAW" in securityContext.capabilities.add',
        app_context(capabilities={"add": ["CHOWN", "NET_BIND_SERVICE"]}),
    ),
    (
        "hostPathVolumes",
        "baseline",
        lambda m, s, a: s["volumes"].append({"name": "host", "hostPath": {"path": "/"}}),
        'volume "host"',
        lambda m, s, a: s["volumes"].append({"name": "data", "persistentVolumeClaim": {"claimName": "d"}}),
    ),
    (
        "hostPorts",
        "baseline",
        lambda m, s, a: a["ports"].append({"containerPort": 9090, "hostPort": 9090}),
        'container "app" uses hostPort 9090',
        lambda m, s, a: a["ports"].append({"containerPort": 9090, "hostPort": 0}),
    ),
    (
        "hostProbesAndHostLifecycle",
        "baseline",
        lambda m, s, a: a["readinessProbe"]["httpGet"].update(host="10.0.0.1"),
        'container "app" uses probe or lifecycle host "10.0.0.1"',
        lambda m, s, a: a.update(lifecycle={"preStop": {"exec": {"command": ["sleep", "5"]}}}),
    ),
    (
        "appArmorProfile",
        "baseline",
        app_context(appArmorProfile={"type": "Unconfined"}),
        'container "app" must not set AppArmor profile type to "Unconfined"',
        app_context(appArmorProfile={"type": "Localhost", "localhostProfile": "k8s"}),
    ),
    (
        "seLinuxOptions",
        "baseline",
        pod_context(seLinuxOptions={"type": "spc_t", "user": "root"}),
        'pod set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set',
        pod_context(seLinuxOptions={"type": "container_engine_t", "level": "s0:c1"}),
    ),
    (
        "procMount",
        "baseline",
        app_context(procMount="Unmasked"),
        'container "app" must not set securityContext.procMount to "Unmasked"',
        app_context(procMount="Default"),
    ),
    (
        "seccompProfile_baseline",
        "baseline",
        pod_context(seccompProfile={"type": "Unconfined"}),
        'pod must not set securityContext.seccompProfile.type to "Unconfined"',
        pod_context(seccompProfile={"type": "Localhost", "localhostProfile": "p.json"}),
    ),
    (
        "sysctls",
        "baseline",
        pod_context(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
        "kernel.msgmax",
        pod_context(sysctls=[{"name": "net.ipv4.tcp_keepalive_time", "value": "60"}]),
    ),
    (
        "windowsHostProcess",
        "baseline",
        app_context(windowsOptions={"hostProcess": True}),
        'container "app" must not set securityContext.windowsOptions.hostProcess=true',
        app_context(windowsOptions={"hostProcess": False}),
    ),
    (
        "restrictedVolumes",
        "restricted",
        lambda m, s, a: s["volumes"].append({"name": "share", "nfs": {"server": "nfs", "path": "/"}}),
        'volume "share" uses restricted volume type "nfs"',
        lambda m, s, a: s["volumes"].append({"name": "cert", "csi": {"driver": "csi.example.com"}}),
    ),
    (
        "allowPrivilegeEscalation",
        "restricted",
        lambda m, s, a: a["securityContext"].pop("allowPrivilegeEscalation"),
        'container "app" must set securityContext.allowPrivilegeEscalation=false',
        app_context(allowPrivilegeEscalation=False),
    ),
    (
        "runAsNonRoot",
        "restricted",
        lambda m, s, a: s["securityContext"].pop("runAsNonRoot"),
        'pod or container "app" must set securityContext.runAsNonRoot=true',
        lambda m, s, a: (s["securityContext"].pop("runAsNonRoot"), a["securityContext"].update(runAsNonRoot=True)),
    ),
    (
        "runAsUser",
        "restricted",
        app_context(runAsUser=0),
        'container "app" must not set runAsUser=0',
        app_context(runAsUser=1000),
    ),
    (
        "seccompProfile_restricted",
        "restricted",
        lambda m, s, a: s["securityContext"].pop("seccompProfile"),
        'pod or container "app" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"',
        lambda m, s, a: (
            s["securityContext"].pop("seccompProfile"),
            a["securityContext"].update(seccompProfile={"type": "RuntimeDefault"}),
        ),
    ),
    (
        "capabilities_restricted",
        "restricted",
        app_context(capabilities={"add": ["NET_RAW"]}),
        'container "app" must set securityContext.capabilities.drop=["ALL"]; '
        'container "app" must not include "NET_RAW" in securityContext.capabilities.add',
        app_context(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}),
    ),
]


def failures(level: str, pod: dict, version=pod_security.LATEST) -> dict[str, str]:
    return {f.check: f.detail for f in pod_security.evaluate(level, version, pod["metadata"], pod["spec"])}


def test_every_check_of_the_reference_implementation_has_a_case():
    assert {check.id for check in pod_security.CHECKS} == {case[0] for case in CASES} | {"procMount_restricted"}


def test_the_starting_pod_is_admitted_at_every_level():
    for level in pod_security.LEVELS:
        assert failures(level, restricted_pod()) == {}


@pytest.mark.parametrize(("check", "level", "forbidden", "detail", "allowed"), CASES, ids=[c[0] for c in CASES])
def test_each_check_forbids_what_kubernetes_forbids(check, level, forbidden, detail, allowed):
    assert failures(level, changed(forbidden)) == {check: detail}
    assert failures(level, changed(allowed)) == {}
    assert failures("privileged", changed(forbidden)) == {}, "privileged checks nothing"


def test_restricted_replaces_the_baseline_checks_it_tightens():
    """One failure per rule, under the restricted check's name (OverrideCheckIDs)."""
    assert failures("restricted", changed(app_context(capabilities={"add": ["SYS_ADMIN"], "drop": ["ALL"]}))) == {
        "capabilities_restricted": 'container "app" must not include "SYS_ADMIN" in securityContext.capabilities.add'
    }
    host = changed(lambda m, s, a: s["volumes"].append({"name": "host", "hostPath": {"path": "/"}}))
    assert set(failures("restricted", host)) == {"restrictedVolumes"}


def test_checks_apply_from_the_version_that_introduced_them():
    probe_host = changed(lambda m, s, a: a["readinessProbe"]["httpGet"].update(host="10.0.0.1"))
    assert failures("baseline", probe_host, (1, 33)) == {}
    assert set(failures("baseline", probe_host, (1, 34))) == {"hostProbesAndHostLifecycle"}
    assert set(failures("baseline", probe_host, (1, 99))) == {"hostProbesAndHostLifecycle"}, "later: as latest"
    engine = changed(pod_context(seLinuxOptions={"type": "container_engine_t"}))
    assert set(failures("baseline", engine, (1, 30))) == {"seLinuxOptions"}
    assert failures("baseline", engine, (1, 31)) == {}


def test_user_namespaces_relax_root_checks_from_1_35_but_not_proc_mount_in_restricted():
    pod = changed(
        lambda m, s, a: (s.update(hostUsers=False), a["securityContext"].update(runAsUser=0, procMount="Unmasked"))
    )
    assert set(failures("restricted", pod, (1, 34))) == {"runAsUser", "procMount"}
    assert set(failures("restricted", pod, (1, 35))) == {"procMount_restricted"}
    assert failures("baseline", pod, (1, 35)) == {}


def test_windows_pods_are_exempt_from_linux_only_fields():
    pod = changed(
        lambda m, s, a: (s.update(os={"name": "windows"}), a.pop("securityContext"), s.pop("securityContext"))
    )
    assert set(failures("restricted", pod)) == {"runAsNonRoot"}


def test_the_namespace_label_decides_the_level_and_a_missing_label_means_privileged():
    assert str(pod_security.enforced_policy({})) == "privileged:latest"
    assert (
        str(pod_security.enforced_policy({"pod-security.kubernetes.io/enforce": "restricted"})) == "restricted:latest"
    )
    pinned = pod_security.enforced_policy(
        {"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/enforce-version": "v1.30"}
    )
    assert (pinned.level, pinned.version) == ("baseline", (1, 30))
    # An unknown level fails closed; an unknown version evaluates at latest.
    assert pod_security.enforced_policy({"pod-security.kubernetes.io/enforce": "strict"}).level == "restricted"
    assert pod_security.enforced_policy({"pod-security.kubernetes.io/enforce-version": "1.30"}).version == (
        pod_security.LATEST
    )


# --- what the injector adds ----------------------------------------------------------------------------------

INJECTED = {"istio-injection": "enabled", "pod-security.kubernetes.io/enforce": "restricted"}


def model_pod(**labels) -> dict:
    pod = restricted_pod()
    pod["metadata"]["labels"] = {"app": "m", **labels}
    return pod


def test_who_the_injector_mutates():
    settings = MeshSettings()
    assert is_injected("m", INJECTED, model_pod(), settings)
    assert not is_injected("m", INJECTED, model_pod(), None), "no istiod, no injector"
    assert not is_injected("m", {"istio-injection": "disabled"}, model_pod(), settings)
    assert not is_injected("m", {}, model_pod(), settings)
    assert not is_injected("m", INJECTED, model_pod(**{"sidecar.istio.io/inject": "false"}), settings)
    annotated = model_pod()
    annotated["metadata"]["annotations"] = {"sidecar.istio.io/inject": "false"}
    assert not is_injected("m", INJECTED, annotated, settings)
    host_network = model_pod()
    host_network["spec"]["hostNetwork"] = True
    assert not is_injected("m", INJECTED, host_network, settings)
    assert is_injected("m", {}, model_pod(**{"sidecar.istio.io/inject": "true"}), settings)
    assert not is_injected("kube-system", {}, model_pod(**{"sidecar.istio.io/inject": "true"}), settings)
    assert is_injected("m", {"istio.io/rev": "default"}, model_pod(), settings)
    assert not is_injected("m", {"istio.io/rev": "canary"}, model_pod(), settings)
    assert not is_injected("m", INJECTED, model_pod(), MeshSettings(auto_inject="disabled"))
    assert is_injected("m", {}, model_pod(), MeshSettings(namespaces_by_default=True))


def containers_by_name(pod: dict) -> dict[str, dict]:
    spec = pod["spec"]
    return {c["name"]: c for c in [*spec.get("initContainers", []), *spec["containers"]]}


@pytest.mark.parametrize("native", [False, True])
def test_without_the_cni_plugin_the_pod_writes_its_own_iptables_rules_as_root(native):
    injected = inject(model_pod(), MeshSettings(), native=native)
    init = containers_by_name(injected)["istio-init"]["securityContext"]
    assert init["capabilities"]["add"] == ["NET_ADMIN", "NET_RAW"] and init["runAsUser"] == 0
    assert failures("restricted", injected) == {
        "capabilities_restricted": 'container "istio-init" must not include "NET_ADMIN", "NET_RAW" in '
        "securityContext.capabilities.add",
        "runAsNonRoot": 'container "istio-init" must not set securityContext.runAsNonRoot=false',
        "runAsUser": 'container "istio-init" must not set runAsUser=0',
    }
    assert set(failures("baseline", injected)) == {"capabilities_baseline"}, "baseline refuses NET_ADMIN too"


@pytest.mark.parametrize("native", [False, True])
def test_with_the_cni_plugin_the_injected_containers_meet_restricted(native):
    injected = inject(
        model_pod(), MeshSettings.from_istiod_values({"pilot": {"cni": {"enabled": True}}}), native=native
    )
    containers = containers_by_name(injected)
    assert "istio-init" not in containers and containers["istio-validation"]["securityContext"]["runAsUser"] == 1337
    assert ("restartPolicy" in containers["istio-proxy"]) is native
    assert failures("restricted", injected) == {}
    assert {v["name"] for v in injected["spec"]["volumes"]} >= {"tmp", "istio-envoy", "istio-token", "istiod-ca-cert"}


def test_injected_containers_take_the_pods_seccomp_profile_unless_istio_sets_one():
    bare = model_pod()
    bare["spec"]["securityContext"].pop("seccompProfile")
    bare["spec"]["containers"][0]["securityContext"]["seccompProfile"] = {"type": "RuntimeDefault"}
    cni = {"pilot": {"cni": {"enabled": True}}}
    assert failures("restricted", inject(bare, MeshSettings.from_istiod_values(cni), native=True)) == {
        "seccompProfile_restricted": 'pod or containers "istio-validation", "istio-proxy" must set '
        'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"'
    }
    with_profile = MeshSettings.from_istiod_values(
        {**cni, "global": {"proxy": {"seccompProfile": {"type": "RuntimeDefault"}}}}
    )
    assert failures("restricted", inject(bare, with_profile, native=True)) == {}


def test_root_proxies_fail_restricted_even_with_the_cni_plugin():
    cni = {"pilot": {"cni": {"enabled": True}}}
    tproxy = MeshSettings.from_istiod_values({**cni, "meshConfig": {"defaultConfig": {"interceptionMode": "TPROXY"}}})
    assert set(failures("restricted", inject(model_pod(), tproxy, native=True))) == {
        "capabilities_restricted",
        "runAsNonRoot",
        "runAsUser",
    }
    bind = MeshSettings.from_istiod_values({**cni, "global": {"proxy": {"capNetBindService": True}}})
    assert set(failures("restricted", inject(model_pod(), bind, native=True))) == {"runAsNonRoot", "runAsUser"}
    user_volume = model_pod()
    user_volume["metadata"]["annotations"] = {"sidecar.istio.io/userVolume": '{"host": {"hostPath": {"path": "/"}}}'}
    assert set(failures("restricted", inject(user_volume, MeshSettings.from_istiod_values(cni), native=True))) == {
        "restrictedVolumes"
    }


def test_mesh_settings_come_from_the_istiod_values_over_the_chart_defaults():
    assert MeshSettings.from_istiod_values({}) == MeshSettings()
    assert MeshSettings.from_istiod_values({"pilot": {"cni": {"enabled": True}, "replicaCount": 2}}).cni
    assert MeshSettings.from_istiod_values({"global": {"platform": "openshift"}}).cni, "the OpenShift profile"
    assert not MeshSettings.from_istiod_values({"platform": "openshift", "pilot": {"cni": {"enabled": False}}}).cni
    native = MeshSettings.from_istiod_values({"pilot": {"env": {"ENABLE_NATIVE_SIDECARS": "false"}}})
    assert not native.native_sidecar(34) and MeshSettings().native_sidecar(33) and not MeshSettings().native_sidecar(32)


def test_a_knative_revision_pod_is_its_template_and_the_queue_proxy():
    template = {
        "metadata": {"name": "m-v1-abc", "labels": {"app": "m"}},
        "spec": {"containers": [{"name": "model", "securityContext": {"runAsNonRoot": True}}]},
    }
    pod = revision_pod("m-v1", template)
    assert [c["name"] for c in pod["spec"]["containers"]] == ["model", "queue-proxy"]
    assert pod["metadata"]["labels"]["serving.knative.dev/revision"] == "m-v1-abc"
    assert "securityContext" not in pod["spec"], "Knative rejects pod-level security contexts by default"
    queue_only = {"metadata": {}, "spec": {"containers": [pod["spec"]["containers"][1]]}}
    assert failures("restricted", queue_only) == {}


# --- the plans ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plans() -> dict[str, Planned]:
    return corpus_plans()


def test_the_option_stacks_reach_every_kind_of_pod(plans):
    """The corpus is only as good as what it holds: every workload turnout renders is in it."""
    sources = [p for name in OPTION_STACKS for p in planned_pods(plans[name].manifests)]
    kinds = {p.source.split()[0] for p in sources}
    assert kinds == {"Deployment", "StatefulSet", "Configuration", "Job"}
    names = {p.source.split()[1] for p in sources}
    assert {"flags/flags-flagd", "progressive/progressive", "gpu-progressive/gpu-progressive"} <= names
    assert {p.namespace for p in sources if p.source.startswith("Job ")} == {"kn-canary", "kn-blue-green"}
    assert any(p.pod["spec"].get("tolerations") for p in sources if p.source.startswith("Configuration")), "GPU"
    assert any(p.pod["spec"].get("tolerations") for p in sources if p.source.startswith("Deployment")), "GPU"
    cache_volumes = [p for p in sources if any(v["name"] == "turnout-cache" for v in p.pod["spec"].get("volumes", []))]
    assert {p.cluster.split("-")[1] for p in cache_volumes} >= {"kind", "aws", "gcp", "azure"}


@pytest.mark.parametrize("stack", CELL_STACKS)
def test_every_planned_pod_is_admitted_after_sidecar_injection(plans, stack):
    """The pods the plan renders and those its Helm releases install (their inventories' pod templates), each after
    the sidecar injector where its namespace is injected, against its namespace's level."""
    planned = plans[stack]
    pods, rejections = admission(planned.records, planned.manifests, planned.kubelet_minor)
    assert planned_pods(planned.manifests), "a cell stack runs model pods"
    assert any("(Helm chart istiod " in p.source for p in pods), "every cell runs istiod from its chart"
    assert not rejections, (
        f"{len(rejections)} of {len(pods)} pod templates would be rejected at `pulumi up`:\n"
        + "\n".join(f"- {r}" for r in rejections)
    )


@pytest.mark.parametrize("stack", CELL_STACKS)
def test_pods_nothing_offline_renders_run_where_no_level_is_enforced(plans, stack):
    """Knative's release manifests (fetched at deploy time, not vendored: only their CRDs are, in tests/crds) create
    pods this test cannot see: knative-serving must not enforce a level. Helm releases are not among them: their
    pods are admitted above, from their inventories."""
    planned = plans[stack]
    labels = namespace_labels(planned.manifests)
    unrendered = unrendered_namespaces(planned.records)
    assert {namespace for _, namespace in unrendered} <= {KNATIVE_NAMESPACE}, unrendered
    enforcing = {
        (cluster, namespace): (str(pod_security.enforced_policy(labels.get((cluster, namespace)))), sources)
        for (cluster, namespace), sources in unrendered.items()
        if pod_security.enforced_policy(labels.get((cluster, namespace))).level != "privileged"
    }
    assert not enforcing, enforcing


def test_the_knative_stacks_have_unrendered_pods(plans):
    """The test above is not vacuous: the stacks with Knative endpoints list its release manifests."""
    unrendered = unrendered_namespaces(plans["adm-kind"].records)
    assert [namespace for _, namespace in unrendered] == [KNATIVE_NAMESPACE]
    assert any("serving-core.yaml" in what for what in next(iter(unrendered.values())))


# --- the pods of Helm charts ------------------------------------------------------------------------------------

CHART_EXAMPLES = REPO / "tests" / "charts" / "examples"


def chart_pod(planned: Planned, source_prefix: str) -> PlannedPod:
    return next(p for p in chart_pods(planned.records) if p.source.startswith(source_prefix))


def test_chart_pods_are_the_workloads_of_each_releases_inventory(plans):
    """Each Helm release's pods are its inventory's pod templates, in the namespace the chart puts them."""
    prod = plans["prod-aws"]
    sources = {p.source for p in chart_pods(prod.records)}
    for expected in (
        "Deployment turnout-monitoring/prometheus-server (Helm chart prometheus 27.42.2, release prometheus)",
        "Deployment turnout-monitoring/prometheus-kube-state-metrics (Helm chart prometheus 27.42.2, release",
        "StatefulSet turnout-monitoring/prometheus-alertmanager (Helm chart prometheus 27.42.2, release prometheus)",
        "DaemonSet istio-system/istio-cni-node (Helm chart cni 1.30.4, release istio-cni)",
        "Deployment istio-system/istiod (Helm chart istiod 1.30.4, release istiod)",
    ):
        assert any(source.startswith(expected) for source in sources), (expected, sorted(sources))
    assert not any("node-exporter" in source or "pushgateway" in source for source in sources)
    server = chart_pod(prod, "Deployment turnout-monitoring/prometheus-server ")
    assert server.pod["spec"]["securityContext"] == prometheus.POD_SECURITY, "the values turnout passes"
    dev = plans["dev-aws"]
    startup = chart_pod(dev, "Job cert-manager/cert-manager-startupapicheck ")
    assert startup.namespace == "cert-manager", "a hook Job is admitted like any pod"


def test_a_release_without_an_inventory_is_named_not_skipped(plans):
    dev = plans["dev-aws"]
    records = [
        dataclasses.replace(r, inputs={**r.inputs, "values": {**r.inputs["values"], "server": {"hostPID": True}}})
        if r.type == helm_inventory.RELEASE_TYPE and r.inputs.get("chart") == "prometheus"
        else r
        for r in dev.records
    ]
    message = r"run `scripts/render-charts`\):\n- prometheus 27\.42\.2 \(release turnout-monitoring/prometheus, values "
    with pytest.raises(MissingInventoryError, match=message):
        admission(records, dev.manifests, dev.kubelet_minor)


def copy_inventory(charts, record: ResourceRecord, edit=None) -> None:
    """A copy of a Helm release's inventory under `charts`, its templates changed by `edit`."""
    release = ReleaseInputs.from_inputs(record.inputs)
    inventory = helm_inventory.load(release.inventory)
    if edit:
        edit(inventory["templates"])
    (charts / release.inventory.name).write_text(json.dumps(inventory))


def test_a_chart_pod_with_host_namespaces_in_a_restricted_namespace_is_rejected(plans, tmp_path, monkeypatch):
    """The check behind the Prometheus values (node-exporter off, security contexts on every pod): a chart pod that
    shares the node's namespaces in turnout-monitoring is refused, named by its chart; a Helm test hook is not a pod
    the release runs."""
    dev = plans["dev-aws"]

    def host_pid(templates):
        server = next(t for t in templates if t["name"] == "prometheus-server" and t["kind"] == "Deployment")
        server["podTemplate"]["spec"] |= {"hostPID": True, "hostNetwork": True}
        templates.append(copy.deepcopy(server) | {"kind": "Pod", "name": "prometheus-test", "hook": "test"})

    for record in dev.records:
        if record.type == helm_inventory.RELEASE_TYPE:
            copy_inventory(tmp_path, record, host_pid if record.inputs["chart"] == "prometheus" else None)
    monkeypatch.setattr(helm_inventory, "CHARTS", tmp_path)
    pods, rejections = admission(dev.records, dev.manifests, dev.kubelet_minor)
    assert any("prometheus-server" in p.source for p in pods)
    assert not any("prometheus-test" in p.source for p in pods)
    assert [str(r) for r in rejections] == [
        "dev-aws-us-east-1: Deployment turnout-monitoring/prometheus-server (Helm chart prometheus 27.42.2, release "
        'prometheus): pods in namespace "turnout-monitoring" violate PodSecurity "restricted:latest": hostNamespaces: '
        "host namespaces (hostNetwork=true, hostPID=true)"
    ]


def test_the_node_exporter_the_prometheus_values_disable_would_be_rejected(plans):
    """tests/charts/examples/prometheus-27.42.2-node-exporter.json: the prod-aws Prometheus release rendered with
    `prometheus-node-exporter.enabled: true`. Its DaemonSet shares the node's network and PIDs and mounts /proc,
    /sys and / from the host: turnout-monitoring's `restricted` level refuses it, which is why the values turn it
    off (the Istio sidecars' metrics and kube-state-metrics are what the rules and dashboards read)."""
    inventory = helm_inventory.load(CHART_EXAMPLES / "prometheus-27.42.2-node-exporter.json")
    assert inventory["values"]["prometheus-node-exporter"] == {"enabled": True}
    exporter = next(t for t in inventory["templates"] if t["kind"] == "DaemonSet")
    policy = pod_security.enforced_policy(prometheus.NAMESPACE_LABELS)
    verdict = {
        f.check: f.detail for f in pod_security.evaluate(policy.level, policy.version, **exporter["podTemplate"])
    }
    assert verdict["hostNamespaces"] == "hostNetwork=true, hostPID=true"
    assert verdict["restrictedVolumes"].startswith(
        'volumes "proc", "sys", "root" use restricted volume type "hostPath"'
    )
    released = [
        record.inputs["values"]
        for planned in plans.values()
        for record in planned.records
        if record.type == helm_inventory.RELEASE_TYPE and record.inputs["chart"] == "prometheus"
    ]
    assert released and all(values["prometheus-node-exporter"] == {"enabled": False} for values in released)


def test_the_istio_cni_node_agent_is_why_istio_system_stays_privileged(plans):
    """The CNI node agent writes each pod's iptables rules from the node: as root with SYS_ADMIN, NET_ADMIN and more,
    with the node's CNI folders and /proc mounted.
    Baseline refuses it, so istio-system (where the charts put it) enforces `privileged`; every other chart pod
    there (istiod, the gateways, Flagger) would meet baseline."""
    prod = plans["prod-aws"]
    agent = chart_pod(prod, "DaemonSet istio-system/istio-cni-node ")
    assert {"capabilities_baseline", "hostPathVolumes"} <= set(failures("baseline", agent.pod))
    labels = namespace_labels(prod.manifests)
    assert pod_security.enforced_policy(labels[(agent.cluster, "istio-system")]).level == "privileged"
    mesh = mesh_settings(prod.records)[agent.cluster]
    for other in chart_pods(prod.records):
        if other.namespace == "istio-system" and other is not agent and "istio-cni-node" not in other.source:
            pod = other.pod
            if is_injected(other.namespace, labels[(other.cluster, "istio-system")], pod, mesh):
                pod = inject(pod, mesh, native=True)
            assert failures("baseline", pod) == {}, other.source


def test_a_gateway_pod_gets_the_gateway_template_not_the_sidecar(plans):
    """The gateway chart's pods select `inject.istio.io/templates: gateway`: the injector fills in their istio-proxy
    (uid 1337, the chart's own security context kept) and adds no init container, with or without the CNI plugin."""
    gateway = chart_pod(plans["prod-aws"], "Deployment istio-system/istio-ingressgateway ")
    assert istio_injection.template(gateway.pod) == "gateway"
    for settings in (MeshSettings(), MeshSettings(cni=True)):
        injected = inject(gateway.pod, settings, native=True)
        assert "initContainers" not in injected["spec"]
        (proxy,) = injected["spec"]["containers"]
        assert proxy["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsGroup": 1337,
            "runAsNonRoot": True,
            "runAsUser": 1337,
        }
        assert {v["name"] for v in injected["spec"]["volumes"]} >= {"istio-envoy", "istio-token", "istiod-ca-cert"}
        assert failures("restricted", injected) == {
            "seccompProfile_restricted": 'pod or container "istio-proxy" must set securityContext.seccompProfile.type '
            'to "RuntimeDefault" or "Localhost"'
        }
    odd = copy.deepcopy(gateway.pod)
    odd["metadata"]["annotations"][istio_injection.TEMPLATES_ANNOTATION] = "waypoint"
    with pytest.raises(istio_injection.UnknownTemplateError, match="waypoint"):
        inject(odd, MeshSettings(), native=True)


# --- the same plans under another istiod configuration -----------------------------------------------------------


def with_istiod_values(records: list[ResourceRecord], values: dict) -> list[ResourceRecord]:
    """The plan's records with every istiod release's values merged with `values` (what a changed IstioMesh would
    record): read for the injector's settings (mesh_settings), while the charts' pods stay those of the plan (the
    changed istiod release has no inventory)."""
    changed_records = []
    for record in records:
        if record.type == "kubernetes:helm.sh/v3:Release" and record.inputs.get("chart") == "istiod":
            merged = istio_injection.merge_values(record.inputs.get("values") or {}, values)
            record = dataclasses.replace(record, inputs={**record.inputs, "values": merged})
        changed_records.append(record)
    return changed_records


NO_CNI = {"pilot": {"cni": {"enabled": False}}}
CNI = {"pilot": {"cni": {"enabled": True}}}
PROXY_SECCOMP = {"global": {"proxy": {"seccompProfile": {"type": "RuntimeDefault"}}}}
NO_PROXY_SECCOMP = {"global": {"proxy": {"seccompProfile": None}}}


def test_without_the_cni_plugin_every_injected_pod_is_rejected_by_restricted(plans):
    """The injector's settings are read from the plan's istiod release: without CNI (main before issue 11), each
    model pod gets istio-init, and the namespace's `restricted` level rejects it, naming why."""
    local = plans["local"]
    mesh = mesh_settings(with_istiod_values(local.records, NO_CNI))
    pods, rejections = admission(local.records, local.manifests, local.kubelet_minor, mesh)
    assert len(rejections) == len(planned_pods(local.manifests)) == 4, "the model pods; no chart pod is injected"
    for rejection in rejections:
        message = str(rejection)
        assert message.startswith(f"local: {rejection.pod.source}: ")
        assert f'pods in namespace "{rejection.pod.namespace}", after sidecar injection (istio-init, no CNI' in message
        assert 'violate PodSecurity "restricted:latest": capabilities_restricted: ' in message
        assert {"capabilities_restricted", "runAsNonRoot", "runAsUser"} <= {f.check for f in rejection.forbidden}


def pod_level_seccomp(planned: PlannedPod) -> bool:
    return bool((planned.pod["spec"].get("securityContext") or {}).get("seccompProfile"))


@pytest.mark.parametrize("stack", ["local", "adm-kind", "adm-aws"])
def test_with_the_cni_plugin_pods_are_admitted_where_a_seccomp_profile_covers_the_injected_containers(plans, stack):
    """istiod with `pilot.cni.enabled: true`, recorded in the plan as IstioMesh records its values: every pod with a
    pod-level seccomp profile (Deployments, StatefulSets) is admitted. A Knative revision's pod has none (Knative's
    webhook refuses one unless config-features allows it): its injected containers then need
    `global.proxy.seccompProfile`, and with it every pod is admitted."""
    planned = plans[stack]
    mesh = mesh_settings(with_istiod_values(planned.records, {**CNI, **NO_PROXY_SECCOMP}))
    pods, rejections = admission(planned.records, planned.manifests, planned.kubelet_minor, mesh)
    model_pods = planned_pods(planned.manifests)
    assert {r.pod.source for r in rejections} == {p.source for p in model_pods if not pod_level_seccomp(p)}
    for rejection in rejections:
        assert [(f.check, f.detail) for f in rejection.forbidden] == [
            (
                "seccompProfile_restricted",
                'pod or containers "istio-validation", "istio-proxy" must set securityContext.seccompProfile.type '
                'to "RuntimeDefault" or "Localhost"',
            )
        ]
    mesh = mesh_settings(with_istiod_values(planned.records, {**CNI, **PROXY_SECCOMP}))
    pods, rejections = admission(planned.records, planned.manifests, planned.kubelet_minor, mesh)
    assert pods and not rejections


def test_an_unknown_workload_kind_with_a_pod_spec_is_not_silently_skipped(plans):
    manifest = next(m for m in plans["local"].manifests if m.kind == "Deployment")
    odd = dataclasses.replace(
        manifest, body={**copy.deepcopy(manifest.body), "apiVersion": "apps.example.com/v1", "kind": "Rollout"}
    )
    with pytest.raises(UnknownWorkloadError, match="Rollout"):
        planned_pods([odd])
