"""Observability rules of the policy pack: prod endpoints have alert rules, progressive rollouts run acceptance
tests first. Both are advice. turnout's own plans pass them where observability is on and tests are set."""

from __future__ import annotations

import pulumi_kubernetes as k8s
import yaml

from tests.policy_cases import fails, missing, passes

RULES = {"groups": [{"name": "g", "rules": [{"alert": "ModelPodsNotReady", "expr": "vector(1)"}]}]}
RECORDING_ONLY = {"groups": [{"name": "g", "rules": [{"record": "x", "expr": "vector(1)"}]}]}


def namespace(endpoint="scores", tier="prod"):
    return k8s.core.v1.Namespace(
        f"ns-{endpoint}",
        metadata={"name": endpoint, "labels": {"turnout.dev/endpoint": endpoint, "turnout.dev/tier": tier}},
    )


def rules(data: dict, labelled: bool = True):
    labels = {"turnout.dev/alert-rules": "true"} if labelled else {}
    return k8s.core.v1.ConfigMap(
        "rules",
        metadata={"name": "turnout-alert-rules", "namespace": "turnout-monitoring", "labels": labels},
        data={key: yaml.safe_dump(value) for key, value in data.items()},
    )


def canary(webhooks=None, analysis=True):
    spec: dict = {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "scores"}}
    if analysis:
        spec["analysis"] = {"interval": "1m", **({"webhooks": webhooks} if webhooks is not None else {})}
    return k8s.apiextensions.CustomResource(
        "canary",
        api_version="flagger.app/v1beta1",
        kind="Canary",
        metadata={"name": "scores", "namespace": "scores"},
        spec=spec,
    )


PRE_ROLLOUT = {"name": "acceptance-tests", "type": "pre-rollout", "url": "http://scores-acceptance.scores/"}
NO_ALERTS = (
    "scores: prod endpoint scores has no alert rules on its cluster: nobody is told when a version fails its users."
)
NO_TEST = (
    "scores/scores: the progressive rollout has no pre-rollout test: "
    "the first step's users are the first to try the new version."
)

CASES = {
    "alerts-on-prod-endpoints": [
        passes(lambda: (namespace(), rules({"scores.yml": RULES}))),
        passes(lambda: namespace(tier="staging")),  # advice for prod endpoints only
        fails(lambda: namespace(), NO_ALERTS),
        fails(lambda: (namespace(), rules({"other.yml": RULES})), NO_ALERTS),
        fails(lambda: (namespace(), rules({"scores.yml": RECORDING_ONLY})), NO_ALERTS),
        fails(lambda: (namespace(), rules({"scores.yml": RULES}, labelled=False)), NO_ALERTS),
        # A ConfigMap without data (the property the rule reads) holds no rules.
        missing(
            lambda: (
                namespace(),
                k8s.core.v1.ConfigMap(
                    "empty", metadata={"name": "r", "namespace": "m", "labels": {"turnout.dev/alert-rules": "true"}}
                ),
            ),
            NO_ALERTS,
        ),
    ],
    "acceptance-tests-before-progressive": [
        passes(lambda: canary([PRE_ROLLOUT])),
        fails(lambda: canary([{**PRE_ROLLOUT, "type": "post-rollout"}]), NO_TEST),
        fails(lambda: canary([]), NO_TEST, tier="dev"),
        # The sequential judge's pre-rollout hook starts its count; it is no acceptance test.
        fails(lambda: canary([{**PRE_ROLLOUT, "metadata": {"turnout.dev/role": "sequential-judge"}}]), NO_TEST),
        passes(lambda: canary([PRE_ROLLOUT, {**PRE_ROLLOUT, "metadata": {"turnout.dev/role": "sequential-judge"}}])),
        missing(lambda: canary(analysis=False), NO_TEST),
    ],
}
