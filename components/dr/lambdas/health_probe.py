"""Request the region's health route through its internal NLB and publish the answer as a CloudWatch metric: what
Route 53's failover follows for an AWS internal gateway (components/globaltraffic/route53.py deploys one per region,
in the cluster's VPC, on a one-minute EventBridge schedule).

Route 53's checkers run on the internet and cannot reach a private NLB; a check on a CloudWatch alarm is its
documented way for private resources. This function is the probe that alarm reads: from inside the VPC it connects
to the NLB on 443, sends the health host as SNI (the Gateway picks its `*.<domain>` server, and certificate, by it)
and as Host, `GET /ready`, and publishes 1 for a 2xx answer, 0 for anything else (another status, a failed TLS
handshake because the region has no certificate, a refused or timed-out connection, a name that does not resolve).
The route answers 200 only while every model endpoint of the region does (components/dr/health.py).

- Configuration (set by the stack): `PROBE_ADDRESS` (the NLB's DNS name), `PROBE_HOST` (the health host: SNI and
  Host), `PROBE_PORT`, `PROBE_PATH`, `PROBE_TIMEOUT` (seconds for the whole request), `METRIC_NAMESPACE`,
  `METRIC_NAME`, `CLUSTER` (the metric's one dimension).
- The certificate is presented, not verified (as Route 53's own HTTPS checks do): an internal gateway's certificate
  is often from a private CA the runtime does not trust; a region without the certificate still fails the handshake.
- Publishing is the only AWS call; its failure raises (the invocation fails and the alarm, which treats missing data
  as breaching, takes the region out), and so does a missing setting.

Only boto3 (in the Lambda runtime) and the standard library: the file is the whole deployment package.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
from typing import Any

import boto3

SETTINGS = (
    "PROBE_ADDRESS",
    "PROBE_HOST",
    "PROBE_PORT",
    "PROBE_PATH",
    "PROBE_TIMEOUT",
    "METRIC_NAMESPACE",
    "METRIC_NAME",
    "CLUSTER",
)


class ProbeConfigError(Exception):
    """A setting the stack should have given the function is missing or malformed."""


def settings(environ: dict[str, str] | None = None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    missing = [key for key in SETTINGS if not environ.get(key)]
    if missing:
        raise ProbeConfigError(f"missing setting(s) {', '.join(missing)}: the stack sets them on the function")
    try:
        port, timeout = int(environ["PROBE_PORT"]), float(environ["PROBE_TIMEOUT"])
    except ValueError as error:
        raise ProbeConfigError(f"PROBE_PORT and PROBE_TIMEOUT must be numbers: {error}") from None
    return {**{key: environ[key] for key in SETTINGS}, "PROBE_PORT": port, "PROBE_TIMEOUT": timeout}


def tls_context() -> ssl.SSLContext:
    """TLS 1.2+, the certificate presented but not verified (see the module's docstring)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _SniConnection(http.client.HTTPSConnection):
    """An HTTPS connection to `address` that sends `sni` in the ClientHello (http.client would send the address)."""

    def __init__(self, address: str, port: int, sni: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(address, port, timeout=timeout, context=context)
        self._sni = sni
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self._sni)


def probe(address: str, port: int, host: str, path: str, timeout: float) -> tuple[bool, str]:
    """(whether the route answered 2xx, what happened): one request, `host` as SNI and Host."""
    connection = _SniConnection(address, port, host, timeout, tls_context())
    try:
        connection.request("GET", path, headers={"Host": host, "User-Agent": "turnout-health-probe"})
        response = connection.getresponse()
        response.read(4096)
        return 200 <= response.status < 300, f"HTTP {response.status}"
    except (OSError, http.client.HTTPException) as error:  # ssl.SSLError and socket timeouts are OSErrors
        return False, f"{type(error).__name__}: {error}"
    finally:
        connection.close()


def publish(client, config: dict[str, Any], healthy: bool) -> None:
    client.put_metric_data(
        Namespace=config["METRIC_NAMESPACE"],
        MetricData=[
            {
                "MetricName": config["METRIC_NAME"],
                "Dimensions": [{"Name": "Cluster", "Value": config["CLUSTER"]}],
                "Value": 1.0 if healthy else 0.0,
                "Unit": "Count",
                "StorageResolution": 60,  # standard resolution: Route 53 reads no alarm on a high-resolution metric
            }
        ],
    )


def handler(event: dict | None = None, context: Any = None, client=None) -> dict[str, Any]:
    config = settings()
    healthy, outcome = probe(
        config["PROBE_ADDRESS"],
        config["PROBE_PORT"],
        config["PROBE_HOST"],
        config["PROBE_PATH"],
        config["PROBE_TIMEOUT"],
    )
    publish(client or boto3.client("cloudwatch"), config, healthy)
    print(f"{config['CLUSTER']}: {config['PROBE_HOST']}{config['PROBE_PATH']} via {config['PROBE_ADDRESS']}: {outcome}")
    return {"cluster": config["CLUSTER"], "healthy": healthy, "outcome": outcome}
