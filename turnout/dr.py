"""Disaster recovery: from an RPO/RTO target, the cheapest tier that meets it, what that tier
creates, and the arithmetic that says so (`dr.json`, CONTRACT §2).

The four tiers are the AWS disaster-recovery whitepaper's strategies (backup and restore, pilot
light, warm standby, multi-site active/active), which Google's DR planning guide (cold, warm, hot)
and Azure's Well-Architected reliability guidance (active-passive cold/warm, active-active) name
alike. Each tier fixes the settings the stack creates: which regions run a cluster, how much
capacity the standby keeps, whether the cache replicates across regions, how often backups run,
the global health check's interval and failure threshold, and the DNS TTL. The estimates are sums
of terms computed from those settings and the clouds' documented timings (`CLOUD_TIMINGS`), and
`reasons` lists every term.

Who starts a failover (`turnout:dr.failover`): with `manual`, what DNS does not do by itself (promoting the
cache replica, scaling a pilot light up) waits for someone to run `turnout failover` (the "runbook" term). With
`automatic`, the cloud's own orchestration does it on the health alarms: on AWS an ARC Region switch plan
(components/dr/arc.py) whose trigger fires on the primary's health alarm and whose steps promote the cache and
scale the standby in parallel; the runbook term becomes the alarm's period, the trigger's evaluation and the
steps' documented durations (`Automation`, `_automated_terms`).

Pure domain: no Pulumi imports. The components create exactly `DrPlan.settings`; the policy rule
`dr-target-achievable` re-derives the detection and DNS terms, and the automated failover's trigger alarm and
steps, from the created resources.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from turnout.config import DrTarget, Endpoint, ModelVersion, Platform, Replicas, key_path
from turnout.errors import ConfigError
from turnout.units import format_duration

Tier = Literal["none", "backup-restore", "pilot-light", "warm-standby", "active-active"]
FailoverMode = Literal["manual", "automatic"]
TIERS: tuple[Tier, ...] = ("backup-restore", "pilot-light", "warm-standby", "active-active")
"""Cheapest first: each keeps more running in the standby region than the one before."""

Standby = Literal["none", "zero", "reduced", "full"]


@dataclass(frozen=True)
class CloudTimings:
    """Documented (or, where the cloud publishes none, stated and assumed) durations in seconds."""

    cluster_create: int
    """A new cluster's control plane, ready."""
    node_provision: int
    """A node pool scaling up by a node: instance launch, join, ready."""
    cache_restore: int
    """A new cache seeded from a backup."""
    cache_replication_lag: int | None
    """Cross-region cache replication lag; None where the cloud offers no cross-region replica."""
    cache_promotion: int
    """Promoting the cross-region replica to a writable primary (0 where every copy takes writes)."""
    backup_interval: int
    """The most frequent automatic cache backup the cloud offers."""
    backups_with_replication: bool = True
    """Whether a geo-replicated cache keeps backups (Azure allows persistence or geo-replication, not both)."""
    backups_leave_cluster: bool = True
    """Whether backups survive losing the cluster's region (not the in-cluster cache's own volume, nor Azure
    Managed Redis persistence, kept on the cache's disks in the region)."""
    backups_stay_why: str = "the cache's snapshots live on the cluster's own volume, lost with it"
    """Why backups that do not leave the region are lost with it (the RPO term's reason)."""
    replicas_writable: bool = False
    """Whether every cross-region copy takes writes (active geo-replication): a failover promotes nothing."""
    replication_source: str = ""
    """Where the cross-region replication's lag and promotion terms come from."""
    runbook: str = "someone starts `turnout failover`"
    """Who does by hand what DNS does not (the runbook term's reason)."""
    sources: tuple[str, ...] = ()


AZURE_GEO_REPLICATION_SOURCE = (
    'Azure Managed Redis active geo-replication: "All instances act as the local, primary caches", and "Data sync '
    'among replicas follows eventual consistency. The service does not provide SLA on sync time" '
    "(https://learn.microsoft.com/azure/redis/how-to-active-geo-replication)"
)

