"""Kubernetes objects from recorded registrations, as documents `kubectl apply` accepts."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from turnout.offline.runtime import REDACTED, ResourceRecord, to_plain

DEFAULT_CLUSTER = "default-provider"
# Apply order: what others live in or refer to comes first.
_KIND_RANK = {
    "Namespace": 0,
    "CustomResourceDefinition": 0,
    "ServiceAccount": 1,
    "ConfigMap": 1,
    "Secret": 1,
    "ClusterRole": 2,
    "Role": 2,
    "ClusterRoleBinding": 2,
    "RoleBinding": 2,
    "Service": 3,
    "Deployment": 4,
    "StatefulSet": 4,
    "DaemonSet": 4,
    "HorizontalPodAutoscaler": 5,
    "PodDisruptionBudget": 5,
    "NetworkPolicy": 5,
}
_CUSTOM_RANK = 6


@dataclass(frozen=True)
class Manifest:
    cluster: str
    record: ResourceRecord
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.body["kind"]

    @property
    def filename(self) -> str:
        metadata = self.body.get("metadata", {})
        parts = [self.kind.lower(), metadata.get("namespace") or "cluster", metadata.get("name", self.record.name)]
        stem = re.sub(r"[^a-z0-9.-]+", "-", "-".join(parts).lower())
        return f"{_KIND_RANK.get(self.kind, _CUSTOM_RANK):02d}-{stem}.yaml"


def is_kubernetes_object(record: ResourceRecord) -> bool:
    """A registered Kubernetes object (not a provider, Helm release or YAML group)."""
    inputs = record.inputs
    return (
        record.custom
        and record.type.startswith("kubernetes:")
        and isinstance(inputs.get("apiVersion"), str)
        and isinstance(inputs.get("kind"), str)
        # Patch resources (ConfigMapPatch, ...) render as the partial object they apply.
        and record.type.rsplit(":", 1)[-1] in (inputs["kind"], inputs["kind"] + "Patch")
    )


def cluster_of(record: ResourceRecord, by_urn: dict[str, ResourceRecord]) -> str:
    """The cluster an object lands on: the component that owns its Kubernetes provider."""
    provider = by_urn.get(record.provider or "")
    if provider is None:
        return DEFAULT_CLUSTER
    owner = by_urn.get(provider.parent or "")
    return owner.name if owner is not None and not owner.type.startswith("pulumi:pulumi:Stack") else provider.name


def render(record: ResourceRecord, by_urn: dict[str, ResourceRecord]) -> Manifest:
    body = copy.deepcopy(record.inputs)
    metadata = body.setdefault("metadata", {})
    if "name" not in metadata:  # auto-named by Pulumi: take the name the (mock) provider assigned
        metadata["name"] = to_plain(record.raw_outputs, redact=True).get("metadata", {}).get("name", record.name)
    if body["kind"] == "Secret":
        _redact_secret(body, record)
    body = _sorted(body)  # wire order is arbitrary; sorted keys keep plan diffs to real changes
    ordered = {"apiVersion": body.pop("apiVersion"), "kind": body.pop("kind"), "metadata": body.pop("metadata")}
    ordered.update(body)
    return Manifest(cluster_of(record, by_urn), record, ordered)


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def _redact_secret(body: dict[str, Any], record: ResourceRecord) -> None:
    """Secret values never reach disk; keys stay so reviewers see what the Secret holds.

    A whole `stringData` marked secret arrives redacted as one string, so the key names are read
    from the wire inputs; only the names are kept.
    """
    revealed = to_plain(record.raw_inputs, redact=False)
    keys: set[str] = set()
    for field in ("data", "stringData"):
        body.pop(field, None)
        if isinstance(revealed.get(field), dict):
            keys |= set(revealed[field])
    if keys:
        body["stringData"] = {key: REDACTED for key in sorted(keys)}


def manifests(records: list[ResourceRecord]) -> list[Manifest]:
    by_urn = {r.urn: r for r in records}
    rendered = [render(r, by_urn) for r in records if is_kubernetes_object(r)]
    return sorted(rendered, key=lambda m: (m.cluster, m.filename))
