"""An endpoint's traffic plan on Knative: Configurations whose revisions are named per version and template,
and a Route whose traffic block carries the plan's weights, each version tagged with its name so that it is
also reachable with the `Knative-Serving-Tag: <version>` header and at its tag's host,
`<version>-<endpoint>.<domain>`. blue-green's preview and dark-launch's dark version are in the Route at 0%:
their tag is the only way in, and the switch is the same one-word change as on Istio (the percents move).

recreate and rolling keep one Configuration (`<endpoint>`) whose revision changes with the version,
so Knative replaces it in place (gradually for rolling, via rollout-duration). Strategies that run
several versions at once get a Configuration per version (`<endpoint>-<version>`): a Knative
Service's single template could not declare a version that has never been deployed before.

A revision is named `<endpoint>-<version>-<hash of its template>`. Knative's webhook refuses a changed template
under an unchanged revision name (`VerifyNameChange`, pkg/apis/serving/v1/revision_validation.go), and a name that
does not start with `<Configuration name>-` (`validateRevisionName`); so any change to a version (image, env,
replicas, resources, the cache's address, the DR standby label) renames its revision, and nothing else does.
Routes follow each Configuration's latest ready revision, so they never name one, unless the endpoint has
acceptance tests (`endpoints.NAME.tests`): then a Configuration's new revision must not take traffic before it passed
them, so the Route names each revision it sends requests to or tags (`revisionName`, read back from its
Configuration, so that a standby region's renamed revision is the one named) and waits for the Job that tests them
(components/endpoint/acceptance.py). A failing test fails `pulumi up` before the Route changes: users stay on the
revisions it named. Knative's gradual rollout (rolling's rollout-duration) moves Configuration targets only, so a
tested rolling endpoint moves to its new revision at once, after the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.endpoint.acceptance import RevisionsAcceptanceJob, RevisionsAcceptanceJobArgs
from components.endpoint.istio_routes import CANARY_ANNOTATION
from components.endpoint.workload import GPU_RESOURCE, NO_ADDITIONS, RUN_AS, PodAdditions, container_security
from turnout.config import AcceptanceTest, ModelVersion, key_path
from turnout.errors import ConfigError, describe
from turnout.naming import K8S_NAME_MAX, child, hashed_name, hashed_name_prefix, k8s_name, labels
from turnout.strategies import Canary, Recreate, Rolling, Strategy
from turnout.traffic import TrafficPlan

# Knative's default config-network `tag-template` ({{.Tag}}-{{.Name}}, knative.dev/networking), which turnout leaves
# alone, under turnout's domain template ({{.Name}}.{{.Domain}}): a tag's host is one label under the domain, so the
# Gateway's `*.<domain>` certificate covers it. Knative refuses a label over 63 characters when it makes the host
# (IsFullyQualifiedDomainName in DomainNameFromTemplate), at reconcile time: the Route never becomes ready.
DNS_NAME_MAX = 253

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


def tag_host(endpoint: str, tag: str, domain: str) -> str:
    """Where Knative serves a Route tag's target: `<tag>-<route>.<domain>` (the Route is named after the endpoint)."""
    return f"{tag}-{endpoint}.{domain}"


def tag_hosts(endpoint: str, plan: TrafficPlan, domain: str) -> dict[str, str]:
    """Tag → its host, for every version the Route tags (each with its own name)."""
    return {version: tag_host(endpoint, version, domain) for version in plan.running_versions}