CLOUD_TIMINGS: dict[str, CloudTimings] = {
    "aws": CloudTimings(
        cluster_create=900,  # EKS: "typically 10 to 15 minutes"
        node_provision=300,
        cache_restore=1200,
        cache_replication_lag=1,  # Global Datastore: "typically under one second"
        cache_promotion=60,  # Global Datastore promotion "typically completes in less than a minute"
        backup_interval=86400,  # ElastiCache automatic backups: once a day
        sources=(
            "https://docs.aws.amazon.com/whitepapers/latest/disaster-recovery-workloads-on-aws/"
            "disaster-recovery-options-in-the-cloud.html",
            "https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/Redis-Global-Datastore.html",
            "https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-determining-health-of-endpoints.html",
        ),
    ),
    "gcp": CloudTimings(
        cluster_create=600,
        node_provision=180,
        cache_restore=900,  # Memorystore RDB import
        cache_replication_lag=None,  # Memorystore for Redis instances have no cross-region replica
        cache_promotion=120,
        backup_interval=3600,  # Memorystore RDB snapshot period: 1 h at the most frequent
        sources=(
            "https://cloud.google.com/architecture/dr-scenarios-planning-guide",
            "https://cloud.google.com/memorystore/docs/redis/about-rdb-snapshots",
        ),
    ),
    "azure": CloudTimings(
        cluster_create=600,
        node_provision=300,
        cache_restore=1200,  # a new Azure Managed Redis cache created (empty: nothing off-region to import)
        cache_replication_lag=5,  # active geo-replication is eventually consistent, "no SLA on sync time": assumed
        cache_promotion=0,  # active geo-replication: every member already takes writes
        backup_interval=3600,  # Managed Redis RDB persistence: every hour at the most frequent
        backups_with_replication=False,  # "Data persistence isn't supported" with active geo-replication
        backups_leave_cluster=False,
        backups_stay_why=(
            "Azure Managed Redis keeps its persistence on the cache's own disks in the region, lost with it "
            "(https://learn.microsoft.com/azure/redis/how-to-persistence)"
        ),
        replicas_writable=True,
        replication_source=AZURE_GEO_REPLICATION_SOURCE,
        runbook="someone scales the standby with kubectl (`turnout failover` takes no steps on azure)",
        sources=(
            "https://learn.microsoft.com/azure/well-architected/reliability/disaster-recovery",
            "https://learn.microsoft.com/azure/redis/how-to-active-geo-replication",
            "https://learn.microsoft.com/azure/traffic-manager/traffic-manager-monitoring",
        ),
    ),
    "kind": CloudTimings(
        cluster_create=60,
        node_provision=0,
        cache_restore=0,
        cache_replication_lag=None,
        cache_promotion=0,
        backup_interval=3600,  # RDB snapshots to the StatefulSet's own volume
        backups_leave_cluster=False,
    ),
}

# Health-check intervals each cloud's global routing accepts, by gateway exposure (components/globaltraffic).
# Route 53 probes every 10 or 30 s, but cannot reach private load balancers: internal gateways are judged by
# a CloudWatch alarm on the NLB's one-minute HealthyHostCount. Cloud DNS health checks of public IPs probe
# every 30 s at the fastest. Cloud DNS judges an internal load balancer by its own health check, which GKE creates
# for the gateway's Service (externalTrafficPolicy Local): every 3 s, down after 2 failures, values the stack cannot
# change (LOAD_BALANCER_CHECKS). Traffic Manager offers nothing for internal gateways.
HEALTH_CHECK_INTERVALS: dict[tuple[str, str], tuple[int, ...]] = {
    ("aws", "external"): (10, 30),
    ("aws", "internal"): (60, 120, 180, 300),
    ("gcp", "external"): (30, 60, 120, 300),
    ("gcp", "internal"): (3,),
    ("azure", "external"): (10, 30),
}
LOAD_BALANCER_CHECKS: dict[tuple[str, str], tuple[int, int]] = {("gcp", "internal"): (3, 2)}
"""(interval, failures) of health checks the cloud creates for the gateway's load balancer and the stack cannot set:
GKE's L4 internal load balancer for a Service with externalTrafficPolicy Local (kubernetes/ingress-gce,
pkg/healthchecksl4: gceLocalHcCheckIntervalSeconds 3, gceLocalHcUnhealthyThreshold 2)."""
GKE_L4_HEALTH_CHECK_SOURCE = (
    "GKE's internal passthrough load balancer health check for an externalTrafficPolicy Local Service: every 3 s, "
    "unhealthy after 2 failures (kubernetes/ingress-gce pkg/healthchecksl4/healthchecksl4.go), which Cloud DNS "
    "routing policies read for internal load balancers (https://cloud.google.com/dns/docs/routing-policies-overview)"
)

# Where failover DNS cannot probe the health route through the gateway and judges the load balancer's own health
# instead: GKE's internal load balancer is judged by the health check GKE gives it (of the gateway's nodes). AWS
# internal gateways are not here: Route 53's checkers cannot reach a private NLB, so a probe inside each region's VPC
# requests the health route and an alarm on its metric decides (HEALTH_PROBE_*).
LOAD_BALANCER_HEALTH = frozenset({("gcp", "internal")})
IN_VPC_PROBE = frozenset({("aws", "internal")})
HEALTH_PROBE_PERIOD = 60
"""Seconds between the in-VPC probe's requests (AWS internal gateways): an EventBridge `rate(1 minute)` schedule, the
shortest a rate expression takes."""
HEALTH_PROBE_TIMEOUT = 10
"""The probe function's timeout (its request's own is half of it): it publishes within this long of its start."""
HEALTH_PROBE_SOURCE = (
    "the in-VPC probe the stack creates: an EventBridge schedule every minute, the shortest rate expression "
    "(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html), a Lambda function with "
    "a 10 s timeout, and a CloudWatch alarm on its metric that Route 53's CLOUDWATCH_METRIC check reads "
    "(https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-private-hosted-zones.html)"
)

