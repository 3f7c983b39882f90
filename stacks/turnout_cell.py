"""A cell stack: clusters in every region its DR tier uses, the serving platform, the cache and the
model endpoints, with failover DNS when the tier needs it. Every bundled environment but a global one."""

import pulumi

from components.cache.build import build_cache, cache_connection, cache_replication
from components.cluster.fleet import Fleet
from components.dr import arc
from components.dr.failover import failover_routing, health_routes
from components.dr.record import dr_records
from components.dr.standby import endpoint_options
from components.endpoint.model_endpoint import ModelEndpoint, ModelEndpointArgs
from components.globaltraffic import exported
from components.mesh.platform import ServingPlatform, ServingPlatformArgs
from components.support import cache_backup_interval
from turnout import dr
from turnout.config import StackConfig, endpoints_in_region
from turnout.naming import child


def compose_cell(stack: StackConfig) -> None:
    recovery = dr.assess(stack.dr, stack.platform, has_cache=stack.cache is not None)

    fleet = Fleet(
        "fleet", stack.platform, pulumi.get_stack(), regions=recovery.settings.cluster_regions, tier=stack.tier
    )
    cache = build_cache(
        child(pulumi.get_stack(), "cache"),
        stack.cache,
        cloud=stack.platform.cloud,
        tier=stack.tier,
        clusters=fleet.clusters,
        replica_regions=recovery.settings.cache_replicas,
        backup_interval_seconds=cache_backup_interval(recovery.settings),
        backup_retention_days=recovery.settings.backup_retention_days,
    )
    platforms = {
        cluster.name: ServingPlatform(
            child(cluster.name, "serving"),
            ServingPlatformArgs(
                serving=stack.platform.serving,
                cloud=stack.platform.cloud,
                tier=stack.tier,
                endpoints=endpoints_in_region(stack.endpoints, cluster.region),
                cluster=cluster,
                observability=stack.platform.observability,
            ),
            pulumi.ResourceOptions(provider=cluster.provider),
        )
        for cluster in fleet.clusters
    }
    endpoints = [
        ModelEndpoint(
            child(cluster.name, name),
            ModelEndpointArgs(
                endpoint_name=name,
                endpoint=endpoint,
                tier=stack.tier,
                cluster=cluster.name,
                mesh=platforms[cluster.name].mesh,
                after=tuple(platforms[cluster.name].ready),
                cache=cache_connection(cache, cluster.region),
            ),
            endpoint_options(recovery.settings, cluster.region, cluster.provider),
        )
        for cluster in fleet.clusters
        for name, endpoint in dr.region_endpoints(
            endpoints_in_region(stack.endpoints, cluster.region), recovery.settings, cluster.region
        ).items()
    ]
    records = dr_records(recovery, fleet.clusters)
    routes = health_routes(recovery, stack.platform, stack.tier, stack.endpoints, fleet.clusters, platforms, records)
    probes = {route.cluster: route.probe for route in routes}
    switch = arc.region_switch(recovery, stack, pulumi.get_stack(), fleet.clusters, cache)
    routing = failover_routing(
        recovery,
        stack.platform,
        pulumi.get_stack(),
        fleet.clusters,
        {name: platform.ingress_address for name, platform in platforms.items()},
        arc.switch_health_checks(switch),
    )
    arc.watch_health(switch, routing)

    pulumi.export("kind", stack.kind)
    pulumi.export("tier", stack.tier)
    pulumi.export("clusters", fleet.describe())
    pulumi.export("platform", {name: platform.versions for name, platform in platforms.items()})
    pulumi.export("kubeconfigs", {cluster.name: cluster.kubeconfig for cluster in fleet.clusters})
    pulumi.export("traffic", {"endpoints": [endpoint.traffic for endpoint in endpoints]})
    pulumi.export("dr", recovery.to_json())
    pulumi.export("globalTraffic", exported(routing))
    pulumi.export("regionSwitch", arc.exported(switch))
    pulumi.export("cache", cache_replication(cache))
    # What a global stack reads (StackReference) to route users to this cell's gateways.
    pulumi.export(
        "ingresses",
        [
            {
                "cluster": c.name,
                "region": c.region,
                "address": platforms[c.name].ingress_address,
                "network": stack.platform.networks.get(c.region),  # none on kind
                # The cluster's VPC (EKS; none elsewhere), which a global stack associates its private zone with.
                "networkId": getattr(c, "vpc_id", None),
                # The cluster's health route (components/dr/health.py), which a global stack's checks probe; none
                # where the cluster serves none (the global stack then probes the gateway's status port).
                "health": probes.get(c.name),
            }
            for c in fleet.clusters
        ],
    )
