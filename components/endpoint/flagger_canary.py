"""Progressive delivery with Flagger's `Canary`: it analyses the new version on live requests, promotes
it when its metrics stay healthy, and rolls back when they do not. Three of turnout's strategies map
onto Flagger's:

- canary + progressive: Flagger's canary release, stepping the weight from `weight` to `maxWeight`; with
  `judge: sequential` the experiment agent's webhooks decide rollback and promotion instead of Flagger's
  threshold checks (components/endpoint/agent_judge.py);
- blue-green + progressive: Flagger's A/B testing, with the preview header as its match: requests
  with the header reach the preview during `iterations` checks, then everyone is switched to it;
- shadow + progressive: Flagger's blue/green mirroring: the shadow gets a copy of the requests (its
  answers discarded) during `iterations` checks, then everyone is switched to it.

What Flagger then owns: the `<endpoint>-primary` Deployment (a copy of the last promoted version),
the `<endpoint>`, `<endpoint>-primary` and `<endpoint>-canary` Services and DestinationRules, and the
VirtualService whose weights it changes. turnout owns the `<endpoint>` Deployment (the version under
analysis), its HPA and the analysis below. On a cluster that never ran the endpoint, Flagger
promotes the first version it sees without analysis: there is nothing to compare it with.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.endpoint import agent_judge
from turnout.naming import labels
from turnout.strategies import BlueGreen, Canary, Shadow
from turnout.units import format_duration

SERVICE_PORT = 80
STABLE_ANNOTATION = "turnout.dev/stable-version"
CANARY_ANNOTATION = "turnout.dev/canary-version"


def _flagger_duration(seconds: int) -> str:
    """Flagger accepts only seconds or minutes (`^[0-9]+(m|s)`)."""
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


ProgressiveStrategy = Canary | BlueGreen | Shadow


def analysed_versions(strategy: ProgressiveStrategy) -> tuple[str, str]:
    """(the version serving now, the version under analysis)."""
    if isinstance(strategy, Canary):
        return strategy.stable, strategy.canary
    if isinstance(strategy, BlueGreen):
        return strategy.active, strategy.preview
    (shadow,) = strategy.shadows
    return strategy.primary, shadow


def analysis(strategy: ProgressiveStrategy, webhooks: tuple[dict, ...] = (), endpoint: str = "") -> dict:
    """Flagger's `analysis`: the strategy's way of exposing the new version, the health checks, and the webhooks
    (acceptance tests before any traffic: components/endpoint/acceptance.py; the sequential judge's:
    components/endpoint/agent_judge.py, for `endpoint`, whose namespace has its name)."""
    progressive = strategy.progressive
    interval = _flagger_duration(progressive.interval)
    if isinstance(strategy, Canary):
        exposure: dict = {"stepWeights": strategy.step_weights()}
    elif isinstance(strategy, BlueGreen):
        exposure = {
            "iterations": progressive.iterations,
            "match": [{"headers": {strategy.opt_in_header(): {"exact": "true"}}}],
        }
    else:
        exposure = {
            "iterations": progressive.iterations,
            "mirror": True,
            "mirrorWeight": strategy.shadows[analysed_versions(strategy)[1]],
        }
    if isinstance(strategy, Canary) and progressive.sequential:
        # The sequential judge replaces Flagger's threshold checks: its webhooks roll back and confirm promotion
        # (components/endpoint/agent_judge.py); no check fails for want of traffic ("no values found").
        metrics: list[dict] = []
        webhooks = (*webhooks, *agent_judge.webhooks(endpoint, endpoint))
    else:
        metrics = [
            {"name": "request-success-rate", "thresholdRange": {"min": progressive.success_rate}, "interval": interval},
            {"name": "request-duration", "thresholdRange": {"max": progressive.max_latency_ms}, "interval": interval},
        ]
    return {
        "interval": interval,
        "threshold": progressive.threshold,
        **exposure,
        "metrics": metrics,
        **({"webhooks": list(webhooks)} if webhooks else {}),
    }


def canary_spec(
    endpoint: str,
    strategy: ProgressiveStrategy,
    port: int,
    public_host: str,
    gateway: str,
    autoscaled: bool,
    webhooks: tuple[dict, ...] = (),
) -> dict:
    spec: dict = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": endpoint},
        "progressDeadlineSeconds": 600,
        "service": {
            "port": SERVICE_PORT,
            "targetPort": port,
            "portName": "http",
            "gateways": [gateway, "mesh"],
            "hosts": [public_host],
            "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
        },
        "analysis": analysis(strategy, webhooks, endpoint),
    }
    if autoscaled:
        spec["autoscalerRef"] = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": endpoint}
    return spec


@dataclass(frozen=True, kw_only=True)
class FlaggerCanaryArgs:
    endpoint: str
    namespace: str
    tier: str
    strategy: ProgressiveStrategy
    port: int
    public_host: str
    gateway: str
    autoscaled: bool
    after: tuple[pulumi.Resource, ...]
    webhooks: tuple[dict, ...] = ()
    """Flagger webhooks of the analysis: the endpoint's acceptance tests as `pre-rollout`."""


class FlaggerCanary(pulumi.ComponentResource):
    def __init__(self, name: str, args: FlaggerCanaryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:endpoint:FlaggerCanary", name, None, opts)
        k8s.apiextensions.CustomResource(
            f"{name}-canary",
            api_version="flagger.app/v1beta1",
            kind="Canary",
            metadata={
                "name": args.endpoint,
                "namespace": args.namespace,
                "labels": labels(args.endpoint, None, args.tier),
                # Which versions the analysis compares, for readers of the plan (Flagger ignores them).
                "annotations": dict(
                    zip((STABLE_ANNOTATION, CANARY_ANNOTATION), analysed_versions(args.strategy), strict=True)
                ),
            },
            spec=canary_spec(
                args.endpoint,
                args.strategy,
                args.port,
                args.public_host,
                args.gateway,
                args.autoscaled,
                args.webhooks,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        self.register_outputs({"analysis": format_duration(args.strategy.progressive.interval)})