PLATFORM_INSTALL = 600
"""Istio, Knative, Flagger and the gateway's load balancer on a new cluster."""
ENDPOINTS_READY = 120
"""Model workloads scheduled, images pulled and ready."""
OPERATOR_DECISION = 900
"""Someone is paged, confirms a regional loss and starts the recovery: nothing automatic does it."""
RUNBOOK_START = 300
"""`turnout failover` started by the on-call engineer: what DNS does not do (pilot-light scale-up, cache
promotion or restore) waits for a decision."""
HPA_SCALE_OUT = 90
"""The autoscaler taking a warm standby from its reduced replicas to full capacity."""
REBUILD_DNS_TTL = 300
"""Record TTL of a stack without health-checked routing: clients keep the old answer this long."""

# Automated failover: the orchestrator each cloud offers to run the failover steps itself, and its timings.
AUTOMATION: dict[str, str] = {"aws": "arc-region-switch"}
"""Clouds whose stacks get an orchestrator for the failover steps (a plan `turnout failover` can start), and that
can run it on the health alarms (`turnout:dr.failover: automatic`)."""
ARC_REGIONS = 2
"""An ARC Region switch plan spans exactly two Regions (API `CreatePlan`, regions: "Fixed number of 2 items")."""
ROUTE53_METRIC_PERIOD = 60
"""Route 53 publishes a health check's `HealthCheckStatus` to CloudWatch once a minute, in us-east-1 only: the
shortest period an alarm on it can have."""
ROUTE53_METRIC_SOURCE = (
    'Route 53 Developer Guide, "Monitoring health checks using CloudWatch" (status at one-minute intervals; '
    "https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/monitoring-health-checks.html)"
)
ARC_TRIGGER_EVALUATION = 60
"""From the trigger alarm turning red to the plan's execution starting. AWS documents no bound: assumed, and said so."""
ARC_TRIGGER_SOURCE = (
    "assumed: ARC documents no delay between a trigger's alarm turning red and the execution starting "
    "(https://docs.aws.amazon.com/arc-region-switch/latest/api/API_Trigger.html)"
)
ARC_STEPS_SOURCE = (
    "ARC Region switch runs the plan's steps in one Parallel block "
    "(https://docs.aws.amazon.com/r53recovery/latest/dg/working-with-rs-execution-blocks.html)"
)
GLOBAL_DATASTORE_PROMOTION_SOURCE = (
    'ElastiCache Global Datastore: promotion "typically completes in less than a minute" '
    "(https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/Redis-Global-Datastore.html)"
)


HEALTH_AGGREGATE_PERIOD = 5
"""Seconds between the health aggregator's rounds of requests to every model endpoint (components/dr/health.py)."""
HEALTH_AGGREGATE_TIMEOUT = 3
"""Seconds the aggregator waits for each endpoint's answer."""
HEALTH_AGGREGATE_LAG = HEALTH_AGGREGATE_PERIOD + HEALTH_AGGREGATE_TIMEOUT
"""How late the health route can learn of an outage: the round after it starts, once its probes time out."""


@dataclass(frozen=True)
class Routing:
    """Health-checked global DNS routing over the regions' ingress load balancers."""

    policy: Literal["failover", "latency"]
    health_check_interval: int
    failure_threshold: int
    ttl: int
    aggregate_seconds: int = 0
    """What the probed health route adds before the cloud's first failed check: the health aggregator's lag
    (`HEALTH_AGGREGATE_LAG`) where the cloud probes the models through the gateway, 0 where it probes the load
    balancer's own health (GCP internal gateways: GKE's check of the load balancer)."""

    checked_by: str = ""
    """Where the check's timing comes from when the cloud, not the stack, creates it (GCP internal: GKE's), or how the
    stack's own probe is timed (AWS internal: the in-VPC probe)."""
    probe_seconds: int = 0
    """AWS internal gateways: what the in-VPC probe adds before the alarm's first breaching point, its schedule's
    period plus the function's timeout (`HEALTH_PROBE_PERIOD` + `HEALTH_PROBE_TIMEOUT`); 0 elsewhere."""

    @property
    def detection(self) -> int:
        return self.aggregate_seconds + self.probe_seconds + self.health_check_interval * self.failure_threshold


