"""Cloud DNS health-checked routing over each region's ingress load balancer IP, in the user's own zone.

- Zone: the user's public managed zone for the domain, looked up by its name, which by convention is
  the domain with dots as dashes (`models-example-com` for models.example.com); the stack only writes the
  `*.<domain>.` record set into it.
- Record set: one A record set with a routing policy over the regions' external IPs:
  failover -> `primary_backup` (the primary's IP; the secondaries as backup geos by region),
  latency -> `geo` by region (Cloud DNS has no latency policy; a geolocation policy answers from the
  nearest Google Cloud region and, without geofencing, fails over to the next nearest healthy one),
  weighted -> `wrr`, one weighted item per region.
- Health: Cloud DNS health-checks public IPs ("external endpoints", GA since February 2025) with one global
  compute health check carrying exactly three source regions, which restricts it to HTTP/HTTPS/TCP and an
  interval of 30 s or more. DR routing (`health_route`): it probes the region's health route, HTTPS on 443,
  `/ready`, with `host` the shared health host `turnout-health.<domain>` (the Host header; the Gateway's
  `*.<domain>` server is chosen by SNI, so the probe must send it as SNI too, as an HTTPS client does for a named
  host): 200 only while every model of the region answers. Blue/green colours: the gateway's status port (15021,
  `/healthz/ready`) over HTTP.
- APIs: Cloud DNS and Compute Engine (the health check) are enabled first (components/cluster/gcp_apis.py);
  the health check's name fits GCP's limits (components/cluster/gcp_limits.py).
- Internal gateways are refused by `check_global_traffic`: Cloud DNS judges an internal passthrough load
  balancer only by that load balancer's own backend health check, which GKE creates and manages, so the
  stack could neither set nor report the detection time the DR estimate depends on.
"""

from __future__ import annotations

from collections import defaultdict

import pulumi
import pulumi_gcp as gcp

from components.cluster.gcp_apis import CLOUD_DNS_APIS, enable_apis
from components.cluster.gcp_limits import GCP_NAMES, gcp_name
from components.globaltraffic import (
    DOMAIN_KEY,
    GlobalTrafficArgs,
    HealthCheckPlan,
    RegionalIngress,
    check_global_traffic,
    describe_records,
    hostname_of,
)
from turnout.errors import ConfigError
from turnout.naming import child

SOURCE_REGION_COUNT = 3  # what a health check with source regions must list
# Probing regions used after the ingresses' own regions, to make up the three a health check needs.
FALLBACK_SOURCE_REGIONS = ("us-central1", "europe-west1", "asia-east1")


def managed_zone_name(domain: str) -> str:
    """The managed zone a domain's records go into: `models-example-com` for models.example.com. Looked up, not
    made, so it cannot be shortened: a domain whose zone name Cloud DNS could not hold is refused."""
    zone = domain.replace(".", "-")
    rule = GCP_NAMES["dns_managed_zone"]
    if not rule.accepts(zone):
        raise ConfigError(
            DOMAIN_KEY,
            f"{domain!r}, whose managed zone would be named {zone!r}",
            f"on gcp, a domain whose zone name (dots as dashes) is a {rule.what}: at most {rule.max_length} "
            "characters, starting with a letter",
        )
    return zone


def source_regions(ingresses: tuple[RegionalIngress, ...]) -> list[str]:
    """Three probing regions: the ingresses' own (first three), then fallbacks, each once."""
    regions: list[str] = []
    for region in [ingress.region for ingress in ingresses] + list(FALLBACK_SOURCE_REGIONS):
        if region not in regions and len(regions) < SOURCE_REGION_COUNT:
            regions.append(region)
    return regions


def _by_region(ingresses: list[RegionalIngress]) -> list[dict]:
    """Geo items: one per region, health-checking every ingress address of that region."""
    addresses: dict[str, list[pulumi.Input[str]]] = defaultdict(list)
    for ingress in ingresses:
        addresses[ingress.region].append(ingress.address)
    return [
        {"location": region, "health_checked_targets": {"external_endpoints": targets}}
        for region, targets in addresses.items()
    ]


