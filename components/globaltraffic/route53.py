"""Route 53 health-checked routing over each region's ingress NLB, in the user's own hosted zone.

- Zone: looked up by name (`aws.route53.get_zone`), public for an external gateway, private for an internal
  one; the user creates and delegates it, the stack only writes `*.<domain>` into it.
- Records: one CNAME per region (set identifier: the cluster) to the NLB hostname, with the failover
  (PRIMARY/SECONDARY), latency (the cluster's region) or weighted policy. CNAME rather than an alias: an
  alias answers with the ELB's own 60 s TTL, while the DR estimate needs the TTL the stack sets.
- Health, external gateway, DR routing (`health_route`): a Route 53 HTTPS check of the region's health route,
  port 443, `/ready`, with SNI (`enable_sni`): its name is the cluster's own health host
  (`turnout-health-<cluster>.<domain>`, a plain CNAME to the region's NLB written next to the routed records, which
  a name of its own outranks the wildcard for), so Route 53 resolves it to that region and sends it as Host header
  and in the TLS ClientHello (Route 53 API reference, HealthCheckConfig: FullyQualifiedDomainName and EnableSNI).
  The Gateway picks its `*.<domain>` server by SNI: a region without the certificate fails the handshake.
  Every 10 or 30 s, down after `failure_threshold` failures.
- Health, external gateway, blue/green colours (`cells_health_route`): the same HTTPS check of each cell cluster's
  health route with SNI on its own health host, with that host's plain CNAME to the cell's NLB in the global zone,
  while every cell exports the route for this domain; else an HTTP check of the gateway's status port (15021,
  `/healthz/ready`) on the NLB hostname (the check's arguments are Outputs of what the cells export: its type is
  replaced when a cell starts serving the route).
- Health, internal gateway: Route 53's checkers run on the internet and cannot reach private addresses
  (Route 53 Developer Guide, "Configuring failover in a private hosted zone"); its documented alternative
  is a health check on a CloudWatch alarm. DR routing (`health_route`): the alarm reads the metric of a probe in the
  region's VPC that requests the health route through the NLB with SNI every minute (components/globaltraffic/
  aws_probe.py). Blue/green colours: each region gets an alarm on its NLB's `HealthyHostCount`
  (the HTTPS target group, minimum < 1), period `interval` (one-minute metric: a multiple of 60 s),
  `failure_threshold` evaluation periods, missing data as breaching; the NLB and target group are found by
  the tags the AWS Load Balancer Controller puts on them.
- Private zone (internal gateway): associated with every region's network (the clusters' VPCs, which the stack
  creates, so nobody could have associated them before), or clients there could not resolve the records at all.
- Region switch (DR stacks on AWS, components/dr/arc.py): a region that serves while healthy (failover PRIMARY,
  latency, weighted) answers only while a CALCULATED check of its probe and the plan's own health check for the
  region is healthy (both children), so executing the plan moves DNS; a SECONDARY keeps its probe alone, so DNS
  still fails over on the probe by itself. ARC creates its checks after the plan: until then the probe decides.
- Exported per record, for `turnout failover`: `healthCheckId` (the probe), and `healthCheckAlarm` ({name, region};
  null for endpoint checks), so the runbook reads each region's health without searching for it.
- Every provider signs in as the stack's `aws:` identity; every name fits its AWS limit (`aws_limits`).
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.cluster.aws_identity import stack_identity
from components.cluster.aws_limits import aws_name
from components.dr.health import cluster_health_host
from components.globaltraffic import (
    GlobalTrafficArgs,
    HealthCheckPlan,
    RegionalIngress,
    describe_records,
    hostname_of,
    probe_fields,
    probe_plans,
)
from components.globaltraffic.aws_probe import health_probe
from turnout.naming import child

FAILOVER_TYPES = {"primary": "PRIMARY", "secondary": "SECONDARY"}
# What the AWS Load Balancer Controller tags its NLB and target groups with: the Service and the resource.
GATEWAY_SERVICE = "istio-system/istio-ingressgateway"
CONTROLLER_CLUSTER_TAG = "elbv2.k8s.aws/cluster"
CONTROLLER_STACK_TAG = "service.k8s.aws/stack"
CONTROLLER_RESOURCE_TAG = "service.k8s.aws/resource"
SERVING_PORT = 443


def routing_policy(routing: str, ingress: RegionalIngress) -> dict:
    """The record's routing policy arguments for `ingress`."""
    if routing == "failover":
        return {"failover_routing_policies": [{"type": FAILOVER_TYPES[ingress.role]}]}
    if routing == "latency":
        return {"latency_routing_policies": [{"region": ingress.region}]}
    return {"weighted_routing_policies": [{"weight": ingress.weight}]}


def controller_tags(cluster: str, resource: str) -> dict[str, str]:
    """The tags the load balancer controller puts on the gateway Service's `resource` in `cluster`."""
    return {CONTROLLER_CLUSTER_TAG: cluster, CONTROLLER_STACK_TAG: GATEWAY_SERVICE, CONTROLLER_RESOURCE_TAG: resource}


