"""no-wildcard-gateway-hosts: an Istio Gateway server names the hosts it accepts; a bare `*` (or
`*/*`, `ns/*`) accepts every host, so any VirtualService bound to the gateway can claim any name."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._kubernetes import get_path, istio_gateway_servers, items, object_name, shipped_upstream


def any_host(host: str) -> bool:
    """`*`, `*/*`, `./*`, `ns/*`: the DNS part is the bare wildcard (`*.example.com` is fine)."""
    return host.rsplit("/", 1)[-1] == "*"


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if shipped_upstream(args.urn):
        return
    for name, server in istio_gateway_servers(args.resource_type, args.props):
        for host in items(get_path(server, "hosts")):
            if isinstance(host, str) and any_host(host):
                report_violation(f"{object_name(args.props)}: server {name} accepts any host ({host!r}).")


no_wildcard_gateway_hosts = ResourceValidationPolicy(
    name="no-wildcard-gateway-hosts",
    description="Istio Gateway servers name their hosts, never `*` or `*/*` alone.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate,
    remediation_steps="List the gateway's domain instead (`*.models.example.com`, turnout's "
    "platform.serving.gateway.domain).",
)
