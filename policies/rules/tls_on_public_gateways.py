"""tls-on-public-gateways: an Istio Gateway turnout renders faces clients (turnout exposes the ingress
gateway through a load balancer or NodePorts), so its HTTPS servers (port 443, or protocol HTTPS or
TLS) carry TLS settings, and its plain HTTP servers only redirect to HTTPS.

A certificate named is not a certificate served: every `credentialName` a terminating server uses must be
made by the stack on the Gateway's cluster, in its namespace (where Istio reads it), as a Secret or as the
`secretName` of a cert-manager Certificate, unless the Gateway says the stack brings its own Secret
(`turnout.dev/tls-issuer: secret`, from `platform.serving.gateway.tls.issuer: secret`)."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from ._kubernetes import (
    cluster_of,
    get_path,
    is_kind,
    istio_gateway_servers,
    items,
    number,
    object_name,
    shipped_upstream,
)

TERMINATING_MODES = ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL")  # need a certificate; PASSTHROUGH, ISTIO_MUTUAL do not
TLS_ISSUER_ANNOTATION = "turnout.dev/tls-issuer"
OWN_SECRET = "secret"


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


def credential_names(server) -> list[str]:
    """The Secrets a terminating server reads (`credentialName`, or each of `credentialNames`)."""
    tls = get_path(server, "tls")
    if get_path(tls, "mode") not in TERMINATING_MODES:
        return []
    single = get_path(tls, "credentialName")
    return [str(single)] if single else [str(name) for name in items(get_path(tls, "credentialNames"))]


def provided_secrets(resources) -> set[tuple[str, str, str]]:
    """(cluster, namespace, name) of every Secret the stack creates or has cert-manager write."""
    found = set()
    for r in resources:
        namespace = get_path(r.props, "metadata", "namespace") or "default"
        if is_kind(r.resource_type, "core", "Secret"):
            name = get_path(r.props, "metadata", "name")
        elif is_kind(r.resource_type, "cert-manager.io", "Certificate"):
            name = get_path(r.props, "spec", "secretName")
        else:
            continue
        if name:
            found.add((cluster_of(r), str(namespace), str(name)))
    return found


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    provided = provided_secrets(args.resources)
    for r in args.resources:
        if shipped_upstream(r.urn):
            continue
        own_secret = get_path(r.props, "metadata", "annotations", TLS_ISSUER_ANNOTATION) == OWN_SECRET
        namespace = get_path(r.props, "metadata", "namespace") or "default"
        for name, server in istio_gateway_servers(r.resource_type, r.props):
            port = number(get_path(server, "port", "number"))
            where = f"{object_name(r.props)}: server {name}" + (f" (port {port:g})" if port is not None else "")
            problem = server_problem(server)
            if problem:
                report_violation(f"{where} {problem}.", r.urn)
                continue
            for credential in credential_names(server):
                if not own_secret and (cluster_of(r), str(namespace), credential) not in provided:
                    report_violation(
                        f"{where} serves the Secret {credential}, which nothing in the stack creates in {namespace} "
                        f"(no Secret and no cert-manager Certificate writes it).",
                        r.urn,
                    )


tls_on_public_gateways = StackValidationPolicy(
    name="tls-on-public-gateways",
    description="Gateway HTTPS servers carry TLS settings with a certificate the stack provides (or says is "
    "brought); plain HTTP servers redirect to HTTPS.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="Set tls.mode SIMPLE and tls.credentialName on port 443 and tls.httpsRedirect: true on port "
    "80; let platform.serving.gateway.tls.issuer make the certificate (acme or private-ca), or set it to secret "
    "and create the Secret named by platform.serving.gateway.certificate in istio-system yourself.",
)
