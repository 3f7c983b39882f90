"""`turnout failover STACK --to REGION`: the AWS runbook steps that DNS cannot take by itself.

A DR stack's Route 53 records move traffic to a standby region on their own once the primary's health check
fails. The cache does not follow: an ElastiCache Global Datastore promotes a secondary only when asked, and a
pilot light's standby runs no model pods until someone scales them up. The runbook, step by step:

1. target: REGION is one of the stack's regions and not the current primary (the Global Datastore's primary
   member when the stack has a cache, else `dr.settings.primaryRegion`).
2. health: each region's Route 53 health check (and the CloudWatch alarm behind it, for internal gateways);
   a warning, not a failure, when the primary still looks healthy.
3. cache promotion: `FailoverGlobalReplicationGroup` to REGION's member, then `DescribeGlobalReplicationGroups`
   until that member is PRIMARY and the datastore available: the measured "cache promotion" term of dr.json.
   Then the stack file must say so: `turnout:cache.primaryRegion: REGION` (printed with the file to edit), so
   the next `pulumi up` points workloads' writes at the promoted copy and agrees with the Global Datastore
   (whose reported primary turnout ignores as a change, instead of replacing the datastore over it).
4. standby capacity: for a pilot light, the exact `kubectl` commands that give REGION's model workloads the
   replicas the primary runs (the runbook holds AWS credentials, not cluster credentials).
5. summary: each step's duration and the total against the stack's RTO estimate.

With a Region switch plan (the stack exports `regionSwitch`: AWS DR tiers with a standby over two regions,
components/dr/arc.py), steps 3 and 4 are the plan's: `StartPlanExecution` (activate REGION; active/active:
deactivate the other region) in REGION, where ARC runs it, then `GetPlanExecution` until it completes, its steps'
states shown as they change. The plan promotes the cache, scales the standby and moves DNS itself; the stack file
change of step 3 still applies. That is the drill of a stack whose plan starts by itself (`failover: automatic`),
and the failover of one whose plan does not.

`--dry-run` makes only read calls (Get*, Describe*) and prints the calls it would make. Pure boto3 with the
standard credential chain; no Pulumi imports: the stack's outputs come from `pulumi stack output` or a file.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from turnout.config import NAMESPACE, TOP_LEVEL_KEYS, Endpoint, load_stack_config
from turnout.dr import CLOUD_TIMINGS, ENDPOINTS_READY, STANDBY_LABEL
from turnout.errors import ConfigError
from turnout.naming import k8s_name
from turnout.units import format_duration

DEFAULT_TIMEOUT_SECONDS = 600
"""How long to wait for the Global Datastore's promotion (AWS: "typically less than a minute")."""
POLL_SECONDS = 10
FAILOVER_TIERS = ("pilot-light", "warm-standby", "active-active")
ROUTE53_REGION = "us-east-1"  # Route 53 is global; its API is signed for us-east-1
ROUTE53_HEALTHY_SHARE = 0.18  # Route 53 calls an endpoint healthy when more than 18% of its checkers do
HPA_CPU_UTILIZATION = 70  # the primary's HPA target (components/endpoint/workload.py)
PULUMI_MISSING = (
    "the Pulumi CLI is not on PATH, so the stack's outputs cannot be read: install it "
    "(https://www.pulumi.com/docs/iac/download-install/) or give --outputs FILE (the JSON of "
    "`pulumi stack output --json --show-secrets`, or turnout plan's build/plan/STACK/inventory.json)"
)
STEPS = ("target", "health checks", "cache promotion", "standby capacity", "summary")
PLAN_STEPS = ("target", "health checks", "region switch", "summary")
"""The runbook's steps when an ARC Region switch plan does the promotion and the scaling."""
ARC_SERVICE = "arc-region-switch"  # botocore's name for ARC Region switch
ARC_DONE = ("completed", "completedWithExceptions", "completedMonitoringApplicationHealth")
ARC_FAILED = ("failed", "canceled", "planExecutionTimedOut")
ARC_WAITING = ("pausedByFailedStep", "pausedByOperator", "pendingManualApproval")
"""Execution states that wait for someone in the ARC console: the runbook stops and says so."""

AZURE_NOTHING_TO_PROMOTE = (
    "stack {stack!r} runs on azure, where failover has no runbook step to take for the cache: its regions' Azure "
    "Managed Redis databases are one active geo-replication group whose every member already takes writes, so "
    "nothing is promoted, and Traffic Manager moves traffic by itself; a pilot light's standby is scaled up with "
    "kubectl (its model Deployments to the primary's replicas). The runbook's steps are AWS only"
)
"""Why `turnout failover` stops on an Azure stack, without calling anything: it never tries to promote its cache."""

