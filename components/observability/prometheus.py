"""The cluster's one Prometheus (prometheus-community's `prometheus` chart), in its own restricted namespace.

Installed wherever something reads it: with `platform.observability` on (staging and prod by default) it is the
full stack (retention and storage for the tier, Alertmanager with the stack's receiver, kube-state-metrics, a
rule file per endpoint, optional remote write); elsewhere, where only Flagger's analysis needs it, the server
alone with six hours of samples. Either way it is `PROMETHEUS_URL`, the one address Flagger and the experiment
agents read.

Scraping: the `istio-proxies` job reads every injected pod's merged metrics (Istio's injector annotates pods
with `prometheus.io/scrape`, `port` 15020 and `path` /stats/prometheus; port 15020 is outside the sidecar's
interception, so STRICT mTLS does not apply to it) and labels each series with the pod's namespace, pod, and
turnout labels (`turnout_endpoint`, `turnout_version`, `turnout_role`: serving or shadow, which keeps mirrored
traffic apart); `kube-state-metrics` its Deployments; `prometheus` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import yaml

from turnout.config import Chart, Endpoint, Observability
from turnout.naming import child

NAMESPACE = "turnout-monitoring"
RELEASE = "prometheus"
SERVER = f"{RELEASE}-server"  # the chart's server fullname: its Service and ServiceAccount
PROMETHEUS_URL = f"http://{SERVER}.{NAMESPACE}"
ALERTMANAGER = f"{RELEASE}-alertmanager"
KUBE_STATE_METRICS = f"{RELEASE}-kube-state-metrics"
RULES_CONFIGMAP = "turnout-alert-rules"
RULES_DIR = "/etc/turnout-rules"
RECEIVER_SECRET = "turnout-alert-receiver"
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when present: the same text, faster
RECEIVER_DIR = "/etc/turnout-alert-receiver"
RECEIVER_KEY = "secret"
SCRAPE_INTERVAL = "15s"
FLAGGER_ONLY_RETENTION = "6h"
NAMESPACE_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    # Outside the mesh: it scrapes the sidecars' own port (15020, not intercepted) and is read by Flagger, which
    # has no sidecar either.
    "istio-injection": "disabled",
}

# The restricted Pod Security Standard, stated for every pod of the chart.
POD_SECURITY = {
    "runAsUser": 65534,
    "runAsGroup": 65534,
    "fsGroup": 65534,
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
}

# The labels the istio-proxies job puts on every series it scrapes (and nothing else adds labels).
SCRAPE_LABELS = {
    "namespace": "__meta_kubernetes_namespace",
    "pod": "__meta_kubernetes_pod_name",
    "turnout_endpoint": "__meta_kubernetes_pod_label_turnout_dev_endpoint",
    "turnout_version": "__meta_kubernetes_pod_label_turnout_dev_version",
    "turnout_role": "__meta_kubernetes_pod_label_turnout_dev_role",
}


def scrape_configs() -> list[dict]:
    """Prometheus's scrape_configs: the sidecars' merged metrics, kube-state-metrics, and itself."""
    istio_proxies = {
        "job_name": "istio-proxies",
        "kubernetes_sd_configs": [{"role": "pod"}],
        "relabel_configs": [
            {
                "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
                "regex": "true",
                "action": "keep",
            },
            {
                "source_labels": ["__meta_kubernetes_pod_container_name"],
                "regex": "istio-proxy",
                "action": "keep",
            },
            {"source_labels": ["__meta_kubernetes_pod_phase"], "regex": "Pending|Succeeded|Failed", "action": "drop"},
            {
                "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
                "regex": "(.+)",
                "target_label": "__metrics_path__",
            },
            {
                "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_port", "__meta_kubernetes_pod_ip"],
                "regex": r"(\d+);(([0-9]{1,3}\.){3}[0-9]{1,3})",
                "replacement": "$2:$1",
                "target_label": "__address__",
            },
            {
                "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_port", "__meta_kubernetes_pod_ip"],
                "regex": r"(\d+);([A-Fa-f0-9:]+)",
                "replacement": "[$2]:$1",
                "target_label": "__address__",
            },
            *(
                {"source_labels": [source], "regex": "(.+)", "target_label": target}
                for target, source in SCRAPE_LABELS.items()
            ),
        ],
        # Istio's request metrics and the model's own; Envoy's internal counters are many and unused here.
        "metric_relabel_configs": [
            {"source_labels": ["__name__"], "regex": "envoy_.*|istio_agent_.*", "action": "drop"}
        ],
    }
    return [
        {"job_name": "prometheus", "static_configs": [{"targets": ["localhost:9090"]}]},
        istio_proxies,
        {
            "job_name": "kube-state-metrics",
            "static_configs": [{"targets": [f"{KUBE_STATE_METRICS}.{NAMESPACE}.svc:8080"]}],
        },
    ]


def alertmanager_config(observability: Observability) -> dict:
    """Alertmanager's config: the secret (URL or key) is read from a file mounted from a Secret, never inlined."""
    alerts = observability.alerts
    secret = f"{RECEIVER_DIR}/{RECEIVER_KEY}"
    receiver: dict = {"name": "turnout"}
    if alerts.receiver == "webhook":
        receiver["webhook_configs"] = [{"url_file": secret, "send_resolved": True}]
    elif alerts.receiver == "slack":
        slack = {"api_url_file": secret, "send_resolved": True}
        if alerts.channel:
            slack["channel"] = alerts.channel
        receiver["slack_configs"] = [slack]
    elif alerts.receiver == "pagerduty":
        receiver["pagerduty_configs"] = [{"routing_key_file": secret, "send_resolved": True}]
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": "turnout",
            "group_by": ["alertname", "endpoint", "destination_version"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
        },
        "receivers": [receiver],
    }


