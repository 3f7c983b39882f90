"""Health-checked global routing over the regions' ingress load balancers, behind one interface.

Every cloud's component takes `GlobalTrafficArgs` and exposes `hostname` (the wildcard name the records
answer), `records` (what the plan shows: routing, each region's target, role and weight), `detection_seconds`
(how long the cloud takes to declare a region down, from the settings the stack creates) and `ttl_seconds`.
The DR estimate reads the last two: a region's outage reaches clients within detection + TTL.

What is checked, and how:

- DR failover routing (`health_route=True`): the region's health route (components/dr/health.py) through the
  gateway, HTTPS on 443 with the stack's health host as Host and SNI, `GET /ready`, which answers 200 only while
  every model endpoint of the region answers through that gateway. A region whose certificate is missing (the TLS
  handshake fails), whose gateway is down, or whose models all (or any) stop answering is taken out of DNS. Route 53
  resolves the check's name to reach a region, so each cluster has its own health host
  (`turnout-health-<cluster>.<domain>`, a plain record to its load balancer); Cloud DNS and Traffic Manager probe
  each region's address with the shared `turnout-health.<domain>` as Host (and SNI). The detection time adds the
  aggregator's lag (`turnout.dr.HEALTH_AGGREGATE_LAG`) to interval x failures.
- AWS internal gateways: Route 53's checkers cannot reach a private NLB. With the health route (DR stacks) a probe
  inside each region's VPC requests it through the NLB every minute and publishes a metric; an alarm on that metric
  decides (components/globaltraffic/aws_probe.py), so failover follows the models. Without it (blue/green colours,
  whose cells do not export their private subnets), a CloudWatch alarm on the NLB's healthy HTTPS targets decides
  (the NLB's own check, of the gateway pods, not of the models).
- Blue/green colours (`cells_health_route`): every cell with an external gateway on a delegated domain serves the
  health route and exports it with its ingresses (`ingresses[].health`: hosts, scheme, port, path); the global stack
  reads that through its StackReferences and, while every cell exports the route for this domain, probes it as DR
  routing does. Where a cell does not (deployed by a turnout without it, or on another domain), every check falls
  back to the Istio ingress gateway's readiness endpoint, plain HTTP on its status port (15021, `/healthz/ready`),
  which the gateway Service exposes on its load balancer next to 80 and 443 (200 while Envoy is up and configured by
  istiod), and the global stack's dr.json says which cell and why. One probe for all the stack's checks: Cloud DNS
  has one health check per record set and Traffic Manager one monitor per profile, and one detection time is what
  the stack can state.

`check_global_traffic(cloud, args)` validates the args against what the cloud allows before anything is
created and returns the settings the component will create; `build_global_traffic(cloud, args)` picks
the component (none on kind: a single local cluster needs no global routing).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pulumi

from components.dr.health import HEALTH_PATH, health_host
from turnout.config import key_path
from turnout.dr import HEALTH_AGGREGATE_LAG, HEALTH_PROBE_PERIOD, HEALTH_PROBE_TIMEOUT
from turnout.errors import ConfigError, describe

Role = Literal["primary", "secondary", "active"]
Routing = Literal["failover", "latency", "weighted"]
Exposure = Literal["internal", "external"]

# Where these settings sit in the stack file; error messages name the key under it.
GLOBAL_TRAFFIC_KEY = key_path("globalTraffic")
EXPOSURE_KEY = key_path("platform.serving.gateway.exposure")
DOMAIN_KEY = key_path("platform.serving.gateway.domain")

# The Istio gateway chart's status port (gateway_service_values lists it on the load balancer) and its
# readiness path: plain HTTP, answering 200 while Envoy is ready.
GATEWAY_STATUS_PORT = 15021
GATEWAY_READY_PATH = "/healthz/ready"
HEALTH_CHECK_PROTOCOL = "HTTP"
HEALTH_ROUTE_PORT = 443  # the health route: HTTPS through the gateway's Gateway server for *.<domain>
# Per-probe timeout where the cloud lets us choose (Cloud DNS and Traffic Manager): valid for every interval.
HEALTH_CHECK_TIMEOUT_SECONDS = 5

GKE_L4_FAILURES = 2  # GKE's internal load balancer health check (ETP Local): unhealthy after 2 failures
FAILURE_THRESHOLDS = range(1, 11)  # Route 53 1-10; GCP unhealthy threshold 1-10; Traffic Manager 0-9 tolerated + 1
TTL_SECONDS = range(0, 2**31)  # RFC 2181's 0..2^31-1, as Route 53, Cloud DNS and Traffic Manager accept
WEIGHTS = range(0, 256)  # Route 53's weights; Cloud DNS takes any non-negative weight, Traffic Manager 1-1000
NAME_PATTERN = r"[a-z]([-a-z0-9]{0,38}[a-z0-9])?"  # a DNS label (Traffic Manager's relative name), GCP-safe
DOMAIN_PATTERN = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+"

CLOUDS = ("aws", "gcp", "azure")
# Each cloud's component, by module and class (imported on use: each pulls in its provider SDK).
GLOBAL_TRAFFIC_COMPONENTS = {
    "aws": ("components.globaltraffic.route53", "Route53GlobalTraffic"),
    "gcp": ("components.globaltraffic.cloud_dns", "CloudDnsGlobalTraffic"),
    "azure": ("components.globaltraffic.traffic_manager", "TrafficManagerGlobalTraffic"),
}


ROUTING_SUFFIX = "-models"
NAME_MAX = 40


def routing_name(stack: str) -> str:
    """The name a stack's global routing derives every resource name from: `<stack>-models`, made a DNS label of at
    most 40 characters (lowercased, other characters as '-', a stable hash of the whole when cut), so any stack
    name Pulumi accepts works. Derived, never written by the user: an error about it would name no real key."""
    name = f"{stack}{ROUTING_SUFFIX}"
    if re.fullmatch(NAME_PATTERN, name):
        return name
    cleaned = re.sub("-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", stack.lower())).strip("-")
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    head = cleaned[: NAME_MAX - len(digest) - len(ROUTING_SUFFIX) - 1].rstrip("-")
    fitted = f"{head}-{digest}{ROUTING_SUFFIX}" if head else f"m{digest}{ROUTING_SUFFIX}"
    return fitted if fitted[0].isalpha() else f"m{fitted[1:]}"


@dataclass(frozen=True, kw_only=True)
class RegionalIngress:
    """One region's way in: the ingress gateway's load balancer of that region's cluster."""

    cluster: str
    """Cluster name (`naming.cluster_name`): names the region's record and health check."""
    region: str
    """The cluster's region: latency routing answers clients from the nearest one."""
    address: pulumi.Input[str]
    """The gateway load balancer's address (`ServingPlatform.ingress_address`): a hostname on AWS, an IP
    on GCP and Azure."""
    role: Role = "active"
    """failover routing: "primary" (serves while healthy) or "secondary" (serves when the primary is down);
    latency and weighted routing: "active"."""
    weight: int = 1
    """weighted routing: share of answers, 0-255 (0 takes the region out of rotation); ignored otherwise."""
    network_id: pulumi.Input[str] | None = None
    """The network the region's clients are in (the cluster's VPC on AWS): a private zone must be associated with
    it for them to resolve the records. None where unknown."""
    subnet_ids: tuple[pulumi.Input[str], ...] = ()
    """AWS internal gateways with the health route: the cluster VPC's private subnets, where the in-VPC probe runs."""
    switch_health_check: pulumi.Input[str | None] | None = None
    """AWS: the health check an ARC Region switch plan sets for this region (components/dr/arc.py). A region that
    serves while healthy (failover primary, latency, weighted) then stays in DNS only while both its probe and this
    check are healthy, so an execution moves traffic even while the region still answers. None: the probe decides."""