TARGET_KEYS = ("type", "fqdn", "port", "resource_path", "enable_sni")


def health_check_target(plan: HealthCheckPlan, ingress: RegionalIngress, domain: str, address=None) -> dict:
    """What a region's endpoint check requests: its health route over HTTPS with SNI (the cluster's own health host,
    which resolves to its NLB), or without the health route the gateway's status port on the NLB hostname (`address`
    where it is already resolved)."""
    if plan.host is None:
        fqdn = ingress.address if address is None else address
        return {"type": plan.protocol, "fqdn": fqdn, "port": plan.port, "resource_path": plan.path}
    return {
        "type": "HTTPS",
        "fqdn": cluster_health_host(ingress.cluster, domain),
        "port": plan.port,
        "resource_path": plan.path,
        "enable_sni": True,
    }


class Route53GlobalTraffic(pulumi.ComponentResource):
    hostname: str
    records: pulumi.Output[list[dict]]
    detection_seconds: int | pulumi.Output[int]
    ttl_seconds: int
    zone_id: pulumi.Output[str]

    def __init__(self, name: str, args: GlobalTrafficArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:globaltraffic:Route53GlobalTraffic", name, None, opts)
        plan, probing, self.detection_seconds = probe_plans("aws", args)
        self.hostname = hostname_of(args)
        self.ttl_seconds = plan.ttl_seconds
        self._prefix = name
        self._region_providers: dict[str, aws.Provider] = {}
        # Route 53 is global: its zone, checks and records go through the first region's provider.
        dns = self._region_provider(args.ingresses[0].region)
        zone = aws.route53.get_zone_output(
            name=args.domain,
            private_zone=args.exposure == "internal",
            opts=pulumi.InvokeOutputOptions(provider=dns, parent=self),
        )
        self.zone_id = zone.zone_id
        on_dns = pulumi.ResourceOptions(parent=self, provider=dns)
        if args.exposure == "internal":
            # A private zone answers only inside the networks associated with it.
            for ingress in args.ingresses:
                if ingress.network_id is not None:
                    aws.route53.ZoneAssociation(
                        child(name, ingress.cluster, "zone"),
                        zone_id=zone.zone_id,
                        vpc_id=ingress.network_id,
                        vpc_region=ingress.region,
                        opts=on_dns,
                    )
        # What `turnout failover` reads per region: the health check's id, and the alarm behind it if any.
        failover: dict[str, dict] = {}
        for ingress in args.ingresses:
            alarm = None
            if plan.mechanism == "probe-alarm":
                health, alarm = self._probe_health_check(ingress, plan, on_dns)
            elif plan.mechanism == "cloudwatch-alarm":
                health, alarm = self._alarm_health_check(ingress, plan.interval_seconds, plan.failure_threshold, on_dns)
            else:
                target = (
                    health_check_target(plan, ingress, args.domain)
                    if args.cells_health_route is None
                    else self._colour_target(probing, ingress, args.domain)
                )
                health = aws.route53.HealthCheck(
                    child(name, ingress.cluster, "health"),
                    **target,
                    request_interval=plan.interval_seconds,
                    failure_threshold=plan.failure_threshold,
                    tags={"Name": aws_name("tag-value", child(name, ingress.cluster))},
                    opts=on_dns,
                )
                if plan.host is not None:
                    # The check's own name for this region: a plain record, no routing policy, to its NLB.
                    aws.route53.Record(
                        child(name, ingress.cluster, "health-host"),
                        zone_id=zone.zone_id,
                        name=cluster_health_host(ingress.cluster, args.domain),
                        type="CNAME",
                        ttl=plan.ttl_seconds,
                        records=[ingress.address],
                        opts=on_dns,
                    )
            aws.route53.Record(
                child(name, ingress.cluster),
                zone_id=zone.zone_id,
                name=self.hostname,
                type="CNAME",
                ttl=plan.ttl_seconds,
                records=[ingress.address],
                set_identifier=aws_name("route53-set-identifier", ingress.cluster),
                health_check_id=self._with_switch(ingress, health, on_dns),
                **routing_policy(args.routing, ingress),
                opts=on_dns,
            )
            failover[ingress.cluster] = {
                "setIdentifier": aws_name("route53-set-identifier", ingress.cluster),
                "failover": FAILOVER_TYPES.get(ingress.role),
                "healthCheckId": health.id,
                "healthCheckAlarm": None if alarm is None else {"name": alarm.name, "region": ingress.region},
            }
        self.records = describe_records(args, plan if args.cells_health_route is None else probing, "CNAME", failover)
        self.register_outputs(
            {
                "hostname": self.hostname,
                "records": self.records,
                "detection_seconds": self.detection_seconds,
                "ttl_seconds": self.ttl_seconds,
            }
        )

    @staticmethod
    def _colour_target(probing: pulumi.Output[HealthCheckPlan], ingress: RegionalIngress, domain: str) -> dict:
        """A colour's check arguments, as Outputs of the probe the cells' exports decide (route or status port)."""
        resolved = pulumi.Output.all(probing, ingress.address)
        return probe_fields(
            resolved, lambda both: health_check_target(both[0], ingress, domain, address=both[1]), TARGET_KEYS
        )

    def _region_provider(self, region: str) -> aws.Provider:
        """One explicit provider per region: the region comes from the ingress, never from ambient AWS config."""
        if region not in self._region_providers:
            self._region_providers[region] = aws.Provider(
                child(self._prefix, region, "aws"),
                region=region,
                **stack_identity().provider_args(),
                opts=pulumi.ResourceOptions(parent=self),
            )
        return self._region_providers[region]

    def _with_switch(
        self, ingress: RegionalIngress, probe: aws.route53.HealthCheck, on_dns: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        """The record's health check: the probe, or, where a Region switch plan sets a check for a region that serves
        while healthy, both of them (ARC creates its check after the plan: until then the probe alone)."""
        if ingress.switch_health_check is None or ingress.role == "secondary":
            return probe.id
        children = pulumi.Output.all(probe.id, ingress.switch_health_check).apply(lambda ids: [i for i in ids if i])
        return aws.route53.HealthCheck(
            child(self._prefix, ingress.cluster, "switch"),
            type="CALCULATED",
            child_healthchecks=children,
            child_health_threshold=children.apply(len),
            tags={"Name": aws_name("tag-value", child(self._prefix, ingress.cluster, "switch"))},
            opts=on_dns,
        ).id

    def _probe_health_check(
        self, ingress: RegionalIngress, plan: HealthCheckPlan, on_dns: pulumi.ResourceOptions
    ) -> tuple[aws.route53.HealthCheck, aws.cloudwatch.MetricAlarm]:
        """The in-VPC probe of the region's health route, the alarm on its metric and the check on the alarm."""
        if ingress.network_id is None or not ingress.subnet_ids:
            raise ValueError(f"{ingress.cluster}: the in-VPC health probe needs the cluster's VPC and private subnets")
        return health_probe(
            self._prefix,
            cluster=ingress.cluster,
            region=ingress.region,
            address=ingress.address,
            network_id=ingress.network_id,
            subnet_ids=tuple(ingress.subnet_ids),
            host=plan.host or "",
            path=plan.path,
            port=plan.port,
            period=plan.interval_seconds,
            evaluation_periods=plan.failure_threshold,
            regional=pulumi.ResourceOptions(parent=self, provider=self._region_provider(ingress.region)),
            on_dns=on_dns,
        )

    def _alarm_health_check(
        self, ingress: RegionalIngress, period: int, evaluation_periods: int, on_dns: pulumi.ResourceOptions
    ) -> tuple[aws.route53.HealthCheck, aws.cloudwatch.MetricAlarm]:
        """A health check on an alarm that fires while the region's NLB has no healthy HTTPS target, and the alarm."""
        regional = self._region_provider(ingress.region)
        lookup = pulumi.InvokeOutputOptions(provider=regional, parent=self)
        # Looked up once the gateway has its address, i.e. once the controller has created the NLB.
        address = pulumi.Output.from_input(ingress.address)
        # The provider already sets the region; passing it too lets offline plans answer for the right region.
        load_balancer = aws.lb.get_load_balancer_output(
            region=ingress.region,
            tags=address.apply(lambda _: controller_tags(ingress.cluster, "LoadBalancer")),
            opts=lookup,
        )
        target_group = aws.lb.get_target_group_output(
            region=ingress.region,
            tags=address.apply(lambda _: controller_tags(ingress.cluster, f"{GATEWAY_SERVICE}:{SERVING_PORT}")),
            opts=lookup,
        )
        alarm_name = child(self._prefix, ingress.cluster, "healthy-hosts")
        alarm = aws.cloudwatch.MetricAlarm(
            alarm_name,
            name=aws_name("cloudwatch-alarm", alarm_name, keep="-healthy-hosts"),
            alarm_description=f"No healthy ingress gateway target behind {ingress.cluster}'s NLB: fail over",
            namespace="AWS/NetworkELB",
            metric_name="HealthyHostCount",
            dimensions={"LoadBalancer": load_balancer.arn_suffix, "TargetGroup": target_group.arn_suffix},
            statistic="Minimum",
            period=period,
            evaluation_periods=evaluation_periods,
            comparison_operator="LessThanThreshold",
            threshold=1,
            treat_missing_data="breaching",  # no data points: the NLB or its targets are gone
            opts=pulumi.ResourceOptions(parent=self, provider=regional),
        )
        health = aws.route53.HealthCheck(
            child(self._prefix, ingress.cluster, "health"),
            type="CLOUDWATCH_METRIC",
            cloudwatch_alarm_name=alarm.name,
            cloudwatch_alarm_region=ingress.region,
            insufficient_data_health_status="Unhealthy",
            tags={"Name": aws_name("tag-value", child(self._prefix, ingress.cluster))},
            opts=on_dns,
        )
        return health, alarm