def check_tag_hosts(endpoint: str, versions: list[str], domain: str) -> None:
    """Each tag's host must be a DNS name Knative can make: its first label `<version>-<endpoint>` at most 63
    characters (turnout's names may each have 40), the whole name at most 253."""
    for version in versions:
        host = tag_host(endpoint, version, domain)
        label = host.split(".", 1)[0]
        if len(label) > K8S_NAME_MAX:
            found = f"{version!r}, whose Knative tag host {host} starts with a label of {len(label)} characters"
        elif len(host) > DNS_NAME_MAX:
            found = f"{version!r}, whose Knative tag host {host} has {len(host)} characters"
        else:
            continue
        raise ConfigError(
            key_path(f"endpoints.{endpoint}.versions.{version}"),
            found,
            f"on backend knative, version and endpoint names ({key_path(f'endpoints.{endpoint}')}) of at most "
            f"{K8S_NAME_MAX - 1} characters together: Knative serves each version's tag at "
            f"`<version>-<endpoint>.<domain>`, whose first label DNS limits to {K8S_NAME_MAX} characters "
            f"(and the name to {DNS_NAME_MAX})",
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


def route_traffic(
    endpoint: str, plan: TrafficPlan, single: bool, revisions: dict[str, pulumi.Input[str]] | None = None
) -> list[dict]:
    """The Route's traffic block: the percents of the plan's last route (the one every request takes unless it
    carries a tag), then the versions only a tag reaches (the plan's tag routes) at 0%; every version tagged with
    its name. With `revisions` (version → revision name), each target names its revision instead of following its
    Configuration's latest one."""

    def target(version: str) -> dict:
        if revisions is not None:
            return {"revisionName": revisions[version], "latestRevision": False}
        return {"configurationName": configuration_name(endpoint, version, single), "latestRevision": True}

    *_, served = plan.routes
    if single:
        version = served.to[0].version
        return [{**target(version), "percent": 100, "tag": version}]
    weights = {d.version: d.weight for d in served.to}
    return [
        {**target(version), "percent": weights.get(version, 0), "tag": version}
        for version in (*weights, *(v for v in plan.running_versions if v not in weights))
    ]


def revision_name(configuration: k8s.apiextensions.CustomResource) -> pulumi.Output[str]:
    """The name of the revision a Configuration makes, as it was sent (after any transformation renamed it)."""
    return configuration.spec.apply(lambda spec: spec["template"]["metadata"]["name"])


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
    domain: str
    """The cluster's Knative domain (config-domain): the Route answers at `<endpoint>.<domain>`, its tags beside it."""
    additions: PodAdditions = NO_ADDITIONS
    """What every revision's model container gets beyond its version's config (the cache's env and Secret)."""
    tests: tuple[AcceptanceTest, ...] = ()
    """The endpoint's acceptance tests: the Route then names the revisions and waits for a Job that tests them."""
    pull_policy: str = "IfNotPresent"
    """The acceptance runner's image pull policy (the platform's)."""


class KnativeRevisions(pulumi.ComponentResource):
    tag_hosts: dict[str, str]
    """Each tag of the Route (a version's name) → the host where every request reaches that version."""

    def __init__(self, name: str, args: KnativeRevisionsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        check_knative_names(args.endpoint, list(args.plan.running_versions))
        check_tag_hosts(args.endpoint, list(args.plan.running_versions), args.domain)
        super().__init__("turnout:endpoint:KnativeRevisions", name, None, opts)
        self.tag_hosts = tag_hosts(args.endpoint, args.plan, args.domain)
        after = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        single = single_configuration(args.strategy)
        configurations = {}
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
            configurations[version_name] = k8s.apiextensions.CustomResource(
                child(name, version_name, "config"),
                api_version="serving.knative.dev/v1",
                kind="Configuration",
                metadata={"name": configuration_name(args.endpoint, version_name, single), **meta},
                spec={"template": template},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.after, account]),
            )
        route_after = [*args.after, *configurations.values()]
        revisions = None
        if args.tests:  # the Route names only revisions that passed: it changes once the Job completes
            revisions = {version: revision_name(c) for version, c in configurations.items()}
            acceptance = RevisionsAcceptanceJob(
                child(name, "acceptance"),
                RevisionsAcceptanceJobArgs(
                    endpoint=args.endpoint,
                    namespace=args.namespace,
                    tier=args.tier,
                    tests=args.tests,
                    pull_policy=args.pull_policy,
                    after=tuple(route_after),
                    revisions=revisions,
                ),
                pulumi.ResourceOptions(parent=self),
            )
            route_after.append(acceptance.job)
        route_metadata = {
            "name": args.endpoint,
            "namespace": args.namespace,
            "labels": labels(args.endpoint, None, args.tier),
        }
        if isinstance(args.strategy, Rolling) and revisions is None:  # Knative rolls Configuration targets only
            route_metadata["annotations"] = {"serving.knative.dev/rollout-duration": f"{ROLLOUT_SECONDS}s"}
        if isinstance(args.strategy, Canary):  # named so that policies can cap the canary's weight
            route_metadata["annotations"] = {CANARY_ANNOTATION: args.strategy.canary}
        k8s.apiextensions.CustomResource(
            child(name, "route"),
            api_version="serving.knative.dev/v1",
            kind="Route",
            metadata=route_metadata,
            spec={"traffic": route_traffic(args.endpoint, args.plan, single, revisions)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=route_after),
        )
        self.register_outputs({"route": args.endpoint})
