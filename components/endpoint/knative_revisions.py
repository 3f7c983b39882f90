"""An endpoint's traffic plan on Knative: Configurations whose revisions are named per version and template,
and a Route whose traffic block carries the plan's weights, each version tagged so that it is also
reachable with the `Knative-Serving-Tag` header.

recreate and rolling keep one Configuration (`<endpoint>`) whose revision changes with the version,
so Knative replaces it in place (gradually for rolling, via rollout-duration). Strategies that run
several versions at once get a Configuration per version (`<endpoint>-<version>`): a Knative
Service's single template could not declare a version that has never been deployed before.

A revision is named `<endpoint>-<version>-<hash of its template>`. Knative's webhook refuses a changed template
under an unchanged revision name (`VerifyNameChange`, pkg/apis/serving/v1/revision_validation.go), and a name that
does not start with `<Configuration name>-` (`validateRevisionName`); so any change to a version (image, env,
replicas, resources, the cache's address, the DR standby label) renames its revision, and nothing else does.
Routes follow each Configuration's latest ready revision, so they never name one.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.endpoint.istio_routes import CANARY_ANNOTATION
from components.endpoint.workload import GPU_RESOURCE, NO_ADDITIONS, RUN_AS, PodAdditions, container_security
from turnout.config import ModelVersion, key_path
from turnout.errors import ConfigError, describe
from turnout.naming import child, hashed_name, hashed_name_prefix, k8s_name, labels
from turnout.strategies import Canary, Recreate, Rolling, Strategy
from turnout.traffic import TrafficPlan

VERSION_LABEL = "turnout.dev/version"
ENDPOINT_LABEL = "turnout.dev/endpoint"
ROLLOUT_SECONDS = 300  # rolling: Knative shifts traffic to the new revision over five minutes


def single_configuration(strategy: Strategy) -> bool:
    return isinstance(strategy, (Recreate, Rolling))


def check_knative_names(endpoint: str, versions: list[str]) -> None:
    """Knative wants DNS-1035 labels, which start with a letter, where turnout's names are DNS-1123 labels: revision
    names start with the endpoint's name (validateRevisionName) and the Route tags each version with its name
    (route_validation.go)."""
    if not endpoint[:1].isalpha():
        raise ConfigError(
            key_path(f"endpoints.{endpoint}"), describe(endpoint), "a name starting with a letter on backend knative"
        )
    for version in versions:
        if not version[:1].isalpha():
            raise ConfigError(
                key_path(f"endpoints.{endpoint}.versions.{version}"),
                describe(version),
                "a version name starting with a letter on backend knative (Knative tags routes with it)",
            )


def configuration_name(endpoint: str, version: str, single: bool) -> str:
    """The endpoint's one Configuration, or the version's own, named so that its revision names
    (`<endpoint>-<version>-<hash>`) start with it and a dash, as Knative requires."""
    return endpoint if single else hashed_name_prefix(endpoint, version)


def _has_outputs(value: object) -> bool:
    if isinstance(value, pulumi.Output):
        return True
    if isinstance(value, dict):
        return any(_has_outputs(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_outputs(v) for v in value)
    return False


def named_revision(template: dict) -> dict:
    """`template` with `metadata.name` set to `<endpoint>-<version>-<hash of the rest of the template>` (endpoint and
    version from its turnout labels). Whoever changes a template after KnativeRevisions built it (the DR standby
    marking) names it again with this; values not known yet (the cache's address) are hashed once they are."""
    metadata = {key: value for key, value in (template.get("metadata") or {}).items() if key != "name"}
    unnamed = {**template, "metadata": metadata}
    parts = (metadata["labels"][ENDPOINT_LABEL], metadata["labels"][VERSION_LABEL])

    def name(resolved: dict) -> str:
        return hashed_name(*parts, content=resolved)

    revision = pulumi.Output.from_input(unnamed).apply(name) if _has_outputs(unnamed) else name(unnamed)
    return {**unnamed, "metadata": {**metadata, "name": revision}}


def revision_template(
    endpoint: str,
    version_name: str,
    version: ModelVersion,
    port: int,
    health_path: str,
    tier: str,
    additions: PodAdditions = NO_ADDITIONS,
) -> dict:
    """A revision of one version: Knative's container subset, hardened like the Istio workloads, plus what
    the endpoint uses (`additions`: the cache's env and its Secret file), whose env wins over the version's."""
    replicas = version.replicas
    # prod never scales a serving version to zero, whatever the cluster-wide default.
    min_scale = max(replicas.min, 1) if tier == "prod" else replicas.min
    limits = {"cpu": version.resources.cpu, "memory": version.resources.memory}
    if version.resources.gpu:
        limits[GPU_RESOURCE] = str(version.resources.gpu)
    env = {"TARGET": version_name, **version.env}
    reserved = {"PORT", *(entry["name"] for entry in additions.env)}
    probe = {"httpGet": {"path": health_path}, "periodSeconds": 10}
    spec: dict = {
        "serviceAccountName": k8s_name(endpoint, version_name),
        "automountServiceAccountToken": False,
        "containers": [
            {
                "name": "model",
                "image": version.image,
                "ports": [{"name": "http1", "containerPort": port}],
                "env": [{"name": name, "value": value} for name, value in sorted(env.items()) if name not in reserved]
                + list(additions.env),
                "resources": {
                    "requests": {"cpu": version.resources.cpu, "memory": version.resources.memory},
                    "limits": limits,
                },
                "readinessProbe": probe,
                "livenessProbe": {**probe, "failureThreshold": 6},
                # Knative's webhook limits the pod-level context, so the container carries uid and seccomp.
                "securityContext": {
                    **container_security(),
                    "runAsUser": RUN_AS,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                **({"volumeMounts": list(additions.mounts)} if additions.mounts else {}),
            }
        ],
        **({"volumes": list(additions.volumes)} if additions.volumes else {}),
        **({"imagePullSecrets": [{"name": name} for name in additions.pull_secrets]} if additions.pull_secrets else {}),
    }
    if version.resources.gpu:
        spec["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    return named_revision(
        {
            "metadata": {
                "labels": {**labels(endpoint, version_name, tier), "app": endpoint, "version": version_name},
                "annotations": {
                    "autoscaling.knative.dev/min-scale": str(min_scale),
                    "autoscaling.knative.dev/max-scale": str(replicas.max),
                },
            },
            "spec": spec,
        }
    )


def route_traffic(endpoint: str, plan: TrafficPlan, single: bool) -> list[dict]:
    """The Route's traffic block: the plan's only route (Knative routes by weight, not by match)."""
    (route,) = plan.routes
    if single:
        return [{"configurationName": endpoint, "latestRevision": True, "percent": 100, "tag": route.to[0].version}]
    return [
        {
            "configurationName": configuration_name(endpoint, d.version, single),
            "latestRevision": True,
            "percent": d.weight,
            "tag": d.version,
        }
        for d in route.to
    ]


@dataclass(frozen=True, kw_only=True)
class KnativeRevisionsArgs:
    endpoint: str
    namespace: str
    tier: str
    versions: dict[str, ModelVersion]
    strategy: Strategy
    plan: TrafficPlan
    port: int
    health_path: str
    after: tuple[pulumi.Resource, ...]
    additions: PodAdditions = NO_ADDITIONS
    """What every revision's model container gets beyond its version's config (the cache's env and Secret)."""


class KnativeRevisions(pulumi.ComponentResource):
    def __init__(self, name: str, args: KnativeRevisionsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        check_knative_names(args.endpoint, list(args.plan.running_versions))
        super().__init__("turnout:endpoint:KnativeRevisions", name, None, opts)
        after = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        single = single_configuration(args.strategy)
        configurations = []
        for version_name in args.plan.running_versions:
            object_name = k8s_name(args.endpoint, version_name)
            meta = {"namespace": args.namespace, "labels": labels(args.endpoint, version_name, args.tier)}
            account = k8s.core.v1.ServiceAccount(
                child(name, version_name, "sa"),
                metadata={"name": object_name, **meta},
                automount_service_account_token=False,
                opts=after,
            )
            template = revision_template(
                args.endpoint,
                version_name,
                args.versions[version_name],
                args.port,
                args.health_path,
                args.tier,
                args.additions,
            )
            configurations.append(
                k8s.apiextensions.CustomResource(
                    child(name, version_name, "config"),
                    api_version="serving.knative.dev/v1",
                    kind="Configuration",
                    metadata={"name": configuration_name(args.endpoint, version_name, single), **meta},
                    spec={"template": template},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.after, account]),
                )
            )
        route_metadata = {
            "name": args.endpoint,
            "namespace": args.namespace,
            "labels": labels(args.endpoint, None, args.tier),
        }
        if isinstance(args.strategy, Rolling):
            route_metadata["annotations"] = {"serving.knative.dev/rollout-duration": f"{ROLLOUT_SECONDS}s"}
        if isinstance(args.strategy, Canary):  # named so that policies can cap the canary's weight
            route_metadata["annotations"] = {CANARY_ANNOTATION: args.strategy.canary}
        k8s.apiextensions.CustomResource(
            child(name, "route"),
            api_version="serving.knative.dev/v1",
            kind="Route",
            metadata=route_metadata,
            spec={"traffic": route_traffic(args.endpoint, args.plan, single)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.after, *configurations]),
        )
        self.register_outputs({"route": args.endpoint})
