"""Blue/green cells behind one name: weighted, health-checked DNS over every cell's regional gateways.

Each cell (a complete stack: clusters, platform, endpoints) exports its `ingresses`; the global stack
reads them through StackReferences and gives each colour its weight (the live colour 100, others 0,
or the configured split). The records' shape comes from config (colours × regions), the addresses
from the cells' outputs.
"""

from __future__ import annotations

import pulumi

from components.globaltraffic import (
    DOMAIN_KEY,
    GlobalTrafficArgs,
    RegionalIngress,
    build_global_traffic,
    routing_name,
)
from turnout.config import CLOUD_DOMAIN, GlobalTraffic, Platform, StackConfig
from turnout.dr import routing_for
from turnout.errors import ConfigError
from turnout.naming import cluster_name


def check_colour_routing(config: StackConfig) -> None:
    """A global stack's records go into a zone the user delegated: the default domain is not one."""
    if config.global_traffic is not None and config.platform.serving.gateway.domain in (None, CLOUD_DOMAIN):
        raise ConfigError(
            DOMAIN_KEY,
            f"nothing (the default {CLOUD_DOMAIN} is not a zone anyone can delegate)",
            "the DNS zone the cells serve (the cells' own gateway domain), e.g. serving.example.com",
        )


def _address(ingresses: list[dict] | None, cell: str, cluster: str) -> str:
    for ingress in ingresses or []:
        if ingress.get("cluster") == cluster:
            return ingress["address"]
    raise ValueError(
        f"cell stack {cell!r} exports no ingress for cluster {cluster!r}: "
        f"run `pulumi up` on {cell} first, with the same regions as this global stack"
    )


def _network(ingresses: list[dict] | None, cluster: str) -> str | None:
    """The cell's network id for `cluster` (its VPC on AWS), if it exports one."""
    for ingress in ingresses or []:
        if ingress.get("cluster") == cluster:
            return ingress.get("networkId")
    return None


def colour_ingresses(
    references: dict[str, pulumi.StackReference], routing: GlobalTraffic, regions: tuple[str, ...]
) -> tuple[RegionalIngress, ...]:
    """One weighted ingress per colour and region, its address read from the colour's cell."""
    weights = routing.colour_weights()
    result = []
    for colour, cell in routing.cells.items():
        ingresses = references[colour].get_output("ingresses")
        for region in regions:
            cluster = cluster_name(cell, region)
            result.append(
                RegionalIngress(
                    cluster=cluster,
                    region=region,
                    address=ingresses.apply(lambda items, cell=cell, cluster=cluster: _address(items, cell, cluster)),
                    network_id=ingresses.apply(lambda items, cluster=cluster: _network(items, cluster)),
                    role="active",
                    weight=weights[colour],
                )
            )
    return tuple(result)


def colour_routing(stack: str, platform: Platform, routing: GlobalTraffic) -> pulumi.ComponentResource | None:
    """The global stack's DNS: StackReferences to the cells, then weighted records with health checks."""
    organization = routing.organization or pulumi.get_organization()
    references = {
        colour: pulumi.StackReference(f"{organization}/{pulumi.get_project()}/{cell}")
        for colour, cell in routing.cells.items()
    }
    exposure = platform.serving.gateway.exposure
    checks = routing_for("warm-standby", platform.cloud, exposure)  # a colour is failed fast, like a standby
    return build_global_traffic(
        platform.cloud,
        GlobalTrafficArgs(
            name=routing_name(stack),
            domain=platform.serving.gateway.domain or "",
            ingresses=colour_ingresses(references, routing, platform.regions),
            routing="weighted",
            health_check_interval_seconds=checks.health_check_interval if checks else None,
            failure_threshold=checks.failure_threshold if checks else 3,
            ttl_seconds=checks.ttl if checks else 60,
            exposure=exposure,
        ),
    )
