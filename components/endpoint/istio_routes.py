"""An endpoint's traffic plan as Istio objects: a DestinationRule (a subset per version) and a
VirtualService bound to the platform's Gateway whose HTTP routes are exactly the plan's routes."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.endpoint.agent_experiments import PROXY_PORT, agent_host, mirror_port
from turnout.naming import child, labels
from turnout.strategies import Sticky
from turnout.traffic import Destination, Match, Mirror, Route, TrafficPlan

SERVICE_PORT = 80
STICKY_MAX_AGE_S = 7 * 86400
VERSION_LABEL = "turnout.dev/version"
CANARY_ANNOTATION = "turnout.dev/canary-version"
MIN_WEIGHT_ANNOTATION = "turnout.dev/bandit-min-weight"
"""On a bandit's VirtualService: the floor every arm keeps (the bandit-min-weight policy reads it)."""
WEIGHTS_OWNER_ANNOTATION = "turnout.dev/weights-owner"
LEARNED_ROUTES = "spec.http"
"""What the experiment agent owns after creation: Pulumi ignores it, so a later `pulumi up` keeps learned weights
(a CRD's lists are atomic for server-side apply: the agent's update owns all of `http`, not one weight)."""


def experiment_headers(version: str) -> dict[str, str]:
    """Every answer of an experiment endpoint names its version, and a request id a caller can report back."""
    return {"x-turnout-version": version, "x-turnout-request-id": f"{version}.%REQ(x-request-id)%"}


def cookie_regex(name: str, value: str) -> str:
    """Matches a Cookie header carrying name=value among other cookies (RE2, whole-string match)."""
    return f"(.*;\\s*)?{re.escape(name)}={re.escape(value)}(;.*)?"


def match_spec(match: Match) -> dict:
    if match.kind == "cookie":
        return {"headers": {"cookie": {"regex": cookie_regex(match.name, match.value)}}}
    return {"headers": {match.name: {"exact": match.value}}}


def route_name(route: Route, index: int) -> str:
    if route.match is None:
        return "default"
    prefix = "sticky" if route.match.kind == "cookie" else re.sub(r"[^a-z0-9]+", "-", route.match.name.lower())
    return f"{prefix}-{route.match.value}".strip("-")[:63] or f"route-{index}"


def learned_annotations(min_weight: int) -> dict[str, str]:
    return {MIN_WEIGHT_ANNOTATION: str(min_weight), WEIGHTS_OWNER_ANNOTATION: "experiment-agent"}


@dataclass(frozen=True, kw_only=True)
class Hosts:
    service: str
    """FQDN of the Service in front of the serving versions."""
    shadow: str
    """FQDN of the Service in front of the shadow versions (mirror targets only)."""
    agent: str | None = None
    """FQDN of the experiment agent's Service: an interleaved share and compared mirrors go to it."""


def _destination(destination: Destination, hosts: Hosts, sticky: Sticky | None, experiment: bool = False) -> dict:
    spec = {
        "destination": {"host": hosts.service, "subset": destination.version, "port": {"number": SERVICE_PORT}},
        "weight": destination.weight,
    }
    if experiment:
        spec["headers"] = {"response": {"set": experiment_headers(destination.version)}}
    if sticky is not None:
        # The split route tells the client which version it got; later requests match on the cookie.
        cookie = f"{sticky.cookie}={destination.version}; Path=/; Max-Age={STICKY_MAX_AGE_S}; HttpOnly; SameSite=Lax"
        spec["headers"] = {"response": {"set": {"set-cookie": cookie}}}
    return spec


def _interleaved(destination: Destination, hosts: Hosts) -> dict:
    """An interleaved share goes to the agent's proxy port; the agent names the versions in its answers itself."""
    return {"destination": {"host": hosts.agent, "port": {"number": PROXY_PORT}}, "weight": destination.weight}


def _mirror(mirror: Mirror, hosts: Hosts, index: int) -> dict:
    if mirror.compared:  # to the agent's port for this shadow: it calls the shadow and the primary itself
        target = {"host": hosts.agent, "port": {"number": mirror_port(index)}}
    else:
        target = {"host": hosts.shadow, "subset": mirror.version, "port": {"number": SERVICE_PORT}}
    return {"destination": target, "percentage": {"value": float(mirror.percent)}}


