"""Typed stack configuration: every `turnout:` key of CONTRACT §1, its defaults and its checks.

`load_stack_config` takes the values exactly as the Pulumi CLI hands them to a program (a string
per top-level key, structured values JSON-encoded) and returns a validated `StackConfig` with
every default resolved, or raises one `ConfigError` naming the key path.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_type_hints

from turnout.errors import ConfigError, NotSupportedError, describe
from turnout.naming import child
from turnout.network import DEFAULT_ADDRESS_SPACE, address_space, region_cidrs, region_network
from turnout.regions import EXAMPLES, KNOWN_REGIONS
from turnout.schema import config_fields, parse_object, parse_value, setting, yaml_key
from turnout.strategies import (
    ISTIO_LATENCY_BUCKETS_MS,
    Strategy,
    check_backend,
    latency_buckets_text,
    parse_strategy,
    with_default_version,
)
from turnout.units import check_dns_label, parse_duration, parse_percent, parse_quantity

NAMESPACE = "turnout"
Cloud = Literal["kind", "aws", "gcp", "azure"]
Tier = Literal["dev", "staging", "prod"]

# Names an endpoint cannot take: each endpoint gets a namespace named after it. These are the namespaces of
# Kubernetes, of kind, and of the platform turnout installs (Istio, Knative, Flagger, cert-manager,
# turnout-monitoring with the cluster Prometheus, and turnout-system, where a DR stack keeps its record);
# tests/test_bad_input.py checks that every namespace a plan creates, other than an endpoint's, is listed here.
RESERVED_ENDPOINT_NAMES = frozenset(
    {
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "local-path-storage",
        "istio-system",
        "knative-serving",
        "flagger-system",
        "cert-manager",
        "turnout-monitoring",
        "turnout-system",
    }
)
RESERVED_ENDPOINT_PREFIX = "kube-"  # reserved by Kubernetes for its own namespaces

# The CPU pool a cloud gets when `nodePools` is absent (machine types per cloud, see DEFAULT_MACHINE_TYPES).
DEFAULT_MACHINE_TYPES: dict[str, str] = {
    "kind": "kind-node",
    "aws": "m6i.xlarge",
    "gcp": "n2-standard-4",
    "azure": "Standard_D4s_v5",
}


def _kubernetes_version(value: object, path: str) -> str:
    if isinstance(value, float):
        raise ConfigError(
            path, describe(value), 'a quoted minor version such as "1.34" (unquoted, YAML reads 1.30 as the number 1.3)'
        )
    if not isinstance(value, str) or not re.fullmatch(r"1\.\d{2}", value):
        raise ConfigError(path, describe(value), 'a Kubernetes minor version such as "1.34"')
    return value


def _matching(pattern: str, allowed: str):
    """A parser accepting strings that fully match `pattern`."""
    compiled = re.compile(pattern)

    def parse(value: object, path: str) -> str:
        if not isinstance(value, str) or not compiled.fullmatch(value):
            raise ConfigError(path, describe(value), allowed)
        return value

    return parse


DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
DOMAIN_MAX = 200  # `ENDPOINT.DOMAIN` (an endpoint name is at most 40) must stay within DNS's 253


def _dns_name(longest: int, allowed: str):
    """Dot-separated DNS labels (RFC 1123 subdomain): no empty label, so no `..` and no edge dots."""
    compiled = re.compile(rf"{DNS_LABEL}(\.{DNS_LABEL})*")

    def parse(value: object, path: str) -> str:
        if not isinstance(value, str) or len(value) > longest or not compiled.fullmatch(value):
            raise ConfigError(path, describe(value), allowed)
        return value

    return parse


_region = _matching(r"[a-z0-9][a-z0-9-]{0,62}", "a region name of lowercase letters, digits and '-'")
_env_name = _matching(r"[A-Za-z_][A-Za-z0-9_]*", "an environment variable name of letters, digits and '_'")
_image = _matching(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*", "a container image reference such as ghcr.io/acme/model:1.4.2")


def _env_value(value: object, path: str) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ConfigError(path, describe(value), "a string (numbers and booleans are taken as written)")


def _health_path(value: object, path: str) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ConfigError(path, describe(value), "an HTTP path starting with '/'")
    return value


@dataclass(frozen=True, kw_only=True)
class NodePool:
    name: str = setting("Pool name.", parse=lambda v, p: check_dns_label(v, p, "pool name"), allowed="a DNS label")
    machine_type: str | None = setting("Machine (instance) type.", None, default_doc="the cloud's general CPU type")
    min: int = setting("Fewest nodes.", 1, bounds=(0, 1000))
    max: int = setting("Most nodes.", 3, bounds=(1, 1000))
    gpu: int = setting("GPUs per node; a GPU pool is tainted so only GPU workloads land there.", 0, bounds=(0, 16))


def _semver(value: object, path: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"\d+\.\d+\.\d+", value):
        raise ConfigError(path, describe(value), 'a quoted release version such as "1.30.1"')
    return value


def _url(value: object, path: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"(https|oci)://[^\s]+", value):
        raise ConfigError(path, describe(value), "an https:// or oci:// URL")
    return value.rstrip("/")


Install = Literal["auto", "always", "never"]
ApiAccess = Literal["dns", "allowlist", "in-network"]


@dataclass(frozen=True, kw_only=True)
class Chart:
    """A pinned Helm chart or release: where it comes from and which version."""

    version: str = setting("Release version.", parse=_semver, allowed='a version such as "1.30.1"')
    repository: str = setting("Helm repository or release download URL.", parse=_url, allowed="an https:// URL")


@dataclass(frozen=True, kw_only=True)
class OptionalChart(Chart):
    install: Install = setting("auto: only on clusters whose endpoints need it.", "auto")


TlsIssuer = Literal["acme", "private-ca", "secret", "self-signed"]
DEFAULT_CERTIFICATE = "turnout-gateway-tls"


@dataclass(frozen=True, kw_only=True)
class GatewayTls:
    """Where the gateway's certificate comes from; see TLS for the gateway."""

    issuer: TlsIssuer | None = setting(
        "acme: Let's Encrypt through cert-manager, proving the domain with DNS-01 records in dnsZone written with "
        "the cluster's workload identity; private-ca: cert-manager's own CA (clients must trust its root); secret: "
        "you create the `certificate` Secret yourself; self-signed (kind only): openssl on `pulumi up`.",
        None,
        default_doc="secret when certificate names your own Secret; otherwise self-signed on kind, private-ca "
        "elsewhere",
    )
    server: Literal["letsencrypt", "letsencrypt-staging"] | None = setting(
        "With acme, required: Let's Encrypt production (trusted by browsers, strict rate limits) or staging "
        "(untrusted certificates, generous limits: prove the DNS-01 setup first).",
        None,
        default_doc="required with acme",
    )
    email: str | None = setting(
        "With acme: the ACME account's contact address.",
        None,
        parse=_matching(r"[^@\s]+@[^@\s]+\.[^@\s]+", "an email address such as platform@example.com"),
        allowed="an email address",
    )
    dns_zone: str | None = setting(
        "With acme, required: the zone cert-manager writes `_acme-challenge` TXT records in, and nothing else: a "
        "Route 53 hosted zone id (aws), a Cloud DNS managed zone name or projects/PROJECT/managedZones/ZONE (gcp), "
        "an Azure DNS zone resource id (azure).",
        None,
        parse=_matching(r"\S+", "a DNS zone id"),
        allowed="a DNS zone id",
        default_doc="required with acme",
    )