def chart_values(
    observability: Observability | None,
    tier: str,
    remote_write: list[dict] | None = None,
    service_account_annotations: dict | None = None,
) -> dict:
    """The chart's values. `observability` None: the server alone, for Flagger (six hours, no volume)."""
    hardened = {"securityContext": POD_SECURITY, "containerSecurityContext": CONTAINER_SECURITY}
    full = observability is not None and observability.enabled
    server: dict = {
        **hardened,
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": "30s"},
        "resources": {"requests": {"cpu": "100m", "memory": "512Mi" if full else "256Mi"}},
    }
    reload: dict = {"containerSecurityContext": CONTAINER_SECURITY}
    prometheus_yml: dict = {"scrape_configs": scrape_configs()}
    values: dict = {
        "serviceAccounts": {
            "server": {"create": True, "name": SERVER, "annotations": service_account_annotations or {}}
        },
        "configmapReload": {"prometheus": reload},
        "server": server,
        "serverFiles": {"prometheus.yml": prometheus_yml},
        "prometheus-pushgateway": {"enabled": False},
        "prometheus-node-exporter": {"enabled": False},
    }
    if not full:
        server |= {"persistentVolume": {"enabled": False}, "retention": FLAGGER_ONLY_RETENTION}
        values |= {"alertmanager": {"enabled": False}, "kube-state-metrics": {"enabled": False}}
        prometheus_yml["scrape_configs"] = prometheus_yml["scrape_configs"][:2]
        return values
    rules_mount = {
        "name": "turnout-rules",
        "mountPath": RULES_DIR,
        "subPath": "",
        "configMap": RULES_CONFIGMAP,
        "readOnly": True,
    }
    prometheus_yml["rule_files"] = [f"{RULES_DIR}/*.yml"]
    server |= {
        "retention": f"{observability.retention // 3600}h",
        "persistentVolume": {"enabled": True, "size": observability.storage}
        if observability.storage
        else {"enabled": False},
        "extraConfigmapMounts": [rules_mount],
    }
    if remote_write:
        server["remoteWrite"] = remote_write
    reload |= {"extraConfigmapMounts": [rules_mount], "extraVolumeDirs": [RULES_DIR]}
    alertmanager: dict = {
        "enabled": True,
        "podSecurityContext": POD_SECURITY,
        "securityContext": {**CONTAINER_SECURITY, "runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534},
        "configmapReload": {"securityContext": CONTAINER_SECURITY},
        "persistence": {"enabled": tier == "prod", "size": "2Gi"},
        "config": {"enabled": True, **alertmanager_config(observability)},
    }
    if observability.alerts.receiver:
        alertmanager["extraSecretMounts"] = [
            {"name": "receiver", "mountPath": RECEIVER_DIR, "secretName": RECEIVER_SECRET, "readOnly": True}
        ]
    values |= {
        "alertmanager": alertmanager,
        "kube-state-metrics": {
            "enabled": True,
            # Only what the rules and dashboards read: Deployments' replicas.
            "collectors": ["deployments"],
            "securityContext": {**POD_SECURITY, "enabled": True},
            "containerSecurityContext": CONTAINER_SECURITY,
        },
    }
    return values


@dataclass(frozen=True, kw_only=True)
class ClusterPrometheusArgs:
    chart: Chart
    tier: str
    observability: Observability | None
    """The stack's settings where observability is on; None: the server alone, for Flagger's analysis."""
    rule_files: dict[str, dict]
    """endpoint → its rule file (components/observability/rules.py)."""
    dashboards: dict[str, dict]
    """endpoint → its Grafana dashboard, shipped where observability.grafana is on."""
    receiver_secret: pulumi.Output[str] | None = None
    """The alert receiver's URL or key, a Pulumi secret."""
    remote_write: pulumi.Input[list] | None = None
    """The server's `remote_write` (AMP on aws)."""
    service_account_annotations: pulumi.Input[dict] | None = None
    """The server's ServiceAccount's (the cloud identity remote write uses)."""
    after: tuple[pulumi.Resource, ...] = ()


class ClusterPrometheus(pulumi.ComponentResource):
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: ClusterPrometheusArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("turnout:observability:ClusterPrometheus", name, None, opts)
        namespace = k8s.core.v1.Namespace(
            child(name, "ns"),
            metadata={"name": NAMESPACE, "labels": dict(NAMESPACE_LABELS)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        before_release: list[pulumi.Resource] = [namespace]
        full = args.observability is not None and args.observability.enabled
        if full:
            before_release.append(
                k8s.core.v1.ConfigMap(
                    child(name, "rules"),
                    metadata={
                        "name": RULES_CONFIGMAP,
                        "namespace": NAMESPACE,
                        "labels": {"turnout.dev/alert-rules": "true"},
                    },
                    data={
                        f"{endpoint}.yml": yaml.dump(rules, Dumper=_Dumper, sort_keys=False, width=200)
                        for endpoint, rules in sorted(args.rule_files.items())
                    },
                    opts=in_namespace,
                )
            )
            if args.observability.alerts.receiver:
                before_release.append(
                    k8s.core.v1.Secret(
                        child(name, "receiver"),
                        metadata={"name": RECEIVER_SECRET, "namespace": NAMESPACE},
                        type="Opaque",
                        string_data={RECEIVER_KEY: args.receiver_secret},
                        opts=in_namespace,
                    )
                )
            if args.observability.grafana:
                self._grafana(name, args, in_namespace)
        identity = pulumi.Output.all(args.service_account_annotations or {}, args.remote_write or [])
        self.release = k8s.helm.v3.Release(
            child(name, "chart"),
            name=RELEASE,
            chart="prometheus",
            version=args.chart.version,
            repository_opts={"repo": args.chart.repository},
            namespace=NAMESPACE,
            values=identity.apply(lambda found: chart_values(args.observability, args.tier, found[1], found[0])),
            opts=pulumi.ResourceOptions(parent=self, depends_on=before_release),
        )
        self.register_outputs({"url": PROMETHEUS_URL})

    def _grafana(self, name: str, args: ClusterPrometheusArgs, opts: pulumi.ResourceOptions) -> None:
        """The data source and a dashboard per endpoint, labelled for the Grafana chart's sidecars."""
        import json

        k8s.core.v1.ConfigMap(
            child(name, "grafana-datasource"),
            metadata={
                "name": "turnout-prometheus-datasource",
                "namespace": NAMESPACE,
                "labels": {"grafana_datasource": "1"},
            },
            data={
                "turnout-prometheus.yaml": yaml.safe_dump(
                    {
                        "apiVersion": 1,
                        "datasources": [
                            {
                                "name": "turnout",
                                "uid": "turnout-prometheus",
                                "type": "prometheus",
                                "url": PROMETHEUS_URL,
                            }
                        ],
                    }
                )
            },
            opts=opts,
        )
        for endpoint, board in sorted(args.dashboards.items()):
            k8s.core.v1.ConfigMap(
                child(name, "dashboard", endpoint),
                metadata={
                    "name": f"turnout-dashboard-{endpoint}",
                    "namespace": NAMESPACE,
                    "labels": {"grafana_dashboard": "1", "turnout.dev/dashboard-for": endpoint},
                },
                data={f"turnout-{endpoint}.json": json.dumps(board, indent=1, sort_keys=True)},
                opts=opts,
            )


def alert_receiver_secret(observability: Observability) -> pulumi.Output[str] | None:
    """The receiver's URL or key from the Pulumi config key `alerts.secretConfig` names: a secret, or an error."""
    from pulumi.runtime.config import is_config_secret

    from turnout.config import key_path
    from turnout.errors import ConfigError

    alerts = observability.alerts
    if alerts.receiver is None:
        return None
    path = key_path("platform.observability.alerts.secretConfig")
    namespace, _, key = alerts.secret_config.partition(":")
    how = f"a secret: `pulumi config set --secret {alerts.secret_config} <URL or key>`"
    value = pulumi.Config(namespace).get_secret(key)
    if value is None:
        raise ConfigError(path, f"no value at {alerts.secret_config}", how)
    if not is_config_secret(alerts.secret_config):
        raise ConfigError(path, f"a plain-text value at {alerts.secret_config}, kept in the stack file in clear", how)
    return value


def endpoint_rule_files(endpoints: dict[str, Endpoint]) -> dict[str, dict]:
    from components.endpoint.flagger_canary import analysed_versions
    from components.observability.rules import rule_file

    files = {}
    for endpoint, settings in endpoints.items():
        progressive = getattr(settings.strategy, "progressive", None) is not None
        files[endpoint] = rule_file(endpoint, settings, analysed_versions(settings.strategy) if progressive else None)
    return files
