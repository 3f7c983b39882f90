"""What each pinned Helm chart installs, as `scripts/render-charts` records it in tests/charts/.

One inventory per chart, version and values: the kind, namespace and name of every object the chart
renders with exactly the values turnout passes, split into the chart's `crds/` (which Helm 3 installs
first) and its templates, with the pod template of every built-in workload (what Pod Security admission
and Istio's sidecar injector read: tests/admission/plan_pods.py admits the chart's pods). `values_hash`
names it; the plan recomputes it from a Helm Release's recorded inputs, so a changed value without a
fresh inventory is caught (test_helm_ownership)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CHARTS = REPO / "tests" / "charts"
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
RENDER_COMMAND = "scripts/render-charts"
# What `helm template` is told the cluster runs (turnout's default Kubernetes minor).
KUBE_VERSION = "1.34.0"

# Built-in kinds without a namespace; anything else is namespaced unless a rendered CRD says Cluster.
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService",
        "CSIDriver",
        "CSINode",
        "CertificateSigningRequest",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterTrustBundle",
        "ComponentStatus",
        "CustomResourceDefinition",
        "DeviceClass",
        "FlowSchema",
        "IPAddress",
        "IngressClass",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PodSecurityPolicy",
        "PriorityClass",
        "PriorityLevelConfiguration",
        "RuntimeClass",
        "ServiceCIDR",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
    }
)

# Where each workload kind keeps its pod template (the built-in kinds only: a kind of another API group is not one
# of these even when it has the same name).
POD_TEMPLATES: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


@dataclass(frozen=True)
class ReleaseInputs:
    """A `kubernetes:helm.sh/v3:Release` as the plan records it: everything `helm template` gets."""

    chart: str
    version: str
    repository: str
    name: str
    namespace: str
    values: dict

    @classmethod
    def from_inputs(cls, inputs: dict[str, Any]) -> ReleaseInputs:
        return cls(
            chart=inputs["chart"],
            version=inputs["version"],
            repository=(inputs.get("repositoryOpts") or {}).get("repo", ""),
            name=inputs["name"],
            namespace=inputs.get("namespace") or "default",
            values=inputs.get("values") or {},
        )

    @property
    def values_hash(self) -> str:
        """Of what the render depends on besides the chart: the release's name, namespace and values."""
        canonical = json.dumps(
            {"name": self.name, "namespace": self.namespace, "values": self.values},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def chart_name(self) -> str:
        """The chart's own name: `chart`, or the last part of an OCI reference (oci://host/path/karpenter)."""
        return self.chart.rsplit("/", 1)[-1] if self.chart.startswith("oci://") else self.chart

    @property
    def source_repository(self) -> str:
        """Where the chart is published: the repository, or an OCI reference's registry path."""
        return self.chart.rsplit("/", 1)[0] if self.chart.startswith("oci://") else self.repository

    @property
    def inventory(self) -> Path:
        return CHARTS / f"{self.chart_name}-{self.version}-{self.values_hash}.json"

    def describe(self) -> str:
        return f"{self.chart} {self.version} (release {self.namespace}/{self.name}, values {self.values_hash})"


def api_group(api_version: str) -> str:
    """`apps/v1` → apps; `v1` → "" (the core group)."""
    return api_version.rpartition("/")[0]


def identity(api_version: str, kind: str, namespace: str | None, name: str) -> tuple[str, str, str, str]:
    """What the API server keys an object by (the version is only a view of it)."""
    return (api_group(api_version), kind, namespace or "", name)


def load(path: Path) -> dict:
    return json.loads(path.read_text())
