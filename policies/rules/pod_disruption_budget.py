"""pod-disruption-budget: a model Deployment that keeps two or more replicas is covered by a
PodDisruptionBudget selecting its pods, so a node drain or upgrade never takes all of them at once."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from ._kubernetes import (
    VERSION_LABEL,
    cluster_of,
    get_path,
    kind_of,
    number,
    object_name,
    selects,
    shipped_upstream,
)

MANDATORY_IN = ("prod",)  # advisory below prod


def _where(resource) -> tuple[str, str | None]:
    return cluster_of(resource), get_path(resource.props, "metadata", "namespace")


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = [r for r in args.resources if not shipped_upstream(r.urn) and not r.resource_type.endswith("Patch")]
    hpa_minimum = {
        (*_where(r), get_path(r.props, "spec", "scaleTargetRef", "name")): number(
            get_path(r.props, "spec", "minReplicas")
        )
        or 1
        for r in resources
        if kind_of(r.resource_type) == "HorizontalPodAutoscaler"
        and get_path(r.props, "spec", "scaleTargetRef", "kind") == "Deployment"
    }
    budgets: dict[tuple, list] = {}
    for r in resources:
        if kind_of(r.resource_type) == "PodDisruptionBudget":
            budgets.setdefault(_where(r), []).append(get_path(r.props, "spec", "selector"))
    for r in resources:
        if kind_of(r.resource_type) != "Deployment":
            continue
        pod_labels = get_path(r.props, "spec", "template", "metadata", "labels") or {}
        if VERSION_LABEL not in pod_labels:
            continue  # not a model version's pods
        replicas = hpa_minimum.get(
            (*_where(r), get_path(r.props, "metadata", "name")), number(get_path(r.props, "spec", "replicas"))
        )
        replicas = 1 if replicas is None else replicas  # Kubernetes' default
        if replicas < 2:
            continue
        if not any(selects(selector, pod_labels) for selector in budgets.get(_where(r), [])):
            report_violation(
                f"{object_name(r.props)} keeps {replicas:g} replicas and no PodDisruptionBudget selects its pods.",
                r.urn,
            )


pod_disruption_budget = StackValidationPolicy(
    name="pod-disruption-budget",
    description="Each model Deployment with 2 or more replicas is covered by a PodDisruptionBudget.",
    enforcement_level=EnforcementLevel.ADVISORY,  # MANDATORY_IN raises it in prod
    validate=validate,
    remediation_steps="Add a PodDisruptionBudget (maxUnavailable: 1) in the Deployment's namespace whose selector "
    "matches its pod labels; turnout renders one whenever replicas.min is 2 or more.",
)
