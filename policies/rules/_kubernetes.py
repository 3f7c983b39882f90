"""Reading Kubernetes objects as the policy engine hands them over (numbers arrive as floats)."""

from __future__ import annotations

from collections.abc import Mapping
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
            if not isinstance(value, list) or key >= len(value):
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
