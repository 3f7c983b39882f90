"""Observability and acceptance tests: the rules every bundled stack ships pass `promtool check rules` and
`promtool test rules` with series for each alert (and fail them when a rule is broken), the dashboards read only
metrics that exist, the chart's pods meet the restricted level of their namespace, the runner judges answers as
documented, and bad settings exit 2 naming the key."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from components.observability.dashboards import dashboard, queries
from components.observability.prometheus import PROMETHEUS_URL, SCRAPE_LABELS, chart_values
from tests.conftest import REPO, load
from turnout.errors import ConfigError

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is missing: `apt-get install prometheus` (Debian's package ships it)"
)

# Istio's standard request metrics and the labels its sidecars give them (istio/proxy
# testdata/metric/server_request_total.yaml.tmpl), plus what the istio-proxies scrape job adds.
ISTIO_LABELS = {
    "reporter",
    "source_workload",
    "source_canonical_service",
    "source_canonical_revision",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_service_name",
    "destination_service_namespace",
    "destination_cluster",
    "request_protocol",
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
}
SCRAPED = set(SCRAPE_LABELS) | {"job", "instance"}
METRICS = {
    "istio_requests_total": ISTIO_LABELS | SCRAPED,
    "istio_request_duration_milliseconds_bucket": ISTIO_LABELS | SCRAPED | {"le"},
    "istio_request_duration_milliseconds_count": ISTIO_LABELS | SCRAPED,
    "istio_request_duration_milliseconds_sum": ISTIO_LABELS | SCRAPED,
    # kube-state-metrics' deployments collector (the only one enabled).
    "kube_deployment_status_replicas_unavailable": {"namespace", "deployment", "job", "instance"},
}
PROMQL_WORDS = {
    "sum",
    "by",
    "without",
    "rate",
    "max",
    "min",
    "avg",
    "count",
    "or",
    "and",
    "unless",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "histogram_quantile",
    "vector",
    "max_over_time",
    "offset",
    "bool",
    "le",
}


def load_stack(text: str) -> dict:
    return yaml.safe_load(text)["config"]


def cell_stacks() -> dict[str, dict]:
    found = {}
    for path in sorted((REPO / "environments").glob("Pulumi.*.yaml")):
        config = load_stack(path.read_text())
        if "turnout:globalTraffic" not in config:
            found[path.name[len("Pulumi.") : -len(".yaml")]] = config
    return found


def stack_config(config: dict):
    return load({key.removeprefix("turnout:"): value for key, value in config.items() if key.startswith("turnout:")})


@pytest.fixture(scope="module")
def shipped_rules() -> dict[str, dict]:
    """Every endpoint's rule file, as the bundled stacks render it (`<stack>/<endpoint>`)."""
    from components.observability.prometheus import endpoint_rule_files

    files = {}
    for stack, config in cell_stacks().items():
        settings = stack_config(config)
        for endpoint, rules in endpoint_rule_files(settings.endpoints).items():
            files[f"{stack}/{endpoint}"] = rules
    return files


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric, label names) of every series selector in a PromQL expression (strings and durations removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries: [5m], [1d:5m]
    text = re.sub(r"(?<![\w:])\d+(\.\d+)?", "0", text)  # numbers
    found = []
    for match in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?", text):
        name, braces = match.group(1), match.group(2)
        before = text[: match.start()].rstrip()
        if name in PROMQL_WORDS or (not braces and text[match.end() :].lstrip().startswith("(")):
            continue
        if before.endswith(("by (", "without (", "on (", "ignoring (", "group_left (", ",")) and not braces:
            continue  # a label name in a grouping clause
        if re.fullmatch(r"\d+[smhd]?", name) or before.endswith("["):
            continue
        labels = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*[=!]~?", braces or ""))
        found.append((name, labels))
    return found


def recorded(rules: dict) -> dict[str, set[str]]:
    """Metrics a rule file records, with the labels they carry (their `by` labels and the rule's own)."""
    names = {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                by = set(re.findall(r"by \(([^)]*)\)", rule["expr"])[0].replace(" ", "").split(",")) - {"le"}
                names[rule["record"]] = by | set(rule.get("labels", {}))
    return names


# --- rule files --------------------------------------------------------------------------------------------------


def test_every_bundled_cell_stack_with_observability_ships_alerts(shipped_rules):
    prod = [s for s, c in cell_stacks().items() if c.get("turnout:tier") == "prod"]
    assert prod and all(any(k.startswith(f"{s}/") for k in shipped_rules) for s in prod)
    for key, rules in shipped_rules.items():
        alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
        assert {"ModelErrorBudgetFastBurn", "ModelLatencyBudgetFastBurn", "ModelEndpointNoTraffic"} <= set(alerts), key
        assert "ModelPodsNotReady" in alerts, key


def test_rules_read_only_metrics_that_exist(shipped_rules):
    for key, rules in shipped_rules.items():
        known = {**METRICS, **recorded(rules)}
        for group in rules["groups"]:
            for rule in group["rules"]:
                for metric, labels in selectors(rule["expr"]):
                    assert metric in known, f"{key}: {rule.get('alert') or rule.get('record')} reads {metric}"
                    assert labels <= known[metric], f"{key}: {metric} has no labels {labels - known[metric]}"


def test_dashboards_read_only_metrics_that_exist(shipped_rules):
    for key, rules in shipped_rules.items():
        endpoint = key.split("/")[1]
        known = {**METRICS, **recorded(rules)}
        for title, expr in queries(dashboard(endpoint)):
            for metric, labels in selectors(expr):
                assert metric in known, f"{key}: panel {title!r} reads {metric}, which nothing produces"
                assert labels <= known[metric], f"{key}: panel {title!r}: {metric} has no labels {labels}"


def test_the_metric_check_catches_an_unknown_metric():
    assert ("istio_request_total", {"namespace"}) in selectors('rate(istio_request_total{namespace="x"}[5m])')
    assert selectors('sum by (destination_version) (rate(istio_requests_total{reporter="destination"}[5m]))') == [
        ("istio_requests_total", {"reporter"})
    ]


@needs_promtool
def test_promtool_checks_every_shipped_rule_file(shipped_rules, tmp_path):
    for key, rules in shipped_rules.items():
        path = tmp_path / f"{key.replace('/', '-')}.yml"
        path.write_text(yaml.safe_dump(rules, sort_keys=False))
        result = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{key}: {result.stdout}{result.stderr}"


# promtool unit tests: one scenario per alert, with the series that must make it fire (and a healthy endpoint that
# must stay quiet). Counters grow by `rate` requests a minute; a 5xx share is its own series.


def request_series(endpoint: str, version: str, role: str, code: str, per_minute: int, minutes: int, start: int = 0):
    labels = (
        f'istio_requests_total{{reporter="destination",namespace="{endpoint}",destination_version="{version}",'
        f'turnout_role="{role}",response_code="{code}"}}'
    )
    values = (f"0x{start} " if start else "") + f"0+{per_minute}x{minutes}"
    return {"series": labels, "values": values}


def latency_series(endpoint: str, version: str, role: str, per_minute: int, slow_share: float, minutes: int):
    """Histogram buckets: `slow_share` of the requests above every bucket up to 1000 ms, the rest under 100 ms."""
    base = f'reporter="destination",namespace="{endpoint}",destination_version="{version}",turnout_role="{role}"'
    fast = round(per_minute * (1 - slow_share))
    series = []
    for le in ("100", "250", "500", "1000", "+Inf"):
        count = per_minute if le == "+Inf" else fast
        series.append(
            {
                "series": f'istio_request_duration_milliseconds_bucket{{{base},le="{le}"}}',
                "values": f"0+{count}x{minutes}",
            }
        )
    series.append(
        {"series": f"istio_request_duration_milliseconds_count{{{base}}}", "values": f"0+{per_minute}x{minutes}"}
    )
    return series


def healthy(endpoint: str, versions: dict[str, str], minutes: int) -> list[dict]:
    found = []
    for version, role in versions.items():
        found.append(request_series(endpoint, version, role, "200", 600, minutes))
        found += latency_series(endpoint, version, role, 600, 0.0, minutes)
    return found


def scenarios(endpoint: str, primary: str, candidate: str, candidate_role: str, slo_latency_ms: int) -> list[dict]:
    """promtool test cases for an endpoint with `primary` (served) and `candidate` (served or shadow)."""
    versions = {primary: "serving", candidate: candidate_role}
    labels = {"endpoint": endpoint}
    cases = []
    # Healthy: nothing fires.
    cases.append(
        {
            "interval": "1m",
            "input_series": healthy(endpoint, versions, 400),
            "alert_rule_test": [
                {"eval_time": f"{m}m", "alertname": name, "exp_alerts": []}
                for m in (90, 390)
                for name in (
                    "ModelErrorBudgetFastBurn",
                    "ModelErrorBudgetSlowBurn",
                    "ModelLatencyBudgetFastBurn",
                    "ModelCandidateMoreErrors",
                    "ModelCandidateSlower",
                    "ModelEndpointNoTraffic",
                )
            ],
        }
    )
    # The primary answers half its requests with 503s for 90 minutes: both budgets of errors burn.
    failing = [
        s for s in healthy(endpoint, versions, 400) if primary not in s["series"] or "requests_total" not in s["series"]
    ]
    failing += [
        request_series(endpoint, primary, "serving", "200", 300, 400),
        request_series(endpoint, primary, "serving", "503", 300, 400),
    ]
    fired = {**labels, "destination_version": primary, "turnout_role": "serving"}
    cases.append(
        {
            "interval": "1m",
            "input_series": failing,
            "alert_rule_test": [
                {
                    "eval_time": "90m",
                    "alertname": "ModelErrorBudgetFastBurn",
                    "exp_alerts": [{"exp_labels": {**fired, "severity": "page"}}],
                },
                {
                    "eval_time": "390m",
                    "alertname": "ModelErrorBudgetSlowBurn",
                    "exp_alerts": [{"exp_labels": {**fired, "severity": "ticket"}}],
                },
            ],
        }
    )
    # The candidate answers a fifth of its requests with 500s, its primary none: it is much worse.
    worse = [
        s
        for s in healthy(endpoint, versions, 60)
        if candidate not in s["series"] or "requests_total" not in s["series"]
    ]
    worse += [
        request_series(endpoint, candidate, candidate_role, "200", 480, 60),
        request_series(endpoint, candidate, candidate_role, "500", 120, 60),
    ]
    alerts = [
        {
            "eval_time": "40m",
            "alertname": "ModelCandidateMoreErrors",
            "exp_alerts": [{"exp_labels": {**labels, "destination_version": candidate, "severity": "ticket"}}],
        }
    ]
    if candidate_role == "serving":  # a served candidate also burns its own budget; a shadow has none
        alerts.append(
            {
                "eval_time": "40m",
                "alertname": "ModelErrorBudgetFastBurn",
                "exp_alerts": [
                    {
                        "exp_labels": {
                            **labels,
                            "destination_version": candidate,
                            "turnout_role": "serving",
                            "severity": "page",
                        }
                    }
                ],
            }
        )
    else:
        alerts.append({"eval_time": "40m", "alertname": "ModelErrorBudgetFastBurn", "exp_alerts": []})
    cases.append({"interval": "1m", "input_series": worse, "alert_rule_test": alerts})
    # The candidate answers 30% of its requests slower than the objective: slower than its primary.
    slow = [
        s
        for s in healthy(endpoint, versions, 60)
        if f'destination_version="{candidate}"' not in s["series"] or "requests_total" in s["series"]
    ]
    slow += latency_series(endpoint, candidate, candidate_role, 600, 0.3, 60)
    cases.append(
        {
            "interval": "1m",
            "input_series": slow,
            "alert_rule_test": [
                {
                    "eval_time": "40m",
                    "alertname": "ModelCandidateSlower",
                    "exp_alerts": [{"exp_labels": {**labels, "destination_version": candidate, "severity": "ticket"}}],
                }
            ],
        }
    )
    # Traffic for two hours, then none: no traffic, once it has lasted 15 minutes.
    stopped = [
        {"series": s["series"], "values": s["values"].replace("x400", "x120") + " " + " ".join(["_"] * 60)}
        for s in healthy(endpoint, versions, 400)
    ]
    cases.append(
        {
            "interval": "1m",
            "input_series": stopped,
            "alert_rule_test": [
                {"eval_time": "130m", "alertname": "ModelEndpointNoTraffic", "exp_alerts": []},
                {
                    "eval_time": "150m",
                    "alertname": "ModelEndpointNoTraffic",
                    "exp_alerts": [{"exp_labels": {**labels, "destination_version": "all", "severity": "ticket"}}],
                },
            ],
        }
    )
    # A Deployment with an unavailable replica for 12 minutes.
    deployment = f"{endpoint}-{candidate}"
    cases.append(
        {
            "interval": "1m",
            "input_series": [
                {
                    "series": "kube_deployment_status_replicas_unavailable"
                    f'{{namespace="{endpoint}",deployment="{deployment}"}}',
                    "values": "0x5 1x20",
                }
            ],
            "alert_rule_test": [
                {"eval_time": "10m", "alertname": "ModelPodsNotReady", "exp_alerts": []},
                {
                    "eval_time": "20m",
                    "alertname": "ModelPodsNotReady",
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                **labels,
                                "namespace": endpoint,
                                "deployment": deployment,
                                "severity": "ticket",
                            }
                        }
                    ],
                },
            ],
        }
    )
    return cases


