"""What the experiment agent of a progressive canary with `judge: sequential` runs with (apps/experiment-agent/
turnout_agent/canary_judge.py reads it), and the Flagger webhooks that call it. Plain functions: the ExperimentAgent
component deploys the agent, FlaggerCanary puts the webhooks into the Canary's analysis.

Flagger runs in istio-system without a sidecar: its plaintext POSTs reach the agent's webhook port, which is excluded
from the agent's sidecar (as the acceptance runner's port is) and open, by the agent's NetworkPolicy, to Flagger's
pods only. The agent's API port stays behind the sidecar and its AuthorizationPolicy.
"""

from __future__ import annotations

from turnout.naming import k8s_name
from turnout.strategies import Canary

API_PORT = 8080
WEBHOOK_PORT = 8082
WEBHOOK_TIMEOUT = "15s"
FLAGGER_NAMESPACE = "istio-system"  # components/mesh/flagger.py installs Flagger there
FLAGGER_POD_LABELS = {"app.kubernetes.io/name": "flagger"}  # the Flagger chart's pod labels
JUDGE_ROLE_KEY, JUDGE_ROLE = "turnout.dev/role", "sequential-judge"
HOOKS = ("pre-rollout", "rollback", "rollout", "confirm-promotion")
"""In the order the Canary lists them: pre-rollout after any acceptance tests (its baseline then excludes their
requests), rollback before rollout (Flagger polls it first each interval anyway)."""


def flagger_namespace_labels() -> dict[str, str]:
    return {"kubernetes.io/metadata.name": FLAGGER_NAMESPACE}


def primary_workload(endpoint: str) -> str:
    """Flagger's copy of the last promoted version (components/endpoint/flagger_canary.py)."""
    return f"{endpoint}-primary"


def webhook_base(endpoint: str, namespace: str) -> str:
    return f"http://{k8s_name(endpoint, 'agent')}.{namespace}.svc.cluster.local:{WEBHOOK_PORT}/flagger/"


def webhooks(endpoint: str, namespace: str) -> list[dict]:
    """The Canary's webhooks to the agent, one per hook type, each naming its hook in the URL."""
    base = webhook_base(endpoint, namespace)
    return [
        {
            "name": f"sequential-judge-{hook}",
            "type": hook,
            "url": base + hook,
            "timeout": WEBHOOK_TIMEOUT,
            # Flagger sends it back in the payload; the acceptance-tests-before-progressive policy reads it: the
            # judge's pre-rollout hook starts its count and tests nothing.
            "metadata": {JUDGE_ROLE_KEY: JUDGE_ROLE},
        }
        for hook in HOOKS
    ]


def judge_settings(
    *, endpoint: str, namespace: str, strategy: Canary, prometheus_url: str, peers: list[dict], ledger: dict
) -> dict:
    progressive = strategy.progressive
    assert progressive is not None and progressive.sequential
    return {
        "strategy": "canary",
        "endpoint": endpoint,
        "namespace": namespace,
        "peers": peers,
        "ledger": ledger,
        "port": API_PORT,
        "judge": {
            "primaryWorkload": primary_workload(endpoint),
            "canaryWorkload": endpoint,
            "stable": strategy.stable,
            "canary": strategy.canary,
            "alpha": progressive.judge_alpha(),
            "minRequests": progressive.judge_min_requests(),
            "prometheus": prometheus_url,
            "webhookPort": WEBHOOK_PORT,
            "latencyMs": progressive.max_latency_ms,
        },
    }


def api_operations(endpoint: str) -> tuple[tuple[str, ...], list[dict], list[dict]]:
    """(callers: any mesh workload, what they may call: the report, what replicas call on each other: nothing)."""
    report = {"operation": {"methods": ["GET"], "paths": [f"/v1/endpoints/{endpoint}/report"]}}
    return (), [report], []


def traffic_note(endpoint: str, namespace: str, strategy: Canary) -> dict:
    progressive = strategy.progressive
    assert progressive is not None
    service = f"{k8s_name(endpoint, 'agent')}.{namespace}.svc.cluster.local"
    return {
        "owns": "judgement",
        "note": f"Flagger steps {strategy.canary}'s weight ({', '.join(map(str, strategy.step_weights()))}%); the "
        f"experiment agent's sequential judge (alpha {progressive.judge_alpha()}) rolls it back as soon as its "
        f"error rate is shown worse than {strategy.stable}'s, and confirms promotion only after "
        f"{progressive.judge_min_requests()} canary requests without a regression",
        "service": f"{service}:{API_PORT}",
        "report": f"/v1/endpoints/{endpoint}/report",
        "webhooks": f"{service}:{WEBHOOK_PORT}/flagger/{{{','.join(HOOKS)}}}",
        "alpha": progressive.judge_alpha(),
        "minRequests": progressive.judge_min_requests(),
    }
