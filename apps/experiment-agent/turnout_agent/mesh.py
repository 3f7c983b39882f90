"""What the mesh counted, read from Prometheus: Istio's per-pod counters of the endpoint's Service.

The agent keeps each series' last value (in the experiment state) and adds what it grew by since,
taking a value that fell as a counter reset (a restarted sidecar). Nothing is extrapolated, so the
counts are whole requests whatever Prometheus' scrape interval, and a new leader continues from the
values the last one stored. A series that disappears (a deleted pod) keeps answering for
Prometheus' lookback (5 minutes) with its last value: it is counted if read within that time.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

REQUESTS = "istio_requests_total"
DURATION_BUCKETS = "istio_request_duration_milliseconds_bucket"


class MeshError(RuntimeError):
    """Prometheus did not answer, or answered with an error (the round is skipped, nothing is lost)."""


@dataclass(frozen=True)
class Series:
    key: str
    """Its labels, canonical: the identity its last value is kept under."""
    version: str
    value: float


def selector(namespace: str, service: str, extra: str = "") -> str:
    labels = f'reporter="destination",destination_service_namespace="{namespace}",destination_service_name="{service}"'
    return "{" + labels + (f",{extra}" if extra else "") + "}"


class Prometheus:
    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout

    def query(self, expression: str) -> list[dict]:
        address = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
        try:
            with urllib.request.urlopen(address, timeout=self.timeout) as response:  # noqa: S310 (the settings' URL)
                body = json.loads(response.read())
        except (OSError, ValueError, urllib.error.URLError) as error:
            raise MeshError(f"Prometheus at {self.url}: {error}") from error
        if body.get("status") != "success" or body.get("data", {}).get("resultType") != "vector":
            raise MeshError(f"Prometheus at {self.url}: {body.get('error') or body}")
        return body["data"]["result"]

    def series(self, expression: str, *, where=None) -> list[Series]:
        found = []
        for item in self.query(expression):
            labels = item.get("metric") or {}
            version = labels.get("destination_version")
            if not version or (where is not None and not where(labels)):
                continue
            key = json.dumps({k: v for k, v in labels.items() if k != "__name__"}, sort_keys=True)
            found.append(Series(key, version, float(item["value"][1])))
        return found

    def requests(self, namespace: str, service: str) -> list[Series]:
        """Every request the endpoint's pods answered, per pod, response code and caller."""
        return self.series(REQUESTS + selector(namespace, service))

    def fast_successes(self, namespace: str, service: str, latency_ms: float) -> list[Series]:
        """Requests answered without a 5xx within latency_ms (the histogram's bucket at that boundary)."""
        expression = DURATION_BUCKETS + selector(namespace, service, 'response_code!~"5.."')

        def at_boundary(labels: dict) -> bool:
            try:
                return float(labels.get("le", "nan")) == latency_ms
            except ValueError:
                return False

        return self.series(expression, where=at_boundary)


def grow(counts: dict[str, float], last: dict[str, float], series: list[Series], arms: tuple[str, ...]) -> None:
    """Add each series' growth since its last value to its version's count; remember the new values."""
    for item in series:
        previous = last.get(item.key)
        # First seen, or reset (a restarted sidecar): everything it holds is new.
        growth = item.value if previous is None or item.value < previous else item.value - previous
        last[item.key] = item.value
        if item.version in arms:
            counts[item.version] = counts.get(item.version, 0.0) + growth
