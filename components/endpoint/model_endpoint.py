"""A model endpoint on one cluster: its namespace, a workload per running version, the Services in
front of them, and the routing objects that realise its strategy."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.cache import CacheConnection
from components.cache.access import CacheAccess, CacheAccessArgs
from components.endpoint import agent_experiments, agent_judge
from components.endpoint.acceptance import AcceptanceJob, AcceptanceJobArgs, AcceptanceWebhook, AcceptanceWebhookArgs
from components.endpoint.egress import EndpointEgress, EndpointEgressArgs
from components.endpoint.experiment_agent import ExperimentAgent, ExperimentAgentArgs, ab_test_note, traffic_note
from components.endpoint.feature_flags import FlagDaemon, FlagDaemonArgs
from components.endpoint.flagger_canary import FlaggerCanary, FlaggerCanaryArgs, analysed_versions
from components.endpoint.istio_routes import IstioRoutes, IstioRoutesArgs
from components.endpoint.knative_revisions import KnativeRevisions, KnativeRevisionsArgs
from components.endpoint.namespace import ModelNamespace, ModelNamespaceArgs
from components.endpoint.pull_secrets import PullSecrets, PullSecretsArgs
from components.endpoint.workload import NO_ADDITIONS, ROLE_LABEL, ModelWorkload, ModelWorkloadArgs, is_autoscaled
from components.mesh.platform import MeshInfo
from turnout.config import Endpoint, key_path
from turnout.errors import NotSupportedError
from turnout.naming import child, labels
from turnout.strategies import (
    Bandit,
    Canary,
    FeatureFlag,
    Interleaved,
    Recreate,
    Rolling,
    Strategy,
    judged_canary,
    learns_from_traffic,
    rewarded_ab_test,
)
from turnout.traffic import TrafficPlan, traffic_plan

DEFAULT_UPDATE = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}}


def update_strategy(strategy: Strategy) -> dict:
    """How each version's Deployment replaces its own pods: `recreate` all at once, else a few at a time."""
    if isinstance(strategy, Recreate):
        return {"type": "Recreate"}
    if isinstance(strategy, Rolling):
        return {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": strategy.max_surge, "maxUnavailable": strategy.max_unavailable},
        }
    return DEFAULT_UPDATE


def check_renderable(name: str, endpoint: Endpoint) -> None:
    path = key_path(f"endpoints.{name}")
    strategy = endpoint.strategy
    if isinstance(strategy, Canary) and strategy.progressive is not None and strategy.sticky is not None:
        # Flagger's session affinity pins only canary users, to a cookie value it generates: not the
        # sticky plan turnout shows (both versions pinned by version name).
        raise NotSupportedError(f"{path}.strategy.sticky", "a sticky progressive canary", "sticky or progressive")


@dataclass(frozen=True, kw_only=True)
class ModelEndpointArgs:
    endpoint_name: str
    endpoint: Endpoint
    tier: str
    cluster: str
    mesh: MeshInfo
    after: tuple[pulumi.Resource, ...]
    """The serving platform of the cluster, which the endpoint's objects wait for."""
    cache: CacheConnection | None = None
    """The cache in the endpoint's region: its workloads get REDIS_* env and the password from a Secret."""


