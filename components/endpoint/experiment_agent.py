"""The experiment agent of a bandit endpoint (apps/experiment-agent): a StatefulSet whose replicas each
keep a durable feedback ledger on their own volume, one of them (the Lease holder) writing the weights
into the endpoint's VirtualService every interval; a Role allowing exactly that; the settings it runs
with; the Services callers and peers reach it at; who may post feedback; and its metrics for Prometheus.

The Lease and the state ConfigMap are created here, empty, so the agent needs no `create` (which RBAC
cannot limit to one name): it gets and updates those two objects and its VirtualService, nothing else.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.endpoint import agent_experiments, agent_judge
from components.endpoint.agent_backends import AgentBackends, AgentBackendsArgs
from components.endpoint.istio_routes import Hosts, http_routes
from components.endpoint.workload import PodAdditions, checkov_skips, container_security, pod_security
from components.mesh.istio import GATEWAY_PRINCIPAL
from turnout.config import KIND_AGENT_IMAGE, StackConfig, key_path, regional_variants
from turnout.errors import ConfigError, describe
from turnout.naming import child, k8s_name, labels
from turnout.strategies import (
    AbTest,
    Bandit,
    Canary,
    Interleaved,
    Shadow,
    judged_canary,
    learns_from_traffic,
    rewarded_ab_test,
)
from turnout.traffic import TrafficPlan

AGENT_PORT = 8080
LEDGER_MOUNT = "/var/lib/turnout-agent"
SETTINGS_MOUNT = "/etc/turnout-agent"
LEDGER_SIZE = "1Gi"
DEDUPE_SECONDS = 7 * 86400  # a request id reported again within a week counts once
TRUST_DOMAIN = GATEWAY_PRINCIPAL.split("/", 1)[0]  # cluster.local: SPIFFE principals are TRUST_DOMAIN/ns/NS/sa/SA
AGENT_ROLE = "experiment-agent"
LEARNED_STATE = "data"
"""The state ConfigMap's data is the agent's: Pulumi creates the object empty and never writes it again."""


def agent_name(endpoint: str) -> str:
    return k8s_name(endpoint, "agent")


def leads_rounds(strategy: object) -> bool:
    """A bandit, or an ab-test with rewards: one replica (the Lease holder) counts every interval into the state."""
    return isinstance(strategy, Bandit) or rewarded_ab_test(strategy)


AB_TEST_INTERVAL = 30
"""Seconds between an ab-test agent's rounds (its report's freshness; nothing is decided on them)."""


def ab_test_settings(*, endpoint: str, namespace: str, strategy: AbTest, prometheus_url: str, replicas: int) -> dict:
    """An ab-test's agent: a bandit's settings with the stack's split as fixed weights (apps/experiment-agent's
    settings.py: `fixedWeights`, policy `fixed`, no routing), so it counts, reports and never writes routes."""
    reward = strategy.reward
    assert reward is not None
    name = agent_name(endpoint)
    return {
        "endpoint": endpoint,
        "namespace": namespace,
        "strategy": "bandit",
        "arms": list(strategy.variants),
        "policy": "fixed",
        "fixedWeights": dict(strategy.variants),
        "epsilon": 0.0,
        "minWeight": 0,
        "reward": {"source": reward.source, "unreported": reward.unreported or "zero", "latencyMs": reward.latency_ms},
        "intervalSeconds": AB_TEST_INTERVAL,
        "prometheus": {"url": prometheus_url, "service": endpoint},
        "state": {"configMap": f"{name}-state"},
        "lease": {"name": name, "durationSeconds": lease_seconds(AB_TEST_INTERVAL)},
        **agent_settings_common(endpoint, namespace, replicas),
        "port": AGENT_PORT,
    }


def lease_seconds(interval: int) -> int:
    """A leader renews three times a lease; a successor takes over within one lease (at most an interval)."""
    return max(6, min(interval, 60))


def check_experiment_agents(config: StackConfig) -> None:
    """Before anything is created: an agent image each cluster can run. On clouds the stack names it (the
    release workflow publishes it); on kind an image under kind.local/ exists only once `kind load`ed."""
    everywhere = [config.endpoints, *regional_variants(config)]
    users = sorted(
        {name for endpoints in everywhere for name, e in endpoints.items() if learns_from_traffic(e.strategy)}
    )
    if not users:
        return
    strategy_of = {name: e.strategy for endpoints in everywhere for name, e in endpoints.items() if name in users}
    serving = config.platform.serving
    path = key_path("platform.serving.agentImage")
    if config.platform.cloud != "kind" and serving.agent_image is None:
        raise ConfigError(
            path,
            f"nothing, with {strategy_of[users[0]].TYPE} endpoint {users[0]} on {config.platform.cloud}",
            "the experiment agent's image as .github/workflows/release-agent.yml publishes it, such as "
            "ghcr.io/OWNER/turnout-experiment-agent:0.1.0",
        )
    image = serving.agent_image or KIND_AGENT_IMAGE
    if config.platform.cloud == "kind" and image.startswith("kind.local/") and image not in config.platform.load_images:
        raise ConfigError(
            key_path("platform.loadImages"),
            f"{describe(list(config.platform.load_images))}, without the experiment agent {image} "
            f"that {strategy_of[users[0]].TYPE} endpoint {users[0]} runs",
            f"a list including {image} (make up builds it), or an agentImage kind can pull",
        )


def caller_sources(callers: tuple[str, ...]) -> list[dict]:
    """AuthorizationPolicy sources for reward.callers: namespaces and principals; none named = any mesh workload."""
    namespaces = sorted(c for c in callers if "/" not in c)
    principals = sorted(c for c in callers if "/" in c)
    if not callers:
        return [{"source": {"principals": ["*"]}}]
    sources = []
    if namespaces:
        sources.append({"source": {"namespaces": namespaces}})
    if principals:
        sources.append({"source": {"principals": principals}})
    return sources


def caller_namespaces(callers: tuple[str, ...]) -> list[str] | None:
    """The namespaces callers connect from (a principal's own), or None for every namespace."""
    if not callers:
        return None
    return sorted({c if "/" not in c else c.split("/ns/", 1)[1].split("/", 1)[0] for c in callers})


def agent_settings(
    *, endpoint: str, namespace: str, strategy: Bandit, plan: TrafficPlan, prometheus_url: str, replicas: int
) -> dict:
    """The document the agent runs with (apps/experiment-agent/turnout_agent/settings.py)."""
    name = agent_name(endpoint)
    domain = f"{namespace}.svc.cluster.local"
    hosts = Hosts(service=f"{endpoint}.{domain}", shadow=f"{endpoint}-shadow.{domain}")
    (split,) = http_routes(plan, hosts, experiment=True)
    destinations = {d["destination"]["subset"]: {k: v for k, v in d.items() if k != "weight"} for d in split["route"]}
    reward = strategy.reward
    return {
        "endpoint": endpoint,
        "namespace": namespace,
        "arms": list(strategy.arms),
        "policy": strategy.policy,
        "epsilon": strategy.epsilon,
        "minWeight": strategy.min_weight,
        "reward": {"source": reward.source, "unreported": reward.unreported or "zero", "latencyMs": reward.latency_ms},
        "intervalSeconds": strategy.interval,
        "routing": {
            "kind": "VirtualService",
            "group": "networking.istio.io",
            "version": "v1",
            "plural": "virtualservices",
            "name": endpoint,
            "route": split["name"],
            "destinations": destinations,
        },
        "prometheus": {"url": prometheus_url, "service": endpoint},
        "state": {"configMap": f"{name}-state"},
        "lease": {"name": name, "durationSeconds": lease_seconds(strategy.interval)},
        "peers": [
            {"name": f"{name}-{i}", "url": f"http://{name}-{i}.{name}-peers.{domain}:{AGENT_PORT}"}
            for i in range(replicas)
        ],
        "ledger": {"path": f"{LEDGER_MOUNT}/ledger.sqlite3", "dedupeSeconds": DEDUPE_SECONDS},
        "port": AGENT_PORT,
    }


def agent_settings_common(endpoint: str, namespace: str, replicas: int) -> dict:
    """The peers and the ledger, as agent_settings gives them: what every agent's settings share."""
    name, domain = agent_name(endpoint), f"{namespace}.svc.cluster.local"
    return {
        "peers": [
            {"name": f"{name}-{i}", "url": f"http://{name}-{i}.{name}-peers.{domain}:{AGENT_PORT}"}
            for i in range(replicas)
        ],
        "ledger": {"path": f"{LEDGER_MOUNT}/ledger.sqlite3", "dedupeSeconds": DEDUPE_SECONDS},
    }


def traffic_note(endpoint: str, namespace: str, strategy: Bandit) -> dict:
    """What traffic.json says besides the routes: the split shown is the initial one; the agent owns it after."""
    name = agent_name(endpoint)
    return {
        "owns": "weights",
        "note": f"the initial split; the experiment agent recomputes the weights every {strategy.interval}s "
        f"({strategy.policy}, every arm at least {strategy.min_weight}%) and owns them afterwards",
        "service": f"{name}.{namespace}.svc.cluster.local:{AGENT_PORT}",
        "feedback": f"/v1/endpoints/{endpoint}/feedback",
        "report": f"/v1/endpoints/{endpoint}/report",
        "arms": list(strategy.arms),
        "intervalSeconds": strategy.interval,
        "minWeight": strategy.min_weight,
        "reward": strategy.reward.source,
    }


def ab_test_note(endpoint: str, namespace: str, strategy: AbTest) -> dict:
    """traffic.json's `agent` entry of an ab-test with rewards: the split is the stack's; the agent only reports."""
    assert strategy.reward is not None
    name = agent_name(endpoint)
    return {
        "owns": "nothing",
        "note": "the split is the stack's and does not change; the experiment agent collects each variant's rewards "
        "and reports their rates with always-valid confidence intervals and the differences' p-values",
        "service": f"{name}.{namespace}.svc.cluster.local:{AGENT_PORT}",
        **({"feedback": f"/v1/endpoints/{endpoint}/feedback"} if strategy.reward.source == "feedback" else {}),
        "report": f"/v1/endpoints/{endpoint}/report",
        "variants": dict(strategy.variants),
        "reward": strategy.reward.source,
    }


@dataclass(frozen=True, kw_only=True)
class ExperimentAgentArgs:
    endpoint: str
    namespace: str
    tier: str
    strategy: Bandit | Interleaved | Shadow | Canary | AbTest
    plan: TrafficPlan
    image: str
    pull_policy: str
    prometheus_url: str
    after: tuple[pulumi.Resource, ...]
    """The endpoint's namespace (and the platform): every object here waits for it."""
    cache: PodAdditions | None = None
    """An interleaved endpoint's read-write cache (its env and password Secret): the replicas share impressions."""


class ExperimentAgent(pulumi.ComponentResource):
    def __init__(self, name: str, args: ExperimentAgentArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:endpoint:ExperimentAgent", name, None, opts)
        object_name = agent_name(args.endpoint)
        object_labels = {**labels(args.endpoint, None, args.tier), "app.kubernetes.io/component": AGENT_ROLE}
        selector = {"app.kubernetes.io/name": args.endpoint, "app.kubernetes.io/component": AGENT_ROLE}
        metadata = {"name": object_name, "namespace": args.namespace, "labels": object_labels}
        mine = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        replicas = 2 if args.tier == "prod" else 1
        bandit = leads_rounds(args.strategy)
        judged = judged_canary(args.strategy)
        if judged:
            replicas = 1  # Flagger is its one caller; its analyses are on its volume (restart-safe)
        if isinstance(args.strategy, AbTest):
            settings = ab_test_settings(
                endpoint=args.endpoint,
                namespace=args.namespace,
                strategy=args.strategy,
                prometheus_url=args.prometheus_url,
                replicas=replicas,
            )
        elif bandit:
            settings = agent_settings(
                endpoint=args.endpoint,
                namespace=args.namespace,
                strategy=args.strategy,
                plan=args.plan,
                prometheus_url=args.prometheus_url,
                replicas=replicas,
            )
        elif judged:
            assert isinstance(args.strategy, Canary)
            settings = agent_judge.judge_settings(
                endpoint=args.endpoint,
                namespace=args.namespace,
                strategy=args.strategy,
                prometheus_url=args.prometheus_url,
                **agent_settings_common(args.endpoint, args.namespace, replicas),
            )
        else:
            shared = agent_settings_common(args.endpoint, args.namespace, replicas)
            settings = agent_experiments.experiment_settings(
                endpoint=args.endpoint,
                namespace=args.namespace,
                strategy=args.strategy,
                cache=args.cache is not None,
                **shared,
            )
        settings_text = json.dumps(settings, indent=2, sort_keys=True)
        config = k8s.core.v1.ConfigMap(
            child(name, "settings"),
            metadata={**metadata, "name": f"{object_name}-settings"},
            data={"settings.json": settings_text},
            opts=mine,
        )
        account = k8s.core.v1.ServiceAccount(child(name, "sa"), metadata=metadata, opts=mine)
        ports = [{"name": "http", "port": AGENT_PORT, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}]
        if judged:
            ports.append(
                {
                    "name": "flagger",
                    "port": agent_judge.WEBHOOK_PORT,
                    "targetPort": "flagger",
                    "protocol": "TCP",
                    "appProtocol": "http",
                }
            )
            self._serve(name, args, metadata, object_labels, selector, replicas, ports, settings, (config, account))
            return
        if not bandit:
            ports += [
                {"name": port_name, "port": number, "targetPort": port_name, "protocol": "TCP", "appProtocol": "http"}
                for port_name, number in agent_experiments.listener_ports(args.strategy)
            ]
            own = f"{TRUST_DOMAIN}/ns/{args.namespace}/sa/{object_name}"
            AgentBackends(
                child(name, "backends"),
                AgentBackendsArgs(
                    endpoint=args.endpoint,
                    namespace=args.namespace,
                    tier=args.tier,
                    versions=agent_experiments.called_versions(args.strategy),
                    agent_principal=own,
                    after=args.after,
                ),
                pulumi.ResourceOptions(parent=self),
            )
            self._serve(name, args, metadata, object_labels, selector, replicas, ports, settings, (config, account))
            return
        # Created empty: what the agent writes into them is its own (ignored by later `pulumi up`s).
        lease = k8s.coordination.v1.Lease(
            child(name, "lease"),
            metadata=metadata,
            spec={},
            opts=pulumi.ResourceOptions.merge(mine, pulumi.ResourceOptions(ignore_changes=["spec"])),
        )
        state = k8s.core.v1.ConfigMap(
            child(name, "state"),
            metadata={**metadata, "name": settings["state"]["configMap"]},
            opts=pulumi.ResourceOptions.merge(mine, pulumi.ResourceOptions(ignore_changes=[LEARNED_STATE])),
        )
        k8s.rbac.v1.Role(
            child(name, "role"),
            metadata=metadata,
            rules=[
                # An ab-test's agent reports its split and never changes it: no VirtualService.
                *(
                    [
                        {
                            "apiGroups": ["networking.istio.io"],
                            "resources": ["virtualservices"],
                            "resourceNames": [args.endpoint],
                            "verbs": ["get", "update"],
                        }
                    ]
                    if isinstance(args.strategy, Bandit)
                    else []
                ),
                {
                    "apiGroups": ["coordination.k8s.io"],
                    "resources": ["leases"],
                    "resourceNames": [object_name],
                    "verbs": ["get", "update"],
                },
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": [settings["state"]["configMap"]],
                    "verbs": ["get", "update"],
                },
            ],
            opts=mine,
        )
        k8s.rbac.v1.RoleBinding(
            child(name, "rolebinding"),
            metadata=metadata,
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": object_name},
            subjects=[{"kind": "ServiceAccount", "name": object_name, "namespace": args.namespace}],
            opts=mine,
        )
        self._serve(
            name, args, metadata, object_labels, selector, replicas, ports, settings, (config, lease, state, account)
        )

    def _serve(self, name, args, metadata, object_labels, selector, replicas, ports, settings, made) -> None:
        """The agent's Services, its StatefulSet, its disruption budget, who may call it."""
        object_name, bandit = metadata["name"], leads_rounds(args.strategy)
        judged = judged_canary(args.strategy)
        mine = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        settings_text = json.dumps(settings, indent=2, sort_keys=True)
        k8s.core.v1.Service(
            child(name, "svc"), metadata=metadata, spec={"selector": selector, "ports": ports}, opts=mine
        )
        peers = f"{object_name}-peers"
        k8s.core.v1.Service(
            child(name, "peers"),
            metadata={**metadata, "name": peers},
            # Headless: each replica at NAME-i.PEERS, ready or not (the leader reads every ledger's totals).
            spec={"clusterIP": "None", "publishNotReadyAddresses": True, "selector": selector, "ports": ports},
            opts=mine,
        )
        probe = {"periodSeconds": 10, "timeoutSeconds": 2}
        checksum = hashlib.sha256(settings_text.encode()).hexdigest()[:16]
        annotations = checkov_skips(args.image, args.pull_policy)
        if bandit:
            annotations[f"checkov.io/skip{len(annotations) + 1}"] = (
                "CKV_K8S_38=the agent calls the Kubernetes API: its Role gets and updates its "
                f"{'VirtualService, ' if isinstance(args.strategy, Bandit) else ''}Lease and state ConfigMap, by name, "
                "and nothing else"
            )
        cache = args.cache if not bandit else None
        k8s.apps.v1.StatefulSet(
            child(name, "statefulset"),
            metadata={**metadata, "annotations": annotations},
            spec={
                "serviceName": peers,
                "replicas": replicas,
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {
                        "labels": {**object_labels, "app": object_name},
                        "annotations": {
                            # Istio merges these into the sidecar's own scrape endpoint (metrics merging).
                            "prometheus.io/scrape": "true",
                            "prometheus.io/port": str(AGENT_PORT),
                            "prometheus.io/path": "/metrics",
                            "proxy.istio.io/config": '{"holdApplicationUntilProxyStarts": true}',
                            "turnout.dev/settings-checksum": checksum,  # new settings roll the replicas
                            # Flagger has no sidecar: its plaintext webhook calls reach this port beside the sidecar.
                            **(
                                {"traffic.sidecar.istio.io/excludeInboundPorts": str(agent_judge.WEBHOOK_PORT)}
                                if judged
                                else {}
                            ),
                        },
                    },
                    "spec": {
                        "serviceAccountName": object_name,
                        # A bandit's agent calls the Kubernetes API, as its Role allows; the others never do.
                        "automountServiceAccountToken": bandit,
                        "securityContext": pod_security(),
                        "containers": [
                            {
                                "name": "agent",
                                "image": args.image,
                                "imagePullPolicy": args.pull_policy,
                                "env": [
                                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                                    *(cache.env if cache else ()),
                                ],
                                "ports": [
                                    {"name": p["name"], "containerPort": p["port"], "protocol": "TCP"} for p in ports
                                ],
                                "readinessProbe": {**probe, "httpGet": {"path": "/readyz", "port": "http"}},
                                "livenessProbe": {
                                    **probe,
                                    "httpGet": {"path": "/healthz", "port": "http"},
                                    "failureThreshold": 6,
                                },
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "128Mi"},
                                    "limits": {"cpu": "500m", "memory": "256Mi"},
                                },
                                "securityContext": container_security(),
                                "volumeMounts": [
                                    {"name": "settings", "mountPath": SETTINGS_MOUNT, "readOnly": True},
                                    {"name": "ledger", "mountPath": LEDGER_MOUNT},
                                    {"name": "tmp", "mountPath": "/tmp"},
                                    *(cache.mounts if cache else ()),
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "settings", "configMap": {"name": f"{object_name}-settings"}},
                            {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
                            *(cache.volumes if cache else ()),
                        ],
                        "topologySpreadConstraints": [
                            {
                                "maxSkew": 1,
                                "topologyKey": "topology.kubernetes.io/zone",
                                "whenUnsatisfiable": "ScheduleAnyway",
                                "labelSelector": {"matchLabels": selector},
                            }
                        ],
                    },
                },
                # One ledger per replica, kept when the StatefulSet is scaled down or deleted by hand.
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "ledger", "labels": object_labels},
                        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": LEDGER_SIZE}}},
                    }
                ],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.after, *made]),
        )
        if replicas >= 2:
            k8s.policy.v1.PodDisruptionBudget(
                child(name, "pdb"),
                metadata=metadata,
                spec={"maxUnavailable": 1, "selector": {"matchLabels": selector}},
                opts=mine,
            )
        own = f"{TRUST_DOMAIN}/ns/{args.namespace}/sa/{object_name}"
        if bandit:
            callers = args.strategy.reward.callers
            api = f"/v1/endpoints/{args.endpoint}/"
            operations = [{"operation": {"methods": ["GET"], "paths": [api + "report"]}}]
            if args.strategy.reward.source == "feedback":
                operations.append({"operation": {"methods": ["POST"], "paths": [api + "feedback"]}})
            internal = [{"operation": {"methods": ["GET"], "paths": ["/internal/totals"]}}]
        elif judged:
            callers, operations, internal = agent_judge.api_operations(args.endpoint)
        else:
            callers, operations, internal = agent_experiments.api_operations(args.endpoint, args.strategy)
        k8s.apiextensions.CustomResource(
            child(name, "allow-callers"),
            api_version="security.istio.io/v1",
            kind="AuthorizationPolicy",
            metadata={**metadata, "name": f"allow-{object_name}"},
            spec={
                "selector": {"matchLabels": selector},
                "action": "ALLOW",
                "rules": [
                    {"from": caller_sources(callers), "to": operations},
                    # The leader (any replica, for a report) reads every replica's totals.
                    *([{"from": [{"source": {"principals": [own]}}], "to": internal}] if internal else []),
                ],
            },
            opts=mine,
        )
        namespaces = caller_namespaces(callers)
        k8s.networking.v1.NetworkPolicy(
            child(name, "netpol"),
            metadata={**metadata, "name": f"{object_name}-callers"},
            spec={
                "podSelector": {"matchLabels": selector},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [{"namespaceSelector": {}}]
                        if namespaces is None
                        else [
                            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
                            for ns in namespaces
                        ],
                        "ports": [{"port": AGENT_PORT, "protocol": "TCP"}],
                    },
                    # The webhook port, outside the mesh's policies: Flagger's pods only.
                    *(
                        [
                            {
                                "from": [
                                    {
                                        "namespaceSelector": {"matchLabels": agent_judge.flagger_namespace_labels()},
                                        "podSelector": {"matchLabels": agent_judge.FLAGGER_POD_LABELS},
                                    }
                                ],
                                "ports": [{"port": agent_judge.WEBHOOK_PORT, "protocol": "TCP"}],
                            }
                        ]
                        if judged
                        else []
                    ),
                ],
            },
            opts=mine,
        )
        self.register_outputs({"service": f"{object_name}.{args.namespace}"})