@dataclass(frozen=True, kw_only=True)
class GlobalTrafficArgs:
    name: str
    """Names every resource (and the Traffic Manager profile's DNS label): a DNS label of at most 40 characters,
    derived from the stack name with `routing_name`."""
    domain: str
    """The DNS zone the records go into (`models.example.com`); model hosts are `<endpoint>.<domain>`, so
    the records are `*.<domain>`. The zone itself is the user's: delegated and named by them."""
    ingresses: tuple[RegionalIngress, ...]
    routing: Routing = "failover"
    """failover: the primary region while healthy, else a secondary; latency: the nearest healthy region;
    weighted: healthy regions in proportion to their weights (blue/green across colours)."""
    health_check_path: str = GATEWAY_READY_PATH
    """HTTP path probed on the gateway's status port (without `health_route`)."""
    health_route: bool = False
    """Probe the region's health route (components/dr/health.py: HTTPS through the gateway, SNI the health host,
    `/ready`, 200 only while every model answers) instead of the gateway's readiness port. The clusters must serve
    it: DR stacks create it on every cluster (`HealthRoute`)."""
    cells_health_route: pulumi.Input[bool] | None = None
    """Blue/green colours: whether every cell serves the health route for this domain (what their StackReferences
    export). Resolving to True, the checks probe it as with `health_route`; False, the gateway's status port. None:
    `health_route` decides."""
    health_check_interval_seconds: int | None = None
    """Seconds between probes; None: the cloud's standard interval (30 s; 60 s for AWS internal)."""
    failure_threshold: int = 3
    """Consecutive failed probes before a region is declared down (1-10)."""
    ttl_seconds: int = 60
    """How long resolvers may cache an answer: a failover reaches clients up to this much later."""
    exposure: Exposure
    """The gateway's load balancer scheme (`platform.serving.gateway.exposure`): decides how health is checked."""


