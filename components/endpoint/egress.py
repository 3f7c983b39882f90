"""An endpoint's calls to named hosts outside the mesh (`endpoints.NAME.egress`): model weights in S3, GCS or Blob
storage, a feature store. istiod runs with `outboundTrafficPolicy: REGISTRY_ONLY`, so a sidecar forwards only to
hosts in its registry; these ServiceEntries register the endpoint's hosts, for its own namespace only.

Every host is TLS: the sidecar routes it by SNI and the connection stays end-to-end encrypted (the model speaks
TLS itself). An exact host resolves by DNS; a wildcard one (`*.blob.core.windows.net`) cannot be resolved, so it
goes to the address the pod resolved (resolution NONE), which is how Istio admits wildcard hosts. Hosts are
grouped by port and kind, since a ServiceEntry's ports and resolution apply to all its hosts.

Beneath the mesh nothing else needs opening: the model namespace's NetworkPolicy restricts ingress only, and
its AuthorizationPolicies judge requests coming in, not going out.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from turnout.naming import child, labels

NAME_PREFIX = "turnout-egress"


def destination(entry: str) -> tuple[str, int]:
    """(host, port) of a configured `host:port` (turnout.config normalizes every entry to that form)."""
    host, _, port = entry.rpartition(":")
    return host, int(port)


def service_entries(hosts: tuple[str, ...]) -> dict[str, dict]:
    """ServiceEntry name → spec: one per port, exact hosts apart from wildcard ones, in the order written."""
    groups: dict[tuple[int, bool], list[str]] = {}
    for entry in hosts:
        host, port = destination(entry)
        groups.setdefault((port, host.startswith("*.")), []).append(host)
    entries = {}
    for (port, wildcard), names in groups.items():
        entries[f"{NAME_PREFIX}-{port}" + ("-wildcard" if wildcard else "")] = {
            "hosts": names,
            "ports": [{"number": port, "name": f"tls-{port}", "protocol": "TLS"}],
            "location": "MESH_EXTERNAL",
            "resolution": "NONE" if wildcard else "DNS",
            "exportTo": ["."],
        }
    return entries


@dataclass(frozen=True, kw_only=True)
class EndpointEgressArgs:
    namespace: str
    endpoint: str
    tier: str
    hosts: tuple[str, ...]
    """`host:port` entries, as turnout.config normalizes `endpoints.NAME.egress`."""
    after: tuple[pulumi.Resource, ...]
    """The namespace, and the serving platform whose CRDs ServiceEntries need."""


class EndpointEgress(pulumi.ComponentResource):
    ready: list[pulumi.Resource]
    """What workloads wait for: a model that fetches its weights as it starts needs its hosts registered first."""

    def __init__(self, name: str, args: EndpointEgressArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:endpoint:EndpointEgress", name, None, opts)
        self.ready = [
            k8s.apiextensions.CustomResource(
                child(name, entry.removeprefix(NAME_PREFIX + "-")),
                api_version="networking.istio.io/v1",
                kind="ServiceEntry",
                metadata={
                    "name": entry,
                    "namespace": args.namespace,
                    "labels": labels(args.endpoint, None, args.tier),
                },
                spec=spec,
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
            )
            for entry, spec in service_entries(args.hosts).items()
        ]
        self.register_outputs({"hosts": list(args.hosts)})
