"""An endpoint's Prometheus rule file: recording rules per version, then the alerts (pure: no Pulumi).

Every series comes from the Istio sidecar of the pod that answered (`reporter="destination"`), scraped by
the `istio-proxies` job (components/observability/prometheus.py), which adds the pod's namespace (the
endpoint's) and its `turnout.dev/role` as `turnout_role`. Versions are Istio's `destination_version`
(the pod's `version` label, which every turnout workload carries).

Mirrored requests carry no mark in Istio's metrics (istio/istio#11475; the `-shadow` Host suffix is off by
default since Istio 1.28), so turnout keeps them apart by where they land: a shadow version's pods are
selected only by the `<endpoint>-shadow` Service, receive nothing but mirrored copies, and are scraped
with `turnout_role="shadow"`. Error and latency budgets are the served versions'; a shadow is judged
against its primary instead, on the same requests.

The alerts, per endpoint (labels: endpoint, destination_version, severity):
- ModelErrorBudgetFastBurn / ModelErrorBudgetSlowBurn: a served version's 5xx share burns the month's
  budget (100 - slo.availability) 14.4x over 1h and 5m (page), or 6x over 6h and 30m (ticket): the
  multiwindow, multi-burn-rate alerts of Google's SRE workbook.
- ModelLatencyBudgetFastBurn / ModelLatencyBudgetSlowBurn: the same for requests slower than slo.latencyMs.
- ModelCandidateMoreErrors / ModelCandidateSlower: a shadow, canary, preview or dark version much worse than
  the version it is compared with (its 5xx share above twice the primary's plus 1 point, or its share of
  slow requests above twice the primary's plus 5 points, over 15m, for 10m).
- ModelEndpointNoTraffic: no request at all for 15m, where the endpoint had some in the previous day.
- ModelPodsNotReady: a Deployment of the endpoint with unavailable replicas for 10m (kube-state-metrics).
"""

from __future__ import annotations

from dataclasses import dataclass

from turnout.config import Endpoint
from turnout.strategies import AbTest, BlueGreen, Canary, DarkLaunch, FeatureFlag, Shadow, Strategy

# Window pairs and burn factors of the SRE workbook's multiwindow, multi-burn-rate alerts (chapter 5).
FAST = ("1h", "5m", 14.4)
SLOW = ("6h", "30m", 6.0)
WINDOWS = ("5m", "30m", "1h", "6h")
COMPARE_WINDOW = "15m"
FOR_FAST, FOR_SLOW, FOR_COMPARE, FOR_NO_TRAFFIC, FOR_NOT_READY = "2m", "15m", "10m", "15m", "10m"
EVALUATION_INTERVAL = "30s"
SERVED = 'turnout_role!="shadow"'
ROLE_LABEL = "turnout_role"
VERSION_LABEL = "destination_version"
FIVE_XX = ',response_code=~"5.."'


@dataclass(frozen=True)
class Comparison:
    primary: str
    candidate: str
    how: str
    """What the candidate is to the primary (`shadow of`, `canary of`...), for the alert's text."""


def comparisons(strategy: Strategy, analysed: tuple[str, str] | None = None) -> tuple[Comparison, ...]:
    """Which version each candidate is compared with: a shadow with its primary, a canary with its stable, a
    preview or dark version with the live one, a feature flag's variants with its default's version."""
    if analysed is not None:
        return (Comparison(analysed[0], analysed[1], "under analysis against"),)
    if isinstance(strategy, Shadow):
        return tuple(Comparison(strategy.primary, shadow, "shadow of") for shadow in strategy.shadows)
    if isinstance(strategy, Canary):
        return (Comparison(strategy.stable, strategy.canary, "canary of"),)
    if isinstance(strategy, BlueGreen):
        return (Comparison(strategy.active, strategy.preview, "preview of"),)
    if isinstance(strategy, DarkLaunch):
        return (Comparison(strategy.live, strategy.dark, "dark launch of"),)
    if isinstance(strategy, FeatureFlag):
        default = strategy.variants[strategy.default_variant]
        others = sorted({v for v in strategy.variants.values() if v != default})
        return tuple(Comparison(default, version, "flag variant beside") for version in others)
    if isinstance(strategy, AbTest) and strategy.default is not None:
        others = sorted(v for v in strategy.variants if v != strategy.default)
        return tuple(Comparison(strategy.default, version, "A/B variant beside") for version in others)
    return ()


