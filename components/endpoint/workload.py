"""One model version's pods: ServiceAccount, Deployment, and the HPA / PDB its replicas call for."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from turnout.config import ModelVersion
from turnout.naming import child, k8s_name, labels

ROLE_LABEL = "turnout.dev/role"  # serving | shadow: which Service selects the pods
RUN_AS = 65532  # the conventional "nonroot" uid/gid of distroless images
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class PodAdditions:
    """Environment, volumes and mounts added to a model container (and its pod) by what it uses, and the
    image pull Secrets of its namespace."""

    env: tuple[dict, ...] = ()
    volumes: tuple[dict, ...] = ()
    mounts: tuple[dict, ...] = ()
    pull_secrets: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.env or self.volumes or self.mounts or self.pull_secrets)


NO_ADDITIONS = PodAdditions()


@dataclass(frozen=True, kw_only=True)
class ModelWorkloadArgs:
    namespace: str
    after: tuple[pulumi.Resource, ...]
    """What every object of the workload waits for: its Namespace (children do not inherit the
    component's own depends_on)."""
    endpoint: str
    version_name: str
    version: ModelVersion
    role: str
    """serving (behind the public Service) or shadow (behind the shadow Service, mirrored to only)."""
    port: int
    health_path: str
    tier: str
    update_strategy: dict
    """The Deployment's `spec.strategy` (RollingUpdate or Recreate)."""
    pull_policy: str = "Always"
    """IfNotPresent only where images are loaded into the nodes (kind)."""
    unversioned: bool = False
    """Flagger's target: named after the endpoint with a selector that stays the same across versions."""
    additions: PodAdditions = NO_ADDITIONS
    """What the model container gets beyond its version's config (the cache's address, and its password as a
    file from a Secret); its env wins over the version's."""


def container_security() -> dict:
    """Every turnout container: non-root, read-only root filesystem, no privilege, no capabilities."""
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def pod_security() -> dict:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


PATCH_FORCE = "pulumi.com/patchForce"


def checkov_skips(image: str, pull_policy: str) -> dict[str, str]:
    """Inline checkov skips, each with its reason, for the checks turnout deliberately does not meet."""
    reasons = []
    if "@sha256:" not in image:
        reasons.append("CKV_K8S_43=pinned by version tag, which the image-pinned policy accepts; use a digest to pass")
    if pull_policy != "Always":
        reasons.append("CKV_K8S_15=kind runs images loaded with `kind load`; there is no registry to pull from")
    return {f"checkov.io/skip{index}": reason for index, reason in enumerate(reasons, start=1)}


def container_spec(args: ModelWorkloadArgs) -> dict:
    resources = args.version.resources
    limits = {"cpu": resources.cpu, "memory": resources.memory}
    if resources.gpu:
        limits[GPU_RESOURCE] = str(resources.gpu)
    env = {"TARGET": args.version_name, **args.version.env}
    reserved = {"PORT", *(entry["name"] for entry in args.additions.env)}
    probe = {"httpGet": {"path": args.health_path, "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 2}
    return {
        "name": "model",
        "image": args.version.image,
        "imagePullPolicy": args.pull_policy,
        "ports": [{"name": "http", "containerPort": args.port, "protocol": "TCP"}],
        "env": [{"name": "PORT", "value": str(args.port)}]
        + [{"name": name, "value": value} for name, value in sorted(env.items()) if name not in reserved]
        + list(args.additions.env),
        "resources": {"requests": {"cpu": resources.cpu, "memory": resources.memory}, "limits": limits},
        "readinessProbe": {**probe, "failureThreshold": 3},
        "livenessProbe": {**probe, "initialDelaySeconds": 10, "failureThreshold": 6},
        "securityContext": container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *args.additions.mounts],
    }


def pod_spec(args: ModelWorkloadArgs, service_account: str) -> dict:
    spec: dict = {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": False,
        "securityContext": pod_security(),
        "containers": [container_spec(args)],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}, *args.additions.volumes],
        **({"imagePullSecrets": image_pull_secrets(args.additions)} if args.additions.pull_secrets else {}),
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector(args.endpoint, args.version_name)},
            }
        ],
    }
    if args.version.resources.gpu:
        spec["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
        spec["nodeSelector"] = {"nvidia.com/gpu.present": "true"}
    return spec


def image_pull_secrets(additions: PodAdditions) -> list[dict]:
    return [{"name": name} for name in additions.pull_secrets]


def is_autoscaled(replicas) -> bool:
    """An HPA owns the replica count when there is a range to scale in (and never to zero)."""
    return replicas.min >= 1 and replicas.max > replicas.min


def selector(endpoint: str, version: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": endpoint, "turnout.dev/version": version}


class ModelWorkload(pulumi.ComponentResource):
    deployment: k8s.apps.v1.Deployment

    def __init__(self, name: str, args: ModelWorkloadArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:endpoint:ModelWorkload", name, None, opts)
        mine = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        object_name = args.endpoint if args.unversioned else k8s_name(args.endpoint, args.version_name)
        match_labels = (
            {"app.kubernetes.io/name": args.endpoint}
            if args.unversioned
            else selector(args.endpoint, args.version_name)
        )
        object_labels = labels(args.endpoint, args.version_name, args.tier)
        metadata = {"name": object_name, "namespace": args.namespace, "labels": object_labels}
        replicas = args.version.replicas
        autoscaled = is_autoscaled(replicas)

        account = k8s.core.v1.ServiceAccount(
            child(name, "sa"), metadata=metadata, automount_service_account_token=False, opts=mine
        )
        deployment_spec = {
            "selector": {"matchLabels": match_labels},
            "strategy": args.update_strategy,
            "revisionHistoryLimit": 5,
            "template": {
                # Istio's telemetry reads `app` and `version`.
                "metadata": {
                    "labels": {
                        **object_labels,
                        ROLE_LABEL: args.role,
                        "app": args.endpoint,
                        "version": args.version_name,
                    }
                },
                "spec": pod_spec(args, object_name),
            },
        }
        if not autoscaled:  # with an HPA, the HPA owns the replica count
            deployment_spec["replicas"] = replicas.min
        annotations = checkov_skips(args.version.image, args.pull_policy)
        if args.unversioned and not autoscaled:
            # Flagger scales its target (to 0 once promoted), so it owns spec.replicas: the next release's
            # server-side apply of the changed target would stop on that field conflict unless forced.
            annotations[PATCH_FORCE] = "true"
        self.deployment = k8s.apps.v1.Deployment(
            child(name, "deployment"),
            metadata={**metadata, **({"annotations": annotations} if annotations else {})},
            spec=deployment_spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.after, account]),
        )
        target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": object_name}
        if autoscaled:
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                child(name, "hpa"),
                metadata=metadata,
                spec={
                    "scaleTargetRef": target,
                    "minReplicas": replicas.min,
                    "maxReplicas": replicas.max,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                        }
                    ],
                },
                opts=mine,
            )
        if replicas.min >= 2:
            k8s.policy.v1.PodDisruptionBudget(
                child(name, "pdb"),
                metadata=metadata,
                spec={"maxUnavailable": 1, "selector": {"matchLabels": match_labels}},
                opts=mine,
            )
        self.register_outputs({"deployment": object_name})