@dataclass(frozen=True)
class Settings:
    """What a tier creates."""

    primary_region: str
    standby_regions: tuple[str, ...]
    standby: Standby
    """Capacity in the standby regions: none (no cluster), zero (cluster, no model pods),
    reduced (one replica per serving version), full (serves traffic all the time)."""
    routing: Routing | None
    cache_replicas: tuple[str, ...] = ()
    """Regions holding a cross-region replica of the cache."""
    backup_interval: int | None = None
    """Seconds between cache backups; None without a cache or where the cache has none."""
    backup_retention_days: int = 0
    failover: FailoverMode = "manual"
    """Who starts a failover: an operator (`turnout failover`) or the orchestrator's trigger."""
    automation: Automation | None = None
    """The orchestrator the stack creates for the failover steps; None where the cloud or tier has none."""

    @property
    def cluster_regions(self) -> tuple[str, ...]:
        """Regions that get a cluster now (backup-restore builds the standby only after a loss)."""
        return (self.primary_region,) + (self.standby_regions if self.standby != "none" else ())

    def scaled_down(self, region: str) -> Standby | None:
        """`zero` or `reduced` for a standby region that keeps less than full capacity, else None."""
        if region in self.standby_regions and self.standby in ("zero", "reduced"):
            return self.standby
        return None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["clusterRegions"] = list(self.cluster_regions)
        return _camel(data)


@dataclass(frozen=True)
class Term:
    name: str
    seconds: int | None
    """None: unbounded (nothing in the stack recovers it)."""
    why: str
    source: str = ""
    """Where the duration comes from (a URL or a document's title), or why it is assumed."""
    parallel: str = ""
    """The block of steps this one runs in parallel with: a block counts as its longest term."""

    def line(self, objective: str) -> str:
        amount = "unbounded" if self.seconds is None else format_duration(self.seconds)
        why = self.why + (f", in parallel in {self.parallel}" if self.parallel else "")
        return f"{objective} {self.name}: {amount} ({why}{'; source: ' + self.source if self.source else ''})"


@dataclass(frozen=True)
class Trigger:
    """What starts the plan by itself: an alarm on each region's Route 53 health check status (in us-east-1, where
    Route 53 publishes it, whatever the stack's regions), red for the primary while green for the standby."""

    period: int
    evaluation_periods: int
    min_delay_minutes: int = 60
    """The least time between two automatic executions: one automatic failover, then people decide."""

    @property
    def seconds(self) -> int:
        """What the alarm adds to detection: the status metric lags the health check by up to its periods."""
        return self.period * self.evaluation_periods


@dataclass(frozen=True)
class Automation:
    """The orchestrator a stack creates for the failover steps (AWS: an ARC Region switch plan): `turnout failover`
    starts it, and with `failover: automatic` its trigger does."""

    orchestrator: str
    recovery_approach: Literal["activePassive", "activeActive"]
    """activePassive for pilot light and warm standby (activate the standby); activeActive (deactivate a region)."""
    primary_region: str
    regions: tuple[str, ...]
    steps: tuple[str, ...]
    """promote-cache (the Global Datastore member in the activating region), scale-models (the standby's model
    Deployments to the primary's replicas) and route-traffic (the plan's Route 53 health checks on the records)."""
    trigger: Trigger | None = None
    """None with `failover: manual`: the plan runs only when started."""


@dataclass(frozen=True)
class Estimate:
    tier: Tier
    settings: Settings
    rpo_terms: tuple[Term, ...]
    rto_terms: tuple[Term, ...]
    unavailable: str | None = None
    """Why this tier cannot be built for the stack (e.g. one region), or None."""

    @property
    def rpo(self) -> int | None:
        return _total(self.rpo_terms)

    @property
    def rto(self) -> int | None:
        return _total(self.rto_terms)

    def meets(self, target: DrTarget) -> bool:
        return (
            self.unavailable is None
            and self.rpo is not None
            and self.rto is not None
            and self.rpo <= target.rpo
            and self.rto <= target.rto
        )


