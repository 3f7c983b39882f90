"""alerts-on-prod-endpoints: every prod model namespace (labelled turnout.dev/endpoint) has alert rules on its
cluster: a rule file for the endpoint (`<endpoint>.yml`, with at least one alert) in a ConfigMap labelled
turnout.dev/alert-rules, which the cluster's Prometheus loads (platform.observability). Without them nobody hears
of a version that fails its users. Advice, never a gate."""

from __future__ import annotations

import yaml
from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from ._kubernetes import ENDPOINT_LABEL, TIER_LABEL, cluster_of, get_path, is_kind, object_name, shipped_upstream

RULES_LABEL = "turnout.dev/alert-rules"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: the same documents, faster


def _alerts(text: object) -> int:
    try:
        document = yaml.load(text, Loader=_Loader) if isinstance(text, str) else None  # noqa: S506 (safe)
    except yaml.YAMLError:
        return 0
    groups = document.get("groups") if isinstance(document, dict) else None
    return sum(1 for group in groups or [] for rule in (group or {}).get("rules") or [] if "alert" in (rule or {}))


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = [r for r in args.resources if not shipped_upstream(r.urn)]
    watched = set()
    for r in resources:
        if is_kind(r.resource_type, "core", "ConfigMap") and get_path(r.props, "metadata", "labels", RULES_LABEL):
            for key, text in (get_path(r.props, "data") or {}).items():
                if str(key).endswith(".yml") and _alerts(text):
                    watched.add((cluster_of(r), str(key)[: -len(".yml")]))
    for r in resources:
        if not is_kind(r.resource_type, "core", "Namespace"):
            continue
        labels = get_path(r.props, "metadata", "labels") or {}
        endpoint = labels.get(ENDPOINT_LABEL)
        if endpoint is None or labels.get(TIER_LABEL) != "prod":
            continue
        if (cluster_of(r), endpoint) not in watched:
            report_violation(
                f"{object_name(r.props)}: prod endpoint {endpoint} has no alert rules on its cluster: nobody is "
                "told when a version fails its users.",
                r.urn,
            )


alerts_on_prod_endpoints = StackValidationPolicy(
    name="alerts-on-prod-endpoints",
    description="Prod endpoints have alert rules (error and latency budgets, no traffic, pods not ready).",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=validate,
    remediation_steps="Keep `turnout:platform.observability` on (the default in prod): each endpoint gets a rule "
    "file, and `alerts.receiver` sends what fires to your webhook, Slack or PagerDuty.",
)
