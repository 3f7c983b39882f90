"""Failover routing for a DR tier: the global traffic component (components/globaltraffic) with the
health-check interval, failure threshold and TTL the tier's estimate was computed from."""

from __future__ import annotations

import pulumi

from components.dr.health import HEALTH_LABEL, HealthRoute, HealthRouteArgs
from components.globaltraffic import (
    CLOUDS,
    DOMAIN_KEY,
    GlobalTrafficArgs,
    RegionalIngress,
    build_global_traffic,
    check_global_traffic,
    regional_ingresses,
    routing_name,
)
from turnout.config import CLOUD_DOMAIN, Endpoint, Platform, key_path
from turnout.dr import LOAD_BALANCER_HEALTH, DrPlan, region_endpoints
from turnout.errors import ConfigError
from turnout.naming import child


def _args(plan: DrPlan, platform: Platform, name: str, ingresses: tuple[RegionalIngress, ...]) -> GlobalTrafficArgs:
    routing = plan.settings.routing
    assert routing is not None
    return GlobalTrafficArgs(
        name=name,
        domain=platform.serving.gateway.domain or "",
        ingresses=ingresses,
        routing=routing.policy,
        health_check_interval_seconds=routing.health_check_interval,
        failure_threshold=routing.failure_threshold,
        ttl_seconds=routing.ttl,
        exposure=platform.serving.gateway.exposure,
        health_route=True,  # every cluster of a DR stack serves it (components/dr/health.py)
    )


def check_failover(plan: DrPlan, platform: Platform, stack: str, endpoints: dict[str, Endpoint] | None = None) -> None:
    """Before anything is created: the routing the tier needs is one the cloud accepts, in a zone named, and no
    endpoint's host is one of the health route's (where the stack serves it)."""
    if serves_health_route(plan, platform):
        why = f"with a {plan.tier} tier" if plan.settings.routing is not None else "on a cell a global stack may probe"
        for name in endpoints or {}:
            if name == HEALTH_LABEL or name.startswith(f"{HEALTH_LABEL}-"):
                raise ConfigError(
                    key_path(f"endpoints.{name}"),
                    repr(name),
                    f"a name other than {HEALTH_LABEL} or {HEALTH_LABEL}-*: {why}, "
                    f"{HEALTH_LABEL}[-<cluster>].<domain> is the health route failover DNS probes",
                )
    if plan.settings.routing is None:
        return
    if platform.serving.gateway.domain in (None, CLOUD_DOMAIN):
        raise ConfigError(
            DOMAIN_KEY,
            f"nothing (the default {CLOUD_DOMAIN} is not a zone anyone can delegate)",
            f"the DNS zone your model hosts live in (e.g. models.example.com): the {plan.tier} tier routes "
            "*.<domain> between regions, in a zone you have delegated",
        )
    regions = plan.settings.cluster_regions
    placeholders = tuple(
        RegionalIngress(cluster=child(stack, region), region=region, address="placeholder", role=role)
        for region, role in zip(regions, _roles(plan, len(regions)), strict=True)
    )
    check_global_traffic(platform.cloud, _args(plan, platform, routing_name(stack), placeholders))


def _roles(plan: DrPlan, count: int) -> list[str]:
    if plan.settings.routing is None or plan.settings.routing.policy != "failover":
        return ["active"] * count
    return ["primary"] + ["secondary"] * (count - 1)


def _network(cluster) -> pulumi.Output[str] | None:
    """A cluster's network as global routing names it: the EKS VPC's id, the GKE network's self link."""
    return getattr(cluster, "vpc_id", None) or getattr(cluster, "network_self_link", None)


def failover_routing(
    plan: DrPlan,
    platform: Platform,
    stack: str,
    clusters: list,
    addresses: dict[str, pulumi.Input[str]],
    switch_checks: dict[str, pulumi.Input[str | None]] | None = None,
) -> pulumi.ComponentResource | None:
    """The tier's global routing over the clusters' gateways; None for tiers (and clouds) without one.
    `switch_checks`: the Region switch plan's health check per region (components/dr/arc.py), where there is one."""
    if plan.settings.routing is None:
        return None
    # The clusters' networks (EKS VPCs, GKE networks), which an internal gateway's private zone must be visible to.
    networks = {c.name: _network(c) for c in clusters if _network(c) is not None}
    # EKS clusters' private subnets: where an internal gateway's in-VPC health probe runs.
    subnets = {c.name: tuple(getattr(c, "private_subnet_ids", None) or ()) for c in clusters}
    ingresses = regional_ingresses(
        [(c.name, c.region) for c in clusters],
        addresses,
        plan.settings.routing.policy,
        networks,
        switch_checks,
        subnets,
    )
    return build_global_traffic(platform.cloud, _args(plan, platform, routing_name(stack), ingresses))


def uses_health_route(plan: DrPlan, platform: Platform) -> bool:
    """Whether the tier's failover DNS probes the health route: a tier with routing on a cloud (kind has no global
    routing), except where it judges the load balancer's own health (GCP internal gateways: GKE's check of the load
    balancer). AWS internal gateways probe the route from inside each VPC (components/globaltraffic/aws_probe.py)."""
    return (
        plan.settings.routing is not None
        and platform.cloud != "kind"
        and (platform.cloud, platform.serving.gateway.exposure) not in LOAD_BALANCER_HEALTH
    )


def serves_health_route(plan: DrPlan, platform: Platform) -> bool:
    """Whether the stack's clusters serve the health route: where its own failover DNS probes it, and on every stack
    with an external gateway on a delegated domain on a cloud. Such a stack can be a blue/green cell, and a cell
    cannot know whether a global stack routes to it (the global stack reads the cell, never the reverse): serving the
    route costs one small pod per cluster (two in prod) and lets the global stack's checks follow the cell's models
    instead of its gateway's status port. The cell exports what the probe needs (`ingresses[].health`)."""
    if uses_health_route(plan, platform):
        return True
    gateway = platform.serving.gateway
    return platform.cloud in CLOUDS and gateway.exposure == "external" and gateway.domain not in (None, CLOUD_DOMAIN)


def health_routes(
    plan: DrPlan,
    platform: Platform,
    tier: str,
    endpoints: dict[str, Endpoint],
    clusters: list,
    platforms: dict,
    records: list,
) -> list[HealthRoute]:
    """The health route on every cluster that serves it (`serves_health_route`; none otherwise): the aggregator over
    the endpoints that region runs, in the DR record's namespace (its own where the stack has no DR record), on the
    cluster's Gateway."""
    if not serves_health_route(plan, platform):
        return []
    namespaces = {record.cluster: record.namespace for record in records}
    routes = []
    for cluster in clusters:
        serving = platforms[cluster.name]
        region = region_endpoints(endpoints, plan.settings, cluster.region)
        routes.append(
            HealthRoute(
                child(cluster.name, "health"),
                HealthRouteArgs(
                    cluster=cluster.name,
                    domain=serving.mesh.domain,
                    endpoints={name: endpoint.health_path for name, endpoint in region.items()},
                    gateway=serving.mesh.gateway,
                    tier=tier,
                    pull_policy=serving.mesh.image_pull_policy,
                    after=(*([namespaces[cluster.name]] if cluster.name in namespaces else []), *serving.ready),
                    own_namespace=cluster.name not in namespaces,
                ),
                pulumi.ResourceOptions(provider=cluster.provider),
            )
        )
    return routes