@dataclass(frozen=True)
class DrPlan:
    target: DrTarget | None
    tier: Tier
    regions: tuple[str, ...]
    settings: Settings
    estimate: Estimate | None
    meets: bool
    reasons: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The `dr.json` document (CONTRACT §2), plus the settings the tier creates."""
        return {
            "target": None if self.target is None else {"rpoSeconds": self.target.rpo, "rtoSeconds": self.target.rto},
            "tier": self.tier,
            "regions": list(self.regions),
            "estimatedRpoSeconds": None if self.estimate is None else self.estimate.rpo,
            "estimatedRtoSeconds": None if self.estimate is None else self.estimate.rto,
            "meets": self.meets,
            "reasons": list(self.reasons),
            "settings": self.settings.to_json(),
        }


# The routing each tier creates. Pilot light fails over on a slower, cheaper check; active-active
# drops a region from latency answers quickly, with a shorter TTL.
TIER_ROUTING = {
    "pilot-light": Routing("failover", health_check_interval=30, failure_threshold=3, ttl=60),
    "warm-standby": Routing("failover", health_check_interval=10, failure_threshold=3, ttl=60),
    "active-active": Routing("latency", health_check_interval=10, failure_threshold=2, ttl=30),
}
TIER_STANDBY: dict[str, Standby] = {
    "backup-restore": "none",
    "pilot-light": "zero",
    "warm-standby": "reduced",
    "active-active": "full",
}
BACKUP_RETENTION_DAYS = 7


def routing_for(tier: Tier, cloud: str, exposure: str) -> Routing | None:
    """The tier's routing with the nearest health-check interval the cloud accepts for this exposure;
    None for a tier without routing, or where the cloud has no health-checked routing for it."""
    nominal = TIER_ROUTING.get(tier)
    intervals = HEALTH_CHECK_INTERVALS.get((cloud, exposure))
    if nominal is None or not intervals:
        return None
    interval = min((i for i in intervals if i >= nominal.health_check_interval), default=intervals[-1])
    lag = 0 if (cloud, exposure) in LOAD_BALANCER_HEALTH else HEALTH_AGGREGATE_LAG
    if (cloud, exposure) in IN_VPC_PROBE:  # the alarm's periods, after the probe's schedule and timeout
        return dataclasses.replace(
            nominal,
            health_check_interval=interval,
            aggregate_seconds=lag,
            probe_seconds=HEALTH_PROBE_PERIOD + HEALTH_PROBE_TIMEOUT,
            checked_by=HEALTH_PROBE_SOURCE,
        )
    if (cloud, exposure) in LOAD_BALANCER_CHECKS:  # the cloud's own check: its interval and failures, not the tier's
        interval, failures = LOAD_BALANCER_CHECKS[(cloud, exposure)]
        return dataclasses.replace(
            nominal, health_check_interval=interval, failure_threshold=failures, checked_by=GKE_L4_HEALTH_CHECK_SOURCE
        )
    return dataclasses.replace(nominal, health_check_interval=interval, aggregate_seconds=lag)


def automation_for(settings: Settings, cloud: str, failover: FailoverMode) -> Automation | None:
    """The orchestrator `settings` get on `cloud`: a plan over the two regions with the steps the tier needs, and a
    trigger on the primary's health alarm with `failover: automatic`; None where the cloud has none, or the tier
    has no standby and routing to switch to, or the stack spans more regions than a plan can."""
    orchestrator = AUTOMATION.get(cloud)
    routing = settings.routing
    regions = settings.cluster_regions
    if orchestrator is None or routing is None or settings.standby == "none" or len(regions) != ARC_REGIONS:
        return None
    steps = (
        (("promote-cache",) if settings.cache_replicas else ())
        + (("scale-models",) if settings.standby in ("zero", "reduced") else ())
        + ("route-traffic",)
    )
    trigger = Trigger(ROUTE53_METRIC_PERIOD, 1) if failover == "automatic" else None
    return Automation(
        orchestrator=orchestrator,
        recovery_approach="activeActive" if settings.standby == "full" else "activePassive",
        primary_region=settings.primary_region,
        regions=regions,
        steps=steps,
        trigger=trigger,
    )


def estimate(tier: Tier, platform: Platform, has_cache: bool, failover: FailoverMode = "manual") -> Estimate:
    """The settings `tier` creates for this platform, and its RPO and RTO, term by term."""
    timings = CLOUD_TIMINGS[platform.cloud]
    exposure = platform.serving.gateway.exposure
    primary, standby_regions = platform.regions[0], tuple(platform.regions[1:])
    replication = has_cache and tier != "backup-restore" and timings.cache_replication_lag is not None
    backups = timings.backup_interval if has_cache and (timings.backups_with_replication or not replication) else None
    settings = Settings(
        primary_region=primary,
        standby_regions=standby_regions,
        standby=TIER_STANDBY[tier],
        routing=routing_for(tier, platform.cloud, exposure),
        cache_replicas=standby_regions if replication else (),
        backup_interval=backups,
        backup_retention_days=BACKUP_RETENTION_DAYS if backups else 0,
        failover=failover,
    )
    settings = dataclasses.replace(settings, automation=automation_for(settings, platform.cloud, failover))
    unavailable = None
    if tier != "backup-restore" and not standby_regions:
        unavailable = f"{tier} needs a standby region: {key_path('platform.regions')} lists one"
    elif has_cache and tier in ("warm-standby", "active-active") and timings.cache_replication_lag is None:
        unavailable = (
            f"{tier} serves from the standby region at once, but {platform.cloud}'s cache has no cross-region "
            "replica there to serve with"
        )
    elif tier != "backup-restore" and settings.routing is None:
        unavailable = (
            f"{tier} needs health-checked global routing, which {platform.cloud} offers only for external gateways"
            f" ({key_path('platform.serving.gateway.exposure')}: external)"
            if platform.cloud == "azure"
            else f"{tier} needs health-checked global routing, which {platform.cloud} does not have"
        )
    return Estimate(
        tier, settings, _rpo_terms(settings, timings, has_cache), _rto_terms(settings, timings, has_cache), unavailable
    )


def _rpo_terms(settings: Settings, timings: CloudTimings, has_cache: bool) -> tuple[Term, ...]:
    if not has_cache:
        return (Term("data", 0, "no cache: the stack stores no data; models are images, config is in git"),)
    if settings.cache_replicas:
        return (
            Term(
                "replication lag",
                timings.cache_replication_lag,
                f"asynchronous cross-region cache replica in {', '.join(settings.cache_replicas)}"
                + (", assumed: no published bound" if timings.replicas_writable else ""),
                source=timings.replication_source,
            ),
        )
    if settings.backup_interval and timings.backups_leave_cluster:
        return (Term("backup interval", settings.backup_interval, "writes since the last cache backup are lost"),)
    if settings.backup_interval:
        return (Term("cache data", None, timings.backups_stay_why),)
    return (Term("cache data", None, "the cache has neither backups nor a cross-region replica"),)


def _detection_why(routing: Routing) -> str:
    checks = f"health check every {routing.health_check_interval} s × {routing.failure_threshold} failures"
    if routing.probe_seconds:
        return (
            f"the alarm on the in-VPC probe's metric, {routing.health_check_interval} s × {routing.failure_threshold} "
            f"periods, after the probe's schedule and timeout ({HEALTH_PROBE_PERIOD} + {HEALTH_PROBE_TIMEOUT} s) and "
            f"the health route's lag ({routing.aggregate_seconds} s: a round every {HEALTH_AGGREGATE_PERIOD} s, "
            f"{HEALTH_AGGREGATE_TIMEOUT} s per answer)"
        )
    if routing.checked_by:
        return f"the load balancer's own {checks}, of the gateway's nodes"
    if not routing.aggregate_seconds:
        return checks
    return (
        f"{checks} of the health route, which answers for the models up to {routing.aggregate_seconds} s late "
        f"(a round every {HEALTH_AGGREGATE_PERIOD} s, {HEALTH_AGGREGATE_TIMEOUT} s per answer)"
    )


def _restore_why(timings: CloudTimings, what: str) -> str:
    if timings.backups_leave_cluster:
        return f"{what} seeded from the last backup"
    return f"{what} created empty: its backups stayed in the lost region"


def _rto_terms(settings: Settings, timings: CloudTimings, has_cache: bool) -> tuple[Term, ...]:
    routing = settings.routing
    if settings.standby == "none":
        terms = [
            Term("decision", OPERATOR_DECISION, "no health-checked routing: an operator confirms the loss"),
            Term("cluster", timings.cluster_create, "create a cluster in the recovery region"),
            Term("nodes", timings.node_provision, "its node pools"),
            Term("platform", PLATFORM_INSTALL, "Istio, Knative and the gateway's load balancer"),
            Term("endpoints", ENDPOINTS_READY, "model workloads ready"),
        ]
        if has_cache:
            terms.append(Term("cache restore", timings.cache_restore, _restore_why(timings, "a new cache")))
        terms.append(Term("dns", REBUILD_DNS_TTL, "clients keep the old address for the record's TTL"))
        return tuple(terms)
    if routing is None:
        return (Term("detection", None, "no health-checked global routing fails over to the standby"),)
    terms = [
        Term("detection", routing.detection, _detection_why(routing), source=routing.checked_by),
        Term("dns", routing.ttl, "clients keep the failed region's answer for the TTL"),
    ]
    promote = settings.cache_replicas and not timings.replicas_writable
    manual = (["scale the pilot light up"] if settings.standby == "zero" else []) + (
        (
            (["promote the cache replica"] if promote else [])
            if settings.cache_replicas
            else ["restore the cache from its last backup"]
        )
        if has_cache
        else []
    )
    automation = settings.automation
    if manual and automation is not None and automation.trigger is not None:
        return (*terms, *_automated_terms(settings, automation, automation.trigger, timings))
    if manual:  # nothing starts these by itself: DNS fails over, the cache and the pods do not
        terms.append(Term("runbook", RUNBOOK_START, timings.runbook + " to " + " and ".join(manual)))
    if has_cache and settings.cache_replicas and timings.replicas_writable:
        terms.append(
            Term(
                "cache promotion",
                0,
                "none: the standby region's copy is a member of an active geo-replication group and already takes "
                "writes",
                source=timings.replication_source,
            )
        )
    elif has_cache and settings.cache_replicas:
        terms.append(Term("cache promotion", timings.cache_promotion, "the standby region's replica becomes writable"))
    elif has_cache:
        terms.append(Term("cache restore", timings.cache_restore, _restore_why(timings, "no replica: a cache")))
    if settings.standby == "zero":
        terms += [
            Term("nodes", timings.node_provision, "node pools scale up for the model pods"),
            Term("endpoints", ENDPOINTS_READY, "model workloads ready"),
        ]
    elif settings.standby == "reduced":
        terms.append(Term("scale-out", HPA_SCALE_OUT, "the standby's autoscalers grow from one replica to full"))
    return tuple(terms)


PLAN_STEPS = "the plan's steps"
"""The Parallel block of an automated failover: the cache promotion and the standby's scaling run side by side."""


