"""dr-target-achievable: the stack's topology meets its declared RPO and RTO.

The DR record (`turnout-dr` ConfigMap) carries the target and the estimate term by term. The rule
does not take the estimate on trust: it re-derives the failover-detection and DNS terms from the
health checks and records the stack really creates (a Cloud DNS record set over internal load balancers counts the
health check GKE gives them, which the stack cannot change), and fails when the corrected estimate exceeds
the target, when the record says the target is not met, or when routing it relies on is missing.
Where the record counts the health route's lag (`settings.routing.aggregateSeconds`: failover DNS probes the
models through the gateway), it re-derives that from the health aggregators the stack creates (their round period
plus per-answer timeout, from their ConfigMap); a record that counts the route while the stack serves none has no
bounded detection (the cloud's HTTPS check could never succeed).

Where the record counts an in-VPC probe (`settings.routing.probeSeconds`: AWS internal gateways, whose Route 53 check
reads an alarm on a probe's metric), it re-derives it from the probes the stack creates (their EventBridge schedule's
rate plus their function's timeout); a record that counts one while the stack creates none, or one that requests
something other than the health route, has no bounded detection.

With `failover: automatic` the record counts an orchestrator's trigger instead of someone starting the runbook
(`settings.automation`). The rule re-derives that too, from the ARC Region switch plan the stack creates: the plan
exists, has a trigger, the trigger's alarm exists and takes no longer than the record counted (period × evaluation
periods), and the plan has a step for each thing the record says it does (promote the cache, scale the standby).
A missing piece leaves nothing to start or do that step: the recovery time is unbounded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from ._dr import (
    ARC_PLAN,
    METRIC_ALARM,
    STEP_BLOCKS,
    dr_records,
    health_aggregate_lags,
    health_probes,
    plan_blocks,
    trigger_alarms,
)
from ._kubernetes import get_path, number

MANDATORY_IN = ("staging", "prod")  # a declared target that cannot be met is a release blocker

ROUTE53_HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
TRAFFIC_MANAGER = "azure-native:trafficmanager:Profile"

# Health checks by type: (interval, failure threshold) from their properties. A Route 53 check of a
# CloudWatch alarm (internal gateways) takes the alarm's timing: period × evaluation periods.
HEALTH_CHECKS = {
    ROUTE53_HEALTH_CHECK: lambda p: (p.get("requestInterval"), p.get("failureThreshold")),
    METRIC_ALARM: lambda p: (p.get("period"), p.get("evaluationPeriods")),
    "gcp:compute/healthCheck:HealthCheck": lambda p: (p.get("checkIntervalSec"), p.get("unhealthyThreshold")),
    TRAFFIC_MANAGER: lambda p: (
        get_path(p, "monitorConfig", "intervalInSeconds"),
        (number(get_path(p, "monitorConfig", "toleratedNumberOfFailures")) or 0) + 1,
    ),
}
# DNS answers by type: their TTL.
DNS_RECORDS = {
    "aws:route53/record:Record": lambda p: p.get("ttl"),
    "gcp:dns/recordSet:RecordSet": lambda p: p.get("ttl"),
    TRAFFIC_MANAGER: lambda p: get_path(p, "dnsConfig", "ttl"),
}
GCP_RECORD_SET = "gcp:dns/recordSet:RecordSet"
# Cloud DNS judges an internal load balancer target by the load balancer's own health check, which GKE creates for the
# gateway's Service (externalTrafficPolicy Local): every 3 s, unhealthy after 2 failures (kubernetes/ingress-gce
# pkg/healthchecksl4). The stack cannot change it, so a record set over internal load balancers implies it.
GKE_L4_HEALTH_CHECK = (3, 2)


def _has_internal_targets(value) -> bool:
    """Whether a routing policy (as the engine hands it over) targets internal load balancers anywhere."""
    if isinstance(value, Mapping):
        return bool(value.get("internalLoadBalancers")) or any(_has_internal_targets(v) for v in value.values())
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return any(_has_internal_targets(v) for v in value)
    return False


DEFAULT_HEALTH_CHECK = {  # what the clouds use when the property is left out
    ROUTE53_HEALTH_CHECK: (30, 3),
    METRIC_ALARM: (60, 1),
    "gcp:compute/healthCheck:HealthCheck": (5, 2),
    TRAFFIC_MANAGER: (30, 4),
}


HEALTH_ROUTE_PATH = "/ready"
HEALTH_ROUTE_PORT = 443


def _probe_target(resource) -> tuple[str, float | None, str, bool] | None:
    """(protocol, port, path, names a host) of an endpoint probe as created; None for what is not one (calculated and
    alarm checks, record sets)."""
    props, kind = resource.props, resource.resource_type
    if kind == ROUTE53_HEALTH_CHECK:
        if props.get("type") in ("CLOUDWATCH_METRIC", "CALCULATED"):
            return None
        return (
            str(props.get("type")),
            number(props.get("port")),
            str(props.get("resourcePath")),
            bool(props.get("enableSni")),
        )
    if kind == "gcp:compute/healthCheck:HealthCheck":
        https = props.get("httpsHealthCheck")
        if isinstance(https, Mapping):
            return ("HTTPS", number(https.get("port")), str(https.get("requestPath")), bool(https.get("host")))
        return ("HTTP", None, "", False)
    if kind == TRAFFIC_MANAGER:
        monitor = props.get("monitorConfig") or {}
        headers = [h for h in monitor.get("customHeaders") or [] if str(get_path(h, "name")).lower() == "host"]
        return (str(monitor.get("protocol")), number(monitor.get("port")), str(monitor.get("path")), bool(headers))
    return None


def probes_off_the_route(resources) -> list:
    """Endpoint probes that do not request the health route (HTTPS on 443, `/ready`, with the health host)."""
    off = []
    for r in resources:
        target = _probe_target(r)
        if target is not None and target != ("HTTPS", HEALTH_ROUTE_PORT, HEALTH_ROUTE_PATH, True):
            off.append(r)
    return off


def created_detection_and_ttl(resources) -> tuple[float | None, float | None]:
    """The slowest failover detection and the longest TTL among what the stack creates."""
    detections, ttls = [], []
    alarms_checked = {
        r.props.get("cloudwatchAlarmName")
        for r in resources
        if r.resource_type == ROUTE53_HEALTH_CHECK and r.props.get("type") == "CLOUDWATCH_METRIC"
    }
    for r in resources:
        if r.resource_type == METRIC_ALARM and r.props.get("name") not in alarms_checked:
            continue  # an alarm no failover health check reads
        if r.resource_type == ROUTE53_HEALTH_CHECK and r.props.get("type") in ("CLOUDWATCH_METRIC", "CALCULATED"):
            continue  # timed by its alarm, or by its children
        if r.resource_type in HEALTH_CHECKS:
            interval, threshold = HEALTH_CHECKS[r.resource_type](r.props)
            default_interval, default_threshold = DEFAULT_HEALTH_CHECK[r.resource_type]
            interval = number(interval) or default_interval
            threshold = number(threshold) or default_threshold
            detections.append(interval * threshold)
        if r.resource_type == GCP_RECORD_SET and _has_internal_targets(r.props.get("routingPolicy")):
            detections.append(GKE_L4_HEALTH_CHECK[0] * GKE_L4_HEALTH_CHECK[1])
        if r.resource_type in DNS_RECORDS:
            ttl = number(DNS_RECORDS[r.resource_type](r.props))
            if ttl is not None:
                ttls.append(ttl)
    return (max(detections) if detections else None), (max(ttls) if ttls else None)


def automated_failover_delay(automation, resources, tier: str, report_violation: ReportViolation) -> float | None:
    """How much longer the created plan's trigger takes than the record counted (0 when as counted), or None when
    what starts or does the automated failover is missing (each missing piece reported)."""
    trigger = automation.get("trigger")
    if not isinstance(trigger, dict):
        return 0.0  # manual: the record counts someone starting the plan
    steps = [step for step in automation.get("steps") or () if step in STEP_BLOCKS]
    plans = [r for r in resources if r.resource_type == ARC_PLAN]
    if not plans:
        report_violation(f"{tier} counts an ARC Region switch plan that starts by itself, but the stack creates none.")
        return None
    alarms = {r.props.get("name"): r.props for r in resources if r.resource_type == METRIC_ALARM}
    delays, missing = [], False
    for plan in plans:
        blocks = plan_blocks(plan.props)
        for step in steps:
            if STEP_BLOCKS[step] not in blocks:
                report_violation(
                    f"{tier} counts the plan's {step} step, but plan {plan.props.get('name')} has no "
                    f"{STEP_BLOCKS[step]} step.",
                    plan.urn,
                )
                missing = True
        read = trigger_alarms(plan.props, alarms)
        if not read:
            report_violation(f"plan {plan.props.get('name')} has no trigger: nothing starts it by itself.", plan.urn)
            missing = True
        for alarm in read:
            if alarm is None:
                report_violation(
                    f"plan {plan.props.get('name')}'s trigger reads an alarm the stack does not create.", plan.urn
                )
                missing = True
                continue
            delays.append((number(alarm.get("period")) or 60) * (number(alarm.get("evaluationPeriods")) or 1))
    if missing:
        return None
    claimed = (number(trigger.get("period")) or 0) * (number(trigger.get("evaluationPeriods")) or 0)
    return max(0.0, max(delays, default=claimed) - claimed)


def in_vpc_probe_delay(routing, resources, tier: str, urn, report_violation: ReportViolation) -> float | None:
    """How much later than the record counted the in-VPC probes (AWS internal gateways) can publish an outage (0 when
    the record counts none, or as counted), or None when the record counts a probe the stack does not create, or one
    that requests something other than the health route."""
    claimed = number(routing.get("probeSeconds")) or 0
    if not claimed:
        return 0.0
    delay, off = health_probes(resources)
    for function in off:
        report_violation(
            f"{tier} counts the in-VPC probe of the health route, but {function.name} requests something else (not "
            f"{HEALTH_ROUTE_PORT}, {HEALTH_ROUTE_PATH}, with the health host): a region whose models stop answering "
            "stays in DNS.",
            function.urn,
        )
    if delay is None:
        report_violation(
            f"{tier} counts an in-VPC probe of the health route ({claimed:g}s), but the stack creates no scheduled "
            "probe (an EventBridge rate schedule and its function, tagged turnout.dev/purpose: health-probe): "
            "nothing publishes the metric the failover alarm reads.",
            urn,
        )
    if delay is None or off:
        return None
    return max(0.0, delay - claimed)


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    records = dr_records(args.resources)
    if not records:
        return  # no target declared
    detection, ttl = created_detection_and_ttl(args.resources)
    for resource, document in records[:1]:  # every cluster carries the same record
        if document is None:
            report_violation("the DR record turnout-system/turnout-dr is unreadable.", resource.urn)
            continue
        target = document.get("target") or {}
        rpo_target, rto_target = number(target.get("rpoSeconds")), number(target.get("rtoSeconds"))
        if rpo_target is None or rto_target is None:
            report_violation("the DR record names no target (rpoSeconds, rtoSeconds).", resource.urn)
            continue
        tier = document.get("tier", "?")
        rpo, rto = number(document.get("estimatedRpoSeconds")), number(document.get("estimatedRtoSeconds"))
        routing = get_path(document, "settings", "routing")
        if isinstance(routing, dict) and rto is not None:
            claimed_aggregate = number(routing.get("aggregateSeconds")) or 0
            claimed_detection = (number(routing.get("healthCheckInterval")) or 0) * (
                number(routing.get("failureThreshold")) or 0
            )
            claimed_ttl = number(routing.get("ttl")) or 0
            lags = health_aggregate_lags(args.resources)
            if detection is None:
                report_violation(f"{tier} relies on health-checked failover, but the stack creates no health check.")
                rto = None
            elif claimed_aggregate and not lags:
                report_violation(
                    f"{tier} counts the health route's lag ({claimed_aggregate:g}s), but the stack serves no health "
                    "route (turnout-system/turnout-health): failover DNS probes a path nothing answers.",
                    resource.urn,
                )
                rto = None
            elif claimed_aggregate and probes_off_the_route(args.resources):
                for probe in probes_off_the_route(args.resources):
                    report_violation(
                        f"{tier} counts on the health route, but {probe.name} probes something else (not HTTPS on "
                        f"{HEALTH_ROUTE_PORT} with the health host, {HEALTH_ROUTE_PATH}): a region whose models stop "
                        "answering stays in DNS.",
                        probe.urn,
                    )
                rto = None
            elif claimed_aggregate and float("inf") in lags:
                report_violation(
                    f"{tier}: a health aggregator's configuration is unreadable, so nothing bounds when the health "
                    "route notices an outage.",
                    resource.urn,
                )
                rto = None
            else:
                aggregate = max(0.0, max(lags, default=0.0) - claimed_aggregate) if claimed_aggregate else 0.0
                rto += max(0.0, detection - claimed_detection) + aggregate + max(0.0, (ttl or 0) - claimed_ttl)
                probe = in_vpc_probe_delay(routing, args.resources, tier, resource.urn, report_violation)
                rto = None if probe is None else rto + probe
        automation = get_path(document, "settings", "automation")
        if isinstance(automation, dict) and rto is not None:
            delay = automated_failover_delay(automation, args.resources, tier, report_violation)
            rto = None if delay is None else rto + delay
        regions = ", ".join(document.get("regions") or [])
        if rpo is None or rpo > rpo_target:
            loss = "unbounded data" if rpo is None else f"up to {rpo:g}s of data"
            report_violation(f"{tier} over {regions} loses {loss}; the target RPO is {rpo_target:g}s.", resource.urn)
        if rto is None or rto > rto_target:
            recovery = "has no bounded recovery time" if rto is None else f"recovers in {rto:g}s"
            report_violation(f"{tier} over {regions} {recovery}; the target RTO is {rto_target:g}s.", resource.urn)


dr_target_achievable = StackValidationPolicy(
    name="dr-target-achievable",
    description="The stack's topology meets its declared RPO and RTO.",
    enforcement_level=EnforcementLevel.ADVISORY,  # MANDATORY_IN raises it in staging and prod
    validate=validate,
    remediation_steps="Add a standby region to platform.regions, relax turnout:dr, or read dr.json's reasons "
    "for the term that falls short.",
)
