"""strict-mtls: where the stack installs Istio, a mesh-wide PeerAuthentication (istio-system, no
selector) sets mTLS STRICT, and no PeerAuthentication relaxes it to PERMISSIVE or DISABLE, for a
whole workload or for one port.

One documented exception, wherever it comes from: net-istio's release (net-istio.yaml, which turnout
applies) relaxes only the webhook port 8443 of Knative's two webhooks in `knative-serving` to
PERMISSIVE, because the API server calls them without a sidecar certificate once `knative-serving` is
injected. Anything wider, from turnout or from an upstream manifest, is a violation."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from ._kubernetes import (
    ISTIO_NAMESPACE,
    chart_name,
    cluster_of,
    get_path,
    is_kind,
    object_name,
    shipped_upstream,
)

WEAK_MODES = ("PERMISSIVE", "DISABLE")
KNATIVE_NAMESPACE = "knative-serving"
# net-istio's config/400-webhook-peer-authentication.yaml: the pods it relaxes and the one port it relaxes.
KNATIVE_WEBHOOKS = ("webhook", "net-istio-webhook")
KNATIVE_WEBHOOK_PORT = "8443"


def _installs_istio(resource) -> bool:
    return chart_name(resource.resource_type, resource.props) == "istiod" or is_kind(
        resource.resource_type, "install.istio.io", "IstioOperator"
    )


def _mesh_wide_strict(props) -> bool:
    return (
        get_path(props, "metadata", "namespace") == ISTIO_NAMESPACE
        and not get_path(props, "spec", "selector", "matchLabels")
        and get_path(props, "spec", "mtls", "mode") == "STRICT"
    )


def _knative_webhook_exception(props) -> bool:
    """A Knative webhook's policy that leaves the workload as the mesh has it and relaxes its port 8443 only."""
    selector = get_path(props, "spec", "selector", "matchLabels") or {}
    ports = get_path(props, "spec", "portLevelMtls") or {}
    return (
        get_path(props, "metadata", "namespace") == KNATIVE_NAMESPACE
        and dict(selector).keys() == {"app"}
        and selector.get("app") in KNATIVE_WEBHOOKS
        and get_path(props, "spec", "mtls", "mode") in (None, "UNSET", "STRICT")
        and {str(port) for port in ports} == {KNATIVE_WEBHOOK_PORT}
        and all(get_path(setting, "mode") == "PERMISSIVE" for setting in ports.values())
    )


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    policies = [r for r in args.resources if is_kind(r.resource_type, "security.istio.io", "PeerAuthentication")]
    # The mesh-wide policy must be turnout's own: an upstream release is not trusted to keep it.
    strict_clusters = {cluster_of(r) for r in policies if _mesh_wide_strict(r.props) and not shipped_upstream(r.urn)}
    for r in args.resources:
        if _installs_istio(r) and cluster_of(r) not in strict_clusters:
            report_violation(
                f"{ISTIO_NAMESPACE} has no mesh-wide PeerAuthentication with mtls.mode STRICT, "
                "so workloads also accept plaintext.",
                r.urn,
            )
    for r in policies:
        if _knative_webhook_exception(r.props):
            continue
        mode = get_path(r.props, "spec", "mtls", "mode")
        if mode in WEAK_MODES:
            report_violation(f"{object_name(r.props)} sets mtls.mode {mode}.", r.urn)
        for port, setting in sorted((get_path(r.props, "spec", "portLevelMtls") or {}).items()):
            port_mode = get_path(setting, "mode")
            if port_mode in WEAK_MODES:
                report_violation(f"{object_name(r.props)} sets port {port} to mtls.mode {port_mode}.", r.urn)


strict_mtls = StackValidationPolicy(
    name="strict-mtls",
    description="Istio requires mutual TLS everywhere: a mesh-wide STRICT PeerAuthentication, none PERMISSIVE "
    "or DISABLE.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Keep the mesh-wide PeerAuthentication `default` in istio-system at mtls.mode STRICT (turnout "
    "creates it) and remove PERMISSIVE or DISABLE settings; give non-mesh callers a sidecar instead. The only "
    "exception is net-istio's: port 8443 of knative-serving's webhook and net-istio-webhook pods.",
)
