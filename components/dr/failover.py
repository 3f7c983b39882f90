"""Failover routing for a DR tier: the global traffic component (components/globaltraffic) with the
health-check interval, failure threshold and TTL the tier's estimate was computed from."""

from __future__ import annotations

import pulumi

from components.globaltraffic import (
    DOMAIN_KEY,
    GlobalTrafficArgs,
    RegionalIngress,
    build_global_traffic,
    check_global_traffic,
    regional_ingresses,
    routing_name,
)
from turnout.config import CLOUD_DOMAIN, Platform
from turnout.dr import DrPlan
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
    )


def check_failover(plan: DrPlan, platform: Platform, stack: str) -> None:
    """Before anything is created: the routing the tier needs is one the cloud accepts, in a zone named."""
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


def failover_routing(
    plan: DrPlan, platform: Platform, stack: str, clusters: list, addresses: dict[str, pulumi.Input[str]]
) -> pulumi.ComponentResource | None:
    """The tier's global routing over the clusters' gateways; None for tiers (and clouds) without one."""
    if plan.settings.routing is None:
        return None
    # The clusters' networks (EKS VPCs), which an internal gateway's private zone must be associated with.
    networks = {c.name: c.vpc_id for c in clusters if getattr(c, "vpc_id", None) is not None}
    ingresses = regional_ingresses(
        [(c.name, c.region) for c in clusters], addresses, plan.settings.routing.policy, networks
    )
    return build_global_traffic(platform.cloud, _args(plan, platform, routing_name(stack), ingresses))
