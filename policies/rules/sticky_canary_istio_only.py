"""sticky-canary-istio-only: users are pinned to a version only by Istio routing.

turnout renders a sticky canary as cookie-matched routes on the VirtualService; Knative has no
cookie routing (the config refuses `sticky` with backend knative, so no Knative object can carry
it). What can still be written, and silently fails to pin anyone, is checked here:
- a Flagger Canary with `analysis.sessionAffinity` on a provider other than istio (its own
  `spec.provider`, else the meshProvider its cluster's Flagger was installed with, else Flagger's
  default, istio);
- a model Service with `sessionAffinity: ClientIP`, which Istio's sidecars bypass: they pick
  endpoints themselves, and behind the gateway every client has the gateway's address.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from ._kubernetes import (
    ENDPOINT_LABEL,
    chart_name,
    cluster_of,
    get_path,
    is_kind,
    object_name,
    shipped_upstream,
)

MANDATORY_IN = ("prod",)  # advisory below prod

FLAGGER_DEFAULT_PROVIDER = "istio"


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    installed: dict[str, set[str]] = {}
    for r in args.resources:
        if chart_name(r.resource_type, r.props) == "flagger":
            provider = get_path(r.props, "values", "meshProvider") or FLAGGER_DEFAULT_PROVIDER
            installed.setdefault(cluster_of(r), set()).add(str(provider))
    for r in args.resources:
        if shipped_upstream(r.urn):
            continue
        if is_kind(r.resource_type, "flagger.app", "Canary"):
            affinity = get_path(r.props, "spec", "analysis", "sessionAffinity")
            if not affinity:
                continue
            own = get_path(r.props, "spec", "provider")
            providers = {str(own)} if own else installed.get(cluster_of(r), {FLAGGER_DEFAULT_PROVIDER})
            other = sorted(p for p in providers if p != "istio")
            if other:
                cookie = get_path(affinity, "cookieName") or "(unnamed)"
                report_violation(
                    f"{object_name(r.props)}: session affinity (cookie {cookie}) on Flagger's "
                    f"{', '.join(other)} provider; only istio routing pins users.",
                    r.urn,
                )
        elif is_kind(r.resource_type, "core", "Service"):
            model_service = ENDPOINT_LABEL in (get_path(r.props, "metadata", "labels") or {})
            if model_service and get_path(r.props, "spec", "sessionAffinity") == "ClientIP":
                report_violation(
                    f"{object_name(r.props)}: sessionAffinity ClientIP is bypassed by Istio's sidecars; "
                    "only istio routing pins users.",
                    r.urn,
                )


sticky_canary_istio_only = StackValidationPolicy(
    name="sticky-canary-istio-only",
    description="Sticky canaries and session affinity use Istio routing (cookie routes, Flagger's istio provider).",
    enforcement_level=EnforcementLevel.ADVISORY,  # MANDATORY_IN raises it in prod
    validate=validate,
    remediation_steps="Use `sticky: {cookie: NAME}` on a canary with backend istio; remove sessionAffinity from "
    "Services and from Canaries on other providers.",
)
