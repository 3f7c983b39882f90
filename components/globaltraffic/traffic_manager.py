"""Azure Traffic Manager over each region's ingress load balancer IP.

- Profile: in its own resource group, routing method Priority (failover), Performance (latency) or
  Weighted; the DNS TTL and the monitor: every 10 or 30 s, a 5 s timeout, `failure_threshold - 1` tolerated
  failures (Traffic Manager declares an endpoint degraded on the failure after the tolerated ones). DR routing
  (`health_route`): HTTPS on 443, `/ready`, with a custom `Host` header, the shared health host
  `turnout-health.<domain>`, which Traffic Manager also sends as SNI (MicrosoftDocs/azure-docs#28209: a host custom
  header is what an SNI-bound HTTPS endpoint needs; HTTPS probes check the certificate is presented, not that it is
  valid): 200 only while every model of the region answers. Blue/green colours (`cells_health_route`): the same while
  every cell exports the health route for this domain, else HTTP on the gateway's status port 15021,
  `/healthz/ready` (the monitor is an Output of what the cells export).
- Endpoints: one external endpoint per region, its target the load balancer's public IP, its location the
  cluster's region (what Performance routing measures); Priority gives the primary 1 and the secondaries 2,
  3, ... in order; Weighted takes the weight, and a weight of 0 (out of rotation; Traffic Manager only
  accepts 1-1000) becomes a disabled endpoint.
- Names: the profile answers at `<name>-<hash>.trafficmanager.net` (`profile_fqdn`): the DNS name is unique across
  Azure, so it carries 6 hex digits of a hash of the subscription and the name, and the same stack in another
  organisation's subscription never claims it (components/cluster/azure_limits.py). The user's zone points
  `*.<domain>` there with a CNAME (listed in `records`), as it owns that zone.
- Internal gateways are refused by `check_global_traffic`: Traffic Manager probes from the internet and
  serves public DNS only; it cannot route to or monitor endpoints in a private network (Traffic Manager FAQ,
  "What types of traffic can be routed using Traffic Manager?").
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import authorization, resources, trafficmanager

from components.cluster.azure_limits import azure_name, global_name
from components.globaltraffic import (
    GlobalTrafficArgs,
    HealthCheckPlan,
    RegionalIngress,
    describe_records,
    hostname_of,
    probe_plans,
)
from turnout.naming import child

ROUTING_METHODS = {"failover": "Priority", "latency": "Performance", "weighted": "Weighted"}
TRAFFIC_MANAGER_DOMAIN = "trafficmanager.net"


def profile_name(name: str, subscription_id: str) -> str:
    """The profile's name and DNS name (`<it>.trafficmanager.net`): unique across Azure, so it carries a hash of the
    subscription; a DNS label, which also fits the profile name's rule."""
    return global_name("traffic_manager_dns_name", name, subscription_id)


def monitor_config(plan: HealthCheckPlan) -> dict:
    """The profile's endpoint monitor: the health route over HTTPS with the health host, or the gateway's readiness
    over HTTP."""
    return {
        "protocol": plan.protocol,
        "port": plan.port,
        "path": plan.path,
        "interval_in_seconds": plan.interval_seconds,
        "timeout_in_seconds": plan.timeout_seconds,
        "tolerated_number_of_failures": plan.failure_threshold - 1,
        **({"custom_headers": [{"name": "Host", "value": plan.host}]} if plan.host is not None else {}),
    }


def priorities(ingresses: tuple[RegionalIngress, ...]) -> dict[str, int]:
    """Priority routing: the primary first, then the secondaries in the order given."""
    ordered = [i for i in ingresses if i.role == "primary"] + [i for i in ingresses if i.role == "secondary"]
    return {ingress.cluster: rank for rank, ingress in enumerate(ordered, start=1)}


def endpoint_settings(args: GlobalTrafficArgs) -> dict[str, dict]:
    """Each cluster's endpoint fields for the profile's routing method."""
    if args.routing == "failover":
        return {cluster: {"priority": rank} for cluster, rank in priorities(args.ingresses).items()}
    if args.routing == "weighted":
        return {
            ingress.cluster: {"weight": ingress.weight}
            if ingress.weight
            else {"weight": 1, "endpoint_status": "Disabled"}
            for ingress in args.ingresses
        }
    return {ingress.cluster: {} for ingress in args.ingresses}


class TrafficManagerGlobalTraffic(pulumi.ComponentResource):
    hostname: str
    records: pulumi.Output[list[dict]]
    detection_seconds: int | pulumi.Output[int]
    ttl_seconds: int
    profile_fqdn: pulumi.Output[str]
    """`<profile>.trafficmanager.net`: where `*.<domain>` must point (CNAME)."""

    def __init__(self, name: str, args: GlobalTrafficArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:globaltraffic:TrafficManagerGlobalTraffic", name, None, opts)
        plan, probing, self.detection_seconds = probe_plans("azure", args)
        self.hostname = hostname_of(args)
        self.ttl_seconds = plan.ttl_seconds
        mine = pulumi.ResourceOptions(parent=self)
        client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        dns_name = client.subscription_id.apply(lambda subscription: profile_name(args.name, subscription))
        self.profile_fqdn = pulumi.Output.concat(dns_name, ".", TRAFFIC_MANAGER_DOMAIN)
        group = resources.ResourceGroup(
            child(name, "rg"),
            resource_group_name=azure_name("resource_group", child(name, "rg")),
            location=args.ingresses[0].region,
            opts=mine,
        )
        profile = trafficmanager.Profile(
            child(name, "profile"),
            profile_name=dns_name,
            resource_group_name=group.name,
            location="global",
            profile_status="Enabled",
            traffic_routing_method=ROUTING_METHODS[args.routing],
            dns_config={"relative_name": dns_name, "ttl": plan.ttl_seconds},
            monitor_config=monitor_config(plan) if args.cells_health_route is None else probing.apply(monitor_config),
            traffic_view_enrollment_status="Disabled",
            opts=mine,
        )
        settings = endpoint_settings(args)
        for ingress in args.ingresses:
            trafficmanager.Endpoint(
                child(name, ingress.cluster),
                endpoint_name=azure_name("traffic_manager_endpoint", ingress.cluster),
                endpoint_type="ExternalEndpoints",
                profile_name=profile.name,
                resource_group_name=group.name,
                target=ingress.address,
                endpoint_location=ingress.region,
                **{"endpoint_status": "Enabled", **settings[ingress.cluster]},
                opts=mine,
            )
        extra = {
            cluster: {
                "cname": self.profile_fqdn,
                "endpointStatus": fields.get("endpoint_status", "Enabled"),
                **({"priority": fields["priority"]} if "priority" in fields else {}),
            }
            for cluster, fields in settings.items()
        }
        self.records = describe_records(
            args, plan if args.cells_health_route is None else probing, "TrafficManager", extra
        )
        self.register_outputs(
            {
                "hostname": self.hostname,
                "records": self.records,
                "detection_seconds": self.detection_seconds,
                "ttl_seconds": self.ttl_seconds,
                "profile_fqdn": self.profile_fqdn,
            }
        )
