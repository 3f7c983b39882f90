"""The pod Knative Serving runs for a revision, as far as Pod Security can see it.

A model, written from knative/serving at knative-v1.23.0 (commit 7ed4aa2ab601e3a33c6552285f6e0d910747351d, the
release turnout pins), of pkg/reconciler/revision/resources/deploy.go (`makePodSpec`, `BuildPodSpec`) and queue.go
(`queueSecurityContext`): the revision template's pod spec as written, its containers followed by `queue-proxy`
(non-root, ALL dropped, RuntimeDefault seccomp, read-only root), plus the volumes Knative may add for it (emptyDir,
projected, downwardAPI, secret: all allowed by `restricted`). The pod's labels and annotations are the template's,
with Knative's own labels.

Not modelled: the `secure-pod-defaults` feature's defaulting of user containers (off by default in 1.23; turnout's
containers set every field it would default) and Knative's own validation of the template, which rejects any
pod-level `securityContext` unless `kubernetes.podspec-securitycontext` (or `secure-pod-defaults`) is enabled in
config-features (pkg/apis/serving/fieldmask.go, `PodSpecMask`).
"""

from __future__ import annotations

import copy

QUEUE_PROXY = "queue-proxy"
QUEUE_SECURITY_CONTEXT = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def revision_pod(configuration_name: str, template: dict) -> dict:
    """{"metadata", "spec"} of a pod of the revision that `template` (a Configuration's spec.template) creates."""
    metadata = copy.deepcopy(template.get("metadata") or {})
    spec = copy.deepcopy(template.get("spec") or {})
    revision = metadata.pop("name", None) or f"{configuration_name}-00001"
    metadata["labels"] = {
        **(metadata.get("labels") or {}),
        "serving.knative.dev/configuration": configuration_name,
        "serving.knative.dev/revision": revision,
    }
    spec["containers"] = [
        *(spec.get("containers") or ()),
        {
            "name": QUEUE_PROXY,
            # queue-port, and the autoscaler's and the user's metrics ports: no host port
            "ports": [
                {"name": "queue-port", "containerPort": 8012},
                {"name": "http-autometric", "containerPort": 9090},
            ],
            "securityContext": copy.deepcopy(QUEUE_SECURITY_CONTEXT),
        },
    ]
    spec.setdefault("enableServiceLinks", False)
    return {"metadata": metadata, "spec": spec}
