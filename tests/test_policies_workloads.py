"""Workload rules of the policy pack: hardened containers, probes, resources, service accounts,
disruption budgets and zone spreading, on every workload kind turnout renders, and never on the
upstream manifests it applies as shipped.

Also: turnout's own components pass every rule (a prod cluster with an endpoint per backend and
strategy family), and the offline verdicts match those of the pack served to the Pulumi engine.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.endpoint.model_endpoint import ModelEndpoint, ModelEndpointArgs
from components.mesh.platform import ServingPlatform, ServingPlatformArgs
from tests.conftest import REPO, load
from tests.policy_cases import fails, missing, passes
from turnout.naming import child
from turnout.offline.policy import evaluate
from turnout.offline.runtime import run_function

POLICIES = REPO / "policies"
KNATIVE_CORE = "https://github.com/knative/serving/releases/download/knative-v1.23.0/serving-core.yaml"

POD_LABELS = {
    "app.kubernetes.io/name": "m",
    "turnout.dev/endpoint": "m",
    "turnout.dev/version": "v1",
    "turnout.dev/tier": "prod",
}
SELECTOR = {"app.kubernetes.io/name": "m", "turnout.dev/version": "v1"}


# --- turnout's own output ------------------------------------------------------------------------

TURNOUT_ENDPOINTS = {
    "fraud-score": {  # a static sticky canary on Istio
        "versions": {"v1": {"image": "ghcr.io/acme/fraud:1.0.0"}, "v2": {"image": "ghcr.io/acme/fraud:2.0.0"}},
        "strategy": {"type": "canary", "stable": "v1", "canary": "v2", "weight": 10, "sticky": {"cookie": "model"}},
    },
    "ranker": {  # a progressive canary: Flagger's target and Canary
        "versions": {"v1": {"image": "ghcr.io/acme/ranker:1.0.0"}, "v2": {"image": "ghcr.io/acme/ranker:2.0.0"}},
        "strategy": {"type": "canary", "stable": "v1", "canary": "v2", "weight": 10, "progressive": {}},
    },
    "embeddings": {  # Knative Configurations and a Route
        "backend": "knative",
        "versions": {"v1": {"image": "ghcr.io/acme/emb:1.0.0"}, "v2": {"image": "ghcr.io/acme/emb:2.0.0"}},
        "strategy": {"type": "canary", "stable": "v1", "canary": "v2", "weight": 20},
    },
    "search": {  # shadows and flagd
        "versions": {
            "v1": {"image": "ghcr.io/acme/search:1.0.0", "resources": {"cpu": "1", "memory": "2Gi", "gpu": 1}},
            "v2": {"image": "ghcr.io/acme/search:2.0.0"},
        },
        "strategy": {"type": "shadow", "primary": "v1", "shadows": {"v2": 50}},
    },
    "recommender": {
        "versions": {"v1": {"image": "ghcr.io/acme/rec:1.0.0"}, "v2": {"image": "ghcr.io/acme/rec:2.0.0"}},
        "strategy": {
            "type": "feature-flag",
            "flag": "new-rec",
            "variants": {"on": "v2", "off": "v1"},
            "defaultVariant": "off",
        },
    },
}


def turnout_cluster(tier: str = "prod", endpoints: tuple[str, ...] = tuple(TURNOUT_ENDPOINTS)):
    """What turnout renders on one kind cluster: the serving platform and the named endpoints."""
    stack = load(
        {
            "tier": tier,
            # A cloud with a GPU pool (search asks for a GPU, which kind refuses); the program below
            # renders the kind serving platform, so the domain stays kind's.
            "platform": {
                "cloud": "aws",
                "regions": ["us-east-1"],
                "nodePools": [{"name": "general"}, {"name": "gpu", "gpu": 1}],
                "serving": {"gateway": {"domain": "127.0.0.1.sslip.io"}},
            },
            "endpoints": {name: TURNOUT_ENDPOINTS[name] for name in endpoints},
        }
    )

    def program():
        platform = ServingPlatform(
            "lab-serving",
            ServingPlatformArgs(serving=stack.platform.serving, cloud="kind", tier=tier, endpoints=stack.endpoints),
        )
        for name, endpoint in stack.endpoints.items():
            args = ModelEndpointArgs(
                endpoint_name=name,
                endpoint=endpoint,
                tier=tier,
                cluster="lab",
                mesh=platform.mesh,
                after=tuple(platform.ready),
            )
            ModelEndpoint(child("lab", name), args)

    return program


# --- hand-written workloads ----------------------------------------------------------------------


def without_none(spec: dict) -> dict:
    return {key: value for key, value in spec.items() if value is not None}


def security(**changes) -> dict:
    return without_none(
        {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            **changes,
        }
    )


def container(name: str = "model", **changes) -> dict:
    probe = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10}
    return without_none(
        {
            "name": name,
            "image": "ghcr.io/acme/m:1.0.0",
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
            "readinessProbe": probe,
            "livenessProbe": probe,
            "securityContext": security(),
            **changes,
        }
    )


def pod(*containers: dict, **changes) -> dict:
    return without_none(
        {
            "serviceAccountName": "m-v1",
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": list(containers) or [container()],
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": SELECTOR},
                }
            ],
            **changes,
        }
    )


def deployment(spec: dict | None = None, *, name="m-v1", replicas=2, labels=None, namespace="models", opts=None):
    template = {
        "metadata": {"labels": POD_LABELS if labels is None else labels},
        "spec": pod() if spec is None else spec,
    }
    return k8s.apps.v1.Deployment(
        name,
        metadata={"name": name, "namespace": namespace},
        spec=without_none({"replicas": replicas, "selector": {"matchLabels": SELECTOR}, "template": template}),
        opts=opts,
    )


def knative(spec: dict | None = None, kind: str = "Configuration"):
    return k8s.apiextensions.CustomResource(
        f"ksvc-{kind.lower()}",
        api_version="serving.knative.dev/v1",
        kind=kind,
        metadata={"name": "m", "namespace": "models"},
        spec={"template": {"metadata": {"labels": POD_LABELS}, "spec": pod() if spec is None else spec}},
    )


def job(spec: dict | None = None):
    spec = pod() if spec is None else spec
    return k8s.batch.v1.Job(
        "job",
        metadata={"name": "warmup", "namespace": "models"},
        spec={"template": {"spec": {**spec, "restartPolicy": "Never"}}},
    )


def cron_job(spec: dict | None = None):
    spec = pod() if spec is None else spec
    return k8s.batch.v1.CronJob(
        "cron",
        metadata={"name": "refresh", "namespace": "models"},
        spec={
            "schedule": "0 * * * *",
            "jobTemplate": {"spec": {"template": {"spec": {**spec, "restartPolicy": "Never"}}}},
        },
    )


def stateful_set(spec: dict | None = None):
    return k8s.apps.v1.StatefulSet(
        "sts",
        metadata={"name": "cache", "namespace": "models"},
        spec={
            "serviceName": "cache",
            "selector": {"matchLabels": {"app": "cache"}},
            "template": {"metadata": {"labels": {"app": "cache"}}, "spec": pod() if spec is None else spec},
        },
    )


def daemon_set(spec: dict | None = None):
    return k8s.apps.v1.DaemonSet(
        "ds",
        metadata={"name": "agent", "namespace": "models"},
        spec={
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": pod() if spec is None else spec},
        },
    )


def shipped(spec: dict):
    """A Deployment of an upstream release manifest applied as shipped (Knative's serving-core.yaml)."""

    def program():
        release = k8s.yaml.v2.ConfigFile("knative-core", file=KNATIVE_CORE)
        deployment(spec, name="activator", labels=POD_LABELS, opts=pulumi.ResourceOptions(parent=release))

    return program


def patch():
    """A patch sets some fields of an existing Deployment; what it leaves out is not missing."""
    return k8s.apps.v1.DeploymentPatch(
        "scale", metadata={"name": "m-v1", "namespace": "models"}, spec={"template": {"spec": {"containers": []}}}
    )


def bare(name: str = "model") -> dict:
    """A container with only a name and an image: every property the rules read is missing."""
    return {"name": name, "image": "ghcr.io/acme/m:1.0.0"}


def budget(selector: dict | None, namespace: str = "models"):
    return k8s.policy.v1.PodDisruptionBudget(
        f"pdb-{namespace}",
        metadata={"name": "m-v1", "namespace": namespace},
        spec=without_none({"maxUnavailable": 1, "selector": selector}),
    )


def autoscaler(minimum: int):
    return k8s.autoscaling.v2.HorizontalPodAutoscaler(
        "hpa",
        metadata={"name": "m-v1", "namespace": "models"},
        spec={
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "m-v1"},
            "minReplicas": minimum,
            "maxReplicas": 6,
        },
    )


