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
  host): 200 only while every model of the region answers. Blue/green colours (`cells_health_route`): the same
  while every cell exports the health route for this domain, else the gateway's status port (15021,
  `/healthz/ready`) over HTTP (the check's arguments are Outputs of what the cells export).
- APIs: Cloud DNS and Compute Engine (the health check) are enabled first (components/cluster/gcp_apis.py);
  the health check's name fits GCP's limits (components/cluster/gcp_limits.py).
- Internal gateways: a private managed zone for the domain, created by the stack and visible to every region's
  network (the clusters' VPCs), holding the same record set with `internal_load_balancers` targets (each region's
  internal passthrough load balancer: its IP, TCP 443, network, project, region, `regionalL4ilb`). Cloud DNS judges
  an internal load balancer by the load balancer's own health check (routing policies overview, "Health checks"),
  which GKE creates for the gateway's Service (externalTrafficPolicy Local: every 3 s, unhealthy after 2 failures,
  kubernetes/ingress-gce pkg/healthchecksl4): `health_check` must stay unset (the provider's docs: it is "used with
  external endpoints"). The gateway's Service enables global access (components/mesh/istio.py; "make sure that you
  enable global access for regional load balancers", configure-routing-policies), and every pair of the regions'
  networks is peered both ways, so a client in one region's network reaches the other's load balancer after a
  failover. `check_routing_policy` holds the provider's argument rules the mocks cannot see, before anything is
  created. Failover follows the load balancer's health (a node with a ready gateway pod), not the models': the
  health route cannot be probed by a check turnout does not create.
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
    describe_records,
    hostname_of,
    probe_fields,
    probe_plans,
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


INTERNAL_LOAD_BALANCER_TYPE = "regionalL4ilb"  # GKE's internal passthrough Network Load Balancer
SERVING_PORT = "443"


def network_project(network: str) -> str:
    """The project of a network id or URL (`projects/<project>/global/networks/<name>`)."""
    parts = network.split("/")
    if "projects" not in parts or parts.index("projects") + 1 >= len(parts):
        raise ValueError(f"network {network!r} is not projects/<project>/global/networks/<name>")
    return parts[parts.index("projects") + 1]


def internal_target(ingress: RegionalIngress) -> dict:
    """An internal load balancer target: the region's gateway ILB in its cluster's network."""
    if ingress.network_id is None:
        raise ValueError(f"ingress {ingress.cluster!r} has no network: an internal target needs the cluster's VPC")
    return {
        "load_balancer_type": INTERNAL_LOAD_BALANCER_TYPE,
        "ip_address": ingress.address,
        "ip_protocol": "tcp",
        "port": SERVING_PORT,
        "network_url": ingress.network_id,
        "project": pulumi.Output.from_input(ingress.network_id).apply(network_project),
        "region": ingress.region,
    }


def internal_routing_policy(args: GlobalTrafficArgs) -> dict:
    """The record set's routing policy over the regions' internal load balancers (no health_check: Cloud DNS reads
    each load balancer's own)."""

    def targets(ingresses) -> dict:
        return {"internal_load_balancers": [internal_target(ingress) for ingress in ingresses]}

    def by_region(ingresses) -> list[dict]:
        regions: dict[str, list[RegionalIngress]] = defaultdict(list)
        for ingress in ingresses:
            regions[ingress.region].append(ingress)
        return [{"location": region, "health_checked_targets": targets(items)} for region, items in regions.items()]

    if args.routing == "failover":
        return {
            "primary_backup": {
                "primary": targets([i for i in args.ingresses if i.role == "primary"]),
                "backup_geos": by_region([i for i in args.ingresses if i.role == "secondary"]),
                "trickle_ratio": 0,
                "enable_geo_fencing_for_backups": False,
            }
        }
    if args.routing == "latency":
        return {"geos": by_region(list(args.ingresses)), "enable_geo_fencing": False}
    return {"wrrs": [{"weight": i.weight, "health_checked_targets": targets([i])} for i in args.ingresses]}


def _target_sets(policy: dict) -> list[dict]:
    """Every set of health-checked targets in a routing policy (primary, backup geos, geos, wrrs)."""
    found = []
    primary_backup = policy.get("primary_backup") or {}
    if primary_backup.get("primary"):
        found.append(primary_backup["primary"])
    for item in [*primary_backup.get("backup_geos", []), *policy.get("geos", []), *policy.get("wrrs", [])]:
        if item.get("health_checked_targets"):
            found.append(item["health_checked_targets"])
    return found


def check_routing_policy(policy: dict, visibility: str) -> None:
    """The provider's argument rules for a routing policy, which the mocks accept silently: internal load balancer
    targets only in a private zone and without `health_check` (it is "used with external endpoints"); external
    endpoints only with it; never both kinds in one policy; a regional load balancer names its region. ValueError:
    the component built it wrong, never the user."""
    sets = _target_sets(policy)
    internal = any(s.get("internal_load_balancers") for s in sets)
    external = any(s.get("external_endpoints") for s in sets)
    if internal and external:
        raise ValueError("a routing policy cannot mix internal load balancers and external endpoints")
    if internal and policy.get("health_check") is not None:
        raise ValueError("health_check is for external endpoints: internal load balancers are judged by their own")
    if internal and visibility != "private":
        raise ValueError("internal load balancer targets need a private zone")
    if external and policy.get("health_check") is None:
        raise ValueError("external endpoints need the policy's health_check")
    for targets in sets:
        for target in targets.get("internal_load_balancers") or []:
            regional = isinstance(target, dict) and target.get("load_balancer_type", "").startswith("regional")
            if regional and not target.get("region"):
                raise ValueError(f"a {target['load_balancer_type']} target names its region")


def private_zone_name(domain: str) -> str:
    """The private managed zone the stack creates for an internal gateway's domain."""
    return gcp_name("dns_managed_zone", f"{managed_zone_name(domain)}-private")


HEALTH_CHECK_KEYS = (
    "name",
    "description",
    "check_interval_sec",
    "timeout_sec",
    "unhealthy_threshold",
    "healthy_threshold",
    "https_health_check",
    "http_health_check",
    "source_regions",
)


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
    detection_seconds: int | pulumi.Output[int]
    ttl_seconds: int
    health_check: pulumi.Output[str]
    """The health check's self link."""

    def __init__(self, name: str, args: GlobalTrafficArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:globaltraffic:CloudDnsGlobalTraffic", name, None, opts)
        plan, probing, self.detection_seconds = probe_plans("gcp", args)
        self.hostname = hostname_of(args)
        self.ttl_seconds = plan.ttl_seconds
        # An explicit provider reads no stack config: hand it `gcp:project` (unset, it falls back to GOOGLE_PROJECT).
        gcp_provider = gcp.Provider(
            child(name, "gcp"), project=pulumi.Config("gcp").get("project"), opts=pulumi.ResourceOptions(parent=self)
        )
        apis = enable_apis(name, CLOUD_DNS_APIS, pulumi.ResourceOptions(parent=self, provider=gcp_provider))
        on_gcp = pulumi.ResourceOptions(parent=self, provider=gcp_provider, depends_on=apis)
        if args.exposure == "internal":
            self._internal(name, args, plan, on_gcp)
            return
        zone = gcp.dns.get_managed_zone_output(
            name=managed_zone_name(args.domain),
            opts=pulumi.InvokeOutputOptions(provider=gcp_provider, parent=self, depends_on=apis),
        )
        regions = source_regions(args.ingresses)
        check_name = child(name, "gateway-ready")
        if args.cells_health_route is None:
            check = health_check_args(check_name, plan, regions)
        else:  # blue/green colours: the health route or the status port, as the cells' exports decide
            build = lambda probe: health_check_args(check_name, probe, regions)  # noqa: E731
            check = probe_fields(probing, build, HEALTH_CHECK_KEYS)
        health = gcp.compute.HealthCheck(child(name, "health"), **check, opts=on_gcp)
        self.health_check = health.self_link
        policy = routing_policy(args, health.self_link)
        check_routing_policy(policy, "public")
        gcp.dns.RecordSet(
            child(name, "record"),
            managed_zone=zone.name,
            name=f"{self.hostname}.",
            type="A",
            ttl=plan.ttl_seconds,
            routing_policy=policy,
            opts=on_gcp,
        )
        extra = {ingress.cluster: {"healthCheckSourceRegions": regions} for ingress in args.ingresses}
        self.records = describe_records(args, plan if args.cells_health_route is None else probing, "A", extra)
        self._register()

    def _internal(
        self, name: str, args: GlobalTrafficArgs, plan: HealthCheckPlan, on_gcp: pulumi.ResourceOptions
    ) -> None:
        """A private zone visible to every region's network, the record set over the internal load balancers, and
        the networks peered pairwise so each region's clients reach the other's load balancer."""
        networks = [ingress.network_id for ingress in args.ingresses]
        if any(network is None for network in networks):
            raise ValueError("an internal gateway's Cloud DNS routing needs every region's network")
        self.health_check = pulumi.Output.from_input("")  # GKE's, per load balancer: none of the stack's
        zone = gcp.dns.ManagedZone(
            child(name, "zone"),
            name=private_zone_name(args.domain),
            dns_name=f"{args.domain}.",
            description=f"{args.domain} inside the stack's networks: the gateways' internal load balancers",
            visibility="private",
            private_visibility_config={"networks": [{"network_url": network} for network in networks]},
            opts=on_gcp,
        )
        ingresses = list(args.ingresses)
        for index, local in enumerate(ingresses):
            for remote in ingresses[index + 1 :]:
                for a, b in ((local, remote), (remote, local)):
                    gcp.compute.NetworkPeering(
                        child(name, a.cluster, "to", b.cluster),
                        name=gcp_name("network_peering", child(a.cluster, "to", b.cluster)),
                        network=a.network_id,
                        peer_network=b.network_id,
                        opts=on_gcp,
                    )
        policy = internal_routing_policy(args)
        check_routing_policy(policy, "private")
        gcp.dns.RecordSet(
            child(name, "record"),
            managed_zone=zone.name,
            name=f"{self.hostname}.",
            type="A",
            ttl=plan.ttl_seconds,
            routing_policy=policy,
            opts=on_gcp,
        )
        extra = {ingress.cluster: {"zone": private_zone_name(args.domain)} for ingress in args.ingresses}
        self.records = describe_records(args, plan, "A", extra)
        self._register()

    def _register(self) -> None:
        self.register_outputs(
            {
                "hostname": self.hostname,
                "records": self.records,
                "detection_seconds": self.detection_seconds,
                "ttl_seconds": self.ttl_seconds,
            }
        )
