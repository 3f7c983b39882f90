"""tls-on-public-gateways: an Istio Gateway turnout renders faces clients (turnout exposes the ingress
gateway through a load balancer or NodePorts), so its HTTPS servers (port 443, or protocol HTTPS or
TLS) carry TLS settings, and its plain HTTP servers only redirect to HTTPS."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._kubernetes import get_path, istio_gateway_servers, items, number, object_name, shipped_upstream

TERMINATING_MODES = ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL")  # need a certificate; PASSTHROUGH, ISTIO_MUTUAL do not


def _certificate(tls) -> bool:
    return bool(
        get_path(tls, "credentialName") or items(get_path(tls, "credentialNames")) or get_path(tls, "serverCertificate")
    )


def server_problem(server) -> str | None:
    """What is wrong with one server's TLS, or None."""
    protocol = str(get_path(server, "port", "protocol") or "").upper()
    port = number(get_path(server, "port", "number"))
    tls = get_path(server, "tls")
    if protocol in ("HTTPS", "TLS") or port == 443:
        mode = get_path(tls, "mode")
        if not tls or (not mode and not _certificate(tls)):
            return "names neither a tls mode nor a credentialName"
        if mode in TERMINATING_MODES and not _certificate(tls):
            return f"terminates TLS ({mode}) without a credentialName"
        return None
    if protocol == "HTTP" and get_path(tls, "httpsRedirect") is not True:
        return "serves plain HTTP without redirecting to HTTPS (tls.httpsRedirect: true)"
    return None


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if shipped_upstream(args.urn):
        return
    for name, server in istio_gateway_servers(args.resource_type, args.props):
        problem = server_problem(server)
        if problem:
            port = number(get_path(server, "port", "number"))
            on_port = f" (port {port:g})" if port is not None else ""
            report_violation(f"{object_name(args.props)}: server {name}{on_port} {problem}.")


tls_on_public_gateways = ResourceValidationPolicy(
    name="tls-on-public-gateways",
    description="Gateway HTTPS servers carry TLS settings (a mode or credentialName); plain HTTP servers "
    "redirect to HTTPS.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Set tls.mode SIMPLE and tls.credentialName to the certificate's Secret "
    "(platform.serving.gateway.certificate) on port 443, and tls.httpsRedirect: true on port 80.",
)