def _requests(endpoint: str, extra: str = "") -> str:
    return f'istio_requests_total{{reporter="destination",namespace="{endpoint}"{extra}}}'


def _duration(endpoint: str, suffix: str, extra: str = "") -> str:
    return f'istio_request_duration_milliseconds_{suffix}{{reporter="destination",namespace="{endpoint}"{extra}}}'


BY = f"sum by ({VERSION_LABEL}, {ROLE_LABEL})"


def recording_rules(endpoint: str, latency_ms: int) -> list[dict]:
    """Per version and role: request and 5xx rates, the 5xx share and the share slower than latency_ms over each
    burn window, and latency percentiles for the dashboards."""
    rules: list[dict] = [
        {"record": "turnout:requests:rate5m", "expr": f"{BY} (rate({_requests(endpoint)}[5m]))"},
        {"record": "turnout:errors:rate5m", "expr": f"{BY} (rate({_requests(endpoint, FIVE_XX)}[5m]))"},
    ]
    # Prometheus 3 stores classic histograms' `le` as a float ("1000.0"); Envoy exposes "1000": match both.
    le = f',le=~"{latency_ms}(\\\\.0)?"'
    for window in (*WINDOWS, COMPARE_WINDOW):
        every = f"{BY} (rate({_requests(endpoint)}[{window}]))"
        # A version without a 5xx has no 5xx series: count it as 0, not as missing, so comparisons still hold.
        failed = f"({BY} (rate({_requests(endpoint, FIVE_XX)}[{window}])) or 0 * {every})"
        rules.append({"record": f"turnout:error_ratio:rate{window}", "expr": f"{failed}\n/\n{every}"})
        rules.append(
            {
                "record": f"turnout:slow_ratio:rate{window}",
                "expr": f"1 - {BY} (rate({_duration(endpoint, 'bucket', le)}[{window}]))"
                f"\n/\n{BY} (rate({_duration(endpoint, 'count')}[{window}]))",
            }
        )
    for quantile, name in (("0.5", "p50"), ("0.9", "p90"), ("0.99", "p99")):
        rules.append(
            {
                "record": f"turnout:latency_ms:{name}_rate5m",
                "expr": f"histogram_quantile({quantile}, sum by ({VERSION_LABEL}, {ROLE_LABEL}, le) "
                f"(rate({_duration(endpoint, 'bucket')}[5m])))",
            }
        )
    return [{**rule, "labels": {"endpoint": endpoint}} for rule in rules]


def _selector(endpoint: str, extra: str = "") -> str:
    return f'{{endpoint="{endpoint}"{extra}}}'


def _budget(percent: float) -> float:
    return round((100 - percent) / 100, 6)


def _burn(endpoint: str, ratio: str, budget: float, windows: tuple[str, str, float]) -> str:
    long, short, factor = windows
    threshold = round(factor * budget, 6)
    served = _selector(endpoint, "," + SERVED)
    return f"turnout:{ratio}:rate{long}{served} > {threshold}\nand\nturnout:{ratio}:rate{short}{served} > {threshold}"


def _alert(name: str, expr: str, duration: str, severity: str, endpoint: str, summary: str, description: str) -> dict:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity, "endpoint": endpoint},
        "annotations": {"summary": summary, "description": description},
    }


VERSION = "{{ $labels.destination_version }}"