@dataclass(frozen=True, kw_only=True)
class Gateway:
    exposure: Literal["internal", "external"] = setting(
        "internal: a private load balancer (the default); external: internet-facing. kind always uses NodePorts.",
        "internal",
    )
    domain: str | None = setting(
        "Hostname suffix of model endpoints (Knative domain, Gateway hosts).",
        None,
        parse=_dns_name(
            DOMAIN_MAX,
            "a DNS domain such as models.example.com: labels of lowercase letters, digits and "
            f"'-' separated by single dots, at most {DOMAIN_MAX} characters",
        ),
        allowed="a DNS domain",
        default_doc="127.0.0.1.sslip.io on kind, models.internal elsewhere",
    )
    certificate: str = setting(
        "TLS Secret (in istio-system, beside the gateway) the Gateway serves: the one tls.issuer writes, or yours.",
        DEFAULT_CERTIFICATE,
        parse=_dns_name(253, "a Kubernetes secret name: lowercase letters, digits, '-' and single dots"),
        allowed="a Kubernetes secret name",
    )
    tls: GatewayTls = setting("Where the certificate comes from.", GatewayTls())


ISTIO_CHARTS = "https://istio-release.storage.googleapis.com/charts"
KIND_AGENT_IMAGE = "kind.local/turnout-experiment-agent:0.1.0"  # built and `kind load`ed by make up


@dataclass(frozen=True, kw_only=True)
class Serving:
    """The serving platform on every cluster: one place to bump its versions."""

    istio: Chart = setting("Istio charts (base, istiod, gateway).", Chart(version="1.30.4", repository=ISTIO_CHARTS))
    knative: OptionalChart = setting(
        "Knative Serving with net-istio, from the release manifests.",
        OptionalChart(version="1.23.0", repository="https://github.com"),
    )
    flagger: OptionalChart = setting(
        "Flagger (Istio provider) for progressive strategies.",
        OptionalChart(version="1.44.0", repository="https://flagger.app"),
    )
    prometheus: Chart = setting(
        "Prometheus scraping Istio, installed with Flagger.",
        Chart(version="27.42.2", repository="https://prometheus-community.github.io/helm-charts"),
    )
    gateway: Gateway = setting("The ingress gateway.", Gateway())
    agent_image: str | None = setting(
        "The experiment agent's image (bandit and interleaved endpoints, compared shadows), as "
        ".github/workflows/release-agent.yml publishes it.",
        None,
        parse=_image,
        allowed="an image reference",
        default_doc=f"{KIND_AGENT_IMAGE} on kind (make up builds and loads it); required on clouds with an agent",
    )


# Istio's default buckets of istio_request_duration_milliseconds: a latency objective is counted exactly from one.
# An SLO's latency: one of Istio's buckets (turnout.strategies), in whole milliseconds up to ten minutes.
SLO_LATENCY_BUCKETS_MS = tuple(int(b) for b in ISTIO_LATENCY_BUCKETS_MS if b == int(b) and b <= 600_000)


def _latency_bucket(value: object, path: str) -> int:
    if isinstance(value, bool) or value not in SLO_LATENCY_BUCKETS_MS:
        allowed = "one of Istio's latency buckets (ms): " + latency_buckets_text(SLO_LATENCY_BUCKETS_MS)
        raise ConfigError(path, describe(value), allowed)
    return int(value)


def _objective(value: object, path: str) -> float:
    allowed = "a percentage from 50 to 99.99, such as 99.9"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 50 <= value <= 99.99:
        raise ConfigError(path, describe(value), allowed)
    return float(value)


@dataclass(frozen=True, kw_only=True)
class Slo:
    """What each serving version of an endpoint promises; alerts fire when a version burns its error budget fast."""

    availability: float = setting(
        "Percent of requests answered without a 5xx, over 30 days.", 99.5, parse=_objective, allowed="a percentage"
    )
    latency_ms: int = setting(
        "A request slower than this counts against the latency objective.",
        1000,
        parse=_latency_bucket,
        allowed="one of Istio's latency buckets in ms (100, 250, 500, 1000, 2500, ...)",
    )
    latency_objective: float = setting(
        "Percent of requests answered within latencyMs, over 30 days.", 99.0, parse=_objective, allowed="a percentage"
    )


# A JSONPath the acceptance runner evaluates: `$`, then `.name` or `['name']` or `[index]` steps.
JSON_PATH = re.compile(r"\$((\.[A-Za-z_][A-Za-z0-9_-]*)|(\[\d+\])|(\['[^'\]]+'\]))*")
JSON_PATH_ALLOWED = "a JSONPath of $ and .name, ['name'] or [index] steps, such as $.scores[0].label"


def _json_path(value: object, path: str) -> str:
    if not isinstance(value, str) or not JSON_PATH.fullmatch(value):
        raise ConfigError(path, describe(value), JSON_PATH_ALLOWED)
    return value


def _any_json(value: object, path: str) -> object:
    return value


def _within(value: object, path: str) -> tuple[float, float]:
    allowed = "[LOW, HIGH]: two numbers, LOW <= HIGH"
    if (
        not isinstance(value, list)
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value)
        or value[0] > value[1]
    ):
        raise ConfigError(path, describe(value), allowed)
    return (value[0], value[1])


@dataclass(frozen=True, kw_only=True)
class Expect:
    status: int = setting("The HTTP status the version must answer.", 200, bounds=(100, 599))
    json_path: str | None = setting(
        "A value in the JSON answer to check, with equals or within.", None, parse=_json_path, allowed=JSON_PATH_ALLOWED
    )
    equals: object = setting("The value at jsonPath must equal this (any JSON).", None, parse=_any_json, allowed="JSON")
    within: tuple[float, float] | None = setting(
        "The number at jsonPath must lie in [LOW, HIGH].", None, parse=_within, allowed="[LOW, HIGH]"
    )


@dataclass(frozen=True, kw_only=True)
class AcceptanceTest:
    """One request a new version must answer as expected before it takes user traffic; see Acceptance tests."""

    path: str = setting("Request path (and query).", parse=_health_path, allowed="an HTTP path starting with '/'")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = setting("HTTP method.", "GET")
    body: object = setting("JSON body sent with the request.", None, parse=_any_json, allowed="JSON")
    expect: Expect = setting("What the answer must be.", Expect())


