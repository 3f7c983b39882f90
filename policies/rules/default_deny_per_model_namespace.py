"""default-deny-per-model-namespace: every model namespace (labelled turnout.dev/endpoint) holds an
AuthorizationPolicy that denies what nothing else allows, for every workload in it: an empty spec
(ALLOW with no rules: "allow nothing") or action DENY with an empty rule (matches every request)."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from ._kubernetes import (
    ENDPOINT_LABEL,
    cluster_of,
    get_path,
    is_kind,
    items,
    object_name,
    shipped_upstream,
)


def denies_by_default(spec) -> bool:
    """Whether an AuthorizationPolicy spec applies to the whole namespace and denies every request
    that no ALLOW policy lets through."""
    spec = spec or {}
    if get_path(spec, "selector", "matchLabels") or get_path(spec, "targetRef") or items(get_path(spec, "targetRefs")):
        return False  # scoped to some workloads, or to a gateway
    action = get_path(spec, "action") or "ALLOW"
    rules = items(get_path(spec, "rules"))
    if action == "ALLOW":
        return not rules  # with rules it allows them; with no rules it allows nothing
    return action == "DENY" and any(not rule for rule in rules)


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = [r for r in args.resources if not shipped_upstream(r.urn)]
    guarded = {
        (cluster_of(r), get_path(r.props, "metadata", "namespace"))
        for r in resources
        if is_kind(r.resource_type, "security.istio.io", "AuthorizationPolicy")
        and denies_by_default(get_path(r.props, "spec"))
    }
    for r in resources:
        if not is_kind(r.resource_type, "core", "Namespace"):
            continue
        if ENDPOINT_LABEL not in (get_path(r.props, "metadata", "labels") or {}):
            continue
        if (cluster_of(r), get_path(r.props, "metadata", "name")) not in guarded:
            report_violation(
                f"{object_name(r.props)}: no AuthorizationPolicy denies by default (an empty spec, or action DENY "
                "with an empty rule).",
                r.urn,
            )


default_deny_per_model_namespace = StackValidationPolicy(
    name="default-deny-per-model-namespace",
    description="Every model namespace has a deny-by-default AuthorizationPolicy.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Add an AuthorizationPolicy with an empty spec (`deny-all`, as turnout's ModelNamespace does) "
    "to the namespace, then ALLOW policies for the callers that need it.",
)
