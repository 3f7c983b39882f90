"""Admission over a whole plan: every pod the plan would run, what the sidecar injector makes of it on its cluster,
and whether the Pod Security level of its namespace admits the result.

The plan is what `turnout plan` records (turnout.offline): the rendered Kubernetes objects (one folder per cluster
in `manifests/`) and every resource's inputs (`inventory.json`), where the istiod Helm release's values say how the
injector is configured. A Helm release's pods are those of its inventory (tests/charts/, which
`scripts/render-charts` renders from the pinned chart with exactly the values the plan records). Objects whose pods
nothing offline holds (Knative's release manifests, fetched at deploy time) are listed apart, with the namespace
they run in.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.mesh.knative import KNATIVE_NAMESPACE
from tests.admission import istio_injection, pod_security
from tests.admission.knative_pod import revision_pod
from tests.helm_inventory import POD_TEMPLATES, RELEASE_TYPE, RENDER_COMMAND, ReleaseInputs, load
from turnout.offline.manifests import Manifest, cluster_of
from turnout.offline.runtime import ResourceRecord

KNATIVE_SERVING = "serving.knative.dev/"
KNATIVE_TEMPLATES = ("Configuration", "Service")  # a revision's pod comes from spec.template
HELM_TYPES = (RELEASE_TYPE, "kubernetes:helm.sh/v4:Chart")
# Helm never installs a chart's test hooks (`helm test` runs them).
TEST_HOOKS = frozenset({"test", "test-success", "test-failure"})
MANIFEST_TYPES = ("kubernetes:yaml/v2:ConfigFile", "kubernetes:yaml/v2:ConfigGroup", "kubernetes:yaml:ConfigFile")


class MissingInventoryError(Exception):
    """A Helm release has no inventory: its pods cannot be admitted until `scripts/render-charts` renders it."""


class UnknownWorkloadError(Exception):
    """A rendered object holds a pod spec at a place this module does not know: teach POD_TEMPLATES about it."""


@dataclass(frozen=True)
class PlannedPod:
    cluster: str
    namespace: str
    source: str
    """The object that makes the pod (`Deployment scores/scores-v1`)."""
    pod: dict
    """{"metadata", "spec"} before admission."""


@dataclass(frozen=True)
class Rejection:
    pod: PlannedPod
    policy: pod_security.Policy
    injected: str | None
    """How the sidecar injector changed the pod (`istio-init, no CNI`), or None when it did not."""
    forbidden: list[pod_security.Forbidden]

    def __str__(self) -> str:
        injected = f", after sidecar injection ({self.injected})," if self.injected else ""
        checks = "; ".join(f"{f.check}: {f}" for f in self.forbidden)
        return (
            f'{self.pod.cluster}: {self.pod.source}: pods in namespace "{self.pod.namespace}"{injected} violate '
            f'PodSecurity "{self.policy}": {checks}'
        )


def _contains_pod_spec(value: object) -> bool:
    if isinstance(value, dict):
        return isinstance(value.get("containers"), list) or any(_contains_pod_spec(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_pod_spec(v) for v in value)
    return False


def _at(body: dict, path: tuple[str, ...]) -> dict:
    for key in path:
        body = body.get(key) or {}
    return body


def planned_pods(manifests: list[Manifest]) -> list[PlannedPod]:
    """A pod per workload, Knative revision and bare Pod the plan renders (patches of objects turnout does not own
    are left out). Flagger's `<endpoint>-primary` copies its target Deployment's pod template, so the target stands
    for both."""
    pods = []
    for manifest in manifests:
        body, kind = manifest.body, manifest.kind
        if manifest.record.type.endswith("Patch"):
            continue
        metadata = body.get("metadata") or {}
        namespace = metadata.get("namespace") or "default"
        source = f"{kind} {namespace}/{metadata.get('name')}"
        if str(body.get("apiVersion", "")).startswith(KNATIVE_SERVING) and kind in KNATIVE_TEMPLATES:
            pod = revision_pod(metadata["name"], _at(body, ("spec", "template")))
            pods.append(PlannedPod(manifest.cluster, namespace, f"{source} (its revision's pods)", pod))
        elif kind in POD_TEMPLATES and "." not in str(body.get("apiVersion", "")).split("/")[0]:
            template = _at(body, POD_TEMPLATES[kind])
            pod = {"metadata": template.get("metadata") or {}, "spec": template.get("spec") or {}}
            pods.append(PlannedPod(manifest.cluster, namespace, source, pod))
        elif _contains_pod_spec(body.get("spec")):
            raise UnknownWorkloadError(f"{manifest.cluster}: {source} ({body.get('apiVersion')}) holds a pod spec")
    return pods


def chart_pods(records: list[ResourceRecord]) -> list[PlannedPod]:
    """A pod per workload each Helm release installs (test hooks aside), from the release's inventory. Raises
    MissingInventoryError naming every release without one."""
    by_urn = {r.urn: r for r in records}
    pods, missing = [], []
    for record in records:
        if record.type != RELEASE_TYPE:
            continue
        release = ReleaseInputs.from_inputs(record.inputs)
        if not release.inventory.exists():
            missing.append(f"{release.describe()}: no {release.inventory.name}")
            continue
        cluster = cluster_of(record, by_urn)
        for template in load(release.inventory)["templates"]:
            hooks = set(str(template.get("hook", "")).split(","))
            if "podTemplate" not in template or hooks & TEST_HOOKS:
                continue
            source = (
                f"{template['kind']} {template['namespace']}/{template['name']} "
                f"(Helm chart {release.chart_name} {release.version}, release {release.name})"
            )
            pods.append(PlannedPod(cluster, template["namespace"], source, template["podTemplate"]))
    if missing:
        raise MissingInventoryError(
            f"cannot admit the pods of {len(missing)} Helm release(s) without an inventory (run `{RENDER_COMMAND}`):\n"
            + "\n".join(f"- {m}" for m in missing)
        )
    return pods


def namespace_labels(manifests: list[Manifest]) -> dict[tuple[str, str], dict[str, str]]:
    """(cluster, namespace) → labels of the Namespaces the plan creates or patches."""
    labels: dict[tuple[str, str], dict[str, str]] = {}
    for manifest in sorted(manifests, key=lambda m: m.record.type.endswith("Patch")):  # creates, then patches
        if manifest.kind == "Namespace":
            metadata = manifest.body.get("metadata") or {}
            key = (manifest.cluster, metadata.get("name"))
            labels[key] = {**labels.get(key, {}), **(metadata.get("labels") or {})}
    return labels


def mesh_settings(records: list[ResourceRecord]) -> dict[str, istio_injection.MeshSettings]:
    """cluster → the sidecar injector's settings, from its istiod release's values (no istiod: no injector)."""
    by_urn = {r.urn: r for r in records}
    return {
        cluster_of(record, by_urn): istio_injection.MeshSettings.from_istiod_values(record.inputs.get("values"))
        for record in records
        if record.type in HELM_TYPES and record.inputs.get("chart") == "istiod"
    }


def unrendered_namespaces(records: list[ResourceRecord]) -> dict[tuple[str, str], list[str]]:
    """(cluster, namespace) → what runs pods there that nothing offline renders: Knative's release manifests (fetched
    at deploy time; they run in knative-serving) and Helm v4 Charts (no inventory is rendered for them). Helm v3
    Releases are not among them: their inventories hold their pods (chart_pods)."""
    by_urn = {r.urn: r for r in records}
    found: dict[tuple[str, str], list[str]] = {}
    for record in records:
        if record.type in HELM_TYPES and record.type != RELEASE_TYPE:
            namespace = record.inputs.get("namespace") or "default"
            what = f"Helm chart {record.inputs.get('chart')} (release {record.inputs.get('name') or record.name})"
        elif record.type in MANIFEST_TYPES and "knative" in str(record.inputs.get("file", "")):
            namespace, what = KNATIVE_NAMESPACE, f"release manifest {record.inputs.get('file')}"
        else:
            continue
        found.setdefault((cluster_of(record, by_urn), namespace), []).append(what)
    return found


def admission(
    records: list[ResourceRecord],
    manifests: list[Manifest],
    kubelet_minor: int,
    mesh: dict[str, istio_injection.MeshSettings] | None = None,
) -> tuple[list[PlannedPod], list[Rejection]]:
    """Every planned pod (those the plan renders and those its Helm releases install), and those its namespace's Pod
    Security level would reject once injected. `mesh` replaces the settings read from the plan (to try another
    istiod configuration)."""
    mesh = mesh_settings(records) if mesh is None else mesh
    namespaces = namespace_labels(manifests)
    pods = planned_pods(manifests) + chart_pods(records)
    rejections = []
    for planned in pods:
        labels = namespaces.get((planned.cluster, planned.namespace), {})
        settings = mesh.get(planned.cluster)
        pod, injected = planned.pod, None
        if istio_injection.is_injected(planned.namespace, labels, pod, settings):
            assert settings is not None
            native = settings.native_sidecar(kubelet_minor)
            pod = istio_injection.inject(pod, settings, native=native)
            if istio_injection.template(planned.pod) == "gateway":
                injected = "the gateway template"
            else:
                injected = ("istio-validation, CNI" if settings.cni else "istio-init, no CNI") + (
                    ", native sidecar" if native else ""
                )
        policy = pod_security.enforced_policy(labels)
        forbidden = pod_security.evaluate(policy.level, policy.version, pod["metadata"], pod["spec"])
        if forbidden:
            rejections.append(Rejection(planned, policy, injected, forbidden))
    return pods, rejections