def _tests(value: object, path: str) -> tuple[AcceptanceTest, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(
            path, describe(value), "a list of tests: {path, method, body, expect: {status, jsonPath, equals | within}}"
        )
    tests = []
    for index, item in enumerate(value):
        test = parse_object(AcceptanceTest, item, f"{path}[{index}]")
        expect, where = test.expect, f"{path}[{index}].expect"
        if expect.json_path is None and (expect.equals is not None or expect.within is not None):
            key = "equals" if expect.equals is not None else "within"
            raise ConfigError(f"{where}.{key}", f"{key} without jsonPath", "jsonPath naming the value to check")
        if expect.json_path is not None and (expect.equals is None) == (expect.within is None):
            raise ConfigError(
                f"{where}.jsonPath",
                f"{expect.json_path!r} with {'both equals and within' if expect.equals is not None else 'neither'}",
                "exactly one of equals or within with a jsonPath",
            )
        if test.body is not None and test.method in ("GET", "HEAD"):
            raise ConfigError(f"{path}[{index}].body", f"a body with method {test.method}", "POST, PUT or PATCH")
        tests.append(test)
    return tuple(tests)


AlertReceiverType = Literal["webhook", "slack", "pagerduty"]
_SECRET_CONFIG = _matching(
    r"(?!turnout:)[A-Za-z0-9_.-]+:[A-Za-z0-9_./-]+", "a Pulumi config key NAMESPACE:KEY outside turnout:"
)


@dataclass(frozen=True, kw_only=True)
class Alerts:
    """Where Alertmanager sends the alerts; see Observability."""

    receiver: AlertReceiverType | None = setting(
        "webhook (any HTTP endpoint), slack or pagerduty; absent: alerts show in Alertmanager and Prometheus only.",
        None,
    )
    secret_config: str | None = setting(
        "The Pulumi config key (NAMESPACE:KEY, not turnout:) holding the webhook URL, Slack webhook URL or "
        "PagerDuty routing key, set with `pulumi config set --secret`: never in the stack file or the plan in clear.",
        None,
        parse=_SECRET_CONFIG,
        allowed="a config key NAMESPACE:KEY",
    )
    channel: str | None = setting(
        "slack only: the channel, such as #models.",
        None,
        parse=_matching(r"[#@]?[\w.-]{1,80}", "a Slack channel"),
        allowed="a Slack channel",
    )


@dataclass(frozen=True, kw_only=True)
class RemoteWrite:
    """Copies every sample to the cloud's managed Prometheus with the cluster's workload identity."""

    workspace: str = setting(
        "aws: `create` (an Amazon Managed Service for Prometheus workspace per cluster) or your workspace's ARN.",
        parse=_matching(
            r"create|arn:aws[a-z-]*:aps:[a-z0-9-]+:\d{12}:workspace/ws-[A-Za-z0-9-]+", "create, or an AMP workspace ARN"
        ),
        allowed="create, or an AMP workspace ARN",
    )


@dataclass(frozen=True, kw_only=True)
class Observability:
    """Metrics, alerts and dashboards of every endpoint and version; see Observability."""

    enabled: bool | None = setting(
        "A Prometheus (with Alertmanager and kube-state-metrics) on every cluster, scraping the mesh, with alert "
        "rules per endpoint.",
        None,
        default_doc="true in staging and prod, false in dev (Flagger's analysis still gets its Prometheus)",
    )
    retention: int | None = setting(
        "How long samples are kept.",
        None,
        parse=parse_duration,
        allowed="a duration",
        default_doc='"1d" in dev, "7d" in staging, "15d" in prod',
    )
    storage: str | None = setting(
        "A PersistentVolume of this size for the samples (the cluster's default StorageClass).",
        None,
        parse=parse_quantity,
        allowed="a Kubernetes quantity such as 50Gi",
        default_doc="50Gi in prod; none elsewhere (samples are lost with the pod)",
    )
    grafana: bool = setting(
        "Ship a dashboard per endpoint (and the Prometheus data source) as ConfigMaps for your Grafana's sidecar.",
        False,
    )
    alerts: Alerts = setting("Where alerts go.", Alerts())
    remote_write: RemoteWrite | None = setting(
        "Copy every sample to the cloud's managed Prometheus (aws only in this version).", None
    )


@dataclass(frozen=True, kw_only=True)
class Platform:
    cloud: Cloud = setting("Where clusters run.")
    regions: tuple[str, ...] = setting(
        "One cluster per region; kind takes exactly one, any name.",
        values=_region,
        min_items=1,
        allowed="a list of region names (at least 1)",
    )
    kubernetes_version: str = setting(
        "Kubernetes minor version of every cluster.",
        "1.34",
        parse=_kubernetes_version,
        allowed='a quoted minor version such as "1.34"',
    )
    node_pools: tuple[NodePool, ...] = setting("Node pools of every cluster.", (), default_doc="one general CPU pool")
    extra_regions: tuple[str, ...] = setting(
        "Regions to accept beyond turnout's built-in list for the cloud (regions newer than this release).",
        (),
        values=_region,
        allowed="a list of region names",
    )
    api_access: ApiAccess | None = setting(
        "How `pulumi up` reaches each cluster's Kubernetes API: dns (GKE only: the IAM-guarded DNS endpoint, "
        "reachable from anywhere with Google credentials), allowlist (a public endpoint open only to "
        "apiAccessCidrs), or in-network (a private endpoint: deploy from inside the cluster's network, e.g. a "
        "self-hosted runner or a VPN). See Before a real pulumi up.",
        None,
        default_doc="dns on gcp; allowlist when apiAccessCidrs is set; otherwise in-network",
    )
    api_access_cidrs: tuple[str, ...] = setting(
        "With apiAccess allowlist: the CIDRs (the deployer's and CI runners' egress) allowed to reach the API.",
        (),
        values=_matching(r"\d{1,3}(\.\d{1,3}){3}/\d{1,2}", "an IPv4 CIDR such as 203.0.113.0/24"),
        allowed="a list of IPv4 CIDRs",
    )
    admins: tuple[str, ...] = setting(
        "Principals given cluster admin besides the deployer: IAM role or user ARNs on aws; IAM members "
        "(user:, group:, serviceAccount:) on gcp; user:, group: or servicePrincipal: with an Entra object id on "
        "azure.",
        (),
        values=_matching(r"\S+", "a principal"),
        allowed="a list of principals",
    )
    registries: dict[str, str] = setting(
        "azure only: each Azure Container Registry the endpoints' images come from, by login server, with its "
        "resource id (it may be in another resource group or subscription); the clusters' kubelet identity gets "
        "AcrPull on each.",
        {},
        values=_matching(r"\S+", "a registry resource id"),
        allowed="a mapping of login server (acmemodels.azurecr.io) to resource id",
    )
    address_space: str | None = setting(
        "Private range each region's /16 network is allocated from, in region order; give each blue/green cell "
        "its own so they can be peered.",
        None,
        parse=address_space,
        allowed="a private IPv4 CIDR of /16 or larger",
        default_doc=f"{DEFAULT_ADDRESS_SPACE} (clouds only)",
    )
    networks: dict[str, str] = setting(
        "A region's network (/16), overriding the allocation from addressSpace (take it from your IPAM).",
        {},
        values=region_network,
        allowed="a mapping of region to a private /16",
    )
    load_images: tuple[str, ...] = setting(
        "kind only: local images loaded into the cluster (`kind load`).", (), values=_image
    )
    serving: Serving = setting("Istio, Knative, Flagger and Prometheus on every cluster.", Serving())
    observability: Observability = setting("Metrics, alerts and dashboards; see Observability.", Observability())


@dataclass(frozen=True, kw_only=True)
class DrTarget:
    rpo: int = setting(
        "Recovery point objective: most data loss tolerated.", parse=parse_duration, allowed="a duration"
    )
    rto: int = setting("Recovery time objective: longest outage tolerated.", parse=parse_duration, allowed="a duration")
    failover: Literal["manual", "automatic"] = setting(
        "Who starts a failover: an operator (`turnout failover`), or the cloud on the health alarms (AWS: an ARC "
        "Region switch plan's trigger). Manual by default: an automatic failover promotes the cache, one way, "
        "with no one deciding.",
        "manual",
    )


@dataclass(frozen=True, kw_only=True)
class Cache:
    engine: Literal["redis", "valkey"] = setting("Cache engine.", "redis")
    primary_region: str | None = setting(
        "aws: the region whose copy takes writes. Change it only to the region `turnout failover` promoted (its "
        "runbook says so), so the stack agrees with the Global Datastore.",
        None,
        parse=_region,
        allowed="a region of the stack that holds a copy of the cache",
        default_doc="the stack's first region",
    )


@dataclass(frozen=True, kw_only=True)
class Replicas:
    min: int | None = setting(
        "Fewest pods (Knative: min-scale).", None, bounds=(0, 1000), default_doc="2 in prod, else 1"
    )
    max: int | None = setting("Most pods (Knative: max-scale).", None, bounds=(1, 1000), default_doc="max(min, 3)")


@dataclass(frozen=True, kw_only=True)
class Resources:
    cpu: str = setting("CPU request and limit.", "250m", parse=parse_quantity, allowed="a Kubernetes quantity")
    memory: str = setting("Memory request and limit.", "256Mi", parse=parse_quantity, allowed="a Kubernetes quantity")
    gpu: int = setting("nvidia.com/gpu limit; schedules on a GPU pool.", 0, bounds=(0, 16))


@dataclass(frozen=True, kw_only=True)
class ModelVersion:
    image: str = setting("Container image; pin a version tag or digest.", parse=_image, allowed="an image reference")
    replicas: Replicas = setting("Pod count bounds.", Replicas())
    resources: Resources = setting("Per-pod resources.", Resources())
    env: dict[str, str] = setting(
        "Environment variables; TARGET defaults to the version name.",
        {},
        keys=_env_name,
        values=_env_value,
        allowed="a mapping of name to string",
    )


def _strategy(value: object, path: str) -> Strategy:
    return parse_strategy(value, path)


_EGRESS_HOST = re.compile(r"(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?(:\d{1,5})?")
EGRESS_ALLOWED = (
    "a hostname with at least two labels (a wildcard only as the whole first label, `*.`), and an optional :port "
    "from 1 to 65535, such as s3.us-east-1.amazonaws.com or *.blob.core.windows.net:443"
)


def _egress(value: object, path: str) -> tuple[str, ...]:
    """Hosts as `host:port` (port 443 unless given), each once; Istio's rules for ServiceEntry hosts."""
    if not isinstance(value, list):
        raise ConfigError(path, describe(value), "a list of hosts: " + EGRESS_ALLOWED)
    hosts: list[str] = []
    for index, item in enumerate(value):
        text = item.lower() if isinstance(item, str) else item
        if not isinstance(text, str) or not _EGRESS_HOST.fullmatch(text) or len(text.split(":")[0]) > 253:
            raise ConfigError(f"{path}[{index}]", describe(item), EGRESS_ALLOWED)
        host, _, port = text.partition(":")
        if port and not 1 <= int(port) <= 65535:
            raise ConfigError(f"{path}[{index}]", describe(item), EGRESS_ALLOWED)
        entry = f"{host}:{int(port) if port else 443}"
        if entry in hosts:
            raise ConfigError(f"{path}[{index}]", f"{describe(item)}, listed twice", "each host and port once")
        hosts.append(entry)
    return tuple(hosts)


_SECRET_NAME = _matching(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", "a Kubernetes secret name")


@dataclass(frozen=True, kw_only=True)
class PullSecret:
    """An image pull Secret in the endpoint's namespace: yours (only `name`), or made by turnout."""

    name: str = setting("The Secret's name.", parse=_SECRET_NAME, allowed="a Kubernetes secret name")
    registry: str | None = setting(
        "With username and passwordConfig, turnout creates the Secret (kubernetes.io/dockerconfigjson) for this "
        "registry host.",
        None,
        parse=_matching(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:\d{1,5})?", "a registry host such as ghcr.io"),
        allowed="a registry host",
    )
    username: str | None = setting("The registry user.", None, parse=_matching(r"\S+", "a user name"), allowed="a name")
    password_config: str | None = setting(
        "The Pulumi config key (NAMESPACE:KEY, not turnout:) holding the password or token, set with "
        "`pulumi config set --secret`: it never appears in the stack file or the plan in clear.",
        None,
        parse=_matching(
            r"(?!turnout:)[A-Za-z0-9_.-]+:[A-Za-z0-9_./-]+", "a Pulumi config key NAMESPACE:KEY outside turnout:"
        ),
        allowed="a config key NAMESPACE:KEY",
    )


def _pull_secrets(value: object, path: str) -> tuple[PullSecret, ...]:
    """Each Secret named once; one turnout makes has all three of registry, username and passwordConfig."""
    if not isinstance(value, list):
        allowed = "a list of mappings with keys [name, registry, username, passwordConfig]"
        raise ConfigError(path, describe(value), allowed)
    secrets: list[PullSecret] = []
    for index, item in enumerate(value):
        secret = parse_object(PullSecret, item, f"{path}[{index}]")
        given = {"registry": secret.registry, "username": secret.username, "passwordConfig": secret.password_config}
        missing = [key for key, found in given.items() if found is None]
        if missing and len(missing) < len(given):
            raise ConfigError(
                f"{path}[{index}].{missing[0]}",
                "nothing",
                "all of registry, username and passwordConfig (turnout makes the Secret), or none (it is yours)",
            )
        if any(other.name == secret.name for other in secrets):
            raise ConfigError(f"{path}[{index}].name", f"{describe(secret.name)}, listed twice", "each Secret once")
        secrets.append(secret)
    return tuple(secrets)


@dataclass(frozen=True, kw_only=True)
class RegionalEndpoint:
    strategy: Strategy = setting(
        "The strategy this region runs for the endpoint instead of the endpoint's `strategy` (such as an A/B test "
        "in one market); its versions are the endpoint's.",
        parse=lambda value, path: _strategy(value, path),
        allowed="a strategy mapping",
    )


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    backend: Literal["istio", "knative"] = setting("How versions are served and routed.", "istio")
    port: int = setting("Container port the model listens on.", 8080, bounds=(1, 65535))
    health_path: str = setting(
        "HTTP path for readiness and liveness probes.", "/", parse=_health_path, allowed="an HTTP path"
    )
    versions: dict[str, ModelVersion] = setting(
        "Model versions by name.", keys=lambda k, p: check_dns_label(k, p, "version name"), min_items=1
    )
    strategy: Strategy | None = setting(
        "How versions meet users: `type` (recreate, rolling, blue-green, canary, ab-test, shadow, dark-launch, "
        "feature-flag, bandit, interleaved) and its fields; see Strategies.",
        None,
        parse=_strategy,
        allowed="a strategy mapping",
        default_doc="rolling of the only version",
    )
    egress: tuple[str, ...] = setting(
        "Hosts outside the mesh the endpoint's pods may call over TLS (the mesh lets pods reach registered hosts "
        "only): a hostname or `*.` and a domain, with an optional :port (443 by default); see Egress.",
        (),
        parse=_egress,
        allowed="a list of hostnames with an optional :port",
    )
    pull_secrets: tuple[PullSecret, ...] = setting(
        "Image pull Secrets for every version's pods; see Private registries.",
        (),
        parse=_pull_secrets,
        allowed="a list of mappings",
    )
    tests: tuple[AcceptanceTest, ...] = setting(
        "Requests a new version must answer as expected before it takes user traffic; see Acceptance tests.",
        (),
        parse=_tests,
        allowed="a list of tests",
    )
    slo: Slo = setting("Objectives the endpoint's alerts watch; see Observability.", Slo())
    regions: dict[str, RegionalEndpoint] = setting(
        "Per region of `platform.regions`: what that region runs differently (its own `strategy`); the other "
        "regions run the endpoint's `strategy`. See Strategies per region.",
        {},
        allowed="a mapping of region to {strategy: ...}",
    )

    def in_region(self, region: str) -> Endpoint:
        """The endpoint as `region` runs it: with that region's own strategy, if it has one."""
        regional = self.regions.get(region)
        return self if regional is None else dataclasses.replace(self, strategy=regional.strategy)


def endpoints_in_region(endpoints: Mapping[str, Endpoint], region: str) -> dict[str, Endpoint]:
    return {name: endpoint.in_region(region) for name, endpoint in endpoints.items()}


def regional_variants(config: StackConfig) -> list[dict[str, Endpoint]]:
    """The endpoints as each region runs them (one entry per region): what every per-cluster check must see."""
    return [endpoints_in_region(config.endpoints, region) for region in config.platform.regions]


def _date(value: object, path: str) -> str:
    text = value.isoformat() if isinstance(value, datetime.date) else value
    try:
        if isinstance(text, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            datetime.date.fromisoformat(text)
            return text
    except ValueError:
        pass
    raise ConfigError(path, describe(value), "a date written YYYY-MM-DD, such as 2027-01-31")


def _reason(value: object, path: str) -> str:
    if not isinstance(value, str) or len(value.strip()) < 10:
        raise ConfigError(path, describe(value), "a sentence of at least 10 characters saying why, and who accepted it")
    return value.strip()


@dataclass(frozen=True, kw_only=True)
class Waiver:
    """Accept one policy finding on one resource, for a while; waived findings still show in summary.md."""

    policy: str = setting(
        "The policy to waive, e.g. image-pinned.",
        parse=_matching(r"[a-z0-9]+(-[a-z0-9]+)*", "a kebab-case policy name such as image-pinned"),
        allowed="a policy name",
    )
    resource: str = setting(
        "The resource: its URN, or its name (the URN's last part, as policy.json and summary.md show it).",
        parse=_matching(r"\S+", "a resource name or URN"),
        allowed="a resource name or URN",
    )
    reason: str = setting("Why, and who accepted it.", parse=_reason, allowed="a sentence")
    expires: str = setting(
        "Last day the waiver applies (YYYY-MM-DD); after it the finding counts again.",
        parse=_date,
        allowed="a date YYYY-MM-DD",
    )


_stack_name = _matching(r"[A-Za-z0-9][A-Za-z0-9._-]*", "a stack name such as prod-aws-blue")


@dataclass(frozen=True, kw_only=True)
class GlobalTraffic:
    """A global stack: health-checked DNS over the gateways of colour cells (blue/green stacks), read
    through StackReferences. Switching the live colour is changing `live`."""

    cells: dict[str, str] = setting(
        "Cell stacks by colour, e.g. {blue: prod-aws-blue, green: prod-aws-green}.",
        keys=lambda k, p: check_dns_label(k, p, "colour"),
        values=_stack_name,
        min_items=2,
        allowed="a mapping of colour to stack name (at least 2)",
    )
    live: str = setting("The colour that serves users; the others get no traffic.", allowed="a colour of cells")
    weights: dict[str, int] = setting(
        "Percent of users per colour during a gradual switch (sum 100); overrides live.",
        {},
        values=lambda v, p: parse_percent(v, p),
        allowed="a mapping of colour to percent",
    )
    organization: str | None = setting(
        "Pulumi organization of the cell stacks.", None, default_doc="this stack's organization"
    )

    def colour_weights(self) -> dict[str, int]:
        """Each colour's share of users: the configured weights, or everything to `live`."""
        return dict(self.weights) if self.weights else {c: 100 if c == self.live else 0 for c in self.cells}


@dataclass(frozen=True, kw_only=True)
class StackConfig:
    tier: Tier = setting("prod makes rollout-safety rules mandatory.", "dev")
    platform: Platform = setting("Clusters: cloud, regions, version, node pools.")
    dr: DrTarget | None = setting("Disaster-recovery target; absent means none.", None)
    cache: Cache | None = setting("Cache for model endpoints; absent means none.", None)
    endpoints: dict[str, Endpoint] = setting(
        "Model endpoints by name; each gets its own namespace. Required, except in a global stack.",
        {},
        keys=lambda k, p: _endpoint_name(k, p),
        min_items=1,
        default_doc="required (none in a global stack)",
    )
    global_traffic: GlobalTraffic | None = setting(
        "Makes this a global stack: DNS over colour cells' gateways (blue/green stacks); see Blue/green cells.", None
    )

    @property
    def kind(self) -> str:
        """`cell`: clusters and endpoints; `global`: only the DNS over cells."""
        return "cell" if self.global_traffic is None else "global"

    waivers: tuple[Waiver, ...] = setting(
        "Policy findings accepted for a while: `policy`, `resource`, `reason`, `expires`; see Policy pack.", ()
    )


def _endpoint_name(key: str, path: str) -> str:
    check_dns_label(key, path, "endpoint name")
    if key in RESERVED_ENDPOINT_NAMES or key.startswith(RESERVED_ENDPOINT_PREFIX):
        raise ConfigError(
            path,
            describe(key),
            "a name that is not a system namespace (" + ", ".join(sorted(RESERVED_ENDPOINT_NAMES)) + ", kube-*)",
        )
    return key


TOP_LEVEL_KEYS = tuple(yaml_key(f) for f in config_fields(StackConfig))


def key_path(key: str) -> str:
    return f"{NAMESPACE}:{key}"


def load_stack_config(raw: Mapping[str, str | None]) -> StackConfig:
    """Parse the `turnout:` keys as the Pulumi CLI passes them (key without namespace → string)."""
    decoded: dict[str, object] = {}
    for key, value in raw.items():
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(
                key_path(key), "an unknown key", "one of " + ", ".join(key_path(k) for k in TOP_LEVEL_KEYS)
            )
        value = _decode(key, value) if value is not None else None
        if value is not None:
            decoded[key] = value
    kwargs = {}
    types = get_type_hints(StackConfig)
    for field in config_fields(StackConfig):
        key = yaml_key(field)
        if key not in decoded:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ConfigError(key_path(key), "nothing", "a required value: " + field.metadata["doc"])
            continue
        kwargs[field.name] = parse_value(types[field.name], decoded[key], key_path(key), field.metadata)
    return validate(StackConfig(**kwargs))


def _decode(key: str, value: str) -> object:
    """Structured values arrive JSON-encoded; plain strings (e.g. `tier: prod`) arrive as they are."""
    if not isinstance(value, str):
        return value
    stripped = value.strip()
    if not stripped:
        return None  # `turnout:dr:` with nothing after it means the key is absent
    if stripped[:1] in ("{", "["):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as err:
            raise ConfigError(
                key_path(key), f"text that is not valid JSON ({err.msg})", "a YAML mapping or list"
            ) from None
    return value


def validate(config: StackConfig) -> StackConfig:
    """Cross-field checks, then defaults that depend on other keys, resolved."""
    _validate_kind(config)
    platform = _validate_platform(config.platform)
    endpoints = {
        name: _validate_regions(
            _validate_endpoint(endpoint, key_path(f"endpoints.{name}"), config.tier),
            key_path(f"endpoints.{name}"),
            config.tier,
            platform.regions,
        )
        for name, endpoint in config.endpoints.items()
    }
    platform = dataclasses.replace(platform, observability=resolve_observability(platform, config.tier))
    resolved = dataclasses.replace(config, platform=platform, endpoints=endpoints)
    _validate_serving(resolved)
    _check_regional_deployments(resolved)
    check_derived_names(resolved.platform.regions, resolved.endpoints)
    check_schedulable(resolved)
    return resolved


OBSERVABILITY_BY_TIER: dict[str, tuple[bool, int, str | None]] = {
    # tier: (on by default, retention in seconds, PersistentVolume size)
    "dev": (False, 86400, None),
    "staging": (True, 7 * 86400, None),
    "prod": (True, 15 * 86400, "50Gi"),
}
REMOTE_WRITE_BUILT = {
    "aws": "Amazon Managed Service for Prometheus, written with the Prometheus server's IRSA role (SigV4)",
}
REMOTE_WRITE_NOT_BUILT = {
    "gcp": "Google Cloud Managed Service for Prometheus ingests from its own collectors (managed collection or its "
    "Prometheus fork), not from an upstream Prometheus's remote write",
    "azure": "Azure Monitor managed Prometheus: its remote-write path (Entra workload identity on the Prometheus "
    "server, a data collection rule and endpoint) is not built yet",
    "kind": "kind has no managed Prometheus",
}


def resolve_observability(platform: Platform, tier: str) -> Observability:
    """`platform.observability` with the tier's defaults resolved, and each combination that cannot work refused."""
    path = key_path("platform.observability")
    settings = platform.observability
    on, retention, storage = OBSERVABILITY_BY_TIER[tier]
    enabled = on if settings.enabled is None else settings.enabled
    alerts = settings.alerts
    if not enabled:
        for key, value in (
            ("retention", settings.retention),
            ("storage", settings.storage),
            ("grafana", settings.grafana or None),
            ("alerts.receiver", alerts.receiver),
            ("remoteWrite", settings.remote_write),
        ):
            if value is not None:
                raise ConfigError(
                    f"{path}.{key}", f"{describe(value)} with observability off", f"enabled: true, or no {key}"
                )
    if alerts.receiver is None and (alerts.secret_config or alerts.channel):
        key = "secretConfig" if alerts.secret_config else "channel"
        raise ConfigError(f"{path}.alerts.receiver", "nothing", f"webhook, slack or pagerduty, which {key} is for")
    if alerts.receiver is not None and alerts.secret_config is None:
        what = {"webhook": "webhook URL", "slack": "Slack webhook URL", "pagerduty": "PagerDuty routing key"}
        raise ConfigError(
            f"{path}.alerts.secretConfig",
            f"nothing, with receiver {alerts.receiver}",
            f"the Pulumi config key holding the {what[alerts.receiver]} (`pulumi config set --secret NAMESPACE:KEY`)",
        )
    if alerts.channel is not None and alerts.receiver != "slack":
        raise ConfigError(f"{path}.alerts.channel", f"a channel with receiver {alerts.receiver}", "channel with slack")
    if settings.remote_write is not None and platform.cloud not in REMOTE_WRITE_BUILT:
        raise NotSupportedError(
            f"{path}.remoteWrite",
            f"remote write on {platform.cloud}: {REMOTE_WRITE_NOT_BUILT[platform.cloud]}",
            "remoteWrite on aws",
        )
    return dataclasses.replace(
        settings,
        enabled=enabled,
        retention=settings.retention if settings.retention is not None else (retention if enabled else None),
        storage=settings.storage if settings.storage is not None else (storage if enabled else None),
    )


def _validate_kind(config: StackConfig) -> None:
    routing = config.global_traffic
    if routing is None:
        if not config.endpoints:
            raise ConfigError(key_path("endpoints"), "nothing", "a required value: model endpoints by name")
        return
    path = key_path("globalTraffic")
    for key, present in (
        ("endpoints", bool(config.endpoints)),
        ("dr", config.dr is not None),
        ("cache", config.cache is not None),
    ):
        if present:
            raise ConfigError(
                key_path(key),
                "a value in a global stack",
                f"no {key_path(key)}: a global stack only routes; its cells serve",
            )
    if config.platform.cloud == "kind":
        raise ConfigError(key_path("platform.cloud"), "'kind' in a global stack", "aws, gcp or azure (a DNS service)")
    if routing.live not in routing.cells:
        raise ConfigError(
            f"{path}.live", repr(routing.live), "one of the colours of cells: " + ", ".join(routing.cells)
        )
    unknown = sorted(set(routing.weights) - set(routing.cells))
    if unknown:
        raise ConfigError(f"{path}.weights.{unknown[0]}", "a colour with no cell", "one of " + ", ".join(routing.cells))
    if routing.weights and sum(routing.weights.values()) != 100:
        raise ConfigError(
            f"{path}.weights", f"weights summing to {sum(routing.weights.values())}", "weights summing to 100"
        )


KIND_DOMAIN = "127.0.0.1.sslip.io"  # resolves to localhost, where kind publishes the gateway
CLOUD_DOMAIN = "models.internal"


@dataclass(frozen=True)
class PlatformFeatures:
    knative: bool
    flagger: bool


def platform_features(serving: Serving, endpoints: Mapping[str, Endpoint]) -> PlatformFeatures:
    """Which optional parts of the serving platform a cluster gets."""
    knative_needed = any(e.backend == "knative" for e in endpoints.values())
    flagger_needed = any(getattr(e.strategy, "progressive", None) is not None for e in endpoints.values())

    def wanted(install: str, needed: bool) -> bool:
        return install == "always" or (install == "auto" and needed)

    return PlatformFeatures(
        wanted(serving.knative.install, knative_needed), wanted(serving.flagger.install, flagger_needed)
    )


def _validate_serving(config: StackConfig) -> None:
    serving = config.platform.serving
    path = key_path("platform.serving")
    for endpoints in regional_variants(config) or [config.endpoints]:
        features = platform_features(serving, endpoints)
        needs = {
            "knative": (features.knative, [n for n, e in endpoints.items() if e.backend == "knative"]),
            "flagger": (
                features.flagger,
                [n for n, e in endpoints.items() if getattr(e.strategy, "progressive", None) is not None],
            ),
        }
        for part, (installed, users) in needs.items():
            if users and not installed:
                raise ConfigError(
                    f"{path}.{part}.install", '"never"', f"auto or always: endpoints {', '.join(users)} need {part}"
                )


def _validate_platform(platform: Platform) -> Platform:
    path = key_path("platform")
    if len(set(platform.regions)) != len(platform.regions):
        raise ConfigError(f"{path}.regions", "a region listed twice", "distinct regions")
    known = KNOWN_REGIONS.get(platform.cloud)
    for index, region in enumerate(platform.regions):
        if known is not None and region not in known and region not in platform.extra_regions:
            raise ConfigError(
                f"{path}.regions[{index}]",
                f"{region!r}, not a {platform.cloud} region turnout knows",
                f"a {platform.cloud} region such as {EXAMPLES[platform.cloud]}, "
                f"or list it in {path}.extraRegions if it is newer than this release",
            )
    if platform.cloud == "kind" and len(platform.regions) != 1:
        raise ConfigError(
            f"{path}.regions",
            f"{len(platform.regions)} regions with cloud kind",
            "exactly one region (any name, e.g. local) for kind",
        )
    if platform.load_images and platform.cloud != "kind":
        raise ConfigError(
            f"{path}.loadImages",
            f"images to load with cloud {platform.cloud}",
            "loadImages with cloud kind only; push images to a registry for clouds",
        )
    pools = platform.node_pools or (
        NodePool(name="general", min=1 if platform.cloud == "kind" else 2, max=1 if platform.cloud == "kind" else 6),
    )
    seen: set[str] = set()
    resolved = []
    for index, pool in enumerate(pools):
        pool_path = f"{path}.nodePools[{index}]"
        if pool.name in seen:
            raise ConfigError(f"{pool_path}.name", describe(pool.name), "a pool name not used by another pool")
        seen.add(pool.name)
        if pool.min > pool.max:
            raise ConfigError(f"{pool_path}.min", f"{pool.min}, above max {pool.max}", "min <= max")
        if pool.gpu and platform.cloud == "kind":
            raise ConfigError(
                f"{pool_path}.gpu",
                f"{pool.gpu} GPU(s) with cloud kind",
                "gpu: 0 on kind (kind nodes are containers without GPUs); use aws, gcp or azure",
            )
        resolved.append(
            dataclasses.replace(pool, machine_type=pool.machine_type or DEFAULT_MACHINE_TYPES[platform.cloud])
        )
    gateway = _validate_gateway_tls(platform.serving.gateway, platform.cloud)
    if gateway.domain is None:
        domain = KIND_DOMAIN if platform.cloud == "kind" else CLOUD_DOMAIN
        gateway = dataclasses.replace(gateway, domain=domain)
    serving = dataclasses.replace(platform.serving, gateway=gateway)
    return dataclasses.replace(platform, node_pools=tuple(resolved), serving=serving, **_cluster_access(platform))


# Domains no public ACME CA can validate: special-use and private-use names (RFC 6761, RFC 8375, ICANN's
# .internal) and the shared wildcard-DNS services, whose zones no stack can write a TXT record in.
NON_PUBLIC_SUFFIXES = ("internal", "local", "localhost", "test", "example", "invalid", "alt", "home.arpa", "lan")
SHARED_DNS_SUFFIXES = ("sslip.io", "nip.io")
# The zone cert-manager solves DNS-01 in, as each cloud names it.
DNS_ZONE_PATTERNS: dict[str, tuple[str, str]] = {
    "aws": (r"Z[A-Z0-9]{1,31}", "a Route 53 hosted zone id such as Z0123456789ABCDEFGHIJ"),
    "gcp": (
        r"(projects/[a-z][-a-z0-9]{4,28}[a-z0-9]/managedZones/)?[a-z]([-a-z0-9]{0,61}[a-z0-9])?",
        "a Cloud DNS managed zone name such as models-zone, or projects/PROJECT/managedZones/ZONE",
    ),
    "azure": (
        r"/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-\w.()]{1,90}/providers/Microsoft\.Network/dnszones/"
        r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?",
        "an Azure DNS zone resource id such as /subscriptions/SUBSCRIPTION/resourceGroups/dns/providers/"
        "Microsoft.Network/dnszones/example.com",
    ),
}


def _validate_gateway_tls(gateway: Gateway, cloud: str) -> Gateway:
    """The gateway's certificate source, checked against the cloud and domain, with its default resolved: never
    an issuer that cannot issue for the domain, never a quiet fallback to another one."""
    path = key_path("platform.serving.gateway.tls")
    tls = gateway.tls
    domain = gateway.domain or (KIND_DOMAIN if cloud == "kind" else CLOUD_DOMAIN)
    issuer = tls.issuer or (
        "secret" if gateway.certificate != DEFAULT_CERTIFICATE else ("self-signed" if cloud == "kind" else "private-ca")
    )
    if issuer != "acme":
        for key, value in (("server", tls.server), ("email", tls.email), ("dnsZone", tls.dns_zone)):
            if value is not None:
                raise ConfigError(f"{path}.{key}", f"{describe(value)} with issuer {issuer}", f"no {key}: it is acme's")
    if issuer == "self-signed" and cloud != "kind":
        raise ConfigError(
            f"{path}.issuer",
            f'"self-signed" with cloud {cloud}',
            "acme, private-ca (cert-manager's CA, renewed in the cluster) or secret; self-signed is kind's",
        )
    if issuer == "acme":
        if cloud == "kind":
            raise ConfigError(
                f"{path}.issuer",
                '"acme" with cloud kind',
                "self-signed, private-ca or secret: kind has no workload identity to write DNS-01 records with",
            )
        labels = domain.lower().split(".")
        private = len(labels) < 2 or any(
            domain.lower() == suffix or domain.lower().endswith("." + suffix)
            for suffix in (*NON_PUBLIC_SUFFIXES, *SHARED_DNS_SUFFIXES)
        )
        if private:
            written = f"domain {domain}" if gateway.domain else f"the default domain {domain}"
            raise ConfigError(
                f"{path}.issuer",
                f'"acme" with {written}, which no public ACME CA can validate',
                "private-ca (or secret) for it, or acme with platform.serving.gateway.domain set to a public "
                "domain whose DNS zone you control",
            )
        if tls.server is None:
            raise ConfigError(
                f"{path}.server",
                "nothing, with issuer acme",
                "letsencrypt (production) or letsencrypt-staging: say which, there is no default",
            )
        pattern, example = DNS_ZONE_PATTERNS[cloud]
        if tls.dns_zone is None:
            raise ConfigError(f"{path}.dnsZone", "nothing, with issuer acme", f"on {cloud}, {example}")
        if not re.fullmatch(pattern, tls.dns_zone):
            raise ConfigError(f"{path}.dnsZone", describe(tls.dns_zone), f"on {cloud}, {example}")
        zone_name = tls.dns_zone.rsplit("/", 1)[-1].lower() if cloud == "azure" else None
        if zone_name and not (domain.lower() == zone_name or domain.lower().endswith("." + zone_name)):
            raise ConfigError(
                f"{path}.dnsZone",
                f"zone {zone_name}, which does not hold domain {domain}",
                f"the Azure DNS zone of {domain} or of a parent domain",
            )
    return dataclasses.replace(gateway, tls=dataclasses.replace(tls, issuer=issuer))


# Who may be a cluster admin, as each cloud names principals.
ADMIN_PATTERNS: dict[str, tuple[str, str]] = {
    "aws": (
        r"arn:aws(-cn|-us-gov)?:iam::\d{12}:(role|user)/[\w+=,.@/-]+",
        "an IAM role or user ARN such as arn:aws:iam::123456789012:role/platform-admins",
    ),
    "gcp": (
        r"(user|group|serviceAccount):[^\s@]+@[^\s@]+\.[a-z]{2,}",
        "an IAM member such as group:platform-admins@example.com",
    ),
    "azure": (
        r"(user|group|servicePrincipal):[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}",
        "a principal type and Entra object id such as group:00000000-0000-0000-0000-000000000000",
    ),
}


def _cluster_access(platform: Platform) -> dict:
    """API access, admins and address space, checked for the cloud and resolved: how the deployer and the
    admins reach each cluster, and each region's network."""
    path = key_path("platform")
    cloud = platform.cloud
    if cloud == "kind":
        for key, value in (
            ("apiAccess", platform.api_access),
            ("apiAccessCidrs", platform.api_access_cidrs),
            ("admins", platform.admins),
            ("addressSpace", platform.address_space),
            ("networks", platform.networks),
        ):
            if value:
                raise ConfigError(
                    f"{path}.{key}", f"{describe(value)} with cloud kind", f"no {key} on kind: its API is on localhost"
                )
        return {}
    access = platform.api_access or (
        "allowlist" if platform.api_access_cidrs else ("dns" if cloud == "gcp" else "in-network")
    )
    if access == "dns" and cloud != "gcp":
        raise ConfigError(
            f"{path}.apiAccess",
            f'"dns" with cloud {cloud}',
            "allowlist (a public endpoint open only to apiAccessCidrs) or in-network; dns is GKE's DNS endpoint",
        )
    if access == "allowlist" and not platform.api_access_cidrs:
        raise ConfigError(
            f"{path}.apiAccessCidrs",
            "nothing, with apiAccess allowlist",
            "the CIDRs `pulumi up` runs from (your network's and your CI runners' egress addresses)",
        )
    if access != "allowlist" and platform.api_access_cidrs:
        raise ConfigError(
            f"{path}.apiAccessCidrs",
            f"{len(platform.api_access_cidrs)} CIDR(s) with apiAccess {access}",
            "apiAccessCidrs only with apiAccess allowlist (the public endpoint's allowlist)",
        )
    pattern, example = ADMIN_PATTERNS[cloud]
    for index, principal in enumerate(platform.admins):
        if not re.fullmatch(pattern, principal):
            raise ConfigError(f"{path}.admins[{index}]", describe(principal), f"on {cloud}, {example}")
    if len(set(platform.admins)) != len(platform.admins):
        raise ConfigError(f"{path}.admins", "a principal listed twice", "distinct principals")
    space = platform.address_space or DEFAULT_ADDRESS_SPACE
    networks = region_cidrs(
        platform.regions,
        space,
        platform.networks,
        space_path=f"{path}.addressSpace",
        networks_path=f"{path}.networks",
    )
    return {"api_access": access, "address_space": space, "networks": networks}


def _validate_endpoint(endpoint: Endpoint, path: str, tier: str) -> Endpoint:
    only = next(iter(endpoint.versions)) if len(endpoint.versions) == 1 else None
    strategy_path = f"{path}.strategy"
    if endpoint.strategy is None:
        if only is None:
            raise ConfigError(
                strategy_path,
                "nothing",
                "a strategy (required when the endpoint has more than one version): " + ", ".join(_strategy_names()),
            )
        strategy: Strategy = parse_strategy({"type": "rolling"}, strategy_path)
    else:
        strategy = endpoint.strategy
    strategy = with_default_version(strategy, only, strategy_path)
    for role, version in strategy.versions_named().items():
        if version not in endpoint.versions:
            raise ConfigError(
                f"{strategy_path}.{role}",
                describe(version),
                "a version defined under versions: " + ", ".join(endpoint.versions),
            )
    if hasattr(strategy, "validate"):
        strategy.validate(strategy_path)
    check_backend(strategy, endpoint.backend, strategy_path, f"{path}.backend")
    versions = {
        name: _resolve_replicas(version, f"{path}.versions.{name}", tier) for name, version in endpoint.versions.items()
    }
    _check_serving_replicas(endpoint.backend, strategy, endpoint.versions, path, tier)
    return dataclasses.replace(endpoint, strategy=strategy, versions=versions)


def _validate_regions(endpoint: Endpoint, path: str, tier: str, regions: tuple[str, ...]) -> Endpoint:
    """Each region's own strategy, checked as the endpoint's is (its versions, its fields, its backend)."""
    resolved = {}
    for region, regional in endpoint.regions.items():
        where = f"{path}.regions.{region}"
        if region not in regions:
            raise ConfigError(where, describe(region), "one of platform.regions: " + ", ".join(regions))
        checked = _validate_endpoint(dataclasses.replace(endpoint, strategy=regional.strategy, regions={}), where, tier)
        resolved[region] = dataclasses.replace(regional, strategy=checked.strategy)
    return dataclasses.replace(endpoint, regions=resolved) if resolved else endpoint


def model_deployments(name: str, endpoint: Endpoint) -> frozenset[str]:
    """The Deployments that serve an endpoint's users (Flagger's `<endpoint>-primary`, or one per running version)."""
    from turnout.naming import k8s_name
    from turnout.traffic import traffic_plan

    if getattr(endpoint.strategy, "progressive", None) is not None:
        return frozenset({f"{name}-primary"})
    return frozenset(k8s_name(name, v) for v in traffic_plan(endpoint.strategy, endpoint.backend).running_versions)


def _check_regional_deployments(config: StackConfig) -> None:
    """On aws with a DR target, the Region switch plan scales the same Deployments in every region (components/dr/
    arc.py): a region's own strategy must run the same ones as the endpoint's `strategy`."""
    if config.dr is None or config.platform.cloud != "aws":
        return
    for name, endpoint in config.endpoints.items():
        expected = model_deployments(name, endpoint)
        for region in endpoint.regions:
            found = model_deployments(name, endpoint.in_region(region))
            if found != expected:
                raise ConfigError(
                    key_path(f"endpoints.{name}.regions.{region}.strategy"),
                    f"a strategy serving from {', '.join(sorted(found))}, where the endpoint's serves from "
                    f"{', '.join(sorted(expected))}",
                    "with dr on aws, a region's strategy that runs the same Deployments as the endpoint's strategy "
                    "(the Region switch plan scales the same Deployments in every region)",
                )


def _resolve_replicas(version: ModelVersion, path: str, tier: str) -> ModelVersion:
    low = version.replicas.min if version.replicas.min is not None else (2 if tier == "prod" else 1)
    high = version.replicas.max if version.replicas.max is not None else max(low, 3)
    if low > high:
        raise ConfigError(f"{path}.replicas.min", f"{low}, above max {high}", "min <= max")
    return dataclasses.replace(version, replicas=Replicas(min=low, max=high))


def _strategy_names() -> list[str]:
    from turnout.strategies import STRATEGY_TYPES

    return list(STRATEGY_TYPES)


def _check_serving_replicas(
    backend: str, strategy: Strategy, versions: Mapping[str, ModelVersion], path: str, tier: str
):
    """`replicas.min: 0` only where something brings pods back: Knative's activator, outside prod."""
    from turnout.traffic import traffic_plan

    plan = traffic_plan(strategy)
    for name in plan.running_versions if backend == "knative" else plan.routed_versions:
        if versions[name].replicas.min != 0:
            continue
        if backend == "istio":
            raise ConfigError(
                f"{path}.versions.{name}.replicas.min",
                "0 for a version that serves traffic on the istio backend (it would get no pods and no autoscaler)",
                "at least 1; scaling to zero needs backend: knative",
            )
        if tier == "prod":
            raise ConfigError(
                f"{path}.versions.{name}.replicas.min",
                "0 in a prod stack (Knative would scale the version to zero between requests)",
                "at least 1 in prod (the prod-min-replicas policy asks for 2)",
            )


def check_schedulable(config: StackConfig) -> None:
    """GPU requests need a node that has them: kind has none; a cloud needs a GPU node pool."""
    platform = config.platform
    most = max((pool.gpu for pool in platform.node_pools), default=0)
    for endpoint_name, endpoint in config.endpoints.items():
        for version_name, version in endpoint.versions.items():
            wanted = version.resources.gpu
            if not wanted or wanted <= most:
                continue
            path = key_path(f"endpoints.{endpoint_name}.versions.{version_name}.resources.gpu")
            if platform.cloud == "kind":
                raise ConfigError(
                    path, f"{wanted} GPU(s) with cloud kind", "0 on kind (kind nodes are containers without GPUs)"
                )
            pools = ", ".join(f"{p.name} ({p.gpu})" for p in platform.node_pools)
            raise ConfigError(
                path,
                f"{wanted} GPU(s), but no node pool has that many GPUs per node (pools: {pools})",
                f"at most {most}, or a pool in {key_path('platform.nodePools')} with gpu: {wanted} or more, "
                f"e.g. {{name: gpu, machineType: ..., min: 0, max: 2, gpu: {wanted}}}",
            )


# Resource names turnout derives from keys, as `turnout.naming.child` joins them with '-' (see
# stacks/turnout_cell.py and components/endpoint/): each template is one resource type, and two
# resources of one type with one name are the same URN. The cluster is `<stack>-<region>` on every
# cluster of the stack, so the region stands for it.
_DERIVED_NAME_TEMPLATES = (
    ("endpoint", lambda endpoint, version: (), "all"),  # ModelEndpoint `<cluster>-<endpoint>`
    ("workload", lambda endpoint, version: (version,), "all"),  # ModelWorkload and its Deployment, HPA, PDB
    ("Knative revision", lambda endpoint, version: ("knative", version), "knative"),  # its ServiceAccount, Config
)


def check_derived_names(regions: tuple[str, ...], endpoints: Mapping[str, Endpoint]) -> None:
    """Different keys must not derive one resource name (`fraud` + version `score-v1` and `fraud-score`
    + version `v1` both give `<cluster>-fraud-score-v1`): the engine refuses duplicate URNs."""
    for what, suffix, backends in _DERIVED_NAME_TEMPLATES:
        owners: dict[str, str] = {}
        for region in regions:
            for endpoint_name, endpoint in endpoints.items():
                if backends != "all" and endpoint.backend != backends:
                    continue
                for version_name in endpoint.versions if suffix("e", "v") else [None]:
                    name = child(region, endpoint_name, *suffix(endpoint_name, version_name))
                    key = f"endpoints.{endpoint_name}" + (f".versions.{version_name}" if version_name else "")
                    where = f"{key_path(key)}" + (f" in region {region}" if len(regions) > 1 else "")
                    first = owners.setdefault(name, where)
                    if first != where:
                        raise ConfigError(
                            key_path(key),
                            f"a name that gives the {what} resource name {name.removeprefix(region + '-')!r} "
                            f"(names are joined with '-'), which {first} gives too",
                            "endpoint and version names that stay distinct when joined with '-': rename one of them",
                        )
