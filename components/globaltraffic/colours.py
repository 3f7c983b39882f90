"""Blue/green cells behind one name: weighted, health-checked DNS over every cell's regional gateways.

Each cell (a complete stack: clusters, platform, endpoints) exports its `ingresses`; the global stack
reads them through StackReferences and gives each colour its weight (the live colour 100, others 0,
or the configured split). The records' shape comes from config (colours × regions), the addresses
from the cells' outputs.

What the checks probe comes from the cells' outputs too: a cell with an external gateway on a delegated domain
serves the health route (components/dr/failover.py `serves_health_route`) and exports it with each ingress
(`health`: its hosts, scheme, port and path). While every cell's every region exports it for this stack's domain,
the checks request it (HTTPS, SNI the health host, `/ready`: 200 only while the cell's models answer); otherwise
they fall back to the gateway's status port, and `probe_report` says which cell did not export it and why.
"""

from __future__ import annotations

import pulumi

from components.dr.health import probe_export
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


def _probe_gap(ingresses: list[dict] | None, cell: str, cluster: str, domain: str) -> str | None:
    """Why the global stack cannot probe `cluster`'s health route (None: the cell exports it, as this domain needs)."""
    for ingress in ingresses or []:
        if ingress.get("cluster") != cluster:
            continue
        health = ingress.get("health")
        if not health:
            return (
                f"cell {cell!r} exports no health route for {cluster} (a cell deployed before cells served it, or one "
                "without an external gateway on a delegated domain): run `pulumi up` on it"
            )
        expected = probe_export(cluster, domain)
        wrong = sorted(key for key, value in expected.items() if health.get(key) != value)
        if wrong:
            found = ", ".join(f"{key} {health.get(key)!r}" for key in wrong)
            needed = ", ".join(f"{key} {expected[key]!r}" for key in wrong)
            return f"cell {cell!r} serves {cluster}'s health route with {found}, where this stack needs {needed}"
        return None
    return f"cell {cell!r} exports no ingress for {cluster}"


def probe_report(references: dict[str, pulumi.StackReference], routing: GlobalTraffic, platform: Platform):
    """(whether every cell serves the health route for this stack's domain, why not: one line per gap), as Outputs."""
    domain = platform.serving.gateway.domain or ""
    gaps = []
    for colour, cell in routing.cells.items():
        ingresses = references[colour].get_output("ingresses")
        for region in platform.regions:
            cluster = cluster_name(cell, region)
            gaps.append(
                ingresses.apply(lambda items, cell=cell, cluster=cluster: _probe_gap(items, cell, cluster, domain))
            )
    reasons = pulumi.Output.all(*gaps).apply(lambda found: [gap for gap in found if gap])
    return reasons.apply(lambda found: not found), reasons


def probe_reason(reasons: pulumi.Output[list[str]], cloud: str, exposure: str) -> pulumi.Output[str]:
    """dr.json's line about what the global stack's checks probe, and why."""
    if (cloud, exposure) in (("aws", "internal"), ("gcp", "internal")):
        judge = "a CloudWatch alarm on each NLB's healthy targets" if cloud == "aws" else "GKE's load balancer check"
        return pulumi.Output.from_input(f"the checks judge each cell's gateway by {judge}, not its health route")

    def line(found: list[str]) -> str:
        if not found:
            return (
                "the checks probe each cell's health route (HTTPS on 443 with SNI its health host, /ready): a colour "
                "whose models stop answering, or whose certificate is missing, leaves DNS"
            )
        return (
            "the checks probe the gateways' status port (15021, /healthz/ready), not the health route, because "
            + "; ".join(found)
            + ": a colour whose models stop answering stays in DNS while its gateway runs"
        )

    return reasons.apply(line)


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


def colour_routing(
    stack: str, platform: Platform, routing: GlobalTraffic
) -> tuple[pulumi.ComponentResource | None, pulumi.Output[str]]:
    """The global stack's DNS: StackReferences to the cells, then weighted records with health checks; and the line
    dr.json gives about what the checks probe."""
    organization = routing.organization or pulumi.get_organization()
    references = {
        colour: pulumi.StackReference(f"{organization}/{pulumi.get_project()}/{cell}")
        for colour, cell in routing.cells.items()
    }
    exposure = platform.serving.gateway.exposure
    served, gaps = probe_report(references, routing, platform)
    if exposure == "external":  # internal colours are judged by their load balancers whatever the cells serve
        gaps.apply(lambda found: [pulumi.log.warn(f"health route not probed: {gap}") for gap in found])
    checks = routing_for("warm-standby", platform.cloud, exposure)  # a colour is failed fast, like a standby
    component = build_global_traffic(
        platform.cloud,
        GlobalTrafficArgs(
            name=routing_name(stack),
            domain=platform.serving.gateway.domain or "",
            ingresses=colour_ingresses(references, routing, platform.regions),
            routing="weighted",
            cells_health_route=served,
            health_check_interval_seconds=checks.health_check_interval if checks else None,
            failure_threshold=checks.failure_threshold if checks else 3,
            ttl_seconds=checks.ttl if checks else 60,
            exposure=exposure,
        ),
    )
    return component, probe_reason(gaps, platform.cloud, exposure)