def alert_rules(endpoint: str, settings: Endpoint, analysed: tuple[str, str] | None = None) -> list[dict]:
    slo = settings.slo
    errors, slow = _budget(slo.availability), _budget(slo.latency_objective)
    rules = []
    for speed, windows, duration, severity in (("Fast", FAST, FOR_FAST, "page"), ("Slow", SLOW, FOR_SLOW, "ticket")):
        long, short, factor = windows
        rules.append(
            _alert(
                f"ModelErrorBudget{speed}Burn",
                _burn(endpoint, "error_ratio", errors, windows),
                duration,
                severity,
                endpoint,
                f"{endpoint} {VERSION}: 5xx answers burn the error budget {factor:g}x too fast",
                f"Over {long} and {short}, more than {factor:g} x {errors * 100:g}% of {endpoint} {VERSION}'s answers "
                f"were 5xx (objective: {slo.availability:g}% without a 5xx).",
            )
        )
        rules.append(
            _alert(
                f"ModelLatencyBudget{speed}Burn",
                _burn(endpoint, "slow_ratio", slow, windows),
                duration,
                severity,
                endpoint,
                f"{endpoint} {VERSION}: slow answers burn the latency budget {factor:g}x too fast",
                f"Over {long} and {short}, more than {factor:g} x {slow * 100:g}% of {endpoint} {VERSION}'s answers "
                f"took over {slo.latency_ms} ms (objective: {slo.latency_objective:g}% within it).",
            )
        )
    for comparison in comparisons(settings.strategy, analysed):
        candidate = _selector(endpoint, f',{VERSION_LABEL}="{comparison.candidate}"')
        primary = _selector(endpoint, f',{VERSION_LABEL}="{comparison.primary}",{SERVED}')
        for name, ratio, margin, what in (
            ("ModelCandidateMoreErrors", "error_ratio", 0.01, "5xx share"),
            ("ModelCandidateSlower", "slow_ratio", 0.05, f"share of answers over {slo.latency_ms} ms"),
        ):
            expr = (
                f"max without ({ROLE_LABEL}) (turnout:{ratio}:rate{COMPARE_WINDOW}{candidate})\n"
                f"> on (endpoint) group_left ()\n"
                f"(2 * max without ({VERSION_LABEL}, {ROLE_LABEL}) (turnout:{ratio}:rate{COMPARE_WINDOW}{primary})"
                f" + {margin})"
            )
            rules.append(
                _alert(
                    name,
                    expr,
                    FOR_COMPARE,
                    "ticket",
                    endpoint,
                    f"{endpoint} {comparison.candidate} ({comparison.how} {comparison.primary}) is much worse",
                    f"Over {COMPARE_WINDOW}, {endpoint} {comparison.candidate}'s {what} is above twice "
                    f"{comparison.primary}'s plus {margin * 100:g} points.",
                )
            )
    rules.append(
        _alert(
            "ModelEndpointNoTraffic",
            f"(sum(turnout:requests:rate5m{_selector(endpoint)}) or vector(0)) == 0\n"
            f"and on () max_over_time(sum(turnout:requests:rate5m{_selector(endpoint)})[1d:5m]) > 0",
            FOR_NO_TRAFFIC,
            "ticket",
            endpoint,
            f"{endpoint} gets no requests",
            f"No version of {endpoint} answered a request for {FOR_NO_TRAFFIC}, after traffic during the day.",
        )
    )
    rules[-1]["labels"]["destination_version"] = "all"
    rules.append(
        _alert(
            "ModelPodsNotReady",
            f'sum by (namespace, deployment) (kube_deployment_status_replicas_unavailable{{namespace="{endpoint}"}})'
            " > 0",
            FOR_NOT_READY,
            "ticket",
            endpoint,
            f"{endpoint}: {{{{ $labels.deployment }}}} has pods not ready",
            f"Deployment {{{{ $labels.deployment }}}} of {endpoint} has had unavailable replicas for {FOR_NOT_READY}.",
        )
    )
    return rules


def rule_file(endpoint: str, settings: Endpoint, analysed: tuple[str, str] | None = None) -> dict:
    """The endpoint's rule file, as Prometheus's `rule_files` read it."""
    return {
        "groups": [
            {
                "name": f"turnout-{endpoint}-recording",
                "interval": EVALUATION_INTERVAL,
                "rules": recording_rules(endpoint, settings.slo.latency_ms),
            },
            {
                "name": f"turnout-{endpoint}-alerts",
                "interval": EVALUATION_INTERVAL,
                "rules": alert_rules(endpoint, settings, analysed),
            },
        ]
    }


def alert_names(rules: dict) -> list[str]:
    """The alerts a rule file defines, in order (for summary.md and the policies)."""
    return [rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule]