def _automated_terms(
    settings: Settings, automation: Automation, trigger: Trigger, timings: CloudTimings
) -> tuple[Term, ...]:
    """What replaces the runbook when the orchestrator's trigger starts the failover: the trigger alarm (beyond
    detection), the trigger's evaluation, then the steps in parallel, each with its source."""
    terms = [
        Term(
            "trigger alarm",
            trigger.seconds,
            f"a CloudWatch alarm on the primary's Route 53 HealthCheckStatus, {trigger.period} s × "
            f"{trigger.evaluation_periods} period(s): the metric follows the health check by up to that much",
            source=ROUTE53_METRIC_SOURCE,
        ),
        Term(
            "trigger",
            ARC_TRIGGER_EVALUATION,
            f"the {automation.orchestrator} plan's trigger starts its execution in the standby region",
            source=ARC_TRIGGER_SOURCE,
        ),
    ]
    if "promote-cache" in automation.steps:
        terms.append(
            Term(
                "cache promotion",
                timings.cache_promotion,
                "turnout's Lambda promotes the Global Datastore member of the activating region",
                source=GLOBAL_DATASTORE_PROMOTION_SOURCE,
                parallel=PLAN_STEPS,
            )
        )
    if settings.standby == "zero":
        terms.append(
            Term(
                "standby capacity",
                timings.node_provision + ENDPOINTS_READY,
                "the EKS resource-scaling step gives the model Deployments the primary's replicas: node pools scale "
                f"up ({format_duration(timings.node_provision)}) and model workloads get ready "
                f"({format_duration(ENDPOINTS_READY)})",
                source=ARC_STEPS_SOURCE,
                parallel=PLAN_STEPS,
            )
        )
    elif settings.standby == "reduced":
        terms.append(
            Term(
                "scale-out",
                HPA_SCALE_OUT,
                "the EKS resource-scaling step raises the standby's autoscalers from one replica to the primary's",
                source=ARC_STEPS_SOURCE,
                parallel=PLAN_STEPS,
            )
        )
    return tuple(terms)