class ModelEndpoint(pulumi.ComponentResource):
    plan: TrafficPlan
    traffic: dict[str, Any]
    """This endpoint's entry in `traffic.json`."""

    def __init__(self, name: str, args: ModelEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:endpoint:ModelEndpoint", name, None, opts)
        check_renderable(args.endpoint_name, args.endpoint)
        endpoint, namespace_name = args.endpoint, args.endpoint_name
        self.plan = traffic_plan(endpoint.strategy, endpoint.backend)
        namespace = ModelNamespace(
            child(name, "ns"),
            ModelNamespaceArgs(
                namespace=namespace_name,
                endpoint=args.endpoint_name,
                tier=args.tier,
                allowed_principals=[args.mesh.gateway_principal],
                allowed_namespaces=[args.mesh.knative_namespace] if endpoint.backend == "knative" else [],
                platform_namespaces=args.mesh.platform_namespaces,
                after=args.after,
            ),
            pulumi.ResourceOptions(parent=self),
        ).namespace
        in_namespace = (namespace,)
        self._additions = NO_ADDITIONS
        if args.cache is not None:
            access = CacheAccess(
                child(name, "cache"),
                CacheAccessArgs(
                    namespace=namespace_name,
                    endpoint=args.endpoint_name,
                    tier=args.tier,
                    connection=args.cache,
                    after=(namespace, *args.after),
                ),
                pulumi.ResourceOptions(parent=self),
            )
            in_namespace, self._additions = (namespace, *access.ready), access.additions
        in_namespace = self._egress_and_pull_secrets(name, args, in_namespace)
        public_host = f"{args.endpoint_name}.{args.mesh.domain}"
        tag_hosts = None
        if endpoint.backend == "knative":
            tag_hosts = KnativeRevisions(
                child(name, "knative"),
                KnativeRevisionsArgs(
                    endpoint=args.endpoint_name,
                    namespace=namespace_name,
                    tier=args.tier,
                    versions=endpoint.versions,
                    strategy=endpoint.strategy,
                    plan=self.plan,
                    port=endpoint.port,
                    health_path=endpoint.health_path,
                    after=in_namespace,
                    domain=args.mesh.domain,
                    additions=self._additions,
                    tests=endpoint.tests,
                    pull_policy=args.mesh.image_pull_policy,
                ),
                pulumi.ResourceOptions(parent=self),
            ).tag_hosts
        elif getattr(endpoint.strategy, "progressive", None) is not None:
            self._flagger(name, args, public_host, in_namespace)
        else:
            self._istio(name, args, public_host, in_namespace)
        bandit = isinstance(endpoint.strategy, Bandit)
        # An interleaved endpoint's replicas share impressions through a cache they can write (not a read replica).
        shared = args.cache is not None and args.cache.role == "primary" and isinstance(endpoint.strategy, Interleaved)
        if learns_from_traffic(endpoint.strategy):
            ExperimentAgent(
                child(name, "agent"),
                ExperimentAgentArgs(
                    endpoint=args.endpoint_name,
                    namespace=namespace_name,
                    tier=args.tier,
                    strategy=endpoint.strategy,
                    plan=self.plan,
                    image=args.mesh.agent_image,
                    pull_policy=args.mesh.image_pull_policy,
                    prometheus_url=args.mesh.prometheus_url,
                    after=in_namespace,
                    cache=self._additions if shared else None,
                ),
                pulumi.ResourceOptions(parent=self),
            )
        if isinstance(endpoint.strategy, FeatureFlag):
            FlagDaemon(
                child(name, "flagd"),
                FlagDaemonArgs(
                    endpoint=args.endpoint_name,
                    namespace=namespace_name,
                    tier=args.tier,
                    strategy=endpoint.strategy,
                    pull_policy=args.mesh.image_pull_policy,
                    after=in_namespace,
                ),
                pulumi.ResourceOptions(parent=self),
            )
        self.traffic = {
            "name": args.endpoint_name,
            "cluster": args.cluster,
            "backend": endpoint.backend,
            "strategy": self.plan.strategy,
            "routes": self.plan.to_json(),
            **({"agent": traffic_note(namespace_name, namespace_name, endpoint.strategy)} if bandit else {}),
            **(
                {"agent": ab_test_note(namespace_name, namespace_name, endpoint.strategy)}
                if rewarded_ab_test(endpoint.strategy)
                else {}
            ),
            **({"tagHosts": tag_hosts} if tag_hosts is not None else {}),
            **(
                {
                    "agent": agent_experiments.traffic_note(
                        namespace_name, namespace_name, endpoint.strategy, cache=shared
                    )
                }
                if learns_from_traffic(endpoint.strategy)
                and not bandit
                and not judged_canary(endpoint.strategy)
                and not rewarded_ab_test(endpoint.strategy)
                else {}
            ),
            **(
                {"agent": agent_judge.traffic_note(namespace_name, namespace_name, endpoint.strategy)}
                if judged_canary(endpoint.strategy)
                else {}
            ),
        }
        # Names, not the traffic document: every nested value registered becomes an Output to await.
        self.register_outputs({"namespace": namespace_name, "versions": list(self.plan.running_versions)})

    def _egress_and_pull_secrets(self, name: str, args: ModelEndpointArgs, in_namespace: tuple) -> tuple:
        """ServiceEntries for the hosts the endpoint calls and the pull Secrets its pods use: workloads wait for
        both."""
        endpoint, common = args.endpoint, {"namespace": args.endpoint_name, "endpoint": args.endpoint_name}
        if endpoint.egress:
            egress = EndpointEgress(
                child(name, "egress"),
                EndpointEgressArgs(**common, tier=args.tier, hosts=endpoint.egress, after=(*in_namespace, *args.after)),
                pulumi.ResourceOptions(parent=self),
            )
            in_namespace = (*in_namespace, *egress.ready)
        if endpoint.pull_secrets:
            secrets = PullSecrets(
                child(name, "pull-secrets"),
                PullSecretsArgs(**common, tier=args.tier, secrets=endpoint.pull_secrets, after=in_namespace[:1]),
                pulumi.ResourceOptions(parent=self),
            )
            in_namespace = (*in_namespace, *secrets.ready)
            self._additions = dataclasses.replace(self._additions, pull_secrets=secrets.names)
        return in_namespace

    def _istio(self, name: str, args: ModelEndpointArgs, public_host: str, in_namespace: tuple) -> None:
        """A Deployment per running version, the Services in front of them, and the Istio routes."""
        endpoint, namespace_name, namespace = args.endpoint, args.endpoint_name, in_namespace[0]
        shadows = set(self.plan.mirrored_versions)
        workloads = []
        for version_name in self.plan.running_versions:
            workload = ModelWorkload(
                child(name, version_name),
                ModelWorkloadArgs(
                    namespace=namespace_name,
                    after=in_namespace,
                    endpoint=args.endpoint_name,
                    version_name=version_name,
                    version=endpoint.versions[version_name],
                    role="shadow" if version_name in shadows else "serving",
                    port=endpoint.port,
                    health_path=endpoint.health_path,
                    tier=args.tier,
                    update_strategy=update_strategy(endpoint.strategy),
                    pull_policy=args.mesh.image_pull_policy,
                    additions=self._additions,
                ),
                pulumi.ResourceOptions(parent=self),
            )
            workloads.append(workload.deployment)
        # Shadows get their own Service: the public one never selects them, so they can only be mirrored to.
        for suffix, role in (("", "serving"), ("-shadow", "shadow")):
            if role == "shadow" and not shadows:
                continue
            k8s.core.v1.Service(
                child(name, f"svc{suffix}"),
                metadata={
                    "name": f"{args.endpoint_name}{suffix}",
                    "namespace": namespace_name,
                    "labels": labels(args.endpoint_name, None, args.tier),
                },
                spec={
                    "type": "ClusterIP",
                    "selector": {"app.kubernetes.io/name": args.endpoint_name, ROLE_LABEL: role},
                    "ports": [
                        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}
                    ],
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
            )
        routes_after = in_namespace
        if endpoint.tests:  # the routes change only once every version they send requests to passed its tests
            acceptance = AcceptanceJob(
                child(name, "acceptance"),
                AcceptanceJobArgs(
                    endpoint=args.endpoint_name,
                    namespace=namespace_name,
                    tier=args.tier,
                    tests=endpoint.tests,
                    pull_policy=args.mesh.image_pull_policy,
                    after=(*in_namespace, *workloads),
                    versions={v: endpoint.versions[v] for v in self.plan.running_versions},
                ),
                pulumi.ResourceOptions(parent=self),
            )
            routes_after = (*in_namespace, acceptance.job)
        IstioRoutes(
            child(name, "routes"),
            IstioRoutesArgs(
                endpoint=args.endpoint_name,
                namespace=namespace_name,
                tier=args.tier,
                plan=self.plan,
                sticky=endpoint.strategy.sticky if isinstance(endpoint.strategy, Canary) else None,
                canary_version=endpoint.strategy.canary if isinstance(endpoint.strategy, Canary) else None,
                public_host=public_host,
                gateway=args.mesh.gateway,
                after=routes_after,
                min_weight=endpoint.strategy.min_weight if isinstance(endpoint.strategy, Bandit) else None,
                experiment_headers=rewarded_ab_test(endpoint.strategy),
            ),
            pulumi.ResourceOptions(parent=self),
        )

    def _flagger(self, name: str, args: ModelEndpointArgs, public_host: str, in_namespace: tuple) -> None:
        """The version under analysis as Flagger's target, and the Canary that analyses and promotes it."""
        endpoint, strategy = args.endpoint, args.endpoint.strategy
        analysed = analysed_versions(strategy)[1]
        version = endpoint.versions[analysed]
        ModelWorkload(
            # Named for its role, not its version: the next release changes the version in place. A name with the
            # version would make Pulumi create the `<endpoint>` Deployment under a new name and then delete the old
            # name's, which is the same Kubernetes object (pulumi/pulumi-kubernetes#2948): the target would be gone.
            child(name, "flagger-target"),
            ModelWorkloadArgs(
                namespace=args.endpoint_name,
                after=in_namespace,
                endpoint=args.endpoint_name,
                version_name=analysed,
                version=version,
                role="serving",
                port=endpoint.port,
                health_path=endpoint.health_path,
                tier=args.tier,
                update_strategy=update_strategy(strategy),
                pull_policy=args.mesh.image_pull_policy,
                unversioned=True,
                additions=self._additions,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        webhooks, canary_after = (), in_namespace
        if endpoint.tests:  # Flagger calls them before the new version gets any request
            runner = AcceptanceWebhook(
                child(name, "acceptance"),
                AcceptanceWebhookArgs(
                    endpoint=args.endpoint_name,
                    namespace=args.endpoint_name,
                    tier=args.tier,
                    tests=endpoint.tests,
                    pull_policy=args.mesh.image_pull_policy,
                    after=in_namespace,
                    canary_url=f"http://{args.endpoint_name}-canary.{args.endpoint_name}",
                ),
                pulumi.ResourceOptions(parent=self),
            )
            webhooks, canary_after = (runner.webhook,), (*in_namespace, *runner.ready)
        FlaggerCanary(
            child(name, "flagger"),
            FlaggerCanaryArgs(
                endpoint=args.endpoint_name,
                namespace=args.endpoint_name,
                tier=args.tier,
                strategy=strategy,
                port=endpoint.port,
                public_host=public_host,
                gateway=args.mesh.gateway,
                autoscaled=is_autoscaled(version.replicas),
                after=canary_after,
                webhooks=webhooks,
            ),
            pulumi.ResourceOptions(parent=self),
        )