def _version_header(version: str) -> dict:
    return {"response": {"set": {"x-turnout-version": version}}}


def http_routes(plan: TrafficPlan, hosts: Hosts, sticky: Sticky | None = None, experiment: bool = False) -> list[dict]:
    """The VirtualService's `http` list, one entry per plan route, in the plan's order."""
    routes = []
    for index, route in enumerate(plan.routes):
        split = route.match is None and len(route.to) > 1
        spec: dict = {"name": route_name(route, index)}
        if route.match is not None:
            spec["match"] = [match_spec(route.match)]
        # An experiment's answers name their version on every weighted route (an ab-test's segment route has a match).
        weighted = experiment and len(route.to) > 1
        spec["route"] = [_destination(d, hosts, sticky if split else None, weighted) for d in route.to]
        if any(d.interleaved_with for d in route.to):
            spec["route"] = [
                _interleaved(d, hosts) if d.interleaved_with else {**s, "headers": _version_header(d.version)}
                for d, s in zip(route.to, spec["route"], strict=True)
            ]
        if route.mirror:
            spec["mirrors"] = [_mirror(m, hosts, index) for index, m in enumerate(route.mirror)]
        routes.append(spec)
    return routes


def destination_rule_spec(host: str, versions: tuple[str, ...]) -> dict:
    return {
        "host": host,
        "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
        "subsets": [{"name": version, "labels": {VERSION_LABEL: version}} for version in versions],
    }


@dataclass(frozen=True, kw_only=True)
class IstioRoutesArgs:
    endpoint: str
    namespace: str
    tier: str
    plan: TrafficPlan
    sticky: Sticky | None
    canary_version: str | None
    """Named on the VirtualService so policies can cap the canary's weight."""
    public_host: str
    gateway: str
    """`namespace/name` of the Gateway the VirtualService binds to."""
    after: tuple[pulumi.Resource, ...]
    min_weight: int | None = None
    """A bandit's floor: its split route names versions in answers, and the experiment agent owns the weights."""
    experiment_headers: bool = False
    """An ab-test with rewards: its split route names versions in answers (the weights stay the stack's)."""


class IstioRoutes(pulumi.ComponentResource):
    def __init__(self, name: str, args: IstioRoutesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:endpoint:IstioRoutes", name, None, opts)
        after = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        domain = f"{args.namespace}.svc.cluster.local"
        hosts = Hosts(
            service=f"{args.endpoint}.{domain}",
            shadow=f"{args.endpoint}-shadow.{domain}",
            agent=agent_host(args.endpoint, args.namespace),
        )
        meta: dict = {"namespace": args.namespace, "labels": labels(args.endpoint, None, args.tier)}
        k8s.apiextensions.CustomResource(
            child(name, "dr"),
            api_version="networking.istio.io/v1",
            kind="DestinationRule",
            metadata={"name": args.endpoint, **meta},
            spec=destination_rule_spec(hosts.service, args.plan.routed_versions),
            opts=after,
        )
        if args.plan.mirrored_versions:
            k8s.apiextensions.CustomResource(
                child(name, "shadow-dr"),
                api_version="networking.istio.io/v1",
                kind="DestinationRule",
                metadata={"name": f"{args.endpoint}-shadow", **meta},
                spec=destination_rule_spec(hosts.shadow, args.plan.mirrored_versions),
                opts=after,
            )
        k8s.apiextensions.CustomResource(
            child(name, "vs"),
            api_version="networking.istio.io/v1",
            kind="VirtualService",
            metadata={
                "name": args.endpoint,
                **meta,
                **({"annotations": {CANARY_ANNOTATION: args.canary_version}} if args.canary_version else {}),
                **({"annotations": learned_annotations(args.min_weight)} if args.min_weight is not None else {}),
            },
            spec={
                # The public host through the Gateway, and the in-mesh name for callers inside the cluster.
                "hosts": [args.public_host, hosts.service],
                "gateways": [args.gateway, "mesh"],
                "http": http_routes(
                    args.plan, hosts, args.sticky, experiment=args.min_weight is not None or args.experiment_headers
                ),
            },
            opts=pulumi.ResourceOptions.merge(
                after, pulumi.ResourceOptions(ignore_changes=[LEARNED_ROUTES] if args.min_weight is not None else None)
            ),
        )
        self.register_outputs({"host": args.public_host})