def check_failover(target: DrTarget, platform: Platform) -> None:
    """`failover: automatic` only where the cloud can run the failover itself, over as many regions as it can."""
    if target.failover != "automatic":
        return
    path = key_path("dr.failover")
    if platform.cloud not in AUTOMATION:
        able = ", ".join(f"{cloud} ({name})" for cloud, name in AUTOMATION.items())
        raise ConfigError(
            path,
            f"automatic on {platform.cloud}",
            f"manual: turnout creates no failover orchestration on {platform.cloud} that could promote the cache "
            f"and scale the standby by itself (automatic on: {able})",
        )
    if len(platform.regions) > ARC_REGIONS:
        raise ConfigError(
            path,
            f"automatic with {len(platform.regions)} regions ({', '.join(platform.regions)})",
            f"manual, or exactly {ARC_REGIONS} regions in {key_path('platform.regions')}: an ARC Region switch plan "
            f"spans exactly {ARC_REGIONS} Regions",
        )


def check_achievable(target: DrTarget, platform: Platform, has_cache: bool) -> None:
    """Refuse targets no topology can meet, naming the term that fails (status 2)."""
    check_failover(target, platform)
    intervals = HEALTH_CHECK_INTERVALS.get((platform.cloud, platform.serving.gateway.exposure))
    if target.rpo == 0 and has_cache:
        raise ConfigError(
            key_path("dr.rpo"),
            "0s",
            "at least 1s with a cache: every cross-region Redis replica the clouds offer is asynchronous, "
            "so some writes are always in flight (or remove turnout:cache)",
        )
    fastest = min(intervals) if intervals else None
    if fastest and target.rto < fastest:
        raise ConfigError(
            key_path("dr.rto"),
            format_duration(target.rto),
            f"at least {format_duration(fastest)} on {platform.cloud} with a "
            f"{platform.serving.gateway.exposure} gateway: failover detection alone takes that long "
            f"(the fastest health check, every {fastest} s, 1 failure)",
        )