def spread(key: str = "topology.kubernetes.io/zone", labels: dict | None = None) -> list[dict]:
    selector = {"matchLabels": SELECTOR if labels is None else labels}
    return [{"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "DoNotSchedule", "labelSelector": selector}]


EVERY_KIND = [
    lambda: deployment(),
    lambda: knative(),
    lambda: knative(kind="Service"),
    lambda: job(),
    lambda: cron_job(),
    lambda: stateful_set(),
    lambda: daemon_set(),
]


def on_every_kind(*extra):
    """Hardened objects of every workload kind pass (turnout's own output: see test_turnout_output_passes)."""
    return [*(passes(program) for program in EVERY_KIND), *extra]


CASES = {
    "container-resources": on_every_kind(
        passes(shipped(pod(bare()))),
        missing(patch),
        fails(
            lambda: deployment(pod(container(resources={"requests": {"cpu": "1", "memory": "1Gi"}}))),
            "models/m-v1: container model lacks limits.cpu, limits.memory.",
        ),
        fails(
            lambda: cron_job(pod(initContainers=[container("fetch", resources={"limits": {"cpu": "1"}})])),
            "models/refresh: container fetch lacks requests.cpu, requests.memory, limits.memory.",
        ),
        missing(
            lambda: knative(pod(bare())),
            "models/m: container model lacks requests.cpu, requests.memory, limits.cpu, limits.memory.",
        ),
    ),
    "run-as-non-root": on_every_kind(
        passes(lambda: knative(pod(securityContext=None))),  # Knative's containers carry it themselves
        passes(shipped(pod(bare(), securityContext=None))),
        fails(
            lambda: deployment(pod(securityContext={"runAsUser": 0})),
            "models/m-v1: container model runs as uid 0 (root).",
        ),
        fails(
            lambda: stateful_set(pod(container(securityContext=security(runAsNonRoot=False)))),
            "models/cache: container model may run as root (runAsNonRoot is not true).",
        ),
        missing(
            lambda: deployment(pod(bare(), securityContext=None)),
            "models/m-v1: container model may run as root (runAsNonRoot is not true).",
        ),
    ),
    "no-privilege-escalation": on_every_kind(
        passes(shipped(pod(bare()))),
        fails(
            lambda: daemon_set(
                pod(container(securityContext=security(privileged=True, allowPrivilegeEscalation=True)))
            ),
            "models/agent: container model is privileged.",
            "models/agent: container model may escalate privileges (allowPrivilegeEscalation is not false).",
        ),
        missing(
            lambda: job(pod(bare())),
            "models/warmup: container model may escalate privileges (allowPrivilegeEscalation is not false).",
        ),
    ),
    "read-only-root-filesystem": on_every_kind(
        passes(shipped(pod(bare()))),
        fails(
            lambda: deployment(pod(container(securityContext=security(readOnlyRootFilesystem=False)))),
            "models/m-v1: container model has a writable root filesystem (readOnlyRootFilesystem is not true).",
        ),
        missing(
            lambda: knative(pod(bare()), kind="Service"),
            "models/m: container model has a writable root filesystem (readOnlyRootFilesystem is not true).",
        ),
    ),
    "drop-all-capabilities": on_every_kind(
        passes(
            lambda: deployment(
                pod(container(securityContext=security(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})))
            )
        ),
        passes(shipped(pod(bare()))),
        fails(
            lambda: deployment(pod(container(securityContext=security(capabilities={"drop": ["NET_RAW"]})))),
            "models/m-v1: container model does not drop ALL capabilities.",
        ),
        fails(
            lambda: deployment(
                pod(
                    container(
                        securityContext=security(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN", "NET_ADMIN"]})
                    )
                )
            ),
            "models/m-v1: container model adds capabilities NET_ADMIN, SYS_ADMIN.",
        ),
        missing(
            lambda: deployment(pod(container(securityContext=security(capabilities=None)))),
            "models/m-v1: container model does not drop ALL capabilities.",
        ),
    ),
    "no-host-namespaces": on_every_kind(
        passes(shipped(pod(hostNetwork=True))),
        fails(
            lambda: daemon_set(pod(hostNetwork=True, hostPID=True, hostIPC=False)),
            "models/agent: pods share the node's namespaces (hostNetwork, hostPID).",
        ),
        fails(lambda: job(pod(hostIPC=True)), "models/warmup: pods share the node's namespaces (hostIPC)."),
        missing(lambda: k8s.apps.v1.Deployment("empty", metadata={"name": "empty"}, spec={"template": {}})),
    ),
    "dedicated-service-account": on_every_kind(
        passes(shipped(pod(serviceAccountName=None))),
        fails(
            lambda: deployment(pod(serviceAccountName="default")),
            "models/m-v1: pods run as the namespace's default ServiceAccount.",
        ),
        missing(
            lambda: knative(pod(serviceAccountName=None)),
            "models/m: pods name no ServiceAccount, so they run as default.",
        ),
    ),
    "serving-probes": on_every_kind(
        passes(lambda: job(pod(bare()))),  # a Job serves nobody
        passes(lambda: cron_job(pod(bare()))),
        passes(lambda: deployment(pod(initContainers=[bare("fetch")]))),  # init containers serve nobody either
        passes(shipped(pod(bare()))),
        fails(
            lambda: deployment(pod(container(livenessProbe=None))),
            "models/m-v1: container model lacks livenessProbe.",
        ),
        fails(
            lambda: knative(pod(container(readinessProbe=None)), kind="Service"),
            "models/m: container model lacks readinessProbe.",
        ),
        missing(
            lambda: stateful_set(pod(bare("cache"))),
            "models/cache: container cache lacks readinessProbe, livenessProbe.",
        ),
    ),
    "pod-disruption-budget": [
        passes(lambda: (deployment(), budget({"matchLabels": SELECTOR}))),
        passes(lambda: (deployment(), budget({}))),  # an empty selector selects every pod of the namespace
        passes(
            lambda: (
                deployment(),
                budget(
                    {"matchExpressions": [{"key": "turnout.dev/version", "operator": "In", "values": ["v1", "v2"]}]}
                ),
            )
        ),
        passes(lambda: deployment(replicas=1)),
        passes(lambda: (deployment(replicas=None), autoscaler(1))),  # may scale in to one: nothing to keep
        passes(lambda: deployment(labels={"app": "flagd"})),  # not a model version
        passes(shipped(pod())),
        fails(lambda: deployment(), "models/m-v1 keeps 2 replicas and no PodDisruptionBudget selects its pods."),
        fails(
            lambda: (deployment(), budget({"matchLabels": {**SELECTOR, "turnout.dev/version": "v2"}})),
            "models/m-v1 keeps 2 replicas and no PodDisruptionBudget selects its pods.",
        ),
        fails(
            lambda: (deployment(), budget({"matchLabels": SELECTOR}, namespace="other")),
            "models/m-v1 keeps 2 replicas and no PodDisruptionBudget selects its pods.",
        ),
        fails(
            lambda: (deployment(replicas=None), autoscaler(3)),
            "models/m-v1 keeps 3 replicas and no PodDisruptionBudget selects its pods.",
        ),
        missing(  # policy/v1: a PDB without a selector selects no pod
            lambda: (deployment(), budget(None)),
            "models/m-v1 keeps 2 replicas and no PodDisruptionBudget selects its pods.",
        ),
        missing(lambda: deployment(replicas=None)),  # Kubernetes' default is one replica
    ],
    "topology-spread": [
        passes(lambda: deployment()),
        passes(lambda: deployment(pod(topologySpreadConstraints=None), replicas=1)),  # nothing to spread
        passes(lambda: deployment(pod(topologySpreadConstraints=None), labels={"app": "flagd"})),  # not a model
        passes(shipped(pod(topologySpreadConstraints=None))),
        fails(
            lambda: deployment(pod(topologySpreadConstraints=spread("kubernetes.io/hostname"))),
            "models/m-v1: no topologySpreadConstraint on topology.kubernetes.io/zone selects its pods, "
            "so they may all land in one zone.",
        ),
        fails(
            lambda: deployment(pod(topologySpreadConstraints=spread(labels={"app": "other"}))),
            "models/m-v1: no topologySpreadConstraint on topology.kubernetes.io/zone selects its pods, "
            "so they may all land in one zone.",
        ),
        missing(
            lambda: deployment(pod(topologySpreadConstraints=None), replicas=None),
            "models/m-v1: no topologySpreadConstraint on topology.kubernetes.io/zone selects its pods, "
            "so they may all land in one zone.",
        ),
    ],
}

WORKLOAD_RULES = tuple(CASES)
RESOURCE_RULES = tuple(rule for rule in WORKLOAD_RULES if rule != "pod-disruption-budget")
STACK_RULES = ("pod-disruption-budget",)


# --- levels --------------------------------------------------------------------------------------


def levels(program, tier: str) -> set[tuple[str, str]]:
    found = evaluate(run_function(program).records, POLICIES, tier=tier)
    return {(v.policy, v.level) for v in found if v.policy in WORKLOAD_RULES}


def hollow_deployment():
    """Every workload rule fails on it."""
    deployment(pod(bare(), securityContext=None, serviceAccountName="default", topologySpreadConstraints=None))


def test_availability_rules_are_advisory_below_prod_and_security_rules_mandatory_everywhere():
    security_rules = {
        "run-as-non-root",
        "no-privilege-escalation",
        "read-only-root-filesystem",
        "drop-all-capabilities",
        "dedicated-service-account",
    }
    availability = {"container-resources", "serving-probes", "pod-disruption-budget", "topology-spread"}
    assert levels(hollow_deployment, "prod") == {(rule, "mandatory") for rule in security_rules | availability}
    assert levels(hollow_deployment, "dev") == {(rule, "mandatory") for rule in security_rules} | {
        (rule, "advisory") for rule in availability
    }


@pytest.mark.parametrize("tier", ["prod", "dev"])
def test_turnout_output_passes(tier):
    """A cluster with an endpoint per backend and strategy family: nothing for these rules to report."""
    found = evaluate(run_function(turnout_cluster(tier)).records, POLICIES, tier=tier)
    assert [v.message for v in found if v.policy in WORKLOAD_RULES] == []


def test_turnout_output_is_judged_not_skipped():
    """The rules read turnout's real objects: the same cluster with its hardening stripped fails them."""
    records = run_function(turnout_cluster("prod")).records
    for record in records:
        spec = record.raw_inputs.get("spec", {}).get("template", {}).get("spec")
        if record.custom and isinstance(spec, dict) and spec.get("containers"):
            spec.pop("serviceAccountName", None)
            spec.pop("topologySpreadConstraints", None)
            for c in spec["containers"]:
                for key in ("securityContext", "resources", "readinessProbe"):
                    c.pop(key, None)
    judged = {v.policy for v in evaluate(records, POLICIES, tier="prod") if v.policy in RESOURCE_RULES}
    assert judged == set(RESOURCE_RULES) - {"no-host-namespaces"}
