"""A Grafana dashboard per endpoint: its versions side by side, served and mirrored traffic apart (pure: no Pulumi).

Panels read the endpoint's recording rules (components/observability/rules.py) and kube-state-metrics; one
series per version and role, so a shadow's latency sits next to its primary's without counting as served.
"""

from __future__ import annotations

from components.observability.rules import ROLE_LABEL, VERSION_LABEL

DATASOURCE_UID = "turnout-prometheus"
SCHEMA_VERSION = 39
LEGEND = f"{{{{{VERSION_LABEL}}}}} ({{{{{ROLE_LABEL}}}}})"


def _panel(index: int, title: str, unit: str, targets: list[tuple[str, str]], description: str) -> dict:
    width = 12
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": {"type": "prometheus", "uid": DATASOURCE_UID},
        "gridPos": {"h": 8, "w": width, "x": (index % 2) * width, "y": (index // 2) * 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "right"}},
        "targets": [
            {"refId": chr(ord("A") + n), "expr": expr, "legendFormat": legend, "datasource": {"uid": DATASOURCE_UID}}
            for n, (expr, legend) in enumerate(targets)
        ],
    }


def panels(endpoint: str) -> list[dict]:
    selector = f'{{endpoint="{endpoint}"}}'
    specs = [
        (
            "Requests per second, by version (served and mirrored)",
            "reqps",
            [(f"turnout:requests:rate5m{selector}", LEGEND)],
            "Requests each version's sidecars answered; role shadow: mirrored copies whose answers nobody gets.",
        ),
        (
            "5xx share, by version",
            "percentunit",
            [(f"turnout:error_ratio:rate5m{selector}", LEGEND)],
            "Share of each version's answers that were 5xx, over 5 minutes.",
        ),
        (
            "Latency p50 / p90 / p99, by version",
            "ms",
            [(f"turnout:latency_ms:{name}_rate5m{selector}", f"{name} {LEGEND}") for name in ("p50", "p90", "p99")],
            "Percentiles of the time each version took to answer, from Istio's histogram.",
        ),
        (
            "Share of slow answers (over the latency objective), by version",
            "percentunit",
            [(f"turnout:slow_ratio:rate5m{selector}", LEGEND)],
            "Share of answers slower than the endpoint's slo.latencyMs.",
        ),
        (
            "Answers by status code",
            "reqps",
            [
                (
                    f"sum by ({VERSION_LABEL}, {ROLE_LABEL}, response_code) "
                    f'(rate(istio_requests_total{{reporter="destination",namespace="{endpoint}"}}[5m]))',
                    f"{{{{{VERSION_LABEL}}}}} ({{{{{ROLE_LABEL}}}}}) {{{{response_code}}}}",
                )
            ],
            "Every status code each version answered.",
        ),
        (
            "Pods unavailable, by Deployment",
            "short",
            [
                (
                    f'kube_deployment_status_replicas_unavailable{{namespace="{endpoint}"}}',
                    "{{deployment}}",
                )
            ],
            "Replicas of each Deployment of the endpoint that are not ready (kube-state-metrics).",
        ),
    ]
    return [_panel(index, *spec) for index, spec in enumerate(specs)]


def dashboard(endpoint: str) -> dict:
    """The dashboard JSON Grafana's sidecar loads."""
    return {
        "uid": f"turnout-{endpoint}"[:40],
        "title": f"turnout / {endpoint}",
        "tags": ["turnout", endpoint],
        "timezone": "browser",
        "schemaVersion": SCHEMA_VERSION,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "panels": panels(endpoint),
    }


def queries(board: dict) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of a dashboard."""
    return [(panel["title"], target["expr"]) for panel in board["panels"] for target in panel["targets"]]
