"""acceptance-tests-before-progressive: a Flagger Canary calls a `pre-rollout` webhook before the new version takes
any request, so a version that cannot answer its known cases never meets a user, not even the first step's share
(turnout renders one from `endpoints.NAME.tests`). Advice in every tier, never a gate. The sequential judge's own
`pre-rollout` hook (metadata `turnout.dev/role: sequential-judge`) only starts its count: it tests nothing."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._kubernetes import get_path, is_kind, items, object_name, shipped_upstream

JUDGE_ROLE_KEY, JUDGE_ROLE = "turnout.dev/role", "sequential-judge"
"""components/endpoint/agent_judge.py marks its webhooks so (the policy pack does not import the components)."""


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not is_kind(args.resource_type, "flagger.app", "Canary") or shipped_upstream(args.urn):
        return
    hooks = items(get_path(args.props, "spec", "analysis", "webhooks"))
    if not any(
        get_path(hook, "type") == "pre-rollout" and get_path(hook, "metadata", JUDGE_ROLE_KEY) != JUDGE_ROLE
        for hook in hooks
    ):
        report_violation(
            f"{object_name(args.props)}: the progressive rollout has no pre-rollout test: the first step's users "
            "are the first to try the new version."
        )


acceptance_tests_before_progressive = ResourceValidationPolicy(
    name="acceptance-tests-before-progressive",
    description="Progressive rollouts run acceptance tests (a Flagger pre-rollout webhook) before any traffic.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=validate,
    remediation_steps="Add `tests: [{path, method, body, expect: {status, jsonPath, equals | within}}]` to the "
    "endpoint: turnout runs them as the Canary's pre-rollout webhook.",
)