def assess(target: DrTarget | None, platform: Platform, has_cache: bool = False) -> DrPlan:
    """The cheapest tier whose estimates meet `target`; without a target, tier `none`."""
    regions = tuple(platform.regions)
    if target is None:
        settings = Settings(
            primary_region=regions[0],
            standby_regions=regions[1:],
            standby="full",  # every listed region runs the full stack; nothing routes between them
            routing=None,
            backup_interval=(CLOUD_TIMINGS[platform.cloud].backup_interval or None) if has_cache else None,
            backup_retention_days=BACKUP_RETENTION_DAYS
            if has_cache and CLOUD_TIMINGS[platform.cloud].backup_interval
            else 0,
        )
        return DrPlan(
            None,
            "none",
            regions,
            settings,
            None,
            True,
            (
                "no target declared (turnout:dr is absent), so there is nothing to meet",
                f"{len(regions)} region(s) ({', '.join(regions)}) each run the full stack with no failover "
                "between them: a regional loss is recovered by re-running `pulumi up`, so RPO and RTO are unbounded",
            ),
        )
    check_achievable(target, platform, has_cache)
    candidates = [estimate(tier, platform, has_cache, target.failover) for tier in TIERS]
    chosen = next((c for c in candidates if c.meets(target)), None)
    meets = chosen is not None
    if chosen is None:  # build the most capable tier the stack allows, and say what falls short
        chosen = [c for c in candidates if c.unavailable is None][-1]
    reasons = [
        f"target: rpo {format_duration(target.rpo)}, rto {format_duration(target.rto)}",
        *(term.line("rpo") for term in chosen.rpo_terms),
        *(term.line("rto") for term in chosen.rto_terms),
        f"{chosen.tier}: estimated rpo {_amount(chosen.rpo)}, rto {_amount(chosen.rto)}",
    ]
    reasons.append(_failover_line(target.failover, chosen, platform.cloud))
    for cheaper in candidates[: TIERS.index(chosen.tier)]:
        reasons.append(f"not {cheaper.tier}: {_shortfall(cheaper, target)}")
    if not meets:
        reasons.append(f"the target is not met: {_shortfall(chosen, target)}")
    return DrPlan(target, chosen.tier, regions, chosen.settings, chosen, meets, tuple(reasons))


def _shortfall(candidate: Estimate, target: DrTarget) -> str:
    if candidate.unavailable:
        return candidate.unavailable
    parts = []
    if candidate.rpo is None or candidate.rpo > target.rpo:
        parts.append(f"rpo {_amount(candidate.rpo)} > {format_duration(target.rpo)}")
    if candidate.rto is None or candidate.rto > target.rto:
        worst = max((t for t in candidate.rto_terms), key=lambda t: float("inf") if t.seconds is None else t.seconds)
        parts.append(f"rto {_amount(candidate.rto)} > {format_duration(target.rto)} (largest term: {worst.name})")
    return "; ".join(parts)


def _failover_line(failover: FailoverMode, chosen: Estimate, cloud: str) -> str:
    """Who starts the failover, and what the orchestrator (if any) does."""
    automation = chosen.settings.automation
    if automation is None:
        if cloud not in AUTOMATION:
            return f"failover {failover}: turnout creates no failover orchestration on {cloud}"
        why = (
            f"an {AUTOMATION[cloud]} plan spans exactly {ARC_REGIONS} regions"
            if len(chosen.settings.cluster_regions) > ARC_REGIONS
            else f"{chosen.tier} keeps no standby region and routing to switch to"
        )
        return f"failover {failover}: no {AUTOMATION[cloud]} plan ({why})"
    plan = (
        f"an {automation.orchestrator} plan ({automation.recovery_approach}, {' → '.join(automation.regions)}; "
        f"steps: {', '.join(automation.steps)})"
    )
    trigger = automation.trigger
    if trigger is None:
        return f"failover manual: {plan} runs when someone starts it (`turnout failover`)"
    return (
        f"failover automatic: {plan} starts by itself when the alarm on {automation.primary_region}'s Route 53 "
        f"HealthCheckStatus ({trigger.period} s × {trigger.evaluation_periods}) turns red while the standby's is "
        f"green, at most once every {trigger.min_delay_minutes} minutes"
    )


def _total(terms: tuple[Term, ...]) -> int | None:
    """Terms add up, except a parallel block, which counts as its longest term."""
    if any(t.seconds is None for t in terms):
        return None
    blocks: dict[str, int] = {}
    for term in terms:
        if term.parallel:
            blocks[term.parallel] = max(blocks.get(term.parallel, 0), term.seconds)
    return sum(t.seconds for t in terms if not t.parallel) + sum(blocks.values())


def _amount(seconds: int | None) -> str:
    return "unbounded" if seconds is None else format_duration(seconds)


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {_camel_key(k): _camel(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_camel(v) for v in value]
    return value


def _camel_key(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


STANDBY_LABEL = "turnout.dev/dr-standby"
"""On model workloads in a standby region: `zero` (pilot light) or `reduced` (warm standby)."""


def region_endpoints(endpoints: dict[str, Endpoint], settings: Settings, region: str) -> dict[str, Endpoint]:
    """The endpoints as `region` runs them: as configured, or in a scaled-down standby with no pods
    (pilot light) or one each (warm standby), growing to the configured maximum once traffic arrives."""
    standby = settings.scaled_down(region)
    if standby is None:
        return endpoints
    low = 0 if standby == "zero" else 1

    def version(v: ModelVersion) -> ModelVersion:
        high = max(v.replicas.max or 1, low, 1)
        return dataclasses.replace(v, replicas=Replicas(min=low, max=high))

    return {
        name: dataclasses.replace(e, versions={n: version(v) for n, v in e.versions.items()})
        for name, e in endpoints.items()
    }