@dataclass(frozen=True, kw_only=True)
class HealthCheckPlan:
    """The health-check and DNS settings a component creates, as the cloud will apply them."""

    mechanism: str
    """What decides a region's health: "health-route" or "endpoint" probes, "cloudwatch-alarm" (AWS internal) or
    "load-balancer" (GCP internal: the health check GKE gives the internal load balancer, which Cloud DNS reads)."""
    protocol: str
    port: int
    path: str
    interval_seconds: int
    failure_threshold: int
    timeout_seconds: int | None
    detection_seconds: int
    """How long the cloud takes to declare a region down: interval x consecutive failures, plus the health
    aggregator's lag when the health route is probed."""
    ttl_seconds: int
    host: str | None = None
    """The Host header and SNI sent (the shared health host) where the health route is probed; None otherwise."""
    aggregate_seconds: int = 0
    """The health aggregator's lag included in `detection_seconds` (0 without the health route)."""
    probe_seconds: int = 0
    """AWS internal with the health route: the in-VPC probe's schedule period plus its timeout, included in
    `detection_seconds`."""


def _interval_rule(cloud: str, exposure: str) -> tuple[int, str, Callable[[int], bool]]:
    """(default, what is allowed, predicate) for the probe interval on `cloud` with `exposure`."""
    if cloud == "aws" and exposure == "internal":
        # The alarm's period: the NLB sends its metrics every 60 s, so a standard alarm's period is k x 60 s.
        return (
            60,
            "a multiple of 60 from 60 to 3600 (an alarm on the NLB's one-minute metric)",
            (lambda seconds: 60 <= seconds <= 3600 and seconds % 60 == 0),
        )
    if cloud == "gcp" and exposure == "internal":
        # Cloud DNS reads the internal load balancer's own health check, which GKE creates: every 3 s, fixed.
        return (
            3,
            "3 (GKE creates the internal load balancer's health check, every 3 s; the stack cannot change it)",
            (lambda seconds: seconds == 3),
        )
    if cloud == "gcp":
        # A health check with source regions (what Cloud DNS needs for public IPs) probes every 30 s or slower.
        return (
            30,
            "30 to 300 (Cloud DNS public-IP health checks probe every 30 s at the fastest)",
            (lambda seconds: 30 <= seconds <= 300),
        )
    service = "Route 53" if cloud == "aws" else "Traffic Manager"
    return 30, f"10 or 30 ({service}'s fast and standard intervals)", (lambda seconds: seconds in (10, 30))