def without_annotations(rules: dict) -> dict:
    """promtool compares annotations too: the scenarios name labels, so annotations are left out of the test copy."""
    stripped = copy.deepcopy(rules)
    for group in stripped["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    return stripped


def promtool_test(rules: dict, cases: list[dict], folder: Path) -> subprocess.CompletedProcess:
    (folder / "rules.yml").write_text(yaml.safe_dump(without_annotations(rules), sort_keys=False))
    (folder / "test.yml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "30s", "tests": cases}, sort_keys=False)
    )
    return subprocess.run([PROMTOOL, "test", "rules", "test.yml"], cwd=folder, capture_output=True, text=True)


SCENARIO_ENDPOINTS = {
    "shadow": ({"type": "shadow", "primary": "v1", "shadows": {"v2": 50}}, "v1", "v2", "shadow"),
    "canary": ({"type": "canary", "stable": "v1", "canary": "v2", "weight": 10}, "v1", "v2", "serving"),
    "preview": ({"type": "blue-green", "active": "v1", "preview": "v2"}, "v1", "v2", "serving"),
    "progressive": (
        {"type": "canary", "stable": "v1", "canary": "v2", "weight": 10, "progressive": {}},
        "v1",
        "v2",
        "serving",
    ),
}


def endpoint_rules(name: str) -> dict:
    from components.observability.prometheus import endpoint_rule_files

    strategy = SCENARIO_ENDPOINTS[name][0]
    versions = {"v1": {"image": "m:1"}, "v2": {"image": "m:2"}}
    settings = load(
        {
            "tier": "prod",
            "platform": {"cloud": "kind", "regions": ["lab"]},
            "endpoints": {name: {"versions": versions, "strategy": strategy}},
        }
    )
    return endpoint_rule_files(settings.endpoints)[name]


@needs_promtool
@pytest.mark.parametrize("name", sorted(SCENARIO_ENDPOINTS))
def test_promtool_unit_tests_fire_each_alert_for_its_series_and_no_other(name, tmp_path):
    _, primary, candidate, role = SCENARIO_ENDPOINTS[name]
    rules = endpoint_rules(name)
    cases = scenarios(name, primary, candidate, role, 1000)
    tested = {t["alertname"] for case in cases for t in case["alert_rule_test"] if t["exp_alerts"]}
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert alerts - tested <= {"ModelLatencyBudgetFastBurn", "ModelLatencyBudgetSlowBurn"}, alerts - tested
    result = promtool_test(rules, cases, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_latency_budget_burns_fire_on_slow_answers(tmp_path):
    rules = endpoint_rules("canary")
    series = healthy("canary", {"v1": "serving"}, 400)
    series = [s for s in series if "duration" not in s["series"]] + latency_series(
        "canary", "v1", "serving", 600, 0.5, 400
    )
    fired = {"endpoint": "canary", "destination_version": "v1", "turnout_role": "serving"}
    cases = [
        {
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [
                {
                    "eval_time": "90m",
                    "alertname": "ModelLatencyBudgetFastBurn",
                    "exp_alerts": [{"exp_labels": {**fired, "severity": "page"}}],
                },
                {
                    "eval_time": "390m",
                    "alertname": "ModelLatencyBudgetSlowBurn",
                    "exp_alerts": [{"exp_labels": {**fired, "severity": "ticket"}}],
                },
            ],
        }
    ]
    result = promtool_test(rules, cases, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def broken(rules: dict, alert: str) -> dict:
    """The rule file with `alert` broken the way a typo would: the metric it reads renamed."""
    changed = copy.deepcopy(rules)
    for group in changed["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                rule["expr"] = re.sub(
                    r"(turnout:\w+:\w+|kube_deployment_status_replicas_unavailable)", r"\1_typo", rule["expr"]
                )
    return changed


@needs_promtool
@pytest.mark.parametrize(
    "alert",
    [
        "ModelErrorBudgetFastBurn",
        "ModelErrorBudgetSlowBurn",
        "ModelCandidateMoreErrors",
        "ModelCandidateSlower",
        "ModelEndpointNoTraffic",
        "ModelPodsNotReady",
    ],
)
def test_promtool_unit_tests_fail_when_a_rule_is_broken(alert, tmp_path):
    rules = broken(endpoint_rules("canary"), alert)
    assert rules != endpoint_rules("canary")
    result = promtool_test(rules, scenarios("canary", "v1", "v2", "serving", 1000), tmp_path)
    assert result.returncode != 0 and alert in result.stdout + result.stderr


# --- the chart -----------------------------------------------------------------------------------------------------


def test_flagger_and_the_agents_read_the_one_prometheus():
    from components.mesh import flagger

    assert flagger.PROMETHEUS_URL == PROMETHEUS_URL == "http://prometheus-server.turnout-monitoring"


def test_flagger_only_clusters_get_the_server_alone():
    values = chart_values(None, "dev")
    assert values["alertmanager"] == {"enabled": False} and values["kube-state-metrics"] == {"enabled": False}
    assert values["server"]["retention"] == "6h" and values["server"]["persistentVolume"] == {"enabled": False}


def test_prod_keeps_samples_on_a_volume_and_staging_does_not():
    prod = stack_config(
        {
            "turnout:tier": "prod",
            "turnout:platform": {"cloud": "kind", "regions": ["l"]},
            "turnout:endpoints": {"e": {"versions": {"v1": {"image": "m:1"}}}},
        }
    )
    values = chart_values(prod.platform.observability, "prod")
    assert values["server"]["persistentVolume"] == {"enabled": True, "size": "50Gi"}
    assert values["server"]["retention"] == "360h"
    staging = load(
        {
            "tier": "staging",
            "platform": {"cloud": "kind", "regions": ["l"]},
            "endpoints": {"e": {"versions": {"v1": {"image": "m:1"}}}},
        }
    )
    values = chart_values(staging.platform.observability, "staging")
    assert values["server"]["persistentVolume"] == {"enabled": False} and values["server"]["retention"] == "168h"
    dev = load(
        {
            "tier": "dev",
            "platform": {"cloud": "kind", "regions": ["l"]},
            "endpoints": {"e": {"versions": {"v1": {"image": "m:1"}}}},
        }
    )
    assert dev.platform.observability.enabled is False


def rendered_chart(values: dict, tmp_path: Path) -> list[dict]:
    helm = shutil.which("helm") or "/work/tools/layer/helm/helm"
    mirror = Path("/work/.mirror/prometheus-community+helm-charts/repo")
    if not Path(helm).exists() or not mirror.is_dir():
        pytest.skip("needs helm and the prometheus-community/helm-charts mirror (scripts/render-charts' sources)")
    archive = subprocess.run(
        [
            "git",
            "-C",
            str(mirror),
            "archive",
            "prometheus-27.42.2",
            "charts/prometheus",
            "charts/alertmanager",
            "charts/kube-state-metrics",
        ],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive, check=True)
    chart = tmp_path / "charts" / "prometheus"
    (chart / "charts").mkdir(exist_ok=True)
    for sub in ("alertmanager", "kube-state-metrics"):
        shutil.move(str(tmp_path / "charts" / sub), str(chart / "charts" / sub))
    manifest = yaml.safe_load((chart / "Chart.yaml").read_text())
    manifest["dependencies"] = [
        d for d in manifest["dependencies"] if d["name"] in ("alertmanager", "kube-state-metrics")
    ]
    (chart / "Chart.yaml").write_text(yaml.safe_dump(manifest))
    (chart / "Chart.lock").unlink(missing_ok=True)
    (tmp_path / "values.json").write_text(json.dumps(values))
    out = subprocess.run(
        [
            helm,
            "template",
            "prometheus",
            str(chart),
            "-n",
            "turnout-monitoring",
            "-f",
            str(tmp_path / "values.json"),
            "--kube-version",
            "1.34.0",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_the_charts_pods_meet_the_restricted_level_of_their_namespace(tmp_path):
    from components.observability.prometheus import NAMESPACE_LABELS
    from tests.admission import pod_security

    settings = stack_config(load_stack((REPO / "environments" / "Pulumi.prod-aws.yaml").read_text()))
    values = chart_values(settings.platform.observability, "prod", [], {})
    documents = rendered_chart(values, tmp_path)
    policy = pod_security.enforced_policy(NAMESPACE_LABELS)
    pods = [d for d in documents if d["kind"] in ("Deployment", "StatefulSet")]
    assert {d["metadata"]["name"] for d in pods} == {
        "prometheus-server",
        "prometheus-alertmanager",
        "prometheus-kube-state-metrics",
    }
    for document in pods:
        template = document["spec"]["template"]
        forbidden = pod_security.evaluate(policy.level, policy.version, template["metadata"], template["spec"])
        assert not forbidden, f"{document['metadata']['name']}: {forbidden}"


def test_the_rendered_server_config_loads_the_rule_files_and_scrapes_the_sidecars(tmp_path):
    settings = stack_config(load_stack((REPO / "environments" / "Pulumi.prod-aws.yaml").read_text()))
    documents = rendered_chart(chart_values(settings.platform.observability, "prod", [], {}), tmp_path)
    config = next(d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "prometheus-server")
    prometheus = yaml.safe_load(config["data"]["prometheus.yml"])
    assert prometheus["rule_files"] == ["/etc/turnout-rules/*.yml"]
    assert [job["job_name"] for job in prometheus["scrape_configs"]] == [
        "prometheus",
        "istio-proxies",
        "kube-state-metrics",
    ]
    server = next(d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "prometheus-server")
    mounts = {
        m["mountPath"] for c in server["spec"]["template"]["spec"]["containers"] for m in c.get("volumeMounts", [])
    }
    assert "/etc/turnout-rules" in mounts
    reload = server["spec"]["template"]["spec"]["containers"][0]
    assert "--watched-dir=/etc/turnout-rules" in reload["args"]
    if PROMTOOL:  # Debian's promtool is built without Kubernetes discovery: check the rest of the file
        for job in prometheus["scrape_configs"]:
            if job.pop("kubernetes_sd_configs", None):
                job["static_configs"] = [{"targets": ["placeholder:15020"]}]
        prometheus.pop("alerting", None)
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prometheus))
        result = subprocess.run(
            [PROMTOOL, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


# --- config --------------------------------------------------------------------------------------------------------


BASE = {
    "tier": "prod",
    "platform": {"cloud": "kind", "regions": ["l"]},
    "endpoints": {"e": {"versions": {"v1": {"image": "m:1"}}}},
}


def with_observability(observability: dict, cloud: str = "kind", tier: str = "prod") -> dict:
    region = {"kind": "l", "aws": "us-east-1", "gcp": "europe-west4", "azure": "westeurope"}[cloud]
    return {**BASE, "tier": tier, "platform": {"cloud": cloud, "regions": [region], "observability": observability}}


@pytest.mark.parametrize(
    "observability, cloud, tier, path, allowed",
    [
        ({"alerts": {"receiver": "slack"}}, "kind", "prod", "alerts.secretConfig", "Slack webhook URL"),
        (
            {"alerts": {"receiver": "webhook", "secretConfig": "a:b", "channel": "#x"}},
            "kind",
            "prod",
            "alerts.channel",
            "slack",
        ),
        ({"alerts": {"secretConfig": "a:b"}}, "kind", "prod", "alerts.receiver", "webhook, slack or pagerduty"),
        (
            {"alerts": {"receiver": "pagerduty", "secretConfig": "turnout:key"}},
            "kind",
            "prod",
            "alerts.secretConfig",
            "outside turnout:",
        ),
        ({"remoteWrite": {"workspace": "create"}}, "gcp", "prod", "remoteWrite", "remoteWrite on aws"),
        ({"remoteWrite": {"workspace": "create"}}, "azure", "prod", "remoteWrite", "remoteWrite on aws"),
        (
            {"remoteWrite": {"workspace": "arn:aws:aps:us-east-1:1:workspace/ws-1"}},
            "aws",
            "prod",
            "remoteWrite.workspace",
            "AMP workspace ARN",
        ),
        ({"grafana": True}, "kind", "dev", "grafana", "enabled: true"),
        ({"enabled": False, "storage": "10Gi"}, "kind", "prod", "storage", "enabled: true"),
    ],
)
def test_bad_observability_settings_name_the_key(observability, cloud, tier, path, allowed):
    with pytest.raises(ConfigError) as caught:
        load(with_observability(observability, cloud, tier))
    assert caught.value.path == f"turnout:platform.observability.{path}"
    assert allowed in caught.value.allowed


@pytest.mark.parametrize(
    "tests, path, allowed",
    [
        ([{"path": "predict"}], "[0].path", "'/'"),
        ([{"path": "/", "expect": {"jsonPath": "$.a"}}], "[0].expect.jsonPath", "exactly one of equals or within"),
        (
            [{"path": "/", "expect": {"jsonPath": "$.a", "equals": 1, "within": [0, 1]}}],
            "[0].expect.jsonPath",
            "exactly one",
        ),
        ([{"path": "/", "expect": {"equals": 1}}], "[0].expect.equals", "jsonPath"),
        ([{"path": "/", "expect": {"jsonPath": "a.b", "equals": 1}}], "[0].expect.jsonPath", "JSONPath"),
        ([{"path": "/", "expect": {"jsonPath": "$.a", "within": [2, 1]}}], "[0].expect.within", "LOW <= HIGH"),
        ([{"path": "/", "body": {"x": 1}}], "[0].body", "POST"),
        ([{"path": "/", "method": "FETCH"}], "[0].method", "GET"),
        ([], "", "a list of tests"),
    ],
)
def test_bad_acceptance_tests_name_the_key(tests, path, allowed):
    config = copy.deepcopy(BASE)
    config["endpoints"]["e"]["tests"] = tests
    with pytest.raises(ConfigError) as caught:
        load(config)
    assert caught.value.path == f"turnout:endpoints.e.tests{path}"
    assert allowed in caught.value.allowed


# --- the runner ------------------------------------------------------------------------------------------------------


def runner_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "acceptance_runner", REPO / "apps" / "acceptance-runner" / "runner.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def model():
    """A model answering POST /predict with a score, and 503 on /broken."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self._send(503 if self.path == "/broken" else 200, {"ok": True})

        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self._send(
                200, {"version": "v2", "scores": [{"label": "fraud", "p": 0.9 if body["amount"] > 1000 else 0.1}]}
            )

        def _send(self, status, document):
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_the_runner_passes_good_answers_and_names_each_failure(model):
    runner = runner_module()
    good = [
        {
            "path": "/predict",
            "method": "POST",
            "body": {"amount": 5000},
            "expect": {"status": 200, "jsonPath": "$.scores[0].p", "within": [0.8, 1]},
        },
        {
            "path": "/predict",
            "method": "POST",
            "body": {"amount": 5},
            "expect": {"status": 200, "jsonPath": "$['version']", "equals": "v2"},
        },
        {"path": "/", "expect": {"status": 200}},
    ]
    assert runner.run(good, model) == []
    bad = [
        {"path": "/broken", "expect": {"status": 200}},
        {
            "path": "/predict",
            "method": "POST",
            "body": {"amount": 5},
            "expect": {"jsonPath": "$.scores[0].p", "within": [0.8, 1]},
        },
        {
            "path": "/predict",
            "method": "POST",
            "body": {"amount": 5},
            "expect": {"jsonPath": "$.scores[3].p", "equals": 1},
        },
    ]
    failures = runner.run(bad, model)
    assert failures == [
        f"test 1 (GET /broken) on {model}: expected status 200, got 503",
        f"test 2 (POST /predict) on {model}: $.scores[0].p is 0.1, expected within [0.8, 1]",
        f"test 3 (POST /predict) on {model}: $.scores[3].p is missing from the answer",
    ]


def test_the_webhook_answers_flagger_with_the_reason(model):
    runner = runner_module()
    import urllib.error
    import urllib.request

    server = runner.serve([{"path": "/broken", "expect": {"status": 200}}], model, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{server.server_port}/", data=b'{"name":"e"}', method="POST")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == 412  # Flagger counts any status above 202 as a failed check, with this body
        assert b"expected status 200, got 503" in caught.value.read()
    finally:
        server.shutdown()


def test_the_runner_reads_the_tests_as_turnout_renders_them():
    from components.endpoint.acceptance import tests_document

    config = copy.deepcopy(BASE)
    config["endpoints"]["e"]["tests"] = [
        {"path": "/p", "method": "POST", "body": {"a": 1}, "expect": {"jsonPath": "$.x", "within": [0, 1]}}
    ]
    document = tests_document(load(config).endpoints["e"].tests)
    assert document == [
        {
            "path": "/p",
            "method": "POST",
            "body": {"a": 1},
            "expect": {"status": 200, "jsonPath": "$.x", "within": [0, 1]},
        }
    ]
    runner = runner_module()
    assert runner.judge(document[0], 200, b'{"x": 0.5}') is None
    assert runner.judge(document[0], 200, b'{"x": 2}') == "$.x is 2, expected within [0, 1]"