def routing_policy(args: GlobalTrafficArgs, health_check: pulumi.Input[str]) -> dict:
    """The record set's routing policy over the ingresses' IPs, health-checked by `health_check`."""
    if args.routing == "failover":
        primary = [ingress for ingress in args.ingresses if ingress.role == "primary"]
        secondaries = [ingress for ingress in args.ingresses if ingress.role == "secondary"]
        policy: dict = {
            "primary_backup": {
                "primary": {"external_endpoints": [ingress.address for ingress in primary]},
                "backup_geos": _by_region(secondaries),
                "trickle_ratio": 0,
                "enable_geo_fencing_for_backups": False,
            }
        }
    elif args.routing == "latency":
        policy = {"geos": _by_region(list(args.ingresses)), "enable_geo_fencing": False}
    else:
        policy = {
            "wrrs": [
                {"weight": ingress.weight, "health_checked_targets": {"external_endpoints": [ingress.address]}}
                for ingress in args.ingresses
            ]
        }
    return {**policy, "health_check": health_check}


def health_check_args(name: str, plan: HealthCheckPlan, regions: list[str]) -> dict:
    """The global compute health check Cloud DNS probes the regions' IPs with."""
    return {
        "name": gcp_name("health_check", name),
        "description": "The regions' model health route, for Cloud DNS routing"
        if plan.host is not None
        else "Istio ingress gateway readiness, for Cloud DNS routing",
        "check_interval_sec": plan.interval_seconds,
        "timeout_sec": plan.timeout_seconds,
        "unhealthy_threshold": plan.failure_threshold,
        "healthy_threshold": plan.failure_threshold,
        **(
            {"https_health_check": {"port": plan.port, "request_path": plan.path, "host": plan.host}}
            if plan.host is not None
            else {"http_health_check": {"port": plan.port, "request_path": plan.path}}
        ),
        "source_regions": regions,
    }


class CloudDnsGlobalTraffic(pulumi.ComponentResource):
    hostname: str
    records: pulumi.Output[list[dict]]
    detection_seconds: int
    ttl_seconds: int
    health_check: pulumi.Output[str]
    """The health check's self link."""

    def __init__(self, name: str, args: GlobalTrafficArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:globaltraffic:CloudDnsGlobalTraffic", name, None, opts)
        plan = check_global_traffic("gcp", args)
        self.hostname = hostname_of(args)
        self.detection_seconds = plan.detection_seconds
        self.ttl_seconds = plan.ttl_seconds
        # An explicit provider reads no stack config: hand it `gcp:project` (unset, it falls back to GOOGLE_PROJECT).
        gcp_provider = gcp.Provider(
            child(name, "gcp"), project=pulumi.Config("gcp").get("project"), opts=pulumi.ResourceOptions(parent=self)
        )
        apis = enable_apis(name, CLOUD_DNS_APIS, pulumi.ResourceOptions(parent=self, provider=gcp_provider))
        on_gcp = pulumi.ResourceOptions(parent=self, provider=gcp_provider, depends_on=apis)
        zone = gcp.dns.get_managed_zone_output(
            name=managed_zone_name(args.domain),
            opts=pulumi.InvokeOutputOptions(provider=gcp_provider, parent=self, depends_on=apis),
        )
        regions = source_regions(args.ingresses)
        health = gcp.compute.HealthCheck(
            child(name, "health"), **health_check_args(child(name, "gateway-ready"), plan, regions), opts=on_gcp
        )
        self.health_check = health.self_link
        gcp.dns.RecordSet(
            child(name, "record"),
            managed_zone=zone.name,
            name=f"{self.hostname}.",
            type="A",
            ttl=plan.ttl_seconds,
            routing_policy=routing_policy(args, health.self_link),
            opts=on_gcp,
        )
        extra = {ingress.cluster: {"healthCheckSourceRegions": regions} for ingress in args.ingresses}
        self.records = describe_records(args, plan, "A", extra)
        self.register_outputs(
            {
                "hostname": self.hostname,
                "records": self.records,
                "detection_seconds": self.detection_seconds,
                "ttl_seconds": self.ttl_seconds,
            }
        )