def _check_int(value: object, path: str, allowed: range, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise ConfigError(path, describe(value), what)
    return value


def _check_exposure(cloud: str, exposure: str) -> None:
    if exposure not in ("internal", "external"):
        raise ConfigError(EXPOSURE_KEY, describe(exposure), "internal or external")
    if exposure == "external" or cloud in ("aws", "gcp"):
        return
    # Traffic Manager's probes come from the internet and it answers public DNS only.
    # Front Door Premium reaches private origins through Private Link, but only behind its public endpoint.
    reason = (
        "Traffic Manager probes endpoints from the internet and cannot route to or check private addresses; "
        "Front Door Premium would reach them through Private Link, but only behind a public endpoint"
    )
    raise ConfigError(
        EXPOSURE_KEY,
        f'"internal" with global traffic routing on {cloud}',
        f'"external" ({reason})',
    )


def _check_roles(args: GlobalTrafficArgs, cloud: str, key: str) -> None:
    roles = [ingress.role for ingress in args.ingresses]
    for index, ingress in enumerate(args.ingresses):
        path = f"{key}.ingresses[{index}].role"
        if args.routing == "failover" and ingress.role not in ("primary", "secondary"):
            raise ConfigError(path, describe(ingress.role), '"primary" or "secondary" with failover routing')
        if args.routing != "failover" and ingress.role != "active":
            raise ConfigError(path, describe(ingress.role), f'"active" with {args.routing} routing')
    if args.routing != "failover":
        return
    if roles.count("primary") != 1:
        raise ConfigError(
            f"{key}.ingresses", f"{roles.count('primary')} primary regions", "exactly one primary with failover routing"
        )
    secondaries = roles.count("secondary")
    if cloud == "aws" and secondaries != 1:
        raise ConfigError(
            f"{key}.ingresses",
            f"{secondaries} secondary regions on aws",
            "exactly one secondary: Route 53 failover answers one PRIMARY and one SECONDARY record per name",
        )
    if secondaries < 1:
        raise ConfigError(f"{key}.ingresses", "no secondary region", "at least one secondary with failover routing")


def _check_weights(args: GlobalTrafficArgs, key: str) -> None:
    for index, ingress in enumerate(args.ingresses):
        _check_int(ingress.weight, f"{key}.ingresses[{index}].weight", WEIGHTS, "an integer from 0 to 255")
    if args.routing == "weighted" and not any(ingress.weight for ingress in args.ingresses):
        raise ConfigError(
            f"{key}.ingresses", "every weight 0", "at least one region with a weight above 0 with weighted routing"
        )


def check_global_traffic(cloud: str, args: GlobalTrafficArgs, key: str = GLOBAL_TRAFFIC_KEY) -> HealthCheckPlan:
    """The settings `cloud`'s component will create for `args`, or one ConfigError naming the key under `key`
    and what the cloud allows."""
    if cloud not in CLOUDS:
        raise ConfigError(key_path("platform.cloud"), describe(cloud), "aws, gcp or azure for global traffic routing")
    if not isinstance(args.name, str) or not re.fullmatch(NAME_PATTERN, args.name):
        # The name is derived (`routing_name`), never written by the user: a bad one is a bug, not bad input.
        raise ValueError(
            f"GlobalTrafficArgs.name {args.name!r} is not a DNS label of at most 40 lowercase letters, digits and "
            "'-': derive it with routing_name(stack)"
        )
    if not isinstance(args.domain, str) or not re.fullmatch(DOMAIN_PATTERN, args.domain):
        raise ConfigError(
            DOMAIN_KEY, describe(args.domain), "a DNS domain of two or more labels, such as models.example.com"
        )
    _check_exposure(cloud, args.exposure)
    if args.routing not in ("failover", "latency", "weighted"):
        raise ConfigError(f"{key}.routing", describe(args.routing), "failover, latency or weighted")
    if not args.ingresses:
        raise ConfigError(f"{key}.ingresses", "no regions", "at least one region's ingress")
    clusters = [ingress.cluster for ingress in args.ingresses]
    duplicates = sorted({cluster for cluster in clusters if clusters.count(cluster) > 1})
    if duplicates:
        raise ConfigError(f"{key}.ingresses", f"cluster {duplicates[0]!r} twice", "one ingress per cluster")
    _check_roles(args, cloud, key)
    _check_weights(args, key)

    path = args.health_check_path
    if not isinstance(path, str) or not re.fullmatch(r"/[!-~]{0,254}", path):
        raise ConfigError(
            f"{key}.healthCheck.path", describe(path), "an HTTP path starting with '/', at most 255 characters"
        )
    default, allowed, valid = _interval_rule(cloud, args.exposure)
    interval = default if args.health_check_interval_seconds is None else args.health_check_interval_seconds
    if isinstance(interval, bool) or not isinstance(interval, int) or not valid(interval):
        raise ConfigError(f"{key}.healthCheck.intervalSeconds", describe(interval), f"on {cloud}: {allowed}")
    threshold = _check_int(
        args.failure_threshold, f"{key}.healthCheck.failureThreshold", FAILURE_THRESHOLDS, "an integer from 1 to 10"
    )
    ttl = _check_int(args.ttl_seconds, f"{key}.ttlSeconds", TTL_SECONDS, "an integer from 0 to 2147483647")

    if cloud == "gcp" and args.exposure == "internal":
        if threshold != GKE_L4_FAILURES:
            raise ConfigError(
                f"{key}.healthCheck.failureThreshold",
                describe(threshold),
                f"{GKE_L4_FAILURES} on gcp with an internal gateway (GKE's health check of its internal load "
                "balancer, which Cloud DNS reads, is unhealthy after 2 failures; the stack cannot change it)",
            )
        return HealthCheckPlan(
            mechanism="load-balancer",
            protocol="HTTP",
            port=0,  # the gateway Service's healthCheckNodePort, which Kubernetes allocates
            path="/healthz",
            interval_seconds=interval,
            failure_threshold=threshold,
            timeout_seconds=1,
            detection_seconds=interval * threshold,
            ttl_seconds=ttl,
        )
    if cloud == "aws" and args.exposure == "internal" and args.health_route:
        # The in-VPC probe of the health route, and an alarm of `interval` periods on its one-minute metric.
        probe = HEALTH_PROBE_PERIOD + HEALTH_PROBE_TIMEOUT
        return HealthCheckPlan(
            mechanism="probe-alarm",
            protocol="CLOUDWATCH_METRIC",
            port=HEALTH_ROUTE_PORT,
            path=HEALTH_PATH,
            interval_seconds=interval,
            failure_threshold=threshold,
            timeout_seconds=HEALTH_PROBE_TIMEOUT,
            detection_seconds=HEALTH_AGGREGATE_LAG + probe + interval * threshold,
            ttl_seconds=ttl,
            host=health_host(args.domain),
            aggregate_seconds=HEALTH_AGGREGATE_LAG,
            probe_seconds=probe,
        )
    if cloud == "aws" and args.exposure == "internal":
        return HealthCheckPlan(
            mechanism="cloudwatch-alarm",
            protocol="CLOUDWATCH_METRIC",
            port=443,
            path="",
            interval_seconds=interval,
            failure_threshold=threshold,
            timeout_seconds=None,
            detection_seconds=interval * threshold,
            ttl_seconds=ttl,
        )
    if args.health_route or args.cells_health_route is not None:
        return HealthCheckPlan(
            mechanism="health-route",
            protocol="HTTPS",
            port=HEALTH_ROUTE_PORT,
            path=HEALTH_PATH,
            interval_seconds=interval,
            failure_threshold=threshold,
            timeout_seconds=None if cloud == "aws" else HEALTH_CHECK_TIMEOUT_SECONDS,
            detection_seconds=HEALTH_AGGREGATE_LAG + interval * threshold,
            ttl_seconds=ttl,
            host=health_host(args.domain),
            aggregate_seconds=HEALTH_AGGREGATE_LAG,
        )
    return HealthCheckPlan(
        mechanism="endpoint",
        protocol=HEALTH_CHECK_PROTOCOL,
        port=GATEWAY_STATUS_PORT,
        path=path,
        interval_seconds=interval,
        failure_threshold=threshold,
        timeout_seconds=None if cloud == "aws" else HEALTH_CHECK_TIMEOUT_SECONDS,
        # Traffic Manager tolerates threshold - 1 failures and declares the endpoint degraded on the next one.
        detection_seconds=interval * threshold,
        ttl_seconds=ttl,
    )


def probe_plans(
    cloud: str, args: GlobalTrafficArgs
) -> tuple[HealthCheckPlan, pulumi.Output[HealthCheckPlan], int | pulumi.Output[int]]:
    """(the plan checked, the plan the checks probe with, its detection seconds). For blue/green colours
    (`cells_health_route`) the probe is known only once the cells' outputs are: the health route while every cell
    serves it, else the gateway's status port (the plan without the route); otherwise it is the plan checked."""
    plan = check_global_traffic(cloud, args)
    if args.cells_health_route is None or plan.host is None:
        return plan, pulumi.Output.from_input(True).apply(lambda _: plan), plan.detection_seconds
    fallback = check_global_traffic(cloud, dataclasses.replace(args, health_route=False, cells_health_route=None))
    chosen = pulumi.Output.from_input(args.cells_health_route).apply(lambda served: plan if served else fallback)
    return plan, chosen, chosen.apply(lambda probe: probe.detection_seconds)


def probe_fields(chosen: pulumi.Output, build: Callable[[Any], dict], keys: tuple[str, ...]) -> dict:
    """A resource's arguments `build` makes from the probing plan, one Output per key in `keys` (None where the plan's
    arguments leave it out, as a status-port probe leaves out SNI): the resource's shape stays fixed."""
    built = chosen.apply(build)
    return {key: built.apply(lambda fields, key=key: fields.get(key)) for key in keys}


def build_global_traffic(
    cloud: str, args: GlobalTrafficArgs, opts: pulumi.ResourceOptions | None = None, key: str = GLOBAL_TRAFFIC_KEY
) -> pulumi.ComponentResource | None:
    """The cloud's global traffic component for `args`, or None on kind (one local cluster, nothing to route).

    The args are checked first, so a setting the cloud refuses fails before anything is created, naming its
    key under `key`."""
    if cloud == "kind":
        return None
    check_global_traffic(cloud, args, key)
    module, cls = GLOBAL_TRAFFIC_COMPONENTS[cloud]
    return getattr(importlib.import_module(module), cls)(args.name, args, opts)


def hostname_of(args: GlobalTrafficArgs) -> str:
    """The name the records answer: every model host `<endpoint>.<domain>`."""
    return f"*.{args.domain}"


def health_check_row(plan: HealthCheckPlan) -> dict:
    """How a record's health check is described in the plan."""
    return {
        "mechanism": plan.mechanism,
        "protocol": plan.protocol,
        "port": plan.port,
        "path": plan.path,
        "intervalSeconds": plan.interval_seconds,
        "failureThreshold": plan.failure_threshold,
        "detectionSeconds": plan.detection_seconds,
        **({"host": plan.host, "aggregateSeconds": plan.aggregate_seconds} if plan.host else {}),
        **({"probeSeconds": plan.probe_seconds} if plan.probe_seconds else {}),
    }


def describe_records(
    args: GlobalTrafficArgs,
    plan: HealthCheckPlan | pulumi.Output[HealthCheckPlan],
    record_type: str,
    extra: dict[str, dict] | None = None,
) -> pulumi.Output[list[dict]]:
    """What the plan shows per region: its record's routing, target, role or weight, TTL and health check (the plan
    the checks probe with, an Output for blue/green colours); `extra` adds cloud-specific fields by cluster (values
    may be Outputs, such as a health check's id, which `turnout failover` reads)."""
    health_check = plan.apply(health_check_row) if isinstance(plan, pulumi.Output) else health_check_row(plan)
    rows = []
    for ingress in args.ingresses:
        row = {
            "name": hostname_of(args),
            "type": record_type,
            "routing": args.routing,
            "cluster": ingress.cluster,
            "region": ingress.region,
            "role": ingress.role,
            "weight": ingress.weight if args.routing == "weighted" else None,
            "ttl": args.ttl_seconds,
        }
        fields = pulumi.Output.from_input((extra or {}).get(ingress.cluster, {}))
        rows.append(
            pulumi.Output.all(ingress.address, fields, health_check).apply(
                lambda resolved, row=row: {**row, "healthCheck": resolved[2], **resolved[1], "target": resolved[0]}
            )
        )
    return pulumi.Output.all(*rows).apply(list)


def regional_ingresses(
    clusters: list[tuple[str, str]],
    addresses: dict[str, pulumi.Input[str]],
    routing: Routing,
    networks: dict[str, pulumi.Input[str]] | None = None,
    switch_checks: dict[str, pulumi.Input[str | None]] | None = None,
    subnets: dict[str, tuple[pulumi.Input[str], ...]] | None = None,
) -> tuple[RegionalIngress, ...]:
    """One ingress per (cluster, region), in fleet order, with the roles `routing` needs: for failover the first
    cluster is the primary and the others secondaries; otherwise every region is active (weight 1). `networks`:
    each cluster's network id, where known; `switch_checks`: each region's Region switch health check, if any."""
    return tuple(
        RegionalIngress(
            cluster=cluster,
            region=region,
            address=addresses[cluster],
            role=("primary" if index == 0 else "secondary") if routing == "failover" else "active",
            network_id=(networks or {}).get(cluster),
            switch_health_check=(switch_checks or {}).get(region),
            subnet_ids=(subnets or {}).get(cluster, ()),
        )
        for index, (cluster, region) in enumerate(clusters)
    )


def exported(component: pulumi.ComponentResource | None) -> dict | None:
    """What a stack exports about its global routing (None without any, as on kind)."""
    if component is None:
        return None
    return {
        "hostname": component.hostname,
        "records": component.records,
        "detectionSeconds": component.detection_seconds,
        "ttlSeconds": component.ttl_seconds,
    }