ClientFactory = Callable[[str, str], Any]
"""(service, region) -> a boto3 client."""


class FailoverUsageError(Exception):
    """Bad usage or configuration (exit status 2): names what is wrong and what is allowed."""


class FailoverStepError(Exception):
    """A step failed or timed out (exit status 1)."""


# The stack's outputs.


def load_outputs(
    stack: str,
    outputs_file: Path | None = None,
    project_dir: Path | None = None,
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
) -> dict[str, Any]:
    """The stack's outputs: from `outputs_file` (an outputs object, or turnout plan's inventory.json), else from
    `pulumi stack output --json --show-secrets --stack STACK` run in the project."""
    if outputs_file is not None:
        try:
            document = json.loads(outputs_file.read_text())
        except OSError as err:
            raise FailoverUsageError(f"--outputs {outputs_file}: {err.strerror or err}") from None
        except ValueError as err:
            raise FailoverUsageError(f"--outputs {outputs_file}: not JSON ({err})") from None
        if not isinstance(document, dict):
            raise FailoverUsageError(f"--outputs {outputs_file}: a JSON object of stack outputs expected")
        if isinstance(document.get("outputs"), dict) and "resources" in document:  # turnout plan's inventory.json
            planned = document.get("stack")
            if planned and planned != short_name(stack):
                raise FailoverUsageError(f"--outputs {outputs_file}: the plan of stack {planned!r}, not {stack!r}")
            return document["outputs"]
        return document
    command = ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack]
    try:
        done = run(command, cwd=project_dir, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise FailoverUsageError(PULUMI_MISSING) from None
    if done.returncode != 0:
        reason = (done.stderr or done.stdout or "").strip().splitlines()
        raise FailoverUsageError(
            f"`{' '.join(command)}` failed: {reason[-1] if reason else f'exit status {done.returncode}'}"
        )
    try:
        outputs = json.loads(done.stdout or "{}")
    except ValueError as err:
        raise FailoverUsageError(f"`{' '.join(command)}` printed something that is not JSON ({err})") from None
    if not isinstance(outputs, dict):
        raise FailoverUsageError(f"`{' '.join(command)}` printed no outputs object")
    return outputs


def short_name(stack: str) -> str:
    """`prod` of `acme/turnout/prod`: the name of the stack file."""
    return stack.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class RegionCheck:
    """One region's Route 53 record and the health check that keeps it in DNS answers."""

    region: str
    cluster: str
    role: str
    health_check_id: str | None
    alarm_name: str | None = None
    alarm_region: str | None = None


@dataclass(frozen=True)
class GlobalDatastore:
    id: str
    members: dict[str, str]
    """Replication group id by region."""


@dataclass(frozen=True)
class RegionSwitchPlan:
    """The stack's ARC Region switch plan (its `regionSwitch` output)."""

    arn: str
    name: str
    recovery_approach: str
    regions: tuple[str, ...]
    steps: tuple[str, ...] = ()
    trigger: bool = False


@dataclass(frozen=True)
class StackFacts:
    """What the runbook needs from the stack's outputs."""

    stack: str
    tier: str
    primary_region: str
    regions: tuple[str, ...]
    standby_regions: tuple[str, ...]
    standby: str
    """What a standby region runs: zero (pilot light), reduced (warm standby) or full (active-active)."""
    clusters: dict[str, str]
    """Cluster name by region."""
    checks: tuple[RegionCheck, ...]
    datastore: GlobalDatastore | None
    cache_regions: tuple[str, ...] | None
    """Regions holding a copy of the cache (None: the stack has no cache)."""
    traffic: tuple[dict, ...] = ()
    estimated_rto: int | None = None
    target_rto: int | None = None
    region_switch: RegionSwitchPlan | None = None
    """The plan that runs the failover steps, where the stack has one."""


def _get(document: Any, path: str) -> Any:
    value = document
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def read_facts(stack: str, outputs: dict[str, Any]) -> StackFacts:
    """The runbook's view of the outputs, or one FailoverUsageError naming the output that is missing."""
    dr = outputs.get("dr")
    if not isinstance(dr, dict) or not isinstance(dr.get("settings"), dict):
        raise FailoverUsageError(
            f"stack {stack!r} exports no `dr` output with its settings: failover needs a stack with a DR target "
            "(turnout:dr) deployed by this version of turnout"
        )
    tier = dr.get("tier")
    if tier not in FAILOVER_TIERS:
        raise FailoverUsageError(
            f"stack {stack!r} is DR tier {tier!r}, which keeps no standby to fail over to; failover works for "
            f"{', '.join(FAILOVER_TIERS)} (backup-restore recovers by `pulumi up` in a new region)"
        )
    clouds = {c.get("cloud") for c in outputs.get("clusters") or [] if isinstance(c, dict)}
    if clouds == {"azure"}:
        raise FailoverUsageError(AZURE_NOTHING_TO_PROMOTE.format(stack=stack))
    if clouds - {"aws"}:
        raise FailoverUsageError(f"stack {stack!r} runs on {', '.join(sorted(map(str, clouds)))}; failover is AWS only")
    settings = dr["settings"]
    primary = settings.get("primaryRegion")
    standby_regions = tuple(settings.get("standbyRegions") or ())
    regions = tuple(dr.get("regions") or (primary, *standby_regions))
    records = _get(outputs, "globalTraffic.records")
    if not isinstance(records, list) or not records:
        raise FailoverUsageError(
            f"stack {stack!r} exports no `globalTraffic.records`: the {tier} tier's Route 53 records are missing "
            "from its outputs (run `pulumi up` with this version of turnout)"
        )
    checks = tuple(
        RegionCheck(
            region=str(record.get("region")),
            cluster=str(record.get("cluster")),
            role=str(record.get("role")),
            health_check_id=record.get("healthCheckId"),
            alarm_name=_get(record, "healthCheckAlarm.name"),
            alarm_region=_get(record, "healthCheckAlarm.region"),
        )
        for record in records
        if isinstance(record, dict)
    )
    clusters = {check.region: check.cluster for check in checks}
    for cluster in outputs.get("clusters") or []:
        if isinstance(cluster, dict) and cluster.get("region") and cluster.get("name"):
            clusters.setdefault(cluster["region"], cluster["name"])
    datastore, cache_regions = _datastore(stack, outputs, settings)
    return StackFacts(
        stack=stack,
        tier=tier,
        primary_region=primary,
        regions=regions,
        standby_regions=standby_regions,
        standby=str(settings.get("standby")),
        clusters=clusters,
        checks=checks,
        datastore=datastore,
        cache_regions=cache_regions,
        traffic=tuple(e for e in _get(outputs, "traffic.endpoints") or () if isinstance(e, dict)),
        estimated_rto=dr.get("estimatedRtoSeconds"),
        target_rto=_get(dr, "target.rtoSeconds"),
        region_switch=_region_switch(stack, outputs.get("regionSwitch")),
    )


def _region_switch(stack: str, exported: Any) -> RegionSwitchPlan | None:
    """The plan from the `regionSwitch` output (None: the stack has none, and the runbook does the steps)."""
    if exported is None:
        return None
    arn = exported.get("planArn") if isinstance(exported, dict) else None
    if not isinstance(arn, str) or not arn:
        raise FailoverUsageError(f"stack {stack!r}: output regionSwitch.planArn is missing")
    return RegionSwitchPlan(
        arn=arn,
        name=str(exported.get("name") or arn),
        recovery_approach=str(exported.get("recoveryApproach") or "activePassive"),
        regions=tuple(exported.get("regions") or ()),
        steps=tuple(exported.get("steps") or ()),
        trigger=bool(exported.get("trigger")),
    )


def _datastore(
    stack: str, outputs: dict[str, Any], settings: dict[str, Any]
) -> tuple[GlobalDatastore | None, tuple[str, ...] | None]:
    """The Global Datastore from the `cache` output: the cache's replication document (`cache_replication`), or
    `{replication: ...}` around it."""
    cache = outputs.get("cache")
    replicas = settings.get("cacheReplicas") or []
    if cache is None:
        if replicas:
            raise FailoverUsageError(
                f"stack {stack!r} keeps a cache replica in {', '.join(replicas)} (dr.settings.cacheReplicas) but "
                "exports no `cache` output: the runbook needs cache.crossRegion.globalReplicationGroupId and "
                "cache.regions.REGION.replicationGroupId"
            )
        return None, None
    wrapped = isinstance(cache, dict) and isinstance(cache.get("replication"), dict)
    replication, where = (cache["replication"], "cache.replication") if wrapped else (cache, "cache")
    regions = replication.get("regions") if isinstance(replication, dict) else None
    if not isinstance(regions, dict):
        raise FailoverUsageError(f"stack {stack!r}: output {where}.regions is missing")
    cross_region = replication.get("crossRegion")
    if not cross_region:
        return None, tuple(regions)
    global_id = cross_region.get("globalReplicationGroupId") if isinstance(cross_region, dict) else None
    members = {region: (copy or {}).get("replicationGroupId") for region, copy in regions.items()}
    missing = [f"{where}.regions.{region}.replicationGroupId" for region, id_ in members.items() if not id_]
    if not global_id:
        missing.insert(0, f"{where}.crossRegion.globalReplicationGroupId")
    if missing:
        raise FailoverUsageError(
            f"stack {stack!r}: the cache's Global Datastore ids are not in its outputs ({', '.join(missing)}); "
            "deploy the stack with a turnout whose cache component exports them"
        )
    return GlobalDatastore(global_id, members), tuple(regions)


def configured_endpoints(project_dir: Path | None, stack: str) -> tuple[dict[str, Endpoint] | None, str | None]:
    """The stack file's endpoints (replica counts for a pilot light's scale-up), or None and why not."""
    from turnout.offline.stackfile import UsageError, find_project, read_stack

    try:
        project = find_project((project_dir or Path.cwd()).resolve())
        settings = read_stack(project, short_name(stack))
        config = load_stack_config({key: settings.config.get(f"{NAMESPACE}:{key}") for key in TOP_LEVEL_KEYS})
    except (UsageError, ConfigError) as err:
        return None, str(err)
    return config.endpoints, None


# The runbook.


def boto3_clients() -> ClientFactory:
    """boto3 clients per (service, region) from one session: the standard credential chain."""
    import boto3

    session = boto3.Session()
    made: dict[tuple[str, str], Any] = {}

    def client(service: str, region: str) -> Any:
        if (service, region) not in made:
            made[service, region] = session.client(service, region_name=region)
        return made[service, region]

    return client


def aws_error(err: Exception, call: str) -> str:
    """A botocore error as one line naming the call."""
    if isinstance(err, NoCredentialsError):
        return f"{call}: no AWS credentials (the standard chain: environment, ~/.aws, SSO, instance or pod role)"
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        return f"{call}: {error.get('Code', 'error')}: {error.get('Message', str(err))}"
    return f"{call}: {err}"


@dataclass
class StepResult:
    name: str
    seconds: float
    outcome: str
    warnings: list[str] = field(default_factory=list)
    failed: bool = False


@dataclass
class Failover:
    """One run of the runbook for `facts`, moving the stack's primary to `region`."""

    facts: StackFacts
    region: str
    clients: ClientFactory
    dry_run: bool = False
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    poll: float = POLL_SECONDS
    emit: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    endpoints: dict[str, Endpoint] | None = None
    """The stack file's endpoints: the replicas a pilot light's standby scales up to."""
    endpoints_missing: str | None = None
    results: list[StepResult] = field(default_factory=list, init=False)
    promotion_seconds: float | None = field(default=None, init=False)
    """How long the Global Datastore took to promote, from the failover call to available."""
    _started: float = field(default=0.0, init=False)
    _current_primary: str = field(default="", init=False)
    _health: dict[str, str] = field(default_factory=dict, init=False)

    def run(self) -> list[StepResult]:
        """Every step in order; raises FailoverUsageError (2) or FailoverStepError (1) where one stops."""
        self._started = self.clock()
        mode = "dry run: read-only calls, nothing changes" if self.dry_run else "changes the stack's primary region"
        self.emit(f"turnout failover {self.facts.stack} --to {self.region} ({self.facts.tier}; {mode})")
        self._step(1, self._target)
        self._step(2, self._health_checks)
        if self.facts.region_switch is not None:
            self._step(3, self._start_plan)
        else:
            self._step(3, self._promote_cache)
            self._step(4, self._standby_capacity)
        self._summary()
        return self.results

    @property
    def steps(self) -> tuple[str, ...]:
        return STEPS if self.facts.region_switch is None else PLAN_STEPS

    def _step(self, number: int, action: Callable[[StepResult], None]) -> None:
        name = self.steps[number - 1]
        self.emit(f"[{number}/{len(self.steps)}] {name} (t+{self.clock() - self._started:.1f}s)")
        result = StepResult(name, 0.0, "")
        began = self.clock()
        try:
            action(result)
        except (FailoverStepError, FailoverUsageError):
            result.seconds, result.failed = self.clock() - began, True
            self.results.append(result)
            self.emit(f"    failed after {result.seconds:.1f}s")
            raise
        result.seconds = self.clock() - began
        self.results.append(result)
        for warning in result.warnings:
            self.emit(f"    warning: {warning}")
        self.emit(f"    {result.outcome} [{result.seconds:.1f}s]")

    # 1. target

    def _target(self, result: StepResult) -> None:
        facts, region = self.facts, self.region
        if region not in facts.regions:
            raise FailoverUsageError(
                f"--to {region}: not a region of stack {facts.stack!r}; its regions: {', '.join(facts.regions)}"
            )
        if facts.cache_regions is not None and region not in facts.cache_regions:
            raise FailoverUsageError(
                f"--to {region}: the stack's cache has no copy there to promote; cache regions: "
                f"{', '.join(facts.cache_regions)}"
            )
        self._current_primary = facts.primary_region
        if facts.datastore is not None:
            group = self._describe_datastore()
            self._current_primary = _primary_member_region(group) or facts.primary_region
            self.emit(f"    Global Datastore {facts.datastore.id}: {_members_line(group)}")
        if region == self._current_primary:
            others = [r for r in facts.regions if r != region]
            raise FailoverUsageError(
                f"--to {region}: already the primary of stack {facts.stack!r}; fail over to one of: {', '.join(others)}"
            )
        capacity = {"zero": "runs no model pods", "reduced": "runs one pod per version", "full": "runs full capacity"}
        role = (
            f"the standby {capacity.get(facts.standby, facts.standby)}"
            if region in facts.standby_regions
            else "the stack's configured primary (failing back)"
        )
        result.outcome = f"{region} takes over from {self._current_primary}: {role}"

    def _describe_datastore(self) -> dict:
        datastore = self.facts.datastore
        assert datastore is not None
        call = f"elasticache.describe_global_replication_groups({datastore.id}) in {self.region}"
        try:
            groups = self.clients("elasticache", self.region).describe_global_replication_groups(
                GlobalReplicationGroupId=datastore.id, ShowMemberInfo=True
            )["GlobalReplicationGroups"]
        except (BotoCoreError, ClientError) as err:
            raise FailoverStepError(aws_error(err, call)) from None
        if not groups:
            raise FailoverStepError(f"{call}: no Global Datastore {datastore.id}")
        return groups[0]

    # 2. health checks

    def _health_checks(self, result: StepResult) -> None:
        for check in self.facts.checks:
            state, detail = self._region_health(check)
            self._health[check.region] = state
            self.emit(f"    {check.region:<16} {check.role:<10} {state:<9} {detail}")
        primary = next((c for c in self.facts.checks if c.region == self._current_primary), None)
        if primary is not None and self._health.get(primary.region) == "healthy" and self.facts.region_switch:
            self.emit(f"    {primary.region} still looks healthy: the plan's Route 53 step takes it out of DNS")
        elif primary is not None and self._health.get(primary.region) == "healthy":
            invert = (
                f"; to drill a failover, take it out of DNS first: aws route53 update-health-check "
                f"--health-check-id {primary.health_check_id} --inverted"
                if primary.health_check_id
                else ""
            )
            result.warnings.append(
                f"the current primary {primary.region} still looks healthy: DNS keeps sending it traffic, and once "
                f"the cache is promoted its writes reach a read-only replica{invert}"
            )
        if self._health.get(self.region) == "unhealthy":
            result.warnings.append(f"the target {self.region} looks unhealthy too: DNS will not answer with it")
        unknown = sorted(region for region, state in self._health.items() if state == "unknown")
        if unknown:
            result.warnings.append(f"health unknown for {', '.join(unknown)} (see above)")
        states = ", ".join(f"{region} {state}" for region, state in self._health.items())
        result.outcome = states or "no health checks in the outputs"

    def _region_health(self, check: RegionCheck) -> tuple[str, str]:
        """healthy, unhealthy or unknown, and why. Read errors make a region unknown instead of stopping the
        runbook: in a regional outage the failed region's CloudWatch may not answer at all."""
        if not check.health_check_id:
            return "unknown", "no healthCheckId in the stack's outputs (run `pulumi up` with this turnout)"
        call = f"route53.get_health_check_status({check.health_check_id})"
        try:
            observations = self.clients("route53", ROUTE53_REGION).get_health_check_status(
                HealthCheckId=check.health_check_id
            )["HealthCheckObservations"]
        except (BotoCoreError, ClientError) as err:
            observations, route53 = None, aws_error(err, call)
        else:
            route53 = f"Route 53: {_healthy_checkers(observations)} of {len(observations)} checkers report healthy"
        if check.alarm_name:
            alarm_region = check.alarm_region or check.region
            call = f"cloudwatch.describe_alarms({check.alarm_name}) in {alarm_region}"
            try:
                alarms = self.clients("cloudwatch", alarm_region).describe_alarms(AlarmNames=[check.alarm_name])
            except (BotoCoreError, ClientError) as err:
                return "unknown", f"{aws_error(err, call)}; {route53}"
            found = alarms.get("MetricAlarms") or []
            if not found:
                return "unknown", f"{call}: no such alarm; {route53}"
            value = found[0].get("StateValue")
            # The health check treats insufficient data as unhealthy (InsufficientDataHealthStatus).
            return ("healthy" if value == "OK" else "unhealthy"), f"alarm {check.alarm_name}: {value}; {route53}"
        if not observations:
            return "unknown", route53 if observations is None else f"{call}: no checker reports yet"
        share = _healthy_checkers(observations) / len(observations)
        return ("healthy" if share > ROUTE53_HEALTHY_SHARE else "unhealthy"), route53

    # 3. cache promotion

    def _promote_cache(self, result: StepResult) -> None:
        datastore = self.facts.datastore
        if datastore is None:
            result.outcome = (
                "skipped: the stack has no cache"
                if self.facts.cache_regions is None
                else "skipped: the cache has no cross-region replica"
            )
            return
        member = datastore.members[self.region]
        call = (
            f"elasticache.failover_global_replication_group(GlobalReplicationGroupId={datastore.id!r}, "
            f"PrimaryRegion={self.region!r}, PrimaryReplicationGroupId={member!r}) in {self.region}"
        )
        goal = f"{member} PRIMARY and {datastore.id} available"
        estimate = format_duration(CLOUD_TIMINGS["aws"].cache_promotion)
        if self.dry_run:
            self.emit(f"    would call {call}")
            self.emit(f"    would wait until {goal} (polling every {self.poll:g}s, timeout {self.timeout:g}s)")
            for line in self.stack_file_change():
                self.emit(f"    {line}")
            result.outcome = f"dry run: not promoted (dr.json estimates {estimate})"
            return
        began = self.clock()
        self.emit(f"    calling {call}")
        try:
            self.clients("elasticache", self.region).failover_global_replication_group(
                GlobalReplicationGroupId=datastore.id, PrimaryRegion=self.region, PrimaryReplicationGroupId=member
            )
        except ClientError as err:
            # Failover needs the old primary's region to take part; without it, AWS's way out is to detach the member.
            raise FailoverStepError(
                f"{aws_error(err, 'elasticache.failover_global_replication_group')}; if {self._current_primary} "
                "cannot take part, detaching the member makes it a standalone primary (it stops replicating, and "
                "the Global Datastore must be rebuilt afterwards): "
                "aws elasticache disassociate-global-replication-group "
                f"--global-replication-group-id {datastore.id} --replication-group-id {member} "
                f"--replication-group-region {self.region} --region {self.region}"
            ) from None
        except BotoCoreError as err:
            raise FailoverStepError(aws_error(err, "elasticache.failover_global_replication_group")) from None
        self.emit(f"    waiting until {goal} (timeout {self.timeout:g}s)")
        deadline, seen = began + self.timeout, ""
        while True:
            group = self._describe_datastore()
            state = f"{group.get('Status')}; {_members_line(group)}"
            if state != seen:
                self.emit(f"    t+{self.clock() - self._started:.1f}s {state}")
                seen = state
            if _member_role(group, self.region) == "PRIMARY" and group.get("Status") == "available":
                break
            if self.clock() >= deadline:
                raise FailoverStepError(
                    f"cache promotion timed out after {self.timeout:g}s: {datastore.id} is {group.get('Status')}, "
                    f"{member} is {(_member_role(group, self.region) or 'absent').lower()}; the promotion may still "
                    "finish: watch it with `aws elasticache describe-global-replication-groups "
                    f"--global-replication-group-id {datastore.id} --show-member-info --region {self.region}`"
                )
            self.sleep(max(0.0, min(self.poll, deadline - self.clock())))
        self.promotion_seconds = self.clock() - began
        for line in self.stack_file_change():
            self.emit(f"    {line}")
        result.outcome = (
            f"{member} in {self.region} is primary after {self.promotion_seconds:.1f}s (dr.json estimates {estimate})"
        )

    def stack_file_change(self) -> list[str]:
        """What the stack file must say once REGION's copy is primary, and how to apply it."""
        stack = short_name(self.facts.stack)
        setting = f"turnout:cache: {{..., primaryRegion: {self.region}}}"
        default = " (or no primaryRegion: the stack's first region is the default)"
        return [
            f"then make the stack agree: in environments/Pulumi.{stack}.yaml set {setting}"
            + (default if self.region == self.facts.primary_region else ""),
            f"and run `pulumi refresh --stack {self.facts.stack}` then `pulumi up --stack {self.facts.stack}`: the "
            "workloads' writes move to the promoted copy, and the Global Datastore is neither replaced nor failed "
            "back (its reported primary is ignored as a change)",
        ]

    # 3. region switch (a stack with an ARC Region switch plan)

    def _start_plan(self, result: StepResult) -> None:
        plan = self.facts.region_switch
        assert plan is not None
        if plan.regions and self.region not in plan.regions:
            raise FailoverUsageError(
                f"--to {self.region}: not a region of the Region switch plan {plan.name} ({', '.join(plan.regions)})"
            )
        # active/passive: activate REGION; active/active: shift away from the other region, REGION already serves.
        if plan.recovery_approach == "activeActive":
            action, target = "deactivate", next((r for r in plan.regions if r != self.region), self._current_primary)
        else:
            action, target = "activate", self.region
        request = {
            "planArn": plan.arn,
            "targetRegion": target,
            "action": action,
            "mode": "graceful",
            "comment": f"turnout failover --to {self.region}",
        }
        call = f"arc-region-switch.start_plan_execution({', '.join(f'{k}={v!r}' for k, v in request.items())})"
        steps = f"steps: {', '.join(plan.steps)}" if plan.steps else "the plan's steps"
        if self.dry_run:
            self.emit(f"    would call {call} in {self.region}")
            self.emit(f"    would wait until the execution completes ({steps}; timeout {self.timeout:g}s)")
            if self.facts.datastore is not None:
                for line in self.stack_file_change():
                    self.emit(f"    {line}")
            result.outcome = f"dry run: plan {plan.name} not started"
            return
        client = self.clients(ARC_SERVICE, self.region)  # ARC runs a plan from the region it activates
        self.emit(f"    calling {call} in {self.region}")
        began = self.clock()
        try:
            execution = client.start_plan_execution(**request)["executionId"]
        except (BotoCoreError, ClientError) as err:
            raise FailoverStepError(aws_error(err, "arc-region-switch.start_plan_execution")) from None
        watch = (
            f"aws arc-region-switch get-plan-execution --plan-arn {plan.arn} --execution-id {execution} "
            f"--region {self.region}"
        )
        self.emit(f"    execution {execution}: {steps}")
        deadline, seen = began + self.timeout, ""
        while True:
            state = self._plan_execution(client, plan.arn, execution)
            line = f"{state.get('executionState')}; " + ", ".join(
                f"{s.get('name')} {s.get('status')}" for s in state.get("stepStates") or ()
            )
            if line != seen:
                self.emit(f"    t+{self.clock() - self._started:.1f}s {line}")
                seen = line
            status = state.get("executionState")
            if status in ARC_DONE:
                break
            if status in ARC_FAILED:
                raise FailoverStepError(f"plan {plan.name} execution {execution} ended {status}: {line}; see {watch}")
            if status in ARC_WAITING:
                raise FailoverStepError(
                    f"plan {plan.name} execution {execution} is {status} and waits for someone in the ARC Region "
                    f"switch console (retry, skip or approve the step): {line}"
                )
            if self.clock() >= deadline:
                raise FailoverStepError(
                    f"plan {plan.name} execution {execution} is still {status} after {self.timeout:g}s; it goes on "
                    f"without the runbook: {watch}"
                )
            self.sleep(max(0.0, min(self.poll, deadline - self.clock())))
        seconds = self.clock() - began
        if self.facts.datastore is not None:
            for change in self.stack_file_change():
                self.emit(f"    {change}")
        recovery = state.get("actualRecoveryTime")
        result.outcome = f"plan {plan.name} {status} in {seconds:.1f}s ({action} {target})" + (
            f"; ARC measured a recovery time of {recovery}" if recovery else ""
        )

    def _plan_execution(self, client: Any, plan_arn: str, execution: str) -> dict:
        call = f"arc-region-switch.get_plan_execution({execution}) in {self.region}"
        try:
            return client.get_plan_execution(planArn=plan_arn, executionId=execution)
        except (BotoCoreError, ClientError) as err:
            raise FailoverStepError(aws_error(err, call)) from None

    # 4. standby capacity

    def _standby_capacity(self, result: StepResult) -> None:
        facts = self.facts
        if self.region not in facts.standby_regions or facts.standby == "full":
            result.outcome = f"nothing to run: {self.region} runs full capacity"
            return
        if facts.standby == "reduced":
            result.outcome = "nothing to run: the standby's autoscalers grow from one pod per version by themselves"
            return
        commands, notes = self.scale_up_commands()
        self.emit("    the runbook holds no cluster credentials; run these where the cluster's API is reachable:")
        for line in commands:
            self.emit(f"      {line}")
        result.warnings.extend(notes)
        timings = CLOUD_TIMINGS["aws"]
        result.outcome = (
            f"run the commands above: then nodes scale up (~{format_duration(timings.node_provision)}) and the "
            f"model pods get ready (~{format_duration(ENDPOINTS_READY)})"
        )

    def scale_up_commands(self) -> tuple[list[str], list[str]]:
        """The kubectl commands that give the pilot light's model workloads the primary's replicas, and notes."""
        cluster = self.facts.clusters.get(self.region, self.region)
        kubectl = f"kubectl --context {cluster}"
        lines = [f"aws eks update-kubeconfig --name {cluster} --region {self.region} --alias {cluster}"]
        notes = []
        if self.endpoints is None:
            why = self.endpoints_missing or "the stack file was not read"
            notes.append(f"replica counts unknown ({why}): replace REPLICAS with each version's replicas.min")
        for endpoint in self.facts.traffic:
            if endpoint.get("cluster") != cluster:
                continue
            name = str(endpoint.get("name"))
            if endpoint.get("backend") == "knative":
                lines.append(f"# {name}: Knative scales its revisions from zero on the first requests")
                continue
            configured = (self.endpoints or {}).get(name)
            progressive = getattr(getattr(configured, "strategy", None), "progressive", None) is not None
            for version in _running_versions(endpoint):
                replicas = (
                    configured.versions[version].replicas if configured and version in configured.versions else None
                )
                count = str(max(replicas.min or 0, 1)) if replicas else "REPLICAS"
                # Flagger serves from its copy of the target, <endpoint>-primary.
                deployment = f"{name}-primary" if progressive else k8s_name(name, version)
                lines.append(f"{kubectl} -n {name} scale deployment {deployment} --replicas={count}")
                if replicas and replicas.min and replicas.max and replicas.max > replicas.min:
                    lines.append(
                        f"{kubectl} -n {name} autoscale deployment {deployment} --min={replicas.min} "
                        f"--max={replicas.max} --cpu-percent={HPA_CPU_UTILIZATION}"
                    )
                if progressive:
                    break
        lines.append(f"{kubectl} get deployments -A -l {STANDBY_LABEL}=zero")
        notes.append(
            "a later `pulumi up` that changes these Deployments sets the standby back to zero pods: fail back, or "
            "change the stack, before the next one"
        )
        return lines, notes

    # 5. summary

    def _summary(self) -> None:
        self.emit(f"[{len(self.steps)}/{len(self.steps)}] summary (t+{self.clock() - self._started:.1f}s)")
        for result in self.results:
            flag = f" ({len(result.warnings)} warning(s))" if result.warnings else ""
            self.emit(f"    {result.name:<17} {result.seconds:7.1f}s  {result.outcome}{flag}")
        total = self.clock() - self._started
        rto = "no RTO estimate in dr.json"
        if self.facts.estimated_rto is not None:
            target = f", target {_span(self.facts.target_rto)}" if self.facts.target_rto else ""
            rto = f"the stack's estimated RTO is {_span(self.facts.estimated_rto)}{target}"
        promotion = ""
        if self.promotion_seconds is not None:
            estimate = _span(CLOUD_TIMINGS["aws"].cache_promotion)
            promotion = f"; cache promotion measured {self.promotion_seconds:.1f}s against dr.json's {estimate} term"
        done = "dry run, nothing changed" if self.dry_run else "done"
        self.emit(f"    total {total:.1f}s ({done}); {rto}{promotion}")


def _span(seconds: int) -> str:
    """870 -> 14m30s: durations as people read them."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"


def _healthy_checkers(observations: list[dict]) -> int:
    """Checkers whose last report is a success ("Success: HTTP Status Code 200, OK")."""
    return sum(1 for o in observations if str(_get(o, "StatusReport.Status") or "").startswith("Success"))


def _members(group: dict) -> Iterable[dict]:
    return (m for m in group.get("Members") or () if isinstance(m, dict))


def _member_role(group: dict, region: str) -> str | None:
    """PRIMARY or SECONDARY (the API documents both cases), for the member in `region`."""
    role = next((m.get("Role") for m in _members(group) if m.get("ReplicationGroupRegion") == region), None)
    return role.upper() if isinstance(role, str) else None


def _primary_member_region(group: dict) -> str | None:
    return next(
        (m.get("ReplicationGroupRegion") for m in _members(group) if str(m.get("Role", "")).upper() == "PRIMARY"), None
    )


def _members_line(group: dict) -> str:
    return ", ".join(
        f"{m.get('ReplicationGroupId')} ({m.get('ReplicationGroupRegion')}) {str(m.get('Role', '?')).lower()}"
        for m in _members(group)
    )


def _running_versions(endpoint: dict) -> list[str]:
    """Versions with pods, in first-seen order: every version routed to or mirrored (traffic.json routes)."""
    seen: dict[str, None] = {}
    for route in endpoint.get("routes") or ():
        for part in (*(route.get("to") or ()), *(route.get("mirror") or ())):
            seen.setdefault(str(part.get("version")), None)
    return list(seen)
