"""shadow-not-user-facing: a shadow version is only ever mirrored to: never in a weighted route,
never behind a Service that routes users, never exposed outside the cluster.

On Knative, a Route target is user-facing when it has a share of the traffic or a tag: a tag gives it a
public host (`<tag>-<route>.<domain>`) and makes it reachable with `Knative-Serving-Tag: <tag>`, even at 0%
(how turnout serves a blue-green preview or a dark launch). A revision is a shadow by its template's role label.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from ._kubernetes import (
    ISTIO_VIRTUAL_SERVICE_TYPES,
    KNATIVE_TRAFFIC_TYPES,
    ROLE_LABEL,
    VERSION_LABEL,
    cluster_of,
    get_path,
    items,
    kind_of,
    number,
    object_name,
)

MANDATORY_IN = ("prod",)  # advisory below prod
KNATIVE_CONFIGURATION = "kubernetes:serving.knative.dev/v1:Configuration"


def _knative_shadows(resources) -> dict[tuple, str]:
    """(cluster, namespace, Configuration or revision name) → version, for Knative templates labelled shadow."""
    found = {}
    for r in resources:
        template = get_path(r.props, "spec", "template", "metadata") or {}
        if r.resource_type != KNATIVE_CONFIGURATION or get_path(template, "labels", ROLE_LABEL) != "shadow":
            continue
        where = (cluster_of(r), get_path(r.props, "metadata", "namespace"))
        version = get_path(template, "labels", VERSION_LABEL) or get_path(r.props, "metadata", "name")
        for name in (get_path(r.props, "metadata", "name"), get_path(template, "name")):
            if name:
                found[(*where, name)] = version
    return found


def _knative_violations(route, shadows: dict[tuple, str]) -> list[str]:
    where = (cluster_of(route), get_path(route.props, "metadata", "namespace"))
    problems = []
    for target in items(get_path(route.props, "spec", "traffic")):
        name = get_path(target, "configurationName") or get_path(target, "revisionName")
        version = shadows.get((*where, name))
        if version is None:
            continue
        tag, percent = get_path(target, "tag"), number(get_path(target, "percent")) or 0
        if percent > 0:
            problems.append(f"{object_name(route.props)} routes {percent:g}% of users to shadow version {version}.")
        elif tag:
            problems.append(
                f"{object_name(route.props)} tags shadow version {version} as {tag!r}: a public host and the "
                "Knative-Serving-Tag header reach it."
            )
    return problems


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = args.resources
    knative_shadows = _knative_shadows(resources)
    for r in resources:
        if r.resource_type in KNATIVE_TRAFFIC_TYPES and knative_shadows:
            for problem in _knative_violations(r, knative_shadows):
                report_violation(problem, r.urn)
    shadows = {
        (
            get_path(r.props, "metadata", "namespace"),
            get_path(r.props, "spec", "template", "metadata", "labels", VERSION_LABEL),
        )
        for r in resources
        if kind_of(r.resource_type) == "Deployment"
        and get_path(r.props, "spec", "template", "metadata", "labels", ROLE_LABEL) == "shadow"
    }
    if not shadows:
        return
    # host → subset → version, from the DestinationRules
    subsets = {
        (get_path(r.props, "spec", "host"), get_path(s, "name")): get_path(s, "labels", VERSION_LABEL)
        for r in resources
        if kind_of(r.resource_type) == "DestinationRule"
        for s in get_path(r.props, "spec", "subsets") or []
    }
    for r in resources:
        namespace = get_path(r.props, "metadata", "namespace")
        if r.resource_type in ISTIO_VIRTUAL_SERVICE_TYPES:
            for route in get_path(r.props, "spec", "http") or []:
                for d in get_path(route, "route") or []:
                    host, subset = get_path(d, "destination", "host"), get_path(d, "destination", "subset")
                    if (namespace, subsets.get((host, subset))) in shadows:
                        report_violation(f"{object_name(r.props)} routes users to shadow version {subset}.", r.urn)
        elif kind_of(r.resource_type) == "Service":
            selects_shadows = get_path(r.props, "spec", "selector", ROLE_LABEL) == "shadow"
            exposed = get_path(r.props, "spec", "type") in ("LoadBalancer", "NodePort")
            if selects_shadows and exposed:
                report_violation(f"{object_name(r.props)} exposes shadow versions outside the cluster.", r.urn)


shadow_not_user_facing = StackValidationPolicy(
    name="shadow-not-user-facing",
    description="A shadow version appears only as a mirror, never in a weighted route or a public host.",
    enforcement_level=EnforcementLevel.ADVISORY,  # MANDATORY_IN raises it in prod
    validate=validate,
    remediation_steps="List the version under the shadow strategy's `shadows`, not as a routed version.",
)
