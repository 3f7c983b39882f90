"""Kubernetes objects from recorded registrations, as documents `kubectl apply` accepts."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from turnout.config import key_path
from turnout.errors import ConfigError
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
REDACTED_ANNOTATION = "turnout.dev/redacted"
# A redacted Secret keeps its key names, with `[secret]` in `data`: not base64, so an API server
# refuses the object ("illegal base64 data") instead of storing the placeholder as the secret.
REDACTED_PREAMBLE = (
    "# REDACTED by turnout plan: the values below are placeholders, not the secret. Do not apply this\n"
    "# file: the API server refuses it (`[secret]` is not base64); `pulumi up` creates the real Secret.\n"
)


@dataclass(frozen=True)
class Manifest:
    cluster: str
    record: ResourceRecord
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.body["kind"]

    @property
    def redacted(self) -> bool:
        return REDACTED_ANNOTATION in (self.body.get("metadata", {}).get("annotations") or {})

    @property
    def preamble(self) -> str:
        """Comment lines written above the document."""
        return REDACTED_PREAMBLE if self.redacted else ""

    @property
    def identity(self) -> tuple[str, str, str, str, str]:
        """What an API server keys an object by: cluster, API group, kind, namespace, name."""
        metadata = self.body.get("metadata", {})
        group = self.body["apiVersion"].rpartition("/")[0]
        return (self.cluster, group, self.kind, metadata.get("namespace") or "", metadata.get("name", ""))

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
        body["data"] = {key: REDACTED for key in sorted(keys)}
        metadata = body.setdefault("metadata", {})
        metadata["annotations"] = {
            **(metadata.get("annotations") or {}),
            REDACTED_ANNOTATION: "values are placeholders; pulumi up creates this Secret",
        }


def manifests(records: list[ResourceRecord]) -> list[Manifest]:
    by_urn = {r.urn: r for r in records}
    rendered = [render(r, by_urn) for r in records if is_kubernetes_object(r)]
    check_one_owner(rendered)
    return sorted(rendered, key=lambda m: (m.cluster, m.filename))


class SharedObjectError(RuntimeError):
    """Two resources declare one Kubernetes object: a turnout bug when no user key explains it."""


def check_one_owner(rendered: list[Manifest]) -> None:
    """One resource per Kubernetes object: a second `create` of it fails on `pulumi up`, and its file
    would overwrite the first's in the plan. When names from the stack file cause it (an endpoint
    named like a platform namespace, a version named like a part of its endpoint), the key is named."""
    owners: dict[tuple, Manifest] = {}
    for manifest in rendered:
        first = owners.setdefault(manifest.identity, manifest)
        if first is manifest:
            continue
        cluster, _, kind, namespace, name = manifest.identity
        shown = f"{kind} {namespace + '/' if namespace else ''}{name} on cluster {cluster}"
        # The most specific key the stack file holds: a version's name before its endpoint's.
        culprit = max((m for m in (manifest, first) if _user_key(m)), key=lambda m: len(_user_key(m)), default=None)
        if culprit is None:
            raise SharedObjectError(f"{first.record.urn} and {manifest.record.urn} both declare the {shown}")
        other = first if culprit is manifest else manifest
        raise ConfigError(
            key_path(_user_key(culprit)),
            f"a name that gives the {shown}, which {_owner(other)} declares too",
            "a name no other object of the stack takes: rename it",
        )


def _user_key(manifest: Manifest) -> str | None:
    """The stack key an object's name comes from: its endpoint, or the version it runs."""
    labels = manifest.body.get("metadata", {}).get("labels") or {}
    endpoint, version = labels.get("turnout.dev/endpoint"), labels.get("turnout.dev/version")
    if endpoint is None:
        return None
    return f"endpoints.{endpoint}.versions.{version}" if version else f"endpoints.{endpoint}"


def _owner(manifest: Manifest) -> str:
    key = _user_key(manifest)
    return key_path(key) if key else f"turnout's {manifest.record.name}"
