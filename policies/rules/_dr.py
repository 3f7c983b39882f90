"""Reading the stack's DR record (the `turnout-dr` ConfigMap every cluster of a DR stack carries), and the automated
failover's plan (AWS: ARC Region switch) as the stack creates it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ._kubernetes import get_path, kind_of

RECORD_NAMESPACE = "turnout-system"
RECORD_NAME = "turnout-dr"
RECORD_KEY = "dr.json"
STANDBY_LABEL = "turnout.dev/dr-standby"


HEALTH_NAME = "turnout-health"
HEALTH_CONFIG_KEY = "config.json"


def health_aggregate_lags(resources) -> list[float]:
    """For every health aggregator the stack creates (components/dr/health.py: ConfigMap turnout-system/turnout-health),
    how late its `/ready` can learn of an outage: its round period plus its per-answer timeout."""
    lags = []
    for r in resources:
        if kind_of(r.resource_type) != "ConfigMap":
            continue
        if (get_path(r.props, "metadata", "namespace"), get_path(r.props, "metadata", "name")) != (
            RECORD_NAMESPACE,
            HEALTH_NAME,
        ):
            continue
        try:
            config = json.loads(get_path(r.props, "data", HEALTH_CONFIG_KEY))
            lags.append(float(config["period"]) + float(config["timeout"]))
        except (TypeError, ValueError, KeyError):
            lags.append(float("inf"))  # unreadable: nothing bounds when it notices
    return lags


PROBE_TAG = ("turnout.dev/purpose", "health-probe")  # components/globaltraffic/aws_probe.py
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
LAMBDA_FUNCTION = "aws:lambda/function:Function"
RATE_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def _rate_seconds(expression) -> float | None:
    """An EventBridge `rate(N unit)` expression in seconds; None for anything else (a cron has no fixed period)."""
    text = str(expression or "").strip()
    if not (text.startswith("rate(") and text.endswith(")")):
        return None
    parts = text[5:-1].split()
    if len(parts) != 2 or not parts[0].isdigit() or parts[1] not in RATE_UNITS:
        return None
    return float(parts[0]) * RATE_UNITS[parts[1]]


def _tagged_probe(resource) -> bool:
    return (resource.props.get("tags") or {}).get(PROBE_TAG[0]) == PROBE_TAG[1]


def health_probes(resources) -> tuple[float | None, list]:
    """For AWS internal gateways' in-VPC health probes (their schedules and functions, tagged turnout.dev/purpose:
    health-probe): how late the slowest can publish an outage (its schedule's period plus its function's timeout;
    None when the stack creates no probe or a schedule without a fixed rate), and the functions that request
    something other than the health route (not 443, `/ready`, with a health host)."""
    periods = [_rate_seconds(r.props.get("scheduleExpression")) for r in resources
               if r.resource_type == EVENT_RULE and _tagged_probe(r)]  # fmt: skip
    functions = [r for r in resources if r.resource_type == LAMBDA_FUNCTION and _tagged_probe(r)]
    off = []
    for function in functions:
        variables = get_path(function.props, "environment", "variables") or {}
        if (str(variables.get("PROBE_PORT")), variables.get("PROBE_PATH")) != ("443", "/ready") or not variables.get(
            "PROBE_HOST"
        ):
            off.append(function)
    if not periods or not functions or None in periods:
        return None, off
    timeouts = [float(f.props.get("timeout") or 3) for f in functions]  # Lambda's default timeout: 3 s
    return max(periods) + max(timeouts), off


def dr_records(resources) -> list[tuple[Any, dict | None]]:
    """(resource, the parsed dr.json or None when unreadable) for every DR record in the stack."""
    found = []
    for r in resources:
        if kind_of(r.resource_type) != "ConfigMap":
            continue
        if (get_path(r.props, "metadata", "namespace"), get_path(r.props, "metadata", "name")) != (
            RECORD_NAMESPACE,
            RECORD_NAME,
        ):
            continue
        try:
            document = json.loads(get_path(r.props, "data", RECORD_KEY))
        except (TypeError, ValueError):
            document = None
        found.append((r, document if isinstance(document, dict) else None))
    return found


# The automated failover (ARC Region switch) as created: the plan, its steps, its trigger and the trigger's alarm.
ARC_PLAN = "aws:arcregionswitch/plan:Plan"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
STEP_BLOCKS = {
    "promote-cache": "CustomActionLambda",
    "scale-models": "EKSResourceScaling",
    "route-traffic": "Route53HealthCheck",
}
"""The execution block that does each step dr.json names."""


def _items(value: Any) -> list:
    """A list property as a list (the engine hands lists over as sequence proxies); [] where absent."""
    return list(value) if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) else []


def plan_blocks(props: Mapping[str, Any]) -> set[str]:
    """Every execution block type the plan's workflows run, Parallel blocks opened."""
    found: set[str] = set()
    todo = [step for workflow in _items(props.get("workflows")) for step in _items(get_path(workflow, "steps"))]
    while todo:
        step = todo.pop()
        found.add(str(get_path(step, "executionBlockType")))
        for parallel in _items(get_path(step, "parallelConfigs")):
            todo += _items(get_path(parallel, "steps"))
    return found


def trigger_alarms(props: Mapping[str, Any], alarms: Mapping[str, Mapping[str, Any]]) -> list[Mapping[str, Any] | None]:
    """For each trigger of the plan, the created alarm its `red` condition reads (None when the alarm it names is not
    among `alarms`, the stack's MetricAlarms by name): an associated alarm's identifier is the alarm's ARN."""
    identifiers = {
        get_path(alarm, "mapBlockKey"): get_path(alarm, "resourceIdentifier")
        for alarm in _items(props.get("associatedAlarms"))
    }
    found = []
    for trigger in _items(props.get("triggers")):
        for condition in _items(get_path(trigger, "conditions")):
            if get_path(condition, "condition") != "red":
                continue
            arn = identifiers.get(get_path(condition, "associatedAlarmName"))
            name = arn.rsplit(":alarm:", 1)[-1] if isinstance(arn, str) else None
            found.append(alarms.get(name) if name else None)
    return found
