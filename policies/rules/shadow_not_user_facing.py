"""shadow-not-user-facing: a shadow version is only ever mirrored to: never in a weighted route,
never behind a Service that routes users, never exposed outside the cluster."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from ._kubernetes import ISTIO_VIRTUAL_SERVICE_TYPES, ROLE_LABEL, VERSION_LABEL, get_path, kind_of, object_name

MANDATORY_IN = ("prod",)  # advisory below prod


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = args.resources
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
