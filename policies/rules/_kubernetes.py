"""Reading Kubernetes objects as the policy engine hands them over (numbers arrive as floats)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

ISTIO_VIRTUAL_SERVICE_TYPES = frozenset(
    f"kubernetes:networking.istio.io/{version}:VirtualService" for version in ("v1", "v1beta1", "v1alpha3")
)
KNATIVE_TRAFFIC_TYPES = frozenset(
    {"kubernetes:serving.knative.dev/v1:Service", "kubernetes:serving.knative.dev/v1:Route"}
)


def get_path(props: Mapping[str, Any], *keys: str | int) -> Any:
    """props[k1][k2]... or None where any step is missing."""
    value: Any = props
    for key in keys:
        if isinstance(key, int):
            # the engine hands lists over as sequence proxies, not lists
            if not isinstance(value, Sequence) or isinstance(value, (str, bytes)) or key >= len(value):
                return None
        elif not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def object_name(props: Mapping[str, Any]) -> str:
    namespace = get_path(props, "metadata", "namespace")
    name = get_path(props, "metadata", "name") or "(unnamed)"
    return f"{namespace}/{name}" if namespace else str(name)


TIER_LABEL = "turnout.dev/tier"
ROLE_LABEL = "turnout.dev/role"
VERSION_LABEL = "turnout.dev/version"
CANARY_ANNOTATION = "turnout.dev/canary-version"
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"})


def kind_of(resource_type: str) -> str:
    """`kubernetes:apps/v1:Deployment` → Deployment (and ConfigMapPatch → ConfigMap)."""
    kind = resource_type.rsplit(":", 1)[-1]
    return kind[: -len("Patch")] if kind.endswith("Patch") else kind


def tier_of(props: Mapping[str, Any]) -> str | None:
    return get_path(props, "metadata", "labels", TIER_LABEL)


def pod_spec_of(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod spec of a workload or a Knative revision template; None for anything else."""
    kind = kind_of(resource_type)
    if resource_type.startswith("kubernetes:serving.knative.dev/") and kind in ("Configuration", "Service"):
        return get_path(props, "spec", "template", "spec")
    if kind in WORKLOAD_KINDS:
        return get_path(props, "spec", "template", "spec")
    if kind == "Pod":
        return get_path(props, "spec")
    return None


def cluster_of(resource) -> str:
    """Which cluster a stack-rule resource lives on: its provider's URN ("" for the default provider).

    Stacks with several clusters repeat namespaces and names; keys must include the cluster."""
    provider = getattr(resource, "provider", None)
    return getattr(provider, "urn", None) or ""


# Components whose children are an upstream release applied as shipped (Knative's serving-core.yaml,
# net-istio.yaml, a vendor's chart): turnout authors none of those objects and changes none of them,
# so the rules that judge how an object is written look only at what turnout renders. (A Helm
# Release is one resource whose objects the policy engine never sees.)
UPSTREAM_COMPONENT_TYPES = frozenset(
    {
        "kubernetes:yaml:ConfigFile",
        "kubernetes:yaml:ConfigGroup",
        "kubernetes:yaml/v2:ConfigFile",
        "kubernetes:yaml/v2:ConfigGroup",
        "kubernetes:helm.sh/v3:Chart",
        "kubernetes:helm.sh/v4:Chart",
        "kubernetes:kustomize:Directory",
        "kubernetes:kustomize/v2:Directory",
    }
)
ENDPOINT_LABEL = "turnout.dev/endpoint"  # on every model namespace and the objects in it
ZONE_KEY = "topology.kubernetes.io/zone"
BATCH_KINDS = frozenset({"Job", "CronJob"})


def shipped_upstream(urn: str) -> bool:
    """Whether the object belongs to an upstream manifest or chart turnout applies unchanged.

    The URN's type names every ancestor (`...$kubernetes:yaml/v2:ConfigFile$kubernetes:apps/v1:Deployment`).
    """
    parts = (urn or "").split("::")
    ancestors = parts[2].split("$")[:-1] if len(parts) > 3 else []
    return any(ancestor in UPSTREAM_COMPONENT_TYPES for ancestor in ancestors)


def api_group(resource_type: str) -> str:
    """`kubernetes:networking.istio.io/v1:Gateway` → networking.istio.io (core for core/v1)."""
    parts = resource_type.split(":")
    return parts[1].split("/", 1)[0] if len(parts) == 3 and parts[0] == "kubernetes" else ""


def is_kind(resource_type: str, group: str, kind: str) -> bool:
    """The object is `group`'s `kind` at any API version (patches excluded)."""
    return api_group(resource_type) == group and resource_type.rsplit(":", 1)[-1] == kind


def items(value: Any) -> list:
    """A list property as a list; anything else (absent, unknown shape) as empty.

    The engine hands lists over as read-only sequences, not `list`s.
    """
    return list(value) if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) else []


def rendered_pod_spec(resource_type: str, props: Mapping[str, Any], urn: str) -> Mapping[str, Any] | None:
    """The pod spec of a workload turnout renders (Deployment, StatefulSet, DaemonSet, Job, CronJob,
    Knative Configuration or Service); None for anything else, for patches (partial by design) and
    for objects shipped upstream."""
    if resource_type.endswith("Patch") or shipped_upstream(urn):
        return None
    if kind_of(resource_type) == "CronJob":
        return get_path(props, "spec", "jobTemplate", "spec", "template", "spec")
    return pod_spec_of(resource_type, props)


def containers(pod: Mapping[str, Any], *, init: bool = True) -> list[tuple[str, Mapping[str, Any]]]:
    """(name, container) for every container of the pod, init containers first."""
    fields = ("initContainers", "containers") if init else ("containers",)
    return [
        (str(get_path(c, "name") or "(unnamed)"), c)
        for field in fields
        for c in items(get_path(pod, field))
        if isinstance(c, Mapping)
    ]


def effective_security(pod: Mapping[str, Any], container: Mapping[str, Any], key: str) -> Any:
    """A security setting as the kubelet applies it: the container's, else the pod's."""
    value = get_path(container, "securityContext", key)
    return get_path(pod, "securityContext", key) if value is None else value


def selects(selector: Any, labels: Mapping[str, Any]) -> bool:
    """Whether a LabelSelector matches `labels`. An empty selector matches everything; an absent one nothing."""
    if not isinstance(selector, Mapping):
        return False
    match_labels = get_path(selector, "matchLabels") or {}
    if any(labels.get(key) != value for key, value in match_labels.items()):
        return False
    for expression in items(get_path(selector, "matchExpressions")):
        key, operator = get_path(expression, "key"), get_path(expression, "operator")
        values = items(get_path(expression, "values"))
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def chart_name(resource_type: str, props: Mapping[str, Any]) -> str | None:
    """The chart a Helm Release or Chart installs (`istiod` of `istio/istiod` or an OCI URL); else None."""
    if api_group(resource_type) != "helm.sh" or kind_of(resource_type) not in ("Release", "Chart"):
        return None
    chart = get_path(props, "chart")
    return str(chart).rstrip("/").rsplit("/", 1)[-1] if chart else None


ISTIO_NAMESPACE = "istio-system"  # Istio's root namespace: policies here apply to the whole mesh


def istio_gateway_servers(resource_type: str, props: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(name, server) for each server of an Istio Gateway (named by its port's name, else its index)."""
    if not is_kind(resource_type, "networking.istio.io", "Gateway"):
        return []
    return [
        (str(get_path(server, "port", "name") or f"servers[{index}]"), server)
        for index, server in enumerate(items(get_path(props, "spec", "servers")))
        if isinstance(server, Mapping)
    ]
